#![allow(clippy::unwrap_used)]

use crate::schema::{ResourceKind, TypeDef};
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::error::ScimType;
use crate::filter::parse_filter;
use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

fn body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
}

fn run(kind: TypeDef, doc: &mut Value, ops: Value) -> Result<PatchEffects, ScimError> {
    let ops = parse_patch(&body(ops))?;
    apply_patch(kind, doc, &ops)
}

fn bjensen() -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": "bjensen",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "addresses": [
            {"streetAddress": "100 Universal City Plaza", "locality": "Hollywood",
             "type": "work", "primary": true},
            {"streetAddress": "456 Hollywood Blvd", "locality": "Hollywood", "type": "home"}
        ]
    })
}

fn tour_guides() -> Value {
    json!({"schemas": [GROUP_SCHEMA], "displayName": "Tour Guides"})
}

fn error_of(r: Result<PatchEffects, ScimError>) -> (Option<ScimType>, String) {
    let e = r.unwrap_err();
    assert_eq!(e.status, 400, "{e:?}");
    (e.scim_type, e.detail)
}

fn member(id: &str) -> MemberRef {
    MemberRef { value: id.into() }
}

// ---- parse_patch -------------------------------------------------------------------------

#[test]
fn parse_rejects_non_patchop_bodies() {
    for bad in [
        json!([]),
        json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]}),
        json!({"schemas": [USER_SCHEMA], "Operations": [{"op": "remove", "path": "title"}]}),
        json!({"schemas": [PATCH_OP_SCHEMA]}),
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": []}),
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": {"op": "add"}}),
    ] {
        let e = parse_patch(&bad).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax), "{bad}");
    }
}

#[test]
fn parse_checks_each_operation() {
    let e = parse_patch(&body(json!([
        {"op": "remove", "path": "title"},
        {"op": "Add", "path": "title", "value": "x"}
    ])))
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    assert!(e.detail.starts_with("Operations[1]: "), "{}", e.detail);
    assert!(e.detail.contains("\"Add\""), "{}", e.detail);

    let e = parse_patch(&body(json!([{"path": "title"}]))).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    let e = parse_patch(&body(json!([{"op": "add", "path": "title"}]))).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    let e = parse_patch(&body(json!(["add"]))).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    let e = parse_patch(&body(json!([{"op": "remove", "path": 3}]))).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    let e = parse_patch(&body(json!([{"op": "remove", "path": "emails[type eq"}]))).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    assert!(e.detail.starts_with("Operations[0]: "), "{}", e.detail);
}

#[test]
fn parse_accepts_standard_operations() {
    let ops = parse_patch(&body(json!([
        {"op": "add", "value": {"title": "x"}},
        {"op": "remove", "path": "title"},
        {"op": "replace", "path": "name.givenName", "value": null},
    ])))
    .unwrap();
    assert_eq!(ops.len(), 3);
    assert_eq!(ops[0].op, OpKind::Add);
    assert!(ops[0].path.is_none());
    assert_eq!(ops[1].op, OpKind::Remove);
    assert_eq!(ops[1].value, None);
    assert_eq!(ops[2].value, Some(Value::Null));
    let p = ops[2].path.as_ref().unwrap();
    assert_eq!(p.attr.attr, "name");
    assert_eq!(p.attr.sub_attr.as_deref(), Some("givenName"));
}

// ---- RFC 7644 §3.5.2.1 add ---------------------------------------------------------------

#[test]
fn rfc_add_members() {
    let mut doc = tour_guides();
    let fx = run(
        ResourceKind::Group.def(),
        &mut doc,
        json!([{
            "op": "add",
            "path": "members",
            "value": [{
                "display": "Babs Jensen",
                "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
                "value": "2819c223-7f76-453a-919d-413861904646"
            }]
        }]),
    )
    .unwrap();
    assert_eq!(doc, tour_guides());
    assert_eq!(
        fx.members,
        [MemberChange::Add(vec![member(
            "2819c223-7f76-453a-919d-413861904646"
        )])]
    );
    assert_eq!(fx.changed, ["members"]);
}

#[test]
fn rfc_add_without_path() {
    let mut doc = bjensen();
    let fx = run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{
            "op": "add",
            "value": {
                "emails": [{"value": "babs@jensen.org", "type": "home"},
                           {"value": "babs@example.org", "type": "other"}],
                "nickname": "Babs"
            }
        }]),
    )
    .unwrap();
    assert_eq!(doc["nickName"], "Babs");
    assert_eq!(
        doc["emails"],
        json!([
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"},
            {"value": "babs@example.org", "type": "other"}
        ])
    );
    assert_eq!(fx.changed, ["emails", "nickName"]);
    // Canonical order: nickName sits after displayName.
    let keys: Vec<_> = doc.as_object().unwrap().keys().cloned().collect();
    let pos = |k: &str| keys.iter().position(|x| x == k).unwrap();
    assert!(pos("displayName") < pos("nickName") && pos("nickName") < pos("active"));
}

#[test]
fn add_single_value_sets_and_complex_merges() {
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([
            {"op": "add", "path": "title", "value": "Tour Guide"},
            {"op": "add", "path": "name", "value": {"MiddleName": "Jane", "givenName": "Babs"}},
            {"op": "add", "path": "name.honorificPrefix", "value": "Ms."},
        ]),
    )
    .unwrap();
    assert_eq!(doc["title"], "Tour Guide");
    assert_eq!(
        doc["name"],
        json!({"familyName": "Jensen", "givenName": "Babs", "middleName": "Jane",
               "honorificPrefix": "Ms."})
    );
}

#[test]
fn add_with_value_path_sets_sub_attribute_on_matches() {
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "add", "path": "emails[type eq \"work\"].display", "value": "Work"}]),
    )
    .unwrap();
    assert_eq!(doc["emails"][0]["display"], "Work");
    assert!(doc["emails"][1].get("display").is_none());
    let before = doc.clone();
    let (t, _) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "add", "path": "emails[type eq \"fax\"].display", "value": "x"}]),
    ));
    assert_eq!(t, Some(ScimType::NoTarget));
    assert_eq!(doc, before);
}

#[test]
fn add_existing_value_is_merged_not_duplicated() {
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "add", "path": "emails",
                "value": [{"value": "BABS@jensen.org", "primary": true}]}]),
    )
    .unwrap();
    assert_eq!(
        doc["emails"],
        json!([
            {"value": "bjensen@example.com", "type": "work", "primary": false},
            {"value": "BABS@jensen.org", "type": "home", "primary": true}
        ])
    );
}

#[test]
fn add_primary_clears_other_primaries() {
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "add", "path": "emails",
                "value": {"value": "new@example.com", "type": "other", "primary": true}}]),
    )
    .unwrap();
    let emails = doc["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 3);
    assert_eq!(emails[0]["primary"], false);
    assert_eq!(emails[1]["primary"], false);
    assert_eq!(emails[2]["primary"], true);

    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
    )
    .unwrap();
    assert_eq!(doc["emails"][0]["primary"], false);
    assert_eq!(doc["emails"][1]["primary"], true);
}

// ---- RFC 7644 §3.5.2.2 remove ------------------------------------------------------------

#[test]
fn rfc_remove_single_member() {
    let mut doc = tour_guides();
    let fx = run(
        ResourceKind::Group.def(),
        &mut doc,
        json!([{"op": "remove",
                "path": "members[value eq \"2819c223-7f76-...413861904646\"]"}]),
    )
    .unwrap();
    let expected = parse_filter("value eq \"2819c223-7f76-...413861904646\"").unwrap();
    assert_eq!(fx.members, [MemberChange::Remove(Some(expected))]);
    assert_eq!(doc, tour_guides());
}

#[test]
fn rfc_remove_all_members() {
    let mut doc = tour_guides();
    let fx = run(
        ResourceKind::Group.def(),
        &mut doc,
        json!([{"op": "remove", "path": "members"}]),
    )
    .unwrap();
    assert_eq!(fx.members, [MemberChange::Remove(None)]);
}

#[test]
fn rfc_remove_all_then_add_members() {
    let mut doc = tour_guides();
    let fx = run(
        ResourceKind::Group.def(),
        &mut doc,
        json!([
            {"op": "remove", "path": "members"},
            {"op": "add", "path": "members", "value": [
                {"display": "Babs Jensen", "$ref": "https://example.com/v2/Users/2819c223",
                 "value": "2819c223"},
                {"display": "James Smith", "$ref": "https://example.com/v2/Users/08e1d05d",
                 "value": "08e1d05d"}
            ]}
        ]),
    )
    .unwrap();
    assert_eq!(
        fx.members,
        [
            MemberChange::Remove(None),
            MemberChange::Add(vec![member("2819c223"), member("08e1d05d")])
        ]
    );
}

#[test]
fn rfc_remove_emails_by_filter() {
    let mut doc = bjensen();
    doc["emails"]
        .as_array_mut()
        .unwrap()
        .push(json!({"value": "b2@example.com", "type": "work"}));
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "remove",
                "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]),
    )
    .unwrap();
    assert_eq!(
        doc["emails"],
        json!([{"value": "babs@jensen.org", "type": "home"}])
    );
    // No match: a no-op, not an error.
    let before = doc.clone();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "remove", "path": "emails[type eq \"fax\"]"}]),
    )
    .unwrap();
    assert_eq!(doc, before);
}

#[test]
fn remove_attribute_and_sub_attribute_idempotently() {
    let mut doc = bjensen();
    let fx = run(
        ResourceKind::User.def(),
        &mut doc,
        json!([
            {"op": "remove", "path": "displayName"},
            {"op": "remove", "path": "displayName"},
            {"op": "remove", "path": "name.givenName"},
            {"op": "remove", "path": "emails[type eq \"work\"].primary"},
            {"op": "remove", "path": "addresses"},
            {"op": "remove", "path": "nickName"},
        ]),
    )
    .unwrap();
    assert!(doc.get("displayName").is_none());
    assert!(doc.get("addresses").is_none());
    assert_eq!(doc["name"], json!({"familyName": "Jensen"}));
    assert_eq!(
        doc["emails"][0],
        json!({"value": "bjensen@example.com", "type": "work"})
    );
    assert_eq!(
        fx.changed,
        ["displayName", "name", "emails", "addresses", "nickName"]
    );
    // Removing the last sub-attribute removes the attribute.
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "remove", "path": "name.familyName"}]),
    )
    .unwrap();
    assert!(doc.get("name").is_none());
}

#[test]
fn remove_sub_attribute_of_every_element() {
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "remove", "path": "emails.type"}]),
    )
    .unwrap();
    assert_eq!(
        doc["emails"],
        json!([{"value": "bjensen@example.com", "primary": true}, {"value": "babs@jensen.org"}])
    );
}

#[test]
fn remove_with_value_list_removes_only_listed() {
    let mut doc = tour_guides();
    let fx = run(
        ResourceKind::Group.def(),
        &mut doc,
        json!([{"op": "remove", "path": "members", "value": [{"value": "id1"}, {"value": "id2"}]}]),
    )
    .unwrap();
    let expected = parse_filter("value eq \"id1\" or value eq \"id2\"").unwrap();
    assert_eq!(fx.members, [MemberChange::Remove(Some(expected))]);
    let fx = run(
        ResourceKind::Group.def(),
        &mut doc,
        json!([{"op": "remove", "path": "members", "value": []}]),
    )
    .unwrap();
    assert!(
        fx.members.is_empty(),
        "an empty list must never remove everyone"
    );

    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "remove", "path": "emails", "value": [{"value": "BJENSEN@example.com"}]}]),
    )
    .unwrap();
    assert_eq!(
        doc["emails"],
        json!([{"value": "babs@jensen.org", "type": "home"}])
    );
    let (t, _) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "remove", "path": "emails", "value": [{"type": "home"}]}]),
    ));
    assert_eq!(t, Some(ScimType::InvalidValue));
}

#[test]
fn remove_without_path_is_no_target() {
    let mut doc = bjensen();
    let (t, d) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "remove"}]),
    ));
    assert_eq!(t, Some(ScimType::NoTarget));
    assert!(d.starts_with("Operations[0]: "), "{d}");
}

#[test]
fn removing_required_attribute_is_mutability() {
    let mut doc = bjensen();
    let (t, _) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "remove", "path": "userName"}]),
    ));
    assert_eq!(t, Some(ScimType::Mutability));
    let (t, _) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "userName", "value": ""}]),
    ));
    assert_eq!(t, Some(ScimType::Mutability));
    let (t, _) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "value": {"userName": null}}]),
    ));
    assert_eq!(t, Some(ScimType::Mutability));
    let mut g = tour_guides();
    let (t, _) = error_of(run(
        ResourceKind::Group.def(),
        &mut g,
        json!([{"op": "remove", "path": "displayName"}]),
    ));
    assert_eq!(t, Some(ScimType::Mutability));
    assert_eq!(doc, bjensen());
}

// ---- RFC 7644 §3.5.2.3 replace -----------------------------------------------------------

#[test]
fn rfc_replace_members() {
    let mut doc = tour_guides();
    let fx = run(
        ResourceKind::Group.def(),
        &mut doc,
        json!([{"op": "replace", "path": "members", "value": [
            {"display": "Babs Jensen", "$ref": "https://example.com/v2/Users/2819c223",
             "value": "2819c223"},
            {"display": "James Smith", "$ref": "https://example.com/v2/Users/08e1d05d",
             "value": "08e1d05d"}
        ]}]),
    )
    .unwrap();
    assert_eq!(
        fx.members,
        [
            MemberChange::Remove(None),
            MemberChange::Add(vec![member("2819c223"), member("08e1d05d")])
        ]
    );
}

#[test]
fn rfc_replace_work_address() {
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": {
            "type": "work",
            "streetAddress": "911 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "US",
            "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
            "primary": true
        }}]),
    )
    .unwrap();
    assert_eq!(
        doc["addresses"][0],
        json!({
            "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
            "streetAddress": "911 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "US",
            "type": "work",
            "primary": true
        })
    );
    assert_eq!(doc["addresses"][1]["primary"], false);
}

#[test]
fn rfc_replace_street_address() {
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress",
                "value": "1010 Broadway Ave"}]),
    )
    .unwrap();
    assert_eq!(doc["addresses"][0]["streetAddress"], "1010 Broadway Ave");
    assert_eq!(doc["addresses"][1]["streetAddress"], "456 Hollywood Blvd");
}

#[test]
fn rfc_replace_without_path() {
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "value": {
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "nickname": "Babs"
        }}]),
    )
    .unwrap();
    assert_eq!(doc["emails"], bjensen()["emails"]);
    assert_eq!(doc["nickName"], "Babs");

    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "value": {"emails": [{"value": "only@example.com"}],
                                            "name": {"givenName": "Babs"}}}]),
    )
    .unwrap();
    assert_eq!(doc["emails"], json!([{"value": "only@example.com"}]));
    // Complex attributes merge: familyName stays.
    assert_eq!(
        doc["name"],
        json!({"familyName": "Jensen", "givenName": "Babs"})
    );
}

#[test]
fn replace_work_email_by_filter() {
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "emails[type eq \"work\"]",
                "value": {"value": "babs@work.example.com"}}]),
    )
    .unwrap();
    assert_eq!(
        doc["emails"][0],
        json!({"value": "babs@work.example.com", "type": "work", "primary": true})
    );
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value",
                "value": "b@w.example.com"}]),
    )
    .unwrap();
    assert_eq!(doc["emails"][0]["value"], "b@w.example.com");
    let (t, _) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "emails[type eq \"pager\"]", "value": {"value": "x"}}]),
    ));
    assert_eq!(t, Some(ScimType::NoTarget));
}

#[test]
fn replace_family_name_and_simple_values() {
    let mut doc = bjensen();
    let fx = run(
        ResourceKind::User.def(),
        &mut doc,
        json!([
            {"op": "replace", "path": "name.familyName", "value": "Jensen-Smith"},
            {"op": "replace", "path": "active", "value": false},
            {"op": "replace", "path": "title", "value": "Boss"},
        ]),
    )
    .unwrap();
    assert_eq!(doc["name"]["familyName"], "Jensen-Smith");
    assert_eq!(doc["name"]["givenName"], "Barbara");
    assert_eq!(doc["active"], false);
    assert_eq!(doc["title"], "Boss");
    assert_eq!(fx.changed, ["name", "active", "title"]);
}

#[test]
fn replace_multi_valued_attribute_whole() {
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "emails", "value": [{"value": "x@y"}]}]),
    )
    .unwrap();
    assert_eq!(doc["emails"], json!([{"value": "x@y"}]));
    let (t, _) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "emails", "value": [
            {"value": "a", "primary": true}, {"value": "b", "primary": true}]}]),
    ));
    assert_eq!(t, Some(ScimType::InvalidValue));
}

#[test]
fn replace_null_unassigns() {
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "displayName", "value": null}]),
    )
    .unwrap();
    assert!(doc.get("displayName").is_none());
}

// ---- extensions --------------------------------------------------------------------------

#[test]
fn extension_attributes() {
    let mut doc = bjensen();
    let fx = run(
        ResourceKind::User.def(),
        &mut doc,
        json!([
            {"op": "replace",
             "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
             "value": "701984"},
            {"op": "add", "path": "department", "value": "Tour Operations"},
            {"op": "add",
             "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
             "value": "26118915"},
        ]),
    )
    .unwrap();
    assert_eq!(
        doc[ENTERPRISE_USER_SCHEMA],
        json!({"employeeNumber": "701984", "department": "Tour Operations",
               "manager": {"value": "26118915"}})
    );
    assert_eq!(doc["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
    assert_eq!(
        fx.changed,
        [
            format!("{ENTERPRISE_USER_SCHEMA}:employeeNumber"),
            format!("{ENTERPRISE_USER_SCHEMA}:department"),
            format!("{ENTERPRISE_USER_SCHEMA}:manager"),
        ]
    );
    let (t, _) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "manager.displayName", "value": "Boss"}]),
    ));
    assert_eq!(t, Some(ScimType::Mutability));

    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "remove", "path": ENTERPRISE_USER_SCHEMA}]),
    )
    .unwrap();
    assert!(doc.get(ENTERPRISE_USER_SCHEMA).is_none());
    assert_eq!(doc["schemas"], json!([USER_SCHEMA]));
}

#[test]
fn extension_object_targets() {
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([
            {"op": "add", "path": ENTERPRISE_USER_SCHEMA,
             "value": {"costCenter": "4130", "Division": "Theme Park"}},
            {"op": "replace",
             "value": {ENTERPRISE_USER_SCHEMA: {"division": "Parks"}, "title": "Guide"}},
        ]),
    )
    .unwrap();
    assert_eq!(
        doc[ENTERPRISE_USER_SCHEMA],
        json!({"costCenter": "4130", "division": "Parks"})
    );
    assert_eq!(doc["title"], "Guide");
}

// ---- errors, mutability and atomicity ----------------------------------------------------

#[test]
fn read_only_targets_are_mutability_errors() {
    for path in ["id", "meta", "meta.created", "groups", "schemas"] {
        let mut doc = bjensen();
        let (t, d) = error_of(run(
            ResourceKind::User.def(),
            &mut doc,
            json!([{"op": "replace", "path": path, "value": "x"}]),
        ));
        assert_eq!(t, Some(ScimType::Mutability), "{path}: {d}");
        assert!(d.contains("readOnly"), "{d}");
    }
    // In a path-less value they are ignored.
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "value": {"id": "x", "meta": {}, "groups": [], "title": "t"}}]),
    )
    .unwrap();
    assert!(doc.get("id").is_none());
    assert_eq!(doc["title"], "t");
}

#[test]
fn member_sub_attributes_are_immutable() {
    for (op, path) in [
        ("replace", "members.value"),
        ("replace", "members[value eq \"a\"].value"),
        ("add", "members[value eq \"a\"]"),
        ("remove", "members[value eq \"a\"].type"),
    ] {
        let mut doc = tour_guides();
        let (t, _) = error_of(run(
            ResourceKind::Group.def(),
            &mut doc,
            json!([{"op": op, "path": path, "value": "b"}]),
        ));
        assert_eq!(t, Some(ScimType::Mutability), "{op} {path}");
    }
}

#[test]
fn member_values_are_validated() {
    let mut doc = tour_guides();
    let (t, d) = error_of(run(
        ResourceKind::Group.def(),
        &mut doc,
        json!([{"op": "add", "value": {"members": [{"value": "g2", "type": "Group"}]}}]),
    ));
    assert_eq!(t, Some(ScimType::InvalidValue));
    assert!(d.contains("nested groups are not supported"), "{d}");
    let fx = run(
        ResourceKind::Group.def(),
        &mut doc,
        json!([{"op": "add", "value": {"members": [{"value": "u1"}], "displayName": "TG"}}]),
    )
    .unwrap();
    assert_eq!(fx.members, [MemberChange::Add(vec![member("u1")])]);
    assert_eq!(doc["displayName"], "TG");
    assert_eq!(fx.changed, ["members", "displayName"]);
}

#[test]
fn type_errors_are_invalid_value() {
    for (path, value) in [
        ("active", json!("yes")),
        ("name.givenName", json!(5)),
        ("emails", json!([{"value": true}])),
        ("emails[type eq \"work\"].primary", json!("true")),
        ("name", json!("Barbara")),
    ] {
        let mut doc = bjensen();
        let (t, d) = error_of(run(
            ResourceKind::User.def(),
            &mut doc,
            json!([{"op": "replace", "path": path, "value": value}]),
        ));
        assert_eq!(t, Some(ScimType::InvalidValue), "{path}: {d}");
        assert_eq!(doc, bjensen());
    }
    let mut doc = bjensen();
    let (t, d) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "active", "value": "yes"}]),
    ));
    assert_eq!(t, Some(ScimType::InvalidValue));
    assert_eq!(
        d,
        "Operations[0]: \"active\" must be a boolean, got the string \"yes\""
    );
    let (t, _) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "add", "value": "not an object"}]),
    ));
    assert_eq!(t, Some(ScimType::InvalidValue));
}

#[test]
fn value_filter_on_single_valued_attribute_is_invalid_path() {
    let mut doc = bjensen();
    let (t, _) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "name[givenName eq \"x\"].familyName", "value": "y"}]),
    ));
    assert_eq!(t, Some(ScimType::InvalidPath));
    let (t, _) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "remove", "path": "emails[nosuch eq \"x\"]"}]),
    ));
    assert_eq!(t, Some(ScimType::InvalidPath));
}

#[test]
fn unknown_attributes_are_ignored() {
    let mut doc = bjensen();
    let fx = run(
        ResourceKind::User.def(),
        &mut doc,
        json!([
            {"op": "replace", "path": "favouriteColour", "value": "green"},
            {"op": "remove", "path": "name.nickname"},
            {"op": "add", "path": "urn:example:ext:1.0:User:thing", "value": 1},
            {"op": "add", "value": {"favouriteColour": "green"}},
        ]),
    )
    .unwrap();
    assert_eq!(doc, bjensen());
    assert!(fx.changed.is_empty());
}

#[test]
fn multi_operation_request_is_atomic() {
    let mut doc = bjensen();
    let (t, d) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "add", "path": "emails", "value": {"value": "x@example.com"}},
            {"op": "replace", "path": "emails[type eq \"nope\"].value", "value": "y"},
        ]),
    ));
    assert_eq!(t, Some(ScimType::NoTarget));
    assert!(d.starts_with("Operations[2]: "), "{d}");
    assert_eq!(doc, bjensen());

    // And a successful multi-operation request applies in order.
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([
            {"op": "replace", "path": "displayName", "value": "A"},
            {"op": "replace", "path": "displayName", "value": "B"},
            {"op": "remove", "path": "emails[type eq \"home\"]"},
            {"op": "add", "path": "emails[type eq \"work\"].display", "value": "W"},
        ]),
    )
    .unwrap();
    assert_eq!(doc["displayName"], "B");
    assert_eq!(
        doc["emails"],
        json!([{"value": "bjensen@example.com", "display": "W", "type": "work",
                "primary": true}])
    );
}

#[test]
fn password_goes_to_effects() {
    let mut doc = bjensen();
    let fx = run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "password", "value": "t1meMa$heen"}]),
    )
    .unwrap();
    assert_eq!(fx.password.as_deref(), Some("t1meMa$heen"));
    assert_eq!(doc, bjensen());
    let fx = run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "add", "value": {"password": "p2"}}]),
    )
    .unwrap();
    assert_eq!(fx.password.as_deref(), Some("p2"));
    let (t, _) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "remove", "path": "password"}]),
    ));
    assert_eq!(t, Some(ScimType::Mutability));
    let (t, _) = error_of(run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "replace", "path": "password", "value": 5}]),
    ));
    assert_eq!(t, Some(ScimType::InvalidValue));
}

#[test]
fn result_is_canonical() {
    let mut doc = bjensen();
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([
            {"op": "add", "value": {"NAME": {"HonorificSuffix": "III"}, "PHONENUMBERS":
                [{"VALUE": "555-555-8377", "TYPE": "work"}]}},
            {"op": "add", "path": "EMAILS", "value": {"Value": "c@example.com"}},
        ]),
    )
    .unwrap();
    assert_eq!(doc["name"]["honorificSuffix"], "III");
    assert_eq!(
        doc["phoneNumbers"],
        json!([{"value": "555-555-8377", "type": "work"}])
    );
    assert_eq!(doc["emails"][2], json!({"value": "c@example.com"}));
    let n = crate::resource::normalize(ResourceKind::User.def(), &doc, None).unwrap();
    assert_eq!(
        serde_json::to_string(&n.doc).unwrap(),
        serde_json::to_string(&doc).unwrap()
    );
}

#[test]
fn sub_attribute_without_filter_on_empty_attribute_creates_element() {
    let mut doc = json!({"schemas": [USER_SCHEMA], "userName": "u", "active": true});
    run(
        ResourceKind::User.def(),
        &mut doc,
        json!([{"op": "add", "path": "emails.value", "value": "u@example.com"}]),
    )
    .unwrap();
    assert_eq!(doc["emails"], json!([{"value": "u@example.com"}]));
}

// ---- properties --------------------------------------------------------------------------

const PATHS: [&str; 4] = ["displayName", "nickName", "title", "name.givenName"];

fn model_get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    match path.split_once('.') {
        Some((a, b)) => doc.get(a).and_then(|v| v.get(b)),
        None => doc.get(path),
    }
}

proptest! {
    #[test]
    fn simple_ops_agree_with_model(
        ops in prop::collection::vec((0u8..3, 0usize..4, "[a-z]{0,4}", any::<bool>()), 1..12)
    ) {
        let mut doc = json!({"schemas": [USER_SCHEMA], "userName": "u", "active": true});
        let mut model: [Option<String>; 4] = Default::default();
        for (op, p, val, pathless) in ops {
            let path = PATHS[p];
            let json_op = match (op, pathless) {
                (0, false) => json!({"op": "add", "path": path, "value": val}),
                (1, false) => json!({"op": "replace", "path": path, "value": val}),
                (0 | 1, true) => {
                    let v = match path.split_once('.') {
                        Some((a, b)) => json!({a: {b: val}}),
                        None => json!({path: val}),
                    };
                    json!({"op": if op == 0 { "add" } else { "replace" }, "value": v})
                }
                _ => json!({"op": "remove", "path": path}),
            };
            run(ResourceKind::User.def(), &mut doc, json!([json_op])).unwrap();
            model[p] = (op < 2).then_some(val);
        }
        for (i, path) in PATHS.iter().enumerate() {
            prop_assert_eq!(model_get(&doc, path).and_then(Value::as_str), model[i].as_deref());
        }
        prop_assert_eq!(&doc["userName"], "u");
    }

    #[test]
    fn apply_never_panics(
        ops in prop::collection::vec(
            (
                prop::sample::select(vec!["add", "remove", "replace"]),
                prop::option::of(prop::sample::select(vec![
                    "userName", "name", "name.givenName", "emails", "emails.value",
                    "emails[type eq \"work\"]", "emails[type eq \"work\"].primary",
                    "emails[value co \"x\"].value", "active", "meta", "id", "groups",
                    "members", "members[value eq \"a\"]", "password", "addresses.primary",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                    "manager.value", "x509Certificates", "unknown", "emails[",
                ])),
                arb_json(),
            ),
            1..6,
        ),
        group in any::<bool>(),
    ) {
        let kind = if group { ResourceKind::Group.def() } else { ResourceKind::User.def() };
        let mut doc = if group { tour_guides() } else { bjensen() };
        let before = doc.clone();
        let ops: Vec<Value> = ops
            .into_iter()
            .map(|(op, path, value)| {
                let mut o = json!({"op": op, "value": value});
                if let Some(p) = path {
                    o["path"] = json!(p);
                }
                o
            })
            .collect();
        if let Ok(parsed) = parse_patch(&body(Value::Array(ops))) {
            if apply_patch(kind, &mut doc, &parsed).is_err() {
                prop_assert_eq!(doc, before);
            }
        }
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z ]{0,6}".prop_map(Value::String),
        Just(json!("work")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "value",
                        "type",
                        "primary",
                        "givenName",
                        "display",
                        "emails",
                        "title",
                        "members",
                        "Value",
                    ]),
                    inner
                ),
                0..4
            )
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}
