//! Listing: index and cursor pagination, sorting, attribute projection.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::harness::{full_user, ids, user_body, TestServer, UNLIMITED, USER_URN};

async fn seven(s: &TestServer) -> Vec<String> {
    let mut out = Vec::new();
    for n in ["u1", "u2", "u3", "u4", "u5", "u6", "u7"] {
        out.push(s.user(n).await);
    }
    out
}

#[tokio::test]
async fn index_pagination() {
    let s = TestServer::start().await;
    let all: HashSet<String> = seven(&s).await.into_iter().collect();
    let mut seen = Vec::new();
    for (start, want) in [(1, 3), (4, 3), (7, 1)] {
        let r = s
            .get_q(
                "/Users",
                &[("startIndex", &start.to_string()), ("count", "3")],
            )
            .await;
        r.expect(200);
        assert_eq!(r.json["totalResults"], 7);
        assert_eq!(r.json["startIndex"], start);
        assert_eq!(r.json["itemsPerPage"], want);
        assert_eq!(r.json["Resources"].as_array().unwrap().len(), want);
        seen.extend(ids(&r.json));
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), all);
    // Past the end: empty page, total still 7.
    let r = s
        .get_q("/Users", &[("startIndex", "20"), ("count", "3")])
        .await;
    r.expect(200);
    assert_eq!(r.json["totalResults"], 7);
    assert_eq!(r.json["itemsPerPage"], 0);
    // startIndex < 1 is treated as 1.
    let r = s
        .get_q("/Users", &[("startIndex", "0"), ("count", "2")])
        .await;
    r.expect(200);
    assert_eq!(r.json["startIndex"], 1);
    assert_eq!(r.json["itemsPerPage"], 2);
    // Default listing returns everything.
    let r = s.get("/Users").await;
    assert_eq!(r.json["itemsPerPage"], 7);
    assert_eq!(r.json["startIndex"], 1);
}

#[tokio::test]
async fn count_zero_gives_only_the_total() {
    let s = TestServer::start().await;
    seven(&s).await;
    let r = s.get_q("/Users", &[("count", "0")]).await;
    r.expect(200);
    assert_eq!(r.json["totalResults"], 7);
    let res = r.json.get("Resources");
    assert!(res.is_none() || res == Some(&json!([])), "{}", r.text);
}

#[tokio::test]
async fn count_is_capped_at_max_results() {
    use futures::StreamExt;
    let s = TestServer::start_with(UNLIMITED).await;
    let max = s.get("/ServiceProviderConfig").await.json["filter"]["maxResults"]
        .as_u64()
        .unwrap();
    assert!(max <= 5000, "maxResults {max} too large to test the cap");
    let n = max + 3;
    let statuses: Vec<u16> = futures::stream::iter(0..n)
        .map(|i| {
            let s = &s;
            async move {
                s.post("/Users", &user_body(&format!("bulk{i:05}")))
                    .await
                    .status
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|&st| st == 201),
        "not all creates succeeded"
    );
    let r = s
        .get_q("/Users", &[("count", "100000"), ("attributes", "userName")])
        .await;
    r.expect(200);
    assert_eq!(r.json["totalResults"], n);
    assert_eq!(r.json["itemsPerPage"], max);
    assert_eq!(r.json["Resources"].as_array().unwrap().len() as u64, max);
    // A negative count is treated as 0, not an error.
    let r = s.get_q("/Users", &[("count", "-5")]).await;
    r.expect(200);
    assert_eq!(r.json["totalResults"], n);
}

async fn cursor_walk(s: &TestServer, count: &str, mid: Option<&str>) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let r = s
            .get_q("/Users", &[("cursor", &cursor), ("count", count)])
            .await;
        r.expect(200);
        pages += 1;
        assert!(pages < 20, "cursor pagination does not terminate");
        let page = ids(&r.json);
        assert!(page.len() <= 3);
        seen.extend(page);
        if pages == 1 {
            if let Some(name) = mid {
                s.user(name).await;
            }
        }
        match r.json.get("nextCursor").and_then(Value::as_str) {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    seen
}

#[tokio::test]
async fn cursor_pagination_visits_everything_once() {
    let s = TestServer::start().await;
    let all = seven(&s).await;
    let r = s.get_q("/Users", &[("cursor", ""), ("count", "3")]).await;
    r.expect(200);
    assert!(r.json["nextCursor"].is_string(), "{}", r.text);
    assert_eq!(r.json["totalResults"], 7);
    assert_eq!(r.json["Resources"].as_array().unwrap().len(), 3);
    let seen = cursor_walk(&s, "3", None).await;
    assert_eq!(seen.len(), 7, "{seen:?}");
    let set: HashSet<&String> = seen.iter().collect();
    assert_eq!(set.len(), 7);
    assert!(all.iter().all(|id| set.contains(id)));
    // A user created between pages: the original ones are still each seen once.
    let seen = cursor_walk(&s, "3", Some("u0-late")).await;
    let set: HashSet<&String> = seen.iter().collect();
    assert_eq!(set.len(), seen.len(), "duplicates in {seen:?}");
    for id in &all {
        assert_eq!(
            seen.iter().filter(|s| *s == id).count(),
            1,
            "{id} in {seen:?}"
        );
    }
}

#[tokio::test]
async fn invalid_cursor_is_400() {
    let s = TestServer::start().await;
    seven(&s).await;
    for c in ["not-a-cursor", "!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let r = s.get_q("/Users", &[("cursor", c), ("count", "3")]).await;
        r.expect_error(400, Some("invalidCursor"));
    }
}

#[tokio::test]
async fn sorting() {
    let s = TestServer::start().await;
    for n in ["carol", "alice", "Bob", "dave"] {
        s.user(n).await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = s
        .get_q(
            "/Users",
            &[("sortBy", "userName"), ("sortOrder", "descending")],
        )
        .await;
    r.expect(200);
    assert_eq!(names(&r.json), ["dave", "carol", "Bob", "alice"]);
    let r = s.get_q("/Users", &[("sortBy", "userName")]).await;
    assert_eq!(names(&r.json), ["alice", "Bob", "carol", "dave"]);
    let r = s
        .get_q(
            "/Users",
            &[("sortBy", "userName"), ("startIndex", "2"), ("count", "2")],
        )
        .await;
    assert_eq!(names(&r.json), ["Bob", "carol"]);
    let r = s
        .get_q(
            "/Users",
            &[("sortBy", "userName"), ("sortOrder", "sideways")],
        )
        .await;
    r.expect_error(400, None);
}

#[tokio::test]
async fn attributes_and_excluded_attributes() {
    let s = TestServer::start().await;
    let created = s.create_user(&full_user("proj", None)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let r = s.get_q("/Users", &[("attributes", "userName")]).await;
    r.expect(200);
    assert_eq!(keys(&r.json["Resources"][0]), ["id", "schemas", "userName"]);
    let r = s
        .get_q(&format!("/Users/{id}"), &[("attributes", "userName")])
        .await;
    assert_eq!(keys(&r.json), ["id", "schemas", "userName"]);
    let r = s
        .get_q(
            &format!("/Users/{id}"),
            &[("attributes", "name.givenName,emails.value")],
        )
        .await;
    assert_eq!(keys(&r.json), ["emails", "id", "name", "schemas"]);
    assert_eq!(r.json["name"], json!({"givenName": "Barbara"}));
    assert!(r.json["emails"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| keys(e) == ["value"]));
    let r = s
        .get_q(&format!("/Users/{id}"), &[("excludedAttributes", "emails")])
        .await;
    assert!(r.json.get("emails").is_none());
    assert!(r.json.get("phoneNumbers").is_some());
    assert!(r.json.get("meta").is_some());
    assert_eq!(r.json["userName"], "proj");
    let r = s
        .get_q("/Users", &[("excludedAttributes", "emails,name")])
        .await;
    assert!(r.json["Resources"][0].get("emails").is_none());
    assert!(r.json["Resources"][0].get("name").is_none());
    // Extension attributes by full URN.
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let r = s
        .get_q(
            &format!("/Users/{id}"),
            &[("attributes", &format!("{ent}:employeeNumber"))],
        )
        .await;
    assert_eq!(r.json[ent], json!({"employeeNumber": "701984"}));
    // On POST and PATCH responses too.
    let r = s
        .send(
            s.request(reqwest::Method::POST, "/Users")
                .query(&[("attributes", "userName")])
                .header("content-type", "application/scim+json")
                .body(full_user("proj2", None).to_string()),
        )
        .await;
    r.expect(201);
    assert_eq!(keys(&r.json), ["id", "schemas", "userName"]);
    let r = s
        .send(
            s.request(reqwest::Method::PATCH, &format!("/Users/{id}"))
                .query(&[("excludedAttributes", "emails,phoneNumbers")])
                .header("content-type", "application/scim+json")
                .body(
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                           "Operations": [{"op": "replace", "path": "title", "value": "Boss"}]})
                    .to_string(),
                ),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["title"], "Boss");
    assert!(r.json.get("emails").is_none() && r.json.get("phoneNumbers").is_none());
    let r = s
        .send(
            s.request(reqwest::Method::PUT, &format!("/Users/{id}"))
                .query(&[("attributes", "title")])
                .header("content-type", "application/scim+json")
                .body(json!({"schemas": [USER_URN], "userName": "proj", "title": "X"}).to_string()),
        )
        .await;
    r.expect(200);
    assert_eq!(keys(&r.json), ["id", "schemas", "title"]);
    // Unknown names in attributes are ignored, not an error.
    let r = s
        .get_q(&format!("/Users/{id}"), &[("attributes", "userName,nope")])
        .await;
    r.expect(200);
    assert_eq!(keys(&r.json), ["id", "schemas", "userName"]);
}

#[tokio::test]
async fn groups_are_projected_too() {
    let s = TestServer::start().await;
    let u = s.user("member").await;
    let g = s.create_group("projected", &[&u]).await;
    let id = g["id"].as_str().unwrap();
    let r = s
        .get_q(&format!("/Groups/{id}"), &[("attributes", "displayName")])
        .await;
    r.expect(200);
    let mut k: Vec<&String> = r.json.as_object().unwrap().keys().collect();
    k.sort();
    assert_eq!(k, ["displayName", "id", "schemas"]);
    let r = s.get_q("/Groups", &[("attributes", "members")]).await;
    assert_eq!(r.json["Resources"][0]["members"][0]["value"], u.as_str());
    assert!(r.json["Resources"][0].get("displayName").is_none());
}
