//! Readiness: the signed ready record, announcing and withdrawing it, the heartbeat that keeps
//! re-announcing it, and the watch that follows the ready bucket into a [`PeerDirectory`].

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::kv;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{PeerDirectory, READY_BUCKET, Registry, RegistryError, kv_err};

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

/// How often the ready watch is checked for being stuck (and how late this node's own stored
/// heartbeat may come back through it).
pub(super) const WATCH_CHECK: Duration = Duration::from_secs(2);

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

impl Registry {
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

    /// Announce this node as ready (once; a heartbeat: a failure is the heartbeat loop's to
    /// handle).
    pub async fn announce(
        &self,
        dir: &PeerDirectory,
        identity: &SigningKey,
        started_at_ms: u64,
    ) -> Result<(), RegistryError> {
        self.put_ready(dir, identity, started_at_ms, false).await
    }

    /// The first announcement at start, retried through a leader election (a bucket moved to
    /// more replicas at this start may answer "stream not found" for a moment), so a node
    /// does not refuse to start for it.
    pub async fn announce_at_start(
        &self,
        dir: &PeerDirectory,
        identity: &SigningKey,
        started_at_ms: u64,
    ) -> Result<(), RegistryError> {
        self.put_ready(dir, identity, started_at_ms, true).await
    }

    async fn put_ready(
        &self,
        dir: &PeerDirectory,
        identity: &SigningKey,
        started_at_ms: u64,
        retried: bool,
    ) -> Result<(), RegistryError> {
        let bytes: bytes::Bytes = Self::ready_record(dir, identity, started_at_ms)?.into();
        let stored = if retried {
            super::retry::put(&self.ready, dir.me(), bytes).await
        } else {
            self.ready.put(dir.me(), bytes).await
        };
        stored.map(|_| ()).map_err(|e| kv_err(READY_BUCKET)(e.into()))
    }

    fn ready_record(
        dir: &PeerDirectory,
        identity: &SigningKey,
        started_at_ms: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        serde_json::to_vec(&dir.record(identity, started_at_ms)).map_err(|e| RegistryError::Corrupt {
            bucket: READY_BUCKET,
            key: dir.me().to_owned(),
            reason: e.to_string(),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

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
