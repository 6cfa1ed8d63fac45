//! The one driver behind every protocol of this crate: it turns a state machine that files
//! messages ([`Machine::record`]) and advances when it can ([`Machine::advance`]) into a
//! [`Protocol`], with the same rules for every engine:
//! - messages computed before a result or a failure go out first: a peer that has not yet seen
//!   the failure needs them to reach its own verdict (it would see them anyway on a real
//!   network), and nothing in them depends on the check that failed;
//! - the first failure, of a message or of a step, ends the run: later messages are ignored and
//!   every later `poke` reports the same error;
//! - poking after the result is an internal error.

use std::collections::VecDeque;

use crate::protocol::{Action, PartyId, Protocol, ProtocolError};

/// A protocol's state machine, without the bookkeeping of [`Driver`].
pub(crate) trait Machine: Send {
    /// What a successful run returns.
    type Output: Send;

    /// File a message from `from`. An error (the sender's fault, or ours) ends the run.
    fn record(&mut self, from: PartyId, data: Vec<u8>) -> Result<(), ProtocolError>;

    /// Run every step whose inputs are present, queueing what to send in `out`; `Ok(None)` means
    /// wait for messages. Never called again after it returned a result or an error.
    fn advance(&mut self, out: &mut Outbox) -> Result<Option<Self::Output>, ProtocolError>;
}

/// Outgoing messages waiting for `poke` to hand them out, in order.
#[derive(Debug, Default)]
pub(crate) struct Outbox(VecDeque<(Option<PartyId>, Vec<u8>)>);

impl Outbox {
    /// Queue a message for every other participant.
    pub fn broadcast(&mut self, bytes: Vec<u8>) {
        self.0.push_back((None, bytes));
    }

    /// Queue a message for `to` only.
    pub fn private(&mut self, to: PartyId, bytes: Vec<u8>) {
        self.0.push_back((Some(to), bytes));
    }

    fn next<T>(&mut self) -> Option<Action<T>> {
        self.0.pop_front().map(|(to, bytes)| match to {
            None => Action::SendMany(bytes),
            Some(p) => Action::SendPrivate(p, bytes),
        })
    }
}

enum State<T> {
    Running,
    /// The result or failure, held back until the messages queued before it are out.
    Ending(Result<T, ProtocolError>),
    Failed(ProtocolError),
    Returned,
}

/// A [`Machine`] run as a [`Protocol`] (see the module docs).
pub(crate) struct Driver<M: Machine> {
    machine: M,
    outbox: Outbox,
    state: State<M::Output>,
}

impl<M: Machine> Driver<M> {
    pub fn new(machine: M) -> Self {
        Self { machine, outbox: Outbox::default(), state: State::Running }
    }

    /// The state machine, for a constructor that sets it up further before the first `poke`.
    pub fn machine_mut(&mut self) -> &mut M {
        &mut self.machine
    }
}

impl<M: Machine> Protocol for Driver<M> {
    type Output = M::Output;

    fn poke(&mut self) -> Result<Action<M::Output>, ProtocolError> {
        loop {
            if let Some(action) = self.outbox.next() {
                return Ok(action);
            }
            match std::mem::replace(&mut self.state, State::Returned) {
                State::Running => match self.machine.advance(&mut self.outbox) {
                    Ok(None) => {
                        self.state = State::Running;
                        return Ok(self.outbox.next().unwrap_or(Action::Wait));
                    }
                    Ok(Some(out)) => self.state = State::Ending(Ok(out)),
                    Err(e) => self.state = State::Ending(Err(e)),
                },
                State::Ending(Ok(out)) => return Ok(Action::Return(out)),
                State::Ending(Err(e)) | State::Failed(e) => {
                    self.state = State::Failed(e.clone());
                    return Err(e);
                }
                State::Returned => return Err(ProtocolError::Internal("poked after the result".into())),
            }
        }
    }

    fn message(&mut self, from: PartyId, data: Vec<u8>) {
        if let State::Running = self.state
            && let Err(e) = self.machine.record(from, data)
        {
            self.state = State::Ending(Err(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends two messages, then fails or returns at the first `advance`; a message `0` is refused.
    struct Scripted {
        fail: bool,
    }

    impl Machine for Scripted {
        type Output = u8;
        fn record(&mut self, from: PartyId, data: Vec<u8>) -> Result<(), ProtocolError> {
            if data == [0] { Err(ProtocolError::faulty(from, "zero")) } else { Ok(()) }
        }
        fn advance(&mut self, out: &mut Outbox) -> Result<Option<u8>, ProtocolError> {
            out.broadcast(vec![1]);
            out.private(2, vec![2]);
            if self.fail { Err(ProtocolError::faulty(2, "bad")) } else { Ok(Some(7)) }
        }
    }

    #[test]
    fn messages_go_out_before_the_result_and_poking_after_it_is_an_error() {
        let mut d = Driver::new(Scripted { fail: false });
        assert!(matches!(d.poke(), Ok(Action::SendMany(m)) if m == [1]));
        assert!(matches!(d.poke(), Ok(Action::SendPrivate(2, m)) if m == [2]));
        assert!(matches!(d.poke(), Ok(Action::Return(7))));
        assert!(matches!(d.poke(), Err(ProtocolError::Internal(_))));
    }

    #[test]
    fn a_failure_goes_out_after_the_queued_messages_and_sticks() {
        let mut d = Driver::new(Scripted { fail: true });
        assert!(matches!(d.poke(), Ok(Action::SendMany(_))));
        assert!(matches!(d.poke(), Ok(Action::SendPrivate(..))));
        for _ in 0..2 {
            assert_eq!(d.poke().unwrap_err().culprits(), &[2]);
        }
    }

    #[test]
    fn a_refused_message_ends_the_run_and_later_ones_are_ignored() {
        let mut d = Driver::new(Scripted { fail: false });
        d.message(3, vec![0]);
        d.message(4, vec![0]);
        for _ in 0..2 {
            assert_eq!(d.poke().unwrap_err().culprits(), &[3]);
        }
    }
}
