//! Destinations that are not reached over HTTP: a RabbitMQ exchange and a PostgreSQL table.
//!
//! Their deliveries travel in the same ordered lanes as a FIFO endpoint's ([`super::fifo`]): a
//! lane hands a batch of messages here, and the batch succeeds or fails as a whole, so failures
//! are retried on the endpoint's schedule and recorded in the attempt log like any attempt.
//!
//! Each destination keeps one connection, opened on first use and kept while it is used. The
//! connections of a node are bounded in all ([`MAX_LINKS`]) and per application
//! ([`MAX_LINKS_PER_APP`]); the least recently used one is closed to make room, and one idle for
//! [`IDLE`] is closed. The broker's or database's host obeys the address policy like a URL's:
//! its name is resolved here, every address is checked, and the connection is made to the
//! checked address itself, so a DNS answer cannot change between the check and the connect
//! (`amqps` still verifies the broker's certificate against the URI's host name; PostgreSQL's
//! `verify-full`, which would need to connect by name, is not offered).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hookd_core::model::{DestinationKind, Endpoint, Environment};
use hookd_core::net::AddressPolicy;
use hookd_core::retry::Outcome;
use hookd_signing::{signature_header_for, SigningKey};
use hookd_store::FifoItem;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::Confirmation;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::Connection as _;

use super::send::SendResult;
use crate::cache::OpenedEndpoint;

/// Connections a node keeps open to destinations, in all.
pub const MAX_LINKS: usize = 64;
/// Connections a node keeps open to one application's destinations (as many as the lanes it
/// works on for one application at once).
pub const MAX_LINKS_PER_APP: usize = 8;
/// A connection unused this long is closed.
pub const IDLE: Duration = Duration::from_secs(300);

/// The longest PostgreSQL identifier.
const MAX_IDENTIFIER: usize = 63;

/// An open connection to one destination.
enum Conn {
    Amqp(Box<Amqp>),
    Pg(Box<Pg>),
}

/// A database connection, and the table it has found (or made) already.
struct Pg {
    conn: PgConnection,
    ready: Option<String>,
}

/// An AMQP connection, its confirm-mode channel, and a handle on its socket.
struct Amqp {
    conn: Connection,
    channel: Channel,
    socket: Socket,
}

impl Drop for Amqp {
    /// However it goes (closed, evicted while a batch used it, given up), its socket is shut
    /// down, which ends the AMQP client's thread for it.
    fn drop(&mut self) {
        self.socket.shut();
    }
}

/// A second handle on an AMQP connection's socket. The AMQP client runs each connection on a
/// thread of its own that lives as long as the socket: shutting the socket down is what ends
/// it, whatever state the broker left the connection in (a broker that never answers the
/// handshake, or stops answering later).
#[derive(Clone, Default)]
struct Socket(Arc<Mutex<Option<std::os::fd::OwnedFd>>>);

impl Socket {
    fn keep(&self, stream: &tokio::net::TcpStream) {
        use std::os::fd::AsFd;
        if let Ok(fd) = stream.as_fd().try_clone_to_owned() {
            *self.0.lock().expect("socket lock") = Some(fd);
        }
    }

    fn shut(&self) {
        if let Some(fd) = self.0.lock().expect("socket lock").take() {
            let _ = std::net::TcpStream::from(fd).shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Conn {
    fn usable(&self) -> bool {
        match self {
            Conn::Amqp(a) => a.conn.status().connected() && a.channel.status().connected(),
            Conn::Pg(_) => true,
        }
    }

    /// Closes it without waiting: an AMQP connection says goodbye to the broker (for a moment)
    /// and its socket is shut down; a PostgreSQL connection is closed when dropped.
    fn close(self) {
        if let Conn::Amqp(a) = self {
            tokio::spawn(async move {
                let bye = a.conn.close(200, "hookd closes the connection".into());
                let _ = tokio::time::timeout(Duration::from_secs(1), bye).await;
                a.socket.shut();
            });
        }
    }
}

/// One destination's connection slot: batches to one destination take turns on it.
struct Link {
    app_id: String,
    /// Of the settings the connection was opened with: a change opens a new one.
    settings: u64,
    used: Instant,
    conn: Arc<tokio::sync::Mutex<Option<Conn>>>,
}

/// The connections to non-HTTP destinations, bounded in all and per application.
pub struct Sinks {
    live: Arc<AddressPolicy>,
    sandbox: Arc<AddressPolicy>,
    timeout: Duration,
    links: Mutex<HashMap<String, Link>>,
    /// Batches in flight on this node, at most [`MAX_LINKS`]: a connection evicted while a
    /// batch uses it stays open until that batch ends, and manual resends do not run in
    /// lanes, so this bounds the connections (and AMQP threads) open at once.
    inflight: tokio::sync::Semaphore,
}

/// A fingerprint of what a connection depends on.
fn fingerprint(endpoint: &Endpoint) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if let Some(d) = &endpoint.destination {
        d.kind.as_str().hash(&mut h);
        serde_json::to_string(&d.config).unwrap_or_default().hash(&mut h);
        d.credential.hash(&mut h);
    }
    h.finish()
}

impl Sinks {
    /// Connections that obey `live` (and `sandbox` for test-environment applications), each
    /// step bounded by `timeout`.
    pub fn new(live: AddressPolicy, sandbox: AddressPolicy, timeout: Duration) -> Sinks {
        Sinks {
            live: Arc::new(live),
            sandbox: Arc::new(sandbox),
            timeout,
            links: Mutex::new(HashMap::new()),
            inflight: tokio::sync::Semaphore::new(MAX_LINKS),
        }
    }

    /// How many connection slots are held now (for tests of the bound).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.links.lock().expect("sink links lock").len()
    }

    /// The connection slot of `endpoint`, made room for within the bounds.
    fn link(&self, endpoint: &Endpoint) -> Arc<tokio::sync::Mutex<Option<Conn>>> {
        let now = Instant::now();
        let settings = fingerprint(endpoint);
        let mut links = self.links.lock().expect("sink links lock");
        let mut closed = Vec::new();
        // Idle ones go; so does this destination's, if its settings changed.
        links.retain(|id, l| {
            let keep = now.duration_since(l.used) < IDLE && (id != &endpoint.id || l.settings == settings);
            if !keep {
                closed.push(l.conn.clone());
            }
            keep
        });
        if let Some(l) = links.get_mut(&endpoint.id) {
            l.used = now;
            let conn = l.conn.clone();
            drop(links);
            close_all(closed);
            return conn;
        }
        // Room: the application's least recently used one when it is at its share, else the
        // node's when it is full.
        let app_count = links.values().filter(|l| l.app_id == endpoint.app_id).count();
        let evict = if app_count >= MAX_LINKS_PER_APP {
            links
                .iter()
                .filter(|(_, l)| l.app_id == endpoint.app_id)
                .min_by_key(|(_, l)| l.used)
                .map(|(id, _)| id.clone())
        } else if links.len() >= MAX_LINKS {
            links.iter().min_by_key(|(_, l)| l.used).map(|(id, _)| id.clone())
        } else {
            None
        };
        if let Some(id) = evict {
            if let Some(l) = links.remove(&id) {
                closed.push(l.conn);
            }
        }
        let conn = Arc::new(tokio::sync::Mutex::new(None));
        links.insert(
            endpoint.id.clone(),
            Link {
                app_id: endpoint.app_id.clone(),
                settings,
                used: now,
                conn: conn.clone(),
            },
        );
        drop(links);
        close_all(closed);
        conn
    }

    /// Delivers a batch to a RabbitMQ or PostgreSQL destination: all of it, or a failure.
    pub async fn send(
        &self,
        env: Environment,
        endpoint: &OpenedEndpoint,
        items: &[FifoItem],
        now: DateTime<Utc>,
    ) -> SendResult {
        let started = Instant::now();
        let policy = match env {
            Environment::Live => self.live.clone(),
            Environment::Test => self.sandbox.clone(),
        };
        let Some(destination) = &endpoint.destination else {
            return SendResult::not_sent("not a destination");
        };
        let keys = match endpoint.target.keys_at(now) {
            Ok(keys) => keys,
            Err(why) => return SendResult::not_sent(&why),
        };
        let Ok(_permit) = self.inflight.acquire().await else {
            return SendResult::not_sent("shutting down");
        };
        let slot = self.link(endpoint);
        // One batch at a time per destination: a connection (and an AMQP channel's confirms)
        // serve one batch.
        let mut conn = slot.lock().await;
        let work = async {
            if conn.as_ref().is_some_and(|c| !c.usable()) {
                if let Some(old) = conn.take() {
                    old.close();
                }
            }
            if conn.is_none() {
                *conn = Some(match destination.kind {
                    DestinationKind::RabbitMq => amqp_connect(&policy, endpoint).await?,
                    DestinationKind::Postgres => pg_connect(&policy, endpoint).await?,
                    other => return Err(format!("a `{}` is not delivered here", other.as_str())),
                });
            }
            match conn.as_mut().expect("connected above") {
                Conn::Amqp(a) => amqp_publish(&a.channel, endpoint, &keys, items, now).await,
                Conn::Pg(pg) => pg_insert(pg, endpoint, &keys, items, now).await,
            }
        };
        let outcome = tokio::time::timeout(self.timeout, work).await;
        let (outcome, response) = match outcome {
            Ok(Ok(done)) => (Outcome::Success, done),
            Ok(Err(why)) => (Outcome::Transport, why),
            Err(_) => (
                Outcome::Timeout,
                format!("no answer within {} s", self.timeout.as_secs_f64()),
            ),
        };
        if outcome != Outcome::Success {
            // Start afresh next time: the connection may be in any state.
            if let Some(old) = conn.take() {
                old.close();
            }
        }
        SendResult {
            outcome,
            status_code: 0,
            response,
            duration: started.elapsed(),
            request_headers: Default::default(),
            response_headers: Vec::new(),
        }
    }
}

fn close_all(closed: Vec<Arc<tokio::sync::Mutex<Option<Conn>>>>) {
    for slot in closed {
        // A slot in use is closed by its user's drop; an idle one now.
        if let Ok(mut conn) = slot.try_lock() {
            if let Some(c) = conn.take() {
                c.close();
            }
        }
    }
}

/// The one address of `host` the connection is made to, after every address it resolves to
/// was checked against the policy.
async fn allowed_address(policy: &AddressPolicy, host: &str, port: u16) -> Result<IpAddr, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        policy.check(ip)?;
        return Ok(ip);
    }
    let found: Vec<IpAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| format!("{bare} did not resolve: {e}"))?
        .map(|a| a.ip())
        .collect();
    for ip in &found {
        policy.check(*ip)?;
    }
    found
        .first()
        .copied()
        .ok_or_else(|| format!("{bare} did not resolve to any address"))
}

/// A setting of the destination's shown config.
fn setting<'a>(endpoint: &'a Endpoint, name: &str) -> Option<&'a str> {
    endpoint.destination.as_ref()?.config.get(name)?.as_str()
}

/// Shuts a socket down when dropped, unless disarmed: a connection given up half-way (an
/// error, or the delivery timeout dropping the future) leaves no socket or thread behind.
struct Guard(Option<Socket>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.shut();
        }
    }
}

async fn amqp_connect(policy: &AddressPolicy, endpoint: &Endpoint) -> Result<Conn, String> {
    let text = endpoint
        .destination
        .as_ref()
        .and_then(|d| d.credential.as_deref())
        .ok_or("the destination has no broker URI")?;
    let uri = lapin::uri::AMQPUri::from_str(text).map_err(|e| format!("invalid broker URI: {e}"))?;
    let ip = allowed_address(policy, &uri.authority.host, uri.authority.port).await?;
    // The TCP connection is made here, to the checked address, so its socket is known before
    // the AMQP client's thread takes it over.
    let tcp = tokio::net::TcpStream::connect(std::net::SocketAddr::new(ip, uri.authority.port))
        .await
        .map_err(|e| format!("cannot connect to the broker: {e}"))?;
    let socket = Socket::default();
    socket.keep(&tcp);
    let mut guard = Guard(Some(socket.clone()));
    let conn = amqp_open(uri, tcp, endpoint).await?;
    let channel = conn
        .create_channel()
        .await
        .map_err(|e| format!("cannot open a channel: {e}"))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| format!("the broker refused publisher confirms: {e}"))?;
    guard.0 = None;
    Ok(Conn::Amqp(Box::new(Amqp { conn, channel, socket })))
}

/// Opens the AMQP connection over `tcp` (TLS, for `amqps`, verifies the certificate against
/// the URI's host name). The client gets this one connection: should it try to connect again,
/// it fails rather than reach an address nobody checked.
async fn amqp_open(
    uri: lapin::uri::AMQPUri,
    tcp: tokio::net::TcpStream,
    endpoint: &Endpoint,
) -> Result<Connection, String> {
    let properties = ConnectionProperties::default().with_connection_name(format!("hookd {}", endpoint.id).into());
    let runtime = async_rs::Runtime::tokio_current();
    let tcp = Arc::new(Mutex::new(Some(tcp)));
    let connect = async move |uri: lapin::uri::AMQPUri, _runtime: async_rs::TokioRuntime| {
        let taken = tcp.lock().expect("broker socket lock").take();
        let tcp = taken.ok_or_else(|| std::io::Error::other("the connection to the broker was lost"))?;
        let stream = lapin::tcp::AsyncTcpStream::Plain(async_compat::Compat::new(tcp));
        let stream = match uri.scheme {
            lapin::uri::AMQPScheme::AMQP => stream,
            lapin::uri::AMQPScheme::AMQPS => {
                let tls = lapin::tcp::OwnedTLSConfig::default();
                stream.into_tls(&uri.authority.host, tls.as_ref()).await?
            }
        };
        Ok(stream)
    };
    Connection::connector(uri, runtime, connect, properties)
        .await
        .map_err(|e| format!("cannot connect to the broker: {e}"))
}

/// Publishes every message of the batch, in order, then waits for the broker to confirm each.
async fn amqp_publish(
    channel: &Channel,
    endpoint: &Endpoint,
    keys: &[&SigningKey],
    items: &[FifoItem],
    now: DateTime<Utc>,
) -> Result<String, String> {
    let exchange = setting(endpoint, "exchange").unwrap_or_default();
    let routing_key = setting(endpoint, "routingKey").unwrap_or_default();
    let mandatory = endpoint
        .destination
        .as_ref()
        .and_then(|d| d.config.get("mandatory"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let ts = now.timestamp();
    let mut confirms = Vec::with_capacity(items.len());
    for item in items {
        let m = &item.message;
        let body = m.payload.as_deref().unwrap_or("null").as_bytes();
        let mut headers = FieldTable::default();
        for (name, value) in [
            ("webhook-id", m.id.clone()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", signature_header_for(keys, &m.id, ts, body)),
            ("webhook-event-type", m.event_type.clone()),
        ] {
            headers.insert(name.into(), AMQPValue::LongString(value.into()));
        }
        let properties = BasicProperties::default()
            .with_message_id(m.id.as_str().into())
            .with_content_type("application/json".into())
            .with_app_id("hookd".into())
            .with_timestamp(ts.max(0) as u64)
            // Persistent: a durable queue keeps it across a broker restart.
            .with_delivery_mode(2)
            .with_headers(headers);
        // The `type` property holds at most 255 bytes; the header always has the event type.
        let properties = if m.event_type.len() <= 255 {
            properties.with_type(m.event_type.as_str().into())
        } else {
            properties
        };
        let confirm = channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .map_err(|e| format!("cannot publish {}: {e}", m.id))?;
        confirms.push(confirm);
    }
    for (confirm, item) in confirms.into_iter().zip(items) {
        let id = &item.message.id;
        match confirm.await.map_err(|e| format!("no confirm for {id}: {e}"))? {
            Confirmation::Ack(None) => {}
            Confirmation::Ack(Some(returned)) => {
                return Err(format!(
                    "the broker returned {id} as unroutable ({} {}): no queue is bound for routing key `{routing_key}` on {}",
                    returned.reply_code,
                    returned.reply_text,
                    if exchange.is_empty() { "the default exchange".to_string() } else { format!("exchange `{exchange}`") },
                ))
            }
            Confirmation::Nack(_) => return Err(format!("the broker refused {id} (nack)")),
            Confirmation::NotRequested => return Err("the channel is not in confirm mode".into()),
        }
    }
    Ok(format!(
        "{} message(s) published to routing key `{routing_key}`{} and confirmed by the broker",
        items.len(),
        if exchange.is_empty() {
            String::new()
        } else {
            format!(" on exchange `{exchange}`")
        }
    ))
}

/// A table name (`table` or `schema.table`) as a quoted SQL identifier; `None` unless every
/// part is 1 to 63 letters, digits and underscores, not starting with a digit.
pub fn quoted_table(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 {
        return None;
    }
    let well_formed = |p: &&str| {
        !p.is_empty()
            && p.len() <= MAX_IDENTIFIER
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !p.starts_with(|c: char| c.is_ascii_digit())
    };
    parts
        .iter()
        .all(well_formed)
        .then(|| parts.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join("."))
}

/// The connection settings of a PostgreSQL destination, before the address check: the host,
/// port, user and database of `url` (`postgres://user@host:port/database`, whose only query
/// setting may be `sslmode`), the destination's own password (never one from hookd's
/// environment or `.pgpass`), and its CA.
pub fn pg_options(url: &str, password: Option<&str>, root_cert: Option<&str>) -> Result<PgConnectOptions, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("invalid database URL: {e}"))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err("the database URL must start with postgres://".into());
    }
    if parsed.password().is_some() {
        return Err(
            "the database URL must not carry a password: put it in config.password, which is kept sealed and never shown"
                .into(),
        );
    }
    let host = match parsed.host() {
        Some(url::Host::Domain(d))
            if !d.is_empty() && d.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') =>
        {
            d.to_string()
        }
        Some(url::Host::Ipv4(v4)) => v4.to_string(),
        Some(url::Host::Ipv6(v6)) => v6.to_string(),
        _ => return Err("the database URL must name the database's host (a local socket is not reachable)".into()),
    };
    if parsed.username().is_empty() {
        return Err("the database URL must name the user (postgres://user@host/database)".into());
    }
    let user = percent_decode(parsed.username())?;
    let database = match parsed.path().trim_start_matches('/') {
        "" => user.clone(),
        path => percent_decode(path)?,
    };
    let mut ssl_mode = PgSslMode::Prefer;
    for (name, value) in parsed.query_pairs() {
        if name != "sslmode" && name != "ssl-mode" {
            return Err(format!(
                "the database URL may set only sslmode, not `{name}` (the password goes in config.password, a CA in config.sslRootCert)"
            ));
        }
        ssl_mode = match value.as_ref() {
            "disable" => PgSslMode::Disable,
            "allow" => PgSslMode::Allow,
            "prefer" => PgSslMode::Prefer,
            "require" => PgSslMode::Require,
            "verify-ca" => PgSslMode::VerifyCa,
            "verify-full" => return Err("sslmode=verify-full is not offered: hookd connects to the address it checked, not by name; use verify-ca with config.sslRootCert".into()),
            other => return Err(format!("unknown sslmode `{other}`")),
        };
    }
    let mut options = PgConnectOptions::new_without_pgpass()
        .host(&host)
        .port(parsed.port().unwrap_or(5432))
        .username(&user)
        .database(&database)
        .password(password.unwrap_or_default())
        .ssl_mode(ssl_mode)
        .application_name("hookd");
    if let Some(pem) = root_cert {
        options = options.ssl_root_cert_from_pem(pem.as_bytes().to_vec());
    }
    Ok(options)
}

fn percent_decode(text: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|t| t.into_owned())
        .map_err(|_| "the database URL is not UTF-8".to_string())
}

async fn pg_connect(policy: &AddressPolicy, endpoint: &Endpoint) -> Result<Conn, String> {
    let url = setting(endpoint, "url").ok_or("the destination has no database URL")?;
    let d = endpoint.destination.as_ref().ok_or("not a destination")?;
    let mut options = pg_options(url, d.credential.as_deref(), setting(endpoint, "sslRootCert"))?;
    let ip = allowed_address(policy, options.get_host(), options.get_port()).await?;
    // Connect to the checked address itself, so a DNS answer cannot change in between.
    options = options.host(&ip.to_string());
    let conn = PgConnection::connect_with(&options)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    Ok(Conn::Pg(Box::new(Pg { conn, ready: None })))
}

/// Inserts the batch as rows, one statement, skipping ids already there. The table is created
/// when it does not exist. Each row's signature signs the payload as the table stores it
/// (`payload::text`), so it verifies against what a reader gets back.
async fn pg_insert(
    pg: &mut Pg,
    endpoint: &Endpoint,
    keys: &[&SigningKey],
    items: &[FifoItem],
    now: DateTime<Utc>,
) -> Result<String, String> {
    let name = setting(endpoint, "tableName").ok_or("the destination has no table")?;
    let table = quoted_table(name).ok_or_else(|| format!("invalid table name `{name}`"))?;
    let conn = &mut pg.conn;
    // Looked up once per connection (a failure closes the connection, so a table dropped
    // meanwhile is looked up again).
    let exists = match &pg.ready {
        Some(ready) if *ready == table => Some(table.clone()),
        _ => sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(&table)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| format!("cannot look up table {table}: {e}"))?,
    };
    if exists.is_none() {
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, event_type text NOT NULL, payload jsonb, \
             signature text NOT NULL, timestamp timestamptz NOT NULL, event_id text)"
        );
        sqlx::query(&create)
            .execute(&mut *conn)
            .await
            .map_err(|e| format!("cannot create table {table}: {e}"))?;
    }
    let payloads: Vec<Option<&str>> = items.iter().map(|i| i.message.payload.as_deref()).collect();
    // The payloads as the table will hold them.
    let stored: Vec<Option<String>> =
        sqlx::query_scalar("SELECT p::jsonb::text FROM unnest($1::text[]) WITH ORDINALITY AS u(p, n) ORDER BY n")
            .bind(&payloads)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| format!("a payload is not valid JSON for the database: {e}"))?;
    let ts = now.timestamp();
    let at = DateTime::from_timestamp(ts, 0).unwrap_or(now);
    let mut ids = Vec::with_capacity(items.len());
    let mut types = Vec::with_capacity(items.len());
    let mut signatures = Vec::with_capacity(items.len());
    let mut event_ids = Vec::with_capacity(items.len());
    for (item, text) in items.iter().zip(&stored) {
        let m = &item.message;
        let body = text.as_deref().unwrap_or("null");
        ids.push(m.id.as_str());
        types.push(m.event_type.as_str());
        signatures.push(signature_header_for(keys, &m.id, ts, body.as_bytes()));
        event_ids.push(m.event_id.as_deref());
    }
    let insert = format!(
        "INSERT INTO {table} (id, event_type, payload, signature, timestamp, event_id) \
         SELECT i, t, p::jsonb, s, $5, e FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $6::text[]) AS u(i, t, p, s, e) \
         ON CONFLICT (id) DO NOTHING"
    );
    let inserted = sqlx::query(&insert)
        .bind(&ids)
        .bind(&types)
        .bind(&stored)
        .bind(&signatures)
        .bind(at)
        .bind(&event_ids)
        .execute(&mut *conn)
        .await
        .map_err(|e| format!("cannot insert into {table}: {e}"))?
        .rows_affected();
    pg.ready = Some(table.clone());
    let skipped = (items.len() as u64).saturating_sub(inserted);
    Ok(match skipped {
        0 => format!("{inserted} row(s) inserted into {table}"),
        n => format!("{inserted} row(s) inserted into {table}; {n} were already there"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_quoted_identifiers_and_anything_else_is_refused() {
        assert_eq!(quoted_table("events").as_deref(), Some("\"events\""));
        assert_eq!(
            quoted_table("Hooks.Events_2").as_deref(),
            Some("\"Hooks\".\"Events_2\"")
        );
        for bad in [
            "",
            "a.b.c",
            ".events",
            "events.",
            "2events",
            "ev\"ents",
            "ev ents",
            "ev;drop",
            &"x".repeat(64),
        ] {
            assert_eq!(quoted_table(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_database_url_gives_host_port_user_and_database_and_nothing_else() {
        let o = pg_options(
            "postgres://hooks@db.example.com:5433/app?sslmode=require",
            Some("pw"),
            None,
        )
        .unwrap();
        assert_eq!(o.get_host(), "db.example.com");
        assert_eq!(o.get_port(), 5433);
        assert_eq!(o.get_username(), "hooks");
        assert_eq!(o.get_database(), Some("app"));
        assert!(matches!(o.get_ssl_mode(), PgSslMode::Require));
        // The user's name is the database's when the URL names none.
        let o = pg_options("postgresql://ledger%40corp@10.1.2.3", None, None).unwrap();
        assert_eq!(
            (o.get_username(), o.get_database()),
            ("ledger@corp", Some("ledger@corp"))
        );
        assert!(matches!(o.get_ssl_mode(), PgSslMode::Prefer));
        for bad in [
            "postgres://hooks@%2Fvar%2Frun%2Fpostgresql/app",
            "postgres://hooks@localhost/app?host=/tmp",
            "postgres://hooks@db/app?sslcert=/etc/hookd/client.pem",
            "postgres://hooks@db/app?sslmode=verify-full",
            "postgres://db/app",
            "not a url",
        ] {
            assert!(pg_options(bad, None, None).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_host_is_refused_when_any_of_its_addresses_is() {
        let policy = AddressPolicy::new(Vec::new());
        // Literals are checked without DNS; the classifier itself is tested in hookd-core.
        assert!(allowed_address(&policy, "127.0.0.1", 5672).await.is_err());
        assert!(allowed_address(&policy, "[::1]", 5672).await.is_err());
        let open = AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert_eq!(
            allowed_address(&open, "127.0.0.1", 5672).await.unwrap(),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    fn endpoint(app: &str, n: usize) -> Endpoint {
        let now = Utc::now();
        Endpoint {
            id: format!("ep_{app}_{n}"),
            app_id: app.to_string(),
            uid: None,
            url: String::new(),
            description: String::new(),
            disabled: false,
            event_types: None,
            channels: None,
            throttle_rate: None,
            metadata: Default::default(),
            secret: String::new(),
            headers: Default::default(),
            old_secrets: Vec::new(),
            failing_since: None,
            created_at: now,
            updated_at: now,
            destination: Some(hookd_core::model::Destination {
                kind: DestinationKind::Postgres,
                config: Default::default(),
                credential: Some(format!("pw{n}")),
                batch_size: 10,
                max_wait_secs: 0,
            }),
        }
    }

    #[tokio::test]
    async fn connections_are_bounded_per_application_and_in_all() {
        let sinks = Sinks::new(
            AddressPolicy::default(),
            AddressPolicy::default(),
            Duration::from_secs(1),
        );
        let per_app = |s: &Sinks, app: &str| s.links.lock().unwrap().values().filter(|l| l.app_id == app).count();
        // One hostile application with many destinations keeps at most its share...
        for n in 0..50 {
            sinks.link(&endpoint("hostile", n));
        }
        assert_eq!(per_app(&sinks, "hostile"), MAX_LINKS_PER_APP);
        // ...and its newest ones are the ones kept.
        assert!(sinks.links.lock().unwrap().contains_key("ep_hostile_49"));
        // Many applications fill the node up to its bound, not past it.
        for app in 0..40 {
            for n in 0..3 {
                sinks.link(&endpoint(&format!("app{app}"), n));
            }
        }
        assert_eq!(sinks.held(), MAX_LINKS);
        // The same destination keeps its slot; new settings get a new one.
        let first = sinks.link(&endpoint("app39", 2));
        assert!(Arc::ptr_eq(&first, &sinks.link(&endpoint("app39", 2))));
        let mut changed = endpoint("app39", 2);
        changed.destination.as_mut().unwrap().credential = Some("rotated".into());
        assert!(!Arc::ptr_eq(&first, &sinks.link(&changed)));
        assert_eq!(sinks.held(), MAX_LINKS);
    }
}
