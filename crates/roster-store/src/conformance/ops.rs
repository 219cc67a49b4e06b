//! The operator-side records: webhooks and their delivery streams, the provisioning log.

use serde_json::json;

use super::support::{add_user, at, tenant, user_doc};
use super::Backend;
use crate::{
    DeliveryResult, LogQuery, Outcome, ProvisioningEntry, SecretTexts, StoreError, StreamState,
    Webhook,
};

/// A webhook's streams start at each existing tenant's current seq (0 for later tenants); a
/// parked stream resumes from a chosen seq under a new generation, and results of the old
/// generation are ignored; secret rotation keeps the previous secret until it expires;
/// deleting a webhook deletes its streams.
pub async fn webhook_streams_start_at_the_current_seq_and_redeliver(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "acme").await;
    add_user(s, "acme", "u1", user_doc("a")).await;
    let hook = Webhook {
        id: "wh_1".into(),
        tenant_id: None,
        url: "http://127.0.0.1:9/hook".into(),
        description: None,
        event_types: vec!["user.created".into()],
        secret: "s1".into(),
        previous_secret: None,
        previous_expires_at: None,
        enabled: true,
        created_at: at(0),
    };
    s.create_webhook(&hook).await.unwrap();
    assert!(!format!("{hook:?}").contains("s1"), "Debug redacts secrets");
    let streams = s.list_streams(Some("wh_1")).await.unwrap();
    assert_eq!(streams.len(), 1);
    assert_eq!(
        streams[0].cursor, 1,
        "existing tenants start at their last seq"
    );
    tenant(s, "beta").await;
    let b = s.ensure_stream("wh_1", "beta").await.unwrap();
    assert_eq!(b.cursor, 0, "later tenants start at 0");
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
    let parked = s.ensure_stream("wh_1", "acme").await.unwrap();
    assert_eq!(parked.state, StreamState::Parked);
    assert_eq!(parked.last_error.as_deref(), Some("HTTP 500"));
    let resumed = s.redeliver("wh_1", Some("acme"), Some(1)).await.unwrap();
    assert_eq!(resumed[0].state, StreamState::Active);
    assert_eq!(resumed[0].cursor, 0);
    assert_eq!(resumed[0].attempts, 0);
    // A worker's result for the old generation is ignored.
    let ok = DeliveryResult::Delivered { seq: 5 };
    assert!(!s
        .record_delivery("wh_1", "acme", 0, "n1", &ok, at(3))
        .await
        .unwrap());
    assert!(s
        .record_delivery("wh_1", "acme", resumed[0].generation, "n1", &ok, at(3))
        .await
        .unwrap());
    assert_eq!(s.ensure_stream("wh_1", "acme").await.unwrap().cursor, 5);
    s.rotate_webhook_secret("wh_1", "s2", at(100))
        .await
        .unwrap();
    let w = s.get_webhook("wh_1").await.unwrap().unwrap();
    assert_eq!(w.signing_secrets(at(50)), ["s2", "s1"]);
    assert_eq!(w.signing_secrets(at(100)), ["s2"]);
    s.delete_webhook("wh_1").await.unwrap();
    assert!(s.list_streams(None).await.unwrap().is_empty());
    assert!(matches!(
        s.delete_webhook("wh_1").await,
        Err(StoreError::NotFound)
    ));
}

/// A webhook's secret texts are replaced (re-sealed) only while they still are the ones read:
/// a rotation in between wins, the previous secret's expiry stays, a missing previous secret
/// compares equal to a missing one, and a deleted webhook is not an error.
pub async fn webhook_secrets_are_replaced_only_if_unchanged(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "acme").await;
    let hook = Webhook {
        id: "wh_1".into(),
        tenant_id: Some("acme".into()),
        url: "http://127.0.0.1:9/hook".into(),
        description: None,
        event_types: Vec::new(),
        secret: "clear1".into(),
        previous_secret: None,
        previous_expires_at: None,
        enabled: true,
        created_at: at(0),
    };
    s.create_webhook(&hook).await.unwrap();
    let read = s.get_webhook("wh_1").await.unwrap().unwrap().secret_texts();
    assert_eq!(read.previous_secret, None);
    let sealed = SecretTexts {
        secret: "sealed1".into(),
        previous_secret: None,
    };
    assert!(s
        .replace_webhook_secrets("wh_1", &read, &sealed)
        .await
        .unwrap());
    let w = s.get_webhook("wh_1").await.unwrap().unwrap();
    assert_eq!(w.secret_texts(), sealed);
    // Stale: what was read first is no longer stored.
    assert!(!s
        .replace_webhook_secrets(
            "wh_1",
            &read,
            &SecretTexts {
                secret: "lost".into(),
                previous_secret: None,
            }
        )
        .await
        .unwrap());
    // A rotation between the read and the write wins.
    let before = s.get_webhook("wh_1").await.unwrap().unwrap().secret_texts();
    s.rotate_webhook_secret("wh_1", "sealed2", at(100))
        .await
        .unwrap();
    let resealed = SecretTexts {
        secret: "resealed1".into(),
        previous_secret: None,
    };
    assert!(!s
        .replace_webhook_secrets("wh_1", &before, &resealed)
        .await
        .unwrap());
    let w = s.get_webhook("wh_1").await.unwrap().unwrap();
    assert_eq!(w.secret, "sealed2");
    assert_eq!(w.previous_secret.as_deref(), Some("sealed1"));
    // Both texts are replaced together; the previous secret's expiry is kept.
    let both = SecretTexts {
        secret: "sealed2b".into(),
        previous_secret: Some("sealed1b".into()),
    };
    assert!(s
        .replace_webhook_secrets("wh_1", &w.secret_texts(), &both)
        .await
        .unwrap());
    let w = s.get_webhook("wh_1").await.unwrap().unwrap();
    assert_eq!(w.secret_texts(), both);
    assert_eq!(w.previous_expires_at, Some(at(100)));
    assert_eq!(w.signing_secrets(at(50)), ["sealed2b", "sealed1b"]);
    // A previous text that differs is stale too.
    let wrong_previous = SecretTexts {
        secret: "sealed2b".into(),
        previous_secret: Some("other".into()),
    };
    assert!(!s
        .replace_webhook_secrets("wh_1", &wrong_previous, &sealed)
        .await
        .unwrap());
    s.delete_webhook("wh_1").await.unwrap();
    assert!(!s
        .replace_webhook_secrets("wh_1", &both, &sealed)
        .await
        .unwrap());
    assert!(!format!("{both:?}").contains("sealed"), "Debug redacts");
}

/// The provisioning log lists a tenant's entries newest first, filters by outcome and name,
/// pages both ways by id, and prunes old entries in batches.
pub async fn provisioning_log_filters_pages_and_prunes(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    let entry = |i: i64, status: u16, name: &str| ProvisioningEntry {
        id: 0,
        at: at(i),
        tenant_id: "acme".into(),
        request_id: format!("r{i}"),
        idp: Some("okta".into()),
        user_agent: None,
        method: "POST".into(),
        path: "/scim/v2/acme/Users".into(),
        resource_type: Some("User".into()),
        resource_id: None,
        name: Some(name.into()),
        status,
        scim_type: None,
        detail: None,
        hint: None,
        changed: vec!["userName".into()],
        duration_ms: 3,
        body: Some(json!({"userName": name})),
        source_addr: None,
        token_prefix: None,
    };
    s.append_provisioning(&[entry(1, 201, "a"), entry(2, 409, "A"), entry(3, 201, "b")])
        .await
        .unwrap();
    fn q(f: impl FnOnce(&mut LogQuery)) -> LogQuery {
        let mut q = LogQuery {
            limit: 10,
            ..LogQuery::default()
        };
        f(&mut q);
        q
    }
    let all = s.list_provisioning("acme", &q(|_| {})).await.unwrap();
    assert_eq!(
        all.iter()
            .map(|e| e.request_id.as_str())
            .collect::<Vec<_>>(),
        ["r3", "r2", "r1"]
    );
    assert_eq!(all[0].changed, ["userName"]);
    let failures = s
        .list_provisioning("acme", &q(|q| q.outcome = Some(Outcome::Failure)))
        .await
        .unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].status, 409);
    let named = s
        .list_provisioning("acme", &q(|q| q.name = Some("a".into())))
        .await
        .unwrap();
    assert_eq!(named.len(), 2);
    let page = s
        .list_provisioning("acme", &q(|q| q.before = Some(all[0].id)))
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    let follow = s
        .list_provisioning("acme", &q(|q| q.after = Some(all[2].id)))
        .await
        .unwrap();
    assert_eq!(
        follow
            .iter()
            .map(|e| e.request_id.as_str())
            .collect::<Vec<_>>(),
        ["r2", "r3"]
    );
    assert!(s
        .list_provisioning("beta", &q(|_| {}))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.prune_provisioning(at(3), 1).await.unwrap(), 1);
    assert_eq!(s.prune_provisioning(at(3), 10).await.unwrap(), 1);
    assert_eq!(s.prune_provisioning(at(3), 10).await.unwrap(), 0);
}

/// Server-wide values (`meta`): absent until recorded, replaced by a later record, cleared by
/// `None`, and seen by every store on the same database (the server records its public URL,
/// the CLI reads it).
pub async fn meta_values_are_shared_replaced_and_cleared(b: &dyn Backend) {
    use crate::meta::{LISTEN_URL, PUBLIC_URL};
    let db = b.shared().await;
    let server = db.open().await;
    let cli = db.open().await;
    assert_eq!(cli.meta(PUBLIC_URL).await.unwrap(), None);
    server
        .set_meta(PUBLIC_URL, Some("https://scim.example.com"))
        .await
        .unwrap();
    server
        .set_meta(LISTEN_URL, Some("http://127.0.0.1:8080"))
        .await
        .unwrap();
    assert_eq!(
        cli.meta(PUBLIC_URL).await.unwrap().as_deref(),
        Some("https://scim.example.com")
    );
    server
        .set_meta(PUBLIC_URL, Some("https://other.example.com"))
        .await
        .unwrap();
    assert_eq!(
        cli.meta(PUBLIC_URL).await.unwrap().as_deref(),
        Some("https://other.example.com")
    );
    server.set_meta(PUBLIC_URL, None).await.unwrap();
    assert_eq!(cli.meta(PUBLIC_URL).await.unwrap(), None);
    assert_eq!(
        cli.meta(LISTEN_URL).await.unwrap().as_deref(),
        Some("http://127.0.0.1:8080"),
        "keys are independent"
    );
}

/// A stream is leased to one node at a time: a second node is refused while the lease lasts,
/// takes over once it runs out (or is released), and a node whose lease was taken over can no
/// longer record deliveries; parking gives the lease up. Two stores on one database stand for
/// two nodes.
pub async fn webhook_streams_are_leased_to_one_node_at_a_time(b: &dyn Backend) {
    let db = b.shared().await;
    let a = db.open().await;
    let n2 = db.open().await;
    tenant(&*a, "acme").await;
    let hook = Webhook {
        id: "wh_1".into(),
        tenant_id: None,
        url: "http://127.0.0.1:9/hook".into(),
        description: None,
        event_types: vec![],
        secret: "s1".into(),
        previous_secret: None,
        previous_expires_at: None,
        enabled: true,
        created_at: at(0),
    };
    a.create_webhook(&hook).await.unwrap();
    let mine = a
        .lease_stream("wh_1", "acme", "node-a", at(1), at(31))
        .await
        .unwrap()
        .expect("a free stream is leased");
    assert_eq!(mine.lease_owner.as_deref(), Some("node-a"));
    assert_eq!(mine.lease_until, Some(at(31)));
    assert_eq!(
        n2.lease_stream("wh_1", "acme", "node-b", at(2), at(32))
            .await
            .unwrap(),
        None,
        "another node's lease holds until it runs out"
    );
    // Renewing is leasing again.
    let renewed = a
        .lease_stream("wh_1", "acme", "node-a", at(20), at(50))
        .await
        .unwrap()
        .expect("renewed");
    assert_eq!(renewed.lease_until, Some(at(50)));
    // Node a stops renewing (it died); at 50 node b takes over.
    assert!(n2
        .lease_stream("wh_1", "acme", "node-b", at(49), at(79))
        .await
        .unwrap()
        .is_none());
    let taken = n2
        .lease_stream("wh_1", "acme", "node-b", at(50), at(80))
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert_eq!(taken.lease_owner.as_deref(), Some("node-b"));
    // Node a, back from a pause, can no longer move the cursor; node b can.
    let ok = DeliveryResult::Delivered { seq: 1 };
    assert!(!a
        .record_delivery("wh_1", "acme", taken.generation, "node-a", &ok, at(51))
        .await
        .unwrap());
    assert!(n2
        .record_delivery("wh_1", "acme", taken.generation, "node-b", &ok, at(51))
        .await
        .unwrap());
    // A node shutting down releases its leases: the other takes over at once.
    assert_eq!(n2.release_leases("node-b").await.unwrap(), 1);
    let back = a
        .lease_stream("wh_1", "acme", "node-a", at(52), at(82))
        .await
        .unwrap()
        .expect("a released lease is free");
    assert_eq!(back.cursor, 1);
    // A later tenant's stream is created by its first lease, at seq 0.
    tenant(&*a, "beta").await;
    let beta = n2
        .lease_stream("wh_1", "beta", "node-b", at(53), at(83))
        .await
        .unwrap()
        .expect("a new stream is leased");
    assert_eq!(
        (beta.cursor, beta.lease_owner.as_deref()),
        (0, Some("node-b"))
    );
    // Parking gives the lease up.
    let failed = DeliveryResult::Failed {
        attempts: 9,
        next_attempt_at: at(90),
        failing_since: at(1),
        error: "HTTP 500".into(),
        park: true,
    };
    assert!(n2
        .record_delivery("wh_1", "beta", beta.generation, "node-b", &failed, at(54))
        .await
        .unwrap());
    let parked = a.list_streams(Some("wh_1")).await.unwrap();
    let parked = parked.iter().find(|s| s.tenant_id == "beta").unwrap();
    assert_eq!(parked.state, StreamState::Parked);
    assert_eq!(
        (parked.lease_owner.as_deref(), parked.lease_until),
        (None, None)
    );
    a.delete_webhook("wh_1").await.unwrap();
    assert!(matches!(
        a.lease_stream("wh_1", "acme", "node-a", at(60), at(90))
            .await,
        Err(StoreError::NotFound)
    ));
}

/// A periodic job is claimed once per period across every process on the database: of two
/// nodes claiming the same period, one wins; the next period is claimable again, by either.
pub async fn periodic_jobs_run_once_per_period_across_nodes(b: &dyn Backend) {
    let db = b.shared().await;
    let a = db.open().await;
    let n2 = db.open().await;
    let hour = time::Duration::hours(1);
    assert!(a.claim_job("prune", "node-a", hour, at(0)).await.unwrap());
    assert!(!n2.claim_job("prune", "node-b", hour, at(0)).await.unwrap());
    assert!(!n2
        .claim_job("prune", "node-b", hour, at(3599))
        .await
        .unwrap());
    assert!(
        n2.claim_job("token-expiry", "node-b", hour, at(1))
            .await
            .unwrap(),
        "jobs are independent"
    );
    assert!(n2
        .claim_job("prune", "node-b", hour, at(3600))
        .await
        .unwrap());
    assert!(!a
        .claim_job("prune", "node-a", hour, at(3601))
        .await
        .unwrap());
    // Claims at the same moment from many tasks: exactly one wins.
    let mut claims = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { a.clone() } else { n2.clone() };
        claims.push(tokio::spawn(async move {
            s.claim_job("prune", &format!("node-{i}"), hour, at(7200))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for c in claims {
        won += usize::from(c.await.unwrap());
    }
    assert_eq!(won, 1);
}

/// A console session's one-time value: taken once, replaced by a newer one, gone after it
/// expires or with its session, and another session's key finds nothing.
pub async fn console_once_values_are_taken_once(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    for id in ["s1", "s2"] {
        let session = crate::ConsoleSession {
            id_hash: id.into(),
            tenant_id: None,
            actor: "operator:ann@example.com".into(),
            created_at: at(0),
            expires_at: at(3600),
        };
        s.insert_session(&session).await.unwrap();
    }
    s.put_once("s1", "token", "old", at(1), at(601))
        .await
        .unwrap();
    s.put_once("s1", "token", "new", at(2), at(602))
        .await
        .unwrap();
    assert_eq!(s.take_once("s2", "token", at(3)).await.unwrap(), None);
    assert_eq!(s.take_once("s1", "link", at(3)).await.unwrap(), None);
    assert_eq!(
        s.take_once("s1", "token", at(3)).await.unwrap().as_deref(),
        Some("new")
    );
    assert_eq!(s.take_once("s1", "token", at(4)).await.unwrap(), None);
    // Expired: not given, and pruned by a later put.
    s.put_once("s1", "token", "late", at(5), at(10))
        .await
        .unwrap();
    assert_eq!(s.take_once("s1", "token", at(10)).await.unwrap(), None);
    // Gone with its session.
    s.put_once("s2", "link", "x", at(11), at(611))
        .await
        .unwrap();
    s.delete_session("s2").await.unwrap();
    assert_eq!(s.take_once("s2", "link", at(12)).await.unwrap(), None);
}
