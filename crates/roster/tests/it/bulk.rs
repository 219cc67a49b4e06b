//! `POST /Bulk` (RFC 7644 §3.7) against the real binary: bulkId references between operations
//! (forward ones too), `failOnErrors`, `maxOperations` (413), circular references (409), a
//! failing operation in the middle, `version` as If-Match, and each operation logged, evented
//! and authorised exactly as the same single request.

use reqwest::Method;
use serde_json::{json, Value};

use crate::events::types;
use crate::harness::{user_body, Resp, TestServer, USER_URN};

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

async fn bulk(s: &TestServer, body: Value) -> Resp {
    s.post("/Bulk", &body).await
}

fn statuses(r: &Resp) -> Vec<String> {
    r.json["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_group_references_users_created_in_the_same_request() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    // The group comes first and references users created after it: it runs after them.
    let r = bulk(
        &s,
        json!({"schemas": [BULK], "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "g",
             "data": {"schemas": [GROUP_URN], "displayName": "Tour Guides",
                      "members": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user_body("alice@example.com")},
            {"method": "POST", "path": "/Users", "bulkId": "u2", "data": user_body("bob@example.com")},
            {"method": "PATCH", "path": "/Users/bulkId:u2",
             "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "path": "active", "value": false}]}},
        ]}),
    )
    .await;
    r.expect(200);
    assert_eq!(
        r.json["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"])
    );
    let ops = r.json["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 4);
    let by = |b: &str| ops.iter().find(|o| o["bulkId"] == b).unwrap().clone();
    assert_eq!(by("u1")["status"], "201");
    assert_eq!(by("g")["status"], "201", "{}", r.json);
    assert!(by("u1")["location"].as_str().unwrap().contains("/Users/"));
    assert!(by("u1")["version"].as_str().unwrap().starts_with("W/"));
    let patch = ops.iter().find(|o| o["method"] == "PATCH").unwrap();
    assert_eq!(patch["status"], "200");

    // The group has both users as members, by their real ids.
    let group = s
        .get(
            by("g")["location"]
                .as_str()
                .unwrap()
                .split("/acme")
                .nth(1)
                .unwrap(),
        )
        .await;
    group.expect(200);
    let alice = by("u1")["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let members: Vec<&str> = group.json["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members.len(), 2);
    assert!(members.contains(&alice.as_str()));
    assert_eq!(s.get(&format!("/Users/{alice}")).await.json["active"], true);

    // Evented and logged as single requests would be: one user.created per user, the
    // deactivation, the group with its members; one log row per operation.
    let events = s.feed(&key, 0).await;
    let t = types(&events);
    assert_eq!(t.iter().filter(|t| **t == "user.created").count(), 2);
    assert!(t.contains(&"user.deactivated") && t.contains(&"group.created"));
    assert!(t.contains(&"group.members_added"));
    let log = s.provisioning(&key, "limit=100", 4).await;
    assert_eq!(log.len(), 4, "one row per operation: {log:?}");
    assert!(log
        .iter()
        .all(|r| r["path"].as_str().unwrap().starts_with("/scim/v2/acme/")));
    assert!(log
        .iter()
        .all(|r| r["request_id"].as_str().unwrap().contains('.')));
}

#[tokio::test]
async fn fail_on_errors_stops_after_the_failures_it_allows() {
    let s = TestServer::start().await;
    s.user("taken@example.com").await;
    let ops = json!([
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": user_body("a@example.com")},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": user_body("taken@example.com")},
        {"method": "DELETE", "path": "/Users/does-not-exist"},
        {"method": "POST", "path": "/Users", "bulkId": "c", "data": user_body("c@example.com")},
    ]);
    // Without failOnErrors every operation runs; the failures carry their SCIM error.
    let r = bulk(&s, json!({"schemas": [BULK], "Operations": ops.clone()})).await;
    r.expect(200);
    assert_eq!(statuses(&r), ["201", "409", "404", "201"]);
    let dup = &r.json["Operations"][1]["response"];
    assert_eq!(dup["scimType"], "uniqueness");
    assert_eq!(dup["status"], "409");

    // With failOnErrors 1 the first failure ends the request.
    let s = TestServer::start().await;
    s.user("taken@example.com").await;
    let r = bulk(
        &s,
        json!({"schemas": [BULK], "failOnErrors": 1, "Operations": ops}),
    )
    .await;
    r.expect(200);
    assert_eq!(statuses(&r), ["201", "409"]);
    let c = s.filter("/Users", "userName eq \"c@example.com\"").await;
    assert_eq!(c["totalResults"], 0, "not run after the stop");
}

#[tokio::test]
async fn limits_cycles_versions_and_malformed_requests() {
    let s = TestServer::start().await;
    // maxOperations: a 413 with a SCIM error that says what to do.
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"method": "DELETE", "path": format!("/Users/u{i}")}))
        .collect();
    let r = bulk(&s, json!({"schemas": [BULK], "Operations": many})).await;
    r.expect_error(413, None);
    assert!(r.json["detail"].as_str().unwrap().contains("1000"));
    // Over the body limit (maxPayloadSize): 413 too.
    let big = "x".repeat(1024 * 1024);
    let r = bulk(&s, json!({"schemas": [BULK], "Operations": [], "pad": big})).await;
    r.expect_error(413, None);

    // A cycle of references: 409 for each, nothing created.
    let r = bulk(
        &s,
        json!({"schemas": [BULK], "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "g1",
             "data": {"schemas": [GROUP_URN], "displayName": "One", "members": [{"value": "bulkId:g2"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "g2",
             "data": {"schemas": [GROUP_URN], "displayName": "Two", "members": [{"value": "bulkId:g1"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": user_body("free@example.com")},
        ]}),
    )
    .await;
    r.expect(200);
    assert_eq!(statuses(&r), ["201", "409", "409"]);
    assert!(r.json["Operations"][1]["response"]["detail"]
        .as_str()
        .unwrap()
        .contains("cycle"));
    assert_eq!(
        s.filter("/Groups", "displayName eq \"One\"").await["totalResults"],
        0
    );

    // version is the operation's If-Match.
    let id = s.user("v@example.com").await;
    let put = |version: &str| {
        json!({"schemas": [BULK], "Operations": [{"method": "PUT", "path": format!("/Users/{id}"),
            "version": version, "data": {"schemas": [USER_URN], "userName": "v@example.com", "title": "T"}}]})
    };
    let r = bulk(&s, put("W/\"99\"")).await;
    assert_eq!(statuses(&r), ["412"]);
    let current = s.get(&format!("/Users/{id}")).await.json["meta"]["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = bulk(&s, put(&current)).await;
    assert_eq!(statuses(&r), ["200"]);
    assert_ne!(r.json["Operations"][0]["version"], current.as_str());

    // Malformed: each a 400 naming the operation and what is wrong.
    for (body, words) in [
        (json!({"Operations": []}), "schemas"),
        (json!({"schemas": [BULK]}), "Operations"),
        (
            json!({"schemas": [BULK], "failOnErrors": 0, "Operations": []}),
            "failOnErrors",
        ),
        (
            json!({"schemas": [BULK], "Operations": [{"method": "GET", "path": "/Users"}]}),
            "GET",
        ),
        (
            json!({"schemas": [BULK], "Operations": [{"method": "POST", "path": "/Users", "data": {}}]}),
            "bulkId",
        ),
        (
            json!({"schemas": [BULK], "Operations": [{"method": "POST", "path": "/Bulk", "bulkId": "x", "data": {}}]}),
            "path",
        ),
        (
            json!({"schemas": [BULK], "Operations": [{"method": "DELETE", "path": "/Users/a/b"}]}),
            "path",
        ),
        (
            json!({"schemas": [BULK], "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "x", "data": {}},
            {"method": "POST", "path": "/Users", "bulkId": "x", "data": {}}]}),
            "unique",
        ),
    ] {
        let r = bulk(&s, body).await;
        r.expect(400);
        assert!(
            r.json["detail"].as_str().unwrap().contains(words),
            "{words}: {}",
            r.json
        );
    }
    // An undefined reference: 409 for that operation only.
    let r = bulk(
        &s,
        json!({"schemas": [BULK], "Operations": [
            {"method": "PATCH", "path": "/Users/bulkId:nope", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}}]}),
    )
    .await;
    assert_eq!(statuses(&r), ["409"]);
}

#[tokio::test]
async fn every_operation_is_authorised_and_tenant_scoped() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    // Without a token: 401 before anything is parsed.
    let r = s
        .send(
            s.client
                .post(s.url("/Bulk"))
                .json(&json!({"schemas": [BULK], "Operations": []})),
        )
        .await;
    r.expect_error(401, None);
    // Another tenant's resource is not reachable through this tenant's Bulk.
    s.admin(
        &key,
        Method::POST,
        "/tenants",
        Some(json!({"id": "globex", "name": "Globex"})),
    )
    .await
    .expect(201);
    let r = bulk(
        &s,
        json!({"schemas": [BULK], "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": user_body("mine@example.com")}]}),
    )
    .await;
    let loc = r.json["Operations"][0]["location"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(loc.contains("/scim/v2/acme/Users/"), "{loc}");
}

#[tokio::test]
async fn max_operations_is_a_setting_and_advertised() {
    let s = TestServer::start_with(&["--bulk-max-operations", "2"]).await;
    let c = s.get("/ServiceProviderConfig").await;
    assert_eq!(c.json["bulk"]["maxOperations"], 2);
    let three: Vec<Value> = (0..3)
        .map(|i| json!({"method": "DELETE", "path": format!("/Users/u{i}")}))
        .collect();
    let r = bulk(&s, json!({"schemas": [BULK], "Operations": three})).await;
    r.expect_error(413, None);
    let out = s.cli(&["serve", "--bulk-max-operations", "0"]);
    assert!(!out.status.success());
}
