//! Existing app users and groups over HTTP: import (API and CLI, JSON lines and CSV), SCIM
//! creates that match them (`match` keeps the app id, `reject` is a 409 naming the conflict),
//! group takeover, SCIM visibility, the read-only managed fields, the users and groups API with
//! cursor pagination, and `user.welcome`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::events::types;
use crate::harness::{ids, user_body, Resp, TestServer, USER_URN};

impl TestServer {
    /// Merges settings into the tenant's (a stop-gap CLI until the tenants API lands).
    pub fn set_settings(&self, tenant: &str, settings: Value) {
        self.cli_ok(&["dev-settings", tenant, &settings.to_string()]);
    }

    /// Imports through the API; returns the response.
    pub async fn import(&self, key: &str, tenant: &str, content_type: &str, body: &str) -> Resp {
        let rb = self
            .client
            .post(format!(
                "{}/api/v1/tenants/{tenant}/user-imports",
                self.origin
            ))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body.to_owned());
        self.send(rb).await
    }

    /// `GET /api/v1/tenants/{tenant}/users/{id}`, asserting 200.
    pub async fn app_user(&self, key: &str, id: &str) -> Value {
        self.admin_get(key, &format!("/tenants/{}/users/{id}", self.tenant))
            .await
    }

    /// The app user with this userName (via the list's `q`).
    pub async fn app_user_named(&self, key: &str, user_name: &str) -> Value {
        let page = self
            .admin_get(
                key,
                &format!("/tenants/{}/users?q={user_name}&limit=1000", self.tenant),
            )
            .await;
        page["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["user_name"].as_str() == Some(user_name))
            .cloned()
            .unwrap_or_else(|| panic!("no user {user_name} in {page}"))
    }
}

fn jsonl(lines: &[Value]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[tokio::test]
async fn import_jsonl_and_csv_through_the_api_creates_unmanaged_users_invisible_to_scim() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let body = jsonl(&[
        json!({"id": "app-1", "user_name": "alice@example.com", "email": "alice@example.com",
               "given_name": "Alice", "family_name": "Liddell", "roles": ["editor"],
               "groups": ["Beta testers"], "metadata": {"plan": "pro"}}),
        json!({"userName": "bob@example.com", "active": false}),
        json!({"user_name": "alice@example.com"}),
        json!({"email": "nobody@example.com"}),
    ]) + "not json\n";
    let r = s
        .import(&key, &s.tenant, "application/x-ndjson", &body)
        .await;
    r.expect(200);
    assert_eq!(r.json["imported"], 2, "{}", r.text);
    assert_eq!(r.json["skipped"][0]["line"], 3);
    assert!(r.json["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("already belongs to an app user"));
    let lines: Vec<i64> = r.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [4, 5]);

    let csv = "user_name,email,first_name,last_name,active,roles,groups\n\
               carol@example.com,carol@example.com,Carol,\"Smith, Jr.\",true,admin;viewer,Beta testers\n\
               dave@example.com,,,,no,,\n";
    let r = s.import(&key, &s.tenant, "text/csv", csv).await;
    r.expect(200);
    assert_eq!(r.json["imported"], 2, "{}", r.text);

    // The app id is kept; the users are unmanaged and carry their app fields.
    let alice = s.app_user(&key, "app-1").await;
    assert_eq!(alice["managed"], false);
    assert_eq!(alice["status"], "active");
    assert_eq!(alice["direct_roles"], json!(["editor"]));
    assert_eq!(alice["roles"], json!(["editor"]));
    assert_eq!(alice["metadata"], json!({"plan": "pro"}));
    assert_eq!(alice["primary_email"], "alice@example.com");
    assert_eq!(alice["groups"][0]["display_name"], "Beta testers");
    assert_eq!(alice["groups"][0]["managed"], false);
    let carol = s.app_user_named(&key, "carol@example.com").await;
    assert_eq!(carol["name"]["familyName"], "Smith, Jr.");
    assert_eq!(carol["direct_roles"], json!(["admin", "viewer"]));
    let dave = s.app_user_named(&key, "dave@example.com").await;
    assert_eq!(dave["status"], "deactivated");
    assert_eq!(dave["roles"], json!([]));

    // Invisible to SCIM: not listed, not readable, not filterable, not a possible member.
    let list = s.get("/Users").await;
    list.expect(200);
    assert_eq!(list.json["totalResults"], 0, "{}", list.text);
    s.get("/Users/app-1").await.expect_error(404, None);
    let f = s
        .filter("/Users", "userName eq \"alice@example.com\"")
        .await;
    assert_eq!(f["totalResults"], 0);
    assert_eq!(s.get("/Groups").await.json["totalResults"], 0);
    let r = s
        .post(
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Other", "members": [{"value": "app-1"}]}),
        )
        .await;
    r.expect_error(400, Some("invalidValue"));

    // The import is announced: user.imported, and the app group with its members.
    let events = s.feed(&key, 0).await;
    let t = types(&events);
    assert!(t.contains(&"user.imported"), "{t:?}");
    assert!(t.contains(&"group.created"), "{t:?}");
    let imported: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "user.imported")
        .flat_map(|e| e["data"]["users"].as_array().unwrap())
        .collect();
    assert_eq!(imported.len(), 4);

    // Errors of the request itself.
    s.import(&key, &s.tenant, "application/json", "{}")
        .await
        .expect(415);
    s.import(&key, &s.tenant, "text/csv", "email\nx@example.com\n")
        .await
        .expect(400);
    s.import(&key, &s.tenant, "text/csv", "").await.expect(400);
    let r = s
        .import(&key, &s.tenant, "text/csv", "user_name,shoe_size\nx,1\n")
        .await;
    r.expect(200);
    assert_eq!(r.json["imported"], 0);
    assert!(r.json["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("unknown column"));
    s.import(&key, "nope", "text/csv", "user_name\nx\n")
        .await
        .expect(404);
    let r = s
        .client
        .post(format!(
            "{}/api/v1/tenants/{}/user-imports?format=csv",
            s.origin, s.tenant
        ))
        .bearer_auth(&key)
        .body("user_name\nerin@example.com\n");
    assert_eq!(s.send(r).await.json["imported"], 1);
}

#[tokio::test]
async fn cli_import_reads_files_with_a_progress_bar_and_is_idempotent() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("users.csv");
    let mut text = String::from("id,user_name,email,roles\n");
    for i in 0..1200 {
        text.push_str(&format!(
            "u{i},user{i}@example.com,user{i}@example.com,member\n"
        ));
    }
    text.push_str(",,broken@example.com,\n");
    std::fs::write(&csv, &text).unwrap();
    let out = s.cli_ok(&[
        "users",
        "import",
        &s.tenant,
        csv.to_str().unwrap(),
        "--json",
    ]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["imported"], 1200, "{v}");
    assert_eq!(v["errors"][0]["line"], 1202);
    // Again: everything is skipped.
    let out = s.cli_ok(&["users", "import", &s.tenant, csv.to_str().unwrap()]);
    assert!(out.contains("imported 0 users, skipped 1200"), "{out}");

    let jl = dir.path().join("more.data");
    std::fs::write(&jl, jsonl(&[json!({"user_name": "zed@example.com"})])).unwrap();
    let out = s.cli(&["users", "import", &s.tenant, jl.to_str().unwrap()]);
    assert!(!out.status.success(), "an unknown extension needs --format");
    s.cli_ok(&[
        "users",
        "import",
        &s.tenant,
        jl.to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    s.app_user_named(&key, "zed@example.com").await;
    let out = s.cli(&["users", "import", "nope", jl.to_str().unwrap()]);
    assert!(!out.status.success());

    // The audit log records each import.
    let audit = s.admin_get(&key, "/audit-log").await;
    let n = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "users.import")
        .count();
    assert_eq!(n, 3, "{audit}");
}

#[tokio::test]
async fn scim_create_matches_an_existing_app_user_by_user_name_or_email() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let body = jsonl(&[
        json!({"id": "app-7", "user_name": "bjensen", "email": "bjensen@example.com",
               "roles": ["owner"], "groups": ["Insiders"], "metadata": {"seat": 7}}),
        json!({"id": "app-8", "user_name": "mike", "email": "mike@example.com"}),
        json!({"id": "app-9", "user_name": "sam@example.com"}),
    ]);
    s.import(&key, &s.tenant, "application/x-ndjson", &body)
        .await
        .expect(200);
    let before = s.feed(&key, 0).await.len() as i64;

    // Same userName (in another letter case): the same app id becomes SCIM-managed.
    let r = s.post("/Users", &user_body("BJensen")).await;
    r.expect(201);
    assert_eq!(r.json["id"], "app-7");
    assert_eq!(r.json["userName"], "BJensen");
    let u = s.app_user(&key, "app-7").await;
    assert_eq!(u["managed"], true);
    assert_eq!(u["roles"], json!(["owner"]), "app roles are kept");
    assert_eq!(u["metadata"], json!({"seat": 7}));
    assert_eq!(u["groups"][0]["display_name"], "Insiders");
    // Now visible to SCIM, without the app group.
    let got = s.get("/Users/app-7").await;
    got.expect(200);
    assert!(got.json.get("groups").is_none(), "{}", got.text);

    // The primary email of a new SCIM user equal to an app user's primary email.
    let r = s
        .post(
            "/Users",
            &json!({"schemas": [USER_URN], "userName": "michael.smith",
                    "emails": [{"value": "Mike@Example.com", "primary": true}]}),
        )
        .await;
    r.expect(201);
    assert_eq!(r.json["id"], "app-8");
    // The new userName equal to an app user's userName that is an email.
    let r = s
        .post(
            "/Users",
            &json!({"schemas": [USER_URN], "userName": "x-sam",
                    "emails": [{"value": "sam@example.com", "primary": true}]}),
        )
        .await;
    r.expect(201);
    assert_eq!(r.json["id"], "app-9");

    let events = s.feed(&key, before).await;
    let matched: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "user.matched")
        .collect();
    assert_eq!(matched.len(), 3, "{:?}", types(&events));
    assert_eq!(matched[0]["data"]["matched_by"], "userName");
    assert_eq!(matched[0]["data"]["user"]["id"], "app-7");
    assert_eq!(matched[1]["data"]["matched_by"], "email");
    assert!(!types(&events).contains(&"user.created"));

    // A second create of the same userName is an ordinary conflict now.
    s.post("/Users", &user_body("bjensen"))
        .await
        .expect_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn reject_setting_answers_409_naming_the_conflict() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    s.set_settings(&s.tenant, json!({"on_existing_user": "reject"}));
    let body = jsonl(&[json!({"id": "app-1", "user_name": "kim", "email": "kim@example.com"})]);
    s.import(&key, &s.tenant, "application/x-ndjson", &body)
        .await
        .expect(200);
    let r = s.post("/Users", &user_body("KIM")).await;
    r.expect_error(409, Some("uniqueness"));
    let d = r.json["detail"].as_str().unwrap();
    assert!(d.contains("userName \"KIM\""), "{d}");
    assert!(d.contains("on_existing_user"), "{d}");
    let r = s
        .post(
            "/Users",
            &json!({"schemas": [USER_URN], "userName": "kimberly",
                    "emails": [{"value": "kim@example.com", "primary": true}]}),
        )
        .await;
    r.expect_error(409, Some("uniqueness"));
    assert!(r.json["detail"]
        .as_str()
        .unwrap()
        .contains("primary email \"kim@example.com\""));
    // Nothing changed: still unmanaged, still invisible.
    assert_eq!(s.app_user(&key, "app-1").await["managed"], false);
    assert_eq!(s.get("/Users").await.json["totalResults"], 0);
    // A user that matches nothing is created as usual.
    s.post("/Users", &user_body("lee")).await.expect(201);
}

#[tokio::test]
async fn scim_group_takes_over_an_app_group_and_replaces_its_members() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let body = jsonl(&[
        json!({"id": "a1", "user_name": "a1", "groups": ["Engineering"]}),
        json!({"id": "a2", "user_name": "a2", "groups": ["Engineering"]}),
    ]);
    s.import(&key, &s.tenant, "application/x-ndjson", &body)
        .await
        .expect(200);
    let app_group = s
        .admin_get(&key, &format!("/tenants/{}/groups?managed=false", s.tenant))
        .await["groups"][0]
        .clone();
    assert_eq!(app_group["display_name"], "Engineering");
    assert_eq!(app_group["member_count"], 2);
    let gid = app_group["id"].as_str().unwrap().to_owned();

    // a1 becomes SCIM-managed; SCIM creates the group with a1 and a new user.
    let a1 = s.post("/Users", &user_body("a1")).await;
    a1.expect(201);
    let u3 = s.user("u3").await;
    let before = s.feed(&key, 0).await.len() as i64;
    let g = s.create_group("engineering", &["a1", &u3]).await;
    assert_eq!(g["id"], gid.as_str(), "same group id");
    let mut members: Vec<&str> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    members.sort_unstable();
    let mut expected = vec!["a1", u3.as_str()];
    expected.sort_unstable();
    assert_eq!(members, expected);
    let group = s
        .admin_get(&key, &format!("/tenants/{}/groups/{gid}", s.tenant))
        .await;
    assert_eq!(group["managed"], true);
    assert_eq!(group["member_count"], 2);
    let a2 = s.app_user(&key, "a2").await;
    assert_eq!(a2["groups"], json!([]), "a2's assignment was replaced");

    let events = s.feed(&key, before).await;
    let t = types(&events);
    assert_eq!(t[0], "group.matched", "{t:?}");
    assert_eq!(events[0]["data"]["previous_members"], 2);
    let removed = events
        .iter()
        .find(|e| e["type"] == "group.members_removed")
        .unwrap();
    assert_eq!(removed["data"]["members"], json!(["a2"]));
    let added = events
        .iter()
        .find(|e| e["type"] == "group.members_added")
        .unwrap();
    assert_eq!(added["data"]["members"], json!([u3]));
}

#[tokio::test]
async fn managed_fields_are_read_only_app_fields_editable_unmanaged_fully_editable() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let id = s.user("scim@example.com").await;
    let path = format!("/tenants/{}/users/{id}", s.tenant);

    for (body, field) in [
        (json!({"user_name": "other"}), "userName"),
        (json!({"given_name": "X"}), "name"),
        (json!({"email": "x@example.com"}), "emails"),
        (json!({"active": false}), "active"),
    ] {
        let r = s.admin(&key, Method::PATCH, &path, Some(body)).await;
        r.expect(409);
        assert_eq!(r.json["error"]["code"], "conflict");
        let m = r.json["error"]["message"].as_str().unwrap();
        assert!(m.contains(field) && m.contains("identity provider"), "{m}");
    }
    // Sending the current value is not a change.
    s.admin(
        &key,
        Method::PATCH,
        &path,
        Some(json!({"user_name": "scim@example.com", "active": true})),
    )
    .await
    .expect(200);
    // App-owned fields.
    let r = s
        .admin(
            &key,
            Method::PATCH,
            &path,
            Some(json!({"roles": ["viewer", "admin", "viewer"], "metadata": {"theme": "dark"}})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["direct_roles"], json!(["admin", "viewer"]));
    assert_eq!(r.json["roles"], json!(["admin", "viewer"]));
    assert_eq!(r.json["metadata"], json!({"theme": "dark"}));
    // A managed user cannot be erased here.
    s.admin(&key, Method::DELETE, &path, None).await.expect(409);
    // The SCIM document is untouched by app fields.
    let scim = s.get(&format!("/Users/{id}")).await;
    assert!(scim.json.get("roles").is_none() && scim.json.get("metadata").is_none());

    // An unmanaged user is fully editable.
    s.import(
        &key,
        &s.tenant,
        "application/x-ndjson",
        &jsonl(&[json!({"id": "app-1", "user_name": "old", "email": "old@example.com"})]),
    )
    .await
    .expect(200);
    let upath = format!("/tenants/{}/users/app-1", s.tenant);
    let r = s
        .admin(
            &key,
            Method::PATCH,
            &upath,
            Some(
                json!({"user_name": "new", "given_name": "N", "email": "new@example.com",
                        "display_name": "Newt", "external_id": "x-1", "active": false,
                        "roles": ["r"]}),
            ),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["user_name"], "new");
    assert_eq!(r.json["primary_email"], "new@example.com");
    assert_eq!(r.json["status"], "deactivated");
    assert_eq!(r.json["roles"], json!([]), "inactive: no effective roles");
    assert_eq!(r.json["direct_roles"], json!(["r"]));
    let r = s
        .admin(
            &key,
            Method::PATCH,
            &upath,
            Some(json!({"display_name": null})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["display_name"], Value::Null);
    // Errors: a taken userName, bad roles, unknown fields, unknown user.
    let r = s
        .admin(
            &key,
            Method::PATCH,
            &upath,
            Some(json!({"user_name": "SCIM@example.com"})),
        )
        .await;
    r.expect(409);
    s.admin(&key, Method::PATCH, &upath, Some(json!({"roles": [""]})))
        .await
        .expect(400);
    s.admin(&key, Method::PATCH, &upath, Some(json!({"shoe": 1})))
        .await
        .expect(400);
    s.admin(
        &key,
        Method::PATCH,
        &format!("/tenants/{}/users/nope", s.tenant),
        Some(json!({})),
    )
    .await
    .expect(404);
    // Erase it.
    s.admin(&key, Method::DELETE, &upath, None)
        .await
        .expect(204);
    s.admin(&key, Method::GET, &upath, None).await.expect(404);
    let events = s.feed(&key, 0).await;
    assert!(types(&events).contains(&"user.erased"));

    // Groups: a managed group's displayName and members are read-only, its metadata is not.
    let g = s.create_group("Managed", &[&id]).await;
    let gpath = format!("/tenants/{}/groups/{}", s.tenant, g["id"].as_str().unwrap());
    for body in [
        json!({"display_name": "Renamed"}),
        json!({"members": []}),
        json!({"add_members": [id]}),
    ] {
        let r = s.admin(&key, Method::PATCH, &gpath, Some(body)).await;
        r.expect(409);
        assert!(r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("identity provider"));
    }
    let r = s
        .admin(
            &key,
            Method::PATCH,
            &gpath,
            Some(json!({"metadata": {"color": "red"}})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["metadata"], json!({"color": "red"}));
    s.admin(&key, Method::DELETE, &gpath, None)
        .await
        .expect(409);
}

#[tokio::test]
async fn app_groups_can_be_created_edited_and_deleted() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let scim_user = s.user("u1").await;
    let base = format!("/tenants/{}/groups", s.tenant);
    let r = s
        .admin(
            &key,
            Method::POST,
            &base,
            Some(json!({"display_name": "Beta", "members": [scim_user], "metadata": {"k": 1}})),
        )
        .await;
    r.expect(201);
    assert_eq!(r.json["managed"], false);
    assert_eq!(r.json["member_count"], 1);
    let gid = r.json["id"].as_str().unwrap().to_owned();
    // Invisible to SCIM, and not among the SCIM user's groups.
    s.get(&format!("/Groups/{gid}"))
        .await
        .expect_error(404, None);
    let u = s.get(&format!("/Users/{scim_user}")).await;
    assert!(u.json.get("groups").is_none(), "{}", u.text);
    let f = s
        .filter("/Users", &format!("groups.value eq \"{gid}\""))
        .await;
    assert_eq!(f["totalResults"], 0);
    // But the app sees the membership.
    let app = s.app_user(&key, &scim_user).await;
    assert_eq!(app["groups"][0]["id"], gid.as_str());

    let path = format!("{base}/{gid}");
    let r = s
        .admin(
            &key,
            Method::PATCH,
            &path,
            Some(json!({"display_name": "Beta 2", "external_id": "b2", "remove_members": [scim_user]})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["display_name"], "Beta 2");
    assert_eq!(r.json["external_id"], "b2");
    assert_eq!(r.json["member_count"], 0);
    s.admin(
        &key,
        Method::PATCH,
        &path,
        Some(json!({"add_members": ["nobody"]})),
    )
    .await
    .expect(409);
    s.admin(
        &key,
        Method::POST,
        &base,
        Some(json!({"display_name": " "})),
    )
    .await
    .expect(400);
    let members = s.admin_get(&key, &format!("{path}/members")).await;
    assert_eq!(members["members"], json!([]));
    s.admin(&key, Method::DELETE, &path, None).await.expect(204);
    s.admin(&key, Method::GET, &path, None).await.expect(404);
    s.admin(&key, Method::GET, &format!("{path}/members"), None)
        .await
        .expect(404);
}

#[tokio::test]
async fn users_and_groups_lists_page_with_cursors_and_filter() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let mut scim_ids = Vec::new();
    for i in 0..7 {
        scim_ids.push(s.user(&format!("scim{i}@example.com")).await);
    }
    let body: Vec<Value> = (0..5)
        .map(|i| json!({"user_name": format!("app{i}@example.com"), "email": format!("app{i}@example.com"), "groups": [format!("G{}", i % 2)]}))
        .collect();
    s.import(&key, &s.tenant, "application/x-ndjson", &jsonl(&body))
        .await
        .expect(200);
    s.patch_ops(
        &format!("/Users/{}", scim_ids[0]),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .expect(200);
    s.delete(&format!("/Users/{}", scim_ids[1]))
        .await
        .expect(204);

    // Every user once, in pages of 3.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = s
            .admin_get(
                &key,
                &format!("/tenants/{}/users?limit=3&cursor={cursor}", s.tenant),
            )
            .await;
        pages += 1;
        for u in page["users"].as_array().unwrap() {
            seen.push(u["user_name"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 12, "{seen:?}");
    assert_eq!(pages, 4);
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 12);

    let q = |query: &str| format!("/tenants/{}/users?{query}", s.tenant);
    let names = |v: &Value| -> Vec<String> {
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["user_name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&s.admin_get(&key, &q("managed=false")).await).len(),
        5
    );
    assert_eq!(names(&s.admin_get(&key, &q("managed=true")).await).len(), 7);
    assert_eq!(
        names(&s.admin_get(&key, &q("status=deactivated")).await),
        ["scim0@example.com"]
    );
    let dep = s.admin_get(&key, &q("status=deprovisioned")).await;
    assert_eq!(names(&dep), ["scim1@example.com"]);
    assert_eq!(dep["users"][0]["status"], "deprovisioned");
    assert_eq!(
        names(&s.admin_get(&key, &q("q=APP3")).await),
        ["app3@example.com"]
    );
    assert_eq!(
        names(&s.admin_get(&key, &q("email=App4@Example.com")).await),
        ["app4@example.com"]
    );
    assert_eq!(
        names(&s.admin_get(&key, &q("q=scim&status=active")).await).len(),
        5
    );
    // Bad parameters are 400s, an unknown tenant a 404.
    for bad in [
        "cursor=zzz",
        "status=gone",
        "managed=maybe",
        "limit=-1",
        "color=red",
    ] {
        s.admin(&key, Method::GET, &q(bad), None).await.expect(400);
    }
    s.admin(&key, Method::GET, "/tenants/nope/users", None)
        .await
        .expect(404);
    s.admin(&key, Method::GET, "/tenants/nope/groups", None)
        .await
        .expect(404);
    s.admin(
        &key,
        Method::GET,
        &format!("/tenants/{}/users/nope", s.tenant),
        None,
    )
    .await
    .expect(404);

    // Groups, with their members paged too.
    let g = s
        .create_group(
            "Big",
            &scim_ids[2..].iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
    let groups = s
        .admin_get(&key, &format!("/tenants/{}/groups?limit=2", s.tenant))
        .await;
    assert_eq!(groups["groups"].as_array().unwrap().len(), 2);
    let c = groups["next_cursor"].as_str().unwrap();
    let rest = s
        .admin_get(
            &key,
            &format!("/tenants/{}/groups?limit=2&cursor={c}", s.tenant),
        )
        .await;
    assert_eq!(rest["groups"][0]["display_name"], "Big");
    assert!(rest["next_cursor"].is_null());
    let by_name = s
        .admin_get(&key, &format!("/tenants/{}/groups?q=g", s.tenant))
        .await;
    assert_eq!(by_name["groups"].as_array().unwrap().len(), 2);
    let gpath = format!(
        "/tenants/{}/groups/{}/members",
        s.tenant,
        g["id"].as_str().unwrap()
    );
    let mut member_ids = Vec::new();
    let mut member_names = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = s
            .admin_get(&key, &format!("{gpath}?limit=2&cursor={cursor}"))
            .await;
        for m in page["members"].as_array().unwrap() {
            assert_eq!(m["managed"], true);
            assert_eq!(m["status"], "active");
            member_ids.push(m["id"].as_str().unwrap().to_owned());
            member_names.push(m["user_name"].as_str().unwrap().to_lowercase());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    // Members come in name order (folded userName, then id).
    let mut sorted = member_names.clone();
    sorted.sort();
    assert_eq!(member_names, sorted);
    let mut expected: Vec<String> = scim_ids[2..].to_vec();
    expected.sort();
    member_ids.sort();
    assert_eq!(member_ids, expected);
    let u = s.app_user(&key, &scim_ids[2]).await;
    assert_eq!(u["groups"][0]["display_name"], "Big");
    assert_eq!(ids(&s.get("/Groups").await.json).len(), 1);
}

#[tokio::test]
async fn welcome_event_on_create_when_enabled() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    s.user("before").await;
    s.set_settings(&s.tenant, json!({"welcome_email": true}));
    let id = s
        .create_user(&json!({"schemas": [USER_URN], "userName": "hello",
                            "name": {"givenName": "Hal"},
                            "emails": [{"value": "hello@example.com", "primary": true}]}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Restoring or matching an existing user is not a welcome.
    s.delete(&format!("/Users/{id}")).await.expect(204);
    s.post("/Users", &user_body("hello")).await.expect(201);
    s.import(
        &key,
        &s.tenant,
        "application/x-ndjson",
        &jsonl(&[json!({"user_name": "existing"})]),
    )
    .await
    .expect(200);
    s.post("/Users", &user_body("existing")).await.expect(201);
    let events = s.feed(&key, 0).await;
    let welcomes: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "user.welcome")
        .collect();
    assert_eq!(welcomes.len(), 1, "{:?}", types(&events));
    assert_eq!(welcomes[0]["data"]["user"]["id"], id.as_str());
    assert_eq!(
        welcomes[0]["data"]["user"]["emails"][0]["value"],
        "hello@example.com"
    );
    let pos = |t: &str| events.iter().position(|e| e["type"] == t).unwrap();
    assert_eq!(pos("user.welcome"), pos("user.restored") - 2);
}

/// Two editors of one app user: the second save, made against the version both read, is
/// refused instead of overwriting the first (issue 14); what an operator types as an email is
/// checked for an email's shape, in edits and imports alike.
#[tokio::test]
async fn stale_edits_are_refused_and_typed_emails_are_checked() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    s.import(
        &key,
        &s.tenant,
        "application/x-ndjson",
        &jsonl(&[json!({"id": "app-1", "user_name": "ann@example.com"})]),
    )
    .await
    .expect(200);
    let path = format!("/tenants/{}/users/app-1", s.tenant);
    let read = s.app_user(&key, "app-1").await;
    let v = read["version"].as_i64().unwrap();
    // The first editor saves against the version read: fine.
    let first = s
        .admin(
            &key,
            Method::PATCH,
            &path,
            Some(json!({"display_name": "Ann", "version": v})),
        )
        .await;
    first.expect(200);
    // The second, against the same version: refused, nothing written.
    let second = s
        .admin(
            &key,
            Method::PATCH,
            &path,
            Some(json!({"display_name": "Anne", "version": v})),
        )
        .await;
    second.expect(409);
    let m = second.json["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("changed since it was read") && m.contains("nothing was saved"),
        "{m}"
    );
    assert_eq!(s.app_user(&key, "app-1").await["display_name"], "Ann");
    // Without a version the change applies to the current state, as before.
    s.admin(
        &key,
        Method::PATCH,
        &path,
        Some(json!({"display_name": "Anne"})),
    )
    .await
    .expect(200);

    for bad in [
        "not-an-email",
        "a@b",
        "a b@example.com",
        "@example.com",
        "a@@example.com",
    ] {
        let r = s
            .admin(&key, Method::PATCH, &path, Some(json!({"email": bad})))
            .await;
        r.expect(400);
        assert!(r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an email"));
    }
    s.admin(
        &key,
        Method::PATCH,
        &path,
        Some(json!({"email": "ann@example.co.uk"})),
    )
    .await
    .expect(200);
    let r = s
        .import(
            &key,
            &s.tenant,
            "application/x-ndjson",
            &jsonl(&[json!({"user_name": "bo@example.com", "email": "not-an-email"})]),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["imported"], 0);
    assert!(
        r.json["errors"][0]["message"]
            .as_str()
            .unwrap_or_else(|| r.json["errors"][0]["error"].as_str().unwrap_or(""))
            .contains("not an email"),
        "{}",
        r.json
    );
}
