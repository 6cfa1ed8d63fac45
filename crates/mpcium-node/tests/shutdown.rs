//! Graceful shutdown with signing requests in flight: the node withdraws its readiness, takes no
//! new request, lets what it started finish (or, past the deadline, hands its requests back to
//! JetStream and tells its sessions' coordinators it aborted), and no request is left without a
//! result.

use std::time::{Duration, Instant};

use mpcium_api::ErrorCode;
use mpcium_testkit::node::{Cluster, ClusterSpec, WireClient, ecdsa_verify, eddsa_verify};

/// Publish `n` ECDSA and `n` EdDSA signing requests for `wallet`; their tx ids.
async fn publish_batch(w: &WireClient, wallet: &str, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let (te, td) = (format!("{prefix}-ecdsa-{i}"), format!("{prefix}-eddsa-{i}"));
        w.send_sign(&w.sign_msg("secp256k1", wallet, &te, &digest_of(&te), None)).await;
        w.send_sign(&w.sign_msg("ed25519", wallet, &td, td.as_bytes(), None)).await;
        ids.extend([te, td]);
    }
    ids
}

fn digest_of(tx: &str) -> [u8; 32] {
    let mut d = [0u8; 32];
    for (i, b) in tx.bytes().enumerate() {
        d[i % 32] ^= b;
    }
    d[31] ^= 0x80;
    d
}

/// Wait until node `i` has work in flight.
async fn until_busy(c: &Cluster, i: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.node(i).in_flight() == 0 {
        assert!(Instant::now() < deadline, "node{i} never had work in flight");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_lets_signing_in_flight_finish_and_leaves_new_requests_to_the_others() {
    let mut c = Cluster::start(ClusterSpec::new(3, 1)).await;
    let w = c.client("drain-suite").await;
    let kg = w.keygen("wallet-q").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let (ecdsa_pub, eddsa_pub) = (kg.ecdsa_pub_key.unwrap(), kg.eddsa_pub_key.unwrap());

    let mut ids = publish_batch(&w, "wallet-q", "before", 20).await;
    until_busy(&c, 0).await;
    let node0 = c.nodes[0].take().unwrap();
    let started = Instant::now();
    let shutdown = tokio::spawn(async move { node0.shutdown_within(Duration::from_secs(40)).await });
    // Requests published while node0 drains go to the other two.
    ids.extend(publish_batch(&w, "wallet-q", "during", 10).await);
    let report = shutdown.await.unwrap();
    eprintln!("drain: {report:?} (wall {:?})", started.elapsed());
    assert!(report.in_flight_at_start > 0, "{report:?}");
    assert_eq!(report.abandoned, 0, "everything in flight finished within the deadline: {report:?}");
    assert_eq!(report.pullers_running, 0, "every request puller stopped: {report:?}");
    // Readiness is withdrawn: the others no longer count node0.
    c.wait_ready_exactly().await;
    ids.extend(publish_batch(&w, "wallet-q", "after", 5).await);

    let got = w.collect_sign_results(&ids, Duration::from_secs(60), Duration::from_secs(2)).await;
    let missing: Vec<_> = ids.iter().filter(|t| !got.contains_key(*t)).collect();
    assert!(missing.is_empty(), "no result for {missing:?}");
    assert_eq!(got.len(), ids.len(), "no stray results");
    for (tx, evs) in &got {
        assert_eq!(evs.len(), 1, "{tx}: {evs:?}");
        assert_eq!(evs[0].result_type.as_str(), "success", "{tx}: {evs:?}");
        if tx.contains("-ecdsa-") {
            ecdsa_verify(&ecdsa_pub, &digest_of(tx), &evs[0]);
        } else {
            eddsa_verify(&eddsa_pub, tx.as_bytes(), &evs[0]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_past_its_deadline_hands_requests_back_and_answers_every_one() {
    let mut c = Cluster::start(ClusterSpec::new(3, 1)).await;
    let w = c.client("abandon-suite").await;
    let kg = w.keygen("wallet-z").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let (ecdsa_pub, eddsa_pub) = (kg.ecdsa_pub_key.unwrap(), kg.eddsa_pub_key.unwrap());

    let ids = publish_batch(&w, "wallet-z", "cut", 25).await;
    until_busy(&c, 0).await;
    let node0 = c.nodes[0].take().unwrap();
    let started = Instant::now();
    // No time to finish anything: whatever is in flight is abandoned at once.
    let report = node0.shutdown_within(Duration::ZERO).await;
    eprintln!("abandon: {report:?}");
    assert!(report.abandoned > 0, "{report:?}");
    // Abandoning does not wait for sessions to finish: every abandoned task stopped (handing its
    // request back or reporting its abort) within the grace, and so did every request puller.
    assert_eq!((report.still_running, report.pullers_running), (0, 0), "{report:?}");

    // Every request is answered: node0's own requests were handed back and served by the
    // others; sessions node0 took part in were reported aborted to their coordinators. The
    // hand-back is immediate: all results come well before a 30 s AckWait could expire.
    let got = w.collect_sign_results(&ids, Duration::from_secs(25), Duration::from_secs(2)).await;
    let answered = started.elapsed();
    let missing: Vec<_> = ids.iter().filter(|t| !got.contains_key(*t)).collect();
    assert!(missing.is_empty(), "no result within {answered:?} for {missing:?}");
    let mut aborted = 0;
    for (tx, evs) in &got {
        assert_eq!(evs.len(), 1, "{tx}: {evs:?}");
        let ev = &evs[0];
        if ev.result_type.as_str() == "success" {
            if tx.contains("-ecdsa-") {
                ecdsa_verify(&ecdsa_pub, &digest_of(tx), ev);
            } else {
                eddsa_verify(&eddsa_pub, tx.as_bytes(), ev);
            }
        } else {
            assert_eq!(ev.error_code, Some(ErrorCode::OperationAborted), "{tx}: {ev:?}");
            aborted += 1;
        }
    }
    eprintln!("{} requests, {aborted} answered ERROR_OPERATION_ABORTED, all within {answered:?}", ids.len());
}
