//! Admin API errors: JSON `{"error": {"code": "...", "message": "..."}}` with a matching HTTP
//! status. (SCIM errors are for SCIM clients only; the admin API has its own, simpler shape,
//! documented in `docs/openapi.json` as `Error`.)

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use roster_store::StoreError;
use serde_json::json;

/// An admin API error.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code: `unauthorized`, `not_found`, `invalid_request`,
    /// `conflict`, `internal`.
    pub code: &'static str,
    /// What went wrong, in words.
    pub message: String,
    /// What a program needs to act on the error beyond the words (for example the emails that
    /// keep `email_uniqueness` from being turned on); absent from most errors.
    pub details: Option<Box<serde_json::Value>>,
}

impl ApiError {
    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            details: None,
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: message.into(),
        }
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            details: None,
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            details: None,
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
        }
    }

    /// 500 `internal`; the cause is logged, never sent.
    pub fn internal() -> Self {
        Self {
            details: None,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal error; see the server log".into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("not found"),
            StoreError::Conflict(what) => Self {
                details: None,
                status: StatusCode::CONFLICT,
                code: "conflict",
                message: format!("{what} already exists"),
            },
            StoreError::Stale => Self {
                details: None,
                status: StatusCode::CONFLICT,
                code: "conflict",
                message: "modified concurrently; retry".into(),
            },
            StoreError::Invalid(m) => Self::invalid(m),
            StoreError::EmailTaken(value) => Self {
                details: None,
                status: StatusCode::CONFLICT,
                code: "conflict",
                message: format!(
                    "the email \"{value}\" is already the email of another user of this tenant, \
                     and the tenant requires unique emails (setting email_uniqueness)"
                ),
            },
            StoreError::EmailDuplicates(d) => Self {
                details: Some(Box::new(email_duplicates_details(&d))),
                status: StatusCode::CONFLICT,
                code: "conflict",
                message: email_duplicates_message(&d),
            },
            StoreError::TooMany { candidates, limit } => {
                Self::invalid(crate::error::too_many_detail(candidates, limit))
            }
            StoreError::GuardRefused(_) => Self {
                details: None,
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "guard_refused",
                message: "the mass-deprovisioning guard is holding deactivations; an operator \
                          must confirm or reject the batch"
                    .into(),
            },
            StoreError::Backend(cause) => {
                tracing::error!(error = %cause, "storage failure");
                Self::internal()
            }
            StoreError::Unavailable(cause) => {
                tracing::error!(error = %cause, "the database is unavailable");
                Self {
                    details: None,
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "unavailable",
                    message: "the database cannot be reached right now; nothing was changed; \
                              retry later"
                        .into(),
                }
            }
        }
    }
}

/// The shared emails as data: `{"total": n, "duplicates": [{"email", "users": [{"id",
/// "user_name"}]}]}` (the first [`roster_store::EmailDuplicates::SHOWN`] emails).
#[must_use]
pub fn email_duplicates_details(d: &roster_store::EmailDuplicates) -> serde_json::Value {
    let duplicates: Vec<serde_json::Value> = d
        .shown
        .iter()
        .map(|dup| {
            let users: Vec<serde_json::Value> = dup
                .users
                .iter()
                .map(|(id, name)| json!({"id": id, "user_name": name}))
                .collect();
            json!({"email": dup.email, "users": users})
        })
        .collect();
    json!({"total": d.total, "duplicates": duplicates})
}

/// Why `email_uniqueness` cannot be turned on: the shared emails, each with its users.
#[must_use]
pub fn email_duplicates_message(d: &roster_store::EmailDuplicates) -> String {
    let list: Vec<String> = d
        .shown
        .iter()
        .map(|dup| {
            let users: Vec<String> = dup
                .users
                .iter()
                .map(|(id, name)| {
                    if name.is_empty() {
                        id.clone()
                    } else {
                        format!("{name} ({id})")
                    }
                })
                .collect();
            format!("\"{}\": {}", dup.email, users.join(", "))
        })
        .collect();
    let more = usize::try_from(d.total)
        .unwrap_or(usize::MAX)
        .saturating_sub(d.shown.len());
    let more = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    format!(
        "email_uniqueness cannot be set to {}: {} email{} {} shared by several users of this \
         tenant (active, deactivated or app users), compared case-insensitively: {}{more}. \
         Give each user its own email (in the identity provider, or through the app API for app \
         users), or deprovision the duplicates, then try again",
        d.mode.as_str(),
        d.total,
        if d.total == 1 { "" } else { "s" },
        if d.total == 1 { "is" } else { "are" },
        list.join("; ")
    )
}

impl From<crate::secretbox::SecretError> for ApiError {
    fn from(e: crate::secretbox::SecretError) -> Self {
        use crate::secretbox::SecretError;
        match e {
            // The request is fine; this server cannot store a secret until it has a key.
            SecretError::NoKey => Self {
                details: None,
                status: StatusCode::CONFLICT,
                code: "conflict",
                message: e.to_string(),
            },
            SecretError::UnknownKey { .. } | SecretError::Damaged { .. } | SecretError::Random => {
                tracing::error!(error = %e, "webhook secret");
                Self::internal()
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        Self::invalid(format!("invalid JSON body: {}", e.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::invalid(format!("invalid query string: {}", e.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        Self::not_found(format!("no such resource: {}", e.body_text()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(d) = self.details {
            error["details"] = *d;
        }
        let body = json!({ "error": error });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.code == "unavailable" {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(crate::error::RETRY_AFTER),
            );
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"roster-admin\""),
            );
        }
        resp
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}
