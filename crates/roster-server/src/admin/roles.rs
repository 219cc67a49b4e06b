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
