//! Work that several `roster serve` processes on one database share without a leader.
//!
//! Each process has a node name ([`node_name`]). Periodic jobs (provisioning-log pruning,
//! token-expiry warnings) run through [`run_periodic`]: every process wakes often, but runs a
//! job only when it claims the job's current period in the database
//! ([`roster_store::MetaStore::claim_job`], one conditional write), so each job runs once per
//! period across the cluster, and keeps running when the process that ran it last is gone.
//! Webhook streams are leased to one node at a time (see [`crate::webhooks`]).

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;

use crate::AppState;

/// Longest a process sleeps between claims: a job whose node died runs at most this late.
const MAX_TICK: Duration = Duration::from_secs(60);

/// A name for this process among the nodes sharing a database: the host name, the process id
/// and a random suffix (so a restarted process, which may reuse a pid in a container, is a new
/// node). Appears in webhook stream leases, job claims and logs.
#[must_use]
pub fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "roster".to_owned());
    let host: String = host.chars().take(64).collect();
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        rand::thread_rng().gen::<u16>()
    )
}

/// How often a process tries to claim a job of this period: a quarter of it, at most
/// [`MAX_TICK`], so the job runs at most that late after its period ends.
fn tick(period: Duration) -> Duration {
    (period / 4).clamp(Duration::from_millis(10), MAX_TICK)
}

/// Runs `work` once per `period` across every process on the database, until `stop` turns
/// true: at start when the job is due, then whenever this process claims the next period.
pub async fn run_periodic<F, Fut>(
    state: AppState,
    job: &'static str,
    period: Duration,
    mut stop: watch::Receiver<bool>,
    mut work: F,
) where
    F: FnMut(AppState) -> Fut,
    Fut: Future<Output = ()>,
{
    let claim_period = time::Duration::try_from(period).unwrap_or(time::Duration::MAX);
    loop {
        match state
            .store
            .claim_job(job, &state.node, claim_period, state.clock.now())
            .await
        {
            Ok(true) => {
                tracing::debug!(job, node = %state.node, "periodic job claimed");
                work(state.clone()).await;
            }
            Ok(false) => {}
            Err(e) => tracing::error!(job, error = %e, "claiming a periodic job failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(tick(period)) => {}
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use roster_store::sqlite::SqliteStore;

    use super::*;
    use crate::Settings;

    #[test]
    fn node_names_differ_and_stay_short() {
        let (a, b) = (node_name(), node_name());
        assert_ne!(a, b);
        assert!(a.len() <= 64 + 30, "{a}");
    }

    #[test]
    fn ticks_are_a_quarter_of_the_period_within_bounds() {
        assert_eq!(tick(Duration::from_secs(3600)), MAX_TICK);
        assert_eq!(tick(Duration::from_secs(60)), Duration::from_secs(15));
        assert_eq!(tick(Duration::from_millis(1)), Duration::from_millis(10));
    }

    struct TestClock(std::sync::atomic::AtomicI64);

    impl crate::Clock for TestClock {
        fn now(&self) -> time::OffsetDateTime {
            time::OffsetDateTime::UNIX_EPOCH
                + time::Duration::milliseconds(self.0.load(Ordering::SeqCst))
        }
    }

    async fn until_runs(runs: &AtomicUsize, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) < n && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Several more ticks of both nodes: no second run in the same period.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(runs.load(Ordering::SeqCst), n);
    }

    /// Two nodes on one database, claiming every 50 ms a job of a 200 ms period on a clock
    /// that only moves when the test moves it: one run per period in all, whichever node.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_run_a_job_once_per_period() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        let runs = Arc::new(AtomicUsize::new(0));
        let clock = Arc::new(TestClock(std::sync::atomic::AtomicI64::new(1_000_000)));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let store = SqliteStore::open(&url).await.unwrap();
            let mut state = AppState::new(Arc::new(store), Settings::default());
            state.clock = clock.clone();
            let runs = runs.clone();
            tasks.push(tokio::spawn(run_periodic(
                state,
                "test-job",
                Duration::from_millis(200),
                stop_rx.clone(),
                move |_| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    async {}
                },
            )));
        }
        until_runs(&runs, 1).await;
        clock.0.fetch_add(199, Ordering::SeqCst);
        until_runs(&runs, 1).await;
        clock.0.fetch_add(1, Ordering::SeqCst);
        until_runs(&runs, 2).await;
        stop_tx.send(true).unwrap();
        for t in tasks {
            t.await.unwrap();
        }
    }
}
