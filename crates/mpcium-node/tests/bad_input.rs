//! A storm of bad client requests against a real 3-node cluster: malformed JSON, wrong types,
//! bodies over `limits.max_request_bytes`, bad, missing and wrong-algorithm signatures, replays,
//! unknown and existing wallets, invalid ids, hardened derivation paths, for keygen and signing.
//! Every request is answered exactly once with the exact error code of its class, no node
//! crashes (a valid signature still works afterwards, every node still ready) and the process's
//! memory stays flat.
//!
//! `MPCIUM_BAD_INPUT_N` sets the number of bad requests (default 10,000: about 12 s of requests,
//! 25 s with the cluster start and keygen, on the loaded 2-core CI machine).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::Signer;
use mpcium_api::{ErrorCode, SignTxMessage, subjects};
use mpcium_testkit::node::{Cluster, ClusterSpec, WireClient, eddsa_verify, rss_kib};

/// The request size limit of this test's nodes (`limits.max_request_bytes`; 1 MiB by default).
const MAX_REQUEST_BYTES: usize = 4096;

/// Characters an id must not contain (each is tried in the JSON body under a valid subject).
const BAD_ID_CHARS: [&str; 5] = [".", "*", ">", " ", "\t"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    SignMalformedJson,
    SignWrongTypes,
    SignOversized,
    SignBadSignature,
    SignMissingSignature,
    SignP256Signature,
    SignReplay,
    SignUnknownWallet,
    SignInvalidTxId,
    SignInvalidWalletId,
    SignHardenedPath,
    KeygenMalformedJson,
    KeygenWrongTypes,
    KeygenOversized,
    KeygenBadSignature,
    KeygenMissingSignature,
    KeygenP256Signature,
    KeygenInvalidWalletId,
    KeygenExistingWallet,
}

const CLASSES: [Class; 19] = [
    Class::SignMalformedJson,
    Class::SignWrongTypes,
    Class::SignOversized,
    Class::SignBadSignature,
    Class::SignMissingSignature,
    Class::SignP256Signature,
    Class::SignReplay,
    Class::SignUnknownWallet,
    Class::SignInvalidTxId,
    Class::SignInvalidWalletId,
    Class::SignHardenedPath,
    Class::KeygenMalformedJson,
    Class::KeygenWrongTypes,
    Class::KeygenOversized,
    Class::KeygenBadSignature,
    Class::KeygenMissingSignature,
    Class::KeygenP256Signature,
    Class::KeygenInvalidWalletId,
    Class::KeygenExistingWallet,
];

impl Class {
    fn code(self) -> ErrorCode {
        use Class::*;
        match self {
            SignMalformedJson | SignWrongTypes | KeygenMalformedJson | KeygenWrongTypes => {
                ErrorCode::UnmarshalFailure
            }
            SignOversized
            | KeygenOversized
            | SignInvalidTxId
            | SignInvalidWalletId
            | SignHardenedPath
            | KeygenInvalidWalletId => ErrorCode::MsgValidation,
            SignBadSignature
            | SignMissingSignature
            | SignP256Signature
            | KeygenBadSignature
            | KeygenMissingSignature
            | KeygenP256Signature => ErrorCode::InvalidInitiatorSignature,
            SignReplay => ErrorCode::SessionDuplicate,
            SignUnknownWallet => ErrorCode::KeyNotFound,
            KeygenExistingWallet => ErrorCode::KeyAlreadyExists,
        }
    }

    fn is_keygen(self) -> bool {
        self >= Class::KeygenMalformedJson
    }
}

/// A request to send and the id its result must carry.
struct Bad {
    class: Class,
    subject: String,
    body: Vec<u8>,
    /// The tx id (signing) or wallet id (keygen) of its result.
    answer_id: String,
}

fn p256_signature(message: &[u8]) -> Vec<u8> {
    use p256::ecdsa::signature::Signer as _;
    let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let sig: p256::ecdsa::Signature = key.sign(message);
    sig.to_der().as_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

struct Maker<'a> {
    w: &'a WireClient,
    wallet: &'a str,
    replay: Vec<u8>,
}

impl Maker<'_> {
    fn sign_body(&self, msg: &SignTxMessage) -> Vec<u8> {
        msg.to_json().into_bytes()
    }

    fn make(&self, i: usize, class: Class) -> Bad {
        use Class::*;
        let w = self.w;
        let tx = format!("sb-{i}");
        let kw = format!("kb-{i}");
        let sign_subject = subjects::signing_request_subject(&tx);
        let keygen_subject = subjects::keygen_request_subject(&kw);
        let bad_char = BAD_ID_CHARS[i % BAD_ID_CHARS.len()];
        let sign = |body: Vec<u8>, answer: &str| Bad {
            class,
            subject: sign_subject.clone(),
            body,
            answer_id: answer.to_owned(),
        };
        let keygen =
            |body: Vec<u8>| Bad { class, subject: keygen_subject.clone(), body, answer_id: kw.clone() };
        match class {
            SignMalformedJson => sign(
                match i % 4 {
                    0 => b"{not json".to_vec(),
                    1 => format!(r#"{{"key_type":"ed25519","wallet_id":"{}","tx_id":"#, self.wallet)
                        .into_bytes(),
                    2 => vec![0xff, 0xfe, 0x00, b'{', 0x80],
                    _ => b"[\"ed25519\",\"w\",\"n\",\"t\"]".to_vec(),
                },
                &tx,
            ),
            SignWrongTypes => {
                let good = serde_json::from_str::<serde_json::Value>(
                    &w.sign_msg("ed25519", self.wallet, &tx, b"m", None).to_json(),
                )
                .unwrap();
                let mut v = good.clone();
                match i % 4 {
                    0 => v["wallet_id"] = serde_json::json!(12345),
                    1 => v["tx"] = serde_json::json!(42),
                    2 => v["derivation_path"] = serde_json::json!("44/60/0"),
                    _ => v["signature"] = serde_json::json!({"r": 1}),
                }
                sign(serde_json::to_vec(&v).unwrap(), &tx)
            }
            SignOversized => {
                let big = vec![0x42u8; MAX_REQUEST_BYTES + 100 + i % 1000];
                sign(self.sign_body(&w.sign_msg("ed25519", self.wallet, &tx, &big, None)), &tx)
            }
            SignBadSignature => {
                let mut m = w.sign_msg("ed25519", self.wallet, &tx, b"m", None);
                m.signature = Some((0..64).map(|k| (k * 7 + i) as u8).collect());
                sign(self.sign_body(&m), &tx)
            }
            SignMissingSignature => {
                let mut m = w.sign_msg("ed25519", self.wallet, &tx, b"m", None);
                m.signature = if i.is_multiple_of(2) { None } else { Some(Vec::new()) };
                sign(self.sign_body(&m), &tx)
            }
            SignP256Signature => {
                let mut m = w.sign_msg("ed25519", self.wallet, &tx, b"m", None);
                let raw = mpcium_api::canonical::sign_signed_bytes(&m, mpcium_api::SigningMode::Compatible);
                let der = p256_signature(&raw);
                // DER as the P-256 clients send it, or its r‖s form (64 bytes, like Ed25519).
                m.signature = Some(if i.is_multiple_of(2) { der } else { p256_raw(&raw) });
                sign(self.sign_body(&m), &tx)
            }
            SignReplay => Bad {
                class,
                subject: subjects::signing_request_subject("tx-used"),
                body: self.replay.clone(),
                answer_id: "tx-used".into(),
            },
            SignUnknownWallet => {
                sign(self.sign_body(&w.sign_msg("ed25519", &format!("nowallet-{i}"), &tx, b"m", None)), &tx)
            }
            SignInvalidTxId => {
                let bad = format!("sb{bad_char}{i}");
                sign(self.sign_body(&w.sign_msg("ed25519", self.wallet, &bad, b"m", None)), &bad)
            }
            SignInvalidWalletId => {
                let bad = format!("w{bad_char}{i}");
                sign(self.sign_body(&w.sign_msg("ed25519", &bad, &tx, b"m", None)), &tx)
            }
            SignHardenedPath => {
                let path = vec![44, (1u32 << 31) + (i as u32 % 1000), 0, 0];
                let key_type = if i.is_multiple_of(2) { "ed25519" } else { "secp256k1" };
                let m = w.sign_msg(key_type, self.wallet, &tx, &[9u8; 32], Some(path));
                sign(self.sign_body(&m), &tx)
            }
            KeygenMalformedJson => keygen(match i % 3 {
                0 => b"{\"wallet_id\":".to_vec(),
                1 => vec![0xc3, 0x28, b'}'],
                _ => b"\"just a string\"".to_vec(),
            }),
            KeygenWrongTypes => keygen(
                match i % 2 {
                    0 => format!(r#"{{"wallet_id":{i},"signature":"{}"}}"#, b64(&[1u8; 64])),
                    _ => format!(r#"{{"wallet_id":"{kw}","signature":[1,2,3]}}"#),
                }
                .into_bytes(),
            ),
            KeygenOversized => keygen(
                format!(r#"{{"wallet_id":"{kw}","signature":"{}"}}"#, b64(&vec![5u8; MAX_REQUEST_BYTES]))
                    .into_bytes(),
            ),
            KeygenBadSignature => keygen(
                format!(
                    r#"{{"wallet_id":"{kw}","signature":"{}"}}"#,
                    b64(&w.initiator.sign(b"other").to_bytes())
                )
                .into_bytes(),
            ),
            KeygenMissingSignature => keygen(
                if i.is_multiple_of(2) {
                    format!(r#"{{"wallet_id":"{kw}"}}"#)
                } else {
                    format!(r#"{{"wallet_id":"{kw}","signature":null}}"#)
                }
                .into_bytes(),
            ),
            KeygenP256Signature => keygen(
                format!(r#"{{"wallet_id":"{kw}","signature":"{}"}}"#, b64(&p256_signature(kw.as_bytes())))
                    .into_bytes(),
            ),
            KeygenInvalidWalletId => {
                // Signed correctly: the id itself is what is wrong.
                let bad = format!("kb{bad_char}{i}");
                keygen(w.keygen_body(&bad))
            }
            KeygenExistingWallet => Bad {
                class,
                subject: subjects::keygen_request_subject(self.wallet),
                body: w.keygen_body(self.wallet),
                answer_id: self.wallet.to_owned(),
            },
        }
    }
}

fn p256_raw(message: &[u8]) -> Vec<u8> {
    use p256::ecdsa::signature::Signer as _;
    let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let sig: p256::ecdsa::Signature = key.sign(message);
    sig.to_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_request_is_answered_with_its_code_and_memory_stays_flat() {
    // Quiet logs: captured test output is kept in memory and would blur the RSS figures.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("error"))
        .with_test_writer()
        .try_init();
    let n: usize = std::env::var("MPCIUM_BAD_INPUT_N").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let spec = ClusterSpec {
        tweak: Some(Arc::new(|_, p: &mut mpcium_node::daemon::NodeParams| {
            p.service.max_request_bytes = MAX_REQUEST_BYTES;
        })),
        ..ClusterSpec::new(3, 1)
    };
    let c = Cluster::start(spec).await;
    let w = c.client("storm-suite").await;
    let kg = w.keygen("wallet-b").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let eddsa_pub = kg.eddsa_pub_key.unwrap();
    let used = w.sign_msg("ed25519", "wallet-b", "tx-used", b"the original", None);
    let ev = w.sign(&used).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    let maker = Maker { w: &w, wallet: "wallet-b", replay: used.to_json().into_bytes() };

    // Warm-up round (allocator pools, consumers, KV caches), then the measured storm.
    let run = |from: usize, count: usize| {
        let bads: Vec<Bad> =
            (from..from + count).map(|i| maker.make(i, CLASSES[i % CLASSES.len()])).collect();
        bads
    };
    let warm = run(1_000_000, 2 * CLASSES.len());
    send_and_check(&w, warm, Duration::from_secs(60)).await;
    let rss_before = rss_kib();
    let started = Instant::now();
    let storm = run(0, n);
    let per_code = send_and_check(&w, storm, Duration::from_secs(600)).await;
    let took = started.elapsed();
    let rss_after = rss_kib();

    // No crash: every node is still ready and a valid request still signs.
    c.wait_ready_exactly().await;
    let ok = w.sign(&w.sign_msg("ed25519", "wallet-b", "tx-after-storm", b"still alive", None)).await;
    assert_eq!(ok.result_type.as_str(), "success", "{ok:?}");
    eddsa_verify(&eddsa_pub, b"still alive", &ok);

    eprintln!(
        "bad input: {n} requests answered in {took:?} ({:.0}/s); RSS before {rss_before} KiB, after {rss_after} KiB (growth {} KiB)",
        n as f64 / took.as_secs_f64(),
        rss_after as i64 - rss_before as i64
    );
    for (code, count) in &per_code {
        eprintln!("  {code}: {count}");
    }
    assert_eq!(per_code.values().sum::<usize>(), n);
    // Generous: a leak of even 8 KiB per request over 10,000 requests would pass 64 MiB.
    let growth = rss_after.saturating_sub(rss_before);
    assert!(growth < 64 * 1024, "RSS grew by {growth} KiB over {n} bad requests");
}

/// Send `bads`, collect their results and check each against its class: exactly one result per
/// request with the class's code. Returns the counts per error code.
async fn send_and_check(w: &WireClient, bads: Vec<Bad>, wait: Duration) -> BTreeMap<String, usize> {
    let mut expect_sign: HashMap<String, (Class, usize)> = HashMap::new();
    let mut expect_keygen: HashMap<String, (Class, usize)> = HashMap::new();
    let mut requests = Vec::with_capacity(bads.len());
    for b in bads {
        let map = if b.class.is_keygen() { &mut expect_keygen } else { &mut expect_sign };
        let e = map.entry(b.answer_id.clone()).or_insert((b.class, 0));
        assert_eq!(e.0, b.class, "ids are unique per class");
        e.1 += 1;
        requests.push((b.subject, b.body));
    }
    w.publish_all(requests).await;
    let quiet = Duration::from_secs(2);
    let sign_ids: Vec<String> = expect_sign.keys().cloned().collect();
    let keygen_ids: Vec<String> = expect_keygen.keys().cloned().collect();
    let signs = w.collect_sign_results(&sign_ids, wait, quiet).await;
    let keygens = w.collect_keygen_results(&keygen_ids, wait, quiet).await;
    let mut per_code = BTreeMap::new();
    let mut check =
        |kind: &str, id: &String, codes: Vec<Option<ErrorCode>>, expect: &HashMap<String, (Class, usize)>| {
            let Some((class, count)) = expect.get(id) else {
                panic!("stray {kind} result for {id:?}: {codes:?}")
            };
            assert_eq!(codes.len(), *count, "{kind} {id:?} ({class:?}): {codes:?}");
            for code in codes {
                assert_eq!(code.as_ref(), Some(&class.code()), "{kind} {id:?} ({class:?})");
                *per_code.entry(class.code().as_str().to_owned()).or_insert(0) += 1;
            }
        };
    let missing: Vec<_> = sign_ids.iter().filter(|t| !signs.contains_key(*t)).take(10).collect();
    assert!(missing.is_empty(), "no signing result for {missing:?}");
    let missing: Vec<_> = keygen_ids.iter().filter(|t| !keygens.contains_key(*t)).take(10).collect();
    assert!(missing.is_empty(), "no keygen result for {missing:?}");
    for (id, evs) in &signs {
        check("signing", id, evs.iter().map(|e| e.error_code.clone()).collect(), &expect_sign);
    }
    for (id, evs) in &keygens {
        check("keygen", id, evs.iter().map(|e| e.error_code.clone()).collect(), &expect_keygen);
    }
    per_code
}
