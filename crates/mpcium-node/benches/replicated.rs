//! `cargo test --locked -p mpcium-node --bench replicated` (the optimised test profile; `cargo
//! bench` builds the same with LTO): EdDSA signing throughput of three in-process nodes (t=1)
//! on a single nats-server with `nats.replicas: 1`, then on a 3-server NATS cluster with
//! `nats.replicas: 3`, where every JetStream write (requests, results, claims, settled results,
//! audit messages) is a Raft round among the servers. All of it on loopback, sharing this
//! machine's cores.
//!
//! `BENCH_SIGNATURES` signatures (default 2000) at `BENCH_IN_FLIGHT` in flight (default 20),
//! after 200 to warm up, from one wire client (the original's wire: requests on JetStream,
//! results from the client's durable consumer).

use std::sync::Arc;
use std::time::Instant;

use mpcium_testkit::NatsCluster;
use mpcium_testkit::node::replicas::{connect, spec_on};
use mpcium_testkit::node::{Cluster, ClusterSpec, WireClient};
use tokio::sync::Semaphore;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `total` EdDSA signatures, `in_flight` at a time, from one wire client (one result consumer,
/// as `mpcium-cli benchmark` has); returns the throughput in signatures per second.
async fn sign(w: &Arc<WireClient>, wallet: &str, total: usize, in_flight: usize, round: &str) -> f64 {
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(in_flight));
    let publisher = {
        let (w, slots, wallet, round) = (w.clone(), slots.clone(), wallet.to_owned(), round.to_owned());
        tokio::spawn(async move {
            for i in 0..total {
                slots.acquire().await.unwrap().forget();
                let tx = format!("{round}-{i}");
                w.send_sign(&w.sign_msg("ed25519", &wallet, &tx, tx.as_bytes(), None)).await;
            }
        })
    };
    for _ in 0..total {
        let ev = w.next_sign_result().await;
        assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
        slots.add_permits(1);
    }
    publisher.await.unwrap();
    total as f64 / started.elapsed().as_secs_f64()
}

/// Sign over `client`'s connection to the NATS `c`'s nodes use.
async fn run(label: &str, c: &Cluster, client: async_nats::Client) {
    let in_flight = env_or("BENCH_IN_FLIGHT", 20);
    let total = env_or("BENCH_SIGNATURES", 2000);
    let w = Arc::new(WireClient::over(client, "bench", c.initiator.clone()).await);
    let wallet = "wallet-bench";
    let kg = w.keygen(wallet).await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    sign(&w, wallet, 200, in_flight, "warm").await;
    for round in 1..=2 {
        let rate = sign(&w, wallet, total, in_flight, &format!("run{round}")).await;
        println!("{label}: EdDSA, {total} at {in_flight} in flight, run {round}: {rate:.0} /s");
    }
}

fn main() {
    // Warnings only: the test kit's own logging (debug, every message) would cost more than a
    // signature. Its `try_init` then leaves this subscriber in place.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut single = Cluster::start(ClusterSpec::new(3, 1)).await;
        let client = async_nats::connect(single.server.url()).await.unwrap();
        run("1 nats-server, replicas 1", &single, client).await;
        for i in 0..3 {
            single.stop_node(i).await;
        }
        drop(single);

        let nats = NatsCluster::start(3).unwrap();
        let replicated = Cluster::start(spec_on(&nats, 3)).await;
        run("3 nats-servers, replicas 3", &replicated, connect(&nats, 0).await).await;
    });
}
