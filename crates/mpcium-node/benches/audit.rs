//! `cargo bench -p mpcium-node --bench audit`: what the audit trail costs per entry.
//!
//! - `record` (the request path's whole cost): one `try_send` into the writer's queue;
//! - `seal` (the writer's CPU per entry): canonical JSON, SHA-256, Ed25519 signature;
//! - appends per second to a real nats-server (one writer, each entry awaited: JetStream
//!   round trip included), and the time to write a burst queued at once.

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use mpcium_node::audit::{self, AuditEntry, AuditRecord, Outcome, RecordKind, entry};

fn record(i: u64) -> AuditRecord {
    AuditRecord {
        kind: RecordKind::Session,
        operation: "sign".into(),
        request_id: format!("tx-{i}#12.1"),
        session_id: Some("ab".repeat(32)),
        wallet_id: "wallet-0123456789".into(),
        tx_id: Some(format!("tx-{i}")),
        key_type: Some("secp256k1".into()),
        client_id: Some("client-a".into()),
        coordinator: "4c3b2a10-0000-4000-8000-000000000000".into(),
        participants: vec![
            "4c3b2a10-0000-4000-8000-000000000000".into(),
            "5d4c3b21-0000-4000-8000-000000000000".into(),
        ],
        attempts: 1,
        outcome: Outcome::Success,
        error_code: None,
        error_reason: None,
        culprits: vec![],
        policy: vec![],
        started_at_ms: 1_764_000_000_000,
        finished_at_ms: 1_764_000_000_050,
    }
}

fn main() {
    let key = SigningKey::from_bytes(&[9; 32]);
    const N: u64 = 20_000;
    let started = Instant::now();
    let mut bytes = 0;
    for i in 0..N {
        let e = AuditEntry {
            version: entry::ENTRY_VERSION,
            node_id: "4c3b2a10-0000-4000-8000-000000000000".into(),
            seq: i + 1,
            prev_hash: entry::GENESIS_HASH.into(),
            dropped_before: 0,
            written_at_ms: 1_764_000_000_060,
            record: record(i),
        };
        let sealed = black_box(entry::seal(e, &key));
        bytes += sealed.payload.len();
    }
    let per = started.elapsed() / N as u32;
    println!("seal: {per:?} per entry ({} bytes of payload on average)", bytes as u64 / N);

    let server = mpcium_testkit::NatsServer::start().expect("nats-server (MPCIUM_NATS_SERVER)");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
        audit::ensure_stream(&js, 1).await.unwrap();
        let (log, writer) = audit::writer::spawn(js.clone(), "bench-node".into(), key.clone());
        // The request path: queueing only (the writer drains meanwhile).
        const BURST: u64 = 10_000;
        let started = Instant::now();
        for i in 0..BURST {
            log.record(record(i));
        }
        let queued = started.elapsed();
        println!("record (request path): {:?} per call over {BURST} calls", queued / BURST as u32);
        let counters = log.counters();
        while counters.written.load(Ordering::Relaxed) + counters.dropped.load(Ordering::Relaxed) < BURST {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let elapsed = started.elapsed();
        println!(
            "writer: {BURST} entries stored in {elapsed:?} ({:.0} entries/s, each append awaited), {} dropped",
            BURST as f64 / elapsed.as_secs_f64(),
            counters.dropped.load(Ordering::Relaxed)
        );
        writer.finish().await;
        let stored = audit::trail::read_all(&js).await.unwrap();
        let keys = std::collections::HashMap::from([("bench-node".to_owned(), key.verifying_key())]);
        let started = Instant::now();
        let report = audit::trail::verify(&stored, &keys);
        assert!(report.ok(), "{:?}", report.problems);
        println!("verify: {:?} per entry ({} entries)", started.elapsed() / stored.len() as u32, stored.len());
    });
}
