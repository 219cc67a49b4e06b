//! Appending a write's events to the outbox, inside its transaction.
//!
//! Why a reader never skips an event: the backend's [`Rows::reserve_seqs`] hands out a
//! tenant's seqs in commit order without gaps. SQLite does it by reading `MAX(seq)` under its
//! database-wide write lock, taken by `BEGIN IMMEDIATE` before anything is read, so no other
//! transaction can read the same maximum or commit in between, and a rolled-back writer's seqs
//! are reused by the next. A backend without that lock uses a per-tenant counter row updated
//! with `UPDATE … RETURNING`: its row lock serialises the tenant's writers until commit, so
//! seq order is commit order there too, and different tenants do not contend.

use time::OffsetDateTime;

use super::Rows;
use crate::events::{Event, NewEvent};
use crate::StoreResult;

/// Appends `events` for `tenant` at `now`, in order; returns them as stored.
///
/// Concurrency: reserves the tenant's next seqs (see the module doc); nothing else is read.
/// The seqs are reserved and the events inserted by [`Rows::append_events`] (one statement on
/// PostgreSQL).
pub async fn append_events<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    now: OffsetDateTime,
    events: Vec<NewEvent>,
) -> StoreResult<Vec<Event>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = stored(tenant, now, events);
    rows.append_events(tenant, &mut out).await?;
    Ok(out)
}

/// Appends the events of a SCIM write, as [`append_events`], unless the tenant's first-sync
/// review is open: then they are held for its approval (see [`super::review`]).
///
/// Concurrency: one more primary-key read in the write transaction (whether a review is open);
/// approving or discarding a review takes the tenant's writes, so no write holds events into a
/// review that is closing.
pub async fn append_scim_events<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    now: OffsetDateTime,
    events: Vec<NewEvent>,
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    if rows.review_is_open(tenant).await? {
        let held = stored(tenant, now, events);
        return rows.review_hold(tenant, &held).await;
    }
    append_events(rows, tenant, now, events).await.map(drop)
}

/// `events` as stored, without their seqs (set when appended).
fn stored(tenant: &str, now: OffsetDateTime, events: Vec<NewEvent>) -> Vec<Event> {
    events
        .into_iter()
        .map(|e| Event {
            tenant: tenant.to_owned(),
            seq: 0,
            id: uuid::Uuid::new_v4().to_string(),
            event_type: e.event_type.as_str().to_owned(),
            occurred_at: super::stored_time(now),
            data: e.data,
        })
        .collect()
}
