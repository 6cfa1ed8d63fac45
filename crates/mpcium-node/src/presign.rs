//! The ECDSA presignature pool: which presignatures a node keeps, how they are named, and
//! which wallets are kept warm. The sessions that make and use them live in the service.
//!
//! Ownership: a presignature is *owned* by the node that started its presign session; every
//! signer stores its own share of it under the same id. Only the owner ever announces a
//! signature with it (as coordinator), so two coordinators never race for one entry; the
//! owner reserves an id in memory while a session uses it, and every signer deletes its share
//! durably (`Store::take_presignature`) and then records the use cluster-wide
//! (`Registry::mark_presignature_used`, create-only) before running the online round, so a
//! crash can lose a presignature but never reuse one, and neither can a restored disk.
//!
//! Who may start a presign session: a participant joins only when the owner (the coordinator)
//! and this node both hold the wallet's key and the wallet is *warm* here (listed in
//! `presign.wallets`, or, when none are listed, a wallet this node signed with ECDSA as
//! coordinator or co-signer), and only as often as a token bucket per owner allows
//! ([`PRESIGN_BURST_MIN`], [`PRESIGN_REFILL_PER_SEC`]): presign sessions need no client request,
//! so nothing else bounds how many a malicious owner runs against an honest node.
//!
//! An id is `v<key version>-<owner>-<16 hex: creation ms><8 hex: random>-<signer ids, '.'>`:
//! ids of one owner sort oldest first, and a coordinator can see from the id alone whether the
//! signers it needs are ready. Presignatures are bound to one key version; a reshare makes the
//! old ones useless and they are deleted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use mpcium_tss::PartyId;
use rand_core::{OsRng, RngCore};

/// How many presignatures of one owner and wallet a signer keeps at most. An owner that
/// crashed after taking its own copy leaves its co-signers' copies behind; past this bound
/// the oldest are evicted when the owner makes new ones.
pub const MAX_HELD_PER_OWNER: usize = 256;

/// How many wallets a node keeps warm on its own (when `presign.wallets` is empty).
const MAX_AUTO_WALLETS: usize = 1024;

/// The least burst of presign sessions a participant lets one owner start: the burst is
/// `max(2 × pool_size, PRESIGN_BURST_MIN)`, room for an owner to refill a whole pool at once.
pub const PRESIGN_BURST_MIN: usize = 16;
/// Presign sessions per second a participant lets one owner start once its burst is spent, on
/// top of the sessions earned by use (below): what an owner may run with no client behind it.
pub const PRESIGN_REFILL_PER_SEC: f64 = 5.0;
/// Presign sessions an owner runs at once while it refills a pool at or below half its size
/// (each its own presignature), less one per client request it has in flight: under load the
/// pool waits. Above half it runs one, and none while a client request is in flight
/// ([`PresignPool::refill_sessions`]).
pub const REFILL_IN_FLIGHT: usize = 4;
/// How many owners' buckets a participant keeps (owners are key holders, so few).
const MAX_BUCKETS: usize = 1024;
/// How long an owner leaves a co-signer out of a wallet's refills after it refused them because
/// the wallet is not warm there. The co-signer turns warm when it signs with the wallet, which
/// the owner does not see: it is asked again after this.
pub const COLD_RETRY: std::time::Duration = std::time::Duration::from_secs(30);
/// How many (wallet, co-signer) refusals an owner remembers.
const MAX_COLD: usize = 4096;

/// `presign.*` as the service uses it.
#[derive(Debug, Clone, Default)]
pub struct PresignSettings {
    /// Presignatures this node keeps ready per wallet as owner (0 disables the pool).
    pub pool_size: usize,
    /// Wallets to keep warm; empty means every wallet this node coordinated an ECDSA signature for.
    pub wallets: Vec<String>,
}

/// A parsed presignature id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresigId {
    /// The key version it signs with.
    pub version: u32,
    /// The node that started it.
    pub owner: String,
    /// The signers' party ids (sorted).
    pub signers: Vec<PartyId>,
    text: String,
}

impl PresigId {
    /// A fresh id.
    pub fn new(version: u32, owner: &str, signers: &[PartyId]) -> Self {
        let mut signers = signers.to_vec();
        signers.sort_unstable();
        let ms = crate::registry::now_ms();
        let list: Vec<String> = signers.iter().map(|p| p.to_string()).collect();
        let text =
            format!("{}{ms:016x}{:08x}-{}", Self::prefix(version, owner), OsRng.next_u32(), list.join("."));
        Self { version, owner: owner.to_owned(), signers, text }
    }

    /// The prefix of every id of `owner` for key `version`: a store scan narrows by it, but it
    /// is not a test of ownership (node ids may contain `-`, so the ids of `node-1-x` start with
    /// `node-1`'s prefix too): use [`Self::owned_by`].
    pub fn prefix(version: u32, owner: &str) -> String {
        format!("v{version}-{owner}-")
    }

    /// The ids among `ids` that `owner` made for key `version`, parsed and compared (malformed
    /// ids and other owners' are left out), in the order given.
    pub fn owned_by(ids: impl IntoIterator<Item = String>, version: u32, owner: &str) -> Vec<Self> {
        ids.into_iter()
            .filter_map(|t| Self::parse(&t))
            .filter(|id| id.version == version && id.owner == owner)
            .collect()
    }

    /// Parse an id; `None` if it is not in the format above.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix('v')?;
        let (version, rest) = rest.split_once('-')?;
        let version: u32 = version.parse().ok()?;
        let (rest, signers) = rest.rsplit_once('-')?;
        let (owner, stamp) = rest.rsplit_once('-')?;
        if owner.is_empty() || stamp.len() != 24 || !stamp.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let signers: Vec<PartyId> = signers.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
        let sorted = signers.windows(2).all(|w| w[0] < w[1]);
        if signers.len() < 2 || !sorted || signers.contains(&0) {
            return None;
        }
        Some(Self { version, owner: owner.to_owned(), signers, text: text.to_owned() })
    }

    /// The id as stored and sent.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Counters of the pool, for `/metrics`.
#[derive(Debug, Default)]
pub struct PoolCounters {
    /// Presignatures this node owns now, over all warm wallets (last count).
    pub owned: AtomicU64,
    /// Presign sessions this node started that succeeded.
    pub made: AtomicU64,
    /// Signatures coordinated with a presignature.
    pub used: AtomicU64,
    /// ECDSA signatures coordinated without one (pool empty, signers not ready, or a
    /// presignature refused).
    pub missed: AtomicU64,
    /// Presign sessions of other owners this node refused: over the owner's rate.
    pub throttled: AtomicU64,
    /// Presign sessions of other owners this node refused: the wallet is not warm here.
    pub refused_not_warm: AtomicU64,
    /// Presignatures this node refused to use because it had used them before (cluster-wide
    /// record): copies brought back by a restored or copied store.
    pub reuse_refused: AtomicU64,
}

/// The pool's in-memory state on one node.
#[derive(Debug, Default)]
pub struct PresignPool {
    settings: PresignSettings,
    auto_wallets: Mutex<VecDeque<String>>,
    reserved: Mutex<HashSet<String>>,
    wake: tokio::sync::Notify,
    rotation: AtomicUsize,
    /// Wallets this node co-signed with ECDSA (when `presign.wallets` is empty): warm for
    /// joining others' presign sessions.
    cosigned: Mutex<VecDeque<String>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// (wallet, co-signer) pairs whose presign sessions the co-signer refused as not warm, and
    /// when: left out of this wallet's refills for [`COLD_RETRY`].
    cold: Mutex<HashMap<(String, String), Instant>>,
    /// Other owners' presign sessions this node takes part in now (not client work).
    joined: std::sync::Arc<AtomicUsize>,
}

/// Counts one presign session of another owner as in flight until dropped.
pub struct JoinedPresign(std::sync::Arc<AtomicUsize>);

impl Drop for JoinedPresign {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One owner's token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl PresignPool {
    /// A pool with these settings.
    pub fn new(settings: PresignSettings) -> Self {
        Self { settings, ..Default::default() }
    }

    /// Whether the pool is on.
    pub fn enabled(&self) -> bool {
        self.settings.pool_size > 0
    }

    /// Presignatures to keep per wallet.
    pub fn size(&self) -> usize {
        self.settings.pool_size
    }

    /// The wallets to keep warm now.
    pub fn wallets(&self) -> Vec<String> {
        if !self.settings.wallets.is_empty() {
            return self.settings.wallets.clone();
        }
        self.auto_wallets.lock().map(|w| w.iter().cloned().collect()).unwrap_or_default()
    }

    /// A wallet signed with ECDSA through this node: keep it warm (when wallets are not listed)
    /// and wake the refiller.
    pub fn note_signing(&self, wallet: &str) {
        if !self.enabled() {
            return;
        }
        if self.settings.wallets.is_empty()
            && let Ok(mut w) = self.auto_wallets.lock()
            && !w.iter().any(|x| x == wallet)
        {
            if w.len() >= MAX_AUTO_WALLETS {
                w.pop_front();
            }
            w.push_back(wallet.to_owned());
        }
        self.wake.notify_one();
    }

    /// A wallet this node co-signed with ECDSA: warm for joining presign sessions (when wallets
    /// are not listed).
    pub fn note_cosigning(&self, wallet: &str) {
        if self.settings.wallets.is_empty()
            && let Ok(mut w) = self.cosigned.lock()
            && !w.iter().any(|x| x == wallet)
        {
            if w.len() >= MAX_AUTO_WALLETS {
                w.pop_front();
            }
            w.push_back(wallet.to_owned());
        }
    }

    /// Whether `wallet` is warm here: listed, or (none listed) signed through this node.
    pub fn is_warm(&self, wallet: &str) -> bool {
        if !self.settings.wallets.is_empty() {
            return self.settings.wallets.iter().any(|w| w == wallet);
        }
        let has = |m: &Mutex<VecDeque<String>>| m.lock().is_ok_and(|w| w.iter().any(|x| x == wallet));
        has(&self.auto_wallets) || has(&self.cosigned)
    }

    /// `node` refused a presign session for `wallet` at `now` because the wallet is not warm
    /// there: leave it out of this wallet's refills for a while (else every other session of a
    /// refill fails against it, and the pool fills at a fraction of its pace).
    pub fn note_cold(&self, wallet: &str, node: &str, now: Instant) {
        let Ok(mut cold) = self.cold.lock() else { return };
        if cold.len() >= MAX_COLD {
            cold.retain(|_, at| now.saturating_duration_since(*at) < COLD_RETRY);
        }
        if cold.len() < MAX_COLD {
            cold.insert((wallet.to_owned(), node.to_owned()), now);
        }
    }

    /// The co-signers to leave out of `wallet`'s refills at `now` (see [`Self::note_cold`]).
    pub fn cold_cosigners(&self, wallet: &str, now: Instant) -> Vec<String> {
        let Ok(cold) = self.cold.lock() else { return Vec::new() };
        cold.iter()
            .filter(|((w, _), at)| w == wallet && now.saturating_duration_since(**at) < COLD_RETRY)
            .map(|((_, node), _)| node.clone())
            .collect()
    }

    /// How many presign sessions to run at once for a pool holding `have` presignatures while
    /// `busy` client requests and sessions are in flight on this node. A pool above half its size
    /// has reserve: it refills one at a time and only when the node is idle, so a stream of
    /// requests one at a time does not queue behind refills (each presignature costs about a
    /// full signature's work); at or below half it refills [`REFILL_IN_FLIGHT`] at once, less
    /// what is in flight.
    pub fn refill_sessions(&self, have: usize, busy: usize) -> usize {
        let at_once = if have * 2 > self.size() { 1 } else { REFILL_IN_FLIGHT };
        at_once.saturating_sub(busy)
    }

    /// Count a presign session of another owner that this node takes part in: such sessions
    /// are not client work, and must not hold back this node's own refills (when every owner
    /// refills at once, each node is in another's session most of the time).
    pub fn joined_presign(&self) -> JoinedPresign {
        self.joined.fetch_add(1, Ordering::Relaxed);
        JoinedPresign(self.joined.clone())
    }

    /// Other owners' presign sessions this node takes part in now.
    pub fn joined_presigns(&self) -> usize {
        self.joined.load(Ordering::Relaxed)
    }

    /// The burst of presign sessions one owner may start here.
    pub fn burst(&self) -> usize {
        (2 * self.settings.pool_size).max(PRESIGN_BURST_MIN)
    }

    /// Take a token for one presign session of `owner` at `now`; false when its bucket is empty.
    pub fn admit_presign(&self, owner: &str, now: Instant) -> bool {
        let burst = self.burst() as f64;
        let Ok(mut buckets) = self.buckets.lock() else { return false };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(owner) {
            // Full buckets hold nothing worth keeping: a new one starts full as well.
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * PRESIGN_REFILL_PER_SEC < burst
            });
            if buckets.len() >= MAX_BUCKETS {
                return false;
            }
        }
        let b = buckets.entry(owner.to_owned()).or_insert(Bucket { tokens: burst, at: now });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * PRESIGN_REFILL_PER_SEC).min(burst);
        b.at = now.max(b.at);
        if b.tokens < 1.0 {
            return false;
        }
        b.tokens -= 1.0;
        true
    }

    /// `owner`'s presignature was used here for a client's signed request (taken and recorded
    /// used cluster-wide): give the owner one presign session back, so a refill keeps pace with
    /// real use. Each credit stands for one client request, which the cluster-wide replay
    /// record makes single-use, so a malicious owner gains nothing it could not get by asking.
    pub fn credit_presign(&self, owner: &str, now: Instant) {
        let burst = self.burst() as f64;
        let Ok(mut buckets) = self.buckets.lock() else { return };
        if let Some(b) = buckets.get_mut(owner) {
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            b.tokens = (b.tokens + elapsed * PRESIGN_REFILL_PER_SEC + 1.0).min(burst);
            b.at = now.max(b.at);
        }
    }

    /// Wait until there is refilling to do (or `period` passed).
    pub async fn wait(&self, period: std::time::Duration) {
        let _ = tokio::time::timeout(period, self.wake.notified()).await;
    }

    /// A counter to rotate co-signers by.
    pub fn next_rotation(&self) -> usize {
        self.rotation.fetch_add(1, Ordering::Relaxed)
    }

    /// Reserve `id` for one signing session; false if another session holds it.
    pub fn reserve(&self, id: &str) -> bool {
        self.reserved.lock().map(|mut r| r.insert(id.to_owned())).unwrap_or(false)
    }

    /// Release a reservation (the entry is gone by then, or the session never started).
    pub fn release(&self, id: &str) {
        if let Ok(mut r) = self.reserved.lock() {
            r.remove(id);
        }
        self.wake.notify_one();
    }
}

impl PoolCounters {
    /// Count a signature that used a presignature, or one that could not.
    pub fn count_use(&self, used: bool) {
        let c = if used { &self.used } else { &self.missed };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_age() {
        let a = PresigId::new(3, "node-0-x", &[3, 1]);
        assert_eq!(a.signers, vec![1, 3]);
        let parsed = PresigId::parse(a.as_str()).unwrap();
        assert_eq!(parsed, a);
        assert_eq!(parsed.owner, "node-0-x");
        assert!(a.as_str().starts_with(&PresigId::prefix(3, "node-0-x")));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = PresigId::new(3, "node-0-x", &[1, 3]);
        assert!(a.as_str() < b.as_str(), "older ids sort first");
    }

    #[test]
    fn ownership_is_parsed_not_prefix_matched() {
        let mine = PresigId::new(1, "node-1", &[1, 2]);
        let other = PresigId::new(1, "node-1-x", &[1, 2]);
        let old = PresigId::new(0, "node-1", &[1, 2]);
        // The ambiguity this guards against: the other owner's id has our prefix.
        assert!(other.as_str().starts_with(&PresigId::prefix(1, "node-1")));
        let all = [&mine, &other, &old].map(|i| i.as_str().to_owned());
        assert_eq!(PresigId::owned_by(all.clone(), 1, "node-1"), vec![mine.clone()]);
        assert_eq!(PresigId::owned_by(all.clone(), 1, "node-1-x"), vec![other.clone()]);
        assert_eq!(PresigId::owned_by(all.clone(), 0, "node-1"), vec![old]);
        assert!(PresigId::owned_by(all, 1, "node").is_empty());
        assert!(PresigId::owned_by(["garbage".to_owned()], 1, "node-1").is_empty());
    }

    #[test]
    fn a_pool_with_reserve_refills_one_at_a_time_and_only_when_idle() {
        let pool = PresignPool::new(PresignSettings { pool_size: 48, wallets: vec![] });
        assert_eq!(pool.refill_sessions(47, 0), 1);
        assert_eq!(pool.refill_sessions(25, 0), 1);
        assert_eq!(pool.refill_sessions(25, 1), 0, "busy: the reserve waits");
        assert_eq!(pool.refill_sessions(24, 0), REFILL_IN_FLIGHT, "at half: in parallel");
        assert_eq!(pool.refill_sessions(0, 1), REFILL_IN_FLIGHT - 1);
        assert_eq!(pool.refill_sessions(0, 9), 0, "under load the pool waits");
        let tiny = PresignPool::new(PresignSettings { pool_size: 1, wallets: vec![] });
        assert_eq!(tiny.refill_sessions(0, 0), REFILL_IN_FLIGHT);
    }

    #[test]
    fn cold_cosigners_are_left_out_for_a_while_per_wallet() {
        let pool = PresignPool::new(PresignSettings { pool_size: 3, wallets: vec![] });
        let t0 = Instant::now();
        assert!(pool.cold_cosigners("w", t0).is_empty());
        pool.note_cold("w", "node2", t0);
        assert_eq!(pool.cold_cosigners("w", t0), vec!["node2".to_string()]);
        assert!(pool.cold_cosigners("other", t0).is_empty(), "per wallet");
        let almost = t0 + COLD_RETRY - std::time::Duration::from_millis(1);
        assert_eq!(pool.cold_cosigners("w", almost), vec!["node2".to_string()]);
        assert!(pool.cold_cosigners("w", t0 + COLD_RETRY).is_empty(), "asked again after COLD_RETRY");
        // Bounded: a full memory drops what expired, and past the bound records nothing new.
        for i in 0..MAX_COLD {
            pool.note_cold(&format!("w{i}"), "n", t0);
        }
        pool.note_cold("late", "n", t0);
        assert!(pool.cold_cosigners("late", t0).is_empty());
        pool.note_cold("late", "n", t0 + COLD_RETRY);
        assert_eq!(pool.cold_cosigners("late", t0 + COLD_RETRY), vec!["n".to_string()]);
    }

    #[test]
    fn presign_sessions_per_owner_are_rate_limited() {
        let pool = PresignPool::new(PresignSettings { pool_size: 3, wallets: vec!["w".into()] });
        let burst = pool.burst();
        assert_eq!(burst, PRESIGN_BURST_MIN);
        let t0 = Instant::now();
        // A flood: the burst passes, then nothing.
        let admitted = (0..burst * 10).filter(|_| pool.admit_presign("flooder", t0)).count();
        assert_eq!(admitted, burst);
        // Another owner is not affected.
        assert!(pool.admit_presign("honest", t0));
        // Tokens come back at the refill rate, and no more than the burst.
        let later = t0 + std::time::Duration::from_secs(1);
        let refilled = (0..100).filter(|_| pool.admit_presign("flooder", later)).count();
        assert_eq!(refilled, PRESIGN_REFILL_PER_SEC as usize);
        let much_later = later + std::time::Duration::from_secs(3600);
        let refilled = (0..1000).filter(|_| pool.admit_presign("flooder", much_later)).count();
        assert_eq!(refilled, burst);
        // Each use of an owner's presignature gives one session back (never past the burst).
        assert!(!pool.admit_presign("flooder", much_later), "the burst was spent");
        pool.credit_presign("flooder", much_later);
        assert!(pool.admit_presign("flooder", much_later), "one use, one session");
        assert!(!pool.admit_presign("flooder", much_later), "and no more");
        for _ in 0..3 {
            pool.credit_presign("flooder", much_later);
        }
        assert_eq!((0..100).filter(|_| pool.admit_presign("flooder", much_later)).count(), 3);
        for _ in 0..burst * 2 {
            pool.credit_presign("flooder", much_later);
        }
        assert_eq!((0..1000).filter(|_| pool.admit_presign("flooder", much_later)).count(), burst);
        // A big pool gets a bigger burst.
        let big = PresignPool::new(PresignSettings { pool_size: 50, wallets: vec![] });
        assert_eq!(big.burst(), 100);
    }

    #[test]
    fn warm_wallets_are_listed_or_signed_here() {
        let listed = PresignPool::new(PresignSettings { pool_size: 2, wallets: vec!["a".into()] });
        listed.note_cosigning("b");
        listed.note_signing("c");
        assert!(listed.is_warm("a"));
        assert!(!listed.is_warm("b") && !listed.is_warm("c"));
        let auto = PresignPool::new(PresignSettings { pool_size: 2, wallets: vec![] });
        assert!(!auto.is_warm("a"));
        auto.note_signing("a");
        auto.note_cosigning("b");
        assert!(auto.is_warm("a") && auto.is_warm("b"));
        assert!(!auto.is_warm("c"));
        // Co-signing does not make this node an owner of the wallet's pool.
        assert_eq!(auto.wallets(), vec!["a".to_string()]);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "v1-node0-",
            "x1-node0-0000000000000000aaaaaaaa-1.2",
            "v1--0000000000000000aaaaaaaa-1.2",
            "v1-node0-00zz000000000000aaaaaaaa-1.2",
            "v1-node0-0000000000000000aaaaaaaa-1",
            "v1-node0-0000000000000000aaaaaaaa-2.1",
            "v1-node0-0000000000000000aaaaaaaa-0.1",
            "v1-node0-0000000000000000aaaaaaaa-1.x",
            "v-1-node0-0000000000000000aaaaaaaa-1.2",
        ] {
            assert_eq!(PresigId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn auto_wallets_are_bounded_and_reservations_exclusive() {
        let pool = PresignPool::new(PresignSettings { pool_size: 2, wallets: vec![] });
        for i in 0..(MAX_AUTO_WALLETS + 5) {
            pool.note_signing(&format!("w{i}"));
        }
        pool.note_signing("w1000");
        let w = pool.wallets();
        assert_eq!(w.len(), MAX_AUTO_WALLETS);
        assert_eq!(w[0], "w5");
        assert!(pool.reserve("id"));
        assert!(!pool.reserve("id"));
        pool.release("id");
        assert!(pool.reserve("id"));
        let listed = PresignPool::new(PresignSettings { pool_size: 2, wallets: vec!["a".into()] });
        listed.note_signing("b");
        assert_eq!(listed.wallets(), vec!["a".to_string()]);
        let off = PresignPool::new(PresignSettings::default());
        off.note_signing("b");
        assert!(off.wallets().is_empty());
    }
}
