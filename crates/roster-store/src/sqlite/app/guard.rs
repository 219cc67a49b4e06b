//! The mass-deprovisioning guard in SQLite: one state row per tenant (`deprovision_guard`),
//! counts per minute (`deprovision_guard_counts`, so the window is a sum of at most
//! `window_minutes` rows), the users counted in the window (`deprovision_guard_users`, each
//! counted once), and the operations refused while tripped or rejected
//! (`deprovision_guard_held`). The tenant's active users are counted once, when a window opens.
//! See `roster_server::admin::guard` for the behaviour.

use crate::sqlite::db::{self, Connection};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::super::query::to_ms;
use super::super::{backend, from_ms, opt_from_ms, SqliteStore, Tx};
use super::{append_events, tenant_settings};
use crate::app::{
    guard_exceeded, guard_threshold, GuardDecision, GuardState, GuardStatus, GuardSubject,
    GuardVerdict, HeldOperation,
};
use crate::{DeprovisionGuard, EventType, NewEvent, StoreError, StoreResult};

/// Held operations listed in a guard status.
const HELD_LISTED: i64 = 100;

#[derive(Debug, Clone)]
struct GuardRow {
    state: GuardState,
    base_active: i64,
    window_start: Option<i64>,
    tripped_at: Option<i64>,
    decided_at: Option<i64>,
    decided_by: Option<String>,
    until: Option<i64>,
    trips: i64,
}

impl GuardRow {
    fn armed() -> Self {
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
    fn expired(&self, now_ms: i64) -> bool {
        matches!(self.state, GuardState::Confirmed | GuardState::Rejected)
            && self.until.is_none_or(|u| u <= now_ms)
    }
}

fn window_ms(g: &DeprovisionGuard) -> i64 {
    i64::from(g.window_minutes.max(1)) * 60_000
}

async fn guard_row(conn: &mut Connection, tenant: &str) -> StoreResult<GuardRow> {
    type Row = (
        String,
        i64,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<i64>,
        i64,
    );
    let row: Option<Row> = db::query_as(
        "SELECT state, base_active, window_start, tripped_at, decided_at, decided_by, until, trips \
         FROM deprovision_guard WHERE tenant_id = ?",
    )
    .bind(tenant)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    Ok(match row {
        None => GuardRow::armed(),
        Some((
            state,
            base_active,
            window_start,
            tripped_at,
            decided_at,
            decided_by,
            until,
            trips,
        )) => GuardRow {
            state: GuardState::parse(&state).unwrap_or(GuardState::Armed),
            base_active,
            window_start,
            tripped_at,
            decided_at,
            decided_by,
            until,
            trips,
        },
    })
}

async fn save_guard(tx: &mut Tx, tenant: &str, row: &GuardRow) -> StoreResult<()> {
    db::query(
        "INSERT INTO deprovision_guard (tenant_id, state, base_active, window_start, tripped_at, \
         decided_at, decided_by, until, trips) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (tenant_id) DO UPDATE SET state = excluded.state, \
         base_active = excluded.base_active, window_start = excluded.window_start, \
         tripped_at = excluded.tripped_at, decided_at = excluded.decided_at, \
         decided_by = excluded.decided_by, until = excluded.until, trips = excluded.trips",
    )
    .bind(tenant)
    .bind(row.state.as_str())
    .bind(row.base_active)
    .bind(row.window_start)
    .bind(row.tripped_at)
    .bind(row.decided_at)
    .bind(&row.decided_by)
    .bind(row.until)
    .bind(row.trips)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

async fn clear_guard_window(tx: &mut Tx, tenant: &str, held: bool) -> StoreResult<()> {
    for table in ["deprovision_guard_counts", "deprovision_guard_users"] {
        db::query(&format!("DELETE FROM {table} WHERE tenant_id = ?"))
            .bind(tenant)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    if held {
        db::query("DELETE FROM deprovision_guard_held WHERE tenant_id = ?")
            .bind(tenant)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

async fn hold(tx: &mut Tx, tenant: &str, s: &GuardSubject, now_ms: i64) -> StoreResult<()> {
    db::query(
        "INSERT INTO deprovision_guard_held (tenant_id, user_id, user_name, operation, first_at, \
         last_at, attempts) VALUES (?, ?, ?, ?, ?, ?, 1) \
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET last_at = excluded.last_at, \
         operation = excluded.operation, attempts = attempts + 1",
    )
    .bind(tenant)
    .bind(&s.user_id)
    .bind(&s.user_name)
    .bind(s.operation.as_str())
    .bind(now_ms)
    .bind(now_ms)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

/// The count of the window that ends at `now_ms` (buckets are whole minutes).
async fn window_count(
    conn: &mut Connection,
    tenant: &str,
    g: &DeprovisionGuard,
    now_ms: i64,
) -> StoreResult<i64> {
    let oldest = now_ms.div_euclid(60_000) - i64::from(g.window_minutes.max(1));
    db::query_scalar(
        "SELECT COALESCE(SUM(count), 0) FROM deprovision_guard_counts \
         WHERE tenant_id = ? AND minute > ?",
    )
    .bind(tenant)
    .bind(oldest)
    .fetch_one(conn)
    .await
    .map_err(backend)
}

async fn guard_status_of(
    conn: &mut Connection,
    tenant: &str,
    g: &DeprovisionGuard,
    row: &GuardRow,
    now_ms: i64,
) -> StoreResult<GuardStatus> {
    let (state, until) = if row.expired(now_ms) {
        (GuardState::Armed, None)
    } else {
        (row.state, row.until)
    };
    let count = window_count(conn, tenant, g, now_ms).await?;
    let base = u64::try_from(row.base_active).unwrap_or(0);
    let held_count: i64 =
        db::query_scalar("SELECT COUNT(*) FROM deprovision_guard_held WHERE tenant_id = ?")
            .bind(tenant)
            .fetch_one(&mut *conn)
            .await
            .map_err(backend)?;
    let rows: Vec<(String, Option<String>, String, i64, i64, i64)> = db::query_as(
        "SELECT user_id, user_name, operation, first_at, last_at, attempts \
         FROM deprovision_guard_held WHERE tenant_id = ? ORDER BY first_at, user_id LIMIT ?",
    )
    .bind(tenant)
    .bind(HELD_LISTED)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let held = rows
        .into_iter()
        .map(|(user_id, user_name, operation, first, last, attempts)| {
            Ok(HeldOperation {
                user_id,
                user_name,
                operation,
                first_at: from_ms(first)?,
                last_at: from_ms(last)?,
                attempts: u64::try_from(attempts).unwrap_or(0),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(GuardStatus {
        settings: *g,
        state,
        window_count: u64::try_from(count).unwrap_or(0),
        window_start: if count > 0 {
            opt_from_ms(row.window_start)?
        } else {
            None
        },
        active_users: base,
        threshold: guard_threshold(g, base),
        tripped_at: opt_from_ms(row.tripped_at)?,
        decided_at: opt_from_ms(row.decided_at)?,
        decided_by: row.decided_by.clone(),
        until: opt_from_ms(until)?,
        trips: u64::try_from(row.trips).unwrap_or(0),
        held_count: u64::try_from(held_count).unwrap_or(0),
        held,
    })
}

fn guard_json(g: &DeprovisionGuard) -> Value {
    json!({
        "enabled": g.enabled,
        "max_percent": g.max_percent,
        "min_count": g.min_count,
        "window_minutes": g.window_minutes,
    })
}

/// The guard's admission of `subject`, inside the caller's write transaction: reads the
/// tenant's settings and guard row, and writes the window's count, the counted user, the held
/// operation or the trip (with its event) in `tx`. The transaction's single writer (the batch
/// lock) keeps the row from changing between its read and its write.
pub(in crate::sqlite) async fn admit_in(
    tx: &mut Tx,
    tenant: &str,
    subject: &GuardSubject,
    now: OffsetDateTime,
) -> StoreResult<GuardVerdict> {
    let now_ms = to_ms(now);
    let Some(settings) = tenant_settings(tx, tenant).await? else {
        return Err(StoreError::NotFound);
    };
    let g = settings.deprovision_guard;
    if !g.enabled {
        return Ok(GuardVerdict::Allowed);
    }
    let mut row = guard_row(tx, tenant).await?;
    if row.expired(now_ms) {
        // The confirmed or rejected batch is over: count afresh.
        row.state = GuardState::Armed;
        row.until = None;
        row.window_start = None;
        clear_guard_window(tx, tenant, true).await?;
    }
    let refused = match row.state {
        GuardState::Confirmed => {
            row.until = Some(now_ms + window_ms(&g));
            false
        }
        GuardState::Rejected => {
            row.until = Some(now_ms + window_ms(&g));
            hold(tx, tenant, subject, now_ms).await?;
            true
        }
        GuardState::Tripped => {
            hold(tx, tenant, subject, now_ms).await?;
            true
        }
        GuardState::Armed => {
            let minute = now_ms.div_euclid(60_000);
            db::query("DELETE FROM deprovision_guard_counts WHERE tenant_id = ? AND minute <= ?")
                .bind(tenant)
                .bind(minute - i64::from(g.window_minutes.max(1)))
                .execute(&mut **tx)
                .await
                .map_err(backend)?;
            db::query("DELETE FROM deprovision_guard_users WHERE tenant_id = ? AND at <= ?")
                .bind(tenant)
                .bind(now_ms - window_ms(&g))
                .execute(&mut **tx)
                .await
                .map_err(backend)?;
            let seen: Option<i64> = db::query_scalar(
                "SELECT 1 FROM deprovision_guard_users WHERE tenant_id = ? AND user_id = ?",
            )
            .bind(tenant)
            .bind(&subject.user_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(backend)?;
            let count = window_count(tx, tenant, &g, now_ms).await?;
            if count == 0 {
                // A new window: its base is the active users now, counted once (an index
                // range count), not on every deactivation.
                row.base_active = db::query_scalar(
                    "SELECT COUNT(*) FROM resources WHERE tenant_id = ? AND kind = 'User' \
                     AND deleted = 0 AND managed = 1 AND (active IS NULL OR active != 0)",
                )
                .bind(tenant)
                .fetch_one(&mut **tx)
                .await
                .map_err(backend)?;
                row.window_start = Some(now_ms);
            }
            // Counted: a user that was among the active users when the window opened, and
            // not counted in it already.
            let counted =
                seen.is_none() && row.window_start.is_none_or(|s| to_ms(subject.created) <= s);
            let next = u64::try_from(count).unwrap_or(0) + 1;
            let base = u64::try_from(row.base_active).unwrap_or(0);
            if !counted {
                false
            } else if guard_exceeded(&g, next, base) {
                row.state = GuardState::Tripped;
                row.tripped_at = Some(now_ms);
                row.decided_at = None;
                row.decided_by = None;
                row.trips += 1;
                hold(tx, tenant, subject, now_ms).await?;
                let event = NewEvent::new(
                    EventType::TenantDeprovisionGuardTripped,
                    json!({
                        "guard": guard_json(&g),
                        "count": count,
                        "active_users": base,
                        "threshold": guard_threshold(&g, base),
                        "held": {
                            "id": subject.user_id,
                            "userName": subject.user_name,
                            "operation": subject.operation.as_str(),
                        },
                    }),
                );
                append_events(tx, tenant, now_ms, vec![event]).await?;
                true
            } else {
                db::query(
                    "INSERT INTO deprovision_guard_counts (tenant_id, minute, count) \
                     VALUES (?, ?, 1) \
                     ON CONFLICT (tenant_id, minute) DO UPDATE SET count = count + 1",
                )
                .bind(tenant)
                .bind(minute)
                .execute(&mut **tx)
                .await
                .map_err(backend)?;
                db::query(
                    "INSERT INTO deprovision_guard_users (tenant_id, user_id, at) VALUES (?, ?, ?)",
                )
                .bind(tenant)
                .bind(&subject.user_id)
                .bind(now_ms)
                .execute(&mut **tx)
                .await
                .map_err(backend)?;
                false
            }
        }
    };
    save_guard(tx, tenant, &row).await?;
    let verdict = if refused {
        let status = guard_status_of(tx, tenant, &g, &row, now_ms).await?;
        GuardVerdict::Refused(Box::new(status))
    } else {
        GuardVerdict::Allowed
    };
    Ok(verdict)
}

impl SqliteStore {
    #[tracing::instrument(skip_all)]
    pub(super) async fn guard_admit_impl(
        &self,
        tenant: &str,
        subject: &GuardSubject,
        now: OffsetDateTime,
    ) -> StoreResult<GuardVerdict> {
        let mut tx = self.write().await?;
        let verdict = admit_in(&mut tx, tenant, subject, now).await?;
        self.commit(tx).await?;
        Ok(verdict)
    }

    #[tracing::instrument(skip_all)]
    pub(super) async fn guard_status_impl(
        &self,
        tenant: &str,
        now: OffsetDateTime,
    ) -> StoreResult<GuardStatus> {
        let mut tx = self.reader.begin().await.map_err(backend)?;
        let Some(settings) = tenant_settings(&mut tx, tenant).await? else {
            return Err(StoreError::NotFound);
        };
        let row = guard_row(&mut tx, tenant).await?;
        guard_status_of(
            &mut tx,
            tenant,
            &settings.deprovision_guard,
            &row,
            to_ms(now),
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    pub(super) async fn guard_decide_impl(
        &self,
        tenant: &str,
        decision: GuardDecision,
        actor: &str,
        now: OffsetDateTime,
    ) -> StoreResult<GuardStatus> {
        let now_ms = to_ms(now);
        let mut tx = self.write().await?;
        let Some(settings) = tenant_settings(&mut tx, tenant).await? else {
            return Err(StoreError::NotFound);
        };
        let g = settings.deprovision_guard;
        let mut row = guard_row(&mut tx, tenant).await?;
        if row.state == GuardState::Armed || row.expired(now_ms) {
            return Err(StoreError::Invalid(
                "the deprovisioning guard is not tripped: there is no batch to decide on"
                    .to_owned(),
            ));
        }
        let held: i64 =
            db::query_scalar("SELECT COUNT(*) FROM deprovision_guard_held WHERE tenant_id = ?")
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
        row.state = match decision {
            GuardDecision::Confirm => GuardState::Confirmed,
            GuardDecision::Reject => GuardState::Rejected,
        };
        row.until = Some(now_ms + window_ms(&g));
        row.decided_at = Some(now_ms);
        row.decided_by = Some(actor.to_owned());
        // Confirmed: the held operations may proceed when retried, so the list is done with.
        // Rejected: the list stays, as the record of what was refused, until the guard re-arms.
        clear_guard_window(&mut tx, tenant, decision == GuardDecision::Confirm).await?;
        save_guard(&mut tx, tenant, &row).await?;
        let event = NewEvent::new(
            EventType::TenantDeprovisionGuardResolved,
            json!({
                "decision": decision.as_str(),
                "decided_by": actor,
                "held": held,
                "until": row.until.map(from_ms).transpose()?.map(scim_proto::filter::format_datetime),
            }),
        );
        append_events(&mut tx, tenant, now_ms, vec![event]).await?;
        let status = guard_status_of(&mut tx, tenant, &g, &row, now_ms).await?;
        self.commit(tx).await?;
        Ok(status)
    }
}
