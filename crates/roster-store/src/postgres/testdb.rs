//! Throwaway PostgreSQL databases for the backend's tests: each test gets a database of its
//! own, created on the server `ROSTER_TEST_POSTGRES` names (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, the project machines' local server, trust
//! auth) and dropped when the test ends. `scripts/postgres.sh` starts a server when none
//! answers (the test command runs it first).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::sync::Arc;

use super::PostgresStore;

/// The maintenance database URL the tests create their databases through.
pub(crate) fn admin_url() -> String {
    std::env::var("ROSTER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let cut = base
        .rfind('/')
        .filter(|i| *i > "postgres://".len())
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..cut]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn admin() -> tokio_postgres::Client {
    let url = admin_url();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the PostgreSQL tests need a server: none answers at {url} ({e}); run \
                 scripts/postgres.sh or set ROSTER_TEST_POSTGRES"
            )
        });
    tokio::spawn(conn);
    client
}

/// A database of its own for one test; dropped (with its connections) when this is.
#[derive(Debug)]
pub(crate) struct TestDb {
    /// Its URL.
    pub url: String,
    name: String,
}

impl TestDb {
    /// Creates an empty database.
    pub(crate) async fn new() -> TestDb {
        let name = format!("roster_test_{}", uuid::Uuid::new_v4().simple());
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        TestDb {
            url: with_database(&admin_url(), &name),
            name,
        }
    }

    /// Opens a store on it (the first open migrates).
    pub(crate) async fn open(&self) -> Arc<PostgresStore> {
        Arc::new(PostgresStore::open(&self.url).await.unwrap())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        // Dropping cannot wait on the test's runtime: a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let _ = admin()
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }

    #[tokio::test]
    async fn nodes_starting_together_migrate_once() {
        let db = TestDb::new().await;
        let opens: Vec<_> = (0..4).map(|_| PostgresStore::open(&db.url)).collect();
        for store in futures::future::join_all(opens).await {
            store.unwrap();
        }
        let applied: i64 = admin_of(&db.url)
            .await
            .query_one("SELECT COUNT(*) FROM _roster_migrations", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            applied,
            i64::try_from(super::super::migrate::MIGRATIONS.len()).unwrap()
        );
    }

    async fn admin_of(url: &str) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    /// A node of the previous release (standing in: this binary, with a migration of a "newer
    /// release" recorded) runs on a schema the newer one expanded, and refuses one it
    /// contracted.
    #[tokio::test]
    async fn the_previous_release_runs_on_an_expanded_schema_only() {
        let db = TestDb::new().await;
        drop(db.open().await);
        let admin = admin_of(&db.url).await;
        admin
            .batch_execute(
                "ALTER TABLE resources ADD COLUMN later TEXT; \
                 INSERT INTO _roster_migrations \
                 (version, description, installed_on, checksum, expand_only) \
                 VALUES (9999, 'later', 0, 'x', TRUE)",
            )
            .await
            .unwrap();
        let store = PostgresStore::open(&db.url).await.unwrap();
        drop(store);
        admin
            .batch_execute("UPDATE _roster_migrations SET expand_only = FALSE WHERE version = 9999")
            .await
            .unwrap();
        let refused = PostgresStore::open(&db.url).await.unwrap_err().to_string();
        assert!(
            refused.contains("migration 9999 (later) of a newer Roster"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn a_fresh_database_migrates_and_reopens() {
        let db = TestDb::new().await;
        let a = db.open().await;
        let b = db.open().await;
        drop((a, b));
    }
}

#[cfg(test)]
mod unavailable {
    use super::*;
    use crate::{Store, StoreError};

    #[tokio::test]
    async fn a_database_that_cannot_be_reached_is_unavailable_not_a_failure() {
        // Nothing listens on port 1: the pool's connection attempt is refused.
        let err = PostgresStore::open("postgres://postgres@127.0.0.1:1/roster")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");

        let db = TestDb::new().await;
        let store = db.open().await;
        store.get_tenant("t").await.unwrap();
        // The database goes away under a running store: it refuses new connections and its
        // connections are cut.
        admin()
            .await
            .batch_execute(&format!(
                "ALTER DATABASE {0} ALLOW_CONNECTIONS false; \
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{0}' AND pid <> pg_backend_pid()",
                db.name
            ))
            .await
            .unwrap();
        let e = store.get_tenant("t").await.unwrap_err();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        admin()
            .await
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                db.name
            ))
            .await
            .unwrap();
        // A statement the server refuses is not that.
        let dup = crate::Tenant {
            id: "t".into(),
            name: "T".into(),
            idp: "generic".into(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            settings: crate::TenantSettings::default(),
        };
        let store = db.open().await;
        store.create_tenant(&dup).await.unwrap();
        assert!(matches!(
            store.create_tenant(&dup).await,
            Err(StoreError::Conflict(_))
        ));
    }
}

#[cfg(test)]
mod tls {
    use super::*;

    /// Whether this connection of the store is encrypted (`pg_stat_ssl`).
    async fn encrypted(store: &PostgresStore) -> bool {
        crate::postgres::db::query_scalar(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn sslmode_is_read_with_libpqs_meanings() {
        let db = TestDb::new().await;
        let with = |params: &str| format!("{}?{params}", db.url);
        let plain = PostgresStore::open(&with("sslmode=disable")).await.unwrap();
        assert!(!encrypted(&plain).await);

        let server_tls: String = admin()
            .await
            .query_one("SHOW ssl", &[])
            .await
            .unwrap()
            .get(0);
        if server_tls != "on" {
            // A server without TLS: `require` is refused rather than sent in the clear.
            let err = PostgresStore::open(&with("sslmode=require"))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("cannot connect"), "{err}");
            return;
        }
        for mode in ["prefer", "require"] {
            let s = PostgresStore::open(&with(&format!("sslmode={mode}")))
                .await
                .unwrap();
            assert!(
                encrypted(&s).await,
                "{mode} encrypts when the server offers TLS"
            );
        }
        // The server's own certificate as the root: its chain is trusted, but it was issued
        // for the machine's name, not for 127.0.0.1.
        let cert: String = admin()
            .await
            .query_one("SHOW ssl_cert_file", &[])
            .await
            .unwrap()
            .get(0);
        if std::fs::metadata(&cert).is_ok() {
            let ca =
                PostgresStore::open(&with(&format!("sslmode=verify-ca&sslrootcert={cert}"))).await;
            let full =
                PostgresStore::open(&with(&format!("sslmode=verify-full&sslrootcert={cert}")))
                    .await;
            match ca {
                Ok(s) => {
                    assert!(encrypted(&s).await);
                    let err = full.unwrap_err().to_string();
                    assert!(err.contains("certificate"), "{err}");
                }
                // A certificate that cannot be its own root (a CA-signed one): refused by both.
                Err(e) => assert!(full.is_err(), "{e}"),
            }
        }
        // Mozilla's roots do not include the test server's certificate.
        let err = PostgresStore::open(&with("sslmode=verify-full"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("certificate"), "{err}");
        let err = PostgresStore::open(&with("sslmode=sometimes"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("sslmode must be"), "{err}");
        let err = PostgresStore::open(&with("sslmode=verify-ca&sslrootcert=/nonexistent.pem"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("sslrootcert /nonexistent.pem"), "{err}");
    }
}
