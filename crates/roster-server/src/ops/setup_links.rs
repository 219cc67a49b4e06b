//! One-time setup links: how an operator hands a customer's IT admin the console for one
//! tenant. Made and revoked here for the admin API, the console and the CLI alike; the console
//! redeems them.

use roster_store::{SetupLink, Store};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::{audit, fmt_time, live_tenant, OpError};
use crate::tokens::{hash_token, random_alnum};

/// Default lifetime of a setup link.
pub const DEFAULT_SETUP_LINK_TTL: Duration = Duration::days(7);
/// The marker of setup-link tokens, so that a leaked one is recognisable.
pub const SETUP_MARKER: &str = "rssl_";

/// Creates a one-time setup link for `tenant`, valid for `ttl`, and audits it as `actor`;
/// returns the link's token (shown once; only its hash is stored) and its expiry. The URL is
/// [`setup_url`]`(origin, token)`. `created_by` is what the link records (and the audit entry
/// of its use shows).
///
/// # Errors
/// [`OpError::NotFound`] for an unknown tenant; a store failure.
pub async fn create_setup_link(
    store: &dyn Store,
    now: OffsetDateTime,
    tenant: &str,
    ttl: Duration,
    created_by: &str,
    actor: &str,
) -> Result<(String, OffsetDateTime), OpError> {
    live_tenant(store, tenant).await?;
    let token = format!("{SETUP_MARKER}{}", random_alnum(40));
    let expires_at = now + ttl;
    store
        .insert_setup_link(&SetupLink {
            hash: hash_token(&token),
            tenant_id: tenant.to_owned(),
            created_by: created_by.to_owned(),
            created_at: now,
            expires_at,
            used_at: None,
        })
        .await?;
    audit(
        store,
        now,
        actor,
        "console.setup_link_created",
        Some(tenant),
        None,
        json!({"expires_at": fmt_time(expires_at)}),
    )
    .await;
    Ok((token, expires_at))
}

/// Ends the tenant's unused setup links and every console session opened with one, and audits
/// it as `actor`; returns how many links and sessions ended.
///
/// # Errors
/// [`OpError::NotFound`] for an unknown tenant; a store failure.
pub async fn revoke(
    store: &dyn Store,
    now: OffsetDateTime,
    tenant: &str,
    actor: &str,
) -> Result<(u64, u64), OpError> {
    live_tenant(store, tenant).await?;
    let (links, sessions) = store.revoke_setup_links(tenant, now).await?;
    audit(
        store,
        now,
        actor,
        "console.setup_links_revoked",
        Some(tenant),
        None,
        json!({"links": links, "sessions": sessions}),
    )
    .await;
    Ok((links, sessions))
}

/// The URL of a setup link: `{origin}/console/setup/{token}`.
#[must_use]
pub fn setup_url(origin: &str, token: &str) -> String {
    format!("{}/console/setup/{token}", origin.trim_end_matches('/'))
}

/// Parses `7d`, `12h`, `30m` (or a bare number of days), written exactly so: digits without
/// a leading zero, then the unit (as the admin API's description says).
///
/// # Errors
/// A message for anything else, or a duration outside 1 minute to 90 days.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration such as 7d, 12h or 30m");
    let (num, unit) = match s.as_bytes().last() {
        Some(b'd' | b'h' | b'm') => (&s[..s.len() - 1], &s[s.len() - 1..]),
        _ => (s, "d"),
    };
    if num.is_empty() || num.starts_with('0') || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: i64 = num.parse().map_err(|_| bad())?;
    let minutes = match unit {
        "d" => n.checked_mul(24 * 60),
        "h" => n.checked_mul(60),
        _ => Some(n),
    };
    match minutes {
        Some(m) if (1..=90 * 24 * 60).contains(&m) => Ok(Duration::minutes(m)),
        _ => Err("a setup link lasts between 1 minute and 90 days".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ttls() {
        assert_eq!(parse_ttl("7d"), Ok(Duration::days(7)));
        assert_eq!(parse_ttl("12h"), Ok(Duration::hours(12)));
        assert_eq!(parse_ttl("3"), Ok(Duration::days(3)));
        assert_eq!(parse_ttl("90d"), Ok(Duration::days(90)));
        assert_eq!(parse_ttl("129600m"), Ok(Duration::days(90)));
        for bad in [
            "0m",
            "91d",
            "1y",
            "x",
            "",
            "-5d",
            "+5d",
            " 7d",
            "07d",
            "d",
            "99999999999999999d",
            "é",
            "2161h",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
