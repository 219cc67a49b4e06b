//! The key file that seals webhook signing secrets (`--secret-key-file`; see
//! `roster_server::secretbox`): which file a command uses, and `roster secret-key …`, which
//! rotates the key and re-seals the stored secrets with it.
//!
//! Without `--secret-key-file` (or `secret_key_file` in roster.toml), a SQLite database file
//! has its key file beside it, `<database file>.key`, created (mode 0600, one new key) by the
//! first command that needs it; an in-memory database has a key in memory; PostgreSQL has no
//! default, since every node must hold the same key: creating or rotating a webhook is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use roster_server::admin::webhooks;
use roster_server::secretbox::{self, KeyRing, KeySource};
use roster_server::{Clock, SystemClock};
use roster_store::{Store, Webhook};
use serde_json::json;

use crate::database::Target;
use crate::ops::audit;

/// `--secret-key-file`, for the commands that seal or open webhook secrets.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KeyArgs {
    /// The key file that seals webhook signing secrets: one key per line, 64 hex characters,
    /// the first seals [default: `secret_key_file` in the --config file, else
    /// `<database file>.key` beside a SQLite database; none for PostgreSQL].
    #[arg(long, global = true, env = "ROSTER_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
}

/// The key file a command uses: the one given, else the default beside a SQLite file.
pub fn key_file(given: Option<&Path>, target: &Target) -> Option<PathBuf> {
    match (given, target) {
        (Some(f), _) => Some(f.to_owned()),
        (None, Target::SqliteFile(db)) => {
            let mut name = db.as_os_str().to_owned();
            name.push(".key");
            Some(PathBuf::from(name))
        }
        (None, Target::SqliteMemory | Target::Postgres) => None,
    }
}

/// The key ring of a database: the key file given (which must exist), else the default (see
/// the module's doc). `warn` receives a warning about the file's permissions.
///
/// # Errors
/// When the key file does not load or cannot be created.
pub fn ring(given: Option<&Path>, target: &Target, warn: impl Fn(&str)) -> Result<KeyRing> {
    let ring = match (given, key_file(given, target)) {
        (Some(f), _) => KeyRing::load(f).map_err(|e| {
            anyhow!(
                "{e} (--secret-key-file; `roster secret-key rotate --secret-key-file {}` creates \
                 a key file)",
                f.display()
            )
        })?,
        (None, Some(default)) => KeyRing::load_or_create(
            &default,
            "created beside the database; keep it, apart from the database's backups",
        )
        .map_err(|e| anyhow!(e))?,
        (None, None) if *target == Target::SqliteMemory => KeyRing::ephemeral(),
        (None, None) => KeyRing::absent(),
    };
    if let KeySource::File(f) = ring.source() {
        if let Some(w) = secretbox::loose_permissions(f) {
            warn(&w);
        }
    }
    Ok(ring)
}

/// How many stored secret texts (current and previous) are in clear, and how many are sealed
/// with each key id.
pub fn usage(hooks: &[Webhook]) -> (usize, BTreeMap<String, usize>) {
    let mut clear = 0;
    let mut by_key = BTreeMap::new();
    for text in hooks
        .iter()
        .flat_map(|h| std::iter::once(&h.secret).chain(h.previous_secret.as_ref()))
    {
        match secretbox::sealed_key_id(text) {
            Some(id) => *by_key.entry(id.to_owned()).or_insert(0) += 1,
            None => clear += 1,
        }
    }
    (clear, by_key)
}

/// `roster secret-key …`
#[derive(Subcommand, Debug)]
pub enum SecretKeyCommand {
    /// Add a new key as the first line of the key file (creating the file if missing); the
    /// old keys stay below it and keep opening what they sealed. Then run `reseal`.
    Rotate,
    /// Re-seal every stored webhook secret (current and previous; those in clear too) with
    /// the first key of the file; afterwards the other keys' lines can be removed.
    Reseal {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show the key file's keys and which keys the stored webhook secrets are sealed with.
    Status {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `roster secret-key …` on `store` (the database `target`), with the key file given,
/// else the default one.
pub async fn secret_key(
    store: Arc<dyn Store>,
    given: Option<&Path>,
    target: &Target,
    cmd: SecretKeyCommand,
) -> Result<()> {
    let warn = |w: &str| eprintln!("warning: {w}");
    match cmd {
        SecretKeyCommand::Rotate => {
            let Some(file) = key_file(given, target) else {
                bail!(
                    "{}; there is no key file to rotate",
                    if *target == Target::SqliteMemory {
                        "an in-memory database keeps its key in memory".to_owned()
                    } else {
                        roster_server::secretbox::SecretError::NoKey.to_string()
                    }
                );
            };
            let note = format!(
                "added by `roster secret-key rotate` on {}",
                roster_server::ops::fmt_time(SystemClock.now())
            );
            let id = secretbox::rotate_file(&file, &note).map_err(|e| anyhow!(e))?;
            let ring = ring(Some(&file), target, warn)?;
            audit(
                store.as_ref(),
                "secret_key.rotate",
                None,
                None,
                json!({"key_id": id, "key_ids": ring.key_ids()}),
            )
            .await;
            println!("new key {id} is now the first line of {}", file.display());
            println!(
                "New and rotated webhook secrets are sealed with it at once (every node reads \
                 the file before sealing). Next: `roster secret-key reseal`, then remove the \
                 old keys' lines once `roster secret-key status` shows no secret sealed with \
                 them."
            );
        }
        SecretKeyCommand::Reseal { json } => {
            let ring = ring(given, target, warn)?;
            let report = webhooks::reseal_all(store.as_ref(), &ring).await?;
            let key = ring.key_ids().into_iter().next().unwrap_or_default();
            audit(
                store.as_ref(),
                "secret_key.reseal",
                None,
                None,
                json!({"key_id": key, "resealed": report.resealed.len(),
                       "failed": report.failed.len()}),
            )
            .await;
            if json {
                println!(
                    "{}",
                    json!({
                        "key_id": key,
                        "resealed": report.resealed,
                        "already_current": report.current,
                        "failed": report.failed.iter()
                            .map(|(id, e)| json!({"id": id, "error": e}))
                            .collect::<Vec<_>>(),
                    })
                );
            } else {
                println!(
                    "re-sealed the secrets of {} webhook(s) with key {key}; {} already were",
                    report.resealed.len(),
                    report.current
                );
                for (id, e) in &report.failed {
                    println!("{id}: not re-sealed: {e}");
                }
            }
            if !report.failed.is_empty() {
                bail!(
                    "{} webhook(s) could not be re-sealed (see above)",
                    report.failed.len()
                );
            }
        }
        SecretKeyCommand::Status { json } => {
            let ring = ring(given, target, warn)?;
            let hooks = store.list_webhooks().await?;
            let (clear, by_key) = usage(&hooks);
            let held = ring.key_ids();
            let file = match ring.source() {
                KeySource::File(f) => Some(f.display().to_string()),
                KeySource::Memory | KeySource::Absent => None,
            };
            if json {
                println!(
                    "{}",
                    json!({"key_file": file, "key_ids": held, "in_clear": clear,
                           "sealed_by_key": by_key})
                );
                return Ok(());
            }
            println!("key file: {}", file.as_deref().unwrap_or("none"));
            for (i, id) in held.iter().enumerate() {
                let n = by_key.get(id).copied().unwrap_or(0);
                let role = if i == 0 { "seals and opens" } else { "opens" };
                println!("  key {id} ({role}): {n} stored secret(s)");
            }
            for (id, n) in by_key.iter().filter(|(id, _)| !held.contains(id)) {
                println!("  key {id} (NOT in the key file): {n} stored secret(s) cannot be opened");
            }
            println!("  in clear: {clear} stored secret(s)");
            if clear > 0 || by_key.keys().any(|id| Some(id) != held.first()) {
                println!("`roster secret-key reseal` seals them all with the first key.");
            }
        }
    }
    Ok(())
}
