//! What a node checks before it takes part in anything. A participant trusts nothing the
//! coordinator chose: every value of a [`SessionStart`] is compared with the client's signed
//! request (verified by this node itself), this node's own config and the key info, and only
//! then does a checked value exist. "Checked" is a type here, not a flag: the protocol parts
//! take a [`Verified`] request or a checked start, which only these functions build.

use mpcium_api::{
    AuthorizationPolicy, ErrorCode, GenerateKeyMessage, PolicyApplied, ResharingMessage, SignTxMessage,
    SignTxRequest, SigningMode,
};
use mpcium_tss::KeyType;

use super::{Failure, Service, curve_name, key_type_of, old_key_hex, share_kind};
use crate::control::{SessionOp, SessionStart, delivery_sequence, split_request_id};
use crate::registry::Claim;

/// A client request that this node verified in full: size, JSON, ids and sizes, the
/// initiator's signature, the authorizers and the approval rules by value (`policy.rules`), with
/// the rules that applied. Only [`Service::verify_request`] makes one.
#[derive(Debug, Clone)]
pub(super) struct Verified<M> {
    req: M,
    policy: PolicyApplied,
}

impl<M> std::ops::Deref for Verified<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.req
    }
}

impl<M> Verified<M> {
    /// The approval rules that applied to the request, all met.
    pub(super) fn policy(&self) -> &PolicyApplied {
        &self.policy
    }
}

/// What the approval rules by value say about a request: only signing requests are subject to
/// them (`mpcium_api::policy`).
pub(super) trait Approval {
    fn approve(&self, policy: &AuthorizationPolicy, mode: SigningMode) -> Result<PolicyApplied, Failure>;
}

impl Approval for GenerateKeyMessage {
    fn approve(&self, _: &AuthorizationPolicy, _: SigningMode) -> Result<PolicyApplied, Failure> {
        Ok(PolicyApplied::not_applicable())
    }
}

impl Approval for ResharingMessage {
    fn approve(&self, _: &AuthorizationPolicy, _: SigningMode) -> Result<PolicyApplied, Failure> {
        Ok(PolicyApplied::not_applicable())
    }
}

impl Approval for SignTxRequest {
    fn approve(&self, policy: &AuthorizationPolicy, mode: SigningMode) -> Result<PolicyApplied, Failure> {
        policy.approve(self, mode).map_err(|e| Failure::new(e.error_code(), e.to_string()))
    }
}

/// The request a coordinator verified when it pulled it, handed to its own part of the session
/// so that one node does not verify the same signature twice.
pub(super) enum OwnRequest {
    Keygen(Verified<GenerateKeyMessage>),
    /// A signing request, with the key info the coordinator loaded when it took it (its own
    /// part then reads it once; a participant loads its own).
    Sign(Verified<SignTxRequest>, Option<Box<crate::registry::KeyInfo>>),
    Reshare(Verified<ResharingMessage>),
}

/// A keygen announcement that matches the signed request, this node's config and a wallet
/// that does not exist yet.
pub(super) struct KeygenStart {
    pub wallet: String,
    /// This node's position in the (sorted, configured) committee.
    pub me_index: usize,
}

/// A reshare announcement that matches the signed request, the key info and this node's
/// config, and that has not run before.
pub(super) struct ReshareStart {
    pub req: Verified<ResharingMessage>,
    pub kind: KeyType,
    /// The old key: registry key info, or this node's staged import (`service/import.rs`).
    pub base: super::import::ReshareBase,
}

fn mismatch(what: &str) -> Failure {
    Failure::new(ErrorCode::MessageVerification, format!("announced {what} differs from the signed request"))
}

/// Whether the announced request id names `id`: the part before the last `#` (the coordinator
/// appends its delivery, which has no `#`, after it).
pub(super) fn request_id_names(start: &SessionStart, id: &str) -> Result<(), Failure> {
    match split_request_id(&start.request_id) {
        Some((named, _)) if named == id => Ok(()),
        _ => Err(Failure::new(ErrorCode::MessageVerification, "request id does not match the request")),
    }
}

impl Service {
    /// Decode, validate and authenticate a client request (size limit, JSON, ids and sizes,
    /// initiator signature, authorizers, approval rules). On failure: the failure, and the
    /// request when it decoded, so the error event can name its ids.
    pub(super) fn verify_request<M: mpcium_api::InitiatorMessage + Approval>(
        &self,
        body: &[u8],
        decode: fn(&[u8]) -> Result<M, mpcium_api::DecodeError>,
        validate: fn(&M) -> Result<(), mpcium_api::ValidationError>,
    ) -> Result<Verified<M>, Box<(Option<M>, Failure)>> {
        let fail = |req: Option<M>, code: ErrorCode, reason: String| {
            Err(Box::new((req, Failure::new(code, reason))))
        };
        if body.len() > self.cfg.max_request_bytes {
            return fail(None, ErrorCode::MsgValidation, "request over the size limit".into());
        }
        let req = match decode(body) {
            Ok(r) => r,
            Err(e) => return fail(None, e.error_code(), e.to_string()),
        };
        if let Err(e) = validate(&req) {
            return fail(Some(req), e.error_code(), e.to_string());
        }
        if let Err(e) = mpcium_api::verify::verify_initiator(&req, &self.cfg.initiator, self.mode()) {
            return fail(Some(req), e.error_code(), format!("invalid signature from initiator: {e}"));
        }
        if let Err(e) = self.cfg.authorization.authorize(&req, self.mode()) {
            return fail(Some(req), e.error_code(), e.to_string());
        }
        match req.approve(&self.cfg.authorization, self.mode()) {
            Ok(policy) => Ok(Verified { req, policy }),
            Err(f) => Err(Box::new((Some(req), f))),
        }
    }

    pub(super) fn verify_keygen(
        &self,
        body: &[u8],
    ) -> Result<Verified<GenerateKeyMessage>, (String, Failure)> {
        self.verify_request(body, GenerateKeyMessage::from_json, GenerateKeyMessage::validate).map_err(|e| {
            let (req, f) = *e;
            (req.map(|r| r.wallet_id).unwrap_or_default(), f)
        })
    }

    pub(super) fn verify_sign(
        &self,
        body: &[u8],
    ) -> Result<Verified<SignTxRequest>, Box<(SignTxRequest, Failure)>> {
        self.verify_request(body, SignTxRequest::from_json, SignTxRequest::validate).map_err(|e| {
            let (req, f) = *e;
            Box::new((req.unwrap_or_default(), f))
        })
    }

    pub(super) fn verify_reshare(
        &self,
        body: &[u8],
    ) -> Result<Verified<ResharingMessage>, Box<(ResharingMessage, Failure)>> {
        self.verify_request(body, ResharingMessage::from_json, ResharingMessage::validate).map_err(|e| {
            let (req, f) = *e;
            Box::new((req.unwrap_or_default(), f))
        })
    }

    /// The client's request of an announcement, verified here unless this node verified it
    /// already as the coordinator.
    pub(super) fn verified_request(
        &self,
        start: &SessionStart,
        own: Option<OwnRequest>,
    ) -> Result<OwnRequest, Failure> {
        if let Some(own) = own {
            return Ok(own);
        }
        let body = start.request_bytes().map_err(Failure::because(ErrorCode::MessageFormat))?;
        Ok(match start.op {
            SessionOp::Keygen => OwnRequest::Keygen(self.verify_keygen(&body).map_err(|(_, f)| f)?),
            SessionOp::Sign => OwnRequest::Sign(self.verify_sign(&body).map_err(|e| e.1)?, None),
            SessionOp::Reshare => OwnRequest::Reshare(self.verify_reshare(&body).map_err(|e| e.1)?),
            SessionOp::Presign | SessionOp::KeyPool => {
                return Err(Failure::new(
                    ErrorCode::InvalidSessionType,
                    "a presign or key pool session has no client request",
                ));
            }
        })
    }

    /// Check a keygen announcement: the signed request names the wallet; the threshold is this
    /// node's `mpc_threshold`; the committee is every configured node; the version is 1; and the
    /// wallet has none of its three keys in the key info or in this node's store (a replayed
    /// keygen request must not touch a live wallet).
    pub(super) async fn check_keygen_start(
        &self,
        start: &SessionStart,
        req: &Verified<GenerateKeyMessage>,
    ) -> Result<KeygenStart, Failure> {
        request_id_names(start, &req.wallet_id)?;
        if start.threshold != self.cfg.threshold {
            return Err(Failure::new(
                ErrorCode::InvalidThreshold,
                format!(
                    "announced threshold {} is not this node's mpc_threshold {}",
                    start.threshold, self.cfg.threshold
                ),
            ));
        }
        if start.participants != self.transport.directory().configured() {
            return Err(Failure::new(
                ErrorCode::IncompatiblePeerIds,
                "announced committee is not the configured cluster",
            ));
        }
        if start.key_version != 1
            || !start.new_participants.is_empty()
            || !start.dealers.is_empty()
            || start.presignature.is_some()
            || !start.nonces.is_empty()
        {
            return Err(Failure::new(ErrorCode::MessageVerification, "malformed keygen announcement"));
        }
        for kind in super::keygen::KEYGEN_KINDS {
            let info = self
                .registry
                .keyinfo(curve_name(kind), &req.wallet_id)
                .await
                .map_err(Failure::because(ErrorCode::KeyInfoLoad))?;
            let held = self
                .store
                .share_versions(share_kind(kind), &req.wallet_id)
                .map_err(Failure::because(ErrorCode::StorageRead))?;
            if info.is_some() || !held.is_empty() {
                return Err(Failure::new(
                    ErrorCode::KeyAlreadyExists,
                    format!("wallet {} already exists", req.wallet_id),
                ));
            }
        }
        if self.has_import(&req.wallet_id)? {
            return Err(Failure::new(
                ErrorCode::KeyAlreadyExists,
                format!(
                    "wallet {} is imported from the original and awaits conversion (a reshare)",
                    req.wallet_id
                ),
            ));
        }
        let me_index = start
            .participants
            .iter()
            .position(|p| p == self.me())
            .ok_or_else(|| Failure::new(ErrorCode::ParticipantNotFound, "not a participant"))?;
        Ok(KeygenStart { wallet: req.wallet_id.clone(), me_index })
    }

    /// Check a reshare announcement against the signed request (new committee, new threshold),
    /// the key info (version, old committee, dealers) and this node's config (every new member
    /// is a cluster node), and claim the request's session id, once, cluster-wide and on this
    /// node's disk: a coordinator that kept an old signed reshare request cannot run it again.
    pub(super) async fn check_reshare_start(
        &self,
        start: &SessionStart,
        req: Verified<ResharingMessage>,
    ) -> Result<ReshareStart, Failure> {
        request_id_names(start, &req.session_id)?;
        let kind = key_type_of(&req.key_type)?;
        let base = self.load_reshare_base(kind, &req.wallet_id).await?;
        let info = &base.info;
        if info.version != start.key_version {
            return Err(Failure::new(ErrorCode::SessionStale, "key version differs from the announcement"));
        }
        let mut old = info.participant_peer_ids.clone();
        old.sort();
        if old != start.participants {
            return Err(Failure::new(
                ErrorCode::IncompatiblePeerIds,
                "announced committee differs from the key info",
            ));
        }
        let mut signed_committee = req.node_ids.clone().unwrap_or_default();
        signed_committee.sort();
        if start.new_participants != signed_committee {
            return Err(mismatch("new committee"));
        }
        if i64::from(start.threshold) != req.new_threshold {
            return Err(mismatch("new threshold"));
        }
        let configured = self.transport.directory().configured();
        if let Some(unknown) = start.new_participants.iter().find(|n| !configured.contains(n)) {
            return Err(Failure::new(
                ErrorCode::ParticipantNotFound,
                format!("{unknown} is not a cluster node"),
            ));
        }
        let dealers_ok = start.dealers.len() == info.threshold as usize + 1
            && start.dealers.windows(2).all(|w| w[0] < w[1])
            && start.dealers.iter().all(|d| old.contains(d));
        if !dealers_ok {
            return Err(Failure::new(
                ErrorCode::IncompatiblePeerIds,
                "announced dealers are not t+1 distinct holders of the key",
            ));
        }
        if !start.new_participants.iter().chain(&start.dealers).any(|n| n == self.me()) {
            return Err(Failure::new(ErrorCode::ParticipantNotFound, "not a member"));
        }
        // The old key's public data every member deals or checks against: a dealer's own share
        // says what it is (the key info is only a copy anyone may write); the others take the
        // key info. All must name the same, or the run does not start.
        let from_info = base.old_key_digest();
        // A staged import is this node's own share already: nothing else to compare it with.
        if !base.imported() && start.dealers.iter().any(|d| d == self.me()) {
            let own = self.own_old_key_digest(kind, &req.wallet_id, info.version)?;
            if own != from_info {
                return Err(Failure::new(
                    ErrorCode::DataCorruption,
                    "the key info's public key data differs from this node's share",
                ));
            }
        }
        if start.old_key.as_deref() != Some(from_info.as_str()) {
            return Err(Failure::new(
                ErrorCode::MessageVerification,
                "announced old key differs from this node's view of it",
            ));
        }
        self.claim_reshare(kind, &req, &start.request_id).await?;
        Ok(ReshareStart { req, kind, base })
    }

    /// A signing request runs for one request message only: the coordinator claimed `(wallet,
    /// tx)` for the message's stream sequence; a participant checks the announced run is that
    /// message's (a replayed request under another sequence is `ERROR_SESSION_DUPLICATE`).
    pub(super) async fn check_sign_claim(
        &self,
        start: &SessionStart,
        req: &SignTxMessage,
    ) -> Result<(), Failure> {
        let delivery = split_request_id(&start.request_id).map(|(_, d)| d).unwrap_or_default();
        let sequence = delivery_sequence(delivery);
        match self
            .registry
            .confirm_claim(&req.wallet_id, &req.tx_id, sequence)
            .await
            .map_err(Failure::because(ErrorCode::StorageWrite))?
        {
            Claim::New | Claim::Same => Ok(()),
            Claim::Duplicate => Err(Failure::new(
                ErrorCode::SessionDuplicate,
                format!(
                    "duplicate signing request detected for walletID={} txID={}",
                    req.wallet_id, req.tx_id
                ),
            )),
        }
    }

    /// The digest of the old key's public data as this node's own share holds it.
    fn own_old_key_digest(&self, kind: KeyType, wallet: &str, version: u32) -> Result<String, Failure> {
        let stored = self
            .store
            .get_share(share_kind(kind), wallet, version)
            .map_err(Failure::because(ErrorCode::KeyLoad))?
            .ok_or_else(|| Failure::new(ErrorCode::KeyNotFound, "no share for this wallet on this node"))?;
        fn decoding(e: impl std::fmt::Display) -> Failure {
            Failure::new(ErrorCode::KeyDecoding, e.to_string())
        }
        let (threshold, (pk, shares)) = match kind {
            KeyType::Secp256k1 => {
                let k = mpcium_tss::ecdsa::KeyShare::from_bytes(&stored).map_err(decoding)?.old_key();
                (k.threshold, old_key_hex(&k))
            }
            KeyType::Ed25519 => {
                let k = mpcium_tss::eddsa::KeyShare::from_bytes(&stored).map_err(decoding)?.old_key();
                (k.threshold, old_key_hex(&k))
            }
            KeyType::Taproot => {
                let k = mpcium_tss::taproot::KeyShare::from_bytes(&stored).map_err(decoding)?.old_key();
                (k.threshold, old_key_hex(&k))
            }
        };
        Ok(old_key_digest(u32::from(threshold), &pk, &shares))
    }

    /// Claim a reshare request's session id for one run (`run`: the announced request id)
    /// in the cluster's replay records, and on this node's disk. A second run of the same
    /// request is a replay: `ERROR_SESSION_DUPLICATE`.
    pub(super) async fn claim_reshare(
        &self,
        kind: KeyType,
        req: &ResharingMessage,
        run: &str,
    ) -> Result<(), Failure> {
        let duplicate = || {
            Failure::new(
                ErrorCode::SessionDuplicate,
                format!(
                    "reshare session {} for wallet {} ran before (replay refused)",
                    req.session_id, req.wallet_id
                ),
            )
        };
        let tag = format!("reshare/{}/{}", curve_name(kind), req.session_id);
        match self
            .registry
            .claim_request(&req.wallet_id, &tag, run)
            .await
            .map_err(Failure::because(ErrorCode::StorageWrite))?
        {
            Claim::New | Claim::Same => {}
            Claim::Duplicate => return Err(duplicate()),
        }
        // The cluster record can be deleted by anyone with write access to the bucket (every
        // node): each node also keeps its own.
        match self.store.claim_run(&req.wallet_id, &tag, run) {
            Ok(true) => Ok(()),
            Ok(false) => Err(duplicate()),
            Err(e) => Err(Failure::new(ErrorCode::StorageWrite, e.to_string())),
        }
    }
}

/// SHA-256 (hex) of a key's public data as the key info holds it: threshold, public key and the
/// public shares by party id (length-prefixed fields).
pub fn old_key_digest(
    threshold: u32,
    public_key: &str,
    public_shares: &std::collections::BTreeMap<u16, String>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    };
    field(b"mpcium-rs/old-key/v1");
    field(&threshold.to_be_bytes());
    field(public_key.to_ascii_lowercase().as_bytes());
    for (party, share) in public_shares {
        field(&party.to_be_bytes());
        field(share.to_ascii_lowercase().as_bytes());
    }
    hex::encode(h.finalize())
}
