//! Rust client of an mpcium cluster, wire-compatible with the original Go client
//! (`fystack/mpcium` `pkg/client`) but awaitable.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use mpcium_client::{Algorithm, ClientOptions, KeyType, LocalSigner, MpcClient, SignRequest};
//!
//! let signer = LocalSigner::from_file(Algorithm::Ed25519, "event_initiator.key".as_ref(), None)?;
//! let client = MpcClient::connect("nats://127.0.0.1:4222", ClientOptions::new(Arc::new(signer))).await?;
//! let wallet = client.create_wallet("wallet-1").await?;
//! let signed = client.sign(&SignRequest::new(KeyType::Secp256k1, "wallet-1", "tx-1", vec![7; 32])).await?;
//! # let _ = (wallet, signed); Ok(()) }
//! ```
//!
//! - Requests are built with `mpcium-api` (Go-exact JSON, canonical signed bytes) and signed
//!   **once** by the initiator [`Signer`]; authorizers sign the payload embedding that signature.
//! - Keygen / sign: JetStream publish to `mpc.keygen_request.<wallet_id>` /
//!   `mpc.signing_request.<tx_id>`; reshare: core NATS publish to `mpc:reshare`; header
//!   `ClientID` when a client ID is set.
//! - Results: durable pull consumers on stream `mpc` (names and filters of the original, scoped
//!   by client ID); matched by `wallet_id` (keygen), `tx_id` (sign), session ID (reshare).
//! - Taproot (ours): a wallet's keygen event carries `taproot_pub_key` (the x-only internal key);
//!   `SignRequest::new(KeyType::Taproot, …)` signs a 32-byte BIP341 sighash for the BIP86 output
//!   key, or with [`SignRequest::taproot_merkle_root`] for a script tree's.
//! - Outcome: `create_wallet`, `sign` and `reshare` return the success event; an error event
//!   becomes [`ClientError::Remote`] ([`RemoteFailure`]: `error_code`, `error_reason`,
//!   `is_timeout`; shortcut [`ClientError::error_code`]); no event in time is
//!   [`ClientError::Timeout`]. Events no call claimed go to the `on_*_result` callbacks.
//! - Trust: with [`ClientOptions::verify_results`] a success is returned only when the nodes
//!   that computed it vouch for it with their identity keys ([`ResultTrust`]), and a signature
//!   only when it verifies under the key they vouch for; otherwise [`ClientError::Untrusted`].
//! - Signers: [`LocalSigner`] (Ed25519 / P-256 key files, plain or age-encrypted) and, with the
//!   `kms` feature, `KmsSigner` (AWS KMS P-256).

mod client;
mod consumer;
mod error;
#[cfg(feature = "kms")]
mod kms;
mod request;
mod router;
mod signer;
mod trust;

pub use client::{ClientOptions, DEFAULT_TIMEOUT, MpcClient};
pub use error::{ClientError, Operation, RemoteFailure};
#[cfg(feature = "kms")]
pub use kms::{KmsSigner, KmsSignerOptions};
pub use request::{Authorizer, ReshareRequest, SignRequest};
pub use signer::{LocalSigner, SignFuture, Signer, SignerError};
pub use trust::{ResultTrust, TrustError};

pub use mpcium_api::{
    Algorithm, ClientId, ErrorCode, KeyType, KeygenResultEvent, ResharingResultEvent, ResultType,
    SigningMode, SigningResultEvent,
};
