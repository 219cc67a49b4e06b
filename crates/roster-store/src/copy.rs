//! `roster db copy`: a whole SQLite installation copied into an empty PostgreSQL database, the
//! upgrade path from one node to several (docs/deployment.md, "Moving up from SQLite to
//! PostgreSQL").
//!
//! Both databases are opened with the store's own `open`, so both are migrated to this build's
//! schema first. What is copied is then read from the two catalogs rather than listed here:
//! every SQLite table, in PostgreSQL's foreign-key order, with the columns both sides have,
//! each value converted to the PostgreSQL column's type (SQLite's 0/1 become BOOLEAN, integers
//! BIGINT, text TEXT). A column or table added by a later migration on both sides is copied
//! without touching this file; one that exists on one side only stops the copy with a message
//! naming it, unless it is on one of the commented lists below. The few tables that are not
//! copied row for row are listed with the reason:
//!
//! - [`SKIP_TABLES`]: bookkeeping and runtime state each database keeps for itself;
//! - [`DERIVED_TABLES`]: filled on PostgreSQL by its own triggers or from the copied rows, and
//!   checked against SQLite.
//!
//! Consistency: the source is read in one SQLite read transaction (one snapshot, with a
//! read-only connection), and the target is written in one PostgreSQL transaction, so a copy
//! that fails leaves the target as empty as it found it. A server still running on the source
//! would go on writing after the snapshot was taken, and those writes would be missing from the
//! copy: stop it first (the command's help and the docs say so). Before committing, the rows of
//! every table are counted on both sides; a difference rolls the copy back.
//!
//! Speed: rows stream from a blocking thread that reads SQLite to the task that writes them
//! with PostgreSQL's binary `COPY`, a batch at a time, so reading and writing overlap and
//! memory stays bounded by a few batches.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use crate::postgres::db::{Param, Tx};
use crate::postgres::PostgresStore;
use crate::sqlite::{db as sqlite_db, SqliteStore};
use crate::StoreError;

/// Tables that are neither copied nor required to be empty on the target: `(table, why)`.
pub const SKIP_TABLES: &[(&str, &str)] = &[
    (
        "_sqlx_migrations",
        "SQLite's record of its own migrations; the target keeps its own",
    ),
    (
        "_roster_migrations",
        "PostgreSQL's record of its migrations, written when the target was opened",
    ),
    (
        "auth_epoch",
        "the authentication cache's generation counter: the target's row, made by its \
         migration, moves with the copy's inserts, and a server only compares it with its own \
         earlier readings",
    ),
    (
        "jobs",
        "runtime state of the cluster-wide periodic jobs (when each last ran): starts afresh",
    ),
    (
        "resource_search",
        "SQLite's contains-search index (FTS5, kept by triggers on resources); PostgreSQL \
         indexes the same text with its trigram index on resources",
    ),
    (
        "resource_search_config",
        "a shadow table of resource_search",
    ),
    (
        "resource_search_content",
        "a shadow table of resource_search",
    ),
    ("resource_search_data", "a shadow table of resource_search"),
    (
        "resource_search_docsize",
        "a shadow table of resource_search",
    ),
    ("resource_search_idx", "a shadow table of resource_search"),
];

/// Tables the copy does not write row for row but that PostgreSQL fills from the copied rows:
/// `(table, SQLite query, PostgreSQL query, why)`. Each query returns the table's expected
/// rows and a checksum of its content, which must agree after the copy.
pub const DERIVED_TABLES: &[(&str, &str, &str, &str)] = &[
    (
        "member_counts",
        "SELECT COUNT(*), COALESCE(SUM(n), 0) FROM member_counts",
        "SELECT COUNT(*), COALESCE(SUM(n), 0)::BIGINT FROM member_counts",
        "kept by PostgreSQL's triggers: a row per group as the group is inserted, counted up \
         as its memberships are (copying SQLite's rows would collide with them)",
    ),
    (
        "tenant_writes",
        "SELECT COUNT(*), COALESCE(SUM(last), 0) \
         FROM (SELECT MAX(seq) AS last FROM events GROUP BY tenant_id)",
        "SELECT COUNT(*), COALESCE(SUM(seq), 0)::BIGINT FROM tenant_writes",
        "PostgreSQL only: each tenant's write lock and last event seq, which SQLite reads as \
         MAX(seq) of the tenant's events (sqlite/rows.rs `reserve_seqs`); set to that after the \
         events are copied, so the next write of a tenant gets the next seq",
    ),
];

/// Columns of SQLite that PostgreSQL lacks and that are left behind on purpose:
/// `(table, column, why)`. Empty: every SQLite column has a PostgreSQL counterpart today.
/// A column added to SQLite alone must be added to PostgreSQL too, or listed here with the
/// reason it may be dropped.
pub const SKIP_COLUMNS: &[(&str, &str, &str)] = &[];

/// Rows per batch handed from the SQLite reader to the PostgreSQL writer.
const BATCH: usize = 2000;
/// Batches in flight between the two.
const IN_FLIGHT: usize = 4;

/// Why a copy failed. Nothing was committed to the target in any case.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The source cannot be copied (missing, in memory, unreadable).
    #[error("the SQLite source: {0}")]
    Source(String),
    /// A database could not be opened (or migrated) by the store.
    #[error("opening the {which} database: {source}")]
    Open {
        /// `source (SQLite)` or `target (PostgreSQL)`.
        which: &'static str,
        /// The store's error.
        source: StoreError,
    },
    /// The target already holds data; it was left unchanged.
    #[error(
        "the target database is not empty: table {table} has rows. `roster db copy` only \
         copies into an empty database (create a new one: CREATE DATABASE …); nothing was \
         written"
    )]
    NotEmpty {
        /// The first table found with rows.
        table: String,
    },
    /// The two schemas disagree in a way the copy does not know how to bridge.
    #[error("the schemas differ: {0}")]
    Schema(String),
    /// A value does not fit the PostgreSQL column it goes to.
    #[error("table {table}, column {column}, row {row}: {why}")]
    Value {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The row's position in the table's copy order (1-based).
        row: u64,
        /// What is wrong with it.
        why: String,
    },
    /// PostgreSQL refused a statement.
    #[error("PostgreSQL: {0}")]
    Target(String),
    /// The row counts (or the derived tables' contents) differ after the copy; it was rolled
    /// back.
    #[error("the copy does not match its source, so it was rolled back: {}", .0.join("; "))]
    Mismatch(Vec<String>),
}

/// One table of a finished copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    /// The table.
    pub table: String,
    /// Its rows on SQLite (for a derived table: the rows it should have).
    pub source: u64,
    /// Its rows on PostgreSQL after the copy.
    pub target: u64,
    /// Filled by PostgreSQL from the copied rows rather than copied (see [`DERIVED_TABLES`]).
    pub derived: bool,
}

/// What a copy did.
#[derive(Debug, Clone)]
pub struct CopyReport {
    /// Every table copied or derived, in copy order, with its verified row counts.
    pub tables: Vec<TableCount>,
    /// The whole copy, from opening the databases to the commit and the `ANALYZE` after it.
    pub elapsed: Duration,
}

/// Copies the SQLite database at `from` (`sqlite://PATH`) into the empty PostgreSQL database
/// at `to` (`postgres://…`), in one transaction, and verifies the row count of every table
/// before committing. `progress` is called after each table is copied.
///
/// The source should not be written meanwhile: the copy is a snapshot of the moment it began
/// reading (see the module doc).
///
/// # Errors
/// [`CopyError`]: the source is missing or in memory, the target has rows
/// ([`CopyError::NotEmpty`], nothing written), the schemas differ, a value does not fit, the
/// database failed, or the counts differ ([`CopyError::Mismatch`], rolled back).
pub async fn sqlite_to_postgres(
    from: &str,
    to: &str,
    mut progress: impl FnMut(&TableCount) + Send,
) -> Result<CopyReport, CopyError> {
    let started = Instant::now();
    let options = open_source(from).await?;
    let target = PostgresStore::open(to)
        .await
        .map_err(|source| CopyError::Open {
            which: "target (PostgreSQL)",
            source,
        })?;
    let tx = target.pool().begin_write().await.map_err(target_err)?;
    let pg = pg_catalog(&tx).await?;
    refuse_rows(&tx, &pg).await?;

    let (conn, src) = tokio::task::spawn_blocking(move || read_source(&options))
        .await
        .map_err(|e| CopyError::Source(format!("the reader stopped: {e}")))??;
    let plans = plan(&src, &pg)?;

    // The reader streams the planned tables in order, on a blocking thread; this task writes
    // them in the same order.
    let (sender, mut batches) = tokio::sync::mpsc::channel(IN_FLIGHT);
    let reads: Vec<Read> = plans.iter().map(Plan::read).collect();
    let reader = tokio::task::spawn_blocking(move || stream(&conn, &reads, &sender));
    let mut tables = Vec::new();
    for p in &plans {
        let written = write_table(&tx, p, &mut batches).await?;
        let count = TableCount {
            table: p.table.clone(),
            source: src.tables.get(&p.table).map_or(0, |t| t.rows),
            target: written,
            derived: false,
        };
        progress(&count);
        tables.push(count);
    }
    drop(batches);
    let _ = reader.await;

    fill_tenant_writes(&tx, &pg).await?;
    set_sequences(&tx, &plans, &pg).await?;
    verify(&tx, &src, &pg, &mut tables).await?;
    tx.commit().await.map_err(target_err)?;
    // Statistics at once: until autovacuum gets to it, the planner would take the freshly
    // filled tables for nearly empty (see the PostgreSQL migration's comment on bulk changes).
    if let Ok(c) = target.pool().get().await {
        let _ = c.client().batch_execute("ANALYZE").await;
    }
    Ok(CopyReport {
        tables,
        elapsed: started.elapsed(),
    })
}

/// Opens (and migrates) the source with the store, then returns how to open read-only
/// connections to its file.
async fn open_source(from: &str) -> Result<sqlite_db::Options, CopyError> {
    let path = crate::sqlite::database_path(from)
        .map_err(|e| CopyError::Source(e.to_string()))?
        .ok_or_else(|| {
            CopyError::Source("an in-memory database (sqlite::memory:) has nothing to copy".into())
        })?;
    // The store's open would create a missing file, and the copy would then succeed with
    // nothing in it: a typo in the path must be an error instead.
    if !path.is_file() {
        return Err(CopyError::Source(format!(
            "no database file at {}",
            path.display()
        )));
    }
    let store = SqliteStore::open(from)
        .await
        .map_err(|source| CopyError::Open {
            which: "source (SQLite)",
            source,
        })?;
    store
        .file_options()
        .ok_or_else(|| CopyError::Source("the database is a throwaway one".into()))
}

fn target_err(e: impl std::fmt::Display) -> CopyError {
    CopyError::Target(e.to_string())
}

/// PostgreSQL's own words for a failed statement: its message and detail (which name the
/// constraint and the row), not the driver's "db error".
fn pg_err(e: &tokio_postgres::Error) -> CopyError {
    CopyError::Target(match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("{} ({detail})", d.message()),
            None => d.message().to_owned(),
        },
        None => e.to_string(),
    })
}

/// `name` as an SQL identifier. Every name the copy puts in SQL comes from a catalog, never
/// from input; quoting keeps that true of any name a migration may choose.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn skipped(table: &str) -> bool {
    SKIP_TABLES.iter().any(|(t, _)| *t == table)
}

fn derived(table: &str) -> bool {
    DERIVED_TABLES.iter().any(|(t, ..)| *t == table)
}

// ---------------------------------------------------------------------------------------------
// The target's catalog.

/// A column of a PostgreSQL table.
#[derive(Debug, Clone)]
struct PgColumn {
    name: String,
    /// The type, when the copy can write it (`None`: any other type, refused if copied).
    ty: Option<Type>,
    /// `data_type` as the catalog says it, for messages.
    type_name: String,
    /// An identity column (its sequence is set after the copy).
    identity: bool,
    /// A generated column, which cannot be written.
    generated: bool,
    /// NOT NULL without a default: a value must come from SQLite.
    required: bool,
}

/// The target's tables (name → columns in order) and their copy order.
#[derive(Debug)]
struct PgCatalog {
    tables: BTreeMap<String, Vec<PgColumn>>,
    /// Every table, each after the tables its foreign keys reference.
    order: Vec<String>,
}

async fn pg_catalog(tx: &Tx) -> Result<PgCatalog, CopyError> {
    let c = tx.client();
    let rows = c
        .query(
            "SELECT t.table_name::text, c.column_name::text, c.data_type::text, \
                    c.is_identity::text = 'YES', c.is_generated::text = 'ALWAYS', \
                    c.is_nullable::text = 'NO' AND c.column_default IS NULL \
             FROM information_schema.tables t \
             JOIN information_schema.columns c \
               ON c.table_schema = t.table_schema AND c.table_name = t.table_name \
             WHERE t.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
             ORDER BY t.table_name, c.ordinal_position",
            &[],
        )
        .await
        .map_err(|e| pg_err(&e))?;
    let mut tables: BTreeMap<String, Vec<PgColumn>> = BTreeMap::new();
    for r in rows {
        let type_name: String = r.get(2);
        let identity: bool = r.get(3);
        tables.entry(r.get(0)).or_default().push(PgColumn {
            name: r.get(1),
            ty: pg_type(&type_name),
            type_name,
            identity,
            generated: r.get(4),
            required: r.get::<_, bool>(5) && !identity,
        });
    }
    let edges = c
        .query(
            "SELECT a.relname::text, b.relname::text FROM pg_catalog.pg_constraint k \
             JOIN pg_catalog.pg_class a ON a.oid = k.conrelid \
             JOIN pg_catalog.pg_class b ON b.oid = k.confrelid \
             WHERE k.contype = 'f' AND a.relnamespace = current_schema()::regnamespace",
            &[],
        )
        .await
        .map_err(|e| pg_err(&e))?;
    let edges: Vec<(String, String)> = edges.iter().map(|r| (r.get(0), r.get(1))).collect();
    let order = dependency_order(tables.keys().cloned().collect(), &edges)?;
    Ok(PgCatalog { tables, order })
}

/// The types the copy writes, by their `information_schema` name.
fn pg_type(name: &str) -> Option<Type> {
    Some(match name {
        "bigint" => Type::INT8,
        "integer" => Type::INT4,
        "smallint" => Type::INT2,
        "boolean" => Type::BOOL,
        "text" => Type::TEXT,
        "character varying" => Type::VARCHAR,
        "double precision" => Type::FLOAT8,
        "real" => Type::FLOAT4,
        _ => return None,
    })
}

/// `tables` (sorted) reordered so that each comes after the tables it references (`edges`:
/// referencing → referenced); otherwise in name order, so the order is stable.
fn dependency_order(
    tables: Vec<String>,
    edges: &[(String, String)],
) -> Result<Vec<String>, CopyError> {
    let mut left = tables;
    let mut done: Vec<String> = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ready = left.iter().position(|t| {
            edges
                .iter()
                .filter(|(from, to)| from == t && to != t)
                .all(|(_, to)| done.contains(to) || !left.contains(to))
        });
        let Some(i) = ready else {
            return Err(CopyError::Schema(format!(
                "the foreign keys between {} form a cycle",
                left.join(", ")
            )));
        };
        done.push(left.remove(i));
    }
    Ok(done)
}

/// Refuses a target with rows in any table but the skipped ones, before anything is written.
async fn refuse_rows(tx: &Tx, pg: &PgCatalog) -> Result<(), CopyError> {
    for table in pg.tables.keys().filter(|t| !skipped(t)) {
        let has: bool = tx
            .client()
            .query_one(
                format!("SELECT EXISTS (SELECT 1 FROM {})", ident(table)).as_str(),
                &[],
            )
            .await
            .map_err(|e| pg_err(&e))?
            .get(0);
        if has {
            return Err(CopyError::NotEmpty {
                table: table.clone(),
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The source's catalog, read in the copy's read transaction.

/// A SQLite table.
#[derive(Debug)]
struct SqliteTable {
    /// Its columns, in order.
    columns: Vec<String>,
    /// Its primary key's columns, in key order (for a table without rowid).
    key: Vec<String>,
    /// Whether it has a rowid (the order SQLite lists it in, and inserted it in).
    rowid: bool,
    /// Its rows in the snapshot.
    rows: u64,
}

/// The source's tables and the derived tables' expected `(rows, checksum)`, from one snapshot.
#[derive(Debug)]
struct SourceCatalog {
    tables: BTreeMap<String, SqliteTable>,
    derived: BTreeMap<String, (i64, i64)>,
}

fn source_err(e: &rusqlite::Error) -> CopyError {
    CopyError::Source(e.to_string())
}

/// Opens a read-only connection, begins the read transaction the whole copy reads in, and
/// reads the catalog and the row counts in it.
fn read_source(
    options: &sqlite_db::Options,
) -> Result<(sqlite_db::Connection, SourceCatalog), CopyError> {
    let conn = options.open_reader().map_err(|e| source_err(&e))?;
    conn.execute_batch("BEGIN").map_err(|e| source_err(&e))?;
    let names: Vec<(String, bool)> = {
        let mut st = conn
            .prepare(
                "SELECT name, wr FROM pragma_table_list \
                 WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
                 ORDER BY name",
            )
            .map_err(|e| source_err(&e))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? == 0)))
            .map_err(|e| source_err(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| source_err(&e))?
    };
    let mut tables = BTreeMap::new();
    for (name, rowid) in names {
        let mut st = conn
            .prepare("SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid")
            .map_err(|e| source_err(&e))?;
        let cols: Vec<(String, i64)> = st
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| source_err(&e))?
            .collect::<Result<_, _>>()
            .map_err(|e| source_err(&e))?;
        let mut key: Vec<(i64, String)> = cols
            .iter()
            .filter(|(_, pk)| *pk > 0)
            .map(|(c, pk)| (*pk, c.clone()))
            .collect();
        key.sort();
        let rows: i64 = conn
            .query_row(&format!("SELECT COUNT(*) FROM {}", ident(&name)), [], |r| {
                r.get(0)
            })
            .map_err(|e| source_err(&e))?;
        tables.insert(
            name,
            SqliteTable {
                columns: cols.into_iter().map(|(c, _)| c).collect(),
                key: key.into_iter().map(|(_, c)| c).collect(),
                rowid,
                rows: u64::try_from(rows).unwrap_or(0),
            },
        );
    }
    let mut derived = BTreeMap::new();
    for (table, sql, ..) in DERIVED_TABLES {
        let v = conn
            .query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| CopyError::Source(format!("{table}: {e}")))?;
        derived.insert((*table).to_owned(), v);
    }
    Ok((conn, SourceCatalog { tables, derived }))
}

// ---------------------------------------------------------------------------------------------
// The plan: which tables and columns, in which order.

/// One table to copy.
#[derive(Debug)]
struct Plan {
    table: String,
    /// The columns both sides have, with the PostgreSQL type each value becomes.
    columns: Vec<(String, Type)>,
    /// The SQLite statement that reads them, in the order SQLite keeps the rows.
    select: String,
}

impl Plan {
    fn read(&self) -> Read {
        Read {
            table: self.table.clone(),
            columns: self.columns.clone(),
            select: self.select.clone(),
        }
    }

    fn copy_sql(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|(c, _)| ident(c)).collect();
        format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            ident(&self.table),
            cols.join(", ")
        )
    }
}

/// What the reader thread needs of a [`Plan`].
#[derive(Debug)]
struct Read {
    table: String,
    columns: Vec<(String, Type)>,
    select: String,
}

/// Matches the two catalogs: every SQLite table that is neither skipped nor derived, in the
/// target's foreign-key order, with the columns both have. Fails on anything one side has
/// that the other lacks and that no list above accounts for.
fn plan(src: &SourceCatalog, pg: &PgCatalog) -> Result<Vec<Plan>, CopyError> {
    let mut problems = Vec::new();
    for name in src.tables.keys() {
        if !skipped(name) && !derived(name) && !pg.tables.contains_key(name) {
            problems.push(format!(
                "SQLite table {name} has no PostgreSQL counterpart (add it to the PostgreSQL \
                 migrations, or to copy.rs's SKIP_TABLES with the reason)"
            ));
        }
    }
    for name in pg.tables.keys() {
        if !skipped(name) && !derived(name) && !src.tables.contains_key(name) {
            problems.push(format!(
                "PostgreSQL table {name} has no SQLite counterpart (say in copy.rs how the copy \
                 fills it: SKIP_TABLES or DERIVED_TABLES)"
            ));
        }
    }
    let mut plans = Vec::new();
    for name in &pg.order {
        let (Some(table), Some(pg_cols)) = (src.tables.get(name), pg.tables.get(name)) else {
            continue;
        };
        if skipped(name) || derived(name) {
            continue;
        }
        let mut columns = Vec::new();
        for col in &table.columns {
            let skip = SKIP_COLUMNS.iter().any(|(t, c, _)| t == name && c == col);
            match pg_cols.iter().find(|p| &p.name == col) {
                _ if skip => {}
                None => problems.push(format!(
                    "SQLite column {name}.{col} has no PostgreSQL counterpart (add it to the \
                     PostgreSQL migrations, or to copy.rs's SKIP_COLUMNS with the reason)"
                )),
                Some(p) if p.generated => problems.push(format!(
                    "PostgreSQL column {name}.{col} is generated, so SQLite's values cannot be \
                     written to it"
                )),
                Some(PgColumn { ty: Some(ty), .. }) => columns.push((col.clone(), ty.clone())),
                Some(p) => problems.push(format!(
                    "PostgreSQL column {name}.{col} has type {}, which the copy does not write",
                    p.type_name
                )),
            }
        }
        for p in pg_cols {
            if p.required && !table.columns.contains(&p.name) {
                problems.push(format!(
                    "PostgreSQL column {name}.{} needs a value and SQLite has none",
                    p.name
                ));
            }
        }
        let names: Vec<String> = columns.iter().map(|(c, _)| ident(c)).collect();
        // Rowid order is insertion order: PostgreSQL's identity columns that SQLite lacks
        // (the `ord` columns, which stand in for SQLite's rowid in listings) then number the
        // rows in the same order.
        let order = if table.rowid {
            "rowid".to_owned()
        } else {
            table
                .key
                .iter()
                .map(|k| ident(k))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let select = if order.is_empty() {
            format!("SELECT {} FROM {}", names.join(", "), ident(name))
        } else {
            format!(
                "SELECT {} FROM {} ORDER BY {order}",
                names.join(", "),
                ident(name)
            )
        };
        plans.push(Plan {
            table: name.clone(),
            columns,
            select,
        });
    }
    if problems.is_empty() {
        Ok(plans)
    } else {
        Err(CopyError::Schema(problems.join("; ")))
    }
}

// ---------------------------------------------------------------------------------------------
// Reading and converting.

/// What the reader sends for each table: batches of rows, then the number of rows read (or
/// the error that stopped it).
#[derive(Debug)]
enum Batch {
    Rows(Vec<Vec<Param>>),
    End(u64),
    Failed(CopyError),
}

/// Reads every planned table in order and sends its rows, converted; stops at the first error
/// or when the writer has gone.
fn stream(conn: &sqlite_db::Connection, reads: &[Read], out: &tokio::sync::mpsc::Sender<Batch>) {
    for r in reads {
        let msg = match stream_table(conn, r, out) {
            Ok(Some(n)) => Batch::End(n),
            // The writer has gone (it failed, and says why).
            Ok(None) => return,
            Err(e) => Batch::Failed(e),
        };
        let failed = matches!(msg, Batch::Failed(_));
        if out.blocking_send(msg).is_err() || failed {
            return;
        }
    }
}

/// Sends one table's rows in batches; `None` when the writer has gone.
fn stream_table(
    conn: &sqlite_db::Connection,
    r: &Read,
    out: &tokio::sync::mpsc::Sender<Batch>,
) -> Result<Option<u64>, CopyError> {
    let fail = |e: rusqlite::Error| CopyError::Source(format!("reading {}: {e}", r.table));
    let mut st = conn.prepare(&r.select).map_err(fail)?;
    let mut rows = st.query([]).map_err(fail)?;
    let mut batch = Vec::with_capacity(BATCH);
    let mut n: u64 = 0;
    while let Some(row) = rows.next().map_err(fail)? {
        n += 1;
        let mut values = Vec::with_capacity(r.columns.len());
        for (i, (column, ty)) in r.columns.iter().enumerate() {
            let v = row.get_ref(i).map_err(fail)?;
            values.push(convert(v, ty).map_err(|why| CopyError::Value {
                table: r.table.clone(),
                column: column.clone(),
                row: n,
                why,
            })?);
        }
        batch.push(values);
        if batch.len() == BATCH
            && out
                .blocking_send(Batch::Rows(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH),
                )))
                .is_err()
        {
            return Ok(None);
        }
    }
    if !batch.is_empty() && out.blocking_send(Batch::Rows(batch)).is_err() {
        return Ok(None);
    }
    Ok(Some(n))
}

/// A SQLite value as a value of the PostgreSQL type `ty`; refuses what would change meaning.
fn convert(v: ValueRef<'_>, ty: &Type) -> Result<Param, String> {
    let kind = |v: &ValueRef<'_>| match v {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real number",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "a blob",
    };
    Ok(match (v, ty) {
        (ValueRef::Null, _) => Param::Null,
        (ValueRef::Integer(i), &Type::INT8) => Param::Int(i),
        (ValueRef::Integer(i), &Type::INT4) if i32::try_from(i).is_ok() => Param::Int(i),
        (ValueRef::Integer(i), &Type::INT2) if i16::try_from(i).is_ok() => Param::Int(i),
        (ValueRef::Integer(i), &Type::INT4 | &Type::INT2) => {
            return Err(format!("{i} is out of the range of PostgreSQL's {ty}"))
        }
        // SQLite keeps flags as 0 and 1 (its CHECK constraints say so); anything else is not
        // a flag, and guessing would change what the row means.
        (ValueRef::Integer(0), &Type::BOOL) => Param::Bool(false),
        (ValueRef::Integer(1), &Type::BOOL) => Param::Bool(true),
        (ValueRef::Integer(i), &Type::BOOL) => {
            return Err(format!("{i} is not a flag (0 or 1) for a BOOLEAN column"))
        }
        #[allow(clippy::cast_precision_loss)] // a float column takes a float's precision
        (ValueRef::Integer(i), &Type::FLOAT8 | &Type::FLOAT4) => Param::Float(i as f64),
        (ValueRef::Real(f), &Type::FLOAT8 | &Type::FLOAT4) => Param::Float(f),
        (ValueRef::Text(b), &Type::TEXT | &Type::VARCHAR) => {
            let s = std::str::from_utf8(b).map_err(|e| format!("the text is not UTF-8: {e}"))?;
            if s.contains('\0') {
                return Err(
                    "the text holds a NUL character, which PostgreSQL's text cannot".into(),
                );
            }
            Param::Text(s.to_owned())
        }
        (v, ty) => return Err(format!("{} cannot become PostgreSQL's {ty}", kind(&v))),
    })
}

// ---------------------------------------------------------------------------------------------
// Writing and checking.

/// Writes one table's batches with a binary `COPY`; returns the rows PostgreSQL took.
async fn write_table(
    tx: &Tx,
    p: &Plan,
    batches: &mut tokio::sync::mpsc::Receiver<Batch>,
) -> Result<u64, CopyError> {
    let in_table = |e: CopyError| match e {
        CopyError::Target(m) => CopyError::Target(format!("copying {}: {m}", p.table)),
        other => other,
    };
    let sink = tx
        .client()
        .copy_in::<_, bytes::Bytes>(p.copy_sql().as_str())
        .await
        .map_err(|e| in_table(pg_err(&e)))?;
    let types: Vec<Type> = p.columns.iter().map(|(_, t)| t.clone()).collect();
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    let read = loop {
        match batches.recv().await {
            Some(Batch::Rows(rows)) => {
                for row in &rows {
                    let values: Vec<&(dyn ToSql + Sync)> =
                        row.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                    writer
                        .as_mut()
                        .write(&values)
                        .await
                        .map_err(|e| in_table(pg_err(&e)))?;
                }
            }
            Some(Batch::End(n)) => break n,
            Some(Batch::Failed(e)) => return Err(e),
            None => {
                return Err(CopyError::Source(format!(
                    "the reader stopped while reading {}",
                    p.table
                )))
            }
        }
    };
    let written = writer
        .as_mut()
        .finish()
        .await
        .map_err(|e| in_table(pg_err(&e)))?;
    if written != read {
        return Err(CopyError::Mismatch(vec![format!(
            "{}: {read} rows read, {written} written",
            p.table
        )]));
    }
    Ok(written)
}

/// `tenant_writes` from the copied events (see [`DERIVED_TABLES`]).
async fn fill_tenant_writes(tx: &Tx, pg: &PgCatalog) -> Result<(), CopyError> {
    if !pg.tables.contains_key("tenant_writes") {
        return Ok(());
    }
    tx.client()
        .batch_execute(
            "INSERT INTO tenant_writes (tenant_id, seq) \
             SELECT tenant_id, MAX(seq) FROM events GROUP BY tenant_id",
        )
        .await
        .map_err(|e| pg_err(&e))
}

/// Moves the sequence of every identity column of the copied tables past the largest value
/// copied, so that the next row inserted gets a new key rather than a duplicate.
async fn set_sequences(tx: &Tx, plans: &[Plan], pg: &PgCatalog) -> Result<(), CopyError> {
    for p in plans {
        let Some(cols) = pg.tables.get(&p.table) else {
            continue;
        };
        for col in cols.iter().filter(|c| c.identity) {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), m) \
                 FROM (SELECT MAX({}) AS m FROM {}) s WHERE m IS NOT NULL",
                ident(&col.name),
                ident(&p.table)
            );
            let table = ident(&p.table);
            let params: [&(dyn ToSql + Sync); 2] = [&table, &col.name];
            tx.client()
                .execute(sql.as_str(), &params)
                .await
                .map_err(|e| pg_err(&e))?;
        }
    }
    Ok(())
}

/// Counts every copied table on the target (inside the copy's transaction) and compares with
/// the source's snapshot; checks the derived tables' rows and checksums; adds the derived
/// tables to `tables`. Any difference is a [`CopyError::Mismatch`].
async fn verify(
    tx: &Tx,
    src: &SourceCatalog,
    pg: &PgCatalog,
    tables: &mut Vec<TableCount>,
) -> Result<(), CopyError> {
    let mut wrong = Vec::new();
    for t in tables.iter_mut() {
        let n: i64 = tx
            .client()
            .query_one(
                format!("SELECT COUNT(*) FROM {}", ident(&t.table)).as_str(),
                &[],
            )
            .await
            .map_err(|e| pg_err(&e))?
            .get(0);
        t.target = u64::try_from(n).unwrap_or(0);
        if t.target != t.source {
            wrong.push(format!(
                "{}: {} rows on SQLite, {} on PostgreSQL",
                t.table, t.source, t.target
            ));
        }
    }
    for (table, _, pg_sql, _) in DERIVED_TABLES {
        let (Some(&(rows, sum)), true) = (src.derived.get(*table), pg.tables.contains_key(*table))
        else {
            continue;
        };
        let r = tx
            .client()
            .query_one(*pg_sql, &[])
            .await
            .map_err(|e| pg_err(&e))?;
        let (target_rows, target_sum): (i64, i64) = (r.get(0), r.get(1));
        if (target_rows, target_sum) != (rows, sum) {
            wrong.push(format!(
                "{table} (derived): {rows} rows summing to {sum} expected, {target_rows} \
                 summing to {target_sum} on PostgreSQL"
            ));
        }
        tables.push(TableCount {
            table: (*table).to_owned(),
            source: u64::try_from(rows).unwrap_or(0),
            target: u64::try_from(target_rows).unwrap_or(0),
            derived: true,
        });
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(CopyError::Mismatch(wrong))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn tables_come_after_the_ones_they_reference() {
        let t = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let e = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        let order = dependency_order(
            t(&[
                "emails",
                "members",
                "resources",
                "tenants",
                "webhook_streams",
                "webhooks",
            ]),
            &[
                e("emails", "resources"),
                e("members", "resources"),
                e("resources", "tenants"),
                e("webhook_streams", "webhooks"),
                e("webhooks", "tenants"),
                e("tenants", "tenants"),
            ],
        )
        .unwrap();
        let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
        assert!(pos("tenants") < pos("resources"));
        assert!(pos("resources") < pos("emails") && pos("resources") < pos("members"));
        assert!(pos("webhooks") < pos("webhook_streams"));
        let cycle = dependency_order(t(&["a", "b"]), &[e("a", "b"), e("b", "a")]).unwrap_err();
        assert!(cycle.to_string().contains("cycle"), "{cycle}");
    }

    #[test]
    fn values_convert_by_the_target_type_or_say_why_not() {
        assert_eq!(
            convert(ValueRef::Integer(1), &Type::BOOL),
            Ok(Param::Bool(true))
        );
        assert_eq!(
            convert(ValueRef::Integer(0), &Type::BOOL),
            Ok(Param::Bool(false))
        );
        assert!(convert(ValueRef::Integer(2), &Type::BOOL)
            .unwrap_err()
            .contains("not a flag"));
        assert_eq!(
            convert(ValueRef::Integer(-7), &Type::INT8),
            Ok(Param::Int(-7))
        );
        assert!(convert(ValueRef::Integer(1 << 40), &Type::INT4)
            .unwrap_err()
            .contains("out of the range"));
        assert_eq!(convert(ValueRef::Null, &Type::BOOL), Ok(Param::Null));
        assert_eq!(
            convert(ValueRef::Text(b"{\"a\":1}"), &Type::TEXT),
            Ok(Param::Text("{\"a\":1}".into()))
        );
        assert!(convert(ValueRef::Text(b"a\0b"), &Type::TEXT)
            .unwrap_err()
            .contains("NUL"));
        assert!(convert(ValueRef::Text(&[0xff, 0xfe]), &Type::TEXT)
            .unwrap_err()
            .contains("UTF-8"));
        assert!(convert(ValueRef::Text(b"12"), &Type::INT8)
            .unwrap_err()
            .contains("text cannot become"));
        assert!(convert(ValueRef::Blob(b"x"), &Type::TEXT)
            .unwrap_err()
            .contains("blob"));
    }

    fn sqlite_table(columns: &[&str], rows: u64) -> SqliteTable {
        SqliteTable {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            key: vec![],
            rowid: true,
            rows,
        }
    }

    fn pg_column(name: &str, type_name: &str) -> PgColumn {
        PgColumn {
            name: name.into(),
            ty: pg_type(type_name),
            type_name: type_name.into(),
            identity: false,
            generated: false,
            required: false,
        }
    }

    #[test]
    fn the_plan_copies_shared_columns_and_names_what_only_one_side_has() {
        let mut src = SourceCatalog {
            tables: BTreeMap::new(),
            derived: BTreeMap::new(),
        };
        src.tables
            .insert("webhooks".into(), sqlite_table(&["id", "enabled"], 2));
        src.tables
            .insert("_sqlx_migrations".into(), sqlite_table(&["version"], 11));
        src.tables
            .insert("member_counts".into(), sqlite_table(&["group_pk", "n"], 1));
        let mut tables = BTreeMap::new();
        // A column PostgreSQL has and SQLite lacks, nullable (a later migration's lease
        // column): left to its default.
        tables.insert(
            "webhooks".to_owned(),
            vec![
                pg_column("id", "text"),
                pg_column("enabled", "boolean"),
                pg_column("lease_until", "bigint"),
                PgColumn {
                    identity: true,
                    ..pg_column("ord", "bigint")
                },
            ],
        );
        tables.insert("jobs".to_owned(), vec![pg_column("name", "text")]);
        tables.insert("member_counts".to_owned(), vec![pg_column("n", "bigint")]);
        let pg = PgCatalog {
            order: tables.keys().cloned().collect(),
            tables,
        };
        let plans = plan(&src, &pg).unwrap();
        assert_eq!(plans.len(), 1, "skipped and derived tables are not copied");
        assert_eq!(
            plans[0].columns,
            [
                ("id".to_owned(), Type::TEXT),
                ("enabled".to_owned(), Type::BOOL)
            ]
        );
        assert_eq!(
            plans[0].select,
            "SELECT \"id\", \"enabled\" FROM \"webhooks\" ORDER BY rowid"
        );
        assert_eq!(
            plans[0].copy_sql(),
            "COPY \"webhooks\" (\"id\", \"enabled\") FROM STDIN (FORMAT binary)"
        );

        // A SQLite column PostgreSQL lacks, a PostgreSQL column that needs a value SQLite does
        // not have, and a table on one side only: each named.
        src.tables.insert(
            "webhooks".into(),
            sqlite_table(&["id", "enabled", "sqlite_only"], 2),
        );
        src.tables.insert("stray".into(), sqlite_table(&["x"], 0));
        let mut pg = pg;
        pg.tables.get_mut("webhooks").unwrap().push(PgColumn {
            required: true,
            ..pg_column("must", "text")
        });
        pg.tables
            .insert("pg_only".into(), vec![pg_column("x", "text")]);
        let err = plan(&src, &pg).unwrap_err().to_string();
        for says in [
            "SQLite column webhooks.sqlite_only has no PostgreSQL counterpart",
            "PostgreSQL column webhooks.must needs a value",
            "SQLite table stray has no PostgreSQL counterpart",
            "PostgreSQL table pg_only has no SQLite counterpart",
        ] {
            assert!(err.contains(says), "{says}: {err}");
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("tenants"), "\"tenants\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }
}

#[cfg(test)]
mod tests;
