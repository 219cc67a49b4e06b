//! The SCIM filter grammar (RFC 7644 §3.4.2.2), its AST, and PATCH paths (RFC 7644 §3.5.2).
//!
//! `parse_filter` turns text into a [`Filter`]; `Filter::validate` resolves every attribute path
//! against a resource type (case-insensitive names, schema-URN-qualified paths, sub-attributes)
//! and yields a [`ValidFilter`], which can be evaluated against a resource document with
//! [`ValidFilter::matches`] and translated to SQL by the store. `Display` prints a filter so
//! that parsing the output yields the same AST.
//!
//! # Syntax
//!
//! The full ABNF of RFC 7644 §3.4.2.2. Operators and the keywords `and`, `or`, `not`, `pr`,
//! `true`, `false` and `null` are case-insensitive. `not` binds tighter than `and`, which binds
//! tighter than `or`; both are left-associative, and parentheses only group (there is no group
//! node: `(a)` parses to `a`). `not` is reserved: it always starts `not (filter)`.
//!
//! Errors are 400 `invalidFilter` (400 `invalidPath` for [`parse_path`]) whose detail reads
//! `invalid filter at character N: ...`, where `N` is the **0-based character offset** (not
//! byte offset) of the offending token, followed by what was expected and what was found.
//! Input is limited to [`SCIM_FILTER_MAX_LEN`] bytes, [`SCIM_FILTER_MAX_DEPTH`] levels of
//! parentheses, `not` and brackets, and [`SCIM_FILTER_MAX_TERMS`] attribute expressions, so that
//! neither the parser nor anything that later walks the tree (evaluation, SQL translation) can
//! exhaust the stack.
//!
//! # Semantics
//!
//! These rules are shared with the store's SQL translation; both must give the same answers.
//!
//! - A comparison on a multi-valued attribute matches when **any** value matches.
//!   `emails[type eq "work" and value co "@x"]` matches when one element satisfies the whole
//!   inner filter.
//! - A comparison on an absent attribute is false, and so is `pr`. `pr` means present: not
//!   `null`, not `""`, not `[]`, not `{}`.
//! - **`a ne v` is defined as `not (a eq v)`**: an absent attribute matches `ne`, and a
//!   multi-valued attribute matches `ne` only when *no* value equals `v`. That is what a client
//!   asking for "users whose email is not x" expects, and what SQL `NOT EXISTS` gives naturally;
//!   the alternative ("some value differs") would match nearly everything.
//! - `a eq null` means "a is not present" and `a ne null` means "a is present" (the same as
//!   `not (a pr)` and `a pr`); other operators reject `null`.
//! - A comparison on a complex attribute without a sub-attribute (`emails co "x"`) compares its
//!   `value` sub-attribute; validation rewrites the path to `emails.value`. `emails pr` means
//!   the attribute has any value.
//! - Strings of `caseExact: false` attributes compare after [`fold_case`] on both sides; `gt`,
//!   `ge`, `lt`, `le` on strings are lexicographic by Rust `str` ordering (code points).
//!   `reference` and `binary` values always compare case-exactly.
//! - Numbers compare numerically (exactly when both are integers). `dateTime` values compare as
//!   instants; a stored value that does not parse matches nothing. Booleans allow `eq`/`ne` only.
//! - `schemas` is accepted in filters as a multi-valued, case-insensitive string attribute.
//! - Attributes that are never returned (`password`) cannot be filtered on.

use std::fmt;

use serde_json::Value;

use crate::error::ScimError;
use crate::schema::{ResourceKind, TypeDef};

mod eval;
mod parse;
#[cfg(test)]
mod tests;
mod validate;

/// The deepest nesting of parentheses, `not (…)` and value filters `[…]` a filter may have.
pub const SCIM_FILTER_MAX_DEPTH: usize = 64;

/// The longest filter or path accepted, in bytes.
pub const SCIM_FILTER_MAX_LEN: usize = 16 * 1024;

/// The most attribute expressions (`attr op value`, `attr pr`, `attr[…]`) one filter may hold.
pub const SCIM_FILTER_MAX_TERMS: usize = 500;

/// An attribute path: `[URN ":"] attrName ["." subAttr]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix, if the path was qualified.
    pub urn: Option<String>,
    /// The attribute name.
    pub attr: String,
    /// The sub-attribute name.
    pub sub_attr: Option<String>,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// equal
    Eq,
    /// not equal
    Ne,
    /// contains
    Co,
    /// starts with
    Sw,
    /// ends with
    Ew,
    /// greater than
    Gt,
    /// greater than or equal to
    Ge,
    /// less than
    Lt,
    /// less than or equal to
    Le,
}

impl CompareOp {
    /// The operator keyword, lowercase (`eq`, `ne`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Co => "co",
            Self::Sw => "sw",
            Self::Ew => "ew",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
        }
    }

    /// Parses an operator keyword, case-insensitively (`pr` is not a comparison).
    #[must_use]
    pub fn from_keyword(s: &str) -> Option<Self> {
        [
            Self::Eq,
            Self::Ne,
            Self::Co,
            Self::Sw,
            Self::Ew,
            Self::Gt,
            Self::Ge,
            Self::Lt,
            Self::Le,
        ]
        .into_iter()
        .find(|op| op.as_str().eq_ignore_ascii_case(s))
    }
}

/// A comparison value: a JSON literal (RFC 7644 §3.4.2.2 `compValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A JSON number.
    Number(serde_json::Number),
    /// A JSON string.
    Str(String),
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath pr`
    Present(AttrPath),
    /// `attrPath compareOp compValue`
    Compare(AttrPath, CompareOp, CompValue),
    /// `attrPath "[" valFilter "]"`: the inner filter's paths are relative to the attribute.
    ValuePath(AttrPath, Box<Filter>),
    /// `"not" "(" filter ")"`
    Not(Box<Filter>),
    /// `filter "and" filter`
    And(Box<Filter>, Box<Filter>),
    /// `filter "or" filter`
    Or(Box<Filter>, Box<Filter>),
}

/// A PATCH `path` (RFC 7644 §3.5.2): `attrPath`, or `valuePath [ "." subAttr ]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (with its sub-attribute when the path is a plain `attrPath`).
    pub attr: AttrPath,
    /// The value filter, for `attr[filter]` paths.
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter: `emails[type eq "work"].value`.
    pub sub_attr: Option<String>,
}

/// A filter whose attribute paths have been resolved against one resource type.
///
/// Paths are rewritten to canonical form: canonical attribute-name casing, `urn` set to the
/// extension URN for extension attributes and `None` for core and common attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidFilter {
    kind: ResourceKind,
    filter: Filter,
    /// The resolved tree that [`ValidFilter::matches`] walks.
    node: validate::Node,
    /// For a value filter: the canonical complex attribute its paths are relative to.
    outer: Option<AttrPath>,
}

impl ValidFilter {
    /// The resource type this filter was validated against.
    #[must_use]
    pub fn kind(&self) -> ResourceKind {
        self.kind
    }

    /// The canonical filter.
    ///
    /// For a filter from [`validate_value_filter`], its paths are relative to [`Self::outer`]
    /// (`type eq "work"`).
    #[must_use]
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// For a filter from [`validate_value_filter`], the canonical complex attribute its paths
    /// are relative to (`emails`); `None` for a resource filter.
    #[must_use]
    pub fn outer(&self) -> Option<&AttrPath> {
        self.outer.as_ref()
    }
}

/// Parses a filter (RFC 7644 §3.4.2.2).
///
/// # Errors
/// 400 `invalidFilter` with a detail naming the position (0-based character offset), what was
/// expected and what was found.
pub fn parse_filter(input: &str) -> Result<Filter, ScimError> {
    parse::parse_filter(input)
}

/// Parses a PATCH path (RFC 7644 §3.5.2): `members`, `name.givenName`,
/// `members[value eq "2819c223"]`, `emails[type eq "work"].value`, `urn:…:User:manager.value`.
///
/// A bare schema URN such as `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`
/// parses like any qualified path (`urn` = `urn:…:enterprise:2.0`, `attr` = `User`); the PATCH
/// engine recognises it. Value-filter paths are relative and are validated with
/// [`validate_value_filter`].
///
/// # Errors
/// 400 `invalidPath` with a detail naming the position (0-based character offset), what was
/// expected and what was found.
pub fn parse_path(input: &str) -> Result<PatchPath, ScimError> {
    parse::parse_path(input)
}

impl Filter {
    /// Resolves every attribute path against `kind`'s schemas.
    ///
    /// # Errors
    /// 400 `invalidFilter` for unknown attributes or operators that do not fit the type.
    pub fn validate(&self, def: TypeDef) -> Result<ValidFilter, ScimError> {
        validate::validate(self, def)
    }
}

/// Validates the inner filter of a value path (`emails[type eq "work"]`), whose attribute paths
/// are relative to the complex attribute `outer` (`emails`).
///
/// The result's [`ValidFilter::matches`] takes ONE element of that attribute
/// (`{"value": "a@x", "type": "work"}`), and its [`ValidFilter::filter`] is the canonical inner
/// filter (canonical sub-attribute names).
///
/// # Errors
/// 400 `invalidFilter` when `outer` is not a complex attribute of `kind` or the inner filter
/// names an unknown sub-attribute or does not fit the types.
pub fn validate_value_filter(
    filter: &Filter,
    def: TypeDef,
    outer: &AttrPath,
) -> Result<ValidFilter, ScimError> {
    validate::validate_value_filter(filter, def, outer)
}

impl ValidFilter {
    /// Whether the resource document matches (for a value filter: whether the element matches).
    #[must_use]
    pub fn matches(&self, doc: &Value) -> bool {
        eval::eval(&self.node, doc)
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("null"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Number(n) => write!(f, "{n}"),
            Self::Str(s) => write_json_string(f, s),
        }
    }
}

/// Writes `s` as a JSON string literal; control characters are escaped because the parser,
/// like JSON, rejects them raw.
fn write_json_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    use fmt::Write;
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            c if u32::from(c) < 0x20 => write!(f, "\\u{:04x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// Binding strength, for deciding where `Display` needs parentheses.
fn precedence(f: &Filter) -> u8 {
    match f {
        Filter::Or(..) => 1,
        Filter::And(..) => 2,
        _ => 3,
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, child: &Filter, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({child})")
    } else {
        write!(f, "{child}")
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Present(p) => write!(f, "{p} pr"),
            Self::Compare(p, op, v) => write!(f, "{p} {op} {v}"),
            Self::ValuePath(p, inner) => write!(f, "{p}[{inner}]"),
            Self::Not(inner) => write!(f, "not ({inner})"),
            Self::And(..) | Self::Or(..) => {
                // Long `a or b or c ...` chains are left-deep trees; walking the left spine in a
                // loop keeps recursion bounded by the parenthesis depth, not the chain length.
                let mut steps = Vec::new();
                let mut cur = self;
                let mut base_parens = false;
                while let Self::And(l, r) | Self::Or(l, r) = cur {
                    let strength = precedence(cur);
                    steps.push((strength, &**r));
                    cur = l;
                    if precedence(cur) < strength {
                        base_parens = true;
                        break;
                    }
                }
                write_operand(f, cur, base_parens)?;
                for (strength, right) in steps.into_iter().rev() {
                    f.write_str(if strength == 2 { " and " } else { " or " })?;
                    // Both operators are left-associative, so a right operand of the same
                    // strength keeps its parentheses: `a and (b and c)` is another tree.
                    write_operand(f, right, precedence(right) <= strength)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// Object member lookup as filters do it: the exact key first, then ASCII case-insensitively,
/// because attribute names are case-insensitive (RFC 7643 §2.1) even though Roster stores
/// canonical keys. Shared with the store's index of custom attributes, so both find the same
/// value.
#[must_use]
pub fn member<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    let obj = v.as_object()?;
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// RFC 7644 §3.4.2.2 `pr`: the value is neither null nor empty. Shared with the store's index
/// of custom attributes, so `pr` means the same in SQL and in memory.
#[must_use]
pub fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// The case folding used wherever a `caseExact: false` string is compared: in filters, in
/// uniqueness checks and in the store's indexed columns. One function, so that SQL and
/// in-memory evaluation agree.
#[must_use]
pub fn fold_case(s: &str) -> String {
    s.to_lowercase()
}

/// Parses an `xsd:dateTime` value as SCIM uses it (RFC 3339, RFC 7643 §2.3.5).
#[must_use]
pub fn parse_datetime(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Formats an instant the way Roster returns `dateTime` values: RFC 3339, UTC, with
/// millisecond precision (`2026-11-22T07:20:33.123Z`).
#[must_use]
pub fn format_datetime(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}
