//! FROST nonces drawn ahead (issue #16): what a signer holds for each coordinator, and what a
//! coordinator holds of the others' commitments.
//!
//! A signer that took part in a FROST signature hands the coordinator, in its done report, a
//! few commitments of nonce pairs it drew and keeps **in memory only** ([`NonceBook`]): never in
//! the store, never in a backup, gone with the process. The coordinator keeps them
//! ([`CommitmentStock`]) and names one of each co-signer's in its next session start for that
//! key, so the signature starts at FROST's round 2. A signer takes (removes) the named nonce
//! before it computes anything; a nonce it does not hold (used, evicted, or drawn before a
//! restart) is refused, and the coordinator signs in full. So one nonce signs at most once, across
//! the cluster, whatever a coordinator replays: the secret exists in one process and leaves it
//! only by being used.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use mpcium_tss::{KeyType, ProtocolError};
use rand_core::{OsRng, RngCore as _};
use serde::{Deserialize, Serialize};

/// Nonces a signer holds per coordinator and key (and commitments a coordinator holds per
/// co-signer and key): enough for the requests one coordinator keeps in flight.
pub const PER_KEY: usize = 32;

/// Keys (coordinator, key type, wallet, version) a signer holds nonces for; past this, no new
/// key gets any (the oldest nonces of a key are dropped as new ones come, so a key's own list
/// stays bounded).
const MAX_KEYS: usize = 4096;

/// A nonce pair drawn ahead, for one of the two FROST suites.
pub enum HeldNonce {
    /// For an EdDSA signature.
    Ed25519(mpcium_tss::eddsa::Nonce),
    /// For a Taproot signature.
    Taproot(mpcium_tss::taproot::Nonce),
}

impl HeldNonce {
    /// Draw an EdDSA nonce pair with `share` (see `mpcium_tss::frost::Nonce::draw`).
    pub fn draw_ed25519(share: &mpcium_tss::eddsa::KeyShare) -> Result<(Self, Vec<u8>), ProtocolError> {
        let (nonce, commitments) = mpcium_tss::eddsa::Nonce::draw(share)?;
        Ok((Self::Ed25519(nonce), commitments))
    }

    /// Draw a Taproot nonce pair with `share`.
    pub fn draw_taproot(share: &mpcium_tss::taproot::KeyShare) -> Result<(Self, Vec<u8>), ProtocolError> {
        let (nonce, commitments) = mpcium_tss::taproot::Nonce::draw(share)?;
        Ok((Self::Taproot(nonce), commitments))
    }

    /// The EdDSA nonce, if it is one.
    pub fn into_ed25519(self) -> Option<mpcium_tss::eddsa::Nonce> {
        match self {
            Self::Ed25519(nonce) => Some(nonce),
            Self::Taproot(_) => None,
        }
    }

    /// The Taproot nonce, if it is one.
    pub fn into_taproot(self) -> Option<mpcium_tss::taproot::Nonce> {
        match self {
            Self::Taproot(nonce) => Some(nonce),
            Self::Ed25519(_) => None,
        }
    }
}

impl std::fmt::Debug for HeldNonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldNonce(<secret>)")
    }
}

/// What a nonce is for: the coordinator it was handed to and the key it signs with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NonceKey {
    /// The node that may name it in a session start.
    pub coordinator: String,
    /// Ed25519 or Taproot.
    pub key_type: KeyType,
    /// The wallet.
    pub wallet: String,
    /// The key version.
    pub version: u32,
}

/// One commitment handed to a coordinator (in a done report), with the drawing signer's
/// signature over [`offer_statement`] so other signers can check it came from that signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceOffer {
    /// The nonce's id (hex, 16 random bytes), unique per signer.
    pub id: String,
    /// The FROST commitments' encoding, hex.
    pub commitments: String,
    /// The signer's Ed25519 signature over [`offer_statement`], base64.
    pub signature: String,
}

/// A signer's commitment named in a session start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceUse {
    /// The signer that drew it.
    pub node: String,
    /// Its offer (the coordinator's own has an empty signature: the start's envelope is it).
    #[serde(flatten)]
    pub offer: NonceOffer,
}

const OFFER_DOMAIN: &[u8] = b"mpcium frost nonce offer v1";

/// The bytes a signer signs for an offer: domain, coordinator, key type, wallet, version, id,
/// commitments, each length-prefixed.
pub fn offer_statement(key: &NonceKey, id: &str, commitments_hex: &str) -> Vec<u8> {
    let mut out = OFFER_DOMAIN.to_vec();
    let mut field = |bytes: &[u8]| mpcium_api::attestation::push_field(&mut out, bytes);
    field(key.coordinator.as_bytes());
    field(key.key_type.as_str().as_bytes());
    field(key.wallet.as_bytes());
    field(&key.version.to_be_bytes());
    field(id.as_bytes());
    field(commitments_hex.as_bytes());
    out
}

/// A fresh nonce id.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

struct Held {
    id: String,
    nonce: HeldNonce,
    commitments: Vec<u8>,
}

/// The nonces this node drew and handed out, by coordinator and key. In memory only.
#[derive(Default)]
pub struct NonceBook(Mutex<HashMap<NonceKey, VecDeque<Held>>>);

impl NonceBook {
    /// Keep `nonce` (with its commitments' encoding) under `id` for `key`, dropping the oldest
    /// beyond [`PER_KEY`]. `false` when the book holds [`MAX_KEYS`] other keys already.
    pub fn keep(&self, key: &NonceKey, id: String, nonce: HeldNonce, commitments: Vec<u8>) -> bool {
        let Ok(mut book) = self.0.lock() else { return false };
        if !book.contains_key(key) && book.len() >= MAX_KEYS {
            return false;
        }
        let list = book.entry(key.clone()).or_default();
        list.push_back(Held { id, nonce, commitments });
        while list.len() > PER_KEY {
            list.pop_front();
        }
        true
    }

    /// How many nonces `key` has.
    pub fn held(&self, key: &NonceKey) -> usize {
        self.0.lock().ok().and_then(|b| b.get(key).map(VecDeque::len)).unwrap_or(0)
    }

    /// Take (remove) the nonce `id` of `key`, with its commitments' encoding: it can sign once.
    pub fn take(&self, key: &NonceKey, id: &str) -> Option<(HeldNonce, Vec<u8>)> {
        let mut book = self.0.lock().ok()?;
        let list = book.get_mut(key)?;
        let at = list.iter().position(|h| h.id == id)?;
        let held = list.remove(at)?;
        if list.is_empty() {
            book.remove(key);
        }
        Some((held.nonce, held.commitments))
    }
}

/// Which key a coordinator's stock is for (the coordinator is this node).
type StockKey = (KeyType, String, u32);

/// One co-signer's offers for one key, from one run of its process (`started_at_ms` of its ready
/// record: a restarted process holds none of the nonces behind them).
#[derive(Default)]
struct Offers {
    incarnation: Option<u64>,
    list: VecDeque<NonceOffer>,
}

impl Offers {
    /// Whether an offer is left that the co-signer's process `incarnation` (now) holds.
    fn usable(&self, incarnation: Option<u64>) -> bool {
        self.incarnation == incarnation && !self.list.is_empty()
    }
}

/// The commitments co-signers handed this node, by key and co-signer.
#[derive(Default)]
pub struct CommitmentStock(Mutex<HashMap<StockKey, HashMap<String, Offers>>>);

impl CommitmentStock {
    /// Add `node`'s offers for a key, made by its process `incarnation`, dropping its oldest
    /// beyond [`PER_KEY`] (as the signer does) and any of an earlier process.
    pub fn add(
        &self,
        key_type: KeyType,
        wallet: &str,
        version: u32,
        node: &str,
        incarnation: Option<u64>,
        offers: Vec<NonceOffer>,
    ) {
        if offers.is_empty() {
            return;
        }
        let Ok(mut stock) = self.0.lock() else { return };
        if !stock.contains_key(&(key_type, wallet.to_owned(), version)) && stock.len() >= MAX_KEYS {
            return;
        }
        let held = stock
            .entry((key_type, wallet.to_owned(), version))
            .or_default()
            .entry(node.to_owned())
            .or_default();
        if held.incarnation != incarnation {
            *held = Offers { incarnation, list: VecDeque::new() };
        }
        held.list.extend(offers);
        while held.list.len() > PER_KEY {
            held.list.pop_front();
        }
    }

    /// Whether `node`, as its process `incarnation` (now), has an offer for the key.
    pub fn has(
        &self,
        key_type: KeyType,
        wallet: &str,
        version: u32,
        node: &str,
        incarnation: Option<u64>,
    ) -> bool {
        self.0.lock().ok().is_some_and(|s| {
            s.get(&(key_type, wallet.to_owned(), version))
                .and_then(|m| m.get(node))
                .is_some_and(|o| o.usable(incarnation))
        })
    }

    /// One offer of each of `nodes` (the newest), each made by its current process
    /// (`incarnation`), or none at all when one of them has none.
    pub fn take(
        &self,
        key_type: KeyType,
        wallet: &str,
        version: u32,
        nodes: &[String],
        incarnation: impl Fn(&str) -> Option<u64>,
    ) -> Option<Vec<NonceUse>> {
        let mut stock = self.0.lock().ok()?;
        let by_node = stock.get_mut(&(key_type, wallet.to_owned(), version))?;
        if !nodes.iter().all(|n| by_node.get(n).is_some_and(|o| o.usable(incarnation(n)))) {
            return None;
        }
        nodes
            .iter()
            .map(|n| {
                let offer = by_node.get_mut(n)?.list.pop_back()?;
                Some(NonceUse { node: n.clone(), offer })
            })
            .collect()
    }

    /// Drop `node`'s offers for the key (it refused one: it lost them).
    pub fn forget(&self, key_type: KeyType, wallet: &str, version: u32, node: &str) {
        if let Ok(mut stock) = self.0.lock()
            && let Some(by_node) = stock.get_mut(&(key_type, wallet.to_owned(), version))
        {
            by_node.remove(node);
        }
    }
}

/// What the nonce exchange did, for `/metrics`.
#[derive(Debug, Default)]
pub struct NonceCounters {
    /// FROST signatures this node coordinated with nonces drawn ahead (one round).
    pub used: AtomicU64,
    /// FROST signatures this node coordinated in full (two rounds): no offers, or one refused.
    pub full: AtomicU64,
    /// Nonces named in a session start that this node did not hold.
    pub refused: AtomicU64,
}

impl NonceCounters {
    /// Count a coordinated FROST signature by how it ran.
    pub fn count(&self, drawn_ahead: bool) {
        let c = if drawn_ahead { &self.used } else { &self.full };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(coordinator: &str) -> NonceKey {
        NonceKey {
            coordinator: coordinator.into(),
            key_type: KeyType::Ed25519,
            wallet: "w".into(),
            version: 1,
        }
    }

    fn share() -> mpcium_tss::eddsa::KeyShare {
        use mpcium_tss::{ExecutionContext, ExecutionId, Operation, simulate};
        let ids = [1u16, 2];
        let exec = ExecutionId::new(&ExecutionContext {
            operation: Operation::Keygen,
            key_type: KeyType::Ed25519,
            wallet_id: "w",
            key_version: 1,
            participants: &["a", "b"],
            new_participants: &[],
            request_id: "k",
        });
        let parties =
            ids.iter().map(|&p| (p, mpcium_tss::eddsa::Keygen::new(exec, p, &ids, 1).unwrap())).collect();
        simulate(parties).remove(0).1.unwrap()
    }

    #[test]
    fn a_nonce_is_taken_once_for_its_own_coordinator_and_key_only() {
        let share = share();
        let book = NonceBook::default();
        let (nonce, c) = mpcium_tss::eddsa::Nonce::draw(&share).unwrap();
        assert!(book.keep(&key("n0"), "id1".into(), HeldNonce::Ed25519(nonce), c.clone()));
        assert_eq!(book.held(&key("n0")), 1);
        assert!(book.take(&key("n1"), "id1").is_none(), "another coordinator");
        let other_version = NonceKey { version: 2, ..key("n0") };
        assert!(book.take(&other_version, "id1").is_none(), "another key version");
        let (_, taken) = book.take(&key("n0"), "id1").expect("held");
        assert_eq!(taken, c);
        assert!(book.take(&key("n0"), "id1").is_none(), "one-shot");
        // Bounded per key: the oldest go first.
        for i in 0..PER_KEY + 3 {
            let (nonce, c) = mpcium_tss::eddsa::Nonce::draw(&share).unwrap();
            book.keep(&key("n0"), format!("n{i}"), HeldNonce::Ed25519(nonce), c);
        }
        assert_eq!(book.held(&key("n0")), PER_KEY);
        assert!(book.take(&key("n0"), "n0").is_none());
        assert!(book.take(&key("n0"), &format!("n{}", PER_KEY + 2)).is_some());
    }

    #[test]
    fn the_stock_hands_out_one_offer_per_node_or_none() {
        let stock = CommitmentStock::default();
        let offer =
            |id: &str| NonceOffer { id: id.into(), commitments: "00".into(), signature: String::new() };
        stock.add(KeyType::Ed25519, "w", 1, "n1", Some(7), vec![offer("a"), offer("b"), offer("c")]);
        assert!(stock.has(KeyType::Ed25519, "w", 1, "n1", Some(7)));
        assert!(!stock.has(KeyType::Taproot, "w", 1, "n1", Some(7)));
        assert!(!stock.has(KeyType::Ed25519, "w", 1, "n1", Some(8)), "n1 restarted since");
        let both = ["n1".to_owned(), "n2".to_owned()];
        assert!(stock.take(KeyType::Ed25519, "w", 1, &both, |_| Some(7)).is_none(), "n2 has none");
        assert!(stock.take(KeyType::Ed25519, "w", 1, &both[..1], |_| Some(8)).is_none(), "another process");
        let one = stock.take(KeyType::Ed25519, "w", 1, &both[..1], |_| Some(7)).unwrap();
        assert_eq!(one[0].offer.id, "c", "newest first");
        // Offers of a new process replace those of the old one.
        stock.add(KeyType::Ed25519, "w", 1, "n1", Some(8), vec![offer("d")]);
        assert!(!stock.has(KeyType::Ed25519, "w", 1, "n1", Some(7)));
        let one = stock.take(KeyType::Ed25519, "w", 1, &both[..1], |_| Some(8)).unwrap();
        assert_eq!(one[0].offer.id, "d");
        assert!(stock.take(KeyType::Ed25519, "w", 1, &both[..1], |_| Some(8)).is_none(), "a held one only");
        stock.add(KeyType::Ed25519, "w", 1, "n1", Some(8), vec![offer("e")]);
        stock.forget(KeyType::Ed25519, "w", 1, "n1");
        assert!(!stock.has(KeyType::Ed25519, "w", 1, "n1", Some(8)));
    }

    #[test]
    fn the_offer_statement_binds_every_field() {
        let base = offer_statement(&key("n0"), "id", "ab");
        assert_ne!(base, offer_statement(&key("n1"), "id", "ab"));
        assert_ne!(base, offer_statement(&NonceKey { key_type: KeyType::Taproot, ..key("n0") }, "id", "ab"));
        assert_ne!(base, offer_statement(&NonceKey { version: 2, ..key("n0") }, "id", "ab"));
        assert_ne!(base, offer_statement(&key("n0"), "id2", "ab"));
        assert_ne!(base, offer_statement(&key("n0"), "id", "abcd"));
        let (held, _) = HeldNonce::draw_ed25519(&share()).unwrap();
        assert_eq!(format!("{held:?}"), "HeldNonce(<secret>)");
        assert!(held.into_taproot().is_none(), "an EdDSA nonce is not a Taproot one");
    }
}
