//! Changes made by other processes on the same database, heard at once: one connection per
//! store `LISTEN`s on `roster_events` (a commit appended events: the migration's trigger on
//! `events` notifies) and `roster_auth` (tenants, tokens or admin keys changed: the auth-epoch
//! trigger notifies). PostgreSQL delivers a notification when its transaction commits, so a
//! node's long-polling feed readers and webhook workers wake for another node's writes, and its
//! authentication cache empties when another node revokes a token, without waiting for a poll.
//!
//! The polls stay as the fallback (a notification is not delivered while this connection is
//! down): the listener reconnects with a growing pause, and after a reconnect it signals both
//! channels once, since it may have missed notifications meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_postgres::AsyncMessage;

/// Stops the listener when the last clone of the store is dropped.
#[derive(Debug)]
pub(super) struct Listener(tokio::task::AbortHandle);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a notification moves.
#[derive(Debug, Clone)]
pub(super) struct Signals {
    /// Bumped when events were committed (`EventStore::subscribe`).
    pub committed: Arc<tokio::sync::watch::Sender<u64>>,
    /// Bumped when what authenticates changed (`Store::auth_changes`).
    pub auth_changes: Arc<AtomicU64>,
}

impl Signals {
    fn events(&self) {
        self.committed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn auth(&self) {
        self.auth_changes.fetch_add(1, Ordering::Release);
    }
}

/// Starts listening on a connection of its own.
pub(super) fn start(
    config: tokio_postgres::Config,
    tls: rustls::ClientConfig,
    signals: Signals,
) -> Listener {
    let task = tokio::spawn(async move {
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
        let mut pause = Duration::from_millis(100);
        let mut first = true;
        loop {
            match listen(&config, tls.clone(), &signals, first).await {
                Ok(()) => pause = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other nodes' changes failed; retrying");
                }
            }
            first = false;
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    });
    Listener(task.abort_handle())
}

/// One connection's life: `LISTEN`, then relay notifications until it ends.
async fn listen(
    config: &tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    signals: &Signals,
    first: bool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The connection must be polled for the client's statements to complete, and its
    // messages are where the notifications arrive.
    let pump = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.channel().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client
        .batch_execute("LISTEN roster_events; LISTEN roster_auth")
        .await?;
    if !first {
        // Whatever was notified while no connection listened.
        signals.events();
        signals.auth();
    }
    while let Some(channel) = rx.recv().await {
        match channel.as_str() {
            "roster_events" => signals.events(),
            "roster_auth" => signals.auth(),
            _ => {}
        }
    }
    drop(client);
    match pump.await {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}
