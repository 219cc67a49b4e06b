//! Groups for the host app (`/tenants/{tenant}/groups…`): list, get, members, and app groups.
//!
//! An app group (not managed by SCIM) is the app's own: create, rename, assign members (any
//! user of the tenant, managed or not), delete. It is invisible to SCIM until the identity
//! provider creates a group with the same displayName, which takes it over (same id) and
//! replaces its members with SCIM's list. On a SCIM-managed group, displayName, externalId and
//! members belong to the identity provider (409 here); metadata stays editable.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use roster_store::app::{AppGroup, AppGroupQuery, AppGroupUpdate, NewAppGroup};
use roster_store::{EventType, MemberOp, StoreError};
use scim_proto::resource::normalize;
use scim_proto::schema::{ResourceKind, GROUP_SCHEMA};
use serde::Deserialize;
use serde_json::{json, Value};

use super::users::ApiObject;
use super::{audit, fmt_time, require_tenant, AdminAuth, ApiError, ApiPath, ApiQuery};
use super::{conflict, page_limit, present};
use crate::changes::change_events;
use crate::ops::nullable;
use crate::ops::users::{add_changes, blank, valid_metadata};
use crate::AppState;

/// At most this many member ids in one request.
pub const MAX_MEMBER_IDS: usize = 10_000;
const ATTEMPTS: usize = 5;

/// How the API shows a group.
#[must_use]
pub fn group_json(g: &AppGroup) -> Value {
    let doc = &g.resource.doc;
    json!({
        "id": g.resource.id,
        "display_name": doc.get("displayName").cloned().unwrap_or(Value::Null),
        "external_id": doc.get("externalId").cloned().unwrap_or(Value::Null),
        "managed": g.managed,
        "roles": g.roles,
        "member_count": g.member_count,
        "metadata": g.metadata,
        "created": fmt_time(g.resource.created),
        "last_modified": fmt_time(g.resource.last_modified),
        "version": g.resource.version,
    })
}

/// Query of `GET /tenants/{tenant}/groups`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListGroupsQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (1–1000, default 100).
    pub limit: Option<u64>,
    /// displayName starts with this (case-insensitive).
    pub q: Option<String>,
    /// `true`: managed by SCIM; `false`: app groups.
    pub managed: Option<bool>,
    /// displayName contains this (case-insensitive, indexed).
    pub contains: Option<String>,
}

fn invalid_or(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid(m) => ApiError::invalid(m),
        other => other.into(),
    }
}

/// A member that is not a user of the tenant: the request is well-formed but conflicts with
/// the tenant's users (409; a 404 would say the group itself is missing).
fn member_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid(m) => conflict(m),
        other => other.into(),
    }
}

/// `GET /api/v1/tenants/{tenant}/groups`
///
/// # Errors
/// 401, 404, 400.
pub async fn list_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListGroupsQuery>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let query = AppGroupQuery {
        cursor: q.cursor.filter(|c| !c.is_empty()),
        limit: page_limit(q.limit)?,
        display_name_prefix: q.q,
        managed: q.managed,
        contains: q.contains.filter(|c| !c.trim().is_empty()),
        ..AppGroupQuery::default()
    };
    let page = state
        .store
        .list_app_groups(&tenant, &query)
        .await
        .map_err(invalid_or)?;
    Ok(Json(json!({
        "groups": page.items.iter().map(group_json).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

async fn fetch_group(state: &AppState, tenant: &str, id: &str) -> Result<AppGroup, ApiError> {
    state
        .store
        .get_app_group(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no group \"{id}\" in tenant \"{tenant}\"")))
}

/// `GET /api/v1/tenants/{tenant}/groups/{id}`
///
/// # Errors
/// 401, 404.
pub async fn get_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    Ok(Json(group_json(&fetch_group(&state, &tenant, &id).await?)))
}

/// Query of `GET /tenants/{tenant}/groups/{id}/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (1–1000, default 100).
    pub limit: Option<u64>,
}

/// `GET /api/v1/tenants/{tenant}/groups/{id}/members`
///
/// # Errors
/// 401, 404, 400.
pub async fn members_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<MembersQuery>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let cursor = q.cursor.filter(|c| !c.is_empty());
    let page = match state
        .store
        .list_app_group_members(&tenant, &id, cursor.as_deref(), page_limit(q.limit)?)
        .await
    {
        Err(StoreError::NotFound) => return Err(ApiError::not_found(format!("no group \"{id}\""))),
        r => r.map_err(invalid_or)?,
    };
    Ok(Json(json!({
        "members": page.items.iter().map(|m| json!({
            "id": m.id,
            "user_name": m.user_name,
            "managed": m.managed,
            "status": m.status.as_str(),
        })).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

fn check_ids(field: &str, ids: &[String]) -> Result<(), ApiError> {
    if ids.len() > MAX_MEMBER_IDS {
        return Err(ApiError::invalid(format!(
            "{field} may list at most {MAX_MEMBER_IDS} user ids"
        )));
    }
    Ok(())
}

/// Body of `POST /tenants/{tenant}/groups`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroupBody {
    /// displayName.
    pub display_name: String,
    /// externalId.
    pub external_id: Option<String>,
    /// Member user ids (managed or not).
    #[serde(default)]
    pub members: Vec<String>,
    /// App metadata.
    #[serde(default, deserialize_with = "present")]
    pub metadata: Option<Value>,
}

fn group_doc(display_name: &str, external_id: Option<&str>) -> Result<Value, ApiError> {
    let mut doc = json!({"schemas": [GROUP_SCHEMA], "displayName": display_name});
    if let Some(x) = external_id {
        doc["externalId"] = json!(x);
    }
    Ok(normalize(ResourceKind::Group.def(), &doc, None)
        .map_err(|e| ApiError::invalid(e.detail))?
        .doc)
}

/// `POST /api/v1/tenants/{tenant}/groups`: creates an app group (not managed by SCIM).
///
/// # Errors
/// 401, 404, 400 (an empty displayName, a member that is not a user of the tenant).
pub async fn create_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
    ApiObject(b): ApiObject<NewGroupBody>,
) -> Result<Response, ApiError> {
    require_tenant(&state, &tenant).await?;
    if blank(&b.display_name) {
        return Err(ApiError::invalid(
            "display_name must have a character other than white space",
        ));
    }
    check_ids("members", &b.members)?;
    let metadata = b
        .metadata
        .as_ref()
        .map(valid_metadata)
        .transpose()
        .map_err(ApiError::invalid)?
        .unwrap_or_else(|| json!({}));
    let new = NewAppGroup {
        id: uuid::Uuid::new_v4().to_string(),
        doc: group_doc(&b.display_name, b.external_id.as_deref())?,
        members: b.members,
        metadata,
    };
    let g = state
        .store
        .create_app_group(&tenant, new, state.clock.now())
        .await
        .map_err(member_error)?;
    audit(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        "group.create",
        Some(&tenant),
        Some(&g.resource.id),
        json!({"display_name": b.display_name}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(group_json(&g))).into_response())
}

/// Body of `PATCH /tenants/{tenant}/groups/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    /// displayName (IdP-owned on a managed group).
    #[serde(default, deserialize_with = "present")]
    pub display_name: Option<String>,
    /// externalId (IdP-owned on a managed group); `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    pub external_id: Option<Option<String>>,
    /// The whole member list (IdP-owned on a managed group).
    #[serde(default, deserialize_with = "present")]
    pub members: Option<Vec<String>>,
    /// Member ids to add (IdP-owned on a managed group).
    #[serde(default)]
    pub add_members: Vec<String>,
    /// Member ids to remove (IdP-owned on a managed group).
    #[serde(default)]
    pub remove_members: Vec<String>,
    /// App metadata (app-owned).
    #[serde(default, deserialize_with = "present")]
    pub metadata: Option<Value>,
}

/// `PATCH /api/v1/tenants/{tenant}/groups/{id}`
///
/// # Errors
/// 401, 404, 400, 409 (an IdP-owned field of a managed group).
pub async fn patch_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ApiObject(p): ApiObject<GroupPatch>,
) -> Result<Json<Value>, ApiError> {
    let def = super::live_tenant(state.store.as_ref(), &tenant)
        .await?
        .def(ResourceKind::Group);
    if p.display_name.as_deref().is_some_and(blank) {
        return Err(ApiError::invalid(
            "display_name must have a character other than white space",
        ));
    }
    if let Some(m) = &p.members {
        check_ids("members", m)?;
    }
    check_ids("add_members", &p.add_members)?;
    check_ids("remove_members", &p.remove_members)?;
    let metadata = p
        .metadata
        .as_ref()
        .map(valid_metadata)
        .transpose()
        .map_err(ApiError::invalid)?;
    let mut ops = Vec::new();
    if let Some(m) = &p.members {
        ops.push(MemberOp::RemoveAll);
        ops.push(MemberOp::Add(m.clone()));
    }
    if !p.remove_members.is_empty() {
        ops.push(MemberOp::Remove(p.remove_members.clone()));
    }
    if !p.add_members.is_empty() {
        ops.push(MemberOp::Add(p.add_members.clone()));
    }
    for _ in 0..ATTEMPTS {
        let cur = fetch_group(&state, &tenant, &id).await?;
        let doc = &cur.resource.doc;
        let cur_name = doc.get("displayName").and_then(Value::as_str).unwrap_or("");
        let cur_ext = doc.get("externalId").and_then(Value::as_str);
        let name = p.display_name.as_deref().unwrap_or(cur_name);
        let ext = match &p.external_id {
            Some(x) => x.as_deref(),
            None => cur_ext,
        };
        let mut owned = Vec::new();
        if name != cur_name {
            owned.push("displayName");
        }
        if ext != cur_ext {
            owned.push("externalId");
        }
        if !ops.is_empty() {
            owned.push("members");
        }
        if cur.managed && !owned.is_empty() {
            return Err(conflict(format!(
                "{} owned by the identity provider: this group is managed by SCIM, so change \
                 {} there. The app-owned field (metadata) can be changed here",
                if owned.len() == 1 {
                    format!("{} is", owned.join(", "))
                } else {
                    format!("{} are", owned.join(", "))
                },
                if owned.len() == 1 { "it" } else { "them" },
            )));
        }
        let new_doc = if name != cur_name || ext != cur_ext {
            let mut d = doc.clone();
            d["displayName"] = json!(name);
            match ext {
                Some(x) => d["externalId"] = json!(x),
                None => {
                    if let Some(o) = d.as_object_mut() {
                        o.remove("externalId");
                    }
                }
            }
            Some(
                normalize(def, &d, None)
                    .map_err(|e| ApiError::invalid(e.detail))?
                    .doc,
            )
        } else {
            None
        };
        let metadata = metadata.clone().filter(|m| *m != cur.metadata);
        if new_doc.is_none() && metadata.is_none() && ops.is_empty() {
            return Ok(Json(group_json(&cur)));
        }
        let mut events = match &new_doc {
            Some(n) => change_events(def, &id, doc, n, false).0,
            None => Vec::new(),
        };
        if let Some(m) = &metadata {
            add_changes(
                &mut events,
                EventType::GroupUpdated,
                (
                    "group",
                    roster_store::events::resource_ref(&id, new_doc.as_ref().unwrap_or(doc)),
                ),
                vec![json!({"attribute": "metadata", "old": cur.metadata, "new": m})],
            );
        }
        let update = AppGroupUpdate {
            expected_version: cur.resource.version,
            doc: new_doc,
            members: ops.clone(),
            metadata,
            events,
        };
        match state
            .store
            .update_app_group(&tenant, &id, update, state.clock.now())
            .await
        {
            Ok(g) => {
                audit(
                    state.store.as_ref(),
                    state.clock.now(),
                    &auth.actor(),
                    "group.update",
                    Some(&tenant),
                    Some(&id),
                    json!({"attributes": owned}),
                )
                .await;
                return Ok(Json(group_json(&g)));
            }
            Err(StoreError::Stale) => {}
            Err(StoreError::NotFound) => {
                return Err(ApiError::not_found(format!("no group \"{id}\"")))
            }
            Err(e) => return Err(member_error(e)),
        }
    }
    Err(conflict("the group kept changing concurrently; retry"))
}

/// `DELETE /api/v1/tenants/{tenant}/groups/{id}`: deletes an app group.
///
/// # Errors
/// 401, 404, 409 (managed by SCIM).
pub async fn delete_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    require_tenant(&state, &tenant).await?;
    match state
        .store
        .delete_app_group(&tenant, &id, state.clock.now())
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(ApiError::not_found(format!("no group \"{id}\""))),
        Err(StoreError::Invalid(_)) => {
            return Err(conflict(
                "this group is managed by SCIM: the identity provider owns it (delete it there)",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    audit(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        "group.delete",
        Some(&tenant),
        Some(&id),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
