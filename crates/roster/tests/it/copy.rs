//! `roster db copy`: the database a real server filled over HTTP on SQLite, copied into
//! PostgreSQL by the command, then served from PostgreSQL with the same users, groups, event
//! feed, token and admin key.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{bin, full_user, PgDb, TestServer};

fn roster_db_copy(from: &str, to: &str) -> Output {
    Command::new(bin())
        .args(["db", "copy", "--from", from, "--to", to])
        .env_remove("ROSTER_COPY_TO")
        .env_remove("ROSTER_DATABASE_URL")
        .env_remove("ROSTER_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run roster db copy")
}

/// A resource as served by `server`, with the server's origin (in `meta.location` and the
/// `$ref`s) taken out: that is the one thing the copy may change.
fn portable(server: &TestServer, v: &Value) -> Value {
    let text = v.to_string().replace(&server.origin, "ORIGIN");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn a_served_sqlite_database_is_copied_and_served_from_postgres() {
    let mut old = TestServer::start_sqlite().await;
    let key = old.admin_key();
    let alice = old.create_user(&full_user("alice", None)).await;
    let alice = alice["id"].as_str().unwrap().to_owned();
    let bob = old.user("bob").await;
    let carol = old.user("carol").await;
    let group = old.create_group("Staff", &[&alice, &bob]).await;
    let group = group["id"].as_str().unwrap().to_owned();
    old.delete(&format!("/Users/{carol}")).await.expect(204);
    let alice_before = old.get(&format!("/Users/{alice}")).await;
    alice_before.expect(200);
    let group_before = old.get(&format!("/Groups/{group}")).await;
    group_before.expect(200);
    let feed_before = old.feed(&key, 0).await;
    assert!(feed_before.len() >= 5, "{feed_before:?}");
    // The upgrade path: stop the node, then copy.
    assert!(old.terminate(Duration::from_secs(30)).success());

    let pg = PgDb::create();
    let out = roster_db_copy(&old.db_url, &pg.url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("verified"), "{stdout}");
    let rows = |table: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .unwrap_or_else(|| panic!("{table} is in the table: {stdout}"))
            .split_whitespace()
            .skip(1)
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        rows("resources"),
        ["4", "4"],
        "3 users (one deprovisioned), 1 group"
    );
    assert_eq!(rows("members"), ["2", "2"]);
    assert_eq!(rows("admin_keys"), ["1", "1"]);
    assert_eq!(rows("events")[0], feed_before.len().to_string());

    // Once copied, the target is no longer empty: a second copy is refused, and says why.
    let again = roster_db_copy(&old.db_url, &pg.url);
    let says = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(
        says.contains("not empty") && says.contains("table"),
        "{says}"
    );

    let new = TestServer::start_on(pg.url.clone(), Some(pg), &old.tenant, &old.token).await;
    let alice_after = new.get(&format!("/Users/{alice}")).await;
    alice_after.expect(200);
    assert_eq!(
        portable(&new, &alice_after.json),
        portable(&old, &alice_before.json)
    );
    let group_after = new.get(&format!("/Groups/{group}")).await;
    group_after.expect(200);
    assert_eq!(
        portable(&new, &group_after.json),
        portable(&old, &group_before.json)
    );
    new.get(&format!("/Users/{carol}")).await.expect(404);
    let feed_after = new.feed(&key, 0).await;
    assert_eq!(feed_after, feed_before, "the feed, seqs included");

    // The next write continues the tenant's seq.
    let last = feed_before.last().unwrap()["seq"].as_i64().unwrap();
    new.user("dave").await;
    let next = new.feed(&key, last).await;
    assert_eq!(next.first().and_then(|e| e["seq"].as_i64()), Some(last + 1));
}
