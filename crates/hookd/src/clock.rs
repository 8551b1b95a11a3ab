//! The clock as an input: production reads the system clock, tests can set time by hand.

use chrono::{DateTime, Utc};

/// Source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told; for tests that drive retries without waiting.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// Starts at `start`.
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: std::sync::Mutex::new(start),
        }
    }

    /// Moves time forward.
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.now.lock().expect("clock poisoned");
        *now += chrono::Duration::from_std(by).expect("duration in range");
    }
}

impl ManualClock {
    /// The current time as RFC 3339 (handy in query strings).
    pub fn now_rfc3339(&self) -> String {
        self.now().to_rfc3339()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock poisoned")
    }
}

/// Svix's timestamp form: RFC 3339, microseconds, `Z`.
pub fn ts(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
