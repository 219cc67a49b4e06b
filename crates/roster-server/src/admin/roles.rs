//! Role mappings (`/tenants/{tenant}/role-mappings…`): a group, selected by its id, externalId
//! or displayName (case-insensitive), grants role names to its members. A user's effective
//! roles are its directly assigned roles ∪ the roles mapped to its groups (empty while it is
//! deactivated or deprovisioned). A mapping may name a group that does not exist yet: it
//! applies as soon as the identity provider creates one that matches. Every change that alters
//! users' effective roles emits `user.roles_changed` for them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use roster_store::app::{MatchBy, RoleMapping};
use roster_store::StoreError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::conflict;
use super::users::{valid_roles, ApiObject};
use super::{audit, fmt_time, require_tenant, AdminAuth, ApiError, ApiPath};
use crate::AppState;

/// Longest selector value, in characters.
pub const MAX_VALUE_LEN: usize = 1024;

/// How the API shows a mapping.
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSelector {
    /// `id`, `externalId` or `displayName`.
    pub by: MatchBy,
    /// The value to compare with.
    pub value: String,
}

/// Body of `POST /role-mappings` and `PUT /role-mappings/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingBody {
    /// The group.
    pub group: GroupSelector,
    /// The roles its members get.
    pub roles: Vec<String>,
}

impl MappingBody {
    fn validate(&self) -> Result<Vec<String>, ApiError> {
        let v = &self.group.value;
        if v.is_empty() || v.chars().count() > MAX_VALUE_LEN {
            return Err(ApiError::invalid(format!(
                "group.value must have 1 to {MAX_VALUE_LEN} characters"
            )));
        }
        let roles = valid_roles("roles", &self.roles).map_err(ApiError::invalid)?;
        if roles.is_empty() {
            return Err(ApiError::invalid("roles must name at least one role"));
        }
        Ok(roles)
    }
}

fn duplicate(b: &MappingBody) -> ApiError {
    conflict(format!(
        "a role mapping for the group with {} {:?} exists already; change that one",
        b.group.by.as_str(),
        b.group.value
    ))
}

/// `GET /api/v1/tenants/{tenant}/role-mappings`
///
/// # Errors
/// 401, 404.
pub async fn list_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let list = state.store.list_role_mappings(&tenant).await?;
    Ok(Json(json!({
        "role_mappings": list.iter().map(mapping_json).collect::<Vec<_>>(),
    })))
}

/// Creates a role mapping (the operation behind `POST /role-mappings` and the console's
/// role-mapping editor), audited as `actor`.
///
/// # Errors
/// 404 (tenant), 400, 409 (the group already has a mapping of that kind).
pub async fn create(
    state: &AppState,
    actor: &str,
    tenant: &str,
    b: &MappingBody,
) -> Result<RoleMapping, ApiError> {
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
/// 404 (tenant or mapping), 400, 409.
pub async fn replace(
    state: &AppState,
    actor: &str,
    tenant: &str,
    id: &str,
    b: &MappingBody,
) -> Result<RoleMapping, ApiError> {
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
            return Err(ApiError::not_found(format!("no role mapping \"{id}\"")))
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
/// 404 (tenant or mapping).
pub async fn remove(state: &AppState, actor: &str, tenant: &str, id: &str) -> Result<(), ApiError> {
    require_tenant(state, tenant).await?;
    let now = state.clock.now();
    match state.store.delete_role_mapping(tenant, id, now).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => {
            return Err(ApiError::not_found(format!("no role mapping \"{id}\"")))
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

/// `POST /api/v1/tenants/{tenant}/role-mappings`
///
/// # Errors
/// 401, 404, 400, 409 (the group already has a mapping of that kind).
pub async fn create_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
    ApiObject(b): ApiObject<MappingBody>,
) -> Result<Response, ApiError> {
    let m = create(&state, &auth.actor(), &tenant, &b).await?;
    Ok((StatusCode::CREATED, Json(mapping_json(&m))).into_response())
}

async fn fetch(state: &AppState, tenant: &str, id: &str) -> Result<RoleMapping, ApiError> {
    state
        .store
        .get_role_mapping(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no role mapping \"{id}\"")))
}

/// `GET /api/v1/tenants/{tenant}/role-mappings/{id}`
///
/// # Errors
/// 401, 404.
pub async fn get_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    Ok(Json(mapping_json(&fetch(&state, &tenant, &id).await?)))
}

/// `PUT /api/v1/tenants/{tenant}/role-mappings/{id}`: replaces the selector and roles.
///
/// # Errors
/// 401, 404, 400, 409.
pub async fn put_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ApiObject(b): ApiObject<MappingBody>,
) -> Result<Json<Value>, ApiError> {
    let m = replace(&state, &auth.actor(), &tenant, &id, &b).await?;
    Ok(Json(mapping_json(&m)))
}

/// `DELETE /api/v1/tenants/{tenant}/role-mappings/{id}`
///
/// # Errors
/// 401, 404.
pub async fn delete_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    remove(&state, &auth.actor(), &tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
