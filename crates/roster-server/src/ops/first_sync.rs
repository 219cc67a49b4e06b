//! An operator's decision on a tenant's first-sync review, which the admin API, the console
//! and `roster tenant first-sync` share.
//!
//! While a tenant's setting `first_sync_review` is on, its identity provider's writes are
//! applied (it sees normal answers and ids) but their events are held: the host app sees
//! nothing, and the login decision treats the users as not yet provisioned. An operator looks
//! at the summary and approves (the events are delivered, in order) or discards (the directory
//! is put back as it was, SCIM is disabled). See `roster_store::domain::review`.

use roster_store::ReviewOutcome;
use serde_json::json;

use super::error::decision_error;
use super::{audit, OpError};
use crate::AppState;

/// An operator's decision on a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Deliver the held events.
    Approve,
    /// Undo what the review did and disable SCIM.
    Discard,
}

impl Decision {
    fn action(self) -> &'static str {
        match self {
            Self::Approve => "first_sync.approve",
            Self::Discard => "first_sync.discard",
        }
    }
}

/// Approves or discards the tenant's review and records who did; shared by the API, the
/// console and the CLI.
///
/// # Errors
/// [`OpError::NotFound`] for an unknown tenant; [`OpError::Conflict`] when no review is open.
pub async fn decide(
    state: &AppState,
    tenant: &str,
    decision: Decision,
    actor: &str,
) -> Result<ReviewOutcome, OpError> {
    let now = state.clock.now();
    let done = match decision {
        Decision::Approve => state.store.review_approve(tenant).await,
        Decision::Discard => state.store.review_discard(tenant, now).await,
    }
    .map_err(|e| decision_error(tenant, e))?;
    audit(
        state.store.as_ref(),
        now,
        actor,
        decision.action(),
        Some(tenant),
        Some(tenant),
        json!({
            "released_events": done.released,
            "dropped_events": done.dropped,
            "deleted_resources": done.deleted,
            "restored_resources": done.restored,
        }),
    )
    .await;
    Ok(done)
}
