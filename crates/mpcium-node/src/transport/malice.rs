//! Test-only misbehaviour of a node's outbound messages (cargo feature `test-malice`).
//!
//! A [`MaliceSwitch`] belongs to every [`Transport`] built with the feature and is off until a
//! test turns it on, so compiling the feature in (CI builds with `--all-features`) changes
//! nothing for a node nobody configured. When on, the node runs the honest code and only its
//! outbound protocol messages (envelopes of kind [`Kind::Broadcast`] and [`Kind::Private`]) are
//! altered; control messages (session start, echo, abort, done) stay honest, so the tests show
//! what the *other* nodes do about each kind of cheating.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use super::{Transport, TransportError};
use crate::envelope::{Envelope, Kind};

/// How many earlier sessions a [`Misbehaviour::ReplayOldSession`] node remembers.
const REMEMBERED_SESSIONS: usize = 4;

/// One way of cheating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Flip the lowest bit of the last payload byte of this node's protocol message number
    /// `seq` in every session (the envelope is signed after the change, so the transport accepts
    /// it and the protocol has to catch it).
    CorruptRound {
        /// The envelope sequence number within a session (0 = its first message).
        seq: u32,
    },
    /// Send the broadcast number `seq` genuinely to the first recipient and a different version
    /// to every other one, each copy validly signed. The other version has the payload's last
    /// two 32-byte words swapped (the last byte's lowest bit flipped if it is shorter): for an
    /// EdDSA nonce commitment (`... hiding ‖ binding`) that is another well-formed commitment,
    /// which no recipient can tell from a genuine one on its own.
    Equivocate {
        /// The envelope sequence number of the broadcast within a session.
        seq: u32,
    },
    /// Remember the protocol payloads of each session, and in every later session send, in
    /// place of each message, the payload that had the same sequence number (and recipient) in
    /// the most recent earlier session, re-signed for the current one: exactly what a node that
    /// kept an old transcript can do. A session with nothing earlier to replay runs honestly.
    ReplayOldSession,
    /// Send every protocol message as if from node `as_node`, signed with this node's own
    /// identity key (the only key it has).
    SpoofIdentity {
        /// The node id written as the sender.
        as_node: String,
    },
}

/// One remembered protocol payload: (seq, recipient for a private message, plaintext).
type Recorded = (u32, Option<String>, Zeroizing<Vec<u8>>);

#[derive(Default)]
struct State {
    mode: Option<Misbehaviour>,
    /// Newest session last.
    sessions: VecDeque<([u8; 32], Vec<Recorded>)>,
}

/// Turns a node's misbehaviour on and off (shared by every clone of its transport).
#[derive(Clone, Default)]
pub struct MaliceSwitch(Arc<Mutex<State>>);

impl std::fmt::Debug for MaliceSwitch {
    // The remembered payloads include secret shares sent privately: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaliceSwitch").field("mode", &self.mode()).finish_non_exhaustive()
    }
}

impl MaliceSwitch {
    /// Misbehave from now on (`None`: behave honestly again; anything remembered is forgotten).
    pub fn set(&self, mode: Option<Misbehaviour>) {
        if let Ok(mut s) = self.0.lock() {
            s.sessions.clear();
            s.mode = mode;
        }
    }

    /// The current misbehaviour.
    pub fn mode(&self) -> Option<Misbehaviour> {
        self.0.lock().ok().and_then(|s| s.mode.clone())
    }

    /// What this node sends in place of `payload` (seq `seq` of `session`, to `recipient` for a
    /// private message), as `(claimed sender, payload)` for the recipient at position `index` of
    /// the send; `None`: send honestly.
    fn rewrite(
        &self,
        kind: Kind,
        session: [u8; 32],
        seq: u32,
        recipient: Option<&str>,
        index: usize,
        payload: &[u8],
    ) -> Option<(Option<String>, Vec<u8>)> {
        if kind == Kind::Control {
            return None;
        }
        let mut state = self.0.lock().ok()?;
        let flipped = || {
            let mut p = payload.to_vec();
            if let Some(last) = p.last_mut() {
                *last ^= 1;
            }
            p
        };
        match state.mode.clone()? {
            Misbehaviour::CorruptRound { seq: target } => (seq == target).then(|| (None, flipped())),
            Misbehaviour::Equivocate { seq: target } => {
                (kind == Kind::Broadcast && seq == target && index > 0).then(|| {
                    let n = payload.len();
                    if n < 64 {
                        return (None, flipped());
                    }
                    let mut p = payload.to_vec();
                    let (head, last) = p.split_at_mut(n - 32);
                    head[n - 64..].swap_with_slice(last);
                    (None, p)
                })
            }
            Misbehaviour::SpoofIdentity { as_node } => Some((Some(as_node), payload.to_vec())),
            Misbehaviour::ReplayOldSession => {
                let recipient = (kind == Kind::Private).then(|| recipient.map(str::to_owned)).flatten();
                let old =
                    state.sessions.iter().rev().filter(|(id, _)| *id != session).find_map(|(_, msgs)| {
                        msgs.iter().find(|(s, r, _)| *s == seq && *r == recipient).map(|(_, _, p)| p.to_vec())
                    });
                if index == 0 || kind == Kind::Private {
                    state.remember(session, seq, recipient, payload);
                }
                old.map(|p| (None, p))
            }
        }
    }
}

impl State {
    fn remember(&mut self, session: [u8; 32], seq: u32, recipient: Option<String>, payload: &[u8]) {
        if self.sessions.back().is_none_or(|(id, _)| *id != session) {
            let entry = match self.sessions.iter().position(|(id, _)| *id == session) {
                Some(pos) => self.sessions.remove(pos).unwrap_or((session, Vec::new())),
                None => (session, Vec::new()),
            };
            self.sessions.push_back(entry);
            if self.sessions.len() > REMEMBERED_SESSIONS {
                self.sessions.pop_front();
            }
        }
        if let Some((_, msgs)) = self.sessions.back_mut() {
            msgs.push((seq, recipient, Zeroizing::new(payload.to_vec())));
        }
    }
}

impl Transport {
    /// This node's misbehaviour switch.
    pub fn malice(&self) -> &MaliceSwitch {
        &self.malice
    }

    /// Send a broadcast with the configured misbehaviour, if it concerns this message. Returns
    /// the envelope the first recipient got (what an honest sender would record as sent), or
    /// `None` to send honestly.
    pub(super) async fn send_public_maliciously(
        &self,
        kind: Kind,
        session: [u8; 32],
        seq: u32,
        to: &[String],
        payload: &[u8],
    ) -> Result<Option<Envelope>, TransportError> {
        if self.malice.mode().is_none() || kind == Kind::Control {
            return Ok(None);
        }
        let mut first = None;
        let peers = to.iter().filter(|n| n.as_str() != self.dir.me());
        for (index, node) in peers.enumerate() {
            let (sender, body) = self
                .malice
                .rewrite(kind, session, seq, None, index, payload)
                .unwrap_or_else(|| (None, payload.to_vec()));
            let sender = sender.unwrap_or_else(|| self.dir.me().to_owned());
            let env = Envelope::seal_public(kind, session, &sender, seq, body, &self.identity)?;
            self.publish(node, env.encode().into()).await?;
            first.get_or_insert(env);
        }
        match first {
            Some(env) => Ok(Some(env)),
            // Nobody to send to: the honest path builds the envelope to return.
            None => Ok(None),
        }
    }

    /// Send a private message with the configured misbehaviour; `false`: send honestly.
    pub(super) async fn send_private_maliciously(
        &self,
        session: [u8; 32],
        seq: u32,
        to: &str,
        plaintext: &[u8],
    ) -> Result<bool, TransportError> {
        let Some((sender, body)) = self.malice.rewrite(Kind::Private, session, seq, Some(to), 0, plaintext)
        else {
            return Ok(false);
        };
        let pair = self.dir.pair_key(to).ok_or_else(|| TransportError::PeerNotReady(to.to_owned()))?;
        let sender = sender.unwrap_or_else(|| self.dir.me().to_owned());
        let env = Envelope::seal_private(session, &sender, to, seq, &body, &pair, &self.identity)?;
        self.publish(to, env.encode().into()).await?;
        Ok(true)
    }
}
