//! The provisioning log: every write and every failed request from the identity provider,
//! filtered by time, outcome and user, newest first; failures carry their SCIM error and what
//! to do about it. Successful reads are counted, not listed (see `crate::provlog`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use roster_store::{LogQuery, Outcome, ProvisioningEntry};
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
    let who_href = match (e.resource_type.as_deref(), &e.resource_id) {
        (Some("User"), Some(id)) => Some(user_href(tenant, id)),
        (Some("Group"), Some(id)) => Some(group_href(tenant, id)),
        _ => None,
    };
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
    }
}

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
    user: String,
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
    let before = param(&p, "before").and_then(|s| s.parse::<i64>().ok());
    // A refused filter lists nothing rather than rows the filter did not ask for.
    let (entries, dropped) = if form.is_refused() {
        (Vec::new(), 0)
    } else {
        let entries = state
            .store
            .list_provisioning(
                &t.id,
                &LogQuery {
                    since,
                    until,
                    outcome,
                    name: Some(user.clone()).filter(|u| !u.is_empty()),
                    before,
                    limit: LOG_PAGE,
                    ..LogQuery::default()
                },
            )
            .await?;
        // Dropped rows are counted per minute: those of the minutes in the period shown.
        let dropped = state.store.count_dropped(&t.id, since, until).await?;
        (entries, dropped)
    };
    let now = state.clock.now();
    let href = tenant_href(&t.id);
    let keep = [
        ("since", param(&p, "since").unwrap_or("")),
        ("until", param(&p, "until").unwrap_or("")),
        ("outcome", outcome_s),
        ("user", user.as_str()),
    ];
    let older = entries
        .last()
        .filter(|_| entries.len() as u64 == LOG_PAGE)
        .map(|last| {
            let b = last.id.to_string();
            let mut pairs = keep.to_vec();
            pairs.push(("before", &b));
            format!("{href}/log?{}", view::query(&pairs))
        });
    let pager = Pager {
        first: before.map(|_| format!("{href}/log?{}", view::query(&keep))),
        prev: None,
        next: older,
        next_label: "Older requests",
        summary: view::shown(entries.len(), "request"),
    };
    let status = if form.is_refused() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
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
        user,
        entries: entries
            .iter()
            .map(|e| entry_row(&t.id, e, now, reader_of(&session)))
            .collect(),
        pager,
    })?;
    Ok((status, html).into_response())
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
