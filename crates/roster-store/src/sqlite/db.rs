//! The SQLite driver: rusqlite (bundled SQLite) with statements run inline on the calling
//! task, behind a small query API shaped like the one the store code was written against.
//!
//! Why not sqlx's SQLite driver: it runs each connection on a worker thread and hands every
//! statement to it over a channel and back, so a request of a few statements costs as many
//! thread switches, which the profile showed as most of the server's CPU time under load
//! (docs/performance.md). A statement here runs on the async worker that asks for it; SQLite
//! work on an indexed row is microseconds, shorter than one thread hand-off. What can block
//! for long — `BEGIN IMMEDIATE` waiting on another process's lock, and the `COMMIT` that
//! fsyncs — runs on the blocking pool instead (see `writer`).
//!
//! The API (`query`, `query_as`, `query_scalar`, `bind`, `execute`, `fetch_*`) keeps the
//! store's SQL code independent of the driver's calling style; statements are prepared once
//! per connection and cached.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::{FromSql, ToSql, ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{params_from_iter, OpenFlags};

pub(crate) use rusqlite::Connection;
/// The driver's error.
pub(crate) type Error = rusqlite::Error;
/// A bound parameter, owned.
pub(crate) type Param = SqlValue;

/// Prepared statements kept per connection: the store's fixed statements plus the chunked
/// variants of its multi-row ones.
const STATEMENT_CACHE: usize = 256;

/// How connections are opened: the file, its pragmas, and whether writes are allowed.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The database file.
    pub path: PathBuf,
    /// How long a connection waits for another process's write lock.
    pub busy_timeout: Duration,
    /// `synchronous=FULL` (durable commits) or `OFF` (a throwaway database).
    pub durable: bool,
}

impl Options {
    /// Opens a read-write connection (creating the file), in WAL mode.
    pub(crate) fn open_writer(&self) -> Result<Connection, Error> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        self.configure(&c)?;
        c.pragma_update(None, "journal_mode", "WAL")?;
        // Deleted and overwritten row content is zeroed on the pages written anyway, so that
        // what a user's erase removes does not linger in the file's free space (no extra I/O;
        // the erase itself turns it fully on for its transaction).
        c.pragma_update(None, "secure_delete", "FAST")?;
        Ok(c)
    }

    /// Opens a read-only connection; the file must exist (the writer creates it).
    pub(crate) fn open_reader(&self) -> Result<Connection, Error> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        self.configure(&c)?;
        Ok(c)
    }

    fn configure(&self, c: &Connection) -> Result<(), Error> {
        c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        c.busy_timeout(self.busy_timeout)?;
        c.pragma_update(None, "foreign_keys", true)?;
        // Statement journals (each group-commit writer's savepoint keeps the original of every
        // page it changes) and sorts stay in memory: on disk, the savepoint journal's temp file
        // writes were a sixth of the write path's CPU under POST load (docs/performance.md).
        c.pragma_update(None, "temp_store", "MEMORY")?;
        c.pragma_update(
            None,
            "synchronous",
            if self.durable { "FULL" } else { "OFF" },
        )?;
        Ok(())
    }
}

/// What an `INSERT`, `UPDATE` or `DELETE` did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done {
    rows: u64,
}

impl Done {
    /// Rows changed by the statement.
    pub(crate) fn rows_affected(&self) -> u64 {
        self.rows
    }
}

/// A row read into memory, for code that reads columns by name.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    names: Arc<HashMap<String, usize>>,
    values: Vec<SqlValue>,
}

impl Row {
    /// The column `name`, converted.
    pub(crate) fn try_get<T: FromSql>(&self, name: &str) -> Result<T, Error> {
        let i = *self
            .names
            .get(name)
            .ok_or_else(|| Error::InvalidColumnName(name.to_owned()))?;
        let v = self.values.get(i).ok_or(Error::InvalidColumnIndex(i))?;
        T::column_result(ValueRef::from(v)).map_err(|e| match e {
            rusqlite::types::FromSqlError::InvalidType => {
                Error::InvalidColumnType(i, name.to_owned(), v.data_type())
            }
            other => Error::FromSqlConversionFailure(i, v.data_type(), Box::new(other)),
        })
    }
}

/// How a result row becomes a value.
pub(crate) trait FromRow: Sized {
    /// Converts the current row.
    fn from_row(row: &rusqlite::Row<'_>) -> Result<Self, Error>;
}

/// The marker of `query_scalar`: the first column as `T`.
pub(crate) struct Scalar<T>(PhantomData<T>);

/// The marker of `query` and `query_as`: the row as `O`.
pub(crate) struct As<O>(PhantomData<O>);

/// Decodes one result row into `Out`.
pub(crate) trait Decode {
    /// What a row becomes.
    type Out;
    /// Converts the current row.
    fn decode(row: &rusqlite::Row<'_>) -> Result<Self::Out, Error>;
}

impl<O: FromRow> Decode for As<O> {
    type Out = O;
    fn decode(row: &rusqlite::Row<'_>) -> Result<O, Error> {
        O::from_row(row)
    }
}

impl<T: FromSql> Decode for Scalar<T> {
    type Out = T;
    fn decode(row: &rusqlite::Row<'_>) -> Result<T, Error> {
        row.get(0)
    }
}

impl FromRow for Row {
    fn from_row(row: &rusqlite::Row<'_>) -> Result<Self, Error> {
        let stmt = row.as_ref();
        let n = stmt.column_count();
        let names = stmt
            .column_names()
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n.to_owned(), i))
            .collect();
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            values.push(SqlValue::from(row.get_ref(i)?));
        }
        Ok(Row {
            names: Arc::new(names),
            values,
        })
    }
}

macro_rules! tuple_from_row {
    ($($t:ident $i:tt),+) => {
        impl<$($t: FromSql),+> FromRow for ($($t,)+) {
            fn from_row(row: &rusqlite::Row<'_>) -> Result<Self, Error> {
                Ok(($(row.get::<_, $t>($i)?,)+))
            }
        }
    };
}

tuple_from_row!(A 0);
tuple_from_row!(A 0, B 1);
tuple_from_row!(A 0, B 1, C 2);
tuple_from_row!(A 0, B 1, C 2, D 3);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13);

/// A statement with its parameters, not yet run.
#[must_use = "a query does nothing until it is executed or fetched"]
pub(crate) struct Query<'q, D> {
    sql: &'q str,
    args: Vec<Param>,
    /// The first parameter that could not be converted; reported when the query runs.
    bad: Option<Error>,
    decode: PhantomData<fn() -> D>,
}

/// A statement whose rows are read by column name (or that returns none).
pub(crate) fn query(sql: &str) -> Query<'_, As<Row>> {
    raw(sql, Vec::new())
}

/// A statement whose rows are read as `O` (a tuple).
pub(crate) fn query_as<O: FromRow>(sql: &str) -> Query<'_, As<O>> {
    raw(sql, Vec::new())
}

/// A statement whose rows are read as their first column.
pub(crate) fn query_scalar<T: FromSql>(sql: &str) -> Query<'_, Scalar<T>> {
    raw(sql, Vec::new())
}

/// [`query`] with its parameters already bound.
pub(crate) fn query_with(sql: &str, args: Vec<Param>) -> Query<'_, As<Row>> {
    raw(sql, args)
}

fn raw<D>(sql: &str, args: Vec<Param>) -> Query<'_, D> {
    Query {
        sql,
        args,
        bad: None,
        decode: PhantomData,
    }
}

/// [`query_as`] with its parameters already bound.
pub(crate) fn query_as_with<O: FromRow>(sql: &str, args: Vec<Param>) -> Query<'_, As<O>> {
    raw(sql, args)
}

/// [`query_scalar`] with its parameters already bound.
pub(crate) fn query_scalar_with<T: FromSql>(sql: &str, args: Vec<Param>) -> Query<'_, Scalar<T>> {
    raw(sql, args)
}

/// Converts a value to an owned parameter.
pub(crate) fn param<T: ToSql + ?Sized>(v: &T) -> Result<Param, Error> {
    match v.to_sql()? {
        ToSqlOutput::Borrowed(r) => Ok(SqlValue::from(r)),
        ToSqlOutput::Owned(v) => Ok(v),
        _ => Err(Error::ToSqlConversionFailure(
            "a parameter of a kind the store does not bind".into(),
        )),
    }
}

impl<'q, D> Query<'q, D> {
    /// Binds the next `?` parameter.
    pub(crate) fn bind<T: ToSql>(mut self, v: T) -> Self {
        match param(&v) {
            Ok(p) => self.args.push(p),
            Err(e) => {
                self.args.push(SqlValue::Null);
                self.bad.get_or_insert(e);
            }
        }
        self
    }

    fn check(&mut self) -> Result<(), Error> {
        match self.bad.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs the statement and returns what it changed.
    pub(crate) async fn execute<E: Executor>(mut self, ex: E) -> Result<Done, Error> {
        self.check()?;
        let (sql, args) = (self.sql, self.args);
        ex.run(move |c| execute_on(c, sql, &args)).await
    }
}

impl<'q, D: Decode> Query<'q, D>
where
    D::Out: Send,
{
    /// Every row.
    pub(crate) async fn fetch_all<E: Executor>(mut self, ex: E) -> Result<Vec<D::Out>, Error> {
        self.check()?;
        let (sql, args) = (self.sql, self.args);
        ex.run(move |c| {
            log(sql);
            timed(sql, || {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(params_from_iter(args.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(D::decode(r)?);
                }
                Ok(out)
            })
        })
        .await
    }

    /// The first row, if any.
    pub(crate) async fn fetch_optional<E: Executor>(
        mut self,
        ex: E,
    ) -> Result<Option<D::Out>, Error> {
        self.check()?;
        let (sql, args) = (self.sql, self.args);
        ex.run(move |c| {
            log(sql);
            timed(sql, || {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(params_from_iter(args.iter()))?;
                match rows.next()? {
                    Some(r) => Ok(Some(D::decode(r)?)),
                    None => Ok(None),
                }
            })
        })
        .await
    }

    /// The first row; `QueryReturnedNoRows` when there is none.
    pub(crate) async fn fetch_one<E: Executor>(self, ex: E) -> Result<D::Out, Error> {
        self.fetch_optional(ex)
            .await?
            .ok_or(Error::QueryReturnedNoRows)
    }
}

/// The `tracing` target every statement is reported on, on the caller's thread and inside its
/// span: queries at `debug` (`RUST_LOG=roster_store::sql=debug` shows a request's SQL),
/// transaction control (`BEGIN`, `SAVEPOINT`, `COMMIT`, …) at `trace`.
pub(crate) const SQL_TARGET: &str = "roster_store::sql";

fn log(sql: &str) {
    tracing::debug!(target: SQL_TARGET, statement = sql);
}

/// A statement slower than this is logged as a warning: it held an async worker that long
/// (statements run inline), so every request queued behind it on that worker waited too.
const SLOW: Duration = Duration::from_millis(50);

/// Runs `f`, warning when it took longer than [`SLOW`].
fn timed<R>(sql: &str, f: impl FnOnce() -> R) -> R {
    let start = std::time::Instant::now();
    let r = f();
    let took = start.elapsed();
    if took >= SLOW {
        tracing::warn!(
            target: SQL_TARGET,
            ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            statement = sql,
            "slow statement"
        );
    }
    r
}

/// Runs a script of statements without parameters (transaction control, pragmas).
pub(crate) fn script(c: &Connection, sql: &str) -> Result<(), Error> {
    tracing::trace!(target: SQL_TARGET, statement = sql);
    c.execute_batch(sql)
}

/// Runs one statement (or, without parameters, a script of several) to completion.
pub(crate) fn execute_on(c: &Connection, sql: &str, args: &[Param]) -> Result<Done, Error> {
    log(sql);
    timed(sql, || execute_inner(c, sql, args))
}

fn execute_inner(c: &Connection, sql: &str, args: &[Param]) -> Result<Done, Error> {
    let mut st = match c.prepare_cached(sql) {
        Ok(st) => st,
        Err(Error::MultipleStatement) if args.is_empty() => {
            c.execute_batch(sql)?;
            return Ok(Done { rows: c.changes() });
        }
        Err(e) => return Err(e),
    };
    let rows = match st.execute(params_from_iter(args.iter())) {
        Ok(n) => n as u64,
        Err(Error::ExecuteReturnedResults) => {
            // `… RETURNING` run for its effect: step through the rows.
            let mut rows = st.query(params_from_iter(args.iter()))?;
            while rows.next()?.is_some() {}
            drop(rows);
            c.changes()
        }
        Err(e) => return Err(e),
    };
    Ok(Done { rows })
}

/// Where a statement runs: a connection held by the caller, or one taken from a pool for it.
pub(crate) trait Executor: Send {
    /// Runs `f` on a connection.
    fn run<R: Send>(
        self,
        f: impl FnOnce(&Connection) -> Result<R, Error> + Send,
    ) -> impl Future<Output = Result<R, Error>> + Send;
}

impl Executor for &mut Connection {
    fn run<R: Send>(
        self,
        f: impl FnOnce(&Connection) -> Result<R, Error> + Send,
    ) -> impl Future<Output = Result<R, Error>> + Send {
        std::future::ready(f(self))
    }
}

impl Executor for &Pool {
    async fn run<R: Send>(
        self,
        f: impl FnOnce(&Connection) -> Result<R, Error> + Send,
    ) -> Result<R, Error> {
        let c = self.acquire().await?;
        f(&c)
    }
}

/// A pool of read-only connections, opened on first use. Taking a connection waits only
/// when every connection is held (by a read transaction or a stream).
#[derive(Clone)]
pub(crate) struct Pool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    options: Options,
    idle: Mutex<Vec<Connection>>,
    permits: tokio::sync::Semaphore,
    size: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("path", &self.inner.options.path)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of at most `size` read-only connections.
    pub(crate) fn new(options: Options, size: usize) -> Self {
        Self {
            inner: Arc::new(PoolInner {
                options,
                idle: Mutex::new(Vec::with_capacity(size)),
                permits: tokio::sync::Semaphore::new(size),
                size,
            }),
        }
    }

    /// (most connections, connections taken now).
    pub(crate) fn usage(&self) -> (usize, usize) {
        let free = self.inner.permits.available_permits();
        (self.inner.size, self.inner.size.saturating_sub(free))
    }

    /// How its connections are opened.
    pub(crate) fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Takes a connection (opening one if none is idle).
    pub(crate) async fn acquire(&self) -> Result<Pooled, Error> {
        let permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| Error::InvalidQuery)?;
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(c) => c,
            None => self.inner.options.open_reader()?,
        };
        permit.forget();
        Ok(Pooled {
            conn: Some(conn),
            pool: self.inner.clone(),
        })
    }

    /// Starts a read transaction: one snapshot for every statement run in it (WAL).
    pub(crate) async fn begin(&self) -> Result<ReadTx, Error> {
        let c = self.acquire().await?;
        script(&c, "BEGIN")?;
        Ok(ReadTx { conn: c })
    }
}

/// A connection taken from a [`Pool`]; goes back when dropped.
pub(crate) struct Pooled {
    conn: Option<Connection>,
    pool: Arc<PoolInner>,
}

impl Deref for Pooled {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        #[allow(clippy::expect_used)] // taken out only in drop
        self.conn
            .as_ref()
            .expect("a pooled connection is present until dropped")
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Connection {
        #[allow(clippy::expect_used)] // taken out only in drop
        self.conn
            .as_mut()
            .expect("a pooled connection is present until dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            // A connection left inside a transaction (a panic mid-read) is closed, not reused.
            if c.is_autocommit() {
                self.pool
                    .idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(c);
            }
        }
        self.pool.permits.add_permits(1);
    }
}

/// A read transaction on a pooled connection: rolled back (it wrote nothing) when it ends.
pub(crate) struct ReadTx {
    conn: Pooled,
}

impl Deref for ReadTx {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl DerefMut for ReadTx {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for ReadTx {
    fn drop(&mut self) {
        if !self.conn.is_autocommit() {
            if let Err(e) = script(&self.conn, "ROLLBACK") {
                tracing::warn!(error = %e, "ending a read transaction failed");
            }
        }
    }
}

/// `true` when `e` is a violation of a UNIQUE or PRIMARY KEY constraint.
pub(crate) fn is_unique_violation(e: &Error) -> bool {
    matches!(e, Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// `true` when `e` is a violation of a FOREIGN KEY constraint.
pub(crate) fn is_foreign_key_violation(e: &Error) -> bool {
    matches!(e, Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

/// The message SQLite gave with `e`, if any.
pub(crate) fn message(e: &Error) -> Option<&str> {
    match e {
        Error::SqliteFailure(_, Some(m)) => Some(m),
        _ => None,
    }
}
