//! The process-level cluster of the fault tests: real `mpcium` node processes, each in its own
//! directory laid out as an operator would (as `mpcium-cli devnet` does: `identity/`,
//! `peers.json`, `config.yaml` written by `mpcium_config::template`, `db/`), the store password in
//! a 0600 file passed with `--password-file` (never on the command line).

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use mpcium_config::template::NodeConfigTemplate;
use mpcium_identity::{
    KeyProtection, Peers, generate_node_identity, write_node_identity, write_private_file,
};
use rand_core::{OsRng, RngCore};

use super::http::try_http_get;
use super::netns::Netns;
use super::wire::WireClient;

/// A wallet made by keygen: its ECDSA (x‖y) and EdDSA public keys.
pub struct Wallet {
    /// The wallet id.
    pub id: String,
    /// The ECDSA public key, x‖y.
    pub ecdsa: Vec<u8>,
    /// The EdDSA public key.
    pub eddsa: Vec<u8>,
}

/// One node process: its directory, health port, and the running child (if any).
pub struct NodeProcess {
    /// `node<i>`.
    pub name: String,
    /// Its working directory.
    pub dir: PathBuf,
    /// Where it serves `/health` (inside its network namespace, if any).
    pub health_port: u16,
    binary: PathBuf,
    netns: Option<String>,
    child: Option<Child>,
}

impl NodeProcess {
    fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(self.log_path()).map(|m| m.len()).unwrap_or(0)
    }

    fn log_from(&self, offset: u64) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.log_path()) {
            let _ = f.seek(SeekFrom::Start(offset));
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// The last `lines` lines of its log (all incarnations).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_from(0);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Start the process (in its namespace when it has one) and wait for its `[READY]` line;
    /// returns how long that took. Panics with the log tail if it exits or stays silent.
    pub async fn start(&mut self) -> Duration {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let offset = self.log_len();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns.as_str()]).arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        command
            .args(["start", "-n", &self.name, "-c", "config.yaml", "--password-file", "store.password"])
            .current_dir(&self.dir)
            // The config file is all the node reads: no inherited MPCIUM_*/NATS_* overrides.
            .env_clear()
            .env("MPCIUM_LOG", "info,async_nats=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let started = Instant::now();
        self.child = Some(command.spawn().unwrap());
        let deadline = started + Duration::from_secs(60);
        loop {
            if self.log_from(offset).contains(mpcium_node::daemon::READY_LINE) {
                return started.elapsed();
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("{} exited with {status} before it was ready:\n{}", self.name, self.log_tail(40));
            }
            assert!(Instant::now() < deadline, "{} not ready in 60 s:\n{}", self.name, self.log_tail(40));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9`: the node stops at once, as in a crash (its readiness is left to expire).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (graceful: the node withdraws its readiness), then wait for it to exit.
    pub async fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM {} failed", child.id());
        let deadline = Instant::now() + Duration::from_secs(15);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not stop within 15 s of SIGTERM:\n{}", self.name, self.log_tail(30));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The length of its log now (an offset for [`wait_log_line`](Self::wait_log_line)).
    pub fn log_offset(&self) -> u64 {
        self.log_len()
    }

    /// Wait until its log holds `needle` after `offset`; returns how long that took.
    pub async fn wait_log_line(&self, offset: u64, needle: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        while !self.log_from(offset).contains(needle) {
            assert!(
                started.elapsed() < limit,
                "{} logged no {needle:?} in {limit:?}:\n{}",
                self.name,
                self.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        started.elapsed()
    }

    /// Whether the child is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Its `/health` JSON, if it answers (through `curl` inside its namespace when it has one).
    pub async fn health(&self) -> Option<String> {
        match &self.netns {
            None => try_http_get(self.health_port, "/health", Duration::from_secs(2)).await,
            Some(ns) => {
                let url = format!("http://127.0.0.1:{}/health", self.health_port);
                let ns = ns.clone();
                let out = tokio::task::spawn_blocking(move || {
                    Command::new("ip")
                        .args(["netns", "exec", ns.as_str(), "curl", "-s", "-m", "2", &url])
                        .output()
                })
                .await
                .ok()?
                .ok()?;
                out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
            }
        }
    }
}

/// A cluster of node processes sharing identities, a chain code and an initiator key.
pub struct ProcessCluster {
    /// The nodes, `node0` first.
    pub nodes: Vec<NodeProcess>,
    /// The initiator key requests are signed with.
    pub initiator: SigningKey,
    dir: Option<tempfile::TempDir>,
}

impl ProcessCluster {
    /// Lay out `netns.len()` nodes with threshold `t` for the server at `nats_url`; node `i` runs
    /// in network namespace `netns[i]` when given. They run `built` (the test's
    /// `env!("CARGO_BIN_EXE_mpcium")`) or, when set, `MPCIUM_NODE_BINARY` (e.g. a release build).
    pub fn prepare(built: &str, t: usize, nats_url: &str, netns: &[Option<String>]) -> Self {
        let binary =
            std::env::var_os("MPCIUM_NODE_BINARY").map_or_else(|| PathBuf::from(built), PathBuf::from);
        let n = netns.len();
        let dir = tempfile::tempdir().unwrap();
        let initiator = SigningKey::generate(&mut OsRng);
        let mut chain_code = [0u8; 32];
        OsRng.fill_bytes(&mut chain_code);
        let peers = Peers::generate(n).unwrap();
        let names: Vec<String> = (0..n).map(|i| format!("node{i}")).collect();
        let identities: Vec<_> = names
            .iter()
            .map(|name| generate_node_identity(name, peers.node_id(name).unwrap()).unwrap())
            .collect();
        let initiator_hex = hex::encode(initiator.verifying_key().as_bytes());
        let chain_code_hex = hex::encode(chain_code);
        let mut nodes = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let node_dir = dir.path().join(name);
            mpcium_identity::create_private_dir(&node_dir).unwrap();
            peers.write(&node_dir.join("peers.json"), false).unwrap();
            let identity_dir = node_dir.join("identity");
            for (identity, key) in &identities {
                if &identity.node_name == name {
                    write_node_identity(&identity_dir, identity, key, KeyProtection::Plain, false).unwrap();
                } else {
                    let json = serde_json::to_string_pretty(identity).unwrap();
                    let path = mpcium_identity::node_identity_path(&identity_dir, &identity.node_name);
                    write_private_file(&path, json.as_bytes(), false).unwrap();
                }
            }
            let mut password = [0u8; 16];
            OsRng.fill_bytes(&mut password);
            write_private_file(&node_dir.join("store.password"), hex::encode(password).as_bytes(), false)
                .unwrap();
            let health_port = crate::free_port().unwrap();
            let config = NodeConfigTemplate {
                header: "",
                // In a 0600 file passed with --password-file, never in the config.
                badger_password: None,
                backup_dir: None,
                mpc_threshold: t,
                initiator_public_key: &initiator_hex,
                initiator_algorithm: "ed25519",
                chain_code: &chain_code_hex,
                max_concurrent_keygen: 2,
                max_concurrent_signing: 20,
                nats_url,
                health_port,
                heartbeat_seconds: Some(1),
                authorizers: &[],
            }
            .render();
            write_private_file(&node_dir.join("config.yaml"), config.as_bytes(), false).unwrap();
            nodes.push(NodeProcess {
                name: name.clone(),
                dir: node_dir,
                health_port,
                binary: binary.clone(),
                netns: netns[i].clone(),
                child: None,
            });
        }
        Self { nodes, initiator, dir: Some(dir) }
    }

    /// Three nodes with threshold 1 on `server`, node2 in `netns` (the partition tests), started
    /// and seeing each other ready. `server` listens on [`Netns::server_listen`].
    pub async fn start_partitioned(built: &str, server: &crate::NatsServer, netns: &Netns) -> Self {
        let mut cluster = Self::prepare(built, 1, &server.url(), &[None, None, Some(netns.name.clone())]);
        cluster.start_all().await;
        cluster.wait_all_see(3, Duration::from_secs(30)).await;
        cluster
    }

    /// Keygen of both keys of `wallet` through `client`, which must succeed (the nodes' logs
    /// are shown when it does not).
    pub async fn keygen(&self, client: &WireClient, wallet: &str) -> Wallet {
        let kg = client.keygen(wallet).await;
        assert_eq!(kg.result_type.as_str(), "success", "keygen {wallet}: {kg:?}\n{}", self.logs());
        Wallet { id: wallet.to_owned(), ecdsa: kg.ecdsa_pub_key.unwrap(), eddsa: kg.eddsa_pub_key.unwrap() }
    }

    /// Start every node (one after the other) and return how long each took to be ready.
    pub async fn start_all(&mut self) -> Vec<Duration> {
        let mut took = Vec::new();
        for node in &mut self.nodes {
            took.push(node.start().await);
        }
        took
    }

    /// Wait until node `i` reports NATS connected and exactly `ready` nodes ready; returns how
    /// long that took. Panics (with the node's log) after `limit`.
    pub async fn wait_peers_ready(&self, i: usize, ready: usize, limit: Duration) -> Duration {
        let started = Instant::now();
        let want = format!("\"peers_ready_count\":\"{ready}/{}\"", self.nodes.len());
        let mut last = None;
        while started.elapsed() < limit {
            last = self.nodes[i].health().await;
            if let Some(h) = &last
                && h.contains(&want)
                && h.contains("\"nats_connected\":true")
            {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "node{i} did not report {want} within {limit:?}; last /health: {last:?}\n{}",
            self.nodes[i].log_tail(40)
        );
    }

    /// Wait until every running node sees `ready` nodes ready.
    pub async fn wait_all_see(&self, ready: usize, limit: Duration) {
        for (i, node) in self.nodes.iter().enumerate() {
            if node.is_running() {
                self.wait_peers_ready(i, ready, limit).await;
            }
        }
    }

    /// Every node's log, for a failure message.
    pub fn logs(&self) -> String {
        self.nodes.iter().map(|n| format!("===== {} =====\n{}\n", n.name, n.log_tail(60))).collect()
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill9();
        }
        // MPCIUM_FAULTS_KEEP=1 keeps the nodes' directories (logs, stores) for a post-mortem.
        if std::env::var("MPCIUM_FAULTS_KEEP").is_ok_and(|v| v == "1")
            && let Some(dir) = self.dir.take()
        {
            eprintln!("[faults] node directories kept in {}", dir.keep().display());
        }
    }
}
