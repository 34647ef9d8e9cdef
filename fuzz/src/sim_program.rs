//! Simulator programs decoded from bytes: the task and network programs of
//! the property suites (`tests/support/props/`, shared with
//! `tests/rt/sim_props.rs`), with their invariants, under a seed and faults the
//! input chooses.

use coil::sim::Faults;

use crate::Bytes;
use crate::props::{Cancel, ConnPlan, NetProgram, TaskProgram, Worker, check_outcome};

/// Bytes → a [`TaskProgram`] or a [`NetProgram`] plus its seed and faults,
/// run under the simulator; any invariant the property suites check failing
/// is a finding. Bounded: at most 12 workers of 8 steps and 40 queue items,
/// or 4 connections of at most 2 000 bytes in at most ~64 writes and reads
/// each (virtual time is cheap: sleeps jump the clock).
pub fn sim_program(data: &[u8]) {
    let mut b = Bytes(data);
    let (Some(kind), Some(seed)) = (b.u8(), b.u32()) else {
        return;
    };
    let seed = u64::from(seed);
    if kind.is_multiple_of(2) {
        TaskProgram::decode(&mut b).run(seed);
    } else {
        let program = NetProgram::decode(&mut b);
        let (outcomes, _) = program.run(seed);
        for o in &outcomes {
            check_outcome(o, program.losses_possible());
        }
    }
}

trait Decode: Sized {
    fn decode(b: &mut Bytes<'_>) -> Self;
}

impl Decode for TaskProgram {
    fn decode(b: &mut Bytes<'_>) -> TaskProgram {
        let items = usize::from(b.u8().unwrap_or(0) % 40);
        let qcap = usize::from(b.u8().unwrap_or(0) % 4);
        let workers = 1 + usize::from(b.u8().unwrap_or(0) % 12);
        let workers = (0..workers)
            .map(|_| {
                let head = b.u8().unwrap_or(0);
                let cancel = match head >> 4 {
                    0..=11 => Cancel::Never,
                    12 | 13 => Cancel::Now,
                    n => Cancel::After(u64::from(n - 14) * 10 + u64::from(head & 7)),
                };
                let steps = (0..head % 9)
                    .map_while(|_| {
                        // Kind in the low byte, then a 32-bit argument: up
                        // to 4 294 967 ms (~50 days) for sleeps, clamped by
                        // the runner to 3 hours.
                        let kind = u64::from(b.u8()?);
                        let arg = u64::from(b.u32().unwrap_or(0));
                        Some((arg << 8) | kind)
                    })
                    .collect();
                Worker { steps, cancel }
            })
            .collect();
        TaskProgram {
            items,
            qcap,
            workers,
        }
    }
}

impl Decode for NetProgram {
    fn decode(b: &mut Bytes<'_>) -> NetProgram {
        // Each fault up to the property suite's largest value.
        let mut p = |max: f64| f64::from(b.u8().unwrap_or(0)) / 255.0 * max;
        let faults = Faults {
            short_reads: p(0.6),
            short_writes: p(0.6),
            eagain: p(0.3),
            reset: p(0.03),
            cancel_race: p(0.6),
            refuse_connect: p(0.2),
        };
        let conns = 1 + usize::from(b.u8().unwrap_or(0) % 4);
        let conns = (0..conns)
            .map(|c| {
                let len = usize::from(b.u16().unwrap_or(0) % 2000);
                let data = (0..len).map(|i| (i * 7 + c) as u8).collect();
                // At most ~64 writes and reads per connection (before short
                // reads and writes split them): tiny chunks on short data only.
                let min = (len / 64).max(1);
                let chunks = (0..4)
                    .map(|_| min + usize::from(b.u16().unwrap_or(u16::MAX) % 3000))
                    .collect();
                let rbuf = min + usize::from(b.u16().unwrap_or(u16::MAX) % 4096);
                let t = b.u16().unwrap_or(0);
                let read_timeout_us = if t.is_multiple_of(2) {
                    0
                } else {
                    50 + u64::from(t % 2000)
                };
                ConnPlan {
                    data,
                    chunks,
                    rbuf,
                    read_timeout_us,
                }
            })
            .collect();
        NetProgram { faults, conns }
    }
}
