//! Request rates (`limits.requests_per_second.*`): a token bucket per wallet and one over all
//! requests, checked by every node for every client request it handles: at intake by the
//! coordinator (before the request is claimed, so a refused signing request's tx id stays
//! usable), and by each participant before it takes part (so a malicious coordinator cannot
//! push a participant past its limits). A request over a limit fails at once with
//! `ERROR_RESOURCE_EXHAUSTED`, answered and settled like any other failure.
//!
//! One request message costs one token per node however many sessions it takes on that node
//! (the coordinator's own part, re-runs after an absent signer, redeliveries): sessions are
//! matched to the request message by the request id's named part and stream sequence
//! (`<tx id>#<sequence>.<delivery>[.<attempt>]`). A request message that runs more than
//! [`SESSIONS_PER_TOKEN`] sessions here within [`ADMITTED_FOR`] takes another token: a
//! coordinator cannot buy unlimited sessions with one.
//!
//! Each node counts what it sees itself; there is no shared counter. A keygen involves every
//! node; a signature only its t+1 signers, so a cluster of n nodes admits up to n/(t+1) times
//! a rate in signatures (ARCHITECTURE.md, "Rate limits").

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mpcium_api::ErrorCode;

use super::check::OwnRequest;
use super::{Failure, Service};
use crate::control::{SessionOp, SessionStart, delivery_sequence, split_request_id};
use crate::limits::{Rate, RequestRates, TokenBucket};

/// How long a request message admitted here is remembered (longer than its deliveries and
/// re-runs take).
pub const ADMITTED_FOR: Duration = Duration::from_secs(10 * 60);
/// How many sessions one request message may run here on one token.
pub const SESSIONS_PER_TOKEN: u32 = 32;
/// How many admitted request messages are remembered at most (the oldest are forgotten first).
const MAX_ADMITTED: usize = 65536;
/// Past this many wallets' buckets, the full ones (which hold nothing a new bucket would not)
/// are dropped.
const PRUNE_WALLETS_AT: usize = 100_000;

/// The buckets of one node.
#[derive(Debug)]
pub struct RequestLimiter {
    rates: RequestRates,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    cluster: Option<TokenBucket>,
    wallets: HashMap<String, TokenBucket>,
    admitted: HashMap<String, Admitted>,
    admitted_order: VecDeque<(String, Instant)>,
}

#[derive(Debug, Clone, Copy)]
struct Admitted {
    at: Instant,
    sessions: u32,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// Over the wallet's rate.
    Wallet(Rate),
    /// Over the rate of all requests.
    Cluster(Rate),
}

impl RequestLimiter {
    /// Buckets for these rates.
    pub fn new(rates: RequestRates) -> Self {
        Self { rates, state: Mutex::default() }
    }

    /// Admit a session (or the intake) of the request message `key` for `wallet` at `now`:
    /// free when the message was admitted here already (up to [`SESSIONS_PER_TOKEN`] sessions),
    /// else one token from the cluster's bucket and the wallet's, both or neither.
    pub fn admit(&self, wallet: &str, key: &str, now: Instant) -> Result<(), Refusal> {
        if self.rates.per_wallet.is_none() && self.rates.cluster.is_none() {
            return Ok(());
        }
        let Ok(mut state) = self.state.lock() else { return Ok(()) };
        let state = &mut *state;
        while let Some((old, at)) = state.admitted_order.front()
            && (now.saturating_duration_since(*at) >= ADMITTED_FOR
                || state.admitted_order.len() > MAX_ADMITTED)
        {
            if state.admitted.get(old).is_some_and(|a| a.at == *at) {
                state.admitted.remove(old);
            }
            state.admitted_order.pop_front();
        }
        if let Some(a) = state.admitted.get_mut(key)
            && a.sessions < SESSIONS_PER_TOKEN
        {
            a.sessions += 1;
            return Ok(());
        }
        if let Some(rate) = self.rates.cluster {
            let bucket = state.cluster.get_or_insert_with(|| TokenBucket::full(rate, now));
            if !bucket.has_token(now) {
                return Err(Refusal::Cluster(rate));
            }
        }
        if let Some(rate) = self.rates.per_wallet {
            if state.wallets.len() >= PRUNE_WALLETS_AT && !state.wallets.contains_key(wallet) {
                state.wallets.retain(|_, b| !b.is_full(now));
            }
            let bucket =
                state.wallets.entry(wallet.to_owned()).or_insert_with(|| TokenBucket::full(rate, now));
            if !bucket.try_take(now) {
                return Err(Refusal::Wallet(rate));
            }
        }
        if let Some(bucket) = state.cluster.as_mut() {
            bucket.take();
        }
        state.admitted.insert(key.to_owned(), Admitted { at: now, sessions: 1 });
        state.admitted_order.push_back((key.to_owned(), now));
        Ok(())
    }
}

/// The request message a request id names: `<named id>#<sequence>`, from
/// `<named id>#<sequence>.<delivery>[.<attempt>]` (the delivery and attempt left out, so every
/// delivery and re-run of one message is the same request).
fn request_message(op: SessionOp, wallet: &str, request_id: &str) -> String {
    let (named, delivery) = split_request_id(request_id).unwrap_or((request_id, ""));
    let sequence = delivery_sequence(delivery);
    format!("{op:?}\u{0}{wallet}\u{0}{named}#{sequence}")
}

impl Service {
    /// The coordinator's check at intake, before the request is claimed or run:
    /// `request_id` as its session starts will carry it.
    pub(super) fn admit_request(&self, op: SessionOp, wallet: &str, request_id: &str) -> Result<(), Failure> {
        self.admit(op, wallet, request_id)
    }

    /// A participant's check of an announced session's request (verified by this node), before
    /// it takes part; the coordinator's own part passes on its intake's token.
    pub(super) fn admit_session(&self, start: &SessionStart, request: &OwnRequest) -> Result<(), Failure> {
        let wallet = match request {
            OwnRequest::Keygen(r) => &r.wallet_id,
            OwnRequest::Sign(r, _) => &r.wallet_id,
            OwnRequest::Reshare(r) => &r.wallet_id,
        };
        self.admit(start.op, wallet, &start.request_id)
    }

    fn admit(&self, op: SessionOp, wallet: &str, request_id: &str) -> Result<(), Failure> {
        let key = request_message(op, wallet, request_id);
        let refusal = match self.request_limits.admit(wallet, &key, Instant::now()) {
            Ok(()) => return Ok(()),
            Err(r) => r,
        };
        let counters = &self.metrics.rate_limited;
        let (what, rate) = match refusal {
            Refusal::Wallet(rate) => {
                counters.wallet.fetch_add(1, Ordering::Relaxed);
                (format!("wallet {wallet} is over limits.requests_per_second.per_wallet"), rate)
            }
            Refusal::Cluster(rate) => {
                counters.cluster.fetch_add(1, Ordering::Relaxed);
                ("this node is over limits.requests_per_second.cluster".to_owned(), rate)
            }
        };
        tracing::warn!(wallet, op = ?op, "{what}; request refused");
        Err(Failure::new(
            ErrorCode::ResourceExhausted,
            format!("rate limit: {what} ({}/s, burst {}) on {}", rate.per_second, rate.burst, self.me()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: f64, burst: u32) -> Option<Rate> {
        Some(Rate { per_second, burst })
    }

    #[test]
    fn a_wallet_over_its_rate_is_refused_and_another_wallet_is_not() {
        let limiter = RequestLimiter::new(RequestRates { per_wallet: rate(1.0, 2), cluster: None });
        let t0 = Instant::now();
        assert!(limiter.admit("w1", "a", t0).is_ok());
        assert!(limiter.admit("w1", "b", t0).is_ok());
        assert!(matches!(limiter.admit("w1", "c", t0), Err(Refusal::Wallet(_))));
        assert!(limiter.admit("w2", "d", t0).is_ok(), "another wallet has its own bucket");
        assert!(limiter.admit("w1", "c", t0 + Duration::from_secs(1)).is_ok(), "refilled");
    }

    #[test]
    fn the_cluster_rate_covers_every_wallet_and_a_refusal_costs_no_wallet_token() {
        let limiter = RequestLimiter::new(RequestRates { per_wallet: rate(1.0, 1), cluster: rate(1.0, 2) });
        let t0 = Instant::now();
        assert!(limiter.admit("w1", "a", t0).is_ok());
        assert!(limiter.admit("w2", "b", t0).is_ok());
        assert!(matches!(limiter.admit("w3", "c", t0), Err(Refusal::Cluster(_))));
        // w3's own token was not spent by the refusal.
        assert!(limiter.admit("w3", "c", t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn one_request_message_costs_one_token_for_a_bounded_number_of_sessions() {
        let limiter = RequestLimiter::new(RequestRates { per_wallet: rate(0.001, 1), cluster: None });
        let t0 = Instant::now();
        // The intake, then the coordinator's own part and re-runs of the same message.
        let key = request_message(SessionOp::Sign, "w", "tx1#7.1");
        assert_eq!(key, request_message(SessionOp::Sign, "w", "tx1#7.2.3"));
        assert_ne!(key, request_message(SessionOp::Sign, "w", "tx1#8.1"), "another message");
        for _ in 0..SESSIONS_PER_TOKEN {
            assert!(limiter.admit("w", &key, t0).is_ok());
        }
        assert!(limiter.admit("w", &key, t0).is_err(), "past the sessions one token buys");
        let other = request_message(SessionOp::Sign, "w", "tx1#8.1");
        assert!(limiter.admit("w", &other, t0).is_err(), "a new message needs a token");
    }

    #[test]
    fn without_rates_everything_passes() {
        let limiter = RequestLimiter::new(RequestRates::default());
        let t0 = Instant::now();
        assert!((0..10_000).all(|i| limiter.admit("w", &i.to_string(), t0).is_ok()));
    }
}
