//! The web console at `/console`: server-rendered pages for operators and for a tenant's IT
//! admin (by setup link) to set up SCIM and watch users, groups and the provisioning log.
//!
//! The console is another front end to the operations the admin API uses (STYLE §1, kanidm's
//! views): it changes nothing the API could not, through the same functions ([`crate::ops`]),
//! validated and audited the same way. Pages are askama templates and one CSS and one JS file, all compiled
//! into the binary; nothing is fetched from elsewhere. Every page works without JavaScript;
//! the script adds copy buttons, modal confirmation dialogs and the live identity-provider
//! picker.
//!
//! Security: sessions live server-side ([`roster_store::ConsoleStore`]); the cookie holds a
//! random id whose SHA-256 is stored, and is `HttpOnly`, `SameSite=Strict`, and `Secure` when
//! the public URL is https. Every POST must come from the console's own origin and carry the
//! CSRF token (derived from the session id, so nothing more is stored); the sign-in forms use
//! a pre-session double-submit token. Every tenant page checks the session's scope, and a
//! setup-link session sees its one tenant only (another tenant is a plain 404). Responses
//! carry a strict Content-Security-Policy and are never cached.

use std::sync::OnceLock;

use axum::extract::{OriginalUri, Request};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use roster_store::StoreError;
use sha2::{Digest, Sha256};

use crate::ops::FieldError;
use crate::AppState;

mod auth;
mod idp;
mod pages;
mod session;
pub mod view;

pub use auth::{OPERATOR_SESSION, SETUP_SESSION};
pub use session::{Posted, Session, COOKIE_NAME};

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The policy every console response carries: only our own CSS, script and forms; no frames,
/// no inline script or style, nothing from another origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A short digest of the CSS and JS, added to their URLs so that a new release is fetched at
/// once while the files are cached for a year otherwise.
#[must_use]
pub fn asset_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut h = Sha256::new();
        h.update(CSS);
        h.update(JS);
        hex::encode(&h.finalize()[..6])
    })
}

/// The `/console` router.
pub fn routes() -> Router<AppState> {
    use pages::{groups, health, log, scim, tenants, users, webhooks};
    Router::new()
        .route("/", get(auth::home))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .route("/assets/brand.css", get(brand_css))
        .route("/assets/brand-logo", get(brand_logo))
        .route(
            "/sign-in",
            get(auth::sign_in_page).post(auth::sign_in_password),
        )
        .route("/sign-in/key", post(auth::sign_in_key))
        .route("/sign-out", post(auth::sign_out))
        .route("/setup/{token}", get(auth::setup_page))
        .route("/setup", post(auth::setup_use))
        .route("/tenants", get(tenants::list).post(tenants::create))
        .route(
            "/t/{tenant}/setup-link",
            get(tenants::setup_link_form).post(tenants::setup_link_create),
        )
        .route("/t/{tenant}", get(scim::page))
        .route("/t/{tenant}/idp", post(scim::save_idp))
        .route("/t/{tenant}/scim/enable", post(scim::enable))
        .route("/t/{tenant}/scim/regenerate", post(scim::regenerate))
        .route("/t/{tenant}/scim/disable", post(scim::disable))
        .route("/t/{tenant}/settings", post(scim::save_settings))
        .route("/t/{tenant}/settings/{section}", get(scim::section_page))
        .route("/t/{tenant}/role-catalogue", post(scim::add_catalogue_role))
        .route(
            "/t/{tenant}/role-catalogue/delete",
            post(scim::remove_catalogue_role),
        )
        .route("/t/{tenant}/grantable-roles", post(scim::save_grantable))
        .route("/t/{tenant}/guard/{decision}", post(scim::guard_decide))
        .route(
            "/t/{tenant}/first-sync/{decision}",
            post(scim::review_decide),
        )
        .route("/t/{tenant}/role-mappings", post(scim::add_mapping))
        .route("/t/{tenant}/role-mappings/{id}", post(scim::save_mapping))
        .route(
            "/t/{tenant}/role-mappings/{id}/delete",
            post(scim::delete_mapping),
        )
        .route("/t/{tenant}/users", get(users::list))
        .route("/t/{tenant}/users.csv", get(users::csv))
        .route(
            "/t/{tenant}/users/{id}",
            get(users::detail).post(users::save),
        )
        .route("/t/{tenant}/users/{id}/roles", post(users::save_roles))
        .route("/t/{tenant}/groups", get(groups::list))
        .route("/t/{tenant}/groups.csv", get(groups::csv))
        .route("/t/{tenant}/groups/{id}", get(groups::detail))
        .route("/t/{tenant}/log", get(log::list))
        .route("/t/{tenant}/log.csv", get(log::csv))
        .route(
            "/t/{tenant}/webhooks/{id}/redeliver",
            post(health::redeliver),
        )
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", get(webhooks::detail))
        .route("/webhooks/{id}/{action}", post(webhooks::act))
        .fallback(not_found)
        .layer(middleware::from_fn(navigation))
        .layer(middleware::from_fn(security_headers))
}

/// The console's 404 page; the session is read (when there is one) only so that the page
/// has the console's navigation (see [`navigation`]).
async fn not_found(_session: Result<Session, ConsoleError>) -> ConsoleError {
    ConsoleError::NotFound
}

/// What every error page and every stray GET gets, in one place rather than in each handler:
///
/// - a GET (a reload, a bookmark, a pasted address) of a path that only takes POSTs answers
///   303 to the page the form is on, never axum's blank 405;
/// - an error page ([`ConsoleError`]) shown to a signed-in user gets the console's navigation
///   (account links, and the tenant's tabs when the session may see that tenant), so that no
///   error is a dead end. `ConsoleError` renders without a session (it cannot know one); this
///   layer renders it again with the session and tenant the handler's extractors found,
///   which they leave in a [`session::Seen`] this layer puts in the request. (The layer has
///   no state of its own to look the session up with: the router takes none.)
async fn navigation(mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path(), |o| o.0.path())
        .to_owned();
    let seen = session::Seen::default();
    req.extensions_mut().insert(seen.clone());
    let r = next.run(req).await;
    if r.status() == StatusCode::METHOD_NOT_ALLOWED
        && (method == Method::GET || method == Method::HEAD)
    {
        return redirect(&page_of(&path));
    }
    let Some(info) = r.extensions().get::<ErrorInfo>().cloned() else {
        return r;
    };
    let Some((session, tenant)) = seen.get() else {
        return r;
    };
    // The tenant's tabs only for the tenant the page is about, and only when the handler
    // found that the session may see it.
    let chrome = match (tenant, tenant_tab(&path)) {
        (Some(t), Some((id, tab))) if t.id == id => {
            view::Chrome::tenant(&session, &t, tab, info.heading)
        }
        _ => view::Chrome::signed_in(&session, info.heading),
    };
    let page = ErrorPage {
        chrome,
        heading: info.heading,
        message: info.message,
        back: "/console",
        back_label: "Back to the console",
    };
    match view::render(&page) {
        Ok(html) => (info.status, html).into_response(),
        Err(_) => r,
    }
}

/// The tenant a console path is about (its path segment, still percent-encoded), and the tab
/// it belongs to.
fn tenant_tab(path: &str) -> Option<(&str, view::TabId)> {
    let rest = path.strip_prefix("/console/t/")?;
    let mut segs = rest.split('/');
    let id = segs.next().filter(|s| !s.is_empty())?;
    let tab = match segs.next() {
        Some("users") => view::TabId::Users,
        Some("groups") => view::TabId::Groups,
        Some("log") => view::TabId::Log,
        _ => view::TabId::Scim,
    };
    Some((id, tab))
}

/// The page a POST-only path's form is on, at the form's section: where a GET of that path
/// (a reload after a refused form) is sent.
fn page_of(path: &str) -> String {
    let rest = path.strip_prefix("/console").unwrap_or(path);
    let segs: Vec<&str> = rest.trim_matches('/').split('/').collect();
    // The segments come from the request's own (valid) URI: reused as they are, still encoded.
    match segs.as_slice() {
        ["t", t, "users", id, ..] => format!("/console/t/{t}/users/{id}"),
        ["t", t, "idp"] => format!("/console/t/{t}/settings/connection#h-idp"),
        ["t", t, "scim", ..] => format!("/console/t/{t}/settings/token#h-token"),
        ["t", t, "settings"] => format!("/console/t/{t}/settings/provisioning#h-settings"),
        ["t", t, "role-mappings", ..] => format!("/console/t/{t}/settings/roles#h-roles"),
        ["t", t, "role-catalogue", ..] => format!("/console/t/{t}/settings/roles#h-catalogue"),
        ["t", t, "grantable-roles"] => format!("/console/t/{t}/settings/roles#h-grantable"),
        ["t", t, "guard", ..] => format!("/console/t/{t}/settings/guard#h-guard"),
        ["t", t, "webhooks", ..] => format!("/console/t/{t}#h-webhooks"),
        ["webhooks", id, ..] => format!("/console/webhooks/{id}"),
        ["t", t, ..] => format!("/console/t/{t}"),
        ["sign-in", ..] => "/console/sign-in".to_owned(),
        _ => "/console".to_owned(),
    }
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    // A response with a stricter policy of its own (the brand logo) keeps it.
    if !h.contains_key(CONTENT_SECURITY_POLICY) {
        h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Setup links carry their token in the path: never send it to another site as a Referer.
    // (`no-referrer` would also make browsers send `Origin: null` on our own form posts.)
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // Pages show tokens, users and logs: no cache may keep them.
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

async fn css() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        JS,
    )
}

/// The brand stylesheet: the accent colour of the vendor's branding
/// ([`crate::ops::branding::stylesheet`]), cached for a year under its `?v=` (the branding's
/// digest, which changes with it).
async fn brand_css(
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> impl IntoResponse {
    let b = crate::ops::branding::current();
    // A process that has not yet read a change elsewhere must not have its older stylesheet
    // cached under the new version.
    let cache = if q.get("v").is_some_and(|v| *v == b.version()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, cache),
        ],
        crate::ops::branding::stylesheet(&b),
    )
}

/// The policy of the brand logo: an SVG's scripts never run, even when the logo's address is
/// opened directly; its own inline styles may apply.
const LOGO_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// The vendor's logo, from the database, with the media type its bytes show; cached for a
/// year under its `?v=` (the logo's digest). 404 when there is none.
async fn brand_logo(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Response, ConsoleError> {
    let Some((content_type, bytes)) = crate::ops::branding::logo(state.store.as_ref()).await?
    else {
        return Err(ConsoleError::NotFound);
    };
    Ok((
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (CONTENT_SECURITY_POLICY, LOGO_CSP),
        ],
        bytes,
    )
        .into_response())
}

// ---------------------------------------------------------------- errors ----

/// Why a console request failed; rendered as a small HTML page (or a redirect to sign in).
#[derive(Debug)]
pub enum ConsoleError {
    /// No (live) session: go to the sign-in page, then back to `next`.
    SignIn {
        /// The page to return to after signing in.
        next: Option<String>,
    },
    /// Unknown page, tenant or resource; also what a tenant-scoped session sees for another
    /// tenant, so that it learns nothing about it.
    NotFound,
    /// A form without the right CSRF token, or posted from another origin.
    Csrf,
    /// The request is not allowed for this session (an operator page from a setup link).
    Forbidden,
    /// Bad input that belongs to no form (a page address, a filter), with a message for the
    /// user.
    Invalid(String),
    /// An operation refused a form's input: every problem, each with its field when there is
    /// one. A form's handler catches it and shows the form again with each error next to its
    /// field ([`view::FormState`]); one that reaches [`IntoResponse`] is an error page listing
    /// them.
    Refused(Vec<FieldError>),
    /// The store failed (logged, never shown).
    Internal,
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Invalid(m) => Self::Invalid(m),
            other => {
                tracing::error!(error = %other, "console: store failed");
                Self::Internal
            }
        }
    }
}

/// The one place the console turns an operation's refusal into what it shows: input and state
/// problems in the operation's words (the form's page shows them), a missing thing as the
/// console's plain 404, and a store failure (logged) as the generic error page.
impl From<crate::ops::OpError> for ConsoleError {
    fn from(e: crate::ops::OpError) -> Self {
        use crate::ops::OpError;
        match e {
            OpError::NotFound { .. } => Self::NotFound,
            OpError::Invalid { errors } => Self::Refused(errors),
            OpError::Conflict { message, .. } => Self::Refused(vec![FieldError {
                field: None,
                message,
            }]),
            OpError::Forbidden { .. } => Self::Forbidden,
            // A store refusal built by hand still reads as the operation's words.
            OpError::Store(e) => match OpError::from(e) {
                OpError::Store(e) => e.into(),
                other => other.into(),
            },
        }
    }
}

/// What an error page says, kept on its response so that [`navigation`] can render it again
/// with the signed-in user's navigation.
#[derive(Debug, Clone)]
struct ErrorInfo {
    status: StatusCode,
    heading: &'static str,
    message: String,
}

/// A page with a heading, a message and one link onwards.
#[derive(askama::Template)]
#[template(path = "console/error.html")]
pub(crate) struct ErrorPage {
    pub(crate) chrome: view::Chrome,
    pub(crate) heading: &'static str,
    pub(crate) message: String,
    pub(crate) back: &'static str,
    pub(crate) back_label: &'static str,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            Self::SignIn { next } => {
                let to = match next {
                    Some(n) => format!("/console/sign-in?{}", view::query(&[("next", &n)])),
                    None => "/console/sign-in".to_owned(),
                };
                return redirect(&to);
            }
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such page, or you do not have access to it.".to_owned(),
            ),
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form is no longer valid (it may be from an earlier session, or from another \
                 site). Go back, reload the page and try again."
                    .to_owned(),
            ),
            Self::Forbidden => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                "This page is for operators only.".to_owned(),
            ),
            Self::Invalid(m) => (StatusCode::BAD_REQUEST, "That did not work", m),
            Self::Refused(errors) => {
                let all: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
                (StatusCode::BAD_REQUEST, "That did not work", all.join("; "))
            }
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server could not complete the request. Try again; the server log has details."
                    .to_owned(),
            ),
        };
        let info = ErrorInfo {
            status,
            heading,
            message: message.clone(),
        };
        let page = ErrorPage {
            chrome: view::Chrome::anonymous(heading),
            heading,
            message,
            back: "/console",
            back_label: "Back to the console",
        };
        let mut r = match view::render(&page) {
            Ok(html) => (status, html).into_response(),
            Err(_) => status.into_response(),
        };
        r.extensions_mut().insert(info);
        r
    }
}

/// The request path as the request log may show it: a setup link's token (the one secret
/// that travels in a path) is replaced by `…`.
#[must_use]
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/console/setup/") {
        Some(rest) if !rest.is_empty() => std::borrow::Cow::Borrowed("/console/setup/…"),
        _ => std::borrow::Cow::Borrowed(path),
    }
}

/// A 303 to `to` (after a POST, the browser GETs it).
#[must_use]
pub fn redirect(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => (StatusCode::SEE_OTHER, [(LOCATION, v)]).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_error_has_its_page() {
        use crate::ops::{FieldError, OpError};
        assert!(matches!(
            ConsoleError::from(OpError::no_tenant("acme")),
            ConsoleError::NotFound
        ));
        let two = OpError::Invalid {
            errors: vec![
                FieldError {
                    field: Some("group.value".into()),
                    message: "group.value must have 1 to 1024 characters".into(),
                },
                FieldError {
                    field: Some("roles".into()),
                    message: "roles must name at least one role".into(),
                },
            ],
        };
        // Every problem stays apart, with its field, for the form to place each one.
        assert!(matches!(
            ConsoleError::from(two),
            ConsoleError::Refused(e) if e.len() == 2 && e[1].field.as_deref() == Some("roles")
        ));
        assert!(matches!(
            ConsoleError::from(OpError::conflict("taken")),
            ConsoleError::Refused(e) if e[0].message == "taken" && e[0].field.is_none()
        ));
        assert!(matches!(
            ConsoleError::from(OpError::Forbidden {
                message: "no".into()
            }),
            ConsoleError::Forbidden
        ));
        for e in [
            StoreError::Backend("disk".into()),
            StoreError::Unavailable("down".into()),
        ] {
            assert!(matches!(
                ConsoleError::from(OpError::Store(e)),
                ConsoleError::Internal
            ));
        }
        // The store's refusals read as the operation's words, as the admin API shows them.
        assert!(matches!(
            ConsoleError::from(OpError::Store(StoreError::Conflict("userName"))),
            ConsoleError::Refused(e) if e[0].message == "userName already exists"
        ));
    }

    #[test]
    fn a_get_of_a_form_address_goes_to_its_page() {
        assert_eq!(
            page_of("/console/t/acme/scim/enable"),
            "/console/t/acme/settings/token#h-token"
        );
        assert_eq!(
            page_of("/console/t/acme/settings"),
            "/console/t/acme/settings/provisioning#h-settings"
        );
        assert_eq!(
            page_of("/console/t/acme/role-mappings/m1/delete"),
            "/console/t/acme/settings/roles#h-roles"
        );
        assert_eq!(
            page_of("/console/t/acme/users/u%201/roles"),
            "/console/t/acme/users/u%201"
        );
        assert_eq!(
            page_of("/console/t/acme/guard/confirm"),
            "/console/t/acme/settings/guard#h-guard"
        );
        assert_eq!(
            page_of("/console/t/acme/first-sync/approve"),
            "/console/t/acme"
        );
        assert_eq!(page_of("/console/sign-in/key"), "/console/sign-in");
        assert_eq!(page_of("/console/sign-out"), "/console");
        assert!(matches!(
            tenant_tab("/console/t/acme/log"),
            Some(("acme", view::TabId::Log))
        ));
        assert!(tenant_tab("/console/tenants").is_none());
    }

    #[test]
    fn setup_tokens_stay_out_of_the_request_log() {
        assert_eq!(loggable_path("/console/setup/rssl_abc"), "/console/setup/…");
        assert_eq!(loggable_path("/console/setup"), "/console/setup");
        assert_eq!(loggable_path("/console/t/acme"), "/console/t/acme");
    }
}
