//! PATCH (RFC 7644 §3.5.2): parsing a PatchOp request and applying it to a stored document.
//!
//! Operations are applied in order to a copy of the document; the first failure discards the
//! copy, so a request is applied wholly or not at all. Group `members` are never part of the
//! document: operations on them come back as [`MemberChange`]s for the store to apply as rows.
//!
//! Semantics, beyond the letter of RFC 7644 §3.5.2.1–§3.5.2.3:
//!
//! - Paths resolve case-insensitively through the schema (RFC 7644 §3.10). A path naming an
//!   attribute Roster does not know makes the operation a no-op: unknown attributes are
//!   ignored everywhere else (RFC 7644 §3.3), and failing a whole request for one would break
//!   identity providers that send extras. A path that is exactly an extension URN targets the
//!   whole extension object.
//! - readOnly targets (`id`, `meta`, `schemas`, User `groups`, `manager.displayName`) named by a
//!   path are 400 `mutability`; readOnly keys inside a path-less value are ignored, as on
//!   create (RFC 7643 §2.2).
//! - `add` to a multi-valued attribute appends the values that are not already there. Two
//!   elements are the same value when both have a `value` sub-attribute and those are equal
//!   (case-insensitively unless `caseExact`), otherwise when they are equal as JSON; a value
//!   that is already there is merged into the existing element, so that re-adding an address
//!   with `primary: true` updates it instead of duplicating it.
//! - An attribute path to a sub-attribute of a multi-valued attribute without a filter
//!   (`emails.value`) addresses every element; if there is none, `add` and `replace` create
//!   one. A value filter that matches nothing is 400 `noTarget` for `add` and `replace`
//!   (RFC 7644 §3.5.2.3) and a no-op for `remove`.
//! - `replace` of a complex attribute merges sub-attributes (unmentioned ones stay); `replace`
//!   of a multi-valued attribute without a filter replaces all its values. A `null` value in
//!   `replace` unassigns the target (RFC 7643 §2.5); in `add` it adds nothing.
//! - `remove` with a `value` on a multi-valued attribute (a non-standard form some identity
//!   providers send) removes only the listed values, matched by their `value` sub-attribute;
//!   listing nothing removes nothing.
//! - Removing a required attribute, or leaving it empty, is 400 `mutability` (RFC 7644
//!   §3.5.2.2: "If an attribute is removed or becomes unassigned and is defined as a required
//!   attribute or a read-only attribute, the server SHALL return ... mutability").
//! - Setting `primary: true` on one element sets `primary: false` on every other element of
//!   that attribute (RFC 7644 §3.5.2: the service provider "SHALL automatically set").
//! - User `password` is writeOnly and never in the document: `add`/`replace` report it in
//!   [`PatchEffects::password`]; `remove` is 400 `mutability`, because a user without a
//!   password is not something a client can ask for by removal (it can set a new one).
//! - Group `members`: `add` becomes [`MemberChange::Add`], `replace` becomes
//!   `Remove(None)` then `Add`, `remove` becomes `Remove(None)`, `Remove(Some(filter))` for
//!   `members[filter]`, or `Remove(Some(value eq "a" or value eq "b"))` for a `value` list.
//!   A path into a member's sub-attributes (`members.value`, `members[...].type`) is 400
//!   `mutability`: they are immutable (RFC 7643 §4.2); a member is removed and re-added instead.
//! - After all operations the result goes through [`crate::resource::normalize`] with the
//!   original as the stored document, so that PATCH and PUT store exactly the same shapes, and
//!   immutable values are enforced the same way.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::{self, AttrPath, CompValue, CompareOp, Filter, PatchPath, ValidFilter};
use crate::resource::{
    self, attr_label, canonical_single, canonical_value, classify_key, describe, get_ci,
    is_members, is_password, is_present, is_primary, values_equal, Key, MemberRef,
};
use crate::schema::{AttrType, AttributeDef, Mutability, SchemaDef, TypeDef, PATCH_OP_SCHEMA};

#[cfg(test)]
mod tests;

/// The operation keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `add`
    Add,
    /// `remove`
    Remove,
    /// `replace`
    Replace,
}

impl OpKind {
    /// The keyword as it appears on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Replace => "replace",
        }
    }
}

/// One parsed operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    /// The operation.
    pub op: OpKind,
    /// The target path, if any.
    pub path: Option<PatchPath>,
    /// The value, if any.
    pub value: Option<Value>,
}

/// A change to a Group's membership rows.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    /// Add these members (already-present members are left alone).
    Add(Vec<MemberRef>),
    /// Remove the members matching the filter (relative to `members`, e.g. `value eq "…"`);
    /// `None` removes every member.
    Remove(Option<Filter>),
}

/// What applying a PATCH did besides changing the document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PatchEffects {
    /// Membership changes, in order.
    pub members: Vec<MemberChange>,
    /// A new cleartext password (the caller hashes it).
    pub password: Option<String>,
    /// Canonical names of the top-level attributes that operations targeted, deduplicated, in
    /// order of first mention; extension attributes as `urn:…:attr` (also when they were set
    /// through an extension-URN path or key), the bare URN when a whole extension was removed.
    /// Operations ignored for naming unknown attributes add nothing; an idempotent `remove` of
    /// an absent attribute still counts as touching it.
    pub changed: Vec<String>,
}

impl PatchEffects {
    fn touch(&mut self, name: String) {
        if !self.changed.contains(&name) {
            self.changed.push(name);
        }
    }
}

const PATCH_HINT: &str = "a PATCH body looks like {\"schemas\": \
    [\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"], \"Operations\": [{\"op\": \"replace\", \
    \"path\": \"active\", \"value\": false}]}";

/// Parses a PatchOp request body.
///
/// # Errors
/// 400 `invalidSyntax` when the body is not a PatchOp message; 400 `invalidPath` for a bad path.
pub fn parse_patch(body: &Value) -> Result<Vec<PatchOp>, ScimError> {
    let Some(obj) = body.as_object() else {
        return Err(ScimError::invalid_syntax(format!(
            "the PATCH body must be a JSON object; {PATCH_HINT}"
        )));
    };
    if !crate::resource::lists_schema(obj, PATCH_OP_SCHEMA) {
        return Err(ScimError::invalid_syntax(format!(
            "\"schemas\" must be an array containing \"{PATCH_OP_SCHEMA}\"; {PATCH_HINT}"
        )));
    }
    let ops = match get_ci(obj, "Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        _ => {
            return Err(ScimError::invalid_syntax(format!(
                "\"Operations\" must be a non-empty array of operations; {PATCH_HINT}"
            )))
        }
    };
    ops.iter()
        .enumerate()
        .map(|(i, op)| parse_op(op).map_err(|e| at(i, e)))
        .collect()
}

fn parse_op(v: &Value) -> Result<PatchOp, ScimError> {
    let Some(o) = v.as_object() else {
        return Err(ScimError::invalid_syntax(
            "an operation must be an object with \"op\" and, as needed, \"path\" and \"value\"",
        ));
    };
    let op = match get_ci(o, "op") {
        Some(Value::String(s)) if s == "add" => OpKind::Add,
        Some(Value::String(s)) if s == "remove" => OpKind::Remove,
        Some(Value::String(s)) if s == "replace" => OpKind::Replace,
        Some(other) => {
            return Err(ScimError::invalid_syntax(format!(
                "\"op\" must be \"add\", \"remove\" or \"replace\", got {}",
                describe(other)
            )))
        }
        None => {
            return Err(ScimError::invalid_syntax(
                "the operation has no \"op\"; use \"add\", \"remove\" or \"replace\"",
            ))
        }
    };
    let path = match get_ci(o, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(filter::parse_path(s)?),
        Some(other) => {
            return Err(ScimError::invalid_path(format!(
                "\"path\" must be a string such as \"emails[type eq \\\"work\\\"].value\", got {}",
                describe(other)
            )))
        }
    };
    let value = get_ci(o, "value").cloned();
    if value.is_none() && op != OpKind::Remove {
        return Err(ScimError::invalid_syntax(format!(
            "an \"{}\" operation needs a \"value\"",
            op.as_str()
        )));
    }
    Ok(PatchOp { op, path, value })
}

/// Prefixes an error detail with the index of the operation that caused it.
fn at(i: usize, mut e: ScimError) -> ScimError {
    e.detail = format!("Operations[{i}]: {}", e.detail);
    e
}

/// Applies operations to `doc` (a stored document) atomically.
///
/// # Errors
/// `invalidPath`, `noTarget`, `invalidValue`, `mutability` per RFC 7644 §3.5.2; on error `doc`
/// is unchanged.
pub fn apply_patch(
    def: TypeDef,
    doc: &mut Value,
    ops: &[PatchOp],
) -> Result<PatchEffects, ScimError> {
    let mut work = doc.as_object().cloned().unwrap_or_default();
    let mut fx = PatchEffects::default();
    for (i, op) in ops.iter().enumerate() {
        apply_op(def, &mut work, op, &mut fx).map_err(|e| at(i, e))?;
    }
    for attr in def.schema.attributes.iter().filter(|a| a.required) {
        if !is_present(get_ci(&work, attr.name)) {
            return Err(ScimError::mutability(format!(
                "\"{}\" is required: it cannot be removed or left empty (RFC 7644 §3.5.2.2)",
                attr.name
            )));
        }
    }
    take_ci(&mut work, "schemas");
    work.insert(
        "schemas".into(),
        Value::Array(vec![Value::String(def.schema.id.to_owned())]),
    );
    let normalized = resource::normalize(def, &Value::Object(work), Some(doc))?;
    *doc = normalized.doc;
    Ok(fx)
}

/// What a path addresses.
enum Target<'p> {
    /// An unknown attribute: the operation is ignored.
    Ignore,
    /// A whole extension object.
    Extension(&'static SchemaDef),
    /// An attribute, possibly narrowed by a sub-attribute and a value filter.
    Attr(AttrTarget<'p>),
}

struct AttrTarget<'p> {
    ext: Option<&'static str>,
    attr: &'static AttributeDef,
    sub: Option<&'static AttributeDef>,
    filter: Option<&'p Filter>,
}

impl AttrTarget<'_> {
    fn whole(ext: Option<&'static str>, attr: &'static AttributeDef) -> Self {
        Self {
            ext,
            attr,
            sub: None,
            filter: None,
        }
    }

    fn label(&self) -> String {
        attr_label(self.ext, self.attr.name, self.sub.map(|s| s.name))
    }

    fn top_name(&self) -> String {
        attr_label(self.ext, self.attr.name, None)
    }
}

fn resolve_target(def: TypeDef, path: &PatchPath) -> Result<Target<'_>, ScimError> {
    let p = &path.attr;
    if path.filter.is_some() && p.sub_attr.is_some() {
        return Err(ScimError::invalid_path(
            "a sub-attribute goes after the value filter: attr[filter].subAttr",
        ));
    }
    if p.sub_attr.is_none() && path.filter.is_none() && path.sub_attr.is_none() {
        let full = match &p.urn {
            Some(u) => format!("{u}:{}", p.attr),
            None => p.attr.clone(),
        };
        if let Some(s) = def
            .extensions
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(&full))
        {
            return Ok(Target::Extension(s));
        }
    }
    if p.urn.is_none() && p.attr.eq_ignore_ascii_case("schemas") {
        return Err(ScimError::mutability(
            "\"schemas\" is readOnly: Roster derives it from the attributes present",
        ));
    }
    let sub_name = if path.filter.is_some() {
        path.sub_attr.as_deref()
    } else {
        p.sub_attr.as_deref()
    };
    Ok(match def.resolve(p.urn.as_deref(), &p.attr, sub_name) {
        Some(r) => Target::Attr(AttrTarget {
            ext: r.extension,
            attr: r.attr,
            sub: r.sub,
            filter: path.filter.as_ref(),
        }),
        None => Target::Ignore,
    })
}

fn apply_op(
    def: TypeDef,
    work: &mut Map<String, Value>,
    op: &PatchOp,
    fx: &mut PatchEffects,
) -> Result<(), ScimError> {
    let Some(path) = &op.path else {
        return match op.op {
            OpKind::Remove => Err(ScimError::no_target(
                "a \"remove\" operation needs a \"path\" naming what to remove \
                 (RFC 7644 §3.5.2.2)",
            )),
            k => apply_pathless(def, work, k, op.value.as_ref(), fx),
        };
    };
    match resolve_target(def, path)? {
        Target::Ignore => Ok(()),
        Target::Extension(schema) => match op.op {
            OpKind::Remove => {
                take_ci(work, schema.id);
                fx.touch(schema.id.to_owned());
                Ok(())
            }
            k => apply_extension_object(def, work, k, schema, op.value.as_ref(), fx),
        },
        Target::Attr(t) => apply_attr(def, work, op.op, &t, op.value.as_ref(), fx),
    }
}

/// `add`/`replace` without a path: the value is an object of attributes, keyed as in a
/// resource body.
fn apply_pathless(
    def: TypeDef,
    work: &mut Map<String, Value>,
    k: OpKind,
    value: Option<&Value>,
    fx: &mut PatchEffects,
) -> Result<(), ScimError> {
    let Some(Value::Object(obj)) = value else {
        return Err(ScimError::invalid_value(format!(
            "an \"{}\" operation without \"path\" needs an object of attributes as its \
             \"value\", got {}",
            k.as_str(),
            value.map_or_else(|| "nothing".to_owned(), describe)
        )));
    };
    for (key, v) in obj {
        match classify_key(def, key) {
            Key::Schemas | Key::Unknown => {}
            Key::Attr(attr) => {
                if attr.mutability != Mutability::ReadOnly {
                    apply_attr(def, work, k, &AttrTarget::whole(None, attr), Some(v), fx)?;
                }
            }
            Key::ExtAttr(schema, attr) => {
                if attr.mutability != Mutability::ReadOnly {
                    let t = AttrTarget::whole(Some(schema.id), attr);
                    apply_attr(def, work, k, &t, Some(v), fx)?;
                }
            }
            Key::Extension(schema) => apply_extension_object(def, work, k, schema, Some(v), fx)?,
        }
    }
    Ok(())
}

/// `add`/`replace` of an extension object: attribute by attribute, like a complex attribute.
fn apply_extension_object(
    def: TypeDef,
    work: &mut Map<String, Value>,
    k: OpKind,
    schema: &'static SchemaDef,
    value: Option<&Value>,
    fx: &mut PatchEffects,
) -> Result<(), ScimError> {
    match value {
        None | Some(Value::Null) => {
            if k == OpKind::Replace {
                take_ci(work, schema.id);
                fx.touch(schema.id.to_owned());
            }
            Ok(())
        }
        Some(Value::Object(obj)) => {
            for (key, v) in obj {
                if let Some(attr) = schema.attribute(key) {
                    if attr.mutability != Mutability::ReadOnly {
                        let t = AttrTarget::whole(Some(schema.id), attr);
                        apply_attr(def, work, k, &t, Some(v), fx)?;
                    }
                }
            }
            Ok(())
        }
        Some(other) => Err(ScimError::invalid_value(format!(
            "\"{}\" must be an object of extension attributes, got {}",
            schema.id,
            describe(other)
        ))),
    }
}

fn apply_attr(
    def: TypeDef,
    work: &mut Map<String, Value>,
    k: OpKind,
    t: &AttrTarget<'_>,
    value: Option<&Value>,
    fx: &mut PatchEffects,
) -> Result<(), ScimError> {
    if t.attr.mutability == Mutability::ReadOnly
        || t.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
    {
        return Err(ScimError::mutability(format!(
            "\"{}\" is readOnly and cannot be modified",
            t.label()
        )));
    }
    if t.filter.is_some() && !(t.attr.multi_valued && t.attr.attr_type == AttrType::Complex) {
        return Err(ScimError::invalid_path(format!(
            "\"{}\" is not a multi-valued complex attribute, so it cannot take a value filter",
            t.top_name()
        )));
    }
    fx.touch(t.top_name());
    if is_members(def, t.attr) {
        return members_op(def, k, t, value, fx);
    }
    if is_password(def, t.attr) {
        return password_op(k, value, fx);
    }
    if k == OpKind::Remove && t.attr.required && t.sub.is_none() {
        return Err(ScimError::mutability(format!(
            "\"{}\" is required and cannot be removed (RFC 7644 §3.5.2.2)",
            t.label()
        )));
    }
    update_attr(work, t.ext, t.attr.name, |cur| match k {
        OpKind::Add => add_value(def, t, cur, value),
        OpKind::Replace => replace_value(def, t, cur, value),
        OpKind::Remove => remove_value(def, t, cur, value),
    })
}

/// Takes the current value of a top-level attribute out of the document, lets `f` compute the
/// new one, and puts that back (omitting it when unassigned).
fn update_attr(
    work: &mut Map<String, Value>,
    ext: Option<&str>,
    name: &str,
    f: impl FnOnce(Option<Value>) -> Result<Option<Value>, ScimError>,
) -> Result<(), ScimError> {
    let Some(urn) = ext else {
        let cur = take_ci(work, name);
        if let Some(v) = f(cur)?.filter(is_assigned) {
            work.insert(name.to_owned(), v);
        }
        return Ok(());
    };
    let mut container = match take_ci(work, urn) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let cur = take_ci(&mut container, name);
    if let Some(v) = f(cur)?.filter(is_assigned) {
        container.insert(name.to_owned(), v);
    }
    if !container.is_empty() {
        work.insert(urn.to_owned(), Value::Object(container));
    }
    Ok(())
}

/// Unassigned values (RFC 7643 §2.5) are omitted from the document.
fn is_assigned(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// Removes every key equal to `name` case-insensitively, returning the exact match if there is
/// one (else the last match): stored documents use canonical names, so duplicates differing
/// only in case can only come from hand-edited data, and must not survive a PATCH.
fn take_ci(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let exact = map.remove(name);
    let others: Vec<String> = map
        .keys()
        .filter(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    let mut found = None;
    for key in others {
        found = map.remove(&key).or(found);
    }
    exact.or(found)
}

fn into_elements(cur: Option<Value>) -> Vec<Value> {
    match cur {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => vec![other],
    }
}

fn into_object(cur: Option<Value>) -> Map<String, Value> {
    match cur {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    }
}

fn add_value(
    def: TypeDef,
    t: &AttrTarget<'_>,
    cur: Option<Value>,
    value: Option<&Value>,
) -> Result<Option<Value>, ScimError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(cur);
    };
    if !t.attr.multi_valued {
        return set_single(t, cur, value);
    }
    let mut elems = into_elements(cur);
    if t.filter.is_some() || t.sub.is_some() {
        set_on_elements(def, t, &mut elems, value)?;
        return Ok(Some(Value::Array(elems)));
    }
    let Some(Value::Array(new)) = canonical_value(t.attr, &t.label(), value)? else {
        return Ok(Some(Value::Array(elems)));
    };
    let mut primaries = Vec::new();
    for n in new {
        let n_primary = is_primary(&n);
        let idx = match elems.iter().position(|e| same_element(t.attr, e, &n)) {
            Some(i) => {
                if let (Some(Value::Object(e)), Value::Object(n)) = (elems.get_mut(i), &n) {
                    e.extend(n.clone());
                }
                i
            }
            None => {
                elems.push(n);
                elems.len() - 1
            }
        };
        if n_primary {
            primaries.push(idx);
        }
    }
    enforce_primary(t.attr, &mut elems, &primaries);
    Ok(Some(Value::Array(elems)))
}

fn replace_value(
    def: TypeDef,
    t: &AttrTarget<'_>,
    cur: Option<Value>,
    value: Option<&Value>,
) -> Result<Option<Value>, ScimError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return remove_value(def, t, cur, None);
    };
    if !t.attr.multi_valued {
        return set_single(t, cur, value);
    }
    if t.filter.is_some() || t.sub.is_some() {
        let mut elems = into_elements(cur);
        set_on_elements(def, t, &mut elems, value)?;
        return Ok(Some(Value::Array(elems)));
    }
    canonical_value(t.attr, &t.label(), value)
}

/// `add`/`replace` on a single-valued attribute: set it, merge a complex value into the
/// current one (RFC 7644 §3.5.2.3: unmentioned sub-attributes stay), or set one sub-attribute.
fn set_single(
    t: &AttrTarget<'_>,
    cur: Option<Value>,
    value: &Value,
) -> Result<Option<Value>, ScimError> {
    if t.attr.attr_type != AttrType::Complex {
        return canonical_value(t.attr, &t.label(), value);
    }
    let mut obj = into_object(cur);
    match t.sub {
        Some(sub) => match canonical_value(sub, &t.label(), value)? {
            Some(v) => {
                obj.insert(sub.name.to_owned(), v);
            }
            None => {
                obj.remove(sub.name);
            }
        },
        None => {
            if let Some(Value::Object(new)) = canonical_value(t.attr, &t.label(), value)? {
                obj.extend(new);
            }
        }
    }
    Ok(Some(Value::Object(obj)))
}

/// `add`/`replace` of elements selected by a value filter, or of a sub-attribute of every
/// element: merges an object into each, or sets the sub-attribute on each.
fn set_on_elements(
    def: TypeDef,
    t: &AttrTarget<'_>,
    elems: &mut Vec<Value>,
    value: &Value,
) -> Result<(), ScimError> {
    let mut matched: Vec<usize> = match t.filter {
        Some(f) => {
            let m = element_matcher(def, t, f)?;
            (0..elems.len())
                .filter(|&i| elems.get(i).is_some_and(|e| m.matches(e)))
                .collect()
        }
        None => (0..elems.len()).collect(),
    };
    if matched.is_empty() {
        if t.filter.is_some() {
            return Err(ScimError::no_target(format!(
                "no value of \"{}\" matches the filter of the path",
                t.top_name()
            )));
        }
        elems.push(Value::Object(Map::new()));
        matched.push(elems.len() - 1);
    }
    let label = t.label();
    let (patch, sets_primary) = match t.sub {
        Some(sub) => {
            let v = canonical_value(sub, &label, value)?;
            let primary = sub.name == "primary" && v == Some(Value::Bool(true));
            (SubPatch::Sub(sub.name, v), primary)
        }
        None => match canonical_single(t.attr, &label, value)? {
            Some(Value::Object(o)) => {
                let primary = o.get("primary") == Some(&Value::Bool(true));
                (SubPatch::Merge(o), primary)
            }
            _ => return Ok(()),
        },
    };
    for &i in &matched {
        if let Some(Value::Object(e)) = elems.get_mut(i) {
            match &patch {
                SubPatch::Sub(name, Some(v)) => {
                    e.insert((*name).to_owned(), v.clone());
                }
                SubPatch::Sub(name, None) => {
                    e.remove(*name);
                }
                SubPatch::Merge(o) => e.extend(o.clone()),
            }
        }
    }
    if sets_primary {
        enforce_primary(t.attr, elems, &matched);
    }
    elems.retain(is_assigned);
    Ok(())
}

enum SubPatch {
    Sub(&'static str, Option<Value>),
    Merge(Map<String, Value>),
}

fn remove_value(
    def: TypeDef,
    t: &AttrTarget<'_>,
    cur: Option<Value>,
    value: Option<&Value>,
) -> Result<Option<Value>, ScimError> {
    let Some(cur) = cur else {
        return Ok(None);
    };
    if !t.attr.multi_valued {
        return Ok(match t.sub {
            Some(sub) => {
                let mut obj = into_object(Some(cur));
                obj.remove(sub.name);
                Some(Value::Object(obj))
            }
            None => None,
        });
    }
    let mut elems = into_elements(Some(cur));
    match (t.filter, t.sub) {
        (Some(f), sub) => {
            let m = element_matcher(def, t, f)?;
            match sub {
                None => elems.retain(|e| !m.matches(e)),
                Some(s) => {
                    for e in &mut elems {
                        if m.matches(e) {
                            if let Some(o) = e.as_object_mut() {
                                o.remove(s.name);
                            }
                        }
                    }
                }
            }
        }
        (None, Some(s)) => {
            for e in &mut elems {
                if let Some(o) = e.as_object_mut() {
                    o.remove(s.name);
                }
            }
        }
        (None, None) => match value.filter(|v| !v.is_null()) {
            Some(listed) => remove_listed(t, &mut elems, listed)?,
            None => return Ok(None),
        },
    }
    elems.retain(is_assigned);
    Ok(Some(Value::Array(elems)))
}

/// The non-standard `remove` with a value list: removes exactly the listed values.
fn remove_listed(
    t: &AttrTarget<'_>,
    elems: &mut Vec<Value>,
    listed: &Value,
) -> Result<(), ScimError> {
    let items: &[Value] = match listed {
        Value::Array(a) => a,
        other => std::slice::from_ref(other),
    };
    let value_def = t.attr.sub_attribute("value");
    for item in items {
        match (value_def, item) {
            (Some(vd), Value::Object(o)) => {
                let Some(v) = get_ci(o, "value").filter(|v| !v.is_null()) else {
                    return Err(ScimError::invalid_value(format!(
                        "each value to remove from \"{}\" needs a \"value\" naming it",
                        t.top_name()
                    )));
                };
                elems.retain(|e| !e.get("value").is_some_and(|ev| values_equal(vd, ev, v)));
            }
            (Some(_), other) => {
                return Err(ScimError::invalid_value(format!(
                    "each value to remove from \"{}\" must be an object like \
                     {{\"value\": ...}}, got {}",
                    t.top_name(),
                    describe(other)
                )))
            }
            (None, other) => elems.retain(|e| !values_equal(t.attr, e, other)),
        }
    }
    Ok(())
}

/// Whether two elements of a multi-valued attribute are the same value: by their `value`
/// sub-attribute when both have one, else by JSON equality.
fn same_element(attr: &AttributeDef, a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value"), attr.sub_attribute("value")) {
        (Some(x), Some(y), Some(vd)) => values_equal(vd, x, y),
        _ => values_equal(attr, a, b),
    }
}

/// Sets `primary: false` on every element not in `keep` (RFC 7644 §3.5.2).
fn enforce_primary(attr: &AttributeDef, elems: &mut [Value], keep: &[usize]) {
    if keep.is_empty() || !attr.has_primary() {
        return;
    }
    for (i, e) in elems.iter_mut().enumerate() {
        if !keep.contains(&i) {
            if let Some(o) = e.as_object_mut() {
                o.insert("primary".into(), Value::Bool(false));
            }
        }
    }
}

/// Resolves a value filter against the elements of the targeted attribute. Errors are
/// reported as `invalidPath`: the filter is part of the PATCH path (RFC 7644 §3.5.2).
fn element_matcher(def: TypeDef, t: &AttrTarget<'_>, f: &Filter) -> Result<ValidFilter, ScimError> {
    let outer = AttrPath {
        urn: t.ext.map(str::to_owned),
        attr: t.attr.name.to_owned(),
        sub_attr: None,
    };
    filter::validate_value_filter(f, def, &outer).map_err(|e| ScimError::invalid_path(e.detail))
}

fn members_op(
    def: TypeDef,
    k: OpKind,
    t: &AttrTarget<'_>,
    value: Option<&Value>,
    fx: &mut PatchEffects,
) -> Result<(), ScimError> {
    if t.sub.is_some() || (t.filter.is_some() && k != OpKind::Remove) {
        return Err(ScimError::mutability(
            "the sub-attributes of \"members\" are immutable: remove a member \
             (\"path\": \"members[value eq \\\"<id>\\\"]\") and add it again instead",
        ));
    }
    let null = Value::Null;
    match k {
        OpKind::Add => {
            let list = resource::parse_members(value.unwrap_or(&null))?;
            if !list.is_empty() {
                fx.members.push(MemberChange::Add(list));
            }
        }
        OpKind::Replace => {
            let list = resource::parse_members(value.unwrap_or(&null))?;
            fx.members.push(MemberChange::Remove(None));
            if !list.is_empty() {
                fx.members.push(MemberChange::Add(list));
            }
        }
        OpKind::Remove => match (t.filter, value.filter(|v| !v.is_null())) {
            (Some(f), _) => {
                element_matcher(def, t, f)?;
                fx.members.push(MemberChange::Remove(Some(f.clone())));
            }
            (None, Some(listed)) => {
                let list = resource::parse_members(listed)?;
                if let Some(f) = any_value_of(list) {
                    fx.members.push(MemberChange::Remove(Some(f)));
                }
            }
            (None, None) => fx.members.push(MemberChange::Remove(None)),
        },
    }
    Ok(())
}

/// `value eq "a" or value eq "b" ...`, or `None` for an empty list.
fn any_value_of(list: Vec<MemberRef>) -> Option<Filter> {
    let mut it = list.into_iter().map(|m| {
        Filter::Compare(
            AttrPath {
                urn: None,
                attr: "value".into(),
                sub_attr: None,
            },
            CompareOp::Eq,
            CompValue::Str(m.value),
        )
    });
    let first = it.next()?;
    Some(it.fold(first, |acc, f| Filter::Or(Box::new(acc), Box::new(f))))
}

fn password_op(k: OpKind, value: Option<&Value>, fx: &mut PatchEffects) -> Result<(), ScimError> {
    if k == OpKind::Remove {
        return Err(ScimError::mutability(
            "\"password\" cannot be removed; set a new one with \"replace\" instead",
        ));
    }
    match resource::parse_password(value.unwrap_or(&Value::Null))? {
        Some(p) => {
            fx.password = Some(p);
            Ok(())
        }
        None => Err(ScimError::invalid_value(
            "\"password\" must be a string, got null",
        )),
    }
}
