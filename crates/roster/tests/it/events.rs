//! The outbox over HTTP: event types emitted by SCIM writes, the feed (long polling, gap-free
//! seq under concurrent writes), the snapshot, the admin API's authentication and errors, and
//! the audit log.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{user_body, Resp, TestServer, PATCH_URN, UNLIMITED};

impl TestServer {
    /// `roster admin-key create --json`: the key.
    pub fn admin_key(&self) -> String {
        let out = self.cli_ok(&["admin-key", "create", "--json"]);
        let v: Value = serde_json::from_str(out.trim()).expect("admin-key create --json");
        v["key"].as_str().expect("key").to_owned()
    }

    /// An admin API request (`path` under `/api/v1`) with `key`.
    pub async fn admin(&self, key: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut rb = self
            .client
            .request(method, format!("{}/api/v1{path}", self.origin))
            .bearer_auth(key);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(rb).await
    }

    /// GET under `/api/v1`, asserting 200.
    pub async fn admin_get(&self, key: &str, path: &str) -> Value {
        let r = self.admin(key, Method::GET, path, None).await;
        r.expect(200);
        r.json
    }

    /// Every event of the tenant from the feed, in order.
    pub async fn feed(&self, key: &str, after: i64) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = after;
        loop {
            let page = self
                .admin_get(
                    key,
                    &format!("/tenants/{}/events?after={after}&limit=1000", self.tenant),
                )
                .await;
            let events = page["events"].as_array().unwrap().clone();
            if events.is_empty() {
                return out;
            }
            after = page["next_after"].as_i64().unwrap();
            out.extend(events);
        }
    }
}

/// The `type`s of events.
pub fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// The `seq`s of events.
pub fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn scim_writes_emit_the_documented_events() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let start = s.feed(&key, 0).await;
    assert_eq!(
        types(&start),
        ["token.created"],
        "tenant create issues a token"
    );
    let after = seqs(&start)[0];

    let u = s.user("bjensen").await;
    let path = format!("/Users/{u}");
    s.patch_ops(
        &path,
        json!([{"op": "replace", "path": "title", "value": "Guide"},
               {"op": "replace", "path": "password", "value": "hunter2hunter2"}]),
    )
    .await
    .expect(200);
    s.patch_ops(
        &path,
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .expect(200);
    s.patch_ops(
        &path,
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await
    .expect(200);
    let g = s.create_group("Admins", &[&u]).await;
    let gid = g["id"].as_str().unwrap();
    s.patch_ops(
        &format!("/Groups/{gid}"),
        json!([{"op": "replace", "path": "displayName", "value": "Admins 2"}]),
    )
    .await
    .expect(200);
    s.delete(&path).await.expect(204);
    s.create_user(&user_body("BJensen")).await;
    s.delete(&format!("/Groups/{gid}")).await.expect(204);

    let events = s.feed(&key, after).await;
    assert_eq!(
        types(&events),
        [
            "user.created",
            "user.updated",
            "user.deactivated",
            "user.reactivated",
            "group.created",
            "group.members_added",
            "group.updated",
            "group.members_removed",
            "user.deprovisioned",
            "user.restored",
            "group.deleted"
        ]
    );
    assert_eq!(seqs(&events), (after + 1..=after + 11).collect::<Vec<_>>());
    let e = &events[1];
    assert_eq!(e["tenant"], "acme");
    assert!(e["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(e["occurred_at"].as_str().is_some());
    assert_eq!(e["data"]["user"]["id"], u.as_str());
    assert_eq!(
        e["data"]["changes"],
        json!([{"attribute": "title", "old": null, "new": "Guide"}, {"attribute": "password"}])
    );
    assert!(!e.to_string().contains("hunter2"), "never the password");
    assert_eq!(events[5]["data"]["members"], json!([u]));
    assert_eq!(
        events[9]["data"]["user"]["id"],
        u.as_str(),
        "restored keeps the id"
    );
}

#[tokio::test]
async fn adding_a_thousand_members_is_one_event() {
    let s = TestServer::start_with(UNLIMITED).await;
    let key = s.admin_key();
    let mut ids = Vec::new();
    for chunk in (0..1000).collect::<Vec<_>>().chunks(25) {
        let futs = chunk.iter().map(|i| s.user_id_of(format!("member{i:04}")));
        ids.extend(futures::future::join_all(futs).await);
    }
    let g = s.create_group("Everyone", &[]).await;
    let gid = g["id"].as_str().unwrap();
    let before = s.feed(&key, 0).await.len() as i64;
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    s.patch(
        &format!("/Groups/{gid}?excludedAttributes=members"),
        &json!({"schemas": [PATCH_URN], "Operations": [{"op": "add", "path": "members", "value": members}]}),
    )
    .await
    .expect(200);
    let events = s.feed(&key, before).await;
    assert_eq!(types(&events), ["group.members_added"]);
    assert_eq!(events[0]["data"]["members"].as_array().unwrap().len(), 1000);
}

impl TestServer {
    async fn user_id_of(&self, name: String) -> String {
        self.user(&name).await
    }
}

/// A task that long-polls `s`'s feed after seq `after`, `limit` events a page, until it has
/// seen `n` events (or a minute passed), and returns their seqs in the order seen.
pub fn long_poll_reader(
    s: &TestServer,
    key: &str,
    after: i64,
    n: i64,
    limit: u32,
) -> tokio::task::JoinHandle<Vec<i64>> {
    let client = s.client.clone();
    let url = format!("{}/api/v1/tenants/{}/events", s.origin, s.tenant);
    let key = key.to_owned();
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut after = after;
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.len() < usize::try_from(n).unwrap() && Instant::now() < deadline {
            let page: Value = client
                .get(&url)
                .bearer_auth(&key)
                .query(&[
                    ("after", after.to_string()),
                    ("wait", "5".into()),
                    ("limit", limit.to_string()),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for e in page["events"].as_array().unwrap() {
                seen.push(e["seq"].as_i64().unwrap());
            }
            after = page["next_after"].as_i64().unwrap();
        }
        seen
    })
}

#[tokio::test]
async fn concurrent_writes_give_a_gap_free_feed_and_a_long_polling_reader_never_skips() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let start = s.feed(&key, 0).await.len() as i64;
    let n = 20i64;
    // A reader long-polls from the start while the writes commit.
    let reader = long_poll_reader(&s, &key, start, n, 3);
    let bodies: Vec<Value> = (0..n).map(|i| user_body(&format!("parallel{i}"))).collect();
    let creates = bodies.iter().map(|b| s.post("/Users", b));
    for r in futures::future::join_all(creates).await {
        r.expect(201);
    }
    let seen = tokio::time::timeout(Duration::from_secs(90), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, (start + 1..=start + n).collect::<Vec<_>>());
    let all = s.feed(&key, 0).await;
    assert_eq!(seqs(&all), (1..=start + n).collect::<Vec<_>>());
    let ids: BTreeSet<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), all.len());
}

#[tokio::test]
async fn long_poll_returns_when_an_event_commits_and_times_out_empty() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let last = s.feed(&key, 0).await.len();
    let t0 = Instant::now();
    let empty = s
        .admin_get(&key, &format!("/tenants/acme/events?after={last}&wait=1"))
        .await;
    assert!(t0.elapsed() >= Duration::from_millis(900));
    assert_eq!(empty["events"], json!([]));
    assert_eq!(empty["next_after"], last);
    let poll_path = format!("/tenants/acme/events?after={last}&wait=20");
    let poll = s.admin(&key, Method::GET, &poll_path, None);
    let write = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.user("late").await
    };
    let t0 = Instant::now();
    let (r, _) = tokio::join!(poll, write);
    r.expect(200);
    assert_eq!(
        types(r.json["events"].as_array().unwrap()),
        ["user.created"]
    );
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "woken by the commit"
    );
    let bad = s
        .admin(&key, Method::GET, "/tenants/acme/events?wait=31", None)
        .await;
    bad.expect(400);
    assert_eq!(bad.json["error"]["code"], "invalid_request");
}

#[tokio::test]
async fn snapshot_reflects_its_seq_and_the_feed_continues_from_it() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let a = s.user("alice").await;
    let b = s.user("bob").await;
    s.create_group("Team", &[&a, &b]).await;
    s.delete(&format!("/Users/{b}")).await.expect(204);
    let snap = s.admin_get(&key, "/tenants/acme/snapshot").await;
    let last = s.feed(&key, 0).await;
    assert_eq!(snap["seq"], *seqs(&last).last().unwrap());
    let users: Vec<&str> = snap["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["alice"]);
    assert_eq!(snap["groups"][0]["members"], json!([{"value": a}]));
    s.user("carol").await;
    let more = s
        .admin_get(&key, &format!("/tenants/acme/events?after={}", snap["seq"]))
        .await;
    assert_eq!(types(more["events"].as_array().unwrap()), ["user.created"]);
}

#[tokio::test]
async fn admin_api_needs_a_live_key_answers_json_errors_and_serves_openapi() {
    let s = TestServer::start().await;
    let spec = s
        .send(s.client.get(format!("{}/api/v1/openapi.json", s.origin)))
        .await;
    spec.expect(200);
    assert_eq!(spec.json["openapi"], "3.1.0");

    let none = s
        .send(s.client.get(format!("{}/api/v1/webhooks", s.origin)))
        .await;
    none.expect(401);
    assert_eq!(none.json["error"]["code"], "unauthorized");
    // A SCIM token is not an admin key.
    let scim = s.admin(&s.token, Method::GET, "/webhooks", None).await;
    scim.expect(401);

    let key = s.admin_key();
    s.admin(&key, Method::GET, "/webhooks", None)
        .await
        .expect(200);
    let missing = s
        .admin(&key, Method::GET, "/tenants/nope/events", None)
        .await;
    missing.expect(404);
    assert_eq!(missing.json["error"]["code"], "not_found");
    let unknown = s.admin(&key, Method::GET, "/nothing-here", None).await;
    unknown.expect(404);
    assert!(unknown.json["error"]["message"].is_string());

    let listed = s.cli_ok(&["admin-key", "list", "--json"]);
    let prefix = key.rsplit_once('_').unwrap().0;
    assert!(listed.contains(prefix), "{listed}");
    assert!(!listed.contains(&key), "the key itself is never listed");
    s.cli_ok(&["admin-key", "revoke", prefix]);
    // Another process's revocation reaches the server's key cache within a second.
    crate::auth::eventually(
        "the revoked key refused",
        || s.admin(&key, Method::GET, "/webhooks", None),
        |r| r.status == 401,
    )
    .await
    .expect(401);
}

#[tokio::test]
async fn audit_log_records_admin_actions_and_is_read_only() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let created = s
        .admin(
            &key,
            Method::POST,
            "/webhooks",
            Some(json!({"url": "http://127.0.0.1:9/hook", "tenant": "acme"})),
        )
        .await;
    created.expect(201);
    let id = created.json["id"].as_str().unwrap().to_owned();
    s.rotate("acme", &[]);
    let log = s.admin_get(&key, "/audit-log").await;
    let entries = log["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // Newest first.
    assert_eq!(
        actions,
        [
            "token.rotate",
            "webhook.create",
            "admin_key.create",
            "tenant.create"
        ]
    );
    let prefix = key.rsplit_once('_').unwrap().0;
    assert_eq!(entries[1]["actor"], format!("admin-key:{prefix}"));
    assert_eq!(entries[1]["target"], id.as_str());
    assert!(entries[2]["actor"].as_str().unwrap().starts_with("cli:"));
    assert_eq!(entries[2]["target"], prefix);
    assert!(
        !log.to_string()
            .contains(created.json["secret"].as_str().unwrap()),
        "no secret in the audit log"
    );
    // Append-only: no method changes it.
    for m in [Method::POST, Method::DELETE, Method::PUT] {
        let r = s.admin(&key, m, "/audit-log", Some(json!({}))).await;
        r.expect(405);
    }
}

#[tokio::test]
async fn cli_prints_events_as_json_lines() {
    let s = TestServer::start().await;
    s.user("alice").await;
    let out = s.cli_ok(&["events", "acme", "--after", "1"]);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(types(&lines), ["user.created"]);
    assert_eq!(lines[0]["seq"], 2);
    let missing = s.cli(&["events", "nope"]);
    assert!(!missing.status.success());
}
