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
}

impl ApiError {
    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: message.into(),
        }
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
        }
    }

    /// 500 `internal`; the cause is logged, never sent.
    pub fn internal() -> Self {
        Self {
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
                status: StatusCode::CONFLICT,
                code: "conflict",
                message: format!("{what} already exists"),
            },
            StoreError::Stale => Self {
                status: StatusCode::CONFLICT,
                code: "conflict",
                message: "modified concurrently; retry".into(),
            },
            StoreError::Invalid(m) => Self::invalid(m),
            StoreError::TooMany { candidates, limit } => {
                Self::invalid(crate::error::too_many_detail(candidates, limit))
            }
            StoreError::GuardRefused(_) => Self {
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
        let body = json!({"error": {"code": self.code, "message": self.message}});
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
