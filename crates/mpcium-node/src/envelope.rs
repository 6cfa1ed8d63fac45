//! The node-to-node message format.
//!
//! Every message between nodes is an [`Envelope`]: a header (kind, session, sender,
//! recipients, sequence number), a payload, and the sender's Ed25519 signature over the SHA-256
//! digest of a domain tag and all of it. A private payload is sealed with XChaCha20-Poly1305 under the pair key of sender
//! and recipient, with the encoded header as associated data, and a random 24-byte nonce (so a
//! nonce never repeats, also across restarts). Receivers reject a message whose signature, session,
//! recipients or sequence number is not what they expect: the original signed neither the session
//! nor the recipients of its broadcasts, and did not sign p2p messages at all (docs/wire.md §13).
//!
//! Encoding (all integers big-endian):
//! `magic "MPE1" | kind u8 | session [32] | sender (u8 len ‖ bytes) | recipients (u8 count, each
//! u8 len ‖ bytes) | seq u32 | payload (u32 len ‖ bytes) | signature [64]`.

use chacha20poly1305::XNonce;
use chacha20poly1305::aead::{Aead, Payload as Aad};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::pairkey::PairKey;

const MAGIC: &[u8; 4] = b"MPE1";
const SIGN_DOMAIN: &[u8] = b"mpcium-rs/envelope/v1";
const NONCE_LEN: usize = 24;
/// The largest payload an envelope may carry (a DKLs23 keygen message is ~100 KB).
pub const MAX_PAYLOAD: usize = 8 * 1024 * 1024;
/// The longest node id accepted in an envelope.
pub const MAX_ID_LEN: usize = 128;
/// The most recipients one envelope may name.
pub const MAX_RECIPIENTS: usize = 255;

/// A received payload: for a private message the opened plaintext, which carries a protocol's
/// secret shares. Wiped when dropped, and `Debug` prints only its length.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Payload(Vec<u8>);

impl Payload {
    /// Take the bytes out (for a consumer that owns them from now on, e.g. a protocol); the
    /// emptied payload has nothing left to wipe.
    pub fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl std::ops::Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload(<{} bytes>)", self.0.len())
    }
}

/// What an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A protocol message for every participant, in clear.
    Broadcast = 1,
    /// A protocol message for one participant, sealed with the pair key.
    Private = 2,
    /// A session control message (session start, echo of broadcasts, abort), in clear.
    Control = 3,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Broadcast),
            2 => Some(Self::Private),
            3 => Some(Self::Control),
            _ => None,
        }
    }
}

/// Why an envelope was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The bytes are not a well-formed envelope.
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
    /// The signature does not verify under the claimed sender's identity key.
    #[error("bad signature from {sender}")]
    BadSignature {
        /// The claimed sender.
        sender: String,
    },
    /// A private payload failed to decrypt (wrong key, tampered, or not for us).
    #[error("cannot open private payload from {sender}")]
    Undecryptable {
        /// The claimed sender.
        sender: String,
    },
    /// The envelope is not addressed the way its kind requires.
    #[error("wrong addressing: {0}")]
    Addressing(&'static str),
}

/// A decoded (not yet verified) envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// What it carries.
    pub kind: Kind,
    /// The session (protocol run) it belongs to.
    pub session: [u8; 32],
    /// The sending node's id.
    pub sender: String,
    /// The recipients' node ids; empty for a broadcast to all participants.
    pub recipients: Vec<String>,
    /// The sender's sequence number within the session (starts at 0, never repeats).
    pub seq: u32,
    /// The payload (sealed for [`Kind::Private`]).
    pub payload: Vec<u8>,
    /// The sender's signature.
    pub signature: [u8; 64],
}

impl Envelope {
    /// Build and sign a broadcast or control envelope.
    pub fn seal_public(
        kind: Kind,
        session: [u8; 32],
        sender: &str,
        seq: u32,
        payload: Vec<u8>,
        identity: &SigningKey,
    ) -> Result<Self, EnvelopeError> {
        if kind == Kind::Private {
            return Err(EnvelopeError::Addressing("a private message needs seal_private"));
        }
        let mut env = Self {
            kind,
            session,
            sender: sender.to_owned(),
            recipients: Vec::new(),
            seq,
            payload,
            signature: [0; 64],
        };
        env.check_limits()?;
        env.signature = identity.sign(&env.signed_bytes()).to_bytes();
        Ok(env)
    }

    /// Build, encrypt for `recipient` and sign a private envelope.
    pub fn seal_private(
        session: [u8; 32],
        sender: &str,
        recipient: &str,
        seq: u32,
        plaintext: &[u8],
        pair_key: &PairKey,
        identity: &SigningKey,
    ) -> Result<Self, EnvelopeError> {
        let mut env = Self {
            kind: Kind::Private,
            session,
            sender: sender.to_owned(),
            recipients: vec![recipient.to_owned()],
            seq,
            payload: Vec::new(),
            signature: [0; 64],
        };
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = env.header_bytes();
        let cipher = pair_key.cipher();
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), Aad { msg: plaintext, aad: &aad })
            .map_err(|_| EnvelopeError::Malformed("payload too large to seal"))?;
        env.payload = [nonce.as_slice(), &sealed].concat();
        env.check_limits()?;
        env.signature = identity.sign(&env.signed_bytes()).to_bytes();
        Ok(env)
    }

    /// Check the signature against the sender's identity key.
    pub fn verify(&self, sender_key: &VerifyingKey) -> Result<(), EnvelopeError> {
        sender_key
            .verify_strict(&self.signed_bytes(), &Signature::from_bytes(&self.signature))
            .map_err(|_| EnvelopeError::BadSignature { sender: self.sender.clone() })
    }

    /// Decrypt a private payload addressed to `me` (verify the signature first).
    pub fn open(&self, me: &str, pair_key: &PairKey) -> Result<Payload, EnvelopeError> {
        if self.kind != Kind::Private {
            return Err(EnvelopeError::Addressing("not a private message"));
        }
        if self.recipients.len() != 1 || self.recipients[0] != me {
            return Err(EnvelopeError::Addressing("private message for another node"));
        }
        if self.payload.len() < NONCE_LEN {
            return Err(EnvelopeError::Malformed("sealed payload shorter than its nonce"));
        }
        let (nonce, sealed) = self.payload.split_at(NONCE_LEN);
        let aad = self.header_bytes();
        pair_key
            .cipher()
            .decrypt(XNonce::from_slice(nonce), Aad { msg: sealed, aad: &aad })
            .map(Payload::from)
            .map_err(|_| EnvelopeError::Undecryptable { sender: self.sender.clone() })
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signed_body();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parse wire bytes (checks structure and limits only; call [`verify`](Self::verify)).
    /// The sender an encoded envelope claims, read from its header without decoding or
    /// verifying the rest (unauthenticated: for cheap per-peer accounting before the signature
    /// check). `None` when the header is malformed.
    pub fn claimed_sender(bytes: &[u8]) -> Option<&str> {
        let header = bytes.get(..MAGIC.len() + 1 + 32 + 1)?;
        if !header.starts_with(MAGIC) {
            return None;
        }
        let len = usize::from(*header.last()?);
        if len == 0 || len > MAX_ID_LEN {
            return None;
        }
        std::str::from_utf8(bytes.get(header.len()..header.len() + len)?).ok()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let mut r = Reader(bytes);
        if r.take(4)? != MAGIC {
            return Err(EnvelopeError::Malformed("bad magic"));
        }
        let kind = Kind::from_u8(r.u8()?).ok_or(EnvelopeError::Malformed("unknown kind"))?;
        let session: [u8; 32] = r.take(32)?.try_into().map_err(|_| EnvelopeError::Malformed("session"))?;
        let sender = r.id()?;
        let count = r.u8()? as usize;
        let mut recipients = Vec::with_capacity(count);
        for _ in 0..count {
            recipients.push(r.id()?);
        }
        let seq = u32::from_be_bytes(r.take(4)?.try_into().map_err(|_| EnvelopeError::Malformed("seq"))?);
        let len =
            u32::from_be_bytes(r.take(4)?.try_into().map_err(|_| EnvelopeError::Malformed("len"))?) as usize;
        if len > MAX_PAYLOAD {
            return Err(EnvelopeError::Malformed("payload over the size limit"));
        }
        let payload = r.take(len)?.to_vec();
        let signature: [u8; 64] =
            r.take(64)?.try_into().map_err(|_| EnvelopeError::Malformed("signature"))?;
        if !r.0.is_empty() {
            return Err(EnvelopeError::Malformed("trailing bytes"));
        }
        let env = Self { kind, session, sender, recipients, seq, payload, signature };
        match env.kind {
            Kind::Private if env.recipients.len() != 1 => {
                Err(EnvelopeError::Addressing("a private message has exactly one recipient"))
            }
            Kind::Broadcast | Kind::Control if !env.recipients.is_empty() => {
                Err(EnvelopeError::Addressing("a broadcast names no recipients"))
            }
            _ => Ok(env),
        }
    }

    fn check_limits(&self) -> Result<(), EnvelopeError> {
        if self.payload.len() > MAX_PAYLOAD {
            return Err(EnvelopeError::Malformed("payload over the size limit"));
        }
        if self.recipients.len() > MAX_RECIPIENTS {
            return Err(EnvelopeError::Malformed("too many recipients"));
        }
        for id in std::iter::once(&self.sender).chain(&self.recipients) {
            if id.is_empty() || id.len() > MAX_ID_LEN {
                return Err(EnvelopeError::Malformed("node id empty or too long"));
            }
        }
        Ok(())
    }

    /// Everything but the payload and signature: the associated data of a sealed payload.
    fn header_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.sender.len());
        out.extend_from_slice(MAGIC);
        out.push(self.kind as u8);
        out.extend_from_slice(&self.session);
        put_id(&mut out, &self.sender);
        out.push(self.recipients.len() as u8);
        for r in &self.recipients {
            put_id(&mut out, r);
        }
        out.extend_from_slice(&self.seq.to_be_bytes());
        out
    }

    fn signed_body(&self) -> Vec<u8> {
        let mut out = self.header_bytes();
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// What the sender signs: `SHA-256(domain ‖ body)`. Signing a digest lets a receiver echo
    /// `(digest, signature)` of a broadcast to the other participants as self-authenticating
    /// evidence: two valid pairs for one `(session, sender, seq)` with different digests prove
    /// that the sender equivocated, and nobody can forge such a pair to frame an honest sender.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(SIGN_DOMAIN);
        h.update(self.signed_body());
        h.finalize().into()
    }

    fn signed_bytes(&self) -> [u8; 32] {
        self.digest()
    }
}

fn put_id(out: &mut Vec<u8>, id: &str) {
    out.push(id.len() as u8);
    out.extend_from_slice(id.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
        if self.0.len() < n {
            return Err(EnvelopeError::Malformed("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, EnvelopeError> {
        Ok(self.take(1)?[0])
    }

    fn id(&mut self) -> Result<String, EnvelopeError> {
        let len = self.u8()? as usize;
        if len == 0 || len > MAX_ID_LEN {
            return Err(EnvelopeError::Malformed("node id empty or too long"));
        }
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| EnvelopeError::Malformed("node id not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairkey::ExchangeKey;

    fn identity() -> SigningKey {
        SigningKey::generate(&mut OsRng)
    }

    #[test]
    fn broadcast_round_trips_and_verifies() {
        let id = identity();
        let env =
            Envelope::seal_public(Kind::Broadcast, [7; 32], "node0", 3, b"hello".to_vec(), &id).unwrap();
        let back = Envelope::decode(&env.encode()).unwrap();
        assert_eq!(back, env);
        back.verify(&id.verifying_key()).unwrap();
        assert!(matches!(back.verify(&identity().verifying_key()), Err(EnvelopeError::BadSignature { .. })));
    }

    #[test]
    fn every_signed_field_is_bound() {
        let id = identity();
        let env =
            Envelope::seal_public(Kind::Broadcast, [7; 32], "node0", 3, b"hello".to_vec(), &id).unwrap();
        let vk = id.verifying_key();
        let mut changed = env.clone();
        changed.session[0] ^= 1;
        assert!(changed.verify(&vk).is_err(), "session");
        let mut changed = env.clone();
        changed.seq = 4;
        assert!(changed.verify(&vk).is_err(), "seq");
        let mut changed = env.clone();
        changed.sender = "node1".into();
        assert!(changed.verify(&vk).is_err(), "sender");
        let mut changed = env.clone();
        changed.kind = Kind::Control;
        assert!(changed.verify(&vk).is_err(), "kind");
        let mut changed = env;
        changed.payload.push(0);
        assert!(changed.verify(&vk).is_err(), "payload");
    }

    #[test]
    fn private_payload_is_sealed_for_the_recipient_only() {
        let (ida, xa, xb, xc) =
            (identity(), ExchangeKey::generate(), ExchangeKey::generate(), ExchangeKey::generate());
        let k_ab = xa.pair_key("a", "b", &xb.public()).unwrap();
        let k_ba = xb.pair_key("b", "a", &xa.public()).unwrap();
        let env = Envelope::seal_private([1; 32], "a", "b", 0, b"secret share", &k_ab, &ida).unwrap();
        assert!(!env.payload.windows(12).any(|w| w == b"secret share"), "payload is encrypted");
        let back = Envelope::decode(&env.encode()).unwrap();
        back.verify(&ida.verifying_key()).unwrap();
        let opened = back.open("b", &k_ba).unwrap();
        assert_eq!(&opened[..], b"secret share");
        assert_eq!(format!("{opened:?}"), "Payload(<12 bytes>)", "Debug never prints the plaintext");
        assert_eq!(opened.into_vec(), b"secret share");
        assert!(matches!(back.open("c", &k_ba), Err(EnvelopeError::Addressing(_))));
        let k_cb = xc.pair_key("c", "b", &xb.public()).unwrap();
        assert!(matches!(back.open("b", &k_cb), Err(EnvelopeError::Undecryptable { .. })));
        // The header is associated data: moving the ciphertext to another session fails.
        let mut moved = back.clone();
        moved.session = [2; 32];
        assert!(matches!(moved.open("b", &k_ba), Err(EnvelopeError::Undecryptable { .. })));
    }

    #[test]
    fn two_seals_of_the_same_message_use_different_nonces() {
        let (ida, xa, xb) = (identity(), ExchangeKey::generate(), ExchangeKey::generate());
        let k = xa.pair_key("a", "b", &xb.public()).unwrap();
        let e1 = Envelope::seal_private([1; 32], "a", "b", 0, b"m", &k, &ida).unwrap();
        let e2 = Envelope::seal_private([1; 32], "a", "b", 0, b"m", &k, &ida).unwrap();
        assert_ne!(e1.payload[..NONCE_LEN], e2.payload[..NONCE_LEN]);
    }

    #[test]
    fn malformed_input_is_rejected_without_panic() {
        let id = identity();
        let good =
            Envelope::seal_public(Kind::Control, [0; 32], "n", 0, vec![1, 2, 3], &id).unwrap().encode();
        for cut in 0..good.len() {
            assert!(Envelope::decode(&good[..cut]).is_err(), "truncated at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(Envelope::decode(&trailing), Err(EnvelopeError::Malformed("trailing bytes")));
        let mut bad_kind = good.clone();
        bad_kind[4] = 9;
        assert_eq!(Envelope::decode(&bad_kind), Err(EnvelopeError::Malformed("unknown kind")));
        let mut huge = good[..4 + 1 + 32 + 2 + 1 + 4].to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(Envelope::decode(&huge), Err(EnvelopeError::Malformed("payload over the size limit")));
        // A broadcast that names a recipient is refused.
        let mut env = Envelope::seal_public(Kind::Broadcast, [0; 32], "n", 0, vec![], &id).unwrap();
        env.recipients.push("x".into());
        assert!(matches!(Envelope::decode(&env.encode()), Err(EnvelopeError::Addressing(_))));
    }
}
