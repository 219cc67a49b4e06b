//! Online backup and restore of a SQLite database file (`roster backup`, `roster restore`).
//!
//! **Backup** copies a live database with SQLite's online backup API, a few pages per step.
//! Why it is consistent while a server writes: the source connection opens one read
//! transaction before the first step and keeps it to the last, so every step reads the same
//! WAL snapshot (a write committed by the server after it is not in the copy, and the backup
//! never restarts, which it would on every foreign write if each step took a fresh snapshot).
//! In WAL mode that read transaction blocks no writer; it only holds the checkpointer back
//! from the frames after it until the copy ends. The pause between steps leaves the disk and
//! the CPU to the server. The copy is written to a temporary file beside the destination,
//! switched to a rollback journal (so that it is one self-contained file, which opens even on
//! a read-only volume), fsynced, and renamed into place; the directory is fsynced after.
//!
//! **Restore** copies a backup into place for a stopped server: the file is copied beside the
//! target, checked there (`PRAGMA integrity_check`, and a `_sqlx_migrations` table whose
//! migrations this build knows), fsynced and renamed over the target. A target that any
//! process has open (a running `roster serve` holds its database open for its whole life) is
//! refused: that is found by switching the target out of WAL mode, which SQLite allows only
//! to the sole connection of a database, and its exclusive lock is held until the rename.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::migrate;

/// How long the backup's source connection waits for a lock: opening the read transaction
/// can wait briefly on a writer that is restarting the WAL.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a backup or a restore was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The destination (the backup file, or the database being restored) exists; the caller
    /// asked not to replace it.
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    /// The source and the destination are the same file.
    #[error("{} is the database itself", .0.display())]
    SameFile(PathBuf),
    /// The database to back up does not exist.
    #[error("database {} does not exist", .0.display())]
    Missing(PathBuf),
    /// The file is not a Roster database (or not one this build can run).
    #[error("{} is not a Roster database this version can use: {why}", .path.display())]
    NotRoster {
        /// The file.
        path: PathBuf,
        /// What was found.
        why: String,
    },
    /// Another process has the target database open.
    #[error(
        "database {} is open in another process (a running `roster serve`?); stop it first",
        .0.display()
    )]
    InUse(PathBuf),
    /// A file-system error, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// An SQLite error, with what was being done.
    #[error("{what}: {source}")]
    Sqlite {
        /// What was being done.
        what: String,
        /// The error.
        source: rusqlite::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

fn sql(what: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Sqlite { what, source }
}

/// How a backup proceeds.
#[derive(Debug, Clone, Copy)]
pub struct BackupOptions {
    /// Pages copied per step (a page is 4 KiB).
    pub pages_per_step: u32,
    /// The pause between steps.
    pub pause: Duration,
    /// Replace an existing destination file.
    pub force: bool,
}

impl Default for BackupOptions {
    fn default() -> Self {
        // 4 MiB per step, then 10 ms for the server: a 1 GiB database pays 2.5 s of pauses.
        Self {
            pages_per_step: 1024,
            pause: Duration::from_millis(10),
            force: false,
        }
    }
}

/// What a backup or a restore did.
#[derive(Debug, Clone)]
pub struct Copied {
    /// The file written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Database pages copied.
    pub pages: u64,
    /// Backup steps taken (1 for a restore).
    pub steps: u64,
    /// The latest migration the copy has applied.
    pub schema_version: i64,
    /// The latest migration this build knows (a server started on the copy applies the ones
    /// in between).
    pub latest_schema_version: i64,
    /// How long it took.
    pub elapsed: Duration,
}

/// Copies the live database `source` to `dest` (see the module documentation); `progress` is
/// called after each step with (pages copied, pages in total).
///
/// # Errors
/// [`BackupError::Exists`] when `dest` exists and `options.force` is false;
/// [`BackupError::Missing`] and [`BackupError::NotRoster`] for a wrong source; I/O and SQLite
/// errors otherwise. Nothing is left at `dest` (or beside it) on failure.
pub fn backup(
    source: &Path,
    dest: &Path,
    options: BackupOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Copied, BackupError> {
    let started = Instant::now();
    if !source.is_file() {
        return Err(BackupError::Missing(source.to_owned()));
    }
    if same_file(source, dest) {
        return Err(BackupError::SameFile(dest.to_owned()));
    }
    if !options.force && dest.exists() {
        return Err(BackupError::Exists(dest.to_owned()));
    }
    // Read-write without CREATE: a read-only connection cannot open a WAL database whose
    // shared-memory file it may not write, and a missing file must not become an empty one.
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql(format!("opening {}", source.display())))?;
    src.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql("setting busy_timeout"))?;
    // The snapshot: every step reads inside this one read transaction.
    src.execute_batch("BEGIN DEFERRED")
        .map_err(sql("beginning the read transaction"))?;
    let schema_version = schema_version(&src, source)?;

    let tmp = Temp::beside(dest)?;
    let mut dst = Connection::open(&tmp.path).map_err(sql(format!(
        "creating the temporary file {}",
        tmp.path.display()
    )))?;
    let pages_per_step = i32::try_from(options.pages_per_step.max(1)).unwrap_or(i32::MAX);
    let mut steps = 0_u64;
    let pages = {
        let copy = Backup::new(&src, &mut dst).map_err(sql("starting the backup"))?;
        loop {
            steps += 1;
            match copy.step(pages_per_step).map_err(sql("copying pages"))? {
                StepResult::Done => break,
                StepResult::More | StepResult::Busy | StepResult::Locked => {}
                // rusqlite's enum is non-exhaustive; a new result would be a retry too.
                _ => {}
            }
            let p = copy.progress();
            let total = u64::try_from(p.pagecount).unwrap_or(0);
            let remaining = u64::try_from(p.remaining).unwrap_or(0);
            progress(total.saturating_sub(remaining), total);
            pause(options.pause);
        }
        let total = u64::try_from(copy.progress().pagecount).unwrap_or(0);
        progress(total, total);
        total
    };
    src.execute_batch("COMMIT")
        .map_err(sql("ending the read transaction"))?;
    drop(src);
    // The pages came with the source's header, which says WAL: switch the copy to a rollback
    // journal, so that it is one file (no -wal beside it) and opens on a read-only volume.
    to_rollback_journal(&dst, &tmp.path)?;
    dst.close()
        .map_err(|(_, e)| sql(format!("closing {}", tmp.path.display()))(e))?;
    let bytes = tmp.sync()?;
    tmp.rename_to(dest, options.force)?;
    Ok(Copied {
        path: dest.to_owned(),
        bytes,
        pages,
        steps,
        schema_version,
        latest_schema_version: migrate::latest(),
        elapsed: started.elapsed(),
    })
}

/// Copies the backup `from` into place at `target` (see the module documentation).
///
/// # Errors
/// [`BackupError::Exists`] when `target` exists and `force` is false; [`BackupError::InUse`]
/// when a process has it open; [`BackupError::NotRoster`] when `from` fails the integrity
/// check or is not a Roster database (or comes from a newer Roster); I/O and SQLite errors
/// otherwise. The target is left as it was on failure.
pub fn restore(from: &Path, target: &Path, force: bool) -> Result<Copied, BackupError> {
    let started = Instant::now();
    if !from.is_file() {
        return Err(BackupError::Missing(from.to_owned()));
    }
    if same_file(from, target) {
        return Err(BackupError::SameFile(target.to_owned()));
    }
    let not_roster = |why: String| BackupError::NotRoster {
        path: from.to_owned(),
        why,
    };
    // A write-ahead log beside the file holds committed pages the file alone lacks: the file
    // is a live database or one not closed cleanly, not a backup.
    if companion(from, "-wal")
        .metadata()
        .is_ok_and(|m| m.len() > 0)
    {
        return Err(not_roster(format!(
            "{} exists beside it: it is a database in use or not closed cleanly, not a \
             backup; make one with `roster backup`",
            companion(from, "-wal").display()
        )));
    }
    if !force && target.exists() {
        return Err(BackupError::Exists(target.to_owned()));
    }
    // A stray log beside the target would be replayed into the restored file.
    if !target.exists() && companion(target, "-wal").exists() {
        return Err(BackupError::InUse(target.to_owned()));
    }
    // Taken first, so that a server in the way is found before the copy, and held until the
    // rename, so that no process opens the old file meanwhile.
    let _lock = if target.exists() {
        Some(exclusive(target)?)
    } else {
        None
    };

    let tmp = Temp::beside(target)?;
    std::fs::copy(from, &tmp.path).map_err(io(format!(
        "copying {} to {}",
        from.display(),
        tmp.path.display()
    )))?;
    let (schema_version, pages) = {
        let conn = Connection::open_with_flags(
            &tmp.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| not_roster(e.to_string()))?;
        let problems: Vec<String> = conn
            .prepare("PRAGMA integrity_check")
            .and_then(|mut st| {
                st.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<_, _>>()
            })
            // "file is not a database" and the like.
            .map_err(|e| not_roster(e.to_string()))?;
        if problems != ["ok"] {
            let first: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
            return Err(not_roster(format!(
                "the integrity check failed: {}",
                first.join("; ")
            )));
        }
        let version = schema_version(&conn, from)?;
        let pages: u64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .map_err(sql("counting pages"))?;
        to_rollback_journal(&conn, &tmp.path)?;
        conn.close()
            .map_err(|(_, e)| sql(format!("closing {}", tmp.path.display()))(e))?;
        (version, pages)
    };
    let bytes = tmp.sync()?;
    tmp.rename_to(target, force)?;
    Ok(Copied {
        path: target.to_owned(),
        bytes,
        pages,
        steps: 1,
        schema_version,
        latest_schema_version: migrate::latest(),
        elapsed: started.elapsed(),
    })
}

/// The latest migration `conn`'s database applied; refuses a file that is not a Roster
/// database, or one a newer Roster migrated.
fn schema_version(conn: &Connection, path: &Path) -> Result<i64, BackupError> {
    let not_roster = |why: String| BackupError::NotRoster {
        path: path.to_owned(),
        why,
    };
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master \
             WHERE type = 'table' AND name = '_sqlx_migrations')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| not_roster(e.to_string()))?;
    if !has_table {
        return Err(not_roster("it has no _sqlx_migrations table".into()));
    }
    let applied = migrate::check_applied(conn).map_err(|e| not_roster(e.to_string()))?;
    applied
        .into_iter()
        .max()
        .ok_or_else(|| not_roster("it has applied no migration".into()))
}

/// Switches `conn`'s database (a private copy) to a rollback journal, checking that it did.
fn to_rollback_journal(conn: &Connection, path: &Path) -> Result<(), BackupError> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(sql(format!("leaving WAL mode on {}", path.display())))?;
    if mode.eq_ignore_ascii_case("delete") {
        Ok(())
    } else {
        Err(BackupError::InUse(path.to_owned()))
    }
}

/// A connection holding the only lock on `target`: out of WAL mode (which SQLite refuses while
/// any other connection has the file open) and in an exclusive transaction.
fn exclusive(target: &Path) -> Result<Connection, BackupError> {
    let conn = Connection::open_with_flags(
        target,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql(format!("opening {}", target.display())))?;
    let in_use = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            BackupError::InUse(target.to_owned())
        }
        _ => sql(format!("locking {}", target.display()))(e),
    };
    // No waiting: a server holds its connections open as long as it runs.
    conn.busy_timeout(Duration::ZERO).map_err(in_use)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(in_use)?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(BackupError::InUse(target.to_owned()));
    }
    conn.execute_batch("BEGIN EXCLUSIVE").map_err(in_use)?;
    if companion(target, "-wal").exists() {
        return Err(BackupError::InUse(target.to_owned()));
    }
    Ok(conn)
}

/// Whether `a` and `b` name one existing file (through links and relative paths alike).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `path` with `suffix` appended to its file name (SQLite's `-wal`, `-shm`, `-journal`).
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[allow(clippy::disallowed_methods)] // runs on a thread of its own, never on an async worker
fn pause(d: Duration) {
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

/// A temporary file beside a destination (same directory, so the rename is atomic), removed
/// with its journal files unless it was renamed into place.
struct Temp {
    path: PathBuf,
    renamed: bool,
}

impl Temp {
    fn beside(dest: &Path) -> Result<Self, BackupError> {
        let dir = parent(dest);
        if !dir.is_dir() {
            return Err(BackupError::Io {
                what: format!("the directory of {}", dest.display()),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} does not exist", dir.display()),
                ),
            });
        }
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "roster.db".to_owned());
        let path = dir.join(format!(
            ".{name}.roster-tmp-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        Ok(Self {
            path,
            renamed: false,
        })
    }

    /// Flushes the file to disk; returns its size.
    fn sync(&self) -> Result<u64, BackupError> {
        let f = std::fs::File::open(&self.path)
            .map_err(io(format!("opening {}", self.path.display())))?;
        f.sync_all()
            .map_err(io(format!("fsync of {}", self.path.display())))?;
        Ok(f.metadata()
            .map_err(io(format!("reading {}", self.path.display())))?
            .len())
    }

    /// Renames the file to `dest` (refusing an existing one unless `force`), then fsyncs the
    /// directory so that the rename is durable too.
    fn rename_to(mut self, dest: &Path, force: bool) -> Result<(), BackupError> {
        if !force && dest.exists() {
            return Err(BackupError::Exists(dest.to_owned()));
        }
        std::fs::rename(&self.path, dest).map_err(io(format!(
            "renaming {} to {}",
            self.path.display(),
            dest.display()
        )))?;
        self.renamed = true;
        let dir = parent(dest);
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(format!("fsync of directory {}", dir.display())))
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.renamed {
            for suffix in ["", "-journal", "-wal", "-shm"] {
                let _ = std::fs::remove_file(companion(&self.path, suffix));
            }
        }
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests;
