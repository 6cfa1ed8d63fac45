//! age v1 passphrase (scrypt) encryption of key files (`*.age`), interoperable with Go's
//! `filippo.io/age`.
//!
//! The scrypt work factor is pinned: the `age` crate would otherwise calibrate it to the machine
//! (13 in a debug build, 20 in release), and refuse on decryption anything above its calibrated
//! maximum — so Go's files (always 18) would not open.

use std::io::{Read, Write};
use std::iter;
use std::path::Path;

use age::secrecy::SecretString;
use zeroize::Zeroizing;

use crate::error::IdentityError;

/// log2(N) of scrypt for files we write: what Go's age uses.
pub const SCRYPT_WORK_FACTOR: u8 = 18;
/// Largest log2(N) we accept when decrypting (age's own CLI default ceiling).
pub const MAX_SCRYPT_WORK_FACTOR: u8 = 22;

/// Encrypts `plaintext` to a binary age file protected by `passphrase` (scrypt, work factor 18).
pub fn encrypt_with_passphrase(plaintext: &[u8], passphrase: &str) -> Result<Vec<u8>, IdentityError> {
    let mut recipient = age::scrypt::Recipient::new(SecretString::from(passphrase.to_owned()));
    recipient.set_work_factor(SCRYPT_WORK_FACTOR);
    let encryptor = age::Encryptor::with_recipients(iter::once(&recipient as &dyn age::Recipient))
        .map_err(|e| IdentityError::Encrypt(e.to_string()))?;
    let mut out = Vec::with_capacity(plaintext.len() + 256);
    let mut writer = encryptor.wrap_output(&mut out).map_err(|e| IdentityError::Encrypt(e.to_string()))?;
    writer.write_all(plaintext).map_err(|e| IdentityError::Encrypt(e.to_string()))?;
    writer.finish().map_err(|e| IdentityError::Encrypt(e.to_string()))?;
    Ok(out)
}

/// Decrypts an age passphrase file read from `path` (used in error messages only).
pub fn decrypt_with_passphrase(
    ciphertext: &[u8],
    passphrase: &str,
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
    let decrypt_err = |reason: String| IdentityError::Decrypt { path: path.to_path_buf(), reason };
    let decryptor = age::Decryptor::new_buffered(ciphertext).map_err(|e| decrypt_err(e.to_string()))?;
    if !decryptor.is_scrypt() {
        return Err(IdentityError::PassphraseNeeded {
            path: path.to_path_buf(),
            reason: "age file is not passphrase-encrypted",
        });
    }
    let mut identity = age::scrypt::Identity::new(SecretString::from(passphrase.to_owned()));
    identity.set_max_work_factor(MAX_SCRYPT_WORK_FACTOR);
    let mut reader = decryptor.decrypt(iter::once(&identity as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::DecryptionFailed
        | age::DecryptError::NoMatchingKeys
        | age::DecryptError::KeyDecryptionFailed => {
            IdentityError::WrongPassphrase { path: path.to_path_buf() }
        }
        other => decrypt_err(other.to_string()),
    })?;
    let mut plaintext = Zeroizing::new(Vec::new());
    reader.read_to_end(&mut plaintext).map_err(|e| decrypt_err(e.to_string()))?;
    Ok(plaintext)
}
