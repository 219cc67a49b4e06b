//! Each rule with the payload shape its source shows, then the properties every rule must
//! keep: no panic on any input, standard requests unchanged, idempotence.

use crate::schema::ResourceKind;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::patch::{apply_patch, parse_patch};
use crate::resource::normalize;
use crate::schema::{ENTERPRISE_USER_SCHEMA as ENT, PATCH_OP_SCHEMA, USER_SCHEMA};

fn patch_body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
}

fn user_patch(idp: Idp, ops: Value, current: Option<&Value>) -> Normalized<Value> {
    normalize_body(
        idp,
        BodyKind::Patch,
        ResourceKind::User.def(),
        patch_body(ops),
        current,
    )
}

/// Applies a normalised PATCH with the core, asserting that the core accepts it.
fn apply(doc: &Value, body: &Value) -> Value {
    let ops = parse_patch(body).expect("the normalised PATCH parses");
    let mut d = doc.clone();
    apply_patch(ResourceKind::User.def(), &mut d, &ops).expect("the normalised PATCH applies");
    d
}

fn stored_user() -> Value {
    normalize(
        ResourceKind::User.def(),
        &json!({
            "schemas": [USER_SCHEMA],
            "userName": "bjensen@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        }),
        None,
    )
    .unwrap()
    .doc
}

// ---- op-case -------------------------------------------------------------------------------

#[test]
fn op_case_lowercases_entra_ops() {
    // Entra's deactivate and group-member shapes (tutorial; elimity-com/scim#79).
    let n = user_patch(
        Idp::Entra,
        json!([
            {"op": "Replace", "path": "active", "value": false},
            {"op": "Add", "path": "title", "value": "Boss"},
            {"op": "REMOVE", "path": "nickName"}
        ]),
        None,
    );
    assert_eq!(n.applied, vec![OP_CASE]);
    let ops = &n.request["Operations"];
    assert_eq!(ops[0]["op"], "replace");
    assert_eq!(ops[1]["op"], "add");
    assert_eq!(ops[2]["op"], "remove");
    let d = apply(&stored_user(), &n.request);
    assert_eq!(d["active"], false);
}

#[test]
fn op_case_runs_for_every_idp_and_leaves_unknown_ops() {
    for idp in Idp::ALL {
        let n = user_patch(
            idp,
            json!([{"op": "Add", "path": "title", "value": "x"}]),
            None,
        );
        assert_eq!(n.applied, vec![OP_CASE], "{idp}");
    }
    let n = user_patch(
        Idp::Entra,
        json!([{"op": "Merge", "path": "title", "value": "x"}]),
        None,
    );
    assert!(n.applied.is_empty());
    assert_eq!(n.request["Operations"][0]["op"], "Merge");
}

// ---- string-boolean ------------------------------------------------------------------------

#[test]
fn string_boolean_in_patch_value() {
    // scim-for-keycloak#119: {"op":"Replace","path":"active","value":"False"}.
    let n = user_patch(
        Idp::Entra,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
        None,
    );
    assert_eq!(n.applied, vec![OP_CASE, STRING_BOOLEAN]);
    assert_eq!(n.request["Operations"][0]["value"], false);
    let n = user_patch(
        Idp::Generic,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "TRUE"}]),
        None,
    );
    assert_eq!(n.applied, vec![STRING_BOOLEAN]);
    assert_eq!(n.request["Operations"][0]["value"], true);
}

#[test]
fn string_boolean_in_create_body_and_pathless_value() {
    // AzureAD/SCIMReferenceCode#21: "Post emp1 with string \"True\"".
    let body = json!({
        "schemas": [USER_SCHEMA],
        "userName": "emp1",
        "active": "True",
        "emails": [{"value": "e@x", "type": "work", "primary": "true"}],
        "title": "True"
    });
    let n = normalize_body(
        Idp::Entra,
        BodyKind::Create,
        ResourceKind::User.def(),
        body,
        None,
    );
    assert_eq!(n.applied, vec![STRING_BOOLEAN]);
    assert_eq!(n.request["active"], true);
    assert_eq!(n.request["emails"][0]["primary"], true);
    assert_eq!(
        n.request["title"], "True",
        "strings stay strings where the schema says string"
    );
    normalize(ResourceKind::User.def(), &n.request, None).expect("the core accepts it");

    let n = user_patch(
        Idp::Generic,
        json!([{"op": "replace", "value": {"active": "false"}}]),
        None,
    );
    assert_eq!(n.request["Operations"][0]["value"]["active"], false);
    // Not a boolean word: left for the core to refuse.
    let n = user_patch(
        Idp::Generic,
        json!([{"op": "replace", "path": "active", "value": "no"}]),
        None,
    );
    assert!(n.applied.is_empty());
}

// ---- pathless-attribute-paths ------------------------------------------------------------

#[test]
fn pathless_dotted_and_urn_keys_become_path_operations() {
    // scim-for-keycloak#26 (Entra before aadOptscim062020).
    let n = user_patch(
        Idp::Entra,
        json!([{
            "op": "replace",
            "value": {
                "displayName": "Bjfe",
                "name.givenName": "Kkom",
                "name.familyName": "Unua",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value": "m-1",
                "emails[type eq \"work\"].value": "new@example.com",
                "active": "False"
            }
        }]),
        None,
    );
    assert_eq!(n.applied, vec![PATHLESS_ATTRIBUTE_PATHS, STRING_BOOLEAN]);
    let ops = n.request["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 5);
    assert_eq!(
        ops[0]["value"],
        json!({
            "displayName": "Bjfe",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq",
            "active": false
        })
    );
    assert_eq!(
        ops[1],
        json!({"op": "replace", "path": "name.givenName", "value": "Kkom"})
    );
    let d = apply(&stored_user(), &n.request);
    assert_eq!(d["name"]["givenName"], "Kkom");
    assert_eq!(d["name"]["familyName"], "Unua");
    assert_eq!(d["displayName"], "Bjfe");
    assert_eq!(d[ENT]["employeeNumber"], "Aklq");
    assert_eq!(d[ENT]["manager"]["value"], "m-1");
    assert_eq!(d["emails"][0]["value"], "new@example.com");
    assert_eq!(d["active"], false);
}

#[test]
fn pathless_value_of_only_paths_leaves_no_empty_operation() {
    let n = user_patch(
        Idp::Generic,
        json!([{"op": "add", "value": {"name.givenName": "A"}}]),
        None,
    );
    assert_eq!(
        n.request["Operations"],
        json!([{"op": "add", "path": "name.givenName", "value": "A"}])
    );
    // An empty path-less value is standard and stays as sent.
    let n = user_patch(Idp::Generic, json!([{"op": "add", "value": {}}]), None);
    assert!(n.applied.is_empty());
}

#[test]
fn pathless_keys_that_do_not_parse_are_left_for_the_core() {
    let n = user_patch(
        Idp::Generic,
        json!([{"op": "add", "value": {"name..x": "A", "urn:example:custom:Thing:a.b": 1}}]),
        None,
    );
    assert!(n.applied.is_empty());
}

// ---- manager-string ------------------------------------------------------------------------

#[test]
fn manager_string_in_patch_with_extension_path() {
    // SCIM-SDK#686: Entra's {"op":"add","path":"urn:…:User:manager","value":"2c2f…"}.
    let n = user_patch(
        Idp::Entra,
        json!([{
            "op": "add",
            "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "value": "2c2f6fb8-254f-492e-b7fe-c09c5a61c8a2"
        }]),
        None,
    );
    assert_eq!(n.applied, vec![MANAGER_STRING]);
    let d = apply(&stored_user(), &n.request);
    assert_eq!(
        d[ENT]["manager"]["value"],
        "2c2f6fb8-254f-492e-b7fe-c09c5a61c8a2"
    );
    // Unqualified path, path-less value, and a create body.
    let n = user_patch(
        Idp::Generic,
        json!([
            {"op": "replace", "path": "manager", "value": "m2"},
            {"op": "replace", "value": {ENT: {"manager": "m3"}}}
        ]),
        None,
    );
    assert_eq!(n.request["Operations"][0]["value"], json!({"value": "m2"}));
    assert_eq!(
        n.request["Operations"][1]["value"][ENT]["manager"],
        json!({"value": "m3"})
    );
    let body = json!({"schemas": [USER_SCHEMA, ENT], "userName": "u", ENT: {"manager": "m4"}});
    let n = normalize_body(
        Idp::Entra,
        BodyKind::Replace,
        ResourceKind::User.def(),
        body,
        None,
    );
    assert_eq!(n.request[ENT]["manager"], json!({"value": "m4"}));
}

#[test]
fn manager_empty_string_unassigns() {
    let n = user_patch(
        Idp::Entra,
        json!([{"op": "replace", "path": "manager", "value": ""}]),
        None,
    );
    assert_eq!(n.request["Operations"][0]["value"], Value::Null);
    let mut cur = stored_user();
    cur[ENT] = json!({"manager": {"value": "m"}});
    let d = apply(&cur, &n.request);
    assert!(d.get(ENT).is_none());
}

// ---- entra.value-path-create ---------------------------------------------------------------

fn entra_profile_ops() -> Value {
    // Entra's default attribute mappings, as in the tutorial's "Update User" examples and
    // MS Q&A 1684621: one operation per sub-attribute of the same work address.
    json!([
        {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
        {"op": "Add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
        {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Springfield"},
        {"op": "Add", "path": "addresses[type eq \"work\"].postalCode", "value": "12345"},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}
    ])
}

#[test]
fn value_path_create_adds_missing_elements_once() {
    let cur = stored_user();
    assert!(patch_needs_current(
        Idp::Entra,
        ResourceKind::User.def(),
        &patch_body(entra_profile_ops())
    ));
    let n = user_patch(Idp::Entra, entra_profile_ops(), Some(&cur));
    assert_eq!(n.applied, vec![OP_CASE, VALUE_PATH_CREATE]);
    let ops = n.request["Operations"].as_array().unwrap();
    assert_eq!(
        ops[0],
        json!({"op": "add", "path": "phoneNumbers", "value": [{"type": "mobile", "value": "+1 555 0100"}]})
    );
    assert_eq!(
        ops[1]["path"], "addresses",
        "the first address operation creates it"
    );
    assert_eq!(
        ops[2]["path"], "addresses[type eq \"work\"].locality",
        "later ones find it"
    );
    assert_eq!(
        ops[4]["path"], "emails[type eq \"work\"].value",
        "an existing match stays"
    );
    let d = apply(&cur, &n.request);
    assert_eq!(
        d["phoneNumbers"],
        json!([{"value": "+1 555 0100", "type": "mobile"}])
    );
    assert_eq!(
        d["addresses"],
        json!([{"streetAddress": "1 Main St", "locality": "Springfield", "postalCode": "12345", "type": "work"}])
    );
    assert_eq!(d["emails"][0]["value"], "new@example.com");
    assert_eq!(
        d["emails"][0]["primary"], true,
        "sub-attributes not named stay"
    );
}

#[test]
fn value_path_create_is_entra_and_generic_only() {
    let cur = stored_user();
    let ops =
        json!([{"op": "add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "1"}]);
    for idp in Idp::ALL {
        let n = user_patch(idp, ops.clone(), Some(&cur));
        let fired = n.applied.contains(&VALUE_PATH_CREATE);
        assert_eq!(fired, matches!(idp, Idp::Entra | Idp::Generic), "{idp}");
        assert_eq!(
            patch_needs_current(idp, ResourceKind::User.def(), &patch_body(ops.clone())),
            fired,
            "{idp}"
        );
    }
    // Without the stored document the rule cannot decide, and leaves the request alone.
    assert!(user_patch(Idp::Entra, ops, None).applied.is_empty());
}

#[test]
fn value_path_create_replace_on_generic_needs_entras_signature() {
    let cur = stored_user();
    let lower = json!([{"op": "replace", "path": "emails[type eq \"pager\"].value", "value": "x"}]);
    let upper = json!([{"op": "Replace", "path": "emails[type eq \"pager\"].value", "value": "x"}]);
    // A lowercase `replace` from an unknown client keeps the RFC's noTarget.
    assert!(user_patch(Idp::Generic, lower.clone(), Some(&cur))
        .applied
        .is_empty());
    assert_eq!(
        user_patch(Idp::Generic, upper, Some(&cur)).applied,
        vec![OP_CASE, VALUE_PATH_CREATE]
    );
    assert_eq!(
        user_patch(Idp::Entra, lower, Some(&cur)).applied,
        vec![VALUE_PATH_CREATE]
    );
}

#[test]
fn value_path_create_needs_an_eq_filter_and_a_sub_attribute() {
    let cur = stored_user();
    for ops in [
        json!([{"op": "add", "path": "phoneNumbers[type co \"mob\"].value", "value": "1"}]),
        json!([{"op": "add", "path": "phoneNumbers[type eq \"mobile\"]", "value": {"value": "1"}}]),
        json!([{"op": "remove", "path": "phoneNumbers[type eq \"mobile\"].value"}]),
        json!([{"op": "add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": null}]),
        json!([{"op": "add", "path": "name[type eq \"x\"].givenName", "value": "1"}]),
    ] {
        let n = user_patch(Idp::Entra, ops.clone(), Some(&cur));
        assert!(!n.applied.contains(&VALUE_PATH_CREATE), "{ops}");
    }
    // An `and` of equalities describes the element fully.
    let n = user_patch(
        Idp::Entra,
        json!([{"op": "add", "path": "emails[type eq \"home\" and primary eq false].value", "value": "h@x"}]),
        Some(&cur),
    );
    assert_eq!(
        n.request["Operations"][0]["value"],
        json!([{"type": "home", "primary": false, "value": "h@x"}])
    );
}

#[test]
fn value_path_create_finds_elements_an_earlier_whole_attribute_operation_added() {
    // Found by the `dialect_normalize` fuzz target on the recorded Entra cycle: normalising
    // the rule's own output again (`add addresses [{type: work, ...}]`, then
    // `addresses[type eq "work"].locality`) turned the second operation into a second work
    // address, where the core sets `locality` on the one the first operation added.
    let cur = stored_user();
    let once = user_patch(Idp::Entra, entra_profile_ops(), Some(&cur));
    let twice = normalize_body(
        Idp::Entra,
        BodyKind::Patch,
        ResourceKind::User.def(),
        once.request.clone(),
        Some(&cur),
    );
    assert_eq!(twice.request, once.request);

    for ops in [
        json!([
            {"op": "add", "path": "addresses", "value": [{"type": "work", "streetAddress": "1 Main St"}]},
            {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Springfield"}
        ]),
        json!([
            {"op": "Add", "value": {"addresses": [{"type": "work", "streetAddress": "1 Main St"}]}},
            {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Springfield"}
        ]),
        json!([
            {"op": "add", "path": "addresses", "value": {"type": "home", "locality": "Elsewhere"}},
            {"op": "replace", "path": "addresses", "value": [{"type": "work", "streetAddress": "1 Main St"}]},
            {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Springfield"}
        ]),
    ] {
        let n = user_patch(Idp::Entra, ops.clone(), Some(&cur));
        let last = n.request["Operations"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(
            last["path"], "addresses[type eq \"work\"].locality",
            "the element exists by then: {ops}"
        );
        assert_eq!(
            apply(&cur, &n.request)["addresses"],
            json!([{"streetAddress": "1 Main St", "locality": "Springfield", "type": "work"}]),
            "{ops}"
        );
    }

    // And once removed, it is gone again: the filtered add creates it.
    let ops = json!([
        {"op": "add", "path": "addresses", "value": [{"type": "work", "streetAddress": "1 Main St"}]},
        {"op": "remove", "path": "addresses"},
        {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Springfield"}
    ]);
    let n = user_patch(Idp::Entra, ops, Some(&cur));
    assert_eq!(
        apply(&cur, &n.request)["addresses"],
        json!([{"locality": "Springfield", "type": "work"}])
    );
}

#[test]
fn value_path_create_with_pathless_filtered_keys() {
    let cur = stored_user();
    let ops = json!([{"op": "Replace", "value": {"phoneNumbers[type eq \"work\"].value": "2"}}]);
    assert!(patch_needs_current(
        Idp::Entra,
        ResourceKind::User.def(),
        &patch_body(ops.clone())
    ));
    let n = user_patch(Idp::Entra, ops, Some(&cur));
    assert_eq!(
        n.applied,
        vec![OP_CASE, PATHLESS_ATTRIBUTE_PATHS, VALUE_PATH_CREATE]
    );
    let d = apply(&cur, &n.request);
    assert_eq!(d["phoneNumbers"], json!([{"value": "2", "type": "work"}]));
}

// ---- filter.value-path-subattr ----------------------------------------------------------

#[test]
fn filter_subattr_after_value_path() {
    // FusionAuth#2456 / scimitar#115: Entra's lookup by work email.
    let n = normalize_filter(
        Idp::Entra,
        "emails[type eq \"work\"].value eq \"c24b@example.com\"",
    );
    assert_eq!(n.applied, vec![FILTER_VALUE_PATH_SUBATTR]);
    assert_eq!(
        n.request,
        "emails[type eq \"work\" and value eq \"c24b@example.com\"]"
    );
    // azure-docs#83855: the tutorial's form without a sub-attribute.
    let n = normalize_filter(
        Idp::Generic,
        "emails[type eq \"work\"] eq \"user@contoso.com\"",
    );
    assert_eq!(
        n.request,
        "emails[type eq \"work\" and value eq \"user@contoso.com\"]"
    );
}

#[test]
fn filter_rewrite_keeps_the_rest_and_strings() {
    let n = normalize_filter(
        Idp::Okta,
        "userName eq \"a]b\" and emails[type eq \"wo]rk\" or type eq \"home\"].value co \"x\\\"y\" or active pr",
    );
    assert_eq!(
        n.request,
        "userName eq \"a]b\" and emails[(type eq \"wo]rk\" or type eq \"home\") and value co \"x\\\"y\"] or active pr"
    );
    crate::filter::parse_filter(&n.request).unwrap();
    let n = normalize_filter(Idp::Generic, "emails[type eq \"work\"].value pr");
    assert_eq!(n.request, "emails[type eq \"work\" and value pr]");
}

#[test]
fn filters_that_parse_or_cannot_be_fixed_are_unchanged() {
    for f in [
        "userName eq \"bjensen\"",
        "emails[type eq \"work\" and value eq \"x\"]",
        "emails[type eq \"work\"].value",
        "emails[type eq \"work\"].value eq",
        "((((",
        "",
    ] {
        let n = normalize_filter(Idp::Entra, f);
        assert_eq!(n.request, f);
        assert!(n.applied.is_empty(), "{f}");
    }
}

// ---- things the core already handles: verified here so a rule is never added for them -----

#[test]
fn standard_idp_shapes_pass_unchanged() {
    let cases = [
        // Okta: path-less deactivate, group rename with id, members batch with display.
        json!([{"op": "replace", "value": {"active": false}}]),
        json!([{"op": "replace", "value": {"id": "g1", "displayName": "New"}}]),
        json!([{"op": "add", "path": "members", "value": [{"value": "u1", "display": "a@x"}]}]),
        json!([{"op": "replace", "path": "members", "value": []}]),
        // Entra (with aadOptscim062020) and JumpCloud: members removed by value list.
        json!([{"op": "remove", "path": "members", "value": [{"value": "u1"}]}]),
        json!([{"op": "remove", "path": "members[value eq \"u1\"]"}]),
    ];
    for ops in cases {
        for kind in ResourceKind::ALL {
            let n = normalize_body(
                Idp::Generic,
                BodyKind::Patch,
                kind.def(),
                patch_body(ops.clone()),
                None,
            );
            assert!(n.applied.is_empty(), "{ops}");
            assert_eq!(n.request, patch_body(ops.clone()));
        }
    }
}

#[test]
fn non_objects_and_junk_pass_through() {
    for body in [
        json!(null),
        json!([1, 2]),
        json!("x"),
        json!({"Operations": "nope"}),
        json!({"Operations": [1, null, {"op": 3}, {"op": "add", "path": 7}]}),
    ] {
        for req in [BodyKind::Create, BodyKind::Replace, BodyKind::Patch] {
            let n = normalize_body(
                Idp::Generic,
                req,
                ResourceKind::User.def(),
                body.clone(),
                None,
            );
            assert_eq!(n.request, body);
            assert!(n.applied.is_empty());
        }
    }
}

#[test]
fn rules_are_listed_with_sources_and_idps_parse() {
    for r in RULES {
        assert!(!r.sources.is_empty(), "{} has no source", r.name);
        assert!(
            r.sources.iter().all(|s| s.starts_with("https://")),
            "{}",
            r.name
        );
        assert!(rule(r.name).is_some());
    }
    for idp in Idp::ALL {
        assert_eq!(Idp::parse(idp.as_str()), Some(idp));
        assert_eq!(idp.as_str().parse::<Idp>(), Ok(idp));
    }
    assert_eq!(Idp::parse(" ENTRA "), Some(Idp::Entra));
    assert!("azure".parse::<Idp>().is_err());
}

#[test]
fn every_rule_is_documented_in_the_idp_guide_index() {
    let index = include_str!("../../../../docs/idp/README.md");
    for r in RULES {
        assert!(
            index.contains(&format!("`{}`", r.name)),
            "docs/idp/README.md misses {}",
            r.name
        );
        for s in r.sources {
            assert!(
                index.contains(s),
                "docs/idp/README.md misses source {s} of {}",
                r.name
            );
        }
    }
}

// ---- properties -----------------------------------------------------------------------------

/// Arbitrary JSON whose keys often are the ones rules look at.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("op".to_owned()),
        Just("Op".to_owned()),
        Just("path".to_owned()),
        Just("value".to_owned()),
        Just("Operations".to_owned()),
        Just("active".to_owned()),
        Just("manager".to_owned()),
        Just("emails".to_owned()),
        Just("primary".to_owned()),
        Just("name.givenName".to_owned()),
        Just("emails[type eq \"work\"].value".to_owned()),
        Just(ENT.to_owned()),
        Just(format!("{ENT}:manager")),
        "[a-zA-Z.\\[\\]\": ]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("True".to_owned()),
            Just("Add".to_owned()),
            Just("replace".to_owned()),
            Just("emails[type eq \"work\"].value".to_owned()),
            Just("phoneNumbers[type eq \"mobile\"].value".to_owned()),
            Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager".to_owned()),
            ".{0,16}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn arb_idp() -> impl Strategy<Value = Idp> {
    prop::sample::select(Idp::ALL.to_vec())
}

fn arb_kind() -> impl Strategy<Value = ResourceKind> {
    prop::sample::select(ResourceKind::ALL.to_vec())
}

fn arb_req() -> impl Strategy<Value = BodyKind> {
    prop::sample::select(vec![BodyKind::Create, BodyKind::Replace, BodyKind::Patch])
}

/// A standard operation: lowercase op, a valid path or a path-less value with attribute
/// names, values of the schema's types.
fn arb_standard_op() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!({"op": "replace", "path": "active", "value": false}),
        json!({"op": "add", "path": "title", "value": "True"}),
        json!({"op": "replace", "path": "name.givenName", "value": "x"}),
        json!({"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@x"}),
        json!({"op": "add", "path": "emails", "value": [{"value": "b@x", "type": "home", "primary": false}]}),
        json!({"op": "remove", "path": "emails[type eq \"home\"]"}),
        json!({"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": "m"}}),
        json!({"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "D"}),
        json!({"op": "remove", "path": "nickName"}),
        json!({"op": "replace", "value": {"active": true, "displayName": "D", "name": {"familyName": "F"}}}),
        json!({"op": "add", "value": {ENT: {"manager": {"value": "m"}, "employeeNumber": "1"}}}),
        json!({"op": "replace", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter": "c"}}),
        json!({"op": "add", "path": "members", "value": [{"value": "u1"}]}),
        json!({"op": "remove", "path": "members", "value": [{"value": "u1"}]}),
        json!({"op": "replace", "path": "displayName", "value": "G"}),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_and_is_idempotent(
        idp in arb_idp(), kind in arb_kind(), req in arb_req(),
        body in arb_json(), current in prop::option::of(arb_json()),
    ) {
        let once = normalize_body(idp, req, kind.def(), body, current.as_ref());
        let twice = normalize_body(idp, req, kind.def(), once.request.clone(), current.as_ref());
        prop_assert_eq!(&twice.request, &once.request);
    }

    #[test]
    fn patch_bodies_made_of_arbitrary_operations_never_panic(
        idp in arb_idp(), kind in arb_kind(),
        ops in prop::collection::vec(arb_json(), 0..6), current in prop::option::of(arb_json()),
    ) {
        let body = patch_body(Value::Array(ops));
        let _ = patch_needs_current(idp, kind.def(), &body);
        let once = normalize_body(idp, BodyKind::Patch, kind.def(), body, current.as_ref());
        let twice = normalize_body(idp, BodyKind::Patch, kind.def(), once.request.clone(), current.as_ref());
        prop_assert_eq!(twice.request, once.request);
    }

    #[test]
    fn standard_patches_are_unchanged(
        idp in arb_idp(), kind in arb_kind(),
        ops in prop::collection::vec(arb_standard_op(), 1..6),
    ) {
        let body = patch_body(Value::Array(ops));
        // The stored document has a work email, so the only value-filter path matches.
        let cur = stored_user();
        let n = normalize_body(idp, BodyKind::Patch, kind.def(), body.clone(), Some(&cur));
        prop_assert!(n.applied.is_empty(), "{:?}", n.applied);
        prop_assert_eq!(n.request, body);
    }

    #[test]
    fn standard_resource_bodies_are_unchanged(
        idp in arb_idp(), req in prop::sample::select(vec![BodyKind::Create, BodyKind::Replace]),
        active in any::<bool>(), title in ".{0,8}", manager in prop::option::of("[a-z0-9]{1,8}"),
    ) {
        let mut body = json!({
            "schemas": [USER_SCHEMA, ENT],
            "userName": "u", "active": active, "title": title,
            "emails": [{"value": "a@x", "type": "work", "primary": true}],
            "groups": [{"value": "ignored"}], "id": "ignored", "meta": {"version": "W/\"1\""},
            "unknownThing": "True",
            ENT: {"employeeNumber": "1"}
        });
        if let Some(m) = manager {
            body[ENT]["manager"] = json!({"value": m});
        }
        let n = normalize_body(idp, req, ResourceKind::User.def(), body.clone(), None);
        prop_assert!(n.applied.is_empty());
        prop_assert_eq!(n.request, body);
    }

    #[test]
    fn filters_never_panic_and_standard_filters_are_unchanged(idp in arb_idp(), f in ".{0,64}") {
        let n = normalize_filter(idp, &f);
        if crate::filter::parse_filter(&f).is_ok() {
            prop_assert_eq!(&n.request, &f);
            prop_assert!(n.applied.is_empty());
        } else if !n.applied.is_empty() {
            prop_assert!(crate::filter::parse_filter(&n.request).is_ok());
        }
        let again = normalize_filter(idp, &n.request);
        prop_assert_eq!(again.request, n.request);
    }

    #[test]
    fn filter_rewrites_are_found_in_any_surroundings(
        pre in prop::sample::select(vec!["", "userName eq \"x\" or ", "(active eq true) and "]),
        attr in prop::sample::select(vec!["emails", "phoneNumbers", "addresses"]),
        ty in "[a-z]{1,6}", sub in prop::sample::select(vec![".value", ".display", ""]),
        op in prop::sample::select(vec!["eq", "co", "sw", "EQ"]), v in "[a-z@. ]{0,10}",
    ) {
        let f = format!("{pre}{attr}[type eq \"{ty}\"]{sub} {op} \"{v}\"");
        let n = normalize_filter(Idp::Generic, &f);
        prop_assert_eq!(n.applied, vec![FILTER_VALUE_PATH_SUBATTR]);
        let sub = if sub.is_empty() { "value" } else { &sub[1..] };
        let expected = format!("{pre}{attr}[type eq \"{ty}\" and {sub} {op} \"{v}\"]");
        prop_assert_eq!(n.request, expected);
    }
}

/// OneLogin's "SCIM v2 Enterprise" default template, as its connector renders it.
fn onelogin_template() -> Value {
    json!({
        "schemas": ["urn:scim:schemas:core:2.0", "urn:scim:schemas:extension:enterprise:2.0"],
        "userName": "kim@example.com",
        "name": {"givenName": "Kim", "familyName": "Lee"},
        "emails": [{"value": "kim@example.com", "type": "work", "primary": true}],
        "title": "urn:scim:schemas:core:2.0",
        "urn:scim:schemas:extension:enterprise:2.0": {
            "department": "Sales",
            "manager": {"value": "m1"}
        }
    })
}

#[test]
fn legacy_urns_of_onelogins_template_become_the_rfc_urns() {
    for idp in Idp::ALL {
        for req in [BodyKind::Create, BodyKind::Replace] {
            let n = normalize_body(
                idp,
                req,
                ResourceKind::User.def(),
                onelogin_template(),
                None,
            );
            assert_eq!(n.applied, vec![LEGACY_URN], "{idp}");
            let body = &n.request;
            assert_eq!(body["schemas"], json!([USER_SCHEMA, ENT]));
            assert_eq!(body[ENT]["department"], "Sales");
            assert!(body
                .get("urn:scim:schemas:extension:enterprise:2.0")
                .is_none());
            // A string value that happens to look like a URN is data, never rewritten.
            assert_eq!(body["title"], "urn:scim:schemas:core:2.0");
            // The core accepts what the normaliser made of it.
            let doc = normalize(ResourceKind::User.def(), body, None).expect("the core accepts it");
            assert_eq!(doc.doc[ENT]["department"], "Sales");
            // Idempotent.
            let again = normalize_body(idp, req, ResourceKind::User.def(), body.clone(), None);
            assert!(again.applied.is_empty());
            assert_eq!(&again.request, body);
        }
    }
    // Both forms of the extension: the RFC one's values win, the draft one's others stay.
    let mut both = onelogin_template();
    both[ENT] = json!({"department": "RFC", "costCenter": "42"});
    let n = normalize_body(
        Idp::OneLogin,
        BodyKind::Create,
        ResourceKind::User.def(),
        both,
        None,
    );
    assert_eq!(
        n.request[ENT],
        json!({"department": "RFC", "costCenter": "42", "manager": {"value": "m1"}})
    );
    // A Group's draft core URN is the Group URN.
    let g = normalize_body(
        Idp::Generic,
        BodyKind::Create,
        ResourceKind::Group.def(),
        json!({"schemas": ["urn:scim:schemas:core:2.0:Group"], "displayName": "Ops"}),
        None,
    );
    assert_eq!(g.request["schemas"], json!([crate::schema::GROUP_SCHEMA]));
}

#[test]
fn legacy_urns_in_patch_paths_and_values() {
    let n = user_patch(
        Idp::Generic,
        json!([
            {"op": "replace", "path": "urn:scim:schemas:extension:enterprise:2.0:department", "value": "Ops"},
            {"op": "replace", "path": "urn:scim:schemas:core:2.0:title", "value": "Lead"},
            {"op": "replace", "value": {
                "urn:scim:schemas:extension:enterprise:2.0": {"costCenter": "7"},
                "urn:scim:schemas:extension:enterprise:2.0:User:division": "North"
            }}
        ]),
        None,
    );
    assert!(n.applied.contains(&LEGACY_URN), "{:?}", n.applied);
    let after = apply(&stored_user(), &n.request);
    assert_eq!(after[ENT]["department"], "Ops");
    assert_eq!(after[ENT]["costCenter"], "7");
    assert_eq!(after[ENT]["division"], "North");
    assert_eq!(after["title"], "Lead");
}

#[test]
fn a_patch_without_schemas_gets_the_patchop_urn() {
    // authentik's group update: a path-less replace, serialised without `schemas`.
    let body = json!({"Operations": [{"op": "replace", "value": {"displayName": "Renamed"}}]});
    for idp in Idp::ALL {
        let n = normalize_body(
            idp,
            BodyKind::Patch,
            ResourceKind::Group.def(),
            body.clone(),
            None,
        );
        assert_eq!(n.applied, vec![PATCHOP_SCHEMAS_MISSING]);
        assert_eq!(n.request["schemas"], json!([PATCH_OP_SCHEMA]));
        assert!(parse_patch(&n.request).is_ok());
    }
    // A wrong `schemas` stays wrong: only a missing one is added.
    let wrong =
        json!({"schemas": ["x"], "Operations": [{"op": "add", "path": "title", "value": "a"}]});
    let n = normalize_body(
        Idp::Generic,
        BodyKind::Patch,
        ResourceKind::User.def(),
        wrong.clone(),
        None,
    );
    assert_eq!(n.request, wrong);
    assert!(n.applied.is_empty());
}

#[test]
fn legacy_urns_in_filters() {
    let n = normalize_filter(
        Idp::Ping,
        "urn:scim:schemas:extension:enterprise:2.0:department eq \"Sales\" and urn:scim:schemas:core:2.0:userName sw \"k\"",
    );
    assert_eq!(
        n.request,
        format!("{ENT}:department eq \"Sales\" and userName sw \"k\"")
    );
    assert_eq!(n.applied, vec![LEGACY_URN]);
    // Both rules in one filter.
    let n = normalize_filter(
        Idp::Generic,
        "urn:scim:schemas:core:2.0:emails[type eq \"work\"].value eq \"k@example.com\"",
    );
    assert_eq!(
        n.request,
        "emails[type eq \"work\" and value eq \"k@example.com\"]"
    );
    assert_eq!(n.applied, vec![LEGACY_URN, FILTER_VALUE_PATH_SUBATTR]);
    // Nothing to rewrite, or a rewrite that would not parse: the client's text, no rule.
    for f in [
        "userName eq \"urn:scim:schemas:core:2.0:x\"",
        "urn:scim:schemas:core:2.0:title eq",
    ] {
        let n = normalize_filter(Idp::Generic, f);
        assert_eq!(n.request, f);
        assert!(n.applied.is_empty(), "{f}");
    }
}
