//! `GET /api/v1/app/{app_id}/listen`: the WebSocket a `hookd listen` CLI dials. The session is
//! an endpoint of the application (created on first connect, resumed with `?session=ep_…`);
//! deliveries to it travel down the socket and the CLI's answers come back as attempt results.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use hookd_core::model::Endpoint;
use tokio::sync::{mpsc, oneshot};

use super::error::ApiError;
use super::extract::{Caller, Query};
use super::{app_for, ApiResult};
use crate::ops::endpoints::{self, EndpointIn};
use crate::ops::ErrorCode;
use crate::relay::{self, Frame, RelayJob, RelayReply};
use crate::state::AppState;

/// Keeps idle sessions alive through proxies that close quiet connections.
const PING_EVERY: Duration = Duration::from_secs(20);

pub fn router() -> Router<AppState> {
    Router::new().route(v1!("/app/{app_id}/listen"), get(listen))
}

async fn listen(
    State(s): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    q: Query,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let app = app_for(&s, &caller, &app_id).await?;
    let ws = ws.map_err(|e| ApiError::BadRequest {
        code: ErrorCode::WebsocketRequired,
        detail: format!("this route is a WebSocket for `hookd listen`: {e}"),
    })?;
    let endpoint = match q.get("session") {
        Some(key) => {
            let ep = endpoints::get_endpoint(&s, &app, key).await?;
            if !relay::is_session_url(&ep.url) {
                return Err(ApiError::field(
                    &["query", "session"],
                    "that endpoint is not a hookd listen session",
                ));
            }
            ep
        }
        None => {
            let input = EndpointIn {
                url: format!("{}//cli", relay::SCHEME),
                description: Some("hookd listen session".into()),
                event_types: q.list("events"),
                metadata: Some([("hookd.listen".to_string(), "session".to_string())].into()),
                ..EndpointIn::default()
            };
            endpoints::create_endpoint(&s, &app, input).await?
        }
    };
    Ok(ws.on_upgrade(move |socket| session(s, endpoint, socket)))
}

/// Runs one connected session until the socket closes.
async fn session(state: AppState, endpoint: Endpoint, mut socket: WebSocket) {
    // What the receiver verifies with: the secret itself for HMAC, the public key for ed25519.
    let Ok(verification) = endpoints::verification_key(&endpoint) else {
        tracing::warn!(endpoint = %endpoint.id, "listen session endpoint has an unusable key");
        return;
    };
    let (tx, mut jobs) = mpsc::channel::<RelayJob>(64);
    let registration = state.relay.register(&endpoint.id, tx);
    // Retries that were waiting because the session was away are due now.
    let resumed = match state.store.hasten_endpoint(&endpoint.id, state.clock.now()).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, endpoint = %endpoint.id, "cannot resume waiting deliveries");
            0
        }
    };
    if resumed > 0 {
        state.dispatcher.wake();
    }
    let hello = Frame::Session {
        app_id: endpoint.app_id.clone(),
        endpoint_id: endpoint.id.clone(),
        secret: verification,
        event_types: endpoint.event_types.clone(),
        resumed,
    };
    if send(&mut socket, &hello).await.is_err() {
        return;
    }
    tracing::info!(endpoint = %endpoint.id, app = %endpoint.app_id, "hookd listen session connected");
    let mut waiting: HashMap<u64, oneshot::Sender<RelayReply>> = HashMap::new();
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut closed_by_cli = false;
    loop {
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else { break };
                let id = job.request.id;
                if send(&mut socket, &Frame::Delivery(job.request)).await.is_err() {
                    break; // the job's reply sender drops: the attempt fails and is retried
                }
                waiting.insert(id, job.reply);
            }
            incoming = socket.recv() => {
                match incoming {
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<Frame>(text.as_str()) {
                        Ok(Frame::Result(reply)) => {
                            if let Some(w) = waiting.remove(&reply.id) {
                                let _ = w.send(reply);
                            }
                        }
                        Ok(Frame::Close) => {
                            closed_by_cli = true;
                            break;
                        }
                        Ok(_) | Err(_) => {
                            tracing::debug!(endpoint = %endpoint.id, "ignoring an unexpected frame from hookd listen");
                        }
                    },
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                }
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(registration);
    tracing::info!(endpoint = %endpoint.id, closed_by_cli, "hookd listen session ended");
    if closed_by_cli {
        // The developer stopped listening: the session's endpoint (and what it still had
        // pending) goes away rather than failing on for days.
        if let Ok(Some(app)) = state.apps.by_id(&endpoint.app_id).await {
            if let Err(e) = endpoints::delete_endpoint(&state, &app, &endpoint.id).await {
                tracing::warn!(error = %e, endpoint = %endpoint.id, "cannot remove the ended session's endpoint");
            }
        }
    }
}

/// Longest a frame may take to be written: a CLI that stops reading has its session closed
/// instead of holding the deliveries queued for it.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn send(socket: &mut WebSocket, frame: &Frame) -> Result<(), axum::Error> {
    let text = serde_json::to_string(frame).expect("frames serialize");
    match tokio::time::timeout(WRITE_TIMEOUT, socket.send(Message::Text(text.into()))).await {
        Ok(sent) => sent,
        Err(_) => Err(axum::Error::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the hookd listen client stopped reading",
        ))),
    }
}
