//! Membership rules that several write paths share, one copy each: a Group's member change
//! ([`apply_member_ops`], for SCIM groups and app groups alike) and a user leaving its groups
//! before it is deprovisioned or erased ([`remove_user`], for SCIM `DELETE`, the operator's
//! erase and the app API's erase).

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use time::OffsetDateTime;

use super::Rows;
use crate::events::{net_member_events, user_exit_events, UserExit};
use crate::{MemberOp, NewEvent, StoreError, StoreResult};

/// Which users a Group may gain as members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligible {
    /// A SCIM-managed group: its members come from the identity provider, so only live users
    /// that SCIM manages.
    ScimUsers,
    /// An app group: any live user of the tenant, managed or not.
    AnyUser,
}

/// Resolves member ids to the pks of live users of the tenant that `eligible` admits, in
/// input order without duplicates; `Invalid` naming the first id that is not one.
async fn resolve_members<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    ids: &[String],
    eligible: Eligible,
) -> StoreResult<Vec<(i64, String)>> {
    let mut seen = HashSet::new();
    let unique: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| seen.insert(*id))
        .collect();
    if unique.is_empty() {
        return Ok(Vec::new());
    }
    let found: HashMap<String, i64> = rows
        .live_users(tenant, &unique, eligible == Eligible::ScimUsers)
        .await?
        .into_iter()
        .collect();
    unique
        .into_iter()
        .map(|id| match found.get(id) {
            Some(pk) => Ok((*pk, id.to_owned())),
            // The SCIM wording names SCIM's resource type; the app API speaks of users.
            None => Err(StoreError::Invalid(match eligible {
                Eligible::ScimUsers => format!("member {id:?} is not a User of this tenant"),
                Eligible::AnyUser => format!("member {id:?} is not a user of this tenant"),
            })),
        })
        .collect()
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
pub async fn apply_member_ops<R: Rows + ?Sized>(
    rows: &mut R,
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
                let members = resolve_members(rows, tenant, ids, eligible).await?;
                if !members.is_empty() {
                    added.extend(rows.insert_members(tenant, group_pk, &members).await?);
                }
            }
            MemberOp::Remove(ids) => {
                if !ids.is_empty() {
                    removed.extend(rows.delete_members(tenant, group_pk, ids).await?);
                }
            }
            MemberOp::RemoveAll => removed.extend(rows.delete_all_members(tenant, group_pk).await?),
        }
    }
    Ok(net_member_events(group_id, group_doc, &added, &removed))
}

/// A user leaves its groups, then is deprovisioned (the row stays: `deleted`, inactive, its
/// document's `active` false) or erased (the row and its email rows go). Every group it leaves
/// gets a new version and `lastModified`, since its member list changed. Returns the events of
/// [`user_exit_events`]: one `group.members_removed` per group, in the backend's stable group
/// order, then `user.deprovisioned` or `user.erased`. The one copy of this rule, for SCIM
/// `DELETE`, the operator's erase (`TenantAdminStore::erase_user`) and the app API's erase.
///
/// The caller has read the user's row (`pk`, `id`, `doc`) in the same write transaction, and
/// watches effective roles itself where they matter (a deprovisioned user keeps its row).
///
/// Concurrency: reads the user's member rows and their groups (id, document), then writes those
/// groups, deletes the member rows and writes the user row. No member row of the user may be
/// added or removed, and the user row must not change, between those reads and the writes, or
/// an event would be missing or announce a change that did not happen: a backend without
/// SQLite's write lock locks the user row (`FOR UPDATE`) before the reads, which is what every
/// membership insert of that user waits on (see [`apply_member_ops`]).
pub async fn remove_user<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    pk: i64,
    id: &str,
    doc: &Value,
    exit: UserExit,
    now: OffsetDateTime,
) -> StoreResult<Vec<NewEvent>> {
    let groups = rows.groups_of_member(tenant, pk).await?;
    let events = user_exit_events(&groups, id, doc, exit);
    if !groups.is_empty() {
        rows.leave_groups(tenant, pk, now).await?;
    }
    match exit {
        UserExit::Deprovision => {
            let mut doc = doc.clone();
            if let Value::Object(m) = &mut doc {
                m.insert("active".into(), Value::Bool(false));
            }
            rows.deprovision_user(tenant, pk, &doc, now).await?;
        }
        UserExit::Erase | UserExit::EraseUnmanaged => rows.delete_resource(tenant, pk).await?,
    }
    Ok(events)
}
