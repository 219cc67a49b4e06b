//! Operators' pages: the tenant list, creating a tenant, and setup links for IT admins.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::super::view::{
    self, fmt_ago, fmt_when, options, render, tenant_href, Chrome, FormState, Notice, Opt, Pager,
};
use super::super::{idp, redirect, ConsoleError, Posted, Session};
use super::{param, Params};
use crate::ops;
use crate::ops::setup_links;
use crate::AppState;

/// Tenants per page.
const TENANTS_PER_PAGE: usize = 50;

struct TenantRow {
    href: String,
    name: String,
    id: String,
    idp: String,
    scim_on: bool,
    health: HealthCells,
    created: String,
}

/// What the tenants list shows of a tenant's health, worst first: a tenant with failures
/// never looks healthy because its newest request happened to succeed.
struct HealthCells {
    /// The newest success ("3 minutes ago"), or "never".
    last_success: String,
    /// Its time, ISO 8601 (for `<time>`), when there is one.
    last_success_iso: Option<String>,
    /// The newest request when it failed ("2 minutes ago, 401"), else empty.
    last_failure: String,
    /// Failed requests in the last 24 hours; a red badge when above 0.
    failures_24h: u64,
    /// Requests in the last 24 hours.
    requests_24h: u64,
    /// The log filtered to this tenant's failures of the last 24 hours.
    failures_href: String,
    /// "Token expires in 12 days" / "No valid token" (SCIM on, every token expired or
    /// revoked); empty when fine.
    token_warning: String,
    /// "Holding 40 deactivations" while the guard holds; empty otherwise.
    guard: String,
    /// "1 webhook failing (10 attempts)"; empty otherwise.
    webhook: String,
    /// Whether nothing above needs attention.
    healthy: bool,
}

/// Token expiry within this many days is a warning.
const TOKEN_WARN_DAYS: i64 = 30;

impl HealthCells {
    fn of(h: &roster_store::TenantHealth, scim_on: bool, now: time::OffsetDateTime) -> Self {
        let failures_href = {
            let since = ops::fmt_time(now - time::Duration::days(1));
            format!(
                "{}/log?outcome=failure&since={}",
                tenant_href(&h.tenant_id),
                view::url_enc(since.get(..16).unwrap_or(&since))
            )
        };
        let last_failure = match h.last_request {
            Some((at, status)) if status >= 400 => format!("{}, {status}", fmt_ago(at, now)),
            _ => String::new(),
        };
        let token_warning = match h.token_expires_at {
            Some(t) if t - now <= time::Duration::days(TOKEN_WARN_DAYS) => {
                format!("Token expires {}", view::fmt_in(t, now))
            }
            None if scim_on => "No valid token".to_owned(),
            _ => String::new(),
        };
        let guard = if h.guard_tripped_at.is_some() {
            format!(
                "Holding {} deactivation{}",
                h.guard_held_users,
                if h.guard_held_users == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        };
        let webhook = if h.webhooks.failing > 0 {
            format!(
                "{} webhook stream{} failing ({} attempt{})",
                h.webhooks.failing,
                if h.webhooks.failing == 1 { "" } else { "s" },
                h.webhooks.max_attempts,
                if h.webhooks.max_attempts == 1 {
                    ""
                } else {
                    "s"
                },
            )
        } else {
            String::new()
        };
        Self {
            last_success: h
                .last_success_at
                .map_or_else(|| "never".to_owned(), |t| fmt_ago(t, now)),
            last_success_iso: h.last_success_at.map(ops::fmt_time),
            healthy: h.failures_24h == 0
                && last_failure.is_empty()
                && token_warning.is_empty()
                && guard.is_empty()
                && webhook.is_empty(),
            last_failure,
            failures_24h: h.failures_24h,
            requests_24h: h.requests_24h,
            failures_href,
            token_warning,
            guard,
            webhook,
        }
    }
}

struct KeyRow {
    prefix: String,
    name: String,
    scopes: String,
    status: &'static str,
    expires: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "console/tenants.html")]
struct TenantsPage {
    chrome: Chrome,
    q: String,
    idps: Vec<Opt>,
    rows: Vec<TenantRow>,
    total: usize,
    pager: Pager,
    keys: Vec<KeyRow>,
    /// The new-tenant form (as typed, with its errors, when refused).
    new_form: FormState,
    new_name: String,
    notice: Option<Notice>,
}

/// The admin API keys as operators see them: never the key, only its prefix, scopes and state.
async fn key_rows(state: &AppState) -> Result<Vec<KeyRow>, ConsoleError> {
    let now = state.clock.now();
    Ok(state
        .store
        .list_admin_keys()
        .await?
        .into_iter()
        .map(|k| KeyRow {
            status: if k.revoked_at.is_some() {
                "revoked"
            } else if k.expires_at.is_some_and(|e| e <= now) {
                "expired"
            } else {
                "active"
            },
            scopes: k
                .scopes
                .map_or_else(|| "all (console sign-in too)".to_owned(), |s| s.join(", ")),
            expires: k.expires_at.map_or_else(|| "never".to_owned(), fmt_when),
            last_used: k
                .last_used_at
                .map_or_else(|| "never".to_owned(), |t| fmt_ago(t, now)),
            name: k.name.unwrap_or_default(),
            prefix: k.prefix,
        })
        .collect())
}

/// `GET /console/tenants`: every tenant, searchable, 50 a page.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(p): Query<Params>,
) -> Result<Html<String>, ConsoleError> {
    list_page(&state, &session, &p, FormState::new("new-")).await
}

/// The tenants page, with the new-tenant form `new_form`.
async fn list_page(
    state: &AppState,
    session: &Session,
    p: &Params,
    new_form: FormState,
) -> Result<Html<String>, ConsoleError> {
    session.require_operator()?;
    let p = p.clone();
    let q = param(&p, "q").unwrap_or("").to_owned();
    let needle = q.to_lowercase();
    // By id, the order the health statement pages in: a page of the list is then one window
    // of the tenants by id, read with one statement whatever the page.
    let mut everyone = state.store.list_tenants().await?;
    everyone.sort_by(|a, b| a.id.cmp(&b.id));
    let all: Vec<(usize, &roster_store::Tenant)> = everyone
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            needle.is_empty() || t.name.to_lowercase().contains(&needle) || t.id.contains(&needle)
        })
        .collect();
    let total = all.len();
    let pages = total.div_ceil(TENANTS_PER_PAGE).max(1);
    let page = param(&p, "page")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let now = state.clock.now();
    let shown: Vec<_> = all
        .iter()
        .skip((page - 1) * TENANTS_PER_PAGE)
        .take(TENANTS_PER_PAGE)
        .collect();
    // The window of tenants (by id) from the page's first to its last: one statement.
    let health = match (shown.first(), shown.last()) {
        (Some((first, _)), Some((last, _))) => {
            let after = first
                .checked_sub(1)
                .and_then(|i| everyone.get(i))
                .map(|t| t.id.as_str());
            let n = u64::try_from(last - first + 1).unwrap_or(u64::MAX);
            state.store.tenants_health(after, n, now).await?
        }
        _ => Vec::new(),
    };
    let mut rows = Vec::new();
    for (_, t) in shown {
        let h = health
            .iter()
            .find(|h| h.tenant_id == t.id)
            .cloned()
            .unwrap_or_else(|| roster_store::TenantHealth {
                tenant_id: t.id.clone(),
                name: t.name.clone(),
                last_request: None,
                last_success_at: None,
                requests_24h: 0,
                failures_24h: 0,
                token_expires_at: None,
                guard_tripped_at: None,
                guard_held_users: 0,
                webhooks: roster_store::WebhookHealth::default(),
            });
        rows.push(TenantRow {
            href: tenant_href(&t.id),
            name: t.name.clone(),
            id: t.id.clone(),
            idp: idp::display(&t.idp).to_owned(),
            scim_on: t.settings.scim_enabled,
            health: HealthCells::of(&h, t.settings.scim_enabled, now),
            created: fmt_when(t.created_at),
        });
    }
    let link = |n: usize| {
        let page = n.to_string();
        format!(
            "/console/tenants?{}",
            view::query(&[("q", &q), ("page", &page)])
        )
    };
    let pager = Pager {
        first: None,
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
        next_label: "Next page",
        summary: format!("Page {page} of {pages} · {total} in all"),
    };
    let notice = match param(&p, "done") {
        Some("deleted") => Some(view::Notice::ok("Tenant deleted.")),
        _ => None,
    };
    render(&TenantsPage {
        chrome: Chrome::signed_in(session, "Tenants"),
        notice,
        idps: options(&idp::IDPS, &new_form.value("idp", "generic")),
        new_name: new_form.value("name", ""),
        new_form,
        q,
        rows,
        total,
        pager,
        keys: key_rows(state).await?,
    })
}

/// The new-tenant form.
#[derive(Debug, Deserialize)]
pub struct NewTenantForm {
    name: String,
    idp: String,
}

/// `POST /console/tenants`: creates a tenant with SCIM off (its page enables it and shows
/// the token once).
pub async fn create(
    State(state): State<AppState>,
    Posted { session, form }: Posted<NewTenantForm>,
) -> Result<Response, ConsoleError> {
    session.require_operator()?;
    let now = state.clock.now();
    let req = ops::tenants::NewTenant {
        name: form.name.clone(),
        idp: Some(form.idp.clone()),
        ..ops::tenants::NewTenant::default()
    };
    let t = match ops::tenants::create(state.store.as_ref(), now, &session.actor(), req, None)
        .await
        .map_err(ConsoleError::from)
    {
        Ok((t, _)) => t,
        Err(ConsoleError::Refused(errors)) => {
            // The id is made from the name: a taken id is the name's problem.
            let errors = errors
                .into_iter()
                .map(|mut e| {
                    if e.field.as_deref().is_none_or(|f| f == "id") {
                        e.field = Some("name".to_owned());
                    }
                    e
                })
                .collect();
            let typed = [("name", form.name.as_str()), ("idp", form.idp.as_str())];
            let new_form = FormState::refused("new-", typed, Vec::new()).with_op_errors(
                errors,
                &[
                    ("name", "name", "The organisation name"),
                    ("idp", "idp", "The identity provider"),
                ],
            );
            let html = list_page(&state, &session, &Params::new(), new_form).await?;
            return Ok((StatusCode::BAD_REQUEST, html).into_response());
        }
        Err(e) => return Err(e),
    };
    Ok(redirect(&format!("{}?done=created", tenant_href(&t.id))))
}

#[derive(Template)]
#[template(path = "console/setup_link.html")]
struct SetupLinkPage {
    chrome: Chrome,
    tenant_name: String,
    action: String,
    url: Option<String>,
    expires: String,
}

/// The session's key of the setup link shown once: `(url, expires)`, tab-separated.
fn link_key(tenant: &str) -> String {
    format!("setup-link:{tenant}")
}

/// `GET /console/t/{tenant}/setup-link`: the form that creates a setup link; after creating
/// one (`?done=created`), the link, shown this once (kept in the session for this GET only).
pub async fn setup_link_form(
    State(state): State<AppState>,
    session: Session,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Result<Html<String>, ConsoleError> {
    session.require_operator()?;
    let t = session.tenant(&state, &tenant).await?;
    let created = param(&p, "done") == Some("created");
    let shown = if created {
        session.take_once(&state, &link_key(&t.id)).await
    } else {
        None
    };
    let (url, expires) = match shown.as_deref().and_then(|v| v.split_once('\t')) {
        Some((u, e)) => (Some(u.to_owned()), e.to_owned()),
        None => (None, String::new()),
    };
    // A reload after the link was shown: say so rather than offer a new one silently.
    let notice = (created && url.is_none()).then(|| {
        Notice::ok(
            "The setup link was shown once and is not kept. If it was not sent, create a new \
             one: the earlier one still works until it expires or is used.",
        )
    });
    render(&SetupLinkPage {
        chrome: Chrome::signed_in(&session, format!("Setup link · {}", t.name)).with(notice),
        action: format!("{}/setup-link", tenant_href(&t.id)),
        tenant_name: t.name,
        url,
        expires,
    })
}

/// The setup-link form.
#[derive(Debug, Deserialize)]
pub struct SetupLinkForm {
    expires: String,
}

/// `POST /console/t/{tenant}/setup-link`: creates the link and sends the browser to the page
/// that shows it, once (post, redirect, get: the link never travels in an address).
pub async fn setup_link_create(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Posted { session, form }: Posted<SetupLinkForm>,
) -> Result<Response, ConsoleError> {
    session.require_operator()?;
    let t = session.tenant(&state, &tenant).await?;
    // Only a hand-made request sends another lifetime: the page's error has its navigation.
    let ttl = setup_links::parse_ttl(&form.expires).map_err(ConsoleError::Invalid)?;
    let now = state.clock.now();
    let actor = session.actor();
    let (token, expires) =
        setup_links::create_setup_link(state.store.as_ref(), now, &t.id, ttl, &actor, &actor)
            .await?;
    let url = setup_links::setup_url(&crate::urls::origin(&state), &token);
    session
        .put_once(
            &state,
            &link_key(&t.id),
            &format!("{url}\t{}", fmt_when(expires)),
        )
        .await;
    Ok(redirect(&format!(
        "{}/setup-link?done=created",
        tenant_href(&t.id)
    )))
}
