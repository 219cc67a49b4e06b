//! Error responses: unknown paths and ids, body limits, malformed input. Never a 5xx, never a
//! non-SCIM body.

use reqwest::Method;
use serde_json::json;

use crate::harness::{assert_scim_error_body, user_body, TestServer, SCIM_JSON, USER_URN};

#[tokio::test]
async fn unknown_path_and_id_are_scim_404() {
    let s = TestServer::start().await;
    s.get("/Widgets").await.expect_error(404, None);
    s.get("/Users/x/y").await.expect_error(404, None);
    s.get("/Users/00000000-0000-0000-0000-000000000000")
        .await
        .expect_error(404, None);
    s.get("/Groups/nope").await.expect_error(404, None);
    s.delete("/Users/nope").await.expect_error(404, None);
    s.put("/Users/nope", &user_body("x"))
        .await
        .expect_error(404, None);
    // Outside the SCIM base URL too.
    let r = s.send(s.client.get(format!("{}/nowhere", s.origin))).await;
    r.expect(404);
    assert_scim_error_body(&r);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let s = TestServer::start().await;
    let mut body = user_body("big");
    body["displayName"] = json!("x".repeat(1024 * 1024 + 10));
    let r = s.post("/Users", &body).await;
    r.expect_error(413, None);
    // Just under the limit is fine (as far as size goes).
    let mut body = user_body("notbig");
    body["nickName"] = json!("y".repeat(1024 * 1024 - 200));
    let r = s.post("/Users", &body).await;
    r.expect(201);
}

#[tokio::test]
async fn indexed_values_have_a_bound() {
    // userName, externalId, displayName and emails are index keys on every backend; a value
    // longer than an index key may be is a clear 400, not a database error.
    let s = TestServer::start().await;
    let mut body = user_body("long");
    body["displayName"] = json!("x".repeat(1025));
    let r = s.post("/Users", &body).await;
    r.expect_error(400, Some("invalidValue"));
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("displayName is 1025 bytes long"),
        "{}",
        r.text
    );
    body["displayName"] = json!("x".repeat(1024));
    s.post("/Users", &body).await.expect(201);
    let r = s.post("/Users", &user_body(&"u".repeat(2000))).await;
    r.expect_error(400, Some("invalidValue"));
    let mut body = user_body("mail");
    body["emails"] = json!([{"value": format!("{}@example.com", "m".repeat(1100))}]);
    s.post("/Users", &body)
        .await
        .expect_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn invalid_json_is_invalid_syntax() {
    let s = TestServer::start().await;
    for body in ["{", "{\"userName\": }", "not json", "{\"a\":1}}"] {
        let r = s
            .send(
                s.request(Method::POST, "/Users")
                    .header("content-type", SCIM_JSON)
                    .body(body.to_owned()),
            )
            .await;
        r.expect_error(400, Some("invalidSyntax"));
    }
}

#[tokio::test]
async fn malformed_requests_never_500() {
    let s = TestServer::start().await;
    let uid = s.user("victim").await;
    let g = s.create_group("victims", &[&uid]).await;
    let gid = g["id"].as_str().unwrap().to_owned();
    let up = format!("/Users/{uid}");
    let gp = format!("/Groups/{gid}");
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let deep_obj = format!(
        "{{\"schemas\":[\"{USER_URN}\"],\"userName\":\"d\",\"name\":{}1{}}}",
        "{\"a\":".repeat(3000),
        "}".repeat(3000)
    );
    let cases: Vec<(Method, String, Option<String>)> = vec![
        (Method::POST, "/Users".into(), Some(String::new())),
        (Method::POST, "/Users".into(), Some("[]".into())),
        (Method::POST, "/Users".into(), Some("[{\"userName\":\"a\"}]".into())),
        (Method::POST, "/Users".into(), Some("null".into())),
        (Method::POST, "/Users".into(), Some("42".into())),
        (Method::POST, "/Users".into(), Some("\"str\"".into())),
        (Method::POST, "/Users".into(), Some(deep.clone())),
        (Method::POST, "/Users".into(), Some(deep_obj)),
        (Method::POST, "/Users".into(), Some(json!({"schemas": [USER_URN], "userName": 12}).to_string())),
        (Method::POST, "/Users".into(), Some(json!({"schemas": [USER_URN], "userName": ["a"]}).to_string())),
        (Method::POST, "/Users".into(), Some(json!({"schemas": [USER_URN], "userName": {"a": 1}}).to_string())),
        (Method::POST, "/Users".into(), Some(json!({"schemas": "nope", "userName": "a"}).to_string())),
        (Method::POST, "/Users".into(), Some(json!({"schemas": [1, 2], "userName": "a"}).to_string())),
        (Method::POST, "/Users".into(), Some(json!({"userName": "noschemas"}).to_string())),
        (Method::POST, "/Users".into(), Some(json!({"schemas": [USER_URN], "userName": "a", "emails": "a@b.c"}).to_string())),
        (Method::POST, "/Users".into(), Some(json!({"schemas": [USER_URN], "userName": "a", "emails": [1, 2]}).to_string())),
        (Method::POST, "/Users".into(), Some(json!({"schemas": [USER_URN], "userName": "a", "name": "Bob"}).to_string())),
        (Method::POST, "/Users".into(), Some(json!({"schemas": [USER_URN], "userName": "a", "active": "maybe"}).to_string())),
        (Method::POST, "/Users".into(), Some(format!("{{\"schemas\":[\"{USER_URN}\"],\"userName\":\"a\",\"active\":1e400}}"))),
        (Method::POST, "/Users".into(), Some(format!("{{\"schemas\":[\"{USER_URN}\"],\"userName\":\"a\",\"title\":123456789012345678901234567890}}"))),
        (Method::POST, "/Users".into(), Some(json!({"schemas": [USER_URN], "userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": "x"}).to_string())),
        (Method::POST, "/Users".into(), Some(json!({"schemas": [USER_URN], "userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": "x"}}).to_string())),
        (Method::POST, "/Users".into(), Some("{\"userName\":\"\\ud800\"}".into())),
        (Method::POST, "/Groups".into(), Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g", "members": "all"}).to_string())),
        (Method::POST, "/Groups".into(), Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g", "members": [{"value": 7}]}).to_string())),
        (Method::POST, "/Groups".into(), Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": 5}).to_string())),
        (Method::PUT, up.clone(), Some("[]".into())),
        (Method::PUT, up.clone(), Some(json!({"schemas": [USER_URN]}).to_string())),
        (Method::PUT, gp.clone(), Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g", "members": [null]}).to_string())),
        (Method::PATCH, up.clone(), Some("[]".into())),
        (Method::PATCH, up.clone(), Some(String::new())),
        (Method::PATCH, up.clone(), Some(json!({"schemas": [crate::harness::PATCH_URN], "Operations": [null]}).to_string())),
        (Method::PATCH, up.clone(), Some(json!({"schemas": [crate::harness::PATCH_URN], "Operations": [{"op": 1, "path": 2, "value": 3}]}).to_string())),
        (Method::PATCH, up.clone(), Some(json!({"schemas": [crate::harness::PATCH_URN], "Operations": [{"op": "add", "path": "emails[value eq \"x\"].", "value": 3}]}).to_string())),
        (Method::PATCH, up.clone(), Some(json!({"schemas": [crate::harness::PATCH_URN], "Operations": [{"op": "add", "path": "name.givenName.x", "value": "a"}]}).to_string())),
        (Method::PATCH, up.clone(), Some(json!({"schemas": [crate::harness::PATCH_URN], "Operations": [{"op": "replace", "value": [1, 2]}]}).to_string())),
        (Method::PATCH, gp.clone(), Some(json!({"schemas": [crate::harness::PATCH_URN], "Operations": [{"op": "add", "path": "members", "value": "x"}]}).to_string())),
        (Method::PATCH, gp.clone(), Some(json!({"schemas": [crate::harness::PATCH_URN], "Operations": [{"op": "remove", "path": "members[type eq \"User\" and bogus pr]"}]}).to_string())),
        (Method::POST, "/Users/.search".into(), Some(json!({"schemas": [crate::harness::SEARCH_URN], "count": "ten"}).to_string())),
        (Method::POST, "/Users/.search".into(), Some(json!({"schemas": [crate::harness::SEARCH_URN], "filter": 5}).to_string())),
        (Method::POST, "/Users/.search".into(), Some(json!({"schemas": [crate::harness::SEARCH_URN], "startIndex": 1e300}).to_string())),
        (Method::POST, "/Users/.search".into(), Some(json!({"schemas": [crate::harness::SEARCH_URN], "count": -1, "startIndex": -9_223_372_036_854_775_807_i64}).to_string())),
        (Method::POST, "/.search".into(), Some(json!({"schemas": [crate::harness::SEARCH_URN], "cursor": ""}).to_string())),
        (Method::POST, "/.search".into(), Some(json!({"schemas": [crate::harness::SEARCH_URN], "filter": "nope eq 1"}).to_string())),
        (Method::GET, "/Users?count=abc".into(), None),
        (Method::GET, "/Users?startIndex=99999999999999999999999".into(), None),
        (Method::GET, "/Users?startIndex=9223372036854775807&count=9223372036854775807".into(), None),
        (Method::GET, "/Users?count=-9223372036854775808".into(), None),
        (Method::GET, "/Users?filter=%FF%FE".into(), None),
        (Method::GET, "/Users?filter=userName%20eq%20%22%FF%22".into(), None),
        (Method::GET, "/Users?%zz=1".into(), None),
        (Method::GET, "/Users?attributes=userName&excludedAttributes=emails".into(), None),
        (Method::GET, "/Users?sortBy=nope&sortOrder=descending".into(), None),
        (Method::GET, "/Users?filter=userName%20eq%20%22a%22%20and%20(".into(), None),
        (Method::GET, format!("/Users?filter={}", "(".repeat(5000)), None),
        (Method::GET, format!("/Users?filter={}", "not%20(".repeat(2000)), None),
        (Method::GET, "/Users?filter=meta.lastModified%20gt%20%22not-a-date%22".into(), None),
        (Method::GET, "/Users?filter=active%20gt%20%22x%22".into(), None),
        (Method::GET, "/Users?filter=emails%5Btype%20eq%20%22work%22%5D%5Bvalue%20pr%5D".into(), None),
        (Method::GET, "/Users?cursor=%00%01".into(), None),
        (Method::GET, "/Users/%FF%FE".into(), None),
        (Method::GET, format!("/Users/{}", "a".repeat(5000)), None),
        (Method::PUT, "/Users".into(), Some("{}".into())),
        (Method::DELETE, "/Users".into(), None),
        (Method::POST, up.clone(), Some("{}".into())),
        (Method::GET, "/Bulk".into(), None),
    ];
    let mut failures = Vec::new();
    for (method, path, body) in cases {
        let mut rb = s.request(method.clone(), &path);
        if let Some(b) = body {
            rb = rb.header("content-type", SCIM_JSON).body(b);
        }
        let r = s.send(rb).await;
        let scim_body = r
            .header("content-type")
            .is_some_and(|c| c.starts_with(SCIM_JSON))
            && r.json["schemas"] == json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
            && r.json["detail"].as_str().is_some_and(|d| !d.is_empty())
            && r.json["status"] == json!(r.status.to_string());
        let ok = if r.status < 300 {
            // A few of these may legitimately succeed (e.g. an unknown sortBy); they must then
            // answer JSON.
            r.json.is_object()
        } else {
            scim_body && r.status < 500
        };
        if !ok {
            let path_short: String = path.chars().take(80).collect();
            let text: String = r.text.chars().take(300).collect();
            failures.push(format!("{method} {path_short} -> {} {text}", r.status));
        }
    }
    // Whatever happened, the resources are intact and the server is alive.
    assert_eq!(s.get(&up).await.json["userName"], "victim");
    assert!(failures.is_empty(), "bad answers:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn unsupported_endpoints_and_methods() {
    let s = TestServer::start().await;
    let r = s.post("/Bulk", &json!({})).await;
    r.expect_error(400, Some("invalidSyntax"));
    let r = s.send(s.request(Method::GET, "/Bulk")).await;
    r.expect_error(405, None);
    let r = s.post("/Me", &json!({})).await;
    r.expect_error(501, None);
    assert_scim_error_body(&r);
    let r = s.send(s.request(Method::PUT, "/Users")).await;
    r.expect_error(405, None);
}

/// Unsupported endpoints check the token first: a caller without one learns nothing about the
/// routes (issue 12).
#[tokio::test]
async fn unsupported_endpoints_need_a_token_first() {
    let s = TestServer::start().await;
    for (path, with_token) in [("/Bulk", 400), ("/Me", 501)] {
        let r = s.send(s.client.post(s.url(path)).json(&json!({}))).await;
        r.expect_error(401, None);
        let r = s.send(s.client.get(s.url(path))).await;
        r.expect_error(401, None);
        let r = s.post(path, &json!({})).await;
        r.expect_error(with_token, None);
    }
}

/// A token lifetime beyond ten years is refused by the CLI before anything is written.
#[tokio::test]
async fn token_lifetimes_beyond_ten_years_are_refused() {
    let s = TestServer::start().await;
    for days in ["3651", "4294967295"] {
        let out = s.cli(&[
            "token",
            "rotate",
            "acme",
            "--expires-in-days",
            days,
            "--json",
        ]);
        assert!(!out.status.success(), "{days} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("expires-in-days"), "{days}: {err}");
    }
    // The tenant's token still works: nothing was rotated.
    s.get("/Users?count=1").await.expect(200);
}
