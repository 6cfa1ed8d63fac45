//! DKLs23 bans: a signer that tampers with the OT-extension part of its presign messages makes
//! every honest counterparty end with [`ProtocolError::Ban`] naming exactly that signer (and not
//! an ordinary fault: each pass or fail of these checks leaks a bit of the honest party's OT
//! secret, so the caller must exclude the party from every later session of the key).
//!
//! The tampering decodes the signer's real message, changes one field that only the OT checks
//! cover, and re-encodes it, so no proof, commitment or session binding fails first.

use dkls23::protocols::signing::{TransmitPhase1to2, TransmitPhase2to3};
use k256::{ProjectivePoint, Secp256k1};
use mpcium_tss::ecdsa::{KeyShare, Keygen, Presign, Sign};
use mpcium_tss::{
    ExecutionContext, ExecutionId, KeyType, Operation, PartyId, Protocol, ProtocolError, simulate,
    simulate_with,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Frame header of every ECDSA message: version, execution id, round, kind.
const HEADER: usize = 35;
const KIND_PRIVATE: u8 = 1;
/// The signer that cheats.
const CHEAT: PartyId = 3;

fn eid(op: Operation, request: &str) -> ExecutionId {
    ExecutionId::new(&ExecutionContext {
        operation: op,
        key_type: KeyType::Secp256k1,
        wallet_id: "wallet-ecdsa-bans",
        key_version: 1,
        participants: &["n1", "n2", "n3"],
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

/// Decode the payload of a framed message as `T`, change it, and frame it again.
fn rewrite<T: Serialize + DeserializeOwned>(data: &mut Vec<u8>, change: impl FnOnce(&mut T)) {
    let mut msg: T = postcard::from_bytes(&data[HEADER..]).expect("the signer's own message decodes");
    change(&mut msg);
    data.truncate(HEADER);
    data.extend_from_slice(&postcard::to_allocvec(&msg).unwrap());
}

/// A field of the cheater's messages to change, and where the honest parties notice.
#[derive(Debug, Clone, Copy)]
enum Tamper {
    /// Round 1: one bit of the OT-extension receiver's consistency values (`verify_t`, KOS
    /// check): the honest OT-extension sender's check fails in signing phase 2.
    OtExtensionCheck,
    /// Round 2: one bit of the multiplication sender's check hash (`verify_r`): the honest
    /// receiver's multiplication check fails in phase 3.
    MultiplicationCheck,
    /// Round 2: `gamma_v` moved by G: dkls23's OT consistency check (`OtConsistencyCheckFailed`)
    /// fails in phase 3.
    GammaV,
}

impl Tamper {
    const ALL: [Tamper; 3] = [Tamper::OtExtensionCheck, Tamper::MultiplicationCheck, Tamper::GammaV];

    fn round(self) -> u8 {
        match self {
            Tamper::OtExtensionCheck => 1,
            Tamper::MultiplicationCheck | Tamper::GammaV => 2,
        }
    }

    /// What the honest parties' reason says failed.
    fn check(self) -> &'static str {
        match self {
            Tamper::OtExtensionCheck => "Receiver cheated in OTE: Consistency check failed",
            Tamper::MultiplicationCheck => "Sender cheated in multiplication protocol",
            Tamper::GammaV => "OT consistency check failed",
        }
    }

    fn apply(self, from: PartyId, data: &mut Vec<u8>) {
        if from != CHEAT || data[33] != self.round() || data[34] != KIND_PRIVATE {
            return;
        }
        match self {
            Tamper::OtExtensionCheck => {
                rewrite(data, |m: &mut TransmitPhase1to2| m.mul_transmit.verify_t[0][0] ^= 1);
            }
            Tamper::MultiplicationCheck => {
                rewrite(data, |m: &mut TransmitPhase2to3<Secp256k1>| m.mul_transmit.verify_r[0] ^= 1);
            }
            Tamper::GammaV => rewrite(data, |m: &mut TransmitPhase2to3<Secp256k1>| {
                m.gamma_v = (ProjectivePoint::from(m.gamma_v) + ProjectivePoint::GENERATOR).to_affine();
            }),
        }
    }
}

/// Every honest signer ends with a ban of exactly the cheater; the cheater itself either
/// finishes its part or waits for messages the honest signers never send.
fn assert_honest_ban<T: std::fmt::Debug>(results: &[(PartyId, Result<T, ProtocolError>)], tamper: Tamper) {
    for (p, out) in results {
        if *p == CHEAT {
            if let Err(e) = out {
                assert_eq!(e, &ProtocolError::Stalled, "{tamper:?}: the cheater is only left waiting");
            }
            continue;
        }
        let err = out.as_ref().expect_err("an honest signer must not finish");
        assert!(err.is_ban(), "{tamper:?}, party {p}: {err}");
        assert_eq!(err.culprits(), &[CHEAT], "{tamper:?}, party {p}: {err}");
        assert!(matches!(err, ProtocolError::Ban { parties, .. } if parties == &[CHEAT]));
        assert!(err.to_string().starts_with("banned"), "{err}");
        // The check that failed is the one the tampered field feeds, not a proof or commitment.
        assert!(err.to_string().contains(tamper.check()), "{tamper:?}, party {p}: {err}");
    }
}

fn run<P: Protocol>(
    parties: Vec<(PartyId, P)>,
    tamper: Tamper,
) -> Vec<(PartyId, Result<P::Output, ProtocolError>)> {
    simulate_with(parties, |from, _, data| tamper.apply(from, data))
}

#[test]
fn tampered_ot_messages_in_a_presign_ban_the_sender() {
    let shares = keygen(3, 2);
    let signers = [1u16, 2, 3];
    for tamper in Tamper::ALL {
        let id = eid(Operation::Presign, &format!("presign-{tamper:?}"));
        let parties = signers
            .iter()
            .map(|p| (*p, Presign::new(id, &shares[usize::from(*p) - 1], &signers, None).unwrap()))
            .collect();
        let results = run(parties, tamper);
        assert_honest_ban(&results, tamper);
    }
}

#[test]
fn tampered_ot_messages_in_a_full_sign_ban_the_sender() {
    let shares = keygen(3, 2);
    let signers = [1u16, 2, 3];
    let digest = [0x42; 32];
    for tamper in Tamper::ALL {
        let id = eid(Operation::Sign, &format!("sign-{tamper:?}"));
        let parties = signers
            .iter()
            .map(|p| (*p, Sign::new(id, &shares[usize::from(*p) - 1], &signers, digest, None).unwrap()))
            .collect();
        let results = run(parties, tamper);
        assert_honest_ban(&results, tamper);
    }
}

#[test]
fn a_two_party_presign_bans_the_tampering_counterparty() {
    // t = 1: the honest signer's only counterparty is banned, and the key cannot sign with
    // it any more until a reshare; here we check the ban names it.
    let shares = keygen(3, 1);
    let signers = [1u16, 3];
    let id = eid(Operation::Presign, "presign-two");
    let parties = signers
        .iter()
        .map(|p| (*p, Presign::new(id, &shares[usize::from(*p) - 1], &signers, None).unwrap()))
        .collect();
    let results = run(parties, Tamper::OtExtensionCheck);
    assert_honest_ban(&results, Tamper::OtExtensionCheck);
    // Without tampering the same signers presign fine (the ban is the cheater's doing only).
    let id = eid(Operation::Presign, "presign-two-honest");
    let parties = signers
        .iter()
        .map(|p| (*p, Presign::new(id, &shares[usize::from(*p) - 1], &signers, None).unwrap()))
        .collect();
    assert!(simulate(parties).iter().all(|(_, r)| r.is_ok()));
}
