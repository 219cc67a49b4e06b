//! Filters over HTTP (RFC 7644 §3.4.2.2).

use serde_json::json;

use crate::harness::{ids, TestServer, ENTERPRISE_URN, USER_URN};

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Three users with distinct attributes; returns (bjensen, jsmith, inactive) ids.
async fn seed(s: &TestServer) -> (String, String, String) {
    let b = s
        .create_user(&json!({
            "schemas": [USER_URN, ENTERPRISE_URN],
            "userName": "BJensen",
            "externalId": "Ext-B",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "emails": [{"value": "bjensen@example.com", "type": "work"},
                       {"value": "babs@home.example.org", "type": "home"}],
            "active": true,
            ENTERPRISE_URN: {"employeeNumber": "701984"}
        }))
        .await;
    let j = s
        .create_user(&json!({
            "schemas": [USER_URN, ENTERPRISE_URN],
            "userName": "jsmith",
            "externalId": "ext-j",
            "name": {"familyName": "Smith", "givenName": "John"},
            "emails": [{"value": "jsmith@other.org", "type": "work"},
                       {"value": "john@example.com", "type": "home"}],
            "active": true,
            ENTERPRISE_URN: {"employeeNumber": "42"}
        }))
        .await;
    let i = s
        .create_user(&json!({
            "schemas": [USER_URN],
            "userName": "idle",
            "name": {"familyName": "Jenkins"},
            "emails": [{"value": "idle@example.com", "type": "work"}],
            "active": false
        }))
        .await;
    let id = |v: &serde_json::Value| v["id"].as_str().unwrap().to_owned();
    (id(&b), id(&j), id(&i))
}

#[tokio::test]
async fn attribute_filters() {
    let s = TestServer::start().await;
    let (b, j, i) = seed(&s).await;
    let cases: Vec<(&str, Vec<&String>)> = vec![
        ("userName eq \"bjensen\"", vec![&b]),
        ("USERNAME EQ \"BJENSEN\"", vec![&b]),
        ("externalId eq \"Ext-B\"", vec![&b]),
        ("externalId eq \"ext-b\"", vec![]),
        ("emails[type eq \"work\" and value co \"@example.com\"]", vec![&b, &i]),
        ("emails.value co \"@example.com\"", vec![&b, &j, &i]),
        ("name.familyName sw \"Jen\"", vec![&b, &i]),
        ("name.familyName sw \"jen\"", vec![&b, &i]),
        ("name.familyName ew \"sen\"", vec![&b]),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"701984\"",
            vec![&b],
        ),
        ("active eq false", vec![&i]),
        ("active eq true", vec![&b, &j]),
        ("externalId pr", vec![&b, &j]),
        ("not (externalId pr)", vec![&i]),
        ("userName eq \"bjensen\" or userName eq \"jsmith\"", vec![&b, &j]),
        (
            "(userName eq \"bjensen\" or userName eq \"idle\") and active eq true",
            vec![&b],
        ),
        (
            "userName eq \"bjensen\" or (userName eq \"idle\" and active eq true)",
            vec![&b],
        ),
        ("not (userName eq \"bjensen\") and active eq true", vec![&j]),
        ("userName ne \"bjensen\"", vec![&j, &i]),
        ("id eq \"{b}\"", vec![&b]),
    ];
    for (f, want) in cases {
        let f = f.replace("{b}", &b);
        let list = s.filter("/Users", &f).await;
        let want: Vec<String> = want.into_iter().cloned().collect();
        assert_eq!(
            sorted(ids(&list)),
            sorted(want.clone()),
            "filter {f}: {list}"
        );
        assert_eq!(list["totalResults"], want.len(), "filter {f}");
    }
}

#[tokio::test]
async fn last_modified_filter() {
    let s = TestServer::start().await;
    let old = s.user("old").await;
    let old_meta = s.get(&format!("/Users/{old}")).await.json["meta"].clone();
    let t = old_meta["lastModified"].as_str().unwrap().to_owned();
    let list = s
        .filter("/Users", &format!("meta.lastModified gt \"{t}\""))
        .await;
    assert!(ids(&list).is_empty(), "{list}");
    let list = s
        .filter("/Users", &format!("meta.lastModified ge \"{t}\""))
        .await;
    assert_eq!(ids(&list), [old.clone()]);
    // Wait until the clock has moved past t (milliseconds), then create another.
    let mut newer = None;
    for n in 0..200 {
        let id = s.user(&format!("new{n}")).await;
        let lm = s.get(&format!("/Users/{id}")).await.json["meta"]["lastModified"]
            .as_str()
            .unwrap()
            .to_owned();
        if lm != t {
            newer = Some(id);
            break;
        }
    }
    let newer = newer.expect("a later lastModified");
    let list = s
        .filter("/Users", &format!("meta.lastModified gt \"{t}\""))
        .await;
    assert!(ids(&list).contains(&newer));
    assert!(!ids(&list).contains(&old));
    let list = s
        .filter("/Users", "meta.lastModified gt \"2000-01-01T00:00:00Z\"")
        .await;
    assert!(ids(&list).contains(&old));
    let list = s
        .filter("/Users", "meta.lastModified lt \"2000-01-01T00:00:00Z\"")
        .await;
    assert_eq!(list["totalResults"], 0);
}

#[tokio::test]
async fn group_filters() {
    let s = TestServer::start().await;
    let a = s.user("a").await;
    let b = s.user("b").await;
    let g1 = s.create_group("Admins", &[&a]).await;
    let g2 = s.create_group("Readers", &[&a, &b]).await;
    let id = |v: &serde_json::Value| v["id"].as_str().unwrap().to_owned();
    let list = s.filter("/Groups", "displayName eq \"admins\"").await;
    assert_eq!(ids(&list), [id(&g1)]);
    let list = s
        .filter("/Groups", &format!("members.value eq \"{b}\""))
        .await;
    assert_eq!(ids(&list), [id(&g2)]);
    let list = s
        .filter("/Groups", &format!("members.value eq \"{a}\""))
        .await;
    assert_eq!(sorted(ids(&list)), sorted(vec![id(&g1), id(&g2)]));
    let list = s
        .filter("/Groups", &format!("members[value eq \"{b}\"]"))
        .await;
    assert_eq!(ids(&list), [id(&g2)]);
}

#[tokio::test]
async fn no_match_is_an_empty_list() {
    let s = TestServer::start().await;
    seed(&s).await;
    let r = s
        .get_q("/Users", &[("filter", "userName eq \"nobody\"")])
        .await;
    r.expect(200);
    assert_eq!(r.json["totalResults"], 0);
    assert_eq!(r.json["Resources"], json!([]));
    assert_eq!(
        r.json["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
}

#[tokio::test]
async fn bad_filters_are_invalid_filter() {
    let s = TestServer::start().await;
    seed(&s).await;
    for f in [
        "userName equals \"x\"",
        "userName eq",
        "(userName eq \"a\"",
        "userName eq \"a\")",
        "noSuchAttribute eq \"x\"",
        "name.noSuchSub eq \"x\"",
        "userName eq \"unterminated",
        "emails[type eq \"work\"",
        "userName eq \"a\" and",
        "and",
        "userName gt",
        "urn:example:nope:foo eq \"x\"",
        "userName eq x",
    ] {
        let r = s.get_q("/Users", &[("filter", f)]).await;
        r.expect_error(400, Some("invalidFilter"));
        let r = s
            .post(
                "/Users/.search",
                &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": f}),
            )
            .await;
        r.expect_error(400, Some("invalidFilter"));
    }
    for f in ["displayName eq", "members.nope eq \"x\""] {
        let r = s.get_q("/Groups", &[("filter", f)]).await;
        r.expect_error(400, Some("invalidFilter"));
    }
}
