//! Errors of the client.

use std::time::Duration;

use mpcium_api::{ErrorCode, ValidationError};

use crate::signer::SignerError;

/// Which request an error or a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Wallet creation (keygen).
    Keygen,
    /// Signing.
    Sign,
    /// Resharing.
    Reshare,
}

impl Operation {
    /// `keygen`, `sign` or `reshare`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Keygen => "keygen",
            Operation::Sign => "sign",
            Operation::Reshare => "reshare",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cluster answered with an error result event (`result_type = "error"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} {id} failed on the cluster: {}: {reason}", .code.as_str())]
pub struct RemoteFailure {
    /// Which request.
    pub operation: Operation,
    /// The wallet ID (keygen), tx ID (sign) or session ID (reshare).
    pub id: String,
    /// The event's `error_code` (`ERROR_UNKNOWN` if the node sent none).
    pub code: ErrorCode,
    /// The event's `error_reason`.
    pub reason: String,
    /// The event's `is_timeout` (signing only: the request ran out of JetStream deliveries).
    pub is_timeout: bool,
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No result arrived in time. The request may still complete later; its result then goes to
    /// the `on_*_result` callback.
    #[error("{operation} {id}: no result within {after:?}")]
    Timeout {
        /// Which request.
        operation: Operation,
        /// Its wallet ID / tx ID / session ID.
        id: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The cluster reported an error for the request.
    #[error(transparent)]
    Remote(#[from] RemoteFailure),
    /// The request would be refused by the nodes (bad ID, `tx` length, path, threshold, ...);
    /// checked before signing and publishing, with the nodes' own rules.
    #[error("invalid request: {0}")]
    Invalid(#[from] ValidationError),
    /// A request with the same ID is already awaiting its result in this client.
    #[error("{operation} {id} is already in flight in this client")]
    AlreadyInFlight {
        /// Which request.
        operation: Operation,
        /// Its ID.
        id: String,
    },
    /// The initiator or an authorizer signer failed.
    #[error("signing the request failed: {0}")]
    Signer(#[from] SignerError),
    /// Drawing a random session ID failed (the OS random source).
    #[error("cannot draw a random session ID: {0}")]
    Randomness(String),
    /// Connecting to NATS failed.
    #[error("connecting to NATS: {0}")]
    Connect(String),
    /// Creating or reading a stream or consumer failed.
    #[error("JetStream setup: {0}")]
    Setup(String),
    /// Publishing the request failed.
    #[error("publishing the {operation} request to {subject}: {reason}")]
    Publish {
        /// Which request.
        operation: Operation,
        /// The subject.
        subject: String,
        /// The NATS error.
        reason: String,
    },
    /// A success event the participants do not vouch for (with
    /// [`ClientOptions::verify_results`](crate::ClientOptions::verify_results)): missing or bad
    /// attestations, or a signature that does not verify. Treat it as an attack, not a value.
    #[error("{operation} {id}: result not trusted: {reason}")]
    Untrusted {
        /// Which request.
        operation: Operation,
        /// Its ID.
        id: String,
        /// What failed.
        reason: crate::trust::TrustError,
    },
    /// The client's result consumers stopped (the client is shutting down).
    #[error("the client stopped before the {0} result arrived")]
    Closed(Operation),
}

impl ClientError {
    /// The cluster's error code, when the cluster answered with an error event.
    pub fn error_code(&self) -> Option<&ErrorCode> {
        match self {
            ClientError::Remote(f) => Some(&f.code),
            _ => None,
        }
    }
}
