//! A network namespace joined to the host by a veth pair (the partition tests).

use std::process::Command;

/// A network namespace joined to the host by a veth pair; removed (with the pair) on drop, also
/// when the test fails.
pub struct Netns {
    /// The namespace's name.
    pub name: String,
    /// The host end of the veth pair.
    pub host_if: String,
    /// The host end's address (what the namespace reaches the host on).
    pub host_ip: String,
    /// The namespace end's address.
    pub ns_ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Netns {
    /// [`Netns::create`], or `None` after printing that `test` is skipped (not root, or no
    /// CAP_NET_ADMIN).
    pub fn create_or_skip(test: &str) -> Option<Self> {
        match Self::create() {
            Ok(netns) => Some(netns),
            Err(e) => {
                eprintln!(
                    "SKIPPED {test}: cannot create a network namespace ({e}); run as root with CAP_NET_ADMIN"
                );
                None
            }
        }
    }

    /// A nats-server `listen` line on the host end of the veth pair: the host's processes reach
    /// it locally, the namespace's over the link.
    pub fn server_listen(&self) -> String {
        format!("listen: \"{}:-1\"", self.host_ip)
    }

    /// Create namespace `mpf<pid>` and a /30 veth link to it; `Err` when not permitted.
    pub fn create() -> Result<Self, String> {
        let pid = std::process::id();
        let name = format!("mpf{pid}");
        ip(&["netns", "add", &name])?;
        // A /30 named after the pid, so parallel runs do not collide.
        let net = format!("10.{}.{}", 200 + (pid / 250 % 50), pid % 250);
        let guard = Self {
            name: name.clone(),
            host_if: format!("mpf{pid}h"),
            host_ip: format!("{net}.1"),
            ns_ip: format!("{net}.2"),
        };
        let ns_if = format!("mpf{pid}n");
        let ns_ip = guard.ns_ip.clone();
        ip(&["link", "add", &guard.host_if, "type", "veth", "peer", "name", &ns_if])?;
        ip(&["link", "set", &ns_if, "netns", &name])?;
        ip(&["addr", "add", &format!("{}/30", guard.host_ip), "dev", &guard.host_if])?;
        ip(&["link", "set", &guard.host_if, "up"])?;
        ip(&["netns", "exec", &name, "ip", "addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if])?;
        ip(&["netns", "exec", &name, "ip", "link", "set", &ns_if, "up"])?;
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"])?;
        Ok(guard)
    }

    /// Cut the cable: the host end goes down, packets to and from the namespace are lost (no
    /// reset reaches either side).
    pub fn cut(&self) {
        ip(&["link", "set", &self.host_if, "down"]).unwrap();
    }

    /// Plug it back in.
    pub fn heal(&self) {
        ip(&["link", "set", &self.host_if, "up"]).unwrap();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
