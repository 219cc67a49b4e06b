//! The tenant setting `email_uniqueness` (issue 13) against the real binary: each mode through
//! POST, PUT, PATCH and the reactivation of a deactivated or deprovisioned user; the 409 body;
//! the provisioning log's hint; app users (import, edit); and turning the setting on over
//! duplicates, refused through the admin API with the list.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Resp, TestServer, USER_URN};

/// A user with one work email, marked primary or not.
fn user(name: &str, email: &str, primary: bool) -> Value {
    json!({
        "schemas": [USER_URN],
        "userName": name,
        "active": true,
        "emails": [{"value": email, "type": "work", "primary": primary}],
    })
}

/// A user with a primary and a secondary email.
fn user2(name: &str, primary: &str, secondary: &str) -> Value {
    json!({
        "schemas": [USER_URN],
        "userName": name,
        "emails": [
            {"value": primary, "type": "work", "primary": true},
            {"value": secondary, "type": "home"},
        ],
    })
}

/// Asserts the SCIM 409 of a taken email: status, scimType, a detail naming the attribute and
/// the value as sent.
fn refused(r: &Resp, value: &str) {
    r.expect_error(409, Some("uniqueness"));
    assert_eq!(r.json["status"], "409");
    let detail = r.json["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!("emails: \"{value}\"")) && detail.contains("another user"),
        "{detail}"
    );
}

async fn set(s: &TestServer, key: &str, mode: &str) -> Resp {
    let path = format!("/tenants/{}/settings", s.tenant);
    s.admin(
        key,
        Method::PATCH,
        &path,
        Some(json!({"email_uniqueness": mode})),
    )
    .await
}

#[tokio::test]
async fn off_allows_duplicates_and_is_the_default() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let st = s
        .admin_get(&key, &format!("/tenants/{}/settings", s.tenant))
        .await;
    assert_eq!(st["email_uniqueness"], "off");
    s.create_user(&user("a", "same@example.com", true)).await;
    s.create_user(&user("b", "SAME@example.com", true)).await;
}

#[tokio::test]
async fn primary_refuses_a_shared_primary_email_on_every_write() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    set(&s, &key, "primary").await.expect(200);
    let ann = s
        .create_user(&user2("ann", "ann@example.com", "shared@example.com"))
        .await;
    let ann_id = ann["id"].as_str().unwrap().to_owned();

    // POST: the same primary email, in other case.
    let r = s
        .post("/Users", &user("bob", "Ann@Example.com", true))
        .await;
    refused(&r, "Ann@Example.com");
    // A shared secondary email is fine in this mode.
    let bob = s
        .create_user(&user2("bob", "bob@example.com", "shared@example.com"))
        .await;
    let bob_id = bob["id"].as_str().unwrap().to_owned();

    // PUT: bob takes ann's primary email.
    let r = s
        .put(
            &format!("/Users/{bob_id}"),
            &user("bob", "ann@example.com", true),
        )
        .await;
    refused(&r, "ann@example.com");
    // PATCH: the same through a PATCH of emails.
    let r = s
        .patch_ops(
            &format!("/Users/{bob_id}"),
            json!([{"op": "replace", "path": "emails", "value": [
                {"value": "ANN@example.com", "primary": true}
            ]}]),
        )
        .await;
    refused(&r, "ANN@example.com");
    // Nothing was changed by the refusals.
    let got = s.get(&format!("/Users/{bob_id}")).await;
    got.expect(200);
    assert_eq!(got.json["emails"][0]["value"], "bob@example.com");
    assert_eq!(got.json["meta"]["version"], bob["meta"]["version"]);

    // A deactivated user keeps its email; it is reactivated without conflict.
    s.patch_ops(
        &format!("/Users/{ann_id}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .expect(200);
    let r = s
        .post("/Users", &user("carl", "ann@example.com", true))
        .await;
    refused(&r, "ann@example.com");
    s.patch_ops(
        &format!("/Users/{ann_id}"),
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await
    .expect(200);

    // A deprovisioned user's email is free; its reactivation (a POST of its userName) is
    // refused while another user has the email, and then succeeds with another one.
    s.delete(&format!("/Users/{ann_id}")).await.expect(204);
    s.create_user(&user("carl", "ann@example.com", true)).await;
    let r = s
        .post("/Users", &user("ann", "ann@example.com", true))
        .await;
    refused(&r, "ann@example.com");
    s.get(&format!("/Users/{ann_id}")).await.expect(404);
    let back = s.create_user(&user("ann", "ann2@example.com", true)).await;
    assert_eq!(back["id"], ann_id.as_str(), "the same user was restored");
}

#[tokio::test]
async fn any_refuses_every_shared_email_and_the_log_explains_it() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    set(&s, &key, "any").await.expect(200);
    s.create_user(&user2("ann", "ann@example.com", "home@example.com"))
        .await;
    let r = s
        .post(
            "/Users",
            &user2("bob", "bob@example.com", "HOME@example.com"),
        )
        .await;
    refused(&r, "HOME@example.com");
    let bob = s.create_user(&user("bob", "bob@example.com", false)).await;
    let bob_id = bob["id"].as_str().unwrap();
    let r = s
        .patch_ops(
            &format!("/Users/{bob_id}"),
            json!([{"op": "add", "path": "emails", "value": [
                {"value": "home@example.com", "type": "home"}
            ]}]),
        )
        .await;
    refused(&r, "home@example.com");
    let r = s
        .put(
            &format!("/Users/{bob_id}"),
            &user2("bob", "bob@example.com", "ann@example.com"),
        )
        .await;
    refused(&r, "ann@example.com");

    // The provisioning log's row explains it to the IT admin.
    let rows = s.provisioning(&key, "outcome=failure", 3).await;
    let post = rows
        .iter()
        .find(|r| r["method"] == "POST")
        .expect("the refused POST is logged");
    assert_eq!(post["status"], 409);
    assert_eq!(post["scim_type"], "uniqueness");
    let hint = post["hint"].as_str().unwrap();
    assert!(
        hint.contains("Another user of this organisation already has the email")
            && hint.contains("HOME@example.com")
            && hint.contains("identity provider"),
        "{hint}"
    );
}

#[tokio::test]
async fn app_users_count_and_turning_it_on_lists_duplicates() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let one = s.create_user(&user("one", "dup@example.com", true)).await;
    let two = s.create_user(&user("two", "DUP@example.com", true)).await;
    let csv = "id,user_name,email\napp-1,app@example.com,dup@example.com\n";
    let r = s.import(&key, &s.tenant, "text/csv", csv).await;
    r.expect(200);
    assert_eq!(r.json["imported"], 1, "{}", r.text);

    // Refused with the list of the users that share the email, the setting unchanged.
    let r = set(&s, &key, "primary").await;
    r.expect(409);
    assert_eq!(r.json["error"]["code"], "conflict");
    let m = r.json["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("\"dup@example.com\"")
            && m.contains("one (")
            && m.contains("two (")
            && m.contains("app@example.com (app-1)"),
        "{m}"
    );
    // And as data, for a program to show.
    let d = &r.json["error"]["details"];
    assert_eq!(d["total"], 1, "{d}");
    assert_eq!(d["duplicates"][0]["email"], "dup@example.com");
    let ids: Vec<&str> = d["duplicates"][0]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{d}");
    assert!(ids.contains(&"app-1"));
    assert!(d["duplicates"][0]["users"][0]["user_name"].is_string());
    // The command line refuses the same way (both its paths).
    let tenant = s.tenant.clone();
    for args in [
        vec![
            "tenant",
            "settings",
            &tenant,
            "--set",
            "email_uniqueness=any",
        ],
        vec![
            "dev-settings",
            &tenant,
            r#"{"email_uniqueness": "primary"}"#,
        ],
    ] {
        let out = s.cli(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("email_uniqueness cannot be set") && err.contains("dup@example.com"),
            "{err}"
        );
    }
    let st = s
        .admin_get(&key, &format!("/tenants/{}/settings", s.tenant))
        .await;
    assert_eq!(st["email_uniqueness"], "off");

    // Two of the three fixed, it is accepted.
    for (u, email) in [(&one, "one@example.com"), (&two, "two@example.com")] {
        let id = u["id"].as_str().unwrap();
        let name = u["userName"].as_str().unwrap();
        s.put(&format!("/Users/{id}"), &user(name, email, true))
            .await
            .expect(200);
    }
    set(&s, &key, "primary").await.expect(200);

    // The app user counts: a SCIM user cannot take its email...
    let r = s
        .put(
            &format!("/Users/{}", one["id"].as_str().unwrap()),
            &user("one", "Dup@example.com", true),
        )
        .await;
    refused(&r, "Dup@example.com");
    // ... an import line with a taken email is skipped with the reason...
    let csv = "id,user_name,email\napp-2,app2@example.com,ONE@example.com\n";
    let r = s.import(&key, &s.tenant, "text/csv", csv).await;
    r.expect(200);
    assert_eq!(r.json["imported"], 0, "{}", r.text);
    let reason = r.json["skipped"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("ONE@example.com") && reason.contains("email_uniqueness"),
        "{reason}"
    );
    // ... and an app user's edit that would take one is a 409.
    let r = s
        .admin(
            &key,
            Method::PATCH,
            &format!("/tenants/{}/users/app-1", s.tenant),
            Some(json!({"email": "two@example.com"})),
        )
        .await;
    r.expect(409);
    assert_eq!(r.json["error"]["code"], "conflict");
    let m = r.json["error"]["message"].as_str().unwrap();
    assert!(m.contains("\"two@example.com\""), "{m}");

    // From primary to any: checked again (no duplicates now), then off.
    set(&s, &key, "any").await.expect(200);
    let r = set(&s, &key, "bogus").await;
    r.expect(400);
    set(&s, &key, "off").await.expect(200);
    s.create_user(&user("three", "dup@example.com", true)).await;
}
