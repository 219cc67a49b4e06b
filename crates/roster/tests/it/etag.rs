//! meta and ETags (RFC 7644 §3.14).

use reqwest::Method;
use serde_json::json;

use crate::harness::{group_body, user_body, TestServer, SCIM_JSON};

fn is_iso(s: &str) -> bool {
    s.len() >= 20
        && s.as_bytes()[4] == b'-'
        && s.as_bytes()[10] == b'T'
        && (s.ends_with('Z') || s.contains('+'))
}

#[tokio::test]
async fn meta_is_complete() {
    let s = TestServer::start().await;
    let r = s.post("/Users", &user_body("meta")).await;
    r.expect(201);
    let m = &r.json["meta"];
    assert_eq!(m["resourceType"], "User");
    assert!(is_iso(m["created"].as_str().unwrap()), "{m}");
    assert!(is_iso(m["lastModified"].as_str().unwrap()), "{m}");
    assert_eq!(m["created"], m["lastModified"]);
    let loc = m["location"].as_str().unwrap();
    assert!(loc.starts_with("http://127.0.0.1:"), "{loc}");
    assert_eq!(r.header("location"), Some(loc));
    assert!(m["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert_eq!(r.header("etag"), m["version"].as_str());
    let g = s.post("/Groups", &group_body("m", &[])).await;
    g.expect(201);
    assert_eq!(g.json["meta"]["resourceType"], "Group");
    assert_eq!(g.header("location"), g.json["meta"]["location"].as_str());
    assert_eq!(g.header("etag"), g.json["meta"]["version"].as_str());
}

#[tokio::test]
async fn etag_header_matches_version_everywhere() {
    let s = TestServer::start().await;
    let r = s.post("/Users", &user_body("et")).await;
    let id = r.json["id"].as_str().unwrap().to_owned();
    let p = format!("/Users/{id}");
    let v1 = r.json["meta"]["version"].as_str().unwrap().to_owned();
    let got = s.get(&p).await;
    assert_eq!(got.header("etag"), Some(v1.as_str()));
    assert_eq!(got.json["meta"]["version"], v1.as_str());
    let put = s
        .put(
            &p,
            &json!({"schemas": [crate::harness::USER_URN], "userName": "et", "title": "x"}),
        )
        .await;
    put.expect(200);
    let v2 = put.json["meta"]["version"].as_str().unwrap().to_owned();
    assert_ne!(v1, v2);
    assert_eq!(put.header("etag"), Some(v2.as_str()));
    let pat = s
        .patch_ops(
            &p,
            json!([{"op": "replace", "path": "title", "value": "y"}]),
        )
        .await;
    pat.expect(200);
    let v3 = pat.json["meta"]["version"].as_str().unwrap().to_owned();
    assert_ne!(v2, v3);
    assert_eq!(pat.header("etag"), Some(v3.as_str()));
    assert_eq!(s.get(&p).await.header("etag"), Some(v3.as_str()));
}

#[tokio::test]
async fn last_modified_changes_on_update() {
    let s = TestServer::start().await;
    let r = s.post("/Users", &user_body("lm")).await;
    let p = format!("/Users/{}", r.json["id"].as_str().unwrap());
    let created = r.json["meta"]["created"].as_str().unwrap().to_owned();
    let mut last = r.json["meta"]["lastModified"].as_str().unwrap().to_owned();
    let mut changed = false;
    // The clock has millisecond precision: update until it moves (bounded).
    for n in 0..200 {
        let pat = s
            .patch_ops(
                &p,
                json!([{"op": "replace", "path": "title", "value": format!("t{n}")}]),
            )
            .await;
        pat.expect(200);
        let lm = pat.json["meta"]["lastModified"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(lm >= last, "lastModified went backwards");
        assert_eq!(pat.json["meta"]["created"], created.as_str());
        if lm != last {
            changed = true;
            last = lm;
            break;
        }
    }
    assert!(changed, "lastModified never changed");
    assert_eq!(s.get(&p).await.json["meta"]["lastModified"], last.as_str());
}

#[tokio::test]
async fn if_match_and_if_none_match() {
    let s = TestServer::start().await;
    let r = s.post("/Users", &user_body("cond")).await;
    let p = format!("/Users/{}", r.json["id"].as_str().unwrap());
    let stale = r.header("etag").unwrap().to_owned();
    let pat = s
        .patch_ops(
            &p,
            json!([{"op": "replace", "path": "title", "value": "1"}]),
        )
        .await;
    let current = pat.header("etag").unwrap().to_owned();
    assert_ne!(stale, current);

    let patch_body = json!({"schemas": [crate::harness::PATCH_URN], "Operations": [{"op": "replace", "path": "title", "value": "2"}]}).to_string();
    let put_body = json!({"schemas": [crate::harness::USER_URN], "userName": "cond", "title": "3"})
        .to_string();
    let with = |m: Method, tag: &str, body: Option<&str>| {
        let mut rb = s.request(m, &p).header("if-match", tag);
        if let Some(b) = body {
            rb = rb.header("content-type", SCIM_JSON).body(b.to_owned());
        }
        rb
    };
    // Stale: 412 for PUT, PATCH and DELETE, nothing changes.
    s.send(with(Method::PUT, &stale, Some(&put_body)))
        .await
        .expect_error(412, None);
    s.send(with(Method::PATCH, &stale, Some(&patch_body)))
        .await
        .expect_error(412, None);
    s.send(with(Method::DELETE, &stale, None))
        .await
        .expect_error(412, None);
    let now = s.get(&p).await;
    assert_eq!(now.header("etag"), Some(current.as_str()));
    assert_eq!(now.json["title"], "1");

    // If-None-Match with the current tag: 304; with a stale one: 200.
    let r = s
        .send(s.request(Method::GET, &p).header("if-none-match", &current))
        .await;
    assert_eq!(r.status, 304);
    assert!(r.text.is_empty());
    let r = s
        .send(s.request(Method::GET, &p).header("if-none-match", &stale))
        .await;
    r.expect(200);

    // Current: success, in turn.
    let r = s
        .send(with(Method::PATCH, &current, Some(&patch_body)))
        .await;
    r.expect(200);
    assert_eq!(r.json["title"], "2");
    let current = r.header("etag").unwrap().to_owned();
    let r = s.send(with(Method::PUT, &current, Some(&put_body))).await;
    r.expect(200);
    assert_eq!(r.json["title"], "3");
    let current = r.header("etag").unwrap().to_owned();
    let put_body4 = put_body.replace("\"3\"", "\"4\"");
    let r = s.send(with(Method::PUT, "*", Some(&put_body4))).await;
    r.expect(200);
    assert_eq!(r.json["title"], "4");
    let current2 = r.header("etag").unwrap().to_owned();
    assert_ne!(current, current2);
    s.send(with(Method::DELETE, &current, None))
        .await
        .expect_error(412, None);
    s.send(with(Method::DELETE, &current2, None))
        .await
        .expect(204);
}
