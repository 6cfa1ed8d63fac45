//! Result attestations: the participants' own Ed25519 signatures over what a result event says.
//!
//! One node (the coordinator) publishes each result event, so without them a malicious
//! coordinator could publish a keygen result carrying *its own* public key. Every participant
//! that computed a result signs a [`Statement`] of it with its node identity key; the
//! coordinator appends the signatures to the event as the field `attestations` (absent from
//! the original's events; its Go and TypeScript clients ignore unknown fields). A client that
//! knows the nodes' identity keys checks them with [`verify`].
//!
//! The signed bytes (documented in `docs/result-attestations.md` for Go and TS users):
//! `"mpcium-result-attestation-v1"`, then the operation tag (`keygen`, `signing`, `reshare`),
//! then each field as a 4-byte big-endian length and its bytes, in the order of the variant.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The first bytes of every statement: no other signature a node makes starts with them.
pub const DOMAIN: &[u8] = b"mpcium-result-attestation-v1";

/// What a participant vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement<'a> {
    /// A new wallet's public keys (as the keygen event carries them). Keygen requests are
    /// named by their wallet id: it is the request id.
    Keygen {
        /// `wallet_id`.
        wallet_id: &'a str,
        /// `ecdsa_pub_key`: 64-byte X‖Y.
        ecdsa_pub_key: &'a [u8],
        /// `eddsa_pub_key`: 32 bytes.
        eddsa_pub_key: &'a [u8],
        /// `taproot_pub_key`: the 32-byte x-only internal key, when the event carries one (a
        /// fourth field then; without it the statement is the two-key one, byte for byte).
        taproot_pub_key: Option<&'a [u8]>,
    },
    /// A signature of a request's message under the key it verifies with.
    Signing {
        /// `wallet_id`.
        wallet_id: &'a str,
        /// `tx_id`: the request id.
        tx_id: &'a str,
        /// `key_type` of the request.
        key_type: &'a str,
        /// The request's `tx`: the message (ECDSA: its 32-byte digest).
        tx: &'a [u8],
        /// The key the signature verifies with: the wallet's key, or its HD child at the
        /// request's path (ECDSA 64-byte X‖Y, EdDSA 32 bytes, Taproot the x-only output key).
        verifying_key: &'a [u8],
        /// ECDSA: r ‖ s ‖ recovery id (65 bytes); EdDSA: R ‖ s (64 bytes); Taproot: the BIP340
        /// signature (64 bytes).
        signature: &'a [u8],
    },
    /// A reshared key, held now by the request's committee at its threshold.
    Reshare {
        /// `wallet_id`.
        wallet_id: &'a str,
        /// The reshare request's `session_id`.
        session_id: &'a str,
        /// `key_type`.
        key_type: &'a str,
        /// `pub_key`, unchanged by the reshare.
        pub_key: &'a [u8],
        /// `new_threshold`.
        new_threshold: u32,
        /// The new committee (node ids), in any order: signed sorted.
        new_committee: &'a [String],
    },
}

impl Statement<'_> {
    /// The bytes a participant signs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = DOMAIN.to_vec();
        let mut field = |bytes: &[u8]| push_field(&mut out, bytes);
        match self {
            Statement::Keygen { wallet_id, ecdsa_pub_key, eddsa_pub_key, taproot_pub_key } => {
                field(b"keygen");
                field(wallet_id.as_bytes());
                field(ecdsa_pub_key);
                field(eddsa_pub_key);
                if let Some(taproot) = taproot_pub_key {
                    field(taproot);
                }
            }
            Statement::Signing { wallet_id, tx_id, key_type, tx, verifying_key, signature } => {
                field(b"signing");
                field(wallet_id.as_bytes());
                field(tx_id.as_bytes());
                field(key_type.as_bytes());
                field(tx);
                field(verifying_key);
                field(signature);
            }
            Statement::Reshare { wallet_id, session_id, key_type, pub_key, new_threshold, new_committee } => {
                field(b"reshare");
                field(wallet_id.as_bytes());
                field(session_id.as_bytes());
                field(key_type.as_bytes());
                field(pub_key);
                field(&new_threshold.to_be_bytes());
                let mut committee: Vec<&str> = new_committee.iter().map(String::as_str).collect();
                committee.sort_unstable();
                committee.dedup();
                field(&(committee.len() as u32).to_be_bytes());
                for node in committee {
                    field(node.as_bytes());
                }
            }
        }
        out
    }
}

/// Append one field of a signed statement: its length (4 bytes, big-endian), then its bytes. The
/// node's other signed statements (key info) use the same encoding.
pub fn push_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// One participant's signature over a result's [`Statement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// The node id of the participant.
    pub node_id: String,
    /// Its Ed25519 signature over the statement's bytes, base64 (standard, padded, as Go
    /// encodes `[]byte`).
    pub signature: String,
}

impl Attestation {
    /// An attestation from a node's 64-byte signature.
    pub fn new(node_id: &str, signature: &[u8; 64]) -> Self {
        Self { node_id: node_id.to_owned(), signature: STANDARD.encode(signature) }
    }

    /// Whether `key` signed `statement` here.
    pub fn is_valid(&self, statement: &[u8], key: &VerifyingKey) -> bool {
        let Ok(bytes) = STANDARD.decode(&self.signature) else { return false };
        let Ok(signature) = Signature::from_slice(&bytes) else { return false };
        key.verify_strict(statement, &signature).is_ok()
    }
}

/// Which participants must have signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Required<'a> {
    /// Every one of these node ids (keygen: the whole cluster; reshare: the new committee).
    All(&'a [String]),
    /// At least this many distinct known nodes (signing: t + 1).
    AtLeast(usize),
}

/// Why a result's attestations do not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// A node that had to sign did not, or its signature does not verify.
    #[error("no valid attestation from {0:?}")]
    Missing(Vec<String>),
    /// Fewer distinct known nodes signed than required.
    #[error("{valid} valid attestations from known nodes, {required} required")]
    TooFew {
        /// Distinct known nodes whose signature verifies.
        valid: usize,
        /// The number required.
        required: usize,
    },
    /// A node that must sign is not among the keys the checker knows.
    #[error("node {0} is required to attest but its identity key is not known")]
    UnknownNode(String),
}

/// Check `attestations` of `statement` against the nodes' identity keys; returns the node ids
/// whose signatures verify. Attestations from unknown nodes or with bad signatures count for
/// nothing (one bad entry does not spoil the others).
pub fn verify(
    statement: &Statement<'_>,
    attestations: &[Attestation],
    keys: &BTreeMap<String, VerifyingKey>,
    required: &Required<'_>,
) -> Result<BTreeSet<String>, AttestationError> {
    let bytes = statement.to_bytes();
    let valid: BTreeSet<String> = attestations
        .iter()
        .filter(|a| keys.get(&a.node_id).is_some_and(|k| a.is_valid(&bytes, k)))
        .map(|a| a.node_id.clone())
        .collect();
    match required {
        Required::All(nodes) => {
            if let Some(unknown) = nodes.iter().find(|n| !keys.contains_key(*n)) {
                return Err(AttestationError::UnknownNode(unknown.clone()));
            }
            let missing: Vec<String> = nodes.iter().filter(|n| !valid.contains(*n)).cloned().collect();
            if !missing.is_empty() {
                return Err(AttestationError::Missing(missing));
            }
        }
        Required::AtLeast(n) => {
            if valid.len() < *n {
                return Err(AttestationError::TooFew { valid: valid.len(), required: *n });
            }
        }
    }
    Ok(valid)
}

/// The `attestations` member of an event as JSON (an array of `{"node_id","signature"}`).
pub(crate) fn to_json(attestations: &[Attestation]) -> String {
    serde_json::to_string(attestations).unwrap_or_else(|_| "[]".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn sign(node: &str, k: &SigningKey, s: &Statement<'_>) -> Attestation {
        Attestation::new(node, &k.sign(&s.to_bytes()).to_bytes())
    }

    #[test]
    fn statements_are_unambiguous_and_fixed() {
        let a = Statement::Keygen {
            wallet_id: "ab",
            ecdsa_pub_key: b"c",
            eddsa_pub_key: b"",
            taproot_pub_key: None,
        };
        let b = Statement::Keygen {
            wallet_id: "a",
            ecdsa_pub_key: b"bc",
            eddsa_pub_key: b"",
            taproot_pub_key: None,
        };
        assert_ne!(a.to_bytes(), b.to_bytes());
        // The exact bytes Go / TS users rebuild (docs/result-attestations.md).
        let mut expected = DOMAIN.to_vec();
        for f in [&b"keygen"[..], b"ab", b"c", b""] {
            expected.extend_from_slice(&(f.len() as u32).to_be_bytes());
            expected.extend_from_slice(f);
        }
        assert_eq!(a.to_bytes(), expected);
        // With a Taproot key: a fourth field, the rest unchanged.
        let with_taproot = Statement::Keygen {
            wallet_id: "ab",
            ecdsa_pub_key: b"c",
            eddsa_pub_key: b"",
            taproot_pub_key: Some(b"t"),
        };
        expected.extend_from_slice(&1u32.to_be_bytes());
        expected.extend_from_slice(b"t");
        assert_eq!(with_taproot.to_bytes(), expected);
        let c1 = vec!["n2".to_owned(), "n1".to_owned()];
        let c2 = vec!["n1".to_owned(), "n2".to_owned()];
        let r = |c| Statement::Reshare {
            wallet_id: "w",
            session_id: "s",
            key_type: "ed25519",
            pub_key: b"k",
            new_threshold: 1,
            new_committee: c,
        };
        assert_eq!(r(&c1).to_bytes(), r(&c2).to_bytes());
    }

    #[test]
    fn verify_counts_only_known_valid_signers() {
        let keys: BTreeMap<String, VerifyingKey> =
            (1..=3).map(|i| (format!("n{i}"), key(i).verifying_key())).collect();
        let s = Statement::Signing {
            wallet_id: "w",
            tx_id: "t",
            key_type: "ed25519",
            tx: b"m",
            verifying_key: &[1; 32],
            signature: &[2; 64],
        };
        let other = Statement::Signing {
            wallet_id: "w",
            tx_id: "t",
            key_type: "ed25519",
            tx: b"m",
            verifying_key: &[1; 32],
            signature: &[3; 64],
        };
        let good = vec![sign("n1", &key(1), &s), sign("n2", &key(2), &s)];
        assert_eq!(verify(&s, &good, &keys, &Required::AtLeast(2)).unwrap().len(), 2);
        // The same two signatures do not vouch for another signature.
        assert!(matches!(
            verify(&other, &good, &keys, &Required::AtLeast(1)),
            Err(AttestationError::TooFew { valid: 0, required: 1 })
        ));
        // A node signing twice, an unknown node, a wrong key: still one.
        let padded = vec![
            sign("n1", &key(1), &s),
            sign("n1", &key(1), &s),
            sign("n9", &key(9), &s),
            sign("n3", &key(4), &s),
        ];
        assert!(matches!(
            verify(&s, &padded, &keys, &Required::AtLeast(2)),
            Err(AttestationError::TooFew { valid: 1, required: 2 })
        ));
        let all = ["n1".to_owned(), "n2".to_owned(), "n3".to_owned()];
        assert_eq!(
            verify(&s, &good, &keys, &Required::All(&all)),
            Err(AttestationError::Missing(vec!["n3".to_owned()]))
        );
        let unknown = ["n1".to_owned(), "n7".to_owned()];
        assert_eq!(
            verify(&s, &good, &keys, &Required::All(&unknown)),
            Err(AttestationError::UnknownNode("n7".to_owned()))
        );
        let garbage = vec![Attestation { node_id: "n1".into(), signature: "not base64!".into() }];
        assert!(verify(&s, &garbage, &keys, &Required::AtLeast(1)).is_err());
    }
}
