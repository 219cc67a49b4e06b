//! The administrative CLI, run against the database of a running server.

use serde_json::Value;

use crate::auth::eventually;
use crate::harness::TestServer;

fn prefix_of(token: &str) -> String {
    token.rsplit_once('_').unwrap().0.to_owned()
}

#[tokio::test]
async fn tenant_create_json_has_exactly_four_fields() {
    let s = TestServer::start().await;
    let t = s.create_tenant("Globex Corporation");
    let obj = t.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["expires_at", "scim_base_url", "tenant", "token"]);
    assert_eq!(t["tenant"], "globex-corporation");
    assert_eq!(
        t["scim_base_url"],
        format!("{}/scim/v2/globex-corporation", s.origin)
    );
    assert!(t["token"].as_str().unwrap().starts_with("rsct_"));
    assert!(t["expires_at"].as_str().is_some_and(|e| !e.is_empty()));
    // The printed base URL works with the printed token.
    let r = s
        .send(
            s.client
                .get(format!("{}/Users", t["scim_base_url"].as_str().unwrap()))
                .bearer_auth(t["token"].as_str().unwrap()),
        )
        .await;
    r.expect(200);
}

#[tokio::test]
async fn tenant_list_shows_tenants() {
    let s = TestServer::start().await;
    s.create_tenant("Initech");
    let text = s.cli_ok(&["tenant", "list"]);
    assert!(text.contains("acme"), "{text}");
    assert!(text.contains("initech"), "{text}");
    assert!(text.contains("Initech"), "{text}");
    let json: Value = serde_json::from_str(s.cli_ok(&["tenant", "list", "--json"]).trim()).unwrap();
    let ids: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"acme") && ids.contains(&"initech"), "{json}");
}

#[tokio::test]
async fn duplicate_tenant_fails_with_a_message() {
    let s = TestServer::start().await;
    let out = s.cli(&["tenant", "create", "ACME", "--json"]);
    assert!(!out.status.success(), "duplicate tenant create succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already exists"), "stderr: {err}");
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
}

#[tokio::test]
async fn token_list_shows_metadata_never_the_secret() {
    // Last use is written in the background; often here.
    let s = TestServer::start_with(&["--token-use-flush-ms", "50"]).await;
    let before = s.cli_ok(&["token", "list", "acme"]);
    let prefix = prefix_of(&s.token);
    assert!(before.contains(&prefix), "{before}");
    for col in ["PREFIX", "CREATED", "EXPIRES", "LAST USED"] {
        assert!(before.contains(col), "missing column {col}: {before}");
    }
    assert!(
        before.contains("never"),
        "unused token shows never: {before}"
    );
    assert!(!before.contains(&s.token), "token list shows the secret");
    // Use the token; last used appears once the server has written it.
    s.get("/Users").await.expect(200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let json = loop {
        let json: Value =
            serde_json::from_str(s.cli_ok(&["token", "list", "acme", "--json"]).trim()).unwrap();
        if json[0]["last_used_at"].is_string() || std::time::Instant::now() > deadline {
            break json;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    let t = &json.as_array().unwrap()[0];
    assert_eq!(t["prefix"], prefix.as_str());
    assert!(t["created_at"].is_string());
    assert!(t["expires_at"].is_string());
    assert!(
        t["last_used_at"].is_string(),
        "last_used_at after a request: {t}"
    );
    let all =
        s.cli_ok(&["token", "list", "acme", "--json"]) + &s.cli_ok(&["token", "list", "acme"]);
    assert!(!all.contains(&s.token));
    let secret = s.token.rsplit('_').next().unwrap();
    assert!(!all.contains(secret));
    // Unknown tenant: non-zero.
    assert!(!s.cli(&["token", "list", "nope"]).status.success());
}

#[tokio::test]
async fn rotate_issues_a_working_token_and_kills_the_old_one() {
    let s = TestServer::start().await;
    s.get("/Users").await.expect(200);
    let t = s.rotate("acme", &[]);
    let new = t["token"].as_str().unwrap();
    assert_ne!(new, s.token);
    assert_eq!(t["tenant"], "acme");
    assert_eq!(t["scim_base_url"], s.base.as_str());
    // Old token refused within a second (the server caches tokens; this is another process),
    // new accepted, while the server keeps running.
    eventually(
        "the old token refused",
        || s.get("/Users"),
        |r| r.status == 401,
    )
    .await
    .expect_error(401, None);
    let r = s.send(s.client.get(s.url("/Users")).bearer_auth(new)).await;
    r.expect(200);
    let list = s.cli_ok(&["token", "list", "acme"]);
    assert!(list.contains("revoked"), "{list}");
    assert!(list.contains(&prefix_of(new)), "{list}");
    assert!(!list.contains(new));
}

#[tokio::test]
async fn revoke_by_prefix() {
    let s = TestServer::start().await;
    let out = s.cli_ok(&["token", "revoke", "acme", &prefix_of(&s.token)]);
    assert!(out.contains("revoked"), "{out}");
    eventually(
        "the revoked token refused",
        || s.get("/Users"),
        |r| r.status == 401,
    )
    .await
    .expect_error(401, None);
    // Revoking again or an unknown prefix: non-zero exit with a message.
    let again = s.cli(&["token", "revoke", "acme", "rsct_zzzzzzzz"]);
    assert!(!again.status.success());
    assert!(!again.stderr.is_empty());
}

#[tokio::test]
async fn rotate_with_zero_days_gives_an_expired_token() {
    let s = TestServer::start().await;
    let t = s.rotate("acme", &["--expires-in-days", "0"]);
    let token = t["token"].as_str().unwrap();
    let r = s
        .send(s.client.get(s.url("/Users")).bearer_auth(token))
        .await;
    r.expect_error(401, None);
    let list = s.cli_ok(&["token", "list", "acme"]);
    assert!(list.contains("expired"), "{list}");
}
