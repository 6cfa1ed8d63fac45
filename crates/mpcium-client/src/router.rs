//! Hands each result event to the call awaiting it, or else to the user's callback.
//!
//! Keys: keygen by `wallet_id`, signing by `tx_id`, reshare by the session ID (last token of the
//! result subject). The first event for a key claims the waiter; later ones (a node's duplicate
//! or a redelivery with a new SessionID, docs/wire.md §8.1) go to the callback like any unclaimed event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use mpcium_api::{KeygenResultEvent, ResharingResultEvent, SigningResultEvent};
use tokio::sync::oneshot;

use crate::error::{ClientError, Operation};

/// A callback for result events no waiter claimed.
pub type Callback<E> = Arc<dyn Fn(E) + Send + Sync>;

struct Table<E> {
    waiters: HashMap<String, oneshot::Sender<E>>,
    callback: Option<Callback<E>>,
}

impl<E> Default for Table<E> {
    fn default() -> Self {
        Self { waiters: HashMap::new(), callback: None }
    }
}

/// Waiters and callbacks of one result kind.
pub(crate) struct Routes<E> {
    operation: Operation,
    table: Mutex<Table<E>>,
}

impl<E: Send + 'static> Routes<E> {
    fn new(operation: Operation) -> Self {
        Self { operation, table: Mutex::new(Table::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Table<E>> {
        // A poisoned lock only means a callback panicked while we held it; the map is intact.
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a waiter for `key` before the request is published.
    pub(crate) fn wait_for(self: &Arc<Self>, key: &str) -> Result<Waiter<E>, ClientError> {
        let mut table = self.lock();
        if table.waiters.get(key).is_some_and(|tx| !tx.is_closed()) {
            return Err(ClientError::AlreadyInFlight { operation: self.operation, id: key.to_owned() });
        }
        let (tx, rx) = oneshot::channel();
        table.waiters.insert(key.to_owned(), tx);
        Ok(Waiter { routes: Arc::clone(self), key: key.to_owned(), rx: Some(rx) })
    }

    /// Sets the callback for unclaimed events (replacing any previous one).
    pub(crate) fn set_callback(&self, callback: Callback<E>) {
        self.lock().callback = Some(callback);
    }

    /// Delivers `event` to the waiter for `key`, else to the callback. Returns false when
    /// nobody took it.
    pub(crate) fn deliver(&self, key: &str, event: E) -> bool {
        let (waiter, callback) = {
            let mut table = self.lock();
            (table.waiters.remove(key), table.callback.clone())
        };
        let event = match waiter {
            Some(tx) => match tx.send(event) {
                Ok(()) => return true,
                // The caller gave up (timeout, cancellation) between our lookup and now.
                Err(event) => event,
            },
            None => event,
        };
        match callback {
            Some(f) => {
                f(event);
                true
            }
            None => false,
        }
    }

    fn forget(&self, key: &str) {
        let mut table = self.lock();
        if table.waiters.get(key).is_some_and(|tx| tx.is_closed()) {
            table.waiters.remove(key);
        }
    }
}

/// A pending result. Dropping it (timeout, cancelled future) unregisters the key.
pub(crate) struct Waiter<E: Send + 'static> {
    routes: Arc<Routes<E>>,
    key: String,
    rx: Option<oneshot::Receiver<E>>,
}

impl<E: Send + 'static> Waiter<E> {
    /// Waits for the event; `None` if the router was dropped.
    pub(crate) async fn recv(&mut self) -> Option<E> {
        match self.rx.as_mut() {
            Some(rx) => rx.await.ok(),
            None => None,
        }
    }
}

impl<E: Send + 'static> Drop for Waiter<E> {
    fn drop(&mut self) {
        // Close the receiver first so `forget` sees the sender as closed.
        drop(self.rx.take());
        self.routes.forget(&self.key);
    }
}

/// The three result kinds.
pub(crate) struct Router {
    pub(crate) keygen: Arc<Routes<KeygenResultEvent>>,
    pub(crate) signing: Arc<Routes<SigningResultEvent>>,
    pub(crate) reshare: Arc<Routes<ResharingResultEvent>>,
}

impl Router {
    pub(crate) fn new() -> Self {
        Self {
            keygen: Arc::new(Routes::new(Operation::Keygen)),
            signing: Arc::new(Routes::new(Operation::Sign)),
            reshare: Arc::new(Routes::new(Operation::Reshare)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn event(wallet: &str) -> KeygenResultEvent {
        KeygenResultEvent::success(wallet, &mpcium_api::EcdsaPublicKeyXY([1; 64]), &[2; 32])
    }

    #[tokio::test]
    async fn first_event_claims_the_waiter_then_callback_gets_the_rest() {
        let routes = Arc::new(Routes::new(Operation::Keygen));
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&seen);
        routes.set_callback(Arc::new(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        let mut waiter = routes.wait_for("w1").unwrap();
        assert!(matches!(routes.wait_for("w1"), Err(ClientError::AlreadyInFlight { .. })));
        assert!(routes.deliver("w1", event("w1")));
        assert_eq!(waiter.recv().await.unwrap().wallet_id, "w1");
        assert_eq!(seen.load(Ordering::SeqCst), 0);
        assert!(routes.deliver("w1", event("w1")));
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn dropped_waiter_frees_the_key_and_unclaimed_events_report_false() {
        let routes = Arc::new(Routes::new(Operation::Keygen));
        let waiter = routes.wait_for("w1").unwrap();
        drop(waiter);
        assert!(routes.lock().waiters.is_empty());
        assert!(!routes.deliver("w1", event("w1")));
        let _again = routes.wait_for("w1").unwrap();
    }
}
