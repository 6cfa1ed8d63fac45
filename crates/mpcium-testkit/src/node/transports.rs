//! The layer under the service: `n` transports on one nats-server, each with its registry
//! heartbeat and ready watch, for the session and transport tests.

use std::collections::HashMap;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use mpcium_node::pairkey::ExchangeKey;
use mpcium_node::registry::{Heartbeat, PeerDirectory, Registry};
use mpcium_node::transport::Transport;
use rand_core::OsRng;

use crate::NatsServer;

/// `n` transports (`node0`, `node1`, …) that see each other ready; their heartbeats stop when
/// it is dropped.
pub struct Transports {
    /// The nats-server.
    pub server: NatsServer,
    /// Node `i`'s transport.
    pub transports: Vec<Transport>,
    /// Node `i`'s identity key.
    pub keys: Vec<SigningKey>,
    /// `node<i>`.
    pub ids: Vec<String>,
    /// A plain connection of no node (to publish what a node would not).
    pub raw: async_nats::Client,
    _stop: tokio::sync::watch::Sender<bool>,
}

impl Transports {
    /// Start a nats-server and `n` transports with a 500 ms heartbeat, and wait until every one
    /// sees all `n` ready.
    pub async fn start(n: usize) -> Transports {
        let server = NatsServer::start().unwrap();
        let ids: Vec<String> = (0..n).map(|i| format!("node{i}")).collect();
        let keys: Vec<SigningKey> = (0..n).map(|_| SigningKey::generate(&mut OsRng)).collect();
        let identities: HashMap<String, _> =
            ids.iter().cloned().zip(keys.iter().map(|k| k.verifying_key())).collect();
        let hb = Heartbeat::every(Duration::from_millis(500));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut transports = Vec::new();
        for i in 0..n {
            let client = async_nats::connect(server.url()).await.unwrap();
            let js = async_nats::jetstream::new(client.clone());
            let registry = Registry::open(&js, hb).await.unwrap();
            let dir = PeerDirectory::new(&ids[i], identities.clone(), ExchangeKey::generate(), hb.ttl);
            registry.spawn_heartbeat(
                dir.clone(),
                keys[i].clone(),
                hb,
                mpcium_node::registry::now_ms(),
                stop_rx.clone(),
            );
            registry.spawn_watch(dir.clone(), stop_rx.clone());
            transports.push(Transport::new(client, keys[i].clone(), dir));
        }
        for t in &transports {
            for _ in 0..200 {
                if t.directory().ready().len() == n {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            assert_eq!(t.directory().ready().len(), n);
        }
        let raw = async_nats::connect(server.url()).await.unwrap();
        Transports { server, transports, keys, ids, raw, _stop: stop_tx }
    }
}
