//! The three unscoped durable result consumers on stream `mpc` (`mpc_keygen_result`,
//! `mpc_signing_result`, `mpc_reshare_result`; spec §3.3), created at start as the original's
//! node does, so a client that binds to them by name finds them. The node never reads them.

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

/// Creates the three consumers when absent (the stream `mpc` must exist). One that exists with
/// the same configuration is left as is; one that a client created with another configuration
/// is left as is too, with a warning naming both filters: overwriting it would take results
/// away from that client. Any other failure (e.g. no permission) is an error.
pub async fn ensure_result_consumers(js: &jetstream::Context) -> Result<(), ResultConsumerError> {
    let error = |spec: &ConsumerSpec, reason: String| ResultConsumerError {
        name: spec.durable_name.clone(),
        filter: spec.filter_subject.clone(),
        reason,
    };
    let stream = js
        .get_stream(streams::RESULT_STREAM.name)
        .await
        .map_err(|e| error(&streams::node_result_consumers()[0], e.to_string()))?;
    for spec in streams::node_result_consumers() {
        match stream.create_consumer_strict(consumer_config(&spec)).await {
            Ok(_) => tracing::debug!(consumer = %spec.durable_name, "result consumer present"),
            Err(e) if e.kind() == ConsumerCreateStrictErrorKind::AlreadyExists => {
                let existing = match stream.consumer_info(&spec.durable_name).await {
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
