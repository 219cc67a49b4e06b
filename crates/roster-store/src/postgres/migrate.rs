//! The PostgreSQL schema migrations: forward-only, all pending ones in one transaction, under
//! an advisory lock, so that nodes starting together migrate once (the others wait for the
//! lock, then find nothing to do). Recorded in `_roster_migrations` with each file's SHA-384,
//! and a database whose recorded migration differs from the binary's is refused rather than
//! half-migrated.
//!
//! Rolling upgrades: a migration whose file carries the line [`EXPAND_ONLY`] only adds (tables,
//! nullable or defaulted columns, indexes) and is recorded as such. A node of the previous
//! release, finding such migrations it does not know, runs on the schema: what it uses is
//! still there. Anything else it does not know (a contract step, which drops or changes what
//! the previous release used, and ships a release after the expand step that stopped using
//! it) makes it refuse to start, saying so. A binary before this policy (0.1, migration 1
//! only) refuses any newer migration; rolling upgrades start from the release that has it.

use sha2::{Digest, Sha384};

use super::db::Conn;
use crate::{StoreError, StoreResult};

/// `(version, description, SQL)` of every migration, in order. A test checks that this list
/// and `migrations/postgres/` agree.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "cluster",
        include_str!("../../migrations/postgres/0002_cluster.sql"),
    ),
    (
        3,
        "tenant keyed indexes",
        include_str!("../../migrations/postgres/0003_tenant_keyed_indexes.sql"),
    ),
    (
        4,
        "admin key limits",
        include_str!("../../migrations/postgres/0004_admin_key_limits.sql"),
    ),
    (
        5,
        "email claims",
        include_str!("../../migrations/postgres/0005_email_claims.sql"),
    ),
    (
        6,
        "first sync review",
        include_str!("../../migrations/postgres/0006_first_sync_review.sql"),
    ),
    (
        7,
        "custom indexes",
        include_str!("../../migrations/postgres/0007_custom_indexes.sql"),
    ),
    (
        8,
        "console once",
        include_str!("../../migrations/postgres/0008_console_once.sql"),
    ),
    (
        9,
        "provisioning hourly",
        include_str!("../../migrations/postgres/0009_provisioning_hourly.sql"),
    ),
    (
        10,
        "search",
        include_str!("../../migrations/postgres/0010_search.sql"),
    ),
    (
        11,
        "webhook attempts",
        include_str!("../../migrations/postgres/0011_webhook_attempts.sql"),
    ),
    (
        12,
        "role catalogue",
        include_str!("../../migrations/postgres/0012_role_catalogue.sql"),
    ),
];

/// The marker line of a migration that only adds to the schema (see the module docs).
pub(super) const EXPAND_ONLY: &str = "-- roster: expand-only";

/// Whether a migration's SQL is marked [`EXPAND_ONLY`].
fn is_expand_only(sql: &str) -> bool {
    sql.lines().any(|l| l.trim_end() == EXPAND_ONLY)
}

/// The advisory lock key of migrations (any constant: "roster" in ASCII).
const LOCK_KEY: i64 = 0x726f_7374_6572;

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("migrating the PostgreSQL database: {e}").into())
}

/// Runs the pending migrations on `c` (a connection outside any transaction).
pub(super) async fn run(c: &mut Conn) -> StoreResult<()> {
    let client = c.client();
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| failed(pg_message(&e)))?;
    let done = async {
        // A transaction-level advisory lock, taken before anything else (even the creation of
        // the bookkeeping table, which two nodes racing would both attempt): released by the
        // COMMIT, or the ROLLBACK of a failure.
        client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
            .await
            .map_err(|e| failed(pg_message(&e)))?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS _roster_migrations ( \
                     version BIGINT PRIMARY KEY, \
                     description TEXT NOT NULL, \
                     installed_on BIGINT NOT NULL, \
                     checksum TEXT NOT NULL); \
                 ALTER TABLE _roster_migrations \
                     ADD COLUMN IF NOT EXISTS expand_only BOOLEAN NOT NULL DEFAULT FALSE",
            )
            .await
            .map_err(|e| failed(pg_message(&e)))?;
        let applied = client
            .query(
                "SELECT version, checksum, description, expand_only FROM _roster_migrations \
                 ORDER BY version",
                &[],
            )
            .await
            .map_err(|e| failed(pg_message(&e)))?;
        let rows = applied;
        let applied: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let mut newer = Vec::new();
        for row in &rows {
            let (version, checksum, description, expand_only): (i64, String, String, bool) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            match MIGRATIONS.iter().find(|m| m.0 == version) {
                Some((_, _, sql)) if checksum_of(sql) == checksum => {}
                Some(_) => {
                    return Err(failed(format!(
                        "migration {version} was changed after it was applied"
                    )))
                }
                None if expand_only => newer.push(version),
                None => {
                    return Err(failed(format!(
                        "the database has migration {version} ({description}) of a newer \
                         Roster, which changes the schema in a way this release cannot run on: \
                         run the newer release on every node"
                    )))
                }
            }
        }
        if !newer.is_empty() {
            tracing::warn!(
                versions = ?newer,
                "the database was migrated by a newer Roster (expand-only migrations): this \
                 node runs on it, as during a rolling upgrade; upgrade it next"
            );
        }
        // When it was applied, for people reading the table; nothing compares it.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        for (version, description, sql) in MIGRATIONS {
            if applied.iter().any(|(v, _)| v == version) {
                continue;
            }
            tracing::info!(version, description, "applying PostgreSQL migration");
            client.batch_execute(sql).await.map_err(|e| {
                failed(format!(
                    "migration {version} ({description}): {}",
                    pg_message(&e)
                ))
            })?;
            client
                .execute(
                    "INSERT INTO _roster_migrations \
                     (version, description, installed_on, checksum, expand_only) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        version,
                        description,
                        &now,
                        &checksum_of(sql),
                        &is_expand_only(sql),
                    ],
                )
                .await
                .map_err(|e| failed(pg_message(&e)))?;
        }
        Ok(())
    }
    .await;
    match done {
        Ok(()) => client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| failed(pg_message(&e))),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

fn checksum_of(sql: &str) -> String {
    hex::encode(Sha384::digest(sql.as_bytes()))
}

fn pg_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_owned())
}

#[cfg(test)]
mod tests {
    use super::{is_expand_only, MIGRATIONS};

    #[test]
    fn every_migration_after_the_first_is_expand_only() {
        // A contract step is allowed, but then this test is the place to say which, and why
        // the release before it no longer needs what it removes.
        for (version, _, sql) in &MIGRATIONS[1..] {
            assert!(
                is_expand_only(sql),
                "migration {version} is not expand-only"
            );
        }
        assert!(!is_expand_only("-- roster: expand-only-ish\nDROP TABLE x;"));
    }

    #[test]
    fn the_list_matches_the_folder() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (file, (version, _, _)) in files.iter().zip(MIGRATIONS) {
            assert!(file.starts_with(&format!("{version:04}_")), "{file}");
        }
    }
}
