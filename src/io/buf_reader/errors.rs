//! The two errors of [`BufReader`](super::BufReader) that carry data:
//! [`LimitOverrun`] (a line past the limit) and [`IncompleteRead`] (a short
//! `read_exact`), each inside an `io::Error`.

use std::fmt;
use std::io;

/// A line or record longer than the reader's [`limit`](BufReader::limit):
/// asyncio's `LimitOverrunError`. It arrives inside an `io::Error` of kind
/// `InvalidData`; get it back with [`LimitOverrun::of`] (or
/// `err.get_ref()` and `downcast_ref`). The bytes are still in the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitOverrun {
    consumed: usize,
    limit: usize,
}

impl LimitOverrun {
    pub(super) fn error(consumed: usize, limit: usize) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, LimitOverrun { consumed, limit })
    }

    /// The `LimitOverrun` inside `err`, if that is what it carries.
    pub fn of(err: &io::Error) -> Option<&LimitOverrun> {
        err.get_ref()?.downcast_ref()
    }

    /// asyncio's `consumed`: where the delimiter was found, or (not found)
    /// how many bytes were buffered and searched; always more than
    /// [`limit`](LimitOverrun::limit). Those bytes are still buffered.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// The reader's limit when the error was raised.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl fmt::Display for LimitOverrun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record longer than the limit: {} bytes without the delimiter, limit {}",
            self.consumed, self.limit
        )
    }
}

impl std::error::Error for LimitOverrun {}

/// The stream ended before [`BufReader::read_exact`] got its bytes:
/// asyncio's `IncompleteReadError`, with the bytes that did arrive
/// ([`partial`](IncompleteRead::partial)) and the count asked for. It
/// arrives inside an `io::Error` of kind `UnexpectedEof`; get it back with
/// [`IncompleteRead::of`] or `err.into_inner()` and `downcast`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncompleteRead {
    partial: Vec<u8>,
    expected: usize,
}

impl IncompleteRead {
    pub(super) fn error(partial: Vec<u8>, expected: usize) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            IncompleteRead { partial, expected },
        )
    }

    /// The `IncompleteRead` inside `err`, if that is what it carries.
    pub fn of(err: &io::Error) -> Option<&IncompleteRead> {
        err.get_ref()?.downcast_ref()
    }

    /// The bytes read before the stream ended (fewer than
    /// [`expected`](IncompleteRead::expected)).
    pub fn partial(&self) -> &[u8] {
        &self.partial
    }

    /// The bytes read before the stream ended, by value.
    pub fn into_partial(self) -> Vec<u8> {
        self.partial
    }

    /// How many bytes were asked for.
    pub fn expected(&self) -> usize {
        self.expected
    }
}

impl fmt::Display for IncompleteRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stream ended before the requested bytes arrived: {} of {} bytes read",
            self.partial.len(),
            self.expected
        )
    }
}

impl std::error::Error for IncompleteRead {}
