//! Server-wide values recorded in the database, so that every process on it agrees on them:
//! `roster serve` records the public URL it answers on, and the `roster` CLI reads it to print
//! base URLs and setup links that work.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::StoreResult;

/// The key of the public URL (`roster serve --public-url`), absent when the server takes
/// scheme and host from each request's `Host` header.
pub const PUBLIC_URL: &str = "public_url";
/// The key of the address the last started `roster serve` listens on, as `http://HOST:PORT`.
pub const LISTEN_URL: &str = "listen_url";
/// The key of the custom schemas declared for every tenant (a JSON list of
/// [`scim_proto::custom::CustomSchema`]), absent when there are none.
pub const GLOBAL_CUSTOM_SCHEMAS: &str = "custom_schemas";

/// A small key-value record of server-wide values (not tenant data).
#[async_trait]
pub trait MetaStore: Send + Sync {
    /// The value recorded under `key`, `None` when there is none.
    async fn meta(&self, key: &str) -> StoreResult<Option<String>>;
    /// Records `value` under `key`, replacing what was there; `None` clears it.
    async fn set_meta(&self, key: &str, value: Option<&str>) -> StoreResult<()>;
    /// Claims this period's run of the periodic job `job` for `node`: true when the job last
    /// ran at least `period` before `now` (or never), and records `now` as its last run in the
    /// same conditional write. Of several processes on one database claiming at once, exactly
    /// one gets true, so each job runs once per period across all of them.
    async fn claim_job(
        &self,
        job: &str,
        node: &str,
        period: time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
}
