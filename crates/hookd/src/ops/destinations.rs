//! Destinations: endpoints that are not a plain HTTP URL (Svix's `destination` resource).
//!
//! A destination is stored as an endpoint with a [`Destination`] attached, so it shares the
//! endpoint's filters, metadata, signing key, enable/disable, attempt log, statistics and
//! operational webhooks. The plain endpoint routes never see destinations, and the
//! destination routes never see plain endpoints.
//!
//! A polling endpoint (`pollingEndpoint`) gets no pushed deliveries: its consumers read the
//! application's stream of messages through the poller routes, each poll logged as attempts.

use std::collections::BTreeMap;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hookd_core::filter::endpoint_accepts;
use hookd_core::id::IdKind;
use hookd_core::model::{
    Application, Attempt, Destination, DestinationKind, Endpoint, Message, MessageStatus, TriggerType,
};
use hookd_core::redact;
use hookd_core::validate::{self, FieldError};
use hookd_store::{Page, PageRequest, PollCursor, PollRecord, StoreError};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::endpoints::{self, RotateIn};
use super::Services;
use super::{ErrorCode, OpsError, OpsResult, Problems};

/// Every destination type of the Svix API, in its order. hookd serves [`AVAILABLE`]; the others
/// are refused with a 422 that says so.
pub const SVIX_TYPES: &[&str] = &[
    "pollingEndpoint",
    "azureBlobStorage",
    "otelTracing",
    "fifoEndpoint",
    "amazonS3",
    "googleCloudStorage",
    "googleCloudPubSub",
    "sqs",
    "sns",
    "bigQuery",
    "clickhouse",
    "eventBridge",
    "snowflake",
    "rabbitMq",
    "redshift",
    "postgres",
    "elasticSearch",
];

/// The destination types this build delivers to.
pub const AVAILABLE: &[DestinationKind] = &[
    DestinationKind::PollingEndpoint,
    DestinationKind::FifoEndpoint,
    DestinationKind::RabbitMq,
    DestinationKind::Postgres,
];

/// The longest broker URI, database URL, routing key or exchange name accepted.
pub const MAX_SETTING: usize = 2_048;
/// The longest `sslRootCert` (PEM) accepted.
pub const MAX_ROOT_CERT: usize = 64 * 1024;

/// Default and largest `batchSize`.
pub const DEFAULT_BATCH_SIZE: u32 = 100;
/// Largest `batchSize` (and `limit` of one poll).
pub const MAX_BATCH_SIZE: u32 = 250;
/// Largest `maxWaitSecs`.
pub const MAX_WAIT_SECS: u32 = 300;
/// Most consumers one polling endpoint keeps a position for.
pub const MAX_CONSUMERS: usize = 100;
/// Most stream rows one poll reads while its filters skip messages, so a poll's cost is bounded
/// however sparse the matches are; the iterator then moves past what was skipped.
pub const MAX_SCANNED: usize = 2_000;

/// The URL recorded for a polling endpoint (it has none: its consumers come to hookd).
pub const POLL_URL: &str = "poll:";

/// `DestinationStatusIn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusIn {
    /// Receives messages.
    Enabled,
    /// Receives nothing new until enabled.
    Disabled,
}

/// A new or replaced destination (Svix `DestinationIn`).
///
/// No `Debug`: it can carry a credential in its `config`, which must never reach a log or a panic
/// message.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationIn {
    /// Unique key within the application.
    #[serde(default)]
    pub uid: Option<String>,
    /// Enabled or disabled (default enabled).
    #[serde(default)]
    pub status: Option<StatusIn>,
    /// Most messages per batch (and the default `limit` of a poll).
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Longest wait to fill a batch, in seconds.
    #[serde(default)]
    pub max_wait_secs: Option<u32>,
    /// Event-type filter; empty or `null` means every type.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// Channel filter; empty or `null` means every channel.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// String metadata.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// The Svix type name.
    #[serde(rename = "type")]
    pub kind: String,
    /// The type's settings.
    #[serde(default)]
    pub config: Option<Map<String, Value>>,
}

/// A partial update (Svix `DestinationPatch`): absent = unchanged, `null` = cleared. `type` is
/// required by the SDK's model and must name the destination's own type; `config` changes only
/// the settings it names.
///
/// No `Debug`: it can carry a credential in its `config`, which must never reach a log or a panic
/// message.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationPatch {
    /// New uid or `null`.
    #[serde(default, deserialize_with = "super::double_option")]
    pub uid: Option<Option<String>>,
    /// Enable or disable.
    #[serde(default)]
    pub status: Option<StatusIn>,
    /// New batch size.
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// New wait.
    #[serde(default)]
    pub max_wait_secs: Option<u32>,
    /// New event-type filter, `null` or empty for all types.
    #[serde(default, deserialize_with = "super::double_option")]
    pub event_types: Option<Option<Vec<String>>>,
    /// New channel filter, `null` or empty for all channels.
    #[serde(default, deserialize_with = "super::double_option")]
    pub channels: Option<Option<Vec<String>>>,
    /// New metadata.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// The destination's type.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Settings to change.
    #[serde(default)]
    pub config: Option<Map<String, Value>>,
}

/// The kind a `type` names, or a 422 that says why it cannot be used.
fn kind_of(name: &str) -> OpsResult<DestinationKind> {
    let kind = serde_json::from_value::<DestinationKind>(Value::String(name.to_string())).ok();
    match kind {
        Some(kind) if AVAILABLE.contains(&kind) => Ok(kind),
        _ => {
            let available: Vec<&str> = AVAILABLE.iter().map(|k| k.as_str()).collect();
            let msg = if SVIX_TYPES.contains(&name) {
                format!(
                    "Destination type `{name}` is not supported by hookd; use one of: {}",
                    available.join(", ")
                )
            } else {
                format!(
                    "Unknown destination type `{name}`; use one of: {}",
                    available.join(", ")
                )
            };
            Err(FieldError::new(&["type"], msg).into())
        }
    }
}

/// `null`, or an empty list, both mean "no filter".
fn filter(list: Option<Vec<String>>) -> Option<Vec<String>> {
    list.filter(|l| !l.is_empty())
}

/// What a destination's `config` sets: the settings that may be shown, the credential (never
/// shown), and for HTTP kinds the URL, custom headers and signing key, which live on the
/// endpoint itself. `None` leaves the stored value as it is.
#[derive(Debug, Default)]
struct Settings {
    config: Map<String, Value>,
    credential: Option<String>,
    url: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    key: Option<String>,
}

/// A string setting of `config`, `null` and absence alike as `None`.
fn text(config: &Map<String, Value>, name: &str) -> OpsResult<Option<String>> {
    match config.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FieldError::new(&["config", name], format!("config.{name} must be a string")).into()),
    }
}

/// The longest ordering-key path.
pub const MAX_ORDERING_KEY: usize = 256;

/// The settings of a `kind` from the caller's `config`. Unknown keys are ignored, as the SDK's
/// models do. With `partial` (a PATCH), required settings may be absent.
fn settings(kind: DestinationKind, config: &Map<String, Value>, partial: bool) -> OpsResult<Settings> {
    match kind {
        // A polling endpoint has no settings; consumers come to hookd.
        DestinationKind::PollingEndpoint => Ok(Settings::default()),
        DestinationKind::FifoEndpoint => {
            let url = text(config, "url")?;
            if url.is_none() && !partial {
                return Err(FieldError::new(&["config", "url"], "config.url is required").into());
            }
            let headers = match config.get("headers") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    serde_json::from_value::<BTreeMap<String, String>>(v.clone()).map_err(|_| {
                        FieldError::new(&["config", "headers"], "config.headers must map names to string values")
                    })?,
                ),
            };
            let mut shown = Map::new();
            ordering(config, &mut shown)?;
            Ok(Settings {
                config: shown,
                credential: None,
                url,
                headers,
                key: text(config, "key")?,
            })
        }
        DestinationKind::RabbitMq => {
            let uri = text(config, "uri")?;
            let routing_key = text(config, "routingKey")?;
            kept(config, &["uri", "routingKey"])?;
            if !partial {
                required(&uri, "uri")?;
                required(&routing_key, "routingKey")?;
            }
            let mut shown = Map::new();
            ordering(config, &mut shown)?;
            if let Some(uri) = &uri {
                bounded(uri, "uri", MAX_SETTING)?;
                let parsed = lapin::uri::AMQPUri::from_str(uri).map_err(|e| {
                    FieldError::new(
                        &["config", "uri"],
                        format!("config.uri must be an amqp:// or amqps:// URI: {e}"),
                    )
                })?;
                // The host the AMQP client would use must be the one the URI shows (an IPv6
                // literal or a missing host would silently become `localhost`).
                let shown_host = url::Url::parse(uri).ok().and_then(|u| u.host_str().map(str::to_string));
                if parsed.vhost.len() > 255 {
                    return Err(FieldError::new(
                        &["config", "uri"],
                        "config.uri's virtual host must be at most 255 bytes",
                    )
                    .into());
                }
                if parsed.authority.host.is_empty() || shown_host.as_deref() != Some(parsed.authority.host.as_str()) {
                    return Err(FieldError::new(
                        &["config", "uri"],
                        "config.uri must name the broker's host by name or IPv4 address",
                    )
                    .into());
                }
            }
            if let Some(key) = routing_key {
                bounded(&key, "routingKey", 255)?;
                shown.insert("routingKey".into(), Value::String(key));
            }
            if let Some(exchange) = text(config, "exchange")? {
                bounded(&exchange, "exchange", 255)?;
                shown.insert("exchange".into(), Value::String(exchange));
            }
            match config.get("mandatory") {
                None | Some(Value::Null) => {}
                Some(Value::Bool(b)) => {
                    shown.insert("mandatory".into(), Value::Bool(*b));
                }
                Some(_) => {
                    return Err(FieldError::new(&["config", "mandatory"], "config.mandatory must be a boolean").into())
                }
            }
            Ok(Settings {
                config: shown,
                // The URI carries the broker's password: it is kept sealed, and shown redacted.
                url: uri.as_deref().map(amqp_target),
                credential: uri,
                headers: None,
                key: text(config, "key")?,
            })
        }
        DestinationKind::Postgres => {
            let url = text(config, "url")?;
            let table = text(config, "tableName")?;
            kept(config, &["url", "tableName"])?;
            if !partial {
                required(&url, "url")?;
                required(&table, "tableName")?;
            }
            let password = text(config, "password")?;
            let root_cert = text(config, "sslRootCert")?;
            let mut shown = Map::new();
            ordering(config, &mut shown)?;
            if let Some(url) = &url {
                bounded(url, "url", MAX_SETTING)?;
                // The URL is checked as it will be used to connect.
                crate::dispatch::sinks::pg_options(url, None, None)
                    .map_err(|why| FieldError::new(&["config", "url"], why))?;
                shown.insert("url".into(), Value::String(url.clone()));
            }
            if let Some(table) = table {
                if crate::dispatch::sinks::quoted_table(&table).is_none() {
                    return Err(FieldError::new(
                        &["config", "tableName"],
                        "config.tableName must be `table` or `schema.table`, each 1 to 63 letters, digits or underscores, not starting with a digit",
                    )
                    .into());
                }
                shown.insert("tableName".into(), Value::String(table));
            }
            if let Some(pem) = root_cert {
                bounded(&pem, "sslRootCert", MAX_ROOT_CERT)?;
                if !pem.contains("-----BEGIN CERTIFICATE-----") {
                    return Err(FieldError::new(
                        &["config", "sslRootCert"],
                        "config.sslRootCert must be a PEM certificate",
                    )
                    .into());
                }
                shown.insert("sslRootCert".into(), Value::String(pem));
            }
            Ok(Settings {
                url: url.as_deref().map(|u| {
                    format!(
                        "{u}#{}",
                        shown.get("tableName").and_then(|t| t.as_str()).unwrap_or_default()
                    )
                }),
                config: shown,
                credential: password,
                headers: None,
                key: text(config, "key")?,
            })
        }
    }
}

/// The ordering key of a destination that runs in lanes, checked and kept in `shown`.
fn ordering(config: &Map<String, Value>, shown: &mut Map<String, Value>) -> OpsResult<()> {
    if let Some(key) = text(config, "orderingKey")? {
        let well_formed =
            !key.is_empty() && key.len() <= MAX_ORDERING_KEY && key.split('.').all(|part| !part.is_empty());
        if !well_formed {
            return Err(FieldError::new(
                &["config", "orderingKey"],
                format!("config.orderingKey must be a dot path into the payload (e.g. `metadata.workspace_id`), 1 to {MAX_ORDERING_KEY} characters"),
            )
            .into());
        }
        shown.insert("orderingKey".into(), Value::String(key));
    }
    Ok(())
}

/// Required settings cannot be cleared by a `null` (in a PATCH they are changed, or left out).
fn kept(config: &Map<String, Value>, names: &[&str]) -> OpsResult<()> {
    for name in names {
        if config.get(*name) == Some(&Value::Null) {
            return Err(FieldError::new(
                &["config", name],
                format!("config.{name} is required and cannot be cleared"),
            )
            .into());
        }
    }
    Ok(())
}

fn required(value: &Option<String>, name: &str) -> OpsResult<()> {
    match value {
        Some(v) if !v.is_empty() => Ok(()),
        _ => Err(FieldError::new(&["config", name], format!("config.{name} is required")).into()),
    }
}

fn bounded(value: &str, name: &str, most: usize) -> OpsResult<()> {
    if value.len() > most {
        return Err(FieldError::new(
            &["config", name],
            format!("config.{name} must be at most {most} characters"),
        )
        .into());
    }
    Ok(())
}

/// A broker URI with its password withheld, as shown and as the attempt log's target.
pub fn amqp_target(uri: &str) -> String {
    redact::url(uri, "********", redact::Keep::User).unwrap_or_else(|| "amqp://(invalid)".to_string())
}

/// The ordering key of a FIFO destination (a dot path into the payload), if it has one.
pub fn ordering_key(e: &Endpoint) -> Option<&str> {
    e.destination.as_ref()?.config.get("orderingKey")?.as_str()
}

/// Applies what `s` sets to the endpoint `e` of `kind`.
fn apply(e: &mut Endpoint, kind: DestinationKind, s: Settings) -> OpsResult<()> {
    e.url = match kind {
        DestinationKind::PollingEndpoint => POLL_URL.to_string(),
        _ => s.url.unwrap_or_else(|| e.url.clone()),
    };
    if let Some(headers) = s.headers {
        e.headers = headers;
    }
    if let Some(key) = s.key {
        e.secret = hookd_signing::SigningKey::parse_endpoint_key(&key)
            .map(|k| k.to_string())
            .map_err(|err| FieldError::new(&["config", "key"], format!("invalid key: {err}")))?;
    }
    let d = e.destination.as_mut().expect("a destination has its settings");
    // A database password is never sent to another server than the one it was given for.
    let moved =
        kind == DestinationKind::Postgres && d.config.get("url").is_some_and(|old| s.config.get("url") != Some(old));
    if moved && s.credential.is_none() && d.credential.is_some() {
        return Err(FieldError::new(
            &["config", "password"],
            "config.password must be given again when config.url changes: the stored password is only sent to the server it was given for",
        )
        .into());
    }
    d.config = s.config;
    if s.credential.is_some() {
        d.credential = s.credential;
    }
    Ok(())
}

fn check_sizes(p: &mut Problems, d: &Destination) {
    if !(1..=MAX_BATCH_SIZE).contains(&d.batch_size) {
        p.check(Err(FieldError::new(
            &["batchSize"],
            format!("batchSize must be between 1 and {MAX_BATCH_SIZE}"),
        )));
    }
    if d.max_wait_secs > MAX_WAIT_SECS {
        p.check(Err(FieldError::new(
            &["maxWaitSecs"],
            format!("maxWaitSecs must be at most {MAX_WAIT_SECS}"),
        )));
    }
}

/// Creates a destination in `app`.
pub async fn create_destination(state: &Services, app: &Application, input: DestinationIn) -> OpsResult<Endpoint> {
    let kind = kind_of(&input.kind)?;
    let settings = settings(kind, input.config.as_ref().unwrap_or(&Map::new()), false)?;
    let now = state.clock.now();
    let destination = Destination {
        kind,
        config: Map::new(),
        credential: None,
        batch_size: input.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
        max_wait_secs: input.max_wait_secs.unwrap_or(0),
    };
    let mut p = Problems::default();
    check_sizes(&mut p, &destination);
    p.finish()?;
    let mut endpoint = Endpoint {
        id: IdKind::Endpoint.generate(now, &mut rand::thread_rng()),
        app_id: app.id.clone(),
        uid: input.uid,
        url: String::new(),
        description: String::new(),
        disabled: input.status == Some(StatusIn::Disabled),
        event_types: filter(input.event_types),
        channels: filter(input.channels),
        throttle_rate: None,
        metadata: input.metadata.unwrap_or_default(),
        secret: hookd_signing::SigningKey::generate_hmac(&mut rand::thread_rng()).to_string(),
        headers: BTreeMap::new(),
        old_secrets: Vec::new(),
        failing_since: None,
        created_at: now,
        updated_at: now,
        destination: Some(destination),
    };
    apply(&mut endpoint, kind, settings)?;
    endpoints::insert(state, app, endpoint).await
}

/// The destination addressed by id or uid (plain endpoints are not found here).
pub async fn get_destination(state: &Services, app: &Application, key: &str) -> OpsResult<Endpoint> {
    match state.store.get_endpoint(&app.id, key).await? {
        Some(e) if e.destination.is_some() => Ok(e),
        _ => Err(OpsError::NotFound("destination")),
    }
}

/// The settings part of an endpoint known to be a destination.
fn spec(e: &Endpoint) -> &Destination {
    e.destination.as_ref().expect("a destination has its settings")
}

/// Replaces a destination's settings, creating it when `key` matches none (bool = created).
/// Its type cannot change.
pub async fn upsert_destination(
    state: &Services,
    app: &Application,
    key: &str,
    mut input: DestinationIn,
) -> OpsResult<(Endpoint, bool)> {
    // A PUT to a uid that names nothing creates the destination under that uid.
    if input.uid.is_none() && !IdKind::Endpoint.matches(key) {
        input.uid = Some(key.to_string());
    }
    let existing = match state.store.get_endpoint(&app.id, key).await? {
        None => return Ok((create_destination(state, app, input).await?, true)),
        Some(e) if e.destination.is_none() => {
            return Err(OpsError::Conflict {
                code: ErrorCode::Conflict,
                detail: "An endpoint (not a destination) has that id or uid".into(),
            })
        }
        Some(e) => e,
    };
    let kind = kind_of(&input.kind)?;
    same_kind(spec(&existing).kind, kind)?;
    let settings = settings(kind, input.config.as_ref().unwrap_or(&Map::new()), false)?;
    let was_disabled = existing.disabled;
    let mut e = existing;
    e.uid = input.uid;
    e.disabled = input.status == Some(StatusIn::Disabled);
    e.event_types = filter(input.event_types);
    e.channels = filter(input.channels);
    e.metadata = input.metadata.unwrap_or_default();
    let (credential, config) = (spec(&e).credential.clone(), spec(&e).config.clone());
    e.destination = Some(Destination {
        kind,
        // Replaced by the new settings; kept until then to compare with them.
        config,
        credential,
        batch_size: input.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
        max_wait_secs: input.max_wait_secs.unwrap_or(0),
    });
    apply(&mut e, kind, settings)?;
    Ok((save(state, app, e, was_disabled).await?, false))
}

fn same_kind(stored: DestinationKind, asked: DestinationKind) -> OpsResult<()> {
    if stored == asked {
        return Ok(());
    }
    Err(FieldError::new(
        &["type"],
        format!(
            "The destination is a `{}`; its type cannot change to `{}` (create a new destination instead)",
            stored.as_str(),
            asked.as_str()
        ),
    )
    .into())
}

async fn save(state: &Services, app: &Application, e: Endpoint, was_disabled: bool) -> OpsResult<Endpoint> {
    let mut p = Problems::default();
    check_sizes(&mut p, spec(&e));
    p.finish()?;
    endpoints::save(state, app, e, was_disabled).await
}

/// Applies a partial update.
pub async fn patch_destination(
    state: &Services,
    app: &Application,
    key: &str,
    patch: DestinationPatch,
) -> OpsResult<Endpoint> {
    let mut e = get_destination(state, app, key).await?;
    let was_disabled = e.disabled;
    let stored = spec(&e).kind;
    if let Some(name) = &patch.kind {
        same_kind(stored, kind_of(name)?)?;
    }
    if let Some(uid) = patch.uid {
        e.uid = uid;
    }
    if let Some(status) = patch.status {
        e.disabled = status == StatusIn::Disabled;
    }
    if let Some(types) = patch.event_types {
        e.event_types = filter(types);
    }
    if let Some(channels) = patch.channels {
        e.channels = filter(channels);
    }
    if let Some(metadata) = patch.metadata {
        e.metadata = metadata;
    }
    let d = e.destination.as_mut().expect("a destination has its settings");
    if let Some(size) = patch.batch_size {
        d.batch_size = size;
    }
    if let Some(wait) = patch.max_wait_secs {
        d.max_wait_secs = wait;
    }
    if let Some(config) = patch.config.filter(|c| !c.is_empty()) {
        // Settings the patch does not name keep their value.
        let mut merged = d.config.clone();
        merged.extend(config);
        let settings = settings(stored, &merged, true)?;
        apply(&mut e, stored, settings)?;
    }
    save(state, app, e, was_disabled).await
}

/// Deletes a destination, its pending deliveries and its consumers' positions.
pub async fn delete_destination(state: &Services, app: &Application, key: &str) -> OpsResult<()> {
    endpoints::remove(state, app, get_destination(state, app, key).await?).await
}

/// A page of destinations.
pub async fn list_destinations(state: &Services, app: &Application, page: &PageRequest) -> OpsResult<Page<Endpoint>> {
    Ok(state.store.list_destinations(&app.id, page).await?)
}

/// Rotates the signing key of a destination that signs what it delivers; returns the new key.
pub async fn rotate_secret(state: &Services, app: &Application, key: &str, input: RotateIn) -> OpsResult<String> {
    let e = get_destination(state, app, key).await?;
    if spec(&e).kind == DestinationKind::PollingEndpoint {
        return Err(OpsError::BadRequest {
            code: ErrorCode::NotSupported,
            detail: "A polling endpoint signs nothing (its consumers read through the authenticated API), so it has no secret to rotate".into(),
        });
    }
    endpoints::rotate_endpoint_secret(state, app, e, input).await
}

/// Where a poll starts: the position an iterator names, or a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Just after this position.
    After(PollCursor),
    /// At the first message published at or after this time.
    At(DateTime<Utc>),
}

/// An iterator as the API shows it: opaque, URL-safe.
pub fn encode_iterator(start: &Start) -> String {
    let plain = match start {
        Start::After(c) => format!("p:{}:{}", c.seq, c.id),
        Start::At(t) => format!("t:{}", t.timestamp_micros()),
    };
    URL_SAFE_NO_PAD.encode(plain)
}

/// Reads an iterator made by [`encode_iterator`].
pub fn decode_iterator(iterator: &str) -> OpsResult<Start> {
    let bad = || OpsError::from(FieldError::new(&["query", "iterator"], "Invalid iterator"));
    let plain = URL_SAFE_NO_PAD
        .decode(iterator)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    match plain.split_once(':') {
        Some(("p", rest)) => {
            let (seq, id) = rest.split_once(':').ok_or_else(bad)?;
            if !(id.is_empty() || IdKind::Message.matches(id)) {
                return Err(bad());
            }
            // Positions are never negative (PostgreSQL's transaction ids are unsigned).
            let seq: i64 = seq.parse().ok().filter(|s| *s >= 0).ok_or_else(bad)?;
            Ok(Start::After(PollCursor {
                seq,
                id: id.to_string(),
            }))
        }
        Some(("t", micros)) => {
            let micros: i64 = micros.parse().map_err(|_| bad())?;
            DateTime::from_timestamp_micros(micros).map(Start::At).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

/// What a poll asks for.
#[derive(Debug, Clone, Default)]
pub struct PollQuery {
    /// Most messages to return; the destination's `batchSize` when absent.
    pub limit: Option<usize>,
    /// Continue after this iterator.
    pub iterator: Option<String>,
    /// Start at this time (when no iterator is given).
    pub after: Option<DateTime<Utc>>,
    /// Only this event type (on top of the destination's filters).
    pub event_type: Option<String>,
    /// Only messages on this channel (on top of the destination's filters).
    pub channel: Option<String>,
}

/// The answer to a poll (Svix `PollingEndpointOut`).
#[derive(Debug)]
pub struct Polled {
    /// Messages, in stream order.
    pub messages: Vec<Message>,
    /// Where the next poll continues.
    pub iterator: String,
    /// Whether the stream has nothing more for now.
    pub done: bool,
}

/// The polling endpoint `key` of `app`, enabled.
async fn polling_endpoint(state: &Services, app: &Application, key: &str) -> OpsResult<Endpoint> {
    let e = get_destination(state, app, key).await?;
    if spec(&e).kind != DestinationKind::PollingEndpoint {
        return Err(OpsError::NotFound("polling endpoint"));
    }
    if e.disabled {
        return Err(OpsError::Conflict {
            code: ErrorCode::DestinationDisabled,
            detail: "The polling endpoint is disabled; enable it (PATCH its status) to poll it again".into(),
        });
    }
    Ok(e)
}

/// Reads the next messages of a polling endpoint. With a `consumer`, the position is kept by
/// hookd: the poll starts where the consumer's previous poll ended (or at `query.iterator`
/// when one is given, to go back to a position it saved), and the consumer's position moves to
/// the end of what is returned. Every message handed out is logged as a successful attempt.
pub async fn poll(
    state: &Services,
    app: &Application,
    key: &str,
    consumer: Option<&str>,
    query: PollQuery,
) -> OpsResult<Polled> {
    let e = polling_endpoint(state, app, key).await?;
    if let Some(c) = consumer {
        validate::check_uid("consumer_id", c, "").map_err(OpsError::from)?;
    }
    let limit = query.limit.unwrap_or(spec(&e).batch_size as usize);
    if !(1..=MAX_BATCH_SIZE as usize).contains(&limit) {
        return Err(FieldError::new(
            &["query", "limit"],
            format!("limit must be between 1 and {MAX_BATCH_SIZE}"),
        )
        .into());
    }
    let start = match (&query.iterator, query.after) {
        (Some(it), _) => decode_iterator(it)?,
        (None, Some(at)) => Start::At(at),
        (None, None) => match consumer {
            Some(c) => match state.store.poll_consumer(&e.id, c).await? {
                Some(cursor) => Start::After(cursor),
                None => Start::At(e.created_at),
            },
            None => Start::At(e.created_at),
        },
    };
    let mut cursor = match start {
        Start::After(c) => c,
        Start::At(t) => state.store.poll_cursor_at(&app.id, t).await?,
    };
    let mut messages = Vec::new();
    let mut scanned = 0;
    let mut done = false;
    'read: while messages.len() < limit && scanned < MAX_SCANNED {
        let want = (limit - messages.len()).max(100).min(MAX_SCANNED - scanned);
        let batch = state.store.poll_messages(&app.id, &cursor, want).await?;
        let short = batch.len() < want;
        let last = batch.len();
        for (n, polled) in batch.into_iter().enumerate() {
            scanned += 1;
            cursor = polled.cursor;
            let m = polled.message;
            let wanted = endpoint_accepts(&e, &m.event_type, m.channels.as_deref())
                && query.event_type.as_ref().is_none_or(|t| *t == m.event_type)
                && query
                    .channel
                    .as_ref()
                    .is_none_or(|c| m.channels.as_ref().is_some_and(|cs| cs.contains(c)))
                // An expired payload is past retention: there is nothing left to hand out.
                && m.payload.is_some();
            if wanted {
                messages.push(m);
                if messages.len() == limit {
                    // The end of the stream when this was its last message.
                    done = short && n + 1 == last;
                    break 'read;
                }
            }
        }
        if short {
            done = true;
            break;
        }
    }
    let now = state.clock.now();
    let url = match consumer {
        Some(c) => format!("{POLL_URL}consumer/{c}"),
        None => format!("{POLL_URL}iterator"),
    };
    let attempts = messages
        .iter()
        .map(|m| {
            (
                IdKind::Delivery.generate(now, &mut rand::thread_rng()),
                Attempt {
                    id: IdKind::Attempt.generate(now, &mut rand::thread_rng()),
                    msg_id: m.id.clone(),
                    endpoint_id: e.id.clone(),
                    url: url.clone(),
                    response: String::new(),
                    response_status_code: 200,
                    response_duration_ms: 0,
                    status: MessageStatus::Success,
                    trigger_type: TriggerType::Scheduled,
                    attempt_number: 1,
                    request_headers: Default::default(),
                    response_headers: Vec::new(),
                    created_at: now,
                },
            )
        })
        .collect::<Vec<_>>();
    if !attempts.is_empty() || consumer.is_some() {
        let record = PollRecord {
            app_id: app.id.clone(),
            endpoint_id: e.id.clone(),
            attempts,
            consumer: consumer.map(|c| (c.to_string(), cursor.clone())),
            max_consumers: MAX_CONSUMERS,
            at: now,
        };
        state.store.record_poll(&record).await.map_err(too_many_consumers)?;
        crate::metrics::messages_polled(app.env, messages.len());
    }
    Ok(Polled {
        messages,
        iterator: encode_iterator(&Start::After(cursor)),
        done,
    })
}

fn too_many_consumers(e: StoreError) -> OpsError {
    match e {
        StoreError::Conflict(_) => OpsError::BadRequest {
            code: ErrorCode::LimitReached,
            detail: format!(
                "A polling endpoint keeps positions for at most {MAX_CONSUMERS} consumers; reuse a consumer id"
            ),
        },
        other => other.into(),
    }
}

/// Moves a consumer's position to the first message published at or after `after`; returns
/// the iterator of that position.
pub async fn seek(
    state: &Services,
    app: &Application,
    key: &str,
    consumer: &str,
    after: DateTime<Utc>,
) -> OpsResult<String> {
    let e = polling_endpoint(state, app, key).await?;
    validate::check_uid("consumer_id", consumer, "").map_err(OpsError::from)?;
    let cursor = state.store.poll_cursor_at(&app.id, after).await?;
    let record = PollRecord {
        app_id: app.id.clone(),
        endpoint_id: e.id.clone(),
        attempts: Vec::new(),
        consumer: Some((consumer.to_string(), cursor.clone())),
        max_consumers: MAX_CONSUMERS,
        at: state.clock.now(),
    };
    state.store.record_poll(&record).await.map_err(too_many_consumers)?;
    Ok(encode_iterator(&Start::After(cursor)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn iterators_round_trip_and_anything_else_is_refused() {
        let position = Start::After(PollCursor {
            seq: 42,
            id: IdKind::Message.generate(Utc::now(), &mut rand::thread_rng()),
        });
        let before_all = Start::After(PollCursor {
            seq: 7,
            id: String::new(),
        });
        let at = Start::At(DateTime::from_timestamp_micros(1_750_000_000_123_456).unwrap());
        for start in [position, before_all, at] {
            assert_eq!(decode_iterator(&encode_iterator(&start)).unwrap(), start);
        }
        for bad in [
            "",
            "not base64!",
            &URL_SAFE_NO_PAD.encode("p:x:msg_1"),
            &URL_SAFE_NO_PAD.encode("p:1:ep_nope"),
            &URL_SAFE_NO_PAD.encode("p:-1:"),
            &URL_SAFE_NO_PAD.encode("q:1"),
        ] {
            assert!(decode_iterator(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn only_the_served_types_are_accepted_and_the_others_say_why() {
        assert_eq!(kind_of("pollingEndpoint").unwrap(), DestinationKind::PollingEndpoint);
        assert_eq!(kind_of("rabbitMq").unwrap(), DestinationKind::RabbitMq);
        assert_eq!(kind_of("postgres").unwrap(), DestinationKind::Postgres);
        let Err(OpsError::Invalid(problems)) = kind_of("sqs") else {
            panic!("sqs accepted")
        };
        assert!(
            problems[0].msg.contains("not supported by hookd"),
            "{}",
            problems[0].msg
        );
        let Err(OpsError::Invalid(problems)) = kind_of("carrierPigeon") else {
            panic!("unknown type accepted")
        };
        assert!(
            problems[0].msg.contains("Unknown destination type"),
            "{}",
            problems[0].msg
        );
    }

    fn config(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn refusal(kind: DestinationKind, v: Value, partial: bool) -> (Vec<String>, String) {
        match settings(kind, &config(v), partial) {
            Err(OpsError::Invalid(p)) => (p[0].loc.clone(), p[0].msg.clone()),
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn a_brokers_uri_is_kept_as_the_credential_and_shown_without_its_password() {
        let s = settings(
            DestinationKind::RabbitMq,
            &config(json!({"uri": "amqps://hooks:s3cret@mq.example.com:5671/prod", "routingKey": "events", "mandatory": true, "exchange": "ex", "orderingKey": "customer.id"})),
            false,
        )
        .unwrap();
        assert_eq!(
            s.credential.as_deref(),
            Some("amqps://hooks:s3cret@mq.example.com:5671/prod")
        );
        assert_eq!(
            s.url.as_deref(),
            Some("amqps://hooks:********@mq.example.com:5671/prod")
        );
        assert_eq!(
            Value::Object(s.config),
            json!({"routingKey": "events", "mandatory": true, "exchange": "ex", "orderingKey": "customer.id"})
        );
        // Required on create, optional on a patch; typed.
        let (loc, _) = refusal(DestinationKind::RabbitMq, json!({"uri": "amqp://h/%2f"}), false);
        assert_eq!(loc, ["config", "routingKey"]);
        assert!(settings(DestinationKind::RabbitMq, &config(json!({"routingKey": "k2"})), true).is_ok());
        let (loc, msg) = refusal(
            DestinationKind::RabbitMq,
            json!({"uri": "http://h/", "routingKey": "k"}),
            false,
        );
        assert_eq!(
            (loc, msg.contains("amqp://")),
            (vec!["config".to_string(), "uri".into()], true)
        );
        // A host the AMQP client would read as another (an IPv6 literal, none) is refused.
        for uri in ["amqp://[::1]:5672/%2f", "amqp:///%2f", "amqp://:5672/%2f"] {
            let (loc, _) = refusal(DestinationKind::RabbitMq, json!({"uri": uri, "routingKey": "k"}), false);
            assert_eq!(loc, ["config", "uri"], "{uri}");
        }
        // The virtual host travels as a short string.
        let uri = format!("amqp://h/{}", "v".repeat(256));
        let (loc, _) = refusal(DestinationKind::RabbitMq, json!({"uri": uri, "routingKey": "k"}), false);
        assert_eq!(loc, ["config", "uri"]);
        let (loc, _) = refusal(
            DestinationKind::RabbitMq,
            json!({"uri": "amqp://h/%2f", "routingKey": "k", "mandatory": "yes"}),
            false,
        );
        assert_eq!(loc, ["config", "mandatory"]);
        let (loc, _) = refusal(
            DestinationKind::RabbitMq,
            json!({"uri": "amqp://h/%2f", "routingKey": "k".repeat(256)}),
            false,
        );
        assert_eq!(loc, ["config", "routingKey"]);
    }

    #[test]
    fn a_database_destination_keeps_its_password_apart_and_names_a_table() {
        let url = "postgres://hooks@db.example.com:5432/app?sslmode=verify-ca";
        let s = settings(
            DestinationKind::Postgres,
            &config(json!({"url": url, "password": "pw", "tableName": "public.events"})),
            false,
        )
        .unwrap();
        assert_eq!(s.credential.as_deref(), Some("pw"));
        assert_eq!(s.url, Some(format!("{url}#public.events")));
        assert_eq!(
            Value::Object(s.config),
            json!({"url": url, "tableName": "public.events"})
        );
        let refused = [
            (
                json!({"url": "postgres://hooks:pw@db/app", "tableName": "t"}),
                "url",
                "must not carry a password",
            ),
            (json!({"url": "mysql://db/app", "tableName": "t"}), "url", "postgres://"),
            (
                json!({"url": "postgres://db/app", "tableName": "t"}),
                "url",
                "name the user",
            ),
            (
                json!({"url": "postgres://u@db/app?password=pw", "tableName": "t"}),
                "url",
                "only sslmode",
            ),
            (
                json!({"url": "postgres://u@db/app?sslrootcert=/etc/hookd/key.pem", "tableName": "t"}),
                "url",
                "only sslmode",
            ),
            (
                json!({"url": "postgres://u@db/app?sslmode=verify-full", "tableName": "t"}),
                "url",
                "verify-ca",
            ),
            (
                json!({"url": "postgres://u@db/app", "tableName": "a.b.c"}),
                "tableName",
                "schema.table",
            ),
            (
                json!({"url": "postgres://u@db/app", "tableName": "t; drop"}),
                "tableName",
                "schema.table",
            ),
            (json!({"url": "postgres://u@db/app"}), "tableName", "required"),
            (
                json!({"url": "postgres://u@db/app", "tableName": "t", "sslRootCert": "not pem"}),
                "sslRootCert",
                "PEM",
            ),
        ];
        for (input, field, why) in refused {
            let (loc, msg) = refusal(DestinationKind::Postgres, input.clone(), false);
            assert_eq!(loc, ["config", field], "{input}");
            assert!(msg.contains(why), "{input}: {msg}");
        }
        // A patch may leave required settings out, not clear them.
        assert!(settings(DestinationKind::Postgres, &config(json!({"tableName": "t2"})), true).is_ok());
        let (loc, msg) = refusal(
            DestinationKind::Postgres,
            json!({"url": "postgres://u@db/app", "tableName": null}),
            true,
        );
        assert_eq!(
            (loc, msg.contains("cannot be cleared")),
            (vec!["config".to_string(), "tableName".into()], true)
        );
        let (loc, _) = refusal(
            DestinationKind::RabbitMq,
            json!({"uri": "amqp://h/%2f", "routingKey": null}),
            true,
        );
        assert_eq!(loc, ["config", "routingKey"]);
    }
}
