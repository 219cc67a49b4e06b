//! Backup and restore on real files: a consistent snapshot while another connection writes
//! between the steps, the refusals, and a restored copy that the store opens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::{backup, restore, BackupError, BackupOptions};
use crate::sqlite::SqliteStore;
use crate::MetaStore;

/// A directory of its own under the temp dir, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!(
            "roster-backup-test-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The file names in the directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn url(p: &Path) -> String {
    format!("sqlite://{}", p.display())
}

/// A migrated database with `rows` meta rows of 2 KiB each (a few hundred pages).
async fn filled(path: &Path, rows: usize) -> SqliteStore {
    let store = SqliteStore::open(&url(path)).await.unwrap();
    let pad = "x".repeat(2048);
    for i in 0..rows {
        store
            .set_meta(&format!("k{i:04}"), Some(&pad))
            .await
            .unwrap();
    }
    store
}

fn meta_keys(path: &Path) -> Vec<String> {
    let c = Connection::open(path).unwrap();
    let mut st = c.prepare("SELECT key FROM meta ORDER BY key").unwrap();
    let keys = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    keys
}

fn no_progress() -> impl FnMut(u64, u64) {
    |_, _| {}
}

#[tokio::test]
async fn a_backup_is_the_snapshot_of_its_start_while_another_connection_writes() {
    let dir = Dir::new();
    let db = dir.file("roster.db");
    let store = filled(&db, 200).await;
    let dest = dir.file("backup.db");
    let options = BackupOptions {
        pages_per_step: 4,
        pause: Duration::ZERO,
        force: false,
    };
    // A write from another connection after every step: without the one read transaction
    // around the steps, SQLite would restart the copy on each, and never finish.
    let writer = Connection::open(&db).unwrap();
    writer.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut written = 0;
    let mut last = (0, 0);
    let copied = backup(&db, &dest, options, &mut |done, total| {
        written += 1;
        writer
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, 'during')",
                [format!("during{written:04}")],
            )
            .unwrap();
        last = (done, total);
    })
    .unwrap();
    assert!(written > 10, "the copy took several steps: {written}");
    assert!(copied.steps > 10, "{copied:?}");
    assert_eq!(last, (copied.pages, copied.pages));
    assert!(copied.bytes >= copied.pages * 4096 / 2, "{copied:?}");
    assert_eq!(copied.schema_version, copied.latest_schema_version);

    let keys = meta_keys(&dest);
    assert_eq!(keys.iter().filter(|k| k.starts_with('k')).count(), 200);
    assert!(
        !keys.iter().any(|k| k.starts_with("during")),
        "writes after the start are not in the copy"
    );
    assert_eq!(meta_keys(&db).len(), 200 + written);
    // One self-contained file in rollback-journal mode: header bytes 18 and 19 are 1.
    let header = std::fs::read(&dest).unwrap();
    assert_eq!((header[18], header[19]), (1, 1));
    assert_eq!(
        dir.names(),
        ["backup.db", "roster.db", "roster.db-shm", "roster.db-wal"],
        "no temporary file is left"
    );
    drop(store);
}

#[tokio::test]
async fn a_backup_refuses_an_existing_file_unless_forced_and_a_foreign_database() {
    let dir = Dir::new();
    let db = dir.file("roster.db");
    let _store = filled(&db, 3).await;
    let dest = dir.file("backup.db");
    std::fs::write(&dest, b"keep me").unwrap();
    let err = backup(&db, &dest, BackupOptions::default(), &mut no_progress()).unwrap_err();
    assert!(matches!(err, BackupError::Exists(_)), "{err}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"keep me");
    let forced = BackupOptions {
        force: true,
        ..BackupOptions::default()
    };
    backup(&db, &dest, forced, &mut no_progress()).unwrap();
    assert_eq!(meta_keys(&dest).len(), 3);

    let err = backup(&db, &db, forced, &mut no_progress()).unwrap_err();
    assert!(matches!(err, BackupError::SameFile(_)), "{err}");

    let err = backup(
        &dir.file("nope.db"),
        &dir.file("b2.db"),
        BackupOptions::default(),
        &mut no_progress(),
    )
    .unwrap_err();
    assert!(matches!(err, BackupError::Missing(_)), "{err}");
    assert!(
        !dir.file("nope.db").exists(),
        "a missing source is not created"
    );

    let foreign = dir.file("foreign.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let err = backup(
        &foreign,
        &dir.file("b3.db"),
        BackupOptions::default(),
        &mut no_progress(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a Roster database"), "{err}");
    assert!(!dir.file("b3.db").exists());
}

#[tokio::test]
async fn a_restore_checks_the_file_and_refuses_a_database_in_use() {
    let dir = Dir::new();
    let db = dir.file("roster.db");
    let store = filled(&db, 50).await;
    let dest = dir.file("backup.db");
    backup(&db, &dest, BackupOptions::default(), &mut no_progress()).unwrap();
    store.set_meta("after", Some("x")).await.unwrap();

    // Into a new path.
    let fresh = dir.file("fresh.db");
    let r = restore(&dest, &fresh, false).unwrap();
    assert_eq!(r.schema_version, r.latest_schema_version);
    assert_eq!(meta_keys(&fresh).len(), 50);

    // Over the live database: refused without --force, and refused while it is open.
    let err = restore(&dest, &db, false).unwrap_err();
    assert!(matches!(err, BackupError::Exists(_)), "{err}");
    let err = restore(&dest, &db, true).unwrap_err();
    assert!(matches!(err, BackupError::InUse(_)), "{err}");
    assert_eq!(meta_keys(&db).len(), 51, "the live database is untouched");

    // Once closed, replaced whole; the store opens it again. (The store's checkpointer
    // thread closes its connection within its interval of the drop.)
    drop(store);
    let mut tries = 0;
    while let Err(BackupError::InUse(_)) = restore(&dest, &db, true) {
        tries += 1;
        assert!(
            tries < 100,
            "the closed store's connections never went away"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reopened = SqliteStore::open(&url(&db)).await.unwrap();
    assert_eq!(
        reopened.meta("k0001").await.unwrap().map(|v| v.len()),
        Some(2048)
    );
    assert_eq!(reopened.meta("after").await.unwrap(), None);
    drop(reopened);

    // Not a database, a foreign one, a damaged one, one with a log beside it.
    let junk = dir.file("junk.db");
    std::fs::write(&junk, vec![7_u8; 8192]).unwrap();
    let err = restore(&junk, &dir.file("r1.db"), false).unwrap_err();
    assert!(err.to_string().contains("not a Roster database"), "{err}");

    let foreign = dir.file("foreign.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let err = restore(&foreign, &dir.file("r2.db"), false).unwrap_err();
    assert!(err.to_string().contains("_sqlx_migrations"), "{err}");

    let damaged = dir.file("damaged.db");
    let mut bytes = std::fs::read(&dest).unwrap();
    // Page 5 onwards overwritten: b-tree pages the integrity check walks.
    for b in bytes.iter_mut().skip(4 * 4096).take(4096 * 4) {
        *b = 0xA5;
    }
    std::fs::write(&damaged, bytes).unwrap();
    let err = restore(&damaged, &dir.file("r3.db"), false).unwrap_err();
    assert!(err.to_string().contains("not a Roster database"), "{err}");

    std::fs::write(companion(&dest, "-wal"), b"frames").unwrap();
    let err = restore(&dest, &dir.file("r4.db"), false).unwrap_err();
    assert!(err.to_string().contains("roster backup"), "{err}");

    for n in ["r1.db", "r2.db", "r3.db", "r4.db"] {
        assert!(!dir.file(n).exists(), "{n}");
    }
    assert!(
        !dir.names().iter().any(|n| n.contains("roster-tmp")),
        "no temporary file is left: {:?}",
        dir.names()
    );
}

fn companion(p: &Path, suffix: &str) -> PathBuf {
    super::companion(p, suffix)
}
