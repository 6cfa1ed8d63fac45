//! The sans-IO protocol contract shared by every engine, the execution id that binds a run, and an
//! in-process simulator for tests and benchmarks.

use std::collections::{BTreeMap, VecDeque};

use sha2::{Digest, Sha256};

/// A participant's number inside one wallet committee: its position (1-based) in the committee's
/// ordered node list. Never 0, which is the Shamir evaluation point of the secret itself.
pub type PartyId = u16;

/// What a protocol wants its caller to do next.
#[derive(Debug)]
pub enum Action<T> {
    /// Nothing to do until another message arrives.
    Wait,
    /// Send these bytes to every other participant of the run (the caller makes delivery
    /// reliable: every honest party must receive the same bytes).
    SendMany(Vec<u8>),
    /// Send these bytes to one participant only (the caller encrypts them on the wire).
    SendPrivate(PartyId, Vec<u8>),
    /// The run is finished; this is its result. Poking again afterwards is a bug.
    Return(T),
}

/// Why a run ended without a result. Transport failures (timeouts, lost peers) belong to the
/// caller; this type has only the causes a protocol can see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A peer sent something that failed a check (a proof, a commitment, a share, a malformed
    /// message). The run is over and the named parties are to blame: never retry silently with
    /// them (selective-abort attacks).
    #[error("aborted: faulty parties {parties:?}: {reason}")]
    Faulty {
        /// The parties whose messages failed a check.
        parties: Vec<PartyId>,
        /// What failed.
        reason: String,
    },
    /// A party failed a check whose outcome leaks secret bits to it (dkls23's `BanCounterparty`:
    /// a failed OT-extension consistency check). The caller must exclude these parties from every
    /// later DKLs23 session of this key until the pairwise OT state is replaced (reshare).
    #[error("banned: parties {parties:?}: {reason}")]
    Ban {
        /// The parties to exclude.
        parties: Vec<PartyId>,
        /// What failed.
        reason: String,
    },
    /// The run was started with arguments that cannot work (wrong threshold, wrong share, a
    /// party list that does not match the key). Nobody else is to blame.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A local bug or an engine error that no peer caused.
    #[error("internal error: {0}")]
    Internal(String),
    /// The run was still waiting for messages when none were left in flight. Only the
    /// in-process [`simulate`] reports this (a party that stopped, or a tampering one, left the
    /// others waiting); over a network the caller's timeout stands in for it.
    #[error("stalled: waiting for messages that never came")]
    Stalled,
}

impl ProtocolError {
    /// A fault attributed to one party.
    pub fn faulty(party: PartyId, reason: impl Into<String>) -> Self {
        Self::Faulty { parties: vec![party], reason: reason.into() }
    }

    /// The parties this error blames, if any (for a [`Ban`](Self::Ban), the banned parties).
    pub fn culprits(&self) -> &[PartyId] {
        match self {
            Self::Faulty { parties, .. } | Self::Ban { parties, .. } => parties,
            _ => &[],
        }
    }

    /// The same error with every party it names renamed by `rename` (for a run nested in
    /// another that numbers the parties differently).
    pub(crate) fn rename_parties(self, rename: impl Fn(PartyId) -> PartyId) -> Self {
        match self {
            Self::Faulty { parties, reason } => {
                Self::Faulty { parties: parties.into_iter().map(rename).collect(), reason }
            }
            Self::Ban { parties, reason } => {
                Self::Ban { parties: parties.into_iter().map(rename).collect(), reason }
            }
            other => other,
        }
    }

    /// Whether the named parties must be excluded from later DKLs23 sessions of this key (see
    /// [`Ban`](Self::Ban)), not merely blamed for this run.
    pub fn is_ban(&self) -> bool {
        matches!(self, Self::Ban { .. })
    }
}

/// A sans-IO protocol run (the shape of near/mpc's `Protocol` trait).
///
/// The caller loops: deliver what arrived with [`message`](Protocol::message), then call
/// [`poke`](Protocol::poke) until it answers [`Action::Wait`] or [`Action::Return`]. `message`
/// never fails: a bad message is remembered and reported by the next `poke` as
/// [`ProtocolError::Faulty`] naming its sender.
pub trait Protocol: Send {
    /// What a successful run returns.
    type Output;

    /// Advance as far as possible with the messages received so far.
    fn poke(&mut self) -> Result<Action<Self::Output>, ProtocolError>;

    /// Hand the protocol a message from `from`.
    fn message(&mut self, from: PartyId, data: Vec<u8>);

    /// Whether a step may compute for milliseconds or more (a DKLs23 round, a DKG), so that a
    /// caller on an async runtime should run it where it does not hold up other tasks. `false`
    /// for a protocol whose every step takes well under a millisecond (a FROST signature, an
    /// ECDSA signature from a presignature), where handing the work to another thread costs
    /// more than the work.
    fn long_steps(&self) -> bool {
        true
    }
}

/// The curve (and so the engine) a key belongs to; the names are the wire's `key_type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum KeyType {
    /// Threshold ECDSA on secp256k1 (DKLs23).
    #[serde(rename = "secp256k1")]
    Secp256k1,
    /// Threshold EdDSA on Ed25519 (FROST).
    #[serde(rename = "ed25519")]
    Ed25519,
    /// BIP340 Schnorr on secp256k1 for Taproot key-path spends (FROST).
    #[serde(rename = "taproot")]
    Taproot,
}

impl KeyType {
    /// The wire name (`secp256k1`, `ed25519`, `taproot`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secp256k1 => "secp256k1",
            Self::Ed25519 => "ed25519",
            Self::Taproot => "taproot",
        }
    }
}

/// The kind of run an [`ExecutionId`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Distributed key generation.
    Keygen,
    /// A signature (full, or the online part from a presignature).
    Sign,
    /// Producing a presignature ahead of the message.
    Presign,
    /// Moving a key to a new committee and/or threshold.
    Reshare,
    /// New shares for the same committee and threshold.
    Refresh,
}

impl Operation {
    fn tag(self) -> &'static [u8] {
        match self {
            Self::Keygen => b"keygen",
            Self::Sign => b"sign",
            Self::Presign => b"presign",
            Self::Reshare => b"reshare",
            Self::Refresh => b"refresh",
        }
    }
}

/// Everything a run commits to. Two runs that differ in any field get different ids, and every
/// engine mixes the id into its transcript, so a message of one run is rejected by another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionContext<'a> {
    /// What the run does.
    pub operation: Operation,
    /// Which curve.
    pub key_type: KeyType,
    /// The wallet the key belongs to.
    pub wallet_id: &'a str,
    /// The key version the run reads (keygen: the version it creates).
    pub key_version: u32,
    /// The ordered participants (node ids); for a reshare, the old committee.
    pub participants: &'a [&'a str],
    /// For a reshare, the ordered new committee; empty otherwise.
    pub new_participants: &'a [&'a str],
    /// The client's request id (tx id, session id) or the coordinator's session id.
    pub request_id: &'a str,
}

/// A 32-byte id that binds a protocol run to its context (see [`ExecutionContext`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ExecutionId(pub [u8; 32]);

impl ExecutionId {
    const DOMAIN: &'static [u8] = b"mpcium-tss/execution-id/v1";

    /// Derive the id of a run: SHA-256 over a domain tag and every field, each length-prefixed
    /// so no two different contexts encode to the same bytes.
    pub fn new(ctx: &ExecutionContext<'_>) -> Self {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(Self::DOMAIN);
        field(ctx.operation.tag());
        field(ctx.key_type.as_str().as_bytes());
        field(ctx.wallet_id.as_bytes());
        field(&ctx.key_version.to_be_bytes());
        field(&(ctx.participants.len() as u64).to_be_bytes());
        for p in ctx.participants {
            field(p.as_bytes());
        }
        field(&(ctx.new_participants.len() as u64).to_be_bytes());
        for p in ctx.new_participants {
            field(p.as_bytes());
        }
        field(ctx.request_id.as_bytes());
        Self(h.finalize().into())
    }

    /// Bind further terms of a run that the context does not carry (the node binds a session's
    /// threshold and dealers): a new id over this one, a label and each item, length-prefixed.
    pub fn bind(self, label: &[u8], items: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(b"mpcium-tss/execution-id/bind/v1");
        field(&self.0);
        field(label);
        field(&(items.len() as u64).to_be_bytes());
        for item in items {
            field(item);
        }
        Self(h.finalize().into())
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ExecutionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExecutionId({}…)", hex::encode(&self.0[..8]))
    }
}

/// Where a simulated message goes: `None` is a broadcast.
pub type Recipient = Option<PartyId>;

/// Run every party of one protocol in this process until each returns or fails.
///
/// Returns each party's own outcome, in the order given. A party that is still waiting when no
/// message is left in flight gets [`ProtocolError::Stalled`].
pub fn simulate<P: Protocol>(parties: Vec<(PartyId, P)>) -> Vec<(PartyId, Result<P::Output, ProtocolError>)> {
    simulate_with(parties, |_, _, _| {})
}

/// [`simulate`], with a hook that sees (and may alter) every message before delivery, for
/// malicious-party tests: `tamper(from, to, bytes)`. For a broadcast the hook runs once per
/// recipient, so it can equivocate.
pub fn simulate_with<P: Protocol>(
    parties: Vec<(PartyId, P)>,
    mut tamper: impl FnMut(PartyId, PartyId, &mut Vec<u8>),
) -> Vec<(PartyId, Result<P::Output, ProtocolError>)> {
    let order: Vec<PartyId> = parties.iter().map(|(id, _)| *id).collect();
    let mut running: BTreeMap<PartyId, P> = parties.into_iter().collect();
    let mut outcomes: BTreeMap<PartyId, Result<P::Output, ProtocolError>> = BTreeMap::new();
    let mut inbox: BTreeMap<PartyId, VecDeque<(PartyId, Vec<u8>)>> =
        order.iter().map(|id| (*id, VecDeque::new())).collect();

    loop {
        let mut progressed = false;
        for id in &order {
            let Some(party) = running.get_mut(id) else { continue };
            if let Some(queue) = inbox.get_mut(id) {
                while let Some((from, data)) = queue.pop_front() {
                    party.message(from, data);
                    progressed = true;
                }
            }
            loop {
                match party.poke() {
                    Ok(Action::Wait) => break,
                    Ok(Action::SendMany(data)) => {
                        progressed = true;
                        for to in order.iter().filter(|to| *to != id) {
                            let mut copy = data.clone();
                            tamper(*id, *to, &mut copy);
                            if let Some(q) = inbox.get_mut(to) {
                                q.push_back((*id, copy));
                            }
                        }
                    }
                    Ok(Action::SendPrivate(to, mut data)) => {
                        progressed = true;
                        tamper(*id, to, &mut data);
                        if let Some(q) = inbox.get_mut(&to) {
                            q.push_back((*id, data));
                        }
                    }
                    Ok(Action::Return(out)) => {
                        progressed = true;
                        outcomes.insert(*id, Ok(out));
                        break;
                    }
                    Err(e) => {
                        progressed = true;
                        outcomes.insert(*id, Err(e));
                        break;
                    }
                }
            }
            if outcomes.contains_key(id) {
                running.remove(id);
            }
        }
        if running.is_empty() || !progressed {
            break;
        }
    }
    for id in running.keys() {
        outcomes.insert(*id, Err(ProtocolError::Stalled));
    }
    order
        .into_iter()
        .map(|id| {
            let out =
                outcomes.remove(&id).unwrap_or_else(|| Err(ProtocolError::Internal("party vanished".into())));
            (id, out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(parts: &'a [&'a str]) -> ExecutionContext<'a> {
        ExecutionContext {
            operation: Operation::Sign,
            key_type: KeyType::Secp256k1,
            wallet_id: "w1",
            key_version: 1,
            participants: parts,
            new_participants: &[],
            request_id: "tx-1",
        }
    }

    #[test]
    fn execution_id_changes_with_every_field() {
        let base = ExecutionId::new(&ctx(&["a", "b"]));
        assert_eq!(base, ExecutionId::new(&ctx(&["a", "b"])));
        assert_ne!(base, ExecutionId::new(&ctx(&["b", "a"])), "participant order is bound");
        assert_ne!(base, ExecutionId::new(&ctx(&["ab"])), "lengths are bound");
        assert_ne!(
            base,
            ExecutionId::new(&ExecutionContext { operation: Operation::Presign, ..ctx(&["a", "b"]) })
        );
        assert_ne!(
            base,
            ExecutionId::new(&ExecutionContext { key_type: KeyType::Ed25519, ..ctx(&["a", "b"]) })
        );
        assert_ne!(base, ExecutionId::new(&ExecutionContext { wallet_id: "w2", ..ctx(&["a", "b"]) }));
        assert_ne!(base, ExecutionId::new(&ExecutionContext { key_version: 2, ..ctx(&["a", "b"]) }));
        assert_ne!(base, ExecutionId::new(&ExecutionContext { request_id: "tx-2", ..ctx(&["a", "b"]) }));
        assert_ne!(
            base,
            ExecutionId::new(&ExecutionContext { new_participants: &["a"], ..ctx(&["a", "b"]) })
        );
        // Moving a node from the old to the new list changes the id.
        assert_ne!(
            ExecutionId::new(&ExecutionContext { new_participants: &["b"], ..ctx(&["a"]) }),
            ExecutionId::new(&ExecutionContext { new_participants: &[], ..ctx(&["a", "b"]) })
        );
    }

    #[test]
    fn bound_terms_change_the_id() {
        let base = ExecutionId::new(&ctx(&["a", "b"]));
        let t1 = base.bind(b"terms", &[&1u32.to_be_bytes(), b"a"]);
        assert_eq!(t1, base.bind(b"terms", &[&1u32.to_be_bytes(), b"a"]));
        assert_ne!(t1, base);
        assert_ne!(t1, base.bind(b"terms", &[&2u32.to_be_bytes(), b"a"]));
        assert_ne!(t1, base.bind(b"terms", &[&1u32.to_be_bytes(), b"b"]));
        assert_ne!(base.bind(b"terms", &[b"ab"]), base.bind(b"terms", &[b"a", b"b"]));
    }

    /// A toy protocol: everyone broadcasts its number, and returns the sum.
    struct Sum {
        me: PartyId,
        n: usize,
        sent: bool,
        got: BTreeMap<PartyId, u64>,
        bad: Option<PartyId>,
    }

    impl Protocol for Sum {
        type Output = u64;
        fn poke(&mut self) -> Result<Action<u64>, ProtocolError> {
            if !self.sent {
                self.sent = true;
                return Ok(Action::SendMany(u64::from(self.me).to_be_bytes().to_vec()));
            }
            if let Some(p) = self.bad {
                return Err(ProtocolError::faulty(p, "not 8 bytes"));
            }
            if self.got.len() == self.n - 1 {
                return Ok(Action::Return(self.got.values().sum::<u64>() + u64::from(self.me)));
            }
            Ok(Action::Wait)
        }
        fn message(&mut self, from: PartyId, data: Vec<u8>) {
            match <[u8; 8]>::try_from(data.as_slice()) {
                Ok(b) => {
                    self.got.insert(from, u64::from_be_bytes(b));
                }
                Err(_) => self.bad = Some(from),
            }
        }
    }

    fn parties(n: u16) -> Vec<(PartyId, Sum)> {
        (1..=n)
            .map(|me| (me, Sum { me, n: n as usize, sent: false, got: BTreeMap::new(), bad: None }))
            .collect()
    }

    #[test]
    fn simulate_runs_all_parties() {
        for (id, out) in simulate(parties(4)) {
            assert_eq!(out, Ok(10), "party {id}");
        }
    }

    #[test]
    fn a_party_left_waiting_is_stalled() {
        // Party 3 never sends: the others wait for it; it hears from both and finishes.
        let mut parties = parties(3);
        parties[2].1.sent = true;
        let results = simulate(parties);
        assert_eq!(results[0].1, Err(ProtocolError::Stalled));
        assert_eq!(results[1].1, Err(ProtocolError::Stalled));
        assert_eq!(results[2].1, Ok(6));
        assert!(results[0].1.as_ref().unwrap_err().culprits().is_empty());
    }

    #[test]
    fn simulate_with_reports_the_tampering_party() {
        let results = simulate_with(parties(3), |from, _, data| {
            if from == 2 {
                data.push(0);
            }
        });
        assert_eq!(results[0].1.as_ref().unwrap_err().culprits(), &[2]);
        assert_eq!(results[2].1.as_ref().unwrap_err().culprits(), &[2]);
        assert_eq!(results[1].1, Ok(6), "party 2 itself saw only honest messages");
    }
}
