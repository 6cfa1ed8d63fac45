//! Work a node does once and then remembers (#16): a profile of EdDSA signing at 20 in flight
//! showed ~10 % of the cluster's CPU in parsing and validating stored key shares (point
//! decoding, the polynomial check) and ~6 % in verifying the same key info signatures again,
//! on every request.
//!
//! Both caches are keyed by a digest of *everything* the cached result depends on, so a hit is
//! exactly a repeat of work already done: a changed share (a new version, a restored store), a
//! changed key info or another identity key misses and is checked in full.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use mpcium_store::ShareKind;
use sha2::{Digest, Sha256};

/// Parsed shares kept at most (a node signs for few wallets at once; each entry holds one share).
const SHARES: usize = 512;
/// Verified signatures remembered at most before the set starts over.
const SIGNATURES: usize = 8192;

/// Parsed key shares by wallet, keyed by the digest of the stored bytes they came from. The
/// secret stays in memory between requests (it is zeroized when the entry goes); the store's
/// copy is still read and decrypted every time, so a deleted or replaced share is never used.
#[derive(Default)]
pub(super) struct ShareCache {
    entries: Mutex<HashMap<(ShareKind, String, u32), CachedShare>>,
}

struct CachedShare {
    digest: [u8; 32],
    share: Arc<dyn Any + Send + Sync>,
    last_use: u64,
}

impl ShareCache {
    /// The share parsed from `stored` (the decrypted record of `kind`, `wallet`, `version`):
    /// from the cache when these exact bytes were parsed before, else parsed by `parse` (and
    /// remembered when it succeeds).
    pub(super) fn get_or_parse<T: Any + Send + Sync, E>(
        &self,
        kind: ShareKind,
        wallet: &str,
        version: u32,
        stored: &[u8],
        parse: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let digest: [u8; 32] = Sha256::digest(stored).into();
        let key = (kind, wallet.to_owned(), version);
        let tick = now_tick();
        if let Ok(mut entries) = self.entries.lock()
            && let Some(hit) = entries.get_mut(&key).filter(|e| e.digest == digest)
            && let Ok(share) = Arc::clone(&hit.share).downcast::<T>()
        {
            hit.last_use = tick;
            return Ok(share);
        }
        let share = Arc::new(parse(stored)?);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= SHARES && !entries.contains_key(&key) {
                let oldest = entries.iter().min_by_key(|(_, e)| e.last_use).map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
            let cached: Arc<dyn Any + Send + Sync> = share.clone();
            entries.insert(key, CachedShare { digest, share: cached, last_use: tick });
        }
        Ok(share)
    }
}

/// A monotonic counter for least-recently-used eviction.
fn now_tick() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static TICK: AtomicU64 = AtomicU64::new(0);
    TICK.fetch_add(1, Ordering::Relaxed)
}

/// Ed25519 signatures already verified: (public key, message, signature) triples, by digest.
#[derive(Default)]
pub(super) struct VerifiedSignatures(Mutex<HashSet<[u8; 32]>>);

impl VerifiedSignatures {
    /// Whether `signature` by `key` over `message` verifies: remembered once it did.
    pub(super) fn verify(
        &self,
        key: &ed25519_dalek::VerifyingKey,
        message: &[u8],
        signature: &ed25519_dalek::Signature,
    ) -> bool {
        let mut h = Sha256::new();
        h.update(key.as_bytes());
        h.update(signature.to_bytes());
        h.update((message.len() as u64).to_be_bytes());
        h.update(message);
        let digest: [u8; 32] = h.finalize().into();
        if self.0.lock().is_ok_and(|seen| seen.contains(&digest)) {
            return true;
        }
        if key.verify_strict(message, signature).is_err() {
            return false;
        }
        if let Ok(mut seen) = self.0.lock() {
            if seen.len() >= SIGNATURES {
                seen.clear();
            }
            seen.insert(digest);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn a_share_is_parsed_again_when_its_bytes_change() {
        let cache = ShareCache::default();
        let parses = std::cell::Cell::new(0);
        let parse = |b: &[u8]| -> Result<Vec<u8>, ()> {
            parses.set(parses.get() + 1);
            Ok(b.to_vec())
        };
        let a = cache.get_or_parse(ShareKind::Eddsa, "w", 1, b"one", parse).unwrap();
        let again = cache.get_or_parse(ShareKind::Eddsa, "w", 1, b"one", parse).unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        let changed = cache.get_or_parse(ShareKind::Eddsa, "w", 1, b"two", parse).unwrap();
        assert_eq!(*changed, b"two");
        // Another version, another kind: their own entries.
        cache.get_or_parse(ShareKind::Eddsa, "w", 2, b"two", parse).unwrap();
        cache.get_or_parse(ShareKind::Taproot, "w", 1, b"two", parse).unwrap();
        assert_eq!(parses.get(), 4);
        // A failed parse is not remembered.
        let failed: Result<Arc<Vec<u8>>, ()> =
            cache.get_or_parse(ShareKind::Ecdsa, "w", 1, b"x", |_| Err(()));
        assert!(failed.is_err());
        cache.get_or_parse(ShareKind::Ecdsa, "w", 1, b"x", parse).unwrap();
        assert_eq!(parses.get(), 5);
    }

    #[test]
    fn only_signatures_that_verified_are_remembered() {
        let cache = VerifiedSignatures::default();
        let key = SigningKey::from_bytes(&[7; 32]);
        let sig = key.sign(b"statement");
        let vk = key.verifying_key();
        assert!(cache.verify(&vk, b"statement", &sig));
        assert!(cache.verify(&vk, b"statement", &sig), "a hit");
        assert!(!cache.verify(&vk, b"another statement", &sig));
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(!cache.verify(&other, b"statement", &sig), "the key is part of what is remembered");
    }
}
