//! Roster's HTTP server: SCIM 2.0 endpoints per tenant, bearer-token auth, input limits,
//! request logging and graceful shutdown; the admin API under `/api/v1` ([`admin`]) and the
//! web console ([`console`]), both on the operations they share with the CLI ([`ops`]); and the
//! background tasks [`serve`] runs beside the requests: webhook delivery ([`webhooks`]), the
//! provisioning-log writer and its pruning ([`provlog`]), token-expiry warnings
//! ([`ops::tokens`]), and the authentication cache's sync and last-use flush ([`auth`],
//! [`auth_cache`]).
//!
//! Handlers are thin: they parse HTTP into protocol values, call [`service`], and turn the
//! result (or a [`error::HttpError`]) into a response. The server never writes SQL; it talks
//! to an `Arc<dyn Store>`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, StatusCode};
use axum::routing::{any, get};
use axum::Router;
use roster_store::Store;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub mod admin;
pub mod auth;
pub mod auth_cache;
pub mod body;
pub mod bulk;
pub mod changes;
pub mod conn;
pub mod console;
pub mod custom_indexes;
pub mod dialect;
pub mod discovery;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod ops;
pub mod provlog;
pub mod ratelimit;
pub mod scim;
pub mod secretbox;
pub mod service;
pub mod tls;
pub mod tokens;
pub mod urls;
pub mod webhooks;

/// Where "now" comes from; injected so tests can control time.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock, truncated to milliseconds (the precision Roster stores and returns).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        #[allow(clippy::disallowed_methods)] // the one place that reads the real clock
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(now.millisecond() as u32 * 1_000_000)
            .unwrap_or(now)
    }
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Scheme and authority used in base URLs and `meta.location` (e.g.
    /// `https://scim.example.com`); when `None`, [`Settings::local_origin`].
    pub public_url: Option<String>,
    /// Without a public URL, the loopback address the server listens on
    /// (`http://127.0.0.1:8080`), which `roster serve` then requires: base URLs, setup links
    /// and the console's same-origin check use it, never the request's `Host` header.
    pub local_origin: Option<String>,
    /// Run for local development (`--insecure-dev`): session cookies without `Secure` even
    /// under a public URL that is not loopback.
    pub insecure_dev: bool,
    /// Roster terminates TLS itself (`--tls-cert`): responses carry HSTS.
    pub tls: Option<Arc<tls::CertStore>>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest page size (`count`), advertised as `filter.maxResults`.
    pub max_page_size: u64,
    /// The most operations one Bulk request may have (`maxOperations`).
    pub bulk_max_operations: usize,
    /// Page size when the client gives no `count`.
    pub default_page_size: u64,
    /// Webhook delivery settings.
    pub webhooks: webhooks::WebhookSettings,
    /// How long provisioning-log rows are kept.
    pub log_retention: Duration,
    /// How often old provisioning-log rows are pruned.
    pub log_prune_interval: Duration,
    /// How often tokens about to expire are looked for (`token.expiring`).
    pub token_check_interval: Duration,
    /// How often the noted uses of tokens and admin keys are written (`last_used_at`).
    pub token_use_flush_interval: Duration,
    /// How often the authentication cache looks for changes made by other processes; a
    /// revocation elsewhere takes effect here within about this long.
    pub auth_sync_interval: Duration,
    /// Connection and request limits: header, body and request deadlines, most connections.
    pub limits: conn::Limits,
    /// Rate limits (429 with `Retry-After`) and the cap on in-memory filter evaluation.
    pub rate: ratelimit::RateSettings,
    /// Peers trusted to say who the client is (`X-Forwarded-For`), e.g. the TLS proxy.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The keys that seal webhook signing secrets at rest (`--secret-key-file`).
    pub secret_keys: Arc<secretbox::KeyRing>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            public_url: None,
            local_origin: None,
            insecure_dev: false,
            tls: None,
            max_body_bytes: 1024 * 1024,
            max_page_size: 1000,
            bulk_max_operations: 1000,
            default_page_size: 100,
            webhooks: webhooks::WebhookSettings::default(),
            log_retention: Duration::from_secs(90 * 24 * 3600),
            log_prune_interval: Duration::from_secs(3600),
            token_check_interval: Duration::from_secs(3600),
            token_use_flush_interval: Duration::from_secs(60),
            auth_sync_interval: Duration::from_millis(250),
            limits: conn::Limits::default(),
            rate: ratelimit::RateSettings::default(),
            trusted_proxies: Vec::new(),
            secret_keys: Arc::new(secretbox::KeyRing::ephemeral()),
        }
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The storage backend.
    pub store: Arc<dyn Store>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Settings.
    pub settings: Arc<Settings>,
    /// Successful uses of tokens and admin keys, written in the background.
    pub token_uses: Arc<auth::UseTracker>,
    /// Tokens, their tenants and admin keys, kept in memory for authentication.
    pub auth: Arc<auth_cache::AuthCache>,
    /// Queues provisioning-log rows for the writer task.
    pub provlog: Arc<provlog::Recorder>,
    /// This process's name among the nodes sharing the database: it holds webhook delivery
    /// leases and claims periodic jobs under this name (see [`jobs`]).
    pub node: Arc<str>,
    /// Rate-limit budgets of this process.
    pub limiters: Arc<ratelimit::Limiters>,
    /// Request counts and latencies for `/metrics`.
    pub metrics: metrics::Metrics,
    /// Password hashes computed at once (console sign-in, SCIM `password`): about one per
    /// core, so that a flood of sign-ins cannot take every core and the memory Argon2 needs.
    pub hashing: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// State with the system clock.
    pub fn new(store: Arc<dyn Store>, settings: Settings) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
            settings: Arc::new(settings),
            token_uses: Arc::new(auth::UseTracker::default()),
            auth: Arc::new(auth_cache::AuthCache::new()),
            provlog: Arc::new(provlog::Recorder::default()),
            node: jobs::node_name().into(),
            limiters: Arc::new(ratelimit::Limiters::default()),
            metrics: metrics::Metrics::default(),
            hashing: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            )),
        }
    }
}

/// A tenant's SCIM routes with the provisioning log around them.
fn scim_routes(state: &AppState) -> Router<AppState> {
    scim::routes(state.clone()).layer(axum::middleware::from_fn_with_state(
        state.clone(),
        provlog::middleware,
    ))
}

/// The SCIM routes alone, under `/scim/v2/{tenant}`, as one service: what a Bulk operation is
/// dispatched through, exactly as if it had come as a request of its own.
pub(crate) fn scim_service(state: AppState) -> Router {
    Router::new()
        .nest("/scim/v2/{tenant}", scim_routes(&state))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let limit = state.settings.limits.request;
    let hsts = state.settings.tls.is_some();
    Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route("/readyz", get(metrics::readyz))
        .route("/metrics", get(metrics::metrics_with_key))
        // Bulk runs its operations through the same SCIM routes (and log), so it sits beside
        // them rather than among them; its own request is not a log row, its operations are.
        .route("/scim/v2/{tenant}/Bulk", any(bulk::handler))
        .nest("/scim/v2/{tenant}", scim_routes(&state))
        .nest("/api/v1", admin::routes())
        .nest("/console", console::routes())
        .fallback(|| async { error::HttpError::status(404, "no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::map_response(
            move |mut resp: axum::response::Response| async move {
                if hsts {
                    // Served over TLS: browsers use https for this host from now on (a year).
                    resp.headers_mut().insert(
                        axum::http::header::STRICT_TRANSPORT_SECURITY,
                        axum::http::HeaderValue::from_static("max-age=31536000"),
                    );
                }
                resp
            },
        ))
        .layer(axum::middleware::from_fn(move |req: Request, next: axum::middleware::Next| {
            // Each exempt route has its own bound: the event feed's long poll (`wait` ≤ 30 s),
            // and an import of app users (its 16 MiB body; a large one may take longer than
            // the limit on a busy database, and cutting it would leave it half done).
            let path = req.uri().path();
            let exempt = path.ends_with("/events") || path.ends_with("/user-imports");
            async move {
                if exempt {
                    next.run(req).await
                } else {
                    conn::request_timeout(limit, req, next).await
                }
            }
        }))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The path is logged, never headers: the Authorization header stays out of logs.
                let path = console::loggable_path(req.uri().path());
                tracing::info_span!("request", method = %req.method(), path = %path, request_id = %id)
            })
            .on_request(())
            .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Serves the operations endpoints ([`metrics::ops_router`]: `/metrics`, `/readyz`,
/// `/healthz`, without authentication) on `listener`, the `--admin-listen` address, until
/// `shutdown` resolves.
///
/// # Errors
/// When accepting connections fails.
pub async fn serve_ops(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.settings.limits;
    conn::serve(
        listener,
        metrics::ops_router(state),
        limits,
        None,
        shutdown,
        Duration::from_secs(5),
    )
    .await
}

/// Serves `router(state)` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish (bounded by a 30-second grace period). Runs the background tasks beside it
/// (webhook delivery, provisioning-log writer and pruning, token-expiry warnings, the builds of
/// custom-attribute indexes, the auth cache's sync and the last-use flush) and stops them after the requests, flushing the
/// provisioning log and the last uses.
///
/// # Errors
/// When accepting connections fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Err(e) = roster_store::load_global_custom_schemas(state.store.as_ref()).await {
        tracing::warn!(error = %e, "reading the global custom schemas failed; retrying");
    }
    if let Err(e) = ops::branding::load(state.store.as_ref()).await {
        tracing::warn!(error = %e, "reading the branding failed; retrying");
    }
    let writer = tokio::spawn(provlog::run_writer(state.clone(), stop_rx.clone()));
    let pruner = tokio::spawn(jobs::run_periodic(
        state.clone(),
        "log-prune",
        state.settings.log_prune_interval,
        stop_rx.clone(),
        provlog::prune,
    ));
    let expiry = tokio::spawn(jobs::run_periodic(
        state.clone(),
        "token-expiry-warnings",
        state.settings.token_check_interval,
        stop_rx.clone(),
        ops::tokens::expiry_warnings,
    ));
    let index_backfill = tokio::spawn(jobs::run_periodic(
        state.clone(),
        "custom-index-backfill",
        Duration::from_secs(10),
        stop_rx.clone(),
        custom_indexes::backfill_job,
    ));
    let index_reconcile = tokio::spawn(jobs::run_periodic(
        state.clone(),
        "custom-index-reconcile",
        Duration::from_secs(60),
        stop_rx.clone(),
        custom_indexes::reconcile_job,
    ));
    let auth_sync = tokio::spawn(auth::run_cache_sync(
        state.clone(),
        state.settings.auth_sync_interval,
        stop_rx.clone(),
    ));
    let uses = tokio::spawn(auth::run_use_flusher(
        state.clone(),
        state.settings.token_use_flush_interval,
        stop_rx.clone(),
    ));
    let reload = tokio::spawn(tls::reload_on_sighup(
        state.settings.tls.clone(),
        state.settings.secret_keys.clone(),
        stop_rx.clone(),
    ));
    let deliveries = tokio::spawn(webhooks::run(state.clone(), stop_rx));
    let limits = state.settings.limits;
    let acceptor = match &state.settings.tls {
        Some(certs) => Some(tls::acceptor(certs.clone()).map_err(std::io::Error::other)?),
        None => None,
    };
    let result = conn::serve(
        listener,
        router(state),
        limits,
        acceptor,
        shutdown,
        Duration::from_secs(30),
    )
    .await;
    reload.abort();
    let _ = stop_tx.send(true);
    // The writer drains what the finished requests queued; bounded so shutdown cannot hang.
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    // Best effort: the last uses noted by the finished requests.
    let _ = tokio::time::timeout(Duration::from_secs(5), uses).await;
    // Deliveries stop and release their leases, so other nodes continue at once.
    let _ = tokio::time::timeout(Duration::from_secs(5), deliveries).await;
    auth_sync.abort();
    pruner.abort();
    expiry.abort();
    index_backfill.abort();
    index_reconcile.abort();
    result
}
