//! The WAL checkpointer: copies committed WAL frames into the database file from a connection
//! and a thread of its own, so that a group commit's `COMMIT` only appends to the WAL and
//! fsyncs it.
//!
//! Why: with SQLite's automatic checkpoint, the commit that takes the WAL past 1,000 pages also
//! copies them into the database file and fsyncs it, on the writer's connection, while the next
//! batch waits; under `POST` load that was a sixth of the commit path's time. A `PASSIVE`
//! checkpoint runs beside the writer and the readers without blocking either. Once every frame
//! is copied, new readers read the database file and the writer restarts the WAL from its
//! beginning, so the file stays small. The writer keeps an automatic checkpoint at a much
//! larger size ([`WRITER_AUTOCHECKPOINT`]) as the bound if this thread ever falls behind.

use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::Duration;

use super::db::Options;

/// How often the checkpointer looks at the WAL.
const INTERVAL: Duration = Duration::from_millis(100);

/// The writer's own automatic checkpoint, in pages (4 KiB each): far above what the
/// checkpointer lets accumulate, it only bounds the WAL should the checkpointer stall.
pub(super) const WRITER_AUTOCHECKPOINT: u32 = 16_384;

/// The running checkpointer; its thread ends when this is dropped (the channel closes).
#[derive(Debug)]
pub(super) struct Checkpointer {
    _stop: Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the database `options` names; `None` when its connection cannot be
    /// opened (the writer's automatic checkpoint then does the work).
    pub(super) fn start(options: &Options) -> Option<Self> {
        let conn = match options.open_writer() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpointer not started; the writer checkpoints");
                return None;
            }
        };
        let (stop, stopped) = channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("roster-checkpoint".to_owned())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    // (busy, frames in the WAL, frames copied); a failure is retried next time.
                    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    });
                    if let Err(e) = done {
                        tracing::debug!(target: "roster_store::writer", error = %e, "checkpoint");
                    }
                }
            });
        match spawned {
            Ok(_) => Some(Self { _stop: stop }),
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpointer not started; the writer checkpoints");
                None
            }
        }
    }
}
