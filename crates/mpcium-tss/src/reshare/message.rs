//! Wire encoding of the resharing messages: `tag ‖ execution id ‖ body`, fixed-size fields, no
//! length ambiguity. Decoding checks everything structural (lengths, point and scalar validity);
//! the protocol checks the meaning.

use zeroize::Zeroizing;

use crate::curve::Curve;
use crate::protocol::ExecutionId;

const TAG_COMMITMENTS: u8 = 1;
const TAG_SUB_SHARE: u8 = 2;
const TAG_CONFIRM: u8 = 3;

/// One resharing message.
pub(crate) enum Message<C: Curve> {
    /// A dealer's Feldman commitments `[a_0·G, …, a_t'·G]` (broadcast).
    Commitments(Vec<C::Point>),
    /// A dealer's evaluation of its polynomial at the recipient's new id (private).
    SubShare(Zeroizing<C::Scalar>),
    /// Per dealer (in roster order), the hash of the commitment vector this party received
    /// (broadcast).
    Confirm(Vec<[u8; 32]>),
}

/// Why a message could not be decoded.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// It belongs to another run.
    WrongExecution,
    /// It is malformed; the string says how.
    Malformed(&'static str),
}

impl<C: Curve> Message<C> {
    pub(crate) fn encode(&self, exec: &ExecutionId) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let tag = match self {
            Self::Commitments(_) => TAG_COMMITMENTS,
            Self::SubShare(_) => TAG_SUB_SHARE,
            Self::Confirm(_) => TAG_CONFIRM,
        };
        out.push(tag);
        out.extend_from_slice(exec.as_bytes());
        match self {
            Self::Commitments(points) => {
                for p in points {
                    out.extend_from_slice(&C::point_to_bytes(p));
                }
            }
            Self::SubShare(s) => out.extend_from_slice(&C::scalar_to_bytes(s)),
            Self::Confirm(digests) => {
                for d in digests {
                    out.extend_from_slice(d);
                }
            }
        }
        out
    }

    pub(crate) fn decode(exec: &ExecutionId, data: &[u8]) -> Result<Self, DecodeError> {
        let (&tag, rest) = data.split_first().ok_or(DecodeError::Malformed("empty message"))?;
        let (id, body) = rest.split_at_checked(32).ok_or(DecodeError::Malformed("truncated header"))?;
        if id != exec.as_bytes() {
            return Err(DecodeError::WrongExecution);
        }
        match tag {
            TAG_COMMITMENTS => {
                if body.is_empty() || body.len() % C::POINT_LEN != 0 {
                    return Err(DecodeError::Malformed("commitment vector length"));
                }
                body.chunks_exact(C::POINT_LEN)
                    .map(|chunk| {
                        C::point_from_bytes(chunk).ok_or(DecodeError::Malformed("invalid commitment point"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Self::Commitments)
            }
            TAG_SUB_SHARE => C::scalar_from_bytes(body)
                .map(|s| Self::SubShare(Zeroizing::new(s)))
                .ok_or(DecodeError::Malformed("invalid sub-share scalar")),
            TAG_CONFIRM => {
                if body.is_empty() || body.len() % 32 != 0 {
                    return Err(DecodeError::Malformed("confirmation length"));
                }
                let digests = body
                    .chunks_exact(32)
                    .map(|c| {
                        let mut d = [0u8; 32];
                        d.copy_from_slice(c);
                        d
                    })
                    .collect();
                Ok(Self::Confirm(digests))
            }
            _ => Err(DecodeError::Malformed("unknown message tag")),
        }
    }
}
