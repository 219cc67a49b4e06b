//! Webhook delivery as an operator watches it: the history of delivery attempts of each
//! endpoint (the last [`ATTEMPTS_KEPT`] per endpoint), pausing and resuming an endpoint, and
//! each stream's lag (events after its position).
//!
//! The SQL is the same on every backend ([`crate::delivery_sql`]); a backend only runs it.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::StoreResult;

/// How many attempts are kept per webhook endpoint; older ones are pruned as new ones arrive.
pub const ATTEMPTS_KEPT: u64 = 100;

/// One delivery attempt of a webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    /// Assigned by the store (0 on insert); increases with time.
    pub id: i64,
    /// The webhook endpoint.
    pub webhook_id: String,
    /// The tenant whose events were sent.
    pub tenant_id: String,
    /// When the attempt started.
    pub at: OffsetDateTime,
    /// The seq of the first event sent.
    pub first_seq: i64,
    /// The seq of the last event sent (the same as `first_seq` for one event).
    pub last_seq: i64,
    /// The id of the (first) event sent.
    pub event_id: String,
    /// The receiver's HTTP status; `None` when no answer came (a transport error).
    pub status: Option<u16>,
    /// What went wrong, in words; `None` for a delivered event.
    pub error: Option<String>,
    /// How long the attempt took, in milliseconds.
    pub duration_ms: u64,
}

impl WebhookAttempt {
    /// Whether the receiver acknowledged the event (a 2xx).
    #[must_use]
    pub fn delivered(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// How far a stream is behind its tenant's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLag {
    /// The webhook endpoint.
    pub webhook_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// Events of the tenant after the stream's position (of every type: the endpoint may
    /// skip some of them when it asked for fewer types).
    pub lag: u64,
}

/// Attempt history, pause and lag of webhook endpoints.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Pauses (`enabled = false`) or resumes an endpoint. Its streams keep their positions:
    /// a resumed endpoint continues where it stopped. `NotFound` for an unknown endpoint.
    async fn set_webhook_enabled(&self, id: &str, enabled: bool) -> StoreResult<()>;
    /// Records one attempt and prunes the endpoint's attempts beyond the newest `keep`.
    async fn record_webhook_attempt(&self, attempt: &WebhookAttempt, keep: u64) -> StoreResult<()>;
    /// The newest attempts of an endpoint (of one tenant's stream, or all), newest first,
    /// those before `before` (an attempt id) when given.
    async fn list_webhook_attempts(
        &self,
        webhook_id: &str,
        tenant: Option<&str>,
        before: Option<i64>,
        limit: u64,
    ) -> StoreResult<Vec<WebhookAttempt>>;
    /// The lag of every stream of one endpoint, or of one tenant, or all (one statement).
    async fn stream_lags(
        &self,
        webhook_id: Option<&str>,
        tenant: Option<&str>,
    ) -> StoreResult<Vec<StreamLag>>;
}
