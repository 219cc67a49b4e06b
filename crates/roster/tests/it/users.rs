//! Users: full round trip, search endpoints, media types and attribute rules.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{
    assert_subset, full_user, ids, user_body, without_meta, TestServer, ENTERPRISE_URN, SCIM_JSON,
    SEARCH_URN, USER_URN,
};

#[tokio::test]
async fn full_user_round_trip() {
    let s = TestServer::start().await;
    let boss = s.user("boss").await;
    let input = full_user("bjensen", Some(&boss));
    let r = s.post("/Users", &input).await;
    r.expect(201);
    assert!(r.header("content-type").unwrap().starts_with(SCIM_JSON));
    let created = r.json.clone();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(!id.is_empty());
    let mut expected = input.clone();
    expected.as_object_mut().unwrap().remove("schemas");
    assert_subset(&created, &expected);
    let schemas = created["schemas"].as_array().unwrap();
    assert!(schemas.contains(&json!(USER_URN)) && schemas.contains(&json!(ENTERPRISE_URN)));
    assert_eq!(created[ENTERPRISE_URN]["manager"]["value"], boss.as_str());

    // GET returns the same representation.
    let got = s.get(&format!("/Users/{id}")).await;
    got.expect(200);
    assert_eq!(without_meta(&got.json), without_meta(&created));

    // PUT replaces: changed values show, omitted ones disappear.
    let mut replaced = full_user("bjensen", None);
    replaced["title"] = json!("Head Guide");
    replaced["name"]["givenName"] = json!("Barb");
    replaced["emails"] = json!([{"value": "b@example.com", "type": "work", "primary": true}]);
    replaced.as_object_mut().unwrap().remove("nickName");
    replaced[ENTERPRISE_URN]["department"] = json!("Sales");
    let r = s.put(&format!("/Users/{id}"), &replaced).await;
    r.expect(200);
    assert_eq!(r.json["id"], id.as_str());
    assert_eq!(r.json["title"], "Head Guide");
    assert_eq!(r.json["name"]["givenName"], "Barb");
    assert_eq!(r.json["emails"].as_array().unwrap().len(), 1);
    assert!(
        r.json.get("nickName").is_none(),
        "PUT removes omitted attributes"
    );
    assert_eq!(r.json[ENTERPRISE_URN]["department"], "Sales");
    assert!(r.json[ENTERPRISE_URN].get("manager").is_none());
    let got = s.get(&format!("/Users/{id}")).await;
    assert_eq!(without_meta(&got.json), without_meta(&r.json));

    // PATCH.
    let r = s
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "displayName", "value": "Barbara"},
                   {"op": "add", "path": format!("{ENTERPRISE_URN}:manager"), "value": {"value": boss}}]),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["displayName"], "Barbara");
    assert_eq!(r.json[ENTERPRISE_URN]["manager"]["value"], boss.as_str());
    assert_eq!(r.json["title"], "Head Guide");

    // DELETE.
    s.delete(&format!("/Users/{id}")).await.expect(204);
    s.get(&format!("/Users/{id}")).await.expect_error(404, None);
}

#[tokio::test]
async fn location_header_equals_meta_location() {
    let s = TestServer::start().await;
    let r = s.post("/Users", &user_body("loc")).await;
    r.expect(201);
    let id = r.json["id"].as_str().unwrap();
    let loc = r.header("location").expect("Location header on 201");
    assert_eq!(loc, r.json["meta"]["location"].as_str().unwrap());
    assert_eq!(loc, format!("{}/Users/{id}", s.base));
    // It is absolute and dereferenceable.
    let got = s.send(s.client.get(loc).bearer_auth(&s.token)).await;
    got.expect(200);
    assert_eq!(got.json["id"], id);
}

#[tokio::test]
async fn both_json_media_types_accepted_and_scim_returned() {
    let s = TestServer::start().await;
    for (ct, name) in [
        ("application/scim+json", "a1"),
        ("application/json", "a2"),
        ("application/scim+json; charset=utf-8", "a3"),
        ("application/json;charset=UTF-8", "a4"),
    ] {
        let r = s
            .send(
                s.request(Method::POST, "/Users")
                    .header("content-type", ct)
                    .body(user_body(name).to_string()),
            )
            .await;
        r.expect(201);
        assert!(
            r.header("content-type").unwrap().starts_with(SCIM_JSON),
            "{:?}",
            r.header("content-type")
        );
    }
    let r = s.get("/Users").await;
    assert!(r.header("content-type").unwrap().starts_with(SCIM_JSON));
}

#[tokio::test]
async fn text_plain_is_415() {
    let s = TestServer::start().await;
    let r = s
        .send(
            s.request(Method::POST, "/Users")
                .header("content-type", "text/plain")
                .body(user_body("t").to_string()),
        )
        .await;
    r.expect_error(415, None);
    let r = s
        .send(
            s.request(Method::POST, "/Users/.search")
                .header("content-type", "text/plain")
                .body(json!({"schemas": [SEARCH_URN]}).to_string()),
        )
        .await;
    r.expect_error(415, None);
}

#[tokio::test]
async fn search_endpoints() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    s.user("bob").await;
    let g = s.create_group("alice-team", &[&alice]).await;
    let gid = g["id"].as_str().unwrap();

    let r = s
        .post(
            "/Users/.search",
            &json!({"schemas": [SEARCH_URN], "filter": "userName eq \"alice\"",
                    "attributes": ["userName"], "startIndex": 1, "count": 10}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["totalResults"], 1);
    assert_eq!(ids(&r.json), [alice.clone()]);
    assert!(r.json["Resources"][0].get("meta").is_none());

    let r = s
        .post(
            "/Groups/.search",
            &json!({"schemas": [SEARCH_URN], "filter": "displayName eq \"alice-team\""}),
        )
        .await;
    r.expect(200);
    assert_eq!(ids(&r.json), [gid.to_owned()]);

    // Root search spans both resource types.
    let r = s.post("/.search", &json!({"schemas": [SEARCH_URN]})).await;
    r.expect(200);
    assert_eq!(r.json["totalResults"], 3);
    let all = ids(&r.json);
    assert!(all.contains(&alice) && all.contains(&gid.to_owned()));

    // application/json works for .search too.
    let r = s
        .send(
            s.request(Method::POST, "/Users/.search")
                .header("content-type", "application/json")
                .body(json!({"schemas": [SEARCH_URN], "sortBy": "userName", "sortOrder": "descending"}).to_string()),
        )
        .await;
    r.expect(200);
    let names: Vec<&str> = r.json["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "alice"]);

    // A search request without the SearchRequest schema is refused.
    let r = s
        .post(
            "/Users/.search",
            &json!({"filter": "userName eq \"alice\""}),
        )
        .await;
    r.expect_error(400, None);
}

#[tokio::test]
async fn read_only_input_is_ignored() {
    let s = TestServer::start().await;
    let body = json!({
        "schemas": [USER_URN],
        "id": "my-own-id",
        "userName": "ro",
        "meta": {"resourceType": "Group", "created": "2000-01-01T00:00:00Z", "version": "W/\"x\""},
        "groups": [{"value": "nope", "display": "fake"}]
    });
    let r = s.post("/Users", &body).await;
    r.expect(201);
    let id = r.json["id"].as_str().unwrap();
    assert_ne!(id, "my-own-id");
    assert_eq!(r.json["meta"]["resourceType"], "User");
    assert_ne!(r.json["meta"]["created"], "2000-01-01T00:00:00Z");
    assert!(r.json.get("groups").is_none(), "{}", r.json);
    s.get("/Users/my-own-id").await.expect_error(404, None);
    // PUT with a different id in the body keeps the URL's id.
    let r = s
        .put(
            &format!("/Users/{id}"),
            &json!({"schemas": [USER_URN], "id": "other", "userName": "ro"}),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["id"], id);
}

#[tokio::test]
async fn password_is_accepted_and_never_returned() {
    let s = TestServer::start().await;
    let mut body = user_body("pw");
    body["password"] = json!("t1meMa$heen");
    let r = s.post("/Users", &body).await;
    r.expect(201);
    let id = r.json["id"].as_str().unwrap().to_owned();
    let mut seen = vec![r.text.clone()];
    seen.push(s.get(&format!("/Users/{id}")).await.text);
    seen.push(
        s.get_q(&format!("/Users/{id}"), &[("attributes", "password")])
            .await
            .text,
    );
    seen.push(
        s.get_q("/Users", &[("attributes", "password,userName")])
            .await
            .text,
    );
    seen.push(s.get("/Users").await.text);
    let r = s
        .patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "password", "value": "n3w-Secret"}]),
        )
        .await;
    r.expect(200);
    seen.push(r.text);
    let mut put = user_body("pw");
    put["password"] = json!("an0ther-Secret");
    let r = s.put(&format!("/Users/{id}"), &put).await;
    r.expect(200);
    seen.push(r.text);
    seen.push(
        s.post(
            "/Users/.search",
            &json!({"schemas": [SEARCH_URN], "attributes": ["password"]}),
        )
        .await
        .text,
    );
    for text in seen {
        assert!(!text.contains("password"), "password returned: {text}");
        assert!(
            !text.contains("t1meMa$heen")
                && !text.contains("n3w-Secret")
                && !text.contains("an0ther-Secret")
        );
    }
    // Filtering on password is not allowed to reveal anything either.
    let r = s
        .get_q("/Users", &[("filter", "password eq \"t1meMa$heen\"")])
        .await;
    assert!(r.status == 400 || r.json["totalResults"] == 0, "{}", r.text);
}

#[tokio::test]
async fn missing_user_name_is_invalid_value() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/Users",
            &json!({"schemas": [USER_URN], "displayName": "x"}),
        )
        .await;
    r.expect_error(400, Some("invalidValue"));
    let r = s
        .post("/Users", &json!({"schemas": [USER_URN], "userName": ""}))
        .await;
    r.expect_error(400, None);
}

#[tokio::test]
async fn duplicate_user_name_is_409_uniqueness() {
    let s = TestServer::start().await;
    s.user("BJensen").await;
    let r = s.post("/Users", &user_body("bjensen")).await;
    r.expect_error(409, Some("uniqueness"));
    let r = s.post("/Users", &user_body("BJENSEN")).await;
    r.expect_error(409, Some("uniqueness"));
    // Renaming another user onto a taken name is also 409.
    let other = s.user("other").await;
    let r = s
        .put(&format!("/Users/{other}"), &user_body("bJensen"))
        .await;
    r.expect_error(409, Some("uniqueness"));
    let r = s
        .patch_ops(
            &format!("/Users/{other}"),
            json!([{"op": "replace", "path": "userName", "value": "BJensen"}]),
        )
        .await;
    r.expect_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn unknown_attributes_are_ignored() {
    let s = TestServer::start().await;
    let body = json!({
        "schemas": [USER_URN, "urn:example:params:scim:schemas:extension:acme:2.0:User"],
        "userName": "unk",
        "foo": 1,
        "name": {"givenName": "U", "bogusSub": "x"},
        "urn:example:params:scim:schemas:extension:acme:2.0:User": {"badge": "42"}
    });
    let r = s.post("/Users", &body).await;
    r.expect(201);
    let id = r.json["id"].as_str().unwrap().to_owned();
    for v in [r.json.clone(), s.get(&format!("/Users/{id}")).await.json] {
        assert!(v.get("foo").is_none(), "{v}");
        assert!(
            v.get("urn:example:params:scim:schemas:extension:acme:2.0:User")
                .is_none(),
            "{v}"
        );
        assert!(!v.to_string().contains("urn:example"), "{v}");
        assert!(v["name"].get("bogusSub").is_none(), "{v}");
        assert_eq!(v["name"]["givenName"], "U");
    }
}

#[tokio::test]
async fn schemas_and_id_are_always_returned() {
    let s = TestServer::start().await;
    let mut body = user_body("always");
    body["displayName"] = json!("Always");
    let r = s
        .send(
            s.request(Method::POST, "/Users")
                .query(&[("attributes", "displayName")])
                .header("content-type", SCIM_JSON)
                .body(body.to_string()),
        )
        .await;
    r.expect(201);
    let id = r.json["id"].as_str().unwrap().to_owned();
    let check = |v: &Value| {
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut k = keys.clone();
        k.sort_unstable();
        assert_eq!(k, ["displayName", "id", "schemas"], "{v}");
    };
    check(&r.json);
    check(
        &s.get_q(&format!("/Users/{id}"), &[("attributes", "displayName")])
            .await
            .json,
    );
    let list = s
        .get_q("/Users", &[("attributes", "displayName")])
        .await
        .json;
    check(&list["Resources"][0]);
    let r = s
        .get_q(
            &format!("/Users/{id}"),
            &[("excludedAttributes", "id,schemas,userName")],
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["id"], id.as_str());
    assert!(r.json["schemas"].is_array());
    assert!(
        r.json.get("userName").is_none(),
        "userName can be excluded: {}",
        r.text
    );
}

#[tokio::test]
async fn concurrent_creates_of_one_user_name_give_one_user() {
    let s = TestServer::start().await;
    let names = [
        "race", "RACE", "Race", "rAce", "raCe", "racE", "RAce", "raCE",
    ];
    let bodies: Vec<Value> = names.iter().map(|n| user_body(n)).collect();
    let results = futures::future::join_all(bodies.iter().map(|b| s.post("/Users", b))).await;
    let created = results.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 1, "exactly one create wins");
    for r in results.iter().filter(|r| r.status != 201) {
        r.expect_error(409, Some("uniqueness"));
    }
    assert_eq!(s.get("/Users").await.json["totalResults"], 1);
}
