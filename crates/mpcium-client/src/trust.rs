//! [`ResultTrust`]: checking a result event without trusting the node that published it.
//!
//! One node (the coordinator) publishes each result, so a malicious one could publish a keygen
//! result with its own public key, or a signature that is not the wallet's. Our nodes append
//! the participants' signatures (`attestations`, see `mpcium_api::attestation`); with a
//! `ResultTrust` the client requires them — keygen: every node it knows; signing: t + 1;
//! reshare: every member of the new committee — and verifies each signature against the key
//! the signers vouch for before returning it. A result that fails is
//! [`ClientError::Untrusted`](crate::ClientError::Untrusted), never a value.

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use mpcium_api::attestation::{self, Required, Statement};
use mpcium_api::{
    KeygenResultEvent, ResharingMessage, ResharingResultEvent, SignTxMessage, SigningResultEvent,
};

/// The nodes' identity keys and the threshold a client checks results against.
#[derive(Debug, Clone)]
pub struct ResultTrust {
    nodes: BTreeMap<String, VerifyingKey>,
    threshold: usize,
}

/// Why a result was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The participants' signatures do not vouch for the result.
    #[error("attestations: {0}")]
    Attestation(#[from] attestation::AttestationError),
    /// The signature does not verify under the key the participants vouch for.
    #[error("the signature does not verify under the attested key")]
    BadSignature,
    /// A field the check needs is missing or malformed.
    #[error("result lacks {0}")]
    Incomplete(&'static str),
}

impl ResultTrust {
    /// Trust results vouched for by these nodes (node id → Ed25519 identity key), at threshold
    /// `t` (a signature needs t + 1 of them).
    pub fn new(nodes: BTreeMap<String, VerifyingKey>, threshold: usize) -> Self {
        Self { nodes, threshold }
    }

    /// The nodes' keys from an identity directory (`<name>_identity.json` files, as
    /// `mpcium-cli generate-identity` writes them).
    pub fn from_identity_dir(dir: &Path, threshold: usize) -> Result<Self, mpcium_identity::IdentityError> {
        let nodes = mpcium_identity::load_peer_public_keys(dir)?
            .into_iter()
            .map(|(id, peer)| (id, peer.public_key))
            .collect();
        Ok(Self::new(nodes, threshold))
    }

    /// A keygen result: every known node vouches for both public keys.
    pub fn check_keygen(&self, event: &KeygenResultEvent) -> Result<(), TrustError> {
        let ecdsa = event.ecdsa_pub_key.as_deref().ok_or(TrustError::Incomplete("ecdsa_pub_key"))?;
        let eddsa = event.eddsa_pub_key.as_deref().ok_or(TrustError::Incomplete("eddsa_pub_key"))?;
        let statement =
            Statement::Keygen { wallet_id: &event.wallet_id, ecdsa_pub_key: ecdsa, eddsa_pub_key: eddsa };
        let all: Vec<String> = self.nodes.keys().cloned().collect();
        attestation::verify(&statement, &event.attestations, &self.nodes, &Required::All(&all))?;
        Ok(())
    }

    /// A signing result of `request`: t + 1 known nodes vouch for the signature and its key,
    /// and the signature verifies under that key.
    pub fn check_signing(
        &self,
        request: &SignTxMessage,
        event: &SigningResultEvent,
    ) -> Result<(), TrustError> {
        let key = event.verifying_key.as_deref().ok_or(TrustError::Incomplete("verifying_key"))?;
        let tx = request.tx.as_deref().unwrap_or_default();
        let signature = match request.key_type.as_str() {
            "secp256k1" => {
                let (r, s, v) = match (&event.r, &event.s, &event.signature_recovery) {
                    (Some(r), Some(s), Some(v)) if r.len() == 32 && s.len() == 32 && v.len() == 1 => {
                        (r, s, v[0])
                    }
                    _ => return Err(TrustError::Incomplete("r, s and signature_recovery")),
                };
                verify_ecdsa(key, tx, r, s)?;
                [r.as_slice(), s.as_slice(), &[v]].concat()
            }
            _ => {
                let sig = event.signature.as_deref().ok_or(TrustError::Incomplete("signature"))?;
                verify_eddsa(key, tx, sig)?;
                sig.to_vec()
            }
        };
        let statement = Statement::Signing {
            wallet_id: &request.wallet_id,
            tx_id: &request.tx_id,
            key_type: request.key_type.as_str(),
            tx,
            verifying_key: key,
            signature: &signature,
        };
        attestation::verify(
            &statement,
            &event.attestations,
            &self.nodes,
            &Required::AtLeast(self.threshold + 1),
        )?;
        Ok(())
    }

    /// A reshare result of `request`: every member of the new committee vouches for it.
    pub fn check_reshare(
        &self,
        request: &ResharingMessage,
        event: &ResharingResultEvent,
    ) -> Result<(), TrustError> {
        let pub_key = event.pub_key.as_deref().ok_or(TrustError::Incomplete("pub_key"))?;
        let committee = request.node_ids.clone().unwrap_or_default();
        let statement = Statement::Reshare {
            wallet_id: &request.wallet_id,
            session_id: &request.session_id,
            key_type: request.key_type.as_str(),
            pub_key,
            new_threshold: u32::try_from(request.new_threshold)
                .map_err(|_| TrustError::Incomplete("new_threshold"))?,
            new_committee: &committee,
        };
        attestation::verify(&statement, &event.attestations, &self.nodes, &Required::All(&committee))?;
        Ok(())
    }
}

fn verify_ecdsa(key_xy: &[u8], digest: &[u8], r: &[u8], s: &[u8]) -> Result<(), TrustError> {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    if key_xy.len() != 64 {
        return Err(TrustError::Incomplete("a 64-byte verifying_key"));
    }
    let sec1 = [&[0x04u8][..], key_xy].concat();
    let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| TrustError::BadSignature)?;
    let sig = k256::ecdsa::Signature::from_slice(&[r, s].concat()).map_err(|_| TrustError::BadSignature)?;
    key.verify_prehash(digest, &sig).map_err(|_| TrustError::BadSignature)
}

fn verify_eddsa(key: &[u8], message: &[u8], sig: &[u8]) -> Result<(), TrustError> {
    let key: [u8; 32] = key.try_into().map_err(|_| TrustError::Incomplete("a 32-byte verifying_key"))?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| TrustError::BadSignature)?;
    let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| TrustError::BadSignature)?;
    key.verify_strict(message, &sig).map_err(|_| TrustError::BadSignature)
}
