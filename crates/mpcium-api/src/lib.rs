//! The client-facing wire of mpcium, byte for byte compatible with the original Go cluster
//! (`fystack/mpcium`), so its Go and TypeScript clients work unchanged against our node.
//!
//! - [`request`]: keygen / sign / reshare request JSON (decode Go-tolerantly, encode like Go);
//! - [`validate`]: semantic checks and limits on decoded requests;
//! - [`canonical`]: the exact bytes an initiator and an authorizer sign, plus our opt-in strict mode;
//! - [`verify`], [`authorization`]: Ed25519 / P-256 initiator keys and the authorizer rules;
//! - [`value`], [`policy`] **(ours)**: a signing request's optional `asset` / `amount` and the
//!   approval rules by value (`policy.rules`);
//! - [`result`]: result events, written exactly as the Go node writes them;
//! - [`error_code`]: the `error_code` strings;
//! - [`subjects`], [`streams`], [`ids`]: subjects, headers, idempotency keys, stream and consumer
//!   definitions, identifier rules;
//! - [`gojson`], [`decode`]: the Go `encoding/json` behaviours everything above relies on.
//!
//! Every error type has an `error_code()` giving the [`ErrorCode`] to report. No I/O here.

#![deny(missing_docs)]

pub mod attestation;
pub mod authorization;
pub mod canonical;
pub mod decode;
pub mod error_code;
pub mod gojson;
pub mod ids;
pub mod key_type;
pub mod policy;
pub mod request;
pub mod result;
pub mod streams;
pub mod subjects;
pub mod validate;
pub mod value;
pub mod verify;

pub use attestation::{Attestation, AttestationError, Statement};
pub use authorization::{AuthorizationError, AuthorizationPolicy};
pub use canonical::{InitiatorMessage, SigningMode, authorizer_payload};
pub use decode::{DecodeError, MAX_MESSAGE_BYTES};
pub use error_code::{ErrorCode, optional_error_code};
pub use ids::{ClientId, IdError, IdKind};
pub use key_type::KeyType;
pub use policy::{ApprovalError, ApprovalRule, PolicyApplied};
pub use request::{AuthorizerSignature, GenerateKeyMessage, ResharingMessage, SignTxMessage};
pub use result::{EcdsaPublicKeyXY, KeygenResultEvent, ResharingResultEvent, ResultType, SigningResultEvent};
pub use validate::ValidationError;
pub use value::{Amount, AmountError, SignTxRequest, TxValue};
pub use verify::{
    Algorithm, InitiatorSignatureError, KeyParseError, PublicKey, SignatureError, verify_initiator,
};
