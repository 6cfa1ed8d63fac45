//! `peers.json`: the cluster membership, a JSON object node name → node ID
//! (`{"node0":"<uuid>",…}`, docs/wire.md §12.1).
//!
//! It lives in this crate (not the config crate) because it is the index of the identity files:
//! `generate-identity` looks a node's ID up here and the node checks each `<name>_identity.json`
//! against it, and it is written with the same 0600 no-clobber writer as the key files.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, MapAccess, Visitor};

use crate::error::{IdentityError, random_bytes};
use crate::names::validate_file_name_part;
use crate::secure_file::{read_file, write_private_file};

/// The default file name.
pub const DEFAULT_PEERS_FILE: &str = "peers.json";

/// Validated cluster membership: unique names, unique IDs, IDs safe as NATS subject tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peers {
    by_name: BTreeMap<String, String>,
}

impl Peers {
    /// Builds from name → ID pairs, validating them.
    pub fn new(by_name: BTreeMap<String, String>) -> Result<Self, String> {
        let mut ids = BTreeMap::new();
        for (name, id) in &by_name {
            validate_file_name_part(name).map_err(|e| e.to_string())?;
            validate_node_id(id).map_err(|reason| format!("node `{name}`: {reason}"))?;
            if let Some(other) = ids.insert(id.as_str(), name.as_str()) {
                return Err(format!("nodes `{other}` and `{name}` have the same ID `{id}`"));
            }
        }
        if by_name.is_empty() {
            return Err("no peers listed".to_owned());
        }
        Ok(Self { by_name })
    }

    /// `count` peers named `node0` … `node{count-1}` with random UUID v4 IDs.
    pub fn generate(count: usize) -> Result<Self, IdentityError> {
        let mut by_name = BTreeMap::new();
        for i in 0..count {
            by_name.insert(format!("node{i}"), uuid_v4()?);
        }
        Self::new(by_name)
            .map_err(|reason| IdentityError::InvalidPeers { path: PathBuf::from("<generated>"), reason })
    }

    /// Parses the JSON text of a peers file (`path` only names it in errors). Duplicate names
    /// are an error, not "last one wins".
    pub fn parse(text: &str, path: &Path) -> Result<Self, IdentityError> {
        let invalid = |reason: String| IdentityError::InvalidPeers { path: path.to_path_buf(), reason };
        let UniqueMap(by_name) = serde_json::from_str(text)
            .map_err(|e| invalid(format!("expected a JSON object of node name to node ID: {e}")))?;
        Self::new(by_name).map_err(invalid)
    }

    /// Reads and validates a peers file.
    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let bytes = read_file(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| IdentityError::InvalidPeers {
            path: path.to_path_buf(),
            reason: "not UTF-8".to_owned(),
        })?;
        Self::parse(text, path)
    }

    /// The JSON form the original writes: 2-space indent, keys sorted, no trailing newline.
    pub fn to_json(&self) -> String {
        // A map of strings always serializes.
        serde_json::to_string_pretty(&self.by_name).unwrap_or_default()
    }

    /// Writes the file with mode 0600; refuses to replace an existing file unless `overwrite`.
    pub fn write(&self, path: &Path, overwrite: bool) -> Result<(), IdentityError> {
        write_private_file(path, self.to_json().as_bytes(), overwrite)
    }

    /// The ID of node `name`.
    pub fn node_id(&self, name: &str) -> Option<&str> {
        self.by_name.get(name).map(String::as_str)
    }

    /// The name of the node with ID `id`.
    pub fn node_name(&self, id: &str) -> Option<&str> {
        self.by_name.iter().find(|(_, v)| v.as_str() == id).map(|(k, _)| k.as_str())
    }

    /// (name, ID) pairs sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_name.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Always false for a validated set (at least one peer); here for API completeness.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// A node ID must be usable as one NATS subject token and inside the original's
/// `<nodeID>:<...>` party keys: non-empty, printable ASCII, none of `:` `.` `*` `>` or spaces.
pub fn validate_node_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("node ID is empty".to_owned());
    }
    if let Some(c) = id.chars().find(|c| !c.is_ascii_graphic() || matches!(c, ':' | '.' | '*' | '>')) {
        return Err(format!(
            "node ID `{}` contains {c:?}, which is not allowed (no `:`, `.`, `*`, `>`, spaces or non-ASCII)",
            id.escape_debug()
        ));
    }
    Ok(())
}

/// A random UUID version 4 in its lowercase 8-4-4-4-12 form.
pub fn uuid_v4() -> Result<String, IdentityError> {
    let mut b = [0u8; 16];
    random_bytes(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

/// A JSON object of strings that rejects duplicate keys.
struct UniqueMap(BTreeMap<String, String>);

impl<'de> de::Deserialize<'de> for UniqueMap {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of node name to node ID")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueMap, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    if out.contains_key(&k) {
                        return Err(de::Error::custom(format!("node name `{k}` is listed twice")));
                    }
                    out.insert(k, v);
                }
                Ok(UniqueMap(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}
