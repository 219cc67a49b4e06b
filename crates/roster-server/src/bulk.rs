//! `POST /Bulk` (RFC 7644 §3.7): many SCIM writes in one request.
//!
//! Each operation is dispatched, as an HTTP request of its own, through the same SCIM routes
//! and provisioning-log middleware as a single request: the same token check and rate limits,
//! the same dialect normaliser, validation, ETag check (`version` becomes `If-Match`), events
//! and log row. Only the ordering, the `bulkId` references and `failOnErrors` are Bulk's own.
//!
//! `bulkId` references ("bulkId:qwerty" as a whole string value in `data`, or as the id in
//! `path`) are resolved to the ids their POSTs created. An operation runs once every POST it
//! references has run, so a reference may point forward; references that form a cycle are
//! refused with 409 (RFC 7644 §3.7.3 allows that instead of resolving them), as is a reference
//! to a bulkId no POST defines or whose POST failed.

use std::collections::{HashMap, HashSet};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use scim_proto::error::ScimType;
use scim_proto::ScimError;
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use crate::auth::Authed;
use crate::body::ScimBody;
use crate::error::{scim_json, HttpError};
use crate::AppState;

/// The schema URN of a Bulk request.
pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// The schema URN of a Bulk response.
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// Headers of the Bulk request that every operation carries: the token (each operation is
/// authenticated and rate-limited as a request of its own), the client's identity for the log
/// and the proxy's forwarded address.
const CARRIED: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::USER_AGENT,
    HeaderName::from_static("x-forwarded-for"),
];

/// One operation of the request, checked.
#[derive(Debug, Clone)]
struct Operation {
    method: Method,
    bulk_id: Option<String>,
    version: Option<String>,
    path: String,
    data: Option<Value>,
    /// The bulkIds it references.
    needs: Vec<String>,
}

/// `POST /scim/v2/{tenant}/Bulk`. Any other method is a 405, after the token check.
///
/// # Errors
/// 400 for a malformed request, 413 beyond `maxOperations` (or the body limit, which is the
/// advertised `maxPayloadSize`); each operation's own outcome is in the 200 answer.
pub async fn handler(
    State(state): State<AppState>,
    auth: Authed,
    req: Request,
) -> Result<Response, HttpError> {
    if req.method() != Method::POST {
        return Err(HttpError::status(
            405,
            "the Bulk endpoint accepts POST only (RFC 7644 §3.7)",
        ));
    }
    let headers = req.headers().clone();
    // The client's address, for rate limits and the log (only that: the route's own
    // extensions, its path parameters among them, belong to the Bulk request).
    let peer = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .cloned();
    let ScimBody(body) = ScimBody::from_request(req, &state).await?;
    let (ops, fail_on_errors) = parse(&body, state.settings.bulk_max_operations)?;
    let dispatch = crate::scim_service(state.clone());
    let base = format!("/scim/v2/{}", auth.tenant.id);
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("bulk")
        .to_owned();
    let carried: Vec<(HeaderName, HeaderValue)> = CARRIED
        .iter()
        .filter_map(|h| headers.get(h).map(|v| (h.clone(), v.clone())))
        .collect();

    let mut created: HashMap<String, String> = HashMap::new();
    let mut failed: HashSet<String> = HashSet::new();
    let mut done = vec![false; ops.len()];
    let mut results = Vec::with_capacity(ops.len());
    let mut errors = 0u64;
    let defined: HashSet<String> = ops.iter().filter_map(|o| o.bulk_id.clone()).collect();
    let mut settled = vec![0; ops.len()];
    while let Some(i) = next_runnable(&ops, &done, &mut settled, &defined, &created, &failed) {
        done[i] = true;
        let op = &ops[i];
        let outcome = match resolve(op, &created) {
            Err(e) => Outcome::error(e),
            Ok((path, data)) => {
                let mut sub = Request::builder()
                    .method(op.method.clone())
                    .uri(format!("{base}{path}"))
                    .header(header::CONTENT_TYPE, "application/scim+json")
                    .header("x-request-id", format!("{request_id}.{}", i + 1));
                for (h, v) in &carried {
                    sub = sub.header(h, v);
                }
                if let Some(v) = &op.version {
                    sub = sub.header(header::IF_MATCH, v.as_str());
                }
                let body = data.map_or_else(Body::empty, |d| Body::from(d.to_string()));
                match sub.body(body) {
                    Ok(mut sub) => {
                        if let Some(peer) = &peer {
                            sub.extensions_mut().insert(*peer);
                        }
                        let resp = dispatch.clone().oneshot(sub).await;
                        match resp {
                            Ok(resp) => Outcome::of(resp, &base, &path).await,
                            Err(never) => match never {},
                        }
                    }
                    Err(_) => Outcome::error(ScimError::invalid_value(format!(
                        "operation {}: path {:?} is not a valid URL path",
                        i + 1,
                        op.path
                    ))),
                }
            }
        };
        if outcome.status >= 400 {
            errors += 1;
            if let Some(id) = &op.bulk_id {
                failed.insert(id.clone());
            }
        } else if let (Some(bulk_id), Some(id)) = (&op.bulk_id, &outcome.id) {
            created.insert(bulk_id.clone(), id.clone());
        }
        results.push(outcome.render(op));
        if fail_on_errors.is_some_and(|n| errors >= n) {
            break;
        }
    }
    // What could not run: a cycle of references, or a reference to a failed POST.
    if fail_on_errors.is_none_or(|n| errors < n) {
        for (i, op) in ops.iter().enumerate() {
            if done[i] {
                continue;
            }
            let e = unrunnable(op, &failed);
            results.push(Outcome::error(e).render(op));
            errors += 1;
            if fail_on_errors.is_some_and(|n| errors >= n) {
                break;
            }
        }
    }
    Ok(scim_json(
        StatusCode::OK,
        &json!({"schemas": [BULK_RESPONSE_SCHEMA], "Operations": results}),
    ))
}

/// Checks the request: schema, `failOnErrors`, the operations (method, path, bulkId, data)
/// and their count; returns them with their references.
fn parse(body: &Value, max_operations: usize) -> Result<(Vec<Operation>, Option<u64>), HttpError> {
    let Some(obj) = body.as_object() else {
        return Err(ScimError::invalid_syntax("a Bulk request is a JSON object").into());
    };
    let get = |name: &str| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let schemas_ok = get("schemas").and_then(Value::as_array).is_some_and(|s| {
        s.iter().any(|u| {
            u.as_str()
                .is_some_and(|u| u.eq_ignore_ascii_case(BULK_REQUEST_SCHEMA))
        })
    });
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!(
            "a Bulk request's \"schemas\" must list {BULK_REQUEST_SCHEMA}"
        ))
        .into());
    }
    let fail_on_errors = match get("failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(n),
            _ => {
                return Err(ScimError::invalid_value(
                    "\"failOnErrors\" must be a whole number of at least 1",
                )
                .into())
            }
        },
    };
    let Some(list) = get("Operations").and_then(Value::as_array) else {
        return Err(ScimError::invalid_syntax(
            "a Bulk request needs \"Operations\": an array of operations",
        )
        .into());
    };
    if list.len() > max_operations {
        return Err(HttpError::status(
            413,
            format!(
                "this Bulk request has {} operations; the most one request may have is \
                 {max_operations} (maxOperations in /ServiceProviderConfig): split it",
                list.len()
            ),
        ));
    }
    let mut ops = Vec::with_capacity(list.len());
    let mut defined = HashSet::new();
    for (i, v) in list.iter().enumerate() {
        let op = operation(i + 1, v)?;
        if let Some(id) = &op.bulk_id {
            if !defined.insert(id.clone()) {
                return Err(ScimError::invalid_value(format!(
                    "operation {}: bulkId {id:?} is used by an earlier operation; each \
                     bulkId must be unique within the request",
                    i + 1
                ))
                .into());
            }
        }
        ops.push(op);
    }
    Ok((ops, fail_on_errors))
}

/// One operation, checked on its own.
fn operation(n: usize, v: &Value) -> Result<Operation, HttpError> {
    let bad =
        |m: String| -> HttpError { ScimError::invalid_value(format!("operation {n}: {m}")).into() };
    let Some(o) = v.as_object() else {
        return Err(bad("an operation is a JSON object".to_owned()));
    };
    let get = |name: &str| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let text = |name: &str| -> Result<Option<String>, HttpError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("\"{name}\" must be a string"))),
        }
    };
    let method = match text("method")?.map(|m| m.to_ascii_uppercase()).as_deref() {
        Some("POST") => Method::POST,
        Some("PUT") => Method::PUT,
        Some("PATCH") => Method::PATCH,
        Some("DELETE") => Method::DELETE,
        Some(other) => {
            return Err(bad(format!(
                "method {other:?} is not one Bulk runs; use POST, PUT, PATCH or DELETE"
            )))
        }
        None => return Err(bad("\"method\" is required".to_owned())),
    };
    let Some(path) = text("path")? else {
        return Err(bad("\"path\" is required".to_owned()));
    };
    let bulk_id = text("bulkId")?;
    if bulk_id.as_deref().is_some_and(str::is_empty) {
        return Err(bad("\"bulkId\" must not be empty".to_owned()));
    }
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or("").split('/').collect();
    let resource = matches!(segments.first(), Some(&("Users" | "Groups")));
    let shape_ok = resource
        && match (&method, segments.len()) {
            (&Method::POST, 1) => true,
            (&Method::POST, _) => false,
            (_, 2) => !segments[1].is_empty(),
            _ => false,
        };
    if !shape_ok || path.contains(['?', '#']) {
        return Err(bad(format!(
            "path {path:?} is not one Bulk runs: POST takes /Users or /Groups, PUT, PATCH and \
             DELETE take /Users/{{id}} or /Groups/{{id}}"
        )));
    }
    if method == Method::POST && bulk_id.is_none() {
        return Err(bad(
            "a POST needs a \"bulkId\" (RFC 7644 §3.7), so that its result can be matched"
                .to_owned(),
        ));
    }
    let data = get("data").filter(|d| !d.is_null()).cloned();
    if method != Method::DELETE && data.is_none() {
        return Err(bad(format!("a {method} needs \"data\"")));
    }
    let mut needs = Vec::new();
    let mut seen = HashSet::new();
    if let Some(id) = segments.get(1).and_then(|s| s.strip_prefix("bulkId:")) {
        seen.insert(id.to_owned());
        needs.push(id.to_owned());
    }
    if let Some(d) = &data {
        references(d, &mut needs, &mut seen);
    }
    Ok(Operation {
        method,
        bulk_id,
        version: text("version")?,
        path,
        data,
        needs,
    })
}

/// The bulkIds that `v` references (string values `bulkId:…`), each once, in order.
fn references(v: &Value, out: &mut Vec<String>, seen: &mut HashSet<String>) {
    match v {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:") {
                if seen.insert(id.to_owned()) {
                    out.push(id.to_owned());
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| references(v, out, seen)),
        Value::Object(m) => m.values().for_each(|v| references(v, out, seen)),
        _ => {}
    }
}

/// The first operation not yet run whose references are all settled: created, or (to be
/// refused at once) failed or defined by no POST; `None` when none is left that can run.
/// A settled reference stays settled, so `settled[i]` counts the leading references of
/// operation `i` already found settled and each is checked once: a request costs about
/// (operations² + references), whatever its shape.
fn next_runnable(
    ops: &[Operation],
    done: &[bool],
    settled: &mut [usize],
    defined: &HashSet<String>,
    created: &HashMap<String, String>,
    failed: &HashSet<String>,
) -> Option<usize> {
    (0..ops.len()).find(|&i| {
        if done[i] {
            return false;
        }
        let needs = &ops[i].needs;
        while let Some(id) = needs.get(settled[i]) {
            if created.contains_key(id) || failed.contains(id) || !defined.contains(id) {
                settled[i] += 1;
            } else {
                return false;
            }
        }
        true
    })
}

/// The operation's path and data with its references replaced by the created ids.
fn resolve(
    op: &Operation,
    created: &HashMap<String, String>,
) -> Result<(String, Option<Value>), ScimError> {
    for id in &op.needs {
        if !created.contains_key(id) {
            return Err(ScimError::new(
                409,
                Some(ScimType::InvalidValue),
                format!(
                    "bulkId {id:?} names no resource: no POST of this request with that \
                     bulkId succeeded"
                ),
            ));
        }
    }
    let path = match op.path.split_once("/bulkId:") {
        Some((kind, id)) => format!("{kind}/{}", created[id]),
        None => op.path.clone(),
    };
    let data = op.data.as_ref().map(|d| replace(d, created));
    Ok((path, data))
}

fn replace(v: &Value, created: &HashMap<String, String>) -> Value {
    match v {
        Value::String(s) => match s.strip_prefix("bulkId:").and_then(|id| created.get(id)) {
            Some(real) => Value::String(real.clone()),
            None => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(|v| replace(v, created)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), replace(v, created)))
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}

/// Why an operation that never became runnable was not run.
fn unrunnable(op: &Operation, failed: &HashSet<String>) -> ScimError {
    if let Some(id) = op.needs.iter().find(|id| failed.contains(*id)) {
        return ScimError::new(
            409,
            Some(ScimType::InvalidValue),
            format!("bulkId {id:?} names no resource: the POST with that bulkId failed"),
        );
    }
    ScimError::new(
        409,
        Some(ScimType::InvalidValue),
        format!(
            "the bulkId references of this operation ({}) form a cycle, which Roster does not \
             resolve (RFC 7644 §3.7.3); create the resources first and link them in a second \
             request",
            op.needs.join(", ")
        ),
    )
}

/// What one operation did.
struct Outcome {
    status: u16,
    id: Option<String>,
    location: Option<String>,
    version: Option<String>,
    response: Option<Value>,
}

impl Outcome {
    fn error(e: ScimError) -> Self {
        Self {
            status: e.status,
            id: None,
            location: None,
            version: None,
            response: Some(e.to_json()),
        }
    }

    async fn of(resp: Response, base: &str, path: &str) -> Self {
        let status = resp.status().as_u16();
        let headers: HeaderMap = resp.headers().clone();
        let header = |h: header::HeaderName| {
            headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        // Answers are small (a resource or an error); a large one would be a bug, not a body
        // worth keeping in the Bulk response.
        let bytes = axum::body::to_bytes(resp.into_body(), 4 * 1024 * 1024)
            .await
            .unwrap_or_default();
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        let id = body
            .as_ref()
            .and_then(|b| b.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let location = header(header::LOCATION)
            .or_else(|| {
                body.as_ref()
                    .and_then(|b| b.pointer("/meta/location"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .or_else(|| (status < 400).then(|| format!("{base}{path}")));
        Self {
            status,
            id,
            location,
            version: header(header::ETAG),
            response: (status >= 400).then_some(body).flatten(),
        }
    }

    fn render(self, op: &Operation) -> Value {
        let mut out = Map::new();
        out.insert("method".into(), json!(op.method.as_str()));
        if let Some(b) = &op.bulk_id {
            out.insert("bulkId".into(), json!(b));
        }
        if let Some(v) = self.version {
            out.insert("version".into(), json!(v));
        }
        if let Some(l) = self.location {
            out.insert("location".into(), json!(l));
        }
        out.insert("status".into(), json!(self.status.to_string()));
        if let Some(r) = self.response {
            out.insert("response".into(), r);
        }
        Value::Object(out)
    }
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        StatusCode::from_u16(self.status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(list: Value) -> Vec<Operation> {
        let body = json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": list});
        parse(&body, 1000).unwrap().0
    }

    /// Runs the ordering alone: every operation succeeds (its POST creates `id-<bulkId>`)
    /// unless it needs an unsettled reference; returns the order and what never ran.
    fn order(ops: &[Operation]) -> (Vec<usize>, Vec<usize>) {
        let defined: HashSet<String> = ops.iter().filter_map(|o| o.bulk_id.clone()).collect();
        let (mut created, failed) = (HashMap::new(), HashSet::new());
        let mut done = vec![false; ops.len()];
        let mut settled = vec![0; ops.len()];
        let mut ran = Vec::new();
        while let Some(i) = next_runnable(ops, &done, &mut settled, &defined, &created, &failed) {
            done[i] = true;
            ran.push(i);
            if let Some(b) = &ops[i].bulk_id {
                created.insert(b.clone(), format!("id-{b}"));
            }
        }
        let left = (0..ops.len()).filter(|i| !done[*i]).collect();
        (ran, left)
    }

    #[test]
    fn references_run_first_and_cycles_never_run() {
        let user = |b: &str| json!({"method": "POST", "path": "/Users", "bulkId": b, "data": {"userName": b}});
        let list = ops(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g",
             "data": {"displayName": "G", "members": [{"value": "bulkId:u1"}, {"value": "bulkId:u1"}, {"value": "bulkId:u2"}]}},
            user("u1"),
            {"method": "PATCH", "path": "/Users/bulkId:u2", "data": {"Operations": []}},
            user("u2"),
            {"method": "POST", "path": "/Groups", "bulkId": "a", "data": {"displayName": "A", "members": [{"value": "bulkId:b"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"displayName": "B", "members": [{"value": "bulkId:a"}]}},
            {"method": "DELETE", "path": "/Users/bulkId:undefined"},
        ]));
        assert_eq!(list[0].needs, ["u1", "u2"], "each reference once");
        let (ran, left) = order(&list);
        assert_eq!(ran, [1, 3, 0, 2, 6]);
        assert_eq!(left, [4, 5]);
        let (path, data) = resolve(
            &list[0],
            &HashMap::from([
                ("u1".to_owned(), "x1".to_owned()),
                ("u2".to_owned(), "x2".to_owned()),
            ]),
        )
        .unwrap();
        assert_eq!(path, "/Groups");
        assert_eq!(
            data.unwrap()["members"],
            json!([{"value": "x1"}, {"value": "x1"}, {"value": "x2"}])
        );
    }

    #[test]
    fn malformed_operations_say_which_and_why() {
        let body = |list: Value| json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": list});
        for (list, words) in [
            (json!([{"method": "PUT", "path": "/Users"}]), "path"),
            (json!([{"method": "PUT", "path": "/Users/1"}]), "data"),
            (
                json!([{"method": "DELETE", "path": "/Users/1?x=1"}]),
                "path",
            ),
            (
                json!([{"method": "POST", "path": "/Users", "bulkId": "", "data": {}}]),
                "empty",
            ),
            (json!([{"method": 1, "path": "/Users"}]), "string"),
            (json!(["x"]), "object"),
        ] {
            let e = parse(&body(list), 10).unwrap_err();
            assert!(e.error.detail.contains("operation 1"), "{}", e.error.detail);
            assert!(
                e.error.detail.contains(words),
                "{words}: {}",
                e.error.detail
            );
        }
        let many = body(
            json!([{"method": "DELETE", "path": "/Users/1"}, {"method": "DELETE", "path": "/Users/2"}]),
        );
        assert_eq!(parse(&many, 1).unwrap_err().error.status, 413);
    }
}
