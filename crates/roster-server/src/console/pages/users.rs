//! Users: the searchable list (userName or email prefix, status, managed by), and one user's
//! page with its attributes (read-only where the identity provider owns them), effective roles
//! and where they come from, groups, and its history from the provisioning log.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use roster_store::app::{AppUser, AppUserQuery, UserStatus};
use roster_store::{LogQuery, Tenant};
use serde::Deserialize;
use serde_json::Value;

use super::super::view::{
    self, options, render, split_list, tenant_href, Chrome, Notice, Opt, Pager, TabId,
};
use super::super::{idp, redirect, ConsoleError, Posted, Session};
use super::log::{entry_row, EntryRow};
use super::{group_href, param, parse_source, parse_status, Params, UserRow, PAGE_SIZE, SOURCES};
use crate::admin;
use crate::admin::users::UserPatch;
use crate::AppState;

const STATUSES: [(&str, &str); 4] = [
    ("", "Any status"),
    ("active", "Active"),
    ("deactivated", "Deactivated"),
    ("deprovisioned", "Deprovisioned"),
];

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    chrome: Chrome,
    tenant_href: String,
    q: String,
    status_options: Vec<Opt>,
    source_options: Vec<Opt>,
    rows: Vec<UserRow>,
    pager: Pager,
}

/// `GET /console/t/{tenant}/users`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Result<Html<String>, ConsoleError> {
    let t = session.tenant(&state, &tenant).await?;
    let q = param(&p, "q").unwrap_or("").to_owned();
    let status = param(&p, "status").unwrap_or("");
    let source = param(&p, "source").unwrap_or("");
    let cursor = param(&p, "cursor");
    let page = state
        .store
        .list_app_users(
            &t.id,
            &AppUserQuery {
                cursor: cursor.map(str::to_owned),
                limit: PAGE_SIZE,
                search: Some(q.clone()).filter(|s| !s.is_empty()),
                status: parse_status(status),
                managed: parse_source(source),
                ..AppUserQuery::default()
            },
        )
        .await
        .map_err(super::stale_cursor)?;
    let href = tenant_href(&t.id);
    let filters = [("q", q.as_str()), ("status", status), ("source", source)];
    let link = |c: Option<&str>| {
        let mut pairs = filters.to_vec();
        if let Some(c) = c {
            pairs.push(("cursor", c));
        }
        format!("{href}/users?{}", view::query(&pairs))
    };
    let rows: Vec<UserRow> = page.items.iter().map(|u| UserRow::of(&t.id, u)).collect();
    let pager = Pager::keyset(
        link,
        cursor,
        page.next_cursor.as_deref(),
        "Next page",
        view::shown(rows.len(), "user"),
    );
    render(&UsersPage {
        chrome: Chrome::tenant(&session, &t, TabId::Users, "Users"),
        tenant_href: href,
        status_options: options(&STATUSES, status),
        source_options: options(&SOURCES, source),
        q,
        rows,
        pager,
    })
}

struct Attr {
    name: String,
    value: String,
    locked: bool,
}

struct GroupLink {
    href: String,
    name: String,
    managed: bool,
}

struct EditView {
    display_name: String,
    given_name: String,
    family_name: String,
}

struct UserView {
    id: String,
    href: String,
    user_name: String,
    email: String,
    status: &'static str,
    managed: bool,
    roles: Vec<String>,
    created: String,
    last_modified: String,
    version: i64,
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage {
    chrome: Chrome,
    tenant_href: String,
    idp_name: &'static str,
    u: UserView,
    attrs: Vec<Attr>,
    edit: EditView,
    role_sources: Vec<(String, String)>,
    direct_roles: String,
    groups: Vec<GroupLink>,
    entries: Vec<EntryRow>,
    retention_days: u64,
}

/// The top-level attributes the identity provider owns on a managed user (the admin API's
/// rule, see [`crate::admin::users`]).
const IDP_OWNED: [&str; 6] = [
    "userName",
    "name",
    "displayName",
    "emails",
    "externalId",
    "active",
];

/// Flattens a document into `(path, value)` rows; `top` is the top-level attribute each row
/// belongs to.
fn flatten(top: &str, prefix: &str, v: &Value, out: &mut Vec<(String, String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if prefix.is_empty() && k == "schemas" {
                    continue;
                }
                let (top, p) = if prefix.is_empty() {
                    (k.as_str(), k.clone())
                } else {
                    (top, format!("{prefix}.{k}"))
                };
                flatten(top, &p, x, out);
            }
        }
        Value::Array(a) if a.iter().all(|x| !x.is_object()) => out.push((
            top.to_owned(),
            prefix.to_owned(),
            a.iter().map(scalar).collect::<Vec<_>>().join(", "),
        )),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(top, &format!("{prefix}[{i}]"), x, out);
            }
        }
        other => out.push((top.to_owned(), prefix.to_owned(), scalar(other))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Each effective role with where it comes from: "assigned in the app", "from group X".
fn role_sources(u: &AppUser, group_roles: &BTreeMap<String, Vec<String>>) -> Vec<(String, String)> {
    u.roles
        .iter()
        .map(|r| {
            let mut from: Vec<String> = Vec::new();
            if u.direct_roles.contains(r) {
                from.push("assigned in the app".to_owned());
            }
            for (g, roles) in group_roles {
                if roles.contains(r) {
                    from.push(format!("from group {g}"));
                }
            }
            (r.clone(), from.join("; "))
        })
        .collect()
}

async fn render_user(
    state: &AppState,
    session: &Session,
    t: &Tenant,
    u: &AppUser,
    notice: Option<Notice>,
) -> Result<Html<String>, ConsoleError> {
    let doc = &u.resource.doc;
    let mut rows = Vec::new();
    flatten("", "", doc, &mut rows);
    let attrs = rows
        .into_iter()
        .map(|(top, name, value)| Attr {
            locked: u.managed && IDP_OWNED.contains(&top.as_str()),
            name,
            value,
        })
        .collect();
    let mut group_roles = BTreeMap::new();
    let mut groups = Vec::new();
    for g in &u.groups {
        if let Some(ag) = state.store.get_app_group(&t.id, &g.id).await? {
            if !ag.roles.is_empty() {
                group_roles.insert(g.display_name.clone(), ag.roles);
            }
        }
        groups.push(GroupLink {
            href: group_href(&t.id, &g.id),
            name: g.display_name.clone(),
            managed: g.managed,
        });
    }
    let history = state
        .store
        .list_provisioning(
            &t.id,
            &LogQuery {
                resource_id: Some(u.resource.id.clone()),
                limit: 50,
                ..LogQuery::default()
            },
        )
        .await?;
    let now = state.clock.now();
    let s = |p: &str| {
        doc.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let row = UserRow::of(&t.id, u);
    let page = UserPage {
        chrome: Chrome::tenant(session, t, TabId::Users, &row.user_name).with(notice),
        tenant_href: tenant_href(&t.id),
        idp_name: idp::display(&t.idp),
        attrs,
        edit: EditView {
            display_name: s("/displayName"),
            given_name: s("/name/givenName"),
            family_name: s("/name/familyName"),
        },
        role_sources: role_sources(u, &group_roles),
        direct_roles: u.direct_roles.join(", "),
        groups,
        entries: history.iter().map(|e| entry_row(&t.id, e, now)).collect(),
        retention_days: state.settings.log_retention.as_secs() / 86_400,
        u: UserView {
            id: u.resource.id.clone(),
            href: row.href,
            user_name: row.user_name,
            email: row.email,
            status: row.status,
            managed: u.managed,
            roles: u.roles.clone(),
            created: view::fmt_when(u.resource.created),
            last_modified: view::fmt_when(u.resource.last_modified),
            version: u.resource.version,
        },
    };
    render(&page)
}

async fn fetch(state: &AppState, t: &Tenant, id: &str) -> Result<AppUser, ConsoleError> {
    state
        .store
        .get_app_user(&t.id, id)
        .await?
        .ok_or(ConsoleError::NotFound)
}

/// `GET /console/t/{tenant}/users/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    session: Session,
    Path((tenant, id)): Path<(String, String)>,
    Query(p): Query<Params>,
) -> Result<Html<String>, ConsoleError> {
    let t = session.tenant(&state, &tenant).await?;
    let u = fetch(&state, &t, &id).await?;
    let notice = match param(&p, "done") {
        Some("saved") => Some(Notice::ok("User saved.")),
        Some("roles") => Some(Notice::ok("Roles saved.")),
        _ => None,
    };
    render_user(&state, &session, &t, &u, notice).await
}

/// Applies `patch` through the admin API's user operation; its refusal (a managed field, a
/// taken userName, an invalid value) is shown above the user's page.
async fn apply(
    state: &AppState,
    session: &Session,
    t: &Tenant,
    id: &str,
    patch: &UserPatch,
    done: &str,
) -> Result<Response, ConsoleError> {
    match admin::users::update(state, &session.actor(), &t.id, id, patch).await {
        Ok(_) => Ok(redirect(&format!(
            "{}?done={done}",
            super::user_href(&t.id, id)
        ))),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let u = fetch(state, t, id).await?;
            let html = render_user(state, session, t, &u, Some(Notice::error(e.message))).await?;
            Ok((StatusCode::BAD_REQUEST, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The roles form.
#[derive(Debug, Deserialize)]
pub struct RolesForm {
    roles: String,
}

/// `POST /console/t/{tenant}/users/{id}/roles`: the roles assigned in the app (any user).
pub async fn save_roles(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    Posted { session, form }: Posted<RolesForm>,
) -> Result<Response, ConsoleError> {
    let t = session.tenant(&state, &tenant).await?;
    let patch = UserPatch {
        roles: Some(split_list(&form.roles)),
        ..UserPatch::default()
    };
    apply(&state, &session, &t, &id, &patch, "roles").await
}

/// The form of an app user (one SCIM does not manage).
#[derive(Debug, Deserialize)]
pub struct UserForm {
    user_name: String,
    display_name: String,
    given_name: String,
    family_name: String,
    email: String,
    active: Option<String>,
    /// The version the form was rendered from: a save over a newer one is refused.
    version: Option<i64>,
}

fn opt(s: &str) -> Option<Option<String>> {
    let s = s.trim();
    Some((!s.is_empty()).then(|| s.to_owned()))
}

/// `POST /console/t/{tenant}/users/{id}`: changes an app user's attributes. For a
/// SCIM-managed user any change is refused by the same rule as the admin API (409: the
/// identity provider owns them).
pub async fn save(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    Posted { session, form }: Posted<UserForm>,
) -> Result<Response, ConsoleError> {
    let t = session.tenant(&state, &tenant).await?;
    let cur = fetch(&state, &t, &id).await?;
    if cur.status == UserStatus::Deprovisioned {
        return Err(ConsoleError::Invalid(
            "This user was deprovisioned: its record is kept for audit and cannot be changed."
                .to_owned(),
        ));
    }
    let patch = UserPatch {
        user_name: Some(form.user_name.trim().to_owned()),
        display_name: opt(&form.display_name),
        given_name: opt(&form.given_name),
        family_name: opt(&form.family_name),
        email: opt(&form.email),
        active: Some(form.active.is_some()),
        version: form.version,
        ..UserPatch::default()
    };
    apply(&state, &session, &t, &id, &patch, "saved").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_flatten_with_their_top_attribute() {
        let mut out = Vec::new();
        flatten(
            "",
            "",
            &json!({"schemas": ["x"], "userName": "a", "name": {"givenName": "A"},
                    "emails": [{"value": "a@x", "primary": true}], "roles": ["r1", "r2"]}),
            &mut out,
        );
        let names: Vec<(&str, &str)> = out
            .iter()
            .map(|(t, n, _)| (t.as_str(), n.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("userName", "userName"),
                ("name", "name.givenName"),
                ("emails", "emails[0].value"),
                ("emails", "emails[0].primary"),
                ("roles", "roles"),
            ]
        );
        assert_eq!(out[4].2, "r1, r2");
    }
}
