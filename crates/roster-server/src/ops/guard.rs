//! The mass-deprovisioning guard: what it must admit on the SCIM write path, and an operator's
//! decision on a tripped guard, which the admin API, the console and `roster guard` share.
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

use roster_store::app::{GuardDecision, GuardOperation, GuardStatus, GuardSubject};
use roster_store::StoredResource;
use scim_proto::schema::ResourceKind;
use serde_json::{json, Value};

use super::error::decision_error;
use super::{audit, OpError};
use crate::AppState;

/// A User without `active` counts as active (docs/scim.md).
fn is_active(doc: &Value) -> bool {
    doc.get("active").and_then(Value::as_bool) != Some(false)
}

/// What the guard must admit for a SCIM replace or patch of `cur` into `new_doc`: `Some` when
/// it deactivates an active User. The store admits it in the update's own transaction
/// ([`roster_store::ResourceUpdate::guard`]), so a retried update is counted once and a
/// refused one answers [`crate::error::guard_refusal`] through [`roster_store::StoreError::GuardRefused`].
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

/// Whether `actor` may confirm or reject what the guard holds: operators, admin API keys and
/// the command line always; the tenant's IT admin (a setup-link session) when the tenant's
/// `guard_decided_by` is `it_admin`.
#[must_use]
pub fn may_decide(settings: &roster_store::TenantSettings, actor: &str) -> bool {
    !super::roles::is_it_admin(actor)
        || settings.guard_decided_by == roster_store::GuardDecider::ItAdmin
}

/// Records a decision on the tripped guard; shared by the API, the console and `roster guard
/// confirm|reject`.
///
/// # Errors
/// [`OpError::NotFound`] for an unknown tenant; [`OpError::Forbidden`] for the tenant's IT
/// admin unless `guard_decided_by` is `it_admin` ([`may_decide`]); [`OpError::Conflict`] when
/// the guard is not tripped.
pub async fn decide(
    state: &AppState,
    tenant: &str,
    decision: GuardDecision,
    actor: &str,
) -> Result<GuardStatus, OpError> {
    let t = super::live_tenant(state.store.as_ref(), tenant).await?;
    if !may_decide(&t.settings, actor) {
        return Err(OpError::Forbidden {
            message: "The operator decides on the held requests of this organisation: ask \
                      them to let the requests through or to refuse them."
                .to_owned(),
        });
    }
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
