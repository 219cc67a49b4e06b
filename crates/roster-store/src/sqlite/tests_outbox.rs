//! The outbox's multi-row insert, across its chunk boundary.

use serde_json::json;
use time::macros::datetime;

use super::SqliteStore;
use crate::*;

#[tokio::test]
async fn many_events_of_one_write_get_consecutive_seqs_across_insert_chunks() {
    let s = SqliteStore::open("sqlite::memory:").await.unwrap();
    let t0 = datetime!(2026-01-01 00:00:00 UTC);
    s.create_tenant(&Tenant {
        id: "t".into(),
        name: "T".into(),
        idp: "generic".into(),
        created_at: t0,
        settings: TenantSettings::default(),
    })
    .await
    .unwrap();
    let first = s
        .append_events(
            "t",
            vec![NewEvent::new(EventType::UserCreated, json!({"n": 0}))],
            t0,
        )
        .await
        .unwrap();
    let base = first[0].seq;
    let many: Vec<NewEvent> = (1..=250)
        .map(|n| NewEvent::new(EventType::UserCreated, json!({"n": n})))
        .collect();
    let appended = s.append_events("t", many, t0).await.unwrap();
    let seqs: Vec<i64> = appended.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (base + 1..=base + 250).collect::<Vec<_>>());
    let listed = s.list_events("t", base, &[], 1000).await.unwrap();
    assert_eq!(listed.len(), 250);
    for (i, e) in listed.iter().enumerate() {
        assert_eq!(e.seq, base + 1 + i64::try_from(i).unwrap());
        assert_eq!(e.data, json!({"n": i + 1}));
        assert_eq!(e.id, appended[i].id);
    }
}
