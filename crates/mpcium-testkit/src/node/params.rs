//! The parameters a test node starts with: what every in-process test node shares.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use mpcium_node::daemon::NodeParams;
use mpcium_node::service::ServiceConfig;
use mpcium_store::Store;

/// One test node: who it is, whom it trusts, where its store and NATS are.
pub struct TestNode<'a> {
    /// Its node id.
    pub id: &'a str,
    /// Its node name.
    pub name: &'a str,
    /// Its identity key.
    pub identity: &'a SigningKey,
    /// Every node's id → identity key (itself included).
    pub peers: HashMap<String, VerifyingKey>,
    /// Its opened store.
    pub store: Store,
    /// `mpc_threshold` of new keys.
    pub threshold: u32,
    /// The cluster's chain code.
    pub chain_code: [u8; 32],
    /// The Ed25519 key requests are signed with.
    pub initiator: &'a VerifyingKey,
    /// The NATS server(s).
    pub nats_url: String,
}

impl TestNode<'_> {
    /// The node's parameters: plain NATS options, a 500 ms heartbeat, no backups, no health
    /// endpoint, presignature pools off (background presign sessions would blur what other tests
    /// measure), one replica. A test changes fields of the result as it needs.
    pub fn params(self) -> NodeParams {
        let initiator_hex = hex::encode(self.initiator.to_bytes());
        NodeParams {
            node_id: self.id.to_owned(),
            node_name: self.name.to_owned(),
            identity: self.identity.clone(),
            peers: self.peers,
            nats_url: self.nats_url,
            nats_options: async_nats::ConnectOptions::new(),
            store: Arc::new(self.store),
            backup: None,
            heartbeat: Duration::from_millis(500),
            service: ServiceConfig {
                threshold: self.threshold,
                chain_code: self.chain_code,
                initiator: mpcium_api::verify::PublicKey::parse(
                    mpcium_api::verify::Algorithm::Ed25519,
                    &initiator_hex,
                )
                .unwrap(),
                authorization: Default::default(),
                strict_requests: false,
                max_concurrent_keygen: 2,
                max_concurrent_signing: 20,
                max_request_bytes: 1024 * 1024,
                limits: Default::default(),
                session_timeout: Duration::from_secs(30),
                presign: mpcium_node::presign::PresignSettings::default(),
                key_pool: mpcium_node::keypool::KeyPoolSettings::default(),
                replicas: 1,
                pulls_requests: true,
            },
            register_peers: Vec::new(),
            health_address: None,
        }
    }
}
