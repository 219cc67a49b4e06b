//! Smoke tests of the operator-side stores, the console, meta values and the outbox on
//! PostgreSQL: each method once, through its trait, on a database of its own. What each
//! method must do in detail is the conformance suite's (`crate::conformance`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;

use futures::TryStreamExt;
use serde_json::json;
use time::Duration;

use super::db;
use super::testdb::TestDb;
use super::PostgresStore;
use crate::conformance::support::at;
use crate::{
    AdminKeyRecord, AuditEntry, ConsoleSession, ConsoleStore, DeliveryResult, DroppedCount,
    EventStore, EventType, LastRequest, LogQuery, LogStore, MetaStore, NewEvent, Operator, Outcome,
    ProvisioningEntry, ReadCount, ReadQuery, SetupLink, SnapshotPart, StoreError, StreamState,
    Webhook, WebhookStore,
};

/// A tenant row, written directly: the tenant API is not this module's.
async fn tenant(s: &PostgresStore, id: &str) {
    db::query("INSERT INTO tenants (id, name, idp, created_at) VALUES (?, ?, ?, ?)")
        .bind(id)
        .bind(format!("Tenant {id}"))
        .bind("generic")
        .bind(super::query::to_ms(at(0)))
        .execute(&s.pool)
        .await
        .unwrap();
}

/// A live resource row, written directly; returns its pk.
async fn resource(s: &PostgresStore, tenant: &str, kind: &str, id: &str) -> i64 {
    db::query_scalar(
        "INSERT INTO resources (tenant_id, kind, id, version, doc, created, last_modified) \
         VALUES (?, ?, ?, 1, ?, 0, 0) RETURNING pk",
    )
    .bind(tenant)
    .bind(kind)
    .bind(id)
    .bind(json!({ "id": id }).to_string())
    .fetch_one(&s.pool)
    .await
    .unwrap()
}

fn event(n: i64) -> NewEvent {
    NewEvent::new(EventType::UserCreated, json!({ "n": n }))
}

#[tokio::test]
async fn webhooks_and_streams() {
    let db = TestDb::new().await;
    let s = db.open().await;
    tenant(&s, "acme").await;
    s.append_events("acme", vec![event(1), event(2)], at(0))
        .await
        .unwrap();
    let hook = Webhook {
        id: "wh_1".into(),
        tenant_id: None,
        url: "http://127.0.0.1:9/hook".into(),
        description: Some("d".into()),
        event_types: vec!["user.created".into()],
        secret: "s1".into(),
        previous_secret: None,
        previous_expires_at: None,
        enabled: true,
        created_at: at(0),
    };
    s.create_webhook(&hook).await.unwrap();
    assert!(matches!(
        s.create_webhook(&hook).await,
        Err(StoreError::Conflict("webhook"))
    ));
    assert_eq!(s.list_webhooks().await.unwrap(), vec![hook.clone()]);
    assert_eq!(s.get_webhook("wh_1").await.unwrap(), Some(hook.clone()));
    let streams = s.list_streams(None).await.unwrap();
    assert_eq!(streams.len(), 1);
    assert_eq!(
        streams[0].cursor, 2,
        "an existing tenant starts at its last seq"
    );

    tenant(&s, "beta").await;
    let beta = s.ensure_stream("wh_1", "beta").await.unwrap();
    assert_eq!((beta.cursor, beta.state), (0, StreamState::Active));
    assert_eq!(s.ensure_stream("wh_1", "beta").await.unwrap(), beta);
    assert!(matches!(
        s.ensure_stream("wh_nope", "beta").await,
        Err(StoreError::NotFound)
    ));

    let failed = DeliveryResult::Failed {
        attempts: 3,
        next_attempt_at: at(10),
        failing_since: at(1),
        error: "HTTP 500".into(),
        park: true,
    };
    assert!(s
        .record_delivery("wh_1", "acme", 0, "n1", &failed, at(2))
        .await
        .unwrap());
    let resumed = s.redeliver("wh_1", Some("acme"), Some(1)).await.unwrap();
    assert_eq!(resumed.len(), 1);
    assert_eq!(
        (resumed[0].state, resumed[0].cursor, resumed[0].generation),
        (StreamState::Active, 0, 1)
    );
    let ok = DeliveryResult::Delivered { seq: 2 };
    assert!(!s
        .record_delivery("wh_1", "acme", 0, "n1", &ok, at(3))
        .await
        .unwrap());
    assert!(s
        .record_delivery("wh_1", "acme", 1, "n1", &ok, at(3))
        .await
        .unwrap());
    // The cursor never moves back.
    let old = DeliveryResult::Delivered { seq: 1 };
    assert!(s
        .record_delivery("wh_1", "acme", 1, "n1", &old, at(4))
        .await
        .unwrap());
    let acme = s.list_streams(Some("wh_1")).await.unwrap();
    assert_eq!(acme[0].cursor, 2);
    assert_eq!(acme[0].last_success_at, Some(at(4)));
    assert_eq!(s.redeliver("wh_1", None, None).await.unwrap().len(), 2);

    s.rotate_webhook_secret("wh_1", "s2", at(100))
        .await
        .unwrap();
    let w = s.get_webhook("wh_1").await.unwrap().unwrap();
    assert_eq!(w.signing_secrets(at(50)), ["s2", "s1"]);
    s.delete_webhook("wh_1").await.unwrap();
    assert!(s.list_streams(None).await.unwrap().is_empty());
    assert!(matches!(
        s.delete_webhook("wh_1").await,
        Err(StoreError::NotFound)
    ));
}

fn entry(n: i64, status: u16) -> ProvisioningEntry {
    ProvisioningEntry {
        id: 0,
        at: at(n),
        tenant_id: "acme".into(),
        request_id: format!("r{n}"),
        idp: None,
        user_agent: Some("okta".into()),
        method: "POST".into(),
        path: "/Users".into(),
        resource_type: Some("User".into()),
        resource_id: Some(format!("u{n}")),
        name: Some(format!("Ann{n}")),
        status,
        scim_type: None,
        detail: None,
        hint: None,
        changed: vec!["active".into()],
        duration_ms: 3,
        body: Some(json!({ "userName": "ann" })),
        source_addr: None,
        token_prefix: None,
    }
}

#[tokio::test]
async fn provisioning_log_and_counts() {
    let db = TestDb::new().await;
    let s = db.open().await;
    tenant(&s, "acme").await;
    s.append_provisioning(&[entry(1, 201), entry(2, 409), entry(3, 200)])
        .await
        .unwrap();
    let q = |f: fn(&mut LogQuery)| {
        let mut q = LogQuery {
            limit: 10,
            ..LogQuery::default()
        };
        f(&mut q);
        q
    };
    let all = s.list_provisioning("acme", &q(|_| {})).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].request_id, "r3", "newest first");
    assert_eq!(all[0].changed, ["active"]);
    assert_eq!(all[0].body, Some(json!({ "userName": "ann" })));
    let failures = s
        .list_provisioning("acme", &q(|q| q.outcome = Some(Outcome::Failure)))
        .await
        .unwrap();
    assert_eq!(failures.len(), 1);
    let named = s
        .list_provisioning("acme", &q(|q| q.name = Some("ANN1".into())))
        .await
        .unwrap();
    assert_eq!(named[0].request_id, "r1");
    let after = all[2].id;
    let follow = s
        .list_provisioning(
            "acme",
            &LogQuery {
                after: Some(after),
                since: Some(at(0)),
                method: Some("post".into()),
                limit: 10,
                ..LogQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        follow
            .iter()
            .map(|e| e.request_id.as_str())
            .collect::<Vec<_>>(),
        ["r2", "r3"]
    );
    assert_eq!(s.prune_provisioning(at(2), 10).await.unwrap(), 1);

    let read = |route: &str, count: u64, secs: i64, status: u16| ReadCount {
        id: 0,
        tenant_id: "acme".into(),
        route: route.into(),
        minute: at(secs),
        count,
        last_status: status,
        last_at: at(secs),
    };
    let dropped = |count: u64, secs: i64| DroppedCount {
        tenant_id: "acme".into(),
        minute: at(secs),
        count,
    };
    s.add_provisioning_counts(
        &[
            read("GET /Users", 2, 5, 200),
            read("GET /Users/{id}", 1, 70, 200),
        ],
        &[dropped(4, 5)],
    )
    .await
    .unwrap();
    // A second flush of the same minute adds up; the older request's status does not win.
    s.add_provisioning_counts(&[read("GET /Users", 3, 1, 304)], &[dropped(1, 7)])
        .await
        .unwrap();
    let counts = s
        .list_read_counts(
            "acme",
            &ReadQuery {
                limit: 10,
                ..ReadQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(counts.len(), 2);
    assert_eq!(counts[0].route, "GET /Users/{id}", "newest minute first");
    assert_eq!(
        (counts[1].count, counts[1].last_status, counts[1].last_at),
        (5, 200, at(5))
    );
    let page = s
        .list_read_counts(
            "acme",
            &ReadQuery {
                before: Some(counts[0].id),
                since: Some(at(0)),
                until: Some(at(120)),
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(page, counts[1..]);
    let latest = s.latest_read("acme").await.unwrap().unwrap();
    assert_eq!(latest.route, "GET /Users/{id}");
    assert!(matches!(
        s.last_request("acme").await.unwrap(),
        Some(LastRequest::Read(_))
    ));
    assert_eq!(s.count_dropped("acme", None, None).await.unwrap(), 5);
    assert_eq!(
        s.count_dropped("acme", Some(at(60)), None).await.unwrap(),
        0
    );
    assert_eq!(s.prune_provisioning_counts(at(60), 10).await.unwrap(), 2);
    assert_eq!(s.count_dropped("acme", None, None).await.unwrap(), 0);
}

#[tokio::test]
async fn audit_log_and_admin_keys() {
    let db = TestDb::new().await;
    let s = db.open().await;
    for n in 1..=3 {
        s.append_audit(&AuditEntry {
            id: 0,
            at: at(n),
            actor: "cli:root".into(),
            action: "tenant.create".into(),
            tenant_id: None,
            target: Some(format!("t{n}")),
            details: json!({ "n": n }),
        })
        .await
        .unwrap();
    }
    let all = s.list_audit(None, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].details, json!({ "n": 3 }));
    let older = s.list_audit(Some(all[0].id), 1).await.unwrap();
    assert_eq!(older[0].target.as_deref(), Some("t2"));

    let key = |prefix: &str, secs: i64| AdminKeyRecord {
        prefix: prefix.into(),
        hash: format!("h-{prefix}"),
        name: None,
        created_at: at(secs),
        last_used_at: None,
        revoked_at: None,
        expires_at: None,
        scopes: None,
    };
    let auth = || s.auth_changes.load(Ordering::Acquire);
    let changes = auth();
    s.insert_admin_key(&key("rsak_a", 0)).await.unwrap();
    s.insert_admin_key(&key("rsak_b", 0)).await.unwrap();
    // At least once each (the listener may move it again when it hears this process's own
    // notification).
    assert!(
        auth() >= changes + 2,
        "each key insert moves the auth counter"
    );
    assert!(matches!(
        s.insert_admin_key(&key("rsak_a", 1)).await,
        Err(StoreError::Conflict("admin key"))
    ));
    let keys = s.list_admin_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.prefix.as_str()).collect::<Vec<_>>(),
        ["rsak_b", "rsak_a"],
        "newest first; the later insert of the same second first"
    );
    s.touch_admin_key("rsak_a", at(5)).await.unwrap();
    s.touch_admin_keys(&[
        ("rsak_b".into(), at(6)),
        ("rsak_a".into(), at(4)),
        ("rsak_nope".into(), at(6)),
    ])
    .await
    .unwrap();
    let a = s.find_admin_key("rsak_a").await.unwrap().unwrap();
    assert_eq!(a.last_used_at, Some(at(5)), "a use never moves back");
    let b = s.find_admin_key("rsak_b").await.unwrap().unwrap();
    assert_eq!(b.last_used_at, Some(at(6)));
    s.revoke_admin_key("rsak_a", at(7)).await.unwrap();
    assert!(matches!(
        s.revoke_admin_key("rsak_a", at(8)).await,
        Err(StoreError::NotFound)
    ));
    let a = s.find_admin_key("rsak_a").await.unwrap().unwrap();
    assert_eq!(a.revoked_at, Some(at(7)));
}

#[tokio::test]
async fn console_sessions_links_and_operators() {
    let db = TestDb::new().await;
    let s = db.open().await;
    tenant(&s, "acme").await;
    let sess = ConsoleSession {
        id_hash: "h".into(),
        tenant_id: Some("acme".into()),
        actor: "setup-link:acme".into(),
        created_at: at(0),
        expires_at: at(3600),
    };
    s.insert_session(&sess).await.unwrap();
    assert_eq!(
        s.find_session("h", at(0)).await.unwrap(),
        Some(sess.clone())
    );
    assert!(s.find_session("h", at(7200)).await.unwrap().is_none());
    s.delete_session("h").await.unwrap();
    assert!(s.find_session("h", at(0)).await.unwrap().is_none());
    for id in ["a", "b"] {
        s.insert_session(&ConsoleSession {
            id_hash: id.into(),
            tenant_id: None,
            actor: "admin-key:rsak_x".into(),
            ..sess.clone()
        })
        .await
        .unwrap();
    }
    assert_eq!(s.delete_sessions_of("admin-key:rsak_x").await.unwrap(), 2);

    let link = SetupLink {
        hash: "l".into(),
        tenant_id: "acme".into(),
        created_by: "cli".into(),
        created_at: at(0),
        expires_at: at(0) + Duration::days(7),
        used_at: None,
    };
    s.insert_setup_link(&link).await.unwrap();
    assert_eq!(
        s.setup_link_tenant("l", at(1)).await.unwrap().as_deref(),
        Some(link.tenant_id.as_str())
    );
    assert!(s.setup_link_tenant("x", at(1)).await.unwrap().is_none());
    let used = s.consume_setup_link("l", at(1)).await.unwrap().unwrap();
    assert!(s.setup_link_tenant("l", at(1)).await.unwrap().is_none());
    assert_eq!(used.used_at, Some(at(1)));
    assert!(s.consume_setup_link("l", at(2)).await.unwrap().is_none());
    assert!(matches!(
        s.insert_setup_link(&SetupLink {
            hash: "n".into(),
            tenant_id: "nope".into(),
            ..link
        })
        .await,
        Err(StoreError::NotFound)
    ));

    let op = Operator {
        email: "ann@example.com".into(),
        password_hash: "h1".into(),
        created_at: at(0),
        password_changed_at: at(0),
        last_sign_in_at: None,
        failed_attempts: 0,
        locked_until: None,
    };
    s.create_operator(&op).await.unwrap();
    assert!(matches!(
        s.create_operator(&op).await,
        Err(StoreError::Conflict("operator"))
    ));
    let lock = Duration::minutes(15);
    let o = s
        .operator_sign_in_failed(&op.email, at(0), 2, lock)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((o.failed_attempts, o.locked_until), (1, None));
    let o = s
        .operator_sign_in_failed(&op.email, at(0), 2, lock)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((o.failed_attempts, o.locked_until), (0, Some(at(0) + lock)));
    s.operator_signed_in(&op.email, at(1)).await.unwrap();
    let o = s.get_operator(&op.email).await.unwrap().unwrap();
    assert_eq!((o.last_sign_in_at, o.locked_until), (Some(at(1)), None));
    s.insert_session(&ConsoleSession {
        id_hash: "op".into(),
        tenant_id: None,
        actor: "operator:ann@example.com".into(),
        ..sess
    })
    .await
    .unwrap();
    s.set_operator_password(&op.email, "h2", at(2))
        .await
        .unwrap();
    assert!(s.find_session("op", at(0)).await.unwrap().is_none());
    assert_eq!(s.list_operators().await.unwrap()[0].password_hash, "h2");
    s.delete_operator(&op.email).await.unwrap();
    assert!(matches!(
        s.delete_operator(&op.email).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn meta_values() {
    let db = TestDb::new().await;
    let s = db.open().await;
    assert_eq!(s.meta("k").await.unwrap(), None);
    s.set_meta("k", Some("v1")).await.unwrap();
    s.set_meta("k", Some("v2")).await.unwrap();
    assert_eq!(s.meta("k").await.unwrap().as_deref(), Some("v2"));
    s.set_meta("k", None).await.unwrap();
    assert_eq!(s.meta("k").await.unwrap(), None);
}

#[tokio::test]
async fn events_and_snapshots() {
    let db = TestDb::new().await;
    let s = db.open().await;
    tenant(&s, "acme").await;
    tenant(&s, "beta").await;
    assert!(matches!(
        s.append_events("nope", vec![event(0)], at(0)).await,
        Err(StoreError::NotFound)
    ));
    let mut woken = s.subscribe();
    let first = s
        .append_events("acme", vec![event(1), event(2)], at(1))
        .await
        .unwrap();
    assert!(woken.has_changed().unwrap());
    woken.mark_unchanged();
    assert_eq!(
        first.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2],
        "seqs start at 1"
    );
    assert!(s
        .append_events("acme", vec![], at(1))
        .await
        .unwrap()
        .is_empty());
    s.append_events(
        "acme",
        vec![NewEvent::new(EventType::GroupCreated, json!({}))],
        at(2),
    )
    .await
    .unwrap();
    s.append_events("beta", vec![event(9)], at(2))
        .await
        .unwrap();
    assert_eq!(s.last_seq("acme").await.unwrap(), 3);
    assert_eq!(s.last_seq("beta").await.unwrap(), 1);
    assert_eq!(s.last_seq("nope").await.unwrap(), 0);
    let all = s.list_events("acme", 0, &[], 10).await.unwrap();
    assert_eq!(all[..2], first[..]);
    let groups = s
        .list_events("acme", 1, &["group.created".into()], 10)
        .await
        .unwrap();
    assert_eq!(groups.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);

    // Two live users and a deprovisioned one, two groups (one with two members, one empty),
    // read a row a page.
    let u1 = resource(&s, "acme", "User", "u1").await;
    let u2 = resource(&s, "acme", "User", "u2").await;
    let u3 = resource(&s, "acme", "User", "u3").await;
    db::query("UPDATE resources SET deleted = TRUE WHERE pk = ?")
        .bind(u3)
        .execute(&s.pool)
        .await
        .unwrap();
    let g1 = resource(&s, "acme", "Group", "g1").await;
    resource(&s, "acme", "Group", "g2").await;
    for (pk, id) in [(u2, "u2"), (u1, "u1")] {
        db::query(
            "INSERT INTO members (tenant_id, group_pk, member_pk, member_id) VALUES (?, ?, ?, ?)",
        )
        .bind("acme")
        .bind(g1)
        .bind(pk)
        .bind(id)
        .execute(&s.pool)
        .await
        .unwrap();
    }
    assert!(matches!(
        s.snapshot_stream("acme", 0).await,
        Err(StoreError::Invalid(_))
    ));
    let stream = s.snapshot_stream("acme", 1).await.unwrap();
    assert_eq!(stream.seq, 3);
    // A write after the snapshot began is not in it.
    resource(&s, "acme", "User", "late").await;
    let parts: Vec<SnapshotPart> = stream.parts.try_collect().await.unwrap();
    let shape: Vec<String> = parts
        .iter()
        .map(|p| match p {
            SnapshotPart::Users(us) => format!("users {}", us[0].id),
            SnapshotPart::Group(g) => format!("group {}", g.id),
            SnapshotPart::Members(ms) => format!("members {}", ms.join(",")),
        })
        .collect();
    assert_eq!(
        shape,
        [
            "users u1",
            "users u2",
            "group g1",
            "members u1",
            "members u2",
            "group g2"
        ]
    );
    let snap = s.snapshot("beta").await.unwrap();
    assert_eq!((snap.seq, snap.users.len()), (1, 0));
}

#[tokio::test]
async fn concurrent_appends_get_consecutive_seqs() {
    let db = TestDb::new().await;
    let s = db.open().await;
    tenant(&s, "acme").await;
    let writers: Vec<_> = (0..8)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move {
                s.append_events("acme", vec![event(n), event(n)], at(n))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for w in writers {
        let events = w.await.unwrap();
        assert_eq!(
            events[1].seq,
            events[0].seq + 1,
            "one write's seqs are consecutive"
        );
    }
    let seqs: Vec<i64> = s
        .list_events("acme", 0, &[], 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (1..=16).collect::<Vec<_>>());
}

/// Two stores on one database stand for two nodes: their flushes of the same minutes, in
/// opposite orders, add up and do not deadlock.
#[tokio::test]
async fn counts_of_two_nodes_add_up() {
    let db = TestDb::new().await;
    let (a, b) = (db.open().await, db.open().await);
    tenant(&a, "acme").await;
    let reads = |secs: &[i64]| -> Vec<ReadCount> {
        secs.iter()
            .map(|s| ReadCount {
                id: 0,
                tenant_id: "acme".into(),
                route: format!("GET /Users/{s}"),
                minute: at(s * 60),
                count: 1,
                last_status: 200,
                last_at: at(s * 60),
            })
            .collect()
    };
    let forward: Vec<i64> = (0..20).collect();
    let backward: Vec<i64> = (0..20).rev().collect();
    let flushes: Vec<_> = (0..10)
        .map(|n| {
            let s = if n % 2 == 0 { a.clone() } else { b.clone() };
            let rows = reads(if n % 2 == 0 { &forward } else { &backward });
            tokio::spawn(async move { s.add_provisioning_counts(&rows, &[]).await.unwrap() })
        })
        .collect();
    for f in flushes {
        f.await.unwrap();
    }
    let counts = a
        .list_read_counts(
            "acme",
            &ReadQuery {
                limit: 100,
                ..ReadQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(counts.len(), 20);
    assert!(counts.iter().all(|c| c.count == 10), "{counts:?}");
}
