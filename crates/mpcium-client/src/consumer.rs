//! JetStream setup (the three streams, the three durable result consumers of docs/wire.md §2) and
//! the loops that pull result events and hand them to the [`Router`].

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, stream};
use futures_util::StreamExt as _;
use mpcium_api::streams::{self, ConsumerSpec, Retention, Storage, StreamSpec};
use mpcium_api::{ClientId, DecodeError, KeygenResultEvent, ResharingResultEvent, SigningResultEvent};
use tokio::task::JoinHandle;

use crate::error::ClientError;
use crate::router::{Router, Routes};

/// Pause before re-opening a consumer's message stream after it ended or failed.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

fn stream_config(spec: &StreamSpec) -> stream::Config {
    stream::Config {
        name: spec.name.to_owned(),
        subjects: spec.subjects.iter().map(|s| (*s).to_owned()).collect(),
        description: Some(spec.description.to_owned()),
        retention: match spec.retention {
            Retention::Limits => stream::RetentionPolicy::Limits,
            Retention::Interest => stream::RetentionPolicy::Interest,
            Retention::WorkQueue => stream::RetentionPolicy::WorkQueue,
        },
        storage: match spec.storage {
            Storage::File => stream::StorageType::File,
            Storage::Memory => stream::StorageType::Memory,
        },
        max_age: spec.max_age.unwrap_or_default(),
        max_bytes: spec.max_bytes,
        duplicate_window: spec.duplicate_window,
        ..Default::default()
    }
}

fn consumer_config(spec: &ConsumerSpec) -> pull::Config {
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

/// Creates `mpc-keygen`, `mpc-signing` and `mpc` with the original's configuration when they
/// are absent; existing streams are left as they are (whoever created them first wins).
pub(crate) async fn ensure_streams(js: &jetstream::Context) -> Result<stream::Stream, ClientError> {
    for spec in [&streams::KEYGEN_REQUEST_STREAM, &streams::SIGNING_REQUEST_STREAM] {
        js.get_or_create_stream(stream_config(spec))
            .await
            .map_err(|e| ClientError::Setup(format!("stream {}: {e}", spec.name)))?;
    }
    js.get_or_create_stream(stream_config(&streams::RESULT_STREAM))
        .await
        .map_err(|e| ClientError::Setup(format!("stream {}: {e}", streams::RESULT_STREAM.name)))
}

async fn create_consumer(
    result_stream: &stream::Stream,
    spec: &ConsumerSpec,
) -> Result<PullConsumer, ClientError> {
    result_stream.create_consumer(consumer_config(spec)).await.map_err(|e| {
        ClientError::Setup(format!("consumer {} ({}): {e}", spec.durable_name, spec.filter_subject))
    })
}

/// How one result kind is decoded and keyed.
type Decoder<E> = fn(&jetstream::Message) -> Result<(String, E), DecodeError>;

fn decode_keygen(msg: &jetstream::Message) -> Result<(String, KeygenResultEvent), DecodeError> {
    let event = KeygenResultEvent::from_json(&msg.payload)?;
    Ok((event.wallet_id.clone(), event))
}

fn decode_signing(msg: &jetstream::Message) -> Result<(String, SigningResultEvent), DecodeError> {
    let event = SigningResultEvent::from_json(&msg.payload)?;
    Ok((event.tx_id.clone(), event))
}

fn decode_reshare(msg: &jetstream::Message) -> Result<(String, ResharingResultEvent), DecodeError> {
    let event = ResharingResultEvent::from_json(&msg.payload)?;
    // The session ID is only in the subject: `mpc.mpc_reshare_result.[<clientID>.]<sessionID>`.
    let session = msg.subject.as_str().rsplit('.').next().unwrap_or_default().to_owned();
    Ok((session, event))
}

/// Creates the three durable result consumers (scoped by `client`) and starts pulling.
pub(crate) async fn start_result_consumers(
    result_stream: &stream::Stream,
    client: Option<&ClientId>,
    router: &Router,
) -> Result<Vec<JoinHandle<()>>, ClientError> {
    let keygen = create_consumer(result_stream, &streams::keygen_result_consumer(client)).await?;
    let signing = create_consumer(result_stream, &streams::signing_result_consumer(client)).await?;
    let reshare = create_consumer(result_stream, &streams::reshare_result_consumer(client)).await?;
    Ok(vec![
        tokio::spawn(pull_loop(keygen, decode_keygen, Arc::clone(&router.keygen))),
        tokio::spawn(pull_loop(signing, decode_signing, Arc::clone(&router.signing))),
        tokio::spawn(pull_loop(reshare, decode_reshare, Arc::clone(&router.reshare))),
    ])
}

async fn pull_loop<E: Send + 'static>(consumer: PullConsumer, decode: Decoder<E>, routes: Arc<Routes<E>>) {
    let name = consumer.cached_info().name.clone();
    loop {
        match consumer.messages().await {
            Ok(mut messages) => {
                while let Some(item) = messages.next().await {
                    match item {
                        Ok(msg) => handle(&name, &msg, decode, &routes).await,
                        Err(e) => tracing::warn!(consumer = %name, error = %e, "result consumer error"),
                    }
                }
                tracing::debug!(consumer = %name, "result message stream ended; re-opening");
            }
            Err(e) => tracing::warn!(consumer = %name, error = %e, "cannot open result message stream"),
        }
        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
    }
}

async fn handle<E: Send + 'static>(
    consumer: &str,
    msg: &jetstream::Message,
    decode: Decoder<E>,
    routes: &Routes<E>,
) {
    match decode(msg) {
        Ok((key, event)) => {
            if !routes.deliver(&key, event) {
                tracing::warn!(
                    consumer, subject = %msg.subject, key = %key,
                    "result event claimed by no request and no callback; dropping it"
                );
            }
            if let Err(e) = msg.ack().await {
                tracing::warn!(consumer, error = %e, "ack failed");
            }
        }
        Err(e) => {
            // Like the Go client: a body we cannot decode is NAKed (redelivered up to MaxDeliver).
            tracing::warn!(consumer, subject = %msg.subject, error = %e, "undecodable result event; NAK");
            if let Err(e) = msg.ack_with(AckKind::Nak(None)).await {
                tracing::warn!(consumer, error = %e, "nak failed");
            }
        }
    }
}
