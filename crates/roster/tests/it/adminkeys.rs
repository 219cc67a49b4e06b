//! Least-privilege and expiring admin keys (issue 12): a key limited to scopes is refused
//! (403) outside them, an expired key is refused like a revoked one, a key about to expire is
//! announced once, and only a key without scopes signs in to the console.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::TestServer;

fn create_key(s: &TestServer, args: &[&str]) -> Value {
    let mut all = vec!["admin-key", "create", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(s.cli_ok(&all).trim()).unwrap()
}

#[tokio::test]
async fn scoped_keys_do_only_what_their_scopes_allow() {
    let s = TestServer::start().await;
    let t = s.tenant.clone();
    let login = create_key(&s, &["--scope", "login-decision", "--name", "sign-in path"]);
    let login = login["key"].as_str().unwrap().to_owned();
    let r = s
        .admin(
            &login,
            Method::POST,
            &format!("/tenants/{t}/login-decision"),
            Some(json!({"email": "nobody@example.com"})),
        )
        .await;
    r.expect(200);
    // The sign-in key cannot delete tenants, read the feed or list users.
    for (method, path) in [
        (Method::DELETE, format!("/tenants/{t}")),
        (Method::GET, format!("/tenants/{t}/events")),
        (Method::GET, format!("/tenants/{t}/users")),
        (Method::GET, "/webhooks".to_owned()),
    ] {
        let r = s.admin(&login, method.clone(), &path, None).await;
        r.expect(403);
        assert_eq!(
            r.json["error"]["code"], "forbidden",
            "{method} {path}: {}",
            r.text
        );
        assert!(r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--scope"));
    }
    // users:write includes reading users, not the feed; events:read reads the feed only.
    let writer = create_key(&s, &["--scope", "users:write,events:read"]);
    let writer = writer["key"].as_str().unwrap();
    s.admin(writer, Method::GET, &format!("/tenants/{t}/users"), None)
        .await
        .expect(200);
    s.admin(writer, Method::GET, &format!("/tenants/{t}/events"), None)
        .await
        .expect(200);
    s.admin(writer, Method::GET, &format!("/tenants/{t}/tokens"), None)
        .await
        .expect(403);
    // /metrics needs metrics:read.
    let r = s
        .client
        .get(format!("{}/metrics", s.origin))
        .bearer_auth(writer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let metrics = create_key(&s, &["--scope", "metrics:read"]);
    let r = s
        .client
        .get(format!("{}/metrics", s.origin))
        .bearer_auth(metrics["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Unknown scopes and out-of-range expiries are refused by the CLI.
    for bad in [
        &["admin-key", "create", "--scope", "everything"][..],
        &["admin-key", "create", "--expires-in-days", "3651"],
        &["admin-key", "create", "--expires-in-days", "-1"],
    ] {
        let out = s.cli(bad);
        assert!(!out.status.success(), "{bad:?}");
    }
    let list: Value =
        serde_json::from_str(s.cli_ok(&["admin-key", "list", "--json"]).trim()).unwrap();
    let scoped = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "sign-in path")
        .unwrap();
    assert_eq!(scoped["scopes"], json!(["login-decision"]));
    assert_eq!(scoped["expires_at"], Value::Null);

    // Only a key without scopes signs in to the console.
    let html = s
        .client
        .get(format!("{}/console/sign-in", s.origin))
        .send()
        .await
        .unwrap();
    let cookie = html.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = html.text().await.unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .unwrap()
        .to_owned();
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/console/sign-in/key", s.origin))
        .header("cookie", cookie)
        .form(&[("key", login.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.text().await.unwrap().contains("without scopes"));

    // Operators see every key's scopes and state in the console (never the key).
    let full = s.admin_key();
    let html = s
        .client
        .get(format!("{}/console/sign-in", s.origin))
        .send()
        .await
        .unwrap();
    let cookie = html.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = html.text().await.unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .unwrap()
        .to_owned();
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let r = no_redirect
        .post(format!("{}/console/sign-in/key", s.origin))
        .header("cookie", cookie)
        .form(&[("key", full.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let session = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = no_redirect
        .get(format!("{}/console/tenants", s.origin))
        .header("cookie", session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let keys = page
        .split("id=\"admin-keys\"")
        .nth(1)
        .expect("the keys table");
    assert!(
        keys.contains("sign-in path") && keys.contains("login-decision"),
        "{keys}"
    );
    assert!(keys.contains("all (console sign-in too)"), "{keys}");
    assert!(!page.contains(&login), "a key was shown");
}

#[tokio::test]
async fn expired_keys_are_refused_and_expiring_ones_announced_once() {
    let s = TestServer::start_with(&["--token-check-interval-ms", "100"]).await;
    let full = s.admin_key();
    let expired = create_key(&s, &["--expires-in-days", "0"]);
    let r = s
        .admin(
            expired["key"].as_str().unwrap(),
            Method::GET,
            "/tenants",
            None,
        )
        .await;
    r.expect(401);
    assert!(r.text.contains("unexpired"), "{}", r.text);
    let soon = create_key(&s, &["--expires-in-days", "3", "--name", "rotate me"]);
    let prefix = soon["prefix"].as_str().unwrap().to_owned();
    assert!(soon["expires_at"].as_str().unwrap().starts_with("20"));
    s.admin(soon["key"].as_str().unwrap(), Method::GET, "/tenants", None)
        .await
        .expect(200);
    // Announced in the audit log, once, and in the server log by prefix only.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let audit = s.admin(&full, Method::GET, "/audit-log", None).await;
        let n = audit.json["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "admin_key.expiring" && e["target"] == prefix.as_str())
            .count();
        if n > 0 {
            assert_eq!(n, 1, "{}", audit.text);
            break;
        }
        assert!(Instant::now() < deadline, "{}", audit.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let audit = s.admin(&full, Method::GET, "/audit-log", None).await;
    let n = audit.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "admin_key.expiring")
        .count();
    assert_eq!(n, 1, "announced once: {}", audit.text);
    let log = s.stderr();
    assert!(log.contains("an admin key expires soon"), "{log}");
    assert!(
        !log.contains(soon["key"].as_str().unwrap()),
        "the key itself was logged"
    );
}
