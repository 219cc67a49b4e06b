//! Bearer-token authentication: every refusal is a 401 with `WWW-Authenticate: Bearer` and a
//! SCIM error body. Tokens, tenants and admin keys are cached in memory: a change made through
//! the server is refused at once, a change made by another process (the CLI) within about a
//! second, and a request never writes `last_used_at` itself.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Resp, TestServer};

/// How long a change made by another process may take to reach the server, in a test: the
/// promise is one second; the margin is for a loaded test machine.
const ELSEWHERE: Duration = Duration::from_secs(5);

/// Sends `probe` until its response satisfies `done`, for at most [`ELSEWHERE`]; returns that
/// response. For changes made by another process (the CLI), which reach the server's
/// authentication cache within about a second rather than at once.
#[track_caller]
pub fn eventually<'a, F, Fut>(
    what: &'a str,
    mut probe: F,
    done: impl Fn(&Resp) -> bool + 'a,
) -> impl Future<Output = Resp> + 'a
where
    F: FnMut() -> Fut + 'a,
    Fut: Future<Output = Resp> + 'a,
{
    let caller = std::panic::Location::caller();
    async move {
        let deadline = Instant::now() + ELSEWHERE;
        loop {
            let r = probe().await;
            if done(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "{caller}: {what}: not within {ELSEWHERE:?}; last response {} {}",
                r.status,
                r.text
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

#[track_caller]
fn assert_401(r: &Resp) {
    r.expect_error(401, None);
    let www = r.header("www-authenticate").unwrap_or_default();
    assert!(
        www.starts_with("Bearer"),
        "WWW-Authenticate must start with Bearer, got {www:?}"
    );
}

async fn with_auth(s: &TestServer, path: &str, auth: Option<&str>) -> Resp {
    let mut rb = s.client.request(Method::GET, s.url(path));
    if let Some(a) = auth {
        rb = rb.header("authorization", a);
    }
    s.send(rb).await
}

#[tokio::test]
async fn valid_token_is_accepted() {
    let s = TestServer::start().await;
    s.get("/Users").await.expect(200);
    let r = with_auth(&s, "/Users", Some(&format!("bearer {}", s.token))).await;
    r.expect(200);
}

#[tokio::test]
async fn missing_and_malformed_authorization_is_401() {
    let s = TestServer::start().await;
    for path in ["/Users", "/Groups", "/ServiceProviderConfig", "/Schemas"] {
        assert_401(&with_auth(&s, path, None).await);
    }
    let basic = format!("Basic {}", s.token);
    let unknown = "Bearer rsct_AbCd1234_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    // The last character changed (to one it is not: a token ending in `x` made this the real
    // token once in 62 runs).
    let last = if s.token.ends_with('x') { 'y' } else { 'x' };
    let wrong_secret = format!("Bearer {}{last}", &s.token[..s.token.len() - 1]);
    for auth in [
        "Basic x",
        basic.as_str(),
        "Bearer",
        "Bearer ",
        "Bearer x",
        "Bearer rsct_",
        unknown,
        wrong_secret.as_str(),
        &s.token,
    ] {
        let r = with_auth(&s, "/Users", Some(auth)).await;
        assert_401(&r);
    }
}

#[tokio::test]
async fn token_of_another_tenant_is_401() {
    let s = TestServer::start().await;
    let b = s.create_tenant("Beta Inc");
    assert_eq!(b["tenant"], "beta-inc");
    let b_base = b["scim_base_url"].as_str().unwrap();
    let b_token = b["token"].as_str().unwrap();
    // A's token at B's URL.
    let r = s
        .send(
            s.client
                .get(format!("{b_base}/Users"))
                .bearer_auth(&s.token),
        )
        .await;
    assert_401(&r);
    // B's token at A's URL.
    let r = s
        .send(s.client.get(s.url("/Users")).bearer_auth(b_token))
        .await;
    assert_401(&r);
    // Each at its own URL works.
    let r = s
        .send(s.client.get(format!("{b_base}/Users")).bearer_auth(b_token))
        .await;
    r.expect(200);
    // A tenant that does not exist gives the same 401 (no tenant enumeration).
    let r = s
        .send(
            s.client
                .get(format!("{}/scim/v2/nope/Users", s.origin))
                .bearer_auth(&s.token),
        )
        .await;
    assert_401(&r);
}

#[tokio::test]
async fn revoked_token_is_401() {
    let s = TestServer::start().await;
    s.get("/Users").await.expect(200);
    let prefix = s.token.rsplit_once('_').unwrap().0.to_owned();
    // Revoked by another process: refused within about a second.
    s.cli_ok(&["token", "revoke", "acme", &prefix]);
    let r = eventually(
        "the revoked token refused",
        || s.get("/Users"),
        |r| r.status == 401,
    )
    .await;
    assert_401(&r);
}

#[tokio::test]
async fn expired_token_is_401() {
    let s = TestServer::start().await;
    let t = s.rotate("acme", &["--expires-in-days", "0"]);
    let token = t["token"].as_str().unwrap();
    let r = s
        .send(s.client.get(s.url("/Users")).bearer_auth(token))
        .await;
    assert_401(&r);
}

#[tokio::test]
async fn users_written_under_one_tenant_are_invisible_to_another() {
    let s = TestServer::start().await;
    let id = s.user("isolated").await;
    let b = s.create_tenant("beta");
    let b_base = b["scim_base_url"].as_str().unwrap();
    let b_token = b["token"].as_str().unwrap();
    let r = s
        .send(
            s.client
                .get(format!("{b_base}/Users/{id}"))
                .bearer_auth(b_token),
        )
        .await;
    r.expect_error(404, None);
    let r = s
        .send(s.client.get(format!("{b_base}/Users")).bearer_auth(b_token))
        .await;
    r.expect(200);
    assert_eq!(r.json["totalResults"], 0);
    // The same userName can exist in both tenants.
    let r = s
        .send(
            s.client
                .post(format!("{b_base}/Users"))
                .bearer_auth(b_token)
                .json(&crate::harness::user_body("isolated")),
        )
        .await;
    r.expect(201);
    assert_ne!(r.json["id"].as_str().unwrap(), id);
}

fn prefix_of(token: &str) -> String {
    token.rsplit_once('_').unwrap().0.to_owned()
}

async fn get_with(s: &TestServer, token: &str) -> Resp {
    s.send(s.client.get(s.url("/Users")).bearer_auth(token))
        .await
}

#[tokio::test]
async fn revoked_through_the_api_is_refused_at_once() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    // Cached by these requests.
    s.get("/Users").await.expect(200);
    s.get("/Users").await.expect(200);
    let r = s
        .admin(
            &key,
            Method::DELETE,
            &format!("/tenants/acme/tokens/{}", prefix_of(&s.token)),
            None,
        )
        .await;
    r.expect(204);
    assert_401(&s.get("/Users").await);
}

#[tokio::test]
async fn rotated_through_the_api_the_old_token_is_refused_at_once() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    s.get("/Users").await.expect(200);
    let r = s
        .admin(&key, Method::POST, "/tenants/acme/tokens/rotate", None)
        .await;
    r.expect(200);
    let new = r.json["token"].as_str().unwrap().to_owned();
    assert_401(&s.get("/Users").await);
    get_with(&s, &new).await.expect(200);
}

#[tokio::test]
async fn disabled_or_deleted_through_the_api_is_refused_at_once() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    s.get("/Users").await.expect(200);
    let r = s
        .admin(
            &key,
            Method::POST,
            "/tenants/acme/scim/disable",
            Some(json!({"confirm": true})),
        )
        .await;
    r.expect(200);
    assert_401(&s.get("/Users").await);

    let r = s
        .admin(&key, Method::POST, "/tenants/acme/scim/enable", None)
        .await;
    r.expect(200);
    let token = r.json["token"].as_str().unwrap().to_owned();
    get_with(&s, &token).await.expect(200);
    // Groups turned off through the settings: the cached tenant's settings follow at once.
    s.get("/Groups").await.expect_error(401, None);
    let groups = s
        .send(s.client.get(s.url("/Groups")).bearer_auth(&token))
        .await;
    groups.expect(200);
    s.admin(
        &key,
        Method::PATCH,
        "/tenants/acme/settings",
        Some(json!({"groups_enabled": false})),
    )
    .await
    .expect(200);
    let groups = s
        .send(s.client.get(s.url("/Groups")).bearer_auth(&token))
        .await;
    groups.expect_error(404, None);

    s.admin(&key, Method::DELETE, "/tenants/acme?data=retain", None)
        .await
        .expect(204);
    assert_401(&get_with(&s, &token).await);
}

#[tokio::test]
async fn revoked_or_rotated_by_another_process_is_refused_within_a_second() {
    let s = TestServer::start().await;
    s.get("/Users").await.expect(200);
    // Rotation from the command line: the new token works at once (it was never cached), the
    // old one stops as soon as the server sees the change.
    let t = s.rotate("acme", &[]);
    let new = t["token"].as_str().unwrap().to_owned();
    get_with(&s, &new).await.expect(200);
    let r = eventually(
        "the rotated token refused",
        || s.get("/Users"),
        |r| r.status == 401,
    )
    .await;
    assert_401(&r);
    get_with(&s, &new).await.expect(200);

    // Disabling SCIM from the command line.
    s.cli_ok(&["scim", "disable", "acme", "--yes"]);
    let r = eventually(
        "the disabled tenant's token refused",
        || get_with(&s, &new),
        |r| r.status == 401,
    )
    .await;
    assert_401(&r);
}

#[tokio::test]
async fn a_revoked_admin_key_is_refused() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let other = s.admin_key();
    let login = || {
        s.admin(
            &key,
            Method::POST,
            "/tenants/acme/login-decision",
            Some(json!({"email": "nobody@example.com"})),
        )
    };
    login().await.expect(200);
    login().await.expect(200);
    // Admin keys are revoked from the command line only: another process.
    s.cli_ok(&["admin-key", "revoke", &prefix_of(&key)]);
    let r = eventually("the revoked admin key refused", login, |r| r.status == 401).await;
    r.expect(401);
    // The other key is unaffected.
    s.admin(&other, Method::GET, "/tenants", None)
        .await
        .expect(200);
}

/// `last_used_at` of a token, as the admin API lists it.
async fn last_used(s: &TestServer, key: &str, prefix: &str) -> Value {
    let list = s.admin_get(key, "/tenants/acme/tokens").await;
    list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["prefix"] == prefix)
        .unwrap()["last_used_at"]
        .clone()
}

#[tokio::test]
async fn last_use_is_written_in_the_background_and_on_shutdown() {
    // An hour between flushes: only the shutdown flush writes.
    let mut s = TestServer::start_with(&["--token-use-flush-ms", "3600000"]).await;
    let key = s.admin_key();
    let prefix = prefix_of(&s.token);
    s.get("/Users").await.expect(200);
    assert_eq!(
        last_used(&s, &key, &prefix).await,
        Value::Null,
        "a GET wrote last_used_at itself"
    );
    let status = s.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let list: Value =
        serde_json::from_str(s.cli_ok(&["token", "list", "acme", "--json"]).trim()).unwrap();
    let rec = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["prefix"] == prefix.as_str())
        .unwrap();
    assert!(
        rec["last_used_at"].is_string(),
        "not flushed on shutdown: {rec}"
    );
    let keys: Value =
        serde_json::from_str(s.cli_ok(&["admin-key", "list", "--json"]).trim()).unwrap();
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["prefix"] == prefix_of(&key).as_str() && k["last_used_at"].is_string()),
        "the admin key's use not flushed: {keys}"
    );
}

#[tokio::test]
async fn last_use_appears_after_the_flush_interval() {
    let s = TestServer::start_with(&["--token-use-flush-ms", "100"]).await;
    let key = s.admin_key();
    let prefix = prefix_of(&s.token);
    s.get("/Users").await.expect(200);
    let deadline = Instant::now() + ELSEWHERE;
    while last_used(&s, &key, &prefix).await.is_null() {
        assert!(Instant::now() < deadline, "last_used_at never written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
