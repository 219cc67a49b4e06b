//! The tenant lifecycle and the token rules: enabling and disabling SCIM, creating, rotating and
//! revoking tokens (a rotation or revocation takes effect at the commit: the old token stops
//! working at once), the live-token limit, expiry warnings, and deleting a tenant.

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::outbox::append_events;
use super::{emails, stored_time, Rows};
use crate::tenants::{
    TenantDataMode, TenantEdit, CONFLICT_SCIM_DISABLED, CONFLICT_SCIM_ENABLED, CONFLICT_TOKEN_LIMIT,
};
use crate::{EventType, NewEvent, StoreError, StoreResult, Tenant, TokenRecord};

/// How token events name a token: its public prefix and expiry, never the hash.
#[must_use]
pub fn token_ref(token: &TokenRecord) -> Value {
    json!({
        "prefix": token.prefix,
        "created_at": scim_proto::filter::format_datetime(token.created_at),
        "expires_at": scim_proto::filter::format_datetime(token.expires_at),
    })
}

async fn live_tenant<R: Rows + ?Sized>(rows: &mut R, id: &str) -> StoreResult<Tenant> {
    rows.live_tenant(id).await?.ok_or(StoreError::NotFound)
}

/// The live tenant, or `NotFound`; `Conflict(CONFLICT_SCIM_DISABLED)` when SCIM is off.
async fn scim_tenant<R: Rows + ?Sized>(rows: &mut R, id: &str) -> StoreResult<Tenant> {
    let t = live_tenant(rows, id).await?;
    if !t.settings.scim_enabled {
        return Err(StoreError::Conflict(CONFLICT_SCIM_DISABLED));
    }
    Ok(t)
}

/// Applies an operator's edit to a live tenant: its name, identity provider and settings, but
/// never its id, creation time or `scim_enabled` (which change only through
/// [`enable_scim`] and [`disable_scim`]). A change of `email_uniqueness` rebuilds the tenant's
/// email claims, or is refused ([`StoreError::EmailDuplicates`]) while users share emails the
/// new setting counts (see [`emails::change_mode`]); a change of `first_sync_review` opens or
/// closes the tenant's review (see [`super::review::settings_changed`]).
///
/// Concurrency: reads the tenant's row, then writes it; it must not change in between. A
/// change of `email_uniqueness` also reads the tenant's emails: no user may be written in
/// between (a backend without SQLite's write lock holds the tenant's write lock).
pub async fn update_tenant<R: Rows + ?Sized>(
    rows: &mut R,
    id: &str,
    edit: TenantEdit,
) -> StoreResult<Tenant> {
    let before = live_tenant(rows, id).await?;
    let mut after = before.clone();
    edit(&mut after).map_err(StoreError::Invalid)?;
    if after.id != before.id || after.created_at != before.created_at {
        return Err(StoreError::Invalid(
            "a tenant's id and creation time cannot change".to_owned(),
        ));
    }
    if after.settings.scim_enabled != before.settings.scim_enabled {
        return Err(StoreError::Invalid(
            "scim_enabled changes only through enabling or disabling SCIM".to_owned(),
        ));
    }
    let (from, to) = (
        before.settings.email_uniqueness,
        after.settings.email_uniqueness,
    );
    emails::change_mode(rows, id, from, to).await?;
    let review = (
        before.settings.first_sync_review,
        after.settings.first_sync_review,
    );
    super::review::settings_changed(rows, id, review).await?;
    rows.write_tenant(&after).await?;
    Ok(after)
}

/// The check before the tenant's settings are replaced whole (the development command's
/// path): a change of `email_uniqueness` rebuilds the email claims or is refused, as in
/// [`update_tenant`]. `NotFound` for an unknown tenant. The caller then writes the settings.
///
/// Concurrency: as [`update_tenant`].
pub async fn before_settings<R: Rows + ?Sized>(
    rows: &mut R,
    id: &str,
    settings: &crate::TenantSettings,
) -> StoreResult<()> {
    let Some(before) = rows.tenant_settings(id).await? else {
        return Err(StoreError::NotFound);
    };
    emails::change_mode(rows, id, before.email_uniqueness, settings.email_uniqueness).await?;
    let review = (before.first_sync_review, settings.first_sync_review);
    super::review::settings_changed(rows, id, review).await
}

/// Enables SCIM for the token's tenant with its first token. `Conflict(CONFLICT_SCIM_ENABLED)`
/// when it is on already. Events: `scim.enabled`, `token.created`.
///
/// Concurrency: as [`update_tenant`].
pub async fn enable_scim<R: Rows + ?Sized>(
    rows: &mut R,
    token: &TokenRecord,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let mut t = live_tenant(rows, &token.tenant_id).await?;
    if t.settings.scim_enabled {
        return Err(StoreError::Conflict(CONFLICT_SCIM_ENABLED));
    }
    t.settings.scim_enabled = true;
    rows.write_tenant(&t).await?;
    rows.insert_token(token).await?;
    let events = vec![
        NewEvent::new(EventType::ScimEnabled, json!({"token": token_ref(token)})),
        NewEvent::new(EventType::TokenCreated, json!({"token": token_ref(token)})),
    ];
    append_events(rows, &t.id, stored_time(now), events).await?;
    Ok(())
}

/// Disables SCIM for a tenant and revokes every live token; returns the revoked prefixes.
/// Events: `scim.disabled` (none when it was off and no token was live).
///
/// Concurrency: as [`update_tenant`]; the tokens revoked are those live at the write.
pub async fn disable_scim<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    now: OffsetDateTime,
) -> StoreResult<Vec<String>> {
    let now = stored_time(now);
    let mut t = live_tenant(rows, tenant).await?;
    // Revoke even when already disabled: a token can only have been left live by a store older
    // than this rule, and "disabled" must mean "no token works".
    let revoked = rows.revoke_tokens(tenant, None, now).await?;
    if !t.settings.scim_enabled && revoked.is_empty() {
        return Ok(revoked);
    }
    t.settings.scim_enabled = false;
    rows.write_tenant(&t).await?;
    let event = NewEvent::new(EventType::ScimDisabled, json!({"revoked": revoked}));
    append_events(rows, tenant, now, vec![event]).await?;
    Ok(revoked)
}

/// Stores a token with its `token.created` event, whatever the tenant's state (the command
/// line's path; see [`create_token`] for the admin API's).
pub async fn insert_token<R: Rows + ?Sized>(rows: &mut R, token: &TokenRecord) -> StoreResult<()> {
    rows.insert_token(token).await?;
    let event = NewEvent::new(EventType::TokenCreated, json!({"token": token_ref(token)}));
    append_events(
        rows,
        &token.tenant_id,
        stored_time(token.created_at),
        vec![event],
    )
    .await?;
    Ok(())
}

/// Adds a token to a tenant with SCIM on, unless it has `max_live` live tokens already
/// (`Conflict(CONFLICT_TOKEN_LIMIT)`). Events: `token.created`.
///
/// Concurrency: counts the live tokens, then inserts; no token may be added in between (two
/// concurrent creations must not both pass): a backend without SQLite's write lock locks the
/// tenant's row first.
pub async fn create_token<R: Rows + ?Sized>(
    rows: &mut R,
    token: &TokenRecord,
    max_live: u32,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let now = stored_time(now);
    scim_tenant(rows, &token.tenant_id).await?;
    let live = rows.live_token_count(&token.tenant_id, now).await?;
    if live >= i64::from(max_live) {
        return Err(StoreError::Conflict(CONFLICT_TOKEN_LIMIT));
    }
    rows.insert_token(token).await?;
    let event = NewEvent::new(EventType::TokenCreated, json!({"token": token_ref(token)}));
    append_events(rows, &token.tenant_id, now, vec![event]).await?;
    Ok(())
}

/// Rotates: revokes the live token `replace` (`NotFound` when it is not live), or with `None`
/// every live token of the tenant, and stores the new one; the old stop working when this
/// commits. `scim_required`: refuse (`Conflict(CONFLICT_SCIM_DISABLED)`) when SCIM is off.
/// Returns the revoked prefixes. Events: `token.rotated`.
///
/// Concurrency: the revocation and the insert are one transaction; the tokens revoked are those
/// live at the write.
pub async fn rotate_token<R: Rows + ?Sized>(
    rows: &mut R,
    token: &TokenRecord,
    replace: Option<&str>,
    scim_required: bool,
    now: OffsetDateTime,
) -> StoreResult<Vec<String>> {
    let now = stored_time(now);
    if scim_required {
        scim_tenant(rows, &token.tenant_id).await?;
    }
    let revoked = rows.revoke_tokens(&token.tenant_id, replace, now).await?;
    if replace.is_some() && revoked.is_empty() {
        return Err(StoreError::NotFound);
    }
    rows.insert_token(token).await?;
    let event = NewEvent::new(
        EventType::TokenRotated,
        json!({"token": token_ref(token), "revoked": revoked}),
    );
    append_events(rows, &token.tenant_id, now, vec![event]).await?;
    Ok(revoked)
}

/// Revokes one live token (`NotFound` when it is not live). Events: `token.revoked`.
pub async fn revoke_token<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    prefix: &str,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let now = stored_time(now);
    if rows
        .revoke_tokens(tenant, Some(prefix), now)
        .await?
        .is_empty()
    {
        return Err(StoreError::NotFound);
    }
    let event = NewEvent::new(
        EventType::TokenRevoked,
        json!({"token": {"prefix": prefix}}),
    );
    append_events(rows, tenant, now, vec![event]).await?;
    Ok(())
}

/// Deletes a tenant: `Retain` marks it deleted and revokes its tokens (its data stays, for a
/// later erase or an audit), `Erase` removes every row that names it except the audit log.
/// `NotFound` for an unknown tenant, or a deleted one with `Retain`.
pub async fn delete_tenant<R: Rows + ?Sized>(
    rows: &mut R,
    id: &str,
    mode: TenantDataMode,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let now = stored_time(now);
    match (rows.tenant_deleted_at(id).await?, mode) {
        (None, _) | (Some(Some(_)), TenantDataMode::Retain) => Err(StoreError::NotFound),
        (Some(None), TenantDataMode::Retain) => {
            rows.revoke_tokens(id, None, now).await?;
            rows.mark_tenant_deleted(id, now).await
        }
        (Some(_), TenantDataMode::Erase) => rows.erase_tenant(id).await,
    }
}

/// Marks the tenant's live tokens that expire by `before` (and not yet warned of) as warned, and
/// returns them by expiry. Events: one `token.expiring` each.
///
/// Concurrency: the mark and the events are one transaction, so each token is warned of once.
pub async fn warn_expiring_tokens<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    before: OffsetDateTime,
    now: OffsetDateTime,
) -> StoreResult<Vec<TokenRecord>> {
    let now = stored_time(now);
    let mut tokens = rows.mark_expiring_tokens(tenant, before, now).await?;
    if tokens.is_empty() {
        return Ok(tokens);
    }
    tokens.sort_by(|a, b| (a.expires_at, &a.prefix).cmp(&(b.expires_at, &b.prefix)));
    let events = tokens
        .iter()
        .map(|t| NewEvent::new(EventType::TokenExpiring, json!({"token": token_ref(t)})))
        .collect();
    append_events(rows, tenant, now, events).await?;
    Ok(tokens)
}
