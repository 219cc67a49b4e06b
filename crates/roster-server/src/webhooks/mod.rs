//! Webhook delivery: signing ([`signature`]) and the delivery worker.
//!
//! Each (webhook, tenant) pair is one *stream* with a cursor (the last seq the receiver
//! acknowledged with a 2xx). A supervisor task starts one task per active stream; a stream
//! task delivers the next matching event after its cursor, waits for the acknowledgement, and
//! only then moves on, so a receiver sees a tenant's events in seq order. A failed attempt is
//! retried after an exponential, jittered backoff; after the horizon the stream is parked
//! (visible through the API and the CLI) until a manual redelivery. Delivery runs in its own
//! tasks and never inside a SCIM request, so a slow receiver cannot slow provisioning.
//!
//! Several processes may share the database: every process runs a task per stream, but a task
//! delivers only while its process holds the stream's *lease* in the database (taken and
//! renewed by one conditional write before every attempt, for [`WebhookSettings::lease`]), so
//! each stream is delivered by one node at a time, in seq order. A process that stops releases
//! its leases; one that dies loses them when they run out, and another process continues from
//! the cursor: only the event that was in flight may arrive twice (with the same id).

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;
use roster_store::{DeliveryResult, Event, StreamState, Webhook};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::AppState;

pub mod destination;
pub mod signature;

/// Delivery settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// First retry delay; doubles with each failure.
    pub retry_base: Duration,
    /// Largest retry delay.
    pub retry_max: Duration,
    /// How long a stream keeps retrying one event before it is parked.
    pub horizon: Duration,
    /// Timeout of one delivery request.
    pub timeout: Duration,
    /// How often streams look for work when nothing wakes them (writes by other processes,
    /// new webhooks, redeliveries from the CLI).
    pub poll: Duration,
    /// How long the previous secret keeps signing after a rotation.
    pub rotation_overlap: Duration,
    /// How long a stream's lease lasts unless renewed: the longest a stream waits when the
    /// process delivering it dies. Longer than `timeout`, so that a delivery that takes the
    /// whole timeout ends before its lease can be taken over.
    pub lease: Duration,
    /// Whether webhooks may be delivered to private, loopback and link-local addresses (see
    /// [`destination`]).
    pub allow_private: bool,
}

impl WebhookSettings {
    /// The lease used: at least `timeout` plus `poll` and a second, whatever was configured,
    /// so that a live node's lease never runs out in the middle of an attempt.
    #[must_use]
    pub fn effective_lease(&self) -> Duration {
        self.lease
            .max(self.timeout + self.poll + Duration::from_secs(1))
    }
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(3600),
            horizon: Duration::from_secs(3 * 24 * 3600),
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            rotation_overlap: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(30),
            allow_private: false,
        }
    }
}

/// The delay before retry number `attempts` (1-based): `base * 2^(attempts-1)` capped at
/// `max`, then "equal jitter": a random point in the upper half, so that many failing streams
/// do not retry in lockstep while the delay still grows.
#[must_use]
pub fn backoff(s: &WebhookSettings, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = s
        .retry_base
        .saturating_mul(2u32.saturating_pow(exp))
        .min(s.retry_max);
    let half = full / 2;
    let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(rand::thread_rng().gen_range(0..=jitter_ms))
}

/// The JSON body POSTed for an event.
#[must_use]
pub fn payload(e: &Event) -> serde_json::Value {
    json!({
        "id": e.id,
        "type": e.event_type,
        "tenant": e.tenant,
        "seq": e.seq,
        "occurred_at": scim_proto::filter::format_datetime(e.occurred_at),
        "data": e.data,
    })
}

/// Runs the supervisor until `shutdown` turns true.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut builder = reqwest::Client::builder()
        .timeout(state.settings.webhooks.timeout)
        .redirect(reqwest::redirect::Policy::none());
    if !state.settings.webhooks.allow_private {
        builder = builder.dns_resolver(std::sync::Arc::new(destination::PublicOnly));
    }
    let client = match builder
        .user_agent(concat!("Roster-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client; no deliveries");
            return;
        }
    };
    let mut running: HashMap<(String, String), JoinHandle<()>> = HashMap::new();
    loop {
        if let Err(e) = supervise(&state, &client, &mut running, &shutdown).await {
            tracing::error!(error = %e, "webhook supervisor failed; retrying");
        }
        tokio::select! {
            () = tokio::time::sleep(state.settings.webhooks.poll) => {},
            _ = shutdown.changed() => break,
        }
    }
    for (_, h) in running {
        h.abort();
    }
    // Other nodes take this node's streams over at once rather than when the leases run out.
    match state.store.release_leases(&state.node).await {
        Ok(n) if n > 0 => tracing::info!(streams = n, "webhook stream leases released"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "releasing webhook stream leases failed"),
    }
}

/// Starts a task for every active stream that has none.
async fn supervise(
    state: &AppState,
    client: &reqwest::Client,
    running: &mut HashMap<(String, String), JoinHandle<()>>,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), roster_store::StoreError> {
    running.retain(|_, h| !h.is_finished());
    let hooks = state.store.list_webhooks().await?;
    let tenants = state.store.list_tenants().await?;
    let streams = state.store.list_streams(None).await?;
    let parked: std::collections::HashSet<(&str, &str)> = streams
        .iter()
        .filter(|s| s.state == StreamState::Parked)
        .map(|s| (s.webhook_id.as_str(), s.tenant_id.as_str()))
        .collect();
    for hook in hooks.iter().filter(|h| h.enabled) {
        for t in tenants
            .iter()
            .filter(|t| hook.tenant_id.as_ref().is_none_or(|id| id == &t.id))
        {
            let key = (hook.id.clone(), t.id.clone());
            if running.contains_key(&key) || parked.contains(&(hook.id.as_str(), t.id.as_str())) {
                continue;
            }
            let task = stream_task(
                state.clone(),
                client.clone(),
                hook.id.clone(),
                t.id.clone(),
                shutdown.clone(),
            );
            running.insert(key, tokio::spawn(task));
        }
    }
    Ok(())
}

/// Sleeps until `d` passes, an event is committed in this process, or shutdown.
async fn idle(
    d: Duration,
    events: &mut watch::Receiver<u64>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        _ = events.changed() => false,
        _ = shutdown.changed() => true,
    }
}

fn until(now: OffsetDateTime, t: OffsetDateTime) -> Duration {
    let ms = (t - now).whole_milliseconds().max(0);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// Delivers one stream in order until its webhook goes away, it parks, or shutdown.
async fn stream_task(
    state: AppState,
    client: reqwest::Client,
    hook_id: String,
    tenant: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let settings = state.settings.webhooks.clone();
    let mut events = state.store.subscribe();
    loop {
        // Re-read every round: a rotation, a deletion or a redelivery may have happened.
        let hook = match state.store.get_webhook(&hook_id).await {
            Ok(Some(h)) if h.enabled => h,
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, "webhook worker: reading the webhook failed");
                if idle(settings.poll, &mut events, &mut shutdown).await {
                    return;
                }
                continue;
            }
        };
        let now = state.clock.now();
        let lease =
            time::Duration::try_from(settings.effective_lease()).unwrap_or(time::Duration::MINUTE);
        let stream = match state
            .store
            .lease_stream(&hook_id, &tenant, &state.node, now, now + lease)
            .await
        {
            Ok(Some(s)) => s,
            // Another node delivers this stream; look again when its lease may have run out.
            Ok(None) => {
                if idle(settings.poll, &mut events, &mut shutdown).await {
                    return;
                }
                continue;
            }
            // The webhook was removed since it was read.
            Err(roster_store::StoreError::NotFound) => return,
            Err(e) => {
                tracing::error!(error = %e, "webhook worker: reading the stream failed");
                if idle(settings.poll, &mut events, &mut shutdown).await {
                    return;
                }
                continue;
            }
        };
        if stream.state == StreamState::Parked {
            return;
        }
        let now = state.clock.now();
        if let Some(next) = stream.next_attempt_at.filter(|t| *t > now) {
            // Waiting for a retry; wake at least every poll interval to notice a redelivery.
            let wait = until(now, next).min(settings.poll);
            tokio::select! {
                () = tokio::time::sleep(wait) => {},
                _ = shutdown.changed() => return,
            }
            continue;
        }
        events.borrow_and_update();
        let next = match state
            .store
            .list_events(&tenant, stream.cursor, &hook.event_types, 1)
            .await
        {
            Ok(mut v) => v.pop(),
            Err(e) => {
                tracing::error!(error = %e, "webhook worker: reading events failed");
                None
            }
        };
        let Some(event) = next else {
            if idle(settings.poll, &mut events, &mut shutdown).await {
                return;
            }
            continue;
        };
        let allow_private = state.settings.webhooks.allow_private;
        let keys = &state.settings.secret_keys;
        let now = state.clock.now();
        let started = std::time::Instant::now();
        let outcome = deliver(&client, keys, &hook, &event, now, allow_private).await;
        let attempt = roster_store::WebhookAttempt {
            id: 0,
            webhook_id: hook_id.clone(),
            tenant_id: tenant.clone(),
            at: now,
            first_seq: event.seq,
            last_seq: event.seq,
            event_id: event.id.clone(),
            status: match &outcome {
                Ok(s) | Err((Some(s), _)) => Some(*s),
                Err((None, _)) => None,
            },
            error: outcome.as_ref().err().map(|(_, e)| e.clone()),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let result = match outcome.map_err(|(_, e)| e) {
            Ok(_) => DeliveryResult::Delivered { seq: event.seq },
            Err(error) => {
                let now = state.clock.now();
                let attempts = stream.attempts + 1;
                let failing_since = stream.failing_since.unwrap_or(now);
                let park = now - failing_since >= settings.horizon;
                tracing::warn!(
                    webhook = %hook.id, tenant = %tenant, seq = event.seq, attempts, park,
                    error = %error, "webhook delivery failed"
                );
                DeliveryResult::Failed {
                    attempts,
                    next_attempt_at: now + backoff(&settings, attempts),
                    failing_since,
                    error,
                    park,
                }
            }
        };
        if let Err(e) = state
            .store
            .record_delivery(
                &hook_id,
                &tenant,
                stream.generation,
                &state.node,
                &result,
                state.clock.now(),
            )
            .await
        {
            tracing::error!(error = %e, "webhook worker: recording a delivery failed");
            if idle(settings.poll, &mut events, &mut shutdown).await {
                return;
            }
        } else if let Err(e) = state
            .store
            .record_webhook_attempt(&attempt, roster_store::ATTEMPTS_KEPT)
            .await
        {
            // The history is for people; delivery goes on without it.
            tracing::warn!(error = %e, "webhook worker: recording a delivery attempt failed");
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// POSTs one event, signed with the webhook's secrets opened with `keys`; `Ok` is the
/// receiver's 2xx status, `Err` the status when one came and the failure in words (never the
/// URL, which may hold a credential, nor a secret). A secret that
/// does not open fails the attempt before anything is sent: nothing is ever signed with a
/// sealed text.
async fn deliver(
    client: &reqwest::Client,
    keys: &crate::secretbox::KeyRing,
    hook: &Webhook,
    event: &Event,
    now: OffsetDateTime,
    allow_private: bool,
) -> Result<u16, (Option<u16>, String)> {
    // An address literal never reaches the resolver: checked here (a name is checked by
    // `destination::PublicOnly` on every address it resolves to).
    let url = reqwest::Url::parse(&hook.url).map_err(|e| (None, format!("invalid URL: {e}")))?;
    if !destination::literal_allowed(&url, allow_private) {
        return Err((None, destination::NOT_ALLOWED.to_owned()));
    }
    // Wiped when the attempt ends.
    let secrets = zeroize::Zeroizing::new(
        keys.signing_secrets(hook, now)
            .map_err(|e| (None, e.to_string()))?,
    );
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let body = serde_json::to_vec(&payload(event)).map_err(|e| (None, e.to_string()))?;
    let t = now.unix_timestamp();
    let sig = signature::header_value(&secrets, t, &body);
    let resp = client
        .post(&hook.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(signature::SIGNATURE_HEADER, sig)
        .header(signature::EVENT_ID_HEADER, &event.id)
        .header("Roster-Event-Type", &event.event_type)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let e = e.without_url();
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            (None, msg)
        })?;
    let status = resp.status();
    if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err((
            Some(status.as_u16()),
            format!("receiver answered HTTP {status}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let s = WebhookSettings {
            retry_base: Duration::from_millis(1000),
            retry_max: Duration::from_millis(8000),
            ..WebhookSettings::default()
        };
        for _ in 0..50 {
            let d1 = backoff(&s, 1);
            assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_millis(1000));
            let d3 = backoff(&s, 3);
            assert!(d3 >= Duration::from_millis(2000) && d3 <= Duration::from_millis(4000));
            let d20 = backoff(&s, 20);
            assert!(d20 >= Duration::from_millis(4000) && d20 <= Duration::from_millis(8000));
        }
    }
}
