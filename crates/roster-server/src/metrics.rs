//! `GET /metrics` (Prometheus / OpenMetrics text) and `GET /readyz`.
//!
//! Requests are counted by tenant, route and status, with a latency histogram per route, as
//! they finish ([`track`]); everything else is read when scraped: 429s per limit, the
//! provisioning log's queue, the database pools, and per webhook endpoint the events it lags
//! behind and its consecutive failures (one cheap query per stream), so that a scrape shows
//! the state of the moment and nothing is kept twice.
//!
//! Labels stay bounded: routes are the router's templates (`/scim/v2/{tenant}/Users/{id}`),
//! never raw paths; the tenant label is set only for authenticated SCIM requests (a stranger's
//! requests name any tenant), otherwise it is empty.
//!
//! On the public address `/metrics` needs an admin key (it names tenants); with
//! `--admin-listen`, `/metrics`, `/readyz` and `/healthz` are also served without one on that
//! (internal) address ([`ops_router`]).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::admin::AdminAuth;
use crate::AppState;

/// The tenant an authenticated SCIM request belongs to, left on its response for [`track`].
#[derive(Debug, Clone)]
pub struct AuthedTenant(pub String);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    tenant: String,
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabels {
    webhook: String,
    tenant: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The request metrics of one process.
#[derive(Debug, Clone)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

/// Middleware: counts each request by tenant, route and status, and its latency by route.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let resp = next.run(req).await;
    let tenant = resp
        .extensions()
        .get::<AuthedTenant>()
        .map(|t| t.0.clone())
        .unwrap_or_default();
    let m = &state.metrics;
    m.requests
        .get_or_create(&RequestLabels {
            tenant,
            method: method.clone(),
            route: route.clone(),
            status: resp.status().as_u16(),
        })
        .inc();
    m.latency
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// The metrics of this moment, as OpenMetrics text.
async fn render(state: &AppState) -> String {
    let mut reg = Registry::default();
    reg.register(
        "roster_http_requests",
        "HTTP requests by tenant (authenticated SCIM requests only), method, route template and status",
        state.metrics.requests.clone(),
    );
    reg.register(
        "roster_http_request_duration_seconds",
        "Time until the response started, by method and route template",
        state.metrics.latency.clone(),
    );

    let limited = Family::<LimitLabels, Counter>::default();
    for (limit, n) in state.limiters.refused() {
        limited
            .get_or_create(&LimitLabels {
                limit: limit.to_owned(),
            })
            .inc_by(n);
    }
    reg.register(
        "roster_rate_limited",
        "Requests refused with 429 (or 503 when no password-hashing slot came free), by limit",
        limited,
    );

    let queue = Gauge::<i64>::default();
    queue.set(i64::try_from(state.provlog.queued()).unwrap_or(i64::MAX));
    reg.register(
        "roster_provisioning_log_queue",
        "Provisioning-log rows waiting for the writer",
        queue,
    );
    let dropped = Counter::<u64>::default();
    dropped.inc_by(state.provlog.dropped());
    reg.register(
        "roster_provisioning_log_dropped",
        "Provisioning-log rows dropped because the queue stayed full (counted per tenant in the log)",
        dropped,
    );

    let pool_size = Family::<PoolLabels, Gauge>::default();
    let pool_used = Family::<PoolLabels, Gauge>::default();
    let pool_waiting = Family::<PoolLabels, Gauge>::default();
    for p in state.store.pool_status() {
        let l = PoolLabels {
            pool: p.name.to_owned(),
        };
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        pool_size.get_or_create(&l).set(n(p.size));
        pool_used.get_or_create(&l).set(n(p.in_use));
        pool_waiting.get_or_create(&l).set(n(p.waiting));
    }
    reg.register(
        "roster_db_pool_connections",
        "Most connections of a database pool",
        pool_size,
    );
    reg.register(
        "roster_db_pool_in_use",
        "Connections of a database pool taken now (saturated when equal to roster_db_pool_connections)",
        pool_used,
    );
    reg.register(
        "roster_db_pool_waiting",
        "Callers waiting for a connection",
        pool_waiting,
    );

    let lag = Family::<StreamLabels, Gauge>::default();
    let failures = Family::<StreamLabels, Gauge>::default();
    let parked = Family::<StreamLabels, Gauge>::default();
    let undelivered = Gauge::<i64>::default();
    let mut scrape_ok = 1;
    match state.store.list_streams(None).await {
        Ok(streams) => {
            let mut heads = std::collections::HashMap::new();
            for s in streams {
                let head = match heads.get(&s.tenant_id) {
                    Some(h) => *h,
                    None => match state.store.last_seq(&s.tenant_id).await {
                        Ok(h) => {
                            heads.insert(s.tenant_id.clone(), h);
                            h
                        }
                        Err(_) => {
                            scrape_ok = 0;
                            continue;
                        }
                    },
                };
                let l = StreamLabels {
                    webhook: s.webhook_id.clone(),
                    tenant: s.tenant_id.clone(),
                };
                let behind = (head - s.cursor).max(0);
                lag.get_or_create(&l).set(behind);
                undelivered.inc_by(behind);
                failures.get_or_create(&l).set(s.attempts);
                parked
                    .get_or_create(&l)
                    .set(i64::from(s.state == roster_store::StreamState::Parked));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading webhook streams for /metrics failed");
            scrape_ok = 0;
        }
    }
    reg.register(
        "roster_webhook_lag_events",
        "Events of the tenant not yet delivered to the webhook endpoint",
        lag,
    );
    reg.register(
        "roster_webhook_consecutive_failures",
        "Failed attempts at delivering the endpoint's next event",
        failures,
    );
    reg.register(
        "roster_webhook_parked",
        "1 when the endpoint's stream is parked (retries exhausted; redeliver to resume)",
        parked,
    );
    reg.register(
        "roster_outbox_undelivered_events",
        "Events not yet delivered, summed over every webhook endpoint",
        undelivered,
    );
    let ok = Gauge::<i64>::default();
    ok.set(scrape_ok);
    reg.register(
        "roster_metrics_database_ok",
        "1 when this scrape could read what it needs from the database",
        ok,
    );

    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &reg).is_err() {
        out.clear();
    }
    out
}

fn metrics_response(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// `GET /metrics` on the public address: with an admin key, since it names tenants.
pub async fn metrics_with_key(State(state): State<AppState>, _auth: AdminAuth) -> Response {
    metrics_response(render(&state).await)
}

/// `GET /metrics` on the `--admin-listen` address.
pub async fn metrics_open(State(state): State<AppState>) -> Response {
    metrics_response(render(&state).await)
}

/// `GET /readyz`: 200 when the database answers (migrations are applied before the server
/// listens), 503 otherwise, so a load balancer sends no traffic to a node that cannot serve.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.auth_epoch().await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the database does not answer\n",
            )
                .into_response()
        }
    }
}

/// The router of the `--admin-listen` address: `/metrics`, `/readyz` and `/healthz`, without
/// authentication (bind it to an internal address).
pub fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_open))
        .route("/readyz", get(readyz))
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .with_state(state)
}
