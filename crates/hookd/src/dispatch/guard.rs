//! Per-endpoint protection: pacing to the endpoint's `throttleRate`, and a circuit breaker that
//! stops hammering an endpoint that keeps failing.
//!
//! The breaker counts consecutive failed attempts per endpoint. At the threshold the circuit
//! opens: the endpoint's due deliveries are deferred (their attempts are not spent) until the
//! cooldown ends. Then one probe goes through while the others keep waiting; a success closes
//! the circuit, a failure reopens it with twice the cooldown (at most [`MAX_COOLDOWN`]).
//! Manual attempts (resend, recover) are the operator's explicit wish and bypass the breaker.
//!
//! State lives in memory: after a restart every circuit starts closed, which costs at most one
//! threshold's worth of failed attempts per endpoint.

use hookd_store::ids::{HashMap, HashMapExt};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Longest an open circuit waits before its next probe.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(600);
/// How long a probe may be out before another is allowed: longer than any request (30 s at
/// most) and its recording, so a probe whose outcome never comes cannot keep a circuit shut.
pub const PROBE_DEADLINE: chrono::TimeDelta = chrono::TimeDelta::seconds(90);
/// Endpoints remembered before idle entries are forgotten.
const MAX_TRACKED: usize = 50_000;
/// How far ahead an endpoint's pacing may book sends for deliveries held in memory. A delivery
/// whose slot is further away goes back to the database until then, so a throttled endpoint
/// holds about `rate × PACE_HORIZON` deliveries in memory, never its whole backlog.
pub const PACE_HORIZON: Duration = Duration::from_secs(1);

/// Whether a delivery may be attempted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Send it.
    Go,
    /// Leave it for later: the circuit is open until then.
    Defer(DateTime<Utc>),
}

#[derive(Debug, Default)]
struct EndpointState {
    failures: u32,
    open_until: Option<DateTime<Utc>>,
    /// When the probe now out was let through; a probe not recorded by [`PROBE_DEADLINE`]
    /// after that (its attempt was deferred, given back or lost) no longer blocks the next.
    probing: Option<DateTime<Utc>>,
    cooldown: Duration,
    next_send: Option<tokio::time::Instant>,
    /// The endpoint's rate limit as last seen by [`Guards::pace`].
    rate: Option<u16>,
}

/// The breaker and pacer for every endpoint.
#[derive(Debug)]
pub struct Guards {
    threshold: u32,
    base_cooldown: Duration,
    endpoints: Mutex<HashMap<String, EndpointState>>,
}

impl Guards {
    /// `threshold` 0 turns the breaker off.
    pub fn new(threshold: u32, cooldown: Duration) -> Guards {
        Guards {
            threshold,
            base_cooldown: cooldown,
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, endpoint_id: &str, f: impl FnOnce(&mut EndpointState) -> R) -> R {
        let mut map = self.endpoints.lock().expect("guard map poisoned");
        if map.len() > MAX_TRACKED {
            map.retain(|_, s| s.failures > 0 || s.open_until.is_some());
        }
        f(map.entry(endpoint_id.to_string()).or_default())
    }

    /// Endpoints whose circuit is open (or half-open, waiting for a probe's verdict).
    pub fn open_circuits(&self) -> usize {
        self.endpoints
            .lock()
            .expect("guard map poisoned")
            .values()
            .filter(|s| s.open_until.is_some())
            .count()
    }

    /// May a scheduled attempt to `endpoint_id` go out at `now`?
    pub fn admit(&self, endpoint_id: &str, now: DateTime<Utc>) -> Gate {
        if self.threshold == 0 {
            return Gate::Go;
        }
        self.with(endpoint_id, |s| match s.open_until {
            None => Gate::Go,
            Some(until) if now < until => Gate::Defer(until),
            Some(_) if s.probing.is_none_or(|since| now - since >= PROBE_DEADLINE) => {
                s.probing = Some(now);
                Gate::Go
            }
            // A probe is out: wait for its verdict (retry shortly after).
            Some(_) => Gate::Defer(now + chrono::Duration::seconds(1)),
        })
    }

    /// Records the outcome of an attempt to `endpoint_id` made at `now`.
    pub fn record(&self, endpoint_id: &str, success: bool, now: DateTime<Utc>) {
        if self.threshold == 0 {
            return;
        }
        let (threshold, base) = (self.threshold, self.base_cooldown);
        self.with(endpoint_id, |s| {
            if success {
                *s = EndpointState {
                    next_send: s.next_send,
                    rate: s.rate,
                    ..EndpointState::default()
                };
                return;
            }
            s.failures = s.failures.saturating_add(1);
            let cooldown = if s.probing.is_some() {
                (s.cooldown * 2).clamp(base, MAX_COOLDOWN.max(base))
            } else if s.failures >= threshold && s.open_until.is_none() {
                base
            } else {
                return;
            };
            s.probing = None;
            s.cooldown = cooldown;
            s.open_until = Some(now + chrono::Duration::from_std(cooldown).unwrap_or(chrono::Duration::MAX));
            tracing::warn!(
                endpoint = endpoint_id,
                failures = s.failures,
                cooldown_secs = cooldown.as_secs(),
                "circuit open"
            );
        })
    }

    /// Reserves the next send slot of an endpoint limited to `rate` messages per second and
    /// returns how long to wait for it (zero when there is no limit or the slot is free); or,
    /// when that slot is more than [`PACE_HORIZON`] away, reserves nothing and returns
    /// `Err(wait)`: the caller gives the delivery back to the database until then.
    pub fn pace(&self, endpoint_id: &str, rate: Option<u16>) -> Result<Duration, Duration> {
        let rate = rate.filter(|r| *r > 0);
        let now = tokio::time::Instant::now();
        self.with(endpoint_id, |s| {
            s.rate = rate;
            let Some(rate) = rate else {
                return Ok(Duration::ZERO);
            };
            let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
            let slot = s.next_send.map_or(now, |next| next.max(now));
            if slot - now > PACE_HORIZON {
                return Err(slot - now);
            }
            s.next_send = Some(slot + interval);
            Ok(slot - now)
        })
    }

    /// Endpoints whose in-memory share is lower than usual right now, with that share: `0`
    /// while a circuit is open (nothing is sent until the probe) or pacing is booked beyond
    /// [`PACE_HORIZON`]; one at probe time; about `rate × PACE_HORIZON` for a paced endpoint.
    pub fn hold_limits(&self, now: DateTime<Utc>) -> HashMap<String, usize> {
        let instant = tokio::time::Instant::now();
        let map = self.endpoints.lock().expect("guard map poisoned");
        map.iter()
            .filter_map(|(id, s)| Some((id.clone(), Self::limit_of(s, now, instant)?)))
            .collect()
    }

    fn limit_of(s: &EndpointState, now: DateTime<Utc>, instant: tokio::time::Instant) -> Option<usize> {
        match s.open_until {
            Some(until) if now < until => return Some(0),
            Some(_) if s.probing.is_some_and(|since| now - since < PROBE_DEADLINE) => return Some(0),
            Some(_) => return Some(1),
            None => {}
        }
        let rate = s.rate?;
        if s.next_send.is_some_and(|next| next > instant + PACE_HORIZON) {
            return Some(0);
        }
        Some((f64::from(rate) * PACE_HORIZON.as_secs_f64()).ceil() as usize + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The share of endpoint `ep` as [`Guards::hold_limits`] gives it; `None` when it is not
    /// lowered.
    fn hold_limit(g: &Guards, now: DateTime<Utc>) -> Option<usize> {
        g.hold_limits(now).get("ep").copied()
    }

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn circuit_opens_at_the_threshold_and_defers_until_the_cooldown_ends() {
        let g = Guards::new(3, Duration::from_secs(30));
        for i in 0..2 {
            g.record("ep", false, t(i));
            assert_eq!(g.admit("ep", t(i)), Gate::Go);
        }
        g.record("ep", false, t(2));
        assert_eq!(g.admit("ep", t(3)), Gate::Defer(t(32)));
        assert_eq!(g.admit("other", t(3)), Gate::Go, "other endpoints are unaffected");
    }

    #[test]
    fn one_probe_after_the_cooldown_then_close_on_success() {
        let g = Guards::new(1, Duration::from_secs(30));
        g.record("ep", false, t(0));
        assert_eq!(g.admit("ep", t(30)), Gate::Go, "the probe");
        assert!(
            matches!(g.admit("ep", t(30)), Gate::Defer(_)),
            "only one probe at a time"
        );
        g.record("ep", true, t(31));
        assert_eq!(g.admit("ep", t(31)), Gate::Go);
        assert_eq!(g.admit("ep", t(31)), Gate::Go);
    }

    #[test]
    fn a_failed_probe_reopens_with_double_the_cooldown_up_to_the_cap() {
        let g = Guards::new(1, Duration::from_secs(300));
        g.record("ep", false, t(0));
        assert_eq!(g.admit("ep", t(300)), Gate::Go);
        g.record("ep", false, t(300));
        assert_eq!(g.admit("ep", t(301)), Gate::Defer(t(900)));
        assert_eq!(g.admit("ep", t(900)), Gate::Go);
        g.record("ep", false, t(900));
        assert_eq!(g.admit("ep", t(901)), Gate::Defer(t(1500)), "capped at 10 minutes");
    }

    #[test]
    fn threshold_zero_turns_the_breaker_off() {
        let g = Guards::new(0, Duration::from_secs(30));
        for i in 0..100 {
            g.record("ep", false, t(i));
        }
        assert_eq!(g.admit("ep", t(100)), Gate::Go);
    }

    #[tokio::test(start_paused = true)]
    async fn pacing_spaces_sends_by_the_rate() {
        let g = Guards::new(0, Duration::from_secs(1));
        assert_eq!(g.pace("ep", None), Ok(Duration::ZERO));
        assert_eq!(g.pace("ep", Some(4)), Ok(Duration::ZERO));
        assert_eq!(g.pace("ep", Some(4)), Ok(Duration::from_millis(250)));
        assert_eq!(g.pace("ep", Some(4)), Ok(Duration::from_millis(500)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            g.pace("ep", Some(4)),
            Ok(Duration::ZERO),
            "an idle endpoint does not bank a burst"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pacing_never_books_beyond_the_horizon_and_lowers_the_share_meanwhile() {
        let g = Guards::new(3, Duration::from_secs(30));
        assert_eq!(hold_limit(&g, t(0)), None, "unknown endpoints are not limited");
        assert_eq!(g.pace("ep", Some(1)), Ok(Duration::ZERO));
        assert_eq!(hold_limit(&g, t(0)), Some(2), "rate × horizon + 1");
        assert_eq!(g.pace("ep", Some(1)), Ok(Duration::from_secs(1)));
        assert_eq!(hold_limit(&g, t(0)), Some(0), "booked beyond the horizon: take none");
        assert_eq!(g.hold_limits(t(0)), HashMap::from_iter([("ep".to_string(), 0)]));
        assert_eq!(
            g.pace("ep", Some(1)),
            Err(Duration::from_secs(2)),
            "two seconds ahead is past the horizon: not booked"
        );
        assert_eq!(g.pace("ep", Some(1)), Err(Duration::from_secs(2)), "still not booked");
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(hold_limit(&g, t(0)), Some(2), "the booking is within the horizon again");
        assert_eq!(g.pace("ep", Some(1)), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn a_probe_whose_outcome_never_comes_does_not_keep_the_circuit_shut() {
        let g = Guards::new(1, Duration::from_secs(30));
        g.record("ep", false, t(0));
        assert_eq!(g.admit("ep", t(30)), Gate::Go, "the probe");
        // Its attempt is deferred or given back: nothing is ever recorded for it.
        assert!(matches!(g.admit("ep", t(60)), Gate::Defer(_)));
        assert_eq!(hold_limit(&g, t(60)), Some(0));
        let after = t(30) + PROBE_DEADLINE;
        assert_eq!(
            hold_limit(&g, after),
            Some(1),
            "past the deadline: room for a new probe"
        );
        assert_eq!(g.admit("ep", after), Gate::Go, "a new probe goes out");
        g.record("ep", true, after);
        assert_eq!(g.admit("ep", after), Gate::Go, "and its success closes the circuit");
    }

    #[test]
    fn an_open_circuit_takes_nothing_until_its_probe_then_one() {
        let g = Guards::new(1, Duration::from_secs(30));
        g.record("ep", false, t(0));
        assert_eq!(hold_limit(&g, t(10)), Some(0));
        assert_eq!(hold_limit(&g, t(30)), Some(1), "probe time: one");
        assert_eq!(g.admit("ep", t(30)), Gate::Go);
        assert_eq!(hold_limit(&g, t(31)), Some(0), "the probe is out");
        g.record("ep", true, t(31));
        assert_eq!(hold_limit(&g, t(31)), None, "closed again");
    }
}
