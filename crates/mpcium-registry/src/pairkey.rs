//! Per-peer symmetric keys: X25519 ECDH between two nodes' exchange keys, then HKDF-SHA256.
//!
//! Each node makes a fresh X25519 key pair when it starts and publishes the public half signed
//! by its Ed25519 identity (the registry does that). The pair key of nodes A and B is
//! `HKDF-SHA256(ikm = X25519(a, B), salt = "mpcium-rs/pairkey/v1", info = len‖id_lo‖len‖id_hi)`
//! with the two node ids in byte order, so both sides derive the same 32 bytes. Unlike the
//! original, the salt is fixed and domain-separated and the ids are length-prefixed.

use hkdf::Hkdf;
use rand_core::OsRng;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// This node's X25519 key pair for the current process lifetime.
pub struct ExchangeKey {
    secret: StaticSecret,
    public: PublicKey,
}

impl ExchangeKey {
    /// A fresh random key pair.
    pub fn generate() -> Self {
        let secret = StaticSecret::random_from_rng(OsRng);
        let public = PublicKey::from(&secret);
        Self { secret, public }
    }

    /// The public half, to publish.
    pub fn public(&self) -> [u8; 32] {
        self.public.to_bytes()
    }

    /// The key shared with a peer. Fails when the peer's public key is a low-order point (the
    /// shared secret would be all zeros and known to anyone).
    pub fn pair_key(&self, my_id: &str, peer_id: &str, peer_public: &[u8; 32]) -> Option<PairKey> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*peer_public));
        if !shared.was_contributory() {
            return None;
        }
        let (lo, hi) =
            if my_id.as_bytes() <= peer_id.as_bytes() { (my_id, peer_id) } else { (peer_id, my_id) };
        let mut info = Vec::with_capacity(16 + lo.len() + hi.len());
        for id in [lo, hi] {
            info.extend_from_slice(&(id.len() as u64).to_be_bytes());
            info.extend_from_slice(id.as_bytes());
        }
        let hk = Hkdf::<Sha256>::new(Some(b"mpcium-rs/pairkey/v1"), shared.as_bytes());
        let mut key = [0u8; 32];
        hk.expand(&info, &mut key).ok()?;
        Some(PairKey(key))
    }
}

impl std::fmt::Debug for ExchangeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeKey").field("public", &self.public.as_bytes()).finish_non_exhaustive()
    }
}

/// A 32-byte symmetric key shared by two nodes; zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct PairKey(pub(crate) [u8; 32]);

impl PairKey {
    /// The AEAD under this key (the envelope seals point-to-point payloads with it); the key's
    /// bytes never leave this type.
    pub fn cipher(&self) -> chacha20poly1305::XChaCha20Poly1305 {
        use chacha20poly1305::KeyInit;
        chacha20poly1305::XChaCha20Poly1305::new((&self.0).into())
    }
}

impl std::fmt::Debug for PairKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_derive_the_same_key_and_others_differ() {
        let a = ExchangeKey::generate();
        let b = ExchangeKey::generate();
        let c = ExchangeKey::generate();
        let ab = a.pair_key("node-a", "node-b", &b.public()).unwrap();
        let ba = b.pair_key("node-b", "node-a", &a.public()).unwrap();
        assert_eq!(ab, ba);
        let ac = a.pair_key("node-a", "node-c", &c.public()).unwrap();
        assert_ne!(ab, ac);
        // The ids are bound: the same DH under other names gives another key.
        assert_ne!(ab, a.pair_key("node-a", "node-x", &b.public()).unwrap());
        assert_eq!(format!("{ab:?}"), "PairKey(<redacted>)");
    }

    #[test]
    fn low_order_peer_key_is_refused() {
        let a = ExchangeKey::generate();
        assert!(a.pair_key("a", "b", &[0u8; 32]).is_none());
    }
}
