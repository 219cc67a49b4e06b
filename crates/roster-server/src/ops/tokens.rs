//! A tenant's SCIM bearer tokens: issue, list, rotate, revoke; and the periodic job that
//! announces tokens (and admin keys) about to expire. Shared by the admin API, the console and
//! the command line.
//!
//! The rules: a token lives `settings.token_ttl_days` (365 by default); a tenant has at most
//! [`MAX_LIVE_TOKENS`] live tokens, so that an administrator can move the identity provider to
//! a new token without a failed sync and then revoke the old one; rotation replaces one token
//! (or all) and the replaced ones stop working at once; no token is issued while SCIM is
//! disabled.

use roster_store::tenants::{CONFLICT_SCIM_DISABLED, CONFLICT_TOKEN_LIMIT};
use roster_store::{Store, StoreError, StoreResult, Tenant, TokenRecord};
use serde_json::json;
use time::OffsetDateTime;

use super::{audit, fmt_time, live_tenant, OpError};
pub use crate::tokens::IssuedToken;
use crate::AppState;

/// Most live (unrevoked, unexpired) tokens a tenant may have at once.
pub const MAX_LIVE_TOKENS: u32 = 2;

/// A new token for `t`, living `ttl_days` (default: the tenant's `token_ttl_days`).
#[must_use]
pub fn new_token(t: &Tenant, now: OffsetDateTime, ttl_days: Option<u32>) -> IssuedToken {
    let days = ttl_days.unwrap_or(t.settings.token_ttl_days);
    crate::tokens::issue(&t.id, now, time::Duration::days(i64::from(days)))
}

/// Whether a token works at `now`.
#[must_use]
pub fn status(t: &TokenRecord, now: OffsetDateTime) -> &'static str {
    if t.revoked_at.is_some() {
        "revoked"
    } else if t.expires_at <= now {
        "expired"
    } else {
        "active"
    }
}

async fn store_error(
    store: &dyn Store,
    now: OffsetDateTime,
    tenant: &str,
    e: StoreError,
) -> OpError {
    match e {
        StoreError::NotFound => OpError::no_tenant(tenant),
        StoreError::Conflict(CONFLICT_SCIM_DISABLED) => OpError::conflict(format!(
            "SCIM is disabled for tenant \"{tenant}\": enable it first (POST \
             /api/v1/tenants/{tenant}/scim/enable, `roster scim enable {tenant}`), which \
             issues a token"
        )),
        StoreError::Conflict(CONFLICT_TOKEN_LIMIT) => {
            let live: Vec<String> = match store.list_tokens(tenant).await {
                Ok(list) => list
                    .into_iter()
                    .filter(|t| t.revoked_at.is_none() && t.expires_at > now)
                    .map(|t| t.prefix)
                    .collect(),
                Err(_) => Vec::new(),
            };
            OpError::conflict(format!(
                "tenant \"{tenant}\" already has {MAX_LIVE_TOKENS} live tokens ({}), the most \
                 allowed: revoke one first (DELETE /api/v1/tenants/{tenant}/tokens/{{prefix}}), \
                 or rotate one (POST /api/v1/tenants/{tenant}/tokens/rotate)",
                live.join(", ")
            ))
        }
        other => other.into(),
    }
}

/// Issues the first token of a tenant just created with SCIM enabled.
///
/// # Errors
/// As [`create`].
pub async fn issue_first(
    store: &dyn Store,
    t: &Tenant,
    now: OffsetDateTime,
    ttl_days: Option<u32>,
) -> Result<IssuedToken, OpError> {
    let issued = new_token(t, now, ttl_days);
    match store
        .create_token(&issued.record, MAX_LIVE_TOKENS, now)
        .await
    {
        Ok(()) => Ok(issued),
        Err(e) => Err(store_error(store, now, &t.id, e).await),
    }
}

/// The tenant's tokens, newest first, revoked and expired ones included.
///
/// # Errors
/// [`OpError::NotFound`] for an unknown tenant.
pub async fn list(store: &dyn Store, tenant: &str) -> Result<Vec<TokenRecord>, OpError> {
    live_tenant(store, tenant).await?;
    Ok(store.list_tokens(tenant).await?)
}

/// Issues a new token beside the live ones, audited as `actor`.
///
/// # Errors
/// [`OpError::NotFound`] for an unknown tenant; [`OpError::Conflict`] at [`MAX_LIVE_TOKENS`]
/// live tokens or when SCIM is disabled.
pub async fn create(
    store: &dyn Store,
    now: OffsetDateTime,
    tenant: &str,
    ttl_days: Option<u32>,
    actor: &str,
) -> Result<IssuedToken, OpError> {
    let t = live_tenant(store, tenant).await?;
    let issued = issue_first(store, &t, now, ttl_days).await?;
    audit(
        store,
        now,
        actor,
        "token.create",
        Some(tenant),
        Some(&issued.record.prefix),
        json!({"expires_at": fmt_time(issued.record.expires_at)}),
    )
    .await;
    Ok(issued)
}

/// Issues a new token and revokes `replace` (or, with `None`, every live token) at once,
/// audited as `actor`. Returns the new token and the revoked prefixes.
///
/// # Errors
/// [`OpError::NotFound`] for an unknown tenant or when `replace` is not one of its tokens;
/// [`OpError::Conflict`] when SCIM is disabled or `replace` was already revoked.
pub async fn rotate(
    store: &dyn Store,
    now: OffsetDateTime,
    tenant: &str,
    replace: Option<&str>,
    ttl_days: Option<u32>,
    actor: &str,
) -> Result<(IssuedToken, Vec<String>), OpError> {
    let t = live_tenant(store, tenant).await?;
    let issued = new_token(&t, now, ttl_days);
    let revoked = match store.rotate_token(&issued.record, replace, now).await {
        Ok(revoked) => revoked,
        Err(StoreError::NotFound) => {
            return Err(not_live(store, tenant, replace.unwrap_or_default()).await)
        }
        Err(e) => return Err(store_error(store, now, tenant, e).await),
    };
    audit(
        store,
        now,
        actor,
        "token.rotate",
        Some(tenant),
        Some(&issued.record.prefix),
        json!({"revoked": revoked}),
    )
    .await;
    Ok((issued, revoked))
}

/// Why `prefix` is not a live token of `tenant`: a conflict when it was (it is still listed,
/// as revoked), not found when the tenant never had it.
async fn not_live(store: &dyn Store, tenant: &str, prefix: &str) -> OpError {
    match store.find_token(prefix).await {
        Ok(Some(t)) if t.tenant_id == tenant => match t.revoked_at {
            Some(at) => OpError::conflict(format!(
                "token \"{prefix}\" of tenant \"{tenant}\" was already revoked at {}",
                fmt_time(at)
            )),
            None => OpError::not_found(format!(
                "tenant \"{tenant}\" has no live token with prefix \"{prefix}\""
            )),
        },
        Ok(_) => OpError::not_found(format!(
            "tenant \"{tenant}\" has no token with prefix \"{prefix}\""
        )),
        Err(e) => e.into(),
    }
}

/// Revokes one token, audited as `actor`; it stops working at once.
///
/// # Errors
/// [`OpError::NotFound`] for an unknown tenant or token, [`OpError::Conflict`] when the token
/// was already revoked.
pub async fn revoke(
    store: &dyn Store,
    now: OffsetDateTime,
    tenant: &str,
    prefix: &str,
    actor: &str,
) -> Result<(), OpError> {
    live_tenant(store, tenant).await?;
    match store.revoke_token(tenant, prefix, now).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(not_live(store, tenant, prefix).await),
        Err(e) => return Err(e.into()),
    }
    audit(
        store,
        now,
        actor,
        "token.revoke",
        Some(tenant),
        Some(prefix),
        json!({}),
    )
    .await;
    Ok(())
}

/// Announces, once each, the live tokens of every tenant that expire within the tenant's
/// `token_expiry_warning_days` (0 turns the warning off). Returns how many were announced.
///
/// # Errors
/// When the store fails; tenants already handled keep their announcements.
pub async fn check_expiring(store: &dyn Store, now: OffsetDateTime) -> StoreResult<usize> {
    let mut n = 0;
    for t in store.list_tenants().await? {
        let days = t.settings.token_expiry_warning_days;
        if days == 0 || !t.settings.scim_enabled {
            continue;
        }
        let before = now + time::Duration::days(i64::from(days));
        let warned = store.warn_expiring_tokens(&t.id, before, now).await?;
        for w in &warned {
            tracing::info!(
                tenant = %t.id,
                token_prefix = %w.prefix,
                expires_at = %fmt_time(w.expires_at),
                "token expires soon; token.expiring emitted"
            );
        }
        n += warned.len();
    }
    Ok(n)
}

/// One run of the periodic job `token-expiry-warnings` (see [`crate::jobs`]): runs
/// [`check_expiring`] at the injected clock's time.
pub async fn expiry_warnings(state: AppState) {
    if let Err(e) = check_expiring(state.store.as_ref(), state.clock.now()).await {
        tracing::error!(error = %e, "checking for expiring tokens failed; retrying later");
    }
    if let Err(e) = admin_keys_expiring(state.store.as_ref(), state.clock.now()).await {
        tracing::error!(error = %e, "checking for expiring admin keys failed; retrying later");
    }
}

/// How long before an admin key expires it is announced.
pub const ADMIN_KEY_WARNING: time::Duration = time::Duration::days(14);

/// Announces, once each, the admin keys that expire within [`ADMIN_KEY_WARNING`]: an
/// `admin_key.expiring` entry in the audit log (admin keys belong to no tenant, so there is no
/// tenant feed to put an event in) and a warning in the server log, naming the prefix only.
/// Returns how many were announced.
///
/// # Errors
/// When the store fails.
pub async fn admin_keys_expiring(
    store: &dyn roster_store::Store,
    now: OffsetDateTime,
) -> roster_store::StoreResult<usize> {
    let keys = store
        .claim_admin_key_expiry_warnings(now, ADMIN_KEY_WARNING)
        .await?;
    for k in &keys {
        let at = k.expires_at.map(super::fmt_time).unwrap_or_default();
        tracing::warn!(key_prefix = %k.prefix, expires_at = %at, "an admin key expires soon: create its successor and revoke it");
        audit(
            store,
            now,
            "roster",
            "admin_key.expiring",
            None,
            Some(&k.prefix),
            json!({"expires_at": at, "name": k.name}),
        )
        .await;
    }
    Ok(keys.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_comes_from_the_tenant_unless_given() {
        let mut t = Tenant {
            id: "acme".into(),
            name: "Acme".into(),
            idp: "generic".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            settings: roster_store::TenantSettings::default(),
        };
        let now = OffsetDateTime::UNIX_EPOCH;
        let life = |i: &IssuedToken| i.record.expires_at - i.record.created_at;
        assert_eq!(life(&new_token(&t, now, None)), time::Duration::days(365));
        t.settings.token_ttl_days = 30;
        assert_eq!(life(&new_token(&t, now, None)), time::Duration::days(30));
        assert_eq!(life(&new_token(&t, now, Some(2))), time::Duration::days(2));
    }
}
