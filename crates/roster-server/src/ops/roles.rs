//! Role mappings: a group, selected by its id, externalId or displayName (case-insensitive),
//! grants role names to its members. A user's effective roles are its directly assigned roles
//! ∪ the roles mapped to its groups (empty while it is deactivated or deprovisioned). A mapping
//! may name a group that does not exist yet: it applies as soon as the identity provider
//! creates one that matches. Every change that alters users' effective roles emits
//! `user.roles_changed` for them (the store does).

use roster_store::app::{MatchBy, RoleMapping};
use roster_store::StoreError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::users::valid_roles;
use super::{audit, fmt_time, require_tenant, OpError};
use crate::AppState;

/// Longest selector value, in characters.
pub const MAX_VALUE_LEN: usize = 1024;

/// A mapping as the admin API shows it and the audit log records it.
#[must_use]
pub fn mapping_json(m: &RoleMapping) -> Value {
    json!({
        "id": m.id,
        "group": {"by": m.by.as_str(), "value": m.value},
        "roles": m.roles,
        "created_at": fmt_time(m.created_at),
        "updated_at": fmt_time(m.updated_at),
    })
}

/// Which group a mapping selects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSelector {
    /// `id`, `externalId` or `displayName`.
    pub by: MatchBy,
    /// The value to compare with.
    pub value: String,
}

/// A mapping as the admin API (`POST /role-mappings`, `PUT /role-mappings/{id}`) and the
/// console's role-mapping editor submit it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingBody {
    /// The group.
    pub group: GroupSelector,
    /// The roles its members get.
    pub roles: Vec<String>,
}

impl MappingBody {
    /// The roles, sorted and without duplicates, once the whole mapping is valid. Refusals
    /// name their field, for a form to show each next to its input.
    fn validate(&self) -> Result<Vec<String>, OpError> {
        let v = &self.group.value;
        if v.is_empty() || v.chars().count() > MAX_VALUE_LEN {
            return Err(OpError::invalid_field(
                "group.value",
                format!("group.value must have 1 to {MAX_VALUE_LEN} characters"),
            ));
        }
        let roles =
            valid_roles("roles", &self.roles).map_err(|m| OpError::invalid_field("roles", m))?;
        if roles.is_empty() {
            return Err(OpError::invalid_field(
                "roles",
                "roles must name at least one role",
            ));
        }
        Ok(roles)
    }
}

fn duplicate(b: &MappingBody) -> OpError {
    OpError::conflict(format!(
        "a role mapping for the group with {} {:?} exists already; change that one",
        b.group.by.as_str(),
        b.group.value
    ))
}

/// Creates a role mapping (the operation behind `POST /role-mappings` and the console's
/// role-mapping editor), audited as `actor`.
///
/// # Errors
/// [`OpError::NotFound`] (tenant), [`OpError::Invalid`], [`OpError::Conflict`] (the group
/// already has a mapping of that kind).
pub async fn create(
    state: &AppState,
    actor: &str,
    tenant: &str,
    b: &MappingBody,
) -> Result<RoleMapping, OpError> {
    require_tenant(state, tenant).await?;
    let roles = b.validate()?;
    let now = state.clock.now();
    let m = RoleMapping {
        id: format!("rm_{}", crate::tokens::random_alnum(16)),
        by: b.group.by,
        value: b.group.value.clone(),
        roles,
        created_at: now,
        updated_at: now,
    };
    match state.store.create_role_mapping(tenant, &m, now).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(duplicate(b)),
        Err(e) => return Err(e.into()),
    }
    audit(
        state.store.as_ref(),
        now,
        actor,
        "role_mapping.create",
        Some(tenant),
        Some(&m.id),
        mapping_json(&m),
    )
    .await;
    Ok(m)
}

/// Replaces a mapping's selector and roles, audited as `actor`.
///
/// # Errors
/// [`OpError::NotFound`] (tenant or mapping), [`OpError::Invalid`], [`OpError::Conflict`].
pub async fn replace(
    state: &AppState,
    actor: &str,
    tenant: &str,
    id: &str,
    b: &MappingBody,
) -> Result<RoleMapping, OpError> {
    require_tenant(state, tenant).await?;
    let roles = b.validate()?;
    let cur = fetch(state, tenant, id).await?;
    let now = state.clock.now();
    let m = RoleMapping {
        by: b.group.by,
        value: b.group.value.clone(),
        roles,
        updated_at: now,
        ..cur
    };
    match state.store.update_role_mapping(tenant, &m, now).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(duplicate(b)),
        Err(StoreError::NotFound) => {
            return Err(OpError::not_found(format!("no role mapping \"{id}\"")))
        }
        Err(e) => return Err(e.into()),
    }
    audit(
        state.store.as_ref(),
        now,
        actor,
        "role_mapping.update",
        Some(tenant),
        Some(id),
        mapping_json(&m),
    )
    .await;
    Ok(m)
}

/// Deletes a mapping, audited as `actor`.
///
/// # Errors
/// [`OpError::NotFound`] (tenant or mapping).
pub async fn remove(state: &AppState, actor: &str, tenant: &str, id: &str) -> Result<(), OpError> {
    require_tenant(state, tenant).await?;
    let now = state.clock.now();
    match state.store.delete_role_mapping(tenant, id, now).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => {
            return Err(OpError::not_found(format!("no role mapping \"{id}\"")))
        }
        Err(e) => return Err(e.into()),
    }
    audit(
        state.store.as_ref(),
        now,
        actor,
        "role_mapping.delete",
        Some(tenant),
        Some(id),
        json!({}),
    )
    .await;
    Ok(())
}

/// A mapping of the tenant.
///
/// # Errors
/// [`OpError::NotFound`] when the tenant has no such mapping.
pub async fn fetch(state: &AppState, tenant: &str, id: &str) -> Result<RoleMapping, OpError> {
    state
        .store
        .get_role_mapping(tenant, id)
        .await?
        .ok_or_else(|| OpError::not_found(format!("no role mapping \"{id}\"")))
}
