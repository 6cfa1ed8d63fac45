//! Stream, consumer, subject, header and idempotency-key names (docs/wire.md §2, §3, §6.1, §8.1).

use std::time::Duration;

use mpcium_api::ClientId;
use mpcium_api::streams::{
    self, Retention, Storage, keygen_request_consumer, keygen_result_consumer, node_result_consumers,
    reshare_result_consumer, result_consumer_name, sanitize_consumer_name, signing_request_consumer,
    signing_result_consumer,
};
use mpcium_api::subjects::*;

fn client(id: &str) -> ClientId {
    ClientId::parse(id).unwrap().unwrap()
}

#[test]
fn streams_match_the_go_configuration() {
    let k = streams::KEYGEN_REQUEST_STREAM;
    assert_eq!(k.name, "mpc-keygen");
    assert_eq!(k.subjects, ["mpc.keygen_request.*"]);
    assert_eq!(k.description, "Stream for mpc-keygen");
    assert_eq!(k.retention, Retention::Limits);
    assert_eq!(k.storage, Storage::File);
    assert_eq!(k.max_age, Some(Duration::from_secs(604_800)));
    assert_eq!(k.max_bytes, 100_000_000);
    assert_eq!(k.duplicate_window, Duration::from_secs(120));

    let s = streams::SIGNING_REQUEST_STREAM;
    assert_eq!(s.name, "mpc-signing");
    assert_eq!(s.subjects, ["mpc.signing_request.*"]);
    assert_eq!(s.description, "Stream for mpc-signing");
    assert_eq!(s.retention, Retention::Limits);
    assert_eq!(s.max_age, Some(Duration::from_secs(604_800)));

    let r = streams::RESULT_STREAM;
    assert_eq!(r.name, "mpc");
    assert_eq!(
        r.subjects,
        ["mpc.mpc_keygen_result.>", "mpc.mpc_signing_result.>", "mpc.mpc_reshare_result.>"]
    );
    assert_eq!(r.description, "Stream for mpc");
    assert_eq!(r.retention, Retention::WorkQueue);
    assert_eq!(r.storage, Storage::File);
    assert_eq!(r.max_age, None);
    assert_eq!(r.max_bytes, 100_000_000);
}

#[test]
fn request_consumers_of_section_3_3() {
    let k = keygen_request_consumer(streams::DEFAULT_MAX_CONCURRENT_KEYGEN);
    assert_eq!(k.durable_name, "mpc_keygen_consumer");
    assert_eq!(k.stream, "mpc-keygen");
    assert_eq!(k.filter_subject, "mpc.keygen_request.*");
    assert_eq!(k.ack_wait, Duration::from_secs(30));
    assert_eq!(k.max_deliver, 4);
    assert_eq!(k.backoff, vec![Duration::from_secs(30); 3]);
    assert_eq!(k.max_ack_pending, 2);

    let s = signing_request_consumer(streams::DEFAULT_MAX_CONCURRENT_SIGNING);
    assert_eq!(s.durable_name, "mpc_signing_consumer");
    assert_eq!(s.stream, "mpc-signing");
    assert_eq!(s.filter_subject, "mpc.signing_request.*");
    assert_eq!(s.max_deliver, 4);
    assert_eq!(s.max_ack_pending, 20);
    // Our departure from the original's 30 s (docs/wire.md): progress is acknowledged every
    // 300 ms; later redeliveries back off so the four deliveries span about half a minute.
    assert_eq!(s.ack_wait, Duration::from_millis(1500));
    assert_eq!(s.backoff, vec![Duration::from_millis(1500), Duration::from_secs(5), Duration::from_secs(10)]);
}

#[test]
fn result_consumers_without_client_id() {
    let cases = [
        (keygen_result_consumer(None), "mpc_keygen_result", "mpc.mpc_keygen_result.*"),
        (signing_result_consumer(None), "mpc_signing_result", "mpc.mpc_signing_result.complete"),
        (reshare_result_consumer(None), "mpc_reshare_result", "mpc.mpc_reshare_result.*"),
    ];
    for (spec, name, filter) in cases {
        assert_eq!(spec.durable_name, name);
        assert_eq!(spec.filter_subject, filter);
        assert_eq!(spec.stream, "mpc");
        assert_eq!(spec.ack_wait, Duration::from_secs(30));
        assert_eq!(spec.max_deliver, 3);
        assert_eq!(spec.max_ack_pending, 1000);
        assert!(spec.backoff.is_empty());
    }
}

#[test]
fn nodes_create_the_three_unscoped_result_consumers() {
    let names: Vec<(String, String)> =
        node_result_consumers().into_iter().map(|c| (c.durable_name, c.filter_subject)).collect();
    assert_eq!(
        names,
        [
            ("mpc_keygen_result", "mpc.mpc_keygen_result.*"),
            ("mpc_signing_result", "mpc.mpc_signing_result.complete"),
            ("mpc_reshare_result", "mpc.mpc_reshare_result.*"),
        ]
        .map(|(n, f)| (n.to_owned(), f.to_owned()))
    );
    assert_eq!(node_result_consumers()[0], keygen_result_consumer(None));
}

#[test]
fn result_consumers_with_client_id() {
    let x = client("svc-a");
    assert_eq!(result_consumer_name("mpc_keygen_result", Some(&x)), "mpc_keygen_result.svc-a");
    let cases = [
        (keygen_result_consumer(Some(&x)), "mpc_keygen_result_svc_a", "mpc.mpc_keygen_result.svc-a.*"),
        (
            signing_result_consumer(Some(&x)),
            "mpc_signing_result_svc_a",
            "mpc.mpc_signing_result.svc-a.complete",
        ),
        (reshare_result_consumer(Some(&x)), "mpc_reshare_result_svc_a", "mpc.mpc_reshare_result.svc-a.*"),
    ];
    for (spec, name, filter) in cases {
        assert_eq!(spec.durable_name, name);
        assert_eq!(spec.filter_subject, filter);
    }
}

#[test]
fn consumer_name_sanitizing_rule() {
    let cases = [
        ("mpc-keygen-consumer", "mpc_keygen_consumer"),
        ("mpc_keygen_result.X", "mpc_keygen_result_X"),
        ("a:b c.d-e", "a_b_c_d_e"),
        ("x.>", "x_all"),
        ("x.*", "x_any"),
        ("9lives", "_9lives"),
        ("-x", "_x"),
        (">", "all"),
        ("*", "any"),
        ("_ok", "_ok"),
        ("éa", "éa"),
        ("", ""),
    ];
    for (input, want) in cases {
        assert_eq!(sanitize_consumer_name(input), want, "{input:?}");
    }
}

#[test]
fn request_subjects_and_headers() {
    assert_eq!(keygen_request_subject("w1"), "mpc.keygen_request.w1");
    assert_eq!(signing_request_subject("tx1"), "mpc.signing_request.tx1");
    assert_eq!(KEYGEN_REQUEST_FILTER, "mpc.keygen_request.*");
    assert_eq!(SIGNING_REQUEST_FILTER, "mpc.signing_request.*");
    assert_eq!(RESHARE_REQUEST_SUBJECT, "mpc:reshare");
    assert_eq!(INTERNAL_GENERATE_SUBJECT, "mpc:generate");
    assert_eq!(INTERNAL_SIGN_SUBJECT, "mpc:sign");
    assert_eq!(CLIENT_ID_HEADER, "ClientID");
    assert_eq!(SESSION_ID_HEADER, "SessionID");
    assert_eq!(MSG_ID_HEADER, "Nats-Msg-Id");
}

#[test]
fn result_subjects_legacy_and_scoped() {
    // The Go test table of pkg/event/result_topics_test.go.
    assert_eq!(keygen_result_subject(None, "wallet-1"), "mpc.mpc_keygen_result.wallet-1");
    assert_eq!(keygen_result_filter(None), "mpc.mpc_keygen_result.*");
    assert_eq!(signing_result_subject(None), "mpc.mpc_signing_result.complete");
    assert_eq!(reshare_result_subject(None, "session-1"), "mpc.mpc_reshare_result.session-1");
    assert_eq!(reshare_result_filter(None), "mpc.mpc_reshare_result.*");
    assert_eq!(scoped_operation_id(None, "wallet-1"), "wallet-1");

    let a = client("svc-a");
    assert_eq!(keygen_result_subject(Some(&a), "wallet-1"), "mpc.mpc_keygen_result.svc-a.wallet-1");
    assert_eq!(keygen_result_filter(Some(&a)), "mpc.mpc_keygen_result.svc-a.*");
    assert_eq!(signing_result_subject(Some(&a)), "mpc.mpc_signing_result.svc-a.complete");
    assert_eq!(signing_result_filter(Some(&a)), "mpc.mpc_signing_result.svc-a.complete");
    assert_eq!(reshare_result_subject(Some(&a), "session-1"), "mpc.mpc_reshare_result.svc-a.session-1");
    assert_eq!(reshare_result_filter(Some(&a)), "mpc.mpc_reshare_result.svc-a.*");
    assert_eq!(scoped_operation_id(Some(&a), "wallet-1"), "svc-a:wallet-1");
}

#[test]
fn idempotency_keys_of_section_3_9() {
    let a = client("svc-a");
    assert_eq!(keygen_idempotency_key(None, "w1", None), "mpc.mpc_keygen_result.w1");
    assert_eq!(keygen_idempotency_key(Some(&a), "w1", Some("u-1")), "mpc.mpc_keygen_result.svc-a:w1:u-1");
    assert_eq!(keygen_idempotency_key(None, "w1", Some("")), "mpc.mpc_keygen_result.w1");
    assert_eq!(signing_idempotency_key(None, "tx1", Some("u-2")), "mpc.mpc_signing_result.tx1:u-2");
    // The max-delivery event: no SessionID.
    assert_eq!(signing_idempotency_key(Some(&a), "tx1", None), "mpc.mpc_signing_result.svc-a:tx1");
    assert_eq!(reshare_idempotency_key(Some(&a), "s1", Some("u-3")), "mpc.mpc_reshare_result.svc-a:s1:u-3");
    assert_eq!(reshare_idempotency_key(None, "s1", None), "mpc.mpc_reshare_result.s1");
}
