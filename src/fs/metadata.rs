//! [`Metadata`]: what `statx(2)` says about a file.

use std::fmt;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

/// Information about a file, from `statx(2)` (through the ring under
/// io_uring): returned by [`File::metadata`](super::File::metadata),
/// [`metadata`](super::metadata) and [`symlink_metadata`](super::symlink_metadata).
///
/// ```
/// coil::run(async {
///     let path = std::env::temp_dir().join(format!("coil-doc-md-{}", std::process::id()));
///     coil::fs::write(&path, "hello").await?;
///     let md = coil::fs::metadata(&path).await?;
///     assert!(md.is_file() && !md.is_dir());
///     assert_eq!(md.len(), 5);
///     assert!(md.modified()? <= std::time::SystemTime::now());
///     coil::fs::remove_file(&path).await
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Metadata {
    mask: u32,
    mode: u32,
    len: u64,
    nlink: u32,
    uid: u32,
    gid: u32,
    ino: u64,
    dev: u64,
    blksize: u32,
    blocks: u64,
    atime: libc::statx_timestamp,
    mtime: libc::statx_timestamp,
    ctime: libc::statx_timestamp,
    btime: libc::statx_timestamp,
}

impl Metadata {
    pub(crate) fn from_statx(s: &libc::statx) -> Metadata {
        Metadata {
            mask: s.stx_mask,
            mode: u32::from(s.stx_mode),
            len: s.stx_size,
            nlink: s.stx_nlink,
            uid: s.stx_uid,
            gid: s.stx_gid,
            ino: s.stx_ino,
            dev: libc::makedev(s.stx_dev_major, s.stx_dev_minor),
            blksize: s.stx_blksize,
            blocks: s.stx_blocks,
            atime: s.stx_atime,
            mtime: s.stx_mtime,
            ctime: s.stx_ctime,
            btime: s.stx_btime,
        }
    }

    /// Size in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    /// A symbolic link (only from [`symlink_metadata`](super::symlink_metadata)).
    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }

    /// The whole `st_mode`: file type and permission bits.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// The permission bits (`mode() & 0o7777`) as std's
    /// [`Permissions`](std::fs::Permissions).
    pub fn permissions(&self) -> std::fs::Permissions {
        std::fs::Permissions::from_mode(self.mode & 0o7777)
    }

    /// Last modification time.
    ///
    /// # Errors
    ///
    /// `Unsupported` if the file system did not report it.
    pub fn modified(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_MTIME, self.mtime, "modification")
    }

    /// Last access time.
    ///
    /// # Errors
    ///
    /// `Unsupported` if the file system did not report it.
    pub fn accessed(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_ATIME, self.atime, "access")
    }

    /// Creation (birth) time.
    ///
    /// # Errors
    ///
    /// `Unsupported` if the file system does not record it (tmpfs on older
    /// kernels, some network file systems).
    pub fn created(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_BTIME, self.btime, "creation")
    }

    /// Last status change time (`ctime`).
    ///
    /// # Errors
    ///
    /// `Unsupported` if the file system did not report it.
    pub fn changed(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_CTIME, self.ctime, "status change")
    }

    /// Number of hard links.
    pub fn nlink(&self) -> u32 {
        self.nlink
    }

    /// Owner's user id.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// Owner's group id.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// Inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// Id of the device holding the file.
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// Preferred I/O block size.
    pub fn blksize(&self) -> u32 {
        self.blksize
    }

    /// 512-byte blocks allocated.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    fn time(&self, bit: u32, t: libc::statx_timestamp, what: &str) -> io::Result<SystemTime> {
        if self.mask & bit == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the file system did not report the {what} time"),
            ));
        }
        let nanos = Duration::from_nanos(u64::from(t.tv_nsec));
        let t = if t.tv_sec >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(t.tv_sec as u64) + nanos
        } else {
            SystemTime::UNIX_EPOCH - Duration::from_secs(t.tv_sec.unsigned_abs()) + nanos
        };
        Ok(t)
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metadata")
            .field("len", &self.len)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("modified", &self.modified().ok())
            .field("accessed", &self.accessed().ok())
            .field("created", &self.created().ok())
            .finish_non_exhaustive()
    }
}
