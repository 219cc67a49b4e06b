//! The provisioning log: a row for every write and every failure, and a count per tenant,
//! route and minute for successful reads, written off the request path.
//!
//! A middleware around the SCIM routes opens a per-request [`Notes`] scope (a task-local, so
//! that the extractors and the service can add what they learn — the tenant's identity
//! provider, the resource, the changed attributes, the redacted body, a refused token's prefix
//! — without threading it through every signature), runs the request, and then either
//!
//! - counts it, when it is a successful read ([`counted_read`]: GET or HEAD answered 2xx or
//!   304, `POST …/.search` answered 2xx, with an accepted token): an in-memory [`Tally`] keyed
//!   by (tenant, route template, minute), which the writer task adds to the store every second
//!   with an upsert; no row, no queue, no allocation beyond the key; or
//! - turns the notes plus the response (status, and the SCIM error the error mapper attached)
//!   into a [`ProvisioningEntry`] and queues it for the writer, which appends batches.
//!
//! The queue is bounded. When it is full (the database cannot keep up) the request waits for
//! room, up to [`QUEUE_WAIT`]: the identity provider is slowed rather than its writes going
//! unrecorded. Only after that wait is the row dropped, and then never silently: it is counted
//! per tenant and minute (stored beside the read counts, shown by the console and the admin
//! API) and the server logs a warning with the count, at most once per [`WARN_EVERY`]. The log
//! is for explaining; the outbox is the record of truth.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, OriginalUri, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use roster_store::health::HOURLY_MIN_RETENTION;
use roster_store::{minute_of, DroppedCount, ProvisioningEntry, ReadCount, Store};
use scim_proto::ScimError;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::AppState;

/// Entries waiting for the writer; beyond this, a request waits for room.
const CHANNEL_CAPACITY: usize = 10_000;
/// How long a request waits for room in a full queue before its row is dropped and counted.
pub const QUEUE_WAIT: Duration = Duration::from_secs(2);
/// How often the writer adds the counted reads (and dropped rows) to the store.
const COUNT_FLUSH: Duration = Duration::from_secs(1);
/// At most one "rows dropped" warning in the server log per this interval.
pub const WARN_EVERY: Duration = Duration::from_secs(10);
/// The prefix of every SCIM route template, stripped from read-count routes.
const SCIM_PREFIX: &str = "/scim/v2/{tenant}";
/// Largest batch written in one transaction.
const BATCH: usize = 500;
/// How long the writer keeps gathering entries after the first before it writes them. The log
/// is written in a transaction of its own, and under write load a lone log transaction used to
/// take a group-commit batch (and its fsync) of its own between two batches of requests,
/// halving the requests per fsync; gathering for a moment keeps the log's commits to a few
/// per second whatever the load, at the price of its rows appearing up to this much later.
const GATHER: Duration = Duration::from_millis(50);
/// Rows deleted per pruning transaction, so pruning never holds the write lock for long.
const PRUNE_BATCH: u64 = 1000;

/// What a request's handlers learned, for its log row.
#[derive(Debug, Default, Clone)]
pub struct Notes {
    /// The tenant's identity provider, once the token was accepted.
    pub idp: Option<String>,
    /// The tenant the accepted token belongs to (the URL's segment may be percent-encoded).
    pub tenant: Option<String>,
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

/// Records the tenant whose token was accepted.
pub fn note_tenant(tenant: &str) {
    note(|n| n.tenant = Some(tenant.to_owned()));
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

/// The longest resource id or name a log row keeps, in bytes: both are index keys (and a
/// refused request's name can be as long as its body allows); a log row names a resource, it
/// does not keep its value.
const LOGGED_NAME_BYTES: usize = 256;

/// The longest request id or user agent a log row keeps, in bytes.
const LOGGED_HEADER_BYTES: usize = 256;
/// The longest path a log row keeps, in bytes (a SCIM path with an id is well under it).
const LOGGED_PATH_BYTES: usize = 512;

/// `s` cut to at most [`LOGGED_NAME_BYTES`] bytes, on a character boundary, with `…` when cut.
fn clip(s: String) -> String {
    clip_to(s, LOGGED_NAME_BYTES)
}

/// `s` cut to at most `max` bytes, on a character boundary, with `…` when cut.
fn clip_to(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max - '…'.len_utf8();
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Who reads a hint: the wording differs (see [`hint_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// An operator (the admin API, the command line, an operator's console): may name the
    /// command line and the server.
    Operator,
    /// A customer's IT admin (a setup-link session): plain sentences, no commands, no
    /// backticks, nothing only the app's operators can do except asking them.
    ItAdmin,
}

/// What to do about a failed request, for an operator: the hint the provisioning log stores
/// and the admin API answers; `None` when the detail says it all. `detail` is the error's
/// detail, which tells a taken email from a taken userName.
#[must_use]
pub fn hint(
    status: u16,
    scim_type: Option<&str>,
    name: Option<&str>,
    detail: Option<&str>,
) -> Option<String> {
    hint_for(Reader::Operator, status, scim_type, name, detail)
}

/// What to do about a failed request, worded for `reader`; `None` when the detail says it all.
/// The console shows a setup-link session the [`Reader::ItAdmin`] words.
#[must_use]
pub fn hint_for(
    reader: Reader,
    status: u16,
    scim_type: Option<&str>,
    name: Option<&str>,
    detail: Option<&str>,
) -> Option<String> {
    if reader == Reader::ItAdmin {
        return it_admin_hint(status, scim_type, name, detail);
    }
    let who = name.map_or_else(String::new, |n| format!(" \"{n}\""));
    let taken_email = detail
        .and_then(|d| d.strip_prefix(crate::error::EMAIL_TAKEN_PREFIX))
        .and_then(|rest| rest.split_once('"'))
        .map(|(email, _)| email);
    let text = match (status, scim_type) {
        (409, Some("uniqueness")) if taken_email.is_some() => format!(
            "Another user of this organisation already has the email \"{}\" (compared \
             case-insensitively; this tenant requires unique emails, setting \
             email_uniqueness). In the identity provider, find the other account with this \
             email (a duplicate, or a former employee whose address was reused) and change or \
             remove the email of one of them, or have an operator deprovision the other user \
             in Roster; then retry the provisioning of this user{who}.",
            taken_email.unwrap_or_default()
        ),
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

/// [`hint_for`] an IT admin: the same advice in plain sentences, without commands.
fn it_admin_hint(
    status: u16,
    scim_type: Option<&str>,
    name: Option<&str>,
    detail: Option<&str>,
) -> Option<String> {
    let who = name.map_or_else(String::new, |n| format!(" \"{n}\""));
    let taken_email = detail
        .and_then(|d| d.strip_prefix(crate::error::EMAIL_TAKEN_PREFIX))
        .and_then(|rest| rest.split_once('"'))
        .map(|(email, _)| email);
    let text = match (status, scim_type) {
        (409, Some("uniqueness")) if taken_email.is_some() => format!(
            "Another user of your organisation already has the email \"{}\", and this app \
             requires every user to have a different email (capitals do not count). In your \
             identity provider, find the other account with this email (a duplicate, or a \
             former employee whose address was reused) and change or remove the email of one \
             of them, or ask the app's administrator to remove the other user; then retry the \
             provisioning of this user{who}.",
            taken_email.unwrap_or_default()
        ),
        (401, _) => "Your identity provider sent a token that is missing, wrong, expired or \
            revoked. On the SCIM settings page, choose Regenerate token, paste the new token \
            into your identity provider's provisioning settings, and test the connection."
            .to_owned(),
        (409, Some("uniqueness")) => format!(
            "Another user of your organisation already has the user name{who} (capitals do not \
             count). In your identity provider, look for a duplicate or renamed account with \
             that name, or change the attribute mapping so that user names are unique; then \
             retry the provisioning of this user."
        ),
        (404, _) => "Your identity provider refers to a user or group the app does not have (it \
            may have been deleted here, or created before this connection). Push the user or \
            group again from your identity provider, or clear its stale link there."
            .to_owned(),
        (412, _) => "The user or group changed between your identity provider's read and its \
            write. Your identity provider normally retries; if it keeps failing, sync it again."
            .to_owned(),
        (400, Some("invalidFilter")) => "Your identity provider sent a search the app cannot \
            read. Check the attribute mappings used to match users; the detail says where the \
            search went wrong."
            .to_owned(),
        (400, Some("mutability")) => "Your identity provider tried to change an attribute that \
            cannot be changed. Remove that attribute from the provisioning mapping."
            .to_owned(),
        (400, Some("invalidValue" | "invalidSyntax" | "invalidPath" | "noTarget")) => {
            "Your identity provider sent data the app cannot accept. Check the attribute \
             mappings for the attribute named in the detail (for example a user name or display \
             name that is empty, or a value of the wrong kind)."
                .to_owned()
        }
        (413, _) => "The request was larger than the app accepts. Send fewer group members per \
            request, or ask the app's administrator to raise the limit."
            .to_owned(),
        (503, _) => "The app is holding deactivations and deletions: too many of your users \
            were to lose access at once. The app's administrator (or you, when the SCIM \
            settings page offers it) confirms or rejects them; your identity provider retries \
            meanwhile. If it was a mistake, fix the assignments or group rules in your \
            identity provider."
            .to_owned(),
        (500..=599, _) => "The app could not process the request; your identity provider will \
            retry. If it keeps failing, tell the app's administrator the request id shown \
            with this request."
            .to_owned(),
        _ => return None,
    };
    Some(text)
}

/// Whether a request is a successful read, counted rather than logged: GET (or HEAD) answered
/// 2xx or 304 Not Modified, or a `POST …/.search` answered 2xx. Everything else — every write
/// whatever its status, every 4xx and 5xx, a 3xx other than 304 — keeps a row of its own.
#[must_use]
pub fn counted_read(method: &str, template: &str, status: u16) -> bool {
    let ok = (200..300).contains(&status);
    match method {
        "GET" | "HEAD" => ok || status == 304,
        "POST" => ok && template.ends_with("/.search"),
        _ => false,
    }
}

/// The route of a read count: the method and the route template below the tenant's base URL,
/// `GET /Users/{id}` for `/scim/v2/{tenant}/Users/{id}`.
fn route_of(method: &str, matched: &str) -> String {
    let below = matched.strip_prefix(SCIM_PREFIX).unwrap_or(matched);
    format!("{method} {}", if below.is_empty() { "/" } else { below })
}

/// Most counts held between two flushes; refused requests beyond it are not counted.
const MAX_TALLY: usize = 100_000;

/// Successful reads and dropped rows counted in memory until the writer's next flush.
#[derive(Debug, Default)]
pub struct Tally {
    reads: HashMap<(String, String, OffsetDateTime), ReadSlot>,
    dropped: HashMap<(String, OffsetDateTime), u64>,
}

#[derive(Debug, Clone, Copy)]
struct ReadSlot {
    count: u64,
    last_status: u16,
    last_at: OffsetDateTime,
}

impl ReadSlot {
    /// Adds `n` requests whose newest arrived at `at` with `status`; on a tie the later call
    /// wins (it finished last).
    fn add(&mut self, n: u64, status: u16, at: OffsetDateTime) {
        self.count = self.count.saturating_add(n);
        if at >= self.last_at {
            self.last_at = at;
            self.last_status = status;
        }
    }
}

impl Tally {
    /// Counts one successful read of `route` that arrived at `at`.
    pub fn read(&mut self, tenant: &str, route: &str, at: OffsetDateTime, status: u16) {
        self.add_read(tenant, route, minute_of(at), 1, status, at);
    }

    fn add_read(
        &mut self,
        tenant: &str,
        route: &str,
        minute: OffsetDateTime,
        n: u64,
        status: u16,
        at: OffsetDateTime,
    ) {
        self.reads
            .entry((tenant.to_owned(), route.to_owned(), minute))
            .and_modify(|s| s.add(n, status, at))
            .or_insert(ReadSlot {
                count: n,
                last_status: status,
                last_at: at,
            });
    }

    /// Counts `n` dropped log rows of `tenant` in the minute of `at`.
    pub fn dropped(&mut self, tenant: &str, at: OffsetDateTime, n: u64) {
        let c = self
            .dropped
            .entry((tenant.to_owned(), minute_of(at)))
            .or_insert(0);
        *c = c.saturating_add(n);
    }

    /// Whether nothing is counted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.reads.is_empty() && self.dropped.is_empty()
    }

    /// Everything counted so far, as store rows; the tally starts over.
    pub fn take(&mut self) -> (Vec<ReadCount>, Vec<DroppedCount>) {
        let reads = std::mem::take(&mut self.reads)
            .into_iter()
            .map(|((tenant_id, route, minute), s)| ReadCount {
                id: 0,
                tenant_id,
                route,
                minute,
                count: s.count,
                last_status: s.last_status,
                last_at: s.last_at,
            })
            .collect();
        let dropped = std::mem::take(&mut self.dropped)
            .into_iter()
            .map(|((tenant_id, minute), count)| DroppedCount {
                tenant_id,
                minute,
                count,
            })
            .collect();
        (reads, dropped)
    }

    /// Puts back counts a flush could not store, so that the next flush retries them.
    pub fn restore(&mut self, reads: Vec<ReadCount>, dropped: Vec<DroppedCount>) {
        for r in reads {
            self.add_read(
                &r.tenant_id,
                &r.route,
                r.minute,
                r.count,
                r.last_status,
                r.last_at,
            );
        }
        for d in dropped {
            let c = self.dropped.entry((d.tenant_id, d.minute)).or_insert(0);
            *c = c.saturating_add(d.count);
        }
    }
}

/// The sending side of the provisioning log: one per process, shared by every request.
#[derive(Debug)]
pub struct Recorder {
    tx: mpsc::Sender<ProvisioningEntry>,
    rx: Mutex<Option<mpsc::Receiver<ProvisioningEntry>>>,
    tally: Mutex<Tally>,
    /// The minute of the last refused request with a row of its own, per (tenant, source).
    refused_rows: Mutex<HashMap<(String, String), OffsetDateTime>>,
    dropped: AtomicU64,
    /// Entries queued or being written (a data-protection erase waits for them).
    pending: AtomicU64,
    /// When the last "rows dropped" warning was logged, and the total it reported.
    warned: Mutex<Option<(Instant, u64)>>,
    /// How long a request waits for room in a full queue.
    wait: Duration,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new(CHANNEL_CAPACITY, QUEUE_WAIT)
    }
}

impl Recorder {
    /// A recorder whose queue holds `capacity` entries, a request waiting up to `wait` for room.
    #[must_use]
    pub fn new(capacity: usize, wait: Duration) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
            tally: Mutex::new(Tally::default()),
            refused_rows: Mutex::new(HashMap::new()),
            dropped: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            warned: Mutex::new(None),
            wait,
        }
    }

    /// Queues an entry. When the queue is full, waits for room (up to [`QUEUE_WAIT`]); if there
    /// is none by then (or the writer is gone), the entry is dropped, counted for its tenant
    /// and minute, and warned about.
    pub async fn record(&self, entry: ProvisioningEntry) {
        // Counted before the send, so that the writer never counts it out first.
        self.pending.fetch_add(1, Ordering::AcqRel);
        let entry = match self.tx.try_send(entry) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(e)) => {
                match tokio::time::timeout(self.wait, self.tx.reserve()).await {
                    Ok(Ok(permit)) => {
                        permit.send(e);
                        return;
                    }
                    _ => e,
                }
            }
            Err(mpsc::error::TrySendError::Closed(e)) => e,
        };
        self.pending.fetch_sub(1, Ordering::AcqRel);
        self.drop_entry(&entry);
    }

    /// Waits until every entry queued so far is written (or given up on), at most `within`;
    /// returns whether it was.
    pub async fn settle(&self, within: Duration) -> bool {
        let until = Instant::now() + within;
        while self.pending.load(Ordering::Acquire) > 0 {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    fn drop_entry(&self, entry: &ProvisioningEntry) {
        if let Ok(mut t) = self.tally.lock() {
            t.dropped(&entry.tenant_id, entry.at, 1);
        }
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let Ok(mut warned) = self.warned.lock() else {
            return;
        };
        let now = Instant::now();
        let since = match *warned {
            Some((at, _)) if now.duration_since(at) < WARN_EVERY => return,
            Some((_, reported)) => total - reported,
            None => total,
        };
        *warned = Some((now, total));
        tracing::warn!(
            dropped = since,
            dropped_total = total,
            tenant = %entry.tenant_id,
            "provisioning log queue full for {} ms: rows dropped (counted per tenant and \
             minute, shown on the console and by the admin API)",
            self.wait.as_millis()
        );
    }

    /// Counts a successful read (no row, no queue).
    pub fn count_read(&self, tenant: &str, route: &str, at: OffsetDateTime, status: u16) {
        if let Ok(mut t) = self.tally.lock() {
            t.read(tenant, route, at, status);
        }
    }

    /// Counts one refused request (401 or 429) of `tenant` from `source` and says whether it
    /// also gets a row of its own: the first of each minute per (tenant, source) does, as a
    /// sample that explains the refusal (token prefix, user agent, hint); the rest are only
    /// counted. Nothing is counted once [`MAX_TALLY`] keys are held: tenant ids and addresses
    /// are the caller's to choose.
    pub fn count_refused(
        &self,
        tenant: &str,
        source: &str,
        at: OffsetDateTime,
        status: u16,
    ) -> bool {
        let minute = minute_of(at);
        let route = format!("refused from {source}");
        if let Ok(mut t) = self.tally.lock() {
            if t.reads.len() >= MAX_TALLY {
                return false;
            }
            t.read(tenant, &route, at, status);
        }
        let Ok(mut rows) = self.refused_rows.lock() else {
            return false;
        };
        if rows.len() >= MAX_TALLY {
            rows.retain(|_, m| *m >= minute);
        }
        let key = (tenant.to_owned(), source.to_owned());
        match rows.get(&key) {
            Some(m) if *m >= minute => false,
            _ if rows.len() >= MAX_TALLY => false,
            _ => {
                rows.insert(key, minute);
                true
            }
        }
    }

    /// How many entries were dropped because the queue stayed full, since the process started.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Entries waiting for the writer now.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    fn take_counts(&self) -> (Vec<ReadCount>, Vec<DroppedCount>) {
        self.tally.lock().map(|mut t| t.take()).unwrap_or_default()
    }

    fn restore_counts(&self, reads: Vec<ReadCount>, dropped: Vec<DroppedCount>) {
        if let Ok(mut t) = self.tally.lock() {
            t.restore(reads, dropped);
        }
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

/// Middleware for `/scim/v2/{tenant}/…`: runs the request inside a notes scope, then counts it
/// (a successful read) or records a provisioning-log entry for it.
pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let at = state.clock.now();
    let method = req.method().as_str().to_owned();
    // The route template (bounded by the router, unlike the path) keys the read counts.
    let matched = req.extensions().get::<MatchedPath>().cloned();
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
    // The client as a trusted proxy names it (`--trusted-proxy`), else the peer.
    let source_addr =
        crate::ratelimit::source_of(&state, req.extensions(), req.headers()).map(|a| a.to_string());
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

    let mut resp = resp;
    let mut n = notes.lock().map(|n| n.clone()).unwrap_or_default();
    if let Some(t) = &n.tenant {
        // For the request metrics (`crate::metrics::track`), which count by tenant.
        resp.extensions_mut()
            .insert(crate::metrics::AuthedTenant(t.clone()));
    }
    // The accepted token's tenant: `/scim/v2/ac%6De/…` authenticates as `acme`.
    let tenant = n.tenant.take().unwrap_or(tenant);
    let status = resp.status().as_u16();
    // Counted only with an accepted token (`idp` noted): a stranger's requests name any tenant.
    if let Some(m) =
        matched.filter(|m| n.idp.is_some() && counted_read(&method, m.as_str(), status))
    {
        state
            .provlog
            .count_read(&tenant, &route_of(&method, m.as_str()), at, status);
        return resp;
    }
    // Refused requests (no valid token, or over a rate limit) are counted per tenant, source
    // and minute like successful reads, with one row per minute and source as a sample: a
    // stranger or a runaway client cannot fill the log. Only ids a tenant could have are
    // counted (the writer keeps only tenants that exist).
    if matches!(status, 401 | 429) {
        let from = source_addr.as_deref().unwrap_or("an unknown address");
        let sample = crate::ops::tenants::check_id(&tenant).is_ok()
            && state.provlog.count_refused(&tenant, from, at, status);
        if !sample {
            return resp;
        }
    }
    let err = resp.extensions().get::<ScimError>();
    let name = n.name.clone();
    let entry = ProvisioningEntry {
        id: 0,
        at,
        tenant_id: tenant,
        // What the client chose is bounded, or a stranger's 401s could store megabytes each.
        request_id: clip_to(request_id, LOGGED_HEADER_BYTES),
        idp: n.idp,
        user_agent: user_agent.map(|u| clip_to(u, LOGGED_HEADER_BYTES)),
        method,
        path: clip_to(path, LOGGED_PATH_BYTES),
        resource_type: rtype.map(str::to_owned),
        resource_id: n.resource_id.or(path_id).map(clip),
        name: n.name.map(clip),
        status,
        scim_type: err.and_then(|e| e.scim_type).map(|t| t.as_str().to_owned()),
        detail: err.map(|e| e.detail.clone()),
        hint: (status >= 400)
            .then(|| {
                hint(
                    status,
                    err.and_then(|e| e.scim_type).map(|t| t.as_str()),
                    name.as_deref(),
                    err.map(|e| e.detail.as_str()),
                )
            })
            .flatten(),
        changed: n.changed,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        body: n.body,
        source_addr,
        token_prefix: n.token_prefix,
    };
    state.provlog.record(entry).await;
    resp
}

/// Appends queued entries in batches, and every [`COUNT_FLUSH`] adds the counted reads and
/// dropped rows, until `shutdown` turns true; then drains the queue and flushes the counts.
///
/// Entries whose token was refused may name a tenant that does not exist (anyone can send a
/// request to any URL); those are not stored, so a stranger cannot fill the log.
pub async fn run_writer(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let Some(mut rx) = state.provlog.take_receiver() else {
        return;
    };
    let mut known: HashMap<String, bool> = HashMap::new();
    let mut buf = Vec::with_capacity(BATCH);
    let mut tick = tokio::time::interval(COUNT_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (mut stop, flush) = tokio::select! {
            n = rx.recv_many(&mut buf, BATCH) => (n == 0, false),
            _ = tick.tick() => (false, true),
            _ = shutdown.changed() => (true, true),
        };
        if !stop && !buf.is_empty() {
            let until = tokio::time::Instant::now() + GATHER;
            while buf.len() < BATCH {
                let room = BATCH - buf.len();
                match tokio::time::timeout_at(until, rx.recv_many(&mut buf, room)).await {
                    Ok(0) => {
                        stop = true;
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        if stop {
            while let Ok(e) = rx.try_recv() {
                buf.push(e);
            }
        }
        if !buf.is_empty() {
            let n = buf.len() as u64;
            write_batch(state.store.as_ref(), &mut buf, &mut known).await;
            state.provlog.pending.fetch_sub(n, Ordering::AcqRel);
        }
        if flush {
            flush_counts(&state, &mut known).await;
        }
        if stop {
            return;
        }
    }
}

/// Whether the tenant exists; only positive answers are cached (a tenant may be created later).
async fn tenant_exists(store: &dyn Store, known: &mut HashMap<String, bool>, tenant: &str) -> bool {
    if known.contains_key(tenant) {
        return true;
    }
    let k = matches!(store.get_tenant(tenant).await, Ok(Some(_)));
    if k {
        known.insert(tenant.to_owned(), true);
    }
    k
}

async fn write_batch(
    store: &dyn Store,
    buf: &mut Vec<ProvisioningEntry>,
    known: &mut HashMap<String, bool>,
) {
    let mut batch = Vec::with_capacity(buf.len());
    for e in buf.drain(..) {
        if tenant_exists(store, known, &e.tenant_id).await {
            batch.push(e);
        }
    }
    if let Err(e) = store.append_provisioning(&batch).await {
        tracing::error!(error = %e, rows = batch.len(), "writing the provisioning log failed");
    }
}

/// Adds the counts of the reads and drops since the last flush to the store, in one
/// transaction. When that fails they go back into the tally for the next flush.
async fn flush_counts(state: &AppState, known: &mut HashMap<String, bool>) {
    let (reads, dropped) = state.provlog.take_counts();
    if reads.is_empty() && dropped.is_empty() {
        return;
    }
    let store = state.store.as_ref();
    let mut keep_reads = Vec::with_capacity(reads.len());
    for r in reads {
        if tenant_exists(store, known, &r.tenant_id).await {
            keep_reads.push(r);
        }
    }
    let mut keep_dropped = Vec::with_capacity(dropped.len());
    for d in dropped {
        if tenant_exists(store, known, &d.tenant_id).await {
            keep_dropped.push(d);
        }
    }
    if let Err(e) = store
        .add_provisioning_counts(&keep_reads, &keep_dropped)
        .await
    {
        tracing::error!(error = %e, rows = keep_reads.len() + keep_dropped.len(),
            "writing the provisioning log's counts failed; retrying with the next flush");
        state.provlog.restore_counts(keep_reads, keep_dropped);
    }
}

/// Deletes rows, read and drop counts, and hours of the hourly rollup older than the retention
/// in small batches (one run of the periodic job `log-prune`, see [`crate::jobs`]). The rollup
/// is kept for at least [`HOURLY_MIN_RETENTION`] whatever the retention: the console's chart
/// shows 7 days, and its rows are few (one per tenant and hour).
pub async fn prune(state: AppState) {
    let now = state.clock.now();
    let cutoff = now - state.settings.log_retention;
    let hourly_cutoff = cutoff.min(now - HOURLY_MIN_RETENTION);
    for part in 0..3 {
        loop {
            let done = match part {
                0 => state.store.prune_provisioning(cutoff, PRUNE_BATCH).await,
                1 => {
                    state
                        .store
                        .prune_provisioning_counts(cutoff, PRUNE_BATCH)
                        .await
                }
                _ => state.store.prune_hourly(hourly_cutoff, PRUNE_BATCH).await,
            };
            match done {
                Ok(n) if n == PRUNE_BATCH => tokio::task::yield_now().await,
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, "pruning the provisioning log failed");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn long_names_are_clipped_on_a_character_boundary() {
        assert_eq!(clip("alice".to_owned()), "alice");
        let exact = "a".repeat(LOGGED_NAME_BYTES);
        assert_eq!(clip(exact.clone()), exact);
        let long = "é".repeat(LOGGED_NAME_BYTES);
        let clipped = clip(long);
        assert!(clipped.len() <= LOGGED_NAME_BYTES, "{}", clipped.len());
        assert!(clipped.ends_with('…') && clipped.starts_with("éé"));
    }

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

    fn entry(tenant: &str, at: OffsetDateTime) -> ProvisioningEntry {
        ProvisioningEntry {
            id: 0,
            at,
            tenant_id: tenant.into(),
            request_id: String::new(),
            idp: None,
            user_agent: None,
            method: "POST".into(),
            path: format!("/scim/v2/{tenant}/Users"),
            resource_type: None,
            resource_id: None,
            name: None,
            status: 201,
            scim_type: None,
            detail: None,
            hint: None,
            changed: Vec::new(),
            duration_ms: 0,
            body: None,
            source_addr: None,
            token_prefix: None,
        }
    }

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn only_successful_reads_are_counted() {
        for (method, template, status) in [
            ("GET", "/scim/v2/{tenant}/Users/{id}", 200),
            ("GET", "/scim/v2/{tenant}/Users", 200),
            ("GET", "/scim/v2/{tenant}/Users/{id}", 304),
            ("HEAD", "/scim/v2/{tenant}/Groups/{id}", 200),
            ("POST", "/scim/v2/{tenant}/Users/.search", 200),
            ("POST", "/scim/v2/{tenant}/.search", 200),
        ] {
            assert!(counted_read(method, template, status), "{method} {status}");
        }
        for (method, template, status) in [
            ("GET", "/scim/v2/{tenant}/Users/{id}", 404),
            ("GET", "/scim/v2/{tenant}/Users", 401),
            ("GET", "/scim/v2/{tenant}/Users", 500),
            ("GET", "/scim/v2/{tenant}/Users", 302),
            ("POST", "/scim/v2/{tenant}/Users", 201),
            ("POST", "/scim/v2/{tenant}/Users/.search", 400),
            ("PUT", "/scim/v2/{tenant}/Users/{id}", 200),
            ("PATCH", "/scim/v2/{tenant}/Users/{id}", 204),
            ("DELETE", "/scim/v2/{tenant}/Users/{id}", 204),
        ] {
            assert!(!counted_read(method, template, status), "{method} {status}");
        }
        assert_eq!(
            route_of("GET", "/scim/v2/{tenant}/Users/{id}"),
            "GET /Users/{id}"
        );
        assert_eq!(
            route_of("POST", "/scim/v2/{tenant}/Users/.search"),
            "POST /Users/.search"
        );
    }

    #[test]
    fn reads_add_up_per_tenant_route_and_minute() {
        let mut tally = Tally::default();
        for i in 0..30 {
            tally.read("acme", "GET /Users/{id}", t(i), 200);
        }
        tally.read("acme", "GET /Users/{id}", t(31), 304);
        // Finished later, arrived earlier: counted, but not the newest.
        tally.read("acme", "GET /Users/{id}", t(2), 200);
        tally.read("acme", "GET /Users", t(3), 200);
        tally.read("beta", "GET /Users/{id}", t(3), 200);
        tally.read("acme", "GET /Users/{id}", t(60), 200);
        let (mut reads, dropped) = tally.take();
        assert!(dropped.is_empty());
        assert!(tally.is_empty(), "taking starts over");
        reads.sort_by(|a, b| {
            (&a.tenant_id, a.minute, &a.route).cmp(&(&b.tenant_id, b.minute, &b.route))
        });
        let got: Vec<_> = reads
            .iter()
            .map(|r| {
                (
                    r.tenant_id.as_str(),
                    r.route.as_str(),
                    r.minute,
                    r.count,
                    r.last_status,
                    r.last_at,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("acme", "GET /Users", t(0), 1, 200, t(3)),
                ("acme", "GET /Users/{id}", t(0), 32, 304, t(31)),
                ("acme", "GET /Users/{id}", t(60), 1, 200, t(60)),
                ("beta", "GET /Users/{id}", t(0), 1, 200, t(3)),
            ]
        );
        // A failed flush puts the counts back, and they add to what came meanwhile.
        tally.read("acme", "GET /Users", t(4), 200);
        tally.restore(reads, Vec::new());
        let (again, _) = tally.take();
        let users = again
            .iter()
            .find(|r| r.route == "GET /Users" && r.tenant_id == "acme")
            .unwrap();
        assert_eq!((users.count, users.last_at), (2, t(4)));
        assert_eq!(again.iter().map(|r| r.count).sum::<u64>(), 36);
    }

    #[tokio::test]
    async fn a_full_queue_waits_for_room_then_drops_and_counts() {
        let rec = Arc::new(Recorder::new(1, Duration::from_millis(20)));
        rec.record(entry("acme", t(1))).await;
        // Full, and nobody reads: dropped after the wait, counted for its tenant and minute.
        rec.record(entry("acme", t(2))).await;
        rec.record(entry("acme", t(61))).await;
        assert_eq!(rec.dropped(), 2);
        let (reads, mut dropped) = rec.take_counts();
        assert!(reads.is_empty());
        dropped.sort_by_key(|d| d.minute);
        let got: Vec<_> = dropped
            .iter()
            .map(|d| (d.tenant_id.as_str(), d.minute, d.count))
            .collect();
        assert_eq!(got, [("acme", t(0), 1), ("acme", t(60), 1)]);

        // With a reader, a request waits for room instead of dropping.
        let mut rx = rec.take_receiver().unwrap();
        let patient = Arc::new(Recorder::new(1, Duration::from_secs(30)));
        let mut prx = patient.take_receiver().unwrap();
        patient.record(entry("acme", t(1))).await;
        let reader = tokio::spawn(async move {
            let first = prx.recv().await.unwrap();
            let second = prx.recv().await.unwrap();
            (first.at, second.at)
        });
        patient.record(entry("acme", t(2))).await;
        assert_eq!(reader.await.unwrap(), (t(1), t(2)));
        assert_eq!(patient.dropped(), 0);
        assert!(rx.try_recv().is_ok(), "the first entry was queued");
    }

    #[test]
    fn it_admins_get_plain_hints() {
        let taken = format!("{}ann@example.com\" …", crate::error::EMAIL_TAKEN_PREFIX);
        for (status, scim_type, detail) in [
            (401, None, None),
            (409, Some("uniqueness"), None),
            (409, Some("uniqueness"), Some(taken.as_str())),
            (404, None, None),
            (412, None, None),
            (400, Some("invalidFilter"), None),
            (400, Some("mutability"), None),
            (400, Some("invalidValue"), None),
            (413, None, None),
            (503, None, None),
            (500, None, None),
        ] {
            let op = hint(status, scim_type, Some("ann"), detail);
            let it = hint_for(Reader::ItAdmin, status, scim_type, Some("ann"), detail).unwrap();
            assert!(op.is_some(), "{status}");
            for bad in ["`", "roster ", "Roster", "--", "TENANT", "tenant"] {
                assert!(!it.contains(bad), "{status} {scim_type:?}: {bad:?} in {it}");
            }
        }
        assert!(hint(401, None, None, None)
            .unwrap()
            .contains("`roster token rotate"));
        assert!(hint_for(Reader::ItAdmin, 200, None, None, None).is_none());
    }

    #[test]
    fn hints_name_the_user() {
        let h = hint(409, Some("uniqueness"), Some("bjensen"), None).unwrap();
        assert!(h.contains("\"bjensen\""));
        assert!(h.contains("userName"));
        let detail = crate::error::email_taken_detail("Ann@Example.com");
        let h = hint(409, Some("uniqueness"), Some("ann"), Some(&detail)).unwrap();
        assert!(
            h.contains("already has the email \"Ann@Example.com\""),
            "{h}"
        );
        assert!(h.contains("\"ann\""), "{h}");
        assert!(hint(401, None, None, None).unwrap().contains("token"));
        assert!(hint(200, None, None, None).is_none());
    }
}
