//! Shared test helpers: a real nats-server, a node-like result publisher, request capture.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use base64::Engine as _;
use futures_util::StreamExt as _;
use mpcium_client::{ClientId, ClientOptions, LocalSigner, MpcClient};
use mpcium_identity::SignerKey;
use mpcium_testkit::NatsServer;

pub const SEED: [u8; 32] = [7; 32];

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn ed25519_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&SEED)
}

pub fn ed25519_signer() -> Arc<LocalSigner> {
    Arc::new(LocalSigner::from_key(SignerKey::Ed25519(ed25519_key())))
}

pub async fn server() -> (NatsServer, async_nats::Client) {
    let server = NatsServer::start().expect("nats-server (run scripts/install-tools.sh)");
    let nats = async_nats::connect(server.url()).await.unwrap();
    (server, nats)
}

pub async fn client(server: &NatsServer, options: ClientOptions) -> MpcClient {
    let nats = async_nats::connect(server.url()).await.unwrap();
    MpcClient::with_options(nats, options).await.unwrap()
}

pub fn client_id(id: &str) -> Option<ClientId> {
    ClientId::parse(id).unwrap()
}

/// Publishes a result event into stream `mpc` as a node does (JetStream, `Nats-Msg-Id`).
pub async fn publish_result(nats: &async_nats::Client, subject: &str, msg_id: &str, body: String) {
    let js = async_nats::jetstream::new(nats.clone());
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    js.publish_with_headers(subject.to_owned(), headers, body.into()).await.unwrap().await.unwrap();
}

/// The next message on a subscription, or a panic after 10 s.
pub async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(Duration::from_secs(10), sub.next()).await.expect("no request published").unwrap()
}

pub fn header<'a>(msg: &'a async_nats::Message, name: &str) -> Option<&'a str> {
    msg.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str())
}
