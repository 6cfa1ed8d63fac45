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

    /// A keygen result: every known node vouches for its public keys (with the Taproot key when
    /// the event carries one).
    pub fn check_keygen(&self, event: &KeygenResultEvent) -> Result<(), TrustError> {
        let ecdsa = event.ecdsa_pub_key.as_deref().ok_or(TrustError::Incomplete("ecdsa_pub_key"))?;
        let eddsa = event.eddsa_pub_key.as_deref().ok_or(TrustError::Incomplete("eddsa_pub_key"))?;
        let statement = Statement::Keygen {
            wallet_id: &event.wallet_id,
            ecdsa_pub_key: ecdsa,
            eddsa_pub_key: eddsa,
            taproot_pub_key: event.taproot_pub_key.as_deref(),
        };
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
            "taproot" => {
                let sig = event.signature.as_deref().ok_or(TrustError::Incomplete("signature"))?;
                verify_bip340(key, tx, sig)?;
                sig.to_vec()
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

/// BIP340 under the x-only output key the nodes vouch for.
fn verify_bip340(key_x: &[u8], message: &[u8], sig: &[u8]) -> Result<(), TrustError> {
    if key_x.len() != 32 {
        return Err(TrustError::Incomplete("a 32-byte x-only verifying_key"));
    }
    let key = k256::schnorr::VerifyingKey::from_slice(key_x).map_err(|_| TrustError::BadSignature)?;
    let sig = k256::schnorr::Signature::from_slice(sig).map_err(|_| TrustError::BadSignature)?;
    key.verify_raw(message, &sig).map_err(|_| TrustError::BadSignature)
}

fn verify_eddsa(key: &[u8], message: &[u8], sig: &[u8]) -> Result<(), TrustError> {
    let key: [u8; 32] = key.try_into().map_err(|_| TrustError::Incomplete("a 32-byte verifying_key"))?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| TrustError::BadSignature)?;
    let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| TrustError::BadSignature)?;
    key.verify_strict(message, &sig).map_err(|_| TrustError::BadSignature)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer as _, SigningKey};
    use mpcium_api::attestation::Attestation;
    use mpcium_api::{EcdsaPublicKeyXY, KeyType};

    use super::*;

    fn nodes() -> (Vec<(String, SigningKey)>, ResultTrust) {
        let keys: Vec<(String, SigningKey)> =
            (1..=3u8).map(|i| (format!("node{i}"), SigningKey::from_bytes(&[i; 32]))).collect();
        let map = keys.iter().map(|(id, k)| (id.clone(), k.verifying_key())).collect();
        (keys, ResultTrust::new(map, 1))
    }

    fn attest(keys: &[(String, SigningKey)], statement: &Statement<'_>) -> Vec<Attestation> {
        keys.iter().map(|(id, k)| Attestation::new(id, &k.sign(&statement.to_bytes()).to_bytes())).collect()
    }

    #[test]
    fn a_taproot_signature_is_checked_with_bip340_under_the_attested_key() {
        let (keys, trust) = nodes();
        let signer = k256::schnorr::SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let q: [u8; 32] = signer.verifying_key().to_bytes().into();
        let sighash = [9u8; 32];
        let sig = signer.sign_raw(&sighash, &[0; 32]).unwrap().to_bytes();
        let request = SignTxMessage {
            key_type: KeyType::Taproot,
            wallet_id: "w".into(),
            tx_id: "t".into(),
            tx: Some(sighash.to_vec()),
            ..Default::default()
        };
        let statement = Statement::Signing {
            wallet_id: "w",
            tx_id: "t",
            key_type: "taproot",
            tx: &sighash,
            verifying_key: &q,
            signature: &sig,
        };
        let mut event = SigningResultEvent::taproot_success("w", "t", "", &sig);
        event.verifying_key = Some(q.to_vec());
        event.attestations = attest(&keys[..2], &statement);
        assert_eq!(trust.check_signing(&request, &event), Ok(()));
        // A signature over another sighash does not verify, whatever the attestations say.
        let mut other = request.clone();
        other.tx = Some(vec![8; 32]);
        assert_eq!(trust.check_signing(&other, &event), Err(TrustError::BadSignature));
        let mut bad = event.clone();
        bad.signature = Some(vec![0; 64]);
        assert_eq!(trust.check_signing(&request, &bad), Err(TrustError::BadSignature));
    }

    #[test]
    fn a_keygen_attestation_covers_the_taproot_key() {
        let (keys, trust) = nodes();
        let event = KeygenResultEvent::success("w", &EcdsaPublicKeyXY([1; 64]), &[2; 32])
            .with_taproot_pub_key(&[3; 32]);
        let statement = Statement::Keygen {
            wallet_id: "w",
            ecdsa_pub_key: &[1; 64],
            eddsa_pub_key: &[2; 32],
            taproot_pub_key: Some(&[3; 32]),
        };
        let mut event = event;
        event.attestations = attest(&keys, &statement);
        assert_eq!(trust.check_keygen(&event), Ok(()));
        // Another Taproot key in the event (a coordinator's substitution) is not vouched for.
        let mut swapped = event.clone();
        swapped.taproot_pub_key = Some(vec![4; 32]);
        assert!(matches!(trust.check_keygen(&swapped), Err(TrustError::Attestation(_))));
        // Nor is an event with the Taproot key left out.
        let mut stripped = event;
        stripped.taproot_pub_key = None;
        assert!(matches!(trust.check_keygen(&stripped), Err(TrustError::Attestation(_))));
    }
}
