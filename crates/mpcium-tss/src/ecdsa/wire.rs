//! Message framing shared by every ECDSA protocol, and the inbox that sorts peers' messages by
//! round.
//!
//! Every message is `[FRAME_VERSION][execution id: 32][round][kind][postcard payload]`. A message
//! whose execution id, round, kind or sender does not fit the run is a fault of its sender.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Serialize, de::DeserializeOwned};

use crate::protocol::{Action, ExecutionId, PartyId, ProtocolError};

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
    fault: Option<ProtocolError>,
}

impl Inbox {
    pub fn new(
        eid: ExecutionId,
        peers: impl IntoIterator<Item = PartyId>,
        shape: &'static [RoundShape],
    ) -> Self {
        Self {
            eid,
            peers: peers.into_iter().collect(),
            shape,
            slots: BTreeMap::new(),
            done_rounds: 0,
            fault: None,
        }
    }

    /// File a message; the first fault seen is kept for [`Inbox::fault`].
    pub fn receive(&mut self, from: PartyId, data: Vec<u8>) {
        if self.fault.is_some() {
            return;
        }
        if let Err(e) = self.try_receive(from, data) {
            self.fault = Some(e);
        }
    }

    fn try_receive(&mut self, from: PartyId, mut data: Vec<u8>) -> Result<(), ProtocolError> {
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

    /// The first fault seen, if any (reported once).
    pub fn fault(&mut self) -> Option<ProtocolError> {
        self.fault.take()
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

/// Outgoing messages waiting for `poke` to hand them out.
#[derive(Debug, Default)]
pub(crate) struct Outbox(VecDeque<(Option<PartyId>, Vec<u8>)>);

impl Outbox {
    pub fn broadcast(&mut self, bytes: Vec<u8>) {
        self.0.push_back((None, bytes));
    }

    pub fn private(&mut self, to: PartyId, bytes: Vec<u8>) {
        self.0.push_back((Some(to), bytes));
    }

    pub fn next<T>(&mut self) -> Option<Action<T>> {
        self.0.pop_front().map(|(to, bytes)| match to {
            None => Action::SendMany(bytes),
            Some(p) => Action::SendPrivate(p, bytes),
        })
    }
}

/// A DKLs23 run advanced round by round, as [`flushed_poke`] drives it.
pub(crate) trait Stepped {
    /// What the run returns.
    type Out;
    /// Messages computed but not yet handed out.
    fn outbox(&mut self) -> &mut Outbox;
    /// A result held back until the outbox is empty.
    fn pending(&mut self) -> &mut Option<Result<Self::Out, ProtocolError>>;
    /// A fault recorded by the inbox.
    fn fault(&mut self) -> Option<ProtocolError>;
    /// Advance with what has arrived: `None` while waiting.
    fn advance(&mut self) -> Result<Option<Self::Out>, ProtocolError>;
    /// Mark the run finished after a failure.
    fn finish(&mut self);
}

/// `poke` for every DKLs23 run. Messages computed before a result or a failure still go out
/// first: a peer that has not yet seen the failure needs them to reach its own verdict (it would
/// see them anyway on a real network), and nothing in them depends on the check that failed.
pub(crate) fn flushed_poke<S: Stepped>(run: &mut S) -> Result<Action<S::Out>, ProtocolError> {
    if let Some(action) = run.outbox().next() {
        return Ok(action);
    }
    if let Some(result) = run.pending().take() {
        return result.map(Action::Return);
    }
    let result = match run.fault() {
        Some(fault) => Err(fault),
        None => run.advance(),
    };
    let result = match result {
        Ok(None) => return Ok(run.outbox().next().unwrap_or(Action::Wait)),
        Ok(Some(out)) => Ok(out),
        Err(e) => {
            run.finish();
            Err(e)
        }
    };
    match run.outbox().next() {
        Some(action) => {
            *run.pending() = Some(result);
            Ok(action)
        }
        None => result.map(Action::Return),
    }
}
