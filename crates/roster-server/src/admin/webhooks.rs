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

use super::feed::parse_types;
use super::{audit, fmt_time, AdminAuth, ApiError, ApiJson, ApiPath};
use crate::secretbox::KeyRing;
use crate::webhooks::signature::new_secret;
use crate::AppState;

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

/// Validates and stores a webhook, its secret sealed with `keys`; returns it with its secret
/// in clear (to show once).
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
    let url = reqwest::Url::parse(&req.url)
        .map_err(|e| ApiError::invalid(format!("url is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ApiError::invalid(
            "url must be an http:// or https:// URL with a host",
        ));
    }
    // A credential in the URL would be stored, listed and written to the audit log; receivers
    // authenticate Roster by the signature instead.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::invalid(
            "url must not contain a user name or password; verify the Roster-Signature header \
             with the webhook's secret instead (docs/events.md)",
        ));
    }
    if !crate::webhooks::destination::host_allowed(&url, allow_private) {
        return Err(ApiError::invalid(format!(
            "url: {}",
            crate::webhooks::destination::NOT_ALLOWED
        )));
    }
    // Each element must be one type name, exactly (not a comma-separated list, not empty).
    if let Some(bad) = req
        .event_types
        .iter()
        .find(|t| roster_store::EventType::parse(t).is_none())
    {
        return Err(ApiError::invalid(format!(
            "unknown event type \"{bad}\"; see docs/events.md for the list"
        )));
    }
    let types = parse_types(Some(&req.event_types.join(",")))?;
    if let Some(t) = &req.tenant {
        if store.get_tenant(t).await?.is_none() {
            return Err(ApiError::not_found(format!("no tenant \"{t}\"")));
        }
    }
    let id = format!("wh_{}", crate::tokens::random_alnum(16));
    let secret = new_secret();
    let mut hook = Webhook {
        secret: keys.seal(&secret, &id)?,
        id,
        tenant_id: req.tenant,
        url: req.url,
        description: req.description,
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

/// Replaces a webhook's secret (stored sealed with `keys`); the old one keeps signing for
/// `overlap`. Returns the new secret in clear and when the old one stops.
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
    let secret = new_secret();
    let sealed = keys.seal(&secret, id)?;
    let until = now + overlap;
    store
        .rotate_webhook_secret(id, &sealed, until)
        .await
        .map_err(|e| not_found(e, id))?;
    Ok((secret, until))
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
    Ok(Json(json!({
        "webhooks": hooks.iter().map(|w| webhook_json(w, &streams)).collect::<Vec<_>>(),
    })))
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
    let hook = state
        .store
        .get_webhook(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no webhook \"{id}\"")))?;
    let streams = state.store.list_streams(Some(&id)).await?;
    Ok(Json(webhook_json(&hook, &streams)))
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
    if req.from_seq.is_some_and(|s| s < 1) {
        return Err(ApiError::invalid("from_seq must be 1 or more"));
    }
    let streams = state
        .store
        .redeliver(&id, req.tenant.as_deref(), req.from_seq)
        .await
        .map_err(|e| match e {
            // A webhook scoped to another tenant has no stream of this one: a missing
            // sub-resource, like an unknown webhook.
            roster_store::StoreError::Invalid(m) => ApiError::not_found(m),
            e => not_found(e, &id),
        })?;
    audit(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        "webhook.redeliver",
        req.tenant.as_deref(),
        Some(&id),
        json!({"from_seq": req.from_seq}),
    )
    .await;
    Ok(Json(json!({
        "id": id,
        "streams": streams.iter().map(stream_json).collect::<Vec<_>>(),
    })))
}
