//! The provisioning log: one row per SCIM request, written off the request path.
//!
//! A middleware around the SCIM routes opens a per-request [`Notes`] scope (a task-local, so
//! that the extractors and the service can add what they learn — the tenant's identity
//! provider, the resource, the changed attributes, the redacted body, a refused token's prefix
//! — without threading it through every signature), runs the request, and turns the notes plus
//! the response (status, and the SCIM error the error mapper attached) into a
//! [`ProvisioningEntry`]. The entry goes to a bounded channel; a writer task appends batches to
//! the store. When the channel is full the entry is dropped and counted rather than slowing the
//! request: the log is for explaining, the outbox is the record of truth.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use roster_store::{ProvisioningEntry, Store};
use scim_proto::ScimError;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::AppState;

/// Entries waiting for the writer; beyond this, entries are dropped and counted.
const CHANNEL_CAPACITY: usize = 10_000;
/// Largest batch written in one transaction.
const BATCH: usize = 500;
/// Rows deleted per pruning transaction, so pruning never holds the write lock for long.
const PRUNE_BATCH: u64 = 1000;

/// What a request's handlers learned, for its log row.
#[derive(Debug, Default, Clone)]
pub struct Notes {
    /// The tenant's identity provider, once the token was accepted.
    pub idp: Option<String>,
    /// The resource id.
    pub resource_id: Option<String>,
    /// userName or displayName.
    pub name: Option<String>,
    /// Changed attribute names.
    pub changed: Vec<String>,
    /// The request body, redacted.
    pub body: Option<Value>,
    /// The prefix of a refused token.
    pub token_prefix: Option<String>,
}

tokio::task_local! {
    static NOTES: Arc<Mutex<Notes>>;
}

/// Adds to the current request's notes; does nothing outside a logged request.
fn note(f: impl FnOnce(&mut Notes)) {
    let _ = NOTES.try_with(|n| {
        if let Ok(mut n) = n.lock() {
            f(&mut n);
        }
    });
}

/// Records the tenant's identity provider (the token was accepted).
pub fn note_idp(idp: &str) {
    note(|n| n.idp = Some(idp.to_owned()));
}

/// Records the prefix of a refused token (never the token).
pub fn note_token_prefix(prefix: &str) {
    note(|n| n.token_prefix = Some(prefix.to_owned()));
}

/// Records the resource the request is about.
pub fn note_resource(id: &str, doc: &Value) {
    let name = ["userName", "displayName"]
        .iter()
        .find_map(|k| doc.get(*k).and_then(Value::as_str))
        .map(str::to_owned);
    note(|n| {
        n.resource_id = Some(id.to_owned());
        if name.is_some() {
            n.name = name;
        }
    });
}

/// Records the names of the changed attributes.
pub fn note_changed(names: Vec<String>) {
    note(|n| n.changed = names);
}

/// Records the request body, with sensitive values removed.
pub fn note_body(body: &Value) {
    let redacted = redact(body);
    note(|n| {
        if n.name.is_none() {
            n.name = ["userName", "displayName"]
                .iter()
                .find_map(|k| redacted.get(*k).and_then(Value::as_str))
                .map(str::to_owned);
        }
        n.body = Some(redacted);
    });
}

/// Whether a key names something secret: passwords, tokens, secrets, keys, credentials.
fn sensitive_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "token",
        "secret",
        "credential",
        "apikey",
        "api_key",
        "private",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// The body with the values of sensitive attributes replaced by `"[redacted]"`: any key that
/// names a password, token, secret or credential (at any depth, also inside extension
/// objects), and the `value` of a PATCH operation whose `path` names one.
#[must_use]
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let path_sensitive = m
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("path"))
                .and_then(|(_, p)| p.as_str())
                .is_some_and(sensitive_key);
            Value::Object(
                m.iter()
                    .map(|(k, val)| {
                        let hide =
                            sensitive_key(k) || (path_sensitive && k.eq_ignore_ascii_case("value"));
                        let out = if hide {
                            Value::String("[redacted]".into())
                        } else {
                            redact(val)
                        };
                        (k.clone(), out)
                    })
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// What an IT admin can do about a failed request, in words; `None` when the detail says it
/// all.
#[must_use]
pub fn hint(status: u16, scim_type: Option<&str>, name: Option<&str>) -> Option<String> {
    let who = name.map_or_else(String::new, |n| format!(" \"{n}\""));
    let text = match (status, scim_type) {
        (401, _) => "The identity provider sent a missing, malformed, expired or revoked token, \
            or a token of another tenant. Issue a new token (Regenerate token on the console's \
            SCIM settings page, or `roster token rotate TENANT`) and paste it into the identity \
            provider's SCIM settings, then test the connection."
            .to_owned(),
        (409, Some("uniqueness")) => format!(
            "Another user in this tenant already has the userName{who} (compared \
             case-insensitively). In the identity provider, look for a duplicate or renamed \
             account with that name, or change the attribute mapping so userName is unique; \
             then retry the provisioning of this user."
        ),
        (404, _) => "The identity provider refers to a user or group Roster does not have (it \
            may have been deleted here, or created before this connection). Re-push the user or \
            group from the identity provider, or clear its stale SCIM id there."
            .to_owned(),
        (412, _) => "The resource changed between the identity provider's read and write. The \
            identity provider normally retries; if it keeps failing, re-sync the resource."
            .to_owned(),
        (400, Some("invalidFilter")) => "The identity provider sent a filter Roster cannot \
            parse. Check custom attribute mappings used for matching users; the detail names \
            the position of the error."
            .to_owned(),
        (400, Some("mutability")) => "The identity provider tried to change a read-only or \
            immutable attribute. Remove that attribute from the provisioning mapping."
            .to_owned(),
        (400, Some("invalidValue" | "invalidSyntax" | "invalidPath" | "noTarget")) => {
            "The identity provider sent data Roster cannot accept. Check the attribute \
             mappings for the attribute named in the detail (e.g. a required userName or \
             displayName that is empty, or a value of the wrong type)."
                .to_owned()
        }
        (413, _) => "The request was larger than Roster accepts. Provision fewer group members \
            per request, or raise --max-body-bytes."
            .to_owned(),
        // The only 503 Roster answers on purpose.
        (503, _) => "The mass-deprovisioning guard is holding deactivations and deletions: \
            too many users of this tenant were to lose access at once. An operator of the app \
            confirms or rejects the batch (on the console's SCIM settings page, or `roster guard \
            status TENANT`); the identity provider \
            retries meanwhile. If it was a mistake, fix the assignments or group rules in the \
            identity provider."
            .to_owned(),
        (500..=599, _) => "Roster failed to process the request; the identity provider will \
            retry. If it persists, check the Roster server logs for this request id."
            .to_owned(),
        _ => return None,
    };
    Some(text)
}

/// The sending side of the provisioning log: cheap to clone into every request.
#[derive(Debug)]
pub struct Recorder {
    tx: mpsc::Sender<ProvisioningEntry>,
    rx: Mutex<Option<mpsc::Receiver<ProvisioningEntry>>>,
    dropped: AtomicU64,
}

impl Default for Recorder {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
            dropped: AtomicU64::new(0),
        }
    }
}

impl Recorder {
    /// Queues an entry without waiting; counts it as dropped when the queue is full.
    pub fn record(&self, entry: ProvisioningEntry) {
        if self.tx.try_send(entry).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // One warning per 1,000 drops keeps an overload from flooding the logs.
            if n % 1000 == 1 {
                tracing::warn!(
                    dropped_total = n,
                    "provisioning log queue full; entries dropped"
                );
            }
        }
    }

    /// How many entries were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn take_receiver(&self) -> Option<mpsc::Receiver<ProvisioningEntry>> {
        self.rx.lock().ok().and_then(|mut r| r.take())
    }
}

/// `Users` → `User`, `Groups` → `Group`.
fn resource_type(segment: &str) -> Option<&'static str> {
    match segment {
        "Users" => Some("User"),
        "Groups" => Some("Group"),
        _ => None,
    }
}

/// Middleware for `/scim/v2/{tenant}/…`: runs the request inside a notes scope and records one
/// provisioning-log entry for it.
pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let at = state.clock.now();
    let method = req.method().as_str().to_owned();
    // Inside `nest` the URI is stripped of `/scim/v2/{tenant}`; the log wants the full path.
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path().to_owned(), |u| u.0.path().to_owned());
    // A block, so that no borrow of the request (whose body is not `Sync`) lives across the
    // await below.
    let (request_id, user_agent) = {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        (
            header("x-request-id").unwrap_or_default(),
            header("user-agent"),
        )
    };
    let source_addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    // /scim/v2/{tenant}/{Users|Groups}/{id}
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let tenant = segments.get(2).map(|s| (*s).to_owned()).unwrap_or_default();
    let rtype = segments.get(3).and_then(|s| resource_type(s));
    let path_id = segments
        .get(4)
        .filter(|s| !s.starts_with('.'))
        .map(|s| (*s).to_owned());

    let notes = Arc::new(Mutex::new(Notes::default()));
    let resp = NOTES.scope(notes.clone(), next.run(req)).await;

    let n = notes.lock().map(|n| n.clone()).unwrap_or_default();
    let status = resp.status().as_u16();
    let err = resp.extensions().get::<ScimError>();
    let name = n.name.clone();
    let entry = ProvisioningEntry {
        id: 0,
        at,
        tenant_id: tenant,
        request_id,
        idp: n.idp,
        user_agent,
        method,
        path,
        resource_type: rtype.map(str::to_owned),
        resource_id: n.resource_id.or(path_id),
        name: n.name,
        status,
        scim_type: err.and_then(|e| e.scim_type).map(|t| t.as_str().to_owned()),
        detail: err.map(|e| e.detail.clone()),
        hint: (status >= 400)
            .then(|| {
                hint(
                    status,
                    err.and_then(|e| e.scim_type).map(|t| t.as_str()),
                    name.as_deref(),
                )
            })
            .flatten(),
        changed: n.changed,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        body: n.body,
        source_addr,
        token_prefix: n.token_prefix,
    };
    state.provlog.record(entry);
    resp
}

/// Appends queued entries in batches until `shutdown` turns true, then drains the queue.
///
/// Entries whose token was refused may name a tenant that does not exist (anyone can send a
/// request to any URL); those are not stored, so a stranger cannot fill the log.
pub async fn run_writer(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let Some(mut rx) = state.provlog.take_receiver() else {
        return;
    };
    let mut known: HashMap<String, bool> = HashMap::new();
    let mut buf = Vec::with_capacity(BATCH);
    loop {
        let stop = tokio::select! {
            n = rx.recv_many(&mut buf, BATCH) => n == 0,
            _ = shutdown.changed() => true,
        };
        if stop {
            while let Ok(e) = rx.try_recv() {
                buf.push(e);
            }
        }
        write_batch(state.store.as_ref(), &mut buf, &mut known).await;
        if stop {
            return;
        }
    }
}

async fn write_batch(
    store: &dyn Store,
    buf: &mut Vec<ProvisioningEntry>,
    known: &mut HashMap<String, bool>,
) {
    let mut batch = Vec::with_capacity(buf.len());
    for e in buf.drain(..) {
        let exists = match known.get(&e.tenant_id) {
            Some(k) => *k,
            None => {
                let k = matches!(store.get_tenant(&e.tenant_id).await, Ok(Some(_)));
                // Only positive answers are cached: a tenant may be created later.
                if k {
                    known.insert(e.tenant_id.clone(), true);
                }
                k
            }
        };
        if exists {
            batch.push(e);
        }
    }
    if let Err(e) = store.append_provisioning(&batch).await {
        tracing::error!(error = %e, rows = batch.len(), "writing the provisioning log failed");
    }
}

/// Deletes rows older than `retention` in small batches, every `interval`, until shutdown.
pub async fn run_pruner(
    state: AppState,
    retention: Duration,
    interval: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let cutoff = state.clock.now() - retention;
        loop {
            match state.store.prune_provisioning(cutoff, PRUNE_BATCH).await {
                Ok(n) if n == PRUNE_BATCH => tokio::task::yield_now().await,
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, "pruning the provisioning log failed");
                    break;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {},
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn redacts_passwords_tokens_and_patch_values() {
        let body = json!({
            "userName": "a",
            "password": "hunter2",
            "urn:x:ext": {"apiToken": "t0k", "clientSecret": "s"},
            "Operations": [
                {"op": "replace", "path": "password", "value": "p2"},
                {"op": "replace", "path": "active", "value": false},
                {"op": "add", "value": {"PassWord": "p3"}}
            ]
        });
        let r = redact(&body);
        let text = r.to_string();
        for secret in ["hunter2", "t0k", "\"s\"", "p2", "p3"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(r["userName"], "a");
        assert_eq!(r["Operations"][1]["value"], false);
    }

    #[test]
    fn hints_name_the_user() {
        let h = hint(409, Some("uniqueness"), Some("bjensen")).unwrap();
        assert!(h.contains("\"bjensen\""));
        assert!(hint(401, None, None).unwrap().contains("token"));
        assert!(hint(200, None, None).is_none());
    }
}
