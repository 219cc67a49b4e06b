//! Tests of the SQLite store.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use scim_proto::filter::{AttrPath, CompValue, CompareOp, Filter, ValidFilter};
use scim_proto::schema::{ResourceKind, USER_SCHEMA};
use serde_json::{json, Value};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::query::Translator;
use super::SqliteStore;
use crate::*;

const T0: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);

fn at(secs: i64) -> OffsetDateTime {
    T0 + Duration::seconds(secs)
}

async fn mem() -> SqliteStore {
    SqliteStore::open("sqlite::memory:").await.unwrap()
}

/// A fresh database file under the temp dir (removed at the end of the test when possible).
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "roster-store-test-{}-{}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        Self(p)
    }
    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

async fn tenant(s: &SqliteStore, id: &str) {
    s.create_tenant(&Tenant {
        id: id.into(),
        name: format!("Tenant {id}"),
        idp: "generic".into(),
        created_at: T0,
        settings: TenantSettings::default(),
    })
    .await
    .unwrap();
}

fn user_doc(user_name: &str) -> Value {
    json!({"schemas": [USER_SCHEMA], "userName": user_name, "active": true})
}

fn new(id: &str, doc: Value) -> NewResource {
    NewResource {
        id: id.into(),
        doc,
        password_hash: None,
        members: vec![],
        events: vec![],
    }
}

async fn add_user(s: &SqliteStore, t: &str, id: &str, doc: Value) -> StoredResource {
    match s
        .create_resource(t, ResourceKind::User, new(id, doc), at(0))
        .await
        .unwrap()
    {
        CreateOutcome::Created(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

async fn add_group(s: &SqliteStore, t: &str, id: &str, name: &str, members: &[&str]) {
    let mut n = new(id, json!({"displayName": name}));
    n.members = members.iter().map(|m| (*m).to_owned()).collect();
    s.create_resource(t, ResourceKind::Group, n, at(0))
        .await
        .unwrap();
}

fn p(attr: &str) -> AttrPath {
    let (attr, sub) = match attr.split_once('.') {
        Some((a, s)) => (a, Some(s.to_owned())),
        None => (attr, None),
    };
    AttrPath {
        urn: None,
        attr: attr.into(),
        sub_attr: sub,
    }
}

fn cmp(attr: &str, op: CompareOp, v: impl Into<Value>) -> Filter {
    let v = match v.into() {
        Value::String(s) => CompValue::Str(s),
        Value::Bool(b) => CompValue::Bool(b),
        Value::Number(n) => CompValue::Number(n),
        _ => CompValue::Null,
    };
    Filter::Compare(p(attr), op, v)
}

fn and(a: Filter, b: Filter) -> Filter {
    Filter::And(Box::new(a), Box::new(b))
}
fn or(a: Filter, b: Filter) -> Filter {
    Filter::Or(Box::new(a), Box::new(b))
}
fn not(a: Filter) -> Filter {
    Filter::Not(Box::new(a))
}
fn vp(attr: &str, inner: Filter) -> Filter {
    Filter::ValuePath(p(attr), Box::new(inner))
}

fn valid(f: Filter, kind: ResourceKind) -> ValidFilter {
    f.validate(kind).unwrap()
}

fn all(filter: Option<ValidFilter>) -> ListQuery {
    ListQuery {
        filter,
        sort: None,
        page: PageRequest::Index {
            start_index: 1,
            count: 100_000,
        },
    }
}

async fn ids(s: &SqliteStore, t: &str, kind: ResourceKind, q: &ListQuery) -> Vec<String> {
    s.list_resources(t, kind, q)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.id)
        .collect()
}

async fn filtered(s: &SqliteStore, t: &str, kind: ResourceKind, f: Filter) -> Vec<String> {
    ids(s, t, kind, &all(Some(valid(f, kind)))).await
}

#[tokio::test]
async fn tenants_and_tokens() {
    let s = mem().await;
    tenant(&s, "acme").await;
    tenant(&s, "beta").await;
    let dup = Tenant {
        id: "acme".into(),
        name: "x".into(),
        idp: "okta".into(),
        created_at: T0,
        settings: TenantSettings::default(),
    };
    assert!(matches!(
        s.create_tenant(&dup).await,
        Err(StoreError::Conflict("tenant"))
    ));
    assert_eq!(
        s.get_tenant("acme").await.unwrap().unwrap().name,
        "Tenant acme"
    );
    assert!(s.get_tenant("nope").await.unwrap().is_none());
    let all: Vec<_> = s
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(all, ["acme", "beta"]);

    let tok = |prefix: &str, tenant: &str, created: i64| TokenRecord {
        prefix: prefix.into(),
        tenant_id: tenant.into(),
        hash: format!("hash-{prefix}"),
        created_at: at(created),
        expires_at: at(created + 86_400),
        last_used_at: None,
        revoked_at: None,
    };
    s.insert_token(&tok("a1", "acme", 1)).await.unwrap();
    s.insert_token(&tok("a2", "acme", 2)).await.unwrap();
    s.insert_token(&tok("b1", "beta", 1)).await.unwrap();
    assert!(matches!(
        s.insert_token(&tok("a1", "acme", 3)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.insert_token(&tok("x1", "nope", 3)).await,
        Err(StoreError::NotFound)
    ));
    let listed: Vec<_> = s
        .list_tokens("acme")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.prefix)
        .collect();
    assert_eq!(listed, ["a2", "a1"], "newest first");
    assert_eq!(
        s.find_token("a1").await.unwrap().unwrap(),
        tok("a1", "acme", 1)
    );

    s.touch_token("a1", at(10)).await.unwrap();
    assert_eq!(
        s.find_token("a1").await.unwrap().unwrap().last_used_at,
        Some(at(10))
    );
    assert!(matches!(
        s.touch_token("zz", at(10)).await,
        Err(StoreError::NotFound)
    ));

    // Revoking is tenant-scoped and only hits live tokens.
    assert!(matches!(
        s.revoke_token("beta", "a1", at(11)).await,
        Err(StoreError::NotFound)
    ));
    s.revoke_token("acme", "a1", at(11)).await.unwrap();
    assert!(matches!(
        s.revoke_token("acme", "a1", at(12)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        s.find_token("a1").await.unwrap().unwrap().revoked_at,
        Some(at(11))
    );

    s.rotate_tokens(&tok("a3", "acme", 20), at(20))
        .await
        .unwrap();
    let toks = s.list_tokens("acme").await.unwrap();
    assert_eq!(toks.len(), 3);
    for t in &toks {
        match t.prefix.as_str() {
            "a3" => assert_eq!(t.revoked_at, None),
            "a2" => assert_eq!(t.revoked_at, Some(at(20))),
            _ => assert_eq!(
                t.revoked_at,
                Some(at(11)),
                "already revoked stays as it was"
            ),
        }
    }
    assert_eq!(s.find_token("b1").await.unwrap().unwrap().revoked_at, None);
}

#[tokio::test]
async fn crud_round_trip_on_a_file() {
    let db = TempDb::new();
    let s = SqliteStore::open(&db.url()).await.unwrap();
    tenant(&s, "t").await;
    let doc = json!({
        "schemas": [USER_SCHEMA],
        "userName": "Alice",
        "emails": [{"value": "Alice@Example.com", "type": "work", "primary": true}],
        // Never stored, whatever the caller passes.
        "id": "bogus",
        "meta": {"version": "x"},
        "password": "secret",
    });
    let mut n = new("u1", doc);
    n.password_hash = Some("argon".into());
    let created = match s
        .create_resource("t", ResourceKind::User, n, at(1))
        .await
        .unwrap()
    {
        CreateOutcome::Created(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(created.version, 1);
    assert!(created.doc.get("id").is_none() && created.doc.get("password").is_none());
    let got = s
        .get_resource("t", ResourceKind::User, "u1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, created);
    assert!(s
        .get_resource("t", ResourceKind::Group, "u1")
        .await
        .unwrap()
        .is_none());

    let upd = |doc: Value| ResourceUpdate {
        doc,
        password_hash: None,
        members: vec![],
        events: vec![],
    };
    let updated = s
        .update_resource(
            "t",
            ResourceKind::User,
            "u1",
            1,
            upd(user_doc("alice2")),
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.created, at(1));
    assert_eq!(updated.last_modified, at(2));
    assert_eq!(
        s.get_resource("t", ResourceKind::User, "u1")
            .await
            .unwrap()
            .unwrap(),
        updated
    );
    assert!(matches!(
        s.update_resource("t", ResourceKind::User, "u1", 1, upd(user_doc("x")), at(3))
            .await,
        Err(StoreError::Stale)
    ));
    assert!(matches!(
        s.update_resource(
            "t",
            ResourceKind::User,
            "nope",
            1,
            upd(user_doc("x")),
            at(3)
        )
        .await,
        Err(StoreError::NotFound)
    ));
    // The old email row is gone with the replaced document.
    let by_mail = filtered(
        &s,
        "t",
        ResourceKind::User,
        cmp("emails.value", CompareOp::Eq, "alice@example.com"),
    )
    .await;
    assert!(by_mail.is_empty());

    // Reopening the file sees the same data (migrations are idempotent).
    drop(s);
    let s = SqliteStore::open(&db.url()).await.unwrap();
    assert_eq!(
        s.get_resource("t", ResourceKind::User, "u1")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    s.delete_resource("t", ResourceKind::User, "u1", at(4))
        .await
        .unwrap();
    assert!(s
        .get_resource("t", ResourceKind::User, "u1")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        s.delete_resource("t", ResourceKind::User, "u1", at(5))
            .await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn user_name_is_unique_case_insensitively() {
    let s = mem().await;
    tenant(&s, "t").await;
    add_user(&s, "t", "u1", user_doc("Alice")).await;
    add_user(&s, "t", "u2", user_doc("bob")).await;
    assert!(matches!(
        s.create_resource("t", ResourceKind::User, new("u3", user_doc("ALICE")), at(1))
            .await,
        Err(StoreError::Conflict("userName"))
    ));
    assert!(matches!(
        s.create_resource("t", ResourceKind::User, new("u1", user_doc("carol")), at(1))
            .await,
        Err(StoreError::Conflict("id"))
    ));
    let rename = ResourceUpdate {
        doc: user_doc("aLiCe"),
        password_hash: None,
        members: vec![],
        events: vec![],
    };
    assert!(matches!(
        s.update_resource("t", ResourceKind::User, "u2", 1, rename, at(1))
            .await,
        Err(StoreError::Conflict("userName"))
    ));
    // Changing one's own userName's case is fine.
    let recase = ResourceUpdate {
        doc: user_doc("ALICE"),
        password_hash: None,
        members: vec![],
        events: vec![],
    };
    s.update_resource("t", ResourceKind::User, "u1", 1, recase, at(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn deprovision_then_restore() {
    let s = mem().await;
    tenant(&s, "t").await;
    add_user(&s, "t", "u1", user_doc("Alice")).await;
    add_user(&s, "t", "u2", user_doc("bob")).await;
    add_group(&s, "t", "g1", "Admins", &["u1", "u2"]).await;

    s.delete_resource("t", ResourceKind::User, "u1", at(5))
        .await
        .unwrap();
    assert!(s
        .get_resource("t", ResourceKind::User, "u1")
        .await
        .unwrap()
        .is_none());
    assert_eq!(ids(&s, "t", ResourceKind::User, &all(None)).await, ["u2"]);
    let g = s
        .get_resource("t", ResourceKind::Group, "g1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.version, 2, "the group lost a member");
    assert_eq!(g.last_modified, at(5));
    let members: Vec<_> = s
        .list_members("t", "g1", None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(members, ["u2"]);
    // Deprovisioned users cannot be added as members.
    let add = ResourceUpdate {
        doc: json!({"displayName": "Admins"}),
        password_hash: None,
        members: vec![MemberOp::Add(vec!["u1".into()])],
        events: vec![],
    };
    assert!(matches!(
        s.update_resource("t", ResourceKind::Group, "g1", 2, add, at(6))
            .await,
        Err(StoreError::Invalid(_))
    ));
    // Filters never see it.
    assert!(filtered(
        &s,
        "t",
        ResourceKind::User,
        cmp("userName", CompareOp::Eq, "alice")
    )
    .await
    .is_empty());

    let mut again = new("u-new", json!({"userName": "ALICE", "displayName": "Back"}));
    again.password_hash = Some("h2".into());
    let restored = match s
        .create_resource("t", ResourceKind::User, again, at(9))
        .await
        .unwrap()
    {
        CreateOutcome::Restored(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(restored.id, "u1");
    assert_eq!(
        restored.version, 3,
        "created 1, deprovisioned 2, restored 3"
    );
    assert_eq!(restored.created, at(0));
    assert_eq!(restored.last_modified, at(9));
    assert_eq!(
        restored.doc,
        json!({"userName": "ALICE", "displayName": "Back"})
    );
    assert_eq!(
        s.get_resource("t", ResourceKind::User, "u1")
            .await
            .unwrap()
            .unwrap(),
        restored
    );
    assert!(s
        .get_resource("t", ResourceKind::User, "u-new")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        s.create_resource(
            "t",
            ResourceKind::User,
            new("u9", user_doc("alice")),
            at(10)
        )
        .await,
        Err(StoreError::Conflict("userName"))
    ));
}

#[tokio::test]
async fn deprovisioned_doc_is_inactive() {
    let s = mem().await;
    tenant(&s, "t").await;
    add_user(&s, "t", "u1", user_doc("a")).await;
    s.delete_resource("t", ResourceKind::User, "u1", at(1))
        .await
        .unwrap();
    let (doc, active, deleted): (String, i64, i64) =
        sqlx::query_as("SELECT doc, active, deleted FROM resources WHERE id = 'u1'")
            .fetch_one(&s.reader)
            .await
            .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&doc).unwrap()["active"],
        false
    );
    assert_eq!((active, deleted), (0, 1));
}

#[tokio::test]
async fn membership_operations() {
    let s = mem().await;
    tenant(&s, "t").await;
    tenant(&s, "other").await;
    for i in 0..5 {
        add_user(&s, "t", &format!("u{i}"), user_doc(&format!("user{i}"))).await;
    }
    add_user(&s, "other", "x1", user_doc("x")).await;
    add_group(&s, "other", "gx", "Other", &[]).await;
    // Unknown, other-tenant and Group ids are not members.
    for bad in ["nope", "x1", "gx"] {
        let mut n = new("g1", json!({"displayName": "G"}));
        n.members = vec!["u0".into(), bad.into()];
        match s.create_resource("t", ResourceKind::Group, n, at(0)).await {
            Err(StoreError::Invalid(msg)) => assert_eq!(
                msg,
                format!("member \"{bad}\" is not a User of this tenant")
            ),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        s.get_resource("t", ResourceKind::Group, "g1")
            .await
            .unwrap()
            .is_none(),
        "nothing written"
    );
    add_group(&s, "t", "g1", "G", &["u0", "u1", "u1"]).await;
    add_group(&s, "t", "g2", "H", &["u1"]).await;

    let members = |s: SqliteStore| async move {
        s.list_members("t", "g1", None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(members(s.clone()).await, ["u0", "u1"]);
    let upd = |ops: Vec<MemberOp>| ResourceUpdate {
        doc: json!({"displayName": "G"}),
        password_hash: None,
        members: ops,
        events: vec![],
    };
    let g = s
        .update_resource(
            "t",
            ResourceKind::Group,
            "g1",
            1,
            upd(vec![
                MemberOp::Add(vec!["u2".into(), "u3".into(), "u0".into()]),
                MemberOp::Remove(vec!["u1".into(), "absent".into()]),
            ]),
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(g.version, 2);
    assert_eq!(members(s.clone()).await, ["u0", "u2", "u3"]);
    // A bad id fails the whole update: no doc change, no member change.
    assert!(matches!(
        s.update_resource(
            "t",
            ResourceKind::Group,
            "g1",
            2,
            upd(vec![MemberOp::RemoveAll, MemberOp::Add(vec!["x1".into()])]),
            at(2)
        )
        .await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(members(s.clone()).await, ["u0", "u2", "u3"]);
    assert_eq!(
        s.get_resource("t", ResourceKind::Group, "g1")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    // Keyset listing.
    let page: Vec<_> = s
        .list_members("t", "g1", Some("u0"), 1)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(page, ["u2"]);
    assert!(matches!(
        s.list_members("t", "nope", None, 1).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.list_members("other", "g1", None, 1).await,
        Err(StoreError::NotFound)
    ));

    let groups: Vec<_> = s.groups_of_user("t", "u0").await.unwrap();
    assert_eq!(
        groups,
        [GroupRef {
            id: "g1".into(),
            display_name: "G".into()
        }]
    );
    let groups = s.groups_of_user("t", "u1").await.unwrap();
    assert_eq!(
        groups,
        [GroupRef {
            id: "g2".into(),
            display_name: "H".into()
        }]
    );

    s.update_resource(
        "t",
        ResourceKind::Group,
        "g1",
        2,
        upd(vec![MemberOp::RemoveAll]),
        at(3),
    )
    .await
    .unwrap();
    assert!(members(s.clone()).await.is_empty());

    // Deleting a group removes its membership rows.
    s.delete_resource("t", ResourceKind::Group, "g2", at(4))
        .await
        .unwrap();
    assert!(s.groups_of_user("t", "u1").await.unwrap().is_empty());
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members")
        .fetch_one(&s.reader)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    // Users have no members.
    let mut n = new("u9", user_doc("nine"));
    n.members = vec!["u0".into()];
    assert!(matches!(
        s.create_resource("t", ResourceKind::User, n, at(0)).await,
        Err(StoreError::Invalid(_))
    ));
}

#[tokio::test]
async fn large_group_gains_one_member() {
    let s = mem().await;
    tenant(&s, "t").await;
    let n = 20_000;
    {
        // Bulk-load the users in one transaction; going through create_resource 20,000 times
        // only measures the test machine.
        let mut tx = s.write().await.unwrap();
        for i in 0..=n {
            sqlx::query(
                "INSERT INTO resources (tenant_id, kind, id, version, doc, user_name_lc, created, last_modified) \
                 VALUES ('t', 'User', ?, 1, '{}', ?, 0, 0)",
            )
            .bind(format!("u{i:05}"))
            .bind(format!("user{i}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let members: Vec<String> = (0..n).map(|i| format!("u{i:05}")).collect();
    let mut g = new("g", json!({"displayName": "All"}));
    g.members = members;
    s.create_resource("t", ResourceKind::Group, g, at(0))
        .await
        .unwrap();
    let upd = ResourceUpdate {
        doc: json!({"displayName": "All"}),
        password_hash: None,
        members: vec![MemberOp::Add(vec![format!("u{n:05}")])],
        events: vec![],
    };
    s.update_resource("t", ResourceKind::Group, "g", 1, upd, at(1))
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members")
        .fetch_one(&s.reader)
        .await
        .unwrap();
    assert_eq!(count, i64::from(n) + 1);
    let last = s.list_members("t", "g", Some("u19999"), 10).await.unwrap();
    assert_eq!(
        last,
        [Member {
            id: format!("u{n:05}")
        }]
    );
    let hit = filtered(
        &s,
        "t",
        ResourceKind::Group,
        cmp("members.value", CompareOp::Eq, "u20000"),
    )
    .await;
    assert_eq!(hit, ["g"]);
}

#[tokio::test]
async fn tenants_are_isolated() {
    let s = mem().await;
    tenant(&s, "a").await;
    tenant(&s, "b").await;
    add_user(
        &s,
        "a",
        "u1",
        json!({"userName": "same", "emails": [{"value": "x@y"}]}),
    )
    .await;
    add_user(&s, "b", "u1", json!({"userName": "same"})).await;
    add_group(&s, "a", "g", "G", &["u1"]).await;
    add_user(&s, "a", "only-a", user_doc("only")).await;

    assert!(s
        .get_resource("b", ResourceKind::User, "only-a")
        .await
        .unwrap()
        .is_none());
    assert_eq!(ids(&s, "b", ResourceKind::User, &all(None)).await, ["u1"]);
    assert!(ids(&s, "b", ResourceKind::Group, &all(None))
        .await
        .is_empty());
    assert!(filtered(
        &s,
        "b",
        ResourceKind::User,
        cmp("emails.value", CompareOp::Eq, "x@y")
    )
    .await
    .is_empty());
    assert!(filtered(
        &s,
        "b",
        ResourceKind::User,
        cmp("groups.value", CompareOp::Eq, "g")
    )
    .await
    .is_empty());
    assert!(filtered(
        &s,
        "b",
        ResourceKind::User,
        cmp("userName", CompareOp::Eq, "only")
    )
    .await
    .is_empty());
    assert!(s.groups_of_user("b", "u1").await.unwrap().is_empty());
    assert!(matches!(
        s.list_members("b", "g", None, 10).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete_resource("b", ResourceKind::User, "only-a", at(1))
            .await,
        Err(StoreError::NotFound)
    ));
    let mut g = new("gb", json!({"displayName": "B"}));
    g.members = vec!["only-a".into()];
    assert!(matches!(
        s.create_resource("b", ResourceKind::Group, g, at(1)).await,
        Err(StoreError::Invalid(_))
    ));
    s.delete_resource("b", ResourceKind::User, "u1", at(1))
        .await
        .unwrap();
    assert!(s
        .get_resource("a", ResourceKind::User, "u1")
        .await
        .unwrap()
        .is_some());
}

/// Users and groups with varied attributes, for the filter tests.
async fn fixture(s: &SqliteStore) {
    tenant(s, "t").await;
    tenant(s, "noise").await;
    let types = ["work", "home", "WORK", "other"];
    for i in 0..160_i64 {
        let mut doc = json!({
            "schemas": [USER_SCHEMA],
            "userName": format!("{}User{i:03}", if i % 3 == 0 { "A" } else { "b" }),
        });
        let m = doc.as_object_mut().unwrap();
        if i % 2 == 0 {
            m.insert("displayName".into(), json!(format!("Name {} {i}", i % 7)));
        } else if i % 5 == 0 {
            m.insert("displayName".into(), json!(""));
        }
        if i % 4 != 1 {
            m.insert("active".into(), json!(i % 5 != 0));
        }
        if i % 3 != 2 {
            m.insert("externalId".into(), json!(format!("Ext-{i}")));
        }
        if i % 6 == 0 {
            m.insert(
                "title".into(),
                json!(if i % 12 == 0 { "Boss" } else { "staff" }),
            );
        }
        let emails: Vec<Value> = (0..(i % 4))
            .map(|k| {
                let mut e = json!({"value": format!("U{i}.{k}@Example.COM"), "type": types[usize::try_from((i + k) % 4).unwrap()]});
                if k == 1 {
                    e["primary"] = json!(i % 2 == 0);
                }
                e
            })
            .collect();
        if !emails.is_empty() {
            m.insert("emails".into(), Value::Array(emails));
        }
        s.create_resource(
            "t",
            ResourceKind::User,
            new(&format!("u{i:03}"), doc.clone()),
            at(i),
        )
        .await
        .unwrap();
        if i % 10 == 0 {
            s.create_resource(
                "noise",
                ResourceKind::User,
                new(&format!("u{i:03}"), doc),
                at(i),
            )
            .await
            .unwrap();
        }
    }
    for g in 0..40_i64 {
        let members: Vec<String> = (0..160)
            .filter(|i| i % 40 == g || i % 13 == g)
            .map(|i| format!("u{i:03}"))
            .collect();
        let mut n = new(
            &format!("g{g:02}"),
            json!({"displayName": format!("Group {}", g % 9)}),
        );
        n.members = members;
        s.create_resource("t", ResourceKind::Group, n, at(1000 + g))
            .await
            .unwrap();
    }
    // A deprovisioned user whose email and group rows must never surface.
    let ghost = json!({"userName": "AUser003x", "emails": [{"value": "u6.1@example.com"}]});
    add_user(s, "t", "u900", ghost).await;
    let g3 = s
        .get_resource("t", ResourceKind::Group, "g03")
        .await
        .unwrap()
        .unwrap();
    let add = ResourceUpdate {
        doc: g3.doc,
        password_hash: None,
        members: vec![MemberOp::Add(vec!["u900".into()])],
        events: vec![],
    };
    s.update_resource("t", ResourceKind::Group, "g03", g3.version, add, at(2000))
        .await
        .unwrap();
    s.delete_resource("t", ResourceKind::User, "u900", at(2001))
        .await
        .unwrap();
}

fn user_filters() -> Vec<Filter> {
    use CompareOp::*;
    vec![
        cmp("userName", Eq, "auser003"),
        cmp("userName", Ne, "AUSER003"),
        cmp("userName", Sw, "a"),
        cmp("userName", Ew, "9"),
        cmp("userName", Co, "USER01"),
        cmp("userName", Co, ""),
        cmp("userName", Gt, "buser100"),
        cmp("userName", Le, "auser050"),
        cmp("id", Eq, "u007"),
        cmp("externalId", Eq, "Ext-4"),
        cmp("externalId", Eq, "ext-4"),
        cmp("externalId", Ne, "Ext-4"),
        Filter::Present(p("externalId")),
        Filter::Present(p("displayName")),
        cmp("displayName", Sw, "name 3"),
        cmp("active", Eq, true),
        cmp("active", Ne, true),
        not(cmp("active", Eq, false)),
        cmp("meta.created", Gt, "2026-01-01T00:01:00Z"),
        cmp("meta.lastModified", Le, "2026-01-01T00:00:30.000Z"),
        cmp("meta.resourceType", Eq, "User"),
        cmp("emails.value", Eq, "u5.1@example.com"),
        cmp("emails.value", Ne, "u5.1@example.com"),
        cmp("emails.value", Co, "u1"),
        cmp("emails.type", Eq, "work"),
        Filter::Present(p("emails.value")),
        vp(
            "emails",
            and(cmp("type", Eq, "work"), cmp("value", Sw, "u1")),
        ),
        vp(
            "emails",
            or(cmp("primary", Eq, true), not(cmp("type", Eq, "home"))),
        ),
        cmp("groups.value", Eq, "g03"),
        cmp("groups.display", Eq, "group 4"),
        or(cmp("userName", Sw, "a"), cmp("displayName", Co, "5")),
        and(cmp("active", Eq, true), not(cmp("emails.type", Eq, "home"))),
        // Untranslatable parts: `title` is not indexed.
        cmp("title", Eq, "boss"),
        and(Filter::Present(p("title")), cmp("userName", Sw, "a")),
        or(cmp("title", Eq, "staff"), cmp("id", Eq, "u001")),
        not(and(cmp("title", Eq, "boss"), cmp("active", Eq, true))),
        cmp("displayName", Eq, Value::Null),
        cmp("displayName", Ne, Value::Null),
        cmp("externalId", Eq, Value::Null),
        cmp("active", Eq, Value::Null),
        Filter::Present(p("emails")),
        Filter::Present(p("groups")),
        cmp("emails", Co, "U1"),
        cmp("emails.primary", Eq, true),
        cmp("emails.primary", Ne, true),
        vp("emails", not(Filter::Present(p("primary")))),
        vp("emails", cmp("value", Ne, "u2.0@example.com")),
        cmp("meta.created", Ge, "2026-01-01T00:00:10.0005Z"),
        cmp("meta.created", Lt, "2026-01-01T00:00:10.0005Z"),
        cmp("meta.created", Eq, "2026-01-01T00:00:10Z"),
        cmp("meta.lastModified", Ne, "2026-01-01T00:00:10.000Z"),
        cmp("meta.resourceType", Co, "se"),
        cmp("id", Gt, "u150"),
        cmp("displayName", Ew, ""),
        cmp("schemas", Eq, USER_SCHEMA),
        not(or(
            cmp("userName", Sw, "b"),
            Filter::Present(p("emails.type")),
        )),
    ]
}

fn group_filters() -> Vec<Filter> {
    use CompareOp::*;
    vec![
        cmp("displayName", Eq, "GROUP 3"),
        cmp("members.value", Eq, "u013"),
        cmp("members.value", Ne, "u013"),
        vp("members", cmp("value", Sw, "u15")),
        Filter::Present(p("members")),
        and(
            cmp("displayName", Ew, "1"),
            cmp("members.value", Eq, "u001"),
        ),
        cmp("members.type", Eq, "User"),
        Filter::Present(p("members")),
        not(Filter::Present(p("members.value"))),
        cmp("members", Eq, "u026"),
        cmp("meta.lastModified", Gt, "2026-01-01T00:30:00Z"),
    ]
}

#[tokio::test]
async fn sql_and_in_memory_filters_agree() {
    let s = mem().await;
    fixture(&s).await;
    let cases = user_filters()
        .into_iter()
        .map(|f| (ResourceKind::User, f))
        .chain(
            group_filters()
                .into_iter()
                .map(|f| (ResourceKind::Group, f)),
        );
    let (mut exact, mut nonempty, mut n) = (0, 0, 0);
    for (kind, f) in cases {
        let vf = valid(f.clone(), kind);
        let mut q = all(Some(vf.clone()));
        let sql = s.list_impl("t", kind, &q, false).await.unwrap();
        let memory = s.list_impl("t", kind, &q, true).await.unwrap();
        let a: Vec<_> = sql.items.iter().map(|r| &r.id).collect();
        let b: Vec<_> = memory.items.iter().map(|r| &r.id).collect();
        assert_eq!(a, b, "filter {f:?}");
        assert_eq!(sql.total, memory.total, "filter {f:?}");
        // Sorted and paged the same way too.
        q.sort = sorted("displayName", true);
        q.page = PageRequest::Index {
            start_index: 3,
            count: 7,
        };
        let sql = s.list_impl("t", kind, &q, false).await.unwrap();
        let memory = s.list_impl("t", kind, &q, true).await.unwrap();
        assert_eq!(sql, memory, "sorted {f:?}");
        exact += usize::from(
            Translator { tenant: "t", kind }
                .translate(vf.filter())
                .exact,
        );
        nonempty += usize::from(!a.is_empty() && a.len() < 160);
        n += 1;
    }
    assert!(exact >= 40, "{exact} of {n} filters ran as exact SQL");
    assert!(
        nonempty >= 40,
        "only {nonempty} of {n} filters were selective"
    );
}

#[tokio::test]
async fn sql_filters_select_the_expected_rows() {
    use CompareOp::*;
    let s = mem().await;
    fixture(&s).await;
    let u = |f| filtered(&s, "t", ResourceKind::User, f);
    assert_eq!(u(cmp("userName", Eq, "AUSER003")).await, ["u003"]);
    assert_eq!(
        u(cmp("externalId", Eq, "ext-4")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        u(cmp("emails.value", Eq, "U6.1@example.com")).await,
        ["u006"]
    );
    assert_eq!(u(cmp("userName", Ne, "auser000")).await.len(), 159);
    assert_eq!(u(cmp("userName", Co, "")).await.len(), 160);
    // `ne` on a multi-valued attribute: no email equals it (users without emails match).
    assert_eq!(
        u(cmp("emails.value", Ne, "u6.1@example.com")).await.len(),
        159
    );
    // Absent `active` matches `ne true` and `not (eq false)`.
    let ne_true = u(cmp("active", Ne, true)).await;
    assert!(ne_true.contains(&"u001".to_owned()) && ne_true.contains(&"u000".to_owned()));
    assert!(!ne_true.contains(&"u002".to_owned()));
    assert_eq!(
        u(cmp("meta.created", Gt, "2026-01-01T00:02:38Z")).await,
        ["u159"]
    );
    // Sub-millisecond operands compare as instants, like the evaluator.
    assert_eq!(
        u(cmp("meta.created", Ge, "2026-01-01T00:02:38.000999Z")).await,
        ["u159"]
    );
    assert_eq!(
        u(cmp("meta.created", Le, "2026-01-01T00:00:01.000999Z")).await,
        ["u000", "u001"]
    );
    assert!(u(cmp("meta.created", Eq, "2026-01-01T00:00:01.5Z"))
        .await
        .is_empty());
    assert_eq!(
        u(cmp("meta.created", Eq, "2026-01-01T01:00:01+01:00")).await,
        ["u001"]
    );
    assert_eq!(u(cmp("meta.resourceType", Eq, "Group")).await.len(), 0);
    let g3: Vec<String> = (0..160)
        .filter(|i| i % 40 == 3 || i % 13 == 3)
        .map(|i| format!("u{i:03}"))
        .collect();
    assert_eq!(u(cmp("groups.value", Eq, "g03")).await, g3);
    assert_eq!(
        u(vp(
            "emails",
            and(cmp("type", Eq, "WORK"), cmp("value", Sw, "u3."))
        ))
        .await,
        ["u003"]
    );
    let g = |f| filtered(&s, "t", ResourceKind::Group, f);
    assert_eq!(g(cmp("members.value", Eq, "u013")).await, ["g00", "g13"]);
    assert_eq!(
        g(vp("members", cmp("value", Eq, "u013"))).await,
        ["g00", "g13"]
    );
    assert_eq!(
        g(cmp("displayName", Eq, "group 8")).await,
        ["g08", "g17", "g26", "g35"]
    );

    // Exactness of the translation.
    let tr = |f: Filter| {
        Translator {
            tenant: "t",
            kind: ResourceKind::User,
        }
        .translate(&f)
    };
    assert!(tr(cmp("userName", Eq, "x")).exact);
    assert!(!tr(cmp("title", Eq, "x")).exact);
    let partial = tr(and(cmp("title", Eq, "x"), cmp("userName", Eq, "y")));
    assert!(
        !partial.exact && partial.sql.contains("user_name_lc"),
        "the translatable conjunct stays"
    );
    assert_eq!(tr(not(cmp("title", Eq, "x"))).sql, "1");
}

#[tokio::test]
async fn indexed_filters_use_indexes() {
    let s = mem().await;
    fixture(&s).await;
    sqlx::query("ANALYZE").execute(&s.writer).await.unwrap();
    let cases = [
        (
            ResourceKind::User,
            cmp("userName", CompareOp::Eq, "auser003"),
        ),
        (
            ResourceKind::User,
            cmp("externalId", CompareOp::Eq, "Ext-4"),
        ),
        (
            ResourceKind::User,
            cmp("emails.value", CompareOp::Eq, "u5.1@example.com"),
        ),
        (ResourceKind::User, cmp("id", CompareOp::Eq, "u007")),
        (
            ResourceKind::User,
            cmp("groups.value", CompareOp::Eq, "g03"),
        ),
        (
            ResourceKind::Group,
            cmp("members.value", CompareOp::Eq, "u013"),
        ),
        (
            ResourceKind::Group,
            cmp("displayName", CompareOp::Eq, "group 3"),
        ),
    ];
    for (kind, f) in cases {
        let frag = Translator { tenant: "t", kind }.translate(&f);
        assert!(frag.exact);
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT r.pk FROM resources r WHERE r.tenant_id = ? AND r.kind = '{}' \
             AND r.deleted = 0 AND {} ORDER BY r.pk LIMIT 100",
            kind.as_str(),
            frag.sql
        );
        let mut args = vec![super::query::Arg::Text("t".into())];
        args.extend(frag.args);
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as_with(&sql, super::args_of(&args).unwrap())
                .fetch_all(&s.reader)
                .await
                .unwrap();
        let plan: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
        assert!(
            !plan.iter().any(|d| d.starts_with("SCAN")),
            "{f:?} scans: {plan:?}"
        );
    }
}

fn sorted(attr: &str, descending: bool) -> Option<SortSpec> {
    let (attr, sub) = match attr.split_once('.') {
        Some((a, s)) => (a.to_owned(), Some(s.to_owned())),
        None => (attr.to_owned(), None),
    };
    Some(SortSpec {
        urn: None,
        attr,
        sub_attr: sub,
        descending,
    })
}

#[tokio::test]
async fn index_pagination() {
    let s = mem().await;
    tenant(&s, "t").await;
    for i in 0..25 {
        add_user(&s, "t", &format!("u{i:02}"), user_doc(&format!("n{i:02}"))).await;
    }
    let page = |start_index, count| ListQuery {
        filter: None,
        sort: None,
        page: PageRequest::Index { start_index, count },
    };
    let p = s
        .list_resources("t", ResourceKind::User, &page(1, 10))
        .await
        .unwrap();
    assert_eq!((p.total, p.items.len()), (25, 10));
    assert_eq!(p.items[0].id, "u00");
    let p = s
        .list_resources("t", ResourceKind::User, &page(21, 10))
        .await
        .unwrap();
    assert_eq!(
        p.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["u20", "u21", "u22", "u23", "u24"]
    );
    let p = s
        .list_resources("t", ResourceKind::User, &page(0, 1))
        .await
        .unwrap();
    assert_eq!(p.items[0].id, "u00", "startIndex < 1 is 1");
    let p = s
        .list_resources("t", ResourceKind::User, &page(5, 0))
        .await
        .unwrap();
    assert_eq!((p.total, p.items.len()), (25, 0));
    let p = s
        .list_resources("t", ResourceKind::User, &page(100, 10))
        .await
        .unwrap();
    assert_eq!((p.total, p.items.len()), (25, 0));
    let p = s
        .list_resources("t", ResourceKind::User, &page(u64::MAX, u64::MAX))
        .await
        .unwrap();
    assert_eq!((p.total, p.items.len()), (25, 0));
    // Same in the in-memory path (inexact filter).
    let mut q = page(21, 10);
    q.filter = Some(valid(
        cmp("nickName", CompareOp::Eq, "x"),
        ResourceKind::User,
    ));
    let _ = s.list_resources("t", ResourceKind::User, &q).await.unwrap();
}

#[tokio::test]
async fn sort_puts_missing_values_last_ascending_first_descending() {
    let s = mem().await;
    tenant(&s, "t").await;
    add_user(
        &s,
        "t",
        "u1",
        json!({"userName": "a", "displayName": "Zed", "title": "b"}),
    )
    .await;
    add_user(&s, "t", "u2", json!({"userName": "b"})).await;
    add_user(
        &s,
        "t",
        "u3",
        json!({"userName": "c", "displayName": "adam", "title": "A"}),
    )
    .await;
    add_user(&s, "t", "u4", json!({"userName": "d", "displayName": "Bob", "emails": [{"value": "z@x"}, {"value": "a@x", "primary": true}]})).await;
    add_user(
        &s,
        "t",
        "u5",
        json!({"userName": "e", "emails": [{"value": "m@x"}]}),
    )
    .await;
    let q = |sort| ListQuery {
        filter: None,
        sort,
        page: PageRequest::Index {
            start_index: 1,
            count: 100,
        },
    };
    assert_eq!(
        ids(
            &s,
            "t",
            ResourceKind::User,
            &q(sorted("displayName", false))
        )
        .await,
        ["u3", "u4", "u1", "u2", "u5"]
    );
    assert_eq!(
        ids(&s, "t", ResourceKind::User, &q(sorted("displayName", true))).await,
        ["u5", "u2", "u1", "u4", "u3"]
    );
    // In memory: `title` is not indexed; caseExact=false sorts folded.
    assert_eq!(
        ids(&s, "t", ResourceKind::User, &q(sorted("title", false))).await,
        ["u3", "u1", "u2", "u4", "u5"]
    );
    assert_eq!(
        ids(&s, "t", ResourceKind::User, &q(sorted("title", true))).await,
        ["u5", "u4", "u2", "u1", "u3"]
    );
    // Multi-valued: the primary value, else the first.
    assert_eq!(
        ids(&s, "t", ResourceKind::User, &q(sorted("emails", false))).await,
        ["u4", "u5", "u1", "u2", "u3"]
    );
    assert_eq!(
        ids(
            &s,
            "t",
            ResourceKind::User,
            &q(sorted("emails.value", false))
        )
        .await,
        ["u4", "u5", "u1", "u2", "u3"]
    );
    assert_eq!(
        ids(&s, "t", ResourceKind::User, &q(sorted("userName", true))).await,
        ["u5", "u4", "u3", "u2", "u1"]
    );
    assert_eq!(
        ids(&s, "t", ResourceKind::User, &q(None)).await,
        ["u1", "u2", "u3", "u4", "u5"]
    );
}

/// Walks every cursor page, applying `between` after each page.
async fn walk(
    s: &SqliteStore,
    q: ListQuery,
    mut between: impl FnMut(usize) -> Option<(bool, String)>,
) -> Vec<String> {
    let mut q = q;
    let mut seen = Vec::new();
    for round in 0.. {
        let page = s.list_resources("t", ResourceKind::User, &q).await.unwrap();
        seen.extend(page.items.iter().map(|r| r.id.clone()));
        let Some(next) = page.next_cursor else { break };
        assert!(next
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        if let Some((insert, id)) = between(round) {
            if insert {
                add_user(s, "t", &id, user_doc(&id)).await;
            } else {
                s.delete_resource("t", ResourceKind::User, &id, at(1))
                    .await
                    .unwrap();
            }
        }
        if let PageRequest::Cursor { cursor, .. } = &mut q.page {
            *cursor = Some(next);
        }
    }
    seen
}

#[tokio::test]
async fn cursor_pagination_is_stable_under_writes() {
    for (sort, filter) in [
        (None, None),
        (sorted("userName", false), None),
        (sorted("userName", true), None),
        (sorted("displayName", false), None),
        (sorted("title", true), None),
        (None, Some(cmp("nickName", CompareOp::Ne, "zzz"))),
        (
            sorted("userName", false),
            Some(cmp("title", CompareOp::Ne, "t1")),
        ),
    ] {
        let s = mem().await;
        tenant(&s, "t").await;
        for i in 0..40 {
            let mut doc = user_doc(&format!("m{:02}", (i * 7) % 40));
            if i % 3 == 0 {
                doc["displayName"] = json!(format!("d{}", i % 5));
                doc["title"] = json!(format!("t{}", i % 4));
            }
            add_user(&s, "t", &format!("u{i:02}"), doc).await;
        }
        let q = ListQuery {
            filter: filter.clone().map(|f| valid(f, ResourceKind::User)),
            sort: sort.clone(),
            page: PageRequest::Cursor {
                cursor: None,
                count: 6,
            },
        };
        let first = s.list_resources("t", ResourceKind::User, &q).await.unwrap();
        let mut everything = q.clone();
        everything.page = PageRequest::Index {
            start_index: 1,
            count: 1000,
        };
        let before = ids(&s, "t", ResourceKind::User, &everything).await;
        assert_eq!(before.len() as u64, first.total);
        if filter.is_none() {
            assert_eq!(first.total, 40);
        }
        // Between pages: insert new users (some sort before the cursor, some after) and delete
        // users that were not yet seen or already seen.
        let deleted: Vec<String> = ["u05", "u33", "u17", "u38"].map(String::from).to_vec();
        let mut ops = vec![
            (true, "a-new".to_owned()),
            (false, deleted[0].clone()),
            (true, "zz-new".to_owned()),
            (false, deleted[1].clone()),
            (false, deleted[2].clone()),
            (true, "m-new".to_owned()),
            (false, deleted[3].clone()),
        ]
        .into_iter();
        let seen = walk(&s, q, |_| ops.next()).await;
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "no row twice ({sort:?}): {seen:?}"
        );
        for id in &before {
            if !deleted.contains(id) {
                assert!(unique.contains(id), "{id} skipped ({sort:?} {filter:?})");
            }
        }
    }
}

#[tokio::test]
async fn cursor_belongs_to_its_query() {
    let s = mem().await;
    tenant(&s, "t").await;
    for i in 0..5 {
        add_user(&s, "t", &format!("u{i}"), user_doc(&format!("n{i}"))).await;
    }
    let q = |sort, cursor| ListQuery {
        filter: None,
        sort,
        page: PageRequest::Cursor { cursor, count: 2 },
    };
    let p = s
        .list_resources("t", ResourceKind::User, &q(None, None))
        .await
        .unwrap();
    let c = p.next_cursor.unwrap();
    assert!(matches!(
        s.list_resources(
            "t",
            ResourceKind::User,
            &q(sorted("userName", false), Some(c.clone()))
        )
        .await,
        Err(StoreError::Invalid(_))
    ));
    for junk in ["", "zz", "7b7d", &c[..c.len() - 2]] {
        assert!(matches!(
            s.list_resources("t", ResourceKind::User, &q(None, Some(junk.to_owned())))
                .await,
            Err(StoreError::Invalid(_))
        ));
    }
    let p = s
        .list_resources("t", ResourceKind::User, &q(None, Some(c)))
        .await
        .unwrap();
    assert_eq!(
        p.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["u2", "u3"]
    );
    let last = s
        .list_resources("t", ResourceKind::User, &q(None, p.next_cursor))
        .await
        .unwrap();
    assert_eq!(last.items.len(), 1);
    assert_eq!(last.next_cursor, None, "no cursor when nothing follows");
}

#[tokio::test]
async fn writer_and_readers_share_a_file() {
    let db = TempDb::new();
    let s = SqliteStore::open(&db.url()).await.unwrap();
    tenant(&s, "t").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.create_resource(
                "t",
                ResourceKind::User,
                new(&format!("u{i}"), user_doc(&format!("n{i}"))),
                at(i),
            )
            .await
            .unwrap();
            s.list_resources("t", ResourceKind::User, &all(None))
                .await
                .unwrap()
                .total
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap() >= 1);
    }
    // A second store on the same file (the CLI next to the server) sees the writes.
    let other = SqliteStore::open(&db.url()).await.unwrap();
    assert_eq!(
        other
            .list_resources("t", ResourceKind::User, &all(None))
            .await
            .unwrap()
            .total,
        20
    );
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&s.reader)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

// ---- the outbox ----

async fn events_of(s: &SqliteStore, t: &str) -> Vec<Event> {
    s.list_events(t, 0, &[], 100_000).await.unwrap()
}

fn types_of(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

#[tokio::test]
async fn seq_is_per_tenant_gap_free_and_increasing() {
    let s = mem().await;
    tenant(&s, "acme").await;
    tenant(&s, "beta").await;
    add_user(&s, "acme", "u1", user_doc("a")).await;
    add_user(&s, "beta", "u1", user_doc("a")).await;
    add_user(&s, "acme", "u2", user_doc("b")).await;
    // A failed write appends nothing: the event goes with the transaction.
    assert!(matches!(
        s.create_resource("acme", ResourceKind::User, new("u3", user_doc("A")), at(1))
            .await,
        Err(StoreError::Conflict("userName"))
    ));
    s.delete_resource("acme", ResourceKind::User, "u1", at(2))
        .await
        .unwrap();
    let acme = events_of(&s, "acme").await;
    assert_eq!(
        acme.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3],
        "{acme:?}"
    );
    assert_eq!(
        types_of(&acme),
        ["user.created", "user.created", "user.deprovisioned"]
    );
    assert_eq!(acme[0].data["user"]["userName"], "a");
    assert_eq!(acme[2].data["user"], json!({"id": "u1", "userName": "a"}));
    assert_eq!(acme[2].occurred_at, at(2));
    let beta = events_of(&s, "beta").await;
    assert_eq!(beta.iter().map(|e| e.seq).collect::<Vec<_>>(), [1]);
    assert_eq!(s.last_seq("acme").await.unwrap(), 3);
    assert_eq!(s.last_seq("nobody").await.unwrap(), 0);
    let ids: HashSet<&str> = acme.iter().chain(&beta).map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 4, "event ids are unique");
    // Paging from a cursor, and filtering by type.
    let after = s.list_events("acme", 1, &[], 1).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].seq, 2);
    let only = s
        .list_events("acme", 0, &["user.deprovisioned".to_owned()], 10)
        .await
        .unwrap();
    assert_eq!(only.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
}

#[tokio::test]
async fn concurrent_writers_on_a_file_get_distinct_consecutive_seqs() {
    let db = TempDb::new();
    let s = SqliteStore::open(&db.url()).await.unwrap();
    tenant(&s, "acme").await;
    // A second store on the same file stands for another process (the CLI).
    let other = SqliteStore::open(&db.url()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let st = if i % 2 == 0 { s.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            st.create_resource(
                "acme",
                ResourceKind::User,
                new(&format!("u{i}"), user_doc(&format!("user{i}"))),
                at(i),
            )
            .await
            .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seqs: Vec<i64> = events_of(&s, "acme").await.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
}

#[tokio::test]
async fn member_events_list_the_rows_that_really_changed_in_parts() {
    let s = mem().await;
    tenant(&s, "acme").await;
    let n = 1500;
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("u{i:04}");
        add_user(&s, "acme", &id, user_doc(&id)).await;
        ids.push(id);
    }
    add_group(&s, "acme", "g1", "Admins", &["u0000"]).await;
    let before = s.last_seq("acme").await.unwrap();
    let created = s.list_events("acme", before - 2, &[], 10).await.unwrap();
    assert_eq!(types_of(&created), ["group.created", "group.members_added"]);
    assert_eq!(created[1].data["members"], json!(["u0000"]));
    // Adding all 1,500 (one already present) gives two events with 1,499 ids between them.
    s.update_members("acme", "g1", &[MemberOp::Add(ids.clone())], at(5))
        .await
        .unwrap();
    let added = s.list_events("acme", before, &[], 10).await.unwrap();
    assert_eq!(
        types_of(&added),
        ["group.members_added", "group.members_added"]
    );
    assert_eq!(added[0].data["members"].as_array().unwrap().len(), 1000);
    assert_eq!(added[1].data["members"].as_array().unwrap().len(), 499);
    assert_eq!(added[0].data["part"], 1);
    assert_eq!(added[1].data["parts"], 2);
    assert_eq!(added[0].data["group"]["displayName"], "Admins");
    // Removing one absent and one present member, then re-adding a removed-then-added one.
    let seq = s.last_seq("acme").await.unwrap();
    s.update_members(
        "acme",
        "g1",
        &[
            MemberOp::Remove(vec!["u0001".into(), "nobody".into()]),
            MemberOp::Remove(vec!["u0002".into()]),
            MemberOp::Add(vec!["u0002".into()]),
        ],
        at(6),
    )
    .await
    .unwrap();
    let changed = s.list_events("acme", seq, &[], 10).await.unwrap();
    assert_eq!(types_of(&changed), ["group.members_removed"]);
    assert_eq!(changed[0].data["members"], json!(["u0001"]));
    // Adding only present members changes no row and announces nothing.
    let seq = s.last_seq("acme").await.unwrap();
    s.update_members("acme", "g1", &[MemberOp::Add(vec!["u0003".into()])], at(7))
        .await
        .unwrap();
    assert_eq!(s.last_seq("acme").await.unwrap(), seq);
    // Deprovisioning a member: the group announces the loss, then the user goes.
    s.delete_resource("acme", ResourceKind::User, "u0003", at(8))
        .await
        .unwrap();
    let gone = s.list_events("acme", seq, &[], 10).await.unwrap();
    assert_eq!(
        types_of(&gone),
        ["group.members_removed", "user.deprovisioned"]
    );
    s.delete_resource("acme", ResourceKind::Group, "g1", at(9))
        .await
        .unwrap();
    let last = s.list_events("acme", seq + 2, &[], 10).await.unwrap();
    assert_eq!(types_of(&last), ["group.deleted"]);
}

#[tokio::test]
async fn caller_events_restore_and_tokens() {
    let s = mem().await;
    tenant(&s, "acme").await;
    add_user(&s, "acme", "u1", user_doc("alice")).await;
    let upd = ResourceUpdate {
        doc: json!({"schemas": [USER_SCHEMA], "userName": "alice", "active": false}),
        password_hash: None,
        members: vec![],
        events: vec![NewEvent::new(
            EventType::UserDeactivated,
            json!({"user": {"id": "u1"}}),
        )],
    };
    s.update_resource("acme", ResourceKind::User, "u1", 1, upd.clone(), at(1))
        .await
        .unwrap();
    // A stale update appends nothing.
    assert!(s
        .update_resource("acme", ResourceKind::User, "u1", 1, upd, at(2))
        .await
        .is_err());
    s.delete_resource("acme", ResourceKind::User, "u1", at(3))
        .await
        .unwrap();
    let mut again = new("ignored", user_doc("ALICE"));
    again.events = vec![NewEvent::new(EventType::UserWelcome, json!({}))];
    let restored = s
        .create_resource("acme", ResourceKind::User, again, at(4))
        .await
        .unwrap();
    assert!(matches!(restored, CreateOutcome::Restored(_)));
    let tok = TokenRecord {
        prefix: "rsct_a".into(),
        tenant_id: "acme".into(),
        hash: "h".into(),
        created_at: at(5),
        expires_at: at(500),
        last_used_at: None,
        revoked_at: None,
    };
    s.insert_token(&tok).await.unwrap();
    let tok2 = TokenRecord {
        prefix: "rsct_b".into(),
        ..tok.clone()
    };
    s.rotate_tokens(&tok2, at(6)).await.unwrap();
    s.revoke_token("acme", "rsct_b", at(7)).await.unwrap();
    let all = events_of(&s, "acme").await;
    assert_eq!(
        types_of(&all),
        [
            "user.created",
            "user.deactivated",
            "user.deprovisioned",
            "user.restored",
            "user.welcome",
            "token.created",
            "token.rotated",
            "token.revoked"
        ]
    );
    assert_eq!(all[3].data["user"]["id"], "u1");
    assert_eq!(all[6].data["revoked"], json!(["rsct_a"]));
    assert!(!all[5].to_owned().data.to_string().contains("\"h\""));
    // Appending to an unknown tenant fails.
    assert!(matches!(
        s.append_events(
            "nobody",
            vec![NewEvent::new(EventType::ScimEnabled, json!({}))],
            at(8)
        )
        .await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn snapshot_is_consistent_with_its_seq() {
    let s = mem().await;
    tenant(&s, "acme").await;
    add_user(&s, "acme", "u1", user_doc("a")).await;
    add_user(&s, "acme", "u2", user_doc("b")).await;
    add_group(&s, "acme", "g1", "G", &["u1", "u2"]).await;
    s.delete_resource("acme", ResourceKind::User, "u2", at(1))
        .await
        .unwrap();
    let snap = s.snapshot("acme").await.unwrap();
    assert_eq!(snap.seq, s.last_seq("acme").await.unwrap());
    assert_eq!(
        snap.users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["u1"]
    );
    assert_eq!(snap.groups.len(), 1);
    assert_eq!(snap.groups[0].1, ["u1"]);
}

#[tokio::test]
async fn subscribers_wake_on_commits_with_events() {
    let s = mem().await;
    tenant(&s, "acme").await;
    let mut rx = s.subscribe();
    let before = *rx.borrow_and_update();
    add_user(&s, "acme", "u1", user_doc("a")).await;
    tokio::time::timeout(std::time::Duration::from_secs(5), rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(*rx.borrow(), before);
}

#[tokio::test]
async fn webhook_streams_start_at_the_current_seq_and_redeliver() {
    let s = mem().await;
    tenant(&s, "acme").await;
    add_user(&s, "acme", "u1", user_doc("a")).await;
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
    tenant(&s, "beta").await;
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
        .record_delivery("wh_1", "acme", 0, &failed, at(2))
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
        .record_delivery("wh_1", "acme", 0, &ok, at(3))
        .await
        .unwrap());
    assert!(s
        .record_delivery("wh_1", "acme", resumed[0].generation, &ok, at(3))
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

#[tokio::test]
async fn provisioning_log_filters_pages_and_prunes() {
    let s = mem().await;
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
