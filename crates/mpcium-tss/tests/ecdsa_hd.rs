//! BIP32 public derivation against the BIP32 test vectors (docs/wire.md §11).

use k256::sha2::{Digest, Sha256};
use mpcium_tss::ecdsa::{HdError, derive_child, derive_child_key};

/// A parsed extended public key: chain code and key.
struct Xpub {
    chain_code: [u8; 32],
    key: k256::PublicKey,
}

/// Base58check-decode an xpub (78 bytes + 4-byte double-SHA-256 checksum).
fn xpub(s: &str) -> Xpub {
    let bytes = bs58::decode(s).into_vec().expect("base58 characters");
    assert_eq!(bytes.len(), 82, "xpub length");
    let (payload, checksum) = bytes.split_at(78);
    assert_eq!(&Sha256::digest(Sha256::digest(payload))[..4], checksum, "base58check checksum");
    assert_eq!(&payload[..4], &[0x04, 0x88, 0xb2, 0x1e], "xpub version");
    Xpub {
        chain_code: payload[13..45].try_into().unwrap(),
        key: k256::PublicKey::from_sec1_bytes(&payload[45..78]).unwrap(),
    }
}

// BIP32 test vector 2.
const V2_M: &str = "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB";
const V2_M_0: &str = "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH";
const V2_M_0_H: &str = "xpub6ASAVgeehLbnwdqV6UKMHVzgqAG8Gr6riv3Fxxpj8ksbH9ebxaEyBLZ85ySDhKiLDBrQSARLq1uNRts8RuJiHjaDMBU4Zn9h8LZNnBC5y4a";
const V2_M_0_H_1: &str = "xpub6DF8uhdarytz3FWdA8TvFSvvAh8dP3283MY7p2V4SeE2wyWmG5mg5EwVvmdMVCQcoNJxGoWaU9DCWh89LojfZ537wTfunKau47EL2dhHKon";
const V2_M_0_H_1_H: &str = "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL";
const V2_M_0_H_1_H_2: &str = "xpub6FnCn6nSzZAw5Tw7cgR9bi15UV96gLZhjDstkXXxvCLsUXBGXPdSnLFbdpq8p9HmGsApME5hQTZ3emM2rnY5agb9rXpVGyy3bdW6EEgAtqt";
// BIP32 test vector 1, the non-hardened tail m/0H/1/2H → /2 → /1000000000.
const V1_M_0H_1_2H: &str = "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5";
const V1_M_0H_1_2H_2_1E9: &str = "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy";

fn assert_step(parent: &str, path: &[u32], child: &str) {
    let p = xpub(parent);
    let c = xpub(child);
    let derived = derive_child_key(&p.key, &p.chain_code, path).unwrap();
    assert_eq!(derived.public_key, c.key, "{path:?} key");
    assert_eq!(derived.chain_code, c.chain_code, "{path:?} chain code");
    // The tweak moves the parent key to the child key.
    let moved =
        k256::ProjectivePoint::from(*p.key.as_affine()) + k256::ProjectivePoint::GENERATOR * derived.tweak;
    assert_eq!(moved.to_affine(), *c.key.as_affine());
    let (key, tweak) = derive_child(&p.key, &p.chain_code, path).unwrap();
    assert_eq!((key, tweak), (derived.public_key, derived.tweak));
}

#[test]
fn bip32_vector_2_public_derivation() {
    assert_step(V2_M, &[0], V2_M_0);
    assert_step(V2_M_0_H, &[1], V2_M_0_H_1);
    assert_step(V2_M_0_H_1_H, &[2], V2_M_0_H_1_H_2);
}

#[test]
fn bip32_vector_1_two_non_hardened_steps_in_one_path() {
    assert_step(V1_M_0H_1_2H, &[2, 1_000_000_000], V1_M_0H_1_2H_2_1E9);
}

#[test]
fn hardened_indexes_are_refused_and_empty_path_is_identity() {
    let m = xpub(V2_M);
    assert_eq!(derive_child(&m.key, &m.chain_code, &[0, 1 << 31]).unwrap_err(), HdError::Hardened(1 << 31));
    assert_eq!(derive_child(&m.key, &m.chain_code, &[u32::MAX]).unwrap_err(), HdError::Hardened(u32::MAX));
    let (same, tweak) = derive_child(&m.key, &m.chain_code, &[]).unwrap();
    assert_eq!(same, m.key);
    assert_eq!(tweak, k256::Scalar::ZERO);
}
