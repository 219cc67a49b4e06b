//! The statements of the hourly rollup, of the tenants' health ([`crate::health`]) and of a
//! provisioning-log query, the same on SQLite and PostgreSQL (both drivers take `?N` and `?`
//! placeholders; times are unix milliseconds in BIGINT columns). A backend binds and runs them;
//! what a row means is decided here, once.

use time::OffsetDateTime;

use crate::domain::query::to_ms;
use crate::health::{hour_of, HourCount, TenantHealth, WebhookHealth, HEALTH_HOURS};
use crate::ops::{LogQuery, Outcome, ProvisioningEntry, ReadCount};
use crate::stored_form::{from_ms, opt_from_ms};
use crate::StoreResult;

/// What one flush adds to one (tenant, hour) of the rollup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HourDelta {
    pub tenant_id: String,
    /// The start of the hour, unix ms.
    pub hour: i64,
    pub requests: i64,
    pub failures: i64,
    pub unauthorized: i64,
    pub server_errors: i64,
    /// The newest request's time (ms) and status.
    pub last_at: i64,
    pub last_status: i64,
    /// The newest success's time (ms).
    pub last_success_at: Option<i64>,
}

impl HourDelta {
    fn add(&mut self, n: i64, status: u16, at: i64) {
        self.requests += n;
        if status >= 400 {
            self.failures += n;
        }
        if status == 401 {
            self.unauthorized += n;
        }
        if status >= 500 {
            self.server_errors += n;
        }
        if at >= self.last_at {
            self.last_at = at;
            self.last_status = i64::from(status);
        }
        if status < 400 && self.last_success_at.is_none_or(|s| at > s) {
            self.last_success_at = Some(at);
        }
    }
}

/// The rollup's additions for logged rows and counted reads, one per (tenant, hour), in key
/// order: concurrent flushes (several nodes) then lock the rows they share in the same order
/// and wait on each other rather than deadlock.
pub(crate) fn hour_deltas(entries: &[ProvisioningEntry], reads: &[ReadCount]) -> Vec<HourDelta> {
    let mut map: std::collections::BTreeMap<(String, i64), HourDelta> = Default::default();
    let mut add = |tenant: &str, at: OffsetDateTime, n: i64, status: u16| {
        let hour = to_ms(hour_of(at));
        map.entry((tenant.to_owned(), hour))
            .or_insert_with(|| HourDelta {
                tenant_id: tenant.to_owned(),
                hour,
                requests: 0,
                failures: 0,
                unauthorized: 0,
                server_errors: 0,
                last_at: i64::MIN,
                last_status: 0,
                last_success_at: None,
            })
            .add(n, status, to_ms(at));
    };
    // A 401 or 429 row is the sample of refused requests that the server also counts with the
    // read counts (route `refused from …`, every refused request, the sample included), so
    // the rollup takes refusals from the counts alone: counting the row too would count the
    // sampled request twice.
    for e in entries.iter().filter(|e| !matches!(e.status, 401 | 429)) {
        add(&e.tenant_id, e.at, 1, e.status);
    }
    for r in reads {
        // A count's time is its newest request's; the minute lies within one hour.
        let n = i64::try_from(r.count).unwrap_or(i64::MAX);
        add(&r.tenant_id, r.last_at, n, r.last_status);
    }
    map.into_values().collect()
}

/// Adds one [`HourDelta`]: `?1` tenant, `?2` hour, `?3`…`?6` the counts, `?7` last_at, `?8`
/// last_status, `?9` last_success_at. Every SET expression sees the stored row: the counts add
/// up, the newer request's status wins and the times only move forward, whichever flush
/// arrives first. (Written with CASE rather than MAX/GREATEST, which the two dialects spell
/// differently.)
pub(crate) const UPSERT_HOUR_SQL: &str = "\
    INSERT INTO provisioning_hourly (tenant_id, hour, requests, failures, unauthorized, \
        server_errors, last_at, last_status, last_success_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
    ON CONFLICT (tenant_id, hour) DO UPDATE SET \
    requests = provisioning_hourly.requests + excluded.requests, \
    failures = provisioning_hourly.failures + excluded.failures, \
    unauthorized = provisioning_hourly.unauthorized + excluded.unauthorized, \
    server_errors = provisioning_hourly.server_errors + excluded.server_errors, \
    last_status = CASE WHEN excluded.last_at >= provisioning_hourly.last_at \
        THEN excluded.last_status ELSE provisioning_hourly.last_status END, \
    last_at = CASE WHEN excluded.last_at > provisioning_hourly.last_at \
        THEN excluded.last_at ELSE provisioning_hourly.last_at END, \
    last_success_at = CASE WHEN provisioning_hourly.last_success_at IS NULL \
        OR excluded.last_success_at > provisioning_hourly.last_success_at \
        THEN excluded.last_success_at ELSE provisioning_hourly.last_success_at END";

/// The hours of tenant `?1` starting in `[?2, ?3)`, oldest first.
pub(crate) const HOURLY_SQL: &str = "\
    SELECT hour, requests, failures, unauthorized, server_errors FROM provisioning_hourly \
    WHERE tenant_id = ?1 AND hour >= ?2 AND hour < ?3 ORDER BY hour";

/// A row of [`HOURLY_SQL`].
pub(crate) type HourRow = (i64, i64, i64, i64, i64);

pub(crate) fn hour_from(
    (hour, requests, failures, unauthorized, server_errors): HourRow,
) -> StoreResult<HourCount> {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(HourCount {
        hour: from_ms(hour)?,
        requests: n(requests),
        failures: n(failures),
        unauthorized: n(unauthorized),
        server_errors: n(server_errors),
    })
}

/// Deletes up to `?2` hours starting before `?1` (oldest first).
pub(crate) const PRUNE_HOURLY_SQL: &str = "\
    DELETE FROM provisioning_hourly WHERE (tenant_id, hour) IN \
    (SELECT tenant_id, hour FROM provisioning_hourly WHERE hour < ?1 ORDER BY hour LIMIT ?2)";

/// The bound of [`PRUNE_HOURLY_SQL`]: only hours that ended at or before `before` go.
pub(crate) fn prune_bound(before: OffsetDateTime) -> i64 {
    to_ms(hour_of(before))
}

/// The health of live tenants at `?3` (ms), the last 24 hours starting at `?4` (ms), as
/// [`HealthRow`]s; the statements below add which tenants. One statement for a page: each column is a
/// correlated subquery that reads a few index entries of its tenant (the newest hour of the
/// rollup, the 24 hours of it, the live tokens by expiry, the guard's row, the tenant's
/// streams), so its cost grows with the page, not with the log. Every subquery compares
/// `tenant_id` with the tenant's id, so a database distributed by tenant answers each on one
/// shard.
macro_rules! health_select {
    () => {
        "\
    SELECT t.id, t.name, \
    (SELECT h.last_at FROM provisioning_hourly h WHERE h.tenant_id = t.id \
        ORDER BY h.hour DESC LIMIT 1), \
    (SELECT h.last_status FROM provisioning_hourly h WHERE h.tenant_id = t.id \
        ORDER BY h.hour DESC LIMIT 1), \
    (SELECT h.last_success_at FROM provisioning_hourly h WHERE h.tenant_id = t.id \
        AND h.last_success_at IS NOT NULL ORDER BY h.hour DESC LIMIT 1), \
    (SELECT CAST(COALESCE(SUM(h.requests), 0) AS BIGINT) FROM provisioning_hourly h \
        WHERE h.tenant_id = t.id AND h.hour >= ?4), \
    (SELECT CAST(COALESCE(SUM(h.failures), 0) AS BIGINT) FROM provisioning_hourly h \
        WHERE h.tenant_id = t.id AND h.hour >= ?4), \
    (SELECT MIN(k.expires_at) FROM tokens k WHERE k.tenant_id = t.id \
        AND k.revoked_at IS NULL AND k.expires_at > ?3), \
    (SELECT COALESCE(g.tripped_at, g.window_start, 0) FROM deprovision_guard g \
        WHERE g.tenant_id = t.id AND g.state = 'tripped'), \
    (SELECT COUNT(*) FROM deprovision_guard_held u WHERE u.tenant_id = t.id), \
    (SELECT COUNT(*) FROM webhook_streams s WHERE s.tenant_id = t.id \
        AND (s.attempts > 0 OR s.state = 'parked')), \
    (SELECT COALESCE(MAX(s.attempts), 0) FROM webhook_streams s WHERE s.tenant_id = t.id), \
    (SELECT s.last_error FROM webhook_streams s WHERE s.tenant_id = t.id \
        AND (s.attempts > 0 OR s.state = 'parked') \
        ORDER BY s.attempts DESC, s.webhook_id LIMIT 1) \
    FROM tenants t WHERE t.deleted_at IS NULL "
    };
}

/// The health of the page of tenants after `?1`, at most `?2` tenants.
pub(crate) const TENANTS_HEALTH_SQL: &str =
    concat!(health_select!(), "AND t.id > ?1 ORDER BY t.id LIMIT ?2");

/// The health of the tenant `?1` (`?2` is 1).
pub(crate) const TENANT_HEALTH_SQL: &str = concat!(health_select!(), "AND t.id = ?1 LIMIT ?2");

/// A row of [`TENANTS_HEALTH_SQL`].
pub(crate) type HealthRow = (
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
    i64,
    Option<String>,
);

/// The `?4` of [`TENANTS_HEALTH_SQL`]: the start of the oldest of the last 24 hours.
pub(crate) fn health_since(now: OffsetDateTime) -> i64 {
    to_ms(hour_of(now) - time::Duration::hours(HEALTH_HOURS - 1))
}

pub(crate) fn health_from(row: HealthRow) -> StoreResult<TenantHealth> {
    let (
        tenant_id,
        name,
        last_at,
        last_status,
        last_success,
        requests,
        failures,
        token,
        tripped,
        held,
        failing,
        attempts,
        last_error,
    ) = row;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let last_request = match (last_at, last_status) {
        (Some(at), Some(status)) => Some((from_ms(at)?, u16::try_from(status).unwrap_or(0))),
        _ => None,
    };
    Ok(TenantHealth {
        tenant_id,
        name,
        last_request,
        last_success_at: opt_from_ms(last_success)?,
        requests_24h: n(requests),
        failures_24h: n(failures),
        token_expires_at: opt_from_ms(token)?,
        guard_tripped_at: opt_from_ms(tripped)?,
        guard_held_users: n(held),
        webhooks: WebhookHealth {
            failing: n(failing),
            max_attempts: if failing > 0 { n(attempts) } else { 0 },
            last_error,
        },
    })
}

/// A value bound to a placeholder of [`log_query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bind {
    Int(i64),
    Text(String),
}

/// `s` as a LIKE pattern that matches values containing it: `%`, `_` and `\` escaped with
/// `\` (the statements say `ESCAPE '\'`).
fn contains_pattern(s: &str) -> String {
    let mut p = String::with_capacity(s.len() + 2);
    p.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// A provisioning-log query of tenant (the first `?`) as SQL with `?` placeholders and the
/// values to bind after the tenant, in order; `cols` are the columns selected. Paging is by id
/// (keyset): newest first below `before`, or oldest first above `after`.
///
/// The text filter matches path, userName/displayName, request id and detail containing the
/// text, case-insensitively (the name is stored folded; the others are lowered with SQL's
/// `LOWER`, which on SQLite folds ASCII letters only). It is not indexed: it reads the tenant's
/// rows newest first (within `since`/`until`) until the page is full.
pub(crate) fn log_query(cols: &str, q: &LogQuery) -> (String, Vec<Bind>) {
    let mut sql = format!("SELECT {cols} FROM provisioning_log WHERE tenant_id = ?");
    let mut binds = Vec::new();
    let mut int = |sql: &mut String, frag: &str, v: i64| {
        sql.push_str(frag);
        binds.push(Bind::Int(v));
    };
    if let Some(t) = q.since {
        int(&mut sql, " AND at >= ?", to_ms(t));
    }
    if let Some(t) = q.until {
        int(&mut sql, " AND at < ?", to_ms(t));
    }
    if let Some(c) = q.status_class {
        let (lo, hi) = c.range();
        int(&mut sql, " AND status >= ?", i64::from(lo));
        int(&mut sql, " AND status < ?", i64::from(hi));
    }
    let order = if let Some(a) = q.after {
        int(&mut sql, " AND id > ?", a);
        "ASC"
    } else {
        if let Some(b) = q.before {
            int(&mut sql, " AND id < ?", b);
        }
        "DESC"
    };
    match q.outcome {
        Some(Outcome::Success) => sql.push_str(" AND status < 400"),
        Some(Outcome::Failure) => sql.push_str(" AND status >= 400"),
        None => {}
    }
    if let Some(id) = &q.resource_id {
        sql.push_str(" AND resource_id = ?");
        binds.push(Bind::Text(id.clone()));
    }
    if let Some(n) = &q.name {
        sql.push_str(" AND name_lc = ?");
        binds.push(Bind::Text(scim_proto::filter::fold_case(n)));
    }
    if let Some(m) = &q.method {
        sql.push_str(" AND method = ?");
        binds.push(Bind::Text(m.to_ascii_uppercase()));
    }
    if let Some(text) = q.text.as_deref().filter(|t| !t.is_empty()) {
        sql.push_str(
            " AND (LOWER(path) LIKE ? ESCAPE '\\' OR name_lc LIKE ? ESCAPE '\\' \
             OR LOWER(request_id) LIKE ? ESCAPE '\\' OR LOWER(detail) LIKE ? ESCAPE '\\')",
        );
        let p = contains_pattern(&scim_proto::filter::fold_case(text));
        for _ in 0..4 {
            binds.push(Bind::Text(p.clone()));
        }
    }
    sql.push_str(&format!(" ORDER BY id {order} LIMIT ?"));
    binds.push(Bind::Int(crate::stored_form::to_i64(q.limit)));
    (sql, binds)
}

/// The [`HealthStore`](crate::health::HealthStore) of a backend, the same text on both (their
/// drivers share one query API and these statements are shared SQL): `$store` reads through
/// its field `$reader` and writes through its method `$write`. Expanded in each backend's
/// `ops.rs`, where the row helpers (`hour_from`, `health_from`, …) are in scope.
macro_rules! health_store {
    ($store:ty, $reader:ident, $write:ident) => {
        #[async_trait::async_trait]
        impl HealthStore for $store {
            #[tracing::instrument(skip_all)]
            async fn tenant_hourly(
                &self,
                tenant: &str,
                since: OffsetDateTime,
                until: OffsetDateTime,
            ) -> StoreResult<Vec<HourCount>> {
                let rows: Vec<HourRow> = db::query_as(HOURLY_SQL)
                    .bind(tenant)
                    .bind(to_ms(crate::health::hour_of(since)))
                    .bind(to_ms(until))
                    .fetch_all(&self.$reader)
                    .await
                    .map_err(backend)?;
                let rows = rows
                    .into_iter()
                    .map(hour_from)
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok(dense_hours(&rows, since, until))
            }

            #[tracing::instrument(skip_all)]
            async fn tenants_health(
                &self,
                after: Option<&str>,
                limit: u64,
                now: OffsetDateTime,
            ) -> StoreResult<Vec<TenantHealth>> {
                let rows: Vec<HealthRow> = db::query_as(TENANTS_HEALTH_SQL)
                    .bind(after.unwrap_or(""))
                    .bind(to_i64(limit))
                    .bind(to_ms(now))
                    .bind(health_since(now))
                    .fetch_all(&self.$reader)
                    .await
                    .map_err(backend)?;
                rows.into_iter().map(health_from).collect()
            }

            #[tracing::instrument(skip_all)]
            async fn tenant_health(
                &self,
                tenant: &str,
                now: OffsetDateTime,
            ) -> StoreResult<Option<TenantHealth>> {
                let row: Option<HealthRow> = db::query_as(TENANT_HEALTH_SQL)
                    .bind(tenant)
                    .bind(1_i64)
                    .bind(to_ms(now))
                    .bind(health_since(now))
                    .fetch_optional(&self.$reader)
                    .await
                    .map_err(backend)?;
                row.map(health_from).transpose()
            }

            #[tracing::instrument(skip_all)]
            async fn prune_hourly(&self, before: OffsetDateTime, batch: u64) -> StoreResult<u64> {
                let mut tx = self.$write().await?;
                let done = db::query(PRUNE_HOURLY_SQL)
                    .bind(prune_bound(before))
                    .bind(to_i64(batch))
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                tx.commit().await.map_err(backend)?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use health_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_patterns_escape_like_wildcards() {
        assert_eq!(contains_pattern("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
    }

    #[test]
    fn deltas_sum_per_tenant_and_hour_in_key_order() {
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        let e = |tenant: &str, s: i64, status: u16| ProvisioningEntry {
            id: 0,
            at: at(s),
            tenant_id: tenant.into(),
            request_id: String::new(),
            idp: None,
            user_agent: None,
            method: "POST".into(),
            path: "/".into(),
            resource_type: None,
            resource_id: None,
            name: None,
            status,
            scim_type: None,
            detail: None,
            hint: None,
            changed: vec![],
            duration_ms: 0,
            body: None,
            source_addr: None,
            token_prefix: None,
        };
        let d = hour_deltas(
            &[
                e("b", 10, 201),
                e("a", 3599, 404),
                e("a", 3600, 503),
                e("a", 20, 200),
                e("a", 100, 401),
            ],
            &[ReadCount {
                id: 0,
                tenant_id: "a".into(),
                route: "GET /Users".into(),
                minute: at(0),
                count: 5,
                last_status: 200,
                last_at: at(30),
            }],
        );
        let keys: Vec<_> = d.iter().map(|d| (d.tenant_id.as_str(), d.hour)).collect();
        assert_eq!(keys, [("a", 0), ("a", 3_600_000), ("b", 0)]);
        assert_eq!(
            (
                d[0].requests,
                d[0].failures,
                d[0].unauthorized,
                d[0].server_errors
            ),
            (7, 1, 0, 0),
            "the 401 row is a sample of counted refusals"
        );
        assert_eq!((d[0].last_at, d[0].last_status), (3_599_000, 404));
        assert_eq!(d[0].last_success_at, Some(30_000));
        assert_eq!(
            (d[1].failures, d[1].server_errors, d[1].last_success_at),
            (1, 1, None)
        );
    }
}
