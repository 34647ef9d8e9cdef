//! [`read_dir`]: a directory's entries as a [`Stream`] of [`DirEntry`],
//! read on the blocking pool in batches (io_uring has no `getdents` op).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::fs::FileType;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{Metadata, ops};
use crate::blocking::{BlockingTask, spawn_blocking};
use crate::stream::Stream;

/// Entries read from the directory in one trip to the blocking pool.
const BATCH: usize = 64;

/// One batch: the std iterator back, its entries, and whether it ended.
type Batch = (std::fs::ReadDir, VecDeque<io::Result<DirEntry>>, bool);

/// The entries of the directory at `path` (without `.` and `..`, in the
/// order the file system gives), as a [`Stream`] of `io::Result<DirEntry>`.
/// std's `read_dir`: opened on the blocking pool, then read there
/// 64 entries at a time.
///
/// # Errors
///
/// The OS error of the open: `NotFound`, `NotADirectory`,
/// `PermissionDenied`, ... An error while reading is an item.
///
/// ```
/// use coil::stream::StreamExt;
///
/// coil::run(async {
///     let mut entries = coil::fs::read_dir("/").await?;
///     let mut names = Vec::new();
///     while let Some(entry) = entries.next().await {
///         names.push(entry?.file_name());
///     }
///     assert!(names.iter().any(|n| n == "proc"));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_owned();
    let iter = ops::pool(move || std::fs::read_dir(path)).await?;
    Ok(ReadDir {
        iter: Some(iter),
        ready: VecDeque::new(),
        batch: None,
        done: false,
    })
}

/// The stream [`read_dir`] returns. Dropping it while a batch is being read
/// lets the pool finish that batch and drops it.
pub struct ReadDir {
    /// The std iterator, away on the pool while `batch` runs.
    iter: Option<std::fs::ReadDir>,
    ready: VecDeque<io::Result<DirEntry>>,
    batch: Option<BlockingTask<Batch>>,
    done: bool,
}

impl Stream for ReadDir {
    type Item = io::Result<DirEntry>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(entry) = this.ready.pop_front() {
                return Poll::Ready(Some(entry));
            }
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(batch) = &mut this.batch {
                let (iter, entries, end) = match Pin::new(batch).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(b)) => b,
                    Poll::Ready(Err(crate::TaskError::Panicked(p))) => p.resume(),
                    Poll::Ready(Err(_)) => unreachable!("pool jobs are never cancelled"),
                };
                this.batch = None;
                (this.iter, this.ready, this.done) = (Some(iter), entries, end);
                continue;
            }
            let Some(mut iter) = this.iter.take() else {
                return Poll::Ready(None);
            };
            this.batch = Some(spawn_blocking(move || {
                let mut entries = VecDeque::with_capacity(BATCH);
                for _ in 0..BATCH {
                    match iter.next() {
                        Some(e) => entries.push_back(e.and_then(DirEntry::from_std)),
                        None => return (iter, entries, true),
                    }
                }
                (iter, entries, false)
            }));
        }
    }
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir")
            .field("ready", &self.ready.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// An entry of a directory, from [`read_dir`]. Its name and type were read
/// with the directory (the type from `d_type`, or an `lstat` on the pool
/// where the file system gives none), so they need no further call.
#[derive(Debug, Clone)]
pub struct DirEntry {
    path: PathBuf,
    name: OsString,
    file_type: FileType,
}

impl DirEntry {
    fn from_std(e: std::fs::DirEntry) -> io::Result<DirEntry> {
        Ok(DirEntry {
            file_type: e.file_type()?,
            path: e.path(),
            name: e.file_name(),
        })
    }

    /// The entry's name, without its directory.
    pub fn file_name(&self) -> OsString {
        self.name.clone()
    }

    /// The directory's path joined with the entry's name.
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Its type (file, directory, symbolic link, ...), not following a
    /// symbolic link.
    pub fn file_type(&self) -> FileType {
        self.file_type
    }

    /// Its [`Metadata`], not following a symbolic link (std's
    /// `DirEntry::metadata`): [`symlink_metadata`](super::symlink_metadata)
    /// of its path.
    ///
    /// # Errors
    ///
    /// As `symlink_metadata` (`NotFound` if it was removed meanwhile).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        super::symlink_metadata(&self.path).await
    }
}
