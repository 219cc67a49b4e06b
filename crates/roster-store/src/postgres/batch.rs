//! Group commit on PostgreSQL: a tenant's concurrent writes share one transaction and one
//! `COMMIT`, as on SQLite (`sqlite/writer.rs`, whose contract this copies).
//!
//! Why: every write transaction of a tenant holds the tenant's `tenant_writes` row lock from
//! its first statement to its `COMMIT` (what keeps the tenant's event seqs gap-free and in
//! commit order, and what the store core's rules assume). One transaction per write therefore
//! meant one WAL flush at a time per tenant. Here the writers of one tenant in this process
//! join the tenant's open batch instead: the batch's transaction takes the lock once, each
//! writer's statements run inside its own `SAVEPOINT`, and one `COMMIT` makes them all
//! durable.
//!
//! The contract, as on SQLite:
//! - **Isolation of failures.** A writer that fails (a 409, a stale version, a dropped request)
//!   is rolled back to its savepoint; the others' work stays in the batch. Its seqs go back
//!   with it (the counter row is updated inside the savepoint), so the next writer reuses them
//!   and seqs stay gap-free.
//! - **Nothing acknowledged before it is durable.** A writer returns only once its batch's
//!   `COMMIT` has answered; a failed commit (or a connection that broke mid-batch) fails every
//!   writer of the batch, with the driver's error (`StoreError::Unavailable` when the database
//!   could not be reached).
//! - **Bounded batches.** A batch is committed when its last pending writer finishes (after a
//!   short linger when it is smaller than the last one), when it holds [`MAX_MEMBERS`] writers,
//!   or when it is [`MAX_AGE`] old.
//! - **Cancellation.** Opening a batch or a savepoint runs in a task of its own; a writer
//!   dropped mid-statement is rolled back to its savepoint by a task that holds the batch
//!   (statements on one connection run in order, so the rollback follows whatever the writer
//!   had sent); a writer dropped while it waits leaves its [`Ticket`], which hands the commit
//!   to a task when it was the last one pending.
//!
//! One open batch per tenant per process: different tenants commit in parallel, and since a
//! batch holds exactly one tenant's lock, two processes never wait on each other in a cycle.
//! Across processes the row lock still serialises the tenant's batches, one at a time.
//!
//! Savepoints are not released: each writer's savepoint nests inside the previous one, and
//! `COMMIT` ends them all. Releasing would cost a round trip per writer and change nothing
//! (a released subtransaction keeps its XID until the end of the transaction either way).
//! Batches stop at 64 writers, the number of subtransaction XIDs PostgreSQL keeps in shared
//! memory per transaction; more would make every other session's snapshots slower.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Mutex, OwnedMutexGuard};

use super::db::{Conn, Error, Pool, Tx};

/// Most writers in one batch (see the module doc: PostgreSQL's subtransaction cache).
const MAX_MEMBERS: usize = 64;
/// Oldest a batch may grow before it is committed even though writers are still queuing.
const MAX_AGE: Duration = Duration::from_millis(10);
/// How long a batch smaller than the last one waits, once no writer is pending, for one more
/// before it commits (see SQLite's writer: the writers answered by one commit send their next
/// requests together, and the first to arrive would otherwise commit alone).
const LINGER: Duration = Duration::from_micros(200);
/// How long a finished writer waits for its batch before it checks that somebody is going to
/// commit it (only a writer cancelled at the wrong moment can leave a batch without one).
const STALL_CHECK: Duration = Duration::from_millis(250);

/// The outcome of one batch's `COMMIT`, shared by its writers.
type Outcome = Option<Result<(), Arc<Error>>>;

/// A tenant's open batch, if any; guarded by the tenant's batch lock.
struct Batch {
    /// The open batch's transaction, holding the tenant's write lock; `None` between batches.
    tx: Option<Tx>,
    /// Writers whose work is in the open batch.
    members: usize,
    /// How long the open batch's writers held the connection, in all (for the debug event).
    held: Duration,
    /// When the open batch began.
    opened: Instant,
    /// Where the open batch's outcome is published.
    outcome: watch::Sender<Outcome>,
}

/// Group commit for every tenant of one store (one [`Writer`] per tenant, made on first use;
/// a tenant's entry is a few words and is kept while the store lives).
#[derive(Clone)]
pub(super) struct Batches {
    pool: Pool,
    tenants: Arc<StdMutex<HashMap<String, Writer>>>,
    /// Numbers the savepoints, so that no two writers ever share a name.
    savepoints: Arc<AtomicU64>,
    /// [`MAX_AGE`], or a test's.
    max_age: Duration,
}

impl std::fmt::Debug for Batches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches").finish_non_exhaustive()
    }
}

impl Batches {
    /// Group commit over `pool`'s connections.
    pub(super) fn new(pool: Pool) -> Self {
        Self {
            pool,
            tenants: Arc::default(),
            savepoints: Arc::default(),
            max_age: MAX_AGE,
        }
    }

    /// The same with batches that may grow older (a test that arranges a batch's writers).
    #[cfg(test)]
    pub(super) fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Starts a write of `tenant`: joins (or opens) the tenant's batch and opens a savepoint
    /// in it.
    ///
    /// Runs in its own task: a caller cancelled half-way must not leave a `BEGIN` or a
    /// savepoint half made on the shared connection. If the caller is gone when the task
    /// finishes, the returned transaction is dropped there and rolls back as usual.
    pub(super) async fn begin(&self, tenant: &str) -> Result<WriteTx, Error> {
        let writer = self.writer(tenant);
        tokio::spawn(async move { writer.begin_now().await })
            .await
            .map_err(|e| Error::Writer(format!("write transaction task failed: {e}")))?
    }

    fn writer(&self, tenant: &str) -> Writer {
        // The map is only read and extended, never left half changed: a poisoned lock is safe.
        let mut map = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(tenant.to_owned())
            .or_insert_with(|| Writer {
                tenant: Arc::from(tenant),
                pool: self.pool.clone(),
                batch: Arc::new(Mutex::new(Batch {
                    tx: None,
                    members: 0,
                    held: Duration::ZERO,
                    opened: Instant::now(),
                    outcome: watch::Sender::new(None),
                })),
                pending: Arc::default(),
                savepoints: self.savepoints.clone(),
                last_members: Arc::default(),
                max_age: self.max_age,
            })
            .clone()
    }
}

/// One tenant's group commit.
#[derive(Clone)]
struct Writer {
    tenant: Arc<str>,
    pool: Pool,
    batch: Arc<Mutex<Batch>>,
    /// Writers that asked for the batch and have not finished (committed into it or rolled
    /// back): while any is left, the batch stays open for it.
    pending: Arc<AtomicUsize>,
    savepoints: Arc<AtomicU64>,
    /// Writers in the last committed batch: a batch that has as many needs no linger.
    last_members: Arc<AtomicUsize>,
    max_age: Duration,
}

/// Counts a writer as pending until it finishes; a writer dropped while it waits must still
/// let the open batch commit.
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

/// One writer's transaction: a savepoint inside its tenant's open batch. Derefs to the
/// connection. Dropped without [`WriteTx::commit`], its statements are rolled back (the batch
/// and the other writers' work are kept).
pub(super) struct WriteTx {
    guard: Option<OwnedMutexGuard<Batch>>,
    ticket: Option<Ticket>,
    writer: Writer,
    /// This writer's savepoint, unique per writer.
    savepoint: String,
    /// When this writer got the batch.
    since: Instant,
}

impl std::fmt::Debug for WriteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx")
            .field("tenant", &self.writer.tenant)
            .field("savepoint", &self.savepoint)
            .finish_non_exhaustive()
    }
}

impl Writer {
    async fn begin_now(&self) -> Result<WriteTx, Error> {
        let ticket = Ticket::new(self);
        let mut guard = Arc::clone(&self.batch).lock_owned().await;
        let savepoint = format!("w{}", self.savepoints.fetch_add(1, Ordering::Relaxed));
        let opened = match guard.tx.as_ref() {
            None => None,
            Some(tx) => Some(tx.script(&format!("SAVEPOINT {savepoint}")).await),
        };
        match opened {
            None => {
                // A new batch: BEGIN, the tenant's lock and this savepoint, one round trip.
                // Failing, nothing is open; the ticket's drop lets nobody wait.
                let tx = self
                    .pool
                    .begin_tenant(&self.tenant, Some(&savepoint))
                    .await?;
                guard.tx = Some(tx);
                guard.members = 0;
                guard.held = Duration::ZERO;
                guard.opened = Instant::now();
                guard.outcome = watch::Sender::new(None);
            }
            Some(Ok(())) => {}
            Some(Err(e)) => {
                // The batch's transaction is unusable (its connection broke): every writer in
                // it fails, and the next writer opens a new batch.
                let e = Arc::new(e);
                self.fail(&mut guard, e.clone());
                drop(ticket);
                return Err(Error::Batch(e));
            }
        }
        Ok(WriteTx {
            guard: Some(guard),
            ticket: Some(ticket),
            writer: self.clone(),
            savepoint,
            since: Instant::now(),
        })
    }

    /// Ends the open batch without committing it and fails its writers with `e`.
    fn fail(&self, guard: &mut Batch, e: Arc<Error>) {
        tracing::error!(
            tenant = %self.tenant, error = %e, writers = guard.members,
            "group commit failed before its COMMIT"
        );
        // Dropped, the connection rolls the transaction back (or is closed).
        drop(guard.tx.take());
        guard.outcome.send_replace(Some(Err(e)));
        guard.members = 0;
    }

    /// Commits the open batch, if there is one and no writer is pending. Called when a writer
    /// disappeared without finishing.
    async fn flush_if_idle(&self) {
        let guard = Arc::clone(&self.batch).lock_owned().await;
        if guard.tx.is_some() && self.pending.load(Ordering::SeqCst) == 0 {
            self.commit_batch(guard).await;
        }
    }

    /// Waits up to [`LINGER`] for another writer, then commits the open batch if nobody is
    /// pending (see SQLite's writer for why).
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

    async fn commit_now(&self, mut guard: OwnedMutexGuard<Batch>) {
        let Some(tx) = guard.tx.take() else {
            return;
        };
        let members = guard.members;
        let result = if members == 0 {
            // Every writer of the batch was rolled back: nothing to make durable, and a
            // rollback needs no WAL flush.
            tx.rollback().await
        } else {
            tx.commit_checked().await
        };
        let stats = self.pool.stats();
        stats.batches.fetch_add(1, Ordering::Relaxed);
        if result.is_ok() {
            stats
                .batched_writers
                .fetch_add(u64::try_from(members).unwrap_or(0), Ordering::Relaxed);
        }
        if let Err(e) = &result {
            tracing::error!(tenant = %self.tenant, error = %e, writers = members, "group commit failed");
        }
        tracing::debug!(
            target: "roster_store::writer",
            tenant = %self.tenant,
            writers = members,
            held_us = u64::try_from(guard.held.as_micros()).unwrap_or(u64::MAX),
            open_us = u64::try_from(guard.opened.elapsed().as_micros()).unwrap_or(u64::MAX),
            "group commit"
        );
        guard.outcome.send_replace(Some(result.map_err(Arc::new)));
        self.last_members.store(members, Ordering::Relaxed);
        guard.members = 0;
    }

    /// Rolls a writer back to its savepoint, then commits the batch if nobody else is
    /// pending. Runs in a task that holds the batch, so no other writer's statement can come
    /// between the writer's statements and their rollback.
    async fn undo(
        &self,
        mut guard: OwnedMutexGuard<Batch>,
        savepoint: String,
        ticket: Option<Ticket>,
    ) {
        let undone = match guard.tx.as_ref() {
            Some(tx) => tx.script(&format!("ROLLBACK TO {savepoint}")).await,
            None => Ok(()),
        };
        match undone {
            Ok(()) => {
                if let Some(tx) = guard.tx.as_ref() {
                    tx.clear_failed();
                }
            }
            Err(e) => self.fail(&mut guard, Arc::new(e)),
        }
        let left = ticket.map_or(0, Ticket::finish);
        if left == 0 {
            self.commit_now(guard).await;
        }
    }
}

impl WriteTx {
    /// Adds this writer's work to the batch and returns once the batch is durable (or failed:
    /// then this writer's work is lost with it and the error is returned).
    ///
    /// # Errors
    /// When a statement of this write failed (its work is rolled back), or the batch failed.
    pub(super) async fn commit(mut self) -> Result<(), Error> {
        let Some(mut guard) = self.guard.take() else {
            return Err(Error::Writer(
                "write transaction already finished".to_owned(),
            ));
        };
        if guard.tx.as_ref().is_some_and(|tx| tx.has_failed()) {
            // A statement of this write failed and its caller went on: PostgreSQL refuses the
            // rest of the transaction until that is rolled back, so this write is undone
            // (by drop) rather than committed, and the batch goes on without it.
            self.guard = Some(guard);
            return Err(Error::Writer(
                "a statement of this write failed; it was rolled back".to_owned(),
            ));
        }
        guard.members += 1;
        guard.held += self.since.elapsed();
        let mut outcome = guard.outcome.subscribe();
        let left = self.ticket.take().map_or(0, Ticket::finish);
        let full = guard.members >= MAX_MEMBERS || guard.opened.elapsed() >= self.writer.max_age;
        // As many writers as the last batch had: everyone who could come is most likely here,
        // so lingering would only delay the commit; and a lone client's writes never linger.
        let complete =
            left == 0 && guard.members >= self.writer.last_members.load(Ordering::Relaxed);
        if full || complete {
            self.writer.commit_batch(guard).await;
        } else if left == 0 {
            // Nobody is waiting to join: linger a moment for writers still being parsed, then
            // commit. In a task, so a cancelled caller cannot strand the batch.
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
                Ok(Ok(Some(Err(e)))) => return Err(Error::Batch(e)),
                Ok(Ok(None)) => return Err(Error::Writer("group commit outcome missing".into())),
                Ok(Err(_)) => return Err(Error::Writer("group commit outcome lost".into())),
                Err(_) => self.writer.flush_if_idle().await,
            }
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        let ticket = self.ticket.take();
        let savepoint = std::mem::take(&mut self.savepoint);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let writer = self.writer.clone();
            rt.spawn(async move { writer.undo(guard, savepoint, ticket).await });
        } else {
            // No runtime to roll back on: the batch cannot go on (its connection is closed
            // when dropped), and its writers learn it.
            let e = Arc::new(Error::Writer(
                "a write was dropped outside a runtime".into(),
            ));
            self.writer.fail(&mut guard, e);
            drop(ticket);
        }
    }
}

impl Deref for WriteTx {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        #[allow(clippy::expect_used)] // a WriteTx holds an open batch until commit or drop
        self.guard
            .as_ref()
            .and_then(|g| g.tx.as_deref())
            .expect("a live write transaction holds its open batch")
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Conn {
        #[allow(clippy::expect_used)] // a WriteTx holds an open batch until commit or drop
        self.guard
            .as_mut()
            .and_then(|g| g.tx.as_deref_mut())
            .expect("a live write transaction holds its open batch")
    }
}
