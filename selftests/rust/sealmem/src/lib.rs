//! Safe userspace API for sealmem: sealed anonymous memory files.
//!
//! Every [`SealFile::create`] opens `/dev/sealmem`, which creates a new, empty file: memfd-like
//! memory with memfd seals, served by the sealmem kernel module.
//!
//! ```no_run
//! use sealmem::{SealFile, Seals};
//!
//! let f = SealFile::create()?;
//! f.set_name("example")?;
//! f.set_size(8192)?;
//! f.write_at(b"hello", 0)?;
//! f.add_seals(Seals::WRITE | Seals::SHRINK | Seals::GROW)?;
//! let view = f.view(true)?;               // read-only fd to hand to consumers
//! let map = view.map_shared(8192, false)?;
//! let mut buf = [0u8; 5];
//! map.read(0, &mut buf);
//! assert_eq!(&buf, b"hello");
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod uapi;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};

/// The device node.
pub const DEVICE: &str = "/dev/sealmem";
/// The API version this crate speaks.
pub const API_VERSION: u64 = uapi::SEALMEM_API as u64;
/// The longest name [`SealFile::set_name`] accepts, in bytes.
pub const NAME_MAX: usize = uapi::SEALMEM_NAME_MAX as usize;

bitflags::bitflags! {
    /// File seals, with memfd's meaning (`SEALMEM_SEAL_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Seals: u32 {
        /// No more seals may be added.
        const SEAL = uapi::SEALMEM_SEAL_SEAL;
        /// The size may not shrink.
        const SHRINK = uapi::SEALMEM_SEAL_SHRINK;
        /// The size may not grow (nor may a write past EOF).
        const GROW = uapi::SEALMEM_SEAL_GROW;
        /// No writes; adding it fails with `EBUSY` while a shared mapping could write.
        const WRITE = uapi::SEALMEM_SEAL_WRITE;
        /// No new writers; existing writable mappings keep working.
        const FUTURE_WRITE = uapi::SEALMEM_SEAL_FUTURE_WRITE;
        /// No executable mappings.
        const EXEC = uapi::SEALMEM_SEAL_EXEC;
    }
}

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

/// One sealmem file (an fd of it: writable, or read-only for a VIEW).
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

    /// The underlying `std::fs::File` (read, write, `FileExt`, metadata...).
    pub fn file(&self) -> &File {
        &self.file
    }

    fn ioctl<T>(&self, cmd: u32, arg: &mut T) -> io::Result<libc::c_int> {
        // SAFETY: every caller passes the argument type the ioctl `cmd` is defined with in
        // the uapi header, and the reference is valid for the call.
        cvt(unsafe { raw_ioctl(self.as_raw_fd(), cmd, arg) })
    }

    /// `SEALMEM_IOC_API`: speaks [`API_VERSION`], requires `features`, and returns what the
    /// module supports. Fails with `EINVAL` for a feature the module does not support.
    pub fn handshake(&self, features: u64) -> io::Result<ApiInfo> {
        let mut api = uapi::sealmem_api { api: API_VERSION, features, ioctls: 0 };
        self.ioctl(uapi::SEALMEM_IOC_API, &mut api)?;
        Ok(ApiInfo { version: api.api, features: api.features, ioctls: api.ioctls })
    }

    /// Sets the size (ftruncate semantics).
    pub fn set_size(&self, size: u64) -> io::Result<()> {
        let mut s = size;
        self.ioctl(uapi::SEALMEM_IOC_SET_SIZE, &mut s).map(drop)
    }

    /// The size in bytes.
    pub fn size(&self) -> io::Result<u64> {
        let mut s = 0u64;
        self.ioctl(uapi::SEALMEM_IOC_GET_SIZE, &mut s)?;
        Ok(s)
    }

    /// Frees the pages of a page-aligned range.
    pub fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()> {
        let mut r = uapi::sealmem_range { offset, len };
        self.ioctl(uapi::SEALMEM_IOC_PUNCH_HOLE, &mut r).map(drop)
    }

    /// Adds seals (memfd's rules and errnos).
    pub fn add_seals(&self, seals: Seals) -> io::Result<()> {
        let mut s = seals.bits();
        self.ioctl(uapi::SEALMEM_IOC_ADD_SEALS, &mut s).map(drop)
    }

    /// Adds raw seal bits, including unknown ones (to test the module's checks).
    pub fn add_seal_bits(&self, bits: u32) -> io::Result<()> {
        let mut s = bits;
        self.ioctl(uapi::SEALMEM_IOC_ADD_SEALS, &mut s).map(drop)
    }

    /// The current seals.
    pub fn seals(&self) -> io::Result<Seals> {
        let mut s = 0u32;
        self.ioctl(uapi::SEALMEM_IOC_GET_SEALS, &mut s)?;
        Ok(Seals::from_bits_retain(s))
    }

    /// Sets the name shown in fdinfo (at most [`NAME_MAX`] bytes, no NUL).
    pub fn set_name(&self, name: impl AsRef<[u8]>) -> io::Result<()> {
        let name = name.as_ref();
        if name.len() > NAME_MAX || name.contains(&0) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut n = uapi::sealmem_name { name: [0; 256] };
        for (d, s) in n.name.iter_mut().zip(name) {
            *d = *s as libc::c_char;
        }
        self.ioctl(uapi::SEALMEM_IOC_SET_NAME, &mut n).map(drop)
    }

    /// The name (empty if never set).
    pub fn name(&self) -> io::Result<Vec<u8>> {
        let mut n = uapi::sealmem_name { name: [0; 256] };
        self.ioctl(uapi::SEALMEM_IOC_GET_NAME, &mut n)?;
        Ok(n.name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect())
    }

    /// A new read-only fd of the same file, to hand to consumers.
    pub fn view(&self, cloexec: bool) -> io::Result<SealFile> {
        let flags = if cloexec { uapi::SEALMEM_FD_CLOEXEC } else { 0 };
        // SAFETY: SEALMEM_IOC_VIEW takes its flags by value and returns a new fd.
        let fd = cvt(unsafe { libc::ioctl(self.as_raw_fd(), uapi::SEALMEM_IOC_VIEW as _, flags as libc::c_ulong) })?;
        // SAFETY: the ioctl returned a new fd that nothing else owns.
        Ok(Self::from_fd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// pread.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    /// pwrite (a write past EOF grows the file).
    pub fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.file.write_at(buf, offset)
    }

    /// Maps `len` bytes from offset 0, shared (`MAP_SHARED`), read-only or read-write.
    pub fn map_shared(&self, len: usize, writable: bool) -> io::Result<Mapping> {
        let prot = if writable { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_READ };
        Mapping::new(self.as_fd(), len, prot, libc::MAP_SHARED)
    }

    /// Maps `len` bytes from offset 0, private and writable (copy-on-write).
    pub fn map_private(&self, len: usize) -> io::Result<Mapping> {
        Mapping::new(self.as_fd(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE)
    }

    /// The file's lines of `/proc/self/fdinfo/<fd>`.
    pub fn fdinfo(&self) -> io::Result<String> {
        std::fs::read_to_string(format!("/proc/self/fdinfo/{}", self.as_raw_fd()))
    }
}

/// A mapping of a sealmem file, unmapped on drop.
///
/// Its memory can change under it (other processes, `write`, punch), and an access past EOF
/// raises SIGBUS, so it hands out no Rust references to the bytes: [`Mapping::read`] and
/// [`Mapping::write`] copy, and [`Mapping::as_ptr`] is for callers that know better.
#[derive(Debug)]
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; it may be used and unmapped from any thread.
unsafe impl Send for Mapping {}
// SAFETY: `&Mapping` only allows copies in and out, which are fine concurrently.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, prot: libc::c_int, flags: libc::c_int) -> io::Result<Self> {
        // SAFETY: a fresh mapping at an address of the kernel's choosing aliases nothing.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr: ptr.cast(), len })
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `buf.len()` bytes at `offset` out of the mapping.
    ///
    /// # Panics
    ///
    /// If the range is not within the mapping.
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        assert!(offset.checked_add(buf.len()).is_some_and(|e| e <= self.len));
        // SAFETY: the range lies within the live mapping (checked above); no reference to the
        // mapped bytes is created.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(offset), buf.as_mut_ptr(), buf.len()) };
    }

    /// Copies `data` into the mapping at `offset` (the mapping must be writable).
    ///
    /// # Panics
    ///
    /// If the range is not within the mapping.
    pub fn write(&self, offset: usize, data: &[u8]) {
        assert!(offset.checked_add(data.len()).is_some_and(|e| e <= self.len));
        // SAFETY: as in `read`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(offset), data.len()) };
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own this mapping and nothing refers into it once we are dropped.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Issues an ioctl whose argument is a pointer to `T`.
///
/// # Safety
///
/// `cmd` must be an ioctl that reads and/or writes at most one `T` through its argument.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_bits_match_memfd() {
        assert_eq!(Seals::SEAL.bits(), libc::F_SEAL_SEAL as u32);
        assert_eq!(Seals::SHRINK.bits(), libc::F_SEAL_SHRINK as u32);
        assert_eq!(Seals::GROW.bits(), libc::F_SEAL_GROW as u32);
        assert_eq!(Seals::WRITE.bits(), libc::F_SEAL_WRITE as u32);
        assert_eq!(Seals::FUTURE_WRITE.bits(), libc::F_SEAL_FUTURE_WRITE as u32);
        assert_eq!(Seals::all().bits(), uapi::SEALMEM_SEALS_ALL);
    }

    #[test]
    fn uapi_layouts() {
        assert_eq!(std::mem::size_of::<uapi::sealmem_api>(), 24);
        assert_eq!(std::mem::size_of::<uapi::sealmem_range>(), 16);
        assert_eq!(std::mem::size_of::<uapi::sealmem_name>(), 256);
    }
}
