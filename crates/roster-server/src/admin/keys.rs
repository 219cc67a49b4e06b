//! Operator API keys: `rsak_<8 alphanumerics>_<40 alphanumerics>`, shown once, stored as a
//! SHA-256 hash (the same reasoning as SCIM tokens: about 238 random bits need no stretching).
//! `rsak_` lets secret scanners recognise a leaked Roster admin key.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use roster_store::AdminKeyRecord;
use time::OffsetDateTime;

use super::error::ApiError;
use crate::tokens::{digests_equal, hash_token, random_alnum};
use crate::AppState;

/// The marker every admin key starts with.
pub const KEY_MARKER: &str = "rsak_";
const ID_LEN: usize = 8;
const SECRET_LEN: usize = 40;

/// A freshly issued key: the secret (shown once) and the record to store.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    /// The whole key.
    pub secret: String,
    /// What is stored.
    pub record: AdminKeyRecord,
}

/// Issues a new admin key.
#[must_use]
pub fn issue(name: Option<String>, now: OffsetDateTime) -> IssuedKey {
    let prefix = format!("{KEY_MARKER}{}", random_alnum(ID_LEN));
    let secret = format!("{prefix}_{}", random_alnum(SECRET_LEN));
    IssuedKey {
        record: AdminKeyRecord {
            prefix,
            hash: hash_token(&secret),
            name,
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        },
        secret,
    }
}

/// The public prefix of a well-formed key.
#[must_use]
pub fn prefix_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_MARKER)?;
    let (id, secret) = rest.split_once('_')?;
    let ok = id.len() == ID_LEN
        && secret.len() == SECRET_LEN
        && id
            .bytes()
            .chain(secret.bytes())
            .all(|b| b.is_ascii_alphanumeric());
    ok.then(|| &key[..KEY_MARKER.len() + ID_LEN])
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
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let refused = || {
            ApiError::unauthorized(
                "send a live operator API key as \"Authorization: Bearer rsak_…\" \
                 (create one with `roster admin-key create`)",
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
        if record.revoked_at.is_some() || !digests_equal(&hash_token(key), &record.hash) {
            tracing::info!(key_prefix = %prefix, "admin key refused");
            return Err(refused());
        }
        state.token_uses.key_used(prefix, state.clock.now());
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_hash() {
        let k = issue(None, OffsetDateTime::UNIX_EPOCH);
        assert!(k.secret.starts_with("rsak_"));
        assert_eq!(prefix_of(&k.secret), Some(k.record.prefix.as_str()));
        assert!(!k.record.hash.contains(&k.secret));
        assert_eq!(prefix_of("rsct_AbCd1234_x"), None);
    }
}
