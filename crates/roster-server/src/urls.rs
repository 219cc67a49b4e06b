//! The server's own URLs: its origin and each tenant's SCIM base URL, as clients must use
//! them (never taken from a request's `Host` header). Shared by the SCIM routes, discovery,
//! the admin API and the console.

use axum::http::HeaderMap;

use crate::AppState;

/// The absolute SCIM base URL of a tenant: `--public-url` when configured, else the loopback
/// address the server listens on. Never the request's `Host` header, which is the client's to
/// choose (it would be echoed into `Location`, `meta.location` and setup links).
#[must_use]
pub fn base_url(state: &AppState, _headers: &HeaderMap, tenant: &str) -> String {
    format!("{}/scim/v2/{tenant}", origin(state))
}

/// The server's origin: `--public-url`, else its loopback address, else (a router built
/// without either, in tests) `http://localhost`.
#[must_use]
pub fn origin(state: &AppState) -> String {
    let s = &state.settings;
    s.public_url
        .as_deref()
        .or(s.local_origin.as_deref())
        .unwrap_or("http://localhost")
        .trim_end_matches('/')
        .to_owned()
}

/// Whether `url`'s host is a loopback name or address (`localhost`, `127.0.0.0/8`, `::1`).
#[must_use]
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}
