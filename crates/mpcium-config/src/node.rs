//! [`NodeConfig`]: the validated `config.yaml` of a node (`mpcium start`), docs/wire.md §12.2 plus the
//! keys mpcium-rs adds (`security.*`, `presign.*`, `key_pool.*`, `limits.*`, `node.*`,
//! `policy.*`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{ConfigError, ConfigWarning};
use crate::keys::{KeyAlgorithm, PublicKey};
use crate::limits::LimitsConfig;
use crate::nats::{Environment, NatsConfig};
use crate::raw::Values;
use crate::secret::SecretString;

/// `db_path` when empty.
pub const DEFAULT_DB_PATH: &str = "./db";
/// `backup_dir` when empty.
pub const DEFAULT_BACKUP_DIR: &str = "./backups";
/// `backup_period_seconds` when ≤ 0.
pub const DEFAULT_BACKUP_PERIOD_SECONDS: u64 = 300;
/// `max_concurrent_keygen` when 0 or unset.
pub const DEFAULT_MAX_CONCURRENT_KEYGEN: usize = 2;
/// `max_concurrent_signing` when 0 or unset.
pub const DEFAULT_MAX_CONCURRENT_SIGNING: usize = 20;
/// `healthcheck.address` when empty (all interfaces, port 8080).
pub const DEFAULT_HEALTHCHECK_ADDRESS: &str = ":8080";
/// `presign.pool_size` when unset: presignatures kept ready per wallet.
pub const DEFAULT_PRESIGN_POOL_SIZE: usize = 8;
/// Largest accepted `presign.pool_size`.
pub const MAX_PRESIGN_POOL_SIZE: usize = 1024;
/// Largest accepted `key_pool.size`.
pub const MAX_KEY_POOL_SIZE: usize = 1024;
/// `node.heartbeat_seconds` when unset.
pub const DEFAULT_HEARTBEAT_SECONDS: u64 = 5;
/// Largest accepted `node.heartbeat_seconds`.
pub const MAX_HEARTBEAT_SECONDS: u64 = 3600;

/// Values the node's command line supplies instead of the file (`-f`/`-p` of `mpcium start`).
/// They win over both the file and the environment.
#[derive(Debug, Default, Clone)]
pub struct NodeOverrides {
    /// Badger (store) password from `--password-file` or the prompt.
    pub badger_password: Option<SecretString>,
}

/// Periodic encrypted backups (`backup_enabled`, `backup_period_seconds`, `backup_dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupConfig {
    /// `backup_enabled`, default true.
    pub enabled: bool,
    /// `backup_period_seconds`; ≤ 0 or unset means 300 s.
    pub period: Duration,
    /// `backup_dir`; empty means `./backups`.
    pub dir: PathBuf,
}

/// The optional HTTP health endpoint (`healthcheck.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckConfig {
    /// `healthcheck.enabled`, default false.
    pub enabled: bool,
    /// `healthcheck.address` in Go's `host:port` form; `:8080` (no host) means all interfaces.
    pub address: String,
}

impl HealthcheckConfig {
    /// The address in a form `std::net::ToSocketAddrs` accepts (`:8080` becomes `0.0.0.0:8080`).
    pub fn bind_address(&self) -> String {
        if self.address.starts_with(':') { format!("0.0.0.0{}", self.address) } else { self.address.clone() }
    }
}

/// Authorizer co-signatures on requests (`authorization.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationConfig {
    /// `authorization.enabled`, default false.
    pub enabled: bool,
    /// `authorization.required_authorizers`: IDs whose valid signature every request must carry.
    /// Each must have an entry in `authorizer_public_keys`.
    pub required_authorizers: Vec<String>,
    /// `authorization.authorizer_public_keys.<id>`: the keys signatures are checked against.
    pub authorizer_public_keys: BTreeMap<String, PublicKey>,
}

/// Hardening switches of mpcium-rs (`security.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityConfig {
    /// `security.strict_requests` (default false): reject requests the original would accept but
    /// that are unsafe (see docs/wire.md §13), instead of only logging them.
    pub strict_requests: bool,
}

/// ECDSA presignature pool (`presign.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignConfig {
    /// `presign.pool_size`: presignatures kept ready per wallet (default 8; 0 disables the pool).
    pub pool_size: usize,
    /// `presign.wallets`: wallets to keep a pool for; empty means every wallet that has signed.
    pub wallets: Vec<String>,
}

/// Keys made ahead of their wallets (`key_pool.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyPoolConfig {
    /// `key_pool.size`: keys (each an ECDSA, EdDSA and Taproot key, as one keygen makes) this
    /// node keeps made ahead as coordinator, handed to the next wallets it creates (default 0:
    /// off; every keygen then runs its DKGs while the client waits).
    pub size: usize,
}

/// Node liveness (`node.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSettings {
    /// `node.heartbeat_seconds` (default 5): how often the node refreshes its readiness key in
    /// the registry; peers treat a key older than a few heartbeats as a dead node.
    pub heartbeat: Duration,
}

/// The validated configuration of a node. `Debug` redacts the passwords.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `environment`.
    pub environment: Environment,
    /// `badger_password`: the password of the key-share store and its backups (required; any
    /// non-empty value, as in the original and as the store accepts: Argon2id stretches it).
    pub badger_password: SecretString,
    /// `db_path`; empty means `./db`. The store lives in `<db_path>/<node name>`.
    pub db_path: PathBuf,
    /// `backup_*`.
    pub backup: BackupConfig,
    /// `nats.*`.
    pub nats: NatsConfig,
    /// `mpc_threshold` (t ≥ 1): a signature needs t+1 parties.
    pub mpc_threshold: usize,
    /// `event_initiator_pubkey` parsed for `event_initiator_algorithm` (default ed25519).
    pub event_initiator: PublicKey,
    /// `max_concurrent_keygen`; 0 or unset means 2.
    pub max_concurrent_keygen: usize,
    /// `max_concurrent_signing`; 0 or unset means 20.
    pub max_concurrent_signing: usize,
    /// `chain_code`: 32 bytes (64 hex chars) for HD derivation, identical on all nodes.
    pub chain_code: [u8; 32],
    /// `healthcheck.*`.
    pub healthcheck: HealthcheckConfig,
    /// `authorization.*`.
    pub authorization: AuthorizationConfig,
    /// `security.*` (mpcium-rs).
    pub security: SecurityConfig,
    /// `presign.*` (mpcium-rs).
    pub presign: PresignConfig,
    /// `key_pool.*` (mpcium-rs).
    pub key_pool: KeyPoolConfig,
    /// `limits.*` (mpcium-rs).
    pub limits: LimitsConfig,
    /// `node.*` (mpcium-rs).
    pub node: NodeSettings,
    /// `policy.*` (mpcium-rs): approval rules by value.
    pub policy: crate::policy::PolicyConfig,
}

impl NodeConfig {
    /// Validates merged values; the first problem found is returned.
    pub(crate) fn from_values(
        mut values: Values,
        overrides: NodeOverrides,
    ) -> Result<(Self, Vec<ConfigWarning>), ConfigError> {
        let environment = Environment::from_values(&values)?;
        let badger_password = match overrides.badger_password {
            Some(p) if !p.is_empty() => p,
            _ => values
                .take_secret("badger_password")
                .map(SecretString::new)
                .ok_or_else(|| ConfigError::missing("badger_password"))?,
        };
        let nats = NatsConfig::from_values(&mut values)?;

        let db_path = PathBuf::from(values.text("db_path").unwrap_or(DEFAULT_DB_PATH));
        let backup = BackupConfig {
            enabled: values.bool("backup_enabled", true)?,
            period: Duration::from_secs(match values.int("backup_period_seconds")? {
                Some(s) if s > 0 => s.unsigned_abs(),
                _ => DEFAULT_BACKUP_PERIOD_SECONDS,
            }),
            dir: PathBuf::from(values.text("backup_dir").unwrap_or(DEFAULT_BACKUP_DIR)),
        };

        let mpc_threshold = match values.int("mpc_threshold")? {
            None => return Err(ConfigError::missing("mpc_threshold")),
            Some(t) if t < 1 => return Err(values.invalid("mpc_threshold", "must be at least 1")),
            Some(t) => usize::try_from(t).map_err(|_| values.invalid("mpc_threshold", "is too large"))?,
        };

        let algorithm = match values.text("event_initiator_algorithm") {
            None => KeyAlgorithm::Ed25519,
            Some(a) => {
                a.parse().map_err(|reason: String| values.invalid("event_initiator_algorithm", reason))?
            }
        };
        let pubkey = values
            .text("event_initiator_pubkey")
            .ok_or_else(|| ConfigError::missing("event_initiator_pubkey"))?;
        let event_initiator = PublicKey::parse(algorithm, pubkey).map_err(|reason| {
            values.invalid(
                "event_initiator_pubkey",
                format!("{reason} (event_initiator_algorithm is {algorithm})"),
            )
        })?;

        let max_concurrent_keygen =
            positive_or_default(&values, "max_concurrent_keygen", DEFAULT_MAX_CONCURRENT_KEYGEN)?;
        let max_concurrent_signing =
            positive_or_default(&values, "max_concurrent_signing", DEFAULT_MAX_CONCURRENT_SIGNING)?;

        let chain_code = parse_chain_code(&values)?;

        let healthcheck = HealthcheckConfig {
            enabled: values.bool("healthcheck.enabled", false)?,
            address: parse_listen_address(&values)?,
        };

        let authorization = parse_authorization(&values)?;
        let policy = crate::policy::parse(std::mem::take(&mut values.policy_rules), &authorization)?;

        let security = SecurityConfig { strict_requests: values.bool("security.strict_requests", false)? };

        let pool_size = match values.int("presign.pool_size")? {
            None => DEFAULT_PRESIGN_POOL_SIZE,
            Some(n) if (0..=MAX_PRESIGN_POOL_SIZE as i64).contains(&n) => n.unsigned_abs() as usize,
            Some(_) => {
                return Err(values
                    .invalid("presign.pool_size", format!("must be between 0 and {MAX_PRESIGN_POOL_SIZE}")));
            }
        };
        let wallets = values.list("presign.wallets").to_vec();
        if wallets.iter().any(|w| w.trim().is_empty()) {
            return Err(values.invalid("presign.wallets", "contains an empty wallet id"));
        }
        let presign = PresignConfig { pool_size, wallets };

        let key_pool = match values.int("key_pool.size")? {
            None => KeyPoolConfig::default(),
            Some(n) if (0..=MAX_KEY_POOL_SIZE as i64).contains(&n) => {
                KeyPoolConfig { size: n.unsigned_abs() as usize }
            }
            Some(_) => {
                return Err(
                    values.invalid("key_pool.size", format!("must be between 0 and {MAX_KEY_POOL_SIZE}"))
                );
            }
        };

        let limits = LimitsConfig::from_values(&values)?;

        let heartbeat = match values.int("node.heartbeat_seconds")? {
            None => DEFAULT_HEARTBEAT_SECONDS,
            Some(n) if (1..=MAX_HEARTBEAT_SECONDS as i64).contains(&n) => n.unsigned_abs(),
            Some(_) => {
                return Err(values.invalid(
                    "node.heartbeat_seconds",
                    format!("must be between 1 and {MAX_HEARTBEAT_SECONDS}"),
                ));
            }
        };

        let config = Self {
            environment,
            badger_password,
            db_path,
            backup,
            nats,
            mpc_threshold,
            event_initiator,
            max_concurrent_keygen,
            max_concurrent_signing,
            chain_code,
            healthcheck,
            authorization,
            security,
            presign,
            key_pool,
            limits,
            node: NodeSettings { heartbeat: Duration::from_secs(heartbeat) },
            policy,
        };
        Ok((config, values.warnings))
    }
}

/// 0 or unset means `default`; negative is an error.
fn positive_or_default(values: &Values, key: &str, default: usize) -> Result<usize, ConfigError> {
    match values.int(key)? {
        None | Some(0) => Ok(default),
        Some(n) if n < 0 => Err(values.invalid(key, "must not be negative")),
        Some(n) => usize::try_from(n).map_err(|_| values.invalid(key, "is too large")),
    }
}

fn parse_chain_code(values: &Values) -> Result<[u8; 32], ConfigError> {
    let text = values.text("chain_code").ok_or_else(|| ConfigError::missing("chain_code"))?;
    if text.len() != 64 {
        return Err(
            values.invalid("chain_code", format!("must be exactly 64 hex characters, got {}", text.len()))
        );
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|e| values.invalid("chain_code", format!("is not hex: {e}")))?;
    Ok(out)
}

fn parse_listen_address(values: &Values) -> Result<String, ConfigError> {
    let Some(address) = values.text("healthcheck.address") else {
        return Ok(DEFAULT_HEALTHCHECK_ADDRESS.to_owned());
    };
    let port_ok = address.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    if !port_ok {
        return Err(values.invalid(
            "healthcheck.address",
            format!("`{address}` is not host:port (e.g. `:8080` or `127.0.0.1:8080`)"),
        ));
    }
    Ok(address.to_owned())
}

fn parse_authorization(values: &Values) -> Result<AuthorizationConfig, ConfigError> {
    let mut keys = BTreeMap::new();
    for (id, entry) in &values.authorizers {
        let key = format!("authorization.authorizer_public_keys.{id}");
        let algorithm = match entry.algorithm.as_deref().map(str::trim) {
            None | Some("") => KeyAlgorithm::Ed25519,
            Some(a) => {
                a.parse().map_err(|reason| ConfigError::invalid(format!("{key}.algorithm"), reason))?
            }
        };
        let public_key = entry
            .public_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ConfigError::missing(format!("{key}.public_key")))?;
        let parsed = PublicKey::parse(algorithm, public_key)
            .map_err(|reason| ConfigError::invalid(format!("{key}.public_key"), reason))?;
        keys.insert(id.clone(), parsed);
    }
    let required = values.list("authorization.required_authorizers").to_vec();
    for id in &required {
        if !keys.contains_key(id) {
            return Err(values.invalid(
                "authorization.required_authorizers",
                format!("authorizer `{id}` has no entry in authorization.authorizer_public_keys"),
            ));
        }
    }
    Ok(AuthorizationConfig {
        enabled: values.bool("authorization.enabled", false)?,
        required_authorizers: required,
        authorizer_public_keys: keys,
    })
}
