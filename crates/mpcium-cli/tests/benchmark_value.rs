//! `mpcium-cli benchmark sign-*` with `--asset/--amount` and `--authorizer`: the requests it
//! publishes (caught on a real nats-server; no node answers, so each times out) declare the value
//! and carry the authorizer's signature; bad flags are refused before anything is sent.

use std::path::Path;
use std::process::Command;

fn cli_binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_mpcium-cli"))
}

fn key_file(dir: &Path, name: &str, seed: u8) -> String {
    let path = dir.join(name);
    std::fs::write(&path, hex::encode([seed; 32])).unwrap();
    path.display().to_string()
}

#[test]
fn benchmark_requests_declare_the_value_and_carry_approvals() {
    let work = tempfile::tempdir().unwrap();
    let key = key_file(work.path(), "initiator.key", 1);
    let approver = key_file(work.path(), "approver1.authorizer.key", 2);
    let server = mpcium_testkit::NatsServer::start().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let authorizer = format!("approver1={approver}");
    let out = Command::new(cli_binary())
        .args(["benchmark", "--nats-url", &server.url(), "--key-path", &key, "--authorizer", &authorizer])
        .args(["sign-ecdsa", "1", "wallet-b", "-t", "1", "--asset", "BTC", "--amount", "2000000"])
        .current_dir(work.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("CLIENT_TIMEOUT"), "nobody answers, so the one request times out:\n{stdout}");
    // The request stays in the signing stream (nobody pulled it).
    let payload = runtime.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
        let stream = js.get_stream("mpc-signing").await.unwrap();
        stream.get_raw_message(1).await.unwrap().payload
    });
    let body: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(body["asset"], "BTC", "{body}");
    assert_eq!(body["amount"], "2000000", "{body}");
    assert_eq!(body["authorizer_signatures"][0]["authorizer_id"], "approver1", "{body}");
    assert!(body["authorizer_signatures"][0]["signature"].as_str().is_some_and(|s| !s.is_empty()), "{body}");
}

#[test]
fn half_a_value_or_a_malformed_authorizer_is_refused() {
    let work = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (&["sign-ecdsa", "1", "w", "--asset", "BTC"][..], "--amount"),
        (&["sign-eddsa", "1", "w", "--amount", "5"][..], "--asset"),
        (&["--authorizer", "no-equals-sign", "sign-ecdsa", "1", "w"][..], "ID=PATH"),
    ] {
        let out = Command::new(cli_binary())
            .args(["benchmark", "--nats-url", "nats://127.0.0.1:1", "--key-path", "missing.key"])
            .args(args)
            .current_dir(work.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
