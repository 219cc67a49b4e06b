//! SCIM error values (RFC 7644 §3.12).
//!
//! Every failure the protocol core reports is a [`ScimError`]: an HTTP status, an optional
//! `scimType` keyword and a `detail` sentence a person can act on. The HTTP layer turns it into
//! an `application/scim+json` body; nothing here knows about HTTP beyond the status number.

use serde_json::{json, Value};

/// The URN of the SCIM error message schema.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` keywords of RFC 7644 §3.12 table 9, plus `invalidCursor`/`expiredCursor` of
/// RFC 9865 §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScimType {
    /// The filter syntax was invalid or the filter is not supported.
    InvalidFilter,
    /// The filter yields too many results for the server to process.
    TooMany,
    /// One or more attribute values are already in use or reserved.
    Uniqueness,
    /// The attempted modification is not compatible with the attribute's mutability.
    Mutability,
    /// The request body structure was invalid or did not conform to the schema.
    InvalidSyntax,
    /// The "path" attribute was invalid or malformed.
    InvalidPath,
    /// The specified "path" did not yield an attribute or value that could be operated on.
    NoTarget,
    /// A required value was missing, or the value specified was not compatible.
    InvalidValue,
    /// The specified SCIM protocol version is not supported.
    InvalidVers,
    /// The request cannot be completed because it contains sensitive information.
    Sensitive,
    /// The cursor value is invalid (RFC 9865).
    InvalidCursor,
    /// The cursor has expired (RFC 9865).
    ExpiredCursor,
}

impl ScimType {
    /// The keyword as it appears on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::TooMany => "tooMany",
            Self::Uniqueness => "uniqueness",
            Self::Mutability => "mutability",
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::InvalidValue => "invalidValue",
            Self::InvalidVers => "invalidVers",
            Self::Sensitive => "sensitive",
            Self::InvalidCursor => "invalidCursor",
            Self::ExpiredCursor => "expiredCursor",
        }
    }
}

/// A SCIM error response (RFC 7644 §3.12).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}: {detail}", scim_type.map_or("-", ScimType::as_str))]
pub struct ScimError {
    /// The HTTP status code.
    pub status: u16,
    /// The SCIM detail error keyword, when one applies.
    pub scim_type: Option<ScimType>,
    /// A human-readable explanation of what went wrong and what to do about it.
    pub detail: String,
}

impl ScimError {
    /// An error with the given status, keyword and detail.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 with a `scimType`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }

    /// 400 `invalidFilter`.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }

    /// 400 `invalidSyntax`.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }

    /// 400 `invalidValue`.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }

    /// 400 `invalidPath`.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }

    /// 400 `noTarget`.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }

    /// 400 `mutability`.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::Mutability, detail)
    }

    /// 409 `uniqueness`.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }

    /// 404 without a keyword.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// 412: an `If-Match` precondition failed.
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }

    /// 500 without details; the cause is logged by the caller, never sent.
    #[must_use]
    pub fn internal() -> Self {
        Self::new(
            500,
            None,
            "internal server error; the cause has been logged on the server",
        )
    }

    /// The JSON body of this error.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(obj)) = (self.scim_type, body.as_object_mut()) {
            obj.insert("scimType".into(), Value::String(t.as_str().into()));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_string_status_and_keyword() {
        let e = ScimError::uniqueness("userName \"bjensen\" is already taken");
        let v = e.to_json();
        assert_eq!(v["status"], "409");
        assert_eq!(v["scimType"], "uniqueness");
        assert_eq!(v["schemas"][0], ERROR_SCHEMA);
    }

    #[test]
    fn body_omits_keyword_when_none() {
        let v = ScimError::not_found("no such user").to_json();
        assert!(v.get("scimType").is_none());
    }
}
