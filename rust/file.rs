// SPDX-License-Identifier: GPL-2.0

//! The sealmem file object: one per `open()` of `/dev/sealmem`, shared by every fd that refers
//! to the same file (dup, fork, SCM_RIGHTS, VIEW fds).
//!
//! # Lock order
//!
//! 1. `SealFile::inner` (mutex): serialises writers, size changes, seals and the name, like
//!    an inode's `i_rwsem`. A write copies from user memory under it only atomically (page
//!    faults disabled); a source that faults is faulted in with `inner` dropped, so no wait
//!    for a lazy page (of this file or another) ever holds it.
//! 2. `mmap_lock` / per-VMA lock (taken by the mm for faults and mmap).
//! 3. The mapping's `invalidate_lock`: shared in the fault path and while a fill stores
//!    pages, exclusive while truncating or punching (so no fault can map a page that is
//!    being removed) and while FILL_END ends lazy mode (so no fill stores a page after it).
//! 4. `i_mmap_rwsem` (inside `unmap_mapping_range`).
//! 5. `SealFile::fill` (spinlock, lazy-fill state; see `fill.rs`), then the page store's
//!    XArray spinlock.
//!
//! Nothing waits for a lazy page while holding any of these: the fault path drops the
//! invalidate lock and the fault lock first, and a write drops `inner` (to wait for a hole
//! of this file, or to fault its source in).
//!
//! The mmap hook and the fault path never take `inner` (that would invert 1 and 2): they
//! read `size` and `seals`, which are atomics written under `inner`.

use kernel::{
    bindings,
    fs::File,
    iov::{IovIterDest, IovIterSource},
    mm::{
        virt::{VmaNew, VmaRef},
        Mm,
    },
    page::PAGE_SIZE,
    prelude::*,
    seq_file::{seq_print, SeqFile},
    sync::{
        atomic::{Acquire, Atomic, Full, Relaxed, Release},
        Arc, Mutex, MutexGuard, SpinLock,
    },
    uaccess::{UserPtr, UserSlice},
};

use crate::{
    device,
    fill::{FillState, HoleStatus, MSG_FAULT, MSG_WRITE},
    mapping::{Mapping, SharedGuard},
    stats::{AllocSite, Stats, STATS},
    store::{NewPage, PageStore, Peek, Slot, SlotKind},
    uapi,
    vm::{self, Fault, FaultOutcome},
    wait::{Interrupted, WaitMode},
};

/// Feature bits this build of the module implements (reported by `SEALMEM_IOC_API`).
pub(crate) const SUPPORTED_FEATURES: u64 = (uapi::SEALMEM_FEATURE_SIZE_IO
    | uapi::SEALMEM_FEATURE_SEALS
    | uapi::SEALMEM_FEATURE_VIEW
    | uapi::SEALMEM_FEATURE_LAZY_FILL) as u64;

/// ioctls this build implements on a sealmem file, as a mask of `1 << nr`.
pub(crate) const SUPPORTED_IOCTLS: u64 = (1 << uapi::SEALMEM_NR_API)
    | (1 << uapi::SEALMEM_NR_SET_SIZE)
    | (1 << uapi::SEALMEM_NR_GET_SIZE)
    | (1 << uapi::SEALMEM_NR_PUNCH_HOLE)
    | (1 << uapi::SEALMEM_NR_ADD_SEALS)
    | (1 << uapi::SEALMEM_NR_GET_SEALS)
    | (1 << uapi::SEALMEM_NR_SET_NAME)
    | (1 << uapi::SEALMEM_NR_GET_NAME)
    | (1 << uapi::SEALMEM_NR_VIEW)
    | (1 << uapi::SEALMEM_NR_FILL_ENABLE)
    | (1 << uapi::SEALMEM_NR_COPY)
    | (1 << uapi::SEALMEM_NR_ZEROPAGE)
    | (1 << uapi::SEALMEM_NR_WAKE)
    | (1 << uapi::SEALMEM_NR_POISON)
    | (1 << uapi::SEALMEM_NR_FILL_END);

const SEAL_SEAL: u32 = uapi::SEALMEM_SEAL_SEAL;
const SEAL_SHRINK: u32 = uapi::SEALMEM_SEAL_SHRINK;
const SEAL_GROW: u32 = uapi::SEALMEM_SEAL_GROW;
const SEAL_WRITE: u32 = uapi::SEALMEM_SEAL_WRITE;
const SEAL_FUTURE_WRITE: u32 = uapi::SEALMEM_SEAL_FUTURE_WRITE;
const SEAL_EXEC: u32 = uapi::SEALMEM_SEAL_EXEC;
const SEALS_ALL: u32 = uapi::SEALMEM_SEALS_ALL;

const NAME_MAX: usize = uapi::SEALMEM_NAME_MAX as usize;
const PAGE: u64 = PAGE_SIZE as u64;

/// Pages mapped by one fault (fault-around): the aligned 64 KiB block around the faulting
/// address, like the mm's default `fault_around_bytes`. A power of two, and one run of
/// `Fault::insert_run`.
const FAULT_AROUND: usize = vm::MAX_RUN;

/// Source of file ids (shown in fdinfo, so tests can tell files apart).
static NEXT_ID: Atomic<u64> = Atomic::new(1);

/// Number of pages needed to hold `size` bytes.
pub(crate) fn pages_for(size: u64) -> u64 {
    size.div_ceil(PAGE)
}

/// Whether a `struct file` may write (O_WRONLY or O_RDWR).
pub(crate) fn is_writable(file: &File) -> bool {
    file.flags() & bindings::O_ACCMODE != bindings::O_RDONLY
}

/// A page-aligned, non-empty byte range whose end neither overflows nor passes 2^63-1
/// (PUNCH_HOLE, COPY/ZEROPAGE/POISON, WAKE); `EINVAL` otherwise.
pub(crate) fn check_page_range(offset: u64, len: u64) -> Result {
    let end = offset.checked_add(len).ok_or(EINVAL)?;
    if len == 0 || offset % PAGE != 0 || len % PAGE != 0 || end > i64::MAX as u64 {
        return Err(EINVAL);
    }
    Ok(())
}

/// Where one locked pass of [`SealFile::write`] stopped.
enum WriteStep {
    /// The whole source was written.
    Done,
    /// A hole of a lazy file at this index: wait for the handler, then go on.
    Hole(usize),
    /// The source faulted with this many bytes of the current page left: fault it in.
    SourceFault(usize),
    /// An error.
    Err(Error),
}

/// A count of mappings that may become executable, which ADD_SEALS(EXEC) can deny, as
/// `i_mmap_writable` counts shared writable mappings for the WRITE seal: `n >= 0` mappings,
/// or negative once new ones are denied (the EXEC seal is set; it is never undone).
struct ExecMaps(Atomic<i64>);

impl ExecMaps {
    /// Counts one more mapping; false if they are denied.
    fn add(&self) -> bool {
        let mut v = self.0.load(Relaxed);
        loop {
            if v < 0 {
                return false;
            }
            match self.0.cmpxchg(v, v + 1, Full) {
                Ok(_) => return true,
                Err(cur) => v = cur,
            }
        }
    }

    /// Counts a copy of a counted mapping (the count is positive, so never denied).
    fn copied(&self) {
        self.0.add(1i64, Relaxed);
    }

    /// Uncounts a mapping counted by [`Self::add`] or [`Self::copied`].
    fn remove(&self) {
        self.0.fetch_sub(1i64, Full);
    }

    /// Denies new mappings; `EBUSY` if one is counted now.
    fn deny(&self) -> Result {
        let mut v = self.0.load(Relaxed);
        loop {
            if v > 0 {
                return Err(EBUSY);
            }
            match self.0.cmpxchg(v, v - 1, Full) {
                Ok(_) => return Ok(()),
                Err(cur) => v = cur,
            }
        }
    }
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
/// - Pages leave `store` only while `mapping`'s invalidate lock is held exclusive (shrink,
///   punch hole) or when the file itself is dropped; so a page seen under the lock held
///   shared stays allocated until it is released (the fault path maps pages on that basis).
#[pin_data(PinnedDrop)]
pub(crate) struct SealFile {
    id: u64,
    #[pin]
    inner: Mutex<Inner>,
    mapping: Mapping,
    #[pin]
    pub(crate) store: PageStore,
    size: Atomic<u64>,
    seals: Atomic<u32>,
    /// Mappings that may become executable (VM_MAYEXEC), counted as `i_mmap_writable` counts
    /// shared writable ones: the mmap hook and `vm_ops->open` add one, `vm_ops->close` takes
    /// it away. Negative once ADD_SEALS(EXEC) denied new ones ([`ExecMaps`]).
    /// (VM_MIXEDMAP VMAs never merge, so every VMA is opened and closed on its own.)
    exec_maps: ExecMaps,
    /// Lazy-fill state (see `fill.rs`).
    #[pin]
    pub(crate) fill: SpinLock<FillState>,
    /// Mirror of `fill.lazy` for lock-free fast paths; decisions are re-taken under `fill`.
    pub(crate) lazy: Atomic<bool>,
    /// Tasks waiting for a lazy page.
    #[pin]
    pub(crate) page_wq: crate::wait::WaitQueue,
    /// Handler-fd readers and pollers.
    #[pin]
    pub(crate) handler_wq: crate::wait::WaitQueue,
    /// Open `struct file`s that can reach the data (the misc open and VIEW fds; mappings hold
    /// one of these). When it drops to 0, nothing can fault any more: the handler sees HUP.
    data_files: Atomic<u64>,
}

impl SealFile {
    /// Creates the object for a new `open()` of the device and attaches `file` to it.
    pub(crate) fn open(file: &File) -> Result<Arc<Self>> {
        let obj = Arc::pin_init(
            try_pin_init!(Self {
                id: NEXT_ID.fetch_add(1u64, Relaxed),
                inner <- kernel::new_mutex!(Inner { api: 0, name: [0; NAME_MAX], name_len: 0 }),
                mapping: Mapping::new()?,
                store <- PageStore::new(),
                size: Atomic::new(0),
                seals: Atomic::new(0),
                exec_maps: ExecMaps(Atomic::new(0)),
                fill <- kernel::new_spinlock!(FillState::new()),
                lazy: Atomic::new(false),
                page_wq <- crate::wait::WaitQueue::new(),
                handler_wq <- crate::wait::WaitQueue::new(),
                data_files: Atomic::new(1),
            }),
            // Charged to the opener's memory cgroup, like the inode and the pages.
            GFP_KERNEL_ACCOUNT,
        )
        .inspect_err(crate::stats::enomem_at(AllocSite::File))?;
        // INVARIANT: counted once here, uncounted once in `drop`.
        Stats::inc(&STATS.files);
        Stats::inc(&STATS.files_created);
        obj.mapping.attach(file);
        Ok(obj)
    }

    /// Called when a data `struct file` (the misc open or a VIEW) of this file is released.
    pub(crate) fn release(self: Arc<Self>, _file: &File) {
        if self.data_files.fetch_sub(1u64, Relaxed) == 1 {
            // Nothing can fault any more: a handler waiting for requests sees HUP.
            self.handler_wq.wake_poll(crate::wait::POLL_HUP);
        }
        drop(self);
    }

    /// Attaches a new data `struct file` (a VIEW fd) to this file.
    pub(crate) fn attach(&self, file: &File) {
        self.data_files.add(1u64, Relaxed);
        self.mapping.attach(file);
    }

    /// Open data `struct file`s (see the field).
    pub(crate) fn data_files(&self) -> u64 {
        self.data_files.load(Relaxed)
    }

    /// The file id shown in fdinfo.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Locks `inner` (for `fill.rs`, which must order FILL_ENABLE against ADD_SEALS).
    pub(crate) fn inner_lock(&self) -> MutexGuard<'_, impl Sized> {
        self.inner.lock()
    }

    /// Whether WRITE or FUTURE_WRITE is set.
    pub(crate) fn write_sealed(&self) -> bool {
        self.seals.load(Acquire) & (SEAL_WRITE | SEAL_FUTURE_WRITE) != 0
    }

    /// Stores handler `handler`'s filled pages at `first, first + 1, ...` while those indices
    /// are holes within EOF and the handler is still attached, under one hold of the
    /// invalidate lock (shared: it orders this against truncation and against FILL_END,
    /// which takes it exclusive to end lazy mode). Returns how many were stored and, if not
    /// all, why the next one was not (`EINVAL`: past EOF or not attached, `EEXIST`,
    /// `ENOMEM`); the rest stay in `pages`.
    pub(crate) fn store_filled(&self, first: usize, pages: &mut [NewPage], handler: u64) -> (usize, Option<Error>) {
        let _g = self.mapping.lock_shared();
        if !self.attached(handler) {
            // FILL_END came after this fill's first checks: its holes may have been read as
            // zeros already.
            return (0, Some(EINVAL));
        }
        let room = usize::try_from(pages_for(self.size()).saturating_sub(first as u64)).unwrap_or(usize::MAX);
        let n = pages.len().min(room);
        let (stored, err) = self.store.insert_run(first, &mut pages[..n]);
        Stats::add(&STATS.fills, stored as u64);
        match err {
            None if stored == room && room < pages.len() => (stored, Some(EINVAL)),
            _ => (stored, err),
        }
    }

    /// Holds fills off while the guard lives: no fill is between its check that its handler
    /// is attached and its store (both happen under the invalidate lock shared). FILL_END
    /// ends lazy mode under it.
    pub(crate) fn hold_off_fills(&self) -> crate::mapping::ExclusiveGuard<'_> {
        self.mapping.lock_exclusive()
    }

    /// Poisons the hole at `index` for handler `handler` (as [`Self::store_filled`]).
    pub(crate) fn store_poison(&self, index: usize, handler: u64) -> Result {
        let _g = self.mapping.lock_shared();
        if !self.attached(handler) || index as u64 >= pages_for(self.size()) {
            return Err(EINVAL);
        }
        self.store.poison(index)
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
            uapi::SEALMEM_IOC_FILL_ENABLE => Self::fill_enable(this, file, arg),
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
        // Waiters for pages past the new EOF retry and get SIGBUS / EOF.
        self.drop_requests_from(first_gone as usize);
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
        check_page_range(offset, len)?;
        let end = offset + len;
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
        // Every refusal happens before any bit is published: a concurrent mmap never sees a
        // seal that this call does not add. Writers are held off by `inner`.
        let add_write = seals & SEAL_WRITE != 0 && cur & SEAL_WRITE == 0;
        let add_exec = seals & SEAL_EXEC != 0 && cur & SEAL_EXEC == 0;
        if add_write {
            // As memfd_add_seals: no shared mapping may write (EBUSY if one exists; new ones
            // get EPERM from the mm until the seal is published), and no page may be pinned
            // by anyone who could write through the pin later (an io_uring fixed buffer).
            self.mapping.deny_writable()?;
            if let Err(e) = self.wait_for_pins() {
                self.mapping.allow_writable();
                return Err(e);
            }
        }
        if add_exec {
            if let Err(e) = self.exec_maps.deny() {
                if add_write {
                    self.mapping.allow_writable();
                }
                return Err(e);
            }
        }
        if add_write {
            // Publish the seal (fully ordered), then let shared mappings be counted again: from
            // here on our mmap hook refuses writable ones and clears VM_MAYWRITE on the others,
            // so read-only shared mappings of a writable fd still work, as for memfd (whose
            // seal check clears VM_MAYWRITE before the mm counts the mapping; ours runs after,
            // so the denial cannot stay).
            self.seals.xchg(new, Full);
            self.mapping.allow_writable();
            return Ok(());
        }
        self.seals.store(new, Release);
        Ok(())
    }

    /// Waits a little for pages with references beyond the store's and their mappings' to
    /// lose them, as `memfd_wait_for_pins` does (transient ones: a read in progress, a GUP
    /// of a mapping); `EBUSY` if some remain (a long-term pin). Called under `inner` with new
    /// writable mappings denied, so no new write access can appear meanwhile.
    fn wait_for_pins(&self) -> Result {
        // memfd's schedule: scan, then rescan after about 5, 10, 20 and 40 ms.
        for scan in 0..5u32 {
            if scan > 0 && crate::wait::sleep_killable_ms(5 << (scan - 1)) {
                return Err(EINTR);
            }
            if !self.store.any_extra_refs() {
                return Ok(());
            }
        }
        Err(EBUSY)
    }

    /// A new mapping of this file (the mmap hook) that may become executable: counted; false
    /// if the EXEC seal denies it (the caller then clears VM_MAYEXEC or refuses the mapping).
    pub(crate) fn exec_map_opened(&self) -> bool {
        self.exec_maps.add()
    }

    /// A counted mapping was copied (fork, split, mremap): the copy is counted too. The count
    /// is positive (its source is counted), so it cannot be denied.
    pub(crate) fn exec_map_copied(&self) {
        self.exec_maps.copied();
    }

    /// A counted mapping (see [`Self::exec_map_opened`]) is gone.
    pub(crate) fn exec_map_closed(&self) {
        self.exec_maps.remove();
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
        device::install_file(this.into(), flags & uapi::SEALMEM_FD_CLOEXEC as usize != 0)
    }

    // ---- read, write, seek -----------------------------------------------------------

    /// read/pread/readv/splice: copies from `pos`. Holes read as zeros, except in a lazy
    /// file, where the read waits for the handler to fill them (`EAGAIN` if `nonblock`).
    pub(crate) fn read(&self, pos: &mut i64, dst: &mut IovIterDest<'_>, nonblock: bool) -> Result<usize> {
        let mut at = u64::try_from(*pos).map_err(|_| EINVAL)?;
        let mut done = 0usize;
        // An error ends the read, but bytes already copied are returned first.
        let mut stop: Option<Error> = None;
        while !dst.is_empty() {
            let size = self.size();
            if at >= size {
                break;
            }
            let index = (at / PAGE) as usize;
            let off = (at % PAGE) as usize;
            let n = (PAGE_SIZE - off).min(dst.len()).min((size - at).min(PAGE) as usize);
            // Lazy mode first, then the slot: FILL_END ends lazy mode (Release) only after every
            // fill stored before it, and none stores after it. So a hole seen after "not lazy"
            // stays a hole, and one seen while lazy is waited for; a hole is never read as
            // zeros while a fill can still make it content.
            let lazy = self.is_lazy();
            let slot = self.store.slot(index);
            crate::knobs::delay(crate::knobs::Point::ReadAfterSlot);
            let copied = match slot {
                Slot::Page(page) => page.copy_to_iter(off, n, dst),
                Slot::Poison => {
                    stop = Some(EIO);
                    break;
                }
                Slot::Hole if !lazy => crate::page::zero_iter(n, dst),
                Slot::Hole => match self.wait_for_hole(index, 0, nonblock) {
                    Ok(()) => continue,
                    Err(e) => {
                        stop = Some(e);
                        break;
                    }
                },
            };
            at += copied as u64;
            done += copied;
            if copied < n {
                stop = Some(EFAULT);
                break;
            }
        }
        *pos = at as i64;
        match stop {
            Some(e) if done == 0 => Err(e),
            _ => Ok(done),
        }
    }

    /// A syscall's wait for the hole at `index` of a lazy file. `Ok` means "look again".
    fn wait_for_hole(&self, index: usize, flags: u32, nonblock: bool) -> Result {
        match self.hole_request(index, flags, None, !nonblock)? {
            HoleStatus::Resolved => Ok(()),
            HoleStatus::Poisoned | HoleStatus::NoHandler => Err(EIO),
            HoleStatus::Wait(_) if nonblock => Err(EAGAIN),
            HoleStatus::Wait(ticket) => self.wait_hole(ticket, WaitMode::Interruptible).map_err(|_| ERESTARTSYS),
        }
    }

    /// write/pwrite/writev: a write past EOF grows the file. In a lazy file a write into a
    /// hole (any page below `pages_for(size)`, the partial last page included) first waits
    /// for the handler to fill it. Nothing waits with `inner` held: the copy from the source
    /// is atomic (page faults disabled) under `inner`; a short copy drops `inner`, faults the
    /// source in (which may wait for a lazy page, of this file or another) and retries, as
    /// `generic_perform_write` does.
    pub(crate) fn write(&self, pos: &mut i64, append: bool, nonblock: bool, src: &mut IovIterSource<'_>) -> Result<usize> {
        let mut done = 0usize;
        loop {
            // As generic_perform_write: a writer whose source keeps faulting (someone keeps
            // unmapping it) can still be killed, and yields the CPU between passes.
            if done > 0 && crate::wait::fatal_signal_pending() {
                return Ok(done);
            }
            crate::wait::cond_resched();
            let stop = match self.write_locked(pos, append, &mut done, src) {
                WriteStep::Done => return Ok(done),
                WriteStep::Hole(index) => self.wait_for_hole(index, MSG_WRITE, nonblock).err(),
                WriteStep::SourceFault(want) => {
                    // Nothing could be copied from the source: fault it in (no lock held) and
                    // retry, unless none of it can be faulted in.
                    (crate::page::fault_in_source(src, want) == want).then_some(EFAULT)
                }
                WriteStep::Err(e) => Some(e),
            };
            if let Some(e) = stop {
                return if done > 0 { Ok(done) } else { Err(e) };
            }
        }
    }

    /// One pass of `write` under `inner`: writes page by page until the source is empty, an
    /// error, a lazy hole or a source fault, adding the bytes written to `done`.
    fn write_locked(&self, pos: &mut i64, append: bool, done: &mut usize, src: &mut IovIterSource<'_>) -> WriteStep {
        let len = src.len() as u64;
        if len == 0 {
            // As for memfd, a zero-length write succeeds whatever the seals.
            return WriteStep::Done;
        }
        let _inner = self.inner.lock();
        let seals = self.seals.load(Relaxed);
        if seals & (SEAL_WRITE | SEAL_FUTURE_WRITE) != 0 {
            return WriteStep::Err(EPERM);
        }
        let start = if append && *done == 0 {
            self.size()
        } else if append && u64::try_from(*pos) != Ok(self.size()) {
            // An O_APPEND write resumed after waiting (for a hole or its source) finds that
            // another write moved EOF meanwhile: it stops short rather than overwrite what
            // that write appended. A write that waits is not atomic with respect to other
            // writers (docs/api.md); appends never overwrite each other.
            return WriteStep::Done;
        } else {
            match u64::try_from(*pos) {
                Ok(p) => p,
                Err(_) => return WriteStep::Err(EINVAL),
            }
        };
        let Some(end) = start.checked_add(len) else { return WriteStep::Err(EFBIG) };
        if end > crate::max_file_size() || end > i64::MAX as u64 {
            return WriteStep::Err(EFBIG);
        }
        let mut at = start;
        let mut step = WriteStep::Done;
        while at < end {
            let index = (at / PAGE) as usize;
            let off = (at % PAGE) as usize;
            let n = (PAGE_SIZE - off).min((end - at) as usize);
            let size = self.size();
            // GROW: as memfd, the pages within EOF are written; the one that would grow the
            // file is refused (a short write if something was written).
            if at + n as u64 > size && seals & SEAL_GROW != 0 {
                step = WriteStep::Err(EPERM);
                break;
            }
            let eof_pages = pages_for(size);
            let copied = if (index as u64) < eof_pages {
                // A page within EOF: in a lazy file a hole waits for the handler (the partial
                // last page too: its bytes below EOF are content only the handler provides).
                // `lazy` cannot change under `inner` but by FILL_END, which only ends waits.
                if self.is_lazy() && self.store.kind(index) == SlotKind::Hole {
                    step = WriteStep::Hole(index);
                    break;
                }
                match self.store.get_or_alloc(index, AllocSite::WritePage) {
                    Ok(page) => page.copy_from_iter_atomic(off, n, src),
                    Err(e) => {
                        step = WriteStep::Err(e);
                        break;
                    }
                }
            } else {
                // A page past EOF: filled before it is stored, so a source that faults leaves
                // nothing behind past EOF (nothing is stored there but with content).
                let page = match self.store.new_page().inspect_err(crate::stats::enomem_at(AllocSite::WritePage)) {
                    Ok(p) => p,
                    Err(e) => {
                        step = WriteStep::Err(e);
                        break;
                    }
                };
                let copied = page.page().map_or(0, |p| p.copy_from_iter_atomic(off, n, src));
                if copied > 0 {
                    if let Err(e) = self.store.insert(index, page) {
                        // ENOMEM (an XArray node): nothing else stores past EOF while `inner`
                        // is held. The bytes consumed from the source are not counted; callers
                        // go by the returned count (io_uring restores its iterator itself).
                        step = WriteStep::Err(e);
                        break;
                    }
                }
                copied
            };
            at += copied as u64;
            *done += copied;
            // Only bytes written move EOF (a write that copied nothing past EOF leaves the
            // size as it was).
            if copied > 0 && at > self.size() {
                self.size.store(at, Release);
            }
            if copied < n {
                step = WriteStep::SourceFault(n - copied);
                break;
            }
        }
        *pos = at as i64;
        step
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
        // May-exec mappings are counted (`exec_maps`) so that ADD_SEALS(EXEC) can refuse while
        // one exists; once the seal denies them, none may execute. Counting is the last step:
        // nothing below fails, and `vm_ops->close` uncounts the VMA.
        let may_exec = vma.flags() & flags::MAYEXEC != 0;
        if may_exec && (seals & SEAL_EXEC != 0 || !self.exec_map_opened()) {
            if vma.executable() {
                return Err(EPERM);
            }
            vma.try_clear_mayexec()?;
        }
        vm::setup_vma(vma);
        Ok(())
    }

    /// The fault handler: maps the page (allocating a zero page on a hole, or in a lazy file
    /// waiting for the handler to fill it) and the resident pages around it.
    pub(crate) fn fault(this: ArcBorrowed<'_>, vmf: Fault<'_>) -> FaultOutcome {
        Stats::inc(&STATS.faults);
        let index = vmf.pgoff();
        loop {
            // A lazy file's hole is requested at once: no invalidate lock, no look at its
            // neighbours (`hole_request` checks EOF and the slot again under the fill lock).
            let lazy_hole = this.is_lazy() && (index as u64) < pages_for(this.size()) && this.store.kind(index) == SlotKind::Hole;
            if !lazy_hole {
                let g = this.mapping.lock_shared();
                let eof_pages = pages_for(this.size());
                if index as u64 >= eof_pages {
                    return FaultOutcome::SigBus;
                }
                let lazy = this.is_lazy();
                let (first, end) = vmf.window(FAULT_AROUND);
                let end = end.min(usize::try_from(eof_pages).unwrap_or(usize::MAX));
                let mut win = [Peek::Hole; FAULT_AROUND];
                let (Some(win), Some(at)) = (win.get_mut(..end.saturating_sub(first)), index.checked_sub(first)) else {
                    return FaultOutcome::SigBus;
                };
                this.peek(&g, first, win);
                match win.get(at) {
                    Some(Peek::Page(_)) => return Self::map_window(&vmf, first, win, at),
                    Some(Peek::Hole) if lazy => {}
                    Some(Peek::Hole) => match this.zero_page_for_fault(index) {
                        // Mapped on the next pass, with its neighbours.
                        Ok(_) => continue,
                        Err(e) if e == ENOMEM => return FaultOutcome::Oom,
                        Err(_) => return FaultOutcome::SigBus,
                    },
                    Some(Peek::Poison) | None => return FaultOutcome::SigBus,
                }
            }
            // A hole of a lazy file: request it, then wait as handle_userfault() does. As there,
            // an exiting task (clearing its child tid) or one dumping core neither requests
            // nor waits: SIGBUS (the dump skips the page).
            if crate::wait::current_exiting_or_dumping() {
                return FaultOutcome::SigBus;
            }
            let flags = MSG_FAULT | if vmf.is_write() { MSG_WRITE } else { 0 };
            // It waits below only if it may retry and may sleep.
            let waits = vmf.allow_retry() && !vmf.retry_nowait();
            let ticket = match this.hole_request(index, flags, Some(vmf.fault_at()), waits) {
                Ok(HoleStatus::Resolved) => continue,
                Ok(HoleStatus::Poisoned | HoleStatus::NoHandler) => return FaultOutcome::SigBus,
                Err(_) => return FaultOutcome::Oom,
                Ok(HoleStatus::Wait(ticket)) => ticket,
            };
            if !vmf.allow_retry() {
                return FaultOutcome::SigBus;
            }
            if vmf.retry_nowait() {
                return FaultOutcome::Retry;
            }
            let mode = if vmf.interruptible() { WaitMode::Interruptible } else { WaitMode::Killable };
            // The VMA (and with it our borrow) may go away once the lock is dropped: hold the
            // VMA's file across the wait, as the mm does (`maybe_unlock_mmap_for_io`). The
            // file keeps both this object and the module (its `f_op->owner`) alive, so a
            // munmap, the last close and rmmod cannot pull either from under the waiter.
            let _file = vmf.file();
            let pinned: Arc<SealFile> = this.into();
            vmf.release_lock();
            // Woken: the fault is over; the filler mapped the page here (map-on-fill), so the
            // access neither retries the fault nor takes the mmap_lock for it (userfaultfd's
            // woken fault does both). Interrupted: the mm retries, delivering the signal first.
            let waited = pinned.wait_hole(ticket, mode);
            crate::knobs::delay(crate::knobs::Point::FaultAfterWait);
            return match waited {
                Ok(()) => FaultOutcome::Completed,
                Err(Interrupted) => FaultOutcome::Retry,
            };
        }
    }

    /// The page a fault on the hole `index` of a file that is not lazy maps: a new zero page
    /// (or one a racing access stored first). Called with the invalidate lock held shared,
    /// under which FILL_ENABLE cannot make the file lazy meanwhile.
    fn zero_page_for_fault(&self, index: usize) -> Result<crate::page::PageRef> {
        crate::knobs::delay(crate::knobs::Point::FaultBeforeZeroPage);
        self.store.get_or_alloc(index, AllocSite::FaultPage)
    }

    /// Maps the resident pages of the fault-around window `win` (file pages from `first`),
    /// run by run with `vm_insert_pages` (one page-table lock per 8 pages), skipping pages
    /// already mapped; the outcome is that of the faulting page, `win[at]`.
    fn map_window(vmf: &Fault<'_>, first: usize, win: &[Peek<'_>], at: usize) -> FaultOutcome {
        let Some(Peek::Page(filler)) = win.get(at).copied() else {
            return FaultOutcome::SigBus;
        };
        // The window's pages; a hole's slot keeps `filler` and is never passed on (runs stop
        // at holes).
        let mut pages = [filler; FAULT_AROUND];
        for (p, w) in pages.iter_mut().zip(win) {
            if let Peek::Page(q) = w {
                *p = *q;
            }
        }
        let mut outcome = FaultOutcome::SigBus;
        let mut i = 0;
        while i < win.len() {
            let n = win[i..].iter().take_while(|w| matches!(w, Peek::Page(_))).count();
            if n == 0 {
                i += 1;
                continue;
            }
            let (mapped, err) = vmf.insert_run(first + i, &pages[i..i + n]);
            if (i..i + mapped).contains(&at) {
                outcome = FaultOutcome::Mapped;
            }
            i += mapped;
            if let Some(e) = err {
                // Page `i` was not mapped: already mapped (EBUSY, a racing fault) is as good
                // as mapped for the faulting page; anything else is its outcome. The rest of
                // the window is still tried.
                if i == at {
                    outcome = if e == EBUSY {
                        FaultOutcome::Mapped
                    } else if e == ENOMEM {
                        FaultOutcome::Oom
                    } else {
                        FaultOutcome::SigBus
                    };
                }
                i += 1;
            }
        }
        outcome
    }

    /// Maps the just-filled page `index` where a fault on it waits (`addr` in `mm`), if that
    /// address still maps this file's page `index`; anything else is left to the fault.
    pub(crate) fn map_filled(&self, index: usize, mm: &Mm, addr: usize) {
        let Some(mm) = mm.mmget_not_zero() else { return };
        if let Some(vma) = mm.lock_vma_under_rcu(addr) {
            self.map_filled_in(&vma, index, addr);
            return;
        }
        // Never block the (shared) handler behind a consumer's mmap_lock writer (a consumer
        // looping mmap/munmap would stall every fill): if it is contended, leave the page to
        // the woken fault, which maps it itself.
        let Some(g) = mm.mmap_read_trylock() else { return };
        if let Some(vma) = g.vma_lookup(addr) {
            self.map_filled_in(vma, index, addr);
        }
    }

    fn map_filled_in(&self, vma: &VmaRef, index: usize, addr: usize) {
        if !vm::maps_file_page(vma, self, addr, index) {
            return;
        }
        // A page still in the store is within EOF (invariant): no size check needed.
        let g = self.mapping.lock_shared();
        let mut one = [Peek::Hole];
        self.peek(&g, index, &mut one);
        if let Peek::Page(page) = one[0] {
            // EBUSY (the fault already mapped it) and any other failure leave it to the fault.
            let _ = vm::insert_page(vma, addr, page);
        }
    }

    /// What `first..first + out.len()` holds, without page references: while `g` (this
    /// file's invalidate lock, shared) is held, no page can leave the store (invariant).
    fn peek<'a>(&'a self, g: &'a SharedGuard<'_>, first: usize, out: &mut [Peek<'a>]) {
        if !g.locks(&self.mapping) {
            out.fill(Peek::Hole);
            return;
        }
        // SAFETY: `g` holds this file's invalidate lock shared for 'a (checked above), and
        // pages leave `store` only under it exclusive (invariant).
        unsafe { self.store.peek_run(first, out) }
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
        self.show_fill(m);
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
