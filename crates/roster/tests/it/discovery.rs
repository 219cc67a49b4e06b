//! Discovery endpoints: ServiceProviderConfig, Schemas, ResourceTypes.

use serde_json::{json, Value};

use crate::harness::{TestServer, ENTERPRISE_URN, GROUP_URN, SCIM_JSON, USER_URN};

#[tokio::test]
async fn service_provider_config() {
    let s = TestServer::start().await;
    let r = s.get("/ServiceProviderConfig").await;
    r.expect(200);
    assert!(r.header("content-type").unwrap().starts_with(SCIM_JSON));
    let c = &r.json;
    assert_eq!(
        c["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(c["patch"]["supported"], true);
    assert_eq!(c["filter"]["supported"], true);
    assert!(c["filter"]["maxResults"].as_u64().is_some_and(|m| m > 0));
    assert_eq!(c["sort"]["supported"], true);
    assert_eq!(c["etag"]["supported"], true);
    assert_eq!(c["bulk"]["supported"], true);
    assert_eq!(c["bulk"]["maxOperations"], 1000);
    assert_eq!(c["bulk"]["maxPayloadSize"], 1024 * 1024);
    assert_eq!(c["changePassword"]["supported"], true);
    assert_eq!(c["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(c["pagination"]["cursor"], true);
    assert_eq!(c["pagination"]["index"], true);
}

#[tokio::test]
async fn schemas_list_and_by_urn() {
    let s = TestServer::start().await;
    let r = s.get("/Schemas").await;
    r.expect(200);
    let ids: Vec<&str> = r.json["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    for urn in [USER_URN, ENTERPRISE_URN, GROUP_URN] {
        assert!(ids.contains(&urn), "{urn} missing from {ids:?}");
    }
    assert_eq!(r.json["totalResults"].as_u64().unwrap() as usize, ids.len());
    for urn in [USER_URN, ENTERPRISE_URN, GROUP_URN] {
        let one = s.get(&format!("/Schemas/{urn}")).await;
        one.expect(200);
        assert_eq!(one.json["id"], urn);
        assert!(one.json["attributes"]
            .as_array()
            .is_some_and(|a| !a.is_empty()));
    }
    let user = s.get(&format!("/Schemas/{USER_URN}")).await.json;
    let attr = |name: &str| -> Value {
        user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(attr("userName")["uniqueness"], "server");
    assert_eq!(attr("userName")["required"], true);
    assert_eq!(attr("password")["returned"], "never");
    assert_eq!(attr("groups")["mutability"], "readOnly");
    s.get("/Schemas/urn:example:nope")
        .await
        .expect_error(404, None);
}

fn walk_canonical_values(v: &Value, path: &str, bad: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(cv) = o.get("canonicalValues") {
                if cv.as_array().is_none_or(Vec::is_empty) {
                    bad.push(path.to_owned());
                }
            }
            for (k, v) in o {
                walk_canonical_values(v, &format!("{path}.{k}"), bad);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let name = v["name"]
                    .as_str()
                    .map_or_else(|| i.to_string(), str::to_owned);
                walk_canonical_values(v, &format!("{path}[{name}]"), bad);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn schemas_publish_no_empty_canonical_values() {
    let s = TestServer::start().await;
    let r = s.get("/Schemas").await;
    r.expect(200);
    let mut bad = Vec::new();
    walk_canonical_values(&r.json, "", &mut bad);
    assert!(bad.is_empty(), "empty canonicalValues at {bad:?}");
}

#[tokio::test]
async fn resource_types() {
    let s = TestServer::start().await;
    let r = s.get("/ResourceTypes").await;
    r.expect(200);
    let names: Vec<&str> = r.json["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"User") && names.contains(&"Group"),
        "{names:?}"
    );
    let u = s.get("/ResourceTypes/User").await;
    u.expect(200);
    assert_eq!(u.json["name"], "User");
    assert_eq!(u.json["endpoint"], "/Users");
    assert_eq!(u.json["schema"], USER_URN);
    let ext = u.json["schemaExtensions"].as_array().unwrap();
    assert!(
        ext.iter()
            .any(|e| e["schema"] == ENTERPRISE_URN && e["required"] == false),
        "{ext:?}"
    );
    let g = s.get("/ResourceTypes/Group").await;
    g.expect(200);
    assert_eq!(g.json["schema"], GROUP_URN);
    s.get("/ResourceTypes/Widget").await.expect_error(404, None);
}

#[tokio::test]
async fn post_to_service_provider_config_is_405() {
    let s = TestServer::start().await;
    let r = s
        .post("/ServiceProviderConfig", &json!({"schemas": []}))
        .await;
    r.expect_error(405, None);
    let r = s.delete("/Schemas").await;
    r.expect_error(405, None);
}
