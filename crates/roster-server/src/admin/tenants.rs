//! Tenants through the admin API (`/api/v1/tenants…`): create, list (paged), get, update
//! (name, identity provider, settings), delete (retaining or erasing the data), and SCIM
//! enablement. The operations are [`crate::ops::tenants`]'s, which the console and the command
//! line call too; this module parses the requests, audits creation and updates (whose action
//! names follow the endpoint), and shows the results as JSON.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use roster_store::{Tenant, TenantDataMode};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::tokens::issued_json;
use super::{fmt_time, live_tenant, page_limit, AdminAuth, ApiError, ApiJson, ApiPath, ApiQuery};
use crate::ops::tenants::{
    create, delete, disable_scim, enable_scim, settings_shape, update, NewTenant, TenantUpdate,
};
use crate::urls::base_url;
use crate::AppState;

/// How the API shows a tenant's settings: the identity provider and every setting.
#[must_use]
pub fn settings_json(t: &Tenant) -> Value {
    let mut v = settings_shape(&t.settings).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        let mut out = Map::new();
        out.insert("idp".into(), json!(t.idp));
        out.append(m);
        return Value::Object(out);
    }
    v
}

/// How the API shows a tenant.
#[must_use]
pub fn tenant_json(t: &Tenant, scim_base_url: &str) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "idp": t.idp,
        "created_at": fmt_time(t.created_at),
        "scim_base_url": scim_base_url,
        "settings": settings_json(t),
    })
}

/// Query of `GET /tenants`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Page size (1–1000, default 100).
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Query of `DELETE /tenants/{tenant}`.
#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    /// `retain` or `erase`: what happens to the tenant's users, groups, events and logs.
    pub data: Option<String>,
}

/// Parses `data=retain|erase`.
///
/// # Errors
/// 400 when absent or anything else: deleting needs an explicit choice.
pub fn data_mode(v: Option<&str>) -> Result<TenantDataMode, ApiError> {
    match v {
        Some("retain") => Ok(TenantDataMode::Retain),
        Some("erase") => Ok(TenantDataMode::Erase),
        _ => Err(ApiError::invalid(
            "say what happens to the tenant's data: ?data=retain (keep it, deactivated, for \
             audit) or ?data=erase (remove it)",
        )),
    }
}

/// `POST /api/v1/tenants`: 201 with the tenant (and, with `enable_scim`, its first token,
/// shown this once).
///
/// # Errors
/// 400, 401, 409.
pub async fn create_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    headers: HeaderMap,
    ApiJson(req): ApiJson<NewTenant>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let (t, issued) = create(state.store.as_ref(), now, &auth.actor(), req, None).await?;
    let base = base_url(&state, &headers, &t.id);
    let mut body = tenant_json(&t, &base);
    if let Some(i) = &issued {
        body["token"] = issued_json(i, &base);
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/tenants`: a page of tenants ordered by id.
///
/// # Errors
/// 400, 401.
pub async fn list_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let n = page_limit(q.limit)?;
    let mut page = state
        .store
        .list_tenants_page(q.cursor.as_deref(), n.saturating_add(1))
        .await?;
    let more = page.len() as u64 > n;
    page.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    let next = if more {
        page.last().map(|t| t.id.clone())
    } else {
        None
    };
    let tenants: Vec<Value> = page
        .iter()
        .map(|t| tenant_json(t, &base_url(&state, &headers, &t.id)))
        .collect();
    Ok(Json(json!({"tenants": tenants, "next_cursor": next})))
}

/// `GET /api/v1/tenants/{tenant}`
///
/// # Errors
/// 401, 404.
pub async fn get_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let t = live_tenant(state.store.as_ref(), &id).await?;
    Ok(Json(tenant_json(&t, &base_url(&state, &headers, &t.id))))
}

/// `PATCH /api/v1/tenants/{tenant}`: name, identity provider and settings.
///
/// # Errors
/// 400, 401, 404.
pub async fn update_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<TenantUpdate>,
) -> Result<Json<Value>, ApiError> {
    let t = update(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        &id,
        req,
    )
    .await?;
    Ok(Json(tenant_json(&t, &base_url(&state, &headers, &t.id))))
}

/// `DELETE /api/v1/tenants/{tenant}?data=retain|erase`: 204; every token stops working at once.
///
/// # Errors
/// 400 (no `data`), 401, 404.
pub async fn delete_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    let mode = data_mode(q.data.as_deref())?;
    let now = state.clock.now();
    delete(state.store.as_ref(), now, &id, mode, &auth.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/tenants/{tenant}/settings`
///
/// # Errors
/// 401, 404.
pub async fn get_settings_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let t = live_tenant(state.store.as_ref(), &id).await?;
    Ok(Json(settings_json(&t)))
}

/// `PATCH /api/v1/tenants/{tenant}/settings`: a merge patch of the settings (and `idp`).
///
/// # Errors
/// 400, 401, 404.
pub async fn update_settings_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    if !patch.is_object() {
        return Err(ApiError::invalid(
            "the settings patch must be a JSON object",
        ));
    }
    let req = TenantUpdate {
        settings: Some(patch.clone()),
        ..TenantUpdate::default()
    };
    let t = update(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        &id,
        req,
    )
    .await?;
    Ok(Json(settings_json(&t)))
}

/// `POST /api/v1/tenants/{tenant}/scim/enable`: the SCIM base URL and the first token, shown
/// this once.
///
/// # Errors
/// 401, 404, 409 (already enabled).
pub async fn enable_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let issued = enable_scim(state.store.as_ref(), now, &id, None, &auth.actor()).await?;
    Ok(Json(issued_json(&issued, &base_url(&state, &headers, &id))))
}

/// Body of `POST /tenants/{tenant}/scim/disable`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableScim {
    /// Must be `true`: disabling invalidates every token at once.
    pub confirm: bool,
}

/// `POST /api/v1/tenants/{tenant}/scim/disable` with `{"confirm": true}`: every token stops
/// working at once.
///
/// # Errors
/// 400 (no confirmation), 401, 404.
pub async fn disable_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let unconfirmed = || {
        ApiError::invalid(
            "disabling SCIM stops every token of the tenant at once and the identity provider's \
             syncs fail until SCIM is enabled again; confirm with the body {\"confirm\": true}",
        )
    };
    live_tenant(state.store.as_ref(), &id).await?;
    let confirmed = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| super::from_json::<DisableScim>(v).ok())
        .is_some_and(|r| r.confirm);
    if !confirmed {
        return Err(unconfirmed());
    }
    let now = state.clock.now();
    let revoked = disable_scim(state.store.as_ref(), now, &id, &auth.actor()).await?;
    Ok(Json(
        json!({"tenant": id, "scim_enabled": false, "revoked": revoked}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_store::TenantSettings;
    use time::OffsetDateTime;

    fn tenant() -> Tenant {
        Tenant {
            id: "acme".into(),
            name: "Acme".into(),
            idp: "generic".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            settings: TenantSettings::default(),
        }
    }

    #[test]
    fn settings_json_lists_idp_and_every_setting() {
        let v = settings_json(&tenant());
        assert_eq!(v["idp"], "generic");
        for k in [
            "scim_enabled",
            "groups_enabled",
            "deprovision_on_delete",
            "on_existing_user",
            "welcome_email",
            "sso_enforced",
            "token_ttl_days",
            "token_expiry_warning_days",
            "deprovision_guard",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }

    #[test]
    fn openapi_documents_the_tenant_routes_and_shapes() {
        let spec: Value = serde_json::from_str(super::super::OPENAPI).unwrap();
        for (path, methods) in [
            ("/api/v1/tenants", &["get", "post"][..]),
            ("/api/v1/tenants/{tenant}", &["get", "patch", "delete"]),
            ("/api/v1/tenants/{tenant}/settings", &["get", "patch"]),
            ("/api/v1/tenants/{tenant}/scim/enable", &["post"]),
            ("/api/v1/tenants/{tenant}/scim/disable", &["post"]),
            ("/api/v1/tenants/{tenant}/tokens", &["get", "post"]),
            ("/api/v1/tenants/{tenant}/tokens/rotate", &["post"]),
            ("/api/v1/tenants/{tenant}/tokens/{prefix}", &["delete"]),
        ] {
            for m in methods {
                assert!(spec["paths"][path][m].is_object(), "{m} {path}");
            }
        }
        // What the handlers return has every field the schemas require.
        let t = tenant();
        let now = OffsetDateTime::UNIX_EPOCH;
        let issued = crate::ops::tokens::new_token(&t, now, None);
        for (schema, value) in [
            ("Tenant", tenant_json(&t, "http://x/scim/v2/acme")),
            ("TenantSettings", settings_json(&t)),
            (
                "IssuedToken",
                super::super::tokens::issued_json(&issued, "b"),
            ),
            (
                "Token",
                super::super::tokens::token_json(&issued.record, now),
            ),
        ] {
            let s = &spec["components"]["schemas"][schema];
            for field in s["required"].as_array().unwrap() {
                let f = field.as_str().unwrap();
                assert!(value.get(f).is_some(), "{schema}.{f} missing in {value}");
            }
            for (k, _) in value.as_object().unwrap() {
                assert!(s["properties"].get(k).is_some(), "{schema} lacks {k}");
            }
        }
        // The settings patch schema names every setting but scim_enabled.
        let patch = &spec["components"]["schemas"]["TenantSettingsPatch"]["properties"];
        for (k, _) in settings_json(&t).as_object().unwrap() {
            assert_eq!(patch.get(k).is_some(), k != "scim_enabled", "{k}");
        }
    }

    #[test]
    fn delete_needs_an_explicit_choice() {
        assert_eq!(data_mode(Some("retain")).unwrap(), TenantDataMode::Retain);
        assert_eq!(data_mode(Some("erase")).unwrap(), TenantDataMode::Erase);
        assert!(data_mode(None).is_err());
        assert!(data_mode(Some("ERASE")).is_err());
    }
}
