//! Results a client can trust (insider issue, item 9): every result event carries the
//! signatures of the participants that computed it, and the Rust client with
//! `verify_results` accepts a result only when they vouch for it and the signature verifies.
//! Real nodes on a real nats-server; a malicious coordinator is played by publishing forged
//! events on the result subjects with a real node's identity key (what node0 could do).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use mpcium_api::attestation::{Attestation, Statement};
use mpcium_api::{ClientId, KeyType, KeygenResultEvent, SigningResultEvent, subjects};
use mpcium_client::{
    ClientError, ClientOptions, LocalSigner, MpcClient, ReshareRequest, ResultTrust, SignRequest, TrustError,
};
use mpcium_identity::SignerKey;
use mpcium_testkit::node::{Cluster, ClusterSpec, ecdsa_child};
use rand_core::OsRng;

fn trust(c: &Cluster) -> ResultTrust {
    let nodes: BTreeMap<String, ed25519_dalek::VerifyingKey> =
        c.ids.iter().cloned().zip(c.keys.iter().map(|k| k.verifying_key())).collect();
    ResultTrust::new(nodes, 1)
}

async fn client(c: &Cluster, id: &str) -> MpcClient {
    let signer = LocalSigner::from_key(SignerKey::Ed25519(c.initiator.clone()));
    let options = ClientOptions::new(Arc::new(signer))
        .client_id(ClientId::parse(id).unwrap())
        .timeout(Duration::from_secs(60))
        .verify_results(trust(c));
    MpcClient::connect(&c.server.url(), options).await.unwrap()
}

fn untrusted(result: Result<impl std::fmt::Debug, ClientError>) -> TrustError {
    match result {
        Err(ClientError::Untrusted { reason, .. }) => reason,
        other => panic!("expected an untrusted result, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn results_carry_attestations_the_client_checks_and_forged_results_are_refused() {
    let mut c = Cluster::start(ClusterSpec::new(3, 1)).await;
    let client = client(&c, "att").await;

    // Honest results: attested and accepted.
    let wallet = client.create_wallet("w-att").await.unwrap();
    let nodes: Vec<&str> = wallet.attestations.iter().map(|a| a.node_id.as_str()).collect();
    assert_eq!(nodes, ["node0", "node1", "node2"], "keygen is vouched for by all n");
    let ecdsa_key = wallet.ecdsa_pub_key.clone().unwrap();
    let eddsa_key = wallet.eddsa_pub_key.clone().unwrap();

    let signed =
        client.sign(&SignRequest::new(KeyType::Secp256k1, "w-att", "tx-e", vec![7; 32])).await.unwrap();
    assert_eq!(signed.attestations.len(), 2, "t+1 signers vouch for a signature");
    assert_eq!(signed.verifying_key.as_deref(), Some(ecdsa_key.as_slice()));

    let path = vec![44, 60, 0];
    let child = client
        .sign(
            &SignRequest::new(KeyType::Secp256k1, "w-att", "tx-hd", vec![9; 32])
                .derivation_path(path.clone()),
        )
        .await
        .unwrap();
    assert_eq!(child.verifying_key.unwrap(), ecdsa_child(&ecdsa_key, &c.chain_code, &path));

    let ed = client
        .sign(
            &SignRequest::new(KeyType::Ed25519, "w-att", "tx-ed", b"hello".to_vec()).derivation_path(vec![1]),
        )
        .await
        .unwrap();
    assert_ne!(ed.verifying_key.as_deref(), Some(eddsa_key.as_slice()), "the child key, not the root");

    let reshare = ReshareRequest::new("w-att", KeyType::Ed25519, 1, c.ids.clone()).unwrap();
    let reshared = client.reshare(&reshare).await.unwrap();
    assert_eq!(reshared.attestations.len(), 3, "the whole new committee vouches for a reshare");

    // From here node0 is the malicious coordinator: the honest nodes are gone, and what it
    // publishes carries only what it can sign itself.
    for i in 0..3 {
        c.stop_node(i).await;
    }
    let evil = c.keys[0].clone();
    let nats = async_nats::connect(c.server.url()).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let scope = ClientId::parse("att").unwrap();

    // A keygen result with the attacker's own keys, vouched for by node0 alone.
    let attacker = SigningKey::generate(&mut OsRng);
    let forged_keygen = {
        let ecdsa = [5u8; 64];
        let eddsa = attacker.verifying_key().to_bytes();
        let mut ev = KeygenResultEvent::success("w-forged", &mpcium_api::EcdsaPublicKeyXY(ecdsa), &eddsa);
        let statement = Statement::Keygen {
            wallet_id: "w-forged",
            ecdsa_pub_key: &ecdsa,
            eddsa_pub_key: &eddsa,
            taproot_pub_key: None,
        };
        ev.attestations = vec![Attestation::new("node0", &evil.sign(&statement.to_bytes()).to_bytes())];
        ev
    };
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move { client.create_wallet_within("w-forged", Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subject = subjects::keygen_result_subject(scope.as_ref(), "w-forged");
    js.publish(subject, forged_keygen.to_json().into()).await.unwrap().await.unwrap();
    match untrusted(waiting.await.unwrap()) {
        TrustError::Attestation(mpcium_api::AttestationError::Missing(missing)) => {
            assert_eq!(missing, ["node1", "node2"])
        }
        other => panic!("unexpected reason {other}"),
    }

    // A signature by the attacker's key, vouched for by node0 alone: t+1 = 2 are needed.
    let tx = b"pay the attacker".to_vec();
    let forged_sig = attacker.sign(&tx).to_bytes();
    let statement = Statement::Signing {
        wallet_id: "w-att",
        tx_id: "tx-forged",
        key_type: "ed25519",
        tx: &tx,
        verifying_key: &attacker.verifying_key().to_bytes(),
        signature: &forged_sig,
    };
    let mut ev = SigningResultEvent::eddsa_success("w-att", "tx-forged", "", &forged_sig);
    ev.verifying_key = Some(attacker.verifying_key().to_bytes().to_vec());
    ev.attestations = vec![Attestation::new("node0", &evil.sign(&statement.to_bytes()).to_bytes())];
    let reason = forge_signing(
        &client,
        &js,
        scope.as_ref(),
        SignRequest::new(KeyType::Ed25519, "w-att", "tx-forged", tx),
        ev,
    )
    .await;
    assert_eq!(
        reason,
        TrustError::Attestation(mpcium_api::AttestationError::TooFew { valid: 1, required: 2 })
    );

    // A genuine, fully attested result replayed as the answer to another request: the
    // signature does not verify for that message.
    let mut replayed = signed.clone();
    replayed.tx_id = "tx-replayed".into();
    let reason = forge_signing(
        &client,
        &js,
        scope.as_ref(),
        SignRequest::new(KeyType::Secp256k1, "w-att", "tx-replayed", vec![8; 32]),
        replayed,
    )
    .await;
    assert_eq!(reason, TrustError::BadSignature);

    // The same result without its attestations (what the original's nodes send).
    let mut bare = signed.clone();
    bare.tx_id = "tx-bare".into();
    bare.attestations.clear();
    let reason = forge_signing(
        &client,
        &js,
        scope.as_ref(),
        SignRequest::new(KeyType::Secp256k1, "w-att", "tx-bare", vec![7; 32]),
        bare,
    )
    .await;
    assert_eq!(
        reason,
        TrustError::Attestation(mpcium_api::AttestationError::TooFew { valid: 0, required: 2 })
    );
}

/// Send `request` and answer it with `forged` on the signing result subject; the reason the
/// client refuses it.
async fn forge_signing(
    client: &MpcClient,
    js: &async_nats::jetstream::Context,
    scope: Option<&ClientId>,
    request: SignRequest,
    forged: SigningResultEvent,
) -> TrustError {
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move { client.sign(&request.timeout(Duration::from_secs(20))).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    js.publish(subjects::signing_result_subject(scope), forged.to_json().into())
        .await
        .unwrap()
        .await
        .unwrap();
    untrusted(waiting.await.unwrap())
}
