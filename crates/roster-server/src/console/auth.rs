//! Signing in and out: operators (email and password, or an admin API key) and a tenant's IT
//! admin (a one-time setup link).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use time::Duration;

use super::session::{self, pre_token, PrePosted};
use super::view::{render, tenant_href, Chrome};
use super::{redirect, ConsoleError, Posted, Session};
use crate::ops::keys;
use crate::ops::operators;
use crate::ops::setup_links::SETUP_MARKER;
use crate::tokens::{digests_equal, hash_token};
use crate::AppState;

/// How long an operator session lasts.
pub const OPERATOR_SESSION: Duration = Duration::hours(12);
/// How long a setup-link session lasts.
pub const SETUP_SESSION: Duration = Duration::hours(8);

/// `/console`: the tenant list for operators, the tenant's page for an IT admin.
pub async fn home(session: Result<Session, ConsoleError>) -> Response {
    match session {
        Err(_) => redirect("/console/sign-in"),
        Ok(s) => match &s.record.tenant_id {
            None => redirect("/console/tenants"),
            Some(t) => redirect(&tenant_href(t)),
        },
    }
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
    key_open: bool,
}

/// Where to go after signing in: a console page, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/console/")
                && !n.starts_with("/console/sign-")
                && !n.contains("//")
                && !n.contains('\\') =>
        {
            n.to_owned()
        }
        _ => "/console".to_owned(),
    }
}

fn sign_in_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    page: SignInPage,
) -> Result<Response, ConsoleError> {
    let (csrf, set) = pre_token(state, headers);
    let html = render(&SignInPage { csrf, ..page })?;
    let mut r = (status, html).into_response();
    if let Some(c) = set {
        r.headers_mut().insert(SET_COOKIE, c);
    }
    Ok(r)
}

fn blank_sign_in(next: &str) -> SignInPage {
    SignInPage {
        chrome: Chrome::anonymous("Sign in"),
        csrf: String::new(),
        next: next.to_owned(),
        email: String::new(),
        error: None,
        key_open: false,
    }
}

/// Query of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// `GET /console/sign-in`.
pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
    session: Result<Session, ConsoleError>,
) -> Result<Response, ConsoleError> {
    if session.is_ok() {
        return Ok(redirect("/console"));
    }
    let next = safe_next(q.next.as_deref());
    sign_in_form(&state, &headers, StatusCode::OK, blank_sign_in(&next))
}

/// The password sign-in form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    email: String,
    password: String,
    next: Option<String>,
}

async fn signed_in(
    state: &AppState,
    actor: String,
    next: &str,
    audit_details: serde_json::Value,
) -> Result<Response, ConsoleError> {
    let cookie = session::start(state, None, actor.clone(), OPERATOR_SESSION).await?;
    crate::ops::audit(
        state.store.as_ref(),
        state.clock.now(),
        &format!("console:{actor}"),
        "console.sign_in",
        None,
        None,
        audit_details,
    )
    .await;
    let mut r = redirect(next);
    r.headers_mut().insert(SET_COOKIE, cookie);
    Ok(r)
}

/// Longest an attempt on an account under attack from many addresses is delayed.
const MAX_SIGN_IN_DELAY: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest an attempt waits for a free password-hashing slot before it is refused.
const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `POST /console/sign-in`: an operator account's email and password.
///
/// Built so that it cannot be abused: each (account, address) pair has a small budget of
/// attempts, taken before the password is hashed, and beyond it the answer is 429 without
/// hashing; an account attempted from many addresses is slowed down (each attempt waits until
/// the account's budget allows one), never locked, so nobody can lock an operator out; hashes
/// run on the blocking pool behind a semaphore of about one per core; unknown accounts, wrong
/// passwords and throttled attempts all read alike, so the answers reveal no account.
pub async fn sign_in_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    parts: axum::http::request::Parts,
    PrePosted(f): PrePosted<PasswordForm>,
) -> Result<Response, ConsoleError> {
    let next = safe_next(f.next.as_deref());
    let refuse = |status: StatusCode, msg: String| {
        sign_in_form(
            &state,
            &headers,
            status,
            SignInPage {
                email: f.email.clone(),
                error: Some(msg),
                ..blank_sign_in(&next)
            },
        )
    };
    let wrong = "The email or the password is wrong.".to_owned();
    let Ok(email) = operators::normalize_email(&f.email) else {
        return refuse(StatusCode::UNAUTHORIZED, wrong);
    };
    if f.password.len() > operators::MAX_PASSWORD_BYTES {
        return refuse(StatusCode::UNAUTHORIZED, wrong);
    }
    let rates = &state.settings.rate;
    let limiter = &state.limiters.sign_in;
    let source =
        crate::ratelimit::source(&state, &parts).map_or_else(|| "-".to_owned(), |a| a.to_string());
    // Keys are the normalised email whether or not it names an account: the budget reveals
    // nothing about which accounts exist.
    let pair = format!("pair:{email}:{source}");
    let account = format!("account:{email}");
    if let Err(wait) = limiter.check(&pair, rates.sign_in, 1, std::time::Instant::now()) {
        state.limiters.note_refused("sign_in");
        let secs = crate::ratelimit::retry_secs(wait);
        tracing::info!("console sign-in throttled (attempts from one address)");
        let mut r = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many sign-in attempts for this email from your address. Try again in {} \
                 (or ask an administrator to set a new password with `roster operator \
                 set-password`).",
                super::view::fmt_wait(secs)
            ),
        )?;
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(secs),
        );
        return Ok(r);
    }
    // Many addresses at one account: slow each attempt down to the account's rate.
    let delay = limiter.wait(&account, rates.sign_in_account, std::time::Instant::now());
    if !delay.is_zero() {
        tracing::info!(delay_ms = %delay.min(MAX_SIGN_IN_DELAY).as_millis(), "console sign-in slowed (account attempted from many addresses)");
        tokio::time::sleep(delay.min(MAX_SIGN_IN_DELAY)).await;
    }
    limiter.charge(
        &account,
        rates.sign_in_account,
        1,
        std::time::Instant::now(),
    );
    let now = state.clock.now();
    let op = state.store.get_operator(&email).await?;
    let hash = op.as_ref().map_or_else(
        || operators::decoy_hash().to_owned(),
        |o| o.password_hash.clone(),
    );
    let password = f.password.clone();
    let ok = match verify_bounded(&state, password, hash).await {
        Some(ok) => ok,
        None => {
            state.limiters.note_refused("sign_in_busy");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is busy right now. Try again in a minute.".to_owned(),
            );
        }
    };
    if !(ok && op.is_some()) {
        if op.is_some() {
            // Counted for the record (the console's operator list); it never locks: the
            // budgets above do the limiting.
            state
                .store
                .operator_sign_in_failed(&email, now, u32::MAX, Duration::ZERO)
                .await?;
        }
        tracing::info!("console sign-in refused (wrong email or password)");
        return refuse(StatusCode::UNAUTHORIZED, wrong);
    }
    limiter.forget(&pair);
    state.store.operator_signed_in(&email, now).await?;
    signed_in(&state, format!("operator:{email}"), &next, json!({})).await
}

/// Verifies a password on the blocking pool (Argon2 takes tens of milliseconds of CPU and
/// 19 MiB) behind [`AppState::hashing`]; `None` when no slot came free in time.
async fn verify_bounded(state: &AppState, password: String, hash: String) -> Option<bool> {
    let permit = tokio::time::timeout(HASHING_WAIT, state.hashing.clone().acquire_owned())
        .await
        .ok()?
        .ok()?;
    let ok = tokio::task::spawn_blocking(move || {
        let ok = operators::verify_password(&password, &hash);
        drop(permit);
        ok
    })
    .await
    .ok()?;
    Some(ok)
}

/// The API-key sign-in form.
#[derive(Debug, Deserialize)]
pub struct KeyForm {
    key: String,
    next: Option<String>,
}

/// `POST /console/sign-in/key`: an admin API key.
pub async fn sign_in_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    PrePosted(f): PrePosted<KeyForm>,
) -> Result<Response, ConsoleError> {
    let next = safe_next(f.next.as_deref());
    let key = f.key.trim();
    let live = match keys::prefix_of(key) {
        Some(prefix) => match state.store.find_admin_key(prefix).await? {
            // Only a key that may do everything signs in: the console is every operation.
            Some(r)
                if r.revoked_at.is_none()
                    && r.expires_at.is_none_or(|e| e > state.clock.now())
                    && r.scopes.is_none()
                    && digests_equal(&hash_token(key), &r.hash) =>
            {
                Some(r.prefix)
            }
            _ => None,
        },
        None => None,
    };
    let Some(prefix) = live else {
        tracing::info!(
            key_prefix = keys::prefix_of(key).unwrap_or("-"),
            "console sign-in refused (admin key)"
        );
        return sign_in_form(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            SignInPage {
                error: Some(
                    "That key was not accepted: it is not a live admin API key without scopes. \
                     Check it, or create a new one with `roster admin-key create`."
                        .to_owned(),
                ),
                key_open: true,
                ..blank_sign_in(&next)
            },
        );
    };
    signed_in(&state, format!("admin-key:{prefix}"), &next, json!({})).await
}

/// A form with nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct Empty {}

/// `POST /console/sign-out`.
pub async fn sign_out(
    State(state): State<AppState>,
    Posted { session, .. }: Posted<Empty>,
) -> Result<Response, ConsoleError> {
    state.store.delete_session(&session.record.id_hash).await?;
    let mut r = redirect("/console/sign-in");
    r.headers_mut()
        .insert(SET_COOKIE, session::clear_session_cookie(&state));
    Ok(r)
}

#[derive(Template)]
#[template(path = "console/setup.html")]
struct SetupPage {
    chrome: Chrome,
    csrf: String,
    token: String,
    /// The organisation (tenant's display name) the link opens, while it still works.
    org: Option<String>,
    /// The vendor's brand name, when one is set.
    vendor: Option<String>,
}

/// `GET /console/setup/{token}`. Opening the link shows a button instead of signing in at
/// once: link previews and mail scanners fetch URLs, and must not use up a one-time link.
pub async fn setup_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, ConsoleError> {
    let (csrf, set) = pre_token(&state, &headers);
    // Names the organisation without using the link up (only Continue uses it).
    let org = match token.trim() {
        t if t.starts_with(SETUP_MARKER) => {
            let now = state.clock.now();
            match state.store.setup_link_tenant(&hash_token(t), now).await? {
                Some(id) => state.store.get_tenant(&id).await?.map(|t| t.name),
                None => None,
            }
        }
        _ => None,
    };
    let chrome = Chrome::anonymous("Set up provisioning").branded();
    let vendor = chrome.brand.as_ref().and_then(|b| b.name.clone());
    let html = render(&SetupPage {
        chrome,
        csrf,
        token,
        org,
        vendor,
    })?;
    let mut r = html.into_response();
    if let Some(c) = set {
        r.headers_mut().insert(SET_COOKIE, c);
    }
    Ok(r)
}

/// The setup form.
#[derive(Debug, Deserialize)]
pub struct SetupForm {
    token: String,
}

/// `POST /console/setup`: uses the link (once) and opens the tenant's console.
pub async fn setup_use(
    State(state): State<AppState>,
    PrePosted(f): PrePosted<SetupForm>,
) -> Result<Response, ConsoleError> {
    let now = state.clock.now();
    let link = match f.token.trim() {
        t if t.starts_with(SETUP_MARKER) => {
            state.store.consume_setup_link(&hash_token(t), now).await?
        }
        _ => None,
    };
    let Some(link) = link else {
        let page = super::ErrorPage {
            chrome: Chrome::anonymous("Link expired").branded(),
            heading: "This link no longer works",
            message: "Setup links work once and expire. Ask your vendor's support for a new one."
                .to_owned(),
            back: "/console/sign-in",
            back_label: "Operators: sign in",
        };
        return Ok((StatusCode::GONE, render(&page)?).into_response());
    };
    let actor = format!("setup-link:{}", link.tenant_id);
    let cookie = session::start(
        &state,
        Some(link.tenant_id.clone()),
        actor.clone(),
        SETUP_SESSION,
    )
    .await?;
    crate::ops::audit(
        state.store.as_ref(),
        now,
        &format!("console:{actor}"),
        "console.setup_link_used",
        Some(&link.tenant_id),
        None,
        json!({"created_by": link.created_by}),
    )
    .await;
    let mut r = redirect(&tenant_href(&link.tenant_id));
    r.headers_mut().insert(SET_COOKIE, cookie);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_in_the_console() {
        assert_eq!(
            safe_next(Some("/console/t/acme/users?q=a")),
            "/console/t/acme/users?q=a"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/console//evil",
            "/console/sign-in",
            "/api/v1/tenants",
            "/console/\\evil",
        ] {
            assert_eq!(safe_next(Some(bad)), "/console", "{bad}");
        }
        assert_eq!(safe_next(None), "/console");
    }
}
