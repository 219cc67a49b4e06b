//! Group commit: concurrent write transactions share one SQLite transaction and one fsync.
//!
//! Every write of this process runs on the writer's single connection. A writer takes the
//! batch lock, and the first writer of a batch opens it with `BEGIN IMMEDIATE`; each writer's
//! work runs inside its own `SAVEPOINT`, so one writer's failure (a 409, a stale version, a
//! dropped request) rolls back that writer's statements only. When a writer finishes and no
//! other writer is waiting for the lock (or the batch is full or old), the batch is committed —
//! one `COMMIT`, one fsync with `synchronous=FULL` — and every writer of the batch learns the
//! outcome of that commit before it returns: nothing is acknowledged before it is durable.
//!
//! While one batch commits, arriving writers queue on the lock and form the next batch, so the
//! number of fsyncs per second stays bounded while writes per second grow with concurrency.
//!
//! Writers see each other's uncommitted work inside a batch (they run one after another on one
//! connection), which is exactly the serial order SQLite would give them anyway; readers on
//! other connections see a batch only once it is committed.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Mutex, OwnedMutexGuard};

use super::db::{script, Connection, Error};

/// Most writers in one batch: bounds how long the first writer of a batch waits.
const MAX_MEMBERS: usize = 128;
/// Oldest a batch may grow before it is committed even though writers are still queuing.
const MAX_AGE: Duration = Duration::from_millis(10);
/// How long a batch smaller than the last one waits, once no writer is pending, for one more
/// before it commits: about what parsing and authenticating a request costs, well under one
/// fsync.
const LINGER: Duration = Duration::from_micros(200);
/// How long a finished writer waits for its batch before it checks that somebody is going to
/// commit it (only a writer cancelled at the wrong moment can leave a batch without one).
const STALL_CHECK: Duration = Duration::from_millis(250);

/// The outcome of one batch's `COMMIT`, shared by its writers.
type Outcome = Option<Result<(), Arc<str>>>;

/// The open batch, if any; guarded by the batch lock.
struct Batch {
    /// The writer connection.
    conn: Connection,
    /// Whether a batch is open (`BEGIN IMMEDIATE` was run on `conn`).
    open: bool,
    /// Writers whose savepoint was released into the open batch.
    members: usize,
    /// How long the open batch's writers held the connection, in all (for the debug event).
    held: Duration,
    /// When the open batch began.
    opened: Instant,
    /// Where the open batch's commit outcome is published.
    outcome: watch::Sender<Outcome>,
}

/// The group-commit writer: one per store.
#[derive(Clone)]
pub(super) struct Writer {
    batch: Arc<Mutex<Batch>>,
    /// Writers that asked for the lock and have not finished (committed into the batch or
    /// rolled back): while any is left, the batch stays open for it.
    pending: Arc<AtomicUsize>,
    /// Bumped after every commit (see `EventStore::subscribe`).
    committed: Arc<watch::Sender<u64>>,
    /// Numbers the savepoints.
    savepoints: Arc<AtomicU64>,
    /// Writers in the last committed batch: a batch that has as many needs no linger.
    last_members: Arc<AtomicUsize>,
}

/// Counts a writer as pending until it finishes; a writer dropped while it waits for the lock
/// must still let the open batch commit.
#[derive(Debug)]
struct Ticket {
    writer: Option<Writer>,
}

impl Ticket {
    fn new(writer: &Writer) -> Self {
        writer.pending.fetch_add(1, Ordering::SeqCst);
        Self {
            writer: Some(writer.clone()),
        }
    }

    /// Stops counting this writer; returns how many writers are still pending.
    fn finish(mut self) -> usize {
        match self.writer.take() {
            Some(w) => w.pending.fetch_sub(1, Ordering::SeqCst).saturating_sub(1),
            None => 0,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            if w.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
                // The last pending writer went away without finishing: nobody else may be
                // about to commit the open batch.
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move { w.flush_if_idle().await });
                }
            }
        }
    }
}

/// One writer's transaction: a savepoint inside the open batch. Derefs to the connection, so
/// statements run on it inline. Dropped without [`WriteTx::commit`], its
/// statements are rolled back (the batch and the other writers' work are kept).
pub(super) struct WriteTx {
    guard: Option<OwnedMutexGuard<Batch>>,
    ticket: Option<Ticket>,
    writer: Writer,
    /// This writer's savepoint. Unique per writer, so that undoing one writer can never reach
    /// another's savepoint, whatever a cancellation left behind.
    savepoint: String,
    /// When this writer got the connection.
    since: Instant,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("open", &self.open)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WriteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx")
            .field("savepoint", &self.savepoint)
            .finish_non_exhaustive()
    }
}

/// An error of the writer itself (not of a statement).
fn protocol(msg: impl Into<String>) -> Error {
    Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
        Some(msg.into()),
    )
}

/// `BEGIN IMMEDIATE` without waiting: fails with `SQLITE_BUSY` at once when another process
/// holds the write lock.
fn begin_inline(conn: &Connection) -> Result<(), Error> {
    conn.busy_timeout(Duration::ZERO)?;
    let begun = script(conn, "BEGIN IMMEDIATE");
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    begun
}

fn is_busy(e: &Error) -> bool {
    matches!(e, Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy)
}

/// Runs `f` on the batch's connection on the blocking pool (for statements that may wait on
/// a lock or an fsync), and gives the batch back.
async fn blocking<R: Send + 'static>(
    mut guard: OwnedMutexGuard<Batch>,
    f: impl FnOnce(&mut Batch) -> R + Send + 'static,
) -> Result<(OwnedMutexGuard<Batch>, R), Error> {
    tokio::task::spawn_blocking(move || {
        let r = f(&mut guard);
        (guard, r)
    })
    .await
    .map_err(|e| protocol(format!("writer task failed: {e}")))
}

impl Writer {
    /// A writer over `conn`, which no one else writes with.
    pub(super) fn new(conn: Connection, committed: Arc<watch::Sender<u64>>) -> Self {
        Self {
            batch: Arc::new(Mutex::new(Batch {
                conn,
                open: false,
                held: Duration::ZERO,
                members: 0,
                opened: Instant::now(),
                outcome: watch::Sender::new(None),
            })),
            pending: Arc::new(AtomicUsize::new(0)),
            committed,
            savepoints: Arc::new(AtomicU64::new(0)),
            last_members: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Starts a write: joins (or opens) the current batch and opens a savepoint in it.
    ///
    /// Runs in its own task: a caller cancelled half-way (its client went away) must not
    /// leave a `BEGIN` or a savepoint behind on the shared connection. If the caller is gone
    /// when the task finishes, the returned transaction is dropped and rolls back as usual.
    pub(super) async fn begin(&self) -> Result<WriteTx, Error> {
        let writer = self.clone();
        tokio::spawn(async move { writer.begin_now().await })
            .await
            .map_err(|e| protocol(format!("write transaction task failed: {e}")))?
    }

    async fn begin_now(&self) -> Result<WriteTx, Error> {
        let ticket = Ticket::new(self);
        let mut guard = Arc::clone(&self.batch).lock_owned().await;
        if !guard.open {
            // Inline when the write lock is free (the usual case: this process is the only
            // writer); when another process holds it, wait for it on the blocking pool, up
            // to the busy timeout, so that an async worker never sleeps on a lock.
            if let Err(e) = begin_inline(&guard.conn) {
                if !is_busy(&e) {
                    return Err(e);
                }
                let (g, begun) = blocking(guard, |b| script(&b.conn, "BEGIN IMMEDIATE")).await?;
                guard = g;
                begun?;
            }
            guard.open = true;
            guard.members = 0;
            guard.held = Duration::ZERO;
            guard.opened = Instant::now();
            guard.outcome = watch::Sender::new(None);
        }
        let savepoint = format!("w{}", self.savepoints.fetch_add(1, Ordering::Relaxed));
        if let Err(e) = script(&guard.conn, &format!("SAVEPOINT {savepoint}")) {
            // Nothing of this writer is in the batch; let the others' work commit.
            let left = ticket.finish();
            if left == 0 {
                self.commit_batch(guard).await;
            }
            return Err(e);
        }
        Ok(WriteTx {
            guard: Some(guard),
            ticket: Some(ticket),
            writer: self.clone(),
            savepoint,
            since: Instant::now(),
        })
    }

    /// Commits the open batch, if there is one and no writer is pending. Called when a writer
    /// disappeared without finishing.
    async fn flush_if_idle(&self) {
        let guard = Arc::clone(&self.batch).lock_owned().await;
        if guard.open && self.pending.load(Ordering::SeqCst) == 0 {
            self.commit_batch(guard).await;
        }
    }

    /// Waits up to [`LINGER`] for another writer, then commits the open batch if nobody is
    /// pending. A writer that arrives meanwhile joins the batch and, when it finishes, decides
    /// the same way; so a batch is committed once writers stop arriving.
    ///
    /// Why: under load, the writers of the last batch learn of its commit together and send
    /// their next requests together; the first of those to reach the store would otherwise
    /// find nobody pending and commit alone, and the rest would wait for its fsync, halving
    /// the writers per fsync (measured: half of all batches held one writer).
    async fn linger_then_flush(&self) {
        let start = Instant::now();
        while start.elapsed() < LINGER {
            // Lets the tasks queued on this worker (requests being parsed) run first.
            tokio::task::yield_now().await;
            if self.pending.load(Ordering::SeqCst) > 0 {
                return;
            }
        }
        self.flush_if_idle().await;
    }

    /// Commits the open batch and publishes the outcome to its writers. Runs in its own task,
    /// so that a cancelled caller cannot stop it half-way.
    async fn commit_batch(&self, guard: OwnedMutexGuard<Batch>) {
        let writer = self.clone();
        let task = tokio::spawn(async move { writer.commit_now(guard).await });
        if let Err(e) = task.await {
            tracing::error!(error = %e, "group commit task failed");
        }
    }

    async fn commit_now(&self, guard: OwnedMutexGuard<Batch>) {
        if !guard.open {
            return;
        }
        let outcome = guard.outcome.clone();
        // The fsync: on the blocking pool, not on an async worker.
        let committed = blocking(guard, |b| {
            let r = script(&b.conn, "COMMIT");
            if r.is_err() {
                // Leave the connection clean for the next batch.
                let _ = script(&b.conn, "ROLLBACK");
            }
            b.open = false;
            r
        })
        .await;
        let (mut guard, result) = match committed {
            Ok((g, r)) => (g, r.map_err(|e| Arc::<str>::from(e.to_string()))),
            Err(e) => {
                // The task panicked and took the batch (and the lock) with it.
                tracing::error!(error = %e, "group commit task failed");
                outcome.send_replace(Some(Err(Arc::from(e.to_string()))));
                return;
            }
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, writers = guard.members, "group commit failed");
        }
        tracing::debug!(
            target: "roster_store::writer",
            writers = guard.members,
            held_us = u64::try_from(guard.held.as_micros()).unwrap_or(u64::MAX),
            open_us = u64::try_from(guard.opened.elapsed().as_micros()).unwrap_or(u64::MAX),
            "group commit"
        );
        guard.outcome.send_replace(Some(result));
        self.last_members.store(guard.members, Ordering::Relaxed);
        guard.members = 0;
        self.committed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl WriteTx {
    fn conn(&mut self) -> Result<&mut Connection, Error> {
        self.guard
            .as_mut()
            .map(|g| &mut g.conn)
            .ok_or_else(|| protocol("write transaction already finished"))
    }

    /// Releases this writer's savepoint into the batch and returns once the batch is durable
    /// (or failed: then this writer's work is lost with it and the error is returned).
    ///
    /// # Errors
    /// When releasing the savepoint or committing the batch fails.
    pub(super) async fn commit(mut self) -> Result<(), Error> {
        // On failure, Drop rolls the savepoint back.
        let release = format!("RELEASE {}", self.savepoint);
        script(self.conn()?, &release)?;
        let Some(mut guard) = self.guard.take() else {
            return Err(protocol("write transaction already finished"));
        };
        guard.members += 1;
        guard.held += self.since.elapsed();
        let mut outcome = guard.outcome.subscribe();
        let left = self.ticket.take().map_or(0, Ticket::finish);
        let full = guard.members >= MAX_MEMBERS || guard.opened.elapsed() >= MAX_AGE;
        // As many writers as the last batch had: everyone who could come is most likely here
        // (under load the same clients send the next batch's requests), so lingering would
        // only delay the fsync; and a lone client's writes never linger.
        let complete =
            left == 0 && guard.members >= self.writer.last_members.load(Ordering::Relaxed);
        if full || complete {
            self.writer.commit_batch(guard).await;
        } else if left == 0 {
            // Nobody is waiting to join: linger a moment for writers that are still being
            // parsed, then commit. In a task, so a cancelled caller cannot strand the batch.
            drop(guard);
            let writer = self.writer.clone();
            tokio::spawn(async move { writer.linger_then_flush().await });
        } else {
            drop(guard);
        }
        loop {
            let waited = tokio::time::timeout(STALL_CHECK, outcome.wait_for(Option::is_some))
                .await
                .map(|r| r.map(|v| v.clone()));
            match waited {
                Ok(Ok(Some(Ok(())))) => return Ok(()),
                Ok(Ok(Some(Err(e)))) => return Err(protocol(format!("group commit failed: {e}"))),
                Ok(Ok(None)) => return Err(protocol("group commit outcome missing")),
                Ok(Err(_)) => return Err(protocol("group commit outcome lost")),
                Err(_) => self.writer.flush_if_idle().await,
            }
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        let ticket = self.ticket.take();
        // Undoing a savepoint touches no file (the batch is not committed): inline.
        let undo = script(
            &guard.conn,
            &format!("ROLLBACK TO {0}; RELEASE {0}", self.savepoint),
        );
        if let Err(e) = undo {
            tracing::error!(error = %e, "rolling back a write failed");
        }
        let left = ticket.map_or(0, Ticket::finish);
        if left == 0 {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let writer = self.writer.clone();
                rt.spawn(async move { writer.commit_batch(guard).await });
            }
        }
    }
}

impl Deref for WriteTx {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        #[allow(clippy::expect_used)] // a WriteTx holds the connection until commit or drop
        &self
            .guard
            .as_ref()
            .expect("a live write transaction holds the writer connection")
            .conn
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Connection {
        #[allow(clippy::expect_used)] // a WriteTx holds the connection until commit or drop
        &mut self
            .guard
            .as_mut()
            .expect("a live write transaction holds the writer connection")
            .conn
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::super::db::{self, Options, Pool};
    use super::*;

    /// A temporary database file with one table, and a group-commit writer on it.
    struct Fixture {
        path: std::path::PathBuf,
        writer: Writer,
        reader: Pool,
        committed: Arc<watch::Sender<u64>>,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
            }
        }
    }

    async fn fixture() -> Fixture {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "roster-writer-test-{}-{}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let opts = Options {
            path: path.clone(),
            busy_timeout: Duration::from_secs(5),
            durable: true,
        };
        let conn = opts.open_writer().unwrap();
        conn.execute_batch("CREATE TABLE t (name TEXT NOT NULL UNIQUE)")
            .unwrap();
        let reader = Pool::new(opts, 2);
        let committed = Arc::new(watch::Sender::new(0));
        Fixture {
            path,
            writer: Writer::new(conn, committed.clone()),
            reader,
            committed,
        }
    }

    async fn insert(w: &Writer, name: &str) -> Result<(), db::Error> {
        let mut tx = w.begin().await?;
        db::query("INSERT INTO t (name) VALUES (?)")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    async fn names(f: &Fixture) -> Vec<String> {
        db::query_scalar("SELECT name FROM t ORDER BY name")
            .fetch_all(&f.reader)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_share_commits_and_each_is_durable_on_return() {
        let f = fixture().await;
        let mut tasks = Vec::new();
        for i in 0..200 {
            let w = f.writer.clone();
            let reader = f.reader.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("n{i:03}");
                insert(&w, &name).await.unwrap();
                // Acknowledged means committed: another connection sees it at once.
                let seen: Option<String> = db::query_scalar("SELECT name FROM t WHERE name = ?")
                    .bind(&name)
                    .fetch_optional(&reader)
                    .await
                    .unwrap();
                assert_eq!(seen.as_deref(), Some(name.as_str()));
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(names(&f).await.len(), 200);
        let commits = *f.committed.borrow();
        assert!(commits >= 1);
        assert!(
            commits < 200,
            "200 concurrent writers should share commits, got {commits} commits"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_writer_loses_only_its_own_work() {
        let f = fixture().await;
        let mut tasks = Vec::new();
        // Every name is written by two writers: exactly one of each pair must win, and the
        // losers' constraint failures must not undo anybody else's insert in the same batch.
        for i in 0..100 {
            for _ in 0..2 {
                let w = f.writer.clone();
                tasks.push(tokio::spawn(async move {
                    insert(&w, &format!("dup{i:03}")).await
                }));
            }
        }
        let mut ok = 0;
        let mut unique_failures = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ok += 1,
                Err(e) if db::is_unique_violation(&e) => unique_failures += 1,
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!((ok, unique_failures), (100, 100));
        assert_eq!(names(&f).await.len(), 100);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_writer_is_rolled_back_and_the_batch_still_commits() {
        let f = fixture().await;
        // Statements run, then the transaction is dropped without commit (an early return).
        {
            let mut tx = f.writer.begin().await.unwrap();
            db::query("INSERT INTO t (name) VALUES ('dropped')")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        insert(&f.writer, "kept").await.unwrap();
        assert_eq!(names(&f).await, vec!["kept".to_owned()]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_writers_never_stall_the_others() {
        let f = fixture().await;
        let mut handles = Vec::new();
        for i in 0..100 {
            let w = f.writer.clone();
            handles.push(tokio::spawn(async move {
                insert(&w, &format!("c{i:03}")).await
            }));
        }
        // Cancel every third writer wherever it is: waiting for the lock, mid-statement, or
        // waiting for its batch's commit.
        for (i, h) in handles.iter().enumerate() {
            if i % 3 == 0 {
                h.abort();
            }
        }
        let mut completed = 0;
        for h in handles {
            if let Ok(r) = h.await {
                r.unwrap();
                completed += 1;
            }
        }
        // Whatever was cancelled, later writers are not blocked behind a batch nobody commits
        // (a generous bound: this checks for a hang, not for speed).
        tokio::time::timeout(Duration::from_secs(30), insert(&f.writer, "after"))
            .await
            .expect("a writer after cancellations must not hang")
            .unwrap();
        let stored = names(&f).await;
        assert!(stored.contains(&"after".to_owned()));
        // Every writer that returned Ok is stored; cancelled ones may or may not be.
        assert!(stored.len() > completed);
    }
}
