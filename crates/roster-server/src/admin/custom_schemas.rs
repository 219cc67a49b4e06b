//! `GET`/`PUT /api/v1/tenants/{tenant}/custom-schemas` and `/api/v1/custom-schemas`: the
//! handlers and JSON shapes of the custom-schema operations ([`crate::ops::custom_schemas`]).

use axum::extract::State;
use axum::Json;
use roster_store::{Store, Tenant};
use scim_proto::custom::{self, CustomSchema};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{audit, live_tenant, AdminAuth, ApiError, ApiJson, ApiPath, ApiQuery};
use crate::ops::custom_schemas::{replace, replace_global, Declarations, Loss};
use crate::AppState;

fn global_json() -> Value {
    json!({
        "schemas": *roster_store::global_custom_schemas(),
        "default_urn": {
            "User": custom::default_urn("{name}", custom::CustomResource::User),
            "Group": custom::default_urn("{name}", custom::CustomResource::Group),
        },
    })
}

/// `GET /api/v1/custom-schemas`: the custom schemas declared for every tenant.
///
/// # Errors
/// 401, 500.
pub async fn get_global_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
) -> Result<Json<Value>, ApiError> {
    roster_store::load_global_custom_schemas(state.store.as_ref()).await?;
    Ok(Json(global_json()))
}

/// `PUT /api/v1/custom-schemas`
///
/// # Errors
/// 400, 401, 409 (see [`replace_global`]).
pub async fn put_global_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiQuery(q): ApiQuery<PutQuery>,
    ApiJson(body): ApiJson<Declarations>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let lost = replace_global(state.store.as_ref(), body.schemas.clone(), q.force, now).await?;
    tokio::spawn(crate::custom_indexes::backfill_job(state.clone()));
    let values = values_json(&lost);
    audit(
        state.store.as_ref(),
        now,
        &auth.actor(),
        "custom_schemas",
        None,
        None,
        json!({"schemas": body.schemas, "force": q.force, "values": values}),
    )
    .await;
    let mut out = global_json();
    out["values"] = values;
    Ok(Json(out))
}

fn declarations_json(t: &Tenant) -> Value {
    let own = &t.settings.custom_schemas;
    let inherited: Vec<CustomSchema> = roster_store::global_custom_schemas()
        .iter()
        .filter(|g| !own.iter().any(|o| o.urn.eq_ignore_ascii_case(&g.urn)))
        .cloned()
        .collect();
    json!({
        "schemas": own,
        "inherited": inherited,
        "default_urn": {
            "User": custom::default_urn("{name}", custom::CustomResource::User),
            "Group": custom::default_urn("{name}", custom::CustomResource::Group),
        },
    })
}

/// `GET /api/v1/tenants/{tenant}/custom-schemas`
///
/// # Errors
/// 401, 404.
pub async fn get_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let t = live_tenant(state.store.as_ref(), &tenant).await?;
    let mut out = declarations_json(&t);
    out["indexes"] = indexes_json(state.store.as_ref(), &tenant).await?;
    Ok(Json(out))
}

/// The tenant's indexes of attributes declared `indexed`, with the state of their build.
///
/// # Errors
/// As the store's.
pub async fn indexes_json(store: &dyn Store, tenant: &str) -> Result<Value, ApiError> {
    let indexes = store.custom_indexes(tenant).await?;
    Ok(Value::Array(
        indexes
            .iter()
            .map(|ix| {
                json!({
                    "resource": ix.spec.kind.as_str(), "schema": ix.spec.urn,
                    "attribute": ix.spec.name, "state": ix.state.as_str(),
                    "failed_values": ix.failed_values,
                })
            })
            .collect(),
    ))
}

/// Query of `PUT …/custom-schemas`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutQuery {
    /// Make the change even when removed or retyped attributes hold values.
    #[serde(default)]
    pub force: bool,
}

/// How forced changes' effects on stored values are shown.
#[must_use]
pub fn values_json(lost: &[Loss]) -> Value {
    Value::Array(
        lost.iter()
            .map(|l| {
                json!({
                    "tenant": l.tenant, "schema": l.urn, "attribute": l.attribute,
                    "change": l.change, "resources": l.resources, "converted": l.converted,
                    "erased": l.erased,
                })
            })
            .collect(),
    )
}

/// `PUT /api/v1/tenants/{tenant}/custom-schemas`
///
/// # Errors
/// 400, 401, 404, 409 (see [`replace`]).
pub async fn put_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<PutQuery>,
    ApiJson(body): ApiJson<Declarations>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let (t, lost) = replace(
        state.store.as_ref(),
        &tenant,
        body.schemas.clone(),
        q.force,
        now,
    )
    .await?;
    let values = values_json(&lost);
    audit(
        state.store.as_ref(),
        now,
        &auth.actor(),
        "tenant.custom_schemas",
        Some(&tenant),
        Some(&tenant),
        json!({"schemas": body.schemas, "force": q.force, "values": values}),
    )
    .await;
    crate::custom_indexes::start_backfill(&state, &tenant);
    let mut out = declarations_json(&t);
    out["values"] = values;
    out["indexes"] = indexes_json(state.store.as_ref(), &tenant).await?;
    Ok(Json(out))
}
