//! Task and network programs run under the simulator with faults, property-suite invariants (`coil_fuzz::sim_program`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coil_fuzz::sim_program(data));
