//! `--database` checked before the store opens it: a URL with a scheme Roster supports, naming
//! a file Roster can create or write, or a PostgreSQL server. Every refusal is one line that says what to do, instead
//! of SQLite's "unable to open database file" or a server that starts without its tables.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// The default database: `roster.db` in the working directory.
pub const DEFAULT_URL: &str = "sqlite://roster.db";

/// What a database URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A SQLite database file (created if missing).
    SqliteFile(PathBuf),
    /// An in-memory SQLite database (`sqlite::memory:`): gone when the process exits.
    SqliteMemory,
    /// A PostgreSQL database (`postgres://USER@HOST:PORT/DB`); reached when the store opens.
    Postgres,
}

/// Parses a database URL: `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:` or
/// `postgres://USER@HOST:PORT/DB` (also `postgresql://`).
///
/// # Errors
/// A one-line message naming the problem and what to do.
pub fn parse(url: &str) -> Result<Target, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("the database URL is empty; give one such as sqlite://roster.db".into());
    }
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(format!(
            "`{url}` is not a database URL; did you mean sqlite://{url} ?"
        ));
    };
    let valid_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return Err(format!(
            "`{url}` is not a database URL; Roster supports sqlite://PATH (e.g. sqlite://roster.db) \
             and postgres://USER@HOST:PORT/DB"
        ));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {}
        "postgres" | "postgresql" => {
            let host = rest
                .strip_prefix("//")
                .map(|r| r.split(['/', '?']).next().unwrap_or(""))
                .map(|auth| auth.rsplit('@').next().unwrap_or(""));
            if host.is_none_or(str::is_empty) && !rest.contains("host=") {
                return Err(format!(
                    "`{url}` names no PostgreSQL server; give one such as \
                     postgres://roster@127.0.0.1:5432/roster"
                ));
            }
            return Ok(Target::Postgres);
        }
        other => {
            return Err(format!(
                "unsupported database URL scheme `{other}:`; Roster supports sqlite://PATH \
                 (e.g. sqlite://roster.db) and postgres://USER@HOST:PORT/DB"
            ))
        }
    }
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    if path == ":memory:" || rest.contains("mode=memory") {
        return Ok(Target::SqliteMemory);
    }
    if path.is_empty() {
        return Err(format!(
            "`{url}` names no database file; give a path, e.g. sqlite://roster.db (relative to \
             the working directory) or sqlite:///var/lib/roster/roster.db (absolute)"
        ));
    }
    Ok(Target::SqliteFile(PathBuf::from(path)))
}

/// Parses `url` and, for a file, checks that Roster can open it for writing: its directory
/// exists, and the file is writable or can be created there. Leaves nothing behind.
///
/// # Errors
/// A one-line message naming the problem and what to do.
pub fn check(url: &str) -> Result<Target, String> {
    let target = parse(url)?;
    if let Target::SqliteFile(path) = &target {
        check_file(path)?;
    }
    Ok(target)
}

fn check_file(path: &Path) -> Result<(), String> {
    let shown = path.display();
    if path.is_dir() {
        return Err(format!(
            "database path {shown} is a directory; name a file in it, e.g. sqlite://{}",
            path.join("roster.db").display()
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.exists() {
        return Err(format!(
            "the directory of database {shown} does not exist; create it (mkdir -p {}) or \
             choose another path",
            dir.display()
        ));
    }
    if !dir.is_dir() {
        return Err(format!(
            "{} is not a directory, so database {shown} cannot be created in it",
            dir.display()
        ));
    }
    if path.exists() {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| {
                format!(
                    "cannot write to database file {shown} ({e}); give the user running roster \
                     read and write access to it and to its directory"
                )
            })?;
    } else {
        // Create it and remove it again: the store creates it for real, and `check-config`
        // must leave nothing behind.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| {
                format!(
                    "cannot create database file {shown} ({e}); give the user running roster \
                     write access to {} or choose another path",
                    dir.display()
                )
            })?;
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_urls_parse() {
        assert_eq!(
            parse("sqlite://roster.db"),
            Ok(Target::SqliteFile("roster.db".into()))
        );
        assert_eq!(
            parse("sqlite:///var/lib/roster/r.db?mode=rwc"),
            Ok(Target::SqliteFile("/var/lib/roster/r.db".into()))
        );
        assert_eq!(
            parse("sqlite:roster.db"),
            Ok(Target::SqliteFile("roster.db".into()))
        );
        assert_eq!(parse("sqlite::memory:"), Ok(Target::SqliteMemory));
        assert_eq!(
            parse("SQLite://a.db"),
            Ok(Target::SqliteFile("a.db".into()))
        );
        assert_eq!(parse("postgres://u:p@db/roster"), Ok(Target::Postgres));
        assert_eq!(
            parse("postgresql://roster@127.0.0.1:5432/roster?sslmode=disable"),
            Ok(Target::Postgres)
        );
    }

    #[test]
    fn refusals_say_what_to_do() {
        for (url, says) in [
            ("", "is empty"),
            ("   ", "is empty"),
            ("foo", "did you mean sqlite://foo"),
            ("./data/roster.db", "did you mean sqlite://./data/roster.db"),
            ("sqlite://", "names no database file"),
            ("sqlite:", "names no database file"),
            ("sqlite://?mode=rwc", "names no database file"),
            ("postgres:roster", "names no PostgreSQL server"),
            ("postgresql:///roster", "names no PostgreSQL server"),
            (
                "mysql://db/roster",
                "unsupported database URL scheme `mysql:`",
            ),
            ("http://x", "unsupported database URL scheme `http:`"),
        ] {
            let err = parse(url).unwrap_err();
            assert!(err.contains(says), "{url:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn files_are_checked_without_leaving_anything() {
        let dir = std::env::temp_dir().join(format!("roster-dbcheck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("new.db");
        let url = format!("sqlite://{}", db.display());
        assert_eq!(check(&url), Ok(Target::SqliteFile(db.clone())));
        assert!(!db.exists(), "the check leaves no file behind");

        let missing = format!("sqlite://{}/nope/roster.db", dir.display());
        let err = check(&missing).unwrap_err();
        assert!(
            err.contains("does not exist") && err.contains("mkdir -p"),
            "{err}"
        );

        let err = check(&format!("sqlite://{}", dir.display())).unwrap_err();
        assert!(err.contains("is a directory"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
