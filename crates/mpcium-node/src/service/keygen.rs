//! Keygen: one announcement per request makes the three keys of a wallet (ECDSA, EdDSA and
//! Taproot: three protocol runs side by side); each participant stores the three shares in one
//! create-only write, so a wallet gets all three keys or none, a retry after a failure starts
//! clean, and a replayed request can never overwrite a live share.

use std::sync::atomic::Ordering;

use mpcium_api::{ClientId, ErrorCode, GenerateKeyMessage, KeygenResultEvent};
use mpcium_tss::{ExecutionId, KeyType, PartyId};

use super::check::{KeygenStart, OwnRequest, Verified};
use super::{Failure, Output, Service, curve_name, hex, hex_to, old_key_hex, share_kind};

/// The keys one keygen request makes, in the order they are stored and reported.
pub(super) const KEYGEN_KINDS: [KeyType; 3] = [KeyType::Secp256k1, KeyType::Ed25519, KeyType::Taproot];

/// The public keys of a new wallet, as its keygen event carries them.
struct NewKeys {
    ecdsa: mpcium_api::EcdsaPublicKeyXY,
    eddsa: [u8; 32],
    taproot: [u8; 32],
    attestations: Vec<mpcium_api::Attestation>,
}
use crate::control::{SessionOp, SessionStart, request_id};
use crate::registry::KeyInfo;
use crate::session::run_protocol;

/// One curve's outcome of a keygen run on this node.
pub(super) struct Made {
    pub kind: KeyType,
    pub share: zeroize::Zeroizing<Vec<u8>>,
    pub public_key_hex: String,
    pub info: KeyInfo,
}

impl Service {
    pub(super) async fn coordinate_keygen(
        &self,
        body: &[u8],
        client: Option<&ClientId>,
        delivery: &str,
        subject_token: &str,
    ) -> KeygenResultEvent {
        let req = match self.verify_keygen(body) {
            Ok(r) => r,
            Err((wallet, f)) => {
                // An unreadable request has no wallet id, and an invalid one (`.`, `*`, `>`,
                // whitespace) cannot be a result subject token: answer under the token of the
                // subject the client published on.
                let wallet = match mpcium_api::ids::validate_token(mpcium_api::IdKind::WalletId, &wallet) {
                    Ok(()) => wallet,
                    Err(_) => subject_token.to_owned(),
                };
                return KeygenResultEvent::error(&wallet, f.code, &f.reason);
            }
        };
        let wallet = req.wallet_id.clone();
        match self.keygen(req, body, client, delivery).await {
            Ok(keys) => {
                let mut event = KeygenResultEvent::success(&wallet, &keys.ecdsa, &keys.eddsa)
                    .with_taproot_pub_key(&keys.taproot);
                event.attestations = keys.attestations;
                event
            }
            Err(f) => KeygenResultEvent::error(&wallet, f.code, &f.reason),
        }
    }

    async fn keygen(
        &self,
        req: Verified<GenerateKeyMessage>,
        body: &[u8],
        client: Option<&ClientId>,
        delivery: &str,
    ) -> Result<NewKeys, Failure> {
        self.admit_request(SessionOp::Keygen, &req.wallet_id, &request_id(&req.wallet_id, delivery))?;
        for kind in KEYGEN_KINDS {
            let exists = self
                .registry
                .keyinfo(curve_name(kind), &req.wallet_id)
                .await
                .map_err(Failure::because(ErrorCode::KeyInfoLoad))?;
            if exists.is_some() {
                return Err(Failure::new(
                    ErrorCode::KeyAlreadyExists,
                    format!("wallet {} already exists", req.wallet_id),
                ));
            }
        }
        let dir = self.transport.directory();
        let configured = dir.configured();
        let ready = dir.ready();
        if ready != configured {
            let missing: Vec<_> = configured.iter().filter(|n| !ready.contains(n)).collect();
            return Err(Failure::new(
                ErrorCode::ClusterNotReady,
                format!("not all peers are ready: missing {missing:?}"),
            ));
        }
        let start = SessionStart::new(
            SessionOp::Keygen,
            self.me(),
            configured,
            1,
            self.cfg.threshold,
            request_id(&req.wallet_id, delivery),
        )
        .with_client_request(client, body);
        // A key made ahead when there is one (`service/keypool.rs`); its DKGs otherwise, and also
        // when a member did not have the pooled key to hand over (nothing is stored anywhere
        // then: the members agree before any of them stores the wallet).
        let agreed = match self.reserve_pooled_key() {
            Some(pooled) => {
                let handed = SessionStart { pooled_key: Some(pooled.clone()), ..start.clone() };
                let outcome = self.coordinate_attested(handed, Some(OwnRequest::Keygen(req.clone()))).await;
                self.key_pool.release(&pooled);
                match outcome {
                    Ok(agreed) => {
                        self.metrics.key_pool.used.fetch_add(1, Ordering::Relaxed);
                        agreed
                    }
                    Err(f) => {
                        // Spent or not held everywhere: never offered again.
                        self.drop_pooled_key(&pooled);
                        if !pooled_key_was_the_problem(&f) {
                            return Err(f);
                        }
                        tracing::warn!(
                            wallet = %req.wallet_id,
                            pooled,
                            code = %f.code.as_str(),
                            reason = %f.reason,
                            "a pooled key could not be handed over; running the keygen's DKGs"
                        );
                        self.metrics.key_pool.missed.fetch_add(1, Ordering::Relaxed);
                        self.coordinate_attested(start, Some(OwnRequest::Keygen(req))).await?
                    }
                }
            }
            None => {
                if self.key_pool.enabled() {
                    self.metrics.key_pool.missed.fetch_add(1, Ordering::Relaxed);
                }
                self.coordinate_attested(start, Some(OwnRequest::Keygen(req))).await?
            }
        };
        let Output::Keygen { ecdsa, eddsa, taproot } = agreed.output else {
            return Err(Failure::new(
                ErrorCode::KeyGeneration,
                "participants reported another kind of result",
            ));
        };
        let ecdsa: [u8; 64] =
            hex_to(&ecdsa).ok_or_else(|| Failure::new(ErrorCode::KeyEncoding, "bad ECDSA key"))?;
        let eddsa: [u8; 32] =
            hex_to(&eddsa).ok_or_else(|| Failure::new(ErrorCode::KeyEncoding, "bad EdDSA key"))?;
        let taproot: [u8; 32] =
            hex_to(&taproot).ok_or_else(|| Failure::new(ErrorCode::KeyEncoding, "bad Taproot key"))?;
        Ok(NewKeys {
            ecdsa: mpcium_api::EcdsaPublicKeyXY(ecdsa),
            eddsa,
            taproot,
            attestations: agreed.attestations,
        })
    }

    /// This node's part of a keygen: the three keys' runs side by side (or the key made ahead
    /// that the announcement names), then the three shares in one create-only write, then the
    /// key infos.
    pub(super) async fn keygen_part(
        &self,
        start: &SessionStart,
        checked: KeygenStart,
        session: [u8; 32],
    ) -> Result<Output, Failure> {
        let wallet = checked.wallet.as_str();
        let made = match &start.pooled_key {
            Some(pooled) => self.hand_over_pooled_key(start, &checked, session, pooled).await?,
            None => {
                let made = self.keygen_runs(start, checked.me_index, session).await?;
                let [ecdsa, eddsa, taproot] = &made;
                self.store
                    .put_shares(&[
                        (share_kind(ecdsa.kind), wallet, start.key_version, ecdsa.share.as_slice()),
                        (share_kind(eddsa.kind), wallet, start.key_version, eddsa.share.as_slice()),
                        (share_kind(taproot.kind), wallet, start.key_version, taproot.share.as_slice()),
                    ])
                    .map_err(|e| key_save(wallet, e))?;
                made
            }
        };
        // The coordinator writes the key info once every holder signed it.
        for m in &made {
            self.made_keyinfo(session, m.kind, wallet, &m.info);
        }
        tracing::info!(wallet, pooled = start.pooled_key.as_deref(), "keys generated");
        Ok(made_output(made))
    }

    /// The three keys' DKGs side by side (a wallet's keygen, or a key made ahead).
    pub(super) async fn keygen_runs(
        &self,
        start: &SessionStart,
        me_index: usize,
        session: [u8; 32],
    ) -> Result<[Made; 3], Failure> {
        let (ecdsa, eddsa, taproot) = tokio::join!(
            self.keygen_run(start, me_index, run_id(session, KeyType::Secp256k1), KeyType::Secp256k1),
            self.keygen_run(start, me_index, run_id(session, KeyType::Ed25519), KeyType::Ed25519),
            self.keygen_run(start, me_index, run_id(session, KeyType::Taproot), KeyType::Taproot),
        );
        Ok([ecdsa?, eddsa?, taproot?])
    }

    async fn keygen_run(
        &self,
        start: &SessionStart,
        me_index: usize,
        run: [u8; 32],
        kind: KeyType,
    ) -> Result<Made, Failure> {
        let n = start.participants.len();
        let ids: Vec<PartyId> = (1..=n as PartyId).collect();
        let me = (me_index + 1) as PartyId;
        let t = u16::try_from(start.threshold)
            .map_err(|_| Failure::new(ErrorCode::InvalidThreshold, "threshold"))?;
        let mut inbox = self.transport.open_session(run);
        let spec = self.spec(run, &start.participants, &ids, me);
        let eid = ExecutionId(run);
        let (share, public_key_hex, public) = match kind {
            KeyType::Secp256k1 => {
                let proto = mpcium_tss::ecdsa::Keygen::new(eid, me, t, n as u16)
                    .map_err(Failure::because(ErrorCode::KeyGeneration))?;
                let share = run_protocol(&self.transport, &mut inbox, &spec, proto).await?;
                let bytes = share.to_bytes().map_err(Failure::because(ErrorCode::KeyEncoding))?;
                (bytes, hex(&share.public_key_xy()), old_key_hex(&share.old_key()))
            }
            KeyType::Ed25519 => {
                let proto = mpcium_tss::eddsa::Keygen::new(eid, me, &ids, t)
                    .map_err(Failure::because(ErrorCode::KeyGeneration))?;
                let share = run_protocol(&self.transport, &mut inbox, &spec, proto).await?;
                let bytes = share.to_bytes().map_err(Failure::because(ErrorCode::KeyEncoding))?;
                (bytes, hex(&share.public_key_bytes()), old_key_hex(&share.old_key()))
            }
            KeyType::Taproot => {
                let proto = mpcium_tss::taproot::Keygen::new(eid, me, &ids, t)
                    .map_err(Failure::because(ErrorCode::KeyGeneration))?;
                let share = run_protocol(&self.transport, &mut inbox, &spec, proto).await?;
                let bytes = share.to_bytes().map_err(Failure::because(ErrorCode::KeyEncoding))?;
                // Clients get the x-only internal key (BIP340); the key info keeps the full point.
                (bytes, hex(&share.x_only_public_key()), old_key_hex(&share.old_key()))
            }
        };
        let info = key_info(&start.participants, start.threshold, start.key_version, public);
        Ok(Made { kind, share, public_key_hex, info })
    }
}

/// One key's outcome from its stored share (a key made ahead): parsed for its public data.
pub(super) fn made_from_share(
    kind: KeyType,
    share: zeroize::Zeroizing<Vec<u8>>,
    participants: &[String],
    threshold: u32,
    version: u32,
) -> Result<Made, Failure> {
    let (public_key_hex, public) = match kind {
        KeyType::Secp256k1 => {
            let k = mpcium_tss::ecdsa::KeyShare::from_bytes(&share)
                .map_err(Failure::because(ErrorCode::KeyDecoding))?;
            (hex(&k.public_key_xy()), old_key_hex(&k.old_key()))
        }
        KeyType::Ed25519 => {
            let k = mpcium_tss::eddsa::KeyShare::from_bytes(&share)
                .map_err(Failure::because(ErrorCode::KeyDecoding))?;
            (hex(&k.public_key_bytes()), old_key_hex(&k.old_key()))
        }
        KeyType::Taproot => {
            let k = mpcium_tss::taproot::KeyShare::from_bytes(&share)
                .map_err(Failure::because(ErrorCode::KeyDecoding))?;
            (hex(&k.x_only_public_key()), old_key_hex(&k.old_key()))
        }
    };
    let info = key_info(participants, threshold, version, public);
    Ok(Made { kind, share, public_key_hex, info })
}

/// A new key's key info, not signed yet.
fn key_info(
    participants: &[String],
    threshold: u32,
    version: u32,
    (public_key, public_shares): (String, std::collections::BTreeMap<u16, String>),
) -> KeyInfo {
    KeyInfo {
        participant_peer_ids: participants.to_vec(),
        threshold,
        version,
        public_key,
        public_shares,
        signatures: Default::default(),
        request: String::new(),
    }
}

/// A keygen's output from its three keys.
pub(super) fn made_output(made: [Made; 3]) -> Output {
    let [ecdsa, eddsa, taproot] = made;
    Output::Keygen {
        ecdsa: ecdsa.public_key_hex,
        eddsa: eddsa.public_key_hex,
        taproot: taproot.public_key_hex,
    }
}

/// A failed create-only write of a wallet's shares.
pub(super) fn key_save(wallet: &str, e: mpcium_store::StoreError) -> Failure {
    match e {
        mpcium_store::StoreError::RecordExists { .. } => {
            Failure::new(ErrorCode::KeyAlreadyExists, format!("wallet {wallet} already exists"))
        }
        e => Failure::new(ErrorCode::KeySave, e.to_string()),
    }
}

/// Whether a keygen that handed over a pooled key failed because of that key (a member does not
/// hold it, holds it for another committee, cannot read it, or handed it over before): the
/// keygen then runs its DKGs. Any other failure (the request, the cluster, a member's check) is
/// the keygen's answer, as it would be without the pool.
fn pooled_key_was_the_problem(f: &Failure) -> bool {
    matches!(
        f.code,
        ErrorCode::KeyNotFound
            | ErrorCode::SessionStale
            | ErrorCode::SessionDuplicate
            | ErrorCode::KeyDecoding
            | ErrorCode::StorageRead
    )
}

/// The id of one key's protocol run inside a keygen announced as `session`.
pub(super) fn run_id(session: [u8; 32], kind: KeyType) -> [u8; 32] {
    ExecutionId(session).bind(b"keygen-run", &[kind.as_str().as_bytes()]).0
}
