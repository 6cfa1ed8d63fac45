//! JetStream replicas as the NATS cluster tests read them: the streams, buckets and consumers
//! the nodes make, where their replicas are, and whether they are current.

use std::time::{Duration, Instant};

use std::sync::Arc;

use async_nats::jetstream;
use mpcium_node::daemon::NodeParams;
use mpcium_node::registry::BUCKETS;

use super::ClusterSpec;
use crate::NatsCluster;

/// The request and result streams, and the audit trail.
pub const STREAMS: [&str; 4] = ["mpc-keygen", "mpc-signing", "mpc", "mpc-audit"];
/// Durable consumers the nodes make: (stream, name).
pub const CONSUMERS: [(&str, &str); 5] = [
    ("mpc-keygen", "mpc_keygen_consumer"),
    ("mpc-signing", "mpc_signing_consumer"),
    ("mpc", "mpc_keygen_result"),
    ("mpc", "mpc_signing_result"),
    ("mpc", "mpc_reshare_result"),
];

/// Every stream the nodes make, buckets included (`KV_<bucket>`).
pub fn all_streams() -> Vec<String> {
    STREAMS.iter().map(|s| (*s).to_owned()).chain(BUCKETS.iter().map(|b| format!("KV_{b}"))).collect()
}

/// The nodes' heartbeat here: the default `node.heartbeat_seconds`. Readiness lapses after 3
/// heartbeats, and a stream whose Raft leader was on the killed server has no leader (takes no
/// writes) until its election ends, 4 to 9 s by nats-server's election timeouts: the tests' usual
/// 500 ms heartbeat (1.5 s) would expire every peer during it, a 5 s one (15 s) outlasts it.
pub const CLUSTER_HEARTBEAT: Duration = Duration::from_secs(5);

/// Three nodes (t=1) on `nats`, node i connected to server i first, with `nats.replicas =
/// replicas` and [`CLUSTER_HEARTBEAT`].
pub fn spec_on(nats: &NatsCluster, replicas: usize) -> ClusterSpec {
    let urls: Vec<String> = (0..nats.len()).map(|i| nats.urls_from(i)).collect();
    // The harness also starts a single nats-server of its own; these nodes never use it.
    ClusterSpec {
        tweak: Some(Arc::new(move |i, p: &mut NodeParams| {
            p.nats_url = urls[i].clone();
            p.service.replicas = replicas;
            p.heartbeat = CLUSTER_HEARTBEAT;
        })),
        ..ClusterSpec::new(3, 1)
    }
}

/// A client of `nats` that tries server `first` first, then the others in order.
pub async fn connect(nats: &NatsCluster, first: usize) -> async_nats::Client {
    let urls: Vec<String> = nats.urls_from(first).split(',').map(str::to_owned).collect();
    async_nats::ConnectOptions::new().retain_servers_order().connect(urls).await.unwrap()
}

/// (configured replicas, servers holding it) of a stream.
/// JetStream API calls are retried for a while: under load, or while a stream elects a leader,
/// one may time out.
pub async fn stream_replicas(js: &jetstream::Context, name: &str) -> (usize, Vec<String>, u64) {
    let mut tries = 0;
    let info = loop {
        tries += 1;
        let info = match js.get_stream(name).await {
            Ok(mut stream) => stream.info().await.cloned().map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match info {
            Ok(info) => break info,
            Err(e) if tries >= 10 => panic!("stream {name}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    let cluster = info.cluster.unwrap_or_else(|| panic!("stream {name} has no cluster info"));
    let mut servers: Vec<String> = cluster.replicas.iter().map(|p| p.name.clone()).collect();
    servers.extend(cluster.leader);
    servers.sort();
    (info.config.num_replicas, servers, info.state.messages)
}

/// What keeps every stream, bucket and node consumer from having `n` replicas on `n` distinct
/// servers (empty: nothing).
pub async fn replica_problems(js: &jetstream::Context, n: usize) -> Vec<String> {
    let mut problems = Vec::new();
    for name in all_streams() {
        let (configured, servers, _) = stream_replicas(js, &name).await;
        if configured != n || servers.len() != n {
            problems.push(format!("stream {name}: configured {configured}, placed on {servers:?}"));
        }
    }
    for (stream, consumer) in CONSUMERS {
        let info = match js.get_stream(stream).await {
            Ok(s) => s.consumer_info(consumer).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let info = match info {
            Ok(info) => info,
            Err(e) => {
                problems.push(format!("consumer {consumer} on {stream}: {e}"));
                continue;
            }
        };
        let placed = info.cluster.as_ref().map_or(0, |c| c.replicas.len() + usize::from(c.leader.is_some()));
        // With one replica the node leaves num_replicas at 0 ("as the stream").
        let configured_ok = info.config.num_replicas == n || (n == 1 && info.config.num_replicas == 0);
        if placed != n || !configured_ok {
            problems.push(format!(
                "consumer {consumer} on {stream}: configured {}, placed {placed}: {:?}",
                info.config.num_replicas, info.cluster
            ));
        }
    }
    problems
}

/// Every stream, bucket and node consumer has `n` replicas on `n` distinct servers, within 30 s
/// (a node brings its request consumers to the count when its service starts pulling, just
/// after it reports ready).
pub async fn assert_replicas(js: &jetstream::Context, n: usize) {
    let start = Instant::now();
    loop {
        let problems = replica_problems(js, n).await;
        if problems.is_empty() {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "not at {n} replicas: {problems:#?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether every replica of every stream is current (none offline, no lag).
pub async fn all_current(js: &jetstream::Context, server: &str) -> Result<(), String> {
    for name in all_streams() {
        let mut stream = js.get_stream(&name).await.map_err(|e| format!("{name}: {e}"))?;
        let info = stream.info().await.map_err(|e| format!("{name}: {e}"))?;
        let cluster = info.cluster.clone().ok_or(format!("{name}: no cluster info"))?;
        let seen = cluster.leader.as_deref() == Some(server)
            || cluster
                .replicas
                .iter()
                .any(|p| p.name == server && p.current && !p.offline && p.lag.unwrap_or(0) == 0);
        if !seen {
            return Err(format!("{name}: {server} not current: {cluster:?}"));
        }
    }
    Ok(())
}
