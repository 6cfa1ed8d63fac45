//! The cluster registry on JetStream KV (the original used Consul), and what the node daemon and
//! the operator CLI share to reach it without the CLI linking the daemon: [`connect`] (NATS
//! client options), [`replicas`] (`nats.replicas` for streams, buckets and consumers),
//! [`pairkey`] (the exchange keys ready records carry), [`status`] (the cluster at a glance) and
//! [`audit`] (the audit trail: written by the node, read and verified by the CLI).
//!
//! Six buckets:
//! - `mpc_peers`: node name → node id, written by `mpcium-cli register-peers` or `mpcium start
//!   --peers` (the original's `mpc_peers/<name>`).
//! - `mpc_ready`: node id → a [`ReadyRecord`]: the node's X25519 exchange key for this process
//!   lifetime, signed with its Ed25519 identity. A node re-puts it every heartbeat; the bucket's
//!   `max_age` drops it when the node stops doing so, and every watcher also expires peers it has
//!   not heard from for a TTL, because servers before 2.11 send no event when a key ages out.
//!   Publishing the exchange key here replaces the original's `ecdh:exchange` broadcast.
//! - `mpc_keyinfo`: `<curve>.<wallet>` → the original's key info JSON
//!   `{"participant_peer_ids":[…],"threshold":t,"version":v}`.
//! - `mpc_requests`: signing requests taken and the result settled for each request message
//!   (cluster-wide replay protection; see [`Registry::claim_request`] and
//!   [`Registry::settle_result`]).
//! - `mpc_bans`: bans announced by nodes, one key per wallet (see [`bans`]).
//! - `mpc_presig_used`: `<signer>.<ecdsa.wallet>.<presignature id>` → the session that used it:
//!   each signer's create-only record that it released its online share of a presignature
//!   (single use cluster-wide, not just on one disk; see [`Registry::mark_presignature_used`]);
//!   and `<holder>.keypool.<pool id>` → the wallet a key made ahead was handed to
//!   ([`Registry::mark_pooled_key_used`]).
//!
//! The parts: `directory` (the live view of ready peers and absence marks), `ready` (readiness
//! records, the heartbeat and the ready watch), `keyinfo` (wallet key info), `ledger` (request
//! claims, settled results and presignature-use records), [`bans`] and `retry` (KV calls that
//! ride out a leader election).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;

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

pub mod audit;
pub mod bans;
pub mod connect;
mod directory;
mod keyinfo;
mod ledger;
pub mod pairkey;
mod ready;
pub mod replicas;
mod retry;
pub mod status;

pub use directory::PeerDirectory;
pub use keyinfo::{KeyInfo, keyinfo_key};
pub use ledger::{Claim, pooled_key_used_key, presig_used_key};
pub use ready::{Heartbeat, ReadyRecord};

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

/// The six KV buckets.
#[derive(Clone)]
pub struct Registry {
    peers: kv::Store,
    ready: kv::Store,
    keyinfo: kv::Store,
    requests: kv::Store,
    bans: kv::Store,
    presig_used: kv::Store,
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
        // Retried through a leader election (done at start, when buckets may just have moved).
        if let Some(existing) =
            retry::get(&self.peers, name).await.map_err(|e| kv_err(PEERS_BUCKET)(e.into()))?
        {
            let existing = String::from_utf8_lossy(&existing).into_owned();
            if existing == node_id {
                return Ok(false);
            }
            return Err(RegistryError::Conflict { name: name.into(), existing, wanted: node_id.into() });
        }
        retry::create(&self.peers, name, node_id.to_owned().into())
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
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
