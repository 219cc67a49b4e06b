//! The narrow interface a backend implements for the store core: row operations, each one
//! statement or a bounded few, with no rule inside.
//!
//! Every operation runs on the caller's connection, inside the caller's transaction (a write
//! transaction for the writes). Row values cross it in backend-neutral form (documents as
//! [`Value`], times as [`OffsetDateTime`], roles as lists): how a backend stores them (JSON text
//! or `jsonb`, milliseconds or `timestamptz`) is its own affair. A backend splits long lists
//! into as many statements as its parameter limit needs.
//!
//! Methods return `impl Future + Send` (written `async fn` in implementations), so that the
//! core's generic operations stay `Send` whatever backend runs them.

use std::future::Future;

use scim_proto::schema::ResourceKind;
use serde_json::Value;
use time::OffsetDateTime;

use super::custom_index::{CustomIndex, ValueRow};
use super::guard::GuardRow;
use super::query::{Arg, Dialect, Key};
use super::{Derived, GroupSel};
use crate::app::{GuardSubject, HeldOperation, MatchBy, RoleMapping};
use crate::events::Event;
use crate::{EmailUniqueness, StoreResult, StoredResource, Tenant, TenantSettings, TokenRecord};

/// A resource found by its folded userName (managed or not, live or deprovisioned), or a
/// candidate for matching on a SCIM create.
#[derive(Debug, Clone)]
pub struct NamedRow {
    /// Row key.
    pub pk: i64,
    /// SCIM id.
    pub id: String,
    /// Deprovisioned (kept, invisible to SCIM).
    pub deleted: bool,
    /// Whether SCIM manages it.
    pub managed: bool,
    /// When created.
    pub created: OffsetDateTime,
}

/// A live (not deprovisioned) SCIM-managed resource, as a write reads it before changing it.
#[derive(Debug, Clone)]
pub struct LiveRow {
    /// Row key.
    pub pk: i64,
    /// Current version.
    pub version: i64,
    /// When created.
    pub created: OffsetDateTime,
    /// The stored `active` (Users).
    pub active: Option<bool>,
    /// The stored externalId.
    pub external_id: Option<String>,
    /// The stored displayName, folded.
    pub display_name_lc: Option<String>,
    /// The stored document, when asked for.
    pub doc: Option<Value>,
}

/// An unmanaged row a SCIM create may claim.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Row key.
    pub pk: i64,
    /// Its id (kept when claimed).
    pub id: String,
    /// When created.
    pub created: OffsetDateTime,
    /// Its externalId (Groups).
    pub external_id: Option<String>,
    /// Its document (Users).
    pub doc: Option<Value>,
}

/// What a user's effective roles are made of, read in one snapshot.
#[derive(Debug, Clone)]
pub struct RoleRow {
    /// Row key.
    pub pk: i64,
    /// SCIM id.
    pub id: String,
    /// userName (empty when absent).
    pub user_name: String,
    /// The stored `active`.
    pub active: Option<bool>,
    /// Deprovisioned.
    pub deleted: bool,
    /// Roles the app gave the user directly.
    pub roles: Vec<String>,
}

/// One user of an email several users share: `(email folded, user id, userName folded or
/// empty)` (see [`Rows::email_duplicates`]).
pub type DuplicateRow = (String, String, String);

/// How [`Rows::rewrite_resource`] treats the row besides its document and derived columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite<'a> {
    /// The new password hash. With `replace_password`, `None` clears it; otherwise `None`
    /// keeps the stored one.
    pub password_hash: Option<&'a str>,
    /// Whether `password_hash` replaces the stored one even when `None`.
    pub replace_password: bool,
    /// Marks the row SCIM-managed and not deprovisioned.
    pub claim: bool,
    /// Whether the email rows are rewritten from `derived.emails` (`false`: they already hold
    /// exactly those, and stay).
    pub emails: bool,
}

/// A resource row as the app side reads it (any state, managed or not).
#[derive(Debug, Clone)]
pub struct AppRow {
    /// Row key.
    pub pk: i64,
    /// SCIM id.
    pub id: String,
    /// Current version.
    pub version: i64,
    /// Whether SCIM manages it.
    pub managed: bool,
    /// The stored document.
    pub doc: Value,
}

/// What an app edit changes on a resource row (besides version + 1 and `lastModified`).
#[derive(Debug, Clone, Copy)]
pub struct AppChange<'a> {
    /// A new document and its derived columns (and email rows).
    pub doc: Option<(&'a Value, &'a Derived)>,
    /// New directly assigned roles.
    pub roles: Option<&'a [String]>,
    /// New app metadata.
    pub metadata: Option<&'a Value>,
}

impl AppChange<'_> {
    /// Whether it changes nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.doc.is_none() && self.roles.is_none() && self.metadata.is_none()
    }
}

/// The rows a list reads: the tenant's live managed resources of one kind that satisfy a
/// translated condition over `resources r` (see [`super::query`]).
#[derive(Debug, Clone)]
pub struct Where {
    /// The resource type.
    pub kind: ResourceKind,
    /// `r.tenant_id = ? AND r.kind = '…' AND r.deleted = FALSE AND r.managed = TRUE AND (cond)`.
    pub sql: String,
    /// Its parameters, in order (the tenant first).
    pub args: Vec<Arg>,
}

impl Where {
    /// The live managed resources of `kind` in `tenant` that satisfy `cond`.
    #[must_use]
    pub fn new(tenant: &str, kind: ResourceKind, cond: String, cond_args: Vec<Arg>) -> Self {
        // `kind` is one of two constants, written literally so that a planner can use a
        // partial index on one kind (it cannot prove `kind = ?` implies `kind = 'User'`).
        let sql = format!(
            "r.tenant_id = ? AND r.kind = '{}' AND r.deleted = FALSE AND r.managed = TRUE AND {cond}",
            kind.as_str()
        );
        let mut args = vec![Arg::Text(tenant.to_owned())];
        args.extend(cond_args);
        Self { kind, sql, args }
    }

    /// The same rows, also satisfying `cond`.
    #[must_use]
    pub fn and(mut self, cond: &str, args: Vec<Arg>) -> Self {
        self.sql = format!("{} AND {cond}", self.sql);
        self.args.extend(args);
        self
    }
}

/// A User as the directory held it when the tenant's first-sync review opened (see
/// [`super::review`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewedUser {
    /// Whether SCIM managed it.
    pub managed: bool,
    /// Its `active`.
    pub active: Option<bool>,
    /// Deprovisioned.
    pub deleted: bool,
    /// Roles the app gave it directly.
    pub roles: Vec<String>,
    /// The groups it was a member of.
    pub groups: Vec<GroupSel>,
}

/// Row operations of one backend connection, within the caller's transaction.
///
/// What each write must not see change between its reads and its writes is stated on the core
/// operation that calls it (see [`super::resources`]); a backend without SQLite's database-wide
/// write lock provides it with the row locks those docs name.
pub trait Rows: Send {
    /// The string functions the filter translator writes for this backend.
    fn dialect(&self) -> &'static dyn Dialect;

    /// How many rows `w` selects.
    fn count_where(&mut self, w: &Where) -> impl Future<Output = StoreResult<u64>> + Send;

    /// The rows `w` selects, `ORDER BY order LIMIT limit OFFSET offset`.
    fn page_where(
        &mut self,
        w: &Where,
        order: &str,
        limit: u64,
        offset: u64,
    ) -> impl Future<Output = StoreResult<Vec<StoredResource>>> + Send;

    /// The first `limit` rows `w` selects in `order`, each with its sort key (the value of
    /// `key`'s expression, an integer or a text column) and pk, for a keyset cursor.
    fn keyset_page(
        &mut self,
        w: &Where,
        key: Option<(&str, bool)>,
        order: &str,
        limit: u64,
    ) -> impl Future<Output = StoreResult<Vec<(Option<Key>, i64, StoredResource)>>> + Send;

    /// Every row `w` selects, by pk (the in-memory path's superset).
    fn candidates(
        &mut self,
        w: &Where,
    ) -> impl Future<Output = StoreResult<Vec<(i64, StoredResource)>>> + Send;

    /// The members of the Groups `w` selects: `(group pk, member id)` by group, then member.
    fn candidate_members(
        &mut self,
        w: &Where,
    ) -> impl Future<Output = StoreResult<Vec<(i64, String)>>> + Send;

    /// The managed groups of the Users `w` selects: `(user pk, group id, group displayName)` by
    /// user, then group id.
    fn candidate_groups(
        &mut self,
        w: &Where,
    ) -> impl Future<Output = StoreResult<Vec<(i64, String, String)>>> + Send;

    /// The tenant's settings; `None` for an unknown tenant.
    fn tenant_settings(
        &mut self,
        tenant: &str,
    ) -> impl Future<Output = StoreResult<Option<TenantSettings>>> + Send;

    /// The User with this folded userName (managed or not, live or deprovisioned), and whether
    /// the tenant has any unmanaged User at all (most have none: then no matching lookup is
    /// needed). One statement.
    fn user_by_name(
        &mut self,
        tenant: &str,
        user_name_lc: &str,
    ) -> impl Future<Output = StoreResult<(Option<NamedRow>, bool)>> + Send;

    /// The unmanaged User with this folded userName.
    fn unmanaged_user_by_name(
        &mut self,
        tenant: &str,
        user_name_lc: &str,
    ) -> impl Future<Output = StoreResult<Option<Candidate>>> + Send;

    /// The oldest unmanaged User whose primary email, folded, is `email_lc`.
    fn unmanaged_user_by_primary_email(
        &mut self,
        tenant: &str,
        email_lc: &str,
    ) -> impl Future<Output = StoreResult<Option<Candidate>>> + Send;

    /// The oldest unmanaged Group with this folded displayName.
    fn unmanaged_group_by_name(
        &mut self,
        tenant: &str,
        display_name_lc: &str,
    ) -> impl Future<Output = StoreResult<Option<Candidate>>> + Send;

    /// The live managed resource `(kind, id)`; its document only when `with_doc`.
    fn live_row(
        &mut self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        with_doc: bool,
    ) -> impl Future<Output = StoreResult<Option<LiveRow>>> + Send;

    /// The User `id` that is not deprovisioned, managed or not: its pk and document.
    fn user_row(
        &mut self,
        tenant: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<(i64, Value)>>> + Send;

    /// Inserts a managed resource at version 1 with its email rows; returns its pk.
    /// `Conflict("userName")` when the folded userName is taken.
    #[allow(clippy::too_many_arguments)] // One row's columns.
    fn insert_resource(
        &mut self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        doc: &Value,
        derived: &Derived,
        password_hash: Option<&str>,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<i64>> + Send;

    /// Rewrites a resource row by pk: document, derived columns and (with `how.emails`) email
    /// rows, version + 1,
    /// `lastModified` = `now`; returns the new version. `Conflict("userName")` when the folded
    /// userName is taken by another row.
    fn rewrite_resource(
        &mut self,
        tenant: &str,
        pk: i64,
        doc: &Value,
        derived: &Derived,
        how: Rewrite<'_>,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<i64>> + Send;

    /// Bumps the version of the live managed Group `id` (its members are changing); returns
    /// its row with the document, after the bump.
    fn bump_live_group(
        &mut self,
        tenant: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<Option<LiveRow>>> + Send;

    /// Deletes a resource row; its email and member rows go with it.
    fn delete_resource(
        &mut self,
        tenant: &str,
        pk: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Marks a User deprovisioned: `deleted`, inactive, `doc` stored, version + 1.
    fn deprovision_user(
        &mut self,
        tenant: &str,
        pk: i64,
        doc: &Value,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Of these ids, the live Users of the tenant (only SCIM-managed ones when `managed_only`),
    /// as `(id, pk)` in any order.
    fn live_users(
        &mut self,
        tenant: &str,
        ids: &[&str],
        managed_only: bool,
    ) -> impl Future<Output = StoreResult<Vec<(String, i64)>>> + Send;

    /// The pks of the tenant's Users with these ids, whatever their state.
    fn user_pks(
        &mut self,
        tenant: &str,
        ids: &[&str],
    ) -> impl Future<Output = StoreResult<Vec<i64>>> + Send;

    /// Inserts member rows `(user pk, user id)` of a group, skipping existing ones; returns the
    /// ids really inserted.
    fn insert_members(
        &mut self,
        tenant: &str,
        group_pk: i64,
        members: &[(i64, String)],
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;

    /// Deletes member rows of a group by member id; returns the ids really deleted.
    fn delete_members(
        &mut self,
        tenant: &str,
        group_pk: i64,
        ids: &[String],
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;

    /// Deletes every member row of a group; returns the ids deleted.
    fn delete_all_members(
        &mut self,
        tenant: &str,
        group_pk: i64,
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;

    /// The pks of a group's members.
    fn member_pks(
        &mut self,
        tenant: &str,
        group_pk: i64,
    ) -> impl Future<Output = StoreResult<Vec<i64>>> + Send;

    /// How many members a group has.
    fn member_count(
        &mut self,
        tenant: &str,
        group_pk: i64,
    ) -> impl Future<Output = StoreResult<i64>> + Send;

    /// The groups (managed or not) a user is a member of, `(id, document)` in a stable order.
    fn groups_of_member(
        &mut self,
        tenant: &str,
        user_pk: i64,
    ) -> impl Future<Output = StoreResult<Vec<(String, Value)>>> + Send;

    /// The user leaves every group: each of its groups gets version + 1 and `lastModified` =
    /// `now`, and its member rows go.
    fn leave_groups(
        &mut self,
        tenant: &str,
        user_pk: i64,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The role rows of these Users (absent pks are left out).
    fn role_rows(
        &mut self,
        tenant: &str,
        pks: &[i64],
    ) -> impl Future<Output = StoreResult<Vec<RoleRow>>> + Send;

    /// For these Users, the roles of every role mapping that selects a group they are members
    /// of: `(user pk, roles)`, one entry per (membership, mapping).
    fn mapped_roles_of_members(
        &mut self,
        tenant: &str,
        pks: &[i64],
    ) -> impl Future<Output = StoreResult<Vec<(i64, Vec<String>)>>> + Send;

    /// The roles of every role mapping that selects a group with these attributes.
    fn mapped_roles_of_group(
        &mut self,
        tenant: &str,
        group: &GroupSel,
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;

    /// Reserves `n` event seqs of the tenant, in commit order with no gaps (see
    /// [`super::outbox`]); returns the first.
    fn reserve_seqs(
        &mut self,
        tenant: &str,
        n: usize,
    ) -> impl Future<Output = StoreResult<i64>> + Send;

    /// Inserts events whose seqs were reserved.
    fn insert_events(&mut self, events: &[Event]) -> impl Future<Output = StoreResult<()>> + Send;

    /// Gives `events` (all of `tenant`) the tenant's next seqs, in order, and inserts them:
    /// [`Rows::reserve_seqs`] then [`Rows::insert_events`]. A backend whose statements are
    /// round trips (PostgreSQL) does both in one statement.
    fn append_events(
        &mut self,
        tenant: &str,
        events: &mut [Event],
    ) -> impl Future<Output = StoreResult<()>> + Send {
        async move {
            let first = self.reserve_seqs(tenant, events.len()).await?;
            for (e, seq) in events.iter_mut().zip(first..) {
                e.seq = seq;
            }
            self.insert_events(events).await
        }
    }

    /// The tenant's guard row; `None` when its guard never counted anything.
    fn guard_row(
        &mut self,
        tenant: &str,
    ) -> impl Future<Output = StoreResult<Option<GuardRow>>> + Send;

    /// Stores the tenant's guard row (inserted or replaced).
    fn guard_save(
        &mut self,
        tenant: &str,
        row: &GuardRow,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Empties the tenant's window (counts and counted users) and, with `held`, its held
    /// operations.
    fn guard_clear(
        &mut self,
        tenant: &str,
        held: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Records a refused operation of `subject`: a new held row, or the existing one's latest
    /// time, operation and attempts + 1.
    fn guard_hold(
        &mut self,
        tenant: &str,
        subject: &GuardSubject,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Drops the window's buckets at or before `minute` and its users counted at or before
    /// `counted_before`.
    fn guard_prune(
        &mut self,
        tenant: &str,
        minute: i64,
        counted_before: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Whether the user is counted in the window.
    fn guard_counted(
        &mut self,
        tenant: &str,
        user_id: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// The sum of the window's buckets after `minute`.
    fn guard_window_count(
        &mut self,
        tenant: &str,
        after_minute: i64,
    ) -> impl Future<Output = StoreResult<i64>> + Send;

    /// Counts one operation of `user_id` in bucket `minute`.
    fn guard_count(
        &mut self,
        tenant: &str,
        minute: i64,
        user_id: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// How many operations are held, and the first `limit` of them (by first refusal).
    fn guard_held(
        &mut self,
        tenant: &str,
        limit: u64,
    ) -> impl Future<Output = StoreResult<(u64, Vec<HeldOperation>)>> + Send;

    /// The tenant's active managed Users (an index range count).
    fn active_users(&mut self, tenant: &str) -> impl Future<Output = StoreResult<i64>> + Send;

    /// The resource `(kind, id)` of the tenant in any state, managed or not.
    fn app_row(
        &mut self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<AppRow>>> + Send;

    /// The group with this folded displayName an app assignment goes to: an unmanaged one
    /// before a managed one, then the oldest.
    fn group_by_name(
        &mut self,
        tenant: &str,
        display_name_lc: &str,
    ) -> impl Future<Output = StoreResult<Option<AppRow>>> + Send;

    /// Inserts an unmanaged resource at version 1 with its email rows, directly assigned roles
    /// and metadata; returns its pk. `Conflict` when its userName or id is taken.
    #[allow(clippy::too_many_arguments)] // One row's columns.
    fn insert_app_resource(
        &mut self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        doc: &Value,
        derived: &Derived,
        roles: &[String],
        metadata: &Value,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<i64>> + Send;

    /// Applies an app edit to a resource row: what `change` holds, version + 1,
    /// `lastModified` = `now`. `Conflict("userName")` when a new userName is taken.
    fn change_app_resource(
        &mut self,
        tenant: &str,
        pk: i64,
        change: &AppChange<'_>,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// What the role mapping `id` selects groups by: `(by, value as given)`.
    fn mapping_selection(
        &mut self,
        tenant: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<(MatchBy, String)>>> + Send;

    /// The pks of the members of every group (managed or not) that `by` = `match_value`
    /// selects (`match_value` as [`super::app::match_value`] stores it).
    fn selected_member_pks(
        &mut self,
        tenant: &str,
        by: MatchBy,
        match_value: &str,
    ) -> impl Future<Output = StoreResult<Vec<i64>>> + Send;

    /// Inserts a role mapping. `Conflict("role mapping")` when one with the same selection or
    /// id exists.
    fn insert_mapping(
        &mut self,
        tenant: &str,
        mapping: &RoleMapping,
        match_value: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Replaces a role mapping's selection, roles and `updated_at`.
    /// `Conflict("role mapping")` when another has the same selection.
    fn update_mapping(
        &mut self,
        tenant: &str,
        mapping: &RoleMapping,
        match_value: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Deletes a role mapping.
    fn delete_mapping(
        &mut self,
        tenant: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The tenant `id` unless it is deleted.
    fn live_tenant(&mut self, id: &str)
        -> impl Future<Output = StoreResult<Option<Tenant>>> + Send;

    /// Writes a tenant's name, identity provider and settings.
    fn write_tenant(&mut self, tenant: &Tenant) -> impl Future<Output = StoreResult<()>> + Send;

    /// Whether the tenant exists (`Some`), and when it was deleted (`Some(Some(_))`).
    fn tenant_deleted_at(
        &mut self,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<Option<OffsetDateTime>>>> + Send;

    /// Marks the tenant deleted at `now` (its data stays).
    fn mark_tenant_deleted(
        &mut self,
        id: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Removes every row that names the tenant, except the audit log's, and the tenant.
    fn erase_tenant(&mut self, id: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// Inserts a token. `Conflict("token")` when its prefix exists; `NotFound` for an unknown
    /// tenant.
    fn insert_token(&mut self, token: &TokenRecord)
        -> impl Future<Output = StoreResult<()>> + Send;

    /// Revokes the tenant's live tokens at `now` (only `prefix` when given); returns the
    /// prefixes revoked.
    fn revoke_tokens(
        &mut self,
        tenant: &str,
        prefix: Option<&str>,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;

    /// The tenant's tokens neither revoked nor expired at `now`.
    fn live_token_count(
        &mut self,
        tenant: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<i64>> + Send;

    /// Marks as warned (at `now`) the tenant's live tokens not yet warned of that expire after
    /// `now` and by `before`; returns them.
    fn mark_expiring_tokens(
        &mut self,
        tenant: &str,
        before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<Vec<TokenRecord>>> + Send;

    /// The User `id` in any state, managed or not: its pk, whether it is deprovisioned, and its
    /// document.
    fn user_state(
        &mut self,
        tenant: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<(i64, bool, Value)>>> + Send;

    /// The tenant's events whose payload holds the string `id` (a scan of its events; for the
    /// rare data-protection erase), as `(seq, data)`.
    fn events_naming(
        &mut self,
        tenant: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<Vec<(i64, Value)>>> + Send;

    /// Replaces the payload of the tenant's event `seq`.
    fn rewrite_event_data(
        &mut self,
        tenant: &str,
        seq: i64,
        data: &Value,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Removes from the tenant's provisioning log what names the user `id`: rows about it (its
    /// resource id, or a userName/displayName among `needles`) lose body and name; any row whose
    /// body, detail or hint holds one of `needles` (folded, matched case-insensitively) loses
    /// that body, detail or hint. Returns the rows changed. A scan of the tenant's log.
    fn scrub_log(
        &mut self,
        tenant: &str,
        id: &str,
        needles: &[String],
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Forgets the userName the guard keeps beside a held operation of user `id`.
    fn guard_forget_name(
        &mut self,
        tenant: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Replaces the email claims of the user `pk` (see [`super::emails`]) with `values`
    /// (folded, each once): its rows go, then each value is inserted unless another user of the
    /// tenant holds it (that insert does nothing). Returns the values inserted.
    fn replace_email_claims(
        &mut self,
        tenant: &str,
        pk: i64,
        values: &[String],
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;

    /// Of these folded values, those some user of the tenant holds a claim on.
    fn claimed_emails(
        &mut self,
        tenant: &str,
        values: &[String],
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;

    /// The emails that several users share among the pairs [`super::emails::counted_sql`]
    /// selects for `mode`: how many in all, and `(email, user id, userName folded or empty)`
    /// of the first `limit` of them, by email, then id.
    fn email_duplicates(
        &mut self,
        tenant: &str,
        mode: EmailUniqueness,
        limit: u64,
    ) -> impl Future<Output = StoreResult<(u64, Vec<DuplicateRow>)>> + Send;

    /// Replaces every email claim of the tenant with the pairs
    /// [`super::emails::counted_sql`] selects for `mode` (none for `off`).
    fn refill_email_claims(
        &mut self,
        tenant: &str,
        mode: EmailUniqueness,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Whether the tenant's first-sync review is open.
    fn review_is_open(&mut self, tenant: &str) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Opens the tenant's review: its row, and a copy of the tenant's resource, member and
    /// email rows.
    fn review_open(&mut self, tenant: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// Holds `events` (their seqs are ignored) after the tenant's held events, in order.
    fn review_hold(
        &mut self,
        tenant: &str,
        events: &[Event],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The held events after place `after`, at most `limit`, in order; each event's `seq` is
    /// its place among the held (1, 2, …), not a feed seq.
    fn review_held(
        &mut self,
        tenant: &str,
        after: i64,
        limit: u64,
    ) -> impl Future<Output = StoreResult<Vec<Event>>> + Send;

    /// How many events the tenant's review holds.
    fn review_held_count(&mut self, tenant: &str) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Closes the tenant's review: its row, held events and copies go.
    fn review_close(&mut self, tenant: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// Puts the copied directory back (the statements of `review_sql`, in order): the
    /// managed rows the copy lacks are deleted; rows that changed or went get the copy's
    /// content, emails and pk back, at a new version and `lastModified` = `now`; the member
    /// rows become the copy's. Returns `(deleted, restored)`. Email claims are not touched.
    fn review_restore(
        &mut self,
        tenant: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<(u64, u64)>> + Send;

    /// The User `pk` as the copy holds it; `None` when the copy lacks it.
    fn reviewed_user(
        &mut self,
        tenant: &str,
        pk: i64,
    ) -> impl Future<Output = StoreResult<Option<ReviewedUser>>> + Send;

    /// The tenant's custom-attribute indexes (see [`super::custom_index`]), every state.
    fn custom_indexes(
        &mut self,
        tenant: &str,
    ) -> impl Future<Output = StoreResult<Vec<CustomIndex>>> + Send;

    /// Inserts or replaces the tenant's index of `index.spec` (its row only; values stay).
    fn put_custom_index(
        &mut self,
        tenant: &str,
        index: &CustomIndex,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Removes the tenant's index of attribute `attr` of `kind`, with its value rows.
    fn drop_custom_index(
        &mut self,
        tenant: &str,
        kind: ResourceKind,
        attr: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Replaces resource `pk`'s value rows of the attributes `attrs` with `values` (whose
    /// attributes are among `attrs`); `fresh`: it has none yet, nothing to delete.
    fn replace_custom_values(
        &mut self,
        tenant: &str,
        pk: i64,
        attrs: &[String],
        values: &[ValueRow],
        fresh: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The tenant's resources of `kind` (any state) with a pk above `after`, in pk order, at
    /// most `limit`: pk and document.
    fn resources_after(
        &mut self,
        tenant: &str,
        kind: ResourceKind,
        after: i64,
        limit: u64,
    ) -> impl Future<Output = StoreResult<Vec<(i64, Value)>>> + Send;
}
