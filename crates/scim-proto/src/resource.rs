//! Validation and normalisation of resource documents on create and replace (RFC 7643 §2,
//! RFC 7644 §3.3, §3.5.1).
//!
//! Input JSON becomes the *stored document*: canonical attribute names, extension attributes
//! under their URN key, `schemas` listing the core URN and the extensions present; `id`,
//! `meta`, readOnly attributes and unknown attributes dropped; `password` and Group `members`
//! taken out (the store keeps them elsewhere). The stored document is what is returned, once
//! the server adds `id`, `meta`, `members` or `groups`.
//!
//! The contract, rule by rule:
//!
//! - Keys are matched case-insensitively (RFC 7643 §2.1): `schemas`, the common attributes
//!   (`id`, `externalId`, `meta`), core attributes, URN-qualified core or extension attributes
//!   (`urn:…:enterprise:2.0:User:employeeNumber`) and extension URNs whose value is an object.
//! - Unknown attributes and sub-attributes are dropped silently: RFC 7644 §3.3 lets a service
//!   provider ignore them, and identity providers routinely send extras.
//! - readOnly attributes and sub-attributes (`id`, `meta`, User `groups`,
//!   `manager.displayName`) are ignored on input (RFC 7643 §2.2).
//! - Values are type-checked by their schema type (RFC 7643 §2.3); a wrong type is 400
//!   `invalidValue` naming the attribute and the expected type. Strings are kept as given.
//! - A single value sent for a multi-valued attribute is accepted as a one-element array: it is
//!   unambiguous, and rejecting it would only break clients for no safety gain.
//! - `null`, empty arrays and empty objects mean "unassigned" (RFC 7643 §2.5) and are omitted.
//! - Required attributes (`userName`, Group `displayName`) must be present and non-empty.
//! - At most one element of a multi-valued attribute may be `primary` (RFC 7643 §2.4).
//! - A User *created* without `active` is stored with `active: true`: a provisioned user is
//!   active unless the identity provider says otherwise. On replace (and after a PATCH) an absent
//!   `active` stays absent, as RFC 7644 §3.5.1 and §3.5.2.2 say for any removed attribute; Roster
//!   treats a User without `active` as active.
//! - On replace, a stored immutable value must not change or disappear (RFC 7644 §3.5.1).
//! - The output is deterministic: attributes and sub-attributes in schema order.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::{fold_case, parse_datetime};
use crate::schema::{AttrType, AttributeDef, Mutability, ResourceKind, SchemaDef, TypeDef};

/// A Group member reference taken from input (`members[].value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    /// The member's resource id.
    pub value: String,
}

/// The result of normalising a create or replace body.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The stored document.
    pub doc: Value,
    /// A cleartext password, when one was given (the caller hashes it).
    pub password: Option<String>,
    /// Group members, when the body carried `members` (`Some(vec![])` for an empty list or
    /// `null`, which RFC 7643 §2.5 makes equivalent to unassigned).
    pub members: Option<Vec<MemberRef>>,
}

/// Normalises a POST or PUT body.
///
/// `existing` is the stored document being replaced (PUT), used to enforce `immutable`.
///
/// # Errors
/// 400 `invalidSyntax` for a body that is not a JSON object or lacks the core schema URN,
/// 400 `invalidValue` for a missing required attribute or a value of the wrong type,
/// 400 `mutability` for a changed immutable attribute.
pub fn normalize(
    def: TypeDef,
    body: &Value,
    existing: Option<&Value>,
) -> Result<Normalized, ScimError> {
    let core_urn = def.schema.id;
    let Some(obj) = body.as_object() else {
        return Err(ScimError::invalid_syntax(format!(
            "the request body must be a JSON object with \"schemas\": [\"{core_urn}\"] and the \
             {} attributes",
            def.kind.as_str()
        )));
    };
    check_schemas(obj, core_urn)?;

    let mut collected = Collected::default();
    let mut password = None;
    let mut members = None;
    for (key, value) in obj {
        match classify_key(def, key) {
            Key::Schemas | Key::Unknown => {}
            Key::Attr(attr) => {
                if is_password(def, attr) {
                    password = parse_password(value)?;
                } else if is_members(def, attr) {
                    members = Some(parse_members(value)?);
                } else {
                    collected.put(None, attr, value)?;
                }
            }
            Key::ExtAttr(schema, attr) => collected.put(Some(schema), attr, value)?,
            Key::Extension(schema) => match value {
                Value::Null => {}
                Value::Object(ext) => {
                    for (k, v) in ext {
                        if let Some(attr) = schema.attribute(k) {
                            collected.put(Some(schema), attr, v)?;
                        }
                    }
                }
                other => {
                    return Err(ScimError::invalid_value(format!(
                        "\"{}\" must be an object of extension attributes, got {}",
                        schema.id,
                        describe(other)
                    )))
                }
            },
        }
    }

    if def.kind == ResourceKind::User
        && existing.is_none()
        && !collected
            .core
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("active"))
    {
        collected.core.push(("active", Value::Bool(true)));
    }

    let doc = collected.build(def);
    for attr in &def.schema.attributes {
        if attr.required && !is_present(doc.get(attr.name)) {
            return Err(ScimError::invalid_value(format!(
                "\"{}\" is required",
                attr.name
            )));
        }
    }
    if let Some(old) = existing {
        check_immutable(def, &doc, old)?;
    }
    Ok(Normalized {
        doc,
        password,
        members,
    })
}

/// Whether the object's `schemas` (any key case) is an array listing `urn` (any letter case).
pub(crate) fn lists_schema(obj: &Map<String, Value>, urn: &str) -> bool {
    get_ci(obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(urn)))
        })
}

fn check_schemas(obj: &Map<String, Value>, core_urn: &str) -> Result<(), ScimError> {
    if lists_schema(obj, core_urn) {
        Ok(())
    } else if lists_schema(obj, SCIM_11_CORE_URN) {
        // SCIM 1.1 resources differ in shape (OneLogin's 1.1 template sends `emails` as one
        // object and the manager as `managerId`): reading them as 2.0 would lose data.
        Err(ScimError::invalid_syntax(format!(
            "\"{SCIM_11_CORE_URN}\" is SCIM 1.1, which this server does not accept: send SCIM \
             2.0 (RFC 7643), whose \"schemas\" contain \"{core_urn}\" (in OneLogin, use the \
             \"SCIM Provisioner with SAML (SCIM v2 Enterprise)\" connector and its SCIM 2.0 \
             template)"
        )))
    } else {
        Err(ScimError::invalid_syntax(format!(
            "\"schemas\" must be an array that contains \"{core_urn}\" (add it, plus the URN of \
             each schema extension you send)"
        )))
    }
}

/// The core schema URN of SCIM 1.1, refused with its own explanation.
const SCIM_11_CORE_URN: &str = "urn:scim:schemas:core:1.0";

/// Whether a stored value counts as assigned: present, not null, not an empty string, array or
/// object.
pub(crate) fn is_present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// Canonicalised attribute values gathered from an input object, assembled in schema order.
#[derive(Default)]
struct Collected {
    core: Vec<(&'static str, Value)>,
    ext: Vec<(&'static str, Vec<(&'static str, Value)>)>,
}

impl Collected {
    /// Validates and records one attribute; readOnly ones are ignored (RFC 7643 §2.2).
    fn put(
        &mut self,
        ext: Option<&'static SchemaDef>,
        attr: &'static AttributeDef,
        value: &Value,
    ) -> Result<(), ScimError> {
        if attr.mutability == Mutability::ReadOnly {
            return Ok(());
        }
        let label = attr_label(ext.map(|s| s.id), attr.name, None);
        let canon = canonical_value(attr, &label, value)?;
        let list = match ext {
            None => &mut self.core,
            Some(s) => {
                let pos = match self.ext.iter().position(|(u, _)| *u == s.id) {
                    Some(p) => p,
                    None => {
                        self.ext.push((s.id, Vec::new()));
                        self.ext.len() - 1
                    }
                };
                match self.ext.get_mut(pos) {
                    Some((_, l)) => l,
                    None => return Ok(()),
                }
            }
        };
        // A later duplicate key (differing only in case) wins, as in a JSON object.
        list.retain(|(n, _)| *n != attr.name);
        if let Some(v) = canon {
            list.push((attr.name, v));
        }
        Ok(())
    }

    fn build(mut self, def: TypeDef) -> Value {
        let mut out = Map::new();
        let mut schemas = vec![Value::String(def.schema.id.to_owned())];
        let mut ext_objects = Vec::new();
        for schema in &def.extensions {
            let Some(pos) = self.ext.iter().position(|(u, _)| *u == schema.id) else {
                continue;
            };
            let (_, attrs) = self.ext.swap_remove(pos);
            let obj = in_order(&schema.attributes, attrs);
            if !obj.is_empty() {
                schemas.push(Value::String(schema.id.to_owned()));
                ext_objects.push((schema.id, obj));
            }
        }
        out.insert("schemas".into(), Value::Array(schemas));
        for common in &def.common {
            if let Some(pos) = self.core.iter().position(|(n, _)| *n == common.name) {
                let (n, v) = self.core.swap_remove(pos);
                out.insert(n.to_owned(), v);
            }
        }
        out.extend(in_order(&def.schema.attributes, self.core));
        for (urn, obj) in ext_objects {
            out.insert(urn.to_owned(), Value::Object(obj));
        }
        Value::Object(out)
    }
}

fn in_order(defs: &[AttributeDef], mut vals: Vec<(&'static str, Value)>) -> Map<String, Value> {
    let mut out = Map::new();
    for d in defs {
        if let Some(pos) = vals.iter().position(|(n, _)| *n == d.name) {
            let (n, v) = vals.swap_remove(pos);
            out.insert(n.to_owned(), v);
        }
    }
    out
}

/// What a key of a resource object (or of a path-less PATCH value) refers to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key {
    /// `schemas`.
    Schemas,
    /// A common or core attribute.
    Attr(&'static AttributeDef),
    /// A URN-qualified extension attribute (`urn:…:enterprise:2.0:User:employeeNumber`).
    ExtAttr(&'static SchemaDef, &'static AttributeDef),
    /// An extension URN, whose value is an object of that extension's attributes.
    Extension(&'static SchemaDef),
    /// Anything else.
    Unknown,
}

/// Classifies a top-level key, case-insensitively.
pub(crate) fn classify_key(def: TypeDef, key: &str) -> Key {
    if key.eq_ignore_ascii_case("schemas") {
        return Key::Schemas;
    }
    if let Some(ext) = def
        .extensions
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(key))
    {
        return Key::Extension(ext);
    }
    let (schema, name) = match key.rsplit_once(':') {
        Some((urn, name)) => match def.schema_by_urn(urn) {
            Some(s) => (Some(s), name),
            None => return Key::Unknown,
        },
        None => (None, key),
    };
    match schema {
        Some(s) if s.id != def.schema.id => s
            .attribute(name)
            .map_or(Key::Unknown, |a| Key::ExtAttr(s, a)),
        _ => def
            .common
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .or_else(|| def.schema.attribute(name))
            .map_or(Key::Unknown, Key::Attr),
    }
}

/// Whether `attr` is the User `password`, which is never stored in the document.
pub(crate) fn is_password(def: TypeDef, attr: &AttributeDef) -> bool {
    def.kind == ResourceKind::User && attr.name == "password"
}

/// Whether `attr` is Group `members`, which the store keeps as rows.
pub(crate) fn is_members(def: TypeDef, attr: &AttributeDef) -> bool {
    def.kind == ResourceKind::Group && attr.name == "members"
}

/// Validates a password value: a string, or `null` for none.
pub(crate) fn parse_password(value: &Value) -> Result<Option<String>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(ScimError::invalid_value(format!(
            "\"password\" must be a string, got {}",
            describe(other)
        ))),
    }
}

/// Validates Group `members` input: objects with a string `value` and, if given, `type` "User".
/// `$ref` and `display` are ignored (Roster derives them); duplicates are dropped, keeping the
/// first occurrence. A single object is accepted as a one-element list, `null` as `[]`.
pub(crate) fn parse_members(value: &Value) -> Result<Vec<MemberRef>, ScimError> {
    let items: &[Value] = match value {
        Value::Null => &[],
        Value::Array(a) => a,
        other => std::slice::from_ref(other),
    };
    let mut out: Vec<MemberRef> = Vec::with_capacity(items.len());
    for item in items {
        let Some(obj) = item.as_object() else {
            return Err(ScimError::invalid_value(format!(
                "each element of \"members\" must be an object like {{\"value\": \"<user id>\"}}, \
                 got {}",
                describe(item)
            )));
        };
        let id = match get_ci(obj, "value") {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(other) => {
                return Err(ScimError::invalid_value(format!(
                    "\"members.value\" must be a non-empty string (the member's id), got {}",
                    describe(other)
                )))
            }
            None => {
                return Err(ScimError::invalid_value(
                    "each element of \"members\" needs a \"value\": the member's id",
                ))
            }
        };
        match get_ci(obj, "type") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) if t.eq_ignore_ascii_case("User") => {}
            Some(Value::String(t)) => {
                return Err(ScimError::invalid_value(format!(
                    "nested groups are not supported: member \"{id}\" has type \"{t}\""
                )))
            }
            Some(other) => {
                return Err(ScimError::invalid_value(format!(
                    "\"members.type\" must be the string \"User\", got {}",
                    describe(other)
                )))
            }
        }
        if !out.iter().any(|m| m.value == *id) {
            out.push(MemberRef { value: id.clone() });
        }
    }
    Ok(out)
}

/// The name of an attribute in error details: `name.givenName`, or
/// `urn:…:enterprise:2.0:User:manager.value` for extension attributes.
pub(crate) fn attr_label(ext: Option<&str>, attr: &str, sub: Option<&str>) -> String {
    let mut s = match ext {
        Some(u) => format!("{u}:{attr}"),
        None => attr.to_owned(),
    };
    if let Some(sub) = sub {
        s.push('.');
        s.push_str(sub);
    }
    s
}

/// Validates and canonicalises the value of `def` (named `label` in errors). `Ok(None)` means
/// unassigned: `null`, or an empty array or object.
pub(crate) fn canonical_value(
    def: &AttributeDef,
    label: &str,
    value: &Value,
) -> Result<Option<Value>, ScimError> {
    if !def.multi_valued {
        return canonical_single(def, label, value);
    }
    let items: &[Value] = match value {
        Value::Null => return Ok(None),
        Value::Array(a) => a,
        other => std::slice::from_ref(other),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Some(v) = canonical_single(def, label, item)? {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    if out.iter().filter(|e| is_primary(e)).count() > 1 {
        return Err(ScimError::invalid_value(format!(
            "\"{label}\" has more than one value with \"primary\": true; at most one value may \
             be primary (RFC 7643 §2.4)"
        )));
    }
    Ok(Some(Value::Array(out)))
}

/// Whether an element of a multi-valued attribute is marked primary.
pub(crate) fn is_primary(elem: &Value) -> bool {
    elem.get("primary") == Some(&Value::Bool(true))
}

/// Validates one value of `def` as if it were single-valued (an element, for multi-valued
/// attributes).
pub(crate) fn canonical_single(
    def: &AttributeDef,
    label: &str,
    value: &Value,
) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    let ok = match def.attr_type {
        AttrType::String | AttrType::Reference => value.is_string(),
        AttrType::Boolean => value.is_boolean(),
        AttrType::Integer => value.as_i64().is_some(),
        AttrType::Decimal => value.is_number(),
        AttrType::DateTime => value.as_str().is_some_and(|s| parse_datetime(s).is_some()),
        AttrType::Binary => value.as_str().is_some_and(is_base64),
        AttrType::Complex => {
            return match value.as_object() {
                Some(obj) => Ok(canonical_complex(def, label, obj)?.map(Value::Object)),
                None => Err(type_error(def, label, value)),
            }
        }
    };
    if ok {
        Ok(Some(value.clone()))
    } else {
        Err(type_error(def, label, value))
    }
}

fn canonical_complex(
    def: &AttributeDef,
    label: &str,
    obj: &Map<String, Value>,
) -> Result<Option<Map<String, Value>>, ScimError> {
    let mut vals: Vec<(&str, Value)> = Vec::new();
    for (k, v) in obj {
        let Some(sub) = def.sub_attribute(k) else {
            continue;
        };
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        let sub_label = format!("{label}.{}", sub.name);
        vals.retain(|(n, _)| *n != sub.name);
        if let Some(c) = canonical_value(sub, &sub_label, v)? {
            vals.push((sub.name, c));
        }
    }
    let mut out = Map::new();
    for sub in &def.sub_attributes {
        if let Some(pos) = vals.iter().position(|(n, _)| *n == sub.name) {
            let (n, v) = vals.swap_remove(pos);
            out.insert(n.to_owned(), v);
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

fn type_error(def: &AttributeDef, label: &str, value: &Value) -> ScimError {
    let expected = match def.attr_type {
        AttrType::String => "a string",
        AttrType::Reference => "a string (a URI reference)",
        AttrType::Boolean => "a boolean",
        AttrType::Integer => "an integer",
        AttrType::Decimal => "a number",
        AttrType::DateTime => "an RFC 3339 dateTime string such as \"2024-05-01T12:00:00Z\"",
        AttrType::Binary => "a base64-encoded string",
        AttrType::Complex => "an object",
    };
    ScimError::invalid_value(format!(
        "\"{label}\" must be {expected}, got {}",
        describe(value)
    ))
}

/// A short description of a JSON value for error details.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => {
            // Long values are cut so that an error detail stays readable and bounded.
            let short: String = s.chars().take(64).collect();
            let ellipsis = if short.len() < s.len() { "…" } else { "" };
            format!("the string {}{ellipsis}", Value::String(short))
        }
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Standard base64 (RFC 4648 §4) with padding; ASCII whitespace (line breaks of PEM-style
/// encodings) is tolerated.
fn is_base64(s: &str) -> bool {
    let bytes: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if bytes.chunks(4).any(|c| c.len() != 4) {
        return false;
    }
    let pad = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    pad <= 2
        && bytes
            .iter()
            .take(bytes.len() - pad)
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// Looks a key up case-insensitively (the exact key first).
pub(crate) fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Compares two values of `def` the way SCIM equality does: strings case-insensitively unless
/// the attribute is `caseExact`, everything else exactly.
pub(crate) fn values_equal(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) if !def.case_exact => fold_case(x) == fold_case(y),
        _ => a == b,
    }
}

/// Enforces `immutable` against the stored document: a stored value may not change or be
/// unset. Sub-attributes are checked inside single-valued complex attributes; elements of
/// multi-valued attributes have no identity to compare by, and the only immutable ones
/// (Group `members`) are never part of the document.
fn check_immutable(def: TypeDef, new: &Value, old: &Value) -> Result<(), ScimError> {
    let schemas = std::iter::once((None, &def.schema.attributes))
        .chain(std::iter::once((None, &def.common)))
        .chain(def.extensions.iter().map(|s| (Some(s.id), &s.attributes)));
    for (ext, attrs) in schemas {
        fn container<'a>(doc: &'a Value, ext: Option<&str>) -> Option<&'a Value> {
            match ext {
                None => Some(doc),
                Some(u) => doc.get(u),
            }
        }
        let (new_c, old_c) = (container(new, ext), container(old, ext));
        for attr in attrs.iter() {
            let old_v = old_c.and_then(|c| c.get(attr.name));
            let new_v = new_c.and_then(|c| c.get(attr.name));
            if attr.mutability == Mutability::Immutable && is_present(old_v) && old_v != new_v {
                return Err(immutable_error(&attr_label(ext, attr.name, None)));
            }
            if attr.attr_type == AttrType::Complex && !attr.multi_valued {
                for sub in &attr.sub_attributes {
                    let o = old_v.and_then(|v| v.get(sub.name));
                    let n = new_v.and_then(|v| v.get(sub.name));
                    if sub.mutability == Mutability::Immutable && is_present(o) && o != n {
                        return Err(immutable_error(&attr_label(ext, attr.name, Some(sub.name))));
                    }
                }
            }
        }
    }
    Ok(())
}

/// 400 `mutability` for an attempt to change a set immutable value.
pub(crate) fn immutable_error(label: &str) -> ScimError {
    ScimError::mutability(format!(
        "\"{label}\" is immutable: it already has a value, which cannot be changed or removed"
    ))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod active_default_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn active_defaults_to_true_on_create_only() {
        let body = json!({"schemas": [crate::schema::USER_SCHEMA], "userName": "a"});
        let created = normalize(ResourceKind::User.def(), &body, None).unwrap();
        assert_eq!(created.doc["active"], true);
        let replaced = normalize(ResourceKind::User.def(), &body, Some(&created.doc)).unwrap();
        assert!(replaced.doc.get("active").is_none());
    }
}
