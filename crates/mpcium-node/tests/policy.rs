//! Approval policies by value (`policy.rules`, issue #15 part 1) on a real 3-node cluster (t=1):
//! one rule, `large-btc` (network `btc`, asset `BTC`, above 1,000,000, one approval of
//! `approver1`), on every node. Small amounts sign without approval; large ones, and requests
//! that carry no value (the original's clients), need it; a changed amount breaks a signature;
//! and a malicious coordinator (feature `test-malice`: node2 announcing with its own identity)
//! cannot get the honest nodes to sign a request the policy refuses. The audit trail names the
//! rule that applied.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use mpcium_api::{
    ApprovalRule, AuthorizerSignature, ErrorCode, InitiatorMessage as _, KeyType, SignTxMessage,
    SignTxRequest, SigningMode, SigningResultEvent, authorizer_payload,
};
use mpcium_node::audit::{RecordKind, trail};
use mpcium_node::control::{SessionOp, SessionStart};
use mpcium_testkit::node::{Cluster, ClusterSpec, WireClient, ecdsa_verify};

const RULE: &str = "large-btc";
const APPROVER: &str = "approver1";
const ATTACKER: usize = 2;
const HONEST: [usize; 2] = [0, 1];

fn approver_key() -> SigningKey {
    SigningKey::from_bytes(&[0x5a; 32])
}

/// A stranger's key, signing as `approver1`.
fn forged_key() -> SigningKey {
    SigningKey::from_bytes(&[0x66; 32])
}

/// Every node knows `approver1` and enforces `large-btc` (`authorization.enabled` stays off:
/// the rules apply on their own).
async fn cluster() -> Cluster {
    let key = mpcium_api::verify::PublicKey::parse(
        mpcium_api::verify::Algorithm::Ed25519,
        &hex::encode(approver_key().verifying_key().to_bytes()),
    )
    .unwrap();
    let spec = ClusterSpec {
        tweak: Some(Arc::new(move |_, params| {
            let auth = &mut params.service.authorization;
            auth.keys.insert(APPROVER.into(), key.clone());
            auth.rules = vec![ApprovalRule {
                name: RULE.into(),
                network_internal_code: Some("btc".into()),
                asset: Some("BTC".into()),
                wallet_ids: vec![],
                amount_above: mpcium_api::Amount::parse("1000000").unwrap(),
                require_authorizers: vec![APPROVER.into()],
                min_authorizers: 1,
            }];
        })),
        ..ClusterSpec::new(3, 1)
    };
    Cluster::start(spec).await
}

/// A secp256k1 signing request on network `BTC` signed by the initiator, with `value` when
/// given and each of `approvers` (id, key) signing the authorizer payload.
fn request(
    w: &WireClient,
    wallet: &str,
    tx_id: &str,
    value: Option<(&str, &str)>,
    approvers: &[(&str, &SigningKey)],
) -> SignTxRequest {
    let message = SignTxMessage {
        key_type: KeyType::Secp256k1,
        wallet_id: wallet.into(),
        network_internal_code: "BTC".into(),
        tx_id: tx_id.into(),
        tx: Some(digest().to_vec()),
        signature: None,
        derivation_path: None,
        authorizer_signatures: vec![],
    };
    let mut req = match value {
        Some((asset, amount)) => SignTxRequest::with_value(message, asset, amount),
        None => SignTxRequest::new(message),
    };
    sign_as_initiator(w, &mut req);
    approve(&mut req, approvers);
    req
}

fn sign_as_initiator(w: &WireClient, req: &mut SignTxRequest) {
    let raw = req.signed_bytes(SigningMode::Compatible);
    req.message.signature = Some(w.initiator.sign(&raw).to_bytes().to_vec());
}

fn approve(req: &mut SignTxRequest, approvers: &[(&str, &SigningKey)]) {
    let payload = authorizer_payload(&*req, SigningMode::Compatible);
    req.message.authorizer_signatures = approvers
        .iter()
        .map(|(id, key)| AuthorizerSignature {
            authorizer_id: (*id).into(),
            signature: Some(key.sign(&payload).to_bytes().to_vec()),
        })
        .collect();
}

fn digest() -> [u8; 32] {
    [0x42; 32]
}

async fn send(w: &WireClient, req: &SignTxRequest) -> SigningResultEvent {
    w.sign_raw(&req.tx_id, req.to_json().into_bytes()).await
}

fn assert_signed(ev: &SigningResultEvent, ecdsa_pub: &[u8], what: &str) {
    assert_eq!(ev.result_type.as_str(), "success", "{what}: {ev:?}");
    ecdsa_verify(ecdsa_pub, &digest(), ev);
}

fn assert_refused(ev: &SigningResultEvent, code: ErrorCode, needle: &str, what: &str) {
    assert_eq!(ev.result_type.as_str(), "error", "{what}: {ev:?}");
    assert_eq!(ev.error_code.as_ref(), Some(&code), "{what}: {ev:?}");
    assert!(ev.error_reason.contains(needle), "{what}: reason {:?} should name {needle:?}", ev.error_reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_amounts_and_requests_without_a_value_need_the_rules_approvals() {
    let c = cluster().await;
    let w = c.client("policy-suite").await;
    let kg = w.keygen("wallet-p").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let ecdsa_pub = kg.ecdsa_pub_key.unwrap().to_vec();
    let approver = approver_key();

    // At the threshold (not above it): no approval needed.
    let ev = send(&w, &request(&w, "wallet-p", "small", Some(("BTC", "1000000")), &[])).await;
    assert_signed(&ev, &ecdsa_pub, "small amount");
    // Above it, without the approval: refused naming the rule.
    let ev = send(&w, &request(&w, "wallet-p", "large-bare", Some(("BTC", "1000001")), &[])).await;
    assert_refused(&ev, ErrorCode::MissingAuthorizerSignature, RULE, "large amount, no approval");
    // Above it, with the approval (the asset's case does not matter).
    let ev =
        send(&w, &request(&w, "wallet-p", "large-ok", Some(("btc", "1000001")), &[(APPROVER, &approver)]))
            .await;
    assert_signed(&ev, &ecdsa_pub, "large amount, approved");
    // Another asset on the network: the rule does not apply.
    let ev = send(&w, &request(&w, "wallet-p", "other-asset", Some(("USDT", "99999999999")), &[])).await;
    assert_signed(&ev, &ecdsa_pub, "another asset");

    // No value at all (the original's clients): above every threshold of a rule whose network
    // matches.
    let ev = send(&w, &request(&w, "wallet-p", "no-value", None, &[])).await;
    assert_refused(&ev, ErrorCode::MissingAuthorizerSignature, RULE, "no value, no approval");
    let ev = send(&w, &request(&w, "wallet-p", "no-value-ok", None, &[(APPROVER, &approver)])).await;
    assert_signed(&ev, &ecdsa_pub, "no value, approved");

    // Half a value: a validation error naming the missing field.
    let mut half = request(&w, "wallet-p", "half", Some(("BTC", "5")), &[]);
    half.amount = None;
    sign_as_initiator(&w, &mut half);
    let ev = send(&w, &half).await;
    assert_refused(&ev, ErrorCode::MsgValidation, "amount", "asset without amount");

    // The amount changed after signing: the initiator's signature no longer holds.
    let mut tampered =
        request(&w, "wallet-p", "tampered", Some(("BTC", "2000000")), &[(APPROVER, &approver)]);
    tampered.amount = Some("20000000".into());
    let ev = send(&w, &tampered).await;
    assert_refused(&ev, ErrorCode::InvalidInitiatorSignature, "signature", "amount changed after signing");
    // The initiator re-signed another amount than the approver approved.
    let mut resigned =
        request(&w, "wallet-p", "resigned", Some(("BTC", "2000000")), &[(APPROVER, &approver)]);
    resigned.amount = Some("20000000".into());
    sign_as_initiator(&w, &mut resigned);
    let ev = send(&w, &resigned).await;
    assert_refused(&ev, ErrorCode::InvalidAuthorizerSignature, APPROVER, "approval of another amount");
    // An approval by someone else under the approver's id.
    let forged = forged_key();
    let ev =
        send(&w, &request(&w, "wallet-p", "forged", Some(("BTC", "2000000")), &[(APPROVER, &forged)])).await;
    assert_refused(&ev, ErrorCode::InvalidAuthorizerSignature, RULE, "forged approval");

    // The audit trail names the rule: on the request entry and on each signer's session entry.
    let js = async_nats::jetstream::new(async_nats::connect(c.server.url()).await.unwrap());
    let mut entries = Vec::new();
    for _ in 0..200 {
        entries = trail::select(&trail::read_all(&js).await.unwrap(), &trail::Filter::default());
        let sessions = entries
            .iter()
            .filter(|e| e.record.tx_id.as_deref() == Some("large-ok") && e.record.kind == RecordKind::Session)
            .count();
        let request = entries
            .iter()
            .any(|e| e.record.tx_id.as_deref() == Some("large-ok") && e.record.kind == RecordKind::Request);
        if sessions == 2 && request {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let of =
        |tx: &str| entries.iter().filter(move |e| e.record.tx_id.as_deref() == Some(tx)).collect::<Vec<_>>();
    let approved = of("large-ok");
    assert_eq!(approved.len(), 3, "one request and two session entries: {approved:#?}");
    for e in approved {
        assert_eq!(e.record.policy, vec![RULE.to_owned()], "{e:#?}");
    }
    for e in of("small").into_iter().chain(of("other-asset")) {
        assert!(e.record.policy.is_empty(), "no rule applied: {e:#?}");
    }
}

/// A signing announcement by the attacker for `body`, with the two honest nodes as signers
/// (`delivery` makes each announcement a session of its own).
fn sign_start(c: &Cluster, body: &[u8], tx_id: &str, delivery: u32) -> SessionStart {
    let signers = HONEST.iter().map(|i| c.ids[*i].clone()).collect();
    SessionStart::new(SessionOp::Sign, &c.ids[ATTACKER], signers, 1, 1, format!("{tx_id}#{delivery}"))
        .with_request(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_coordinator_that_skips_the_policy_gets_no_signature() {
    let c = cluster().await;
    let attacker = c.node(ATTACKER).transport();
    let w = c.client("policy-insider").await;
    let kg = w.keygen("wallet-i").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let ecdsa_pub = kg.ecdsa_pub_key.unwrap().to_vec();

    // A large amount the initiator signed but nobody approved, announced straight to the honest
    // nodes: each evaluates the rule itself and refuses before any protocol message.
    let bare = request(&w, "wallet-i", "skip-large", Some(("BTC", "5000000")), &[]);
    let outcomes =
        c.announce(attacker, sign_start(&c, bare.to_json().as_bytes(), "skip-large", 1), &HONEST).await;
    // Without the value (dropped by the coordinator): the initiator's signature breaks; a request
    // made without one needs the approval all the same.
    let mut dropped = bare.clone();
    (dropped.asset, dropped.amount) = (None, None);
    let dropped_outcomes =
        c.announce(attacker, sign_start(&c, dropped.to_json().as_bytes(), "skip-large", 2), &HONEST).await;
    let no_value = request(&w, "wallet-i", "skip-none", None, &[]);
    let no_value_outcomes =
        c.announce(attacker, sign_start(&c, no_value.to_json().as_bytes(), "skip-none", 3), &HONEST).await;
    for (what, outcomes, code) in [
        ("large amount", &outcomes, ErrorCode::MissingAuthorizerSignature),
        ("value dropped", &dropped_outcomes, ErrorCode::InvalidInitiatorSignature),
        ("no value", &no_value_outcomes, ErrorCode::MissingAuthorizerSignature),
    ] {
        assert_eq!(outcomes.len(), HONEST.len(), "{what}: {outcomes:?}");
        for (node, (ok, got, reason)) in outcomes {
            assert!(!ok, "{what}: {node} took part: {outcomes:?}");
            assert_eq!(got.as_ref(), Some(&code), "{what}: {node} refused with {got:?} ({reason})");
            if code == ErrorCode::MissingAuthorizerSignature {
                assert!(reason.contains(RULE), "{what}: {node}: {reason}");
            }
        }
    }

    // The same request approved, through the front door: signed.
    let approver = approver_key();
    let ev =
        send(&w, &request(&w, "wallet-i", "front-door", Some(("BTC", "5000000")), &[(APPROVER, &approver)]))
            .await;
    assert_signed(&ev, &ecdsa_pub, "approved request");
}
