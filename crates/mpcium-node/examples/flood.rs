//! Floods the node bus from one node's identity, to measure what a flooding peer costs the
//! cluster (BENCHMARKS.md, "Rate limits"): validly signed broadcast envelopes for sessions that
//! do not exist, sent to other nodes' inboxes as fast as one NATS connection publishes (or at a
//! given rate), while `mpcium-cli benchmark` signs.
//!
//! ```text
//! cargo run --release -p mpcium-node --example flood -- \
//!     <nats-url> <devnet-dir> <from node name> <to node names, comma-separated> <seconds> [messages/s]
//! ```
//! The sender's private key is read from `<devnet-dir>/<from>/identity/<from>_private.key` and
//! node ids from `<devnet-dir>/<from>/peers.json` (the layout `mpcium-cli devnet` writes).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use mpcium_node::envelope::{Envelope, Kind};
use mpcium_node::transport::node_subject;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        bail!("usage: flood <nats-url> <devnet-dir> <from> <to,to,...> <seconds> [messages/s]");
    }
    let (url, dir, from) = (&args[0], PathBuf::from(&args[1]), &args[2]);
    let seconds: f64 = args[4].parse().context("seconds")?;
    let per_second: f64 = args.get(5).map(|r| r.parse()).transpose().context("messages/s")?.unwrap_or(0.0);
    let peers: HashMap<String, String> =
        serde_json::from_slice(&std::fs::read(dir.join(from).join("peers.json")).context("peers.json")?)?;
    let id_of = |name: &str| peers.get(name).cloned().with_context(|| format!("{name} is not in peers.json"));
    let from_id = id_of(from)?;
    let targets: Vec<String> =
        args[3].split(',').map(|n| id_of(n).map(|id| node_subject(&id))).collect::<Result<_, _>>()?;
    let key_path = dir.join(from).join("identity").join(format!("{from}_private.key"));
    let key = mpcium_identity::decode_node_private_key(
        std::fs::read_to_string(&key_path).with_context(|| key_path.display().to_string())?.trim(),
    )?;
    // Sealed once: the receivers pay for each copy as for a new message (header read, then,
    // within the rate, the signature check and routing).
    let messages: Vec<bytes::Bytes> = (0..256u16)
        .map(|i| {
            let mut session = [0u8; 32];
            session[..2].copy_from_slice(&i.to_be_bytes());
            Envelope::seal_public(Kind::Broadcast, session, &from_id, 0, vec![0xAB; 512], &key)
                .map(|e| bytes::Bytes::from(e.encode()))
        })
        .collect::<Result<_, _>>()?;
    let client = async_nats::connect(url).await?;
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let mut sent = 0u64;
    'flood: loop {
        for m in &messages {
            for subject in &targets {
                if per_second > 0.0 {
                    let due = started + Duration::from_secs_f64(sent as f64 / per_second);
                    tokio::time::sleep_until(due.into()).await;
                }
                client.publish(subject.clone(), m.clone()).await?;
                sent += 1;
            }
            if Instant::now() >= until {
                break 'flood;
            }
        }
    }
    client.flush().await?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "sent {sent} messages in {elapsed:.1} s ({:.0}/s) as {from} to {}",
        sent as f64 / elapsed,
        args[3]
    );
    Ok(())
}
