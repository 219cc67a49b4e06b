//! The custom-schema operations shared by the admin API and the command line: replacing a
//! tenant's declarations or the global ones, with the check of what stored values would lose,
//! the forced conversions, and the sync of the tenant's custom-attribute indexes.
//!
//! (`GET`/`PUT /api/v1/tenants/{tenant}/custom-schemas`, and `roster tenant custom-schemas`).
//!
//! The whole list is replaced at once, so a declaration is never half applied. A change that
//! would remove an attribute, or change its type or `multiValued`, is refused while any of the
//! tenant's resources holds a value for it: the stored values would no longer fit their
//! declaration (a later write of that resource would be refused) or would silently vanish
//! from SCIM. The refusal lists each such attribute with the number of resources holding it.
//!
//! Forced (`?force=true`, `roster tenant custom-schemas --set FILE --force`), the change is
//! made and the stored values follow it: a removed attribute's values are erased; a retyped
//! attribute's values are converted where they keep their meaning and erased where not
//! ([`custom::convert`]). Each resource so changed gets a new version and the usual
//! `user.updated`/`group.updated` event, so the host app sees the values go. The declaration
//! is written first (from then on SCIM writes must fit it), then the resources are rewritten
//! one by one; the answer counts what was converted and erased.

use roster_store::meta::GLOBAL_CUSTOM_SCHEMAS;
use roster_store::{ListQuery, PageRequest, ResourceUpdate, Store, StoreError, Tenant};
use scim_proto::custom::{self, CustomAttribute, CustomSchema};
use scim_proto::filter::parse_filter;
use scim_proto::schema::TypeDef;
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{live_tenant, OpError};
use crate::changes::change_events;

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
    /// The tenant whose resources hold the values.
    pub tenant: String,
    /// The schema URN.
    pub urn: String,
    /// The attribute.
    pub attribute: String,
    /// `removed` or `retyped`.
    pub change: &'static str,
    /// Resources holding a value.
    pub resources: u64,
    /// Of those, values converted to the new declaration (forced changes only).
    pub converted: u64,
    /// Of those, values erased (forced changes only).
    pub erased: u64,
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

fn holding_query(
    def: TypeDef,
    urn: &str,
    attr: &str,
    page: PageRequest,
) -> Result<ListQuery, OpError> {
    let filter = parse_filter(&format!("{urn}:{attr} pr"))
        .and_then(|f| f.validate(def))
        .map_err(|e| OpError::Store(StoreError::Backend(Box::new(e))))?;
    Ok(ListQuery {
        filter: Some(filter),
        sort: None,
        page,
        // An operator's rare change, checked over the whole directory.
        max_candidates: None,
    })
}

/// How many of the tenant's live resources hold a value for `urn:attr` under `def`.
async fn holding(
    store: &dyn Store,
    tenant: &str,
    def: TypeDef,
    urn: &str,
    attr: &str,
) -> Result<u64, OpError> {
    let page = PageRequest::Index {
        start_index: 1,
        count: 0,
    };
    let q = holding_query(def, urn, attr, page)?;
    Ok(store.list_resources(tenant, def.kind, &q).await?.total)
}

/// The ids of the tenant's live resources holding a value for `urn:attr` under `def`, all of
/// them, read before any is rewritten (a rewrite moves a resource out of the set).
async fn holders(
    store: &dyn Store,
    tenant: &str,
    def: TypeDef,
    urn: &str,
    attr: &str,
) -> Result<Vec<String>, OpError> {
    const PAGE: u64 = 500;
    let mut ids = Vec::new();
    loop {
        let page = PageRequest::Index {
            start_index: ids.len() as u64 + 1,
            count: PAGE,
        };
        let q = holding_query(def, urn, attr, page)?;
        let got = store.list_resources(tenant, def.kind, &q).await?;
        let n = got.items.len() as u64;
        ids.extend(got.items.into_iter().map(|r| r.id));
        if n < PAGE {
            return Ok(ids);
        }
    }
}

/// What replacing the declarations `old` a tenant works with (global and its own, see
/// [`custom::effective`]) by `new` would cost its stored values.
///
/// # Errors
/// 500 when the store fails.
pub async fn losses(
    store: &dyn Store,
    tenant: &str,
    old: &[CustomSchema],
    new: &[CustomSchema],
) -> Result<Vec<Loss>, OpError> {
    let mut out = Vec::new();
    for (schema, attribute, change) in changed(old, new) {
        let def = custom::resource_type(schema.resource.kind(), old);
        let resources = holding(store, tenant, def, &schema.urn, &attribute).await?;
        if resources > 0 {
            out.push(Loss {
                tenant: tenant.to_owned(),
                urn: schema.urn,
                attribute,
                change,
                resources,
                converted: 0,
                erased: 0,
            });
        }
    }
    Ok(out)
}

/// The refusal of a change that `losses` found would strand stored values.
fn refused(losses: &[Loss]) -> OpError {
    let words: Vec<String> = losses
        .iter()
        .map(|l| {
            format!(
                "{} {}:{} is held by {} resource{} of tenant \"{}\"",
                if l.change == "removed" {
                    "removing"
                } else {
                    "changing the type of"
                },
                l.urn,
                l.attribute,
                l.resources,
                if l.resources == 1 { "" } else { "s" },
                l.tenant
            )
        })
        .collect();
    let message = format!(
        "{}. Nothing was changed: stored values that no longer fit their declaration would be \
         hidden from SCIM or make the next update of those resources fail. Clear the values \
         first (the identity provider can send the attribute empty, or stop mapping it and \
         re-push), then change the declaration",
        words.join("; ")
    );
    let details = json!({
        "attributes": losses.iter().map(|l| json!({
            "tenant": l.tenant, "schema": l.urn, "attribute": l.attribute, "change": l.change,
            "resources": l.resources,
        })).collect::<Vec<_>>(),
    });
    OpError::Conflict {
        message,
        details: Some(Box::new(details)),
    }
}

/// A sentinel the store edit returns when the declarations moved while they were checked.
const MOVED: &str = "custom schemas changed while this change was checked";

/// Replaces the tenant's custom schemas; with `force`, also when removed or retyped attributes
/// hold values, which then follow the change (see the module docs). Returns the tenant and what
/// happened to those values.
///
/// # Errors
/// 400 for a declaration of the wrong shape and 409 for a name that is taken (the detail names
/// it, see [`custom::validate`]), 404 for an unknown tenant, 409 when a removed or retyped
/// attribute holds values and `force` is off (details list them) or when the declarations
/// changed meanwhile.
pub async fn replace(
    store: &dyn Store,
    tenant: &str,
    schemas: Vec<CustomSchema>,
    force: bool,
    now: OffsetDateTime,
) -> Result<(Tenant, Vec<Loss>), OpError> {
    custom::validate(&schemas).map_err(invalid_declarations)?;
    let before = live_tenant(store, tenant).await?;
    let old = before.custom_schemas();
    let new = custom::effective(&roster_store::global_custom_schemas(), &schemas);
    let mut lost = losses(store, tenant, &old, &new).await?;
    if !lost.is_empty() && !force {
        return Err(refused(&lost));
    }
    let checked = before.settings.custom_schemas.clone();
    let declared = schemas.clone();
    let after = store
        .update_tenant(
            tenant,
            Box::new(move |t: &mut Tenant| {
                // Compare-and-set: what was checked is what is replaced.
                if t.settings.custom_schemas != checked {
                    return Err(MOVED.to_owned());
                }
                t.settings.custom_schemas = declared;
                Ok(())
            }),
        )
        .await
        .map_err(|e| match e {
            StoreError::NotFound => OpError::no_tenant(tenant),
            StoreError::Invalid(m) if m == MOVED => {
                OpError::conflict(format!("{m}; send it again"))
            }
            other => other.into(),
        })?;
    // Before the values follow: their rewrites then keep the new indexes too.
    crate::custom_indexes::sync(store, &after, true).await?;
    for loss in &mut lost {
        rewrite_values(store, &old, &new, loss, now).await?;
    }
    Ok((after, lost))
}

/// The declaration of `urn:name` among `schemas` (names compare case-insensitively).
fn declared<'a>(
    schemas: &'a [CustomSchema],
    urn: &str,
    name: &str,
) -> Option<(&'a CustomSchema, &'a CustomAttribute)> {
    schemas
        .iter()
        .filter(|s| s.urn.eq_ignore_ascii_case(urn))
        .find_map(|s| {
            s.attributes
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name))
                .map(|a| (s, a))
        })
}

/// `doc` with the value of `urn:attr` converted (`Some`) or erased (`None`), and which; `None`
/// when the document holds no value for it. An extension left empty goes, with its URN in
/// `schemas`.
fn follow(
    doc: &Value,
    urn: &str,
    attr: &str,
    convert: impl Fn(&Value) -> Option<Value>,
) -> Option<(Value, bool)> {
    let mut doc = doc.clone();
    let root = doc.as_object_mut()?;
    let ext_key = root.keys().find(|k| k.eq_ignore_ascii_case(urn))?.clone();
    let ext = root.get_mut(&ext_key)?.as_object_mut()?;
    let key = ext.keys().find(|k| k.eq_ignore_ascii_case(attr))?.clone();
    let converted = ext.get(&key).and_then(&convert);
    let kept = converted.is_some();
    match converted {
        Some(v) => {
            ext.insert(key, v);
        }
        None => {
            ext.remove(&key);
        }
    }
    if ext.is_empty() {
        root.remove(&ext_key);
        if let Some(Value::Array(list)) = root.get_mut("schemas") {
            list.retain(|u| !u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(urn)));
        }
    }
    Some((Value::Object(std::mem::take(root)), kept))
}

/// Makes the stored values of `loss` follow a forced change to `new`, resource by resource
/// (each a write of its own, retried when it raced another), and counts what happened.
async fn rewrite_values(
    store: &dyn Store,
    old: &[CustomSchema],
    new: &[CustomSchema],
    loss: &mut Loss,
    now: OffsetDateTime,
) -> Result<(), OpError> {
    let Some((schema, from)) = declared(old, &loss.urn, &loss.attribute) else {
        return Ok(());
    };
    let to = declared(new, &loss.urn, &loss.attribute)
        .filter(|(s, _)| s.resource == schema.resource)
        .map(|(_, a)| a.clone());
    // The filter and the events speak of the attribute as it was declared.
    let def = custom::resource_type(schema.resource.kind(), old);
    let kind = def.kind;
    let tenant = loss.tenant.clone();
    for id in holders(store, &tenant, def, &loss.urn, &loss.attribute).await? {
        for _attempt in 0..3 {
            let Some(cur) = store.get_resource(&tenant, kind, &id).await? else {
                break;
            };
            let conv = |v: &Value| custom::convert(v, from, to.as_ref());
            let Some((doc, kept)) = follow(&cur.doc, &loss.urn, &loss.attribute, conv) else {
                break;
            };
            let (events, _) = change_events(def, &id, &cur.doc, &doc, false);
            let update = ResourceUpdate {
                doc,
                password_hash: None,
                members: vec![],
                events,
                guard: None,
            };
            match store
                .update_resource(&tenant, kind, &id, cur.version, update, now)
                .await
            {
                Ok(_) => {
                    if kept {
                        loss.converted += 1;
                    } else {
                        loss.erased += 1;
                    }
                    break;
                }
                Err(StoreError::Stale) => continue,
                Err(StoreError::NotFound) => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

fn invalid_declarations(e: scim_proto::ScimError) -> OpError {
    if e.status == 409 {
        OpError::conflict(e.detail)
    } else {
        OpError::invalid_field("schemas", e.detail)
    }
}

/// Replaces the custom schemas declared for every tenant (a tenant's own schema with the same
/// URN overrides a global one). The losses are checked in every live tenant that does not
/// override the schema, and handled as for one tenant ([`replace`]). Stored in the database
/// (every process reads it, the server every second) and applied to this process at once.
///
/// # Errors
/// As [`replace`], the details naming each tenant; 409 when another change of the global
/// declarations came in meanwhile.
pub async fn replace_global(
    store: &dyn Store,
    schemas: Vec<CustomSchema>,
    force: bool,
    now: OffsetDateTime,
) -> Result<Vec<Loss>, OpError> {
    custom::validate(&schemas).map_err(invalid_declarations)?;
    roster_store::load_global_custom_schemas(store).await?;
    let before = roster_store::global_custom_schemas();
    let mut lost = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_tenants_page(after.as_deref(), 200).await?;
        let Some(last) = page.last().map(|t| t.id.clone()) else {
            break;
        };
        for t in &page {
            let own = &t.settings.custom_schemas;
            let old = custom::effective(&before, own);
            let new = custom::effective(&schemas, own);
            lost.extend(losses(store, &t.id, &old, &new).await?);
        }
        after = Some(last);
    }
    if !lost.is_empty() && !force {
        return Err(refused(&lost));
    }
    // Compare-and-set, as far as a key-value record allows: refused when it moved meanwhile.
    let current: Vec<CustomSchema> = store
        .meta(GLOBAL_CUSTOM_SCHEMAS)
        .await?
        .map(|c| serde_json::from_str(&c))
        .transpose()
        .map_err(|e| OpError::Store(StoreError::Backend(Box::new(e))))?
        .unwrap_or_default();
    if current != *before {
        return Err(OpError::conflict(format!("{MOVED}; send it again")));
    }
    let text = serde_json::to_string(&schemas)
        .map_err(|e| OpError::Store(StoreError::Backend(Box::new(e))))?;
    let value = (!schemas.is_empty()).then_some(text);
    store
        .set_meta(GLOBAL_CUSTOM_SCHEMAS, value.as_deref())
        .await?;
    roster_store::set_global_custom_schemas(schemas.clone());
    let mut after: Option<String> = None;
    loop {
        let page = store.list_tenants_page(after.as_deref(), 200).await?;
        let Some(last) = page.last().map(|t| t.id.clone()) else {
            break;
        };
        for t in &page {
            crate::custom_indexes::sync(store, t, true).await?;
        }
        after = Some(last);
    }
    for loss in &mut lost {
        let Some(t) = store.get_tenant(&loss.tenant).await? else {
            continue;
        };
        let own = &t.settings.custom_schemas;
        let old = custom::effective(&before, own);
        let new = custom::effective(&schemas, own);
        rewrite_values(store, &old, &new, loss, now).await?;
    }
    Ok(lost)
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
