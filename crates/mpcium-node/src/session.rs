//! Running one sans-IO protocol over the [`Transport`], with a reliable-broadcast check.
//!
//! [`run_protocol`] pokes the protocol, sends what it asks (broadcasts signed once and sent to
//! every other participant, private messages sealed per recipient), and feeds it every verified
//! message of its session from a participant, each `(sender, seq)` at most once. When the
//! protocol returns, the participants (three or more: with two, a broadcast has one recipient and
//! cannot be equivocated) exchange an echo of every broadcast they received
//! (`sender, seq, digest, sender's signature`) before anyone uses the result: two validly
//! signed broadcasts with the same `(sender, seq)` and different digests prove that the sender
//! equivocated, and the run ends naming it. A participant that fails sends an abort notice so the
//! others stop at once instead of waiting for the timeout.

use mpcium_api::ErrorCode;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signature;
use mpcium_tss::{Action, PartyId, Protocol, ProtocolError};
use tokio::time::Instant;

use crate::control::{AbortNotice, Control, EchoEntry, EchoReport};
use crate::envelope::{Envelope, Kind};
use crate::transport::{Inbound, SessionInbox, Transport, TransportError};

/// How long a participant that stops reads the others' views of the broadcasts before it
/// settles whom to blame (they send theirs as soon as they stop too).
const VIEW_GRACE: Duration = Duration::from_secs(2);

/// How often a waiting run checks whether a participant restarted.
const PEER_CHECK_PERIOD: Duration = Duration::from_millis(500);

/// Who takes part in a run and how long it may take.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// The session id (the protocol's execution id).
    pub id: [u8; 32],
    /// Party id → node id, for every participant (this node included).
    pub parties: BTreeMap<PartyId, String>,
    /// This node's party id.
    pub me: PartyId,
    /// The whole run, echo included, must finish within this.
    pub timeout: Duration,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Some participants did not send what was needed in time.
    #[error("session timed out waiting for {waiting_for:?}")]
    Timeout {
        /// The nodes that had not sent anything yet (empty: all had sent something).
        waiting_for: Vec<String>,
    },
    /// A check failed; the named nodes are to blame.
    #[error("session aborted: faulty nodes {culprits:?}: {reason}")]
    Faulty {
        /// The faulty nodes.
        culprits: Vec<String>,
        /// What failed.
        reason: String,
    },
    /// A DKLs23 check failed whose outcome leaks secret bits to the named nodes (a failed OT
    /// consistency check): besides ending the run, this node must never run another DKLs23
    /// session of this key with them (see [`mpcium_tss::ProtocolError::Ban`]).
    #[error("session aborted: banned nodes {culprits:?}: {reason}")]
    Banned {
        /// The nodes to ban for this key.
        culprits: Vec<String>,
        /// What failed.
        reason: String,
    },
    /// Another participant aborted.
    #[error("aborted by {by}: {reason}")]
    PeerAborted {
        /// Who aborted.
        by: String,
        /// Its wire error code.
        code: ErrorCode,
        /// Its reason.
        reason: String,
        /// Whom it blames.
        culprits: Vec<String>,
    },
    /// The run was set up wrongly (a local bug or bad input).
    #[error("invalid session: {0}")]
    Invalid(String),
    /// Sending failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl SessionError {
    /// The nodes this error blames (for a timeout: those that sent nothing).
    pub fn culprits(&self) -> &[String] {
        match self {
            Self::Faulty { culprits, .. }
            | Self::Banned { culprits, .. }
            | Self::PeerAborted { culprits, .. } => culprits,
            Self::Timeout { waiting_for } => waiting_for,
            _ => &[],
        }
    }

    /// The wire error code of an abort notice for this error.
    fn code(&self) -> ErrorCode {
        match self {
            Self::Timeout { .. } => ErrorCode::SessionTimeout,
            _ => ErrorCode::OperationAborted,
        }
    }
}

/// Run a protocol step. A long one (a DKLs23 DKG round takes hundreds of milliseconds) must not
/// stall the runtime's other tasks (heartbeats, other sessions): on a multi-threaded runtime the
/// worker hands its other tasks to the rest of the pool while it runs. A short one runs in place:
/// the hand-over wakes another thread and switches context, which cost a FROST signature more
/// than its own sub-millisecond steps (EdDSA at 20 in flight: ~5 % more signatures per second).
fn protocol_step<T>(long: bool, f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) if long => tokio::task::block_in_place(f),
        _ => f(),
    }
}

struct Run<'a> {
    transport: &'a Transport,
    spec: &'a SessionSpec,
    others: Vec<String>,
    party_of: HashMap<String, PartyId>,
    seq: u32,
    seen: HashSet<(String, u32)>,
    broadcasts: BTreeMap<(String, u32), EchoEntry>,
    early_echoes: HashMap<String, EchoReport>,
    heard_from: HashSet<String>,
    /// Participants that stopped without showing their view (a node failing outside the
    /// protocol sends only an abort notice): nobody waits for their view.
    viewless: HashSet<String>,
    echo_sent: bool,
    deadline: Instant,
    /// Each other participant's process start when the run began (see `restarted_peer`).
    incarnations: Vec<(String, Option<u64>)>,
}

/// Run `protocol` as party `spec.me` of session `spec.id`.
pub async fn run_protocol<P: Protocol>(
    transport: &Transport,
    inbox: &mut SessionInbox,
    spec: &SessionSpec,
    mut protocol: P,
) -> Result<P::Output, SessionError> {
    let me_node =
        spec.parties.get(&spec.me).ok_or_else(|| SessionError::Invalid("self is not a party".into()))?;
    if me_node != transport.directory().me() {
        return Err(SessionError::Invalid("party id of self maps to another node".into()));
    }
    let mut run = Run {
        transport,
        spec,
        others: spec.parties.values().filter(|n| *n != me_node).cloned().collect(),
        party_of: spec.parties.iter().map(|(p, n)| (n.clone(), *p)).collect(),
        seq: 0,
        seen: HashSet::new(),
        broadcasts: BTreeMap::new(),
        early_echoes: HashMap::new(),
        heard_from: HashSet::new(),
        viewless: HashSet::new(),
        echo_sent: false,
        deadline: Instant::now() + spec.timeout,
        incarnations: Vec::new(),
    };
    run.incarnations = run.others.iter().map(|n| (n.clone(), transport.directory().incarnation(n))).collect();
    let result = match run.drive(inbox, &mut protocol).await {
        Ok(output) => run.echo(inbox).await.map(|()| output),
        Err(e) => Err(e),
    };
    let result = match result {
        Ok(output) => Ok(output),
        Err(e) => Err(run.fail(inbox, e).await),
    };
    if let Err(e) = &result {
        // One line per failed session and node, naming whom it blames: what operators (and
        // the malicious-peer tests) read to see that every honest node named the same culprit.
        tracing::warn!(
            node = %me_node,
            session = %short_hex(&spec.id),
            culprits = ?e.culprits(),
            error = %e,
            "session failed"
        );
    }
    result
}

fn short_hex(id: &[u8; 32]) -> String {
    hex::encode(&id[..8])
}

impl Run<'_> {
    async fn drive<P: Protocol>(
        &mut self,
        inbox: &mut SessionInbox,
        protocol: &mut P,
    ) -> Result<P::Output, SessionError> {
        let long = protocol.long_steps();
        loop {
            loop {
                match protocol_step(long, || protocol.poke()).map_err(|e| self.protocol_error(e))? {
                    Action::Wait => break,
                    Action::SendMany(data) => {
                        let env = self
                            .transport
                            .send_public(Kind::Broadcast, self.spec.id, self.seq, &self.others, data)
                            .await?;
                        self.record_broadcast(&env);
                        self.seq += 1;
                    }
                    Action::SendPrivate(to, data) => {
                        let node = self.spec.parties.get(&to).ok_or_else(|| {
                            SessionError::Invalid(format!("protocol addressed unknown party {to}"))
                        })?;
                        self.transport.send_private(self.spec.id, self.seq, node, &data).await?;
                        self.seq += 1;
                    }
                    Action::Return(out) => return Ok(out),
                }
            }
            let inbound = self.next(inbox).await?;
            let Some(from) = self.accept(&inbound)? else { continue };
            match inbound.envelope.kind {
                Kind::Broadcast | Kind::Private => {
                    protocol_step(long, || protocol.message(from, inbound.payload.into_vec()))
                }
                Kind::Control => {}
            }
        }
    }

    /// Wait for the next message of a participant (or time out).
    /// A peer that restarted since the run began has lost the run, and a peer found absent (its
    /// process gone, or cut off: see [`crate::liveness`]) will not send anything: waiting for
    /// either until the timeout would only hold the request (and a concurrency slot) for
    /// nothing. Messages already queued are taken first.
    async fn next(&mut self, inbox: &mut SessionInbox) -> Result<Inbound, SessionError> {
        let mut absences = self.transport.directory().absence_changes();
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                biased;
                received = tokio::time::timeout_at(self.deadline, inbox.recv()) => {
                    return match received {
                        Ok(Some(m)) => Ok(m),
                        Ok(None) => Err(SessionError::Invalid("transport closed".into())),
                        Err(_) => Err(SessionError::Timeout { waiting_for: self.missing() }),
                    };
                }
                _ = absences.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            wait = PEER_CHECK_PERIOD;
            if let Some(peer) = self.restarted_peer() {
                tracing::info!(peer = %peer, "a participant restarted during the session");
                return Err(SessionError::Timeout { waiting_for: vec![peer] });
            }
            if let Some(peer) = self.absent_peer() {
                tracing::info!(peer = %peer, "a participant is absent; the session stops");
                return Err(SessionError::Timeout { waiting_for: vec![peer] });
            }
        }
    }

    /// A participant whose process is not the one that was there when the run began.
    fn restarted_peer(&self) -> Option<String> {
        let dir = self.transport.directory();
        self.incarnations
            .iter()
            .find(|(peer, was)| was.is_some() && dir.incarnation(peer) != *was)
            .map(|(peer, _)| peer.clone())
    }

    /// A participant this node found absent.
    fn absent_peer(&self) -> Option<String> {
        let dir = self.transport.directory();
        self.others.iter().find(|peer| dir.is_absent(peer)).cloned()
    }

    /// The participants that have sent no protocol message yet.
    fn missing(&self) -> Vec<String> {
        self.others.iter().filter(|n| !self.heard_from.contains(*n)).cloned().collect()
    }

    /// Check an inbound message's sender and sequence number, and take in control messages.
    /// Returns the sender's party id for a protocol message to deliver.
    fn accept(&mut self, inbound: &Inbound) -> Result<Option<PartyId>, SessionError> {
        let env = &inbound.envelope;
        let Some(&from) = self.party_of.get(&env.sender) else {
            tracing::warn!(sender = %env.sender, "message from a node outside the session; ignored");
            return Ok(None);
        };
        if !self.seen.insert((env.sender.clone(), env.seq)) {
            tracing::warn!(sender = %env.sender, seq = env.seq, "replayed message; ignored");
            return Ok(None);
        }
        tracing::trace!(me = %self.spec.me, sender = %env.sender, seq = env.seq, kind = ?env.kind, "session message");
        match env.kind {
            Kind::Broadcast => {
                self.heard_from.insert(env.sender.clone());
                self.record_broadcast(env);
                Ok(Some(from))
            }
            Kind::Private => {
                self.heard_from.insert(env.sender.clone());
                Ok(Some(from))
            }
            Kind::Control => {
                match Control::decode(&inbound.payload) {
                    Ok(Control::Abort(a)) => {
                        // A session that fails sends its view before its notice (see `fail`).
                        if !self.early_echoes.contains_key(&env.sender) {
                            self.viewless.insert(env.sender.clone());
                        }
                        // A peer that timed out may know less than we do: if we have not heard
                        // from some participants (the notice's sender included, when it never
                        // took part), they are the ones to name, not the peer that gave up first.
                        let missing = self.missing();
                        if a.code == ErrorCode::SessionTimeout && !missing.is_empty() {
                            return Err(SessionError::Timeout { waiting_for: missing });
                        }
                        return Err(SessionError::PeerAborted {
                            by: env.sender.clone(),
                            code: a.code,
                            reason: a.reason,
                            culprits: a.culprits,
                        });
                    }
                    Ok(Control::Echo(report)) => {
                        // A view is not taking part: a node whose protocol messages never
                        // arrived (forged, or sent to nobody) still shows one when it fails.
                        self.early_echoes.insert(env.sender.clone(), report);
                    }
                    Ok(other) => tracing::debug!(?other, "unexpected control message in a session; ignored"),
                    Err(_) => {
                        return Err(SessionError::Faulty {
                            culprits: vec![env.sender.clone()],
                            reason: "malformed control message".into(),
                        });
                    }
                }
                Ok(None)
            }
        }
    }

    fn record_broadcast(&mut self, env: &Envelope) {
        self.broadcasts.insert(
            (env.sender.clone(), env.seq),
            EchoEntry {
                sender: env.sender.clone(),
                seq: env.seq,
                digest: STANDARD.encode(env.digest()),
                signature: STANDARD.encode(env.signature),
            },
        );
    }

    /// The reliable-broadcast check (see the module docs).
    async fn echo(&mut self, inbox: &mut SessionInbox) -> Result<(), SessionError> {
        // With one other participant every broadcast has a single recipient: there is nobody
        // to hand another version to, so there is nothing to compare (and one round less).
        if self.others.len() < 2 {
            return Ok(());
        }
        self.send_echo().await?;
        while self.early_echoes.len() < self.others.len() {
            let inbound = match self.next(inbox).await {
                Ok(m) => m,
                Err(SessionError::Timeout { .. }) => {
                    return Err(SessionError::Timeout {
                        waiting_for: self
                            .others
                            .iter()
                            .filter(|n| !self.early_echoes.contains_key(*n))
                            .cloned()
                            .collect(),
                    });
                }
                Err(e) => return Err(e),
            };
            self.accept(&inbound)?;
        }
        for (reporter, report) in &self.early_echoes {
            self.check_echo(reporter, report)?;
        }
        Ok(())
    }

    /// Show the others every broadcast this node received (once per session).
    async fn send_echo(&mut self) -> Result<(), SessionError> {
        if self.echo_sent {
            return Ok(());
        }
        self.echo_sent = true;
        let mine = EchoReport { entries: self.broadcasts.values().cloned().collect() };
        let sent = self
            .transport
            .send_public(Kind::Control, self.spec.id, self.seq, &self.others, Control::Echo(mine).encode())
            .await;
        self.seq += 1;
        sent.map(|_| ()).map_err(SessionError::from)
    }

    /// Stop after `e`, and settle whom to blame. A check that fails may be the effect of an
    /// equivocation elsewhere: a node handed another version of a broadcast than ours computes
    /// on different inputs, so its honest messages fail our checks (and ours fail its), and the
    /// failed check would name an honest node. So every participant that stops first shows the
    /// others its view of the broadcasts (its echo report) and tells them to stop, then reads
    /// their views for a short while: two validly signed versions of one broadcast name the
    /// equivocator instead of whoever the failed check pointed at.
    async fn fail(&mut self, inbox: &mut SessionInbox, e: SessionError) -> SessionError {
        if let Err(err) = self.send_echo().await {
            tracing::warn!(error = %err, "could not send this node's view of the broadcasts");
        }
        self.notify_abort(&e).await;
        let until = Instant::now() + VIEW_GRACE;
        // An absent participant shows no view: nobody waits for it.
        let waiting = |run: &Self| {
            let dir = run.transport.directory();
            run.others
                .iter()
                .any(|n| !run.early_echoes.contains_key(n) && !run.viewless.contains(n) && !dir.is_absent(n))
        };
        let mut absences = self.transport.directory().absence_changes();
        while waiting(self) {
            tokio::select! {
                received = tokio::time::timeout_at(until, inbox.recv()) => match received {
                    // Their aborts and malformed messages change nothing now; views are kept.
                    Ok(Some(m)) => drop(self.accept(&m)),
                    _ => break,
                },
                _ = absences.changed() => {}
            }
        }
        // A ban stands whoever equivocated: the OT state shared with the banned node is
        // spent either way (dkls23's rule), so the caller must see it.
        if matches!(e, SessionError::Banned { .. }) {
            return e;
        }
        self.equivocation().unwrap_or(e)
    }

    /// A broadcast that another participant's view shows with different contents, validly
    /// signed by its sender: proof that the sender equivocated.
    fn equivocation(&self) -> Option<SessionError> {
        self.early_echoes.values().flat_map(|r| &r.entries).find_map(|e| {
            let own = self.broadcasts.get(&(e.sender.clone(), e.seq))?;
            (own.digest != e.digest && self.entry_signed(e) == Some(true)).then(|| SessionError::Faulty {
                culprits: vec![e.sender.clone()],
                reason: format!("equivocation: broadcast {} was signed twice with different contents", e.seq),
            })
        })
    }

    /// Whether an echo entry carries its sender's valid signature on its digest (`None`: the
    /// sender is no participant, or the entry is malformed).
    fn entry_signed(&self, e: &EchoEntry) -> Option<bool> {
        let key = self.party_of.get(&e.sender).and(self.transport.directory().identity(&e.sender))?;
        let digest: [u8; 32] = STANDARD.decode(&e.digest).ok()?.try_into().ok()?;
        let sig: [u8; 64] = STANDARD.decode(&e.signature).ok()?.try_into().ok()?;
        Some(key.verify_strict(&digest, &Signature::from_bytes(&sig)).is_ok())
    }

    fn check_echo(&self, reporter: &str, report: &EchoReport) -> Result<(), SessionError> {
        let faulty =
            |who: &str, reason: String| SessionError::Faulty { culprits: vec![who.to_owned()], reason };
        let mut theirs = HashSet::new();
        for e in &report.entries {
            let own = self.broadcasts.get(&(e.sender.clone(), e.seq));
            if own.is_some_and(|own| own.digest == e.digest) {
                // The same contents we received (and checked) or sent: nothing to prove.
                theirs.insert((e.sender.clone(), e.seq));
                continue;
            }
            match self.entry_signed(e) {
                None if !self.party_of.contains_key(&e.sender) => {
                    return Err(faulty(
                        reporter,
                        format!("echo names {} who is not a participant", e.sender),
                    ));
                }
                None => return Err(faulty(reporter, "malformed echo entry".into())),
                Some(false) => {
                    return Err(faulty(
                        reporter,
                        format!("echo entry of {} with an invalid signature", e.sender),
                    ));
                }
                Some(true) => {}
            }
            if let Some(own) = own
                && own.digest != e.digest
            {
                return Err(faulty(
                    &e.sender,
                    format!("equivocation: broadcast {} was signed twice with different contents", e.seq),
                ));
            }
            theirs.insert((e.sender.clone(), e.seq));
        }
        // Both views are validly signed; a broadcast one side lacks means it was not delivered.
        if let Some((sender, seq)) = self.broadcasts.keys().find(|k| !theirs.contains(*k)) {
            return Err(SessionError::Invalid(format!(
                "broadcast views differ: {reporter} did not receive broadcast {seq} of {sender}"
            )));
        }
        Ok(())
    }

    fn protocol_error(&self, e: ProtocolError) -> SessionError {
        match e {
            ProtocolError::Faulty { parties, reason } => SessionError::Faulty {
                culprits: parties.iter().filter_map(|p| self.spec.parties.get(p).cloned()).collect(),
                reason,
            },
            ProtocolError::Ban { parties, reason } => SessionError::Banned {
                culprits: parties.iter().filter_map(|p| self.spec.parties.get(p).cloned()).collect(),
                reason,
            },
            ProtocolError::InvalidInput(r) | ProtocolError::Internal(r) => SessionError::Invalid(r),
            // Only the in-process simulator stalls; over NATS the session's deadline stands in.
            ProtocolError::Stalled => SessionError::Invalid("stalled".into()),
        }
    }

    /// Tell the others to stop (every participant that stops sends one notice, so that those
    /// still waiting stop at once and the one that stopped first gets everyone's view).
    async fn notify_abort(&mut self, e: &SessionError) {
        let notice = AbortNotice { code: e.code(), reason: e.to_string(), culprits: e.culprits().to_vec() };
        let sent = self
            .transport
            .send_public(Kind::Control, self.spec.id, self.seq, &self.others, Control::Abort(notice).encode())
            .await;
        self.seq += 1;
        if let Err(err) = sent {
            tracing::warn!(error = %err, "could not send the abort notice");
        }
    }
}
