//! Tests of the PostgreSQL store: the store conformance suite, each test on a database of its
//! own (see [`testdb`](super::testdb)).

use std::sync::Arc;

use async_trait::async_trait;

use super::testdb::TestDb;
use super::PostgresStore;
use crate::conformance::{Backend, SharedDb};
use crate::Store;

#[async_trait]
impl SharedDb for TestDb {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(PostgresStore::open(&self.url).await.unwrap())
    }
}

/// PostgreSQL for the conformance suite: a new database per store, and one that several
/// stores share (as the server and the CLI, or several nodes, share one).
struct PostgresBackend;

#[async_trait]
impl Backend for PostgresBackend {
    async fn fresh(&self) -> Arc<dyn Store> {
        let db = Arc::new(TestDb::new().await);
        let mut store = PostgresStore::open(&db.url).await.unwrap();
        store._testdb = Some(db);
        Arc::new(store)
    }

    async fn shared(&self) -> Box<dyn SharedDb> {
        Box::new(TestDb::new().await)
    }
}

mod conformance {
    use super::PostgresBackend;

    crate::conformance_tests!(PostgresBackend);
}
