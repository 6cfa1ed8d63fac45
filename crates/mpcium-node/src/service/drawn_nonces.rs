//! FROST signatures in one round with nonces drawn ahead (`crate::nonces`, issue #16).
//!
//! - A co-signer whose EdDSA or Taproot signature succeeded draws one or two nonce pairs for the
//!   coordinator's later signatures with the same key, keeps the secrets in memory and sends the
//!   commitments, each signed with its identity key, in its done report.
//! - The coordinator keeps them and, when every co-signer it picks has one, names one of each
//!   (with a fresh nonce of its own) in the session start: FROST's round 1 is skipped.
//! - Every signer takes (removes) its named nonce before it checks the nonces or computes
//!   anything, so a replayed or forged start can never make it sign twice with one nonce; checks that its commitments are the ones
//!   it drew; and checks every other co-signer's offer signature (the coordinator's own
//!   commitments are covered by the start's envelope), so a share that then fails to verify is
//!   its signer's, not a forgery's. A nonce it does not hold is refused with
//!   `ERROR_SESSION_STALE` (a code of its own here: the coordinator signs in full on it, and on
//!   nothing else, so a refusal such as a rate limit is not asked twice).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use mpcium_api::{ClientId, ErrorCode, SignTxRequest};
use mpcium_tss::frost::{self, Suite};
use mpcium_tss::{KeyType, PartyId, ProtocolError};

use super::check::{OwnRequest, Verified};
use super::reselect::Attempt;
use super::{Failure, Service, party_ids, quorum};
use crate::control::{SessionOp, SessionStart};
use crate::nonces::{HeldNonce, NonceKey, NonceOffer, NonceUse, PER_KEY, new_id, offer_statement};
use crate::registry::KeyInfo;

/// Commitments drawn in sessions whose done report is not sent yet, by session id.
#[derive(Default)]
pub(super) struct MadeOffers(Mutex<HashMap<[u8; 32], Vec<NonceOffer>>>);

impl MadeOffers {
    fn put(&self, session: [u8; 32], offers: Vec<NonceOffer>) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(session, offers);
        }
    }

    /// What session `session` drew (and forget it).
    pub(super) fn take(&self, session: &[u8; 32]) -> Vec<NonceOffer> {
        self.0.lock().ok().and_then(|mut map| map.remove(session)).unwrap_or_default()
    }
}

/// A signer's nonce and every signer's commitments by party id, for `Sign::with_nonce`.
pub(super) type Drawn = (HeldNonce, BTreeMap<PartyId, Vec<u8>>);

/// The key type of a FROST signing request carried by `start`, if it is one.
fn frost_kind(start: &SessionStart) -> Option<KeyType> {
    if start.op != SessionOp::Sign {
        return None;
    }
    let kind = super::announced_key_type(&start.request_bytes().ok()?);
    (kind != KeyType::Secp256k1).then_some(kind)
}

/// What the nonces of `start`'s signature are kept under: its coordinator and key.
fn nonce_key(start: &SessionStart, kind: KeyType, wallet: &str) -> NonceKey {
    NonceKey {
        coordinator: start.coordinator.clone(),
        key_type: kind,
        wallet: wallet.to_owned(),
        version: start.key_version,
    }
}

/// `proto` started at round 2 with this signer's nonce drawn ahead, when the start named one
/// (`nonce_of` picks the suite's nonce out of it).
pub(super) fn with_drawn<S: Suite>(
    proto: frost::Sign<S>,
    drawn: Option<Drawn>,
    nonce_of: fn(HeldNonce) -> Option<frost::Nonce<S>>,
) -> Result<frost::Sign<S>, Failure> {
    let Some((held, commitments)) = drawn else { return Ok(proto) };
    let nonce =
        nonce_of(held).ok_or_else(|| Failure::new(ErrorCode::SigningFailure, "nonce of another key type"))?;
    proto.with_nonce(nonce, &commitments).map_err(Failure::because(ErrorCode::MessageVerification))
}

impl Service {
    /// Draw a nonce pair for a signature with this node's share of `wallet`'s key.
    fn draw_nonce(&self, kind: KeyType, wallet: &str, version: u32) -> Result<(HeldNonce, Vec<u8>), Failure> {
        let internal = |e: ProtocolError| Failure::new(ErrorCode::SigningFailure, e.to_string());
        match kind {
            KeyType::Ed25519 => {
                let share =
                    self.load_share(kind, wallet, version, mpcium_tss::eddsa::KeyShare::from_bytes)?;
                HeldNonce::draw_ed25519(&share).map_err(internal)
            }
            KeyType::Taproot => {
                let share =
                    self.load_share(kind, wallet, version, mpcium_tss::taproot::KeyShare::from_bytes)?;
                HeldNonce::draw_taproot(&share).map_err(internal)
            }
            KeyType::Secp256k1 => {
                Err(Failure::new(ErrorCode::InvalidSessionType, "nonces are drawn for FROST keys only"))
            }
        }
    }

    /// The coordinator's side: a signature in one round when every co-signer it can pick has an
    /// offer in stock; `None` when they do not (sign in full).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn sign_with_drawn_nonces(
        &self,
        req: &Verified<SignTxRequest>,
        body: &[u8],
        client: Option<&ClientId>,
        delivery: &str,
        info: &KeyInfo,
        kind: KeyType,
        candidates: &[String],
        eligible: &quorum::Eligible,
    ) -> Option<Attempt> {
        let me = self.me().to_owned();
        if !candidates.contains(&me) {
            return None;
        }
        let (wallet, version) = (req.wallet_id.as_str(), info.version);
        let dir = self.transport.directory();
        let mut others: Vec<String> = Vec::new();
        for c in quorum::rotation(candidates, &req.tx_id) {
            if others.len() == info.threshold as usize {
                break;
            }
            let incarnation = dir.incarnation(c);
            if *c != me && !others.contains(c) && self.nonce_stock.has(kind, wallet, version, c, incarnation)
            {
                others.push(c.clone());
            }
        }
        let mut signers: Vec<String> = others.iter().cloned().chain([me.clone()]).collect();
        signers.sort();
        if others.len() != info.threshold as usize || !eligible.allows(&signers) {
            return None;
        }
        let mut uses = self.nonce_stock.take(kind, wallet, version, &others, |n| dir.incarnation(n))?;
        let own_key =
            NonceKey { coordinator: me.clone(), key_type: kind, wallet: wallet.to_owned(), version };
        let (nonce, commitments) = match self.draw_nonce(kind, wallet, version) {
            Ok(drawn) => drawn,
            Err(f) => return Some(Err((f, Vec::new()))),
        };
        let id = new_id();
        let own =
            NonceOffer { id: id.clone(), commitments: hex::encode(&commitments), signature: String::new() };
        if !self.nonce_book.keep(&own_key, id.clone(), nonce, commitments) {
            return None;
        }
        uses.push(NonceUse { node: me.clone(), offer: own });
        uses.sort_by(|a, b| a.node.cmp(&b.node));
        let start =
            SessionStart { nonces: uses, ..self.signing_start(req, info, signers, delivery, client, body) };
        let outcome = self
            .coordinate_watched(start, Some(OwnRequest::Sign(req.clone(), Some(Box::new(info.clone())))))
            .await;
        // Unused when the start never reached this node's own part.
        let _ = self.nonce_book.take(&own_key, &id);
        if let Err((f, _)) = &outcome
            && f.code == ErrorCode::SessionStale
        {
            // A co-signer lost its nonces (it restarted, and its new ready record is not here
            // yet): the rest of its offers are gone too.
            for node in &others {
                self.nonce_stock.forget(kind, wallet, version, node);
            }
        }
        Some(outcome)
    }

    /// Keep the offers a co-signer sent in its done report for `start` (a FROST signature this
    /// node coordinated). With more than two signers other co-signers check them: one that
    /// does not verify is dropped here already.
    pub(super) fn keep_offers(&self, start: &SessionStart, node: &str, offers: Vec<NonceOffer>) {
        if offers.is_empty() || start.coordinator != self.me() || node == self.me() {
            return;
        }
        let Some(kind) = frost_kind(start) else { return };
        let key = nonce_key(start, kind, &super::wallet_of(start));
        let offers = if start.threshold >= 2 {
            let dir = self.transport.directory();
            offers.into_iter().filter(|o| offer_verifies(dir, node, &key, o)).collect()
        } else {
            offers
        };
        let incarnation = self.transport.directory().incarnation(node);
        self.nonce_stock.add(kind, &key.wallet, key.version, node, incarnation, offers);
    }

    /// A signer's side: when the start names nonces drawn ahead, take this node's (it is gone
    /// from the book whatever happens next) and check the start's commitments against it and
    /// the other co-signers' offers against their signatures. `None` for a start without them.
    pub(super) fn take_drawn_nonce(
        &self,
        start: &SessionStart,
        kind: KeyType,
        wallet: &str,
        info: &KeyInfo,
    ) -> Result<Option<Drawn>, Failure> {
        if start.nonces.is_empty() {
            return Ok(None);
        }
        if kind == KeyType::Secp256k1 || start.presignature.is_some() {
            return Err(Failure::new(
                ErrorCode::MsgValidation,
                "nonces drawn ahead sign only EdDSA and Taproot requests",
            ));
        }
        let named: Vec<&String> = start.nonces.iter().map(|n| &n.node).collect();
        if !named.iter().copied().eq(start.participants.iter()) {
            return Err(Failure::new(
                ErrorCode::MessageVerification,
                "the announced nonces do not name exactly the signers",
            ));
        }
        let mine = start
            .nonces
            .iter()
            .find(|n| n.node == self.me())
            .ok_or_else(|| Failure::new(ErrorCode::ParticipantNotFound, "not a signer"))?;
        // (`sign_with_share` checked the start's key version is the key info's.)
        let key = nonce_key(start, kind, wallet);
        let Some((nonce, held)) = self.nonce_book.take(&key, &mine.offer.id) else {
            self.metrics.nonces.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Failure::new(
                ErrorCode::SessionStale,
                format!(
                    "nonce {} is not held here (used, dropped, or drawn before this node restarted)",
                    mine.offer.id
                ),
            ));
        };
        if hex::decode(&mine.offer.commitments).ok().as_ref() != Some(&held) {
            return Err(Failure::new(
                ErrorCode::MessageVerification,
                "the announced commitments are not the ones this node drew",
            ));
        }
        let dir = self.transport.directory();
        let mut commitments = BTreeMap::new();
        for n in &start.nonces {
            if n.node != self.me()
                && n.node != start.coordinator
                && !offer_verifies(dir, &n.node, &key, &n.offer)
            {
                return Err(Failure::new(
                    ErrorCode::MessageVerification,
                    format!("the commitments announced for {} are not signed by it", n.node),
                ));
            }
            let bytes = hex::decode(&n.offer.commitments)
                .map_err(|_| Failure::new(ErrorCode::MessageFormat, "commitments are not hex"))?;
            let party = party_ids(&info.participant_peer_ids, std::slice::from_ref(&n.node))?[0];
            commitments.insert(party, bytes);
        }
        Ok(Some((nonce, commitments)))
    }

    /// After a FROST signature this node took part in as a co-signer: draw nonces (`draw`, with
    /// the share it signed with) for the coordinator's next ones with this key (two while it
    /// holds fewer than half of [`PER_KEY`], else one: a use gives one back) and keep their
    /// offers for the done report.
    pub(super) fn offer_nonces(
        &self,
        start: &SessionStart,
        session: [u8; 32],
        kind: KeyType,
        wallet: &str,
        draw: impl Fn() -> Result<(HeldNonce, Vec<u8>), ProtocolError>,
    ) {
        if start.coordinator == self.me() {
            return;
        }
        let key = nonce_key(start, kind, wallet);
        let count = if self.nonce_book.held(&key) < PER_KEY / 2 { 2 } else { 1 };
        let mut offers = Vec::with_capacity(count);
        for _ in 0..count {
            let (nonce, commitments) = match draw() {
                Ok(drawn) => drawn,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot draw a nonce ahead");
                    break;
                }
            };
            let id = new_id();
            let commitments_hex = hex::encode(&commitments);
            let statement = offer_statement(&key, &id, &commitments_hex);
            let signature = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                self.transport.sign_statement(&statement),
            );
            if !self.nonce_book.keep(&key, id.clone(), nonce, commitments) {
                break;
            }
            offers.push(NonceOffer { id, commitments: commitments_hex, signature });
        }
        if !offers.is_empty() {
            self.made_offers.put(session, offers);
        }
    }
}

/// Whether `offer` carries `node`'s signature for `key`.
fn offer_verifies(
    dir: &crate::registry::PeerDirectory,
    node: &str,
    key: &NonceKey,
    offer: &NonceOffer,
) -> bool {
    let statement = offer_statement(key, &offer.id, &offer.commitments);
    let attestation =
        mpcium_api::Attestation { node_id: node.to_owned(), signature: offer.signature.clone() };
    dir.identity(node).is_some_and(|k| attestation.is_valid(&statement, k))
}
