//! A tenant's SCIM settings: an overview (`/console/t/{tenant}`: connection status, the guard
//! while it holds, the first-sync review, a new token shown once) and a page per section, each
//! at its own address (`…/settings/connection`: the identity provider, its setup steps and the
//! base URL; `…/token`: enable, regenerate, disable; `…/provisioning`: the tenant settings;
//! `…/roles`: the role catalogue and the role mappings; `…/guard`: the mass-deprovisioning
//! guard's settings and what it holds). Every action calls the shared operation for it
//! ([`crate::ops`]), is audited as the console session, and redirects to its section's page.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use roster_store::app::{AppGroupQuery, GuardDecision, GuardState, MatchBy};
use roster_store::{
    DeprovisionMode, ExistingUserMode, LastRequest, LogQuery, Outcome, ReviewStatus, ReviewSummary,
    ReviewUser, Tenant,
};
use serde::Deserialize;
use serde_json::json;
use time::Duration;

use super::super::auth::Empty;
use super::super::view::{
    fmt_ago, fmt_date, fmt_in, fmt_when, options, query, render, split_list, tenant_href, url_enc,
    Chrome, FormState, Notice, Opt, TabId,
};
use super::super::{idp, redirect, ConsoleError, Posted, Session};
use super::{param, stale_cursor, user_href, Params};
use crate::ops;
use crate::ops::first_sync::{self, Decision};
use crate::ops::roles::{GroupSelector, MappingBody};
use crate::ops::FieldError;
use crate::AppState;

struct Connection {
    at: String,
    at_iso: String,
    ago: String,
    status: u16,
    ok: bool,
    request: String,
}

/// What the last request was: `POST /scim/v2/acme/Users`, or for a counted read its route and
/// how many such reads that minute had (`GET /scim/v2/acme/Users/{id}, 1 of 30 that minute`).
pub fn last_request_text(tenant: &str, last: &LastRequest) -> String {
    match last {
        LastRequest::Logged(e) => format!("{} {}", e.method, e.path),
        LastRequest::Read(r) => {
            let (method, route) = r.route.split_once(' ').unwrap_or(("", &r.route));
            let path = format!("{method} /scim/v2/{tenant}{route}");
            if r.count > 1 {
                format!("{path}, 1 of {} that minute", r.count)
            } else {
                path
            }
        }
    }
}

struct Guide {
    id: &'static str,
    name: &'static str,
    steps_html: String,
    mappings: idp::Table,
    selected: bool,
}

struct TokenRow {
    prefix: String,
    created: String,
    expires: String,
    expires_in: String,
    last_used: String,
}

/// The settings form's values: the stored ones, or those typed into a refused form (numbers
/// as text, so that "abc" is shown as typed).
struct SettingsView {
    groups: bool,
    retain: bool,
    match_existing: bool,
    /// `email_uniqueness`: `off`, `primary` or `any`.
    emails: String,
    welcome: bool,
    sso: bool,
    ttl_days: String,
    guard_enabled: bool,
    guard_percent: String,
    guard_min: String,
    guard_window: String,
    /// `first_sync_review`.
    review: bool,
}

impl SettingsView {
    fn of(s: &roster_store::TenantSettings, f: &FormState) -> Self {
        let g = &s.deprovision_guard;
        Self {
            groups: f.checked("groups_enabled", s.groups_enabled),
            retain: f.value(
                "deprovision_on_delete",
                if s.deprovision_on_delete == DeprovisionMode::Retain {
                    "retain"
                } else {
                    "erase"
                },
            ) == "retain",
            match_existing: f.value(
                "on_existing_user",
                if s.on_existing_user == ExistingUserMode::Match {
                    "match"
                } else {
                    "reject"
                },
            ) == "match",
            emails: f.value("email_uniqueness", s.email_uniqueness.as_str()),
            welcome: f.checked("welcome_email", s.welcome_email),
            sso: f.checked("sso_enforced", s.sso_enforced),
            ttl_days: f.value("token_ttl_days", &s.token_ttl_days.to_string()),
            guard_enabled: f.checked("guard_enabled", g.enabled),
            guard_percent: f.value("guard_max_percent", &g.max_percent.to_string()),
            guard_min: f.value("guard_min_count", &g.min_count.to_string()),
            guard_window: f.value("guard_window_minutes", &g.window_minutes.to_string()),
            review: f.checked("first_sync_review", s.first_sync_review),
        }
    }
}

struct MappingRow {
    /// The mapping's id, for element ids.
    id: String,
    value: String,
    by_label: &'static str,
    roles: String,
    role_list: Vec<String>,
    edit: bool,
    by_options: Vec<Opt>,
    /// The catalogue's roles to tick, while editing (empty while the catalogue is).
    choices: Vec<RoleChoice>,
    /// A mapping by name whose group does not exist (yet).
    missing_group: bool,
    action: String,
    edit_href: String,
    delete_action: String,
}

/// A role of the catalogue as a checkbox of a form.
pub(super) struct RoleChoice {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) checked: bool,
    /// Whether the session may tick it (an IT admin: a grantable role, or one already held).
    pub(super) allowed: bool,
}

/// A role of the catalogue as the roles page lists it.
struct CatalogueRow {
    name: String,
    description: String,
    grantable: bool,
}

/// What the guard holds, as the overview and the guard page show it.
struct GuardView {
    summary: String,
    state: GuardState,
    /// "Deactivate 37 users?": the confirmation dialog's question.
    confirm_question: String,
    /// "Deactivate 37 users": its button.
    confirm_action: String,
    /// "37 held requests".
    held: String,
    rows: Vec<HeldRow>,
    /// "Users 1–50 of 72".
    shown: String,
    prev_href: Option<String>,
    next_href: Option<String>,
    /// Whether this session may decide (see [`ops::guard::may_decide`]).
    may_decide: bool,
    /// The guard's window, in minutes.
    window: u32,
}

/// One held request.
struct HeldRow {
    user_name: String,
    href: String,
    what: &'static str,
    when: String,
    when_iso: String,
    attempts: u64,
}

/// Held requests listed per page of the guard page.
const HELD_PAGE: usize = 50;

/// Users of the first-sync review listed per page.
const REVIEW_PAGE: u64 = 50;

/// `1204` as `1,204`.
#[must_use]
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 user`, `1,204 users`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// What a review's held events would do, in one sentence with only its non-zero parts: "Would
/// create 1,204 users, link 1,100 existing app users by email, deactivate 12 users and give
/// 340 users the role editor."
#[must_use]
pub fn review_sentence(s: &ReviewSummary) -> String {
    let (user, users) = ("user", "users");
    let (app_user, app_users) = ("existing app user", "existing app users");
    let (group, groups) = ("group", "groups");
    let (membership, memberships) = ("group membership", "group memberships");
    let counted = [
        (s.users_created, "create", user, users, ""),
        (
            s.users_linked_by_email,
            "link",
            app_user,
            app_users,
            " by email",
        ),
        (
            s.users_linked_by_user_name,
            "link",
            app_user,
            app_users,
            " by userName",
        ),
        (
            s.users_restored,
            "restore",
            "deprovisioned user",
            "deprovisioned users",
            "",
        ),
        (s.users_updated, "update", user, users, ""),
        (s.users_deactivated, "deactivate", user, users, ""),
        (s.users_reactivated, "reactivate", user, users, ""),
        (s.users_deprovisioned, "deprovision", user, users, ""),
        (s.users_erased, "erase", user, users, ""),
        (s.groups_created, "create", group, groups, ""),
        (s.groups_updated, "update", group, groups, ""),
        (s.groups_deleted, "delete", group, groups, ""),
        (s.memberships_added, "add", membership, memberships, ""),
        (s.memberships_removed, "remove", membership, memberships, ""),
    ];
    let mut parts: Vec<String> = counted
        .into_iter()
        .filter(|(n, ..)| *n > 0)
        .map(|(n, verb, one, many, tail)| format!("{verb} {}{tail}", count(n, one, many)))
        .collect();
    parts.extend(
        s.roles_granted
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(role, n)| format!("give {} the role {role}", count(*n, user, users))),
    );
    match parts.split_last() {
        None => "The held events change no user and no group.".to_owned(),
        Some((last, [])) => format!("Would {last}."),
        Some((last, rest)) => format!("Would {} and {last}.", rest.join(", ")),
    }
}

/// What a review does to one user, in words: "Created, then deactivated".
fn review_actions(actions: &[String]) -> String {
    let words: Vec<&str> = actions
        .iter()
        .map(|a| match a.as_str() {
            "created" => "created",
            "linked_by_email" => "linked to an existing app user by email",
            "linked_by_user_name" => "linked to an existing app user by userName",
            "restored" => "restored (it was deprovisioned)",
            "updated" => "updated",
            "deactivated" => "deactivated",
            "reactivated" => "reactivated",
            "deprovisioned" => "deprovisioned",
            "erased" => "erased",
            other => other,
        })
        .collect();
    let text = if words.is_empty() {
        "its roles change".to_owned()
    } else {
        words.join(", then ")
    };
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

/// One user of the review's table.
struct ReviewRow {
    user_name: String,
    id: String,
    /// The user's page; `None` once erased.
    href: Option<String>,
    what: String,
    gained: Vec<String>,
    lost: Vec<String>,
}

impl ReviewRow {
    fn of(tenant: &str, u: ReviewUser) -> Self {
        let erased = u.actions.iter().any(|a| a == "erased");
        Self {
            href: (!erased).then(|| user_href(tenant, &u.id)),
            what: review_actions(&u.actions),
            user_name: u.user_name.unwrap_or_default(),
            id: u.id,
            gained: u.roles_granted,
            lost: u.roles_lost,
        }
    }
}

/// An open first-sync review as the page shows it.
struct ReviewView {
    /// Nothing held yet: the section says it is waiting, and the setting stays in the form.
    empty: bool,
    summary: String,
    /// "2,310 events".
    held: String,
    since: String,
    since_iso: String,
    ago: String,
    /// "50 of 1,204 users".
    shown: String,
    users: Vec<ReviewRow>,
    /// The first page, when this is a later one.
    first_href: Option<String>,
    next_href: Option<String>,
}

impl ReviewView {
    fn of(tenant: &str, s: ReviewStatus, after: Option<&str>, now: time::OffsetDateTime) -> Self {
        let href = tenant_href(tenant);
        let users: Vec<ReviewRow> = s
            .users
            .into_iter()
            .map(|u| ReviewRow::of(tenant, u))
            .collect();
        Self {
            empty: s.held_events == 0,
            summary: review_sentence(&s.summary),
            held: count(s.held_events, "event", "events"),
            since: s.held_since.map(fmt_when).unwrap_or_default(),
            since_iso: s.held_since.map(ops::fmt_time).unwrap_or_default(),
            ago: s.held_since.map(|t| fmt_ago(t, now)).unwrap_or_default(),
            shown: format!(
                "{} of {}",
                thousands(users.len() as u64),
                count(s.users_total, "user", "users")
            ),
            users,
            first_href: after.map(|_| format!("{href}#h-review")),
            next_href: s
                .next_after
                .map(|a| format!("{href}?{}#h-review", query(&[("after", &a)]))),
        }
    }
}

/// A page of the SCIM settings: the overview or one section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `/console/t/{tenant}`.
    Overview,
    /// `…/settings/connection`.
    Connection,
    /// `…/settings/token`.
    Token,
    /// `…/settings/provisioning`.
    Provisioning,
    /// `…/settings/roles`.
    Roles,
    /// `…/settings/guard`.
    Guard,
}

impl Section {
    const ALL: [Self; 6] = [
        Self::Overview,
        Self::Connection,
        Self::Token,
        Self::Provisioning,
        Self::Roles,
        Self::Guard,
    ];

    /// Its path segment (`overview` for the overview, which has none).
    #[must_use]
    pub fn slug(self) -> &'static str {
        match self {
            Self::Overview => "overview",
            Self::Connection => "connection",
            Self::Token => "token",
            Self::Provisioning => "provisioning",
            Self::Roles => "roles",
            Self::Guard => "guard",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|x| *x != Self::Overview && x.slug() == s)
    }

    /// Its address.
    #[must_use]
    pub fn href(self, tenant: &str) -> String {
        match self {
            Self::Overview => tenant_href(tenant),
            s => format!("{}/settings/{}", tenant_href(tenant), s.slug()),
        }
    }

    /// Its name in the sub-navigation.
    fn label(self) -> &'static str {
        match self {
            Self::Overview => "Overview",
            Self::Connection => "Connection",
            Self::Token => "Token",
            Self::Provisioning => "Provisioning",
            Self::Roles => "Roles",
            Self::Guard => "Guard",
        }
    }

    /// The page's `h1` and title.
    fn heading(self) -> &'static str {
        match self {
            Self::Overview => "SCIM provisioning",
            Self::Connection => "Connect your identity provider",
            Self::Token => "SCIM token",
            Self::Provisioning => "Provisioning settings",
            Self::Roles => "Roles",
            Self::Guard => "Mass-deprovisioning guard",
        }
    }
}

/// A link of the settings' sub-navigation.
struct NavLink {
    href: String,
    label: &'static str,
    current: bool,
}

#[derive(Template)]
#[template(path = "console/scim.html")]
struct ScimPage {
    chrome: Chrome,
    /// [`Section::slug`] of the page shown.
    section: &'static str,
    heading: &'static str,
    subnav: Vec<NavLink>,
    /// Whether an operator is signed in (the catalogue and the operator-only settings).
    operator: bool,
    tenant_href: String,
    /// This section's address (forms that come back to it).
    page_href: String,
    base_url: String,
    connection: Option<Connection>,
    failures_24h: String,
    failures_href: String,
    dropped_24h: u64,
    guard: Option<GuardView>,
    review: Option<ReviewView>,
    /// Whether the settings form offers `first_sync_review`: while no review holds events.
    review_field: bool,
    new_token: Option<String>,
    /// The notice of the last action, shown in the section it was about: (section heading's
    /// id, notice).
    notice: Option<(&'static str, Notice)>,
    idp_options: Vec<Opt>,
    guides: Vec<Guide>,
    scim_on: bool,
    groups_on: bool,
    tokens: Vec<TokenRow>,
    confirm: String,
    /// The token lifetime stored, for the sentence about enabling SCIM.
    stored_ttl_days: u32,
    settings: SettingsView,
    settings_form: FormState,
    /// `guard_decided_by`: `operator` or `it_admin`.
    decided_by: String,
    mappings: Vec<MappingRow>,
    /// The mapping form being edited (its errors when refused).
    edit_form: FormState,
    by_options: Vec<Opt>,
    /// The new mapping's group, prefilled from the group page, or as typed.
    new_value: String,
    new_roles: String,
    /// The catalogue's roles for the new mapping (empty while the catalogue is).
    new_choices: Vec<RoleChoice>,
    new_form: FormState,
    group_names: Vec<String>,
    catalogue: Vec<CatalogueRow>,
    /// The catalogue's add form.
    catalogue_form: FormState,
    /// The 7-day chart and the webhooks' delivery (`health_chart.html`), on the overview only.
    health: Option<super::health::HealthPanel>,
}

impl ScimPage {
    /// Whether the IT admin may grant any role of the catalogue.
    fn any_grantable(&self) -> bool {
        self.catalogue.iter().any(|c| c.grantable)
    }

    /// The notice for the section whose heading has id `section`.
    fn notice_in(&self, section: &str) -> Option<&Notice> {
        self.notice
            .as_ref()
            .filter(|(s, _)| *s == section)
            .map(|(_, n)| n)
    }
}

const BY: [(&str, &str); 3] = [
    ("displayName", "Group name (displayName)"),
    ("externalId", "Group externalId"),
    ("id", "Group id"),
];

fn by_label(by: MatchBy) -> &'static str {
    match by {
        MatchBy::DisplayName => "Group named",
        MatchBy::ExternalId => "Group with externalId",
        MatchBy::Id => "Group with id",
    }
}

/// What a page render adds to the stored state.
#[derive(Default)]
struct Extra<'a> {
    /// The page; the overview when `None`.
    section: Option<Section>,
    idp_choice: Option<&'a str>,
    confirm: Option<&'a str>,
    edit: Option<&'a str>,
    /// A group to prefill the new role mapping with ("Map roles to this group").
    map: Option<&'a str>,
    /// The first-sync review's users after this id.
    after: Option<&'a str>,
    /// The page of the guard's held requests (1-based).
    held_page: Option<usize>,
    new_token: Option<String>,
    /// The notice, and the section (its heading's id) it is shown in.
    notice: Option<(&'static str, Notice)>,
    /// The settings form (provisioning or guard) as refused.
    settings_form: Option<FormState>,
    /// The new role mapping's form as refused.
    new_form: Option<FormState>,
    /// The edited role mapping's form as refused (with `edit`).
    edit_form: Option<FormState>,
    /// The role catalogue's add form as refused.
    catalogue_form: Option<FormState>,
}

/// The guard as the overview and the guard page show it; `None` while it holds nothing to
/// decide on (armed, or decided with nothing held).
fn guard_view(
    tenant: &Tenant,
    g: &roster_store::app::GuardStatus,
    session: &Session,
    page: usize,
    href: &str,
) -> Option<GuardView> {
    if g.state == GuardState::Armed || (g.state != GuardState::Tripped && g.held_count == 0) {
        return None;
    }
    let deactivations = g
        .held
        .iter()
        .filter(|h| h.operation == "deactivate")
        .count();
    let n = g.held_count;
    let users = count(n, "user", "users");
    let confirm_question = if deactivations == g.held.len() {
        format!("Deactivate {users}?")
    } else if deactivations == 0 {
        format!("Delete {users}?")
    } else {
        format!("Deactivate or delete {users}?")
    };
    let listed = g.held.len();
    let pages = listed.div_ceil(HELD_PAGE).max(1);
    let page = page.clamp(1, pages);
    let start = (page - 1) * HELD_PAGE;
    let rows: Vec<HeldRow> = g
        .held
        .iter()
        .skip(start)
        .take(HELD_PAGE)
        .map(|h| HeldRow {
            user_name: h.user_name.clone().unwrap_or_else(|| h.user_id.clone()),
            href: user_href(&tenant.id, &h.user_id),
            what: if h.operation == "delete" {
                "Delete"
            } else {
                "Deactivate"
            },
            when: fmt_when(h.first_at),
            when_iso: ops::fmt_time(h.first_at),
            attempts: h.attempts,
        })
        .collect();
    let end = start + rows.len();
    let more = if (listed as u64) < n {
        format!(" (the first {} are listed)", thousands(listed as u64))
    } else {
        String::new()
    };
    let page_href = |p: usize| format!("{href}?{}#h-held", query(&[("page", &p.to_string())]));
    Some(GuardView {
        summary: format!(
            "The guard is holding {} deactivation or deletion request{}: {} arrived within {} \
             minutes, more than {} ({}% of {} active users, and at least {}).",
            g.held_count,
            if g.held_count == 1 { "" } else { "s" },
            g.window_count,
            g.settings.window_minutes,
            g.threshold,
            g.settings.max_percent,
            g.active_users,
            g.settings.min_count
        ),
        state: g.state,
        confirm_action: confirm_question.trim_end_matches('?').to_owned(),
        confirm_question,
        held: count(n, "held request", "held requests"),
        shown: if rows.is_empty() {
            String::new()
        } else {
            format!("Users {}–{} of {}{more}", start + 1, end, thousands(n))
        },
        rows,
        prev_href: (page > 1).then(|| page_href(page - 1)),
        next_href: (page < pages).then(|| page_href(page + 1)),
        may_decide: ops::guard::may_decide(&tenant.settings, &session.actor()),
        window: g.settings.window_minutes,
    })
}

/// The display names of the tenant's groups (at most 200), for suggestions and for flagging
/// mappings whose group does not exist yet.
async fn group_names(
    store: &dyn roster_store::Store,
    tenant: &str,
) -> Result<Vec<String>, ConsoleError> {
    Ok(store
        .list_app_groups(
            tenant,
            &AppGroupQuery {
                limit: 200,
                ..AppGroupQuery::default()
            },
        )
        .await?
        .items
        .into_iter()
        .filter_map(|g| {
            g.resource
                .doc
                .get("displayName")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .collect())
}

/// The catalogue's roles as checkboxes: those in `checked` ticked; roles `checked` holds
/// outside the catalogue are added (ticked), so that saving keeps them.
pub(super) fn choices(
    catalogue: &[roster_store::CatalogueRole],
    checked: &[String],
    t: &Tenant,
    it_admin: bool,
) -> Vec<RoleChoice> {
    if catalogue.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<RoleChoice> = catalogue
        .iter()
        .map(|c| {
            let on = checked.contains(&c.name);
            RoleChoice {
                name: c.name.clone(),
                description: c.description.clone().unwrap_or_default(),
                checked: on,
                allowed: !it_admin || on || t.settings.grantable_roles.contains(&c.name),
            }
        })
        .collect();
    for r in checked {
        if !catalogue.iter().any(|c| &c.name == r) {
            out.push(RoleChoice {
                name: r.clone(),
                description: "Not in the role catalogue any more".to_owned(),
                checked: true,
                allowed: true,
            });
        }
    }
    out
}

#[allow(clippy::too_many_lines)] // one page, top to bottom
async fn render_page(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    t: &Tenant,
    extra: Extra<'_>,
) -> Result<Html<String>, ConsoleError> {
    let now = state.clock.now();
    let store = state.store.as_ref();
    let href = tenant_href(&t.id);
    let section = extra.section.unwrap_or(Section::Overview);
    let overview = section == Section::Overview;

    // The newest request, a row of the log or a counted read.
    let connection = if overview {
        store.last_request(&t.id).await?.map(|last| {
            let at = last.at();
            Connection {
                at: fmt_when(at),
                at_iso: ops::fmt_time(at),
                ago: fmt_ago(at, now),
                status: last.status(),
                ok: last.status() < 400,
                request: last_request_text(&t.id, &last),
            }
        })
    } else {
        None
    };
    // The newest failures (a partial index holds them), counted back 24 hours: a filter on
    // `at` would walk every request of the day.
    let day_ago = now - Duration::days(1);
    let failures = if overview {
        store
            .list_provisioning(
                &t.id,
                &LogQuery {
                    outcome: Some(Outcome::Failure),
                    limit: 100,
                    ..LogQuery::default()
                },
            )
            .await?
            .iter()
            .filter(|e| e.at >= day_ago)
            .count()
    } else {
        0
    };
    let failures_24h = match failures {
        0 => String::new(),
        100.. => "100+".to_owned(),
        n => n.to_string(),
    };
    let dropped_24h = if overview {
        store.count_dropped(&t.id, Some(day_ago), None).await?
    } else {
        0
    };
    let since = ops::fmt_time(day_ago);
    let failures_href = format!(
        "{href}/log?outcome=failure&since={}",
        url_enc(since.get(..16).unwrap_or(&since))
    );

    let guard = if matches!(section, Section::Overview | Section::Guard) {
        let g = store.guard_status(&t.id, now).await?;
        guard_view(
            t,
            &g,
            session,
            extra.held_page.unwrap_or(1),
            &Section::Guard.href(&t.id),
        )
        .filter(|v| section == Section::Guard || v.state == GuardState::Tripped)
    } else {
        None
    };
    let review = if overview || section == Section::Provisioning {
        store
            .review_status(&t.id, extra.after, REVIEW_PAGE)
            .await
            .map_err(stale_cursor)?
            .map(|r| ReviewView::of(&t.id, r, extra.after, now))
    } else {
        None
    };

    let selected = extra
        .idp_choice
        .filter(|c| idp::IDPS.iter().any(|(id, _)| id == c))
        .unwrap_or(&t.idp);
    // Each guide with this tenant's real base URL and the product's name as the page says it.
    let base_url = crate::urls::base_url(state, headers, &t.id);
    let chrome = Chrome::tenant(session, t, TabId::Scim, section.heading());
    let product = chrome.product();
    let guides = if section == Section::Connection {
        idp::guides()
            .iter()
            .map(|g| {
                let (steps_html, mappings) = idp::guide_for(g, &base_url, &product);
                Guide {
                    id: g.id,
                    name: g.name,
                    steps_html,
                    mappings,
                    selected: g.id == selected,
                }
            })
            .collect()
    } else {
        Vec::new()
    };

    let tokens = if section == Section::Token {
        store
            .list_tokens(&t.id)
            .await?
            .into_iter()
            .filter(|k| k.revoked_at.is_none() && k.expires_at > now)
            .map(|k| TokenRow {
                prefix: k.prefix,
                created: fmt_date(k.created_at),
                expires: fmt_date(k.expires_at),
                expires_in: fmt_in(k.expires_at, now),
                last_used: k
                    .last_used_at
                    .map_or_else(|| "never".to_owned(), |u| fmt_ago(u, now)),
            })
            .collect()
    } else {
        Vec::new()
    };

    let s = &t.settings;
    let settings_form = extra.settings_form.unwrap_or_default();
    let settings = SettingsView::of(s, &settings_form);
    let decided_by = settings_form.value("guard_decided_by", s.guard_decided_by.as_str());
    let edit_form = extra.edit_form.unwrap_or_else(|| FormState::new("edit-"));
    let new_form = extra.new_form.unwrap_or_else(|| FormState::new("new-"));
    let it_admin = !session.is_operator();

    let roles_page = section == Section::Roles;
    let catalogue_roles = if roles_page {
        ops::roles::catalogue(state).await?
    } else {
        Vec::new()
    };
    let group_names = if roles_page {
        group_names(store, &t.id).await?
    } else {
        Vec::new()
    };
    let mappings = if roles_page {
        store.list_role_mappings(&t.id).await?
    } else {
        Vec::new()
    };
    let mappings = mappings
        .into_iter()
        .map(|m| {
            let mid = url_enc(&m.id);
            let edit = extra.edit == Some(m.id.as_str());
            // The edited row shows what was typed into it when its save was refused.
            let (by, value, roles) = if edit {
                (
                    edit_form.value("by", m.by.as_str()),
                    edit_form.value("value", &m.value),
                    edit_form.value("roles", &m.roles.join(", ")),
                )
            } else {
                (
                    m.by.as_str().to_owned(),
                    m.value.clone(),
                    m.roles.join(", "),
                )
            };
            let ticked: Vec<String> = if edit_form.is_refused() {
                split_list(&edit_form.value("role", ""))
            } else {
                m.roles.clone()
            };
            let roles_route = Section::Roles.href(&t.id);
            MappingRow {
                id: m.id.clone(),
                edit,
                by_label: by_label(m.by),
                by_options: options(&BY, &by),
                choices: if edit {
                    choices(&catalogue_roles, &ticked, t, it_admin)
                } else {
                    Vec::new()
                },
                missing_group: m.by == MatchBy::DisplayName
                    && group_names.len() < 200
                    && !group_names
                        .iter()
                        .any(|g| g.to_lowercase() == m.value.to_lowercase()),
                roles,
                role_list: m.roles,
                value,
                action: format!("{href}/role-mappings/{mid}"),
                edit_href: format!("{roles_route}?edit={mid}#h-roles"),
                delete_action: format!("{href}/role-mappings/{mid}/delete"),
            }
        })
        .collect();
    let new_ticked = split_list(&new_form.value("role", ""));
    let new_choices = choices(&catalogue_roles, &new_ticked, t, it_admin);
    let catalogue = catalogue_roles
        .iter()
        .map(|c| CatalogueRow {
            name: c.name.clone(),
            description: c.description.clone().unwrap_or_default(),
            grantable: s.grantable_roles.contains(&c.name),
        })
        .collect();

    // Only the overview shows the chart and the webhooks: the sections skip their reads.
    let health = if section == Section::Overview {
        Some(super::health::panel(state, session, &t.id, now).await?)
    } else {
        None
    };
    let subnav = Section::ALL
        .into_iter()
        .map(|x| NavLink {
            href: x.href(&t.id),
            label: x.label(),
            current: x == section,
        })
        .collect();
    render(&ScimPage {
        health,
        chrome,
        section: section.slug(),
        heading: section.heading(),
        subnav,
        operator: session.is_operator(),
        page_href: section.href(&t.id),
        notice: extra.notice,
        base_url,
        connection,
        failures_24h,
        failures_href,
        dropped_24h,
        guard,
        review_field: review.as_ref().is_none_or(|r| r.empty),
        review,
        new_token: extra.new_token,
        idp_options: options(&idp::IDPS, selected),
        guides,
        scim_on: s.scim_enabled,
        groups_on: s.groups_enabled,
        tokens,
        confirm: extra.confirm.unwrap_or("").to_owned(),
        stored_ttl_days: s.token_ttl_days,
        settings,
        settings_form,
        decided_by,
        mappings,
        edit_form,
        by_options: options(&BY, &new_form.value("by", "displayName")),
        new_value: new_form.value("value", extra.map.unwrap_or("")),
        new_roles: new_form.value("roles", ""),
        new_choices,
        new_form,
        group_names,
        catalogue,
        catalogue_form: extra
            .catalogue_form
            .unwrap_or_else(|| FormState::new("cat-")),
        tenant_href: href,
    })
}

/// The notice after an action (`?done=…` of the redirect: no secret, only which action), and
/// the section it is shown in (its heading's id, where the redirect's anchor points).
fn done_notice(done: Option<&str>) -> Option<(&'static str, Notice)> {
    let (section, text) = match done? {
        "created" => (
            "page",
            "Tenant created. Enable SCIM on the Token page to get its token.",
        ),
        "idp" => ("h-idp", "Identity provider saved."),
        "disabled" => ("h-token", "SCIM is disabled: every token stopped working."),
        "settings" => ("h-settings", "Settings saved."),
        "guard-settings" => ("h-guard-settings", "Guard settings saved."),
        "mapping-added" => ("h-roles", "Role mapping added."),
        "mapping-saved" => ("h-roles", "Role mapping saved."),
        "mapping-deleted" => ("h-roles", "Role mapping deleted."),
        "catalogue-added" => ("h-catalogue", "Role saved in the catalogue."),
        "catalogue-removed" => ("h-catalogue", "Role removed from the catalogue."),
        "grantable" => (
            "h-grantable",
            "Saved: the roles your customer's IT admin may grant.",
        ),
        "redelivered" => ("h-webhooks", "Redelivery started: the next attempt is now."),
        "guard-confirm" => (
            "page",
            "Confirmed: the held requests go through when your identity provider retries them.",
        ),
        "guard-reject" => (
            "page",
            "Rejected: these users stay active. Requests to deactivate them are refused until \
             your identity provider stops sending them.",
        ),
        _ => return None,
    };
    Some((section, Notice::ok(text)))
}

/// The session's key of the token shown once on `tenant`'s page.
fn token_key(tenant: &str) -> String {
    format!("scim-token:{tenant}")
}

/// The notice after enabling SCIM or regenerating the token: the token is on the page this
/// once (`shown`); a second GET of the same address (a reload) no longer has it.
fn token_notice(done: &str, shown: bool) -> Option<(&'static str, Notice)> {
    let text = match (done, shown) {
        ("enabled", true) => "SCIM is enabled. Copy the token below into your identity provider.",
        ("regenerated", true) => {
            "A new token is ready. The old one stopped working: paste this one into your \
             identity provider now."
        }
        ("enabled" | "regenerated", false) => {
            "The new token was shown once and is not kept. If you did not copy it, regenerate \
             the token."
        }
        _ => return None,
    };
    // On the overview, in the new token's section; the reload that no longer has it, at the top.
    Some((if shown { "h-token" } else { "page" }, Notice::ok(text)))
}

/// The notice after a first-sync decision, with its counts from the redirect's query.
fn review_notice(p: &Params) -> Option<(&'static str, Notice)> {
    let n = |k: &str| param(p, k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let text = match param(p, "done")? {
        "first-sync-approved" => format!(
            "Approved: {} delivered to the app.",
            count(n("events"), "event", "events")
        ),
        "first-sync-discarded" => format!(
            "Discarded: {} deleted, {} restored; SCIM is now disabled.",
            count(n("deleted"), "created resource", "created resources"),
            thousands(n("restored"))
        ),
        _ => return None,
    };
    Some(("page", Notice::ok(text)))
}

/// What every action of this page works with.
struct Ctx {
    state: AppState,
    headers: HeaderMap,
    session: Session,
    t: Tenant,
}

impl Ctx {
    async fn new(
        state: AppState,
        headers: HeaderMap,
        session: Session,
        tenant: &str,
    ) -> Result<Self, ConsoleError> {
        let t = session.tenant(&state, tenant).await?;
        Ok(Self {
            state,
            headers,
            session,
            t,
        })
    }

    async fn render(&self, extra: Extra<'_>) -> Result<Html<String>, ConsoleError> {
        render_page(&self.state, &self.headers, &self.session, &self.t, extra).await
    }

    /// The page again (400) with a refused form: `extra` carries it (see [`FormState`]).
    async fn refused_form(&self, extra: Extra<'_>) -> Result<Response, ConsoleError> {
        Ok((StatusCode::BAD_REQUEST, self.render(extra).await?).into_response())
    }

    /// The page again, answered with `status`, with an error in `section` (a heading's id):
    /// the refusal of an action that has no fields (enable, a guard decision).
    async fn refused_in(
        &self,
        page: Section,
        section: &'static str,
        status: StatusCode,
        message: String,
    ) -> Result<Response, ConsoleError> {
        let extra = Extra {
            section: Some(page),
            notice: Some((section, Notice::error(message))),
            ..Extra::default()
        };
        Ok((status, self.render(extra).await?).into_response())
    }

    /// `r`'s value; a refusal as the page with the error in `section` (`Err`), anything else
    /// as an error page.
    async fn or_refused<T>(
        &self,
        page: Section,
        section: &'static str,
        r: Result<T, ops::OpError>,
    ) -> Result<Result<T, Response>, ConsoleError> {
        match r.map_err(ConsoleError::from) {
            Ok(v) => Ok(Ok(v)),
            Err(ConsoleError::Refused(errors)) => {
                let all: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
                let page = self
                    .refused_in(page, section, StatusCode::BAD_REQUEST, all.join(" "))
                    .await?;
                Ok(Err(page))
            }
            Err(e) => Err(e),
        }
    }

    /// Back to `section`'s page, with the notice `done` (see [`done_notice`]), at `anchor`.
    fn done(&self, section: Section, done: &str, anchor: &str) -> Response {
        redirect(&format!(
            "{}?done={done}#{anchor}",
            section.href(&self.t.id)
        ))
    }

    /// Applies a tenant update as `PATCH /api/v1/tenants/{tenant}` does, and audits it; its
    /// refusal as the problems found (`Err`), for the form to show.
    async fn update_tenant(
        &self,
        update: ops::tenants::TenantUpdate,
    ) -> Result<Result<(), Vec<FieldError>>, ConsoleError> {
        let r = ops::tenants::update(
            self.state.store.as_ref(),
            self.state.clock.now(),
            &self.session.actor(),
            &self.t.id,
            update,
        )
        .await;
        match r.map_err(ConsoleError::from) {
            Ok(_) => Ok(Ok(())),
            Err(ConsoleError::Refused(errors)) => Ok(Err(errors)),
            Err(e) => Err(e),
        }
    }

    /// Keeps a new token for the page's next GET and sends the browser there (post, redirect,
    /// get): the token is shown once, from the session, never in the address.
    async fn show_token(&self, token: String, done: &str) -> Response {
        self.session
            .put_once(&self.state, &token_key(&self.t.id), &token)
            .await;
        self.done(Section::Overview, done, "h-new-token")
    }
}

/// `GET /console/t/{tenant}`.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Result<Html<String>, ConsoleError> {
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    show(&ctx, Section::Overview, &p).await
}

/// `GET /console/t/{tenant}/settings/{section}`: a section of the SCIM settings.
pub async fn section_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
    Path((tenant, section)): Path<(String, String)>,
    Query(p): Query<Params>,
) -> Result<Html<String>, ConsoleError> {
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let section = Section::parse(&section).ok_or(ConsoleError::NotFound)?;
    show(&ctx, section, &p).await
}

/// The overview or a section, with what its address asks for (a notice, an open dialog, the
/// mapping being edited, a page of a list).
async fn show(ctx: &Ctx, section: Section, p: &Params) -> Result<Html<String>, ConsoleError> {
    let done = param(p, "done");
    // A token waiting for this page is taken only when the address says one was just issued.
    let new_token = match done {
        Some("enabled" | "regenerated") => {
            ctx.session
                .take_once(&ctx.state, &token_key(&ctx.t.id))
                .await
        }
        _ => None,
    };
    let notice = match done {
        Some(d @ ("enabled" | "regenerated")) => token_notice(d, new_token.is_some()),
        d => done_notice(d).or_else(|| review_notice(p)),
    };
    ctx.render(Extra {
        section: Some(section),
        idp_choice: param(p, "idp"),
        confirm: param(p, "confirm"),
        edit: param(p, "edit"),
        map: param(p, "map"),
        after: param(p, "after"),
        held_page: param(p, "page").and_then(|v| v.parse().ok()),
        notice,
        new_token,
        ..Extra::default()
    })
    .await
}

/// The identity-provider form.
#[derive(Debug, Deserialize)]
pub struct IdpForm {
    idp: String,
}

/// `POST /console/t/{tenant}/idp`.
pub async fn save_idp(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    Posted { session, form }: Posted<IdpForm>,
) -> Result<Response, ConsoleError> {
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let update = ops::tenants::TenantUpdate {
        idp: Some(form.idp.clone()),
        ..ops::tenants::TenantUpdate::default()
    };
    if let Err(errors) = ctx.update_tenant(update).await? {
        let all: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        return ctx
            .refused_in(
                Section::Connection,
                "h-idp",
                StatusCode::BAD_REQUEST,
                all.join(" "),
            )
            .await;
    }
    Ok(ctx.done(Section::Connection, "idp", "h-idp"))
}

/// `POST /console/t/{tenant}/scim/enable`: SCIM on, the first token shown once.
pub async fn enable(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    Posted { session, .. }: Posted<Empty>,
) -> Result<Response, ConsoleError> {
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let now = ctx.state.clock.now();
    let actor = ctx.session.actor();
    let r = ops::tenants::enable_scim(ctx.state.store.as_ref(), now, &ctx.t.id, None, &actor).await;
    let issued = match ctx.or_refused(Section::Token, "h-token", r).await? {
        Ok(i) => i,
        Err(page) => return Ok(page),
    };
    Ok(ctx.show_token(issued.secret, "enabled").await)
}

/// `POST /console/t/{tenant}/scim/regenerate`: a new token; every earlier one stops working
/// at once.
pub async fn regenerate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    Posted { session, .. }: Posted<Empty>,
) -> Result<Response, ConsoleError> {
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let now = ctx.state.clock.now();
    let actor = ctx.session.actor();
    let r = ops::tokens::rotate(ctx.state.store.as_ref(), now, &ctx.t.id, None, None, &actor).await;
    let issued = match ctx.or_refused(Section::Token, "h-token", r).await? {
        Ok((issued, _revoked)) => issued,
        Err(page) => return Ok(page),
    };
    Ok(ctx.show_token(issued.secret, "regenerated").await)
}

/// `POST /console/t/{tenant}/scim/disable`: every token stops working at once.
pub async fn disable(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    Posted { session, .. }: Posted<Empty>,
) -> Result<Response, ConsoleError> {
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let now = ctx.state.clock.now();
    let actor = ctx.session.actor();
    ops::tenants::disable_scim(ctx.state.store.as_ref(), now, &ctx.t.id, &actor).await?;
    Ok(ctx.done(Section::Token, "disabled", "h-token"))
}

/// The settings forms: the provisioning settings (`section=provisioning`) and the guard's
/// (`section=guard`); a form without `section` (a page before the split) has both. Checkboxes
/// are absent when unticked, and a field of the other form is absent and left as it is.
#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    /// `provisioning` or `guard`.
    #[serde(default)]
    section: Option<String>,
    groups_enabled: Option<String>,
    #[serde(default)]
    deprovision_on_delete: String,
    #[serde(default)]
    on_existing_user: String,
    /// Absent from a form of an older page: the setting is then left as it is.
    email_uniqueness: Option<String>,
    welcome_email: Option<String>,
    sso_enforced: Option<String>,
    #[serde(default)]
    token_ttl_days: String,
    guard_enabled: Option<String>,
    #[serde(default)]
    guard_max_percent: String,
    #[serde(default)]
    guard_min_count: String,
    #[serde(default)]
    guard_window_minutes: String,
    /// `operator` or `it_admin` (an operator's guard form only).
    guard_decided_by: Option<String>,
    /// Present when the form offered `first_sync_review` (no review holding events): the
    /// checkbox's absence then means off; otherwise the setting is left as it is.
    first_sync_review_field: Option<String>,
    first_sync_review: Option<String>,
}

/// Where the settings operation's refusals are shown on the form, and the words for each
/// (the operation names the setting's path, for the admin API and the command line).
const SETTINGS_FIELDS: [(&str, &str, &str); 5] = [
    (
        "settings.token_ttl_days",
        "token_ttl_days",
        "The token lifetime",
    ),
    (
        "settings.deprovision_guard.max_percent",
        "guard_max_percent",
        "The guard's share of active users",
    ),
    (
        "settings.deprovision_guard.window_minutes",
        "guard_window_minutes",
        "The guard's window",
    ),
    ("email_uniqueness", "email_uniqueness", "Unique emails"),
    (
        "settings.email_uniqueness",
        "email_uniqueness",
        "Unique emails",
    ),
];

impl SettingsForm {
    /// Whether the form has the provisioning settings.
    fn provisioning(&self) -> bool {
        self.section.as_deref() != Some("guard")
    }

    /// Whether the form has the guard's settings.
    fn guard(&self) -> bool {
        self.section.as_deref() != Some("provisioning")
    }

    /// The page the form is on.
    fn page(&self) -> Section {
        if self.provisioning() {
            Section::Provisioning
        } else {
            Section::Guard
        }
    }

    /// The fields as typed, for the form shown again (an unticked box is absent, as sent).
    fn typed(&self) -> Vec<(&str, &str)> {
        let mut v = vec![
            ("deprovision_on_delete", self.deprovision_on_delete.as_str()),
            ("on_existing_user", self.on_existing_user.as_str()),
            ("token_ttl_days", self.token_ttl_days.as_str()),
            ("guard_max_percent", self.guard_max_percent.as_str()),
            ("guard_min_count", self.guard_min_count.as_str()),
            ("guard_window_minutes", self.guard_window_minutes.as_str()),
        ];
        let opt = [
            ("groups_enabled", &self.groups_enabled),
            ("email_uniqueness", &self.email_uniqueness),
            ("welcome_email", &self.welcome_email),
            ("sso_enforced", &self.sso_enforced),
            ("guard_enabled", &self.guard_enabled),
            ("guard_decided_by", &self.guard_decided_by),
            ("first_sync_review", &self.first_sync_review),
        ];
        v.extend(
            opt.iter()
                .filter_map(|(k, x)| x.as_deref().map(|x| (*k, x))),
        );
        v
    }

    /// The form as a settings merge patch, as the admin API takes it; otherwise every problem
    /// found, each with its field. The ranges are checked here, with the operation's own
    /// bounds, because the operation stops at the first problem and a form shows them all; the
    /// operation checks them again.
    fn patch(&self) -> Result<serde_json::Value, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut num =
            |field: &str, v: &str, what: &str, min: u32, max: u32| match v.trim().parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    let range = if max == u32::MAX {
                        format!("{min} or more")
                    } else {
                        format!("from {min} to {}", thousands(u64::from(max)))
                    };
                    errors.push(FieldError {
                        field: Some(field.to_owned()),
                        message: format!("{what} must be a whole number {range}, not \"{v}\"."),
                    });
                    min
                }
            };
        let mut patch = json!({});
        if self.provisioning() {
            patch["token_ttl_days"] = json!(num(
                "token_ttl_days",
                &self.token_ttl_days,
                "The token lifetime (days)",
                1,
                ops::tenants::MAX_TTL_DAYS,
            ));
        }
        if self.guard() {
            let percent = num(
                "guard_max_percent",
                &self.guard_max_percent,
                "The share of active users",
                1,
                100,
            );
            let min_count = num(
                "guard_min_count",
                &self.guard_min_count,
                "The number of users",
                0,
                u32::MAX,
            );
            let window = num(
                "guard_window_minutes",
                &self.guard_window_minutes,
                "The window (minutes)",
                1,
                ops::tenants::MAX_GUARD_WINDOW_MINUTES,
            );
            patch["deprovision_guard"] = json!({
                "enabled": self.guard_enabled.is_some(),
                "max_percent": percent,
                "min_count": min_count,
                "window_minutes": window,
            });
        }
        let mut pick = |field: &str, v: &str, allowed: &[&str], what: &str| {
            if !allowed.contains(&v) {
                errors.push(FieldError {
                    field: Some(field.to_owned()),
                    message: format!("Choose {what} from the list."),
                });
            }
        };
        if self.provisioning() {
            pick(
                "deprovision_on_delete",
                &self.deprovision_on_delete,
                &["retain", "erase"],
                "what a deletion does",
            );
            pick(
                "on_existing_user",
                &self.on_existing_user,
                &["match", "reject"],
                "what a match with an existing user does",
            );
            if let Some(v) = &self.email_uniqueness {
                pick(
                    "email_uniqueness",
                    v,
                    &["off", "primary", "any"],
                    "whether emails must be unique",
                );
            }
        }
        if self.guard() {
            if let Some(v) = &self.guard_decided_by {
                pick(
                    "guard_decided_by",
                    v,
                    &["operator", "it_admin"],
                    "who decides",
                );
                patch["guard_decided_by"] = json!(v);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if self.provisioning() {
            patch["groups_enabled"] = json!(self.groups_enabled.is_some());
            patch["deprovision_on_delete"] = json!(self.deprovision_on_delete);
            patch["on_existing_user"] = json!(self.on_existing_user);
            patch["welcome_email"] = json!(self.welcome_email.is_some());
            patch["sso_enforced"] = json!(self.sso_enforced.is_some());
            if let Some(v) = &self.email_uniqueness {
                patch["email_uniqueness"] = json!(v);
            }
            if self.first_sync_review_field.is_some() {
                patch["first_sync_review"] = json!(self.first_sync_review.is_some());
            }
        }
        Ok(patch)
    }
}

/// `POST /console/t/{tenant}/settings`: validated and applied like
/// `PATCH /api/v1/tenants/{tenant}/settings`. A refusal answers the form's section page with
/// the form as typed and every problem next to its field; a save goes back to that page.
pub async fn save_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    Posted { session, form }: Posted<SettingsForm>,
) -> Result<Response, ConsoleError> {
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let page = form.page();
    let refused = |errors: Vec<FieldError>| Extra {
        section: Some(page),
        settings_form: Some(
            FormState::refused("", form.typed(), Vec::new())
                .with_op_errors(errors, &SETTINGS_FIELDS),
        ),
        ..Extra::default()
    };
    let patch = match form.patch() {
        Ok(p) => p,
        Err(errors) => return ctx.refused_form(refused(errors)).await,
    };
    if let Err(e) = ops::tenants::check_settings_actor(&ctx.session.actor(), &patch) {
        let errors = vec![FieldError {
            field: Some("guard_decided_by".to_owned()),
            message: e.to_string(),
        }];
        return ctx.refused_form(refused(errors)).await;
    }
    let update = ops::tenants::TenantUpdate {
        settings: Some(patch.clone()),
        ..ops::tenants::TenantUpdate::default()
    };
    if let Err(errors) = ctx.update_tenant(update).await? {
        return ctx.refused_form(refused(errors)).await;
    }
    Ok(match page {
        Section::Guard => ctx.done(page, "guard-settings", "h-guard-settings"),
        _ => ctx.done(page, "settings", "h-settings"),
    })
}

/// `POST /console/t/{tenant}/guard/{confirm|reject}`: decides on a tripped guard, when this
/// session may ([`ops::guard::may_decide`]: the operator, or the IT admin when the tenant lets
/// it decide); back to the guard page.
pub async fn guard_decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((tenant, decision)): Path<(String, String)>,
    Posted { session, .. }: Posted<Empty>,
) -> Result<Response, ConsoleError> {
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let d = match decision.as_str() {
        "confirm" => GuardDecision::Confirm,
        "reject" => GuardDecision::Reject,
        _ => return Err(ConsoleError::NotFound),
    };
    let r = ops::guard::decide(&ctx.state, &ctx.t.id, d, &ctx.session.actor()).await;
    if let Err(ops::OpError::Forbidden { message }) = r {
        return ctx
            .refused_in(Section::Guard, "page", StatusCode::FORBIDDEN, message)
            .await;
    }
    if let Err(page) = ctx.or_refused(Section::Guard, "page", r).await? {
        return Ok(page);
    }
    Ok(ctx.done(Section::Guard, &format!("guard-{decision}"), "main"))
}

/// `POST /console/t/{tenant}/first-sync/{approve|discard}`: decides on the tenant's open
/// first-sync review (operators and the tenant's IT admin alike: the IT admin is the one who
/// can judge the summary). Audited by [`first_sync::decide`].
pub async fn review_decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((tenant, decision)): Path<(String, String)>,
    Posted { session, .. }: Posted<Empty>,
) -> Result<Response, ConsoleError> {
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let d = match decision.as_str() {
        "approve" => Decision::Approve,
        "discard" => Decision::Discard,
        _ => return Err(ConsoleError::NotFound),
    };
    let o = match first_sync::decide(&ctx.state, &ctx.t.id, d, &ctx.session.actor()).await {
        // None is open (decided meanwhile, perhaps in another tab); the store's message
        // names the setting, which the page calls otherwise.
        Err(ops::OpError::Conflict { .. }) => {
            let m = "No first-sync review is open: it has been approved or discarded already.";
            return ctx
                .refused_in(
                    Section::Overview,
                    "page",
                    StatusCode::CONFLICT,
                    m.to_owned(),
                )
                .await;
        }
        r => match ctx.or_refused(Section::Overview, "page", r).await? {
            Ok(o) => o,
            Err(page) => return Ok(page),
        },
    };
    let href = tenant_href(&ctx.t.id);
    let q = match d {
        Decision::Approve => query(&[
            ("done", "first-sync-approved"),
            ("events", &o.released.to_string()),
        ]),
        Decision::Discard => query(&[
            ("done", "first-sync-discarded"),
            ("deleted", &o.deleted.to_string()),
            ("restored", &o.restored.to_string()),
        ]),
    };
    Ok(redirect(&format!("{href}?{q}#main")))
}

/// The role-mapping form: the group, and the roles as text (while the role catalogue is
/// empty) or as the catalogue's ticked boxes (`role`, repeated).
#[derive(Debug, Default)]
pub struct MappingForm {
    by: String,
    value: String,
    roles: String,
    /// The ticked roles, comma-separated.
    role: String,
}

impl From<Vec<(String, String)>> for MappingForm {
    fn from(pairs: Vec<(String, String)>) -> Self {
        let mut f = Self::default();
        let mut ticked = Vec::new();
        for (k, v) in pairs {
            match k.as_str() {
                "by" => f.by = v,
                "value" => f.value = v,
                "roles" => f.roles = v,
                "role" => ticked.push(v),
                _ => {}
            }
        }
        f.role = ticked.join(", ");
        f
    }
}

/// Where the role-mapping operation's refusals are shown on its form, and their words.
const MAPPING_FIELDS: [(&str, &str, &str); 3] = [
    ("group.value", "value", "The group"),
    ("group.by", "by", "How the group is matched"),
    ("roles", "roles", "Roles"),
];

impl MappingForm {
    fn typed(&self) -> [(&str, &str); 4] {
        [
            ("by", self.by.as_str()),
            ("value", self.value.as_str()),
            ("roles", self.roles.as_str()),
            ("role", self.role.as_str()),
        ]
    }

    fn body(&self) -> Result<MappingBody, Vec<FieldError>> {
        let by = MatchBy::parse(&self.by).ok_or_else(|| {
            vec![FieldError {
                field: Some("by".to_owned()),
                message: "Choose how the group is matched: name, externalId or id.".to_owned(),
            }]
        })?;
        let mut roles = split_list(&self.roles);
        roles.extend(split_list(&self.role));
        Ok(MappingBody {
            group: GroupSelector {
                by,
                value: self.value.trim().to_owned(),
            },
            roles,
        })
    }

    /// The form as refused: what was typed, every problem in the form's words.
    fn refused(&self, prefix: &'static str, errors: Vec<FieldError>) -> FormState {
        FormState::refused(prefix, self.typed(), Vec::new()).with_op_errors(errors, &MAPPING_FIELDS)
    }
}

/// `POST /console/t/{tenant}/role-mappings`.
pub async fn add_mapping(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    Posted { session, form }: Posted<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let form = MappingForm::from(form);
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let r = match form.body() {
        Ok(body) => ops::roles::create(&ctx.state, &ctx.session.actor(), &ctx.t.id, &body)
            .await
            .map_err(ConsoleError::from),
        Err(errors) => Err(ConsoleError::Refused(errors)),
    };
    match r {
        Ok(_) => Ok(ctx.done(Section::Roles, "mapping-added", "h-roles")),
        Err(ConsoleError::Refused(errors)) => {
            let extra = Extra {
                section: Some(Section::Roles),
                new_form: Some(form.refused("new-", errors)),
                ..Extra::default()
            };
            ctx.refused_form(extra).await
        }
        Err(e) => Err(e),
    }
}

/// `POST /console/t/{tenant}/role-mappings/{id}`.
pub async fn save_mapping(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    Posted { session, form }: Posted<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let form = MappingForm::from(form);
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let r = match form.body() {
        Ok(body) => ops::roles::replace(&ctx.state, &ctx.session.actor(), &ctx.t.id, &id, &body)
            .await
            .map_err(ConsoleError::from),
        Err(errors) => Err(ConsoleError::Refused(errors)),
    };
    match r {
        Ok(_) => Ok(ctx.done(Section::Roles, "mapping-saved", "h-roles")),
        Err(ConsoleError::Refused(errors)) => {
            let extra = Extra {
                section: Some(Section::Roles),
                edit: Some(&id),
                edit_form: Some(form.refused("edit-", errors)),
                ..Extra::default()
            };
            ctx.refused_form(extra).await
        }
        Err(e) => Err(e),
    }
}

/// `POST /console/t/{tenant}/role-mappings/{id}/delete`.
pub async fn delete_mapping(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    Posted { session, .. }: Posted<Empty>,
) -> Result<Response, ConsoleError> {
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    ops::roles::remove(&ctx.state, &ctx.session.actor(), &ctx.t.id, &id).await?;
    Ok(ctx.done(Section::Roles, "mapping-deleted", "h-roles"))
}

/// The role catalogue's add form.
#[derive(Debug, Deserialize)]
pub struct CatalogueForm {
    name: String,
    #[serde(default)]
    description: String,
}

/// Where the catalogue operation's refusals are shown on its form.
const CATALOGUE_FIELDS: [(&str, &str, &str); 2] = [
    ("name", "name", "The role's name"),
    ("description", "description", "The description"),
];

/// `POST /console/t/{tenant}/role-catalogue`: declares a role of the catalogue (or replaces
/// its description), for operators only: the catalogue is the host app's, the same for every
/// tenant. Back to the roles page.
pub async fn add_catalogue_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    Posted { session, form }: Posted<CatalogueForm>,
) -> Result<Response, ConsoleError> {
    if !session.is_operator() {
        return Err(ConsoleError::Forbidden);
    }
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let name = form.name.trim();
    let r = ops::roles::declare(
        &ctx.state,
        &ctx.session.actor(),
        name,
        Some(form.description.as_str()),
    )
    .await;
    match r.map_err(ConsoleError::from) {
        Ok(_) => Ok(ctx.done(Section::Roles, "catalogue-added", "h-catalogue")),
        Err(ConsoleError::Refused(errors)) => {
            let typed = [
                ("name", form.name.as_str()),
                ("description", form.description.as_str()),
            ];
            let extra = Extra {
                section: Some(Section::Roles),
                catalogue_form: Some(
                    FormState::refused("cat-", typed, Vec::new())
                        .with_op_errors(errors, &CATALOGUE_FIELDS),
                ),
                ..Extra::default()
            };
            ctx.refused_form(extra).await
        }
        Err(e) => Err(e),
    }
}

/// The catalogue's remove button.
#[derive(Debug, Deserialize)]
pub struct NameForm {
    name: String,
}

/// `POST /console/t/{tenant}/role-catalogue/delete`: removes a role from the catalogue
/// (operators only).
pub async fn remove_catalogue_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    Posted { session, form }: Posted<NameForm>,
) -> Result<Response, ConsoleError> {
    if !session.is_operator() {
        return Err(ConsoleError::Forbidden);
    }
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    ops::roles::undeclare(&ctx.state, &ctx.session.actor(), &form.name).await?;
    Ok(ctx.done(Section::Roles, "catalogue-removed", "h-catalogue"))
}

/// `POST /console/t/{tenant}/grantable-roles`: which catalogue roles this tenant's IT admin may
/// grant (the setting `grantable_roles`, operators only); each ticked box is a `grantable`.
pub async fn save_grantable(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    Posted { session, form }: Posted<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    if !session.is_operator() {
        return Err(ConsoleError::Forbidden);
    }
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let roles: Vec<String> = form
        .into_iter()
        .filter(|(k, _)| k == "grantable")
        .map(|(_, v)| v)
        .collect();
    let patch = json!({ "grantable_roles": roles });
    let update = ops::tenants::TenantUpdate {
        settings: Some(patch.clone()),
        ..ops::tenants::TenantUpdate::default()
    };
    if let Err(errors) = ctx.update_tenant(update).await? {
        let all: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        return ctx
            .refused_in(
                Section::Roles,
                "h-grantable",
                StatusCode::BAD_REQUEST,
                all.join(" "),
            )
            .await;
    }
    Ok(ctx.done(Section::Roles, "grantable", "h-grantable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1204), "1,204");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(count(1, "user", "users"), "1 user");
        assert_eq!(count(2310, "event", "events"), "2,310 events");
    }

    #[test]
    fn the_review_summary_names_only_what_happens() {
        let mut s = ReviewSummary {
            users_created: 1204,
            users_linked_by_email: 1100,
            users_deactivated: 12,
            ..ReviewSummary::default()
        };
        s.roles_granted.insert("editor".to_owned(), 340);
        s.roles_granted.insert("viewer".to_owned(), 1);
        assert_eq!(
            review_sentence(&s),
            "Would create 1,204 users, link 1,100 existing app users by email, deactivate 12 \
             users, give 340 users the role editor and give 1 user the role viewer."
        );
        let one = ReviewSummary {
            groups_created: 1,
            ..ReviewSummary::default()
        };
        assert_eq!(review_sentence(&one), "Would create 1 group.");
        assert!(review_sentence(&ReviewSummary::default()).contains("no user"));
        assert_eq!(
            review_actions(&["created".to_owned(), "deactivated".to_owned()]),
            "Created, then deactivated"
        );
        assert_eq!(review_actions(&[]), "Its roles change");
    }

    #[test]
    fn the_review_pages_through_its_users() {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let status = |next: Option<&str>| ReviewStatus {
            held_since: Some(now),
            held_events: 2310,
            summary: ReviewSummary::default(),
            users_total: 1204,
            users: vec![ReviewUser {
                id: "u 1".to_owned(),
                user_name: None,
                actions: vec!["erased".to_owned()],
                roles_granted: vec![],
                roles_lost: vec!["editor".to_owned()],
            }],
            next_after: next.map(str::to_owned),
        };
        let v = ReviewView::of("acme", status(Some("u 1")), None, now);
        assert!(!v.empty);
        assert_eq!(v.held, "2,310 events");
        assert_eq!(v.shown, "1 of 1,204 users");
        assert_eq!(v.first_href, None);
        assert_eq!(
            v.next_href.as_deref(),
            Some("/console/t/acme?after=u%201#h-review")
        );
        assert_eq!(v.users[0].href, None, "an erased user has no page");
        let v = ReviewView::of("acme", status(None), Some("u 0"), now);
        assert_eq!(v.first_href.as_deref(), Some("/console/t/acme#h-review"));
        assert_eq!(v.next_href, None);
    }

    #[test]
    fn the_settings_form_leaves_the_review_alone_unless_it_offered_it() {
        let form = |field: Option<&str>, review: Option<&str>| SettingsForm {
            section: None,
            guard_decided_by: None,
            groups_enabled: None,
            deprovision_on_delete: "retain".to_owned(),
            on_existing_user: "match".to_owned(),
            email_uniqueness: None,
            welcome_email: None,
            sso_enforced: None,
            token_ttl_days: "365".to_owned(),
            guard_enabled: None,
            guard_max_percent: "20".to_owned(),
            guard_min_count: "10".to_owned(),
            guard_window_minutes: "15".to_owned(),
            first_sync_review_field: field.map(str::to_owned),
            first_sync_review: review.map(str::to_owned),
        };
        let p = form(None, None).patch().unwrap();
        assert!(p.get("first_sync_review").is_none(), "{p}");
        let p = form(Some("on"), None).patch().unwrap();
        assert_eq!(p["first_sync_review"], false);
        let p = form(Some("on"), Some("on")).patch().unwrap();
        assert_eq!(p["first_sync_review"], true);
    }
}
