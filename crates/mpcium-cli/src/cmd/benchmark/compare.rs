//! `benchmark --compare`: the operation's cryptography alone, every party simulated in this
//! process, measured in the same run as the cluster figure, so each end-to-end throughput
//! stands next to its limit on this machine (#16).
//!
//! The limit is what the crypto alone would allow if every core did nothing else: the CPU time
//! of all parties of one run (one thread, so process CPU time), spread over the cores
//! (`available_parallelism`). `ratio` = end-to-end throughput ÷ that limit; 1.0 would mean the
//! cluster spends nothing beyond the cryptography.

use std::time::{Duration, Instant};

use mpcium_tss::{ExecutionContext, ExecutionId, KeyType, Operation as Op, PartyId, simulate};
use serde::Serialize;

/// The crypto-only figure of one operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CryptoLimit {
    /// What was simulated, e.g. `FROST Ed25519 sign, 2-of-3`.
    pub what: String,
    /// Runs measured.
    pub runs: u32,
    /// CPU milliseconds of all parties of one run.
    pub cpu_ms_per_op: f64,
    /// Cores the limit assumes.
    pub cores: usize,
    /// `cores × 1000 / cpu_ms_per_op`.
    pub limit_ops_per_sec: f64,
    /// End-to-end successful throughput ÷ the limit (set once the load ran).
    pub ratio: Option<f64>,
}

/// What to simulate for a benchmark operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crypto {
    /// A signature with exactly t+1 of n shares.
    Sign(KeyType),
    /// One wallet: a DKG per key type.
    Keygen,
}

fn exec(operation: Op, key_type: KeyType) -> ExecutionId {
    ExecutionId::new(&ExecutionContext {
        operation,
        key_type,
        wallet_id: "compare",
        key_version: 0,
        participants: &[],
        new_participants: &[],
        request_id: "compare",
    })
}

/// This process's user + system CPU time (CLOCK_PROCESS_CPUTIME_ID).
fn cpu_time() -> Option<Duration> {
    Duration::try_from(rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime)).ok()
}

/// Run `one` for at least `budget` of wall time (and at least twice); CPU ms per run.
fn per_run(budget: Duration, mut one: impl FnMut()) -> Option<(u32, f64)> {
    one(); // warm up: tables, allocations
    let (start, cpu0) = (Instant::now(), cpu_time()?);
    let mut runs = 0u32;
    while runs < 2 || start.elapsed() < budget {
        one();
        runs += 1;
    }
    let cpu = cpu_time()?.checked_sub(cpu0)?;
    Some((runs, cpu.as_secs_f64() * 1000.0 / f64::from(runs)))
}

fn frost_keygen<S: mpcium_tss::frost::Suite>(
    key_type: KeyType,
    n: u16,
    t: u16,
) -> Vec<mpcium_tss::frost::KeyShare<S>> {
    let ids: Vec<PartyId> = (1..=n).collect();
    let id = exec(Op::Keygen, key_type);
    let parties =
        ids.iter().filter_map(|&p| mpcium_tss::frost::Keygen::<S>::new(id, p, &ids, t).ok().map(|k| (p, k)));
    simulate(parties.collect()).into_iter().filter_map(|(_, r)| r.ok()).collect()
}

fn ecdsa_keygen(n: u16, t: u16) -> Vec<mpcium_tss::ecdsa::KeyShare> {
    let id = exec(Op::Keygen, KeyType::Secp256k1);
    let parties = (1..=n).filter_map(|p| mpcium_tss::ecdsa::Keygen::new(id, p, t, n).ok().map(|k| (p, k)));
    simulate(parties.collect()).into_iter().filter_map(|(_, r)| r.ok()).collect()
}

/// Measure `crypto` for an `n`-node committee with threshold `t`, for about `budget`.
/// `None` when the shape is invalid or the CPU clock cannot be read.
pub fn measure(crypto: Crypto, n: u16, t: u16, budget: Duration) -> Option<CryptoLimit> {
    if t == 0 || t >= n {
        return None;
    }
    let signers: Vec<PartyId> = (1..=t + 1).collect();
    let shape = format!("{}-of-{n}", t + 1);
    let (what, (runs, cpu_ms)) = match crypto {
        Crypto::Sign(KeyType::Ed25519) => {
            use mpcium_tss::eddsa::{Ed25519Suite, Sign};
            let shares = frost_keygen::<Ed25519Suite>(KeyType::Ed25519, n, t);
            (shares.len() == usize::from(n)).then_some(())?;
            let id = exec(Op::Sign, KeyType::Ed25519);
            let run = || {
                let parties = shares[..signers.len()]
                    .iter()
                    .filter_map(|s| Sign::new(id, s, &signers, &[7; 32]).ok().map(|p| (s.party(), p)));
                std::hint::black_box(simulate(parties.collect()));
            };
            (format!("FROST Ed25519 sign, {shape}"), per_run(budget, run)?)
        }
        Crypto::Sign(KeyType::Taproot) => {
            use mpcium_tss::taproot::{Sign, TaprootSuite};
            let shares = frost_keygen::<TaprootSuite>(KeyType::Taproot, n, t);
            (shares.len() == usize::from(n)).then_some(())?;
            let id = exec(Op::Sign, KeyType::Taproot);
            let run = || {
                let parties = shares[..signers.len()]
                    .iter()
                    .filter_map(|s| Sign::new(id, s, &signers, &[7; 32], None).ok().map(|p| (s.party(), p)));
                std::hint::black_box(simulate(parties.collect()));
            };
            (format!("FROST secp256k1-tr (BIP340) sign, {shape}"), per_run(budget, run)?)
        }
        Crypto::Sign(KeyType::Secp256k1) => {
            let shares = ecdsa_keygen(n, t);
            (shares.len() == usize::from(n)).then_some(())?;
            let id = exec(Op::Sign, KeyType::Secp256k1);
            let run = || {
                let parties = shares[..signers.len()].iter().filter_map(|s| {
                    mpcium_tss::ecdsa::Sign::new(id, s, &signers, [7; 32], None).ok().map(|p| (s.id(), p))
                });
                std::hint::black_box(simulate(parties.collect()));
            };
            (format!("DKLs23 sign (presign + online), {shape}"), per_run(budget, run)?)
        }
        Crypto::Keygen => {
            use mpcium_tss::eddsa::Ed25519Suite;
            use mpcium_tss::taproot::TaprootSuite;
            let run = || {
                std::hint::black_box(ecdsa_keygen(n, t));
                std::hint::black_box(frost_keygen::<Ed25519Suite>(KeyType::Ed25519, n, t));
                std::hint::black_box(frost_keygen::<TaprootSuite>(KeyType::Taproot, n, t));
            };
            (
                format!("keygen of one wallet (DKLs23 + FROST Ed25519 + FROST Taproot), {shape}"),
                per_run(budget, run)?,
            )
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Some(CryptoLimit {
        what,
        runs,
        cpu_ms_per_op: cpu_ms,
        cores,
        limit_ops_per_sec: if cpu_ms > 0.0 { cores as f64 * 1000.0 / cpu_ms } else { f64::INFINITY },
        ratio: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eddsa_limit_is_measured_and_bounded_by_the_cores() {
        let limit =
            measure(Crypto::Sign(KeyType::Ed25519), 3, 1, Duration::from_millis(300)).expect("measured");
        assert!(limit.runs >= 2);
        assert!(limit.cpu_ms_per_op > 0.0, "{limit:?}");
        assert!(limit.limit_ops_per_sec.is_finite());
        assert!(limit.what.contains("2-of-3"));
        // An invalid shape measures nothing.
        assert!(measure(Crypto::Sign(KeyType::Ed25519), 1, 1, Duration::from_millis(10)).is_none());
    }
}
