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

use async_nats::jetstream;
use ed25519_dalek::SigningKey;
use mpcium_api::{KeygenResultEvent, SigningResultEvent};
use mpcium_node::daemon::{NodeParams, RunningNode, StartError, start};
use mpcium_store::{Store, StoreOptions};
use mpcium_testkit::node::deploy::{
    DEPLOY_CLIENT as CLIENT, DEPLOY_NODES as NODES, NATS_SERVER_CONF, replace_checked, with_test_certificates,
};
use mpcium_testkit::node::{
    STORE_PASSWORD, TestNode, WireClient, ecdsa_verify, eddsa_verify, init_logging, wait_for, wait_until,
};
use mpcium_testkit::pki::{CertFiles, TestPki};
use mpcium_testkit::{NatsServer, ServerSetup};
use rand_core::{OsRng, RngCore};

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
    let f = "deploy/nats-server.conf";
    let text = replace_checked(NATS_SERVER_CONF, "listen: 0.0.0.0:4222\n", "", f);
    let text = replace_checked(&text, "jetstream { store_dir: \"/var/lib/nats/jetstream\" }\n", "", f);
    with_test_certificates(&text, pki)
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
        let peers = NODES
            .iter()
            .map(|(_, id)| id.to_string())
            .zip(self.nodes.iter().map(|k| k.verifying_key()))
            .collect();
        let store = Store::open_or_create(
            self.dir.path().join(format!("{}.db", NODES[i].0)),
            STORE_PASSWORD,
            &StoreOptions::insecure_for_tests(),
        )
        .unwrap();
        let mut params = TestNode {
            id: NODES[i].1,
            name: NODES[i].0,
            identity: &self.nodes[i],
            peers,
            store,
            threshold: 1,
            chain_code: self.chain_code,
            initiator: &self.initiator.verifying_key(),
            nats_url: url,
        }
        .params();
        params.nats_options = nats_options;
        params
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
async fn backend_client(server: &SecureServer, initiator: SigningKey) -> WireClient {
    let nats = server
        .user_options(CLIENT)
        .custom_inbox_prefix(format!("_INBOX_{CLIENT}"))
        .connect(server.url())
        .await
        .unwrap();
    WireClient::over(nats, CLIENT, initiator).await
}

/// How long a result may take here.
const RESULT_WAIT: Duration = Duration::from_secs(45);

async fn keygen(client: &WireClient, wallet: &str) -> KeygenResultEvent {
    client.send_keygen(wallet).await;
    client.try_next_keygen_result(RESULT_WAIT).await.expect("a keygen result in time")
}

async fn sign(
    client: &WireClient,
    key_type: &str,
    wallet: &str,
    tx_id: &str,
    tx: &[u8],
) -> SigningResultEvent {
    client.send_sign(&client.sign_msg(key_type, wallet, tx_id, tx, None)).await;
    client.try_next_sign_result(RESULT_WAIT).await.expect("a signing result in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_over_tls_with_their_own_users_make_a_key_and_sign_for_a_client_user() {
    init_logging();
    let server = SecureServer::start();
    let keys = Keys::new();
    let nodes = start_cluster(&server, &keys).await;
    let client = backend_client(&server, keys.initiator.clone()).await;

    let kg = keygen(&client, "wallet-tls").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");

    let digest = [0x42u8; 32];
    let ev = sign(&client, "secp256k1", "wallet-tls", "tx-tls-ecdsa", &digest).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    ecdsa_verify(kg.ecdsa_pub_key.as_deref().unwrap(), &digest, &ev);

    let message = b"over tls";
    let ev = sign(&client, "ed25519", "wallet-tls", "tx-tls-eddsa", message).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    eddsa_verify(kg.eddsa_pub_key.as_deref().unwrap(), message, &ev);

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
