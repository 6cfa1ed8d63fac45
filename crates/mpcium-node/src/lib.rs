//! The mpcium node: everything that does I/O around the sans-IO protocols of `mpcium-tss`.
//!
//! - [`envelope`]: the node-to-node message format (signed by the sender's identity; private
//!   payloads sealed with the pair's key, the header as associated data).
//! - [`pairkey`]: per-peer symmetric keys from X25519 ECDH + HKDF.
//! - [`registry`]: peers, readiness (with the signed exchange keys) and wallet key info on
//!   JetStream KV.

pub mod envelope;
pub mod pairkey;
pub mod registry;
