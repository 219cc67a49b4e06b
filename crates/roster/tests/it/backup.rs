//! `roster backup` and `roster restore`: a backup taken while a server acknowledges creates
//! over HTTP holds every create acknowledged before it began, restores into a database that
//! passes SQLite's integrity check, and serves; the refusals say what to do.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{bin, user_body, TestServer, UNLIMITED};

/// Concurrent writers (so that creates share group commits, as under an identity provider).
const WRITERS: usize = 4;
/// At most this many creates in all, and this long: the test is bounded either way.
const MAX_CREATES: usize = 5_000;
const MAX_TIME: Duration = Duration::from_secs(90);

/// Runs `roster ARGS --database URL` (no inherited configuration).
fn roster(args: &[&str], db_url: &str) -> Output {
    Command::new(bin())
        .args(args)
        .arg("--database")
        .arg(db_url)
        .env_remove("ROSTER_DATABASE_URL")
        .env_remove("ROSTER_DATABASE_URL_FILE")
        .env_remove("ROSTER_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run roster")
}

#[track_caller]
fn ok_json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON object")
}

#[track_caller]
fn refused(out: &Output, says: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded; stderr: {stderr}");
    for s in says {
        assert!(stderr.contains(s), "{s:?} not in: {stderr}");
    }
}

/// Every userName the server lists, page by page.
async fn user_names(s: &TestServer) -> HashSet<String> {
    let mut names = HashSet::new();
    let mut start = 1;
    loop {
        let r = s
            .get_q(
                "/Users",
                &[
                    ("startIndex", &start.to_string()),
                    ("count", "1000"),
                    ("attributes", "userName"),
                ],
            )
            .await;
        r.expect(200);
        let page = r.json["Resources"].as_array().cloned().unwrap_or_default();
        if page.is_empty() {
            return names;
        }
        start += page.len();
        names.extend(
            page.iter()
                .map(|u| u["userName"].as_str().unwrap().to_owned()),
        );
    }
}

fn integrity_check(path: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut st = c.prepare("PRAGMA integrity_check").unwrap();
    let rows = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows
}

/// Waits (bounded) until `acked` holds at least `n` names.
async fn wait_for(acked: &Mutex<Vec<String>>, n: usize, deadline: Instant) {
    while acked.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "the writers stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_write_load_restores_every_create_acknowledged_before_it() {
    let started = Instant::now();
    let deadline = started + MAX_TIME;
    // As fast as four writers can go: no rate limit in the way.
    let mut server = TestServer::start_sqlite_with(UNLIMITED).await;
    let server_db = server.db_url.clone();
    let server_file = server.dir.path().join("roster.db");
    let work = tempfile::tempdir().unwrap();
    let backup_file = work.path().join("roster-backup.db");
    let backup_path = backup_file.to_str().unwrap().to_owned();

    // The writers: each acknowledged create (201) is recorded as it arrives.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let (acked, stop, next) = (acked.clone(), stop.clone(), next.clone());
        let (client, base, token) = (
            server.client.clone(),
            server.base.clone(),
            server.token.clone(),
        );
        writers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= MAX_CREATES {
                    break;
                }
                let name = format!("load{n:05}");
                let r = client
                    .post(format!("{base}/Users"))
                    .bearer_auth(&token)
                    .header("content-type", "application/scim+json")
                    .body(user_body(&name).to_string())
                    .send()
                    .await
                    .expect("POST /Users");
                assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
                acked.lock().unwrap().push(name);
            }
        }));
    }

    // A database of some hundreds of users first, so that the copy takes many steps.
    wait_for(&acked, 300, deadline).await;
    let before: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let t0 = Instant::now();
    let out = {
        let (db, to) = (server_db.clone(), backup_path.clone());
        // Small steps with a pause: the copy spans many of the writers' commits.
        tokio::task::spawn_blocking(move || {
            roster(
                &[
                    "backup",
                    "--to",
                    &to,
                    "--step-pages",
                    "8",
                    "--pause-ms",
                    "5",
                    "--json",
                ],
                &db,
            )
        })
        .await
        .unwrap()
    };
    let took = t0.elapsed();
    let report = ok_json(&out);
    let during = acked.lock().unwrap().len() - before.len();
    assert!(report["steps"].as_u64().unwrap() > 5, "{report}");
    assert!(report["bytes"].as_u64().unwrap() > 100_000, "{report}");
    assert!(
        during > 0,
        "the server acknowledged creates while the backup ran ({took:?})"
    );
    eprintln!("backup: {report}; {during} creates acknowledged during it ({took:?})");

    // Some more creates after it, then stop the writers.
    let after_backup = acked.lock().unwrap().len();
    wait_for(&acked, after_backup + 50, deadline).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let all: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();

    // The refusals, while the server runs.
    refused(
        &roster(&["backup", "--to", &backup_path], &server_db),
        &["already exists", "--force"],
    );
    refused(
        &roster(&["restore", "--from", &backup_path, "--force"], &server_db),
        &["open in another process", "stop it first"],
    );
    refused(
        &roster(
            &["backup", "--to", &backup_path],
            "postgres://roster@127.0.0.1:1/roster",
        ),
        &["pg_dump"],
    );
    let live = integrity_check(&server_file);
    assert_eq!(
        live,
        ["ok"],
        "the refused restore left the live database alone"
    );

    let (tenant, token) = (server.tenant.clone(), server.token.clone());
    assert!(server.terminate(Duration::from_secs(30)).success());

    // Restore into a new path, and serve it.
    let restored_file = work.path().join("restored.db");
    let restored_db = format!("sqlite://{}", restored_file.display());
    let report = ok_json(&roster(
        &["restore", "--from", &backup_path, "--json"],
        &restored_db,
    ));
    assert_eq!(report["integrity_check"], "ok", "{report}");
    refused(
        &roster(&["restore", "--from", &backup_path], &restored_db),
        &["already exists", "--force"],
    );
    let mut restored = TestServer::start_on(restored_db.clone(), None, &tenant, &token).await;
    let names = user_names(&restored).await;
    let missing: Vec<&String> = before.difference(&names).collect();
    assert!(
        missing.is_empty(),
        "{} creates acknowledged before the backup began are missing, e.g. {:?}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    assert!(
        names.iter().all(|n| n.starts_with("load")),
        "nothing but the writers' users"
    );
    assert!(
        names.len() < all.len(),
        "the backup is the snapshot of its start, not of the end ({} of {})",
        names.len(),
        all.len()
    );
    // The restored server takes writes.
    restored
        .post("/Users", &user_body("after-restore"))
        .await
        .expect(201);
    assert!(restored.terminate(Duration::from_secs(30)).success());
    assert_eq!(integrity_check(&restored_file), ["ok"]);
    eprintln!(
        "{} acknowledged before the backup, {} in it, {} in all; {:?} in all",
        before.len(),
        names.len(),
        all.len(),
        started.elapsed()
    );
}
