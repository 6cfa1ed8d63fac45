//! `mpcium-cli bans` against a real nats-server: the bans nodes announced, all of them or one
//! wallet's, as a table or JSON.

use std::time::Duration;

use mpcium_registry::bans::BanNotice;
use mpcium_registry::{Heartbeat, Registry};
use mpcium_testkit::NatsServer;

mod common;
use common::cli_in as cli;

fn notice(wallet: &str, by: &str, banned: &str, v: u32) -> BanNotice {
    BanNotice { wallet_id: wallet.into(), by: by.into(), banned: banned.into(), key_version: v }
}

#[test]
fn lists_the_announced_bans() {
    let server = NatsServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = common::dev_config(tmp.path(), &server.url());
    let config = config.to_str().unwrap();

    let out = cli(tmp.path(), &["-c", config, "bans"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no bans");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
        let registry = Registry::open(&js, Heartbeat::every(Duration::from_secs(5))).await.unwrap();
        registry.announce_ban("w:1", notice("w:1", "node0", "node2", 1)).await.unwrap();
        registry.announce_ban("w:1", notice("w:1", "node1", "node2", 1)).await.unwrap();
        registry.announce_ban("other", notice("other", "node1", "node0", 3)).await.unwrap();
        // A newer version's ban replaces the old version's entries of that wallet.
        registry.announce_ban("other", notice("other", "node2", "node0", 4)).await.unwrap();
    });

    let out = cli(tmp.path(), &["-c", config, "bans"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(table.lines().nth(1).unwrap().starts_with("other"), "{table}");
    assert!(table.contains("node2") && !table.contains(" 3\n"), "{table}");

    let out = cli(tmp.path(), &["-c", config, "bans", "--wallet", "w:1", "--json"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let listed: Vec<BanNotice> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed, vec![notice("w:1", "node0", "node2", 1), notice("w:1", "node1", "node2", 1)]);
}
