//! The mass-deprovisioning guard's arithmetic: counting deactivations and deletions per
//! window, tripping, holding what it refuses, and an operator's decision. The guard's state is
//! one row per tenant ([`GuardRow`]); the window's counts are kept per minute (so a window is a
//! sum of at most `window_minutes` buckets), each counted user once, and the refused operations
//! as held rows. See `roster_server::admin::guard` for the behaviour as the server shows it.

use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use super::outbox::append_events;
use super::Rows;
use crate::app::{
    guard_exceeded, guard_threshold, GuardDecision, GuardState, GuardStatus, GuardSubject,
    GuardVerdict,
};
use crate::{DeprovisionGuard, EventType, NewEvent, StoreError, StoreResult};

/// Held operations listed in a guard status.
pub const HELD_LISTED: u64 = 100;

/// A tenant's guard state, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardRow {
    /// The state.
    pub state: GuardState,
    /// Active managed users when the current window opened.
    pub base_active: i64,
    /// When the current window's first operation was counted.
    pub window_start: Option<OffsetDateTime>,
    /// When it last tripped.
    pub tripped_at: Option<OffsetDateTime>,
    /// When an operator last decided.
    pub decided_at: Option<OffsetDateTime>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When a confirmed or rejected state ends unless extended.
    pub until: Option<OffsetDateTime>,
    /// How often it tripped.
    pub trips: i64,
}

impl GuardRow {
    /// A guard that never tripped.
    #[must_use]
    pub fn armed() -> Self {
        Self {
            state: GuardState::Armed,
            base_active: 0,
            window_start: None,
            tripped_at: None,
            decided_at: None,
            decided_by: None,
            until: None,
            trips: 0,
        }
    }

    /// A confirmed or rejected state whose quiet window passed reads as armed.
    fn expired(&self, now: OffsetDateTime) -> bool {
        matches!(self.state, GuardState::Confirmed | GuardState::Rejected)
            && self.until.is_none_or(|u| u <= now)
    }
}

fn window(g: &DeprovisionGuard) -> Duration {
    Duration::minutes(i64::from(g.window_minutes.max(1)))
}

/// The minute bucket of `t` (minutes since the Unix epoch).
#[must_use]
pub fn minute(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(60)
}

/// The oldest bucket that is no longer in the window ending at `now`.
fn expired_minute(g: &DeprovisionGuard, now: OffsetDateTime) -> i64 {
    minute(now) - i64::from(g.window_minutes.max(1))
}

fn guard_json(g: &DeprovisionGuard) -> Value {
    json!({
        "enabled": g.enabled,
        "max_percent": g.max_percent,
        "min_count": g.min_count,
        "window_minutes": g.window_minutes,
    })
}

async fn status_of<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    g: &DeprovisionGuard,
    row: &GuardRow,
    now: OffsetDateTime,
) -> StoreResult<GuardStatus> {
    let (state, until) = if row.expired(now) {
        (GuardState::Armed, None)
    } else {
        (row.state, row.until)
    };
    let count = rows
        .guard_window_count(tenant, expired_minute(g, now))
        .await?;
    let base = u64::try_from(row.base_active).unwrap_or(0);
    let (held_count, held) = rows.guard_held(tenant, HELD_LISTED).await?;
    Ok(GuardStatus {
        settings: *g,
        state,
        window_count: u64::try_from(count).unwrap_or(0),
        window_start: if count > 0 { row.window_start } else { None },
        active_users: base,
        threshold: guard_threshold(g, base),
        tripped_at: row.tripped_at,
        decided_at: row.decided_at,
        decided_by: row.decided_by.clone(),
        until,
        trips: u64::try_from(row.trips).unwrap_or(0),
        held_count,
        held,
    })
}

/// The guard's admission of `subject`, inside the caller's write transaction: with the guard
/// armed, the operation is counted in the window (a user once, and only one that was among the
/// active users when the window opened), and the one that exceeds both `min_count` and
/// `max_percent` of the window's active users trips the guard (`tenant.deprovision_guard.tripped`)
/// and is held; while tripped or rejected, every operation is held and refused; while confirmed,
/// they pass and extend the quiet window.
///
/// Concurrency: reads the tenant's settings, its guard row and window, then writes them. No
/// other admission of the tenant may come between (two would both count as the last one under
/// the threshold): a backend without SQLite's write lock locks the guard row (`FOR UPDATE`,
/// created armed if missing) first.
pub async fn admit<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    subject: &GuardSubject,
    now: OffsetDateTime,
) -> StoreResult<GuardVerdict> {
    let Some(settings) = rows.tenant_settings(tenant).await? else {
        return Err(StoreError::NotFound);
    };
    admit_under(rows, tenant, &settings.deprovision_guard, subject, now).await
}

/// [`admit`] with the tenant's guard settings already read in this transaction (a caller that
/// needs the tenant's settings for itself reads them once).
pub async fn admit_under<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    g: &DeprovisionGuard,
    subject: &GuardSubject,
    now: OffsetDateTime,
) -> StoreResult<GuardVerdict> {
    let now = super::stored_time(now);
    let g = *g;
    if !g.enabled {
        return Ok(GuardVerdict::Allowed);
    }
    let mut row = rows
        .guard_row(tenant)
        .await?
        .unwrap_or_else(GuardRow::armed);
    if row.expired(now) {
        // The confirmed or rejected batch is over: count afresh.
        row.state = GuardState::Armed;
        row.until = None;
        row.window_start = None;
        rows.guard_clear(tenant, true).await?;
    }
    let refused = match row.state {
        GuardState::Confirmed => {
            row.until = Some(now + window(&g));
            false
        }
        GuardState::Rejected => {
            row.until = Some(now + window(&g));
            rows.guard_hold(tenant, subject, now).await?;
            true
        }
        GuardState::Tripped => {
            rows.guard_hold(tenant, subject, now).await?;
            true
        }
        GuardState::Armed => count(rows, tenant, &g, &mut row, subject, now).await?,
    };
    rows.guard_save(tenant, &row).await?;
    Ok(if refused {
        let status = status_of(rows, tenant, &g, &row, now).await?;
        GuardVerdict::Refused(Box::new(status))
    } else {
        GuardVerdict::Allowed
    })
}

/// The armed guard counts `subject`; returns whether it tripped (and the subject is held).
async fn count<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    g: &DeprovisionGuard,
    row: &mut GuardRow,
    subject: &GuardSubject,
    now: OffsetDateTime,
) -> StoreResult<bool> {
    let expired = expired_minute(g, now);
    rows.guard_prune(tenant, expired, now - window(g)).await?;
    let seen = rows.guard_counted(tenant, &subject.user_id).await?;
    let count = rows.guard_window_count(tenant, expired).await?;
    if count == 0 {
        // A new window: its base is the active users now, counted once, not on every
        // deactivation.
        row.base_active = rows.active_users(tenant).await?;
        row.window_start = Some(now);
    }
    // Counted: a user that was among the active users when the window opened, and not
    // counted in it already.
    let counted = !seen && row.window_start.is_none_or(|s| subject.created <= s);
    if !counted {
        return Ok(false);
    }
    let next = u64::try_from(count).unwrap_or(0) + 1;
    let base = u64::try_from(row.base_active).unwrap_or(0);
    if !guard_exceeded(g, next, base) {
        rows.guard_count(tenant, minute(now), &subject.user_id, now)
            .await?;
        return Ok(false);
    }
    row.state = GuardState::Tripped;
    row.tripped_at = Some(now);
    row.decided_at = None;
    row.decided_by = None;
    row.trips += 1;
    rows.guard_hold(tenant, subject, now).await?;
    let event = NewEvent::new(
        EventType::TenantDeprovisionGuardTripped,
        json!({
            "guard": guard_json(g),
            "count": count,
            "active_users": base,
            "threshold": guard_threshold(g, base),
            "held": {
                "id": subject.user_id,
                "userName": subject.user_name,
                "operation": subject.operation.as_str(),
            },
        }),
    );
    append_events(rows, tenant, now, vec![event]).await?;
    Ok(true)
}

/// The tenant's guard as of `now` (in a read transaction). `NotFound` for an unknown tenant.
pub async fn status<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    now: OffsetDateTime,
) -> StoreResult<GuardStatus> {
    let Some(settings) = rows.tenant_settings(tenant).await? else {
        return Err(StoreError::NotFound);
    };
    let row = rows
        .guard_row(tenant)
        .await?
        .unwrap_or_else(GuardRow::armed);
    status_of(rows, tenant, &settings.deprovision_guard, &row, now).await
}

/// An operator's decision on the tripped guard: confirmed, the held operations may proceed when
/// retried (the held list is done with); rejected, they stay refused (the list stays, as the
/// record of what was refused) until a quiet window re-arms the guard. Appends
/// `tenant.deprovision_guard.resolved`. `Invalid` when the guard is not tripped.
///
/// Concurrency: as [`admit`], the guard row must not change between its read and its write.
pub async fn decide<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    decision: GuardDecision,
    actor: &str,
    now: OffsetDateTime,
) -> StoreResult<GuardStatus> {
    let now = super::stored_time(now);
    let Some(settings) = rows.tenant_settings(tenant).await? else {
        return Err(StoreError::NotFound);
    };
    let g = settings.deprovision_guard;
    let mut row = rows
        .guard_row(tenant)
        .await?
        .unwrap_or_else(GuardRow::armed);
    if row.state == GuardState::Armed || row.expired(now) {
        return Err(StoreError::Invalid(
            "the deprovisioning guard is not tripped: there is no batch to decide on".to_owned(),
        ));
    }
    let (held, _) = rows.guard_held(tenant, 0).await?;
    row.state = match decision {
        GuardDecision::Confirm => GuardState::Confirmed,
        GuardDecision::Reject => GuardState::Rejected,
    };
    row.until = Some(now + window(&g));
    row.decided_at = Some(now);
    row.decided_by = Some(actor.to_owned());
    rows.guard_clear(tenant, decision == GuardDecision::Confirm)
        .await?;
    rows.guard_save(tenant, &row).await?;
    let event = NewEvent::new(
        EventType::TenantDeprovisionGuardResolved,
        json!({
            "decision": decision.as_str(),
            "decided_by": actor,
            "held": held,
            "until": row.until.map(scim_proto::filter::format_datetime),
        }),
    );
    append_events(rows, tenant, now, vec![event]).await?;
    status_of(rows, tenant, &g, &row, now).await
}
