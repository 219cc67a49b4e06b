//! Webhooks end to end: a real HTTP receiver on loopback verifies every signature with the
//! verification code documented in docs/events.md, goes down mid-stream and comes back; every
//! event arrives, in order, without a gap, and agrees with the feed. Parking and redelivery.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::events::{seqs, types};
use crate::harness::{user_body, TestServer};

// ---- The receiver-side verification code, exactly as documented in docs/events.md. ----
/// Verifies a `Roster-Signature` header against the raw request body.
fn verify_signature(secret: &str, header: &str, body: &[u8], now_unix: i64) -> bool {
    const TOLERANCE_SECS: i64 = 300;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v.to_string()),
            _ => {}
        }
    }
    let Some(t) = timestamp else { return false };
    if (now_unix - t).abs() > TOLERANCE_SECS {
        return false; // too old (or from the future): a replay
    }
    signatures.iter().any(|sig| {
        let Ok(expected) = hex::decode(sig) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&expected).is_ok() // constant-time comparison
    })
}
// ---- end of the documented code ----

#[test]
fn the_documented_verification_code_is_this_code() {
    let src = include_str!("webhooks.rs");
    let start = src.find("/// Verifies a `Roster-Signature`").unwrap();
    let end = src.find("// ---- end of the documented code").unwrap();
    let code = src[start..end].trim();
    let docs = include_str!("../../../../docs/events.md");
    assert!(
        docs.contains(code),
        "docs/events.md must show the Rust verification code used by the tests:\n{code}"
    );
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// One delivery as received.
#[derive(Debug, Clone)]
struct Delivery {
    event: Value,
    signature: String,
    body: Vec<u8>,
    event_id_header: String,
}

/// A webhook receiver on loopback that verifies signatures and keeps what it got.
#[derive(Clone)]
pub struct Receiver {
    pub secret: Arc<Mutex<String>>,
    got: Arc<Mutex<Vec<Delivery>>>,
    bad_signatures: Arc<Mutex<usize>>,
    /// How long each delivery takes to acknowledge (after it was recorded).
    pub delay: Arc<Mutex<Duration>>,
    /// Deliveries being handled now, and the most there ever were at once.
    in_flight: Arc<Mutex<(usize, usize)>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let sig = headers
        .get("roster-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let secret = r.secret.lock().unwrap().clone();
    if !verify_signature(&secret, &sig, &body, unix_now()) {
        *r.bad_signatures.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let event: Value = serde_json::from_slice(&body).unwrap();
    let _in_flight = InFlight::enter(&r.in_flight);
    r.got.lock().unwrap().push(Delivery {
        event,
        signature: sig,
        body: body.to_vec(),
        event_id_header: headers
            .get("roster-event-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    });
    let delay = *r.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    StatusCode::NO_CONTENT
}

/// Counts a delivery as in flight until its handler ends, or is dropped because the sender
/// went away (a node killed mid-delivery).
struct InFlight(Arc<Mutex<(usize, usize)>>);

impl InFlight {
    fn enter(count: &Arc<Mutex<(usize, usize)>>) -> Self {
        let mut f = count.lock().unwrap();
        f.0 += 1;
        f.1 = f.1.max(f.0);
        Self(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().unwrap().0 -= 1;
    }
}

/// A receiver that can be stopped and started again on the same address.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub fn new() -> Self {
        Self {
            secret: Arc::new(Mutex::new(String::new())),
            got: Arc::new(Mutex::new(Vec::new())),
            bad_signatures: Arc::new(Mutex::new(0)),
            delay: Arc::new(Mutex::new(Duration::ZERO)),
            in_flight: Arc::new(Mutex::new((0, 0))),
        }
    }

    /// Subscribes this receiver, listening on `addr`, to tenant `acme` of `s` (`roster webhook
    /// add`), takes the webhook's secret for verifying, and returns the webhook as printed.
    pub fn subscribe(&self, s: &TestServer, addr: SocketAddr) -> Value {
        let out = s.cli_ok(&[
            "webhook",
            "add",
            &format!("http://{addr}/hook"),
            "--tenant",
            "acme",
            "--json",
        ]);
        let hook: Value = serde_json::from_str(out.trim()).unwrap();
        *self.secret.lock().unwrap() = hook["secret"].as_str().unwrap().to_owned();
        hook
    }

    /// The most deliveries that were ever being handled at once.
    pub fn most_in_flight(&self) -> usize {
        self.in_flight.lock().unwrap().1
    }

    /// Deliveries whose signature did not verify.
    pub fn bad_signatures(&self) -> usize {
        *self.bad_signatures.lock().unwrap()
    }

    pub async fn start(&self, addr: SocketAddr) -> (SocketAddr, Running) {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(self.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        (
            addr,
            Running {
                stop: Some(tx),
                task,
            },
        )
    }

    pub fn events(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.event.clone())
            .collect()
    }

    /// Waits until the receiver holds an event with `seq >= seq`.
    pub async fn wait_for_seq(&self, seq: i64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self
                .events()
                .iter()
                .any(|e| e["seq"].as_i64().unwrap() >= seq)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no delivery of seq {seq} within {within:?}; got {:?}",
                seqs(&self.events())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        self.task.abort();
    }
}

const FAST_RETRIES: &[&str] = &[
    "--webhook-retry-base-ms",
    "50",
    "--webhook-retry-max-ms",
    "300",
    "--webhook-poll-ms",
    "100",
];

/// Collapses repeated deliveries of the same event (at-least-once) and asserts that what is
/// left is exactly `expected`, in order.
#[track_caller]
fn assert_in_order_without_gaps(events: &[Value], expected: &[i64]) {
    let mut deduped: Vec<i64> = Vec::new();
    for s in seqs(events) {
        if deduped.last() != Some(&s) {
            deduped.push(s);
        }
    }
    assert_eq!(deduped, expected, "delivered seqs: {:?}", seqs(events));
}

#[tokio::test]
async fn receiver_outage_loses_nothing_and_order_holds_and_feed_agrees() {
    let s = TestServer::start_with(FAST_RETRIES).await;
    let key = s.admin_key();
    let recv = Receiver::new();
    let (addr, running) = recv.start("127.0.0.1:0".parse().unwrap()).await;
    let hook = recv.subscribe(&s, addr);
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let first = s.feed(&key, 0).await.len() as i64; // the webhook starts after these

    for i in 0..5 {
        s.user(&format!("before{i}")).await;
    }
    recv.wait_for_seq(first + 5, Duration::from_secs(30)).await;

    // The receiver goes down; SCIM writes go on, unaffected.
    running.stop().await;
    let t0 = Instant::now();
    for i in 0..5 {
        let id = s.user(&format!("during{i}")).await;
        s.patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await
        .expect(200);
    }
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "SCIM writes must not wait for the receiver"
    );
    // Let some retries fail, and see the stream reported as failing.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = s
            .admin_get(&key, &format!("/webhooks/{}", hook["id"].as_str().unwrap()))
            .await;
        let st = &list["streams"][0];
        if st["status"] == "failing" {
            assert!(
                st["last_error"].as_str().is_some_and(|e| !e.is_empty()),
                "{st}"
            );
            assert!(st["attempts"].as_i64().unwrap() >= 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stream never reported failing: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // It comes back on the same address: everything arrives, in order, without a gap.
    let (_, running) = recv.start(addr).await;
    let last = first + 15;
    recv.wait_for_seq(last, Duration::from_secs(60)).await;
    let got = recv.events();
    assert_in_order_without_gaps(&got, &(first + 1..=last).collect::<Vec<_>>());
    assert_eq!(*recv.bad_signatures.lock().unwrap(), 0);

    // The feed and the webhooks agree: same ids, seqs, types and payloads, same order.
    let feed = s.feed(&key, first).await;
    let mut delivered: Vec<Value> = Vec::new();
    for e in got {
        if delivered.last().map(|d| &d["seq"]) != Some(&e["seq"]) {
            delivered.push(e);
        }
    }
    assert_eq!(feed, delivered);
    assert_eq!(
        types(&feed)[5..7],
        ["user.created", "user.deactivated"],
        "{:?}",
        types(&feed)
    );
    let d = recv.got.lock().unwrap()[0].clone();
    assert_eq!(d.event_id_header, d.event["id"].as_str().unwrap());

    // A signature made with a wrong secret, or over another body, is refused by the same code.
    assert!(verify_signature(&secret, &d.signature, &d.body, unix_now()));
    assert!(!verify_signature(
        "whsec_wrong",
        &d.signature,
        &d.body,
        unix_now()
    ));
    assert!(!verify_signature(
        &secret,
        &d.signature,
        b"{\"tampered\":1}",
        unix_now()
    ));
    assert!(!verify_signature(
        &secret,
        &d.signature,
        &d.body,
        unix_now() + 3600
    ));
    running.stop().await;
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_and_a_wrong_secret_is_refused() {
    let s = TestServer::start_with(FAST_RETRIES).await;
    let key = s.admin_key();
    let recv = Receiver::new();
    let (addr, running) = recv.start("127.0.0.1:0".parse().unwrap()).await;
    let created = s
        .admin(
            &key,
            Method::POST,
            "/webhooks",
            Some(json!({"url": format!("http://{addr}/hook"), "event_types": ["user.created"]})),
        )
        .await;
    created.expect(201);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let old = created.json["secret"].as_str().unwrap().to_owned();
    // The receiver has a wrong secret: it refuses the delivery, which is retried.
    *recv.secret.lock().unwrap() = "whsec_not_the_secret".into();
    s.user("alice").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while *recv.bad_signatures.lock().unwrap() == 0 {
        assert!(Instant::now() < deadline, "no delivery attempt");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recv.events().is_empty());
    // With the right secret it is delivered (a retry of the same event).
    *recv.secret.lock().unwrap() = old.clone();
    let last = s.feed(&key, 0).await.len() as i64;
    recv.wait_for_seq(last, Duration::from_secs(30)).await;

    let rotated = s
        .admin(
            &key,
            Method::POST,
            &format!("/webhooks/{id}/rotate-secret"),
            None,
        )
        .await;
    rotated.expect(200);
    let new = rotated.json["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    // The secret is never shown again.
    let shown = s.admin_get(&key, &format!("/webhooks/{id}")).await;
    assert!(!shown.to_string().contains(&new) && !shown.to_string().contains(&old));
    // Filtered: group events are not delivered, user.created is, signed with both secrets.
    s.create_group("G", &[]).await;
    s.user("bob").await;
    let last = s.feed(&key, 0).await.len() as i64;
    recv.wait_for_seq(last, Duration::from_secs(30)).await;
    let d = recv.got.lock().unwrap().last().unwrap().clone();
    assert_eq!(d.event["type"], "user.created");
    assert!(verify_signature(&new, &d.signature, &d.body, unix_now()));
    assert!(verify_signature(&old, &d.signature, &d.body, unix_now()));
    assert_eq!(d.signature.matches("v1=").count(), 2);
    assert!(types(&recv.events()).iter().all(|t| *t == "user.created"));
    running.stop().await;
}

#[tokio::test]
async fn a_stream_failing_past_the_horizon_is_parked_then_redelivered() {
    let mut args = FAST_RETRIES.to_vec();
    args.extend(["--webhook-retry-horizon-secs", "1"]);
    let s = TestServer::start_with(&args).await;
    let key = s.admin_key();
    // Reserve an address with nothing listening on it.
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let out = s.cli_ok(&["webhook", "add", &format!("http://{addr}/hook"), "--json"]);
    let hook: Value = serde_json::from_str(out.trim()).unwrap();
    let id = hook["id"].as_str().unwrap().to_owned();
    let recv = Receiver::new();
    *recv.secret.lock().unwrap() = hook["secret"].as_str().unwrap().to_owned();
    let first = s.feed(&key, 0).await.len() as i64;
    s.user("alice").await;
    s.user("bob").await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let parked = loop {
        let w = s.admin_get(&key, &format!("/webhooks/{id}")).await;
        if w["streams"][0]["status"] == "parked" {
            break w;
        }
        assert!(Instant::now() < deadline, "never parked: {w}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let st = &parked["streams"][0];
    assert_eq!(st["cursor"], first);
    assert!(st["last_error"].as_str().unwrap().contains("error"), "{st}");
    let listed = s.cli_ok(&["webhook", "list"]);
    assert!(listed.contains("parked"), "{listed}");

    // Parked: nothing is attempted any more. Bring the receiver up and redeliver.
    let (_, running) = recv.start(addr).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(recv.events().is_empty(), "a parked stream does not deliver");
    s.cli_ok(&["webhook", "redeliver", &id, "--tenant", "acme"]);
    recv.wait_for_seq(first + 2, Duration::from_secs(30)).await;
    assert_in_order_without_gaps(&recv.events(), &[first + 1, first + 2]);

    // Redelivery from a given seq re-sends from there, through the API.
    let r = s
        .admin(
            &key,
            Method::POST,
            &format!("/webhooks/{id}/redeliver"),
            Some(json!({"tenant": "acme", "from_seq": first + 1})),
        )
        .await;
    r.expect(200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while recv.events().len() < 4 {
        assert!(
            Instant::now() < deadline,
            "no redelivery: {:?}",
            seqs(&recv.events())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seqs(&recv.events()),
        [first + 1, first + 2, first + 1, first + 2]
    );
    let w = s.admin_get(&key, &format!("/webhooks/{id}")).await;
    assert_eq!(w["streams"][0]["status"], "ok");
    s.cli_ok(&["webhook", "remove", &id]);
    s.admin(&key, Method::GET, &format!("/webhooks/{id}"), None)
        .await
        .expect(404);
    running.stop().await;
}

#[tokio::test]
async fn webhook_input_is_validated() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    for (body, status) in [
        (json!({"url": "ftp://x/hook"}), 400),
        (json!({"url": "not a url"}), 400),
        (
            json!({"url": "http://127.0.0.1:9/", "event_types": ["user.nope"]}),
            400,
        ),
        (json!({"url": "http://127.0.0.1:9/", "tenant": "nope"}), 404),
        (json!({"url": "http://127.0.0.1:9/", "extra": 1}), 400),
    ] {
        let r = s
            .admin(&key, Method::POST, "/webhooks", Some(body.clone()))
            .await;
        r.expect(status);
        assert!(r.json["error"]["message"].is_string(), "{body}: {}", r.text);
    }
    let bad = s.cli(&["webhook", "add", "http://127.0.0.1:9/", "--events", "nope"]);
    assert!(!bad.status.success());
}

/// By default webhooks go to public addresses only: an inward URL is refused when registered,
/// and one registered anyway (by a CLI allowed to) is never connected to, whether its host is
/// an address or a name that resolves inward; the error names no address. A URL with a
/// credential is refused (it would be stored and audited).
#[tokio::test]
async fn webhooks_to_private_addresses_are_refused_and_never_delivered() {
    let s = TestServer::start_with(&[
        "--webhook-allow-private-addresses=false",
        "--webhook-poll-ms",
        "50",
    ])
    .await;
    let key = s.admin_key();
    let receiver = Receiver::new();
    let (addr, running) = receiver.start("127.0.0.1:0".parse().unwrap()).await;
    for url in [
        format!("http://127.0.0.1:{}/hook", addr.port()),
        format!("http://localhost:{}/hook", addr.port()),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[::1]/hook".to_owned(),
        "https://user:secret@app.example.com/hook".to_owned(),
    ] {
        let r = s
            .admin(
                &key,
                Method::POST,
                "/webhooks",
                Some(json!({"url": url, "tenant": s.tenant})),
            )
            .await;
        r.expect(400);
        assert!(!r.text.contains("secret@"), "{}", r.text);
    }
    // Registered through a CLI that may (as on a host whose receivers are local), then
    // delivered by this server, which may not.
    let mut ids = Vec::new();
    for host in ["127.0.0.1", "localhost"] {
        let out = s.cli_ok(&[
            "webhook",
            "add",
            &format!("http://{host}:{}/hook", addr.port()),
            "--tenant",
            &s.tenant,
            "--json",
        ]);
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    s.create_user(&user_body("ssrf-probe")).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in &ids {
        loop {
            let hook = s.admin_get(&key, &format!("/webhooks/{id}")).await;
            let err = hook["streams"][0]["last_error"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            if !err.is_empty() {
                assert!(err.contains("private, loopback or link-local"), "{err}");
                assert!(
                    !err.contains("127.0.0.1") && !err.contains(&addr.port().to_string()),
                    "{err}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no delivery attempt recorded: {hook}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(
        receiver.events().is_empty(),
        "delivered to a loopback receiver"
    );
    running.stop().await;
}

// ---- Secrets at rest (issue 12): sealed with the key file, never stored in clear. ----

/// `roster secret-key status --json`, parsed.
fn key_status(s: &TestServer) -> Value {
    serde_json::from_str(s.cli_ok(&["secret-key", "status", "--json"]).trim()).unwrap()
}

/// Whether `bytes` contain `needle`.
fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Waits until the receiver holds an event of `seq` whose signature verifies with `secret`.
async fn verified_delivery(recv: &Receiver, secret: &str, seq: i64) {
    recv.wait_for_seq(seq, Duration::from_secs(30)).await;
    let got = recv.got.lock().unwrap().clone();
    let d = got
        .iter()
        .find(|d| d.event["seq"].as_i64() == Some(seq))
        .expect("the delivery");
    assert!(verify_signature(secret, &d.signature, &d.body, unix_now()));
}

/// A secret made through the admin API is stored sealed (it is nowhere in the database's
/// bytes; the stored text names the key), deliveries verify with the secret shown at
/// creation, and after `secret-key rotate` and `reseal` every stored text names the new key,
/// the running server opens them without a restart, and the old key's line can go.
#[tokio::test]
async fn secrets_are_sealed_at_rest_and_survive_a_key_rotation() {
    let s = TestServer::start_with(FAST_RETRIES).await;
    let key = s.admin_key();
    let recv = Receiver::new();
    let (addr, running) = recv.start("127.0.0.1:0".parse().unwrap()).await;
    let created = s
        .admin(
            &key,
            Method::POST,
            "/webhooks",
            Some(json!({"url": format!("http://{addr}/hook"), "tenant": "acme"})),
        )
        .await;
    created.expect(201);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let secret = created.json["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    *recv.secret.lock().unwrap() = secret.clone();
    let bytes = s.database_bytes();
    assert!(!holds(&bytes, &secret), "the secret is stored in clear");
    let status = key_status(&s);
    let first = status["key_ids"][0].as_str().unwrap().to_owned();
    assert_eq!(status["in_clear"], 0, "{status}");
    assert_eq!(
        status["sealed_by_key"],
        json!({first.clone(): 1}),
        "{status}"
    );
    assert!(holds(&bytes, &format!("rsenc1:{first}:")));

    s.user("alice").await;
    let seq = s.feed(&key, 0).await.len() as i64;
    verified_delivery(&recv, &secret, seq).await;

    // A new key first in the file, then every secret re-sealed with it.
    let out = s.cli_ok(&["secret-key", "rotate"]);
    assert!(out.contains("new key"), "{out}");
    let keys = s.secret_keys();
    assert_eq!(keys.len(), 2, "the old key stays below the new one");
    let resealed: Value =
        serde_json::from_str(s.cli_ok(&["secret-key", "reseal", "--json"]).trim()).unwrap();
    let second = resealed["key_id"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(resealed["resealed"], json!([id.clone()]), "{resealed}");
    assert_eq!(key_status(&s)["sealed_by_key"], json!({second.clone(): 1}));
    // Again: nothing left to do.
    let again: Value =
        serde_json::from_str(s.cli_ok(&["secret-key", "reseal", "--json"]).trim()).unwrap();
    assert_eq!(again["resealed"], json!([]), "{again}");
    assert_eq!(again["already_current"], 1, "{again}");

    // The running server meets the new key id and reads the file again: still verified.
    s.user("bob").await;
    let seq = s.feed(&key, 0).await.len() as i64;
    verified_delivery(&recv, &secret, seq).await;

    // A rotation of the webhook's secret through the API seals with the new key at once.
    let rotated = s
        .admin(
            &key,
            Method::POST,
            &format!("/webhooks/{id}/rotate-secret"),
            None,
        )
        .await;
    rotated.expect(200);
    let new_secret = rotated.json["secret"].as_str().unwrap().to_owned();
    assert_eq!(key_status(&s)["sealed_by_key"], json!({second.clone(): 2}));
    assert!(!holds(&s.database_bytes(), &new_secret));

    // The old key's line removed: nothing needs it any more.
    crate::harness::write_private(s.key_file.as_ref().unwrap(), &format!("{}\n", keys[0]));
    *recv.secret.lock().unwrap() = new_secret.clone();
    s.user("carol").await;
    let seq = s.feed(&key, 0).await.len() as i64;
    verified_delivery(&recv, &new_secret, seq).await;
    verified_delivery(&recv, &secret, seq).await;
    assert_eq!(recv.bad_signatures(), 0);
    running.stop().await;
}

/// A node whose key file lacks the key a secret was sealed with never signs with the sealed
/// text: the attempt fails with an error naming the key and what to do, recorded on the
/// stream, while the admin API keeps working; once the key is back in the file (SIGHUP), the
/// delivery goes through.
#[tokio::test]
async fn a_key_missing_from_the_file_fails_deliveries_with_a_clear_error() {
    let mut s = TestServer::start_with(FAST_RETRIES).await;
    let key = s.admin_key();
    let recv = Receiver::new();
    let (addr, running) = recv.start("127.0.0.1:0".parse().unwrap()).await;
    let out = s.cli_ok(&[
        "webhook",
        "add",
        &format!("http://{addr}/hook"),
        "--tenant",
        "acme",
        "--json",
    ]);
    let hook: Value = serde_json::from_str(out.trim()).unwrap();
    let id = hook["id"].as_str().unwrap().to_owned();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    *recv.secret.lock().unwrap() = secret.clone();
    let sealed_with = key_status(&s)["key_ids"][0].as_str().unwrap().to_owned();
    let old_keys = s.secret_keys();

    // The server stops; its key file now holds another key only, and a node starts on it.
    s.terminate(Duration::from_secs(30));
    let key_file = s.key_file.clone().unwrap();
    let other_dir = s.dir.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    std::fs::copy(crate::harness::new_key_file(&other_dir), &key_file).unwrap();
    let b = s.another_node(FAST_RETRIES).await;
    assert!(
        b.stderr()
            .contains("keys this node's key file does not hold"),
        "{}",
        b.stderr()
    );
    b.user("alice").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let err = loop {
        let w = b.admin_get(&key, &format!("/webhooks/{id}")).await;
        if let Some(e) = w["streams"][0]["last_error"].as_str() {
            break e.to_owned();
        }
        assert!(Instant::now() < deadline, "no failed attempt recorded: {w}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        err.contains(&format!("sealed with key {sealed_with}"))
            && err.contains(&key_file.display().to_string())
            && err.contains("add that key back to the file"),
        "{err}"
    );
    assert!(
        recv.events().is_empty() && recv.bad_signatures() == 0,
        "nothing was sent"
    );
    let list = b.admin(&key, Method::GET, "/webhooks", None).await;
    list.expect(200);
    assert!(!list.text.contains("rsenc1:") && !list.text.contains(&secret));

    // The key is added back; SIGHUP re-reads the file; the delivery goes through.
    let mut text = std::fs::read_to_string(&key_file).unwrap();
    text.push_str(&old_keys.join("\n"));
    text.push('\n');
    crate::harness::write_private(&key_file, &text);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &b.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let seq = b.feed(&key, 0).await.len() as i64;
    verified_delivery(&recv, &secret, seq).await;
    assert!(
        b.stderr().contains("secret key file reloaded"),
        "{}",
        b.stderr()
    );
    running.stop().await;
}

/// Without `--secret-key-file`: on SQLite the server and the CLI share a key file created
/// beside the database (mode 0600), so the two-command start keeps working and secrets are
/// still sealed; on PostgreSQL creating or rotating a webhook is refused with what to do.
#[tokio::test]
async fn without_a_key_file_sqlite_keeps_one_beside_the_database_and_postgres_refuses() {
    let s = TestServer::start_without_key_file(FAST_RETRIES).await;
    let key = s.admin_key();
    let url = "http://127.0.0.1:9/hook";
    if crate::harness::on_postgres() {
        let r = s
            .admin(&key, Method::POST, "/webhooks", Some(json!({"url": url})))
            .await;
        r.expect(409);
        let msg = r.json["error"]["message"].as_str().unwrap();
        assert!(msg.contains("--secret-key-file"), "{msg}");
        let out = s.cli(&["webhook", "add", url]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--secret-key-file"), "{err}");
        return;
    }
    let file = s.dir.path().join("roster.db.key");
    assert!(file.exists(), "created at start");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let recv = Receiver::new();
    let (addr, running) = recv.start("127.0.0.1:0".parse().unwrap()).await;
    let out = s.cli_ok(&["webhook", "add", &format!("http://{addr}/hook"), "--json"]);
    let hook: Value = serde_json::from_str(out.trim()).unwrap();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    *recv.secret.lock().unwrap() = secret.clone();
    assert!(!holds(&s.database_bytes(), &secret));
    let status = key_status(&s);
    assert_eq!(status["key_file"], file.display().to_string(), "{status}");
    assert!(s.stderr().contains(status["key_ids"][0].as_str().unwrap()));
    s.user("alice").await;
    let seq = s.feed(&key, 0).await.len() as i64;
    verified_delivery(&recv, &secret, seq).await;
    // A backup carries the sealed text only.
    let backup = s.dir.path().join("backup.db");
    s.cli_ok(&["backup", "--to", backup.to_str().unwrap()]);
    assert!(!holds(&std::fs::read(&backup).unwrap(), &secret));
    running.stop().await;
}

/// A secret stored in clear (written before secrets were sealed) keeps signing; `serve` warns
/// about it at start without sealing it itself, and `secret-key reseal` seals it.
#[tokio::test]
async fn a_secret_stored_in_clear_keeps_working_until_reseal_seals_it() {
    let mut s = TestServer::start_sqlite_with(FAST_RETRIES).await;
    let key = s.admin_key();
    let recv = Receiver::new();
    let (addr, running) = recv.start("127.0.0.1:0".parse().unwrap()).await;
    let out = s.cli_ok(&["webhook", "add", &format!("http://{addr}/hook"), "--json"]);
    let id = serde_json::from_str::<Value>(out.trim()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.terminate(Duration::from_secs(30));
    // As an earlier version stored it.
    let legacy = "whsec_StoredInClearByAnEarlierVersion";
    let db = rusqlite::Connection::open(s.dir.path().join("roster.db")).unwrap();
    db.execute(
        "UPDATE webhooks SET secret = ?1 WHERE id = ?2",
        (legacy, id.as_str()),
    )
    .unwrap();
    drop(db);
    *recv.secret.lock().unwrap() = legacy.to_owned();
    let b = s.another_node(FAST_RETRIES).await;
    assert!(b.stderr().contains("stored in clear"), "{}", b.stderr());
    assert!(!b.stderr().contains(legacy));
    b.user("alice").await;
    let seq = b.feed(&key, 0).await.len() as i64;
    verified_delivery(&recv, legacy, seq).await;
    assert_eq!(
        key_status(&b)["in_clear"],
        1,
        "serve does not seal it itself"
    );

    let resealed: Value =
        serde_json::from_str(b.cli_ok(&["secret-key", "reseal", "--json"]).trim()).unwrap();
    assert_eq!(resealed["resealed"], json!([id]), "{resealed}");
    assert_eq!(key_status(&b)["in_clear"], 0);
    b.user("bob").await;
    let seq = b.feed(&key, 0).await.len() as i64;
    verified_delivery(&recv, legacy, seq).await;
    running.stop().await;
}
