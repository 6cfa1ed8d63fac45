//! `mpcium-cli benchmark` against a real devnet (nats-server + 3 nodes): keygen, then EdDSA,
//! ECDSA and Taproot signing on a created wallet; the JSON reports say every operation succeeded and carry
//! the latency percentiles. Skipped (with the reason printed) when the `mpcium` node binary has
//! not been built next to mpcium-cli; a failure under CI.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

mod common;

use common::{cli_binary, node_binary};

/// A running devnet, stopped with SIGINT when dropped.
struct Devnet {
    child: Child,
    log: PathBuf,
}

impl Devnet {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap();
        kill_process(pid, Signal::INT).ok()?;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if self.stop().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start_devnet(work: &Path, node: &Path, ready_file: &Path) -> Devnet {
    let nats = mpcium_testkit::nats_server_binary().unwrap();
    let log = work.join("devnet.out");
    let out = File::create(&log).unwrap();
    let child = Command::new(cli_binary())
        .args(["devnet", "--dir", "net", "--ready-timeout", "120"])
        .arg("--nats-server")
        .arg(&nats)
        .arg("--mpcium")
        .arg(node)
        .arg("--ready-file")
        .arg(ready_file)
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let mut devnet = Devnet { child, log };
    let start = Instant::now();
    while !ready_file.is_file() {
        if let Some(status) = devnet.child.try_wait().unwrap() {
            panic!("devnet exited ({status}) before it was ready:\n{}", devnet.log());
        }
        assert!(start.elapsed() < Duration::from_secs(180), "devnet not ready:\n{}", devnet.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    devnet
}

/// Runs one benchmark and returns its JSON report (asserting the command succeeded and wrote
/// the text report too).
fn benchmark(work: &Path, url: &str, key: &str, name: &str, args: &[&str]) -> serde_json::Value {
    let json = work.join(format!("{name}.json"));
    let text = work.join(format!("reports/{name}.txt"));
    let out = Command::new(cli_binary())
        .args(["benchmark", "--nats-url", url, "--key-path", key, "--json"])
        .arg(&json)
        .arg("-o")
        .arg(&text)
        .args(args)
        .current_dir(work)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "benchmark {args:?} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("Throughput:"), "{stdout}");
    let report = std::fs::read_to_string(&text).unwrap();
    assert!(report.contains("Latency of successful operations"), "{report}");
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

fn assert_all_succeeded(report: &serde_json::Value, operation: &str, count: u64) {
    assert_eq!(report["operation"], operation, "{report:#}");
    assert_eq!(report["count"], count, "{report:#}");
    assert_eq!(report["successes"], count, "{report:#}");
    assert_eq!(report["failures"], 0, "{report:#}");
    assert_eq!(report["success_rate"], 1.0, "{report:#}");
    assert!(report["errors"].as_object().unwrap().is_empty(), "{report:#}");
    assert!(report["throughput_ops_per_sec"].as_f64().unwrap() > 0.0, "{report:#}");
    let latency = &report["latency_ms"];
    let get = |k: &str| latency[k].as_f64().unwrap_or_else(|| panic!("no latency_ms.{k}: {report:#}"));
    let (min, p50, p90, p99, max) = (get("min"), get("p50"), get("p90"), get("p99"), get("max"));
    assert!(0.0 < min && min <= p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{report:#}");
    assert!(get("mean") > 0.0);
    assert!(max <= report["wall_time_ms"].as_f64().unwrap() + 1.0, "{report:#}");
}

#[test]
fn benchmark_keygen_and_signing_against_a_devnet() {
    let Some(node) = node_binary() else {
        println!(
            "SKIPPED: no `mpcium` binary next to {} (cargo build -p mpcium-node)",
            cli_binary().display()
        );
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let ready_file = work.path().join("ready.json");
    let mut devnet = start_devnet(work.path(), &node, &ready_file);
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ready_file).unwrap()).unwrap();
    let url = info["nats_url"].as_str().unwrap().to_owned();
    let key = info["initiator_key"].as_str().unwrap().to_owned();

    let keygen = benchmark(work.path(), &url, &key, "keygen", &["keygen", "2", "-b", "2"]);
    assert_all_succeeded(&keygen, "keygen", 2);
    let wallets: Vec<&str> =
        keygen["wallet_ids"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(wallets.len(), 2);
    assert!(wallets.iter().all(|w| w.starts_with("benchmark-keygen-")), "{wallets:?}");
    assert_ne!(wallets[0], wallets[1]);

    let eddsa = benchmark(work.path(), &url, &key, "eddsa", &["sign-eddsa", "20", wallets[0], "-b", "10"]);
    assert_all_succeeded(&eddsa, "sign-eddsa", 20);
    assert_eq!(eddsa["batch_size"], 10);
    let ecdsa = benchmark(work.path(), &url, &key, "ecdsa", &["sign-ecdsa", "10", wallets[1], "-t", "120"]);
    assert_all_succeeded(&ecdsa, "sign-ecdsa", 10);
    assert_eq!(ecdsa["timeout_seconds"], 120);
    let taproot =
        benchmark(work.path(), &url, &key, "taproot", &["sign-taproot", "10", wallets[0], "-b", "5"]);
    assert_all_succeeded(&taproot, "sign-taproot", 10);
    let root = "ab".repeat(32);
    let tree = benchmark(
        work.path(),
        &url,
        &key,
        "taproot-tree",
        &["sign-taproot", "4", wallets[1], "--merkle-root", &root],
    );
    assert_all_succeeded(&tree, "sign-taproot", 4);

    // --compare: the crypto-only limit of the same operation, measured first, and the ratio.
    let compared =
        benchmark(work.path(), &url, &key, "compared", &["sign-taproot", "10", wallets[0], "--compare"]);
    assert_all_succeeded(&compared, "sign-taproot", 10);
    let limit = &compared["crypto_limit"];
    let what = limit["what"].as_str().unwrap();
    assert!(what.contains("BIP340") && what.ends_with("sign, 2-of-3"), "{limit}");
    assert!(limit["cpu_ms_per_op"].as_f64().unwrap() > 0.0, "{limit}");
    let ratio = limit["ratio"].as_f64().unwrap();
    let expected = compared["success_throughput_ops_per_sec"].as_f64().unwrap()
        / limit["limit_ops_per_sec"].as_f64().unwrap();
    assert!((ratio - expected).abs() < 1e-9 && ratio > 0.0, "{limit}");
    assert!(eddsa.get("crypto_limit").is_none(), "only with --compare");

    // Signing with a wallet that does not exist: every operation fails, counted by error code.
    let missing = work.path().join("missing.json");
    let out = Command::new(cli_binary())
        .args(["benchmark", "--nats-url", &url, "--key-path", &key, "--json"])
        .arg(&missing)
        .args(["-o", "reports/missing.txt", "sign-eddsa", "2", "no-such-wallet", "-t", "30"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&missing).unwrap()).unwrap();
    assert_eq!(report["successes"], 0, "{report:#}");
    assert_eq!(report["failures"], 2, "{report:#}");
    let errors = report["errors"].as_object().unwrap();
    assert_eq!(errors.values().map(|n| n.as_u64().unwrap()).sum::<u64>(), 2, "{report:#}");
    assert!(report["latency_ms"].is_null(), "{report:#}");

    let status = devnet.stop().expect("devnet stops on SIGINT");
    assert!(status.success(), "devnet exit {status}:\n{}", devnet.log());
}

#[test]
fn benchmark_refuses_an_encrypted_key_without_prompt_and_bad_arguments() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("k.key.age"), b"not really age").unwrap();
    let out = Command::new(cli_binary())
        .args(["benchmark", "--nats-url", "nats://127.0.0.1:1", "--key-path", "k.key.age", "keygen", "1"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--prompt-password"), "{stderr}");

    let out = Command::new(cli_binary())
        .args(["benchmark", "reshare", "1", "w"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--node-ids"), "{stderr}");

    // --compare: refused for an operation without a crypto-only figure, and for a shape that
    // cannot exist, before anything is sent.
    std::fs::write(work.path().join("k.key"), "07".repeat(32)).unwrap();
    let base = ["benchmark", "--nats-url", "nats://127.0.0.1:1", "--key-path", "k.key", "--compare"];
    let out = Command::new(cli_binary())
        .args(base)
        .args(["reshare", "1", "w", "-n", "a,b"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--compare has no crypto-only figure for reshare"), "{stderr}");
    let out = Command::new(cli_binary())
        .args(base)
        .args(["--compare-threshold", "3", "sign-eddsa", "1", "w"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot measure the crypto-only limit for 3 nodes, threshold 3"), "{stderr}");

    let out = Command::new(cli_binary())
        .args(["benchmark", "sign-eddsa", "5", "w", "-b", "0"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(cli_binary())
        .args(["benchmark", "sign-taproot", "5", "w", "--merkle-root", "abcd"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("32 bytes"), "{stderr}");
    assert!(!work.path().join("benchmark").exists(), "no report for a refused command");
}
