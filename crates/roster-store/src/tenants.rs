//! Tenant administration: the tenant lifecycle (paged listing, updates, deletion that retains or
//! erases the data), SCIM enablement, the token rules (at most a few live tokens, rotation of
//! one or all, expiry warnings) and erasing a User. The [`TenantAdminStore`] trait is a
//! supertrait of [`Store`](crate::Store).
//!
//! Each method that changes what the host app must hear about appends its events in the same
//! transaction as the change, like every other write of the store (see [`crate::events`]):
//! `scim.enabled`, `scim.disabled`, `token.created`, `token.rotated`, `token.expiring`,
//! `group.members_removed` and `user.erased`.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::{StoreResult, Tenant, TokenRecord};

/// `StoreError::Conflict` value: the tenant already has the most live tokens allowed.
pub const CONFLICT_TOKEN_LIMIT: &str = "live_tokens";
/// `StoreError::Conflict` value: SCIM is disabled for the tenant, so no token may be issued.
pub const CONFLICT_SCIM_DISABLED: &str = "scim_disabled";
/// `StoreError::Conflict` value: SCIM is already enabled for the tenant.
pub const CONFLICT_SCIM_ENABLED: &str = "scim_enabled";
/// `first_sync_review` cannot be turned off while the review holds events (they would be
/// released unseen): approve or discard it.
pub const CONFLICT_REVIEW_HOLDS: &str = "first_sync_review";

/// What deleting a tenant does with its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantDataMode {
    /// Keep users, groups, events and logs in the database (for audit); the tenant disappears
    /// from the API and SCIM, and its id stays reserved until it is erased.
    Retain,
    /// Remove every row of the tenant (the audit log excepted, which is append-only).
    Erase,
}

/// Whether a tenant id is in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantState {
    /// No tenant has this id.
    Absent,
    /// A live tenant.
    Live(Box<Tenant>),
    /// A tenant deleted with its data retained: invisible, but its id is taken.
    Deleted {
        /// When it was deleted.
        deleted_at: OffsetDateTime,
    },
}

/// An edit of a tenant, applied inside the store's write transaction to the current state so
/// that concurrent edits cannot lose each other's changes. `Err(message)` aborts it with
/// `StoreError::Invalid(message)`.
pub type TenantEdit = Box<dyn FnOnce(&mut Tenant) -> Result<(), String> + Send>;

/// Tenant administration.
#[async_trait]
pub trait TenantAdminStore: Send + Sync {
    /// Live tenants ordered by id, those after id `after`, at most `limit`.
    async fn list_tenants_page(&self, after: Option<&str>, limit: u64) -> StoreResult<Vec<Tenant>>;

    /// Whether `id` is free, a live tenant, or a deleted tenant with retained data.
    async fn tenant_state(&self, id: &str) -> StoreResult<TenantState>;

    /// Applies `edit` to a live tenant's name, idp and settings in one transaction and returns
    /// the result. `NotFound` for an unknown tenant; `Invalid` when the edit refuses, or when it
    /// changes the id or `settings.scim_enabled` (which only [`enable_scim`] and
    /// [`disable_scim`] change, because they also issue or revoke tokens).
    ///
    /// [`enable_scim`]: TenantAdminStore::enable_scim
    /// [`disable_scim`]: TenantAdminStore::disable_scim
    async fn update_tenant(&self, id: &str, edit: TenantEdit) -> StoreResult<Tenant>;

    /// Turns SCIM on and stores `token`, in one transaction; emits `scim.enabled` then
    /// `token.created`. `Conflict(CONFLICT_SCIM_ENABLED)` when SCIM is already enabled,
    /// `NotFound` for an unknown tenant.
    async fn enable_scim(&self, token: &TokenRecord, now: OffsetDateTime) -> StoreResult<()>;

    /// Turns SCIM off and revokes every live token of the tenant, in one transaction; emits
    /// `scim.disabled` with the revoked prefixes. Returns them (empty, and no event, when SCIM
    /// was already disabled). `NotFound` for an unknown tenant.
    async fn disable_scim(&self, tenant: &str, now: OffsetDateTime) -> StoreResult<Vec<String>>;

    /// Stores a new token unless the tenant already has `max_live` live tokens (unrevoked and
    /// unexpired at `now`); emits `token.created`. `Conflict(CONFLICT_TOKEN_LIMIT)` at the
    /// limit, `Conflict(CONFLICT_SCIM_DISABLED)` when SCIM is disabled, `NotFound` for an
    /// unknown tenant.
    async fn create_token(
        &self,
        token: &TokenRecord,
        max_live: u32,
        now: OffsetDateTime,
    ) -> StoreResult<()>;

    /// Revokes the live token `replace` (or, with `None`, every live token of the tenant) and
    /// stores `token`, in one transaction; emits `token.rotated`. Returns the revoked prefixes.
    /// `NotFound` when `replace` is not a live token of the tenant or the tenant is unknown;
    /// `Conflict(CONFLICT_SCIM_DISABLED)` when SCIM is disabled.
    async fn rotate_token(
        &self,
        token: &TokenRecord,
        replace: Option<&str>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<String>>;

    /// Deletes a live tenant, or erases one deleted earlier with its data retained. Every
    /// token stops working in the same transaction. `Retain` marks the tenant deleted and keeps
    /// its rows; `Erase` removes every row that names the tenant (the audit log excepted).
    /// `NotFound` for an unknown tenant (or a retained one asked to be retained again).
    async fn delete_tenant(
        &self,
        id: &str,
        mode: TenantDataMode,
        now: OffsetDateTime,
    ) -> StoreResult<()>;

    /// Finds the tenant's live tokens that expire at or before `before` and were never
    /// announced, marks them announced and emits `token.expiring` for each, in one
    /// transaction, so that each token is announced once however often (and by however many
    /// processes) this runs. Returns them.
    async fn warn_expiring_tokens(
        &self,
        tenant: &str,
        before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<TokenRecord>>;

    /// Erases a live User: its record, emails and memberships. Emits `group.members_removed`
    /// for each group that loses it, then `user.erased`. `NotFound` if there is no such live
    /// User.
    async fn erase_user(&self, tenant: &str, id: &str, now: OffsetDateTime) -> StoreResult<()>;

    /// A data-protection erase of one deprovisioned User (see
    /// [`crate::domain::erasure::erase_personal_data`]): its record goes and the events and
    /// provisioning-log rows that name it lose their personal fields, in one transaction.
    /// `Invalid` while the user is live; `NotFound` when nothing names it.
    async fn erase_personal_data(
        &self,
        tenant: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<crate::Erasure>;

    /// The tenant's open first-sync review: a summary of its held events and the users they
    /// touch after id `after` (at most `limit`). `None` while none is open.
    async fn review_status(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: u64,
    ) -> StoreResult<Option<crate::ReviewStatus>>;

    /// Approves the tenant's review (see [`crate::domain::review::approve`]): its held events
    /// reach the feed, in order, with new seqs. `Invalid` when none is open.
    async fn review_approve(&self, tenant: &str) -> StoreResult<crate::ReviewOutcome>;

    /// Discards the tenant's review (see [`crate::domain::review::discard`]): the directory is
    /// put back, nothing is released, SCIM is disabled. `Invalid` when none is open.
    async fn review_discard(
        &self,
        tenant: &str,
        now: OffsetDateTime,
    ) -> StoreResult<crate::ReviewOutcome>;

    /// The tenant's custom-attribute indexes and their state.
    async fn custom_indexes(&self, tenant: &str) -> StoreResult<Vec<crate::CustomIndex>>;

    /// Makes the tenant's custom-attribute indexes those of `wanted` (see
    /// [`crate::domain::custom_index::sync`]), in the tenant's write transaction, so that every
    /// later write indexes its values; with `retry_failed`, failed builds start over. Returns
    /// whether anything changed.
    async fn sync_custom_indexes(
        &self,
        tenant: &str,
        wanted: &[crate::IndexSpec],
        retry_failed: bool,
    ) -> StoreResult<bool>;

    /// One backfill step of the tenant's first building index: at most `limit` resources, in
    /// one write transaction. Returns how many it indexed (0: nothing is building).
    async fn backfill_custom_index(&self, tenant: &str, limit: u64) -> StoreResult<u64>;

    /// The tenants that have an index being built.
    async fn building_custom_indexes(&self) -> StoreResult<Vec<String>>;
}
