//! The SQLite schema migrations: forward-only, each in its own transaction, recorded in the
//! `_sqlx_migrations` table that earlier Roster versions (built on sqlx) kept, with the same
//! columns and checksums, so a database created by either version opens with the other.

use sha2::{Digest, Sha384};

use super::db::{self, Connection};
use super::{backend, StoreError, StoreResult};

/// `(version, description, SQL)` of every migration, in order. A test checks that this list
/// and `migrations/sqlite/` agree.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "events",
        include_str!("../../migrations/sqlite/0002_events.sql"),
    ),
    (
        3,
        "tenant settings",
        include_str!("../../migrations/sqlite/0003_tenant_settings.sql"),
    ),
    (
        4,
        "tenant lifecycle",
        include_str!("../../migrations/sqlite/0004_tenant_lifecycle.sql"),
    ),
    (
        5,
        "app users",
        include_str!("../../migrations/sqlite/0005_app_users.sql"),
    ),
    (
        6,
        "console",
        include_str!("../../migrations/sqlite/0006_console.sql"),
    ),
    (
        7,
        "log failures",
        include_str!("../../migrations/sqlite/0007_log_failures.sql"),
    ),
    (
        8,
        "member counts",
        include_str!("../../migrations/sqlite/0008_member_counts.sql"),
    ),
    (
        9,
        "auth epoch",
        include_str!("../../migrations/sqlite/0009_auth_epoch.sql"),
    ),
    (
        10,
        "provisioning counts",
        include_str!("../../migrations/sqlite/0010_provisioning_counts.sql"),
    ),
    (
        11,
        "meta",
        include_str!("../../migrations/sqlite/0011_meta.sql"),
    ),
    (
        12,
        "cluster",
        include_str!("../../migrations/sqlite/0012_cluster.sql"),
    ),
    (
        13,
        "admin key limits",
        include_str!("../../migrations/sqlite/0013_admin_key_limits.sql"),
    ),
    (
        14,
        "email claims",
        include_str!("../../migrations/sqlite/0014_email_claims.sql"),
    ),
    (
        15,
        "first sync review",
        include_str!("../../migrations/sqlite/0015_first_sync_review.sql"),
    ),
    (
        16,
        "custom indexes",
        include_str!("../../migrations/sqlite/0016_custom_indexes.sql"),
    ),
    (
        17,
        "console once",
        include_str!("../../migrations/sqlite/0017_console_once.sql"),
    ),
    (
        18,
        "provisioning hourly",
        include_str!("../../migrations/sqlite/0018_provisioning_hourly.sql"),
    ),
    (
        19,
        "search",
        include_str!("../../migrations/sqlite/0019_search.sql"),
    ),
    (
        20,
        "webhook attempts",
        include_str!("../../migrations/sqlite/0020_webhook_attempts.sql"),
    ),
    (
        21,
        "role catalogue",
        include_str!("../../migrations/sqlite/0021_role_catalogue.sql"),
    ),
];

/// Applies the migrations the database lacks. Refuses a database that a newer Roster
/// migrated further, or whose applied migrations differ from this build's.
pub(super) fn run(conn: &mut Connection) -> StoreResult<()> {
    db::script(
        conn,
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        )",
    )
    .map_err(backend)?;
    let applied = check_applied(conn)?;
    for (version, description, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let started = std::time::Instant::now();
        let tx = conn.transaction().map_err(backend)?;
        db::script(&tx, sql).map_err(|e| {
            StoreError::Backend(format!("migration {version} ({description}): {e}").into())
        })?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (?1, ?2, 1, ?3, ?4)",
            rusqlite::params![
                version,
                description,
                Sha384::digest(sql.as_bytes()).as_slice(),
                i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX)
            ],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        tracing::info!(version, description, "applied a database migration");
    }
    Ok(())
}

/// The versions of the migrations the database has applied (its `_sqlx_migrations` table
/// must exist), checked against this build's: each one known, successful and unchanged.
/// Refuses a database that a newer Roster migrated further.
pub(super) fn check_applied(conn: &Connection) -> StoreResult<Vec<i64>> {
    let applied: Vec<(i64, bool, Vec<u8>)> = {
        let mut st = conn
            .prepare("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
            .map_err(backend)?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)?
    };
    let known = |v: i64| MIGRATIONS.iter().find(|(n, ..)| *n == v);
    for (version, success, checksum) in &applied {
        let Some((_, description, sql)) = known(*version) else {
            return Err(StoreError::Backend(
                format!(
                    "the database was migrated by a newer Roster (migration {version} is \
                     unknown to this one); run that version or restore a backup"
                )
                .into(),
            ));
        };
        if !success {
            return Err(StoreError::Backend(
                format!("migration {version} ({description}) failed earlier; restore a backup")
                    .into(),
            ));
        }
        if checksum.as_slice() != Sha384::digest(sql.as_bytes()).as_slice() {
            return Err(StoreError::Backend(
                format!("migration {version} ({description}) differs from the one applied").into(),
            ));
        }
    }
    Ok(applied.into_iter().map(|(v, ..)| v).collect())
}

/// The version of this build's latest migration.
pub(super) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, ..)| *v)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (file, (version, _, sql)) in files.iter().zip(MIGRATIONS) {
            let n: i64 = file.split('_').next().unwrap().parse().unwrap();
            assert_eq!(n, *version, "{file}");
            let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
            assert_eq!(&text, sql, "{file}");
        }
    }
}
