//! The key pool: keys made ahead of their wallets (`key_pool.size`), so that a keygen request
//! hands a finished key to its wallet instead of running three DKGs while the client waits.
//! The sessions that make and hand over pooled keys live in `service/keypool.rs`.
//!
//! Ownership: a pooled key is *owned* by the node that coordinated its keygen; every node of
//! the cluster (a keygen's committee is the whole configured cluster) stores its share under
//! the same id. Only the owner hands it to a wallet, as the coordinator of that wallet's keygen
//! request, so two coordinators never race for one key.
//!
//! Who may start a pool keygen: a participant joins only when its own `key_pool.size` is not
//! 0, the committee and threshold are its own config, and only as often as a token bucket per
//! owner allows ([`FILL_BURST_MIN`], [`FILL_PER_SEC`], plus one session back for each pooled key
//! the owner hands to a wallet for a client's signed request): pool keygens need no client
//! request, so nothing else bounds how much work a malicious owner makes an honest node do.
//! A participant keeps at most [`KeyPool::max_held`] keys of one owner and evicts the oldest.
//!
//! Single use: a holder hands its share of a pooled key over only after (1) recording the
//! hand-over cluster-wide, create-only (`Registry::mark_pooled_key_used`: a copied disk cannot
//! hand it to a second wallet), (2) an agreement round in which every holder shows the digest
//! of the same key (`mpcium_tss::agree`: no holder stores the wallet while another refuses),
//! then (3) in one durable transaction that deletes the pooled record and creates the wallet's
//! share records (`Store::assign_pooled_key`). Pooled keys are never backed up.
//!
//! An id is `kp-<owner>-<16 hex: creation ms><8 hex: random>`: ids of one owner sort oldest
//! first.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::limits::TokenBucket;

/// The least burst of pool keygens a participant lets one owner start: the burst is
/// `max(size, FILL_BURST_MIN)`, room to fill a whole pool at start-up.
pub const FILL_BURST_MIN: u32 = 4;
/// Pool keygens per second a participant lets one owner start once its burst is spent, on top
/// of one per pooled key handed to a wallet. A keygen costs each node about half a second of
/// CPU: this rate bounds an owner with no clients behind it to a tenth of a core here.
pub const FILL_PER_SEC: f64 = 0.2;
/// How long a node must have taken part in no client session before it starts a pool keygen.
pub const QUIET_BEFORE_FILL: std::time::Duration = std::time::Duration::from_secs(1);
/// How many owners' buckets a participant keeps (owners are cluster nodes, so few).
const MAX_BUCKETS: usize = 1024;

/// `key_pool.*` as the service uses it.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyPoolSettings {
    /// Keys this node keeps made ahead as owner (0 disables the pool).
    pub size: usize,
}

/// A parsed pool id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolId {
    /// The node that made it (and alone hands it over).
    pub owner: String,
    text: String,
}

impl PoolId {
    /// A fresh id of `owner`.
    pub fn new(owner: &str) -> Self {
        let ms = crate::registry::now_ms();
        let text = format!("{}{ms:016x}{:08x}", Self::prefix(owner), OsRng.next_u32());
        Self { owner: owner.to_owned(), text }
    }

    /// The prefix of every id of `owner`: a store scan narrows by it, but it is not a test of
    /// ownership (node ids may contain `-`): use [`Self::owned_by`].
    pub fn prefix(owner: &str) -> String {
        format!("kp-{owner}-")
    }

    /// The ids among `ids` that `owner` made, parsed and compared, in the order given.
    pub fn owned_by(ids: impl IntoIterator<Item = String>, owner: &str) -> Vec<Self> {
        ids.into_iter().filter_map(|t| Self::parse(&t)).filter(|id| id.owner == owner).collect()
    }

    /// Parse an id; `None` if it is not in the format above.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("kp-")?;
        let (owner, stamp) = rest.rsplit_once('-')?;
        if owner.is_empty()
            || stamp.len() != 24
            || !stamp.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        Some(Self { owner: owner.to_owned(), text: text.to_owned() })
    }

    /// The id as stored and sent.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Why a stored pooled key does not decode.
#[derive(Debug, thiserror::Error)]
#[error("malformed pooled key record: {0}")]
pub struct PooledKeyError(&'static str);

/// A pooled key as one holder stores it: the committee and threshold it was made with, and
/// this holder's three shares (ECDSA, EdDSA, Taproot, as a keygen stores them).
pub struct PooledKey {
    /// The ordered committee (the cluster when it was made).
    pub participants: Vec<String>,
    /// Its threshold.
    pub threshold: u32,
    /// The shares, in the order of a keygen's kinds (ECDSA, EdDSA, Taproot).
    pub shares: [Zeroizing<Vec<u8>>; 3],
}

const RECORD_VERSION: u8 = 1;

impl PooledKey {
    /// The stored form: version byte, threshold (u32 BE), the committee (u16 count, each a u16
    /// length and the id), then each share (u32 length and the bytes).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            16 + self.shares.iter().map(|s| s.len() + 4).sum::<usize>()
                + self.participants.iter().map(|p| p.len() + 2).sum::<usize>(),
        ));
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.threshold.to_be_bytes());
        out.extend_from_slice(&(self.participants.len() as u16).to_be_bytes());
        for p in &self.participants {
            out.extend_from_slice(&(p.len() as u16).to_be_bytes());
            out.extend_from_slice(p.as_bytes());
        }
        for share in &self.shares {
            out.extend_from_slice(&(share.len() as u32).to_be_bytes());
            out.extend_from_slice(share);
        }
        out
    }

    /// Decode [`Self::encode`]'s form.
    pub fn decode(bytes: &[u8]) -> Result<Self, PooledKeyError> {
        let mut r = Reader(bytes);
        if r.take(1)?[0] != RECORD_VERSION {
            return Err(PooledKeyError("unknown record version"));
        }
        let threshold = u32::from_be_bytes(r.array()?);
        let count = u16::from_be_bytes(r.array()?);
        let mut participants = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let len = u16::from_be_bytes(r.array()?);
            let id = std::str::from_utf8(r.take(usize::from(len))?).map_err(|_| PooledKeyError("node id"))?;
            participants.push(id.to_owned());
        }
        let mut share = || -> Result<Zeroizing<Vec<u8>>, PooledKeyError> {
            let len = u32::from_be_bytes(r.array()?) as usize;
            Ok(Zeroizing::new(r.take(len)?.to_vec()))
        };
        let shares = [share()?, share()?, share()?];
        if !r.0.is_empty() {
            return Err(PooledKeyError("trailing bytes"));
        }
        Ok(Self { participants, threshold, shares })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PooledKeyError> {
        if self.0.len() < n {
            return Err(PooledKeyError("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PooledKeyError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

/// Counters of the key pool, for `/metrics`.
#[derive(Debug, Default)]
pub struct KeyPoolCounters {
    /// Pooled keys this node owns now (last count).
    pub owned: std::sync::atomic::AtomicU64,
    /// Pool keygens this node started that succeeded.
    pub made: std::sync::atomic::AtomicU64,
    /// Keygens this node coordinated with a pooled key.
    pub used: std::sync::atomic::AtomicU64,
    /// Keygens this node coordinated with their DKGs (no pooled key, or one not handed over).
    pub missed: std::sync::atomic::AtomicU64,
    /// Pool keygens of other owners this node refused: over the owner's rate.
    pub throttled: std::sync::atomic::AtomicU64,
    /// Pooled keys this node refused to hand over because it had handed them to another wallet
    /// before (cluster-wide record): copies brought back by a copied store.
    pub reuse_refused: std::sync::atomic::AtomicU64,
}

/// The pool's state in memory: settings, each owner's bucket, the ids being handed over.
#[derive(Default)]
pub struct KeyPool {
    settings: KeyPoolSettings,
    buckets: Mutex<HashMap<String, TokenBucket>>,
    reserved: Mutex<HashSet<String>>,
    /// When this node last took part in a session for a client (keygen, signing, reshare).
    last_client_work: Mutex<Option<Instant>>,
}

impl KeyPool {
    /// A pool with these settings.
    pub fn new(settings: KeyPoolSettings) -> Self {
        Self { settings, ..Default::default() }
    }

    /// Whether the pool is on here.
    pub fn enabled(&self) -> bool {
        self.settings.size > 0
    }

    /// Keys to keep made ahead as owner.
    pub fn size(&self) -> usize {
        self.settings.size
    }

    /// Keys of one owner a participant keeps at most: twice its own pool size, room for an
    /// owner's pool plus what its failed or crashed fills left behind here.
    pub fn max_held(&self) -> usize {
        2 * self.settings.size
    }

    fn rate(&self) -> mpcium_config::Rate {
        mpcium_config::Rate {
            per_second: FILL_PER_SEC,
            burst: u32::try_from(self.settings.size).unwrap_or(u32::MAX).max(FILL_BURST_MIN),
        }
    }

    /// Take a token for one pool keygen of `owner` at `now`; false when its bucket is empty.
    pub fn admit_fill(&self, owner: &str, now: Instant) -> bool {
        let rate = self.rate();
        let Ok(mut buckets) = self.buckets.lock() else { return false };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(owner) {
            // Full buckets hold nothing worth keeping: a new one starts full as well.
            buckets.retain(|_, b| !b.is_full(now));
            if buckets.len() >= MAX_BUCKETS {
                return false;
            }
        }
        buckets.entry(owner.to_owned()).or_insert_with(|| TokenBucket::full(rate, now)).try_take(now)
    }

    /// `owner`'s pooled key went to a wallet here for a client's signed request: give the owner
    /// one pool keygen back, so a pool keeps pace with real keygens. Each credit stands for one
    /// new wallet, which exists once, so a malicious owner gains nothing it could not get by
    /// asking.
    pub fn credit_fill(&self, owner: &str) {
        if let Ok(mut buckets) = self.buckets.lock()
            && let Some(b) = buckets.get_mut(owner)
        {
            b.give_back();
        }
    }

    /// Reserve `id` for one hand-over at a time on this node (the owner); false if reserved.
    pub fn reserve(&self, id: &str) -> bool {
        self.reserved.lock().is_ok_and(|mut r| r.insert(id.to_owned()))
    }

    /// Release a reservation.
    pub fn release(&self, id: &str) {
        if let Ok(mut r) = self.reserved.lock() {
            r.remove(id);
        }
    }

    /// This node takes part in a session for a client now: pool keygens wait until it has been
    /// quiet for [`QUIET_BEFORE_FILL`] (a keygen costs every node about half a second of CPU,
    /// which a burst of client requests must not queue behind; the pool fills in the gaps).
    pub fn note_client_work(&self, now: Instant) {
        if let Ok(mut last) = self.last_client_work.lock() {
            *last = Some(now);
        }
    }

    /// Whether this node took part in no client session for [`QUIET_BEFORE_FILL`] up to `now`.
    pub fn quiet(&self, now: Instant) -> bool {
        self.last_client_work
            .lock()
            .is_ok_and(|last| last.is_none_or(|at| now.saturating_duration_since(at) >= QUIET_BEFORE_FILL))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_owner_and_sort_oldest_first() {
        let a = PoolId::new("node-1");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = PoolId::new("node-1");
        assert!(a.as_str() < b.as_str());
        assert_eq!(PoolId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(a.owner, "node-1");
        assert!(a.as_str().starts_with(&PoolId::prefix("node-1")));
        let other = PoolId::new("node");
        let owned = PoolId::owned_by([a.as_str().to_owned(), other.as_str().to_owned()], "node");
        assert_eq!(owned, vec![other]);
        for bad in [
            "",
            "kp-",
            "kp-node0",
            "kp--0123456789abcdef01234567",
            "kp-n-0123456789ABCDEF01234567",
            "x-n-0123456789abcdef01234567",
            "kp-n-0123",
        ] {
            assert_eq!(PoolId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_record_round_trips_and_a_damaged_one_is_refused() {
        let key = PooledKey {
            participants: vec!["node0".into(), "node1".into(), "node2".into()],
            threshold: 1,
            shares: [Zeroizing::new(vec![1; 40]), Zeroizing::new(vec![2; 3]), Zeroizing::new(Vec::new())],
        };
        let bytes = key.encode();
        let back = PooledKey::decode(&bytes).unwrap();
        assert_eq!(back.participants, key.participants);
        assert_eq!(back.threshold, 1);
        assert_eq!(
            back.shares.iter().map(|s| s.to_vec()).collect::<Vec<_>>(),
            vec![vec![1; 40], vec![2; 3], vec![]]
        );
        for cut in 0..bytes.len() {
            assert!(PooledKey::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(PooledKey::decode(&longer).is_err());
    }

    #[test]
    fn an_owner_gets_a_burst_then_the_rate_and_a_session_back_per_wallet() {
        let pool = KeyPool::new(KeyPoolSettings { size: 2 });
        let now = Instant::now();
        for _ in 0..FILL_BURST_MIN {
            assert!(pool.admit_fill("node1", now));
        }
        assert!(!pool.admit_fill("node1", now), "burst spent");
        assert!(pool.admit_fill("node2", now), "buckets are per owner");
        pool.credit_fill("node1");
        assert!(pool.admit_fill("node1", now), "a hand-over gives one back");
        assert!(!pool.admit_fill("node1", now));
        assert!(pool.admit_fill("node1", now + std::time::Duration::from_secs_f64(1.0 / FILL_PER_SEC)));
    }

    #[test]
    fn pool_keygens_wait_for_a_quiet_node() {
        let pool = KeyPool::new(KeyPoolSettings { size: 1 });
        let now = Instant::now();
        assert!(pool.quiet(now), "no client work yet");
        pool.note_client_work(now);
        assert!(!pool.quiet(now + QUIET_BEFORE_FILL / 2));
        assert!(pool.quiet(now + QUIET_BEFORE_FILL));
    }

    #[test]
    fn a_reserved_id_is_not_handed_out_twice() {
        let pool = KeyPool::new(KeyPoolSettings { size: 1 });
        assert!(pool.reserve("kp-a-1"));
        assert!(!pool.reserve("kp-a-1"));
        pool.release("kp-a-1");
        assert!(pool.reserve("kp-a-1"));
    }
}
