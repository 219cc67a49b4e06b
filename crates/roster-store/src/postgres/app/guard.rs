//! The mass-deprovisioning guard's rows in PostgreSQL: one state row per tenant
//! (`deprovision_guard`), counts per minute (`deprovision_guard_counts`), the users counted in
//! the window (`deprovision_guard_users`, each counted once), and the operations refused while
//! tripped or rejected (`deprovision_guard_held`). The rules are the store core's
//! ([`crate::domain::guard`]); this file holds the SQL its row operations run.

use time::OffsetDateTime;

use super::super::db::{self, Conn};
use super::super::query::to_ms;
use super::super::{backend, from_ms, opt_from_ms, PostgresStore};
use crate::app::{
    GuardDecision, GuardState, GuardStatus, GuardSubject, GuardVerdict, HeldOperation,
};
use crate::domain::guard::{self, GuardRow};
use crate::StoreResult;

pub(in crate::postgres) async fn row(c: &mut Conn, tenant: &str) -> StoreResult<Option<GuardRow>> {
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
    .fetch_optional(c)
    .await
    .map_err(backend)?;
    let Some((state, base_active, window_start, tripped_at, decided_at, decided_by, until, trips)) =
        row
    else {
        return Ok(None);
    };
    Ok(Some(GuardRow {
        state: GuardState::parse(&state).unwrap_or(GuardState::Armed),
        base_active,
        window_start: opt_from_ms(window_start)?,
        tripped_at: opt_from_ms(tripped_at)?,
        decided_at: opt_from_ms(decided_at)?,
        decided_by,
        until: opt_from_ms(until)?,
        trips,
    }))
}

pub(in crate::postgres) async fn save(
    c: &mut Conn,
    tenant: &str,
    row: &GuardRow,
) -> StoreResult<()> {
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
    .bind(row.window_start.map(to_ms))
    .bind(row.tripped_at.map(to_ms))
    .bind(row.decided_at.map(to_ms))
    .bind(&row.decided_by)
    .bind(row.until.map(to_ms))
    .bind(row.trips)
    .execute(c)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(in crate::postgres) async fn clear(c: &mut Conn, tenant: &str, held: bool) -> StoreResult<()> {
    let tables: &[&str] = if held {
        &[
            "deprovision_guard_counts",
            "deprovision_guard_users",
            "deprovision_guard_held",
        ]
    } else {
        &["deprovision_guard_counts", "deprovision_guard_users"]
    };
    for table in tables {
        db::query(&format!("DELETE FROM {table} WHERE tenant_id = ?"))
            .bind(tenant)
            .execute(&mut *c)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

pub(in crate::postgres) async fn hold(
    c: &mut Conn,
    tenant: &str,
    s: &GuardSubject,
    now: OffsetDateTime,
) -> StoreResult<()> {
    db::query(
        "INSERT INTO deprovision_guard_held (tenant_id, user_id, user_name, operation, first_at, \
         last_at, attempts) VALUES (?, ?, ?, ?, ?, ?, 1) \
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET last_at = excluded.last_at, \
         operation = excluded.operation, attempts = deprovision_guard_held.attempts + 1",
    )
    .bind(tenant)
    .bind(&s.user_id)
    .bind(&s.user_name)
    .bind(s.operation.as_str())
    .bind(to_ms(now))
    .bind(to_ms(now))
    .execute(c)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(in crate::postgres) async fn prune(
    c: &mut Conn,
    tenant: &str,
    minute: i64,
    counted_before: OffsetDateTime,
) -> StoreResult<()> {
    db::query("DELETE FROM deprovision_guard_counts WHERE tenant_id = ? AND minute <= ?")
        .bind(tenant)
        .bind(minute)
        .execute(&mut *c)
        .await
        .map_err(backend)?;
    db::query("DELETE FROM deprovision_guard_users WHERE tenant_id = ? AND at <= ?")
        .bind(tenant)
        .bind(to_ms(counted_before))
        .execute(&mut *c)
        .await
        .map_err(backend)?;
    Ok(())
}

pub(in crate::postgres) async fn counted(
    c: &mut Conn,
    tenant: &str,
    user_id: &str,
) -> StoreResult<bool> {
    let seen: Option<i64> = db::query_scalar(
        "SELECT 1 FROM deprovision_guard_users WHERE tenant_id = ? AND user_id = ?",
    )
    .bind(tenant)
    .bind(user_id)
    .fetch_optional(c)
    .await
    .map_err(backend)?;
    Ok(seen.is_some())
}

pub(in crate::postgres) async fn window_count(
    c: &mut Conn,
    tenant: &str,
    after_minute: i64,
) -> StoreResult<i64> {
    db::query_scalar(
        "SELECT COALESCE(SUM(count), 0)::bigint FROM deprovision_guard_counts \
         WHERE tenant_id = ? AND minute > ?",
    )
    .bind(tenant)
    .bind(after_minute)
    .fetch_one(c)
    .await
    .map_err(backend)
}

pub(in crate::postgres) async fn count(
    c: &mut Conn,
    tenant: &str,
    minute: i64,
    user_id: &str,
    now: OffsetDateTime,
) -> StoreResult<()> {
    db::query(
        "INSERT INTO deprovision_guard_counts (tenant_id, minute, count) VALUES (?, ?, 1) \
         ON CONFLICT (tenant_id, minute) \
         DO UPDATE SET count = deprovision_guard_counts.count + 1",
    )
    .bind(tenant)
    .bind(minute)
    .execute(&mut *c)
    .await
    .map_err(backend)?;
    db::query("INSERT INTO deprovision_guard_users (tenant_id, user_id, at) VALUES (?, ?, ?)")
        .bind(tenant)
        .bind(user_id)
        .bind(to_ms(now))
        .execute(&mut *c)
        .await
        .map_err(backend)?;
    Ok(())
}

pub(in crate::postgres) async fn held(
    c: &mut Conn,
    tenant: &str,
    limit: u64,
) -> StoreResult<(u64, Vec<HeldOperation>)> {
    let n: i64 =
        db::query_scalar("SELECT COUNT(*) FROM deprovision_guard_held WHERE tenant_id = ?")
            .bind(tenant)
            .fetch_one(&mut *c)
            .await
            .map_err(backend)?;
    if limit == 0 || n == 0 {
        return Ok((u64::try_from(n).unwrap_or(0), Vec::new()));
    }
    let rows: Vec<(String, Option<String>, String, i64, i64, i64)> = db::query_as(
        "SELECT user_id, user_name, operation, first_at, last_at, attempts \
         FROM deprovision_guard_held WHERE tenant_id = ? ORDER BY first_at, user_id LIMIT ?",
    )
    .bind(tenant)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *c)
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
    Ok((u64::try_from(n).unwrap_or(0), held))
}

pub(in crate::postgres) async fn active_users(c: &mut Conn, tenant: &str) -> StoreResult<i64> {
    db::query_scalar(
        "SELECT COUNT(*) FROM resources WHERE tenant_id = ? AND kind = 'User' \
         AND deleted = FALSE AND managed = TRUE AND active IS NOT FALSE",
    )
    .bind(tenant)
    .fetch_one(c)
    .await
    .map_err(backend)
}

impl PostgresStore {
    #[tracing::instrument(skip_all)]
    pub(super) async fn guard_admit_impl(
        &self,
        tenant: &str,
        subject: &GuardSubject,
        now: OffsetDateTime,
    ) -> StoreResult<GuardVerdict> {
        let mut tx = self.write(tenant).await?;
        let verdict = guard::admit(&mut *tx, tenant, subject, now).await?;
        self.commit_events(tx).await?;
        Ok(verdict)
    }

    #[tracing::instrument(skip_all)]
    pub(super) async fn guard_status_impl(
        &self,
        tenant: &str,
        now: OffsetDateTime,
    ) -> StoreResult<GuardStatus> {
        let mut tx = self.read().await?;
        guard::status(&mut *tx, tenant, now).await
    }

    #[tracing::instrument(skip_all)]
    pub(super) async fn guard_decide_impl(
        &self,
        tenant: &str,
        decision: GuardDecision,
        actor: &str,
        now: OffsetDateTime,
    ) -> StoreResult<GuardStatus> {
        let mut tx = self.write(tenant).await?;
        let status = guard::decide(&mut *tx, tenant, decision, actor, now).await?;
        self.commit_events(tx).await?;
        Ok(status)
    }
}
