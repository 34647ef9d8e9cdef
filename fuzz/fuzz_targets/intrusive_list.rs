//! The owned task list and the waiter list against `VecDeque` models (`coil_fuzz::intrusive_list`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coil_fuzz::intrusive_list(data));
