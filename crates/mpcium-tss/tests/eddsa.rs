//! Threshold EdDSA end to end with every party simulated: keygen, signing (plain and HD),
//! resharing and refresh, each signature checked with `ed25519-dalek`'s `verify_strict`; and
//! malicious parties named.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use k256::elliptic_curve::bigint::{NonZero, U256};
use mpcium_tss::eddsa::{KeyShare, Keygen, Nonce, Reshare, Sign, derive_child, serialize_point};
use mpcium_tss::reshare::{Member, Roster};
use mpcium_tss::{ExecutionContext, ExecutionId, KeyType, Operation, PartyId, simulate, simulate_with};

mod frost_common;

use frost_common::{assert_all_blame, new_shares};

fn exec(operation: Operation, request: &str) -> ExecutionId {
    ExecutionId::new(&ExecutionContext {
        operation,
        key_type: KeyType::Ed25519,
        wallet_id: "wallet-ed",
        key_version: 1,
        participants: &["n1", "n2", "n3"],
        new_participants: &[],
        request_id: request,
    })
}

fn keygen(n: u16, t: u16) -> Vec<KeyShare> {
    let ids: Vec<PartyId> = (1..=n).collect();
    let id = exec(Operation::Keygen, &format!("kg-{n}-{t}"));
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

fn verify(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) {
    let vk = VerifyingKey::from_bytes(public_key).unwrap();
    vk.verify_strict(message, &Signature::from_bytes(signature)).expect("verify_strict");
}

/// Sign with the given holders (exactly t+1) and check every signer's output.
fn sign(shares: &[&KeyShare], message: &[u8], derivation: Option<(&[u8; 32], &[u32])>) -> [u8; 64] {
    let signers: Vec<PartyId> = shares.iter().map(|s| s.party()).collect();
    let id = exec(Operation::Sign, "tx");
    let parties = shares
        .iter()
        .map(|s| {
            let p = match derivation {
                None => Sign::new(id, s, &signers, message),
                Some((cc, path)) => Sign::with_derivation(id, s, &signers, message, cc, path),
            };
            (s.party(), p.unwrap())
        })
        .collect();
    let sigs: Vec<[u8; 64]> =
        simulate(parties).into_iter().map(|(p, r)| r.unwrap_or_else(|e| panic!("{p}: {e}"))).collect();
    assert!(sigs.iter().all(|s| *s == sigs[0]), "every signer outputs the same signature");
    let pk = match derivation {
        None => shares[0].public_key_bytes(),
        Some((cc, path)) => independent_child(&shares[0].public_key_bytes(), cc, path).0,
    };
    verify(&pk, message, &sigs[0]);
    sigs[0]
}

fn first(shares: &[KeyShare], k: usize) -> Vec<&KeyShare> {
    shares.iter().take(k).collect()
}

fn last(shares: &[KeyShare], k: usize) -> Vec<&KeyShare> {
    shares.iter().skip(shares.len() - k).collect()
}

// ---- HD derivation from the definition (docs/wire.md §11), written independently of the crate ----

const P_HEX: &str = "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed";

/// Check that `x` is the affine X of the point with encoding `enc`: the curve equation
/// −x² + y² = 1 + d·x²·y² holds and x's parity is the encoding's sign bit.
fn assert_affine_x(enc: &[u8; 32], x_be: &[u8]) {
    let p = NonZero::new(U256::from_be_hex(P_HEX)).unwrap();
    let mut y_le = *enc;
    let sign = y_le[31] >> 7;
    y_le[31] &= 0x7f;
    let y = U256::from_le_slice(&y_le);
    let x = U256::from_be_slice(x_be);
    // d = -121665 / 121666: check d·121666 + 121665 ≡ 0 instead of computing d.
    let d = U256::from_be_hex("52036cee2b6ffe738cc740797779e89800700a4d4141d8ab75eb4dca135978a3");
    let zero = d.mul_mod(&U256::from_u32(121666), &p).add_mod(&U256::from_u32(121665), &p);
    assert_eq!(zero, U256::ZERO, "d constant");
    let x2 = x.mul_mod(&x, &p);
    let y2 = y.mul_mod(&y, &p);
    let lhs = y2.sub_mod(&x2, &p);
    let rhs = U256::ONE.add_mod(&d.mul_mod(&x2, &p).mul_mod(&y2, &p), &p);
    assert_eq!(lhs, rhs, "(x, y) is on the curve");
    assert_eq!(x_be[31] & 1, sign, "x parity matches the encoding");
}

/// The child key and tweak, computed with dalek, hmac and the definition.
fn independent_child(master: &[u8; 32], chain_code: &[u8; 32], path: &[u32]) -> ([u8; 32], Scalar) {
    let mut point = CompressedEdwardsY(*master).decompress().unwrap();
    let mut chain = *chain_code;
    let mut tweak = Scalar::ZERO;
    for &i in path {
        let ser = serialize_point(&point).unwrap();
        let enc = point.compress().to_bytes();
        assert_eq!(ser[0], if enc[0] & 1 == 1 { 3 } else { 2 }, "prefix from Y parity");
        assert_affine_x(&enc, &ser[1..]);
        let mut mac = <Hmac<sha2_011::Sha512> as KeyInit>::new_from_slice(&chain).unwrap();
        mac.update(&ser);
        mac.update(&i.to_be_bytes());
        let out = mac.finalize().into_bytes();
        let mut il_le: [u8; 32] = out[..32].try_into().unwrap();
        il_le.reverse();
        let il = Scalar::from_bytes_mod_order(il_le);
        point += ED25519_BASEPOINT_POINT * il;
        tweak += il;
        chain.copy_from_slice(&out[32..]);
    }
    (point.compress().to_bytes(), tweak)
}

#[test]
fn hd_derivation_matches_the_definition() {
    // The original's own cross-check setup: master = G, chain code 01..20, path 44/501/i/0.
    let chain: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
    let master = ED25519_BASEPOINT_POINT.compress().to_bytes();
    for i in 0..20 {
        let path = [44, 501, i, 0];
        let d = derive_child(&master, &chain, &path).unwrap();
        let (pk, tweak) = independent_child(&master, &chain, &path);
        assert_eq!(d.public_key, pk, "path {path:?}");
        assert_eq!(d.tweak, tweak);
        assert_eq!((ED25519_BASEPOINT_POINT * (Scalar::ONE + tweak)).compress().to_bytes(), pk);
    }
    assert!(derive_child(&master, &chain, &[44, 1 << 31]).is_err(), "hardened refused");
}

// ---- engine tests ----

const CASES: [(u16, u16); 4] = [(3, 1), (3, 2), (5, 2), (5, 3)];

#[test]
fn keygen_sign_and_hd_sign_for_every_committee_shape() {
    let chain = [7u8; 32];
    for (n, t) in CASES {
        let shares = keygen(n, t);
        let k = usize::from(t) + 1;
        sign(&first(&shares, k), b"hello mpcium", None);
        sign(&last(&shares, k), b"another signer set", None);
        sign(&first(&shares, k), b"solana transfer", Some((&chain, &[44, 501, 0, 0])));
    }
}

#[test]
fn refresh_then_sign_for_every_committee_shape() {
    for (n, t) in CASES {
        let shares = keygen(n, t);
        let k = usize::from(t) + 1;
        let signers: Vec<PartyId> = shares.iter().skip(shares.len() - k).map(|s| s.party()).collect();
        let id = exec(Operation::Refresh, &format!("rf-{n}-{t}"));
        let parties =
            shares.iter().map(|s| (s.party(), Reshare::refresh(id, s, &signers).unwrap())).collect();
        let fresh = new_shares(simulate(parties));
        assert_eq!(fresh.len(), usize::from(n));
        for (old, new) in shares.iter().zip(&fresh) {
            assert_eq!(new.public_key_bytes(), old.public_key_bytes());
            assert_ne!(new.public_shares(), old.public_shares(), "shares changed");
        }
        sign(&first(&fresh, k), b"after refresh", None);
    }
}

/// Run a reshare of `shares` (old t) with the given roster; transport ids ≥ 1.
fn reshare(shares: &[KeyShare], roster: Roster, t_new: u16, request: &str) -> Vec<KeyShare> {
    let id = exec(Operation::Reshare, request);
    let old = shares[0].old_key();
    let parties = roster
        .members()
        .iter()
        .map(|m| {
            let share = m.old.map(|o| &shares[usize::from(o) - 1]);
            (m.id, Reshare::new(id, m.id, roster.clone(), t_new, old.clone(), share).unwrap())
        })
        .collect();
    let out = new_shares(simulate(parties));
    for s in &out {
        assert_eq!(s.public_key_bytes(), shares[0].public_key_bytes(), "public key kept");
        assert_eq!(s.threshold(), t_new);
    }
    out
}

#[test]
fn reshare_to_fewer_more_and_higher_threshold_then_sign() {
    let shares = keygen(3, 1);
    // 3 → 2 parties (t' = 1): old 1 and 2 deal and keep new ids 1 and 2; 3 is dropped.
    let roster = Roster::new(vec![
        Member { id: 1, old: Some(1), new: Some(1) },
        Member { id: 2, old: Some(2), new: Some(2) },
    ])
    .unwrap();
    let two = reshare(&shares, roster, 1, "to-2");
    assert_eq!(two.len(), 2);
    sign(&first(&two, 2), b"after 3->2", None);

    // 3 → 4 parties (t' = 1): old 2 and 3 deal; old 3 leaves; three newcomers.
    let roster = Roster::new(vec![
        Member { id: 1, old: Some(2), new: Some(1) },
        Member { id: 2, old: Some(3), new: None },
        Member { id: 3, old: None, new: Some(2) },
        Member { id: 4, old: None, new: Some(3) },
        Member { id: 5, old: None, new: Some(4) },
    ])
    .unwrap();
    let four = reshare(&shares, roster, 1, "to-4");
    assert_eq!(four.len(), 4);
    sign(&last(&four, 2), b"after 3->4", None);

    // t = 1 → t' = 2 on the same three parties, then a 3-signer (and an HD) signature.
    let roster = Roster::new(vec![
        Member { id: 1, old: Some(1), new: Some(1) },
        Member { id: 2, old: Some(3), new: Some(2) },
        Member { id: 3, old: None, new: Some(3) },
    ])
    .unwrap();
    let higher = reshare(&shares, roster, 2, "t-up");
    sign(&first(&higher, 3), b"after t 1->2", None);
    sign(&first(&higher, 3), b"hd after t 1->2", Some((&[9; 32], &[44, 501, 0, 0])));
}

// ---- malicious parties ----

#[test]
fn a_corrupted_signature_share_names_its_signer() {
    let shares = keygen(3, 1);
    let signers = [1, 2];
    let id = exec(Operation::Sign, "bad-share");
    let parties =
        shares[..2].iter().map(|s| (s.party(), Sign::new(id, s, &signers, b"m").unwrap())).collect();
    // Tag 2 = signature share: nudge the scalar's lowest byte (stays canonical).
    let results = simulate_with(parties, |from, _, data| {
        if from == 2 && data[0] == 2 {
            let i = data.len() - 32;
            data[i] ^= 1;
        }
    });
    assert_all_blame(&results, 2);
    let e = results[0].1.as_ref().unwrap_err();
    assert!(e.to_string().contains("signature share"), "{e}");
}

#[test]
fn a_corrupted_keygen_share_or_commitment_names_its_sender() {
    let ids = [1, 2, 3];
    let start = |req: &str| {
        let id = exec(Operation::Keygen, req);
        ids.iter().map(|&p| (p, Keygen::new(id, p, &ids, 1).unwrap())).collect::<Vec<_>>()
    };
    // A private DKG share (tag 2) from party 3, nudged in its lowest scalar byte.
    let results = simulate_with(start("bad-kg-share"), |from, _, data| {
        if from == 3 && data[0] == 2 {
            let i = data.len() - 32;
            data[i] ^= 1;
        }
    });
    assert_all_blame(&results, 3);
    // A round-1 package (tag 1) from party 2 whose proof of knowledge of the committed constant
    // term is wrong (the last 32 bytes are the proof's response scalar).
    let results = simulate_with(start("bad-kg-commitment"), |from, _, data| {
        if from == 2 && data[0] == 1 {
            let i = data.len() - 32;
            data[i] ^= 1;
        }
    });
    assert_all_blame(&results, 2);
}

#[test]
fn a_message_of_another_execution_is_refused() {
    let shares = keygen(3, 2);
    let signers = [1, 2, 3];
    let id = exec(Operation::Sign, "run-a");
    let other = exec(Operation::Sign, "run-b");
    let parties = shares.iter().map(|s| (s.party(), Sign::new(id, s, &signers, b"m").unwrap())).collect();
    let results = simulate_with(parties, |from, _, data| {
        if from == 3 {
            data[1..33].copy_from_slice(other.as_bytes());
        }
    });
    assert_all_blame(&results, 3);
    assert!(results[0].1.as_ref().unwrap_err().to_string().contains("another execution"));
}

#[test]
fn key_share_round_trips_and_refuses_damaged_blobs() {
    let shares = keygen(3, 1);
    let bytes = shares[0].to_bytes().unwrap();
    let back = KeyShare::from_bytes(&bytes).unwrap();
    assert_eq!(back, shares[0]);
    sign(&[&back, &shares[2]], b"reloaded", None);
    // Truncated anywhere, or any single bit flipped: refused.
    for len in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        assert!(KeyShare::from_bytes(&bytes[..len]).is_err(), "truncated to {len}");
    }
    for i in 0..bytes.len() {
        let mut damaged = bytes.to_vec();
        damaged[i] ^= 0x10;
        assert!(KeyShare::from_bytes(&damaged).is_err(), "flipped byte {i}");
    }
    // The serde form validates too (no checksum there): a wrong secret is refused.
    let mut wire = serde_json::to_value(&shares[0]).unwrap();
    wire["signing_share"][0] = serde_json::json!(wire["signing_share"][0].as_u64().unwrap() ^ 1);
    assert!(serde_json::from_value::<KeyShare>(wire).is_err());
    // Debug never prints the secret.
    let dbg = format!("{:?}", shares[0]);
    assert!(dbg.contains("redacted"));
}

#[test]
fn shares_written_before_the_generic_engine_still_load_and_sign() {
    // Three 2-of-3 shares written by the Ed25519-only engine (commit f993e08): the stored format
    // (postcard fields, checksum domain) must not change with the engine serving two suites.
    let text = include_str!("data/eddsa/key-shares-v1.hex");
    let shares: Vec<KeyShare> =
        text.lines().map(|l| KeyShare::from_bytes(&hex::decode(l).unwrap()).unwrap()).collect();
    assert_eq!(shares.len(), 3);
    for s in &shares {
        assert_eq!(s.public_key_bytes(), shares[0].public_key_bytes());
        assert_eq!(
            hex::encode(&*s.to_bytes().unwrap()),
            text.lines().nth(usize::from(s.party()) - 1).unwrap()
        );
    }
    let sig = sign(&[&shares[0], &shares[2]], b"old share", None);
    verify(&shares[0].public_key_bytes(), b"old share", &sig);
}

/// Each signer's nonce drawn ahead, and every signer's commitments by party id.
fn drawn_ahead(shares: &[&KeyShare]) -> (Vec<Nonce>, std::collections::BTreeMap<PartyId, Vec<u8>>) {
    let mut nonces = Vec::new();
    let mut commitments = std::collections::BTreeMap::new();
    for s in shares {
        let (nonce, c) = Nonce::draw(s).unwrap();
        assert_eq!(nonce.commitments(), c.as_slice());
        nonces.push(nonce);
        commitments.insert(s.party(), c);
    }
    (nonces, commitments)
}

#[test]
fn nonces_drawn_ahead_sign_in_one_round_for_the_master_key_and_an_hd_child() {
    for (n, t) in [(3, 1), (5, 2)] {
        let shares = keygen(n, t);
        let signers = last(&shares, usize::from(t) + 1);
        let ids: Vec<PartyId> = signers.iter().map(|s| s.party()).collect();
        let cc = [7u8; 32];
        for derivation in [None, Some((&cc, &[44u32, 501, 0][..]))] {
            let (nonces, commitments) = drawn_ahead(&signers);
            let message = b"prepared";
            let parties = signers
                .iter()
                .zip(nonces)
                .map(|(s, nonce)| {
                    let id = exec(Operation::Sign, "prepared");
                    let p = match derivation {
                        None => Sign::new(id, s, &ids, message),
                        Some((cc, path)) => Sign::with_derivation(id, s, &ids, message, cc, path),
                    };
                    (s.party(), p.unwrap().with_nonce(nonce, &commitments).unwrap())
                })
                .collect();
            let mut sent = 0;
            let results = simulate_with(parties, |_, _, _| sent += 1);
            // One round: each signer's share to each other signer, nothing else.
            assert_eq!(sent, ids.len() * (ids.len() - 1), "{n}/{t}");
            let sig = results[0].1.as_ref().map(|s| *s).unwrap();
            assert!(results.iter().all(|(_, r)| r.as_ref().ok() == Some(&sig)));
            let pk = match derivation {
                None => shares[0].public_key_bytes(),
                Some((cc, path)) => independent_child(&shares[0].public_key_bytes(), cc, path).0,
            };
            verify(&pk, message, &sig);
        }
    }
}

/// The Ed25519 point (0, -1), of order 2: y = p - 1, little-endian.
const ORDER_TWO: [u8; 32] = {
    let mut b = [0xff; 32];
    b[0] = 0xec;
    b[31] = 0x7f;
    b
};

#[test]
fn a_nonce_drawn_ahead_is_refused_under_commitments_that_are_not_its_own_or_name_other_signers() {
    let shares = keygen(3, 1);
    let signers = first(&shares, 2);
    let ids: Vec<PartyId> = signers.iter().map(|s| s.party()).collect();
    let id = exec(Operation::Sign, "prepared");
    let start = || Sign::new(id, signers[0], &ids, b"m").unwrap();
    // Another nonce's commitments in this signer's place.
    let (_, mut commitments) = drawn_ahead(&signers);
    let (nonce, _) = Nonce::draw(signers[0]).unwrap();
    assert!(start().with_nonce(nonce, &commitments).is_err(), "not this nonce's commitments");
    // A signer missing, one too many, or commitments that do not decode.
    let (mut nonces, good) = drawn_ahead(&signers);
    let mine = nonces.remove(0);
    let (spare, _) = Nonce::draw(signers[0]).unwrap();
    commitments = good.clone();
    commitments.remove(&ids[1]);
    assert!(start().with_nonce(mine, &commitments).is_err(), "a signer missing");
    commitments = good.clone();
    commitments.insert(3, good[&ids[1]].clone());
    let (again, _) = Nonce::draw(signers[0]).unwrap();
    assert!(start().with_nonce(again, &commitments).is_err(), "a non-signer named");
    commitments = good.clone();
    commitments.insert(ids[1], vec![1, 2, 3]);
    assert!(start().with_nonce(spare, &commitments).is_err(), "malformed commitments");
    // The other signer's binding point (the encoding's last 32 bytes) replaced: by the base
    // point it is taken, so the bytes replaced are that point; by the point of order 2, (0, -1),
    // a valid encoding of a curve point outside the prime-order subgroup, it is refused.
    let with_binding = |point: &[u8; 32]| {
        let mut theirs = good[&ids[1]].clone();
        let at = theirs.len() - 32;
        theirs[at..].copy_from_slice(point);
        let (nonce, mine) = Nonce::draw(signers[0]).unwrap();
        let mut commitments = good.clone();
        commitments.insert(ids[1], theirs);
        commitments.insert(ids[0], mine);
        start().with_nonce(nonce, &commitments)
    };
    assert!(with_binding(ED25519_BASEPOINT_POINT.compress().as_bytes()).is_ok(), "a prime-order point");
    let point = CompressedEdwardsY(ORDER_TWO).decompress().expect("a curve point");
    assert!(!point.is_torsion_free() && !curve25519_dalek::traits::IsIdentity::is_identity(&point));
    let refused = with_binding(&ORDER_TWO).err().expect("a point outside the subgroup");
    assert!(refused.to_string().contains(&format!("malformed commitments of party {}", ids[1])), "{refused}");
    // This signer's own commitments are compared, not parsed: another encoding is refused.
    let (nonce, mut own) = Nonce::draw(signers[0]).unwrap();
    own.push(0);
    commitments = good.clone();
    commitments.insert(ids[0], own);
    assert!(start().with_nonce(nonce, &commitments).is_err(), "its own commitments changed");
    // Debug never shows the secret nonce.
    let (nonce, _) = Nonce::draw(signers[0]).unwrap();
    assert_eq!(format!("{nonce:?}"), "Nonce(<secret>)");
}
