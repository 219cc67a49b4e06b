//! The SQLite outbox: appending events inside write transactions, and reading them.
//!
//! Why `seq` is gap-free and in commit order: every write transaction of this store starts with
//! `BEGIN IMMEDIATE`, which takes SQLite's single database write lock before anything is read.
//! `append_events` reads `MAX(seq)` of the tenant and inserts `MAX+1, MAX+2, ...` while holding
//! that lock, so no other transaction (in this process or another) can read the same maximum
//! or commit in between; a transaction that rolls back takes its seqs with it, and the next
//! writer reuses them. Hence seqs are assigned in commit order without gaps, and a reader that
//! has seen every `seq <= c` and asks for `seq > c` can never later find a smaller seq appear.
//!
//! PostgreSQL will need the same property without a database-wide lock: a per-tenant counter
//! row (`tenant_seq(tenant_id, last_seq)`) updated with `UPDATE ... RETURNING` (or read `FOR
//! UPDATE`) in the write transaction. The row lock serialises a tenant's writers until commit,
//! so seq order is commit order there too; different tenants do not contend.

use crate::sqlite::db;
use serde_json::Value;
use time::OffsetDateTime;

use super::query::to_ms;
use super::{backend, from_ms, to_i64, SqliteStore, Tx};
use crate::events::{Event, EventStore, NewEvent, SnapshotStream};
use crate::{StoreError, StoreResult};

/// Appends `events` for `tenant` at `now_ms` inside the caller's write transaction.
pub(super) async fn append_events(
    tx: &mut Tx,
    tenant: &str,
    now_ms: i64,
    events: Vec<NewEvent>,
) -> StoreResult<Vec<Event>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let last: i64 =
        db::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events WHERE tenant_id = ?")
            .bind(tenant)
            .fetch_one(&mut **tx)
            .await
            .map_err(backend)?;
    let occurred_at = from_ms(now_ms)?;
    let mut out = Vec::with_capacity(events.len());
    for (i, e) in events.into_iter().enumerate() {
        let seq = last + 1 + i64::try_from(i).unwrap_or(i64::MAX - last - 1);
        out.push(Event {
            tenant: tenant.to_owned(),
            seq,
            id: uuid::Uuid::new_v4().to_string(),
            event_type: e.event_type.as_str().to_owned(),
            occurred_at,
            data: e.data,
        });
    }
    // One statement per `EVENT_ROWS` events: a write's events cost one round trip, not one each.
    for chunk in out.chunks(EVENT_ROWS) {
        let sql = format!(
            "INSERT INTO events (tenant_id, seq, id, type, occurred_at, data) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut q = db::query(&sql);
        for e in chunk {
            q = q
                .bind(tenant)
                .bind(e.seq)
                .bind(&e.id)
                .bind(&e.event_type)
                .bind(now_ms)
                .bind(serde_json::to_string(&e.data).map_err(backend)?);
        }
        q.execute(&mut **tx).await.map_err(backend)?;
    }
    Ok(out)
}

/// Events per `INSERT`: 6 bound values each, well below SQLite's bound-parameter limit.
const EVENT_ROWS: usize = 100;

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
impl EventStore for SqliteStore {
    #[tracing::instrument(skip_all)]
    async fn append_events(
        &self,
        tenant: &str,
        events: Vec<NewEvent>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Event>> {
        let mut tx = self.write().await?;
        let exists: Option<i64> = db::query_scalar("SELECT 1 FROM tenants WHERE id = ?")
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let out = append_events(&mut tx, tenant, to_ms(now), events).await?;
        self.commit(tx).await?;
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
            .fetch_all(&self.reader)
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
            q.bind(to_i64(limit)).fetch_all(&self.reader).await
        }
        .map_err(backend)?;
        rows.into_iter().map(event_from).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn last_seq(&self, tenant: &str) -> StoreResult<i64> {
        db::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events WHERE tenant_id = ?")
            .bind(tenant)
            .fetch_one(&self.reader)
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

/// Parses a JSON text column that may be NULL.
pub(super) fn opt_json(text: Option<String>) -> StoreResult<Option<Value>> {
    text.map(|t| serde_json::from_str(&t).map_err(backend))
        .transpose()
}
