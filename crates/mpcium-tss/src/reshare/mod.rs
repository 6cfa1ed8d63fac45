//! Curve-generic verifiable redistribution of Shamir shares (Feldman VSS): moving a key to a new
//! committee and/or threshold, and refresh (same committee and threshold, fresh shares).
//!
//! # Participants
//! A run has a [`Roster`] of members, each with a *transport id* (the [`PartyId`] the caller
//! uses to route this run's messages) and optionally an old id (its position in the old
//! committee) and a new id (its position in the new committee). Members with an old id are the
//! **dealers**: exactly `t_old + 1` holders of the old key. Members with a new id are the
//! **receivers**. A member can be both.
//!
//! # Rounds
//! 1. Each dealer `i` with old share `x_i` at old id `o_i` picks a random polynomial `f_i` of
//!    degree exactly `t'` with `f_i(0) = λ_i·x_i` (`λ_i` is the Lagrange coefficient of `o_i`
//!    over the dealers' old ids), broadcasts the Feldman commitments `C_i = [a_i0·G … a_it'·G]`
//!    and sends each receiver `j` (new id `n_j`) the sub-share `f_i(n_j)` privately.
//! 2. Every member checks every commitment vector: its length is exactly `t' + 1`, every point
//!    is valid, `C_i[0] == λ_i·X_i` (`X_i`, dealer `i`'s old public share, from the key) and
//!    `Σ_i C_i[0]` is the public key. Every receiver also checks each sub-share:
//!    `f_i(n_j)·G == Σ_k n_j^k·C_i[k]`. A failed check aborts naming that dealer
//!    ([`ProtocolError::Faulty`]). Then every member broadcasts a confirmation: per dealer, the
//!    SHA-256 of the commitment vector it received (bound to the execution id and the dealer).
//! 3. Every member compares every confirmation with its own view. A dealer that sent different
//!    commitments to different members (equivocation, possible if the transport's broadcast is
//!    not reliable) is caught here: the run aborts naming that dealer together with the member
//!    whose view differs (without signatures nobody can tell which of the two lied). Only then
//!    does anyone output: a receiver its new share `Σ_i f_i(n_j)` with every receiver's public
//!    share `Σ_i Σ_k n_j^k·C_i[k]`; a dealer that is not a receiver [`ReshareOutput::Retired`].
//!
//! The public key is unchanged: `Σ_i f_i(0) = Σ_i λ_i·x_i = x`.
//!
//! # Binding
//! Every message starts with the [`ExecutionId`]; a message of another run is refused and
//! blamed on its sender, and the confirmation hashes mix the id in as well.
//!
//! # What is *not* checked here
//! Old holders that are not dealers take no part; the caller picks the `t_old + 1` dealers.
//! Receivers must know the old public shares (public data of the key) to check `C_i[0]`.

mod message;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::curve::Curve;
use crate::driver::{Driver, Machine, Outbox};
use crate::protocol::{Action, ExecutionId, PartyId, Protocol, ProtocolError};
use message::{DecodeError, Message};

/// One participant of a resharing run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The id this run's messages are routed by (unique in the roster).
    pub id: PartyId,
    /// Its id in the old committee, if it deals (holds an old share and is one of the dealers).
    pub old: Option<PartyId>,
    /// Its id in the new committee, if it receives a new share.
    pub new: Option<PartyId>,
}

/// The validated list of a run's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    members: Vec<Member>,
}

impl Roster {
    /// Check and build a roster: transport, old and new ids each unique and non-zero, every
    /// member deals or receives, at least one dealer and two receivers.
    pub fn new(members: Vec<Member>) -> Result<Self, ProtocolError> {
        let invalid = |m: &str| Err(ProtocolError::InvalidInput(format!("roster: {m}")));
        let mut ids = BTreeSet::new();
        let mut olds = BTreeSet::new();
        let mut news = BTreeSet::new();
        for m in &members {
            if m.id == 0 || m.old == Some(0) || m.new == Some(0) {
                return invalid("party id 0");
            }
            if m.old.is_none() && m.new.is_none() {
                return invalid(&format!("member {} neither deals nor receives", m.id));
            }
            if !ids.insert(m.id) {
                return invalid(&format!("duplicate member {}", m.id));
            }
            if m.old.is_some_and(|o| !olds.insert(o)) || m.new.is_some_and(|n| !news.insert(n)) {
                return invalid(&format!("member {} repeats an old or new id", m.id));
            }
        }
        if olds.is_empty() || news.len() < 2 {
            return invalid("need at least one dealer and two receivers");
        }
        Ok(Self { members })
    }

    /// The roster of a refresh: every member of `committee` receives at its own id, and the
    /// `signers` (a subset of `t + 1` of them) deal. Transport ids are the committee ids.
    pub fn refresh(committee: &[PartyId], signers: &[PartyId]) -> Result<Self, ProtocolError> {
        if let Some(s) = signers.iter().find(|s| !committee.contains(s)) {
            return Err(ProtocolError::InvalidInput(format!("refresh: signer {s} is not in the committee")));
        }
        Self::new(
            committee
                .iter()
                .map(|&id| Member { id, old: signers.contains(&id).then_some(id), new: Some(id) })
                .collect(),
        )
    }

    /// Every member, in the given order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    fn member(&self, id: PartyId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    fn dealers(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.old.is_some())
    }

    fn receivers(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.new.is_some())
    }
}

/// The public data of the key being reshared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldKey<C: Curve> {
    /// The old threshold `t_old` (a signature needed `t_old + 1` shares).
    pub threshold: u16,
    /// The public key, which the run preserves.
    pub public_key: C::Point,
    /// The old holders' public shares `X_i = x_i·G`, by old id (at least the dealers').
    pub public_shares: BTreeMap<PartyId, C::Point>,
    /// Where an old id's share sits when that is not at `x = id`: shares imported from another
    /// system (tss-lib's sit at its party keys, large numbers; see [`crate::legacy`]). Empty for
    /// keys made here.
    pub evaluation_points: BTreeMap<PartyId, C::Scalar>,
}

impl<C: Curve> OldKey<C> {
    /// The public data of a key made here: old id `i` holds the polynomial's value at `x = i`.
    pub fn new(threshold: u16, public_key: C::Point, public_shares: BTreeMap<PartyId, C::Point>) -> Self {
        Self { threshold, public_key, public_shares, evaluation_points: BTreeMap::new() }
    }

    /// The x-coordinate of old id `id`'s share.
    pub fn evaluation_point(&self, id: PartyId) -> C::Scalar {
        self.evaluation_points.get(&id).copied().unwrap_or_else(|| C::scalar_from_u64(u64::from(id)))
    }

    /// The Lagrange coefficient at 0 of each of `old_ids` over their evaluation points, or `None`
    /// when two of them share a point.
    fn lagrange_coefficients(&self, old_ids: &[PartyId]) -> Option<BTreeMap<PartyId, C::Scalar>> {
        let xs: Vec<C::Scalar> = old_ids.iter().map(|&o| self.evaluation_point(o)).collect();
        old_ids.iter().enumerate().map(|(i, &o)| lagrange_at_zero_of::<C>(&xs, i).map(|l| (o, l))).collect()
    }
}

/// A new holder's result.
pub struct NewShare<C: Curve> {
    /// Its id in the new committee.
    pub party: PartyId,
    /// The new threshold `t'`: a signature needs `t' + 1` shares.
    pub threshold: u16,
    /// The new Shamir share (secret).
    pub secret_share: Zeroizing<C::Scalar>,
    /// The public key (unchanged).
    pub public_key: C::Point,
    /// Every new holder's public share, by new id.
    pub public_shares: BTreeMap<PartyId, C::Point>,
}

impl<C: Curve> fmt::Debug for NewShare<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewShare")
            .field("party", &self.party)
            .field("threshold", &self.threshold)
            .field("secret_share", &"<redacted>")
            .field("public_key", &self.public_key)
            .field("public_shares", &self.public_shares)
            .finish()
    }
}

/// What a resharing run returns to a member.
#[derive(Debug)]
pub enum ReshareOutput<C: Curve> {
    /// The member is in the new committee: its new share.
    Share(NewShare<C>),
    /// The member dealt but is not in the new committee: done, it holds no share of the new
    /// sharing (its old share may be discarded once the new committee has stored theirs).
    Retired,
}

/// The Lagrange coefficient at 0 of `x_i` over the evaluation points `xs`, or `None` if `xs`
/// does not contain `x_i` or repeats a point.
pub fn lagrange_at_zero<C: Curve>(xs: &[PartyId], x_i: PartyId) -> Option<C::Scalar> {
    if xs.iter().collect::<BTreeSet<_>>().len() != xs.len() {
        return None;
    }
    let i = xs.iter().position(|&x| x == x_i)?;
    let points: Vec<C::Scalar> = xs.iter().map(|&x| C::scalar_from_u64(u64::from(x))).collect();
    lagrange_at_zero_of::<C>(&points, i)
}

/// The Lagrange coefficient at 0 of `xs[i]` over the evaluation points `xs` (any scalars), or
/// `None` if two points are equal or `i` is out of range.
pub fn lagrange_at_zero_of<C: Curve>(xs: &[C::Scalar], i: usize) -> Option<C::Scalar> {
    lagrange_at::<C>(xs, i, &C::scalar_from_u64(0))
}

/// The Lagrange basis polynomial of `xs[i]` over `xs`, evaluated at `x`: the weight of the value
/// at `xs[i]` when interpolating at `x`. `None` if two points are equal or `i` is out of range.
pub fn lagrange_at<C: Curve>(xs: &[C::Scalar], i: usize, x: &C::Scalar) -> Option<C::Scalar> {
    let x_i = *xs.get(i)?;
    let mut num = C::scalar_from_u64(1);
    let mut den = C::scalar_from_u64(1);
    for &x_j in xs.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, x)| x) {
        if x_j == x_i {
            return None;
        }
        num = num * (*x - x_j);
        den = den * (x_i - x_j);
    }
    Some(num * C::invert(&den)?)
}

/// `Σ_k x^k·C[k]`: the public value of a committed polynomial at `x`.
pub fn evaluate_commitments<C: Curve>(commitments: &[C::Point], x: PartyId) -> C::Point {
    let x = C::scalar_from_u64(u64::from(x));
    // Horner from the top coefficient.
    commitments.iter().rev().fold(C::identity(), |acc, c| acc * x + *c)
}

fn evaluate_polynomial<C: Curve>(coefficients: &[C::Scalar], x: PartyId) -> Zeroizing<C::Scalar> {
    let x = C::scalar_from_u64(u64::from(x));
    let mut acc = Zeroizing::new(C::scalar_from_u64(0));
    for c in coefficients.iter().rev() {
        *acc = *acc * x + *c;
    }
    acc
}

/// One member's resharing run (see the module docs).
pub struct Reshare<C: Curve>(Driver<ReshareCore<C>>);

/// [`Reshare`]'s state machine.
struct ReshareCore<C: Curve> {
    exec: ExecutionId,
    me: Member,
    roster: Roster,
    new_threshold: u16,
    old: OldKey<C>,
    /// Dealers' old ids, in roster order (the Lagrange set).
    dealer_old_ids: Vec<PartyId>,
    /// Each dealer's Lagrange coefficient at 0 over the dealers' evaluation points, by old id.
    lambdas: BTreeMap<PartyId, C::Scalar>,
    /// This member's old share, if it deals.
    secret: Option<Zeroizing<C::Scalar>>,
    dealt: bool,
    commitments: BTreeMap<PartyId, Vec<C::Point>>,
    sub_shares: BTreeMap<PartyId, Zeroizing<C::Scalar>>,
    /// The checked result, held back until every confirmation has matched.
    pending: Option<ReshareOutput<C>>,
    my_view: Option<Vec<[u8; 32]>>,
    confirmations: BTreeMap<PartyId, Vec<[u8; 32]>>,
}

impl<C: Curve> Reshare<C> {
    /// Start member `me` (a transport id of `roster`) of a run.
    ///
    /// `secret` is this member's old share if it deals, and must be `None` otherwise. Fails with
    /// [`ProtocolError::InvalidInput`] if the roster does not have exactly `t_old + 1` dealers, a
    /// dealer's old public share is missing, the old public shares do not interpolate to the
    /// public key, `new_threshold` is not in `1..n'`, or the secret does not match `X_me`.
    pub fn new(
        exec: ExecutionId,
        me: PartyId,
        roster: Roster,
        new_threshold: u16,
        old: OldKey<C>,
        secret: Option<Zeroizing<C::Scalar>>,
    ) -> Result<Self, ProtocolError> {
        let invalid = |m: String| Err(ProtocolError::InvalidInput(m));
        let Some(&me_member) = roster.member(me) else {
            return invalid(format!("party {me} is not in the roster"));
        };
        let dealer_old_ids: Vec<PartyId> = roster.dealers().filter_map(|m| m.old).collect();
        if dealer_old_ids.len() != usize::from(old.threshold) + 1 {
            return invalid(format!(
                "{} dealers for old threshold {}: exactly {} are needed",
                dealer_old_ids.len(),
                old.threshold,
                usize::from(old.threshold) + 1
            ));
        }
        let receivers = roster.receivers().count();
        if new_threshold == 0 || usize::from(new_threshold) >= receivers {
            return invalid(format!(
                "new threshold {new_threshold} for {receivers} receivers: must be 1..{receivers}"
            ));
        }
        if dealer_old_ids.iter().any(|&o| C::is_zero(&old.evaluation_point(o))) {
            return invalid("a dealer's share sits at x = 0".into());
        }
        let Some(lambdas) = old.lagrange_coefficients(&dealer_old_ids) else {
            return invalid("two dealers' shares sit at the same x".into());
        };
        let mut sum = C::identity();
        for &o in &dealer_old_ids {
            let Some(x) = old.public_shares.get(&o) else {
                return invalid(format!("no old public share for dealer {o}"));
            };
            sum = sum + *x * lambdas[&o];
        }
        if sum != old.public_key {
            return invalid("the old public shares do not interpolate to the public key".into());
        }
        match (me_member.old, &secret) {
            (Some(o), Some(s)) => {
                if old.public_shares.get(&o) != Some(&(C::generator() * **s)) {
                    return invalid(format!("the secret share does not match old public share {o}"));
                }
            }
            (Some(o), None) => return invalid(format!("dealer {o} needs its old secret share")),
            (None, Some(_)) => return invalid("a member that does not deal takes no secret".into()),
            (None, None) => {}
        }
        Ok(Self(Driver::new(ReshareCore {
            exec,
            me: me_member,
            roster,
            new_threshold,
            old,
            dealer_old_ids,
            lambdas,
            secret,
            dealt: false,
            commitments: BTreeMap::new(),
            sub_shares: BTreeMap::new(),
            pending: None,
            my_view: None,
            confirmations: BTreeMap::new(),
        })))
    }
}

impl<C: Curve> ReshareCore<C> {
    /// Round 1: deal (dealers only).
    fn deal(&mut self, out: &mut Outbox) -> Result<(), ProtocolError> {
        let (Some(old_id), Some(secret)) = (self.me.old, self.secret.as_ref()) else {
            return Ok(());
        };
        let lambda = *self
            .lambdas
            .get(&old_id)
            .ok_or_else(|| ProtocolError::Internal("lagrange coefficient".into()))?;
        let mut coefficients: Zeroizing<Vec<C::Scalar>> = Zeroizing::new(Vec::new());
        coefficients.push(lambda * **secret);
        for _ in 0..self.new_threshold {
            // A zero top coefficient would lower the degree and be refused by the receivers.
            let mut c = C::random_scalar();
            while C::is_zero(&c) {
                c = C::random_scalar();
            }
            coefficients.push(c);
        }
        let commitments: Vec<C::Point> = coefficients.iter().map(|a| C::generator() * *a).collect();
        out.broadcast(Message::<C>::Commitments(commitments.clone()).encode(&self.exec));
        let receivers: Vec<Member> = self.roster.receivers().copied().collect();
        for r in receivers {
            let Some(new_id) = r.new else { continue };
            let sub = evaluate_polynomial::<C>(&coefficients, new_id);
            if r.id == self.me.id {
                self.sub_shares.insert(r.id, sub);
            } else {
                out.private(r.id, Message::<C>::SubShare(sub).encode(&self.exec));
            }
        }
        self.commitments.insert(self.me.id, commitments);
        // Our own secret is no longer needed.
        self.secret = None;
        Ok(())
    }

    fn all_dealt(&self) -> bool {
        let have_commitments = self.roster.dealers().all(|d| self.commitments.contains_key(&d.id));
        let have_shares =
            self.me.new.is_none() || self.roster.dealers().all(|d| self.sub_shares.contains_key(&d.id));
        have_commitments && have_shares
    }

    /// Round 2: check what the dealers sent, compute the result, confirm the view.
    fn check_and_confirm(&mut self, out: &mut Outbox) -> Result<(), ProtocolError> {
        let degree = usize::from(self.new_threshold);
        let mut constant_sum = C::identity();
        let mut view = Vec::new();
        for dealer in self.roster.dealers() {
            let (Some(old_id), Some(c)) = (dealer.old, self.commitments.get(&dealer.id)) else {
                return Err(ProtocolError::Internal("dealer state missing".into()));
            };
            if c.len() != degree + 1 {
                return Err(ProtocolError::faulty(
                    dealer.id,
                    format!("commitment vector has {} entries, {} expected", c.len(), degree + 1),
                ));
            }
            let lambda = *self
                .lambdas
                .get(&old_id)
                .ok_or_else(|| ProtocolError::Internal("lagrange coefficient".into()))?;
            let x_i = self
                .old
                .public_shares
                .get(&old_id)
                .ok_or_else(|| ProtocolError::Internal("public share".into()))?;
            if c[0] != *x_i * lambda {
                return Err(ProtocolError::faulty(
                    dealer.id,
                    format!(
                        "dealt constant term does not match old public share {old_id} times its Lagrange coefficient"
                    ),
                ));
            }
            constant_sum = constant_sum + c[0];
            if let Some(new_id) = self.me.new {
                let sub = self
                    .sub_shares
                    .get(&dealer.id)
                    .ok_or_else(|| ProtocolError::Internal("sub-share".into()))?;
                if C::generator() * **sub != evaluate_commitments::<C>(c, new_id) {
                    return Err(ProtocolError::faulty(
                        dealer.id,
                        "sub-share does not match the dealer's commitments",
                    ));
                }
            }
            view.push(self.commitment_digest(dealer.id, c));
        }
        if constant_sum != self.old.public_key {
            // Unreachable when every constant term matched (the inputs were checked in `new`).
            return Err(ProtocolError::Internal("dealt constant terms do not sum to the public key".into()));
        }
        self.pending = Some(match self.me.new {
            Some(new_id) => {
                let mut secret = Zeroizing::new(C::scalar_from_u64(0));
                for s in self.sub_shares.values() {
                    *secret = *secret + **s;
                }
                // Σ_i f_i has the coefficient-wise sum of the commitments as its commitments.
                let mut summed = vec![C::identity(); degree + 1];
                for c in self.commitments.values() {
                    for (acc, p) in summed.iter_mut().zip(c) {
                        *acc = *acc + *p;
                    }
                }
                let public_shares = self
                    .roster
                    .receivers()
                    .filter_map(|r| r.new)
                    .map(|n| (n, evaluate_commitments::<C>(&summed, n)))
                    .collect();
                self.sub_shares.clear();
                ReshareOutput::Share(NewShare {
                    party: new_id,
                    threshold: self.new_threshold,
                    secret_share: secret,
                    public_key: self.old.public_key,
                    public_shares,
                })
            }
            None => ReshareOutput::Retired,
        });
        out.broadcast(Message::<C>::Confirm(view.clone()).encode(&self.exec));
        self.my_view = Some(view);
        Ok(())
    }

    fn commitment_digest(&self, dealer: PartyId, commitments: &[C::Point]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"mpcium-tss/reshare/commitments/v1");
        h.update(self.exec.as_bytes());
        h.update(dealer.to_be_bytes());
        h.update((commitments.len() as u64).to_be_bytes());
        for c in commitments {
            h.update(C::point_to_bytes(c));
        }
        h.finalize().into()
    }

    /// Round 3: compare every confirmation with our own view.
    fn compare_views(&self, mine: &[[u8; 32]]) -> Result<(), ProtocolError> {
        let dealers: Vec<PartyId> = self.roster.dealers().map(|d| d.id).collect();
        for (&from, theirs) in &self.confirmations {
            for ((dealer, a), b) in dealers.iter().zip(mine).zip(theirs) {
                if a != b {
                    let mut parties = vec![*dealer];
                    if from != *dealer {
                        parties.push(from);
                    }
                    return Err(ProtocolError::Faulty {
                        parties,
                        reason: format!(
                            "member {from} received other commitments from dealer {dealer} than we did: \
                             the dealer equivocated or the member misreports"
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn file(&mut self, from: PartyId, data: &[u8]) -> Result<(), ProtocolError> {
        let Some(sender) = self.roster.member(from).copied().filter(|m| m.id != self.me.id) else {
            return Err(ProtocolError::faulty(from, "message from a party outside the roster"));
        };
        let msg = match Message::<C>::decode(&self.exec, data) {
            Ok(m) => m,
            Err(DecodeError::WrongExecution) => {
                return Err(ProtocolError::faulty(from, "message of another execution"));
            }
            Err(DecodeError::Malformed(what)) => {
                return Err(ProtocolError::faulty(from, format!("malformed: {what}")));
            }
        };
        match msg {
            Message::Commitments(c) => {
                if sender.old.is_none() {
                    return Err(ProtocolError::faulty(from, "commitments from a member that does not deal"));
                }
                if self.commitments.insert(from, c).is_some() {
                    return Err(ProtocolError::faulty(from, "second commitment vector"));
                }
            }
            Message::SubShare(s) => {
                if sender.old.is_none() || self.me.new.is_none() {
                    return Err(ProtocolError::faulty(from, "unexpected sub-share"));
                }
                if self.sub_shares.insert(from, s).is_some() {
                    return Err(ProtocolError::faulty(from, "second sub-share"));
                }
            }
            Message::Confirm(view) => {
                if view.len() != self.dealer_old_ids.len() {
                    return Err(ProtocolError::faulty(
                        from,
                        "confirmation covers the wrong number of dealers",
                    ));
                }
                if self.confirmations.insert(from, view).is_some() {
                    return Err(ProtocolError::faulty(from, "second confirmation"));
                }
            }
        }
        Ok(())
    }

    fn step(&mut self, out: &mut Outbox) -> Result<Option<ReshareOutput<C>>, ProtocolError> {
        if !self.dealt {
            self.dealt = true;
            self.deal(out)?;
        }
        if self.my_view.is_none() {
            if !self.all_dealt() {
                return Ok(None);
            }
            self.check_and_confirm(out)?;
        }
        if self.confirmations.len() + 1 < self.roster.members().len() {
            return Ok(None);
        }
        if let Some(mine) = &self.my_view {
            self.compare_views(mine)?;
        }
        let result =
            self.pending.take().ok_or_else(|| ProtocolError::Internal("poked after the result".into()))?;
        Ok(Some(result))
    }
}

impl<C: Curve> Protocol for Reshare<C> {
    type Output = ReshareOutput<C>;

    fn poke(&mut self) -> Result<Action<Self::Output>, ProtocolError> {
        self.0.poke()
    }

    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        self.0.message(from, data);
    }
}

impl<C: Curve> Machine for ReshareCore<C> {
    type Output = ReshareOutput<C>;

    fn record(&mut self, from: PartyId, data: Vec<u8>) -> Result<(), ProtocolError> {
        self.file(from, &data)
    }

    fn advance(&mut self, out: &mut Outbox) -> Result<Option<ReshareOutput<C>>, ProtocolError> {
        self.step(out)
    }
}

/// Start member `me` of a refresh: `committee` keeps its ids and threshold, `signers` (exactly
/// `t + 1` members of it) deal; `secret` is `me`'s share if it is a signer.
pub fn refresh<C: Curve>(
    exec: ExecutionId,
    me: PartyId,
    committee: &[PartyId],
    signers: &[PartyId],
    old: OldKey<C>,
    secret: Option<Zeroizing<C::Scalar>>,
) -> Result<Reshare<C>, ProtocolError> {
    let threshold = old.threshold;
    Reshare::new(exec, me, Roster::refresh(committee, signers)?, threshold, old, secret)
}
