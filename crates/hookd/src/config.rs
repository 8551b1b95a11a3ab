//! Configuration: one struct, loaded and validated once at start, then passed down.
//!
//! Layers, later ones winning: built-in defaults → `hookd.toml` (in the working directory, or
//! `--config FILE`) → environment variables `HOOKD_<KEY>` with `__` between nested keys
//! (`HOOKD_DELIVERY__RETRY_SCHEDULE=5,300,1800`) → command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use hookd_core::redact;
use serde::{Deserialize, Deserializer, Serialize};

/// Everything `hookd serve` can be told. Its `Debug` form hides secrets (the database URL's
/// password, the metrics token, keys).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// Directory holding the embedded database (`hookd.db`).
    pub data_dir: PathBuf,
    /// `postgres://user@host/db` to use PostgreSQL (several nodes may share it); empty for the
    /// embedded SQLite database in `data_dir`.
    pub database: String,
    /// Delivery engine settings.
    pub delivery: DeliveryConfig,
    /// API settings.
    pub api: ApiConfig,
    /// Storage settings.
    pub storage: StorageConfig,
    /// Operational webhooks.
    pub operational_webhook: OperationalWebhookConfig,
    /// The event catalog.
    pub catalog: CatalogConfig,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// Deleting old messages.
    pub retention: RetentionConfig,
    /// Encryption of endpoint secrets at rest.
    pub secrets: SecretsConfig,
    /// What the sandbox (test environment) may reach.
    pub sandbox: SandboxConfig,
    /// The operator dashboard.
    pub dashboard: DashboardConfig,
    /// The consumer portal served at `/portal`.
    pub portal: PortalConfig,
}

/// The consumer portal: what `app-portal-access` links open, and how it looks when embedded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct PortalConfig {
    /// The base URL portal links start with (`https://hooks.example.com`). Empty: the
    /// dashboard's `public_url`, else `http://` and the listen address. Never taken from a
    /// request's `Host` header.
    pub public_url: String,
    /// Who may show the portal in an `<iframe>`: CSP `frame-ancestors` sources such as
    /// `https://app.example.com`. Empty: no one.
    #[serde(deserialize_with = "string_list")]
    pub frame_ancestors: Vec<String>,
    /// Accent colour, `#rrggbb` (a link may ask for another with `primaryColor`).
    pub primary_color: String,
    /// Dark colours whatever the browser prefers (a link may ask with `darkMode=true`).
    pub dark_mode: bool,
    /// An `https://` image shown instead of hookd's name (a link may ask with `icon`).
    pub logo_url: String,
    /// A CSS font family name (a link may ask with `fontFamily`).
    pub font_family: String,
    /// Leaves out the "powered by hookd" line (a link may ask with `hidePoweredBy=true`).
    pub hide_powered_by: bool,
}

/// The operator dashboard served at `/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DashboardConfig {
    /// Serve the dashboard at all.
    pub enabled: bool,
    /// How long a dashboard session lasts after signing in (at most 30 days).
    pub session_ttl_secs: u64,
    /// The address people reach hookd at (`https://hooks.example.com`). When it is `https`,
    /// session cookies are marked `Secure` (as they are for any request a proxy reports as
    /// `https` with `X-Forwarded-Proto`).
    pub public_url: String,
}

impl PortalConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.into(),
        };
        if let Some(bad) = self.frame_ancestors.iter().find(|s| !is_frame_source(s)) {
            return Err(invalid(
                "portal.frame_ancestors",
                &format!("{bad:?} is not a frame source: use 'self' or an origin such as https://app.example.com"),
            ));
        }
        if !self.primary_color.is_empty() && !is_color(&self.primary_color) {
            return Err(invalid("portal.primary_color", "must be a colour written #rrggbb"));
        }
        if !self.logo_url.is_empty() && !is_logo_url(&self.logo_url) {
            return Err(invalid("portal.logo_url", "must be an https:// URL"));
        }
        if !self.font_family.is_empty() && !is_font_family(&self.font_family) {
            return Err(invalid(
                "portal.font_family",
                "must be a font name of letters, digits, spaces and hyphens (at most 64)",
            ));
        }
        Ok(())
    }
}

/// A CSP `frame-ancestors` source hookd accepts: `'self'`, or an origin (scheme optional, host
/// possibly starting `*.`, port optional) with nothing that could end the directive.
pub fn is_frame_source(s: &str) -> bool {
    if s == "'self'" {
        return true;
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let (host, port) = rest.split_once(':').unwrap_or((rest, ""));
    let host = host.strip_prefix("*.").unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && (port.is_empty() && !rest.ends_with(':') || port == "*" || port.parse::<u16>().is_ok())
}

/// `#rrggbb`.
pub fn is_color(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
}

/// An `https://` URL with a host, short enough for a page, with nothing to escape into CSS or
/// HTML beyond what the templates escape.
pub fn is_logo_url(s: &str) -> bool {
    s.len() <= 2048 && url::Url::parse(s).is_ok_and(|u| u.scheme() == "https" && u.host().is_some())
}

/// A font family name that can be written into a stylesheet as is.
pub fn is_font_family(s: &str) -> bool {
    !s.trim().is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            enabled: true,
            session_ttl_secs: 12 * 3600,
            public_url: String::new(),
        }
    }
}

/// What the sandbox may reach beyond the live environment's address policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct SandboxConfig {
    /// Let test-environment deliveries reach private networks (RFC 1918, IPv6 unique-local) as
    /// well as loopback. Off by default: anyone holding a sandbox token (a portal link of the
    /// test environment included) could otherwise make hookd probe the services around it.
    pub allow_private_networks: bool,
}

/// Keys that seal endpoint secrets and sensitive header values in the database.
#[derive(Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct SecretsConfig {
    /// Base64 of 32 random bytes (`hookd secrets generate-key`); seals new values. Empty keeps
    /// secrets unencrypted (hookd warns at start).
    pub main_key: String,
    /// Earlier keys, still accepted for reading while `hookd secrets rotate` re-seals.
    #[serde(deserialize_with = "string_list")]
    pub previous_keys: Vec<String>,
}

impl std::fmt::Debug for SecretsConfig {
    /// Keys never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsConfig")
            .field("main_key", &if self.main_key.is_empty() { "" } else { "[redacted]" })
            .field("previous_keys", &self.previous_keys.len())
            .finish()
    }
}

impl SecretsConfig {
    /// The box built from the keys, or `None` without a main key.
    pub fn secret_box(&self) -> Result<Option<std::sync::Arc<hookd_store::secrets::SecretBox>>, ConfigError> {
        if self.main_key.is_empty() {
            return Ok(None);
        }
        hookd_store::secrets::SecretBox::new(&self.main_key, &self.previous_keys)
            .map(|b| Some(std::sync::Arc::new(b)))
            .map_err(|reason| ConfigError::Invalid {
                key: "secrets.main_key",
                reason,
            })
    }
}

/// How long messages are kept (payloads expire on their own `payloadRetentionPeriod`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct RetentionConfig {
    /// Delete messages (with their deliveries and attempts) this many days after they were
    /// published, once every delivery is finished; unset keeps them.
    pub prune_after_days: Option<u32>,
}

/// Where `/metrics` is served.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MetricsConfig {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// A separate address for `/metrics` (e.g. `0.0.0.0:9071` for a scraper on another host);
    /// unset serves it on the API listener.
    pub listen: Option<SocketAddr>,
    /// When set, `/metrics` answers only requests with `Authorization: Bearer <token>`.
    pub token: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: None,
            token: String::new(),
        }
    }
}

/// The URL with its password, if any, replaced by `***` (the user name stays).
pub fn redact_url(url: &str) -> String {
    redact::url(url, "***", redact::Keep::User).unwrap_or_else(|| url.to_string())
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let metrics_token = if self.metrics.token.is_empty() { "" } else { "***" };
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &redact_url(&self.database))
            .field("delivery", &self.delivery)
            .field("api", &self.api)
            .field("storage", &self.storage)
            .field("operational_webhook", &self.operational_webhook)
            .field("catalog", &self.catalog)
            .field("metrics.enabled", &self.metrics.enabled)
            .field("metrics.listen", &self.metrics.listen)
            .field("metrics.token", &metrics_token)
            .field("retention", &self.retention)
            .field("secrets", &self.secrets)
            .field("sandbox", &self.sandbox)
            .finish()
    }
}

/// What happens to a message whose payload does not match its event type's schema.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Validation {
    /// Refuse it with 422, pointing into the payload.
    Reject,
    /// Accept it and log a warning.
    Warn,
    /// Do not validate.
    Off,
}

/// Event catalog settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CatalogConfig {
    /// Payload validation for both environments; unset means `reject` in the test environment
    /// and `warn` in live.
    pub validation: Option<Validation>,
    /// Load the built-in event catalog into an environment that has never had an event type.
    pub builtin: bool,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            validation: None,
            builtin: true,
        }
    }
}

impl CatalogConfig {
    /// The validation mode of `env`.
    pub fn validation_for(&self, env: hookd_core::model::Environment) -> Validation {
        self.validation.unwrap_or(match env {
            hookd_core::model::Environment::Live => Validation::Warn,
            hookd_core::model::Environment::Test => Validation::Reject,
        })
    }
}

/// Highest `delivery.engine_nice` (Linux's lowest priority).
pub const MAX_ENGINE_NICE: u8 = 19;

/// How messages are delivered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DeliveryConfig {
    /// Seconds between attempts; one more attempt than entries. Accepts a list or `"5,300,…"`.
    #[serde(deserialize_with = "seconds_list")]
    pub retry_schedule: Vec<u64>,
    /// Per-request timeout in seconds (1–30).
    pub timeout_secs: u64,
    /// Most requests in flight across all endpoints.
    pub max_concurrency: usize,
    /// Most requests in flight to one endpoint.
    pub endpoint_concurrency: usize,
    /// Most requests in flight to the endpoints of one application.
    pub app_concurrency: usize,
    /// Most deliveries held in memory (waiting for a slot or being sent), in total.
    pub backlog: usize,
    /// Most of them for one endpoint; the rest of its due work waits in the database.
    pub endpoint_backlog: usize,
    /// Most of them for one application.
    pub app_backlog: usize,
    /// How often due retries are looked for, in milliseconds.
    pub poll_interval_ms: u64,
    /// How long a claimed delivery stays reserved for its worker, in seconds.
    pub lease_secs: u64,
    /// Subnets deliveries may reach although they are private, loopback or otherwise refused
    /// (SSRF protection). Accepts a list or `"10.0.0.0/8,127.0.0.1/32"`.
    #[serde(deserialize_with = "string_list")]
    pub allowed_subnets: Vec<String>,
    /// Accept `http://` endpoint URLs in the live environment (https is required otherwise).
    pub allow_http: bool,
    /// An endpoint whose deliveries keep exhausting with no success for this long (seconds) is
    /// disabled (default 5 days).
    pub disable_after_secs: u64,
    /// Consecutive failures after which an endpoint's circuit opens (0 turns the breaker off).
    pub circuit_breaker_threshold: u32,
    /// How long an open circuit defers an endpoint's deliveries before one probe, in seconds;
    /// doubles after each failed probe, up to 10 minutes.
    pub circuit_breaker_cooldown_secs: u64,
    /// At shutdown, how long requests already in flight may take to finish (and be recorded)
    /// before they are abandoned and their deliveries given back, in seconds.
    pub shutdown_grace_secs: u64,
    /// Send every delivery through this proxy (`http://host:port` for HTTP CONNECT, or
    /// `socks5://host:port`), so consumers can allow-list the proxy's address; empty sends
    /// directly. Credentials go in the URL (`http://user:pass@host:port`).
    pub proxy: String,
    /// Local address deliveries are sent from (for hosts with several addresses); empty lets
    /// the system choose.
    pub source_address: String,
    /// On SQLite, how far below the API's CPU priority the delivery engine's own threads run,
    /// as a nice increment (0–19; 0 runs them at the same priority). On PostgreSQL the engine
    /// shares the API's threads and this has no effect.
    pub engine_nice: u8,
}

/// Where hookd reports on its own deliveries (Svix's operational webhooks).
#[derive(Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct OperationalWebhookConfig {
    /// The operator's endpoint URL; empty turns operational webhooks off.
    pub url: String,
    /// Its signing secret (`whsec_…` or `whsk_…`), required with a URL.
    pub secret: String,
}

impl std::fmt::Debug for OperationalWebhookConfig {
    /// The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperationalWebhookConfig")
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// API behaviour.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ApiConfig {
    /// Largest accepted request body in bytes (larger → 413).
    pub max_body_bytes: usize,
    /// Requests per second one token may make (0 turns the limit off); more → 429.
    pub rate_limit_per_sec: u32,
    /// Requests a token may make at once above its steady rate.
    pub rate_limit_burst: u32,
    /// Longest a request may take, in seconds, reading its body included (longer → 503).
    pub request_timeout_secs: u64,
}

/// Database settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StorageConfig {
    /// SQLite commit durability: `full` (survives power loss) or `normal` (survives a crash).
    pub sqlite_synchronous: String,
    /// Memory for SQLite's page caches, in MiB, all connections together.
    pub sqlite_cache_mib: u32,
    /// Most PostgreSQL connections one node opens.
    pub postgres_pool_size: u32,
    /// PostgreSQL schema holding hookd's tables (it must exist); empty for the server's
    /// `search_path`, usually `public`. Lets several installations share one database.
    pub postgres_schema: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8071)),
            data_dir: PathBuf::from("./hookd-data"),
            database: String::new(),
            delivery: DeliveryConfig::default(),
            api: ApiConfig::default(),
            storage: StorageConfig::default(),
            operational_webhook: OperationalWebhookConfig::default(),
            catalog: CatalogConfig::default(),
            metrics: MetricsConfig::default(),
            retention: RetentionConfig::default(),
            secrets: SecretsConfig::default(),
            sandbox: SandboxConfig::default(),
            dashboard: DashboardConfig::default(),
            portal: PortalConfig::default(),
        }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            retry_schedule: hookd_core::retry::DEFAULT_SCHEDULE.to_vec(),
            timeout_secs: 15,
            max_concurrency: 512,
            endpoint_concurrency: 64,
            app_concurrency: 128,
            backlog: 10_000,
            endpoint_backlog: 512,
            app_backlog: 1_000,
            poll_interval_ms: 500,
            lease_secs: 20,
            allowed_subnets: Vec::new(),
            allow_http: false,
            disable_after_secs: 5 * 24 * 3600,
            circuit_breaker_threshold: 10,
            circuit_breaker_cooldown_secs: 30,
            shutdown_grace_secs: 30,
            proxy: String::new(),
            source_address: String::new(),
            engine_nice: 5,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1024 * 1024,
            rate_limit_per_sec: 5000,
            rate_limit_burst: 10_000,
            request_timeout_secs: 30,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            sqlite_synchronous: "full".into(),
            sqlite_cache_mib: hookd_store_sqlite::DEFAULT_CACHE_MIB,
            postgres_pool_size: 16,
            postgres_schema: String::new(),
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer could not be read or parsed.
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value is out of range.
    #[error("configuration: {key}: {reason}")]
    Invalid {
        /// Dotted key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl Config {
    /// Loads defaults → `file` (if it exists; `hookd.toml` when `None`) → `HOOKD_*`.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let path = file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("hookd.toml"));
        if file.is_some() && !path.exists() {
            return Err(ConfigError::Invalid {
                key: "config",
                reason: format!("{} does not exist", path.display()),
            });
        }
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&path))
            .merge(Env::prefixed("HOOKD_").split("__"))
            .extract()
            .map_err(Box::new)?;
        Ok(config)
    }

    /// Where portal links point: `portal.public_url`, else `dashboard.public_url`, else
    /// `http://` and the listen address (loopback for an unspecified one); no trailing `/`.
    pub fn portal_base_url(&self) -> String {
        let configured = [&self.portal.public_url, &self.dashboard.public_url]
            .into_iter()
            .find(|u| !u.is_empty());
        match configured {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let mut addr = self.listen;
                if addr.ip().is_unspecified() {
                    addr.set_ip(match addr {
                        SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    });
                }
                format!("http://{addr}")
            }
        }
    }

    /// Checks ranges; call after flags are applied.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.secrets.secret_box()?;
        if self.api.request_timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "api.request_timeout_secs",
                reason: "must be at least 1".into(),
            });
        }
        if !(60..=30 * 86_400).contains(&self.dashboard.session_ttl_secs) {
            return Err(ConfigError::Invalid {
                key: "dashboard.session_ttl_secs",
                reason: "must be between 60 seconds and 30 days".into(),
            });
        }
        for (key, value) in [
            ("dashboard.public_url", &self.dashboard.public_url),
            ("portal.public_url", &self.portal.public_url),
        ] {
            let ok = value.is_empty()
                || url::Url::parse(value).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be an http:// or https:// URL with a host".into(),
                });
            }
        }
        self.portal.validate()?;
        if self.retention.prune_after_days == Some(0) {
            return Err(ConfigError::Invalid {
                key: "retention.prune_after_days",
                reason: "must be at least 1 (or unset to keep messages)".into(),
            });
        }
        if !self.delivery.proxy.is_empty() {
            let ok = url::Url::parse(&self.delivery.proxy)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https" | "socks5" | "socks5h") && u.host().is_some());
            if !ok {
                return Err(ConfigError::Invalid {
                    key: "delivery.proxy",
                    reason: "must be an http://, https:// or socks5:// URL with a host".into(),
                });
            }
        }
        if !self.delivery.source_address.is_empty() && self.delivery.source_address.parse::<std::net::IpAddr>().is_err()
        {
            return Err(ConfigError::Invalid {
                key: "delivery.source_address",
                reason: "must be an IP address".into(),
            });
        }
        let d = &self.delivery;
        if !(1..=30).contains(&d.timeout_secs) {
            return Err(ConfigError::Invalid {
                key: "delivery.timeout_secs",
                reason: "must be between 1 and 30".into(),
            });
        }
        for (key, value, what) in [
            ("delivery.max_concurrency", d.max_concurrency, "concurrency limits"),
            (
                "delivery.endpoint_concurrency",
                d.endpoint_concurrency,
                "concurrency limits",
            ),
            ("delivery.app_concurrency", d.app_concurrency, "concurrency limits"),
            ("delivery.backlog", d.backlog, "backlog limits"),
            ("delivery.endpoint_backlog", d.endpoint_backlog, "backlog limits"),
            ("delivery.app_backlog", d.app_backlog, "backlog limits"),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    reason: format!("{what} must be at least 1"),
                });
            }
        }
        if d.engine_nice > MAX_ENGINE_NICE {
            return Err(ConfigError::Invalid {
                key: "delivery.engine_nice",
                reason: format!("must be between 0 and {}", MAX_ENGINE_NICE),
            });
        }
        if d.lease_secs < 4 {
            return Err(ConfigError::Invalid {
                key: "delivery.lease_secs",
                reason: "must be at least 4 (leases are renewed every quarter lease)".into(),
            });
        }
        if d.poll_interval_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "delivery.poll_interval_ms",
                reason: "must be at least 1".into(),
            });
        }
        hookd_core::net::AddressPolicy::parse(&d.allowed_subnets).map_err(|reason| ConfigError::Invalid {
            key: "delivery.allowed_subnets",
            reason,
        })?;
        let ops = &self.operational_webhook;
        if !ops.url.is_empty() {
            hookd_core::validate::check_endpoint_url("url", &ops.url, !d.allow_http).map_err(|e| {
                ConfigError::Invalid {
                    key: "operational_webhook.url",
                    reason: e.msg,
                }
            })?;
            hookd_signing::SigningKey::parse_endpoint_key(&ops.secret).map_err(|e| ConfigError::Invalid {
                key: "operational_webhook.secret",
                reason: e.to_string(),
            })?;
        }
        if !self.database.is_empty() && !self.uses_postgres() {
            return Err(ConfigError::Invalid {
                key: "database",
                reason: "must be a postgres:// URL, or empty for SQLite".into(),
            });
        }
        if self.storage.postgres_pool_size == 0 {
            return Err(ConfigError::Invalid {
                key: "storage.postgres_pool_size",
                reason: "must be at least 1".into(),
            });
        }
        if !(2..=65_536).contains(&self.storage.sqlite_cache_mib) {
            return Err(ConfigError::Invalid {
                key: "storage.sqlite_cache_mib",
                reason: "must be between 2 and 65536 (MiB)".into(),
            });
        }
        if !matches!(self.storage.sqlite_synchronous.as_str(), "full" | "normal") {
            return Err(ConfigError::Invalid {
                key: "storage.sqlite_synchronous",
                reason: "must be full or normal".into(),
            });
        }
        Ok(())
    }

    /// Whether `database` names a PostgreSQL server.
    pub fn uses_postgres(&self) -> bool {
        self.database.starts_with("postgres://") || self.database.starts_with("postgresql://")
    }

    /// Path of the embedded database.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("hookd.db")
    }
}

impl DeliveryConfig {
    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

/// Accepts `["a", "b"]` or `"a,b"`.
fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Form::deserialize(d)? {
        Form::List(v) => v,
        Form::Text(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect(),
    })
}

/// Accepts `[5, 300]`, `"5,300"` or a single number.
fn seconds_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<u64>),
        One(u64),
        Text(String),
    }
    match Form::deserialize(d)? {
        Form::List(v) => Ok(v),
        Form::One(n) => Ok(vec![n]),
        Form::Text(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<u64>()
                    .map_err(|_| serde::de::Error::custom(format!("`{p}` is not a number of seconds")))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_database_password_and_the_metrics_token() {
        let config = Config {
            database: "postgres://hookd:hunter2@db.internal:5432/hookd".into(),
            metrics: MetricsConfig {
                token: "scrape-s3cret".into(),
                ..MetricsConfig::default()
            },
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("scrape-s3cret"),
            "{shown}"
        );
        assert!(shown.contains("postgres://hookd:***@db.internal:5432/hookd"), "{shown}");
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
    }

    #[test]
    fn defaults_are_valid_and_zero_config() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8071");
        assert_eq!(c.database_path(), PathBuf::from("./hookd-data/hookd.db"));
        assert_eq!(c.delivery.retry_schedule.len(), 7);
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure must return figment's own error type
    fn file_then_environment_layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "hookd.toml",
                "listen = \"127.0.0.1:9000\"\n[delivery]\nretry_schedule = [1, 2]\ntimeout_secs = 5\n",
            )?;
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 9000);
            assert_eq!(c.delivery.retry_schedule, vec![1, 2]);
            jail.set_env("HOOKD_DELIVERY__RETRY_SCHEDULE", "1,1,1");
            jail.set_env("HOOKD_DELIVERY__TIMEOUT_SECS", "7");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.delivery.retry_schedule, vec![1, 1, 1]);
            assert_eq!(c.delivery.timeout_secs, 7);
            assert_eq!(c.listen.port(), 9000, "file value kept where env is silent");
            jail.set_env("HOOKD_DELIVERY__ALLOWED_SUBNETS", "10.0.0.0/8, 127.0.0.2/32");
            jail.set_env("HOOKD_DELIVERY__ALLOW_HTTP", "true");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.delivery.allowed_subnets, vec!["10.0.0.0/8", "127.0.0.2/32"]);
            assert!(c.delivery.allow_http);
            Ok(())
        });
    }

    #[test]
    fn a_malformed_allowed_subnet_is_rejected_at_start() {
        let mut c = Config::default();
        c.delivery.allowed_subnets = vec!["10.0.0.0/33".into()];
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("delivery.allowed_subnets") && err.contains("10.0.0.0/33"),
            "{err}"
        );
    }

    #[test]
    fn operational_webhook_needs_a_valid_secret_and_its_debug_hides_it() {
        let mut c = Config::default();
        c.operational_webhook.url = "https://ops.example.com/hookd".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("operational_webhook.secret"));
        c.operational_webhook.secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into();
        c.validate().unwrap();
        assert!(!format!("{c:?}").contains("MfKQ9r8"));
    }

    #[test]
    fn out_of_range_timeout_is_rejected() {
        let mut c = Config::default();
        c.delivery.timeout_secs = 31;
        assert!(c.validate().is_err());
        c.delivery.timeout_secs = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn the_engines_nice_value_is_checked_against_linuxs_range() {
        let mut c = Config::default();
        assert_eq!(c.delivery.engine_nice, 5, "the engine yields to the API by default");
        for ok in [0, 19] {
            c.delivery.engine_nice = ok;
            assert!(c.validate().is_ok(), "{ok} is a nice value");
        }
        c.delivery.engine_nice = 20;
        match c.validate() {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "delivery.engine_nice"),
            other => panic!("20 is refused: {other:?}"),
        }
    }
}
