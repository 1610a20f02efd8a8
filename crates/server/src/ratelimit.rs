//! A token bucket per access key: the per-principal request rate limit that replaces
//! CloudTrail's fixed 2 requests per second for LookupEvents.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    /// Tokens added per second; None is unlimited.
    rate: Option<f64>,
    burst: f64,
    // A plain mutex: the critical section is a few arithmetic operations, never an await.
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    pub fn new(rate: Option<f64>, burst: u32) -> RateLimiter {
        RateLimiter { rate, burst: f64::from(burst.max(1)), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key`, or says no.
    pub fn try_acquire(&self, key: &str) -> bool {
        self.try_acquire_at(key, Instant::now())
    }

    fn try_acquire_at(&self, key: &str, now: Instant) -> bool {
        let Some(rate) = self.rate else { return true };
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.burst, updated: now });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_a_burst_then_the_rate() {
        let limiter = RateLimiter::new(Some(10.0), 3);
        let start = Instant::now();
        assert!((0..3).all(|_| limiter.try_acquire_at("k", start)));
        assert!(!limiter.try_acquire_at("k", start));
        assert!(limiter.try_acquire_at("other", start));
        assert!(limiter.try_acquire_at("k", start + Duration::from_millis(100)));
        assert!(!limiter.try_acquire_at("k", start + Duration::from_millis(100)));
    }

    #[test]
    fn unlimited_never_refuses() {
        let limiter = RateLimiter::new(None, 1);
        assert!((0..1000).all(|_| limiter.try_acquire("k")));
    }
}
