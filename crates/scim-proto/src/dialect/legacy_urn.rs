//! Rule [`super::LEGACY_URN`]: the schema URNs of the SCIM 2.0 drafts, before RFC 7643 named
//! them `urn:ietf:params:scim:…`, read as the RFC's.
//!
//! OneLogin's "SCIM Provisioner with SAML (SCIM v2 Enterprise)" connector renders its default
//! template with `"schemas": ["urn:scim:schemas:core:2.0", "urn:scim:schemas:extension:enterprise:2.0"]`
//! and the enterprise attributes under `urn:scim:schemas:extension:enterprise:2.0`; draft-era
//! clients and servers use the same URNs with `:User`/`:Group` appended. Each of them names
//! exactly one RFC 7643 schema, so the rewrite is unambiguous:
//!
//! | draft URN | RFC 7643 |
//! |---|---|
//! | `urn:scim:schemas:core:2.0`, `…:User`, `…:Group` | the core schema of the resource (`urn:ietf:params:scim:schemas:core:2.0:User`, `…:Group`) |
//! | `urn:scim:schemas:extension:enterprise:2.0`, `…:User` | `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User` |
//!
//! Where: the `schemas` of a body (and of a path-less PATCH value), extension keys and
//! URN-qualified attribute keys of a body, PATCH `path`s, and attribute paths in filters. A
//! core attribute path loses its URN (`urn:scim:schemas:core:2.0:title` → `title`, the same
//! attribute); an enterprise one gets the RFC URN. String values are never touched.
//!
//! SCIM 1.1's `urn:scim:schemas:core:1.0` is not an alias: SCIM 1.1 resources differ in shape
//! (OneLogin's 1.1 template sends `emails` as one object, the manager as `managerId`), so such
//! a request is refused, with a detail that says which connector to use instead.

use serde_json::{Map, Value};

use super::{Ctx, LEGACY_URN};
use crate::schema::{ResourceKind, TypeDef, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

/// What a draft URN stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The enterprise User extension.
    Enterprise,
    /// A core schema: of this resource type, or (`None`) of the resource the request is about.
    Core(Option<ResourceKind>),
}

/// The draft URNs, longer ones first (a prefix match must find `…:2.0:User` before `…:2.0`).
const LEGACY: [(&str, Target); 5] = [
    (
        "urn:scim:schemas:extension:enterprise:2.0:User",
        Target::Enterprise,
    ),
    (
        "urn:scim:schemas:extension:enterprise:2.0",
        Target::Enterprise,
    ),
    (
        "urn:scim:schemas:core:2.0:User",
        Target::Core(Some(ResourceKind::User)),
    ),
    (
        "urn:scim:schemas:core:2.0:Group",
        Target::Core(Some(ResourceKind::Group)),
    ),
    ("urn:scim:schemas:core:2.0", Target::Core(None)),
];

/// The draft URN `s` starts with (any letter case), when the URN ends there or a `:` follows;
/// with the rest of `s` (empty, or starting with `:`).
fn split(s: &str) -> Option<(Target, &str)> {
    LEGACY.iter().find_map(|(urn, target)| {
        let head = s.get(..urn.len())?;
        let rest = s.get(urn.len()..)?;
        (head.eq_ignore_ascii_case(urn) && (rest.is_empty() || rest.starts_with(':')))
            .then_some((*target, rest))
    })
}

/// The RFC URN for a draft schema URN (a `schemas` element, an extension key); `None` for
/// anything else.
pub(super) fn schema_urn(s: &str, def: TypeDef) -> Option<&'static str> {
    match split(s)? {
        (Target::Enterprise, "") => Some(ENTERPRISE_USER_SCHEMA),
        (Target::Core(Some(ResourceKind::User)), "") => Some(USER_SCHEMA),
        (Target::Core(Some(ResourceKind::Group)), "") => Some(GROUP_SCHEMA),
        (Target::Core(None), "") => Some(def.schema.id),
        _ => None,
    }
}

/// The RFC form of an attribute path qualified by a draft URN (`urn:scim:schemas:extension:
/// enterprise:2.0:manager.value`); `None` for anything else.
pub(super) fn attr_path(s: &str) -> Option<String> {
    let (target, rest) = split(s)?;
    let attr = rest.strip_prefix(':').filter(|a| !a.is_empty())?;
    Some(match target {
        Target::Enterprise => format!("{ENTERPRISE_USER_SCHEMA}:{attr}"),
        Target::Core(_) => attr.to_owned(),
    })
}

/// Rewrites the draft URNs of a resource-shaped object: a POST/PUT body, or a PATCH value.
pub(super) fn fix_object(def: TypeDef, obj: &mut Map<String, Value>, ctx: &mut Ctx) {
    let mut changed = false;
    if let Some(Value::Array(list)) = obj
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .map(|(_, v)| v)
    {
        let mut out: Vec<Value> = Vec::with_capacity(list.len());
        for v in list.drain(..) {
            let v = match v.as_str().and_then(|s| schema_urn(s, def)) {
                Some(rfc) => {
                    changed = true;
                    Value::String(rfc.to_owned())
                }
                None => v,
            };
            // The draft and the RFC URN both listed: once is enough.
            if !out.contains(&v) {
                out.push(v);
            }
        }
        *list = out;
    }
    let renames: Vec<(String, String)> = obj
        .keys()
        .filter_map(|k| {
            let rfc = match schema_urn(k, def) {
                // A draft core URN as a key would hold core attributes: not a shape anyone
                // sends, and not one the core reads; left alone.
                Some(urn) if urn == ENTERPRISE_USER_SCHEMA => Some(urn.to_owned()),
                Some(_) => None,
                None => attr_path(k),
            }?;
            Some((k.clone(), rfc))
        })
        .collect();
    for (old, new) in renames {
        let Some(v) = obj.remove(&old) else { continue };
        changed = true;
        let existing = obj.keys().find(|k| k.eq_ignore_ascii_case(&new)).cloned();
        match (existing.and_then(|k| obj.get_mut(&k)), v) {
            // Both forms of the extension: the RFC one's members win, the draft one's others
            // are kept.
            (Some(Value::Object(rfc)), Value::Object(draft)) => {
                for (k, v) in draft {
                    if !rfc.keys().any(|r| r.eq_ignore_ascii_case(&k)) {
                        rfc.insert(k, v);
                    }
                }
            }
            (Some(_), _) => {}
            (None, v) => {
                obj.insert(new, v);
            }
        }
    }
    if changed {
        ctx.fired(LEGACY_URN);
    }
}

/// Rewrites draft URNs in a PATCH operation's `path`.
pub(super) fn fix_path(op: &mut Map<String, Value>, def: TypeDef, ctx: &mut Ctx) {
    let Some(Value::String(path)) = op
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case("path"))
        .map(|(_, v)| v)
    else {
        return;
    };
    let rfc = attr_path(path).or_else(|| schema_urn(path, def).map(str::to_owned));
    if let Some(rfc) = rfc {
        *path = rfc;
        ctx.fired(LEGACY_URN);
    }
}

/// Rewrites the draft-URN attribute paths of a filter's text (outside string literals); `None`
/// when there is none. The caller checks that the result parses.
pub(super) fn rewrite_filter(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    let mut changed = false;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'"') => i = super::filter_text::skip_string(bytes, i),
            Some(b'u' | b'U')
                if i == 0
                    || bytes
                        .get(i - 1)
                        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'(' | b'[')) =>
            {
                // The attribute path runs to the next space or bracket.
                let end = (i..bytes.len())
                    .find(|&j| {
                        matches!(bytes.get(j), Some(b' ' | b'\t' | b'(' | b')' | b'[' | b']'))
                    })
                    .unwrap_or(bytes.len());
                if let Some(rfc) = text.get(i..end).and_then(attr_path) {
                    out.push_str(text.get(copied..i).unwrap_or(""));
                    out.push_str(&rfc);
                    copied = end;
                    changed = true;
                }
                i = end.max(i + 1);
            }
            _ => i += 1,
        }
    }
    if !changed {
        return None;
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_urns_map_to_one_rfc_urn_each() {
        let k = ResourceKind::User.def();
        assert_eq!(
            schema_urn("urn:scim:schemas:core:2.0", k),
            Some(USER_SCHEMA)
        );
        assert_eq!(
            schema_urn("urn:scim:schemas:core:2.0", ResourceKind::Group.def()),
            Some(GROUP_SCHEMA)
        );
        assert_eq!(
            schema_urn("URN:SCIM:schemas:core:2.0:User", k),
            Some(USER_SCHEMA)
        );
        assert_eq!(
            schema_urn("urn:scim:schemas:extension:enterprise:2.0", k),
            Some(ENTERPRISE_USER_SCHEMA)
        );
        assert_eq!(
            schema_urn("urn:scim:schemas:extension:enterprise:2.0:User", k),
            Some(ENTERPRISE_USER_SCHEMA)
        );
        for other in [
            "urn:scim:schemas:core:1.0",
            "urn:scim:schemas:core:2.01",
            USER_SCHEMA,
            "urn:scim:schemas:core:2.0:title",
        ] {
            assert_eq!(schema_urn(other, k), None, "{other}");
        }
        assert_eq!(
            attr_path("urn:scim:schemas:extension:enterprise:2.0:manager.value").as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value")
        );
        assert_eq!(
            attr_path("urn:scim:schemas:extension:enterprise:2.0:User:department").as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")
        );
        assert_eq!(
            attr_path("urn:scim:schemas:core:2.0:name.givenName").as_deref(),
            Some("name.givenName")
        );
        assert_eq!(attr_path("urn:scim:schemas:core:2.0"), None);
        assert_eq!(attr_path("urn:scim:schemas:core:2.0:"), None);
        assert_eq!(attr_path("title"), None);
    }

    #[test]
    fn filters_are_rewritten_outside_strings_only() {
        assert_eq!(
            rewrite_filter(
                "urn:scim:schemas:extension:enterprise:2.0:department eq \"urn:scim:schemas:core:2.0:x\""
            )
            .as_deref(),
            Some(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"urn:scim:schemas:core:2.0:x\""
            )
        );
        assert_eq!(
            rewrite_filter("not (urn:scim:schemas:core:2.0:userName sw \"a\") and (x pr)")
                .as_deref(),
            Some("not (userName sw \"a\") and (x pr)")
        );
        assert_eq!(
            rewrite_filter("userName eq \"urn:scim:schemas:core:2.0:a\""),
            None
        );
        assert_eq!(rewrite_filter("title eq \"x\""), None);
    }
}
