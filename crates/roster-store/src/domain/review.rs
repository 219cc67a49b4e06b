//! The first-sync review (tenant setting `first_sync_review`): while it is open, the tenant's
//! SCIM writes are applied as usual but their events are held rather than appended to the feed,
//! and the directory as it was when the review opened is kept beside it. An operator (or the
//! IT admin) then approves, which appends the held events to the feed in order, with seqs
//! reserved at that moment as for any write, or discards, which puts the directory back as it
//! was, disables SCIM and releases nothing.
//!
//! Why a copy of the directory rather than a record of each write's first image: the review
//! is opened before a first sync, when the directory is empty or holds the app's own users, so
//! the copy is small, taken once, and no write path needs to know about reviews beyond where
//! it appends its events ([`super::outbox::append_scim_events`]).
//!
//! While a review is open the login decision ([`login_view`]) is taken on the copy: a user the
//! review created is not provisioned yet; one that existed is decided as it was then.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use time::OffsetDateTime;

use super::roles::effective_roles;
use super::{stored_time, Rows};
use crate::app::{LoginRecord, UserStatus};
use crate::tenants::CONFLICT_REVIEW_HOLDS;
use crate::{StoreError, StoreResult, Tenant};

/// Held events read per statement while a review is summarised or approved.
const PAGE: u64 = 1000;

/// Users listed per page of a review's status, at most.
pub const MAX_LISTED: u64 = 1000;

/// What the held events of a review would do, counted per user or group (a user created and
/// then deactivated in the same review counts in both).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReviewSummary {
    /// Users created.
    pub users_created: u64,
    /// Existing app users linked by their email.
    pub users_linked_by_email: u64,
    /// Existing app users linked by their userName.
    pub users_linked_by_user_name: u64,
    /// Deprovisioned users restored.
    pub users_restored: u64,
    /// Users whose attributes changed.
    pub users_updated: u64,
    /// Users deactivated.
    pub users_deactivated: u64,
    /// Users reactivated.
    pub users_reactivated: u64,
    /// Users deprovisioned.
    pub users_deprovisioned: u64,
    /// Users erased.
    pub users_erased: u64,
    /// Groups created.
    pub groups_created: u64,
    /// Groups changed.
    pub groups_updated: u64,
    /// Groups deleted.
    pub groups_deleted: u64,
    /// Memberships added.
    pub memberships_added: u64,
    /// Memberships removed.
    pub memberships_removed: u64,
    /// For each role, how many users would gain it.
    pub roles_granted: BTreeMap<String, u64>,
}

/// One user a review touches.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReviewUser {
    /// Its id.
    pub id: String,
    /// Its userName, as the last held event names it.
    pub user_name: Option<String>,
    /// What the review does to it, in order, each once: `created`, `linked_by_email`,
    /// `linked_by_user_name`, `restored`, `updated`, `deactivated`, `reactivated`,
    /// `deprovisioned`, `erased`.
    pub actions: Vec<String>,
    /// The roles it would gain.
    pub roles_granted: Vec<String>,
    /// The roles it would lose.
    pub roles_lost: Vec<String>,
}

/// A tenant's open review.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReviewStatus {
    /// When it began holding: the time of its first held event (`None` while it holds none).
    pub held_since: Option<OffsetDateTime>,
    /// How many events it holds.
    pub held_events: u64,
    /// What they would do.
    pub summary: ReviewSummary,
    /// How many users they touch.
    pub users_total: u64,
    /// A page of those users, by id.
    pub users: Vec<ReviewUser>,
    /// The id to ask for the next page after, when there is one.
    pub next_after: Option<String>,
}

/// What an approve or a discard did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReviewOutcome {
    /// Events appended to the feed (approve).
    pub released: u64,
    /// Held events dropped (discard).
    pub dropped: u64,
    /// Resources the review had created, deleted (discard).
    pub deleted: u64,
    /// Resources put back as they were (discard).
    pub restored: u64,
}

/// Opens or closes the tenant's review when an edit turns `first_sync_review` on or off.
/// Turning it off while events are held is refused with `Conflict(CONFLICT_REVIEW_HOLDS)`:
/// they would be released unseen.
///
/// Concurrency: in the tenant's write transaction, like every write of its directory.
pub async fn settings_changed<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    (before, after): (bool, bool),
) -> StoreResult<()> {
    match (before, after) {
        (false, true) => {
            rows.review_close(tenant).await?;
            rows.review_open(tenant).await
        }
        (true, false) => {
            if rows.review_held_count(tenant).await? > 0 {
                return Err(StoreError::Conflict(CONFLICT_REVIEW_HOLDS));
            }
            rows.review_close(tenant).await
        }
        _ => Ok(()),
    }
}

/// Accumulates a user's part of a review.
#[derive(Default)]
struct UserAcc {
    user_name: Option<String>,
    actions: Vec<&'static str>,
    /// Effective roles before its first roles change, and after its last.
    roles: Option<(BTreeSet<String>, BTreeSet<String>)>,
}

fn strings(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The summary and per-user view of held events.
#[derive(Default)]
struct Tally {
    users: BTreeMap<String, UserAcc>,
    groups: BTreeMap<String, Vec<&'static str>>,
    added: u64,
    removed: u64,
}

impl Tally {
    fn user(&mut self, data: &Value, action: Option<&'static str>) {
        let Some(u) = data.get("user") else { return };
        let Some(id) = u.get("id").and_then(Value::as_str) else {
            return;
        };
        let acc = self.users.entry(id.to_owned()).or_default();
        if let Some(name) = u.get("userName").and_then(Value::as_str) {
            acc.user_name = Some(name.to_owned());
        }
        if let Some(a) = action {
            if !acc.actions.contains(&a) {
                acc.actions.push(a);
            }
        }
    }

    fn roles(&mut self, data: &Value) {
        for u in data
            .get("users")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(id) = u.get("id").and_then(Value::as_str) else {
                continue;
            };
            let after = strings(u.get("roles"));
            let added = strings(u.get("added"));
            let removed = strings(u.get("removed"));
            let acc = self.users.entry(id.to_owned()).or_default();
            if acc.user_name.is_none() {
                acc.user_name = u.get("userName").and_then(Value::as_str).map(str::to_owned);
            }
            let first = acc.roles.take().map_or_else(
                || {
                    after
                        .difference(&added)
                        .chain(removed.iter())
                        .cloned()
                        .collect()
                },
                |(first, _)| first,
            );
            acc.roles = Some((first, after));
        }
    }

    fn group(&mut self, data: &Value, action: &'static str) {
        let Some(id) = data.pointer("/group/id").and_then(Value::as_str) else {
            return;
        };
        let acts = self.groups.entry(id.to_owned()).or_default();
        if !acts.contains(&action) {
            acts.push(action);
        }
    }

    fn add(&mut self, event_type: &str, data: &Value) {
        let members = || {
            data.get("members")
                .and_then(Value::as_array)
                .map_or(0, |a| a.len() as u64)
        };
        match event_type {
            "user.created" => self.user(data, Some("created")),
            "user.matched" => {
                let by = data.get("matched_by").and_then(Value::as_str);
                let action = if by == Some("email") {
                    "linked_by_email"
                } else {
                    "linked_by_user_name"
                };
                self.user(data, Some(action));
            }
            "user.restored" => self.user(data, Some("restored")),
            "user.updated" => self.user(data, Some("updated")),
            "user.deactivated" => self.user(data, Some("deactivated")),
            "user.reactivated" => self.user(data, Some("reactivated")),
            "user.deprovisioned" => self.user(data, Some("deprovisioned")),
            "user.erased" => self.user(data, Some("erased")),
            "user.roles_changed" => self.roles(data),
            "group.created" => self.group(data, "created"),
            "group.updated" => self.group(data, "updated"),
            "group.deleted" => self.group(data, "deleted"),
            "group.members_added" => self.added += members(),
            "group.members_removed" => self.removed += members(),
            _ => {}
        }
    }

    fn summary(&self) -> ReviewSummary {
        let users = |a: &str| {
            self.users
                .values()
                .filter(|u| u.actions.contains(&a))
                .count() as u64
        };
        let groups = |a: &str| self.groups.values().filter(|g| g.contains(&a)).count() as u64;
        let mut roles_granted: BTreeMap<String, u64> = BTreeMap::new();
        for u in self.users.values() {
            if let Some((before, after)) = &u.roles {
                for r in after.difference(before) {
                    *roles_granted.entry(r.clone()).or_default() += 1;
                }
            }
        }
        ReviewSummary {
            users_created: users("created"),
            users_linked_by_email: users("linked_by_email"),
            users_linked_by_user_name: users("linked_by_user_name"),
            users_restored: users("restored"),
            users_updated: users("updated"),
            users_deactivated: users("deactivated"),
            users_reactivated: users("reactivated"),
            users_deprovisioned: users("deprovisioned"),
            users_erased: users("erased"),
            groups_created: groups("created"),
            groups_updated: groups("updated"),
            groups_deleted: groups("deleted"),
            memberships_added: self.added,
            memberships_removed: self.removed,
            roles_granted,
        }
    }
}

/// The tenant's open review: what its held events would do, and the users they touch after
/// id `after` (at most `limit`, by id). `None` while no review is open.
///
/// Reads every held event (a page at a time); memory grows with the users they touch.
pub async fn status<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    after: Option<&str>,
    limit: u64,
) -> StoreResult<Option<ReviewStatus>> {
    if !rows.review_is_open(tenant).await? {
        return Ok(None);
    }
    let mut tally = Tally::default();
    let mut held_since = None;
    let mut held = 0u64;
    let mut last = 0i64;
    loop {
        let page = rows.review_held(tenant, last, PAGE).await?;
        let Some(end) = page.last().map(|e| e.seq) else {
            break;
        };
        held += page.len() as u64;
        held_since = held_since.or(page.first().map(|e| e.occurred_at));
        for e in &page {
            tally.add(&e.event_type, &e.data);
        }
        last = end;
    }
    let summary = tally.summary();
    let users_total = tally.users.len() as u64;
    let limit = usize::try_from(limit.clamp(1, MAX_LISTED)).unwrap_or(1);
    let mut listed: Vec<ReviewUser> = tally
        .users
        .into_iter()
        .filter(|(id, _)| after.is_none_or(|a| id.as_str() > a))
        .take(limit + 1)
        .map(|(id, u)| {
            let (granted, lost) = u.roles.map_or_else(Default::default, |(before, after)| {
                (
                    after.difference(&before).cloned().collect(),
                    before.difference(&after).cloned().collect(),
                )
            });
            ReviewUser {
                id,
                user_name: u.user_name,
                actions: u.actions.iter().map(|a| (*a).to_owned()).collect(),
                roles_granted: granted,
                roles_lost: lost,
            }
        })
        .collect();
    let next_after = if listed.len() > limit {
        listed.truncate(limit);
        listed.last().map(|u| u.id.clone())
    } else {
        None
    };
    Ok(Some(ReviewStatus {
        held_since,
        held_events: held,
        summary,
        users_total,
        users: listed,
        next_after,
    }))
}

async fn open_review<R: Rows + ?Sized>(rows: &mut R, tenant: &str) -> StoreResult<Tenant> {
    let t = rows
        .live_tenant(tenant)
        .await?
        .ok_or(StoreError::NotFound)?;
    if !rows.review_is_open(tenant).await? {
        return Err(StoreError::Invalid(format!(
            "tenant \"{tenant}\" has no first-sync review open (the setting \
             first_sync_review is off)"
        )));
    }
    Ok(t)
}

/// Approves the tenant's review: its held events are appended to the feed in the order they
/// were held, with seqs reserved now (as for any write, so a reader that has seen seq `n`
/// finds them all after `n`), the review closes and the setting turns off. `Invalid` when no
/// review is open.
///
/// Concurrency: one write transaction, holding the tenant's writes for its length (a review of
/// a million events holds them for seconds; split, a reader could see half of it).
pub async fn approve<R: Rows + ?Sized>(rows: &mut R, tenant: &str) -> StoreResult<ReviewOutcome> {
    let mut t = open_review(rows, tenant).await?;
    let mut released = 0u64;
    let mut last = 0i64;
    loop {
        let mut page = rows.review_held(tenant, last, PAGE).await?;
        let Some(end) = page.last().map(|e| e.seq) else {
            break;
        };
        last = end;
        released += page.len() as u64;
        rows.append_events(tenant, &mut page).await?;
    }
    rows.review_close(tenant).await?;
    t.settings.first_sync_review = false;
    rows.write_tenant(&t).await?;
    Ok(ReviewOutcome {
        released,
        ..ReviewOutcome::default()
    })
}

/// Discards the tenant's review: what its SCIM writes created is deleted, what they changed or
/// deleted is put back as it was when the review opened (at new versions), the held events are
/// dropped unreleased, the review closes, the setting turns off and SCIM is disabled (its
/// tokens revoked). The identity provider's ids of the resources it created then answer 404.
/// `Invalid` when no review is open.
///
/// Concurrency: one write transaction, as [`approve`].
pub async fn discard<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    now: OffsetDateTime,
) -> StoreResult<ReviewOutcome> {
    let mut t = open_review(rows, tenant).await?;
    let now = stored_time(now);
    let dropped = rows.review_held_count(tenant).await?;
    let (deleted, restored) = rows.review_restore(tenant, now).await?;
    rows.refill_email_claims(tenant, t.settings.email_uniqueness)
        .await?;
    // The rows came back wholesale, not through the writes that keep the custom indexes:
    // those are built again (filters evaluate in memory meanwhile).
    super::custom_index::rebuild_all(rows, tenant).await?;
    rows.review_close(tenant).await?;
    t.settings.first_sync_review = false;
    rows.write_tenant(&t).await?;
    super::tenants::disable_scim(rows, tenant, now).await?;
    Ok(ReviewOutcome {
        dropped,
        deleted,
        restored,
        ..ReviewOutcome::default()
    })
}

/// A user the login decision found, with whether the tenant's review is open (one column of
/// the same statement, so that the check costs no round trip).
#[derive(Debug, Clone)]
pub struct LoginRow {
    /// Row key.
    pub pk: i64,
    /// SCIM id.
    pub id: String,
    /// Whether SCIM manages it.
    pub managed: bool,
    /// Its `active`.
    pub active: Option<bool>,
    /// Deprovisioned.
    pub deleted: bool,
    /// Whether the tenant's first-sync review is open.
    pub reviewing: bool,
}

/// The login record of the user found. While the tenant's review is open it is taken on the
/// copy the review keeps: a user the review created is not provisioned yet (`None`); one that
/// existed is decided as it was then, roles included (its direct roles and those of the role
/// mappings that select the groups it was a member of).
pub async fn login_record<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    found: LoginRow,
) -> StoreResult<Option<LoginRecord>> {
    let LoginRow {
        pk,
        id,
        managed,
        active,
        deleted,
        reviewing,
    } = found;
    if reviewing {
        let Some(user) = rows.reviewed_user(tenant, pk).await? else {
            return Ok(None);
        };
        let mut roles = BTreeSet::new();
        if !user.deleted && user.active != Some(false) {
            roles.extend(user.roles.iter().cloned());
            for g in &user.groups {
                roles.extend(rows.mapped_roles_of_group(tenant, g).await?);
            }
        }
        return Ok(Some(LoginRecord {
            id,
            managed: user.managed,
            status: UserStatus::of(user.active, user.deleted),
            roles: roles.into_iter().collect(),
        }));
    }
    let roles = effective_roles(rows, tenant, &[pk]).await?;
    Ok(Some(LoginRecord {
        id,
        managed,
        status: UserStatus::of(active, deleted),
        roles: roles
            .get(&pk)
            .map(|s| s.roles.iter().cloned().collect())
            .unwrap_or_default(),
    }))
}
