//! Crash safety: a child process writing 120 KB shares is killed with SIGKILL at random
//! moments; after each kill the store opens and every share it holds is complete.
//!
//! The child is this test binary re-executed with `MPCIUM_STORE_CRASH_CHILD` set, running the
//! ignored test `crash_writer_child`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mpcium_store::{ShareKind, Store, StoreOptions};
use sha2::{Digest, Sha256};

const PW: &[u8] = b"correct horse battery staple";
const ENV_DB: &str = "MPCIUM_STORE_CRASH_CHILD";
const SHARE_LEN: usize = 120 * 1024;

/// A share whose last 32 bytes are the SHA-256 of the rest.
fn make_share(seed: u64) -> Vec<u8> {
    let mut body = Vec::with_capacity(SHARE_LEN);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while body.len() < SHARE_LEN - 32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body.extend_from_slice(&x.to_le_bytes());
    }
    body.truncate(SHARE_LEN - 32);
    let digest = Sha256::digest(&body);
    body.extend_from_slice(&digest);
    body
}

fn share_is_intact(v: &[u8]) -> bool {
    v.len() == SHARE_LEN && Sha256::digest(&v[..SHARE_LEN - 32]).as_slice() == &v[SHARE_LEN - 32..]
}

/// Child side: opens (or creates) the store and writes shares forever, printing the wallet id
/// after each acknowledged (durable) commit.
#[test]
#[ignore = "child process of crash_kill9_twenty_times; runs only when re-executed by it"]
fn crash_writer_child() {
    let db = std::env::var(ENV_DB).expect("run only by crash_kill9_twenty_times");
    let store = Store::open_or_create(&db, PW, &StoreOptions::insecure_for_tests()).unwrap();
    let start = store.keys_with_prefix("ecdsa:w").unwrap().len() as u64;
    for i in start.. {
        let wallet = format!("w{i:06}");
        store.put_share(ShareKind::Ecdsa, &wallet, 0, &make_share(i)).unwrap();
        println!("ACK {wallet} 0");
        // Overwrites of one hot key exercise the replace path too.
        if i % 3 == 0 {
            let hot = mpcium_store::RecordKey::share(ShareKind::Ecdsa, "hot", 1).unwrap();
            store.put(&hot, &make_share(i + 1_000_000)).unwrap();
            println!("ACK hot 1");
        }
    }
}

fn verify(db: &Path, acked: &[(String, u32)]) -> usize {
    let store = Store::open(db, PW, &StoreOptions::insecure_for_tests()).unwrap();
    let keys = store.keys_with_prefix("ecdsa:").unwrap();
    for key in &keys {
        let v = store.get(&mpcium_store::RecordKey::new(key.clone()).unwrap()).unwrap().unwrap();
        assert!(share_is_intact(&v), "share {key} is incomplete or corrupt after SIGKILL");
    }
    for (wallet, version) in acked {
        assert!(
            store.get_share(ShareKind::Ecdsa, wallet, *version).unwrap().is_some(),
            "acknowledged share {wallet} v{version} lost after SIGKILL"
        );
    }
    keys.len()
}

#[test]
fn crash_kill9_twenty_times() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("crash.db");
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<(String, u32)> = Vec::new();
    let mut rng = 0x1234_5678_9abc_def0u64 ^ u64::from(std::process::id());
    let mut last_count = 0;
    for round in 0..20 {
        let mut child = Command::new(&exe)
            .args(["crash_writer_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(ENV_DB, &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split_whitespace();
                if parts.next() == Some("ACK")
                    && let (Some(w), Some(v)) = (parts.next(), parts.next())
                {
                    got.push((w.to_owned(), v.parse::<u32>().unwrap()));
                }
            }
            got
        });
        // Wait for at least one write to be acknowledged, then kill at a random moment.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = Duration::from_millis(20 + rng % 300);
        let started = Instant::now();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let new_acks = reader.join().unwrap();
        acked.extend(new_acks);
        let count = verify(&db, &acked);
        assert!(count >= last_count, "round {round}: shares disappeared");
        last_count = count;
        eprintln!("round {round}: killed after {:?}, {count} shares intact", started.elapsed());
    }
    assert!(!acked.is_empty(), "the child never got to write");
}
