//! Derive HD child addresses client-side, exactly as the nodes derive the keys they sign with
//! (docs/wire.md §11: non-hardened derivation from the cluster's `chain_code`).
//!
//! Inputs come from a keygen result and the cluster config:
//!
//! ```text
//! MPCIUM_ECDSA_PUBKEY=<128 hex: X||Y from ecdsa_pub_key>  MPCIUM_EDDSA_PUBKEY=<64 hex>
//! MPCIUM_CHAIN_CODE=<64 hex: the cluster's chain_code>
//! cargo run -p mpcium-client --example hd_address
//! ```
//!
//! Prints the Ethereum addresses of m/44/60/0/0/i and the Solana-style addresses (base58 of the
//! Ed25519 child key) of 44/501/i/0 for i = 0..3. A signature requested with the same
//! `derivation_path` verifies under the printed child key.

use std::error::Error;

use k256::elliptic_curve::sec1::ToSec1Point;
use sha3::{Digest, Keccak256};

fn hex32(name: &str) -> Result<[u8; 32], Box<dyn Error>> {
    let v = hex::decode(std::env::var(name).map_err(|_| format!("{name} is not set"))?)?;
    Ok(v.try_into().map_err(|_| format!("{name} must be 32 bytes of hex"))?)
}

fn main() -> Result<(), Box<dyn Error>> {
    let chain_code = hex32("MPCIUM_CHAIN_CODE")?;
    let xy =
        hex::decode(std::env::var("MPCIUM_ECDSA_PUBKEY").map_err(|_| "MPCIUM_ECDSA_PUBKEY is not set")?)?;
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(&xy);
    let master = k256::PublicKey::from_sec1_bytes(&sec1)?;
    for i in 0..3u32 {
        let path = [44, 60, 0, 0, i];
        let (child, _) = mpcium_tss::ecdsa::derive_child(&master, &chain_code, &path)?;
        let uncompressed = child.to_sec1_point(false);
        let hash = Keccak256::digest(&uncompressed.as_bytes()[1..]);
        println!("m/44/60/0/0/{i}  ethereum 0x{}", hex::encode(&hash[12..]));
    }
    let eddsa = hex32("MPCIUM_EDDSA_PUBKEY")?;
    for i in 0..3u32 {
        let path = [44, 501, i, 0];
        let child = mpcium_tss::eddsa::derive_child(&eddsa, &chain_code, &path)?;
        println!("44/501/{i}/0     solana   {}", bs58::encode(child.public_key).into_string());
    }
    Ok(())
}
