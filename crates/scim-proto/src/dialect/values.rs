//! Value rules, applied wherever attribute values appear (POST/PUT bodies, PATCH values):
//! [`STRING_BOOLEAN`] and [`MANAGER_STRING`]. Both are driven by the schema, so a string is
//! only turned into a boolean where the attribute is a boolean, and only `manager` of the
//! enterprise extension is ever wrapped.

use serde_json::{Map, Value};

use super::{Ctx, MANAGER_STRING, STRING_BOOLEAN};
use crate::resource::{classify_key, Key};
use crate::schema::{AttrType, AttributeDef, SchemaDef, TypeDef, ENTERPRISE_USER_SCHEMA};

/// Fixes the values of a resource-shaped object: a POST/PUT body, or the value of a path-less
/// PATCH operation. Keys are classified exactly as the core does; unknown keys are left alone
/// (the core ignores them).
pub(super) fn fix_resource(def: TypeDef, obj: &mut Map<String, Value>, ctx: &mut Ctx) {
    for (key, v) in obj.iter_mut() {
        match classify_key(def, key) {
            Key::Attr(attr) => fix_attr(None, attr, v, ctx),
            Key::ExtAttr(schema, attr) => fix_attr(Some(schema), attr, v, ctx),
            Key::Extension(schema) => fix_extension_object(schema, v, ctx),
            Key::Schemas | Key::Unknown => {}
        }
    }
}

/// Fixes the attributes inside an extension object (`{"urn:…:enterprise:2.0:User": {...}}`).
pub(super) fn fix_extension_object(schema: &'static SchemaDef, v: &mut Value, ctx: &mut Ctx) {
    if let Value::Object(ext) = v {
        for (k, v) in ext.iter_mut() {
            if let Some(attr) = schema.attribute(k) {
                fix_attr(Some(schema), attr, v, ctx);
            }
        }
    }
}

/// Fixes the value of one top-level attribute (an array or a single value for multi-valued
/// attributes, as the core accepts both).
pub(super) fn fix_attr(
    ext: Option<&'static SchemaDef>,
    attr: &AttributeDef,
    v: &mut Value,
    ctx: &mut Ctx,
) {
    if is_enterprise_manager(ext, attr) && ctx.on(MANAGER_STRING) {
        if let Value::String(id) = v {
            // An empty id names no manager: it unassigns, as `null` does (RFC 7643 §2.5),
            // instead of storing a manager whose id is "".
            *v = if id.is_empty() {
                Value::Null
            } else {
                serde_json::json!({ "value": id })
            };
            ctx.fired(MANAGER_STRING);
            return;
        }
    }
    fix_value(attr, v, ctx);
}

/// Whether `attr` is `manager` of the enterprise User extension.
fn is_enterprise_manager(ext: Option<&'static SchemaDef>, attr: &AttributeDef) -> bool {
    ext.is_some_and(|s| s.id == ENTERPRISE_USER_SCHEMA) && attr.name == "manager"
}

/// Fixes a value of `def`: each element of an array for multi-valued attributes, else the
/// value itself.
pub(super) fn fix_value(def: &AttributeDef, v: &mut Value, ctx: &mut Ctx) {
    if def.multi_valued {
        if let Value::Array(items) = v {
            for item in items {
                fix_single(def, item, ctx);
            }
            return;
        }
    }
    fix_single(def, v, ctx);
}

/// Fixes one value of `def` (an element, for multi-valued attributes).
pub(super) fn fix_single(def: &AttributeDef, v: &mut Value, ctx: &mut Ctx) {
    match def.attr_type {
        AttrType::Boolean => {
            if let Value::String(s) = v {
                if let Some(b) = string_boolean(s) {
                    if ctx.on(STRING_BOOLEAN) {
                        *v = Value::Bool(b);
                        ctx.fired(STRING_BOOLEAN);
                    }
                }
            }
        }
        AttrType::Complex => {
            if let Value::Object(obj) = v {
                for (k, sv) in obj.iter_mut() {
                    if let Some(sub) = def.sub_attribute(k) {
                        fix_value(sub, sv, ctx);
                    }
                }
            }
        }
        _ => {}
    }
}

/// `"true"`/`"false"` in any letter case (surrounding whitespace tolerated); anything else is
/// not a boolean and stays a string for the core to refuse.
fn string_boolean(s: &str) -> Option<bool> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("true") {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}
