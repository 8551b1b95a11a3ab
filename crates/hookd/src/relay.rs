//! `hookd listen` sessions: deliveries to an endpoint whose receiver is a developer's machine
//! that hookd cannot reach. The CLI dials hookd over a WebSocket; each delivery to the session's
//! endpoint travels down that socket as a [`RelayRequest`], the CLI forwards it to the local URL
//! and answers with a [`RelayReply`], which is recorded as the attempt's result.
//!
//! A session is an ordinary endpoint (filters, signing, attempts, retries) whose URL has the
//! [`SCHEME`]. While no socket is connected, its attempts fail like a refused connection and are
//! retried on the usual schedule; when the CLI reconnects, waiting retries are made due at once.
//! Sessions live on the node the CLI is connected to: in a cluster, an attempt claimed by another
//! node fails and is retried, and eventually lands on the right node or after a reconnect.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// URL scheme of session endpoints (`hookd-listen://cli`).
pub const SCHEME: &str = "hookd-listen:";

/// Whether `url` is a `hookd listen` session endpoint's.
pub fn is_session_url(url: &str) -> bool {
    url.starts_with(SCHEME)
}

/// One delivery sent down a session's socket (`{"type":"delivery", …}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RelayRequest {
    /// Correlates the reply.
    pub id: u64,
    /// The message id (`webhook-id`).
    pub msg_id: String,
    /// The message's event type.
    pub event_type: String,
    /// The attempt number.
    pub attempt: i64,
    /// Headers to send, signature included.
    pub headers: BTreeMap<String, String>,
    /// The payload, exactly as published.
    pub body: String,
}

/// The CLI's answer (`{"type":"result", …}`): what the local URL said, or why it said nothing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RelayReply {
    /// The request it answers.
    pub id: u64,
    /// HTTP status, 0 when the local request failed.
    #[serde(default)]
    pub status: u16,
    /// Response body (as much as the CLI sends back; hookd keeps the first 20 KiB).
    #[serde(default)]
    pub body: String,
    /// Response headers in order.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Local round trip in milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
    /// Why no response came (connection refused, timeout…).
    #[serde(default)]
    pub error: Option<String>,
}

/// Frames of the session protocol, tagged by `type`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Frame {
    /// Server → CLI, first: the session's endpoint and its signing secret.
    #[serde(rename_all = "camelCase")]
    Session {
        /// The application's id.
        app_id: String,
        /// The session's endpoint id (pass it as `session` to resume).
        endpoint_id: String,
        /// What the local receiver verifies with: the `whsec_` secret, or the `whpk_` public
        /// key of an ed25519 endpoint.
        secret: String,
        /// Event types it receives (`null` for all).
        event_types: Option<Vec<String>>,
        /// Deliveries made due again because the session resumed.
        resumed: u64,
    },
    /// Server → CLI: a delivery to forward.
    Delivery(RelayRequest),
    /// CLI → server: the result of forwarding one.
    Result(RelayReply),
    /// CLI → server: the developer stopped listening; the session's endpoint is removed.
    Close,
}

/// A delivery waiting for the CLI, and where its answer goes.
pub struct RelayJob {
    /// What to send.
    pub request: RelayRequest,
    /// Where the reply goes.
    pub reply: oneshot::Sender<RelayReply>,
}

/// Why a relayed attempt got no answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayFailure {
    /// The CLI did not answer in time (retried like an HTTP timeout).
    pub timed_out: bool,
    /// For the attempt log.
    pub reason: String,
}

impl RelayFailure {
    fn gone(reason: &str) -> RelayFailure {
        RelayFailure {
            timed_out: false,
            reason: reason.to_string(),
        }
    }
}

/// The sessions connected to this node, by endpoint id.
#[derive(Default)]
pub struct RelayHub {
    sessions: Mutex<HashMap<String, (u64, mpsc::Sender<RelayJob>)>>,
    next: std::sync::atomic::AtomicU64,
}

/// A registered session; it unregisters itself when dropped, unless a newer connection for
/// the same endpoint has replaced it.
pub struct Registration<'a> {
    hub: &'a RelayHub,
    endpoint_id: String,
    generation: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut sessions = self.hub.sessions.lock().expect("relay lock");
        if sessions
            .get(&self.endpoint_id)
            .is_some_and(|(g, _)| *g == self.generation)
        {
            sessions.remove(&self.endpoint_id);
        }
    }
}

impl RelayHub {
    /// Registers a connection for `endpoint_id`, replacing an older one.
    pub fn register(&self, endpoint_id: &str, tx: mpsc::Sender<RelayJob>) -> Registration<'_> {
        let generation = self.next_id();
        self.sessions
            .lock()
            .expect("relay lock")
            .insert(endpoint_id.to_string(), (generation, tx));
        Registration {
            hub: self,
            endpoint_id: endpoint_id.to_string(),
            generation,
        }
    }

    /// A fresh correlation id.
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    /// Sends `request` through the session of `endpoint_id` and waits up to `timeout` for the
    /// CLI's answer. `Err` says why there is none.
    pub async fn forward(
        &self,
        endpoint_id: &str,
        mut request: RelayRequest,
        timeout: Duration,
    ) -> Result<RelayReply, RelayFailure> {
        let tx = self
            .sessions
            .lock()
            .expect("relay lock")
            .get(endpoint_id)
            .map(|(_, tx)| tx.clone())
            .ok_or_else(|| RelayFailure::gone("no hookd listen session is connected for this endpoint"))?;
        request.id = self.next_id();
        let (reply_tx, reply_rx) = oneshot::channel();
        // One deadline for the whole forward, queueing included: a session whose CLI stopped
        // reading (its queue full) cannot hold the attempt, or its send slots, past the timeout.
        let forward = async {
            tx.send(RelayJob {
                request,
                reply: reply_tx,
            })
            .await
            .map_err(|_| RelayFailure::gone("the hookd listen session disconnected"))?;
            reply_rx
                .await
                .map_err(|_| RelayFailure::gone("the hookd listen session disconnected during the attempt"))
        };
        match tokio::time::timeout(timeout, forward).await {
            Ok(result) => result,
            Err(_) => Err(RelayFailure {
                timed_out: true,
                reason: format!("the hookd listen session did not answer within {} s", timeout.as_secs()),
            }),
        }
    }

    /// Sessions connected here.
    pub fn len(&self) -> usize {
        self.sessions.lock().expect("relay lock").len()
    }

    /// Whether no session is connected here.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a session for `endpoint_id` is connected here.
    pub fn is_connected(&self, endpoint_id: &str) -> bool {
        self.sessions.lock().expect("relay lock").contains_key(endpoint_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A delivery request as the dispatcher hands it over.
    fn request() -> RelayRequest {
        RelayRequest {
            id: 0,
            msg_id: "msg_1".into(),
            event_type: "a.b".into(),
            attempt: 1,
            headers: BTreeMap::new(),
            body: "{}".into(),
        }
    }

    #[test]
    fn frames_are_tagged_json() {
        let f = Frame::Result(RelayReply {
            id: 3,
            status: 204,
            ..RelayReply::default()
        });
        let text = serde_json::to_string(&f).unwrap();
        assert!(text.contains(r#""type":"result""#), "{text}");
        assert_eq!(serde_json::from_str::<Frame>(&text).unwrap(), f);
        assert_eq!(
            serde_json::from_str::<Frame>(r#"{"type":"close"}"#).unwrap(),
            Frame::Close
        );
        // A minimal result (an error with no response) parses.
        let minimal: Frame = serde_json::from_str(r#"{"type":"result","id":1,"error":"refused"}"#).unwrap();
        assert!(matches!(minimal, Frame::Result(RelayReply { status: 0, .. })));
    }

    #[tokio::test]
    async fn a_reply_reaches_the_waiting_attempt_and_a_drop_fails_it() {
        let hub = RelayHub::default();
        let req = request();
        let none = hub.forward("ep_1", req.clone(), Duration::from_secs(1)).await;
        assert!(none.unwrap_err().reason.contains("no hookd listen session"));

        let (tx, mut rx) = mpsc::channel(4);
        let registration = hub.register("ep_1", tx);
        let cli = tokio::spawn(async move {
            let job = rx.recv().await.unwrap();
            let id = job.request.id;
            job.reply
                .send(RelayReply {
                    id,
                    status: 200,
                    ..RelayReply::default()
                })
                .unwrap();
            let dropped = rx.recv().await.unwrap();
            drop(dropped); // the socket went away mid-attempt
        });
        let reply = hub.forward("ep_1", req.clone(), Duration::from_secs(5)).await.unwrap();
        assert_eq!(reply.status, 200);
        let lost = hub.forward("ep_1", req.clone(), Duration::from_secs(5)).await;
        assert!(lost.unwrap_err().reason.contains("disconnected"));
        cli.await.unwrap();

        // A newer connection replaces the old one; the old registration's drop leaves it alone.
        let (tx2, _rx2) = mpsc::channel(4);
        let newer = hub.register("ep_1", tx2);
        drop(registration);
        assert!(hub.is_connected("ep_1"));
        drop(newer);
        assert!(!hub.is_connected("ep_1"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_that_stops_reading_cannot_hold_an_attempt_past_the_timeout() {
        let hub = RelayHub::default();
        // A queue of one that nobody reads: the CLI stopped reading its socket.
        let (tx, _stuck) = mpsc::channel(1);
        let _registration = hub.register("ep_1", tx);
        let req = request();
        let first = hub.forward("ep_1", req.clone(), Duration::from_secs(3)).await;
        assert!(first.unwrap_err().timed_out, "queued but never answered");
        // The queue is now full: the next forward waits to queue, and still ends on time.
        let started = tokio::time::Instant::now();
        let second = hub.forward("ep_1", req, Duration::from_secs(3)).await;
        assert!(second.unwrap_err().timed_out);
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }
}
