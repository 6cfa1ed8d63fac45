//! Transport security on a real nats-server configured with the shipped `deploy/nats-server.conf`
//! (TLS with client certificates, one user per node and one per client application, each allowed
//! only its own subjects), with throw-away certificates (`mpcium_testkit::pki`):
//! - three nodes connect over TLS with their own users, become ready, and make a key and two
//!   signatures for a client connected as its own user;
//! - a node with a certificate from another CA, or with a wrong password, is refused at start
//!   with a clear error;
//! - the client user cannot publish to a node's inbox nor read or write the registry, and a node
//!   cannot listen on another node's inbox nor write another node's readiness.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use futures_util::StreamExt;
use mpcium_api::{ClientId, KeygenResultEvent, SignTxMessage, SigningMode, SigningResultEvent, subjects};
use mpcium_node::daemon::{NodeParams, RunningNode, StartError, start};
use mpcium_node::service::ServiceConfig;
use mpcium_store::{Store, StoreOptions};
use mpcium_testkit::pki::{CertFiles, TestPki};
use mpcium_testkit::{NatsServer, ServerSetup};
use rand_core::{OsRng, RngCore};

/// Node names and IDs exactly as in `deploy/nats-server.conf`.
const NODES: [(&str, &str); 3] = [
    ("node0", "86e6560e-3c7b-4224-b170-7562e991d6be"),
    ("node1", "b67f1bb9-3f53-4081-acf5-0505d712b5a7"),
    ("node2", "a86eb610-c9dd-48ef-8d43-9d1973a4f25c"),
];
/// The client application's user, ClientID and inbox prefix in `deploy/nats-server.conf`.
const CLIENT: &str = "backend";

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,async_nats=warn"))
        .with_test_writer()
        .try_init();
}

/// Wait for `cond` with a generous deadline (the machine is loaded in CI); false on time-out.
async fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..600 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// [`wait_until`], panicking on time-out.
async fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    assert!(wait_until(cond).await, "timed out waiting for {what}");
}

/// A nats-server running the shipped configuration, with its certificates and passwords.
struct SecureServer {
    server: NatsServer,
    pki: TestPki,
    passwords: HashMap<String, String>,
}

impl SecureServer {
    fn start() -> SecureServer {
        mpcium_node::daemon::install_tls_provider();
        let names: Vec<&str> = NODES.iter().map(|(n, _)| *n).chain([CLIENT]).collect();
        let pki = TestPki::generate(&names).unwrap();
        let passwords: HashMap<String, String> =
            names.iter().map(|n| (n.to_string(), random_password())).collect();
        let env = passwords
            .iter()
            .map(|(user, pw)| (format!("MPCIUM_{}_PASSWORD", user.to_uppercase()), pw.clone()))
            .collect();
        let setup = ServerSetup { extra_config: Some(shipped_config(&pki)), env };
        let server = NatsServer::start_with(setup).unwrap();
        SecureServer { server, pki, passwords }
    }

    /// TLS (our CA, `cert` as client certificate) and `user`/`password`.
    fn options(&self, cert: &CertFiles, user: &str, password: &str) -> async_nats::ConnectOptions {
        async_nats::ConnectOptions::new()
            .require_tls(true)
            .add_root_certificates(self.pki.ca_cert.clone())
            .add_client_certificate(cert.cert.clone(), cert.key.clone())
            .user_and_password(user.to_owned(), password.to_owned())
            .connection_timeout(Duration::from_secs(10))
    }

    /// The options of `user` with its own certificate and password.
    fn user_options(&self, user: &str) -> async_nats::ConnectOptions {
        self.options(&self.pki.client(user), user, &self.passwords[user])
    }

    fn url(&self) -> String {
        self.server.url()
    }
}

/// A random password. nats-server parses an environment variable as a config value, so it
/// starts with a letter (a leading digit would make it a number).
fn random_password() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    format!("pw{}", hex::encode(bytes))
}

/// `deploy/nats-server.conf` with its certificate paths pointed at the test PKI, and without
/// `listen`/`jetstream` (the harness sets them: a free loopback port, a temp directory).
fn shipped_config(pki: &TestPki) -> String {
    let text = include_str!("../../../deploy/nats-server.conf");
    let replace = |text: String, from: &str, to: &str| {
        assert!(text.contains(from), "deploy/nats-server.conf no longer contains {from:?}");
        text.replace(from, to)
    };
    let path = |p: &std::path::Path| p.display().to_string();
    let mut text = replace(text.to_owned(), "listen: 0.0.0.0:4222\n", "");
    text = replace(text, "jetstream { store_dir: \"/var/lib/nats/jetstream\" }\n", "");
    text = replace(text, "/etc/nats/certs/server-cert.pem", &path(&pki.server.cert));
    text = replace(text, "/etc/nats/certs/server-key.pem", &path(&pki.server.key));
    replace(text, "/etc/nats/certs/rootCA.pem", &path(&pki.ca_cert))
}

/// The three nodes' identities and the request initiator.
struct Keys {
    nodes: Vec<SigningKey>,
    initiator: SigningKey,
    chain_code: [u8; 32],
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Keys {
        let mut chain_code = [0u8; 32];
        OsRng.fill_bytes(&mut chain_code);
        Keys {
            nodes: NODES.iter().map(|_| SigningKey::generate(&mut OsRng)).collect(),
            initiator: SigningKey::generate(&mut OsRng),
            chain_code,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Node `i`'s parameters, connecting with `nats_options`.
    fn params(&self, i: usize, url: String, nats_options: async_nats::ConnectOptions) -> NodeParams {
        let peers: HashMap<String, VerifyingKey> = NODES
            .iter()
            .map(|(_, id)| id.to_string())
            .zip(self.nodes.iter().map(|k| k.verifying_key()))
            .collect();
        let store = Store::open_or_create(
            self.dir.path().join(format!("{}.db", NODES[i].0)),
            b"test-password-123",
            &StoreOptions::insecure_for_tests(),
        )
        .unwrap();
        let initiator_hex = hex::encode(self.initiator.verifying_key().to_bytes());
        NodeParams {
            node_id: NODES[i].1.to_owned(),
            node_name: NODES[i].0.to_owned(),
            identity: self.nodes[i].clone(),
            peers,
            nats_url: url,
            nats_options,
            store: Arc::new(store),
            backup: None,
            heartbeat: Duration::from_millis(500),
            service: ServiceConfig {
                threshold: 1,
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
                presign: Default::default(),
                replicas: 1,
            },
            register_peers: Vec::new(),
            health_address: None,
        }
    }
}

/// Start the three nodes, each with its own user and certificate, and wait until all are ready.
async fn start_cluster(server: &SecureServer, keys: &Keys) -> Vec<RunningNode> {
    let mut nodes = Vec::new();
    for (i, (name, _)) in NODES.iter().enumerate() {
        let params = keys.params(i, server.url(), server.user_options(name));
        let node = start(params).await.unwrap_or_else(|e| panic!("{name}: {e}\n{}", server.server.log()));
        nodes.push(node);
    }
    let ids: Vec<String> = NODES.iter().map(|(_, id)| id.to_string()).collect();
    for node in &nodes {
        let all_ready = wait_until(|| {
            let ready = node.directory().ready();
            ids.iter().all(|id| ready.contains(id))
        })
        .await;
        assert!(all_ready, "not every node became ready; the server's log:\n{}", server.server.log());
    }
    nodes
}

/// Server errors (`-ERR`) a connection was told about, as async-nats reports them.
#[derive(Clone, Default)]
struct ServerErrors(Arc<Mutex<Vec<String>>>);

impl ServerErrors {
    fn attach(&self, options: async_nats::ConnectOptions) -> async_nats::ConnectOptions {
        let seen = self.0.clone();
        options.event_callback(move |event| {
            let seen = seen.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    seen.lock().unwrap().push(e.to_string());
                }
            }
        })
    }

    /// Wait until the server has reported an error mentioning `needle`.
    async fn wait_for(&self, needle: &str) {
        let seen = self.0.clone();
        wait_for(&format!("a server error about {needle}"), || {
            seen.lock().unwrap().iter().any(|e| e.to_lowercase().contains(&needle.to_lowercase()))
        })
        .await;
    }
}

/// A client application speaking the original's wire protocol as user `backend`, with the
/// ClientID `backend` and its own inbox prefix.
struct WireClient {
    client_id: ClientId,
    initiator: SigningKey,
    js: jetstream::Context,
    keygen_results: jetstream::consumer::Consumer<pull::Config>,
    sign_results: jetstream::consumer::Consumer<pull::Config>,
}

impl WireClient {
    async fn connect(server: &SecureServer, initiator: SigningKey) -> WireClient {
        let nats = server
            .user_options(CLIENT)
            .custom_inbox_prefix(format!("_INBOX_{CLIENT}"))
            .connect(server.url())
            .await
            .unwrap();
        let js = jetstream::new(nats);
        let client_id = ClientId::parse(CLIENT).unwrap().unwrap();
        let results = js.get_stream("mpc").await.unwrap();
        let consumer = |spec: mpcium_api::streams::ConsumerSpec| {
            let results = results.clone();
            async move {
                let config = pull::Config {
                    durable_name: Some(spec.durable_name.clone()),
                    name: Some(spec.durable_name.clone()),
                    filter_subject: spec.filter_subject.clone(),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ..Default::default()
                };
                results.create_consumer(config).await.unwrap()
            }
        };
        let keygen_results = consumer(mpcium_api::streams::keygen_result_consumer(Some(&client_id))).await;
        let sign_results = consumer(mpcium_api::streams::signing_result_consumer(Some(&client_id))).await;
        WireClient { client_id, initiator, js, keygen_results, sign_results }
    }

    async fn publish(&self, subject: String, body: String) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(subjects::CLIENT_ID_HEADER, self.client_id.as_str());
        self.js.publish_with_headers(subject, headers, body.into()).await.unwrap().await.unwrap();
    }

    async fn next(consumer: &jetstream::consumer::Consumer<pull::Config>) -> Vec<u8> {
        let wait = Duration::from_secs(45);
        let mut batch = consumer.fetch().max_messages(1).expires(wait).messages().await.unwrap();
        let msg = tokio::time::timeout(wait + Duration::from_secs(5), batch.next())
            .await
            .expect("a result in time")
            .expect("a result")
            .unwrap();
        msg.ack().await.unwrap();
        msg.payload.to_vec()
    }

    async fn keygen(&self, wallet: &str) -> KeygenResultEvent {
        let msg = mpcium_api::GenerateKeyMessage {
            wallet_id: wallet.into(),
            signature: Some(self.initiator.sign(wallet.as_bytes()).to_bytes().to_vec()),
            authorizer_signatures: vec![],
        };
        self.publish(subjects::keygen_request_subject(wallet), msg.to_json()).await;
        KeygenResultEvent::from_json(&Self::next(&self.keygen_results).await).unwrap()
    }

    async fn sign(&self, key_type: &str, wallet: &str, tx_id: &str, tx: &[u8]) -> SigningResultEvent {
        let mut msg = SignTxMessage {
            key_type: mpcium_api::KeyType::from_wire(key_type),
            wallet_id: wallet.into(),
            network_internal_code: "test".into(),
            tx_id: tx_id.into(),
            tx: Some(tx.to_vec()),
            signature: None,
            derivation_path: None,
            authorizer_signatures: vec![],
        };
        let signed = mpcium_api::canonical::sign_signed_bytes(&msg, SigningMode::Compatible);
        msg.signature = Some(self.initiator.sign(&signed).to_bytes().to_vec());
        self.publish(subjects::signing_request_subject(tx_id), msg.to_json()).await;
        SigningResultEvent::from_json(&Self::next(&self.sign_results).await).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_over_tls_with_their_own_users_make_a_key_and_sign_for_a_client_user() {
    init_logging();
    let server = SecureServer::start();
    let keys = Keys::new();
    let nodes = start_cluster(&server, &keys).await;
    let client = WireClient::connect(&server, keys.initiator.clone()).await;

    let kg = client.keygen("wallet-tls").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");

    let digest = [0x42u8; 32];
    let ev = client.sign("secp256k1", "wallet-tls", "tx-tls-ecdsa", &digest).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    {
        use k256::ecdsa::signature::hazmat::PrehashVerifier;
        let mut sec1 = vec![4u8];
        sec1.extend_from_slice(kg.ecdsa_pub_key.as_deref().unwrap());
        let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
        let r: [u8; 32] = ev.r.clone().unwrap().try_into().unwrap();
        let s: [u8; 32] = ev.s.clone().unwrap().try_into().unwrap();
        vk.verify_prehash(&digest, &k256::ecdsa::Signature::from_scalars(r, s).unwrap()).unwrap();
    }

    let message = b"over tls";
    let ev = client.sign("ed25519", "wallet-tls", "tx-tls-eddsa", message).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&kg.eddsa_pub_key.clone().unwrap().try_into().unwrap())
        .unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&ev.signature.clone().unwrap().try_into().unwrap());
    vk.verify_strict(message, &sig).unwrap();

    let log = server.server.log();
    assert!(
        !log.contains("Violation"),
        "the shipped permissions refused something the cluster needs:\n{log}"
    );
    for node in nodes {
        node.shutdown().await;
    }
}

/// Start node0 with `options` and expect a refusal naming `expected` in time.
async fn expect_refused(server: &SecureServer, options: async_nats::ConnectOptions, expected: &str) {
    let keys = Keys::new();
    let params = keys.params(0, server.url(), options);
    let outcome =
        tokio::time::timeout(Duration::from_secs(20), start(params)).await.expect("a prompt answer");
    match outcome {
        Err(e @ StartError::NatsRefused { .. }) => {
            let text = e.to_string();
            assert!(text.to_lowercase().contains(expected), "unclear refusal: {text}");
        }
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("the node was let in"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_certificate_from_another_ca_is_refused() {
    init_logging();
    let server = SecureServer::start();
    let (name, _) = NODES[0];
    let options = server.options(&server.pki.foreign_client, name, &server.passwords[name]);
    // rustls reports the server's TLS alert: the server does not know the certificate's CA.
    expect_refused(&server, options, "unknownca").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_wrong_password_or_user_is_refused() {
    init_logging();
    let server = SecureServer::start();
    let (name, _) = NODES[0];
    let cert = server.pki.client(name);
    expect_refused(&server, server.options(&cert, name, "not-the-password"), "authorization violation").await;
    expect_refused(
        &server,
        server.options(&cert, "stranger", &server.passwords[name]),
        "authorization violation",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_client_user_cannot_reach_node_inboxes_or_the_registry_and_nodes_cannot_impersonate() {
    init_logging();
    let server = SecureServer::start();
    let keys = Keys::new();
    let nodes = start_cluster(&server, &keys).await;
    let (_, node0_id) = NODES[0];

    // The client user publishing into node0's inbox: the server refuses and says so.
    let errors = ServerErrors::default();
    let nats = errors
        .attach(server.user_options(CLIENT).custom_inbox_prefix(format!("_INBOX_{CLIENT}")))
        .connect(server.url())
        .await
        .unwrap();
    let inbox = mpcium_node::transport::node_subject(node0_id);
    nats.publish(inbox.clone(), "forged".into()).await.unwrap();
    nats.flush().await.unwrap();
    errors.wait_for(&format!("publish to \"{inbox}\"")).await;

    // It cannot open the readiness bucket, nor write node0's readiness key directly.
    let js = jetstream::new(nats.clone());
    assert!(js.get_key_value("mpc_ready").await.is_err(), "the client could open mpc_ready");
    let ready_key = format!("$KV.mpc_ready.{node0_id}");
    let put = js.publish(ready_key.clone(), "forged".into()).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(10), put).await.map_or(true, |ack| ack.is_err()));
    errors.wait_for(&format!("publish to \"{ready_key}\"")).await;
    // ... nor read the key info (a direct get).
    let get = "$JS.API.DIRECT.GET.KV_mpc_keyinfo.$KV.mpc_keyinfo.x".to_owned();
    let _ = tokio::time::timeout(Duration::from_secs(5), nats.request(get.clone(), "".into())).await;
    errors.wait_for(&format!("publish to \"{get}\"")).await;

    // node1's user can neither listen on node0's inbox nor write node0's readiness.
    let (node1, _) = NODES[1];
    let node1_errors = ServerErrors::default();
    let node1_nats = node1_errors
        .attach(server.user_options(node1).custom_inbox_prefix(mpcium_node::daemon::inbox_prefix(NODES[1].1)))
        .connect(server.url())
        .await
        .unwrap();
    let _sub = node1_nats.subscribe(inbox.clone()).await.unwrap();
    node1_nats.flush().await.unwrap();
    node1_errors.wait_for(&format!("subscription to \"{inbox}\"")).await;
    let node1_js = jetstream::new(node1_nats.clone());
    let put = node1_js.publish(ready_key.clone(), "forged".into()).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(10), put).await.map_or(true, |ack| ack.is_err()));
    node1_errors.wait_for(&format!("publish to \"{ready_key}\"")).await;

    // node0 is still ready everywhere (its record was not overwritten).
    tokio::time::sleep(Duration::from_secs(2)).await;
    for node in &nodes {
        assert!(node.directory().ready().contains(&node0_id.to_string()), "node0 dropped out");
    }
    for node in nodes {
        node.shutdown().await;
    }
}

/// `nats.*` of a node config as the node daemon reads it.
fn nats_config(
    url: String,
    user: Option<&str>,
    password: Option<&str>,
    cert: &CertFiles,
    ca: &std::path::Path,
) -> mpcium_config::NatsConfig {
    mpcium_config::NatsConfig {
        url,
        replicas: 1,
        username: user.map(str::to_owned),
        password: password.map(|p| mpcium_config::SecretString::new(p.to_owned())),
        tls: mpcium_config::NatsTlsConfig {
            client_cert: cert.cert.clone(),
            client_key: cert.key.clone(),
            ca_cert: ca.to_path_buf(),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_config_maps_to_tls_with_client_certificate_and_user() {
    use mpcium_config::Environment;
    use mpcium_node::daemon::{NatsOptionsError, nats_options};
    init_logging();
    let server = SecureServer::start();
    let (name, _) = NODES[0];
    let cert = server.pki.client(name);
    let password = server.passwords[name].clone();

    // Production: TLS verified with ca_cert, client certificate, user and password: let in.
    let cfg = nats_config(server.url(), Some(name), Some(&password), &cert, &server.pki.ca_cert);
    let client = nats_options(&cfg, Environment::Production).unwrap().connect(server.url()).await.unwrap();
    assert!(client.server_info().tls_required);
    client.flush().await.unwrap();

    // Development ignores nats.username and nats.tls.*: a plain connection, which this server
    // turns away.
    let plain = nats_options(&cfg, Environment::Development).unwrap().connect(server.url()).await;
    assert!(plain.is_err(), "a plain connection reached the TLS server");

    // Half credentials and missing TLS files are named before any connection.
    let half = nats_config(server.url(), Some(name), None, &cert, &server.pki.ca_cert);
    assert!(matches!(nats_options(&half, Environment::Production), Err(NatsOptionsError::HalfCredentials)));
    let missing = server.pki.dir().join("no-such-ca.pem");
    let cfg = nats_config(server.url(), Some(name), Some(&password), &cert, &missing);
    let err = nats_options(&cfg, Environment::Production).unwrap_err();
    assert!(err.to_string().starts_with("nats.tls.ca_cert: cannot read"), "{err}");
}
