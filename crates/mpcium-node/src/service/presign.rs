//! The sessions of the ECDSA presignature pool (see [`crate::presign`] for the pool's rules):
//! keeping it warm in the background, the presign session itself, and signing with a
//! presignature (one online round instead of three).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mpcium_api::{ClientId, ErrorCode, SignTxMessage, SignTxRequest};
use mpcium_tss::{ExecutionId, KeyType, PartyId};
use serde_json::json;

use super::check::{OwnRequest, Verified};
use super::reselect::Attempt;
use super::{Failure, Output, Service, party_ids, quorum, wallet_of};
use crate::control::{SessionOp, SessionStart};
use crate::presign::{MAX_HELD_PER_OWNER, PRESIGN_REFILL_PER_SEC, PresigId};
use crate::registry::KeyInfo;
use crate::session::SessionSpec;
use crate::transport::SessionInbox;

/// How often the pool is checked when nothing wakes it.
const REFILL_PERIOD: Duration = Duration::from_secs(2);

fn storage(e: mpcium_store::StoreError) -> Failure {
    Failure::new(ErrorCode::StorageRead, e.to_string())
}

impl Service {
    /// Keep every warm wallet's pool at `presign.pool_size` presignatures owned by this node.
    pub(super) async fn keep_pool_warm(self: Arc<Self>) -> Result<(), async_nats::Error> {
        if !self.pool.enabled() {
            return Ok(());
        }
        loop {
            self.pool.wait(REFILL_PERIOD).await;
            let mut owned = 0;
            for wallet in self.pool.wallets() {
                match self.refill(&wallet).await {
                    Ok(n) => owned += n,
                    Err(f) => {
                        tracing::debug!(wallet, code = %f.code.as_str(), reason = %f.reason, "presignature pool not refilled")
                    }
                }
            }
            self.metrics.presign.owned.store(owned as u64, Ordering::Relaxed);
        }
    }

    /// Make presignatures for `wallet` until this node owns `pool_size`, as many sessions at once
    /// as [`crate::presign::PresignPool::refill_sessions`] allows;
    /// returns how many it owns (also when a session failed: it tries again at the next wake).
    async fn refill(&self, wallet: &str) -> Result<usize, Failure> {
        let info = self.load_keyinfo(KeyType::Secp256k1, wallet).await?;
        if !info.participant_peer_ids.iter().any(|p| p == self.me()) {
            return Ok(0);
        }
        self.drop_presignatures(wallet, Some(info.version));
        let prefix = PresigId::prefix(info.version, self.me());
        let held = self.store.presignature_ids(wallet, &prefix).map_err(storage)?;
        let mut have = PresigId::owned_by(held, info.version, self.me()).len();
        let need = info.threshold as usize + 1;
        // Never with a node banned for this key, by this node or by another co-signer.
        let apart = self.ban_conflicts(wallet, info.version).await;
        let mut refused: Vec<String> = Vec::new();
        while have < self.pool.size() {
            // Refills yield to clients: a presignature made while the node is busy costs a
            // session more than signing in full (presign + online against one full run), so
            // under load the pool waits and signatures run in full; in the gaps it refills, in
            // parallel once the pool is down to half, so the next quiet request takes one round.
            let busy = self.drain.in_flight().saturating_sub(self.pool.joined_presigns());
            let budget = self.pool.refill_sessions(have, busy);
            let mut starts = Vec::new();
            // Changes only when a batch's outcomes are in (below).
            let cold = self.pool.cold_cosigners(wallet, Instant::now());
            for _ in 0..(self.pool.size() - have).min(budget) {
                let ready = self.transport.directory().ready();
                let candidates: Vec<String> = info
                    .participant_peer_ids
                    .iter()
                    .filter(|p| ready.contains(p) && !cold.contains(p) && !refused.contains(p))
                    .cloned()
                    .collect();
                // Rotate the co-signers so the pool's work spreads over the committee.
                let rotation = self.pool.next_rotation().to_string();
                // The owner signs with its own entries: a set without it is of no use here.
                let Some(nodes) = quorum::pick_signers(&candidates, self.me(), &rotation, need, &apart)
                    .filter(|nodes| nodes.iter().any(|n| n == self.me()))
                else {
                    break;
                };
                let parties = party_ids(&info.participant_peer_ids, &nodes)?;
                let id = PresigId::new(info.version, self.me(), &parties);
                let request = json!({ "wallet_id": wallet, "key_type": "secp256k1" }).to_string();
                starts.push(
                    SessionStart::new(
                        SessionOp::Presign,
                        self.me(),
                        nodes,
                        info.version,
                        info.threshold,
                        id.as_str(),
                    )
                    .with_request(request.as_bytes()),
                );
            }
            if starts.is_empty() {
                break;
            }
            // A co-signer that goes away ends a session at once, not at its timeout.
            let outcomes =
                futures_util::future::join_all(starts.into_iter().map(|s| self.coordinate_watched(s, None)))
                    .await;
            let mut first_failure = None;
            for outcome in outcomes {
                match outcome {
                    Ok(_) => {
                        self.metrics.presign.made.fetch_add(1, Ordering::Relaxed);
                        have += 1;
                    }
                    Err((f, _)) => match f.failed_member() {
                        // A co-signer where the wallet is not warm: the rest of this refill (and
                        // later refills, for a while) goes without it.
                        Some((node, ErrorCode::InvalidSessionType)) => {
                            tracing::debug!(
                                wallet,
                                node,
                                "co-signer refuses presign sessions: wallet not warm there"
                            );
                            self.pool.note_cold(wallet, node, Instant::now());
                            refused.push(node.to_owned());
                        }
                        _ => {
                            first_failure.get_or_insert(f);
                        }
                    },
                }
            }
            // The rest waits for the next wake; what this node holds is still counted.
            if let Some(f) = first_failure {
                tracing::debug!(wallet, code = %f.code.as_str(), reason = %f.reason, "presignature pool not refilled");
                break;
            }
        }
        Ok(have)
    }

    /// Delete `wallet`'s presignatures of every key version but `keep` (all when `None`).
    pub(super) fn drop_presignatures(&self, wallet: &str, keep: Option<u32>) {
        let ids = match self.store.presignature_ids(wallet, "") {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(wallet, error = %e, "cannot list presignatures");
                return;
            }
        };
        for id in ids {
            let stale = match PresigId::parse(&id) {
                Some(p) => Some(p.version) != keep,
                None => true,
            };
            if stale && let Err(e) = self.store.delete_presignature(wallet, &id) {
                tracing::warn!(wallet, error = %e, "cannot delete a stale presignature");
            }
        }
    }

    /// This node's part of a presign session: check the announcement, run the two presign
    /// rounds, store this node's share of the presignature under the announced id.
    pub(super) async fn presign_part(
        &self,
        start: &SessionStart,
        session: [u8; 32],
        inbox: &mut SessionInbox,
    ) -> Result<Output, Failure> {
        let wallet = wallet_of(start);
        let body = start.request_bytes().map_err(Failure::because(ErrorCode::MessageFormat))?;
        let key_type = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("key_type").and_then(|k| k.as_str()).map(str::to_owned));
        if key_type.as_deref() != Some("secp256k1") {
            return Err(Failure::new(ErrorCode::InvalidSessionType, "presignatures are for secp256k1 keys"));
        }
        let info = self.load_keyinfo(KeyType::Secp256k1, &wallet).await?;
        self.authorize_presign(start, &wallet, &info)?;
        if info.version != start.key_version || info.threshold != start.threshold {
            return Err(Failure::new(
                ErrorCode::SessionStale,
                "key version or threshold differs from the announcement",
            ));
        }
        if start.participants.len() != info.threshold as usize + 1 {
            return Err(Failure::new(
                ErrorCode::InsufficientParticipants,
                "a presignature needs t+1 signers",
            ));
        }
        let ids = party_ids(&info.participant_peer_ids, &start.participants)?;
        let mut signers = ids.clone();
        signers.sort_unstable();
        self.refuse_banned(&wallet, info.version, &start.participants)?;
        let id = PresigId::parse(&start.request_id)
            .ok_or_else(|| Failure::new(ErrorCode::MessageFormat, "malformed presignature id"))?;
        if id.owner != start.coordinator || id.version != info.version || id.signers != signers {
            return Err(Failure::new(
                ErrorCode::MessageVerification,
                "presignature id does not match its announcement",
            ));
        }
        // Ids are never reused (a replayed announcement): refuse before the work, and the
        // create-only write below refuses a race.
        if self
            .store
            .presignature_ids(&wallet, id.as_str())
            .map_err(storage)?
            .iter()
            .any(|i| i == id.as_str())
        {
            return Err(Failure::new(
                ErrorCode::SessionDuplicate,
                format!("presignature {} exists already", id.as_str()),
            ));
        }
        // After the checks, so only a session that would run takes a token (and a refused one
        // evicts nothing).
        if start.coordinator != self.me() && !self.pool.admit_presign(&start.coordinator, Instant::now()) {
            self.metrics.presign.throttled.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(owner = %start.coordinator, wallet, "presign session over the owner's rate; refused");
            return Err(Failure::new(
                ErrorCode::ResourceExhausted,
                format!(
                    "{} starts presign sessions faster than {} per second (burst {}); refused",
                    start.coordinator,
                    PRESIGN_REFILL_PER_SEC,
                    self.pool.burst()
                ),
            ));
        }
        // An owner that lost track of its copies leaves ours behind: keep a bounded number.
        let held = self
            .store
            .presignature_ids(&wallet, &PresigId::prefix(info.version, &id.owner))
            .map_err(storage)?;
        let held = PresigId::owned_by(held, info.version, &id.owner);
        if held.len() >= MAX_HELD_PER_OWNER {
            for old in &held[..=held.len() - MAX_HELD_PER_OWNER] {
                self.store.delete_presignature(&wallet, old.as_str()).map_err(storage)?;
            }
        }
        let me = party_ids(&info.participant_peer_ids, &[self.me().to_owned()])?[0];
        let spec = self.spec(session, &start.participants, &ids, me);
        let share = self.load_share(
            KeyType::Secp256k1,
            &wallet,
            info.version,
            mpcium_tss::ecdsa::KeyShare::from_bytes,
        )?;
        let proto = mpcium_tss::ecdsa::Presign::new(ExecutionId(session), &share, &signers, None)
            .map_err(Failure::because(ErrorCode::SigningFailure))?;
        let presignature = self.run_dkls(&wallet, info.version, inbox, &spec, proto).await?;
        let bytes = presignature.to_bytes().map_err(Failure::because(ErrorCode::KeyEncoding))?;
        self.store.put_presignature(&wallet, id.as_str(), &bytes).map_err(|e| match e {
            // A replayed announcement must not overwrite the presignature made first.
            mpcium_store::StoreError::PresignatureExists { .. } => {
                Failure::new(ErrorCode::SessionDuplicate, e.to_string())
            }
            e => Failure::new(ErrorCode::StorageWrite, e.to_string()),
        })?;
        Ok(Output::Presignature { id: id.as_str().to_owned() })
    }

    /// Who may make this node take part in a presign session: the owner (coordinator) must hold
    /// the wallet's key and sign with it, this node must hold it, and the wallet must be warm
    /// here (see [`crate::presign`]).
    fn authorize_presign(&self, start: &SessionStart, wallet: &str, info: &KeyInfo) -> Result<(), Failure> {
        let holds = |node: &str| info.participant_peer_ids.iter().any(|p| p == node);
        if !holds(&start.coordinator) || !start.participants.contains(&start.coordinator) {
            return Err(Failure::new(
                ErrorCode::ParticipantNotFound,
                format!("presign owner {} is not a signer holding wallet {wallet}", start.coordinator),
            ));
        }
        if !holds(self.me()) {
            return Err(Failure::new(
                ErrorCode::ParticipantNotFound,
                format!("{} holds no share of wallet {wallet}", self.me()),
            ));
        }
        if !self.pool.is_warm(wallet) {
            self.metrics.presign.refused_not_warm.fetch_add(1, Ordering::Relaxed);
            return Err(Failure::new(
                ErrorCode::InvalidSessionType,
                format!("wallet {wallet} is not kept warm on {}: no presign sessions for it", self.me()),
            ));
        }
        Ok(())
    }

    /// Coordinate `req` with one of this node's presignatures whose signers are all ready.
    /// `None` when there is none (the caller signs in full).
    pub(super) async fn sign_with_presignature(
        &self,
        req: &Verified<SignTxRequest>,
        body: &[u8],
        client: Option<&ClientId>,
        delivery: &str,
        info: &KeyInfo,
        eligible: &quorum::Eligible,
    ) -> Option<Attempt> {
        if !self.pool.enabled() {
            return None;
        }
        let mut committee = info.participant_peer_ids.clone();
        committee.sort();
        let prefix = PresigId::prefix(info.version, self.me());
        let ids = match self.store.presignature_ids(&req.wallet_id, &prefix) {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list presignatures");
                return None;
            }
        };
        let node_of = |p: PartyId| committee.get(usize::from(p).checked_sub(1)?).cloned();
        let chosen = PresigId::owned_by(ids, info.version, self.me()).into_iter().find(|id| {
            let nodes: Vec<String> = id.signers.iter().filter_map(|p| node_of(*p)).collect();
            nodes.len() == id.signers.len() && eligible.allows(&nodes) && self.pool.reserve(id.as_str())
        })?;
        let mut nodes: Vec<String> = chosen.signers.iter().filter_map(|p| node_of(*p)).collect();
        nodes.sort();
        let start = SessionStart {
            presignature: Some(chosen.as_str().to_owned()),
            ..self.signing_start(req, info, nodes, delivery, client, body)
        };
        // A co-signer absent at the start or during the session fails this attempt at once (the
        // presignature is spent either way: each signer takes its copy before the online round).
        // The coordinator's own part uses the request it verified and the key info it loaded when
        // it took the request (a participant checks and loads its own).
        let own = OwnRequest::Sign(req.clone(), Some(Box::new(info.clone())));
        let outcome = self.coordinate_watched(start, Some(own)).await;
        self.pool.release(chosen.as_str());
        Some(outcome)
    }

    /// This node's part of a signature with a presignature: take (and so delete, durably) its
    /// share of the presignature first, then run the online round.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn sign_online_part(
        &self,
        start: &SessionStart,
        req: &SignTxMessage,
        info: &KeyInfo,
        presignature: &str,
        signers: &[PartyId],
        me: PartyId,
        spec: &SessionSpec,
        inbox: &mut SessionInbox,
    ) -> Result<Output, Failure> {
        if req.key_type.as_str() != "secp256k1" || req.derivation_path.as_ref().is_some_and(|p| !p.is_empty())
        {
            return Err(Failure::new(
                ErrorCode::MsgValidation,
                "a presignature signs only with the secp256k1 master key",
            ));
        }
        let id = PresigId::parse(presignature)
            .ok_or_else(|| Failure::new(ErrorCode::MessageFormat, "malformed presignature id"))?;
        if id.owner != start.coordinator || id.version != info.version || id.signers != signers {
            return Err(Failure::new(
                ErrorCode::MessageVerification,
                "presignature id does not match its announcement",
            ));
        }
        let digest: [u8; 32] = req
            .tx
            .as_deref()
            .unwrap_or_default()
            .try_into()
            .map_err(|_| Failure::new(ErrorCode::MsgValidation, "tx must be 32 bytes"))?;
        let bytes = self
            .store
            .take_presignature(&req.wallet_id, presignature)
            .map_err(Failure::because(ErrorCode::StorageWrite))?
            .ok_or_else(|| {
                Failure::new(
                    ErrorCode::ResourceExhausted,
                    format!("presignature {presignature} is not available"),
                )
            })?;
        let presig = mpcium_tss::ecdsa::Presignature::from_bytes(&bytes)
            .map_err(Failure::because(ErrorCode::KeyDecoding))?;
        let expected_key =
            super::hex(&<mpcium_tss::curve::Secp256k1 as mpcium_tss::curve::Curve>::point_to_bytes(
                &presig.public_key().to_projective(),
            ));
        if presig.signers() != signers || presig.party_id() != me || info.public_key != expected_key {
            return Err(Failure::new(
                ErrorCode::DataCorruption,
                "stored presignature does not match this wallet's key and signers",
            ));
        }
        // Single use cluster-wide, not on one disk: a restored or copied store brings used
        // presignatures back, and one copy used for two messages gives the key away. The record
        // is written after the local copy is gone, so a failure here loses the presignature
        // (the coordinator signs in full), never reuses it.
        let session = super::hex(&spec.id);
        match self.registry.mark_presignature_used(self.me(), &req.wallet_id, presignature, &session).await {
            Ok(true) => self.pool.credit_presign(&id.owner, Instant::now()),
            Ok(false) => {
                self.metrics.presign.reuse_refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    wallet = %req.wallet_id,
                    presignature,
                    "presignature used before (a restored or copied store?); refused"
                );
                return Err(Failure::new(
                    ErrorCode::ResourceExhausted,
                    format!("presignature {presignature} was used before; refused"),
                ));
            }
            Err(e) => {
                return Err(Failure::new(
                    ErrorCode::ResourceExhausted,
                    format!("cannot record the use of presignature {presignature}: {e}"),
                ));
            }
        }
        let verifying_key = super::hex(&super::ecdsa_xy(&presig.public_key().to_projective()));
        let proto = mpcium_tss::ecdsa::SignOnline::new(ExecutionId(spec.id), presig, digest);
        let sig = self.run_dkls(&req.wallet_id, info.version, inbox, spec, proto).await?;
        Ok(Output::EcdsaSignature {
            r: super::hex(&sig.r),
            s: super::hex(&sig.s),
            v: sig.recovery_id,
            verifying_key,
        })
    }
}
