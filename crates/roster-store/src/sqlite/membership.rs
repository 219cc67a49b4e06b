//! Membership writes that several write paths share, one copy each: a Group's member change
//! ([`SqliteStore::apply_member_ops`], for SCIM groups and app groups alike) and a user leaving
//! its groups before it is deprovisioned or erased ([`remove_user`], for SCIM `DELETE`, the
//! operator's erase and the app API's erase).
//!
//! The rules themselves (which change is announced, in which order) are backend-neutral and live
//! in [`crate::events`] ([`net_member_events`], [`user_exit_events`]); this file holds only the
//! rows. Everything here runs inside the caller's write transaction, which in SQLite holds the
//! database's write lock from its first statement (`BEGIN IMMEDIATE`): nothing another writer
//! does can come between a read here and the write that depends on it. Each function's doc says
//! what a backend without that lock must hold instead.

use crate::sqlite::db;
use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{backend, SqliteStore, Tx, CHUNK};
use crate::events::{net_member_events, user_exit_events, UserExit};
use crate::{MemberOp, NewEvent, StoreError, StoreResult};

/// Which users a Group may gain as members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Eligible {
    /// A SCIM-managed group: its members come from the identity provider, so only live users
    /// that SCIM manages.
    ScimUsers,
    /// An app group: any live user of the tenant, managed or not.
    AnyUser,
}

impl SqliteStore {
    /// Resolves member ids to the pks of live users of the tenant that `eligible` admits, in
    /// input order without duplicates; `Invalid` naming the first id that is not one.
    async fn resolve_members(
        tx: &mut Tx,
        tenant: &str,
        ids: &[String],
        eligible: Eligible,
    ) -> StoreResult<Vec<(i64, String)>> {
        let managed = match eligible {
            Eligible::ScimUsers => " AND managed = 1",
            Eligible::AnyUser => "",
        };
        let mut seen = HashSet::new();
        let unique: Vec<&String> = ids.iter().filter(|id| seen.insert(id.as_str())).collect();
        let mut found: HashMap<String, i64> = HashMap::with_capacity(unique.len());
        for chunk in unique.chunks(CHUNK) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT id, pk FROM resources WHERE tenant_id = ? AND kind = 'User' \
                 AND deleted = 0{managed} AND id IN ({marks})"
            );
            let mut q = db::query_as::<(String, i64)>(&sql).bind(tenant);
            for id in chunk {
                q = q.bind(id.as_str());
            }
            found.extend(q.fetch_all(&mut **tx).await.map_err(backend)?);
        }
        unique
            .into_iter()
            .map(|id| match found.get(id.as_str()) {
                Some(pk) => Ok((*pk, id.clone())),
                // The SCIM wording names SCIM's resource type; the app API speaks of users.
                None => Err(StoreError::Invalid(match eligible {
                    Eligible::ScimUsers => format!("member {id:?} is not a User of this tenant"),
                    Eligible::AnyUser => format!("member {id:?} is not a user of this tenant"),
                })),
            })
            .collect()
    }

    /// Adds member rows; returns the ids that were not members before (`RETURNING` reports
    /// only the rows `INSERT OR IGNORE` really inserted).
    async fn add_members(
        tx: &mut Tx,
        tenant: &str,
        group_pk: i64,
        ids: &[String],
        eligible: Eligible,
    ) -> StoreResult<Vec<String>> {
        let members = Self::resolve_members(tx, tenant, ids, eligible).await?;
        let mut added = Vec::new();
        // Four parameters a row: 200 rows a statement.
        for chunk in members.chunks(200) {
            let rows = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT OR IGNORE INTO members (group_pk, member_pk, tenant_id, member_id) \
                 VALUES {rows} RETURNING member_id"
            );
            let mut q = db::query_scalar::<String>(&sql);
            for (pk, id) in chunk {
                q = q.bind(group_pk).bind(*pk).bind(tenant).bind(id.as_str());
            }
            added.extend(q.fetch_all(&mut **tx).await.map_err(backend)?);
        }
        Ok(added)
    }

    /// Removes member rows; returns the ids that were members.
    async fn remove_members(
        tx: &mut Tx,
        group_pk: i64,
        ids: &[String],
    ) -> StoreResult<Vec<String>> {
        let mut removed = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "DELETE FROM members WHERE group_pk = ? AND member_id IN ({marks}) \
                 RETURNING member_id"
            );
            let mut q = db::query_scalar::<String>(&sql).bind(group_pk);
            for id in chunk {
                q = q.bind(id.as_str());
            }
            removed.extend(q.fetch_all(&mut **tx).await.map_err(backend)?);
        }
        Ok(removed)
    }

    /// Applies membership operations to the group `group_pk` in order and returns the events of
    /// the net change ([`net_member_events`]). The one membership write of every path: SCIM
    /// create, replace, PATCH and match of a group (`eligible` = [`Eligible::ScimUsers`]), and
    /// the app API's group create, update and import ([`Eligible::AnyUser`]).
    ///
    /// Concurrency: reads the rows of the users `Add` names (live, of the tenant, eligible) and
    /// writes member rows; the events come from the rows each statement really inserted or
    /// deleted. Between the read of a user and the insert of its member row, that user must not
    /// be deprovisioned or erased, or the group would keep a member that is gone: a backend
    /// without SQLite's write lock reads those user rows `FOR SHARE`, which [`remove_user`]'s
    /// lock on the user row waits for. Concurrent changes of the same group need no lock
    /// on the group: the unique key (group, member) decides which insert or delete really
    /// happened, and only that one is announced. The caller bumps the group's version.
    pub(super) async fn apply_member_ops(
        tx: &mut Tx,
        tenant: &str,
        group_pk: i64,
        group_id: &str,
        group_doc: &Value,
        ops: &[MemberOp],
        eligible: Eligible,
    ) -> StoreResult<Vec<NewEvent>> {
        let mut added: Vec<String> = Vec::new();
        let mut removed: Vec<String> = Vec::new();
        for op in ops {
            match op {
                MemberOp::Add(ids) => {
                    added.extend(Self::add_members(tx, tenant, group_pk, ids, eligible).await?);
                }
                MemberOp::Remove(ids) => {
                    removed.extend(Self::remove_members(tx, group_pk, ids).await?);
                }
                MemberOp::RemoveAll => {
                    removed.extend(
                        db::query_scalar::<String>(
                            "DELETE FROM members WHERE group_pk = ? RETURNING member_id",
                        )
                        .bind(group_pk)
                        .fetch_all(&mut **tx)
                        .await
                        .map_err(backend)?,
                    );
                }
            }
        }
        Ok(net_member_events(group_id, group_doc, &added, &removed))
    }
}

/// A user leaves its groups, then is deprovisioned (the row stays: `deleted`, inactive, its
/// document's `active` false) or erased (the row and its email rows go). Every group it leaves
/// gets a new version and `lastModified`, since its member list changed. Returns the events of
/// [`user_exit_events`]: one `group.members_removed` per group, in group pk order, then
/// `user.deprovisioned` or `user.erased`. The one copy of this rule, for SCIM `DELETE`, the
/// operator's erase (`TenantAdminStore::erase_user`) and the app API's erase.
///
/// The caller has read the user's row (`pk`, `id`, `doc`) in the same write transaction, and
/// watches effective roles itself where they matter (a deprovisioned user keeps its row).
///
/// Concurrency: reads the user's member rows and their groups (id, document), then writes those
/// groups, deletes the member rows and writes the user row. No member row of the user may be
/// added or removed, and the user row must not change, between those reads and the writes, or
/// an event would be missing or announce a change that did not happen: a backend without
/// SQLite's write lock locks the user row (`FOR UPDATE`) before the reads, which is what every
/// membership insert of that user waits on (see [`SqliteStore::apply_member_ops`]).
pub(super) async fn remove_user(
    tx: &mut Tx,
    pk: i64,
    id: &str,
    doc: &Value,
    exit: UserExit,
    now_ms: i64,
) -> StoreResult<Vec<NewEvent>> {
    // Every group, managed or not: an app group loses the member too.
    let rows: Vec<(String, String)> = db::query_as(
        "SELECT g.id, g.doc FROM members m JOIN resources g ON g.pk = m.group_pk \
         WHERE m.member_pk = ? ORDER BY g.pk",
    )
    .bind(pk)
    .fetch_all(&mut **tx)
    .await
    .map_err(backend)?;
    let groups = rows
        .into_iter()
        .map(|(gid, gdoc)| Ok((gid, serde_json::from_str(&gdoc).map_err(backend)?)))
        .collect::<StoreResult<Vec<(String, Value)>>>()?;
    let events = user_exit_events(&groups, id, doc, exit);
    // Each group that loses the member changes: its ETag must change too.
    db::query(
        "UPDATE resources SET version = version + 1, last_modified = ? \
         WHERE pk IN (SELECT group_pk FROM members WHERE member_pk = ?)",
    )
    .bind(now_ms)
    .bind(pk)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    db::query("DELETE FROM members WHERE member_pk = ?")
        .bind(pk)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    match exit {
        UserExit::Deprovision => {
            let mut doc = doc.clone();
            if let Value::Object(m) = &mut doc {
                m.insert("active".into(), Value::Bool(false));
            }
            db::query(
                "UPDATE resources SET deleted = 1, active = 0, doc = ?, \
                 version = version + 1, last_modified = ? WHERE pk = ?",
            )
            .bind(serde_json::to_string(&doc).map_err(backend)?)
            .bind(now_ms)
            .bind(pk)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        }
        UserExit::Erase | UserExit::EraseUnmanaged => {
            // Its email rows go with it (ON DELETE CASCADE).
            db::query("DELETE FROM resources WHERE pk = ?")
                .bind(pk)
                .execute(&mut **tx)
                .await
                .map_err(backend)?;
        }
    }
    Ok(events)
}
