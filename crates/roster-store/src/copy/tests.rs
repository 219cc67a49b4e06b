//! The copy from SQLite to PostgreSQL, end to end through the store API: a SQLite store
//! filled with every kind of row, copied, and read back from PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use std::path::PathBuf;

use scim_proto::schema::{ResourceKind, USER_SCHEMA};
use serde_json::json;

use super::{sqlite_to_postgres, CopyError};
use crate::app::{GuardOperation, GuardSubject, ImportUser, MatchBy, RoleMapping};
use crate::conformance::support::{add_group, add_user, all, at, tenant_with, user_doc};
use crate::postgres::testdb::TestDb;
use crate::sqlite::SqliteStore;
use crate::{
    AdminKeyRecord, AppStore, AuditEntry, ConsoleSession, ConsoleStore, DeliveryResult,
    DroppedCount, EventStore, EventType, LogQuery, LogStore, MemberOp, MetaStore, NewEvent,
    Operator, ProvisioningEntry, ReadCount, ReadQuery, ResourceUpdate, SetupLink, Store,
    TenantAdminStore, TenantDataMode, TenantSettings, TokenRecord, Webhook, WebhookStore,
};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A SQLite database file of its own, removed (with its WAL files) when dropped.
struct SqliteFile(PathBuf);

impl SqliteFile {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("roster-copy-{}.db", uuid::Uuid::new_v4().simple())))
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for SqliteFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

fn token(prefix: &str, tenant: &str, secs: i64) -> TokenRecord {
    TokenRecord {
        prefix: prefix.into(),
        tenant_id: tenant.into(),
        hash: format!("hash-of-{prefix}"),
        created_at: at(secs),
        expires_at: at(secs + 86_400 * 365),
        last_used_at: None,
        revoked_at: None,
    }
}

fn log_entry(i: i64, status: u16) -> ProvisioningEntry {
    ProvisioningEntry {
        id: 0,
        at: at(i),
        tenant_id: "acme".into(),
        request_id: format!("req-{i}"),
        idp: Some("okta".into()),
        user_agent: Some("Okta SCIM Client 1.0.0".into()),
        method: "POST".into(),
        path: "/scim/v2/acme/Users".into(),
        resource_type: Some("User".into()),
        resource_id: Some(format!("u{i}")),
        name: Some(format!("User{i}")),
        status,
        scim_type: (status == 409).then(|| "uniqueness".into()),
        detail: None,
        hint: None,
        changed: vec!["userName".into(), "active".into()],
        duration_ms: 4,
        body: Some(json!({"userName": format!("User{i}")})),
        source_addr: Some("10.0.0.1".into()),
        token_prefix: Some("rst_acme1".into()),
    }
}

/// Fills a SQLite store with every kind of row the schema has.
async fn fill(s: &SqliteStore) {
    // Tenants: one with settings of its own, one with defaults, one deleted with its data kept.
    let settings = TenantSettings {
        welcome_email: true,
        sso_enforced: true,
        token_ttl_days: 90,
        ..TenantSettings::default()
    };
    tenant_with(s, "acme", settings).await;
    tenant_with(s, "beta", TenantSettings::default()).await;
    tenant_with(s, "gone", TenantSettings::default()).await;
    add_user(s, "gone", "g1", user_doc("kept-for-audit")).await;
    s.delete_tenant("gone", TenantDataMode::Retain, at(5))
        .await
        .unwrap();

    // Tokens: a live one, a rotated (revoked) one, one used.
    s.insert_token(&token("rst_acme0", "acme", 1))
        .await
        .unwrap();
    s.rotate_tokens(&token("rst_acme1", "acme", 2), at(2))
        .await
        .unwrap();
    s.touch_tokens(&[("rst_acme1".into(), at(3))])
        .await
        .unwrap();
    s.insert_token(&token("rst_beta0", "beta", 1))
        .await
        .unwrap();

    // Users: with the enterprise extension and emails, deactivated, deprovisioned.
    for i in 0..20 {
        let mut doc = json!({
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "userName": format!("user{i}@acme.example"),
            "externalId": format!("ext-{i}"),
            "name": {"givenName": "Ada", "familyName": format!("Lovelace{i}")},
            "displayName": format!("Ada {i}"),
            "active": true,
            "emails": [
                {"value": format!("user{i}@acme.example"), "type": "work", "primary": true},
                {"value": format!("ada{i}@home.example"), "type": "home"}
            ],
            ENTERPRISE: {"employeeNumber": format!("{i}"), "department": "Engines"}
        });
        if i == 3 {
            doc[ENTERPRISE]["manager"] = json!({"value": "u0"});
        }
        add_user(s, "acme", &format!("u{i}"), doc).await;
    }
    let u5 = s
        .get_resource("acme", ResourceKind::User, "u5")
        .await
        .unwrap()
        .unwrap();
    let mut off = u5.doc.clone();
    off["active"] = json!(false);
    s.update_resource(
        "acme",
        ResourceKind::User,
        "u5",
        u5.version,
        ResourceUpdate {
            doc: off,
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            members: vec![],
            events: vec![NewEvent::new(
                EventType::UserDeactivated,
                json!({"id": "u5"}),
            )],
            guard: None,
        },
        at(10),
    )
    .await
    .unwrap();
    add_user(s, "beta", "b0", user_doc("someone@beta.example")).await;

    // Groups with members; a membership change later.
    add_group(s, "acme", "g-eng", "Engineering", &["u0", "u1", "u2", "u6"]).await;
    add_group(s, "acme", "g-empty", "Nobody", &[]).await;
    add_group(
        s,
        "acme",
        "g-all",
        "Everyone",
        &["u0", "u1", "u2", "u3", "u4"],
    )
    .await;
    s.update_members(
        "acme",
        "g-all",
        &[MemberOp::Add(vec!["u7".into(), "u8".into()])],
        at(11),
    )
    .await
    .unwrap();
    // u6 is deprovisioned: retained, out of its groups.
    s.delete_resource(
        "acme",
        ResourceKind::User,
        "u6",
        crate::Deletion::default(),
        at(12),
    )
    .await
    .unwrap();

    // App side: imported users not managed by SCIM, with roles, metadata and an app group;
    // a role mapping; the guard's state.
    s.import_users(
        "acme",
        vec![ImportUser {
            id: "legacy1".into(),
            doc: json!({
                "schemas": [USER_SCHEMA],
                "userName": "legacy1",
                "active": true,
                "emails": [{"value": "legacy1@acme.example", "type": "work", "primary": true}],
            }),
            roles: vec!["viewer".into()],
            groups: vec!["Old Admins".into()],
            metadata: json!({"source": "ldap"}),
        }],
        at(13),
    )
    .await
    .unwrap();
    s.create_role_mapping(
        "acme",
        &RoleMapping {
            id: "rm1".into(),
            by: MatchBy::DisplayName,
            value: "Engineering".into(),
            roles: vec!["editor".into()],
            created_at: at(14),
            updated_at: at(14),
        },
        at(14),
    )
    .await
    .unwrap();
    let u9 = s
        .get_resource("acme", ResourceKind::User, "u9")
        .await
        .unwrap()
        .unwrap();
    s.guard_admit(
        "acme",
        &GuardSubject {
            user_id: "u9".into(),
            user_name: "user9@acme.example".into(),
            created: u9.created,
            operation: GuardOperation::Deactivate,
        },
        at(15),
    )
    .await
    .unwrap();

    // Events appended by the app itself.
    s.append_events(
        "beta",
        vec![NewEvent::new(
            EventType::UserUpdated,
            json!({"note": "by hand"}),
        )],
        at(16),
    )
    .await
    .unwrap();

    // A webhook for every tenant, its streams, one moved by a delivery.
    s.create_webhook(&Webhook {
        id: "wh_1".into(),
        tenant_id: None,
        url: "https://hooks.example/roster".into(),
        description: Some("the app".into()),
        event_types: vec!["user.created".into(), "group.members_added".into()],
        secret: "whsec_1".into(),
        previous_secret: None,
        previous_expires_at: None,
        enabled: true,
        created_at: at(17),
    })
    .await
    .unwrap();
    s.create_webhook(&Webhook {
        id: "wh_2".into(),
        tenant_id: Some("beta".into()),
        url: "https://beta.example/hook".into(),
        description: None,
        event_types: vec![],
        secret: "whsec_2".into(),
        previous_secret: None,
        previous_expires_at: None,
        enabled: false,
        created_at: at(18),
    })
    .await
    .unwrap();
    // The stream starts at acme's last seq; an event later, its delivery moves the cursor.
    // Leased, so that the lease columns are copied too.
    let stream = s
        .lease_stream("wh_1", "acme", "node-a", at(18), at(48))
        .await
        .unwrap()
        .unwrap();
    let appended = s
        .append_events(
            "acme",
            vec![NewEvent::new(EventType::UserUpdated, json!({"id": "u1"}))],
            at(19),
        )
        .await
        .unwrap();
    assert_eq!(appended[0].seq, stream.cursor + 1);
    assert!(s
        .record_delivery(
            "wh_1",
            "acme",
            stream.generation,
            "node-a",
            &DeliveryResult::Delivered {
                seq: appended[0].seq
            },
            at(19),
        )
        .await
        .unwrap());
    s.record_delivery(
        "wh_2",
        "beta",
        0,
        "node-a",
        &DeliveryResult::Failed {
            attempts: 2,
            next_attempt_at: at(60),
            failing_since: at(19),
            error: "HTTP 503".into(),
            park: false,
        },
        at(20),
    )
    .await
    .unwrap();

    // Logs: provisioning rows, read counts, dropped counts, audit rows.
    s.append_provisioning(&[log_entry(21, 201), log_entry(22, 409), log_entry(23, 200)])
        .await
        .unwrap();
    s.add_provisioning_counts(
        &[ReadCount {
            id: 0,
            tenant_id: "acme".into(),
            route: "GET /Users".into(),
            minute: crate::minute_of(at(24)),
            count: 12,
            last_status: 200,
            last_at: at(24),
        }],
        &[DroppedCount {
            tenant_id: "acme".into(),
            minute: crate::minute_of(at(24)),
            count: 3,
        }],
    )
    .await
    .unwrap();
    for (i, action) in ["tenant.create", "token.rotate"].iter().enumerate() {
        s.append_audit(&AuditEntry {
            id: 0,
            at: at(25),
            actor: "cli".into(),
            action: (*action).into(),
            tenant_id: Some("acme".into()),
            target: Some(format!("target-{i}")),
            details: json!({"i": i}),
        })
        .await
        .unwrap();
    }

    // Operators' side: an admin key (used), console operators, a session, a setup link.
    s.insert_admin_key(&AdminKeyRecord {
        prefix: "rak_1".into(),
        hash: "hash-of-rak_1".into(),
        name: Some("deploy".into()),
        created_at: at(26),
        last_used_at: None,
        revoked_at: None,
        expires_at: None,
        scopes: None,
    })
    .await
    .unwrap();
    s.touch_admin_keys(&[("rak_1".into(), at(27))])
        .await
        .unwrap();
    s.create_operator(&Operator {
        email: "ops@example.com".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$b3Bz".into(),
        created_at: at(28),
        password_changed_at: at(28),
        last_sign_in_at: None,
        failed_attempts: 0,
        locked_until: None,
    })
    .await
    .unwrap();
    s.operator_signed_in("ops@example.com", at(29))
        .await
        .unwrap();
    s.insert_session(&ConsoleSession {
        id_hash: "session-hash".into(),
        tenant_id: None,
        actor: "operator:ops@example.com".into(),
        created_at: at(29),
        expires_at: at(100_000),
    })
    .await
    .unwrap();
    s.insert_setup_link(&SetupLink {
        hash: "link-hash".into(),
        tenant_id: "acme".into(),
        created_by: "operator:ops@example.com".into(),
        created_at: at(30),
        expires_at: at(100_000),
        used_at: None,
    })
    .await
    .unwrap();
    s.set_meta(crate::meta::PUBLIC_URL, Some("https://scim.example.com"))
        .await
        .unwrap();
}

/// Asserts that `a` and `b` hold the same data, read through the store API.
async fn assert_same(a: &dyn Store, b: &dyn Store) {
    let now = at(1000);
    assert_eq!(
        a.list_tenants().await.unwrap(),
        b.list_tenants().await.unwrap()
    );
    assert_eq!(
        a.tenant_state("gone").await.unwrap(),
        b.tenant_state("gone").await.unwrap()
    );
    for t in ["acme", "beta", "gone"] {
        assert_eq!(
            a.get_tenant(t).await.unwrap(),
            b.get_tenant(t).await.unwrap()
        );
        assert_eq!(
            a.list_tokens(t).await.unwrap(),
            b.list_tokens(t).await.unwrap()
        );
        for kind in [ResourceKind::User, ResourceKind::Group] {
            assert_eq!(
                a.list_resources(t, kind, &all(None)).await.unwrap(),
                b.list_resources(t, kind, &all(None)).await.unwrap(),
                "{t} {kind:?}"
            );
        }
        let events = a.list_events(t, 0, &[], 10_000).await.unwrap();
        assert_eq!(
            events,
            b.list_events(t, 0, &[], 10_000).await.unwrap(),
            "{t}"
        );
        assert_eq!(a.last_seq(t).await.unwrap(), b.last_seq(t).await.unwrap());
        assert_eq!(
            a.list_provisioning(
                t,
                &LogQuery {
                    limit: 100,
                    ..LogQuery::default()
                }
            )
            .await
            .unwrap(),
            b.list_provisioning(
                t,
                &LogQuery {
                    limit: 100,
                    ..LogQuery::default()
                }
            )
            .await
            .unwrap()
        );
        let reads = ReadQuery {
            limit: 100,
            ..ReadQuery::default()
        };
        assert_eq!(
            a.list_read_counts(t, &reads).await.unwrap(),
            b.list_read_counts(t, &reads).await.unwrap()
        );
        assert_eq!(
            a.count_dropped(t, None, None).await.unwrap(),
            b.count_dropped(t, None, None).await.unwrap()
        );
        assert_eq!(
            a.list_role_mappings(t).await.unwrap(),
            b.list_role_mappings(t).await.unwrap()
        );
    }
    for id in ["u0", "u3", "u5", "u6", "legacy1"] {
        let before = a.get_app_user("acme", id).await.unwrap();
        assert!(before.is_some(), "{id}");
        assert_eq!(before, b.get_app_user("acme", id).await.unwrap(), "{id}");
    }
    for g in ["g-eng", "g-empty", "g-all"] {
        assert_eq!(
            a.list_members("acme", g, None, 1000).await.unwrap(),
            b.list_members("acme", g, None, 1000).await.unwrap(),
            "{g}"
        );
        assert_eq!(
            a.get_app_group("acme", g).await.unwrap(),
            b.get_app_group("acme", g).await.unwrap(),
            "{g}"
        );
    }
    assert_eq!(
        a.groups_of_user("acme", "u0").await.unwrap(),
        b.groups_of_user("acme", "u0").await.unwrap()
    );
    assert_eq!(
        a.guard_status("acme", now).await.unwrap(),
        b.guard_status("acme", now).await.unwrap()
    );
    assert_eq!(
        a.list_webhooks().await.unwrap(),
        b.list_webhooks().await.unwrap()
    );
    assert_eq!(
        a.list_streams(None).await.unwrap(),
        b.list_streams(None).await.unwrap()
    );
    assert_eq!(
        a.list_audit(None, 100).await.unwrap(),
        b.list_audit(None, 100).await.unwrap()
    );
    assert_eq!(
        a.list_admin_keys().await.unwrap(),
        b.list_admin_keys().await.unwrap()
    );
    assert_eq!(
        a.list_operators().await.unwrap(),
        b.list_operators().await.unwrap()
    );
    assert_eq!(
        a.find_session("session-hash", now).await.unwrap(),
        b.find_session("session-hash", now).await.unwrap()
    );
    assert_eq!(
        a.meta(crate::meta::PUBLIC_URL).await.unwrap(),
        b.meta(crate::meta::PUBLIC_URL).await.unwrap()
    );
}

#[tokio::test]
async fn a_whole_installation_reads_back_the_same_from_postgres() {
    let file = SqliteFile::new();
    let source = SqliteStore::open(&file.url()).await.unwrap();
    fill(&source).await;
    let db = TestDb::new().await;

    let mut seen = Vec::new();
    let report = sqlite_to_postgres(&file.url(), &db.url, |t| seen.push(t.table.clone()))
        .await
        .unwrap();
    let pg = db.open().await;

    // Every table of the report agrees, and the derived ones are there.
    for t in &report.tables {
        assert_eq!(t.source, t.target, "{t:?}");
    }
    let count = |name: &str| {
        report
            .tables
            .iter()
            .find(|t| t.table == name)
            .unwrap_or_else(|| panic!("{name} is in the report"))
            .target
    };
    assert_eq!(count("tenants"), 3);
    // g-eng lost u6 to its deprovisioning (3), g-all has 7, the imported user's app group 1.
    assert_eq!(count("members"), 11);
    assert_eq!(count("member_counts"), 4);
    assert_eq!(count("tenant_writes"), 3);
    assert_eq!(count("console_setup_links"), 1);
    assert!(
        seen.iter().position(|t| t == "tenants") < seen.iter().position(|t| t == "resources"),
        "{seen:?}"
    );
    assert!(!seen
        .iter()
        .any(|t| t == "_sqlx_migrations" || t == "auth_epoch"));

    assert_same(&source, &*pg).await;
    // A token authenticates on the copy as on the original (the server looks it up by prefix
    // and compares the hash).
    let found = pg.find_token("rst_acme1").await.unwrap().unwrap();
    assert_eq!(
        Some(found.clone()),
        source.find_token("rst_acme1").await.unwrap()
    );
    assert!(found.revoked_at.is_none() && found.hash == "hash-of-rst_acme1");
    assert!(pg
        .find_token("rst_acme0")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    let link = pg.consume_setup_link("link-hash", at(40)).await.unwrap();
    assert_eq!(link.map(|l| l.tenant_id).as_deref(), Some("acme"));

    // The copy goes on where the original stopped: the next write of a tenant gets the next
    // seq, new rows get new keys, the streams' cursors are where deliveries left them.
    let last = source.last_seq("acme").await.unwrap();
    assert!(last > 20, "{last}");
    let created = pg
        .create_resource(
            "acme",
            ResourceKind::User,
            crate::conformance::support::new("u-new", user_doc("new@acme.example")),
            at(50),
        )
        .await
        .unwrap();
    assert!(matches!(created, crate::CreateOutcome::Created(_)));
    let next = pg.list_events("acme", last, &[], 10).await.unwrap();
    assert_eq!(next.first().map(|e| e.seq), Some(last + 1), "{next:?}");
    let beta_last = source.last_seq("beta").await.unwrap();
    let appended = pg
        .append_events(
            "beta",
            vec![NewEvent::new(EventType::UserUpdated, json!({}))],
            at(51),
        )
        .await
        .unwrap();
    assert_eq!(appended[0].seq, beta_last + 1);
    add_group(&*pg, "acme", "g-new", "New", &["u-new", "u1"]).await;
    assert_eq!(
        pg.list_members("acme", "g-new", None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    pg.append_provisioning(&[log_entry(52, 201)]).await.unwrap();
    let newest = pg
        .list_provisioning(
            "acme",
            &LogQuery {
                limit: 1,
                ..LogQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(newest[0].request_id, "req-52");
    pg.insert_admin_key(&AdminKeyRecord {
        prefix: "rak_2".into(),
        hash: "h".into(),
        name: None,
        created_at: at(53),
        last_used_at: None,
        revoked_at: None,
        expires_at: None,
        scopes: None,
    })
    .await
    .unwrap();
    assert_eq!(
        pg.list_admin_keys().await.unwrap()[0].prefix,
        "rak_2",
        "newest first"
    );
    let streams = pg.list_streams(Some("wh_1")).await.unwrap();
    let acme = streams.iter().find(|s| s.tenant_id == "acme").unwrap();
    assert_eq!(
        acme.cursor, last,
        "delivered up to the last event before the copy"
    );
    assert!(acme.last_success_at.is_some());
}

#[tokio::test]
async fn a_target_with_data_is_refused_and_left_alone() {
    let file = SqliteFile::new();
    let source = SqliteStore::open(&file.url()).await.unwrap();
    tenant_with(&source, "acme", TenantSettings::default()).await;
    add_user(&source, "acme", "u1", user_doc("a@acme.example")).await;
    let db = TestDb::new().await;
    let pg = db.open().await;
    tenant_with(&*pg, "other", TenantSettings::default()).await;
    add_user(&*pg, "other", "x1", user_doc("x@other.example")).await;
    let before = pg.list_events("other", 0, &[], 100).await.unwrap();

    let err = sqlite_to_postgres(&file.url(), &db.url, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(&err, CopyError::NotEmpty { .. }), "{err:?}");
    let says = err.to_string();
    assert!(
        says.contains("not empty") && says.contains("table "),
        "{says}"
    );

    assert_eq!(pg.list_tenants().await.unwrap().len(), 1);
    assert!(pg.get_tenant("acme").await.unwrap().is_none());
    assert_eq!(pg.list_events("other", 0, &[], 100).await.unwrap(), before);
    assert_eq!(
        pg.list_resources("other", ResourceKind::User, &all(None))
            .await
            .unwrap()
            .total,
        1
    );

    // A missing source file is an error, not an empty copy (the store would create it).
    let missing = SqliteFile::new();
    let err = sqlite_to_postgres(&missing.url(), &db.url, |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no database file"), "{err}");
    assert!(!missing.0.exists());
    let err = sqlite_to_postgres("sqlite::memory:", &db.url, |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("in-memory"), "{err}");
}
