//! Groups: the list with member counts and mapped roles, and one group's page with its
//! custom attributes and its members, a page at a time (a group may have 100,000 members: they
//! are never all loaded).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};
use roster_store::app::AppGroupQuery;
use scim_proto::custom::CustomResource;
use serde_json::Value;

use super::super::view::{self, options, render, tenant_href, Chrome, Opt, Pager, TabId};
use super::super::{idp, ConsoleError, Session};
use super::users::{custom_blocks, CustomBlock};
use super::{
    group_href, lists, param, parse_source, stale_cursor, Params, UserRow, PAGE_SIZE, SOURCES,
};
use crate::AppState;

struct GroupRow {
    href: String,
    name: String,
    members: u64,
    roles: Vec<String>,
    managed: bool,
}

#[derive(Template)]
#[template(path = "console/groups.html")]
struct GroupsPage {
    chrome: Chrome,
    tenant_href: String,
    groups_on: bool,
    q: String,
    source_options: Vec<Opt>,
    sort_options: Vec<Opt>,
    /// "12 groups" (every match, all pages).
    total: String,
    /// The CSV export of the same filters and order.
    csv_href: String,
    rows: Vec<GroupRow>,
    pager: Pager,
}

fn display_name(doc: &Value) -> String {
    doc.get("displayName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// The groups list's filters and order from its query string (the page's and the CSV's).
fn group_query(p: &Params) -> (AppGroupQuery, [(&'static str, String); 3]) {
    let q = param(p, "q").unwrap_or("").to_owned();
    let source = param(p, "source").unwrap_or("").to_owned();
    let (sort, desc, sort_value) = lists::sort_of(p);
    let query = AppGroupQuery {
        limit: PAGE_SIZE,
        contains: Some(q.clone()).filter(|s| !s.is_empty()),
        managed: parse_source(&source),
        sort,
        desc,
        ..AppGroupQuery::default()
    };
    (
        query,
        [
            ("q", q),
            ("source", source),
            ("sort", sort_value.to_owned()),
        ],
    )
}

/// `GET /console/t/{tenant}/groups`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Result<Html<String>, ConsoleError> {
    let t = session.tenant(&state, &tenant).await?;
    let (mut query, kept) = group_query(&p);
    let cursor = param(&p, "cursor");
    let before = param(&p, "before");
    query.cursor = cursor.filter(|_| before.is_none()).map(str::to_owned);
    query.before = before.map(str::to_owned);
    query.count = true;
    let page = state
        .store
        .list_app_groups(&t.id, &query)
        .await
        .map_err(stale_cursor)?;
    let href = tenant_href(&t.id);
    let filters: Vec<(&str, &str)> = kept.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let link = |extra: &[(&str, &str)]| {
        let mut pairs = filters.clone();
        pairs.extend_from_slice(extra);
        format!("{href}/groups?{}", view::query(&pairs))
    };
    let rows: Vec<GroupRow> = page
        .items
        .iter()
        .map(|g| GroupRow {
            href: group_href(&t.id, &g.resource.id),
            name: display_name(&g.resource.doc),
            members: g.member_count,
            roles: g.roles.clone(),
            managed: g.managed,
        })
        .collect();
    let pager = lists::pager(
        link,
        cursor.is_none() && before.is_none(),
        page.prev_cursor.as_deref(),
        page.next_cursor.as_deref(),
        view::shown(rows.len(), "group"),
    );
    render(&GroupsPage {
        chrome: Chrome::tenant(&session, &t, TabId::Groups, "Groups"),
        csv_href: format!("{href}/groups.csv?{}", view::query(&filters)),
        total: lists::total(page.total.unwrap_or(0), "group"),
        tenant_href: href,
        groups_on: t.settings.groups_enabled,
        source_options: options(&SOURCES, &kept[1].1),
        sort_options: lists::sort_options(&kept[2].1),
        q: kept[0].1.clone(),
        rows,
        pager,
    })
}

/// `GET /console/t/{tenant}/groups.csv`: every group matching the list's filters, in its
/// order, streamed 500 at a time.
pub async fn csv(
    State(state): State<AppState>,
    session: Session,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, ConsoleError> {
    let t = session.tenant(&state, &tenant).await?;
    let (mut query, _) = group_query(&p);
    query.limit = lists::EXPORT_BATCH;
    let tenant_id = t.id.clone();
    let header = lists::csv_line(&[
        "id",
        "displayName",
        "externalId",
        "members",
        "roles",
        "managedBy",
        "created",
        "lastModified",
    ]);
    let store = state.store.clone();
    Ok(lists::csv_response(
        &format!("{}-groups.csv", super::users::file_part(&t.id)),
        header,
        move |cursor| {
            let store = store.clone();
            let tenant_id = tenant_id.clone();
            let mut query = query.clone();
            query.cursor = cursor;
            async move {
                let page = store
                    .list_app_groups(&tenant_id, &query)
                    .await
                    .map_err(|e| e.to_string())?;
                let lines = page
                    .items
                    .iter()
                    .map(|g| {
                        let doc = &g.resource.doc;
                        lists::csv_line(&[
                            g.resource.id.clone(),
                            display_name(doc),
                            doc.get("externalId")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned(),
                            g.member_count.to_string(),
                            g.roles.join(" "),
                            if g.managed { "scim" } else { "app" }.to_owned(),
                            crate::ops::fmt_time(g.resource.created),
                            crate::ops::fmt_time(g.resource.last_modified),
                        ])
                    })
                    .collect();
                Ok((lines, page.next_cursor))
            }
        },
    ))
}

#[derive(Template)]
#[template(path = "console/group.html")]
struct GroupPage {
    chrome: Chrome,
    tenant_href: String,
    idp_name: &'static str,
    id: String,
    name: String,
    external_id: Option<String>,
    managed: bool,
    member_count: u64,
    roles: Vec<String>,
    /// The tenant's custom attributes for groups, one block per schema.
    custom: Vec<CustomBlock>,
    /// The tenant page's role-mapping form, filled in with this group.
    map_roles_href: String,
    created: String,
    last_modified: String,
    rows: Vec<UserRow>,
    pager: Pager,
}

/// `GET /console/t/{tenant}/groups/{id}`: the group and one page of its members in name
/// order (keyset pages by folded userName and id, `cursor` from the previous page).
pub async fn detail(
    State(state): State<AppState>,
    session: Session,
    Path((tenant, id)): Path<(String, String)>,
    Query(p): Query<Params>,
) -> Result<Html<String>, ConsoleError> {
    let t = session.tenant(&state, &tenant).await?;
    let g = state
        .store
        .get_app_group(&t.id, &id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let cursor = param(&p, "cursor");
    let members = state
        .store
        .list_app_group_members(&t.id, &g.resource.id, cursor, PAGE_SIZE)
        .await
        .map_err(stale_cursor)?;
    let href = group_href(&t.id, &g.resource.id);
    let rows: Vec<UserRow> = members
        .items
        .iter()
        .map(|m| UserRow::of_member(&t.id, m))
        .collect();
    let pager = Pager::keyset(
        |c| match c {
            Some(c) => format!("{href}?{}", view::query(&[("cursor", c)])),
            None => href.clone(),
        },
        cursor,
        members.next_cursor.as_deref(),
        "Next members",
        format!("{} of {} members shown", rows.len(), g.member_count),
    );
    let name = display_name(&g.resource.doc);
    render(&GroupPage {
        chrome: Chrome::tenant(&session, &t, TabId::Groups, &name),
        tenant_href: tenant_href(&t.id),
        idp_name: idp::display(&t.idp),
        id: g.resource.id.clone(),
        external_id: g
            .resource
            .doc
            .get("externalId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        managed: g.managed,
        member_count: g.member_count,
        roles: g.roles.clone(),
        custom: custom_blocks(&t, CustomResource::Group, &g.resource.doc, g.managed, None),
        map_roles_href: format!(
            "{}/settings/roles?{}#h-add-mapping",
            tenant_href(&t.id),
            view::query(&[("map", name.as_str())])
        ),
        created: view::fmt_when(g.resource.created),
        last_modified: view::fmt_when(g.resource.last_modified),
        name,
        rows,
        pager,
    })
}
