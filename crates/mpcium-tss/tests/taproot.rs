//! Threshold Taproot (BIP340/341) end to end with every party simulated: the official BIP340,
//! BIP341 and BIP86 test vectors (data files), keygen, signing for the BIP86 key, for a script
//! tree's output key and for an HD child, resharing and refresh, each signature checked by an
//! independent BIP340 verifier (RustCrypto `k256::schnorr`); and malicious parties named.

use mpcium_tss::reshare::{Member, Roster};
use mpcium_tss::taproot::{
    KeyShare, Keygen, Nonce, Reshare, Sign, TaprootError, derive_child, output_key, tap_tweak, verify,
};
use mpcium_tss::{ExecutionContext, ExecutionId, KeyType, Operation, PartyId, simulate, simulate_with};

mod frost_common;

use frost_common::{assert_all_blame, new_shares};

fn exec(operation: Operation, request: &str) -> ExecutionId {
    ExecutionId::new(&ExecutionContext {
        operation,
        key_type: KeyType::Taproot,
        wallet_id: "wallet-tr",
        key_version: 1,
        participants: &["n1", "n2", "n3"],
        new_participants: &[],
        request_id: request,
    })
}

fn bytes32(hex_text: &str) -> [u8; 32] {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

/// BIP340 verification by RustCrypto's implementation (not the frost one the engine uses).
fn independent_verify(output_x_only: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = k256::schnorr::VerifyingKey::from_bytes(&(*output_x_only).into()) else {
        return false;
    };
    let Ok(sig) = k256::schnorr::Signature::from_bytes(signature) else {
        return false;
    };
    key.verify_raw(message, &sig).is_ok()
}

// ---- official vectors ----

#[test]
fn bip340_verification_vectors() {
    let csv = include_str!("data/taproot/bip340-test-vectors.csv");
    let mut checked = 0;
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (index, public_key, message, signature, expected) = (f[0], f[2], f[4], f[5], f[6]);
        let expected = expected == "TRUE";
        let message = hex::decode(message).unwrap();
        let signature: [u8; 64] = hex::decode(signature).unwrap().try_into().unwrap();
        let ours = verify(&bytes32(public_key), &message, &signature);
        assert_eq!(ours.is_ok(), expected, "vector {index}: {ours:?}");
        assert_eq!(
            independent_verify(&bytes32(public_key), &message, &signature),
            expected,
            "vector {index}"
        );
        checked += 1;
    }
    assert_eq!(checked, 19, "every BIP340 vector read");
}

#[test]
fn bip341_tweak_vectors() {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("data/taproot/bip341-wallet-test-vectors.json")).unwrap();
    let cases = json["scriptPubKey"].as_array().unwrap();
    for case in cases {
        let internal = bytes32(case["given"]["internalPubkey"].as_str().unwrap());
        let root = case["intermediary"]["merkleRoot"].as_str().map(bytes32);
        let tweak = bytes32(case["intermediary"]["tweak"].as_str().unwrap());
        let tweaked = bytes32(case["intermediary"]["tweakedPubkey"].as_str().unwrap());
        assert_eq!(tap_tweak(&internal, root.as_ref()).unwrap().to_bytes().as_slice(), tweak);
        assert_eq!(output_key(&internal, root.as_ref()).unwrap(), tweaked, "{internal:02x?}");
    }
    assert_eq!(cases.len(), 7);
}

#[test]
fn bip86_output_key_vectors() {
    let text = include_str!("data/taproot/bip86-test-vectors.txt");
    let pairs: Vec<(&str, &str)> =
        text.lines().filter(|l| !l.starts_with('#')).map(|l| l.split_once(' ').unwrap()).collect();
    assert_eq!(pairs.len(), 3);
    for (internal, output) in pairs {
        assert_eq!(output_key(&bytes32(internal), None).unwrap(), bytes32(output));
    }
    // An x coordinate that is not on the curve is refused.
    assert_eq!(output_key(&[0xff; 32], None), Err(TaprootError::InvalidKey));
}

// ---- the threshold protocol ----

fn keygen(n: u16, t: u16, request: &str) -> Vec<KeyShare> {
    let ids: Vec<PartyId> = (1..=n).collect();
    let id = exec(Operation::Keygen, request);
    let parties = ids.iter().map(|&p| (p, Keygen::new(id, p, &ids, t).unwrap())).collect();
    let shares: Vec<KeyShare> =
        simulate(parties).into_iter().map(|(p, r)| r.unwrap_or_else(|e| panic!("{p}: {e}"))).collect();
    for s in &shares {
        assert_eq!(s.public_key_bytes(), shares[0].public_key_bytes(), "one public key");
        assert_eq!(s.threshold(), t);
        assert_eq!(s.parties(), ids);
    }
    shares
}

struct Spend<'a> {
    merkle_root: Option<[u8; 32]>,
    derivation: Option<(&'a [u8; 32], &'a [u32])>,
}

const BIP86: Spend<'static> = Spend { merkle_root: None, derivation: None };

/// Sign with the given holders (exactly t+1), check every signer's output, and verify it
/// independently under the output key computed from the public data alone.
fn sign(shares: &[&KeyShare], message: &[u8], spend: &Spend<'_>) -> [u8; 64] {
    let signers: Vec<PartyId> = shares.iter().map(|s| s.party()).collect();
    let id = exec(Operation::Sign, "tx");
    let parties = shares
        .iter()
        .map(|s| {
            let p = match spend.derivation {
                None => Sign::new(id, s, &signers, message, spend.merkle_root),
                Some((cc, path)) => {
                    Sign::with_derivation(id, s, &signers, message, spend.merkle_root, cc, path)
                }
            };
            (s.party(), p.unwrap())
        })
        .collect();
    let results = simulate(parties);
    let signature = results[0].1.as_ref().map(|s| *s).unwrap();
    for (p, r) in &results {
        assert_eq!(r.as_ref().unwrap(), &signature, "signer {p} agrees");
    }
    let internal = match spend.derivation {
        None => shares[0].x_only_public_key(),
        Some((cc, path)) => derive_child(&shares[0].public_key_bytes(), cc, path).unwrap().x_only,
    };
    let q = output_key(&internal, spend.merkle_root.as_ref()).unwrap();
    assert!(independent_verify(&q, message, &signature), "BIP340 signature under Q");
    verify(&q, message, &signature).unwrap();
    // Not under the internal key itself, nor for another message.
    assert!(!independent_verify(&internal, message, &signature));
    assert!(!independent_verify(&q, b"another message", &signature));
    signature
}

#[test]
fn keygen_and_sign_bip86_script_tree_and_hd_for_keys_of_both_parities() {
    // P's Y parity decides whether the shares are negated before tweaking: cover both.
    let mut parities = [false; 2];
    let mut runs = 0;
    while parities != [true, true] {
        runs += 1;
        assert!(runs <= 40, "40 keys of one parity");
        let shares = keygen(3, 1, &format!("kg-{runs}"));
        parities[usize::from(shares[0].public_key_bytes()[0] == 0x03)] = true;
        let sighash = [runs as u8; 32];
        sign(&[&shares[0], &shares[1]], &sighash, &BIP86);
        sign(&[&shares[1], &shares[2]], &sighash, &Spend { merkle_root: Some([7; 32]), derivation: None });
        let path: &[u32] = &[86, 0, 0, 0, runs];
        sign(
            &[&shares[0], &shares[2]],
            &sighash,
            &Spend { merkle_root: None, derivation: Some((&[9; 32], path)) },
        );
        sign(
            &[&shares[0], &shares[2]],
            &sighash,
            &Spend { merkle_root: Some([1; 32]), derivation: Some((&[9; 32], path)) },
        );
    }
    // 3-of-5.
    let shares = keygen(5, 2, "kg-5");
    sign(&[&shares[4], &shares[1], &shares[3]], b"any length message", &BIP86);
}

#[test]
fn hd_child_is_the_bip32_child_of_the_even_y_lift() {
    let shares = keygen(3, 1, "kg-hd");
    let p = shares[0].public_key_bytes();
    let mut lifted = p;
    lifted[0] = 0x02;
    let parent = k256::PublicKey::from_sec1_bytes(&lifted).unwrap();
    let (child, _) = mpcium_tss::ecdsa::derive_child(&parent, &[9; 32], &[0, 5]).unwrap();
    let derived = derive_child(&p, &[9; 32], &[0, 5]).unwrap();
    use k256::elliptic_curve::sec1::ToSec1Point;
    assert_eq!(derived.public_key.as_slice(), child.as_affine().to_sec1_point(true).as_bytes());
    assert_eq!(derived.x_only, derived.public_key[1..]);
    // A hardened index cannot be derived from public data.
    assert!(derive_child(&p, &[9; 32], &[0x8000_0000]).is_err());
}

#[test]
fn reshare_three_to_four_and_refresh_keep_the_internal_key() {
    let shares = keygen(3, 1, "kg-rs");
    // 3 → 4 (t' = 1): old 2 and 3 deal; old 3 leaves; three newcomers.
    let roster = Roster::new(vec![
        Member { id: 1, old: Some(2), new: Some(1) },
        Member { id: 2, old: Some(3), new: None },
        Member { id: 3, old: None, new: Some(2) },
        Member { id: 4, old: None, new: Some(3) },
        Member { id: 5, old: None, new: Some(4) },
    ])
    .unwrap();
    let id = exec(Operation::Reshare, "to-4");
    let old = shares[0].old_key();
    let parties = roster
        .members()
        .iter()
        .map(|m| {
            let share = m.old.map(|o| &shares[usize::from(o) - 1]);
            (m.id, Reshare::new(id, m.id, roster.clone(), 1, old.clone(), share).unwrap())
        })
        .collect();
    let four = new_shares(simulate(parties));
    assert_eq!(four.len(), 4);
    for s in &four {
        assert_eq!(s.x_only_public_key(), shares[0].x_only_public_key(), "same P");
    }
    sign(&[&four[2], &four[3]], &[3; 32], &BIP86);
    sign(
        &[&four[0], &four[3]],
        &[3; 32],
        &Spend { merkle_root: Some([2; 32]), derivation: Some((&[9; 32], &[1])) },
    );

    // Refresh: signers 1 and 3 deal, everyone gets a fresh share of the same key.
    let id = exec(Operation::Refresh, "refresh");
    let parties = four.iter().map(|s| (s.party(), Reshare::refresh(id, s, &[1, 3]).unwrap())).collect();
    let fresh = new_shares(simulate(parties));
    assert_eq!(fresh.len(), 4);
    assert_ne!(fresh[0].to_bytes().unwrap(), four[0].to_bytes().unwrap(), "new secret share");
    sign(&[&fresh[1], &fresh[2]], &[4; 32], &BIP86);
}

// ---- malicious parties ----

#[test]
fn a_corrupted_signature_share_names_its_signer_with_a_tweak_and_a_path() {
    let shares = keygen(3, 1, "kg-bad");
    let signers = [1, 3];
    let id = exec(Operation::Sign, "bad-share");
    let parties = [&shares[0], &shares[2]]
        .iter()
        .map(|s| {
            let p = Sign::with_derivation(id, s, &signers, &[5; 32], Some([6; 32]), &[9; 32], &[1, 2]);
            (s.party(), p.unwrap())
        })
        .collect();
    // Tag 2 = signature share: nudge the scalar's lowest byte (big-endian: the last byte).
    let results = simulate_with(parties, |from, _, data| {
        if from == 3 && data[0] == 2 {
            let i = data.len() - 1;
            data[i] ^= 1;
        }
    });
    assert_all_blame(&results, 3);
    assert!(results[0].1.as_ref().unwrap_err().to_string().contains("signature share"));
}

#[test]
fn a_corrupted_keygen_share_or_proof_names_its_sender() {
    let ids = [1, 2, 3];
    let start = |req: &str| {
        let id = exec(Operation::Keygen, req);
        ids.iter().map(|&p| (p, Keygen::new(id, p, &ids, 1).unwrap())).collect::<Vec<_>>()
    };
    let results = simulate_with(start("bad-kg-share"), |from, _, data| {
        if from == 3 && data[0] == 2 {
            let i = data.len() - 1;
            data[i] ^= 1;
        }
    });
    assert_all_blame(&results, 3);
    let results = simulate_with(start("bad-kg-proof"), |from, _, data| {
        if from == 2 && data[0] == 1 {
            let i = data.len() - 1;
            data[i] ^= 1;
        }
    });
    assert_all_blame(&results, 2);
}

#[test]
fn a_message_of_another_execution_is_refused() {
    let shares = keygen(3, 2, "kg-exec");
    let signers = [1, 2, 3];
    let id = exec(Operation::Sign, "run-a");
    let other = exec(Operation::Sign, "run-b");
    let parties =
        shares.iter().map(|s| (s.party(), Sign::new(id, s, &signers, b"m", None).unwrap())).collect();
    let results = simulate_with(parties, |from, _, data| {
        if from == 3 {
            data[1..33].copy_from_slice(other.as_bytes());
        }
    });
    assert_all_blame(&results, 3);
}

#[test]
fn key_share_round_trips_and_refuses_damaged_blobs_and_other_suites() {
    let shares = keygen(3, 1, "kg-bytes");
    let bytes = shares[0].to_bytes().unwrap();
    let back = KeyShare::from_bytes(&bytes).unwrap();
    assert_eq!(back, shares[0]);
    sign(&[&back, &shares[2]], &[8; 32], &BIP86);
    for len in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        assert!(KeyShare::from_bytes(&bytes[..len]).is_err(), "truncated to {len}");
    }
    for i in 0..bytes.len() {
        let mut damaged = bytes.to_vec();
        damaged[i] ^= 0x10;
        assert!(KeyShare::from_bytes(&damaged).is_err(), "flipped byte {i}");
    }
    // A share of one suite is never read as the other (the checksum domain differs).
    assert!(mpcium_tss::eddsa::KeyShare::from_bytes(&bytes).is_err());
    assert!(format!("{:?}", shares[0]).contains("redacted"));
    // Wrong signer sets are refused before anything is sent.
    let id = exec(Operation::Sign, "bad-set");
    assert!(Sign::new(id, &shares[0], &[1], b"m", None).is_err());
    assert!(Sign::new(id, &shares[0], &[2, 3], b"m", None).is_err());
    assert!(Sign::new(id, &shares[0], &[1, 4], b"m", None).is_err());
}

#[test]
fn nonces_drawn_ahead_sign_in_one_round_for_bip86_a_script_tree_and_an_hd_child() {
    let shares = keygen(3, 1, "kg-prepared");
    let signers = [&shares[0], &shares[2]];
    let ids: Vec<PartyId> = signers.iter().map(|s| s.party()).collect();
    let cc = [9u8; 32];
    let path = [86u32, 0, 0];
    let root = [5u8; 32];
    for spend in [
        BIP86,
        Spend { merkle_root: Some(root), derivation: None },
        Spend { merkle_root: None, derivation: Some((&cc, &path)) },
    ] {
        // Drawn before the message, the tweak or the path is known.
        let mut nonces = Vec::new();
        let mut commitments = std::collections::BTreeMap::new();
        for s in signers {
            let (nonce, c) = Nonce::draw(s).unwrap();
            nonces.push(nonce);
            commitments.insert(s.party(), c);
        }
        let message = b"prepared taproot";
        let parties = signers
            .iter()
            .zip(nonces)
            .map(|(s, nonce)| {
                let id = exec(Operation::Sign, "prepared");
                let p = match spend.derivation {
                    None => Sign::new(id, s, &ids, message, spend.merkle_root),
                    Some((cc, path)) => {
                        Sign::with_derivation(id, s, &ids, message, spend.merkle_root, cc, path)
                    }
                };
                (s.party(), p.unwrap().with_nonce(nonce, &commitments).unwrap())
            })
            .collect();
        let mut sent = 0;
        let results = simulate_with(parties, |_, _, _| sent += 1);
        assert_eq!(sent, 2, "one round");
        let sig = results[0].1.as_ref().map(|s| *s).unwrap();
        assert!(results.iter().all(|(_, r)| r.as_ref().ok() == Some(&sig)));
        let internal = match spend.derivation {
            None => shares[0].x_only_public_key(),
            Some((cc, path)) => derive_child(&shares[0].public_key_bytes(), cc, path).unwrap().x_only,
        };
        let q = output_key(&internal, spend.merkle_root.as_ref()).unwrap();
        assert!(independent_verify(&q, message, &sig), "BIP340 signature under Q");
    }
}
