//! Creates a wallet, then signs an Ethereum-style 32-byte hash (secp256k1) and a Solana-style
//! message (Ed25519) with it.
//!
//! Needs a running mpcium cluster (Go or Rust nodes) whose `event_initiator_pubkey` is the
//! public key of the initiator key used here:
//!
//! ```text
//! NATS_URL=nats://127.0.0.1:4222 \
//! MPCIUM_INITIATOR_KEY=./event_initiator.key  MPCIUM_INITIATOR_ALGORITHM=ed25519 \
//! cargo run -p mpcium-client --example sign
//! ```
//!
//! An age-encrypted key (`*.key.age`) takes its passphrase from `MPCIUM_INITIATOR_PASSPHRASE`
//! (never from the command line). `MPCIUM_CLIENT_ID` scopes the results to this process.
//! With `MPCIUM_IDENTITY_DIR` (the nodes' `<name>_identity.json` files) and `MPCIUM_THRESHOLD`
//! (t), a result is accepted only when the nodes that computed it vouch for it (mpcium-rs nodes
//! only: the original's nodes send no attestations).

use std::error::Error;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mpcium_client::{
    Algorithm, ClientId, ClientOptions, KeyType, LocalSigner, MpcClient, ResultTrust, SignRequest,
};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = env_or("NATS_URL", "nats://127.0.0.1:4222");
    let key_path = env_or("MPCIUM_INITIATOR_KEY", "./event_initiator.key");
    let algorithm = Algorithm::parse(&env_or("MPCIUM_INITIATOR_ALGORITHM", "ed25519"))?;
    let passphrase = std::env::var("MPCIUM_INITIATOR_PASSPHRASE").ok();
    let client_id = ClientId::parse(&env_or("MPCIUM_CLIENT_ID", ""))?;

    let signer = LocalSigner::from_file(algorithm, key_path.as_ref(), passphrase.as_deref())?;
    let mut options = ClientOptions::new(Arc::new(signer)).client_id(client_id);
    if let Ok(dir) = std::env::var("MPCIUM_IDENTITY_DIR") {
        let threshold: usize = env_or("MPCIUM_THRESHOLD", "1").parse()?;
        let trust = ResultTrust::from_identity_dir(dir.as_ref(), threshold)?;
        println!("results are checked against the nodes' identity keys in {dir} (t = {threshold})");
        options = options.verify_results(trust);
    }
    let client = MpcClient::connect(&url, options).await?;
    client
        .on_sign_result(|event| println!("late signing result for {}: {:?}", event.tx_id, event.result_type));

    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let wallet_id = format!("example-wallet-{stamp}");
    let wallet = client.create_wallet(&wallet_id).await?;
    println!("wallet {wallet_id}");
    println!("  secp256k1 public key (X||Y): {}", hex::encode(wallet.ecdsa_pub_key.unwrap_or_default()));
    println!("  ed25519 public key:          {}", hex::encode(wallet.eddsa_pub_key.unwrap_or_default()));

    // Ethereum: the cluster signs a 32-byte digest (in a real wallet, keccak256 of the
    // transaction's signing payload), here at BIP-44 path m/44/60/0/0/0 (non-hardened).
    let eth_hash = [0x5au8; 32];
    let request =
        SignRequest::new(KeyType::Secp256k1, &wallet_id, format!("eth-tx-{stamp}"), eth_hash.to_vec())
            .network_internal_code("ethereum")
            .derivation_path(vec![44, 60, 0, 0, 0]);
    match client.sign(&request).await {
        Ok(result) => {
            let r = result.r.unwrap_or_default();
            let s = result.s.unwrap_or_default();
            let v = result.signature_recovery.unwrap_or_default();
            println!("ethereum signature r||s||v: {}{}{}", hex::encode(r), hex::encode(s), hex::encode(v));
        }
        Err(e) => {
            println!("ethereum signing failed: {e} (error code: {:?})", e.error_code());
            return Err(e.into());
        }
    }

    // Solana: Ed25519 signs the message bytes themselves.
    let sol_message = b"solana transaction message bytes".to_vec();
    let request = SignRequest::new(KeyType::Ed25519, &wallet_id, format!("sol-tx-{stamp}"), sol_message)
        .network_internal_code("solana");
    let result = client.sign(&request).await?;
    println!("solana signature: {}", hex::encode(result.signature.unwrap_or_default()));
    Ok(())
}
