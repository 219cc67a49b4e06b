//! The first hour (issue 15): `--database` checked before anything is opened, the public URL
//! recorded by `roster serve` and used by the CLI, `roster.toml` and `roster check-config`,
//! tenant ids from non-ASCII names, and `--help` listing only the options a command uses.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{bin, TestServer, USER_URN};

/// `roster ARGS` with none of Roster's variables set, in `cwd`.
fn roster(args: &[&str], cwd: &Path) -> Output {
    roster_env(args, cwd, &[])
}

fn roster_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(cwd).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("ROSTER_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run roster")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts a failure whose stderr is one `error: …` line containing `says`.
#[track_caller]
fn one_line_error(out: &Output, says: &str) {
    let err = text(&out.stderr);
    assert!(!out.status.success(), "expected a failure: {err}");
    assert!(err.contains(says), "expected {says:?} in: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
}

#[test]
fn an_unreachable_postgres_server_is_one_line_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let url = "postgres://roster:s3cret-pw@127.0.0.1:1/roster";
    for args in [
        vec!["tenant", "list", "--database", url],
        vec!["serve", "--listen", "127.0.0.1:0", "--database", url],
    ] {
        let out = roster(&args, dir.path());
        one_line_error(&out, "cannot connect to the PostgreSQL database");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("refused"), "says why: {err}");
        assert!(!err.contains("s3cret-pw"), "no password: {err}");
    }
}

#[test]
fn database_urls_are_checked_before_anything_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}/no/such/dir/roster.db", dir.path().display());
    let cases: Vec<(String, &str)> = vec![
        ("foo".into(), "did you mean sqlite://foo"),
        ("sqlite://".into(), "names no database file"),
        (missing, "mkdir -p"),
        ("postgres:roster".into(), "names no PostgreSQL server"),
        (
            "mysql://db.example.com/roster".into(),
            "unsupported database URL scheme `mysql:`",
        ),
        (
            format!("sqlite://{}", dir.path().display()),
            "is a directory",
        ),
    ];
    for (url, says) in &cases {
        let out = roster(&["tenant", "list", "--database", url], dir.path());
        one_line_error(&out, says);
        // The server refuses to start, rather than serving without its tables.
        let out = roster(
            &["serve", "--listen", "127.0.0.1:0", "--database", url],
            dir.path(),
        );
        one_line_error(&out, says);
        assert!(
            !text(&out.stdout).contains("listening"),
            "{url}: {}",
            text(&out.stdout)
        );
    }
    // Nothing was created by the refused URLs (`foo` used to create ./foo, -wal and -shm).
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    // The variable is checked the same way.
    let out = roster_env(
        &["tenant", "list"],
        dir.path(),
        &[("ROSTER_DATABASE_URL", "sqlite:")],
    );
    one_line_error(&out, "names no database file");
}

#[test]
fn unwritable_database_files_and_directories_are_refused() {
    // Read-only even for root: sysfs enforces its modes.
    let dir = tempfile::tempdir().unwrap();
    if Path::new("/sys/kernel/uevent_seqnum").exists() {
        let out = roster(
            &[
                "tenant",
                "list",
                "--database",
                "sqlite:///sys/kernel/uevent_seqnum",
            ],
            dir.path(),
        );
        one_line_error(&out, "cannot write to database file");
    }
    if Path::new("/sys/kernel").is_dir() {
        let out = roster(
            &[
                "tenant",
                "list",
                "--database",
                "sqlite:///sys/kernel/roster.db",
            ],
            dir.path(),
        );
        one_line_error(&out, "cannot create database file");
    }
}

#[tokio::test]
async fn the_cli_prints_the_public_url_the_server_recorded() {
    let conf = tempfile::tempdir().unwrap();
    let file = conf.path().join("roster.toml");
    // The flag the harness passes (`--listen 127.0.0.1:0`) wins over the file's `listen`.
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:1\"\npublic_url = \"https://scim.example.com/\"\nmax_body_bytes = 300\n",
    )
    .unwrap();
    let s = TestServer::start_with(&["--config", file.to_str().unwrap()]).await;
    let out = roster(
        &[
            "tenant",
            "create",
            "Société Générale",
            "--json",
            "--database",
            &s.db_url,
        ],
        conf.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t["tenant"], "societe-generale", "transliterated id: {t}");
    assert_eq!(
        t["scim_base_url"], "https://scim.example.com/scim/v2/societe-generale",
        "{t}"
    );
    assert!(
        !text(&out.stderr).contains("note:"),
        "{}",
        text(&out.stderr)
    );
    // So does the setup link.
    let out = roster(
        &[
            "tenant",
            "setup-link",
            "societe-generale",
            "--database",
            &s.db_url,
        ],
        conf.path(),
    );
    assert!(
        text(&out.stdout).contains("https://scim.example.com/console/setup/"),
        "{}",
        text(&out.stdout)
    );
    // The file's other values apply: a body above 300 bytes is a 413.
    let big = json!({"schemas": [USER_URN], "userName": "x".repeat(400)});
    s.post("/Users", &big).await.expect_error(413, None);
    // `--public-url` on the command wins over the recorded one.
    let out = roster(
        &[
            "token",
            "create",
            "societe-generale",
            "--json",
            "--database",
            &s.db_url,
            "--public-url",
            "https://other.example.com",
        ],
        conf.path(),
    );
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        t["scim_base_url"],
        "https://other.example.com/scim/v2/societe-generale"
    );
}

#[tokio::test]
async fn without_a_public_url_the_cli_says_which_url_it_assumed() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = roster(
        &[
            "tenant",
            "create",
            "Beta",
            "--json",
            "--database",
            &s.db_url,
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The port the server really listens on, not a fixed 8080.
    assert_eq!(t["scim_base_url"], format!("{}/scim/v2/beta", s.origin));
    let err = text(&out.stderr);
    assert!(
        err.contains("no public URL is set") && err.contains(&s.origin),
        "{err}"
    );
    assert!(err.contains("--public-url"), "says how to set it: {err}");

    // A database no server has run on: the default address, and a note that says so.
    let db = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let out = roster(
        &["tenant", "create", "Gamma", "--json", "--database", &db],
        dir.path(),
    );
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t["scim_base_url"], "http://127.0.0.1:8080/scim/v2/gamma");
    assert!(
        text(&out.stderr).contains("no `roster serve` has run"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_config_validates_a_file_before_a_deploy() {
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/roster.example.toml"
    );
    // The documented example is valid; variables apply on top, as `serve` would read them.
    let out = roster_env(
        &["check-config", "--config", example],
        dir.path(),
        &[("ROSTER_MAX_BODY_BYTES", "4096")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains(": ok"), "{shown}");
    assert!(
        shown.contains("public_url = \"https://scim.example.com\""),
        "{shown}"
    );
    assert!(shown.contains("max_body_bytes = 4096"), "{shown}");
    assert!(shown.contains("webhook_poll_ms = 1000"), "{shown}");
    // It left no database behind.
    assert!(!dir.path().join("roster.db").exists());

    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let typo = write(
        "typo.toml",
        "listen = \"127.0.0.1:8080\"\nlissten = \"x\"\n",
    );
    let out = roster(&["check-config", "--config", &typo], dir.path());
    one_line_error(&out, "line 2: unknown field `lissten`");
    let bad_type = write("type.toml", "max_body_bytes = \"big\"\n");
    one_line_error(
        &roster(&["check-config", "--config", &bad_type], dir.path()),
        "line 1: invalid type",
    );
    let pg = write("pg.toml", "database = \"postgres:roster\"\n");
    one_line_error(
        &roster(&["check-config", "--config", &pg], dir.path()),
        "names no PostgreSQL server",
    );
    let url = write("url.toml", "public_url = \"scim.example.com\"\n");
    one_line_error(
        &roster(&["check-config", "--config", &url], dir.path()),
        "must be http(s)://HOST[:PORT]",
    );
    // The database URL from a file (a secret), relative to the working directory.
    std::fs::write(dir.path().join("db-url"), "sqlite://from-file.db\n").unwrap();
    let secret = write("secret.toml", "database_file = \"db-url\"\n");
    let out = roster(&["check-config", "--config", &secret], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let missing = roster(&["check-config", "--config", "nope.toml"], dir.path());
    one_line_error(&missing, "nope.toml");
    // The CLI reads the database from the same file.
    let out = roster(&["tenant", "list", "--config", &secret], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("from-file.db").exists());
}

#[tokio::test]
async fn serve_reads_roster_toml_from_roster_config() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    crate::harness::new_key_file(dir.path());
    std::fs::write(
        dir.path().join("roster.toml"),
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite://{}\"\n\
             secret_key_file = \"secret.key\"\n",
            db.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(bin())
        .arg("serve")
        .current_dir(dir.path())
        .env("ROSTER_CONFIG", "roster.toml")
        .env_remove("ROSTER_DATABASE_URL")
        .env_remove("ROSTER_LISTEN")
        .env_remove("ROSTER_PUBLIC_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut l = String::new();
        std::io::BufReader::new(stdout).read_line(&mut l).unwrap();
        l
    });
    let line = tokio::time::timeout(Duration::from_secs(60), line)
        .await
        .expect("serve printed its address in time")
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    assert!(db.exists(), "the database named in roster.toml was created");
    // The CLI seals webhook secrets with the key file roster.toml names, as `serve` does.
    let env = [("ROSTER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true")];
    let args = [
        "webhook",
        "add",
        "http://127.0.0.1:9/hook",
        "--config",
        "roster.toml",
    ];
    let out = roster_env(&args, dir.path(), &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = roster(
        &["secret-key", "status", "--json", "--config", "roster.toml"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["key_file"], "secret.key", "{status}");
    let id = status["key_ids"][0].as_str().unwrap();
    assert_eq!(status["sealed_by_key"], json!({id: 1}), "{status}");
    assert!(
        !dir.path().join("r.db.key").exists(),
        "no default key file beside the database when one is configured"
    );
}

#[test]
fn help_lists_only_the_options_a_command_uses() {
    let dir = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| {
        let mut a = args.to_vec();
        a.push("--help");
        let out = roster(&a, dir.path());
        assert!(out.status.success(), "{a:?}");
        text(&out.stdout)
    };
    let sim = help(&["simulate"]);
    assert!(!sim.contains("--database"), "{sim}");
    assert!(!sim.contains("--public-url"), "{sim}");
    assert!(!sim.contains("--config"), "{sim}");
    let create = help(&["tenant", "create"]);
    assert!(create.contains("--database"), "{create}");
    assert!(create.contains("--public-url"), "{create}");
    let key = help(&["admin-key", "create"]);
    assert!(key.contains("--database"), "{key}");
    assert!(!key.contains("--public-url"), "{key}");
    let serve = help(&["serve"]);
    for flag in [
        "--config",
        "--listen",
        "--database",
        "--public-url",
        "--webhook-poll-ms",
    ] {
        assert!(serve.contains(flag), "{flag}: {serve}");
    }
    assert!(serve.contains("--secret-key-file"), "{serve}");
    assert!(help(&["webhook", "add"]).contains("--secret-key-file"));
    assert!(help(&["secret-key", "reseal"]).contains("--secret-key-file"));
    assert!(!create.contains("--secret-key-file"), "{create}");
    let top = help(&[]);
    assert!(!top.contains("--database"), "{top}");
}
