//! Users: the searchable list (userName or email prefix, status, managed by), and one user's
//! page with its attributes (read-only where the identity provider owns them), the tenant's
//! custom attributes (one block per custom schema, editable on an app user), effective roles
//! and where they come from, groups, and its history from the provisioning log.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use roster_store::app::{AppUser, AppUserQuery, UserStatus};
use roster_store::{LogQuery, Tenant};
use scim_proto::custom::{CustomAttribute, CustomResource, CustomSchema, CustomType};
use scim_proto::filter::{format_datetime, parse_datetime};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::super::view::{
    self, options, render, split_list, tenant_href, Chrome, FormState, Notice, Opt, Pager, TabId,
};
use super::super::{idp, redirect, ConsoleError, Posted, Session};
use super::log::{group_rows, EntryRow};
use super::{
    group_href, lists, param, parse_source, parse_status, Params, UserRow, PAGE_SIZE, SOURCES,
};
use crate::ops;
use crate::ops::users::UserPatch;
use crate::ops::FieldError;
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
    sort_options: Vec<Opt>,
    /// "1,234 users" (every match, all pages).
    total: String,
    /// The CSV export of the same filters and order.
    csv_href: String,
    rows: Vec<UserRow>,
    pager: Pager,
}

/// The users list's filters and order from its query string (the page's and the CSV's).
fn user_query(p: &Params) -> (AppUserQuery, [(&'static str, String); 4]) {
    let q = param(p, "q").unwrap_or("").to_owned();
    let status = param(p, "status").unwrap_or("").to_owned();
    let source = param(p, "source").unwrap_or("").to_owned();
    let (sort, desc, sort_value) = lists::sort_of(p);
    let query = AppUserQuery {
        limit: PAGE_SIZE,
        contains: Some(q.clone()).filter(|s| !s.is_empty()),
        status: parse_status(&status),
        managed: parse_source(&source),
        sort,
        desc,
        ..AppUserQuery::default()
    };
    let kept = [
        ("q", q),
        ("status", status),
        ("source", source),
        ("sort", sort_value.to_owned()),
    ];
    (query, kept)
}

/// `GET /console/t/{tenant}/users`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Result<Html<String>, ConsoleError> {
    let t = session.tenant(&state, &tenant).await?;
    let (mut query, kept) = user_query(&p);
    let cursor = param(&p, "cursor");
    let before = param(&p, "before");
    query.cursor = cursor.filter(|_| before.is_none()).map(str::to_owned);
    query.before = before.map(str::to_owned);
    query.count = true;
    let page = state
        .store
        .list_app_users(&t.id, &query)
        .await
        .map_err(super::stale_cursor)?;
    let href = tenant_href(&t.id);
    let filters: Vec<(&str, &str)> = kept.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let link = |extra: &[(&str, &str)]| {
        let mut pairs = filters.clone();
        pairs.extend_from_slice(extra);
        format!("{href}/users?{}", view::query(&pairs))
    };
    let rows: Vec<UserRow> = page.items.iter().map(|u| UserRow::of(&t.id, u)).collect();
    let pager = lists::pager(
        link,
        cursor.is_none() && before.is_none(),
        page.prev_cursor.as_deref(),
        page.next_cursor.as_deref(),
        view::shown(rows.len(), "user"),
    );
    render(&UsersPage {
        chrome: Chrome::tenant(&session, &t, TabId::Users, "Users"),
        csv_href: format!("{href}/users.csv?{}", view::query(&filters)),
        total: lists::total(page.total.unwrap_or(0), "user"),
        tenant_href: href,
        status_options: options(&STATUSES, &kept[1].1),
        source_options: options(&SOURCES, &kept[2].1),
        sort_options: lists::sort_options(&kept[3].1),
        q: kept[0].1.clone(),
        rows,
        pager,
    })
}

/// `GET /console/t/{tenant}/users.csv`: every user matching the list's filters, in its
/// order, streamed 500 at a time.
pub async fn csv(
    State(state): State<AppState>,
    session: Session,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, ConsoleError> {
    let t = session.tenant(&state, &tenant).await?;
    let (mut query, _) = user_query(&p);
    query.limit = lists::EXPORT_BATCH;
    let tenant_id = t.id.clone();
    let header = lists::csv_line(&[
        "id",
        "userName",
        "name",
        "email",
        "status",
        "managedBy",
        "roles",
        "created",
        "lastModified",
    ]);
    let store = state.store.clone();
    Ok(lists::csv_response(
        &format!("{}-users.csv", file_part(&t.id)),
        header,
        move |cursor| {
            let store = store.clone();
            let tenant_id = tenant_id.clone();
            let mut query = query.clone();
            query.cursor = cursor;
            async move {
                let page = store
                    .list_app_users(&tenant_id, &query)
                    .await
                    .map_err(|e| e.to_string())?;
                let lines = page
                    .items
                    .iter()
                    .map(|u| {
                        let row = UserRow::of(&tenant_id, u);
                        lists::csv_line(&[
                            u.resource.id.clone(),
                            row.user_name,
                            row.name,
                            row.email,
                            row.status.to_owned(),
                            if row.managed { "scim" } else { "app" }.to_owned(),
                            row.roles.join(" "),
                            ops::fmt_time(u.resource.created),
                            ops::fmt_time(u.resource.last_modified),
                        ])
                    })
                    .collect();
                Ok((lines, page.next_cursor))
            }
        },
    ))
}

/// A tenant id as part of a download's file name (letters, digits, `-`, `_`, `.` only).
pub(super) fn file_part(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One attribute of the user's SCIM document as the page shows it: a label for people, the
/// SCIM path as small secondary text.
struct Attr {
    /// "Email", "Given name", "Employee number".
    label: String,
    /// The SCIM path, without the extension's URN (`emails[0].value`, `employeeNumber`).
    path: String,
    value: String,
    /// A link for a value that names another user who exists (the manager).
    href: Option<String>,
    locked: bool,
}

/// The attributes of one schema: the core ones (no heading), or an extension's under its
/// name, its URN shown once.
struct AttrGroup {
    /// "Enterprise" for the enterprise extension; the URN's last part otherwise.
    heading: String,
    /// The extension's URN; empty for the core attributes.
    urn: String,
    /// An id for the heading.
    id: String,
    attrs: Vec<Attr>,
}

/// The enterprise extension's URN (RFC 7643 §4.3).
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A people's label for a SCIM path (without an extension's URN): `emails[0].value` →
/// "Email", `name.givenName` → "Given name", `emails[1].type` → "Email 2, type",
/// `employeeNumber` → "Employee number".
fn attr_label(path: &str) -> String {
    let known = |p: &str| -> Option<&'static str> {
        Some(match p {
            "userName" => "User name",
            "displayName" => "Display name",
            "nickName" => "Nickname",
            "profileUrl" => "Profile URL",
            "title" => "Job title",
            "userType" => "User type",
            "preferredLanguage" => "Preferred language",
            "locale" => "Locale",
            "timezone" => "Time zone",
            "active" => "Active",
            "externalId" => "External id",
            "name.givenName" => "Given name",
            "name.familyName" => "Family name",
            "name.middleName" => "Middle name",
            "name.formatted" => "Full name",
            "name.honorificPrefix" => "Name prefix",
            "name.honorificSuffix" => "Name suffix",
            "employeeNumber" => "Employee number",
            "costCenter" => "Cost center",
            "organization" => "Organization",
            "division" => "Division",
            "department" => "Department",
            "manager.value" => "Manager",
            "manager.displayName" => "Manager's name",
            "manager.$ref" => "Manager's address",
            "emails" => "Emails",
            "phoneNumbers" => "Phone numbers",
            "roles" => "Roles",
            _ => return None,
        })
    };
    if let Some(l) = known(path) {
        return l.to_owned();
    }
    // A multi-valued attribute's item: `emails[0].value`.
    if let Some((attr, rest)) = path.split_once('[') {
        if let Some((index, sub)) = rest.split_once(']') {
            let singular = match attr {
                "emails" => "Email".to_owned(),
                "phoneNumbers" => "Phone".to_owned(),
                "addresses" => "Address".to_owned(),
                "ims" => "Messaging".to_owned(),
                "photos" => "Photo".to_owned(),
                "entitlements" => "Entitlement".to_owned(),
                "roles" => "Role".to_owned(),
                "x509Certificates" => "Certificate".to_owned(),
                "groups" => "Group".to_owned(),
                other => humanize(other),
            };
            let n = index.parse::<usize>().map_or(1, |i| i + 1);
            let item = if n > 1 {
                format!("{singular} {n}")
            } else {
                singular
            };
            let sub = sub.trim_start_matches('.');
            let sub_label = match sub {
                "" | "value" => return item,
                "locality" => "city".to_owned(),
                "region" => "region".to_owned(),
                "postalCode" => "postal code".to_owned(),
                "streetAddress" => "street".to_owned(),
                "formatted" => "full text".to_owned(),
                "display" => "shown as".to_owned(),
                other => humanize(other).to_lowercase(),
            };
            return format!("{item}, {sub_label}");
        }
    }
    humanize(path.rsplit('.').next().unwrap_or(path))
}

/// The user's attributes grouped by schema, each labelled ([`attr_label`]); on a managed user
/// every one of them is the identity provider's, and marked read-only.
fn attr_groups(rows: Vec<(String, String, String)>, managed: bool) -> Vec<AttrGroup> {
    let mut groups: Vec<AttrGroup> = vec![AttrGroup {
        heading: String::new(),
        urn: String::new(),
        id: "attrs-core".to_owned(),
        attrs: Vec::new(),
    }];
    for (top, path, value) in rows {
        let ext = top.starts_with("urn:");
        let shown = if ext {
            path.strip_prefix(top.as_str())
                .map_or(path.as_str(), |p| p.trim_start_matches(['.', ':']))
                .to_owned()
        } else {
            path
        };
        let attr = Attr {
            label: attr_label(&shown),
            path: shown,
            value,
            href: None,
            locked: managed,
        };
        let urn = if ext { top.as_str() } else { "" };
        match groups.iter_mut().find(|g| g.urn == urn) {
            Some(g) => g.attrs.push(attr),
            None => groups.push(AttrGroup {
                heading: if urn.eq_ignore_ascii_case(ENTERPRISE) {
                    "Enterprise".to_owned()
                } else {
                    humanize(urn.rsplit(':').next().unwrap_or(urn))
                },
                urn: urn.to_owned(),
                id: format!("attrs-{}", groups.len()),
                attrs: vec![attr],
            }),
        }
    }
    groups.retain(|g| !g.attrs.is_empty() || g.urn.is_empty());
    groups
}

struct GroupLink {
    href: String,
    name: String,
    managed: bool,
}

/// The edit form's values: the user's, or what was typed when a save was refused.
struct EditView {
    user_name: String,
    display_name: String,
    given_name: String,
    family_name: String,
    email: String,
    active: bool,
    version: i64,
    /// Whether the form starts open (after a refusal).
    open: bool,
}

/// The edit form as it was posted, shown again with the errors of a refused save.
pub(super) struct Typed<'a> {
    form: &'a UserForm,
    /// Field (`{urn}:{name}`) → what is wrong with its value.
    errors: BTreeMap<String, String>,
}

/// One custom schema's block: its attributes, shown and (on an app user) editable.
pub(super) struct CustomBlock {
    /// The schema's name, or "Custom attributes".
    pub(super) title: String,
    pub(super) urn: String,
    /// The heading's element id.
    pub(super) id: String,
    pub(super) attrs: Vec<CustomAttr>,
}

/// One declared custom attribute: its value as the page shows it, and its field in the edit
/// form.
pub(super) struct CustomAttr {
    /// The name made readable: `costCenter` → "Cost center".
    pub(super) label: String,
    /// The declared name.
    pub(super) name: String,
    /// `{urn}:{name}`: the form field's name, as SCIM paths and events name the attribute.
    pub(super) key: String,
    /// The input's element id (`…-value` is the shown value's).
    pub(super) id: String,
    /// The declaration's description.
    pub(super) hint: String,
    /// The value formatted by type; "—" when there is none.
    pub(super) shown: String,
    /// The stored value, when `shown` formats it (a dateTime).
    pub(super) exact: String,
    /// Owned by the identity provider (a SCIM-managed resource).
    pub(super) locked: bool,
    /// `checkbox`, `number`, `select` or `text`.
    pub(super) input: &'static str,
    /// A number input's `step`.
    pub(super) step: &'static str,
    /// The input's value: the stored one, or as typed after a refusal.
    pub(super) value: String,
    /// A checkbox's state.
    pub(super) checked: bool,
    /// A select's options.
    pub(super) options: Vec<Opt>,
    /// How to type it (lists, dates), under the input.
    pub(super) format: String,
    /// Why the typed value was refused.
    pub(super) error: Option<String>,
    /// The ids of the texts that describe the input.
    pub(super) described_by: String,
}

struct UserView {
    id: String,
    href: String,
    user_name: String,
    status: &'static str,
    managed: bool,
    roles: Vec<String>,
    created: String,
    last_modified: String,
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage {
    chrome: Chrome,
    /// The notice of the last action, in the section it was about (its heading's id).
    notice: Option<(&'static str, Notice)>,
    /// The edit form's refusal (the custom attributes' errors are on their fields).
    edit_form: FormState,
    /// The roles form, as typed and refused.
    roles_form: FormState,
    tenant_href: String,
    idp_name: &'static str,
    u: UserView,
    attrs: Vec<AttrGroup>,
    custom: Vec<CustomBlock>,
    edit: EditView,
    role_sources: Vec<(String, String)>,
    direct_roles: String,
    /// The role catalogue's roles to tick (empty while the catalogue is: a text field then).
    role_choices: Vec<super::scim::RoleChoice>,
    groups: Vec<GroupLink>,
    entries: Vec<EntryRow>,
    retention_days: u64,
}

impl UserPage {
    /// The notice for the section whose heading has id `section`.
    fn notice_in(&self, section: &str) -> Option<&Notice> {
        self.notice
            .as_ref()
            .filter(|(s, _)| *s == section)
            .map(|(_, n)| n)
    }
}

/// What a user page shows beyond the user: the last action's notice, refused forms.
#[derive(Default)]
struct Shown {
    notice: Option<(&'static str, Notice)>,
    edit_form: FormState,
    roles_form: FormState,
}

/// Where the user operation's refusals are shown on the edit and roles forms, and their words.
const USER_FIELDS: [(&str, &str, &str); 4] = [
    ("user_name", "user_name", "The userName"),
    ("userName", "user_name", "The userName"),
    ("email", "email", "The email"),
    ("roles", "roles", "Roles"),
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

/// An attribute name made readable: `costCenter` → "Cost center", `employeeID` → "Employee
/// ID", `cost_center` → "Cost center". Acronyms keep their capitals.
pub(super) fn humanize(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' || c == ' ' {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let next = chars.get(i + 1).copied();
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(char::is_lowercase))
            });
        if boundary && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        let acronym = w.chars().count() > 1 && w.chars().all(|c| !c.is_lowercase());
        if i > 0 {
            out.push(' ');
        }
        if acronym {
            out.push_str(w);
        } else if i == 0 {
            let mut cs = w.chars();
            out.extend(cs.next().map(|c| c.to_uppercase().collect::<String>()));
            out.push_str(&cs.as_str().to_lowercase());
        } else {
            out.push_str(&w.to_lowercase());
        }
    }
    out
}

/// The value of attribute `name` of the extension `urn` in a document (names compared
/// case-insensitively); `None` when absent or null.
fn ext_value<'a>(doc: &'a Value, urn: &str, name: &str) -> Option<&'a Value> {
    let (_, ext) = doc
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(urn))?;
    ext.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// The values of an attribute, one per element for a multi-valued one.
fn items(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(x) => vec![x],
    }
}

/// A value formatted for reading: Yes/No, a dateTime as the console shows times, lists
/// comma-separated, "—" for none.
fn shown(a: &CustomAttribute, v: Option<&Value>) -> String {
    let all = items(v);
    if all.is_empty() {
        return "—".to_owned();
    }
    all.iter()
        .map(|x| match x {
            Value::Bool(true) => "Yes".to_owned(),
            Value::Bool(false) => "No".to_owned(),
            Value::String(s) if a.attr_type == CustomType::DateTime => {
                parse_datetime(s).map_or_else(|| s.clone(), view::fmt_when)
            }
            other => scalar(other),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value as the edit form's text input holds it: values as typed, comma-separated.
fn input_text(v: Option<&Value>) -> String {
    items(v)
        .into_iter()
        .map(scalar)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How to type a value that needs saying.
fn format_help(a: &CustomAttribute) -> String {
    let what = match a.attr_type {
        CustomType::Integer => " (whole numbers)",
        CustomType::Decimal => " (numbers)",
        CustomType::Boolean => " (true or false)",
        CustomType::DateTime => " (dates and times like 2026-11-22T08:43:00Z)",
        CustomType::String | CustomType::Reference => "",
    };
    let mut out = if a.multi_valued {
        format!("Several values{what}, separated by commas.")
    } else if a.attr_type == CustomType::DateTime {
        "A date and time like 2026-11-22T08:43:00Z (UTC, or with an offset).".to_owned()
    } else {
        String::new()
    };
    if a.multi_valued && !a.canonical_values.is_empty() {
        out.push_str(&format!(" Suggested: {}.", a.canonical_values.join(", ")));
    }
    out
}

/// The custom schemas the tenant declares for `resource`.
fn custom_schemas(t: &Tenant, resource: CustomResource) -> Vec<CustomSchema> {
    t.custom_schemas()
        .into_iter()
        .filter(|s| s.resource == resource)
        .collect()
}

/// The blocks of the tenant's custom attributes for `resource`, with the values of `doc`
/// (`locked`: the identity provider owns them); `typed` gives the edit form's values and
/// errors after a refused save.
pub(super) fn custom_blocks(
    t: &Tenant,
    resource: CustomResource,
    doc: &Value,
    locked: bool,
    typed: Option<&Typed<'_>>,
) -> Vec<CustomBlock> {
    custom_schemas(t, resource)
        .iter()
        .enumerate()
        .map(|(i, s)| CustomBlock {
            title: if s.name.trim().is_empty() {
                "Custom attributes".to_owned()
            } else {
                s.name.clone()
            },
            urn: s.urn.clone(),
            id: format!("h-custom-{i}"),
            attrs: s
                .attributes
                .iter()
                .enumerate()
                .map(|(j, a)| custom_attr(s, a, format!("custom-{i}-{j}"), doc, locked, typed))
                .collect(),
        })
        .collect()
}

fn custom_attr(
    s: &CustomSchema,
    a: &CustomAttribute,
    id: String,
    doc: &Value,
    locked: bool,
    typed: Option<&Typed<'_>>,
) -> CustomAttr {
    let key = format!("{}:{}", s.urn, a.name);
    let v = ext_value(doc, &s.urn, &a.name);
    let error = typed.and_then(|t| t.errors.get(&key)).cloned();
    let value = typed
        .and_then(|t| t.form.custom.get(&key))
        .cloned()
        .unwrap_or_else(|| input_text(v));
    let checked = match typed.and_then(|t| t.form.custom.get(&key)) {
        Some(x) => checked(x),
        None => v == Some(&Value::Bool(true)),
    };
    let input = if a.multi_valued {
        "text"
    } else if a.attr_type == CustomType::Boolean {
        "checkbox"
    } else if !a.canonical_values.is_empty() {
        "select"
    } else if matches!(a.attr_type, CustomType::Integer | CustomType::Decimal) && error.is_none() {
        // After a refusal the field is a text input, so that what was typed stays visible.
        "number"
    } else {
        "text"
    };
    let mut options = vec![Opt {
        value: String::new(),
        label: "—".to_owned(),
        selected: value.is_empty(),
    }];
    if input == "select" {
        let mut values = a.canonical_values.clone();
        // Canonical values are suggestions: a value outside them is kept, and offered.
        if !value.is_empty() && !values.contains(&value) {
            values.push(value.clone());
        }
        options.extend(values.into_iter().map(|c| Opt {
            selected: c == value,
            label: c.clone(),
            value: c,
        }));
    }
    let format = format_help(a);
    let described_by = [
        (!a.description.is_empty(), "help"),
        (!format.is_empty(), "format"),
        (error.is_some(), "error"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, what)| format!("{id}-{what}"))
    .collect::<Vec<_>>()
    .join(" ");
    CustomAttr {
        label: humanize(&a.name),
        name: a.name.clone(),
        hint: a.description.clone(),
        shown: shown(a, v),
        exact: if a.attr_type == CustomType::DateTime {
            input_text(v)
        } else {
            String::new()
        },
        locked,
        input,
        step: if a.attr_type == CustomType::Integer {
            "1"
        } else {
            "any"
        },
        value,
        checked,
        options,
        format,
        error,
        described_by,
        key,
        id,
    }
}

/// Whether a checkbox field was ticked (its hidden companion sends "" when it is not).
fn checked(v: &str) -> bool {
    matches!(v, "true" | "on")
}

/// One typed value of type `t`, as the tenant's definition will validate it.
fn parse_one(label: &str, t: CustomType, s: &str) -> Result<Value, String> {
    match t {
        CustomType::String | CustomType::Reference => Ok(Value::String(s.to_owned())),
        CustomType::Integer => s
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("{label} must be a whole number, like 42, not {s:?}")),
        CustomType::Decimal => s
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Value::from)
                    .ok_or(())
            })
            .map_err(|()| format!("{label} must be a number, like 2.5, not {s:?}")),
        CustomType::Boolean => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" => Ok(Value::Bool(true)),
            "false" | "no" => Ok(Value::Bool(false)),
            _ => Err(format!("{label} must be true or false, not {s:?}")),
        },
        CustomType::DateTime => parse_datetime(s)
            .map(|d| Value::String(format_datetime(d)))
            .ok_or_else(|| {
                format!("{label} must be a date and time like 2026-11-22T08:43:00Z, not {s:?}")
            }),
    }
}

/// A custom attribute's new value from its field (`null` when emptied).
///
/// # Errors
/// The field's error: a value that is not of the declared type.
fn parse_custom(a: &CustomAttribute, text: &str) -> Result<Value, String> {
    let label = humanize(&a.name);
    if a.multi_valued {
        let all = split_list(text)
            .iter()
            .map(|x| parse_one(&label, a.attr_type, x))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if all.is_empty() {
            Value::Null
        } else {
            Value::Array(all)
        });
    }
    if a.attr_type == CustomType::Boolean {
        return Ok(Value::Bool(checked(text)));
    }
    match text.trim() {
        "" => Ok(Value::Null),
        s => parse_one(&label, a.attr_type, s),
    }
}

/// The admin API's `custom_attributes` for the custom fields of the form that changed from
/// the user's values (a field not in the form, or as it was shown, changes nothing), and the
/// errors of the fields whose value is not of the declared type.
fn custom_changes(
    t: &Tenant,
    doc: &Value,
    fields: &BTreeMap<String, String>,
) -> (Map<String, Value>, BTreeMap<String, String>) {
    let mut changes = Map::new();
    let mut errors = BTreeMap::new();
    for s in custom_schemas(t, CustomResource::User) {
        for a in &s.attributes {
            let key = format!("{}:{}", s.urn, a.name);
            let Some(text) = fields.get(&key) else {
                continue;
            };
            let old = ext_value(doc, &s.urn, &a.name);
            let unchanged = if a.attr_type == CustomType::Boolean && !a.multi_valued {
                checked(text) == (old == Some(&Value::Bool(true)))
            } else {
                text.trim() == input_text(old).trim()
            };
            if unchanged {
                continue;
            }
            match parse_custom(a, text) {
                Ok(v) => {
                    if let Some(m) = changes
                        .entry(s.urn.clone())
                        .or_insert_with(|| Value::Object(Map::new()))
                        .as_object_mut()
                    {
                        m.insert(a.name.clone(), v);
                    }
                }
                Err(e) => {
                    errors.insert(key, e);
                }
            }
        }
    }
    (changes, errors)
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
    shown: Shown,
    typed: Option<&Typed<'_>>,
) -> Result<Html<String>, ConsoleError> {
    let doc = &u.resource.doc;
    let mut rows = Vec::new();
    flatten("", "", doc, &mut rows);
    let custom = custom_blocks(t, CustomResource::User, doc, u.managed, typed);
    // Every attribute of a managed user's document is the identity provider's (the admin
    // API's rule, see `crate::ops::users`), the enterprise extension's too.
    let rows = rows
        .into_iter()
        // The custom attributes have blocks of their own.
        .filter(|(top, _, _)| !custom.iter().any(|b| b.urn.eq_ignore_ascii_case(top)))
        .collect();
    let mut attrs = attr_groups(rows, u.managed);
    // The manager is a link when that user exists, plain text otherwise (deleted, or not yet
    // provisioned): never a link to a 404.
    for a in attrs.iter_mut().flat_map(|g| g.attrs.iter_mut()) {
        if a.path == "manager.value"
            && !a.value.is_empty()
            && state.store.get_app_user(&t.id, &a.value).await?.is_some()
        {
            a.href = Some(super::user_href(&t.id, &a.value));
        }
    }
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
    let edit = match typed {
        Some(Typed { form: f, .. }) => EditView {
            user_name: f.user_name.clone(),
            display_name: f.display_name.clone(),
            given_name: f.given_name.clone(),
            family_name: f.family_name.clone(),
            email: f.email.clone(),
            active: f.active.is_some(),
            version: f.version.unwrap_or(u.resource.version),
            open: true,
        },
        None => EditView {
            user_name: row.user_name.clone(),
            display_name: s("/displayName"),
            given_name: s("/name/givenName"),
            family_name: s("/name/familyName"),
            email: row.email.clone(),
            active: u.status == UserStatus::Active,
            version: u.resource.version,
            // A save refused as stale shows the current values, open to be made again.
            open: shown.edit_form.is_refused(),
        },
    };
    // Refused, the boxes come back as they were ticked; otherwise as the user holds them.
    let ticked = split_list(&shown.roles_form.value("role", &u.direct_roles.join(", ")));
    let catalogue = crate::ops::roles::catalogue(state).await?;
    let page = UserPage {
        chrome: Chrome::tenant(session, t, TabId::Users, &row.user_name),
        notice: shown.notice,
        role_choices: super::scim::choices(&catalogue, &ticked, t, !session.is_operator()),
        direct_roles: shown.roles_form.value("roles", &u.direct_roles.join(", ")),
        edit_form: shown.edit_form,
        roles_form: shown.roles_form,
        tenant_href: tenant_href(&t.id),
        idp_name: idp::display(&t.idp),
        attrs,
        custom,
        edit,
        role_sources: role_sources(u, &group_roles),
        groups,
        entries: group_rows(&t.id, &history, now, super::log::reader_of(session)),
        retention_days: state.settings.log_retention.as_secs() / 86_400,
        u: UserView {
            id: u.resource.id.clone(),
            href: row.href,
            user_name: row.user_name,
            status: row.status,
            managed: u.managed,
            roles: u.roles.clone(),
            created: view::fmt_when(u.resource.created),
            last_modified: view::fmt_when(u.resource.last_modified),
        },
    };
    render(&page)
}

async fn fetch(state: &AppState, t: &Tenant, id: &str) -> Result<AppUser, ConsoleError> {
    Ok(ops::users::fetch_user(state, &t.id, id).await?)
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
        Some("saved") => Some(("h-attrs", Notice::ok("User saved."))),
        Some("roles") => Some(("h-roles", Notice::ok("Roles saved."))),
        _ => None,
    };
    let shown = Shown {
        notice,
        ..Shown::default()
    };
    render_user(&state, &session, &t, &u, shown, None).await
}

/// Applies `patch` through the shared user operation ([`ops::users::update`]); its refusal (a
/// managed field, a taken userName, an invalid value) is shown at the top of the form's
/// section and next to each field, with the edit `form` as it was typed, unless the refusal
/// is that the user changed since the form was read: then the page shows the current values.
/// Without `form` it is the roles form's (`roles` as typed).
#[allow(clippy::too_many_arguments)] // one call per form; a struct would only rename them
async fn apply(
    state: &AppState,
    session: &Session,
    t: &Tenant,
    id: &str,
    patch: &UserPatch,
    done: &str,
    form: Option<&UserForm>,
    roles: Option<(&str, &str)>,
) -> Result<Response, ConsoleError> {
    match ops::users::update(state, &session.actor(), &t.id, id, patch)
        .await
        .map_err(ConsoleError::from)
    {
        Ok(_) => Ok(redirect(&format!(
            "{}?done={done}",
            super::user_href(&t.id, id)
        ))),
        Err(ConsoleError::Refused(errors)) => {
            let u = fetch(state, t, id).await?;
            let message = errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let typed = form
                .filter(|f| f.version.is_none_or(|v| v == u.resource.version))
                .map(|f| Typed {
                    form: f,
                    errors: f
                        .custom
                        .keys()
                        .filter(|k| k.starts_with("urn:") && message.contains(k.as_str()))
                        .map(|k| (k.clone(), message.clone()))
                        .collect(),
                });
            let state_of = |prefix, values: Vec<(&str, &str)>| {
                FormState::refused(prefix, values, Vec::new()).with_op_errors(errors, &USER_FIELDS)
            };
            let shown = match roles {
                Some((typed, ticked)) => Shown {
                    roles_form: state_of("direct-", vec![("roles", typed), ("role", ticked)]),
                    ..Shown::default()
                },
                None => Shown {
                    edit_form: state_of("", Vec::new()),
                    ..Shown::default()
                },
            };
            let html = render_user(state, session, t, &u, shown, typed.as_ref()).await?;
            Ok((StatusCode::BAD_REQUEST, html).into_response())
        }
        Err(e) => Err(e),
    }
}

/// The roles form: typed (`roles`) or ticked (`role`, repeated; kept comma-separated).
#[derive(Debug, Default)]
pub struct RolesForm {
    roles: String,
    role: String,
}

impl From<Vec<(String, String)>> for RolesForm {
    fn from(pairs: Vec<(String, String)>) -> Self {
        let mut f = Self::default();
        let mut ticked = Vec::new();
        for (k, v) in pairs {
            match k.as_str() {
                "roles" => f.roles = v,
                "role" => ticked.push(v),
                _ => {}
            }
        }
        f.role = ticked.join(", ");
        f
    }
}

/// `POST /console/t/{tenant}/users/{id}/roles`: the roles assigned in the app (any user):
/// typed (`roles`, comma-separated, while the catalogue is empty) or ticked (`role`, one per
/// box).
pub async fn save_roles(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    Posted { session, form }: Posted<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let form = RolesForm::from(form);
    let t = session.tenant(&state, &tenant).await?;
    let mut roles = split_list(&form.roles);
    roles.extend(split_list(&form.role));
    let patch = UserPatch {
        roles: Some(roles),
        ..UserPatch::default()
    };
    apply(
        &state,
        &session,
        &t,
        &id,
        &patch,
        "roles",
        None,
        Some((&form.roles, &form.role)),
    )
    .await
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
    /// The other fields: the custom attributes', named `{urn}:{name}` (and the CSRF token).
    #[serde(flatten)]
    custom: BTreeMap<String, String>,
}

fn opt(s: &str) -> Option<Option<String>> {
    let s = s.trim();
    Some((!s.is_empty()).then(|| s.to_owned()))
}

/// `POST /console/t/{tenant}/users/{id}`: changes an app user's attributes, custom ones
/// included (each checked against its declared type here, so that a wrong one is shown next
/// to its field with what was typed, then validated by the admin API's operation). For a
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
    let (custom, errors) = custom_changes(&t, &cur.resource.doc, &form.custom);
    if !errors.is_empty() {
        // Each wrong value is next to its field; the summary lists them all.
        let summary = errors
            .values()
            .map(|m| FieldError {
                field: None,
                message: m.clone(),
            })
            .collect();
        let shown = Shown {
            edit_form: FormState::refused("", [], summary),
            ..Shown::default()
        };
        let typed = Typed {
            form: &form,
            errors,
        };
        let html = render_user(&state, &session, &t, &cur, shown, Some(&typed)).await?;
        return Ok((StatusCode::BAD_REQUEST, html).into_response());
    }
    let patch = UserPatch {
        user_name: Some(form.user_name.trim().to_owned()),
        display_name: opt(&form.display_name),
        given_name: opt(&form.given_name),
        family_name: opt(&form.family_name),
        email: opt(&form.email),
        active: Some(form.active.is_some()),
        version: form.version,
        custom_attributes: (!custom.is_empty()).then_some(custom),
        ..UserPatch::default()
    };
    apply(
        &state,
        &session,
        &t,
        &id,
        &patch,
        "saved",
        Some(&form),
        None,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attributes_get_labels_for_people() {
        for (path, label) in [
            ("emails[0].value", "Email"),
            ("emails[1].value", "Email 2"),
            ("emails[0].type", "Email, type"),
            ("name.givenName", "Given name"),
            ("employeeNumber", "Employee number"),
            ("department", "Department"),
            ("manager.value", "Manager"),
            ("addresses[0].postalCode", "Address, postal code"),
            ("title", "Job title"),
            ("somethingNew", "Something new"),
        ] {
            assert_eq!(attr_label(path), label, "{path}");
        }
        let rows = vec![
            ("userName".into(), "userName".into(), "ann".into()),
            (
                ENTERPRISE.into(),
                format!("{ENTERPRISE}.employeeNumber"),
                "42".into(),
            ),
            (
                ENTERPRISE.into(),
                format!("{ENTERPRISE}.manager.value"),
                "u1".into(),
            ),
        ];
        let g = attr_groups(rows, true);
        assert_eq!(g.len(), 2);
        assert_eq!(g[1].urn, ENTERPRISE);
        assert_eq!(g[1].heading, "Enterprise");
        assert_eq!(g[1].attrs[0].path, "employeeNumber");
        assert_eq!(g[1].attrs[1].label, "Manager");
        assert!(g.iter().flat_map(|g| &g.attrs).all(|a| a.locked));
        assert!(
            attr_groups(vec![("title".into(), "title".into(), "x".into())], false)[0]
                .attrs
                .iter()
                .all(|a| !a.locked)
        );
    }

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

    #[test]
    fn attribute_names_are_made_readable() {
        for (name, label) in [
            ("costCenter", "Cost center"),
            ("level", "Level"),
            ("employeeID", "Employee ID"),
            ("isVIPCustomer", "Is VIP customer"),
            ("cost_center", "Cost center"),
            ("x-Region2Code", "X region2 code"),
            ("SKU", "SKU"),
        ] {
            assert_eq!(humanize(name), label, "{name}");
        }
    }

    fn attr(v: Value) -> CustomAttribute {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn typed_values_are_read_by_their_declared_type() {
        let int = attr(json!({"name": "level", "type": "integer"}));
        assert_eq!(parse_custom(&int, " 4 "), Ok(json!(4)));
        assert_eq!(parse_custom(&int, ""), Ok(Value::Null));
        assert_eq!(
            parse_custom(&int, "abc"),
            Err("Level must be a whole number, like 42, not \"abc\"".to_owned())
        );
        let dec = attr(json!({"name": "rate", "type": "decimal"}));
        assert_eq!(parse_custom(&dec, "2.5"), Ok(json!(2.5)));
        assert_eq!(parse_custom(&dec, "2"), Ok(json!(2)));
        assert!(parse_custom(&dec, "NaN").is_err());
        let regions = attr(json!({"name": "regions", "type": "string", "multiValued": true}));
        assert_eq!(
            parse_custom(&regions, "emea, apac,"),
            Ok(json!(["emea", "apac"]))
        );
        assert_eq!(parse_custom(&regions, " "), Ok(Value::Null));
        let flag = attr(json!({"name": "contractor", "type": "boolean"}));
        assert_eq!(parse_custom(&flag, "true"), Ok(json!(true)));
        assert_eq!(parse_custom(&flag, ""), Ok(json!(false)));
        let when = attr(json!({"name": "hired", "type": "dateTime"}));
        assert_eq!(
            parse_custom(&when, "2026-11-22T08:43:00+01:00"),
            Ok(json!("2026-11-22T07:43:00.000Z"))
        );
        assert!(parse_custom(&when, "yesterday").is_err());
        assert_eq!(
            shown(&when, Some(&json!("2026-11-22T07:43:00.000Z"))),
            "2026-11-22 07:43 UTC"
        );
        assert_eq!(shown(&flag, Some(&json!(false))), "No");
        assert_eq!(
            shown(&regions, Some(&json!(["emea", "apac"]))),
            "emea, apac"
        );
        assert_eq!(shown(&int, None), "—");
    }

    #[test]
    fn the_user_form_keeps_its_custom_fields() {
        let f: UserForm = serde_urlencoded::from_str(
            "csrf=x&user_name=a&display_name=&given_name=&family_name=&email=&version=3\
             &urn%3Aacme%3AUser%3Alevel=4&urn%3Aacme%3AUser%3Aflag=&urn%3Aacme%3AUser%3Aflag=true",
        )
        .unwrap();
        assert_eq!(f.version, Some(3));
        assert_eq!(f.custom["urn:acme:User:level"], "4");
        assert_eq!(
            f.custom["urn:acme:User:flag"], "true",
            "the checkbox after its hidden field"
        );
    }
}
