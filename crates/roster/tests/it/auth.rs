//! Bearer-token authentication: every refusal is a 401 with `WWW-Authenticate: Bearer` and a
//! SCIM error body.

use reqwest::Method;

use crate::harness::{Resp, TestServer};

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
    let wrong_secret = format!("Bearer {}x", &s.token[..s.token.len() - 1]);
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
    s.cli_ok(&["token", "revoke", "acme", &prefix]);
    assert_401(&s.get("/Users").await);
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
