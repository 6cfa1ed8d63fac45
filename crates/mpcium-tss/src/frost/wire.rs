//! The envelope of every EdDSA message: `tag ‖ execution id ‖ FROST-serialised body`. The id is
//! checked before anything else is parsed, so a message of another run is refused and blamed on
//! its sender (FROST's own transcripts carry no context string).

use crate::protocol::{ExecutionId, PartyId, ProtocolError};

/// Wrap `body` for the wire.
pub(crate) fn seal(tag: u8, exec: &ExecutionId, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(33 + body.len());
    out.push(tag);
    out.extend_from_slice(exec.as_bytes());
    out.extend_from_slice(body);
    out
}

/// Check the envelope of a message from `from` and return its tag and body.
pub(crate) fn open<'a>(
    from: PartyId,
    exec: &ExecutionId,
    data: &'a [u8],
) -> Result<(u8, &'a [u8]), ProtocolError> {
    let (&tag, rest) = data.split_first().ok_or_else(|| ProtocolError::faulty(from, "empty message"))?;
    let (id, body) =
        rest.split_at_checked(32).ok_or_else(|| ProtocolError::faulty(from, "truncated message"))?;
    if id != exec.as_bytes() {
        return Err(ProtocolError::faulty(from, "message of another execution"));
    }
    Ok((tag, body))
}
