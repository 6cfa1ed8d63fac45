//! Threshold EdDSA on Ed25519 with FROST (RFC 9591, `frost-ed25519` 3).
//!
//! A key is t-of-n: any `t + 1` of the `n` holders sign (`min_signers = t + 1` in FROST terms),
//! and `t` is the original mpcium's `mpc_threshold`. Party ids are FROST identifiers (the same
//! Shamir evaluation points), so shares move freely between FROST and [`crate::reshare`].
//!
//! * [`Keygen`]: FROST DKG, 2 rounds plus a confirmation hash of the broadcast round (see
//!   [`keygen`](self::Keygen)); a bad proof of knowledge or a bad share names its sender.
//! * [`Sign`]: 2 rounds among exactly `t + 1` signers; everyone aggregates and verifies, and a
//!   bad signature share names its signer. [`Sign::with_derivation`] signs for an HD child key.
//! * [`Reshare`]: new committee and/or threshold, or refresh, same public key.
//! * [`KeyShare`]: the validated, versioned, zeroized share; [`KeyShare::to_bytes`] /
//!   [`KeyShare::from_bytes`] add a checksum.
//! * [`derive_child`]: the original's non-standard non-hardened Ed25519 derivation (docs/wire.md §11).
//!
//! Every message carries the [`ExecutionId`](crate::ExecutionId) in its envelope and is refused
//! (blaming the sender) if it belongs to another run.

mod hd;
mod keygen;
mod keyshare;
mod reshare;
mod sign;
mod wire;

pub use hd::{Derived, HdError, derive_child, serialize_point};
pub use keygen::Keygen;
pub use keyshare::{KEY_SHARE_VERSION, KeyShare, KeyShareError};
pub use reshare::{Reshare, ReshareResult};
pub use sign::{Sign, Signature};
