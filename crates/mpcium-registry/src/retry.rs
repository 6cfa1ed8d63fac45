//! Registry reads and writes that ride out a JetStream leader election.
//!
//! When a NATS server of a cluster dies, each bucket whose Raft leader it held elects another
//! (measured 4 to 9 s); meanwhile a KV request times out or is refused. A request a client sent
//! then must not fail for it: these calls retry such transient errors for up to
//! [`RETRY_FOR`], and return the last error after that. Errors that a retry cannot change (a key
//! that exists, an invalid key) are returned at once.
//!
//! A write whose reply was lost may have been stored: the callers' writes are create-only or
//! idempotent (`claim_request` compares the claim it finds, `settle_result` returns the stored
//! event, a key info put rewrites the same value), so running one again is safe.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::kv;

/// How long a transient registry error is retried: longer than a leader election.
pub const RETRY_FOR: Duration = Duration::from_secs(12);
/// The first pause between attempts (doubling up to [`MAX_PAUSE`]).
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Run `op` until it succeeds, fails for good (`transient` says no), or [`RETRY_FOR`] passed.
pub(super) async fn retrying<T, E, F, Fut>(what: &str, transient: fn(&E) -> bool, mut op: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let began = tokio::time::Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        match op().await {
            Err(e) if transient(&e) && began.elapsed() + pause < RETRY_FOR => {
                tracing::debug!(what, error = %e, "registry unavailable; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            outcome => return outcome,
        }
    }
}

/// A read that failed for want of an answer (not an invalid key).
pub(super) fn get_transient(e: &kv::EntryError) -> bool {
    !matches!(e.kind(), kv::EntryErrorKind::InvalidKey)
}

/// A create that failed for want of an answer (not "exists", not an invalid key).
pub(super) fn create_transient(e: &kv::CreateError) -> bool {
    !matches!(e.kind(), kv::CreateErrorKind::AlreadyExists | kv::CreateErrorKind::InvalidKey)
}

/// A put that failed for want of an answer (not an invalid key).
pub(super) fn put_transient(e: &kv::PutError) -> bool {
    !matches!(e.kind(), kv::PutErrorKind::InvalidKey)
}

/// `store.get(key)`, retried.
pub(super) async fn get(store: &kv::Store, key: &str) -> Result<Option<bytes::Bytes>, kv::EntryError> {
    retrying("kv get", get_transient, || store.get(key)).await
}

/// `store.create(key, value)`, retried.
pub(super) async fn create(
    store: &kv::Store,
    key: &str,
    value: bytes::Bytes,
) -> Result<u64, kv::CreateError> {
    retrying("kv create", create_transient, || store.create(key, value.clone())).await
}

/// `store.put(key, value)`, retried.
pub(super) async fn put(store: &kv::Store, key: &str, value: bytes::Bytes) -> Result<u64, kv::PutError> {
    retrying("kv put", put_transient, || store.put(key, value.clone())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_until_success_and_lasting_ones_are_not() {
        let mut calls = 0;
        let out: Result<u32, String> = retrying(
            "t",
            |e: &String| e == "busy",
            || {
                calls += 1;
                let n = calls;
                async move { if n < 4 { Err("busy".to_owned()) } else { Ok(n) } }
            },
        )
        .await;
        assert_eq!(out, Ok(4));

        let mut calls = 0;
        let out: Result<u32, String> = retrying(
            "t",
            |e: &String| e == "busy",
            || {
                calls += 1;
                async { Err("bad key".to_owned()) }
            },
        )
        .await;
        assert_eq!((out, calls), (Err("bad key".to_owned()), 1));

        let began = tokio::time::Instant::now();
        let out: Result<u32, String> =
            retrying("t", |e: &String| e == "busy", || async { Err("busy".to_owned()) }).await;
        assert_eq!(out, Err("busy".to_owned()));
        assert!(
            began.elapsed() <= RETRY_FOR && began.elapsed() >= RETRY_FOR - MAX_PAUSE,
            "{:?}",
            began.elapsed()
        );
    }
}
