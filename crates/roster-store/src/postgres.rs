//! The PostgreSQL implementation of [`Store`](crate::Store), for installations that outgrow one
//! SQLite file or run several Roster nodes on one database.
//!
//! The same store core runs on it (`domain`, over [`Rows`](crate::domain::rows::Rows)), with
//! the same schema shape as SQLite's (`migrations/postgres/`). What differs is concurrency:
//! PostgreSQL has no database-wide write lock, so every write transaction of a tenant first
//! locks the tenant's row in `tenant_writes` (see [`db::Pool::begin_tenant`]). That serialises
//! one tenant's writers — what the store core's rules assume (the doc comment of each core
//! operation says what must not change between its reads and its writes) and what keeps event
//! seqs gap-free and in commit order — while different tenants write in parallel. A tenant's
//! concurrent writes in this process share one such transaction, each in its own savepoint,
//! and one `COMMIT` (group commit, see `batch`). Writes to global tables (operators, admin
//! keys, webhooks, the audit log) take no tenant lock. A SCIM read is one or two statements
//! without a transaction (see `reads`); streamed reads run in REPEATABLE READ transactions.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use scim_proto::schema::ResourceKind;
use time::OffsetDateTime;

use crate::domain::query::{to_ms, Arg};
use crate::domain::resources;
use crate::{
    CreateOutcome, Deletion, GroupRef, ListQuery, Member, MemberOp, NewResource, Page,
    ResourceUpdate, Store, StoreError, StoreResult, StoredResource, Tenant, TokenRecord,
};

use crate::stored_form::{
    from_ms, opt_from_ms, stored, tenant_from_row, to_i64, token_from, ResourceRow, TenantRow,
    TokenRow, RESOURCE_COLS, TOKEN_COLS,
};
mod app;
mod batch;
mod console;
pub(crate) mod db;
mod listen;
mod meta;
mod migrate;
mod ops;
mod outbox;
mod reads;
mod rows;
mod tenants;
#[cfg(test)]
pub(crate) mod testdb;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_batch;
#[cfg(test)]
mod tests_ops;
#[cfg(test)]
mod tests_tenants_app;
mod tls;

use crate::domain::query;

use db::{Conn, Pool, Tx};

/// Connections per store (per process) unless the URL says otherwise (`pool_max_size`).
const DEFAULT_POOL: usize = 16;
/// Values per `IN (…)` list (PostgreSQL allows 65,535 parameters per statement).
const CHUNK: usize = 1000;

/// A Store backed by a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// Group commit of each tenant's writes (see [`batch`]).
    batches: batch::Batches,
    /// Bumped after every commit that appended events (see `EventStore::subscribe`).
    committed: Arc<tokio::sync::watch::Sender<u64>>,
    /// Bumped after every write to tokens, tenants or admin keys (see `Store::auth_changes`),
    /// by this process or, through `LISTEN`, by another.
    auth_changes: Arc<AtomicU64>,
    /// Hears other processes' commits (see [`listen`]); stops with the last clone.
    _listener: Arc<listen::Listener>,
    /// A test's throwaway database, dropped with the last clone of the store.
    #[cfg(test)]
    _testdb: Option<Arc<testdb::TestDb>>,
}

/// Moves [`PostgresStore::auth_changes`] when dropped (see SQLite's `AuthChange`: a write to
/// tokens, tenants or admin keys holds one across its commit).
struct AuthChange(Arc<AtomicU64>);

impl Drop for AuthChange {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// What a `postgres://` URL says: the driver's connection settings, the pool size
/// (`pool_max_size`, Roster's own parameter) and the TLS configuration (`sslmode` and
/// `sslrootcert`, read here with libpq's meanings; see [`tls`]). Roster's parameters are taken
/// out before the URL reaches the driver, which would refuse them.
fn parse_url(url: &str) -> StoreResult<(tokio_postgres::Config, usize, rustls::ClientConfig)> {
    let bad = |why: String| StoreError::Backend(format!("database URL: {why}").into());
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut size = DEFAULT_POOL;
    let mut mode = tls::SslMode::Prefer;
    let mut root: Option<std::path::PathBuf> = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("pool_max_size", v)) => {
                size = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    bad(format!(
                        "pool_max_size must be a positive number, not {v:?}"
                    ))
                })?;
            }
            Some(("sslmode", v)) => {
                mode = tls::SslMode::parse(v).ok_or_else(|| {
                    bad(format!(
                        "sslmode must be disable, allow, prefer, require, verify-ca or \
                         verify-full, not {v:?}"
                    ))
                })?;
            }
            Some(("sslrootcert", v)) => root = Some(std::path::PathBuf::from(v)),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config = tokio_postgres::Config::from_str(&rest).map_err(|e| bad(e.to_string()))?;
    if config.get_application_name().is_none() {
        config.application_name("roster");
    }
    config.ssl_mode(mode.driver());
    let tls = tls::client_config(mode, root.as_deref()).map_err(bad)?;
    Ok((config, size, tls))
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER@HOST:PORT/DB`) and runs the pending
    /// migrations.
    ///
    /// # Errors
    /// `Backend` when the URL is invalid, the database cannot be reached or a migration fails.
    pub async fn open(url: &str) -> StoreResult<PostgresStore> {
        let (config, size, tls) = parse_url(url)?;
        let pool = Pool::new(config.clone(), size, tls.clone()).map_err(backend)?;
        let mut c = pool.get().await.map_err(|e| {
            // The driver's message ("error connecting to server") hides the cause; say it.
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            StoreError::Backend(format!("cannot connect to the PostgreSQL database: {why}").into())
        })?;
        migrate::run(&mut c).await?;
        drop(c);
        let committed = Arc::new(tokio::sync::watch::Sender::new(0));
        let auth_changes: Arc<AtomicU64> = Arc::default();
        let listener = listen::start(
            config,
            tls,
            listen::Signals {
                committed: committed.clone(),
                auth_changes: auth_changes.clone(),
            },
        );
        stats_reporter(&pool);
        Ok(PostgresStore {
            batches: batch::Batches::new(pool.clone()),
            pool,
            committed,
            auth_changes,
            _listener: Arc::new(listener),
            #[cfg(test)]
            _testdb: None,
        })
    }

    /// The connection pool (for `copy`, which writes a whole installation in one transaction
    /// of its own).
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Starts a write of `tenant`: a savepoint in the tenant's group commit, whose
    /// transaction holds the tenant's write lock (see [`batch`]).
    async fn write(&self, tenant: &str) -> StoreResult<batch::WriteTx> {
        self.batches.begin(tenant).await.map_err(backend)
    }

    /// Starts a write transaction on global tables only (no tenant lock).
    async fn write_global(&self) -> StoreResult<Tx> {
        self.pool.begin_write().await.map_err(backend)
    }

    /// Starts a read transaction (one snapshot).
    async fn read(&self) -> StoreResult<Tx> {
        self.pool.begin_read().await.map_err(backend)
    }

    /// Commits a write transaction.
    async fn commit(&self, tx: impl Commit) -> StoreResult<()> {
        tx.commit().await.map_err(backend)
    }

    /// Commits a write transaction that appended events, and wakes the event readers.
    async fn commit_events(&self, tx: impl Commit) -> StoreResult<()> {
        tx.commit().await.map_err(backend)?;
        self.committed.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    /// The guard a write to tokens, tenants or admin keys holds across its commit.
    fn auth_change(&self) -> AuthChange {
        AuthChange(self.auth_changes.clone())
    }
}

/// A write transaction the store commits: a tenant's (a writer of its group commit) or one on
/// global tables.
trait Commit: Send {
    /// Commits it; returns once it is durable.
    fn commit(self) -> impl std::future::Future<Output = Result<(), db::Error>> + Send;
}

impl Commit for Tx {
    fn commit(self) -> impl std::future::Future<Output = Result<(), db::Error>> + Send {
        Tx::commit(self)
    }
}

impl Commit for batch::WriteTx {
    fn commit(self) -> impl std::future::Future<Output = Result<(), db::Error>> + Send {
        batch::WriteTx::commit(self)
    }
}

/// How often the statement counts are reported (see [`stats_reporter`]).
const STATS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Reports `pool`'s statement counts (cumulative) every [`STATS_EVERY`] while they move, as a
/// debug event of target `roster_store::sql_stats`; `bench/run.sh` turns two of them into
/// statements per request. Off unless that target is enabled; stops with the pool's last user.
fn stats_reporter(pool: &Pool) {
    if !tracing::enabled!(target: db::STATS_TARGET, tracing::Level::DEBUG) {
        return;
    }
    let stats = Arc::downgrade(pool.stats());
    tokio::spawn(async move {
        let mut last = None;
        loop {
            tokio::time::sleep(STATS_EVERY).await;
            let Some(stats) = stats.upgrade() else {
                return;
            };
            let now = stats.snapshot();
            if last == Some(now) {
                continue;
            }
            last = Some(now);
            let (statements, round_trips, batches, batched_writers) = now;
            tracing::debug!(
                target: db::STATS_TARGET,
                statements,
                round_trips,
                batches,
                batched_writers,
                "sql stats"
            );
        }
    });
}

/// A driver error as the store reports it: `Unavailable` when the database could not be
/// reached (see [`db::is_unavailable`]), `Backend` otherwise.
fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    if e.downcast_ref::<db::Error>()
        .is_some_and(db::is_unavailable)
    {
        return StoreError::Unavailable(e);
    }
    StoreError::Backend(e)
}

/// Maps a database error; a unique violation becomes `Conflict(unique)` and a foreign-key
/// violation (an unknown tenant) `NotFound`.
fn db_err(e: db::Error, unique: &'static str) -> StoreError {
    if db::is_unavailable(&e) {
        return backend(e);
    }
    if db::is_unique_violation(&e) {
        return StoreError::Conflict(unique);
    }
    if db::is_foreign_key_violation(&e) {
        return StoreError::NotFound;
    }
    backend(e)
}

/// Like [`db_err`] for `resources`, where two unique constraints can fire.
fn resource_err(e: db::Error) -> StoreError {
    let user_name = db::message(&e).is_some_and(|m| m.contains("user_name"));
    db_err(e, if user_name { "userName" } else { "id" })
}

fn args_of(args: &[Arg]) -> Vec<db::Param> {
    args.iter()
        .map(|arg| match arg {
            Arg::Text(s) => db::Param::Text(s.clone()),
            Arg::Int(i) => db::Param::Int(*i),
        })
        .collect()
}

#[async_trait]
impl Store for PostgresStore {
    #[tracing::instrument(skip_all)]
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        let mut tx = self.write(&tenant.id).await?;
        let settings = serde_json::to_string(&tenant.settings).map_err(backend)?;
        db::query(
            "INSERT INTO tenants (id, name, idp, created_at, settings) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(&tenant.idp)
        .bind(to_ms(tenant.created_at))
        .bind(settings)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_err(e, "tenant"))?;
        if tenant.settings.first_sync_review {
            // A tenant created for review holds its first sync from the start.
            let review = (false, true);
            crate::domain::review::settings_changed(&mut *tx, &tenant.id, review).await?;
        }
        let _auth = self.auth_change();
        self.commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn get_tenant(&self, id: &str) -> StoreResult<Option<Tenant>> {
        let row: Option<TenantRow> = db::query_as(
            "SELECT id, name, idp, created_at, settings FROM tenants \
             WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(tenant_from_row).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        let rows: Vec<TenantRow> = db::query_as(
            "SELECT id, name, idp, created_at, settings FROM tenants WHERE deleted_at IS NULL \
             ORDER BY created_at, ord",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(tenant_from_row).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let mut tx = self.write(&token.tenant_id).await?;
        crate::domain::tenants::insert_token(&mut *tx, token).await?;
        let _auth = self.auth_change();
        self.commit_events(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn rotate_tokens(&self, token: &TokenRecord, now: OffsetDateTime) -> StoreResult<()> {
        let mut tx = self.write(&token.tenant_id).await?;
        crate::domain::tenants::rotate_token(&mut *tx, token, None, false, now).await?;
        let _auth = self.auth_change();
        self.commit_events(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_token(
        &self,
        tenant: &str,
        prefix: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write(tenant).await?;
        crate::domain::tenants::revoke_token(&mut *tx, tenant, prefix, now).await?;
        let _auth = self.auth_change();
        self.commit_events(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_tokens(&self, tenant: &str) -> StoreResult<Vec<TokenRecord>> {
        let rows: Vec<TokenRow> = db::query_as(&format!(
            "SELECT {TOKEN_COLS} FROM tokens WHERE tenant_id = ? ORDER BY created_at DESC, ord DESC"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter().map(token_from).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn find_token(&self, prefix: &str) -> StoreResult<Option<TokenRecord>> {
        let row: Option<TokenRow> =
            db::query_as(&format!("SELECT {TOKEN_COLS} FROM tokens WHERE prefix = ?"))
                .bind(prefix)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        row.map(token_from).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn touch_token(&self, prefix: &str, now: OffsetDateTime) -> StoreResult<()> {
        let done = db::query("UPDATE tokens SET last_used_at = ? WHERE prefix = ?")
            .bind(to_ms(now))
            .bind(prefix)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(n = uses.len()))]
    async fn touch_tokens(&self, uses: &[(String, OffsetDateTime)]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        ops::touch_last_used(self, "tokens", uses).await
    }

    #[tracing::instrument(skip_all)]
    async fn auth_epoch(&self) -> StoreResult<i64> {
        db::query_scalar("SELECT n FROM auth_epoch WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    fn auth_changes(&self) -> u64 {
        self.auth_changes.load(Ordering::Acquire)
    }

    fn pool_status(&self) -> Vec<crate::PoolStatus> {
        let (size, in_use, waiting) = self.pool.usage();
        vec![crate::PoolStatus {
            name: "main",
            size,
            in_use,
            waiting,
        }]
    }

    #[tracing::instrument(skip_all)]
    async fn create_resource(
        &self,
        tenant: &str,
        kind: ResourceKind,
        new: NewResource,
        now: OffsetDateTime,
    ) -> StoreResult<CreateOutcome> {
        let mut tx = self.write(tenant).await?;
        let outcome = resources::create_resource(&mut *tx, tenant, kind, new, now).await?;
        self.commit_events(tx).await?;
        Ok(outcome)
    }

    #[tracing::instrument(skip_all)]
    async fn get_resource(
        &self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
    ) -> StoreResult<Option<StoredResource>> {
        let row: Option<ResourceRow> = db::query_as(&format!(
            "SELECT {RESOURCE_COLS} FROM resources r WHERE r.tenant_id = ? AND r.kind = ? \
             AND r.id = ? AND r.deleted = FALSE AND r.managed = TRUE"
        ))
        .bind(tenant)
        .bind(kind.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| stored(kind, r).map(|s| s.1)).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn list_resources(
        &self,
        tenant: &str,
        kind: ResourceKind,
        query: &ListQuery,
    ) -> StoreResult<Page> {
        let mut tx = self.read().await?;
        crate::domain::list::list(&mut *tx, tenant, kind, query, false).await
    }

    #[tracing::instrument(skip_all)]
    async fn update_resource(
        &self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        expected_version: i64,
        update: ResourceUpdate,
        now: OffsetDateTime,
    ) -> StoreResult<StoredResource> {
        let mut tx = self.write(tenant).await?;
        let outcome =
            resources::update_resource(&mut *tx, tenant, kind, id, expected_version, update, now)
                .await?;
        // Refused, the guard's record of the refusal (the held operation, a trip) is kept.
        self.commit_events(tx).await?;
        outcome.map_err(StoreError::GuardRefused)
    }

    #[tracing::instrument(skip_all)]
    async fn update_members(
        &self,
        tenant: &str,
        group_id: &str,
        ops: &[MemberOp],
        now: OffsetDateTime,
    ) -> StoreResult<StoredResource> {
        let mut tx = self.write(tenant).await?;
        let stored = resources::update_members(&mut *tx, tenant, group_id, ops, now).await?;
        self.commit_events(tx).await?;
        Ok(stored)
    }

    #[tracing::instrument(skip_all)]
    async fn delete_resource(
        &self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        deletion: Deletion,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write(tenant).await?;
        let outcome = resources::delete_resource(&mut *tx, tenant, kind, id, deletion, now).await?;
        // Refused, the guard's record of the refusal (the held operation, a trip) is kept.
        self.commit_events(tx).await?;
        outcome.map_err(StoreError::GuardRefused)
    }

    #[tracing::instrument(skip_all)]
    async fn list_members(
        &self,
        tenant: &str,
        group_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> StoreResult<Vec<Member>> {
        let mut tx = self.read().await?;
        let Some(pk) = live_pk(&mut tx, tenant, ResourceKind::Group, group_id).await? else {
            return Err(StoreError::NotFound);
        };
        let ids: Vec<String> = match after {
            Some(after) => {
                db::query_scalar(
                    "SELECT member_id FROM members WHERE tenant_id = ? AND group_pk = ? \
                     AND member_id > ? ORDER BY member_id LIMIT ?",
                )
                .bind(tenant)
                .bind(pk)
                .bind(after)
                .bind(to_i64(limit))
                .fetch_all(&mut *tx)
                .await
            }
            None => {
                db::query_scalar(
                    "SELECT member_id FROM members WHERE tenant_id = ? AND group_pk = ? \
                     ORDER BY member_id LIMIT ?",
                )
                .bind(tenant)
                .bind(pk)
                .bind(to_i64(limit))
                .fetch_all(&mut *tx)
                .await
            }
        }
        .map_err(backend)?;
        Ok(ids.into_iter().map(|id| Member { id }).collect())
    }

    #[tracing::instrument(skip_all)]
    async fn groups_of_user(&self, tenant: &str, user_id: &str) -> StoreResult<Vec<GroupRef>> {
        let mut tx = self.read().await?;
        let Some(pk) = live_pk(&mut tx, tenant, ResourceKind::User, user_id).await? else {
            return Err(StoreError::NotFound);
        };
        let rows: Vec<(String, String)> = db::query_as(
            "SELECT g.id, COALESCE(g.doc::json ->> 'displayName', '') \
             FROM members m JOIN resources g ON g.tenant_id = m.tenant_id AND g.pk = m.group_pk \
             WHERE m.tenant_id = ? AND m.member_pk = ? AND g.deleted = FALSE \
             AND g.managed = TRUE ORDER BY g.id",
        )
        .bind(tenant)
        .bind(pk)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        Ok(rows
            .into_iter()
            .map(|(id, display_name)| GroupRef { id, display_name })
            .collect())
    }

    // The SCIM read path: see `reads`.

    #[tracing::instrument(skip_all)]
    async fn read_resource(
        &self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        with: crate::Relations,
    ) -> StoreResult<Option<crate::ResourceRead>> {
        self.read_resource_impl(tenant, kind, id, with).await
    }

    #[tracing::instrument(skip_all)]
    async fn read_page(
        &self,
        tenant: &str,
        kind: ResourceKind,
        query: &ListQuery,
        with: crate::Relations,
    ) -> StoreResult<crate::PageRead> {
        self.read_page_impl(tenant, kind, query, with).await
    }

    #[tracing::instrument(skip_all)]
    async fn stream_group(
        &self,
        tenant: &str,
        group_id: &str,
        page: u64,
    ) -> StoreResult<Option<crate::GroupStream>> {
        self.stream_group_impl(tenant, group_id, page).await
    }
}

/// The pk of a live resource.
async fn live_pk(
    tx: &mut Conn,
    tenant: &str,
    kind: ResourceKind,
    id: &str,
) -> StoreResult<Option<i64>> {
    db::query_scalar(
        "SELECT pk FROM resources \
         WHERE tenant_id = ? AND kind = ? AND id = ? AND deleted = FALSE AND managed = TRUE",
    )
    .bind(tenant)
    .bind(kind.as_str())
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)
}
