//! Property suites on the simulator: random task programs and random network
//! traffic (with faults), checked against invariants.
//!
//! Each case is one seed: the seed generates the program *and* seeds the
//! simulation, so a failing case is replayed exactly by
//! `COIL_SIM_SEED=<seed> cargo test --test rt sim_props` (which runs only that
//! seed). `SIM_CASES=<n>` runs more cases (default 150 per suite; the `matrix-deep` tier of `.ci/run` runs 1 500). Seeds that
//! once failed are listed in `REGRESSIONS` and always run first.
//!
//! The programs, their runner and their invariants live in
//! `support/props/`, shared with the `sim_program` fuzz target (which
//! decodes programs from bytes instead of generating them from a seed).

#[path = "../support/props/mod.rs"]
mod props;

use std::cell::Cell;

use coil::sim::Builder;
use props::{NetProgram, Rng, TaskProgram, check_outcome};

/// Seeds that once failed (see the module docs); they always run.
const REGRESSIONS: &[u64] = &[];

/// The seeds to run: `COIL_SIM_SEED` alone, or the regressions then
/// `SIM_CASES` fresh ones derived from `base`.
fn seeds(base: u64) -> Vec<u64> {
    if std::env::var_os(coil::sim::SEED_ENV).is_some() {
        let seed = Builder::new().effective_seed();
        eprintln!("replaying seed {seed} only");
        return vec![seed];
    }
    let n: u64 = std::env::var("SIM_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let mut r = Rng::new(base);
    REGRESSIONS
        .iter()
        .copied()
        .chain((0..n).map(|_| r.next_u64()))
        .collect()
}

/// Run `case(seed)` for every seed; on failure, name the seed.
fn for_each_seed(base: u64, case: impl Fn(u64)) -> usize {
    let seeds = seeds(base);
    for &seed in &seeds {
        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(seed))) {
            eprintln!(
                "property case failed: seed {seed}; replay with {}={seed}",
                coil::sim::SEED_ENV
            );
            std::panic::resume_unwind(p);
        }
    }
    seeds.len()
}

// ----- suite 1: task programs -----

#[test]
fn task_programs() {
    let tasks = Cell::new(0);
    let n = for_each_seed(0x7A5C, |seed| {
        tasks.set(tasks.get() + TaskProgram::from_seed(seed).run(seed))
    });
    eprintln!("task_programs: {n} cases, {} tasks", tasks.get());
}

// ----- suite 2: network traffic with faults -----

#[test]
fn network_programs() {
    let bytes = Cell::new(0usize);
    let errors = Cell::new(0usize);
    let short = Cell::new(0usize);
    let n = for_each_seed(0x4E37, |seed| {
        let program = NetProgram::from_seed(seed);
        let (outcomes, _) = program.run(seed);
        for o in &outcomes {
            check_outcome(o, program.losses_possible());
            bytes.set(bytes.get() + o.echoed.len());
            errors
                .set(errors.get() + usize::from(o.client_err.is_some() || o.server_err.is_some()));
            short.set(short.get() + usize::from(o.echoed.len() < o.sent.len()));
        }
    });
    eprintln!(
        "network_programs: {n} cases, {} bytes echoed, {} connections saw an error, {} were cut short",
        bytes.get(),
        errors.get(),
        short.get()
    );
}

#[test]
fn network_programs_replay_exactly() {
    for seed in seeds(0x4E37).into_iter().take(10) {
        let program = NetProgram::from_seed(seed);
        let (_, a) = program.run(seed);
        let (_, b) = program.run(seed);
        assert_eq!(a.hash, b.hash, "seed {seed} did not replay");
        assert_eq!(a.events, b.events);
        assert_eq!(a.elapsed, b.elapsed);
    }
}
