//! The admin API's authentication by operator key ([`AdminAuth`]) and the scope each route
//! needs; the keys themselves are [`crate::ops::keys`]'s.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

use super::error::ApiError;
use crate::ops::keys::{allows, prefix_of};
use crate::ratelimit;
use crate::tokens::{digests_equal, hash_token};
use crate::AppState;

/// The scope a request needs, from its method and route template (`/api/v1/tenants/{tenant}/…`
/// or `/metrics`). What is not named below needs `tenants:admin`.
#[must_use]
pub fn required_scope(method: &axum::http::Method, route: &str) -> &'static str {
    let read = matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD);
    let directory = [
        "/users",
        "/user-imports",
        "/groups",
        "/role-mappings",
        "/deprovision-guard",
        "/provisioning-log",
    ];
    if route == "/metrics" {
        "metrics:read"
    } else if route.ends_with("/login-decision") {
        "login-decision"
    } else if route.ends_with("/events") || route.ends_with("/snapshot") {
        "events:read"
    } else if route.ends_with("/erasure") {
        // It rewrites the provisioning log and the event history: not the app's everyday key.
        "tenants:admin"
    } else if directory.iter().any(|d| route.contains(d)) {
        if read {
            "users:read"
        } else {
            "users:write"
        }
    } else {
        "tenants:admin"
    }
}

/// An admin API request authenticated by a live operator key.
#[derive(Debug, Clone)]
pub struct AdminAuth {
    /// The key's prefix.
    pub prefix: String,
}

impl AdminAuth {
    /// How the audit log names this caller.
    #[must_use]
    pub fn actor(&self) -> String {
        format!("admin-key:{}", self.prefix)
    }
}

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = Response;

    /// Authenticates, then takes one request from the key's budget; a refused key takes one
    /// from its source address's failure budget, and once that is spent the answer is 429.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let rates = &state.settings.rate;
        let now = Instant::now();
        match authenticate(parts, state).await {
            Ok((prefix, scopes)) => {
                let route = parts
                    .extensions
                    .get::<axum::extract::MatchedPath>()
                    .map_or("", axum::extract::MatchedPath::as_str);
                let needed = required_scope(&parts.method, route);
                if !allows(scopes.as_deref(), needed) {
                    tracing::info!(key_prefix = %prefix, scope = needed, "admin key lacks the scope");
                    return Err(ApiError {
                        details: None,
                        status: StatusCode::FORBIDDEN,
                        code: "forbidden",
                        message: format!(
                            "this admin key may not do that: it needs the scope {needed:?} and \
                             has {}; create a key with `roster admin-key create --scope {needed}`",
                            scopes.unwrap_or_default().join(", ")
                        ),
                    }
                    .into_response());
                }
                let rate = rates.admin_per_key;
                if let Err(wait) = state.limiters.admin.check(&prefix, rate, 1, now) {
                    state.limiters.note_refused("admin_key");
                    return Err(rate_limited("for this admin key", rate, wait));
                }
                Ok(Self { prefix })
            }
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                let source = ratelimit::source(state, parts)
                    .map_or_else(|| "-".to_owned(), |a| a.to_string());
                let rate = rates.admin_auth_failures;
                match state
                    .limiters
                    .failures
                    .check(&format!("admin:{source}"), rate, 1, now)
                {
                    Ok(()) => Err(e.into_response()),
                    Err(wait) => {
                        state.limiters.note_refused("admin_auth_failures");
                        Err(rate_limited(
                            "with a refused admin key from this address",
                            rate,
                            wait,
                        ))
                    }
                }
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

/// A 429 in the admin API's error shape, with `Retry-After`.
fn rate_limited(what: &str, rate: ratelimit::Rate, wait: std::time::Duration) -> Response {
    let scim = ratelimit::too_many(what, rate, wait);
    let mut resp = ApiError {
        details: None,
        status: StatusCode::TOO_MANY_REQUESTS,
        code: "rate_limited",
        message: scim.error.detail,
    }
    .into_response();
    for (k, v) in scim.headers {
        resp.headers_mut().insert(k, v);
    }
    resp
}

/// The key check: the key's prefix and scopes, or the 401.
async fn authenticate(
    parts: &Parts,
    state: &AppState,
) -> Result<(String, Option<Vec<String>>), ApiError> {
    let refused = || {
        ApiError::unauthorized(
            "send a live (unrevoked, unexpired) operator API key as \"Authorization: Bearer \
             rsak_…\" (create one with `roster admin-key create`)",
        )
    };
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refused)?;
    let (scheme, key) = value.trim().split_once(' ').ok_or_else(refused)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(refused());
    }
    let key = key.trim();
    let prefix = prefix_of(key).ok_or_else(refused)?;
    // From the in-memory cache (see `crate::auth_cache`): no database round trip.
    let record = state
        .auth
        .admin_key(state.store.as_ref(), prefix)
        .await?
        .ok_or_else(refused)?;
    let now = state.clock.now();
    if record.revoked_at.is_some()
        || record.expires_at.is_some_and(|e| e <= now)
        || !digests_equal(&hash_token(key), &record.hash)
    {
        tracing::info!(key_prefix = %prefix, "admin key refused");
        return Err(refused());
    }
    state.token_uses.key_used(prefix, now);
    Ok((prefix.to_owned(), record.scopes.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::keys::check_scopes;

    #[test]
    fn routes_need_their_scope() {
        use axum::http::Method;
        let t = "/api/v1/tenants/{tenant}";
        for (method, route, scope) in [
            (
                Method::POST,
                format!("{t}/login-decision"),
                "login-decision",
            ),
            (Method::GET, format!("{t}/events"), "events:read"),
            (Method::GET, format!("{t}/snapshot"), "events:read"),
            (Method::GET, format!("{t}/users/{{id}}"), "users:read"),
            (Method::PATCH, format!("{t}/users/{{id}}"), "users:write"),
            (
                Method::POST,
                format!("{t}/users/{{id}}/erasure"),
                "tenants:admin",
            ),
            (Method::POST, format!("{t}/user-imports"), "users:write"),
            (Method::GET, format!("{t}/provisioning-log"), "users:read"),
            (
                Method::POST,
                format!("{t}/deprovision-guard/confirm"),
                "users:write",
            ),
            (Method::GET, t.to_owned(), "tenants:admin"),
            // Approving releases a whole sync; discarding disables SCIM.
            (Method::GET, format!("{t}/first-sync"), "tenants:admin"),
            (
                Method::POST,
                format!("{t}/first-sync/discard"),
                "tenants:admin",
            ),
            (Method::POST, format!("{t}/tokens/rotate"), "tenants:admin"),
            (Method::GET, "/api/v1/webhooks".to_owned(), "tenants:admin"),
            // Branding is server-wide: an operator's.
            (
                Method::PUT,
                "/api/v1/branding/logo".to_owned(),
                "tenants:admin",
            ),
            (Method::GET, "/metrics".to_owned(), "metrics:read"),
            (Method::GET, String::new(), "tenants:admin"),
        ] {
            assert_eq!(required_scope(&method, &route), scope, "{method} {route}");
        }
        let write = vec!["users:write".to_owned()];
        assert!(allows(Some(&write), "users:read"));
        assert!(!allows(Some(&write), "events:read"));
        assert!(allows(None, "tenants:admin"));
        assert!(!allows(Some(&[]), "login-decision"));
        assert!(check_scopes(&["users:write".to_owned()]).is_ok());
        assert!(check_scopes(&["users".to_owned()])
            .unwrap_err()
            .contains("login-decision"));
    }
}
