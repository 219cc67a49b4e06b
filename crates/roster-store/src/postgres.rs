//! The PostgreSQL implementation of [`Store`](crate::Store), for installations that outgrow one
//! SQLite file or run several Roster nodes on one database.
//!
//! The same store core runs on it (`domain`, over [`Rows`](crate::domain::rows::Rows)), with
//! the same schema shape as SQLite's (`migrations/postgres/`). What differs is concurrency:
//! PostgreSQL has no database-wide write lock, so every write transaction of a tenant first
//! locks the tenant's row in `tenant_writes` (see [`db::Pool::begin_write`]). That serialises
//! one tenant's writers — what the store core's rules assume (the doc comment of each core
//! operation says what must not change between its reads and its writes) and what keeps event
//! seqs gap-free and in commit order — while different tenants write in parallel. Writes to
//! global tables (operators, admin keys, webhooks, the audit log) take no tenant lock. Reads
//! run in REPEATABLE READ transactions: one snapshot per request, as SQLite's WAL gives.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use scim_proto::schema::ResourceKind;
use time::OffsetDateTime;

use crate::domain::query::Arg;
use crate::{StoreError, StoreResult, StoredResource, Tenant, TokenRecord};

mod app;
mod console;
pub(crate) mod db;
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
mod tests_ops;

use crate::domain::query;

use db::{Conn, Lock, Pool};

/// A write transaction (see [`PostgresStore::write`]).
type Tx = Conn;

/// Connections per store (per process) unless the URL says otherwise (`pool_max_size`).
const DEFAULT_POOL: usize = 16;
/// Values per `IN (…)` list (PostgreSQL allows 65,535 parameters per statement).
const CHUNK: usize = 1000;

/// A Store backed by a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// Bumped after every commit that appended events (see `EventStore::subscribe`).
    committed: Arc<tokio::sync::watch::Sender<u64>>,
    /// Bumped after every write to tokens, tenants or admin keys (see `Store::auth_changes`).
    auth_changes: Arc<AtomicU64>,
}

/// Moves [`PostgresStore::auth_changes`] when dropped (see SQLite's `AuthChange`: a write to
/// tokens, tenants or admin keys holds one across its commit).
struct AuthChange(Arc<AtomicU64>);

impl Drop for AuthChange {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// The connection settings a `postgres://` URL gives, and the pool size (`pool_max_size`, a
/// Roster parameter removed before the URL reaches the driver).
fn parse_url(url: &str) -> StoreResult<(tokio_postgres::Config, usize)> {
    let bad = |why: String| StoreError::Backend(format!("database URL: {why}").into());
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut size = DEFAULT_POOL;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("pool_max_size", v)) => {
                size = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(format!("pool_max_size must be a positive number, not {v:?}")))?;
            }
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
    Ok((config, size))
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER@HOST:PORT/DB`) and runs the pending
    /// migrations.
    ///
    /// # Errors
    /// `Backend` when the URL is invalid, the database cannot be reached or a migration fails.
    pub async fn open(url: &str) -> StoreResult<PostgresStore> {
        let (config, size) = parse_url(url)?;
        let pool = Pool::new(config, size).map_err(backend)?;
        let mut c = pool.get().await.map_err(|e| {
            StoreError::Backend(format!("cannot connect to the PostgreSQL database: {e}").into())
        })?;
        migrate::run(&mut c).await?;
        drop(c);
        Ok(PostgresStore {
            pool,
            committed: Arc::new(tokio::sync::watch::Sender::new(0)),
            auth_changes: Arc::default(),
        })
    }

    /// Starts a write transaction holding `tenant`'s write lock.
    async fn write(&self, tenant: &str) -> StoreResult<Conn> {
        self.pool
            .begin_write(Lock::Tenant(tenant))
            .await
            .map_err(backend)
    }

    /// Starts a write transaction on global tables only (no tenant lock).
    async fn write_global(&self) -> StoreResult<Conn> {
        self.pool.begin_write(Lock::Global).await.map_err(backend)
    }

    /// Starts a read transaction (one snapshot).
    async fn read(&self) -> StoreResult<Conn> {
        self.pool.begin_read().await.map_err(backend)
    }

    /// Commits a write transaction.
    async fn commit(&self, tx: Conn) -> StoreResult<()> {
        tx.commit().await.map_err(backend)
    }

    /// Commits a write transaction that appended events, and wakes the event readers.
    async fn commit_events(&self, tx: Conn) -> StoreResult<()> {
        tx.commit().await.map_err(backend)?;
        self.committed.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    /// The guard a write to tokens, tenants or admin keys holds across its commit.
    fn auth_change(&self) -> AuthChange {
        AuthChange(self.auth_changes.clone())
    }
}

fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// Maps a database error; a unique violation becomes `Conflict(unique)` and a foreign-key
/// violation (an unknown tenant) `NotFound`.
fn db_err(e: db::Error, unique: &'static str) -> StoreError {
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

fn from_ms(ms: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(backend)
}

fn opt_from_ms(ms: Option<i64>) -> StoreResult<Option<OffsetDateTime>> {
    ms.map(from_ms).transpose()
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn args_of(args: &[Arg]) -> Vec<db::Param> {
    args.iter()
        .map(|arg| match arg {
            Arg::Text(s) => db::Param::Text(s.clone()),
            Arg::Int(i) => db::Param::Int(*i),
        })
        .collect()
}

/// `resources` columns read for a [`StoredResource`].
const RESOURCE_COLS: &str = "r.pk, r.id, r.version, r.doc, r.created, r.last_modified";
type ResourceRow = (i64, String, i64, String, i64, i64);

fn stored(kind: ResourceKind, row: ResourceRow) -> StoreResult<(i64, StoredResource)> {
    let (pk, id, version, doc, created, last_modified) = row;
    Ok((
        pk,
        StoredResource {
            id,
            kind,
            doc: serde_json::from_str(&doc).map_err(backend)?,
            version,
            created: from_ms(created)?,
            last_modified: from_ms(last_modified)?,
        },
    ))
}

/// `(id, name, idp, created_at, settings)` as selected from `tenants`.
type TenantRow = (String, String, String, i64, String);

fn tenant_from_row((id, name, idp, created, settings): TenantRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id,
        name,
        idp,
        created_at: from_ms(created)?,
        settings: serde_json::from_str(&settings).map_err(backend)?,
    })
}

const TOKEN_COLS: &str =
    "prefix, tenant_id, hash, created_at, expires_at, last_used_at, revoked_at";
type TokenRow = (String, String, String, i64, i64, Option<i64>, Option<i64>);

fn token_from(row: TokenRow) -> StoreResult<TokenRecord> {
    let (prefix, tenant_id, hash, created, expires, used, revoked) = row;
    Ok(TokenRecord {
        prefix,
        tenant_id,
        hash,
        created_at: from_ms(created)?,
        expires_at: from_ms(expires)?,
        last_used_at: opt_from_ms(used)?,
        revoked_at: opt_from_ms(revoked)?,
    })
}
