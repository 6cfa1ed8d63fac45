//! The three unscoped durable result consumers on stream `mpc` (`mpc_keygen_result`,
//! `mpc_signing_result`, `mpc_reshare_result`; docs/wire.md §2.3), created at start as the original's
//! node does, so a client that binds to them by name finds them. The node never reads them.
//! With `nats.replicas` above 1 they are made with that many replicas (the `mpc` stream is
//! WorkQueue: JetStream wants its consumers on as many servers as the stream), and one the node
//! made before with another count is brought to it.

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::ConsumerCreateStrictErrorKind;
use mpcium_api::streams::{self, ConsumerSpec};

/// Creating a result consumer failed (other than finding it already there).
#[derive(Debug, thiserror::Error)]
#[error("cannot create result consumer {name} (filter {filter}) on stream mpc: {reason}")]
pub struct ResultConsumerError {
    /// The durable name.
    pub name: String,
    /// Its filter subject.
    pub filter: String,
    /// What NATS said.
    pub reason: String,
}

/// The pull configuration, field for field what `mpcium-client` sends, so a client without a
/// `ClientID` that creates the same consumer gets the same one back instead of a conflict.
pub fn consumer_config(spec: &ConsumerSpec) -> pull::Config {
    pull::Config {
        durable_name: Some(spec.durable_name.clone()),
        name: Some(spec.durable_name.clone()),
        filter_subject: spec.filter_subject.clone(),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: spec.ack_wait,
        max_deliver: spec.max_deliver,
        backoff: spec.backoff.clone(),
        max_ack_pending: spec.max_ack_pending,
        ..Default::default()
    }
}

/// Creates the three consumers when absent (the stream `mpc` must exist), with one replica.
/// See [`ensure_result_consumers_with_replicas`].
pub async fn ensure_result_consumers(js: &jetstream::Context) -> Result<(), ResultConsumerError> {
    ensure_result_consumers_with_replicas(js, 1).await
}

/// Creates the three consumers when absent (the stream `mpc` must exist), with
/// [`crate::replicas::consumer_replicas`]. One that exists with the same configuration is left
/// as is, or only brought to the replica count when that is all that differs; one that a client
/// created with another configuration is left as is, with a warning naming both filters:
/// overwriting it would take results away from that client. Any other failure (e.g. no
/// permission) is an error.
pub async fn ensure_result_consumers_with_replicas(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<(), ResultConsumerError> {
    // As the request consumers (`replicas::ensure_pull_consumer`): while a stream moves to more
    // replicas JetStream may time out; retried for up to a minute.
    let start = std::time::Instant::now();
    loop {
        match ensure_result_consumers_once(js, replicas).await {
            Err(e) if start.elapsed() < crate::replicas::CONSUMER_RETRY_FOR => {
                tracing::warn!(error = %e, "result consumers not ensured yet; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

async fn ensure_result_consumers_once(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<(), ResultConsumerError> {
    let error = |spec: &ConsumerSpec, reason: String| ResultConsumerError {
        name: spec.durable_name.clone(),
        filter: spec.filter_subject.clone(),
        reason,
    };
    let stream = js
        .get_stream(streams::RESULT_STREAM.name)
        .await
        .map_err(|e| error(&streams::node_result_consumers()[0], e.to_string()))?;
    let want = crate::replicas::consumer_replicas(replicas);
    for spec in streams::node_result_consumers() {
        let mut config = consumer_config(&spec);
        config.num_replicas = want;
        match stream.create_consumer_strict(config.clone()).await {
            Ok(_) => tracing::debug!(consumer = %spec.durable_name, "result consumer present"),
            Err(e) if e.kind() == ConsumerCreateStrictErrorKind::AlreadyExists => {
                let info = stream.consumer_info(&spec.durable_name).await;
                if let Ok(info) = &info
                    && same_but_replicas(&info.config, &config)
                {
                    let consumer = stream
                        .get_consumer::<pull::Config>(&spec.durable_name)
                        .await
                        .map_err(|e| error(&spec, e.to_string()))?;
                    let what = format!("consumer {} on stream mpc", spec.durable_name);
                    crate::replicas::set_consumer_replicas(js, &stream, consumer, replicas, &what)
                        .await
                        .map_err(|e| error(&spec, e.to_string()))?;
                    continue;
                }
                let existing = match info {
                    Ok(info) if info.config.filter_subjects.is_empty() => info.config.filter_subject,
                    Ok(info) => info.config.filter_subjects.join(" "),
                    Err(e) => format!("unknown ({e})"),
                };
                tracing::warn!(
                    consumer = %spec.durable_name,
                    filter = %spec.filter_subject,
                    existing_filter = %existing,
                    "result consumer exists with another configuration (made by a client?); left as it is"
                );
            }
            Err(e) => return Err(error(&spec, e.to_string())),
        }
    }
    Ok(())
}

/// Whether an existing consumer is the one the node makes, up to its replica count.
fn same_but_replicas(existing: &jetstream::consumer::Config, ours: &pull::Config) -> bool {
    existing.durable_name == ours.durable_name
        && existing.filter_subject == ours.filter_subject
        && existing.filter_subjects.is_empty()
        && existing.deliver_policy == ours.deliver_policy
        && existing.ack_policy == ours.ack_policy
        && existing.ack_wait == ours.ack_wait
        && existing.max_deliver == ours.max_deliver
        && existing.backoff == ours.backoff
        && existing.max_ack_pending == ours.max_ack_pending
}
