//! Operator-side storage: admin API keys, webhook endpoints and their delivery streams, the
//! provisioning log and the audit log.

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;

use crate::StoreResult;

/// An operator API key's stored record (the key itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminKeyRecord {
    /// The public, recognisable part of the key (unique).
    pub prefix: String,
    /// Hex SHA-256 of the whole key.
    pub hash: String,
    /// An optional label.
    pub name: Option<String>,
    /// When created.
    pub created_at: OffsetDateTime,
    /// When last used successfully.
    pub last_used_at: Option<OffsetDateTime>,
    /// When revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// When it stops working; `None`: never.
    pub expires_at: Option<OffsetDateTime>,
    /// What it may do (scope names, checked by the server); `None`: everything.
    pub scopes: Option<Vec<String>>,
}

/// A webhook endpoint.
///
/// The secrets are stored recoverably: signing with HMAC needs the secret itself. The store
/// keeps whatever text it is given: the server seals secrets before they are written (with the
/// key of `--secret-key-file`) and opens them where it signs; rows written before that hold
/// them in clear. They must never be logged nor returned after creation or rotation; `Debug`
/// redacts them.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Id (`wh_…`).
    pub id: String,
    /// The one tenant it receives events of; `None` = every tenant.
    pub tenant_id: Option<String>,
    /// Where events are POSTed.
    pub url: String,
    /// A label.
    pub description: Option<String>,
    /// Event type names it receives; empty = every type.
    pub event_types: Vec<String>,
    /// The current signing secret.
    pub secret: String,
    /// The secret before the last rotation, still used to sign until `previous_expires_at`.
    pub previous_secret: Option<String>,
    /// When `previous_secret` stops signing.
    pub previous_expires_at: Option<OffsetDateTime>,
    /// Whether deliveries run.
    pub enabled: bool,
    /// When created.
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("secret", &"[redacted]")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// The secrets that sign a delivery at `now`: the current one, plus the previous one
    /// during a rotation.
    #[must_use]
    pub fn signing_secrets(&self, now: OffsetDateTime) -> Vec<&str> {
        let mut out = vec![self.secret.as_str()];
        if let (Some(prev), Some(until)) = (&self.previous_secret, self.previous_expires_at) {
            if now < until {
                out.push(prev.as_str());
            }
        }
        out
    }

    /// The stored texts of its secrets, for [`WebhookStore::replace_webhook_secrets`].
    #[must_use]
    pub fn secret_texts(&self) -> SecretTexts {
        SecretTexts {
            secret: self.secret.clone(),
            previous_secret: self.previous_secret.clone(),
        }
    }

    /// Whether the webhook receives events of this type.
    #[must_use]
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }
}

/// The stored texts of a webhook's secrets: the current one and the previous one (sealed, or
/// in clear in rows written before secrets were sealed). `Debug` redacts them.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretTexts {
    /// The text of [`Webhook::secret`].
    pub secret: String,
    /// The text of [`Webhook::previous_secret`].
    pub previous_secret: Option<String>,
}

impl std::fmt::Debug for SecretTexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretTexts").finish_non_exhaustive()
    }
}

/// Whether a delivery stream runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// Delivering (possibly waiting for a retry).
    Active,
    /// Retries gave up after the horizon; waits for a manual redelivery.
    Parked,
}

impl StreamState {
    /// `active` or `parked`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Parked => "parked",
        }
    }
}

/// The delivery state of one (webhook, tenant) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookStream {
    /// The webhook.
    pub webhook_id: String,
    /// The tenant whose events it carries.
    pub tenant_id: String,
    /// The last delivered (acknowledged with a 2xx) seq.
    pub cursor: i64,
    /// Active or parked.
    pub state: StreamState,
    /// Bumped by a manual redelivery; a worker's update for an older generation is ignored.
    pub generation: i64,
    /// Failed attempts at delivering the event after `cursor`.
    pub attempts: i64,
    /// When the next attempt is due (None = now).
    pub next_attempt_at: Option<OffsetDateTime>,
    /// When the current run of failures began.
    pub failing_since: Option<OffsetDateTime>,
    /// The last failure, in words (status or transport error).
    pub last_error: Option<String>,
    /// When an attempt was last made.
    pub last_attempt_at: Option<OffsetDateTime>,
    /// When a delivery last succeeded.
    pub last_success_at: Option<OffsetDateTime>,
    /// The node (`roster serve` process) that delivers the stream, while its lease lasts.
    pub lease_owner: Option<String>,
    /// When that node's lease runs out unless it renews it.
    pub lease_until: Option<OffsetDateTime>,
}

/// The outcome of one delivery attempt, recorded on the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The receiver acknowledged `seq`.
    Delivered {
        /// The seq delivered; becomes the cursor.
        seq: i64,
    },
    /// The attempt failed; retry at `next_attempt_at`, or park.
    Failed {
        /// Attempts so far (including this one).
        attempts: i64,
        /// When to try again.
        next_attempt_at: OffsetDateTime,
        /// When the failures began.
        failing_since: OffsetDateTime,
        /// What went wrong, in words.
        error: String,
        /// Give up until a manual redelivery.
        park: bool,
    },
}

/// Webhook endpoints and delivery streams.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a webhook and, in the same transaction, a stream for every tenant in its scope
    /// positioned at the tenant's current last seq (so it receives events from now on).
    /// Tenants created later start at seq 0. `NotFound` for an unknown tenant.
    async fn create_webhook(&self, webhook: &Webhook) -> StoreResult<()>;
    /// Every webhook, by creation.
    async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>>;
    /// One webhook.
    async fn get_webhook(&self, id: &str) -> StoreResult<Option<Webhook>>;
    /// Deletes a webhook and its streams. `NotFound` if absent.
    async fn delete_webhook(&self, id: &str) -> StoreResult<()>;
    /// Makes `secret` the signing secret; the old one keeps signing until `previous_until`.
    async fn rotate_webhook_secret(
        &self,
        id: &str,
        secret: &str,
        previous_until: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Replaces the stored texts of a webhook's secrets with `new` (re-sealed with another
    /// key), only if they still are `old`: a compare-and-set, so that a rotation made since
    /// `old` was read is not overwritten. When the previous secret stops signing is kept.
    /// Returns whether they were replaced: `false` when they changed or the webhook is gone.
    async fn replace_webhook_secrets(
        &self,
        id: &str,
        old: &SecretTexts,
        new: &SecretTexts,
    ) -> StoreResult<bool>;
    /// The stream of (webhook, tenant), created at seq 0 if missing.
    async fn ensure_stream(&self, webhook_id: &str, tenant: &str) -> StoreResult<WebhookStream>;
    /// Streams, of one webhook or all.
    async fn list_streams(&self, webhook_id: Option<&str>) -> StoreResult<Vec<WebhookStream>>;
    /// Leases the stream of (webhook, tenant) to `node` until `until`, creating the stream at
    /// seq 0 if missing, unless another node holds a lease that lasts beyond `now`. Returns the
    /// stream when `node` holds it, `None` when another node does; `NotFound` when the webhook
    /// is gone. Renewing a lease is leasing again before it runs out.
    ///
    /// One conditional write decides, so of several nodes asking at once exactly one gets the
    /// stream: each stream is delivered by one node at a time, which keeps its events in order.
    async fn lease_stream(
        &self,
        webhook_id: &str,
        tenant: &str,
        node: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<Option<WebhookStream>>;
    /// Ends every lease `node` holds (it is shutting down), so that other nodes take its
    /// streams over at once rather than when the leases run out. Returns how many.
    async fn release_leases(&self, node: &str) -> StoreResult<u64>;
    /// Records a delivery attempt by `node`, unless the stream's generation changed since it
    /// was read (a manual redelivery happened) or another node holds its lease now (this
    /// node's ran out); returns whether it was recorded.
    async fn record_delivery(
        &self,
        webhook_id: &str,
        tenant: &str,
        generation: i64,
        node: &str,
        result: &DeliveryResult,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Manual redelivery: reactivates the stream(s) of the webhook (one tenant or all), clears
    /// the retry state and, with `from_seq`, moves the cursor to `from_seq - 1` so that
    /// delivery resumes at `from_seq`. Returns the streams touched.
    async fn redeliver(
        &self,
        webhook_id: &str,
        tenant: Option<&str>,
        from_seq: Option<i64>,
    ) -> StoreResult<Vec<WebhookStream>>;
}

/// One SCIM request as recorded in the provisioning log.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisioningEntry {
    /// Row id (assigned by the store; 0 on insert). Increases with time: the cursor.
    pub id: i64,
    /// When the request arrived.
    pub at: OffsetDateTime,
    /// The tenant.
    pub tenant_id: String,
    /// The request id, also sent as the `X-Request-Id` response header.
    pub request_id: String,
    /// The tenant's identity provider setting.
    pub idp: Option<String>,
    /// The request's User-Agent.
    pub user_agent: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path (without query string).
    pub path: String,
    /// `User` or `Group`, when the request addressed one.
    pub resource_type: Option<String>,
    /// The resource id, when known.
    pub resource_id: Option<String>,
    /// userName or displayName, when known.
    pub name: Option<String>,
    /// Response status.
    pub status: u16,
    /// SCIM error keyword on failure.
    pub scim_type: Option<String>,
    /// The SCIM error detail on failure.
    pub detail: Option<String>,
    /// What an IT admin can do about the failure.
    pub hint: Option<String>,
    /// Names of the attributes the request changed.
    pub changed: Vec<String>,
    /// Time to respond, in milliseconds.
    pub duration_ms: i64,
    /// The request body with sensitive attributes removed.
    pub body: Option<Value>,
    /// The client's address.
    pub source_addr: Option<String>,
    /// On authentication failures: the presented token's public prefix (never the token).
    pub token_prefix: Option<String>,
}

/// Success (status below 400) or failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Status below 400.
    Success,
    /// Status 400 and above.
    Failure,
}

/// A class of HTTP statuses, as the log filters them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 200–299.
    Success,
    /// 300–399 (`304 Not Modified` of a failed conditional write, ...).
    Redirection,
    /// 400–499.
    ClientError,
    /// 500 and above.
    ServerError,
}

impl StatusClass {
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "2xx",
            Self::Redirection => "3xx",
            Self::ClientError => "4xx",
            Self::ServerError => "5xx",
        }
    }

    /// The class named `2xx`, `3xx`, `4xx` or `5xx` (case-insensitive).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Success,
            Self::Redirection,
            Self::ClientError,
            Self::ServerError,
        ]
        .into_iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }

    /// The statuses of the class: `[low, high)`. 5xx reaches to 1000, so no status is in none.
    #[must_use]
    pub fn range(self) -> (u16, u16) {
        match self {
            Self::Success => (200, 300),
            Self::Redirection => (300, 400),
            Self::ClientError => (400, 500),
            Self::ServerError => (500, 1000),
        }
    }
}

/// A provisioning-log query. Without `after` the newest rows come first (paging backwards
/// with `before`); with `after` rows come oldest first (for following the log).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only rows at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only rows before this time.
    pub until: Option<OffsetDateTime>,
    /// Only successes or failures.
    pub outcome: Option<Outcome>,
    /// Only rows about this resource id.
    pub resource_id: Option<String>,
    /// Only rows about this userName/displayName (case-insensitive).
    pub name: Option<String>,
    /// Only this HTTP method (case-insensitive).
    pub method: Option<String>,
    /// Only statuses of this class (`2xx`, `4xx`, ...).
    pub status_class: Option<StatusClass>,
    /// Only rows whose path, userName/displayName, request id or detail contains this text,
    /// case-insensitively (an empty text filters nothing).
    pub text: Option<String>,
    /// Newest first, rows with id below this.
    pub before: Option<i64>,
    /// Oldest first, rows with id above this.
    pub after: Option<i64>,
    /// At most this many rows.
    pub limit: u64,
}

/// Successful reads of one route of a tenant in one minute, counted rather than logged one row
/// each: GET (and HEAD) answered 2xx or 304, and `POST …/.search` answered 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCount {
    /// Row id (assigned by the store; 0 on insert): the API's cursor.
    pub id: i64,
    /// The tenant.
    pub tenant_id: String,
    /// The method and the route template below the tenant's base URL: `GET /Users/{id}`,
    /// `GET /Users`, `POST /Users/.search`.
    pub route: String,
    /// The start of the minute (whole minutes, UTC).
    pub minute: OffsetDateTime,
    /// How many requests.
    pub count: u64,
    /// The status of the newest of them.
    pub last_status: u16,
    /// When the newest of them arrived.
    pub last_at: OffsetDateTime,
}

/// Provisioning-log rows of a tenant that could not be queued in one minute (the queue stayed
/// full for the whole bounded wait): the gap in the log, counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedCount {
    /// The tenant.
    pub tenant_id: String,
    /// The start of the minute.
    pub minute: OffsetDateTime,
    /// How many rows.
    pub count: u64,
}

/// A query of a tenant's read counts: newest minute first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadQuery {
    /// Only minutes starting at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only minutes starting before this time.
    pub until: Option<OffsetDateTime>,
    /// Only counts after (older than) the row with this id, as the previous page ended.
    pub before: Option<i64>,
    /// At most this many rows.
    pub limit: u64,
}

/// The newest request of a tenant: a row of the log, or a counted read.
#[derive(Debug, Clone, PartialEq)]
pub enum LastRequest {
    /// A write or a failure, with its own row.
    Logged(Box<ProvisioningEntry>),
    /// A successful read, counted in its minute (`last_at`, `last_status` are the newest's).
    Read(ReadCount),
}

impl LastRequest {
    /// The newer of the newest row and the newest counted read; the row on a tie.
    #[must_use]
    pub fn newest(row: Option<ProvisioningEntry>, read: Option<ReadCount>) -> Option<Self> {
        match (row, read) {
            (Some(e), Some(r)) if r.last_at > e.at => Some(Self::Read(r)),
            (Some(e), _) => Some(Self::Logged(Box::new(e))),
            (None, r) => r.map(Self::Read),
        }
    }

    /// When the request arrived.
    #[must_use]
    pub fn at(&self) -> OffsetDateTime {
        match self {
            Self::Logged(e) => e.at,
            Self::Read(r) => r.last_at,
        }
    }

    /// Its HTTP status.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::Logged(e) => e.status,
            Self::Read(r) => r.last_status,
        }
    }
}

/// The start of the minute `t` falls in: the key of read and drop counts.
#[must_use]
pub fn minute_of(t: OffsetDateTime) -> OffsetDateTime {
    let secs = t.unix_timestamp();
    let start = secs - secs.rem_euclid(60);
    OffsetDateTime::from_unix_timestamp(start).unwrap_or(t)
}

/// An administrative action.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Row id (assigned by the store; 0 on insert).
    pub id: i64,
    /// When.
    pub at: OffsetDateTime,
    /// Who: `admin-key:<prefix>` or `cli:<os user>`.
    pub actor: String,
    /// What: `tenant.create`, `webhook.create`, ...
    pub action: String,
    /// The tenant concerned, if any.
    pub tenant_id: Option<String>,
    /// The object acted on (a webhook id, a key prefix, ...).
    pub target: Option<String>,
    /// Details (never secrets).
    pub details: Value,
}

/// The provisioning log, the audit log and admin keys.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Appends provisioning-log rows in one transaction.
    async fn append_provisioning(&self, entries: &[ProvisioningEntry]) -> StoreResult<()>;
    /// Queries a tenant's provisioning log.
    async fn list_provisioning(
        &self,
        tenant: &str,
        query: &LogQuery,
    ) -> StoreResult<Vec<ProvisioningEntry>>;
    /// Deletes up to `batch` rows older than `before`; returns how many were deleted.
    async fn prune_provisioning(&self, before: OffsetDateTime, batch: u64) -> StoreResult<u64>;
    /// Adds read counts and dropped-row counts in one transaction. Counts of a (tenant,
    /// route, minute) already stored add up (several flushes of a minute, several processes);
    /// `last_status` and `last_at` become those of the newer request.
    async fn add_provisioning_counts(
        &self,
        reads: &[ReadCount],
        dropped: &[DroppedCount],
    ) -> StoreResult<()>;
    /// A tenant's read counts, newest minute first (and, within a minute, newest row first).
    async fn list_read_counts(
        &self,
        tenant: &str,
        query: &ReadQuery,
    ) -> StoreResult<Vec<ReadCount>>;
    /// The counted read of a tenant that arrived last.
    async fn latest_read(&self, tenant: &str) -> StoreResult<Option<ReadCount>>;
    /// How many provisioning-log rows of a tenant were dropped in the minutes starting in
    /// `[since, until)` (either bound open when `None`).
    async fn count_dropped(
        &self,
        tenant: &str,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
    ) -> StoreResult<u64>;
    /// Deletes up to `batch` read and dropped counts of minutes before `before`; returns how
    /// many were deleted.
    async fn prune_provisioning_counts(
        &self,
        before: OffsetDateTime,
        batch: u64,
    ) -> StoreResult<u64>;
    /// The newest request of a tenant, logged or counted: what "last request" shows.
    async fn last_request(&self, tenant: &str) -> StoreResult<Option<LastRequest>> {
        let row = self
            .list_provisioning(
                tenant,
                &LogQuery {
                    limit: 1,
                    ..LogQuery::default()
                },
            )
            .await?
            .into_iter()
            .next();
        let read = self.latest_read(tenant).await?;
        Ok(LastRequest::newest(row, read))
    }

    /// Appends an audit entry.
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// Audit entries, newest first, with id below `before`.
    async fn list_audit(&self, before: Option<i64>, limit: u64) -> StoreResult<Vec<AuditEntry>>;

    /// Stores a new admin key record.
    async fn insert_admin_key(&self, key: &AdminKeyRecord) -> StoreResult<()>;
    /// Every admin key, newest first.
    async fn list_admin_keys(&self) -> StoreResult<Vec<AdminKeyRecord>>;
    /// Finds an admin key by prefix.
    async fn find_admin_key(&self, prefix: &str) -> StoreResult<Option<AdminKeyRecord>>;
    /// Revokes an admin key. `NotFound` if there is no live key with that prefix.
    async fn revoke_admin_key(&self, prefix: &str, now: OffsetDateTime) -> StoreResult<()>;
    /// The live keys that expire within `within` of `now` and were not warned about yet,
    /// marked as warned in the same statement, so that each is announced once (by one node).
    async fn claim_admin_key_expiry_warnings(
        &self,
        now: OffsetDateTime,
        within: time::Duration,
    ) -> StoreResult<Vec<AdminKeyRecord>>;
    /// Records a successful use.
    async fn touch_admin_key(&self, prefix: &str, now: OffsetDateTime) -> StoreResult<()>;
    /// Records successful uses of many keys in one transaction, like
    /// [`Store::touch_tokens`](crate::Store::touch_tokens): `last_used_at` never moves back,
    /// unknown prefixes are ignored, and the authentication epoch does not move.
    async fn touch_admin_keys(&self, uses: &[(String, OffsetDateTime)]) -> StoreResult<()>;
}
