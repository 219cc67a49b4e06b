//! Cookies and hosts (issue 12): the `Host` header is never echoed into URLs, `serve` refuses
//! to listen beyond loopback without `--public-url`, and console cookies are `Secure` unless
//! the server runs for local development.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{bin, user_body, TestServer};

#[tokio::test]
async fn the_host_header_is_never_echoed() {
    let s = TestServer::start().await;
    let r = s
        .send(
            s.request(reqwest::Method::POST, "/Users")
                .header("host", "evil.example")
                .header("content-type", "application/scim+json")
                .body(user_body("host-test").to_string()),
        )
        .await;
    r.expect(201);
    let location = r.header("location").unwrap().to_owned();
    assert!(location.starts_with(&s.origin), "{location}");
    assert!(!r.text.contains("evil.example"), "{}", r.text);
    assert!(r.json["meta"]["location"]
        .as_str()
        .unwrap()
        .starts_with(&s.origin));
    // The setup link an operator creates, too.
    let key = s.admin_key();
    let r = s
        .send(
            s.client
                .post(format!(
                    "{}/api/v1/tenants/{}/setup-link",
                    s.origin, s.tenant
                ))
                .bearer_auth(&key)
                .header("host", "evil.example")
                .json(&serde_json::json!({})),
        )
        .await;
    r.expect(201);
    assert!(
        r.json["url"].as_str().unwrap().starts_with(&s.origin),
        "{}",
        r.text
    );
}

fn check_config(toml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roster.toml");
    std::fs::write(&path, toml).unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["check-config", "--config"])
        .arg(&path)
        .current_dir(dir.path())
        .stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("ROSTER_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn listening_beyond_loopback_needs_a_public_url() {
    let (ok, err) = check_config("listen = \"0.0.0.0:8080\"\n");
    assert!(!ok);
    assert!(err.contains("needs --public-url"), "{err}");
    let (ok, err) =
        check_config("listen = \"0.0.0.0:8080\"\npublic_url = \"https://scim.example.com\"\n");
    assert!(ok, "{err}");
    let (ok, err) = check_config("listen = \"127.0.0.1:8080\"\n");
    assert!(ok, "{err}");
    let (ok, err) = check_config("rate_limit_per_token = \"fast\"\n");
    assert!(!ok);
    assert!(err.contains("rate_limit_per_token"), "{err}");
    let (ok, err) = check_config("trusted_proxy = [\"10.0.0.0/33\"]\n");
    assert!(!ok);
    assert!(err.contains("trusted_proxy"), "{err}");
}

async fn sign_in_cookie(s: &TestServer) -> String {
    let r = s
        .client
        .get(format!("{}/console/sign-in", s.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.headers()["set-cookie"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn console_cookies_are_secure_unless_run_for_local_development() {
    let https = TestServer::start_with(&["--public-url", "https://scim.example.com"]).await;
    let cookie = sign_in_cookie(&https).await;
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));

    // A non-TLS public URL beyond loopback still gets Secure cookies (the console then
    // works only behind TLS), unless --insecure-dev says this is a developer's machine.
    let plain = TestServer::start_with(&["--public-url", "http://scim.example.com"]).await;
    assert!(sign_in_cookie(&plain).await.contains("; Secure"));
    let dev =
        TestServer::start_with(&["--public-url", "http://scim.example.com", "--insecure-dev"])
            .await;
    assert!(!sign_in_cookie(&dev).await.contains("Secure"));

    // Served on loopback only (no public URL): local development by construction.
    let local = TestServer::start().await;
    assert!(!sign_in_cookie(&local).await.contains("Secure"));
    let v: Value = local.get("/ServiceProviderConfig").await.json;
    assert!(v["meta"]["location"]
        .as_str()
        .unwrap()
        .starts_with(&local.origin));
}

/// Every number of `serve` is range-checked wherever it is set: flags, variables and the
/// configuration file (issue 12).
#[test]
fn serve_numbers_are_range_checked_in_every_layer() {
    for (toml, name) in [
        (
            "max_connections = 0\n",
            "max_connections must be 1–1000000, not 0",
        ),
        (
            "log_retention_days = 0\n",
            "log_retention_days must be 1–3650",
        ),
        (
            "header_read_timeout_ms = 99999999\n",
            "header_read_timeout_ms must be",
        ),
        (
            "webhook_retry_horizon_secs = 0\n",
            "webhook_retry_horizon_secs must be",
        ),
        (
            "max_filter_candidates = 0\n",
            "max_filter_candidates must be",
        ),
    ] {
        let (ok, err) = check_config(toml);
        assert!(!ok, "{toml}");
        assert!(err.contains(name), "{toml}: {err}");
    }
    let (ok, err) = check_config("max_connections = 64\nlog_retention_days = 30\n");
    assert!(ok, "{err}");
}
