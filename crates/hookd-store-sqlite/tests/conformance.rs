//! Runs the shared [`hookd_store::conformance`] suite against the SQLite backend.
//!
//! Every test gets a new database file in its own temporary directory; the directory is handed
//! back with the store as the fixture's guard, so it lives exactly as long as the test.

use hookd_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use tempfile::TempDir;

/// A fresh, migrated store with the production durability setting, and the directory holding it.
async fn fresh_store() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let options = SqliteOptions {
        path: dir.path().join("hookd.db"),
        synchronous: Synchronous::default(),
        cache_mib: hookd_store_sqlite::DEFAULT_CACHE_MIB,
    };
    let store = SqliteStore::open(&options).expect("open a fresh SQLite store");
    (store, dir)
}

// Embedded: this process is the database's only user, so the tests of what a restart releases
// apply too.
hookd_store::store_conformance_tests!(fresh_store, embedded);
