//! The ecosystem's traits on coil's types, each behind an optional feature
//! (all off by default; the README's feature table lists what each pulls in).
//!
//! - `futures-core`: every stream coil makes implements
//!   [`futures_core::Stream`] as well as coil's own
//!   [`Stream`](crate::stream::Stream), and [`StreamCompat`] carries any
//!   stream across in either direction (why coil keeps its own trait:
//!   `docs/decisions/0013-futures-core.md`).
//! - `futures-io`: [`Compat`] puts a TCP or Unix stream (or a half) or a
//!   [`File`](crate::fs::File) behind `futures_io::{AsyncRead,
//!   AsyncBufRead, AsyncWrite}`, with a buffer of its own (one copy per byte;
//!   cancellation stays lossless).
//! - `hyper`: hyper 1.x runs on coil: `hyper::rt::{Read, Write}` for
//!   [`Compat`], [`HyperExecutor`] (spawns on the running loop) and
//!   [`HyperTimer`] (coil's sleeps). See `examples/hyper_server.rs`.
//!
//! This module owns those adapters and trait impls; it adds no behaviour to
//! coil's types, and nothing in coil depends on it.

#[cfg(feature = "futures-core")]
mod stream;

#[cfg(feature = "futures-core")]
pub use stream::StreamCompat;

#[cfg(any(feature = "futures-io", feature = "hyper"))]
mod io;
#[cfg(any(feature = "futures-io", feature = "hyper"))]
pub use io::{Compat, LocalBoxFuture, OwnedRead, OwnedWrite};

#[cfg(feature = "futures-io")]
mod futures_io;

#[cfg(feature = "hyper")]
mod hyper;
#[cfg(feature = "hyper")]
pub use self::hyper::{HyperExecutor, HyperTimer};
