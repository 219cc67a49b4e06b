//! Validation and normalisation of resource documents on create and replace (RFC 7643 §2,
//! RFC 7644 §3.3, §3.5.1).
//!
//! Input JSON becomes the *stored document*: canonical attribute names, extension attributes
//! under their URN key, `schemas` listing the core URN and the extensions present; `id`,
//! `meta`, readOnly attributes and unknown attributes dropped; `password` and Group `members`
//! taken out (the store keeps them elsewhere). The stored document is what is returned, once
//! the server adds `id`, `meta`, `members` or `groups`.

use serde_json::Value;

use crate::error::ScimError;
use crate::schema::ResourceKind;

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
    /// Group members, when the body carried `members` (`Some(vec![])` for an empty list).
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
    _kind: ResourceKind,
    _body: &Value,
    _existing: Option<&Value>,
) -> Result<Normalized, ScimError> {
    Err(ScimError::invalid_syntax("not implemented yet"))
}
