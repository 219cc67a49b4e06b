//! The console's contains-search at scale (issue 14, "Lists"): fills a new SQLite database
//! with one tenant of `SEARCH_BENCH_USERS` users (100,000 by default) through the store's
//! import (batches of 1,000), then times `list_app_users` with `contains` (a page of 25 and
//! the total, as the console's users page asks) for texts found in few and in many users,
//! and a sorted page deep in the list.
//!
//! ```sh
//! cargo run -p roster-store --example search_bench
//! SEARCH_BENCH_USERS=100000 SEARCH_BENCH_DB=/tmp/s.db cargo run -p roster-store --example search_bench
//! ```
//!
//! The database is removed at the end unless `SEARCH_BENCH_DB` names it (then it is kept, and
//! a second run against it skips the fill).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // A bench program.

use std::time::{Duration as StdDuration, Instant};

use roster_store::app::{AppSort, AppStore, AppUserQuery, ImportUser};
use roster_store::sqlite::SqliteStore;
use roster_store::{Store, Tenant, TenantSettings};
use serde_json::json;
use time::OffsetDateTime;

const GIVEN: [&str; 8] = ["Ann", "Bob", "Carla", "Dev", "Eve", "Femi", "Gus", "Hana"];
const FAMILY: [&str; 8] = [
    "Anderson", "Baker", "Castillo", "Dubois", "Eriksen", "Fischer", "Gupta", "Haddad",
];

fn summary(label: &str, mut times: Vec<StdDuration>) {
    times.sort();
    let ms = |d: StdDuration| d.as_secs_f64() * 1000.0;
    let p50 = ms(times[times.len() / 2]);
    let max = ms(*times.last().unwrap());
    println!("{label}: n={} p50={p50:.2} ms max={max:.2} ms", times.len());
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("SEARCH_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let kept = std::env::var("SEARCH_BENCH_DB").ok();
    let path = kept.clone().unwrap_or_else(|| {
        std::env::temp_dir()
            .join(format!("roster-search-bench-{}.db", std::process::id()))
            .display()
            .to_string()
    });
    let fresh = !std::path::Path::new(&path).exists();
    let store = SqliteStore::open(&format!("sqlite://{path}"))
        .await
        .expect("open");
    let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    if fresh {
        store
            .create_tenant(&Tenant {
                id: "t".into(),
                name: "T".into(),
                idp: "generic".into(),
                created_at: now,
                settings: TenantSettings::default(),
            })
            .await
            .unwrap();
        let started = Instant::now();
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            let users = chunk
                .iter()
                .map(|i| {
                    let given = GIVEN[i % GIVEN.len()];
                    let family = FAMILY[(i / 8) % FAMILY.len()];
                    ImportUser {
                        id: format!("u{i}"),
                        doc: json!({
                            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                            "userName": format!("{}.{}{i}@example.com", given.to_lowercase(), family.to_lowercase()),
                            "name": {"givenName": given, "familyName": format!("{family}{i}")},
                            "emails": [{"value": format!("user{i}@corp{}.example", i % 97), "primary": true}],
                        }),
                        roles: vec![],
                        groups: vec![],
                        metadata: json!({}),
                    }
                })
                .collect();
            store.import_users("t", users, now).await.unwrap();
        }
        println!(
            "filled {n} users in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    for (label, text) in [
        ("contains, one match (\"user4242@\")", "user4242@"),
        ("contains, ~1/8 of the users (\"dubois\")", "dubois"),
        ("contains, ~1/97 (\"corp42.\")", "corp42."),
        ("contains, none (\"zzzz\")", "zzzz"),
    ] {
        let mut times = Vec::new();
        let mut total = 0;
        for _ in 0..20 {
            let t = Instant::now();
            let page = store
                .list_app_users(
                    "t",
                    &AppUserQuery {
                        limit: 25,
                        contains: Some(text.into()),
                        sort: AppSort::Name,
                        count: true,
                        ..AppUserQuery::default()
                    },
                )
                .await
                .unwrap();
            times.push(t.elapsed());
            total = page.total.unwrap_or(0);
        }
        summary(&format!("{label}, page of 25 + total ({total})"), times);
    }
    let mut times = Vec::new();
    let mut cursor = None;
    for _ in 0..40 {
        let t = Instant::now();
        let page = store
            .list_app_users(
                "t",
                &AppUserQuery {
                    limit: 25,
                    sort: AppSort::LastModified,
                    desc: true,
                    cursor: cursor.clone(),
                    count: true,
                    ..AppUserQuery::default()
                },
            )
            .await
            .unwrap();
        times.push(t.elapsed());
        cursor = page.next_cursor;
    }
    summary("unfiltered, last changed first, 40 pages on + total", times);
    drop(store);
    if kept.is_none() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
}
