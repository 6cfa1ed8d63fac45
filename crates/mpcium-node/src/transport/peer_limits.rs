//! The per-peer message rate (`limits.peer_messages_*`): every message that arrives on this
//! node's inbox is counted against a token bucket of the peer it claims to come from, before
//! anything expensive (decoding, the signature check, opening a private payload). A message over
//! the rate is dropped and counted per peer (`mpcium_peer_messages_dropped_total`), so one
//! peer's flood costs this node a header read per message and leaves the other peers' messages
//! their own budgets.
//!
//! The sender is read from the envelope's header, before the signature proves it: a peer that
//! forges another's id draws on that peer's budget (a known limit, THREAT-MODEL.md). Messages
//! that name no configured node (or no sender at all) share one bucket, `unknown`. Labels are
//! configured node ids and `unknown` only, so the metric's size is bounded.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use super::TransportCounters;
use crate::envelope::Envelope;
use crate::limits::{Rate, TokenBucket};
use crate::registry::PeerDirectory;

/// The label and bucket of messages that name no configured node.
pub const UNKNOWN_PEER: &str = "unknown";

/// Counts per peer: messages taken in and dropped over the rate.
#[derive(Debug, Default, Clone, Copy)]
pub struct PeerCounts {
    /// Messages within the rate (handed on to be verified).
    pub received: u64,
    /// Messages over the rate (dropped unread).
    pub dropped: u64,
}

/// The per-peer buckets of one node's inbox.
#[derive(Debug)]
pub(super) struct PeerLimiter {
    rate: Rate,
    buckets: Mutex<BTreeMap<String, TokenBucket>>,
    /// Session starts per coordinator (verified senders), a fifth of the message rate: each
    /// start makes this node check a request and, when it fails, send abort notices to the
    /// members the start lists, so a flood of starts within the message rate must not become
    /// a flood of checks here and of this node's messages at the others.
    starts: Mutex<BTreeMap<String, TokenBucket>>,
    start_rate: Rate,
}

/// The share of the per-peer message rate a peer may spend on session starts.
pub const START_RATE_DIVISOR: f64 = 5.0;

impl PeerLimiter {
    pub(super) fn new(rate: Rate) -> Self {
        let start_rate = Rate {
            per_second: rate.per_second / START_RATE_DIVISOR,
            burst: ((f64::from(rate.burst) / START_RATE_DIVISOR) as u32).max(1),
        };
        Self { rate, buckets: Mutex::default(), starts: Mutex::default(), start_rate }
    }

    /// Whether a session start of `coordinator` (its signature checked) is within the start
    /// rate.
    pub(super) fn admit_start(&self, coordinator: &str) -> bool {
        let now = Instant::now();
        let Ok(mut buckets) = self.starts.lock() else { return true };
        match buckets.get_mut(coordinator) {
            Some(bucket) => bucket.try_take(now),
            None => buckets
                .entry(coordinator.to_owned())
                .or_insert_with(|| TokenBucket::full(self.start_rate, now))
                .try_take(now),
        }
    }

    /// The peer a message (its encoded bytes) counts for (a configured node id or
    /// [`UNKNOWN_PEER`]) when it is within that peer's rate; `None` when it is over. Counted
    /// either way.
    pub(super) fn admit<'a>(
        &self,
        bytes: &'a [u8],
        dir: &PeerDirectory,
        counters: &TransportCounters,
    ) -> Option<&'a str> {
        let peer = match Envelope::claimed_sender(bytes) {
            Some(sender) if dir.identity(sender).is_some() => sender,
            _ => UNKNOWN_PEER,
        };
        let now = Instant::now();
        let admitted = match self.buckets.lock() {
            Ok(mut buckets) => match buckets.get_mut(peer) {
                Some(bucket) => bucket.try_take(now),
                None => buckets
                    .entry(peer.to_owned())
                    .or_insert_with(|| TokenBucket::full(self.rate, now))
                    .try_take(now),
            },
            Err(_) => true,
        };
        let dropped = counters.count_peer(peer, admitted);
        if !admitted && (dropped == 1 || dropped.is_multiple_of(10_000)) {
            tracing::warn!(
                peer,
                dropped,
                rate = self.rate.per_second,
                burst = self.rate.burst,
                "peer over limits.peer_messages_per_second; dropping its messages"
            );
        }
        admitted.then_some(peer)
    }
}

impl TransportCounters {
    /// Count one message of `peer`; returns how many of its messages were dropped so far.
    pub(super) fn count_peer(&self, peer: &str, admitted: bool) -> u64 {
        let Ok(mut peers) = self.peers.lock() else { return 0 };
        let counts = match peers.get_mut(peer) {
            Some(c) => c,
            None => peers.entry(peer.to_owned()).or_default(),
        };
        if admitted {
            counts.received += 1;
        } else {
            counts.dropped += 1;
        }
        counts.dropped
    }

    /// The counts of each peer that sent anything.
    pub fn peer_counts(&self) -> BTreeMap<String, PeerCounts> {
        self.peers.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::envelope::Kind;
    use crate::pairkey::ExchangeKey;

    #[test]
    fn each_peer_has_its_own_budget_and_drops_are_counted_per_peer() {
        let keys: Vec<SigningKey> = (0..3u8).map(|i| SigningKey::from_bytes(&[i + 1; 32])).collect();
        let ids = ["node0", "node1", "node2"];
        let identities: HashMap<String, _> =
            ids.iter().map(|s| s.to_string()).zip(keys.iter().map(|k| k.verifying_key())).collect();
        let dir = PeerDirectory::new("node0", identities, ExchangeKey::generate(), Duration::from_secs(5));
        let message = |i: usize| {
            Envelope::seal_public(Kind::Broadcast, [7; 32], ids[i], 0, b"x".to_vec(), &keys[i])
                .unwrap()
                .encode()
        };
        assert_eq!(Envelope::claimed_sender(&message(1)), Some("node1"));
        let limiter = PeerLimiter::new(Rate { per_second: 0.001, burst: 5 });
        let counters = TransportCounters::default();
        let flood = message(1);
        let passed = (0..100).filter(|_| limiter.admit(&flood, &dir, &counters).is_some()).count();
        assert_eq!(passed, 5, "node1's burst");
        assert_eq!(
            limiter.admit(&message(2), &dir, &counters),
            Some("node2"),
            "not held back by node1's flood"
        );
        // A forged or malformed header lands in the shared `unknown` bucket.
        let mut forged = message(2);
        forged[38] = b'X';
        assert_eq!(Envelope::claimed_sender(&forged), Some("Xode2"));
        assert_eq!(limiter.admit(&forged, &dir, &counters), Some(UNKNOWN_PEER));
        assert_eq!(limiter.admit(b"garbage", &dir, &counters), Some(UNKNOWN_PEER));
        let counts = counters.peer_counts();
        assert_eq!((counts["node1"].received, counts["node1"].dropped), (5, 95));
        assert_eq!((counts["node2"].received, counts["node2"].dropped), (1, 0));
        assert_eq!(counts[UNKNOWN_PEER].received, 2);
        let text = counters.render();
        assert!(text.contains("mpcium_peer_messages_dropped_total{peer=\"node1\"} 95"), "{text}");
        assert!(text.contains("mpcium_peer_messages_total{peer=\"unknown\"} 2"), "{text}");
    }

    #[test]
    fn session_starts_get_a_fifth_of_the_message_rate_per_coordinator() {
        let limiter = PeerLimiter::new(Rate { per_second: 0.001, burst: 50 });
        assert_eq!((0..100).filter(|_| limiter.admit_start("node1")).count(), 10);
        assert!(limiter.admit_start("node2"), "another coordinator has its own budget");
    }
}
