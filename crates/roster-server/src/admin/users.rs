//! Users for the host app (`/tenants/{tenant}/users…`): list and search with cursor pagination,
//! get, change, and erase; each user with its status, managed flag, effective roles and group
//! memberships. Changes go through [`crate::ops::users`], which holds the rules below.
//!
//! Who owns what: on a SCIM-managed user, the SCIM attributes (userName, name, displayName,
//! emails, externalId, active) belong to the identity provider, and an attempt to change them
//! here is a 409 that says so; the app-owned fields (directly assigned roles, metadata) can
//! always be changed. The tenant's custom attributes (`custom_attributes`, under each custom
//! schema's URN) follow the same rule: the identity provider's on a managed user, editable on
//! the others, and validated by type against the tenant's declarations. A user that SCIM does
//! not manage (imported, see [`super::import`]) is fully editable, and can be erased.

use axum::extract::State;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use roster_store::app::{AppUser, AppUserQuery, UserStatus};
use roster_store::StoreError;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{audit, conflict, fmt_time, page_limit, require_tenant};
use super::{AdminAuth, ApiError, ApiJson, ApiPath, ApiQuery};
use crate::ops::users::{
    custom_attributes, erase_personal_data, fetch_user, primary_email, update, UserPatch,
};
use crate::AppState;

/// A JSON request body that must be an object (serde would also read a struct from an array,
/// which the OpenAPI schemas do not allow); anything else is a JSON 400.
#[derive(Debug)]
pub struct ApiObject<T>(pub T);

impl<T, S> FromRequest<S> for ApiObject<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ApiJson(v) = ApiJson::<Value>::from_request(req, state).await?;
        if !v.is_object() {
            return Err(ApiError::invalid("the body must be a JSON object"));
        }
        serde_json::from_value(v)
            .map(ApiObject)
            .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
    }
}

/// How the API shows a user.
#[must_use]
pub fn user_json(u: &AppUser) -> Value {
    let doc = &u.resource.doc;
    let s = |k: &str| doc.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "id": u.resource.id,
        "user_name": s("userName"),
        "display_name": s("displayName"),
        "name": s("name"),
        "emails": doc.get("emails").cloned().unwrap_or_else(|| json!([])),
        "primary_email": primary_email(doc),
        "external_id": s("externalId"),
        "active": u.status == UserStatus::Active,
        "status": u.status.as_str(),
        "managed": u.managed,
        "roles": u.roles,
        "direct_roles": u.direct_roles,
        "groups": u.groups.iter().map(|g| json!({
            "id": g.id,
            "display_name": g.display_name,
            "managed": g.managed,
        })).collect::<Vec<_>>(),
        "metadata": u.metadata,
        "custom_attributes": custom_attributes(doc),
        "created": fmt_time(u.resource.created),
        "last_modified": fmt_time(u.resource.last_modified),
        "version": u.resource.version,
    })
}

/// Query of `GET /tenants/{tenant}/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListUsersQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (1–1000, default 100).
    pub limit: Option<u64>,
    /// userName starts with this (case-insensitive).
    pub q: Option<String>,
    /// Has this email (case-insensitive).
    pub email: Option<String>,
    /// Has this externalId.
    pub external_id: Option<String>,
    /// `active`, `deactivated` or `deprovisioned`.
    pub status: Option<UserStatus>,
    /// `true`: managed by SCIM; `false`: app users SCIM does not manage.
    pub managed: Option<bool>,
    /// userName, a name or an email contains this (case-insensitive, indexed).
    pub contains: Option<String>,
}

fn cursor_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid(m) => ApiError::invalid(m),
        other => other.into(),
    }
}

/// `GET /api/v1/tenants/{tenant}/users`
///
/// # Errors
/// 401, 404, 400.
pub async fn list_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListUsersQuery>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let query = AppUserQuery {
        cursor: q.cursor.filter(|c| !c.is_empty()),
        limit: page_limit(q.limit)?,
        user_name_prefix: q.q,
        search: None,
        email: q.email,
        external_id: q.external_id,
        status: q.status,
        managed: q.managed,
        contains: q.contains.filter(|c| !c.trim().is_empty()),
        ..AppUserQuery::default()
    };
    let page = state
        .store
        .list_app_users(&tenant, &query)
        .await
        .map_err(cursor_error)?;
    Ok(Json(json!({
        "users": page.items.iter().map(user_json).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

/// `GET /api/v1/tenants/{tenant}/users/{id}`
///
/// # Errors
/// 401, 404.
pub async fn get_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    Ok(Json(user_json(&fetch_user(&state, &tenant, &id).await?)))
}

/// `PATCH /api/v1/tenants/{tenant}/users/{id}`
///
/// # Errors
/// 401, 404, 400 (invalid values), 409 (an IdP-owned field of a managed user; a taken
/// userName).
pub async fn patch_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ApiObject(p): ApiObject<UserPatch>,
) -> Result<Json<Value>, ApiError> {
    let u = update(&state, &auth.actor(), &tenant, &id, &p).await?;
    Ok(Json(user_json(&u)))
}

/// `DELETE /api/v1/tenants/{tenant}/users/{id}`: erases a user that SCIM does not manage.
///
/// # Errors
/// 401, 404, 409 (managed by SCIM: its lifecycle belongs to the identity provider).
pub async fn delete_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    require_tenant(&state, &tenant).await?;
    match state
        .store
        .delete_app_user(&tenant, &id, state.clock.now())
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(ApiError::not_found(format!("no user \"{id}\""))),
        Err(StoreError::Invalid(_)) => {
            return Err(conflict(
                "this user is managed by SCIM: the identity provider owns its lifecycle \
                 (unassign or delete it there)",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    audit(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        "user.erase",
        Some(&tenant),
        Some(&id),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/tenants/{tenant}/users/{id}/erasure`: a data-protection erase of one
/// deprovisioned user's personal data (record, event payloads, provisioning-log bodies and
/// names); ids stay. Answers what was erased.
///
/// # Errors
/// 401, 403, 404 (nothing names the user), 409 (the user is live: deprovision it first).
pub async fn erasure_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let erased = erase_personal_data(&state, &auth.actor(), &tenant, &id).await?;
    Ok(Json(erased))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_endpoints_are_documented() {
        let spec: Value = serde_json::from_str(super::super::OPENAPI).unwrap();
        for (path, methods) in [
            ("/tenants/{tenant}/users", &["get"][..]),
            ("/tenants/{tenant}/user-imports", &["post"]),
            ("/tenants/{tenant}/users/{id}", &["get", "patch", "delete"]),
            ("/tenants/{tenant}/users/{id}/erasure", &["post"]),
            ("/tenants/{tenant}/groups", &["get", "post"]),
            ("/tenants/{tenant}/groups/{id}", &["get", "patch", "delete"]),
            ("/tenants/{tenant}/groups/{id}/members", &["get"]),
            ("/tenants/{tenant}/role-mappings", &["get", "post"]),
            (
                "/tenants/{tenant}/role-mappings/{id}",
                &["get", "put", "delete"],
            ),
            ("/tenants/{tenant}/login-decision", &["post"]),
            ("/tenants/{tenant}/deprovision-guard", &["get"]),
            ("/tenants/{tenant}/deprovision-guard/confirm", &["post"]),
            ("/tenants/{tenant}/deprovision-guard/reject", &["post"]),
        ] {
            let item = &spec["paths"][format!("/api/v1{path}")];
            for m in methods {
                assert!(item[m].is_object(), "{m} {path} is not documented");
            }
        }
        let types = spec["components"]["schemas"]["EventType"]["enum"]
            .as_array()
            .unwrap()
            .clone();
        for t in roster_store::EventType::ALL {
            assert!(
                types.contains(&json!(t.as_str())),
                "{t} is not in EventType"
            );
        }
    }
}
