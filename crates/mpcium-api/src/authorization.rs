//! Authorizer co-signatures (config `authorization.*`, docs/wire.md §5.3).
//!
//! Rules, in the original's order: when disabled, authorizer signatures are ignored. Otherwise
//! every `required_authorizers` ID must be among the supplied signatures; if none are supplied and
//! none are required the request passes; every supplied signature must come from a configured
//! authorizer and verify over [`crate::canonical::authorizer_payload`].

use std::collections::BTreeMap;

use crate::canonical::{InitiatorMessage, SigningMode, authorizer_payload};
use crate::error_code::ErrorCode;
use crate::verify::{PublicKey, SignatureError};

/// The node's authorization configuration, with keys already parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationPolicy {
    /// `authorization.enabled`.
    pub enabled: bool,
    /// `authorization.required_authorizers`.
    pub required: Vec<String>,
    /// `authorization.authorizer_public_keys`: authorizer ID → key.
    pub keys: BTreeMap<String, PublicKey>,
    /// **(ours)** `policy.rules`: approvals by value for signing requests, checked with `keys`
    /// by [`AuthorizationPolicy::approve`] whether or not `enabled` is set.
    pub rules: Vec<crate::policy::ApprovalRule>,
}

/// Why authorization failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthorizationError {
    /// A required authorizer supplied no signature.
    #[error("missing required authorizer signature: {0}")]
    MissingRequired(String),
    /// A signature names an authorizer that is not configured.
    #[error("authorizer {0} verification failed: unknown authorizer ID")]
    UnknownAuthorizer(String),
    /// A configured authorizer's signature did not verify.
    #[error("authorizer {id} verification failed: {source}")]
    InvalidSignature {
        /// The authorizer ID.
        id: String,
        /// What was wrong with the signature.
        #[source]
        source: SignatureError,
    },
}

impl AuthorizationError {
    /// `ERROR_MISSING_AUTHORIZER_SIGNATURE` for a missing required signature,
    /// `ERROR_INVALID_AUTHORIZER_SIGNATURE` otherwise.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            AuthorizationError::MissingRequired(_) => ErrorCode::MissingAuthorizerSignature,
            _ => ErrorCode::InvalidAuthorizerSignature,
        }
    }
}

impl AuthorizationPolicy {
    /// Applies the rules of the module docs to `msg`, with signed bytes in `mode`.
    pub fn authorize(
        &self,
        msg: &impl InitiatorMessage,
        mode: SigningMode,
    ) -> Result<(), AuthorizationError> {
        if !self.enabled {
            return Ok(());
        }
        let supplied = msg.authorizer_signatures();
        if let Some(missing) =
            self.required.iter().find(|id| !supplied.iter().any(|s| &s.authorizer_id == *id))
        {
            return Err(AuthorizationError::MissingRequired(missing.clone()));
        }
        if supplied.is_empty() {
            return Ok(());
        }
        let payload = authorizer_payload(msg, mode);
        for sig in supplied {
            let key = self
                .keys
                .get(&sig.authorizer_id)
                .ok_or_else(|| AuthorizationError::UnknownAuthorizer(sig.authorizer_id.clone()))?;
            key.verify(&payload, sig.signature.as_deref()).map_err(|source| {
                AuthorizationError::InvalidSignature { id: sig.authorizer_id.clone(), source }
            })?;
        }
        Ok(())
    }
}
