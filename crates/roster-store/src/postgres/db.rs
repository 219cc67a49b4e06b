//! The PostgreSQL driver: tokio-postgres with a deadpool pool, behind the same small query API
//! as SQLite's (`query`, `query_as`, `query_scalar`, `bind`, `execute`, `fetch_*`), so that the
//! backend's code reads like SQLite's and differs where the SQL does.
//!
//! Statements are written with `?` (or `?N`) placeholders, as on SQLite, and renumbered to
//! PostgreSQL's `$N` before they are prepared; each connection caches its prepared statements
//! (bounded: the filter translator makes statements of as many shapes as clients send filters).
//!
//! Values cross in the store's few types (integers, booleans, text, floats) and adapt to the
//! type the server expects for a parameter or returns for a column: an integer binds to a
//! BIGINT, INTEGER or BOOLEAN parameter, a BOOLEAN column reads as a bool or 0/1. That keeps
//! SQL shared with SQLite (the translator's `r.active = ?` with 1) correct on both.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool as PgPool, RecyclingMethod};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// How long taking a connection may wait: for a free one, for a new one to connect, or for
/// an idle one's check.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Prepared statements a connection keeps before it forgets them all.
const STATEMENT_CACHE: usize = 512;

/// The driver's error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The server or the connection failed.
    #[error(transparent)]
    Pg(#[from] tokio_postgres::Error),
    /// No connection could be had from the pool (a timeout, a closed pool).
    #[error("no database connection: {0}")]
    Pool(String),
    /// A new connection could not be made (the server is down, refuses connections, or
    /// refuses this client).
    #[error("connecting to the database")]
    Connect(#[source] tokio_postgres::Error),
    /// `fetch_one` found no row.
    #[error("the query returned no rows")]
    NoRows,
    /// A column could not be read as the type asked for.
    #[error("column {0}: {1}")]
    Decode(String, String),
    /// The group commit this write was part of failed (every writer of the batch gets it).
    #[error("group commit failed: {0}")]
    Batch(Arc<Error>),
    /// The group-commit machinery itself failed (a task died, a write was misused).
    #[error("group commit: {0}")]
    Writer(String),
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Error::Connect(e),
            other => Error::Pool(other.to_string()),
        }
    }
}

/// A bound parameter, owned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    /// SQL NULL, of whatever type the parameter has.
    Null,
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A float.
    Float(f64),
    /// Text.
    Text(String),
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        let mismatch = |what: &str| -> BoxError { format!("cannot bind {what} as {ty}").into() };
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                #[allow(clippy::cast_precision_loss)] // whole numbers well inside 2^53
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().as_str().to_sql(ty, out),
                _ => Err(mismatch("an integer")),
            },
            Param::Bool(b) => match *ty {
                Type::BOOL => b.to_sql(ty, out),
                Type::INT8 => i64::from(*b).to_sql(ty, out),
                Type::INT4 => i32::from(*b).to_sql(ty, out),
                Type::INT2 => i16::from(*b).to_sql(ty, out),
                _ => Err(mismatch("a boolean")),
            },
            Param::Float(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                #[allow(clippy::cast_possible_truncation)]
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                _ => Err(mismatch("a float")),
            },
            Param::Text(s) => match *ty {
                // JSON's binary form is its text.
                Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
                | Type::UNKNOWN
                | Type::JSON => s.as_str().to_sql(ty, out),
                _ => Err(mismatch("text")),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A value that binds as a [`Param`].
pub(crate) trait IntoParam {
    /// The parameter.
    fn into_param(self) -> Param;
}

macro_rules! int_param {
    ($($t:ty),+) => {$(
        impl IntoParam for $t {
            fn into_param(self) -> Param {
                Param::Int(i64::from(self))
            }
        }
    )+};
}
int_param!(i64, i32, u32, i16, u16, u8);

impl IntoParam for usize {
    fn into_param(self) -> Param {
        Param::Int(i64::try_from(self).unwrap_or(i64::MAX))
    }
}

impl IntoParam for u64 {
    fn into_param(self) -> Param {
        Param::Int(i64::try_from(self).unwrap_or(i64::MAX))
    }
}

impl IntoParam for bool {
    fn into_param(self) -> Param {
        Param::Bool(self)
    }
}

impl IntoParam for f64 {
    fn into_param(self) -> Param {
        Param::Float(self)
    }
}

impl IntoParam for &str {
    fn into_param(self) -> Param {
        Param::Text(self.to_owned())
    }
}

impl IntoParam for String {
    fn into_param(self) -> Param {
        Param::Text(self)
    }
}

impl IntoParam for &String {
    fn into_param(self) -> Param {
        Param::Text(self.clone())
    }
}

impl IntoParam for Param {
    fn into_param(self) -> Param {
        self
    }
}

impl<T: IntoParam> IntoParam for Option<T> {
    fn into_param(self) -> Param {
        self.map_or(Param::Null, IntoParam::into_param)
    }
}

impl<T: IntoParam + Clone> IntoParam for &Option<T> {
    fn into_param(self) -> Param {
        self.clone().into_param()
    }
}

impl IntoParam for &i64 {
    fn into_param(self) -> Param {
        Param::Int(*self)
    }
}

/// A column value read as `Self`.
pub(crate) trait Col: Sized {
    /// Reads column `i` of `row`.
    fn col(row: &tokio_postgres::Row, i: usize) -> Result<Self, Error>;
}

fn decode_err(row: &tokio_postgres::Row, i: usize, why: impl std::fmt::Display) -> Error {
    let name = row
        .columns()
        .get(i)
        .map_or_else(|| i.to_string(), |c| c.name().to_owned());
    Error::Decode(name, why.to_string())
}

fn column_type(row: &tokio_postgres::Row, i: usize) -> Result<Type, Error> {
    row.columns()
        .get(i)
        .map(|c| c.type_().clone())
        .ok_or_else(|| decode_err(row, i, "no such column"))
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    i: usize,
) -> Result<T, Error> {
    row.try_get(i).map_err(|e| decode_err(row, i, e))
}

impl Col for Option<i64> {
    fn col(row: &tokio_postgres::Row, i: usize) -> Result<Self, Error> {
        Ok(match column_type(row, i)? {
            Type::INT8 => get::<Option<i64>>(row, i)?,
            Type::INT4 => get::<Option<i32>>(row, i)?.map(i64::from),
            Type::INT2 => get::<Option<i16>>(row, i)?.map(i64::from),
            Type::BOOL => get::<Option<bool>>(row, i)?.map(i64::from),
            other => return Err(decode_err(row, i, format!("{other} is not an integer"))),
        })
    }
}

impl Col for Option<bool> {
    fn col(row: &tokio_postgres::Row, i: usize) -> Result<Self, Error> {
        Ok(match column_type(row, i)? {
            Type::BOOL => get::<Option<bool>>(row, i)?,
            Type::INT8 | Type::INT4 | Type::INT2 => Option::<i64>::col(row, i)?.map(|n| n != 0),
            other => return Err(decode_err(row, i, format!("{other} is not a boolean"))),
        })
    }
}

impl Col for Option<f64> {
    fn col(row: &tokio_postgres::Row, i: usize) -> Result<Self, Error> {
        Ok(match column_type(row, i)? {
            Type::FLOAT8 => get::<Option<f64>>(row, i)?,
            Type::FLOAT4 => get::<Option<f32>>(row, i)?.map(f64::from),
            #[allow(clippy::cast_precision_loss)]
            Type::INT8 | Type::INT4 | Type::INT2 => Option::<i64>::col(row, i)?.map(|n| n as f64),
            other => return Err(decode_err(row, i, format!("{other} is not a number"))),
        })
    }
}

/// A column of whatever type, as a parameter value (a sort key read back for a cursor).
impl Col for Option<Param> {
    fn col(row: &tokio_postgres::Row, i: usize) -> Result<Self, Error> {
        Ok(Some(match column_type(row, i)? {
            Type::INT8 | Type::INT4 | Type::INT2 => {
                Option::<i64>::col(row, i)?.map_or(Param::Null, Param::Int)
            }
            Type::BOOL => Option::<bool>::col(row, i)?.map_or(Param::Null, Param::Bool),
            Type::FLOAT8 | Type::FLOAT4 => {
                Option::<f64>::col(row, i)?.map_or(Param::Null, Param::Float)
            }
            _ => get::<Option<String>>(row, i)?.map_or(Param::Null, Param::Text),
        }))
    }
}

impl Col for Option<String> {
    fn col(row: &tokio_postgres::Row, i: usize) -> Result<Self, Error> {
        get::<Option<String>>(row, i)
    }
}

macro_rules! non_null_col {
    ($($t:ty),+) => {$(
        impl Col for $t {
            fn col(row: &tokio_postgres::Row, i: usize) -> Result<Self, Error> {
                Option::<$t>::col(row, i)?.ok_or_else(|| decode_err(row, i, "unexpected NULL"))
            }
        }
    )+};
}
non_null_col!(i64, bool, f64, String);

impl Col for u64 {
    fn col(row: &tokio_postgres::Row, i: usize) -> Result<Self, Error> {
        u64::try_from(i64::col(row, i)?).map_err(|e| decode_err(row, i, e))
    }
}

/// A row read into memory, for code that reads columns by name.
#[derive(Debug)]
pub(crate) struct Row(tokio_postgres::Row);

impl Row {
    /// The column `name`, converted.
    pub(crate) fn try_get<T: Col>(&self, name: &str) -> Result<T, Error> {
        let i = self
            .0
            .columns()
            .iter()
            .position(|c| c.name() == name)
            .ok_or_else(|| Error::Decode(name.to_owned(), "no such column".to_owned()))?;
        T::col(&self.0, i)
    }
}

/// How a result row becomes a value.
pub(crate) trait FromRow: Sized {
    /// Converts a row.
    fn from_row(row: tokio_postgres::Row) -> Result<Self, Error>;
}

impl FromRow for Row {
    fn from_row(row: tokio_postgres::Row) -> Result<Self, Error> {
        Ok(Row(row))
    }
}

macro_rules! tuple_from_row {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Col),+> FromRow for ($($t,)+) {
            fn from_row(row: tokio_postgres::Row) -> Result<Self, Error> {
                Ok(($($t::col(&row, $i)?,)+))
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

/// The marker of `query_scalar`: the first column as `T`.
pub(crate) struct Scalar<T>(PhantomData<T>);

/// The marker of `query` and `query_as`: the row as `O`.
pub(crate) struct As<O>(PhantomData<O>);

/// Decodes one result row into `Out`.
pub(crate) trait Decode {
    /// What a row becomes.
    type Out;
    /// Converts a row.
    fn decode(row: tokio_postgres::Row) -> Result<Self::Out, Error>;
}

impl<O: FromRow> Decode for As<O> {
    type Out = O;
    fn decode(row: tokio_postgres::Row) -> Result<O, Error> {
        O::from_row(row)
    }
}

impl<T: Col> Decode for Scalar<T> {
    type Out = T;
    fn decode(row: tokio_postgres::Row) -> Result<T, Error> {
        T::col(&row, 0)
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

/// A statement with its parameters, not yet run.
#[must_use = "a query does nothing until it is executed or fetched"]
pub(crate) struct Query<'q, D> {
    sql: &'q str,
    args: Vec<Param>,
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
pub(crate) fn query_scalar<T: Col>(sql: &str) -> Query<'_, Scalar<T>> {
    raw(sql, Vec::new())
}

/// [`query`] with its parameters already bound.
pub(crate) fn query_with(sql: &str, args: Vec<Param>) -> Query<'_, As<Row>> {
    raw(sql, args)
}

/// [`query_as`] with its parameters already bound.
pub(crate) fn query_as_with<O: FromRow>(sql: &str, args: Vec<Param>) -> Query<'_, As<O>> {
    raw(sql, args)
}

/// [`query_scalar`] with its parameters already bound.
pub(crate) fn query_scalar_with<T: Col>(sql: &str, args: Vec<Param>) -> Query<'_, Scalar<T>> {
    raw(sql, args)
}

fn raw<D>(sql: &str, args: Vec<Param>) -> Query<'_, D> {
    Query {
        sql,
        args,
        decode: PhantomData,
    }
}

impl<D> Query<'_, D> {
    /// Binds the next `?` parameter.
    pub(crate) fn bind<T: IntoParam>(mut self, v: T) -> Self {
        self.args.push(v.into_param());
        self
    }

    /// Runs the statement and returns what it changed.
    pub(crate) async fn execute<'e>(self, ex: impl Executor<'e>) -> Result<Done, Error> {
        let held;
        let c = match ex.into() {
            Target::Conn(c) => c,
            Target::Pool(p) => {
                held = p.get().await?;
                &held
            }
        };
        let rows = c.noting_failure(execute_on(c, self.sql, self.args).await)?;
        Ok(Done { rows })
    }
}

impl<D: Decode> Query<'_, D>
where
    D::Out: Send,
{
    /// Every row.
    pub(crate) async fn fetch_all<'e>(self, ex: impl Executor<'e>) -> Result<Vec<D::Out>, Error> {
        let rows = self.rows(ex).await?;
        rows.into_iter().map(D::decode).collect()
    }

    async fn rows<'e>(self, ex: impl Executor<'e>) -> Result<Vec<tokio_postgres::Row>, Error> {
        let held;
        let c = match ex.into() {
            Target::Conn(c) => c,
            Target::Pool(p) => {
                held = p.get().await?;
                &held
            }
        };
        c.noting_failure(rows_on(c, self.sql, self.args).await)
    }

    /// The first row, if any.
    pub(crate) async fn fetch_optional<'e>(
        self,
        ex: impl Executor<'e>,
    ) -> Result<Option<D::Out>, Error> {
        let rows = self.rows(ex).await?;
        rows.into_iter().next().map(D::decode).transpose()
    }

    /// The first row; [`Error::NoRows`] when there is none.
    pub(crate) async fn fetch_one<'e>(self, ex: impl Executor<'e>) -> Result<D::Out, Error> {
        self.fetch_optional(ex).await?.ok_or(Error::NoRows)
    }
}

/// The `tracing` target every statement is reported on (as on SQLite).
pub(crate) const SQL_TARGET: &str = "roster_store::sql";

/// `?` and `?N` placeholders renumbered to `$N` (outside quoted text).
pub(crate) fn placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 0u32;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    next += 1;
                    out.push_str(&next.to_string());
                } else {
                    out.push_str(&digits);
                }
            }
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

async fn prepare(c: &Conn, sql: &str) -> Result<tokio_postgres::Statement, Error> {
    let sql = placeholders(sql);
    let client = c.client();
    if client.statement_cache.size() >= STATEMENT_CACHE {
        client.statement_cache.clear();
    }
    let cached = client.statement_cache.size();
    let st = client.prepare_cached(&sql).await?;
    if client.statement_cache.size() > cached {
        // Preparing was a round trip of its own (once per connection and statement).
        c.stats.sent(1);
    }
    Ok(st)
}

fn refs(args: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

/// The statements this thread sends, for tests that check them
/// (`postgres::tests::request_path_statements_name_their_tenant`). Thread-local, so that tests
/// running at once on other threads do not mix in, and not a `tracing` subscriber, whose
/// interest cache is shared by every thread of the test process.
#[cfg(test)]
pub(crate) mod capture {
    use std::cell::RefCell;

    thread_local! {
        static SENT: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    }

    /// Starts recording this thread's statements.
    pub(crate) fn start() {
        SENT.with(|s| *s.borrow_mut() = Some(Vec::new()));
    }

    /// Stops recording and returns what was sent.
    pub(crate) fn take() -> Vec<String> {
        SENT.with(|s| s.borrow_mut().take()).unwrap_or_default()
    }

    pub(super) fn note(sql: &str) {
        SENT.with(|s| {
            if let Some(v) = s.borrow_mut().as_mut() {
                v.push(sql.to_owned());
            }
        });
    }
}

/// Notes a statement for [`capture`] (tests only).
#[inline]
fn note(sql: &str) {
    #[cfg(test)]
    capture::note(sql);
    #[cfg(not(test))]
    let _ = sql;
}

async fn execute_on(c: &Conn, sql: &str, args: Vec<Param>) -> Result<u64, Error> {
    tracing::debug!(target: SQL_TARGET, statement = sql);
    note(sql);
    if args.is_empty() && !sql.contains('?') && sql.trim_end().trim_end_matches(';').contains(';') {
        // A script of several statements without parameters.
        return c.script(sql).await.map(|()| 0);
    }
    let st = prepare(c, sql).await?;
    c.stats.sent(1);
    Ok(c.client().execute(&st, &refs(&args)).await?)
}

async fn rows_on(c: &Conn, sql: &str, args: Vec<Param>) -> Result<Vec<tokio_postgres::Row>, Error> {
    tracing::debug!(target: SQL_TARGET, statement = sql);
    note(sql);
    let st = prepare(c, sql).await?;
    c.stats.sent(1);
    Ok(c.client().query(&st, &refs(&args)).await?)
}

/// Statements in a script without parameters (transaction control, migrations).
fn statements_in(script: &str) -> u64 {
    let n = script.split(';').filter(|s| !s.trim().is_empty()).count();
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// What the connections of one pool sent to the server: the figures behind "statements per
/// request" (`bench/run.sh` prints them per scenario from the periodic debug event of target
/// [`STATS_TARGET`]; tests read them directly).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Statements run, transaction control (`BEGIN`, `SAVEPOINT`, `COMMIT`, …) included.
    pub(crate) statements: AtomicU64,
    /// Round trips: times a connection waited for the server. A pipeline of several
    /// statements is one; so is a script.
    pub(crate) round_trips: AtomicU64,
    /// Group commits (batches committed, or failed at their `COMMIT`).
    pub(crate) batches: AtomicU64,
    /// Writers whose work a group commit committed.
    pub(crate) batched_writers: AtomicU64,
}

impl Stats {
    /// Counts one round trip carrying `statements` statements.
    pub(crate) fn sent(&self, statements: u64) {
        self.statements.fetch_add(statements, Ordering::Relaxed);
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }

    /// The figures now: (statements, round trips, batches, batched writers).
    pub(crate) fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.statements.load(Ordering::Relaxed),
            self.round_trips.load(Ordering::Relaxed),
            self.batches.load(Ordering::Relaxed),
            self.batched_writers.load(Ordering::Relaxed),
        )
    }
}

/// The `tracing` target of the periodic statement counts (see [`Stats`]).
pub(crate) const STATS_TARGET: &str = "roster_store::sql_stats";

/// Where a statement runs: a connection held by the caller (maybe inside a transaction), or
/// one taken from the pool for it.
pub(crate) enum Target<'a> {
    /// The caller's connection.
    Conn(&'a Conn),
    /// A connection of the pool, for one statement.
    Pool(&'a Pool),
}

impl<'a> From<&'a mut Conn> for Target<'a> {
    fn from(c: &'a mut Conn) -> Self {
        Target::Conn(c)
    }
}

impl<'a> From<&'a mut Tx> for Target<'a> {
    fn from(t: &'a mut Tx) -> Self {
        Target::Conn(&t.0)
    }
}

impl<'a> From<&'a Pool> for Target<'a> {
    fn from(p: &'a Pool) -> Self {
        Target::Pool(p)
    }
}

/// Something a statement can run on.
pub(crate) trait Executor<'a>: Into<Target<'a>> + Send {}
impl<'a, T: Into<Target<'a>> + Send> Executor<'a> for T {}

/// A pool of connections to one database.
#[derive(Clone)]
pub(crate) struct Pool {
    inner: PgPool,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("status", &self.inner.status())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of at most `size` connections to the database `config` names.
    pub(crate) fn new(
        config: tokio_postgres::Config,
        size: usize,
        tls: rustls::ClientConfig,
    ) -> Result<Self, Error> {
        let manager = Manager::from_config(
            config,
            tokio_postgres_rustls::MakeRustlsConnect::new(tls),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Bounded waits: a request never hangs on a database that is down or a pool that is
        // exhausted; it fails, and says so.
        let inner = PgPool::builder(manager)
            .max_size(size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| Error::Pool(e.to_string()))?;
        Ok(Self {
            inner,
            stats: Arc::default(),
        })
    }

    /// (most connections, connections taken now, callers waiting).
    pub(crate) fn usage(&self) -> (usize, usize, usize) {
        let st = self.inner.status();
        let idle = st.available;
        (st.max_size, st.size.saturating_sub(idle), st.waiting)
    }

    /// What this pool's connections sent to the server.
    pub(crate) fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Takes a connection.
    pub(crate) async fn get(&self) -> Result<Conn, Error> {
        Ok(Conn {
            client: Some(self.inner.get().await?),
            state: State::Idle,
            failed: AtomicBool::new(false),
            stats: self.stats.clone(),
        })
    }

    /// Starts a read transaction: one snapshot (REPEATABLE READ) for every statement in it.
    pub(crate) async fn begin_read(&self) -> Result<Tx, Error> {
        let mut c = self.get().await?;
        c.script("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        c.state = State::InTransaction;
        Ok(Tx(c))
    }

    /// Starts a write transaction (READ COMMITTED) on global tables, with no tenant lock.
    /// A tenant's writes go through group commit instead (`super::batch`), which takes the
    /// tenant's lock with [`Pool::begin_tenant`].
    pub(crate) async fn begin_write(&self) -> Result<Tx, Error> {
        let mut c = self.get().await?;
        c.state = State::InTransaction;
        c.script("BEGIN").await?;
        Ok(Tx(c))
    }

    /// Starts a write transaction holding `tenant`'s write lock (its `tenant_writes` row),
    /// and opens `savepoint` in it when given: `BEGIN`, the lock and the savepoint are sent
    /// together, one round trip (the lock may then wait for another process's transaction).
    pub(crate) async fn begin_tenant(
        &self,
        tenant: &str,
        savepoint: Option<&str>,
    ) -> Result<Tx, Error> {
        let mut c = self.get().await?;
        let lock = prepare(
            &c,
            "INSERT INTO tenant_writes (tenant_id) VALUES (?) \
             ON CONFLICT (tenant_id) DO UPDATE SET seq = tenant_writes.seq",
        )
        .await?;
        // From here the connection may be in a transaction whatever fails: a ROLLBACK
        // outside one is only a warning.
        c.state = State::InTransaction;
        tracing::trace!(target: SQL_TARGET, statement = "BEGIN");
        tracing::debug!(target: SQL_TARGET, statement = "tenant lock");
        let client = c.client();
        let args = [Param::Text(tenant.to_owned())];
        let params = refs(&args);
        // `try_join!` polls its futures in order, and each sends its request on its first
        // poll: the server receives BEGIN, the lock, then the savepoint, in that order,
        // without waiting for one another's answers.
        match savepoint {
            Some(sp) => {
                let sp = format!("SAVEPOINT {sp}");
                c.stats.sent(3);
                futures::try_join!(
                    client.batch_execute("BEGIN"),
                    client.execute(&lock, &params),
                    client.batch_execute(&sp),
                )?;
            }
            None => {
                c.stats.sent(2);
                futures::try_join!(
                    client.batch_execute("BEGIN"),
                    client.execute(&lock, &params),
                )?;
            }
        }
        Ok(Tx(c))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    InTransaction,
}

/// A pooled connection, maybe inside a transaction. Goes back to the pool when dropped; a
/// transaction not committed is rolled back first (on a task of its own, since dropping cannot
/// wait), or the connection is closed when there is no runtime to do that on.
pub(crate) struct Conn {
    client: Option<Object>,
    state: State,
    /// A statement on this connection failed since [`Conn::clear_failed`]: inside a
    /// transaction, PostgreSQL refuses everything after it until a `ROLLBACK [TO]`.
    failed: AtomicBool,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Conn {
    pub(crate) fn client(&self) -> &Object {
        #[allow(clippy::expect_used)] // taken out only by commit and drop
        self.client
            .as_ref()
            .expect("a connection is present until committed or dropped")
    }

    /// Runs a script without parameters (transaction control): one round trip.
    pub(crate) async fn script(&self, sql: &str) -> Result<(), Error> {
        tracing::trace!(target: SQL_TARGET, statement = sql);
        note(sql);
        self.stats.sent(statements_in(sql));
        let r = self.client().batch_execute(sql).await.map_err(Error::from);
        self.noting_failure(r)
    }

    fn noting_failure<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        if r.is_err() {
            self.failed.store(true, Ordering::Relaxed);
        }
        r
    }

    /// Whether a statement failed since the last [`Conn::clear_failed`].
    pub(crate) fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Forgets earlier failures (after a `ROLLBACK TO` undid them).
    pub(crate) fn clear_failed(&self) {
        self.failed.store(false, Ordering::Relaxed);
    }

    /// Commits the transaction (if one is open).
    async fn commit(mut self) -> Result<(), Error> {
        if self.state == State::InTransaction {
            let r = self.script("COMMIT").await;
            // Committed or failed, the server has ended the transaction either way.
            self.state = State::Idle;
            r?;
        }
        Ok(())
    }

    /// Commits the transaction, refusing to if it is aborted. PostgreSQL answers `COMMIT` in
    /// an aborted transaction by rolling it back *without an error*; a group commit must not
    /// take that for success, so a statement that fails in an aborted transaction goes first
    /// (in the same round trip), and the `COMMIT` is then not run.
    pub(crate) async fn commit_checked(mut self) -> Result<(), Error> {
        if self.state != State::InTransaction {
            return Ok(());
        }
        let r = self.script("SELECT 1; COMMIT").await;
        if r.is_ok() {
            self.state = State::Idle;
        }
        // Failed, the transaction may still be open (aborted): dropping the connection rolls
        // it back.
        r
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if self.state == State::Idle {
            return;
        }
        self.stats.sent(1);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = client.batch_execute("ROLLBACK").await {
                        tracing::warn!(error = %e, "rolling back an abandoned transaction failed");
                        drop(Object::take(client));
                    }
                });
            }
            Err(_) => drop(Object::take(client)),
        }
    }
}

/// A transaction on a pooled connection: rolled back when dropped uncommitted.
#[derive(Debug)]
pub(crate) struct Tx(Conn);

impl Tx {
    /// Commits it.
    pub(crate) async fn commit(self) -> Result<(), Error> {
        self.0.commit().await
    }

    /// Commits it unless it is aborted (see [`Conn::commit_checked`]).
    pub(crate) async fn commit_checked(self) -> Result<(), Error> {
        self.0.commit_checked().await
    }

    /// Rolls it back now (rather than when dropped, on a task of its own).
    pub(crate) async fn rollback(mut self) -> Result<(), Error> {
        if self.0.state == State::InTransaction {
            self.0.script("ROLLBACK").await?;
            // Failed, the connection stays marked: dropping it tries again, or discards it.
            self.0.state = State::Idle;
        }
        Ok(())
    }
}

impl std::ops::Deref for Tx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.0
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.0
    }
}

/// `true` when `e` says the database could not be reached, rather than that it refused the
/// statement: no connection within the pool's wait, a connection that failed or closed, or
/// the server's connection and shutdown errors (SQLSTATE classes 08 and 57P).
pub(crate) fn is_unavailable(e: &Error) -> bool {
    match e {
        Error::Pool(_) | Error::Connect(_) => true,
        Error::Pg(e) => match e.code() {
            Some(code) => {
                let c = code.code();
                c.starts_with("08") || c.starts_with("57P")
            }
            None => {
                e.is_closed()
                    || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
            }
        },
        Error::Batch(e) => is_unavailable(e),
        Error::NoRows | Error::Decode(..) | Error::Writer(_) => false,
    }
}

/// `true` when `e` is a violation of a UNIQUE or PRIMARY KEY constraint.
pub(crate) fn is_unique_violation(e: &Error) -> bool {
    sql_state(e) == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// `true` when `e` is a violation of a FOREIGN KEY constraint.
pub(crate) fn is_foreign_key_violation(e: &Error) -> bool {
    sql_state(e) == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
}

fn sql_state(e: &Error) -> Option<&tokio_postgres::error::SqlState> {
    match e {
        Error::Pg(e) => e.code(),
        _ => None,
    }
}

/// The constraint (or, failing that, the message) the server named with `e`, if any.
pub(crate) fn message(e: &Error) -> Option<String> {
    match e {
        Error::Pg(e) => e.as_db_error().map(|d| {
            d.constraint()
                .map_or_else(|| d.message().to_owned(), str::to_owned)
        }),
        _ => None,
    }
}
