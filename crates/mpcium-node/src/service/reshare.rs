//! Resharing: a reshare request (core NATS `mpc:reshare`, as in the original) moves a key to the
//! committee and threshold the client signed. Every participant checks the announcement against
//! that signed request and the key info (see [`super::check`]), and a request runs once.

use std::sync::Arc;

use futures_util::StreamExt;
use mpcium_api::{ClientId, ErrorCode, ResharingMessage, ResharingResultEvent, subjects};
use mpcium_tss::{ExecutionId, KeyType, PartyId};

use super::check::{OwnRequest, ReshareStart, Verified};
use super::participant::shutting_down;
use super::{
    Failure, Output, RESHARE_SUBJECT, Service, curve_name, ecdsa_xy, hex, hex_vec, key_type_of, old_key_hex,
    session_members, share_kind, x_only,
};
use crate::control::{SessionOp, SessionStart, request_id};
use crate::drain::Phase;
use crate::registry::KeyInfo;
use crate::session::run_protocol;
use crate::transport::SessionInbox;

impl Service {
    /// Reshare requests arrive on core NATS `mpc:reshare` (as in the original); a queue group
    /// hands each to one node, the coordinator.
    pub(super) async fn serve_reshare(self: Arc<Self>) -> Result<(), async_nats::Error> {
        let _puller = self.drain.track_puller();
        let mut sub =
            self.transport.client().queue_subscribe(RESHARE_SUBJECT, "mpcium-reshare".into()).await?;
        loop {
            let msg = tokio::select! {
                msg = sub.next() => msg,
                _ = self.drain.reached(Phase::Draining) => break,
            };
            let Some(msg) = msg else { break };
            let this = self.clone();
            let in_flight = self.drain.track();
            tokio::spawn(async move {
                let _in_flight = in_flight;
                let client = super::intake::client_id_of(msg.headers.as_ref());
                let delivery = crate::registry::now_ms().to_string();
                let started = std::time::Instant::now();
                let mut facts = super::audit::RequestFacts::new("reshare", &msg.payload, client.as_ref());
                let (event, trace) =
                    super::audit::traced(this.coordinate_reshare(&msg.payload, client.as_ref(), &delivery))
                        .await;
                let (session_id, event) = match event {
                    Ok(answer) => answer,
                    Err(f) => {
                        // Not answerable (no valid session id): recorded, not answered.
                        let error = Some((&f.code, f.reason.as_str()));
                        this.audit_request(facts, trace, crate::audit::Outcome::Failure, error);
                        return;
                    }
                };
                facts.request_id = request_id(&session_id, &delivery);
                facts.wallet_id = event.wallet_id.clone();
                let error = event.error_code.as_ref().map(|c| (c, event.error_reason.as_str()));
                let outcome = if error.is_some() {
                    crate::audit::Outcome::Failure
                } else {
                    crate::audit::Outcome::Success
                };
                this.audit_request(facts, trace, outcome, error);
                this.metrics.record(
                    "reshare",
                    event.error_code.as_ref().map(|c| c.as_str()),
                    started.elapsed(),
                );
                let key = subjects::reshare_idempotency_key(client.as_ref(), &session_id, Some(&delivery));
                let subject = subjects::reshare_result_subject(client.as_ref(), &session_id);
                if let Err(e) = this.publish(subject, key, event.to_json()).await {
                    tracing::error!(error = %e, "could not publish a reshare result");
                }
            });
        }
        Ok(())
    }

    async fn coordinate_reshare(
        &self,
        body: &[u8],
        client: Option<&ClientId>,
        delivery: &str,
    ) -> Result<(String, ResharingResultEvent), Failure> {
        let req = match self.verify_reshare(body) {
            Ok(r) => r,
            Err(err) => {
                let (req, f) = *err;
                if req.session_id.is_empty()
                    || mpcium_api::ids::validate_token(mpcium_api::IdKind::SessionId, &req.session_id)
                        .is_err()
                {
                    // No valid session id: there is no result subject to answer on.
                    tracing::warn!(reason = %f.reason, "reshare request without a usable session id; not answerable");
                    return Err(f);
                }
                let ev = ResharingResultEvent::error(
                    &req.wallet_id,
                    req.new_threshold,
                    req.key_type.clone(),
                    f.code,
                    &f.reason,
                );
                return Ok((req.session_id, ev));
            }
        };
        let (wallet, threshold, key_type, session_id) =
            (req.wallet_id.clone(), req.new_threshold, req.key_type.clone(), req.session_id.clone());
        // Core NATS has no redelivery: past the drain deadline the client gets an error code.
        let result = tokio::select! {
            result = self.reshare(req, body, client, delivery) => result,
            _ = self.drain.reached(Phase::Abandoning) => Err(shutting_down()),
        };
        let ev = match result.map(|a| (a.output, a.attestations)) {
            Ok((Output::Reshare { public_key }, attestations)) => match hex_vec(&public_key) {
                Some(pk) => {
                    let mut ev = ResharingResultEvent::success(&wallet, threshold, key_type, &pk);
                    ev.attestations = attestations;
                    ev
                }
                None => ResharingResultEvent::error(
                    &wallet,
                    threshold,
                    key_type,
                    ErrorCode::KeyEncoding,
                    "malformed public key from the participants",
                ),
            },
            Ok(_) => ResharingResultEvent::error(
                &wallet,
                threshold,
                key_type,
                ErrorCode::ReshareFailure,
                "participants reported another kind of result",
            ),
            Err(f) => ResharingResultEvent::error(&wallet, threshold, key_type, f.code, &f.reason),
        };
        Ok((session_id, ev))
    }

    async fn reshare(
        &self,
        req: Verified<ResharingMessage>,
        body: &[u8],
        client: Option<&ClientId>,
        delivery: &str,
    ) -> Result<super::Agreed, Failure> {
        self.admit_request(SessionOp::Reshare, &req.wallet_id, &request_id(&req.session_id, delivery))?;
        let kind = key_type_of(&req.key_type)?;
        let base = self.load_reshare_base(kind, &req.wallet_id).await?;
        let info = &base.info;
        let ready = self.transport.directory().ready();
        let mut new_committee = req.node_ids.clone().unwrap_or_default();
        new_committee.sort();
        let configured = self.transport.directory().configured();
        if let Some(unknown) = new_committee.iter().find(|n| !configured.contains(n)) {
            return Err(Failure::new(
                ErrorCode::ParticipantNotFound,
                format!("{unknown} is not a cluster node"),
            ));
        }
        if let Some(down) = new_committee.iter().find(|n| !ready.contains(n)) {
            return Err(Failure::new(
                ErrorCode::PeerNotReady,
                format!("new committee member {down} is not ready"),
            ));
        }
        let mut old = info.participant_peer_ids.clone();
        old.sort();
        let dealers: Vec<String> =
            old.iter().filter(|p| ready.contains(p)).take(info.threshold as usize + 1).cloned().collect();
        if dealers.len() < info.threshold as usize + 1 {
            return Err(Failure::new(
                ErrorCode::NotMajority,
                format!("{} of the old holders ready, {} needed", dealers.len(), info.threshold + 1),
            ));
        }
        let id = request_id(&req.session_id, delivery);
        // Claimed before anyone runs: a replay is answered with its own clean error.
        self.claim_reshare(kind, &req, &id).await?;
        let start = SessionStart {
            new_participants: new_committee,
            dealers,
            old_key: Some(base.old_key_digest()),
            ..SessionStart::new(
                SessionOp::Reshare,
                self.me(),
                old,
                info.version,
                req.new_threshold as u32,
                id,
            )
        }
        .with_client_request(client, body);
        self.coordinate_attested(start, Some(OwnRequest::Reshare(req))).await
    }

    pub(super) async fn reshare_part(
        &self,
        start: &SessionStart,
        checked: ReshareStart,
        session: [u8; 32],
        inbox: &mut SessionInbox,
    ) -> Result<Output, Failure> {
        use mpcium_tss::reshare::{Member, Roster};
        let ReshareStart { req, kind, base } = checked;
        let info = &base.info;
        let members = session_members(start);
        let position =
            |list: &[String], n: &str| list.iter().position(|x| x == n).map(|i| (i + 1) as PartyId);
        let roster_members: Vec<Member> = members
            .iter()
            .enumerate()
            .map(|(i, n)| Member {
                id: (i + 1) as PartyId,
                old: if start.dealers.contains(n) { position(&start.participants, n) } else { None },
                new: position(&start.new_participants, n),
            })
            .collect();
        let roster = Roster::new(roster_members).map_err(Failure::because(ErrorCode::InvalidThreshold))?;
        let me = position(&members, self.me())
            .ok_or_else(|| Failure::new(ErrorCode::ParticipantNotFound, "not a member"))?;
        let ids: Vec<PartyId> = (1..=members.len() as PartyId).collect();
        let spec = self.spec(session, &members, &ids, me);
        let new_t = u16::try_from(start.threshold)
            .map_err(|_| Failure::new(ErrorCode::InvalidThreshold, "threshold"))?;
        let dealer = start.dealers.iter().any(|d| d == self.me());
        let stored = if dealer && !base.imported() {
            Some(
                self.store
                    .get_share(share_kind(kind), &req.wallet_id, info.version)
                    .map_err(Failure::because(ErrorCode::KeyLoad))?
                    .ok_or_else(|| {
                        Failure::new(ErrorCode::KeyNotFound, "no share for this wallet on this node")
                    })?,
            )
        } else {
            None
        };
        let eid = ExecutionId(session);
        let new_version = info.version + 1;
        let (new_share, public) = match kind {
            KeyType::Secp256k1 => {
                let old_share = stored
                    .as_ref()
                    .map(|b| mpcium_tss::ecdsa::KeyShare::from_bytes(b))
                    .transpose()
                    .map_err(Failure::because(ErrorCode::KeyDecoding))?;
                let old_key = base.old_key::<mpcium_tss::curve::Secp256k1>()?;
                let public_key = hex(&ecdsa_xy(&old_key.public_key));
                let proto = if base.imported() {
                    let imported = dealer.then(|| self.imported_share(&req.wallet_id)).transpose()?;
                    mpcium_tss::ecdsa::Reshare::import(eid, me, roster, new_t, old_key, imported.as_ref())
                } else {
                    mpcium_tss::ecdsa::Reshare::new(eid, me, roster, new_t, old_key, old_share.as_ref())
                }
                .map_err(Failure::because(ErrorCode::ReshareFailure))?;
                match run_protocol(&self.transport, inbox, &spec, proto).await? {
                    mpcium_tss::ecdsa::ReshareResult::Share(share) => {
                        let bytes = share.to_bytes().map_err(Failure::because(ErrorCode::KeyEncoding))?;
                        (Some((bytes, old_key_hex(&share.old_key()))), public_key)
                    }
                    mpcium_tss::ecdsa::ReshareResult::Retired => (None, public_key),
                }
            }
            KeyType::Ed25519 => {
                let old_share = stored
                    .as_ref()
                    .map(|b| mpcium_tss::eddsa::KeyShare::from_bytes(b))
                    .transpose()
                    .map_err(Failure::because(ErrorCode::KeyDecoding))?;
                let old_key = base.old_key::<mpcium_tss::curve::Ed25519>()?;
                let public_key =
                    hex(&<mpcium_tss::curve::Ed25519 as mpcium_tss::curve::Curve>::point_to_bytes(
                        &old_key.public_key,
                    ));
                let proto = if base.imported() {
                    let imported = dealer.then(|| self.imported_share(&req.wallet_id)).transpose()?;
                    mpcium_tss::eddsa::Reshare::import(eid, me, roster, new_t, old_key, imported.as_ref())
                } else {
                    mpcium_tss::eddsa::Reshare::new(eid, me, roster, new_t, old_key, old_share.as_ref())
                }
                .map_err(Failure::because(ErrorCode::ReshareFailure))?;
                match run_protocol(&self.transport, inbox, &spec, proto).await? {
                    mpcium_tss::eddsa::ReshareResult::Share(share) => {
                        let bytes = share.to_bytes().map_err(Failure::because(ErrorCode::KeyEncoding))?;
                        (Some((bytes, old_key_hex(&share.old_key()))), public_key)
                    }
                    mpcium_tss::eddsa::ReshareResult::Retired => (None, public_key),
                }
            }
            KeyType::Taproot => {
                if base.imported() {
                    return Err(Failure::new(ErrorCode::ReshareFailure, "taproot keys are never imported"));
                }
                let old_share = stored
                    .as_ref()
                    .map(|b| mpcium_tss::taproot::KeyShare::from_bytes(b))
                    .transpose()
                    .map_err(Failure::because(ErrorCode::KeyDecoding))?;
                let old_key = base.old_key::<mpcium_tss::curve::Secp256k1>()?;
                // Clients know the internal key x-only (the keygen event's `taproot_pub_key`).
                let public_key = hex(&x_only(&old_key.public_key));
                let proto =
                    mpcium_tss::taproot::Reshare::new(eid, me, roster, new_t, old_key, old_share.as_ref())
                        .map_err(Failure::because(ErrorCode::ReshareFailure))?;
                match run_protocol(&self.transport, inbox, &spec, proto).await? {
                    mpcium_tss::taproot::ReshareResult::Share(share) => {
                        let bytes = share.to_bytes().map_err(Failure::because(ErrorCode::KeyEncoding))?;
                        (Some((bytes, old_key_hex(&share.old_key()))), public_key)
                    }
                    mpcium_tss::taproot::ReshareResult::Retired => (None, public_key),
                }
            }
        };
        let retired = new_share.is_none();
        if let Some((bytes, (pk, shares))) = new_share {
            self.store
                .put_share(share_kind(kind), &req.wallet_id, new_version, &bytes)
                .map_err(Failure::because(ErrorCode::KeySave))?;
            let info = KeyInfo {
                participant_peer_ids: start.new_participants.clone(),
                threshold: start.threshold,
                version: new_version,
                public_key: pk,
                public_shares: shares,
                signatures: Default::default(),
                request: start.request.clone(),
            };
            // The coordinator writes it once every new holder signed it.
            self.made_keyinfo(session, kind, &req.wallet_id, &info);
            tracing::info!(wallet = %req.wallet_id, curve = curve_name(kind), version = new_version, "key reshared");
        }
        if retired && dealer {
            // This node left the committee: its old share has no use but a rollback.
            self.retire_old_shares(kind, &req.wallet_id, new_version);
        }
        if kind == KeyType::Secp256k1 {
            // Presignatures of the old shares must not outlive them.
            self.drop_presignatures(&req.wallet_id, None);
            // A new version has fresh pairwise OT state: bans of the old one are lifted.
            self.lift_bans(&req.wallet_id, new_version);
        }
        Ok(Output::Reshare { public_key: public })
    }
}
