//! Signing: the coordinator's side (check the request, claim it, pick t+1 signers that no ban
//! keeps apart, use a presignature when it can) and a signer's part of the session.

use mpcium_api::{ClientId, ErrorCode, SignTxRequest, SigningResultEvent};
use mpcium_tss::{ExecutionId, KeyType};

use super::check::{OwnRequest, Verified};
use super::reselect::Attempt;
use super::{
    Failure, Output, Service, drawn_nonces, hex, hex_to, key_type_of, party_ids, quorum, share_kind,
};
use crate::control::{SessionOp, SessionStart, request_id};
use crate::nonces::HeldNonce;
use crate::registry::{Claim, KeyInfo};
use crate::session::SessionSpec;
use crate::session::run_protocol;
use crate::transport::SessionInbox;

/// How many times one signing request runs again because a member's NATS connection dropped.
const MAX_RECONNECT_RERUNS: u32 = 3;

/// A signing request's answer, and whether another try might change it.
pub(super) struct SignAnswer {
    pub(super) event: SigningResultEvent,
    /// A failure another delivery may not have ([`super::coordinator::is_transient`]): the
    /// intake gives the request back to JetStream instead of answering, while deliveries are
    /// left.
    pub(super) transient: bool,
}

impl From<SigningResultEvent> for SignAnswer {
    fn from(event: SigningResultEvent) -> Self {
        Self { event, transient: false }
    }
}

/// The key info of a signing request's wallet, read while the intake looked for a settled result
/// (before the request was verified: [`Service::sign`] uses it only for the verified request's
/// wallet and key type).
pub(super) struct PrefetchedKeyInfo {
    kind: KeyType,
    wallet: String,
    info: Result<KeyInfo, Failure>,
}

impl Service {
    /// Read the key info a signing request names, if it names a key type.
    pub(super) async fn prefetch_keyinfo(
        &self,
        msg: &mpcium_api::SignTxMessage,
    ) -> Option<PrefetchedKeyInfo> {
        let kind = key_type_of(&msg.key_type).ok()?;
        let info = self.load_keyinfo(kind, &msg.wallet_id).await;
        Some(PrefetchedKeyInfo { kind, wallet: msg.wallet_id.clone(), info })
    }

    pub(super) async fn coordinate_sign(
        &self,
        body: &[u8],
        client: Option<&ClientId>,
        delivery: &str,
        claim: &str,
        subject_token: &str,
        keyinfo: Option<PrefetchedKeyInfo>,
    ) -> SignAnswer {
        let req = match self.verify_sign(body) {
            Ok(r) => r,
            Err(err) => {
                let (req, f) = *err;
                // An unreadable request has no tx id: answer under the subject's token, so the
                // client can tell which request failed.
                let tx_id = if req.tx_id.is_empty() { subject_token } else { req.tx_id.as_str() };
                return SigningResultEvent::error(
                    &req.wallet_id,
                    tx_id,
                    &req.network_internal_code,
                    f.code,
                    &f.reason,
                )
                .into();
            }
        };
        super::audit::note_policy(req.policy().rules());
        let (wallet, tx_id, network) =
            (req.wallet_id.clone(), req.tx_id.clone(), req.network_internal_code.clone());
        let malformed = || {
            SigningResultEvent::error(
                &wallet,
                &tx_id,
                &network,
                ErrorCode::SignatureGeneration,
                "malformed signature from the participants",
            )
        };
        let (output, attestations) = match self.sign(req, body, client, delivery, claim, keyinfo).await {
            Ok(agreed) => (agreed.output, agreed.attestations),
            Err(f) => {
                let transient = super::coordinator::is_transient(&f);
                let event = SigningResultEvent::error(&wallet, &tx_id, &network, f.code, &f.reason);
                return SignAnswer { event, transient };
            }
        };
        let (mut event, verifying_key) = match output {
            Output::EcdsaSignature { r, s, v, verifying_key } => match (hex_to::<32>(&r), hex_to::<32>(&s)) {
                (Some(r), Some(s)) => {
                    (SigningResultEvent::ecdsa_success(&wallet, &tx_id, &network, &r, &s, v), verifying_key)
                }
                _ => return malformed().into(),
            },
            Output::EddsaSignature { signature, verifying_key } => match hex_to::<64>(&signature) {
                Some(sig) => {
                    (SigningResultEvent::eddsa_success(&wallet, &tx_id, &network, &sig), verifying_key)
                }
                None => return malformed().into(),
            },
            Output::TaprootSignature { signature, verifying_key } => match hex_to::<64>(&signature) {
                Some(sig) => {
                    (SigningResultEvent::taproot_success(&wallet, &tx_id, &network, &sig), verifying_key)
                }
                None => return malformed().into(),
            },
            _ => return malformed().into(),
        };
        event.verifying_key = super::hex_vec(&verifying_key);
        event.attestations = attestations;
        event.into()
    }

    pub(super) async fn sign(
        &self,
        req: Verified<SignTxRequest>,
        body: &[u8],
        client: Option<&ClientId>,
        delivery: &str,
        claim: &str,
        keyinfo: Option<PrefetchedKeyInfo>,
    ) -> Result<super::Agreed, Failure> {
        self.admit_request(SessionOp::Sign, &req.wallet_id, &request_id(&req.tx_id, delivery))?;
        let kind = key_type_of(&req.key_type)?;
        let info = match keyinfo {
            Some(p) if p.kind == kind && p.wallet == req.wallet_id => p.info?,
            _ => self.load_keyinfo(kind, &req.wallet_id).await?,
        };
        match self
            .registry
            .claim_request(&req.wallet_id, &req.tx_id, claim)
            .await
            .map_err(Failure::because(ErrorCode::StorageWrite))?
        {
            Claim::New | Claim::Same => {}
            Claim::Duplicate => {
                return Err(Failure::new(
                    ErrorCode::SessionDuplicate,
                    format!(
                        "duplicate signing request detected for walletID={} txID={}",
                        req.wallet_id, req.tx_id
                    ),
                ));
            }
        }
        // DKLs23 pairs that must not sign together (a ban after a failed OT check).
        let apart = if kind == KeyType::Secp256k1 {
            self.ban_conflicts(&req.wallet_id, info.version).await
        } else {
            Vec::new()
        };
        // Quorum re-selection (`service/reselect.rs`): an attempt that failed because a chosen
        // signer is absent runs again with other ready holders, within the request's deadline;
        // each node found absent stays out of this request's later attempts.
        // An attempt one of whose members lost its NATS connection meanwhile
        // (`ERROR_NETWORK_CONNECTION`: its messages may be lost; every member is alive) runs again
        // with the same choice, a few times; one that timed out with every member present, once.
        let until = tokio::time::Instant::now() + self.cfg.session_timeout;
        let mut excluded: Vec<String> = Vec::new();
        let mut reconnects = 0;
        let mut timed_out = false;
        // Each attempt is a new session: its request id (`<tx id>#<delivery>`) gets the
        // attempt's number, which a participant does not read (it reads the tx id and the
        // delivery's stream sequence).
        let mut attempt = 0u32;
        loop {
            let delivery = if attempt == 0 { delivery.to_owned() } else { format!("{delivery}.{attempt}") };
            attempt += 1;
            let outcome =
                self.sign_attempt(&req, body, client, &delivery, &info, kind, &apart, &excluded).await;
            let Err((f, gone)) = &outcome else { return outcome.map_err(|(f, _)| f) };
            let in_time = tokio::time::Instant::now() < until;
            let why =
                if f.code == ErrorCode::NetworkConnection && reconnects < MAX_RECONNECT_RERUNS && in_time {
                    reconnects += 1;
                    "a signer's NATS connection dropped; running the request again"
                } else if f.code == ErrorCode::SessionTimeout && gone.is_empty() && !timed_out {
                    // Every member alive and the session still timed out: messages were lost (a NATS
                    // server died under them). Once more, past the deadline if need be.
                    timed_out = true;
                    "a session timed out with every signer present; running the request again once"
                } else if gone.iter().any(|g| !excluded.contains(g)) && in_time {
                    excluded.extend(gone.iter().cloned());
                    "a signer is absent; running the request again with other signers"
                } else {
                    return outcome.map_err(|(f, _)| f);
                };
            tracing::warn!(wallet = %req.wallet_id, tx_id = %req.tx_id, absent = ?gone, reason = %f.reason, "{why}");
            self.metrics.reselections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// One attempt at a signature: t+1 ready holders not in `excluded` and not kept apart by a
    /// ban, with one of this node's presignatures when one fits, else in full.
    #[allow(clippy::too_many_arguments)]
    async fn sign_attempt(
        &self,
        req: &Verified<SignTxRequest>,
        body: &[u8],
        client: Option<&ClientId>,
        delivery: &str,
        info: &KeyInfo,
        kind: KeyType,
        apart: &[(String, String)],
        excluded: &[String],
    ) -> Attempt {
        let plain = |f: Failure| Err((f, Vec::new()));
        let ready: Vec<String> =
            self.transport.directory().ready().into_iter().filter(|n| !excluded.contains(n)).collect();
        let mut candidates: Vec<String> =
            info.participant_peer_ids.iter().filter(|p| ready.contains(p)).cloned().collect();
        candidates.sort();
        let need = info.threshold as usize + 1;
        if candidates.len() < need {
            return plain(Failure::new(
                ErrorCode::NotMajority,
                format!(
                    "{} of {} participants ready, {need} needed",
                    candidates.len(),
                    info.participant_peer_ids.len()
                ),
            ));
        }
        let eligible = quorum::Eligible { ready, apart: apart.to_vec() };
        let Some(signers) = quorum::pick_signers(&candidates, self.me(), &req.tx_id, need, &eligible.apart)
        else {
            return plain(Failure::new(
                ErrorCode::NotMajority,
                format!("no {need} ready participants without a ban between them"),
            ));
        };
        if kind == KeyType::Secp256k1 && req.derivation_path.as_ref().is_none_or(|p| p.is_empty()) {
            self.pool.note_signing(&req.wallet_id);
            let attempt = self.sign_with_presignature(req, body, client, delivery, info, &eligible).await;
            self.metrics.presign.count_use(matches!(attempt, Some(Ok(_))));
            match attempt {
                Some(Err((f, _))) if f.code == ErrorCode::ResourceExhausted => {
                    tracing::info!(reason = %f.reason, "presignature unusable; signing in full");
                }
                Some(outcome) => return outcome,
                None => {}
            }
        }
        if kind != KeyType::Secp256k1 {
            let attempt = self
                .sign_with_drawn_nonces(req, body, client, delivery, info, kind, &candidates, &eligible)
                .await;
            self.metrics.nonces.count(matches!(attempt, Some(Ok(_))));
            match attempt {
                // A nonce not held (or another stale value of the announcement): the full
                // protocol needs none of it.
                Some(Err((f, _))) if f.code == ErrorCode::SessionStale => {
                    tracing::info!(reason = %f.reason, "a nonce drawn ahead was refused; signing in full");
                }
                Some(outcome) => return outcome,
                None => {}
            }
        }
        let start = self.signing_start(req, info, signers, delivery, client, body);
        self.coordinate_watched(start, Some(OwnRequest::Sign(req.clone(), Some(Box::new(info.clone())))))
            .await
    }

    /// The start of a signing session this node coordinates for `req` (its delivery `delivery`)
    /// with `signers`, at the key version `info` describes. One round with drawn nonces and a
    /// presignature's online round add their own field to it.
    pub(super) fn signing_start(
        &self,
        req: &SignTxRequest,
        info: &KeyInfo,
        signers: Vec<String>,
        delivery: &str,
        client: Option<&ClientId>,
        body: &[u8],
    ) -> SessionStart {
        SessionStart::new(
            SessionOp::Sign,
            self.me(),
            signers,
            info.version,
            info.threshold,
            request_id(&req.tx_id, delivery),
        )
        .with_client_request(client, body)
    }

    /// A signer's part: sign, and once a signature at a key version succeeded, retire this
    /// node's shares of older versions (a reshare made them; the new version is now shown to
    /// work, and an old share must not outlive it: with t others' old shares it is the key).
    pub(super) async fn sign_part(
        &self,
        start: &SessionStart,
        req: &SignTxRequest,
        session: [u8; 32],
        inbox: &mut SessionInbox,
        info: KeyInfo,
    ) -> Result<Output, Failure> {
        let output = self.sign_with_share(start, req, session, inbox, info).await?;
        if let Ok(kind) = key_type_of(&req.key_type) {
            self.retire_old_shares(kind, &req.wallet_id, start.key_version);
        }
        Ok(output)
    }

    /// Delete this node's shares of `wallet` older than `version` (backups made before keep
    /// them: the delete is a change-log entry, earlier backup files are not rewritten).
    pub(super) fn retire_old_shares(&self, kind: KeyType, wallet: &str, version: u32) {
        let old = match self.store.share_versions(share_kind(kind), wallet) {
            Ok(versions) => versions.into_iter().filter(|v| *v < version).collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!(wallet, error = %e, "cannot list share versions");
                return;
            }
        };
        for v in old {
            match self.store.delete_share(share_kind(kind), wallet, v) {
                Ok(_) => tracing::info!(wallet, key_version = v, "old key share retired"),
                Err(e) => {
                    tracing::warn!(wallet, key_version = v, error = %e, "cannot retire an old key share")
                }
            }
        }
    }

    async fn sign_with_share(
        &self,
        start: &SessionStart,
        req: &SignTxRequest,
        session: [u8; 32],
        inbox: &mut SessionInbox,
        info: KeyInfo,
    ) -> Result<Output, Failure> {
        let kind = key_type_of(&req.key_type)?;
        if info.version != start.key_version || info.threshold != start.threshold {
            return Err(Failure::new(
                ErrorCode::SessionStale,
                "key version or threshold differs from the announcement",
            ));
        }
        let distinct = start.participants.windows(2).all(|w| w[0] < w[1]);
        if !distinct || start.participants.len() != info.threshold as usize + 1 {
            return Err(Failure::new(
                ErrorCode::InsufficientParticipants,
                "a signature needs exactly t+1 distinct holders",
            ));
        }
        if kind == KeyType::Secp256k1 {
            self.refuse_banned(&req.wallet_id, info.version, &start.participants)?;
        }
        let ids = party_ids(&info.participant_peer_ids, &start.participants)?;
        let me = party_ids(&info.participant_peer_ids, &[self.me().to_owned()])?[0];
        if kind == KeyType::Secp256k1 {
            self.pool.note_cosigning(&req.wallet_id); // warm here for others' presign sessions
        }
        let spec = self.spec(session, &start.participants, &ids, me);
        let mut signers = ids.clone();
        signers.sort_unstable();
        if let Some(id) = &start.presignature {
            return self.sign_online_part(start, req, &info, id, &signers, me, &spec, inbox).await;
        }
        // Taken before the protocol is built: a nonce named here is spent whatever happens next.
        let drawn = self.take_drawn_nonce(start, kind, &req.wallet_id, &info)?;
        let eid = ExecutionId(session);
        let tx = req.tx.clone().unwrap_or_default();
        let path = req.derivation_path.clone().unwrap_or_default();
        match kind {
            KeyType::Secp256k1 => {
                let share = self.load_share(
                    kind,
                    &req.wallet_id,
                    info.version,
                    mpcium_tss::ecdsa::KeyShare::from_bytes,
                )?;
                let digest: [u8; 32] = tx
                    .as_slice()
                    .try_into()
                    .map_err(|_| Failure::new(ErrorCode::MsgValidation, "tx must be 32 bytes"))?;
                let hd = (!path.is_empty())
                    .then_some(mpcium_tss::ecdsa::HdPath { chain_code: self.cfg.chain_code, path });
                let proto = mpcium_tss::ecdsa::Sign::new(eid, &share, &signers, digest, hd.as_ref())
                    .map_err(Failure::because(ErrorCode::SigningFailure))?;
                let key = match &hd {
                    None => share.public_key(),
                    Some(hd) => {
                        mpcium_tss::ecdsa::derive_child(&share.public_key(), &hd.chain_code, &hd.path)
                            .map_err(Failure::because(ErrorCode::SigningFailure))?
                            .0
                    }
                };
                let verifying_key = hex(&super::ecdsa_xy(&key.to_projective()));
                let sig = self.run_dkls(&req.wallet_id, info.version, inbox, &spec, proto).await?;
                Ok(Output::EcdsaSignature {
                    r: hex(&sig.r),
                    s: hex(&sig.s),
                    v: sig.recovery_id,
                    verifying_key,
                })
            }
            KeyType::Ed25519 => {
                let share = self.load_share(
                    kind,
                    &req.wallet_id,
                    info.version,
                    mpcium_tss::eddsa::KeyShare::from_bytes,
                )?;
                let (proto, verifying_key) = if path.is_empty() {
                    (mpcium_tss::eddsa::Sign::new(eid, &share, &signers, &tx), share.public_key_bytes())
                } else {
                    let child = mpcium_tss::eddsa::derive_child(
                        &share.public_key_bytes(),
                        &self.cfg.chain_code,
                        &path,
                    )
                    .map_err(Failure::because(ErrorCode::SigningFailure))?;
                    (mpcium_tss::eddsa::Sign::for_child(eid, &share, &signers, &tx, &child), child.public_key)
                };
                let proto = proto.map_err(Failure::because(ErrorCode::SigningFailure))?;
                let proto = drawn_nonces::with_drawn(proto, drawn, HeldNonce::into_ed25519)?;
                let sig = run_protocol(&self.transport, inbox, &spec, proto).await?;
                self.offer_nonces(start, session, kind, &req.wallet_id, || HeldNonce::draw_ed25519(&share));
                Ok(Output::EddsaSignature { signature: hex(&sig), verifying_key: hex(&verifying_key) })
            }
            KeyType::Taproot => {
                let share = self.load_share(
                    kind,
                    &req.wallet_id,
                    info.version,
                    mpcium_tss::taproot::KeyShare::from_bytes,
                )?;
                let output =
                    self.sign_taproot(req, &share, eid, &signers, &tx, &path, drawn, &spec, inbox).await?;
                self.offer_nonces(start, session, kind, &req.wallet_id, || HeldNonce::draw_taproot(&share));
                Ok(output)
            }
        }
    }

    /// A Taproot signature: BIP340 for the output key of the wallet's internal key P, or of its
    /// HD child at `path`, with the request's merkle root (BIP86 without one). Every value comes
    /// from the client's signed request; the output key is computed here, and the signature is
    /// checked under it before it is reported.
    #[allow(clippy::too_many_arguments)]
    async fn sign_taproot(
        &self,
        req: &SignTxRequest,
        share: &mpcium_tss::taproot::KeyShare,
        eid: ExecutionId,
        signers: &[mpcium_tss::PartyId],
        tx: &[u8],
        path: &[u32],
        drawn: Option<drawn_nonces::Drawn>,
        spec: &SessionSpec,
        inbox: &mut SessionInbox,
    ) -> Result<Output, Failure> {
        let root = req.merkle_root().map_err(|e| Failure::new(e.error_code(), e.to_string()))?;
        let chain_code = &self.cfg.chain_code;
        let (proto, internal) = if path.is_empty() {
            let proto = mpcium_tss::taproot::Sign::new(eid, share, signers, tx, root);
            (proto, share.x_only_public_key())
        } else {
            let child = mpcium_tss::taproot::derive_child(&share.public_key_bytes(), chain_code, path)
                .map_err(Failure::because(ErrorCode::SigningFailure))?;
            let proto = mpcium_tss::taproot::Sign::for_child(eid, share, signers, tx, root, &child);
            (proto, child.x_only)
        };
        let proto = proto.map_err(Failure::because(ErrorCode::SigningFailure))?;
        let proto = drawn_nonces::with_drawn(proto, drawn, HeldNonce::into_taproot)?;
        let output_key = mpcium_tss::taproot::output_key(&internal, root.as_ref())
            .map_err(Failure::because(ErrorCode::SigningFailure))?;
        let sig = run_protocol(&self.transport, inbox, spec, proto).await?;
        mpcium_tss::taproot::verify(&output_key, tx, &sig)
            .map_err(Failure::because(ErrorCode::SignatureVerification))?;
        Ok(Output::TaprootSignature { signature: hex(&sig), verifying_key: hex(&output_key) })
    }
}
