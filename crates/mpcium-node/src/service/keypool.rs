//! The sessions of the key pool (see [`crate::keypool`] for its rules): keeping this node's pool
//! full in the background, a pool keygen's part on each node, and handing a pooled key to the
//! wallet of a keygen request.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mpcium_api::ErrorCode;
use mpcium_tss::{ExecutionId, KeyType, PartyId};
use sha2::{Digest, Sha256};

use super::check::KeygenStart;
use super::keygen::{KEYGEN_KINDS, Made, made_from_share, made_output, run_id};
use super::{Failure, Output, Service, share_kind};
use crate::control::{SessionOp, SessionStart};
use crate::drain::Phase;
use crate::keypool::{PoolId, PooledKey};
use crate::session::run_protocol;

/// How often the pool is checked.
const FILL_PERIOD: Duration = Duration::from_secs(1);
/// How long the pool rests after a pool keygen failed (a member away, refusing, or over its
/// rate for this owner).
const FILL_BACKOFF: Duration = Duration::from_secs(10);

impl Service {
    /// Keep `key_pool.size` keys made ahead and owned by this node, one pool keygen at a time and
    /// only while this node has no other work in flight and took part in no client session for a
    /// second (`KeyPool::quiet`): a keygen costs every node about half a second of CPU, which
    /// client requests must not wait behind.
    pub(super) async fn keep_key_pool_full(self: Arc<Self>) -> Result<(), async_nats::Error> {
        // Only a node that coordinates keygens hands pooled keys over.
        if !self.key_pool.enabled() || !self.cfg.pulls_requests {
            return Ok(());
        }
        let mut rest = FILL_PERIOD;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(rest) => {}
                _ = self.drain.reached(Phase::Draining) => return Ok(()),
            }
            rest = FILL_PERIOD;
            loop {
                let owned = self.owned_pooled_keys().len();
                self.metrics.key_pool.owned.store(owned as u64, Ordering::Relaxed);
                let dir = self.transport.directory();
                if owned >= self.key_pool.size()
                    || dir.ready() != dir.configured()
                    || self.drain.in_flight() > 0
                    || !self.key_pool.quiet(Instant::now())
                    || self.drain.phase() != Phase::Serving
                {
                    break;
                }
                match self.fill_key_pool().await {
                    Ok(()) => {
                        self.metrics.key_pool.made.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(f) => {
                        tracing::info!(code = %f.code.as_str(), reason = %f.reason, "key pool not filled; trying again later");
                        rest = FILL_BACKOFF;
                        break;
                    }
                }
            }
        }
    }

    /// The ids of the pooled keys this node owns, oldest first.
    fn owned_pooled_keys(&self) -> Vec<PoolId> {
        match self.store.pooled_key_ids(&PoolId::prefix(self.me())) {
            Ok(ids) => PoolId::owned_by(ids, self.me()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list pooled keys");
                Vec::new()
            }
        }
    }

    /// One pool keygen, coordinated by this node (its owner).
    async fn fill_key_pool(&self) -> Result<(), Failure> {
        let id = PoolId::new(self.me());
        let members = self.transport.directory().configured();
        let start =
            SessionStart::new(SessionOp::KeyPool, self.me(), members, 1, self.cfg.threshold, id.as_str());
        if let Err(f) = self.coordinate_attested(start, None).await {
            // Not every member holds it: never to be handed over.
            self.drop_pooled_key(id.as_str());
            return Err(f);
        }
        Ok(())
    }

    /// This node's part of a pool keygen: check the announcement against this node's config and
    /// the owner's rate, run the three DKGs, store the shares under the pool id.
    pub(super) async fn key_pool_part(
        &self,
        start: &SessionStart,
        session: [u8; 32],
    ) -> Result<Output, Failure> {
        let id = PoolId::parse(&start.request_id)
            .ok_or_else(|| Failure::new(ErrorCode::MessageVerification, "malformed pool id"))?;
        if id.owner != start.coordinator {
            return Err(Failure::new(
                ErrorCode::MessageVerification,
                "a pool keygen is announced by its owner",
            ));
        }
        if !self.key_pool.enabled() {
            return Err(Failure::new(ErrorCode::InvalidSessionType, "the key pool is off on this node"));
        }
        if start.threshold != self.cfg.threshold {
            return Err(Failure::new(ErrorCode::InvalidThreshold, "announced threshold is not this node's"));
        }
        if start.participants != self.transport.directory().configured() {
            return Err(Failure::new(
                ErrorCode::IncompatiblePeerIds,
                "announced committee is not the configured cluster",
            ));
        }
        if start.key_version != 1
            || !start.request.is_empty()
            || !start.new_participants.is_empty()
            || !start.dealers.is_empty()
            || start.presignature.is_some()
            || start.old_key.is_some()
            || !start.nonces.is_empty()
        {
            return Err(Failure::new(ErrorCode::MessageVerification, "malformed pool keygen announcement"));
        }
        if start.coordinator != self.me() && !self.key_pool.admit_fill(&start.coordinator, Instant::now()) {
            self.metrics.key_pool.throttled.fetch_add(1, Ordering::Relaxed);
            return Err(Failure::new(
                ErrorCode::ResourceExhausted,
                format!("too many pool keygens from {}", start.coordinator),
            ));
        }
        let me_index = start
            .participants
            .iter()
            .position(|p| p == self.me())
            .ok_or_else(|| Failure::new(ErrorCode::ParticipantNotFound, "not a participant"))?;
        let made = self.keygen_runs(start, me_index, session).await?;
        self.evict_pooled_keys(&id.owner);
        let [ecdsa, eddsa, taproot] = &made;
        let record = PooledKey {
            participants: start.participants.clone(),
            threshold: start.threshold,
            shares: [ecdsa.share.clone(), eddsa.share.clone(), taproot.share.clone()],
        }
        .encode();
        self.store
            .put_pooled_key(id.as_str(), &record)
            .map_err(|e| Failure::new(ErrorCode::KeySave, e.to_string()))?;
        tracing::debug!(pooled = id.as_str(), "key made ahead");
        Ok(made_output(made))
    }

    /// Make room for one more pooled key of `owner`: past [`crate::keypool::KeyPool::max_held`]
    /// its oldest go (what an owner's failed or crashed pool keygens left here).
    fn evict_pooled_keys(&self, owner: &str) {
        let held = match self.store.pooled_key_ids(&PoolId::prefix(owner)) {
            Ok(ids) => PoolId::owned_by(ids, owner),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list pooled keys");
                return;
            }
        };
        let excess = (held.len() + 1).saturating_sub(self.key_pool.max_held());
        for id in held.iter().take(excess) {
            self.drop_pooled_key(id.as_str());
        }
    }

    /// Delete a pooled key held here (durably); a failure is logged.
    pub(super) fn drop_pooled_key(&self, id: &str) {
        if let Err(e) = self.store.delete_pooled_key(id) {
            tracing::warn!(pooled = id, error = %e, "cannot delete a pooled key");
        }
    }

    /// The oldest pooled key this node owns that fits the cluster as configured now, reserved
    /// for one keygen (release it with `KeyPool::release`); keys made for another committee or
    /// threshold are deleted on the way.
    pub(super) fn reserve_pooled_key(&self) -> Option<String> {
        let configured = self.transport.directory().configured();
        for id in self.owned_pooled_keys() {
            let id = id.as_str();
            if !self.key_pool.reserve(id) {
                continue;
            }
            let fits = self
                .store
                .pooled_key(id)
                .ok()
                .flatten()
                .and_then(|bytes| PooledKey::decode(&bytes).ok())
                .is_some_and(|k| k.participants == configured && k.threshold == self.cfg.threshold);
            if fits {
                return Some(id.to_owned());
            }
            tracing::info!(pooled = id, "a pooled key made for another committee or threshold is deleted");
            self.drop_pooled_key(id);
            self.key_pool.release(id);
        }
        None
    }

    /// This node's part of a keygen that hands the pooled key `pooled` to the checked wallet:
    /// the key must be the coordinator's (its owner's) and made for the announced committee
    /// and threshold; the hand-over is recorded cluster-wide first (once per pooled key), then
    /// every member shows the digest of the key it holds, and only when all agree does this node
    /// store the wallet's shares, in the same durable write that deletes the pooled key.
    pub(super) async fn hand_over_pooled_key(
        &self,
        start: &SessionStart,
        checked: &KeygenStart,
        session: [u8; 32],
        pooled: &str,
    ) -> Result<[Made; 3], Failure> {
        let wallet = checked.wallet.as_str();
        let id = PoolId::parse(pooled)
            .ok_or_else(|| Failure::new(ErrorCode::MessageVerification, "malformed pool id"))?;
        if id.owner != start.coordinator {
            return Err(Failure::new(
                ErrorCode::MessageVerification,
                "a pooled key is handed over only by the node that made it",
            ));
        }
        let stored =
            self.store.pooled_key(pooled).map_err(Failure::because(ErrorCode::StorageRead))?.ok_or_else(
                || Failure::new(ErrorCode::KeyNotFound, format!("pooled key {pooled} is not held here")),
            )?;
        let key = PooledKey::decode(&stored).map_err(Failure::because(ErrorCode::KeyDecoding))?;
        if key.participants != start.participants || key.threshold != start.threshold {
            return Err(Failure::new(
                ErrorCode::SessionStale,
                "the pooled key was made for another committee or threshold",
            ));
        }
        let [ecdsa, eddsa, taproot] = key.shares;
        let (participants, t, v) = (&start.participants, start.threshold, start.key_version);
        let made = [
            made_from_share(KeyType::Secp256k1, ecdsa, participants, t, v)?,
            made_from_share(KeyType::Ed25519, eddsa, participants, t, v)?,
            made_from_share(KeyType::Taproot, taproot, participants, t, v)?,
        ];
        let first = self
            .registry
            .mark_pooled_key_used(self.me(), pooled, wallet)
            .await
            .map_err(Failure::because(ErrorCode::StorageWrite))?;
        if !first {
            self.metrics.key_pool.reuse_refused.fetch_add(1, Ordering::Relaxed);
            self.drop_pooled_key(pooled);
            return Err(Failure::new(
                ErrorCode::SessionDuplicate,
                format!("pooled key {pooled} was handed to another wallet before"),
            ));
        }
        // From here the pooled key is spent on this node whatever happens: recorded as handed
        // to this wallet, it can never go to another.
        let handed = self.agree_and_store(start, checked.me_index, session, wallet, &made).await;
        if handed.is_err() {
            self.drop_pooled_key(pooled);
        }
        handed?;
        if start.coordinator != self.me() {
            self.key_pool.credit_fill(&start.coordinator);
        }
        Ok(made)
    }

    /// The agreement round on the pooled key's public data, then the durable hand-over.
    async fn agree_and_store(
        &self,
        start: &SessionStart,
        me_index: usize,
        session: [u8; 32],
        wallet: &str,
        made: &[Made; 3],
    ) -> Result<(), Failure> {
        let pooled = start.pooled_key.as_deref().unwrap_or_default();
        let n = start.participants.len();
        let ids: Vec<PartyId> = (1..=n as PartyId).collect();
        let me = (me_index + 1) as PartyId;
        // The first key's run id: abort notices of the session reach it (`protocol_runs`).
        let run = run_id(session, KEYGEN_KINDS[0]);
        let mut inbox = self.transport.open_session(run);
        let spec = self.spec(run, &start.participants, &ids, me);
        let proto = mpcium_tss::agree::Agreement::new(ExecutionId(run), me, &ids, public_digest(made))
            .map_err(Failure::because(ErrorCode::KeyGeneration))?;
        run_protocol(&self.transport, &mut inbox, &spec, proto).await?;
        let shares: Vec<_> = made
            .iter()
            .map(|m| (share_kind(m.kind), wallet, start.key_version, m.share.as_slice()))
            .collect();
        self.store.assign_pooled_key(pooled, &shares).map_err(|e| match e {
            mpcium_store::StoreError::PooledKeyMissing { .. } => {
                Failure::new(ErrorCode::KeyNotFound, format!("pooled key {pooled} is not held here"))
            }
            e => super::keygen::key_save(wallet, e),
        })
    }
}

/// SHA-256 over the public data of a pooled key's three keys (public key and public shares):
/// equal on every holder of the same key.
fn public_digest(made: &[Made; 3]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mpcium/key-pool/public-data/v1");
    for m in made {
        let field = |h: &mut Sha256, bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(&mut h, m.kind.as_str().as_bytes());
        field(&mut h, m.info.public_key.as_bytes());
        for (party, share) in &m.info.public_shares {
            h.update(party.to_be_bytes());
            field(&mut h, share.as_bytes());
        }
    }
    h.finalize().into()
}
