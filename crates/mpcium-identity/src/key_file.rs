//! The body of every private key file: ASCII hex, stored as is (`*.key`, `*_private.key`) or
//! inside an age passphrase file (`*.age`).

use std::path::Path;

use zeroize::Zeroizing;

use crate::age_file::{decrypt_with_passphrase, encrypt_with_passphrase};
use crate::error::IdentityError;
use crate::secure_file::read_file;

/// How a private key file is protected.
#[derive(Clone, Copy)]
pub enum KeyProtection<'a> {
    /// Plain hex text.
    Plain,
    /// age scrypt encryption with this passphrase (the file name gets `.age`).
    Passphrase(&'a str),
}

impl std::fmt::Debug for KeyProtection<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain => f.write_str("Plain"),
            Self::Passphrase(_) => f.write_str("Passphrase(<redacted>)"),
        }
    }
}

impl KeyProtection<'_> {
    /// True for [`KeyProtection::Passphrase`].
    pub fn is_encrypted(&self) -> bool {
        matches!(self, Self::Passphrase(_))
    }

    /// `base` or, when `encrypted`, `base.age`.
    pub(crate) fn file_name_for(encrypted: bool, base: &str) -> String {
        if encrypted { format!("{base}.age") } else { base.to_owned() }
    }

    /// The bytes to store for the key text.
    pub(crate) fn seal(&self, key_text: &str) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
        match self {
            Self::Plain => Ok(Zeroizing::new(key_text.as_bytes().to_vec())),
            Self::Passphrase(p) => Ok(Zeroizing::new(encrypt_with_passphrase(key_text.as_bytes(), p)?)),
        }
    }
}

/// Reads a key file's text. A path ending in `.age` is decrypted with `passphrase` (required);
/// a plain file is read as is. Surrounding whitespace is dropped.
pub fn read_key_text(path: &Path, passphrase: Option<&str>) -> Result<Zeroizing<String>, IdentityError> {
    let raw = Zeroizing::new(read_file(path)?);
    let is_age = path.extension().is_some_and(|e| e == "age");
    let bytes = if is_age {
        let passphrase = passphrase.ok_or(IdentityError::PassphraseNeeded {
            path: path.to_path_buf(),
            reason: "this key file is age-encrypted; a passphrase is needed",
        })?;
        decrypt_with_passphrase(&raw, passphrase, path)?
    } else {
        raw
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| IdentityError::invalid_key(path.display().to_string(), "key file is not text"))?;
    Ok(Zeroizing::new(text.trim().to_owned()))
}

/// Decodes hex text (an optional `0x` prefix is accepted) into bytes that are wiped on drop.
pub(crate) fn decode_hex(what: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
    let text = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    hex::decode(text)
        .map(Zeroizing::new)
        .map_err(|e| IdentityError::invalid_key(what, format!("not hex: {e}")))
}
