//! Role mappings through the admin API (`/tenants/{tenant}/role-mappings…`); the operations
//! and their rules are [`crate::ops::roles`]'s.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::users::ApiObject;
use super::{require_tenant, AdminAuth, ApiError, ApiPath};
use crate::ops::roles::{create, fetch, mapping_json, remove, replace, MappingBody};
use crate::AppState;

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

/// The body of `PUT /api/v1/roles/{name}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueBody {
    /// What the role allows; absent or null for none.
    #[serde(default)]
    pub description: Option<String>,
}

/// `GET /api/v1/roles`: the role catalogue, by name.
///
/// # Errors
/// 401.
pub async fn catalogue_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
) -> Result<Json<Value>, ApiError> {
    let roles = crate::ops::roles::catalogue(&state).await?;
    Ok(Json(json!({
        "roles": roles.iter().map(crate::ops::roles::catalogue_json).collect::<Vec<_>>(),
    })))
}

/// `PUT /api/v1/roles/{name}`: declares a role (201) or replaces its description (200).
///
/// # Errors
/// 401, 400.
pub async fn declare_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(name): ApiPath<String>,
    ApiObject(b): ApiObject<CatalogueBody>,
) -> Result<Response, ApiError> {
    let (role, created) =
        crate::ops::roles::declare(&state, &auth.actor(), &name, b.description.as_deref()).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(crate::ops::roles::catalogue_json(&role))).into_response())
}

/// `DELETE /api/v1/roles/{name}`: removes a role from the catalogue (mappings and users keep
/// it).
///
/// # Errors
/// 401, 404.
pub async fn undeclare_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    crate::ops::roles::undeclare(&state, &auth.actor(), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
