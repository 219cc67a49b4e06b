//! The PostgreSQL outbox: appending events inside write transactions, and reading them.
//!
//! Seqs come from the tenant's `tenant_writes` row, the row its write lock holds (see
//! [`crate::domain::outbox`] for why that keeps the feed gap-free and in commit order).
//!
//! The snapshot stream's readers (`member_page`, `SnapshotState`, `page_size`) are copies of
//! the ones SQLite keeps in `sqlite/reads.rs`, private to this module so that it does not
//! depend on the read path's port.

use std::collections::VecDeque;

use futures::stream::{self, StreamExt};
use scim_proto::schema::ResourceKind;
use serde_json::Value;
use time::OffsetDateTime;

use super::db::{self, Conn};
use super::query::to_ms;
use super::{
    backend, from_ms, stored, to_i64, PostgresStore, ResourceRow, Tx, CHUNK, RESOURCE_COLS,
};
use crate::events::{Event, EventStore, NewEvent, SnapshotPart, SnapshotStream};
use crate::{StoreError, StoreResult, StoredResource};

/// Events per `INSERT` (six parameters each).
const EVENT_ROWS: usize = CHUNK / 6;

/// Hands out `n` seqs of `tenant` and returns the first. The transaction must hold the tenant's
/// write lock ([`PostgresStore::write`]): the counter row stays locked until it ends, so no
/// other writer of the tenant takes seqs in between, and a rollback returns them.
///
/// An upsert rather than an `UPDATE`, so that a caller without the lock row still gets seqs
/// (and takes the lock here).
pub(super) async fn reserve_seqs(tx: &mut Conn, tenant: &str, n: usize) -> StoreResult<i64> {
    let n = i64::try_from(n).map_err(backend)?;
    let last: i64 = db::query_scalar(
        "INSERT INTO tenant_writes AS w (tenant_id, seq) VALUES (?, ?) \
         ON CONFLICT (tenant_id) DO UPDATE SET seq = w.seq + excluded.seq RETURNING seq",
    )
    .bind(tenant)
    .bind(n)
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    Ok(last - n + 1)
}

/// Inserts events as stored (seqs reserved by [`reserve_seqs`]).
pub(super) async fn insert_events(tx: &mut Conn, events: &[Event]) -> StoreResult<()> {
    // A write's events cost one round trip per `EVENT_ROWS`, not one each.
    for chunk in events.chunks(EVENT_ROWS) {
        let sql = format!(
            "INSERT INTO events (tenant_id, seq, id, type, occurred_at, data) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut q = db::query(&sql);
        for e in chunk {
            q = q
                .bind(&e.tenant)
                .bind(e.seq)
                .bind(&e.id)
                .bind(&e.event_type)
                .bind(to_ms(e.occurred_at))
                .bind(serde_json::to_string(&e.data).map_err(backend)?);
        }
        q.execute(&mut *tx).await.map_err(backend)?;
    }
    Ok(())
}

/// Appends `events` for `tenant` at `now_ms` inside the caller's write transaction, which
/// holds the tenant's write lock.
///
/// What the store core's [`append_events`](crate::domain::outbox::append_events) does, over
/// [`reserve_seqs`] and [`insert_events`] directly: it needs the backend's `Rows`, which this
/// module does not wait for. Once `Rows` is implemented for [`Conn`] (with those two
/// functions), this can call the core's.
pub(super) async fn append_events(
    tx: &mut Tx,
    tenant: &str,
    now_ms: i64,
    events: Vec<NewEvent>,
) -> StoreResult<Vec<Event>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let now = crate::domain::stored_time(from_ms(now_ms)?);
    let first = reserve_seqs(tx, tenant, events.len()).await?;
    let out: Vec<Event> = events
        .into_iter()
        .zip(first..)
        .map(|(e, seq)| Event {
            tenant: tenant.to_owned(),
            seq,
            id: uuid::Uuid::new_v4().to_string(),
            event_type: e.event_type.as_str().to_owned(),
            occurred_at: now,
            data: e.data,
        })
        .collect();
    insert_events(tx, &out).await?;
    Ok(out)
}

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
            .fetch_optional(&mut tx)
            .await
            .map_err(backend)?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let out = append_events(&mut tx, tenant, to_ms(now), events).await?;
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
        let limit = page_size(page)?;
        // A REPEATABLE READ transaction takes its snapshot at its first statement: the seq and
        // every part after it see one committed state, in which the events up to `seq` and the
        // resources agree, because both were written by the same transactions.
        let mut tx = self.read().await?;
        let seq: i64 =
            db::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events WHERE tenant_id = ?")
                .bind(tenant)
                .fetch_one(&mut tx)
                .await
                .map_err(backend)?;
        let state = SnapshotState {
            tx,
            tenant: tenant.to_owned(),
            limit,
            users_after: Some(0),
            groups_after: 0,
            groups_done: false,
            pending: VecDeque::new(),
            members_of: None,
        };
        let parts = stream::try_unfold(Some(state), |state| async move {
            let Some(mut st) = state else {
                return Ok(None);
            };
            Ok(st.next_part().await?.map(|part| (part, Some(st))))
        })
        .boxed();
        Ok(SnapshotStream { seq, parts })
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

fn page_size(page: u64) -> StoreResult<i64> {
    if page == 0 {
        return Err(StoreError::Invalid(
            "a page holds at least one row".to_owned(),
        ));
    }
    Ok(to_i64(page))
}

/// One page of a Group's member ids after `after`, in id order (index
/// `members_group_member_id`).
async fn member_page(
    tx: &mut Conn,
    group_pk: i64,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<String>> {
    match after {
        Some(after) => {
            db::query_scalar(
                "SELECT member_id FROM members WHERE group_pk = ? AND member_id > ? \
                 ORDER BY member_id LIMIT ?",
            )
            .bind(group_pk)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
        }
        None => {
            db::query_scalar(
                "SELECT member_id FROM members WHERE group_pk = ? ORDER BY member_id LIMIT ?",
            )
            .bind(group_pk)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
        }
    }
    .map_err(backend)
}

/// Where a streamed snapshot stands. Holds its read transaction, and with it one connection
/// of the pool, until the stream ends or is dropped.
struct SnapshotState {
    tx: Conn,
    tenant: String,
    limit: i64,
    /// The pk after which the next Users page starts; `None` once every User was read.
    users_after: Option<i64>,
    /// The pk after which the next Groups page starts.
    groups_after: i64,
    groups_done: bool,
    /// Groups read but not yet returned.
    pending: VecDeque<(i64, StoredResource)>,
    /// The Group whose members are being returned, and the last member id returned.
    members_of: Option<(i64, Option<String>)>,
}

impl SnapshotState {
    /// A page of live resources of `kind` after pk `after`, in pk (creation) order.
    async fn resources(
        &mut self,
        kind: ResourceKind,
        after: i64,
    ) -> StoreResult<Vec<(i64, StoredResource)>> {
        // Unmanaged app records are part of the picture, as they always were: the snapshot is
        // the directory, not only its SCIM view.
        let rows: Vec<ResourceRow> = db::query_as(&format!(
            "SELECT {RESOURCE_COLS} FROM resources r \
             WHERE r.tenant_id = ? AND r.kind = ? AND NOT r.deleted AND r.pk > ? \
             ORDER BY r.pk LIMIT ?"
        ))
        .bind(&self.tenant)
        .bind(kind.as_str())
        .bind(after)
        .bind(self.limit)
        .fetch_all(&mut self.tx)
        .await
        .map_err(backend)?;
        rows.into_iter().map(|r| stored(kind, r)).collect()
    }

    /// The next part, or `None` at the end.
    async fn next_part(&mut self) -> StoreResult<Option<SnapshotPart>> {
        loop {
            if let Some(after) = self.users_after {
                let rows = self.resources(ResourceKind::User, after).await?;
                self.users_after = match rows.last() {
                    Some((pk, _)) if rows.len() as i64 == self.limit => Some(*pk),
                    _ => None,
                };
                if !rows.is_empty() {
                    return Ok(Some(SnapshotPart::Users(
                        rows.into_iter().map(|(_, r)| r).collect(),
                    )));
                }
                continue;
            }
            if let Some((group_pk, after)) = self.members_of.take() {
                let ids = member_page(&mut self.tx, group_pk, after.as_deref(), self.limit).await?;
                if ids.len() as i64 == self.limit {
                    self.members_of = Some((group_pk, ids.last().cloned()));
                }
                if !ids.is_empty() {
                    return Ok(Some(SnapshotPart::Members(ids)));
                }
                continue;
            }
            if let Some((pk, group)) = self.pending.pop_front() {
                self.members_of = Some((pk, None));
                return Ok(Some(SnapshotPart::Group(group)));
            }
            if self.groups_done {
                return Ok(None);
            }
            let rows = self
                .resources(ResourceKind::Group, self.groups_after)
                .await?;
            self.groups_done = (rows.len() as i64) < self.limit;
            if let Some((pk, _)) = rows.last() {
                self.groups_after = *pk;
            }
            self.pending.extend(rows);
        }
    }
}
