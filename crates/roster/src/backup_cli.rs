//! `roster backup` and `roster restore`: a consistent copy of a live SQLite database, and that
//! copy put back in place (the work is `roster_store::sqlite::backup`; this checks the
//! arguments and prints it). PostgreSQL has its own tools, which the refusal names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use roster_store::sqlite::backup::{self, BackupError, BackupOptions, Copied};
use serde_json::json;

use crate::database::{self, Target};
use crate::{redact, DbArgs};

/// `roster backup`'s options.
#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The file to write the backup to (written beside it under a temporary name, then
    /// renamed, so it is never half written).
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Database pages (4 KiB each) copied per step.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub step_pages: u32,
    /// Milliseconds to pause between steps, leaving the disk to the server.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub pause_ms: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `roster restore`'s options.
#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The backup file (made by `roster backup`).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Replace the database if it exists (the server must be stopped).
    #[arg(long)]
    pub force: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The SQLite file `--database` names; PostgreSQL and in-memory databases are refused with
/// what to use instead.
fn sqlite_file(db: &DbArgs, what: &str) -> Result<(String, PathBuf)> {
    let url = db.settings()?.database_url()?;
    match database::parse(&url).map_err(|e| anyhow!(e))? {
        Target::SqliteFile(path) => Ok((url, path)),
        Target::SqliteMemory => bail!("an in-memory database (sqlite::memory:) cannot be {what}"),
        Target::Postgres => bail!(
            "`roster backup` and `roster restore` work on a SQLite database; {} is PostgreSQL: \
             use pg_dump and pg_restore (e.g. `pg_dump --format=custom --file roster.dump \
             URL`) or PostgreSQL's continuous archiving (docs/deployment.md)",
            redact(&url)
        ),
    }
}

/// Runs `roster backup`.
pub async fn backup(db: &DbArgs, args: BackupArgs) -> Result<()> {
    let (url, source) = sqlite_file(db, "backed up")?;
    let options = BackupOptions {
        pages_per_step: args.step_pages,
        pause: Duration::from_millis(args.pause_ms),
        force: args.force,
    };
    let to = args.to.clone();
    let copied =
        tokio::task::spawn_blocking(move || backup::backup(&source, &to, options, &mut |_, _| {}))
            .await
            .context("the backup thread")?
            .map_err(|e| refusal(e, "backup file", &args.to))?;
    if args.json {
        let mut out = report(&copied);
        out["backup"] = json!(copied.path.display().to_string());
        out["database_url"] = json!(redact(&url));
        println!("{out}");
    } else {
        println!(
            "backed up {} to {}: {} ({} pages in {} steps) in {:.2} s; schema version {}",
            redact(&url),
            copied.path.display(),
            size(copied.bytes),
            copied.pages,
            copied.steps,
            copied.elapsed.as_secs_f64(),
            copied.schema_version
        );
    }
    Ok(())
}

/// Runs `roster restore`.
pub async fn restore(db: &DbArgs, args: RestoreArgs) -> Result<()> {
    let (url, target) = sqlite_file(db, "restored")?;
    let from = args.from.clone();
    let force = args.force;
    let target_for_error = target.clone();
    let copied = tokio::task::spawn_blocking(move || backup::restore(&from, &target, force))
        .await
        .context("the restore thread")?
        .map_err(|e| refusal(e, "database", &target_for_error))?;
    if args.json {
        let mut out = report(&copied);
        out["database_url"] = json!(redact(&url));
        out["from"] = json!(args.from.display().to_string());
        out["integrity_check"] = json!("ok");
        println!("{out}");
    } else {
        let migrate = if copied.schema_version < copied.latest_schema_version {
            format!(
                "; `roster serve` applies migrations {}..={} when it starts",
                copied.schema_version + 1,
                copied.latest_schema_version
            )
        } else {
            String::new()
        };
        println!(
            "restored {} into {}: {}, integrity check ok, schema version {}{migrate}",
            args.from.display(),
            redact(&url),
            size(copied.bytes),
            copied.schema_version
        );
    }
    Ok(())
}

/// A refusal in the terms of the command line (which flag changes it).
fn refusal(e: BackupError, what: &str, path: &Path) -> anyhow::Error {
    match e {
        BackupError::Exists(_) => anyhow!(
            "the {what} {} already exists; pass --force to replace it",
            path.display()
        ),
        other => anyhow!(other),
    }
}

/// The figures both commands print with `--json`.
fn report(c: &Copied) -> serde_json::Value {
    json!({
        "bytes": c.bytes,
        "pages": c.pages,
        "steps": c.steps,
        "seconds": c.elapsed.as_secs_f64(),
        "schema_version": c.schema_version,
        "latest_schema_version": c.latest_schema_version,
    })
}

fn size(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // a size shown to one decimal
    let mib = bytes as f64 / (1024.0 * 1024.0);
    format!("{mib:.1} MiB")
}
