//! The rules for a new key-file passphrase (the original's: at least 12 characters, at least
//! one that is neither a letter nor a digit, typed twice). Prompting is the CLI's job.

/// Minimum passphrase length, in characters.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// Why a new passphrase is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassphraseError {
    /// Fewer than [`MIN_PASSPHRASE_CHARS`] characters.
    #[error("passphrase must be at least {MIN_PASSPHRASE_CHARS} characters long")]
    TooShort,
    /// Only letters and digits.
    #[error("passphrase must contain at least one character that is not a letter or digit")]
    NoSpecialCharacter,
    /// The confirmation differs from the first entry.
    #[error("passphrases do not match")]
    Mismatch,
}

/// Checks a new passphrase against the rules.
pub fn validate_new_passphrase(passphrase: &str) -> Result<(), PassphraseError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(PassphraseError::TooShort);
    }
    if passphrase.chars().all(char::is_alphanumeric) {
        return Err(PassphraseError::NoSpecialCharacter);
    }
    Ok(())
}

/// Checks a new passphrase and its confirmation (rules first, then equality, as the original).
pub fn confirm_new_passphrase(first: &str, second: &str) -> Result<(), PassphraseError> {
    validate_new_passphrase(first)?;
    if first != second {
        return Err(PassphraseError::Mismatch);
    }
    Ok(())
}
