//! The SQLite implementation of [`Store`](crate::Store): one file, WAL, durable commits.

/// A Store backed by one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    _private: (),
}
