//! PATCH rules: [`OP_CASE`], [`PATHLESS_ATTRIBUTE_PATHS`], [`VALUE_PATH_CREATE`], and the
//! value rules applied to each operation's value according to its path.
//!
//! Operations are rewritten one by one, in order, into a new `Operations` array; an operation
//! that is not an object, or whose path does not parse, is passed on as it is, for the core to
//! refuse with the error it would give anyway.

use serde_json::{json, Map, Value};

use super::values::{fix_attr, fix_extension_object, fix_resource, fix_value};
use super::{Ctx, OP_CASE, PATHLESS_ATTRIBUTE_PATHS, VALUE_PATH_CREATE};
use crate::filter::{
    parse_path, validate_value_filter, AttrPath, CompValue, CompareOp, Filter, PatchPath,
};
use crate::schema::{AttrType, ResolvedAttr, TypeDef};

/// The operation keywords of RFC 7644 §3.5.2.
const OPS: [&str; 3] = ["add", "remove", "replace"];

/// Normalises a PatchOp body in place.
pub(super) fn normalize_patch(
    def: TypeDef,
    body: &mut Value,
    current: Option<&Value>,
    ctx: &mut Ctx,
) {
    let Some(ops) = operations_mut(body) else {
        return;
    };
    // What the document will look like once the rewritten operations that create elements
    // have run: a later operation on the same element (Entra sends one operation per address
    // sub-attribute) must then find it, not create a second one.
    let mut sim = current.cloned();
    let old = std::mem::take(ops);
    let mut out = Vec::with_capacity(old.len());
    for op in old {
        let Value::Object(mut o) = op else {
            out.push(op);
            continue;
        };
        let entra_case = op_case(&mut o, ctx);
        match path_of(&o) {
            PathOf::None => out.extend(split_pathless(def, o, sim.as_mut(), entra_case, ctx)),
            PathOf::Path(p) => {
                let o = fix_path_op(def, o, &p, sim.as_mut(), entra_case, ctx);
                out.push(Value::Object(o));
            }
            PathOf::Other => out.push(Value::Object(o)),
        }
    }
    *ops = out;
}

/// Whether any operation is an `add`/`replace` of `attr[filter].sub` (in any letter case),
/// the only shape for which the stored document matters.
pub(super) fn has_value_path_sub_op(def: TypeDef, body: &Value) -> bool {
    let Some(ops) = body
        .as_object()
        .and_then(|o| get_ci(o, "Operations"))
        .and_then(Value::as_array)
    else {
        return false;
    };
    ops.iter().filter_map(Value::as_object).any(|o| {
        let is_set = get_ci(o, "op")
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("add") || s.eq_ignore_ascii_case("replace"));
        let path_shape = |p: &PatchPath| {
            p.filter.is_some()
                && p.sub_attr.is_some()
                && resolve(def, p).is_some_and(|r| r.attr.multi_valued)
        };
        let direct = match path_of(o) {
            PathOf::Path(p) => path_shape(&p),
            _ => false,
        };
        // A path-less value may carry such paths as keys (see `split_pathless`).
        let in_keys = matches!(path_of(o), PathOf::None)
            && get_ci(o, "value")
                .and_then(Value::as_object)
                .is_some_and(|v| {
                    v.keys()
                        .filter(|k| is_attribute_path_key(def, k))
                        .filter_map(|k| parse_path(k).ok())
                        .any(|p| path_shape(&p))
                });
        is_set && (direct || in_keys)
    })
}

/// The `Operations` array, found case-insensitively as the core does.
pub(super) fn operations_mut(body: &mut Value) -> Option<&mut Vec<Value>> {
    let obj = body.as_object_mut()?;
    let key = obj
        .keys()
        .find(|k| k.eq_ignore_ascii_case("Operations"))?
        .clone();
    obj.get_mut(&key)?.as_array_mut()
}

/// `op-case`: `Add`/`REPLACE`/... → `add`/`replace`/... Returns whether the op was sent in
/// another letter case, which is how Entra writes every operation (its signature, used to
/// recognise Entra's requests on `generic` tenants).
fn op_case(o: &mut Map<String, Value>, ctx: &mut Ctx) -> bool {
    if !ctx.on(OP_CASE) {
        return false;
    }
    if let Some(Value::String(op)) = get_ci_mut(o, "op") {
        if let Some(std) = OPS.iter().find(|k| k.eq_ignore_ascii_case(op)) {
            if op != std {
                *op = (*std).to_owned();
                ctx.fired(OP_CASE);
                return true;
            }
        }
    }
    false
}

/// The operation keyword, if it is one the core accepts (after `op-case`).
fn op_name(o: &Map<String, Value>) -> Option<&'static str> {
    match get_ci(o, "op") {
        Some(Value::String(s)) => OPS.iter().find(|k| **k == s.as_str()).copied(),
        _ => None,
    }
}

enum PathOf {
    /// No path (or `null`).
    None,
    /// A path that parses.
    Path(PatchPath),
    /// A path that does not parse, or is not a string: left for the core to refuse.
    Other,
}

fn path_of(o: &Map<String, Value>) -> PathOf {
    match get_ci(o, "path") {
        None | Some(Value::Null) => PathOf::None,
        Some(Value::String(s)) => parse_path(s).map_or(PathOf::Other, PathOf::Path),
        Some(_) => PathOf::Other,
    }
}

/// Whether a key of a path-less value is an attribute *path* rather than an attribute name:
/// after an optional schema URN of the resource type, it names a sub-attribute (`.`) or has a
/// value filter (`[`). Attribute names never contain either (RFC 7643 §2.1 `ATTRNAME`), so
/// the reading is unambiguous; URN-qualified plain names are left to the core, which
/// resolves them itself.
fn is_attribute_path_key(def: TypeDef, key: &str) -> bool {
    let rest = std::iter::once(&def.schema)
        .chain(def.extensions.iter())
        .find_map(|s| strip_prefix_ci(key, s.id).and_then(|r| r.strip_prefix(':')));
    let rest = match rest {
        Some(r) => r,
        // An unknown URN: not Roster's to interpret (the core ignores it).
        None if key.get(..4).is_some_and(|h| h.eq_ignore_ascii_case("urn:")) => return false,
        None => key,
    };
    rest.contains('.') || rest.contains('[')
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// `pathless-attribute-paths`: splits a path-less `add`/`replace` whose value has attribute
/// paths as keys into the path-less remainder plus one operation per path key, then applies
/// the value rules to each.
fn split_pathless(
    def: TypeDef,
    mut o: Map<String, Value>,
    mut sim: Option<&mut Value>,
    entra_case: bool,
    ctx: &mut Ctx,
) -> Vec<Value> {
    let Some(op) = op_name(&o).filter(|op| *op != "remove") else {
        return vec![Value::Object(o)];
    };
    let Some(Value::Object(value)) = get_ci_mut(&mut o, "value") else {
        return vec![Value::Object(o)];
    };
    let mut split = Vec::new();
    if ctx.on(PATHLESS_ATTRIBUTE_PATHS) {
        let path_keys: Vec<String> = value
            .keys()
            .filter(|k| is_attribute_path_key(def, k) && parse_path(k).is_ok())
            .cloned()
            .collect();
        for key in path_keys {
            if let Some(v) = value.remove(&key) {
                split.push((key, v));
            }
        }
    }
    if !split.is_empty() {
        ctx.fired(PATHLESS_ATTRIBUTE_PATHS);
    }
    fix_resource(def, value, ctx);
    if let Some(doc) = sim.as_deref_mut() {
        track_pathless(def, op, value, doc);
    }
    let emptied = value.is_empty() && !split.is_empty();
    let mut out = Vec::with_capacity(split.len() + 1);
    if !emptied {
        out.push(Value::Object(o));
    }
    for (path, v) in split {
        let mut new = Map::new();
        new.insert("op".into(), Value::String(op.to_owned()));
        new.insert("path".into(), Value::String(path.clone()));
        new.insert("value".into(), v);
        let new = match parse_path(&path) {
            Ok(p) => fix_path_op(def, new, &p, sim.as_deref_mut(), entra_case, ctx),
            Err(_) => new,
        };
        out.push(Value::Object(new));
    }
    out
}

fn resolve(def: TypeDef, p: &PatchPath) -> Option<ResolvedAttr<'static>> {
    let sub = if p.filter.is_some() {
        p.sub_attr.as_deref()
    } else {
        p.attr.sub_attr.as_deref()
    };
    def.resolve(p.attr.urn.as_deref(), &p.attr.attr, sub)
}

/// Applies the value rules to an operation with a path, then [`VALUE_PATH_CREATE`].
fn fix_path_op(
    def: TypeDef,
    mut o: Map<String, Value>,
    p: &PatchPath,
    sim: Option<&mut Value>,
    entra_case: bool,
    ctx: &mut Ctx,
) -> Map<String, Value> {
    // A path that is exactly an extension URN: the value is that extension's object.
    if p.filter.is_none() && p.sub_attr.is_none() && p.attr.sub_attr.is_none() {
        let full = match &p.attr.urn {
            Some(u) => format!("{u}:{}", p.attr.attr),
            None => p.attr.attr.clone(),
        };
        if let Some(schema) = def
            .extensions
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(&full))
        {
            if let Some(v) = get_ci_mut(&mut o, "value") {
                fix_extension_object(schema, v, ctx);
            }
            return o;
        }
    }
    let Some(r) = resolve(def, p) else {
        return o;
    };
    let ext = r
        .extension
        .and_then(|u| def.extensions.iter().find(|s| s.id == u));
    if let Some(v) = get_ci_mut(&mut o, "value") {
        match r.sub {
            Some(sub) => fix_value(sub, v, ctx),
            None => fix_attr(ext, r.attr, v, ctx),
        }
    }
    match sim {
        Some(doc) => {
            let o = value_path_create(def, o, p, &r, doc, entra_case, ctx);
            track_whole_attribute(&o, p, &r, doc);
            o
        }
        None => o,
    }
}

/// Keeps the simulated document up to date with an operation on a whole multi-valued complex
/// attribute (`add addresses [...]`, `replace emails [...]`, `remove phoneNumbers`), so that a
/// later `attr[filter].sub` of the same request finds the elements it added, as the core will
/// when it applies them in order. Without it, a request that adds a work address and then sets
/// its `locality` by a filter became two work addresses; the fuzzer found it by normalising
/// [`VALUE_PATH_CREATE`]'s own output again, which has that shape.
fn track_whole_attribute(
    o: &Map<String, Value>,
    p: &PatchPath,
    r: &ResolvedAttr<'static>,
    doc: &mut Value,
) {
    if p.filter.is_some()
        || r.sub.is_some()
        || !r.attr.multi_valued
        || r.attr.attr_type != AttrType::Complex
    {
        return;
    }
    let elements = match get_ci(o, "value") {
        Some(Value::Array(a)) => a.clone(),
        Some(v @ Value::Object(_)) => vec![v.clone()],
        _ => Vec::new(),
    };
    match op_name(o) {
        Some("add") => {}
        Some("replace") => forget(doc, r),
        Some("remove") => {
            forget(doc, r);
            return;
        }
        _ => return,
    }
    for e in elements {
        remember(doc, r, e);
    }
}

/// [`track_whole_attribute`] for the attributes of a path-less `add` or `replace`'s value.
fn track_pathless(def: TypeDef, op: &str, value: &Map<String, Value>, doc: &mut Value) {
    for (key, v) in value {
        let Ok(p) = parse_path(key) else {
            continue;
        };
        let Some(r) = resolve(def, &p) else {
            continue;
        };
        let mut o = Map::new();
        o.insert("op".into(), Value::String(op.to_owned()));
        o.insert("value".into(), v.clone());
        track_whole_attribute(&o, &p, &r, doc);
    }
}

/// Removes a whole attribute from the simulated document.
fn forget(doc: &mut Value, r: &ResolvedAttr<'static>) {
    let container = match r.extension {
        None => Some(doc),
        Some(u) => doc.get_mut(u),
    };
    if let Some(Value::Object(c)) = container {
        c.retain(|k, _| !k.eq_ignore_ascii_case(r.attr.name));
    }
}

/// `entra.value-path-create`: `add`/`replace` of `attr[f].sub` where `f` is made of `eq`
/// terms and no element of `attr` matches it becomes an `add` of the element that `f`
/// describes, with `sub` set. RFC 7644 §3.5.2.3 answers `noTarget` for `replace`, but Entra
/// maps a user's work email, mobile phone and work address this way and never sends the
/// element first, so without this its users could never get one.
///
/// On `generic` tenants the shape is recognised for `add` (RFC 7644 §3.5.2.1: an `add` to a
/// target that has no value adds it), and for `replace` only when the operation carries
/// Entra's signature, a capitalised `op`; a lowercase `replace` from an unknown client keeps
/// the RFC's `noTarget`.
fn value_path_create(
    def: TypeDef,
    o: Map<String, Value>,
    p: &PatchPath,
    r: &ResolvedAttr<'static>,
    doc: &mut Value,
    entra_case: bool,
    ctx: &mut Ctx,
) -> Map<String, Value> {
    let (Some(filter), Some(sub)) = (&p.filter, r.sub) else {
        return o;
    };
    let shape = match op_name(&o) {
        Some("add") => true,
        Some("replace") => ctx.idp == super::Idp::Entra || entra_case,
        _ => false,
    };
    if !ctx.on(VALUE_PATH_CREATE)
        || !shape
        || !r.attr.multi_valued
        || r.attr.attr_type != AttrType::Complex
    {
        return o;
    }
    let Some(value) = get_ci(&o, "value").filter(|v| !v.is_null()) else {
        return o;
    };
    let outer = AttrPath {
        urn: r.extension.map(str::to_owned),
        attr: r.attr.name.to_owned(),
        sub_attr: None,
    };
    let Ok(valid) = validate_value_filter(filter, def, &outer) else {
        return o;
    };
    let container = match r.extension {
        None => Some(&*doc),
        Some(u) => doc.get(u),
    };
    let exists = container
        .and_then(|c| c.get(r.attr.name))
        .and_then(Value::as_array)
        .is_some_and(|elems| elems.iter().any(|e| valid.matches(e)));
    if exists {
        return o;
    }
    let mut element = Map::new();
    if !eq_terms(valid.filter(), &mut element) {
        return o;
    }
    element.insert(sub.name.to_owned(), value.clone());
    let element = Value::Object(element);
    remember(doc, r, element.clone());
    ctx.fired(VALUE_PATH_CREATE);
    let path = match r.extension {
        Some(u) => format!("{u}:{}", r.attr.name),
        None => r.attr.name.to_owned(),
    };
    let mut new = Map::new();
    new.insert("op".into(), json!("add"));
    new.insert("path".into(), Value::String(path));
    new.insert("value".into(), Value::Array(vec![element]));
    new
}

/// Collects `sub eq literal` terms joined by `and` into `out`; false for any other filter,
/// whose element cannot be derived from it.
fn eq_terms(f: &Filter, out: &mut Map<String, Value>) -> bool {
    match f {
        Filter::Compare(
            AttrPath {
                urn: None,
                attr,
                sub_attr: None,
            },
            CompareOp::Eq,
            v,
        ) => {
            let v = match v {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return false,
            };
            out.insert(attr.clone(), v);
            true
        }
        Filter::And(a, b) => eq_terms(a, out) && eq_terms(b, out),
        _ => false,
    }
}

/// Adds a created element to the simulated document.
fn remember(doc: &mut Value, r: &ResolvedAttr<'static>, element: Value) {
    let Some(root) = doc.as_object_mut() else {
        return;
    };
    let container = match r.extension {
        None => root,
        Some(u) => match root
            .entry(u.to_owned())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
        {
            Some(c) => c,
            None => return,
        },
    };
    let slot = container
        .entry(r.attr.name.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    if let Value::Array(a) = slot {
        a.push(element);
    }
}

fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    crate::resource::get_ci(obj, key)
}

/// Looks a key up case-insensitively for mutation (the exact key first, as [`get_ci`]).
fn get_ci_mut<'a>(obj: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Value> {
    let actual = if obj.contains_key(key) {
        key.to_owned()
    } else {
        obj.keys().find(|k| k.eq_ignore_ascii_case(key))?.clone()
    };
    obj.get_mut(&actual)
}
