//! Threshold ECDSA (DKLs23): keygen, signing, presigning, HD, setup from Shamir shares, faults.

use std::collections::BTreeMap;

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use k256::elliptic_curve::Generate;
use k256::{NonZeroScalar, ProjectivePoint, Scalar};
use mpcium_tss::ecdsa::{
    EcdsaSignature, HdPath, KeyShare, KeyShareError, Keygen, Presign, Presignature, Refresh, Setup,
    SetupInput, Sign, SignOnline, derive_child,
};
use mpcium_tss::{
    ExecutionContext, ExecutionId, KeyType, Operation, PartyId, ProtocolError, simulate, simulate_with,
};
use zeroize::Zeroizing;

fn eid(op: Operation, request: &str) -> ExecutionId {
    ExecutionId::new(&ExecutionContext {
        operation: op,
        key_type: KeyType::Secp256k1,
        wallet_id: "wallet-ecdsa-test",
        key_version: 1,
        participants: &["n1", "n2", "n3", "n4", "n5"],
        new_participants: &[],
        request_id: request,
    })
}

fn digest(tag: &str) -> [u8; 32] {
    use k256::sha2::{Digest, Sha256};
    Sha256::digest(tag.as_bytes()).into()
}

fn keygen(n: u16, t: u16) -> Vec<KeyShare> {
    let id = eid(Operation::Keygen, &format!("keygen-{n}-{t}"));
    let parties = (1..=n).map(|me| (me, Keygen::new(id, me, t, n).unwrap())).collect();
    let shares: Vec<KeyShare> = simulate(parties).into_iter().map(|(_, r)| r.unwrap()).collect();
    for s in &shares {
        assert_eq!(s.public_key(), shares[0].public_key(), "all parties agree on the key");
        assert_eq!(s.threshold(), t);
        assert_eq!(s.participants(), (1..=n).collect::<Vec<_>>());
    }
    shares
}

/// Independent check: k256 verifies the prehash, s is low, and the recovery id recovers the key.
fn assert_valid(sig: &EcdsaSignature, key: &k256::PublicKey, msg: &[u8; 32]) {
    let signature = Signature::from_scalars(sig.r, sig.s).unwrap();
    assert!(signature.normalize_s() == signature, "s is low");
    let vk = VerifyingKey::from(*key);
    vk.verify_prehash(msg, &signature).expect("signature verifies");
    let rid = RecoveryId::from_byte(sig.recovery_id).unwrap();
    let recovered = VerifyingKey::recover_from_prehash(msg, &signature, rid).unwrap();
    assert_eq!(recovered, vk, "recovery id recovers the key");
}

fn sign_with(
    shares: &[KeyShare],
    signers: &[PartyId],
    msg: [u8; 32],
    hd: Option<&HdPath>,
    request: &str,
) -> Vec<(PartyId, Result<EcdsaSignature, ProtocolError>)> {
    let id = eid(Operation::Sign, request);
    let parties = signers
        .iter()
        .map(|p| (*p, Sign::new(id, &shares[usize::from(*p) - 1], signers, msg, hd).unwrap()))
        .collect();
    simulate(parties)
}

fn presign(
    shares: &[KeyShare],
    signers: &[PartyId],
    hd: Option<&HdPath>,
    request: &str,
) -> Vec<Presignature> {
    let id = eid(Operation::Presign, request);
    let parties = signers
        .iter()
        .map(|p| (*p, Presign::new(id, &shares[usize::from(*p) - 1], signers, hd).unwrap()))
        .collect();
    simulate(parties).into_iter().map(|(_, r)| r.unwrap()).collect()
}

const CHAIN_CODE: [u8; 32] = [7u8; 32];

#[test]
fn keygen_sign_presign_and_hd_for_every_committee_shape() {
    for (n, t) in [(3u16, 1u16), (3, 2), (5, 2), (5, 3)] {
        let shares = keygen(n, t);
        let key = shares[0].public_key();
        // The last t + 1 parties sign, so the set is not always {1..t+1}.
        let signers: Vec<PartyId> = (n - t..=n).collect();

        let msg = digest(&format!("full {n} {t}"));
        for (p, out) in sign_with(&shares, &signers, msg, None, &format!("sign-{n}-{t}")) {
            let sig = out.unwrap_or_else(|e| panic!("({n},{t}) party {p}: {e}"));
            assert_valid(&sig, &key, &msg);
        }

        let msg = digest(&format!("presigned {n} {t}"));
        let presigs = presign(&shares, &signers, None, &format!("presign-{n}-{t}"));
        for (p, sig) in online_in_order(presigs, &signers, msg, &format!("online-{n}-{t}")) {
            assert_valid(&sig, &key, &msg);
            assert!(signers.contains(&p));
        }

        let hd = HdPath { chain_code: CHAIN_CODE, path: vec![44, 60, 0, 0, 0] };
        let (child, _) = derive_child(&key, &CHAIN_CODE, &hd.path).unwrap();
        assert_ne!(child, key);
        let msg = digest(&format!("hd {n} {t}"));
        for (_, out) in sign_with(&shares, &signers, msg, Some(&hd), &format!("hd-{n}-{t}")) {
            assert_valid(&out.unwrap(), &child, &msg);
        }
    }
}

/// Run the online round with each presignature handed to its own party (signer order).
fn online_in_order(
    presigs: Vec<Presignature>,
    signers: &[PartyId],
    msg: [u8; 32],
    request: &str,
) -> Vec<(PartyId, EcdsaSignature)> {
    let id = eid(Operation::Sign, request);
    let parties =
        signers.iter().copied().zip(presigs).map(|(p, pre)| (p, SignOnline::new(id, pre, msg))).collect();
    simulate(parties).into_iter().map(|(p, r)| (p, r.unwrap())).collect()
}

#[test]
fn presignature_signs_under_the_hd_child_it_was_made_for() {
    let shares = keygen(3, 1);
    let hd = HdPath { chain_code: CHAIN_CODE, path: vec![44, 60, 0, 0, 0] };
    let (child, _) = derive_child(&shares[0].public_key(), &CHAIN_CODE, &hd.path).unwrap();
    let presigs = presign(&shares, &[1, 3], Some(&hd), "presign-hd");
    assert!(presigs.iter().all(|p| p.public_key() == child));
    let msg = digest("hd presigned");
    for (_, sig) in online_in_order(presigs, &[1, 3], msg, "online-hd") {
        assert_valid(&sig, &child, &msg);
    }
}

#[test]
fn presignature_round_trips_through_bytes_and_refuses_corruption() {
    let shares = keygen(3, 1);
    let presigs = presign(&shares, &[1, 2], None, "presign-bytes");
    let blobs: Vec<_> = presigs.iter().map(|p| p.to_bytes().unwrap()).collect();
    // Serde uses the same checked bytes.
    let via_serde = postcard::to_allocvec(&presigs[0]).unwrap();
    assert_eq!(postcard::from_bytes::<Presignature>(&via_serde).unwrap().party_id(), 1);
    drop(presigs);
    let restored: Vec<Presignature> = blobs.iter().map(|b| Presignature::from_bytes(b).unwrap()).collect();
    let msg = digest("restored presignature");
    for (_, sig) in online_in_order(restored, &[1, 2], msg, "online-bytes") {
        assert_valid(&sig, &shares[0].public_key(), &msg);
    }
    let mut flipped = blobs[0].to_vec();
    flipped[40] ^= 1;
    assert!(Presignature::from_bytes(&flipped).is_err());
    assert!(Presignature::from_bytes(&blobs[0][..blobs[0].len() - 1]).is_err());
}

#[test]
fn online_round_with_mismatched_presignatures_names_the_party() {
    let shares = keygen(3, 1);
    let mut a = presign(&shares, &[1, 2], None, "presign-a");
    let mut b = presign(&shares, &[1, 2], None, "presign-b");
    let msg = digest("mismatch");
    let id = eid(Operation::Sign, "online-mismatch");
    let p2_from_b = b.remove(1);
    let p1_from_a = a.remove(0);
    let results =
        simulate(vec![(1, SignOnline::new(id, p1_from_a, msg)), (2, SignOnline::new(id, p2_from_b, msg))]);
    assert_eq!(results[0].1.as_ref().unwrap_err().culprits(), &[2]);
    assert_eq!(results[1].1.as_ref().unwrap_err().culprits(), &[1]);
}

#[test]
fn keygen_with_a_corrupted_message_names_the_sender() {
    let id = eid(Operation::Keygen, "keygen-tamper");
    for round in 1u8..=3 {
        let parties = (1..=3).map(|me| (me, Keygen::new(id, me, 1, 3).unwrap())).collect();
        // Party 2 garbles a checked field of its messages to party 1 in one round: the
        // fragment (round 1), the proof and seed commitment (round 2), the chain-code and
        // zero-share seed openings (round 3), all near the start of the payload.
        let results = simulate_with(parties, |from, to, data| {
            if from == 2 && to == 1 && data[33] == round {
                data[HEADER + 10] ^= 0x55;
            }
        });
        let err = results[0].1.as_ref().expect_err("party 1 must abort");
        assert!(err.culprits().contains(&2) && !err.culprits().contains(&1), "round {round}: {err}");
        // Party 3 got honest messages: it may finish, abort naming 2 among its suspects (an
        // inconsistent DKG polynomial cannot be attributed, so then it names every peer), or be
        // left waiting for party 1, which stopped at the bad message (in the simulator a stall;
        // over the network the abort notice of party 1).
        if let Err(e) = &results[2].1 {
            assert!(
                *e == ProtocolError::Stalled || (e.culprits().contains(&2) && !e.culprits().contains(&3)),
                "round {round}: {e}"
            );
        }
    }
}

#[test]
fn signing_with_a_corrupted_message_names_the_sender() {
    let shares = keygen(3, 2);
    let signers = [1u16, 2, 3];
    let msg = digest("tamper");
    for round in 1u8..=2 {
        let id = eid(Operation::Sign, &format!("sign-tamper-{round}"));
        let parties = signers
            .iter()
            .map(|p| (*p, Sign::new(id, &shares[usize::from(*p) - 1], &signers, msg, None).unwrap()))
            .collect();
        let results = simulate_with(parties, |from, _, data| {
            if from == 3 && data[33] == round {
                garble_payload(data, 0x01);
            }
        });
        for (p, out) in &results {
            if *p != 3 {
                let err = out.as_ref().expect_err("honest party must abort");
                assert_eq!(err.culprits(), &[3], "round {round}, party {p}: {err}");
            }
        }
    }
    // The last round cannot be checked per sender: the invalid signature blames all others.
    let id = eid(Operation::Sign, "sign-tamper-3");
    let parties = signers
        .iter()
        .map(|p| (*p, Sign::new(id, &shares[usize::from(*p) - 1], &signers, msg, None).unwrap()))
        .collect();
    let results = simulate_with(parties, |from, _, data| {
        if from == 3 && data[33] == 3 {
            let last = data.len() - 1;
            data[last] ^= 0x01;
        }
    });
    for (p, out) in &results {
        if *p != 3 {
            let err = out.as_ref().expect_err("honest party must abort");
            assert!(err.culprits().contains(&3), "party {p}: {err}");
        }
    }
}

/// Frame header: version, execution id, round, kind.
const HEADER: usize = 35;

/// Flip bits in the payload only (the header is tested separately), at its end and middle.
fn garble_payload(data: &mut [u8], mask: u8) {
    let last = data.len() - 1;
    data[last] ^= mask;
    data[HEADER + (data.len() - HEADER) / 2] ^= mask;
}

/// Random single-byte corruptions anywhere in one signer's messages never panic an honest
/// party, and never let it return a signature: it aborts, naming the corrupting party.
#[test]
fn random_corruption_of_signing_messages_aborts_without_panic() {
    let shares = keygen(3, 2);
    let signers = [1u16, 2, 3];
    let msg = digest("fuzz");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..60u64 {
        let round = (i % 3) as u8 + 1;
        let (pos_seed, bit) = (rand(), 1u8 << (rand() % 8));
        let id = eid(Operation::Sign, &format!("fuzz-{i}"));
        let parties = signers
            .iter()
            .map(|p| (*p, Sign::new(id, &shares[usize::from(*p) - 1], &signers, msg, None).unwrap()))
            .collect();
        let mut hit = false;
        let results = simulate_with(parties, |from, to, data| {
            if from == 2 && to == 1 && data[33] == round && !hit {
                hit = true;
                let pos = (pos_seed % data.len() as u64) as usize;
                data[pos] ^= bit;
            }
        });
        let err = results[0].1.as_ref().expect_err("party 1 must not sign over a corrupted message");
        assert!(err.culprits().contains(&2), "case {i} (round {round}): {err}");
    }
}

#[test]
fn a_message_from_another_run_is_rejected() {
    let shares = keygen(3, 1);
    let signers = [1u16, 2];
    let msg = digest("replay");
    let other = eid(Operation::Sign, "another-run");
    let id = eid(Operation::Sign, "this-run");
    let parties = signers
        .iter()
        .map(|p| (*p, Sign::new(id, &shares[usize::from(*p) - 1], &signers, msg, None).unwrap()))
        .collect();
    let results = simulate_with(parties, |from, _, data| {
        if from == 2 {
            data[1..33].copy_from_slice(other.as_bytes());
        }
    });
    let err = results[0].1.as_ref().unwrap_err();
    assert_eq!(err.culprits(), &[2]);
    assert!(err.to_string().contains("another execution"), "{err}");
}

#[test]
fn bad_signer_sets_are_invalid_input() {
    let shares = keygen(3, 1);
    let id = eid(Operation::Sign, "bad-signers");
    let msg = digest("x");
    for signers in [&[1u16, 2, 3][..], &[2, 1], &[2, 3], &[1, 4]] {
        let err = Sign::new(id, &shares[0], signers, msg, None).err().unwrap();
        assert!(matches!(err, ProtocolError::InvalidInput(_)), "{signers:?}: {err}");
    }
    let hardened = HdPath { chain_code: CHAIN_CODE, path: vec![1 << 31] };
    assert!(matches!(
        Sign::new(id, &shares[0], &[1, 2], msg, Some(&hardened)),
        Err(ProtocolError::InvalidInput(_))
    ));
}

#[test]
fn key_share_round_trips_and_refuses_bad_blobs() {
    let shares = keygen(3, 1);
    let blob = shares[1].to_bytes().unwrap();
    let back = KeyShare::from_bytes(&blob).unwrap();
    assert_eq!(back.id(), 2);
    assert_eq!(back.public_key(), shares[1].public_key());
    assert_eq!(back.public_key_xy(), shares[1].public_key_xy());
    // Restored shares still sign.
    let restored: Vec<KeyShare> =
        shares.iter().map(|s| KeyShare::from_bytes(&s.to_bytes().unwrap()).unwrap()).collect();
    let msg = digest("after restore");
    for (_, out) in sign_with(&restored, &[2, 3], msg, None, "restored") {
        assert_valid(&out.unwrap(), &shares[0].public_key(), &msg);
    }
    // Serde goes through the same checked, versioned bytes.
    let via_serde = postcard::to_allocvec(&shares[0]).unwrap();
    let back: KeyShare = postcard::from_bytes(&via_serde).unwrap();
    assert_eq!(back.public_key(), shares[0].public_key());
    let mut bad = via_serde.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    assert!(postcard::from_bytes::<KeyShare>(&bad).is_err());

    assert!(matches!(KeyShare::from_bytes(&blob[..blob.len() / 2]), Err(KeyShareError::Corrupted(_))));
    let mut flipped = blob.to_vec();
    flipped[blob.len() / 3] ^= 0x80;
    assert!(matches!(KeyShare::from_bytes(&flipped), Err(KeyShareError::Corrupted(_))));
    let mut future = blob.to_vec();
    future[1] = 9;
    assert_eq!(KeyShare::from_bytes(&future).unwrap_err(), KeyShareError::UnknownVersion(9));
    let debug = format!("{:?}", shares[0]);
    assert!(debug.contains("redacted") && debug.contains("threshold"), "{debug}");
}

/// Split `secret` with a random polynomial of degree `t` and give party i its value at i.
fn shamir_split(secret: Scalar, t: u16, n: u16) -> BTreeMap<PartyId, Scalar> {
    let coeffs: Vec<Scalar> =
        std::iter::once(secret).chain((0..t).map(|_| *NonZeroScalar::generate())).collect();
    (1..=n)
        .map(|i| {
            let x = Scalar::from(u64::from(i));
            let y = coeffs.iter().rev().fold(Scalar::ZERO, |acc, c| acc * x + c);
            (i, y)
        })
        .collect()
}

#[test]
fn setup_from_shamir_shares_then_sign() {
    for (n, t) in [(3u16, 1u16), (4, 2)] {
        let secret = *NonZeroScalar::generate();
        let public_key =
            k256::PublicKey::from_affine((ProjectivePoint::GENERATOR * secret).to_affine()).unwrap();
        let shares = shamir_split(secret, t, n);
        let public_shares: BTreeMap<PartyId, k256::PublicKey> = shares
            .iter()
            .map(|(i, s)| {
                (*i, k256::PublicKey::from_affine((ProjectivePoint::GENERATOR * s).to_affine()).unwrap())
            })
            .collect();
        let id = eid(Operation::Reshare, &format!("setup-{n}-{t}"));
        let parties = (1..=n)
            .map(|me| {
                let input = SetupInput {
                    me,
                    threshold: t,
                    share: Zeroizing::new(shares[&me]),
                    public_key,
                    public_shares: public_shares.clone(),
                };
                (me, Setup::new(id, input).unwrap())
            })
            .collect();
        let key_shares: Vec<KeyShare> = simulate(parties).into_iter().map(|(_, r)| r.unwrap()).collect();
        for ks in &key_shares {
            assert_eq!(ks.public_key(), public_key, "setup keeps the given key");
            assert_eq!(ks.public_share(ks.id()), Some(public_shares[&ks.id()]));
        }
        let signers: Vec<PartyId> = (1..=t + 1).collect();
        let msg = digest("after setup");
        for (_, out) in sign_with(&key_shares, &signers, msg, None, &format!("setup-sign-{n}-{t}")) {
            assert_valid(&out.unwrap(), &public_key, &msg);
        }
    }
}

#[test]
fn setup_names_a_holder_that_proves_the_wrong_share() {
    let (n, t) = (3u16, 1u16);
    let secret = *NonZeroScalar::generate();
    let public_key = k256::PublicKey::from_affine((ProjectivePoint::GENERATOR * secret).to_affine()).unwrap();
    let shares = shamir_split(secret, t, n);
    let public_shares: BTreeMap<PartyId, k256::PublicKey> = shares
        .iter()
        .map(|(i, s)| {
            (*i, k256::PublicKey::from_affine((ProjectivePoint::GENERATOR * s).to_affine()).unwrap())
        })
        .collect();
    let id = eid(Operation::Reshare, "setup-liar");
    let liar_input = || {
        // Party 3 holds a different secret but claims the right public shares: it cannot start
        // honestly, so bypass its own check by giving it the public share of its wrong value.
        let wrong = shares[&3] + Scalar::ONE;
        let mut claimed = public_shares.clone();
        claimed.insert(
            3,
            k256::PublicKey::from_affine((ProjectivePoint::GENERATOR * wrong).to_affine()).unwrap(),
        );
        (wrong, claimed)
    };
    let (wrong, claimed) = liar_input();
    // Its own view is inconsistent, so Setup refuses to start for it.
    let refused = Setup::new(
        id,
        SetupInput { me: 3, threshold: t, share: Zeroizing::new(wrong), public_key, public_shares: claimed },
    );
    assert!(matches!(refused, Err(ProtocolError::InvalidInput(_))));
    // With a (t = 2, n = 3) sharing of which party 3 alters its share, honest parties name it.
    let t2 = 2u16;
    let shares2 = shamir_split(secret, t2, n);
    let public2: BTreeMap<PartyId, k256::PublicKey> = shares2
        .iter()
        .map(|(i, s)| {
            (*i, k256::PublicKey::from_affine((ProjectivePoint::GENERATOR * s).to_affine()).unwrap())
        })
        .collect();
    let mut liar_view = public2.clone();
    let wrong2 = shares2[&3] + Scalar::ONE;
    liar_view
        .insert(3, k256::PublicKey::from_affine((ProjectivePoint::GENERATOR * wrong2).to_affine()).unwrap());
    // Party 3's own view must still interpolate to the key for it to start: with t = 2 = n - 1
    // every 3 points define the polynomial, so give it the matching (wrong) key view.
    let liar_key = k256::PublicKey::from_affine(
        (ProjectivePoint::from(*public_key.as_affine()) + lagrange_at_zero_shift(3, &[1, 2, 3], Scalar::ONE))
            .to_affine(),
    )
    .unwrap();
    let parties = (1..=n)
        .map(|me| {
            let input = if me == 3 {
                SetupInput {
                    me,
                    threshold: t2,
                    share: Zeroizing::new(wrong2),
                    public_key: liar_key,
                    public_shares: liar_view.clone(),
                }
            } else {
                SetupInput {
                    me,
                    threshold: t2,
                    share: Zeroizing::new(shares2[&me]),
                    public_key,
                    public_shares: public2.clone(),
                }
            };
            (me, Setup::new(id, input).unwrap())
        })
        .collect();
    let results = simulate(parties);
    for (p, out) in &results {
        if *p != 3 {
            assert_eq!(out.as_ref().unwrap_err().culprits(), &[3], "party {p}");
        }
    }
}

/// `delta · λ_i(0) · G` for the set `ids`: how the value at 0 moves when party i's share moves by delta.
fn lagrange_at_zero_shift(i: PartyId, ids: &[PartyId], delta: Scalar) -> ProjectivePoint {
    let xi = Scalar::from(u64::from(i));
    let mut l = Scalar::ONE;
    for j in ids.iter().filter(|j| **j != i) {
        let xj = Scalar::from(u64::from(*j));
        l *= xj * (xj - xi).invert().unwrap();
    }
    ProjectivePoint::GENERATOR * (l * delta)
}

#[test]
fn refresh_keeps_the_key_and_old_shares_do_not_mix_with_new_ones() {
    let (n, t) = (3u16, 1u16);
    let old = keygen(n, t);
    let id = eid(Operation::Refresh, "refresh");
    let new: Vec<KeyShare> = simulate(old.iter().map(|s| (s.id(), Refresh::new(id, s))).collect())
        .into_iter()
        .map(|(_, r)| r.unwrap())
        .collect();
    let key = old[0].public_key();
    for (o, s) in old.iter().zip(&new) {
        assert_eq!(s.public_key(), key, "the key does not move");
        assert_ne!(s.public_share(s.id()), o.public_share(o.id()), "the share does");
    }
    let msg = digest("after refresh");
    for (_, out) in sign_with(&new, &[1, 3], msg, None, "refreshed-sign") {
        assert_valid(&out.unwrap(), &key, &msg);
    }
    // An old share of party 1 with a new share of party 3 cannot sign.
    let sid = eid(Operation::Sign, "mixed");
    let mixed = simulate(vec![
        (1, Sign::new(sid, &old[0], &[1, 3], msg, None).unwrap()),
        (3, Sign::new(sid, &new[2], &[1, 3], msg, None).unwrap()),
    ]);
    assert!(mixed.iter().all(|(_, r)| r.is_err()));
}
