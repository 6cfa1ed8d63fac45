//! A node playing a malicious coordinator (mpcium-node's `test-malice`): announce a session
//! nobody asked for straight to chosen nodes, and read each one's answer.

use std::collections::BTreeMap;
use std::time::Duration;

use mpcium_api::ErrorCode;
use mpcium_node::control::{Control, SessionStart};
use mpcium_node::transport::Transport;

use super::Cluster;

/// Each node's answer to an announcement by node id: `(took part, error code, reason)`.
pub type Answers = BTreeMap<String, (bool, Option<ErrorCode>, String)>;

/// Announce `start` over `transport` (e.g. `RunningNode::transport`) straight to the nodes
/// `to`, and collect each one's answer: honest nodes check an announcement before they take part
/// and answer a refusal at once. Panics when a node does not answer within 20 s.
pub async fn announce_via(transport: &Transport, start: SessionStart, to: &[String]) -> Answers {
    let session = mpcium_node::service::announced_session_id(&start).expect("well-formed start");
    let mut done = transport.open_session(mpcium_node::service::done_id(&session));
    transport
        .send_public(
            mpcium_node::envelope::Kind::Control,
            session,
            u32::MAX,
            to,
            Control::Start(start).encode(),
        )
        .await
        .unwrap();
    let mut answers = Answers::new();
    while answers.len() < to.len() {
        let m = tokio::time::timeout(Duration::from_secs(20), done.recv())
            .await
            .expect("every node answers the announcement")
            .expect("inbox open");
        // Only the nodes asked count: every one of them has answered when this returns.
        if !to.contains(&m.envelope.sender) {
            continue;
        }
        if let Ok(Control::Done(r)) = Control::decode(&m.payload) {
            answers.insert(m.envelope.sender.clone(), (r.ok, r.code, r.reason));
        }
    }
    answers
}

impl Cluster {
    /// [`announce_via`] `transport` (the malicious node's: `self.node(i).transport()`, which
    /// needs mpcium-node's `test-malice`) to the nodes at the indices `to`.
    pub async fn announce(&self, transport: &Transport, start: SessionStart, to: &[usize]) -> Answers {
        let nodes: Vec<String> = to.iter().map(|i| self.ids[*i].clone()).collect();
        announce_via(transport, start, &nodes).await
    }
}

/// Assert that every node answered and refused to take part, with `code` ([`announce_via`]
/// returns only once each node it announced to has answered).
pub fn assert_all_refused(answers: &Answers, code: ErrorCode, what: &str) {
    assert!(!answers.is_empty(), "{what}: nobody answered");
    for (node, (ok, got, reason)) in answers {
        assert!(!ok, "{what}: {node} took part: {answers:?}");
        assert_eq!(got.as_ref(), Some(&code), "{what}: {node} refused with {got:?} ({reason})");
    }
}
