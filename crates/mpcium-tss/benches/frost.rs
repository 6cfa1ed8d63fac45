//! FROST (EdDSA on Ed25519, Taproot BIP340 on secp256k1) and resharing benchmarks, every party
//! simulated in one thread, so each figure is the total CPU of all parties of one run.
//!
//! `cargo bench -p mpcium-tss --bench frost`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group};
use mpcium_tss::curve::{Curve, Secp256k1};
use mpcium_tss::frost::{KeyShare, Keygen, Reshare, ReshareResult, Sign, Suite};
use mpcium_tss::reshare::{self, OldKey, Roster, evaluate_commitments};
use mpcium_tss::{ExecutionContext, ExecutionId, KeyType, Operation, PartyId, ProtocolError, simulate};
use zeroize::Zeroizing;

const SHAPES: [(u16, u16, &str); 2] = [(3, 1, "2-of-3"), (5, 2, "3-of-5")];

fn exec(operation: Operation, key_type: KeyType) -> ExecutionId {
    ExecutionId::new(&ExecutionContext {
        operation,
        key_type,
        wallet_id: "bench",
        key_version: 1,
        participants: &[],
        new_participants: &[],
        request_id: "bench",
    })
}

/// How a signing run of a suite starts.
type StartSign<S> = fn(ExecutionId, &KeyShare<S>, &[PartyId]) -> Result<Sign<S>, ProtocolError>;

/// What differs between the suites in these benchmarks: the name, the key type and how a
/// signing run starts (plain, and with an HD path).
struct Bench<S: Suite> {
    name: &'static str,
    key_type: KeyType,
    sign: StartSign<S>,
    sign_hd: StartSign<S>,
}

fn eddsa() -> Bench<mpcium_tss::eddsa::Ed25519Suite> {
    Bench {
        name: "eddsa",
        key_type: KeyType::Ed25519,
        sign: |id, s, signers| mpcium_tss::eddsa::Sign::new(id, s, signers, b"bench message"),
        sign_hd: |id, s, signers| {
            mpcium_tss::eddsa::Sign::with_derivation(
                id,
                s,
                signers,
                b"bench message",
                &[7; 32],
                &[44, 501, 0, 0],
            )
        },
    }
}

/// Taproot: BIP86 output key (a merkle root costs the same: one more hash input).
fn taproot() -> Bench<mpcium_tss::taproot::TaprootSuite> {
    Bench {
        name: "taproot",
        key_type: KeyType::Taproot,
        sign: |id, s, signers| mpcium_tss::taproot::Sign::new(id, s, signers, &[1; 32], None),
        sign_hd: |id, s, signers| {
            mpcium_tss::taproot::Sign::with_derivation(
                id,
                s,
                signers,
                &[1; 32],
                None,
                &[7; 32],
                &[86, 0, 0, 0],
            )
        },
    }
}

fn keygen<S: Suite>(key_type: KeyType, n: u16, t: u16) -> Vec<KeyShare<S>> {
    let ids: Vec<PartyId> = (1..=n).collect();
    let id = exec(Operation::Keygen, key_type);
    let parties = ids.iter().map(|&p| (p, Keygen::<S>::new(id, p, &ids, t).expect("keygen input"))).collect();
    simulate(parties).into_iter().map(|(_, r)| r.expect("keygen")).collect()
}

fn sign_once<S: Suite>(start: StartSign<S>, key_type: KeyType, shares: &[KeyShare<S>], signers: &[PartyId]) {
    let id = exec(Operation::Sign, key_type);
    let parties = shares[..signers.len()]
        .iter()
        .map(|s| (s.party(), start(id, s, signers).expect("sign input")))
        .collect();
    let out = simulate(parties);
    assert!(out.iter().all(|(_, r)| r.is_ok()));
    black_box(out);
}

fn bench_suite<S: Suite>(c: &mut Criterion, bench: &Bench<S>) {
    let (name_of, kt) = (bench.name, bench.key_type);
    for (n, t, name) in SHAPES {
        c.bench_function(&format!("{name_of} keygen {name}"), |b| {
            b.iter(|| black_box(keygen::<S>(kt, n, t)))
        });

        let shares = keygen::<S>(kt, n, t);
        let signers: Vec<PartyId> = (1..=t + 1).collect();
        c.bench_function(&format!("{name_of} sign {name}"), |b| {
            b.iter(|| sign_once(bench.sign, kt, &shares, &signers))
        });
        c.bench_function(&format!("{name_of} sign {name} with HD path"), |b| {
            b.iter(|| sign_once(bench.sign_hd, kt, &shares, &signers))
        });

        let refresh_id = exec(Operation::Refresh, kt);
        c.bench_function(&format!("{name_of} refresh {name}"), |b| {
            b.iter(|| {
                let parties = shares
                    .iter()
                    .map(|s| (s.party(), Reshare::refresh(refresh_id, s, &signers).expect("refresh input")))
                    .collect();
                black_box(simulate(parties))
            })
        });

        // Reshare to a fresh committee of the same shape: t+1 old holders deal, n newcomers receive.
        let reshare_id = exec(Operation::Reshare, kt);
        let mut members: Vec<reshare::Member> =
            signers.iter().map(|&o| reshare::Member { id: o, old: Some(o), new: None }).collect();
        members.extend((1..=n).map(|j| reshare::Member { id: 100 + j, old: None, new: Some(j) }));
        let roster = Roster::new(members).expect("roster");
        let old = shares[0].old_key();
        c.bench_function(&format!("{name_of} reshare {name} to {n} new holders"), |b| {
            b.iter(|| {
                let parties = roster
                    .members()
                    .iter()
                    .map(|m| {
                        let share = m.old.map(|o| &shares[usize::from(o) - 1]);
                        let p = Reshare::new(reshare_id, m.id, roster.clone(), t, old.clone(), share);
                        (m.id, p.expect("reshare input"))
                    })
                    .collect();
                let out = simulate(parties);
                assert!(
                    out.iter()
                        .all(|(_, r)| matches!(r, Ok(ReshareResult::Share(_) | ReshareResult::Retired)))
                );
                black_box(out)
            })
        });
    }
}

fn bench_frost(c: &mut Criterion) {
    bench_suite(c, &eddsa());
    bench_suite(c, &taproot());
}

/// A secp256k1 key split by a dealer polynomial (the resharing input).
fn split_secp(n: u16, t: u16) -> (OldKey<Secp256k1>, Vec<k256::Scalar>) {
    let coeffs: Vec<k256::Scalar> = (0..=t).map(|_| Secp256k1::random_scalar()).collect();
    let commitments: Vec<_> = coeffs.iter().map(|c| Secp256k1::generator() * *c).collect();
    let shares = (1..=n)
        .map(|i| {
            let x = Secp256k1::scalar_from_u64(u64::from(i));
            coeffs.iter().rev().fold(Secp256k1::scalar_from_u64(0), |acc, c| acc * x + *c)
        })
        .collect();
    let public_shares = (1..=n).map(|i| (i, evaluate_commitments::<Secp256k1>(&commitments, i))).collect();
    (OldKey::new(t, commitments[0], public_shares), shares)
}

fn bench_secp256k1_reshare(c: &mut Criterion) {
    for (n, t, name) in SHAPES {
        let (old, shares) = split_secp(n, t);
        let committee: Vec<PartyId> = (1..=n).collect();
        let signers: Vec<PartyId> = (1..=t + 1).collect();
        let id = exec(Operation::Refresh, KeyType::Secp256k1);
        c.bench_function(&format!("secp256k1 generic refresh {name}"), |b| {
            b.iter_batched(
                || {
                    committee
                        .iter()
                        .map(|&p| {
                            let secret =
                                signers.contains(&p).then(|| Zeroizing::new(shares[usize::from(p) - 1]));
                            (
                                p,
                                reshare::refresh(id, p, &committee, &signers, old.clone(), secret)
                                    .expect("input"),
                            )
                        })
                        .collect::<Vec<_>>()
                },
                |parties| black_box(simulate(parties)),
                BatchSize::SmallInput,
            )
        });
    }
}

/// CPU milliseconds per run of `f` (all parties together), over `runs` runs: this process's
/// CPU time (CLOCK_PROCESS_CPUTIME_ID), so the summary is not inflated by other processes on a
/// shared machine.
fn cpu_ms_per_run(runs: u32, mut f: impl FnMut()) -> f64 {
    let cpu = || {
        std::time::Duration::try_from(rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime))
            .expect("a process CPU time is never negative")
    };
    let before = cpu();
    for _ in 0..runs {
        f();
    }
    (cpu() - before).as_secs_f64() * 1000.0 / f64::from(runs)
}

fn cpu_summary_of<S: Suite>(bench: &Bench<S>) {
    for (n, t, name) in SHAPES {
        let shares = keygen::<S>(bench.key_type, n, t);
        let signers: Vec<PartyId> = (1..=t + 1).collect();
        let keygen_ms = cpu_ms_per_run(50, || {
            black_box(keygen::<S>(bench.key_type, n, t));
        });
        let sign_ms = cpu_ms_per_run(2000, || sign_once(bench.sign, bench.key_type, &shares, &signers));
        println!(
            "CPU time, all parties of one run, {} {name}: keygen {keygen_ms:.3} ms, sign {sign_ms:.3} ms",
            bench.name
        );
    }
}

fn cpu_summary() {
    cpu_summary_of(&eddsa());
    cpu_summary_of(&taproot());
}

criterion_group!(benches, bench_frost, bench_secp256k1_reshare);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    cpu_summary();
}
