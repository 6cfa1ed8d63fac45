//! One broadcast round in which every party shows the others a digest of what it is about to
//! commit to, and returns only once every other party showed the same digest.
//!
//! The node runs it before it hands a key made ahead of its wallet to the wallet (the key pool):
//! every holder has then checked the announcement and holds the same key, so no holder stores
//! the wallet's shares while another refuses. A differing digest names its sender.

use std::collections::BTreeMap;

use crate::protocol::{Action, ExecutionId, PartyId, Protocol, ProtocolError};

/// The length of the digest every party shows.
pub const DIGEST_LEN: usize = 32;

/// An agreement run: show `digest`, wait for every other party's, compare.
pub struct Agreement {
    id: ExecutionId,
    others: Vec<PartyId>,
    digest: [u8; DIGEST_LEN],
    sent: bool,
    received: BTreeMap<PartyId, Vec<u8>>,
}

impl Agreement {
    /// A run of party `me` among `parties` (which must include `me`), bound to `id`.
    pub fn new(
        id: ExecutionId,
        me: PartyId,
        parties: &[PartyId],
        digest: [u8; DIGEST_LEN],
    ) -> Result<Self, ProtocolError> {
        if !parties.contains(&me) {
            return Err(ProtocolError::InvalidInput(format!("party {me} is not among {parties:?}")));
        }
        let mut others: Vec<PartyId> = parties.iter().copied().filter(|p| *p != me).collect();
        others.sort_unstable();
        others.dedup();
        Ok(Self { id, others, digest, sent: false, received: BTreeMap::new() })
    }

    /// The message every party broadcasts: the run's id, then the digest (a message of another
    /// run never counts as agreement).
    fn message_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(&self.digest);
        out
    }
}

impl Protocol for Agreement {
    type Output = ();

    fn poke(&mut self) -> Result<Action<()>, ProtocolError> {
        if !self.sent {
            self.sent = true;
            return Ok(Action::SendMany(self.message_bytes()));
        }
        let mine = self.message_bytes();
        let differ: Vec<PartyId> =
            self.received.iter().filter(|(_, m)| **m != mine).map(|(p, _)| *p).collect();
        if !differ.is_empty() {
            return Err(ProtocolError::Faulty {
                parties: differ,
                reason: "showed another digest: the parties do not hold the same thing".into(),
            });
        }
        if self.others.iter().all(|p| self.received.contains_key(p)) {
            return Ok(Action::Return(()));
        }
        Ok(Action::Wait)
    }

    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        // A sender outside the run is not listened to; a sender's first message is the one
        // that counts.
        if self.others.contains(&from) {
            self.received.entry(from).or_insert(data);
        }
    }

    fn long_steps(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{simulate, simulate_with};

    fn id() -> ExecutionId {
        ExecutionId([7; 32])
    }

    fn parties(digests: &[[u8; 32]]) -> Vec<(PartyId, Agreement)> {
        let ids: Vec<PartyId> = (1..=digests.len() as PartyId).collect();
        ids.iter().zip(digests).map(|(me, d)| (*me, Agreement::new(id(), *me, &ids, *d).unwrap())).collect()
    }

    #[test]
    fn equal_digests_agree() {
        for (_, outcome) in simulate(parties(&[[1; 32]; 3])) {
            outcome.expect("agreed");
        }
    }

    #[test]
    fn a_different_digest_is_named_by_every_other_party() {
        let outcomes = simulate(parties(&[[1; 32], [1; 32], [2; 32]]));
        for (me, outcome) in outcomes {
            let err = outcome.expect_err("no agreement");
            if me == 3 {
                assert_eq!(err.culprits(), &[1, 2]);
            } else {
                assert_eq!(err.culprits(), &[3]);
            }
        }
    }

    #[test]
    fn a_message_of_another_run_is_not_agreement() {
        let outcomes = simulate_with(parties(&[[1; 32]; 3]), |from, _, bytes| {
            if from == 2 {
                bytes[0] ^= 1;
            }
        });
        for (me, outcome) in outcomes {
            if me != 2 {
                assert_eq!(outcome.expect_err("tampered").culprits(), &[2]);
            }
        }
    }

    #[test]
    fn a_party_outside_the_run_is_refused() {
        assert!(Agreement::new(id(), 4, &[1, 2, 3], [0; 32]).is_err());
    }
}
