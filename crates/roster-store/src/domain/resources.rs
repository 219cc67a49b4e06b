//! The SCIM writes of Users and Groups: create (with restore and matching), replace and patch,
//! a group's member change, and delete. Each runs inside the caller's write transaction and
//! appends its events there, so a write and its announcement commit together.

use scim_proto::schema::ResourceKind;
use serde_json::json;
use time::OffsetDateTime;

use super::claim::{claim, Claim, ClaimInput};
use super::custom_index;
use super::emails;
use super::guard;
use super::members::{apply_member_ops, remove_user, Eligible};
use super::outbox::{append_events, append_scim_events};
use super::roles::{finish, group_watch, watch_update, RoleWatch};
use super::rows::{NamedRow, Rewrite};
use super::{stored_time, strip, Derived, GroupSel, Rows};
use crate::app::{GuardStatus, GuardVerdict};
use crate::events::{resource_body, resource_ref, UserExit};
use crate::{
    CreateOutcome, Deletion, DeprovisionMode, EmailUniqueness, EventType, MemberOp, NewEvent,
    NewResource, ResourceUpdate, StoreError, StoreResult, StoredResource,
};

fn members_of_users(kind: ResourceKind, members: bool) -> StoreResult<()> {
    if kind == ResourceKind::User && members {
        return Err(StoreError::Invalid("only Groups have members".to_owned()));
    }
    Ok(())
}

/// A SCIM create. In order: an unmanaged app user or group it matches is claimed ([`claim`]);
/// a live User with the same userName (folded) is a `Conflict("userName")`; a deprovisioned
/// one is restored in place (same pk and id, so the app identity and its history carry over;
/// the old password does not); otherwise a new resource is inserted, with a Group's members.
/// Events: `*.matched`, `user.restored` or `*.created` (+ `user.welcome` when the tenant asks
/// for it), the members added, the caller's events, and the roles that changed.
///
/// Concurrency: reads the tenant's settings, the User with the new userName and the matching
/// candidates (see [`claim`]), and the users a Group's members name, then writes. Between the
/// reads and the writes no row with the new userName may appear: the unique index on the
/// folded userName refuses a second one (the insert then fails with `Conflict`), and a backend
/// without SQLite's write lock serialises the tenant's creates on its seq counter row so that a
/// restore or a match cannot race an insert.
pub async fn create_resource<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    kind: ResourceKind,
    new: NewResource,
    now: OffsetDateTime,
) -> StoreResult<CreateOutcome> {
    members_of_users(kind, !new.members.is_empty())?;
    let now = stored_time(now);
    let doc = strip(new.doc);
    let d = Derived::of(kind, &doc);
    d.check()?;
    let input = ClaimInput {
        doc: &doc,
        derived: &d,
        password_hash: new.password_hash.as_deref(),
        members: &new.members,
        events: &new.events,
    };
    let (welcome, by_name, mode) = match claim(rows, tenant, kind, &input, now).await? {
        Claim::Done(outcome) => return Ok(outcome),
        Claim::NotClaimed {
            welcome,
            by_name,
            emails,
        } => (welcome, by_name, emails),
    };

    if let Some(user_name) = &d.user_name_lc {
        let existing = match by_name {
            Some(row) => row,
            None => rows.user_by_name(tenant, user_name).await?.0,
        };
        match existing {
            Some(NamedRow { deleted: false, .. }) => return Err(StoreError::Conflict("userName")),
            Some(row) => {
                let mut events = vec![NewEvent::new(
                    EventType::UserRestored,
                    json!({"user": resource_body(&row.id, &doc)}),
                )];
                events.extend(new.events);
                let user = Restore {
                    row,
                    doc,
                    password_hash: new.password_hash,
                    emails: mode,
                };
                return restore_user(rows, tenant, user, &d, events, now).await;
            }
            None => {}
        }
    }

    let watch = if new.members.is_empty() {
        None
    } else {
        let sel = GroupSel::new(&new.id, &d);
        let ops = [MemberOp::Add(new.members.clone())];
        group_watch(rows, tenant, None, None, Some(&sel), &ops).await?
    };
    let pk = rows
        .insert_resource(
            tenant,
            kind,
            &new.id,
            &doc,
            &d,
            new.password_hash.as_deref(),
            now,
        )
        .await?;
    custom_index::maintain(rows, tenant, kind, pk, None, &doc, true).await?;
    if kind == ResourceKind::User {
        emails::claim(rows, tenant, mode, pk, &doc, &d.emails).await?;
    }
    let body = resource_body(&new.id, &doc);
    let mut events = vec![match kind {
        ResourceKind::User => NewEvent::new(EventType::UserCreated, json!({ "user": body })),
        ResourceKind::Group => NewEvent::new(EventType::GroupCreated, json!({ "group": body })),
    }];
    if welcome && kind == ResourceKind::User {
        events.push(NewEvent::new(
            EventType::UserWelcome,
            json!({"user": resource_body(&new.id, &doc)}),
        ));
    }
    if !new.members.is_empty() {
        let ops = [MemberOp::Add(new.members)];
        events.extend(
            apply_member_ops(rows, tenant, pk, &new.id, &doc, &ops, Eligible::ScimUsers).await?,
        );
    }
    events.extend(new.events);
    events.extend(finish(watch, rows).await?);
    append_scim_events(rows, tenant, now, events).await?;
    Ok(CreateOutcome::Created(StoredResource {
        id: new.id,
        kind,
        doc,
        version: 1,
        created: now,
        last_modified: now,
    }))
}

/// A deprovisioned User to restore, with the create's document.
struct Restore {
    row: NamedRow,
    doc: serde_json::Value,
    password_hash: Option<String>,
    /// The tenant's `email_uniqueness`.
    emails: EmailUniqueness,
}

/// Restores the deprovisioned User `row` with the new document (see [`create_resource`]); it
/// counts again for `email_uniqueness`, so an email another user has taken meanwhile refuses
/// the restore.
async fn restore_user<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    user: Restore,
    d: &Derived,
    mut events: Vec<NewEvent>,
    now: OffsetDateTime,
) -> StoreResult<CreateOutcome> {
    let Restore {
        row,
        doc,
        password_hash,
        emails: mode,
    } = user;
    let watch = RoleWatch::start(rows, tenant, vec![row.pk]).await?;
    let how = Rewrite {
        password_hash: password_hash.as_deref(),
        replace_password: true,
        claim: true,
        emails: true,
    };
    let version = rows
        .rewrite_resource(tenant, row.pk, &doc, d, how, now)
        .await?;
    custom_index::maintain(rows, tenant, ResourceKind::User, row.pk, None, &doc, false).await?;
    emails::claim(rows, tenant, mode, row.pk, &doc, &d.emails).await?;
    events.extend(finish(watch, rows).await?);
    append_scim_events(rows, tenant, now, events).await?;
    Ok(CreateOutcome::Restored(StoredResource {
        id: row.id,
        kind: ResourceKind::User,
        doc,
        version,
        created: row.created,
        last_modified: now,
    }))
}

/// A SCIM replace or patch of the live managed resource `id`, if its version is still
/// `expected_version`: the document, its derived columns and (Groups) the member operations;
/// `NotFound` or `Stale` otherwise. Events: the caller's, the members' net change, the roles
/// that changed.
///
/// An update that deactivates an active User carries its guard subject (`update.guard`): the
/// deprovisioning guard admits it first ([`guard::admit`]). Refused, nothing else is written and
/// the answer is `Ok(Err(status))`: the caller commits the guard's own record (the held
/// operation, a trip) and answers [`StoreError::GuardRefused`].
///
/// Concurrency: reads the resource's row (version, active, the attributes role mappings select
/// by) and the users the member operations name, then writes the row, its emails and members.
/// The row must not change between the read and the write (the version check would be void):
/// a backend without SQLite's write lock reads it `FOR UPDATE`.
pub async fn update_resource<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    kind: ResourceKind,
    id: &str,
    expected_version: i64,
    update: ResourceUpdate,
    now: OffsetDateTime,
) -> StoreResult<Result<StoredResource, Box<GuardStatus>>> {
    members_of_users(kind, !update.members.is_empty())?;
    let now = stored_time(now);
    if let Some(subject) = &update.guard {
        if let GuardVerdict::Refused(status) = guard::admit(rows, tenant, subject, now).await? {
            return Ok(Err(status));
        }
    }
    let doc = strip(update.doc);
    let d = Derived::of(kind, &doc);
    d.check()?;
    let Some(current) = rows.live_row(tenant, kind, id, true).await? else {
        return Err(StoreError::NotFound);
    };
    if current.version != expected_version {
        return Err(StoreError::Stale);
    }
    // Most replaces and patches leave the emails as they were (a PATCH of `active`, a PUT of
    // the same user): their rows then stay, which saves two statements and the index pages
    // they would dirty in the batch's commit.
    let emails = current
        .doc
        .as_ref()
        .is_none_or(|old| Derived::of(kind, old).emails != d.emails);
    let watch = watch_update(rows, tenant, kind, id, &current, &d, &update.members).await?;
    let how = Rewrite {
        password_hash: update.password_hash.as_deref(),
        replace_password: false,
        claim: false,
        emails,
    };
    let version = rows
        .rewrite_resource(tenant, current.pk, &doc, &d, how, now)
        .await?;
    let old = current.doc.as_ref();
    custom_index::maintain(rows, tenant, kind, current.pk, old, &doc, false).await?;
    if emails && kind == ResourceKind::User {
        // Only a change of the emails can change what the user claims (a deactivated user
        // counts as an active one does): the setting is read only then.
        let settings = rows.tenant_settings(tenant).await?;
        let mode = settings.map(|s| s.email_uniqueness).unwrap_or_default();
        emails::claim(rows, tenant, mode, current.pk, &doc, &d.emails).await?;
    }
    let mut events = update.events;
    if !update.members.is_empty() {
        events.extend(
            apply_member_ops(
                rows,
                tenant,
                current.pk,
                id,
                &doc,
                &update.members,
                Eligible::ScimUsers,
            )
            .await?,
        );
    }
    events.extend(finish(watch, rows).await?);
    append_scim_events(rows, tenant, now, events).await?;
    Ok(Ok(StoredResource {
        id: id.to_owned(),
        kind,
        doc,
        version,
        created: current.created,
        last_modified: now,
    }))
}

/// A change of the live managed Group `group_id`'s members only (a PATCH that touches nothing
/// else): the group's version goes up without its document being rewritten, and the member
/// rows change. Events: the net change, the roles that changed.
///
/// Concurrency: bumps the group's row first (a backend without SQLite's write lock thereby
/// holds it until commit), then as [`apply_member_ops`].
pub async fn update_members<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    group_id: &str,
    ops: &[MemberOp],
    now: OffsetDateTime,
) -> StoreResult<StoredResource> {
    let now = stored_time(now);
    let Some(group) = rows.bump_live_group(tenant, group_id, now).await? else {
        return Err(StoreError::NotFound);
    };
    let doc = group.doc.unwrap_or_else(|| json!({}));
    let sel = GroupSel::of_doc(group_id, &doc);
    let watch = group_watch(rows, tenant, Some(group.pk), Some(&sel), Some(&sel), ops).await?;
    let mut events = apply_member_ops(
        rows,
        tenant,
        group.pk,
        group_id,
        &doc,
        ops,
        Eligible::ScimUsers,
    )
    .await?;
    events.extend(finish(watch, rows).await?);
    append_scim_events(rows, tenant, now, events).await?;
    Ok(StoredResource {
        id: group_id.to_owned(),
        kind: ResourceKind::Group,
        doc,
        version: group.version,
        created: group.created,
        last_modified: now,
    })
}

/// A SCIM `DELETE`: a User is deprovisioned (it leaves its groups, see [`remove_user`]), or
/// erased when the tenant's `deprovision_on_delete` is `erase`; a Group is erased with its
/// member rows. `Stale` when `deletion.expected_version` is not the current version. A delete
/// that removes an active User's access carries its guard subject (`deletion.guard`): refused,
/// nothing else is written and the answer is `Ok(Err(status))` (the caller commits the guard's
/// record, as for [`update_resource`]). Events: the groups' losses, `user.deprovisioned` or
/// `user.erased`, or `group.deleted`; the roles that changed.
///
/// Concurrency: reads the tenant's settings and the resource's row and document, then as
/// [`remove_user`] (Users) or deletes the row (Groups); the row must not change in between
/// (`FOR UPDATE` where there is no database-wide write lock).
pub async fn delete_resource<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    kind: ResourceKind,
    id: &str,
    deletion: Deletion,
    now: OffsetDateTime,
) -> StoreResult<Result<(), Box<GuardStatus>>> {
    let now = stored_time(now);
    let Some(row) = rows.live_row(tenant, kind, id, true).await? else {
        return Err(StoreError::NotFound);
    };
    if deletion.expected_version.is_some_and(|v| v != row.version) {
        return Err(StoreError::Stale);
    }
    let settings = match kind {
        ResourceKind::User => rows.tenant_settings(tenant).await?,
        ResourceKind::Group => None,
    };
    let mode = settings
        .as_ref()
        .map(|s| s.email_uniqueness)
        .unwrap_or_default();
    if let (Some(subject), Some(settings)) = (&deletion.guard, &settings) {
        let g = &settings.deprovision_guard;
        if let GuardVerdict::Refused(status) =
            guard::admit_under(rows, tenant, g, subject, now).await?
        {
            return Ok(Err(status));
        }
    }
    let doc = row.doc.unwrap_or_else(|| json!({}));
    let exit = match kind {
        ResourceKind::Group => None,
        ResourceKind::User => Some(
            if settings.is_some_and(|s| s.deprovision_on_delete == DeprovisionMode::Erase) {
                UserExit::Erase
            } else {
                UserExit::Deprovision
            },
        ),
    };
    // Deprovisioning empties a user's effective roles (an erased user is gone: no event);
    // deleting a group takes its mapped roles from its members.
    let watch = match exit {
        Some(UserExit::Deprovision) => RoleWatch::start(rows, tenant, vec![row.pk]).await?,
        Some(_) => None,
        None => {
            let sel = GroupSel::of_doc(id, &doc);
            let ops = [MemberOp::RemoveAll];
            group_watch(rows, tenant, Some(row.pk), Some(&sel), None, &ops).await?
        }
    };
    let mut events = match exit {
        Some(exit) => {
            let events = remove_user(rows, tenant, row.pk, id, &doc, exit, now).await?;
            if exit == UserExit::Deprovision {
                // An erased user's claims went with its row.
                emails::release(rows, tenant, mode, row.pk).await?;
            }
            events
        }
        None => {
            rows.delete_resource(tenant, row.pk).await?;
            vec![NewEvent::new(
                EventType::GroupDeleted,
                json!({"group": resource_ref(id, &doc)}),
            )]
        }
    };
    events.extend(finish(watch, rows).await?);
    append_scim_events(rows, tenant, now, events).await?;
    Ok(Ok(()))
}

/// An operator's erase of a User (managed or not, not deprovisioned): it leaves its groups and
/// its row goes (see [`remove_user`]). Events: the groups' losses, `user.erased`.
///
/// Concurrency: reads the user's row and document, then as [`remove_user`].
pub async fn erase_user<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    id: &str,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let now = stored_time(now);
    let Some((pk, doc)) = rows.user_row(tenant, id).await? else {
        return Err(StoreError::NotFound);
    };
    let events = remove_user(rows, tenant, pk, id, &doc, UserExit::Erase, now).await?;
    append_events(rows, tenant, now, events).await?;
    Ok(())
}
