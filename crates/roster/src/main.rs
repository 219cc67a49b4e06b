//! The `roster` binary: runs the server and administers tenants and tokens.
//!
//! Every command opens the database itself (`--database`, `ROSTER_DATABASE_URL`), so the
//! administrative commands work while a server is running on the same file: SQLite in WAL
//! mode lets them write beside it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use roster_server::{AppState, Settings};
use roster_store::sqlite::SqliteStore;
use roster_store::Store;

mod app_cli;
mod cycle;
mod operator_cli;
mod ops;
mod simulate;
mod tenants_cli;

#[derive(Parser, Debug)]
#[command(
    name = "roster",
    version,
    about = "Roster: a SCIM 2.0 provisioning server"
)]
struct Cli {
    /// Database URL.
    #[arg(
        long,
        global = true,
        env = "ROSTER_DATABASE_URL",
        default_value = "sqlite://roster.db"
    )]
    database: String,
    /// Scheme and host used in SCIM base URLs and `meta.location`, e.g. https://scim.example.com.
    #[arg(long, global = true, env = "ROSTER_PUBLIC_URL")]
    public_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the SCIM server.
    Serve {
        /// Address to listen on (`127.0.0.1:0` picks a free port).
        #[arg(long, env = "ROSTER_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Largest accepted request body in bytes.
        #[arg(long, env = "ROSTER_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
        max_body_bytes: usize,
        /// Log format: `text` or `json`.
        #[arg(long, env = "ROSTER_LOG_FORMAT", default_value = "text")]
        log_format: String,
        /// How often to look for tokens about to expire (`token.expiring`), in milliseconds.
        #[arg(
            long,
            env = "ROSTER_TOKEN_CHECK_INTERVAL_MS",
            default_value_t = 3_600_000
        )]
        token_check_interval_ms: u64,
        /// How often tokens' and admin keys' last use is written, in milliseconds (requests
        /// only note it in memory).
        #[arg(long, env = "ROSTER_TOKEN_USE_FLUSH_MS", default_value_t = 60_000)]
        token_use_flush_ms: u64,
        #[command(flatten)]
        events: EventOptions,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: tenants_cli::TenantCommand,
    },
    /// Enable or disable SCIM for a tenant.
    Scim {
        #[command(subcommand)]
        command: tenants_cli::ScimCommand,
    },
    /// Manage a tenant's bearer tokens.
    Token {
        #[command(subcommand)]
        command: tenants_cli::TokenCommand,
    },
    /// Play an identity provider's provisioning cycle against any SCIM server.
    Simulate(SimulateArgs),
    /// Manage operator API keys for the admin API (`/api/v1`).
    AdminKey {
        #[command(subcommand)]
        command: ops::AdminKeyCommand,
    },
    /// Manage operator accounts for the web console (`/console`).
    Operator {
        #[command(subcommand)]
        command: operator_cli::OperatorCommand,
    },
    /// Manage webhook endpoints.
    Webhook {
        #[command(subcommand)]
        command: ops::WebhookCommand,
    },
    /// Show a tenant's provisioning log (one line per write or failed SCIM request), oldest
    /// first; with `--reads`, the successful reads counted per route and minute.
    Log {
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
        /// How many of the latest requests to show first.
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Existing app users: import them (not managed by SCIM).
    Users {
        #[command(subcommand)]
        command: app_cli::UsersCommand,
    },
    /// The mass-deprovisioning guard: status, confirm or reject a held batch.
    Guard {
        #[command(subcommand)]
        command: app_cli::GuardCommand,
    },
    /// Merge a JSON object into a tenant's settings (stop-gap until the tenants API).
    #[command(hide = true)]
    DevSettings {
        /// Tenant id.
        tenant: String,
        /// A JSON object of settings, e.g. '{"sso_enforced": true}'.
        settings: String,
    },
    /// Print a tenant's events as JSON lines, in seq order.
    Events {
        /// Tenant id.
        tenant: String,
        /// Only events with a seq greater than this.
        #[arg(long, default_value_t = 0)]
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
    #[arg(long)]
    users: Option<usize>,
    /// Groups to provision (default: the recorded cycle's).
    #[arg(long)]
    groups: Option<usize>,
    /// Members per group, taken from the users (default: the recorded cycle's).
    #[arg(long)]
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
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// Print one JSON report instead of text.
    #[arg(long)]
    json: bool,
}

/// Webhook delivery and provisioning-log options of `roster serve`.
#[derive(clap::Args, Debug)]
struct EventOptions {
    /// First webhook retry delay in milliseconds; doubles per failure (with jitter).
    #[arg(long, env = "ROSTER_WEBHOOK_RETRY_BASE_MS", default_value_t = 1000)]
    webhook_retry_base_ms: u64,
    /// Largest webhook retry delay in milliseconds.
    #[arg(long, env = "ROSTER_WEBHOOK_RETRY_MAX_MS", default_value_t = 3_600_000)]
    webhook_retry_max_ms: u64,
    /// How long a failing webhook stream retries before it is parked, in seconds.
    #[arg(
        long,
        env = "ROSTER_WEBHOOK_RETRY_HORIZON_SECS",
        default_value_t = 259_200
    )]
    webhook_retry_horizon_secs: u64,
    /// Timeout of one webhook delivery, in milliseconds.
    #[arg(long, env = "ROSTER_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    webhook_timeout_ms: u64,
    /// How often idle webhook streams look for work written by other processes, in ms.
    #[arg(long, env = "ROSTER_WEBHOOK_POLL_MS", default_value_t = 1000)]
    webhook_poll_ms: u64,
    /// How long provisioning-log rows are kept, in days.
    #[arg(long, env = "ROSTER_LOG_RETENTION_DAYS", default_value_t = 90)]
    log_retention_days: u64,
}

impl EventOptions {
    fn apply(&self, s: &mut Settings) {
        use std::time::Duration;
        s.webhooks.retry_base = Duration::from_millis(self.webhook_retry_base_ms.max(1));
        s.webhooks.retry_max = Duration::from_millis(self.webhook_retry_max_ms.max(1));
        s.webhooks.horizon = Duration::from_secs(self.webhook_retry_horizon_secs);
        s.webhooks.timeout = Duration::from_millis(self.webhook_timeout_ms.max(1));
        s.webhooks.poll = Duration::from_millis(self.webhook_poll_ms.max(10));
        s.log_retention = Duration::from_secs(self.log_retention_days.saturating_mul(86_400));
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn origin(cli_public_url: Option<&str>) -> String {
    cli_public_url
        .unwrap_or("http://127.0.0.1:8080")
        .trim_end_matches('/')
        .to_owned()
}

async fn open(url: &str) -> Result<Arc<dyn Store>> {
    let store = SqliteStore::open(url)
        .await
        .with_context(|| format!("opening database {url}"))?;
    Ok(Arc::new(store))
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
        Command::Serve {
            listen,
            max_body_bytes,
            log_format,
            token_check_interval_ms,
            token_use_flush_ms,
            events,
        } => {
            init_logging(&log_format);
            let store = open(&cli.database).await?;
            let mut settings = Settings {
                public_url: cli.public_url.clone(),
                max_body_bytes,
                token_check_interval: std::time::Duration::from_millis(
                    token_check_interval_ms.max(10),
                ),
                token_use_flush_interval: std::time::Duration::from_millis(
                    token_use_flush_ms.max(10),
                ),
                ..Settings::default()
            };
            events.apply(&mut settings);
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let addr = listener.local_addr()?;
            println!("listening on http://{addr}");
            tracing::info!(%addr, database = %cli.database, "roster is serving");
            roster_server::serve(listener, AppState::new(store, settings), shutdown_signal())
                .await?;
            tracing::info!("stopped");
        }
        Command::Tenant { command } => {
            let origin = origin(cli.public_url.as_deref());
            tenants_cli::tenant(open(&cli.database).await?, &origin, command).await?
        }
        Command::Scim { command } => {
            let origin = origin(cli.public_url.as_deref());
            tenants_cli::scim(open(&cli.database).await?, &origin, command).await?
        }
        Command::Token { command } => {
            let origin = origin(cli.public_url.as_deref());
            tenants_cli::token(open(&cli.database).await?, &origin, command).await?
        }
        Command::AdminKey { command } => {
            ops::admin_key(open(&cli.database).await?, command).await?
        }
        Command::Operator { command } => {
            operator_cli::operator(open(&cli.database).await?, command).await?
        }
        Command::Webhook { command } => ops::webhook(open(&cli.database).await?, command).await?,
        Command::Log {
            tenant,
            reads: true,
            limit,
            json,
            ..
        } => ops::log_reads(open(&cli.database).await?, &tenant, limit, json).await?,
        Command::Log {
            tenant,
            follow,
            failures,
            limit,
            json,
            ..
        } => {
            ops::log(
                open(&cli.database).await?,
                &tenant,
                follow,
                failures,
                limit,
                json,
            )
            .await?
        }
        Command::Events {
            tenant,
            after,
            follow,
        } => ops::events(open(&cli.database).await?, &tenant, after, follow).await?,
        Command::Users { command } => app_cli::users(open(&cli.database).await?, command).await?,
        Command::Guard { command } => app_cli::guard(open(&cli.database).await?, command).await?,
        Command::DevSettings { tenant, settings } => {
            app_cli::set_settings(open(&cli.database).await?, &tenant, &settings).await?
        }
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
