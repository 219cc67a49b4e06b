//! Bearer-token authentication of SCIM requests (RFC 6750).
//!
//! A request is let through only if its token is well-formed, known, unrevoked, unexpired and
//! issued for the tenant named in the URL, and SCIM is enabled for that tenant. Every refusal
//! is the same 401 with `WWW-Authenticate: Bearer`, so a caller cannot learn which tenants
//! exist. Tokens are never logged; only their public prefix may be.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{FromRequestParts, Path};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use roster_store::Tenant;
use time::{Duration, OffsetDateTime};

use crate::error::HttpError;
use crate::tokens;
use crate::AppState;

/// How often `last_used_at` is written for one token: at most once per interval, so that a
/// busy identity provider does not turn every read into a write.
const TOUCH_INTERVAL: Duration = Duration::seconds(60);

/// Remembers when each token's use was last written.
#[derive(Debug, Default)]
pub struct UseTracker {
    last: Mutex<HashMap<String, OffsetDateTime>>,
}

impl UseTracker {
    /// Whether a use of `prefix` at `now` should be written (at most once per interval).
    pub fn should_touch(&self, prefix: &str, now: OffsetDateTime) -> bool {
        let Ok(mut map) = self.last.lock() else {
            return true;
        };
        match map.get(prefix) {
            Some(t) if now - *t < TOUCH_INTERVAL => false,
            _ => {
                map.insert(prefix.to_owned(), now);
                true
            }
        }
    }
}

/// An authenticated SCIM request: the tenant its token belongs to.
#[derive(Debug, Clone)]
pub struct Authed {
    /// The tenant.
    pub tenant: Tenant,
}

fn bearer(parts: &Parts) -> Result<&str, HttpError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| {
            HttpError::unauthorized(
                "missing Authorization header; send \"Authorization: Bearer <token>\"",
            )
        })?
        .to_str()
        .map_err(|_| HttpError::unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(|| {
        HttpError::unauthorized("malformed Authorization header; expected \"Bearer <token>\"")
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(HttpError::unauthorized(
            "unsupported authorization scheme; use \"Authorization: Bearer <token>\"",
        ));
    }
    Ok(token.trim())
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, HttpError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| HttpError::status(404, "no such endpoint"))?;
        let tenant_id = params.get("tenant").cloned().unwrap_or_default();
        let token = bearer(parts)?;
        let invalid =
            || HttpError::unauthorized("invalid, expired or revoked token for this tenant");
        let prefix = tokens::prefix_of(token).ok_or_else(invalid)?;
        // The public prefix only: the provisioning log must never hold a token.
        crate::provlog::note_token_prefix(prefix);
        let record = state.store.find_token(prefix).await?.ok_or_else(invalid)?;
        let now = state.clock.now();
        if record.tenant_id != tenant_id
            || record.revoked_at.is_some()
            || record.expires_at <= now
            || !tokens::digests_equal(&tokens::hash_token(token), &record.hash)
        {
            tracing::info!(token_prefix = %record.prefix, tenant = %tenant_id, "token refused");
            return Err(invalid());
        }
        let tenant = state
            .store
            .get_tenant(&tenant_id)
            .await?
            .ok_or_else(invalid)?;
        // SCIM disabled answers exactly like a bad token (disabling also revokes every token).
        if !tenant.settings.scim_enabled {
            return Err(invalid());
        }
        crate::provlog::note_idp(&tenant.idp);
        if state.token_uses.should_touch(prefix, now) {
            state.store.touch_token(prefix, now).await?;
        }
        Ok(Self { tenant })
    }
}
