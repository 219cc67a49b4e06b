//! The mass-deprovisioning guard's admin API (`/tenants/{tenant}/deprovision-guard`,
//! `…/confirm`, `…/reject`); the guard itself and the decision are [`crate::ops::guard`]'s.

use axum::extract::State;
use axum::Json;
use roster_store::app::{GuardDecision, GuardStatus};
use serde_json::{json, Value};

use super::{fmt_time, require_tenant, AdminAuth, ApiError, ApiPath};
use crate::ops::guard::decide;
use crate::AppState;

/// How the API and `roster guard status --json` show a guard.
#[must_use]
pub fn status_json(tenant: &str, s: &GuardStatus) -> Value {
    json!({
        "tenant": tenant,
        "enabled": s.settings.enabled,
        "state": s.state.as_str(),
        "settings": {
            "max_percent": s.settings.max_percent,
            "min_count": s.settings.min_count,
            "window_minutes": s.settings.window_minutes,
        },
        "window": {
            "count": s.window_count,
            "started_at": s.window_start.map(fmt_time),
            "active_users": s.active_users,
            "threshold": s.threshold,
        },
        "tripped_at": s.tripped_at.map(fmt_time),
        "decided_at": s.decided_at.map(fmt_time),
        "decided_by": s.decided_by,
        "until": s.until.map(fmt_time),
        "trips": s.trips,
        "held": {
            "count": s.held_count,
            "operations": s.held.iter().map(|h| json!({
                "user_id": h.user_id,
                "user_name": h.user_name,
                "operation": h.operation,
                "first_at": fmt_time(h.first_at),
                "last_at": fmt_time(h.last_at),
                "attempts": h.attempts,
            })).collect::<Vec<_>>(),
        },
    })
}

/// `GET /api/v1/tenants/{tenant}/deprovision-guard`
///
/// # Errors
/// 401, 404.
pub async fn status_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let s = state.store.guard_status(&tenant, state.clock.now()).await?;
    Ok(Json(status_json(&tenant, &s)))
}

/// `POST /api/v1/tenants/{tenant}/deprovision-guard/confirm`
///
/// # Errors
/// 401, 404, 409 (not tripped).
pub async fn confirm_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let s = decide(&state, &tenant, GuardDecision::Confirm, &auth.actor()).await?;
    Ok(Json(status_json(&tenant, &s)))
}

/// `POST /api/v1/tenants/{tenant}/deprovision-guard/reject`
///
/// # Errors
/// 401, 404, 409 (not tripped).
pub async fn reject_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let s = decide(&state, &tenant, GuardDecision::Reject, &auth.actor()).await?;
    Ok(Json(status_json(&tenant, &s)))
}
