//! Identifiers that end up as NATS subject tokens, header values, consumer names and store keys:
//! wallet IDs, tx IDs, reshare session IDs and client IDs (docs/wire.md §3).

use crate::error_code::ErrorCode;

/// Longest accepted identifier, in bytes. Real clients use UUIDs (36 bytes); the bound keeps
/// subjects, `Nats-Msg-Id` headers and store keys small. (Our rule; the original has none.)
pub const MAX_ID_BYTES: usize = 256;

/// What an identifier names (used in error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// `wallet_id`.
    WalletId,
    /// `tx_id`.
    TxId,
    /// `session_id` of a reshare request.
    SessionId,
    /// An entry of a reshare request's `node_ids`.
    NodeId,
    /// The `ClientID` header.
    ClientId,
}

impl IdKind {
    /// The field name as clients know it.
    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::WalletId => "wallet_id",
            IdKind::TxId => "tx_id",
            IdKind::SessionId => "session_id",
            IdKind::NodeId => "node_id",
            IdKind::ClientId => "ClientID",
        }
    }
}

impl std::fmt::Display for IdKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An identifier is not usable as a single subject token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// Empty (or, for a client ID, only whitespace).
    #[error("validation failed: {0} must not be empty")]
    Empty(IdKind),
    /// Longer than [`MAX_ID_BYTES`].
    #[error("validation failed: {kind} is {len} bytes long, the maximum is {max}")]
    TooLong {
        /// Which identifier.
        kind: IdKind,
        /// Its length in bytes.
        len: usize,
        /// [`MAX_ID_BYTES`].
        max: usize,
    },
    /// Contains `.`, `*`, `>`, whitespace or a control character (or, in a client ID, a path
    /// separator).
    #[error("validation failed: {kind} contains {found:?}, which cannot appear in a NATS subject token")]
    BadCharacter {
        /// Which identifier.
        kind: IdKind,
        /// The offending character.
        found: char,
    },
}

impl IdError {
    /// Always `ERROR_MSG_VALIDATION`.
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::MsgValidation
    }
}

fn is_forbidden(c: char) -> bool {
    matches!(c, '.' | '*' | '>') || c.is_whitespace() || c.is_control()
}

/// Checks that `value` can be one NATS subject token: non-empty, at most [`MAX_ID_BYTES`], no
/// `.`, `*`, `>`, Unicode whitespace or control characters.
pub fn validate_token(kind: IdKind, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty(kind));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(IdError::TooLong { kind, len: value.len(), max: MAX_ID_BYTES });
    }
    match value.chars().find(|c| is_forbidden(*c)) {
        Some(found) => Err(IdError::BadCharacter { kind, found }),
        None => Ok(()),
    }
}

/// A validated, non-empty client ID (the `ClientID` header that scopes result routing).
///
/// The original (Go and TS clients) accepts any ID that is not blank and contains none of
/// space, tab, CR, LF, `.`, `*`, `>`; the README asks for `[A-Za-z0-9_-]`. We apply
/// [`validate_token`], a superset of those rules (it also refuses other whitespace, control
/// characters and IDs over [`MAX_ID_BYTES`]), and also refuse `/` and `\`: the ID becomes part of
/// a durable consumer name, where the NATS server forbids path separators.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// Parses a configured or received client ID. `""` means "no client ID" (legacy, unscoped
    /// routing) and gives `Ok(None)`.
    pub fn parse(value: &str) -> Result<Option<Self>, IdError> {
        if value.is_empty() {
            return Ok(None);
        }
        if value.trim().is_empty() {
            return Err(IdError::Empty(IdKind::ClientId));
        }
        validate_token(IdKind::ClientId, value)?;
        if let Some(found) = value.chars().find(|c| matches!(c, '/' | '\\')) {
            return Err(IdError::BadCharacter { kind: IdKind::ClientId, found });
        }
        Ok(Some(ClientId(value.to_owned())))
    }

    /// The ID text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_validation_table() {
        let long = "a".repeat(MAX_ID_BYTES);
        let too_long = "a".repeat(MAX_ID_BYTES + 1);
        let ok = [
            "wallet-1",
            "550e8400-e29b-41d4-a716-446655440000",
            "A_b-9",
            "ünïcødé",
            "a:b",
            "a/b",
            long.as_str(),
        ];
        for v in ok {
            assert_eq!(validate_token(IdKind::WalletId, v), Ok(()), "{v:?}");
        }
        let bad: [(&str, IdError); 10] = [
            ("", IdError::Empty(IdKind::WalletId)),
            ("a.b", IdError::BadCharacter { kind: IdKind::WalletId, found: '.' }),
            ("a*", IdError::BadCharacter { kind: IdKind::WalletId, found: '*' }),
            (">", IdError::BadCharacter { kind: IdKind::WalletId, found: '>' }),
            ("a b", IdError::BadCharacter { kind: IdKind::WalletId, found: ' ' }),
            ("a\tb", IdError::BadCharacter { kind: IdKind::WalletId, found: '\t' }),
            ("a\r\n", IdError::BadCharacter { kind: IdKind::WalletId, found: '\r' }),
            ("a\u{a0}b", IdError::BadCharacter { kind: IdKind::WalletId, found: '\u{a0}' }),
            ("a\u{0}b", IdError::BadCharacter { kind: IdKind::WalletId, found: '\u{0}' }),
            (
                too_long.as_str(),
                IdError::TooLong { kind: IdKind::WalletId, len: MAX_ID_BYTES + 1, max: MAX_ID_BYTES },
            ),
        ];
        for (v, err) in bad {
            let got = validate_token(IdKind::WalletId, v).unwrap_err();
            assert_eq!(got, err, "{v:?}");
            assert_eq!(got.error_code(), ErrorCode::MsgValidation);
        }
    }

    #[test]
    fn client_id_rules() {
        assert_eq!(ClientId::parse("").unwrap(), None);
        assert_eq!(ClientId::parse("svc-A_1").unwrap().unwrap().as_str(), "svc-A_1");
        assert_eq!(ClientId::parse("  "), Err(IdError::Empty(IdKind::ClientId)));
        for bad in ["a.b", "a*", "a>", "a b", "a\tb", "a\nb", "a\rb", "a/b", "a\\b"] {
            assert!(ClientId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
