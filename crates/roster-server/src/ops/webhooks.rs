//! Webhook endpoints as operators manage them: create (validated), rotate the secret, pause and
//! resume, redeliver, and the delivery state an operator watches (per stream: position, lag in
//! events, consecutive failures, last success; per endpoint: the recent attempts with the
//! receiver's status). The admin API (`admin/webhooks.rs`), the console's webhooks page and
//! the `roster webhook` command call these.

use roster_store::{
    Store, StoreError, StreamLag, StreamState, Webhook, WebhookAttempt, WebhookStream,
};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::{audit, OpError};
use crate::secretbox::{KeyRing, SecretError};
use crate::webhooks::signature::new_secret;

/// What a new webhook receives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where events are POSTed (`http://` or `https://`).
    pub url: String,
    /// Only this tenant's events; absent = every tenant.
    pub tenant: Option<String>,
    /// Only these event types; absent or empty = every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// A label.
    pub description: Option<String>,
}

impl From<SecretError> for OpError {
    fn from(e: SecretError) -> Self {
        match e {
            // The request is fine; this server cannot store a secret until it has a key.
            SecretError::NoKey => OpError::conflict(e.to_string()),
            other => OpError::Store(StoreError::Backend(Box::new(other))),
        }
    }
}

/// Every problem with a new webhook's URL, or none.
fn url_problem(raw: &str, allow_private: bool) -> Option<String> {
    let url = match reqwest::Url::parse(raw) {
        Ok(u) => u,
        Err(e) => return Some(format!("url is not a valid URL: {e}")),
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Some("url must be an http:// or https:// URL with a host".into());
    }
    // A credential in the URL would be stored, listed and written to the audit log; receivers
    // authenticate Roster by the signature instead.
    if !url.username().is_empty() || url.password().is_some() {
        return Some(
            "url must not contain a user name or password; verify the Roster-Signature header \
             with the webhook's secret instead (docs/events.md)"
                .into(),
        );
    }
    if !crate::webhooks::destination::host_allowed(&url, allow_private) {
        return Some(format!(
            "url: {}",
            crate::webhooks::destination::NOT_ALLOWED
        ));
    }
    None
}

/// Validates and stores a webhook, its secret sealed with `keys`; returns it with its secret
/// in clear (to show once). Every problem of the input is reported at once, each at its field
/// (`url`, `event_types`, `tenant`).
///
/// # Errors
/// [`OpError::Invalid`] for a bad URL or an unknown event type, [`OpError::NotFound`] for an
/// unknown tenant, [`OpError::Conflict`] without a key to seal with (PostgreSQL without
/// `--secret-key-file`).
pub async fn create(
    store: &dyn Store,
    keys: &KeyRing,
    now: OffsetDateTime,
    req: NewWebhook,
    allow_private: bool,
) -> Result<Webhook, OpError> {
    let mut errors = Vec::new();
    if let Some(m) = url_problem(&req.url, allow_private) {
        errors.push(super::FieldError {
            field: Some("url".into()),
            message: m,
        });
    }
    // Each element must be one type name, exactly (not a comma-separated list, not empty).
    if let Some(bad) = req
        .event_types
        .iter()
        .find(|t| roster_store::EventType::parse(t).is_none())
    {
        errors.push(super::FieldError {
            field: Some("event_types".into()),
            message: format!("unknown event type \"{bad}\"; see docs/events.md for the list"),
        });
    }
    if !errors.is_empty() {
        return Err(OpError::Invalid { errors });
    }
    let mut types: Vec<String> = Vec::new();
    for t in &req.event_types {
        if !types.contains(t) {
            types.push(t.clone());
        }
    }
    if let Some(t) = &req.tenant {
        if store.get_tenant(t).await?.is_none() {
            return Err(OpError::no_tenant(t));
        }
    }
    let id = format!("wh_{}", crate::tokens::random_alnum(16));
    let secret = new_secret();
    let mut hook = Webhook {
        secret: keys.seal(&secret, &id)?,
        id,
        tenant_id: req.tenant,
        url: req.url,
        description: req.description.filter(|d| !d.trim().is_empty()),
        event_types: types,
        previous_secret: None,
        previous_expires_at: None,
        enabled: true,
        created_at: now,
    };
    store.create_webhook(&hook).await?;
    hook.secret = secret;
    Ok(hook)
}

fn no_webhook(id: &str) -> OpError {
    OpError::not_found(format!("no webhook \"{id}\""))
}

fn or_no_webhook(e: StoreError, id: &str) -> OpError {
    match e {
        StoreError::NotFound => no_webhook(id),
        other => other.into(),
    }
}

/// The webhook `id`.
///
/// # Errors
/// [`OpError::NotFound`]; a storage failure.
pub async fn get(store: &dyn Store, id: &str) -> Result<Webhook, OpError> {
    store.get_webhook(id).await?.ok_or_else(|| no_webhook(id))
}

/// Replaces a webhook's secret (stored sealed with `keys`); the old one keeps signing for
/// `overlap`. Returns the new secret in clear and when the old one stops.
///
/// # Errors
/// [`OpError::NotFound`] for an unknown webhook, [`OpError::Conflict`] without a key.
pub async fn rotate(
    store: &dyn Store,
    keys: &KeyRing,
    now: OffsetDateTime,
    id: &str,
    overlap: std::time::Duration,
) -> Result<(String, OffsetDateTime), OpError> {
    let secret = new_secret();
    let sealed = keys.seal(&secret, id)?;
    let until = now + overlap;
    store
        .rotate_webhook_secret(id, &sealed, until)
        .await
        .map_err(|e| or_no_webhook(e, id))?;
    Ok((secret, until))
}

/// Pauses (`paused`) or resumes a webhook, audited as `webhook.pause` or `webhook.resume` by
/// `actor`. A paused webhook delivers nothing; its streams keep their positions, so resuming
/// continues with the first event it has not delivered. Returns the webhook as it is now.
///
/// # Errors
/// [`OpError::NotFound`]; a storage failure.
pub async fn set_paused(
    store: &dyn Store,
    now: OffsetDateTime,
    actor: &str,
    id: &str,
    paused: bool,
) -> Result<Webhook, OpError> {
    store
        .set_webhook_enabled(id, !paused)
        .await
        .map_err(|e| or_no_webhook(e, id))?;
    let hook = get(store, id).await?;
    let action = if paused {
        "webhook.pause"
    } else {
        "webhook.resume"
    };
    audit(
        store,
        now,
        actor,
        action,
        hook.tenant_id.as_deref(),
        Some(id),
        json!({}),
    )
    .await;
    Ok(hook)
}

/// Manual redelivery: reactivates the webhook's streams (of one tenant, or all), clears their
/// retry state so that the next attempt is now, and with `from_seq` re-sends from that seq.
/// Audited as `webhook.redeliver` by `actor`. Returns the streams touched.
///
/// # Errors
/// [`OpError::Invalid`] for a `from_seq` below 1, [`OpError::NotFound`] for an unknown
/// webhook or a tenant it does not serve.
pub async fn redeliver(
    store: &dyn Store,
    now: OffsetDateTime,
    actor: &str,
    id: &str,
    tenant: Option<&str>,
    from_seq: Option<i64>,
) -> Result<Vec<WebhookStream>, OpError> {
    if from_seq.is_some_and(|s| s < 1) {
        return Err(OpError::invalid_field(
            "from_seq",
            "from_seq must be 1 or more",
        ));
    }
    let streams = store
        .redeliver(id, tenant, from_seq)
        .await
        .map_err(|e| match e {
            // A webhook scoped to another tenant has no stream of this one: a missing
            // sub-resource, like an unknown webhook.
            StoreError::Invalid(m) => OpError::not_found(m),
            e => or_no_webhook(e, id),
        })?;
    audit(
        store,
        now,
        actor,
        "webhook.redeliver",
        tenant,
        Some(id),
        json!({"from_seq": from_seq}),
    )
    .await;
    Ok(streams)
}

/// Largest page of attempts.
pub const MAX_ATTEMPTS_PAGE: u64 = roster_store::ATTEMPTS_KEPT;

/// The newest delivery attempts of a webhook (of one tenant's stream, or all), newest first,
/// older than the attempt `before` when given; at most `limit` (1 to [`MAX_ATTEMPTS_PAGE`]).
///
/// # Errors
/// [`OpError::NotFound`] for an unknown webhook; a storage failure.
pub async fn attempts(
    store: &dyn Store,
    id: &str,
    tenant: Option<&str>,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<WebhookAttempt>, OpError> {
    get(store, id).await?;
    Ok(store
        .list_webhook_attempts(id, tenant, before, limit.clamp(1, MAX_ATTEMPTS_PAGE))
        .await?)
}

/// How an operator sees one stream of a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamView {
    /// The stream as stored.
    pub stream: WebhookStream,
    /// Events of its tenant after its position.
    pub lag: u64,
}

impl StreamView {
    /// `ok`, `failing` (consecutive failures, retrying), `parked` (retries gave up) or
    /// `paused` (the webhook is paused).
    #[must_use]
    pub fn status(&self, hook: &Webhook) -> &'static str {
        if !hook.enabled {
            "paused"
        } else if self.stream.state == StreamState::Parked {
            "parked"
        } else if self.stream.attempts > 0 {
            "failing"
        } else {
            "ok"
        }
    }
}

/// A webhook with the state of its streams.
#[derive(Debug, Clone)]
pub struct EndpointView {
    /// The webhook (its secrets as stored: never shown).
    pub hook: Webhook,
    /// Its streams (those of one tenant when asked for one tenant).
    pub streams: Vec<StreamView>,
}

impl EndpointView {
    /// The most consecutive failures of its streams.
    #[must_use]
    pub fn consecutive_failures(&self) -> i64 {
        self.streams
            .iter()
            .map(|s| s.stream.attempts)
            .max()
            .unwrap_or(0)
    }

    /// The newest success of its streams.
    #[must_use]
    pub fn last_success(&self) -> Option<OffsetDateTime> {
        self.streams
            .iter()
            .filter_map(|s| s.stream.last_success_at)
            .max()
    }

    /// Events waiting, over its streams.
    #[must_use]
    pub fn lag(&self) -> u64 {
        self.streams.iter().map(|s| s.lag).sum()
    }

    /// The worst status of its streams (`paused` first, then `parked`, `failing`, `ok`).
    #[must_use]
    pub fn status(&self) -> &'static str {
        if !self.hook.enabled {
            return "paused";
        }
        let statuses: Vec<_> = self.streams.iter().map(|s| s.status(&self.hook)).collect();
        ["parked", "failing"]
            .into_iter()
            .find(|s| statuses.contains(s))
            .unwrap_or("ok")
    }

    /// The last error of its failing streams, when one fails.
    #[must_use]
    pub fn last_error(&self) -> Option<&str> {
        self.streams
            .iter()
            .filter(|s| s.stream.attempts > 0 || s.stream.state == StreamState::Parked)
            .max_by_key(|s| s.stream.attempts)
            .and_then(|s| s.stream.last_error.as_deref())
    }
}

/// Pairs each stream with its lag (0 when the store has none for it).
#[must_use]
pub fn with_lags(streams: Vec<WebhookStream>, lags: &[StreamLag]) -> Vec<StreamView> {
    streams
        .into_iter()
        .map(|s| {
            let lag = lags
                .iter()
                .find(|l| l.webhook_id == s.webhook_id && l.tenant_id == s.tenant_id)
                .map_or(0, |l| l.lag);
            StreamView { stream: s, lag }
        })
        .collect()
}

/// Every webhook with its streams' state (three reads, whatever the number of webhooks); with
/// `tenant`, only the webhooks that serve that tenant and only its stream of each.
///
/// # Errors
/// A storage failure.
pub async fn endpoints(
    store: &dyn Store,
    tenant: Option<&str>,
) -> Result<Vec<EndpointView>, OpError> {
    let hooks = store.list_webhooks().await?;
    let streams = store.list_streams(None).await?;
    let lags = store.stream_lags(None, tenant).await?;
    let mut views = with_lags(streams, &lags);
    if let Some(t) = tenant {
        views.retain(|s| s.stream.tenant_id == t);
    }
    Ok(hooks
        .into_iter()
        .filter(|h| tenant.is_none_or(|t| h.tenant_id.as_deref().is_none_or(|ht| ht == t)))
        .map(|hook| {
            let (mine, _): (Vec<_>, Vec<_>) = views
                .iter()
                .cloned()
                .partition(|s| s.stream.webhook_id == hook.id);
            EndpointView {
                hook,
                streams: mine,
            }
        })
        .collect())
}

/// One webhook with its streams' state.
///
/// # Errors
/// [`OpError::NotFound`]; a storage failure.
pub async fn endpoint(store: &dyn Store, id: &str) -> Result<EndpointView, OpError> {
    let hook = get(store, id).await?;
    let streams = store.list_streams(Some(id)).await?;
    let lags = store.stream_lags(Some(id), None).await?;
    Ok(EndpointView {
        hook,
        streams: with_lags(streams, &lags),
    })
}
