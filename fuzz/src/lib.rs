//! coil's fuzz harnesses. Each entry function turns arbitrary bytes into a
//! sequence of operations and checks the result against a plain model, like
//! tokio's `fuzz_linked_list`; the targets in `fuzz_targets/` are one-liners
//! calling them. Any panic is a finding.
//!
//! The harnesses use coil's public API where it reaches what they check
//! (`buf_reader_lines`, `sim_program`, and most of `run_queue` and
//! `op_lifecycle`); internal structures and the loop's hand-driven steps come
//! from `coil::fuzz`, a small module of hooks compiled only under
//! `cfg(fuzzing)` (which cargo-fuzz sets) and not part of coil's API.
//!
//! Layout: one module per target, each exporting its one entry function and
//! reading its input with [`Bytes`]. The simulator programs of `sim_program`
//! are the property suites' (`tests/support/props/`, included by path).

mod buf_reader_lines;
mod intrusive_list;
mod op_lifecycle;
#[path = "../../tests/support/props/mod.rs"]
mod props;
mod run_queue;
mod sim_program;
mod task_state;
mod timer_wheel;

pub use buf_reader_lines::buf_reader_lines;
pub use intrusive_list::intrusive_list;
pub use op_lifecycle::op_lifecycle;
pub use run_queue::run_queue;
pub use sim_program::sim_program;
pub use task_state::task_state;
pub use timer_wheel::timer_wheel;

/// Reads little-endian numbers off the input; `None` once it is used up.
pub(crate) struct Bytes<'a>(pub(crate) &'a [u8]);

impl Bytes<'_> {
    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }
}
