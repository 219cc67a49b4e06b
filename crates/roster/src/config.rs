//! `roster.toml`: every `roster serve` option in one file (`--config`, `ROSTER_CONFIG`), with
//! environment variables and flags on top, unknown keys refused, and the database URL — the
//! one secret when it carries a password — readable from a file (`database_file`).
//!
//! Precedence, highest first: a flag, its `ROSTER_*` variable, the config file, the default.
//! The keys are the `serve` flags with `_` for `-` (`--max-body-bytes` is `max_body_bytes`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::database;

/// How `roster serve` logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The options of `roster serve`: one struct for the command line (every field optional, so
/// that an absent flag lets the file's value through) and for `roster.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct ServeSettings {
    /// Address to listen on [default: 127.0.0.1:8080]; `127.0.0.1:0` picks a free port.
    #[arg(long, env = "ROSTER_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Database URL [default: sqlite://roster.db]: sqlite://PATH, created and migrated on start.
    #[arg(long, env = "ROSTER_DATABASE_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// A file whose content is the database URL (for a URL that holds a password).
    #[arg(long, env = "ROSTER_DATABASE_URL_FILE", conflicts_with = "database")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_file: Option<PathBuf>,
    /// Scheme and host identity providers reach Roster at, e.g. https://scim.example.com;
    /// used in base URLs, setup links and `meta.location`, and recorded for the CLI
    /// [default: the request's Host header].
    #[arg(long, env = "ROSTER_PUBLIC_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Largest accepted request body in bytes [default: 1048576].
    #[arg(long, env = "ROSTER_MAX_BODY_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// Most operations in one SCIM Bulk request (`maxOperations`; more is a 413)
    /// [default: 1000].
    #[arg(long, env = "ROSTER_BULK_MAX_OPERATIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_max_operations: Option<usize>,
    /// Time a client has to send a request's headers, in milliseconds, counted from when
    /// the connection waits for them: also how long an idle connection stays open
    /// [default: 10000].
    #[arg(long, env = "ROSTER_HEADER_READ_TIMEOUT_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_read_timeout_ms: Option<u64>,
    /// Time a client has to send a request's body, in milliseconds [default: 30000].
    #[arg(long, env = "ROSTER_BODY_READ_TIMEOUT_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_read_timeout_ms: Option<u64>,
    /// Longest a request may take until its response starts, in milliseconds; then 503 with
    /// Retry-After. The event feed's long poll (up to 30 s) is exempt [default: 60000].
    #[arg(long, env = "ROSTER_REQUEST_TIMEOUT_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout_ms: Option<u64>,
    /// Most connections served at once; more wait in the listen backlog [default: 1024].
    #[arg(long, env = "ROSTER_MAX_CONNECTIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Log format [default: text]; `RUST_LOG` sets the level.
    #[arg(long, env = "ROSTER_LOG_FORMAT", value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// How long provisioning-log rows are kept, in days [default: 90].
    #[arg(long, env = "ROSTER_LOG_RETENTION_DAYS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_retention_days: Option<u64>,
    /// How often to look for tokens about to expire (`token.expiring`), in milliseconds
    /// [default: 3600000].
    #[arg(long, env = "ROSTER_TOKEN_CHECK_INTERVAL_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_check_interval_ms: Option<u64>,
    /// How often tokens' and admin keys' last use is written, in milliseconds (requests only
    /// note it in memory) [default: 60000].
    #[arg(long, env = "ROSTER_TOKEN_USE_FLUSH_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_use_flush_ms: Option<u64>,
    /// First webhook retry delay in milliseconds; doubles per failure, with jitter
    /// [default: 1000].
    #[arg(long, env = "ROSTER_WEBHOOK_RETRY_BASE_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_retry_base_ms: Option<u64>,
    /// Largest webhook retry delay in milliseconds [default: 3600000].
    #[arg(long, env = "ROSTER_WEBHOOK_RETRY_MAX_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_retry_max_ms: Option<u64>,
    /// How long a failing webhook stream retries before it is parked, in seconds
    /// [default: 259200].
    #[arg(long, env = "ROSTER_WEBHOOK_RETRY_HORIZON_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_retry_horizon_secs: Option<u64>,
    /// Timeout of one webhook delivery, in milliseconds [default: 10000].
    #[arg(long, env = "ROSTER_WEBHOOK_TIMEOUT_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_timeout_ms: Option<u64>,
    /// How often idle webhook streams look for work written by other processes, in
    /// milliseconds [default: 1000].
    #[arg(long, env = "ROSTER_WEBHOOK_POLL_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_poll_ms: Option<u64>,
    /// With several nodes on one database: how long a node's lease on a webhook stream lasts
    /// unless renewed, in milliseconds; the longest a stream waits when its node dies. At
    /// least the delivery timeout plus the poll interval plus one second [default: 30000].
    #[arg(long, env = "ROSTER_WEBHOOK_LEASE_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_lease_ms: Option<u64>,
    /// Deliver webhooks to private, loopback and link-local addresses too (receivers on the
    /// same host or network); by default only public addresses are delivered to, and such a
    /// URL is refused when registered [default: false].
    #[arg(long, env = "ROSTER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_allow_private_addresses: Option<bool>,
    /// SCIM requests per token, as N/s, N/min or N/h with an optional :BURST; beyond it 429
    /// with Retry-After; a tenant's `settings.rate_limit.per_token` overrides it; `0/s` turns
    /// it off [default: 250/s:2500].
    #[arg(long, env = "ROSTER_RATE_LIMIT_PER_TOKEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_token: Option<String>,
    /// SCIM requests per tenant, all its tokens together (`settings.rate_limit.per_tenant`
    /// overrides it) [default: 500/s:5000].
    #[arg(long, env = "ROSTER_RATE_LIMIT_PER_TENANT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_tenant: Option<String>,
    /// Refused authentications per source address and tenant (SCIM) or per source address
    /// (admin API) before further ones are answered 429 [default: 30/min:30].
    #[arg(long, env = "ROSTER_RATE_LIMIT_AUTH_FAILURES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_auth_failures: Option<String>,
    /// Admin API requests per admin key [default: 2000/s:4000].
    #[arg(long, env = "ROSTER_RATE_LIMIT_ADMIN_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_admin_key: Option<String>,
    /// Console password sign-ins per account and source address, counted before the
    /// password is hashed [default: 5/min:10].
    #[arg(long, env = "ROSTER_RATE_LIMIT_SIGN_IN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_sign_in: Option<String>,
    /// Most users or groups a filter or sortBy that no index answers may evaluate in memory;
    /// beyond it the list is refused with 400 tooMany [default: 50000].
    #[arg(long, env = "ROSTER_MAX_FILTER_CANDIDATES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_filter_candidates: Option<u64>,
    /// Peers trusted to name the client in X-Forwarded-For (the TLS proxy in front of Roster),
    /// as CIDRs, comma-separated or repeated; the client address keys the rate limits of
    /// refused authentications and sign-ins [default: none: the peer is the client].
    #[arg(long, env = "ROSTER_TRUSTED_PROXY", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_proxy: Option<Vec<String>>,
    /// Local development: console session cookies without `Secure` under a public URL that is
    /// not https on loopback. Never in production [default: false].
    #[arg(long, env = "ROSTER_INSECURE_DEV", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure_dev: Option<bool>,
    /// A second address serving /metrics, /readyz and /healthz without authentication (bind
    /// it to an internal network); on the public address /metrics needs an admin key
    /// [default: none].
    #[arg(long, env = "ROSTER_ADMIN_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<SocketAddr>,
    /// Serve TLS (1.2 and 1.3) with this certificate chain, PEM; with --tls-key. SIGHUP
    /// re-reads both files without dropping connections [default: plain HTTP, for a TLS
    /// proxy in front].
    #[arg(long, env = "ROSTER_TLS_CERT", requires = "tls_key")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "ROSTER_TLS_KEY", requires = "tls_cert")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// The key file that seals webhook signing secrets in the database: one key per line, 64
    /// hex characters, the first seals, every one opens; re-read before sealing, on SIGHUP and
    /// when a secret names a key not held. Every node of a PostgreSQL deployment needs the same
    /// file, and the CLI too [default: `<database file>.key` beside a SQLite database, created
    /// if missing; none for PostgreSQL: creating or rotating a webhook is refused].
    #[arg(long, env = "ROSTER_SECRET_KEY_FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key_file: Option<PathBuf>,
}

impl ServeSettings {
    /// The built-in defaults, every field set.
    #[must_use]
    pub fn defaults() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            database: Some(database::DEFAULT_URL.to_owned()),
            database_file: None,
            public_url: None,
            max_body_bytes: Some(1024 * 1024),
            bulk_max_operations: Some(1000),
            header_read_timeout_ms: Some(10_000),
            body_read_timeout_ms: Some(30_000),
            request_timeout_ms: Some(60_000),
            max_connections: Some(1024),
            log_format: Some(LogFormat::Text),
            log_retention_days: Some(90),
            token_check_interval_ms: Some(3_600_000),
            token_use_flush_ms: Some(60_000),
            webhook_retry_base_ms: Some(1000),
            webhook_retry_max_ms: Some(3_600_000),
            webhook_retry_horizon_secs: Some(259_200),
            webhook_timeout_ms: Some(10_000),
            webhook_poll_ms: Some(1000),
            webhook_lease_ms: Some(30_000),
            webhook_allow_private_addresses: Some(false),
            rate_limit_per_token: Some("250/s:2500".into()),
            rate_limit_per_tenant: Some("500/s:5000".into()),
            rate_limit_auth_failures: Some("30/min:30".into()),
            rate_limit_admin_key: Some("2000/s:4000".into()),
            rate_limit_sign_in: Some("5/min:10".into()),
            max_filter_candidates: Some(50_000),
            trusted_proxy: Some(Vec::new()),
            insecure_dev: Some(false),
            admin_listen: None,
            tls_cert: None,
            tls_key: None,
            secret_key_file: None,
        }
    }

    /// `self` with `below`'s values where `self` has none. `database` and `database_file`
    /// are one choice: a layer that sets either replaces both of the layer below.
    #[must_use]
    pub fn over(self, below: Self) -> Self {
        let (database, database_file) = if self.database.is_some() || self.database_file.is_some() {
            (self.database, self.database_file)
        } else {
            (below.database, below.database_file)
        };
        Self {
            listen: self.listen.or(below.listen),
            database,
            database_file,
            public_url: self.public_url.or(below.public_url),
            max_body_bytes: self.max_body_bytes.or(below.max_body_bytes),
            bulk_max_operations: self.bulk_max_operations.or(below.bulk_max_operations),
            header_read_timeout_ms: self.header_read_timeout_ms.or(below.header_read_timeout_ms),
            body_read_timeout_ms: self.body_read_timeout_ms.or(below.body_read_timeout_ms),
            request_timeout_ms: self.request_timeout_ms.or(below.request_timeout_ms),
            max_connections: self.max_connections.or(below.max_connections),
            log_format: self.log_format.or(below.log_format),
            log_retention_days: self.log_retention_days.or(below.log_retention_days),
            token_check_interval_ms: self
                .token_check_interval_ms
                .or(below.token_check_interval_ms),
            token_use_flush_ms: self.token_use_flush_ms.or(below.token_use_flush_ms),
            webhook_retry_base_ms: self.webhook_retry_base_ms.or(below.webhook_retry_base_ms),
            webhook_retry_max_ms: self.webhook_retry_max_ms.or(below.webhook_retry_max_ms),
            webhook_retry_horizon_secs: self
                .webhook_retry_horizon_secs
                .or(below.webhook_retry_horizon_secs),
            webhook_timeout_ms: self.webhook_timeout_ms.or(below.webhook_timeout_ms),
            webhook_poll_ms: self.webhook_poll_ms.or(below.webhook_poll_ms),
            webhook_lease_ms: self.webhook_lease_ms.or(below.webhook_lease_ms),
            webhook_allow_private_addresses: self
                .webhook_allow_private_addresses
                .or(below.webhook_allow_private_addresses),
            rate_limit_per_token: self.rate_limit_per_token.or(below.rate_limit_per_token),
            rate_limit_per_tenant: self.rate_limit_per_tenant.or(below.rate_limit_per_tenant),
            rate_limit_auth_failures: self
                .rate_limit_auth_failures
                .or(below.rate_limit_auth_failures),
            rate_limit_admin_key: self.rate_limit_admin_key.or(below.rate_limit_admin_key),
            rate_limit_sign_in: self.rate_limit_sign_in.or(below.rate_limit_sign_in),
            max_filter_candidates: self.max_filter_candidates.or(below.max_filter_candidates),
            trusted_proxy: self.trusted_proxy.or(below.trusted_proxy),
            insecure_dev: self.insecure_dev.or(below.insecure_dev),
            admin_listen: self.admin_listen.or(below.admin_listen),
            tls_cert: self.tls_cert.or(below.tls_cert),
            tls_key: self.tls_key.or(below.tls_key),
            secret_key_file: self.secret_key_file.or(below.secret_key_file),
        }
    }

    /// The database URL: `database`, or the trimmed content of `database_file`.
    ///
    /// # Errors
    /// When the file cannot be read or is empty.
    pub fn database_url(&self) -> Result<String> {
        if let Some(f) = &self.database_file {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading the database URL from {}", f.display()))?;
            let url = text.trim();
            if url.is_empty() {
                bail!("database_file {} is empty", f.display());
            }
            return Ok(url.to_owned());
        }
        Ok(self
            .database
            .clone()
            .unwrap_or_else(|| database::DEFAULT_URL.to_owned()))
    }
}

/// Reads and parses a config file; unknown keys and wrong types are errors naming the line.
///
/// # Errors
/// When the file cannot be read or is not a valid `roster.toml`.
pub fn load(path: &Path) -> Result<ServeSettings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text.get(..s.start).unwrap_or(&text).matches('\n').count() + 1);
        match line {
            Some(n) => anyhow!("config file {}, line {n}: {}", path.display(), e.message()),
            None => anyhow!("config file {}: {}", path.display(), e.message()),
        }
    })
}

/// The settings of `serve`: flags and variables (`cli`) over the file at `config` (if any)
/// over the defaults.
///
/// # Errors
/// When the config file cannot be read or parsed.
pub fn resolve(cli: ServeSettings, config: Option<&Path>) -> Result<ServeSettings> {
    let file = match config {
        Some(p) => load(p)?,
        None => ServeSettings::default(),
    };
    Ok(cli.over(file).over(ServeSettings::defaults()))
}

/// Checks a public URL: `http(s)://HOST[:PORT]`, no path, query or fragment. Returns it
/// without a trailing slash.
///
/// # Errors
/// A one-line message with an example.
pub fn check_public_url(url: &str) -> Result<String, String> {
    let u = url.trim().trim_end_matches('/');
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    match rest {
        Some(authority)
            if !authority.is_empty() && !authority.contains(['/', '?', '#', '@', ' ']) =>
        {
            Ok(u.to_owned())
        }
        _ => Err(format!(
            "public URL `{url}` must be http(s)://HOST[:PORT] with no path, e.g. \
             https://scim.example.com"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_flags_over_file_over_defaults() {
        let file: ServeSettings = toml::from_str(
            r#"
            listen = "0.0.0.0:9000"
            database = "sqlite:///var/lib/roster/roster.db"
            max_body_bytes = 2048
            log_format = "json"
            "#,
        )
        .unwrap();
        let cli = ServeSettings {
            max_body_bytes: Some(4096),
            database_file: Some("/run/secrets/db".into()),
            ..ServeSettings::default()
        };
        let s = cli.over(file).over(ServeSettings::defaults());
        assert_eq!(s.listen, Some(SocketAddr::from(([0, 0, 0, 0], 9000))));
        assert_eq!(s.max_body_bytes, Some(4096), "a flag beats the file");
        assert_eq!(
            s.log_format,
            Some(LogFormat::Json),
            "the file beats the default"
        );
        assert_eq!(s.log_retention_days, Some(90), "the default fills the rest");
        assert_eq!(
            s.database, None,
            "database_file replaces the file's database"
        );
        assert_eq!(s.database_file, Some("/run/secrets/db".into()));
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused() {
        let err = toml::from_str::<ServeSettings>("lissten = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.message().contains("unknown field `lissten`"), "{err}");
        let err = toml::from_str::<ServeSettings>("log_format = \"xml\"").unwrap_err();
        assert!(err.message().contains("unknown variant"), "{err}");
        let err = toml::from_str::<ServeSettings>("max_body_bytes = \"big\"").unwrap_err();
        assert!(err.message().contains("invalid type"), "{err}");
    }

    #[test]
    fn the_example_in_the_docs_is_complete_and_valid() {
        let text = include_str!("../../../docs/roster.example.toml");
        let s: ServeSettings = toml::from_str(text).unwrap();
        // Every key but the alternatives `database_file` is set in the example, so that it
        // documents every option.
        let shown = toml::to_string(&s).unwrap();
        let all = toml::to_string(&ServeSettings::defaults()).unwrap();
        let keys = |t: &str| {
            t.lines()
                .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.to_owned()))
                .collect::<std::collections::BTreeSet<_>>()
        };
        let mut want = keys(&all);
        want.insert("public_url".into());
        assert_eq!(
            keys(&shown),
            want,
            "docs/roster.example.toml sets every option"
        );
    }

    #[test]
    fn public_urls() {
        assert_eq!(
            check_public_url("https://scim.example.com/").unwrap(),
            "https://scim.example.com"
        );
        assert!(check_public_url("http://127.0.0.1:8080").is_ok());
        for bad in [
            "scim.example.com",
            "https://",
            "https://x.example.com/roster",
            "ftp://x",
            "https://x?y",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
    }
}
