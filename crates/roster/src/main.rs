//! The `roster` binary: runs the server and administers tenants and tokens.
//!
//! Every command that needs the database opens it itself (`--database`, `ROSTER_DATABASE_URL`,
//! or `database` in the `--config` file), so the administrative commands work while a server
//! is running on the same file: SQLite in WAL mode lets them write beside it. The URL is
//! checked first ([`database`]), so that a wrong one is a one-line error, not a surprise.
//!
//! Each command takes only the options it uses: `--database` and `--config` where the
//! database is opened, `--public-url` where base URLs and links are printed, neither for
//! `simulate`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use roster_server::{AppState, Settings};
use roster_store::meta::{LISTEN_URL, PUBLIC_URL};
use roster_store::postgres::PostgresStore;
use roster_store::sqlite::SqliteStore;
use roster_store::Store;

mod app_cli;
mod backup_cli;
mod branding_cli;
mod config;
mod cycle;
mod database;
mod db_cli;
mod operator_cli;
mod ops;
mod secret_key_cli;
mod simulate;
mod tenants_cli;

#[derive(Parser, Debug)]
#[command(
    name = "roster",
    version,
    about = "Roster: a SCIM 2.0 provisioning server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the database is, for every command that opens it.
#[derive(clap::Args, Debug, Clone, Default)]
struct DbArgs {
    /// Database URL: sqlite://PATH [default: `database` in the --config file, else
    /// sqlite://roster.db].
    #[arg(long, global = true, env = "ROSTER_DATABASE_URL")]
    database: Option<String>,
    /// A file whose content is the database URL.
    #[arg(
        long,
        global = true,
        env = "ROSTER_DATABASE_URL_FILE",
        conflicts_with = "database"
    )]
    database_file: Option<PathBuf>,
    /// The server's roster.toml, to read `database` (and `public_url`) from.
    #[arg(long, global = true, env = "ROSTER_CONFIG")]
    config: Option<PathBuf>,
}

impl DbArgs {
    /// The flags and variables over the config file over the defaults.
    fn settings(&self) -> Result<config::ServeSettings> {
        let cli = config::ServeSettings {
            database: self.database.clone(),
            database_file: self.database_file.clone(),
            ..config::ServeSettings::default()
        };
        config::resolve(cli, self.config.as_deref())
    }

    async fn open(&self) -> Result<Arc<dyn Store>> {
        open(&self.settings()?.database_url()?).await
    }

    /// The key file given (`--secret-key-file`, else `secret_key_file` in the config file)
    /// and the database it is for.
    fn key_file(
        &self,
        keys: &secret_key_cli::KeyArgs,
    ) -> Result<(Option<PathBuf>, database::Target)> {
        let s = self.settings()?;
        let target = database::parse(&s.database_url()?).map_err(|e| anyhow!(e))?;
        Ok((keys.secret_key_file.clone().or(s.secret_key_file), target))
    }
}

/// The public URL, for commands that print base URLs and links.
#[derive(clap::Args, Debug, Clone, Default)]
struct UrlArgs {
    /// The URL identity providers reach Roster at, e.g. https://scim.example.com [default:
    /// `public_url` in the --config file, else the one `roster serve` recorded in the
    /// database].
    #[arg(long, global = true, env = "ROSTER_PUBLIC_URL")]
    public_url: Option<String>,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process: its size does not matter
enum Command {
    /// Run the SCIM server.
    Serve {
        /// roster.toml holding any of the options below (flags and variables win over it).
        #[arg(long, env = "ROSTER_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: config::ServeSettings,
    },
    /// Check a roster.toml (with the ROSTER_* variables that `serve` would read) before a
    /// deploy, and print the configuration `serve` would run with.
    CheckConfig {
        /// The file to check.
        #[arg(long, env = "ROSTER_CONFIG")]
        config: PathBuf,
    },
    /// Manage tenants.
    Tenant {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        url: UrlArgs,
        #[command(subcommand)]
        command: tenants_cli::TenantCommand,
    },
    /// Show the custom schemas declared for every tenant, or replace them all from a JSON
    /// file (`-` for standard input): the body of `PUT /api/v1/custom-schemas`,
    /// `{"schemas": [...]}`. A tenant's own schema with the same URN overrides a global one.
    #[command(name = "custom-schemas")]
    CustomSchemas {
        #[command(flatten)]
        db: DbArgs,
        /// Replace the declarations with those in FILE.
        #[arg(long, value_name = "FILE", conflicts_with = "clear")]
        set: Option<PathBuf>,
        /// Remove every global declaration (refused while attributes hold values, unless
        /// forced).
        #[arg(long)]
        clear: bool,
        /// Make the change even when removed or retyped attributes hold values: those values
        /// are converted where they keep their meaning, and erased otherwise.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Enable or disable SCIM for a tenant.
    Scim {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        url: UrlArgs,
        #[command(subcommand)]
        command: tenants_cli::ScimCommand,
    },
    /// Manage a tenant's bearer tokens.
    Token {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        url: UrlArgs,
        #[command(subcommand)]
        command: tenants_cli::TokenCommand,
    },
    /// Play an identity provider's provisioning cycle against any SCIM server.
    Simulate(SimulateArgs),
    /// Manage operator API keys for the admin API (`/api/v1`).
    AdminKey {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        command: ops::AdminKeyCommand,
    },
    /// The vendor's branding of the IT admin's console pages: brand name, logo, accent
    /// colour (stored in the database: every server on it shows the same).
    Branding {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        command: branding_cli::BrandingCommand,
    },
    /// Manage operator accounts for the web console (`/console`).
    Operator {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        command: operator_cli::OperatorCommand,
    },
    /// Manage webhook endpoints.
    Webhook {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: secret_key_cli::KeyArgs,
        #[command(subcommand)]
        command: ops::WebhookCommand,
    },
    /// The key file that seals webhook signing secrets at rest: rotate its key, re-seal the
    /// stored secrets, show which keys they use (docs/security.md, "Secrets at rest").
    SecretKey {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: secret_key_cli::KeyArgs,
        #[command(subcommand)]
        command: secret_key_cli::SecretKeyCommand,
    },
    /// Show a tenant's provisioning log (one line per write or failed SCIM request), oldest
    /// first; with `--reads`, the successful reads counted per route and minute.
    Log {
        #[command(flatten)]
        db: DbArgs,
        /// Tenant id.
        tenant: String,
        /// Keep printing new requests as they arrive.
        #[arg(long)]
        follow: bool,
        /// Only failed requests.
        #[arg(long)]
        failures: bool,
        /// The counts of successful reads (GET, POST .search) per route and minute instead,
        /// and how many log rows were dropped because the log's queue stayed full.
        #[arg(long, conflicts_with_all = ["follow", "failures"])]
        reads: bool,
        /// How many of the latest requests to show first (1–10000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        limit: u64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Users: import existing app users (not managed by SCIM); erase one's personal data.
    #[command(alias = "user")]
    Users {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        command: app_cli::UsersCommand,
    },
    /// The mass-deprovisioning guard: status, confirm or reject a held batch.
    Guard {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        command: app_cli::GuardCommand,
    },
    /// The role catalogue: the roles the host app declares (list, add, remove).
    Roles {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        command: app_cli::RolesCommand,
    },
    /// The first-sync review: status, approve or discard a held first sync.
    #[command(name = "first-sync")]
    FirstSync {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        command: app_cli::FirstSyncCommand,
    },
    /// Merge a JSON object into a tenant's settings (stop-gap until the tenants API).
    #[command(hide = true)]
    DevSettings {
        #[command(flatten)]
        db: DbArgs,
        /// Tenant id.
        tenant: String,
        /// A JSON object of settings, e.g. '{"sso_enforced": true}'.
        settings: String,
    },
    /// Whole-database operations: `db copy` moves an installation from SQLite to PostgreSQL.
    Db {
        #[command(subcommand)]
        command: db_cli::DbCommand,
    },
    /// Copy the SQLite database to a file while the server runs: a consistent snapshot
    /// (SQLite's online backup API) of the moment it starts. For PostgreSQL, use pg_dump.
    Backup {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        args: backup_cli::BackupArgs,
    },
    /// Put a backup made by `roster backup` in place of the SQLite database: the file is
    /// checked first (integrity check, Roster's migrations), and a database that a running
    /// server has open is refused.
    Restore {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        args: backup_cli::RestoreArgs,
    },
    /// Print a tenant's events as JSON lines, in seq order.
    Events {
        #[command(flatten)]
        db: DbArgs,
        /// Tenant id.
        tenant: String,
        /// Only events with a seq greater than this (0 or more).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
        after: i64,
        /// Keep printing new events as they are committed.
        #[arg(long)]
        follow: bool,
    },
}

#[derive(clap::Args, Debug)]
struct SimulateArgs {
    /// The identity provider whose recorded cycle to play.
    #[arg(long, value_parser = cycle::IDPS)]
    idp: String,
    /// The SCIM base URL, e.g. https://scim.example.com/scim/v2/acme.
    #[arg(long)]
    target: String,
    /// The bearer token.
    #[arg(long, env = "ROSTER_SIMULATE_TOKEN", hide_env_values = true)]
    token: String,
    /// Users to provision (default: the recorded cycle's).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    users: Option<usize>,
    /// Groups to provision (default: the recorded cycle's).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=100_000))]
    groups: Option<usize>,
    /// Members per group, taken from the users (default: the recorded cycle's).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=1_000_000))]
    members_per_group: Option<usize>,
    /// Requests in flight within a step that the identity provider runs in parallel (each
    /// user's, group's or membership's request is independent: creating users, adding
    /// members); the steps themselves still run one after the other, in the recorded order.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Play only the initial cycle: the steps the recorded cycle marks as the first
    /// provisioning of a tenant (matching and creating users and groups, adding members), none
    /// of the updates and deletes, so that what it created stays on the server.
    #[arg(long)]
    initial: bool,
    /// Per-request timeout in seconds (1–3600).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout_secs: u64,
    /// Print one JSON report instead of text.
    #[arg(long)]
    json: bool,
}

fn init_logging(format: config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == config::LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The origin (scheme and host) for the base URLs and links a command prints: `--public-url`
/// (or `public_url` in the config file), else the public URL `roster serve` recorded in the
/// database. Without either, the address the server last listened on (or the default one) is
/// assumed, and a note on stderr says so and how to set it.
async fn origin(store: &dyn Store, db: &DbArgs, url: &UrlArgs) -> Result<String> {
    let given = match &url.public_url {
        Some(u) => Some(u.clone()),
        None => db.settings()?.public_url,
    };
    if let Some(u) = given {
        return config::check_public_url(&u).map_err(|e| anyhow!(e));
    }
    if let Some(u) = store.meta(PUBLIC_URL).await? {
        return Ok(u);
    }
    let (assumed, why) = match store.meta(LISTEN_URL).await? {
        Some(l) => (l, "the address `roster serve` last listened on"),
        None => (
            "http://127.0.0.1:8080".to_owned(),
            "the default address; no `roster serve` has run on this database yet",
        ),
    };
    eprintln!(
        "note: no public URL is set, so the URLs below assume {assumed} ({why}); an identity \
         provider needs the HTTPS URL it reaches Roster at: start the server with \
         `roster serve --public-url https://scim.example.com` (or `public_url` in roster.toml) \
         and the CLI uses the one it records"
    );
    Ok(assumed)
}

/// `http://ADDR` (or `https://` when serving TLS) for a listening address; an unspecified
/// address (`0.0.0.0`, `::`) is reachable on loopback.
fn listen_url(addr: SocketAddr, tls: bool) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
}

/// What `serve` says at start about the keys of webhook secrets: the key file, and the stored
/// secrets that are in clear (for `roster secret-key reseal`, which `serve` does not run
/// itself: in a rolling upgrade, nodes of the previous version would sign with the sealed
/// text) or sealed with a key this node does not hold.
async fn secret_keys_at_start(
    store: &dyn Store,
    keys: &roster_server::secretbox::KeyRing,
) -> Result<()> {
    use roster_server::secretbox::KeySource;
    match keys.source() {
        KeySource::File(f) => {
            tracing::info!(file = %f.display(), key_ids = ?keys.key_ids(), "webhook secrets are sealed with the secret key file");
        }
        KeySource::Memory => {}
        KeySource::Absent => tracing::warn!(
            "no --secret-key-file: creating or rotating a webhook is refused until every node              is given the same key file (docs/security.md, \"Secrets at rest\")"
        ),
    }
    let hooks = store
        .list_webhooks()
        .await
        .context("reading the webhooks")?;
    let (clear, by_key) = secret_key_cli::usage(&hooks);
    if clear > 0 {
        tracing::warn!(
            secrets = clear,
            "webhook signing secrets are stored in clear (written before they were sealed); \
             once every node runs this version, run `roster secret-key reseal`"
        );
    }
    let held = keys.key_ids();
    let missing: Vec<&String> = by_key.keys().filter(|id| !held.contains(id)).collect();
    if !missing.is_empty() {
        tracing::warn!(
            key_ids = ?missing,
            "webhook secrets are sealed with keys this node's key file does not hold: their \
             deliveries fail until those keys are added back to the file"
        );
    }
    Ok(())
}

/// Checks the database URL ([`database::check`]), then opens the store.
async fn open(url: &str) -> Result<Arc<dyn Store>> {
    let target = database::check(url).map_err(|e| anyhow!(e))?;
    // The URL may hold a password: name the database without it.
    let shown = redact(url);
    let store: Arc<dyn Store> = match target {
        database::Target::Postgres => Arc::new(
            PostgresStore::open(url)
                .await
                .with_context(|| format!("opening database {shown}"))?,
        ),
        database::Target::SqliteFile(_) | database::Target::SqliteMemory => Arc::new(
            SqliteStore::open(url)
                .await
                .with_context(|| format!("opening database {shown}"))?,
        ),
    };
    // Every tenant's types include the custom schemas declared for all of them.
    roster_store::load_global_custom_schemas(store.as_ref())
        .await
        .with_context(|| format!("reading the global custom schemas of {shown}"))?;
    Ok(store)
}

/// `url` with the password of its user info (`scheme://user:password@host`) replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((info, host)) if info.contains(':') => {
            let user = info.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// The resolved `serve` settings, checked: the database URL (without opening it) and the
/// public URL.
fn checked(s: &config::ServeSettings) -> Result<(String, Option<String>)> {
    let url = s.database_url()?;
    database::check(&url).map_err(|e| anyhow!(e))?;
    check_ranges(s)?;
    rate_settings(s)?;
    trusted_proxies(s)?;
    match (&s.tls_cert, &s.tls_key) {
        (Some(_), None) | (None, Some(_)) => {
            bail!("--tls-cert and --tls-key go together: give both files (PEM), or neither")
        }
        (Some(cert), Some(key)) => {
            roster_server::tls::CertStore::load(cert, key).map_err(|e| anyhow!(e))?;
        }
        (None, None) => {}
    }
    if let Some(f) = &s.secret_key_file {
        roster_server::secretbox::KeyRing::load(f).map_err(|e| anyhow!("{e} (secret_key_file)"))?;
    }
    if s.public_url.is_none() {
        if let Some(listen) = s.listen.filter(|l| !l.ip().is_loopback()) {
            bail!(
                "listening on {listen}, beyond this machine, needs --public-url (the https URL \
                 identity providers and browsers use, e.g. https://scim.example.com): without \
                 it base URLs and setup links would have to come from each request's Host \
                 header, which the client chooses"
            );
        }
    }
    let public = match &s.public_url {
        Some(u) => Some(config::check_public_url(u).map_err(|e| anyhow!(e))?),
        None => None,
    };
    Ok((url, public))
}

/// Every number of `serve`'s settings within its range, whichever layer set it (a flag's
/// parser does not see `roster.toml`).
fn check_ranges(s: &config::ServeSettings) -> Result<()> {
    const HOUR_MS: u64 = 3_600_000;
    let u = |v: Option<usize>| v.map(|v| u64::try_from(v).unwrap_or(u64::MAX));
    let checks: [(&str, Option<u64>, u64, u64); 15] = [
        ("max_body_bytes", u(s.max_body_bytes), 1, 1 << 30),
        ("bulk_max_operations", u(s.bulk_max_operations), 1, 100_000),
        (
            "header_read_timeout_ms",
            s.header_read_timeout_ms,
            100,
            HOUR_MS,
        ),
        ("body_read_timeout_ms", s.body_read_timeout_ms, 100, HOUR_MS),
        ("request_timeout_ms", s.request_timeout_ms, 100, HOUR_MS),
        ("max_connections", u(s.max_connections), 1, 1_000_000),
        ("log_retention_days", s.log_retention_days, 1, 3650),
        (
            "token_check_interval_ms",
            s.token_check_interval_ms,
            10,
            24 * HOUR_MS,
        ),
        ("token_use_flush_ms", s.token_use_flush_ms, 10, HOUR_MS),
        ("webhook_retry_base_ms", s.webhook_retry_base_ms, 1, HOUR_MS),
        (
            "webhook_retry_max_ms",
            s.webhook_retry_max_ms,
            1,
            24 * HOUR_MS,
        ),
        (
            "webhook_retry_horizon_secs",
            s.webhook_retry_horizon_secs,
            1,
            30 * 86_400,
        ),
        ("webhook_timeout_ms", s.webhook_timeout_ms, 1, 10 * 60_000),
        ("webhook_poll_ms", s.webhook_poll_ms, 10, HOUR_MS),
        ("webhook_lease_ms", s.webhook_lease_ms, 1, HOUR_MS),
    ];
    for (name, value, min, max) in checks {
        if let Some(v) = value.filter(|v| !(min..=max).contains(v)) {
            bail!("{name} must be {min}–{max}, not {v}");
        }
    }
    if let Some(n) = s
        .max_filter_candidates
        .filter(|n| !(1..=10_000_000).contains(n))
    {
        bail!("max_filter_candidates must be 1–10000000, not {n}");
    }
    Ok(())
}

/// The rate limits of `serve`'s settings (defaults layered under them), checked.
fn rate_settings(s: &config::ServeSettings) -> Result<roster_server::ratelimit::RateSettings> {
    use roster_server::ratelimit::Rate;
    let mut r = roster_server::ratelimit::RateSettings::default();
    let parse = |name: &str, v: &Option<String>, into: &mut Rate| -> Result<()> {
        if let Some(v) = v {
            *into = v.parse().map_err(|e: String| anyhow!("{name}: {e}"))?;
        }
        Ok(())
    };
    parse(
        "rate_limit_per_token",
        &s.rate_limit_per_token,
        &mut r.scim_per_token,
    )?;
    parse(
        "rate_limit_per_tenant",
        &s.rate_limit_per_tenant,
        &mut r.scim_per_tenant,
    )?;
    parse(
        "rate_limit_auth_failures",
        &s.rate_limit_auth_failures,
        &mut r.scim_auth_failures,
    )?;
    r.admin_auth_failures = r.scim_auth_failures;
    parse(
        "rate_limit_admin_key",
        &s.rate_limit_admin_key,
        &mut r.admin_per_key,
    )?;
    parse("rate_limit_sign_in", &s.rate_limit_sign_in, &mut r.sign_in)?;
    if let Some(n) = s.max_filter_candidates {
        if n == 0 {
            bail!("max_filter_candidates must be at least 1");
        }
        r.max_candidates = n;
    }
    Ok(r)
}

/// `--trusted-proxy`, parsed: CIDRs, or single addresses (a /32 or /128).
fn trusted_proxies(s: &config::ServeSettings) -> Result<Vec<roster_server::ratelimit::IpNet>> {
    s.trusted_proxy
        .iter()
        .flatten()
        .map(|t| {
            let t = t.trim();
            t.parse::<roster_server::ratelimit::IpNet>()
                .or_else(|_| {
                    t.parse::<std::net::IpAddr>()
                        .map(roster_server::ratelimit::IpNet::from)
                })
                .map_err(|_| {
                    anyhow!("trusted_proxy: {t:?} is not a CIDR such as 10.0.0.0/8 or an address")
                })
        })
        .collect()
}

/// `roster check-config`: the file parsed (unknown keys refused), the variables applied, the
/// values checked, and the result printed as TOML.
fn check_config(path: &std::path::Path) -> Result<()> {
    // The variables `serve` reads, through the same parser, with no flags.
    let cli = Cli::try_parse_from(["roster", "serve"]).map_err(|e| anyhow!("{e}"))?;
    let Command::Serve { settings, .. } = cli.command else {
        bail!("internal: `serve` did not parse as serve");
    };
    let s = config::resolve(settings, Some(path))?;
    checked(&s)?;
    println!("# {}: ok; `roster serve` would run with:", path.display());
    print!(
        "{}",
        toml::to_string(&s).context("printing the configuration")?
    );
    Ok(())
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Simulate(a) => {
            let ok = simulate::run(simulate::Options {
                idp: a.idp,
                target: a.target,
                token: a.token,
                users: a.users,
                groups: a.groups,
                members_per_group: a.members_per_group,
                concurrency: usize::from(a.concurrency),
                initial: a.initial,
                json: a.json,
                timeout: std::time::Duration::from_secs(a.timeout_secs),
            })
            .await?;
            if !ok {
                bail!("the simulated cycle failed");
            }
        }
        Command::Serve { config, settings } => {
            let s = config::resolve(settings, config.as_deref())?;
            let (url, public_url) = checked(&s)?;
            // `resolve` layered the defaults under everything: every value is set.
            let ms =
                |v: Option<u64>, min: u64| Duration::from_millis(v.unwrap_or_default().max(min));
            init_logging(s.log_format.unwrap_or(config::LogFormat::Text));
            let store = open(&url).await?;
            let target = database::parse(&url).map_err(|e| anyhow!(e))?;
            let keys = secret_key_cli::ring(s.secret_key_file.as_deref(), &target, |w| {
                tracing::warn!("{w}");
            })?;
            secret_keys_at_start(store.as_ref(), &keys).await?;
            let mut settings = Settings {
                public_url: public_url.clone(),
                max_body_bytes: s.max_body_bytes.unwrap_or_default(),
                bulk_max_operations: s.bulk_max_operations.unwrap_or(1000),
                token_check_interval: ms(s.token_check_interval_ms, 10),
                token_use_flush_interval: ms(s.token_use_flush_ms, 10),
                ..Settings::default()
            };
            settings.tls = match (&s.tls_cert, &s.tls_key) {
                (Some(cert), Some(key)) => {
                    Some(roster_server::tls::CertStore::load(cert, key).map_err(|e| anyhow!(e))?)
                }
                _ => None,
            };
            settings.secret_keys = Arc::new(keys);
            settings.rate = rate_settings(&s)?;
            settings.trusted_proxies = trusted_proxies(&s)?;
            settings.limits = roster_server::conn::Limits {
                header_read: ms(s.header_read_timeout_ms, 100),
                body_read: ms(s.body_read_timeout_ms, 100),
                request: ms(s.request_timeout_ms, 100),
                max_connections: s.max_connections.unwrap_or_default().max(1),
            };
            let w = &mut settings.webhooks;
            w.retry_base = ms(s.webhook_retry_base_ms, 1);
            w.retry_max = ms(s.webhook_retry_max_ms, 1);
            w.horizon = Duration::from_secs(s.webhook_retry_horizon_secs.unwrap_or_default());
            w.timeout = ms(s.webhook_timeout_ms, 1);
            w.poll = ms(s.webhook_poll_ms, 10);
            w.lease = ms(s.webhook_lease_ms, 1);
            w.allow_private = s.webhook_allow_private_addresses.unwrap_or(false);
            settings.log_retention = Duration::from_secs(
                s.log_retention_days
                    .unwrap_or_default()
                    .saturating_mul(86_400),
            );
            let listen = s
                .listen
                .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)));
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let addr = listener.local_addr()?;
            // Recorded for the CLI, which prints base URLs and setup links from it.
            store
                .set_meta(PUBLIC_URL, public_url.as_deref())
                .await
                .context("recording the public URL")?;
            store
                .set_meta(LISTEN_URL, Some(&listen_url(addr, settings.tls.is_some())))
                .await
                .context("recording the listen address")?;
            if public_url.is_none() {
                settings.local_origin = Some(listen_url(addr, settings.tls.is_some()));
            }
            settings.insecure_dev = s.insecure_dev.unwrap_or(false);
            let scheme = if settings.tls.is_some() {
                "https"
            } else {
                "http"
            };
            println!("listening on {scheme}://{addr}");
            tracing::info!(%addr, database = %redact(&url), public_url = ?public_url, "roster is serving");
            let state = AppState::new(store, settings);
            let shutdown = futures::FutureExt::shared(Box::pin(shutdown_signal()));
            let ops = match s.admin_listen {
                Some(at) => {
                    let l = tokio::net::TcpListener::bind(at)
                        .await
                        .with_context(|| format!("binding the admin address {at}"))?;
                    let ops_addr = l.local_addr()?;
                    println!("operations endpoints on http://{ops_addr}");
                    tracing::info!(%ops_addr, "serving /metrics, /readyz and /healthz without authentication");
                    Some(tokio::spawn(roster_server::serve_ops(
                        l,
                        state.clone(),
                        shutdown.clone(),
                    )))
                }
                None => None,
            };
            roster_server::serve(listener, state, shutdown).await?;
            if let Some(ops) = ops {
                let _ = ops.await;
            }
            tracing::info!("stopped");
        }
        Command::CheckConfig { config } => check_config(&config)?,
        Command::Tenant { db, url, command } => {
            let store = db.open().await?;
            let origin = origin(&*store, &db, &url).await?;
            tenants_cli::tenant(store, &origin, command).await?
        }
        Command::CustomSchemas {
            db,
            set,
            clear,
            force,
            json,
        } => tenants_cli::global_custom_schemas(db.open().await?, set, clear, force, json).await?,
        Command::Scim { db, url, command } => {
            let store = db.open().await?;
            let origin = origin(&*store, &db, &url).await?;
            tenants_cli::scim(store, &origin, command).await?
        }
        Command::Token { db, url, command } => {
            let store = db.open().await?;
            let origin = origin(&*store, &db, &url).await?;
            tenants_cli::token(store, &origin, command).await?
        }
        Command::AdminKey { db, command } => ops::admin_key(db.open().await?, command).await?,
        Command::Branding { db, command } => {
            branding_cli::branding(db.open().await?, command).await?
        }
        Command::Operator { db, command } => {
            operator_cli::operator(db.open().await?, command).await?
        }
        Command::SecretKey { db, keys, command } => {
            let (file, target) = db.key_file(&keys)?;
            let store = db.open().await?;
            secret_key_cli::secret_key(store, file.as_deref(), &target, command).await?;
        }
        Command::Webhook { db, keys, command } => {
            // The server's setting, as the server would read it: its variable, else roster.toml.
            let from_env = std::env::var("ROSTER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES")
                .ok()
                .map(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"));
            let allow_private = match from_env {
                Some(v) => v,
                None => db
                    .settings()?
                    .webhook_allow_private_addresses
                    .unwrap_or(false),
            };
            // The database first: its URL is checked before a key file is made beside it.
            let store = db.open().await?;
            // Only the commands that write a secret read (or create) the key file.
            let ring = if matches!(
                command,
                ops::WebhookCommand::Add { .. } | ops::WebhookCommand::RotateSecret { .. }
            ) {
                let (file, target) = db.key_file(&keys)?;
                secret_key_cli::ring(file.as_deref(), &target, |w| {
                    eprintln!("warning: {w}");
                })?
            } else {
                roster_server::secretbox::KeyRing::absent()
            };
            ops::webhook(store, &ring, command, allow_private).await?;
        }
        Command::Log {
            db,
            tenant,
            reads: true,
            limit,
            json,
            ..
        } => ops::log_reads(db.open().await?, &tenant, limit, json).await?,
        Command::Log {
            db,
            tenant,
            follow,
            failures,
            limit,
            json,
            ..
        } => ops::log(db.open().await?, &tenant, follow, failures, limit, json).await?,
        Command::Events {
            db,
            tenant,
            after,
            follow,
        } => ops::events(db.open().await?, &tenant, after, follow).await?,
        Command::Db { command } => db_cli::db(command).await?,
        Command::Backup { db, args } => backup_cli::backup(&db, args).await?,
        Command::Restore { db, args } => backup_cli::restore(&db, args).await?,
        Command::Users { db, command } => app_cli::users(db.open().await?, command).await?,
        Command::Guard { db, command } => app_cli::guard(db.open().await?, command).await?,
        Command::Roles { db, command } => app_cli::roles(db.open().await?, command).await?,
        Command::FirstSync { db, command } => {
            app_cli::first_sync(db.open().await?, command).await?;
        }
        Command::DevSettings {
            db,
            tenant,
            settings,
        } => app_cli::set_settings(db.open().await?, &tenant, &settings).await?,
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_in_database_urls_are_not_shown() {
        assert_eq!(
            redact("postgres://roster:s3cret@db:5432/roster?sslmode=require"),
            "postgres://roster:***@db:5432/roster?sslmode=require"
        );
        assert_eq!(
            redact("postgres://roster@db/roster"),
            "postgres://roster@db/roster"
        );
        assert_eq!(redact("sqlite://roster.db"), "sqlite://roster.db");
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
    }
}
