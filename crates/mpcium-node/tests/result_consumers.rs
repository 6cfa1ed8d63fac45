//! A starting node creates the three unscoped result consumers on `mpc` with the original's
//! names, filters and settings (docs/wire.md §2.3), and leaves alone one that a client made differently.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use mpcium_testkit::node::{Cluster, ClusterSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_create_the_result_consumers_and_keep_a_clients_own() {
    let mut c = Cluster::start(ClusterSpec { start_only: Some(vec![0]), ..ClusterSpec::new(2, 1) }).await;
    let nats = async_nats::connect(c.server.url()).await.unwrap();
    let js = jetstream::new(nats);
    let mpc = js.get_stream("mpc").await.unwrap();
    for (name, filter) in [
        ("mpc_keygen_result", "mpc.mpc_keygen_result.*"),
        ("mpc_signing_result", "mpc.mpc_signing_result.complete"),
        ("mpc_reshare_result", "mpc.mpc_reshare_result.*"),
    ] {
        let config = mpc.consumer_info(name).await.unwrap_or_else(|e| panic!("{name}: {e}")).config;
        assert_eq!(config.durable_name.as_deref(), Some(name));
        assert_eq!(config.filter_subject, filter, "{name}");
        assert_eq!(config.ack_policy, jetstream::consumer::AckPolicy::Explicit, "{name}");
        assert_eq!(config.ack_wait, Duration::from_secs(30), "{name}");
        assert_eq!(config.max_deliver, 3, "{name}");
        assert_eq!(config.max_ack_pending, 1000, "{name}");
        assert_eq!(config.deliver_policy, jetstream::consumer::DeliverPolicy::All, "{name}");
    }
    // A client binding by name with the original's configuration gets the same consumer.
    for spec in mpcium_api::streams::node_result_consumers() {
        mpc.create_consumer_strict(mpcium_node::result_consumers::consumer_config(&spec)).await.unwrap();
    }

    // A client (like the TypeScript one) replaced one with another filter: the next node to start
    // warns and leaves it, and creates nothing else.
    mpc.delete_consumer("mpc_signing_result").await.unwrap();
    let theirs = pull::Config {
        durable_name: Some("mpc_signing_result".into()),
        filter_subject: "mpc.mpc_signing_result.>".into(),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ..Default::default()
    };
    mpc.create_consumer(theirs).await.unwrap();
    c.start_node(1).await;
    c.wait_all_ready().await;
    let info = mpc.consumer_info("mpc_signing_result").await.unwrap();
    assert_eq!(info.config.filter_subject, "mpc.mpc_signing_result.>");
    let mut names: Vec<String> = Vec::new();
    let mut listed = mpc.consumer_names();
    while let Some(name) = futures_util::StreamExt::next(&mut listed).await {
        names.push(name.unwrap());
    }
    names.sort();
    assert_eq!(names, ["mpc_keygen_result", "mpc_reshare_result", "mpc_signing_result"]);
    for i in 0..2 {
        c.stop_node(i).await;
    }
}
