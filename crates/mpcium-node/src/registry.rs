//! The cluster registry on JetStream KV (the original used Consul).
//!
//! Three buckets:
//! - `mpc_peers`: node name → node id, written by `mpcium-cli register-peers` or `mpcium start
//!   --peers` (the original's `mpc_peers/<name>`).
//! - `mpc_ready`: node id → a [`ReadyRecord`]: the node's X25519 exchange key for this process
//!   lifetime, signed with its Ed25519 identity. A node re-puts it every heartbeat; the bucket's
//!   `max_age` drops it when the node stops doing so, and every watcher also expires peers it has
//!   not heard from for a TTL, because servers before 2.11 send no event when a key ages out.
//!   Publishing the exchange key here replaces the original's `ecdh:exchange` broadcast.
//! - `mpc_keyinfo`: `<curve>.<wallet>` → the original's key info JSON
//!   `{"participant_peer_ids":[…],"threshold":t,"version":v}`.
//! - `mpc_presig_used`: `<signer>.<ecdsa.wallet>.<presignature id>` → the session that used it:
//!   each signer's create-only record that it released its online share of a presignature
//!   (single use cluster-wide, not just on one disk; see [`Registry::mark_presignature_used`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, kv};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::pairkey::{ExchangeKey, PairKey};

/// Bucket of node name → node id.
pub const PEERS_BUCKET: &str = "mpc_peers";
/// Bucket of node id → signed readiness record.
pub const READY_BUCKET: &str = "mpc_ready";
/// Bucket of wallet key metadata.
pub const KEYINFO_BUCKET: &str = "mpc_keyinfo";
/// Bucket of signing requests already taken (durable, cluster-wide replay protection).
pub const REQUESTS_BUCKET: &str = "mpc_requests";
/// Bucket of presignatures used, one create-only key per signer (durable, no expiry).
pub const PRESIG_USED_BUCKET: &str = "mpc_presig_used";
/// Bans announced by nodes (see [`bans`]).
pub const BANS_BUCKET: &str = "mpc_bans";

pub mod bans;
mod retry;

/// The outcome of claiming a request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time this request id is seen.
    New,
    /// Claimed before by the same delivery (a redelivery of the same JetStream message).
    Same,
    /// Claimed before by another request: a replay.
    Duplicate,
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// JetStream or KV refused or timed out.
    #[error("NATS KV {bucket}: {source}")]
    Kv {
        /// The bucket.
        bucket: &'static str,
        /// What NATS said.
        source: async_nats::Error,
    },
    /// A bucket could not be created or brought to `nats.replicas`.
    #[error(transparent)]
    Replicas(#[from] crate::replicas::ReplicaError),
    /// A stored value did not parse.
    #[error("corrupt entry {key} in {bucket}: {reason}")]
    Corrupt {
        /// The bucket.
        bucket: &'static str,
        /// The key.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// A peer registration conflicts with an existing one.
    #[error("peer {name} is registered with id {existing}, not {wanted}")]
    Conflict {
        /// The node name.
        name: String,
        /// The id already registered.
        existing: String,
        /// The id we were asked to register.
        wanted: String,
    },
}

fn kv_err(bucket: &'static str) -> impl FnOnce(async_nats::Error) -> RegistryError {
    move |source| RegistryError::Kv { bucket, source }
}

/// A node's readiness announcement: its exchange key, signed by its identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyRecord {
    /// The announcing node's id.
    pub node_id: String,
    /// Its X25519 public key for this process lifetime (base64).
    pub exchange_key: String,
    /// When the process started (Unix ms): a new value means a restarted node.
    pub started_at_ms: u64,
    /// Ed25519 signature over [`ReadyRecord::signed_bytes`] (base64).
    pub signature: String,
}

impl ReadyRecord {
    const DOMAIN: &'static [u8] = b"mpcium-rs/ready/v1";

    fn signed_bytes(node_id: &str, exchange_key: &[u8; 32], started_at_ms: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + node_id.len());
        out.extend_from_slice(Self::DOMAIN);
        out.extend_from_slice(&(node_id.len() as u64).to_be_bytes());
        out.extend_from_slice(node_id.as_bytes());
        out.extend_from_slice(exchange_key);
        out.extend_from_slice(&started_at_ms.to_be_bytes());
        out
    }

    /// Make and sign a record.
    pub fn new(node_id: &str, exchange_key: &[u8; 32], started_at_ms: u64, identity: &SigningKey) -> Self {
        let sig = identity.sign(&Self::signed_bytes(node_id, exchange_key, started_at_ms));
        Self {
            node_id: node_id.to_owned(),
            exchange_key: STANDARD.encode(exchange_key),
            started_at_ms,
            signature: STANDARD.encode(sig.to_bytes()),
        }
    }

    /// Check the signature with the node's identity key and return the exchange key.
    pub fn verify(&self, identity: &VerifyingKey) -> Option<[u8; 32]> {
        let key: [u8; 32] = STANDARD.decode(&self.exchange_key).ok()?.try_into().ok()?;
        let sig: [u8; 64] = STANDARD.decode(&self.signature).ok()?.try_into().ok()?;
        identity
            .verify_strict(
                &Self::signed_bytes(&self.node_id, &key, self.started_at_ms),
                &Signature::from_bytes(&sig),
            )
            .ok()?;
        Some(key)
    }
}

/// The original's per-wallet key metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The node ids holding a share (a set; the order carries no meaning).
    pub participant_peer_ids: Vec<String>,
    /// t: a signature needs t+1 of them.
    pub threshold: u32,
    /// The key version (1 after keygen, +1 per reshare).
    pub version: u32,
    /// Our addition (absent in the original's records): the public key (curve encoding, hex).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_key: String,
    /// Our addition: every holder's public share by party id (hex), so any node, and a newcomer
    /// of a reshare, can check a resharing against the key without holding a share.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub public_shares: BTreeMap<u16, String>,
    /// Our addition: each listed holder's Ed25519 signature (base64) over the rest
    /// (`service/keyinfo.rs`); nodes believe a key info only when every holder signed it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signatures: BTreeMap<String, String>,
    /// Our addition: for a version made by a reshare, the client's signed reshare request
    /// (base64), so an old holder left out can check that a client asked for it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request: String,
}

/// The KV key for a wallet's key info: `<curve>.<wallet>`, where a wallet id made only of
/// `[A-Za-z0-9_-]` (and `=` after the first character) is used as it is and any other id is
/// written `=` + base64url, so every wallet id maps to a distinct legal KV key.
pub fn keyinfo_key(curve: &str, wallet_id: &str) -> String {
    let plain = !wallet_id.is_empty()
        && !wallet_id.starts_with('=')
        && wallet_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'='));
    if plain {
        format!("{curve}.{wallet_id}")
    } else {
        format!("{curve}.={}", URL_SAFE_NO_PAD.encode(wallet_id))
    }
}

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
    /// When the last put was stored.
    last_stored: Option<Instant>,
    /// When the ready watch last delivered this node's own record.
    last_echo: Option<Instant>,
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
                beat.last_stored = Some(now);
                beat.stored_since.get_or_insert(now);
            }
        }
    }

    /// Whether the ready watch is stuck: a heartbeat of this node was stored more than `grace`
    /// ago and the watch has not delivered it. (After a NATS server dies a watch can stay
    /// silent without an error; every peer's record would then lapse here.)
    pub fn watch_is_stuck(&self, grace: Duration) -> bool {
        self.own_beat.read().is_ok_and(|beat| {
            beat.last_stored.is_some_and(|stored| {
                stored.elapsed() > grace && beat.last_echo.is_none_or(|echo| echo < stored)
            })
        })
    }

    /// Whether peers' records may lapse now: this node's own heartbeats have been stored for a
    /// whole TTL (time for every live peer to have stored one too), and none is stuck for more
    /// than a heartbeat period (a third of the TTL).
    fn records_can_lapse(&self, now: Instant) -> bool {
        self.own_beat.read().is_ok_and(|beat| {
            beat.stored_since.is_some_and(|t| now.duration_since(t) >= self.ttl)
                && beat.pending_since.is_none_or(|t| now.duration_since(t) < self.ttl / 3)
        })
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
                beat.last_echo = Some(Instant::now());
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

    fn record(&self, identity: &SigningKey, started_at_ms: u64) -> ReadyRecord {
        ReadyRecord::new(&self.me, &self.exchange.public(), started_at_ms, identity)
    }
}

/// The three KV buckets.
#[derive(Clone)]
pub struct Registry {
    peers: kv::Store,
    ready: kv::Store,
    keyinfo: kv::Store,
    requests: kv::Store,
    bans: kv::Store,
    presig_used: kv::Store,
}

/// How often the ready watch is checked for being stuck (and how late this node's own stored
/// heartbeat may come back through it).
const WATCH_CHECK: Duration = Duration::from_secs(2);

/// How often a node re-announces itself, and after how long silence a peer counts as gone.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    /// Period of the re-announcement.
    pub period: Duration,
    /// Silence after which a peer is not ready (and the bucket's max age).
    pub ttl: Duration,
}

impl Heartbeat {
    /// `period`, with a TTL of three periods.
    pub fn every(period: Duration) -> Self {
        Self { period, ttl: period * 3 }
    }
}

/// Read a key of `mpc_requests` that a create just found present. With more than one replica a
/// read is a direct get that any replica may answer, and a follower may not have applied the
/// write yet (JetStream's direct gets are not read-after-write): "absent" right after "exists"
/// means "not visible here yet", so it is read again for up to 2 s before it counts.
async fn get_existing(store: &kv::Store, key: &str) -> Result<Option<bytes::Bytes>, RegistryError> {
    let start = Instant::now();
    loop {
        let value = retry::get(store, key).await.map_err(|e| kv_err(REQUESTS_BUCKET)(e.into()))?;
        if value.is_some() || start.elapsed() > Duration::from_secs(2) {
            return Ok(value);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every registry bucket (each is the JetStream stream `KV_<bucket>`).
pub const BUCKETS: [&str; 6] =
    [PEERS_BUCKET, READY_BUCKET, KEYINFO_BUCKET, REQUESTS_BUCKET, BANS_BUCKET, PRESIG_USED_BUCKET];

/// Open a bucket, creating it with `replicas` when absent and bringing an existing one to
/// `replicas` in place; `None`: create with one, leave an existing one as it is (see
/// [`crate::replicas`]).
async fn open_bucket(
    js: &jetstream::Context,
    config: kv::Config,
    replicas: Option<usize>,
) -> Result<kv::Store, RegistryError> {
    Ok(crate::replicas::ensure_bucket(js, config, replicas).await?)
}

impl Registry {
    /// Open the buckets, creating them when absent with one replica (a single nats-server);
    /// existing buckets are left as they are.
    pub async fn open(js: &jetstream::Context, heartbeat: Heartbeat) -> Result<Self, RegistryError> {
        Self::open_buckets(js, heartbeat, None).await
    }

    /// Open the buckets, creating them when absent, each with `replicas` copies in the NATS
    /// cluster (`nats.replicas`); an existing bucket with another count is updated in place.
    pub async fn open_with_replicas(
        js: &jetstream::Context,
        heartbeat: Heartbeat,
        replicas: usize,
    ) -> Result<Self, RegistryError> {
        Self::open_buckets(js, heartbeat, Some(replicas)).await
    }

    async fn open_buckets(
        js: &jetstream::Context,
        heartbeat: Heartbeat,
        replicas: Option<usize>,
    ) -> Result<Self, RegistryError> {
        let peers = open_bucket(
            js,
            kv::Config {
                bucket: PEERS_BUCKET.into(),
                description: "mpcium peers: name -> node id".into(),
                history: 1,
                ..Default::default()
            },
            replicas,
        )
        .await?;
        let ready = open_bucket(
            js,
            kv::Config {
                bucket: READY_BUCKET.into(),
                description: "mpcium readiness: node id -> signed exchange key".into(),
                history: 1,
                max_age: heartbeat.ttl,
                ..Default::default()
            },
            replicas,
        )
        .await?;
        let keyinfo = open_bucket(
            js,
            kv::Config {
                bucket: KEYINFO_BUCKET.into(),
                description: "mpcium wallet key info".into(),
                history: 5,
                ..Default::default()
            },
            replicas,
        )
        .await?;
        let requests = open_bucket(
            js,
            kv::Config {
                bucket: REQUESTS_BUCKET.into(),
                description: "mpcium signing requests taken (replay protection)".into(),
                history: 1,
                ..Default::default()
            },
            replicas,
        )
        .await?;
        let bans = open_bucket(
            js,
            kv::Config {
                bucket: BANS_BUCKET.into(),
                description: "mpcium DKLs23 bans announced by nodes (quorum selection avoids banned pairs)"
                    .into(),
                history: 1,
                ..Default::default()
            },
            replicas,
        )
        .await?;
        // No max_age, no size limit: a record must outlive every copy of its presignature, and
        // a presignature lives until used or until a reshare retires its key version, which has
        // no deadline. One record per signer and use (~150 bytes).
        let presig_used = open_bucket(
            js,
            kv::Config {
                bucket: PRESIG_USED_BUCKET.into(),
                description: "mpcium presignatures used: signer.wallet.presignature -> session".into(),
                history: 1,
                ..Default::default()
            },
            replicas,
        )
        .await?;
        Ok(Self { peers, ready, keyinfo, requests, bans, presig_used })
    }

    /// Register a peer name → id; an existing equal entry is kept, a different one is a conflict.
    pub async fn register_peer(&self, name: &str, node_id: &str) -> Result<bool, RegistryError> {
        if let Some(existing) = self.peers.get(name).await.map_err(|e| kv_err(PEERS_BUCKET)(e.into()))? {
            let existing = String::from_utf8_lossy(&existing).into_owned();
            if existing == node_id {
                return Ok(false);
            }
            return Err(RegistryError::Conflict { name: name.into(), existing, wanted: node_id.into() });
        }
        self.peers
            .create(name, node_id.to_owned().into())
            .await
            .map_err(|e| kv_err(PEERS_BUCKET)(e.into()))?;
        Ok(true)
    }

    /// Every registered peer, name → id.
    pub async fn peers(&self) -> Result<BTreeMap<String, String>, RegistryError> {
        let mut out = BTreeMap::new();
        let mut keys = self.peers.keys().await.map_err(|e| kv_err(PEERS_BUCKET)(e.into()))?;
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| kv_err(PEERS_BUCKET)(e.into()))?;
            if let Some(v) = self.peers.get(&key).await.map_err(|e| kv_err(PEERS_BUCKET)(e.into()))? {
                out.insert(key, String::from_utf8_lossy(&v).into_owned());
            }
        }
        Ok(out)
    }

    /// Every readiness record in the bucket now (node id → record), unverified: for display
    /// (`mpcium-cli status`); nodes verify records with the peer's identity as they arrive.
    pub async fn ready_records(&self) -> Result<BTreeMap<String, ReadyRecord>, RegistryError> {
        let mut out = BTreeMap::new();
        let mut keys = self.ready.keys().await.map_err(|e| kv_err(READY_BUCKET)(e.into()))?;
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| kv_err(READY_BUCKET)(e.into()))?;
            let Some(v) = self.ready.get(&key).await.map_err(|e| kv_err(READY_BUCKET)(e.into()))? else {
                continue;
            };
            let record: ReadyRecord = serde_json::from_slice(&v).map_err(|e| RegistryError::Corrupt {
                bucket: READY_BUCKET,
                key: key.clone(),
                reason: e.to_string(),
            })?;
            out.insert(key, record);
        }
        Ok(out)
    }

    /// The keys of the key-info bucket (`<curve>.<wallet>`, see [`keyinfo_key`]).
    pub async fn keyinfo_keys(&self) -> Result<Vec<String>, RegistryError> {
        let mut out = Vec::new();
        let mut keys = self.keyinfo.keys().await.map_err(|e| kv_err(KEYINFO_BUCKET)(e.into()))?;
        while let Some(key) = keys.next().await {
            out.push(key.map_err(|e| kv_err(KEYINFO_BUCKET)(e.into()))?);
        }
        Ok(out)
    }

    /// Announce this node as ready (once).
    pub async fn announce(
        &self,
        dir: &PeerDirectory,
        identity: &SigningKey,
        started_at_ms: u64,
    ) -> Result<(), RegistryError> {
        let record = dir.record(identity, started_at_ms);
        let bytes = serde_json::to_vec(&record).map_err(|e| RegistryError::Corrupt {
            bucket: READY_BUCKET,
            key: dir.me.clone(),
            reason: e.to_string(),
        })?;
        self.ready.put(&dir.me, bytes.into()).await.map_err(|e| kv_err(READY_BUCKET)(e.into()))?;
        Ok(())
    }

    /// Withdraw this node's readiness (graceful shutdown).
    pub async fn withdraw(&self, node_id: &str) -> Result<(), RegistryError> {
        self.ready.delete(node_id).await.map_err(|e| kv_err(READY_BUCKET)(e.into()))
    }

    /// Keep announcing every `heartbeat.period` until `stop` is set; logs (does not end) on a
    /// failed put, so a NATS outage does not kill the node. `started_at_ms` is the one given to
    /// [`announce`](Self::announce): a different one would tell the peers the node restarted.
    pub fn spawn_heartbeat(
        &self,
        dir: PeerDirectory,
        identity: SigningKey,
        heartbeat: Heartbeat,
        started_at_ms: u64,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        let started = started_at_ms;
        tokio::spawn(async move {
            loop {
                dir.beat_started();
                let stored = registry.announce(&dir, &identity, started).await;
                dir.beat_ended(stored.is_ok());
                if let Err(e) = stored {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(heartbeat.period) => {}
                    _ = stop.changed() => break,
                }
                if *stop.borrow() {
                    break;
                }
            }
        })
    }

    /// Follow the ready bucket into `dir` until `stop` is set (re-watching after errors).
    pub fn spawn_watch(
        &self,
        dir: PeerDirectory,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let ready = self.ready.clone();
        tokio::spawn(async move {
            loop {
                match ready.watch_with_history(">").await {
                    Ok(mut watch) => {
                        // An interval, not a sleep per entry: entries keep coming while the
                        // watch lags, and the check must still run.
                        let mut check =
                            tokio::time::interval_at(tokio::time::Instant::now() + WATCH_CHECK, WATCH_CHECK);
                        loop {
                            tokio::select! {
                                entry = watch.next() => match entry {
                                    Some(Ok(entry)) => apply(&dir, entry),
                                    Some(Err(e)) => { tracing::warn!(error = %e, "ready watch error"); break; }
                                    None => break,
                                },
                                _ = check.tick() => {
                                    if dir.watch_is_stuck(WATCH_CHECK) {
                                        tracing::warn!("the ready watch did not deliver this node's own heartbeat; watching again");
                                        break;
                                    }
                                }
                                _ = stop.changed() => return,
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot watch the ready bucket"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => return,
                }
            }
        })
    }

    /// Every key info put from now on, after the latest of each key (for
    /// `service/keyinfo.rs`: old holders left out by a reshare).
    pub async fn watch_keyinfo(&self) -> Result<async_nats::jetstream::kv::Watch, RegistryError> {
        self.keyinfo.watch_with_history(">").await.map_err(|e| kv_err(KEYINFO_BUCKET)(e.into()))
    }

    /// A wallet's key info for one curve, if the wallet exists.
    pub async fn keyinfo(&self, curve: &str, wallet_id: &str) -> Result<Option<KeyInfo>, RegistryError> {
        let key = keyinfo_key(curve, wallet_id);
        let Some(bytes) =
            retry::get(&self.keyinfo, &key).await.map_err(|e| kv_err(KEYINFO_BUCKET)(e.into()))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| RegistryError::Corrupt {
            bucket: KEYINFO_BUCKET,
            key,
            reason: e.to_string(),
        })
    }

    /// Write a wallet's key info (the coordinator, with every holder's signature).
    pub async fn put_keyinfo(
        &self,
        curve: &str,
        wallet_id: &str,
        info: &KeyInfo,
    ) -> Result<(), RegistryError> {
        let key = keyinfo_key(curve, wallet_id);
        let bytes = serde_json::to_vec(info).map_err(|e| RegistryError::Corrupt {
            bucket: KEYINFO_BUCKET,
            key: key.clone(),
            reason: e.to_string(),
        })?;
        retry::put(&self.keyinfo, &key, bytes.into()).await.map_err(|e| kv_err(KEYINFO_BUCKET)(e.into()))?;
        Ok(())
    }
}

impl Registry {
    /// Claim `(wallet, tx)` for the request delivery `claim` (e.g. its stream sequence), atomically
    /// across the cluster: the first claim wins and stays (durably, in JetStream).
    pub async fn claim_request(
        &self,
        wallet_id: &str,
        tx_id: &str,
        claim: &str,
    ) -> Result<Claim, RegistryError> {
        let key =
            format!("{}.{}", keyinfo_key("tx", wallet_id), keyinfo_key("id", tx_id).replacen("id.", "", 1));
        match retry::create(&self.requests, &key, claim.to_owned().into()).await {
            Ok(_) => Ok(Claim::New),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let existing = get_existing(&self.requests, &key).await?;
                Ok(if existing.as_deref() == Some(claim.as_bytes()) { Claim::Same } else { Claim::Duplicate })
            }
            Err(e) => Err(kv_err(REQUESTS_BUCKET)(e.into())),
        }
    }

    /// Settle the result event published under `msg_id` (a result's `Nats-Msg-Id`, naming one
    /// request message): the first event recorded stays, durably, and is returned to every later
    /// caller. A request that runs again (redelivered after a crash of its coordinator or of
    /// nats-server, whose consumer state may lag and whose duplicate window forgets results
    /// already consumed) is then answered with the very same event, not a second signature.
    pub async fn settle_result(
        &self,
        msg_id: &str,
        event: bytes::Bytes,
    ) -> Result<bytes::Bytes, RegistryError> {
        let key = settled_key(msg_id);
        match retry::create(&self.requests, &key, event.clone()).await {
            Ok(_) => Ok(event),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                get_existing(&self.requests, &key).await?.ok_or_else(|| RegistryError::Corrupt {
                    bucket: REQUESTS_BUCKET,
                    key,
                    reason: "settled result vanished".into(),
                })
            }
            Err(e) => Err(kv_err(REQUESTS_BUCKET)(e.into())),
        }
    }
}

impl Registry {
    /// The result event settled for `msg_id`, if the request message was answered already.
    pub async fn settled_result(&self, msg_id: &str) -> Result<Option<bytes::Bytes>, RegistryError> {
        retry::get(&self.requests, &settled_key(msg_id)).await.map_err(|e| kv_err(REQUESTS_BUCKET)(e.into()))
    }

    /// Remove a wallet's key info for one curve (a keygen that made only one of its two keys).
    pub async fn delete_keyinfo(&self, curve: &str, wallet_id: &str) -> Result<(), RegistryError> {
        self.keyinfo.delete(keyinfo_key(curve, wallet_id)).await.map_err(|e| kv_err(KEYINFO_BUCKET)(e.into()))
    }
}

impl Registry {
    /// Record, durably and cluster-wide, that `signer` releases its online share of presignature
    /// `presig_id` of `wallet_id`, in the session `session` (hex, kept for operators). Create-only:
    /// `Ok(true)` the first time, `Ok(false)` when the record exists (the presignature was used
    /// before: this copy came back from a restored or copied disk), and then the share must not
    /// be released. The signer's id is the key's first token, so NATS permissions can let each
    /// node write only its own records (`$KV.mpc_presig_used.<node id>.>`).
    pub async fn mark_presignature_used(
        &self,
        signer: &str,
        wallet_id: &str,
        presig_id: &str,
        session: &str,
    ) -> Result<bool, RegistryError> {
        let key = presig_used_key(signer, wallet_id, presig_id);
        match self.presig_used.create(&key, session.to_owned().into()).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(kv_err(PRESIG_USED_BUCKET)(e.into())),
        }
    }
}

/// The used-record key of one signer's share of a presignature: `<signer>.<ecdsa.wallet>.<id>`,
/// where a presignature id's characters (`[0-9a-z.-]` and the owner's node id) are legal KV key
/// characters, and the wallet is written as in [`keyinfo_key`].
pub fn presig_used_key(signer: &str, wallet_id: &str, presig_id: &str) -> String {
    format!("{signer}.{}.{presig_id}", keyinfo_key("ecdsa", wallet_id))
}

fn settled_key(msg_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(msg_id.as_bytes());
    format!("result.{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn apply(dir: &PeerDirectory, entry: kv::Entry) {
    match entry.operation {
        kv::Operation::Put => match serde_json::from_slice::<ReadyRecord>(&entry.value) {
            Ok(record) if record.node_id == entry.key => {
                dir.observe(&record);
            }
            Ok(_) => tracing::warn!(key = %entry.key, "ready record under another node's key; ignored"),
            Err(e) => tracing::warn!(key = %entry.key, error = %e, "malformed ready record; ignored"),
        },
        kv::Operation::Delete | kv::Operation::Purge => dir.forget(&entry.key),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn keyinfo_keys_are_legal_and_distinct() {
        assert_eq!(keyinfo_key("ecdsa", "wallet-1_A"), "ecdsa.wallet-1_A");
        let odd = keyinfo_key("eddsa", "a:b");
        assert!(odd.starts_with("eddsa.="), "{odd}");
        assert_ne!(keyinfo_key("eddsa", "=x"), keyinfo_key("eddsa", "x"));
        for id in ["a:b", "=x", "ü", "a b"] {
            let k = keyinfo_key("ecdsa", id);
            assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_=.".contains(&b)), "{k}");
        }
    }

    #[test]
    fn ready_record_signature_binds_every_field() {
        let id = SigningKey::generate(&mut OsRng);
        let rec = ReadyRecord::new("node0", &[9; 32], 42, &id);
        assert_eq!(rec.verify(&id.verifying_key()), Some([9; 32]));
        let mut other = rec.clone();
        other.started_at_ms = 43;
        assert_eq!(other.verify(&id.verifying_key()), None);
        let mut other = rec.clone();
        other.node_id = "node1".into();
        assert_eq!(other.verify(&id.verifying_key()), None);
        assert_eq!(rec.verify(&SigningKey::generate(&mut OsRng).verifying_key()), None);
    }
}
