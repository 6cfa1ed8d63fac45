//! FROST nonces drawn ahead on a real 3-node cluster (t=1, node2 coordinates every request):
//! EdDSA and Taproot signatures run in one round once co-signers have handed node2 their
//! commitments; a coordinator that replays a start, or names a signer's fresh nonce under other
//! commitments, gets a refusal and never a second use of a nonce; a co-signer that restarted has
//! no nonces left, and the client's signature still succeeds (in full). THREAT-MODEL.md row 17.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use mpcium_api::ErrorCode;
use mpcium_node::control::{Control, SessionStart};
use mpcium_node::envelope::{Envelope, Kind};
use mpcium_node::nonces::NonceOffer;
use mpcium_testkit::node::{Cluster, ClusterSpec, eddsa_verify, http_get, metric, taproot_verify};

const COORDINATOR: usize = 2;

/// What went over the co-signers' and the coordinator's inboxes: session starts that name nonces
/// drawn ahead, and the offers in done reports, by sender.
#[derive(Default)]
struct Seen {
    starts: Vec<SessionStart>,
    offers: BTreeMap<String, Vec<NonceOffer>>,
}

async fn watch(c: &Cluster) -> Arc<Mutex<Seen>> {
    let nats = async_nats::connect(c.server.url()).await.unwrap();
    let mut sub = nats.subscribe("mpcium.node.>").await.unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let out = seen.clone();
    tokio::spawn(async move {
        let _keep = nats;
        while let Some(m) = sub.next().await {
            let Ok(env) = Envelope::decode(&m.payload) else { continue };
            if env.kind != Kind::Control {
                continue;
            }
            match Control::decode(&env.payload) {
                Ok(Control::Start(s)) if !s.nonces.is_empty() => {
                    let mut seen = out.lock().unwrap();
                    if !seen.starts.contains(&s) {
                        seen.starts.push(s);
                    }
                }
                Ok(Control::Done(d)) if !d.nonces.is_empty() => {
                    out.lock().unwrap().offers.entry(env.sender.clone()).or_default().extend(d.nonces);
                }
                _ => {}
            }
        }
    });
    seen
}

async fn counters(c: &Cluster) -> (u64, u64) {
    let text = http_get(c.health_port, "/metrics").await;
    (
        metric(&text, "mpcium_frost_nonce_signatures_total"),
        metric(&text, "mpcium_frost_full_signatures_total"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn frost_signs_in_one_round_with_nonces_drawn_ahead_and_each_nonce_signs_once() {
    let spec = ClusterSpec {
        health_on: Some(COORDINATOR),
        tweak: Some(Arc::new(|i, params| params.service.pulls_requests = i == COORDINATOR)),
        ..ClusterSpec::new(3, 1)
    };
    let mut c = Cluster::start(spec).await;
    let seen = watch(&c).await;
    let w = c.client("drawn-nonces").await;
    let kg = w.keygen("wallet-n").await;
    assert_eq!(kg.result_type.as_str(), "success", "{kg:?}");
    let (eddsa, taproot) = (kg.eddsa_pub_key.clone().unwrap(), kg.taproot_pub_key.clone().unwrap());
    let digest = [3u8; 32];

    // The first signature of each key runs in full and brings node2 its co-signer's offers; the
    // later ones run in one round.
    for i in 0..4 {
        let ev = w.sign(&w.sign_msg("ed25519", "wallet-n", &format!("d{i}"), b"sol tx", None)).await;
        eddsa_verify(&eddsa, b"sol tx", &ev);
    }
    for i in 0..3 {
        let ev = w.sign(&w.sign_msg("taproot", "wallet-n", &format!("t{i}"), &digest, None)).await;
        taproot_verify(&taproot, None, &digest, &ev);
    }
    // An HD child signs in one round too.
    let ev = w.sign(&w.sign_msg("ed25519", "wallet-n", "d-hd", b"sol tx", Some(vec![44, 501, 0]))).await;
    assert_eq!(ev.result_type.as_str(), "success", "{ev:?}");
    assert_eq!(counters(&c).await, (6, 2), "(one round, in full) after 4 + 1 EdDSA and 3 Taproot signatures");

    // A start node2 sent, replayed as a new session (another attempt number: the claim still
    // matches): the co-signer no longer holds that nonce.
    let start = seen.lock().unwrap().starts.last().cloned().expect("a start naming nonces was seen");
    let cosigner = start.participants.iter().find(|p| **p != c.ids[COORDINATOR]).unwrap().clone();
    let to = [cosigner.clone()];
    let mut replay = start.clone();
    replay.request_id = format!("{}.7", start.request_id);
    let got = mpcium_testkit::node::announce_via(c.node(COORDINATOR).transport(), replay, &to).await;
    assert_eq!(got[&cosigner].1, Some(ErrorCode::SessionStale), "replayed nonce: {got:?}");

    // A fresh nonce of the co-signer's (from its latest done report, not yet named), under other
    // commitments: refused, and spent by the refusal.
    let named: Vec<String> = seen
        .lock()
        .unwrap()
        .starts
        .iter()
        .flat_map(|s| s.nonces.iter().map(|n| n.offer.id.clone()))
        .collect();
    let fresh = seen.lock().unwrap().offers[&cosigner]
        .iter()
        .rev()
        .find(|o| !named.contains(&o.id))
        .cloned()
        .expect("an offer not named yet");
    let with = |commitments: String, attempt: u32| {
        let mut s = start.clone();
        s.request_id = format!("{}.{attempt}", start.request_id);
        let entry = s.nonces.iter_mut().find(|n| n.node == cosigner).unwrap();
        entry.offer = NonceOffer { commitments, ..fresh.clone() };
        s
    };
    let mut tampered = fresh.commitments.clone();
    let last = if tampered.ends_with('0') { "1" } else { "0" };
    tampered.replace_range(tampered.len() - 1.., last);
    let got =
        mpcium_testkit::node::announce_via(c.node(COORDINATOR).transport(), with(tampered, 8), &to).await;
    assert_eq!(got[&cosigner].1, Some(ErrorCode::MessageVerification), "other commitments: {got:?}");
    let got = mpcium_testkit::node::announce_via(
        c.node(COORDINATOR).transport(),
        with(fresh.commitments.clone(), 9),
        &to,
    )
    .await;
    assert_eq!(got[&cosigner].1, Some(ErrorCode::SessionStale), "spent by the refusal: {got:?}");

    // Both co-signers restart: their nonces are gone with the process (none is on disk). node2
    // drops their offers when it sees the new processes' ready records (and would take a refusal
    // for one it missed), so the next signature runs in full.
    let before: Vec<Option<u64>> =
        c.ids.iter().map(|id| c.node(COORDINATOR).directory().incarnation(id)).collect();
    for i in (0..3).filter(|i| *i != COORDINATOR) {
        c.restart_node(i).await;
    }
    c.wait_all_ready().await;
    // Until node2 has seen both new processes' ready records.
    for _ in 0..400 {
        let dir = c.node(COORDINATOR).directory();
        if (0..3).filter(|i| *i != COORDINATOR).all(|i| dir.incarnation(&c.ids[i]) != before[i]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let (one_round, full) = counters(&c).await;
    let ev = w.sign(&w.sign_msg("ed25519", "wallet-n", "after-restart", b"sol tx", None)).await;
    eddsa_verify(&eddsa, b"sol tx", &ev);
    assert_eq!(
        counters(&c).await,
        (one_round, full + 1),
        "the refused attempt fell back to a full signature"
    );
    // And the one after it runs in one round again.
    let ev = w.sign(&w.sign_msg("ed25519", "wallet-n", "after-restart-2", b"sol tx", None)).await;
    eddsa_verify(&eddsa, b"sol tx", &ev);
    assert_eq!(counters(&c).await, (one_round + 1, full + 1));
}
