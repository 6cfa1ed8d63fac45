//! The raw layer: `config.yaml` as written (every leaf a string), overlaid with environment
//! variables, flattened to dotted keys. Validation (`node.rs`, `client.rs`) reads only from here,
//! so a value from the file and a value from the environment go through the same checks.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use zeroize::Zeroize as _;

use crate::error::{ConfigError, ConfigWarning};

/// Leaves are read as strings (not YAML-typed), so `chain_code: 0123…` or a hex key that looks
/// like a number keeps its exact text; numbers and booleans are parsed later with errors naming
/// the key.
#[derive(Deserialize, Default)]
struct RawConfig {
    environment: Option<String>,
    badger_password: Option<String>,
    db_path: Option<String>,
    backup_enabled: Option<String>,
    backup_period_seconds: Option<String>,
    backup_dir: Option<String>,
    nats: Option<RawNats>,
    mpc_threshold: Option<String>,
    event_initiator_pubkey: Option<String>,
    event_initiator_algorithm: Option<String>,
    max_concurrent_keygen: Option<String>,
    max_concurrent_signing: Option<String>,
    chain_code: Option<String>,
    healthcheck: Option<RawHealthcheck>,
    authorization: Option<RawAuthorization>,
    security: Option<RawSecurity>,
    presign: Option<RawPresign>,
    key_pool: Option<RawKeyPool>,
    limits: Option<RawLimits>,
    node: Option<RawNode>,
    policy: Option<crate::policy::RawPolicy>,
}

#[derive(Deserialize, Default)]
struct RawNats {
    url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    replicas: Option<String>,
    tls: Option<RawNatsTls>,
}

#[derive(Deserialize, Default)]
struct RawNatsTls {
    client_cert: Option<String>,
    client_key: Option<String>,
    ca_cert: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawHealthcheck {
    enabled: Option<String>,
    address: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawAuthorization {
    enabled: Option<String>,
    required_authorizers: Option<Vec<String>>,
    authorizer_public_keys: Option<BTreeMap<String, Option<RawAuthorizerKey>>>,
}

/// One entry of `authorization.authorizer_public_keys.<id>`.
#[derive(Deserialize, Default, Clone)]
pub(crate) struct RawAuthorizerKey {
    pub(crate) public_key: Option<String>,
    pub(crate) algorithm: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawSecurity {
    strict_requests: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawPresign {
    pool_size: Option<String>,
    wallets: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
struct RawKeyPool {
    size: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawLimits {
    max_request_bytes: Option<String>,
    requests_per_second: Option<RawRequestRates>,
    peer_messages_per_second: Option<String>,
    peer_messages_burst: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawRequestRates {
    per_wallet: Option<String>,
    per_wallet_burst: Option<String>,
    cluster: Option<String>,
    cluster_burst: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawNode {
    heartbeat_seconds: Option<String>,
}

type ScalarSlot = fn(&mut RawConfig) -> &mut Option<String>;
type ListSlot = fn(&mut RawConfig) -> &mut Option<Vec<String>>;

/// Every scalar key with where it lives in the raw tree. The environment variable of a key is
/// its upper-cased name with `.` replaced by `_` (the original's viper convention).
const SCALAR_KEYS: &[(&str, ScalarSlot)] = &[
    ("environment", |c| &mut c.environment),
    ("badger_password", |c| &mut c.badger_password),
    ("db_path", |c| &mut c.db_path),
    ("backup_enabled", |c| &mut c.backup_enabled),
    ("backup_period_seconds", |c| &mut c.backup_period_seconds),
    ("backup_dir", |c| &mut c.backup_dir),
    ("nats.url", |c| &mut c.nats.get_or_insert_with(Default::default).url),
    ("nats.username", |c| &mut c.nats.get_or_insert_with(Default::default).username),
    ("nats.password", |c| &mut c.nats.get_or_insert_with(Default::default).password),
    ("nats.replicas", |c| &mut c.nats.get_or_insert_with(Default::default).replicas),
    ("nats.tls.client_cert", |c| &mut nats_tls(c).client_cert),
    ("nats.tls.client_key", |c| &mut nats_tls(c).client_key),
    ("nats.tls.ca_cert", |c| &mut nats_tls(c).ca_cert),
    ("mpc_threshold", |c| &mut c.mpc_threshold),
    ("event_initiator_pubkey", |c| &mut c.event_initiator_pubkey),
    ("event_initiator_algorithm", |c| &mut c.event_initiator_algorithm),
    ("max_concurrent_keygen", |c| &mut c.max_concurrent_keygen),
    ("max_concurrent_signing", |c| &mut c.max_concurrent_signing),
    ("chain_code", |c| &mut c.chain_code),
    ("healthcheck.enabled", |c| &mut c.healthcheck.get_or_insert_with(Default::default).enabled),
    ("healthcheck.address", |c| &mut c.healthcheck.get_or_insert_with(Default::default).address),
    ("authorization.enabled", |c| &mut c.authorization.get_or_insert_with(Default::default).enabled),
    ("security.strict_requests", |c| &mut c.security.get_or_insert_with(Default::default).strict_requests),
    ("presign.pool_size", |c| &mut c.presign.get_or_insert_with(Default::default).pool_size),
    ("key_pool.size", |c| &mut c.key_pool.get_or_insert_with(Default::default).size),
    ("limits.max_request_bytes", |c| &mut c.limits.get_or_insert_with(Default::default).max_request_bytes),
    ("limits.requests_per_second.per_wallet", |c| &mut request_rates(c).per_wallet),
    ("limits.requests_per_second.per_wallet_burst", |c| &mut request_rates(c).per_wallet_burst),
    ("limits.requests_per_second.cluster", |c| &mut request_rates(c).cluster),
    ("limits.requests_per_second.cluster_burst", |c| &mut request_rates(c).cluster_burst),
    ("limits.peer_messages_per_second", |c| {
        &mut c.limits.get_or_insert_with(Default::default).peer_messages_per_second
    }),
    ("limits.peer_messages_burst", |c| {
        &mut c.limits.get_or_insert_with(Default::default).peer_messages_burst
    }),
    ("node.heartbeat_seconds", |c| &mut c.node.get_or_insert_with(Default::default).heartbeat_seconds),
];

/// List keys. From the environment a list is written comma- or whitespace-separated.
const LIST_KEYS: &[(&str, ListSlot)] = &[
    ("authorization.required_authorizers", |c| {
        &mut c.authorization.get_or_insert_with(Default::default).required_authorizers
    }),
    ("presign.wallets", |c| &mut c.presign.get_or_insert_with(Default::default).wallets),
];

const AUTHORIZER_KEYS: &str = "authorization.authorizer_public_keys";
const AUTHORIZER_FIELDS: &[&str] = &["public_key", "algorithm"];
const SECTIONS: &[&str] = &[
    "nats",
    "nats.tls",
    "healthcheck",
    "authorization",
    "security",
    "presign",
    "key_pool",
    "limits",
    "limits.requests_per_second",
    "node",
    "policy",
];
/// Keys of the original that are dead there too (or only read by its examples): accepted silently.
const SILENT_KEYS: &[&str] = &["session_warm_up_delay_ms", "mpcium_version", "aws"];
const CONSUL_REASON: &str =
    "mpcium-rs keeps peers, readiness and wallet metadata in NATS JetStream KV, not Consul";

fn request_rates(c: &mut RawConfig) -> &mut RawRequestRates {
    c.limits.get_or_insert_with(Default::default).requests_per_second.get_or_insert_with(Default::default)
}

fn nats_tls(c: &mut RawConfig) -> &mut RawNatsTls {
    c.nats.get_or_insert_with(Default::default).tls.get_or_insert_with(Default::default)
}

/// The environment variable that overrides `key`.
pub fn env_var_name(key: &str) -> String {
    key.replace('.', "_").to_ascii_uppercase()
}

/// A scalar value and where it came from.
pub(crate) struct Entry {
    pub(crate) value: String,
    pub(crate) env_var: Option<String>,
}

/// Values that nobody took (e.g. `badger_password` when only the client view is loaded) may be
/// secrets: wipe them.
impl Drop for Entry {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

/// The merged file + environment values, keyed by dotted path. Empty strings count as unset
/// (as with viper, which the original uses).
pub(crate) struct Values {
    scalars: BTreeMap<&'static str, Entry>,
    lists: BTreeMap<&'static str, ListEntry>,
    pub(crate) authorizers: BTreeMap<String, RawAuthorizerKey>,
    /// `policy.rules` as written (no environment form).
    pub(crate) policy_rules: Vec<crate::policy::RawRule>,
    pub(crate) warnings: Vec<ConfigWarning>,
}

pub(crate) struct ListEntry {
    pub(crate) items: Vec<String>,
    pub(crate) env_var: Option<String>,
}

impl Values {
    /// Parses `text` and applies the environment (`env` returns a variable's value). Empty
    /// environment variables are ignored, as viper does.
    pub(crate) fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let (mut raw, warnings) = if is_blank_yaml(text) {
            (RawConfig::default(), Vec::new())
        } else {
            let raw: RawConfig =
                serde_saphyr::from_str(text).map_err(|e| ConfigError::Yaml { message: e.to_string() })?;
            let tree: KeyTree =
                serde_saphyr::from_str(text).map_err(|e| ConfigError::Yaml { message: e.to_string() })?;
            let mut warnings = Vec::new();
            if let KeyTree::Map(entries) = &tree {
                collect_warnings(entries, "", &mut warnings);
            }
            (raw, warnings)
        };

        let lookup = |key: &str| -> Option<(String, String)> {
            let name = env_var_name(key);
            env(&name).filter(|v| !v.is_empty()).map(|v| (name, v))
        };

        let mut scalars = BTreeMap::new();
        for (key, slot) in SCALAR_KEYS {
            let from_file = slot(&mut raw).take();
            let entry = match lookup(key) {
                Some((name, value)) => {
                    // The file's value may be a password the environment replaced: wipe it.
                    if let Some(mut shadowed) = from_file {
                        shadowed.zeroize();
                    }
                    Some(Entry { value, env_var: Some(name) })
                }
                None => from_file.map(|value| Entry { value, env_var: None }),
            };
            if let Some(entry) = entry.filter(|e| !e.value.trim().is_empty()) {
                scalars.insert(*key, entry);
            }
        }

        let mut lists = BTreeMap::new();
        for (key, slot) in LIST_KEYS {
            let from_file = slot(&mut raw).take();
            let entry = match lookup(key) {
                Some((name, value)) => Some(ListEntry {
                    items: value
                        .split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    env_var: Some(name),
                }),
                None => from_file.map(|items| ListEntry { items, env_var: None }),
            };
            if let Some(entry) = entry {
                lists.insert(*key, entry);
            }
        }

        let authorizers = raw
            .authorization
            .take()
            .and_then(|a| a.authorizer_public_keys)
            .unwrap_or_default()
            .into_iter()
            .map(|(id, entry)| (id, entry.unwrap_or_default()))
            .collect();

        let policy_rules = raw.policy.take().and_then(|p| p.rules).unwrap_or_default();

        Ok(Self { scalars, lists, authorizers, policy_rules, warnings })
    }

    /// The value of a scalar key, trimmed; `None` when unset or empty.
    pub(crate) fn text(&self, key: &str) -> Option<&str> {
        self.scalars.get(key).map(|e| e.value.trim())
    }

    /// Takes a secret out of the map so only one copy of it stays alive.
    pub(crate) fn take_secret(&mut self, key: &str) -> Option<String> {
        self.scalars.remove(key).map(|mut e| std::mem::take(&mut e.value))
    }

    /// The items of a list key (empty when unset).
    pub(crate) fn list(&self, key: &str) -> &[String] {
        self.lists.get(key).map(|e| e.items.as_slice()).unwrap_or(&[])
    }

    /// An `Invalid` error for `key`, mentioning the environment variable if that is where the
    /// value came from.
    pub(crate) fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        let mut reason = reason.into();
        let env_var = self
            .scalars
            .get(key)
            .and_then(|e| e.env_var.as_ref())
            .or_else(|| self.lists.get(key).and_then(|e| e.env_var.as_ref()));
        if let Some(var) = env_var {
            reason.push_str(&format!(" (value from environment variable {var})"));
        }
        ConfigError::invalid(key, reason)
    }

    /// A boolean key: Go's `strconv.ParseBool` spellings; anything else is an error.
    pub(crate) fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.text(key) {
            None => Ok(default),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(other) => Err(self.invalid(key, format!("`{other}` is not a boolean (use true or false)"))),
        }
    }

    /// An integer key; `None` when unset.
    pub(crate) fn int(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.text(key) {
            None => Ok(None),
            Some(text) => text
                .parse::<i64>()
                .map(Some)
                .map_err(|_| self.invalid(key, format!("`{text}` is not an integer"))),
        }
    }
}

/// True for a document with nothing but comments and whitespace (an empty YAML document has no
/// mapping to deserialize into).
fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    })
}

fn collect_warnings(entries: &[(String, KeyTree)], prefix: &str, out: &mut Vec<ConfigWarning>) {
    for (name, child) in entries {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        let known_leaf = SCALAR_KEYS.iter().any(|(k, _)| *k == path)
            || LIST_KEYS.iter().any(|(k, _)| *k == path)
            || path == crate::policy::RULES_KEY;
        if known_leaf || SILENT_KEYS.contains(&path.as_str()) {
            continue;
        }
        if path == "consul" {
            out.push(ConfigWarning::Ignored { key: path, reason: CONSUL_REASON });
            continue;
        }
        if SECTIONS.contains(&path.as_str()) {
            if let KeyTree::Map(children) = child {
                collect_warnings(children, &path, out);
            }
            continue;
        }
        if path == AUTHORIZER_KEYS {
            if let KeyTree::Map(ids) = child {
                for (id, fields) in ids {
                    if let KeyTree::Map(fields) = fields {
                        for (field, _) in fields {
                            if !AUTHORIZER_FIELDS.contains(&field.as_str()) {
                                out.push(ConfigWarning::UnknownKey { key: format!("{path}.{id}.{field}") });
                            }
                        }
                    }
                }
            }
            continue;
        }
        out.push(ConfigWarning::UnknownKey { key: path });
    }
}

/// The shape of the YAML document (key names only), to find keys we do not know.
enum KeyTree {
    Leaf,
    Map(Vec<(String, KeyTree)>),
}

impl<'de> Deserialize<'de> for KeyTree {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyTreeVisitor)
    }
}

struct KeyTreeVisitor;

macro_rules! leaf_visits {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name<E: de::Error>(self, _: $ty) -> Result<KeyTree, E> { Ok(KeyTree::Leaf) })*
    };
}

impl<'de> Visitor<'de> for KeyTreeVisitor {
    type Value = KeyTree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    leaf_visits!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128, visit_u128: u128, visit_f64: f64, visit_str: &str, visit_bytes: &[u8]);

    fn visit_unit<E: de::Error>(self) -> Result<KeyTree, E> {
        Ok(KeyTree::Leaf)
    }

    fn visit_none<E: de::Error>(self) -> Result<KeyTree, E> {
        Ok(KeyTree::Leaf)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<KeyTree, D::Error> {
        d.deserialize_any(KeyTreeVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyTree, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(KeyTree::Leaf)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyTree, A::Error> {
        let mut entries = Vec::new();
        while let Some(KeyName(name)) = map.next_key::<KeyName>()? {
            entries.push((name, map.next_value::<KeyTree>()?));
        }
        Ok(KeyTree::Map(entries))
    }
}

/// A mapping key rendered as text, whatever its YAML type.
struct KeyName(String);

impl<'de> Deserialize<'de> for KeyName {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyName, E> {
                Ok(KeyName(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyName, E> {
                Ok(KeyName("null".to_owned()))
            }
        }
        deserializer.deserialize_any(V)
    }
}
