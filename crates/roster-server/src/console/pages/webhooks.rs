//! Operators' webhooks page (`/console/webhooks`): every endpoint with its delivery state,
//! adding one (its signing secret shown once), and a page per endpoint with its streams (one
//! per tenant: position, lag, failures in a row, last success), its recent delivery attempts
//! with the receiver's status, and pause/resume, rotate secret, redeliver and remove.
//!
//! Everything goes through [`crate::ops::webhooks`], as the admin API does. A setup-link
//! session (an IT admin) gets 403: endpoints belong to the vendor, not to one customer.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::super::view::{
    fmt_ago, fmt_when, render, split_list, tenant_href, url_enc, Chrome, FormState, Notice,
};
use super::super::{redirect, ConsoleError, Posted, Session};
use super::scim::thousands;
use super::{param, Params};
use crate::ops;
use crate::ops::webhooks::{EndpointView, NewWebhook};
use crate::AppState;

/// Attempts shown on an endpoint's page.
const ATTEMPTS_SHOWN: u64 = 50;

/// An endpoint in the list.
struct EndpointRow {
    href: String,
    url: String,
    description: String,
    scope: String,
    events: String,
    status: &'static str,
    last_success: String,
    failures: i64,
    lag: String,
    last_error: String,
}

fn scope_of(e: &EndpointView) -> String {
    e.hook
        .tenant_id
        .clone()
        .unwrap_or_else(|| "every tenant".to_owned())
}

fn events_of(e: &EndpointView) -> String {
    if e.hook.event_types.is_empty() {
        "every type".to_owned()
    } else {
        e.hook.event_types.join(", ")
    }
}

fn row(e: &EndpointView, now: time::OffsetDateTime) -> EndpointRow {
    EndpointRow {
        href: format!("/console/webhooks/{}", url_enc(&e.hook.id)),
        url: e.hook.url.clone(),
        description: e.hook.description.clone().unwrap_or_default(),
        scope: scope_of(e),
        events: events_of(e),
        status: e.status(),
        last_success: e
            .last_success()
            .map_or_else(|| "never".to_owned(), |t| fmt_ago(t, now)),
        failures: e.consecutive_failures(),
        lag: thousands(e.lag()),
        last_error: e.last_error().unwrap_or_default().to_owned(),
    }
}

#[derive(Template)]
#[template(path = "console/webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    rows: Vec<EndpointRow>,
    form: FormState,
    url: String,
    tenant: String,
    events: String,
    description: String,
    notice: Option<Notice>,
}

/// `GET /console/webhooks`: every endpoint with its state, and the form that adds one.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(p): Query<Params>,
) -> Result<Html<String>, ConsoleError> {
    let notice = match param(&p, "done") {
        Some("deleted") => Some(Notice::ok("Webhook endpoint removed.")),
        _ => None,
    };
    list_page(&state, &session, FormState::new("wh-"), notice).await
}

async fn list_page(
    state: &AppState,
    session: &Session,
    form: FormState,
    notice: Option<Notice>,
) -> Result<Html<String>, ConsoleError> {
    session.require_operator()?;
    let now = state.clock.now();
    let rows = ops::webhooks::endpoints(state.store.as_ref(), None)
        .await?
        .iter()
        .map(|e| row(e, now))
        .collect();
    render(&WebhooksPage {
        chrome: Chrome::signed_in(session, "Webhooks"),
        rows,
        url: form.value("url", ""),
        tenant: form.value("tenant", ""),
        events: form.value("events", ""),
        description: form.value("description", ""),
        form,
        notice,
    })
}

/// The add-an-endpoint form.
#[derive(Debug, Deserialize)]
pub struct NewEndpointForm {
    url: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    events: String,
    #[serde(default)]
    description: String,
}

/// The session's key of a webhook secret shown once.
fn secret_key(id: &str) -> String {
    format!("webhook-secret:{id}")
}

/// `POST /console/webhooks`: adds an endpoint, then shows its secret once on its page.
pub async fn create(
    State(state): State<AppState>,
    Posted { session, form }: Posted<NewEndpointForm>,
) -> Result<Response, ConsoleError> {
    session.require_operator()?;
    let now = state.clock.now();
    let tenant = form.tenant.trim();
    let req = NewWebhook {
        url: form.url.trim().to_owned(),
        tenant: (!tenant.is_empty()).then(|| tenant.to_owned()),
        event_types: split_list(&form.events),
        description: Some(form.description.trim().to_owned()),
    };
    let result = ops::webhooks::create(
        state.store.as_ref(),
        &state.settings.secret_keys,
        now,
        req,
        state.settings.webhooks.allow_private,
    )
    .await;
    let hook = match result {
        Ok(h) => h,
        Err(e) => {
            let errors = match e {
                ops::OpError::NotFound { message } => vec![ops::FieldError {
                    field: Some("tenant".into()),
                    message: format!("{message}: leave it empty for every tenant"),
                }],
                other => match ConsoleError::from(other) {
                    ConsoleError::Refused(errors) => errors,
                    e => return Err(e),
                },
            };
            let typed = [
                ("url", form.url.as_str()),
                ("tenant", form.tenant.as_str()),
                ("events", form.events.as_str()),
                ("description", form.description.as_str()),
            ];
            let f = FormState::refused("wh-", typed, Vec::new()).with_op_errors(
                errors,
                &[
                    ("url", "url", "The URL"),
                    ("event_types", "events", "The event types"),
                    ("tenant", "tenant", "The tenant"),
                ],
            );
            let html = list_page(&state, &session, f, None).await?;
            return Ok((StatusCode::BAD_REQUEST, html).into_response());
        }
    };
    ops::audit(
        state.store.as_ref(),
        now,
        &session.actor(),
        "webhook.create",
        hook.tenant_id.as_deref(),
        Some(&hook.id),
        json!({"url": hook.url, "event_types": hook.event_types}),
    )
    .await;
    session
        .put_once(&state, &secret_key(&hook.id), &hook.secret)
        .await;
    Ok(redirect(&format!(
        "/console/webhooks/{}?done=created",
        url_enc(&hook.id)
    )))
}

struct StreamRow {
    tenant: String,
    tenant_href: String,
    status: &'static str,
    cursor: i64,
    lag: String,
    failures: i64,
    last_success: String,
    last_error: String,
    next_attempt: String,
}

struct AttemptRow {
    at: String,
    at_iso: String,
    tenant: String,
    events: String,
    delivered: bool,
    status: String,
    error: String,
    duration: String,
}

#[derive(Template)]
#[template(path = "console/webhook.html")]
struct WebhookPage {
    chrome: Chrome,
    id: String,
    action: String,
    url: String,
    description: String,
    scope: String,
    events: String,
    created: String,
    paused: bool,
    status: &'static str,
    streams: Vec<StreamRow>,
    attempts: Vec<AttemptRow>,
    /// A new secret, shown this once.
    secret: Option<String>,
    secret_until: String,
    notice: Option<Notice>,
    /// The dialog rendered open (without JavaScript): `rotate` or `remove`.
    confirm: String,
}

/// `GET /console/webhooks/{id}`: the endpoint's streams and recent attempts, and its actions.
pub async fn detail(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(p): Query<Params>,
) -> Result<Html<String>, ConsoleError> {
    session.require_operator()?;
    let now = state.clock.now();
    let store = state.store.as_ref();
    let e = ops::webhooks::endpoint(store, &id).await?;
    let done = param(&p, "done");
    let shown = match done {
        Some("created" | "rotated") => session.take_once(&state, &secret_key(&id)).await,
        _ => None,
    };
    let (secret, secret_until) = match shown.as_deref().map(|s| s.split_once('\t')) {
        Some(Some((s, until))) => (Some(s.to_owned()), until.to_owned()),
        Some(None) => (shown.clone(), String::new()),
        None => (None, String::new()),
    };
    let notice = match (done, secret.is_some()) {
        (Some("created"), true) => Some(Notice::ok(
            "Webhook endpoint added. Copy its signing secret now: it is shown this once.",
        )),
        (Some("rotated"), true) => Some(Notice::ok(
            "New signing secret created. Copy it now: it is shown this once.",
        )),
        (Some("created" | "rotated"), false) => Some(Notice::ok(
            "The signing secret was shown once and is not kept. Rotate the secret to get a new one.",
        )),
        (Some("paused"), _) => Some(Notice::ok(
            "Paused: nothing is delivered until you resume; each tenant's position is kept.",
        )),
        (Some("resumed"), _) => Some(Notice::ok(
            "Resumed: delivery continues with the first event not yet delivered.",
        )),
        (Some("redelivered"), _) => Some(Notice::ok(
            "Redelivery started: every stream tries again now.",
        )),
        _ => None,
    };
    let attempts = ops::webhooks::attempts(store, &id, None, None, ATTEMPTS_SHOWN)
        .await?
        .into_iter()
        .map(|a| AttemptRow {
            at: fmt_when(a.at),
            at_iso: ops::fmt_time(a.at),
            events: if a.first_seq == a.last_seq {
                format!("#{}", a.first_seq)
            } else {
                format!("#{}–#{}", a.first_seq, a.last_seq)
            },
            delivered: a.delivered(),
            status: a
                .status
                .map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
            error: a.error.clone().unwrap_or_default(),
            duration: format!("{} ms", thousands(a.duration_ms)),
            tenant: a.tenant_id,
        })
        .collect();
    let streams = e
        .streams
        .iter()
        .map(|s| StreamRow {
            tenant_href: tenant_href(&s.stream.tenant_id),
            tenant: s.stream.tenant_id.clone(),
            status: s.status(&e.hook),
            cursor: s.stream.cursor,
            lag: thousands(s.lag),
            failures: s.stream.attempts,
            last_success: s
                .stream
                .last_success_at
                .map_or_else(|| "never".to_owned(), |t| fmt_ago(t, now)),
            last_error: s.stream.last_error.clone().unwrap_or_default(),
            next_attempt: s
                .stream
                .next_attempt_at
                .filter(|t| *t > now && s.stream.attempts > 0)
                .map(|t| super::super::view::fmt_in(t, now))
                .unwrap_or_default(),
        })
        .collect();
    render(&WebhookPage {
        chrome: Chrome::signed_in(&session, format!("Webhook {}", e.hook.url)),
        action: format!("/console/webhooks/{}", url_enc(&id)),
        url: e.hook.url.clone(),
        description: e.hook.description.clone().unwrap_or_default(),
        scope: scope_of(&e),
        events: events_of(&e),
        created: fmt_when(e.hook.created_at),
        paused: !e.hook.enabled,
        status: e.status(),
        id,
        streams,
        attempts,
        secret,
        secret_until,
        notice,
        confirm: param(&p, "confirm").unwrap_or_default().to_owned(),
    })
}

/// The forms of an endpoint's page (only the CSRF token).
#[derive(Debug, Deserialize)]
pub struct ActionForm {}

/// `POST /console/webhooks/{id}/{action}`: `pause`, `resume`, `rotate`, `redeliver` or
/// `delete`; back to the endpoint's page (the list, after `delete`).
pub async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    Posted { session, form: _ }: Posted<ActionForm>,
) -> Result<Response, ConsoleError> {
    session.require_operator()?;
    let store = state.store.as_ref();
    let now = state.clock.now();
    let actor = session.actor();
    let page = format!("/console/webhooks/{}", url_enc(&id));
    let done = match action.as_str() {
        "pause" | "resume" => {
            let pause = action == "pause";
            ops::webhooks::set_paused(store, now, &actor, &id, pause).await?;
            if pause {
                "paused"
            } else {
                "resumed"
            }
        }
        "redeliver" => {
            ops::webhooks::redeliver(store, now, &actor, &id, None, None).await?;
            "redelivered"
        }
        "rotate" => {
            let (secret, until) = ops::webhooks::rotate(
                store,
                &state.settings.secret_keys,
                now,
                &id,
                state.settings.webhooks.rotation_overlap,
            )
            .await?;
            ops::audit(
                store,
                now,
                &actor,
                "webhook.rotate_secret",
                None,
                Some(&id),
                json!({"previous_secret_valid_until": ops::fmt_time(until)}),
            )
            .await;
            session
                .put_once(
                    &state,
                    &secret_key(&id),
                    &format!("{secret}\t{}", fmt_when(until)),
                )
                .await;
            "rotated"
        }
        "delete" => {
            store.delete_webhook(&id).await.map_err(|e| match e {
                roster_store::StoreError::NotFound => ConsoleError::NotFound,
                other => other.into(),
            })?;
            ops::audit(
                store,
                now,
                &actor,
                "webhook.delete",
                None,
                Some(&id),
                json!({}),
            )
            .await;
            return Ok(redirect("/console/webhooks?done=deleted"));
        }
        _ => return Err(ConsoleError::NotFound),
    };
    Ok(redirect(&format!("{page}?done={done}")))
}
