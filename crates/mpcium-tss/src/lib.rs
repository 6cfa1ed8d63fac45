//! Threshold cryptography for mpcium, with no I/O of its own.
//!
//! Every protocol here is a sans-IO state machine implementing [`Protocol`]: the caller feeds it
//! incoming messages with [`Protocol::message`] and asks it what to do next with
//! [`Protocol::poke`], which answers with an [`Action`]: send a broadcast, send a private message,
//! wait, or return the result. The node carries the bytes over NATS; tests run every party in one
//! process with [`simulate`].
//!
//! Every run is bound to an [`ExecutionId`] that commits to the operation, the wallet, the key
//! version, the ordered participant set and the request id, so a message of another run is
//! rejected.

pub mod agree;
pub mod curve;
mod driver;
pub mod ecdsa;
pub mod eddsa;
pub mod frost;
pub mod legacy;
pub mod protocol;
pub mod reshare;
pub mod taproot;

pub use protocol::{
    Action, ExecutionContext, ExecutionId, KeyType, Operation, PartyId, Protocol, ProtocolError, simulate,
    simulate_with,
};
