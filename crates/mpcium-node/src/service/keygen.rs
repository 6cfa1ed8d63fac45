//! Keygen: one announcement per request makes the three keys of a wallet (ECDSA, EdDSA and
//! Taproot: three protocol runs side by side); each participant stores the three shares in one
//! create-only write, so a wallet gets all three keys or none, a retry after a failure starts
//! clean, and a replayed request can never overwrite a live share.

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
use crate::control::{SessionOp, SessionStart};
use crate::registry::KeyInfo;
use crate::session::run_protocol;

/// One curve's outcome of a keygen run on this node.
struct Made {
    kind: KeyType,
    share: zeroize::Zeroizing<Vec<u8>>,
    public_key_hex: String,
    info: KeyInfo,
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
        self.admit_request(SessionOp::Keygen, &req.wallet_id, &format!("{}#{delivery}", req.wallet_id))?;
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
        let start = SessionStart {
            op: SessionOp::Keygen,
            coordinator: self.me().to_owned(),
            request: String::new(),
            client_id: client.map(|c| c.as_str().to_owned()),
            participants: configured,
            new_participants: Vec::new(),
            key_version: 1,
            threshold: self.cfg.threshold,
            request_id: format!("{}#{delivery}", req.wallet_id),
            dealers: Vec::new(),
            presignature: None,
            old_key: None,
            nonces: Vec::new(),
        }
        .with_request(body);
        let agreed = self.coordinate_attested(start, Some(OwnRequest::Keygen(req))).await?;
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

    /// This node's part of a keygen: the three keys' runs side by side, then the three shares in
    /// one create-only write, then the key infos.
    pub(super) async fn keygen_part(
        &self,
        start: &SessionStart,
        checked: KeygenStart,
        session: [u8; 32],
    ) -> Result<Output, Failure> {
        let (ecdsa, eddsa, taproot) = tokio::join!(
            self.keygen_run(start, &checked, run_id(session, KeyType::Secp256k1), KeyType::Secp256k1),
            self.keygen_run(start, &checked, run_id(session, KeyType::Ed25519), KeyType::Ed25519),
            self.keygen_run(start, &checked, run_id(session, KeyType::Taproot), KeyType::Taproot),
        );
        let (ecdsa, eddsa, taproot) = (ecdsa?, eddsa?, taproot?);
        let wallet = checked.wallet.as_str();
        self.store
            .put_shares(&[
                (share_kind(ecdsa.kind), wallet, start.key_version, ecdsa.share.as_slice()),
                (share_kind(eddsa.kind), wallet, start.key_version, eddsa.share.as_slice()),
                (share_kind(taproot.kind), wallet, start.key_version, taproot.share.as_slice()),
            ])
            .map_err(|e| match e {
                mpcium_store::StoreError::RecordExists { .. } => {
                    Failure::new(ErrorCode::KeyAlreadyExists, format!("wallet {wallet} already exists"))
                }
                e => Failure::new(ErrorCode::KeySave, e.to_string()),
            })?;
        // The coordinator writes the key info once every holder signed it.
        for made in [&ecdsa, &eddsa, &taproot] {
            self.made_keyinfo(session, made.kind, wallet, &made.info);
        }
        tracing::info!(wallet, "keys generated");
        Ok(Output::Keygen {
            ecdsa: ecdsa.public_key_hex,
            eddsa: eddsa.public_key_hex,
            taproot: taproot.public_key_hex,
        })
    }

    async fn keygen_run(
        &self,
        start: &SessionStart,
        checked: &KeygenStart,
        run: [u8; 32],
        kind: KeyType,
    ) -> Result<Made, Failure> {
        let n = start.participants.len();
        let ids: Vec<PartyId> = (1..=n as PartyId).collect();
        let me = (checked.me_index + 1) as PartyId;
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
        let info = KeyInfo {
            participant_peer_ids: start.participants.clone(),
            threshold: start.threshold,
            version: start.key_version,
            public_key: public.0,
            public_shares: public.1,
            signatures: Default::default(),
            request: String::new(),
        };
        Ok(Made { kind, share, public_key_hex, info })
    }
}

/// The id of one key's protocol run inside a keygen announced as `session`.
pub(super) fn run_id(session: [u8; 32], kind: KeyType) -> [u8; 32] {
    ExecutionId(session).bind(b"keygen-run", &[kind.as_str().as_bytes()]).0
}
