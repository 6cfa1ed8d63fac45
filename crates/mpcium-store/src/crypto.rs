//! AEAD sealing (XChaCha20-Poly1305) with domain-separated associated data.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::kdf::SecretKey;

/// Length of an XChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 24;
/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// Fills an array from the operating system's random number generator.
pub(crate) fn random_array<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| StoreError::Rng)?;
    Ok(out)
}

/// A fresh random 256-bit key.
pub(crate) fn random_key() -> Result<SecretKey> {
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut()).map_err(|_| StoreError::Rng)?;
    Ok(key)
}

/// Encrypts `plaintext` under `key` with a random nonce; returns `nonce || ciphertext || tag`.
pub(crate) fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = random_array()?;
    let ct = seal_with_nonce(key, &nonce, aad, plaintext)?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Encrypts with an explicit nonce; returns `ciphertext || tag`.
pub(crate) fn seal_with_nonce(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .encrypt(&XNonce::from(*nonce), Payload { msg: plaintext, aad })
        .map_err(|_| StoreError::Crypto("encryption failed"))
}

/// Decrypts `nonce || ciphertext || tag` produced by [`seal`]. `None` means authentication
/// failed (wrong key, wrong associated data, or altered bytes).
pub(crate) fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    open_with_nonce(key, &nonce, aad, ct)
}

/// Decrypts `ciphertext || tag` with an explicit nonce.
pub(crate) fn open_with_nonce(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ct: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher.decrypt(&XNonce::from(*nonce), Payload { msg: ct, aad }).ok().map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let key = random_key().unwrap();
        let sealed = seal(&key, b"aad-1", b"secret").unwrap();
        assert_eq!(open(&key, b"aad-1", &sealed).unwrap().as_slice(), b"secret");
        assert!(open(&key, b"aad-2", &sealed).is_none());
        let mut bad = sealed.clone();
        bad[NONCE_LEN] ^= 1;
        assert!(open(&key, b"aad-1", &bad).is_none());
        assert!(open(&key, b"aad-1", &sealed[..10]).is_none());
    }
}
