//! The mpcium node: everything that does I/O around the sans-IO protocols of `mpcium-tss`.
//!
//! - [`envelope`]: the node-to-node message format (signed by the sender's identity; private
//!   payloads sealed with the pair's key, the header as associated data).
//! - [`pairkey`]: per-peer symmetric keys from X25519 ECDH + HKDF.
//! - [`registry`]: peers, readiness (with the signed exchange keys) and wallet key info on
//!   JetStream KV.
//! - [`transport`]: per-node inbox subjects on core NATS, verification and routing to sessions.
//! - [`liveness`]: probing peers, so a crashed or cut-off peer leaves the ready set in a second.
//! - [`keypool`]: keys made ahead of their wallets (`key_pool.size`), handed over once.
//! - [`nonces`]: FROST nonces drawn ahead, held in memory by signers and handed to coordinators.
//! - [`session`]: running one protocol over the transport, with the broadcast echo check.
//! - [`service`]: the coordinator and participant sides of keygen and signing requests.
//! - [`daemon`]: wiring a node together (what `mpcium start` runs).
//! - [`drain`]: graceful shutdown (stop taking requests, finish or hand back those in flight).
//! - [`health`]: `/health` and `/metrics`.
//! - [`control`]: session start, echo, abort and done messages.
//! - [`status`]: the cluster at a glance (registry + `/metrics`), for `mpcium-cli status`.
//! - [`replicas`]: `nats.replicas` for every stream, KV bucket and durable consumer.
//! - [`result_consumers`]: the unscoped result consumers on `mpc` every node creates at start.
//! - [`audit`]: the tamper-evident audit trail (stream `mpc-audit`, per-node signed hash chains).

pub mod control;
pub mod daemon;
pub mod drain;
pub mod envelope;
pub mod health;
pub mod keypool;
pub mod limits;
pub mod liveness;
pub mod nonces;
pub mod presign;
pub mod result_consumers;
pub mod service;
pub mod session;
pub mod transport;

// The registry client and what it brings live in `mpcium-registry`, so the CLI can reach the
// registry without linking the daemon; their old paths here stay valid.
pub use mpcium_registry as registry;
pub use mpcium_registry::{audit, pairkey, replicas, status};
