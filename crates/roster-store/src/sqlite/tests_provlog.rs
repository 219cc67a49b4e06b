//! The provisioning log's counts: successful reads per (tenant, route, minute) and dropped rows
//! per (tenant, minute), added up by upserts, listed, pruned; and "the last request" across
//! rows and counts.

use crate::sqlite::db;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::SqliteStore;
use crate::*;

const T0: OffsetDateTime = datetime!(2026-01-01 09:00:00 UTC);

fn at(secs: i64) -> OffsetDateTime {
    T0 + Duration::seconds(secs)
}

async fn mem() -> SqliteStore {
    SqliteStore::open("sqlite::memory:").await.unwrap()
}

fn read(tenant: &str, route: &str, secs: i64, count: u64, status: u16) -> ReadCount {
    ReadCount {
        id: 0,
        tenant_id: tenant.into(),
        route: route.into(),
        minute: minute_of(at(secs)),
        count,
        last_status: status,
        last_at: at(secs),
    }
}

fn logged(tenant: &str, secs: i64, status: u16) -> ProvisioningEntry {
    ProvisioningEntry {
        id: 0,
        at: at(secs),
        tenant_id: tenant.into(),
        request_id: format!("r{secs}"),
        idp: None,
        user_agent: None,
        method: "POST".into(),
        path: format!("/scim/v2/{tenant}/Users"),
        resource_type: Some("User".into()),
        resource_id: None,
        name: None,
        status,
        scim_type: None,
        detail: None,
        hint: None,
        changed: Vec::new(),
        duration_ms: 1,
        body: None,
        source_addr: None,
        token_prefix: None,
    }
}

fn all() -> ReadQuery {
    ReadQuery {
        limit: 100,
        ..ReadQuery::default()
    }
}

#[test]
fn minutes_start_on_the_minute() {
    assert_eq!(minute_of(at(59)), T0);
    assert_eq!(minute_of(at(60)), at(60));
    assert_eq!(minute_of(T0 + Duration::milliseconds(61_999)), at(60));
    assert_eq!(minute_of(T0), T0);
    // Before the epoch too: the start of the minute, not a truncation towards zero.
    let early = OffsetDateTime::UNIX_EPOCH - Duration::seconds(1);
    assert_eq!(
        minute_of(early),
        OffsetDateTime::UNIX_EPOCH - Duration::minutes(1)
    );
}

#[tokio::test]
async fn counts_of_one_minute_add_up_across_flushes_and_keep_the_newest_status() {
    let s = mem().await;
    let route = "GET /Users/{id}";
    let get = |s: &SqliteStore| {
        let s = s.clone();
        async move {
            let rows = s.list_read_counts("acme", &all()).await.unwrap();
            assert_eq!(rows.len(), 1, "{rows:?}");
            assert_eq!(rows[0].minute, T0);
            (rows[0].count, rows[0].last_status, rows[0].last_at)
        }
    };
    s.add_provisioning_counts(&[read("acme", route, 10, 20, 200)], &[])
        .await
        .unwrap();
    assert_eq!(get(&s).await, (20, 200, at(10)));
    // A second flush (or another process) with an older request of the same minute: the
    // count grows, the newest request stays the one at 10 s.
    s.add_provisioning_counts(&[read("acme", route, 5, 3, 304)], &[])
        .await
        .unwrap();
    assert_eq!(get(&s).await, (23, 200, at(10)));
    // A newer one moves the last status and time.
    s.add_provisioning_counts(&[read("acme", route, 30, 7, 304)], &[])
        .await
        .unwrap();
    assert_eq!(get(&s).await, (30, 304, at(30)));
}

#[tokio::test]
async fn counts_list_newest_minute_first_per_tenant_and_page_by_cursor() {
    let s = mem().await;
    let mut reads = Vec::new();
    for m in 0..3 {
        for route in ["GET /Users", "GET /Users/{id}"] {
            reads.push(read("acme", route, m * 60 + 1, 1, 200));
        }
    }
    reads.push(read("beta", "GET /Groups", 1, 9, 200));
    s.add_provisioning_counts(&reads, &[]).await.unwrap();

    let rows = s.list_read_counts("acme", &all()).await.unwrap();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r.tenant_id == "acme"));
    let minutes: Vec<_> = rows.iter().map(|r| r.minute).collect();
    assert_eq!(
        minutes,
        [at(120), at(120), at(60), at(60), T0, T0],
        "newest minute first"
    );

    // Pages of 4 then the rest, without a row twice or a row missed.
    let first = s
        .list_read_counts("acme", &ReadQuery { limit: 4, ..all() })
        .await
        .unwrap();
    let rest = s
        .list_read_counts(
            "acme",
            &ReadQuery {
                before: Some(first[3].id),
                ..all()
            },
        )
        .await
        .unwrap();
    let paged: Vec<_> = first.iter().chain(&rest).map(|r| r.id).collect();
    assert_eq!(paged, rows.iter().map(|r| r.id).collect::<Vec<_>>());
    // Another tenant's cursor shows nothing of this tenant.
    let beta = s.list_read_counts("beta", &all()).await.unwrap();
    assert_eq!(beta.len(), 1);
    let crossed = s
        .list_read_counts(
            "acme",
            &ReadQuery {
                before: Some(beta[0].id),
                ..all()
            },
        )
        .await
        .unwrap();
    assert!(crossed.is_empty(), "{crossed:?}");

    // Time bounds are on the minute's start.
    let window = s
        .list_read_counts(
            "acme",
            &ReadQuery {
                since: Some(at(60)),
                until: Some(at(120)),
                ..all()
            },
        )
        .await
        .unwrap();
    assert_eq!(window.len(), 2);
    assert!(window.iter().all(|r| r.minute == at(60)));
}

#[tokio::test]
async fn the_last_request_is_the_newest_of_rows_and_counted_reads() {
    let s = mem().await;
    assert_eq!(s.last_request("acme").await.unwrap(), None);
    s.append_provisioning(&[logged("acme", 70, 201)])
        .await
        .unwrap();
    let last = s.last_request("acme").await.unwrap().unwrap();
    assert!(matches!(last, LastRequest::Logged(_)));
    assert_eq!((last.at(), last.status()), (at(70), 201));

    // Reads of an earlier minute, and an earlier read of the same minute, do not hide it.
    s.add_provisioning_counts(
        &[
            read("acme", "GET /Users", 30, 5, 200),
            read("acme", "GET /Users/{id}", 65, 5, 200),
        ],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(s.last_request("acme").await.unwrap().unwrap().at(), at(70));

    // A later read of the same minute is the last request, with its status.
    s.add_provisioning_counts(
        &[
            read("acme", "GET /Groups", 80, 2, 304),
            read("acme", "GET /Users", 75, 1, 200),
        ],
        &[],
    )
    .await
    .unwrap();
    let last = s.last_request("acme").await.unwrap().unwrap();
    let LastRequest::Read(r) = &last else {
        panic!("expected a counted read: {last:?}");
    };
    assert_eq!((r.route.as_str(), r.count), ("GET /Groups", 2));
    assert_eq!((last.at(), last.status()), (at(80), 304));
    assert_eq!(s.last_request("beta").await.unwrap(), None);
}

#[tokio::test]
async fn dropped_rows_are_counted_per_tenant_and_minute() {
    let s = mem().await;
    let drop = |tenant: &str, secs: i64, count: u64| DroppedCount {
        tenant_id: tenant.into(),
        minute: minute_of(at(secs)),
        count,
    };
    s.add_provisioning_counts(&[], &[drop("acme", 1, 3), drop("beta", 1, 100)])
        .await
        .unwrap();
    s.add_provisioning_counts(&[], &[drop("acme", 2, 4), drop("acme", 61, 1)])
        .await
        .unwrap();
    assert_eq!(s.count_dropped("acme", None, None).await.unwrap(), 8);
    assert_eq!(
        s.count_dropped("acme", Some(at(60)), None).await.unwrap(),
        1
    );
    assert_eq!(
        s.count_dropped("acme", None, Some(at(60))).await.unwrap(),
        7
    );
    assert_eq!(s.count_dropped("gamma", None, None).await.unwrap(), 0);
}

#[tokio::test]
async fn counts_are_pruned_by_minute_in_batches() {
    let s = mem().await;
    s.add_provisioning_counts(
        &[
            read("acme", "GET /Users", 1, 1, 200),
            read("acme", "GET /Groups", 1, 1, 200),
            read("acme", "GET /Users", 61, 1, 200),
        ],
        &[DroppedCount {
            tenant_id: "acme".into(),
            minute: T0,
            count: 2,
        }],
    )
    .await
    .unwrap();
    assert_eq!(s.prune_provisioning_counts(at(60), 2).await.unwrap(), 2);
    assert_eq!(s.prune_provisioning_counts(at(60), 2).await.unwrap(), 1);
    assert_eq!(s.prune_provisioning_counts(at(60), 2).await.unwrap(), 0);
    let left = s.list_read_counts("acme", &all()).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].minute, at(60));
    assert_eq!(s.count_dropped("acme", None, None).await.unwrap(), 0);
}

#[tokio::test]
async fn the_newest_read_and_the_listing_use_the_index() {
    let s = mem().await;
    // The newest read sorts the rows of one minute (a handful); the listing must not sort the
    // tenant's whole table.
    for (sql, sorts) in [
        (
            "EXPLAIN QUERY PLAN SELECT id FROM provisioning_reads WHERE tenant_id = ?1 AND minute = \
             (SELECT MAX(minute) FROM provisioning_reads WHERE tenant_id = ?1) \
             ORDER BY last_at DESC LIMIT 1",
            true,
        ),
        (
            "EXPLAIN QUERY PLAN SELECT id FROM provisioning_reads WHERE tenant_id = ?1 \
             ORDER BY minute DESC, id DESC LIMIT 10",
            false,
        ),
    ] {
        let steps: Vec<(i64, i64, i64, String)> = db::query_as(sql)
            .bind("acme")
            .fetch_all(&s.reader)
            .await
            .unwrap();
        let steps: Vec<String> = steps.into_iter().map(|r| r.3).collect();
        // A search of the tenant's part of the index.
        assert!(
            steps
                .iter()
                .any(|d| d.starts_with("SEARCH provisioning_reads") && d.contains("INDEX")),
            "{sql}: {steps:?}"
        );
        assert!(
            !steps
                .iter()
                .any(|d| d.starts_with("SCAN provisioning_reads")
                    || (!sorts && d == "USE TEMP B-TREE FOR ORDER BY")),
            "{sql}: {steps:?}"
        );
    }
}
