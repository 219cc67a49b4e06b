//! Limits for clients on the open internet: connections that send nothing, or trickle their
//! headers, are closed by the header-read deadline and cannot hold the connection slots that
//! other tenants need; a body that trickles gets a 408; every wait here is bounded.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::TestServer;

/// Reads until the server closes the connection (EOF or reset), or `within` passes: true when
/// the server closed it.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            // A 408 or other bytes before the close: keep reading until it closes.
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_and_others_are_served() {
    let s = TestServer::start_with(&[
        "--max-connections",
        "16",
        "--header-read-timeout-ms",
        "1000",
    ])
    .await;
    let other = s.create_tenant("other shop");
    let (base, token) = (
        other["scim_base_url"].as_str().unwrap().to_owned(),
        other["token"].as_str().unwrap().to_owned(),
    );
    let addr = s.origin.trim_start_matches("http://").to_owned();

    // 40 connections that send nothing: more than the server serves at once.
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    // 10 that send a request a byte every 200 ms, for at most 6 s.
    let mut slow = Vec::new();
    for _ in 0..10 {
        let addr = addr.clone();
        slow.push(tokio::spawn(async move {
            let mut c = TcpStream::connect(&addr).await.unwrap();
            let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            if c.write_all(head).await.is_err() {
                return true;
            }
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if c.write_all(b"a").await.is_err() {
                    return true;
                }
            }
            closed_by_server(&mut c, Duration::from_secs(1)).await
        }));
    }

    // Meanwhile the other tenant's identity provider is served: every request answered.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for i in 0..10 {
        let r = client
            .post(format!("{base}/Users"))
            .bearer_auth(&token)
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": format!("served{i}@example.com")
            }))
            .send()
            .await
            .expect("served despite the idle and slow connections");
        assert_eq!(r.status(), 201);
    }

    // Every idle and every slow connection was closed by the server.
    for (i, c) in idle.iter_mut().enumerate() {
        assert!(
            closed_by_server(c, Duration::from_secs(20)).await,
            "idle connection {i} still open"
        );
    }
    for (i, t) in slow.into_iter().enumerate() {
        assert!(t.await.unwrap(), "slow connection {i} still open");
    }
    // And the server still answers.
    s.get("/Users?count=1").await.expect(200);
}

#[tokio::test]
async fn a_body_that_trickles_gets_a_408() {
    let s = TestServer::start_with(&["--body-read-timeout-ms", "500"]).await;
    let addr = s.origin.trim_start_matches("http://").to_owned();
    let path = s.base.trim_start_matches(&s.origin).to_owned();
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {path}/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{{\"userName\"",
        s.token
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n")
                        && String::from_utf8_lossy(&answer).contains("\"status\"")
                    {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a trickling body");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("application/scim+json"), "{text}");
    assert!(text.contains("did not arrive within"), "{text}");
}
