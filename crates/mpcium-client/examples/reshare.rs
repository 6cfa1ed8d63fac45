//! Move a wallet's key to a new committee and/or threshold (the public key stays the same).
//!
//! ```text
//! NATS_URL=nats://127.0.0.1:4222  MPCIUM_INITIATOR_KEY=./event_initiator.key \
//! MPCIUM_WALLET=<wallet id>  MPCIUM_NODE_IDS=<id1>,<id2>[,...]  MPCIUM_NEW_THRESHOLD=1 \
//! cargo run -p mpcium-client --example reshare
//! ```
//!
//! Reshares the secp256k1 key, then the Ed25519 key. `MPCIUM_NODE_IDS` are node ids (the values
//! of `peers.json`); a signature needs `MPCIUM_NEW_THRESHOLD + 1` of them afterwards.

use std::error::Error;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mpcium_client::{Algorithm, ClientOptions, KeyType, LocalSigner, MpcClient, ReshareRequest};

fn env(name: &str) -> Result<String, Box<dyn Error>> {
    Ok(std::env::var(name).map_err(|_| format!("{name} is not set"))?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let key_path = std::env::var("MPCIUM_INITIATOR_KEY").unwrap_or_else(|_| "./event_initiator.key".into());
    let passphrase = std::env::var("MPCIUM_INITIATOR_PASSPHRASE").ok();
    let wallet = env("MPCIUM_WALLET")?;
    let node_ids: Vec<String> = env("MPCIUM_NODE_IDS")?.split(',').map(|s| s.trim().to_owned()).collect();
    let new_threshold: i64 = env("MPCIUM_NEW_THRESHOLD")?.parse()?;

    let signer = LocalSigner::from_file(Algorithm::Ed25519, key_path.as_ref(), passphrase.as_deref())?;
    let client = MpcClient::connect(&url, ClientOptions::new(Arc::new(signer))).await?;
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    for key_type in [KeyType::Secp256k1, KeyType::Ed25519] {
        let request = ReshareRequest {
            session_id: format!("reshare-{stamp}-{}", key_type.as_str()),
            wallet_id: wallet.clone(),
            key_type: key_type.clone(),
            new_threshold,
            node_ids: node_ids.clone(),
            timeout: None,
        };
        match client.reshare(&request).await {
            Ok(event) => println!(
                "{}: reshared to {node_ids:?} with t={new_threshold}; public key {}",
                key_type.as_str(),
                hex::encode(event.pub_key.unwrap_or_default())
            ),
            Err(e) => {
                println!("{}: reshare failed: {e} (error code {:?})", key_type.as_str(), e.error_code())
            }
        }
    }
    Ok(())
}
