//! ECDSA resharing (Feldman redistribution + DKLs23 setup) and refresh, each followed by a
//! signature from the new shares checked by k256.

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{Signature, VerifyingKey};
use mpcium_tss::ecdsa::{KeyShare, Keygen, Reshare, ReshareResult, Sign};
use mpcium_tss::reshare::{Member, Roster};
use mpcium_tss::{
    Action, ExecutionContext, ExecutionId, KeyType, Operation, PartyId, Protocol, ProtocolError, simulate,
    simulate_with,
};

fn eid(op: Operation, request: &str) -> ExecutionId {
    ExecutionId::new(&ExecutionContext {
        operation: op,
        key_type: KeyType::Secp256k1,
        wallet_id: "wallet-ecdsa-reshare",
        key_version: 1,
        participants: &["n1", "n2", "n3", "n4", "n5"],
        new_participants: &[],
        request_id: request,
    })
}

fn keygen(n: u16, t: u16) -> Vec<KeyShare> {
    let id = eid(Operation::Keygen, &format!("kg-{n}-{t}"));
    simulate((1..=n).map(|me| (me, Keygen::new(id, me, t, n).unwrap())).collect())
        .into_iter()
        .map(|(_, r)| r.unwrap())
        .collect()
}

fn sign_and_check(shares: &[KeyShare], signers: &[PartyId], key: &k256::PublicKey, tag: &str) {
    let msg: [u8; 32] = {
        use k256::sha2::{Digest, Sha256};
        Sha256::digest(tag.as_bytes()).into()
    };
    let id = eid(Operation::Sign, tag);
    let parties = signers
        .iter()
        .map(|p| (*p, Sign::new(id, &shares[usize::from(*p) - 1], signers, msg, None).unwrap()))
        .collect();
    for (p, out) in simulate(parties) {
        let sig = out.unwrap_or_else(|e| panic!("signer {p}: {e}"));
        let s = Signature::from_scalars(sig.r, sig.s).unwrap();
        VerifyingKey::from(*key).verify_prehash(&msg, &s).expect("verifies under the unchanged key");
    }
}

/// Reshare from `old` (dealers = the first t_old+1 old parties) to `n_new` holders with
/// threshold `t_new`. Old party i keeps transport id i; newcomers get ids after the old ones.
/// `keep` = how many of the old parties are also in the new committee (at new ids 1..=keep).
fn reshare(old: &[KeyShare], keep: u16, n_new: u16, t_new: u16, tag: &str) -> Vec<KeyShare> {
    let t_old = old[0].threshold();
    let n_old = old.len() as u16;
    let mut members = Vec::new();
    for i in 1..=n_old {
        let old_id = (i <= t_old + 1).then_some(i);
        let new_id = (i <= keep).then_some(i);
        if old_id.is_some() || new_id.is_some() {
            members.push(Member { id: i, old: old_id, new: new_id });
        }
    }
    for j in keep + 1..=n_new {
        members.push(Member { id: n_old + j, old: None, new: Some(j) });
    }
    let roster = Roster::new(members.clone()).unwrap();
    let id = eid(Operation::Reshare, tag);
    let old_key = old[0].old_key();
    let parties = members
        .iter()
        .map(|m| {
            let share = (m.id <= n_old).then(|| &old[usize::from(m.id) - 1]);
            (m.id, Reshare::new(id, m.id, roster.clone(), t_new, old_key.clone(), share).unwrap())
        })
        .collect();
    let mut new_shares: Vec<(PartyId, KeyShare)> = Vec::new();
    for (member, out) in simulate(parties) {
        match out.unwrap_or_else(|e| panic!("member {member}: {e}")) {
            ReshareResult::Share(s) => new_shares.push((s.id(), *s)),
            ReshareResult::Retired => {
                assert!(
                    members.iter().any(|m| m.id == member && m.new.is_none()),
                    "only non-receivers retire"
                )
            }
        }
    }
    new_shares.sort_by_key(|(p, _)| *p);
    assert_eq!(new_shares.len(), usize::from(n_new));
    new_shares.into_iter().map(|(_, s)| s).collect()
}

#[test]
fn reshare_to_fewer_more_and_higher_threshold_then_sign() {
    let old = keygen(3, 1);
    let key = old[0].public_key();
    // 3 → 2 holders (t = 1): nodes {1, 2} keep the key.
    let two = reshare(&old, 2, 2, 1, "to-two");
    assert!(two.iter().all(|s| s.public_key() == key && s.threshold() == 1));
    sign_and_check(&two, &[1, 2], &key, "after 3->2");
    // 3 → 4 holders, t = 1 → 2.
    let four = reshare(&old, 3, 4, 2, "to-four");
    assert!(four.iter().all(|s| s.public_key() == key && s.threshold() == 2));
    sign_and_check(&four, &[1, 3, 4], &key, "after 3->4 t=2");
    sign_and_check(&four, &[2, 3, 4], &key, "after 3->4 t=2 other signers");
}

#[test]
fn refresh_keeps_the_key_and_changes_the_shares() {
    let old = keygen(3, 1);
    let key = old[0].public_key();
    let id = eid(Operation::Refresh, "refresh");
    let parties = old.iter().map(|s| (s.id(), Reshare::refresh(id, s, &[1, 2]).unwrap())).collect();
    let fresh: Vec<KeyShare> = simulate(parties)
        .into_iter()
        .map(|(_, r)| match r.unwrap() {
            ReshareResult::Share(s) => *s,
            ReshareResult::Retired => panic!("a refresh retires nobody"),
        })
        .collect();
    assert!(fresh.iter().all(|s| s.public_key() == key));
    assert_ne!(fresh[0].to_bytes().unwrap(), old[0].to_bytes().unwrap());
    sign_and_check(&fresh, &[2, 3], &key, "after refresh");
}

#[test]
fn a_corrupted_sub_share_names_the_dealer() {
    let old = keygen(3, 1);
    let roster = Roster::new(vec![
        Member { id: 1, old: Some(1), new: Some(1) },
        Member { id: 2, old: Some(2), new: Some(2) },
        Member { id: 3, old: None, new: Some(3) },
    ])
    .unwrap();
    let id = eid(Operation::Reshare, "corrupt");
    let parties = (1..=3u16)
        .map(|m| {
            let share = (m <= 2).then(|| &old[usize::from(m) - 1]);
            (m, Reshare::new(id, m, roster.clone(), 1, old[0].old_key(), share).unwrap())
        })
        .collect();
    // Dealer 2's first phase-1 private message to member 3 is flipped.
    let mut done = false;
    let results = simulate_with(parties, |from, to, data| {
        if !done && from == 2 && to == 3 && data.first() == Some(&1) && data.len() > 40 {
            let last = data.len() - 1;
            data[last] ^= 1;
            done = true;
        }
    });
    let culprits = |r: &Result<ReshareResult, ProtocolError>| match r {
        Err(e) => e.culprits().to_vec(),
        Ok(_) => vec![],
    };
    assert!(
        culprits(&results[2].1).contains(&2),
        "member 3 names dealer 2: {:?}",
        results[2].1.as_ref().err()
    );
}

/// One message as the protocol handed it out.
#[derive(Debug)]
struct Sent {
    from: PartyId,
    /// `None`: [`Action::SendMany`].
    to: Option<PartyId>,
    data: Vec<u8>,
}

/// Each party's outcome, as [`simulate`] returns them.
type Outcomes<T> = Vec<(PartyId, Result<T, ProtocolError>)>;

/// [`simulate`], keeping every message with the action that sent it (broadcast or private).
fn simulate_recording<P: Protocol>(parties: Vec<(PartyId, P)>) -> (Outcomes<P::Output>, Vec<Sent>) {
    let ids: Vec<PartyId> = parties.iter().map(|(id, _)| *id).collect();
    let mut running: Vec<(PartyId, P)> = parties;
    let mut inbox: Vec<(PartyId, PartyId, Vec<u8>)> = Vec::new();
    let mut sent = Vec::new();
    let mut results = Vec::new();
    loop {
        let mut progressed = false;
        let mut i = 0;
        while i < running.len() {
            let (me, party) = &mut running[i];
            for (from, _, data) in inbox.extract_if(.., |(_, to, _)| to == me) {
                party.message(from, data);
                progressed = true;
            }
            let mut finished = None;
            loop {
                match party.poke() {
                    Ok(Action::Wait) => break,
                    Ok(Action::SendMany(data)) => {
                        for to in ids.iter().filter(|to| *to != me) {
                            inbox.push((*me, *to, data.clone()));
                        }
                        sent.push(Sent { from: *me, to: None, data });
                    }
                    Ok(Action::SendPrivate(to, data)) => {
                        inbox.push((*me, to, data.clone()));
                        sent.push(Sent { from: *me, to: Some(to), data });
                    }
                    Ok(Action::Return(out)) => finished = Some(Ok(out)),
                    Err(e) => finished = Some(Err(e)),
                }
                progressed = true;
                if finished.is_some() {
                    break;
                }
            }
            match finished {
                Some(out) => results.push((running.remove(i).0, out)),
                None => i += 1,
            }
        }
        if running.is_empty() || !progressed {
            break;
        }
    }
    results.extend(running.into_iter().map(|(id, _)| (id, Err(ProtocolError::Stalled))));
    (results, sent)
}

/// Old 2-of-3 (t = 1) key moved so that dealer 2 leaves and two newcomers join: members 1 (old 1,
/// new 1), 2 (old 2, leaves), 5 (new 2) and 6 (new 3). New ids and transport ids differ.
fn leaving_dealer_roster() -> (Roster, Vec<Member>) {
    let members = vec![
        Member { id: 1, old: Some(1), new: Some(1) },
        Member { id: 2, old: Some(2), new: None },
        Member { id: 5, old: None, new: Some(2) },
        Member { id: 6, old: None, new: Some(3) },
    ];
    (Roster::new(members.clone()).unwrap(), members)
}

fn leaving_dealer_parties(old: &[KeyShare], tag: &str) -> Vec<(PartyId, Reshare)> {
    let (roster, members) = leaving_dealer_roster();
    let id = eid(Operation::Reshare, tag);
    members
        .iter()
        .map(|m| {
            let share = m.old.map(|o| &old[usize::from(o) - 1]);
            (m.id, Reshare::new(id, m.id, roster.clone(), 1, old[0].old_key(), share).unwrap())
        })
        .collect()
}

/// Offsets in a reshare message: the phase byte, then the ECDSA frame (version, execution id,
/// round, kind).
const PHASE_SETUP: u8 = 2;
const FRAME_ROUND: usize = 1 + 33;
const FRAME_KIND: usize = 1 + 34;
const KIND_BROADCAST: u8 = 0;

#[test]
fn setup_broadcasts_are_broadcasts_of_the_run_and_a_leaving_dealer_witnesses_them() {
    let old = keygen(3, 1);
    let key = old[0].public_key();
    let (results, sent) = simulate_recording(leaving_dealer_parties(&old, "leaving-dealer"));
    let mut new_shares = Vec::new();
    for (member, out) in results {
        match out.unwrap_or_else(|e| panic!("member {member}: {e}")) {
            ReshareResult::Share(s) => new_shares.push(*s),
            ReshareResult::Retired => assert_eq!(member, 2, "only the leaving dealer retires"),
        }
    }
    new_shares.sort_by_key(|s| s.id());
    assert_eq!(new_shares.len(), 3);
    sign_and_check(&new_shares, &[1, 3], &key, "after a dealer left");

    let setup: Vec<&Sent> = sent.iter().filter(|m| m.data[0] == PHASE_SETUP).collect();
    // Every setup message meant for all (share proofs and commitments in round 1, chain-code
    // openings in round 2) goes out as a broadcast of the whole run, which the node's echo
    // covers; private ones (zero-share seeds, OT setup) only to new holders.
    for m in &setup {
        let framed_broadcast = m.data[FRAME_KIND] == KIND_BROADCAST;
        assert_eq!(framed_broadcast, m.to.is_none(), "{m:?}");
        assert!(m.to.is_none_or(|to| [1, 5, 6].contains(&to)), "{m:?}");
        assert_ne!(m.from, 2, "the leaving dealer sends nothing in the setup");
    }
    for holder in [1u16, 5, 6] {
        let rounds: Vec<u8> = setup
            .iter()
            .filter(|m| m.from == holder && m.to.is_none())
            .map(|m| m.data[FRAME_ROUND])
            .collect();
        assert_eq!(rounds, [1, 2], "holder {holder} broadcasts once per setup round");
    }
}

#[test]
fn a_setup_fault_names_the_member_by_its_transport_id() {
    let old = keygen(3, 1);
    // Member 6 (new id 3) garbles its round-1 setup broadcast (share proof and commitments).
    let results = simulate_with(leaving_dealer_parties(&old, "setup-fault"), |from, _, data| {
        if from == 6 && data[0] == PHASE_SETUP && data[FRAME_ROUND] == 1 && data[FRAME_KIND] == KIND_BROADCAST
        {
            data[FRAME_KIND + 11] ^= 0x55;
        }
    });
    for (member, out) in &results {
        match member {
            1 | 5 => {
                let err = out.as_ref().expect_err("an honest new holder aborts");
                assert_eq!(err.culprits(), &[6], "member {member}: {err}");
            }
            // The leaving dealer checks only the framing: it waits for the round-2 broadcasts
            // the honest holders never send (over the network, their abort notices stop it).
            2 => assert_eq!(out.as_ref().err(), Some(&ProtocolError::Stalled), "member 2"),
            _ => {}
        }
    }
}

#[test]
fn a_leaving_dealer_refuses_a_private_setup_message() {
    let old = keygen(3, 1);
    // Member 5 sends its round-1 setup broadcast privately to the leaving dealer only: a
    // framing the witness refuses, naming member 5.
    let parties = leaving_dealer_parties(&old, "witness-private");
    let results = simulate_with(parties, |from, to, data| {
        if from == 5 && to == 2 && data[0] == PHASE_SETUP && data[FRAME_KIND] == KIND_BROADCAST {
            data[FRAME_KIND] = 1;
        }
    });
    let err = results.iter().find(|(m, _)| *m == 2).unwrap().1.as_ref().expect_err("witness aborts");
    assert_eq!(err.culprits(), &[5], "{err}");
}
