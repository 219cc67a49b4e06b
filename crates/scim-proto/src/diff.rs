//! Which attributes changed between two stored documents of a resource, for change events.
//!
//! The result names each changed top-level attribute (extension attributes as
//! `urn:…:attribute`) with its old and new value; attributes that are never returned
//! (`returned: never`, i.e. `password`) are named without values, so that an event can say a
//! password changed without carrying it. Comparing documents (rather than PATCH operations)
//! reports what really changed: an operation that sets a value to what it already was
//! changes nothing.

use serde_json::{Map, Value};

use crate::schema::{Returned, TypeDef};

/// One changed attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrChange {
    /// Canonical name; `urn:…:name` for an extension attribute.
    pub attribute: String,
    /// The value before (`None` when absent, or for a sensitive attribute).
    pub old: Option<Value>,
    /// The value after (`None` when removed, or for a sensitive attribute).
    pub new: Option<Value>,
}

/// Keys that are not attributes the client changes.
const SKIPPED: [&str; 4] = ["schemas", "id", "meta", "password"];

fn sensitive(def: TypeDef, urn: Option<&str>, name: &str) -> bool {
    def.resolve(urn, name, None)
        .is_some_and(|r| r.attr.returned == Returned::Never)
}

fn is_extension(def: TypeDef, key: &str) -> bool {
    def.extensions
        .iter()
        .any(|e| e.id.eq_ignore_ascii_case(key))
}

fn push(
    out: &mut Vec<AttrChange>,
    def: TypeDef,
    urn: Option<&str>,
    name: &str,
    old: Option<&Value>,
    new: Option<&Value>,
) {
    if old == new {
        return;
    }
    let hidden = sensitive(def, urn, name);
    out.push(AttrChange {
        attribute: urn.map_or_else(|| name.to_owned(), |u| format!("{u}:{name}")),
        old: if hidden { None } else { old.cloned() },
        new: if hidden { None } else { new.cloned() },
    });
}

fn keys<'a>(a: &'a Map<String, Value>, b: &'a Map<String, Value>) -> Vec<&'a String> {
    let mut out: Vec<&String> = a.keys().collect();
    out.extend(b.keys().filter(|k| !a.contains_key(*k)));
    out
}

/// The attributes that differ between `old` and `new` (stored documents of `kind`), in the
/// order they appear in `old`, then those only in `new`.
#[must_use]
pub fn diff(def: TypeDef, old: &Value, new: &Value) -> Vec<AttrChange> {
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let mut out = Vec::new();
    for key in keys(o, n) {
        if SKIPPED.contains(&key.as_str()) {
            continue;
        }
        let (ov, nv) = (o.get(key), n.get(key));
        if is_extension(def, key) {
            let oe = ov.and_then(Value::as_object).unwrap_or(&empty);
            let ne = nv.and_then(Value::as_object).unwrap_or(&empty);
            for sub in keys(oe, ne) {
                push(&mut out, def, Some(key), sub, oe.get(sub), ne.get(sub));
            }
        } else {
            push(&mut out, def, None, key, ov, nv);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::ResourceKind;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    #[test]
    fn reports_changed_added_and_removed_attributes() {
        let old = json!({"schemas": ["a"], "userName": "bjensen", "title": "Guide",
            "active": true, "name": {"givenName": "B"}, ENT: {"department": "Tours"}});
        let new = json!({"schemas": ["a", "b"], "userName": "bjensen", "active": false,
            "name": {"givenName": "Barbara"}, "nickName": "Babs",
            ENT: {"department": "Sales", "costCenter": "42"}});
        let d = diff(ResourceKind::User.def(), &old, &new);
        let names: Vec<&str> = d.iter().map(|c| c.attribute.as_str()).collect();
        assert_eq!(
            names,
            [
                "title",
                "active",
                "name",
                &format!("{ENT}:department"),
                &format!("{ENT}:costCenter"),
                "nickName"
            ]
        );
        assert_eq!(d[0].old, Some(json!("Guide")));
        assert_eq!(d[0].new, None);
        assert_eq!(d[1].new, Some(json!(false)));
        assert_eq!(d[2].new, Some(json!({"givenName": "Barbara"})));
        assert_eq!(d[4].old, None);
    }

    #[test]
    fn equal_documents_have_no_changes_and_passwords_never_show() {
        let doc = json!({"userName": "x", "emails": [{"value": "a@b"}]});
        assert!(diff(ResourceKind::User.def(), &doc, &doc).is_empty());
        let with_pw = json!({"userName": "x", "password": "secret"});
        assert!(diff(ResourceKind::User.def(), &doc, &with_pw)
            .iter()
            .all(|c| c.attribute != "password"));
        let g = diff(
            ResourceKind::Group.def(),
            &json!({"displayName": "A"}),
            &json!({"displayName": "B"}),
        );
        assert_eq!(g.len(), 1);
    }
}
