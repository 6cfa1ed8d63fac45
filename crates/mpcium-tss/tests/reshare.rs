//! Curve-generic resharing at the share level (secp256k1 and Ed25519 scalars): the new shares
//! interpolate to the same secret, public shares are consistent, and faults name the dealer.

use std::collections::BTreeMap;

use mpcium_tss::curve::{Curve, Ed25519, Secp256k1};
use mpcium_tss::reshare::{
    Member, NewShare, OldKey, Reshare, ReshareOutput, Roster, evaluate_commitments, lagrange_at_zero, refresh,
};
use mpcium_tss::{
    ExecutionContext, ExecutionId, KeyType, Operation, PartyId, ProtocolError, simulate, simulate_with,
};
use zeroize::Zeroizing;

fn exec(request: &str) -> ExecutionId {
    ExecutionId::new(&ExecutionContext {
        operation: Operation::Reshare,
        key_type: KeyType::Secp256k1,
        wallet_id: "w",
        key_version: 1,
        participants: &["a", "b", "c"],
        new_participants: &[],
        request_id: request,
    })
}

/// A dealer-split key: secret, threshold t, shares at 1..=n.
struct Split<C: Curve> {
    secret: C::Scalar,
    old: OldKey<C>,
    shares: BTreeMap<PartyId, C::Scalar>,
}

fn split<C: Curve>(n: u16, t: u16) -> Split<C> {
    let coeffs: Vec<C::Scalar> = (0..=t).map(|_| C::random_scalar()).collect();
    let commitments: Vec<C::Point> = coeffs.iter().map(|c| C::generator() * *c).collect();
    let mut shares = BTreeMap::new();
    let mut public_shares = BTreeMap::new();
    for i in 1..=n {
        let x = C::scalar_from_u64(u64::from(i));
        let s = coeffs.iter().rev().fold(C::scalar_from_u64(0), |acc, c| acc * x + *c);
        shares.insert(i, s);
        public_shares.insert(i, evaluate_commitments::<C>(&commitments, i));
    }
    Split { secret: coeffs[0], old: OldKey::new(t, commitments[0], public_shares), shares }
}

fn interpolate<C: Curve>(shares: &[(PartyId, C::Scalar)]) -> C::Scalar {
    let xs: Vec<PartyId> = shares.iter().map(|(i, _)| *i).collect();
    shares
        .iter()
        .fold(C::scalar_from_u64(0), |acc, (i, s)| acc + lagrange_at_zero::<C>(&xs, *i).unwrap() * *s)
}

fn run<C: Curve>(
    key: &Split<C>,
    roster: Roster,
    t_new: u16,
    id: ExecutionId,
    tamper: impl FnMut(PartyId, PartyId, &mut Vec<u8>),
) -> Vec<(PartyId, Result<ReshareOutput<C>, ProtocolError>)> {
    let parties = roster
        .members()
        .iter()
        .map(|m| {
            let secret = m.old.map(|o| Zeroizing::new(key.shares[&o]));
            (m.id, Reshare::new(id, m.id, roster.clone(), t_new, key.old.clone(), secret).unwrap())
        })
        .collect();
    simulate_with(parties, tamper)
}

fn new_shares<C: Curve>(
    results: Vec<(PartyId, Result<ReshareOutput<C>, ProtocolError>)>,
) -> (Vec<NewShare<C>>, usize) {
    let mut shares = Vec::new();
    let mut retired = 0;
    for (id, r) in results {
        match r.unwrap_or_else(|e| panic!("party {id}: {e}")) {
            ReshareOutput::Share(s) => shares.push(s),
            ReshareOutput::Retired => retired += 1,
        }
    }
    (shares, retired)
}

/// Every new share matches every holder's view of the public shares, any t'+1 of them
/// interpolate to the old secret, and t' of them do not.
fn check_new_sharing<C: Curve>(key: &Split<C>, shares: &[NewShare<C>], t_new: u16) {
    for s in shares {
        assert_eq!(s.threshold, t_new);
        assert_eq!(s.public_key, key.old.public_key, "public key unchanged");
        assert_eq!(s.public_shares, shares[0].public_shares, "same public shares everywhere");
        assert_eq!(s.public_shares[&s.party], C::generator() * *s.secret_share, "own public share");
    }
    let points: Vec<(PartyId, C::Scalar)> = shares.iter().map(|s| (s.party, *s.secret_share)).collect();
    let k = usize::from(t_new) + 1;
    assert!(interpolate::<C>(&points[..k]) == key.secret, "first t'+1 shares give the secret");
    assert!(interpolate::<C>(&points[points.len() - k..]) == key.secret, "last t'+1 shares give the secret");
    assert!(interpolate::<C>(&points[..k - 1]) != key.secret, "t' shares do not");
}

fn member(id: PartyId, old: Option<PartyId>, new: Option<PartyId>) -> Member {
    Member { id, old, new }
}

#[test]
fn secp256k1_reshare_to_a_larger_committee_with_higher_threshold() {
    // 2-of-3 (t=1) → 3-of-5 (t'=2): old 1 and 3 deal; old 1 stays as new 1; 3 leaves; four newcomers.
    let key = split::<Secp256k1>(3, 1);
    let roster = Roster::new(vec![
        member(1, Some(1), Some(1)),
        member(2, Some(3), None),
        member(3, None, Some(2)),
        member(4, None, Some(3)),
        member(5, None, Some(4)),
        member(6, None, Some(5)),
    ])
    .unwrap();
    let (shares, retired) = new_shares(run(&key, roster, 2, exec("r1"), |_, _, _| {}));
    assert_eq!((shares.len(), retired), (5, 1));
    check_new_sharing(&key, &shares, 2);
}

#[test]
fn secp256k1_reshare_to_a_smaller_committee_and_refresh() {
    // 3-of-5 (t=2) → 2-of-3 (t'=1): old 1, 2, 4 deal; old 1 leaves; 2 and 4 stay; one newcomer.
    let key = split::<Secp256k1>(5, 2);
    let roster = Roster::new(vec![
        member(1, Some(1), None),
        member(2, Some(2), Some(1)),
        member(3, Some(4), Some(2)),
        member(4, None, Some(3)),
    ])
    .unwrap();
    let (shares, retired) = new_shares(run(&key, roster, 1, exec("r2"), |_, _, _| {}));
    assert_eq!((shares.len(), retired), (3, 1));
    check_new_sharing(&key, &shares, 1);

    // Refresh of the original 3-of-5: new shares, same public key, old shares differ from new.
    let committee = [1, 2, 3, 4, 5];
    let signers = [2, 3, 5];
    let parties = committee
        .iter()
        .map(|&p| {
            let secret = signers.contains(&p).then(|| Zeroizing::new(key.shares[&p]));
            (p, refresh(exec("r3"), p, &committee, &signers, key.old.clone(), secret).unwrap())
        })
        .collect();
    let (shares, retired) = new_shares(simulate(parties));
    assert_eq!((shares.len(), retired), (5, 0));
    check_new_sharing(&key, &shares, 2);
    assert!(shares.iter().all(|s| *s.secret_share != key.shares[&s.party]), "shares were refreshed");
}

#[test]
fn ed25519_scalar_reshare_keeps_the_secret() {
    let key = split::<Ed25519>(3, 2);
    let roster = Roster::new(vec![
        member(1, Some(1), Some(1)),
        member(2, Some(2), Some(2)),
        member(3, Some(3), Some(3)),
        member(4, None, Some(4)),
    ])
    .unwrap();
    let (shares, _) = new_shares(run(&key, roster, 1, exec("r4"), |_, _, _| {}));
    check_new_sharing(&key, &shares, 1);
}

fn roster_3_to_3() -> Roster {
    Roster::new(vec![member(1, Some(1), Some(1)), member(2, Some(2), Some(2)), member(3, None, Some(3))])
        .unwrap()
}

/// Every honest receiver's outcome blames exactly `culprit`.
fn assert_blamed<C: Curve>(results: &[(PartyId, Result<ReshareOutput<C>, ProtocolError>)], culprit: PartyId) {
    let mut blamed = 0;
    for (id, r) in results {
        if *id == culprit {
            continue;
        }
        if let Err(e) = r {
            assert!(e.culprits().contains(&culprit), "party {id} blames {e}");
            blamed += 1;
        } else {
            panic!("party {id} accepted a faulty run");
        }
    }
    assert!(blamed > 0);
}

#[test]
fn a_corrupted_sub_share_names_its_dealer() {
    let key = split::<Secp256k1>(3, 1);
    // Tag 2 = sub-share; flip its last byte (still a canonical scalar).
    let results = run(&key, roster_3_to_3(), 1, exec("m1"), |from, to, data| {
        if from == 2 && to == 3 && data[0] == 2 {
            let last = data.len() - 1;
            data[last] ^= 1;
        }
    });
    let (id, r) = &results[2];
    assert_eq!(*id, 3);
    let e = r.as_ref().unwrap_err();
    assert_eq!(e.culprits(), &[2], "{e}");
    assert!(e.to_string().contains("sub-share"), "{e}");
}

#[test]
fn a_corrupted_commitment_names_its_dealer() {
    let key = split::<Secp256k1>(3, 1);
    // Replace dealer 1's second commitment with G (valid point, wrong value): sub-shares fail.
    let g = Secp256k1::point_to_bytes(&Secp256k1::generator());
    let results = run(&key, roster_3_to_3(), 1, exec("m2"), |from, _, data| {
        if from == 1 && data[0] == 1 {
            let start = 1 + 32 + 33;
            data[start..start + 33].copy_from_slice(&g);
        }
    });
    assert_blamed(&results, 1);
}

#[test]
fn a_wrong_constant_term_names_its_dealer() {
    // The dealer shares a different secret: its own commitments and sub-shares are consistent,
    // but C_i[0] is not λ_i·X_i, so the public key would change.
    let key = split::<Secp256k1>(3, 1);
    let roster = roster_3_to_3();
    let id = exec("m3");
    let fake = Secp256k1::random_scalar();
    let mut parties = Vec::new();
    for m in roster.members() {
        let honest = m.id != 2;
        let secret = m.old.map(|o| Zeroizing::new(if honest { key.shares[&o] } else { fake }));
        // The liar bypasses the input check by claiming its fake share's public share.
        let mut old = key.old.clone();
        if !honest {
            old.public_shares.insert(2, Secp256k1::generator() * fake);
            // Keep the claimed public shares consistent with the public key for the input check.
            let l1 = lagrange_at_zero::<Secp256k1>(&[1, 2], 1).unwrap();
            let l2 = lagrange_at_zero::<Secp256k1>(&[1, 2], 2).unwrap();
            old.public_key = old.public_shares[&1] * l1 + old.public_shares[&2] * l2;
        }
        parties.push((m.id, Reshare::new(id, m.id, roster.clone(), 1, old, secret).unwrap()));
    }
    let results = simulate(parties);
    for (pid, r) in &results {
        if *pid != 2 {
            let e = r.as_ref().unwrap_err();
            assert_eq!(e.culprits(), &[2], "{e}");
            assert!(e.to_string().contains("constant term"), "{e}");
        }
    }
}

#[test]
fn a_message_of_another_execution_is_refused() {
    let key = split::<Secp256k1>(3, 1);
    let other = exec("other-run");
    let results = run(&key, roster_3_to_3(), 1, exec("m4"), |from, _, data| {
        if from == 1 {
            data[1..33].copy_from_slice(other.as_bytes());
        }
    });
    for (id, r) in &results[1..] {
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.culprits(), &[1], "party {id}: {e}");
        assert!(e.to_string().contains("another execution"), "{e}");
    }
}

#[test]
fn an_equivocating_dealer_is_caught_by_the_confirmation_round() {
    // Dealer 1 sends member 3 a wholly different (self-consistent) polynomial with the same
    // constant term: each receiver's local checks pass, only the views differ.
    let key = split::<Secp256k1>(3, 1);
    let results = run(&key, roster_3_to_3(), 1, exec("m5"), |from, to, data| {
        // Re-randomise the second commitment and the matching sub-share for member 3:
        // C'[1] = C[1] + G, f'(3) = f(3) + 3.
        if from == 1 && to == 3 {
            match data[0] {
                1 => {
                    let start = 1 + 32 + 33;
                    let c1 = Secp256k1::point_from_bytes(&data[start..start + 33]).unwrap();
                    let moved = Secp256k1::point_to_bytes(&(c1 + Secp256k1::generator()));
                    data[start..start + 33].copy_from_slice(&moved);
                }
                2 => {
                    let s = Secp256k1::scalar_from_bytes(&data[33..]).unwrap();
                    let moved = s + Secp256k1::scalar_from_u64(3);
                    data[33..].copy_from_slice(&Secp256k1::scalar_to_bytes(&moved));
                }
                _ => {}
            }
        }
    });
    for (id, r) in &results[1..] {
        let e = r.as_ref().unwrap_err();
        assert!(e.culprits().contains(&1), "party {id}: {e}");
        assert!(e.to_string().contains("equivocated"), "{e}");
    }
}

#[test]
fn bad_inputs_are_refused() {
    let key = split::<Secp256k1>(3, 1);
    let id = exec("i");
    // Three dealers for t_old = 1.
    let roster =
        Roster::new(vec![member(1, Some(1), Some(1)), member(2, Some(2), Some(2)), member(3, Some(3), None)])
            .unwrap();
    let s = Some(Zeroizing::new(key.shares[&1]));
    assert!(matches!(
        Reshare::new(id, 1, roster, 1, key.old.clone(), s.clone()),
        Err(ProtocolError::InvalidInput(_))
    ));
    // New threshold equal to the number of receivers.
    assert!(matches!(
        Reshare::new(id, 1, roster_3_to_3(), 3, key.old.clone(), s.clone()),
        Err(ProtocolError::InvalidInput(_))
    ));
    // A secret that does not match the public share.
    let wrong = Some(Zeroizing::new(key.shares[&2]));
    assert!(matches!(
        Reshare::new(id, 1, roster_3_to_3(), 1, key.old.clone(), wrong),
        Err(ProtocolError::InvalidInput(_))
    ));
    // Duplicate new ids.
    assert!(Roster::new(vec![member(1, Some(1), Some(1)), member(2, None, Some(1))]).is_err());
}
