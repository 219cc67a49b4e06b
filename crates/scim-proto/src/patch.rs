//! PATCH (RFC 7644 §3.5.2): parsing a PatchOp request and applying it to a stored document.
//!
//! Operations are applied in order to a copy of the document; the first failure discards the
//! copy, so a request is applied wholly or not at all. Group `members` are never part of the
//! document: operations on them come back as [`MemberChange`]s for the store to apply as rows.

use serde_json::Value;

use crate::error::ScimError;
use crate::filter::{Filter, PatchPath};
use crate::resource::MemberRef;
use crate::schema::ResourceKind;

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
    /// Canonical names of the top-level attributes that were touched.
    pub changed: Vec<String>,
}

/// Parses a PatchOp request body.
///
/// # Errors
/// 400 `invalidSyntax` when the body is not a PatchOp message; 400 `invalidPath` for a bad path.
pub fn parse_patch(_body: &Value) -> Result<Vec<PatchOp>, ScimError> {
    Err(ScimError::invalid_syntax("not implemented yet"))
}

/// Applies operations to `doc` (a stored document) atomically.
///
/// # Errors
/// `invalidPath`, `noTarget`, `invalidValue`, `mutability` per RFC 7644 §3.5.2; on error `doc`
/// is unchanged.
pub fn apply_patch(
    _kind: ResourceKind,
    _doc: &mut Value,
    _ops: &[PatchOp],
) -> Result<PatchEffects, ScimError> {
    Err(ScimError::invalid_syntax("not implemented yet"))
}
