//! Several `roster serve` processes on one database, as behind a load balancer (issue 11): no
//! duplicate userName under concurrent creates on both nodes, `If-Match` and read-modify-write
//! across nodes, a long-polling feed reader that never skips while both nodes write, webhook
//! delivery by one node at a time with takeover when the delivering node is killed, a token
//! revoked on one node refused by the other within a second, no acknowledged write lost when a
//! node is killed under load, and a console token shown once on whichever node the page's GET
//! reaches.
//!
//! Each test starts two real processes on the suite's database (a PostgreSQL database of its
//! own under `ROSTER_TEST_DATABASE=postgres`, else one SQLite file that both processes open).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::events::{long_poll_reader, seqs};
use crate::harness::{user_body, Resp, TestServer, USER_URN};
use crate::webhooks::Receiver;

/// Concurrent creates of one userName (in different cases) spread over two nodes: exactly one
/// 201 per name, every other answer a 409 `uniqueness`.
#[tokio::test]
async fn concurrent_creates_of_one_user_name_on_two_nodes_give_one_201() {
    let a = TestServer::start().await;
    let b = a.another_node(&[]).await;
    for round in 0..5 {
        let name = format!("dup{round}@example.com");
        let variants = [
            name.clone(),
            name.to_uppercase(),
            format!("Dup{round}@Example.com"),
            name.clone(),
        ];
        let bodies: Vec<Value> = variants.iter().map(|v| user_body(v)).collect();
        let mut sends = Vec::new();
        for body in &bodies {
            sends.push(a.post("/Users", body));
            sends.push(b.post("/Users", body));
        }
        let answers = futures::future::join_all(sends).await;
        let created = answers.iter().filter(|r| r.status == 201).count();
        assert_eq!(created, 1, "round {round}: {:?}", statuses(&answers));
        for r in answers.iter().filter(|r| r.status != 201) {
            r.expect_error(409, Some("uniqueness"));
        }
        let found = b.filter("/Users", &format!("userName eq \"{name}\"")).await;
        assert_eq!(found["totalResults"], 1);
    }
}

fn statuses(rs: &[Resp]) -> Vec<u16> {
    rs.iter().map(|r| r.status).collect()
}

/// `If-Match` holds across nodes, and a read-modify-write counter incremented by PATCH on one
/// node and by PUT on the other, both retrying on 412, loses no increment.
#[tokio::test]
async fn if_match_holds_across_nodes_and_no_update_is_lost() {
    let a = TestServer::start().await;
    let b = a.another_node(&[]).await;
    let created = a
        .post(
            "/Users",
            &json!({"schemas": [USER_URN], "userName": "counter", "title": "0"}),
        )
        .await;
    created.expect(201);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    let etag = created.header("etag").unwrap().to_owned();
    // A PATCH on A with the current ETag wins; a PUT on B with the same, now stale, ETag is 412.
    a.send(
        a.request(Method::PATCH, &path)
            .header("if-match", &etag)
            .json(&json!({"schemas": [crate::harness::PATCH_URN],
                "Operations": [{"op": "replace", "path": "nickName", "value": "a"}]})),
    )
    .await
    .expect(200);
    let mut stale = created.json.clone();
    stale["nickName"] = json!("b");
    b.send(
        b.request(Method::PUT, &path)
            .header("if-match", &etag)
            .json(&stale),
    )
    .await
    .expect_error(412, None);

    let per_node = 8;
    let inc_patch = async {
        let mut done = 0;
        while done < per_node {
            let cur = a.get(&path).await;
            let n: i64 = cur.json["title"].as_str().unwrap().parse().unwrap();
            let r = a
                .send(
                    a.request(Method::PATCH, &path)
                        .header("if-match", cur.header("etag").unwrap())
                        .json(&json!({"schemas": [crate::harness::PATCH_URN],
                            "Operations": [{"op": "replace", "path": "title",
                                            "value": (n + 1).to_string()}]})),
                )
                .await;
            match r.status {
                200 => done += 1,
                412 => {}
                s => panic!("PATCH answered {s}: {}", r.text),
            }
        }
    };
    let inc_put = async {
        let mut done = 0;
        while done < per_node {
            let cur = b.get(&path).await;
            let n: i64 = cur.json["title"].as_str().unwrap().parse().unwrap();
            let mut body = cur.json.clone();
            body["title"] = json!((n + 1).to_string());
            let r = b
                .send(
                    b.request(Method::PUT, &path)
                        .header("if-match", cur.header("etag").unwrap())
                        .json(&body),
                )
                .await;
            match r.status {
                200 => done += 1,
                412 => {}
                s => panic!("PUT answered {s}: {}", r.text),
            }
        }
    };
    tokio::join!(inc_patch, inc_put);
    let end = b.get(&path).await;
    assert_eq!(end.json["title"], (2 * per_node).to_string());
    assert_eq!(end.json["nickName"], "a");
}

/// A reader long-polls the feed on node A while both nodes write concurrently: it sees every
/// seq once, in order, none skipped.
#[tokio::test]
async fn a_long_polling_reader_never_skips_while_two_nodes_write() {
    let a = TestServer::start().await;
    let b = a.another_node(&[]).await;
    let key = a.admin_key();
    let start = a.feed(&key, 0).await.len() as i64;
    let n = 30i64;
    let reader = long_poll_reader(&a, &key, start, n, 4);
    let bodies: Vec<Value> = (0..n).map(|i| user_body(&format!("both{i}"))).collect();
    let writes = bodies.iter().enumerate().map(|(i, body)| {
        let node = if i % 2 == 0 { &a } else { &b };
        node.post("/Users", body)
    });
    for r in futures::future::join_all(writes).await {
        r.expect(201);
    }
    let seen = tokio::time::timeout(Duration::from_secs(90), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, (start + 1..=start + n).collect::<Vec<_>>());
    let all = b.feed(&key, 0).await;
    assert_eq!(seqs(&all), (1..=start + n).collect::<Vec<_>>());
}

/// The node that delivers the stream now, from the admin API's webhook view (its lease).
async fn delivering_node(s: &TestServer, key: &str, hook: &str) -> Option<String> {
    let w = s.admin_get(key, &format!("/webhooks/{hook}")).await;
    w["streams"]
        .as_array()
        .and_then(|v| v.first())
        .and_then(|st| st["delivered_by"].as_str())
        .map(str::to_owned)
}

/// Two nodes deliver one tenant's events to one endpoint: one delivery at a time, in seq
/// order; the node holding the stream is killed with SIGKILL mid-delivery and the other takes
/// over when its lease runs out: every event arrives, in order, and only the event in flight
/// may arrive twice (with the same id).
#[tokio::test]
async fn webhook_delivery_survives_the_delivering_node_being_killed() {
    const NODE: &[&str] = &[
        "--webhook-timeout-ms",
        "1000",
        "--webhook-poll-ms",
        "100",
        "--webhook-lease-ms",
        "2500",
        "--webhook-retry-base-ms",
        "50",
        "--webhook-retry-max-ms",
        "200",
    ];
    let mut a = TestServer::start_with(NODE).await;
    let mut b = a.another_node(NODE).await;
    let key = a.admin_key();
    let recv = Receiver::new();
    *recv.delay.lock().unwrap() = Duration::from_millis(100);
    let (addr, running) = recv.start("127.0.0.1:0".parse().unwrap()).await;
    let out = a.cli_ok(&[
        "webhook",
        "add",
        &format!("http://{addr}/hook"),
        "--tenant",
        &a.tenant,
        "--json",
    ]);
    let hook: Value = serde_json::from_str(out.trim()).unwrap();
    *recv.secret.lock().unwrap() = hook["secret"].as_str().unwrap().to_owned();
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let first = a.feed(&key, 0).await.len() as i64;

    let n = 40i64;
    for i in 0..n / 2 {
        let node = if i % 2 == 0 { &a } else { &b };
        node.user(&format!("hooked{i}")).await;
    }
    // Deliveries are under way (each takes 100 ms at the receiver): kill whoever delivers.
    recv.wait_for_seq(first + 3, Duration::from_secs(30)).await;
    let holder = delivering_node(&a, &key, &hook_id)
        .await
        .expect("a node holds the stream's lease");
    let (killed_pid, survivor) = if holder.contains(&format!("-{}-", a.pid())) {
        let pid = a.pid();
        a.kill();
        (pid, &b)
    } else {
        assert!(
            holder.contains(&format!("-{}-", b.pid())),
            "lease holder {holder} is neither node"
        );
        let pid = b.pid();
        b.kill();
        (pid, &a)
    };
    let killed_at = Instant::now();
    for i in n / 2..n {
        survivor.user(&format!("hooked{i}")).await;
    }
    recv.wait_for_seq(first + n, Duration::from_secs(60)).await;
    let took_over = killed_at.elapsed();
    let now_by = delivering_node(survivor, &key, &hook_id).await;
    assert!(
        now_by
            .as_deref()
            .is_some_and(|h| !h.contains(&format!("-{killed_pid}-"))),
        "the survivor delivers now: {now_by:?}"
    );

    let events = recv.events();
    // In order, nothing missing.
    let mut deduped: Vec<i64> = Vec::new();
    for s in seqs(&events) {
        if deduped.last() != Some(&s) {
            deduped.push(s);
        }
    }
    assert_eq!(
        deduped,
        (first + 1..=first + n).collect::<Vec<_>>(),
        "delivered seqs: {:?}",
        seqs(&events)
    );
    // Only the event in flight when the node died may have arrived twice, with the same id.
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        *times
            .entry(e["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let repeated: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.len() <= 1 && repeated.iter().all(|(_, n)| **n == 2),
        "repeated deliveries: {repeated:?}"
    );
    assert_eq!(
        recv.most_in_flight(),
        1,
        "one delivery at a time per stream"
    );
    assert_eq!(recv.bad_signatures(), 0);
    // The lease (2.5 s) bounds the pause: well under the 60 s waited above.
    assert!(took_over < Duration::from_secs(30), "took {took_over:?}");
    running.stop().await;
}

/// A token revoked through node A's admin API is refused by node B within one second.
#[tokio::test]
async fn a_token_revoked_on_one_node_is_refused_by_the_other_within_a_second() {
    let a = TestServer::start().await;
    let b = a.another_node(&[]).await;
    let key = a.admin_key();
    b.get("/Users").await.expect(200); // B has the token in its cache
    let tokens = a
        .admin_get(&key, &format!("/tenants/{}/tokens", a.tenant))
        .await;
    let prefix = tokens["tokens"]
        .as_array()
        .or_else(|| tokens.as_array())
        .and_then(|v| v.first())
        .and_then(|t| t["prefix"].as_str())
        .unwrap_or_else(|| panic!("a token prefix in {tokens}"))
        .to_owned();
    assert!(a.token.starts_with(&prefix));
    let revoked = a
        .admin(
            &key,
            Method::DELETE,
            &format!("/tenants/{}/tokens/{prefix}", a.tenant),
            None,
        )
        .await;
    revoked.expect(204);
    let t0 = Instant::now();
    loop {
        let r = b.get("/Users").await;
        if r.status == 401 {
            break;
        }
        r.expect(200);
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "node B still accepts the revoked token after {:?}",
            t0.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `kill -9` of a node under concurrent creates: every create it acknowledged (201) is in the
/// database afterwards, with its event, as another node sees it; the feed has no gap.
#[tokio::test]
async fn kill_9_under_write_load_loses_no_acknowledged_write() {
    let mut a = TestServer::start().await;
    let key = a.admin_key();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..6 {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let (url, token) = (a.url("/Users"), a.token.clone());
        let (acked, stop) = (acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            // Bounded: the node dies within seconds; 2,000 creates per writer at most.
            while !stop.load(Ordering::SeqCst) && i < 2000 {
                i += 1;
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&user_body(&format!("load{w}_{i}")))
                    .send()
                    .await;
                let Ok(r) = r else { break };
                if r.status().as_u16() == 201 {
                    let v: Value = match r.json().await {
                        Ok(v) => v,
                        Err(_) => break,
                    };
                    acked
                        .lock()
                        .unwrap()
                        .push(v["id"].as_str().unwrap().to_owned());
                }
            }
        }));
    }
    // Let the load run, then kill the node in the middle of it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 150 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.kill();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 150,
        "only {} creates before the kill",
        acked.len()
    );

    let b = a.another_node(&[]).await;
    let events = b.feed(&key, 0).await;
    assert_eq!(
        seqs(&events),
        (1..=events.len() as i64).collect::<Vec<_>>(),
        "the feed has no gap"
    );
    let created: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["type"] == "user.created")
        .filter_map(|e| e["data"]["user"]["id"].as_str())
        .collect();
    for id in &acked {
        assert!(
            created.contains(id.as_str()),
            "no user.created event for acknowledged {id}"
        );
    }
    // And each acknowledged user is there (a sample, to bound the test's time).
    for id in acked.iter().step_by(10) {
        b.get(&format!("/Users/{id}")).await.expect(200);
    }
}

/// The console's post, redirect, get across a load balancer: the token regenerated by a POST to
/// node A is shown once by the GET that reaches node B, and works there.
#[tokio::test]
async fn a_console_token_is_shown_once_on_whichever_node_the_get_reaches() {
    use crate::console::{csrf_of, get, http, scim_user, set_cookie, sign_in_key, token_now};
    let a = TestServer::start().await;
    let b = a.another_node(&[]).await;
    let key = a.admin_key();
    let jar = set_cookie(&sign_in_key(&a.origin, &key).await).unwrap();
    let page = get(&a.origin, "/console/t/acme", &jar)
        .await
        .text()
        .await
        .unwrap();
    let r = http()
        .post(format!("{}/console/t/acme/scim/regenerate", a.origin))
        .header("cookie", &jar)
        .header("origin", &a.origin)
        .form(&[("csrf", csrf_of(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    let to = to.split('#').next().unwrap();
    let shown = get(&b.origin, to, &jar).await.text().await.unwrap();
    let token = token_now(&shown);
    let r = scim_user(&b, &b.base, &token, "from-b").await;
    assert_eq!(r.status().as_u16(), 201);
    let again = get(&a.origin, to, &jar).await.text().await.unwrap();
    assert!(!again.contains("id=\"new-token\""));
}
