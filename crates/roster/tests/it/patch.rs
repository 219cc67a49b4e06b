//! PATCH over HTTP (RFC 7644 §3.5.2).

use serde_json::{json, Value};

use crate::harness::{full_user, user_body, without_meta, TestServer, PATCH_URN};

async fn setup(s: &TestServer) -> String {
    let u = s.create_user(&full_user("patchy", None)).await;
    format!("/Users/{}", u["id"].as_str().unwrap())
}

fn emails(v: &Value) -> Vec<Value> {
    v["emails"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn add_replace_remove_with_path() {
    let s = TestServer::start().await;
    let p = setup(&s).await;
    let r = s
        .patch_ops(&p, json!([
            {"op": "replace", "path": "title", "value": "Chief"},
            {"op": "add", "path": "nickName", "value": "B"},
            {"op": "remove", "path": "preferredLanguage"},
            {"op": "replace", "path": "name.givenName", "value": "Barb"},
            {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter", "value": "9999"}
        ]))
        .await;
    r.expect(200);
    assert_eq!(r.json["title"], "Chief");
    assert_eq!(r.json["nickName"], "B");
    assert!(r.json.get("preferredLanguage").is_none());
    assert_eq!(r.json["name"]["givenName"], "Barb");
    assert_eq!(r.json["name"]["familyName"], "Jensen");
    assert_eq!(
        r.json["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["costCenter"],
        "9999"
    );
    let got = s.get(&p).await;
    assert_eq!(without_meta(&got.json), without_meta(&r.json));
    // Attribute names are case-insensitive.
    let r = s
        .patch_ops(
            &p,
            json!([{"op": "replace", "path": "TITLE", "value": "Lower"}]),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["title"], "Lower");
}

#[tokio::test]
async fn add_and_replace_without_path() {
    let s = TestServer::start().await;
    let p = setup(&s).await;
    let r = s
        .patch_ops(&p, json!([
            {"op": "replace", "value": {"title": "NoPath", "name": {"givenName": "G"}, "active": false}},
            {"op": "add", "value": {"emails": [{"value": "third@example.com", "type": "other"}]}}
        ]))
        .await;
    r.expect(200);
    assert_eq!(r.json["title"], "NoPath");
    assert_eq!(r.json["name"]["givenName"], "G");
    assert_eq!(
        r.json["name"]["familyName"], "Jensen",
        "replace without path merges"
    );
    assert_eq!(r.json["active"], false);
    assert_eq!(emails(&r.json).len(), 3);
}

#[tokio::test]
async fn value_filter_paths() {
    let s = TestServer::start().await;
    let p = setup(&s).await;
    let r = s
        .patch_ops(&p, json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}]))
        .await;
    r.expect(200);
    let e = emails(&r.json);
    assert_eq!(e.len(), 2);
    let work: Vec<&Value> = e.iter().filter(|e| e["type"] == "work").collect();
    assert_eq!(work.len(), 1);
    assert_eq!(work[0]["value"], "new@example.com");
    assert_eq!(work[0]["primary"], true, "other sub-attributes kept");
    let r = s
        .patch_ops(
            &p,
            json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
        )
        .await;
    r.expect(200);
    assert_eq!(emails(&r.json).len(), 1);
    assert_eq!(emails(&r.json)[0]["type"], "work");
    let r = s
        .patch_ops(
            &p,
            json!([{"op": "remove", "path": "phoneNumbers[type eq \"mobile\"].value"}]),
        )
        .await;
    r.expect(200);
}

#[tokio::test]
async fn multi_valued_add_does_not_duplicate() {
    let s = TestServer::start().await;
    let p = setup(&s).await;
    let before = emails(&s.get(&p).await.json);
    let again = before[1].clone();
    let r = s
        .patch_ops(
            &p,
            json!([{"op": "add", "path": "emails", "value": [again]}]),
        )
        .await;
    r.expect(200);
    assert_eq!(emails(&r.json).len(), before.len(), "{}", r.text);
    let r = s
        .patch_ops(&p, json!([{"op": "add", "path": "emails", "value": [{"value": "x@example.net", "type": "other"}]}]))
        .await;
    r.expect(200);
    assert_eq!(emails(&r.json).len(), before.len() + 1);
}

#[tokio::test]
async fn primary_is_unique() {
    let s = TestServer::start().await;
    let p = setup(&s).await;
    let r = s
        .patch_ops(
            &p,
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
        )
        .await;
    r.expect(200);
    let e = emails(&r.json);
    let primaries: Vec<&Value> = e.iter().filter(|e| e["primary"] == true).collect();
    assert_eq!(primaries.len(), 1, "{e:?}");
    assert_eq!(primaries[0]["type"], "home");
    // Adding a new primary email also demotes the old one.
    let r = s
        .patch_ops(&p, json!([{"op": "add", "path": "emails", "value": [{"value": "p@example.com", "type": "other", "primary": true}]}]))
        .await;
    r.expect(200);
    let e = emails(&r.json);
    let primaries: Vec<&Value> = e.iter().filter(|e| e["primary"] == true).collect();
    assert_eq!(primaries.len(), 1, "{e:?}");
    assert_eq!(primaries[0]["value"], "p@example.com");
    // Two primaries in one POST are refused or normalised to one.
    let mut body = user_body("twoprim");
    body["emails"] = json!([
        {"value": "a@example.com", "primary": true},
        {"value": "b@example.com", "primary": true}
    ]);
    let r = s.post("/Users", &body).await;
    if r.status == 201 {
        let n = emails(&r.json)
            .iter()
            .filter(|e| e["primary"] == true)
            .count();
        assert!(n <= 1, "{}", r.text);
    } else {
        r.expect_error(400, None);
    }
}

#[tokio::test]
async fn patch_is_atomic() {
    let s = TestServer::start().await;
    let p = setup(&s).await;
    let before = s.get(&p).await;
    let r = s
        .patch_ops(
            &p,
            json!([
                {"op": "replace", "path": "title", "value": "Changed"},
                {"op": "replace", "path": "active", "value": 42}
            ]),
        )
        .await;
    r.expect_error(400, Some("invalidValue"));
    let after = s.get(&p).await;
    assert_eq!(
        after.json, before.json,
        "a failed PATCH changed the resource"
    );
    assert_eq!(
        after.json["meta"]["version"],
        before.json["meta"]["version"]
    );
    assert_eq!(after.header("etag"), before.header("etag"));
}

#[tokio::test]
async fn patch_errors() {
    let s = TestServer::start().await;
    let p = setup(&s).await;
    let before = s.get(&p).await.json;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "name..givenName", "value": "x"}]),
            "invalidPath",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "replace", "path": "emails[type eq \"pager\"].value", "value": "x"}]),
            "noTarget",
        ),
        (
            json!([{"op": "replace", "path": "active", "value": 1}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "active", "value": "yes please"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "id", "value": "new-id"}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "groups", "value": [{"value": "g"}]}]),
            "mutability",
        ),
        (
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
            "mutability",
        ),
    ];
    for (ops, kind) in cases {
        let r = s.patch_ops(&p, ops.clone()).await;
        assert_eq!(r.status, 400, "{ops}: {}", r.text);
        r.expect_error(400, Some(kind));
    }
    // Malformed PatchOp messages. (Operations without `schemas` are absorbed by the dialect
    // rule `patchop-schemas-missing`: see `idp::draft_urns_scim_11_and_patches_without_schemas`.)
    for body in [
        json!({"schemas": ["urn:example:not-patchop"], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}),
        json!({"schemas": [PATCH_URN]}),
        json!({"schemas": [PATCH_URN], "Operations": "replace"}),
        json!({"schemas": [PATCH_URN], "Operations": [{"op": "frobnicate", "path": "title", "value": "x"}]}),
        json!({"schemas": [PATCH_URN], "Operations": [{"path": "title", "value": "x"}]}),
        json!({"schemas": [PATCH_URN], "Operations": [{"op": "add", "path": "title"}]}),
    ] {
        let r = s.patch(&p, &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        crate::harness::assert_scim_error_body(&r);
    }
    assert_eq!(
        s.get(&p).await.json,
        before,
        "failed PATCHes changed the resource"
    );
}

#[tokio::test]
async fn patch_answers_200_with_the_resource_and_404_for_unknown_id() {
    let s = TestServer::start().await;
    let p = setup(&s).await;
    let r = s
        .patch_ops(
            &p,
            json!([{"op": "replace", "path": "title", "value": "T"}]),
        )
        .await;
    r.expect(200);
    assert!(
        r.json["id"].is_string() && r.json["meta"].is_object() && r.json["userName"] == "patchy"
    );
    assert_eq!(r.header("etag"), r.json["meta"]["version"].as_str());
    let r = s
        .patch_ops(
            "/Users/does-not-exist",
            json!([{"op": "replace", "path": "title", "value": "T"}]),
        )
        .await;
    r.expect_error(404, None);
}
