//! Webhook endpoints through the admin API (`/api/v1/webhooks…`), and the operations the
//! command line shares with it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use roster_store::{Store, StreamState, Webhook, WebhookStream};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{audit, fmt_time, AdminAuth, ApiError, ApiJson, ApiPath, ApiQuery};
use crate::secretbox::KeyRing;
use crate::AppState;

pub use crate::ops::webhooks::NewWebhook;

/// Validates and stores a webhook (see [`crate::ops::webhooks::create`]); returns it with its
/// secret in clear (to show once).
///
/// # Errors
/// 400 for a bad URL or an unknown event type, 404 for an unknown tenant, 409 without a key
/// to seal with (PostgreSQL without `--secret-key-file`).
pub async fn create(
    store: &dyn Store,
    keys: &KeyRing,
    now: OffsetDateTime,
    req: NewWebhook,
    allow_private: bool,
) -> Result<Webhook, ApiError> {
    Ok(crate::ops::webhooks::create(store, keys, now, req, allow_private).await?)
}

/// Replaces a webhook's secret (see [`crate::ops::webhooks::rotate`]). Returns the new secret
/// in clear and when the old one stops.
///
/// # Errors
/// 404 for an unknown webhook, 409 without a key to seal with.
pub async fn rotate(
    store: &dyn Store,
    keys: &KeyRing,
    now: OffsetDateTime,
    id: &str,
    overlap: std::time::Duration,
) -> Result<(String, OffsetDateTime), ApiError> {
    Ok(crate::ops::webhooks::rotate(store, keys, now, id, overlap).await?)
}

/// What [`reseal_all`] did.
#[derive(Debug, Default)]
pub struct ResealReport {
    /// The webhooks whose secrets were re-sealed.
    pub resealed: Vec<String>,
    /// How many were sealed with the first key already.
    pub current: usize,
    /// The webhooks that could not be, and why (a key missing from the file, say).
    pub failed: Vec<(String, String)>,
}

/// Re-seals every webhook's stored secrets (current and previous; in clear, or sealed with
/// another key) with the first key of `keys` (`roster secret-key reseal`). Each webhook's
/// texts are replaced only if they are still the ones read; one rotated meanwhile is read
/// again, so that a rotation is never undone.
///
/// # Errors
/// 409 without a key; a storage failure. A webhook whose secrets do not open is reported in
/// [`ResealReport::failed`] and the others are still re-sealed.
pub async fn reseal_all(store: &dyn Store, keys: &KeyRing) -> Result<ResealReport, ApiError> {
    const TRIES: usize = 5;
    if keys.key_ids().is_empty() {
        return Err(crate::secretbox::SecretError::NoKey.into());
    }
    let mut report = ResealReport::default();
    for mut hook in store.list_webhooks().await? {
        let mut tries = 0;
        loop {
            let new = match keys.resealed(&hook) {
                Ok(Some(new)) => new,
                Ok(None) => {
                    report.current += 1;
                    break;
                }
                Err(e) => {
                    report.failed.push((hook.id.clone(), e.to_string()));
                    break;
                }
            };
            if store
                .replace_webhook_secrets(&hook.id, &hook.secret_texts(), &new)
                .await?
            {
                report.resealed.push(hook.id.clone());
                break;
            }
            tries += 1;
            match store.get_webhook(&hook.id).await? {
                // Deleted meanwhile: nothing left to seal.
                None => break,
                Some(_) if tries >= TRIES => {
                    report.failed.push((
                        hook.id.clone(),
                        "its secret kept changing while it was re-sealed; run reseal again".into(),
                    ));
                    break;
                }
                Some(again) => hook = again,
            }
        }
    }
    Ok(report)
}

fn not_found(e: roster_store::StoreError, id: &str) -> ApiError {
    match e {
        roster_store::StoreError::NotFound => ApiError::not_found(format!("no webhook \"{id}\"")),
        other => other.into(),
    }
}

/// How the API and `roster webhook list --json` show a stream.
#[must_use]
pub fn stream_json(s: &WebhookStream) -> Value {
    let status = match s.state {
        StreamState::Parked => "parked",
        StreamState::Active if s.attempts > 0 => "failing",
        StreamState::Active => "ok",
    };
    json!({
        "tenant": s.tenant_id,
        "status": status,
        "cursor": s.cursor,
        "attempts": s.attempts,
        "failing_since": s.failing_since.map(fmt_time),
        "next_attempt_at": s.next_attempt_at.map(fmt_time),
        "last_error": s.last_error,
        "last_attempt_at": s.last_attempt_at.map(fmt_time),
        "last_success_at": s.last_success_at.map(fmt_time),
        "delivered_by": s.lease_owner,
        "lease_until": s.lease_until.map(fmt_time),
    })
}

/// How the API and the CLI show a webhook: never its secrets.
#[must_use]
pub fn webhook_json(w: &Webhook, streams: &[WebhookStream]) -> Value {
    json!({
        "id": w.id,
        "url": w.url,
        "tenant": w.tenant_id,
        "event_types": w.event_types,
        "description": w.description,
        "enabled": w.enabled,
        "created_at": fmt_time(w.created_at),
        "streams": streams
            .iter()
            .filter(|s| s.webhook_id == w.id)
            .map(stream_json)
            .collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/webhooks`
///
/// # Errors
/// 401.
pub async fn list_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
) -> Result<Json<Value>, ApiError> {
    let hooks = state.store.list_webhooks().await?;
    let streams = state.store.list_streams(None).await?;
    let lags = state.store.stream_lags(None, None).await?;
    let all: Vec<Value> = hooks
        .iter()
        .map(|w| {
            let mut v = webhook_json(w, &streams);
            add_lags(&mut v, &lags);
            v
        })
        .collect();
    Ok(Json(json!({ "webhooks": all })))
}

/// `POST /api/v1/webhooks`: 201 with the webhook and its `secret`, shown this once.
///
/// # Errors
/// 400, 401, 404.
pub async fn create_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiJson(req): ApiJson<NewWebhook>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let hook = create(
        state.store.as_ref(),
        &state.settings.secret_keys,
        now,
        req,
        state.settings.webhooks.allow_private,
    )
    .await?;
    audit(
        state.store.as_ref(),
        now,
        &auth.actor(),
        "webhook.create",
        hook.tenant_id.as_deref(),
        Some(&hook.id),
        json!({"url": hook.url, "event_types": hook.event_types}),
    )
    .await;
    let streams = state.store.list_streams(Some(&hook.id)).await?;
    let mut body = webhook_json(&hook, &streams);
    body["secret"] = json!(hook.secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/webhooks/{id}`
///
/// # Errors
/// 401, 404.
pub async fn get_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let hook = crate::ops::webhooks::get(state.store.as_ref(), &id).await?;
    Ok(Json(full_json(&state, &hook).await?))
}

/// `DELETE /api/v1/webhooks/{id}`: 204.
///
/// # Errors
/// 401, 404.
pub async fn delete_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_webhook(&id)
        .await
        .map_err(|e| not_found(e, &id))?;
    audit(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        "webhook.delete",
        None,
        Some(&id),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/webhooks/{id}/rotate-secret`: the new secret, shown this once.
///
/// # Errors
/// 401, 404.
pub async fn rotate_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let (secret, until) = rotate(
        state.store.as_ref(),
        &state.settings.secret_keys,
        now,
        &id,
        state.settings.webhooks.rotation_overlap,
    )
    .await?;
    audit(
        state.store.as_ref(),
        now,
        &auth.actor(),
        "webhook.rotate_secret",
        None,
        Some(&id),
        json!({"previous_secret_valid_until": fmt_time(until)}),
    )
    .await;
    Ok(Json(json!({
        "id": id,
        "secret": secret,
        "previous_secret_valid_until": fmt_time(until),
    })))
}

/// Body of a redelivery request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redeliver {
    /// Only this tenant's stream (default: every stream of the webhook).
    pub tenant: Option<String>,
    /// Resume at this seq instead of after the cursor (events are re-sent from there).
    pub from_seq: Option<i64>,
}

/// `POST /api/v1/webhooks/{id}/redeliver`: reactivates parked or failing streams now.
///
/// # Errors
/// 400 for a bad body, 401, 404 for an unknown webhook or a tenant it does not serve.
pub async fn redeliver_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    // The body is optional: an empty one resumes every stream from its cursor.
    let req: Redeliver = super::optional_json(&body)?;
    let streams = crate::ops::webhooks::redeliver(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        &id,
        req.tenant.as_deref(),
        req.from_seq,
    )
    .await?;
    Ok(Json(json!({
        "id": id,
        "streams": streams.iter().map(stream_json).collect::<Vec<_>>(),
    })))
}

/// Adds each stream's `lag` (events after its position) to a webhook's JSON.
fn add_lags(v: &mut Value, lags: &[roster_store::StreamLag]) {
    let id = v["id"].as_str().unwrap_or_default().to_owned();
    if let Some(streams) = v["streams"].as_array_mut() {
        for s in streams {
            let lag = lags
                .iter()
                .find(|l| l.webhook_id == id && s["tenant"].as_str() == Some(l.tenant_id.as_str()))
                .map_or(0, |l| l.lag);
            s["lag"] = json!(lag);
        }
    }
}

/// The JSON of a webhook with its streams and their lags (three reads).
async fn full_json(state: &AppState, hook: &Webhook) -> Result<Value, ApiError> {
    let streams = state.store.list_streams(Some(&hook.id)).await?;
    let lags = state.store.stream_lags(Some(&hook.id), None).await?;
    let mut v = webhook_json(hook, &streams);
    add_lags(&mut v, &lags);
    Ok(v)
}

async fn set_paused(
    state: &AppState,
    auth: &AdminAuth,
    id: &str,
    paused: bool,
) -> Result<Json<Value>, ApiError> {
    let hook = crate::ops::webhooks::set_paused(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        id,
        paused,
    )
    .await?;
    Ok(Json(full_json(state, &hook).await?))
}

/// `POST /api/v1/webhooks/{id}/pause`: stops delivery; the streams keep their positions.
///
/// # Errors
/// 401, 404.
pub async fn pause_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &auth, &id, true).await
}

/// `POST /api/v1/webhooks/{id}/resume`: delivery continues from each stream's position.
///
/// # Errors
/// 401, 404.
pub async fn resume_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &auth, &id, false).await
}

/// The query of `GET /api/v1/webhooks/{id}/attempts`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptsQuery {
    /// Only this tenant's stream.
    pub tenant: Option<String>,
    /// Only attempts older than this one (the `id` of the last attempt of the previous page).
    pub before: Option<i64>,
    /// At most this many (1 to 100, default 50).
    pub limit: Option<u64>,
}

/// How the API shows a delivery attempt.
#[must_use]
pub fn attempt_json(a: &roster_store::WebhookAttempt) -> Value {
    json!({
        "id": a.id,
        "at": fmt_time(a.at),
        "tenant": a.tenant_id,
        "first_seq": a.first_seq,
        "last_seq": a.last_seq,
        "event_id": a.event_id,
        "delivered": a.delivered(),
        "status": a.status,
        "error": a.error,
        "duration_ms": a.duration_ms,
    })
}

/// `GET /api/v1/webhooks/{id}/attempts`: the newest delivery attempts, newest first (the last
/// 100 of each webhook are kept).
///
/// # Errors
/// 400 for a bad query, 401, 404.
pub async fn attempts_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<AttemptsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=crate::ops::webhooks::MAX_ATTEMPTS_PAGE).contains(&limit) {
        return Err(ApiError::invalid("limit must be from 1 to 100"));
    }
    let attempts = crate::ops::webhooks::attempts(
        state.store.as_ref(),
        &id,
        q.tenant.as_deref(),
        q.before,
        limit,
    )
    .await?;
    let next = (attempts.len() as u64 == limit)
        .then(|| attempts.last().map(|a| a.id))
        .flatten();
    Ok(Json(json!({
        "id": id,
        "attempts": attempts.iter().map(attempt_json).collect::<Vec<_>>(),
        "next_before": next,
    })))
}
