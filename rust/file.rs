// SPDX-License-Identifier: GPL-2.0

//! The sealmem file object: one per `open()` of `/dev/sealmem`, shared by every fd that refers
//! to the same file (dup, fork, SCM_RIGHTS, VIEW fds).
//!
//! # Lock order
//!
//! 1. `SealFile::inner` (mutex): serialises writers, size changes, seals and the name, like
//!    an inode's `i_rwsem`. Copies from user memory happen under it, and may fault.
//! 2. `mmap_lock` / per-VMA lock (taken by the mm for faults and mmap).
//! 3. The mapping's `invalidate_lock`: shared in the fault path, exclusive while truncating
//!    or punching, so no fault can map a page that is being removed.
//! 4. `i_mmap_rwsem` (inside `unmap_mapping_range`), then the page store's XArray spinlock.
//!
//! The mmap hook and the fault path never take `inner` (that would invert 1 and 2): they
//! read `size` and `seals`, which are atomics written under `inner`.

use kernel::{
    bindings,
    fs::File,
    iov::{IovIterDest, IovIterSource},
    mm::virt::VmaNew,
    page::PAGE_SIZE,
    prelude::*,
    seq_file::{seq_print, SeqFile},
    sync::{
        atomic::{Acquire, Atomic, Full, Relaxed, Release},
        Arc, Mutex,
    },
    uaccess::{UserPtr, UserSlice},
};

use crate::{
    device,
    mapping::Mapping,
    page::PageRef,
    stats::{Stats, STATS},
    store::PageStore,
    uapi,
    vm::{self, Fault, FaultOutcome},
};

/// Feature bits this build of the module implements (reported by `SEALMEM_IOC_API`).
pub(crate) const SUPPORTED_FEATURES: u64 = (uapi::SEALMEM_FEATURE_SIZE_IO
    | uapi::SEALMEM_FEATURE_SEALS
    | uapi::SEALMEM_FEATURE_VIEW) as u64;

/// ioctls this build implements on a sealmem file, as a mask of `1 << nr`.
pub(crate) const SUPPORTED_IOCTLS: u64 = (1 << uapi::SEALMEM_NR_API)
    | (1 << uapi::SEALMEM_NR_SET_SIZE)
    | (1 << uapi::SEALMEM_NR_GET_SIZE)
    | (1 << uapi::SEALMEM_NR_PUNCH_HOLE)
    | (1 << uapi::SEALMEM_NR_ADD_SEALS)
    | (1 << uapi::SEALMEM_NR_GET_SEALS)
    | (1 << uapi::SEALMEM_NR_SET_NAME)
    | (1 << uapi::SEALMEM_NR_GET_NAME)
    | (1 << uapi::SEALMEM_NR_VIEW);

const SEAL_SEAL: u32 = uapi::SEALMEM_SEAL_SEAL;
const SEAL_SHRINK: u32 = uapi::SEALMEM_SEAL_SHRINK;
const SEAL_GROW: u32 = uapi::SEALMEM_SEAL_GROW;
const SEAL_WRITE: u32 = uapi::SEALMEM_SEAL_WRITE;
const SEAL_FUTURE_WRITE: u32 = uapi::SEALMEM_SEAL_FUTURE_WRITE;
const SEAL_EXEC: u32 = uapi::SEALMEM_SEAL_EXEC;
const SEALS_ALL: u32 = uapi::SEALMEM_SEALS_ALL;

const NAME_MAX: usize = uapi::SEALMEM_NAME_MAX as usize;
const PAGE: u64 = PAGE_SIZE as u64;

/// Pages mapped ahead of the faulting one when they are resident (fault-around).
const FAULT_AROUND: usize = 16;

/// Source of file ids (shown in fdinfo, so tests can tell files apart).
static NEXT_ID: Atomic<u64> = Atomic::new(1);

/// Number of pages needed to hold `size` bytes.
fn pages_for(size: u64) -> u64 {
    size.div_ceil(PAGE)
}

/// Whether a `struct file` may write (O_WRONLY or O_RDWR).
fn is_writable(file: &File) -> bool {
    file.flags() & bindings::O_ACCMODE != bindings::O_RDONLY
}

/// State protected by [`SealFile::inner`].
struct Inner {
    /// The API version agreed by the last successful `SEALMEM_IOC_API`, 0 if none.
    api: u64,
    /// The name (not NUL-terminated), `name_len` bytes long.
    name: [u8; NAME_MAX],
    name_len: usize,
}

/// One sealmem file.
///
/// # Invariants
///
/// - While a `SealFile` exists it is counted once in `STATS.files`.
/// - `size` and `seals` change only under `inner`; `size` shrinks only while the mapping's
///   invalidate lock is also held exclusively.
/// - No page at an index `>= pages_for(size)` is added to `store`, and none stays there
///   after a shrink returns.
#[pin_data(PinnedDrop)]
pub(crate) struct SealFile {
    id: u64,
    #[pin]
    inner: Mutex<Inner>,
    #[pin]
    mapping: Mapping,
    #[pin]
    store: PageStore,
    size: Atomic<u64>,
    seals: Atomic<u32>,
}

impl SealFile {
    /// Creates the object for a new `open()` of the device and attaches `file` to it.
    pub(crate) fn open(file: &File) -> Result<Arc<Self>> {
        let obj = Arc::pin_init(
            try_pin_init!(Self {
                id: NEXT_ID.fetch_add(1u64, Relaxed),
                inner <- kernel::new_mutex!(Inner { api: 0, name: [0; NAME_MAX], name_len: 0 }),
                mapping <- Mapping::new(file),
                store <- PageStore::new(),
                size: Atomic::new(0),
                seals: Atomic::new(0),
            }),
            GFP_KERNEL,
        )?;
        // INVARIANT: counted once here, uncounted once in `drop`.
        Stats::inc(&STATS.files);
        Stats::inc(&STATS.files_created);
        obj.mapping.attach(file);
        Ok(obj)
    }

    /// Called when a `struct file` of this sealmem file is released.
    pub(crate) fn release(self: Arc<Self>, _file: &File) {
        drop(self);
    }

    /// Attaches a new `struct file` (a VIEW fd) to this file's mapping.
    pub(crate) fn attach(&self, file: &File) {
        self.mapping.attach(file);
    }

    /// The size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size.load(Acquire)
    }

    // ---- ioctls ----------------------------------------------------------------------

    /// Dispatches an ioctl on a sealmem file fd.
    pub(crate) fn ioctl(this: ArcBorrowed<'_>, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let user = UserPtr::from_addr(arg);
        match cmd {
            uapi::SEALMEM_IOC_API => this.api(user).map(|()| 0),
            uapi::SEALMEM_IOC_GET_SIZE => {
                UserSlice::new(user, 8).writer().write(&this.size())?;
                Ok(0)
            }
            uapi::SEALMEM_IOC_SET_SIZE => {
                let size: u64 = UserSlice::new(user, 8).reader().read()?;
                this.set_size(file, size).map(|()| 0)
            }
            uapi::SEALMEM_IOC_PUNCH_HOLE => {
                let r: uapi::sealmem_range = UserSlice::new(user, size_of::<uapi::sealmem_range>()).reader().read()?;
                this.punch_hole(file, r.offset, r.len).map(|()| 0)
            }
            uapi::SEALMEM_IOC_ADD_SEALS => {
                let seals: u32 = UserSlice::new(user, 4).reader().read()?;
                this.add_seals(file, seals).map(|()| 0)
            }
            uapi::SEALMEM_IOC_GET_SEALS => {
                UserSlice::new(user, 4).writer().write(&this.seals.load(Acquire))?;
                Ok(0)
            }
            uapi::SEALMEM_IOC_SET_NAME => this.set_name(file, user).map(|()| 0),
            uapi::SEALMEM_IOC_GET_NAME => this.get_name(user).map(|()| 0),
            uapi::SEALMEM_IOC_VIEW => Self::view(this, arg).map(|fd| fd as isize),
            _ => Err(ENOTTY),
        }
    }

    /// `SEALMEM_IOC_API`: agree on the API version and report features and ioctls.
    fn api(&self, user: UserPtr) -> Result {
        let (mut reader, mut writer) =
            UserSlice::new(user, size_of::<uapi::sealmem_api>()).reader_writer();
        let req: uapi::sealmem_api = reader.read()?;
        if req.api != u64::from(uapi::SEALMEM_API) || req.features & !SUPPORTED_FEATURES != 0 {
            // Like UFFDIO_API: on a refusal the struct is zeroed so userspace cannot mistake
            // stale input for an answer.
            writer.write(&uapi::sealmem_api::default())?;
            return Err(EINVAL);
        }
        let reply = uapi::sealmem_api {
            api: u64::from(uapi::SEALMEM_API),
            features: SUPPORTED_FEATURES,
            ioctls: SUPPORTED_IOCTLS,
        };
        writer.write(&reply)?;
        self.inner.lock().api = reply.api;
        Ok(())
    }

    /// `SEALMEM_IOC_SET_SIZE`: ftruncate semantics.
    fn set_size(&self, file: &File, new: u64) -> Result {
        if !is_writable(file) {
            return Err(EBADF);
        }
        if new > i64::MAX as u64 {
            return Err(EINVAL);
        }
        if new > crate::max_file_size() {
            return Err(EFBIG);
        }
        let _inner = self.inner.lock();
        let old = self.size();
        let seals = self.seals.load(Relaxed);
        if (new < old && seals & SEAL_SHRINK != 0) || (new > old && seals & SEAL_GROW != 0) {
            return Err(EPERM);
        }
        if new >= old {
            self.size.store(new, Release);
            return Ok(());
        }
        self.shrink(new);
        Ok(())
    }

    /// Shrinks to `new` bytes: no fault can map a page while this runs.
    fn shrink(&self, new: u64) {
        let _g = self.mapping.lock_exclusive();
        // INVARIANT: size shrinks under `inner` and the exclusive invalidate lock.
        self.size.store(new, Release);
        let first_gone = pages_for(new);
        // Zap every mapping of the pages past EOF, private COW copies included (truncate).
        self.mapping.unmap_range(first_gone * PAGE, 0, true);
        // INVARIANT: no page at or past `pages_for(new)` remains.
        self.store.remove_range(first_gone as usize, usize::MAX);
        // The bytes past EOF in the last page read as zeros if the file grows again.
        let tail = (new % PAGE) as usize;
        if tail != 0 {
            if let Some(page) = self.store.get((new / PAGE) as usize) {
                page.zero(tail, PAGE_SIZE - tail);
            }
        }
    }

    /// `SEALMEM_IOC_PUNCH_HOLE`.
    fn punch_hole(&self, file: &File, offset: u64, len: u64) -> Result {
        if !is_writable(file) {
            return Err(EBADF);
        }
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if len == 0 || offset % PAGE != 0 || len % PAGE != 0 || end > i64::MAX as u64 {
            return Err(EINVAL);
        }
        let _inner = self.inner.lock();
        if self.seals.load(Relaxed) & (SEAL_WRITE | SEAL_FUTURE_WRITE) != 0 {
            return Err(EPERM);
        }
        let eof_pages = pages_for(self.size());
        let (first, last_excl) = (offset / PAGE, (end / PAGE).min(eof_pages));
        if first >= last_excl {
            return Ok(());
        }
        let _g = self.mapping.lock_exclusive();
        // Like fallocate(PUNCH_HOLE): private COW copies stay.
        self.mapping.unmap_range(first * PAGE, (last_excl - first) * PAGE, false);
        self.store.remove_range(first as usize, (last_excl - 1) as usize);
        Ok(())
    }

    /// `SEALMEM_IOC_ADD_SEALS`: memfd's rules and errnos.
    fn add_seals(&self, file: &File, seals: u32) -> Result {
        if !is_writable(file) {
            return Err(EPERM);
        }
        if seals & !SEALS_ALL != 0 {
            return Err(EINVAL);
        }
        let _inner = self.inner.lock();
        let cur = self.seals.load(Relaxed);
        if cur & SEAL_SEAL != 0 {
            return Err(EPERM);
        }
        let new = cur | seals;
        if seals & SEAL_WRITE != 0 && cur & SEAL_WRITE == 0 {
            // Publish the seal, then look for writable shared mappings. The mm counts a new
            // shared-writable mapping (a fully ordered atomic) before our mmap hook reads the
            // seals, so either we see its count here or the hook sees the seal.
            self.seals.xchg(new, Full);
            if self.mapping.writably_mapped() {
                self.seals.store(cur, Release);
                return Err(EBUSY);
            }
            return Ok(());
        }
        self.seals.store(new, Release);
        Ok(())
    }

    /// `SEALMEM_IOC_SET_NAME`.
    fn set_name(&self, file: &File, user: UserPtr) -> Result {
        if !is_writable(file) {
            return Err(EBADF);
        }
        let mut buf = [0u8; NAME_MAX + 1];
        UserSlice::new(user, size_of::<uapi::sealmem_name>()).reader().read_slice(&mut buf)?;
        let len = buf.iter().position(|&b| b == 0).ok_or(EINVAL)?;
        let mut inner = self.inner.lock();
        inner.name[..len].copy_from_slice(&buf[..len]);
        inner.name_len = len;
        Ok(())
    }

    /// `SEALMEM_IOC_GET_NAME`.
    fn get_name(&self, user: UserPtr) -> Result {
        let mut out = [0u8; size_of::<uapi::sealmem_name>()];
        {
            let inner = self.inner.lock();
            out[..inner.name_len].copy_from_slice(&inner.name[..inner.name_len]);
        }
        UserSlice::new(user, out.len()).writer().write_slice(&out)
    }

    /// `SEALMEM_IOC_VIEW`: a new read-only fd of this file.
    fn view(this: ArcBorrowed<'_>, flags: usize) -> Result<u32> {
        if flags & !(uapi::SEALMEM_FD_CLOEXEC as usize) != 0 {
            return Err(EINVAL);
        }
        device::install_file(this.into(), false, flags & uapi::SEALMEM_FD_CLOEXEC as usize != 0)
    }

    // ---- read, write, seek -----------------------------------------------------------

    /// read/pread/readv/splice: copies from `pos`; holes read as zeros.
    pub(crate) fn read(&self, pos: &mut i64, dst: &mut IovIterDest<'_>) -> Result<usize> {
        let mut at = u64::try_from(*pos).map_err(|_| EINVAL)?;
        let mut done = 0usize;
        while !dst.is_empty() {
            let size = self.size();
            if at >= size {
                break;
            }
            let off = (at % PAGE) as usize;
            let n = (PAGE_SIZE - off).min(dst.len()).min((size - at).min(PAGE) as usize);
            let copied = match self.store.get((at / PAGE) as usize) {
                Some(page) => page.copy_to_iter(off, n, dst),
                None => crate::page::zero_iter(n, dst),
            };
            at += copied as u64;
            done += copied;
            if copied < n {
                if done == 0 {
                    return Err(EFAULT);
                }
                break;
            }
        }
        *pos = at as i64;
        Ok(done)
    }

    /// write/pwrite/writev: a write past EOF grows the file.
    pub(crate) fn write(&self, pos: &mut i64, append: bool, src: &mut IovIterSource<'_>) -> Result<usize> {
        let _inner = self.inner.lock();
        let seals = self.seals.load(Relaxed);
        if seals & (SEAL_WRITE | SEAL_FUTURE_WRITE) != 0 {
            return Err(EPERM);
        }
        let start = if append { self.size() } else { u64::try_from(*pos).map_err(|_| EINVAL)? };
        let len = src.len() as u64;
        if len == 0 {
            return Ok(0);
        }
        let end = start.checked_add(len).ok_or(EFBIG)?;
        if end > self.size() && seals & SEAL_GROW != 0 {
            return Err(EPERM);
        }
        if end > crate::max_file_size() || end > i64::MAX as u64 {
            return Err(EFBIG);
        }
        let mut at = start;
        let mut result = Ok(());
        while at < end {
            let off = (at % PAGE) as usize;
            let n = (PAGE_SIZE - off).min((end - at) as usize);
            let page = match self.store.get_or_alloc((at / PAGE) as usize) {
                Ok(p) => p,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let copied = page.copy_from_iter(off, n, src);
            at += copied as u64;
            if at > self.size() {
                self.size.store(at, Release);
            }
            if copied < n {
                result = Err(EFAULT);
                break;
            }
        }
        let done = (at - start) as usize;
        if done == 0 {
            result?;
        }
        *pos = at as i64;
        Ok(done)
    }

    /// SEEK_DATA / SEEK_HOLE from `offset`: ENXIO at or past EOF.
    pub(crate) fn seek_data_hole(&self, offset: i64, data: bool) -> Result<i64> {
        let size = self.size();
        let off = u64::try_from(offset).map_err(|_| ENXIO)?;
        if off >= size {
            return Err(ENXIO);
        }
        let (first, last) = ((off / PAGE) as usize, (pages_for(size) - 1) as usize);
        let found = if data {
            self.store.next_present(first, last).ok_or(ENXIO)? as u64 * PAGE
        } else {
            self.store.next_hole(first, last).map_or(size, |i| i as u64 * PAGE)
        };
        Ok(found.max(off).min(size) as i64)
    }

    // ---- mmap and faults -------------------------------------------------------------

    /// The mmap hook: applies the seals to the new VMA (memfd's rules) and installs our
    /// vm_ops. Runs under mmap_lock, so it must not take `inner` (see the lock order).
    pub(crate) fn mmap(&self, vma: &VmaNew) -> Result {
        use kernel::mm::virt::flags;
        let seals = self.seals.load(Acquire);
        if vma.flags() & flags::SHARED != 0 && seals & (SEAL_WRITE | SEAL_FUTURE_WRITE) != 0 {
            if vma.writable() {
                return Err(EPERM);
            }
            vma.try_clear_maywrite()?;
        }
        if seals & SEAL_EXEC != 0 {
            if vma.executable() {
                return Err(EPERM);
            }
            vma.try_clear_mayexec()?;
        }
        vm::setup_vma(vma);
        Ok(())
    }

    /// The fault handler: maps the page (allocating a zero page on a hole) and the resident
    /// pages that follow it.
    pub(crate) fn fault(&self, vmf: &Fault<'_>) -> FaultOutcome {
        Stats::inc(&STATS.faults);
        let index = vmf.pgoff();
        let _g = self.mapping.lock_shared();
        let eof_pages = pages_for(self.size());
        if index as u64 >= eof_pages {
            return FaultOutcome::SigBus;
        }
        let page = match self.store.get_or_alloc(index) {
            Ok(p) => p,
            Err(e) if e == ENOMEM => return FaultOutcome::Oom,
            Err(_) => return FaultOutcome::SigBus,
        };
        match vmf.insert(&page) {
            Ok(()) => {}
            Err(e) if e == EBUSY => return FaultOutcome::Mapped,
            Err(e) if e == ENOMEM => return FaultOutcome::Oom,
            Err(_) => return FaultOutcome::SigBus,
        }
        drop(page);
        // Fault-around: map the run of resident pages after this one, up to EOF and the VMA.
        let end = (index + 1 + FAULT_AROUND)
            .min(vmf.vma_end_pgoff())
            .min(usize::try_from(eof_pages).unwrap_or(usize::MAX));
        let mut run: [Option<PageRef>; FAULT_AROUND] = [const { None }; FAULT_AROUND];
        let mut n = 0;
        for i in index + 1..end {
            match self.store.get(i) {
                Some(p) => {
                    run[n] = Some(p);
                    n += 1;
                }
                None => break,
            }
        }
        if n > 0 {
            vmf.insert_run(index + 1, run[..n].iter().flatten());
        }
        FaultOutcome::Mapped
    }

    // ---- fdinfo ------------------------------------------------------------------------

    /// Prints this file's lines of `/proc/<pid>/fdinfo/<fd>`.
    pub(crate) fn show_fdinfo(&self, m: &SeqFile) {
        let mut name = [0u8; NAME_MAX];
        let (api, name_len) = {
            let inner = self.inner.lock();
            name[..inner.name_len].copy_from_slice(&inner.name[..inner.name_len]);
            (inner.api, inner.name_len)
        };
        seq_print!(m, "sealmem-id:\t{}\n", self.id);
        seq_print!(m, "name:\t{}\n", EscapedName(&name[..name_len]));
        seq_print!(m, "size:\t{}\n", self.size());
        seq_print!(m, "seals:\t{:#x}\n", self.seals.load(Relaxed));
        seq_print!(m, "pages:\t{}\n", self.store.resident());
        seq_print!(m, "lazy:\toff\n");
        seq_print!(m, "pending:\t0\n");
        seq_print!(m, "api:\t{}\n", api);
    }
}

/// An `ArcBorrow` of a [`SealFile`], for methods that need to clone the `Arc`.
pub(crate) type ArcBorrowed<'a> = kernel::sync::ArcBorrow<'a, SealFile>;

/// Prints a name with control bytes, backslash and non-ASCII bytes as `\ooo` octal escapes,
/// so one fdinfo line stays one line.
struct EscapedName<'a>(&'a [u8]);

impl kernel::fmt::Display for EscapedName<'_> {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        for &b in self.0 {
            if b.is_ascii_graphic() && b != b'\\' || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\{:03o}", b)?;
            }
        }
        Ok(())
    }
}

#[pinned_drop]
impl PinnedDrop for SealFile {
    fn drop(self: Pin<&mut Self>) {
        Stats::dec(&STATS.files);
    }
}
