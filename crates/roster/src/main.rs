//! The `roster` binary: runs the server and administers tenants and tokens.
//!
//! Every command opens the database itself (`--database`, `ROSTER_DATABASE_URL`), so the
//! administrative commands work while a server is running on the same file: SQLite in WAL
//! mode lets them write beside it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use roster_server::{tokens, AppState, Clock, Settings, SystemClock};
use roster_store::sqlite::SqliteStore;
use roster_store::{Store, StoreError, Tenant};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

mod app_cli;
mod cycle;
mod ops;
mod simulate;

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
        #[command(flatten)]
        events: EventOptions,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage a tenant's bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Play an identity provider's provisioning cycle against any SCIM server.
    Simulate(SimulateArgs),
    /// Manage operator API keys for the admin API (`/api/v1`).
    AdminKey {
        #[command(subcommand)]
        command: ops::AdminKeyCommand,
    },
    /// Manage webhook endpoints.
    Webhook {
        #[command(subcommand)]
        command: ops::WebhookCommand,
    },
    /// Show a tenant's provisioning log (one line per SCIM request), oldest first.
    Log {
        /// Tenant id.
        tenant: String,
        /// Keep printing new requests as they arrive.
        #[arg(long)]
        follow: bool,
        /// Only failed requests.
        #[arg(long)]
        failures: bool,
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

#[derive(Subcommand, Debug)]
enum TenantCommand {
    /// Create a tenant and print its SCIM base URL and a new token (shown once).
    Create {
        /// The tenant's name; its id is derived from it (lowercase letters, digits, dashes).
        name: String,
        /// The identity provider the tenant uses.
        #[arg(long, default_value = "generic", value_parser = ["okta", "entra", "onelogin", "jumpcloud", "google", "ping", "generic"])]
        idp: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Lifetime of the first token, in days.
        #[arg(long, default_value_t = 365)]
        expires_in_days: i64,
    },
    /// List tenants.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// List a tenant's tokens (prefix, created, expires, last used; never the secret).
    List {
        /// Tenant id.
        tenant: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new token and revoke every other token of the tenant at once.
    Rotate {
        /// Tenant id.
        tenant: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Lifetime of the new token, in days.
        #[arg(long, default_value_t = 365)]
        expires_in_days: i64,
    },
    /// Revoke one token by its prefix.
    Revoke {
        /// Tenant id.
        tenant: String,
        /// The token's prefix, as shown by `roster token list`.
        prefix: String,
    },
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

/// Derives a URL-safe tenant id from a name: `Acme Corp` → `acme-corp`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

fn fmt_time(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
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

fn print_token(
    json_out: bool,
    tenant: &str,
    base: &str,
    secret: &str,
    expires: time::OffsetDateTime,
) {
    if json_out {
        println!(
            "{}",
            json!({
                "tenant": tenant,
                "scim_base_url": base,
                "token": secret,
                "expires_at": fmt_time(expires),
            })
        );
    } else {
        println!("tenant:        {tenant}");
        println!("SCIM base URL: {base}");
        println!("token:         {secret}");
        println!("expires at:    {}", fmt_time(expires));
        println!("The token is shown only once: store it in your identity provider now.");
    }
}

async fn run(cli: Cli) -> Result<()> {
    let clock = SystemClock;
    match cli.command {
        Command::Simulate(a) => {
            let ok = simulate::run(simulate::Options {
                idp: a.idp,
                target: a.target,
                token: a.token,
                users: a.users,
                groups: a.groups,
                members_per_group: a.members_per_group,
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
            events,
        } => {
            init_logging(&log_format);
            let store = open(&cli.database).await?;
            let mut settings = Settings {
                public_url: cli.public_url.clone(),
                max_body_bytes,
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
            let store = open(&cli.database).await?;
            match command {
                TenantCommand::Create {
                    name,
                    idp,
                    json,
                    expires_in_days,
                } => {
                    let id = slug(&name);
                    if id.is_empty() {
                        bail!("the tenant name must contain at least one letter or digit");
                    }
                    let now = clock.now();
                    let tenant = Tenant {
                        id: id.clone(),
                        name,
                        idp,
                        created_at: now,
                        settings: roster_store::TenantSettings::default(),
                    };
                    match store.create_tenant(&tenant).await {
                        Err(StoreError::Conflict(_)) => {
                            bail!("a tenant with id \"{id}\" already exists")
                        }
                        r => r?,
                    }
                    let issued = tokens::issue(&id, now, time::Duration::days(expires_in_days));
                    store.insert_token(&issued.record).await?;
                    ops::audit(
                        store.as_ref(),
                        "tenant.create",
                        Some(&id),
                        Some(&id),
                        json!({"name": tenant.name, "idp": tenant.idp, "token_prefix": issued.record.prefix}),
                    )
                    .await;
                    let base = format!("{}/scim/v2/{id}", origin(cli.public_url.as_deref()));
                    print_token(json, &id, &base, &issued.secret, issued.record.expires_at);
                }
                TenantCommand::List { json } => {
                    let tenants = store.list_tenants().await?;
                    if json {
                        let v: Vec<_> = tenants
                            .iter()
                            .map(|t| json!({"id": t.id, "name": t.name, "idp": t.idp, "created_at": fmt_time(t.created_at)}))
                            .collect();
                        println!("{}", serde_json::Value::Array(v));
                    } else {
                        println!("{:<24} {:<10} {:<26} NAME", "ID", "IDP", "CREATED");
                        for t in tenants {
                            println!(
                                "{:<24} {:<10} {:<26} {}",
                                t.id,
                                t.idp,
                                fmt_time(t.created_at),
                                t.name
                            );
                        }
                    }
                }
            }
        }
        Command::Token { command } => {
            let store = open(&cli.database).await?;
            let require_tenant = |t: Option<Tenant>, id: &str| match t {
                Some(t) => Ok(t),
                None => Err(anyhow::anyhow!("no tenant \"{id}\"")),
            };
            match command {
                TokenCommand::List { tenant, json } => {
                    require_tenant(store.get_tenant(&tenant).await?, &tenant)?;
                    let list = store.list_tokens(&tenant).await?;
                    if json {
                        let v: Vec<_> = list
                            .iter()
                            .map(|t| {
                                json!({
                                    "prefix": t.prefix,
                                    "created_at": fmt_time(t.created_at),
                                    "expires_at": fmt_time(t.expires_at),
                                    "last_used_at": t.last_used_at.map(fmt_time),
                                    "revoked_at": t.revoked_at.map(fmt_time),
                                })
                            })
                            .collect();
                        println!("{}", serde_json::Value::Array(v));
                    } else {
                        println!(
                            "{:<14} {:<26} {:<26} {:<26} STATUS",
                            "PREFIX", "CREATED", "EXPIRES", "LAST USED"
                        );
                        let now = clock.now();
                        for t in list {
                            let status = if t.revoked_at.is_some() {
                                "revoked"
                            } else if t.expires_at <= now {
                                "expired"
                            } else {
                                "active"
                            };
                            println!(
                                "{:<14} {:<26} {:<26} {:<26} {status}",
                                t.prefix,
                                fmt_time(t.created_at),
                                fmt_time(t.expires_at),
                                t.last_used_at.map_or_else(|| "never".to_owned(), fmt_time),
                            );
                        }
                    }
                }
                TokenCommand::Rotate {
                    tenant,
                    json,
                    expires_in_days,
                } => {
                    require_tenant(store.get_tenant(&tenant).await?, &tenant)?;
                    let now = clock.now();
                    let issued = tokens::issue(&tenant, now, time::Duration::days(expires_in_days));
                    store.rotate_tokens(&issued.record, now).await?;
                    ops::audit(
                        store.as_ref(),
                        "token.rotate",
                        Some(&tenant),
                        Some(&issued.record.prefix),
                        json!({}),
                    )
                    .await;
                    let base = format!("{}/scim/v2/{tenant}", origin(cli.public_url.as_deref()));
                    print_token(
                        json,
                        &tenant,
                        &base,
                        &issued.secret,
                        issued.record.expires_at,
                    );
                }
                TokenCommand::Revoke { tenant, prefix } => {
                    match store.revoke_token(&tenant, &prefix, clock.now()).await {
                        Ok(()) => {
                            ops::audit(
                                store.as_ref(),
                                "token.revoke",
                                Some(&tenant),
                                Some(&prefix),
                                json!({}),
                            )
                            .await;
                            println!("revoked {prefix}");
                        }
                        Err(StoreError::NotFound) => {
                            bail!(
                                "tenant \"{tenant}\" has no active token with prefix \"{prefix}\""
                            )
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Command::AdminKey { command } => {
            ops::admin_key(open(&cli.database).await?, command).await?
        }
        Command::Webhook { command } => ops::webhook(open(&cli.database).await?, command).await?,
        Command::Log {
            tenant,
            follow,
            failures,
            limit,
            json,
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

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs() {
        assert_eq!(slug("Acme Corp"), "acme-corp");
        assert_eq!(slug("  --Ünïcode & Co!! "), "n-code-co");
        assert_eq!(slug("***"), "");
    }
}
