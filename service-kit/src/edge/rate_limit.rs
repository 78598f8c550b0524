//! Per-caller token buckets: each caller may send `burst` requests at once, then `rate` per
//! second. Answers say where the caller stands in `RateLimit-Policy` and `RateLimit` headers
//! (draft-ietf-httpapi-ratelimit-headers: `q` the bucket size, `w` the seconds it takes to
//! refill from empty, `r` the requests left now, `t` the seconds until the bucket is full again).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// Buckets kept before idle ones are dropped; a full bucket holds nothing worth remembering.
const PRUNE_ABOVE: usize = 4096;
const POLICY: &str = "caller";

/// Who a bucket belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Caller {
    /// The `sub` of a token that verified.
    Subject(String),
    /// A client without a valid token, by address (its port changes with each connection).
    Address(IpAddr),
    /// Neither is known (a request that did not come over a socket).
    Unknown,
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_second: f64,
    burst: f64,
    state: Mutex<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    by_caller: HashMap<Caller, Bucket>,
    prune_above: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Where a caller stands after a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Standing {
    pub(crate) allowed: bool,
    tokens: f64,
    per_second: f64,
    burst: f64,
}

impl RateLimiter {
    /// `per_second` > 0 and `burst` ≥ 1, as checked by the settings.
    pub(crate) fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second,
            burst: f64::from(burst),
            state: Mutex::new(Buckets {
                by_caller: HashMap::new(),
                prune_above: PRUNE_ABOVE,
            }),
        }
    }

    /// Takes one token from `caller`'s bucket as of `now`, if there is one.
    pub(crate) fn take(&self, caller: Caller, now: Instant) -> Standing {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.by_caller.len() >= state.prune_above {
            state
                .by_caller
                .retain(|_, bucket| self.refilled(*bucket, now) < self.burst);
            // Prune again only once the map has doubled, so pruning stays amortised O(1).
            state.prune_above = (state.by_caller.len() * 2).max(PRUNE_ABOVE);
        }
        let bucket = state.by_caller.entry(caller).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.refilled(*bucket, now);
        let allowed = tokens >= 1.0;
        *bucket = Bucket {
            tokens: if allowed { tokens - 1.0 } else { tokens },
            at: now,
        };
        Standing {
            allowed,
            tokens: bucket.tokens,
            per_second: self.per_second,
            burst: self.burst,
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }

    #[cfg(test)]
    fn buckets(&self) -> usize {
        self.state.lock().expect("lock").by_caller.len()
    }
}

impl Standing {
    /// How long until the next request would be allowed: at least a second, as `Retry-After`
    /// counts whole seconds.
    pub(crate) fn retry_after_seconds(&self) -> u64 {
        seconds_ceil((1.0 - self.tokens).max(0.0) / self.per_second).max(1)
    }

    /// Adds `RateLimit-Policy` and `RateLimit` to `headers`.
    pub(crate) fn write_headers(&self, headers: &mut HeaderMap) {
        let window = seconds_ceil(self.burst / self.per_second).max(1);
        let full_in = seconds_ceil((self.burst - self.tokens) / self.per_second);
        let policy = format!("\"{POLICY}\";q={};w={window}", self.burst as u64);
        let current = format!("\"{POLICY}\";r={};t={full_in}", self.tokens.floor() as u64);
        for (name, value) in [("ratelimit-policy", policy), ("ratelimit", current)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
}

fn seconds_ceil(seconds: f64) -> u64 {
    seconds.clamp(0.0, 1e9).ceil() as u64
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn subject(name: &str) -> Caller {
        Caller::Subject(name.to_owned())
    }

    #[test]
    fn a_burst_passes_then_the_next_request_waits_for_a_token() {
        let limiter = RateLimiter::new(2.0, 3);
        let start = Instant::now();
        let standings: Vec<bool> = (0..4).map(|_| limiter.take(subject("a"), start).allowed).collect();
        assert_eq!(standings, [true, true, true, false]);
        // One token comes back every half second.
        assert!(!limiter.take(subject("a"), start + Duration::from_millis(400)).allowed);
        assert!(limiter.take(subject("a"), start + Duration::from_millis(500)).allowed);
        assert!(!limiter.take(subject("a"), start + Duration::from_millis(500)).allowed);
    }

    #[test]
    fn callers_have_their_own_buckets() {
        let limiter = RateLimiter::new(0.001, 1);
        let now = Instant::now();
        assert!(limiter.take(subject("a"), now).allowed);
        assert!(!limiter.take(subject("a"), now).allowed);
        assert!(limiter.take(subject("b"), now).allowed);
        assert!(limiter.take(Caller::Address(IpAddr::from([127, 0, 0, 1])), now).allowed);
        assert!(limiter.take(Caller::Unknown, now).allowed);
    }

    #[test]
    fn a_bucket_never_holds_more_than_the_burst() {
        let limiter = RateLimiter::new(100.0, 2);
        let start = Instant::now();
        assert!(limiter.take(subject("a"), start).allowed);
        let later = start + Duration::from_secs(3600);
        let allowed = (0..3).filter(|_| limiter.take(subject("a"), later).allowed).count();
        assert_eq!(allowed, 2);
    }

    #[test]
    fn headers_tell_what_is_left_and_when_to_retry() {
        let limiter = RateLimiter::new(0.5, 2);
        let now = Instant::now();
        let first = limiter.take(subject("a"), now);
        let mut headers = HeaderMap::new();
        first.write_headers(&mut headers);
        assert_eq!(headers["ratelimit-policy"], "\"caller\";q=2;w=4");
        assert_eq!(headers["ratelimit"], "\"caller\";r=1;t=2");
        limiter.take(subject("a"), now);
        let refused = limiter.take(subject("a"), now);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_seconds(), 2);
        refused.write_headers(&mut headers);
        assert_eq!(headers["ratelimit"], "\"caller\";r=0;t=4");
        let fast = RateLimiter::new(1000.0, 1);
        fast.take(subject("a"), now);
        assert_eq!(fast.take(subject("a"), now).retry_after_seconds(), 1);
    }

    #[test]
    fn idle_callers_are_forgotten_once_there_are_many() {
        let limiter = RateLimiter::new(1.0, 1);
        let start = Instant::now();
        for n in 0..PRUNE_ABOVE {
            limiter.take(subject(&n.to_string()), start);
        }
        assert_eq!(limiter.buckets(), PRUNE_ABOVE);
        // A second on, every bucket is full again: all are dropped before the next one is added.
        let standing = limiter.take(subject("new"), start + Duration::from_secs(1));
        assert!(standing.allowed);
        assert_eq!(limiter.buckets(), 1);
        // Buckets still refilling are kept: their callers would otherwise get a fresh burst.
        for n in 0..PRUNE_ABOVE {
            limiter.take(subject(&n.to_string()), start + Duration::from_secs(1));
        }
        limiter.take(subject("other"), start + Duration::from_millis(1500));
        assert_eq!(limiter.buckets(), PRUNE_ABOVE + 2);
    }
}
