//! The transport against a flooding or replaying peer, over a real nats-server: a replayed
//! session start neither starts a second run nor takes the running session's route; buffers
//! and queues are bounded (and count what they drop); session starts over the concurrency cap
//! are refused at once with `ERROR_CONCURRENCY_LIMIT`; a peer cannot squat the id of another
//! coordinator's session (its start and buffered messages count only for itself).

use std::sync::atomic::Ordering;
use std::time::Duration;

use mpcium_node::control::{Control, SessionOp, SessionStart};
use mpcium_node::envelope::Kind;
use mpcium_node::transport::{
    MAX_CONCURRENT_STARTS, MAX_PENDING_BYTES, MAX_PENDING_PER_SESSION, SESSION_QUEUE, SessionInbox,
    StartRequest, done_id, node_subject,
};
use mpcium_testkit::node::Transports;
use tokio::sync::mpsc;

/// node0 (the sender) and node1 (the receiver).
type Pair = Transports;

async fn pair() -> Pair {
    Transports::start(2).await
}

fn start_of(request_id: &str) -> Control {
    Control::Start(
        SessionStart::new(SessionOp::Sign, "node0", vec!["node0".into(), "node1".into()], 1, 1, request_id)
            .with_request(b"{}"),
    )
}

fn session(i: u32) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..4].copy_from_slice(&i.to_be_bytes());
    s[31] = 0x5e;
    s
}

async fn no_start_within(rx: &mut mpsc::Receiver<StartRequest>, wait: Duration) {
    if let Ok(Some(s)) = tokio::time::timeout(wait, rx.recv()).await {
        panic!("unexpected session start for {:?}", s.envelope.session);
    }
}

async fn recv_within(inbox: &mut SessionInbox, wait: Duration) -> Option<Vec<u8>> {
    tokio::time::timeout(wait, inbox.recv()).await.ok().flatten().map(|m| m.payload.to_vec())
}

/// Wait until node1 has taken in everything node0 sent so far (a marker message arrives).
async fn flush(p: &Pair, marker: u32) {
    flush_from(p, 0, marker).await
}

/// Wait until node1 has taken in everything node `from` sent so far.
async fn flush_from(p: &Pair, from: usize, marker: u32) {
    let mut inbox = p.transports[1].open_session(session(marker));
    p.transports[from]
        .send_public(Kind::Broadcast, session(marker), 0, &["node1".into()], b"mark".to_vec())
        .await
        .unwrap();
    assert_eq!(recv_within(&mut inbox, Duration::from_secs(10)).await.as_deref(), Some(&b"mark"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_session_start_is_ignored_and_the_running_session_keeps_its_route() {
    let p = pair().await;
    let mut starts = p.transports[1].listen().await.unwrap();
    let _ = p.transports[0].listen().await.unwrap();
    let id = session(1);
    let env = p.transports[0]
        .send_public(Kind::Control, id, u32::MAX, &["node1".into()], start_of("tx#1").encode())
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), starts.recv()).await.unwrap().unwrap();
    assert_eq!(first.envelope.session, id);
    // The session runs on node1.
    let mut inbox = p.transports[1].open_session(id);

    // Anyone who saw the start re-publishes it, validly signed by node0.
    p.raw.publish(node_subject("node1"), env.encode().into()).await.unwrap();
    no_start_within(&mut starts, Duration::from_millis(500)).await;
    // The running session still gets its messages.
    p.transports[0]
        .send_public(Kind::Broadcast, id, 0, &["node1".into()], b"round 1".to_vec())
        .await
        .unwrap();
    assert_eq!(recv_within(&mut inbox, Duration::from_secs(10)).await.as_deref(), Some(&b"round 1"[..]));

    // After the session ended here, a replay does not start it again either.
    drop(inbox);
    drop(first);
    p.raw.publish(node_subject("node1"), env.encode().into()).await.unwrap();
    no_start_within(&mut starts, Duration::from_millis(500)).await;
    assert_eq!(p.transports[1].counters().replayed_starts.load(Ordering::Relaxed), 2);

    // A start for a session this node coordinates (it opened the session itself) is a replay too.
    let own = session(2);
    let _own_inbox = p.transports[1].open_session(own);
    p.transports[0]
        .send_public(Kind::Control, own, u32::MAX, &["node1".into()], start_of("tx#2").encode())
        .await
        .unwrap();
    no_start_within(&mut starts, Duration::from_millis(500)).await;
    assert_eq!(p.transports[1].counters().replayed_starts.load(Ordering::Relaxed), 3);

    // A new session still starts.
    p.transports[0]
        .send_public(Kind::Control, session(3), u32::MAX, &["node1".into()], start_of("tx#3").encode())
        .await
        .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), starts.recv()).await.unwrap().unwrap();
    assert_eq!(next.envelope.session, session(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffers_and_queues_are_bounded_and_count_what_they_drop() {
    let p = pair().await;
    let _ = p.transports[1].listen().await.unwrap();
    let _ = p.transports[0].listen().await.unwrap();
    let dropped = || p.transports[1].counters().dropped.load(Ordering::Relaxed);

    // Messages for sessions that never start: 900 KB each (under nats-server's 1 MiB payload
    // limit), 1.25 times the byte budget of the buffer, one session each.
    let big = vec![0xab; 900 * 1024];
    let count = MAX_PENDING_BYTES * 5 / 4 / big.len();
    for i in 0..count as u32 {
        p.transports[0]
            .send_public(Kind::Broadcast, session(1000 + i), 0, &["node1".into()], big.clone())
            .await
            .unwrap();
    }
    flush(&p, 99_999).await;
    let over = dropped();
    let kept = count as u64 - over;
    assert!(over >= (count / 5) as u64, "{over} of {count} dropped");
    assert!(kept as usize * big.len() <= MAX_PENDING_BYTES, "{kept} kept");
    // What was kept is delivered when its session starts.
    let mut first = p.transports[1].open_session(session(1000));
    assert_eq!(recv_within(&mut first, Duration::from_secs(1)).await.map(|m| m.len()), Some(big.len()));

    // A running session that does not keep up: its queue holds SESSION_QUEUE messages.
    let id = session(5);
    let mut slow = p.transports[1].open_session(id);
    let extra = 50;
    for seq in 0..(SESSION_QUEUE + extra) as u32 {
        p.transports[0]
            .send_public(Kind::Broadcast, id, seq, &["node1".into()], seq.to_be_bytes().to_vec())
            .await
            .unwrap();
    }
    let before = dropped();
    // Its messages are all in by the time a later one arrives (one publisher, in order).
    flush(&p, 99_998).await;
    assert_eq!(dropped() - before, extra as u64);
    let mut got = 0;
    while let Some(m) = recv_within(&mut slow, Duration::from_millis(200)).await {
        assert_eq!(m, (got as u32).to_be_bytes(), "the first messages are kept, in order");
        got += 1;
    }
    assert_eq!(got, SESSION_QUEUE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_starts_over_the_cap_are_refused_at_once_and_the_coordinator_is_told() {
    let p = pair().await;
    let mut starts = p.transports[1].listen().await.unwrap();
    let _ = p.transports[0].listen().await.unwrap();
    // node1's dispatcher is stuck: every start it was given holds its slot.
    for i in 0..MAX_CONCURRENT_STARTS as u32 {
        p.transports[0]
            .send_public(
                Kind::Control,
                session(i),
                u32::MAX,
                &["node1".into()],
                start_of(&format!("tx#{i}")).encode(),
            )
            .await
            .unwrap();
    }
    let mut held = Vec::new();
    for _ in 0..MAX_CONCURRENT_STARTS {
        held.push(tokio::time::timeout(Duration::from_secs(10), starts.recv()).await.unwrap().unwrap());
    }
    // One more: refused, and the coordinator hears it at once, in the session and in a report.
    let over = session(70_000);
    let mut coordinator_run = p.transports[0].open_session(over);
    let mut coordinator_done = p.transports[0].open_session(done_id(&over));
    p.transports[0]
        .send_public(Kind::Control, over, u32::MAX, &["node1".into()], start_of("tx#over").encode())
        .await
        .unwrap();
    let abort = tokio::time::timeout(Duration::from_secs(10), coordinator_run.recv()).await.unwrap().unwrap();
    match Control::decode(&abort.payload).unwrap() {
        Control::Abort(a) => assert_eq!(a.code, mpcium_api::ErrorCode::ConcurrencyLimit),
        other => panic!("expected an abort notice, got {other:?}"),
    }
    let done = tokio::time::timeout(Duration::from_secs(10), coordinator_done.recv()).await.unwrap().unwrap();
    match Control::decode(&done.payload).unwrap() {
        Control::Done(d) => {
            assert!(!d.ok && d.code == Some(mpcium_api::ErrorCode::ConcurrencyLimit), "{d:?}")
        }
        other => panic!("expected an outcome report, got {other:?}"),
    }
    no_start_within(&mut starts, Duration::from_millis(300)).await;
    assert_eq!(p.transports[1].counters().refused_starts.load(Ordering::Relaxed), 1);

    // A finished session frees its slot.
    held.pop();
    let next = session(70_001);
    p.transports[0]
        .send_public(Kind::Control, next, u32::MAX, &["node1".into()], start_of("tx#next").encode())
        .await
        .unwrap();
    let s = tokio::time::timeout(Duration::from_secs(10), starts.recv()).await.unwrap().unwrap();
    assert_eq!(s.envelope.session, next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_cannot_squat_the_id_of_another_coordinators_session() {
    let p = Transports::start(3).await;
    let mut starts = p.transports[1].listen().await.unwrap();
    let _ = p.transports[0].listen().await.unwrap();
    let _ = p.transports[2].listen().await.unwrap();
    // node2 learned (or guessed) the id of a session node0 is about to start: it sends node1 a
    // start under that id first, and fills the id's buffer with messages of its own.
    let id = session(7);
    p.transports[2]
        .send_public(Kind::Control, id, u32::MAX, &["node1".into()], start_of("tx#7").encode())
        .await
        .unwrap();
    let squat = tokio::time::timeout(Duration::from_secs(10), starts.recv()).await.unwrap().unwrap();
    assert_eq!(squat.envelope.sender, "node2", "handed on, for the dispatcher to refuse");
    drop(squat);
    let extra = 10;
    for seq in 0..(MAX_PENDING_PER_SESSION + extra) as u32 {
        p.transports[2]
            .send_public(Kind::Broadcast, id, seq, &["node1".into()], b"junk".to_vec())
            .await
            .unwrap();
    }
    flush_from(&p, 2, 99_997).await;
    let dropped = p.transports[1].counters().dropped.load(Ordering::Relaxed);
    assert_eq!(dropped, extra as u64, "node2's part of the buffer is full");

    // node0's first message (overtaking its start) is still kept, and its start is taken.
    p.transports[0]
        .send_public(Kind::Broadcast, id, 0, &["node1".into()], b"node0 round 1".to_vec())
        .await
        .unwrap();
    flush(&p, 99_996).await;
    p.transports[0]
        .send_public(Kind::Control, id, u32::MAX, &["node1".into()], start_of("tx#7").encode())
        .await
        .unwrap();
    let start = tokio::time::timeout(Duration::from_secs(10), starts.recv())
        .await
        .expect("the coordinator's start is not taken for a replay")
        .unwrap();
    assert_eq!(start.envelope.sender, "node0");
    assert_eq!(p.transports[1].counters().replayed_starts.load(Ordering::Relaxed), 0);
    assert_eq!(p.transports[1].counters().dropped.load(Ordering::Relaxed), dropped);
    let mut inbox = p.transports[1].open_session(id);
    let mut from_node0 = Vec::new();
    while let Some(m) = tokio::time::timeout(Duration::from_millis(300), inbox.recv()).await.ok().flatten() {
        if m.envelope.sender == "node0" {
            from_node0.push(m.payload.to_vec());
        }
    }
    assert_eq!(from_node0, vec![b"node0 round 1".to_vec()]);

    // The same sender's second start for the id is still a replay.
    p.transports[2]
        .send_public(Kind::Control, id, u32::MAX, &["node1".into()], start_of("tx#7").encode())
        .await
        .unwrap();
    no_start_within(&mut starts, Duration::from_millis(500)).await;
    assert_eq!(p.transports[1].counters().replayed_starts.load(Ordering::Relaxed), 1);
}
