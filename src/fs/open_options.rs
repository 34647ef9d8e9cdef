//! [`OpenOptions`]: how to open a file.

use std::io;
use std::path::Path;
use std::sync::Arc;

use coil_arch::op as kop;

use super::File;
use super::ops::{self, FileFd};

/// Options for opening a file, like std's `OpenOptions`: set the access mode
/// and creation flags, then [`open`](OpenOptions::open).
///
/// The open itself is `IORING_OP_OPENAT` under io_uring and runs on the
/// blocking pool under epoll. Files are always opened close-on-exec.
///
/// ```
/// use coil::fs::OpenOptions;
///
/// coil::run(async {
///     let path = std::env::temp_dir().join(format!("coil-doc-oo-{}", std::process::id()));
///     let f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path).await?;
///     f.write_all(b"first line\n".as_slice()).await.0?;
///     f.close().await?;
///
///     let f = OpenOptions::new().append(true).open(&path).await?;
///     f.write_all(b"second line\n".as_slice()).await.0?;
///     drop(f);
///     assert_eq!(coil::fs::read_to_string(&path).await?, "first line\nsecond line\n");
///     coil::fs::remove_file(&path).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
    custom_flags: i32,
}

/// The option setters: each stores its argument in the field of its name
/// and returns `self` for chaining.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)+) => {$(
        $(#[$doc])*
        pub fn $name(&mut self, $name: $ty) -> &mut Self {
            self.$name = $name;
            self
        }
    )+};
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// All options off; mode `0o666` (before the umask).
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
            custom_flags: 0,
        }
    }

    setters! {
        /// Open for reading.
        read: bool;
        /// Open for writing.
        write: bool;
        /// Open for appending (`O_APPEND`; implies writing): every write goes to
        /// the end of the file, whatever its position argument.
        append: bool;
        /// Truncate an existing file to length 0 (needs `write`).
        truncate: bool;
        /// Create the file if it does not exist (needs `write` or `append`).
        create: bool;
        /// Create the file, failing with `AlreadyExists` (`EEXIST`) if it exists
        /// (`O_CREAT | O_EXCL`; needs `write` or `append`). Overrides `create`
        /// and `truncate`.
        create_new: bool;
        /// Permission bits of a newly created file, before the umask
        /// (default `0o666`).
        mode: u32;
        /// Extra `open(2)` flags (`libc::O_DIRECT`, `O_NOFOLLOW`, ...); the
        /// access mode bits are ignored.
        custom_flags: i32;
    }

    fn flags(&self) -> io::Result<i32> {
        let invalid = |msg| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        let access = match (self.read, self.write, self.append) {
            (true, false, false) => libc::O_RDONLY,
            (false, true, false) => libc::O_WRONLY,
            (true, true, false) => libc::O_RDWR,
            (false, _, true) => libc::O_WRONLY | libc::O_APPEND,
            (true, _, true) => libc::O_RDWR | libc::O_APPEND,
            (false, false, false) => {
                return invalid("OpenOptions: set read, write or append");
            }
        };
        let writes = self.write || self.append;
        let creation = match (self.create, self.truncate, self.create_new) {
            (_, _, true) if writes => libc::O_CREAT | libc::O_EXCL,
            (false, false, false) => 0,
            (true, false, false) if writes => libc::O_CREAT,
            (false, true, false) if self.write && !self.append => libc::O_TRUNC,
            (true, true, false) if self.write && !self.append => libc::O_CREAT | libc::O_TRUNC,
            _ => {
                return invalid(
                    "OpenOptions: create/create_new need write or append; truncate needs write without append",
                );
            }
        };
        Ok(access | creation | (self.custom_flags & !libc::O_ACCMODE))
    }

    /// Opens `path` with these options.
    ///
    /// # Errors
    ///
    /// The OS error: `NotFound` (`ENOENT`), `PermissionDenied` (`EACCES`),
    /// `AlreadyExists` (`EEXIST`, with `create_new`), ...; `InvalidInput`
    /// for a contradictory set of options or a path containing a NUL byte.
    ///
    /// Cancel-safe: if this future is dropped while the open is in flight,
    /// the file it still opens is closed when the open completes.
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let op = kop::OpenAt {
            path: super::cstr(path.as_ref())?,
            flags: self.flags()?,
            mode: self.mode,
        };
        let fd = ops::run(op, ops::on_uring()).await?;
        Ok(File::from_fd(Arc::new(FileFd::new(fd)), self.append))
    }
}
