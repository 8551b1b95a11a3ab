//! Retry policy: how an attempt's outcome is classified and when the next attempt is due.
//!
//! One pure function, [`RetryPolicy::next_delay`], decides everything; the dispatcher only applies
//! its answer. Randomness (the jitter) is an input so tests are exact.

use std::time::Duration;

use rand::Rng;

/// Svix's and hookd's default gaps between attempts, in seconds: 5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h, 10 h, i.e. eight attempts spread over about 27.6 hours.
pub const DEFAULT_SCHEDULE: [u64; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];

/// What one HTTP try produced, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A 2xx response.
    Success,
    /// Any other HTTP response; `retry_after` is the parsed `Retry-After` header, if any.
    Status {
        /// HTTP status code.
        code: u16,
        /// Parsed `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// No response within the request timeout.
    Timeout,
    /// Connection, DNS, TLS or protocol failure, or a refused destination.
    Transport,
}

impl Outcome {
    /// Classifies an HTTP status: 2xx is success, everything else (3xx included, since
    /// redirects are never followed) is a failure.
    pub fn from_status(code: u16, retry_after: Option<Duration>) -> Outcome {
        if (200..300).contains(&code) {
            Outcome::Success
        } else {
            Outcome::Status { code, retry_after }
        }
    }

    /// Did the attempt succeed?
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success)
    }

    /// Did the receiver answer `410 Gone` (the endpoint should be disabled)?
    pub fn is_gone(&self) -> bool {
        matches!(self, Outcome::Status { code: 410, .. })
    }
}

/// The retry schedule and its modifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Gaps between consecutive attempts; `schedule.len() + 1` attempts in all.
    pub schedule: Vec<Duration>,
    /// Relative jitter applied to every gap (0.2 = ±20 %).
    pub jitter: f64,
    /// The least wait after a timeout or a 429, whatever the schedule says.
    pub overload_floor: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            schedule: DEFAULT_SCHEDULE.iter().map(|s| Duration::from_secs(*s)).collect(),
            jitter: 0.2,
            overload_floor: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy with the default modifiers and the given gaps (in seconds).
    pub fn with_schedule_secs(secs: &[u64]) -> RetryPolicy {
        RetryPolicy {
            schedule: secs.iter().map(|s| Duration::from_secs(*s)).collect(),
            ..RetryPolicy::default()
        }
    }

    /// Total attempts a delivery gets from the schedule.
    pub fn max_attempts(&self) -> usize {
        self.schedule.len() + 1
    }

    /// After the `attempts_made`-th scheduled attempt ended with `outcome`, how long until the
    /// next one; `None` when the delivery is finished (succeeded or exhausted).
    pub fn next_delay<R: Rng + ?Sized>(
        &self,
        attempts_made: usize,
        outcome: &Outcome,
        rng: &mut R,
    ) -> Option<Duration> {
        if outcome.is_success() || attempts_made == 0 {
            return None;
        }
        let scheduled = *self.schedule.get(attempts_made - 1)?;
        let mut delay = scheduled;
        if let Outcome::Status {
            code: 429 | 503,
            retry_after: Some(asked),
        } = outcome
        {
            // A receiver may ask for more time, up to double the plan, never for less.
            delay = (*asked).clamp(scheduled, scheduled * 2);
        }
        let jittered = self.apply_jitter(delay, rng);
        let overloaded = matches!(outcome, Outcome::Timeout | Outcome::Status { code: 429, .. });
        Some(if overloaded {
            jittered.max(self.overload_floor)
        } else {
            jittered
        })
    }

    fn apply_jitter<R: Rng + ?Sized>(&self, delay: Duration, rng: &mut R) -> Duration {
        if self.jitter <= 0.0 || delay.is_zero() {
            return delay;
        }
        let factor = rng.gen_range((1.0 - self.jitter)..=(1.0 + self.jitter));
        delay.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::mock::StepRng;
    use rand::SeedableRng;

    fn fail500() -> Outcome {
        Outcome::from_status(500, None)
    }

    #[test]
    fn only_2xx_is_success() {
        assert!(Outcome::from_status(200, None).is_success());
        assert!(Outcome::from_status(299, None).is_success());
        for code in [199, 301, 302, 400, 404, 410, 429, 500, 503] {
            assert!(!Outcome::from_status(code, None).is_success(), "{code}");
        }
    }

    #[test]
    fn only_410_means_gone() {
        assert!(Outcome::from_status(410, None).is_gone());
        for code in [200, 404, 500] {
            assert!(!Outcome::from_status(code, None).is_gone(), "{code}");
        }
        assert!(!Outcome::Timeout.is_gone());
    }

    #[test]
    fn default_schedule_gives_eight_attempts_over_27_hours() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 8);
        let total: u64 = p.schedule.iter().map(|d| d.as_secs()).sum();
        assert_eq!(total, 99_305);
    }

    #[test]
    fn success_and_exhaustion_end_the_delivery() {
        let p = RetryPolicy::with_schedule_secs(&[1, 2]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(p.next_delay(1, &Outcome::Success, &mut rng), None);
        assert!(p.next_delay(1, &fail500(), &mut rng).is_some());
        assert!(p.next_delay(2, &fail500(), &mut rng).is_some());
        assert_eq!(
            p.next_delay(3, &fail500(), &mut rng),
            None,
            "three attempts, then exhausted"
        );
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let p = RetryPolicy::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let d = p.next_delay(2, &fail500(), &mut rng).unwrap().as_secs_f64();
            assert!((240.0..=360.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn retry_after_is_clamped_between_the_plan_and_double() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::with_schedule_secs(&[100])
        };
        let mut rng = StepRng::new(0, 0);
        let asked = |secs| Outcome::Status {
            code: 503,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(p.next_delay(1, &asked(10), &mut rng), Some(Duration::from_secs(100)));
        assert_eq!(p.next_delay(1, &asked(150), &mut rng), Some(Duration::from_secs(150)));
        assert_eq!(p.next_delay(1, &asked(1_000), &mut rng), Some(Duration::from_secs(200)));
        let on_500 = Outcome::Status {
            code: 500,
            retry_after: Some(Duration::from_secs(150)),
        };
        assert_eq!(
            p.next_delay(1, &on_500, &mut rng),
            Some(Duration::from_secs(100)),
            "only 429/503 honour it"
        );
    }

    #[test]
    fn timeouts_and_429_wait_at_least_the_overload_floor() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::with_schedule_secs(&[5])
        };
        let mut rng = StepRng::new(0, 0);
        assert_eq!(
            p.next_delay(1, &Outcome::Timeout, &mut rng),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            p.next_delay(1, &Outcome::from_status(429, None), &mut rng),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            p.next_delay(1, &Outcome::Transport, &mut rng),
            Some(Duration::from_secs(5))
        );
    }
}
