//! Fixtures for unit tests: a store in a temporary folder and minimal records.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use hookd_core::model::{Application, Endpoint, Environment, Message};
use hookd_store::secrets::SecretBox;
use hookd_store::Store;

/// The size of the future `f` returns, found from its type alone: `f` is never called.
pub fn future_size<A, F: std::future::Future>(_: impl FnOnce(A) -> F) -> usize {
    std::mem::size_of::<F>()
}

/// A fixed instant for records whose time does not matter.
pub fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("a valid timestamp")
}

/// An SQLite store in `dir`, sealing secrets with `secrets` when given.
pub fn sqlite_store(dir: &tempfile::TempDir, secrets: Option<Arc<SecretBox>>) -> Arc<dyn Store> {
    Arc::new(
        hookd_store_sqlite::SqliteStore::open(&hookd_store_sqlite::SqliteOptions {
            path: dir.path().join("hookd.db"),
            synchronous: hookd_store_sqlite::Synchronous::Normal,
            cache_mib: hookd_store_sqlite::DEFAULT_CACHE_MIB,
        })
        .expect("open the test store")
        .with_secrets(secrets),
    )
}

/// A live application.
pub fn application(id: &str, uid: &str, name: &str) -> Application {
    Application {
        id: id.into(),
        env: Environment::Live,
        uid: Some(uid.into()),
        name: name.into(),
        metadata: BTreeMap::new(),
        throttle_rate: None,
        created_at: at(),
        updated_at: at(),
    }
}

/// An enabled endpoint of `app_id` taking every event, with a plaintext secret.
pub fn endpoint(id: &str, app_id: &str) -> Endpoint {
    Endpoint {
        id: id.into(),
        app_id: app_id.into(),
        uid: None,
        url: format!("http://127.0.0.1:9/{id}"),
        description: String::new(),
        disabled: false,
        event_types: None,
        channels: None,
        throttle_rate: None,
        metadata: BTreeMap::new(),
        secret: format!("whsec_{id}"),
        headers: BTreeMap::new(),
        old_secrets: Vec::new(),
        failing_since: None,
        created_at: at(),
        updated_at: at(),
        destination: None,
    }
}

/// A message of `app_id` with a small payload, kept for a day.
pub fn message(id: &str, app_id: &str) -> Message {
    Message {
        id: id.into(),
        app_id: app_id.into(),
        event_id: None,
        event_type: "test.event".into(),
        channels: None,
        payload: Some("{}".into()),
        created_at: at(),
        expires_at: at() + chrono::Duration::days(1),
    }
}
