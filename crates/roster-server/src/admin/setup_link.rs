//! `POST /api/v1/tenants/{tenant}/setup-link`: a one-time, time-limited console link for a
//! tenant's IT admin (the same function `roster tenant setup-link` calls); `DELETE` ends the
//! tenant's unused links and the sessions opened with one (`roster tenant setup-link revoke`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{fmt_time, require_tenant, AdminAuth, ApiError, ApiPath, ApiQuery};
use crate::ops::setup_links;
use crate::AppState;

/// Query parameters of the endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupLinkParams {
    /// Lifetime such as `7d`, `12h`, `30m` (default 7 days, at most 90 days).
    pub expires: Option<String>,
}

/// Creates the link and returns its URL (shown once: only its hash is stored).
///
/// # Errors
/// 400 for a bad `expires`, 404 for an unknown tenant.
pub async fn create_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(p): ApiQuery<SetupLinkParams>,
) -> Result<impl IntoResponse, ApiError> {
    require_tenant(&state, &tenant).await?;
    let ttl = match p.expires.as_deref() {
        Some(s) => setup_links::parse_ttl(s).map_err(ApiError::invalid)?,
        None => setup_links::DEFAULT_SETUP_LINK_TTL,
    };
    let now = state.clock.now();
    let actor = auth.actor();
    let (token, expires_at) =
        setup_links::create_setup_link(state.store.as_ref(), now, &tenant, ttl, &actor, &actor)
            .await?;
    let url = setup_links::setup_url(&crate::urls::origin(&state), &token);
    Ok((
        StatusCode::CREATED,
        Json(json!({"tenant": tenant, "url": url, "expires_at": fmt_time(expires_at)})),
    ))
}

/// Ends the tenant's unused setup links and every console session opened with one.
///
/// # Errors
/// 404 for an unknown tenant.
pub async fn revoke_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let now = state.clock.now();
    let (links, sessions) =
        setup_links::revoke(state.store.as_ref(), now, &tenant, &auth.actor()).await?;
    Ok(Json(
        json!({"tenant": tenant, "links_revoked": links, "sessions_ended": sessions}),
    ))
}
