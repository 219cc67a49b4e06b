//! Operator API keys: `rsak_<8 alphanumerics>_<40 alphanumerics>`, shown once, stored as a
//! SHA-256 hash (the same reasoning as SCIM tokens: about 238 random bits need no stretching).
//! `rsak_` lets secret scanners recognise a leaked Roster admin key.

//!
//! The key's format and scopes are shared by the admin API's authentication, the console's
//! sign-in with a key and `roster admin-key`.

use roster_store::AdminKeyRecord;
use time::OffsetDateTime;

use crate::tokens::{hash_token, random_alnum};

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

/// The scopes an admin key may be limited to, with what each allows. A key without scopes may
/// do everything (and sign in to the console).
pub const SCOPES: &[(&str, &str)] = &[
    ("login-decision", "POST /tenants/{tenant}/login-decision"),
    ("events:read", "the event feed and the snapshot"),
    (
        "users:read",
        "read users, groups, members, role mappings, the guard's state and the provisioning log",
    ),
    (
        "users:write",
        "change app users (and import them), groups, role mappings, decide the guard; includes users:read",
    ),
    (
        "tenants:admin",
        "tenants, settings, SCIM enablement, tokens, setup links, webhooks, the audit log",
    ),
    ("metrics:read", "GET /metrics"),
];

/// Checks scope names (for `roster admin-key create --scope`).
///
/// # Errors
/// A message naming the unknown scope and listing the known ones.
pub fn check_scopes(scopes: &[String]) -> Result<(), String> {
    for s in scopes {
        if !SCOPES.iter().any(|(n, _)| n == s) {
            let known: Vec<&str> = SCOPES.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "{s:?} is not a scope; the scopes are {}",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

/// Whether a key with `scopes` (`None`: every scope) may act with `needed`.
#[must_use]
pub fn allows(scopes: Option<&[String]>, needed: &str) -> bool {
    scopes.is_none_or(|s| {
        s.iter()
            .any(|g| g == needed || (needed == "users:read" && g == "users:write"))
    })
}

/// Issues a new admin key that never expires and may do everything.
#[must_use]
pub fn issue(name: Option<String>, now: OffsetDateTime) -> IssuedKey {
    issue_limited(name, now, None, None)
}

/// Issues a new admin key, with an expiry and scopes when given.
#[must_use]
pub fn issue_limited(
    name: Option<String>,
    now: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
    scopes: Option<Vec<String>>,
) -> IssuedKey {
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
            expires_at,
            scopes,
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
