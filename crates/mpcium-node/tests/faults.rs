//! Process-level faults: real `mpcium` node processes (this crate's binary) against a real
//! nats-server, driven by a client speaking the wire protocol.
//!
//! * `node_killed_and_restarted_under_signing_load`: `kill -9` of a node, its restart, then
//!   `kill -9` of another, while signing requests flow; every request is answered exactly once,
//!   the restarted node signs again, every node's share still signs at the end.
//! * `nats_server_restarted_under_signing_load`: nats-server killed and restarted on the same
//!   JetStream directory while requests are published; nothing is lost, nodes and client
//!   reconnect, every request is answered.
//! * `partitioned_node_is_routed_around_and_rejoins`: one node in its own network namespace
//!   behind a veth pair whose link is cut and restored (skipped, with a message, where network
//!   namespaces cannot be created).
//!
//! The tests run one at a time (each starts a cluster of processes; the machine has 2 cores).
//! `MPCIUM_FAULTS_LONG=1` runs longer variants: five times the requests, and three server
//! restarts instead of one. Figures (durations, outcome counts, recovery times) are printed;
//! run with `--nocapture` to see them.

use std::time::{Duration, Instant};

use mpcium_api::ErrorCode;
use mpcium_testkit::NatsServer;
use mpcium_testkit::node::WireClient;
use mpcium_testkit::node::{
    Collector, LoadRequest, Netns, ProcessCluster, Wallet, check_load, publish_until_stored, signing_load,
    tx_ids,
};

/// One cluster of processes at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn long() -> bool {
    std::env::var("MPCIUM_FAULTS_LONG").is_ok_and(|v| v == "1")
}

async fn keygen(client: &WireClient, wallet: &str, cluster: &ProcessCluster) -> Wallet {
    let started = Instant::now();
    let wallet = cluster.keygen(client, wallet).await;
    eprintln!("[faults] keygen {}: {:.1} s", wallet.id, started.elapsed().as_secs_f64());
    wallet
}

/// Sign once with each curve and verify both signatures; `tag` makes the tx ids unique.
async fn sign_both(
    client: &WireClient,
    collector: &Collector,
    wallet: &Wallet,
    tag: &str,
    cluster: &ProcessCluster,
) {
    let load = signing_load(client, &wallet.id, tag, 2);
    for req in &load {
        publish_until_stored(&client.js, &client.client_id, &req.msg).await;
    }
    for req in &load {
        let ev = collector.result_of(&req.msg.tx_id, Duration::from_secs(60)).await;
        assert_eq!(ev.result_type.as_str(), "success", "{tag}: {ev:?}\n{}", cluster.logs());
    }
    let outcome = check_load(&load, &collector.snapshot(), &wallet.ecdsa, &wallet.eddsa);
    assert_eq!(outcome.successes, 2, "{tag}: {outcome:?}");
}

/// No request has two different results (the events are shown when one has).
fn assert_single_results(
    outcome: &mpcium_testkit::node::Outcome,
    results: &std::collections::HashMap<String, Vec<mpcium_testkit::node::Received>>,
) {
    let shown: Vec<String> = outcome
        .conflicting
        .iter()
        .flat_map(|tx| results[tx].iter().map(|r| String::from_utf8_lossy(&r.raw).into_owned()))
        .collect();
    assert!(
        outcome.conflicting.is_empty(),
        "two different results for {:?}:\n{}",
        outcome.conflicting,
        shown.join("\n")
    );
}

/// Publish a whole load in the background (in order, each until stored), `pace` apart.
fn publish_load(client: &WireClient, load: &[LoadRequest], pace: Duration) -> tokio::task::JoinHandle<u32> {
    let js = client.js.clone();
    let id = client.client_id.clone();
    let load = load.to_vec();
    tokio::spawn(async move {
        let mut failures = 0;
        for req in &load {
            failures += publish_until_stored(&js, &id, &req.msg).await;
            if !pace.is_zero() {
                tokio::time::sleep(pace).await;
            }
        }
        failures
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_killed_and_restarted_under_signing_load() {
    let _serial = SERIAL.lock().await;
    let test_started = Instant::now();
    let server = NatsServer::start().unwrap();
    let mut cluster =
        ProcessCluster::prepare(env!("CARGO_BIN_EXE_mpcium"), 1, &server.url(), &[None, None, None]);
    let startup = cluster.start_all().await;
    cluster.wait_all_see(3, Duration::from_secs(30)).await;
    eprintln!("[faults] node start to [READY]: {startup:?}");
    let client = WireClient::connect(&server.url(), "faults-kill", cluster.initiator.clone()).await;
    let wallet = keygen(&client, "w-kill", &cluster).await;
    let collector = Collector::start(&client.js, "faults-kill").await;

    let count = if long() { 1500 } else { 300 };
    let load = signing_load(&client, &wallet.id, "kill", count);
    let ids = tx_ids(&load);
    let load_started = Instant::now();
    let progress = collector.progress(ids.clone(), Duration::from_secs(2));
    let publisher = publish_load(&client, &load, Duration::ZERO);

    // First fault once the load is flowing: kill -9 node1, restart it at once.
    let first_trigger = count / 8;
    while collector.answered(&ids) < first_trigger {
        assert!(load_started.elapsed() < Duration::from_secs(60), "load does not flow\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let answered_at_kill1 = collector.answered(&ids);
    cluster.nodes[1].kill9();
    let killed1 = Instant::now();
    let node1_process_ready = cluster.nodes[1].start().await;
    // node1 sees the other two (and they see its new readiness record: it is one KV bucket).
    cluster.wait_peers_ready(1, 3, Duration::from_secs(30)).await;
    let node1_back = killed1.elapsed();

    // Second fault: kill -9 node2. From now on every signature needs node1 (t=1, node0 + node1).
    let answered_at_kill2 = collector.answered(&ids);
    cluster.nodes[2].kill9();
    let killed2 = Instant::now();

    let answered = collector.wait_answered(&ids, Duration::from_secs(150)).await;
    let load_took = load_started.elapsed();
    let timeline = progress.finish();
    let publish_failures = publisher.await.unwrap();
    let results = collector.snapshot();
    let outcome = check_load(&load, &results, &wallet.ecdsa, &wallet.eddsa);
    // Successes that arrived well after node2 died (its readiness lapses 3 s after its last
    // heartbeat): their sessions ran on node0 and the restarted node1.
    let after_kill2 = load
        .iter()
        .filter_map(|r| results.get(&r.msg.tx_id).map(|e| &e[0]))
        .filter(|r| r.at > killed2 + Duration::from_secs(5) && r.event.result_type.as_str() == "success")
        .count();
    eprintln!(
        "[faults] kill test: {count} requests answered {answered} in {:.1} s; {}; publish retries {publish_failures}; \
         answered before kill1 {answered_at_kill1}, before kill2 {answered_at_kill2}; \
         node1 process start to [READY] {:.2} s, kill to seeing 3/3 {:.2} s; \
         successes more than 5 s after kill2 (node0+node1 only): {after_kill2}; \
         answered every 2 s: {timeline:?}; kill2 at {:.1} s",
        load_took.as_secs_f64(),
        outcome.summary(),
        node1_process_ready.as_secs_f64(),
        node1_back.as_secs_f64(),
        (killed2 - load_started).as_secs_f64(),
    );
    for r in results.values().map(|e| &e[0]).filter(|r| r.event.error_code.is_some()) {
        eprintln!(
            "[faults]   {} at {:.1} s: {:?} {}",
            r.event.tx_id,
            (r.at - load_started).as_secs_f64(),
            r.event.error_code,
            r.event.error_reason
        );
    }
    assert!(outcome.unanswered.is_empty(), "unanswered: {:?}\n{}", outcome.unanswered, cluster.logs());
    assert_single_results(&outcome, &results);
    assert!(outcome.successes > count / 2, "most requests succeed: {outcome:?}");

    // The restarted node1 signs with node0 while node2 is down (both curves).
    cluster.wait_peers_ready(0, 2, Duration::from_secs(30)).await;
    sign_both(&client, &collector, &wallet, "restarted-node1", &cluster).await;

    // node2 comes back; then every node's share is shown intact: each node in turn is stopped
    // (gracefully, so its readiness goes at once) and the other two sign with both curves.
    let node2_process_ready = cluster.nodes[2].start().await;
    cluster.wait_all_see(3, Duration::from_secs(30)).await;
    for down in 0..3 {
        cluster.nodes[down].terminate().await;
        for up in (0..3).filter(|i| *i != down) {
            cluster.wait_peers_ready(up, 2, Duration::from_secs(30)).await;
        }
        sign_both(&client, &collector, &wallet, &format!("without-node{down}"), &cluster).await;
        cluster.nodes[down].start().await;
        cluster.wait_all_see(3, Duration::from_secs(30)).await;
    }
    eprintln!(
        "[faults] kill test: node2 process start to [READY] {:.2} s; whole test {:.1} s",
        node2_process_ready.as_secs_f64(),
        test_started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_server_restarted_under_signing_load() {
    let _serial = SERIAL.lock().await;
    let test_started = Instant::now();
    let mut server = NatsServer::start().unwrap();
    let mut cluster =
        ProcessCluster::prepare(env!("CARGO_BIN_EXE_mpcium"), 1, &server.url(), &[None, None, None]);
    cluster.start_all().await;
    cluster.wait_all_see(3, Duration::from_secs(30)).await;
    let client = WireClient::connect(&server.url(), "faults-nats", cluster.initiator.clone()).await;
    let wallet = keygen(&client, "w-nats", &cluster).await;
    let collector = Collector::start(&client.js, "faults-nats").await;

    let restarts = if long() { 3 } else { 1 };
    let count = if long() { 600 } else { 120 };
    let load = signing_load(&client, &wallet.id, "nats", count);
    let ids = tx_ids(&load);
    let load_started = Instant::now();
    // Paced, so publishing overlaps the outage.
    let publisher = publish_load(&client, &load, Duration::from_millis(20));
    for restart in 0..restarts {
        let trigger = count * (restart + 1) / (restarts + 2);
        while collector.answered(&ids) < trigger {
            assert!(
                load_started.elapsed() < Duration::from_secs(90),
                "load does not flow\n{}",
                cluster.logs()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let answered_before = collector.answered(&ids);
        let offsets: Vec<u64> = cluster.nodes.iter().map(|n| n.log_offset()).collect();
        let down = Instant::now();
        tokio::task::block_in_place(|| server.restart()).unwrap();
        let up = Instant::now();
        // Every node reconnects (its NATS client logs the new connection) and sees all peers
        // ready again.
        let mut per_node = Vec::new();
        for (i, offset) in offsets.iter().enumerate() {
            cluster.nodes[i].wait_log_line(*offset, "event: connected", Duration::from_secs(60)).await;
            per_node.push(up.elapsed());
        }
        for i in 0..3 {
            cluster.wait_peers_ready(i, 3, Duration::from_secs(60)).await;
        }
        let all_ready = up.elapsed();
        while collector.answered(&ids) == answered_before {
            assert!(
                up.elapsed() < Duration::from_secs(90),
                "no result after the restart\n{}",
                cluster.logs()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let first_result = up.elapsed();
        eprintln!(
            "[faults] nats restart {restart}: server down {:.2} s; after it was up, node i reconnected at \
             {per_node:.2?}, all saw 3/3 at {:.2} s; first new result after {:.2} s ({answered_before} answered before)",
            (up - down).as_secs_f64(),
            all_ready.as_secs_f64(),
            first_result.as_secs_f64()
        );
    }
    let answered = collector.wait_answered(&ids, Duration::from_secs(150)).await;
    let load_took = load_started.elapsed();
    let publish_failures = publisher.await.unwrap();
    let results = collector.snapshot();
    let outcome = check_load(&load, &results, &wallet.ecdsa, &wallet.eddsa);
    eprintln!(
        "[faults] nats test: {count} requests answered {answered} in {:.1} s; {}; failed publish attempts {publish_failures}",
        load_took.as_secs_f64(),
        outcome.summary(),
    );
    assert!(outcome.unanswered.is_empty(), "unanswered: {:?}\n{}", outcome.unanswered, cluster.logs());
    assert_single_results(&outcome, &results);
    assert!(outcome.successes > count / 2, "most requests succeed: {outcome:?}");
    // The cluster is whole afterwards.
    sign_both(&client, &collector, &wallet, "after-nats-restart", &cluster).await;
    eprintln!("[faults] nats test: whole test {:.1} s", test_started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitioned_node_is_routed_around_and_rejoins() {
    let _serial = SERIAL.lock().await;
    let test_started = Instant::now();
    // Declared first so it is dropped last: the processes in it are killed before it goes.
    let Some(netns) = Netns::create_or_skip("[faults] partitioned_node_is_routed_around_and_rejoins") else {
        return;
    };
    // nats-server listens on the host end of the veth pair: node0 and node1 reach it locally,
    // node2 (in the namespace) over the link.
    let server = NatsServer::start_with_config(Some(&netns.server_listen())).unwrap();
    let mut cluster = ProcessCluster::start_partitioned(env!("CARGO_BIN_EXE_mpcium"), &server, &netns).await;
    let client = WireClient::connect(&server.url(), "faults-part", cluster.initiator.clone()).await;
    let wallet = keygen(&client, "w-part", &cluster).await;
    let collector = Collector::start(&client.js, "faults-part").await;

    // Cut node2 off. A keygen (it needs every node) sent at once reaches a coordinator that
    // still counts node2 as ready: it must end with an error code, not hang.
    netns.cut();
    let cut = Instant::now();
    client
        .publish(
            mpcium_api::subjects::keygen_request_subject("w-during-cut"),
            client.keygen_body("w-during-cut"),
        )
        .await;
    let seen_gone = [
        cluster.wait_peers_ready(0, 2, Duration::from_secs(30)).await,
        cluster.wait_peers_ready(1, 2, Duration::from_secs(30)).await,
    ];
    // The rest go on: node0 and node1 sign with both curves.
    sign_both(&client, &collector, &wallet, "during-cut", &cluster).await;
    // A keygen now is refused at once: not every node is ready.
    let refused_started = Instant::now();
    client
        .publish(mpcium_api::subjects::keygen_request_subject("w-refused"), client.keygen_body("w-refused"))
        .await;
    let mut during_cut = None;
    let mut refused = None;
    while during_cut.is_none() || refused.is_none() {
        let ev = client
            .try_next_keygen_result(Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("a keygen during the cut hangs\n{}", cluster.logs()));
        match ev.wallet_id.as_str() {
            "w-during-cut" => during_cut = Some((ev, cut.elapsed())),
            "w-refused" => refused = Some((ev, refused_started.elapsed())),
            other => panic!("unexpected keygen result for {other}"),
        }
    }
    let (during_cut, during_cut_took) = during_cut.unwrap();
    let (refused, refused_took) = refused.unwrap();
    eprintln!(
        "[faults] partition: node0/node1 saw node2 gone after {seen_gone:.2?}; keygen sent at the cut: {:?} after {:.1} s; \
         keygen after: {:?} after {:.2} s",
        during_cut.error_code,
        during_cut_took.as_secs_f64(),
        refused.error_code,
        refused_took.as_secs_f64()
    );
    assert!(during_cut.error_code.is_some(), "{during_cut:?}");
    assert!(during_cut_took < Duration::from_secs(45), "answered within the session timeout");
    assert_eq!(refused.error_code, Some(ErrorCode::ClusterNotReady), "{refused:?}");

    // Heal: node2 rejoins (every node, node2 included, sees 3/3), then signs: with node0
    // stopped, every signature needs node2.
    netns.heal();
    let healed = Instant::now();
    cluster.wait_all_see(3, Duration::from_secs(60)).await;
    let rejoined = healed.elapsed();
    cluster.nodes[0].terminate().await;
    cluster.wait_peers_ready(1, 2, Duration::from_secs(30)).await;
    sign_both(&client, &collector, &wallet, "after-heal-needs-node2", &cluster).await;
    // Whether nats-server gave up on node2's connection during the cut (then node2 reconnected)
    // or the connection survived it.
    let dropped = server
        .log()
        .lines()
        .filter(|l| l.contains(&format!("{}:", netns.ns_ip)) && l.contains("Closed"))
        .count();
    eprintln!(
        "[faults] partition: node2 ready again {:.2} s after the heal (server closed its connection {dropped} times); \
         whole test {:.1} s",
        rejoined.as_secs_f64(),
        test_started.elapsed().as_secs_f64()
    );
    drop(cluster);
    drop(server);
}
