//! Roster's storage: the [`Store`] trait and its SQLite implementation.
//!
//! The store keeps tenants, tokens (hashes only), resources as JSON documents with indexed
//! columns beside them (userName, externalId, displayName, active, timestamps, email values),
//! and Group membership as one row per (group, member). It has no rules about SCIM content:
//! the protocol core validates documents before they arrive here. It never builds HTTP
//! responses.
//!
//! Besides the directory, the store owns the outbox ([`events`]: every write appends its events
//! in the same transaction) and the operator-side records ([`ops`]: admin keys, webhooks and
//! delivery streams, the provisioning log and the audit log), and [`meta`] records server-wide
//! values such as the public URL.

use async_trait::async_trait;
use scim_proto::filter::ValidFilter;
use scim_proto::schema::ResourceKind;
use serde_json::Value;
use time::OffsetDateTime;

pub mod app;
pub mod catalogue;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod console;
pub mod copy;
pub(crate) mod custom_index_sql;
pub mod delivery;
pub(crate) mod delivery_sql;
pub(crate) mod domain;
pub mod events;
pub mod health;
pub(crate) mod health_sql;
pub(crate) mod list_sql;
pub mod meta;
pub mod ops;
pub mod postgres;
pub(crate) mod review_sql;
pub mod sqlite;
pub(crate) mod stored_form;
pub mod tenants;

pub use app::AppStore;
pub use catalogue::{CatalogueRole, RoleCatalogueStore};
pub use console::{ConsoleSession, ConsoleStore, Operator, SetupLink};
pub use domain::custom_index::{
    matches_wanted as custom_indexes_match, wanted as indexed_attributes, CustomIndex, IndexSpec,
    IndexState,
};
pub use domain::erasure::Erasure;
pub use domain::review::{
    ReviewOutcome, ReviewStatus, ReviewSummary, ReviewUser, MAX_LISTED as REVIEW_MAX_LISTED,
};

pub use delivery::{DeliveryStore, StreamLag, WebhookAttempt, ATTEMPTS_KEPT};
pub use events::{Event, EventStore, EventType, NewEvent, Snapshot, SnapshotPart, SnapshotStream};
pub use health::{hour_of, HealthStore, HourCount, TenantHealth, WebhookHealth};
pub use meta::MetaStore;
pub use ops::{
    minute_of, AdminKeyRecord, AuditEntry, DeliveryResult, DroppedCount, LastRequest, LogQuery,
    LogStore, Outcome, ProvisioningEntry, ReadCount, ReadQuery, SecretTexts, StatusClass,
    StreamState, Webhook, WebhookStore, WebhookStream,
};
pub use tenants::{TenantAdminStore, TenantDataMode, TenantEdit, TenantState};

/// Errors the store reports.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed row does not exist (or belongs to another tenant).
    #[error("not found")]
    NotFound,
    /// A unique constraint would be violated; the value names the attribute (`userName`, ...).
    #[error("unique constraint on `{0}` violated")]
    Conflict(&'static str),
    /// The row changed since it was read (optimistic concurrency).
    #[error("version precondition failed")]
    Stale,
    /// The request is well-formed but cannot be served (e.g. an invalid cursor).
    #[error("{0}")]
    Invalid(String),
    /// The deprovisioning guard refused the deactivation this update carried
    /// ([`ResourceUpdate::guard`]): the update was not applied; the guard's own record of the
    /// refused operation was kept.
    #[error("the deprovisioning guard refused the deactivation")]
    GuardRefused(Box<app::GuardStatus>),
    /// A filter or sort that SQL cannot answer exactly would evaluate more resources in
    /// memory than [`ListQuery::max_candidates`] allows; nothing was read beyond the count.
    #[error("the query would evaluate {candidates} resources in memory (the limit is {limit})")]
    TooMany {
        /// Resources the query would evaluate.
        candidates: u64,
        /// The limit.
        limit: u64,
    },
    /// The database failed.
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// The database cannot be reached now (down, restarting, every connection busy past the
    /// wait): nothing was written, and the same request may succeed later.
    #[error("the database is unavailable: {0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    /// The tenant's `email_uniqueness` refused the write: another user of the tenant already
    /// has this email (the value as the written document gives it). Nothing was written.
    #[error("the email \"{0}\" is already the email of another user of this tenant")]
    EmailTaken(String),
    /// A change of `email_uniqueness` was refused: users of the tenant share emails that the
    /// new setting would count. Nothing was written.
    #[error("{} emails are shared by several users of this tenant", .0.total)]
    EmailDuplicates(Box<EmailDuplicates>),
}

/// The emails that users of a tenant share, as a change of `email_uniqueness` finds them
/// (see [`StoreError::EmailDuplicates`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailDuplicates {
    /// The setting asked for.
    pub mode: EmailUniqueness,
    /// How many emails are shared in all.
    pub total: u64,
    /// The first of them (by email), at most [`EmailDuplicates::SHOWN`].
    pub shown: Vec<EmailDuplicate>,
}

impl EmailDuplicates {
    /// Most duplicates listed.
    pub const SHOWN: u64 = 20;
}

/// One email that several users share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailDuplicate {
    /// The email, folded.
    pub email: String,
    /// The users that have it: `(id, userName folded)`, by id.
    pub users: Vec<(String, String)>,
}

/// One connection pool of a store (see [`Store::pool_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Which pool: `read` (SQLite's read-only connections), `main` (PostgreSQL).
    pub name: &'static str,
    /// Most connections it may hold.
    pub size: usize,
    /// Connections taken now.
    pub in_use: usize,
    /// Callers waiting for one.
    pub waiting: usize,
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// What `DELETE` of a User does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeprovisionMode {
    /// Keep the record, deactivated and invisible to SCIM (the default).
    #[default]
    Retain,
    /// Erase the record.
    Erase,
}

/// What a SCIM create does when an existing, unmanaged app user has the same userName or
/// primary email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExistingUserMode {
    /// That user becomes SCIM-managed (same app id, history kept); the default.
    #[default]
    Match,
    /// 409 `uniqueness` naming the conflict.
    Reject,
}

/// Whether two users of a tenant may have the same email (compared case-insensitively). Users
/// that count: active and deactivated ones, and app users not managed by SCIM; deprovisioned
/// ones do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailUniqueness {
    /// They may (the default).
    #[default]
    Off,
    /// No two users may have the same primary email: a user's element marked
    /// `"primary": true`, or, when none is marked, its email if all its elements have the
    /// same one (typically: it has exactly one). A user with several different emails, none
    /// marked primary, has no primary email.
    Primary,
    /// No two users may have an email in common, whichever element it is.
    Any,
}

impl EmailUniqueness {
    /// Whether it is [`EmailUniqueness::Off`].
    #[must_use]
    pub fn is_off(&self) -> bool {
        *self == Self::Off
    }

    /// Its name in the settings: `off`, `primary`, `any`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Primary => "primary",
            Self::Any => "any",
        }
    }
}

/// The mass-deprovisioning guard: refuse further deactivations and deletions once, within
/// `window_minutes`, they exceed `max_percent` of the tenant's active users AND `min_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeprovisionGuard {
    /// Whether the guard is on.
    pub enabled: bool,
    /// Share of active users, in percent, above which the guard trips.
    pub max_percent: u32,
    /// Number of deactivations/deletions above which the guard may trip.
    pub min_count: u32,
    /// The sliding window, in minutes.
    pub window_minutes: u32,
}

impl Default for DeprovisionGuard {
    fn default() -> Self {
        Self {
            enabled: true,
            max_percent: 20,
            min_count: 10,
            window_minutes: 15,
        }
    }
}

/// A tenant's settings. Stored as one JSON object; absent keys take these defaults.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// Whether SCIM requests are served (tokens work) for this tenant.
    pub scim_enabled: bool,
    /// Whether Groups are synced; when false, Group endpoints answer 404 and discovery omits
    /// the Group resource type.
    pub groups_enabled: bool,
    /// What `DELETE` of a User does.
    pub deprovision_on_delete: DeprovisionMode,
    /// How a SCIM create treats a matching existing app user.
    pub on_existing_user: ExistingUserMode,
    /// Emit `user.welcome` when SCIM creates a user.
    pub welcome_email: bool,
    /// Only SCIM-provisioned, active users may sign in.
    pub sso_enforced: bool,
    /// Lifetime of new tokens, in days.
    pub token_ttl_days: u32,
    /// Emit `token.expiring` this many days before a token expires.
    pub token_expiry_warning_days: u32,
    /// The mass-deprovisioning guard.
    pub deprovision_guard: DeprovisionGuard,
    /// This tenant's SCIM rate limits, where they differ from the server's. Not stored while
    /// empty, so that a previous release (which refuses settings it does not know) still
    /// reads the tenant during a rolling upgrade.
    #[serde(skip_serializing_if = "RateLimitOverride::is_empty")]
    pub rate_limit: RateLimitOverride,
    /// Whether two users may share an email. Not stored while `off`, for the same reason as
    /// `rate_limit`.
    #[serde(skip_serializing_if = "EmailUniqueness::is_off")]
    pub email_uniqueness: EmailUniqueness,
    /// The schema extensions this tenant's host app declared for its own attributes
    /// (`costCenter`, `region`, ...). Changed only through the custom-schema operation, which
    /// checks what removing or retyping an attribute does to stored values; not stored while
    /// empty, for the same reason as `rate_limit`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_schemas: Vec<scim_proto::custom::CustomSchema>,
    /// While on, the tenant's SCIM writes are applied but their events are held for an
    /// operator's approval (see docs/scim.md, "First-sync review"). Not stored while off.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub first_sync_review: bool,
    /// Who may confirm or reject what the mass-deprovisioning guard holds. Not stored while
    /// `operator` (the default), for the same reason as `rate_limit`.
    #[serde(skip_serializing_if = "GuardDecider::is_operator")]
    pub guard_decided_by: GuardDecider,
    /// The roles of the role catalogue that the tenant's IT admin (a setup-link session) may
    /// grant, in role mappings and to app users. Empty (the default, not stored): none, once
    /// the catalogue declares roles; operators may grant every catalogue role.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grantable_roles: Vec<String>,
}

/// Who decides on what the mass-deprovisioning guard holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardDecider {
    /// Only operators (the default).
    #[default]
    Operator,
    /// The tenant's IT admin too (operators always may).
    ItAdmin,
}

impl GuardDecider {
    /// Whether it is [`GuardDecider::Operator`].
    #[must_use]
    pub fn is_operator(&self) -> bool {
        *self == Self::Operator
    }

    /// Its name in the settings: `operator`, `it_admin`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::ItAdmin => "it_admin",
        }
    }
}

/// A tenant's own SCIM rate limits, as rates such as `50/s:200` (N per s, min or h, with an
/// optional burst; checked by the server); `None` takes the server's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitOverride {
    /// Requests per token.
    pub per_token: Option<String>,
    /// Requests per tenant, all its tokens together.
    pub per_tenant: Option<String>,
}

impl RateLimitOverride {
    /// Whether nothing is overridden.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.per_token.is_none() && self.per_tenant.is_none()
    }
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            scim_enabled: true,
            groups_enabled: true,
            deprovision_on_delete: DeprovisionMode::Retain,
            on_existing_user: ExistingUserMode::Match,
            welcome_email: false,
            sso_enforced: false,
            token_ttl_days: 365,
            token_expiry_warning_days: 30,
            deprovision_guard: DeprovisionGuard::default(),
            rate_limit: RateLimitOverride::default(),
            email_uniqueness: EmailUniqueness::Off,
            custom_schemas: Vec::new(),
            first_sync_review: false,
            guard_decided_by: GuardDecider::Operator,
            grantable_roles: Vec::new(),
        }
    }
}

/// A tenant: one customer organisation with its own SCIM base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// URL-safe id, used in `/scim/v2/{id}`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The identity provider in use (`okta`, `entra`, ..., `generic`).
    pub idp: String,
    /// When created.
    pub created_at: OffsetDateTime,
    /// Settings.
    pub settings: TenantSettings,
}

impl Tenant {
    /// The tenant's definition of `kind`: the built-in schemas with its custom extensions (the
    /// global ones, see [`set_global_custom_schemas`], and its own).
    #[must_use]
    pub fn def(&self, kind: scim_proto::schema::ResourceKind) -> scim_proto::schema::TypeDef {
        let global = global_custom_schemas();
        if global.is_empty() {
            return scim_proto::custom::resource_type(kind, &self.settings.custom_schemas);
        }
        let declared = scim_proto::custom::effective(&global, &self.settings.custom_schemas);
        scim_proto::custom::resource_type(kind, &declared)
    }

    /// The custom schemas the tenant works with: the global ones it does not override, then
    /// its own.
    #[must_use]
    pub fn custom_schemas(&self) -> Vec<scim_proto::custom::CustomSchema> {
        scim_proto::custom::effective(&global_custom_schemas(), &self.settings.custom_schemas)
    }
}

/// The custom schemas declared for every tenant, as this process last read them from the
/// database (meta key [`meta::GLOBAL_CUSTOM_SCHEMAS`]).
///
/// Why a process-wide value: one process serves one database, whose global declarations are
/// one value, and every definition of a tenant's types ([`Tenant::def`]) needs it; the server
/// refreshes it from the database every second so that every node follows a change.
static GLOBAL_CUSTOM_SCHEMAS: std::sync::RwLock<
    Option<std::sync::Arc<Vec<scim_proto::custom::CustomSchema>>>,
> = std::sync::RwLock::new(None);

/// The global custom schemas this process knows (empty until set).
#[must_use]
pub fn global_custom_schemas() -> std::sync::Arc<Vec<scim_proto::custom::CustomSchema>> {
    GLOBAL_CUSTOM_SCHEMAS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
        .unwrap_or_default()
}

/// Replaces the global custom schemas this process knows.
pub fn set_global_custom_schemas(schemas: Vec<scim_proto::custom::CustomSchema>) {
    *GLOBAL_CUSTOM_SCHEMAS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::sync::Arc::new(schemas));
}

/// Reads the global custom schemas from the database into this process
/// ([`set_global_custom_schemas`]); returns whether they changed.
///
/// # Errors
/// The store's, or `Backend` when the stored value is not a list of declarations.
pub async fn load_global_custom_schemas(store: &dyn MetaStore) -> StoreResult<bool> {
    let stored = store.meta(meta::GLOBAL_CUSTOM_SCHEMAS).await?;
    let schemas: Vec<scim_proto::custom::CustomSchema> = match stored {
        Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::Backend(Box::new(e)))?,
        None => Vec::new(),
    };
    if *global_custom_schemas() == schemas {
        return Ok(false);
    }
    set_global_custom_schemas(schemas);
    Ok(true)
}

/// A bearer token's stored record. The secret itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The public, recognisable part of the token (unique), used to list and revoke it.
    pub prefix: String,
    /// The tenant the token is valid for.
    pub tenant_id: String,
    /// Hex SHA-256 of the whole token.
    pub hash: String,
    /// When created.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// When last used successfully.
    pub last_used_at: Option<OffsetDateTime>,
    /// When revoked (by rotation or explicitly).
    pub revoked_at: Option<OffsetDateTime>,
}

/// A resource as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    /// The SCIM `id`.
    pub id: String,
    /// User or Group.
    pub kind: ResourceKind,
    /// The stored document (no `id`, `meta`, `members`, `groups` or `password`).
    pub doc: Value,
    /// Increases with every change; the ETag is derived from it.
    pub version: i64,
    /// `meta.created`.
    pub created: OffsetDateTime,
    /// `meta.lastModified`.
    pub last_modified: OffsetDateTime,
}

/// A resource to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewResource {
    /// The SCIM `id` to assign.
    pub id: String,
    /// The stored document.
    pub doc: Value,
    /// A password hash, for Users that were given a password.
    pub password_hash: Option<String>,
    /// Initial Group member ids (Users of the same tenant; the store checks they exist).
    pub members: Vec<String>,
    /// Events appended after the store's own (`user.created`/`user.restored`/`group.created`
    /// and `group.members_added`), in the same transaction.
    pub events: Vec<NewEvent>,
}

/// Whether a create made a new resource or restored a deprovisioned User.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    /// A new resource.
    Created(StoredResource),
    /// A deprovisioned User with the same userName was restored, keeping its id.
    Restored(StoredResource),
    /// An existing app user (or group) not managed by SCIM was matched and is now managed,
    /// keeping its id (see [`app`]).
    Matched(StoredResource),
}

/// A change to Group membership rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberOp {
    /// Add these member ids; already-present ones are left alone.
    Add(Vec<String>),
    /// Remove these member ids; absent ones are ignored.
    Remove(Vec<String>),
    /// Remove every member.
    RemoveAll,
}

/// The conditions of a [`Store::delete_resource`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deletion {
    /// The version the caller saw (`If-Match`): the delete happens only if it is still current.
    pub expected_version: Option<i64>,
    /// `Some` when the delete removes an active User's access: the deprovisioning guard admits
    /// it in the delete's own transaction, so a refused or failed delete leaves no count behind.
    pub guard: Option<app::GuardSubject>,
}

/// A replacement of a resource's stored state.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceUpdate {
    /// The new stored document.
    pub doc: Value,
    /// `Some` to set a new password hash.
    pub password_hash: Option<String>,
    /// Membership changes, applied in order in the same transaction.
    pub members: Vec<MemberOp>,
    /// The events describing the document change (`user.updated` with its diff,
    /// `user.deactivated`, ...), appended in the same transaction before the store's own
    /// `group.members_added`/`group.members_removed`.
    pub events: Vec<NewEvent>,
    /// `Some` when the update deactivates an active User: the deprovisioning guard admits it
    /// in the update's own transaction, so that an update that fails (a stale version) leaves
    /// no count behind and a deactivation costs one commit. Refused, the update is not applied
    /// and the store answers [`StoreError::GuardRefused`].
    pub guard: Option<app::GuardSubject>,
}

/// A canonical sort key (resolved by the caller against the schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortSpec {
    /// Extension URN, `None` for core and common attributes.
    pub urn: Option<String>,
    /// Canonical attribute name.
    pub attr: String,
    /// Canonical sub-attribute name.
    pub sub_attr: Option<String>,
    /// `sortOrder=descending`.
    pub descending: bool,
    /// Whether strings compare case-exactly, from the attribute's definition (the store does
    /// not know a tenant's custom attributes, so the caller, which resolved the path, says).
    pub case_exact: bool,
}

/// Which page of results to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRequest {
    /// `startIndex` (1-based) and `count` (RFC 7644 §3.4.2.4).
    Index {
        /// 1-based index of the first result.
        start_index: u64,
        /// Maximum number of results (0 = count only).
        count: u64,
    },
    /// RFC 9865 cursor pagination: `cursor` (`None` = first page) and `count`.
    Cursor {
        /// The opaque cursor from a previous `nextCursor`.
        cursor: Option<String>,
        /// Maximum number of results.
        count: u64,
    },
}

/// A list query.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// The filter, already validated for this resource kind.
    pub filter: Option<ValidFilter>,
    /// The sort order; `None` is creation order.
    pub sort: Option<SortSpec>,
    /// Which page.
    pub page: PageRequest,
    /// Most candidates a filter or sort that SQL cannot answer exactly may evaluate in memory;
    /// a query over more is refused with [`StoreError::TooMany`] (`None`: no cap).
    pub max_candidates: Option<u64>,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Number of matching resources in all pages.
    pub total: u64,
    /// This page.
    pub items: Vec<StoredResource>,
    /// For cursor pagination: the cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
    /// Resources evaluated in memory to answer (0 when SQL answered exactly): the request's
    /// cost beyond a lookup.
    pub examined: u64,
}

/// A Group member as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member User's id.
    pub id: String,
}

/// A group a User belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    /// The Group's id.
    pub id: String,
    /// The Group's displayName.
    pub display_name: String,
}

/// Roster's storage contract. Every method is scoped to one tenant where it touches
/// tenant data.
///
/// Every write that changes a resource or a token appends its events to the tenant's outbox in
/// the same transaction (see [`events`]); the outbox, webhooks and logs are in the supertraits.
#[async_trait]
pub trait Store:
    EventStore
    + WebhookStore
    + LogStore
    + TenantAdminStore
    + AppStore
    + ConsoleStore
    + MetaStore
    + HealthStore
    + RoleCatalogueStore
    + DeliveryStore
    + Send
    + Sync
{
    /// Creates a tenant. `Conflict("tenant")` if the id is taken.
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    /// Looks a live tenant up by id (a deleted one is `None`).
    async fn get_tenant(&self, id: &str) -> StoreResult<Option<Tenant>>;
    /// All live tenants, by creation time.
    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>>;

    /// Stores a new token record; emits `token.created`.
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()>;
    /// Revokes every live token of the tenant and stores `token`, in one transaction; emits
    /// `token.rotated`.
    async fn rotate_tokens(&self, token: &TokenRecord, now: OffsetDateTime) -> StoreResult<()>;
    /// Revokes one token; emits `token.revoked`. `NotFound` if the tenant has no live token
    /// with that prefix.
    async fn revoke_token(
        &self,
        tenant: &str,
        prefix: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()>;
    /// The tenant's tokens, newest first, revoked ones included.
    async fn list_tokens(&self, tenant: &str) -> StoreResult<Vec<TokenRecord>>;
    /// Finds a token by prefix.
    async fn find_token(&self, prefix: &str) -> StoreResult<Option<TokenRecord>>;
    /// Records a successful use.
    async fn touch_token(&self, prefix: &str, now: OffsetDateTime) -> StoreResult<()>;
    /// Records successful uses of many tokens in one transaction (the server's background
    /// flush): `last_used_at` becomes the later of the stored value and the given time, so
    /// that flushes of several processes never move it back. Unknown prefixes are ignored.
    /// Does not move [`auth_epoch`](Store::auth_epoch): a use changes nothing that
    /// authentication depends on.
    async fn touch_tokens(&self, uses: &[(String, OffsetDateTime)]) -> StoreResult<()>;

    /// The persistent authentication epoch: a counter that every committed change to tokens,
    /// tenants or admin keys moves, in the transaction of the change, whichever process made
    /// it. A server caching those rows reads it periodically and drops its cache when it moved
    /// (one tiny query, never per request).
    async fn auth_epoch(&self) -> StoreResult<i64>;
    /// This process's view of the same: a counter moved after every change to tokens, tenants
    /// or admin keys made through this store value (and its clones) has committed. Reading it
    /// costs an atomic load, so a cache can check it on every request and drop what it holds
    /// at once when a change of its own process committed.
    fn auth_changes(&self) -> u64;

    /// The connection pools this store holds, for metrics: how many connections each may
    /// open and how many are taken now.
    fn pool_status(&self) -> Vec<PoolStatus> {
        Vec::new()
    }

    /// Creates a resource, or restores a deprovisioned User with the same userName; emits
    /// `user.created`, `user.restored` or `group.created` (+ `group.members_added`), then
    /// `new.events`.
    /// `Conflict("userName")` when a live User has the userName (case-insensitively);
    /// `EmailTaken` when the tenant's `email_uniqueness` counts an email another user has;
    /// `Invalid` when a member id is not a User of the tenant.
    async fn create_resource(
        &self,
        tenant: &str,
        kind: ResourceKind,
        new: NewResource,
        now: OffsetDateTime,
    ) -> StoreResult<CreateOutcome>;
    /// Reads a live resource.
    async fn get_resource(
        &self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
    ) -> StoreResult<Option<StoredResource>>;
    /// Lists live resources.
    async fn list_resources(
        &self,
        tenant: &str,
        kind: ResourceKind,
        query: &ListQuery,
    ) -> StoreResult<Page>;
    /// Replaces a resource's state if its version is still `expected_version` (`Stale`
    /// otherwise), bumping the version and `lastModified`; appends `update.events`, then
    /// `group.members_added`/`group.members_removed` for the member rows that really changed.
    /// `EmailTaken` when the tenant's `email_uniqueness` counts an email another user has.
    async fn update_resource(
        &self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        expected_version: i64,
        update: ResourceUpdate,
        now: OffsetDateTime,
    ) -> StoreResult<StoredResource>;
    /// Applies membership changes to a Group and bumps its version and `lastModified`, leaving
    /// its document alone and without a version precondition: members are rows, so concurrent
    /// member changes by different requests never conflict with each other. Emits
    /// `group.members_added`/`group.members_removed` for the rows that really changed.
    async fn update_members(
        &self,
        tenant: &str,
        group_id: &str,
        ops: &[MemberOp],
        now: OffsetDateTime,
    ) -> StoreResult<StoredResource>;
    /// A SCIM `DELETE`: a User is deprovisioned (retained, deactivated, invisible to SCIM,
    /// removed from its groups), or erased when the tenant's `deprovision_on_delete` is
    /// `erase`; a Group is removed with its membership rows. Emits `group.members_removed` for
    /// each group that loses the User, then `user.deprovisioned` or `user.erased`; or
    /// `group.deleted`. With [`Deletion::expected_version`], `Stale` when the resource changed;
    /// with [`Deletion::guard`], the deprovisioning guard admits it in the same transaction
    /// (refused: [`StoreError::GuardRefused`], nothing deleted, the guard's record kept).
    async fn delete_resource(
        &self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        deletion: Deletion,
        now: OffsetDateTime,
    ) -> StoreResult<()>;

    /// A page of a Group's members in a stable order, after member id `after`.
    async fn list_members(
        &self,
        tenant: &str,
        group_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> StoreResult<Vec<Member>>;
    /// The groups a User belongs to.
    async fn groups_of_user(&self, tenant: &str, user_id: &str) -> StoreResult<Vec<GroupRef>>;

    // The read path of SCIM: one call per request, one read transaction on one connection,
    // and a bounded number of statements whatever the page size (see `Relations`).

    /// Reads a live resource and, as `with` asks, its relations (a User's `groups`, a Group's
    /// member ids), in one read transaction: resource and relations are one snapshot.
    /// `None` when there is no such live resource in the tenant. A relation that does not
    /// apply to `kind` is ignored (left `None`). Costs one statement per relation asked for
    /// plus one (a backend may fold them into fewer).
    async fn read_resource(
        &self,
        tenant: &str,
        kind: ResourceKind,
        id: &str,
        with: Relations,
    ) -> StoreResult<Option<ResourceRead>>;
    /// Lists live resources as [`Store::list_resources`] does and, as `with` asks, the
    /// relations of every resource of the page, in one read transaction. The relations of a
    /// whole page cost a bounded number of statements, independent of the page size (one per
    /// relation on SQLite for pages up to the maximum `count`), never one per resource.
    /// Errors as [`Store::list_resources`].
    async fn read_page(
        &self,
        tenant: &str,
        kind: ResourceKind,
        query: &ListQuery,
        with: Relations,
    ) -> StoreResult<PageRead>;
    /// Reads a live Group and opens a stream of its member ids, in id order, `page` ids per
    /// item (the last item may be shorter; a group without members yields no item). The
    /// group row and every page are read in one read transaction held by the stream (a
    /// consistent snapshot: members added or removed meanwhile are not seen, none is seen
    /// twice or skipped), with keyset pagination (`member_id > last`), so memory stays bounded
    /// by one page however large the group. The transaction holds one reader connection until
    /// the stream ends or is dropped: consume it promptly. `None` when there is no such live
    /// Group; `Invalid` when `page` is 0.
    async fn stream_group(
        &self,
        tenant: &str,
        group_id: &str,
        page: u64,
    ) -> StoreResult<Option<GroupStream>>;
}

/// Which relations a read returns besides the stored resources. Each is read only when asked
/// for, so `excludedAttributes=members` (or `groups`) never touches the membership rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Relations {
    /// For Users: the groups each User belongs to (its read-only `groups` attribute).
    pub groups: bool,
    /// For Groups: every member id of each Group, in id order. For one large Group prefer
    /// [`Store::stream_group`], which does not hold the whole list in memory.
    pub members: bool,
}

impl Relations {
    /// No relation: the stored resources only.
    pub const NONE: Relations = Relations {
        groups: false,
        members: false,
    };
}

/// A resource as read by [`Store::read_resource`] or [`Store::read_page`], with the relations
/// that were asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRead {
    /// The stored resource.
    pub resource: StoredResource,
    /// A User's groups ordered by Group id, when [`Relations::groups`] was asked for (empty
    /// when it belongs to none); `None` otherwise and for Groups.
    pub groups: Option<Vec<GroupRef>>,
    /// A Group's member ids in id order, when [`Relations::members`] was asked for; `None`
    /// otherwise and for Users.
    pub members: Option<Vec<String>>,
}

/// One page of results with their relations (see [`Page`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PageRead {
    /// Number of matching resources in all pages.
    pub total: u64,
    /// This page, in the order of the query.
    pub items: Vec<ResourceRead>,
    /// For cursor pagination: the cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
    /// Resources evaluated in memory to answer (see [`Page::examined`]).
    pub examined: u64,
}

/// Pages of member ids read from an open read transaction (see [`Store::stream_group`]).
pub type MemberPages = futures::stream::BoxStream<'static, StoreResult<Vec<String>>>;

/// A Group and the stream of its members, from one read transaction (see
/// [`Store::stream_group`]).
pub struct GroupStream {
    /// The Group as stored.
    pub group: StoredResource,
    /// Its member ids, a page per item.
    pub members: MemberPages,
}

impl std::fmt::Debug for GroupStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupStream")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}
