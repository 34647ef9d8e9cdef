//! The ecosystem's traits on coil's types, each behind an optional feature
//! (all off by default; the README's feature table lists what each pulls in).
//!
//! - `futures-core`: every stream coil makes implements
//!   [`futures_core::Stream`] as well as coil's own
//!   [`Stream`](crate::stream::Stream), and [`StreamCompat`] carries any
//!   stream across in either direction (why coil keeps its own trait:
//!   `docs/decisions/0013-futures-core.md`).
//!
//! This module owns those adapters and trait impls; it adds no behaviour to
//! coil's types, and nothing in coil depends on it.

#[cfg(feature = "futures-core")]
mod stream;

#[cfg(feature = "futures-core")]
pub use stream::StreamCompat;
