//! The event feed (`GET /tenants/{tenant}/events`, with long polling) and the reconciliation
//! snapshot (`GET /tenants/{tenant}/snapshot`).

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use roster_store::{Event, SnapshotPart, StoreError, StoredResource};
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
        // Spaces only, as the documented grammar says: other white space is not a separator
        // and makes the type unknown (schemathesis sent a vertical tab).
        .map(|t| t.trim_matches(' '))
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

/// Rows per statement while a snapshot is read.
const SNAPSHOT_PAGE: u64 = 1000;

/// `GET /api/v1/tenants/{tenant}/snapshot`: every live User and Group (with member ids) and the
/// `seq` they reflect, read in one transaction. Continue the feed with `after=seq`.
///
/// The body is streamed as the store reads it, page by page, so that a tenant of any size is
/// served in bounded memory: `{"tenant", "seq", "users": [...], "groups": [...]}`, the same
/// document as when it was built whole. A store failure after the first bytes cuts the
/// response short (the status was sent already); a client must treat a body that is not
/// complete JSON as a failed request.
///
/// # Errors
/// 401, 404.
pub async fn snapshot(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Response, ApiError> {
    require_tenant(&state, &tenant).await?;
    let snap = state.store.snapshot_stream(&tenant, SNAPSHOT_PAGE).await?;
    let mut start =
        serde_json::to_vec(&json!({"tenant": tenant, "seq": snap.seq})).unwrap_or_default();
    start.pop(); // the closing brace
    start.extend_from_slice(b",\"users\":[");
    let body = futures::stream::once(async move { Ok::<_, StoreError>(start) }).chain(
        futures::stream::unfold(
            (snap.parts, SnapshotWriter::default(), false),
            |(mut parts, mut w, done)| async move {
                if done {
                    return None;
                }
                match parts.next().await {
                    Some(Ok(part)) => {
                        let bytes = w.part(part);
                        Some((Ok(bytes), (parts, w, false)))
                    }
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "reading a snapshot failed while streaming it");
                        Some((Err(e), (parts, w, true)))
                    }
                    None => {
                        let bytes = w.finish();
                        Some((Ok(bytes), (parts, w, true)))
                    }
                }
            },
        ),
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(body),
    )
        .into_response())
}

/// Turns snapshot parts into the JSON text of the snapshot document, after its opening
/// `{"tenant":…,"seq":…,"users":[`.
#[derive(Default)]
struct SnapshotWriter {
    /// A User was written (the next needs a comma).
    any_user: bool,
    /// The `groups` array was opened.
    in_groups: bool,
    /// What closes the open Group: the end of its `members`, and its `meta`.
    close_group: Option<Vec<u8>>,
    /// A member of the open Group was written.
    any_member: bool,
}

impl SnapshotWriter {
    fn part(&mut self, part: SnapshotPart) -> Vec<u8> {
        let mut out = Vec::new();
        match part {
            SnapshotPart::Users(users) => {
                for u in &users {
                    if std::mem::replace(&mut self.any_user, true) {
                        out.push(b',');
                    }
                    out.extend(serde_json::to_vec(&resource_json(u, None)).unwrap_or_default());
                }
            }
            SnapshotPart::Group(g) => {
                if let Some(close) = self.close_group.take() {
                    out.extend(close);
                    out.push(b',');
                } else if !std::mem::replace(&mut self.in_groups, true) {
                    out.extend_from_slice(b"],\"groups\":[");
                }
                // The document without `meta`, then `members`, then `meta`: the order of
                // `resource_json`.
                let mut doc = match resource_json(&g, None) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                let meta = doc.shift_remove("meta");
                let head_empty = doc.is_empty();
                let mut head = serde_json::to_vec(&Value::Object(doc)).unwrap_or_default();
                head.pop(); // the closing brace
                out.extend(head);
                if !head_empty {
                    out.push(b',');
                }
                out.extend_from_slice(b"\"members\":[");
                let mut close = b"]".to_vec();
                if let Some(meta) = meta {
                    close.extend_from_slice(b",\"meta\":");
                    close.extend(serde_json::to_vec(&meta).unwrap_or_default());
                }
                close.push(b'}');
                self.close_group = Some(close);
                self.any_member = false;
            }
            SnapshotPart::Members(ids) => {
                for id in &ids {
                    if std::mem::replace(&mut self.any_member, true) {
                        out.push(b',');
                    }
                    out.extend(serde_json::to_vec(&json!({"value": id})).unwrap_or_default());
                }
            }
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(close) = self.close_group.take() {
            out.extend(close);
        }
        if !self.in_groups {
            out.extend_from_slice(b"],\"groups\":[");
        }
        out.extend_from_slice(b"]}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_proto::schema::ResourceKind;

    fn res(kind: ResourceKind, id: &str, doc: Value) -> StoredResource {
        StoredResource {
            id: id.into(),
            kind,
            doc,
            version: 3,
            created: time::OffsetDateTime::UNIX_EPOCH,
            last_modified: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn write(parts: Vec<SnapshotPart>) -> Value {
        let mut w = SnapshotWriter::default();
        let mut out = br#"{"tenant":"t","seq":9,"users":["#.to_vec();
        for p in parts {
            out.extend(w.part(p));
        }
        out.extend(w.finish());
        serde_json::from_slice(&out).unwrap()
    }

    /// The streamed text is the document the snapshot was before it streamed.
    #[test]
    fn streamed_snapshot_is_the_whole_document() {
        let u1 = res(ResourceKind::User, "u1", json!({"userName": "a"}));
        let u2 = res(ResourceKind::User, "u2", json!({"userName": "b"}));
        let g1 = res(ResourceKind::Group, "g1", json!({"displayName": "G"}));
        let g2 = res(ResourceKind::Group, "g2", json!({"displayName": "E"}));
        let got = write(vec![
            SnapshotPart::Users(vec![u1.clone()]),
            SnapshotPart::Users(vec![u2.clone()]),
            SnapshotPart::Group(g1.clone()),
            SnapshotPart::Members(vec!["u1".into()]),
            SnapshotPart::Members(vec!["u2".into()]),
            SnapshotPart::Group(g2.clone()),
        ]);
        let want = json!({
            "tenant": "t",
            "seq": 9,
            "users": [resource_json(&u1, None), resource_json(&u2, None)],
            "groups": [
                resource_json(&g1, Some(&["u1".to_owned(), "u2".to_owned()])),
                resource_json(&g2, Some(&[])),
            ],
        });
        assert_eq!(got, want);
        // Key order too: `members` before `meta`, as before.
        assert_eq!(
            got["groups"][0]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["id", "displayName", "members", "meta"]
        );
        assert_eq!(
            write(vec![]),
            json!({"tenant": "t", "seq": 9, "users": [], "groups": []})
        );
        assert_eq!(
            write(vec![SnapshotPart::Group(g2.clone())])["groups"][0]["members"],
            json!([])
        );
    }
}

#[cfg(test)]
mod type_list_tests {
    use super::parse_types;

    #[test]
    fn types_are_separated_by_commas_and_spaces_only() {
        assert_eq!(
            parse_types(Some(" user.created , group.deleted,")).unwrap(),
            ["user.created", "group.deleted"]
        );
        assert!(parse_types(Some("")).unwrap().is_empty());
        assert!(parse_types(Some("\u{b}")).is_err());
        assert!(parse_types(Some("user.created\t")).is_err());
    }
}
