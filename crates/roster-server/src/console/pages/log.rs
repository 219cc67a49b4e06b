//! The provisioning log: every write and every failed request from the identity provider,
//! filtered by time, outcome and user, newest first; failures carry their SCIM error and what
//! to do about it. Successful reads are counted, not listed (see `crate::provlog`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use roster_store::{LogQuery, Outcome, ProvisioningEntry, StatusClass};
use time::OffsetDateTime;

use super::super::view::{
    self, fmt_ago, fmt_when, options, render, tenant_href, Chrome, FormState, Opt, Pager, TabId,
};
use super::super::{ConsoleError, Session};
use super::{group_href, param, user_href, Params};
use crate::ops::FieldError;
use crate::provlog::Reader;
use crate::AppState;

/// Rows per page of the log.
const LOG_PAGE: u64 = 50;
/// Longest request body shown, in bytes.
const MAX_BODY: usize = 4000;

/// One log row as the page shows it.
pub struct EntryRow {
    pub(super) at: String,
    pub(super) at_iso: String,
    pub(super) ago: String,
    pub(super) method: String,
    pub(super) path: String,
    pub(super) status: u16,
    pub(super) ok: bool,
    pub(super) who: String,
    pub(super) who_href: Option<String>,
    /// What `who_href` points at (`User` or `Group`, and its id), to check that it exists.
    target: Option<(&'static str, String)>,
    pub(super) changed: String,
    pub(super) detail: Option<String>,
    pub(super) hint: Option<String>,
    pub(super) request_id: String,
    pub(super) duration_ms: i64,
    pub(super) scim_type: Option<String>,
    pub(super) token_prefix: Option<String>,
    pub(super) user_agent: Option<String>,
    pub(super) source_addr: Option<String>,
    pub(super) body: Option<String>,
    /// How many requests the row stands for (a run of the same failure: more than 1).
    pub(super) count: usize,
    /// When the oldest request of the run arrived (`06:24`, UTC).
    pub(super) since: String,
    /// The run's other requests, newest first.
    pub(super) more: Vec<EntryRow>,
}

/// Who reads the page's hints: a setup-link session is the customer's IT admin.
pub(super) fn reader_of(session: &Session) -> Reader {
    if session.is_operator() {
        Reader::Operator
    } else {
        Reader::ItAdmin
    }
}

/// The hint of a failed request, worded for `reader` (the stored one is the operator's).
fn hint_of(e: &ProvisioningEntry, reader: Reader) -> Option<String> {
    match reader {
        Reader::Operator => e.hint.clone(),
        Reader::ItAdmin => e.hint.as_ref().and_then(|_| {
            crate::provlog::hint_for(
                reader,
                e.status,
                e.scim_type.as_deref(),
                e.name.as_deref(),
                e.detail.as_deref(),
            )
        }),
    }
}

/// The row of `e`, its hint worded for `reader`.
pub fn entry_row(
    tenant: &str,
    e: &ProvisioningEntry,
    now: OffsetDateTime,
    reader: Reader,
) -> EntryRow {
    // A 404 names an id that does not exist: never a link to it.
    let target = match (e.resource_type.as_deref(), &e.resource_id) {
        _ if e.status == 404 => None,
        (Some("User"), Some(id)) => Some(("User", id.clone())),
        (Some("Group"), Some(id)) => Some(("Group", id.clone())),
        _ => None,
    };
    let who_href = target.as_ref().map(|(kind, id)| {
        if *kind == "User" {
            user_href(tenant, id)
        } else {
            group_href(tenant, id)
        }
    });
    let body = e.body.as_ref().map(|b| {
        let mut s = serde_json::to_string_pretty(b).unwrap_or_default();
        if s.len() > MAX_BODY {
            let mut cut = MAX_BODY;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push_str("\n… (cut)");
        }
        s
    });
    EntryRow {
        at: fmt_when(e.at),
        at_iso: crate::ops::fmt_time(e.at),
        ago: fmt_ago(e.at, now),
        method: e.method.clone(),
        path: e.path.clone(),
        status: e.status,
        ok: e.status < 400,
        who: e
            .name
            .clone()
            .or_else(|| e.resource_id.clone())
            .unwrap_or_default(),
        who_href,
        target,
        changed: e.changed.join(", "),
        detail: e.detail.clone(),
        hint: hint_of(e, reader),
        request_id: e.request_id.clone(),
        duration_ms: e.duration_ms,
        scim_type: e.scim_type.clone(),
        token_prefix: e.token_prefix.clone(),
        user_agent: e.user_agent.clone(),
        source_addr: e.source_addr.clone(),
        body,
        count: 1,
        since: fmt_hm(e.at),
        more: Vec::new(),
    }
}

/// Groups the rows (newest first) of `entries`: consecutive failures with the same status,
/// scimType and hint become one row (the newest, with `count`, `since` and the others in
/// `more`: "12 × 401 since 06:24, same cause", the hint once); successes stay one row each.
pub fn group_rows(
    tenant: &str,
    entries: &[ProvisioningEntry],
    now: OffsetDateTime,
    reader: Reader,
) -> Vec<EntryRow> {
    let mut rows: Vec<(EntryRow, &ProvisioningEntry)> = Vec::new();
    for e in entries {
        if let Some((row, head)) = rows.last_mut() {
            let same = e.status >= 400
                && head.status == e.status
                && head.scim_type == e.scim_type
                && head.hint == e.hint;
            if same {
                row.count += 1;
                row.since = fmt_hm(e.at);
                row.more.push(entry_row(tenant, e, now, reader));
                continue;
            }
        }
        rows.push((entry_row(tenant, e, now, reader), e));
    }
    rows.into_iter().map(|(r, _)| r).collect()
}

/// Drops the links of rows whose user or group no longer exists (erased since, or never
/// created): text, never a link to a 404. One read per distinct id on the page.
pub(super) async fn unlink_missing(
    state: &AppState,
    tenant: &str,
    rows: &mut [EntryRow],
) -> Result<(), ConsoleError> {
    let mut missing = std::collections::HashSet::new();
    let mut checked = std::collections::HashSet::new();
    let mut keys: Vec<(&'static str, String)> = Vec::new();
    for r in rows.iter() {
        keys.extend(r.target.clone());
        for m in &r.more {
            keys.extend(m.target.clone());
        }
    }
    for key in keys {
        if !checked.insert(key.clone()) {
            continue;
        }
        let exists = if key.0 == "User" {
            state.store.get_app_user(tenant, &key.1).await?.is_some()
        } else {
            state.store.get_app_group(tenant, &key.1).await?.is_some()
        };
        if !exists {
            missing.insert(key);
        }
    }
    for row in rows.iter_mut() {
        if row.target.as_ref().is_some_and(|k| missing.contains(k)) {
            row.who_href = None;
        }
        for r in &mut row.more {
            if r.target.as_ref().is_some_and(|k| missing.contains(k)) {
                r.who_href = None;
            }
        }
    }
    Ok(())
}

/// `06:24` (UTC).
fn fmt_hm(t: OffsetDateTime) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// The status-class filter's options.
const CLASSES: [(&str, &str); 4] = [
    ("", "Any"),
    ("2xx", "2xx (succeeded)"),
    ("4xx", "4xx (refused)"),
    ("5xx", "5xx (server error)"),
];

/// The method filter's options.
const METHODS: [(&str, &str); 6] = [
    ("", "Any"),
    ("POST", "POST"),
    ("PUT", "PUT"),
    ("PATCH", "PATCH"),
    ("DELETE", "DELETE"),
    ("GET", "GET"),
];

#[derive(Template)]
#[template(path = "console/log.html")]
struct LogPage {
    chrome: Chrome,
    tenant_href: String,
    tenant_id: String,
    retention_days: u64,
    dropped: u64,
    since: String,
    until: String,
    outcome_options: Vec<Opt>,
    class_options: Vec<Opt>,
    method_options: Vec<Opt>,
    user: String,
    text: String,
    /// The CSV export of the same filters.
    csv_href: String,
    entries: Vec<EntryRow>,
    pager: Pager,
    /// The filter form's refused times, each at its field.
    form: FormState,
}

/// `2026-11-22T08:00` (an `<input type=datetime-local>`, taken as UTC) or RFC 3339.
fn parse_local(s: &str) -> Option<OffsetDateTime> {
    let full = match s.len() {
        16 => format!("{s}:00Z"),
        19 => format!("{s}Z"),
        _ => s.to_owned(),
    };
    scim_proto::filter::parse_datetime(&full)
}

const OUTCOMES: [(&str, &str); 3] = [("", "Any"), ("success", "Succeeded"), ("failure", "Failed")];

/// `GET /console/t/{tenant}/log`. A time the filter cannot read answers the page (400) with
/// the filters as typed and the error at that field, and no rows.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, ConsoleError> {
    let t = session.tenant(&state, &tenant).await?;
    let mut errors = Vec::new();
    let mut time = |k: &str, label: &str| {
        let s = param(&p, k)?;
        let t = parse_local(s);
        if t.is_none() {
            errors.push(FieldError {
                field: Some(k.to_owned()),
                message: format!(
                    "\"{label}\" must be a date and time such as 2026-01-31T09:00, not {s:?}."
                ),
            });
        }
        t
    };
    let since = time("since", "From");
    let until = time("until", "To");
    let form = FormState::refused("", [], errors).with_lead("Nothing is listed");
    let outcome_s = param(&p, "outcome").unwrap_or("");
    let outcome = match outcome_s {
        "success" => Some(Outcome::Success),
        "failure" => Some(Outcome::Failure),
        _ => None,
    };
    let user = param(&p, "user").unwrap_or("").to_owned();
    let text = param(&p, "text").unwrap_or("").to_owned();
    let class_s = param(&p, "status").unwrap_or("");
    let method_s = param(&p, "method").unwrap_or("");
    let before = param(&p, "before").and_then(|s| s.parse::<i64>().ok());
    let after = param(&p, "after")
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|_| before.is_none());
    let query = LogQuery {
        since,
        until,
        outcome,
        name: Some(user.clone()).filter(|u| !u.is_empty()),
        method: METHODS
            .iter()
            .find(|(v, _)| !v.is_empty() && *v == method_s)
            .map(|(v, _)| (*v).to_owned()),
        status_class: StatusClass::parse(class_s),
        text: Some(text.clone()).filter(|t| !t.is_empty()),
        limit: LOG_PAGE,
        ..LogQuery::default()
    };
    // A refused filter lists nothing rather than rows the filter did not ask for.
    let (entries, dropped, more) = if form.is_refused() {
        (Vec::new(), 0, false)
    } else {
        // One more row than shown tells whether another page follows in that direction.
        let probe = LogQuery {
            before,
            after,
            limit: LOG_PAGE + 1,
            ..query.clone()
        };
        let mut entries = state.store.list_provisioning(&t.id, &probe).await?;
        let more = entries.len() as u64 > LOG_PAGE;
        entries.truncate(usize::try_from(LOG_PAGE).unwrap_or(usize::MAX));
        if after.is_some() {
            // Read oldest first from the cursor: shown newest first.
            entries.reverse();
        }
        // Dropped rows are counted per minute: those of the minutes in the period shown.
        let dropped = state.store.count_dropped(&t.id, since, until).await?;
        (entries, dropped, more)
    };
    let now = state.clock.now();
    let href = tenant_href(&t.id);
    let keep = [
        ("since", param(&p, "since").unwrap_or("")),
        ("until", param(&p, "until").unwrap_or("")),
        ("outcome", outcome_s),
        ("status", class_s),
        ("method", method_s),
        ("user", user.as_str()),
        ("text", text.as_str()),
    ];
    let link = |k: &str, id: i64| {
        let id = id.to_string();
        let mut pairs = keep.to_vec();
        pairs.push((k, &id));
        format!("{href}/log?{}", view::query(&pairs))
    };
    // Older: more rows below when reading backwards (or any page reached from newer ones).
    let older = entries
        .last()
        .filter(|_| after.is_some() || more)
        .map(|last| link("before", last.id));
    let newer = entries
        .first()
        .filter(|_| {
            if after.is_some() {
                more
            } else {
                before.is_some()
            }
        })
        .map(|first| link("after", first.id));
    let pager = Pager {
        first: (before.is_some() || after.is_some())
            .then(|| format!("{href}/log?{}", view::query(&keep))),
        prev: newer,
        next: older,
        next_label: "Older requests",
        summary: view::shown(entries.len(), "request"),
    };
    let status = if form.is_refused() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut rows = group_rows(&t.id, &entries, now, reader_of(&session));
    unlink_missing(&state, &t.id, &mut rows).await?;
    let html = render(&LogPage {
        chrome: Chrome::tenant(&session, &t, TabId::Log, "Provisioning log"),
        form,
        tenant_href: href,
        tenant_id: t.id.clone(),
        retention_days: state.settings.log_retention.as_secs() / 86_400,
        dropped,
        since: param(&p, "since")
            .map(|s| s.get(..16).unwrap_or(s))
            .unwrap_or("")
            .to_owned(),
        until: param(&p, "until")
            .map(|s| s.get(..16).unwrap_or(s))
            .unwrap_or("")
            .to_owned(),
        outcome_options: options(&OUTCOMES, outcome_s),
        class_options: options(&CLASSES, class_s),
        method_options: options(&METHODS, method_s),
        csv_href: format!("{}/log.csv?{}", tenant_href(&t.id), view::query(&keep)),
        user,
        text,
        entries: rows,
        pager,
    })?;
    Ok((status, html).into_response())
}

/// `GET /console/t/{tenant}/log.csv`: every logged request matching the log's filters,
/// newest first, streamed 500 at a time. A time the filter cannot read is a 400.
pub async fn csv(
    State(state): State<AppState>,
    session: Session,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, ConsoleError> {
    let t = session.tenant(&state, &tenant).await?;
    let time = |k: &str| -> Result<Option<OffsetDateTime>, ConsoleError> {
        match param(&p, k) {
            None => Ok(None),
            Some(s) => parse_local(s).map(Some).ok_or_else(|| {
                ConsoleError::Invalid(format!(
                    "The time filter must be a date and time such as 2026-01-31T09:00, not {s:?}."
                ))
            }),
        }
    };
    let method_s = param(&p, "method").unwrap_or("");
    let query = LogQuery {
        since: time("since")?,
        until: time("until")?,
        outcome: match param(&p, "outcome") {
            Some("success") => Some(Outcome::Success),
            Some("failure") => Some(Outcome::Failure),
            _ => None,
        },
        name: param(&p, "user").map(str::to_owned),
        method: METHODS
            .iter()
            .find(|(v, _)| !v.is_empty() && *v == method_s)
            .map(|(v, _)| (*v).to_owned()),
        status_class: param(&p, "status").and_then(StatusClass::parse),
        text: param(&p, "text").map(str::to_owned),
        limit: super::lists::EXPORT_BATCH,
        ..LogQuery::default()
    };
    let header = super::lists::csv_line(&[
        "at",
        "method",
        "path",
        "status",
        "userOrGroup",
        "resourceId",
        "scimType",
        "detail",
        "hint",
        "requestId",
        "durationMs",
    ]);
    let store = state.store.clone();
    let tenant_id = t.id.clone();
    Ok(super::lists::csv_response(
        &format!("{}-log.csv", super::users::file_part(&t.id)),
        header,
        move |cursor| {
            let store = store.clone();
            let tenant_id = tenant_id.clone();
            let mut query = query.clone();
            query.before = cursor.and_then(|c| c.parse::<i64>().ok());
            async move {
                let rows = store
                    .list_provisioning(&tenant_id, &query)
                    .await
                    .map_err(|e| e.to_string())?;
                let next = rows
                    .last()
                    .filter(|_| rows.len() as u64 == query.limit)
                    .map(|e| e.id.to_string());
                let lines = rows
                    .iter()
                    .map(|e| {
                        super::lists::csv_line(&[
                            crate::ops::fmt_time(e.at),
                            e.method.clone(),
                            e.path.clone(),
                            e.status.to_string(),
                            e.name.clone().unwrap_or_default(),
                            e.resource_id.clone().unwrap_or_default(),
                            e.scim_type.clone().unwrap_or_default(),
                            e.detail.clone().unwrap_or_default(),
                            e.hint.clone().unwrap_or_default(),
                            e.request_id.clone(),
                            e.duration_ms.to_string(),
                        ])
                    })
                    .collect();
                Ok((lines, next))
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_are_utc() {
        let t = parse_local("2026-01-31T09:00").unwrap();
        assert_eq!((t.hour(), t.minute()), (9, 0));
        assert!(parse_local("2026-01-31T09:00:30").is_some());
        assert!(parse_local("2026-01-31T09:00:00+02:00").is_some());
        assert!(parse_local("yesterday").is_none());
        assert!(parse_local("é").is_none());
    }
}
