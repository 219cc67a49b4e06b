//! Operators' pages: the tenant list, creating a tenant, and setup links for IT admins.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::super::view::{
    self, fmt_ago, fmt_when, options, render, tenant_href, Chrome, Opt, Pager,
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
    last_request: String,
    created: String,
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
    session.require_operator()?;
    let q = param(&p, "q").unwrap_or("").to_owned();
    let needle = q.to_lowercase();
    let all: Vec<_> = state
        .store
        .list_tenants()
        .await?
        .into_iter()
        .filter(|t| {
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
    let mut rows = Vec::new();
    for t in all
        .iter()
        .skip((page - 1) * TENANTS_PER_PAGE)
        .take(TENANTS_PER_PAGE)
    {
        // A row of the log or a counted read, whichever is newer.
        let last = state.store.last_request(&t.id).await?;
        rows.push(TenantRow {
            href: tenant_href(&t.id),
            name: t.name.clone(),
            id: t.id.clone(),
            idp: idp::display(&t.idp).to_owned(),
            scim_on: t.settings.scim_enabled,
            last_request: last.map_or_else(
                || "none yet".to_owned(),
                |e| format!("{}, {}", fmt_ago(e.at(), now), e.status()),
            ),
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
        chrome: Chrome::signed_in(&session, "Tenants").with(notice),
        idps: options(&idp::IDPS, "generic"),
        q,
        rows,
        total,
        pager,
        keys: key_rows(&state).await?,
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
        name: form.name,
        idp: Some(form.idp),
        ..ops::tenants::NewTenant::default()
    };
    let (t, _) = ops::tenants::create(state.store.as_ref(), now, req, None).await?;
    session
        .audit(
            &state,
            "tenant.create",
            &t.id,
            Some(&t.id),
            json!({"name": t.name, "idp": t.idp, "scim_enabled": false}),
        )
        .await;
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

/// `GET /console/t/{tenant}/setup-link`: the form that creates a setup link.
pub async fn setup_link_form(
    State(state): State<AppState>,
    session: Session,
    Path(tenant): Path<String>,
) -> Result<Html<String>, ConsoleError> {
    session.require_operator()?;
    let t = session.tenant(&state, &tenant).await?;
    render(&SetupLinkPage {
        chrome: Chrome::signed_in(&session, format!("Setup link · {}", t.name)),
        action: format!("{}/setup-link", tenant_href(&t.id)),
        tenant_name: t.name,
        url: None,
        expires: String::new(),
    })
}

/// The setup-link form.
#[derive(Debug, Deserialize)]
pub struct SetupLinkForm {
    expires: String,
}

/// `POST /console/t/{tenant}/setup-link`: creates the link and shows it, once.
pub async fn setup_link_create(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Posted { session, form }: Posted<SetupLinkForm>,
) -> Result<Response, ConsoleError> {
    session.require_operator()?;
    let t = session.tenant(&state, &tenant).await?;
    let ttl = setup_links::parse_ttl(&form.expires).map_err(ConsoleError::Invalid)?;
    let now = state.clock.now();
    let actor = session.actor();
    let (token, expires) =
        setup_links::create_setup_link(state.store.as_ref(), now, &t.id, ttl, &actor, &actor)
            .await?;
    let url = setup_links::setup_url(&crate::urls::origin(&state), &token);
    let html = render(&SetupLinkPage {
        chrome: Chrome::signed_in(&session, format!("Setup link · {}", t.name)),
        action: String::new(),
        tenant_name: t.name,
        url: Some(url),
        expires: fmt_when(expires),
    })?;
    Ok(html.into_response())
}
