//! Handing requests back: the signing requests a coordinator's sessions with this node serve
//! (named in its session starts and its request notes) are remembered per coordinator, and handed
//! back to JetStream for immediate redelivery when the coordinator is found absent.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::{Transport, node_subject};

/// The NATS header of a session start that names the acknowledgement subject of the client
/// request the session serves. If the coordinator goes away, each participant that took the
/// start hands the request back to JetStream (a NAK with a short delay), so another node runs it
/// within a second instead of after the consumer's redelivery back-off. Not signed: all it can
/// cause is an early redelivery, which the request claims and settled results make harmless.
pub const HANDBACK_HEADER: &str = "Mpcium-Handback";
/// The header naming the coordinator of a request note ([`Transport::note_request`]).
pub const HANDBACK_FROM_HEADER: &str = "Mpcium-Handback-From";
/// The only subjects taken as hand-back subjects: acknowledgements of signing requests.
const HANDBACK_PREFIX: &str = "$JS.ACK.mpc-signing.";
/// How long a hand-back subject is kept (past the request's AckWait and first BackOff).
const HANDBACK_MEMORY: Duration = Duration::from_secs(90);
/// How many hand-back subjects are kept per coordinator (the oldest go first).
const MAX_HANDBACKS_PER_COORDINATOR: usize = 1024;

/// Per coordinator: when each hand-back subject was seen, and the subject.
pub(super) type Handbacks = HashMap<String, VecDeque<(Instant, String)>>;

impl Transport {
    /// Tell every peer with a live ready record that this node took the client request whose
    /// acknowledgement subject is `subject`, before it does anything with it (see
    /// [`HANDBACK_HEADER`]): if this node goes away, they hand it back even if no session of it
    /// was announced yet. One empty message per peer; not signed (all it can cause is an early
    /// redelivery of a signing request).
    pub async fn note_request(&self, subject: &str) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(HANDBACK_HEADER, subject);
        headers.insert(HANDBACK_FROM_HEADER, self.dir.me());
        for peer in self.dir.known_peers() {
            if let Err(e) = self
                .client
                .publish_with_headers(node_subject(&peer), headers.clone(), bytes::Bytes::new())
                .await
            {
                tracing::debug!(error = %e, "could not note a request to a peer");
            }
        }
        // Out of this process before the work starts: a note still in the client's buffer dies
        // with a killed process, and the request would wait for its AckWait.
        if let Err(e) = self.client.flush().await {
            tracing::debug!(error = %e, "could not flush the request notes");
        }
    }

    /// Remember the request a coordinator's session serves (its acknowledgement subject), to
    /// hand it back if the coordinator goes away. Only signing requests' subjects are taken.
    pub(super) fn remember_handback(&self, coordinator: &str, subject: &str) {
        let valid = subject.starts_with(HANDBACK_PREFIX)
            && subject.len() <= 512
            && !subject.contains(|c: char| c.is_whitespace() || c == '*' || c == '>');
        if !valid {
            return;
        }
        let now = Instant::now();
        let Ok(mut all) = self.handbacks.lock() else { return };
        let list = all.entry(coordinator.to_owned()).or_default();
        while list.front().is_some_and(|(at, _)| now.duration_since(*at) > HANDBACK_MEMORY)
            || list.len() >= MAX_HANDBACKS_PER_COORDINATOR
        {
            list.pop_front();
        }
        if !list.iter().any(|(_, s)| s == subject) {
            list.push_back((now, subject.to_owned()));
        }
    }

    /// A coordinator is absent: hand the requests its recent sessions served back to JetStream
    /// for immediate redelivery to a live node, instead of their redelivery after AckWait and
    /// BackOff (5 s for signing). A request that was answered already is acknowledged and stays so (the
    /// server ignores the notice); one that runs again is answered with its settled result if
    /// the coordinator published one (`Registry::settle_result`).
    pub(super) async fn hand_back_requests_of(&self, coordinator: &str) {
        let taken =
            self.handbacks.lock().ok().and_then(|mut all| all.remove(coordinator)).unwrap_or_default();
        let now = Instant::now();
        let nak = bytes::Bytes::from(format!("-NAK {{\"delay\":{}}}", Duration::from_millis(10).as_nanos()));
        let mut handed = 0;
        for (_, subject) in taken.iter().filter(|(at, _)| now.duration_since(*at) <= HANDBACK_MEMORY) {
            if self.client.publish(subject.clone(), nak.clone()).await.is_ok() {
                handed += 1;
            }
        }
        if handed > 0 {
            tracing::info!(
                coordinator,
                handed,
                "handed an absent coordinator's requests back for redelivery"
            );
        }
    }
}
