//! The live view of which peers are ready: their verified ready records, the pair key shared
//! with each, the peers found absent, and how this node's own heartbeat fares.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ed25519_dalek::{SigningKey, VerifyingKey};

use super::ReadyRecord;
use super::ready::WATCH_CHECK;
use crate::pairkey::{ExchangeKey, PairKey};

/// What this node knows of one peer.
#[derive(Debug)]
struct PeerState {
    last_seen: Instant,
    /// When this node first saw the peer's current process (its current `started_at_ms`).
    first_seen: Instant,
    started_at_ms: u64,
    pair_key: PairKey,
    /// Its ready key was deleted (graceful shutdown): not ready, but sessions already running
    /// with it keep their channel while it drains.
    withdrawn: bool,
}

/// The live view of which peers are ready, and the pair key shared with each.
#[derive(Clone)]
pub struct PeerDirectory {
    me: String,
    ttl: Duration,
    identities: Arc<HashMap<String, VerifyingKey>>,
    exchange: Arc<ExchangeKey>,
    peers: Arc<RwLock<HashMap<String, PeerState>>>,
    /// Peers this node found absent (see [`mark_absent`](Self::mark_absent)), and since when.
    absent: Arc<RwLock<HashMap<String, Instant>>>,
    /// Bumped whenever a peer is found absent, so waiting sessions look again at once.
    absences: Arc<tokio::sync::watch::Sender<u64>>,
    /// How this node's own heartbeat fares: while it cannot be stored, nobody's can (the ready
    /// bucket is electing a leader after a NATS server died, or this node's server is gone), so
    /// a peer's silence says nothing about the peer and its record does not lapse.
    own_beat: Arc<RwLock<OwnBeat>>,
}

/// This node's own heartbeat puts (see [`PeerDirectory::beat_started`]).
#[derive(Debug, Default)]
struct OwnBeat {
    /// Since when every put was stored (none yet, or the last one failed: `None`).
    stored_since: Option<Instant>,
    /// The put in flight, since when.
    pending_since: Option<Instant>,
    /// Since when a stored put has not come back through the ready watch (the first such put).
    unechoed_since: Option<Instant>,
}

impl PeerDirectory {
    /// A directory for node `me`, knowing every peer's identity key (from the identity files).
    pub fn new(
        me: &str,
        identities: HashMap<String, VerifyingKey>,
        exchange: ExchangeKey,
        ttl: Duration,
    ) -> Self {
        Self {
            me: me.to_owned(),
            ttl,
            identities: Arc::new(identities),
            exchange: Arc::new(exchange),
            peers: Arc::new(RwLock::new(HashMap::new())),
            absent: Arc::new(RwLock::new(HashMap::new())),
            absences: Arc::new(tokio::sync::watch::channel(0).0),
            own_beat: Arc::new(RwLock::new(OwnBeat::default())),
        }
    }

    /// This node's heartbeat put started.
    pub fn beat_started(&self) {
        if let Ok(mut beat) = self.own_beat.write() {
            beat.pending_since = Some(Instant::now());
        }
    }

    /// This node's heartbeat put was stored (`true`) or failed.
    pub fn beat_ended(&self, stored: bool) {
        if let Ok(mut beat) = self.own_beat.write() {
            beat.pending_since = None;
            if !stored {
                beat.stored_since = None;
            } else {
                let now = Instant::now();
                beat.stored_since.get_or_insert(now);
                beat.unechoed_since.get_or_insert(now);
            }
        }
    }

    /// Whether the ready watch is stuck: a heartbeat of this node was stored more than `grace`
    /// ago and the watch has not delivered it. (After a NATS server dies a watch can stay
    /// silent without an error; every peer's record would then lapse here.)
    pub fn watch_is_stuck(&self, grace: Duration) -> bool {
        self.own_beat.read().is_ok_and(|beat| beat.unechoed_since.is_some_and(|t| t.elapsed() > grace))
    }

    /// Whether peers' records may lapse now: this node's own heartbeats have been stored for a
    /// whole TTL (time for every live peer to have stored one too), none is stuck for more than
    /// a heartbeat period (a third of the TTL), and the ready watch brings them back (a watch
    /// that does not would not bring the peers' either; once it works again its history
    /// refreshes every live peer at once).
    fn records_can_lapse(&self, now: Instant) -> bool {
        let healthy = self.own_beat.read().is_ok_and(|beat| {
            beat.stored_since.is_some_and(|t| now.duration_since(t) >= self.ttl)
                && beat.pending_since.is_none_or(|t| now.duration_since(t) < self.ttl / 3)
        });
        healthy && !self.watch_is_stuck(WATCH_CHECK)
    }

    /// Whether a peer's ready record holds: not withdrawn, and heard from within the TTL unless
    /// records cannot lapse now.
    fn holds(&self, state: &PeerState, now: Instant, can_lapse: bool) -> bool {
        !state.withdrawn && (!can_lapse || now.duration_since(state.last_seen) < self.ttl)
    }

    /// This node's id.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The identity key of a configured node.
    pub fn identity(&self, node_id: &str) -> Option<&VerifyingKey> {
        self.identities.get(node_id)
    }

    /// Every configured node id (self included), sorted.
    pub fn configured(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.identities.keys().cloned().collect();
        if !ids.contains(&self.me) {
            ids.push(self.me.clone());
        }
        ids.sort();
        ids
    }

    /// The nodes ready now (self included), sorted: a fresh ready record (or one that cannot
    /// lapse now: see [`records_can_lapse`](Self::records_can_lapse)), not withdrawn, and not
    /// found absent since.
    pub fn ready(&self) -> Vec<String> {
        let now = Instant::now();
        let absent = self.absent.read().map(|a| a.clone()).unwrap_or_default();
        let can_lapse = self.records_can_lapse(now);
        let mut ids: Vec<String> = match self.peers.read() {
            Ok(peers) => peers
                .iter()
                .filter(|(id, s)| self.holds(s, now, can_lapse) && !absent.contains_key(*id))
                .map(|(id, _)| id.clone())
                .collect(),
            Err(_) => Vec::new(),
        };
        ids.push(self.me.clone());
        ids.sort();
        ids
    }

    /// The pair key shared with a peer whose current exchange key we know. Unlike readiness it
    /// does not lapse with a late heartbeat or a withdrawal: a session already running with a
    /// slow or draining peer keeps its channel; the key is replaced when the peer restarts with a
    /// new one.
    pub fn pair_key(&self, peer: &str) -> Option<PairKey> {
        let peers = self.peers.read().ok()?;
        peers.get(peer).map(|state| state.pair_key.clone())
    }

    /// Take in a record seen in the ready bucket. Returns false (and ignores it) when the
    /// sender is unknown or the signature is bad.
    pub fn observe(&self, record: &ReadyRecord) -> bool {
        if record.node_id == self.me {
            if let Ok(mut beat) = self.own_beat.write() {
                beat.unechoed_since = None;
            }
            return true;
        }
        let Some(identity) = self.identities.get(&record.node_id) else {
            tracing::warn!(node = %record.node_id, "ready record from a node that is not a configured peer; ignored");
            return false;
        };
        let Some(exchange) = record.verify(identity) else {
            tracing::warn!(node = %record.node_id, "ready record with a bad signature; ignored");
            return false;
        };
        let Some(pair_key) = self.exchange.pair_key(&self.me, &record.node_id, &exchange) else {
            tracing::warn!(node = %record.node_id, "ready record with a low-order exchange key; ignored");
            return false;
        };
        if let Ok(mut peers) = self.peers.write() {
            let now = Instant::now();
            let previous = peers.get(&record.node_id);
            let restarted = previous.is_some_and(|p| p.started_at_ms != record.started_at_ms);
            if restarted {
                tracing::info!(node = %record.node_id, "peer restarted");
                // A new process announced itself: whatever was found absent was the old one.
                self.mark_present(&record.node_id);
            }
            let first_seen = match previous {
                Some(p) if !restarted => p.first_seen,
                _ => now,
            };
            peers.insert(
                record.node_id.clone(),
                PeerState {
                    last_seen: now,
                    first_seen,
                    started_at_ms: record.started_at_ms,
                    pair_key,
                    withdrawn: false,
                },
            );
        }
        true
    }

    /// A peer withdrew (its ready key was deleted): it is no longer ready, but its pair key stays
    /// so the sessions it is finishing while it drains still reach it.
    pub fn forget(&self, node_id: &str) {
        if let Ok(mut peers) = self.peers.write()
            && let Some(state) = peers.get_mut(node_id)
        {
            state.withdrawn = true;
        }
    }

    /// A peer is absent: NATS answered "no responders" on its inbox (its process is gone: a
    /// crashed process's subscriptions vanish at once), or it did not acknowledge a message in
    /// time (cut off). It leaves [`ready`](Self::ready) at once, and sessions waiting for it
    /// stop (see [`absence_changes`](Self::absence_changes)), until it answers again or a new
    /// process of it announces itself. Returns whether it was present before.
    pub fn mark_absent(&self, node_id: &str) -> bool {
        if node_id == self.me {
            return false;
        }
        let newly = match self.absent.write() {
            Ok(mut absent) => absent.insert(node_id.to_owned(), Instant::now()).is_none(),
            Err(_) => false,
        };
        if newly {
            tracing::warn!(node = %node_id, "peer absent: left the ready set");
            self.absences.send_modify(|n| *n += 1);
        }
        newly
    }

    /// A peer answered: it is not absent (any more).
    pub fn mark_present(&self, node_id: &str) {
        let was = self.absent.write().is_ok_and(|mut absent| absent.remove(node_id).is_some());
        if was {
            tracing::info!(node = %node_id, "peer answers again");
        }
    }

    /// Whether this node first saw the peer's current process less than `within` ago. In a
    /// NATS cluster a new subscription reaches the other servers a little after the ready
    /// record that announces it, so "no responders" from such a peer means "not yet", not
    /// "gone".
    pub fn is_new(&self, node_id: &str, within: Duration) -> bool {
        self.peers
            .read()
            .is_ok_and(|peers| peers.get(node_id).is_some_and(|p| p.first_seen.elapsed() < within))
    }

    /// Whether a peer was found absent and has not answered since.
    pub fn is_absent(&self, node_id: &str) -> bool {
        self.absent.read().is_ok_and(|a| a.contains_key(node_id))
    }

    /// Changes whenever a peer is found absent.
    pub fn absence_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.absences.subscribe()
    }

    /// The peers worth probing: every peer with a ready record that has not lapsed (absent ones
    /// included, to see them come back).
    pub fn known_peers(&self) -> Vec<String> {
        let now = Instant::now();
        let can_lapse = self.records_can_lapse(now);
        match self.peers.read() {
            Ok(peers) => peers
                .iter()
                .filter(|(_, s)| self.holds(s, now, can_lapse))
                .map(|(id, _)| id.clone())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// When a peer's current process started (from its ready record), if it was seen.
    /// A different value later means it restarted and lost the state of its sessions.
    pub fn incarnation(&self, peer: &str) -> Option<u64> {
        self.peers.read().ok()?.get(peer).map(|s| s.started_at_ms)
    }

    pub(super) fn record(&self, identity: &SigningKey, started_at_ms: u64) -> ReadyRecord {
        ReadyRecord::new(&self.me, &self.exchange.public(), started_at_ms, identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    /// A peer's silence makes it lapse only while this node's own heartbeats are stored and
    /// come back through the watch: otherwise nobody's could, and the silence says nothing.
    #[test]
    fn a_silent_peer_lapses_only_while_this_nodes_own_heartbeat_goes_round() {
        let ttl = Duration::from_millis(300);
        let (me, peer) = (SigningKey::generate(&mut OsRng), SigningKey::generate(&mut OsRng));
        let identities = HashMap::from([("node1".to_owned(), peer.verifying_key())]);
        let own_record = ReadyRecord::new("node0", &ExchangeKey::generate().public(), 1, &me);
        let peer_record = ReadyRecord::new("node1", &ExchangeKey::generate().public(), 1, &peer);
        // `stored`: the put succeeds; `echoed`: the watch brings it back.
        let beat = |dir: &PeerDirectory, stored: bool, echoed: bool| {
            dir.beat_started();
            dir.beat_ended(stored);
            if stored && echoed {
                assert!(dir.observe(&own_record));
            }
        };
        let beat_for = |dir: &PeerDirectory, how_long: Duration, stored: bool, echoed: bool| {
            let until = Instant::now() + how_long;
            while Instant::now() < until {
                beat(dir, stored, echoed);
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        let fresh = || {
            let dir = PeerDirectory::new("node0", identities.clone(), ExchangeKey::generate(), ttl);
            beat(&dir, true, true);
            assert!(dir.observe(&peer_record));
            dir
        };
        let both = vec!["node0".to_owned(), "node1".to_owned()];

        // Healthy: the peer falls silent and lapses after the TTL.
        let dir = fresh();
        beat_for(&dir, ttl + Duration::from_millis(150), true, true);
        assert_eq!(dir.ready(), vec!["node0".to_owned()]);

        // This node's own puts fail (the ready bucket is electing a leader): the peer stays.
        let dir = fresh();
        beat_for(&dir, ttl + Duration::from_millis(150), false, false);
        assert_eq!(dir.ready(), both);
        // Stored again: lapsing resumes only a whole TTL later.
        beat_for(&dir, ttl / 2, true, true);
        assert_eq!(dir.ready(), both);
        beat_for(&dir, ttl, true, true);
        assert_eq!(dir.ready(), vec!["node0".to_owned()]);

        // Stored but not brought back by the watch for longer than its check: the peer stays.
        let dir = fresh();
        beat_for(&dir, WATCH_CHECK + Duration::from_millis(300), true, false);
        assert!(dir.watch_is_stuck(WATCH_CHECK));
        assert_eq!(dir.ready(), both);
    }
}
