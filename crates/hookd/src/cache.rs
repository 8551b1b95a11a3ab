//! In-memory caches on the hot path: endpoints per application, tokens and applications, each
//! bounded in size and by a time-to-live, and invalidated by writes made through this node.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hookd_core::model::{Application, Endpoint, Environment};
use hookd_store::{CatalogStore, StoreResult, TokenRecord, TokenStore};

/// Most entries a cache keeps (applications' endpoint lists, tokens) before it evicts.
const MAX_CACHED: usize = 10_000;

/// Keeps a cache below [`MAX_CACHED`] before an insert: drops what has outlived `ttl`, and
/// everything if that was not enough (the cache refills with what is in use).
fn make_room<V>(entries: &mut HashMap<String, (Instant, V)>, ttl: Duration) {
    if entries.len() >= MAX_CACHED {
        entries.retain(|_, (at, _)| at.elapsed() < ttl);
        if entries.len() >= MAX_CACHED {
            entries.clear();
        }
    }
}

/// When an application's endpoint list was loaded, and the list.
type CachedEndpoints = (Instant, Arc<AppEndpoints>);

/// An application's endpoints as cached: the list for fan-out, and an index by id so the
/// dispatcher finds an attempt's endpoint in O(1) however many the application has.
///
/// The list holds secrets and sensitive header values as stored (sealed when
/// `secrets.main_key` is set): fan-out reads only filters, so a reload decrypts nothing. An
/// endpoint's secrets are opened the first time the dispatcher signs for it, once per load,
/// and what its sends need of it alone is worked out then ([`OpenedEndpoint`]).
#[derive(Debug, Default)]
pub struct AppEndpoints {
    list: Vec<Endpoint>,
    by_id: hookd_store::ids::HashMap<String, usize>,
    opened: Vec<std::sync::OnceLock<Arc<OpenedEndpoint>>>,
}

/// An endpoint with its secrets opened, and its send target prepared from them: its URL parsed,
/// its signing keys decoded and its custom headers checked once, not on every send. Reads as
/// the [`Endpoint`] it was made from.
#[derive(Debug)]
pub struct OpenedEndpoint {
    endpoint: Endpoint,
    /// What every send to this endpoint shares.
    pub target: crate::target::Target,
}

impl OpenedEndpoint {
    /// `endpoint` (secrets opened) with its target prepared.
    pub fn new(endpoint: Endpoint) -> OpenedEndpoint {
        let target = crate::target::Target::of(&endpoint);
        OpenedEndpoint { endpoint, target }
    }
}

impl std::ops::Deref for OpenedEndpoint {
    type Target = Endpoint;

    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl AppEndpoints {
    /// Indexes `list` (secrets as stored).
    pub fn new(list: Vec<Endpoint>) -> AppEndpoints {
        let by_id = list.iter().enumerate().map(|(i, e)| (e.id.clone(), i)).collect();
        let opened = list.iter().map(|_| std::sync::OnceLock::new()).collect();
        AppEndpoints { list, by_id, opened }
    }

    /// The endpoint with this id, secrets as stored (for its filters, URL and state).
    pub fn by_id(&self, id: &str) -> Option<&Endpoint> {
        self.by_id.get(id).map(|i| &self.list[*i])
    }

    /// The endpoint with this id with its secrets opened by `open` and its target prepared,
    /// which happens at most once per endpoint while this list is cached.
    pub fn opened(
        &self,
        id: &str,
        open: impl FnOnce(Endpoint) -> StoreResult<Endpoint>,
    ) -> StoreResult<Option<Arc<OpenedEndpoint>>> {
        let Some(&i) = self.by_id.get(id) else {
            return Ok(None);
        };
        if let Some(e) = self.opened[i].get() {
            return Ok(Some(e.clone()));
        }
        let e = Arc::new(OpenedEndpoint::new(open(self.list[i].clone())?));
        Ok(Some(self.opened[i].get_or_init(|| e).clone()))
    }

    /// How many endpoints have had their secrets opened.
    #[cfg(test)]
    pub fn opened_count(&self) -> usize {
        self.opened.iter().filter(|o| o.get().is_some()).count()
    }
}

impl std::ops::Deref for AppEndpoints {
    type Target = [Endpoint];

    fn deref(&self) -> &[Endpoint] {
        &self.list
    }
}

/// Endpoints per application, cached for fan-out and dispatch.
///
/// Invalidated by every endpoint or application write on this node; the time-to-live bounds
/// staleness for writes made by other nodes sharing the database.
pub struct EndpointCache {
    store: Arc<dyn CatalogStore>,
    ttl: Duration,
    entries: RwLock<HashMap<String, CachedEndpoints>>,
}

impl EndpointCache {
    /// An empty cache.
    pub fn new(store: Arc<dyn CatalogStore>, ttl: Duration) -> EndpointCache {
        EndpointCache {
            store,
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// Every endpoint of `app_id`, secrets as stored (see [`AppEndpoints`]).
    pub async fn for_app(&self, app_id: &str) -> StoreResult<Arc<AppEndpoints>> {
        if let Some((at, list)) = self.entries.read().expect("cache poisoned").get(app_id) {
            if at.elapsed() < self.ttl {
                return Ok(list.clone());
            }
        }
        let list = Arc::new(AppEndpoints::new(self.store.all_endpoints_sealed(app_id).await?));
        let mut entries = self.entries.write().expect("cache poisoned");
        make_room(&mut entries, self.ttl);
        entries.insert(app_id.to_string(), (Instant::now(), list.clone()));
        Ok(list)
    }

    /// One endpoint by id, with its secrets opened and its target prepared (to send to it).
    pub async fn get(&self, app_id: &str, endpoint_id: &str) -> StoreResult<Option<Arc<OpenedEndpoint>>> {
        let store = &self.store;
        self.for_app(app_id)
            .await?
            .opened(endpoint_id, |e| store.open_endpoint_secrets(e))
    }

    /// One endpoint as stored now, read past the cache (whether a delivery's endpoint exists
    /// that this node's cached list lacks).
    pub async fn fresh(&self, app_id: &str, endpoint_id: &str) -> StoreResult<Option<Endpoint>> {
        self.store.get_endpoint(app_id, endpoint_id).await
    }

    /// Forgets `app_id`'s endpoints after a write.
    pub fn invalidate(&self, app_id: &str) {
        self.entries.write().expect("cache poisoned").remove(app_id);
    }
}

/// Tokens verified recently, so the hot path does not read the database per request.
pub struct TokenCache {
    store: Arc<dyn TokenStore>,
    ttl: Duration,
    entries: RwLock<HashMap<String, (Instant, TokenRecord)>>,
}

impl TokenCache {
    /// An empty cache.
    pub fn new(store: Arc<dyn TokenStore>, ttl: Duration) -> TokenCache {
        TokenCache {
            store,
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The token whose hash is `hash`, if it exists. Unknown tokens are not cached, so a
    /// newly created token works at once.
    pub async fn find(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        if let Some((at, t)) = self.entries.read().expect("cache poisoned").get(hash) {
            if at.elapsed() < self.ttl {
                return Ok(Some(t.clone()));
            }
        }
        let found = self.store.find_token(hash).await?;
        if let Some(t) = &found {
            let mut entries = self.entries.write().expect("cache poisoned");
            make_room(&mut entries, self.ttl);
            entries.insert(hash.to_string(), (Instant::now(), t.clone()));
        }
        Ok(found)
    }

    /// Forgets every cached token (after a revocation on this node).
    pub fn clear(&self) {
        self.entries.write().expect("cache poisoned").clear();
    }
}

/// Applications by environment and id-or-uid, so publishing a message does not read the
/// database to resolve its application every time.
///
/// Any application write on this node clears the cache; the time-to-live bounds staleness for
/// writes made by other nodes. Misses are not cached, so a new application is found at once.
pub struct AppCache {
    store: Arc<dyn CatalogStore>,
    ttl: Duration,
    entries: RwLock<HashMap<(Environment, String), (Instant, Application)>>,
}

impl AppCache {
    /// An empty cache.
    pub fn new(store: Arc<dyn CatalogStore>, ttl: Duration) -> AppCache {
        AppCache {
            store,
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The application `key` (id or uid) names in `env`.
    pub async fn get(&self, env: Environment, key: &str) -> StoreResult<Option<Application>> {
        let cache_key = (env, key.to_string());
        if let Some((at, app)) = self.entries.read().expect("cache poisoned").get(&cache_key) {
            if at.elapsed() < self.ttl {
                return Ok(Some(app.clone()));
            }
        }
        let found = self.store.get_application(env, key).await?;
        if let Some(app) = &found {
            let mut entries = self.entries.write().expect("cache poisoned");
            if entries.len() > 100_000 {
                entries.clear(); // bound memory; it refills with what is in use
            }
            entries.insert(cache_key, (Instant::now(), app.clone()));
        }
        Ok(found)
    }

    /// The application with id `app_id`, whatever its environment (for workers, which know
    /// the id but not the environment). Every environment's cache entry is checked before the
    /// database, so a hit costs no query whichever environment the application is in.
    pub async fn by_id(&self, app_id: &str) -> StoreResult<Option<Application>> {
        const ENVS: [Environment; 2] = [Environment::Live, Environment::Test];
        {
            let entries = self.entries.read().expect("cache poisoned");
            for env in ENVS {
                if let Some((at, app)) = entries.get(&(env, app_id.to_string())) {
                    if at.elapsed() < self.ttl {
                        return Ok(Some(app.clone()));
                    }
                }
            }
        }
        for env in ENVS {
            if let Some(app) = self.get(env, app_id).await? {
                return Ok(Some(app));
            }
        }
        Ok(None)
    }

    /// Forgets application `app_id` (under its id and any uid) after it was changed or
    /// deleted; other applications stay cached.
    pub fn invalidate(&self, app_id: &str) {
        self.entries
            .write()
            .expect("cache poisoned")
            .retain(|_, (_, app)| app.id != app_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{application, endpoint, sqlite_store};
    use std::collections::BTreeMap;

    #[test]
    fn a_full_cache_drops_expired_entries_first_and_everything_if_needed() {
        let mut entries: HashMap<String, (Instant, u8)> = HashMap::new();
        let old = Instant::now() - Duration::from_secs(60);
        for i in 0..MAX_CACHED - 1 {
            entries.insert(format!("old{i}"), (old, 0));
        }
        entries.insert("fresh".into(), (Instant::now(), 1));
        make_room(&mut entries, Duration::from_secs(10));
        assert_eq!(entries.len(), 1, "the expired ones went, the fresh one stayed");
        for i in 0..MAX_CACHED {
            entries.insert(format!("new{i}"), (Instant::now(), 2));
        }
        make_room(&mut entries, Duration::from_secs(10));
        assert!(entries.is_empty(), "all fresh and still too many: cleared");
    }

    #[tokio::test]
    async fn a_cached_endpoint_list_opens_only_the_secrets_signed_for_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let key = hookd_store::secrets::generate_key();
        let sealer = Arc::new(hookd_store::secrets::SecretBox::new(&key, &[]).unwrap());
        let store = sqlite_store(&dir, Some(sealer));
        let app = application("app_a", "ws_a", "A");
        store.create_application(&app).await.unwrap();
        for i in 0..50 {
            let endpoint = Endpoint {
                secret: format!("whsec_plain{i:02}"),
                headers: BTreeMap::from([("Authorization".to_string(), format!("Bearer t{i}"))]),
                ..endpoint(&format!("ep_{i:02}"), &app.id)
            };
            store.create_endpoint(&endpoint).await.unwrap();
        }
        let cache = EndpointCache::new(store.clone(), Duration::from_secs(3600));
        let list = cache.for_app(&app.id).await.unwrap();
        assert_eq!(list.len(), 50);
        assert!(
            list.iter()
                .all(|e| e.secret.starts_with(hookd_core::validate::SEALED_PREFIX)),
            "loading the list for fan-out decrypts nothing"
        );
        assert_eq!(list.opened_count(), 0);

        let signed = cache.get(&app.id, "ep_07").await.unwrap().unwrap();
        assert_eq!(signed.secret, "whsec_plain07");
        assert_eq!(signed.headers["Authorization"], "Bearer t7");
        assert_eq!(list.opened_count(), 1, "only the endpoint signed for was opened");
        let again = cache.get(&app.id, "ep_07").await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&signed, &again), "opened once, then served from the cache");
        assert_eq!(list.opened_count(), 1);
        assert!(cache.get(&app.id, "ep_missing").await.unwrap().is_none());

        // A stored value that does not open is an error for that endpoint alone.
        let broken = AppEndpoints::new(vec![Endpoint::clone(&signed)]);
        let failed = broken.opened("ep_07", |_| Err(hookd_store::StoreError::message("does not open")));
        assert!(failed.is_err());
        assert_eq!(broken.opened_count(), 0, "a failed open is not cached");
    }

    #[tokio::test]
    async fn invalidating_one_application_keeps_the_others_cached() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir, None);
        let (a, b) = (application("app_a", "ws_a", "A"), application("app_b", "ws_b", "B"));
        store.create_application(&a).await.unwrap();
        store.create_application(&b).await.unwrap();
        let cache = AppCache::new(store.clone(), Duration::from_secs(3600));
        for key in ["app_a", "ws_a", "app_b"] {
            assert!(cache.get(Environment::Live, key).await.unwrap().is_some());
        }
        // Both change in the database; only A is invalidated.
        store
            .update_application(&application("app_a", "ws_a", "A2"))
            .await
            .unwrap();
        store
            .update_application(&application("app_b", "ws_b", "B2"))
            .await
            .unwrap();
        cache.invalidate("app_a");
        let name = |key: &'static str| {
            let cache = &cache;
            async move { cache.get(Environment::Live, key).await.unwrap().unwrap().name }
        };
        assert_eq!(name("ws_a").await, "A2", "under its uid too");
        assert_eq!(name("app_a").await, "A2");
        assert_eq!(
            name("app_b").await,
            "B",
            "the other application is still served from the cache"
        );
    }
}
