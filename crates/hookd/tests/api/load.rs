//! Steady publishing for the fault drills: workers post messages to one application until
//! stopped, remember every acknowledged id, count the refusals the drill allows, and keep the
//! first answer it does not allow, so a drill fails with that answer rather than a timeout.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where to publish.
#[derive(Clone)]
pub struct Target {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// An admin token.
    pub token: String,
    /// The application's uid.
    pub app: String,
}

impl Target {
    /// The application `app` of an in-process hookd, with its admin token.
    pub fn of(hookd: &crate::helpers::TestApp, app: &str) -> Target {
        Target {
            base: hookd.base.clone(),
            token: hookd.token.clone(),
            app: app.into(),
        }
    }
}

/// A refusal a drill expects while its fault lasts: the status and the Svix error codes it may
/// carry.
pub type Refusal = (u16, &'static [&'static str]);

#[derive(Default)]
struct Shared {
    acked: Mutex<HashSet<String>>,
    refused: AtomicUsize,
    slowest_us: AtomicU64,
    unexpected: Mutex<Option<String>>,
    stop: AtomicBool,
}

/// Publishers running in the background.
pub struct Load {
    shared: Arc<Shared>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `workers` publishers; each payload carries `pad` bytes of padding.
    pub fn start(target: Target, workers: usize, pad: usize, allowed: &'static [Refusal]) -> Load {
        let shared = Arc::new(Shared::default());
        let client = reqwest::Client::new();
        let workers = (0..workers)
            .map(|worker| {
                let (shared, client, target) = (shared.clone(), client.clone(), target.clone());
                tokio::spawn(async move {
                    let pad = "p".repeat(pad);
                    let url = format!("{}/api/v1/app/{}/msg", target.base, target.app);
                    let mut i = 0;
                    while !shared.stop.load(Ordering::Relaxed) {
                        i += 1;
                        let body = json!({"eventType": "a.b", "payload": {"w": worker, "i": i, "pad": pad}});
                        let started = Instant::now();
                        let answer = client.post(&url).bearer_auth(&target.token).json(&body).send().await;
                        let (status, body) = match answer {
                            Ok(r) => (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null)),
                            Err(e) => (0, Value::String(e.to_string())),
                        };
                        shared
                            .slowest_us
                            .fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                        if status == 202 {
                            if let Some(id) = body["id"].as_str() {
                                shared.acked.lock().unwrap().insert(id.to_string());
                                continue;
                            }
                        }
                        let code = body["code"].as_str().unwrap_or_default();
                        if allowed.iter().any(|(s, codes)| *s == status && codes.contains(&code)) {
                            shared.refused.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                        shared
                            .unexpected
                            .lock()
                            .unwrap()
                            .get_or_insert(format!("publishing answered {status}: {body}"));
                        shared.stop.store(true, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Load { shared, workers }
    }

    /// How many messages have been acknowledged so far.
    pub fn acked(&self) -> usize {
        self.shared.acked.lock().unwrap().len()
    }

    /// A counter of acknowledged messages that outlives this borrow.
    pub fn acked_counter(&self) -> impl Fn() -> usize + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || shared.acked.lock().unwrap().len()
    }

    /// How many answers were allowed refusals.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::Relaxed)
    }

    /// The slowest answer since the last call.
    pub fn take_slowest(&self) -> Duration {
        Duration::from_micros(self.shared.slowest_us.swap(0, Ordering::Relaxed))
    }

    /// The first answer that was neither a 202 nor an allowed refusal, if any.
    pub fn unexpected(&self) -> Option<String> {
        self.shared.unexpected.lock().unwrap().clone()
    }

    /// Waits until `n` messages have been acknowledged in all; `Err` says why not within `max`.
    pub async fn wait_acked(&self, n: usize, max: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + max;
        while self.acked() < n {
            if let Some(answer) = self.unexpected() {
                return Err(answer);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("only {} of {n} acknowledged after {max:?}", self.acked()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Waits until `count` more refusals have been answered; `Err` says why not within `max`.
    pub async fn wait_refused(&self, count: usize, max: Duration) -> Result<(), String> {
        let target = self.refused() + count;
        let deadline = tokio::time::Instant::now() + max;
        while self.refused() < target {
            if let Some(answer) = self.unexpected() {
                return Err(answer);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("fewer than {count} refusals within {max:?}"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Stops the publishers; returns every acknowledged id, or the unexpected answer.
    pub async fn finish(mut self) -> Result<HashSet<String>, String> {
        self.shared.stop.store(true, Ordering::Relaxed);
        for w in std::mem::take(&mut self.workers) {
            w.await.unwrap();
        }
        match self.unexpected() {
            Some(answer) => Err(answer),
            None => Ok(self.shared.acked.lock().unwrap().clone()),
        }
    }
}
