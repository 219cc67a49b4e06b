//! Admin API errors: JSON `{"error": {"code": "...", "message": "..."}}` with a matching HTTP
//! status. (SCIM errors are for SCIM clients only; the admin API has its own, simpler shape,
//! documented in `docs/openapi.json` as `Error`.)

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use roster_store::StoreError;
use serde_json::json;

use crate::ops::OpError;

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

/// The one place the admin API turns an operation's refusal into a status and a body.
impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::NotFound { message } => Self::not_found(message),
            e @ OpError::Invalid { .. } => Self::invalid(e.to_string()),
            OpError::Conflict { message, details } => Self {
                details,
                ..super::conflict(message)
            },
            OpError::Forbidden { message } => Self {
                details: None,
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message,
            },
            OpError::Store(StoreError::GuardRefused(_)) => Self {
                details: None,
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "guard_refused",
                message: "the mass-deprovisioning guard is holding deactivations; an operator \
                          must confirm or reject the batch"
                    .into(),
            },
            OpError::Store(StoreError::Unavailable(cause)) => {
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
            OpError::Store(StoreError::Backend(cause)) => {
                tracing::error!(error = %cause, "storage failure");
                Self::internal()
            }
            // The store's refusals have their words in `OpError::from`.
            OpError::Store(other) => OpError::from(other).into(),
        }
    }
}

/// The admin API's own reads call the store directly; their refusals read as an operation's.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        OpError::from(e).into()
    }
}

impl From<crate::secretbox::SecretError> for ApiError {
    fn from(e: crate::secretbox::SecretError) -> Self {
        use crate::secretbox::SecretError;
        match e {
            // The request is fine; this server cannot store a secret until it has a key.
            SecretError::NoKey => super::conflict(e.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::FieldError;
    use roster_store::app::{GuardState, GuardStatus};
    use roster_store::{DeprovisionGuard, EmailDuplicate, EmailDuplicates, EmailUniqueness};
    use serde_json::Value;

    /// What a client receives for `e`: the status, the `Retry-After` header, and the body.
    async fn sent(e: OpError) -> (StatusCode, Option<String>, Value) {
        let resp = ApiError::from(e).into_response();
        let status = resp.status();
        let retry = resp
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, retry, serde_json::from_slice(&bytes).unwrap())
    }

    fn guard_status() -> GuardStatus {
        GuardStatus {
            settings: DeprovisionGuard::default(),
            state: GuardState::Tripped,
            window_count: 0,
            window_start: None,
            active_users: 0,
            threshold: 0,
            tripped_at: None,
            decided_at: None,
            decided_by: None,
            until: None,
            trips: 1,
            held_count: 0,
            held: vec![],
        }
    }

    #[tokio::test]
    async fn each_operation_error_has_its_status_and_body() {
        let (s, _, b) = sent(OpError::no_tenant("acme")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(
            b,
            json!({"error": {"code": "not_found", "message": "no tenant \"acme\""}})
        );

        let two = OpError::Invalid {
            errors: vec![
                FieldError {
                    field: Some("name".into()),
                    message: "name must be 1–200 characters".into(),
                },
                FieldError {
                    field: Some("idp".into()),
                    message: "idp must be one of okta, entra".into(),
                },
            ],
        };
        let (s, _, b) = sent(two).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(b["error"]["code"], "invalid_request");
        assert_eq!(
            b["error"]["message"],
            "name must be 1–200 characters; idp must be one of okta, entra"
        );

        let (s, _, b) = sent(OpError::conflict(
            "a tenant with id \"acme\" already exists",
        ))
        .await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(
            b,
            json!({"error": {"code": "conflict", "message": "a tenant with id \"acme\" already exists"}})
        );

        let (s, _, b) = sent(OpError::Forbidden {
            message: "not yours".into(),
        })
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(b["error"]["code"], "forbidden");

        let (s, _, b) = sent(OpError::Store(StoreError::GuardRefused(Box::new(
            guard_status(),
        ))))
        .await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(b["error"]["code"], "guard_refused");

        let (s, retry, b) = sent(OpError::Store(StoreError::Unavailable("down".into()))).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(b["error"]["code"], "unavailable");
        assert_eq!(retry.as_deref(), Some(crate::error::RETRY_AFTER));

        let (s, _, b) = sent(OpError::Store(StoreError::Backend("disk on fire".into()))).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(b["error"]["code"], "internal");
        assert!(
            !b.to_string().contains("fire"),
            "the cause is logged, not sent"
        );
    }

    #[tokio::test]
    async fn the_stores_refusals_keep_their_words() {
        // Built by hand rather than through `OpError::from`: still worded as a conflict.
        let (s, _, b) = sent(OpError::Store(StoreError::Conflict("userName"))).await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(b["error"]["message"], "userName already exists");

        let d = EmailDuplicates {
            mode: EmailUniqueness::Primary,
            total: 1,
            shown: vec![EmailDuplicate {
                email: "a@x.test".into(),
                users: vec![("u1".into(), "a".into()), ("u2".into(), "b".into())],
            }],
        };
        let (s, _, b) = sent(StoreError::EmailDuplicates(Box::new(d)).into()).await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(b["error"]["details"]["total"], 1);
        assert_eq!(b["error"]["details"]["duplicates"][0]["email"], "a@x.test");
        assert!(b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("email_uniqueness cannot be set to primary"));

        let api = ApiError::from(StoreError::Stale);
        assert_eq!(
            (api.status, api.code, api.message.as_str()),
            (
                StatusCode::CONFLICT,
                "conflict",
                "modified concurrently; retry"
            )
        );
        let api = ApiError::from(StoreError::NotFound);
        assert_eq!(
            (api.status, api.message.as_str()),
            (StatusCode::NOT_FOUND, "not found")
        );
    }
}
