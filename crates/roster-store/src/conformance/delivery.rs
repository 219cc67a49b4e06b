//! Webhook delivery as operators watch it: the attempt history (newest first, pruned to the
//! newest N per endpoint, per tenant on request), pausing and resuming an endpoint (its
//! streams keep their positions), and each stream's lag in events.

use super::support::{add_user, at, tenant, user_doc};
use super::Backend;
use crate::{DeliveryResult, StoreError, Webhook, WebhookAttempt};

fn hook(id: &str) -> Webhook {
    Webhook {
        id: id.into(),
        tenant_id: None,
        url: "http://127.0.0.1:9/hook".into(),
        description: None,
        event_types: vec![],
        secret: "s".into(),
        previous_secret: None,
        previous_expires_at: None,
        enabled: true,
        created_at: at(0),
    }
}

fn attempt(hook: &str, tenant: &str, secs: i64, seq: i64, status: Option<u16>) -> WebhookAttempt {
    WebhookAttempt {
        id: 0,
        webhook_id: hook.into(),
        tenant_id: tenant.into(),
        at: at(secs),
        first_seq: seq,
        last_seq: seq,
        event_id: format!("ev_{seq}"),
        status,
        error: match status {
            Some(s) if (200..300).contains(&s) => None,
            Some(s) => Some(format!("receiver answered HTTP {s}")),
            None => Some("connection refused".into()),
        },
        duration_ms: 12,
    }
}

/// Attempts come back newest first with every field, filtered by tenant, paged by id, and
/// only the newest `keep` of an endpoint survive; another endpoint's are untouched.
pub async fn attempts_are_listed_newest_first_and_pruned_per_endpoint(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "a").await;
    tenant(s, "b").await;
    s.create_webhook(&hook("wh_1")).await.unwrap();
    s.create_webhook(&hook("wh_2")).await.unwrap();
    for i in 1..=6 {
        let t = if i % 2 == 0 { "a" } else { "b" };
        let status = match i {
            5 => None,
            6 => Some(503),
            _ => Some(200),
        };
        s.record_webhook_attempt(&attempt("wh_1", t, i, i, status), 4)
            .await
            .unwrap();
    }
    s.record_webhook_attempt(&attempt("wh_2", "a", 1, 1, Some(200)), 4)
        .await
        .unwrap();
    let all = s
        .list_webhook_attempts("wh_1", None, None, 10)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|a| a.first_seq).collect::<Vec<_>>(),
        [6, 5, 4, 3],
        "the newest 4 are kept, newest first"
    );
    let newest = &all[0];
    assert_eq!(
        (
            newest.tenant_id.as_str(),
            newest.at,
            newest.event_id.as_str(),
            newest.status,
            newest.error.as_deref(),
            newest.duration_ms
        ),
        (
            "a",
            at(6),
            "ev_6",
            Some(503),
            Some("receiver answered HTTP 503"),
            12
        )
    );
    assert!(!newest.delivered());
    assert_eq!((all[1].status, all[1].delivered()), (None, false));
    assert!(all[2].delivered());
    let of_a = s
        .list_webhook_attempts("wh_1", Some("a"), None, 10)
        .await
        .unwrap();
    assert_eq!(of_a.iter().map(|a| a.first_seq).collect::<Vec<_>>(), [6, 4]);
    let older = s
        .list_webhook_attempts("wh_1", None, Some(all[1].id), 10)
        .await
        .unwrap();
    assert_eq!(
        older.iter().map(|a| a.first_seq).collect::<Vec<_>>(),
        [4, 3]
    );
    assert_eq!(
        s.list_webhook_attempts("wh_2", None, None, 10)
            .await
            .unwrap()
            .len(),
        1,
        "pruning one endpoint leaves another's attempts"
    );
    s.delete_webhook("wh_1").await.unwrap();
    assert!(s
        .list_webhook_attempts("wh_1", None, None, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Pausing keeps the streams' positions and resuming continues from them; an unknown
/// endpoint is `NotFound`. The lag counts the tenant's events after the position.
pub async fn pause_keeps_positions_and_lag_counts_events_after_them(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "a").await;
    tenant(s, "b").await;
    add_user(s, "a", "u1", user_doc("one")).await;
    s.create_webhook(&hook("wh_1")).await.unwrap();
    s.ensure_stream("wh_1", "a").await.unwrap();
    s.ensure_stream("wh_1", "b").await.unwrap();
    let lag = |w: Option<&'static str>, t: Option<&'static str>| async move {
        s.stream_lags(w, t)
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.webhook_id, l.tenant_id, l.lag))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        lag(Some("wh_1"), None).await,
        [
            ("wh_1".into(), "a".into(), 0),
            ("wh_1".into(), "b".into(), 0)
        ],
        "a new endpoint starts at the tenant's last event"
    );
    add_user(s, "a", "u2", user_doc("two")).await;
    add_user(s, "a", "u3", user_doc("three")).await;
    assert_eq!(lag(None, Some("a")).await, [("wh_1".into(), "a".into(), 2)]);

    s.set_webhook_enabled("wh_1", false).await.unwrap();
    let paused = s.get_webhook("wh_1").await.unwrap().unwrap();
    assert!(!paused.enabled);
    let cursor = s.ensure_stream("wh_1", "a").await.unwrap().cursor;
    add_user(s, "a", "u4", user_doc("four")).await;
    assert_eq!(
        lag(Some("wh_1"), Some("a")).await[0].2,
        3,
        "lag grows while paused"
    );
    s.set_webhook_enabled("wh_1", true).await.unwrap();
    assert!(s.get_webhook("wh_1").await.unwrap().unwrap().enabled);
    assert_eq!(
        s.ensure_stream("wh_1", "a").await.unwrap().cursor,
        cursor,
        "the position is kept across a pause"
    );
    let seq = cursor + 3;
    assert!(s
        .record_delivery(
            "wh_1",
            "a",
            0,
            "n1",
            &DeliveryResult::Delivered { seq },
            at(5)
        )
        .await
        .unwrap());
    assert_eq!(lag(Some("wh_1"), Some("a")).await[0].2, 0);
    assert!(matches!(
        s.set_webhook_enabled("wh_nope", false).await,
        Err(StoreError::NotFound)
    ));
}
