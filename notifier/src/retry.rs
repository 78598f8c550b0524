//! Which delivery outcomes are worth another attempt, and how long to wait before it.

use std::time::Duration;

use rand::Rng;

/// What one attempt's outcome means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx: the receiver has it.
    Delivered,
    /// The receiver may take it later: a 5xx, 408, 429, a timeout or a connection error.
    Retry,
    /// Retrying cannot help: any other status (a 4xx, a redirect, which is not followed), or an
    /// address the SSRF guard refuses.
    Fail,
}

impl Verdict {
    /// The verdict on an HTTP answer with `status`.
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=299 => Self::Delivered,
            408 | 429 | 500..=599 => Self::Retry,
            _ => Self::Fail,
        }
    }

    /// The `status` the delivery row takes, before the horizon is considered.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "pending",
            Self::Fail => "failed",
        }
    }
}

/// Exponential backoff with full jitter: after the n-th failed attempt, wait a random time
/// between zero and `min(cap, base × 2^(n-1))`, so the retries of many deliveries that failed
/// together (an endpoint that was down) spread out instead of arriving as one wave. A delivery
/// whose next attempt would fall after `horizon` from its creation fails instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    pub horizon: Duration,
}

impl RetryPolicy {
    /// The longest wait after `attempts` failed attempts (1 or more).
    pub fn ceiling(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.base.saturating_mul(1 << doublings).min(self.cap)
    }

    /// The wait after `attempts` failed attempts, drawn from `rng`.
    pub fn delay(&self, attempts: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempts);
        Duration::from_secs_f64(rng.gen_range(0.0..=ceiling.as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn answers_are_delivered_retried_or_failed() {
        for status in [200, 201, 204, 299] {
            assert_eq!(Verdict::of_status(status), Verdict::Delivered, "{status}");
        }
        for status in [408, 429, 500, 502, 503, 599] {
            assert_eq!(Verdict::of_status(status), Verdict::Retry, "{status}");
        }
        for status in [100, 301, 302, 307, 400, 401, 403, 404, 410, 422] {
            assert_eq!(Verdict::of_status(status), Verdict::Fail, "{status}");
        }
    }

    #[test]
    fn waits_are_drawn_below_a_doubling_ceiling_up_to_the_cap() {
        let policy = RetryPolicy {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(60),
            horizon: Duration::from_secs(86_400),
        };
        let ceilings = [5, 10, 20, 40, 60, 60].map(Duration::from_secs);
        for (attempts, ceiling) in (1..).zip(ceilings) {
            assert_eq!(policy.ceiling(attempts), ceiling, "after {attempts}");
        }
        assert_eq!(policy.ceiling(10_000), policy.cap, "no overflow however many attempts");
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<Duration> = (0..1000).map(|_| policy.delay(3, &mut rng)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_secs(20)));
        assert!(
            draws.iter().any(|d| *d < Duration::from_secs(2)),
            "full jitter reaches near zero"
        );
        assert!(
            draws.iter().any(|d| *d > Duration::from_secs(18)),
            "and near the ceiling"
        );
    }
}
