//! A tenant's SCIM settings page: connection status, the identity provider and its setup
//! steps, the base URL, the token (enable, regenerate, disable), the tenant settings, the
//! mass-deprovisioning guard, the first-sync review and the role-mapping editor. Every action
//! calls the shared operation for it ([`crate::ops`]) and is audited as the console session.

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
    Chrome, Notice, Opt, TabId,
};
use super::super::{idp, redirect, ConsoleError, Posted, Session};
use super::{param, stale_cursor, user_href, Params};
use crate::ops;
use crate::ops::first_sync::{self, Decision};
use crate::ops::roles::{GroupSelector, MappingBody};
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
    steps_html: &'static str,
    mappings: &'static idp::Table,
    selected: bool,
}

struct TokenRow {
    prefix: String,
    created: String,
    expires: String,
    expires_in: String,
    last_used: String,
}

struct SettingsView {
    groups: bool,
    retain: bool,
    match_existing: bool,
    /// `email_uniqueness`: `off`, `primary` or `any`.
    emails: &'static str,
    welcome: bool,
    sso: bool,
    ttl_days: u32,
    guard_enabled: bool,
    guard_percent: u32,
    guard_min: u32,
    guard_window: u32,
    /// `first_sync_review`.
    review: bool,
}

struct MappingRow {
    value: String,
    by_label: &'static str,
    roles: String,
    role_list: Vec<String>,
    edit: bool,
    by_options: Vec<Opt>,
    action: String,
    edit_href: String,
    delete_action: String,
}

struct GuardView {
    summary: String,
}

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

#[derive(Template)]
#[template(path = "console/scim.html")]
struct ScimPage {
    chrome: Chrome,
    tenant_href: String,
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
    idp_options: Vec<Opt>,
    guides: Vec<Guide>,
    scim_on: bool,
    groups_on: bool,
    tokens: Vec<TokenRow>,
    confirm: String,
    settings: SettingsView,
    mappings: Vec<MappingRow>,
    by_options: Vec<Opt>,
    /// The new mapping's group, prefilled from the group page.
    new_value: String,
    group_names: Vec<String>,
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
    idp_choice: Option<&'a str>,
    confirm: Option<&'a str>,
    edit: Option<&'a str>,
    /// A group to prefill the new role mapping with ("Map roles to this group").
    map: Option<&'a str>,
    /// The first-sync review's users after this id.
    after: Option<&'a str>,
    new_token: Option<String>,
    notice: Option<Notice>,
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

    // The newest request, a row of the log or a counted read.
    let connection = store.last_request(&t.id).await?.map(|last| {
        let at = last.at();
        Connection {
            at: fmt_when(at),
            at_iso: ops::fmt_time(at),
            ago: fmt_ago(at, now),
            status: last.status(),
            ok: last.status() < 400,
            request: last_request_text(&t.id, &last),
        }
    });
    // The newest failures (a partial index holds them), counted back 24 hours: a filter on
    // `at` would walk every request of the day.
    let day_ago = now - Duration::days(1);
    let failures = store
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
        .count();
    let failures_24h = match failures {
        0 => String::new(),
        100.. => "100+".to_owned(),
        n => n.to_string(),
    };
    let dropped_24h = store.count_dropped(&t.id, Some(day_ago), None).await?;
    let since = ops::fmt_time(day_ago);
    let failures_href = format!(
        "{href}/log?outcome=failure&since={}",
        url_enc(since.get(..16).unwrap_or(&since))
    );

    let guard = match store.guard_status(&t.id, now).await {
        Ok(g) if g.state == GuardState::Tripped => Some(GuardView {
            summary: format!(
                "Roster is holding {} deactivation or deletion request{}: {} arrived within {} \
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
        }),
        Ok(_) => None,
        Err(e) => return Err(e.into()),
    };
    let review = store
        .review_status(&t.id, extra.after, REVIEW_PAGE)
        .await
        .map_err(stale_cursor)?
        .map(|r| ReviewView::of(&t.id, r, extra.after, now));

    let selected = extra
        .idp_choice
        .filter(|c| idp::IDPS.iter().any(|(id, _)| id == c))
        .unwrap_or(&t.idp);
    let guides = idp::guides()
        .iter()
        .map(|g| Guide {
            id: g.id,
            name: g.name,
            steps_html: &g.steps_html,
            mappings: &g.mappings,
            selected: g.id == selected,
        })
        .collect();

    let tokens = store
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
        .collect();

    let s = &t.settings;
    let settings = SettingsView {
        groups: s.groups_enabled,
        retain: s.deprovision_on_delete == DeprovisionMode::Retain,
        match_existing: s.on_existing_user == ExistingUserMode::Match,
        emails: s.email_uniqueness.as_str(),
        welcome: s.welcome_email,
        sso: s.sso_enforced,
        ttl_days: s.token_ttl_days,
        guard_enabled: s.deprovision_guard.enabled,
        guard_percent: s.deprovision_guard.max_percent,
        guard_min: s.deprovision_guard.min_count,
        guard_window: s.deprovision_guard.window_minutes,
        review: s.first_sync_review,
    };

    let mappings = store
        .list_role_mappings(&t.id)
        .await?
        .into_iter()
        .map(|m| {
            let mid = url_enc(&m.id);
            MappingRow {
                edit: extra.edit == Some(m.id.as_str()),
                by_label: by_label(m.by),
                by_options: options(&BY, m.by.as_str()),
                roles: m.roles.join(", "),
                role_list: m.roles,
                value: m.value,
                action: format!("{href}/role-mappings/{mid}"),
                edit_href: format!("{href}?edit={mid}#h-roles"),
                delete_action: format!("{href}/role-mappings/{mid}/delete"),
            }
        })
        .collect();
    let group_names = store
        .list_app_groups(
            &t.id,
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
        .collect();

    render(&ScimPage {
        chrome: Chrome::tenant(session, t, TabId::Scim, "SCIM settings").with(extra.notice),
        base_url: crate::urls::base_url(state, headers, &t.id),
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
        settings,
        mappings,
        by_options: options(&BY, "displayName"),
        new_value: extra.map.unwrap_or("").to_owned(),
        group_names,
        tenant_href: href,
    })
}

fn done_notice(done: Option<&str>) -> Option<Notice> {
    let text = match done? {
        "created" => "Tenant created. Enable SCIM to get its token.",
        "idp" => "Identity provider saved.",
        "disabled" => "SCIM is disabled: every token stopped working.",
        "settings" => "Settings saved.",
        "mapping-added" => "Role mapping added.",
        "mapping-saved" => "Role mapping saved.",
        "mapping-deleted" => "Role mapping deleted.",
        "guard-confirm" => {
            "Confirmed: the held requests go through when your identity provider retries them."
        }
        "guard-reject" => "Rejected: deactivations stay refused until the guard re-arms.",
        _ => return None,
    };
    Some(Notice::ok(text))
}

/// The notice after a first-sync decision, with its counts from the redirect's query.
fn review_notice(p: &Params) -> Option<Notice> {
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
    Some(Notice::ok(text))
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

    /// The page again, with an error above it (400): the form's input was refused.
    async fn refused(&self, message: String) -> Result<Response, ConsoleError> {
        self.refused_with(StatusCode::BAD_REQUEST, message).await
    }

    /// The page again, with an error above it, answered with `status`.
    async fn refused_with(
        &self,
        status: StatusCode,
        message: String,
    ) -> Result<Response, ConsoleError> {
        let extra = Extra {
            notice: Some(Notice::error(message)),
            ..Extra::default()
        };
        Ok((status, self.render(extra).await?).into_response())
    }

    /// `r`'s value; an input error as the page with the error (`Err`), anything else as an
    /// error page.
    async fn or_refused<T>(
        &self,
        r: Result<T, ops::OpError>,
    ) -> Result<Result<T, Response>, ConsoleError> {
        match r.map_err(ConsoleError::from) {
            Ok(v) => Ok(Ok(v)),
            Err(ConsoleError::Invalid(m)) => Ok(Err(self.refused(m).await?)),
            Err(e) => Err(e),
        }
    }

    /// Back to the page, with the notice `done` (see [`done_notice`]), at `anchor`.
    fn done(&self, done: &str, anchor: &str) -> Response {
        redirect(&format!("{}?done={done}#{anchor}", tenant_href(&self.t.id)))
    }

    /// Applies a tenant update as `PATCH /api/v1/tenants/{tenant}` does, and audits it.
    async fn update_tenant(
        &self,
        update: ops::tenants::TenantUpdate,
        action: &str,
        details: serde_json::Value,
    ) -> Result<Option<Response>, ConsoleError> {
        let r = ops::tenants::update(self.state.store.as_ref(), &self.t.id, update).await;
        if let Err(page) = self.or_refused(r).await? {
            return Ok(Some(page));
        }
        self.session
            .audit(&self.state, action, &self.t.id, Some(&self.t.id), details)
            .await;
        Ok(None)
    }

    /// The page with a new token, shown this once (and not cached: see `security_headers`).
    async fn show_token(&self, token: String, notice: &str) -> Result<Response, ConsoleError> {
        let t = self.session.tenant(&self.state, &self.t.id).await?;
        let extra = Extra {
            new_token: Some(token),
            notice: Some(Notice::ok(notice)),
            ..Extra::default()
        };
        render_page(&self.state, &self.headers, &self.session, &t, extra)
            .await
            .map(IntoResponse::into_response)
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
    ctx.render(Extra {
        idp_choice: param(&p, "idp"),
        confirm: param(&p, "confirm"),
        edit: param(&p, "edit"),
        map: param(&p, "map"),
        after: param(&p, "after"),
        notice: done_notice(param(&p, "done")).or_else(|| review_notice(&p)),
        new_token: None,
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
    let details = json!({"idp": form.idp});
    if let Some(page) = ctx.update_tenant(update, "tenant.update", details).await? {
        return Ok(page);
    }
    Ok(ctx.done("idp", "h-idp"))
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
    let issued = match ctx.or_refused(r).await? {
        Ok(i) => i,
        Err(page) => return Ok(page),
    };
    ctx.show_token(
        issued.secret,
        "SCIM is enabled. Copy the token below into your identity provider.",
    )
    .await
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
    let issued = match ctx.or_refused(r).await? {
        Ok((issued, _revoked)) => issued,
        Err(page) => return Ok(page),
    };
    ctx.show_token(
        issued.secret,
        "A new token is ready. The old one stopped working: paste this one into your identity \
         provider now.",
    )
    .await
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
    Ok(ctx.done("disabled", "h-token"))
}

/// The settings form. Checkboxes are absent when unticked.
#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    groups_enabled: Option<String>,
    deprovision_on_delete: String,
    on_existing_user: String,
    /// Absent from a form of an older page: the setting is then left as it is.
    email_uniqueness: Option<String>,
    welcome_email: Option<String>,
    sso_enforced: Option<String>,
    token_ttl_days: String,
    guard_enabled: Option<String>,
    guard_max_percent: String,
    guard_min_count: String,
    guard_window_minutes: String,
    /// Present when the form offered `first_sync_review` (no review holding events): the
    /// checkbox's absence then means off; otherwise the setting is left as it is.
    first_sync_review_field: Option<String>,
    first_sync_review: Option<String>,
}

impl SettingsForm {
    /// The form as a settings merge patch, as the admin API takes it.
    fn patch(&self) -> Result<serde_json::Value, String> {
        let num = |v: &str, what: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("{what} must be a whole number, not {v:?}"))
        };
        let pick = |v: &str, what: &str, allowed: [&str; 2]| {
            if allowed.contains(&v) {
                Ok(v.to_owned())
            } else {
                Err(format!("{what} must be {} or {}", allowed[0], allowed[1]))
            }
        };
        let mut patch = json!({
            "groups_enabled": self.groups_enabled.is_some(),
            "deprovision_on_delete": pick(&self.deprovision_on_delete, "What a deletion does", ["retain", "erase"])?,
            "on_existing_user": pick(&self.on_existing_user, "What a match with an existing user does", ["match", "reject"])?,
            "welcome_email": self.welcome_email.is_some(),
            "sso_enforced": self.sso_enforced.is_some(),
            "token_ttl_days": num(&self.token_ttl_days, "The token lifetime")?,
            "deprovision_guard": {
                "enabled": self.guard_enabled.is_some(),
                "max_percent": num(&self.guard_max_percent, "The guard's share of active users")?,
                "min_count": num(&self.guard_min_count, "The guard's number of users")?,
                "window_minutes": num(&self.guard_window_minutes, "The guard's window")?,
            },
        });
        if let Some(v) = &self.email_uniqueness {
            if !["off", "primary", "any"].contains(&v.as_str()) {
                return Err("Unique emails must be off, primary or any".to_owned());
            }
            patch["email_uniqueness"] = json!(v);
        }
        if self.first_sync_review_field.is_some() {
            patch["first_sync_review"] = json!(self.first_sync_review.is_some());
        }
        Ok(patch)
    }
}

/// `POST /console/t/{tenant}/settings`: validated and applied like
/// `PATCH /api/v1/tenants/{tenant}/settings`.
pub async fn save_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    Posted { session, form }: Posted<SettingsForm>,
) -> Result<Response, ConsoleError> {
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let patch = match form.patch() {
        Ok(p) => p,
        Err(m) => return ctx.refused(m).await,
    };
    let update = ops::tenants::TenantUpdate {
        settings: Some(patch.clone()),
        ..ops::tenants::TenantUpdate::default()
    };
    if let Some(page) = ctx.update_tenant(update, "tenant.settings", patch).await? {
        return Ok(page);
    }
    Ok(ctx.done("settings", "h-settings"))
}

/// `POST /console/t/{tenant}/guard/{confirm|reject}`: decides on a tripped guard.
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
    if let Err(page) = ctx.or_refused(r).await? {
        return Ok(page);
    }
    Ok(ctx.done(&format!("guard-{decision}"), "main"))
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
            return ctx.refused_with(StatusCode::CONFLICT, m.to_owned()).await;
        }
        r => match ctx.or_refused(r).await? {
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

/// The role-mapping form.
#[derive(Debug, Deserialize)]
pub struct MappingForm {
    by: String,
    value: String,
    roles: String,
}

impl MappingForm {
    fn body(&self) -> Result<MappingBody, String> {
        let by = MatchBy::parse(&self.by)
            .ok_or_else(|| "choose how the group is matched: name, externalId or id".to_owned())?;
        Ok(MappingBody {
            group: GroupSelector {
                by,
                value: self.value.trim().to_owned(),
            },
            roles: split_list(&self.roles),
        })
    }
}

/// `POST /console/t/{tenant}/role-mappings`.
pub async fn add_mapping(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    Posted { session, form }: Posted<MappingForm>,
) -> Result<Response, ConsoleError> {
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let body = match form.body() {
        Ok(b) => b,
        Err(m) => return ctx.refused(m).await,
    };
    let r = ops::roles::create(&ctx.state, &ctx.session.actor(), &ctx.t.id, &body).await;
    if let Err(page) = ctx.or_refused(r).await? {
        return Ok(page);
    }
    Ok(ctx.done("mapping-added", "h-roles"))
}

/// `POST /console/t/{tenant}/role-mappings/{id}`.
pub async fn save_mapping(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    Posted { session, form }: Posted<MappingForm>,
) -> Result<Response, ConsoleError> {
    let ctx = Ctx::new(state, headers, session, &tenant).await?;
    let body = match form.body() {
        Ok(b) => b,
        Err(m) => return ctx.refused(m).await,
    };
    let r = ops::roles::replace(&ctx.state, &ctx.session.actor(), &ctx.t.id, &id, &body).await;
    if let Err(page) = ctx.or_refused(r).await? {
        return Ok(page);
    }
    Ok(ctx.done("mapping-saved", "h-roles"))
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
    Ok(ctx.done("mapping-deleted", "h-roles"))
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
