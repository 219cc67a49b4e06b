//! `/metrics` and `/readyz` (issue 12): requests by tenant, route and status, 429s per limit,
//! database pools, webhook lag per endpoint; an admin key on the public address, none on the
//! `--admin-listen` one.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::TestServer;

/// The `--admin-listen` address the server logged.
async fn ops_origin(s: &TestServer) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = s.stderr();
        if let Some(rest) = log.split("ops_addr=").nth(1) {
            let addr: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect();
            return format!("http://{addr}");
        }
        assert!(Instant::now() < deadline, "no ops_addr in the log:\n{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scrape(s: &TestServer, url: &str, key: Option<&str>) -> (u16, String, String) {
    let mut rb = s.client.get(url);
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

fn value_of(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_limits_pools_and_webhook_lag() {
    let s = TestServer::start_with(&[
        "--admin-listen",
        "127.0.0.1:0",
        "--rate-limit-per-token",
        "3/min:3",
    ])
    .await;
    let key = s.admin_key();
    let o = s.origin.clone();
    // A webhook whose receiver is not there: its stream falls behind the user created next.
    let out = s.cli_ok(&["webhook", "add", "http://127.0.0.1:9/hook", "--json"]);
    let hook: Value = serde_json::from_str(out.trim()).unwrap();
    let id = hook["id"].as_str().unwrap().to_owned();
    s.create_user(&crate::harness::user_body("lagging")).await;
    for _ in 0..2 {
        s.get("/Users").await.expect(200);
    }
    s.get("/Users").await.expect(429);

    let (status, _, _) = scrape(&s, &format!("{o}/metrics"), None).await;
    assert_eq!(status, 401, "the public /metrics needs an admin key");
    let (status, ct, body) = scrape(&s, &format!("{o}/metrics"), Some(&key)).await;
    assert_eq!(status, 200, "{body}");
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert_eq!(
        value_of(
            &body,
            "roster_http_requests_total{tenant=\"acme\",method=\"GET\",route=\"/scim/v2/{tenant}/Users\",status=\"200\"}"
        ),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        value_of(&body, "roster_rate_limited_total{limit=\"scim_token\"}"),
        Some(1.0),
        "{body}"
    );
    assert!(
        body.contains("roster_http_request_duration_seconds_bucket{"),
        "{body}"
    );
    assert!(
        value_of(&body, "roster_db_pool_connections{pool=\"read\"}")
            .or_else(|| value_of(&body, "roster_db_pool_connections{pool=\"main\"}"))
            .is_some_and(|n| n >= 1.0),
        "{body}"
    );
    assert!(body.contains("roster_provisioning_log_queue "), "{body}");
    assert!(body.trim_end().ends_with("# EOF"));

    // The webhook's stream: the tenant's events it has not delivered.
    let series = format!("roster_webhook_lag_events{{webhook=\"{id}\",tenant=\"acme\"}}");
    let ops = ops_origin(&s).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = scrape(&s, &format!("{ops}/metrics"), None).await;
        assert_eq!(status, 200, "no key on the admin address");
        if value_of(&body, &series).is_some_and(|n| n >= 1.0) {
            assert!(value_of(&body, "roster_outbox_undelivered_events").is_some_and(|n| n >= 1.0));
            break;
        }
        assert!(Instant::now() < deadline, "no webhook lag in:\n{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for base in [&o, &ops] {
        let r = s.client.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let r = s.client.get(format!("{ops}/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // The admin address serves nothing else.
    let r = s
        .client
        .get(format!("{ops}/api/v1/tenants"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
