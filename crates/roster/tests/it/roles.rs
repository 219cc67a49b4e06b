//! Roles over HTTP: role mappings by group id, externalId and displayName; effective roles
//! (direct ∪ mapped) returned with the user; emptied by deactivation and deprovisioning and
//! restored by reactivation (direct assignments are kept); `user.roles_changed` for each
//! change, batched for big groups.

use reqwest::Method;
use serde_json::{json, Value};

use crate::events::types;
use crate::harness::{user_body, TestServer, GROUP_URN, PATCH_URN};

impl TestServer {
    /// Creates a role mapping, asserting 201; returns it.
    pub async fn map_roles(&self, key: &str, by: &str, value: &str, roles: &[&str]) -> Value {
        let r = self
            .admin(
                key,
                Method::POST,
                &format!("/tenants/{}/role-mappings", self.tenant),
                Some(json!({"group": {"by": by, "value": value}, "roles": roles})),
            )
            .await;
        r.expect(201);
        r.json
    }

    /// A user's effective roles through the admin API.
    pub async fn roles_of(&self, key: &str, id: &str) -> Value {
        self.app_user(key, id).await["roles"].clone()
    }
}

/// The `user.roles_changed` entries of events (one per user), in order.
fn role_changes(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"] == "user.roles_changed")
        .flat_map(|e| e["data"]["users"].as_array().unwrap().clone())
        .collect()
}

#[tokio::test]
async fn effective_roles_come_from_mappings_by_id_external_id_and_display_name() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let u1 = s.user("u1").await;
    let u2 = s.user("u2").await;
    let admins = s.create_group("Admins", &[&u1]).await;
    let admins_id = admins["id"].as_str().unwrap().to_owned();
    let r = s
        .post(
            "/Groups",
            &json!({"schemas": [GROUP_URN], "displayName": "Support", "externalId": "okta-00g1",
                    "members": [{"value": u1}, {"value": u2}]}),
        )
        .await;
    r.expect(201);
    let after = s.feed(&key, 0).await.len() as i64;

    let m1 = s.map_roles(&key, "id", &admins_id, &["admin"]).await;
    assert_eq!(m1["group"], json!({"by": "id", "value": admins_id}));
    s.map_roles(&key, "externalId", "okta-00g1", &["support", "viewer"])
        .await;
    // displayName is compared case-insensitively.
    s.map_roles(&key, "displayName", "SUPPORT", &["agent"])
        .await;
    // A mapping for a group that does not exist yet.
    s.map_roles(&key, "displayName", "Finance", &["billing"])
        .await;

    assert_eq!(
        s.roles_of(&key, &u1).await,
        json!(["admin", "agent", "support", "viewer"])
    );
    assert_eq!(
        s.roles_of(&key, &u2).await,
        json!(["agent", "support", "viewer"])
    );
    // Direct roles add to them.
    s.admin(
        &key,
        Method::PATCH,
        &format!("/tenants/{}/users/{u2}", s.tenant),
        Some(json!({"roles": ["beta"]})),
    )
    .await
    .expect(200);
    assert_eq!(
        s.roles_of(&key, &u2).await,
        json!(["agent", "beta", "support", "viewer"])
    );
    // Groups show their mapped roles.
    let g = s
        .admin_get(&key, &format!("/tenants/{}/groups/{admins_id}", s.tenant))
        .await;
    assert_eq!(g["roles"], json!(["admin"]));

    // Each mapping change announced the users whose roles it changed.
    let changes = role_changes(&s.feed(&key, after).await);
    assert_eq!(changes.len(), 6, "{changes:#?}");
    assert_eq!(changes[0]["id"], u1.as_str());
    assert_eq!(changes[0]["added"], json!(["admin"]));
    assert_eq!(changes[0]["roles"], json!(["admin"]));
    assert_eq!(changes[5]["id"], u2.as_str());
    assert_eq!(changes[5]["added"], json!(["beta"]));

    // The group the "Finance" mapping names appears: its members get the roles at once.
    let after = s.feed(&key, 0).await.len() as i64;
    s.create_group("finance", &[&u2]).await;
    assert!(s
        .roles_of(&key, &u2)
        .await
        .as_array()
        .unwrap()
        .contains(&json!("billing")));
    let changes = role_changes(&s.feed(&key, after).await);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["added"], json!(["billing"]));

    // Updating and deleting mappings; the list; errors.
    let list = s
        .admin_get(&key, &format!("/tenants/{}/role-mappings", s.tenant))
        .await;
    assert_eq!(list["role_mappings"].as_array().unwrap().len(), 4);
    let path = format!(
        "/tenants/{}/role-mappings/{}",
        s.tenant,
        m1["id"].as_str().unwrap()
    );
    let r = s
        .admin(
            &key,
            Method::PUT,
            &path,
            Some(json!({"group": {"by": "id", "value": admins_id}, "roles": ["owner"]})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["roles"], json!(["owner"]));
    assert_eq!(
        s.roles_of(&key, &u1).await,
        json!(["agent", "owner", "support", "viewer"])
    );
    s.admin_get(&key, &path).await;
    s.admin(&key, Method::DELETE, &path, None).await.expect(204);
    s.admin(&key, Method::GET, &path, None).await.expect(404);
    assert_eq!(
        s.roles_of(&key, &u1).await,
        json!(["agent", "support", "viewer"])
    );
    let base = format!("/tenants/{}/role-mappings", s.tenant);
    let dup = s
        .admin(
            &key,
            Method::POST,
            &base,
            Some(json!({"group": {"by": "displayName", "value": "support"}, "roles": ["x"]})),
        )
        .await;
    dup.expect(409);
    for bad in [
        json!({"group": {"by": "name", "value": "x"}, "roles": ["x"]}),
        json!({"group": {"by": "id", "value": ""}, "roles": ["x"]}),
        json!({"group": {"by": "id", "value": "g"}, "roles": []}),
        json!({"group": {"by": "id", "value": "g"}}),
    ] {
        s.admin(&key, Method::POST, &base, Some(bad))
            .await
            .expect(400);
    }
    s.admin(&key, Method::GET, "/tenants/nope/role-mappings", None)
        .await
        .expect(404);
}

#[tokio::test]
async fn deactivation_and_deprovisioning_empty_roles_and_reactivation_restores_them() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let u = s.user("ann").await;
    let g = s.create_group("Editors", &[&u]).await;
    s.map_roles(&key, "displayName", "Editors", &["editor"])
        .await;
    s.admin(
        &key,
        Method::PATCH,
        &format!("/tenants/{}/users/{u}", s.tenant),
        Some(json!({"roles": ["billing"]})),
    )
    .await
    .expect(200);
    assert_eq!(s.roles_of(&key, &u).await, json!(["billing", "editor"]));
    let mark = s.feed(&key, 0).await.len() as i64;

    // Deactivate: no effective roles; direct ones are kept; one roles event after the
    // deactivation.
    s.patch_ops(
        &format!("/Users/{u}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .expect(200);
    let user = s.app_user(&key, &u).await;
    assert_eq!(user["roles"], json!([]));
    assert_eq!(user["direct_roles"], json!(["billing"]));
    assert_eq!(user["status"], "deactivated");
    let events = s.feed(&key, mark).await;
    assert_eq!(types(&events), ["user.deactivated", "user.roles_changed"]);
    let c = &events[1]["data"]["users"][0];
    assert_eq!(c["roles"], json!([]));
    assert_eq!(c["removed"], json!(["billing", "editor"]));
    // While inactive, an app change to direct roles changes no effective role.
    s.admin(
        &key,
        Method::PATCH,
        &format!("/tenants/{}/users/{u}", s.tenant),
        Some(json!({"roles": ["billing", "support"]})),
    )
    .await
    .expect(200);
    // Reactivate: everything is back.
    let mark = s.feed(&key, 0).await.len() as i64;
    s.patch_ops(
        &format!("/Users/{u}"),
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await
    .expect(200);
    assert_eq!(
        s.roles_of(&key, &u).await,
        json!(["billing", "editor", "support"])
    );
    let events = s.feed(&key, mark).await;
    assert_eq!(types(&events), ["user.reactivated", "user.roles_changed"]);
    assert_eq!(
        events[1]["data"]["users"][0]["added"],
        json!(["billing", "editor", "support"])
    );

    // Deprovision: roles empty, memberships gone; the retained record keeps its direct roles.
    let mark = s.feed(&key, 0).await.len() as i64;
    s.delete(&format!("/Users/{u}")).await.expect(204);
    let user = s.app_user(&key, &u).await;
    assert_eq!(user["status"], "deprovisioned");
    assert_eq!(user["roles"], json!([]));
    assert_eq!(user["groups"], json!([]));
    let events = s.feed(&key, mark).await;
    assert_eq!(
        types(&events),
        [
            "group.members_removed",
            "user.deprovisioned",
            "user.roles_changed"
        ]
    );
    // Restore (same userName): the direct roles come back; group roles when the identity
    // provider adds the user to its groups again.
    let mark = s.feed(&key, 0).await.len() as i64;
    let r = s.post("/Users", &user_body("ann")).await;
    r.expect(201);
    assert_eq!(r.json["id"], u.as_str());
    assert_eq!(s.roles_of(&key, &u).await, json!(["billing", "support"]));
    let events = s.feed(&key, mark).await;
    assert_eq!(types(&events), ["user.restored", "user.roles_changed"]);
    s.patch_ops(
        &format!("/Groups/{}", g["id"].as_str().unwrap()),
        json!([{"op": "add", "path": "members", "value": [{"value": u}]}]),
    )
    .await
    .expect(200);
    assert_eq!(
        s.roles_of(&key, &u).await,
        json!(["billing", "editor", "support"])
    );
}

#[tokio::test]
async fn membership_and_group_changes_emit_roles_changed_only_when_roles_change() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let a = s.user("a").await;
    let b = s.user("b").await;
    let g = s.create_group("Ops", &[]).await;
    let gid = g["id"].as_str().unwrap().to_owned();
    let plain = s.create_group("Plain", &[]).await;
    s.map_roles(&key, "id", &gid, &["ops"]).await;
    let path = format!("/Groups/{gid}");

    let mark = s.feed(&key, 0).await.len() as i64;
    // A group without mappings: no roles events at all.
    s.patch_ops(
        &format!("/Groups/{}", plain["id"].as_str().unwrap()),
        json!([{"op": "add", "path": "members", "value": [{"value": a}, {"value": b}]}]),
    )
    .await
    .expect(200);
    // Adding to the mapped group.
    s.patch_ops(
        &path,
        json!([{"op": "add", "path": "members", "value": [{"value": a}, {"value": b}]}]),
    )
    .await
    .expect(200);
    // PUT with the same members and a new displayName: roles unchanged (mapped by id).
    s.put(
        &path,
        &json!({"schemas": [GROUP_URN], "displayName": "Operations",
                "members": [{"value": a}, {"value": b}]}),
    )
    .await
    .expect(200);
    // Removing one.
    s.patch(
        &path,
        &json!({"schemas": [PATCH_URN], "Operations": [
            {"op": "remove", "path": format!("members[value eq \"{b}\"]")}]}),
    )
    .await
    .expect(200);
    let events = s.feed(&key, mark).await;
    let changes = role_changes(&events);
    let summary: Vec<(String, Value)> = changes
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_owned(), c["roles"].clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (a.clone(), json!(["ops"])),
            (b.clone(), json!(["ops"])),
            (b.clone(), json!([]))
        ]
    );
    // Roles events come after the membership events of the same request.
    let t = types(&events);
    let first_roles = t.iter().position(|t| *t == "user.roles_changed").unwrap();
    assert_eq!(t[first_roles - 1], "group.members_added");

    // A mapping by displayName that a rename makes apply, then deleting the group.
    s.map_roles(&key, "displayName", "Night shift", &["night"])
        .await;
    let mark = s.feed(&key, 0).await.len() as i64;
    s.patch_ops(
        &path,
        json!([{"op": "replace", "path": "displayName", "value": "night SHIFT"}]),
    )
    .await
    .expect(200);
    assert_eq!(s.roles_of(&key, &a).await, json!(["night", "ops"]));
    s.delete(&path).await.expect(204);
    assert_eq!(s.roles_of(&key, &a).await, json!([]));
    let changes = role_changes(&s.feed(&key, mark).await);
    assert_eq!(changes.len(), 2, "{changes:#?}");
    assert_eq!(changes[0]["added"], json!(["night"]));
    assert_eq!(changes[1]["removed"], json!(["night", "ops"]));
}

#[tokio::test]
async fn role_changes_of_a_big_group_are_batched() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let body: String = (0..1500)
        .map(|i| {
            format!(
                "{}\n",
                json!({"id": format!("m{i}"), "user_name": format!("m{i}"), "groups": ["Everyone"]})
            )
        })
        .collect();
    let r = s
        .import(&key, &s.tenant, "application/x-ndjson", &body)
        .await;
    r.expect(200);
    assert_eq!(r.json["imported"], 1500);
    let mark = s.feed(&key, 0).await.len() as i64;
    s.map_roles(&key, "displayName", "everyone", &["member"])
        .await;
    let events = s.feed(&key, mark).await;
    assert_eq!(
        types(&events),
        ["user.roles_changed", "user.roles_changed"],
        "1500 users in parts of 1000"
    );
    assert_eq!(events[0]["data"]["users"].as_array().unwrap().len(), 1000);
    assert_eq!(events[1]["data"]["part"], 2);
    assert_eq!(events[1]["data"]["parts"], 2);
    assert_eq!(s.roles_of(&key, "m1499").await, json!(["member"]));
}
