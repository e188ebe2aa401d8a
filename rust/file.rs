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
//! 3. The mapping's `invalidate_lock` (`mapping.rs`): shared in the fault path and while a
//!    fill stores pages, exclusive while truncating or punching (so no fault can map a page
//!    that is being removed), while FILL_ENABLE makes the file lazy and while FILL_END ends
//!    lazy mode (so no fill stores a page after it).
//! 4. `i_mmap_rwsem` (inside `unmap_mapping_range`).
//! 5. `LazyQueue::state` (spinlock, the lazy-fill requests; `lazy.rs`), then the page
//!    store's XArray spinlock (`pagearray.rs`). Nothing sleeps under either.
//!
//! This is the module's one lock-order list; the other files refer to it.
//!
//! A pipe's lock, held by the splice code around `splice_read` ([`SealFile::splice_read`]),
//! comes before all of these: that path takes only the two spinlocks of 5, briefly, and
//! may wait for a lazy page while the pipe's lock is held (as shmem's splice may wait for
//! swap-in), but only [`SPLICE_WAIT_MS`] at a time before it restarts the syscall, which
//! releases the pipe's lock; nothing of sealmem takes a pipe's lock.
//!
//! Nothing waits for a lazy page while holding any of these: the fault path drops the
//! invalidate lock and the fault lock first, and a write drops `inner` (to wait for a hole
//! of this file, or to fault its source in).
//!
//! The mmap hook and the fault path never take `inner` (that would invert 1 and 2): they
//! read `size` and `seals`, which are atomics written under `inner`.

use kernel::{
    fs::{file::flags, File},
    ioctl::_IOC_SIZE,
    iov::{IovIterDest, IovIterSource},
    page::PAGE_SIZE,
    prelude::*,
    seq_file::{seq_print, SeqFile},
    sync::{
        atomic::{Acquire, Atomic, Full, Relaxed, Release},
        Arc, Mutex,
    },
    uaccess::{UserPtr, UserSlice},
};

mod fault;
pub(crate) use fault::FaultStep;

use crate::{
    lazy::{Attach, Hole, HoleStatus, LazyQueue, Ticket, MSG_HUGE, MSG_WRITE},
    page::UNIT_PAGES,
    pipe::PipeSink,
    stats::{enomem_at, AllocSite, Stats, STATS},
    store::{unit_of, NewPage, NewUnit, PageStore, Slot, SlotKind},
    uapi,
    vm::{self, FaultAt},
    wait::{Interrupted, WaitMode},
};

/// Feature bits this build of the module implements on every kernel (reported by
/// `SEALMEM_IOC_API`); [`supported_features`] adds those the running kernel allows.
const SUPPORTED_FEATURES: u64 = (uapi::SEALMEM_FEATURE_SIZE_IO
    | uapi::SEALMEM_FEATURE_SEALS
    | uapi::SEALMEM_FEATURE_VIEW
    | uapi::SEALMEM_FEATURE_LAZY_FILL) as u64;

/// The feature bits `SEALMEM_IOC_API` reports: huge files only where the kernel has
/// transparent huge pages with 2 MiB PMDs.
fn supported_features() -> u64 {
    let huge = if crate::page::huge_supported() {
        u64::from(uapi::SEALMEM_FEATURE_HUGE)
    } else {
        0
    };
    SUPPORTED_FEATURES | huge
}

/// ioctls this build implements on a sealmem file, as a mask of `1 << nr`.
const SUPPORTED_IOCTLS: u64 = (1 << uapi::SEALMEM_NR_API)
    | (1 << uapi::SEALMEM_NR_SET_SIZE)
    | (1 << uapi::SEALMEM_NR_GET_SIZE)
    | (1 << uapi::SEALMEM_NR_PUNCH_HOLE)
    | (1 << uapi::SEALMEM_NR_ADD_SEALS)
    | (1 << uapi::SEALMEM_NR_GET_SEALS)
    | (1 << uapi::SEALMEM_NR_SET_NAME)
    | (1 << uapi::SEALMEM_NR_GET_NAME)
    | (1 << uapi::SEALMEM_NR_VIEW)
    | (1 << uapi::SEALMEM_NR_FILL_ENABLE)
    | (1 << uapi::SEALMEM_NR_SET_HUGE)
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
const FAULT_AROUND: usize = vm::MAP_RUN;

/// Longest a splice waits for a lazy page with the pipe's lock held before it starts over
/// (see [`SealFile::splice_read`]).
const SPLICE_WAIT_MS: u32 = 100;

/// Source of file ids (shown in fdinfo, so tests can tell files apart).
static NEXT_ID: Atomic<u64> = Atomic::new(1);

/// The `max_file_size` module parameter.
fn max_file_size() -> u64 {
    crate::module_parameters::max_file_size.value()
}

/// Number of pages needed to hold `size` bytes.
pub(crate) fn pages_for(size: u64) -> u64 {
    size.div_ceil(PAGE)
}

/// Whether a `struct file` may write (O_WRONLY or O_RDWR).
pub(crate) fn is_writable(file: &File) -> bool {
    file.flags() & flags::O_ACCMODE != flags::O_RDONLY
}

/// The result of a call that `err` stopped after `done` units of progress (bytes, pages):
/// the error only if nothing was done, else the short count (as read(), write() and
/// UFFDIO_COPY report a partial success).
pub(crate) fn partial<T: Copy + Default + PartialEq>(done: T, err: Option<Error>) -> Result<T> {
    match err {
        Some(e) if done == T::default() => Err(e),
        _ => Ok(done),
    }
}

/// Whether `seals` holds WRITE or FUTURE_WRITE: no write access through any fd or new
/// mapping.
fn write_sealed_in(seals: u32) -> bool {
    seals & (SEAL_WRITE | SEAL_FUTURE_WRITE) != 0
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
///
/// # Invariants
///
/// `name_len <= NAME_MAX`, and `name[..name_len]` holds no NUL byte (SET_NAME stores the
/// bytes before the first NUL of at most `NAME_MAX + 1`).
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
/// - `size` and `seals` change only under `inner`; `size` shrinks only while the store's
///   invalidate lock is also held exclusively. `seals` only gains bits, and none once
///   `SEAL_SEAL` is set.
/// - No page at an index `>= pages_for(size)` is added to `store`, and none stays there
///   after a shrink returns.
/// - Pages leave `store` only while its invalidate lock is held exclusive (shrink, punch
///   hole: [`PageStore::remove_range`] takes the guard as proof) or when the file itself is
///   dropped; so a page seen under the lock held shared stays allocated until it is released
///   (the fault path maps pages on that basis, through [`PageStore::peek_run`]).
/// - While `lazy` says the file is lazy, no hole becomes a page but by a fill of the
///   attached handler: lazy mode starts under `inner` and the invalidate lock exclusive
///   ([`SealFile::attach_handler`]), and the paths that allocate a zero page for a hole decide
///   "not lazy" under one of them (a write under `inner`, a fault under the invalidate lock
///   shared). It ends ([`SealFile::end_lazy`]) under the invalidate lock exclusive, and a fill
///   stores only under it shared, after checking that its handler is still attached.
/// - `data_files` counts the open `struct file`s of this file that can reach its data (the
///   misc open and VIEW fds); every one of them uses the store's address_space (`f_mapping`).
/// - `exec_maps` counts the VMAs of this file that kept VM_MAYEXEC, or is negative once the
///   EXEC seal denies new ones.
#[pin_data(PinnedDrop)]
pub(crate) struct SealFile {
    id: u64,
    #[pin]
    inner: Mutex<Inner>,
    #[pin]
    store: PageStore,
    size: Atomic<u64>,
    seals: Atomic<u32>,
    /// Mappings that may become executable (VM_MAYEXEC), counted as `i_mmap_writable` counts
    /// shared writable ones: the mmap hook and `vm_ops->open` add one, `vm_ops->close` takes
    /// it away. Negative once ADD_SEALS(EXEC) denied new ones ([`ExecMaps`]).
    /// (VM_MIXEDMAP VMAs never merge, so every VMA is opened and closed on its own.)
    exec_maps: ExecMaps,
    /// Lazy-fill requests, their waiters and the handler (see `lazy.rs`).
    #[pin]
    lazy: LazyQueue,
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
                inner <- kernel::new_mutex!(
                    Inner { api: 0, name: [0; NAME_MAX], name_len: 0 },
                    "SealFile::inner"
                ),
                store <- PageStore::new(),
                size: Atomic::new(0),
                seals: Atomic::new(0),
                exec_maps: ExecMaps(Atomic::new(0)),
                lazy <- LazyQueue::new(),
                data_files: Atomic::new(1),
            }),
            // Charged to the opener's memory cgroup, like the inode and the pages.
            GFP_KERNEL_ACCOUNT,
        )
        .inspect_err(enomem_at(AllocSite::File))?;
        // INVARIANT: counted once here, uncounted once in `drop`.
        Stats::inc(&STATS.files);
        Stats::inc(&STATS.files_created);
        obj.store.attach(file);
        Ok(obj)
    }

    /// Called when a data `struct file` (the misc open or a VIEW) of this file is released.
    pub(crate) fn release(self: Arc<Self>) {
        if self.data_files.fetch_sub(1u64, Relaxed) == 1 {
            // Nothing can fault any more: a handler waiting for requests sees HUP.
            self.lazy.hang_up();
        }
        drop(self);
    }

    /// Attaches a new data `struct file` (a VIEW fd) to this file.
    pub(crate) fn attach(&self, file: &File) {
        self.data_files.add(1u64, Relaxed);
        self.store.attach(file);
    }

    /// Open data `struct file`s (see the field).
    pub(crate) fn data_files(&self) -> u64 {
        self.data_files.load(Relaxed)
    }

    /// The file id shown in fdinfo.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Whether WRITE or FUTURE_WRITE is set.
    pub(crate) fn write_sealed(&self) -> bool {
        write_sealed_in(self.seals.load(Acquire))
    }

    /// Stores handler `handler`'s filled pages at `first, first + 1, ...` while those indices
    /// are holes within EOF and the handler is still attached, under one hold of the
    /// invalidate lock (shared: it orders this against truncation and against FILL_END,
    /// which takes it exclusive to end lazy mode). Returns how many were stored and, if not
    /// all, why the next one was not (`EINVAL`: past EOF or not attached, `EEXIST`,
    /// `ENOMEM`); the rest stay in `pages`.
    pub(crate) fn store_filled(
        &self,
        first: usize,
        pages: &mut [NewPage],
        handler: u64,
    ) -> (usize, Option<Error>) {
        let _g = self.store.lock_shared();
        if !self.attached(handler) {
            // FILL_END came after this fill's first checks: its holes may have been read as
            // zeros already.
            return (0, Some(EINVAL));
        }
        let room = usize::try_from(pages_for(self.size()).saturating_sub(first as u64))
            .unwrap_or(usize::MAX);
        let n = pages.len().min(room);
        let (stored, err) = self.store.insert_run(first, &mut pages[..n]);
        Stats::add(&STATS.fills, stored as u64);
        match err {
            None if stored == room && room < pages.len() => (stored, Some(EINVAL)),
            _ => (stored, err),
        }
    }

    /// Stores handler `handler`'s filled unit at `first` (unit-aligned) if all of it is a
    /// hole within EOF and the handler is still attached, atomically, under the invalidate
    /// lock shared as [`Self::store_filled`]. `EINVAL`: past EOF (the file shrank into the
    /// unit) or not attached; `EEXIST`; `ENOMEM`.
    pub(crate) fn store_unit(&self, first: usize, unit: NewUnit, handler: u64) -> Result {
        let _g = self.store.lock_shared();
        if !self.attached(handler) {
            return Err(EINVAL);
        }
        let n = unit.len();
        if first
            .checked_add(n)
            .is_none_or(|end| end as u64 > pages_for(self.size()))
        {
            return Err(EINVAL);
        }
        self.store.insert_unit(first, unit)?;
        Stats::add(&STATS.fills, n as u64);
        Ok(())
    }

    /// Whether this is a huge file.
    pub(crate) fn is_huge(&self) -> bool {
        self.store.is_huge()
    }

    /// A new unit of `n` pages for a fill ([`PageStore::new_unit`]).
    pub(crate) fn new_unit(&self, n: usize, zero: bool) -> Result<NewUnit> {
        self.store.new_unit(n, zero)
    }

    /// Whether the `n` pages from `first` are all holes.
    pub(crate) fn range_is_hole(&self, first: usize, n: usize) -> bool {
        self.store.range_is_hole(first, n)
    }

    /// In a huge file that is not lazy, the first touch of a hole at `index` whose unit is
    /// entirely a hole and entirely within EOF allocates a zeroed 2 MiB folio for the unit
    /// (like shmem's `huge=within_size`); when none can be allocated, the caller's small page
    /// does (counted as a fallback). A racing first touch that stored first is as good.
    /// Called where the caller decided "not lazy" (under `inner` or the invalidate lock
    /// shared), which FILL_ENABLE cannot change meanwhile.
    fn touch_unit(&self, index: usize) {
        if !self.store.is_huge() {
            return;
        }
        let unit = unit_of(index);
        let within = unit
            .checked_add(UNIT_PAGES)
            .is_some_and(|end| end as u64 <= pages_for(self.size()));
        if !within || !self.store.range_is_hole(unit, UNIT_PAGES) {
            return;
        }
        let Some(folio) = self.store.new_huge_unit() else {
            self.store.count_fallback();
            return;
        };
        // EEXIST: a racing touch stored first; ENOMEM (a tree node): the small page path
        // will report it if it persists.
        let _ = self.store.insert_unit(unit, folio);
    }

    /// Poisons the hole at `index` for handler `handler` (as [`Self::store_filled`]).
    pub(crate) fn store_poison(&self, index: usize, handler: u64) -> Result {
        let _g = self.store.lock_shared();
        if !self.attached(handler) || index as u64 >= pages_for(self.size()) {
            return Err(EINVAL);
        }
        self.store.poison(index)
    }

    /// The size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size.load(Acquire)
    }

    /// What kind of entry page `index` holds (no page reference is taken).
    pub(crate) fn kind(&self, index: usize) -> SlotKind {
        self.store.kind(index)
    }

    /// A new zeroed page for this file's store, counted against `max_pages` (see
    /// [`PageStore::new_page`]).
    pub(crate) fn new_page(&self) -> Result<NewPage> {
        self.store.new_page()
    }

    /// A new page for a caller that overwrites all of it (see
    /// [`PageStore::new_page_for_overwrite`]).
    pub(crate) fn new_page_for_overwrite(&self) -> Result<NewPage> {
        self.store.new_page_for_overwrite()
    }

    // ---- lazy fill -------------------------------------------------------------------

    /// The file's lazy-fill queue (the handler reads requests from it).
    pub(crate) fn lazy_queue(&self) -> &LazyQueue {
        &self.lazy
    }

    /// Whether handler `id` is the one attached to this file, and the file is lazy.
    fn attached(&self, id: u64) -> bool {
        self.lazy.attached(id)
    }

    /// Whether the file is lazy (a fast, lock-free hint; decisions are taken under the
    /// queue's lock).
    fn is_lazy(&self) -> bool {
        self.lazy.is_lazy()
    }

    /// What page `index`, a hole when the caller looked, is now (the queue asks under its
    /// lock, see [`LazyQueue::hole_request`]).
    fn hole_at(&self, index: usize) -> Hole {
        if index as u64 >= pages_for(self.size()) {
            return Hole::Gone;
        }
        match self.store.kind(index) {
            SlotKind::Page => Hole::Gone,
            SlotKind::Poison => Hole::Poisoned,
            SlotKind::Hole => Hole::Open,
        }
    }

    /// Raises (or joins) the request for the hole at `index` ([`LazyQueue::hole_request`]).
    ///
    /// In a huge file, a hole in a unit that is entirely a hole asks for the whole unit: one
    /// request keyed by the unit's first page, flagged `SEALMEM_MSG_HUGE`, that every access
    /// to the unit joins. Under the queue's lock the unit must still be entirely a hole (a
    /// fill stores before it resolves under that lock, so a page stored in the unit since is
    /// seen here, and the caller looks again); otherwise the page is asked for alone.
    fn hole_request(
        &self,
        index: usize,
        flags: u32,
        at: Option<FaultAt>,
        waits: bool,
    ) -> Result<HoleStatus> {
        if let Some((unit, n)) = self.hole_unit(index) {
            // The fault address is the faulting page's, not the unit's first: no map-on-fill
            // for a unit (a huge file's VMA is mapped by the woken fault itself).
            return self
                .lazy
                .hole_request(unit, flags | MSG_HUGE, None, waits, || {
                    match self.hole_at(index) {
                        Hole::Open if !self.store.range_is_hole(unit, n) => Hole::Gone,
                        h => h,
                    }
                });
        }
        self.lazy
            .hole_request(index, flags, at, waits, || self.hole_at(index))
    }

    /// The unit (first page, pages within EOF) a hole at `index` asks for as a whole: in a
    /// huge file, when the unit is entirely a hole.
    fn hole_unit(&self, index: usize) -> Option<(usize, usize)> {
        if !self.store.is_huge() {
            return None;
        }
        let unit = unit_of(index);
        let eof_pages = usize::try_from(pages_for(self.size())).unwrap_or(usize::MAX);
        let n = eof_pages.checked_sub(unit)?.min(UNIT_PAGES);
        (n > 0 && self.store.range_is_hole(unit, n)).then_some((unit, n))
    }

    /// Waits for the request `ticket` names ([`LazyQueue::wait_hole`]).
    fn wait_hole(&self, ticket: Ticket, mode: WaitMode) -> Result<(), Interrupted> {
        self.lazy.wait_hole(ticket, mode)
    }

    /// Resolves the requests of the pages `[first, end)` just filled or poisoned, maps each
    /// page where a fault waits for it, and wakes the waiters unless `wake` is false
    /// ([`LazyQueue::resolve_range`]).
    ///
    /// In a huge file the request of a unit is resolved by any fill inside it (it is keyed by
    /// the unit's first page, which may lie before `first`): its waiters look again, and ask
    /// again for what is still a hole, page by page if the unit is partly present now.
    pub(crate) fn resolve_filled(&self, first: usize, end: usize, wake: bool) {
        let map = |index: usize, at: &FaultAt| self.map_filled(index, at.mm(), at.addr());
        let unit = unit_of(first);
        if self.store.is_huge() && unit < first {
            self.lazy.resolve_range(unit, unit + 1, wake, map);
        }
        self.lazy.resolve_range(first, end, wake, map);
    }

    /// FILL_ENABLE's locked part: makes the file lazy with the handler `attach` names
    /// (`EBUSY`: one is attached; `EPERM`: write-sealed and not lazy yet). `fops.rs` made the
    /// handler's fd before: it allocates.
    pub(crate) fn attach_handler(&self, attach: Attach) -> Result {
        // `inner` orders this against writes and ADD_SEALS; the invalidate lock
        // (exclusive) against faults, which decide "not lazy: allocate a zero page" under
        // it shared. So no hole becomes a zero page once the file is lazy.
        let _inner = self.inner.lock();
        let _g = self.store.lock_exclusive();
        self.lazy.attach(attach, || self.write_sealed())
    }

    /// FILL_END by handler `id`: the file leaves lazy mode; holes become zero holes; everyone
    /// continues. `EINVAL` if `id` is not attached.
    pub(crate) fn end_lazy(&self, id: u64) -> Result {
        // Exclusive: no fill is between its store-time check that its handler is attached
        // and its insert (`store_filled` holds this lock shared). Once this returns, holes
        // read as zeros and no racing COPY of this handler can change that.
        self.lazy.end(id, || self.store.lock_exclusive())
    }

    // ---- ioctls ----------------------------------------------------------------------

    /// Dispatches an ioctl on a sealmem file fd.
    pub(crate) fn ioctl(&self, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        // The argument's size is the one the command number encodes (the uapi header's).
        let user = UserSlice::new(UserPtr::from_addr(arg), _IOC_SIZE(cmd));
        match cmd {
            uapi::SEALMEM_IOC_API => self.api(user).map(|()| 0),
            uapi::SEALMEM_IOC_GET_SIZE => {
                user.writer().write(&self.size())?;
                Ok(0)
            }
            uapi::SEALMEM_IOC_SET_SIZE => {
                let size: u64 = user.reader().read()?;
                self.set_size(file, size).map(|()| 0)
            }
            uapi::SEALMEM_IOC_PUNCH_HOLE => {
                let r: uapi::sealmem_range = user.reader().read()?;
                self.punch_hole(file, r.offset, r.len).map(|()| 0)
            }
            uapi::SEALMEM_IOC_ADD_SEALS => {
                let seals: u32 = user.reader().read()?;
                self.add_seals(file, seals).map(|()| 0)
            }
            uapi::SEALMEM_IOC_GET_SEALS => {
                user.writer().write(&self.seals.load(Acquire))?;
                Ok(0)
            }
            uapi::SEALMEM_IOC_SET_NAME => self.set_name(file, user).map(|()| 0),
            uapi::SEALMEM_IOC_GET_NAME => self.get_name(user).map(|()| 0),
            uapi::SEALMEM_IOC_SET_HUGE => self.set_huge(file, arg).map(|()| 0),
            _ => Err(ENOTTY),
        }
    }

    /// `SEALMEM_IOC_API`: agree on the API version and report features and ioctls.
    fn api(&self, user: UserSlice) -> Result {
        let (mut reader, mut writer) = user.reader_writer();
        let req: uapi::sealmem_api = reader.read()?;
        let features = supported_features();
        if req.api != u64::from(uapi::SEALMEM_API) || req.features & !features != 0 {
            // Like UFFDIO_API: on a refusal the struct is zeroed so userspace cannot mistake
            // stale input for an answer.
            writer.write(&uapi::sealmem_api::default())?;
            return Err(EINVAL);
        }
        let reply = uapi::sealmem_api {
            api: u64::from(uapi::SEALMEM_API),
            features,
            ioctls: SUPPORTED_IOCTLS,
        };
        writer.write(&reply)?;
        self.inner.lock().api = reply.api;
        Ok(())
    }

    /// `SEALMEM_IOC_SET_HUGE`: makes the file huge (docs/api.md, "Huge files"). `EINVAL`:
    /// `arg` is not 0; `EBADF`: read-only fd; `EBUSY`: the file has pages, poisoned pages or
    /// mappings; `EOPNOTSUPP`: no huge-page support in this kernel.
    fn set_huge(&self, file: &File, arg: usize) -> Result {
        if arg != 0 {
            return Err(EINVAL);
        }
        if !is_writable(file) {
            return Err(EBADF);
        }
        // `inner` orders this against writes (which allocate under it), the exclusive
        // invalidate lock against faults and fills (which allocate under it shared).
        let _inner = self.inner.lock();
        let g = self.store.lock_exclusive();
        self.store.set_huge(&g)
    }

    /// `SEALMEM_IOC_SET_SIZE`: ftruncate semantics.
    fn set_size(&self, file: &File, new: u64) -> Result {
        if !is_writable(file) {
            return Err(EBADF);
        }
        if new > i64::MAX as u64 {
            return Err(EINVAL);
        }
        if new > max_file_size() {
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
        let g = self.store.lock_exclusive();
        // INVARIANT: size shrinks under `inner` and the exclusive invalidate lock.
        self.size.store(new, Release);
        let first_gone = pages_for(new);
        // Zap every mapping of the pages past EOF, private COW copies included (truncate).
        self.store.unmap_range(first_gone * PAGE, 0, true);
        // INVARIANT: no page at or past `pages_for(new)` remains.
        self.store.remove_range(&g, first_gone as usize, usize::MAX);
        // Waiters for pages past the new EOF retry and get SIGBUS / EOF. In a huge file the
        // request of the unit the new EOF cuts goes too (its waiters within EOF raise it again:
        // its length changed).
        let unit = unit_of(first_gone as usize);
        if self.store.is_huge() && unit < first_gone as usize {
            self.lazy.drop_unit_request(unit);
        }
        self.lazy.drop_requests_from(first_gone as usize);
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
        if write_sealed_in(self.seals.load(Relaxed)) {
            return Err(EPERM);
        }
        let eof_pages = pages_for(self.size());
        let (first, last_excl) = (offset / PAGE, (end / PAGE).min(eof_pages));
        if first >= last_excl {
            return Ok(());
        }
        let g = self.store.lock_exclusive();
        // Like fallocate(PUNCH_HOLE): private COW copies stay.
        self.store
            .unmap_range(first * PAGE, (last_excl - first) * PAGE, false);
        self.store
            .remove_range(&g, first as usize, (last_excl - 1) as usize);
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
            self.store.deny_writable()?;
            if let Err(e) = self.wait_for_pins() {
                self.store.allow_writable();
                return Err(e);
            }
        }
        if add_exec {
            if let Err(e) = self.exec_maps.deny() {
                if add_write {
                    self.store.allow_writable();
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
            self.store.allow_writable();
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
    fn exec_map_opened(&self) -> bool {
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
    fn set_name(&self, file: &File, user: UserSlice) -> Result {
        if !is_writable(file) {
            return Err(EBADF);
        }
        // Only the first NAME_MAX + 1 bytes count: the name ends with a NUL within them.
        let mut buf = [0u8; NAME_MAX + 1];
        user.reader().read_slice(&mut buf)?;
        let len = buf.iter().position(|&b| b == 0).ok_or(EINVAL)?;
        let mut inner = self.inner.lock();
        // INVARIANT: `len <= NAME_MAX` (the NUL is within `buf`, `NAME_MAX + 1` bytes long)
        // and `buf[..len]` has no NUL.
        inner.name[..len].copy_from_slice(&buf[..len]);
        inner.name_len = len;
        Ok(())
    }

    /// `SEALMEM_IOC_GET_NAME`.
    fn get_name(&self, user: UserSlice) -> Result {
        let mut out = [0u8; size_of::<uapi::sealmem_name>()];
        {
            let inner = self.inner.lock();
            out[..inner.name_len].copy_from_slice(&inner.name[..inner.name_len]);
        }
        user.writer().write_slice(&out)
    }

    /// `SEALMEM_IOC_VIEW`'s flags: whether the new fd is close-on-exec; `EINVAL` for unknown
    /// flags. (`fops.rs` makes the fd.)
    pub(crate) fn view_flags(flags: usize) -> Result<bool> {
        if flags & !(uapi::SEALMEM_FD_CLOEXEC as usize) != 0 {
            return Err(EINVAL);
        }
        Ok(flags & uapi::SEALMEM_FD_CLOEXEC as usize != 0)
    }

    // ---- read, write, seek -----------------------------------------------------------

    /// read/pread/readv: copies from `pos`. Holes read as zeros, except in a lazy
    /// file, where the read waits for the handler to fill them (`EAGAIN` if `nonblock`).
    pub(crate) fn read(
        &self,
        pos: &mut i64,
        dst: &mut IovIterDest<'_>,
        nonblock: bool,
    ) -> Result<usize> {
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
            let n = (PAGE_SIZE - off)
                .min(dst.len())
                .min((size - at).min(PAGE) as usize);
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
        partial(done, stop)
    }

    /// splice/sendfile out of the file: lends up to `len` bytes from `pos` to `pipe`, page
    /// by page, without copying: each buffer holds a reference to the store's page (taken
    /// under the XArray lock, the lock every removal from the store holds, so a concurrent
    /// punch or shrink cannot free the page first), which the pipe owns from then on. A
    /// page removed later (punch, shrink) only loses the store's reference; the pipe keeps
    /// showing its bytes as of now or of later writes, as with memfd. Holes of a non-lazy
    /// file are lent as the zero page (as shmem does); in a lazy file a hole is waited for
    /// exactly as [`Self::read`] waits (`EAGAIN` if `nonblock`, after raising the request;
    /// `EIO` for a poisoned page or no handler), and an error after some bytes returns those.
    ///
    /// The caller holds the pipe's lock (the splice code takes it around every
    /// `splice_read`), which readers and writers of the pipe take uninterruptibly. So a
    /// splice waits for a lazy page at most [`SPLICE_WAIT_MS`] at a time: then it returns the
    /// bytes it moved, if any, or else starts over, releasing the pipe's lock in between
    /// (`wait_for_hole_in_splice`).
    /// None of this file's locks is held while waiting.
    ///
    /// Pages in a pipe count as references beyond the store's: ADD_SEALS(WRITE) waits for
    /// them and fails with `EBUSY` while they stay (as `memfd_wait_for_pins` does with
    /// spliced page-cache pages).
    pub(crate) fn splice_read(
        &self,
        pos: &mut i64,
        pipe: &mut PipeSink<'_>,
        len: usize,
        nonblock: bool,
    ) -> Result<usize> {
        let mut at = u64::try_from(*pos).map_err(|_| EINVAL)?;
        let mut left = len;
        let mut done = 0usize;
        let mut stop: Option<Error> = None;
        while left > 0 && !pipe.is_full() {
            let size = self.size();
            if at >= size {
                break;
            }
            let index = (at / PAGE) as usize;
            let off = (at % PAGE) as usize;
            let n = (PAGE_SIZE - off)
                .min(left)
                .min((size - at).min(PAGE) as usize);
            // Lazy mode first, then the slot: as in `read`.
            let lazy = self.is_lazy();
            let slot = self.store.slot(index);
            crate::knobs::delay(crate::knobs::Point::ReadAfterSlot);
            let pushed = match slot {
                Slot::Page(page) => pipe.push_page(page, off, n).is_ok(),
                Slot::Poison => {
                    stop = Some(EIO);
                    break;
                }
                Slot::Hole if !lazy => pipe.push_zeros(off, n),
                Slot::Hole => match self.wait_for_hole_in_splice(index, nonblock, done > 0) {
                    Ok(true) => continue,
                    // Waited long enough with bytes in the pipe: hand them over.
                    Ok(false) => break,
                    Err(e) => {
                        stop = Some(e);
                        break;
                    }
                },
            };
            if !pushed {
                // The pipe is full (checked above, so not expected) or the range is bad.
                break;
            }
            at += n as u64;
            done += n;
            left -= n;
            crate::wait::cond_resched();
        }
        *pos = at as i64;
        partial(done, stop)
    }

    /// A splice's wait for the hole at `index` of a lazy file, with the pipe's lock held
    /// (by the splice code, around `splice_read`): at most [`SPLICE_WAIT_MS`] at a time. Then
    /// the splice starts over (`restart_syscall`), which releases the pipe's lock on the way
    /// out, so readers and writers of the pipe (whose `pipe_lock` sleeps uninterruptibly) get
    /// their turn while the handler has not filled the page; an io_uring worker's or kernel
    /// thread's splice, which nothing restarts, waits to the end instead, keeping the pipe
    /// locked (docs/api.md says so).
    ///
    /// `Ok(true)`: look again. `Ok(false)`: the wait timed out and `moved` says bytes are in
    /// the pipe already: the splice returns them (a short count) instead of starting over.
    fn wait_for_hole_in_splice(&self, index: usize, nonblock: bool, moved: bool) -> Result<bool> {
        match self.hole_request(index, 0, None, !nonblock)? {
            HoleStatus::Resolved => Ok(true),
            HoleStatus::Poisoned | HoleStatus::NoHandler => Err(EIO),
            HoleStatus::Wait(_) if nonblock => Err(EAGAIN),
            // Nothing would start an io_uring worker's or a kernel thread's splice over: with
            // no bytes to return, it waits as `read` does.
            HoleStatus::Wait(ticket) if !moved && !crate::wait::may_restart_syscall() => self
                .wait_hole(ticket, WaitMode::Interruptible)
                .map(|()| true)
                .map_err(|_| ERESTARTSYS),
            HoleStatus::Wait(ticket) => {
                match self
                    .lazy
                    .wait_hole_timeout(ticket, WaitMode::Interruptible, SPLICE_WAIT_MS)
                {
                    Ok(true) => Ok(true),
                    Ok(false) if moved => Ok(false),
                    Ok(false) => Err(crate::wait::restart_syscall()),
                    Err(Interrupted) => Err(ERESTARTSYS),
                }
            }
        }
    }

    /// A syscall's wait for the hole at `index` of a lazy file. `Ok` means "look again".
    fn wait_for_hole(&self, index: usize, flags: u32, nonblock: bool) -> Result {
        match self.hole_request(index, flags, None, !nonblock)? {
            HoleStatus::Resolved => Ok(()),
            HoleStatus::Poisoned | HoleStatus::NoHandler => Err(EIO),
            HoleStatus::Wait(_) if nonblock => Err(EAGAIN),
            HoleStatus::Wait(ticket) => self
                .wait_hole(ticket, WaitMode::Interruptible)
                .map_err(|_| ERESTARTSYS),
        }
    }

    /// write/pwrite/writev: a write past EOF grows the file. In a lazy file a write into a
    /// hole (any page below `pages_for(size)`, the partial last page included) first waits
    /// for the handler to fill it. Nothing waits with `inner` held: the copy from the source
    /// is atomic (page faults disabled) under `inner`; a short copy drops `inner`, faults the
    /// source in (which may wait for a lazy page, of this file or another) and retries, as
    /// `generic_perform_write` does.
    pub(crate) fn write(
        &self,
        pos: &mut i64,
        append: bool,
        nonblock: bool,
        src: &mut IovIterSource<'_>,
    ) -> Result<usize> {
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
            if stop.is_some() {
                return partial(done, stop);
            }
        }
    }

    /// One pass of `write` under `inner`: writes page by page until the source is empty, an
    /// error, a lazy hole or a source fault, adding the bytes written to `done`.
    fn write_locked(
        &self,
        pos: &mut i64,
        append: bool,
        done: &mut usize,
        src: &mut IovIterSource<'_>,
    ) -> WriteStep {
        let len = src.len() as u64;
        if len == 0 {
            // As for memfd, a zero-length write succeeds whatever the seals.
            return WriteStep::Done;
        }
        let _inner = self.inner.lock();
        let seals = self.seals.load(Relaxed);
        if write_sealed_in(seals) {
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
        let Some(end) = start.checked_add(len) else {
            return WriteStep::Err(EFBIG);
        };
        if end > max_file_size() || end > i64::MAX as u64 {
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
                if !self.is_lazy() {
                    self.touch_unit(index);
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
                let mut page = match self
                    .store
                    .new_page()
                    .inspect_err(enomem_at(AllocSite::WritePage))
                {
                    Ok(p) => p,
                    Err(e) => {
                        step = WriteStep::Err(e);
                        break;
                    }
                };
                let copied = page.copy_from_iter_atomic(off, n, src);
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
            self.store
                .next_hole(first, last)
                .map_or(size, |i| i as u64 * PAGE)
        };
        Ok(found.max(off).min(size) as i64)
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
        let (units, fallbacks) = self.store.huge_counts();
        seq_print!(m, "huge:\t{}\n", u32::from(self.store.is_huge()));
        seq_print!(m, "huge_units:\t{}\n", units);
        seq_print!(m, "huge_fallbacks:\t{}\n", fallbacks);
        self.lazy.show(m);
        seq_print!(m, "api:\t{}\n", api);
    }
}

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
