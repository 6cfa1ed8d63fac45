//! A node's identity (docs/wire.md §12.1): `<dir>/<node>_identity.json` (public) and
//! `<dir>/<node>_private.key` — 128 hex chars of Go's 64-byte Ed25519 private key (seed‖public
//! key), no newline — or its age-encrypted form `<dir>/<node>_private.key.age`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{IdentityError, random_bytes};
use crate::key_file::{KeyProtection, decode_hex, read_key_text};
use crate::meta::now_rfc3339;
use crate::names::validate_file_name_part;
use crate::peers::{Peers, validate_node_id};
use crate::secure_file::{create_private_dir, ensure_writable, read_file, write_private_file};

/// The default identity directory (relative to the working directory).
pub const DEFAULT_IDENTITY_DIR: &str = "identity";

/// Contents of `<node>_identity.json`; distributed to every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// Node name (key in `peers.json`).
    pub node_name: String,
    /// Node ID (value in `peers.json`).
    pub node_id: String,
    /// Hex of the 32-byte Ed25519 public key.
    pub public_key: String,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
}

impl NodeIdentity {
    /// The public key, decoded and checked to be a curve point.
    pub fn verifying_key(&self) -> Result<VerifyingKey, IdentityError> {
        let what = format!("public key of node `{}`", self.node_name);
        let bytes = decode_hex(&what, &self.public_key)?;
        let bytes: [u8; 32] =
            bytes.as_slice().try_into().map_err(|_| IdentityError::invalid_key(&what, "must be 32 bytes"))?;
        VerifyingKey::from_bytes(&bytes)
            .map_err(|_| IdentityError::invalid_key(&what, "not a valid Ed25519 point"))
    }

    /// Reads and parses an identity file.
    pub fn read(path: &Path) -> Result<Self, IdentityError> {
        let bytes = read_file(path)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| IdentityError::Json { path: path.to_path_buf(), reason: e.to_string() })
    }
}

/// `<dir>/<node>_identity.json`.
pub fn node_identity_path(dir: &Path, node_name: &str) -> PathBuf {
    dir.join(format!("{node_name}_identity.json"))
}

/// `<dir>/<node>_private.key` or, encrypted, `<dir>/<node>_private.key.age`.
pub fn node_private_key_path(dir: &Path, node_name: &str, encrypted: bool) -> PathBuf {
    let base = format!("{node_name}_private.key");
    dir.join(if encrypted { format!("{base}.age") } else { base })
}

/// A fresh Ed25519 key pair for a node, and its identity record.
pub fn generate_node_identity(
    node_name: &str,
    node_id: &str,
) -> Result<(NodeIdentity, SigningKey), IdentityError> {
    validate_file_name_part(node_name)?;
    validate_node_id(node_id)
        .map_err(|reason| IdentityError::InvalidName { name: node_id.to_owned(), reason })?;
    let mut seed = Zeroizing::new([0u8; 32]);
    random_bytes(seed.as_mut())?;
    let key = SigningKey::from_bytes(&seed);
    let identity = NodeIdentity {
        node_name: node_name.to_owned(),
        node_id: node_id.to_owned(),
        public_key: hex::encode(key.verifying_key().as_bytes()),
        created_at: now_rfc3339(),
    };
    Ok((identity, key))
}

/// Go's private key text: hex of seed‖public key (128 chars).
pub fn encode_node_private_key(key: &SigningKey) -> Zeroizing<String> {
    let pair = Zeroizing::new(key.to_keypair_bytes());
    Zeroizing::new(hex::encode(pair.as_slice()))
}

/// Parses Go's 128-hex-char private key; the public half must match the seed.
pub fn decode_node_private_key(text: &str) -> Result<SigningKey, IdentityError> {
    let what = "node private key";
    let bytes = decode_hex(what, text.trim())?;
    let pair: &[u8; 64] = bytes.as_slice().try_into().map_err(|_| {
        IdentityError::invalid_key(what, format!("must be 64 bytes (128 hex chars), got {}", bytes.len()))
    })?;
    SigningKey::from_keypair_bytes(pair)
        .map_err(|_| IdentityError::invalid_key(what, "public half does not match the seed"))
}

/// The files written by [`write_node_identity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentityFiles {
    /// `<node>_identity.json`.
    pub identity: PathBuf,
    /// `<node>_private.key` or `<node>_private.key.age`.
    pub private_key: PathBuf,
}

/// Writes `<dir>/<node>_identity.json` and the private key file (mode 0600, dir 0700). Nothing
/// is written if either file exists and `overwrite` is false.
pub fn write_node_identity(
    dir: &Path,
    identity: &NodeIdentity,
    key: &SigningKey,
    protection: KeyProtection<'_>,
    overwrite: bool,
) -> Result<NodeIdentityFiles, IdentityError> {
    validate_file_name_part(&identity.node_name)?;
    let files = NodeIdentityFiles {
        identity: node_identity_path(dir, &identity.node_name),
        private_key: node_private_key_path(dir, &identity.node_name, protection.is_encrypted()),
    };
    ensure_writable(&files.identity, overwrite)?;
    ensure_writable(&files.private_key, overwrite)?;
    create_private_dir(dir)?;
    let sealed = protection.seal(&encode_node_private_key(key))?;
    let json = serde_json::to_string_pretty(identity)
        .map_err(|e| IdentityError::Json { path: files.identity.clone(), reason: e.to_string() })?;
    write_private_file(&files.private_key, &sealed, overwrite)?;
    write_private_file(&files.identity, json.as_bytes(), overwrite)?;
    Ok(files)
}

/// Loads this node's signing key from `dir`: `<node>_private.key.age` when a passphrase is
/// given, else `<node>_private.key`, and checks it against `<node>_identity.json`.
pub fn load_node_signing_key(
    dir: &Path,
    node_name: &str,
    passphrase: Option<&str>,
) -> Result<SigningKey, IdentityError> {
    validate_file_name_part(node_name)?;
    let key_path = node_private_key_path(dir, node_name, passphrase.is_some());
    let identity_path = node_identity_path(dir, node_name);
    let text = read_key_text(&key_path, passphrase)?;
    let key = decode_node_private_key(&text).map_err(|e| match e {
        IdentityError::InvalidKey { reason, .. } => {
            IdentityError::invalid_key(key_path.display().to_string(), reason)
        }
        other => other,
    })?;
    let identity = NodeIdentity::read(&identity_path)?;
    if identity.verifying_key()? != key.verifying_key() {
        return Err(IdentityError::PublicKeyMismatch { key_path, identity_path });
    }
    Ok(key)
}

/// A peer's public identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPublicKey {
    /// Node name.
    pub node_name: String,
    /// Ed25519 public key.
    pub public_key: VerifyingKey,
}

/// Loads every `*_identity.json` in `dir`, keyed by node ID. The name in each file must match
/// its file name; IDs must be unique.
pub fn load_peer_public_keys(dir: &Path) -> Result<BTreeMap<String, PeerPublicKey>, IdentityError> {
    let entries = std::fs::read_dir(dir).map_err(|e| IdentityError::io(dir, e))?;
    let mut out = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| IdentityError::io(dir, e))?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(|f| f.strip_suffix("_identity.json")) else {
            continue;
        };
        let path = entry.path();
        let identity = NodeIdentity::read(&path)?;
        if identity.node_name != name {
            return Err(IdentityError::Json {
                path,
                reason: format!("node_name `{}` does not match the file name", identity.node_name),
            });
        }
        validate_node_id(&identity.node_id)
            .map_err(|reason| IdentityError::Json { path: path.clone(), reason })?;
        let public_key = identity.verifying_key()?;
        if let Some(prev) = out.insert(
            identity.node_id.clone(),
            PeerPublicKey { node_name: identity.node_name.clone(), public_key },
        ) {
            return Err(IdentityError::Json {
                path,
                reason: format!("node ID `{}` is also used by `{}`", identity.node_id, prev.node_name),
            });
        }
    }
    Ok(out)
}

/// Checks loaded peer keys against `peers.json`: every peer has an identity file with the same
/// name and ID.
pub fn check_peer_keys(
    peers: &Peers,
    keys: &BTreeMap<String, PeerPublicKey>,
    peers_path: &Path,
) -> Result<(), IdentityError> {
    for (name, id) in peers.iter() {
        match keys.get(id) {
            Some(k) if k.node_name == name => {}
            Some(k) => {
                return Err(IdentityError::InvalidPeers {
                    path: peers_path.to_path_buf(),
                    reason: format!(
                        "node ID `{id}` belongs to `{name}` but its identity file is `{}`",
                        k.node_name
                    ),
                });
            }
            None => {
                return Err(IdentityError::InvalidPeers {
                    path: peers_path.to_path_buf(),
                    reason: format!("no identity file for node `{name}` (ID `{id}`)"),
                });
            }
        }
    }
    Ok(())
}
