//! Threshold ECDSA on secp256k1 with DKLs23 (the `dkls23` crate, pinned at 0.6.2).
//!
//! DKLs23 (Doerner, Kondi, Lee, shelat; eprint 2023/765) signs with pairwise two-party
//! multiplications built on oblivious transfer: no Paillier, no range proofs. The expensive part
//! is the one-time setup between every pair of parties (base OT), done in [`Keygen`] or, for a
//! committee that already holds Shamir shares (after a resharing), in [`Setup`].
//!
//! Thresholds: our `t` is the original's `mpc_threshold`: `t + 1` parties sign and `t` learn
//! nothing. dkls23's own `threshold` parameter is the number of signers, so it is set to `t + 1`.
//! Party ids are `1..=n` (at most 255, dkls23 numbers parties with a `u8`).
//!
//! Protocols (all sans-IO [`Protocol`](crate::Protocol) state machines; every message carries the
//! [`ExecutionId`](crate::ExecutionId) and its round and is refused otherwise):
//!
//! | protocol | message rounds | result |
//! |---|---|---|
//! | [`Keygen`] | 3 (fragments, commitments, openings + OT setup) | [`KeyShare`] |
//! | [`Setup`] | 2 (commitments, openings + OT setup) | [`KeyShare`] |
//! | [`Reshare`] | 3 (Feldman redistribution) + 2 ([`Setup`] among the new holders) | [`ReshareResult`] |
//! | [`Refresh`] | 3 (zero-sum fragments, proofs + commitments, openings) | [`KeyShare`] |
//! | [`Presign`] | 2 (multiplication, consistency) | [`Presignature`] |
//! | [`SignOnline`] | 1 (signature shares) | [`EcdsaSignature`] |
//! | [`Sign`] | 3 (presign + online) | [`EcdsaSignature`] |
//!
//! A failed check aborts with [`ProtocolError::Faulty`](crate::ProtocolError::Faulty) naming the
//! peer. Where DKLs23 cannot tell who cheated (inconsistent DKG polynomial, a bad share in the
//! last signing round, which only shows as an invalid signature) every other participant is
//! named. Never retry silently with a named party: OT-based ECDSA is open to selective-abort
//! attacks.
//!
//! Bans: the pairwise OT correlations set up once are reused by every [`Presign`] and [`Sign`],
//! so each pass or fail of the checks on them (the OT-extension consistency check, the
//! multiplication and gamma checks) tells the counterparty a bit of this party's OT secret. Such
//! a failure aborts with [`ProtocolError::Ban`](crate::ProtocolError::Ban) naming the party
//! (dkls23's `BanCounterparty`); the caller must exclude it from every later DKLs23 session of
//! the key until a [`Reshare`] (which runs a fresh [`Setup`]) has replaced the pairwise state.
//!
//! HD wallets: [`derive_child`] is BIP32 non-hardened public derivation with the cluster's
//! chain code (docs/wire.md §11); signing with an [`HdPath`] shifts every share by the path's tweak.

mod abort;
mod fragments;
mod hd;
mod keygen;
mod keyshare;
mod presignature;
mod refresh;
mod reshare;
mod sign;
mod signer;
mod wire;

pub use hd::{ChildKey, HARDENED, HdError, HdPath, derive_child, derive_child_key};
pub use keygen::{Keygen, Setup, SetupInput};
pub use keyshare::{KEY_SHARE_FORMAT_VERSION, KeyShare, KeyShareError};
pub use presignature::{PRESIGNATURE_FORMAT_VERSION, Presignature, PresignatureError};
pub use refresh::Refresh;
pub use reshare::{Reshare, ReshareResult};
pub use sign::{EcdsaSignature, Presign, Sign, SignOnline};
