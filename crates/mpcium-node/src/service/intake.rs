//! Intake: pulling client requests from JetStream (with the drain's hand-back), answering a
//! redelivered request with its settled result, and publishing exactly one result per request.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;
use mpcium_api::{ClientId, GenerateKeyMessage, SignTxMessage, subjects};

use super::audit::{self, RequestFacts};
use super::{QUORUM_WAIT, Service};
use crate::audit::Outcome;
use crate::control::request_id;
use crate::drain::Phase;

impl Service {
    pub(super) async fn consume(
        self: Arc<Self>,
        spec: mpcium_api::streams::ConsumerSpec,
        stream_name: &str,
        keygen: bool,
    ) -> Result<(), async_nats::Error> {
        let stream = self.js.get_stream(stream_name).await?;
        let consumer = crate::replicas::ensure_pull_consumer(
            &self.js,
            &stream,
            pull::Config {
                durable_name: Some(spec.durable_name.clone()),
                filter_subject: spec.filter_subject.clone(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: spec.ack_wait,
                max_deliver: spec.max_deliver,
                backoff: spec.backoff.clone(),
                max_ack_pending: spec.max_ack_pending,
                ..Default::default()
            },
            self.cfg.replicas,
        )
        .await?;
        // Acknowledge progress five times per AckWait: a late one or two do not let the request
        // go to another node while this one works on it.
        let progress_every = spec.ack_wait / 5;
        let spec_max_deliver = spec.max_deliver;
        let _puller = self.drain.track_puller();
        self.wait_for_quorum().await;
        // Pull requests expire within half an AckWait: a node cut off from NATS (its connection
        // still open on the server until a ping fails) must not keep one that a redelivery of
        // the request it took would go to.
        let expires = spec.ack_wait / 2;
        let mut messages = consumer.stream().expires(expires).heartbeat(expires / 2).messages().await?;
        tracing::info!(consumer = %spec.durable_name, "pulling requests");
        // Pulled but not started when the drain began.
        let mut held = Vec::new();
        loop {
            let msg = tokio::select! {
                msg = messages.next() => msg,
                _ = self.drain.reached(Phase::Draining) => break,
            };
            let Some(msg) = msg else { break };
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "request consumer error");
                    continue;
                }
            };
            let slots = if keygen { self.keygen_slots.clone() } else { self.signing_slots.clone() };
            let permit = tokio::select! {
                permit = slots.acquire_owned() => permit,
                _ = self.drain.reached(Phase::Draining) => {
                    held.push(msg);
                    break;
                }
            };
            let Ok(permit) = permit else { break };
            let this = self.clone();
            let in_flight = self.drain.track();
            tokio::spawn(async move {
                let (_permit, _in_flight) = (permit, in_flight);
                this.handle_request(msg, keygen, progress_every, spec_max_deliver).await;
            });
        }
        // Draining: collect what the pull has delivered (or still delivers, until the server sees
        // our pull requests go) but we did not start; withdraw the pull requests (dropping the
        // stream unsubscribes); only then hand it all back, so a request naked here cannot be
        // redelivered to this node's withdrawn pull and sit there until AckWait. Other nodes
        // take it at once.
        let linger_until = tokio::time::Instant::now() + HAND_BACK_LINGER;
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(
            linger_until.min(tokio::time::Instant::now() + HAND_BACK_IDLE),
            messages.next(),
        )
        .await
        {
            held.push(msg);
        }
        drop(messages);
        for msg in &held {
            hand_back(msg).await;
        }
        tracing::info!(consumer = %spec.durable_name, handed_back = held.len(), "stopped pulling requests");
        Ok(())
    }

    /// Requests queued while the cluster was down would be answered `ERROR_NOT_MAJORITY` by the
    /// first node back: pull only once t+1 nodes are ready (or after a bounded wait, so a node
    /// alone still answers, with that error, rather than never).
    pub(super) async fn wait_for_quorum(&self) {
        let need = self.cfg.threshold as usize + 1;
        let until = tokio::time::Instant::now() + QUORUM_WAIT;
        while self.transport.directory().ready().len() < need && tokio::time::Instant::now() < until {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = self.drain.reached(Phase::Draining) => return,
            }
        }
    }

    pub(super) async fn handle_request(
        &self,
        msg: jetstream::Message,
        keygen: bool,
        progress_every: Duration,
        max_deliver: i64,
    ) {
        tracing::debug!(subject = %msg.subject, "request pulled");
        // The peers may hand a signing request back if this node goes away with it: told first,
        // before anything that waits (the settled-result read below waits out a NATS election).
        let handback = if keygen { None } else { msg.reply.as_ref().map(|r| r.to_string()) };
        if let Some(subject) = &handback {
            self.transport.note_request(subject).await;
        }
        let client = client_id_of(msg.headers.as_ref());
        let (seq, delivered) = msg.info().map(|i| (i.stream_sequence, i.delivered)).unwrap_or((0, 0));
        let delivery = format!("{seq}.{delivered}");
        let claim = seq.to_string();
        // Keep the request from being redelivered while we work.
        let progress = {
            let msg = msg.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(progress_every).await;
                    if msg.ack_with(jetstream::AckKind::Progress).await.is_err() {
                        break;
                    }
                }
            })
        };
        let subject_token = msg.subject.as_str().rsplit('.').next().unwrap_or("").to_owned();
        let started = std::time::Instant::now();
        // A redelivery of a request that was answered already (its ack was lost, or it waited in a
        // pull of a node that was cut off) is answered with the settled result, not run again.
        let sign_msg = if keygen { None } else { SignTxMessage::from_json(&msg.payload).ok() };
        let answered = if keygen {
            GenerateKeyMessage::from_json(&msg.payload).ok().map(|m| {
                (
                    subjects::keygen_result_subject(client.as_ref(), &m.wallet_id),
                    subjects::keygen_idempotency_key(client.as_ref(), &m.wallet_id, Some(&claim)),
                )
            })
        } else {
            sign_msg.as_ref().map(|m| {
                (
                    subjects::signing_result_subject(client.as_ref()),
                    subjects::signing_idempotency_key(client.as_ref(), &m.tx_id, Some(&claim)),
                )
            })
        };
        // The wallet's key info is read meanwhile (a signing request needs it next): one registry
        // round trip instead of two in a row.
        let settled = async {
            match &answered {
                Some((_, key)) => self.registry.settled_result(key).await.ok().flatten(),
                None => None,
            }
        };
        let (settled, keyinfo) = tokio::join!(settled, async {
            match &sign_msg {
                Some(m) => self.prefetch_keyinfo(m).await,
                None => None,
            }
        });
        if let (Some((subject, key)), Some(event)) = (answered, settled) {
            tracing::info!(subject = %msg.subject, "request answered before; republishing its result");
            let body = String::from_utf8_lossy(&event).into_owned();
            let published = self.publish(subject, key, body).await;
            progress.abort();
            match published {
                Ok(()) => drop(msg.ack().await),
                Err(e) => {
                    tracing::error!(error = %e, "could not republish a result; leaving the request for redelivery");
                    let _ = msg.ack_with(jetstream::AckKind::Nak(Some(Duration::from_secs(1)))).await;
                }
            }
            return;
        }
        let work = async {
            let mut facts =
                RequestFacts::new(if keygen { "keygen" } else { "sign" }, &msg.payload, client.as_ref());
            if keygen {
                let (event, trace) = audit::traced(self.coordinate_keygen(
                    &msg.payload,
                    client.as_ref(),
                    &delivery,
                    &subject_token,
                ))
                .await;
                facts.request_id = request_id(&event.wallet_id, &delivery);
                facts.wallet_id = event.wallet_id.clone();
                let error = event.error_code.as_ref().map(|c| (c, event.error_reason.as_str()));
                let outcome = if error.is_some() { Outcome::Failure } else { Outcome::Success };
                self.audit_request(facts, trace, outcome, error);
                self.metrics.record(
                    "keygen",
                    event.error_code.as_ref().map(|c| c.as_str()),
                    started.elapsed(),
                );
                // One result per request message: redeliveries of it share the key (stream
                // sequence), a new request with the same id gets its own answer.
                let key = subjects::keygen_idempotency_key(client.as_ref(), &event.wallet_id, Some(&claim));
                self.publish(
                    subjects::keygen_result_subject(client.as_ref(), &event.wallet_id),
                    key,
                    event.to_json(),
                )
                .await
                .map(|()| Settle::Published)
            } else {
                let (answer, trace) = audit::traced(super::reselect::HANDBACK.scope(
                    handback,
                    self.coordinate_sign(
                        &msg.payload,
                        client.as_ref(),
                        &delivery,
                        &claim,
                        &subject_token,
                        keyinfo,
                    ),
                ))
                .await;
                // A failure that another try may not have (a NATS failover under the session, a
                // peer that did not answer) is not settled while JetStream has deliveries left:
                // the request goes back for another delivery, maybe to another node. A redelivery
                // that raced this one (its progress acks were lost in the failover) may be
                // running already; the first settled result wins either way, so a transient
                // failure here must not be the one that does.
                let event = answer.event;
                let handed_back = answer.transient && delivered < max_deliver;
                facts.request_id = request_id(&event.tx_id, &delivery);
                facts.wallet_id = event.wallet_id.clone();
                facts.tx_id = Some(event.tx_id.clone());
                let error = event.error_code.as_ref().map(|c| (c, event.error_reason.as_str()));
                let outcome = match (handed_back, error.is_some()) {
                    (true, _) => Outcome::HandedBack,
                    (false, true) => Outcome::Failure,
                    (false, false) => Outcome::Success,
                };
                self.audit_request(facts, trace, outcome, error);
                if handed_back {
                    tracing::warn!(
                        tx_id = %event.tx_id,
                        code = ?event.error_code,
                        reason = %event.error_reason,
                        delivered,
                        "a transient failure; handing the request back for another delivery"
                    );
                    self.metrics.reselections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Ok(Settle::Redeliver);
                }
                self.metrics.record("sign", event.error_code.as_ref().map(|c| c.as_str()), started.elapsed());
                let key = subjects::signing_idempotency_key(client.as_ref(), &event.tx_id, Some(&claim));
                self.publish(subjects::signing_result_subject(client.as_ref()), key, event.to_json())
                    .await
                    .map(|()| Settle::Published)
            }
        };
        let published = tokio::select! {
            published = work => published,
            _ = self.drain.reached(Phase::Abandoning) => {
                // Shutting down past the drain deadline: JetStream gives the request to another
                // node (or to this one after its restart). A result already published is
                // deduplicated by its Nats-Msg-Id (the stream sequence).
                progress.abort();
                // After the pullers withdrew their pull requests (see `consume`).
                let _ = tokio::time::timeout(Duration::from_secs(3), self.drain.pullers_stopped()).await;
                hand_back(&msg).await;
                return;
            }
        };
        progress.abort();
        match published {
            Ok(Settle::Published) => {
                if let Err(e) = msg.ack().await {
                    tracing::warn!(error = %e, "ack failed");
                }
            }
            Ok(Settle::Redeliver) => {
                let _ = msg.ack_with(jetstream::AckKind::Nak(Some(REDELIVER_AFTER))).await;
            }
            Err(e) => {
                // Not acked: JetStream redelivers and the request is answered then.
                tracing::error!(error = %e, "could not publish a result; leaving the request for redelivery");
                let _ = msg.ack_with(jetstream::AckKind::Nak(Some(Duration::from_secs(1)))).await;
            }
        }
    }

    /// Publish a result event, or the one settled earlier for the same request message (see
    /// [`Registry::settle_result`]): a client never gets two different results for one request.
    ///
    /// A failure is retried for up to [`PUBLISH_RETRY_FOR`] (the request's in-progress acks keep
    /// it ours meanwhile): in a NATS cluster, a stream whose leader was on a server that died
    /// takes nothing until it has elected another (4 to 9 s), and a request naked at once
    /// instead would spend its few deliveries (`max_deliver` 4, fixed by the wire) within a
    /// second each and be dropped by JetStream unanswered.
    pub(super) async fn publish(
        &self,
        subject: String,
        msg_id: String,
        body: String,
    ) -> Result<(), async_nats::Error> {
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(250);
        loop {
            match self.publish_once(subject.clone(), &msg_id, body.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) if started.elapsed() + pause < PUBLISH_RETRY_FOR => {
                    tracing::debug!(error = %e, msg_id = %msg_id, "result not stored yet; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn publish_once(
        &self,
        subject: String,
        msg_id: &str,
        body: String,
    ) -> Result<(), async_nats::Error> {
        let body = self.registry.settle_result(msg_id, body.into()).await?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(subjects::MSG_ID_HEADER, msg_id);
        let ack = self.js.publish_with_headers(subject.clone(), headers, body).await?.await?;
        // A duplicate means JetStream holds an earlier publication of this result (the same
        // Nats-Msg-Id) within its duplicate window.
        tracing::debug!(subject = %subject, msg_id = %msg_id, stream_seq = ack.sequence, duplicate = ack.duplicate, "result stored");
        Ok(())
    }
}

/// What became of a request the node worked on.
enum Settle {
    /// Its result is stored in stream `mpc`: acknowledge the request.
    Published,
    /// A transient failure, not settled: give the request back for another delivery.
    Redeliver,
}

/// How long a request handed back after a transient failure waits before its next delivery
/// (a NATS failover settles meanwhile; the next delivery's AckWait follows the BackOff).
const REDELIVER_AFTER: Duration = Duration::from_secs(1);

/// How long a result that cannot be stored is retried before its request is handed back: longer
/// than a JetStream leader election (the request's progress acks keep it this node's meanwhile).
const PUBLISH_RETRY_FOR: Duration = Duration::from_secs(20);

/// How long a stopping puller keeps handing back requests still arriving, at most, and after how
/// long without one it stops.
const HAND_BACK_LINGER: Duration = Duration::from_secs(1);
const HAND_BACK_IDLE: Duration = Duration::from_millis(150);

/// Give a pulled request back to JetStream for immediate redelivery (to any node). The delay is
/// explicit because a nak without one is delayed by the consumer's BackOff instead.
async fn hand_back(msg: &jetstream::Message) {
    let nak = jetstream::AckKind::Nak(Some(Duration::from_millis(10)));
    if let Err(e) = msg.ack_with(nak).await {
        tracing::warn!(error = %e, "could not hand a request back; it is redelivered after AckWait");
    }
}

/// The `ClientID` header of a request, if it has a valid one.
pub(super) fn client_id_of(headers: Option<&async_nats::HeaderMap>) -> Option<ClientId> {
    let value = headers?.get(subjects::CLIENT_ID_HEADER)?;
    ClientId::parse(value.as_str()).ok().flatten()
}
