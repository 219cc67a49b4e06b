//! A tenant's SCIM bearer tokens through the admin API (`/api/v1/tenants/{tenant}/tokens…`):
//! list, create, rotate, revoke. The operations and their rules are
//! [`crate::ops::tokens`]'s (which also audit them); this module parses the requests and shows
//! tokens as JSON.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use roster_store::TokenRecord;
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{fmt_time, AdminAuth, ApiError, ApiPath};
use crate::ops::tokens::{create, list, revoke, rotate, status, MAX_LIVE_TOKENS};
pub use crate::tokens::IssuedToken;
use crate::urls::base_url;
use crate::AppState;

/// How the API shows a token: never its secret nor its hash.
#[must_use]
pub fn token_json(t: &TokenRecord, now: OffsetDateTime) -> Value {
    json!({
        "prefix": t.prefix,
        "status": status(t, now),
        "created_at": fmt_time(t.created_at),
        "expires_at": fmt_time(t.expires_at),
        "last_used_at": t.last_used_at.map(fmt_time),
        "revoked_at": t.revoked_at.map(fmt_time),
    })
}

/// How the API shows a token just issued: the secret, this once, with the base URL to
/// configure in the identity provider.
#[must_use]
pub fn issued_json(i: &IssuedToken, scim_base_url: &str) -> Value {
    json!({
        "tenant": i.record.tenant_id,
        "scim_base_url": scim_base_url,
        "token": i.secret,
        "prefix": i.record.prefix,
        "created_at": fmt_time(i.record.created_at),
        "expires_at": fmt_time(i.record.expires_at),
    })
}

/// `GET /api/v1/tenants/{tenant}/tokens`
///
/// # Errors
/// 401, 404.
pub async fn list_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let tokens = list(state.store.as_ref(), &tenant).await?;
    let now = state.clock.now();
    Ok(Json(json!({
        "tokens": tokens.iter().map(|t| token_json(t, now)).collect::<Vec<_>>(),
        "max_live": MAX_LIVE_TOKENS,
    })))
}

/// `POST /api/v1/tenants/{tenant}/tokens`: 201 with the new token, shown this once.
///
/// # Errors
/// 401, 404, 409.
pub async fn create_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    headers: HeaderMap,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let issued = create(state.store.as_ref(), now, &tenant, None, &auth.actor()).await?;
    let body = issued_json(&issued, &base_url(&state, &headers, &tenant));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Body of `POST /tenants/{tenant}/tokens/rotate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// Replace only this token (default: every live token).
    #[serde(default, deserialize_with = "super::present")]
    pub prefix: Option<String>,
}

/// `POST /api/v1/tenants/{tenant}/tokens/rotate`: the new token, shown this once; the
/// replaced ones stop working at once.
///
/// # Errors
/// 400, 401, 404, 409.
pub async fn rotate_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    headers: HeaderMap,
    ApiPath(tenant): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    // The body is optional: none rotates every live token.
    let req: Rotate = super::optional_json(&body)?;
    let now = state.clock.now();
    let (issued, revoked) = rotate(
        state.store.as_ref(),
        now,
        &tenant,
        req.prefix.as_deref(),
        None,
        &auth.actor(),
    )
    .await?;
    let mut body = issued_json(&issued, &base_url(&state, &headers, &tenant));
    body["revoked"] = json!(revoked);
    Ok(Json(body))
}

/// `DELETE /api/v1/tenants/{tenant}/tokens/{prefix}`: 204; the token stops working at once.
///
/// # Errors
/// 401, 404.
pub async fn revoke_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath((tenant, prefix)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now();
    revoke(state.store.as_ref(), now, &tenant, &prefix, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_status_and_json() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let mut rec = TokenRecord {
            prefix: "rsct_AbCd1234".into(),
            tenant_id: "acme".into(),
            hash: "secret-hash".into(),
            created_at: t0,
            expires_at: t0 + time::Duration::days(1),
            last_used_at: None,
            revoked_at: None,
        };
        assert_eq!(status(&rec, t0), "active");
        assert_eq!(status(&rec, t0 + time::Duration::days(1)), "expired");
        let v = token_json(&rec, t0);
        assert!(!v.to_string().contains("secret-hash"));
        assert_eq!(v["last_used_at"], Value::Null);
        rec.revoked_at = Some(t0);
        assert_eq!(status(&rec, t0), "revoked");
    }
}
