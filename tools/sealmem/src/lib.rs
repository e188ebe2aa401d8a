//! Safe userspace API for sealmem: sealed anonymous memory files with a userfaultfd-style
//! lazy fill.
//!
//! Every [`SealFile::create`] opens `/dev/sealmem`, which creates a new, empty file: memfd-like
//! memory with memfd seals, served by the sealmem kernel module. A file made lazy with
//! [`SealFile::enable_fill`] raises one request per missing page on its [`Handler`], which
//! fills it exactly once (`COPY`, `ZEROPAGE`, `POISON`), for every process that maps or reads
//! the file.
//!
//! ```no_run
//! use sealmem::{SealFile, Seals};
//!
//! let f = SealFile::create()?;
//! f.set_name("example")?;
//! f.set_size(8192)?;
//! f.write_at(b"hello", 0)?;
//! f.add_seals(Seals::WRITE | Seals::SHRINK | Seals::GROW)?;
//! let view = f.view()?;                   // read-only fd to hand to consumers
//! let map = view.map_shared(8192)?;      // a read-only `Mapping`
//! let mut buf = [0u8; 5];
//! map.read(0, &mut buf);
//! assert_eq!(&buf, b"hello");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! | item | what |
//! |---|---|
//! | [`SealFile`] | one file: size, seals, name, VIEW fds ([`ViewOptions`]), pread/pwrite, mappings ([`MapOptions`]), [`enable_fill`](SealFile::enable_fill) |
//! | [`Mapping`], [`MappingMut`] | read-only and writable mappings (see the memory model below) |
//! | [`Handler`] | the handler fd: [`requests`](Handler::requests), [`read`](Handler::read)/[`try_read`](Handler::try_read) into a reusable [`RequestBuf`], fills with [`FillOptions`] |
//! | [`Error`] | what the uapi reports for fills and seal-refused calls: progress, `EEXIST`, EOF, a detached handler, seals |
//! | [`scm`] | file, VIEW and handler fds over a Unix socket (`SCM_RIGHTS`), validated on receipt |
//! | [`prefetch`] | [`Recorder`], [`Recording`], [`Prefetcher`]: record a run's first touches, replay them on the next start |
//! | `tokio` (feature `tokio`) | an async handler on tokio's reactor (`AsyncFd`), with async fills |
//! | [`uapi`] | the raw ABI, generated from the C header |
//!
//! # Soundness model
//!
//! The crate's safe API cannot cause undefined behaviour, whatever other processes, the
//! kernel or the file's handler do. Four rules carry that:
//!
//! 1. **Mapped bytes are never Rust memory.** The crate never makes references of plain
//!    types to mapped bytes and never accesses them with ordinary loads and stores; every
//!    access is a relaxed word-sized atomic (below). Raw pointers ([`Mapping::as_ptr`],
//!    [`MappingMut::as_mut_ptr`]) are the way out, and dereferencing them is `unsafe`.
//! 2. **No ioctl reaches an fd that is not known to be sealmem's.** sealmem's ioctl numbers
//!    may mean something else to another driver, which could then write past the crate's
//!    argument structs. Fds the crate did not create itself are identified first, without
//!    any ioctl ([`SealFile::try_from_fd`], [`Handler::try_from_fd`], the [`scm`] receives);
//!    an fd that fails comes back intact. [`SealFile::from_fd_unchecked`] and [`raw_ioctl`]
//!    skip that and are `unsafe`.
//! 3. **The kernel only reads and writes buffers the crate owns for the call**: request
//!    reads go into a [`RequestBuf`] or a stack array of plain-data messages, a `COPY` reads
//!    at most the source slice's length, pread/pwrite and `SCM_RIGHTS` use Rust buffers.
//! 4. **Signals are documented, not hidden**: the accesses that can raise SIGBUS are listed
//!    below; each has a variant that cannot.
//!
//! # Mappings: memory model
//!
//! The bytes of a mapping are *shared memory*: other processes, other mappings of the same
//! file in this process (two [`MappingMut`] of one file alias the same pages), `write(2)` on
//! any fd of the file and the lazy-fill handler may all change them at any time. Rust's
//! exclusivity rules cannot describe that (`&mut` of a mapping proves nothing about the
//! file), so the crate never turns mapped bytes into Rust references of plain types and never
//! accesses them with ordinary loads and stores. Instead, every access the crate makes is a
//! `Relaxed` **atomic** operation on an aligned machine word
//! ([`AtomicUsize`](std::sync::atomic::AtomicUsize)):
//!
//! - Threads of this process that read and write the same bytes through `&Mapping` /
//!   `&MappingMut` concurrently are therefore not a data race in Rust's memory model; that is
//!   why both types are `Sync` and [`MappingMut::write`] takes `&self`.
//! - All of the crate's accesses have one size, so they never mix atomic accesses of
//!   different sizes (which the model leaves undefined); a write of part of a word is a
//!   compare-exchange loop on that word, which leaves the word's other bytes alone.
//! - Word-sized `Relaxed` loads are documented to work on read-only memory (see "Atomic
//!   accesses to read-only memory" in `core::sync::atomic`), which a read-only [`Mapping`] is.
//! - Other processes and the kernel are outside Rust's abstract machine; to this process their
//!   accesses look like those of another thread using word-sized relaxed atomics (which is
//!   what plain aligned loads and stores are on the hardware).
//!
//! What this does *not* give: a [`read`](Mapping::read) or [`write`](MappingMut::write) of
//! more than one word is not atomic as a whole (a concurrent writer can be seen half done),
//! and `Relaxed` orders nothing: synchronize with other threads (a lock, a channel) or other
//! processes (a pipe, a futex) as you would for any shared data.
//!
//! (volatile accesses were the alternative; but the standard library defines concurrent
//! volatile accesses inside a Rust-visible allocation as a data race like any other, and for
//! memory outside every allocation requires that the access never traps, while a mapping's
//! access can raise SIGBUS. memmap2's choice, making the construction of shared mappings
//! `unsafe`, would push the whole problem onto every caller.)
//!
//! [`as_ptr`](Mapping::as_ptr) and [`as_mut_ptr`](MappingMut::as_mut_ptr) give raw pointers
//! for callers that know better; dereferencing them is `unsafe` and their business.
//!
//! ## Which calls raise SIGBUS
//!
//! A mapping can only be accessed where the file has a readable page. [`Mapping::read`] and
//! [`MappingMut::write`] (like any access through the raw pointers) raise **SIGBUS**, which
//! kills the process unless it handles the signal, when the range touches:
//!
//! - a page at or past the file's end (the mapping was made longer than the file, or anyone,
//!   in any process, shrank the file since);
//! - a poisoned page ([`Handler::poison`](crate::Handler::poison));
//! - a hole of a lazy file whose handler is gone (closed without `FILL_END`);
//! - a new page beyond the module's `max_pages` limit.
//!
//! A hole of a lazy file with a live handler makes the access wait for the fill (forever if
//! the handler is the waiting thread itself).
//!
//! Everything else never raises SIGBUS: the fd calls, the handler's fills (a `COPY` whose
//! source cannot be read fails with `EFAULT`; a source inside a lazy hole waits for that
//! file's handler, forever if that is the calling thread), [`Prefetcher`] (fd calls and
//! fills only) and the [`scm`] functions.
//!
//! [`Mapping::try_read`] and [`MappingMut::try_write`] never raise a signal: they let the
//! kernel do the access (copying through a pipe with `write(2)` and `read(2)`), which resolves
//! the same faults (waiting for lazy pages likewise) and turns what would be a SIGBUS into
//! `EFAULT`. The fd calls ([`SealFile::read_at`], [`SealFile::write_at`]) never raise SIGBUS
//! either: they fail with `EIO` (poison, handler gone) or read short at EOF.

//!
//! # Errors
//!
//! Calls whose failures the uapi gives a meaning beyond the errno return [`Error`]: the fills
//! ([`Error::Exists`] with the bytes done before a present page, [`Error::PastEof`],
//! [`Error::Detached`] once `FILL_END` ended the handler, [`Error::InvalidRange`] refused
//! before the ioctl) and the calls seals can refuse ([`Error::Sealed`] with the file's
//! seals). `io::Error::from(Error)` keeps the errno, so `?` works in functions returning
//! `io::Result`. Opening and adopting fds return [`OpenError`] / [`FromFdError`]; the rest
//! returns `io::Result` with the errno the uapi documents.

pub mod uapi;
mod error;
mod handler;
mod mapping;
pub mod prefetch;
pub mod scm;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use error::Error;
pub use handler::{FillOptions, Handler, HandlerOptions, Request, RequestBuf, RequestIter, Requests};
pub use mapping::{MapOptions, Mapping, MappingMut};
pub use prefetch::{Prefetcher, PrefetchStats, Recorder, Recording};

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
/// The fill unit of a huge file ([`SealFile::set_huge`]): 2 MiB.
pub const HUGE_SIZE: u64 = uapi::SEALMEM_HUGE_SIZE as u64;

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

bitflags::bitflags! {
    /// Module features (`SEALMEM_FEATURE_*`), as the handshake reports them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Features: u64 {
        /// SET/GET_SIZE, read/write, PUNCH_HOLE, mmap.
        const SIZE_IO = uapi::SEALMEM_FEATURE_SIZE_IO as u64;
        /// ADD/GET_SEALS.
        const SEALS = uapi::SEALMEM_FEATURE_SEALS as u64;
        /// VIEW: read-only fds of the same file.
        const VIEW = uapi::SEALMEM_FEATURE_VIEW as u64;
        /// FILL_ENABLE and the handler fd.
        const LAZY_FILL = uapi::SEALMEM_FEATURE_LAZY_FILL as u64;
        /// SET_HUGE: 2 MiB fill units mapped by PMD ([`SealFile::set_huge`]).
        const HUGE = uapi::SEALMEM_FEATURE_HUGE as u64;
    }
}

/// Why a sealmem file could not be created or adopted.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// A system call failed (`open`, `fstat`, or the handshake with an unexpected errno).
    Io(io::Error),
    /// [`SealFile::try_from_fd`]: the fd is not a sealmem file (writable or VIEW).
    NotSealmem,
    /// [`Handler::try_from_fd`]: the fd is not a sealmem handler fd.
    NotHandler,
    /// [`scm::recv_view`]: a sealmem file, but writable where a read-only VIEW was required.
    NotView,
    /// The module does not speak [`API_VERSION`]: the handshake failed with `EINVAL` (a
    /// version it does not know) or `ENOTTY` (no handshake under this ioctl code, e.g. a
    /// module of API version 1), or it answered another version (`module`).
    ApiVersion {
        /// The version the module answered, if it answered.
        module: Option<u64>,
    },
    /// The module lacks features the caller required.
    MissingFeatures {
        /// What the caller required.
        required: Features,
        /// What the module supports.
        supported: Features,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => e.fmt(f),
            Self::NotSealmem => f.write_str("not a sealmem file"),
            Self::NotHandler => f.write_str("not a sealmem handler fd"),
            Self::NotView => f.write_str("a writable sealmem file, not a read-only VIEW"),
            Self::ApiVersion { module: None } => {
                write!(f, "the sealmem module does not speak API version {API_VERSION}")
            }
            Self::ApiVersion { module: Some(v) } => {
                write!(f, "the sealmem module answered API version {v}, not {API_VERSION}")
            }
            Self::MissingFeatures { required, supported } => write!(
                f,
                "the sealmem module lacks features {:?} (supports {supported:?})",
                required.difference(*supported)
            ),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// `Io` gives back its error; the others become errors of kind `InvalidInput` (`NotSealmem`,
/// `NotHandler`, `NotView`) or `Unsupported` that wrap the `OpenError` (`io::Error::get_ref` + `downcast_ref` recovers
/// it), so `?` works in functions returning `io::Result`.
impl From<OpenError> for io::Error {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Io(e) => e,
            OpenError::NotSealmem | OpenError::NotHandler | OpenError::NotView => {
                io::Error::new(io::ErrorKind::InvalidInput, e)
            }
            e => io::Error::new(io::ErrorKind::Unsupported, e),
        }
    }
}

/// An fd that [`SealFile::try_from_fd`] or [`Handler::try_from_fd`] did not adopt, handed back intact, with the reason.
#[derive(Debug)]
pub struct FromFdError {
    pub(crate) fd: OwnedFd,
    pub(crate) error: OpenError,
}

impl FromFdError {
    /// Why the fd was not adopted.
    pub fn error(&self) -> &OpenError {
        &self.error
    }

    /// The fd, still open and untouched (no ioctl was issued on an fd that is not sealmem's).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Takes the fd back.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Takes the fd and the reason.
    pub fn into_parts(self) -> (OwnedFd, OpenError) {
        (self.fd, self.error)
    }
}

impl std::fmt::Display for FromFdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fd {} not adopted: {}", self.fd.as_raw_fd(), self.error)
    }
}

impl std::error::Error for FromFdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Closes the fd and keeps the reason, converted as an `OpenError` is.
impl From<FromFdError> for io::Error {
    fn from(e: FromFdError) -> Self {
        e.error.into()
    }
}

/// The device number of sealmem's misc device: `/sys/class/misc/sealmem/dev` (`major:minor`),
/// else the node [`DEVICE`]'s.
fn device_number() -> Option<libc::dev_t> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if let Ok(s) = std::fs::read_to_string("/sys/class/misc/sealmem/dev") {
        let (major, minor) = s.trim().split_once(':')?;
        return Some(libc::makedev(major.parse().ok()?, minor.parse().ok()?));
    }
    let md = std::fs::metadata(DEVICE).ok()?;
    md.file_type().is_char_device().then(|| md.rdev() as libc::dev_t)
}

/// Whether `fd` is a sealmem file, found out without issuing any ioctl on it:
/// - an fd opened from the device node is a character device whose `st_rdev` is sealmem's
///   misc device number;
/// - a VIEW fd is an anonymous-inode file the module names `[sealmem]` (the link
///   `/proc/self/fd/N` reads `anon_inode:[sealmem]`) whose fdinfo, printed by the module,
///   has a `sealmem-id` line (a handler fd, also `[sealmem]`, has `sealmem-handler-of`).
fn identify(fd: BorrowedFd<'_>) -> Result<(), OpenError> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat fills the buffer on success.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error().into());
    }
    // SAFETY: fstat succeeded.
    let st = unsafe { st.assume_init() };
    if st.st_mode & libc::S_IFMT == libc::S_IFCHR {
        return match device_number() {
            Some(dev) if dev == st.st_rdev => Ok(()),
            _ => Err(OpenError::NotSealmem),
        };
    }
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    if link.as_os_str() != "anon_inode:[sealmem]" {
        return Err(OpenError::NotSealmem);
    }
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    if info.lines().any(|l| l.starts_with("sealmem-id:\t")) {
        Ok(())
    } else {
        Err(OpenError::NotSealmem)
    }
}

/// Judges a handshake's outcome against the features required.
fn check_api(answer: io::Result<ApiInfo>, required: Features) -> Result<ApiInfo, OpenError> {
    let api = match answer {
        Ok(api) => api,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTTY)) => {
            return Err(OpenError::ApiVersion { module: None })
        }
        Err(e) => return Err(OpenError::Io(e)),
    };
    if api.version != API_VERSION {
        return Err(OpenError::ApiVersion { module: Some(api.version) });
    }
    let supported = Features::from_bits_retain(api.features);
    if !supported.contains(required) {
        return Err(OpenError::MissingFeatures { required, supported });
    }
    Ok(api)
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

pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl SealFile {
    /// Creates a new, empty sealmem file (read-write, close-on-exec), after the API
    /// handshake: fails with [`OpenError::ApiVersion`] unless the module speaks
    /// [`API_VERSION`]. (`OpenError` converts into `io::Error`, so `?` works in functions
    /// returning `io::Result`.)
    pub fn create() -> Result<Self, OpenError> {
        Self::create_with(Features::empty())
    }

    /// Like [`create`](Self::create), and fails with [`OpenError::MissingFeatures`] unless
    /// the module supports every feature in `required`.
    pub fn create_with(required: Features) -> Result<Self, OpenError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(DEVICE)?;
        let f = Self { file };
        // Ask for no feature, so that EINVAL can only mean the version; compare after.
        check_api(f.handshake(0), required)?;
        Ok(f)
    }

    /// Adopts an fd of a sealmem file (one opened from the device, or a VIEW, e.g. received
    /// over `SCM_RIGHTS`), like the memfd crate's `try_from_fd`.
    ///
    /// The fd is checked before any ioctl reaches it (sealmem's ioctl numbers may mean
    /// something else to another driver): it must be the sealmem character device
    /// (`st_rdev` equal to `/sys/class/misc/sealmem/dev`) or a VIEW (an anonymous-inode file
    /// `[sealmem]` whose fdinfo has a `sealmem-id` line). Then the API handshake must agree
    /// on [`API_VERSION`]. Otherwise the fd comes back intact inside the [`FromFdError`]
    /// ([`OpenError::NotSealmem`], [`OpenError::ApiVersion`], or [`OpenError::Io`] if `fstat`
    /// or `/proc` failed).
    pub fn try_from_fd(fd: OwnedFd) -> Result<Self, FromFdError> {
        if let Err(error) = identify(fd.as_fd()) {
            return Err(FromFdError { fd, error });
        }
        let f = Self { file: File::from(fd) };
        match check_api(f.handshake(0), Features::empty()) {
            Ok(_) => Ok(f),
            Err(error) => Err(FromFdError { fd: f.file.into(), error }),
        }
    }

    /// Wraps an fd without any check.
    ///
    /// # Safety
    ///
    /// `fd` must be a sealmem file. The crate's ioctls pass pointers to structs of the sizes
    /// sealmem defines; another driver that owns the same ioctl numbers could write past
    /// them.
    pub unsafe fn from_fd_unchecked(fd: OwnedFd) -> Self {
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

    /// Sets the size (ftruncate semantics). [`Error::Sealed`] under SHRINK or GROW;
    /// `EFBIG` over the module's `max_file_size`, `EBADF` on a VIEW.
    pub fn set_size(&self, size: u64) -> Result<(), Error> {
        let mut s = size;
        self.sealed_ioctl(uapi::SEALMEM_IOC_SET_SIZE, &mut s, Seals::SHRINK | Seals::GROW)
    }

    /// An ioctl that seals can refuse: an `EPERM` while the file has one of `by` is
    /// [`Error::Sealed`].
    fn sealed_ioctl<T>(&self, cmd: u32, arg: &mut T, by: Seals) -> Result<(), Error> {
        match self.ioctl(cmd, arg) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => match self.seals() {
                Ok(seals) if seals.intersects(by) => Err(Error::Sealed { seals }),
                _ => Err(Error::os(e)),
            },
            Err(e) => Err(Error::os(e)),
        }
    }

    /// The size in bytes.
    pub fn size(&self) -> io::Result<u64> {
        let mut s = 0u64;
        self.ioctl(uapi::SEALMEM_IOC_GET_SIZE, &mut s)?;
        Ok(s)
    }

    /// Frees the pages of a page-aligned range ([`Error::InvalidRange`] otherwise, without
    /// an ioctl). [`Error::Sealed`] under WRITE or FUTURE_WRITE; `EBADF` on a VIEW.
    pub fn punch_hole(&self, offset: u64, len: u64) -> Result<(), Error> {
        error::check_range(offset, len)?;
        let mut r = uapi::sealmem_range { offset, len };
        self.sealed_ioctl(uapi::SEALMEM_IOC_PUNCH_HOLE, &mut r, Seals::WRITE | Seals::FUTURE_WRITE)
    }

    /// Adds seals (memfd's rules and errnos): [`Error::Sealed`] once SEAL is set; `EBUSY`
    /// (WRITE while a shared mapping could write, EXEC while a mapping could become
    /// executable) and `EPERM` on a VIEW as [`Error::Os`].
    pub fn add_seals(&self, seals: Seals) -> Result<(), Error> {
        let mut s = seals.bits();
        self.sealed_ioctl(uapi::SEALMEM_IOC_ADD_SEALS, &mut s, Seals::SEAL)
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

    /// Makes the file huge, for good (`SEALMEM_IOC_SET_HUGE`): it is filled in units of
    /// [`HUGE_SIZE`] (2 MiB) — a lazy file raises one [`Request`] per missing unit
    /// ([`Request::huge`]), one [`Handler::copy`] of the unit installs it as one folio — and
    /// its mappings map whole units with one PMD. Call it on a new file, before any page or
    /// mapping exists: `EBUSY` otherwise, `EOPNOTSUPP` without [`Features::HUGE`], `EBADF` on a
    /// VIEW.
    pub fn set_huge(&self) -> io::Result<()> {
        // SAFETY: SEALMEM_IOC_SET_HUGE takes a value argument, which must be 0.
        cvt(unsafe { libc::ioctl(self.as_raw_fd(), uapi::SEALMEM_IOC_SET_HUGE as _, 0 as libc::c_ulong) })?;
        Ok(())
    }

    /// A new read-only fd of the same file (a VIEW), close-on-exec, to hand to consumers.
    pub fn view(&self) -> io::Result<SealFile> {
        self.view_with(ViewOptions::new())
    }

    /// A new read-only fd of the same file, with options (e.g. inheritable across `exec`).
    pub fn view_with(&self, opts: ViewOptions) -> io::Result<SealFile> {
        let flags = if opts.cloexec { uapi::SEALMEM_FD_CLOEXEC } else { 0 };
        // SAFETY: SEALMEM_IOC_VIEW takes its flags by value and returns a new fd.
        let fd = cvt(unsafe { libc::ioctl(self.as_raw_fd(), uapi::SEALMEM_IOC_VIEW as _, flags as libc::c_ulong) })?;
        // SAFETY: the ioctl returned a new fd (a VIEW of this sealmem file) that nothing else
        // owns.
        Ok(Self { file: File::from(unsafe { OwnedFd::from_raw_fd(fd) }) })
    }

    /// pread.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    /// pwrite (a write past EOF grows the file).
    pub fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.file.write_at(buf, offset)
    }

    /// Whether this fd is read-only (a VIEW, or opened `O_RDONLY`).
    pub fn is_read_only(&self) -> io::Result<bool> {
        // SAFETY: F_GETFL takes no argument.
        let fl = cvt(unsafe { libc::fcntl(self.as_raw_fd(), libc::F_GETFL) })?;
        Ok(fl & libc::O_ACCMODE == libc::O_RDONLY)
    }

    /// Maps the range [`MapOptions`] describes, read-only (`PROT_READ`).
    ///
    /// Accessing a page past the file's end raises SIGBUS: see the
    /// [crate documentation](crate#which-calls-raise-sigbus).
    pub fn map(&self, opts: &MapOptions) -> io::Result<Mapping> {
        opts.map(self)
    }

    /// Maps the range [`MapOptions`] describes, writable (`PROT_READ | PROT_WRITE`; shared
    /// needs a writable fd and no WRITE or FUTURE_WRITE seal).
    pub fn map_mut(&self, opts: &MapOptions) -> io::Result<MappingMut> {
        opts.map_mut(self)
    }

    /// Maps `len` bytes from offset 0, shared (`MAP_SHARED`) and read-only:
    /// `map(&MapOptions::new(len))`.
    pub fn map_shared(&self, len: usize) -> io::Result<Mapping> {
        self.map(&MapOptions::new(len))
    }

    /// Maps `len` bytes from offset 0, shared and writable: `map_mut(&MapOptions::new(len))`.
    pub fn map_shared_mut(&self, len: usize) -> io::Result<MappingMut> {
        self.map_mut(&MapOptions::new(len))
    }

    /// Maps `len` bytes from offset 0, private and writable (copy-on-write):
    /// `map_mut(&MapOptions::new(len).private())`.
    pub fn map_private(&self, len: usize) -> io::Result<MappingMut> {
        self.map_mut(&MapOptions::new(len).private())
    }

    /// The file's lines of `/proc/self/fdinfo/<fd>`.
    pub fn fdinfo(&self) -> io::Result<String> {
        std::fs::read_to_string(format!("/proc/self/fdinfo/{}", self.as_raw_fd()))
    }

    /// Makes the file lazy and returns its handler: from now on every access to a hole waits
    /// until the handler fills it. Fails with `EBUSY` while another handler is attached,
    /// [`Error::Sealed`] on a write-sealed file that is not already lazy, and `EPERM`
    /// ([`Error::Os`]) on a read-only fd.
    pub fn enable_fill(&self, opts: HandlerOptions) -> Result<Handler, Error> {
        // SAFETY: SEALMEM_IOC_FILL_ENABLE takes its flags by value and returns a new fd.
        let fd = unsafe {
            libc::ioctl(self.as_raw_fd(), uapi::SEALMEM_IOC_FILL_ENABLE as _, opts.bits() as libc::c_ulong)
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EPERM) && !self.is_read_only().unwrap_or(true) {
                if let Ok(seals) = self.seals() {
                    if seals.intersects(Seals::WRITE | Seals::FUTURE_WRITE) {
                        return Err(Error::Sealed { seals });
                    }
                }
            }
            return Err(Error::os(e));
        }
        // SAFETY: the ioctl returned a new fd that nothing else owns.
        Ok(Handler { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }
}

/// Options of [`SealFile::view_with`], builder-style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewOptions {
    cloexec: bool,
}

impl ViewOptions {
    /// Close-on-exec.
    pub fn new() -> Self {
        Self { cloexec: true }
    }

    /// Close the VIEW fd on `exec` (default: yes; `SEALMEM_FD_CLOEXEC`). `false` to let a
    /// program started with `exec` inherit it.
    pub fn cloexec(mut self, yes: bool) -> Self {
        self.cloexec = yes;
        self
    }
}

impl Default for ViewOptions {
    fn default() -> Self {
        Self::new()
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

impl TryFrom<OwnedFd> for SealFile {
    type Error = FromFdError;

    /// [`SealFile::try_from_fd`].
    fn try_from(fd: OwnedFd) -> Result<Self, FromFdError> {
        Self::try_from_fd(fd)
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

    /// A handler whose fd is the read end of a pipe: `read_requests` and `requests` only
    /// `read(2)` the fd, so a pipe carrying `sealmem_msg` bytes stands in for the module.
    fn pipe_handler(flags: libc::c_int) -> (Handler, std::fs::File) {
        let mut fds = [0; 2];
        // SAFETY: a plain syscall filling `fds`.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | flags) }, 0);
        // SAFETY: two new fds nothing else owns.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        (Handler { fd: r }, File::from(w))
    }

    fn send(w: &mut File, offset: u64, flags: u32) {
        use std::io::Write;
        let mut b = Vec::new();
        b.extend_from_slice(&offset.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&77u32.to_ne_bytes());
        w.write_all(&b).unwrap();
    }

    #[test]
    fn read_requests_empty_buffer_is_einval_and_consumes_nothing() {
        let (h, mut w) = pipe_handler(0);
        send(&mut w, 8192, uapi::SEALMEM_MSG_FAULT);
        let e = h.read_requests(&mut []).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        let mut one = [Request { offset: 0, huge: false, write: false, fault: false, tid: 0 }; 1];
        assert_eq!(h.read_requests(&mut one).unwrap(), 1);
        assert_eq!(one[0], Request { offset: 8192, huge: false, write: false, fault: true, tid: 77 });
    }

    #[test]
    fn requests_nonblocking_yields_wouldblock_and_goes_on() {
        let (h, mut w) = pipe_handler(libc::O_NONBLOCK);
        let mut it = h.requests();
        let e = it.next().unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(it.next().unwrap().unwrap_err().kind(), io::ErrorKind::WouldBlock);
        send(&mut w, 4096, uapi::SEALMEM_MSG_WRITE);
        send(&mut w, 12288, 0);
        let r = it.next().unwrap().unwrap();
        assert_eq!((r.offset, r.write, r.fault), (4096, true, false));
        assert_eq!(it.next().unwrap().unwrap().offset, 12288);
        assert_eq!(it.next().unwrap().unwrap_err().kind(), io::ErrorKind::WouldBlock);
        drop(w); // read returns 0: the handler is no longer needed
        assert!(it.next().is_none());
        assert!(it.next().is_none());
    }

    /// The thread's `pthread_t` (std's raw type is an integer; musl's libc has a pointer).
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    fn pthread_of<T>(t: &std::thread::JoinHandle<T>) -> libc::pthread_t {
        use std::os::unix::thread::JoinHandleExt;
        t.as_pthread_t() as libc::pthread_t
    }

    static SIGNALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    extern "C" fn count_signal(_: libc::c_int) {
        SIGNALS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits (deadline 10 s) until thread `tid` of this process sleeps in `read(2)`: state
    /// `S` in its stat and syscall number 0 (x86_64's read) in its `syscall` file. A handshake
    /// with the kernel's view of the thread, instead of a sleep.
    fn wait_blocked_in_read(tid: i32) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
            let state = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next()).unwrap_or("");
            let sc = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap_or_default();
            if state == "S" && sc.split_whitespace().next() == Some(&libc::SYS_read.to_string()) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "thread {tid} never blocked in read: {state} {sc}");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Waits (deadline 10 s) until the signal counter reaches `n`.
    fn wait_signals(n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while SIGNALS.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(std::time::Instant::now() < deadline, "signal {n} never handled");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// A signal whose handler lacks SA_RESTART interrupts the blocked read(2) with EINTR:
    /// `requests()` and `read()` retry and yield the message sent after three signals;
    /// `read_requests` returns the EINTR. The reader is signalled only once the kernel shows
    /// it blocked in read (no sleeps standing in for that).
    #[test]
    fn requests_retries_eintr() {
        // SAFETY: installing a handler that only bumps an atomic counter.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = 0;
            assert_eq!(libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()), 0);
        }
        let (h, mut w) = pipe_handler(0);
        // The reader tells its tid, then which read it is about to enter.
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            // SAFETY: a plain syscall.
            tx.send(unsafe { libc::gettid() }).unwrap();
            tx.send(1).unwrap();
            let first = h.requests().next().map(|r| r.map(|r| r.offset).map_err(|e| e.kind()));
            let mut buf = RequestBuf::new();
            tx.send(2).unwrap();
            let second = h.read(&mut buf).map(|n| (n, buf.get(0).map(|r| r.offset))).map_err(|e| e.kind());
            let mut one = [Request { offset: 0, huge: false, write: false, fault: false, tid: 0 }; 1];
            tx.send(3).unwrap();
            let plain = h.read_requests(&mut one).map_err(|e| e.raw_os_error());
            (first, second, plain)
        });
        let next = || rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        let tid = next();
        let mut n = SIGNALS.load(std::sync::atomic::Ordering::SeqCst);
        // Signals the reader once the kernel shows it blocked in read, and waits until the
        // signal handler ran.
        let kick = |n: &mut usize| {
            wait_blocked_in_read(tid);
            // SAFETY: the thread is alive: it is blocked in read (checked just now).
            assert_eq!(unsafe { libc::pthread_kill(pthread_of(&reader), libc::SIGUSR2) }, 0);
            *n += 1;
            wait_signals(*n);
        };
        assert_eq!(next(), 1);
        for _ in 0..3 {
            kick(&mut n); // the iterator's read: retried
        }
        send(&mut w, 40960, 0);
        assert_eq!(next(), 2);
        for _ in 0..2 {
            kick(&mut n); // read(): retried
        }
        send(&mut w, 8192, 0);
        assert_eq!(next(), 3);
        kick(&mut n); // read_requests: fails with EINTR
        let (first, second, plain) = reader.join().unwrap();
        assert_eq!(first, Some(Ok(40960)));
        assert_eq!(second, Ok((1, Some(8192))));
        assert_eq!(plain, Err(Some(libc::EINTR)));
    }

    /// try_read: `None` when nothing is pending (EAGAIN on a nonblocking fd; an empty poll on
    /// a blocking one, which must not block), the requests when some are, `Some(0)` at EOF.
    #[test]
    fn try_read_none_on_eagain_for_both_kinds_of_fd() {
        for flags in [libc::O_NONBLOCK, 0] {
            let (h, mut w) = pipe_handler(flags);
            assert_eq!(h.is_nonblocking().unwrap(), flags != 0);
            let mut buf = RequestBuf::new();
            assert_eq!(h.try_read(&mut buf).unwrap(), None, "flags {flags:#x}");
            assert!(buf.is_empty());
            send(&mut w, 4096, uapi::SEALMEM_MSG_FAULT | uapi::SEALMEM_MSG_WRITE);
            send(&mut w, 12288, 0);
            assert_eq!(h.try_read(&mut buf).unwrap(), Some(2));
            let got: Vec<_> = buf.iter().map(|r| (r.offset, r.write, r.fault, r.tid)).collect();
            assert_eq!(got, [(4096, true, true, 77), (12288, false, false, 77)]);
            assert_eq!(h.try_read(&mut buf).unwrap(), None);
            drop(w);
            assert_eq!(h.try_read(&mut buf).unwrap(), Some(0)); // EOF: no longer needed
        }
    }

    /// A RequestBuf of capacity 0 is refused with EINVAL by read and try_read, and nothing is
    /// consumed; a buffer smaller than the batch takes only what fits.
    #[test]
    fn empty_request_buf_is_einval_and_small_buf_takes_what_fits() {
        let (h, mut w) = pipe_handler(libc::O_NONBLOCK);
        for o in [0, 4096, 8192] {
            send(&mut w, o, 0);
        }
        let mut none = RequestBuf::with_capacity(0);
        assert_eq!(h.read(&mut none).unwrap_err().raw_os_error(), Some(libc::EINVAL));
        assert_eq!(h.try_read(&mut none).unwrap_err().raw_os_error(), Some(libc::EINVAL));
        let mut two = RequestBuf::with_capacity(2);
        assert_eq!(h.read(&mut two).unwrap(), 2);
        assert_eq!(two.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 4096]);
        assert_eq!(h.read(&mut two).unwrap(), 1);
        assert_eq!(two.get(0).map(|r| r.offset), Some(8192));
        assert_eq!(two.get(1), None);
        // The buffer is reused: no allocation per read (same storage).
        let p = two.msgs.as_ptr();
        send(&mut w, 0, 0);
        h.read(&mut two).unwrap();
        assert_eq!(two.msgs.as_ptr(), p);
    }

    /// Handler::try_from refuses fds that are not a handler's and hands them back intact.
    #[test]
    fn handler_try_from_rejects_and_returns_other_fds() {
        use std::io::{Read, Write};
        let (h, w) = pipe_handler(0);
        let (r, w) = (OwnedFd::from(h), OwnedFd::from(w));
        let (raw, id) = (w.as_raw_fd(), fstat(w.as_fd()));
        let e = Handler::try_from(w).unwrap_err();
        assert!(matches!(e.error(), OpenError::NotHandler), "{e}");
        assert_eq!(e.error().to_string(), "not a sealmem handler fd");
        let mut w = File::from(e.into_fd());
        assert_eq!((w.as_raw_fd(), fstat(w.as_fd())), (raw, id));
        w.write_all(b"intact").unwrap();
        drop(w);
        let mut got = String::new();
        File::from(r).read_to_string(&mut got).unwrap();
        assert_eq!(got, "intact");
        // SAFETY: a plain syscall.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(efd >= 0);
        // SAFETY: a new fd nothing else owns.
        let efd = unsafe { OwnedFd::from_raw_fd(efd) };
        let raw = efd.as_raw_fd();
        let (fd, error) = Handler::try_from_fd(efd).unwrap_err().into_parts();
        assert!(matches!(error, OpenError::NotHandler));
        assert_eq!(fd.as_raw_fd(), raw);
        let null = OwnedFd::from(File::open("/dev/null").unwrap());
        let e = Handler::try_from(null).unwrap_err();
        assert!(matches!(e.error(), OpenError::NotHandler));
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn handshake_outcomes_are_typed() {
        let info = |version, features| Ok(ApiInfo { version, features, ioctls: 0 });
        let all = Features::all().bits();
        assert_eq!(check_api(info(API_VERSION, all), Features::all()).unwrap().features, all);
        assert_eq!(check_api(info(API_VERSION, 1), Features::empty()).unwrap().version, API_VERSION);
        assert!(matches!(
            check_api(info(API_VERSION, Features::SIZE_IO.bits()), Features::SIZE_IO | Features::LAZY_FILL),
            Err(OpenError::MissingFeatures { required, supported })
                if required == Features::SIZE_IO | Features::LAZY_FILL && supported == Features::SIZE_IO
        ));
        assert!(matches!(check_api(info(1, all), Features::empty()), Err(OpenError::ApiVersion { module: Some(1) })));
        for errno in [libc::EINVAL, libc::ENOTTY] {
            let r = check_api(Err(io::Error::from_raw_os_error(errno)), Features::empty());
            assert!(matches!(r, Err(OpenError::ApiVersion { module: None })));
        }
        let r = check_api(Err(io::Error::from_raw_os_error(libc::EFAULT)), Features::empty());
        assert!(matches!(r, Err(OpenError::Io(ref e)) if e.raw_os_error() == Some(libc::EFAULT)));
        // Into io::Error: Io unwraps, the others stay recoverable.
        let e = io::Error::from(OpenError::ApiVersion { module: Some(1) });
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        let inner = e.get_ref().and_then(|e| e.downcast_ref::<OpenError>());
        assert!(matches!(inner, Some(OpenError::ApiVersion { module: Some(1) })));
        let e = io::Error::from(OpenError::Io(io::Error::from_raw_os_error(libc::ENOENT)));
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn feature_bits_match_uapi() {
        assert_eq!(Features::all().bits(), 0x1f);
    }

    fn fstat(fd: BorrowedFd<'_>) -> (libc::dev_t, libc::ino_t, libc::dev_t) {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat fills the buffer on success.
        assert_eq!(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) }, 0);
        // SAFETY: fstat succeeded.
        let st = unsafe { st.assume_init() };
        (st.st_dev, st.st_ino, st.st_rdev)
    }

    /// Not sealmem fds: rejected before any ioctl, and handed back intact (same fd number,
    /// same file, still usable).
    #[test]
    fn try_from_fd_rejects_and_returns_other_fds() {
        use std::io::{Read, Write};
        // A pipe: write through the returned fd, read at the other end.
        let (h, w) = pipe_handler(0);
        let (r, w) = (OwnedFd::from(h), OwnedFd::from(w));
        let (raw, id) = (w.as_raw_fd(), fstat(w.as_fd()));
        let e = SealFile::try_from_fd(w).unwrap_err();
        assert!(matches!(e.error(), OpenError::NotSealmem), "{e}");
        assert_eq!(e.fd().as_raw_fd(), raw);
        let mut w = File::from(e.into_fd());
        assert_eq!(fstat(w.as_fd()), id);
        w.write_all(b"intact").unwrap();
        drop(w);
        let mut got = String::new();
        File::from(r).read_to_string(&mut got).unwrap();
        assert_eq!(got, "intact");
        // /dev/null: a character device, but not sealmem's.
        let null = OwnedFd::from(File::options().read(true).write(true).open("/dev/null").unwrap());
        let (raw, id) = (null.as_raw_fd(), fstat(null.as_fd()));
        let (fd, error) = SealFile::try_from(null).unwrap_err().into_parts();
        assert!(matches!(error, OpenError::NotSealmem));
        assert_eq!((fd.as_raw_fd(), fstat(fd.as_fd())), (raw, id));
        assert_eq!(File::from(fd).write(b"x").unwrap(), 1);
        // An anonymous-inode file of another kind (eventfd), and a regular file.
        // SAFETY: a plain syscall.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(efd >= 0);
        // SAFETY: a new fd nothing else owns.
        let efd = unsafe { OwnedFd::from_raw_fd(efd) };
        let e = SealFile::try_from_fd(efd).unwrap_err();
        assert!(matches!(e.error(), OpenError::NotSealmem));
        let reg = OwnedFd::from(File::open("/proc/self/exe").unwrap());
        let e = SealFile::try_from_fd(reg).unwrap_err();
        assert!(matches!(e.error(), OpenError::NotSealmem));
        let io = io::Error::from(e);
        assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
    }
}
