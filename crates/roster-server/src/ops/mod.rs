//! The operations the admin API, the console and the command line share: tenant settings,
//! SCIM enablement and tokens, app-user edits, role mappings, the guard's and the first-sync
//! review's decisions, and the audit log; with their validation and their events.
//!
//! The layer knows no transport: it takes plain values and an [`AppState`] (or a store), and
//! answers a value or an [`OpError`], which says what went wrong in the domain's words and
//! never as an HTTP status. Each surface is an adapter that parses its input, calls an
//! operation, and maps an [`OpError`] once (`admin::error`, `console`, the `roster` binary).
//! So the rules live in one place, and a surface cannot drift from the others by
//! re-classifying another surface's errors. Nothing here imports `crate::admin`,
//! `crate::console` or axum.

use roster_store::{AuditEntry, Store};
use serde_json::Value;
use time::OffsetDateTime;

use crate::AppState;

pub mod branding;
pub mod custom_schemas;
pub mod error;
pub mod first_sync;
pub mod guard;
pub mod keys;
pub mod operators;
pub mod roles;
pub mod setup_links;
pub mod tenants;
pub mod tokens;
pub mod users;
pub mod webhooks;

pub use error::{FieldError, OpError};

/// Default page size of lists.
pub const DEFAULT_LIMIT: u64 = 100;
/// Largest page size of lists.
pub const MAX_LIMIT: u64 = 1000;

/// The live tenant `id`.
///
/// # Errors
/// [`OpError::NotFound`] naming it; [`OpError::Store`] when the store fails.
pub async fn live_tenant(store: &dyn Store, id: &str) -> Result<roster_store::Tenant, OpError> {
    store
        .get_tenant(id)
        .await?
        .ok_or_else(|| OpError::no_tenant(id))
}

/// Answers [`OpError::NotFound`] unless the tenant exists: what every tenant-scoped operation
/// checks first.
///
/// # Errors
/// As [`live_tenant`].
pub async fn require_tenant(state: &AppState, tenant: &str) -> Result<(), OpError> {
    live_tenant(state.store.as_ref(), tenant).await.map(|_| ())
}

/// Appends an audit entry. A failure is logged and does not undo the action it records: the
/// action has happened, and refusing to answer would only make the caller retry it.
pub async fn audit(
    store: &dyn Store,
    now: OffsetDateTime,
    actor: &str,
    action: &str,
    tenant: Option<&str>,
    target: Option<&str>,
    details: Value,
) {
    let entry = AuditEntry {
        id: 0,
        at: now,
        actor: actor.to_owned(),
        action: action.to_owned(),
        tenant_id: tenant.map(str::to_owned),
        target: target.map(str::to_owned),
        details,
    };
    if let Err(e) = store.append_audit(&entry).await {
        tracing::error!(error = %e, action, "writing the audit log failed");
    }
}

/// A requested page size: 1–[`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent. Out of range is
/// refused rather than clamped, so that a list does exactly what `docs/openapi.json` says.
///
/// # Errors
/// [`OpError::Invalid`] (field `limit`) outside 1–[`MAX_LIMIT`].
pub fn page_limit(requested: Option<u64>) -> Result<u64, OpError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(OpError::invalid_field(
            "limit",
            format!("limit must be 1–{MAX_LIMIT}, not {n}"),
        )),
    }
}

/// Formats an instant as every surface shows it (RFC 3339, milliseconds, UTC).
#[must_use]
pub fn fmt_time(t: OffsetDateTime) -> String {
    scim_proto::filter::format_datetime(t)
}

/// Deserialises a field that may be absent (`None`) or a value, but not `null` (with
/// `#[serde(default, deserialize_with = "present")]`): an explicit `null` is refused instead of
/// being taken for an absent field, as `docs/openapi.json` says.
///
/// # Errors
/// When the value does not deserialise as `T`.
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Deserialises a field that may be absent (`None`), `null` (`Some(None)`) or a value.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limits() {
        assert_eq!(page_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(page_limit(Some(1)).unwrap(), 1);
        assert_eq!(page_limit(Some(MAX_LIMIT)).unwrap(), MAX_LIMIT);
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(MAX_LIMIT + 1)).is_err());
    }
}
