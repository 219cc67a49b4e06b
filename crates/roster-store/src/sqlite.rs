//! The SQLite implementation of [`Store`](crate::Store): one file, WAL, durable commits.
//!
//! One writer connection serialises the writes of this process (every write batch starts with
//! `BEGIN IMMEDIATE`, so a concurrent writer in another process — the `roster` CLI — waits on
//! `busy_timeout` instead of failing on a lock upgrade), and a pool of read-only connections
//! serves reads, so that reads never queue behind writes (WAL gives each read transaction a
//! consistent snapshot). The driver is rusqlite, with statements run inline (see [`db`]).
//!
//! Resources are stored as their JSON document plus indexed columns derived from it on every
//! write; filters on those columns are translated to SQL (see [`query`]) and everything else is
//! evaluated in memory on the SQL-selected candidates.
//!
//! Writes use group commit (see [`writer`]): concurrent write transactions of this process
//! share one SQLite transaction and one fsync, each in its own savepoint, and none returns
//! before the shared commit is durable (`synchronous=FULL`).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use scim_proto::schema::ResourceKind;
use time::OffsetDateTime;

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
pub mod backup;
mod checkpoint;
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
mod tests;
#[cfg(test)]
mod tests_auth;
#[cfg(test)]
mod tests_provlog;
#[cfg(test)]
mod tests_reads;
mod writer;

use crate::domain::query;
use crate::domain::query::{to_ms, Arg};
use db::{Connection, Pool};

/// How long a connection waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections in the reader pool.
const READERS: usize = 4;
/// Ids per `IN (…)` list, well below SQLite's bound-parameter limit.
const CHUNK: usize = 500;

/// The tables whose rows record a last use (see `SqliteStore::touch_last_used`).
#[derive(Debug, Clone, Copy)]
enum LastUsed {
    Tokens,
    AdminKeys,
}

/// A Store backed by one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Group commit over the one connection that writes.
    group: writer::Writer,
    /// Read-only connections.
    reader: Pool,
    /// Removes a throwaway database's files when the last clone of the store is dropped.
    _scratch: Option<std::sync::Arc<Scratch>>,
    /// Checkpoints the WAL beside the writer; stops with the last clone of the store.
    _checkpointer: Option<std::sync::Arc<checkpoint::Checkpointer>>,
    /// Bumped after every commit that appended events (see `EventStore::subscribe`).
    committed: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// Bumped after every write to tokens, tenants or admin keys (see `Store::auth_changes`).
    auth_changes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Moves [`SqliteStore::auth_changes`] when dropped. A write to tokens, tenants or admin keys
/// takes one before its commit and keeps it to the end of the method, so the counter moves
/// after the commit — and also when the caller's future is dropped between the commit and
/// the return, which a counter bumped by a plain statement after the commit would miss. A
/// write that fails or rolls back moves it too, which costs a cache refill and nothing else.
struct AuthChange(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Drop for AuthChange {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}

type Tx = writer::WriteTx;
/// A read transaction on a reader connection: one consistent snapshot (WAL).
type ReadTx = db::ReadTx;

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
    let user_name = db::message(&e).is_some_and(|m| m.contains("user_name_lc"));
    db_err(e, if user_name { "userName" } else { "id" })
}

#[allow(clippy::unnecessary_wraps)] // keeps the call sites' `?` for a driver that can fail
fn args_of(args: &[Arg]) -> StoreResult<Vec<db::Param>> {
    Ok(args
        .iter()
        .map(|arg| match arg {
            Arg::Text(s) => db::Param::Text(s.clone()),
            Arg::Int(i) => db::Param::Integer(*i),
        })
        .collect())
}

/// The file a `sqlite:` URL names, or `None` for an in-memory (throwaway) database.
///
/// Accepted: `sqlite://relative/path.db`, `sqlite:///abs/path.db`, `sqlite:path.db`, and
/// `sqlite::memory:` (or any URL with `mode=memory`); query parameters are ignored.
pub(crate) fn database_path(url: &str) -> StoreResult<Option<PathBuf>> {
    let bad = |why: &str| StoreError::Backend(format!("database URL {url:?}: {why}").into());
    let rest = url
        .strip_prefix("sqlite:")
        .ok_or_else(|| bad("Roster's SQLite store takes a sqlite: URL"))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    if rest == ":memory:" || rest == "//:memory:" || query.split('&').any(|p| p == "mode=memory") {
        return Ok(None);
    }
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.is_empty() {
        return Err(bad("the path is empty (for example sqlite://roster.db)"));
    }
    Ok(Some(PathBuf::from(path)))
}

/// Says which file could not be opened, and what usually helps.
fn open_err(path: &std::path::Path, e: db::Error) -> StoreError {
    StoreError::Backend(
        format!(
            "cannot open the database file {}: {e} (does its directory exist, and may Roster \
             write there?)",
            path.display()
        )
        .into(),
    )
}

/// A throwaway database file for `sqlite::memory:`: separate connections must see one
/// database, which SQLite's in-memory databases do not give without a shared cache (and its
/// table locks). Removed, with its WAL files, when the store is dropped.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Self(std::env::temp_dir().join(format!(
            "roster-scratch-{}-{}-{}.db",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            uuid::Uuid::new_v4().simple()
        )))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` — `sqlite://roster.db`,
    /// `sqlite:///abs/path.db` or `sqlite::memory:` — and runs the embedded migrations.
    ///
    /// # Errors
    /// `Backend` when the URL is invalid, the file cannot be opened or a migration fails.
    pub async fn open(url: &str) -> StoreResult<SqliteStore> {
        let (path, scratch) = match database_path(url)? {
            Some(path) => (path, None),
            None => {
                let s = Scratch::new();
                (s.0.clone(), Some(std::sync::Arc::new(s)))
            }
        };
        let options = db::Options {
            path,
            busy_timeout: BUSY_TIMEOUT,
            // A write is acknowledged only once it is durable; a throwaway database need not be.
            durable: scratch.is_none(),
        };
        let opened = options.clone();
        let conn = tokio::task::spawn_blocking(move || -> StoreResult<Connection> {
            let mut conn = opened
                .open_writer()
                .map_err(|e| open_err(&opened.path, e))?;
            migrate::run(&mut conn)?;
            if opened.durable {
                conn.pragma_update(
                    None,
                    "wal_autocheckpoint",
                    checkpoint::WRITER_AUTOCHECKPOINT,
                )
                .map_err(|e| open_err(&opened.path, e))?;
            }
            Ok(conn)
        })
        .await
        .map_err(backend)??;
        let committed = std::sync::Arc::new(tokio::sync::watch::Sender::new(0));
        // A throwaway database is never fsynced: the writer's automatic checkpoint is cheap.
        let checkpointer = if options.durable {
            checkpoint::Checkpointer::start(&options).map(std::sync::Arc::new)
        } else {
            None
        };
        Ok(SqliteStore {
            group: writer::Writer::new(conn, committed.clone()),
            reader: Pool::new(options, READERS),
            _scratch: scratch,
            _checkpointer: checkpointer,
            committed,
            auth_changes: std::sync::Arc::default(),
        })
    }

    /// How to open more connections to this store's file (for `copy`, which reads the whole
    /// database in one read transaction of its own); `None` for a throwaway database.
    pub(crate) fn file_options(&self) -> Option<db::Options> {
        self._scratch
            .is_none()
            .then(|| self.reader.options().clone())
    }

    /// Starts a write transaction: a savepoint in the current group-commit batch, whose
    /// `BEGIN IMMEDIATE` took the write lock up front. The savepoint rolls back when dropped
    /// uncommitted, so every early return is safe and leaves the other writers' work alone.
    async fn write(&self) -> StoreResult<Tx> {
        self.group.begin().await.map_err(backend)
    }

    /// Commits a write transaction (returns once its batch is durable); the batch commit
    /// wakes the event readers.
    async fn commit(&self, tx: Tx) -> StoreResult<()> {
        tx.commit().await.map_err(backend)
    }

    /// Records the last uses of tokens or admin keys (by prefix) in one transaction; a time
    /// never moves backwards, and only `last_used_at` is set, which the auth-epoch triggers
    /// ignore (a use is not a change of what authenticates).
    async fn touch_last_used(
        &self,
        table: LastUsed,
        uses: &[(String, OffsetDateTime)],
    ) -> StoreResult<()> {
        let sql = format!(
            "UPDATE {} SET last_used_at = MAX(COALESCE(last_used_at, ?1), ?1) WHERE prefix = ?2",
            match table {
                LastUsed::Tokens => "tokens",
                LastUsed::AdminKeys => "admin_keys",
            }
        );
        let mut tx = self.write().await?;
        for (prefix, at) in uses {
            db::query(&sql)
                .bind(to_ms(*at))
                .bind(prefix)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    /// The guard a write to tokens, tenants or admin keys holds across its commit.
    fn auth_change(&self) -> AuthChange {
        AuthChange(self.auth_changes.clone())
    }

    /// The pk of a live resource (in a write or a read transaction).
    async fn live_pk(
        tx: &mut Connection,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
    ) -> StoreResult<Option<i64>> {
        db::query_scalar(
            "SELECT pk FROM resources \
             WHERE tenant_id = ? AND kind = ? AND id = ? AND deleted = 0 AND managed = 1",
        )
        .bind(tenant)
        .bind(kind.as_str())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)
    }

    /// Lists resources; `force_memory` evaluates the filter purely in memory (for tests that
    /// compare both paths).
    async fn list_impl(
        &self,
        tenant: &str,
        kind: ResourceKind,
        query: &ListQuery,
        force_memory: bool,
    ) -> StoreResult<Page> {
        // One read transaction: the count and the page (and member lists) see one snapshot.
        let mut tx = self.reader.begin().await.map_err(backend)?;
        Self::list_in(&mut tx, tenant, kind, query, force_memory).await
    }

    /// [`Self::list_impl`] inside the caller's read transaction, so that the caller can read
    /// more (the page's relations, see `reads`) in the same snapshot.
    async fn list_in(
        tx: &mut Connection,
        tenant: &str,
        kind: ResourceKind,
        query: &ListQuery,
        force_memory: bool,
    ) -> StoreResult<Page> {
        crate::domain::list::list(tx, tenant, kind, query, force_memory).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    #[tracing::instrument(skip_all)]
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        let mut tx = self.write().await?;
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
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn get_tenant(&self, id: &str) -> StoreResult<Option<Tenant>> {
        let row: Option<TenantRow> = db::query_as(
            "SELECT id, name, idp, created_at, settings FROM tenants \
             WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(tenant_from_row).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        let rows: Vec<TenantRow> = db::query_as(
            "SELECT id, name, idp, created_at, settings FROM tenants WHERE deleted_at IS NULL \
             ORDER BY created_at, rowid",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(tenant_from_row).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let mut tx = self.write().await?;
        crate::domain::tenants::insert_token(&mut *tx, token).await?;
        let _auth = self.auth_change();
        self.commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn rotate_tokens(&self, token: &TokenRecord, now: OffsetDateTime) -> StoreResult<()> {
        let mut tx = self.write().await?;
        crate::domain::tenants::rotate_token(&mut *tx, token, None, false, now).await?;
        let _auth = self.auth_change();
        self.commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_token(
        &self,
        tenant: &str,
        prefix: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        crate::domain::tenants::revoke_token(&mut *tx, tenant, prefix, now).await?;
        let _auth = self.auth_change();
        self.commit(tx).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_tokens(&self, tenant: &str) -> StoreResult<Vec<TokenRecord>> {
        let rows: Vec<TokenRow> = db::query_as(&format!(
            "SELECT {TOKEN_COLS} FROM tokens WHERE tenant_id = ? ORDER BY created_at DESC, rowid DESC"
        ))
        .bind(tenant)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(token_from).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn find_token(&self, prefix: &str) -> StoreResult<Option<TokenRecord>> {
        let row: Option<TokenRow> =
            db::query_as(&format!("SELECT {TOKEN_COLS} FROM tokens WHERE prefix = ?"))
                .bind(prefix)
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
        row.map(token_from).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn touch_token(&self, prefix: &str, now: OffsetDateTime) -> StoreResult<()> {
        // One durable write per authenticated request; if that ever shows in profiles, skip
        // the update when last_used_at is recent enough.
        let mut tx = self.write().await?;
        let done = db::query("UPDATE tokens SET last_used_at = ? WHERE prefix = ?")
            .bind(to_ms(now))
            .bind(prefix)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(backend)
    }

    #[tracing::instrument(skip_all, fields(n = uses.len()))]
    async fn touch_tokens(&self, uses: &[(String, OffsetDateTime)]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        self.touch_last_used(LastUsed::Tokens, uses).await
    }

    #[tracing::instrument(skip_all)]
    async fn auth_epoch(&self) -> StoreResult<i64> {
        db::query_scalar("SELECT n FROM auth_epoch WHERE id = 1")
            .fetch_one(&self.reader)
            .await
            .map_err(backend)
    }

    fn auth_changes(&self) -> u64 {
        self.auth_changes.load(std::sync::atomic::Ordering::Acquire)
    }

    fn pool_status(&self) -> Vec<crate::PoolStatus> {
        let (size, in_use) = self.reader.usage();
        vec![crate::PoolStatus {
            name: "read",
            size,
            in_use,
            waiting: 0,
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
        let mut tx = self.write().await?;
        let outcome = resources::create_resource(&mut *tx, tenant, kind, new, now).await?;
        self.commit(tx).await?;
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
            "SELECT {RESOURCE_COLS} FROM resources r \
             WHERE r.tenant_id = ? AND r.kind = ? AND r.id = ? AND r.deleted = 0 AND r.managed = 1"
        ))
        .bind(tenant)
        .bind(kind.as_str())
        .bind(id)
        .fetch_optional(&self.reader)
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
        self.list_impl(tenant, kind, query, false).await
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
        let mut tx = self.write().await?;
        match resources::update_resource(&mut *tx, tenant, kind, id, expected_version, update, now)
            .await?
        {
            Ok(stored) => {
                self.commit(tx).await?;
                Ok(stored)
            }
            Err(refused) => {
                // The guard's record of the refusal (the held operation, a trip) is kept.
                self.commit(tx).await?;
                Err(StoreError::GuardRefused(refused))
            }
        }
    }

    #[tracing::instrument(skip_all)]
    async fn update_members(
        &self,
        tenant: &str,
        group_id: &str,
        ops: &[MemberOp],
        now: OffsetDateTime,
    ) -> StoreResult<StoredResource> {
        let mut tx = self.write().await?;
        let stored = resources::update_members(&mut *tx, tenant, group_id, ops, now).await?;
        self.commit(tx).await?;
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
        let mut tx = self.write().await?;
        let outcome = resources::delete_resource(&mut *tx, tenant, kind, id, deletion, now).await?;
        // Refused, the guard's record of the refusal (the held operation, a trip) is kept.
        self.commit(tx).await?;
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
        let mut tx = self.reader.begin().await.map_err(backend)?;
        let Some(pk) = Self::live_pk(&mut tx, tenant, ResourceKind::Group, group_id).await? else {
            return Err(StoreError::NotFound);
        };
        let ids: Vec<String> =
            match after {
                Some(after) => {
                    db::query_scalar(
                        "SELECT member_id FROM members WHERE group_pk = ? AND member_id > ? \
                 ORDER BY member_id LIMIT ?",
                    )
                    .bind(pk)
                    .bind(after)
                    .bind(to_i64(limit))
                    .fetch_all(&mut *tx)
                    .await
                }
                None => db::query_scalar(
                    "SELECT member_id FROM members WHERE group_pk = ? ORDER BY member_id LIMIT ?",
                )
                .bind(pk)
                .bind(to_i64(limit))
                .fetch_all(&mut *tx)
                .await,
            }
            .map_err(backend)?;
        Ok(ids.into_iter().map(|id| Member { id }).collect())
    }

    #[tracing::instrument(skip_all)]
    async fn groups_of_user(&self, tenant: &str, user_id: &str) -> StoreResult<Vec<GroupRef>> {
        let mut tx = self.reader.begin().await.map_err(backend)?;
        let Some(pk) = Self::live_pk(&mut tx, tenant, ResourceKind::User, user_id).await? else {
            return Err(StoreError::NotFound);
        };
        let rows: Vec<(String, String)> = db::query_as(
            "SELECT g.id, COALESCE(json_extract(g.doc, '$.displayName'), '') \
             FROM members m JOIN resources g ON g.pk = m.group_pk \
             WHERE m.member_pk = ? AND g.deleted = 0 AND g.managed = 1 ORDER BY g.id",
        )
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
