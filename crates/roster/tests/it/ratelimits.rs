//! Rate limits against the real binary: 429 with `Retry-After` and a SCIM error body per
//! token and per tenant (the tenant's own setting included), per source address and tenant for
//! refused tokens (a valid token is never refused for others' failures), on the admin API,
//! through a trusted proxy, and the cap on candidates evaluated in memory.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{user_body, Resp, TestServer};

fn assert_429(r: &Resp, detail: &str) {
    assert_eq!(r.status, 429, "{}", r.text);
    let secs: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!(secs >= 1, "{secs}");
    // SCIM requests get a SCIM error; the admin API its own shape.
    let text = r.json["detail"]
        .as_str()
        .or_else(|| r.json["error"]["message"].as_str())
        .unwrap_or_default();
    assert!(text.contains(detail), "{}", r.text);
    assert!(text.contains("retry after"), "{}", r.text);
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429_and_other_tenants_are_served() {
    let s = TestServer::start_with(&["--rate-limit-per-token", "5/min:5"]).await;
    let other = s.create_tenant("other shop");
    for _ in 0..5 {
        s.get("/Users").await.expect(200);
    }
    let r = s.get("/Users").await;
    assert_429(&r, "for this token");
    assert_eq!(r.json["status"], "429", "{}", r.text);
    assert_eq!(
        r.json["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    // Another tenant's token has its own budget.
    let rb = s
        .client
        .get(format!(
            "{}/Users",
            other["scim_base_url"].as_str().unwrap()
        ))
        .bearer_auth(other["token"].as_str().unwrap());
    s.send(rb).await.expect(200);
}

#[tokio::test]
async fn a_tenants_own_rate_limit_applies_and_null_restores_the_servers() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let path = format!("/tenants/{}/settings", s.tenant);
    let r = s
        .admin(
            &key,
            Method::PATCH,
            &path,
            Some(json!({"rate_limit": {"per_tenant": "3/min:3"}})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["rate_limit"]["per_tenant"], "3/min:3", "{}", r.text);
    // Checked when saved.
    let r = s
        .admin(
            &key,
            Method::PATCH,
            &path,
            Some(json!({"rate_limit": {"per_token": "fast"}})),
        )
        .await;
    r.expect(400);
    assert!(
        r.text.contains("settings.rate_limit.per_token"),
        "{}",
        r.text
    );
    // The settings change reaches the authentication cache within its sync interval.
    let mut refused = None;
    for _ in 0..20 {
        let r = s.get("/Users").await;
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        r.expect(200);
    }
    assert_429(
        &refused.expect("a 429 within 20 requests"),
        "for this organisation",
    );
    let r = s
        .admin(
            &key,
            Method::PATCH,
            &path,
            Some(json!({"rate_limit": null})),
        )
        .await;
    r.expect(200);
    assert_eq!(
        r.json["rate_limit"],
        json!({"per_token": null, "per_tenant": null})
    );
}

#[tokio::test]
async fn refused_tokens_are_limited_per_address_and_tenant_and_never_slow_a_valid_token() {
    let s = TestServer::start_with(&["--rate-limit-auth-failures", "5/min:5"]).await;
    let other = s.create_tenant("other shop");
    let bad = |base: &str| {
        s.client
            .get(format!("{base}/Users"))
            .bearer_auth("rsct_AAAAAAAA_not-a-real-token")
    };
    for _ in 0..5 {
        s.send(bad(&s.base)).await.expect(401);
    }
    let r = s.send(bad(&s.base)).await;
    assert_429(&r, "with a refused token from this address");
    // The tenant's valid token, from the same address, is served.
    s.get("/Users").await.expect(200);
    // Another tenant behind the same address (identity providers share addresses) is not
    // slowed by the first tenant's stale token.
    let other_base = other["scim_base_url"].as_str().unwrap();
    s.send(bad(other_base)).await.expect(401);
    // Unknown paths are authenticated first too: no route is revealed.
    let r = s
        .send(s.client.get(format!("{other_base}/NoSuchThing")))
        .await;
    r.expect(401);
    s.get("/NoSuchThing").await.expect(404);
    let r = s
        .send(
            s.client
                .request(Method::DELETE, format!("{other_base}/Users")),
        )
        .await;
    r.expect(401);
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_a_trusted_proxy() {
    let s = TestServer::start_with(&[
        "--rate-limit-auth-failures",
        "3/min:3",
        "--trusted-proxy",
        "127.0.0.1/32",
    ])
    .await;
    let bad = |from: &str| {
        s.client
            .get(format!("{}/Users", s.base))
            .bearer_auth("rsct_AAAAAAAA_not-a-real-token")
            .header("x-forwarded-for", from)
    };
    for _ in 0..3 {
        s.send(bad("198.51.100.1")).await.expect(401);
    }
    assert_429(&s.send(bad("198.51.100.1")).await, "refused token");
    // Another client behind the same proxy has its own budget.
    s.send(bad("198.51.100.2")).await.expect(401);

    // Without --trusted-proxy the header is the client's word, and ignored.
    let s = TestServer::start_with(&["--rate-limit-auth-failures", "3/min:3"]).await;
    for i in 0..3 {
        s.send(bad_from(&s, &format!("198.51.100.{i}")))
            .await
            .expect(401);
    }
    assert_429(&s.send(bad_from(&s, "198.51.100.9")).await, "refused token");
}

fn bad_from(s: &TestServer, from: &str) -> reqwest::RequestBuilder {
    s.client
        .get(format!("{}/Users", s.base))
        .bearer_auth("rsct_AAAAAAAA_not-a-real-token")
        .header("x-forwarded-for", from)
}

#[tokio::test]
async fn the_admin_api_limits_keys_and_refused_keys() {
    let s = TestServer::start_with(&[
        "--rate-limit-auth-failures",
        "4/min:4",
        "--rate-limit-admin-key",
        "6/min:6",
    ])
    .await;
    let key = s.admin_key();
    for _ in 0..4 {
        s.admin("rsak_AAAAAAAA_wrong", Method::GET, "/tenants", None)
            .await
            .expect(401);
    }
    let r = s
        .admin("rsak_AAAAAAAA_wrong", Method::GET, "/tenants", None)
        .await;
    assert_429(&r, "refused admin key");
    assert_eq!(r.json["error"]["code"], "rate_limited", "{}", r.text);
    // The live key is still served, until its own budget is spent.
    for _ in 0..6 {
        s.admin(&key, Method::GET, "/tenants", None)
            .await
            .expect(200);
    }
    assert_429(
        &s.admin(&key, Method::GET, "/tenants", None).await,
        "for this admin key",
    );
}

#[tokio::test]
async fn filters_that_would_evaluate_too_many_users_in_memory_are_refused() {
    let s = TestServer::start_with(&["--max-filter-candidates", "3"]).await;
    for i in 0..5 {
        let mut u = user_body(&format!("user{i}"));
        u["title"] = json!(if i == 2 { "Boss" } else { "Dev" });
        s.create_user(&u).await;
    }
    let r = s.get_q("/Users", &[("filter", "title eq \"Boss\"")]).await;
    r.expect_error(400, Some("tooMany"));
    let detail = r.json["detail"].as_str().unwrap();
    assert!(detail.contains("evaluating 5 resources"), "{detail}");
    assert!(detail.contains("userName"), "{detail}");
    // Narrowed by an indexed attribute, the same condition is answered.
    let list: Value = s
        .filter("/Users", "userName sw \"user2\" and title eq \"Boss\"")
        .await;
    assert_eq!(list["totalResults"], 1);
    // Sorting on an attribute without a column is evaluated in memory too.
    let r = s.get_q("/Users", &[("sortBy", "title")]).await;
    r.expect_error(400, Some("tooMany"));
    // Indexed filters and sorts are not capped.
    let r = s.get_q("/Users", &[("sortBy", "userName")]).await;
    r.expect(200);
    assert_eq!(r.json["totalResults"], 5);
}
