//! Signing loads and their results: a collector of every signing result of one ClientID that
//! survives a NATS outage, and the check every fault test makes of a load's outcome.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use mpcium_api::{SignTxMessage, SigningResultEvent};

use super::verify::{ecdsa_verify, eddsa_verify};
use super::wire::{WireClient, result_consumer};

/// One signing request of a load, and what its result must verify against.
#[derive(Clone)]
pub struct LoadRequest {
    /// The signed request.
    pub msg: SignTxMessage,
    /// ECDSA (a 32-byte digest) or EdDSA (the message itself).
    pub ecdsa: bool,
}

/// `count` requests on `wallet`, every third one ECDSA (the rest EdDSA, which is much cheaper).
pub fn signing_load(client: &WireClient, wallet: &str, prefix: &str, count: usize) -> Vec<LoadRequest> {
    (0..count)
        .map(|i| {
            let ecdsa = i % 3 == 0;
            let tx_id = format!("{prefix}-{i}");
            let msg = if ecdsa {
                let digest: [u8; 32] = sha2_digest(tx_id.as_bytes());
                client.sign_msg("secp256k1", wallet, &tx_id, &digest, None)
            } else {
                client.sign_msg("ed25519", wallet, &tx_id, format!("message {tx_id}").as_bytes(), None)
            };
            LoadRequest { msg, ecdsa }
        })
        .collect()
}

fn sha2_digest(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// The tx ids of a load, in order.
pub fn tx_ids(load: &[LoadRequest]) -> Vec<String> {
    load.iter().map(|r| r.msg.tx_id.clone()).collect()
}

/// One result event as received.
#[derive(Clone)]
pub struct Received {
    /// When it arrived.
    pub at: Instant,
    /// The event.
    pub event: SigningResultEvent,
    /// Its exact bytes (to tell a redelivery of the same event from a different result).
    pub raw: Vec<u8>,
}

/// Every signing result of one ClientID, per tx id, pulled by a background task that survives a
/// NATS outage.
#[derive(Clone)]
pub struct Collector {
    by_tx: Arc<Mutex<HashMap<String, Vec<Received>>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Collector {
    /// Start pulling from the client's durable signing-result consumer (the one the wire client
    /// created; nothing else may fetch from it while the collector runs).
    pub async fn start(js: &jetstream::Context, client_id: &str) -> Self {
        let id = mpcium_api::ClientId::parse(client_id).unwrap().expect("a client id");
        let consumer =
            result_consumer(js, mpcium_api::streams::signing_result_consumer(Some(&id))).await.unwrap();
        let by_tx: Arc<Mutex<HashMap<String, Vec<Received>>>> = Arc::default();
        let sink = by_tx.clone();
        let task = tokio::spawn(async move {
            loop {
                let batch =
                    consumer.fetch().max_messages(100).expires(Duration::from_millis(500)).messages().await;
                let Ok(mut batch) = batch else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                // A fetch whose server died never ends on its own: bound each wait.
                while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(3), batch.next()).await
                {
                    let raw = msg.payload.to_vec();
                    let event = SigningResultEvent::from_json(&raw).unwrap();
                    sink.lock().unwrap().entry(event.tx_id.clone()).or_default().push(Received {
                        at: Instant::now(),
                        event,
                        raw,
                    });
                    let _ = msg.ack().await;
                }
            }
        });
        Self { by_tx, task: Arc::new(task) }
    }

    /// How many of `tx_ids` have at least one result.
    pub fn answered(&self, tx_ids: &[String]) -> usize {
        let map = self.by_tx.lock().unwrap();
        tx_ids.iter().filter(|t| map.contains_key(*t)).count()
    }

    /// Wait until each of `tx_ids` has a result; returns how many have one at the end.
    pub async fn wait_answered(&self, tx_ids: &[String], limit: Duration) -> usize {
        let started = Instant::now();
        while self.answered(tx_ids) < tx_ids.len() && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.answered(tx_ids)
    }

    /// Sample how many of `tx_ids` are answered, every `period`, in the background.
    pub fn progress(&self, tx_ids: Vec<String>, period: Duration) -> Progress {
        let samples: Arc<Mutex<Vec<usize>>> = Arc::default();
        let this = self.clone();
        let sink = samples.clone();
        let task = tokio::spawn(async move {
            loop {
                sink.lock().unwrap().push(this.answered(&tx_ids));
                tokio::time::sleep(period).await;
            }
        });
        Progress { samples, task }
    }

    /// Everything received so far.
    pub fn snapshot(&self) -> HashMap<String, Vec<Received>> {
        self.by_tx.lock().unwrap().clone()
    }

    /// Wait for the result of one tx id.
    pub async fn result_of(&self, tx_id: &str, limit: Duration) -> SigningResultEvent {
        let started = Instant::now();
        loop {
            if let Some(r) = self.by_tx.lock().unwrap().get(tx_id).and_then(|v| v.first()) {
                return r.event.clone();
            }
            assert!(started.elapsed() < limit, "no result for {tx_id} within {limit:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

/// Answered counts sampled at a fixed period (a timeline of a load).
pub struct Progress {
    samples: Arc<Mutex<Vec<usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Stop sampling; the samples so far.
    pub fn finish(self) -> Vec<usize> {
        self.task.abort();
        self.samples.lock().unwrap().clone()
    }
}

/// The outcome of a load: per-code counts, and the checks every fault test makes.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Successful signatures (each verified).
    pub successes: usize,
    /// Error events by code.
    pub errors: BTreeMap<String, usize>,
    /// Requests without any result.
    pub unanswered: Vec<String>,
    /// Requests with two results that differ.
    pub conflicting: Vec<String>,
    /// Identical events received more than once (client-side redelivery; harmless).
    pub redelivered: usize,
}

impl Outcome {
    /// Its counts in one line, for a test's printed figures.
    pub fn summary(&self) -> String {
        format!(
            "successes {}, errors {:?}, unanswered {}, conflicting {}, identical redeliveries {}",
            self.successes,
            self.errors,
            self.unanswered.len(),
            self.conflicting.len(),
            self.redelivered
        )
    }
}

/// Check every request of a load against the collected results: each success verifies under the
/// wallet's keys (k256 for ECDSA, ed25519-dalek for EdDSA); each error carries a code.
pub fn check_load(
    load: &[LoadRequest],
    results: &HashMap<String, Vec<Received>>,
    ecdsa_pub: &[u8],
    eddsa_pub: &[u8],
) -> Outcome {
    let mut out = Outcome::default();
    for req in load {
        let Some(events) = results.get(&req.msg.tx_id) else {
            out.unanswered.push(req.msg.tx_id.clone());
            continue;
        };
        let first = &events[0];
        for other in &events[1..] {
            if other.raw == first.raw {
                out.redelivered += 1;
            } else {
                out.conflicting.push(req.msg.tx_id.clone());
            }
        }
        let ev = &first.event;
        if ev.result_type.as_str() == "success" {
            let tx = req.msg.tx.clone().unwrap();
            if req.ecdsa {
                ecdsa_verify(ecdsa_pub, &tx.try_into().unwrap(), ev);
            } else {
                eddsa_verify(eddsa_pub, &tx, ev);
            }
            out.successes += 1;
        } else {
            let code = ev.error_code.as_ref().map(|c| c.as_str().to_owned());
            let code = code.unwrap_or_else(|| panic!("error event without a code: {:?}", ev));
            *out.errors.entry(code).or_default() += 1;
        }
    }
    out
}
