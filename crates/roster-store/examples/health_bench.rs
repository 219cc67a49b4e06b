//! The "fast at scale" scenario of the console's health view (issue 14): fills a new SQLite
//! database with 1,000 tenants and 1,000,000 provisioning-log rows through the store API (the
//! writer's batch appends of 500, which also keep the hourly rollup), then times what the
//! console reads: every page of 50 of `tenants_health`, and `tenant_hourly` over 7 days.
//!
//! ```sh
//! cargo run --release -p roster-store --example health_bench
//! HEALTH_BENCH_TENANTS=1000 HEALTH_BENCH_ROWS=1000000 HEALTH_BENCH_DB=/tmp/h.db \
//!     cargo run --release -p roster-store --example health_bench
//! ```
//!
//! The database is removed at the end unless `HEALTH_BENCH_DB` names it (then it is kept, and
//! a second run against it skips the fill).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // A bench program.

use std::time::{Duration as StdDuration, Instant};

use roster_store::sqlite::SqliteStore;
use roster_store::{
    DeliveryResult, HealthStore, LogQuery, LogStore, ProvisioningEntry, ReadCount, StatusClass,
    Store, Tenant, TenantSettings, TokenRecord, Webhook, WebhookStore,
};
use time::{Duration, OffsetDateTime};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift), so that every run writes the same rows.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn summary(label: &str, mut times: Vec<StdDuration>) {
    times.sort();
    let ms = |d: StdDuration| d.as_secs_f64() * 1000.0;
    let p = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        ms(times[i])
    };
    println!(
        "{label}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        times.len(),
        p(0.5),
        p(0.99),
        ms(*times.last().unwrap())
    );
}

#[tokio::main]
async fn main() {
    let tenants = env_u64("HEALTH_BENCH_TENANTS", 1000);
    let rows = env_u64("HEALTH_BENCH_ROWS", 1_000_000);
    let kept = std::env::var("HEALTH_BENCH_DB").ok();
    let path = kept.clone().unwrap_or_else(|| {
        std::env::temp_dir()
            .join(format!("roster-health-bench-{}.db", std::process::id()))
            .display()
            .to_string()
    });
    let exists = std::path::Path::new(&path).exists();
    let store = SqliteStore::open(&format!("sqlite://{path}"))
        .await
        .unwrap();
    // A fixed "now" on an hour boundary plus 30 minutes: the figures do not depend on the day.
    let now = OffsetDateTime::from_unix_timestamp(1_796_385_600 + 1800).unwrap();
    let id = |i: u64| format!("tenant-{i:04}");

    if exists {
        println!("{path} exists: reusing its rows");
    } else {
        let started = Instant::now();
        for i in 0..tenants {
            store
                .create_tenant(&Tenant {
                    id: id(i),
                    name: format!("Tenant {i}"),
                    idp: "okta".into(),
                    created_at: now - Duration::days(30),
                    settings: TenantSettings::default(),
                })
                .await
                .unwrap();
            store
                .insert_token(&TokenRecord {
                    prefix: format!("rsct_{i:08}"),
                    tenant_id: id(i),
                    hash: format!("{i:064}"),
                    created_at: now - Duration::days(30),
                    expires_at: now + Duration::days(i64::try_from(i % 400).unwrap() + 1),
                    last_used_at: None,
                    revoked_at: None,
                })
                .await
                .unwrap();
        }
        // One webhook for every tenant (a stream each), failing for one tenant in ten.
        store
            .create_webhook(&Webhook {
                id: "wh_bench".into(),
                tenant_id: None,
                url: "http://127.0.0.1:9/hook".into(),
                description: None,
                event_types: vec![],
                secret: "s".into(),
                previous_secret: None,
                previous_expires_at: None,
                enabled: true,
                created_at: now - Duration::days(30),
            })
            .await
            .unwrap();
        for i in (0..tenants).step_by(10) {
            let failed = DeliveryResult::Failed {
                attempts: 3,
                next_attempt_at: now,
                failing_since: now - Duration::hours(1),
                error: "HTTP 503".into(),
                park: false,
            };
            store
                .record_delivery("wh_bench", &id(i), 0, "bench", &failed, now)
                .await
                .unwrap();
        }
        println!(
            "{tenants} tenants, tokens and webhook streams in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        // Rows spread over the last 7 days, as the writer appends them: batches of 500 in time
        // order, with the counted reads of the same stretch flushed alongside.
        let started = Instant::now();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let span_ms = 7 * 86_400_000_i64;
        let batch = 500;
        let batches = rows.div_ceil(batch);
        for b in 0..batches {
            let n = batch.min(rows - b * batch);
            let t0 = now - Duration::milliseconds(span_ms)
                + Duration::milliseconds(
                    span_ms * i64::try_from(b).unwrap() / i64::try_from(batches).unwrap(),
                );
            let mut entries = Vec::with_capacity(usize::try_from(n).unwrap());
            for k in 0..n {
                let tenant = id(rng.below(tenants));
                let status = match rng.below(100) {
                    0..=84 => [200, 201, 204][usize::try_from(rng.below(3)).unwrap()],
                    85..=89 => 401,
                    90..=95 => [400, 404, 409][usize::try_from(rng.below(3)).unwrap()],
                    _ => 503,
                };
                let method = ["POST", "PATCH", "PUT", "DELETE", "GET"]
                    [usize::try_from(rng.below(5)).unwrap()];
                entries.push(ProvisioningEntry {
                    id: 0,
                    at: t0 + Duration::milliseconds(i64::try_from(k).unwrap()),
                    path: format!("/scim/v2/{tenant}/Users/{}", rng.below(100_000)),
                    tenant_id: tenant,
                    request_id: format!("req-{b}-{k}"),
                    idp: Some("okta".into()),
                    user_agent: Some("Okta SCIM Client 1.0.0".into()),
                    method: method.into(),
                    resource_type: Some("User".into()),
                    resource_id: None,
                    name: Some(format!("user{}@example.com", rng.below(100_000))),
                    status,
                    scim_type: None,
                    detail: (status >= 400).then(|| "something went wrong".to_owned()),
                    hint: None,
                    changed: vec![],
                    duration_ms: 3,
                    body: None,
                    source_addr: None,
                    token_prefix: None,
                });
            }
            store.append_provisioning(&entries).await.unwrap();
            if b % 20 == 0 {
                let reads: Vec<ReadCount> = (0..50)
                    .map(|_| ReadCount {
                        id: 0,
                        tenant_id: id(rng.below(tenants)),
                        route: "GET /Users".into(),
                        minute: roster_store::minute_of(t0),
                        count: 1 + rng.below(20),
                        last_status: 200,
                        last_at: t0,
                    })
                    .collect();
                store.add_provisioning_counts(&reads, &[]).await.unwrap();
            }
            if (b + 1) % 200 == 0 {
                println!(
                    "  {} rows in {:.1} s",
                    (b + 1) * batch,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{rows} rows appended in {secs:.1} s ({:.0} rows/s, batches of {batch})",
            rows as f64 / secs
        );
    }

    // The tenants list: every page of 50, three times over (the first pass warms the cache).
    let mut pages = Vec::new();
    for pass in 0..3 {
        let mut after: Option<String> = None;
        loop {
            let t = Instant::now();
            let page = store
                .tenants_health(after.as_deref(), 50, now)
                .await
                .unwrap();
            if pass > 0 {
                pages.push(t.elapsed());
            }
            match page.last() {
                Some(h) if page.len() == 50 => after = Some(h.tenant_id.clone()),
                _ => break,
            }
        }
    }
    summary("tenants_health, page of 50", pages);
    let first = store.tenants_health(None, 1, now).await.unwrap();
    println!("  e.g. {:?}", first.first());

    // A tenant's chart: 7 days, hour by hour.
    let mut charts = Vec::new();
    for i in 0..tenants.min(200) {
        let t = Instant::now();
        // As the admin API asks: the current hour and the 167 before it.
        let since = roster_store::hour_of(now) - Duration::hours(167);
        let hours = store.tenant_hourly(&id(i), since, now).await.unwrap();
        charts.push(t.elapsed());
        assert_eq!(hours.len(), 24 * 7);
    }
    summary("tenant_hourly, 7 days", charts);

    // The log page's filters on one tenant (about rows / tenants rows each).
    for (label, q) in [
        ("log page, no filter", LogQuery::default()),
        (
            "log page, 5xx",
            LogQuery {
                status_class: Some(StatusClass::ServerError),
                ..LogQuery::default()
            },
        ),
        (
            "log page, text \"users/4242\"",
            LogQuery {
                text: Some("users/4242".into()),
                ..LogQuery::default()
            },
        ),
    ] {
        let mut times = Vec::new();
        for i in 0..tenants.min(100) {
            let q = LogQuery {
                limit: 50,
                ..q.clone()
            };
            let t = Instant::now();
            store.list_provisioning(&id(i), &q).await.unwrap();
            times.push(t.elapsed());
        }
        summary(label, times);
    }

    drop(store);
    if kept.is_none() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
}
