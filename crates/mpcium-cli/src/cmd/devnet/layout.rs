//! The devnet directory: created on the first run, reused on the next ones.
//!
//! ```text
//! <dir>/devnet.json                    marker (node count, creation time), written last
//! <dir>/event_initiator.key            initiator Ed25519 seed (hex, 0600)
//! <dir>/event_initiator.identity.json  its public key (trusted unless `--initiator-identity`)
//! <dir>/nats/                          nats.conf, nats.log, jetstream/ (the registry survives restarts)
//! <dir>/node<i>/config.yaml            rewritten on every start (NATS and health ports change)
//! <dir>/node<i>/peers.json
//! <dir>/node<i>/identity/              every node's <name>_identity.json, its own <name>_private.key
//! <dir>/node<i>/db/, backups/          the node's store and backups
//! <dir>/node<i>/node.log               this run's log (the previous run's is node.log.prev)
//! ```
//!
//! Secrets that must survive a restart (each node's store password, the shared chain code) are
//! read back from the existing `config.yaml` files, which is why a re-run reuses the directory
//! instead of regenerating it.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use mpcium_config::template::{NodeConfigTemplate, TemplateAuthorizer};
use mpcium_config::{NodeConfig, NodeOverrides};
use mpcium_identity::{
    AuthorizerIdentity, DEFAULT_IDENTITY_DIR, DEFAULT_INITIATOR_NAME, DEFAULT_PEERS_FILE, InitiatorIdentity,
    KeyProtection, Peers, SignerAlgorithm, SignerFiles, create_initiator, create_private_dir,
    generate_node_identity, initiator_paths, node_identity_path, node_private_key_path, write_node_identity,
    write_private_file,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Name of the marker file that makes a directory a complete devnet.
pub const MARKER_FILE: &str = "devnet.json";

/// Paths inside a devnet directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Creates `dir` (0700) if needed; paths are absolute so they can be printed and used from
    /// any working directory.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        create_private_dir(dir)?;
        let root = dir.canonicalize().with_context(|| format!("cannot resolve {}", dir.display()))?;
        Ok(Self { root })
    }

    /// The devnet directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `node<i>`.
    pub fn node_name(index: usize) -> String {
        format!("node{index}")
    }

    /// `<dir>/node<i>`.
    pub fn node_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// `<dir>/node<i>/config.yaml`.
    pub fn config(&self, name: &str) -> PathBuf {
        self.node_dir(name).join("config.yaml")
    }

    /// `<dir>/node<i>/peers.json`.
    pub fn peers_file(&self, name: &str) -> PathBuf {
        self.node_dir(name).join(DEFAULT_PEERS_FILE)
    }

    /// `<dir>/node<i>/identity`.
    pub fn identity_dir(&self, name: &str) -> PathBuf {
        self.node_dir(name).join(DEFAULT_IDENTITY_DIR)
    }

    /// `<dir>/node<i>/node.log`.
    pub fn node_log(&self, name: &str) -> PathBuf {
        self.node_dir(name).join("node.log")
    }

    /// `<dir>/nats`.
    pub fn nats_dir(&self) -> PathBuf {
        self.root.join("nats")
    }

    /// The initiator's key and identity files.
    pub fn initiator(&self) -> SignerFiles {
        initiator_paths(&self.root, DEFAULT_INITIATOR_NAME, false)
    }

    fn marker(&self) -> PathBuf {
        self.root.join(MARKER_FILE)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    nodes: usize,
    created_at: String,
}

/// Membership and the secrets shared by the configs of a devnet.
pub struct State {
    /// Node name → id.
    pub peers: Peers,
    /// `node0 … node{n-1}`, in index order.
    pub names: Vec<String>,
    /// `mpc_threshold`.
    pub threshold: usize,
    /// Hex of the trusted initiator's public key (`event_initiator_pubkey`): the devnet's own
    /// Ed25519 one unless [`State::trust`] replaced it.
    pub initiator_public_key: String,
    /// `event_initiator_algorithm`.
    pub initiator_algorithm: SignerAlgorithm,
    /// Authorizers every request must be co-signed by (`authorization.*`); none: authorization off.
    pub authorizers: Vec<AuthorizerIdentity>,
    chain_code: Zeroizing<String>,
    passwords: Vec<Zeroizing<String>>,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("names", &self.names)
            .field("threshold", &self.threshold)
            .field("initiator_public_key", &self.initiator_public_key)
            .field("initiator_algorithm", &self.initiator_algorithm)
            .field("authorizers", &self.authorizers.iter().map(|a| &a.name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl State {
    /// For this run, trusts `initiator` (an identity file of `generate-initiator`, Ed25519 or
    /// P-256) instead of the devnet's own initiator, and turns authorization on with every one of
    /// `authorizers` required. Nothing is stored: configs are rewritten on every start.
    pub fn trust(
        &mut self,
        initiator: Option<InitiatorIdentity>,
        authorizers: Vec<AuthorizerIdentity>,
    ) -> anyhow::Result<()> {
        if let Some(initiator) = initiator {
            self.initiator_algorithm = initiator.algorithm()?;
            self.initiator_public_key = initiator.public_key;
        }
        for (i, authorizer) in authorizers.iter().enumerate() {
            authorizer.algorithm()?;
            ensure!(
                !authorizer.name.is_empty()
                    && authorizer.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "authorizer name `{}` is not made of letters, digits, `_` and `-`",
                authorizer.name
            );
            ensure!(
                authorizers[..i].iter().all(|a| a.name != authorizer.name),
                "authorizer `{}` is given twice",
                authorizer.name
            );
        }
        self.authorizers = authorizers;
        Ok(())
    }
}

/// Loads the devnet in `layout` or, if the directory is empty, generates a new one.
/// `nodes` / `threshold` are the command-line values (None = default for a new devnet, the
/// existing value for a reused one). Returns the state and whether it was created now.
pub fn prepare(
    layout: &Layout,
    nodes: Option<usize>,
    threshold: Option<usize>,
    seed: Seed,
) -> anyhow::Result<(State, bool)> {
    if layout.marker().is_file() {
        let state = load(layout, nodes, threshold)?;
        if seed.peers.as_ref().is_some_and(|p| *p != state.peers) {
            bail!("--peers differs from the peers of the existing devnet in {}", layout.root().display());
        }
        if seed.chain_code.as_ref().is_some_and(|c| **c != *state.chain_code) {
            bail!(
                "--chain-code-file differs from the chain code of the existing devnet in {}",
                layout.root().display()
            );
        }
        return Ok((state, false));
    }
    let non_empty = std::fs::read_dir(layout.root())
        .with_context(|| format!("cannot list {}", layout.root().display()))?
        .next()
        .is_some();
    if non_empty {
        bail!(
            "{} is not empty but has no {MARKER_FILE}: it is not a devnet directory, or its generation \
             was interrupted; remove it or choose another --dir",
            layout.root().display()
        );
    }
    let nodes = match &seed.peers {
        Some(peers) => {
            let count = peers.len();
            ensure!(
                nodes.is_none_or(|n| n == count),
                "--nodes {} differs from the {count} nodes of --peers",
                nodes.unwrap_or_default()
            );
            let expected: std::collections::BTreeSet<String> = (0..count).map(Layout::node_name).collect();
            let names: std::collections::BTreeSet<String> =
                peers.iter().map(|(name, _)| name.to_owned()).collect();
            ensure!(names == expected, "--peers must name its nodes {expected:?} (got {names:?})");
            count
        }
        None => nodes.unwrap_or(3),
    };
    Ok((generate(layout, nodes, threshold.unwrap_or(1), seed)?, true))
}

/// What a new devnet takes from outside instead of generating it (an original cluster's, to
/// rehearse a migration).
#[derive(Default)]
pub struct Seed {
    /// Node names and ids.
    pub peers: Option<Peers>,
    /// The cluster's HD chain code (64 hex characters).
    pub chain_code: Option<Zeroizing<String>>,
}

fn check_threshold(nodes: usize, threshold: usize) -> anyhow::Result<()> {
    ensure!(nodes >= 2, "a devnet needs at least 2 nodes (got {nodes})");
    ensure!(
        threshold >= 1 && threshold < nodes,
        "--threshold must be at least 1 and below the number of nodes ({nodes}): a signature needs \
         threshold+1 nodes (got {threshold})"
    );
    Ok(())
}

fn random_hex(bytes: usize) -> anyhow::Result<Zeroizing<String>> {
    let mut buf = Zeroizing::new(vec![0u8; bytes]);
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(Zeroizing::new(hex::encode(buf.as_slice())))
}

fn generate(layout: &Layout, nodes: usize, threshold: usize, seed: Seed) -> anyhow::Result<State> {
    check_threshold(nodes, threshold)?;
    let peers = match seed.peers {
        Some(p) => p,
        None => Peers::generate(nodes)?,
    };
    let names: Vec<String> = (0..nodes).map(Layout::node_name).collect();
    let initiator = layout.initiator();
    let (initiator_identity, _key, _files) = create_initiator(
        layout.root(),
        DEFAULT_INITIATOR_NAME,
        SignerAlgorithm::Ed25519,
        KeyProtection::Plain,
        false,
    )
    .with_context(|| format!("cannot write {}", initiator.key.display()))?;

    let mut identities = Vec::with_capacity(nodes);
    for name in &names {
        let id = peers.node_id(name).with_context(|| format!("generated peers lack {name}"))?;
        identities.push(generate_node_identity(name, id)?);
    }
    for name in &names {
        create_private_dir(&layout.node_dir(name))?;
        peers.write(&layout.peers_file(name), false)?;
        let dir = layout.identity_dir(name);
        for (identity, key) in &identities {
            if &identity.node_name == name {
                write_node_identity(&dir, identity, key, KeyProtection::Plain, false)?;
            } else {
                let json = serde_json::to_string_pretty(identity)?;
                write_private_file(&node_identity_path(&dir, &identity.node_name), json.as_bytes(), false)?;
            }
        }
    }
    let passwords = names.iter().map(|_| random_hex(16)).collect::<anyhow::Result<Vec<_>>>()?;
    let state = State {
        peers,
        names,
        threshold,
        initiator_public_key: initiator_identity.public_key,
        initiator_algorithm: SignerAlgorithm::Ed25519,
        authorizers: Vec::new(),
        chain_code: match seed.chain_code {
            Some(c) => c,
            None => random_hex(32)?,
        },
        passwords,
    };
    // Configs exist from the start (a later run reads the secrets back from them).
    write_configs(layout, &state, "nats://127.0.0.1:4222", &vec![0; nodes])?;
    let marker = Marker { nodes, created_at: mpcium_identity::now_rfc3339() };
    write_private_file(&layout.marker(), serde_json::to_string_pretty(&marker)?.as_bytes(), false)?;
    Ok(state)
}

fn load(layout: &Layout, nodes: Option<usize>, threshold: Option<usize>) -> anyhow::Result<State> {
    let marker_path = layout.marker();
    let marker: Marker = serde_json::from_slice(
        &std::fs::read(&marker_path).with_context(|| format!("cannot read {}", marker_path.display()))?,
    )
    .with_context(|| format!("{} is not a devnet marker", marker_path.display()))?;
    if let Some(n) = nodes.filter(|n| *n != marker.nodes) {
        bail!(
            "{} holds a devnet of {} nodes, not {n}: omit --nodes, or use another --dir for a new devnet",
            layout.root().display(),
            marker.nodes
        );
    }
    let names: Vec<String> = (0..marker.nodes).map(Layout::node_name).collect();
    let peers = Peers::load(&layout.peers_file(&names[0]))?;
    for name in &names {
        ensure!(peers.node_id(name).is_some(), "{} lacks {name}", layout.peers_file(&names[0]).display());
    }
    ensure!(
        peers.len() == names.len(),
        "{} lists other nodes than node0..",
        layout.peers_file(&names[0]).display()
    );

    let initiator = InitiatorIdentity::read(&layout.initiator().identity)?;
    ensure!(layout.initiator().key.is_file(), "{} is missing", layout.initiator().key.display());

    let mut passwords = Vec::with_capacity(names.len());
    let mut chain_code: Option<Zeroizing<String>> = None;
    let mut configured_threshold = None;
    for name in &names {
        let dir = layout.identity_dir(name);
        let mut required = vec![node_private_key_path(&dir, name, false)];
        required.extend(names.iter().map(|n| node_identity_path(&dir, n)));
        if let Some(missing) = required.iter().find(|p| !p.is_file()) {
            bail!("{} is missing; remove {} to start afresh", missing.display(), layout.root().display());
        }
        let config_path = layout.config(name);
        let text = Zeroizing::new(
            std::fs::read_to_string(&config_path)
                .with_context(|| format!("cannot read {}", config_path.display()))?,
        );
        let (config, _) = NodeConfig::from_yaml(&text, &|_| None, NodeOverrides::default())
            .with_context(|| format!("{} is not a valid node config", config_path.display()))?;
        passwords.push(Zeroizing::new(config.badger_password.expose().to_owned()));
        let code = Zeroizing::new(hex::encode(config.chain_code));
        match &chain_code {
            None => chain_code = Some(code),
            Some(first) => {
                ensure!(*first == code, "{} has another chain_code than node0", config_path.display())
            }
        }
        configured_threshold.get_or_insert(config.mpc_threshold);
    }
    let threshold = threshold.or(configured_threshold).unwrap_or(1);
    check_threshold(names.len(), threshold)?;
    Ok(State {
        peers,
        names,
        threshold,
        initiator_algorithm: initiator.algorithm()?,
        initiator_public_key: initiator.public_key,
        authorizers: Vec::new(),
        chain_code: chain_code.unwrap_or_default(),
        passwords,
    })
}

/// Environment variables that would override what devnet writes into `config.yaml`; they are
/// removed from the nodes' environment so the files are what the nodes run with.
pub const PINNED_KEYS: &[&str] = &[
    "environment",
    "badger_password",
    "db_path",
    "backup_dir",
    "mpc_threshold",
    "event_initiator_pubkey",
    "event_initiator_algorithm",
    "chain_code",
    "authorization.enabled",
    "authorization.required_authorizers",
    "nats.url",
    "healthcheck.enabled",
    "healthcheck.address",
];

fn render_config(state: &State, index: usize, nats_url: &str, health_port: u16) -> Zeroizing<String> {
    let password = state.passwords.get(index).map(|p| p.as_str()).unwrap_or_default();
    let algorithm = state.initiator_algorithm.to_string();
    let authorizers: Vec<TemplateAuthorizer<'_>> = state
        .authorizers
        .iter()
        .map(|a| TemplateAuthorizer { name: &a.name, public_key: &a.public_key, algorithm: &a.algorithm })
        .collect();
    NodeConfigTemplate {
        header: "# Written by `mpcium-cli devnet` for a LOCAL DEVELOPMENT cluster, and rewritten on every devnet\n\
                 # start (edits are lost; override other keys with environment variables, e.g. MAX_CONCURRENT_SIGNING).\n\
                 # badger_password is a random value kept in this file for convenience. A production node must\n\
                 # not store it here: use `mpcium start --password-file <file>` (or --prompt-credentials).\n",
        badger_password: Some(password),
        backup_dir: Some("./backups"),
        mpc_threshold: state.threshold,
        initiator_public_key: &state.initiator_public_key,
        initiator_algorithm: &algorithm,
        chain_code: state.chain_code.as_str(),
        max_concurrent_keygen: 2,
        max_concurrent_signing: 10,
        nats_url,
        health_port,
        heartbeat_seconds: None,
        authorizers: &authorizers,
    }
    .render()
}

/// Writes every node's `config.yaml` (0600) for this run's NATS URL and health ports, checking
/// each against the config crate first.
pub fn write_configs(
    layout: &Layout,
    state: &State,
    nats_url: &str,
    health_ports: &[u16],
) -> anyhow::Result<()> {
    for (index, name) in state.names.iter().enumerate() {
        let port = health_ports.get(index).copied().unwrap_or(0);
        let text = render_config(state, index, nats_url, port);
        NodeConfig::from_yaml(&text, &|_| None, NodeOverrides::default())
            .with_context(|| format!("generated config of {name} is invalid"))?;
        write_private_file(&layout.config(name), text.as_bytes(), true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn generates_then_reuses_the_same_secrets_and_identities() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::create(&tmp.path().join("net")).unwrap();
        let (first, created) = prepare(&layout, Some(3), Some(2), Seed::default()).unwrap();
        assert!(created);
        assert_eq!(first.names, ["node0", "node1", "node2"]);
        for name in &first.names {
            let config = layout.config(name);
            assert_eq!(mode(&config), 0o600);
            let (parsed, _) = NodeConfig::from_yaml(
                &std::fs::read_to_string(&config).unwrap(),
                &|_| None,
                NodeOverrides::default(),
            )
            .unwrap();
            assert_eq!(parsed.mpc_threshold, 2);
            assert_eq!(parsed.badger_password.expose().len(), 32);
            assert_eq!(parsed.db_path, PathBuf::from("./db"));
            assert!(parsed.healthcheck.enabled);
            for other in &first.names {
                assert!(node_identity_path(&layout.identity_dir(name), other).is_file());
                let key = node_private_key_path(&layout.identity_dir(name), other, false);
                assert_eq!(key.is_file(), other == name, "{name} holds the private key of {other}?");
            }
        }
        assert_eq!(mode(&layout.initiator().key), 0o600);

        let (second, created) = prepare(&layout, None, None, Seed::default()).unwrap();
        assert!(!created);
        assert_eq!(second.peers, first.peers);
        assert_eq!(second.threshold, 2);
        assert_eq!(second.chain_code, first.chain_code);
        assert_eq!(second.passwords, first.passwords);
        assert_ne!(first.passwords[0], first.passwords[1], "each node has its own store password");

        let err = prepare(&layout, Some(4), None, Seed::default()).unwrap_err().to_string();
        assert!(err.contains("3 nodes, not 4"), "{err}");
    }

    #[test]
    fn trusts_another_initiator_and_requires_every_authorizer_for_a_run() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::create(&tmp.path().join("net")).unwrap();
        let (mut state, _) = prepare(&layout, Some(2), Some(1), Seed::default()).unwrap();
        let keys = tmp.path().join("keys");
        create_private_dir(&keys).unwrap();
        let (initiator, ..) =
            create_initiator(&keys, "go", SignerAlgorithm::P256, KeyProtection::Plain, false).unwrap();
        let authorizer = |name, algorithm| {
            mpcium_identity::create_authorizer(&keys, name, algorithm, KeyProtection::Plain, false).unwrap().0
        };
        let authorizers =
            vec![authorizer("risk", SignerAlgorithm::Ed25519), authorizer("ops", SignerAlgorithm::P256)];
        let twice = vec![authorizers[0].clone(), authorizers[0].clone()];
        let err = state.trust(None, twice).unwrap_err().to_string();
        assert!(err.contains("given twice"), "{err}");

        state.trust(Some(initiator.clone()), authorizers).unwrap();
        write_configs(&layout, &state, "nats://127.0.0.1:4222", &[0, 0]).unwrap();
        let (config, _) = NodeConfig::from_yaml(
            &std::fs::read_to_string(layout.config("node1")).unwrap(),
            &|_| None,
            NodeOverrides::default(),
        )
        .unwrap();
        let expected_initiator =
            mpcium_config::PublicKey::parse(mpcium_config::KeyAlgorithm::P256, &initiator.public_key)
                .unwrap();
        assert_eq!(config.event_initiator, expected_initiator);
        assert!(config.authorization.enabled);
        assert_eq!(config.authorization.required_authorizers, ["risk", "ops"]);
        assert_eq!(config.authorization.authorizer_public_keys.keys().collect::<Vec<_>>(), ["ops", "risk"]);

        // The next run without the flags trusts the devnet's own initiator again, no authorizers.
        let (state, _) = prepare(&layout, None, None, Seed::default()).unwrap();
        write_configs(&layout, &state, "nats://127.0.0.1:4222", &[0, 0]).unwrap();
        let text = std::fs::read_to_string(layout.config("node0")).unwrap();
        let (config, _) = NodeConfig::from_yaml(&text, &|_| None, NodeOverrides::default()).unwrap();
        assert!(!config.authorization.enabled);
        assert!(text.contains("event_initiator_algorithm: ed25519"), "{text}");
    }

    #[test]
    fn refuses_a_foreign_directory_and_bad_thresholds() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("something"), "x").unwrap();
        let layout = Layout::create(tmp.path()).unwrap();
        let err = prepare(&layout, None, None, Seed::default()).unwrap_err().to_string();
        assert!(err.contains("no devnet.json"), "{err}");

        let empty = tempfile::tempdir().unwrap();
        let layout = Layout::create(empty.path()).unwrap();
        let err = prepare(&layout, Some(3), Some(3), Seed::default()).unwrap_err().to_string();
        assert!(err.contains("--threshold"), "{err}");
        assert!(
            std::fs::read_dir(empty.path()).unwrap().next().is_none(),
            "nothing written on a bad threshold"
        );
    }
}
