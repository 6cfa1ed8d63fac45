//! `mpcium-cli register-peers` against a real nats-server: register, re-register (skipped),
//! conflict (non-zero exit, nothing written), unreachable server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mpcium_registry::{Heartbeat, Registry};
use mpcium_testkit::NatsServer;

const ID0: &str = "6ba7b810-9dad-41d1-80b4-00c04fd430c8";
const ID1: &str = "6ba7b811-9dad-41d1-80b4-00c04fd430c8";
const ID2: &str = "6ba7b812-9dad-41d1-80b4-00c04fd430c8";
const OTHER: &str = "6ba7b819-9dad-41d1-80b4-00c04fd430c8";

mod common;
use common::cli_in as cli;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_config(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(&path, format!("environment: development\nnats:\n  url: \"{url}\"\n")).unwrap();
    path
}

fn write_peers(dir: &Path, name: &str, peers: &[(&str, &str)]) -> PathBuf {
    let path = dir.join(name);
    let map: BTreeMap<&str, &str> = peers.iter().copied().collect();
    std::fs::write(&path, serde_json::to_string_pretty(&map).unwrap()).unwrap();
    path
}

fn registered(url: &str) -> BTreeMap<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
        let registry = Registry::open(&js, Heartbeat::every(Duration::from_secs(5))).await.unwrap();
        registry.peers().await.unwrap()
    })
}

#[test]
fn registers_then_skips_then_refuses_a_conflict_without_writing() {
    let server = NatsServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &server.url());
    let config = config.to_str().unwrap();
    write_peers(tmp.path(), "peers.json", &[("node0", ID0), ("node1", ID1)]);

    // The default peers file is ./peers.json.
    let out = cli(tmp.path(), &["register-peers", "-c", config]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("registered node0 = {ID0}")), "{stdout}");
    assert!(stdout.contains("2 registered, 0 skipped"), "{stdout}");
    let expected: BTreeMap<String, String> =
        [("node0".to_owned(), ID0.to_owned()), ("node1".to_owned(), ID1.to_owned())].into();
    assert_eq!(registered(&server.url()), expected);

    // Again, plus a new peer: the known ones are skipped, the new one is added.
    let more = write_peers(tmp.path(), "more.json", &[("node0", ID0), ("node1", ID1), ("node2", ID2)]);
    let out = cli(tmp.path(), &["-c", config, "register-peers", "-p", more.to_str().unwrap()]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("skipped    node0"), "{stdout}");
    assert!(stdout.contains("1 registered, 2 skipped"), "{stdout}");
    assert_eq!(registered(&server.url()).len(), 3);

    // node1 with another id: error naming the conflict; node3 is not written either.
    let bad = write_peers(
        tmp.path(),
        "bad.json",
        &[("node1", OTHER), ("node3", ID2.replace("b812", "b813").as_str())],
    );
    let out = cli(tmp.path(), &["register-peers", "-c", config, "--peers", bad.to_str().unwrap()]);
    assert!(!out.status.success(), "a conflict must fail; stdout: {}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("conflict"), "{stderr}");
    assert!(stderr.contains("node1") && stderr.contains(ID1) && stderr.contains(OTHER), "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    let now = registered(&server.url());
    assert_eq!(now.get("node1").map(String::as_str), Some(ID1), "the registered id is kept");
    assert!(!now.contains_key("node3"), "nothing is written when a conflict is found");
}

#[test]
fn reports_an_unreachable_server_and_a_missing_peers_file() {
    let tmp = tempfile::tempdir().unwrap();
    let port = mpcium_testkit::free_port().unwrap();
    let config = write_config(tmp.path(), &format!("nats://127.0.0.1:{port}"));
    write_peers(tmp.path(), "peers.json", &[("node0", ID0)]);
    let out = cli(tmp.path(), &["register-peers", "-c", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("cannot connect to NATS at nats://127.0.0.1:{port}")), "{stderr}");

    let out = cli(tmp.path(), &["register-peers", "-c", config.to_str().unwrap(), "-p", "absent.json"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("absent.json"), "{}", text(&out.stderr));
}
