//! Round 1 of DKLs23 key generation and refresh: every party sends each other party its
//! polynomial's value at that party's point (a fragment), privately, and keeps its own.

use std::collections::BTreeMap;

use k256::Scalar;
use zeroize::Zeroizing;

use super::wire::{self, Kind, PeerRound};
use crate::driver::Outbox;
use crate::protocol::{ExecutionId, PartyId, ProtocolError};

/// Sends party `i + 1` the fragment `fragments[i]` (round 1, private) and returns `me`'s own
/// (`None` if `me` has no fragment).
pub(super) fn send(
    eid: &ExecutionId,
    me: PartyId,
    fragments: &[Scalar],
    out: &mut Outbox,
) -> Result<Option<Zeroizing<Scalar>>, ProtocolError> {
    let mut own = None;
    for (i, fragment) in fragments.iter().enumerate() {
        let to = PartyId::try_from(i + 1)
            .map_err(|_| ProtocolError::Internal("fragment index overflow".into()))?;
        if to == me {
            own = Some(Zeroizing::new(*fragment));
        } else {
            out.private(to, wire::encode(eid, 1, Kind::Private, fragment)?);
        }
    }
    Ok(own)
}

/// The fragments of round 1: `own` first, then each peer's of `round`; a fragment that does not
/// decode is its sender's fault.
pub(super) fn gather(
    own: Option<&Zeroizing<Scalar>>,
    round: &mut BTreeMap<PartyId, PeerRound>,
) -> Result<Zeroizing<Vec<Scalar>>, ProtocolError> {
    let own = own.ok_or_else(|| ProtocolError::Internal("own fragment missing".into()))?;
    let mut fragments = Zeroizing::new(Vec::with_capacity(round.len() + 1));
    fragments.push(**own);
    for (from, msg) in round {
        let bytes = Zeroizing::new(msg.take(*from, 1, Kind::Private)?);
        fragments.push(wire::decode::<Scalar>(*from, 1, &bytes)?);
    }
    Ok(fragments)
}
