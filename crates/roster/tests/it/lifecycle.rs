//! Deactivation, deprovisioning and restore.

use serde_json::json;

use crate::harness::{ids, user_body, TestServer, USER_URN};

#[tokio::test]
async fn patch_active_false_deactivates_and_true_reactivates() {
    let s = TestServer::start().await;
    let id = s.user("life").await;
    let p = format!("/Users/{id}");
    let r = s
        .patch_ops(
            &p,
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["active"], false);
    let got = s.get(&p).await;
    got.expect(200);
    assert_eq!(got.json["active"], false);
    assert_eq!(got.json["userName"], "life");
    // Still listed, and found by filters.
    assert!(ids(&s.get("/Users").await.json).contains(&id));
    assert_eq!(
        ids(&s.filter("/Users", "active eq false").await),
        [id.clone()]
    );
    let r = s
        .patch_ops(
            &p,
            json!([{"op": "replace", "path": "active", "value": true}]),
        )
        .await;
    r.expect(200);
    assert_eq!(s.get(&p).await.json["active"], true);
    // Path-less form, as some IdPs send it.
    let r = s
        .patch_ops(&p, json!([{"op": "replace", "value": {"active": false}}]))
        .await;
    r.expect(200);
    assert_eq!(s.get(&p).await.json["active"], false);
}

#[tokio::test]
async fn put_with_active_false_deactivates() {
    let s = TestServer::start().await;
    let id = s.user("putlife").await;
    let p = format!("/Users/{id}");
    let r = s
        .put(
            &p,
            &json!({"schemas": [USER_URN], "userName": "putlife", "active": false}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["active"], false);
    assert_eq!(s.get(&p).await.json["active"], false);
}

#[tokio::test]
async fn delete_deprovisions() {
    let s = TestServer::start().await;
    let id = s.user("gone").await;
    let other = s.user("stays").await;
    let p = format!("/Users/{id}");
    let r = s.delete(&p).await;
    r.expect(204);
    assert!(r.text.is_empty());
    s.get(&p).await.expect_error(404, None);
    let list = s.get("/Users").await.json;
    assert_eq!(ids(&list), [other.clone()]);
    assert_eq!(list["totalResults"], 1);
    assert_eq!(
        s.filter("/Users", "userName eq \"gone\"").await["totalResults"],
        0
    );
    assert_eq!(
        s.filter("/Users", &format!("id eq \"{id}\"")).await["totalResults"],
        0
    );
    s.delete(&p).await.expect_error(404, None);
    s.patch_ops(
        &p,
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await
    .expect_error(404, None);
    s.put(&p, &user_body("gone")).await.expect_error(404, None);
}

#[tokio::test]
async fn post_after_delete_restores_the_same_id() {
    let s = TestServer::start().await;
    let first = s
        .create_user(&json!({"schemas": [USER_URN], "userName": "Phoenix", "active": false}))
        .await;
    let id = first["id"].as_str().unwrap().to_owned();
    s.delete(&format!("/Users/{id}")).await.expect(204);
    let r = s
        .post(
            "/Users",
            &json!({"schemas": [USER_URN], "userName": "pHOENIX", "title": "Back"}),
        )
        .await;
    r.expect(201);
    assert_eq!(r.json["id"], id.as_str(), "restored user keeps its id");
    assert_eq!(r.json["active"], true);
    assert_eq!(r.json["title"], "Back");
    assert_eq!(r.json["userName"], "pHOENIX");
    assert_eq!(r.header("location"), r.json["meta"]["location"].as_str());
    let got = s.get(&format!("/Users/{id}")).await;
    got.expect(200);
    assert_eq!(got.json["active"], true);
    assert_eq!(ids(&s.get("/Users").await.json), [id.clone()]);
    // Exact same case also restores.
    s.delete(&format!("/Users/{id}")).await.expect(204);
    let r = s.post("/Users", &user_body("pHOENIX")).await;
    r.expect(201);
    assert_eq!(r.json["id"], id.as_str());
}
