//! `roster db`: operations on a whole database. `db copy` moves an installation from SQLite
//! to PostgreSQL (the work is `roster_store::copy`; this prints it).

use std::fmt::Write as _;

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use roster_store::copy::{sqlite_to_postgres, TableCount};

use crate::database::{self, Target};
use crate::redact;

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Copy a whole installation from SQLite into an empty PostgreSQL database: tenants,
    /// tokens, users, groups and memberships, events with their seqs, webhooks and their
    /// cursors, logs, admin keys and console operators. The upgrade path from one node to
    /// several (docs/deployment.md).
    ///
    /// Stop the server that uses the SQLite file first: the copy reads one snapshot, and a
    /// write made after it began would be missing from the copy. The target must be empty (a
    /// new database; it is migrated first): a target with rows is refused and left alone.
    /// Everything is written in one transaction, and the row count of every table is compared
    /// before it commits, so a copy that fails leaves the target empty. The SQLite file is not
    /// changed beyond its migrations: keep it as the way back.
    Copy {
        /// The SQLite database to copy: sqlite://PATH (e.g. sqlite:///var/lib/roster/roster.db).
        #[arg(long)]
        from: String,
        /// The empty PostgreSQL database to copy into: postgres://USER@HOST:PORT/DB (the
        /// variable keeps a password out of the process list).
        #[arg(long, env = "ROSTER_COPY_TO", hide_env_values = true)]
        to: String,
    },
}

/// Runs a `roster db` command.
pub async fn db(command: DbCommand) -> Result<()> {
    match command {
        DbCommand::Copy { from, to } => copy(&from, &to).await,
    }
}

async fn copy(from: &str, to: &str) -> Result<()> {
    match database::check(from).map_err(|e| anyhow!("--from: {e}"))? {
        Target::SqliteFile(_) => {}
        Target::SqliteMemory => bail!("--from: an in-memory database has nothing to copy"),
        Target::Postgres => {
            bail!("--from takes the SQLite database (sqlite://PATH); the copy goes to PostgreSQL")
        }
    }
    if database::parse(to).map_err(|e| anyhow!("--to: {e}"))? != Target::Postgres {
        bail!("--to takes the PostgreSQL database to copy into (postgres://USER@HOST:PORT/DB)");
    }
    eprintln!("copying {} into {}", redact(from), redact(to));
    let report = sqlite_to_postgres(from, to, |t| {
        eprintln!("  copied {:<28} {:>10} rows", t.table, t.target);
    })
    .await?;
    print!("{}", table(&report.tables));
    let rows: u64 = report
        .tables
        .iter()
        .filter(|t| !t.derived)
        .map(|t| t.target)
        .sum();
    println!(
        "verified: every table has as many rows on PostgreSQL as on SQLite; {rows} rows in \
         {:.1} s",
        report.elapsed.as_secs_f64()
    );
    if report
        .tables
        .iter()
        .any(|t| t.table == "webhooks" && t.target > 0)
    {
        let beside = match database::parse(from) {
            Ok(Target::SqliteFile(p)) => format!("{}.key", p.display()),
            _ => "<database file>.key".to_owned(),
        };
        println!(
            "webhook signing secrets were copied sealed: give every PostgreSQL node (and the \
             CLI) the key file that sealed them with --secret-key-file: {beside} beside the \
             SQLite database, unless its server was given another"
        );
    }
    Ok(())
}

/// The verified counts, one line per table.
fn table(tables: &[TableCount]) -> String {
    let mut out = format!("{:<32} {:>12} {:>12}\n", "table", "sqlite", "postgres");
    for t in tables {
        let name = if t.derived {
            format!("{} (derived)", t.table)
        } else {
            t.table.clone()
        };
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{name:<32} {:>12} {:>12}", t.source, t.target);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_and_marks_derived_tables() {
        let t = |table: &str, n: u64, derived: bool| TableCount {
            table: table.into(),
            source: n,
            target: n,
            derived,
        };
        let out = table(&[t("resources", 100_001, false), t("member_counts", 2, true)]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("table"));
        assert!(lines[1].starts_with("resources ") && lines[1].ends_with(" 100001"));
        assert!(lines[2].starts_with("member_counts (derived)"));
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{out}");
    }
}
