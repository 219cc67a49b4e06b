//! The authentication epoch and the batched last-use writes: every change to tokens, tenants or
//! admin keys moves both counters (the persistent one in the transaction of the change, the
//! in-process one after it), and nothing else does.

use std::sync::atomic::{AtomicUsize, Ordering};

use scim_proto::schema::{ResourceKind, USER_SCHEMA};
use serde_json::json;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::SqliteStore;
use crate::ops::{AdminKeyRecord, LogStore};
use crate::tenants::{TenantAdminStore, TenantDataMode};
use crate::{AppStore, NewResource, Store, Tenant, TenantSettings, TokenRecord};

const T0: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);

fn at(secs: i64) -> OffsetDateTime {
    T0 + Duration::seconds(secs)
}

/// A fresh database file under the temp dir, removed at the end of the test when possible.
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        Self(std::env::temp_dir().join(format!(
            "roster-store-auth-test-{}-{}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
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

fn tenant(id: &str) -> Tenant {
    Tenant {
        id: id.into(),
        name: format!("Tenant {id}"),
        idp: "generic".into(),
        created_at: T0,
        settings: TenantSettings::default(),
    }
}

fn token(tenant: &str, prefix: &str) -> TokenRecord {
    TokenRecord {
        prefix: prefix.into(),
        tenant_id: tenant.into(),
        hash: format!("hash-of-{prefix}"),
        created_at: T0,
        expires_at: at(86_400),
        last_used_at: None,
        revoked_at: None,
    }
}

fn key(prefix: &str) -> AdminKeyRecord {
    AdminKeyRecord {
        prefix: prefix.into(),
        hash: format!("hash-of-{prefix}"),
        name: None,
        created_at: T0,
        last_used_at: None,
        revoked_at: None,
        expires_at: None,
        scopes: None,
    }
}

/// Both counters, as a cache sees them.
async fn epochs(s: &SqliteStore) -> (i64, u64) {
    (s.auth_epoch().await.unwrap(), s.auth_changes())
}

/// Runs `write` and asserts that it moved both counters.
macro_rules! moves {
    ($s:expr, $what:literal, $write:expr) => {{
        let (p0, l0) = epochs($s).await;
        $write;
        let (p1, l1) = epochs($s).await;
        assert!(p1 > p0, "{}: the persistent epoch did not move", $what);
        assert!(l1 > l0, "{}: the in-process counter did not move", $what);
    }};
}

#[tokio::test]
async fn every_change_that_authentication_depends_on_moves_both_counters() {
    let db = TempDb::new();
    let s = SqliteStore::open(&db.url()).await.unwrap();
    moves!(
        &s,
        "create tenant",
        s.create_tenant(&tenant("a")).await.unwrap()
    );
    moves!(
        &s,
        "insert token",
        s.insert_token(&token("a", "rsct_t1")).await.unwrap()
    );
    moves!(
        &s,
        "revoke token",
        s.revoke_token("a", "rsct_t1", at(1)).await.unwrap()
    );
    moves!(
        &s,
        "rotate tokens",
        s.rotate_tokens(&token("a", "rsct_t2"), at(2))
            .await
            .unwrap()
    );
    moves!(
        &s,
        "rotate one token",
        s.rotate_token(&token("a", "rsct_t3"), Some("rsct_t2"), at(3))
            .await
            .unwrap()
    );
    moves!(
        &s,
        "create token",
        s.create_token(&token("a", "rsct_t4"), 2, at(4))
            .await
            .unwrap()
    );
    moves!(
        &s,
        "update tenant",
        s.update_tenant(
            "a",
            Box::new(|t| {
                t.settings.groups_enabled = false;
                Ok(())
            })
        )
        .await
        .unwrap()
    );
    let settings = TenantSettings {
        welcome_email: true,
        ..TenantSettings::default()
    };
    moves!(
        &s,
        "put tenant settings",
        s.put_tenant_settings("a", &settings).await.unwrap()
    );
    moves!(
        &s,
        "disable SCIM",
        s.disable_scim("a", at(5)).await.unwrap()
    );
    moves!(
        &s,
        "enable SCIM",
        s.enable_scim(&token("a", "rsct_t5"), at(6)).await.unwrap()
    );
    moves!(
        &s,
        "delete tenant (retain)",
        s.delete_tenant("a", TenantDataMode::Retain, at(7))
            .await
            .unwrap()
    );
    moves!(
        &s,
        "erase tenant",
        s.delete_tenant("a", TenantDataMode::Erase, at(8))
            .await
            .unwrap()
    );
    moves!(
        &s,
        "insert admin key",
        s.insert_admin_key(&key("rsak_k1")).await.unwrap()
    );
    moves!(
        &s,
        "revoke admin key",
        s.revoke_admin_key("rsak_k1", at(9)).await.unwrap()
    );
}

#[tokio::test]
async fn uses_and_directory_writes_leave_the_epoch_alone() {
    let db = TempDb::new();
    let s = SqliteStore::open(&db.url()).await.unwrap();
    s.create_tenant(&tenant("a")).await.unwrap();
    s.insert_token(&token("a", "rsct_t1")).await.unwrap();
    s.insert_admin_key(&key("rsak_k1")).await.unwrap();
    let before = epochs(&s).await;

    s.touch_tokens(&[("rsct_t1".into(), at(20)), ("rsct_unknown".into(), at(20))])
        .await
        .unwrap();
    // An older use (another process's flush, late) does not move last_used_at back.
    s.touch_tokens(&[("rsct_t1".into(), at(10))]).await.unwrap();
    s.touch_tokens(&[]).await.unwrap();
    s.touch_admin_keys(&[("rsak_k1".into(), at(30)), ("rsak_nope".into(), at(30))])
        .await
        .unwrap();
    s.touch_admin_keys(&[("rsak_k1".into(), at(15))])
        .await
        .unwrap();
    let doc = json!({"schemas": [USER_SCHEMA], "userName": "ada", "active": true});
    let new = NewResource {
        id: "u1".into(),
        doc,
        password_hash: None,
        members: vec![],
        events: vec![],
    };
    s.create_resource("a", ResourceKind::User, new, at(40))
        .await
        .unwrap();
    s.warn_expiring_tokens("a", at(200_000), at(41))
        .await
        .unwrap();

    assert_eq!(epochs(&s).await, before);
    let t = s.find_token("rsct_t1").await.unwrap().unwrap();
    assert_eq!(t.last_used_at, Some(at(20)));
    let k = s.find_admin_key("rsak_k1").await.unwrap().unwrap();
    assert_eq!(k.last_used_at, Some(at(30)));
}

/// Another process on the same file (the CLI, another node) sees the persistent epoch move;
/// its own in-process counter does not, which is why a server polls the persistent one.
#[tokio::test]
async fn another_store_on_the_same_file_sees_the_persistent_epoch_move() {
    let db = TempDb::new();
    let server = SqliteStore::open(&db.url()).await.unwrap();
    let cli = SqliteStore::open(&db.url()).await.unwrap();
    server.create_tenant(&tenant("a")).await.unwrap();
    server.insert_token(&token("a", "rsct_t1")).await.unwrap();
    let (p0, l0) = epochs(&server).await;
    cli.revoke_token("a", "rsct_t1", at(1)).await.unwrap();
    let (p1, l1) = epochs(&server).await;
    assert!(
        p1 > p0,
        "the other store's revocation moved the shared epoch"
    );
    assert_eq!(l1, l0, "the in-process counter is per process");
}

#[tokio::test]
async fn a_refused_write_leaves_the_persistent_epoch_alone() {
    // A refused write (the token limit) rolls back, and its bump with it.
    let s = SqliteStore::open("sqlite::memory:").await.unwrap();
    s.create_tenant(&tenant("a")).await.unwrap();
    s.insert_token(&token("a", "rsct_t1")).await.unwrap();
    let (p0, _) = epochs(&s).await;
    assert!(s
        .create_token(&token("a", "rsct_t2"), 1, at(1))
        .await
        .is_err());
    assert_eq!(s.auth_epoch().await.unwrap(), p0);
}
