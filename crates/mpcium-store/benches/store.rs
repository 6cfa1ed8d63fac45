//! `cargo bench -p mpcium-store`: put/get of a 120 KB share, and a full backup of 10,000
//! wallets (4 KB EdDSA + 120 KB ECDSA share each, 1.24 GB of plaintext).
//!
//! The KDF is the cheap test parameter set: Argon2 cost is paid once per open, not per
//! operation, and is not what these benchmarks measure.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mpcium_store::{RecordKey, ShareKind, Store, StoreOptions, run_backup_once};

const PW: &[u8] = b"benchmark password 123";
const ECDSA_LEN: usize = 120 * 1024;
const EDDSA_LEN: usize = 4 * 1024;
const WALLETS: usize = 10_000;

fn share(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn put_get(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("b.db"), PW, &StoreOptions::insecure_for_tests()).unwrap();
    let value = share(ECDSA_LEN, 1);
    let mut group = c.benchmark_group("share_120k");
    group.throughput(criterion::Throughput::Bytes(ECDSA_LEN as u64));
    let mut i = 0u32;
    group.bench_function("put (durable commit)", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            // The durable record write a share takes (shares are create-only: the raw layer).
            store.put(&RecordKey::share(ShareKind::Ecdsa, "wallet", i % 64).unwrap(), &value).unwrap();
        })
    });
    store.put(&RecordKey::share(ShareKind::Ecdsa, "wallet", 0).unwrap(), &value).unwrap();
    group.bench_function("get", |b| {
        b.iter(|| black_box(store.get_share(ShareKind::Ecdsa, "wallet", 0).unwrap().unwrap()))
    });
    group.finish();
}

fn full_backup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("big.db"), PW, &StoreOptions::insecure_for_tests()).unwrap();
    let ecdsa = share(ECDSA_LEN, 2);
    let eddsa = share(EDDSA_LEN, 3);
    for chunk in (0..WALLETS).collect::<Vec<_>>().chunks(100) {
        let mut batch = Vec::with_capacity(200);
        for w in chunk {
            let id = format!("wallet-{w:05}");
            batch.push((RecordKey::share(ShareKind::Ecdsa, &id, 0).unwrap(), ecdsa.as_slice()));
            batch.push((RecordKey::share(ShareKind::Eddsa, &id, 0).unwrap(), eddsa.as_slice()));
        }
        store.put_many(&batch).unwrap();
    }
    let backups = dir.path().join("backups");
    let mut group = c.benchmark_group("backup");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.throughput(criterion::Throughput::Bytes((WALLETS * (ECDSA_LEN + EDDSA_LEN)) as u64));
    group.bench_function("full backup of 10,000 wallets (4 KB + 120 KB)", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_dir_all(&backups);
            },
            |()| {
                let outcome = run_backup_once(&store, &backups, "bench").unwrap().unwrap();
                assert_eq!(outcome.entries, (2 * WALLETS) as u64);
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn production_kdf(c: &mut Criterion) {
    let mut group = c.benchmark_group("kdf");
    group.sample_size(10);
    group.bench_function("argon2id m=64MiB t=3 p=4 (one store open)", |b| {
        b.iter(|| black_box(mpcium_store::KdfParams::PRODUCTION.derive(PW, b"0123456789abcdef").unwrap()))
    });
    group.finish();
}

criterion_group!(benches, production_kdf, put_get, full_backup);
criterion_main!(benches);
