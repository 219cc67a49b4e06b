//! Smoke tests of the PostgreSQL tenant admin and app sides: every method of
//! [`TenantAdminStore`] and [`AppStore`] once, on a database of its own, so that each statement
//! is known to run on PostgreSQL. What the methods do is the conformance suite's business
//! (`crate::conformance`), which runs here once the whole `Store` is implemented.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use scim_proto::schema::{GROUP_SCHEMA, USER_SCHEMA};
use serde_json::json;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::db;
use super::testdb::TestDb;
use super::PostgresStore;
use crate::app::{
    AppGroupQuery, AppGroupUpdate, AppStore, AppUserQuery, AppUserUpdate, GuardDecision,
    GuardOperation, GuardState, GuardSubject, GuardVerdict, ImportResult, ImportUser, LoginKey,
    MatchBy, NewAppGroup, RoleMapping, UserStatus,
};
use crate::tenants::{
    TenantAdminStore, TenantDataMode, TenantState, CONFLICT_SCIM_ENABLED, CONFLICT_TOKEN_LIMIT,
};
use crate::{DeprovisionGuard, MemberOp, StoreError, Tenant, TenantSettings, TokenRecord};

const T0: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);

fn at(secs: i64) -> OffsetDateTime {
    T0 + Duration::seconds(secs)
}

/// A tenant inserted with SQL: `Store::create_tenant` is not on PostgreSQL yet.
async fn tenant(s: &PostgresStore, id: &str) {
    db::query("INSERT INTO tenants (id, name, idp, created_at) VALUES (?, ?, ?, ?)")
        .bind(id)
        .bind(format!("Tenant {id}"))
        .bind("generic")
        .bind(crate::domain::query::to_ms(T0))
        .execute(&s.pool)
        .await
        .unwrap();
}

async fn count(s: &PostgresStore, sql: &str, tenant: &str) -> i64 {
    db::query_scalar(sql)
        .bind(tenant)
        .fetch_one(&s.pool)
        .await
        .unwrap()
}

/// The tenant's event types in seq order, after checking that the seqs run 1, 2, … without gaps.
async fn event_types(s: &PostgresStore, tenant: &str) -> Vec<String> {
    let rows: Vec<(i64, String)> =
        db::query_as("SELECT seq, type FROM events WHERE tenant_id = ? ORDER BY seq")
            .bind(tenant)
            .fetch_all(&s.pool)
            .await
            .unwrap();
    for (i, (seq, _)) in rows.iter().enumerate() {
        assert_eq!(*seq, i64::try_from(i).unwrap() + 1);
    }
    rows.into_iter().map(|(_, t)| t).collect()
}

fn tok(prefix: &str, tenant: &str, created: i64, ttl: i64) -> TokenRecord {
    TokenRecord {
        prefix: prefix.into(),
        tenant_id: tenant.into(),
        hash: format!("hash-{prefix}"),
        created_at: at(created),
        expires_at: at(created + ttl),
        last_used_at: None,
        revoked_at: None,
    }
}

#[tokio::test]
async fn tenant_admin_runs_on_postgres() {
    let db = TestDb::new().await;
    let s = db.open().await;
    for id in ["c", "a", "b", "d"] {
        tenant(&s, id).await;
    }
    let ids = |v: Vec<Tenant>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(ids(s.list_tenants_page(None, 2).await.unwrap()), ["a", "b"]);
    assert_eq!(
        ids(s.list_tenants_page(Some("b"), 5).await.unwrap()),
        ["c", "d"]
    );
    assert!(matches!(
        s.tenant_state("a").await.unwrap(),
        TenantState::Live(t) if t.name == "Tenant a"
    ));
    assert_eq!(s.tenant_state("nope").await.unwrap(), TenantState::Absent);

    let t = s
        .update_tenant(
            "a",
            Box::new(|t: &mut Tenant| {
                t.name = "Acme".into();
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(t.name, "Acme");
    assert!(matches!(
        s.update_tenant("nope", Box::new(|_: &mut Tenant| Ok(())))
            .await,
        Err(StoreError::NotFound)
    ));

    let auth_before = s.auth_changes.load(std::sync::atomic::Ordering::Acquire);
    s.create_token(&tok("a1", "a", 0, 100), 1, at(0))
        .await
        .unwrap();
    assert!(s.auth_changes.load(std::sync::atomic::Ordering::Acquire) > auth_before);
    assert!(matches!(
        s.create_token(&tok("a2", "a", 1, 100), 1, at(1)).await,
        Err(StoreError::Conflict(CONFLICT_TOKEN_LIMIT))
    ));
    assert!(matches!(
        s.create_token(&tok("x1", "nope", 1, 100), 1, at(1)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        s.rotate_token(&tok("a3", "a", 2, 10), Some("a1"), at(2))
            .await
            .unwrap(),
        ["a1"]
    );
    assert!(matches!(
        s.rotate_token(&tok("a4", "a", 3, 10), Some("a1"), at(3))
            .await,
        Err(StoreError::NotFound)
    ));
    let warned = s.warn_expiring_tokens("a", at(100), at(3)).await.unwrap();
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0].prefix, "a3");
    assert!(s
        .warn_expiring_tokens("a", at(100), at(4))
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        s.enable_scim(&tok("a5", "a", 5, 100), at(5)).await,
        Err(StoreError::Conflict(CONFLICT_SCIM_ENABLED))
    ));
    assert_eq!(s.disable_scim("a", at(6)).await.unwrap(), ["a3"]);
    s.enable_scim(&tok("a6", "a", 7, 100), at(7)).await.unwrap();
    assert!(matches!(
        s.erase_user("a", "nobody", at(8)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        event_types(&s, "a").await,
        [
            "token.created",
            "token.rotated",
            "token.expiring",
            "scim.disabled",
            "scim.enabled",
            "token.created"
        ]
    );

    // Retained: marked deleted, tokens revoked, rows kept.
    s.create_token(&tok("b1", "b", 0, 100), 2, at(0))
        .await
        .unwrap();
    s.delete_tenant("b", TenantDataMode::Retain, at(9))
        .await
        .unwrap();
    assert!(matches!(
        s.tenant_state("b").await.unwrap(),
        TenantState::Deleted { deleted_at } if deleted_at == at(9)
    ));
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM tokens WHERE tenant_id = ? AND revoked_at IS NOT NULL",
            "b"
        )
        .await,
        1
    );
    assert!(matches!(
        s.delete_tenant("b", TenantDataMode::Retain, at(10)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        ids(s.list_tenants_page(None, 10).await.unwrap()),
        ["a", "c", "d"]
    );

    // Erased: every row naming the tenant goes, but the audit log's.
    db::query(
        "INSERT INTO audit_log (at, actor, action, tenant_id, details) \
         VALUES (0, 'test', 'tenant.delete', 'a', '{}')",
    )
    .execute(&s.pool)
    .await
    .unwrap();
    s.delete_tenant("a", TenantDataMode::Erase, at(11))
        .await
        .unwrap();
    assert_eq!(s.tenant_state("a").await.unwrap(), TenantState::Absent);
    for table in ["tokens", "events", "tenant_writes"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = ?");
        assert_eq!(count(&s, &sql, "a").await, 0, "{table}");
    }
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM audit_log WHERE tenant_id = ?",
            "a"
        )
        .await,
        1
    );
    assert!(matches!(
        s.delete_tenant("a", TenantDataMode::Erase, at(12)).await,
        Err(StoreError::NotFound)
    ));
    // The id is free again, and a new tenant's seqs start afresh.
    tenant(&s, "a").await;
    s.create_token(&tok("a7", "a", 13, 100), 2, at(13))
        .await
        .unwrap();
    assert_eq!(event_types(&s, "a").await, ["token.created"]);
}

fn import(id: &str, email: &str, groups: &[&str]) -> ImportUser {
    ImportUser {
        id: id.into(),
        doc: json!({
            "schemas": [USER_SCHEMA],
            "userName": id,
            "externalId": format!("x-{id}"),
            "active": true,
            "emails": [{"value": email, "type": "work", "primary": true}],
        }),
        roles: vec!["viewer".into()],
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        metadata: json!({"source": "test"}),
    }
}

#[tokio::test]
async fn app_side_runs_on_postgres() {
    let db = TestDb::new().await;
    let s = db.open().await;
    tenant(&s, "t").await;
    assert!(matches!(
        s.put_tenant_settings("nope", &TenantSettings::default())
            .await,
        Err(StoreError::NotFound)
    ));
    s.put_tenant_settings("t", &TenantSettings::default())
        .await
        .unwrap();

    let results = s
        .import_users(
            "t",
            vec![
                import("alice", "Alice@Example.com", &["Admins"]),
                import("bob", "bob@example.com", &["Admins", "Staff"]),
                import("alice", "again@example.com", &[]),
            ],
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(
        results[..2],
        [ImportResult::Imported, ImportResult::Imported]
    );
    assert!(matches!(results[2], ImportResult::Skipped(_)));

    let alice = s.get_app_user("t", "alice").await.unwrap().unwrap();
    assert!(!alice.managed);
    assert_eq!(alice.status, UserStatus::Active);
    assert_eq!(alice.direct_roles, ["viewer"]);
    assert_eq!(alice.groups.len(), 1);
    assert_eq!(alice.groups[0].display_name, "Admins");
    assert_eq!(alice.metadata, json!({"source": "test"}));
    assert!(s.get_app_user("t", "nobody").await.unwrap().is_none());

    // Every filter of the user list, and a cursor.
    let ids = |p: crate::app::AppPage<crate::app::AppUser>| {
        p.items
            .into_iter()
            .map(|u| u.resource.id)
            .collect::<Vec<_>>()
    };
    let q = |f: &dyn Fn(&mut AppUserQuery)| {
        let mut q = AppUserQuery {
            limit: 10,
            ..AppUserQuery::default()
        };
        f(&mut q);
        q
    };
    let page = s.list_app_users("t", &q(&|q| q.limit = 1)).await.unwrap();
    let cursor = page.next_cursor.clone().unwrap();
    assert_eq!(ids(page), ["alice"]);
    let page = s
        .list_app_users("t", &q(&|q| q.cursor = Some(cursor.clone())))
        .await
        .unwrap();
    assert!(page.next_cursor.is_none());
    assert_eq!(ids(page), ["bob"]);
    for (query, want) in [
        (
            q(&|q| q.user_name_prefix = Some("AL".into())),
            vec!["alice"],
        ),
        (q(&|q| q.search = Some("bob@".into())), vec!["bob"]),
        (q(&|q| q.search = Some("a".into())), vec!["alice"]),
        (
            q(&|q| q.email = Some("alice@example.COM".into())),
            vec!["alice"],
        ),
        (q(&|q| q.external_id = Some("x-bob".into())), vec!["bob"]),
        (
            q(&|q| q.status = Some(UserStatus::Active)),
            vec!["alice", "bob"],
        ),
        (q(&|q| q.status = Some(UserStatus::Deactivated)), vec![]),
        (q(&|q| q.status = Some(UserStatus::Deprovisioned)), vec![]),
        (q(&|q| q.managed = Some(false)), vec!["alice", "bob"]),
        (q(&|q| q.managed = Some(true)), vec![]),
    ] {
        assert_eq!(
            ids(s.list_app_users("t", &query).await.unwrap()),
            want,
            "{query:?}"
        );
    }
    assert!(matches!(
        s.list_app_users("t", &q(&|q| q.cursor = Some("zz".into())))
            .await,
        Err(StoreError::Invalid(_))
    ));

    let bob = s
        .update_app_user(
            "t",
            "bob",
            AppUserUpdate {
                expected_version: 1,
                doc: None,
                roles: Some(vec!["editor".into()]),
                metadata: Some(json!({"n": 1})),
                events: vec![],
            },
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(bob.direct_roles, ["editor"]);
    assert_eq!(bob.resource.version, 2);

    // Groups: created, listed, members paged, changed.
    let g = s
        .create_app_group(
            "t",
            NewAppGroup {
                id: "g1".into(),
                doc: json!({"schemas": [GROUP_SCHEMA], "displayName": "Engineers"}),
                members: vec!["alice".into()],
                metadata: json!({}),
            },
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(g.member_count, 1);
    assert!(!g.managed);
    let g = s
        .update_app_group(
            "t",
            "g1",
            AppGroupUpdate {
                expected_version: 1,
                doc: None,
                members: vec![MemberOp::Add(vec!["bob".into()])],
                metadata: Some(json!({"k": "v"})),
                events: vec![],
            },
            at(3),
        )
        .await
        .unwrap();
    assert_eq!(g.member_count, 2);
    assert_eq!(g.metadata, json!({"k": "v"}));
    assert_eq!(
        s.get_app_group("t", "g1")
            .await
            .unwrap()
            .unwrap()
            .member_count,
        2
    );
    let groups = s
        .list_app_groups(
            "t",
            &AppGroupQuery {
                limit: 10,
                display_name_prefix: Some("eng".into()),
                managed: Some(false),
                ..AppGroupQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(groups.items.len(), 1);
    assert_eq!(groups.items[0].resource.id, "g1");
    let all = s
        .list_app_groups(
            "t",
            &AppGroupQuery {
                limit: 2,
                ..AppGroupQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2, "Admins, Staff, Engineers: a page of 2");
    assert!(all.next_cursor.is_some());
    let members = s.list_app_group_members("t", "g1", None, 1).await.unwrap();
    assert_eq!(members.items.len(), 1);
    assert_eq!(members.items[0].id, "alice");
    assert_eq!(members.items[0].user_name, "alice");
    assert_eq!(members.items[0].status, UserStatus::Active);
    let rest = s
        .list_app_group_members("t", "g1", members.next_cursor.as_deref(), 10)
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].id, "bob");
    assert!(rest.next_cursor.is_none());
    assert!(matches!(
        s.list_app_group_members("t", "nope", None, 10).await,
        Err(StoreError::NotFound)
    ));

    // Role mappings, and the roles they give at sign-in.
    let mapping = RoleMapping {
        id: "m1".into(),
        by: MatchBy::DisplayName,
        value: "Engineers".into(),
        roles: vec!["builder".into()],
        created_at: at(4),
        updated_at: at(4),
    };
    s.create_role_mapping("t", &mapping, at(4)).await.unwrap();
    assert!(matches!(
        s.create_role_mapping("t", &mapping, at(4)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.list_role_mappings("t").await.unwrap(),
        std::slice::from_ref(&mapping)
    );
    let login = s
        .login_lookup("t", &LoginKey::Email("ALICE@example.com".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(login.id, "alice");
    assert!(!login.managed);
    assert_eq!(login.roles, ["builder", "viewer"]);
    let login = s
        .login_lookup("t", &LoginKey::ExternalId("x-bob".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(login.roles, ["builder", "editor"]);
    assert!(s
        .login_lookup("t", &LoginKey::Email("nobody@example.com".into()))
        .await
        .unwrap()
        .is_none());
    let changed = RoleMapping {
        roles: vec!["lead".into()],
        updated_at: at(5),
        ..mapping.clone()
    };
    s.update_role_mapping("t", &changed, at(5)).await.unwrap();
    assert_eq!(
        s.get_role_mapping("t", "m1").await.unwrap().unwrap(),
        changed
    );
    assert_eq!(
        s.get_app_user("t", "alice").await.unwrap().unwrap().roles,
        ["lead", "viewer"]
    );
    assert_eq!(
        s.get_app_group("t", "g1").await.unwrap().unwrap().roles,
        ["lead"]
    );
    s.delete_role_mapping("t", "m1", at(6)).await.unwrap();
    assert!(s.get_role_mapping("t", "m1").await.unwrap().is_none());

    // Removing users and groups.
    s.erase_user("t", "bob", at(7)).await.unwrap();
    assert!(s.get_app_user("t", "bob").await.unwrap().is_none());
    assert_eq!(
        s.get_app_group("t", "g1")
            .await
            .unwrap()
            .unwrap()
            .member_count,
        1
    );
    s.delete_app_user("t", "alice", at(8)).await.unwrap();
    s.delete_app_group("t", "g1", at(9)).await.unwrap();
    assert!(s.get_app_group("t", "g1").await.unwrap().is_none());
    let types = event_types(&s, "t").await;
    assert!(types.contains(&"user.imported".to_owned()), "{types:?}");
    assert_eq!(types.last().map(String::as_str), Some("group.deleted"));
}

#[tokio::test]
async fn the_guard_runs_on_postgres() {
    let db = TestDb::new().await;
    let s = db.open().await;
    tenant(&s, "t").await;
    s.put_tenant_settings(
        "t",
        &TenantSettings {
            deprovision_guard: DeprovisionGuard {
                enabled: true,
                max_percent: 1,
                min_count: 0,
                window_minutes: 15,
            },
            ..TenantSettings::default()
        },
    )
    .await
    .unwrap();
    let subject = |id: &str| GuardSubject {
        user_id: id.into(),
        user_name: id.into(),
        created: T0,
        operation: GuardOperation::Deactivate,
    };
    let status = s.guard_status("t", at(1)).await.unwrap();
    assert_eq!(status.state, GuardState::Armed);
    assert!(matches!(
        s.guard_status("nope", at(1)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.guard_decide("t", GuardDecision::Confirm, "op", at(1))
            .await,
        Err(StoreError::Invalid(_))
    ));
    // Any deactivation is over a threshold of 0: the first trips the guard and is held.
    assert!(matches!(
        s.guard_admit("t", &subject("u1"), at(2)).await.unwrap(),
        GuardVerdict::Refused(_)
    ));
    assert!(matches!(
        s.guard_admit("t", &subject("u1"), at(3)).await.unwrap(),
        GuardVerdict::Refused(_)
    ));
    assert!(matches!(
        s.guard_admit("t", &subject("u2"), at(4)).await.unwrap(),
        GuardVerdict::Refused(_)
    ));
    let status = s.guard_status("t", at(5)).await.unwrap();
    assert_eq!(status.state, GuardState::Tripped);
    assert_eq!(status.held_count, 2);
    assert_eq!(status.held[0].user_id, "u1");
    assert_eq!(status.held[0].attempts, 2);
    let status = s
        .guard_decide("t", GuardDecision::Confirm, "op", at(6))
        .await
        .unwrap();
    assert_eq!(status.state, GuardState::Confirmed);
    assert!(matches!(
        s.guard_admit("t", &subject("u3"), at(7)).await.unwrap(),
        GuardVerdict::Allowed
    ));
    let held: Vec<(String, i64)> = db::query_as(
        "SELECT user_id, attempts FROM deprovision_guard_held WHERE tenant_id = 't' \
         ORDER BY user_id",
    )
    .fetch_all(&s.pool)
    .await
    .unwrap();
    assert!(held.is_empty(), "a confirmation is done with the held list");
    assert_eq!(
        event_types(&s, "t").await,
        [
            "tenant.deprovision_guard_tripped",
            "tenant.deprovision_guard_resolved"
        ]
    );
}

#[tokio::test]
async fn held_operations_and_the_window_count_on_postgres() {
    let db = TestDb::new().await;
    let s = db.open().await;
    tenant(&s, "t").await;
    s.put_tenant_settings(
        "t",
        &TenantSettings {
            deprovision_guard: DeprovisionGuard {
                enabled: true,
                max_percent: 1,
                min_count: 2,
                window_minutes: 15,
            },
            ..TenantSettings::default()
        },
    )
    .await
    .unwrap();
    let subject = |id: &str| GuardSubject {
        user_id: id.into(),
        user_name: id.into(),
        created: T0,
        operation: GuardOperation::Delete,
    };
    // Two are counted (min_count 2), the third trips; a repeat of a held one adds an attempt.
    for (i, id) in ["u1", "u2"].iter().enumerate() {
        assert!(matches!(
            s.guard_admit("t", &subject(id), at(i64::try_from(i).unwrap()))
                .await
                .unwrap(),
            GuardVerdict::Allowed
        ));
    }
    assert_eq!(s.guard_status("t", at(2)).await.unwrap().window_count, 2);
    for secs in [3, 4] {
        assert!(matches!(
            s.guard_admit("t", &subject("u3"), at(secs)).await.unwrap(),
            GuardVerdict::Refused(_)
        ));
    }
    let status = s
        .guard_decide("t", GuardDecision::Reject, "op", at(5))
        .await
        .unwrap();
    assert_eq!(status.state, GuardState::Rejected);
    let held: Vec<(String, String, i64)> = db::query_as(
        "SELECT user_id, operation, attempts FROM deprovision_guard_held WHERE tenant_id = 't'",
    )
    .fetch_all(&s.pool)
    .await
    .unwrap();
    assert_eq!(held, [("u3".to_owned(), "delete".to_owned(), 2)]);
}

/// The live-token limit counts, then inserts: only the tenant's write lock keeps two concurrent
/// creations from both passing the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_token_creations_respect_the_limit() {
    let db = TestDb::new().await;
    let s = db.open().await;
    tenant(&s, "t").await;
    let tries = (0..6).map(|i| {
        let s = s.clone();
        tokio::spawn(async move {
            s.create_token(&tok(&format!("p{i}"), "t", 0, 100), 2, at(0))
                .await
        })
    });
    let mut created = 0;
    for r in futures::future::join_all(tries).await {
        match r.unwrap() {
            Ok(()) => created += 1,
            Err(StoreError::Conflict(CONFLICT_TOKEN_LIMIT)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(created, 2);
    assert_eq!(
        event_types(&s, "t").await,
        ["token.created", "token.created"]
    );
}
