//! Effective roles, and the `user.roles_changed` events of a write.
//!
//! A user's effective roles are the roles the app gave it directly plus the roles of every
//! role mapping that selects a group it is a member of, and none at all while it is inactive or
//! deprovisioned. A write that may change them reads them for the users it touches before it
//! changes anything ([`RoleWatch::start`]) and again before it commits ([`RoleWatch::finish`]);
//! both reads are in the write's transaction, so nothing between them is someone else's.

use std::collections::{BTreeSet, HashMap};

use scim_proto::schema::ResourceKind;

use super::rows::LiveRow;
use super::{Derived, GroupSel, Rows};
use crate::app::{roles_changed_events, RolesChange};
use crate::{MemberOp, NewEvent, StoreResult};

/// One user's effective roles at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleState {
    /// The user's id.
    pub id: String,
    /// Its userName.
    pub user_name: String,
    /// Active and not deprovisioned: only then do roles apply.
    pub live: bool,
    /// The effective roles (empty unless `live`).
    pub roles: BTreeSet<String>,
}

/// Effective roles of the users with these pks (others are absent from the map).
pub async fn effective_roles<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    pks: &[i64],
) -> StoreResult<HashMap<i64, RoleState>> {
    let mut out: HashMap<i64, RoleState> = HashMap::with_capacity(pks.len());
    if pks.is_empty() {
        return Ok(out);
    }
    for r in rows.role_rows(tenant, pks).await? {
        let live = !r.deleted && r.active != Some(false);
        let roles = if live {
            r.roles.into_iter().collect()
        } else {
            BTreeSet::new()
        };
        out.insert(
            r.pk,
            RoleState {
                id: r.id,
                user_name: r.user_name,
                live,
                roles,
            },
        );
    }
    for (pk, roles) in rows.mapped_roles_of_members(tenant, pks).await? {
        if let Some(state) = out.get_mut(&pk).filter(|s| s.live) {
            state.roles.extend(roles);
        }
    }
    Ok(out)
}

/// Effective roles of some users before a write, to compare with after it.
#[derive(Debug)]
pub struct RoleWatch {
    tenant: String,
    pks: Vec<i64>,
    before: HashMap<i64, RoleState>,
}

impl RoleWatch {
    /// Reads the roles of `pks` now; `None` when there is nobody to watch.
    pub async fn start<R: Rows + ?Sized>(
        rows: &mut R,
        tenant: &str,
        mut pks: Vec<i64>,
    ) -> StoreResult<Option<Self>> {
        pks.sort_unstable();
        pks.dedup();
        if pks.is_empty() {
            return Ok(None);
        }
        let before = effective_roles(rows, tenant, &pks).await?;
        Ok(Some(Self {
            tenant: tenant.to_owned(),
            pks,
            before,
        }))
    }

    /// Reads the roles again and returns `user.roles_changed` events for the users whose
    /// effective roles differ (users that no longer exist are left out: they were erased).
    pub async fn finish<R: Rows + ?Sized>(self, rows: &mut R) -> StoreResult<Vec<NewEvent>> {
        let after = effective_roles(rows, &self.tenant, &self.pks).await?;
        let mut changes = Vec::new();
        for pk in &self.pks {
            let (Some(b), Some(a)) = (self.before.get(pk), after.get(pk)) else {
                continue;
            };
            if a.roles != b.roles {
                changes.push(RolesChange {
                    id: a.id.clone(),
                    user_name: a.user_name.clone(),
                    before: b.roles.clone(),
                    after: a.roles.clone(),
                });
            }
        }
        Ok(roles_changed_events(&changes))
    }
}

/// Finishes an optional watch.
pub async fn finish<R: Rows + ?Sized>(
    watch: Option<RoleWatch>,
    rows: &mut R,
) -> StoreResult<Vec<NewEvent>> {
    match watch {
        Some(w) => w.finish(rows).await,
        None => Ok(Vec::new()),
    }
}

/// The roles mapped to a group with these attributes.
async fn mapped_roles<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    sel: &GroupSel,
) -> StoreResult<BTreeSet<String>> {
    Ok(rows
        .mapped_roles_of_group(tenant, sel)
        .await?
        .into_iter()
        .collect())
}

/// Starts a watch for a change to a group: its selecting attributes go from `before` to
/// `after` (`None`: the group does not exist on that side) and `ops` change its members.
/// Nobody is watched when no mapping selects the group on either side, which is the common
/// case and costs one indexed query; every member is watched only when the group's mapped
/// roles change (or all members are removed), otherwise only the members the ops name.
pub async fn group_watch<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    group_pk: Option<i64>,
    before: Option<&GroupSel>,
    after: Option<&GroupSel>,
    ops: &[MemberOp],
) -> StoreResult<Option<RoleWatch>> {
    let mb = match before {
        Some(s) => mapped_roles(rows, tenant, s).await?,
        None => BTreeSet::new(),
    };
    let ma = match (after, before) {
        (Some(a), Some(b)) if a == b => mb.clone(),
        (Some(a), _) => mapped_roles(rows, tenant, a).await?,
        (None, _) => BTreeSet::new(),
    };
    if mb.is_empty() && ma.is_empty() {
        return Ok(None);
    }
    let mut pks = Vec::new();
    let everyone = mb != ma || ops.iter().any(|o| matches!(o, MemberOp::RemoveAll));
    if let (true, Some(g)) = (everyone, group_pk) {
        pks.extend(rows.member_pks(tenant, g).await?);
    }
    let ids: Vec<&str> = ops
        .iter()
        .flat_map(|o| match o {
            MemberOp::Add(ids) | MemberOp::Remove(ids) => ids.iter().map(String::as_str).collect(),
            MemberOp::RemoveAll => Vec::new(),
        })
        .collect();
    if !ids.is_empty() {
        pks.extend(rows.user_pks(tenant, &ids).await?);
    }
    RoleWatch::start(rows, tenant, pks).await
}

/// Starts the watch for a SCIM update of the live managed resource `current` (read by the
/// update before it writes) to columns `d`: a User whose active state flips, or a Group (see
/// [`group_watch`]).
pub async fn watch_update<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    kind: ResourceKind,
    id: &str,
    current: &LiveRow,
    d: &Derived,
    ops: &[MemberOp],
) -> StoreResult<Option<RoleWatch>> {
    match kind {
        ResourceKind::User => {
            if (current.active != Some(false)) == d.is_active() {
                return Ok(None);
            }
            RoleWatch::start(rows, tenant, vec![current.pk]).await
        }
        ResourceKind::Group => {
            let before = GroupSel {
                id: id.to_owned(),
                external_id: current.external_id.clone(),
                display_name_lc: current.display_name_lc.clone(),
            };
            let after = GroupSel::new(id, d);
            group_watch(
                rows,
                tenant,
                Some(current.pk),
                Some(&before),
                Some(&after),
                ops,
            )
            .await
        }
    }
}
