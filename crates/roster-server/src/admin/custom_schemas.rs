//! Custom attributes: the schema extensions a tenant's host app declares for its own attributes
//! (`GET`/`PUT /api/v1/tenants/{tenant}/custom-schemas`, and `roster tenant custom-schemas`).
//!
//! The whole list is replaced at once, so a declaration is never half applied. A change that
//! would remove an attribute, or change its type or `multiValued`, is refused while any of the
//! tenant's resources holds a value for it: the stored values would no longer fit their
//! declaration (a later write of that resource would be refused) or would silently vanish
//! from SCIM. The refusal lists each such attribute with the number of resources holding it.

use axum::extract::State;
use axum::Json;
use roster_store::{ListQuery, PageRequest, Store, StoreError, Tenant};
use scim_proto::custom::{self, CustomSchema};
use scim_proto::filter::parse_filter;
use scim_proto::schema::TypeDef;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{audit, conflict, live_tenant, AdminAuth, ApiError, ApiJson, ApiPath};
use crate::AppState;

/// The body of `PUT …/custom-schemas`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declarations {
    /// Every custom schema of the tenant (an empty list removes them all).
    pub schemas: Vec<CustomSchema>,
}

/// What the tenant's stored resources would lose to a change of declarations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// The schema URN.
    pub urn: String,
    /// The attribute.
    pub attribute: String,
    /// `removed` or `retyped`.
    pub change: &'static str,
    /// Resources holding a value.
    pub resources: u64,
}

/// The attributes of `old` that `new` removes or retypes, with the declaration they had.
fn changed(
    old: &[CustomSchema],
    new: &[CustomSchema],
) -> Vec<(CustomSchema, String, &'static str)> {
    let mut out = Vec::new();
    for s in old {
        let now = new
            .iter()
            .find(|n| n.urn.eq_ignore_ascii_case(&s.urn) && n.resource == s.resource);
        for a in &s.attributes {
            let after = now.and_then(|n| {
                n.attributes
                    .iter()
                    .find(|b| b.name.eq_ignore_ascii_case(&a.name))
            });
            let change = match after {
                None => "removed",
                Some(b) if b.attr_type != a.attr_type || b.multi_valued != a.multi_valued => {
                    "retyped"
                }
                Some(_) => continue,
            };
            out.push((s.clone(), a.name.clone(), change));
        }
    }
    out
}

/// How many of the tenant's live resources hold a value for `urn:attr` under `def`.
async fn holding(
    store: &dyn Store,
    tenant: &str,
    def: TypeDef,
    urn: &str,
    attr: &str,
) -> Result<u64, ApiError> {
    let filter = parse_filter(&format!("{urn}:{attr} pr"))
        .and_then(|f| f.validate(def))
        .map_err(|_| ApiError::internal())?;
    let q = ListQuery {
        filter: Some(filter),
        sort: None,
        page: PageRequest::Index {
            start_index: 1,
            count: 0,
        },
        // An operator's rare change, checked over the whole directory.
        max_candidates: None,
    };
    Ok(store.list_resources(tenant, def.kind, &q).await?.total)
}

/// What replacing the tenant's declarations with `new` would cost its stored values.
///
/// # Errors
/// 500 when the store fails.
pub async fn losses(
    store: &dyn Store,
    tenant: &Tenant,
    new: &[CustomSchema],
) -> Result<Vec<Loss>, ApiError> {
    let mut out = Vec::new();
    for (schema, attribute, change) in changed(&tenant.settings.custom_schemas, new) {
        let def = tenant.def(schema.resource.kind());
        let resources = holding(store, &tenant.id, def, &schema.urn, &attribute).await?;
        if resources > 0 {
            out.push(Loss {
                urn: schema.urn,
                attribute,
                change,
                resources,
            });
        }
    }
    Ok(out)
}

/// The refusal of a change that `losses` found would strand stored values.
fn refused(losses: &[Loss]) -> ApiError {
    let words: Vec<String> = losses
        .iter()
        .map(|l| {
            format!(
                "{} {}:{} is held by {} resource{}",
                if l.change == "removed" {
                    "removing"
                } else {
                    "changing the type of"
                },
                l.urn,
                l.attribute,
                l.resources,
                if l.resources == 1 { "" } else { "s" }
            )
        })
        .collect();
    let mut e = conflict(format!(
        "{}. Nothing was changed: stored values that no longer fit their declaration would be \
         hidden from SCIM or make the next update of those resources fail. Clear the values \
         first (the identity provider can send the attribute empty, or stop mapping it and \
         re-push), then change the declaration",
        words.join("; ")
    ));
    e.details = Some(Box::new(json!({
        "attributes": losses.iter().map(|l| json!({
            "schema": l.urn, "attribute": l.attribute, "change": l.change,
            "resources": l.resources,
        })).collect::<Vec<_>>(),
    })));
    e
}

/// A sentinel the store edit returns when the declarations moved while they were checked.
const MOVED: &str = "custom schemas changed while this change was checked";

/// Replaces the tenant's custom schemas.
///
/// # Errors
/// 400 for a declaration of the wrong shape and 409 for a name that is taken (the detail names
/// it, see [`custom::validate`]), 404 for an unknown tenant, 409 when a removed or retyped
/// attribute holds values (details list them) or when the declarations changed meanwhile.
pub async fn replace(
    store: &dyn Store,
    tenant: &str,
    schemas: Vec<CustomSchema>,
) -> Result<Tenant, ApiError> {
    custom::validate(&schemas).map_err(|e| {
        if e.status == 409 {
            conflict(e.detail)
        } else {
            ApiError::invalid(e.detail)
        }
    })?;
    let t = live_tenant(store, tenant).await?;
    let lost = losses(store, &t, &schemas).await?;
    if !lost.is_empty() {
        return Err(refused(&lost));
    }
    let checked = t.settings.custom_schemas;
    store
        .update_tenant(
            tenant,
            Box::new(move |t: &mut Tenant| {
                // Compare-and-set: what was checked is what is replaced.
                if t.settings.custom_schemas != checked {
                    return Err(MOVED.to_owned());
                }
                t.settings.custom_schemas = schemas;
                Ok(())
            }),
        )
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(format!("no tenant \"{tenant}\"")),
            StoreError::Invalid(m) if m == MOVED => conflict(format!("{m}; send it again")),
            other => other.into(),
        })
}

fn declarations_json(t: &Tenant) -> Value {
    json!({
        "schemas": t.settings.custom_schemas,
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
    Ok(Json(declarations_json(&t)))
}

/// `PUT /api/v1/tenants/{tenant}/custom-schemas`
///
/// # Errors
/// 400, 401, 404, 409 (see [`replace`]).
pub async fn put_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(body): ApiJson<Declarations>,
) -> Result<Json<Value>, ApiError> {
    let t = replace(state.store.as_ref(), &tenant, body.schemas.clone()).await?;
    audit(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        "tenant.custom_schemas",
        Some(&tenant),
        Some(&tenant),
        json!({"schemas": body.schemas}),
    )
    .await;
    Ok(Json(declarations_json(&t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(v: Value) -> Vec<CustomSchema> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn removed_and_retyped_attributes_are_found_and_others_are_not() {
        let old = decl(
            json!([{"urn": "urn:x:User", "resource": "User", "attributes": [
            {"name": "a", "type": "string"}, {"name": "b", "type": "string"},
            {"name": "c", "type": "integer"}, {"name": "d", "type": "string"}]}]),
        );
        let new = decl(
            json!([{"urn": "URN:X:User", "resource": "User", "attributes": [
            {"name": "A", "type": "string", "description": "renamed case, kept"},
            {"name": "b", "type": "integer"},
            {"name": "d", "type": "string", "multiValued": true},
            {"name": "e", "type": "string"}]}]),
        );
        let got: Vec<(String, &str)> = changed(&old, &new)
            .into_iter()
            .map(|(_, a, c)| (a, c))
            .collect();
        assert_eq!(
            got,
            vec![
                ("b".into(), "retyped"),
                ("c".into(), "removed"),
                ("d".into(), "retyped")
            ]
        );
        assert_eq!(changed(&old, &[]).len(), 4);
        assert!(changed(&[], &new).is_empty());
    }
}
