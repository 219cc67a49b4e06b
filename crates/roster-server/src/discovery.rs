//! Discovery endpoints (RFC 7644 §4): ServiceProviderConfig, Schemas and ResourceTypes,
//! rendered from the same schema definitions that validation and filtering use, so that what
//! is advertised is exactly what is implemented.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use scim_proto::schema::{
    all_schemas, ResourceKind, LIST_RESPONSE_SCHEMA, SERVICE_PROVIDER_CONFIG_SCHEMA,
};
use scim_proto::ScimError;
use serde_json::{json, Value};

use crate::auth::Authed;
use crate::error::{scim_json, HttpError};
use crate::scim::base_url;
use crate::AppState;

/// `GET /ServiceProviderConfig` (RFC 7643 §5, RFC 9865 §4).
pub async fn service_provider_config(
    State(state): State<AppState>,
    auth: Authed,
    headers: HeaderMap,
) -> Response {
    let base = base_url(&state, &headers, &auth.tenant.id);
    let s = &state.settings;
    let body = json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "documentationUri": "https://github.com/roster-scim/roster#readme",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": s.max_page_size},
        "changePassword": {"supported": true},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": s.default_page_size,
            "maxPageSize": s.max_page_size,
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a per-tenant bearer token issued by Roster (RFC 6750).",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        }
    });
    scim_json(StatusCode::OK, &body)
}

fn list_response(resources: Vec<Value>) -> Value {
    let n = resources.len();
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": n,
        "itemsPerPage": n,
        "startIndex": 1,
        "Resources": resources,
    })
}

/// `GET /Schemas`.
pub async fn schemas(State(state): State<AppState>, auth: Authed, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers, &auth.tenant.id);
    let all = all_schemas()
        .into_iter()
        .map(|s| s.to_json(&base))
        .collect();
    scim_json(StatusCode::OK, &list_response(all))
}

/// `GET /Schemas/{urn}`.
pub async fn schema(
    State(state): State<AppState>,
    auth: Authed,
    headers: HeaderMap,
    Path((_, urn)): Path<(String, String)>,
) -> Result<Response, HttpError> {
    let base = base_url(&state, &headers, &auth.tenant.id);
    let s = all_schemas()
        .into_iter()
        .find(|s| s.id.eq_ignore_ascii_case(&urn))
        .ok_or_else(|| ScimError::not_found(format!("no schema \"{urn}\"")))?;
    Ok(scim_json(StatusCode::OK, &s.to_json(&base)))
}

/// `GET /ResourceTypes`.
pub async fn resource_types(
    State(state): State<AppState>,
    auth: Authed,
    headers: HeaderMap,
) -> Response {
    let base = base_url(&state, &headers, &auth.tenant.id);
    let all = ResourceKind::ALL
        .iter()
        .map(|k| k.def().to_json(&base))
        .collect();
    scim_json(StatusCode::OK, &list_response(all))
}

/// `GET /ResourceTypes/{name}`.
pub async fn resource_type(
    State(state): State<AppState>,
    auth: Authed,
    headers: HeaderMap,
    Path((_, name)): Path<(String, String)>,
) -> Result<Response, HttpError> {
    let base = base_url(&state, &headers, &auth.tenant.id);
    let kind = ResourceKind::ALL
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(&name))
        .ok_or_else(|| ScimError::not_found(format!("no resource type \"{name}\"")))?;
    Ok(scim_json(StatusCode::OK, &kind.def().to_json(&base)))
}
