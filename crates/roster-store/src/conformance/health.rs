//! Health at a glance: the hourly rollup the provisioning log's writes keep, a page of tenants
//! with their health, and the log's filters by status class, method and text.

use scim_proto::schema::{ResourceKind, USER_SCHEMA};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::support::{at, tenant, tenant_with};
use super::Backend;
use crate::app::{GuardOperation, GuardSubject, GuardVerdict};
use crate::health::HourCount;
use crate::{
    CreateOutcome, DeliveryResult, DeprovisionGuard, LogQuery, NewResource, ProvisioningEntry,
    ReadCount, StatusClass, Store, TenantSettings, TokenRecord, Webhook,
};

fn entry(tenant: &str, t: OffsetDateTime, method: &str, status: u16) -> ProvisioningEntry {
    ProvisioningEntry {
        id: 0,
        at: t,
        tenant_id: tenant.into(),
        request_id: format!("req-{}-{status}", t.unix_timestamp()),
        idp: None,
        user_agent: None,
        method: method.into(),
        path: format!("/scim/v2/{tenant}/Users"),
        resource_type: Some("User".into()),
        resource_id: None,
        name: None,
        status,
        scim_type: None,
        detail: None,
        hint: None,
        changed: vec![],
        duration_ms: 1,
        body: None,
        source_addr: None,
        token_prefix: None,
    }
}

fn read(tenant: &str, last_at: OffsetDateTime, count: u64) -> ReadCount {
    ReadCount {
        id: 0,
        tenant_id: tenant.into(),
        route: "GET /Users".into(),
        minute: crate::minute_of(last_at),
        count,
        last_status: 200,
        last_at,
    }
}

/// Refused requests (401, 429) as the server counts them beside their sample row.
fn refused(tenant: &str, last_at: OffsetDateTime, count: u64, status: u16) -> ReadCount {
    ReadCount {
        route: "refused from 127.0.0.1".into(),
        last_status: status,
        ..read(tenant, last_at, count)
    }
}

fn hour(h: i64, counts: [u64; 4]) -> HourCount {
    let [requests, failures, unauthorized, server_errors] = counts;
    HourCount {
        hour: at(h * 3600),
        requests,
        failures,
        unauthorized,
        server_errors,
    }
}

/// The rollup counts what the writer appended, rows and counted reads alike (refused
/// requests from their counts, not from their sample rows), in the hour each
/// request arrived, adding up over several flushes; a tenant's hours are its own; every hour
/// of the period is listed (zeros where nothing happened, from the hour `since` falls in);
/// pruning removes only hours that ended before the bound, in batches.
pub async fn the_hourly_rollup_counts_rows_and_reads_per_hour(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "acme").await;
    tenant(s, "beta").await;
    s.append_provisioning(&[
        entry("acme", at(10), "POST", 201),
        entry("acme", at(20), "GET", 401),
        entry("acme", at(30), "PATCH", 500),
        entry("acme", at(3599), "PUT", 409),
        entry("acme", at(3600), "DELETE", 204),
        entry("beta", at(40), "POST", 201),
    ])
    .await
    .unwrap();
    // The 401 row is the sample of a refused request the server counts: counted once.
    s.add_provisioning_counts(
        &[
            read("acme", at(50), 5),
            read("acme", at(7210), 3),
            refused("acme", at(20), 1, 401),
        ],
        &[],
    )
    .await
    .unwrap();
    // A later flush of the same hour adds up.
    s.append_provisioning(&[entry("acme", at(3000), "POST", 503)])
        .await
        .unwrap();
    s.add_provisioning_counts(&[read("acme", at(3100), 2)], &[])
        .await
        .unwrap();

    let hours = s.tenant_hourly("acme", at(0), at(4 * 3600)).await.unwrap();
    assert_eq!(
        hours,
        [
            hour(0, [12, 4, 1, 2]),
            hour(1, [1, 0, 0, 0]),
            hour(2, [3, 0, 0, 0]),
            hour(3, [0, 0, 0, 0]),
        ]
    );
    assert_eq!(
        s.tenant_hourly("acme", at(1800), at(3600 + 1))
            .await
            .unwrap(),
        [hour(0, [12, 4, 1, 2]), hour(1, [1, 0, 0, 0])],
        "from the hour `since` falls in, to `until` (exclusive)"
    );
    assert_eq!(
        s.tenant_hourly("beta", at(0), at(2 * 3600)).await.unwrap(),
        [hour(0, [1, 0, 0, 0]), hour(1, [0, 0, 0, 0])]
    );
    assert_eq!(
        s.tenant_hourly("nobody", at(0), at(3600)).await.unwrap(),
        [hour(0, [0, 0, 0, 0])]
    );

    // Hour 0 of both tenants ended before 01:30; hour 1 did not.
    assert_eq!(s.prune_hourly(at(5400), 1).await.unwrap(), 1);
    assert_eq!(s.prune_hourly(at(5400), 10).await.unwrap(), 1);
    assert_eq!(s.prune_hourly(at(5400), 10).await.unwrap(), 0);
    assert_eq!(
        s.tenant_hourly("acme", at(0), at(3 * 3600)).await.unwrap(),
        [
            hour(0, [0, 0, 0, 0]),
            hour(1, [1, 0, 0, 0]),
            hour(2, [3, 0, 0, 0]),
        ]
    );
}

/// Trips the deprovisioning guard of tenant `t` (20 active users, at most 10 % and 2 a
/// window): two deactivations are held.
async fn trip_guard(s: &dyn Store, t: &str, now: OffsetDateTime) {
    let mut users = Vec::new();
    for i in 0..20 {
        let new = NewResource {
            id: format!("u{i}"),
            doc: json!({"schemas": [USER_SCHEMA], "userName": format!("u{i}"), "active": true}),
            password_hash: None,
            members: vec![],
            events: vec![],
        };
        match s
            .create_resource(t, ResourceKind::User, new, at(0))
            .await
            .unwrap()
        {
            CreateOutcome::Created(r) => users.push(r),
            other => panic!("{other:?}"),
        }
    }
    let mut allowed = 0;
    for u in &users[..4] {
        let subject = GuardSubject {
            user_id: u.id.clone(),
            user_name: u.id.clone(),
            created: u.created,
            operation: GuardOperation::Deactivate,
        };
        if matches!(
            s.guard_admit(t, &subject, now).await.unwrap(),
            GuardVerdict::Allowed
        ) {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 2, "the third deactivation trips the guard");
}

/// A page of tenants by id with, for each: the newest request and its status, the newest
/// success, requests and failures of the last 24 hours (the current hour and the 23 before),
/// the soonest expiry of a live token (revoked and expired ones do not count), the guard
/// holding deactivations (since when, how many users), and failing webhook streams (how
/// many, the most attempts, the last error); a tenant without any of it has none.
pub async fn tenants_health_pages_by_id_and_reports_each_field(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    let now = at(2 * 86_400 + 1800);
    tenant(s, "a").await;
    tenant(s, "b").await;
    tenant_with(
        s,
        "t",
        TenantSettings {
            deprovision_guard: DeprovisionGuard {
                enabled: true,
                max_percent: 10,
                min_count: 2,
                window_minutes: 15,
            },
            ..TenantSettings::default()
        },
    )
    .await;

    // a: a failure 30 hours ago (outside), a success 2 hours ago, two 401s since; a counted
    // read 3 hours ago.
    s.append_provisioning(&[
        entry("a", now - Duration::hours(30), "POST", 500),
        entry("a", now - Duration::hours(2), "POST", 201),
        entry("a", now - Duration::hours(1), "GET", 401),
        entry("a", now - Duration::minutes(10), "GET", 401),
    ])
    .await
    .unwrap();
    s.add_provisioning_counts(
        &[
            read("a", now - Duration::hours(3), 4),
            refused("a", now - Duration::hours(1), 1, 401),
            refused("a", now - Duration::minutes(10), 1, 401),
        ],
        &[],
    )
    .await
    .unwrap();
    let token = |prefix: &str, expires: OffsetDateTime, revoked: bool| TokenRecord {
        prefix: prefix.into(),
        tenant_id: "a".into(),
        hash: format!("hash-{prefix}"),
        created_at: at(0),
        expires_at: expires,
        last_used_at: None,
        revoked_at: revoked.then_some(at(1)),
    };
    s.insert_token(&token("rsct_expired", now - Duration::days(1), false))
        .await
        .unwrap();
    s.insert_token(&token("rsct_revoked", now + Duration::days(1), true))
        .await
        .unwrap();
    s.insert_token(&token("rsct_live", now + Duration::days(3), false))
        .await
        .unwrap();
    let hook = |id: &str, tenant: Option<&str>| Webhook {
        id: id.into(),
        tenant_id: tenant.map(str::to_owned),
        url: "http://127.0.0.1:9/hook".into(),
        description: None,
        event_types: vec![],
        secret: "s".into(),
        previous_secret: None,
        previous_expires_at: None,
        enabled: true,
        created_at: at(0),
    };
    s.create_webhook(&hook("wh_all", None)).await.unwrap();
    s.create_webhook(&hook("wh_a", Some("a"))).await.unwrap();
    let failed = DeliveryResult::Failed {
        attempts: 10,
        next_attempt_at: now + Duration::minutes(5),
        failing_since: now - Duration::hours(1),
        error: "HTTP 503".into(),
        park: false,
    };
    assert!(s
        .record_delivery("wh_a", "a", 0, "n1", &failed, now)
        .await
        .unwrap());
    trip_guard(s, "t", now - Duration::minutes(5)).await;

    let page = s.tenants_health(None, 2, now).await.unwrap();
    assert_eq!(
        page.iter()
            .map(|h| h.tenant_id.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let a = &page[0];
    assert_eq!(a.name, "Tenant a");
    assert_eq!(a.last_request, Some((now - Duration::minutes(10), 401)));
    assert_eq!(a.last_success_at, Some(now - Duration::hours(2)));
    assert_eq!((a.requests_24h, a.failures_24h), (7, 2));
    assert_eq!(a.token_expires_at, Some(now + Duration::days(3)));
    assert_eq!((a.guard_tripped_at, a.guard_held_users), (None, 0));
    assert_eq!(a.webhooks.failing, 1);
    assert_eq!(a.webhooks.max_attempts, 10);
    assert_eq!(a.webhooks.last_error.as_deref(), Some("HTTP 503"));

    let quiet = &page[1];
    assert_eq!(quiet.last_request, None);
    assert_eq!(quiet.last_success_at, None);
    assert_eq!((quiet.requests_24h, quiet.failures_24h), (0, 0));
    assert_eq!(quiet.token_expires_at, None);
    assert_eq!(quiet.guard_tripped_at, None);
    assert_eq!(quiet.webhooks, crate::WebhookHealth::default());

    let rest = s.tenants_health(Some("b"), 2, now).await.unwrap();
    assert_eq!(rest.len(), 1);
    let t = &rest[0];
    assert_eq!(t.tenant_id, "t");
    assert!(t.guard_tripped_at.is_some(), "{t:?}");
    assert_eq!(t.guard_held_users, 2);
    assert_eq!(t.webhooks.failing, 0, "a healthy stream is not failing");
    assert!(s
        .tenants_health(Some("t"), 2, now)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.tenant_health("t", now).await.unwrap().as_ref(),
        Some(t),
        "one tenant's health is its row of the page"
    );
    assert_eq!(s.tenant_health("nobody", now).await.unwrap(), None);

    // A delivery clears the failure (the stream keeps its last error, which no longer counts).
    assert!(s
        .record_delivery(
            "wh_a",
            "a",
            0,
            "n1",
            &DeliveryResult::Delivered { seq: 0 },
            now
        )
        .await
        .unwrap());
    let a = &s.tenants_health(None, 1, now).await.unwrap()[0];
    assert_eq!(a.webhooks, crate::WebhookHealth::default());
    // A day later the failures have left the window.
    let later = s
        .tenants_health(None, 1, now + Duration::days(1))
        .await
        .unwrap();
    assert_eq!((later[0].requests_24h, later[0].failures_24h), (0, 0));
}

/// The log filters by status class, method and text (contained in the path, the name, the
/// request id or the detail, case-insensitively, `%` and `_` taken literally), alone and
/// together, and pages by id with any of them.
pub async fn provisioning_log_filters_by_class_method_and_text(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "acme").await;
    let mut rows = vec![
        entry("acme", at(1), "POST", 201),
        entry("acme", at(2), "GET", 401),
        entry("acme", at(3), "PATCH", 409),
        entry("acme", at(4), "PUT", 500),
        entry("acme", at(5), "DELETE", 204),
        entry("acme", at(6), "PATCH", 200),
    ];
    rows[0].name = Some("BJensen@example.com".into());
    rows[0].path = "/scim/v2/acme/Users".into();
    rows[2].detail = Some("userName \"Anderson\" is already taken".into());
    rows[2].path = "/scim/v2/acme/Users/abc-123".into();
    rows[3].detail = Some("100% broken_thing".into());
    rows[5].request_id = "Trace-XYZ".into();
    s.append_provisioning(&rows).await.unwrap();
    let ids: Vec<i64> = s
        .list_provisioning(
            "acme",
            &LogQuery {
                limit: 10,
                ..LogQuery::default()
            },
        )
        .await
        .unwrap()
        .iter()
        .rev()
        .map(|e| e.id)
        .collect();
    let statuses = |q: LogQuery| async move {
        s.list_provisioning("acme", &q)
            .await
            .unwrap()
            .iter()
            .map(|e| e.status)
            .collect::<Vec<_>>()
    };
    let q = |f: &dyn Fn(&mut LogQuery)| {
        let mut q = LogQuery {
            limit: 10,
            ..LogQuery::default()
        };
        f(&mut q);
        q
    };
    let class = |c| q(&|q| q.status_class = Some(c));
    assert_eq!(statuses(class(StatusClass::Success)).await, [200, 204, 201]);
    assert_eq!(statuses(class(StatusClass::ClientError)).await, [409, 401]);
    assert_eq!(statuses(class(StatusClass::ServerError)).await, [500]);
    assert_eq!(statuses(class(StatusClass::Redirection)).await, [0u16; 0]);
    assert_eq!(
        statuses(q(&|q| q.method = Some("patch".into()))).await,
        [200, 409]
    );
    let text = |t: &str| {
        let t = t.to_owned();
        q(&move |q| q.text = Some(t.clone()))
    };
    assert_eq!(statuses(text("bjensen")).await, [201], "the name");
    assert_eq!(statuses(text("USERS/ABC")).await, [409], "the path");
    assert_eq!(statuses(text("anderson")).await, [409], "the detail");
    assert_eq!(statuses(text("trace-xyz")).await, [200], "the request id");
    assert_eq!(statuses(text("100%")).await, [500], "% is literal");
    assert_eq!(statuses(text("k_n")).await, [0u16; 0], "_ is literal");
    assert_eq!(statuses(text("broken_t")).await, [500]);
    assert_eq!(
        statuses(text("")).await.len(),
        6,
        "an empty text filters nothing"
    );
    assert_eq!(
        statuses(q(&|q| {
            q.text = Some("/users".into());
            q.status_class = Some(StatusClass::ClientError);
            q.method = Some("GET".into());
        }))
        .await,
        [401]
    );
    // Keyset paging with a filter: newest first, then below the page's last id; following
    // (oldest first) above an id.
    let first = s
        .list_provisioning(
            "acme",
            &q(&|q| {
                q.status_class = Some(StatusClass::Success);
                q.limit = 2;
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|e| e.status).collect::<Vec<_>>(),
        [200, 204]
    );
    let before = first[1].id;
    assert_eq!(
        statuses(q(&|q| {
            q.status_class = Some(StatusClass::Success);
            q.before = Some(before);
        }))
        .await,
        [201]
    );
    assert_eq!(
        statuses(q(&|q| {
            q.status_class = Some(StatusClass::ClientError);
            q.after = Some(ids[0]);
        }))
        .await,
        [401, 409]
    );
}
