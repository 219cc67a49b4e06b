//! The PostgreSQL side of the SCIM read path, shaped as SQLite's (`sqlite/reads.rs`): one
//! call, one connection, and a bounded number of statements per request.
//!
//! - A GET by id is one statement, with no transaction: a User with its `groups`, or a Group
//!   with its members, as a JSON array in a column of the resource row.
//! - A list page costs the page itself (`COUNT` when needed, the page) plus one statement per
//!   relation asked for, whatever the page size: the page's ids are bound as one JSON array.
//!   No transaction either (see `read_page_impl` for why).
//! - A large Group and the reconciliation snapshot are streams of keyset pages read in one
//!   REPEATABLE READ transaction that the stream owns (one snapshot, memory bounded by a page);
//!   the stream holds one pooled connection until it ends or is dropped.

use super::db::{self, Conn, Tx};
use std::collections::{HashMap, VecDeque};

use futures::stream::{self, StreamExt};
use scim_proto::schema::ResourceKind;

use super::{backend, stored, to_i64, PostgresStore, ResourceRow, RESOURCE_COLS};
use crate::events::{SnapshotPart, SnapshotStream};
use crate::{
    GroupRef, GroupStream, ListQuery, PageRead, Relations, ResourceRead, StoreError, StoreResult,
    StoredResource,
};

/// `(group id, displayName)` pairs as `json_agg` builds them.
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
    tx: &mut Conn,
    tenant: &str,
    group_pk: i64,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<String>> {
    match after {
        Some(after) => {
            db::query_scalar(
                "SELECT member_id FROM members WHERE tenant_id = ? AND group_pk = ? \
                 AND member_id > ? ORDER BY member_id LIMIT ?",
            )
            .bind(tenant)
            .bind(group_pk)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
        }
        None => {
            db::query_scalar(
                "SELECT member_id FROM members WHERE tenant_id = ? AND group_pk = ? \
                 ORDER BY member_id LIMIT ?",
            )
            .bind(tenant)
            .bind(group_pk)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
        }
    }
    .map_err(backend)
}

/// The groups of a page of Users (`ids`: a JSON array of their ids).
pub(super) const GROUPS_OF_SQL: &str = "\
    SELECT u.id, g.id, COALESCE(g.doc::json ->> 'displayName', '') \
    FROM json_array_elements_text(?::json) AS j(value) \
    JOIN resources u ON u.tenant_id = ? AND u.kind = 'User' AND u.id = j.value \
    JOIN members m ON m.tenant_id = u.tenant_id AND m.member_pk = u.pk \
    JOIN resources g ON g.tenant_id = m.tenant_id AND g.pk = m.group_pk \
    WHERE g.deleted = FALSE AND g.managed = TRUE ORDER BY u.id, g.id";

/// The members of a page of Groups (`ids`: a JSON array of their ids).
pub(super) const MEMBERS_OF_SQL: &str = "\
    SELECT g.id, m.member_id FROM json_array_elements_text(?::json) AS j(value) \
    JOIN resources g ON g.tenant_id = ? AND g.kind = 'Group' AND g.id = j.value \
    JOIN members m ON m.tenant_id = g.tenant_id AND m.group_pk = g.pk \
    ORDER BY g.pk, m.member_id";

/// The groups of each of `ids` (live Users of the tenant), one statement.
async fn groups_of(
    tx: &mut Conn,
    tenant: &str,
    ids: &str,
) -> StoreResult<HashMap<String, Vec<GroupRef>>> {
    let rows: Vec<(String, String, String)> = db::query_as(GROUPS_OF_SQL)
        .bind(ids)
        .bind(tenant)
        .fetch_all(&mut *tx)
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
    tx: &mut Conn,
    tenant: &str,
    ids: &str,
) -> StoreResult<HashMap<String, Vec<String>>> {
    let rows: Vec<(String, String)> = db::query_as(MEMBERS_OF_SQL)
        .bind(ids)
        .bind(tenant)
        .fetch_all(&mut *tx)
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
    tx: Tx,
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
             WHERE r.tenant_id = ? AND r.kind = ? AND r.deleted = FALSE AND r.pk > ? \
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
                let ids = member_page(
                    &mut self.tx,
                    &self.tenant,
                    group_pk,
                    after.as_deref(),
                    self.limit,
                )
                .await?;
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

impl PostgresStore {
    pub(super) async fn read_resource_impl(
        &self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        with: Relations,
    ) -> StoreResult<Option<ResourceRead>> {
        // Every GET is one statement, which is its own consistent snapshot: no transaction
        // (its BEGIN and end would cost round trips on the hottest path).
        let mut conn = self.pool.get().await.map_err(backend)?;
        self.read_resource_on(&mut conn, tenant, kind, id, with)
            .await
    }

    async fn read_resource_on(
        &self,
        tx: &mut Conn,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        with: Relations,
    ) -> StoreResult<Option<ResourceRead>> {
        if kind == ResourceKind::User && with.groups {
            // One statement: the row, and its groups as a JSON array of [id, displayName].
            let row: Option<(i64, String, i64, String, i64, i64, String)> = db::query_as(&format!(
                "SELECT {RESOURCE_COLS}, \
                     (SELECT COALESCE(json_agg(json_build_array(g.id, \
                        COALESCE(g.doc::json ->> 'displayName', '')) ORDER BY g.id), '[]')::text \
                      FROM members m JOIN resources g \
                      ON g.tenant_id = m.tenant_id AND g.pk = m.group_pk \
                      WHERE m.tenant_id = r.tenant_id AND m.member_pk = r.pk \
                      AND g.deleted = FALSE AND g.managed = TRUE) \
                     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND r.id = ? \
                     AND r.deleted = FALSE AND r.managed = TRUE"
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
        if kind == ResourceKind::Group && with.members {
            // One statement: the row, and its member ids as a JSON array (large groups are
            // streamed instead, see `stream_group_impl`).
            let row: Option<(i64, String, i64, String, i64, i64, String)> = db::query_as(&format!(
                "SELECT {RESOURCE_COLS}, \
                     (SELECT COALESCE(json_agg(m.member_id ORDER BY m.member_id), '[]')::text \
                      FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_pk = r.pk) \
                     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND r.id = ? \
                     AND r.deleted = FALSE AND r.managed = TRUE"
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
            let Some((pk, id, version, doc, created, modified, members)) = row else {
                return Ok(None);
            };
            let (_, resource) = stored(kind, (pk, id, version, doc, created, modified))?;
            let members: Vec<String> = serde_json::from_str(&members).map_err(backend)?;
            return Ok(Some(ResourceRead {
                resource,
                groups: None,
                members: Some(members),
            }));
        }
        let row: Option<ResourceRow> = db::query_as(&format!(
            "SELECT {RESOURCE_COLS} FROM resources r \
             WHERE r.tenant_id = ? AND r.kind = ? AND r.id = ? AND r.deleted = FALSE \
             AND r.managed = TRUE"
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
        let (_, resource) = stored(kind, row)?;
        Ok(Some(ResourceRead {
            resource,
            groups: None,
            members: None,
        }))
    }

    pub(super) async fn read_page_impl(
        &self,
        tenant: &str,
        kind: ResourceKind,
        query: &ListQuery,
        with: Relations,
    ) -> StoreResult<PageRead> {
        // No transaction: a page is one statement (two when its total needs a `COUNT`) and its
        // relations one more, each a committed state of its own. A transaction would add a
        // `BEGIN` and an end to every list, two more statements than the page itself; what it
        // would buy is that a concurrent write between the page and its relations (a member
        // added) is seen by neither rather than by the second only — the same answer a client
        // reading a moment later gets, and SCIM promises no more (RFC 7644 §3.4.2.4).
        let mut tx = self.pool.get().await.map_err(backend)?;
        let page = crate::domain::list::list(&mut tx, tenant, kind, query, false).await?;
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
        let mut tx = self.read().await?;
        let row: Option<ResourceRow> = db::query_as(&format!(
            "SELECT {RESOURCE_COLS} FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' \
             AND r.id = ? AND r.deleted = FALSE AND r.managed = TRUE"
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
        // The state is the open transaction, the tenant and the last id returned; `None` once the last
        // (short) page was read, so the transaction ends with it rather than at the next poll.
        let start = Some((tx, tenant.to_owned(), None::<String>));
        let members = stream::try_unfold(start, move |state| async move {
            let Some((mut tx, tenant, after)) = state else {
                return Ok(None);
            };
            let ids = member_page(&mut tx, &tenant, pk, after.as_deref(), limit).await?;
            if ids.is_empty() {
                return Ok(None);
            }
            let next = (ids.len() as i64 == limit).then(|| {
                let last = ids.last().cloned();
                (tx, tenant, last)
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
        // A REPEATABLE READ transaction takes its snapshot at the first read: the seq and every
        // part after it see one committed state, in which the events up to `seq` and the
        // resources agree, because both were written by the same transactions.
        let mut tx = self.read().await?;
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
