//! The mass-deprovisioning guard: its admission check on the SCIM write path, and its admin API
//! (`/tenants/{tenant}/deprovision-guard`, `…/confirm`, `…/reject`), which `roster guard` shares.
//!
//! The guard counts SCIM deactivations (`active` true → false) and deletions of active users
//! per tenant in a sliding window (minute buckets in the store, so a check reads at most
//! `window_minutes` rows, and the tenant's active users are counted once per window). When the
//! next one would exceed both `max_percent` of the users active when the window opened and
//! `min_count`, it trips: that one and every later one is refused with SCIM 503 and
//! `Retry-After`, `tenant.deprovision_guard_tripped` is emitted, and the refused operations are
//! listed until an operator decides. Confirm: they (and the rest of the batch) pass when the
//! identity provider retries, until the batch has been quiet for a window. Reject: they keep
//! being refused until the identity provider has stopped sending them for a window; then the
//! guard re-arms with fresh counts. Users created after the window opened are not counted:
//! they were not among the users the share is computed from (so create-then-delete churn, such
//! as a conformance test run, does not trip it).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::Json;
use roster_store::app::{GuardDecision, GuardOperation, GuardState, GuardStatus, GuardSubject};
use roster_store::StoredResource;
use scim_proto::schema::ResourceKind;
use scim_proto::ScimError;
use serde_json::{json, Value};

use super::{audit, decision_error, fmt_time, require_tenant, AdminAuth, ApiError, ApiPath};
use crate::error::HttpError;
use crate::AppState;

/// The `Retry-After` of a refusal, in seconds: long enough not to hammer the server while an
/// operator looks, short enough that a confirmed batch resumes soon.
pub const RETRY_AFTER_SECS: u64 = 300;

/// A User without `active` counts as active (docs/scim.md).
fn is_active(doc: &Value) -> bool {
    doc.get("active").and_then(Value::as_bool) != Some(false)
}

/// What the guard must admit for a SCIM replace or patch of `cur` into `new_doc`: `Some` when
/// it deactivates an active User. The store admits it in the update's own transaction
/// ([`roster_store::ResourceUpdate::guard`]), so a retried update is counted once and a
/// refused one answers [`refusal`] through [`roster_store::StoreError::GuardRefused`].
#[must_use]
pub fn change_subject(cur: &StoredResource, new_doc: &Value) -> Option<GuardSubject> {
    if cur.kind != ResourceKind::User || !is_active(&cur.doc) || is_active(new_doc) {
        return None;
    }
    Some(subject(cur, GuardOperation::Deactivate))
}

fn subject(cur: &StoredResource, operation: GuardOperation) -> GuardSubject {
    GuardSubject {
        user_id: cur.id.clone(),
        user_name: cur
            .doc
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        created: cur.created,
        operation,
    }
}

/// What the guard must admit for a SCIM delete of `cur`: `Some` for an active User. The store
/// admits it in the delete's own transaction ([`roster_store::Deletion::guard`]).
#[must_use]
pub fn delete_subject(cur: &StoredResource) -> Option<GuardSubject> {
    if cur.kind != ResourceKind::User || !is_active(&cur.doc) {
        return None;
    }
    Some(subject(cur, GuardOperation::Delete))
}

/// The SCIM 503 of a refusal.
#[must_use]
pub fn refusal(s: &GuardStatus) -> HttpError {
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
    e.headers
        .push((header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS)));
    e
}

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

/// Records an operator's decision; shared by the API and `roster guard confirm|reject`.
///
/// # Errors
/// 404 for an unknown tenant; 409 when the guard is not tripped.
pub async fn decide(
    state: &AppState,
    tenant: &str,
    decision: GuardDecision,
    actor: &str,
) -> Result<GuardStatus, ApiError> {
    let now = state.clock.now();
    let status = state
        .store
        .guard_decide(tenant, decision, actor, now)
        .await
        .map_err(|e| decision_error(tenant, e))?;
    let action = match decision {
        GuardDecision::Confirm => "deprovision_guard.confirm",
        GuardDecision::Reject => "deprovision_guard.reject",
    };
    audit(
        state.store.as_ref(),
        now,
        actor,
        action,
        Some(tenant),
        Some(tenant),
        json!({"held": status.held_count}),
    )
    .await;
    Ok(status)
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
