//! Attribute projection: `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9),
//! honouring each attribute's `returned` characteristic (RFC 7643 §2.2).
//!
//! The contract:
//!
//! - Names are comma-separated, trimmed, case-insensitive, and may be URN-qualified
//!   (`urn:ietf:params:scim:schemas:core:2.0:User:userName`,
//!   `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`), name a
//!   sub-attribute (`name.givenName`, `emails.value`), or be a bare extension URN for the whole
//!   extension. Names Roster does not know are ignored (RFC 7644 §3.4.2.5 gives no error for
//!   them, and identity providers ask for attributes they do not expect everyone to have).
//! - `attributes` returns only what it lists plus `returned: always` attributes (`id`);
//!   `schemas` is always kept. Listing a sub-attribute returns the parent with just that
//!   sub-attribute (for a multi-valued attribute, in each element).
//! - `excludedAttributes` returns the default set minus what it lists; `returned: always`
//!   attributes cannot be excluded.
//! - Without either, the default set: every attribute but `returned: never` and
//!   `returned: request` ones.
//! - `returned: never` (`password`) is never returned; `returned: request` only when listed
//!   in `attributes`.
//! - When both parameters are given, `attributes` is honoured and `excludedAttributes`
//!   ignored. RFC 7644 §3.9 says clients should not send both; answering with the narrower,
//!   explicit list is more useful than failing a read.
//! - If every name in `attributes` is unknown, the parameter is treated as absent (the default
//!   set is returned), consistent with ignoring unknown names.
//! - Extension objects left empty are dropped, and so is their URN from `schemas`.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::resource::{attr_label, classify_key, Key};
use crate::schema::{AttrType, AttributeDef, Returned, TypeDef};

/// A parsed `attributes` / `excludedAttributes` pair.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Projection {
    /// Canonical paths asked for with `attributes` (`urn:…:attr[.sub]` or `attr[.sub]`).
    pub attributes: Vec<String>,
    /// Canonical paths excluded with `excludedAttributes`.
    pub excluded: Vec<String>,
}

/// One resolved name: an attribute (optionally a sub-attribute), or a whole extension.
#[derive(Debug, Clone, Copy)]
struct Sel {
    ext: Option<&'static str>,
    /// `None` selects the whole extension `ext`.
    attr: Option<&'static AttributeDef>,
    sub: Option<&'static AttributeDef>,
}

impl Sel {
    fn canonical(&self) -> String {
        match (self.ext, self.attr) {
            (Some(u), None) => u.to_owned(),
            (ext, Some(a)) => attr_label(ext, a.name, self.sub.map(|s| s.name)),
            (None, None) => String::new(),
        }
    }

    fn is_attr(&self, ext: Option<&str>, attr: &AttributeDef) -> bool {
        self.ext == ext && self.attr.is_some_and(|a| a.name == attr.name)
    }

    fn is_extension(&self, urn: &str) -> bool {
        self.attr.is_none() && self.ext == Some(urn)
    }
}

/// Resolves one name from a parameter list.
fn parse_name(def: TypeDef, name: &str) -> Option<Sel> {
    let name = name.trim();
    if let Some(ext) = def
        .extensions
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(name))
    {
        return Some(Sel {
            ext: Some(ext.id),
            attr: None,
            sub: None,
        });
    }
    let (urn, rest) = if name
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
    {
        let schema = std::iter::once(&def.schema)
            .chain(def.extensions.iter())
            .find(|s| {
                name.get(..s.id.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(s.id))
                    && name.as_bytes().get(s.id.len()) == Some(&b':')
            })?;
        (Some(schema.id), name.get(schema.id.len() + 1..)?)
    } else {
        (None, name)
    };
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (rest, None),
    };
    let r = def.resolve(urn, attr, sub)?;
    Some(Sel {
        ext: r.extension,
        attr: Some(r.attr),
        sub: r.sub,
    })
}

fn parse_list(def: TypeDef, list: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for sel in list
        .unwrap_or("")
        .split(',')
        .filter_map(|n| parse_name(def, n))
    {
        let c = sel.canonical();
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn resolve_list(def: TypeDef, list: &[String]) -> Vec<Sel> {
    list.iter().filter_map(|n| parse_name(def, n)).collect()
}

impl Projection {
    /// Parses the two comma-separated parameters for resources of `kind`. Names Roster does not
    /// know are ignored. When both are given, `attributes` wins and `excludedAttributes` is
    /// ignored (see the module documentation).
    ///
    /// # Errors
    /// None today; the `Result` leaves room for rejecting malformed lists.
    pub fn parse(
        def: TypeDef,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Self, ScimError> {
        let attributes = parse_list(def, attributes);
        let excluded = if attributes.is_empty() {
            parse_list(def, excluded)
        } else {
            Vec::new()
        };
        Ok(Self {
            attributes,
            excluded,
        })
    }

    /// The resolved selections: `(attributes, excluded)`, with `excluded` empty whenever
    /// `attributes` is not.
    fn sels(&self, def: TypeDef) -> (Vec<Sel>, Vec<Sel>) {
        let attrs = resolve_list(def, &self.attributes);
        let excl = if attrs.is_empty() {
            resolve_list(def, &self.excluded)
        } else {
            Vec::new()
        };
        (attrs, excl)
    }

    /// Whether the top-level attribute `name` (canonical, e.g. `members`, `groups`) would be
    /// returned, so that the server can skip loading it.
    #[must_use]
    pub fn includes(&self, def: TypeDef, name: &str) -> bool {
        let (attrs, excl) = self.sels(def);
        let (ext, attr) = match classify_key(def, name) {
            Key::Schemas => return true,
            Key::Unknown => return attrs.is_empty(),
            Key::Extension(s) => {
                return if attrs.is_empty() {
                    !excl.iter().any(|x| x.is_extension(s.id))
                } else {
                    attrs.iter().any(|x| x.ext == Some(s.id))
                };
            }
            Key::Attr(a) => (None, a),
            Key::ExtAttr(s, a) => (Some(s.id), a),
        };
        match attr.returned {
            Returned::Never => return false,
            Returned::Always => return true,
            Returned::Default | Returned::Request => {}
        }
        if !attrs.is_empty() {
            return attrs.iter().any(|x| {
                x.is_attr(ext, attr)
                    || (attr.returned == Returned::Default
                        && ext.is_some_and(|u| x.is_extension(u)))
            });
        }
        attr.returned != Returned::Request
            && !excl.iter().any(|x| {
                x.sub.is_none() && (x.is_attr(ext, attr) || ext.is_some_and(|u| x.is_extension(u)))
            })
    }

    /// Applies the projection to a full resource representation.
    #[must_use]
    pub fn apply(&self, def: TypeDef, doc: &Value) -> Value {
        let Some(obj) = doc.as_object() else {
            return doc.clone();
        };
        let (attrs, excl) = self.sels(def);
        let mut out = Map::new();
        for (key, value) in obj {
            let kept = match classify_key(def, key) {
                Key::Schemas => Some(value.clone()),
                Key::Attr(a) => project_attr(None, a, value, &attrs, &excl, false),
                Key::ExtAttr(s, a) => project_attr(Some(s.id), a, value, &attrs, &excl, false),
                Key::Extension(s) => {
                    let whole_listed = attrs.iter().any(|x| x.is_extension(s.id));
                    let whole_excluded = excl.iter().any(|x| x.is_extension(s.id));
                    match value.as_object() {
                        Some(ext) if !whole_excluded => {
                            let mut o = Map::new();
                            for (k, v) in ext {
                                let kept = match s.attribute(k) {
                                    Some(a) => {
                                        project_attr(Some(s.id), a, v, &attrs, &excl, whole_listed)
                                    }
                                    None => (attrs.is_empty() || whole_listed).then(|| v.clone()),
                                };
                                if let Some(v) = kept {
                                    o.insert(k.clone(), v);
                                }
                            }
                            (!o.is_empty()).then_some(Value::Object(o))
                        }
                        _ => None,
                    }
                }
                Key::Unknown => attrs.is_empty().then(|| value.clone()),
            };
            if let Some(v) = kept {
                out.insert(key.clone(), v);
            }
        }
        let present: Vec<&str> = def
            .extensions
            .iter()
            .map(|s| s.id)
            .filter(|id| out.keys().any(|k| k.eq_ignore_ascii_case(id)))
            .collect();
        if let Some(Value::Array(schemas)) = out.get_mut("schemas") {
            schemas.retain(|u| {
                let Some(u) = u.as_str() else { return true };
                let is_ext = def.extensions.iter().any(|s| s.id.eq_ignore_ascii_case(u));
                !is_ext || present.iter().any(|p| p.eq_ignore_ascii_case(u))
            });
        }
        Value::Object(out)
    }
}

/// The projected value of one attribute, or `None` to leave it out. `parent_listed` is set when
/// `attributes` named the attribute's whole extension.
fn project_attr(
    ext: Option<&str>,
    attr: &AttributeDef,
    value: &Value,
    attrs: &[Sel],
    excl: &[Sel],
    parent_listed: bool,
) -> Option<Value> {
    match attr.returned {
        Returned::Never => return None,
        Returned::Always => return Some(value.clone()),
        Returned::Default | Returned::Request => {}
    }
    let mine = |sels: &[Sel]| -> Vec<Sel> {
        sels.iter()
            .filter(|s| s.is_attr(ext, attr))
            .copied()
            .collect()
    };
    if !attrs.is_empty() {
        let listed = mine(attrs);
        let whole = listed.iter().any(|s| s.sub.is_none())
            || (parent_listed && attr.returned == Returned::Default);
        if whole {
            return keep_subs(attr, value, |sub| {
                sub.returned != Returned::Never
                    && (sub.returned != Returned::Request || listed_sub(&listed, sub))
            });
        }
        if listed.is_empty() {
            return None;
        }
        return keep_subs(attr, value, |sub| {
            sub.returned == Returned::Always || listed_sub(&listed, sub)
        });
    }
    if attr.returned == Returned::Request {
        return None;
    }
    let listed = mine(excl);
    if listed.iter().any(|s| s.sub.is_none()) {
        return None;
    }
    keep_subs(attr, value, |sub| {
        sub.returned == Returned::Always
            || (matches!(sub.returned, Returned::Default) && !listed_sub(&listed, sub))
    })
}

fn listed_sub(listed: &[Sel], sub: &AttributeDef) -> bool {
    listed
        .iter()
        .any(|s| s.sub.is_some_and(|x| x.name == sub.name))
}

/// Keeps the sub-attributes of a complex value (of each element, if multi-valued) for which
/// `keep` holds; unknown sub-attributes are kept as they are. Emptied values are dropped.
fn keep_subs(
    attr: &AttributeDef,
    value: &Value,
    keep: impl Fn(&AttributeDef) -> bool,
) -> Option<Value> {
    if attr.attr_type != AttrType::Complex {
        return Some(value.clone());
    }
    let filter_obj = |o: &Map<String, Value>| -> Option<Value> {
        let m: Map<String, Value> = o
            .iter()
            .filter(|(k, _)| attr.sub_attribute(k).is_none_or(&keep))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (!m.is_empty()).then_some(Value::Object(m))
    };
    match value {
        Value::Object(o) => filter_obj(o),
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .filter_map(|e| match e {
                    Value::Object(o) => filter_obj(o),
                    other => Some(other.clone()),
                })
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod tests;
