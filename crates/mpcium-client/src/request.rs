//! What a caller asks for, and how it becomes a signed wire message.

use std::sync::Arc;
use std::time::Duration;

use mpcium_api::canonical::InitiatorMessage;
use mpcium_api::{
    AuthorizerSignature, GenerateKeyMessage, KeyType, ResharingMessage, SignTxMessage, SignTxRequest,
    SigningMode, authorizer_payload,
};

use crate::error::ClientError;
use crate::signer::Signer;

/// An authorizer whose signature the client attaches to every request (docs/wire.md §5.3
/// "Authorization"): `id` must match a key in the nodes' `authorization.authorizer_public_keys`.
#[derive(Clone)]
pub struct Authorizer {
    /// The authorizer ID.
    pub id: String,
    /// Signs the authorizer payload.
    pub signer: Arc<dyn Signer>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("id", &self.id)
            .field("algorithm", &self.signer.algorithm())
            .finish()
    }
}

/// A signing request (the caller's half of Go `types.SignTxMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// Which of the wallet's keys signs.
    pub key_type: KeyType,
    /// The wallet.
    pub wallet_id: String,
    /// Correlates the result; must be unique among this client's requests in flight.
    pub tx_id: String,
    /// secp256k1: the 32-byte digest to sign; ed25519: the message itself; taproot: the 32-byte
    /// BIP341 signature hash.
    pub tx: Vec<u8>,
    /// Opaque, echoed in the result.
    pub network_internal_code: String,
    /// Non-hardened child path; `None` = the master key.
    pub derivation_path: Option<Vec<u32>>,
    /// **(ours)** The asset the transaction moves (with `amount`; see [`SignRequest::value`]).
    pub asset: Option<String>,
    /// **(ours)** The amount in the asset's smallest unit, a decimal string (with `asset`).
    pub amount: Option<String>,
    /// **(ours)** taproot only: the BIP341 script tree root the output key commits to; `None`
    /// signs for the BIP86 output key (key-path only).
    pub taproot_merkle_root: Option<[u8; 32]>,
    /// Overrides the client's default timeout.
    pub timeout: Option<Duration>,
}

impl SignRequest {
    /// A request on the master key with an empty `network_internal_code`.
    pub fn new(
        key_type: KeyType,
        wallet_id: impl Into<String>,
        tx_id: impl Into<String>,
        tx: Vec<u8>,
    ) -> Self {
        Self {
            key_type,
            wallet_id: wallet_id.into(),
            tx_id: tx_id.into(),
            tx,
            network_internal_code: String::new(),
            derivation_path: None,
            asset: None,
            amount: None,
            taproot_merkle_root: None,
            timeout: None,
        }
    }

    /// Sets `network_internal_code`.
    pub fn network_internal_code(mut self, code: impl Into<String>) -> Self {
        self.network_internal_code = code.into();
        self
    }

    /// Signs with the child key at `path`.
    pub fn derivation_path(mut self, path: Vec<u32>) -> Self {
        self.derivation_path = Some(path);
        self
    }

    /// **(ours)** Declares the value the transaction moves: `asset` (e.g. `BTC`) and `amount` in
    /// its smallest unit as a decimal string (`"1000000"`). Both are covered by the initiator's
    /// signature (and so by the authorizers'), and nodes apply their approval rules by value
    /// (`policy.rules`) to them; the original's nodes ignore them. Without a value, a rule whose
    /// network and wallet match treats the request as above every threshold.
    pub fn value(mut self, asset: impl Into<String>, amount: impl Into<String>) -> Self {
        self.asset = Some(asset.into());
        self.amount = Some(amount.into());
        self
    }

    /// **(ours)** taproot: sign for the output key Q = P + hash_TapTweak(P ‖ `root`)·G of a
    /// script tree with this merkle root (BIP341) instead of the BIP86 key. Covered by the
    /// initiator's signature; only our nodes understand it.
    pub fn taproot_merkle_root(mut self, root: [u8; 32]) -> Self {
        self.taproot_merkle_root = Some(root);
        self
    }

    /// Waits at most `timeout` for this request's result.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub(crate) fn to_message(&self) -> SignTxRequest {
        let message = SignTxMessage {
            key_type: self.key_type.clone(),
            wallet_id: self.wallet_id.clone(),
            network_internal_code: self.network_internal_code.clone(),
            tx_id: self.tx_id.clone(),
            tx: Some(self.tx.clone()),
            signature: None,
            derivation_path: self.derivation_path.clone(),
            authorizer_signatures: Vec::new(),
        };
        SignTxRequest {
            message,
            asset: self.asset.clone(),
            amount: self.amount.clone(),
            taproot_merkle_root: self.taproot_merkle_root.map(|root| root.to_vec()),
        }
    }
}

/// A resharing request (Go `types.ResharingMessage` without the signatures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReshareRequest {
    /// Names the result subject; must be unique among this client's requests in flight.
    pub session_id: String,
    /// The wallet.
    pub wallet_id: String,
    /// Which of the wallet's keys is reshared.
    pub key_type: KeyType,
    /// The new threshold t (t+1 parties sign).
    pub new_threshold: i64,
    /// The new committee's node IDs.
    pub node_ids: Vec<String>,
    /// Overrides the client's default timeout.
    pub timeout: Option<Duration>,
}

impl ReshareRequest {
    /// A request with a fresh random (UUID v4) session ID.
    pub fn new(
        wallet_id: impl Into<String>,
        key_type: KeyType,
        new_threshold: i64,
        node_ids: Vec<String>,
    ) -> Result<Self, ClientError> {
        let session_id = mpcium_identity::uuid_v4().map_err(|e| ClientError::Randomness(e.to_string()))?;
        Ok(Self { session_id, wallet_id: wallet_id.into(), key_type, new_threshold, node_ids, timeout: None })
    }

    /// Waits at most `timeout` for this request's result.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub(crate) fn to_message(&self) -> ResharingMessage {
        ResharingMessage {
            session_id: self.session_id.clone(),
            node_ids: Some(self.node_ids.clone()),
            new_threshold: self.new_threshold,
            key_type: self.key_type.clone(),
            wallet_id: self.wallet_id.clone(),
            signature: None,
            authorizer_signatures: Vec::new(),
        }
    }
}

/// A request message whose signature fields the client fills in.
pub(crate) trait Sealable: InitiatorMessage {
    fn set_signature(&mut self, signature: Vec<u8>);
    fn set_authorizer_signatures(&mut self, signatures: Vec<AuthorizerSignature>);
}

impl Sealable for GenerateKeyMessage {
    fn set_signature(&mut self, signature: Vec<u8>) {
        self.signature = Some(signature);
    }
    fn set_authorizer_signatures(&mut self, signatures: Vec<AuthorizerSignature>) {
        self.authorizer_signatures = signatures;
    }
}

impl Sealable for SignTxMessage {
    fn set_signature(&mut self, signature: Vec<u8>) {
        self.signature = Some(signature);
    }
    fn set_authorizer_signatures(&mut self, signatures: Vec<AuthorizerSignature>) {
        self.authorizer_signatures = signatures;
    }
}

impl Sealable for SignTxRequest {
    fn set_signature(&mut self, signature: Vec<u8>) {
        self.message.set_signature(signature);
    }
    fn set_authorizer_signatures(&mut self, signatures: Vec<AuthorizerSignature>) {
        self.message.set_authorizer_signatures(signatures);
    }
}

impl Sealable for ResharingMessage {
    fn set_signature(&mut self, signature: Vec<u8>) {
        self.signature = Some(signature);
    }
    fn set_authorizer_signatures(&mut self, signatures: Vec<AuthorizerSignature>) {
        self.authorizer_signatures = signatures;
    }
}

/// Signs `msg` as the initiator, **once**, then has every authorizer sign the payload that embeds
/// that very signature (the Go client signs again when publishing, which breaks authorizer
/// payloads with randomised P-256/KMS signatures).
pub(crate) async fn seal<M: Sealable>(
    msg: &mut M,
    initiator: &dyn Signer,
    authorizers: &[Authorizer],
    mode: SigningMode,
) -> Result<(), ClientError> {
    let raw = msg.signed_bytes(mode);
    let signature = initiator.sign(&raw).await?;
    msg.set_signature(signature);
    if authorizers.is_empty() {
        return Ok(());
    }
    let payload = authorizer_payload(&*msg, mode);
    let mut signatures = Vec::with_capacity(authorizers.len());
    for authorizer in authorizers {
        let signature = authorizer.signer.sign(&payload).await?;
        signatures
            .push(AuthorizerSignature { authorizer_id: authorizer.id.clone(), signature: Some(signature) });
    }
    msg.set_authorizer_signatures(signatures);
    Ok(())
}
