//! The one place where errors become HTTP responses.
//!
//! Every failure under a SCIM base URL is answered with an RFC 7644 §3.12 body in
//! `application/scim+json`; a 5xx cause is logged here once and never sent to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use roster_store::app::{GuardState, GuardStatus};
use roster_store::StoreError;
use scim_proto::ScimError;

/// The media type of every SCIM response body.
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// Seconds a client is asked to wait (`Retry-After`) when the database is unavailable.
pub const RETRY_AFTER: &str = "5";

/// An error answered as a SCIM error response.
#[derive(Debug)]
pub struct HttpError {
    /// The SCIM error sent to the client.
    pub error: ScimError,
    /// Extra response headers (e.g. `WWW-Authenticate`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl HttpError {
    /// 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3).
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self {
            error: ScimError::new(401, None, detail),
            headers: vec![(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"roster\""),
            )],
        }
    }

    /// A plain SCIM error with the given status and no keyword.
    pub fn status(status: u16, detail: impl Into<String>) -> Self {
        ScimError::new(status, None, detail).into()
    }
}

impl From<ScimError> for HttpError {
    fn from(error: ScimError) -> Self {
        Self {
            error,
            headers: Vec::new(),
        }
    }
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ScimError::not_found("resource not found").into(),
            StoreError::Conflict(what) => {
                ScimError::uniqueness(format!("{what} is already in use in this tenant")).into()
            }
            StoreError::Stale => ScimError::precondition_failed(
                "the resource was modified concurrently; read it again and retry",
            )
            .into(),
            StoreError::Invalid(detail) => ScimError::invalid_value(detail).into(),
            StoreError::EmailTaken(value) => {
                ScimError::uniqueness(email_taken_detail(&value)).into()
            }
            StoreError::EmailDuplicates(d) => ScimError::uniqueness(format!(
                "{} emails are shared by several users of this tenant",
                d.total
            ))
            .into(),
            StoreError::TooMany { candidates, limit } => ScimError::bad_request(
                scim_proto::ScimType::TooMany,
                too_many_detail(candidates, limit),
            )
            .into(),
            StoreError::GuardRefused(status) => {
                tracing::warn!(
                    state = status.state.as_str(),
                    "mass-deprovisioning guard refused a deactivation or deletion"
                );
                guard_refusal(&status)
            }
            StoreError::Backend(cause) => {
                tracing::error!(error = %cause, "storage failure");
                ScimError::internal().into()
            }
            StoreError::Unavailable(cause) => {
                tracing::error!(error = %cause, "the database is unavailable");
                Self {
                    error: ScimError::new(
                        503,
                        None,
                        "the directory's database cannot be reached right now; nothing was \
                         changed; retry the request later",
                    ),
                    headers: vec![(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER))],
                }
            }
        }
    }
}

/// The `Retry-After` of a mass-deprovisioning guard's refusal, in seconds: long enough not to hammer the server while an
/// operator looks, short enough that a confirmed batch resumes soon.
pub const GUARD_RETRY_AFTER_SECS: u64 = 300;

/// The SCIM 503 of a mass-deprovisioning guard's refusal (see [`crate::ops::guard`]).
#[must_use]
pub fn guard_refusal(s: &GuardStatus) -> HttpError {
    let g = &s.settings;
    let detail = if s.state == GuardState::Rejected {
        format!(
            "an operator of this app rejected a mass deactivation from this identity provider \
             (the mass-deprovisioning guard); deactivations and deletions are refused until \
             none has been sent for {} minutes. Check the identity provider's assignments and \
             group rules",
            g.window_minutes
        )
    } else {
        format!(
            "the mass-deprovisioning guard is holding deactivations and deletions: more than \
             {}% of the {} active users (and more than {}) were to lose access within {} \
             minutes. An operator of this app must confirm or reject the batch; retry later",
            g.max_percent, s.active_users, g.min_count, g.window_minutes
        )
    };
    let mut e = HttpError::from(ScimError::new(503, None, detail));
    e.headers.push((
        header::RETRY_AFTER,
        HeaderValue::from(GUARD_RETRY_AFTER_SECS),
    ));
    e
}

/// The start of the detail of a write refused by the tenant's `email_uniqueness` (the
/// provisioning log's hint recognises it).
pub const EMAIL_TAKEN_PREFIX: &str = "emails: \"";

/// The detail of a write refused by the tenant's `email_uniqueness`: it names the attribute and
/// the value.
#[must_use]
pub fn email_taken_detail(value: &str) -> String {
    format!(
        "{EMAIL_TAKEN_PREFIX}{value}\" is already the email of another user of this tenant \
         (emails are compared case-insensitively, and this tenant requires them to be unique)"
    )
}

/// What to do about a filter or sort that would evaluate too many resources in memory.
#[must_use]
pub fn too_many_detail(candidates: u64, limit: u64) -> String {
    format!(
        "this filter or sortBy is answered by evaluating {candidates} resources in memory, more \
         than this server's limit of {limit}: narrow it with a condition on an indexed \
         attribute (userName, externalId, emails.value, displayName, active, id, meta.created, \
         meta.lastModified), e.g. `userName sw \"a\" and title eq \"x\"`, and sort by one of \
         them"
    )
}

/// Builds a response with a SCIM JSON body.
pub fn scim_json(status: StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        )],
        bytes,
    )
        .into_response()
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = scim_json(status, &self.error.to_json());
        for (k, v) in self.headers {
            resp.headers_mut().insert(k, v);
        }
        // For the provisioning log, which records the scimType and detail of failures.
        resp.extensions_mut().insert(self.error);
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_database_is_a_503_with_retry_after() {
        let e = HttpError::from(StoreError::Unavailable("connection refused".into()));
        assert_eq!(e.error.status, 503);
        assert!(
            e.error.detail.contains("nothing was changed"),
            "{}",
            e.error.detail
        );
        assert!(e
            .headers
            .iter()
            .any(|(k, v)| *k == header::RETRY_AFTER && v == RETRY_AFTER));
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], RETRY_AFTER);
    }
}
