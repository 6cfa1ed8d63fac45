//! Identity and key files of mpcium-rs, in the original's formats (docs/wire.md §12.1):
//!
//! | file | type / functions |
//! |---|---|
//! | `peers.json` | [`Peers`] |
//! | `identity/<node>_identity.json` | [`NodeIdentity`] |
//! | `identity/<node>_private.key[.age]` | [`write_node_identity`], [`load_node_signing_key`] |
//! | `<name>.identity.json`, `<name>.key[.age]` (event initiator) | [`InitiatorIdentity`], [`SignerKey`], [`create_initiator`] |
//! | `<name>.authorizer.identity.json`, `<name>.authorizer.key[.age]` | [`AuthorizerIdentity`], [`SignerKey`], [`create_authorizer`] |
//!
//! Every file is written with mode 0600 (new directories 0700) via a temporary file and an
//! atomic move, and never replaces an existing file unless asked. `.age` files are age v1
//! scrypt files with the work factor pinned to Go's 18 ([`age_file`]). Key material is held in
//! zeroizing buffers and never printed by `Debug`.

pub mod age_file;
mod error;
mod key_file;
mod meta;
mod names;
mod node;
pub mod passphrase;
mod peers;
mod secure_file;
mod signer;

pub use error::IdentityError;
pub use key_file::{KeyProtection, read_key_text};
pub use meta::{now_rfc3339, parse_rfc3339_ms, rfc3339_utc};
pub use names::{validate_authorizer_name, validate_file_name_part};
pub use node::*;
pub use passphrase::{PassphraseError, confirm_new_passphrase, validate_new_passphrase};
pub use peers::{DEFAULT_PEERS_FILE, Peers, uuid_v4, validate_node_id};
pub use secure_file::{create_private_dir, ensure_writable, write_private_file};
pub use signer::*;

/// Re-export so callers use the same `ed25519-dalek` version as this crate.
pub use ed25519_dalek;
/// Re-export so callers use the same `p256` version as this crate.
pub use p256;
