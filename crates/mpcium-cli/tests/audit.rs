//! `mpcium-cli audit` against a real nats-server and real node audit writers: `show` filters by
//! wallet, transaction and time; `verify` passes on intact chains and fails, naming the entry,
//! once one is deleted from the stream.

use mpcium_identity::NodeIdentity;
use mpcium_identity::ed25519_dalek::SigningKey;
use mpcium_registry::audit::{self, AuditEntry, AuditRecord, Outcome, RecordKind};
use mpcium_testkit::NatsServer;

mod common;
use common::cli_in as cli;

fn record(wallet: &str, tx: &str) -> AuditRecord {
    AuditRecord {
        kind: RecordKind::Request,
        operation: "sign".into(),
        request_id: format!("{tx}#1.1"),
        session_id: None,
        wallet_id: wallet.into(),
        tx_id: Some(tx.into()),
        key_type: Some("secp256k1".into()),
        client_id: None,
        coordinator: "node-a".into(),
        participants: vec!["node-a".into(), "node-b".into()],
        attempts: 1,
        outcome: Outcome::Success,
        error_code: None,
        error_reason: None,
        culprits: vec![],
        policy: vec![],
        started_at_ms: audit_now(),
        finished_at_ms: audit_now(),
    }
}

fn audit_now() -> u64 {
    mpcium_registry::now_ms()
}

#[test]
fn shows_and_verifies_the_trail() {
    let server = NatsServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = common::dev_config(tmp.path(), &server.url());
    let config = config.to_str().unwrap();
    let identity = tmp.path().join("identity");
    std::fs::create_dir(&identity).unwrap();
    let keys = [("node-a", SigningKey::from_bytes(&[1; 32])), ("node-b", SigningKey::from_bytes(&[2; 32]))];
    for (id, key) in &keys {
        let file = NodeIdentity {
            node_name: (*id).into(),
            node_id: (*id).into(),
            public_key: hex::encode(key.verifying_key().to_bytes()),
            created_at: "2026-01-01T00:00:00Z".into(),
        };
        std::fs::write(identity.join(format!("{id}_identity.json")), serde_json::to_vec(&file).unwrap())
            .unwrap();
    }

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let js =
        rt.block_on(async { async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap()) });
    rt.block_on(async {
        audit::ensure_stream(&js, 1).await.unwrap();
        for (i, (id, key)) in keys.iter().enumerate() {
            let (log, writer) = audit::writer::spawn(js.clone(), (*id).into(), key.clone());
            for n in 0..3 {
                log.record(record(&format!("w{i}"), &format!("tx-{i}-{n}")));
            }
            writer.finish().await;
            assert_eq!(log.counters().written.load(std::sync::atomic::Ordering::Relaxed), 3);
        }
    });

    let out = cli(tmp.path(), &["-c", config, "audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("node-a: 3 entries, chain intact"), "{stdout}");

    let out = cli(tmp.path(), &["-c", config, "audit", "show", "--tx", "tx-1-2", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: Vec<AuditEntry> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown.len(), 1);
    assert_eq!((shown[0].node_id.as_str(), shown[0].seq), ("node-b", 3));

    let out = cli(tmp.path(), &["-c", config, "audit", "show", "--wallet", "w0"]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(table.lines().skip(1).all(|l| l.contains("node-a") && l.contains("success")), "{table}");

    let out = cli(tmp.path(), &["-c", config, "audit", "show", "--since", "2999-01-01T00:00:00Z"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no audit entries");
    let out = cli(tmp.path(), &["-c", config, "audit", "show", "--since", "yesterday"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an RFC 3339 time"));

    // node-b's second entry deleted: verify fails naming the gap at node-b's seq 3.
    rt.block_on(async {
        let stream = js.get_stream(audit::AUDIT_STREAM).await.unwrap();
        let stored = audit::trail::read_all(&js).await.unwrap();
        let second = stored
            .iter()
            .find(|s| s.subject_node == "node-b" && audit::entry::parse(&s.payload).unwrap().seq == 2)
            .unwrap();
        assert!(stream.delete_message(second.stream_seq).await.unwrap());
    });
    let out = cli(tmp.path(), &["-c", config, "audit", "verify"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(
        stderr.contains("first bad entry: node node-b entry seq 3")
            && stderr.contains("entries 2..2 are missing"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("node-a: 3 entries, chain intact"));

    // Without the identity files nothing can be verified.
    let out = cli(tmp.path(), &["-c", config, "audit", "verify", "--identity-dir", "nowhere"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the nodes' identities"));
}
