//! Resolution of a parsed filter against a resource type: canonical paths, type checks, and the
//! resolved tree that evaluation walks.

use serde_json::Number;
use time::OffsetDateTime;

use super::{fold_case, parse_datetime, AttrPath, CompValue, CompareOp, Filter, ValidFilter};
use crate::error::ScimError;
use crate::schema::{AttrType, AttributeDef, Returned, TypeDef};

/// Where a value lives: `doc[ext]?[attr][sub]?`, or for paths inside a value filter,
/// `element[attr]` (with `ext` and `sub` both `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) ext: Option<&'static str>,
    pub(super) attr: &'static str,
    pub(super) sub: Option<&'static str>,
}

/// A comparison value already converted to the attribute's type.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Operand {
    /// Already folded with [`fold_case`] when `case_exact` is false.
    Str {
        value: String,
        case_exact: bool,
    },
    Bool(bool),
    Num(Number),
    DateTime(OffsetDateTime),
}

/// The resolved filter. `ne` and `null` comparisons are lowered to `Not`/`Present` here, so the
/// evaluator implements each rule of the module documentation exactly once.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Present(Target),
    /// The operator is never `Ne`.
    Compare(Target, CompareOp, Operand),
    /// Matches when one element of the target satisfies the inner node.
    ValuePath(Target, Box<Node>),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
}

/// What paths are resolved against.
#[derive(Clone, Copy)]
enum Scope {
    Resource(TypeDef),
    /// Inside `outer[…]`: paths name sub-attributes of `outer`.
    Within(&'static AttributeDef),
}

/// A resolved path.
struct Leaf {
    path: AttrPath,
    target: Target,
    ty: AttrType,
    case_exact: bool,
    /// The attribute definition, when the path names a complex attribute.
    complex: Option<&'static AttributeDef>,
}

fn err(detail: impl Into<String>) -> ScimError {
    ScimError::invalid_filter(detail)
}

/// The path as a person would write it, without the long extension URN.
fn short(path: &AttrPath) -> String {
    match &path.sub_attr {
        Some(sub) => format!("{}.{sub}", path.attr),
        None => path.attr.clone(),
    }
}

fn leaf_of(def: &'static AttributeDef, path: AttrPath, target: Target) -> Result<Leaf, ScimError> {
    if def.returned == Returned::Never {
        return Err(err(format!(
            "attribute \"{}\" is never returned and cannot be used in a filter",
            short(&path)
        )));
    }
    Ok(Leaf {
        path,
        target,
        ty: def.attr_type,
        // References and binary values are identifiers, never compared case-insensitively.
        case_exact: def.case_exact
            || matches!(def.attr_type, AttrType::Reference | AttrType::Binary),
        complex: (def.attr_type == AttrType::Complex).then_some(def),
    })
}

fn resolve(scope: Scope, path: &AttrPath) -> Result<Leaf, ScimError> {
    match scope {
        Scope::Resource(def) => {
            // `schemas` is not described by any schema, yet RFC 7644 §3.4.2.2 filters on it.
            if path.urn.is_none()
                && path.sub_attr.is_none()
                && path.attr.eq_ignore_ascii_case("schemas")
            {
                return Ok(Leaf {
                    path: AttrPath {
                        urn: None,
                        attr: "schemas".to_owned(),
                        sub_attr: None,
                    },
                    target: Target {
                        ext: None,
                        attr: "schemas",
                        sub: None,
                    },
                    ty: AttrType::String,
                    case_exact: false,
                    complex: None,
                });
            }
            let r = def
                .resolve(path.urn.as_deref(), &path.attr, path.sub_attr.as_deref())
                .ok_or_else(|| {
                    err(format!(
                        "unknown attribute \"{path}\" for {}",
                        def.kind.as_str()
                    ))
                })?;
            if r.attr.returned == Returned::Never {
                return Err(err(format!(
                    "attribute \"{}\" is never returned and cannot be used in a filter",
                    r.attr.name
                )));
            }
            let canonical = AttrPath {
                urn: r.extension.map(str::to_owned),
                attr: r.attr.name.to_owned(),
                sub_attr: r.sub.map(|s| s.name.to_owned()),
            };
            let target = Target {
                ext: r.extension,
                attr: r.attr.name,
                sub: r.sub.map(|s| s.name),
            };
            leaf_of(r.sub.unwrap_or(r.attr), canonical, target)
        }
        Scope::Within(outer) => {
            if path.urn.is_some() || path.sub_attr.is_some() {
                return Err(err(format!(
                    "inside \"{}[…]\", paths name one of its sub-attributes, such as \"{}\"; \
                     found \"{path}\"",
                    outer.name,
                    outer.sub_attributes.first().map_or("value", |s| s.name)
                )));
            }
            let d = outer.sub_attribute(&path.attr).ok_or_else(|| {
                err(format!(
                    "unknown sub-attribute \"{}\" of \"{}\"",
                    path.attr, outer.name
                ))
            })?;
            leaf_of(
                d,
                AttrPath {
                    urn: None,
                    attr: d.name.to_owned(),
                    sub_attr: None,
                },
                Target {
                    ext: None,
                    attr: d.name,
                    sub: None,
                },
            )
        }
    }
}

/// Resolves the attribute a value filter applies to; it must be complex, without sub-attribute.
fn complex_outer(def: TypeDef, path: &AttrPath) -> Result<Leaf, ScimError> {
    let leaf = resolve(Scope::Resource(def), path)?;
    if leaf.complex.is_none() {
        return Err(err(format!(
            "\"{}\" is not a complex attribute; a value filter \"[…]\" needs one, such as \
             \"emails\" or \"members\"",
            short(&leaf.path)
        )));
    }
    Ok(leaf)
}

fn type_name(ty: AttrType) -> &'static str {
    match ty {
        AttrType::String => "a string",
        AttrType::Boolean => "a boolean",
        AttrType::Decimal => "a decimal",
        AttrType::Integer => "an integer",
        AttrType::DateTime => "a dateTime",
        AttrType::Binary => "binary",
        AttrType::Reference => "a reference",
        AttrType::Complex => "complex",
    }
}

/// Checks that `op` and `v` fit the attribute, and converts `v` (never `null` here).
fn operand(leaf: &Leaf, op: CompareOp, v: &CompValue) -> Result<Operand, ScimError> {
    let name = short(&leaf.path);
    let ty = type_name(leaf.ty);
    let allowed: &[CompareOp] = match leaf.ty {
        AttrType::Boolean => &[CompareOp::Eq, CompareOp::Ne],
        AttrType::Integer | AttrType::Decimal | AttrType::DateTime => &[
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ],
        _ => &[
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ],
    };
    if !allowed.contains(&op) {
        let list: Vec<&str> = allowed.iter().map(|o| o.as_str()).collect();
        return Err(err(format!(
            "operator \"{op}\" cannot be used with \"{name}\", which is {ty}; use {}",
            list.join(", ")
        )));
    }
    let mismatch = |want: &str| {
        err(format!(
            "\"{name}\" is {ty}; compare it with {want}, not {v}"
        ))
    };
    match (leaf.ty, v) {
        (AttrType::Boolean, CompValue::Bool(b)) => Ok(Operand::Bool(*b)),
        (AttrType::Boolean, _) => Err(mismatch("true or false")),
        (AttrType::Integer | AttrType::Decimal, CompValue::Number(n)) => {
            Ok(Operand::Num(n.clone()))
        }
        (AttrType::Integer | AttrType::Decimal, _) => Err(mismatch("a number")),
        (AttrType::DateTime, CompValue::Str(s)) => {
            parse_datetime(s).map(Operand::DateTime).ok_or_else(|| {
                err(format!(
                    "\"{name}\" is a dateTime; {v} is not an RFC 3339 timestamp such as \
                     \"2011-05-13T04:42:34Z\""
                ))
            })
        }
        (AttrType::DateTime, _) => Err(mismatch("a quoted RFC 3339 timestamp")),
        (AttrType::String | AttrType::Reference | AttrType::Binary, CompValue::Str(s)) => {
            Ok(Operand::Str {
                value: if leaf.case_exact {
                    s.clone()
                } else {
                    fold_case(s)
                },
                case_exact: leaf.case_exact,
            })
        }
        (AttrType::String | AttrType::Reference | AttrType::Binary, _) => {
            Err(mismatch("a quoted string"))
        }
        (AttrType::Complex, _) => Err(err(format!(
            "\"{name}\" is complex; compare one of its sub-attributes"
        ))),
    }
}

fn compare(
    scope: Scope,
    path: &AttrPath,
    op: CompareOp,
    v: &CompValue,
) -> Result<(Filter, Node), ScimError> {
    let mut leaf = resolve(scope, path)?;
    if let Some(def) = leaf.complex {
        // RFC 7644 §3.4.2.2: a complex attribute without sub-attribute compares its `value`.
        if def.sub_attribute("value").is_none() {
            return Err(err(format!(
                "\"{}\" is complex and has no \"value\"; compare one of its sub-attributes, \
                 such as \"{}.{}\"",
                leaf.path.attr,
                leaf.path.attr,
                def.sub_attributes.first().map_or("value", |s| s.name)
            )));
        }
        let with_value = AttrPath {
            sub_attr: Some("value".to_owned()),
            ..leaf.path.clone()
        };
        leaf = resolve(scope, &with_value)?;
    }
    let canonical = Filter::Compare(leaf.path.clone(), op, v.clone());
    let node = match (v, op) {
        (CompValue::Null, CompareOp::Eq) => Node::Not(Box::new(Node::Present(leaf.target))),
        (CompValue::Null, CompareOp::Ne) => Node::Present(leaf.target),
        (CompValue::Null, _) => {
            return Err(err(format!(
                "null can only be compared with eq or ne (\"{0} eq null\" means {0} is absent); \
                 found \"{op} null\"",
                short(&leaf.path)
            )))
        }
        (_, CompareOp::Ne) => Node::Not(Box::new(Node::Compare(
            leaf.target,
            CompareOp::Eq,
            operand(&leaf, op, v)?,
        ))),
        _ => Node::Compare(leaf.target, op, operand(&leaf, op, v)?),
    };
    Ok((canonical, node))
}

fn check(f: &Filter, scope: Scope) -> Result<(Filter, Node), ScimError> {
    Ok(match f {
        Filter::Present(path) => {
            let leaf = resolve(scope, path)?;
            (Filter::Present(leaf.path), Node::Present(leaf.target))
        }
        Filter::Compare(path, op, v) => compare(scope, path, *op, v)?,
        Filter::ValuePath(path, inner) => {
            let Scope::Resource(def) = scope else {
                return Err(err(format!(
                    "value filters cannot be nested: \"{path}[…]\" inside another \"[…]\""
                )));
            };
            let outer = complex_outer(def, path)?;
            let def = outer.complex.ok_or_else(ScimError::internal)?;
            let (fi, ni) = check(inner, Scope::Within(def))?;
            (
                Filter::ValuePath(outer.path, Box::new(fi)),
                Node::ValuePath(outer.target, Box::new(ni)),
            )
        }
        Filter::Not(inner) => {
            let (fi, ni) = check(inner, scope)?;
            (Filter::Not(Box::new(fi)), Node::Not(Box::new(ni)))
        }
        Filter::And(..) | Filter::Or(..) => {
            // Iterate over the left spine of a chain so that recursion depth follows the
            // nesting of parentheses, not the length of `a or b or c ...`.
            let mut rights = Vec::new();
            let mut cur = f;
            while let Filter::And(l, r) | Filter::Or(l, r) = cur {
                rights.push((matches!(cur, Filter::And(..)), &**r));
                cur = l;
            }
            let (mut filter, mut node) = check(cur, scope)?;
            for (is_and, r) in rights.into_iter().rev() {
                let (fr, nr) = check(r, scope)?;
                let (fl, nl) = (Box::new(filter), Box::new(node));
                (filter, node) = if is_and {
                    (Filter::And(fl, Box::new(fr)), Node::And(nl, Box::new(nr)))
                } else {
                    (Filter::Or(fl, Box::new(fr)), Node::Or(nl, Box::new(nr)))
                };
            }
            (filter, node)
        }
    })
}

pub(super) fn validate(f: &Filter, def: TypeDef) -> Result<ValidFilter, ScimError> {
    let (filter, node) = check(f, Scope::Resource(def))?;
    Ok(ValidFilter {
        kind: def.kind,
        filter,
        node,
        outer: None,
    })
}

pub(super) fn validate_value_filter(
    f: &Filter,
    def: TypeDef,
    outer: &AttrPath,
) -> Result<ValidFilter, ScimError> {
    let leaf = complex_outer(def, outer)?;
    let within = leaf.complex.ok_or_else(ScimError::internal)?;
    let (filter, node) = check(f, Scope::Within(within))?;
    Ok(ValidFilter {
        kind: def.kind,
        filter,
        node,
        outer: Some(leaf.path),
    })
}
