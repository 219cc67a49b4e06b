//! The first-sync review's admin API (`/tenants/{tenant}/first-sync`, `…/approve`,
//! `…/discard`); what a review is, and the decision, are [`crate::ops::first_sync`]'s.

use axum::extract::State;
use axum::Json;
use roster_store::{ReviewOutcome, ReviewStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{fmt_time, require_tenant, AdminAuth, ApiError, ApiPath, ApiQuery};
use crate::ops::first_sync::{decide, Decision};
use crate::AppState;

/// Users listed per page unless asked otherwise.
pub const DEFAULT_LISTED: u64 = 100;

/// How the API and `roster tenant first-sync --json` show a review (or its absence).
#[must_use]
pub fn status_json(tenant: &str, s: Option<&ReviewStatus>) -> Value {
    let Some(s) = s else {
        return json!({"tenant": tenant, "open": false});
    };
    json!({
        "tenant": tenant,
        "open": true,
        "held_since": s.held_since.map(fmt_time),
        "held_events": s.held_events,
        "summary": s.summary,
        "users_total": s.users_total,
        "users": s.users,
        "next_after": s.next_after,
    })
}

/// How an outcome is shown.
#[must_use]
pub fn outcome_json(tenant: &str, decision: Decision, o: &ReviewOutcome) -> Value {
    json!({
        "tenant": tenant,
        "decision": match decision {
            Decision::Approve => "approved",
            Decision::Discard => "discarded",
        },
        "released_events": o.released,
        "dropped_events": o.dropped,
        "deleted_resources": o.deleted,
        "restored_resources": o.restored,
    })
}

/// Query of `GET …/first-sync`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// List the users after this id (`next_after` of the previous page).
    pub after: Option<String>,
    /// Users per page (1–1000, default 100).
    pub limit: Option<u64>,
}

/// `GET /api/v1/tenants/{tenant}/first-sync`
///
/// # Errors
/// 401, 404, 400 (limit).
pub async fn status_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let max = roster_store::REVIEW_MAX_LISTED;
    let limit = match q.limit {
        None => DEFAULT_LISTED,
        Some(n) if (1..=max).contains(&n) => n,
        Some(n) => return Err(ApiError::invalid(format!("limit must be 1–{max}, not {n}"))),
    };
    let after = q.after.as_deref().filter(|a| !a.is_empty());
    let s = state.store.review_status(&tenant, after, limit).await?;
    Ok(Json(status_json(&tenant, s.as_ref())))
}

async fn decide_handler(
    state: &AppState,
    auth: &AdminAuth,
    tenant: &str,
    decision: Decision,
) -> Result<Json<Value>, ApiError> {
    require_tenant(state, tenant).await?;
    let done = decide(state, tenant, decision, &auth.actor()).await?;
    Ok(Json(outcome_json(tenant, decision, &done)))
}

/// `POST /api/v1/tenants/{tenant}/first-sync/approve`
///
/// # Errors
/// 401, 404, 409 (no review open).
pub async fn approve_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    decide_handler(&state, &auth, &tenant, Decision::Approve).await
}

/// `POST /api/v1/tenants/{tenant}/first-sync/discard`
///
/// # Errors
/// 401, 404, 409 (no review open).
pub async fn discard_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    decide_handler(&state, &auth, &tenant, Decision::Discard).await
}
