//! `BufReader` over arbitrary chunkings against std's `BufRead` (`coil_fuzz::buf_reader_lines`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| coil_fuzz::buf_reader_lines(data));
