//! Keygen: one announcement per request makes both keys of a wallet (two protocol runs, one
//! per curve, side by side); each participant stores both shares in one create-only write, so
//! a wallet gets both keys or neither, a retry after a failure starts clean, and a replayed
//! request can never overwrite a live share.

use mpcium_api::{ClientId, ErrorCode, GenerateKeyMessage, KeygenResultEvent};
use mpcium_tss::{ExecutionId, KeyType, PartyId};

use super::check::{KeygenStart, OwnRequest, Verified};
use super::{Failure, Output, Service, curve_name, hex, hex_to, old_key_hex, share_kind};
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
            Ok((ecdsa, eddsa, attestations)) => {
                let mut event = KeygenResultEvent::success(&wallet, &ecdsa, &eddsa);
                event.attestations = attestations;
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
    ) -> Result<(mpcium_api::EcdsaPublicKeyXY, [u8; 32], Vec<mpcium_api::Attestation>), Failure> {
        self.admit_request(SessionOp::Keygen, &req.wallet_id, &format!("{}#{delivery}", req.wallet_id))?;
        for kind in [KeyType::Secp256k1, KeyType::Ed25519] {
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
        }
        .with_request(body);
        let agreed = self.coordinate_attested(start, Some(OwnRequest::Keygen(req))).await?;
        let Output::Keygen { ecdsa, eddsa } = agreed.output else {
            return Err(Failure::new(
                ErrorCode::KeyGeneration,
                "participants reported another kind of result",
            ));
        };
        let ecdsa: [u8; 64] =
            hex_to(&ecdsa).ok_or_else(|| Failure::new(ErrorCode::KeyEncoding, "bad ECDSA key"))?;
        let eddsa: [u8; 32] =
            hex_to(&eddsa).ok_or_else(|| Failure::new(ErrorCode::KeyEncoding, "bad EdDSA key"))?;
        Ok((mpcium_api::EcdsaPublicKeyXY(ecdsa), eddsa, agreed.attestations))
    }

    /// This node's part of a keygen: both curves' runs side by side, then both shares in one
    /// create-only write, then the key info.
    pub(super) async fn keygen_part(
        &self,
        start: &SessionStart,
        checked: KeygenStart,
        session: [u8; 32],
    ) -> Result<Output, Failure> {
        let (ecdsa, eddsa) = tokio::join!(
            self.keygen_run(start, &checked, run_id(session, KeyType::Secp256k1), KeyType::Secp256k1),
            self.keygen_run(start, &checked, run_id(session, KeyType::Ed25519), KeyType::Ed25519),
        );
        let (ecdsa, eddsa) = (ecdsa?, eddsa?);
        let wallet = checked.wallet.as_str();
        self.store
            .put_shares(&[
                (share_kind(ecdsa.kind), wallet, start.key_version, ecdsa.share.as_slice()),
                (share_kind(eddsa.kind), wallet, start.key_version, eddsa.share.as_slice()),
            ])
            .map_err(|e| match e {
                mpcium_store::StoreError::RecordExists { .. } => {
                    Failure::new(ErrorCode::KeyAlreadyExists, format!("wallet {wallet} already exists"))
                }
                e => Failure::new(ErrorCode::KeySave, e.to_string()),
            })?;
        // The coordinator writes the key info once every holder signed it.
        for made in [&ecdsa, &eddsa] {
            self.made_keyinfo(session, made.kind, wallet, &made.info);
        }
        tracing::info!(wallet, "keys generated");
        Ok(Output::Keygen { ecdsa: ecdsa.public_key_hex, eddsa: eddsa.public_key_hex })
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

/// The id of one curve's protocol run inside a keygen announced as `session`.
pub(super) fn run_id(session: [u8; 32], kind: KeyType) -> [u8; 32] {
    ExecutionId(session).bind(b"keygen-run", &[kind.as_str().as_bytes()]).0
}
