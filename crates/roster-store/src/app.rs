//! The host app's side of the directory: existing app users and groups that SCIM does not
//! manage, directly assigned roles and app metadata, role mappings and effective roles, the
//! login lookup, and the mass-deprovisioning guard ([`AppStore`]).
//!
//! Visibility: a record with `managed = false` (imported or created through the admin API) is
//! invisible to SCIM — no SCIM read, filter, write or member reference sees it — until a SCIM
//! create matches it (same userName or primary email for a user, same displayName for a
//! group), which makes that same record SCIM-managed: same id, history kept. userName stays
//! unique across managed and unmanaged users, which is what makes the match possible.
//!
//! Effective roles: a user's directly assigned roles ∪ the roles mapped to the groups it belongs
//! to; empty while the user is deactivated or deprovisioned (the direct assignments are kept, so
//! reactivation restores them). Every write that changes a user's effective roles appends
//! `user.roles_changed` in its transaction (see [`roles_changed_events`]).

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::events::MEMBERS_PER_EVENT;
use crate::{
    DeprovisionGuard, EventType, MemberOp, NewEvent, StoreResult, StoredResource, TenantSettings,
};

/// A user's lifecycle status as the app sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// May use the app.
    Active,
    /// `active` is false: visible to SCIM, no access.
    Deactivated,
    /// Deleted through SCIM: retained for audit, invisible to SCIM, no access.
    Deprovisioned,
}

impl UserStatus {
    /// The status of a stored row: `deleted` wins, then `active` (absent counts as active).
    #[must_use]
    pub fn of(active: Option<bool>, deleted: bool) -> Self {
        if deleted {
            Self::Deprovisioned
        } else if active == Some(false) {
            Self::Deactivated
        } else {
            Self::Active
        }
    }

    /// The name used by the API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
            Self::Deprovisioned => "deprovisioned",
        }
    }
}

/// A group a user belongs to, as the app sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppGroupRef {
    /// The group's id.
    pub id: String,
    /// Its displayName.
    pub display_name: String,
    /// Whether SCIM manages it.
    pub managed: bool,
}

/// A user with what the host app needs beside the SCIM document.
#[derive(Debug, Clone, PartialEq)]
pub struct AppUser {
    /// The stored SCIM document, id, version and timestamps.
    pub resource: StoredResource,
    /// Whether SCIM manages it.
    pub managed: bool,
    /// Lifecycle status.
    pub status: UserStatus,
    /// Roles assigned directly by the app (kept while inactive).
    pub direct_roles: Vec<String>,
    /// Effective roles: direct ∪ mapped roles of its groups; empty unless active.
    pub roles: Vec<String>,
    /// The groups it belongs to (managed and app groups).
    pub groups: Vec<AppGroupRef>,
    /// App metadata (a JSON object).
    pub metadata: Value,
}

/// A group with what the host app needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AppGroup {
    /// The stored SCIM document, id, version and timestamps.
    pub resource: StoredResource,
    /// Whether SCIM manages it.
    pub managed: bool,
    /// Roles mapped to it by role mappings.
    pub roles: Vec<String>,
    /// Number of members.
    pub member_count: u64,
    /// App metadata (a JSON object).
    pub metadata: Value,
}

/// A member of a group, as the app sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppGroupMember {
    /// The user's id.
    pub id: String,
    /// Its userName.
    pub user_name: String,
    /// Whether SCIM manages it.
    pub managed: bool,
    /// Its status.
    pub status: UserStatus,
}

/// One page of an admin-API list; `next_cursor` is absent on the last page.
#[derive(Debug, Clone, PartialEq)]
pub struct AppPage<T> {
    /// The items.
    pub items: Vec<T>,
    /// The cursor of the next page.
    pub next_cursor: Option<String>,
    /// The cursor of the previous page (pass it as `before`): present when the page was
    /// reached from a cursor and rows precede it. Lists of users and groups only.
    pub prev_cursor: Option<String>,
    /// How many rows match the filters (all pages), when the query asked for it.
    pub total: Option<u64>,
}

/// The order of a list of users or groups. Every order ends with the row's creation order,
/// so that equal keys keep one stable order across pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AppSort {
    /// Creation order (the admin API's order, and its `c…` cursors).
    #[default]
    Pk,
    /// By userName (users) or displayName (groups), folded case.
    Name,
    /// By creation time.
    Created,
    /// By last change.
    LastModified,
}

impl AppSort {
    /// Parses the console's and CSV export's `sort` parameter (`name`, `created`,
    /// `modified`); anything else is the creation order.
    #[must_use]
    pub fn parse(s: &str) -> Self {
        match s {
            "name" => Self::Name,
            "created" => Self::Created,
            "modified" => Self::LastModified,
            _ => Self::Pk,
        }
    }
}

/// Which users to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppUserQuery {
    /// `next_cursor` of the previous page (opaque); `None` = first page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: u64,
    /// userName starts with this (case-insensitive).
    pub user_name_prefix: Option<String>,
    /// userName or one of the emails starts with this (case-insensitive); both are indexed
    /// range scans, for a search box.
    pub search: Option<String>,
    /// Has this email (any of its emails, case-insensitive).
    pub email: Option<String>,
    /// Has this externalId (case-exact).
    pub external_id: Option<String>,
    /// Has this status.
    pub status: Option<UserStatus>,
    /// Managed by SCIM or not.
    pub managed: Option<bool>,
    /// userName, displayName, given, family or formatted name, or an email *contains* this
    /// (case-insensitive; through an index: FTS5 trigram on SQLite, pg_trgm on PostgreSQL).
    /// Fewer than 3 characters search userName or email by prefix, as `search`.
    pub contains: Option<String>,
    /// The order.
    pub sort: AppSort,
    /// Descending order.
    pub desc: bool,
    /// `prev_cursor` of the page after the one wanted (instead of `cursor`).
    pub before: Option<String>,
    /// Also count every match (`AppPage::total`).
    pub count: bool,
}

/// Which groups to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppGroupQuery {
    /// `next_cursor` of the previous page (opaque); `None` = first page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: u64,
    /// displayName starts with this (case-insensitive).
    pub display_name_prefix: Option<String>,
    /// Managed by SCIM or not.
    pub managed: Option<bool>,
    /// displayName contains this (case-insensitive, indexed); fewer than 3 characters are a
    /// prefix.
    pub contains: Option<String>,
    /// The order.
    pub sort: AppSort,
    /// Descending order.
    pub desc: bool,
    /// `prev_cursor` of the page after the one wanted (instead of `cursor`).
    pub before: Option<String>,
    /// Also count every match (`AppPage::total`).
    pub count: bool,
}

/// An existing app user to import (not managed by SCIM).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportUser {
    /// The id to give it (the app's own id when it has one).
    pub id: String,
    /// A valid SCIM User document (the caller normalised it).
    pub doc: Value,
    /// Directly assigned roles.
    pub roles: Vec<String>,
    /// displayNames of app groups to assign it to (created, unmanaged, when missing).
    pub groups: Vec<String>,
    /// App metadata (a JSON object).
    pub metadata: Value,
}

/// What an import did with one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportResult {
    /// Stored as a new unmanaged user.
    Imported,
    /// Left alone: the message says why (e.g. the userName exists).
    Skipped(String),
}

/// A change to a user through the admin API. The caller has checked that a managed user's
/// SCIM-owned attributes are unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct AppUserUpdate {
    /// The version the change was computed from (`Stale` otherwise).
    pub expected_version: i64,
    /// A new document, when it changed.
    pub doc: Option<Value>,
    /// New direct roles, when they changed.
    pub roles: Option<Vec<String>>,
    /// New app metadata, when it changed.
    pub metadata: Option<Value>,
    /// Events describing the change (`user.updated`, `user.deactivated`, ...); the store
    /// appends `user.roles_changed` after them when effective roles changed.
    pub events: Vec<NewEvent>,
}

/// A new app group (not managed by SCIM).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAppGroup {
    /// Its id.
    pub id: String,
    /// A valid SCIM Group document.
    pub doc: Value,
    /// Initial member user ids (managed or not).
    pub members: Vec<String>,
    /// App metadata (a JSON object).
    pub metadata: Value,
}

/// A change to a group through the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct AppGroupUpdate {
    /// The version the change was computed from (`Stale` otherwise).
    pub expected_version: i64,
    /// A new document, when it changed.
    pub doc: Option<Value>,
    /// Membership changes (app groups only).
    pub members: Vec<MemberOp>,
    /// New app metadata, when it changed.
    pub metadata: Option<Value>,
    /// Events describing the document change (`group.updated`).
    pub events: Vec<NewEvent>,
}

/// Which attribute of a group a role mapping selects it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MatchBy {
    /// The group's id.
    #[serde(rename = "id")]
    Id,
    /// The group's externalId (case-exact).
    #[serde(rename = "externalId")]
    ExternalId,
    /// The group's displayName (case-insensitive).
    #[serde(rename = "displayName")]
    DisplayName,
}

impl MatchBy {
    /// The name used by the API and stored.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::ExternalId => "externalId",
            Self::DisplayName => "displayName",
        }
    }

    /// Parses a stored name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Id, Self::ExternalId, Self::DisplayName]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// A role mapping: the groups selected by `by` = `value` grant `roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMapping {
    /// Id (`rm_…`).
    pub id: String,
    /// Which attribute selects the group.
    pub by: MatchBy,
    /// The value, as given.
    pub value: String,
    /// Role names, sorted, without duplicates.
    pub roles: Vec<String>,
    /// When created.
    pub created_at: OffsetDateTime,
    /// When last changed.
    pub updated_at: OffsetDateTime,
}

/// What the login decision looks a user up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginKey {
    /// An email: any of a user's emails, or its userName (case-insensitive).
    Email(String),
    /// The externalId the identity provider gave (case-exact).
    ExternalId(String),
}

/// The user a login lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    /// Its id.
    pub id: String,
    /// Whether SCIM manages it.
    pub managed: bool,
    /// Its status.
    pub status: UserStatus,
    /// Its effective roles.
    pub roles: Vec<String>,
}

/// The states of the mass-deprovisioning guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardState {
    /// Counting deactivations and deletions.
    Armed,
    /// Refusing them until an operator confirms or rejects the batch.
    Tripped,
    /// An operator confirmed: they pass, uncounted, until a quiet window re-arms the guard.
    Confirmed,
    /// An operator rejected: they are refused until a quiet window re-arms the guard.
    Rejected,
}

impl GuardState {
    /// The stored and API name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Armed => "armed",
            Self::Tripped => "tripped",
            Self::Confirmed => "confirmed",
            Self::Rejected => "rejected",
        }
    }

    /// Parses a stored name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Armed, Self::Tripped, Self::Confirmed, Self::Rejected]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// What removes a user's access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardOperation {
    /// `active` set to false.
    Deactivate,
    /// `DELETE` of an active user.
    Delete,
}

impl GuardOperation {
    /// The stored and API name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deactivate => "deactivate",
            Self::Delete => "delete",
        }
    }
}

/// A deactivation or deletion of an active user, submitted to the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardSubject {
    /// The user's id.
    pub user_id: String,
    /// Its userName.
    pub user_name: String,
    /// When it was created: users created after the window opened are not counted (they were
    /// not among the active users the share is computed from).
    pub created: OffsetDateTime,
    /// What is done to it.
    pub operation: GuardOperation,
}

/// The guard's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardVerdict {
    /// Go ahead.
    Allowed,
    /// Refuse (SCIM 503 with `Retry-After`); the status says why.
    Refused(Box<GuardStatus>),
}

/// An operation refused while the guard was tripped or rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldOperation {
    /// The user's id.
    pub user_id: String,
    /// Its userName.
    pub user_name: Option<String>,
    /// `deactivate` or `delete`.
    pub operation: String,
    /// First refusal.
    pub first_at: OffsetDateTime,
    /// Latest refusal.
    pub last_at: OffsetDateTime,
    /// Number of refusals (identity providers retry).
    pub attempts: u64,
}

/// The guard of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardStatus {
    /// The tenant's guard settings.
    pub settings: DeprovisionGuard,
    /// The current state (an expired confirmed or rejected state reads as armed).
    pub state: GuardState,
    /// Deactivations and deletions counted in the current window.
    pub window_count: u64,
    /// When the current window's first one was counted.
    pub window_start: Option<OffsetDateTime>,
    /// Active managed users when the window opened.
    pub active_users: u64,
    /// The count above which the guard trips: it trips when the count exceeds both
    /// `min_count` and `max_percent` of `active_users`.
    pub threshold: u64,
    /// When it last tripped.
    pub tripped_at: Option<OffsetDateTime>,
    /// When an operator last decided.
    pub decided_at: Option<OffsetDateTime>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When a confirmed or rejected state ends unless extended.
    pub until: Option<OffsetDateTime>,
    /// How often it tripped.
    pub trips: u64,
    /// Number of held operations.
    pub held_count: u64,
    /// The first held operations (at most 100).
    pub held: Vec<HeldOperation>,
}

/// An operator's decision on a tripped guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardDecision {
    /// The held operations may proceed (identity providers retry them).
    Confirm,
    /// The batch is refused.
    Reject,
}

impl GuardDecision {
    /// The name used in events and the audit log.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirm => "confirmed",
            Self::Reject => "rejected",
        }
    }
}

/// The threshold of the guard: the count above which it trips, for `active` users.
#[must_use]
pub fn guard_threshold(g: &DeprovisionGuard, active: u64) -> u64 {
    let share = active.saturating_mul(u64::from(g.max_percent)) / 100;
    share.max(u64::from(g.min_count))
}

/// Whether `count` deactivations exceed the guard's share of `active` users and its count.
#[must_use]
pub fn guard_exceeded(g: &DeprovisionGuard, count: u64, active: u64) -> bool {
    count > u64::from(g.min_count)
        && count.saturating_mul(100) > active.saturating_mul(u64::from(g.max_percent))
}

/// One user whose effective roles changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolesChange {
    /// The user's id.
    pub id: String,
    /// Its userName.
    pub user_name: String,
    /// Effective roles before.
    pub before: BTreeSet<String>,
    /// Effective roles after.
    pub after: BTreeSet<String>,
}

/// `user.roles_changed` events for `changes`, at most [`MEMBERS_PER_EVENT`] users an event
/// (`part` 1 … `parts`), so that a mapping change on a huge group stays a few events.
#[must_use]
pub fn roles_changed_events(changes: &[RolesChange]) -> Vec<NewEvent> {
    let parts = changes.len().div_ceil(MEMBERS_PER_EVENT);
    changes
        .chunks(MEMBERS_PER_EVENT)
        .enumerate()
        .map(|(i, chunk)| {
            let users: Vec<Value> = chunk
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "userName": c.user_name,
                        "roles": c.after,
                        "added": c.after.difference(&c.before).collect::<Vec<_>>(),
                        "removed": c.before.difference(&c.after).collect::<Vec<_>>(),
                    })
                })
                .collect();
            NewEvent::new(
                EventType::UserRolesChanged,
                json!({"users": users, "part": i + 1, "parts": parts}),
            )
        })
        .collect()
}

/// The host app's side of the store. Every method is scoped to one tenant.
#[async_trait]
pub trait AppStore: Send + Sync {
    /// Replaces a tenant's settings. `NotFound` for an unknown tenant. (The tenants API of
    /// issue 4 owns settings; this exists so that the app features can be set up and tested
    /// before it lands.)
    async fn put_tenant_settings(&self, tenant: &str, settings: &TenantSettings)
        -> StoreResult<()>;

    /// Imports users not managed by SCIM, in one transaction; one result per input, in order.
    /// A record whose userName or id is taken is skipped. Appends `user.imported` (listing the
    /// imported users, in parts of 1000), `group.created` for app groups it creates and
    /// `group.members_added` for the assignments.
    async fn import_users(
        &self,
        tenant: &str,
        users: Vec<ImportUser>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<ImportResult>>;

    /// A user, managed or not, deprovisioned ones included.
    async fn get_app_user(&self, tenant: &str, id: &str) -> StoreResult<Option<AppUser>>;
    /// A page of users, in creation order or `q.sort`'s.
    async fn list_app_users(&self, tenant: &str, q: &AppUserQuery)
        -> StoreResult<AppPage<AppUser>>;
    /// Applies an admin-API change to a user. `NotFound`, `Stale`, `Conflict("userName")`.
    async fn update_app_user(
        &self,
        tenant: &str,
        id: &str,
        update: AppUserUpdate,
        now: OffsetDateTime,
    ) -> StoreResult<AppUser>;
    /// Erases a user not managed by SCIM (its memberships go with it); emits `user.erased`.
    /// `NotFound`; `Invalid` for a managed user.
    async fn delete_app_user(&self, tenant: &str, id: &str, now: OffsetDateTime)
        -> StoreResult<()>;

    /// Creates an app group (not managed by SCIM); emits `group.created` (with
    /// `"managed": false`) and `group.members_added`. `Invalid` when a member is not a user
    /// of the tenant.
    async fn create_app_group(
        &self,
        tenant: &str,
        new: NewAppGroup,
        now: OffsetDateTime,
    ) -> StoreResult<AppGroup>;
    /// A group, managed or not.
    async fn get_app_group(&self, tenant: &str, id: &str) -> StoreResult<Option<AppGroup>>;
    /// A page of groups, in creation order or `q.sort`'s.
    async fn list_app_groups(
        &self,
        tenant: &str,
        q: &AppGroupQuery,
    ) -> StoreResult<AppPage<AppGroup>>;
    /// A page of a group's members in name order (folded userName, then id), read through
    /// an index by that order (a page costs the same in a group of any size). `NotFound` for
    /// an unknown group.
    async fn list_app_group_members(
        &self,
        tenant: &str,
        group_id: &str,
        cursor: Option<&str>,
        limit: u64,
    ) -> StoreResult<AppPage<AppGroupMember>>;
    /// Applies an admin-API change to a group. `NotFound`, `Stale`, `Invalid` (a member that
    /// is not a user of the tenant, or member changes to a managed group).
    async fn update_app_group(
        &self,
        tenant: &str,
        id: &str,
        update: AppGroupUpdate,
        now: OffsetDateTime,
    ) -> StoreResult<AppGroup>;
    /// Deletes an app group and its memberships; emits `group.deleted`. `NotFound`; `Invalid`
    /// for a managed group.
    async fn delete_app_group(
        &self,
        tenant: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()>;

    /// The tenant's role mappings, oldest first.
    async fn list_role_mappings(&self, tenant: &str) -> StoreResult<Vec<RoleMapping>>;
    /// One role mapping.
    async fn get_role_mapping(&self, tenant: &str, id: &str) -> StoreResult<Option<RoleMapping>>;
    /// Creates a role mapping (`Conflict("role mapping")` when one selects the same group the
    /// same way); emits `user.roles_changed` for the users it changes.
    async fn create_role_mapping(
        &self,
        tenant: &str,
        mapping: &RoleMapping,
        now: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Replaces a role mapping's selector and roles (`NotFound`, `Conflict("role mapping")`);
    /// emits `user.roles_changed` for the users it changes.
    async fn update_role_mapping(
        &self,
        tenant: &str,
        mapping: &RoleMapping,
        now: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Deletes a role mapping (`NotFound`); emits `user.roles_changed`.
    async fn delete_role_mapping(
        &self,
        tenant: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()>;

    /// Finds the user a sign-in is about, with its effective roles, by indexed lookups only.
    /// Prefers a managed user over an unmanaged one, and a live one over a deprovisioned one.
    async fn login_lookup(&self, tenant: &str, key: &LoginKey) -> StoreResult<Option<LoginRecord>>;

    /// Submits a deactivation or deletion of an active user to the tenant's guard, counting it
    /// when allowed. Emits `tenant.deprovision_guard_tripped` when this one trips it.
    async fn guard_admit(
        &self,
        tenant: &str,
        subject: &GuardSubject,
        now: OffsetDateTime,
    ) -> StoreResult<GuardVerdict>;
    /// The guard's state. `NotFound` for an unknown tenant.
    async fn guard_status(&self, tenant: &str, now: OffsetDateTime) -> StoreResult<GuardStatus>;
    /// Records an operator's decision on a tripped (or rejected) guard; emits
    /// `tenant.deprovision_guard_resolved`. `Invalid` when there is nothing to decide.
    async fn guard_decide(
        &self,
        tenant: &str,
        decision: GuardDecision,
        actor: &str,
        now: OffsetDateTime,
    ) -> StoreResult<GuardStatus>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_the_defaults() {
        let g = DeprovisionGuard::default();
        // 50 active users: 20% is 10, and more than 10 are needed.
        assert_eq!(guard_threshold(&g, 50), 10);
        assert!(!guard_exceeded(&g, 10, 50));
        assert!(guard_exceeded(&g, 11, 50));
        // 1000 users: 20% is 200.
        assert!(!guard_exceeded(&g, 200, 1000));
        assert!(guard_exceeded(&g, 201, 1000));
        // A small tenant is protected by min_count.
        assert!(!guard_exceeded(&g, 10, 3));
        assert!(guard_exceeded(&g, 11, 3));
    }

    #[test]
    fn roles_events_are_batched() {
        let changes: Vec<RolesChange> = (0..2500)
            .map(|i| RolesChange {
                id: format!("u{i}"),
                user_name: format!("user{i}"),
                before: BTreeSet::new(),
                after: ["admin".to_owned()].into(),
            })
            .collect();
        let events = roles_changed_events(&changes);
        assert_eq!(events.len(), 3);
        assert_eq!(events[2].data["part"], 3);
        assert_eq!(events[2].data["parts"], 3);
        assert_eq!(events[0].data["users"][0]["added"], json!(["admin"]));
        assert_eq!(events[0].data["users"][0]["removed"], json!([]));
    }
}
