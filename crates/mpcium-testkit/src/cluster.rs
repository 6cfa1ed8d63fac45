//! A real 3-server (or n-server) NATS cluster on loopback: every server has its own name, client
//! port, cluster (route) port, monitoring port and JetStream store directory, and routes to all
//! the others. One server can be killed with SIGKILL and started again on the same ports and
//! store, as a crashed machine comes back.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{HarnessError, free_port, nats_server_binary};

/// How long a server may take to listen, and the cluster to elect its JetStream meta leader.
const START_LIMIT: Duration = Duration::from_secs(30);

/// Ports of one server of the cluster.
#[derive(Debug, Clone, Copy)]
pub struct ClusterPorts {
    /// Client connections (`nats://127.0.0.1:<client>`).
    pub client: u16,
    /// Routes between the servers.
    pub cluster: u16,
    /// The monitoring endpoint (`/healthz`, `/jsz`, ...).
    pub http: u16,
}

/// The configuration text of server `i` of a loopback cluster (`listen`, `server_name`,
/// `http`, `jetstream`, `cluster` with routes to every other server), followed by `extra`.
pub fn server_config(i: usize, ports: &[ClusterPorts], store: &Path, extra: &str) -> String {
    let routes: Vec<String> = ports
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, p)| format!("    \"nats-route://127.0.0.1:{}\"", p.cluster))
        .collect();
    format!(
        "server_name: \"{name}\"\nlisten: \"127.0.0.1:{client}\"\nhttp: \"127.0.0.1:{http}\"\n\
         jetstream {{ store_dir: \"{store}\" }}\n\
         cluster {{\n  name: \"mpcium-test\"\n  listen: \"127.0.0.1:{cluster}\"\n  routes: [\n{routes}\n  ]\n}}\n{extra}\n",
        name = server_name(i),
        client = ports[i].client,
        http = ports[i].http,
        cluster = ports[i].cluster,
        store = store.display(),
        routes = routes.join("\n"),
    )
}

/// The name of server `i` (`nats-0`, `nats-1`, ...).
pub fn server_name(i: usize) -> String {
    format!("nats-{i}")
}

struct Member {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
}

/// A running NATS cluster with JetStream, every server killed on drop.
pub struct NatsCluster {
    members: Vec<Member>,
    ports: Vec<ClusterPorts>,
    binary: PathBuf,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Start `n` servers (3 for the usual cluster) with JetStream clustered, and wait until every
    /// server answers `/healthz` (JetStream meta leader elected, streams current).
    pub fn start(n: usize) -> Result<Self, HarnessError> {
        Self::start_with(n, |_, _| String::new(), Vec::new())
    }

    /// Like [`NatsCluster::start`], with extra configuration text per server (`extra(i, ports)`:
    /// TLS, authorization, ...; it must not set `listen`, `http`, `jetstream` or `cluster`) and
    /// environment variables for the server processes.
    pub fn start_with(
        n: usize,
        extra: impl Fn(usize, &[ClusterPorts]) -> String,
        env: Vec<(String, String)>,
    ) -> Result<Self, HarnessError> {
        Self::start_from(
            n,
            |i, ports, dir| server_config(i, ports, &dir.join("jetstream"), &extra(i, ports)),
            env,
        )
    }

    /// Start `n` servers from configuration texts made by `config(i, ports, server_dir)`: the
    /// whole file of server `i`, written as `server_dir/nats.conf` (for testing shipped
    /// configuration files: files it includes can be written next to it in `server_dir`; its
    /// JetStream store should be `server_dir/jetstream`).
    pub fn start_from(
        n: usize,
        config: impl Fn(usize, &[ClusterPorts], &Path) -> String,
        env: Vec<(String, String)>,
    ) -> Result<Self, HarnessError> {
        let binary = nats_server_binary()?;
        // Ports are picked up front (the routes name each other); another process may take one
        // between the pick and the start, so a failed start is retried on fresh ports.
        let mut last = None;
        for _ in 0..3 {
            let dir = tempfile::tempdir()?;
            let ports = (0..n)
                .map(|_| Ok(ClusterPorts { client: free_port()?, cluster: free_port()?, http: free_port()? }))
                .collect::<io::Result<Vec<_>>>()?;
            let mut members = Vec::with_capacity(n);
            for i in 0..n {
                let server_dir = dir.path().join(server_name(i));
                std::fs::create_dir_all(&server_dir)?;
                let path = server_dir.join("nats.conf");
                std::fs::write(&path, config(i, &ports, &server_dir))?;
                members.push(Member { child: None, config: path, log: server_dir.join("nats.log") });
            }
            let mut cluster = Self { members, ports, binary: binary.clone(), env: env.clone(), dir };
            let started = (0..n).try_for_each(|i| cluster.spawn(i)).and_then(|()| cluster.wait_healthy_all());
            match started {
                Ok(()) => return Ok(cluster),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::Io(io::Error::other("no attempt made"))))
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the cluster has no server.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// `nats://127.0.0.1:<client port>` of server `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.ports[i].client)
    }

    /// The URL list a client of server `i` uses: server `i` first, then the others as fallbacks
    /// (comma-separated, the form `nats.url` accepts).
    pub fn urls_from(&self, i: usize) -> String {
        let mut urls = vec![self.url(i)];
        urls.extend((0..self.len()).filter(|j| *j != i).map(|j| self.url(j)));
        urls.join(",")
    }

    /// Every server's ports.
    pub fn ports(&self) -> &[ClusterPorts] {
        &self.ports
    }

    /// The directory holding the configurations, logs and JetStream stores.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kill server `i` with SIGKILL (no shutdown, no flush): a crash.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether server `i` is running.
    pub fn is_running(&mut self, i: usize) -> bool {
        self.members[i].child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Start server `i` again (after [`NatsCluster::kill`]) on the same ports and JetStream
    /// store, and wait until it listens. It then catches up with the others by itself; see
    /// [`NatsCluster::healthz`].
    pub fn restart(&mut self, i: usize) -> Result<(), HarnessError> {
        self.kill(i);
        self.spawn(i)?;
        self.wait_listening(i)
    }

    /// Server `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.members[i].log).unwrap_or_default()
    }

    /// `GET /healthz` of server `i`: `Some(body)` with status 200 (JetStream healthy: meta leader
    /// known, its streams and consumers current), `None` otherwise.
    pub fn healthz(&self, i: usize) -> Option<String> {
        let (status, body) = self.http_get(i, "/healthz").ok()?;
        (status == 200).then_some(body)
    }

    /// `GET <path>` on server `i`'s monitoring port: (status, body).
    pub fn http_get(&self, i: usize, path: &str) -> io::Result<(u16, String)> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.ports[i].http));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        Ok((status, body))
    }

    /// Wait until server `i` reports healthy (`/healthz` 200), up to `limit`.
    pub fn wait_healthy(&mut self, i: usize, limit: Duration) -> Result<(), HarnessError> {
        let start = Instant::now();
        while start.elapsed() < limit {
            self.check_alive(i)?;
            if self.healthz(i).is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(HarnessError::Io(io::Error::other(format!(
            "{} not healthy within {} s; /healthz: {:?}; its log:\n{}",
            server_name(i),
            limit.as_secs(),
            self.http_get(i, "/healthz").map(|(s, b)| format!("{s} {b}")),
            self.log(i)
        ))))
    }

    fn wait_healthy_all(&mut self) -> Result<(), HarnessError> {
        for i in 0..self.len() {
            self.wait_listening(i)?;
        }
        for i in 0..self.len() {
            self.wait_healthy(i, START_LIMIT)?;
        }
        self.wait_meta_peers_current()
    }

    /// Wait until the JetStream meta leader sees every other server current and online: before
    /// that, JetStream refuses to place a new replicated stream ("peer offline").
    pub fn wait_meta_peers_current(&self) -> Result<(), HarnessError> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < START_LIMIT {
            for i in 0..self.len() {
                let Ok((200, jsz)) = self.http_get(i, "/jsz") else { continue };
                let Some(meta) = jsz.split("\"meta_cluster\"").nth(1) else { continue };
                // Only the meta leader lists the other peers (server names may be the shipped
                // files' own, so the leader is not found by name).
                if !meta.contains("\"replicas\"") {
                    continue;
                }
                let current = meta.matches("\"current\": true").count();
                if current + 1 >= self.len() && !meta.contains("\"offline\": true") {
                    return Ok(());
                }
                last = jsz;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(HarnessError::Io(io::Error::other(format!("JetStream meta peers not current: {last}"))))
    }

    fn check_alive(&mut self, i: usize) -> Result<(), HarnessError> {
        let exited = match self.members[i].child.as_mut() {
            Some(child) => child.try_wait()?,
            None => {
                return Err(HarnessError::Io(io::Error::other(format!("{} is not running", server_name(i)))));
            }
        };
        match exited {
            Some(status) => Err(HarnessError::Io(io::Error::other(format!(
                "{} exited with {status}; its log:\n{}",
                server_name(i),
                self.log(i)
            )))),
            None => Ok(()),
        }
    }

    fn wait_listening(&mut self, i: usize) -> Result<(), HarnessError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.ports[i].client));
        let start = Instant::now();
        while start.elapsed() < START_LIMIT {
            self.check_alive(i)?;
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err(HarnessError::NotListening { addr, secs: START_LIMIT.as_secs(), log: self.log(i) })
    }

    fn spawn(&mut self, i: usize) -> Result<(), HarnessError> {
        let member = &self.members[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&member.log)?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&member.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.members[i].child = Some(child);
        Ok(())
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_three_server_cluster_forms_and_a_killed_server_comes_back_on_its_ports() {
        let mut cluster = NatsCluster::start(3).unwrap();
        for i in 0..3 {
            let (status, body) = cluster.http_get(i, "/varz").unwrap();
            assert_eq!(status, 200);
            assert!(body.contains(&format!("\"server_name\": \"{}\"", server_name(i))), "{body}");
            // Routes to both other servers.
            let (_, routez) = cluster.http_get(i, "/routez").unwrap();
            assert!(
                routez.contains("\"num_routes\": 2") || routez.matches("\"rid\"").count() >= 2,
                "{routez}"
            );
            let (_, jsz) = cluster.http_get(i, "/jsz").unwrap();
            assert!(
                jsz.contains("\"meta_cluster\"") && jsz.contains("\"cluster_size\": 3"),
                "JetStream clustered over 3: {jsz}"
            );
        }
        let old = cluster.ports()[1];
        cluster.kill(1);
        assert!(!cluster.is_running(1));
        assert!(cluster.healthz(1).is_none());
        assert!(
            TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], old.client)),
                Duration::from_millis(200)
            )
            .is_err()
        );
        cluster.restart(1).unwrap();
        cluster.wait_healthy(1, Duration::from_secs(30)).unwrap();
        assert_eq!(cluster.ports()[1].client, old.client);
        assert!(
            cluster.log(1).contains("Restored") || cluster.log(1).contains("Starting JetStream"),
            "{}",
            cluster.log(1)
        );
        assert_eq!(cluster.urls_from(2).split(',').next().unwrap(), cluster.url(2));
        assert_eq!(cluster.urls_from(2).split(',').count(), 3);
    }
}
