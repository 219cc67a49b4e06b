//! The host app's writes: importing existing app users, editing app users and app groups, and
//! role mappings. Each runs inside the caller's write transaction and appends its events there;
//! every one that can change a user's effective roles watches them ([`RoleWatch`]).

use std::collections::HashMap;

use scim_proto::filter::fold_case;
use scim_proto::schema::{ResourceKind, GROUP_SCHEMA};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::custom_index;
use super::members::{apply_member_ops, remove_user, Eligible};
use super::outbox::append_events;
use super::roles::{finish, group_watch, RoleWatch};
use super::rows::AppChange;
use super::{emails, stored_time, Derived, GroupSel, Rows};
use crate::app::{
    AppGroupUpdate, AppUserUpdate, ImportResult, ImportUser, MatchBy, NewAppGroup, RoleMapping,
};
use crate::events::{resource_body, resource_ref, UserExit, MEMBERS_PER_EVENT};
use crate::{EventType, MemberOp, NewEvent, StoreError, StoreResult};

/// The value a role mapping selects groups by, as stored: a displayName folded, an id or
/// externalId exactly.
#[must_use]
pub fn match_value(by: MatchBy, value: &str) -> String {
    match by {
        MatchBy::DisplayName => fold_case(value),
        MatchBy::Id | MatchBy::ExternalId => value.to_owned(),
    }
}

async fn tenant_exists<R: Rows + ?Sized>(rows: &mut R, tenant: &str) -> StoreResult<()> {
    match rows.tenant_settings(tenant).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound),
    }
}

/// An app group an import assigns users to: pk, id, document, the ids to add.
type Assignment = (i64, String, Value, Vec<String>);

/// Imports existing app users as unmanaged records (SCIM does not see them until a create
/// matches one), each with its roles, metadata and app groups (created, unmanaged, when no
/// group has that displayName). A record is skipped, with the reason, when its userName or id
/// is taken, when the tenant's `email_uniqueness` counts an email another user (or an earlier
/// record) has, or when it names a SCIM-managed group. Events: `group.created` of the groups
/// made, then `user.imported` (in parts), then the groups' members added.
///
/// Concurrency: reads, per record, the User with its userName, the User with its id and the
/// groups it names, then inserts; none of those may appear in between (the unique indexes on
/// userName and id refuse a second one, which fails the whole import).
pub async fn import_users<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    users: Vec<ImportUser>,
    now: OffsetDateTime,
) -> StoreResult<Vec<ImportResult>> {
    let now = stored_time(now);
    let Some(settings) = rows.tenant_settings(tenant).await? else {
        return Err(StoreError::NotFound);
    };
    let mode = settings.email_uniqueness;
    let mut results = Vec::with_capacity(users.len());
    let mut imported: Vec<Value> = Vec::new();
    let mut created_groups: Vec<NewEvent> = Vec::new();
    let mut assignments: Vec<Assignment> = Vec::new();
    let mut group_index: HashMap<String, usize> = HashMap::new();
    for u in users {
        let d = Derived::of(ResourceKind::User, &u.doc);
        let Some(user_name) = d.user_name_lc.clone() else {
            results.push(ImportResult::Skipped("userName is required".to_owned()));
            continue;
        };
        if let Err(e) = d.check() {
            results.push(ImportResult::Skipped(e.to_string()));
            continue;
        }
        if let (Some(owner), _) = rows.user_by_name(tenant, &user_name).await? {
            let who = if owner.managed {
                "a user managed by SCIM"
            } else {
                "an app user"
            };
            let name = u.doc.get("userName").and_then(Value::as_str).unwrap_or("");
            results.push(ImportResult::Skipped(format!(
                "userName \"{name}\" already belongs to {who}"
            )));
            continue;
        }
        if rows
            .app_row(tenant, ResourceKind::User, &u.id)
            .await?
            .is_some()
        {
            results.push(ImportResult::Skipped(format!(
                "id \"{}\" already belongs to another user",
                u.id
            )));
            continue;
        }
        if let Some(email) = emails::taken(rows, tenant, mode, &u.doc, &d.emails).await? {
            results.push(ImportResult::Skipped(format!(
                "email \"{email}\" already belongs to another user, and this tenant requires \
                 unique emails (email_uniqueness = {})",
                mode.as_str()
            )));
            continue;
        }
        // The groups, before anything is written for this record: a SCIM-managed group's
        // members come from the identity provider only.
        let mut targets: Vec<Result<usize, String>> = Vec::new();
        let mut refused = None;
        for name in &u.groups {
            let folded = fold_case(name);
            if let Some(i) = group_index.get(&folded) {
                targets.push(Ok(*i));
                continue;
            }
            match rows.group_by_name(tenant, &folded).await? {
                Some(g) if g.managed => {
                    refused = Some(format!(
                        "group \"{name}\" is managed by SCIM: its members come from the \
                         identity provider"
                    ));
                    break;
                }
                Some(g) => {
                    assignments.push((g.pk, g.id, g.doc, Vec::new()));
                    group_index.insert(folded, assignments.len() - 1);
                    targets.push(Ok(assignments.len() - 1));
                }
                None => targets.push(Err(name.clone())),
            }
        }
        if let Some(msg) = refused {
            results.push(ImportResult::Skipped(msg));
            continue;
        }
        let pk = rows
            .insert_app_resource(
                tenant,
                ResourceKind::User,
                &u.id,
                &u.doc,
                &d,
                &u.roles,
                &u.metadata,
                now,
            )
            .await?;
        custom_index::maintain(rows, tenant, ResourceKind::User, pk, None, &u.doc, true).await?;
        emails::claim(rows, tenant, mode, pk, &u.doc, &d.emails).await?;
        for t in targets {
            let i = match t {
                Ok(i) => i,
                Err(name) => {
                    let folded = fold_case(&name);
                    if let Some(i) = group_index.get(&folded) {
                        *i
                    } else {
                        let id = uuid::Uuid::new_v4().to_string();
                        let doc = json!({"schemas": [GROUP_SCHEMA], "displayName": name});
                        let gd = Derived::of(ResourceKind::Group, &doc);
                        gd.check()?;
                        let pk = rows
                            .insert_app_resource(
                                tenant,
                                ResourceKind::Group,
                                &id,
                                &doc,
                                &gd,
                                &[],
                                &json!({}),
                                now,
                            )
                            .await?;
                        created_groups.push(NewEvent::new(
                            EventType::GroupCreated,
                            json!({"group": resource_body(&id, &doc), "managed": false}),
                        ));
                        assignments.push((pk, id, doc, Vec::new()));
                        group_index.insert(folded, assignments.len() - 1);
                        assignments.len() - 1
                    }
                }
            };
            if let Some(a) = assignments.get_mut(i) {
                a.3.push(u.id.clone());
            }
        }
        imported.push(json!({
            "id": u.id,
            "userName": u.doc.get("userName").cloned().unwrap_or(Value::Null),
        }));
        results.push(ImportResult::Imported);
    }
    let mut events = created_groups;
    let parts = imported.len().div_ceil(MEMBERS_PER_EVENT);
    for (i, chunk) in imported.chunks(MEMBERS_PER_EVENT).enumerate() {
        events.push(NewEvent::new(
            EventType::UserImported,
            json!({"users": chunk, "part": i + 1, "parts": parts}),
        ));
    }
    for (pk, id, doc, members) in &assignments {
        if members.is_empty() {
            continue;
        }
        let ops = [MemberOp::Add(members.clone())];
        events.extend(apply_member_ops(rows, tenant, *pk, id, doc, &ops, Eligible::AnyUser).await?);
    }
    append_events(rows, tenant, now, events).await?;
    Ok(results)
}

/// The app edits a user at `update.expected_version`: its document (only while SCIM does not
/// manage it), its directly assigned roles, its metadata. Events: the caller's, the roles that
/// changed.
///
/// Concurrency: reads the user's row (version, managed), then writes it; the row must not
/// change in between (`FOR UPDATE` where there is no database-wide write lock).
pub async fn update_app_user<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    id: &str,
    update: AppUserUpdate,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let now = stored_time(now);
    let Some(row) = rows.app_row(tenant, ResourceKind::User, id).await? else {
        return Err(StoreError::NotFound);
    };
    if row.version != update.expected_version {
        return Err(StoreError::Stale);
    }
    if row.managed && update.doc.is_some() {
        return Err(StoreError::Invalid(
            "the identity provider owns this user's SCIM attributes".to_owned(),
        ));
    }
    let watch = if update.doc.is_some() || update.roles.is_some() {
        RoleWatch::start(rows, tenant, vec![row.pk]).await?
    } else {
        None
    };
    let derived = update
        .doc
        .as_ref()
        .map(|doc| Derived::of(ResourceKind::User, doc));
    if let Some(d) = &derived {
        d.check()?;
    }
    let change = AppChange {
        doc: update.doc.as_ref().zip(derived.as_ref()),
        roles: update.roles.as_deref(),
        metadata: update.metadata.as_ref(),
    };
    if !change.is_empty() {
        rows.change_app_resource(tenant, row.pk, &change, now)
            .await?;
    }
    if let Some(doc) = &update.doc {
        let old = Some(&row.doc);
        custom_index::maintain(rows, tenant, ResourceKind::User, row.pk, old, doc, false).await?;
    }
    if let (Some(doc), Some(d)) = (&update.doc, &derived) {
        let old = Derived::of(ResourceKind::User, &row.doc);
        if old.emails != d.emails {
            let settings = rows.tenant_settings(tenant).await?;
            let mode = settings.map(|s| s.email_uniqueness).unwrap_or_default();
            emails::claim(rows, tenant, mode, row.pk, doc, &d.emails).await?;
        }
    }
    let mut events = update.events;
    events.extend(finish(watch, rows).await?);
    append_events(rows, tenant, now, events).await?;
    Ok(())
}

/// The app erases a user that SCIM does not manage (see [`remove_user`]). Events: the groups'
/// losses, `user.erased` with `"managed": false`.
///
/// Concurrency: as [`remove_user`].
pub async fn delete_app_user<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    id: &str,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let now = stored_time(now);
    let Some(row) = rows.app_row(tenant, ResourceKind::User, id).await? else {
        return Err(StoreError::NotFound);
    };
    if row.managed {
        return Err(StoreError::Invalid(
            "the identity provider owns this user's lifecycle".to_owned(),
        ));
    }
    let events = remove_user(
        rows,
        tenant,
        row.pk,
        id,
        &row.doc,
        UserExit::EraseUnmanaged,
        now,
    )
    .await?;
    append_events(rows, tenant, now, events).await?;
    Ok(())
}

/// The app creates a group SCIM does not manage, with members (any live user of the tenant).
/// Events: `group.created` (`"managed": false`), the members added, the roles that changed.
///
/// Concurrency: as [`apply_member_ops`]; the unique id refuses a second group with its id.
pub async fn create_app_group<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    new: NewAppGroup,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let now = stored_time(now);
    tenant_exists(rows, tenant).await?;
    let ops = [MemberOp::Add(new.members.clone())];
    let d = Derived::of(ResourceKind::Group, &new.doc);
    d.check()?;
    let sel = GroupSel::new(&new.id, &d);
    let watch = group_watch(rows, tenant, None, None, Some(&sel), &ops).await?;
    let pk = rows
        .insert_app_resource(
            tenant,
            ResourceKind::Group,
            &new.id,
            &new.doc,
            &d,
            &[],
            &new.metadata,
            now,
        )
        .await?;
    custom_index::maintain(rows, tenant, ResourceKind::Group, pk, None, &new.doc, true).await?;
    let mut events = vec![NewEvent::new(
        EventType::GroupCreated,
        json!({"group": resource_body(&new.id, &new.doc), "managed": false}),
    )];
    events.extend(
        apply_member_ops(rows, tenant, pk, &new.id, &new.doc, &ops, Eligible::AnyUser).await?,
    );
    events.extend(finish(watch, rows).await?);
    append_events(rows, tenant, now, events).await?;
    Ok(())
}

/// The app edits a group at `update.expected_version`: its document and members (only while
/// SCIM does not manage it) and its metadata. Events: the caller's, the members' net change,
/// the roles that changed.
///
/// Concurrency: reads the group's row, then writes it; the row must not change in between
/// (`FOR UPDATE` where there is no database-wide write lock); members as
/// [`apply_member_ops`].
pub async fn update_app_group<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    id: &str,
    update: AppGroupUpdate,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let now = stored_time(now);
    let Some(row) = rows.app_row(tenant, ResourceKind::Group, id).await? else {
        return Err(StoreError::NotFound);
    };
    if row.version != update.expected_version {
        return Err(StoreError::Stale);
    }
    if row.managed && (update.doc.is_some() || !update.members.is_empty()) {
        return Err(StoreError::Invalid(
            "the identity provider owns this group's displayName and members".to_owned(),
        ));
    }
    let doc = update.doc.clone().unwrap_or_else(|| row.doc.clone());
    let before = GroupSel::of_doc(id, &row.doc);
    let after = GroupSel::of_doc(id, &doc);
    let watch = group_watch(
        rows,
        tenant,
        Some(row.pk),
        Some(&before),
        Some(&after),
        &update.members,
    )
    .await?;
    let derived = update
        .doc
        .as_ref()
        .map(|doc| Derived::of(ResourceKind::Group, doc));
    if let Some(d) = &derived {
        d.check()?;
    }
    let change = AppChange {
        doc: update.doc.as_ref().zip(derived.as_ref()),
        roles: None,
        metadata: update.metadata.as_ref(),
    };
    let mut events = update.events;
    events.extend(
        apply_member_ops(
            rows,
            tenant,
            row.pk,
            id,
            &doc,
            &update.members,
            Eligible::AnyUser,
        )
        .await?,
    );
    if !change.is_empty() || !update.members.is_empty() {
        rows.change_app_resource(tenant, row.pk, &change, now)
            .await?;
    }
    if let Some(new_doc) = &update.doc {
        let old = Some(&row.doc);
        custom_index::maintain(
            rows,
            tenant,
            ResourceKind::Group,
            row.pk,
            old,
            new_doc,
            false,
        )
        .await?;
    }
    events.extend(finish(watch, rows).await?);
    append_events(rows, tenant, now, events).await?;
    Ok(())
}

/// The app deletes a group SCIM does not manage; its member rows go with it. Events:
/// `group.deleted` (`"managed": false`), the roles that changed.
///
/// Concurrency: reads the group's row and its members, then deletes it.
pub async fn delete_app_group<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    id: &str,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let now = stored_time(now);
    let Some(row) = rows.app_row(tenant, ResourceKind::Group, id).await? else {
        return Err(StoreError::NotFound);
    };
    if row.managed {
        return Err(StoreError::Invalid(
            "the identity provider owns this group; delete it there".to_owned(),
        ));
    }
    let sel = GroupSel::of_doc(id, &row.doc);
    let ops = [MemberOp::RemoveAll];
    let watch = group_watch(rows, tenant, Some(row.pk), Some(&sel), None, &ops).await?;
    rows.delete_resource(tenant, row.pk).await?;
    let mut events = vec![NewEvent::new(
        EventType::GroupDeleted,
        json!({"group": resource_ref(id, &row.doc), "managed": false}),
    )];
    events.extend(finish(watch, rows).await?);
    append_events(rows, tenant, now, events).await?;
    Ok(())
}

/// Stores a new role mapping. Events: the roles that changed for the members of the groups it
/// selects.
///
/// Concurrency: reads the members of the selected groups, then inserts the mapping; the
/// selected groups' members must not change in between.
pub async fn create_role_mapping<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    mapping: &RoleMapping,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let now = stored_time(now);
    tenant_exists(rows, tenant).await?;
    let value = match_value(mapping.by, &mapping.value);
    let pks = rows.selected_member_pks(tenant, mapping.by, &value).await?;
    let watch = RoleWatch::start(rows, tenant, pks).await?;
    rows.insert_mapping(tenant, mapping, &value).await?;
    let events = finish(watch, rows).await?;
    append_events(rows, tenant, now, events).await?;
    Ok(())
}

/// Replaces a role mapping (`NotFound` when it does not exist). Events: the roles that changed
/// for the members of the groups it selected before and selects after.
///
/// Concurrency: as [`create_role_mapping`], and the mapping's row must not change between its
/// read and its write.
pub async fn update_role_mapping<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    mapping: &RoleMapping,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let now = stored_time(now);
    let Some((old_by, old_value)) = rows.mapping_selection(tenant, &mapping.id).await? else {
        return Err(StoreError::NotFound);
    };
    let value = match_value(mapping.by, &mapping.value);
    let mut pks = rows
        .selected_member_pks(tenant, old_by, &match_value(old_by, &old_value))
        .await?;
    pks.extend(rows.selected_member_pks(tenant, mapping.by, &value).await?);
    let watch = RoleWatch::start(rows, tenant, pks).await?;
    rows.update_mapping(tenant, mapping, &value).await?;
    let events = finish(watch, rows).await?;
    append_events(rows, tenant, now, events).await?;
    Ok(())
}

/// Deletes a role mapping (`NotFound` when it does not exist). Events: the roles that changed.
///
/// Concurrency: as [`update_role_mapping`].
pub async fn delete_role_mapping<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    id: &str,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let now = stored_time(now);
    let Some((by, value)) = rows.mapping_selection(tenant, id).await? else {
        return Err(StoreError::NotFound);
    };
    let pks = rows
        .selected_member_pks(tenant, by, &match_value(by, &value))
        .await?;
    let watch = RoleWatch::start(rows, tenant, pks).await?;
    rows.delete_mapping(tenant, id).await?;
    let events = finish(watch, rows).await?;
    append_events(rows, tenant, now, events).await?;
    Ok(())
}
