//! Node clusters for the node tests (feature `node`): what the multi-node tests of
//! `mpcium-node` share.
//!
//! - [`in_process`]: `n` nodes started with `mpcium_node::daemon::start` in the test process (real
//!   NATS client, real encrypted stores in a temp dir), stopped and restarted on the same store;
//! - [`process`]: a cluster of real `mpcium` node processes laid out as an operator would;
//! - [`wire`]: a client that speaks the original's wire protocol byte for byte under its own
//!   `ClientID`, and a publisher that retries through an outage;
//! - [`results`]: a signing-result collector that survives an outage, signing loads and their check;
//! - [`params`]: the parameters a test node starts with; [`transports`]: node transports without
//!   the service (session and transport tests);
//! - [`verify`]: signature checks of result events; [`http`]: `/health` and `/metrics` reads;
//! - [`malice`]: a node playing a malicious coordinator announces sessions nobody asked for;
//! - [`netns`]: the network namespace of the partition tests;
//! - [`replicas`]: where the replicas of the nodes' streams, buckets and consumers are (NATS cluster tests);
//! - [`deploy`]: the shipped `deploy/` NATS configuration pointed at test ports and certificates.

pub mod deploy;
pub mod http;
pub mod in_process;
pub mod malice;
pub mod netns;
pub mod params;
pub mod process;
pub mod replicas;
pub mod results;
pub mod transports;
pub mod verify;
pub mod wire;

pub use http::{http_get, metric, total, try_http_get, wait_pools_full};
pub use in_process::{
    Cluster, ClusterSpec, STORE_PASSWORD, Tweak, init_logging, open_stopped_store, pool_cluster, rss_kib,
    share_records,
};
pub use malice::{Answers, announce_via, assert_all_refused};
pub use netns::Netns;
pub use params::TestNode;
pub use process::{NodeProcess, ProcessCluster, Wallet};
pub use results::{Collector, LoadRequest, Outcome, Progress, Received, check_load, signing_load, tx_ids};
pub use transports::Transports;
pub use verify::{ecdsa_child, ecdsa_verify, eddsa_verify, taproot_verify};
pub use wire::{WireClient, publish_until_stored};

/// Wait for `cond` with a generous deadline (the machine is loaded in CI), polling every 50 ms
/// for at most 30 s; false on time-out.
pub async fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..600 {
        if cond() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// [`wait_until`], panicking on time-out.
pub async fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    assert!(wait_until(cond).await, "timed out waiting for {what}");
}
