//! Discovery endpoints (RFC 7644 §4): ServiceProviderConfig, Schemas and ResourceTypes,
//! rendered from the same schema definitions that validation and filtering use, so that what
//! is advertised is exactly what is implemented — and what the tenant offers: without Group when
//! its `groups_enabled` setting is off.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use scim_proto::schema::{
    ResourceKind, SchemaDef, GROUP_SCHEMA, LIST_RESPONSE_SCHEMA, SERVICE_PROVIDER_CONFIG_SCHEMA,
};
use scim_proto::ScimError;
use serde_json::{json, Value};

use crate::auth::Authed;
use crate::error::{scim_json, HttpError};
use crate::urls::base_url;
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
        // A Bulk request is one request body: the body limit is its maxPayloadSize.
        "bulk": {
            "supported": true,
            "maxOperations": s.bulk_max_operations,
            "maxPayloadSize": s.max_body_bytes,
        },
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

/// The detail of the 404 that Group endpoints answer when the tenant does not sync groups.
pub const GROUPS_DISABLED: &str =
    "groups are not synced for this tenant (tenant setting groups_enabled is false)";

/// Whether the tenant offers this resource type: Groups only when its `groups_enabled` setting
/// is on.
#[must_use]
pub fn offers(auth: &Authed, kind: ResourceKind) -> bool {
    kind != ResourceKind::Group || auth.tenant.settings.groups_enabled
}

/// A SCIM 404 saying groups are not synced, for a resource type the tenant does not offer.
///
/// # Errors
/// 404 when `kind` is not offered.
pub fn require(auth: &Authed, kind: ResourceKind) -> Result<(), HttpError> {
    if offers(auth, kind) {
        Ok(())
    } else {
        Err(ScimError::not_found(GROUPS_DISABLED).into())
    }
}

/// The schemas the tenant offers, its custom extensions included: without the Group schema
/// (and Group extensions) when groups are not synced.
fn offered_schemas(auth: &Authed) -> Vec<&'static SchemaDef> {
    ResourceKind::ALL
        .into_iter()
        .filter(|k| offers(auth, *k))
        .flat_map(|k| auth.def(k).schemas())
        .collect()
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
    let all = offered_schemas(&auth)
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
    if urn.eq_ignore_ascii_case(GROUP_SCHEMA) {
        require(&auth, ResourceKind::Group)?;
    }
    let s = offered_schemas(&auth)
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
        .filter(|k| offers(&auth, **k))
        .map(|k| auth.def(*k).to_json(&base))
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
    require(&auth, kind)?;
    Ok(scim_json(StatusCode::OK, &auth.def(kind).to_json(&base)))
}
