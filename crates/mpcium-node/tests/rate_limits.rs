//! Rate limits (`limits.requests_per_second.*`, `limits.peer_messages_*`), against a real
//! nats-server: a wallet over its rate is answered `ERROR_RESOURCE_EXHAUSTED` at once (once,
//! and not redelivered) while another wallet signs on; a participant holds its own limit when
//! the coordinator enforces none; a peer flooding the bus is dropped before verification and
//! counted per peer in `/metrics` while honest nodes keep signing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mpcium_api::ErrorCode;
use mpcium_node::daemon::NodeParams;
use mpcium_node::envelope::{Envelope, Kind};
use mpcium_node::limits::{LimitSettings, Rate, RequestRates};
use mpcium_node::transport::node_subject;
use mpcium_testkit::node::{Cluster, ClusterSpec, eddsa_verify, http_get};

/// The value of a metric with labels `labels` (e.g. `peer="node0"`), 0 when absent.
fn labelled(text: &str, name: &str, labels: &str) -> u64 {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// A cluster whose node `i` enforces `requests(i)`, each serving `/metrics` on its own port.
fn limited_cluster(
    n: usize,
    requests: impl Fn(usize) -> RequestRates + Send + Sync + 'static,
    peer_messages: Option<Rate>,
) -> (ClusterSpec, Vec<u16>) {
    let ports: Vec<u16> = (0..n).map(|_| mpcium_testkit::free_port().unwrap()).collect();
    let tweak_ports = ports.clone();
    let spec = ClusterSpec {
        tweak: Some(Arc::new(move |i, p: &mut NodeParams| {
            p.service.limits = LimitSettings {
                requests: requests(i),
                peer_messages: peer_messages.unwrap_or(LimitSettings::default().peer_messages),
            };
            p.health_address = Some(format!("127.0.0.1:{}", tweak_ports[i]));
        })),
        ..ClusterSpec::new(n, 1)
    };
    (spec, ports)
}

/// No refill within the test: the burst is all a wallet gets.
fn per_wallet_burst(burst: u32) -> RequestRates {
    RequestRates { per_wallet: Some(Rate { per_second: 0.001, burst }), cluster: None }
}

async fn rate_limited(ports: &[u16], scope: &str) -> u64 {
    let mut sum = 0;
    for &port in ports {
        let text = http_get(port, "/metrics").await;
        sum += labelled(&text, "mpcium_requests_rate_limited_total", &format!("scope=\"{scope}\""));
    }
    sum
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wallet_over_its_rate_is_refused_at_once_and_another_wallet_is_not() {
    // Two nodes, t=1: both take part in every request, so both count each one. A keygen costs a
    // token too: 4 = 1 keygen + 3 signatures per wallet.
    let (spec, ports) = limited_cluster(2, |_| per_wallet_burst(4), None);
    let c = Cluster::start(spec).await;
    let w = c.client("limits-suite").await;
    let mut keys = Vec::new();
    for wallet in ["wallet-busy", "wallet-calm"] {
        let kg = w.keygen(wallet).await;
        assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
        keys.push(kg.eddsa_pub_key.clone().unwrap());
    }

    // One at a time, so every node sees them in the same order.
    let mut outcomes = Vec::new();
    for k in 0..8 {
        let tx = format!("busy-{k}");
        let started = Instant::now();
        let ev = w.sign(&w.sign_msg("ed25519", "wallet-busy", &tx, tx.as_bytes(), None)).await;
        if ev.result_type.as_str() == "success" {
            eddsa_verify(&keys[0], tx.as_bytes(), &ev);
        } else {
            assert_eq!(ev.error_code, Some(ErrorCode::ResourceExhausted), "{ev:?}");
            assert!(ev.error_reason.contains("limits.requests_per_second.per_wallet"), "{ev:?}");
            // At once: no session, no redelivery.
            assert!(started.elapsed() < Duration::from_secs(5), "refused after {:?}", started.elapsed());
        }
        outcomes.push(ev.result_type.as_str() == "success");
    }
    assert_eq!(outcomes, [true, true, true, false, false, false, false, false], "the burst, then refusals");

    // Another wallet has its own bucket.
    for k in 0..3 {
        let tx = format!("calm-{k}");
        let ev = w.sign(&w.sign_msg("ed25519", "wallet-calm", &tx, tx.as_bytes(), None)).await;
        assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
        eddsa_verify(&keys[1], tx.as_bytes(), &ev);
    }

    // Each refused request was answered once and settled: nothing more comes, nothing is left
    // pending in the signing consumer.
    assert!(w.try_next_sign_result(Duration::from_secs(3)).await.is_none(), "a second result");
    let js = async_nats::jetstream::new(async_nats::connect(c.server.url()).await.unwrap());
    let stream = js.get_stream(mpcium_api::streams::SIGNING_REQUEST_STREAM.name).await.unwrap();
    let durable = mpcium_api::streams::signing_request_consumer(20).durable_name;
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer(&durable).await.unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 0), "{info:?}");
    assert!(rate_limited(&ports, "wallet").await >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_participant_keeps_its_own_rate_when_the_coordinator_enforces_none() {
    // node0 enforces nothing (a coordinator that skips the check); node1 allows one keygen and
    // two signatures for the wallet. Whoever pulls a request, node1 signs only two.
    let (spec, ports) =
        limited_cluster(2, |i| if i == 1 { per_wallet_burst(3) } else { RequestRates::default() }, None);
    let c = Cluster::start(spec).await;
    let w = c.client("limits-lax").await;
    let kg = w.keygen("wallet-lax").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let mut successes = 0;
    let mut refused_as_participant = 0;
    for k in 0..12 {
        let tx = format!("lax-{k}");
        let ev = w.sign(&w.sign_msg("ed25519", "wallet-lax", &tx, tx.as_bytes(), None)).await;
        if ev.result_type.as_str() == "success" {
            successes += 1;
            continue;
        }
        assert_eq!(ev.error_code, Some(ErrorCode::ResourceExhausted), "{ev:?}");
        assert!(ev.error_reason.contains("on node1"), "{ev:?}");
        // node0 coordinated and node1 refused to take part (its report is named).
        if ev.error_reason.starts_with("node1: ") {
            refused_as_participant += 1;
        }
    }
    assert_eq!(successes, 2, "node1's burst after the keygen");
    assert!(refused_as_participant > 0, "node0 coordinated none of the 10 refused requests");
    assert_eq!(rate_limited(&ports[..1], "wallet").await, 0, "node0 enforces nothing");
    assert_eq!(rate_limited(&ports[1..], "wallet").await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flooding_peer_is_dropped_before_verification_and_honest_nodes_sign_on() {
    const RATE: f64 = 200.0;
    const BURST: u32 = 400;
    let (spec, ports) =
        limited_cluster(3, |_| RequestRates::default(), Some(Rate { per_second: RATE, burst: BURST }));
    let mut c = Cluster::start(spec).await;
    let w = c.client("limits-flood").await;
    let kg = w.keygen("wallet-flood").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let key = kg.eddsa_pub_key.clone().unwrap();

    // node0 turns malicious: its process stops taking part, and its identity floods node1 and
    // node2 with validly signed messages, as fast as one connection publishes.
    c.stop_node(0).await;
    c.wait_ready_exactly().await;
    let flooder = async_nats::connect(c.server.url()).await.unwrap();
    let messages: Vec<bytes::Bytes> = (0..64u8)
        .map(|i| {
            Envelope::seal_public(Kind::Broadcast, [i; 32], "node0", 0, vec![0xAB; 512], &c.keys[0])
                .unwrap()
                .encode()
                .into()
        })
        .collect();
    let flood_started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for m in &messages {
                    for to in ["node1", "node2"] {
                        flooder.publish(node_subject(to), m.clone()).await.unwrap();
                        sent += 1;
                    }
                }
                tokio::task::yield_now().await;
            }
            flooder.flush().await.unwrap();
            sent
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;

    // node1 and node2 sign while the flood goes on.
    for k in 0..5 {
        let tx = format!("flood-{k}");
        let ev = w.sign(&w.sign_msg("ed25519", "wallet-flood", &tx, tx.as_bytes(), None)).await;
        assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
        eddsa_verify(&key, tx.as_bytes(), &ev);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = flood.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flood_secs = flood_started.elapsed().as_secs_f64();

    for port in &ports[1..] {
        let text = http_get(*port, "/metrics").await;
        let dropped = labelled(&text, "mpcium_peer_messages_dropped_total", "peer=\"node0\"");
        let taken = labelled(&text, "mpcium_peer_messages_total", "peer=\"node0\"");
        // What node0 got past the rate is at most its burst and what refilled meanwhile (plus
        // its messages from before it stopped); the rest was dropped unread.
        assert!(dropped > 0, "nothing dropped of {sent} sent:\n{text}");
        let allowance = f64::from(BURST) + RATE * (flood_secs + 60.0);
        assert!((taken as f64) < allowance, "node0 got {taken} messages through (allowance {allowance})");
        // The honest peers lost nothing.
        for honest in ["node1", "node2"] {
            let label = format!("peer=\"{honest}\"");
            assert_eq!(labelled(&text, "mpcium_peer_messages_dropped_total", &label), 0, "{text}");
        }
        eprintln!(
            "flood: {sent} sent, {dropped} dropped and {taken} taken in by one node over {flood_secs:.1} s"
        );
    }
}
