//! The SQLite side of the SCIM read path: one call, one read transaction on one reader
//! connection, and a bounded number of statements per request.
//!
//! - A GET by id is one statement for a User with its `groups` (the groups come back as a JSON
//!   array in a column of the resource row), or two for a Group with its member ids.
//! - A list page costs what the page itself costs (`COUNT`, the page) plus one statement per
//!   relation asked for, whatever the page size: the page's ids are bound as one JSON array
//!   parameter and expanded with `json_each`, so the bound-parameter limit never splits it.
//! - A large Group and the reconciliation snapshot are read as streams: keyset pages from one
//!   read transaction that the stream owns, so the whole result is one consistent snapshot
//!   (WAL keeps the transaction's view whatever commits meanwhile) while memory stays bounded
//!   by a page. The price is that the stream holds one reader connection (of `READERS`) and
//!   pins the WAL (no checkpoint past its snapshot) until it ends or is dropped; a client that
//!   reads slowly keeps it that long.

use crate::sqlite::db::{self, Connection};
use std::collections::{HashMap, VecDeque};

use futures::stream::{self, StreamExt};
use scim_proto::schema::ResourceKind;

use super::{backend, stored, to_i64, ReadTx, ResourceRow, SqliteStore, RESOURCE_COLS};
use crate::events::{SnapshotPart, SnapshotStream};
use crate::{
    GroupRef, GroupStream, ListQuery, PageRead, Relations, ResourceRead, StoreError, StoreResult,
    StoredResource,
};

/// `(group id, displayName)` pairs as `json_group_array` builds them.
type GroupPairs = Vec<(String, String)>;

fn group_refs(pairs: GroupPairs) -> Vec<GroupRef> {
    pairs
        .into_iter()
        .map(|(id, display_name)| GroupRef { id, display_name })
        .collect()
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
    tx: &mut ReadTx,
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
            .fetch_all(&mut **tx)
            .await
        }
        None => {
            db::query_scalar(
                "SELECT member_id FROM members WHERE group_pk = ? ORDER BY member_id LIMIT ?",
            )
            .bind(group_pk)
            .bind(limit)
            .fetch_all(&mut **tx)
            .await
        }
    }
    .map_err(backend)
}

/// The groups of a page of Users (`ids`: a JSON array). `CROSS JOIN` fixes the join order to
/// start from the page's ids: without statistics SQLite otherwise walks every User of the
/// tenant and their memberships (100,000 users made a 10-user page cost 250 ms).
pub(super) const GROUPS_OF_SQL: &str = "\
    SELECT u.id, g.id, COALESCE(json_extract(g.doc, '$.displayName'), '') \
    FROM json_each(?) j \
    CROSS JOIN resources u ON u.tenant_id = ? AND u.kind = 'User' AND u.id = j.value \
    CROSS JOIN members m ON m.member_pk = u.pk \
    CROSS JOIN resources g ON g.pk = m.group_pk \
    WHERE g.deleted = 0 AND g.managed = 1 ORDER BY u.id, g.id";

/// The members of a page of Groups (`ids`: a JSON array), starting from the page's ids (see
/// [`GROUPS_OF_SQL`]).
pub(super) const MEMBERS_OF_SQL: &str = "\
    SELECT g.id, m.member_id FROM json_each(?) j \
    CROSS JOIN resources g ON g.tenant_id = ? AND g.kind = 'Group' AND g.id = j.value \
    CROSS JOIN members m ON m.group_pk = g.pk ORDER BY g.pk, m.member_id";

/// The groups of each of `ids` (live Users of the tenant), one statement.
async fn groups_of(
    tx: &mut ReadTx,
    tenant: &str,
    ids: &str,
) -> StoreResult<HashMap<String, Vec<GroupRef>>> {
    let rows: Vec<(String, String, String)> = db::query_as(GROUPS_OF_SQL)
        .bind(ids)
        .bind(tenant)
        .fetch_all(&mut **tx)
        .await
        .map_err(backend)?;
    let mut out: HashMap<String, Vec<GroupRef>> = HashMap::new();
    for (user, id, display_name) in rows {
        out.entry(user)
            .or_default()
            .push(GroupRef { id, display_name });
    }
    Ok(out)
}

/// The member ids of each of `ids` (live Groups of the tenant), one statement.
async fn members_of(
    tx: &mut ReadTx,
    tenant: &str,
    ids: &str,
) -> StoreResult<HashMap<String, Vec<String>>> {
    let rows: Vec<(String, String)> = db::query_as(MEMBERS_OF_SQL)
        .bind(ids)
        .bind(tenant)
        .fetch_all(&mut **tx)
        .await
        .map_err(backend)?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (group, member) in rows {
        out.entry(group).or_default().push(member);
    }
    Ok(out)
}

/// Where a streamed snapshot stands.
struct SnapshotState {
    tx: ReadTx,
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
             WHERE r.tenant_id = ? AND r.kind = ? AND r.deleted = 0 AND r.pk > ? \
             ORDER BY r.pk LIMIT ?"
        ))
        .bind(&self.tenant)
        .bind(kind.as_str())
        .bind(after)
        .bind(self.limit)
        .fetch_all(&mut *self.tx)
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

impl SqliteStore {
    pub(super) async fn read_resource_impl(
        &self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        with: Relations,
    ) -> StoreResult<Option<ResourceRead>> {
        // A single statement is its own consistent snapshot: only the Group read that also
        // reads members needs a read transaction (its BEGIN and end cost two more round trips
        // to the connection's worker, on the hottest path).
        if kind == ResourceKind::Group && with.members {
            let mut tx = self.reader.begin().await.map_err(backend)?;
            self.read_resource_on(&mut tx, tenant, kind, id, with).await
        } else {
            let mut conn = self.reader.acquire().await.map_err(backend)?;
            self.read_resource_on(&mut conn, tenant, kind, id, with)
                .await
        }
    }

    async fn read_resource_on(
        &self,
        tx: &mut Connection,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        with: Relations,
    ) -> StoreResult<Option<ResourceRead>> {
        if kind == ResourceKind::User && with.groups {
            // One statement: the row, and its groups as a JSON array of [id, displayName].
            let row: Option<(i64, String, i64, String, i64, i64, String)> = db::query_as(&format!(
                "SELECT {RESOURCE_COLS}, \
                     (SELECT json_group_array(json_array(g.id, \
                        COALESCE(json_extract(g.doc, '$.displayName'), '')) ORDER BY g.id) \
                      FROM members m JOIN resources g ON g.pk = m.group_pk \
                      WHERE m.member_pk = r.pk AND g.deleted = 0 AND g.managed = 1) \
                     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND r.id = ? \
                     AND r.deleted = 0 AND r.managed = 1"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
            let Some((pk, id, version, doc, created, modified, groups)) = row else {
                return Ok(None);
            };
            let (_, resource) = stored(kind, (pk, id, version, doc, created, modified))?;
            let pairs: GroupPairs = serde_json::from_str(&groups).map_err(backend)?;
            return Ok(Some(ResourceRead {
                resource,
                groups: Some(group_refs(pairs)),
                members: None,
            }));
        }
        let row: Option<ResourceRow> = db::query_as(&format!(
            "SELECT {RESOURCE_COLS} FROM resources r \
             WHERE r.tenant_id = ? AND r.kind = ? AND r.id = ? AND r.deleted = 0 AND r.managed = 1"
        ))
        .bind(tenant)
        .bind(kind.as_str())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (pk, resource) = stored(kind, row)?;
        let members = if kind == ResourceKind::Group && with.members {
            let ids: Vec<String> = db::query_scalar(
                "SELECT member_id FROM members WHERE group_pk = ? ORDER BY member_id",
            )
            .bind(pk)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
            Some(ids)
        } else {
            None
        };
        Ok(Some(ResourceRead {
            resource,
            groups: None,
            members,
        }))
    }

    pub(super) async fn read_page_impl(
        &self,
        tenant: &str,
        kind: ResourceKind,
        query: &ListQuery,
        with: Relations,
    ) -> StoreResult<PageRead> {
        let mut tx = self.reader.begin().await.map_err(backend)?;
        let page = Self::list_in(&mut tx, tenant, kind, query, false).await?;
        let want_groups = kind == ResourceKind::User && with.groups;
        let want_members = kind == ResourceKind::Group && with.members;
        let ids: Vec<&str> = page.items.iter().map(|r| r.id.as_str()).collect();
        let mut groups = HashMap::new();
        let mut members = HashMap::new();
        if !ids.is_empty() && (want_groups || want_members) {
            let ids = serde_json::to_string(&ids).map_err(backend)?;
            if want_groups {
                groups = groups_of(&mut tx, tenant, &ids).await?;
            }
            if want_members {
                members = members_of(&mut tx, tenant, &ids).await?;
            }
        }
        drop(tx);
        let items = page
            .items
            .into_iter()
            .map(|resource| ResourceRead {
                groups: want_groups.then(|| groups.remove(&resource.id).unwrap_or_default()),
                members: want_members.then(|| members.remove(&resource.id).unwrap_or_default()),
                resource,
            })
            .collect();
        Ok(PageRead {
            total: page.total,
            items,
            next_cursor: page.next_cursor,
            examined: page.examined,
        })
    }

    pub(super) async fn stream_group_impl(
        &self,
        tenant: &str,
        group_id: &str,
        page: u64,
    ) -> StoreResult<Option<GroupStream>> {
        let limit = page_size(page)?;
        let mut tx = self.reader.begin().await.map_err(backend)?;
        let row: Option<ResourceRow> = db::query_as(&format!(
            "SELECT {RESOURCE_COLS} FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' \
             AND r.id = ? AND r.deleted = 0 AND r.managed = 1"
        ))
        .bind(tenant)
        .bind(group_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (pk, group) = stored(ResourceKind::Group, row)?;
        // The state is the open transaction and the last id returned; `None` once the last
        // (short) page was read, so the transaction ends with it rather than at the next poll.
        let members = stream::try_unfold(Some((tx, None::<String>)), move |state| async move {
            let Some((mut tx, after)) = state else {
                return Ok(None);
            };
            let ids = member_page(&mut tx, pk, after.as_deref(), limit).await?;
            if ids.is_empty() {
                return Ok(None);
            }
            let next = (ids.len() as i64 == limit).then(|| {
                let last = ids.last().cloned();
                (tx, last)
            });
            Ok(Some((ids, next)))
        })
        .boxed();
        Ok(Some(GroupStream { group, members }))
    }

    pub(super) async fn snapshot_stream_impl(
        &self,
        tenant: &str,
        page: u64,
    ) -> StoreResult<SnapshotStream> {
        let limit = page_size(page)?;
        // A deferred transaction takes its snapshot at the first read: the seq and every part
        // after it see one committed state, in which the events up to `seq` and the resources
        // agree, because both were written by the same transactions.
        let mut tx = self.reader.begin().await.map_err(backend)?;
        let seq: i64 =
            db::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events WHERE tenant_id = ?")
                .bind(tenant)
                .fetch_one(&mut *tx)
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
}
