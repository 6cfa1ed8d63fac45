//! The client against a real nats-server: exact request bytes and headers, initiator and
//! authorizer signatures, result routing (scoped by client ID), timeouts, NAK of bad events.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ed25519_dalek::Signer as _;
use mpcium_api::subjects;
use mpcium_api::{
    Algorithm, AuthorizationPolicy, EcdsaPublicKeyXY, ErrorCode, GenerateKeyMessage, KeyType,
    KeygenResultEvent, PublicKey, ResharingMessage, ResharingResultEvent, SignTxMessage, SigningMode,
    SigningResultEvent, verify_initiator,
};
use mpcium_client::{
    Authorizer, ClientError, ClientOptions, LocalSigner, Operation, ReshareRequest, SignRequest, Signer,
};

fn keygen_success(wallet: &str) -> KeygenResultEvent {
    KeygenResultEvent::success(wallet, &EcdsaPublicKeyXY([3; 64]), &[4; 32])
}

#[tokio::test]
async fn keygen_request_is_go_exact_and_its_result_reaches_the_waiter() {
    let (server, nats) = server().await;
    let mut requests = nats.subscribe("mpc.keygen_request.>").await.unwrap();
    let signer = ed25519_signer();
    let options = ClientOptions::new(signer.clone()).client_id(client_id("svc-a"));
    let client = client(&server, options).await;

    let task = tokio::spawn({
        let client = client.clone();
        async move { client.create_wallet("wallet-1").await }
    });
    let request = next(&mut requests).await;
    assert_eq!(request.subject.as_str(), "mpc.keygen_request.wallet-1");
    assert_eq!(header(&request, "ClientID"), Some("svc-a"));
    let expected_sig = ed25519_key().sign(b"wallet-1").to_bytes();
    let expected = format!(r#"{{"wallet_id":"wallet-1","signature":"{}"}}"#, b64(&expected_sig));
    assert_eq!(std::str::from_utf8(&request.payload).unwrap(), expected);
    let key = PublicKey::parse(Algorithm::Ed25519, &signer.public_key_hex().unwrap()).unwrap();
    let decoded = GenerateKeyMessage::from_json(&request.payload).unwrap();
    verify_initiator(&decoded, &key, SigningMode::Compatible).unwrap();

    // Stored in the request stream, as a node's pull consumer will see it.
    let js = async_nats::jetstream::new(nats.clone());
    let stored = js
        .get_stream("mpc-keygen")
        .await
        .unwrap()
        .get_last_raw_message_by_subject("mpc.keygen_request.wallet-1")
        .await
        .unwrap();
    assert_eq!(stored.payload.as_ref(), expected.as_bytes());

    let event = keygen_success("wallet-1");
    let subject = subjects::keygen_result_subject(client_id("svc-a").as_ref(), "wallet-1");
    assert_eq!(subject, "mpc.mpc_keygen_result.svc-a.wallet-1");
    let msg_id = subjects::keygen_idempotency_key(client_id("svc-a").as_ref(), "wallet-1", Some("s1"));
    publish_result(&nats, &subject, &msg_id, event.to_json()).await;
    let got = tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
    assert_eq!(got, event);
}

#[tokio::test]
async fn streams_and_scoped_consumers_have_the_originals_names_and_filters() {
    let (server, nats) = server().await;
    let _client = client(&server, ClientOptions::new(ed25519_signer()).client_id(client_id("svc-a"))).await;
    let js = async_nats::jetstream::new(nats.clone());
    let mut mpc = js.get_stream("mpc").await.unwrap();
    let info = mpc.info().await.unwrap().config.clone();
    assert_eq!(info.retention, async_nats::jetstream::stream::RetentionPolicy::WorkQueue);
    assert_eq!(info.max_bytes, 100_000_000);
    let mut keygen = js.get_stream("mpc-keygen").await.unwrap();
    let keygen_info = keygen.info().await.unwrap().config.clone();
    assert_eq!(keygen_info.subjects, vec!["mpc.keygen_request.*".to_string()]);
    assert_eq!(keygen_info.max_age, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(keygen_info.retention, async_nats::jetstream::stream::RetentionPolicy::Limits);
    for (name, filter) in [
        ("mpc_keygen_result_svc_a", "mpc.mpc_keygen_result.svc-a.*"),
        ("mpc_signing_result_svc_a", "mpc.mpc_signing_result.svc-a.complete"),
        ("mpc_reshare_result_svc_a", "mpc.mpc_reshare_result.svc-a.*"),
    ] {
        let info = mpc.consumer_info(name).await.unwrap();
        assert_eq!(info.config.filter_subject, filter, "{name}");
        assert_eq!(info.config.max_deliver, 3);
        assert_eq!(info.config.max_ack_pending, 1000);
    }
    // A second client on the same server (streams exist now) sets up fine too.
    let _unscoped = client(&server, ClientOptions::new(ed25519_signer())).await;
    assert_eq!(
        mpc.consumer_info("mpc_keygen_result").await.unwrap().config.filter_subject,
        "mpc.mpc_keygen_result.*"
    );
}

#[tokio::test]
async fn sign_request_is_go_exact_without_client_id_and_returns_the_signature() {
    let (server, nats) = server().await;
    let mut requests = nats.subscribe("mpc.signing_request.>").await.unwrap();
    let signer = ed25519_signer();
    let client = client(&server, ClientOptions::new(signer.clone())).await;
    let digest = [0xabu8; 32];
    let request = SignRequest::new(KeyType::Secp256k1, "w1", "tx-1", digest.to_vec())
        .network_internal_code("ETH")
        .derivation_path(vec![44, 60, 0, 0, 0]);
    let task = tokio::spawn({
        let client = client.clone();
        async move { client.sign(&request).await }
    });
    let published = next(&mut requests).await;
    assert_eq!(published.subject.as_str(), "mpc.signing_request.tx-1");
    assert_eq!(header(&published, "ClientID"), None);
    let raw = format!(
        r#"{{"key_type":"secp256k1","wallet_id":"w1","network_internal_code":"ETH","tx_id":"tx-1","tx":"{}"}}"#,
        b64(&digest)
    );
    let sig = ed25519_key().sign(raw.as_bytes()).to_bytes();
    let expected = format!(
        r#"{{"key_type":"secp256k1","wallet_id":"w1","network_internal_code":"ETH","tx_id":"tx-1","tx":"{}","signature":"{}","derivation_path":[44,60,0,0,0]}}"#,
        b64(&digest),
        b64(&sig)
    );
    assert_eq!(std::str::from_utf8(&published.payload).unwrap(), expected);
    let key = PublicKey::parse(Algorithm::Ed25519, &signer.public_key_hex().unwrap()).unwrap();
    verify_initiator(&SignTxMessage::from_json(&published.payload).unwrap(), &key, SigningMode::Compatible)
        .unwrap();

    let event = SigningResultEvent::ecdsa_success("w1", "tx-1", "ETH", &[1; 32], &[2; 32], 1);
    publish_result(
        &nats,
        "mpc.mpc_signing_result.complete",
        "mpc.mpc_signing_result.tx-1:s",
        event.to_json(),
    )
    .await;
    let got = tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
    assert_eq!(got, event);
}

#[tokio::test]
async fn error_results_are_typed_errors_carrying_the_error_code() {
    let (server, nats) = server().await;
    let mut requests = nats.subscribe("mpc.signing_request.>").await.unwrap();
    let client = client(&server, ClientOptions::new(ed25519_signer()).client_id(client_id("svc-e"))).await;
    let request = SignRequest::new(KeyType::Ed25519, "missing-wallet", "tx-e", b"hello".to_vec());
    let task = tokio::spawn({
        let client = client.clone();
        async move { client.sign(&request).await }
    });
    let published = next(&mut requests).await;
    assert_eq!(published.subject.as_str(), "mpc.signing_request.tx-e");
    assert_eq!(header(&published, "ClientID"), Some("svc-e"));
    let event = SigningResultEvent::max_delivery_exceeded("missing-wallet", "tx-e", "");
    publish_result(&nats, "mpc.mpc_signing_result.svc-e.complete", "id-e", event.to_json()).await;
    let err = tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap_err();
    assert_eq!(err.error_code(), Some(&ErrorCode::MaxDeliveryAttempts));
    match err {
        ClientError::Remote(failure) => {
            assert_eq!(failure.operation, Operation::Sign);
            assert_eq!(failure.id, "tx-e");
            assert!(failure.is_timeout);
            assert_eq!(failure.reason, "Signing failed: maximum delivery attempts exceeded");
        }
        other => panic!("expected a remote failure, got {other:?}"),
    }
}

#[tokio::test]
async fn reshare_goes_to_core_mpc_reshare_and_is_routed_by_session_token() {
    let (server, nats) = server().await;
    let mut requests = nats.subscribe("mpc:reshare").await.unwrap();
    let signer = ed25519_signer();
    let client = client(&server, ClientOptions::new(signer.clone()).client_id(client_id("svc-r"))).await;
    let request =
        ReshareRequest::new("w1", KeyType::Ed25519, 1, vec!["node0".into(), "node1".into(), "node2".into()])
            .unwrap();
    let session = request.session_id.clone();
    assert_eq!(session.len(), 36);
    let task = tokio::spawn({
        let client = client.clone();
        async move { client.reshare(&request).await }
    });
    let published = next(&mut requests).await;
    assert_eq!(header(&published, "ClientID"), Some("svc-r"));
    let raw = format!(
        r#"{{"session_id":"{session}","node_ids":["node0","node1","node2"],"new_threshold":1,"key_type":"ed25519","wallet_id":"w1"}}"#
    );
    let sig = ed25519_key().sign(raw.as_bytes()).to_bytes();
    let expected = format!("{},\"signature\":\"{}\"}}", raw.trim_end_matches('}'), b64(&sig));
    assert_eq!(std::str::from_utf8(&published.payload).unwrap(), expected);
    let key = PublicKey::parse(Algorithm::Ed25519, &signer.public_key_hex().unwrap()).unwrap();
    verify_initiator(
        &ResharingMessage::from_json(&published.payload).unwrap(),
        &key,
        SigningMode::Compatible,
    )
    .unwrap();

    // A result for another session first: it must not satisfy this request.
    let unrelated = ResharingResultEvent::success("w1", 1, KeyType::Ed25519, &[9; 32]);
    publish_result(&nats, "mpc.mpc_reshare_result.svc-r.other-session", "r0", unrelated.to_json()).await;
    let event = ResharingResultEvent::success("w1", 1, KeyType::Ed25519, &[5; 32]);
    let subject = subjects::reshare_result_subject(client_id("svc-r").as_ref(), &session);
    publish_result(&nats, &subject, "r1", event.to_json()).await;
    let got = tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
    assert_eq!(got, event);
}

#[tokio::test]
async fn two_client_ids_each_get_only_their_own_results() {
    let (server, nats) = server().await;
    let mut requests = nats.subscribe("mpc.keygen_request.>").await.unwrap();
    let a = client(&server, ClientOptions::new(ed25519_signer()).client_id(client_id("svc-a"))).await;
    let b = client(&server, ClientOptions::new(ed25519_signer()).client_id(client_id("svc-b"))).await;
    let seen_a = Arc::new(Mutex::new(Vec::new()));
    let seen_b = Arc::new(Mutex::new(Vec::new()));
    let (sa, sb) = (seen_a.clone(), seen_b.clone());
    a.on_wallet_creation_result(move |e| sa.lock().unwrap().push(e.wallet_id));
    b.on_wallet_creation_result(move |e| sb.lock().unwrap().push(e.wallet_id));

    // Both clients wait for a wallet with the SAME id: only the client ID tells them apart.
    let ta = tokio::spawn({
        let a = a.clone();
        async move { a.create_wallet("shared-wallet").await }
    });
    let tb = tokio::spawn({
        let b = b.clone();
        async move { b.create_wallet("shared-wallet").await }
    });
    let mut ids = vec![
        header(&next(&mut requests).await, "ClientID").unwrap().to_owned(),
        header(&next(&mut requests).await, "ClientID").unwrap().to_owned(),
    ];
    ids.sort();
    assert_eq!(ids, ["svc-a", "svc-b"]);

    let for_b = KeygenResultEvent::error("shared-wallet", ErrorCode::KeyAlreadyExists, "exists");
    publish_result(&nats, "mpc.mpc_keygen_result.svc-b.shared-wallet", "kb", for_b.to_json()).await;
    let for_a = keygen_success("shared-wallet");
    publish_result(&nats, "mpc.mpc_keygen_result.svc-a.shared-wallet", "ka", for_a.to_json()).await;
    let got_a = tokio::time::timeout(Duration::from_secs(10), ta).await.unwrap().unwrap().unwrap();
    assert_eq!(got_a, for_a);
    let got_b = tokio::time::timeout(Duration::from_secs(10), tb).await.unwrap().unwrap().unwrap_err();
    assert_eq!(got_b.error_code(), Some(&ErrorCode::KeyAlreadyExists));

    // Unclaimed events go to the callback of their own client only.
    publish_result(&nats, "mpc.mpc_keygen_result.svc-a.extra-a", "ea", keygen_success("extra-a").to_json())
        .await;
    publish_result(&nats, "mpc.mpc_keygen_result.svc-b.extra-b", "eb", keygen_success("extra-b").to_json())
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while (seen_a.lock().unwrap().is_empty() || seen_b.lock().unwrap().is_empty())
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Once each client's consumer has nothing left to deliver and nothing unacknowledged, every
    // callback it will ever make for these events was made (a client acknowledges after routing).
    until_consumer_settled(&nats, "mpc_keygen_result_svc_a").await;
    until_consumer_settled(&nats, "mpc_keygen_result_svc_b").await;
    assert_eq!(*seen_a.lock().unwrap(), ["extra-a"]);
    assert_eq!(*seen_b.lock().unwrap(), ["extra-b"]);
}

/// Waits (up to 10 s) until the result consumer `name` has no message left to deliver and none
/// unacknowledged.
async fn until_consumer_settled(nats: &async_nats::Client, name: &str) {
    let mpc = async_nats::jetstream::new(nats.clone()).get_stream("mpc").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = mpc.consumer_info(name).await.unwrap();
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name} never settled: {info:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn timeout_fires_frees_the_id_and_the_late_result_reaches_the_callback() {
    let (server, nats) = server().await;
    let client = client(&server, ClientOptions::new(ed25519_signer()).client_id(client_id("svc-t"))).await;
    let late = Arc::new(Mutex::new(Vec::new()));
    let sink = late.clone();
    client.on_wallet_creation_result(move |e| sink.lock().unwrap().push(e));
    let start = std::time::Instant::now();
    let err = client.create_wallet_within("slow-wallet", Duration::from_millis(300)).await.unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(300));
    match &err {
        ClientError::Timeout { operation, id, after } => {
            assert_eq!(*operation, Operation::Keygen);
            assert_eq!(id, "slow-wallet");
            assert_eq!(*after, Duration::from_millis(300));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // The ID is free again (not "already in flight").
    assert!(matches!(
        client.create_wallet_within("slow-wallet", Duration::from_millis(100)).await,
        Err(ClientError::Timeout { .. })
    ));
    let event = keygen_success("slow-wallet");
    publish_result(&nats, "mpc.mpc_keygen_result.svc-t.slow-wallet", "late", event.to_json()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while late.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(*late.lock().unwrap(), [event]);
}

#[tokio::test]
async fn p256_initiator_signs_once_and_authorizers_sign_that_signature() {
    let (server, nats) = server().await;
    let mut requests = nats.subscribe("mpc.signing_request.>").await.unwrap();
    let initiator = Arc::new(LocalSigner::generate(Algorithm::P256).unwrap());
    let approver = Arc::new(LocalSigner::generate(Algorithm::Ed25519).unwrap());
    let auditor = Arc::new(LocalSigner::generate(Algorithm::P256).unwrap());
    let options =
        ClientOptions::new(initiator.clone()).client_id(client_id("svc-auth")).with_authorizers(vec![
            Authorizer { id: "approver".into(), signer: approver.clone() },
            Authorizer { id: "auditor".into(), signer: auditor.clone() },
        ]);
    let client = client(&server, options).await;
    let request = SignRequest::new(KeyType::Ed25519, "w1", "tx-auth", b"solana message".to_vec())
        .timeout(Duration::from_millis(200));
    let _pending = tokio::spawn(async move { client.sign(&request).await });
    let published = next(&mut requests).await;
    let msg = SignTxMessage::from_json(&published.payload).unwrap();
    assert_eq!(msg.authorizer_signatures.len(), 2);
    let initiator_key = PublicKey::parse(Algorithm::P256, &initiator.public_key_hex().unwrap()).unwrap();
    verify_initiator(&msg, &initiator_key, SigningMode::Compatible).unwrap();
    let policy = AuthorizationPolicy {
        enabled: true,
        required: vec!["approver".into(), "auditor".into()],
        keys: BTreeMap::from([
            (
                "approver".to_string(),
                PublicKey::parse(Algorithm::Ed25519, &approver.public_key_hex().unwrap()).unwrap(),
            ),
            (
                "auditor".to_string(),
                PublicKey::parse(Algorithm::P256, &auditor.public_key_hex().unwrap()).unwrap(),
            ),
        ]),
        rules: vec![],
    };
    // The authorizer payload embeds the initiator signature that was published: a re-signing
    // client (randomised P-256) would fail here.
    policy.authorize(&msg, SigningMode::Compatible).unwrap();
}

#[tokio::test]
async fn strict_mode_signs_the_derivation_path_too() {
    let (server, nats) = server().await;
    let mut requests = nats.subscribe("mpc.signing_request.>").await.unwrap();
    let signer = ed25519_signer();
    let options = ClientOptions::new(signer.clone()).signing_mode(SigningMode::Strict);
    let client = client(&server, options).await;
    let request = SignRequest::new(KeyType::Secp256k1, "w1", "tx-strict", vec![1; 32])
        .derivation_path(vec![44, 60, 0, 0, 7])
        .timeout(Duration::from_millis(200));
    let _pending = tokio::spawn(async move { client.sign(&request).await });
    let msg = SignTxMessage::from_json(&next(&mut requests).await.payload).unwrap();
    let key = PublicKey::parse(Algorithm::Ed25519, &signer.public_key_hex().unwrap()).unwrap();
    verify_initiator(&msg, &key, SigningMode::Strict).unwrap();
    assert!(verify_initiator(&msg, &key, SigningMode::Compatible).is_err());
}

#[tokio::test]
async fn invalid_requests_are_refused_before_publishing() {
    let (server, _nats) = server().await;
    let client = client(&server, ClientOptions::new(ed25519_signer())).await;
    assert!(matches!(client.create_wallet("a.b").await, Err(ClientError::Invalid(_))));
    let short_digest = SignRequest::new(KeyType::Secp256k1, "w1", "tx", vec![1; 31]);
    assert!(matches!(client.sign(&short_digest).await, Err(ClientError::Invalid(_))));
    let bad_threshold = ReshareRequest::new("w1", KeyType::Ed25519, 2, vec!["a".into(), "b".into()]).unwrap();
    assert!(matches!(client.reshare(&bad_threshold).await, Err(ClientError::Invalid(_))));
}

#[tokio::test]
async fn undecodable_result_events_are_naked_and_the_consumer_keeps_going() {
    let (server, nats) = server().await;
    let mut requests = nats.subscribe("mpc.keygen_request.>").await.unwrap();
    let client = client(&server, ClientOptions::new(ed25519_signer()).client_id(client_id("svc-n"))).await;
    publish_result(&nats, "mpc.mpc_keygen_result.svc-n.junk", "junk", "not json".to_string()).await;
    let js = async_nats::jetstream::new(nats.clone());
    let mpc = js.get_stream("mpc").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = mpc.consumer_info("mpc_keygen_result_svc_n").await.unwrap();
        // NAK → immediate redelivery, up to MaxDeliver = 3.
        if info.num_redelivered >= 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never redelivered: {info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let task = tokio::spawn({
        let client = client.clone();
        async move { client.create_wallet("after-junk").await }
    });
    next(&mut requests).await;
    let event = keygen_success("after-junk");
    publish_result(&nats, "mpc.mpc_keygen_result.svc-n.after-junk", "ok", event.to_json()).await;
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap(), event);
}

#[tokio::test]
async fn callbacks_from_options_catch_results_waiting_in_the_stream_at_startup() {
    let (server, nats) = server().await;
    // A first client creates the scoped consumers, then goes away (a process restart).
    drop(client(&server, ClientOptions::new(ed25519_signer()).client_id(client_id("svc-restart"))).await);
    let event = SigningResultEvent::eddsa_success("w1", "tx-old", "SOL", &[8; 64]);
    publish_result(&nats, "mpc.mpc_signing_result.svc-restart.complete", "old", event.to_json()).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let options = ClientOptions::new(ed25519_signer())
        .client_id(client_id("svc-restart"))
        .on_sign_result(move |e| sink.lock().unwrap().push(e));
    let _client = client(&server, options).await;
    // Normally immediate; if the old client's pull request was still open on the server, the
    // event is redelivered after AckWait (30 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while seen.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(*seen.lock().unwrap(), [event]);
}

#[tokio::test]
async fn a_declared_value_is_signed_and_approved_with_the_request() {
    let (server, nats) = server().await;
    let mut requests = nats.subscribe("mpc.signing_request.>").await.unwrap();
    let signer = ed25519_signer();
    let approver = Arc::new(LocalSigner::generate(Algorithm::Ed25519).unwrap());
    let options = ClientOptions::new(signer.clone())
        .with_authorizers(vec![Authorizer { id: "approver1".into(), signer: approver.clone() }]);
    let client = client(&server, options).await;
    let request = SignRequest::new(KeyType::Secp256k1, "w1", "tx-value", vec![1; 32])
        .network_internal_code("BTC")
        .value("BTC", "2000000")
        .timeout(Duration::from_millis(200));
    let _pending = tokio::spawn(async move { client.sign(&request).await });
    let published = next(&mut requests).await;
    let req = mpcium_api::SignTxRequest::from_json(&published.payload).unwrap();
    assert_eq!((req.asset.as_deref(), req.amount.as_deref()), (Some("BTC"), Some("2000000")));
    // The initiator signed the seven fields, not the original's five.
    let key = PublicKey::parse(Algorithm::Ed25519, &signer.public_key_hex().unwrap()).unwrap();
    verify_initiator(&req, &key, SigningMode::Compatible).unwrap();
    assert!(verify_initiator(&req.message, &key, SigningMode::Compatible).is_err());
    // The approver signed the payload over those bytes: a rule that needs it is met.
    let policy = AuthorizationPolicy {
        keys: BTreeMap::from([(
            "approver1".to_string(),
            PublicKey::parse(Algorithm::Ed25519, &approver.public_key_hex().unwrap()).unwrap(),
        )]),
        rules: vec![mpcium_api::ApprovalRule {
            name: "large-btc".into(),
            network_internal_code: None,
            asset: Some("BTC".into()),
            wallet_ids: vec![],
            amount_above: mpcium_api::Amount::parse("1000000").unwrap(),
            require_authorizers: vec!["approver1".into()],
            min_authorizers: 1,
        }],
        ..Default::default()
    };
    assert_eq!(policy.approve(&req, SigningMode::Compatible).unwrap().rules(), ["large-btc"]);

    // Half a value, or a malformed amount, is refused before publishing.
    let (other_server, _nats) = common::server().await;
    let client = common::client(&other_server, ClientOptions::new(ed25519_signer())).await;
    let mut half = SignRequest::new(KeyType::Secp256k1, "w1", "tx-half", vec![1; 32]);
    half.asset = Some("BTC".into());
    assert!(matches!(client.sign(&half).await, Err(ClientError::Invalid(_))));
    let signed_minus = SignRequest::new(KeyType::Secp256k1, "w1", "tx-minus", vec![1; 32]).value("BTC", "-1");
    assert!(matches!(client.sign(&signed_minus).await, Err(ClientError::Invalid(_))));
}

#[tokio::test]
async fn a_taproot_merkle_root_is_sent_and_signed_with_the_request() {
    let (server, nats) = server().await;
    let mut requests = nats.subscribe("mpc.signing_request.>").await.unwrap();
    let signer = ed25519_signer();
    let client = client(&server, ClientOptions::new(signer.clone())).await;
    let request = SignRequest::new(KeyType::Taproot, "w1", "tx-taproot", vec![5; 32])
        .network_internal_code("BTC")
        .taproot_merkle_root([6; 32])
        .timeout(Duration::from_millis(200));
    let _pending = tokio::spawn(async move { client.sign(&request).await });
    let published = next(&mut requests).await;
    let text = std::str::from_utf8(&published.payload).unwrap();
    assert!(text.starts_with(r#"{"key_type":"taproot","#), "{text}");
    assert!(text.contains(&format!(r#""taproot_merkle_root":"{}""#, b64(&[6; 32]))), "{text}");
    let req = mpcium_api::SignTxRequest::from_json(&published.payload).unwrap();
    assert_eq!(req.merkle_root(), Ok(Some([6; 32])));
    // The initiator's signature covers the root: without it (or with another) it does not verify.
    let key = PublicKey::parse(Algorithm::Ed25519, &signer.public_key_hex().unwrap()).unwrap();
    verify_initiator(&req, &key, SigningMode::Compatible).unwrap();
    assert!(verify_initiator(&req.message, &key, SigningMode::Compatible).is_err());
    let mut altered = req.clone();
    altered.taproot_merkle_root = Some(vec![7; 32]);
    assert!(verify_initiator(&altered, &key, SigningMode::Compatible).is_err());

    // A root on another key type is refused before publishing.
    let (other_server, _nats) = common::server().await;
    let client = common::client(&other_server, ClientOptions::new(ed25519_signer())).await;
    let wrong =
        SignRequest::new(KeyType::Secp256k1, "w1", "tx-root", vec![1; 32]).taproot_merkle_root([6; 32]);
    assert!(matches!(client.sign(&wrong).await, Err(ClientError::Invalid(_))));
}
