//! Message framing shared by every ECDSA protocol, and the inbox that sorts peers' messages by
//! round.
//!
//! Every message is `[FRAME_VERSION][execution id: 32][round][kind][postcard payload]`. A message
//! whose execution id, round, kind or sender does not fit the run is a fault of its sender.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Serialize, de::DeserializeOwned};

use crate::protocol::{ExecutionId, PartyId, ProtocolError};

/// First byte of every ECDSA protocol message; bumped if the framing ever changes.
const FRAME_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 32 + 1 + 1;

/// Whether a message went to every participant or to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Broadcast = 0,
    Private = 1,
}

/// Which kinds of message each round carries (index 0 is round 1).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoundShape {
    pub broadcast: bool,
    pub private: bool,
}

impl RoundShape {
    pub const BROADCAST: Self = Self { broadcast: true, private: false };
    pub const PRIVATE: Self = Self { broadcast: false, private: true };
    pub const BOTH: Self = Self { broadcast: true, private: true };

    fn expects(self, kind: Kind) -> bool {
        match kind {
            Kind::Broadcast => self.broadcast,
            Kind::Private => self.private,
        }
    }
}

/// Serialize a payload and frame it.
pub(crate) fn encode<T: Serialize>(
    eid: &ExecutionId,
    round: u8,
    kind: Kind,
    payload: &T,
) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::with_capacity(HEADER_LEN + 256);
    out.push(FRAME_VERSION);
    out.extend_from_slice(eid.as_bytes());
    out.push(round);
    out.push(kind as u8);
    postcard::to_extend(payload, out)
        .map_err(|e| ProtocolError::Internal(format!("cannot serialize round {round} message: {e}")))
}

/// Decode a payload received from `from`; any failure is that sender's fault.
pub(crate) fn decode<T: DeserializeOwned>(
    from: PartyId,
    round: u8,
    bytes: &[u8],
) -> Result<T, ProtocolError> {
    postcard::from_bytes(bytes)
        .map_err(|e| ProtocolError::faulty(from, format!("malformed round {round} message: {e}")))
}

/// One peer's messages of one round.
#[derive(Debug, Default)]
pub(crate) struct PeerRound {
    pub broadcast: Option<Vec<u8>>,
    pub private: Option<Vec<u8>>,
}

impl PeerRound {
    /// The payload of `kind`, which the inbox guarantees is present when the round's shape says so.
    pub fn take(&mut self, from: PartyId, round: u8, kind: Kind) -> Result<Vec<u8>, ProtocolError> {
        let slot = match kind {
            Kind::Broadcast => self.broadcast.take(),
            Kind::Private => self.private.take(),
        };
        slot.ok_or_else(|| ProtocolError::Internal(format!("round {round} message of party {from} missing")))
    }
}

/// Collects the framed messages of one run and hands out complete rounds.
#[derive(Debug)]
pub(crate) struct Inbox {
    eid: ExecutionId,
    peers: BTreeSet<PartyId>,
    shape: &'static [RoundShape],
    slots: BTreeMap<(u8, PartyId), PeerRound>,
    /// Rounds already handed out: a late message for one of them is a fault too.
    done_rounds: u8,
}

impl Inbox {
    pub fn new(
        eid: ExecutionId,
        peers: impl IntoIterator<Item = PartyId>,
        shape: &'static [RoundShape],
    ) -> Self {
        Self { eid, peers: peers.into_iter().collect(), shape, slots: BTreeMap::new(), done_rounds: 0 }
    }

    /// File a message; a message that does not fit the run is its sender's fault.
    pub fn receive(&mut self, from: PartyId, mut data: Vec<u8>) -> Result<(), ProtocolError> {
        if !self.peers.contains(&from) {
            return Err(ProtocolError::faulty(from, "message from a party that is not in this run"));
        }
        if data.len() < HEADER_LEN {
            return Err(ProtocolError::faulty(from, format!("message too short ({} bytes)", data.len())));
        }
        if data[0] != FRAME_VERSION {
            return Err(ProtocolError::faulty(from, format!("unknown message frame version {}", data[0])));
        }
        if data[1..33] != self.eid.as_bytes()[..] {
            return Err(ProtocolError::faulty(
                from,
                "message belongs to another execution (execution id mismatch)",
            ));
        }
        let round = data[33];
        let kind = match data[34] {
            0 => Kind::Broadcast,
            1 => Kind::Private,
            other => return Err(ProtocolError::faulty(from, format!("unknown message kind {other}"))),
        };
        let Some(shape) = round.checked_sub(1).and_then(|i| self.shape.get(usize::from(i))) else {
            return Err(ProtocolError::faulty(
                from,
                format!("message for round {round}, which this protocol does not have"),
            ));
        };
        if !shape.expects(kind) {
            return Err(ProtocolError::faulty(from, format!("round {round} has no {kind:?} message")));
        }
        if round <= self.done_rounds {
            return Err(ProtocolError::faulty(
                from,
                format!("duplicate or late message for finished round {round}"),
            ));
        }
        let slot = self.slots.entry((round, from)).or_default();
        let target = match kind {
            Kind::Broadcast => &mut slot.broadcast,
            Kind::Private => &mut slot.private,
        };
        if target.is_some() {
            return Err(ProtocolError::faulty(from, format!("duplicate {kind:?} message for round {round}")));
        }
        data.drain(..HEADER_LEN);
        *target = Some(data);
        Ok(())
    }

    /// Every peer's messages of `round` if all have arrived; the round is then closed.
    pub fn take_round(&mut self, round: u8) -> Option<BTreeMap<PartyId, PeerRound>> {
        let shape = *self.shape.get(usize::from(round.checked_sub(1)?))?;
        let complete = self.peers.iter().all(|p| {
            self.slots.get(&(round, *p)).is_some_and(|s| {
                (!shape.broadcast || s.broadcast.is_some()) && (!shape.private || s.private.is_some())
            })
        });
        if !complete {
            return None;
        }
        self.done_rounds = round;
        Some(self.peers.iter().filter_map(|p| self.slots.remove(&(round, *p)).map(|s| (*p, s))).collect())
    }
}
