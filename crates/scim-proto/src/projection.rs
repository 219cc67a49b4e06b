//! Attribute projection: `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9),
//! honouring each attribute's `returned` characteristic (RFC 7643 §2.2).

use serde_json::Value;

use crate::error::ScimError;
use crate::schema::ResourceKind;

/// A parsed `attributes` / `excludedAttributes` pair.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Projection {
    /// Canonical paths asked for with `attributes` (`urn:…:attr[.sub]` or `attr[.sub]`).
    pub attributes: Vec<String>,
    /// Canonical paths excluded with `excludedAttributes`.
    pub excluded: Vec<String>,
}

impl Projection {
    /// Parses the two comma-separated parameters for resources of `kind`. Names Roster does not
    /// know are ignored.
    ///
    /// # Errors
    /// 400 `invalidValue` if both parameters are given (RFC 7644 §3.9 allows only one).
    pub fn parse(
        _kind: ResourceKind,
        _attributes: Option<&str>,
        _excluded: Option<&str>,
    ) -> Result<Self, ScimError> {
        Ok(Self::default())
    }

    /// Whether the top-level attribute `name` (canonical, e.g. `members`, `groups`) would be
    /// returned, so that the server can skip loading it.
    #[must_use]
    pub fn includes(&self, _kind: ResourceKind, _name: &str) -> bool {
        true
    }

    /// Applies the projection to a full resource representation.
    #[must_use]
    pub fn apply(&self, _kind: ResourceKind, doc: &Value) -> Value {
        doc.clone()
    }
}
