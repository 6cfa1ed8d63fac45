//! The cluster at a glance (`mpcium-cli status`): peers and readiness from the registry (NATS KV),
//! and per node its version, presignature pool, requests, bans and latest errors from its
//! `/metrics` (the Prometheus text the node's health endpoint serves).
//!
//! Kept next to the node because the metric names are the node's: a renamed metric breaks the
//! status test, not an operator's terminal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Registry, RegistryError};

/// How long one `/metrics` fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest `/metrics` body read.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// How many of a node's latest errors are shown.
pub const LAST_ERRORS_SHOWN: usize = 3;

/// Reading the cluster's state failed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The registry could not be read.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// One sample line of Prometheus text: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with `_sum`/`_count` suffixes as written).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Parses the sample lines of Prometheus text exposition (comments and malformed lines are
/// skipped; label values may contain escaped `\\`, `\"`, `\n` and commas).
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let mut key = String::new();
        let end;
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' if key.trim().is_empty() => {
                    end = i + 1;
                    break;
                }
                ',' if key.trim().is_empty() => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                    labels.insert(std::mem::take(&mut key).trim().to_owned(), value);
                }
                other => key.push(other),
            }
        }
        rest = &after[end..];
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample { name, labels, value })
}

/// What one node's `/metrics` says.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeMetrics {
    /// `mpcium_node_info{node_id}`.
    pub node_id: String,
    /// `mpcium_node_info{version}`.
    pub version: String,
    /// `mpcium_peers_ready` (as this node sees it).
    pub peers_ready: u64,
    /// `mpcium_presign_pool_size`: presignatures this node owns.
    pub presign_pool: u64,
    /// `mpcium_presign_made_total`, `_used_total`, `_missed_total`.
    pub presign_made: u64,
    /// See `presign_made`.
    pub presign_used: u64,
    /// See `presign_made`.
    pub presign_missed: u64,
    /// `mpcium_sessions_total`.
    pub sessions: u64,
    /// `mpcium_requests_total{result="success"}`, summed over operations.
    pub requests_ok: u64,
    /// `mpcium_requests_total{result="error"}`, summed over operations.
    pub requests_failed: u64,
    /// `mpcium_bans` summed over its series; 0 when the node does not export it.
    pub bans: u64,
    /// `mpcium_errors_total` by code.
    pub errors_by_code: BTreeMap<String, u64>,
    /// `mpcium_last_error_timestamp_seconds`: (unix seconds, operation, code), newest first.
    pub last_errors: Vec<(u64, String, String)>,
}

impl NodeMetrics {
    /// Reads the node's samples; `None` when `mpcium_node_info` is missing (not an mpcium node).
    pub fn from_samples(samples: &[Sample]) -> Option<Self> {
        let info = samples.iter().find(|s| s.name == "mpcium_node_info")?;
        let sum = |name: &str, filter: &dyn Fn(&Sample) -> bool| -> u64 {
            samples.iter().filter(|s| s.name == name && filter(s)).map(|s| s.value.max(0.0) as u64).sum()
        };
        let all = |_: &Sample| true;
        let result_is =
            |want: &'static str| move |s: &Sample| s.labels.get("result").is_some_and(|r| r == want);
        let mut last_errors: Vec<(u64, String, String)> = samples
            .iter()
            .filter(|s| s.name == "mpcium_last_error_timestamp_seconds")
            .map(|s| {
                let label = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
                (s.value.max(0.0) as u64, label("op"), label("code"))
            })
            .collect();
        last_errors.sort_by(|a, b| b.cmp(a));
        Some(Self {
            node_id: info.labels.get("node_id").cloned().unwrap_or_default(),
            version: info.labels.get("version").cloned().unwrap_or_default(),
            peers_ready: sum("mpcium_peers_ready", &all),
            presign_pool: sum("mpcium_presign_pool_size", &all),
            presign_made: sum("mpcium_presign_made_total", &all),
            presign_used: sum("mpcium_presign_used_total", &all),
            presign_missed: sum("mpcium_presign_missed_total", &all),
            sessions: sum("mpcium_sessions_total", &all),
            requests_ok: sum("mpcium_requests_total", &result_is("success")),
            requests_failed: sum("mpcium_requests_total", &result_is("error")),
            bans: sum("mpcium_bans", &all),
            errors_by_code: samples
                .iter()
                .filter(|s| s.name == "mpcium_errors_total")
                .map(|s| (s.labels.get("code").cloned().unwrap_or_default(), s.value.max(0.0) as u64))
                .collect(),
            last_errors,
        })
    }
}

/// Fetches `http://<address>/metrics` (`address` is `host:port`, optionally with `http://`).
pub async fn fetch_metrics(address: &str) -> Result<String, String> {
    let host = address.trim_start_matches("http://").trim_end_matches('/');
    if host.contains("://") {
        return Err(format!("{address}: only http:// is supported (the node serves plain HTTP)"));
    }
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(host).await.map_err(|e| e.to_string())?;
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        (&mut stream).take(MAX_BODY as u64).read_to_end(&mut body).await.map_err(|e| e.to_string())?;
        Ok::<Vec<u8>, String>(body)
    };
    let raw = tokio::time::timeout(FETCH_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{address}: no answer within {} s", FETCH_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{address}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) =
        text.split_once("\r\n\r\n").ok_or_else(|| format!("{address}: not an HTTP response"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("{address}: {status}"));
    }
    Ok(body.to_owned())
}

/// One configured peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerStatus {
    /// Name (`mpc_peers` key).
    pub name: String,
    /// Node id.
    pub node_id: String,
    /// Its readiness record is in `mpc_ready` (it expires 3 heartbeats after the last one).
    pub ready: bool,
    /// When its process started (Unix ms), from the readiness record.
    pub started_at_ms: Option<u64>,
    /// Its `/metrics`, when one of the given addresses belongs to it.
    pub metrics: Option<NodeMetrics>,
}

/// The whole picture.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterStatus {
    /// Every registered peer, by name.
    pub peers: Vec<PeerStatus>,
    /// Ready records of node ids that are not registered peers.
    pub unknown_ready: Vec<String>,
    /// Keys in `mpc_keyinfo`, by curve prefix (`ecdsa`, `eddsa`).
    pub wallets: BTreeMap<String, usize>,
    /// Metrics addresses that failed or do not belong to a registered peer: (address, why).
    pub metrics_problems: Vec<(String, String)>,
}

impl ClusterStatus {
    /// Reads the registry and every metrics address.
    pub async fn collect(registry: &Registry, metrics_addresses: &[String]) -> Result<Self, StatusError> {
        let peers = registry.peers().await?;
        let ready = registry.ready_records().await?;
        let mut wallets = BTreeMap::new();
        for key in registry.keyinfo_keys().await? {
            let curve = key.split('.').next().unwrap_or_default().to_owned();
            *wallets.entry(curve).or_default() += 1;
        }
        let mut by_id: BTreeMap<String, NodeMetrics> = BTreeMap::new();
        let mut metrics_problems = Vec::new();
        for address in metrics_addresses {
            match fetch_metrics(address).await {
                Ok(text) => match NodeMetrics::from_samples(&parse_metrics(&text)) {
                    Some(m) if peers.values().any(|id| *id == m.node_id) => {
                        by_id.insert(m.node_id.clone(), m);
                    }
                    Some(m) => metrics_problems
                        .push((address.clone(), format!("node {} is not a registered peer", m.node_id))),
                    None => metrics_problems
                        .push((address.clone(), "no mpcium_node_info: not an mpcium node".into())),
                },
                Err(e) => metrics_problems.push((address.clone(), e)),
            }
        }
        let peer_list = peers
            .iter()
            .map(|(name, id)| PeerStatus {
                name: name.clone(),
                node_id: id.clone(),
                ready: ready.contains_key(id),
                started_at_ms: ready.get(id).map(|r| r.started_at_ms),
                metrics: by_id.remove(id),
            })
            .collect();
        let unknown_ready = ready.keys().filter(|id| !peers.values().any(|p| p == *id)).cloned().collect();
        Ok(Self { peers: peer_list, unknown_ready, wallets, metrics_problems })
    }

    /// Nodes ready now.
    pub fn ready_count(&self) -> usize {
        self.peers.iter().filter(|p| p.ready).count()
    }

    /// The report as text (`now_ms` for ages).
    pub fn render(&self, now_ms: u64) -> String {
        let mut out = String::new();
        let wallets: Vec<String> = self.wallets.iter().map(|(c, n)| format!("{n} {c}")).collect();
        let _ = writeln!(
            out,
            "peers: {} registered, {} ready; keys: {}",
            self.peers.len(),
            self.ready_count(),
            if wallets.is_empty() { "none".to_owned() } else { wallets.join(", ") }
        );
        let _ = writeln!(
            out,
            "{:<10} {:<36} {:<5} {:>9} {:<8} {:>5} {:>12} {:>9} {:>4} last errors",
            "NAME", "NODE ID", "READY", "UP", "VERSION", "POOL", "PRESIGN m/u/x", "REQ ok/err", "BANS"
        );
        for p in &self.peers {
            let up = match p.started_at_ms {
                Some(t) if p.ready => age(now_ms.saturating_sub(t) / 1000),
                _ => "-".to_owned(),
            };
            let ready = if p.ready { "yes" } else { "NO" };
            match &p.metrics {
                Some(m) => {
                    let errors: Vec<String> = m
                        .last_errors
                        .iter()
                        .take(LAST_ERRORS_SHOWN)
                        .map(|(at, op, code)| {
                            format!("{code} ({op}, {} ago)", age((now_ms / 1000).saturating_sub(*at)))
                        })
                        .collect();
                    let _ = writeln!(
                        out,
                        "{:<10} {:<36} {:<5} {:>9} {:<8} {:>5} {:>12} {:>9} {:>4} {}",
                        p.name,
                        p.node_id,
                        ready,
                        up,
                        m.version,
                        m.presign_pool,
                        format!("{}/{}/{}", m.presign_made, m.presign_used, m.presign_missed),
                        format!("{}/{}", m.requests_ok, m.requests_failed),
                        m.bans,
                        if errors.is_empty() { "-".to_owned() } else { errors.join("; ") }
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "{:<10} {:<36} {:<5} {:>9} {:<8} {:>5} {:>12} {:>9} {:>4} (no --metrics address for it)",
                        p.name, p.node_id, ready, up, "?", "?", "?", "?", "?"
                    );
                }
            }
        }
        for id in &self.unknown_ready {
            let _ = writeln!(out, "warning: node {id} announces readiness but is not a registered peer");
        }
        for (address, why) in &self.metrics_problems {
            let _ = writeln!(out, "warning: metrics {address}: {why}");
        }
        out
    }
}

/// `95s`, `12m`, `3h`, `2d`.
fn age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_and_values() {
        let text = "# HELP x y\n# TYPE x counter\nmpcium_sessions_total 7\n\
                    mpcium_requests_total{op=\"sign\",result=\"error\"} 2\n\
                    mpcium_node_info{node_id=\"a\\\"b,c\",version=\"0.1.0\"} 1\n\
                    mpcium_request_duration_seconds_sum{op=\"sign\"} 0.25\nbroken{x=\"1\" 3\n";
        let s = parse_metrics(text);
        assert_eq!(s.len(), 4, "{s:?}");
        assert_eq!((s[0].name.as_str(), s[0].value), ("mpcium_sessions_total", 7.0));
        assert_eq!(s[1].labels["result"], "error");
        assert_eq!(s[2].labels["node_id"], "a\"b,c");
        assert_eq!(s[3].value, 0.25);
    }

    #[test]
    fn node_metrics_sum_and_default_bans_to_zero() {
        let text = "mpcium_node_info{node_id=\"n0\",version=\"0.1.0\"} 1\n\
                    mpcium_requests_total{op=\"keygen\",result=\"success\"} 1\n\
                    mpcium_requests_total{op=\"sign\",result=\"success\"} 4\n\
                    mpcium_requests_total{op=\"sign\",result=\"error\"} 2\n\
                    mpcium_last_error_timestamp_seconds{op=\"sign\",code=\"ERROR_A\"} 100\n\
                    mpcium_last_error_timestamp_seconds{op=\"keygen\",code=\"ERROR_B\"} 200\n\
                    mpcium_presign_pool_size 8\n";
        let m = NodeMetrics::from_samples(&parse_metrics(text)).unwrap();
        assert_eq!((m.requests_ok, m.requests_failed, m.presign_pool, m.bans), (5, 2, 8, 0));
        assert_eq!(m.last_errors[0], (200, "keygen".into(), "ERROR_B".into()));
        let with_bans = format!("{text}mpcium_bans{{node=\"x\"}} 1\nmpcium_bans{{node=\"y\"}} 2\n");
        assert_eq!(NodeMetrics::from_samples(&parse_metrics(&with_bans)).unwrap().bans, 3);
        assert!(NodeMetrics::from_samples(&parse_metrics("up 1\n")).is_none());
    }
}
