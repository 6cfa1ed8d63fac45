//! Token buckets, for the rates of `limits.*` (`mpcium_config::LimitsConfig`): client requests
//! per wallet and over all (`service/limits.rs`) and node-to-node messages per peer
//! (`transport/peer_limits.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub use mpcium_config::{Rate, RequestRates};

/// The rates a node enforces (`limits.requests_per_second.*`, `limits.peer_messages_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitSettings {
    /// Client requests per wallet and over all; unlimited when `None`.
    pub requests: RequestRates,
    /// Node-to-node messages accepted from each peer.
    pub peer_messages: Rate,
}

impl Default for LimitSettings {
    /// Requests unlimited; the default per-peer message rate.
    fn default() -> Self {
        Self { requests: RequestRates::default(), peer_messages: default_peer_rate() }
    }
}

/// `limits.peer_messages_*` when unset.
pub fn default_peer_rate() -> Rate {
    let per_second = mpcium_config::DEFAULT_PEER_MESSAGES_PER_SECOND;
    Rate { per_second, burst: (2.0 * per_second) as u32 }
}

/// One token bucket: `rate.per_second` tokens come back each second, up to `rate.burst`; a new
/// bucket starts full.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn full(rate: Rate, now: Instant) -> Self {
        Self { rate, tokens: f64::from(rate.burst), at: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(f64::from(self.rate.burst));
        self.at = now.max(self.at);
    }

    /// Whether a token is there at `now` (none is taken).
    pub fn has_token(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 1.0
    }

    /// Take a token known to be there ([`TokenBucket::has_token`]).
    pub fn take(&mut self) {
        self.tokens -= 1.0;
    }

    /// Take a token if there is one at `now`.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let ok = self.has_token(now);
        if ok {
            self.take();
        }
        ok
    }

    /// Give one token back, up to the burst (work the bucket's owner earned another way).
    pub fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(f64::from(self.rate.burst));
    }

    /// Whether the bucket is full at `now` (it holds nothing a new bucket would not).
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens + elapsed * self.rate.per_second >= f64::from(self.rate.burst)
    }
}

/// Requests refused for a rate, for `/metrics`.
#[derive(Debug, Default)]
pub struct RateLimitCounters {
    /// Over `limits.requests_per_second.per_wallet`.
    pub wallet: AtomicU64,
    /// Over `limits.requests_per_second.cluster`.
    pub cluster: AtomicU64,
}

impl RateLimitCounters {
    /// The counters in Prometheus text format.
    pub fn render(&self) -> String {
        let name = "mpcium_requests_rate_limited_total";
        let mut out = format!(
            "# HELP {name} Client requests refused (ERROR_RESOURCE_EXHAUSTED) by a rate of \
             limits.requests_per_second.\n# TYPE {name} counter\n"
        );
        for (scope, value) in [("wallet", &self.wallet), ("cluster", &self.cluster)] {
            out.push_str(&format!("{name}{{scope=\"{scope}\"}} {}\n", value.load(Ordering::Relaxed)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_passes_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(Rate { per_second: 2.0, burst: 3 }, t0);
        assert!((0..3).all(|_| b.try_take(t0)));
        assert!(!b.try_take(t0), "the burst is spent");
        assert!(!b.try_take(t0 + Duration::from_millis(400)), "0.8 of a token back");
        assert!(b.try_take(t0 + Duration::from_millis(500)), "one token back after 0.5 s");
        assert!(!b.is_full(t0 + Duration::from_millis(500)));
        assert!(b.is_full(t0 + Duration::from_secs(2)));
        // Never more than the burst, however long it rested.
        let later = t0 + Duration::from_secs(3600);
        assert!((0..3).all(|_| b.try_take(later)));
        assert!(!b.try_take(later));
    }
}
