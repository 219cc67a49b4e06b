//! Webhook signatures: `Roster-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`.
//!
//! `v1` is the hex HMAC-SHA256, keyed with the endpoint's secret (the whole `whsec_…` string as
//! bytes), of `"<t>.<raw body>"`. Signing the timestamp with the body lets a receiver refuse
//! replays of old deliveries; during a secret rotation each delivery carries one `v1` per valid
//! secret, so a receiver that still has the old secret keeps verifying. `docs/events.md` shows
//! receivers how to verify in Python, Node and Rust.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The request header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Roster-Signature";
/// The request header that carries the event id (for deduplication).
pub const EVENT_ID_HEADER: &str = "Roster-Event-Id";
/// The marker every webhook signing secret starts with.
pub const SECRET_MARKER: &str = "whsec_";

type HmacSha256 = Hmac<Sha256>;

/// Hex HMAC-SHA256 of `"<t>.<body>"` keyed with `secret`.
#[must_use]
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; an empty digest
    // would only fail verification.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The `Roster-Signature` header value for `body` at time `t`, one `v1` per secret.
#[must_use]
pub fn header_value(secrets: &[&str], t: i64, body: &[u8]) -> String {
    let mut out = format!("t={t}");
    for s in secrets {
        out.push_str(",v1=");
        out.push_str(&sign(s, t, body));
    }
    out
}

/// A new random signing secret (`whsec_` + 32 alphanumerics, about 190 bits).
#[must_use]
pub fn new_secret() -> String {
    format!("{SECRET_MARKER}{}", crate::tokens::random_alnum(32))
}

/// Verifies a `Roster-Signature` header as a receiver would: the timestamp is within
/// `tolerance_secs` of `now`, and one `v1` equals the HMAC of `"<t>.<body>"` under `secret`.
/// The same logic as the sample in `docs/events.md`.
#[must_use]
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v.to_owned()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > tolerance_secs {
        return false;
    }
    let expected = sign(secret, t, body);
    sigs.iter()
        .any(|s| crate::tokens::digests_equal(s, &expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_with_either_secret_during_rotation() {
        let body = br#"{"id":"e1"}"#;
        let h = header_value(&["whsec_new", "whsec_old"], 1_700_000_000, body);
        assert!(h.starts_with("t=1700000000,v1="));
        assert!(verify("whsec_new", &h, body, 1_700_000_010, 300));
        assert!(verify("whsec_old", &h, body, 1_700_000_010, 300));
        assert!(!verify("whsec_other", &h, body, 1_700_000_010, 300));
        assert!(!verify("whsec_new", &h, b"{}", 1_700_000_010, 300));
        assert!(
            !verify("whsec_new", &h, body, 1_700_001_000, 300),
            "too old"
        );
        assert!(!verify("whsec_new", "v1=abc", body, 0, 300));
    }

    #[test]
    fn known_vector() {
        // printf '%s' '1.{}' | openssl dgst -sha256 -hmac 'k'
        assert_eq!(
            sign("k", 1, b"{}"),
            "3dd49b2593d0f9a349e9e71c4bde3e2b862c2be4003fe9b4ba81332029310158"
        );
    }
}
