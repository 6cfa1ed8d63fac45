//! `nats.replicas`: how many servers of a NATS cluster hold each JetStream stream, KV bucket and
//! durable consumer the node (or `mpcium-cli`) creates.
//!
//! With one replica everything lives on one server, and losing that server loses the requests
//! and results in flight and the registry. With 3 (a 3-server cluster) JetStream replicates by
//! Raft and a majority (2 servers) keeps serving.
//!
//! Everything is created with the configured count, and **an existing stream or bucket with
//! another count is updated in place** (clustered JetStream moves the data: nothing is lost), so
//! a deployment moves from 1 to 3 by changing `nats.replicas` and restarting its nodes. Durable
//! consumers the node made follow. A count the cluster cannot place (more replicas than
//! JetStream servers, or any count above 1 on a single, unclustered server) is refused by
//! JetStream; [`ReplicaError::TooFewServers`] says so naming the key and the server count.
//!
//! A KV bucket is the stream `KV_<bucket>`, so buckets are handled as streams.

use async_nats::jetstream::{self, ErrorCode, consumer, kv, stream};

/// Why a stream, bucket or consumer could not be created or brought to the configured replicas.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// JetStream cannot place that many replicas.
    #[error(
        "nats.replicas is {replicas} but the NATS cluster has {servers} server(s) with JetStream \
         (as the server advertises them): JetStream refused {what} ({reason}); set nats.replicas to \
         at most the number of servers, or add servers"
    )]
    TooFewServers {
        /// The configured count.
        replicas: usize,
        /// The servers the connected server advertises (itself included).
        servers: usize,
        /// The stream, bucket or consumer.
        what: String,
        /// What JetStream said.
        reason: String,
    },
    /// Any other JetStream failure.
    #[error("JetStream {what}: {source}")]
    JetStream {
        /// The stream, bucket or consumer.
        what: String,
        /// What failed.
        source: async_nats::Error,
    },
}

/// JetStream's answers that mean "not enough servers for that many replicas": replicas above 1
/// on an unclustered server, no suitable peers for placement, insufficient resources.
const TOO_FEW_SERVERS: [ErrorCode; 3] = [
    ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED,
    ErrorCode::CLUSTER_NO_PEERS,
    ErrorCode::INSUFFICIENT_RESOURCES,
];

/// The JetStream API error code somewhere in `err`'s chain, if any.
fn jetstream_code(err: &(dyn std::error::Error + 'static)) -> Option<ErrorCode> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(e) = e.downcast_ref::<jetstream::context::CreateStreamError>()
            && let jetstream::context::CreateStreamErrorKind::JetStream(js) = e.kind()
        {
            return Some(js.error_code());
        }
        if let Some(e) = e.downcast_ref::<jetstream::stream::ConsumerError>()
            && let jetstream::stream::ConsumerErrorKind::JetStream(js) = e.kind()
        {
            return Some(js.error_code());
        }
        if let Some(e) = e.downcast_ref::<jetstream::stream::ConsumerUpdateError>()
            && let jetstream::stream::ConsumerUpdateErrorKind::JetStream(js) = e.kind()
        {
            return Some(js.error_code());
        }
        if let Some(js) = e.downcast_ref::<jetstream::Error>() {
            return Some(js.error_code());
        }
        next = e.source();
    }
    None
}

/// Servers in the cluster of the connected server: the client URLs it advertises (itself
/// included), at least 1.
pub fn advertised_servers(client: &async_nats::Client) -> usize {
    client.server_info().connect_urls.len().max(1)
}

fn classify(js: &jetstream::Context, replicas: usize, what: &str, source: async_nats::Error) -> ReplicaError {
    match jetstream_code(source.as_ref()) {
        Some(code) if replicas > 1 && TOO_FEW_SERVERS.contains(&code) => ReplicaError::TooFewServers {
            replicas,
            servers: advertised_servers(&js.client()),
            what: what.to_owned(),
            reason: source.to_string(),
        },
        _ => ReplicaError::JetStream { what: what.to_owned(), source },
    }
}

/// The replica count a stream reports (0 means the server default, 1).
fn effective(n: usize) -> usize {
    n.max(1)
}

/// Create the stream when absent (with `replicas`); an existing one keeps its configuration
/// except the replica count, which is updated in place when it differs.
pub async fn ensure_stream(
    js: &jetstream::Context,
    mut config: stream::Config,
    replicas: usize,
) -> Result<stream::Stream, ReplicaError> {
    let what = format!("stream {}", config.name);
    config.num_replicas = replicas;
    let stream =
        js.get_or_create_stream(config).await.map_err(|e| classify(js, replicas, &what, e.into()))?;
    set_stream_replicas(js, stream, replicas, &what).await
}

async fn set_stream_replicas(
    js: &jetstream::Context,
    stream: stream::Stream,
    replicas: usize,
    what: &str,
) -> Result<stream::Stream, ReplicaError> {
    let current = effective(stream.cached_info().config.num_replicas);
    if current == replicas {
        return Ok(stream);
    }
    let mut config = stream.cached_info().config.clone();
    let name = config.name.clone();
    config.num_replicas = replicas;
    js.update_stream(&config).await.map_err(|e| classify(js, replicas, what, e.into()))?;
    tracing::info!(stream = %name, from = current, to = replicas, "stream replicas changed (nats.replicas)");
    js.get_stream(&name).await.map_err(|e| classify(js, replicas, what, e.into()))
}

/// Open a KV bucket, creating it (with `replicas`, or 1 when `None`) when absent; an existing
/// bucket with another replica count is updated in place (its stream `KV_<bucket>`), its keys
/// kept. `None` leaves an existing bucket as it is (for tools that do not know the setting).
pub async fn ensure_bucket(
    js: &jetstream::Context,
    mut config: kv::Config,
    replicas: Option<usize>,
) -> Result<kv::Store, ReplicaError> {
    let keep_existing = replicas.is_none();
    let replicas = replicas.unwrap_or(1);
    let what = format!("KV bucket {}", config.bucket);
    let bucket = config.bucket.clone();
    let store = match js.get_key_value(bucket.clone()).await {
        Ok(store) => store,
        Err(_) => {
            config.num_replicas = replicas;
            match js.create_key_value(config).await {
                Ok(store) => store,
                // Another node created it meanwhile.
                Err(e) => match js.get_key_value(bucket.clone()).await {
                    Ok(store) => store,
                    Err(_) => return Err(classify(js, replicas, &what, e.into())),
                },
            }
        }
    };
    if keep_existing || effective(store.stream.cached_info().config.num_replicas) == replicas {
        return Ok(store);
    }
    set_stream_replicas(js, store.stream.clone(), replicas, &what).await?;
    js.get_key_value(bucket).await.map_err(|e| classify(js, replicas, &what, e.into()))
}

/// The `num_replicas` of a durable consumer the node creates: 0 ("as its stream", the server
/// default and what clients send) with one replica, so the configuration stays byte for byte
/// what it was and what `mpcium-client` sends; the count itself otherwise.
pub fn consumer_replicas(replicas: usize) -> usize {
    if replicas <= 1 { 0 } else { replicas }
}

/// How long [`ensure_pull_consumer`] retries a JetStream failure: a stream just brought to more
/// replicas moves its consumers too, and JetStream may time out meanwhile.
pub const CONSUMER_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// Create a durable pull consumer when absent, with [`consumer_replicas`]; an existing one with
/// another replica count, AckWait, back-off or delivery limit is updated to these, in one update
/// (the rest of its configuration is kept). Failures other
/// than [`ReplicaError::TooFewServers`] are retried for up to a minute.
pub async fn ensure_pull_consumer(
    js: &jetstream::Context,
    stream: &stream::Stream,
    config: consumer::pull::Config,
    replicas: usize,
) -> Result<consumer::PullConsumer, ReplicaError> {
    let start = std::time::Instant::now();
    loop {
        match ensure_pull_consumer_once(js, stream, config.clone(), replicas).await {
            Err(ReplicaError::JetStream { what, source }) if start.elapsed() < CONSUMER_RETRY_FOR => {
                tracing::warn!(consumer = %what, error = %source, "JetStream refused or timed out; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

async fn ensure_pull_consumer_once(
    js: &jetstream::Context,
    stream: &stream::Stream,
    mut config: consumer::pull::Config,
    replicas: usize,
) -> Result<consumer::PullConsumer, ReplicaError> {
    let name = config.durable_name.clone().unwrap_or_default();
    let what = format!("consumer {name} on stream {}", stream.cached_info().config.name);
    config.num_replicas = consumer_replicas(replicas);
    let (ack_wait, backoff, max_deliver) = (config.ack_wait, config.backoff.clone(), config.max_deliver);
    let consumer = stream
        .get_or_create_consumer(&name, config)
        .await
        .map_err(|e| classify(js, replicas, &what, e.into()))?;
    // An existing consumer keeps its configuration but for what this release sets: its
    // AckWait, back-off and delivery limit (an earlier release, or the original, made it with
    // others) and its replicas.
    let current = &consumer.cached_info().config;
    let timing_differs =
        current.ack_wait != ack_wait || current.backoff != backoff || current.max_deliver != max_deliver;
    if !timing_differs && !replicas_differ(current, replicas) {
        return Ok(consumer);
    }
    let from = (current.ack_wait, current.num_replicas);
    let updated = reconfigure(js, stream, &consumer, replicas, &what, |c| {
        c.ack_wait = ack_wait;
        c.backoff = backoff;
        c.max_deliver = max_deliver;
    })
    .await?;
    tracing::info!(consumer = %what, ?from, to = ?(ack_wait, updated.cached_info().config.num_replicas), "consumer AckWait, back-off and replicas brought to this release's");
    Ok(updated)
}

/// Whether an existing consumer's replica count is not [`consumer_replicas`] (never with one
/// replica: a consumer with 0 follows its stream).
fn replicas_differ(current: &consumer::Config, replicas: usize) -> bool {
    let want = consumer_replicas(replicas);
    want != 0 && current.num_replicas != want
}

/// Update an existing consumer: its configuration as it is, with `edit` applied and the replicas
/// brought to [`consumer_replicas`] (kept with one replica).
async fn reconfigure(
    js: &jetstream::Context,
    stream: &stream::Stream,
    consumer: &consumer::PullConsumer,
    replicas: usize,
    what: &str,
    edit: impl FnOnce(&mut consumer::pull::Config),
) -> Result<consumer::PullConsumer, ReplicaError> {
    let current = &consumer.cached_info().config;
    let mut config =
        <consumer::pull::Config as consumer::FromConsumer>::try_from_consumer_config(current.clone())
            .map_err(|source| ReplicaError::JetStream { what: what.to_owned(), source })?;
    edit(&mut config);
    if replicas_differ(current, replicas) {
        config.num_replicas = consumer_replicas(replicas);
    }
    stream.update_consumer(config).await.map_err(|e| classify(js, replicas, what, e.into()))
}

/// Bring an existing consumer to [`consumer_replicas`] (no change with one replica: a consumer
/// with 0 follows its stream).
pub async fn set_consumer_replicas(
    js: &jetstream::Context,
    stream: &stream::Stream,
    consumer: consumer::PullConsumer,
    replicas: usize,
    what: &str,
) -> Result<consumer::PullConsumer, ReplicaError> {
    let current = consumer.cached_info().config.num_replicas;
    if !replicas_differ(&consumer.cached_info().config, replicas) {
        return Ok(consumer);
    }
    let updated = reconfigure(js, stream, &consumer, replicas, what, |_| {}).await?;
    tracing::info!(consumer = %what, from = current, to = consumer_replicas(replicas), "consumer replicas changed (nats.replicas)");
    Ok(updated)
}
