//! Custom attributes (issue 13, item 3) against the real binary: declared through the admin API
//! and the CLI, published in `/Schemas` and `/ResourceTypes`, validated by type, stored,
//! returned, filtered, sorted, patched and evented; removing or retyping one that holds values
//! is refused with the list, and allowed once no resource holds it.

use reqwest::Method;
use serde_json::{json, Value};

use crate::events::types;
use crate::harness::{Resp, TestServer, USER_URN};

const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
const SITE: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:Group";

fn declarations() -> Value {
    json!({"schemas": [
        {"urn": ACME, "resource": "User", "name": "AcmeUser", "description": "Acme's own user attributes",
         "attributes": [
            {"name": "costCenter", "type": "string", "description": "Finance cost center"},
            {"name": "level", "type": "integer"},
            {"name": "regions", "type": "string", "multiValued": true},
            {"name": "contractor", "type": "boolean"},
         ]},
        {"urn": SITE, "resource": "Group", "attributes": [{"name": "site", "type": "string"}]},
    ]})
}

async fn declare(s: &TestServer, key: &str, body: Value) -> Resp {
    s.admin(
        key,
        Method::PUT,
        &format!("/tenants/{}/custom-schemas", s.tenant),
        Some(body),
    )
    .await
}

fn user(name: &str, cost: &str, level: i64) -> Value {
    json!({
        "schemas": [USER_URN, ACME],
        "userName": name,
        ACME: {"costCenter": cost, "level": level, "regions": ["emea"]},
    })
}

#[tokio::test]
async fn declared_attributes_are_published_validated_stored_filtered_sorted_and_evented() {
    let s = TestServer::start().await;
    let key = s.admin_key();

    // Before the declaration the extension is unknown: its attributes are dropped.
    let before = s.create_user(&user("early", "R1", 1)).await;
    assert!(before.get(ACME).is_none(), "{before}");

    let r = declare(&s, &key, declarations()).await;
    r.expect(200);
    assert_eq!(r.json["schemas"][0]["urn"], ACME);

    // Published.
    let schemas = s.get("/Schemas").await;
    schemas.expect(200);
    let ids: Vec<&str> = schemas.json["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&ACME) && ids.contains(&SITE), "{ids:?}");
    let one = s.get(&format!("/Schemas/{ACME}")).await;
    one.expect(200);
    assert_eq!(one.json["name"], "AcmeUser");
    let level = one.json["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "level")
        .unwrap();
    assert_eq!(level["type"], "integer");
    let rt = s.get("/ResourceTypes/User").await;
    let exts: Vec<&str> = rt.json["schemaExtensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["schema"].as_str().unwrap())
        .collect();
    assert!(exts.contains(&ACME), "{exts:?}");
    let grt = s.get("/ResourceTypes/Group").await;
    assert_eq!(grt.json["schemaExtensions"][0]["schema"], SITE);

    // Validated by type, stored and returned.
    let bad = s
        .post(
            "/Users",
            &json!({"schemas": [USER_URN, ACME], "userName": "x", ACME: {"level": "high"}}),
        )
        .await;
    bad.expect_error(400, Some("invalidValue"));
    assert!(
        bad.json["detail"].as_str().unwrap().contains("level"),
        "{}",
        bad.json
    );
    let ann = s.create_user(&user("ann", "R&D", 3)).await;
    assert_eq!(
        ann[ACME],
        json!({"costCenter": "R&D", "level": 3, "regions": ["emea"]})
    );
    assert!(ann["schemas"].as_array().unwrap().contains(&json!(ACME)));
    let id = ann["id"].as_str().unwrap().to_owned();
    let got = s.get(&format!("/Users/{id}")).await;
    assert_eq!(got.json[ACME]["level"], 3);
    s.create_user(&user("bob", "Sales", 1)).await;
    s.create_user(&user("cy", "sales", 2)).await;

    // Filtered (case-insensitive strings, typed comparisons) and sorted.
    let f = s
        .filter("/Users", &format!("{ACME}:costCenter eq \"SALES\""))
        .await;
    assert_eq!(f["totalResults"], 2, "{f}");
    let f = s.filter("/Users", &format!("{ACME}:level ge 2")).await;
    assert_eq!(f["totalResults"], 2, "{f}");
    let sorted = s
        .get_q(
            "/Users",
            &[
                ("sortBy", &format!("{ACME}:level")),
                ("sortOrder", "descending"),
                ("filter", &format!("{ACME}:level pr")),
            ],
        )
        .await;
    sorted.expect(200);
    let names: Vec<&str> = sorted.json["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ann", "cy", "bob"]);

    // Patched, and the change is evented with old and new values.
    let after = s.feed(&key, 0).await.last().unwrap()["seq"]
        .as_i64()
        .unwrap();
    s.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": format!("{ACME}:level"), "value": 5}]),
    )
    .await
    .expect(200);
    let events = s.feed(&key, after).await;
    assert_eq!(types(&events), ["user.updated"]);
    let changes = &events[0]["data"]["changes"];
    assert!(
        changes
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["attribute"] == format!("{ACME}:level") && c["old"] == 3 && c["new"] == 5),
        "{events:?}"
    );

    // Groups carry theirs.
    let g = s
        .post(
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", SITE],
                    "displayName": "ops", SITE: {"site": "Berlin"}}),
        )
        .await;
    g.expect(201);
    assert_eq!(g.json[SITE]["site"], "Berlin");
}

#[tokio::test]
async fn removing_or_retyping_an_attribute_that_holds_values_is_refused_with_the_list() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    declare(&s, &key, declarations()).await.expect(200);
    let ann = s.create_user(&user("ann", "R&D", 3)).await;
    let id = ann["id"].as_str().unwrap().to_owned();

    // `level` retyped and `costCenter` removed: both hold a value.
    let mut changed = declarations();
    changed["schemas"][0]["attributes"] = json!([
        {"name": "level", "type": "string"},
        {"name": "regions", "type": "string", "multiValued": true},
        {"name": "contractor", "type": "boolean"},
    ]);
    let r = declare(&s, &key, changed.clone()).await;
    r.expect(409);
    let listed = r.json["error"]["details"]["attributes"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{}", r.json);
    assert!(listed
        .iter()
        .any(|a| a["attribute"] == "level" && a["change"] == "retyped" && a["resources"] == 1));
    assert!(listed
        .iter()
        .any(|a| a["attribute"] == "costCenter" && a["change"] == "removed"));
    // Nothing changed: the value is still served and still typed.
    assert_eq!(s.get(&format!("/Users/{id}")).await.json[ACME]["level"], 3);

    // `contractor` holds nothing: it may go. A name taken by a core attribute is a 409 naming it.
    let mut fewer = declarations();
    fewer["schemas"][0]["attributes"]
        .as_array_mut()
        .unwrap()
        .pop();
    declare(&s, &key, fewer.clone()).await.expect(200);
    let bad = declare(
        &s,
        &key,
        json!({"schemas": [{"urn": ACME, "resource": "User", "attributes": [{"name": "userName", "type": "string"}]}]}),
    )
    .await;
    bad.expect(409);
    assert!(bad.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("core User attribute"));

    // Once the identity provider clears the values, the change goes through.
    s.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "remove", "path": format!("{ACME}:level")},
               {"op": "remove", "path": format!("{ACME}:costCenter")}]),
    )
    .await
    .expect(200);
    declare(&s, &key, changed).await.expect(200);
    let typed = s
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "add", "path": format!("{ACME}:level"), "value": "senior"}]),
        )
        .await;
    typed.expect(200);
    assert_eq!(typed.json[ACME]["level"], "senior");
}

#[tokio::test]
async fn the_cli_declares_shows_and_clears_custom_schemas() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("schemas.json");
    std::fs::write(&file, declarations().to_string()).unwrap();
    let out = s.cli_ok(&[
        "tenant",
        "custom-schemas",
        &s.tenant,
        "--set",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.contains(ACME) && out.contains("level: integer"),
        "{out}"
    );
    let shown = s.cli_ok(&["tenant", "custom-schemas", &s.tenant, "--json"]);
    let v: Value = serde_json::from_str(shown.trim()).unwrap();
    assert_eq!(v["schemas"][1]["urn"], SITE);
    // The CLI's change reaches the running server.
    let mut seen = false;
    for _ in 0..50 {
        if s.get(&format!("/Schemas/{ACME}")).await.status == 200 {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen, "the server never published the CLI's declaration");
    // An index declared by the CLI is built by the server's periodic job.
    s.create_user(&user("ann", "R&D", 3)).await;
    let mut indexed = declarations();
    indexed["schemas"][0]["attributes"][1]["indexed"] = json!(true);
    std::fs::write(&file, indexed.to_string()).unwrap();
    let args = [
        "tenant",
        "custom-schemas",
        &s.tenant,
        "--set",
        file.to_str().unwrap(),
    ];
    let out = s.cli_ok(&args);
    assert!(out.contains("level: integer (indexed)"), "{out}");
    assert!(out.contains(&format!("index of {ACME}:level: ")), "{out}");
    let key = s.admin_key();
    let mut ready = false;
    for _ in 0..300 {
        if index_state(&s, &key, "level").await.as_deref() == Some("ready") {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        ready,
        "the server's job did not build the CLI's index within 30 s"
    );
    let out = s.cli_ok(&["tenant", "custom-schemas", &s.tenant, "--clear", "--force"]);
    assert!(out.contains("no custom schemas"), "{out}");
}

#[tokio::test]
async fn a_forced_change_converts_what_keeps_its_meaning_and_erases_the_rest() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    declare(&s, &key, declarations()).await.expect(200);
    let ann = s.create_user(&user("ann", "42", 3)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = s.create_user(&user("bob", "R&D", 4)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let seen = s.feed(&key, 0).await.last().unwrap()["seq"]
        .as_i64()
        .unwrap();

    // costCenter becomes an integer; level goes.
    let mut changed = declarations();
    changed["schemas"][0]["attributes"] = json!([
        {"name": "costCenter", "type": "integer"},
        {"name": "regions", "type": "string", "multiValued": true},
        {"name": "contractor", "type": "boolean"},
    ]);
    declare(&s, &key, changed.clone()).await.expect(409);
    let r = s
        .admin(
            &key,
            Method::PUT,
            &format!("/tenants/{}/custom-schemas?force=true", s.tenant),
            Some(changed),
        )
        .await;
    r.expect(200);
    let values = r.json["values"].as_array().unwrap();
    let of = |attr: &str| values.iter().find(|v| v["attribute"] == attr).unwrap();
    assert_eq!(
        (
            of("costCenter")["converted"].clone(),
            of("costCenter")["erased"].clone()
        ),
        (json!(1), json!(1)),
        "{}",
        r.json
    );
    assert_eq!(of("level")["erased"], 2);

    let a = s.get(&format!("/Users/{ann}")).await.json;
    assert_eq!(a[ACME]["costCenter"], 42);
    assert!(a[ACME].get("level").is_none(), "{a}");
    let b = s.get(&format!("/Users/{bob}")).await.json;
    assert!(b[ACME].get("costCenter").is_none(), "{b}");
    assert_eq!(b[ACME]["regions"], json!(["emea"]));
    // The host app is told, as for any change of the attributes.
    let after = s.feed(&key, seen).await;
    assert_eq!(types(&after), ["user.updated"; 4]);
    // A filter on the new type finds the converted value.
    let found = s
        .filter("/Users", &format!("{ACME}:costCenter eq 42"))
        .await;
    assert_eq!(found["totalResults"], 1);
}

const GLOBAL: &str = "urn:ietf:params:scim:schemas:extension:vendor:2.0:User";

/// Waits until the server publishes (or stops publishing) `urn` in `/Schemas`.
async fn published(s: &TestServer, urn: &str, yes: bool) {
    for _ in 0..100 {
        if (s.get(&format!("/Schemas/{urn}")).await.status == 200) == yes {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{urn} published: expected {yes}");
}

/// A SCIM request of another tenant (`base`, `token`), with `body` when given.
async fn scim_as(
    s: &TestServer,
    (base, token): (&str, &str),
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Resp {
    let mut rb = s
        .client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    s.send(rb).await
}

/// `PUT /api/v1/custom-schemas` (`query` appended to the path).
async fn declare_global(s: &TestServer, key: &str, query: &str, body: Value) -> Resp {
    s.admin(
        key,
        Method::PUT,
        &format!("/custom-schemas{query}"),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn global_declarations_reach_every_tenant_and_a_tenants_own_schema_overrides_them() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("global.json");
    let global = json!({"schemas": [{"urn": GLOBAL, "resource": "User",
        "attributes": [{"name": "region", "type": "string"}]}]});
    std::fs::write(&file, global.to_string()).unwrap();
    // Declared by another process (the CLI): the server follows.
    let out = s.cli_ok(&["custom-schemas", "--set", file.to_str().unwrap()]);
    assert!(
        out.contains(GLOBAL) && out.contains("region: string"),
        "{out}"
    );
    published(&s, GLOBAL, true).await;
    assert_eq!(
        s.admin_get(&key, "/custom-schemas").await["schemas"][0]["urn"],
        GLOBAL
    );
    let mine = s
        .admin_get(&key, &format!("/tenants/{}/custom-schemas", s.tenant))
        .await;
    assert_eq!(
        (mine["schemas"].clone(), mine["inherited"][0]["urn"].clone()),
        (json!([]), json!(GLOBAL))
    );

    // Every tenant has it: a second one too.
    let beta = s.create_tenant("beta");
    let beta = (
        beta["scim_base_url"].as_str().unwrap(),
        beta["token"].as_str().unwrap(),
    );
    let r = scim_as(&s, beta, Method::GET, &format!("/Schemas/{GLOBAL}"), None).await;
    r.expect(200);

    let ann = s
        .create_user(&json!({"schemas": [USER_URN, GLOBAL], "userName": "ann",
                              GLOBAL: {"region": "emea"}}))
        .await;
    assert_eq!(ann[GLOBAL]["region"], "emea");
    let id = ann["id"].as_str().unwrap().to_owned();

    // A tenant's own schema with the URN replaces the global one for that tenant alone.
    let own = json!({"schemas": [{"urn": GLOBAL, "resource": "User",
        "attributes": [{"name": "region", "type": "string"}, {"name": "floor", "type": "integer"}]}]});
    declare(&s, &key, own).await.expect(200);
    s.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "add", "path": format!("{GLOBAL}:floor"), "value": 3}]),
    )
    .await
    .expect(200);
    let r = scim_as(
        &s,
        beta,
        Method::POST,
        "/Users",
        Some(json!({"schemas": [USER_URN, GLOBAL], "userName": "bob",
                           GLOBAL: {"floor": 3}})),
    )
    .await;
    r.expect(201);
    assert!(
        r.json[GLOBAL].get("floor").is_none(),
        "beta has no floor: {}",
        r.json
    );

    // Removing the global schema strands nothing of acme (it overrides it), but beta's
    // values would be: none are held there, so it goes.
    let removed = declare_global(&s, &key, "", json!({"schemas": []})).await;
    removed.expect(200);
    assert_eq!(
        s.get(&format!("/Users/{id}")).await.json[GLOBAL]["floor"],
        3
    );
    // Declared again and held in beta, a removal is refused with the tenant named, and forced
    // it erases the values.
    let r = declare_global(&s, &key, "", global.clone()).await;
    r.expect(200);
    let r = scim_as(
        &s,
        beta,
        Method::POST,
        "/Users",
        Some(json!({"schemas": [USER_URN, GLOBAL], "userName": "cy",
                           GLOBAL: {"region": "apac"}})),
    )
    .await;
    r.expect(201);
    let cy = r.json["id"].as_str().unwrap().to_owned();
    let refused = declare_global(&s, &key, "", json!({"schemas": []})).await;
    refused.expect(409);
    assert_eq!(
        refused.json["error"]["details"]["attributes"][0]["tenant"],
        "beta"
    );
    let forced = declare_global(&s, &key, "?force=true", json!({"schemas": []})).await;
    forced.expect(200);
    assert_eq!(forced.json["values"][0]["erased"], 1);
    let r = scim_as(&s, beta, Method::GET, &format!("/Users/{cy}"), None).await;
    assert!(r.json.get(GLOBAL).is_none(), "{}", r.json);
}

/// The state of the tenant's index of `attribute`, as `GET …/custom-schemas` shows it.
async fn index_state(s: &TestServer, key: &str, attribute: &str) -> Option<String> {
    let r = s
        .admin(
            key,
            Method::GET,
            &format!("/tenants/{}/custom-schemas", s.tenant),
            None,
        )
        .await;
    r.expect(200);
    r.json["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ix| ix["attribute"] == attribute)
        .map(|ix| ix["state"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn an_index_declared_later_is_built_online_and_then_answers_filters_and_sorts() {
    let s = TestServer::start_with(&["--max-filter-candidates", "5"]).await;
    let key = s.admin_key();
    declare(&s, &key, declarations()).await.expect(200);
    let centers = ["Sales", "R&D", "Ops"];
    for i in 0..12_i64 {
        let center = centers[usize::try_from(i).unwrap() % 3];
        s.create_user(&user(&format!("u{i:02}"), center, i)).await;
    }
    let by_center = format!("{ACME}:costCenter eq \"sales\"");
    let by_level = format!("{ACME}:level");
    // Not indexed: evaluated in memory, so over the candidate cap.
    let r = s.get_q("/Users", &[("filter", by_center.as_str())]).await;
    r.expect_error(400, Some("tooMany"));
    assert_eq!(index_state(&s, &key, "costCenter").await, None);

    // Declared indexed: built in the background, while the server keeps answering.
    let mut indexed = declarations();
    indexed["schemas"][0]["attributes"][0]["indexed"] = json!(true);
    indexed["schemas"][0]["attributes"][1]["indexed"] = json!(true);
    let r = declare(&s, &key, indexed.clone()).await;
    r.expect(200);
    assert_eq!(r.json["indexes"].as_array().unwrap().len(), 2, "{}", r.json);
    let mut ready = false;
    for _ in 0..100 {
        if index_state(&s, &key, "costCenter").await.as_deref() == Some("ready")
            && index_state(&s, &key, "level").await.as_deref() == Some("ready")
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "the indexes were not built within 10 s");

    // Ready: answered by the index, whatever the cap.
    let f = s.filter("/Users", &by_center).await;
    assert_eq!(f["totalResults"], 4, "{f}");
    let r = s
        .get_q(
            "/Users",
            &[
                ("sortBy", by_level.as_str()),
                ("sortOrder", "descending"),
                ("count", "3"),
            ],
        )
        .await;
    r.expect(200);
    let names: Vec<&str> = r.json["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["u11", "u10", "u09"]);
    let f = s.filter("/Users", &format!("{ACME}:level ge 10")).await;
    assert_eq!(f["totalResults"], 2, "{f}");

    // Writes keep it: a new user, and a PATCH that moves one out of Sales.
    s.create_user(&user("new", "SALES", 99)).await;
    let u00 = s.filter("/Users", "userName eq \"u00\"").await;
    let id = u00["Resources"][0]["id"].as_str().unwrap().to_owned();
    s.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": format!("{ACME}:costCenter"), "value": "Ops"}]),
    )
    .await
    .expect(200);
    let f = s.filter("/Users", &by_center).await;
    let mut names: Vec<&str> = f["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["new", "u03", "u06", "u09"]);

    // A value too long to be an index key is refused, naming the attribute.
    let long = s.post("/Users", &user("long", &"x".repeat(1100), 1)).await;
    long.expect_error(400, Some("invalidValue"));
    assert!(
        long.json["detail"].as_str().unwrap().contains("costCenter"),
        "{}",
        long.json
    );

    // No longer indexed: the index goes, and the filter is evaluated in memory again.
    declare(&s, &key, declarations()).await.expect(200);
    assert_eq!(index_state(&s, &key, "costCenter").await, None);
    let r = s.get_q("/Users", &[("filter", by_center.as_str())]).await;
    r.expect_error(400, Some("tooMany"));
}

#[tokio::test]
async fn an_index_declared_globally_is_built_for_every_tenant() {
    let s = TestServer::start_with(&["--max-filter-candidates", "2"]).await;
    let key = s.admin_key();
    declare_global(&s, &key, "", declarations())
        .await
        .expect(200);
    for (name, center) in [("a", "Sales"), ("b", "Ops"), ("c", "sales")] {
        s.create_user(&user(name, center, 1)).await;
    }
    let by_center = format!("{ACME}:costCenter eq \"SALES\"");
    let r = s.get_q("/Users", &[("filter", by_center.as_str())]).await;
    r.expect_error(400, Some("tooMany"));
    let mut indexed = declarations();
    indexed["schemas"][0]["attributes"][0]["indexed"] = json!(true);
    declare_global(&s, &key, "", indexed).await.expect(200);
    let mut ready = false;
    for _ in 0..100 {
        if index_state(&s, &key, "costCenter").await.as_deref() == Some("ready") {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "the index was not built within 10 s");
    let f = s.filter("/Users", &by_center).await;
    assert_eq!(f["totalResults"], 2, "{f}");
}
