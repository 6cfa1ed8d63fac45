//! `cargo test --locked -p mpcium-node --bench replicated` (the optimised test profile; `cargo
//! bench` builds the same with LTO): EdDSA signing throughput of three in-process nodes (t=1)
//! on a single nats-server with `nats.replicas: 1`, then on a 3-server NATS cluster with
//! `nats.replicas: 3`, where every JetStream write (requests, results, claims, settled results,
//! audit messages) is a Raft round among the servers. All of it on loopback, sharing this
//! machine's cores.
//!
//! `BENCH_SIGNATURES` signatures (default 2000) at `BENCH_IN_FLIGHT` in flight (default 20),
//! after 200 to warm up; each in-flight slot is a wire client of its own.

use std::sync::Arc;
use std::time::Instant;

use mpcium_node::daemon::NodeParams;
use mpcium_testkit::NatsCluster;
use mpcium_testkit::node::replicas::CLUSTER_HEARTBEAT;
use mpcium_testkit::node::{Cluster, ClusterSpec, WireClient};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `total` EdDSA signatures over `clients`, each keeping one request in flight; returns the
/// throughput in signatures per second.
async fn sign(clients: &[Arc<WireClient>], wallet: &str, total: usize, round: &str) -> f64 {
    let started = Instant::now();
    let per_client = total / clients.len();
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(c, w)| {
            let (w, wallet, round) = (w.clone(), wallet.to_owned(), round.to_owned());
            tokio::spawn(async move {
                for i in 0..per_client {
                    let tx = format!("{round}-{c}-{i}");
                    let ev = w.sign(&w.sign_msg("ed25519", &wallet, &tx, tx.as_bytes(), None)).await;
                    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (per_client * clients.len()) as f64 / started.elapsed().as_secs_f64()
}

/// `servers`: per server, the URL list starting from it; client i connects to server i first.
async fn run(label: &str, c: &Cluster, servers: &[String]) {
    let in_flight = env_or("BENCH_IN_FLIGHT", 20);
    let total = env_or("BENCH_SIGNATURES", 2000);
    let client = |i: usize, id: String| async move {
        let urls: Vec<String> = servers[i % servers.len()].split(',').map(str::to_owned).collect();
        let raw = async_nats::ConnectOptions::new().retain_servers_order().connect(urls).await.unwrap();
        Arc::new(WireClient::over(raw, &id, c.initiator.clone()).await)
    };
    let wallet = "wallet-bench";
    let kg = client(0, "bench-keygen".into()).await.keygen(wallet).await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let mut clients = Vec::new();
    for i in 0..in_flight {
        clients.push(client(i, format!("bench-{i}")).await);
    }
    sign(&clients, wallet, 200, "warm").await;
    for round in 1..=2 {
        let rate = sign(&clients, wallet, total, &format!("run{round}")).await;
        println!("{label}: EdDSA, {total} at {in_flight} in flight, run {round}: {rate:.0} /s");
    }
}

fn main() {
    // Warnings only: the test kit's own logging (debug, every message) would cost more than a
    // signature. Its `try_init` then leaves this subscriber in place.
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new("warn")).try_init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let single = Cluster::start(ClusterSpec::new(3, 1)).await;
        let url = single.server.url();
        run("1 nats-server, replicas 1", &single, &[url]).await;
        let mut single = single;
        for i in 0..3 {
            single.stop_node(i).await;
        }
        drop(single);

        let nats = NatsCluster::start(3).unwrap();
        let urls: Vec<String> = (0..nats.len()).map(|i| nats.urls_from(i)).collect();
        let spec = ClusterSpec {
            tweak: Some(Arc::new({
                let urls = urls.clone();
                move |i, p: &mut NodeParams| {
                    p.nats_url = urls[i].clone();
                    p.service.replicas = 3;
                    p.heartbeat = CLUSTER_HEARTBEAT;
                }
            })),
            ..ClusterSpec::new(3, 1)
        };
        let replicated = Cluster::start(spec).await;
        run("3 nats-servers, replicas 3", &replicated, &urls).await;
    });
}
