//! The SCIM filter grammar (RFC 7644 §3.4.2.2), its AST, and PATCH paths (RFC 7644 §3.5.2).
//!
//! `parse_filter` turns text into a [`Filter`]; `Filter::validate` resolves every attribute path
//! against a resource type (case-insensitive names, schema-URN-qualified paths, sub-attributes)
//! and yields a [`ValidFilter`], which can be evaluated against a resource document with
//! [`ValidFilter::matches`] and translated to SQL by the store. `Display` prints a filter so
//! that parsing the output yields the same AST.

use std::fmt;

use serde_json::Value;

use crate::error::ScimError;
use crate::schema::ResourceKind;

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
}

impl ValidFilter {
    /// The resource type this filter was validated against.
    #[must_use]
    pub fn kind(&self) -> ResourceKind {
        self.kind
    }

    /// The canonical filter.
    #[must_use]
    pub fn filter(&self) -> &Filter {
        &self.filter
    }
}

/// Parses a filter (RFC 7644 §3.4.2.2).
///
/// # Errors
/// 400 `invalidFilter` with a detail naming the position and what was expected.
pub fn parse_filter(_input: &str) -> Result<Filter, ScimError> {
    Err(ScimError::invalid_filter("filters are not implemented yet"))
}

/// Parses a PATCH path (RFC 7644 §3.5.2).
///
/// # Errors
/// 400 `invalidPath` with a detail naming the position and what was expected.
pub fn parse_path(_input: &str) -> Result<PatchPath, ScimError> {
    Err(ScimError::invalid_path("paths are not implemented yet"))
}

impl Filter {
    /// Resolves every attribute path against `kind`'s schemas.
    ///
    /// # Errors
    /// 400 `invalidFilter` for unknown attributes or operators that do not fit the type.
    pub fn validate(&self, kind: ResourceKind) -> Result<ValidFilter, ScimError> {
        Ok(ValidFilter {
            kind,
            filter: self.clone(),
        })
    }
}

impl ValidFilter {
    /// Whether the resource document matches.
    #[must_use]
    pub fn matches(&self, _doc: &Value) -> bool {
        false
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
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

/// Validates the inner filter of a value path (`members[value eq "x"]`) relative to the
/// complex attribute `outer`; the result's `matches` evaluates one element of that attribute.
///
/// # Errors
/// 400 `invalidFilter` for unknown sub-attributes.
pub fn validate_value_filter(
    filter: &Filter,
    kind: ResourceKind,
    _outer: &AttrPath,
) -> Result<ValidFilter, ScimError> {
    Ok(ValidFilter {
        kind,
        filter: filter.clone(),
    })
}
