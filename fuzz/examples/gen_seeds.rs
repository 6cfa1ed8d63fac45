//! Writes the seed inputs of every fuzz target to `fuzz/seeds/<target>/`: valid inputs (signed
//! with the fixed keys of `mpcium_fuzz::fixtures`) that the fuzzer mutates from.
//!
//! `cd fuzz && cargo run --example gen_seeds` (keys and shares are random per run, so the files
//! change on every run; the committed ones are one such run).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use ed25519_dalek::Signer as _;
use mpcium_api::canonical::authorizer_payload;
use mpcium_api::{
    AuthorizerSignature, GenerateKeyMessage, InitiatorMessage, KeyType, ResharingMessage, SignTxMessage,
    SigningMode,
};
use mpcium_fuzz::fixtures;
use mpcium_fuzz::key_share::{ecdsa_blob, eddsa_blob, taproot_blob};
use mpcium_node::control::{AbortNotice, Control, DoneReport, EchoEntry, EchoReport, SessionStart};
use mpcium_node::envelope::{Envelope, Kind};
use mpcium_node::pairkey::ExchangeKey;
use mpcium_node::registry::{KeyInfo, ReadyRecord};
use mpcium_store::backup::LatestVersion;
use mpcium_store::backup::fuzzing::seal_backup;
use mpcium_tss::protocol::{ExecutionContext, Operation};
use mpcium_tss::{ExecutionId, simulate};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    fs::create_dir_all(&dir).expect("create seed dir");
    fs::write(dir.join(name), bytes).expect("write seed");
    println!("{target}/{name}: {} bytes", bytes.len());
}

fn with_selector(selector: u8, body: &[u8]) -> Vec<u8> {
    [&[selector][..], body].concat()
}

fn ed25519_sig(key: &ed25519_dalek::SigningKey, msg: &[u8]) -> Vec<u8> {
    key.sign(msg).to_bytes().to_vec()
}

fn p256_sig(msg: &[u8]) -> Vec<u8> {
    use p256::ecdsa::signature::Signer as _;
    let sig: p256::ecdsa::Signature = fixtures::INITIATOR_P256.sign(msg);
    sig.to_der().as_bytes().to_vec()
}

fn authorize(msg: &impl InitiatorMessage) -> Vec<AuthorizerSignature> {
    let payload = authorizer_payload(msg, SigningMode::Compatible);
    vec![AuthorizerSignature {
        authorizer_id: fixtures::AUTHORIZER_ID.into(),
        signature: Some(ed25519_sig(&fixtures::AUTHORIZER, &payload)),
    }]
}

fn client_requests() {
    let mut keygen = GenerateKeyMessage { wallet_id: "wallet-1".into(), ..Default::default() };
    keygen.signature =
        Some(ed25519_sig(&fixtures::INITIATOR_ED25519, &keygen.signed_bytes(SigningMode::Compatible)));
    keygen.authorizer_signatures = authorize(&keygen);
    write("client_request", "keygen_ed25519_authorized.json", &with_selector(0, keygen.to_json().as_bytes()));

    let mut sign = SignTxMessage {
        key_type: KeyType::Secp256k1,
        wallet_id: "wallet-1".into(),
        network_internal_code: "ethereum-mainnet".into(),
        tx_id: "tx-0001".into(),
        tx: Some(vec![0xab; 32]),
        derivation_path: Some(vec![44, 60, 0, 0, 7]),
        ..Default::default()
    };
    sign.signature = Some(p256_sig(&sign.signed_bytes(SigningMode::Strict)));
    write("client_request", "sign_ecdsa_p256_strict.json", &with_selector(1, sign.to_json().as_bytes()));
    let mut eddsa = SignTxMessage {
        key_type: KeyType::Ed25519,
        tx: Some(b"solana message".to_vec()),
        derivation_path: None,
        ..sign.clone()
    };
    eddsa.signature =
        Some(ed25519_sig(&fixtures::INITIATOR_ED25519, &eddsa.signed_bytes(SigningMode::Compatible)));
    eddsa.authorizer_signatures = authorize(&eddsa);
    write("client_request", "sign_eddsa_authorized.json", &with_selector(1, eddsa.to_json().as_bytes()));

    let mut reshare = ResharingMessage {
        session_id: "reshare-1".into(),
        node_ids: Some(vec!["node0".into(), "node1".into(), "node2".into()]),
        new_threshold: 1,
        key_type: KeyType::Ed25519,
        wallet_id: "wallet-1".into(),
        ..Default::default()
    };
    reshare.signature =
        Some(ed25519_sig(&fixtures::INITIATOR_ED25519, &reshare.signed_bytes(SigningMode::Compatible)));
    write("client_request", "reshare_ed25519.json", &with_selector(2, reshare.to_json().as_bytes()));
    write("client_request", "client_id.txt", &with_selector(3, b"client-A_1"));
}

fn session_start() -> SessionStart {
    // Built from JSON so that fields added later with a serde default need no change here.
    let start: SessionStart = serde_json::from_value(serde_json::json!({
        "op": "sign",
        "coordinator": "node0",
        "request": "",
        "client_id": "client-A",
        "participants": ["node0", "node1"],
        "new_participants": [],
        "key_version": 1,
        "threshold": 1,
        "request_id": "tx-0001",
        "dealers": []
    }))
    .expect("a session start");
    start.with_request(br#"{"key_type":"secp256k1","wallet_id":"wallet-1","tx_id":"tx-0001"}"#)
}

fn controls() -> Vec<(&'static str, Control)> {
    vec![
        ("start", Control::Start(session_start())),
        (
            "echo",
            Control::Echo(EchoReport {
                entries: vec![EchoEntry {
                    sender: "node1".into(),
                    seq: 0,
                    digest: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
                    signature: "c2ln".into(),
                }],
            }),
        ),
        (
            "abort",
            Control::Abort(AbortNotice {
                code: mpcium_api::ErrorCode::SigningFailure,
                reason: "peer sent a bad message".into(),
                culprits: vec!["node2".into()],
            }),
        ),
        (
            "done",
            Control::Done(DoneReport {
                ok: true,
                code: None,
                reason: String::new(),
                output: Some(mpcium_node::control::SessionOutput::Reshare { public_key: "02ab".into() }),
                attestation: "c2lnbmF0dXJl".into(),
                key_infos: Vec::new(),
                nonces: Vec::new(),
            }),
        ),
    ]
}

fn node_messages() {
    for (name, control) in controls() {
        write("node_control", &format!("{name}.json"), &control.encode());
    }
    let id = &*fixtures::NODE_IDENTITY;
    let session = [7u8; 32];
    let start = Control::Start(session_start()).encode();
    let control = Envelope::seal_public(Kind::Control, session, "node0", 0, start, id).expect("seal");
    write("node_envelope", "control_start.bin", &control.encode());
    let broadcast =
        Envelope::seal_public(Kind::Broadcast, session, "node0", 1, b"round-1 broadcast".to_vec(), id)
            .expect("seal");
    write("node_envelope", "broadcast.bin", &broadcast.encode());
    let (a, b) = (ExchangeKey::generate(), ExchangeKey::generate());
    let pair = a.pair_key("node0", "node1", &b.public()).expect("pair key");
    let private =
        Envelope::seal_private(session, "node0", "node1", 2, b"p2p message", &pair, id).expect("seal");
    write("node_envelope", "private.bin", &private.encode());

    let ready = ReadyRecord::new("node1", &b.public(), 1_763_770_000_000, id);
    write("registry_record", "ready.json", &with_selector(0, &serde_json::to_vec(&ready).expect("json")));
    let info = KeyInfo {
        participant_peer_ids: vec!["node0".into(), "node1".into(), "node2".into()],
        threshold: 1,
        version: 2,
        public_key: "02".to_owned() + &"ab".repeat(32),
        public_shares: BTreeMap::from([(1, "03".to_owned() + &"cd".repeat(32)), (2, "02".repeat(33))]),
        signatures: BTreeMap::from([("node0".to_owned(), "c2ln".to_owned())]),
        request: String::new(),
    };
    write("registry_record", "keyinfo.json", &with_selector(1, &serde_json::to_vec(&info).expect("json")));
    write("registry_record", "wallet_id.txt", &with_selector(2, "wallet with spaces/ü".as_bytes()));
}

const CONFIG: &str = r#"environment: development
badger_password: "a long enough test password!"
db_path: "./db"
backup_enabled: true
backup_period_seconds: 300
backup_dir: "./backups"
mpc_threshold: 1
event_initiator_pubkey: "d306e2ddab7c37e76bcd472a948cb3e3643e22c71929b5555abcb4b1c44e072c"
event_initiator_algorithm: ed25519
chain_code: "ac856314bf0aa53e32a3bdf7b83890f9ccc55bfb8443e425477e622a3f29cf07"
max_concurrent_keygen: 2
max_concurrent_signing: 10
nats:
  url: "nats://127.0.0.1:4222"
  username: "node"
  password: "nats secret"
  tls:
    client_cert: "certs/client.pem"
    client_key: "certs/client.key"
    ca_cert: "certs/ca.pem"
healthcheck:
  enabled: true
  address: "127.0.0.1:8080"
authorization:
  enabled: true
  required_authorizers: ["auth1"]
  authorizer_public_keys:
    auth1:
      public_key: "d306e2ddab7c37e76bcd472a948cb3e3643e22c71929b5555abcb4b1c44e072c"
      algorithm: ed25519
security:
  strict_requests: true
presign:
  pool_size: 4
  wallets: [wallet-1, wallet-2]
limits:
  max_request_bytes: 65536
consul:
  address: "localhost:8500"
unknown_key: 1
"#;

fn configs() {
    write("node_config", "full.yaml", CONFIG.as_bytes());
    let with_env = format!(
        "{CONFIG}\0NATS_URL=nats://10.0.0.1:4222\nMPC_THRESHOLD=2\nPRESIGN_WALLETS=a,b c\nBADGER_PASSWORD=from the environment!"
    );
    write("node_config", "full_with_env.yaml", with_env.as_bytes());
    write("node_config", "minimal_env_only.yaml", b"\0BADGER_PASSWORD=another long password!\nEVENT_INITIATOR_PUBKEY=d306e2ddab7c37e76bcd472a948cb3e3643e22c71929b5555abcb4b1c44e072c\nENVIRONMENT=production");
}

fn frame_put(key: &str, value: &[u8]) -> Vec<u8> {
    let mut f = vec![1u8];
    f.extend_from_slice(&(key.len() as u16).to_be_bytes());
    f.extend_from_slice(key.as_bytes());
    f.extend_from_slice(&(value.len() as u32).to_be_bytes());
    f.extend_from_slice(value);
    f
}

fn frame_del(key: &str) -> Vec<u8> {
    let mut f = vec![2u8];
    f.extend_from_slice(&(key.len() as u16).to_be_bytes());
    f.extend_from_slice(key.as_bytes());
    f
}

fn backups() {
    let chunk0 = [frame_put("ecdsa:wallet-1_v1", &[0xAA; 40]), frame_put("setup:pre", b"params")].concat();
    let chunk1 = [frame_del("eddsa:wallet-0_v1"), frame_put("replay:wallet-1:tx-1", b"1")].concat();
    let meta = fixtures::backup_metadata();
    let file = seal_backup(&meta, &[&chunk0, &chunk1], &fixtures::BACKUP_KEY).expect("seal");
    write("backup_file", "two_chunks.enc", &with_selector(0, &file));
    let mut structured = vec![1u8];
    for chunk in [&chunk0, &chunk1] {
        structured.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        structured.extend_from_slice(chunk);
    }
    write("backup_file", "chunks_to_seal.bin", &structured);
    write("backup_file", "metadata.json", &with_selector(2, &serde_json::to_vec(&meta).expect("json")));
    let latest = LatestVersion {
        version: 3,
        since: 17,
        updated_at: "2026-11-22T00:00:00Z".into(),
        key_id: Some("00ff".into()),
    };
    write("backup_file", "latest.json", &with_selector(3, &serde_json::to_vec(&latest).expect("json")));
}

fn eid(op: Operation, key_type: mpcium_tss::KeyType) -> ExecutionId {
    ExecutionId::new(&ExecutionContext {
        operation: op,
        key_type,
        wallet_id: "wallet-1",
        key_version: 1,
        participants: &["node0", "node1"],
        new_participants: &[],
        request_id: "seed",
    })
}

fn key_shares() {
    let keygen = eid(Operation::Keygen, mpcium_tss::KeyType::Secp256k1);
    let parties =
        (1..=2).map(|me| (me, mpcium_tss::ecdsa::Keygen::new(keygen, me, 1, 2).expect("keygen"))).collect();
    let shares: Vec<_> = simulate(parties).into_iter().map(|(_, r)| r.expect("ecdsa keygen")).collect();
    let blob = shares[0].to_bytes().expect("encode");
    write("key_share", "ecdsa_2of2.bin", &with_selector(0, &blob));
    write("key_share", "ecdsa_2of2_body.bin", &with_selector(1, &blob[2..blob.len() - 32]));
    assert_eq!(ecdsa_blob(&blob[2..blob.len() - 32]), *blob, "the harness checksum matches the crate's");

    let presign = eid(Operation::Presign, mpcium_tss::KeyType::Secp256k1);
    let parties = shares
        .iter()
        .enumerate()
        .map(|(i, share)| {
            let me = i as u16 + 1;
            (me, mpcium_tss::ecdsa::Presign::new(presign, share, &[1, 2], None).expect("presign"))
        })
        .collect();
    let presigs: Vec<_> = simulate(parties).into_iter().map(|(_, r)| r.expect("presign")).collect();
    let blob = presigs[0].to_bytes().expect("encode");
    write("key_share", "presignature.bin", &with_selector(4, &blob));
    write("key_share", "presignature_body.bin", &with_selector(5, &blob[2..blob.len() - 32]));

    let keygen = eid(Operation::Keygen, mpcium_tss::KeyType::Ed25519);
    let parties = (1..=3)
        .map(|me| (me, mpcium_tss::eddsa::Keygen::new(keygen, me, &[1, 2, 3], 1).expect("keygen")))
        .collect();
    let shares: Vec<_> = simulate(parties).into_iter().map(|(_, r)| r.expect("eddsa keygen")).collect();
    let blob = shares[0].to_bytes().expect("encode");
    write("key_share", "eddsa_2of3.bin", &with_selector(2, &blob));
    write("key_share", "eddsa_2of3_body.bin", &with_selector(3, &blob[..blob.len() - 32]));
    assert_eq!(eddsa_blob(&blob[..blob.len() - 32]), *blob, "the harness checksum matches the crate's");

    let keygen = eid(Operation::Keygen, mpcium_tss::KeyType::Taproot);
    let parties = (1..=3)
        .map(|me| (me, mpcium_tss::taproot::Keygen::new(keygen, me, &[1, 2, 3], 1).expect("keygen")))
        .collect();
    let shares: Vec<_> = simulate(parties).into_iter().map(|(_, r)| r.expect("taproot keygen")).collect();
    let blob = shares[0].to_bytes().expect("encode");
    write("key_share", "taproot_2of3.bin", &with_selector(6, &blob));
    write("key_share", "taproot_2of3_body.bin", &with_selector(7, &blob[..blob.len() - 32]));
    assert_eq!(taproot_blob(&blob[..blob.len() - 32]), *blob, "the harness checksum matches the crate's");
}

/// What party 2 sends party 1 in real 2-of-2 FROST runs, under the harness's execution ids.
fn frost_messages() {
    use mpcium_fuzz::frost_message::{keygen_exec, sign_exec};
    use mpcium_tss::KeyType::{Ed25519, Taproot};
    use mpcium_tss::{eddsa, simulate_with, taproot};
    fn from_2(out: &mut Vec<Vec<u8>>) -> impl FnMut(u16, u16, &mut Vec<u8>) + '_ {
        |from, to, data| {
            if from == 2 && to == 1 {
                out.push(data.clone());
            }
        }
    }
    let mut ed_keygen = Vec::new();
    let ed = simulate_with(
        (1..=2)
            .map(|p| (p, eddsa::Keygen::new(keygen_exec(Ed25519), p, &[1, 2], 1).expect("keygen")))
            .collect(),
        from_2(&mut ed_keygen),
    );
    let ed: Vec<_> = ed.into_iter().map(|(_, r)| r.expect("eddsa keygen")).collect();
    let mut tr_keygen = Vec::new();
    let tr = simulate_with(
        (1..=2)
            .map(|p| (p, taproot::Keygen::new(keygen_exec(Taproot), p, &[1, 2], 1).expect("keygen")))
            .collect(),
        from_2(&mut tr_keygen),
    );
    let tr: Vec<_> = tr.into_iter().map(|(_, r)| r.expect("taproot keygen")).collect();
    let mut ed_sign = Vec::new();
    simulate_with(
        ed.iter()
            .map(|s| (s.party(), eddsa::Sign::new(sign_exec(Ed25519), s, &[1, 2], b"m").expect("sign")))
            .collect(),
        from_2(&mut ed_sign),
    );
    let mut tr_sign = Vec::new();
    simulate_with(
        tr.iter()
            .map(|s| {
                (
                    s.party(),
                    taproot::Sign::new(sign_exec(Taproot), s, &[1, 2], &[7; 32], Some([9; 32]))
                        .expect("sign"),
                )
            })
            .collect(),
        from_2(&mut tr_sign),
    );
    for (selector, name, messages) in [
        (0, "eddsa_keygen", ed_keygen),
        (1, "eddsa_sign", ed_sign),
        (2, "taproot_keygen", tr_keygen),
        (3, "taproot_sign", tr_sign),
    ] {
        assert!(messages.len() >= 2, "{name}: {} messages", messages.len());
        for (i, m) in messages.iter().enumerate() {
            write("frost_message", &format!("{name}_{i}.bin"), &with_selector(selector, m));
        }
    }
}

fn main() {
    client_requests();
    node_messages();
    configs();
    backups();
    key_shares();
    frost_messages();
}
