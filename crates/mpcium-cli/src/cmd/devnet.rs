//! `mpcium-cli devnet`: a local development cluster in one command (the original needs Docker,
//! Consul and shell scripts).
//!
//! 1. Generates (first run) or reuses (later runs) a devnet directory: peers, node identities,
//!    an Ed25519 event initiator, per-node `config.yaml` (see [`layout`] for the tree). For one
//!    run, `--initiator-identity` trusts another initiator (e.g. P-256) instead, and each
//!    `--authorizer` turns authorization on with that authorizer required.
//! 2. Starts `nats-server` with JetStream on a free 127.0.0.1 port, its store inside the
//!    directory, and registers the peers in the registry (`mpc_peers`).
//! 3. Starts `mpcium start -n node<i> -c config.yaml` per node (working directory `node<i>/`,
//!    log `node<i>/node.log`) and waits until every log has the line `[READY] Node is ready`.
//! 4. Prints how to use the cluster and runs until SIGINT/SIGTERM/SIGHUP, `--run-for` seconds
//!    elapse, or nats-server dies; then stops the nodes, then nats-server. A signal is a normal
//!    stop (exit 0). A node that dies while the cluster runs is reported and left dead (stopping
//!    nodes on purpose is a legitimate experiment); nats-server dying ends the devnet with an error.
//!
//! The directory is kept on exit (its keys and stores are the cluster's state) and a re-run
//! reuses it, unless `--remove-on-exit`. `config.yaml` files are rewritten on every start (new
//! ports); the node store passwords inside them are random per devnet and meant for local
//! development only: production nodes take theirs from `--password-file` or a prompt.
//!
//! For scripts and tests: `--ready-file <path>` gets a JSON description (NATS URL, paths, pids)
//! once everything is ready, and is removed on exit; `--run-for <seconds>` stops by itself.

mod layout;
mod process;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use mpcium_config::env_var_name;
use serde::Serialize;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cmd::register_peers::{Outcome, register_all};
use crate::nats_client;
use layout::{Layout, State};
use process::{Processes, Supervised};

/// The line a node logs when it is ready (the original's, grepped by its e2e suite too).
pub const READY_LINE: &str = "[READY] Node is ready";

/// How long nats-server may take to accept connections.
const NATS_START_TIMEOUT: Duration = Duration::from_secs(20);

/// Printed after `mpcium-cli devnet --help`.
const AFTER_HELP: &str = "\
The directory is kept on exit (it holds the keys and the node stores) and reused by the next run \
with the same --dir: identities, peers, initiator key, chain code and store passwords stay; \
config.yaml files are rewritten each start with the new NATS and health ports. The store \
passwords live in config.yaml because this is a local development cluster; production nodes \
take theirs from `mpcium start --password-file` or a prompt.

Ctrl-C, SIGTERM or SIGHUP stops the nodes, then nats-server, and exits 0. For scripts: \
--ready-file PATH receives a JSON description (nats_url, pids, paths of every file) once all \
nodes are ready and is removed on exit; --run-for SECONDS stops by itself.";

/// Flags of `devnet`.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct DevnetArgs {
    /// The devnet directory: created on the first run, reused afterwards.
    #[arg(long, default_value = ".devnet")]
    pub dir: PathBuf,
    /// Number of nodes of a new devnet [default: 3; a reused devnet keeps its own].
    #[arg(long, value_parser = clap::value_parser!(u16).range(2..))]
    pub nodes: Option<u16>,
    /// mpc_threshold t (a signature needs t+1 nodes) [default: 1, or the reused devnet's].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub threshold: Option<u16>,
    /// The nats-server binary [default: $MPCIUM_NATS_SERVER, ./.tools/venv/bin/nats-server, PATH].
    #[arg(long, value_name = "PATH")]
    pub nats_server: Option<PathBuf>,
    /// The node binary [default: $MPCIUM_BIN, `mpcium` next to mpcium-cli, PATH].
    #[arg(long, value_name = "PATH")]
    pub mpcium: Option<PathBuf>,
    /// Start only nats-server and the registry; print the commands that start the nodes.
    #[arg(long)]
    pub no_nodes: bool,
    /// Keep the directory on exit (the default; accepted for scripts that want to say so).
    #[arg(long, conflicts_with = "remove_on_exit")]
    pub keep: bool,
    /// Delete the directory after everything has stopped.
    #[arg(long)]
    pub remove_on_exit: bool,
    /// Seconds a node may take to log `[READY] Node is ready`.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub ready_timeout: u64,
    /// Stop by itself this many seconds after everything is ready.
    #[arg(long, value_name = "SECONDS")]
    pub run_for: Option<u64>,
    /// When ready, write a JSON description of the devnet here (removed on exit).
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
    /// For this run, the nodes trust this initiator (a `<name>.identity.json` of
    /// `generate-initiator`, Ed25519 or P-256) instead of the devnet's own Ed25519 one.
    #[arg(long, value_name = "FILE")]
    pub initiator_identity: Option<PathBuf>,
    /// For this run, turn on `authorization` and require a co-signature of this authorizer (a
    /// `<name>.authorizer.identity.json` of `generate-authorizer`); repeatable, all required.
    #[arg(long = "authorizer", value_name = "FILE")]
    pub authorizers: Vec<PathBuf>,
    /// When the devnet is created: take node names (node0…) and ids from this peers.json
    /// instead of generating them (an original cluster's, to rehearse a migration: MIGRATING.md).
    #[arg(long, value_name = "FILE")]
    pub peers: Option<PathBuf>,
    /// When the devnet is created: the cluster's HD chain code from this file (64 hex characters,
    /// the original's `chain_code`) instead of a random one.
    #[arg(long, value_name = "FILE")]
    pub chain_code_file: Option<PathBuf>,
}

/// SIGINT, SIGTERM and SIGHUP, caught from the very start so no signal can kill devnet while
/// its children run.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        let catch = |kind| signal(kind).context("cannot install a signal handler");
        Ok(Self {
            interrupt: catch(SignalKind::interrupt())?,
            terminate: catch(SignalKind::terminate())?,
            hangup: catch(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.hangup.recv() => "SIGHUP",
        }
    }
}

/// How the devnet run ended without an error.
enum Stop {
    Signal(&'static str),
    RunForElapsed,
}

/// The ready file's contents.
#[derive(Debug, Serialize)]
struct ReadyInfo<'a> {
    nats_url: &'a str,
    nats_pid: u32,
    devnet_pid: u32,
    dir: &'a Path,
    threshold: usize,
    /// The devnet's own initiator key; null when `--initiator-identity` replaced it.
    initiator_key: Option<PathBuf>,
    initiator_identity: PathBuf,
    initiator_public_key: &'a str,
    initiator_algorithm: &'static str,
    /// Names of the authorizers every request needs (`--authorizer`).
    authorizers: Vec<&'a str>,
    nodes: Vec<NodeInfo>,
}

#[derive(Debug, Serialize)]
struct NodeInfo {
    name: String,
    id: String,
    dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    healthcheck_address: String,
    /// None with `--no-nodes`.
    pid: Option<u32>,
}

/// Runs the command.
pub fn run(args: DevnetArgs) -> anyhow::Result<()> {
    nats_client::runtime()?.block_on(run_devnet(args))
}

/// A chain code file: 64 hex characters (surrounding whitespace ignored), stored lowercase.
fn read_chain_code(path: &std::path::Path) -> anyhow::Result<zeroize::Zeroizing<String>> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    let code = zeroize::Zeroizing::new(text.trim().to_ascii_lowercase());
    if code.len() != 64 || hex::decode(code.as_bytes()).is_err() {
        anyhow::bail!("{}: a chain code is 64 hex characters", path.display());
    }
    Ok(code)
}

async fn run_devnet(args: DevnetArgs) -> anyhow::Result<()> {
    let mut signals = Signals::install()?;
    // Find everything before writing or starting anything.
    let nats_binary = process::find_nats_server(args.nats_server.as_deref())?;
    let node_binary = match args.no_nodes {
        true => None,
        false => Some(process::find_node_binary(args.mpcium.as_deref())?),
    };
    let layout = Layout::create(&args.dir)?;
    let seed = layout::Seed {
        peers: args.peers.as_deref().map(mpcium_identity::Peers::load).transpose()?,
        chain_code: args.chain_code_file.as_deref().map(read_chain_code).transpose()?,
    };
    let (mut state, created) =
        layout::prepare(&layout, args.nodes.map(usize::from), args.threshold.map(usize::from), seed)?;
    let initiator = match &args.initiator_identity {
        Some(path) => Some(
            mpcium_identity::InitiatorIdentity::read(path)
                .with_context(|| format!("--initiator-identity {}", path.display()))?,
        ),
        None => None,
    };
    let authorizers = args
        .authorizers
        .iter()
        .map(|path| {
            mpcium_identity::AuthorizerIdentity::read(path)
                .with_context(|| format!("--authorizer {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    state.trust(initiator, authorizers)?;
    println!(
        "{} devnet in {} ({} nodes, threshold {})",
        if created { "Created" } else { "Reusing" },
        layout.root().display(),
        state.names.len(),
        state.threshold
    );

    let nats_port = process::free_port()?;
    let nats_url = format!("nats://127.0.0.1:{nats_port}");
    let health_ports =
        state.names.iter().map(|_| process::free_port()).collect::<anyhow::Result<Vec<_>>>()?;
    layout::write_configs(&layout, &state, &nats_url, &health_ports)?;

    let mut processes = Processes::default();
    let run =
        Run { args: &args, layout: &layout, state: &state, nats_url: &nats_url, health_ports: &health_ports };
    let result =
        run.supervise(&mut signals, &mut processes, &nats_binary, node_binary.as_deref(), nats_port).await;
    println!("Stopping {}nats-server …", if processes.nodes.is_empty() { "" } else { "the nodes, then " });
    processes.stop();
    if let Some(path) = &args.ready_file {
        let _ = std::fs::remove_file(path);
    }
    match &result {
        Ok(Stop::Signal(name)) => println!("Stopped ({name})."),
        Ok(Stop::RunForElapsed) => println!("Stopped (--run-for elapsed)."),
        Err(_) => {}
    }
    if args.remove_on_exit {
        std::fs::remove_dir_all(layout.root())
            .with_context(|| format!("cannot remove {}", layout.root().display()))?;
        println!("Removed {}.", layout.root().display());
    } else {
        println!("Kept {} (the next `mpcium-cli devnet --dir` with it reuses it).", layout.root().display());
    }
    result.map(|_| ())
}

/// One run of a prepared devnet.
struct Run<'a> {
    args: &'a DevnetArgs,
    layout: &'a Layout,
    state: &'a State,
    nats_url: &'a str,
    health_ports: &'a [u16],
}

/// Polls `check` every 100 ms until it returns true (Ok(None)), a signal arrives (its name), or
/// `timeout` passes (an error from `on_timeout`).
async fn poll_until(
    signals: &mut Signals,
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<bool>,
    on_timeout: impl FnOnce() -> anyhow::Error,
) -> anyhow::Result<Option<&'static str>> {
    let deadline = Instant::now() + timeout;
    loop {
        if check()? {
            return Ok(None);
        }
        if Instant::now() >= deadline {
            return Err(on_timeout());
        }
        tokio::select! {
            name = signals.next() => return Ok(Some(name)),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

impl Run<'_> {
    async fn supervise(
        &self,
        signals: &mut Signals,
        processes: &mut Processes,
        nats_binary: &Path,
        node_binary: Option<&Path>,
        nats_port: u16,
    ) -> anyhow::Result<Stop> {
        let nats =
            processes.nats.insert(process::spawn_nats(nats_binary, &self.layout.nats_dir(), nats_port)?);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], nats_port));
        let listening = poll_until(
            signals,
            NATS_START_TIMEOUT,
            || match nats.exited() {
                Some(status) => bail!("nats-server exited ({status}); its log:\n{}", nats.log_tail(20)),
                None => Ok(process::listening(addr)),
            },
            || {
                anyhow::anyhow!(
                    "nats-server did not listen on {addr} within {} s",
                    NATS_START_TIMEOUT.as_secs()
                )
            },
        )
        .await?;
        if let Some(name) = listening {
            return Ok(Stop::Signal(name));
        }
        println!("nats-server (pid {}) listens on {}", nats.pid(), self.nats_url);

        tokio::select! {
            name = signals.next() => return Ok(Stop::Signal(name)),
            registered = self.register_peers() => registered?,
        }

        if let Some(binary) = node_binary {
            for (index, name) in self.state.names.iter().enumerate() {
                let mut command = Command::new(binary);
                command
                    .args(["start", "-n", name, "-c", "config.yaml"])
                    .current_dir(self.layout.node_dir(name));
                for key in layout::PINNED_KEYS {
                    command.env_remove(env_var_name(key));
                }
                // The log is a file: no terminal colour codes in it.
                command.env("NO_COLOR", "1");
                let node = Supervised::spawn(name, command, &self.layout.node_log(name))?;
                println!("{name} (pid {}) started, port {} for health", node.pid(), self.health_ports[index]);
                processes.nodes.push(node);
            }
            if let Some(name) = self.wait_ready(signals, &mut processes.nodes).await? {
                return Ok(Stop::Signal(name));
            }
        }

        if let Some(path) = &self.args.ready_file {
            let json = serde_json::to_string_pretty(&self.ready_info(processes))?;
            mpcium_identity::write_private_file(path, json.as_bytes(), true)
                .with_context(|| format!("cannot write the ready file {}", path.display()))?;
        }
        self.print_usage(node_binary.is_some());
        self.watch(signals, processes).await
    }

    async fn register_peers(&self) -> anyhow::Result<()> {
        // JetStream may need a moment after the port opens; retry briefly.
        let mut attempt = 0;
        let registry = loop {
            attempt += 1;
            let opened = async {
                let client =
                    tokio::time::timeout(nats_client::CONNECT_TIMEOUT, async_nats::connect(self.nats_url))
                        .await
                        .map_err(|_| anyhow::anyhow!("connect timed out"))??;
                nats_client::open_registry(client, None).await
            }
            .await;
            match opened {
                Ok(registry) => break registry,
                Err(e) if attempt >= 20 => return Err(e.context(format!("registry at {}", self.nats_url))),
                Err(e) => {
                    tracing::debug!(error = %format!("{e:#}"), "registry not available yet");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        };
        let outcomes =
            register_all(&registry, &self.state.peers).await.context("registering the devnet's peers")?;
        let new = outcomes.iter().filter(|(_, o)| *o == Outcome::Registered).count();
        println!("Registered {new} peer(s), {} already present, in the registry", outcomes.len() - new);
        Ok(())
    }

    async fn wait_ready(
        &self,
        signals: &mut Signals,
        nodes: &mut [Supervised],
    ) -> anyhow::Result<Option<&'static str>> {
        let started = Instant::now();
        let timeout = Duration::from_secs(self.args.ready_timeout);
        let mut ready = vec![false; nodes.len()];
        let check = |ready: &mut Vec<bool>, nodes: &mut [Supervised]| -> anyhow::Result<bool> {
            for (node, is_ready) in nodes.iter_mut().zip(ready.iter_mut()).filter(|(_, r)| !**r) {
                if let Some(status) = node.exited() {
                    bail!(
                        "{} exited before it was ready ({status}); last lines of {}:\n{}",
                        node.name,
                        node.log.display(),
                        node.log_tail(30)
                    );
                }
                let log = std::fs::read(&node.log).unwrap_or_default();
                if String::from_utf8_lossy(&log).contains(READY_LINE) {
                    *is_ready = true;
                    println!("{} is ready ({:.1} s)", node.name, started.elapsed().as_secs_f64());
                }
            }
            Ok(ready.iter().all(|r| *r))
        };
        let deadline = started + timeout;
        loop {
            if check(&mut ready, nodes)? {
                return Ok(None);
            }
            if Instant::now() >= deadline {
                let not_ready: Vec<String> = nodes
                    .iter()
                    .zip(&ready)
                    .filter(|(_, r)| !**r)
                    .map(|(n, _)| {
                        format!("--- {} (last lines of {}):\n{}", n.name, n.log.display(), n.log_tail(20))
                    })
                    .collect();
                bail!(
                    "not ready after {} s (no `{READY_LINE}` in the log):\n{}",
                    timeout.as_secs(),
                    not_ready.join("\n")
                );
            }
            tokio::select! {
                name = signals.next() => return Ok(Some(name)),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    /// Runs until a signal, `--run-for`, or nats-server's death; reports nodes that die.
    async fn watch(&self, signals: &mut Signals, processes: &mut Processes) -> anyhow::Result<Stop> {
        let deadline = self.args.run_for.map(|s| Instant::now() + Duration::from_secs(s));
        let mut reported = vec![false; processes.nodes.len()];
        loop {
            tokio::select! {
                name = signals.next() => return Ok(Stop::Signal(name)),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            if let Some(nats) = processes.nats.as_mut()
                && let Some(status) = nats.exited()
            {
                bail!(
                    "nats-server exited ({status}); last lines of {}:\n{}",
                    nats.log.display(),
                    nats.log_tail(20)
                );
            }
            for (node, reported) in processes.nodes.iter_mut().zip(reported.iter_mut()) {
                if !*reported && let Some(status) = node.exited() {
                    *reported = true;
                    eprintln!(
                        "warning: {} exited ({status}); the others keep running. Last lines of {}:\n{}",
                        node.name,
                        node.log.display(),
                        node.log_tail(20)
                    );
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(Stop::RunForElapsed);
            }
        }
    }

    fn ready_info(&self, processes: &Processes) -> ReadyInfo<'_> {
        let initiator = self.layout.initiator();
        let nodes = self
            .state
            .names
            .iter()
            .enumerate()
            .map(|(index, name)| NodeInfo {
                name: name.clone(),
                id: self.state.peers.node_id(name).unwrap_or_default().to_owned(),
                dir: self.layout.node_dir(name),
                config: self.layout.config(name),
                log: self.layout.node_log(name),
                healthcheck_address: format!("127.0.0.1:{}", self.health_ports[index]),
                pid: processes.nodes.get(index).map(Supervised::pid),
            })
            .collect();
        ReadyInfo {
            nats_url: self.nats_url,
            nats_pid: processes.nats.as_ref().map(Supervised::pid).unwrap_or_default(),
            devnet_pid: std::process::id(),
            dir: self.layout.root(),
            threshold: self.state.threshold,
            initiator_key: self.args.initiator_identity.is_none().then_some(initiator.key),
            initiator_identity: self.args.initiator_identity.clone().unwrap_or(initiator.identity),
            initiator_public_key: &self.state.initiator_public_key,
            initiator_algorithm: self.state.initiator_algorithm.as_str(),
            authorizers: self.state.authorizers.iter().map(|a| a.name.as_str()).collect(),
            nodes,
        }
    }

    fn print_usage(&self, nodes_started: bool) {
        let layout = self.layout;
        let initiator = layout.initiator();
        let node0 = &self.state.names[0];
        println!();
        println!(
            "devnet is {}: {} nodes, threshold {} (a signature needs {} nodes)",
            if nodes_started { "ready" } else { "up without nodes (--no-nodes)" },
            self.state.names.len(),
            self.state.threshold,
            self.state.threshold + 1
        );
        println!("  NATS URL        {}", self.nats_url);
        println!("  directory       {}", layout.root().display());
        match &self.args.initiator_identity {
            None => println!("  initiator key   {}  (Ed25519 seed, hex)", initiator.key.display()),
            Some(path) => {
                println!("  initiator       {}  ({})", path.display(), self.state.initiator_algorithm)
            }
        }
        if !self.state.authorizers.is_empty() {
            let names: Vec<&str> = self.state.authorizers.iter().map(|a| a.name.as_str()).collect();
            println!("  authorizers     {}  (every request needs all)", names.join(", "));
        }
        println!(
            "  initiator pub   {}  (every node's event_initiator_pubkey)",
            self.state.initiator_public_key
        );
        println!("  NATS log        {}", layout.nats_dir().join("nats.log").display());
        for (index, name) in self.state.names.iter().enumerate() {
            println!(
                "  {name:<6} {}  log {}  health 127.0.0.1:{}",
                self.state.peers.node_id(name).unwrap_or_default(),
                layout.node_log(name).display(),
                self.health_ports[index]
            );
        }
        if !nodes_started {
            println!("Start the nodes yourself, one per terminal:");
            for name in &self.state.names {
                println!("  cd {} && mpcium start -n {name} -c config.yaml", layout.node_dir(name).display());
            }
        }
        println!("Examples:");
        println!(
            "  mpcium-cli register-peers -c {} -p {}   # prints `skipped`: devnet registered them",
            layout.config(node0).display(),
            layout.peers_file(node0).display()
        );
        println!(
            "  NATS_URL={} MPCIUM_INITIATOR_KEY={} cargo run -p mpcium-client --example sign   # a wallet, two signatures",
            self.nats_url,
            initiator.key.display()
        );
        println!(
            "Stop with Ctrl-C: nodes first, then nats-server; the directory is kept and reused next time."
        );
    }
}
