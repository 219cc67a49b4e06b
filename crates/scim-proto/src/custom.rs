//! Custom attributes: schema extensions the host app declares for its own attributes
//! (`costCenter`, `region`, ...), per tenant or for every tenant.
//!
//! A declaration is plain data ([`CustomSchema`]); [`resource_type`] turns the declarations that
//! apply to one resource type into a [`ResourceTypeDef`] that the rest of the protocol core
//! validates, patches, filters and projects against exactly as it does the built-in schemas.
//!
//! The built-in definitions are `&'static`, and the filter and PATCH engines keep references
//! into them. Rather than thread a lifetime through every validated filter, a declaration set
//! is built once and leaked, interned by its content: the same declarations always give the
//! same definition, so memory grows only with the distinct declaration sets a process ever
//! sees (an operator's rare edits), never with requests or tenants sharing a set.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ScimError;
use crate::schema::{
    AttrType, AttributeDef, Mutability, ResourceKind, ResourceTypeDef, Returned, SchemaDef,
    Uniqueness, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA,
};

/// The most custom schemas one scope (a tenant, or every tenant) may declare.
pub const MAX_SCHEMAS: usize = 20;
/// The most attributes one custom schema may declare.
pub const MAX_ATTRIBUTES: usize = 100;
/// The longest attribute name.
pub const MAX_NAME: usize = 64;
/// The longest schema URN.
pub const MAX_URN: usize = 200;
/// The longest description.
pub const MAX_DESCRIPTION: usize = 500;

/// The types a custom attribute may have: the simple SCIM types (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CustomType {
    /// `string`.
    String,
    /// `boolean`.
    Boolean,
    /// `decimal`.
    Decimal,
    /// `integer`.
    Integer,
    /// `dateTime`.
    DateTime,
    /// `reference` (an external URI).
    Reference,
}

impl CustomType {
    /// The SCIM type.
    #[must_use]
    pub fn attr_type(self) -> AttrType {
        match self {
            Self::String => AttrType::String,
            Self::Boolean => AttrType::Boolean,
            Self::Decimal => AttrType::Decimal,
            Self::Integer => AttrType::Integer,
            Self::DateTime => AttrType::DateTime,
            Self::Reference => AttrType::Reference,
        }
    }
}

/// One declared attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomAttribute {
    /// The attribute name (RFC 7643 §2.1 `ATTRNAME`), matched case-insensitively.
    pub name: String,
    /// The type.
    #[serde(rename = "type")]
    pub attr_type: CustomType,
    /// Whether the value is an array of values of that type.
    #[serde(default)]
    pub multi_valued: bool,
    /// Whether string comparison is case-sensitive (strings only).
    #[serde(default)]
    pub case_exact: bool,
    /// Shown in `/Schemas`.
    #[serde(default)]
    pub description: String,
    /// Suggested values, published in `/Schemas` (not enforced, like the core's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    /// Whether the store keeps an index for filters and sorts on it.
    #[serde(default)]
    pub indexed: bool,
}

/// A schema extension the host app declares.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomSchema {
    /// The schema URN, also the key of its object in resources.
    pub urn: String,
    /// The resource type it extends.
    pub resource: CustomResource,
    /// Short name shown in `/Schemas`.
    #[serde(default)]
    pub name: String,
    /// Shown in `/Schemas`.
    #[serde(default)]
    pub description: String,
    /// The attributes.
    pub attributes: Vec<CustomAttribute>,
}

/// The resource type a custom schema extends, as written in declarations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CustomResource {
    /// Users.
    User,
    /// Groups.
    Group,
}

impl CustomResource {
    /// The resource kind.
    #[must_use]
    pub fn kind(self) -> ResourceKind {
        match self {
            Self::User => ResourceKind::User,
            Self::Group => ResourceKind::Group,
        }
    }
}

/// The URN Okta and Entra ID expect for a custom extension named `name`
/// (`urn:ietf:params:scim:schemas:extension:{name}:2.0:User`).
#[must_use]
pub fn default_urn(name: &str, resource: CustomResource) -> String {
    let ty = match resource {
        CustomResource::User => "User",
        CustomResource::Group => "Group",
    };
    format!("urn:ietf:params:scim:schemas:extension:{name}:2.0:{ty}")
}

fn invalid(detail: String) -> ScimError {
    ScimError::invalid_value(detail)
}

fn is_attr_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_urn(s: &str) -> bool {
    s.len() > 4
        && s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        && !s.ends_with(':')
        && !s.contains("::")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:-_".contains(&b))
}

/// Checks one scope's declarations (a tenant's, or the global set) as a whole.
///
/// # Errors
/// 400 `invalidValue` naming the first declaration of the wrong shape: an URN that is not a
/// URN, an attribute name outside RFC 7643 `ATTRNAME`, more schemas, attributes or characters
/// than allowed. 409 `uniqueness` for a name that is taken: a built-in schema's URN, a schema
/// declared twice, an attribute named like a core or common one, or declared twice in a schema.
/// (`caseExact` on a type other than string is accepted and means nothing, as in RFC 7643.)
pub fn validate(schemas: &[CustomSchema]) -> Result<(), ScimError> {
    if schemas.len() > MAX_SCHEMAS {
        return Err(invalid(format!(
            "at most {MAX_SCHEMAS} custom schemas may be declared, not {}",
            schemas.len()
        )));
    }
    for (i, s) in schemas.iter().enumerate() {
        if !is_urn(&s.urn) || s.urn.chars().count() > MAX_URN {
            return Err(invalid(format!(
                "\"{}\" is not a schema URN: use up to {MAX_URN} letters, digits, '.', '-', '_' \
                 and ':' starting with \"urn:\", such as \"{}\"",
                s.urn,
                default_urn("acme", s.resource)
            )));
        }
        if [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA]
            .iter()
            .any(|b| b.eq_ignore_ascii_case(&s.urn))
            || s.urn.to_ascii_lowercase().starts_with("urn:scim:schemas:")
        {
            return Err(ScimError::uniqueness(format!(
                "\"{}\" is a built-in schema (or one of its legacy aliases); a custom schema \
                 needs a URN of its own",
                s.urn
            )));
        }
        if schemas[..i]
            .iter()
            .any(|o| o.urn.eq_ignore_ascii_case(&s.urn))
        {
            return Err(ScimError::uniqueness(format!(
                "schema \"{}\" is declared twice",
                s.urn
            )));
        }
        if s.name.chars().count() > MAX_NAME || s.description.chars().count() > MAX_DESCRIPTION {
            return Err(invalid(format!(
                "schema \"{}\": the name may have up to {MAX_NAME} characters and the \
                 description up to {MAX_DESCRIPTION}",
                s.urn
            )));
        }
        if s.attributes.is_empty() || s.attributes.len() > MAX_ATTRIBUTES {
            return Err(invalid(format!(
                "schema \"{}\" must declare between 1 and {MAX_ATTRIBUTES} attributes, not {}",
                s.urn,
                s.attributes.len()
            )));
        }
        let base = s.resource.kind().def();
        for (j, a) in s.attributes.iter().enumerate() {
            if !is_attr_name(&a.name) || a.name.len() > MAX_NAME {
                return Err(invalid(format!(
                    "\"{}\" is not an attribute name: start with a letter, then letters, \
                     digits, '_' or '-', up to {MAX_NAME} characters (RFC 7643 §2.1)",
                    a.name
                )));
            }
            if base
                .common
                .iter()
                .chain(base.schema.attributes.iter())
                .any(|c| c.name.eq_ignore_ascii_case(&a.name))
            {
                return Err(ScimError::uniqueness(format!(
                    "\"{}\" is a core {} attribute; choose another name for the custom one",
                    a.name,
                    base.kind.as_str()
                )));
            }
            if s.attributes[..j]
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&a.name))
            {
                return Err(ScimError::uniqueness(format!(
                    "attribute \"{}\" is declared twice in \"{}\"",
                    a.name, s.urn
                )));
            }
            if a.description.chars().count() > MAX_DESCRIPTION
                || a.canonical_values.len() > MAX_ATTRIBUTES
                || a.canonical_values
                    .iter()
                    .any(|v| v.chars().count() > MAX_NAME * 4)
            {
                return Err(invalid(format!(
                    "\"{}\": the description may have up to {MAX_DESCRIPTION} characters and \
                     up to {MAX_ATTRIBUTES} canonical values of up to {} characters",
                    a.name,
                    MAX_NAME * 4
                )));
            }
        }
    }
    Ok(())
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn attribute_def(a: &CustomAttribute) -> AttributeDef {
    let values: Vec<&'static str> = a.canonical_values.iter().map(|v| leak(v)).collect();
    AttributeDef {
        name: leak(&a.name),
        attr_type: a.attr_type.attr_type(),
        multi_valued: a.multi_valued,
        description: leak(&a.description),
        required: false,
        // caseExact means something for strings only; references always compare exactly.
        case_exact: (a.case_exact && a.attr_type == CustomType::String)
            || a.attr_type == CustomType::Reference,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: Box::leak(values.into_boxed_slice()),
        reference_types: if a.attr_type == CustomType::Reference {
            &["external"]
        } else {
            &[]
        },
        sub_attributes: Vec::new(),
    }
}

fn schema_def(s: &CustomSchema) -> SchemaDef {
    SchemaDef {
        id: leak(&s.urn),
        name: leak(if s.name.is_empty() {
            s.urn.rsplit(':').nth(2).unwrap_or(&s.urn)
        } else {
            &s.name
        }),
        description: leak(&s.description),
        attributes: s.attributes.iter().map(attribute_def).collect(),
    }
}

/// The resource type `kind` with the custom schemas of `declared` that extend it, after the
/// built-in extensions. Declarations for the other resource type are ignored; with none for
/// `kind` this is [`ResourceKind::def`].
///
/// `declared` must have passed [`validate`] (with the other scope's declarations, when a
/// tenant's and the global set are combined).
#[must_use]
pub fn resource_type(kind: ResourceKind, declared: &[CustomSchema]) -> &'static ResourceTypeDef {
    let own: Vec<CustomSchema> = declared
        .iter()
        .filter(|s| s.resource.kind() == kind)
        .map(|s| CustomSchema {
            // Not part of the definition the core sees; leaving it out lets an index being
            // added or dropped reuse the same definition.
            attributes: s
                .attributes
                .iter()
                .map(|a| CustomAttribute {
                    indexed: false,
                    ..a.clone()
                })
                .collect(),
            ..s.clone()
        })
        .collect();
    if own.is_empty() {
        return kind.def();
    }
    static INTERNED: OnceLock<Mutex<HashMap<Vec<CustomSchema>, &'static ResourceTypeDef>>> =
        OnceLock::new();
    let mut map = INTERNED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(def) = map.get(&own) {
        return def;
    }
    let mut def = kind.def().clone();
    def.extensions.extend(own.iter().map(schema_def));
    let def: &'static ResourceTypeDef = Box::leak(Box::new(def));
    map.insert(own, def);
    def
}

/// The declarations a tenant works with: the global ones (declared for every tenant) whose URN
/// the tenant does not declare itself, then the tenant's own, which override a global schema
/// with the same URN (compared case-insensitively) whole.
#[must_use]
pub fn effective(global: &[CustomSchema], own: &[CustomSchema]) -> Vec<CustomSchema> {
    global
        .iter()
        .filter(|g| !own.iter().any(|o| o.urn.eq_ignore_ascii_case(&g.urn)))
        .chain(own)
        .cloned()
        .collect()
}

/// A stored value of an attribute declared as `from`, converted for the declaration `to` that
/// replaces it (a forced retype, `PUT …/custom-schemas?force=true`); `None` when it cannot be
/// (a forced removal, `to` = `None`, never keeps a value). The rules, as the docs state them:
/// a value keeps its meaning or goes. Single to multi-valued wraps it in a list; multi to
/// single keeps the first element that converts. A string becomes an integer, decimal,
/// boolean (`true`/`false`, any case) or dateTime when it parses as one, and a reference as
/// it is; anything becomes a string as its JSON text (a string as itself); an integer becomes
/// a decimal; a decimal with no fraction an integer.
#[must_use]
pub fn convert(
    value: &Value,
    from: &CustomAttribute,
    to: Option<&CustomAttribute>,
) -> Option<Value> {
    let to = to?;
    let one = |v: &Value| convert_one(v, to.attr_type);
    match (from.multi_valued, to.multi_valued) {
        (false, false) => one(value),
        (false, true) => one(value).map(|v| Value::Array(vec![v])),
        (true, true) => {
            let all: Vec<Value> = value.as_array()?.iter().filter_map(one).collect();
            (!all.is_empty()).then_some(Value::Array(all))
        }
        (true, false) => value.as_array()?.iter().find_map(one),
    }
}

fn convert_one(v: &Value, to: CustomType) -> Option<Value> {
    match (to, v) {
        (CustomType::String | CustomType::Reference, Value::String(_)) => Some(v.clone()),
        (CustomType::String, Value::Bool(_) | Value::Number(_)) => {
            Some(Value::String(v.to_string()))
        }
        (CustomType::Boolean, Value::Bool(_)) => Some(v.clone()),
        (CustomType::Boolean, Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        (CustomType::Integer, Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .map(Value::from),
        (CustomType::Integer, Value::String(s)) => s.trim().parse::<i64>().ok().map(Value::from),
        (CustomType::Decimal, Value::Number(n)) => n.as_f64().map(Value::from),
        (CustomType::Decimal, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::from),
        (CustomType::DateTime, Value::String(s)) => crate::filter::parse_datetime(s)
            .map(|t| Value::String(crate::filter::format_datetime(t))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decl(v: serde_json::Value) -> Vec<CustomSchema> {
        serde_json::from_value(v).unwrap()
    }

    fn acme() -> Vec<CustomSchema> {
        decl(json!([{
            "urn": "urn:ietf:params:scim:schemas:extension:acme:2.0:User",
            "resource": "User",
            "attributes": [
                {"name": "costCenter", "type": "string"},
                {"name": "level", "type": "integer", "indexed": true},
                {"name": "regions", "type": "string", "multiValued": true},
            ]
        }]))
    }

    #[test]
    fn a_valid_declaration_extends_the_user_type_and_is_interned() {
        let d = acme();
        validate(&d).unwrap();
        let def = resource_type(ResourceKind::User, &d);
        assert_eq!(def.extensions.len(), 2);
        let r = def
            .resolve(
                Some("urn:ietf:params:scim:schemas:extension:acme:2.0:User"),
                "LEVEL",
                None,
            )
            .unwrap();
        assert_eq!(r.attr.name, "level");
        assert_eq!(r.attr.attr_type, AttrType::Integer);
        // The same declarations, even with another index choice, give the same definition.
        let mut again = acme();
        again[0].attributes[1].indexed = false;
        assert!(std::ptr::eq(def, resource_type(ResourceKind::User, &again)));
        // Groups are not extended by a User schema.
        assert!(std::ptr::eq(
            resource_type(ResourceKind::Group, &d),
            ResourceKind::Group.def()
        ));
        assert!(std::ptr::eq(
            resource_type(ResourceKind::User, &[]),
            ResourceKind::User.def()
        ));
    }

    #[test]
    fn declarations_that_break_a_rule_are_refused_with_the_reason() {
        let cases = [
            (
                json!({"urn": "R\u{f5}\u{a2}++n", "resource": "User", "attributes": [{"name": "a", "type": "string"}]}),
                "not a schema URN",
            ),
            (
                json!({"urn": "acme", "resource": "User", "attributes": [{"name": "a", "type": "string"}]}),
                "not a schema URN",
            ),
            (
                json!({"urn": USER_SCHEMA, "resource": "User", "attributes": [{"name": "a", "type": "string"}]}),
                "built-in",
            ),
            (
                json!({"urn": "urn:scim:schemas:core:1.0", "resource": "User", "attributes": [{"name": "a", "type": "string"}]}),
                "built-in",
            ),
            (
                json!({"urn": "urn:x:y", "resource": "User", "attributes": []}),
                "between 1 and",
            ),
            (
                json!({"urn": "urn:x:y", "resource": "User", "attributes": [{"name": "1a", "type": "string"}]}),
                "not an attribute name",
            ),
            (
                json!({"urn": "urn:x:y", "resource": "User", "attributes": [{"name": "userName", "type": "string"}]}),
                "core User attribute",
            ),
            (
                json!({"urn": "urn:x:y", "resource": "Group", "attributes": [{"name": "members", "type": "string"}]}),
                "core Group attribute",
            ),
            (
                json!({"urn": "urn:x:y", "resource": "User", "attributes": [{"name": "a", "type": "string"}, {"name": "A", "type": "integer"}]}),
                "declared twice",
            ),
        ];
        for (v, want) in cases {
            let d = decl(json!([v]));
            let e = validate(&d).unwrap_err();
            let status = if want == "built-in" || want.contains("core") || want == "declared twice"
            {
                409
            } else {
                400
            };
            assert_eq!(e.status, status, "{}", e.detail);
            assert!(e.detail.contains(want), "{} does not say {want}", e.detail);
        }
        // caseExact on an integer is accepted and means nothing.
        let ints = decl(json!([{"urn": "urn:x:y", "resource": "User",
            "attributes": [{"name": "a", "type": "integer", "caseExact": true}]}]));
        validate(&ints).unwrap();
        assert!(!resource_type(ResourceKind::User, &ints).extensions[1].attributes[0].case_exact);
        let twice = decl(json!([
            {"urn": "urn:x:y", "resource": "User", "attributes": [{"name": "a", "type": "string"}]},
            {"urn": "URN:x:y", "resource": "User", "attributes": [{"name": "b", "type": "string"}]},
        ]));
        assert!(validate(&twice)
            .unwrap_err()
            .detail
            .contains("declared twice"));
    }

    #[test]
    fn the_default_urn_is_the_form_okta_and_entra_expect() {
        assert_eq!(
            default_urn("acme", CustomResource::User),
            "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
        );
        let d = decl(
            json!([{"urn": default_urn("acme", CustomResource::Group), "resource": "Group",
            "attributes": [{"name": "site", "type": "string"}]}]),
        );
        validate(&d).unwrap();
        let def = resource_type(ResourceKind::Group, &d);
        assert_eq!(def.extensions[0].name, "acme");
    }

    #[test]
    fn custom_attributes_are_validated_patched_filtered_and_projected_like_built_in_ones() {
        let def = resource_type(ResourceKind::User, &acme());
        let urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
        let body = json!({
            "schemas": [crate::schema::USER_SCHEMA, urn],
            "userName": "ada",
            urn: {"COSTCENTER": "R&D", "level": 3, "regions": "emea", "unknown": 1},
        });
        let n = crate::resource::normalize(def, &body, None).unwrap();
        assert_eq!(
            n.doc[urn],
            json!({"costCenter": "R&D", "level": 3, "regions": ["emea"]})
        );
        assert_eq!(n.doc["schemas"], json!([crate::schema::USER_SCHEMA, urn]));

        let bad = json!({"schemas": [crate::schema::USER_SCHEMA], "userName": "b", urn: {"level": "three"}});
        let e = crate::resource::normalize(def, &bad, None).unwrap_err();
        assert_eq!(
            (e.status, e.detail.contains("level")),
            (400, true),
            "{}",
            e.detail
        );
        // Without the declaration the extension is unknown, and dropped as before.
        let plain = crate::resource::normalize(ResourceKind::User.def(), &body, None).unwrap();
        assert!(plain.doc.get(urn).is_none());

        // `costCenter` alone names the enterprise attribute, declared first; the URN picks ours.
        let f = crate::filter::parse_filter(&format!(
            "level gt 2 and {urn}:costCenter eq \"r&d\" and not (costCenter pr)"
        ))
        .unwrap()
        .validate(def)
        .unwrap();
        assert!(f.matches(&n.doc));
        assert!(crate::filter::parse_filter("level gt 2")
            .unwrap()
            .validate(ResourceKind::User.def())
            .is_err());

        let ops = crate::patch::parse_patch(&json!({
            "schemas": [crate::schema::PATCH_OP_SCHEMA],
            "Operations": [{"op": "replace", "path": format!("{urn}:level"), "value": 4}],
        }))
        .unwrap();
        let mut doc = n.doc.clone();
        crate::patch::apply_patch(def, &mut doc, &ops).unwrap();
        assert_eq!(doc[urn]["level"], json!(4));

        let only =
            crate::projection::Projection::parse(def, Some(&format!("{urn}:costCenter")), None)
                .unwrap();
        let out = only.apply(def, &doc);
        assert_eq!(out[urn], json!({"costCenter": "R&D"}));
    }

    #[test]
    fn forced_retypes_keep_what_converts_and_removals_keep_nothing() {
        let attr = |t: &str, multi: bool| -> CustomAttribute {
            serde_json::from_value(json!({"name": "a", "type": t, "multiValued": multi})).unwrap()
        };
        let s = attr("string", false);
        assert_eq!(
            convert(&json!("42"), &s, Some(&attr("integer", false))),
            Some(json!(42))
        );
        assert_eq!(
            convert(&json!("x"), &s, Some(&attr("integer", false))),
            None
        );
        assert_eq!(
            convert(&json!("TRUE"), &s, Some(&attr("boolean", false))),
            Some(json!(true))
        );
        assert_eq!(
            convert(&json!("1.5"), &s, Some(&attr("decimal", false))),
            Some(json!(1.5))
        );
        assert_eq!(convert(&json!("x"), &s, None), None);
        let i = attr("integer", false);
        assert_eq!(
            convert(&json!(7), &i, Some(&attr("string", false))),
            Some(json!("7"))
        );
        assert_eq!(
            convert(&json!(7), &i, Some(&attr("decimal", false))),
            Some(json!(7.0))
        );
        assert_eq!(
            convert(&json!(7), &i, Some(&attr("string", true))),
            Some(json!(["7"]))
        );
        let many = attr("string", true);
        assert_eq!(
            convert(
                &json!(["x", "3", "4"]),
                &many,
                Some(&attr("integer", false))
            ),
            Some(json!(3))
        );
        assert_eq!(
            convert(&json!(["x", "3"]), &many, Some(&attr("integer", true))),
            Some(json!([3]))
        );
        assert_eq!(
            convert(&json!(["x"]), &many, Some(&attr("integer", true))),
            None
        );
        let d = attr("decimal", false);
        assert_eq!(convert(&json!(2.0), &d, Some(&i)), Some(json!(2)));
        assert_eq!(convert(&json!(2.5), &d, Some(&i)), None);
    }

    #[test]
    fn a_tenants_own_schema_overrides_a_global_one_with_its_urn() {
        let g = decl(json!([
            {"urn": "urn:x:User", "resource": "User", "attributes": [{"name": "a", "type": "string"}]},
            {"urn": "urn:y:User", "resource": "User", "attributes": [{"name": "b", "type": "string"}]},
        ]));
        let own = decl(json!([
            {"urn": "URN:X:User", "resource": "User", "attributes": [{"name": "c", "type": "integer"}]},
        ]));
        let e = effective(&g, &own);
        let urns: Vec<&str> = e.iter().map(|s| s.urn.as_str()).collect();
        assert_eq!(urns, ["urn:y:User", "URN:X:User"]);
        assert_eq!(effective(&g, &[]), g);
        assert_eq!(effective(&[], &own), own);
    }
}
