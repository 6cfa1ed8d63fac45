//! A client that speaks the original's wire protocol byte for byte: JetStream requests with a
//! `ClientID` header, results from per-client durable consumers named as the original's client
//! names them (`mpcium_api::streams`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use ed25519_dalek::{Signer, SigningKey};
use futures_util::StreamExt;
use mpcium_api::streams::ConsumerSpec;
use mpcium_api::{
    KeygenResultEvent, ResharingMessage, ResharingResultEvent, SignTxMessage, SignTxRequest, SigningMode,
    SigningResultEvent, subjects,
};

/// A client's own durable result consumer on `mpc` (created the first time; nothing but the
/// name, the filter and explicit acks are set, as the original's client does).
pub async fn result_consumer(
    js: &jetstream::Context,
    spec: ConsumerSpec,
) -> Result<jetstream::consumer::Consumer<pull::Config>, String> {
    let stream = js.get_stream(spec.stream).await.map_err(|e| format!("stream {}: {e}", spec.stream))?;
    let config = pull::Config {
        durable_name: Some(spec.durable_name.clone()),
        name: Some(spec.durable_name.clone()),
        filter_subject: spec.filter_subject.clone(),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ..Default::default()
    };
    stream
        .get_or_create_consumer(&spec.durable_name, config)
        .await
        .map_err(|e| format!("consumer {}: {e}", spec.durable_name))
}

/// A client that speaks the original's wire protocol (JetStream requests with a `ClientID` header,
/// results from per-client durable consumers).
pub struct WireClient {
    pub client_id: String,
    pub initiator: SigningKey,
    pub js: jetstream::Context,
    pub raw: async_nats::Client,
    keygen_results: jetstream::consumer::Consumer<pull::Config>,
    sign_results: jetstream::consumer::Consumer<pull::Config>,
    reshare_results: jetstream::consumer::Consumer<pull::Config>,
}

impl WireClient {
    /// Connect to `url` and create the result consumers as the original's client does.
    pub async fn connect(url: &str, client_id: &str, initiator: SigningKey) -> WireClient {
        Self::over(async_nats::connect(url).await.unwrap(), client_id, initiator).await
    }

    /// The client on a connection made by the caller (its user, TLS, inbox prefix), creating its
    /// result consumers.
    pub async fn over(raw: async_nats::Client, client_id: &str, initiator: SigningKey) -> WireClient {
        let js = jetstream::new(raw.clone());
        let id = mpcium_api::ClientId::parse(client_id).unwrap().expect("a client id");
        let make = |spec| {
            let js = js.clone();
            async move { result_consumer(&js, spec).await.unwrap() }
        };
        let keygen_results = make(mpcium_api::streams::keygen_result_consumer(Some(&id))).await;
        let sign_results = make(mpcium_api::streams::signing_result_consumer(Some(&id))).await;
        let reshare_results = make(mpcium_api::streams::reshare_result_consumer(Some(&id))).await;
        WireClient {
            client_id: client_id.to_owned(),
            initiator,
            js,
            raw,
            keygen_results,
            sign_results,
            reshare_results,
        }
    }

    fn headers(&self) -> async_nats::HeaderMap {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(subjects::CLIENT_ID_HEADER, self.client_id.as_str());
        headers
    }

    /// Publish a request body into JetStream (waits for the stream's ack).
    pub async fn publish(&self, subject: String, body: Vec<u8>) {
        self.js.publish_with_headers(subject, self.headers(), body.into()).await.unwrap().await.unwrap();
    }

    /// Publish many requests (subject, body), waiting for the stream's acks in bulk.
    pub async fn publish_all(&self, requests: Vec<(String, Vec<u8>)>) {
        for chunk in requests.chunks(256) {
            let mut acks = Vec::with_capacity(chunk.len());
            for (subject, body) in chunk {
                let ack = self.js.publish_with_headers(subject.clone(), self.headers(), body.clone().into());
                acks.push(ack.await.unwrap());
            }
            for ack in acks {
                ack.await.unwrap();
            }
        }
    }

    /// The next result of a consumer, acked; panics after `wait`.
    pub async fn next_result_within(
        consumer: &jetstream::consumer::Consumer<pull::Config>,
        wait: Duration,
    ) -> Option<Vec<u8>> {
        let mut batch = consumer.fetch().max_messages(1).expires(wait).messages().await.unwrap();
        let msg = tokio::time::timeout(wait + Duration::from_secs(5), batch.next()).await.ok()??.unwrap();
        msg.ack().await.unwrap();
        Some(msg.payload.to_vec())
    }

    async fn next_result(consumer: &jetstream::consumer::Consumer<pull::Config>) -> Vec<u8> {
        Self::next_result_within(consumer, Duration::from_secs(90)).await.expect("a result")
    }

    /// Every result that arrives on `consumer` within `expires`, up to `max`, acked.
    async fn fetch_batch(
        consumer: &jetstream::consumer::Consumer<pull::Config>,
        max: usize,
        expires: Duration,
    ) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut batch = consumer.batch().max_messages(max).expires(expires).messages().await.unwrap();
        while let Ok(Some(msg)) = tokio::time::timeout(expires + Duration::from_secs(5), batch.next()).await {
            let msg = msg.unwrap();
            msg.ack().await.unwrap();
            out.push(msg.payload.to_vec());
        }
        out
    }

    /// Collect signing results by tx id until every id in `want` has one (or `wait` passes), then
    /// for `quiet` more (to catch duplicates and strays). Every result is returned, `want` or not.
    pub async fn collect_sign_results(
        &self,
        want: &[String],
        wait: Duration,
        quiet: Duration,
    ) -> HashMap<String, Vec<SigningResultEvent>> {
        Self::collect(&self.sign_results, want, wait, quiet, |body| {
            let ev = SigningResultEvent::from_json(body).unwrap();
            (ev.tx_id.clone(), ev)
        })
        .await
    }

    /// Collect keygen results by wallet id, as [`WireClient::collect_sign_results`] does.
    pub async fn collect_keygen_results(
        &self,
        want: &[String],
        wait: Duration,
        quiet: Duration,
    ) -> HashMap<String, Vec<KeygenResultEvent>> {
        Self::collect(&self.keygen_results, want, wait, quiet, |body| {
            let ev = KeygenResultEvent::from_json(body).unwrap();
            (ev.wallet_id.clone(), ev)
        })
        .await
    }

    /// The loop behind the collectors: results keyed by `decode`'s id.
    async fn collect<E>(
        consumer: &jetstream::consumer::Consumer<pull::Config>,
        want: &[String],
        wait: Duration,
        quiet: Duration,
        decode: impl Fn(&[u8]) -> (String, E),
    ) -> HashMap<String, Vec<E>> {
        let mut got: HashMap<String, Vec<E>> = HashMap::new();
        let deadline = tokio::time::Instant::now() + wait;
        let mut quiet_until = None;
        loop {
            let now = tokio::time::Instant::now();
            if quiet_until.is_some_and(|q| now >= q) || now >= deadline {
                break;
            }
            for body in Self::fetch_batch(consumer, 500, Duration::from_millis(300)).await {
                let (id, ev) = decode(&body);
                got.entry(id).or_default().push(ev);
            }
            if quiet_until.is_none() && want.iter().all(|t| got.contains_key(t)) {
                quiet_until = Some(tokio::time::Instant::now() + quiet);
            }
        }
        got
    }

    /// Publish a keygen request for `wallet` without waiting for its result.
    pub async fn send_keygen(&self, wallet: &str) {
        self.publish(subjects::keygen_request_subject(wallet), self.keygen_body(wallet)).await;
    }

    /// The next signing result for this client (any tx).
    pub async fn next_sign_result(&self) -> SigningResultEvent {
        SigningResultEvent::from_json(&Self::next_result(&self.sign_results).await).unwrap()
    }

    /// The next signing result, or `None` when none comes within `wait`.
    pub async fn try_next_sign_result(&self, wait: Duration) -> Option<SigningResultEvent> {
        let bytes = Self::next_result_within(&self.sign_results, wait).await?;
        Some(SigningResultEvent::from_json(&bytes).unwrap())
    }

    /// The next keygen result for this client.
    pub async fn next_keygen_result(&self) -> KeygenResultEvent {
        KeygenResultEvent::from_json(&Self::next_result(&self.keygen_results).await).unwrap()
    }

    /// The next keygen result, or `None` when none comes within `wait`.
    pub async fn try_next_keygen_result(&self, wait: Duration) -> Option<KeygenResultEvent> {
        let bytes = Self::next_result_within(&self.keygen_results, wait).await?;
        Some(KeygenResultEvent::from_json(&bytes).unwrap())
    }

    /// Send a raw keygen body for `wallet` and wait for its result.
    pub async fn keygen_raw(&self, wallet: &str, body: Vec<u8>) -> KeygenResultEvent {
        self.publish(subjects::keygen_request_subject(wallet), body).await;
        self.next_keygen_result().await
    }

    /// A signed keygen request body.
    pub fn keygen_body(&self, wallet: &str) -> Vec<u8> {
        let sig = self.initiator.sign(wallet.as_bytes()).to_bytes();
        let msg = mpcium_api::GenerateKeyMessage {
            wallet_id: wallet.into(),
            signature: Some(sig.to_vec()),
            authorizer_signatures: vec![],
        };
        msg.to_json().into_bytes()
    }

    /// Keygen of the keys of `wallet` (ECDSA, EdDSA and, on our nodes, Taproot).
    pub async fn keygen(&self, wallet: &str) -> KeygenResultEvent {
        self.keygen_raw(wallet, self.keygen_body(wallet)).await
    }

    /// A signing request signed by the initiator (compatible mode: path not covered).
    pub fn sign_msg(
        &self,
        key_type: &str,
        wallet: &str,
        tx_id: &str,
        tx: &[u8],
        path: Option<Vec<u32>>,
    ) -> SignTxMessage {
        self.sign_msg_mode(key_type, wallet, tx_id, tx, path, SigningMode::Compatible)
    }

    /// A signing request signed by the initiator in the given mode.
    pub fn sign_msg_mode(
        &self,
        key_type: &str,
        wallet: &str,
        tx_id: &str,
        tx: &[u8],
        path: Option<Vec<u32>>,
        mode: SigningMode,
    ) -> SignTxMessage {
        let mut msg = SignTxMessage {
            key_type: mpcium_api::KeyType::from_wire(key_type),
            wallet_id: wallet.into(),
            network_internal_code: "test".into(),
            tx_id: tx_id.into(),
            tx: Some(tx.to_vec()),
            signature: None,
            derivation_path: path,
            authorizer_signatures: vec![],
        };
        let raw = mpcium_api::canonical::sign_signed_bytes(&msg, mode);
        msg.signature = Some(self.initiator.sign(&raw).to_bytes().to_vec());
        msg
    }

    /// A Taproot signing request (ours) for the 32-byte BIP341 `sighash`, signed by the initiator
    /// in compatible mode: the merkle root, when given, is covered by the signature.
    pub fn taproot_msg(
        &self,
        wallet: &str,
        tx_id: &str,
        sighash: &[u8; 32],
        path: Option<Vec<u32>>,
        merkle_root: Option<[u8; 32]>,
    ) -> SignTxRequest {
        let message = SignTxMessage {
            key_type: mpcium_api::KeyType::Taproot,
            wallet_id: wallet.into(),
            network_internal_code: "BTC".into(),
            tx_id: tx_id.into(),
            tx: Some(sighash.to_vec()),
            signature: None,
            derivation_path: path,
            authorizer_signatures: vec![],
        };
        let mut req = SignTxRequest::new(message);
        req.taproot_merkle_root = merkle_root.map(|root| root.to_vec());
        let raw = mpcium_api::canonical::sign_request_signed_bytes(&req, SigningMode::Compatible);
        req.message.signature = Some(self.initiator.sign(&raw).to_bytes().to_vec());
        req
    }

    /// Send a request with our fields ([`SignTxRequest`]) and wait for the next signing result.
    pub async fn sign_request(&self, req: &SignTxRequest) -> SigningResultEvent {
        self.sign_raw(&req.tx_id, req.to_json().into_bytes()).await
    }

    /// Publish a signing request without waiting for its result.
    pub async fn send_sign(&self, msg: &SignTxMessage) {
        self.publish(subjects::signing_request_subject(&msg.tx_id), msg.to_json().into_bytes()).await;
    }

    /// Publish a raw signing body for `tx_id` and wait for the next signing result.
    pub async fn sign_raw(&self, tx_id: &str, body: Vec<u8>) -> SigningResultEvent {
        self.publish(subjects::signing_request_subject(tx_id), body).await;
        self.next_sign_result().await
    }

    /// Sign and wait for the result.
    pub async fn sign(&self, msg: &SignTxMessage) -> SigningResultEvent {
        self.sign_raw(&msg.tx_id, msg.to_json().into_bytes()).await
    }

    /// Reshare `wallet`'s `key_type` key to `nodes` with threshold `t`, and wait for the result.
    pub async fn reshare(
        &self,
        key_type: &str,
        wallet: &str,
        session: &str,
        nodes: &[&str],
        t: i64,
    ) -> ResharingResultEvent {
        let body = self.reshare_body(key_type, wallet, session, nodes, t);
        self.raw.publish_with_headers("mpc:reshare", self.headers(), body.into()).await.unwrap();
        self.raw.flush().await.unwrap();
        ResharingResultEvent::from_json(&Self::next_result(&self.reshare_results).await).unwrap()
    }

    /// A signed reshare request body.
    pub fn reshare_body(
        &self,
        key_type: &str,
        wallet: &str,
        session: &str,
        nodes: &[&str],
        t: i64,
    ) -> Vec<u8> {
        let mut msg = ResharingMessage {
            session_id: session.into(),
            node_ids: Some(nodes.iter().map(|n| n.to_string()).collect()),
            new_threshold: t,
            key_type: mpcium_api::KeyType::from_wire(key_type),
            wallet_id: wallet.into(),
            signature: None,
            authorizer_signatures: vec![],
        };
        let raw = mpcium_api::canonical::reshare_signed_bytes(&msg);
        msg.signature = Some(self.initiator.sign(&raw).to_bytes().to_vec());
        msg.to_json().into_bytes()
    }
}

/// Publish a signing request until JetStream acknowledges it stored it, retrying through an
/// outage; `Nats-Msg-Id` (the tx id) keeps a retry whose first attempt was stored from being
/// stored twice. Returns the number of failed attempts.
pub async fn publish_until_stored(js: &jetstream::Context, client_id: &str, msg: &SignTxMessage) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut failures = 0;
    loop {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(subjects::CLIENT_ID_HEADER, client_id);
        headers.insert(subjects::MSG_ID_HEADER, msg.tx_id.as_str());
        let body = msg.to_json().into_bytes();
        let stored = match js
            .publish_with_headers(subjects::signing_request_subject(&msg.tx_id), headers, body.into())
            .await
        {
            Ok(ack) => tokio::time::timeout(Duration::from_secs(5), ack).await.is_ok_and(|a| a.is_ok()),
            Err(_) => false,
        };
        if stored {
            return failures;
        }
        failures += 1;
        assert!(Instant::now() < deadline, "{} could not be published for 60 s", msg.tx_id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
