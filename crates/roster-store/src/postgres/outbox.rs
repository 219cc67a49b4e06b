//! The PostgreSQL outbox: appending events inside write transactions, and reading them.
//!
//! Seqs come from the tenant's `tenant_writes` row, the row its write lock holds (see
//! [`crate::domain::outbox`] for why that keeps the feed gap-free and in commit order). The
//! reconciliation snapshot is streamed by the read path (`reads.rs`).

use time::OffsetDateTime;

use super::db;
use super::{backend, from_ms, to_i64, PostgresStore};
use crate::events::{Event, EventStore, NewEvent, SnapshotStream};
pub(super) use crate::stored_form::opt_json;
use crate::{StoreError, StoreResult};

type EventRow = (String, i64, String, String, i64, String);

fn event_from(row: EventRow) -> StoreResult<Event> {
    let (tenant, seq, id, event_type, at, data) = row;
    Ok(Event {
        tenant,
        seq,
        id,
        event_type,
        occurred_at: from_ms(at)?,
        data: serde_json::from_str(&data).map_err(backend)?,
    })
}

#[async_trait::async_trait]
impl EventStore for PostgresStore {
    #[tracing::instrument(skip_all)]
    async fn append_events(
        &self,
        tenant: &str,
        events: Vec<NewEvent>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Event>> {
        let mut tx = self.write(tenant).await?;
        let exists: Option<i64> = db::query_scalar("SELECT 1 FROM tenants WHERE id = ?")
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let out = crate::domain::outbox::append_events(&mut *tx, tenant, now, events).await?;
        self.commit_events(tx).await?;
        Ok(out)
    }

    #[tracing::instrument(skip_all)]
    async fn list_events(
        &self,
        tenant: &str,
        after: i64,
        types: &[String],
        limit: u64,
    ) -> StoreResult<Vec<Event>> {
        let cols = "tenant_id, seq, id, type, occurred_at, data";
        let rows: Vec<EventRow> = if types.is_empty() {
            db::query_as(&format!(
                "SELECT {cols} FROM events WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?"
            ))
            .bind(tenant)
            .bind(after)
            .bind(to_i64(limit))
            .fetch_all(&self.pool)
            .await
        } else {
            let marks = vec!["?"; types.len()].join(", ");
            let sql = format!(
                "SELECT {cols} FROM events WHERE tenant_id = ? AND seq > ? AND type IN ({marks}) \
                 ORDER BY seq LIMIT ?"
            );
            let mut q = db::query_as(&sql).bind(tenant).bind(after);
            for t in types {
                q = q.bind(t.as_str());
            }
            q.bind(to_i64(limit)).fetch_all(&self.pool).await
        }
        .map_err(backend)?;
        rows.into_iter().map(event_from).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn last_seq(&self, tenant: &str) -> StoreResult<i64> {
        db::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events WHERE tenant_id = ?")
            .bind(tenant)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    #[tracing::instrument(skip_all)]
    async fn snapshot_stream(&self, tenant: &str, page: u64) -> StoreResult<SnapshotStream> {
        self.snapshot_stream_impl(tenant, page).await
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.committed.subscribe()
    }
}
