//! Groups: round trip, members, the users' `groups` attribute.

use serde_json::{json, Value};

use crate::harness::{group_body, without_meta, TestServer, GROUP_URN};

fn member_ids(g: &Value) -> Vec<String> {
    let mut v: Vec<String> = g["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn group_round_trip() {
    let s = TestServer::start().await;
    let a = s.user("a").await;
    let b = s.user("b").await;
    let mut body = group_body("Tour Guides", &[&a]);
    body["externalId"] = json!("ext-tg");
    let r = s.post("/Groups", &body).await;
    r.expect(201);
    let g = r.json.clone();
    let id = g["id"].as_str().unwrap().to_owned();
    assert_eq!(g["schemas"], json!([GROUP_URN]));
    assert_eq!(g["displayName"], "Tour Guides");
    assert_eq!(g["externalId"], "ext-tg");
    assert_eq!(g["meta"]["resourceType"], "Group");
    assert_eq!(
        r.header("location").unwrap(),
        g["meta"]["location"].as_str().unwrap()
    );
    assert_eq!(member_ids(&g), [a.clone()]);
    let got = s.get(&format!("/Groups/{id}")).await;
    got.expect(200);
    assert_eq!(without_meta(&got.json), without_meta(&g));
    // PUT replaces the member set and the name.
    let r = s
        .put(&format!("/Groups/{id}"), &group_body("Guides", &[&b]))
        .await;
    r.expect(200);
    assert_eq!(r.json["displayName"], "Guides");
    assert_eq!(member_ids(&r.json), [b.clone()]);
    assert!(r.json.get("externalId").is_none());
    // PUT without members empties the group.
    let r = s
        .put(
            &format!("/Groups/{id}"),
            &json!({"schemas": [GROUP_URN], "displayName": "Guides"}),
        )
        .await;
    r.expect(200);
    assert!(member_ids(&r.json).is_empty(), "{}", r.text);
    // PATCH.
    let r = s
        .patch_ops(
            &format!("/Groups/{id}"),
            json!([{"op": "replace", "path": "displayName", "value": "G2"}]),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["displayName"], "G2");
    // DELETE.
    s.delete(&format!("/Groups/{id}")).await.expect(204);
    s.get(&format!("/Groups/{id}"))
        .await
        .expect_error(404, None);
    s.delete(&format!("/Groups/{id}"))
        .await
        .expect_error(404, None);
}

#[tokio::test]
async fn members_have_value_ref_and_type() {
    let s = TestServer::start().await;
    let a = s.user("a").await;
    let b = s.user("b").await;
    let g = s.create_group("eng", &[&a, &b]).await;
    let id = g["id"].as_str().unwrap();
    let got = s.get(&format!("/Groups/{id}")).await.json;
    assert_eq!(member_ids(&got), sorted(&[&a, &b]));
    for m in got["members"].as_array().unwrap() {
        let v = m["value"].as_str().unwrap();
        assert_eq!(m["$ref"], format!("{}/Users/{v}", s.base));
        assert_eq!(m["type"], "User");
    }
    // excludedAttributes=members omits them.
    let r = s
        .get_q(
            &format!("/Groups/{id}"),
            &[("excludedAttributes", "members")],
        )
        .await;
    r.expect(200);
    assert!(r.json.get("members").is_none(), "{}", r.text);
    assert_eq!(r.json["displayName"], "eng");
    let r = s
        .get_q("/Groups", &[("excludedAttributes", "members")])
        .await;
    assert!(
        r.json["Resources"][0].get("members").is_none(),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn members_added_and_removed_by_patch() {
    let s = TestServer::start().await;
    let a = s.user("a").await;
    let b = s.user("b").await;
    let c = s.user("c").await;
    let g = s.create_group("ops", &[&a]).await;
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());
    let r = s
        .patch_ops(
            &path,
            json!([{"op": "add", "path": "members", "value": [{"value": b}, {"value": c}]}]),
        )
        .await;
    r.expect(200);
    assert_eq!(member_ids(&r.json), sorted(&[&a, &b, &c]));
    // Adding an existing member again does not duplicate it.
    let r = s
        .patch_ops(
            &path,
            json!([{"op": "add", "path": "members", "value": [{"value": a}]}]),
        )
        .await;
    r.expect(200);
    assert_eq!(member_ids(&r.json), sorted(&[&a, &b, &c]));
    // Remove one by filter.
    let r = s
        .patch_ops(
            &path,
            json!([{"op": "remove", "path": format!("members[value eq \"{b}\"]")}]),
        )
        .await;
    r.expect(200);
    assert_eq!(member_ids(&r.json), sorted(&[&a, &c]));
    // Path-less add with members.
    let r = s
        .patch_ops(
            &path,
            json!([{"op": "add", "value": {"members": [{"value": b}]}}]),
        )
        .await;
    r.expect(200);
    assert_eq!(member_ids(&r.json), sorted(&[&a, &b, &c]));
    // Replace the whole set.
    let r = s
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "members", "value": [{"value": c}]}]),
        )
        .await;
    r.expect(200);
    assert_eq!(member_ids(&r.json), [c.clone()]);
    // Remove all.
    let r = s
        .patch_ops(&path, json!([{"op": "remove", "path": "members"}]))
        .await;
    r.expect(200);
    assert!(member_ids(&r.json).is_empty());
    assert!(member_ids(&s.get(&path).await.json).is_empty());
}

#[tokio::test]
async fn user_groups_attribute_lists_the_group() {
    let s = TestServer::start().await;
    let a = s.user("a").await;
    let g = s.create_group("readers", &[&a]).await;
    let gid = g["id"].as_str().unwrap();
    let u = s.get(&format!("/Users/{a}")).await.json;
    let groups = u["groups"].as_array().expect("groups attribute");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["value"], gid);
    assert_eq!(groups[0]["display"], "readers");
    assert_eq!(groups[0]["$ref"], format!("{}/Groups/{gid}", s.base));
    // Filter on groups.value finds the user.
    let list = s
        .filter("/Users", &format!("groups.value eq \"{gid}\""))
        .await;
    assert_eq!(crate::harness::ids(&list), [a.clone()]);
}

#[tokio::test]
async fn deleting_a_user_removes_it_from_groups() {
    let s = TestServer::start().await;
    let a = s.user("a").await;
    let b = s.user("b").await;
    let g = s.create_group("all", &[&a, &b]).await;
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());
    s.delete(&format!("/Users/{a}")).await.expect(204);
    assert_eq!(member_ids(&s.get(&path).await.json), [b.clone()]);
    let list = s
        .filter("/Groups", &format!("members.value eq \"{a}\""))
        .await;
    assert_eq!(list["totalResults"], 0);
}

#[tokio::test]
async fn unknown_member_is_invalid_value() {
    let s = TestServer::start().await;
    let a = s.user("a").await;
    let r = s
        .post("/Groups", &group_body("bad", &[&a, "no-such-user"]))
        .await;
    r.expect_error(400, Some("invalidValue"));
    assert_eq!(s.get("/Groups").await.json["totalResults"], 0);
    let g = s.create_group("good", &[&a]).await;
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());
    let r = s
        .patch_ops(
            &path,
            json!([{"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}]),
        )
        .await;
    r.expect_error(400, Some("invalidValue"));
    let r = s.put(&path, &group_body("good", &["no-such-user"])).await;
    r.expect_error(400, Some("invalidValue"));
    assert_eq!(member_ids(&s.get(&path).await.json), [a.clone()]);
}

#[tokio::test]
async fn nested_group_member_is_refused() {
    let s = TestServer::start().await;
    let inner = s.create_group("inner", &[]).await;
    let inner_id = inner["id"].as_str().unwrap();
    let r = s
        .post(
            "/Groups",
            &json!({"schemas": [GROUP_URN], "displayName": "outer",
                    "members": [{"value": inner_id, "type": "Group"}]}),
        )
        .await;
    r.expect_error(400, None);
    // Even without the type, a group id is not a user id.
    let r = s.post("/Groups", &group_body("outer2", &[inner_id])).await;
    r.expect_error(400, None);
    let path = format!("/Groups/{inner_id}");
    let r = s
        .patch_ops(&path, json!([{"op": "add", "path": "members", "value": [{"value": inner_id, "type": "Group"}]}]))
        .await;
    r.expect_error(400, None);
}

#[tokio::test]
async fn display_name_is_required() {
    let s = TestServer::start().await;
    let r = s.post("/Groups", &json!({"schemas": [GROUP_URN]})).await;
    r.expect_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn group_rename_and_delete_show_in_user_groups() {
    let s = TestServer::start().await;
    let a = s.user("a").await;
    let g = s.create_group("before", &[&a]).await;
    let gp = format!("/Groups/{}", g["id"].as_str().unwrap());
    let up = format!("/Users/{a}");
    s.patch_ops(
        &gp,
        json!([{"op": "replace", "path": "displayName", "value": "after"}]),
    )
    .await
    .expect(200);
    assert_eq!(s.get(&up).await.json["groups"][0]["display"], "after");
    // A PUT of the user leaves its memberships alone (groups is readOnly).
    s.put(&up, &crate::harness::user_body("a"))
        .await
        .expect(200);
    assert_eq!(s.get(&up).await.json["groups"][0]["display"], "after");
    assert_eq!(member_ids(&s.get(&gp).await.json), [a.clone()]);
    s.delete(&gp).await.expect(204);
    let u = s.get(&up).await.json;
    assert!(
        u.get("groups")
            .is_none_or(|g| g.as_array().is_some_and(Vec::is_empty)),
        "{u}"
    );
}

#[tokio::test]
async fn concurrent_member_adds_are_not_lost() {
    let s = TestServer::start().await;
    let mut users = Vec::new();
    for i in 0..12 {
        users.push(s.user(&format!("c{i}")).await);
    }
    let g = s.create_group("busy", &[]).await;
    let gp = format!("/Groups/{}", g["id"].as_str().unwrap());
    let results = futures::future::join_all(users.iter().map(|u| {
        s.patch_ops(
            &gp,
            json!([{"op": "add", "path": "members", "value": [{"value": u}]}]),
        )
    }))
    .await;
    for r in &results {
        r.expect(200);
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    assert_eq!(member_ids(&s.get(&gp).await.json), sorted(&refs));
}

/// A list page reads the relations of all its resources at once (issue 10): each listed User
/// and Group is the same as its GET, projections included, and excluding the relation leaves
/// it out.
#[tokio::test]
async fn list_pages_carry_the_same_relations_as_gets() {
    let s = TestServer::start().await;
    let mut users = Vec::new();
    for name in ["a", "b", "c", "d"] {
        users.push(s.user(name).await);
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    s.create_group("one", &refs[..3]).await;
    s.create_group("two", &refs[1..2]).await;
    s.create_group("empty", &[]).await;
    for (endpoint, relation) in [("/Users", "groups"), ("/Groups", "members")] {
        for query in [
            vec![],
            vec![("count", "2")],
            vec![("attributes", relation)],
            vec![("attributes", "members.value,groups.display")],
        ] {
            let list = s.get_q(endpoint, &query).await;
            list.expect(200);
            let items = list.json["Resources"].as_array().unwrap();
            assert!(!items.is_empty());
            for item in items {
                let id = item["id"].as_str().unwrap();
                let projection: Vec<(&str, &str)> = query
                    .iter()
                    .filter(|(k, _)| *k != "count")
                    .copied()
                    .collect();
                let one = s.get_q(&format!("{endpoint}/{id}"), &projection).await;
                assert_eq!(item, &one.json, "{endpoint} {query:?}");
            }
        }
        let list = s.get_q(endpoint, &[("excludedAttributes", relation)]).await;
        for item in list.json["Resources"].as_array().unwrap() {
            assert!(item.get(relation).is_none(), "{}", list.text);
        }
    }
    // Members are listed in id order, with `$ref` and `type`, as before.
    let g = s.filter("/Groups", "displayName eq \"one\"").await;
    let members = g["Resources"][0]["members"].as_array().unwrap();
    let mut want: Vec<String> = refs[..3].iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    let got: Vec<&str> = members
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(got, want);
    assert!(members
        .iter()
        .all(|m| m["type"] == "User" && m["$ref"].is_string()));
    let u = s.get(&format!("/Users/{}", users[1])).await.json;
    assert_eq!(u["groups"].as_array().unwrap().len(), 2);
}
