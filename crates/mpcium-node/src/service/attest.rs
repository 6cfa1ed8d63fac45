//! Result attestations (see `mpcium_api::attestation`): each participant signs the statement of
//! what it computed, with its node identity key, and sends the signature in its done report; the
//! coordinator keeps the signatures that verify and appends them to the result event. A client
//! that knows the nodes' keys then needs no trust in the coordinator that published the event.

use std::collections::BTreeMap;

use mpcium_api::attestation::{Attestation, Statement};
use mpcium_api::{ResharingMessage, SignTxMessage};

use super::{Output, Service, hex_vec};
use crate::control::{SessionOp, SessionStart};

/// The statement of `output` for the request announced in `start`, as signed bytes; `None` for
/// sessions no client reads (presignatures) or a request that does not decode (it was checked
/// before the run, so this does not happen for a session that produced an output).
pub(super) fn statement_bytes(start: &SessionStart, output: &Output) -> Option<Vec<u8>> {
    let body = start.request_bytes().ok()?;
    match (start.op, output) {
        (SessionOp::Keygen, Output::Keygen { ecdsa, eddsa, taproot }) => {
            let wallet = super::wallet_of(start);
            let (ecdsa, eddsa, taproot) = (hex_vec(ecdsa)?, hex_vec(eddsa)?, hex_vec(taproot)?);
            Some(
                Statement::Keygen {
                    wallet_id: &wallet,
                    ecdsa_pub_key: &ecdsa,
                    eddsa_pub_key: &eddsa,
                    taproot_pub_key: Some(&taproot),
                }
                .to_bytes(),
            )
        }
        (SessionOp::Sign, Output::EcdsaSignature { r, s, v, verifying_key }) => {
            let req = SignTxMessage::from_json(&body).ok()?;
            let mut signature = hex_vec(r)?;
            signature.extend(hex_vec(s)?);
            signature.push(*v);
            signing(&req, &hex_vec(verifying_key)?, &signature)
        }
        (SessionOp::Sign, Output::EddsaSignature { signature, verifying_key })
        | (SessionOp::Sign, Output::TaprootSignature { signature, verifying_key }) => {
            let req = SignTxMessage::from_json(&body).ok()?;
            signing(&req, &hex_vec(verifying_key)?, &hex_vec(signature)?)
        }
        (SessionOp::Reshare, Output::Reshare { public_key }) => {
            let req = ResharingMessage::from_json(&body).ok()?;
            let pub_key = hex_vec(public_key)?;
            Some(
                Statement::Reshare {
                    wallet_id: &req.wallet_id,
                    session_id: &req.session_id,
                    key_type: req.key_type.as_str(),
                    pub_key: &pub_key,
                    new_threshold: u32::try_from(req.new_threshold).ok()?,
                    new_committee: &start.new_participants,
                }
                .to_bytes(),
            )
        }
        _ => None,
    }
}

fn signing(req: &SignTxMessage, verifying_key: &[u8], signature: &[u8]) -> Option<Vec<u8>> {
    Some(
        Statement::Signing {
            wallet_id: &req.wallet_id,
            tx_id: &req.tx_id,
            key_type: req.key_type.as_str(),
            tx: req.tx.as_deref().unwrap_or_default(),
            verifying_key,
            signature,
        }
        .to_bytes(),
    )
}

impl Service {
    /// This node's attestation of `output` (empty when the session has none).
    pub(super) fn attest(&self, start: &SessionStart, output: &Output) -> String {
        statement_bytes(start, output)
            .map(|bytes| Attestation::new(self.me(), &self.transport.sign_statement(&bytes)).signature)
            .unwrap_or_default()
    }

    /// The attestations among `signatures` (node → base64 signature) that verify against the
    /// nodes' identity keys, with this node's own when `mine` (it computed the agreed output); a
    /// bad one is logged and left out (the client then sees fewer).
    pub(super) fn verified_attestations(
        &self,
        start: &SessionStart,
        output: &Output,
        signatures: BTreeMap<String, String>,
        mine: bool,
    ) -> Vec<Attestation> {
        let Some(bytes) = statement_bytes(start, output) else { return Vec::new() };
        let dir = self.transport.directory();
        let mut verified: BTreeMap<String, Attestation> = signatures
            .into_iter()
            .map(|(node_id, signature)| Attestation { node_id, signature })
            .filter(|a| {
                let ok = dir.identity(&a.node_id).is_some_and(|k| a.is_valid(&bytes, k));
                if !ok {
                    tracing::warn!(node = %a.node_id, "result attestation does not verify; left out");
                }
                ok
            })
            .map(|a| (a.node_id.clone(), a))
            .collect();
        if mine {
            let own = Attestation::new(self.me(), &self.transport.sign_statement(&bytes));
            verified.insert(self.me().to_owned(), own);
        }
        verified.into_values().collect()
    }
}
