//! Health, graceful shutdown and request logging.

use std::time::Duration;

use serde_json::json;

use crate::harness::{strip_ansi, user_body, TestServer, SCIM_JSON};

#[tokio::test]
async fn healthz_is_200() {
    let s = TestServer::start().await;
    let r = s.send(s.client.get(format!("{}/healthz", s.origin))).await;
    r.expect(200);
}

#[tokio::test]
async fn sigterm_exits_zero() {
    let mut s = TestServer::start().await;
    s.get("/Users").await.expect(200);
    let status = s.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish() {
    let mut s = TestServer::start().await;
    let body = serde_json::to_vec(&user_body("slowpoke")).unwrap();
    let (first, rest) = body.split_at(5);
    let (first, rest) = (first.to_vec(), rest.to_vec());
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let stream = futures::stream::unfold(
        (Some(first), Some(rest), Some(started_tx), Some(go_rx)),
        |(first, rest, started, go)| async move {
            if let Some(f) = first {
                return Some((
                    Ok::<_, std::io::Error>(bytes::Bytes::from(f)),
                    (None, rest, started, go),
                ));
            }
            if let Some(tx) = started {
                let _ = tx.send(());
            }
            if let Some(rx) = go {
                let _ = rx.await;
            }
            rest.map(|r| (Ok(bytes::Bytes::from(r)), (None, None, None, None)))
        },
    );
    let rb = s
        .request(reqwest::Method::POST, "/Users")
        .header("content-type", SCIM_JSON)
        .body(reqwest::Body::wrap_stream(stream));
    let req = tokio::spawn(rb.send());
    // The first chunk is on its way: the request is in flight.
    tokio::time::timeout(Duration::from_secs(20), started_rx)
        .await
        .expect("body streaming started")
        .unwrap();
    // Give the server a moment to have the connection accepted and the request started.
    s.get("/ServiceProviderConfig").await.expect(200);
    let pid = s.pid();
    let ok = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(ok.success());
    // Wait until the server has seen the signal (it logs it) before finishing the body.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !s.stderr().contains("shutdown signal") {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never logged the shutdown signal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    go_tx.send(()).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), req)
        .await
        .expect("in-flight request finished")
        .unwrap()
        .expect("in-flight request got a response");
    assert_eq!(resp.status().as_u16(), 201);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["userName"], json!("slowpoke"));
    let status = s.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[tokio::test]
async fn one_log_line_per_request_without_the_token() {
    let s = TestServer::start().await;
    s.get("/Users/no-such-user-abc").await.expect(404);
    s.get("/ServiceProviderConfig").await.expect(200);
    s.post("/Users", &user_body("loggy")).await.expect(201);
    // A token in a query string or wrong header must not leak into logs either.
    let r = s
        .send(
            s.client
                .get(format!("{}/Users", s.base))
                .header("authorization", format!("Basic {}", s.token)),
        )
        .await;
    r.expect(401);
    let log = strip_ansi(&s.stderr());
    let lines_with = |needle: &str| log.lines().filter(|l| has_word(l, needle)).count();
    let user_404 = log
        .lines()
        .filter(|l| l.contains("/Users/no-such-user-abc") && has_word(l, "404"))
        .count();
    assert_eq!(
        user_404, 1,
        "exactly one log line for the 404 request:\n{log}"
    );
    let spc = log
        .lines()
        .filter(|l| l.contains("/ServiceProviderConfig") && has_word(l, "200"))
        .count();
    assert_eq!(
        spc, 1,
        "exactly one log line for the discovery request:\n{log}"
    );
    let created = log
        .lines()
        .filter(|l| l.contains("/Users") && has_word(l, "201"))
        .count();
    assert_eq!(created, 1, "exactly one log line for the POST:\n{log}");
    assert!(lines_with("401") >= 1, "the 401 is logged:\n{log}");
    assert!(
        !log.contains(&s.token),
        "the token appears in stderr:\n{log}"
    );
    // Secret part alone must not appear either.
    let secret = s.token.rsplit('_').next().unwrap();
    assert!(!log.contains(secret), "the token secret appears in stderr");
}

/// Whether `word` occurs in `line` delimited by non-alphanumeric characters.
fn has_word(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[tokio::test]
async fn json_log_format_has_one_line_per_request() {
    let s = TestServer::start_with(&["--log-format", "json"]).await;
    s.get("/Users/json-log-probe").await.expect(404);
    let log = s.stderr();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.contains("/Users/json-log-probe"))
        .map(|l| serde_json::from_str(l).expect("each log line is JSON"))
        .collect();
    let finished: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v.to_string().contains("404"))
        .collect();
    assert_eq!(finished.len(), 1, "{log}");
    assert!(!log.contains(&s.token));
}
