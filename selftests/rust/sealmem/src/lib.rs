//! Safe userspace API for sealmem.
//!
//! Every [`SealFile::create`] opens `/dev/sealmem`, which creates a new, empty sealmem file.
//!
//! ```no_run
//! let f = sealmem::SealFile::create()?;
//! let api = f.handshake(0)?;
//! assert_eq!(api.version, sealmem::API_VERSION);
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod uapi;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

/// The device node.
pub const DEVICE: &str = "/dev/sealmem";
/// The API version this crate speaks.
pub const API_VERSION: u64 = uapi::SEALMEM_API as u64;

/// What the module answered to the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiInfo {
    /// The agreed API version.
    pub version: u64,
    /// Every feature bit the module supports (`SEALMEM_FEATURE_*`).
    pub features: u64,
    /// Mask of `1 << nr` of the ioctls the module supports.
    pub ioctls: u64,
}

/// One sealmem file.
#[derive(Debug)]
pub struct SealFile {
    file: File,
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl SealFile {
    /// Creates a new, empty sealmem file (read-write, close-on-exec).
    pub fn create() -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(DEVICE)?;
        Ok(Self { file })
    }

    /// Wraps an fd that refers to a sealmem file.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { file: File::from(fd) }
    }

    /// `SEALMEM_IOC_API`: speaks [`API_VERSION`], requires `features`, and returns what the
    /// module supports. Fails with `EINVAL` for a feature the module does not support.
    pub fn handshake(&self, features: u64) -> io::Result<ApiInfo> {
        let mut api = uapi::sealmem_api {
            api: API_VERSION,
            features,
            ioctls: 0,
        };
        // SAFETY: SEALMEM_IOC_API reads and writes exactly one `sealmem_api`, which lives
        // for the duration of the call.
        cvt(unsafe { raw_ioctl(self.as_raw_fd(), uapi::SEALMEM_IOC_API, &mut api) })?;
        Ok(ApiInfo {
            version: api.api,
            features: api.features,
            ioctls: api.ioctls,
        })
    }

    /// The file's lines of `/proc/self/fdinfo/<fd>`.
    pub fn fdinfo(&self) -> io::Result<String> {
        std::fs::read_to_string(format!("/proc/self/fdinfo/{}", self.as_raw_fd()))
    }
}

/// Issues an ioctl whose argument is a pointer to `T`.
///
/// # Safety
///
/// `cmd` must be an ioctl that reads and/or writes exactly one `T` through its argument.
pub unsafe fn raw_ioctl<T>(fd: RawFd, cmd: u32, arg: *mut T) -> libc::c_int {
    // SAFETY: forwarded to the caller.
    unsafe { libc::ioctl(fd, cmd as _, arg) }
}

impl AsRawFd for SealFile {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for SealFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl From<SealFile> for OwnedFd {
    fn from(f: SealFile) -> OwnedFd {
        f.file.into()
    }
}
