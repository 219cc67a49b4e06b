//! The provisioning log (`GET /tenants/{tenant}/provisioning-log`, a row per write and per
//! failure), its read counts (`GET /tenants/{tenant}/provisioning-log/reads`, successful reads
//! per route and minute, with the rows the log had to drop) and the audit log
//! (`GET /audit-log`): read-only through the API.

use axum::extract::State;
use axum::Json;
use roster_store::{
    AuditEntry, LogQuery, Outcome, ProvisioningEntry, ReadCount, ReadQuery, StatusClass,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    fmt_time, page_limit, parse_time, require_tenant, AdminAuth, ApiError, ApiPath, ApiQuery,
};
use crate::AppState;

/// How the API and `roster log --json` show a provisioning-log row.
#[must_use]
pub fn entry_json(e: &ProvisioningEntry) -> Value {
    json!({
        "id": e.id,
        "at": fmt_time(e.at),
        "tenant": e.tenant_id,
        "request_id": e.request_id,
        "idp": e.idp,
        "user_agent": e.user_agent,
        "method": e.method,
        "path": e.path,
        "resource_type": e.resource_type,
        "resource_id": e.resource_id,
        "name": e.name,
        "status": e.status,
        "outcome": if e.status < 400 { "success" } else { "failure" },
        "scim_type": e.scim_type,
        "detail": e.detail,
        "hint": e.hint,
        "changed": e.changed,
        "duration_ms": e.duration_ms,
        "body": e.body,
        "source_addr": e.source_addr,
        "token_prefix": e.token_prefix,
    })
}

/// How the API shows an audit entry.
#[must_use]
pub fn audit_json(e: &AuditEntry) -> Value {
    json!({
        "id": e.id,
        "at": fmt_time(e.at),
        "actor": e.actor,
        "action": e.action,
        "tenant": e.tenant_id,
        "target": e.target,
        "details": e.details,
    })
}

/// Query of the provisioning log.
#[derive(Debug, Deserialize)]
pub struct ProvisioningQuery {
    /// Rows at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Rows before this RFC 3339 time.
    pub until: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// Rows about this resource id.
    pub resource_id: Option<String>,
    /// Rows about this userName (or Group displayName), case-insensitive.
    pub user_name: Option<String>,
    /// HTTP method.
    pub method: Option<String>,
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    pub status_class: Option<String>,
    /// Rows whose path, userName, request id or detail contains this, case-insensitively.
    pub text: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<u64>,
}

fn parse_cursor(c: Option<&str>) -> Result<Option<i64>, ApiError> {
    c.filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                ApiError::invalid("cursor must be a next_cursor value from a previous page")
            })
        })
        .transpose()
}

/// `GET /api/v1/tenants/{tenant}/provisioning-log`: newest first.
///
/// # Errors
/// 400, 401, 404.
pub async fn provisioning_log(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<ProvisioningQuery>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let outcome = match q.outcome.as_deref() {
        None => None,
        Some("success") => Some(Outcome::Success),
        Some("failure") => Some(Outcome::Failure),
        Some(o) => {
            return Err(ApiError::invalid(format!(
                "outcome must be \"success\" or \"failure\", not \"{o}\""
            )))
        }
    };
    let status_class = q
        .status_class
        .as_deref()
        .map(|c| {
            StatusClass::parse(c).ok_or_else(|| {
                ApiError::invalid(format!(
                    "status_class must be \"2xx\", \"3xx\", \"4xx\" or \"5xx\", not \"{c}\""
                ))
            })
        })
        .transpose()?;
    let page = page_limit(q.limit)?;
    let query = LogQuery {
        since: parse_time("since", q.since.as_deref())?,
        until: parse_time("until", q.until.as_deref())?,
        outcome,
        resource_id: q.resource_id,
        name: q.user_name,
        method: q.method,
        status_class,
        text: q.text,
        before: parse_cursor(q.cursor.as_deref())?,
        after: None,
        limit: page,
    };
    let rows = state.store.list_provisioning(&tenant, &query).await?;
    let next = (rows.len() as u64 == page)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(json!({
        "entries": rows.iter().map(entry_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// How the API and `roster log --reads --json` show a read count.
#[must_use]
pub fn read_json(r: &ReadCount) -> Value {
    json!({
        "tenant": r.tenant_id,
        "route": r.route,
        "minute": fmt_time(r.minute),
        "count": r.count,
        "last_status": r.last_status,
        "last_at": fmt_time(r.last_at),
    })
}

/// Query of the read counts.
#[derive(Debug, Deserialize)]
pub struct ReadsQuery {
    /// Minutes starting at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Minutes starting before this RFC 3339 time.
    pub until: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<u64>,
}

/// `GET /api/v1/tenants/{tenant}/provisioning-log/reads`: successful reads counted per route
/// and minute, newest minute first, and how many log rows were dropped in the same period.
///
/// # Errors
/// 400, 401, 404.
pub async fn read_counts(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReadsQuery>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let page = page_limit(q.limit)?;
    let since = parse_time("since", q.since.as_deref())?;
    let until = parse_time("until", q.until.as_deref())?;
    let query = ReadQuery {
        since,
        until,
        before: parse_cursor(q.cursor.as_deref())?,
        limit: page,
    };
    let rows = state.store.list_read_counts(&tenant, &query).await?;
    let dropped = state.store.count_dropped(&tenant, since, until).await?;
    let next = (rows.len() as u64 == page)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(json!({
        "entries": rows.iter().map(read_json).collect::<Vec<_>>(),
        "next_cursor": next,
        "dropped": dropped,
    })))
}

/// `GET /api/v1/tenants/{tenant}/health`: the tenant's health at a glance (the figures of the
/// tenants list) and its requests and failures per hour over the last 7 days, oldest hour
/// first, the current hour last (168 hours; zeros where nothing happened).
///
/// # Errors
/// 401, 404.
pub async fn tenant_health(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let now = state.clock.now();
    let Some(h) = state.store.tenant_health(&tenant, now).await? else {
        return Err(ApiError::not_found(format!("no tenant \"{tenant}\"")));
    };
    let since = roster_store::hour_of(now) - time::Duration::hours(7 * 24 - 1);
    let hours = state.store.tenant_hourly(&tenant, since, now).await?;
    let opt_time = |t: Option<time::OffsetDateTime>| t.map(fmt_time);
    Ok(Json(json!({
        "tenant": h.tenant_id,
        "last_request": h.last_request.map(|(at, status)| json!({
            "at": fmt_time(at),
            "status": status,
        })),
        "last_success_at": opt_time(h.last_success_at),
        "requests_24h": h.requests_24h,
        "failures_24h": h.failures_24h,
        "token_expires_at": opt_time(h.token_expires_at),
        "guard": {
            "holding": h.guard_tripped_at.is_some(),
            "tripped_at": opt_time(h.guard_tripped_at),
            "held_users": h.guard_held_users,
        },
        "webhooks": {
            "failing_streams": h.webhooks.failing,
            "max_attempts": h.webhooks.max_attempts,
            "last_error": h.webhooks.last_error,
        },
        "hours": hours.iter().map(|c| json!({
            "hour": fmt_time(c.hour),
            "requests": c.requests,
            "failures": c.failures,
            "unauthorized": c.unauthorized,
            "server_errors": c.server_errors,
        })).collect::<Vec<_>>(),
    })))
}

/// Query of the audit log.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<u64>,
}

/// `GET /api/v1/audit-log`: newest first. There is no way to change or delete entries.
///
/// # Errors
/// 400, 401.
pub async fn audit_log(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = page_limit(q.limit)?;
    let rows = state
        .store
        .list_audit(parse_cursor(q.cursor.as_deref())?, page)
        .await?;
    let next = (rows.len() as u64 == page)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(json!({
        "entries": rows.iter().map(audit_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}
