//! The cluster at a glance (`mpcium_node::status`, what `mpcium-cli status` prints) over a real
//! cluster, and the Grafana dashboard in deploy/ checked against the same nodes' real scrapes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use mpcium_node::presign::PresignSettings;
use mpcium_node::registry::{Heartbeat, Registry};
use mpcium_node::status::{ClusterStatus, parse_metrics};
use mpcium_testkit::node::{Cluster, ClusterSpec};

const WALLET: &str = "wallet-status";
const POOL: u64 = 2;

async fn collect(c: &Cluster, addresses: &[String]) -> ClusterStatus {
    let js = async_nats::jetstream::new(async_nats::connect(c.server.url()).await.unwrap());
    let registry = Registry::open(&js, Heartbeat::every(Duration::from_millis(500))).await.unwrap();
    ClusterStatus::collect(&registry, addresses).await.unwrap()
}

/// Every `mpcium_*` name an expression of the dashboard queries.
fn dashboard_metric_names() -> BTreeSet<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut names = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("mpcium_") {
                let tail = &rest[at..];
                let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
                names.insert(tail[..end].to_owned());
                rest = &tail[end..];
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_shows_peers_versions_pools_errors_and_the_dashboard_matches_real_metrics() {
    let ports: Vec<u16> = (0..3).map(|_| mpcium_testkit::free_port().unwrap()).collect();
    let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let tweak_addresses = addresses.clone();
    let spec = ClusterSpec {
        tweak: Some(Arc::new(move |i, p: &mut mpcium_node::daemon::NodeParams| {
            p.service.presign = PresignSettings { pool_size: POOL as usize, wallets: vec![WALLET.into()] };
            p.health_address = Some(tweak_addresses[i].clone());
            p.register_peers = (0..3).map(|k| (format!("node{k}"), format!("node{k}"))).collect();
        })),
        ..ClusterSpec::new(3, 1)
    };
    let mut c = Cluster::start(spec).await;
    let w = c.client("status-suite").await;
    let kg = w.keygen(WALLET).await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let ev = w.sign(&w.sign_msg("secp256k1", WALLET, "tx-status-1", &[7; 32], None)).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    let failed = w.sign(&w.sign_msg("secp256k1", "no-such-wallet", "tx-status-2", &[8; 32], None)).await;
    let code = failed.error_code.clone().expect("a sign for an unknown wallet fails").as_str().to_owned();

    // Wait until every node owns a full pool, then read the status.
    let mut status = collect(&c, &addresses).await;
    for _ in 0..1200 {
        if status.peers.iter().all(|p| p.metrics.as_ref().is_some_and(|m| m.presign_pool >= POOL)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = collect(&c, &addresses).await;
    }
    let names: Vec<&str> = status.peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["node0", "node1", "node2"]);
    assert_eq!(status.ready_count(), 3);
    assert!(status.metrics_problems.is_empty(), "{:?}", status.metrics_problems);
    assert!(status.unknown_ready.is_empty());
    assert_eq!(status.wallets.get("ecdsa"), Some(&1));
    assert_eq!(status.wallets.get("eddsa"), Some(&1));
    assert_eq!(status.wallets.get("taproot"), Some(&1));
    let mut ok = 0;
    let mut failed_requests = 0;
    let mut seen_code = false;
    for p in &status.peers {
        let m = p.metrics.as_ref().unwrap_or_else(|| panic!("{} has no metrics", p.name));
        assert_eq!(m.node_id, p.node_id);
        assert_eq!(m.version, env!("CARGO_PKG_VERSION"));
        assert!(m.presign_pool >= POOL, "{}: pool {}", p.name, m.presign_pool);
        assert_eq!(m.peers_ready, 3);
        assert_eq!(m.bans, 0, "no node exports bans yet: shown as 0");
        assert!(p.started_at_ms.is_some());
        ok += m.requests_ok;
        failed_requests += m.requests_failed;
        if m.last_errors.iter().any(|(_, op, c)| c == &code && op == "sign") {
            assert_eq!(m.errors_by_code.get(&code), Some(&1));
            seen_code = true;
        }
    }
    assert_eq!((ok, failed_requests), (2, 1));
    assert!(seen_code, "no node reports the latest error {code}");
    let text = status.render(mpcium_node::registry::now_ms());
    assert!(text.starts_with("peers: 3 registered, 3 ready; keys: 1 ecdsa, 1 eddsa, 1 taproot\n"), "{text}");
    assert!(text.contains(&code), "{text}");
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");

    // Every metric the Grafana dashboard queries exists in the nodes' real /metrics.
    let mut scraped = BTreeSet::new();
    for address in &addresses {
        let text = mpcium_node::status::fetch_metrics(address).await.unwrap();
        scraped.extend(parse_metrics(&text).into_iter().map(|s| s.name));
    }
    let queried = dashboard_metric_names();
    assert!(queried.len() >= 10, "{queried:?}");
    let missing: Vec<&String> = queried.iter().filter(|n| !scraped.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics no node exports: {missing:?}\nscraped: {scraped:?}"
    );

    // A stopped node shows as not ready, and its metrics address as failing.
    c.stop_node(2).await;
    let status = collect(&c, &addresses).await;
    let node2 = &status.peers[2];
    assert!(!node2.ready && node2.metrics.is_none(), "{node2:?}");
    assert_eq!(status.ready_count(), 2);
    assert_eq!(status.metrics_problems.len(), 1);
    assert_eq!(status.metrics_problems[0].0, addresses[2]);
    assert!(status.render(mpcium_node::registry::now_ms()).contains("node2"), "the stopped node is listed");
    for i in 0..2 {
        c.stop_node(i).await;
    }
}
