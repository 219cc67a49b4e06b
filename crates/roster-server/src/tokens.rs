//! Bearer tokens: generation, hashing and parsing.
//!
//! A token looks like `rsct_AbCd1234_<40 random base62 characters>`. The `rsct_` marker lets
//! secret scanners recognise a leaked Roster SCIM token; `rsct_AbCd1234` is the public prefix
//! used to list and revoke it. Only the SHA-256 of the whole token is stored: the secret part
//! has about 238 bits of entropy, so a fast hash is enough (no password-stretching needed).

use rand::distributions::Alphanumeric;
use rand::Rng;
use roster_store::TokenRecord;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// The marker every Roster SCIM token starts with.
pub const TOKEN_MARKER: &str = "rsct_";
/// Default lifetime of a token.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::days(365);

const ID_LEN: usize = 8;
const SECRET_LEN: usize = 40;

/// A freshly issued token: the secret (shown once) and the record to store.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The whole token, to show to the user once and never again.
    pub secret: String,
    /// What is stored.
    pub record: TokenRecord,
}

/// `n` random ASCII letters and digits from the OS generator.
pub(crate) fn random_alnum(n: usize) -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// Hex SHA-256 of a token.
#[must_use]
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Issues a new token for `tenant`.
#[must_use]
pub fn issue(tenant: &str, now: OffsetDateTime, ttl: Duration) -> IssuedToken {
    let prefix = format!("{TOKEN_MARKER}{}", random_alnum(ID_LEN));
    let secret = format!("{prefix}_{}", random_alnum(SECRET_LEN));
    IssuedToken {
        record: TokenRecord {
            prefix,
            tenant_id: tenant.to_owned(),
            hash: hash_token(&secret),
            created_at: now,
            // Saturating: callers bound the lifetime (1–3650 days), and an out-of-range one
            // must not overflow the date (a panic) whatever a future caller passes.
            expires_at: now.checked_add(ttl).unwrap_or(OffsetDateTime::new_utc(
                time::Date::MAX,
                time::Time::MIDNIGHT,
            )),
            last_used_at: None,
            revoked_at: None,
        },
        secret,
    }
}

/// The public prefix of a well-formed token, or `None` if it is not shaped like one.
#[must_use]
pub fn prefix_of(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_MARKER)?;
    let (id, secret) = rest.split_once('_')?;
    let well_formed = id.len() == ID_LEN
        && secret.len() == SECRET_LEN
        && id
            .bytes()
            .chain(secret.bytes())
            .all(|b| b.is_ascii_alphanumeric());
    well_formed.then(|| &token[..TOKEN_MARKER.len() + ID_LEN])
}

/// Compares two equal-length hex digests without an early exit.
#[must_use]
pub fn digests_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_token_parses_and_hashes() {
        let t = issue("acme", OffsetDateTime::UNIX_EPOCH, DEFAULT_TOKEN_TTL);
        assert_eq!(prefix_of(&t.secret), Some(t.record.prefix.as_str()));
        assert!(digests_equal(&hash_token(&t.secret), &t.record.hash));
        assert!(!t.record.hash.contains(&t.secret));
        assert_eq!(
            t.record.expires_at - t.record.created_at,
            Duration::days(365)
        );
    }

    #[test]
    fn malformed_tokens_have_no_prefix() {
        for bad in [
            "",
            "rsct_",
            "rsct_abc_def",
            "Bearer x",
            "rsct_AbCd1234_short",
            "rsct_AbCd1234_ééééééééééééééééééééééééééééééééééééééééé",
        ] {
            assert_eq!(prefix_of(bad), None, "{bad}");
        }
    }
}
