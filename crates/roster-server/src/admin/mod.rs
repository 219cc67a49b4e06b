//! The admin API under `/api/v1`: JSON over HTTP for the host app and operators, authenticated
//! by an operator API key ([`keys::AdminAuth`]), documented by `docs/openapi.json` (served at
//! `/api/v1/openapi.json`).
//!
//! This module is the foundation issue 4 extends (tenants, tokens, settings, users, groups,
//! roles, login decision): add a sub-module with its handlers, merge its routes in
//! [`routes`], describe them in `docs/openapi.json`, and record administrative actions with
//! [`crate::ops::audit`]. An operation the console or the CLI also needs belongs in
//! [`crate::ops`]: the handler parses, calls it, and shows the result. Errors are
//! [`ApiError`]s (an operation's [`crate::ops::OpError`] becomes one in `error.rs`); JSON
//! bodies and query strings go through [`ApiJson`] and [`ApiQuery`] so that malformed input is
//! a JSON 400 too.

use axum::extract::FromRequestParts;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use time::OffsetDateTime;

use crate::AppState;

pub mod body;
pub mod branding;
pub mod custom_schemas;
pub mod error;
pub mod feed;
pub mod first_sync;
pub mod groups;
pub mod guard;
pub mod import;
pub mod keys;
pub mod login;
pub mod logs;
pub mod roles;
pub mod setup_link;
pub mod tenants;
pub mod tokens;
pub mod users;
pub mod webhooks;

pub(crate) use crate::ops::present;
pub use body::{from_json, optional_json, ApiJson};
// The shared helpers, under the names this module's handlers have always used.
pub(crate) use crate::ops::{audit, fmt_time, live_tenant, page_limit, require_tenant};
pub use error::ApiError;
pub use keys::AdminAuth;

/// The OpenAPI 3.1 description of this API, kept in the repository.
pub const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

/// Query parameters; malformed ones are a JSON 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Path parameters; a mismatch is a JSON 404.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// The `/api/v1` router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .merge(tenant_routes())
        .route("/tenants/{tenant}/events", get(feed::events))
        .route("/tenants/{tenant}/snapshot", get(feed::snapshot))
        .route(
            "/tenants/{tenant}/provisioning-log",
            get(logs::provisioning_log),
        )
        .route(
            "/tenants/{tenant}/provisioning-log/reads",
            get(logs::read_counts),
        )
        .route("/tenants/{tenant}/health", get(logs::tenant_health))
        .route(
            "/tenants/{tenant}/setup-link",
            post(setup_link::create_handler).delete(setup_link::revoke_handler),
        )
        .route("/audit-log", get(logs::audit_log))
        .route(
            "/branding",
            get(branding::get_handler)
                .put(branding::put_handler)
                .delete(branding::delete_handler),
        )
        .route(
            "/branding/logo",
            axum::routing::put(branding::put_logo_handler).delete(branding::delete_logo_handler),
        )
        .route(
            "/webhooks",
            get(webhooks::list_handler).post(webhooks::create_handler),
        )
        .route(
            "/webhooks/{id}",
            get(webhooks::get_handler).delete(webhooks::delete_handler),
        )
        .route(
            "/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_handler),
        )
        .route(
            "/webhooks/{id}/redeliver",
            post(webhooks::redeliver_handler),
        )
        .route("/webhooks/{id}/pause", post(webhooks::pause_handler))
        .route("/webhooks/{id}/resume", post(webhooks::resume_handler))
        .route("/webhooks/{id}/attempts", get(webhooks::attempts_handler))
        .merge(app_routes())
        .fallback(|| async { ApiError::not_found("no such admin API endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError {
                details: None,
                status: StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                message: "this endpoint does not support that HTTP method".into(),
            }
        })
}

/// Tenants, settings, SCIM enablement and tokens ([`tenants`], [`tokens`]).
fn tenant_routes() -> Router<AppState> {
    use axum::routing::delete;
    Router::new()
        .route(
            "/tenants",
            get(tenants::list_handler).post(tenants::create_handler),
        )
        .route(
            "/tenants/{tenant}",
            get(tenants::get_handler)
                .patch(tenants::update_handler)
                .delete(tenants::delete_handler),
        )
        .route(
            "/tenants/{tenant}/settings",
            get(tenants::get_settings_handler).patch(tenants::update_settings_handler),
        )
        .route(
            "/custom-schemas",
            get(custom_schemas::get_global_handler).put(custom_schemas::put_global_handler),
        )
        .route(
            "/tenants/{tenant}/custom-schemas",
            get(custom_schemas::get_handler).put(custom_schemas::put_handler),
        )
        .route(
            "/tenants/{tenant}/scim/enable",
            post(tenants::enable_handler),
        )
        .route(
            "/tenants/{tenant}/scim/disable",
            post(tenants::disable_handler),
        )
        .route(
            "/tenants/{tenant}/tokens",
            get(tokens::list_handler).post(tokens::create_handler),
        )
        .route(
            "/tenants/{tenant}/tokens/rotate",
            post(tokens::rotate_handler),
        )
        .route(
            "/tenants/{tenant}/tokens/{prefix}",
            delete(tokens::revoke_handler),
        )
}

/// Users, groups, roles, the login decision and the guard: the host app's side (issue 4).
fn app_routes() -> Router<AppState> {
    Router::new()
        .route("/tenants/{tenant}/users", get(users::list_handler))
        .route("/tenants/{tenant}/user-imports", post(import::handler))
        .route(
            "/tenants/{tenant}/users/{id}",
            get(users::get_handler)
                .patch(users::patch_handler)
                .delete(users::delete_handler),
        )
        .route(
            "/tenants/{tenant}/users/{id}/erasure",
            post(users::erasure_handler),
        )
        .route(
            "/tenants/{tenant}/groups",
            get(groups::list_handler).post(groups::create_handler),
        )
        .route(
            "/tenants/{tenant}/groups/{id}",
            get(groups::get_handler)
                .patch(groups::patch_handler)
                .delete(groups::delete_handler),
        )
        .route(
            "/tenants/{tenant}/groups/{id}/members",
            get(groups::members_handler),
        )
        .route(
            "/tenants/{tenant}/role-mappings",
            get(roles::list_handler).post(roles::create_handler),
        )
        .route(
            "/tenants/{tenant}/role-mappings/{id}",
            get(roles::get_handler)
                .put(roles::put_handler)
                .delete(roles::delete_handler),
        )
        .route("/roles", get(roles::catalogue_handler))
        .route(
            "/roles/{name}",
            axum::routing::put(roles::declare_handler).delete(roles::undeclare_handler),
        )
        .route("/tenants/{tenant}/login-decision", post(login::handler))
        .route(
            "/tenants/{tenant}/deprovision-guard",
            get(guard::status_handler),
        )
        .route(
            "/tenants/{tenant}/deprovision-guard/confirm",
            post(guard::confirm_handler),
        )
        .route(
            "/tenants/{tenant}/deprovision-guard/reject",
            post(guard::reject_handler),
        )
        .route(
            "/tenants/{tenant}/first-sync",
            get(first_sync::status_handler),
        )
        .route(
            "/tenants/{tenant}/first-sync/approve",
            post(first_sync::approve_handler),
        )
        .route(
            "/tenants/{tenant}/first-sync/discard",
            post(first_sync::discard_handler),
        )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// A 409 `conflict`.
pub(crate) fn conflict(message: impl Into<String>) -> ApiError {
    ApiError {
        details: None,
        status: StatusCode::CONFLICT,
        code: "conflict",
        message: message.into(),
    }
}

/// Parses an RFC 3339 query parameter.
///
/// # Errors
/// 400 naming the parameter.
pub fn parse_time(name: &str, v: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    v.map(|s| {
        scim_proto::filter::parse_datetime(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "{name} must be an RFC 3339 date-time such as 2026-01-31T09:00:00Z, not \"{s}\""
            ))
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn openapi_file_is_json_and_documents_every_route() {
        let spec: Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(spec["openapi"], "3.1.0");
        for path in [
            "/api/v1/openapi.json",
            "/api/v1/tenants/{tenant}/events",
            "/api/v1/tenants/{tenant}/snapshot",
            "/api/v1/tenants/{tenant}/provisioning-log",
            "/api/v1/tenants/{tenant}/provisioning-log/reads",
            "/api/v1/tenants/{tenant}/health",
            "/api/v1/audit-log",
            "/api/v1/webhooks",
            "/api/v1/webhooks/{id}",
            "/api/v1/webhooks/{id}/rotate-secret",
            "/api/v1/webhooks/{id}/redeliver",
            "/api/v1/webhooks/{id}/pause",
            "/api/v1/webhooks/{id}/resume",
            "/api/v1/webhooks/{id}/attempts",
            "/api/v1/tenants/{tenant}/setup-link",
            "/api/v1/tenants/{tenant}/first-sync",
            "/api/v1/tenants/{tenant}/first-sync/approve",
            "/api/v1/tenants/{tenant}/first-sync/discard",
            "/api/v1/custom-schemas",
            "/api/v1/roles",
            "/api/v1/roles/{name}",
            "/api/v1/branding",
            "/api/v1/branding/logo",
        ] {
            assert!(spec["paths"][path].is_object(), "{path} is not documented");
        }
        assert!(spec["components"]["schemas"]["Error"].is_object());
    }
}
