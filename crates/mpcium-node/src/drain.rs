//! Graceful shutdown of the request service: stop taking work, let what is in flight finish, and
//! after a bounded wait give up on the rest in a way that loses no request.
//!
//! The phases, one way only: [`Phase::Serving`] → [`Phase::Draining`] (no new request is pulled
//! from JetStream; a request already pulled but not started is nak'ed so another node takes it at
//! once; sessions already running go on, and session starts from other coordinators are still
//! served, since they picked this node while it was ready) → [`Phase::Abandoning`] (the deadline
//! passed: a request this node coordinates is nak'ed, so JetStream redelivers it to another node or
//! to this one after a restart; a session this node takes part in is reported to its coordinator
//! as aborted, so the coordinator answers the client with an error code instead of waiting for a
//! timeout; a reshare, which has no redelivery, is answered with an error code).

use std::time::Duration;

use tokio::sync::watch;

/// Where the service is in its shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Taking and serving requests.
    Serving,
    /// Taking no new requests; finishing those in flight.
    Draining,
    /// The drain deadline passed: in-flight work is handed back or answered with an error.
    Abandoning,
}

/// The shutdown switch and the count of work in flight (requests coordinated here, sessions taken
/// part in, reshares). Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Drain {
    phase: watch::Sender<Phase>,
    active: watch::Sender<usize>,
    pullers: watch::Sender<usize>,
}

/// What a drain achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Work in flight when the drain began.
    pub in_flight_at_start: usize,
    /// Work still in flight at the deadline (handed back or answered with an error).
    pub abandoned: usize,
    /// Abandoned work that had not stopped when its grace ran out (0: every abandoned task
    /// handed its request back or reported its abort).
    pub still_running: usize,
    /// Request pullers that had not stopped when their grace ran out (0: every puller handed
    /// back what it held).
    pub pullers_running: usize,
    /// How long the drain took.
    pub elapsed: Duration,
}

/// Counts one piece of work as in flight until dropped.
pub struct InFlight {
    active: watch::Sender<usize>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.active.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// How long abandoned tasks get to nak their request or report their abort.
const ABANDON_GRACE: Duration = Duration::from_secs(5);
/// How long the request pullers get to stop and hand back what they hold.
const PULL_STOP_GRACE: Duration = Duration::from_secs(3);

impl Default for Drain {
    fn default() -> Self {
        Self::new()
    }
}

impl Drain {
    /// A switch in the serving phase with nothing in flight.
    pub fn new() -> Self {
        Self {
            phase: watch::Sender::new(Phase::Serving),
            active: watch::Sender::new(0),
            pullers: watch::Sender::new(0),
        }
    }

    /// Count a piece of work as in flight (until the guard is dropped).
    pub fn track(&self) -> InFlight {
        self.active.send_modify(|n| *n += 1);
        InFlight { active: self.active.clone() }
    }

    /// Count a request puller as running (until the guard is dropped): the drain waits for it
    /// to stop and hand back what it pulled but did not start.
    pub fn track_puller(&self) -> InFlight {
        self.pullers.send_modify(|n| *n += 1);
        InFlight { active: self.pullers.clone() }
    }

    /// Work in flight now.
    pub fn in_flight(&self) -> usize {
        *self.active.borrow()
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Resolves once the phase is `at_least` (at once if it already is).
    pub async fn reached(&self, at_least: Phase) {
        let mut rx = self.phase.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|p| *p >= at_least).await;
    }

    async fn idle(&self) {
        let mut rx = self.active.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Resolves once every request puller has stopped.
    pub async fn pullers_stopped(&self) {
        let mut rx = self.pullers.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Stop taking work, wait up to `deadline` for the work in flight, then abandon what is left
    /// (see the module docs) and wait a short grace for it to be handed back.
    pub async fn drain(&self, deadline: Duration) -> DrainReport {
        let started = std::time::Instant::now();
        let in_flight_at_start = self.in_flight();
        self.phase.send_if_modified(|p| {
            let change = *p < Phase::Draining;
            if change {
                *p = Phase::Draining;
            }
            change
        });
        tracing::info!(in_flight = in_flight_at_start, ?deadline, "draining: no new requests are taken");
        let mut abandoned = 0;
        let mut still_running = 0;
        if tokio::time::timeout(deadline, self.idle()).await.is_err() {
            abandoned = self.in_flight();
            tracing::warn!(abandoned, "drain deadline passed; handing the rest back");
            self.phase.send_replace(Phase::Abandoning);
            if tokio::time::timeout(ABANDON_GRACE, self.idle()).await.is_err() {
                still_running = self.in_flight();
                tracing::warn!(left = still_running, "some work did not stop in time");
            }
        }
        // The pullers stopped at once when the drain began; waiting for them here makes sure what
        // they hand back is handed back before the service stops.
        let mut pullers_running = 0;
        if tokio::time::timeout(PULL_STOP_GRACE, self.pullers_stopped()).await.is_err() {
            pullers_running = *self.pullers.borrow();
            tracing::warn!(pullers_running, "a request puller did not stop in time");
        }
        DrainReport {
            in_flight_at_start,
            abandoned,
            still_running,
            pullers_running,
            elapsed: started.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_work_in_flight() {
        let d = Drain::new();
        let guard = d.track();
        assert_eq!(d.in_flight(), 1);
        let d2 = d.clone();
        let waiter = tokio::spawn(async move { d2.drain(Duration::from_secs(10)).await });
        d.reached(Phase::Draining).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "the drain waits for the guard");
        drop(guard);
        let report = waiter.await.unwrap();
        assert_eq!((report.in_flight_at_start, report.abandoned), (1, 0));
        assert_eq!(d.phase(), Phase::Draining);
    }

    #[tokio::test]
    async fn deadline_abandons_and_work_sees_it() {
        let d = Drain::new();
        let guard = d.track();
        let d2 = d.clone();
        // A task that gives up when told to abandon.
        let task = tokio::spawn(async move {
            d2.reached(Phase::Abandoning).await;
            drop(guard);
        });
        let report = d.drain(Duration::from_millis(20)).await;
        assert_eq!(report.abandoned, 1);
        assert_eq!(d.phase(), Phase::Abandoning);
        assert_eq!(d.in_flight(), 0);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn drain_waits_for_pullers_to_stop() {
        let d = Drain::new();
        let puller = d.track_puller();
        let d2 = d.clone();
        let task = tokio::spawn(async move {
            d2.reached(Phase::Draining).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(puller);
        });
        let report = d.drain(Duration::from_secs(10)).await;
        assert!(task.is_finished(), "the drain returned before the puller stopped");
        assert_eq!((report.in_flight_at_start, report.abandoned), (0, 0), "pullers are not work");
        task.await.unwrap();
    }

    #[tokio::test]
    async fn idle_service_drains_at_once() {
        let d = Drain::new();
        let report = d.drain(Duration::from_secs(30)).await;
        assert_eq!((report.in_flight_at_start, report.abandoned), (0, 0));
        assert!(report.elapsed < Duration::from_secs(1));
    }
}
