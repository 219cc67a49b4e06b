//! Role mappings: a group, selected by its id, externalId or displayName (case-insensitive),
//! grants role names to its members. A user's effective roles are its directly assigned roles
//! ∪ the roles mapped to its groups (empty while it is deactivated or deprovisioned). A mapping
//! may name a group that does not exist yet: it applies as soon as the identity provider
//! creates one that matches. Every change that alters users' effective roles emits
//! `user.roles_changed` for them (the store does).

use roster_store::app::{MatchBy, RoleMapping};
use roster_store::{CatalogueRole, StoreError, Tenant};
use serde::Deserialize;
use serde_json::{json, Value};

use super::users::{valid_role, valid_roles, MAX_ROLE_LEN};
use super::{audit, fmt_time, live_tenant, require_tenant, OpError};
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
    let t = live_tenant(state.store.as_ref(), tenant).await?;
    let roles = b.validate()?;
    check_grant(state, &t, actor, "roles", &roles, &[]).await?;
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
    let t = live_tenant(state.store.as_ref(), tenant).await?;
    let roles = b.validate()?;
    let cur = fetch(state, tenant, id).await?;
    check_grant(state, &t, actor, "roles", &roles, &cur.roles).await?;
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

/// Longest description of a catalogue role, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 500;

/// A role of the catalogue as the admin API shows it and the audit log records it.
#[must_use]
pub fn catalogue_json(r: &CatalogueRole) -> Value {
    json!({
        "name": r.name,
        "description": r.description,
        "created_at": fmt_time(r.created_at),
        "updated_at": fmt_time(r.updated_at),
    })
}

/// Whether `actor` is a tenant's IT admin: a console session opened with a setup link
/// (`console:setup-link:{tenant}`), as opposed to an operator, an admin API key or the command
/// line.
#[must_use]
pub fn is_it_admin(actor: &str) -> bool {
    actor.starts_with("console:setup-link:")
}

/// The role catalogue, by name (`GET /api/v1/roles`, `roster roles list`, the console's roles
/// page).
///
/// # Errors
/// [`OpError::Store`].
pub async fn catalogue(state: &AppState) -> Result<Vec<CatalogueRole>, OpError> {
    Ok(state.store.list_catalogue_roles().await?)
}

/// Declares a role in the catalogue, or replaces its description (`PUT /api/v1/roles/{name}`,
/// `roster roles add`), audited as `actor`. Answers the role and whether it is new.
///
/// # Errors
/// [`OpError::Invalid`] (a name or description out of shape).
pub async fn declare(
    state: &AppState,
    actor: &str,
    name: &str,
    description: Option<&str>,
) -> Result<(CatalogueRole, bool), OpError> {
    let mut errors = Vec::new();
    if !valid_role(name) {
        errors.push(super::FieldError {
            field: Some("name".to_owned()),
            message: format!(
                "name: a role name has 1 to {MAX_ROLE_LEN} characters: letters, digits, spaces \
                 and _ . : - (a letter or digit first, no space at the end), not {name:?}"
            ),
        });
    }
    let description = description.map(str::trim).filter(|d| !d.is_empty());
    if description
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LEN || d.chars().any(char::is_control))
    {
        errors.push(super::FieldError {
            field: Some("description".to_owned()),
            message: format!("description: at most {MAX_DESCRIPTION_LEN} characters on one line"),
        });
    }
    if !errors.is_empty() {
        return Err(OpError::Invalid { errors });
    }
    let now = state.clock.now();
    let role = CatalogueRole {
        name: name.to_owned(),
        description: description.map(str::to_owned),
        created_at: now,
        updated_at: now,
    };
    let created = state.store.put_catalogue_role(&role).await?;
    audit(
        state.store.as_ref(),
        now,
        actor,
        "role_catalogue.put",
        None,
        Some(name),
        json!({"name": name, "description": description, "created": created}),
    )
    .await;
    let stored = catalogue(state)
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or(role);
    Ok((stored, created))
}

/// Removes a role from the catalogue (`DELETE /api/v1/roles/{name}`, `roster roles remove`),
/// audited as `actor`. Mappings and users that carry it keep it: new grants of it are refused.
///
/// # Errors
/// [`OpError::NotFound`] when the catalogue has no such role.
pub async fn undeclare(state: &AppState, actor: &str, name: &str) -> Result<(), OpError> {
    match state.store.remove_catalogue_role(name).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => {
            return Err(OpError::not_found(format!(
                "the role catalogue has no role {name:?}"
            )))
        }
        Err(e) => return Err(e.into()),
    }
    audit(
        state.store.as_ref(),
        state.clock.now(),
        actor,
        "role_catalogue.remove",
        None,
        Some(name),
        json!({"name": name}),
    )
    .await;
    Ok(())
}

/// Checks the roles `actor` grants on tenant `t` (a mapping's roles, a user's assigned roles;
/// `field` names them in a refusal): each role `roles` adds to `before` must be in the role
/// catalogue once it declares any (while it is empty, any well-formed name, as before the
/// catalogue), and, for the tenant's IT admin ([`is_it_admin`]), among the tenant's
/// `grantable_roles`. Roles already held are kept even when they left the catalogue, so that
/// changing something else never fails on them.
///
/// # Errors
/// [`OpError::Invalid`] naming `field`, every refused role at once.
pub async fn check_grant(
    state: &AppState,
    t: &Tenant,
    actor: &str,
    field: &str,
    roles: &[String],
    before: &[String],
) -> Result<(), OpError> {
    let added: Vec<&String> = roles.iter().filter(|r| !before.contains(r)).collect();
    if added.is_empty() {
        return Ok(());
    }
    let catalogue = catalogue(state).await?;
    if catalogue.is_empty() {
        return Ok(());
    }
    let unknown: Vec<&str> = added
        .iter()
        .filter(|r| !catalogue.iter().any(|c| c.name == ***r))
        .map(|r| r.as_str())
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = catalogue.iter().map(|c| c.name.as_str()).collect();
        return Err(OpError::invalid_field(
            field,
            format!(
                "{field}: {} not in the role catalogue; choose from: {}",
                quoted_list(&unknown),
                known.join(", ")
            ),
        ));
    }
    if is_it_admin(actor) {
        let grantable = &t.settings.grantable_roles;
        let refused: Vec<&str> = added
            .iter()
            .filter(|r| !grantable.contains(r))
            .map(|r| r.as_str())
            .collect();
        if !refused.is_empty() {
            let may = if grantable.is_empty() {
                "none; ask your vendor to allow the roles you need".to_owned()
            } else {
                grantable.join(", ")
            };
            return Err(OpError::invalid_field(
                field,
                format!(
                    "{field}: you may not grant {}; the roles you may grant: {may}",
                    quoted(&refused)
                ),
            ));
        }
    }
    Ok(())
}

/// `"a", "b"`.
fn quoted(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    q.join(", ")
}

/// `"a" is` or `"a", "b" are`.
fn quoted_list(names: &[&str]) -> String {
    format!(
        "{} {}",
        quoted(names),
        if names.len() == 1 { "is" } else { "are" }
    )
}
