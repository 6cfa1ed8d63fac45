//! The benchmark's results: statistics over the operations' outcomes, as text and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// What one operation ended with.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Time from sending the request to its result (or to the failure).
    pub latency: Duration,
    /// `None` on success; the error code otherwise (the cluster's `error_code`, or a client-side
    /// code such as `CLIENT_TIMEOUT`).
    pub error: Option<String>,
    /// The wallet created (keygen successes only).
    pub wallet_id: Option<String>,
}

/// Latency percentiles of the successful operations, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Fastest.
    pub min: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

/// The summary written to `--output` (text) and `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `keygen`, `sign-ecdsa`, `sign-eddsa` or `reshare`.
    pub operation: String,
    /// Operations sent.
    pub count: usize,
    /// Operations that returned a success event.
    pub successes: usize,
    /// `count - successes`.
    pub failures: usize,
    /// `successes / count` (0 when nothing was sent).
    pub success_rate: f64,
    /// Failures per error code.
    pub errors: BTreeMap<String, usize>,
    /// Most operations in flight at once.
    pub batch_size: usize,
    /// Per-operation timeout.
    pub timeout_seconds: u64,
    /// From the first request to the last result.
    pub wall_time_ms: f64,
    /// `count / wall time` (every operation, failed ones included, as the original counts).
    pub throughput_ops_per_sec: f64,
    /// Successful operations per second.
    pub success_throughput_ops_per_sec: f64,
    /// Latencies of the successful operations; `None` when none succeeded.
    pub latency_ms: Option<Latency>,
    /// Wallets created (keygen only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wallet_ids: Vec<String>,
    /// With `--compare`: the crypto-only limit measured in the same run, and the ratio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crypto_limit: Option<super::compare::CryptoLimit>,
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of an ascending, non-empty slice.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latency statistics of `samples`; `None` when empty.
pub fn latency(samples: &[Duration]) -> Option<Latency> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let (first, last) = (sorted.first()?, sorted.last()?);
    let total: Duration = sorted.iter().sum();
    Some(Latency {
        min: millis(*first),
        mean: millis(total) / sorted.len() as f64,
        p50: millis(percentile(&sorted, 50.0)),
        p90: millis(percentile(&sorted, 90.0)),
        p99: millis(percentile(&sorted, 99.0)),
        max: millis(*last),
    })
}

impl Report {
    /// Summarises `outcomes` of one run that took `wall` in total.
    pub fn new(
        operation: &str,
        outcomes: &[Outcome],
        wall: Duration,
        batch_size: usize,
        timeout: Duration,
    ) -> Self {
        let mut errors = BTreeMap::new();
        let mut ok_latencies = Vec::new();
        let mut wallet_ids = Vec::new();
        for o in outcomes {
            match &o.error {
                Some(code) => *errors.entry(code.clone()).or_insert(0) += 1,
                None => {
                    ok_latencies.push(o.latency);
                    wallet_ids.extend(o.wallet_id.clone());
                }
            }
        }
        let count = outcomes.len();
        let successes = ok_latencies.len();
        let secs = wall.as_secs_f64();
        let per_sec = |n: usize| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        Self {
            operation: operation.to_owned(),
            count,
            successes,
            failures: count - successes,
            success_rate: if count == 0 { 0.0 } else { successes as f64 / count as f64 },
            errors,
            batch_size,
            timeout_seconds: timeout.as_secs(),
            wall_time_ms: millis(wall),
            throughput_ops_per_sec: per_sec(count),
            success_throughput_ops_per_sec: per_sec(successes),
            latency_ms: latency(&ok_latencies),
            wallet_ids,
            crypto_limit: None,
        }
    }

    /// Attach the crypto-only limit and compute the ratio of the successful throughput to it.
    pub fn set_crypto_limit(&mut self, limit: Option<super::compare::CryptoLimit>) {
        self.crypto_limit = limit.map(|mut l| {
            l.ratio = Some(self.success_throughput_ops_per_sec / l.limit_ops_per_sec);
            l
        });
    }

    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(s, "Benchmark: {}", self.operation);
        let _ = writeln!(
            s,
            "Operations: {} (batch size {}, timeout {} s)",
            self.count, self.batch_size, self.timeout_seconds
        );
        let _ =
            writeln!(s, "Successes: {} / {} ({:.2}%)", self.successes, self.count, self.success_rate * 100.0);
        if self.errors.is_empty() {
            let _ = writeln!(s, "Errors: none");
        } else {
            let _ = writeln!(s, "Errors:");
            for (code, n) in &self.errors {
                let _ = writeln!(s, "  {code}: {n}");
            }
        }
        let _ = writeln!(s, "Total time: {:.3} s", self.wall_time_ms / 1000.0);
        let _ = writeln!(
            s,
            "Throughput: {:.2} ops/s ({:.1} ops/min); successful: {:.2} ops/s",
            self.throughput_ops_per_sec,
            self.throughput_ops_per_sec * 60.0,
            self.success_throughput_ops_per_sec
        );
        match &self.latency_ms {
            Some(l) => {
                let _ = writeln!(
                    s,
                    "Latency of successful operations (ms): min {:.1}, mean {:.1}, p50 {:.1}, p90 {:.1}, p99 {:.1}, max {:.1}",
                    l.min, l.mean, l.p50, l.p90, l.p99, l.max
                );
            }
            None => {
                let _ = writeln!(s, "Latency: no successful operation");
            }
        }
        if let Some(l) = &self.crypto_limit {
            let _ = writeln!(
                s,
                "Crypto alone ({}): {:.2} ms CPU per operation over {} runs, limit {:.1} ops/s on {} cores; end to end = {:.2} of it",
                l.what,
                l.cpu_ms_per_op,
                l.runs,
                l.limit_ops_per_sec,
                l.cores,
                l.ratio.unwrap_or(0.0)
            );
        }
        if !self.wallet_ids.is_empty() {
            let _ = writeln!(s, "Wallets created:");
            for id in &self.wallet_ids {
                let _ = writeln!(s, "  {id}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).rev().map(ms).collect();
        let l = latency(&samples).unwrap();
        assert_eq!((l.min, l.p50, l.p90, l.p99, l.max), (1.0, 50.0, 90.0, 99.0, 100.0));
        assert!((l.mean - 50.5).abs() < 1e-9);
        let one = latency(&[ms(7)]).unwrap();
        assert_eq!((one.p50, one.p99, one.max), (7.0, 7.0, 7.0));
        assert_eq!(latency(&[]), None);
    }

    #[test]
    fn failures_are_counted_by_code_and_left_out_of_latency() {
        let ok =
            |n, w: Option<&str>| Outcome { latency: ms(n), error: None, wallet_id: w.map(str::to_owned) };
        let err = |code: &str| Outcome { latency: ms(60_000), error: Some(code.to_owned()), wallet_id: None };
        let outcomes = [
            ok(100, Some("w1")),
            ok(300, Some("w2")),
            err("CLIENT_TIMEOUT"),
            err("ERROR_SIGNING_FAILED"),
            err("CLIENT_TIMEOUT"),
        ];
        let r = Report::new("keygen", &outcomes, Duration::from_secs(2), 10, Duration::from_secs(60));
        assert_eq!((r.count, r.successes, r.failures), (5, 2, 3));
        assert!((r.success_rate - 0.4).abs() < 1e-9);
        assert_eq!(r.errors["CLIENT_TIMEOUT"], 2);
        assert_eq!(r.errors["ERROR_SIGNING_FAILED"], 1);
        assert!((r.throughput_ops_per_sec - 2.5).abs() < 1e-9);
        assert!((r.success_throughput_ops_per_sec - 1.0).abs() < 1e-9);
        assert_eq!(r.latency_ms.as_ref().unwrap().max, 300.0);
        assert_eq!(r.wallet_ids, ["w1", "w2"]);
        let text = r.to_text();
        assert!(text.contains("Successes: 2 / 5 (40.00%)"), "{text}");
        assert!(text.contains("  CLIENT_TIMEOUT: 2"), "{text}");
        assert!(text.contains("p50 100.0"), "{text}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["latency_ms"]["p99"], 300.0);
        assert_eq!(json["errors"]["CLIENT_TIMEOUT"], 2);
    }

    #[test]
    fn nothing_succeeded_has_no_latency() {
        let r = Report::new("sign-eddsa", &[], Duration::ZERO, 10, Duration::from_secs(60));
        assert_eq!((r.count, r.success_rate, r.throughput_ops_per_sec), (0, 0.0, 0.0));
        assert!(r.latency_ms.is_none());
        assert!(r.to_text().contains("no successful operation"));
    }
}
