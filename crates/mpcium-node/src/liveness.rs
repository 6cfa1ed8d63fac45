//! Peer liveness: how a node learns within a second that a peer is gone, instead of when its
//! readiness lapses (three heartbeats).
//!
//! Every [`PROBE_PERIOD`] the node sends an empty NATS request to the inbox of each peer with a
//! live ready record (see [`Transport::probe`]); the peer's transport acknowledges it on receipt.
//! A crashed process's subscriptions vanish with its connection, so NATS answers "no responders"
//! at once: the peer is marked absent ([`crate::registry::PeerDirectory::mark_absent`]), leaves
//! the ready set coordinators pick signers from, and sessions waiting for it stop. A peer that
//! does not answer within [`PROBE_TIMEOUT`] (cut off, its subscription still on the server) is
//! marked absent the same way. An answer, or a new process's ready record, brings it back.
//! Session starts are acknowledged the same way (`Transport::announce`), so a coordinator that
//! has not probed a peer yet still learns of its absence from the start itself.

use std::collections::HashMap;
use std::time::Duration;

use crate::transport::Transport;

/// How often each peer is probed.
pub const PROBE_PERIOD: Duration = Duration::from_millis(500);
/// How long a probe waits for the acknowledgement before the peer counts as absent.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Probe the peers until `stop` is set.
pub fn spawn(
    transport: Transport,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // One probe in flight per peer.
        let mut probing: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
        loop {
            for peer in transport.directory().known_peers() {
                if probing.get(&peer).is_some_and(|p| !p.is_finished()) {
                    continue;
                }
                let t = transport.clone();
                let node = peer.clone();
                let probe = tokio::spawn(async move {
                    let _ = t
                        .probe(&node, bytes::Bytes::new(), async_nats::HeaderMap::new(), PROBE_TIMEOUT)
                        .await;
                });
                probing.insert(peer, probe);
            }
            tokio::select! {
                _ = tokio::time::sleep(PROBE_PERIOD) => {}
                _ = stop.changed() => break,
            }
        }
        for probe in probing.values() {
            probe.abort();
        }
    })
}
