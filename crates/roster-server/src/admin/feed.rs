//! The event feed (`GET /tenants/{tenant}/events`, with long polling) and the reconciliation
//! snapshot (`GET /tenants/{tenant}/snapshot`).

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use roster_store::{Event, StoredResource};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{fmt_time, page_limit, require_tenant, AdminAuth, ApiError, ApiPath, ApiQuery};
use crate::webhooks::payload;
use crate::AppState;

/// Longest long poll, in seconds.
pub const MAX_WAIT_SECS: u64 = 30;
/// While long polling, the store is re-read at least this often, because writes by another
/// process (the CLI) do not wake this one.
const REPOLL: Duration = Duration::from_millis(500);

/// Query of the event feed.
#[derive(Debug, Deserialize)]
pub struct FeedQuery {
    /// Return events with `seq > after` (default 0: from the beginning).
    pub after: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u64>,
    /// Seconds to wait for an event when there is none yet (0–30; default 0).
    pub wait: Option<u64>,
    /// Comma-separated event types to return (default: all).
    pub types: Option<String>,
}

/// Reads events after `after`, waiting up to `wait` for the first one.
///
/// # Errors
/// When the store fails.
pub async fn read_feed(
    state: &AppState,
    tenant: &str,
    after: i64,
    types: &[String],
    limit: u64,
    wait: Duration,
) -> Result<Vec<Event>, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut rx = state.store.subscribe();
    loop {
        // Mark the current value seen *before* reading, so a commit between the read and the
        // wait still wakes us.
        rx.borrow_and_update();
        let events = state.store.list_events(tenant, after, types, limit).await?;
        let now = tokio::time::Instant::now();
        if !events.is_empty() || now >= deadline {
            return Ok(events);
        }
        let nap = (deadline - now).min(REPOLL);
        let _ = tokio::time::timeout(nap, rx.changed()).await;
    }
}

/// `GET /api/v1/tenants/{tenant}/events`
///
/// # Errors
/// 401, 404 (unknown tenant), 400 (bad parameters).
pub async fn events(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::invalid("after must be 0 or a seq"));
    }
    let wait = q.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(ApiError::invalid(format!(
            "wait must be at most {MAX_WAIT_SECS} seconds"
        )));
    }
    let types = parse_types(q.types.as_deref())?;
    let events = read_feed(
        &state,
        &tenant,
        after,
        &types,
        page_limit(q.limit)?,
        Duration::from_secs(wait),
    )
    .await?;
    let next = events.last().map_or(after, |e| e.seq);
    Ok(Json(json!({
        "events": events.iter().map(payload).collect::<Vec<_>>(),
        "next_after": next,
    })))
}

/// Parses a comma-separated list of event types, refusing unknown ones.
///
/// # Errors
/// 400 naming the unknown type.
pub fn parse_types(list: Option<&str>) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for t in list
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        if roster_store::EventType::parse(t).is_none() {
            return Err(ApiError::invalid(format!(
                "unknown event type \"{t}\"; see docs/events.md for the list"
            )));
        }
        out.push(t.to_owned());
    }
    Ok(out)
}

fn resource_json(r: &StoredResource, members: Option<&[String]>) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(r.id));
    if let Value::Object(doc) = &r.doc {
        for (k, v) in doc {
            m.insert(k.clone(), v.clone());
        }
    }
    if let Some(ms) = members {
        m.insert(
            "members".into(),
            Value::Array(ms.iter().map(|id| json!({"value": id})).collect()),
        );
    }
    m.insert(
        "meta".into(),
        json!({
            "resourceType": r.kind.as_str(),
            "created": fmt_time(r.created),
            "lastModified": fmt_time(r.last_modified),
            "version": crate::service::etag(r.version),
        }),
    );
    Value::Object(m)
}

/// `GET /api/v1/tenants/{tenant}/snapshot`: every live User and Group (with member ids) and the
/// `seq` they reflect, read in one transaction. Continue the feed with `after=seq`.
///
/// # Errors
/// 401, 404.
pub async fn snapshot(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let snap = state.store.snapshot(&tenant).await?;
    Ok(Json(json!({
        "tenant": tenant,
        "seq": snap.seq,
        "users": snap.users.iter().map(|u| resource_json(u, None)).collect::<Vec<_>>(),
        "groups": snap
            .groups
            .iter()
            .map(|(g, m)| resource_json(g, Some(m)))
            .collect::<Vec<_>>(),
    })))
}
