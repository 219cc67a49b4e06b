#![allow(clippy::unwrap_used)]

use crate::schema::ResourceKind;
use serde_json::json;

use super::*;
use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

fn full_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "id": "2819c223",
        "externalId": "bjensen",
        "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00.000Z",
                 "lastModified": "2024-01-02T00:00:00.000Z", "version": "W/\"1\""},
        "userName": "bjensen",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "active": true,
        "password": "should never be here, but if it is it must not leak",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "groups": [{"value": "g1", "display": "Tour Guides", "type": "direct"}],
        ENTERPRISE_USER_SCHEMA: {"employeeNumber": "701984", "manager": {"value": "26118915"}}
    })
}

fn proj(a: Option<&str>, e: Option<&str>) -> Projection {
    Projection::parse(ResourceKind::User.def(), a, e).unwrap()
}

#[test]
fn parse_canonicalises_names() {
    let p = proj(
        Some(
            " USERNAME , name.GIVENNAME,urn:ietf:params:scim:schemas:core:2.0:User:emails.value, \
             urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:EMPLOYEENUMBER,\
             urn:ietf:params:scim:schemas:extension:enterprise:2.0:user, nosuch, name.nosuch,,\
             userName, meta.lastModified, urn:nope:User:userName",
        ),
        None,
    );
    assert_eq!(
        p.attributes,
        [
            "userName".to_owned(),
            "name.givenName".into(),
            "emails.value".into(),
            format!("{ENTERPRISE_USER_SCHEMA}:employeeNumber"),
            ENTERPRISE_USER_SCHEMA.into(),
            "meta.lastModified".into(),
        ]
    );
    assert!(p.excluded.is_empty());
}

#[test]
fn both_parameters_honour_attributes() {
    let p = proj(Some("userName"), Some("userName"));
    assert_eq!(p.attributes, ["userName"]);
    assert!(p.excluded.is_empty());
    let out = p.apply(ResourceKind::User.def(), &full_user());
    assert_eq!(out["userName"], "bjensen");
}

#[test]
fn default_drops_never_and_keeps_meta() {
    let out = proj(None, None).apply(ResourceKind::User.def(), &full_user());
    assert!(out.get("password").is_none());
    assert!(out.get("meta").is_some());
    assert!(out.get("groups").is_some());
    let mut expected = full_user();
    expected.as_object_mut().unwrap().remove("password");
    assert_eq!(out, expected);
}

#[test]
fn attributes_returns_listed_plus_always() {
    let out = proj(Some("userName"), None).apply(ResourceKind::User.def(), &full_user());
    assert_eq!(
        out,
        json!({"schemas": [USER_SCHEMA], "id": "2819c223", "userName": "bjensen"})
    );
    let out = proj(Some("id,password"), None).apply(ResourceKind::User.def(), &full_user());
    assert_eq!(out, json!({"schemas": [USER_SCHEMA], "id": "2819c223"}));
}

#[test]
fn attributes_with_sub_attributes() {
    let out = proj(Some("name.givenName,emails.value,meta.lastModified"), None)
        .apply(ResourceKind::User.def(), &full_user());
    assert_eq!(
        out,
        json!({
            "schemas": [USER_SCHEMA],
            "id": "2819c223",
            "meta": {"lastModified": "2024-01-02T00:00:00.000Z"},
            "name": {"givenName": "Barbara"},
            "emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]
        })
    );
}

#[test]
fn attributes_with_extension() {
    let out = proj(Some("employeeNumber"), None).apply(ResourceKind::User.def(), &full_user());
    assert_eq!(
        out,
        json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "2819c223",
               ENTERPRISE_USER_SCHEMA: {"employeeNumber": "701984"}})
    );
    let out =
        proj(Some(ENTERPRISE_USER_SCHEMA), None).apply(ResourceKind::User.def(), &full_user());
    assert_eq!(
        out[ENTERPRISE_USER_SCHEMA],
        full_user()[ENTERPRISE_USER_SCHEMA]
    );
    assert!(out.get("userName").is_none());
    let out = proj(
        Some(&format!("{ENTERPRISE_USER_SCHEMA}:manager.value")),
        None,
    )
    .apply(ResourceKind::User.def(), &full_user());
    assert_eq!(
        out[ENTERPRISE_USER_SCHEMA],
        json!({"manager": {"value": "26118915"}})
    );
}

#[test]
fn excluded_attributes() {
    let out = proj(
        None,
        Some("emails, meta, id, schemas, name.familyName, groups"),
    )
    .apply(ResourceKind::User.def(), &full_user());
    assert!(out.get("emails").is_none());
    assert!(out.get("meta").is_none());
    assert!(out.get("groups").is_none());
    assert!(out.get("password").is_none());
    assert_eq!(out["id"], "2819c223");
    assert_eq!(out["schemas"], full_user()["schemas"]);
    assert_eq!(out["name"], json!({"givenName": "Barbara"}));
    assert_eq!(out["userName"], "bjensen");

    let out = proj(None, Some("emails.type,emails.primary"))
        .apply(ResourceKind::User.def(), &full_user());
    assert_eq!(
        out["emails"],
        json!([{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}])
    );
}

#[test]
fn empty_extension_dropped_with_its_urn() {
    let out =
        proj(None, Some("employeeNumber,manager")).apply(ResourceKind::User.def(), &full_user());
    assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
    assert_eq!(out["schemas"], json!([USER_SCHEMA]));
    let out =
        proj(None, Some(ENTERPRISE_USER_SCHEMA)).apply(ResourceKind::User.def(), &full_user());
    assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
    assert_eq!(out["schemas"], json!([USER_SCHEMA]));
}

#[test]
fn unknown_names_only_means_default() {
    let p = proj(Some("nosuch"), None);
    assert!(p.attributes.is_empty());
    let out = p.apply(ResourceKind::User.def(), &full_user());
    assert_eq!(out["userName"], "bjensen");
}

#[test]
fn includes_for_members_and_groups() {
    let g = |a: Option<&str>, e: Option<&str>| {
        Projection::parse(ResourceKind::Group.def(), a, e).unwrap()
    };
    assert!(g(None, None).includes(ResourceKind::Group.def(), "members"));
    assert!(!g(None, Some("members")).includes(ResourceKind::Group.def(), "members"));
    assert!(g(None, Some("members.display")).includes(ResourceKind::Group.def(), "members"));
    assert!(!g(Some("displayName"), None).includes(ResourceKind::Group.def(), "members"));
    assert!(g(Some("members.value"), None).includes(ResourceKind::Group.def(), "members"));
    assert!(g(Some("displayName"), None).includes(ResourceKind::Group.def(), "id"));

    let u = ResourceKind::User.def();
    assert!(proj(None, None).includes(u, "groups"));
    assert!(!proj(None, Some("groups")).includes(u, "groups"));
    assert!(!proj(None, None).includes(u, "password"));
    assert!(!proj(Some("password"), None).includes(u, "password"));
    assert!(proj(None, None).includes(u, "meta"));
    assert!(!proj(Some("userName"), None).includes(u, "meta"));
    assert!(proj(Some(ENTERPRISE_USER_SCHEMA), None).includes(u, ENTERPRISE_USER_SCHEMA));
    assert!(proj(Some("employeeNumber"), None).includes(u, ENTERPRISE_USER_SCHEMA));
    assert!(!proj(Some("userName"), None).includes(u, ENTERPRISE_USER_SCHEMA));
    assert!(!proj(None, Some(ENTERPRISE_USER_SCHEMA)).includes(u, ENTERPRISE_USER_SCHEMA));
}

#[test]
fn group_projection() {
    let doc = json!({"schemas": [GROUP_SCHEMA], "id": "e9e3", "displayName": "Tour Guides",
        "members": [{"value": "u1", "$ref": "https://x/Users/u1", "type": "User"}],
        "meta": {"resourceType": "Group"}});
    let out = Projection::parse(ResourceKind::Group.def(), None, Some("members"))
        .unwrap()
        .apply(ResourceKind::Group.def(), &doc);
    assert_eq!(
        out,
        json!({"schemas": [GROUP_SCHEMA], "id": "e9e3", "displayName": "Tour Guides",
               "meta": {"resourceType": "Group"}})
    );
    let out = Projection::parse(ResourceKind::Group.def(), Some("members.value"), None)
        .unwrap()
        .apply(ResourceKind::Group.def(), &doc);
    assert_eq!(
        out,
        json!({"schemas": [GROUP_SCHEMA], "id": "e9e3", "members": [{"value": "u1"}]})
    );
}

#[test]
fn non_object_documents_pass_through() {
    assert_eq!(
        proj(Some("userName"), None).apply(ResourceKind::User.def(), &json!(null)),
        json!(null)
    );
}
