//! Imported (tss-lib style) keys: Shamir shares at large, arbitrary x-coordinates are checked
//! against their public data, then converted onto a committee of ours at 1..=n by the holders
//! dealing from their own points. The public key comes out unchanged and the new shares sign.

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use mpcium_tss::curve::{Curve, Ed25519, Secp256k1};
use mpcium_tss::legacy::{CheckedLegacyShare, LegacyError, LegacyHolder, LegacyShare};
use mpcium_tss::reshare::{Member, OldKey, Roster};
use mpcium_tss::{
    ExecutionContext, ExecutionId, KeyType, Operation, PartyId, Protocol, ProtocolError, simulate,
    simulate_with,
};
use zeroize::Zeroizing;

fn eid(key_type: KeyType, op: Operation, request: &str) -> ExecutionId {
    ExecutionId::new(&ExecutionContext {
        operation: op,
        key_type,
        wallet_id: "imported-wallet",
        key_version: 1,
        participants: &["n1", "n2", "n3"],
        new_participants: &[],
        request_id: request,
    })
}

/// A tss-lib-like sharing: a random degree-`t` polynomial evaluated at `n` random points (tss-lib
/// uses its party keys, numbers far above n).
struct Sharing<C: Curve> {
    threshold: u16,
    public_key: C::Point,
    holders: Vec<LegacyHolder<C>>,
    secrets: Vec<C::Scalar>,
}

fn sharing<C: Curve>(n: usize, t: u16) -> Sharing<C> {
    let coefficients: Vec<C::Scalar> = (0..=t).map(|_| C::random_scalar()).collect();
    let eval = |x: C::Scalar| coefficients.iter().rev().fold(C::scalar_from_u64(0), |acc, c| acc * x + *c);
    let xs: Vec<C::Scalar> = (0..n).map(|_| C::random_scalar()).collect();
    let secrets: Vec<C::Scalar> = xs.iter().map(|x| eval(*x)).collect();
    Sharing {
        threshold: t,
        public_key: C::generator() * coefficients[0],
        holders: xs
            .iter()
            .zip(&secrets)
            .map(|(x, s)| LegacyHolder { x: *x, public_share: C::generator() * *s })
            .collect(),
        secrets,
    }
}

impl<C: Curve> Sharing<C> {
    fn share(&self, me: usize) -> LegacyShare<C> {
        LegacyShare {
            threshold: self.threshold,
            public_key: self.public_key,
            holders: self.holders.clone(),
            me,
            secret: Zeroizing::new(self.secrets[me]),
        }
    }

    fn checked(&self) -> Vec<CheckedLegacyShare<C>> {
        (0..self.holders.len()).map(|me| self.share(me).check().unwrap()).collect()
    }
}

/// Imported holders (transport ids 1..=n_old, the first t+1 deal) onto new ids 1..=n_new: old
/// holder i receives new id i when i <= n_new; further receivers get transport ids after them.
fn roster(n_old: u16, t_old: u16, n_new: u16) -> Roster {
    let mut members: Vec<Member> = (1..=n_old)
        .map(|i| Member { id: i, old: (i <= t_old + 1).then_some(i), new: (i <= n_new).then_some(i) })
        .filter(|m| m.old.is_some() || m.new.is_some())
        .collect();
    members.extend((n_old + 1..=n_new).map(|j| Member { id: j, old: None, new: Some(j) }));
    Roster::new(members).unwrap()
}

#[test]
fn a_consistent_import_passes_for_every_holder() {
    for t in 1..=3u16 {
        let s = sharing::<Secp256k1>(5, t);
        for (i, c) in s.checked().iter().enumerate() {
            assert_eq!(c.old_id(), i as PartyId + 1);
            assert_eq!(c.threshold(), t);
            assert_eq!(c.public_key(), s.public_key);
            let old = c.old_key();
            assert_eq!(old.evaluation_point(c.old_id()), s.holders[i].x);
        }
        sharing::<Ed25519>(4, t.min(3)).checked();
    }
}

#[test]
fn a_threshold_that_does_not_match_the_shares_is_refused() {
    // Degree 1 stated as 2: two points already give the public key.
    let s = sharing::<Secp256k1>(3, 1);
    let mut share = s.share(0);
    share.threshold = 2;
    assert_eq!(share.check().unwrap_err(), LegacyError::DegreeBelow(2));
    // Degree 2 stated as 1: the first two points miss the public key.
    let s = sharing::<Ed25519>(4, 2);
    let mut share = s.share(1);
    share.threshold = 1;
    assert_eq!(share.check().unwrap_err(), LegacyError::NotThePublicKey(1));
    // Threshold not below the number of holders.
    let mut share = sharing::<Secp256k1>(3, 1).share(0);
    share.threshold = 3;
    assert_eq!(share.check().unwrap_err(), LegacyError::Shape { holders: 3, threshold: 3 });
}

#[test]
fn a_share_or_public_data_of_another_key_is_refused() {
    let a = sharing::<Secp256k1>(3, 1);
    let b = sharing::<Secp256k1>(3, 1);
    // b's secret with a's public data.
    let mut share = a.share(2);
    share.secret = Zeroizing::new(b.secrets[2]);
    assert_eq!(share.check().unwrap_err(), LegacyError::SecretMismatch);
    // a's share with b's public key.
    let mut share = a.share(0);
    share.public_key = b.public_key;
    assert_eq!(share.check().unwrap_err(), LegacyError::NotThePublicKey(1));
    // One public share swapped for another key's (holder 2, beyond the first t+1).
    let mut share = a.share(0);
    share.holders[2] = b.holders[2];
    assert_eq!(share.check().unwrap_err(), LegacyError::OffPolynomial { holder: 2, threshold: 1 });
    // Two holders at one point; and a holder at zero.
    let mut share = a.share(0);
    share.holders[1].x = share.holders[0].x;
    assert_eq!(share.check().unwrap_err(), LegacyError::BadPoint(1));
    let mut share = a.share(0);
    share.holders[2].x = Secp256k1::scalar_from_u64(0);
    assert_eq!(share.check().unwrap_err(), LegacyError::BadPoint(2));
    let mut share = a.share(0);
    share.me = 3;
    assert_eq!(share.check().unwrap_err(), LegacyError::NotAHolder(3));
}

/// Convert `s` (3 imported holders, the first t+1 deal) onto `n_new` holders of ours with
/// threshold `t_new`; every member receives. `start` makes a member's run, `share` takes its
/// result's key share. The new shares, by new id.
fn convert<C: Curve, P: Protocol, K>(
    s: &Sharing<C>,
    n_new: u16,
    t_new: u16,
    start: impl Fn(PartyId, Roster, u16, OldKey<C>, Option<&CheckedLegacyShare<C>>) -> Result<P, ProtocolError>,
    share: impl Fn(P::Output) -> Option<K>,
) -> Vec<K> {
    let checked = s.checked();
    let old = checked[0].old_key();
    let roster = roster(s.holders.len() as u16, s.threshold, n_new);
    let parties = roster
        .members()
        .iter()
        .map(|m| {
            let dealer = m.old.map(|o| &checked[usize::from(o) - 1]);
            (m.id, start(m.id, roster.clone(), t_new, old.clone(), dealer).unwrap())
        })
        .collect();
    simulate(parties)
        .into_iter()
        .map(|(p, r)| share(r.unwrap_or_else(|e| panic!("member {p}: {e}"))).expect("every member receives"))
        .collect()
}

#[test]
fn an_imported_ecdsa_key_converts_to_dkls23_shares_that_sign_under_the_same_key() {
    use mpcium_tss::ecdsa::{Reshare, ReshareResult, Sign};
    let s = sharing::<Secp256k1>(3, 1);
    let id = eid(KeyType::Secp256k1, Operation::Reshare, "import");
    // 3 imported holders (2 deal) onto 4 of ours with t = 2.
    let mut shares = convert(
        &s,
        4,
        2,
        |me, roster, t, old, dealer| Reshare::import(id, me, roster, t, old, dealer),
        |r| match r {
            ReshareResult::Share(k) => Some(*k),
            ReshareResult::Retired => None,
        },
    );
    shares.sort_by_key(|k| k.id());
    let key = shares[0].public_key();
    assert_eq!(key.to_projective(), s.public_key, "the public key is unchanged");
    let msg = [7u8; 32];
    let signers: Vec<PartyId> = vec![1, 3, 4];
    let sid = eid(KeyType::Secp256k1, Operation::Sign, "after-import");
    let parties = signers
        .iter()
        .map(|p| (*p, Sign::new(sid, &shares[usize::from(*p) - 1], &signers, msg, None).unwrap()))
        .collect();
    for (p, out) in simulate(parties) {
        let sig = out.unwrap_or_else(|e| panic!("signer {p}: {e}"));
        let sig = k256::ecdsa::Signature::from_scalars(sig.r, sig.s).unwrap();
        k256::ecdsa::VerifyingKey::from(key)
            .verify_prehash(&msg, &sig)
            .expect("verifies under the imported key");
    }
}

#[test]
fn an_imported_eddsa_key_converts_to_frost_shares_that_sign_under_the_same_key() {
    use mpcium_tss::eddsa::{Reshare, ReshareResult, Sign};
    let s = sharing::<Ed25519>(3, 1);
    let id = eid(KeyType::Ed25519, Operation::Reshare, "import");
    let mut shares = convert(
        &s,
        3,
        1,
        |me, roster, t, old, dealer| Reshare::import(id, me, roster, t, old, dealer),
        |r| match r {
            ReshareResult::Share(k) => Some(*k),
            ReshareResult::Retired => None,
        },
    );
    shares.sort_by_key(|k| k.party());
    assert_eq!(shares[0].public_key(), s.public_key, "the public key is unchanged");
    let signers: Vec<PartyId> = vec![2, 3];
    let sid = eid(KeyType::Ed25519, Operation::Sign, "after-import");
    let message = b"a transfer from an imported wallet";
    let parties = signers
        .iter()
        .map(|p| (*p, Sign::new(sid, &shares[usize::from(*p) - 1], &signers, message).unwrap()))
        .collect();
    for (p, out) in simulate(parties) {
        let sig = out.unwrap_or_else(|e| panic!("signer {p}: {e}"));
        ed25519_dalek::VerifyingKey::from_bytes(&shares[0].public_key_bytes())
            .unwrap()
            .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig))
            .expect("verify_strict under the imported key");
    }
}

#[test]
fn a_dealer_that_deals_from_another_share_is_named() {
    use mpcium_tss::eddsa::{Reshare, ReshareResult};
    let s = sharing::<Ed25519>(3, 1);
    let other = sharing::<Ed25519>(3, 1);
    let checked = s.checked();
    // Dealer 2 holds, unknown to the others, the share of another key at the same point.
    let mut forged = other.share(1);
    forged.holders = other.holders.clone();
    let forged = forged.check().unwrap();
    let old = checked[0].old_key();
    let roster = roster(3, 1, 3);
    let id = eid(KeyType::Ed25519, Operation::Reshare, "forged");
    let parties = roster
        .members()
        .iter()
        .map(|m| {
            let share = match m.old {
                Some(2) => Some(&forged),
                Some(o) => Some(&checked[usize::from(o) - 1]),
                None => None,
            };
            // The forger runs with its own (other) public data, so it passes its own checks.
            let old = if m.id == 2 { forged.old_key() } else { old.clone() };
            (m.id, Reshare::import(id, m.id, roster.clone(), 1, old, share).unwrap())
        })
        .collect();
    let results = simulate_with(parties, |_, _, _| {});
    for (p, r) in results.into_iter().filter(|(p, _)| *p != 2) {
        match r {
            Err(ProtocolError::Faulty { parties, .. }) => {
                assert!(parties.contains(&2), "member {p} names dealer 2")
            }
            Err(e) => panic!("member {p}: unexpected {e}"),
            Ok(ReshareResult::Share(_) | ReshareResult::Retired) => {
                panic!("member {p} accepted a forged dealer")
            }
        }
    }
}

#[test]
fn a_share_round_trips_through_bytes_and_refuses_other_curves_and_truncation() {
    let s = sharing::<Secp256k1>(3, 1);
    let bytes = s.share(1).to_bytes();
    let back = LegacyShare::<Secp256k1>::from_bytes(&bytes).unwrap().check().unwrap();
    assert_eq!(back.old_id(), 2);
    assert_eq!(*back.secret(), s.secrets[1]);
    assert_eq!(back.old_key(), s.checked()[1].old_key());
    assert_eq!(
        LegacyShare::<Ed25519>::from_bytes(&bytes).unwrap_err(),
        LegacyError::Malformed("a share of another curve")
    );
    assert!(LegacyShare::<Secp256k1>::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert_eq!(
        LegacyShare::<Secp256k1>::from_bytes(&longer).unwrap_err(),
        LegacyError::Malformed("trailing bytes")
    );
    let e = sharing::<Ed25519>(4, 2);
    let back = LegacyShare::<Ed25519>::from_bytes(&e.share(3).to_bytes()).unwrap().check().unwrap();
    assert_eq!(back.public_key(), e.public_key);
}
