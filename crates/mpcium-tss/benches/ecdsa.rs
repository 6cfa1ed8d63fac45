//! DKLs23 ECDSA costs, every party in one process (the figures are the total CPU of all
//! parties): keygen, setup from Shamir shares (after a reshare), presign, online sign from a
//! presignature, full sign; 2-of-3 and 3-of-5; and the k256 multiplication forms keygen's cost
//! comes down to.
//!
//! Run: `cargo bench -p mpcium-tss --bench ecdsa`; with `ECDSA_PER_PARTY=1` it first prints
//! each party's own CPU time and bytes sent per protocol.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use k256::elliptic_curve::Generate;
use k256::{NonZeroScalar, ProjectivePoint, Scalar};
use mpcium_tss::ecdsa::{KeyShare, Keygen, Presign, Presignature, Setup, SetupInput, Sign, SignOnline};
use mpcium_tss::{Action, ExecutionId, PartyId, Protocol, simulate};
use zeroize::Zeroizing;

fn eid(tag: &str, counter: u64) -> ExecutionId {
    use k256::sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(tag.as_bytes());
    h.update(counter.to_be_bytes());
    ExecutionId(h.finalize().into())
}

fn keygen(t: u16, n: u16, id: ExecutionId) -> Vec<KeyShare> {
    let parties = (1..=n).map(|me| (me, Keygen::new(id, me, t, n).expect("keygen input"))).collect();
    simulate(parties).into_iter().map(|(_, r)| r.expect("keygen")).collect()
}

fn presign(shares: &[KeyShare], signers: &[PartyId], id: ExecutionId) -> Vec<(PartyId, Presignature)> {
    let parties = signers
        .iter()
        .map(|p| (*p, Presign::new(id, &shares[usize::from(*p) - 1], signers, None).expect("presign input")))
        .collect();
    simulate(parties).into_iter().map(|(p, r)| (p, r.expect("presign"))).collect()
}

fn setup_inputs(t: u16, n: u16) -> Vec<SetupInput> {
    let secret = *NonZeroScalar::generate();
    let coeffs: Vec<Scalar> =
        std::iter::once(secret).chain((0..t).map(|_| *NonZeroScalar::generate())).collect();
    let shares: BTreeMap<PartyId, Scalar> = (1..=n)
        .map(|i| {
            let x = Scalar::from(u64::from(i));
            (i, coeffs.iter().rev().fold(Scalar::ZERO, |acc, c| acc * x + c))
        })
        .collect();
    let point = |s: &Scalar| {
        k256::PublicKey::from_affine((ProjectivePoint::GENERATOR * s).to_affine()).expect("non-zero")
    };
    let public_key = point(&secret);
    let public_shares: BTreeMap<PartyId, k256::PublicKey> =
        shares.iter().map(|(i, s)| (*i, point(s))).collect();
    (1..=n)
        .map(|me| SetupInput {
            me,
            threshold: t,
            share: Zeroizing::new(shares[&me]),
            public_key,
            public_shares: public_shares.clone(),
        })
        .collect()
}

/// CPU time of the calling thread (Linux `schedstat`), so other load on the machine does not count.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|ns| ns.parse::<u64>().ok()))
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// Run one protocol with every party, charging each call to its party; returns per-party CPU
/// time and bytes sent (a broadcast counted once per recipient).
fn per_party<P: Protocol>(parties: Vec<(PartyId, P)>) -> BTreeMap<PartyId, (Duration, usize)> {
    let ids: Vec<PartyId> = parties.iter().map(|(p, _)| *p).collect();
    let mut running: BTreeMap<PartyId, P> = parties.into_iter().collect();
    let mut cost: BTreeMap<PartyId, (Duration, usize)> = BTreeMap::new();
    let mut inbox: BTreeMap<PartyId, Vec<(PartyId, Vec<u8>)>> = BTreeMap::new();
    while !running.is_empty() {
        let mut finished = Vec::new();
        for (id, party) in running.iter_mut() {
            let start = thread_cpu();
            for (from, data) in inbox.remove(id).unwrap_or_default() {
                party.message(from, data);
            }
            let mut sent = 0;
            loop {
                match party.poke() {
                    Ok(Action::Wait) => break,
                    Ok(Action::SendMany(data)) => {
                        for to in ids.iter().filter(|to| *to != id) {
                            sent += data.len();
                            inbox.entry(*to).or_default().push((*id, data.clone()));
                        }
                    }
                    Ok(Action::SendPrivate(to, data)) => {
                        sent += data.len();
                        inbox.entry(to).or_default().push((*id, data));
                    }
                    Ok(Action::Return(out)) => {
                        black_box(out);
                        finished.push(*id);
                        break;
                    }
                    Err(e) => panic!("party {id}: {e}"),
                }
            }
            let entry = cost.entry(*id).or_default();
            entry.0 += thread_cpu().saturating_sub(start);
            entry.1 += sent;
        }
        for id in finished {
            running.remove(&id);
        }
    }
    cost
}

fn report(what: &str, runs: &[BTreeMap<PartyId, (Duration, usize)>]) {
    let k = runs.len().max(1) as f64;
    let mut per_party: BTreeMap<PartyId, (Duration, usize)> = BTreeMap::new();
    for run in runs {
        for (p, (cpu, sent)) in run {
            let e = per_party.entry(*p).or_default();
            e.0 += *cpu;
            e.1 += *sent;
        }
    }
    let total: Duration = per_party.values().map(|c| c.0).sum();
    let busiest = per_party.values().map(|c| c.0).max().unwrap_or_default();
    let max_sent = per_party.values().map(|c| c.1).max().unwrap_or_default();
    eprintln!(
        "{what} (mean of {} runs): CPU total {:.2} ms, busiest party {:.2} ms, most sent by one party {:.0} bytes",
        runs.len(),
        total.as_secs_f64() * 1e3 / k,
        busiest.as_secs_f64() * 1e3 / k,
        max_sent as f64 / k
    );
}

/// Instrumented runs of each protocol, printed before the timed benchmarks. The thread CPU
/// clock advances in scheduler steps, so short protocols are averaged over many runs.
fn print_per_party_costs(t: u16, n: u16, name: &str) {
    let signers: Vec<PartyId> = (1..=t + 1).collect();
    let counter = std::cell::Cell::new(100u64);
    let next = || {
        counter.set(counter.get() + 1);
        eid(name, counter.get())
    };
    let keygen_runs: Vec<_> = (0..2)
        .map(|_| {
            let id = next();
            per_party((1..=n).map(|me| (me, Keygen::new(id, me, t, n).expect("input"))).collect())
        })
        .collect();
    report(&format!("{name} keygen"), &keygen_runs);
    let setup_runs: Vec<_> = (0..2)
        .map(|_| {
            let id = next();
            per_party(
                setup_inputs(t, n).into_iter().map(|i| (i.me, Setup::new(id, i).expect("input"))).collect(),
            )
        })
        .collect();
    report(&format!("{name} setup"), &setup_runs);
    let shares = keygen(t, n, next());
    let share = |p: &PartyId| &shares[usize::from(*p) - 1];
    let reps = 100;
    let sign_runs: Vec<_> = (0..reps)
        .map(|_| {
            let id = next();
            per_party(
                signers
                    .iter()
                    .map(|p| (*p, Sign::new(id, share(p), &signers, [1; 32], None).expect("input")))
                    .collect(),
            )
        })
        .collect();
    report(&format!("{name} full sign"), &sign_runs);
    let presign_runs: Vec<_> = (0..reps)
        .map(|_| {
            let id = next();
            per_party(
                signers
                    .iter()
                    .map(|p| (*p, Presign::new(id, share(p), &signers, None).expect("input")))
                    .collect(),
            )
        })
        .collect();
    report(&format!("{name} presign"), &presign_runs);
    let online_runs: Vec<_> = (0..reps)
        .map(|_| {
            let presigs = presign(&shares, &signers, next());
            let id = next();
            per_party(presigs.into_iter().map(|(p, pre)| (p, SignOnline::new(id, pre, [1; 32]))).collect())
        })
        .collect();
    report(&format!("{name} online sign"), &online_runs);
}

fn bench(c: &mut Criterion) {
    let digest = [0x42u8; 32];
    for (t, n) in [(1u16, 3u16), (2, 5)] {
        let name = format!("{}-of-{n}", t + 1);
        // Opt-in (several minutes): `ECDSA_PER_PARTY=1 cargo bench -p mpcium-tss --bench ecdsa`.
        if std::env::var_os("ECDSA_PER_PARTY").is_some() {
            print_per_party_costs(t, n, &name);
        }
        let signers: Vec<PartyId> = (1..=t + 1).collect();
        // Every run gets a fresh execution id, as in production.
        let counter = std::cell::Cell::new(0u64);
        let next = |tag: &str| {
            counter.set(counter.get() + 1);
            eid(tag, counter.get())
        };

        let mut slow = c.benchmark_group(format!("ecdsa {name} setup"));
        slow.sample_size(10).measurement_time(Duration::from_secs(20));
        slow.bench_function("keygen", |b| b.iter(|| black_box(keygen(t, n, next("keygen")))));
        slow.bench_function("setup from shamir shares", |b| {
            b.iter_batched(
                || setup_inputs(t, n),
                |inputs| {
                    let id = next("setup");
                    let parties = inputs
                        .into_iter()
                        .map(|input| (input.me, Setup::new(id, input).expect("setup input")))
                        .collect();
                    for (_, r) in simulate(parties) {
                        black_box(r.expect("setup"));
                    }
                },
                BatchSize::PerIteration,
            )
        });
        slow.finish();

        let shares = keygen(t, n, next("bench key"));
        let mut fast = c.benchmark_group(format!("ecdsa {name} sign"));
        fast.sample_size(50);
        fast.bench_function("presign", |b| b.iter(|| black_box(presign(&shares, &signers, next("presign")))));
        fast.bench_function("online sign from presignature", |b| {
            b.iter_batched(
                || presign(&shares, &signers, next("presign")),
                |presigs| {
                    let id = next("online");
                    let parties =
                        presigs.into_iter().map(|(p, pre)| (p, SignOnline::new(id, pre, digest))).collect();
                    for (_, r) in simulate(parties) {
                        black_box(r.expect("online"));
                    }
                },
                BatchSize::PerIteration,
            )
        });
        fast.bench_function("full sign", |b| {
            b.iter(|| {
                let id = next("sign");
                let parties = signers
                    .iter()
                    .map(|p| {
                        (
                            *p,
                            Sign::new(id, &shares[usize::from(*p) - 1], &signers, digest, None)
                                .expect("input"),
                        )
                    })
                    .collect();
                for (_, r) in simulate(parties) {
                    black_box(r.expect("sign"));
                }
            })
        });
        fast.finish();
    }
}

/// The multiplication forms behind DKLs23 keygen's cost (BENCHMARKS.md, flamegraphs): `dkls23`
/// computes `G * a` and verifies its base-OT proofs (`G * a + P * b`, public values) with k256's
/// generic constant-time multiplication; k256 also has a precomputed table for `G` and a
/// variable-time double-base form for verification. What those would save is a change to
/// `dkls23` (not forked here); these figures size it.
fn multiplication_forms(c: &mut Criterion) {
    use k256::elliptic_curve::ops::MulByGeneratorVartime;
    let a = *NonZeroScalar::generate();
    let b = *NonZeroScalar::generate();
    let g = k256::AffinePoint::GENERATOR;
    let p = ProjectivePoint::GENERATOR * *NonZeroScalar::generate();
    let pa = p.to_affine();
    let mut group = c.benchmark_group("k256 multiplication forms");
    group.bench_function("G*a constant time, generic (dkls23)", |x| {
        x.iter(|| black_box(black_box(g) * black_box(a)))
    });
    group.bench_function("G*a constant time, precomputed table", |x| {
        x.iter(|| black_box(ProjectivePoint::mul_by_generator(black_box(&a))))
    });
    group.bench_function("G*a + P*b constant time (dkls23's proof checks)", |x| {
        x.iter(|| black_box(black_box(g) * black_box(a) + black_box(pa) * black_box(b)))
    });
    group.bench_function("G*a + P*b variable time, double base", |x| {
        x.iter(|| {
            black_box(ProjectivePoint::mul_by_generator_and_mul_add_vartime(
                black_box(&a),
                black_box(&b),
                black_box(&p),
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench, multiplication_forms);
criterion_main!(benches);
