//! A node `config.yaml` written from values: the one generator of development node configs,
//! used by `mpcium-cli devnet` and by the test kit's node processes (`mpcium-testkit`).

use zeroize::Zeroizing;

/// An authorizer listed in `authorization.authorizer_public_keys` (and required).
#[derive(Debug, Clone, Copy)]
pub struct TemplateAuthorizer<'a> {
    /// Its name (the key of the map, and an entry of `required_authorizers`).
    pub name: &'a str,
    /// Its public key, hex.
    pub public_key: &'a str,
    /// `ed25519` or `p256`.
    pub algorithm: &'a str,
}

/// The values of a development node's `config.yaml` (`environment: development`, store in
/// `./db`, `/health` on 127.0.0.1).
#[derive(Debug, Clone, Copy)]
pub struct NodeConfigTemplate<'a> {
    /// Comment lines put first, as given (each starting with `#` and ending with a newline).
    pub header: &'a str,
    /// `badger_password`; `None`: not in the file (the node reads it from `--password-file`).
    pub badger_password: Option<&'a str>,
    /// `backup_dir` with backups on; `None`: `backup_enabled: false`.
    pub backup_dir: Option<&'a str>,
    /// `mpc_threshold`.
    pub mpc_threshold: usize,
    /// `event_initiator_pubkey` (hex).
    pub initiator_public_key: &'a str,
    /// `event_initiator_algorithm`.
    pub initiator_algorithm: &'a str,
    /// `chain_code` (hex).
    pub chain_code: &'a str,
    /// `max_concurrent_keygen`.
    pub max_concurrent_keygen: usize,
    /// `max_concurrent_signing`.
    pub max_concurrent_signing: usize,
    /// `nats.url`.
    pub nats_url: &'a str,
    /// `healthcheck.address` is `127.0.0.1:<health_port>`.
    pub health_port: u16,
    /// `node.heartbeat_seconds`; `None`: the default.
    pub heartbeat_seconds: Option<u64>,
    /// Authorizers every request must be co-signed by; none: no `authorization` section (off).
    pub authorizers: &'a [TemplateAuthorizer<'a>],
}

impl NodeConfigTemplate<'_> {
    /// The YAML text (zeroized on drop: it may hold the store password).
    pub fn render(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::new());
        let mut line = |s: String| {
            text.push_str(&s);
            text.push('\n');
        };
        line(format!("{}environment: development", self.header));
        if let Some(password) = self.badger_password {
            line(format!("badger_password: \"{password}\""));
        }
        line("db_path: \"./db\"".into());
        match self.backup_dir {
            Some(dir) => line(format!("backup_enabled: true\nbackup_dir: \"{dir}\"")),
            None => line("backup_enabled: false".into()),
        }
        line(format!("mpc_threshold: {}", self.mpc_threshold));
        line(format!("event_initiator_pubkey: \"{}\"", self.initiator_public_key));
        line(format!("event_initiator_algorithm: {}", self.initiator_algorithm));
        line(format!("chain_code: \"{}\"", self.chain_code));
        line(format!("max_concurrent_keygen: {}", self.max_concurrent_keygen));
        line(format!("max_concurrent_signing: {}", self.max_concurrent_signing));
        line(format!("nats:\n  url: \"{}\"", self.nats_url));
        line(format!("healthcheck:\n  enabled: true\n  address: \"127.0.0.1:{}\"", self.health_port));
        if let Some(seconds) = self.heartbeat_seconds {
            line(format!("node:\n  heartbeat_seconds: {seconds}"));
        }
        if !self.authorizers.is_empty() {
            let names: Vec<String> = self.authorizers.iter().map(|a| format!("\"{}\"", a.name)).collect();
            line(format!(
                "authorization:\n  enabled: true\n  required_authorizers: [{}]\n  authorizer_public_keys:",
                names.join(", ")
            ));
            for a in self.authorizers {
                line(format!(
                    "    {}:\n      public_key: \"{}\"\n      algorithm: {}",
                    a.name, a.public_key, a.algorithm
                ));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NodeConfig, NodeOverrides};

    const CHAIN_CODE: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn template<'a>(initiator: &'a str, authorizers: &'a [TemplateAuthorizer<'a>]) -> NodeConfigTemplate<'a> {
        NodeConfigTemplate {
            header: "# a test node\n",
            badger_password: Some("pw-123"),
            backup_dir: Some("./backups"),
            mpc_threshold: 2,
            initiator_public_key: initiator,
            initiator_algorithm: "ed25519",
            chain_code: CHAIN_CODE,
            max_concurrent_keygen: 2,
            max_concurrent_signing: 10,
            nats_url: "nats://127.0.0.1:4222",
            health_port: 8080,
            heartbeat_seconds: Some(1),
            authorizers,
        }
    }

    #[test]
    fn what_it_writes_the_config_crate_reads_back_as_given() {
        let key = hex::encode(ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key().as_bytes());
        let key = key.as_str();
        let authorizers = [TemplateAuthorizer { name: "risk", public_key: key, algorithm: "ed25519" }];
        let text = template(key, &authorizers).render();
        assert!(text.starts_with("# a test node\nenvironment: development\n"), "{}", *text);
        let (config, warnings) = NodeConfig::from_yaml(&text, &|_| None, NodeOverrides::default()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.badger_password.expose(), "pw-123");
        assert_eq!(config.mpc_threshold, 2);
        assert_eq!(config.chain_code, [0x22; 32]);
        assert_eq!(config.max_concurrent_signing, 10);
        assert_eq!(config.nats.url, "nats://127.0.0.1:4222");
        assert!(config.authorization.enabled);
        assert_eq!(config.authorization.required_authorizers, ["risk"]);

        let bare = NodeConfigTemplate {
            badger_password: None,
            backup_dir: None,
            heartbeat_seconds: None,
            ..template(key, &[])
        }
        .render();
        assert!(bare.contains("backup_enabled: false\n") && !bare.contains("badger_password"), "{}", *bare);
        assert!(!bare.contains("authorization") && !bare.contains("heartbeat_seconds"), "{}", *bare);
    }
}
