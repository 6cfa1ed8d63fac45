//! `/health` (the original's JSON) and `/metrics` (Prometheus text) on `healthcheck.address`.
//!
//! A deliberately small HTTP/1.1 responder on tokio: two GET endpoints, no request bodies, a read
//! timeout, a request-size cap, and `Connection: close`. It keeps a web framework out of the
//! node's dependency tree.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use mpcium_api::ErrorCode;

use crate::registry::PeerDirectory;

/// The `/metrics` label of every error code this node does not know.
pub const OTHER_CODE: &str = "ERROR_OTHER";

/// The metric label of a wire error code: the code itself when it is one of ours, else
/// [`OTHER_CODE`].
fn code_label(code: &str) -> &'static str {
    ErrorCode::ALL.iter().map(ErrorCode::as_str).find(|known| *known == code).unwrap_or(OTHER_CODE)
}

/// Counters the request service updates.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// By wire code, only codes of [`ErrorCode::ALL`] and [`OTHER_CODE`]: a code may come from a
    /// peer's report (free text), so it is neither a label value as it is nor a key of an
    /// unbounded map.
    errors: Mutex<BTreeMap<&'static str, u64>>,
    durations: Mutex<BTreeMap<&'static str, (f64, u64)>>,
    /// Unix time (s) of the latest error result, by operation and error code.
    last_errors: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    sessions_started: AtomicU64,
    /// DKLs23 counterparties this node has banned, over all wallets (see `service::bans`).
    pub bans: AtomicU64,
    /// Signing requests run again with another quorum after a chosen signer was absent.
    pub reselections: AtomicU64,
    /// The presignature pool's counters.
    pub presign: crate::presign::PoolCounters,
    /// The key pool's counters.
    pub key_pool: crate::keypool::KeyPoolCounters,
    /// FROST nonces drawn ahead: signatures coordinated with them or in full.
    pub nonces: crate::nonces::NonceCounters,
    /// The audit writer's counters (`crate::audit::writer`).
    pub audit: Arc<crate::audit::AuditCounters>,
    /// Client requests refused by `limits.requests_per_second` (`service/limits.rs`).
    pub rate_limited: crate::limits::RateLimitCounters,
}

impl Metrics {
    /// Counters that show the audit writer's too.
    pub fn with_audit(audit: Arc<crate::audit::AuditCounters>) -> Self {
        Self { audit, ..Default::default() }
    }

    /// Record one answered request: its operation (`keygen`, `sign`, `reshare`), its error code
    /// (`None` for success) and how long it took.
    pub fn record(&self, op: &'static str, error_code: Option<&str>, elapsed: Duration) {
        let result = if error_code.is_some() { "error" } else { "success" };
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((op, result)).or_default() += 1;
        }
        // Labels are known codes only (bounded, no peer text in the output), in both maps.
        let label = error_code.map(code_label);
        if let (Some(code), Ok(mut m)) = (label, self.errors.lock()) {
            *m.entry(code).or_default() += 1;
        }
        if let (Some(code), Ok(mut m)) = (label, self.last_errors.lock()) {
            m.insert((op, code), crate::registry::now_ms() / 1000);
        }
        if let Ok(mut m) = self.durations.lock() {
            let e = m.entry(op).or_default();
            e.0 += elapsed.as_secs_f64();
            e.1 += 1;
        }
    }

    /// Count a protocol session this node took part in.
    pub fn session_started(&self) {
        self.sessions_started.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text `/metrics` serves (metric names: [`crate::status`] reads them back).
    fn render(&self, dir: &PeerDirectory) -> String {
        let mut out = String::new();
        out.push_str("# HELP mpcium_node_info This node's id and version (always 1).\n");
        out.push_str("# TYPE mpcium_node_info gauge\n");
        out.push_str(&format!(
            "mpcium_node_info{{node_id=\"{}\",version=\"{}\"}} 1\n",
            label_value(dir.me()),
            env!("CARGO_PKG_VERSION")
        ));
        out.push_str("# HELP mpcium_requests_total Client requests answered, by operation and result.\n");
        out.push_str("# TYPE mpcium_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((op, result), n) in m.iter() {
                out.push_str(&format!("mpcium_requests_total{{op=\"{op}\",result=\"{result}\"}} {n}\n"));
            }
        }
        out.push_str("# HELP mpcium_errors_total Error results, by wire error code.\n");
        out.push_str("# TYPE mpcium_errors_total counter\n");
        if let Ok(m) = self.errors.lock() {
            for (code, n) in m.iter() {
                out.push_str(&format!("mpcium_errors_total{{code=\"{code}\"}} {n}\n"));
            }
        }
        out.push_str(
            "# HELP mpcium_last_error_timestamp_seconds Unix time of the latest error result, by operation and code.\n",
        );
        out.push_str("# TYPE mpcium_last_error_timestamp_seconds gauge\n");
        if let Ok(m) = self.last_errors.lock() {
            for ((op, code), at) in m.iter() {
                out.push_str(&format!(
                    "mpcium_last_error_timestamp_seconds{{op=\"{op}\",code=\"{}\"}} {at}\n",
                    label_value(code)
                ));
            }
        }
        out.push_str("# HELP mpcium_request_duration_seconds Time from pulling a request to its result.\n");
        out.push_str("# TYPE mpcium_request_duration_seconds summary\n");
        if let Ok(m) = self.durations.lock() {
            for (op, (sum, count)) in m.iter() {
                out.push_str(&format!("mpcium_request_duration_seconds_sum{{op=\"{op}\"}} {sum}\n"));
                out.push_str(&format!("mpcium_request_duration_seconds_count{{op=\"{op}\"}} {count}\n"));
            }
        }
        out.push_str("# HELP mpcium_sessions_total Protocol sessions this node took part in.\n");
        out.push_str("# TYPE mpcium_sessions_total counter\n");
        out.push_str(&format!("mpcium_sessions_total {}\n", self.sessions_started.load(Ordering::Relaxed)));
        out.push_str("# HELP mpcium_bans DKLs23 counterparties banned by this node (wallet, node) after a failed OT check.\n");
        out.push_str("# TYPE mpcium_bans gauge\n");
        out.push_str(&format!("mpcium_bans {}\n", self.bans.load(Ordering::Relaxed)));
        out.push_str("# HELP mpcium_sign_reselections_total Signing attempts run again with other signers after one was absent.\n");
        out.push_str("# TYPE mpcium_sign_reselections_total counter\n");
        out.push_str(&format!(
            "mpcium_sign_reselections_total {}\n",
            self.reselections.load(Ordering::Relaxed)
        ));
        let p = &self.presign;
        let gauges = [
            (
                "mpcium_presign_pool_size",
                "gauge",
                "Presignatures this node owns now, over its warm wallets.",
                &p.owned,
            ),
            (
                "mpcium_presign_made_total",
                "counter",
                "Presign sessions this node started that succeeded.",
                &p.made,
            ),
            (
                "mpcium_presign_used_total",
                "counter",
                "ECDSA signatures coordinated with a presignature.",
                &p.used,
            ),
            (
                "mpcium_presign_missed_total",
                "counter",
                "ECDSA signatures coordinated without one.",
                &p.missed,
            ),
            (
                "mpcium_presign_throttled_total",
                "counter",
                "Presign sessions of other owners refused: over the owner's rate.",
                &p.throttled,
            ),
            (
                "mpcium_presign_refused_not_warm_total",
                "counter",
                "Presign sessions of other owners refused: the wallet is not warm here.",
                &p.refused_not_warm,
            ),
            (
                "mpcium_presign_reuse_refused_total",
                "counter",
                "Presignatures refused because this node had used them before (restored copies).",
                &p.reuse_refused,
            ),
            (
                "mpcium_key_pool_size",
                "gauge",
                "Keys made ahead that this node owns now.",
                &self.key_pool.owned,
            ),
            (
                "mpcium_key_pool_made_total",
                "counter",
                "Pool keygens this node started that succeeded.",
                &self.key_pool.made,
            ),
            (
                "mpcium_key_pool_used_total",
                "counter",
                "Keygens coordinated with a key made ahead.",
                &self.key_pool.used,
            ),
            (
                "mpcium_key_pool_missed_total",
                "counter",
                "Keygens coordinated with their DKGs (no key made ahead, or one not handed over).",
                &self.key_pool.missed,
            ),
            (
                "mpcium_key_pool_throttled_total",
                "counter",
                "Pool keygens of other owners refused: over the owner's rate.",
                &self.key_pool.throttled,
            ),
            (
                "mpcium_key_pool_reuse_refused_total",
                "counter",
                "Keys made ahead refused because this node had handed them to another wallet before (copied stores).",
                &self.key_pool.reuse_refused,
            ),
            (
                "mpcium_frost_nonce_signatures_total",
                "counter",
                "EdDSA and Taproot signatures this node coordinated in one round, with nonces drawn ahead.",
                &self.nonces.used,
            ),
            (
                "mpcium_frost_full_signatures_total",
                "counter",
                "EdDSA and Taproot signatures this node coordinated in two rounds (no nonces drawn ahead, or one refused).",
                &self.nonces.full,
            ),
            (
                "mpcium_frost_nonce_refused_total",
                "counter",
                "Nonces a coordinator named that this node did not hold (used, dropped, or drawn before a restart).",
                &self.nonces.refused,
            ),
            (
                "mpcium_audit_written_total",
                "counter",
                "Audit entries stored in mpc-audit.",
                &self.audit.written,
            ),
            (
                "mpcium_audit_dropped_total",
                "counter",
                "Audit records not written (queue full, or still queued at shutdown).",
                &self.audit.dropped,
            ),
            (
                "mpcium_audit_retries_total",
                "counter",
                "Audit appends JetStream did not take at the first try (retried).",
                &self.audit.retries,
            ),
        ];
        for (name, kind, help, value) in gauges {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            out.push_str(&format!("{name} {}\n", value.load(Ordering::Relaxed)));
        }
        out.push_str(&self.rate_limited.render());
        out.push_str("# HELP mpcium_peers_ready Nodes ready (this one included).\n");
        out.push_str("# TYPE mpcium_peers_ready gauge\n");
        out.push_str(&format!("mpcium_peers_ready {}\n", dir.ready().len()));
        out.push_str("# HELP mpcium_peers_configured Nodes configured (this one included).\n");
        out.push_str("# TYPE mpcium_peers_configured gauge\n");
        out.push_str(&format!("mpcium_peers_configured {}\n", dir.configured().len()));
        out
    }
}

/// A Prometheus label value: `\`, `"` and newlines escaped.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// What `/health` reports.
pub struct HealthView {
    /// The peer directory.
    pub dir: PeerDirectory,
    /// The NATS connection.
    pub client: async_nats::Client,
    /// t (a signature needs t+1 ready nodes).
    pub threshold: usize,
    /// The counters.
    pub metrics: std::sync::Arc<Metrics>,
    /// The transport's counters (drops, replayed and refused session starts).
    pub transport: std::sync::Arc<crate::transport::TransportCounters>,
}

impl HealthView {
    /// `(HTTP status, JSON body)` in the original's shape. `consul_connected` mirrors the NATS
    /// state: the registry that replaced Consul lives in NATS.
    pub fn health(&self) -> (u16, String) {
        let nats = matches!(self.client.connection_state(), async_nats::connection::State::Connected);
        let ready = self.dir.ready().len();
        let total = self.dir.configured().len();
        let all = ready == total;
        let majority = ready > self.threshold;
        let ok = nats && majority;
        let body = format!(
            "{{\"status\":\"{}\",\"live\":true,\"ready\":{ok},\"details\":{{\"nats_connected\":{nats},\"consul_connected\":{nats},\"peers_ready_count\":\"{ready}/{total}\",\"all_peers_ready\":{all},\"majority_ready\":{majority}}}}}",
            if ok { "ready" } else { "not_ready" }
        );
        (if ok { 200 } else { 503 }, body)
    }
}

/// The pause after a failed accept of the health endpoint.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serve `/health` and `/metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, view: std::sync::Arc<HealthView>) {
    // An accept error (out of file descriptors, most often) repeats at once: back off instead of
    // spinning, and warn once per burst of them.
    let mut failing = false;
    loop {
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => {
                failing = false;
                stream
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "health endpoint: accept failed; retrying every 100 ms");
                    failing = true;
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let view = view.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut len = 0;
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while len < buf.len() {
                    let n = stream.read(&mut buf[len..]).await.ok()?;
                    if n == 0 {
                        break;
                    }
                    len += n;
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                Some(())
            })
            .await;
            if read.is_err() {
                return;
            }
            let request = String::from_utf8_lossy(&buf[..len]);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let (status, ctype, body) = match path {
                "/health" => {
                    let (s, b) = view.health();
                    (s, "application/json", b)
                }
                "/metrics" => {
                    let text = view.metrics.render(&view.dir) + &view.transport.render();
                    (200, "text/plain; version=0.0.4", text)
                }
                _ => (404, "text/plain", "not found\n".to_owned()),
            };
            let reason = match status {
                200 => "OK",
                503 => "Service Unavailable",
                _ => "Not Found",
            };
            let response = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_labels_are_known_codes_only_and_bounded() {
        let m = Metrics::default();
        m.record("sign", Some("ERROR_KEY_NOT_FOUND"), Duration::ZERO);
        m.record("sign", Some("ERROR_KEY_NOT_FOUND"), Duration::ZERO);
        m.record("sign", Some("x\"} 1\nmpcium_fake 9"), Duration::ZERO);
        for i in 0..10_000 {
            m.record("sign", Some(&format!("ERROR_PEER_{i}")), Duration::ZERO);
        }
        let errors = m.errors.lock().unwrap();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors.get("ERROR_KEY_NOT_FOUND"), Some(&2));
        assert_eq!(errors.get(OTHER_CODE), Some(&10_001));
        drop(errors);
        let dir = PeerDirectory::new(
            "node0",
            Default::default(),
            crate::pairkey::ExchangeKey::generate(),
            Duration::from_secs(1),
        );
        let text = m.render(&dir);
        assert!(text.contains("mpcium_errors_total{code=\"ERROR_OTHER\"} 10001\n"), "{text}");
        assert!(!text.contains("mpcium_fake"), "{text}");
        // The latest-error gauges are bounded the same way: one per (operation, known code).
        assert_eq!(text.matches("mpcium_last_error_timestamp_seconds{").count(), 2, "{text}");
    }
}
