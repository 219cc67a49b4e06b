//! Matching existing app users and groups on a SCIM create ("first sync").

use scim_proto::schema::ResourceKind;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::custom_index;
use super::members::{apply_member_ops, Eligible};
use super::outbox::append_scim_events;
use super::roles::{finish, group_watch, RoleWatch};
use super::rows::{Candidate, NamedRow, Rewrite};
use super::{emails, primary_email, Derived, GroupSel, Rows};
use crate::events::{resource_body, resource_ref};
use crate::{
    CreateOutcome, EmailUniqueness, EventType, ExistingUserMode, MemberOp, NewEvent, StoreError,
    StoreResult, StoredResource,
};

/// The parts of a SCIM create that [`claim`] needs, already derived by the create.
#[derive(Debug)]
pub struct ClaimInput<'a> {
    /// The stored document.
    pub doc: &'a Value,
    /// Its indexed columns.
    pub derived: &'a Derived,
    /// A password hash, when one was given.
    pub password_hash: Option<&'a str>,
    /// A Group's members.
    pub members: &'a [String],
    /// The caller's events.
    pub events: &'a [NewEvent],
}

/// What [`claim`] did.
#[derive(Debug)]
pub enum Claim {
    /// An unmanaged record was matched and is now managed; the events are appended.
    Done(CreateOutcome),
    /// Nothing matched: the create goes on; `welcome` says whether to emit `user.welcome`.
    NotClaimed {
        /// The tenant's `welcome_email` setting.
        welcome: bool,
        /// The User with the new userName, when [`claim`] already looked it up (`Some(None)`:
        /// there is none), so that the create does not read the same row again.
        by_name: Option<Option<NamedRow>>,
        /// The tenant's `email_uniqueness` setting.
        emails: EmailUniqueness,
    },
}

/// Looks for an unmanaged record that a SCIM create of `new.doc` matches, and applies the
/// tenant's `on_existing_user` setting: `match` turns it into the created resource in place
/// (same pk and id; the app's roles, metadata and app-group memberships stay), `reject` answers
/// `Conflict("existing userName")` or `Conflict("existing email")`.
///
/// A user matches on, in this order: its userName; the new primary email equal to its primary
/// email; the new userName equal to its primary email; the new primary email equal to its
/// userName. A managed user with the new userName (live or deprovisioned) always wins: the
/// create then conflicts or restores. A group matches an unmanaged group with the same
/// displayName (the oldest), whatever the setting, and SCIM's member list replaces the group's
/// previous members.
///
/// Concurrency: reads the tenant's settings, the User with the new userName and the unmanaged
/// candidates, then rewrites the one matched. Between those reads and the write no row with
/// that userName or primary email may appear or change: a backend without SQLite's write lock
/// serialises the tenant's creates (the tenant's seq counter row, locked first) and relies on
/// the unique index on the folded userName for the rest.
pub async fn claim<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    kind: ResourceKind,
    new: &ClaimInput<'_>,
    now: OffsetDateTime,
) -> StoreResult<Claim> {
    let Some(settings) = rows.tenant_settings(tenant).await? else {
        return Ok(Claim::NotClaimed {
            welcome: false,
            by_name: None,
            emails: EmailUniqueness::Off,
        });
    };
    let welcome = settings.welcome_email;
    let mode = settings.email_uniqueness;
    let not_claimed = |by_name| Claim::NotClaimed {
        welcome,
        by_name,
        emails: mode,
    };
    match kind {
        ResourceKind::User => {
            let Some(user_name) = new.derived.user_name_lc.as_deref() else {
                return Ok(not_claimed(None));
            };
            let (by_name, any_unmanaged) = rows.user_by_name(tenant, user_name).await?;
            let taken = by_name.as_ref().map(|r| r.managed);
            let email = primary_email(new.doc);
            let found = match taken {
                Some(true) => None,
                None if !any_unmanaged => None,
                Some(false) => rows
                    .unmanaged_user_by_name(tenant, user_name)
                    .await?
                    .map(|c| (c, "userName")),
                None => {
                    let mut found = None;
                    if let Some(e) = &email {
                        found = rows
                            .unmanaged_user_by_primary_email(tenant, e)
                            .await?
                            .map(|c| (c, "emails"));
                    }
                    if found.is_none() {
                        found = rows
                            .unmanaged_user_by_primary_email(tenant, user_name)
                            .await?
                            .map(|c| (c, "userName"));
                    }
                    if let (None, Some(e)) = (&found, &email) {
                        found = rows
                            .unmanaged_user_by_name(tenant, e)
                            .await?
                            .map(|c| (c, "emails"));
                    }
                    found
                }
            };
            let Some((candidate, by)) = found else {
                return Ok(not_claimed(Some(by_name)));
            };
            if settings.on_existing_user == ExistingUserMode::Reject {
                return Err(StoreError::Conflict(if by == "userName" {
                    "existing userName"
                } else {
                    "existing email"
                }));
            }
            let matched_by = if by == "userName" && taken.is_some() {
                "userName"
            } else {
                "email"
            };
            claim_user(rows, tenant, new, candidate, (matched_by, mode), now).await
        }
        ResourceKind::Group => {
            let Some(display_name) = new.derived.display_name_lc.as_deref() else {
                return Ok(not_claimed(None));
            };
            match rows.unmanaged_group_by_name(tenant, display_name).await? {
                Some(candidate) => claim_group(rows, tenant, new, candidate, now).await,
                None => Ok(not_claimed(None)),
            }
        }
    }
}

async fn claim_user<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    new: &ClaimInput<'_>,
    c: Candidate,
    (matched_by, mode): (&str, EmailUniqueness),
    now: OffsetDateTime,
) -> StoreResult<Claim> {
    let watch = RoleWatch::start(rows, tenant, vec![c.pk]).await?;
    let how = Rewrite {
        password_hash: new.password_hash,
        replace_password: false,
        claim: true,
        emails: true,
    };
    let version = rows
        .rewrite_resource(tenant, c.pk, new.doc, new.derived, how, now)
        .await?;
    let old = c.doc.as_ref();
    custom_index::maintain(rows, tenant, ResourceKind::User, c.pk, old, new.doc, false).await?;
    // The app user held its emails' claims; SCIM's document may bring others.
    emails::claim(rows, tenant, mode, c.pk, new.doc, &new.derived.emails).await?;
    let old_doc = c.doc.unwrap_or(Value::Null);
    let mut events = vec![NewEvent::new(
        EventType::UserMatched,
        json!({
            "user": resource_body(&c.id, new.doc),
            "matched_by": matched_by,
            "previous": resource_ref(&c.id, &old_doc),
        }),
    )];
    events.extend(new.events.iter().cloned());
    events.extend(finish(watch, rows).await?);
    append_scim_events(rows, tenant, now, events).await?;
    Ok(Claim::Done(CreateOutcome::Matched(StoredResource {
        id: c.id,
        kind: ResourceKind::User,
        doc: new.doc.clone(),
        version,
        created: c.created,
        last_modified: now,
    })))
}

async fn claim_group<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    new: &ClaimInput<'_>,
    c: Candidate,
    now: OffsetDateTime,
) -> StoreResult<Claim> {
    let d = new.derived;
    let ops = [MemberOp::RemoveAll, MemberOp::Add(new.members.to_vec())];
    let before = GroupSel {
        id: c.id.clone(),
        external_id: c.external_id.clone(),
        display_name_lc: d.display_name_lc.clone(),
    };
    let after = GroupSel::new(&c.id, d);
    let watch = group_watch(rows, tenant, Some(c.pk), Some(&before), Some(&after), &ops).await?;
    let previous = rows.member_count(tenant, c.pk).await?;
    let how = Rewrite {
        password_hash: None,
        replace_password: false,
        claim: true,
        emails: true,
    };
    let version = rows
        .rewrite_resource(tenant, c.pk, new.doc, d, how, now)
        .await?;
    custom_index::maintain(
        rows,
        tenant,
        ResourceKind::Group,
        c.pk,
        None,
        new.doc,
        false,
    )
    .await?;
    let mut events = vec![NewEvent::new(
        EventType::GroupMatched,
        json!({"group": resource_body(&c.id, new.doc), "previous_members": previous}),
    )];
    events.extend(
        apply_member_ops(
            rows,
            tenant,
            c.pk,
            &c.id,
            new.doc,
            &ops,
            Eligible::ScimUsers,
        )
        .await?,
    );
    events.extend(new.events.iter().cloned());
    events.extend(finish(watch, rows).await?);
    append_scim_events(rows, tenant, now, events).await?;
    Ok(Claim::Done(CreateOutcome::Matched(StoredResource {
        id: c.id,
        kind: ResourceKind::Group,
        doc: new.doc.clone(),
        version,
        created: c.created,
        last_modified: now,
    })))
}
