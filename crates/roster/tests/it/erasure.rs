//! A data-protection erase of one deprovisioned user (`roster user erase`, `POST …/erasure`):
//! refused while the user is live and for keys without `tenants:admin`; afterwards no event,
//! provisioning-log row or database page holds the user's personal data, ids stay, and the
//! audit log says who erased whom.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{TestServer, USER_URN};

/// Whether `text` holds any of the test user's personal data.
fn personal(text: &str) -> bool {
    let t = text.to_lowercase();
    ["ingrid", "halvorsen", "ih-4711", "+47 555"]
        .iter()
        .any(|p| t.contains(p))
}

#[tokio::test]
async fn a_deprovisioned_users_personal_data_is_erased_everywhere() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let t = s.tenant.clone();
    let user = s
        .create_user(&json!({
            "schemas": [USER_URN], "userName": "ingrid.halvorsen@example.com",
            "externalId": "ih-4711",
            "name": {"givenName": "Ingrid", "familyName": "Halvorsen"},
            "emails": [{"value": "Ingrid.Halvorsen@example.com", "primary": true}],
            "phoneNumbers": [{"value": "+47 555 0101"}],
        }))
        .await;
    let id = user["id"].as_str().unwrap().to_owned();
    let other = s.user("someone.else@example.com").await;
    let group = s.create_group("Readers", &[&id, &other]).await;
    s.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "name.givenName", "value": "Ingrid M."}]),
    )
    .await
    .expect(200);
    // A failed create quotes the userName in the log's detail.
    s.post(
        "/Users",
        &json!({"schemas": [USER_URN], "userName": "INGRID.halvorsen@example.com"}),
    )
    .await
    .expect(409);
    let path = format!("/tenants/{t}/users/{id}/erasure");

    // Live: refused, from the API and the CLI.
    let r = s.admin(&key, Method::POST, &path, None).await;
    r.expect(409);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deprovision it first"),
        "{}",
        r.json
    );
    let out = s.cli(&["user", "erase", &t, &id, "--yes"]);
    assert!(!out.status.success());

    s.delete(&format!("/Users/{id}")).await.expect(204);
    // A key for the app's everyday work may not erase history.
    let out = s.cli_ok(&["admin-key", "create", "--scope", "users:write", "--json"]);
    let narrow: Value = serde_json::from_str(out.trim()).unwrap();
    s.admin(narrow["key"].as_str().unwrap(), Method::POST, &path, None)
        .await
        .expect(403);
    // The CLI asks for --yes.
    let out = s.cli(&["user", "erase", &t, &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));

    let r = s.admin(&key, Method::POST, &path, None).await;
    r.expect(200);
    assert_eq!(r.json["id"], id.as_str());
    assert_eq!(r.json["record_erased"], true);
    assert!(
        r.json["events_rewritten"].as_u64().unwrap() >= 3,
        "{}",
        r.json
    );
    assert!(
        r.json["log_rows_rewritten"].as_u64().unwrap() >= 3,
        "{}",
        r.json
    );

    // Events: ids kept, nothing personal; user.erased says what happened.
    let events = s.feed(&key, 0).await;
    for e in &events {
        assert!(!personal(&e["data"].to_string()), "{e}");
    }
    assert!(events
        .iter()
        .any(|e| e["type"] == "user.created" && e["data"]["user"]["id"] == id.as_str()));
    let last = events.last().unwrap();
    assert_eq!(last["type"], "user.erased");
    assert_eq!(
        last["data"],
        json!({"user": {"id": id}, "personal_data": true})
    );
    let updated = events.iter().find(|e| e["type"] == "user.updated").unwrap();
    assert_eq!(updated["data"]["changes"], json!([{"attribute": "name"}]));

    // The provisioning log: rows about the user keep their status and id, lose their data.
    let log = s.provisioning(&key, "limit=100", 5).await;
    for row in &log {
        assert!(!personal(&row.to_string()), "{row}");
    }
    assert!(log.iter().any(|r| r["resource_id"] == id.as_str()));
    assert!(
        log.iter().any(|r| r["name"] == "someone.else@example.com"),
        "others keep theirs"
    );

    // The record is gone: the same userName is a new user.
    let again = s
        .create_user(&json!({"schemas": [USER_URN], "userName": "ingrid.halvorsen@example.com"}))
        .await;
    assert_ne!(again["id"], id.as_str());
    let members = s
        .get(&format!("/Groups/{}", group["id"].as_str().unwrap()))
        .await;
    assert!(!members.json.to_string().contains(&id));

    // Audited, by id.
    let audit = s.admin_get(&key, "/audit-log").await;
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "user.erase_personal_data")
        .expect("audited")
        .clone();
    assert_eq!(entry["target"], id.as_str());
    assert!(!personal(&entry.to_string()));

    // Nothing left: a second erase is a 404.
    s.admin(&key, Method::POST, &path, None).await.expect(404);

    // On SQLite nothing of it is left in the database file or its log either (the new
    // user's own userName aside: it is a new user's).
    let bytes = String::from_utf8_lossy(&s.database_bytes()).to_lowercase();
    for p in ["ingrid m.", "halvorsen\"", "ih-4711", "+47 555"] {
        assert!(!bytes.contains(p), "{p} is still in the database");
    }
}

#[tokio::test]
async fn the_cli_erases_a_user_the_tenant_already_erased_on_delete() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let t = s.tenant.clone();
    s.set_settings(&t, json!({"deprovision_on_delete": "erase"}));
    let id = s.user("ingrid.halvorsen@example.com").await;
    s.delete(&format!("/Users/{id}")).await.expect(204);
    // The record went with the delete; the events and the log still named the user.
    let out = s.cli_ok(&["user", "erase", &t, &id, "--yes", "--json"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["record_erased"], false);
    assert!(v["events_rewritten"].as_u64().unwrap() >= 2, "{v}");
    for e in s.feed(&key, 0).await {
        assert!(!personal(&e["data"].to_string()), "{e}");
    }
    let out = s.cli(&["user", "erase", &t, "nobody", "--yes"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobody"));
}
