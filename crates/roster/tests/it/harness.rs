//! Starts the real `roster` binary on a random loopback port with a temporary database, creates
//! a tenant through the CLI, and speaks HTTP to it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use tempfile::TempDir;

/// The SCIM error message URN.
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// The core User schema URN.
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema URN.
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The enterprise User extension URN.
pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The ListResponse URN.
pub const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The PatchOp URN.
pub const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The SearchRequest URN.
pub const SEARCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// The SCIM media type.
pub const SCIM_JSON: &str = "application/scim+json";

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_roster")
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Raw body text.
    pub text: String,
    /// Body parsed as JSON (`Null` when empty or not JSON).
    pub json: Value,
}

impl Resp {
    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, printing the body on failure.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "expected status {status}, got {}: {}",
            self.status, self.text
        );
        self
    }

    /// Asserts a SCIM error response with the given status and (optional) scimType, with a
    /// non-empty detail and the SCIM media type.
    #[track_caller]
    pub fn expect_error(&self, status: u16, scim_type: Option<&str>) -> &Self {
        self.expect(status);
        assert_scim_error_body(self);
        assert_eq!(
            self.json["status"],
            json!(status.to_string()),
            "error status field: {}",
            self.text
        );
        if let Some(t) = scim_type {
            assert_eq!(self.json["scimType"], json!(t), "scimType: {}", self.text);
        }
        self
    }
}

/// Asserts that a response carries a well-formed SCIM error body (any status).
#[track_caller]
pub fn assert_scim_error_body(r: &Resp) {
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with(SCIM_JSON)),
        "error Content-Type is {:?}; body {}",
        r.header("content-type"),
        r.text
    );
    assert_eq!(
        r.json["schemas"],
        json!([ERROR_URN]),
        "error schemas: {}",
        r.text
    );
    assert!(
        r.json["status"].is_string(),
        "error status must be a string: {}",
        r.text
    );
    assert!(
        r.json["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "error detail must be a non-empty string: {}",
        r.text
    );
}

/// The database the suite runs against: `ROSTER_TEST_DATABASE=postgres` runs every server on a
/// PostgreSQL database of its own (created on the server `ROSTER_TEST_POSTGRES` names, default
/// the local one, and dropped afterwards); otherwise each server has a SQLite file.
pub fn on_postgres() -> bool {
    std::env::var("ROSTER_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

fn postgres_admin_url() -> String {
    std::env::var("ROSTER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A PostgreSQL database of its own for one server, dropped (with its connections) on drop.
pub struct PgDb {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl PgDb {
    /// Creates an empty database.
    pub fn create() -> Self {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!(
            "roster_it_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        psql(&format!("CREATE DATABASE {name}"));
        let admin = postgres_admin_url();
        let (base, query) = admin
            .split_once('?')
            .map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
        let cut = base
            .rfind('/')
            .filter(|i| *i > "postgres://".len())
            .unwrap_or(base.len());
        let mut url = format!("{}/{name}", &base[..cut]);
        if let Some(q) = query {
            url.push('?');
            url.push_str(q);
        }
        Self { name, url }
    }

    /// The database's rows as text (`pg_dump`), for checks that no secret is stored.
    pub fn dump(&self) -> Vec<u8> {
        let out = Command::new("pg_dump")
            .arg("--data-only")
            .arg(&self.url)
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .arg(postgres_admin_url())
        .args(["-qAtc", sql])
        .output()
        .expect("run psql (the PostgreSQL client)");
    assert!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes a key file with one new key (mode 0600) in `dir`; returns its path.
pub fn new_key_file(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("secret.key");
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_private(&path, &format!("# the test's key\n{key}\n"));
    path
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &std::path::Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("write the key file");
    f.write_all(text.as_bytes()).expect("write the key file");
}

/// `serve` flags that turn the SCIM rate limits off, for tests that create a thousand users
/// as fast as they can (the limits have their own tests, in `ratelimits.rs`).
pub const UNLIMITED: &[&str] = &[
    "--rate-limit-per-token",
    "0/s",
    "--rate-limit-per-tenant",
    "0/s",
];

/// A running `roster serve` with one tenant.
pub struct TestServer {
    child: Option<Child>,
    /// Temporary directory with the database (SQLite) and the captured stderr.
    pub dir: TempDir,
    /// `sqlite://…/roster.db`, or the server's PostgreSQL database (see [`on_postgres`]).
    pub db_url: String,
    /// The PostgreSQL database, when the suite runs on PostgreSQL.
    pub pg: Option<PgDb>,
    /// The key file that seals webhook secrets, given to the server and to the CLI's webhook
    /// and secret-key commands with `--secret-key-file`; `None`: the default (SQLite:
    /// `roster.db.key` beside the database).
    pub key_file: Option<PathBuf>,
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    /// The tenant id.
    pub tenant: String,
    /// The tenant's SCIM base URL.
    pub base: String,
    /// The tenant's token.
    pub token: String,
    /// HTTP client.
    pub client: reqwest::Client,
}

impl TestServer {
    /// Starts a server and creates tenant `acme`.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts a server with extra `serve` arguments and creates tenant `acme`.
    pub async fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = on_postgres().then(PgDb::create);
        let db_url = match &pg {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", dir.path().join("roster.db").display()),
        };
        let key_file = Some(new_key_file(dir.path()));
        let mut server = Self::launch(dir, db_url, pg, extra, key_file).await;
        server.add_tenant_acme();
        server
    }

    /// Starts another node on this server's database (several `roster serve` processes behind
    /// a load balancer), with extra `serve` arguments, talking to the same tenant with the
    /// same token. The database stays this server's: it goes when this server is dropped.
    pub async fn another_node(&self, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let key_file = self.key_file.clone();
        let mut node = Self::launch(dir, self.db_url.clone(), None, extra, key_file).await;
        node.tenant = self.tenant.clone();
        node.token = self.token.clone();
        node.base = self.base.replacen(&self.origin, &node.origin, 1);
        node
    }

    /// Starts a server on a SQLite file whatever [`on_postgres`] says (for tests about SQLite
    /// itself) and creates tenant `acme`.
    pub async fn start_sqlite() -> Self {
        Self::start_sqlite_with(&[]).await
    }

    /// [`Self::start_sqlite`] with extra `serve` arguments.
    pub async fn start_sqlite_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_url = format!("sqlite://{}", dir.path().join("roster.db").display());
        let key_file = Some(new_key_file(dir.path()));
        let mut server = Self::launch(dir, db_url, None, extra, key_file).await;
        server.add_tenant_acme();
        server
    }

    /// [`Self::start_with`], but neither the server nor the CLI is given a key file: on
    /// SQLite both use the default one beside the database (`roster.db.key`); on PostgreSQL
    /// there is none.
    pub async fn start_without_key_file(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = on_postgres().then(PgDb::create);
        let db_url = match &pg {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", dir.path().join("roster.db").display()),
        };
        let mut server = Self::launch(dir, db_url, pg, extra, None).await;
        server.add_tenant_acme();
        server
    }

    /// Starts a server on a database that already holds tenant `tenant` with bearer token
    /// `token` (one a copy filled), creating nothing.
    pub async fn start_on(db_url: String, pg: Option<PgDb>, tenant: &str, token: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let key_file = Some(new_key_file(dir.path()));
        let mut server = Self::launch(dir, db_url, pg, &[], key_file).await;
        server.tenant = tenant.to_owned();
        server.base = format!("{}/scim/v2/{tenant}", server.origin);
        server.token = token.to_owned();
        server
    }

    fn add_tenant_acme(&mut self) {
        let t = self.create_tenant("acme");
        self.tenant = t["tenant"].as_str().expect("tenant").to_owned();
        self.base = t["scim_base_url"].as_str().expect("base").to_owned();
        self.token = t["token"].as_str().expect("token").to_owned();
    }

    /// Starts `roster serve` on `db_url` and waits until it is healthy; no tenant yet.
    async fn launch(
        dir: TempDir,
        db_url: String,
        pg: Option<PgDb>,
        extra: &[&str],
        key_file: Option<PathBuf>,
    ) -> Self {
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("stderr file");
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--database")
            .arg(&db_url);
        if let Some(f) = &key_file {
            cmd.arg("--secret-key-file").arg(f);
        }
        let mut child = cmd
            .args(extra)
            .env_remove("ROSTER_SECRET_KEY_FILE")
            .env_remove("ROSTER_DATABASE_URL")
            .env_remove("ROSTER_DATABASE_URL_FILE")
            .env_remove("ROSTER_CONFIG")
            .env_remove("ROSTER_PUBLIC_URL")
            .env_remove("ROSTER_LISTEN")
            // The suite's webhook receivers listen on loopback; the test of the default
            // (public addresses only) passes `--webhook-allow-private-addresses=false`.
            .env("ROSTER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn roster serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so that the child never blocks on a full pipe.
            let mut sink = String::new();
            while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        let line = match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let log =
                    std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
                panic!("roster serve printed no first line in time; stderr:\n{log}");
            }
        };
        let origin = match line.trim().strip_prefix("listening on ") {
            Some(o) => o.trim_end_matches('/').to_owned(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let log =
                    std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
                panic!("unexpected first stdout line {line:?}; stderr:\n{log}");
            }
        };
        let mut client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60));
        // Served over TLS (`--tls-cert FILE`): the client trusts that certificate, and only it.
        if let Some(i) = extra.iter().position(|a| *a == "--tls-cert") {
            let pem = std::fs::read(extra[i + 1]).expect("the test's certificate");
            client = client
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"));
        }
        let client = client.build().expect("client");
        let server = Self {
            child: Some(child),
            dir,
            db_url,
            pg,
            key_file,
            origin,
            tenant: String::new(),
            base: String::new(),
            token: String::new(),
            client,
        };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(r) = self
                .client
                .get(format!("{}/healthz", self.origin))
                .send()
                .await
            {
                if r.status().as_u16() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "server never became healthy; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the database holds, as bytes: the SQLite file and its write-ahead log, or a
    /// dump of the PostgreSQL database's rows. For checks that a secret is stored nowhere.
    pub fn database_bytes(&self) -> Vec<u8> {
        if let Some(db) = &self.pg {
            return db.dump();
        }
        let mut bytes = Vec::new();
        for f in ["roster.db", "roster.db-wal"] {
            if let Ok(b) = std::fs::read(self.dir.path().join(f)) {
                bytes.extend(b);
            }
        }
        bytes
    }

    /// The key file in use: the one given, else the default beside the SQLite database.
    pub fn key_file_in_use(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.dir.path().join("roster.db.key"))
    }

    /// The keys (hex) of the key file in use.
    pub fn secret_keys(&self) -> Vec<String> {
        std::fs::read_to_string(self.key_file_in_use())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split('#').next())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Runs the CLI against this server's database (and public URL, for the commands that
    /// print base URLs and links: `tenant`, `scim`, `token`).
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(bin());
        cmd.args(args).arg("--database").arg(&self.db_url);
        if matches!(args.first(), Some(&("tenant" | "scim" | "token"))) {
            cmd.arg("--public-url").arg(&self.origin);
        }
        if let Some(f) = self
            .key_file
            .as_ref()
            .filter(|_| matches!(args.first(), Some(&("webhook" | "secret-key"))))
        {
            cmd.arg("--secret-key-file").arg(f);
        }
        cmd.env_remove("ROSTER_DATABASE_URL")
            .env_remove("ROSTER_SECRET_KEY_FILE")
            .env_remove("ROSTER_DATABASE_URL_FILE")
            .env_remove("ROSTER_CONFIG")
            .env("ROSTER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true")
            .env_remove("ROSTER_PUBLIC_URL")
            .stdin(Stdio::null())
            .output()
            .expect("run roster CLI")
    }

    /// Runs the CLI and asserts success; returns stdout.
    #[track_caller]
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "roster {args:?} failed: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// `roster tenant create NAME --json`, parsed.
    #[track_caller]
    pub fn create_tenant(&self, name: &str) -> Value {
        let out = self.cli_ok(&["tenant", "create", name, "--json"]);
        serde_json::from_str(out.trim()).expect("tenant create --json prints one JSON object")
    }

    /// `roster token rotate TENANT --json`, parsed.
    #[track_caller]
    pub fn rotate(&self, tenant: &str, extra: &[&str]) -> Value {
        let mut args = vec!["token", "rotate", tenant, "--json"];
        args.extend_from_slice(extra);
        let out = self.cli_ok(&args);
        serde_json::from_str(out.trim()).expect("token rotate --json prints one JSON object")
    }

    /// The server's stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// The path of the captured stderr.
    pub fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("child").id()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let pid = self.pid();
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -TERM failed");
        self.wait_exit(within)
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill -9");
            let _ = c.wait();
        }
    }

    /// Waits (bounded) for the child to exit.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("child");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "roster did not exit within {within:?}"
            );
            #[allow(clippy::disallowed_methods)]
            // a synchronous poll in test code, off the runtime
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An absolute URL: paths starting with `/` are relative to the tenant's base URL.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// A request with the tenant's bearer token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    /// Sends a request and reads the response whole.
    pub async fn send(&self, rb: RequestBuilder) -> Resp {
        let r = rb.send().await.expect("send request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.expect("read body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        let mut rb = self.request(method, path);
        if let Some(b) = body {
            rb = rb
                .header("content-type", SCIM_JSON)
                .body(serde_json::to_vec(b).expect("serialize"));
        }
        self.send(rb).await
    }

    /// GET with the token.
    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }

    /// GET with query parameters (encoded by the client).
    pub async fn get_q(&self, path: &str, query: &[(&str, &str)]) -> Resp {
        self.send(self.request(Method::GET, path).query(query))
            .await
    }

    /// POST a JSON body as `application/scim+json`.
    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }

    /// PUT a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// PATCH a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates a user, asserting 201; returns the body.
    pub async fn create_user(&self, body: &Value) -> Value {
        let r = self.post("/Users", body).await;
        r.expect(201);
        r.json
    }

    /// Creates a minimal user named `name`; returns its id.
    pub async fn user(&self, name: &str) -> String {
        let v = self.create_user(&user_body(name)).await;
        v["id"].as_str().expect("user id").to_owned()
    }

    /// Creates a group with the given member ids; returns the body.
    pub async fn create_group(&self, name: &str, members: &[&str]) -> Value {
        let r = self.post("/Groups", &group_body(name, members)).await;
        r.expect(201);
        r.json
    }

    /// Lists with a filter; asserts 200 and returns the body.
    pub async fn filter(&self, endpoint: &str, filter: &str) -> Value {
        let r = self.get_q(endpoint, &[("filter", filter)]).await;
        r.expect(200);
        r.json
    }

    /// PATCH with the given operations.
    pub async fn patch_ops(&self, path: &str, ops: Value) -> Resp {
        self.patch(path, &json!({"schemas": [PATCH_URN], "Operations": ops}))
            .await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Every test's server log, checked black-box for secrets (issue 12): no token, admin
        // key, setup link, webhook secret, session cookie or password hash in any line. Not
        // while a test is already failing: its own panic says more.
        if !std::thread::panicking() {
            let log = self.stderr();
            if let Some(found) = secret_in(&log) {
                panic!("a secret reached the server log: {found:?}\n{log}");
            }
            // Nor a key of the key file that seals webhook secrets.
            for key in self.secret_keys() {
                assert!(
                    !log.contains(&key) && !log.contains(&key.to_uppercase()),
                    "a key of the secret key file reached the server log:\n{log}"
                );
            }
        }
    }
}

/// The first secret-looking string in `text`: a whole SCIM token (`rsct_ID_SECRET`; its
/// public prefix `rsct_ID` alone is fine), a whole admin key (`rsak_ID_SECRET`), a setup-link
/// token (`rssl_…`), a webhook secret (`whsec_…`), a console session cookie's value, or an
/// Argon2 hash.
pub fn secret_in(text: &str) -> Option<String> {
    let alnum_run = |s: &str| s.bytes().take_while(u8::is_ascii_alphanumeric).count();
    for (marker, id_len, min_secret) in [("rsct_", 8, 20), ("rsak_", 8, 20)] {
        for (i, _) in text.match_indices(marker) {
            let rest = &text[i + marker.len()..];
            if alnum_run(rest) == id_len && rest[id_len..].starts_with('_') {
                let secret = alnum_run(&rest[id_len + 1..]);
                if secret >= min_secret {
                    return Some(text[i..i + marker.len() + id_len + 1 + secret].to_owned());
                }
            }
        }
    }
    for (marker, min) in [
        ("rssl_", 20),
        ("whsec_", 16),
        ("roster_console=", 16),
        ("roster_console_pre=", 16),
    ] {
        for (i, _) in text.match_indices(marker) {
            let run = alnum_run(&text[i + marker.len()..]);
            if run >= min {
                // ASCII up to the end of the run: a valid slice.
                return Some(text[i..i + marker.len() + run].to_owned());
            }
        }
    }
    text.contains("$argon2id$").then(|| "$argon2id$".to_owned())
}

#[test]
fn the_secret_scan_finds_secrets_and_lets_prefixes_through() {
    assert_eq!(
        secret_in("token refused token_prefix=rsct_AbCd1234 tenant=acme"),
        None
    );
    assert!(secret_in("Bearer rsct_AbCd1234_0123456789abcdefghijABCDEFGHIJ").is_some());
    assert!(secret_in("key rsak_AbCd1234_0123456789abcdefghijABCDEFGHIJ0123456789").is_some());
    assert_eq!(
        secret_in("key_prefix=rsak_AbCd1234 admin key refused"),
        None
    );
    assert!(secret_in("GET /console/setup/rssl_0123456789abcdefghijABCDEFGHIJ").is_some());
    assert_eq!(secret_in("path=/console/setup/rssl_…"), None);
    assert!(secret_in("secret whsec_0123456789abcdef0123").is_some());
    assert!(secret_in("cookie: roster_console=0123456789abcdef0123456789").is_some());
    assert!(secret_in("$argon2id$v=19$m=19456").is_some());
}

/// A minimal User body.
pub fn user_body(name: &str) -> Value {
    json!({"schemas": [USER_URN], "userName": name})
}

/// A Group body with members.
pub fn group_body(name: &str, members: &[&str]) -> Value {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    json!({"schemas": [GROUP_URN], "displayName": name, "members": members})
}

/// A User with every commonly used attribute, the enterprise extension included.
pub fn full_user(name: &str, manager: Option<&str>) -> Value {
    let mut v = json!({
        "schemas": [USER_URN, ENTERPRISE_URN],
        "userName": name,
        "externalId": format!("ext-{name}"),
        "name": {
            "formatted": "Ms. Barbara J Jensen III",
            "familyName": "Jensen",
            "givenName": "Barbara",
            "middleName": "Jane",
            "honorificPrefix": "Ms.",
            "honorificSuffix": "III"
        },
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "title": "Tour Guide",
        "userType": "Employee",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": true,
        "emails": [
            {"value": format!("{name}@example.com"), "type": "work", "primary": true},
            {"value": format!("{name}@home.example.org"), "type": "home"}
        ],
        "phoneNumbers": [
            {"value": "555-555-5555", "type": "work"},
            {"value": "555-555-4444", "type": "mobile"}
        ],
        "addresses": [{
            "type": "work",
            "streetAddress": "100 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "US",
            "primary": true
        }],
        ENTERPRISE_URN: {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "organization": "Universal Studios",
            "division": "Theme Park",
            "department": "Tour Operations"
        }
    });
    if let Some(m) = manager {
        v[ENTERPRISE_URN]["manager"] = json!({"value": m});
    }
    v
}

/// The `id`s of a ListResponse's `Resources`.
pub fn ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes ANSI escape sequences (log lines may be coloured).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Compares two JSON documents ignoring `meta` (for round trips).
pub fn without_meta(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("meta");
    }
    v
}

/// Asserts that `actual` contains everything in `expected`: objects key by key (extra keys
/// allowed), arrays element by element (same length), scalars equal.
#[track_caller]
pub fn assert_subset(actual: &Value, expected: &Value) {
    fn walk(actual: &Value, expected: &Value, path: &str) -> Result<(), String> {
        match (actual, expected) {
            (Value::Object(a), Value::Object(e)) => {
                for (k, ev) in e {
                    let av = a
                        .iter()
                        .find(|(ak, _)| ak.eq_ignore_ascii_case(k))
                        .map(|(_, v)| v)
                        .ok_or_else(|| format!("{path}.{k} is missing"))?;
                    walk(av, ev, &format!("{path}.{k}"))?;
                }
                Ok(())
            }
            (Value::Array(a), Value::Array(e)) => {
                if a.len() != e.len() {
                    return Err(format!(
                        "{path}: {} elements, expected {}",
                        a.len(),
                        e.len()
                    ));
                }
                for (i, (av, ev)) in a.iter().zip(e).enumerate() {
                    walk(av, ev, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            (a, e) if a == e => Ok(()),
            (a, e) => Err(format!("{path}: {a} != expected {e}")),
        }
    }
    if let Err(e) = walk(actual, expected, "") {
        panic!("{e}\nactual: {actual:#}\nexpected: {expected:#}");
    }
}
