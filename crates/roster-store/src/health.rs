//! The health of tenants at a glance: requests and failures per tenant and hour (a rollup the
//! provisioning log's writer keeps in the same transaction as the rows and read counts it
//! sums), and one page of tenants with what an operator must notice first (the last success,
//! failures in the last 24 hours, a token about to expire, a guard holding deactivations, a
//! failing webhook).
//!
//! Both answers are bounded reads of small tables, whatever the length of the log: the rollup
//! has one row per tenant and hour, and a page of tenants reads a few index entries per tenant.
//! The SQL is the same on every backend ([`crate::health_sql`]); a backend only runs it.

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::StoreResult;

/// Requests and failures of one tenant in one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourCount {
    /// The start of the hour (UTC).
    pub hour: OffsetDateTime,
    /// Requests answered: logged rows (writes and failures) and counted successful reads.
    pub requests: u64,
    /// Requests answered with a status of 400 or more (401 and 5xx included).
    pub failures: u64,
    /// Requests answered 401 (a token missing, wrong, expired or revoked).
    pub unauthorized: u64,
    /// Requests answered with a status of 500 or more.
    pub server_errors: u64,
}

/// The delivery state of a tenant's webhook streams, summed up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookHealth {
    /// Streams failing now: consecutive failed attempts, or parked after the retries gave up.
    pub failing: u64,
    /// The most consecutive failed attempts of a stream of the tenant (0: none failing).
    pub max_attempts: u64,
    /// The last error of the failing stream with the most attempts. (A stream keeps its last
    /// error after it recovers, so an error alone does not make a stream failing.)
    pub last_error: Option<String>,
}

/// What the tenants list shows of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantHealth {
    /// The tenant's id.
    pub tenant_id: String,
    /// Its display name.
    pub name: String,
    /// When the newest request (logged or counted) arrived, and its status.
    pub last_request: Option<(OffsetDateTime, u16)>,
    /// When the newest request answered below 400 arrived.
    pub last_success_at: Option<OffsetDateTime>,
    /// Requests in the last 24 hours (the current hour and the 23 before it).
    pub requests_24h: u64,
    /// Failed requests (status 400 or more) in the same hours.
    pub failures_24h: u64,
    /// The soonest expiry of a live token (neither revoked nor expired); `None`: no live token.
    pub token_expires_at: Option<OffsetDateTime>,
    /// When the deprovisioning guard tripped, while it holds deactivations for an operator's
    /// decision; `None` when it is not holding.
    pub guard_tripped_at: Option<OffsetDateTime>,
    /// How many users the guard holds.
    pub guard_held_users: u64,
    /// The tenant's webhook delivery.
    pub webhooks: WebhookHealth,
}

/// How far back [`TenantHealth::failures_24h`] reaches: the hour `now` falls in and the 23
/// before it.
pub const HEALTH_HOURS: i64 = 24;

/// The rollup is kept at least this long, whatever the log's retention: the console's chart
/// shows 7 days.
pub const HOURLY_MIN_RETENTION: Duration = Duration::days(7);

/// The start of the hour `t` falls in: the key of the rollup.
#[must_use]
pub fn hour_of(t: OffsetDateTime) -> OffsetDateTime {
    let secs = t.unix_timestamp();
    OffsetDateTime::from_unix_timestamp(secs - secs.rem_euclid(3600)).unwrap_or(t)
}

/// Every hour of `[since, until)` (from the hour `since` falls in), with the counts of `rows`
/// (sorted by hour, as the store reads them) and zeros for the hours without a row, so that a
/// chart has one bar per hour.
#[must_use]
pub fn dense_hours(
    rows: &[HourCount],
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Vec<HourCount> {
    let mut out = Vec::new();
    let mut rows = rows.iter().peekable();
    let mut hour = hour_of(since);
    while hour < until {
        while rows.next_if(|r| r.hour < hour).is_some() {}
        match rows.next_if(|r| r.hour == hour) {
            Some(r) => out.push(*r),
            None => out.push(HourCount {
                hour,
                requests: 0,
                failures: 0,
                unauthorized: 0,
                server_errors: 0,
            }),
        }
        hour += Duration::HOUR;
    }
    out
}

/// Health reads for the console and the admin API.
#[async_trait]
pub trait HealthStore: Send + Sync {
    /// Every hour of `[since, until)` of a tenant, oldest first, from the hour `since` falls
    /// in; an hour without requests has zeros.
    async fn tenant_hourly(
        &self,
        tenant: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<Vec<HourCount>>;
    /// One page of live tenants by id, after `after`, with their health at `now`.
    async fn tenants_health(
        &self,
        after: Option<&str>,
        limit: u64,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<TenantHealth>>;
    /// The health of one live tenant at `now`; `None` if it does not exist or was deleted.
    async fn tenant_health(
        &self,
        tenant: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<TenantHealth>>;
    /// Deletes up to `batch` hours that ended at or before `before`; returns how many.
    async fn prune_hourly(&self, before: OffsetDateTime, batch: u64) -> StoreResult<u64>;
}
