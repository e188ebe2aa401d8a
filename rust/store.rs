// SPDX-License-Identifier: GPL-2.0

//! The page store of one sealmem file: which page indices hold a page, the accounting of
//! resident pages against the module-wide `max_pages` limit, and the file's own
//! address_space ([`Mapping`]), whose invalidate lock guards the removal of pages.
//!
//! The store owns that lock, as `LockedBy` data is owned by a lock: it hands out its guards
//! ([`PageStore::lock_shared`], [`PageStore::lock_exclusive`]), and the methods that rely on
//! it take a guard as proof ([`PageStore::remove_range`] the exclusive one,
//! [`PageStore::peek_run`] a shared one) and check that it is this store's. So a page that
//! [`PageStore::peek_run`] lends out under a shared guard cannot leave the store while the
//! guard lives; that is the one `unsafe` block here, and its whole argument.
//!
//! Pages are allocated zeroed on first touch (`GFP_KERNEL_ACCOUNT`: charged to the memory
//! cgroup of the task that causes the allocation) and freed when removed and unmapped.
//! A hole is an index with no entry; a poisoned hole holds a poison marker (see
//! `pagearray.rs`). Outstanding fill requests live in the file's fill state, not here.

use kernel::{
    fs::File,
    iov::IovIterSource,
    mm::virt::VmaRef,
    page::PAGE_SIZE,
    prelude::*,
    sync::atomic::{Acquire, Atomic, Relaxed, Release},
    uaccess::{UserSlice, UserSliceReader},
};

use crate::{
    mapping::{ExclusiveGuard, Mapping, SharedGuard},
    page::{HugeFolio, PageRef, StablePage, UniquePage, UNIT_PAGES},
    pagearray::{Entry, InsertError, PageArray, UnitPages},
    stats::{AllocSite, Stats, STATS},
};

pub(crate) use crate::pagearray::{Peek, Slot, SlotKind};

/// The first page index of the huge-file unit that holds page `index`.
pub(crate) fn unit_of(index: usize) -> usize {
    index - index % UNIT_PAGES
}

/// The pages of one file, and the file's address_space.
///
/// # Invariants
///
/// - `resident` is the number of pages of memory `pages` holds, each counted once in
///   `STATS.pages`: one per order-0 page, and a huge unit's whole folio (512) for as long as
///   any of its pages is stored (a partly punched unit keeps its folio allocated).
/// - Pages leave `pages` only in [`PageStore::remove_range`], which holds `mapping`'s
///   invalidate lock exclusive (its guard is checked), and when the store is dropped.
/// - `huge` only goes from false to true, while `pages` is empty and the invalidate lock is
///   held exclusive ([`PageStore::set_huge`]).
#[pin_data(PinnedDrop)]
pub(crate) struct PageStore {
    mapping: Mapping,
    #[pin]
    pages: PageArray,
    resident: Atomic<u64>,
    /// A huge file: fills and first touches work in units of [`UNIT_PAGES`] pages.
    huge: Atomic<bool>,
    /// Units stored as one 2 MiB folio, and units that got small pages instead (fdinfo).
    huge_units: Atomic<u64>,
    huge_fallbacks: Atomic<u64>,
}

impl PageStore {
    /// An empty store, with a new address_space for its file (see [`Mapping::new`]).
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            mapping: Mapping::new()?,
            pages <- PageArray::new(),
            resident: Atomic::new(0),
            huge: Atomic::new(false),
            huge_units: Atomic::new(0),
            huge_fallbacks: Atomic::new(0),
        })
    }

    /// Whether this is a huge file's store.
    pub(crate) fn is_huge(&self) -> bool {
        self.huge.load(Acquire)
    }

    /// (units stored as 2 MiB folios, units that fell back to small pages).
    pub(crate) fn huge_counts(&self) -> (u64, u64) {
        (
            self.huge_units.load(Relaxed),
            self.huge_fallbacks.load(Relaxed),
        )
    }

    /// Makes the store huge (see [`PageStore::is_huge`]): `EBUSY` if it holds any entry (a
    /// page or a poisoned hole) or its file is mapped (existing mappings would stay mapped
    /// by 4 KiB pages), `EOPNOTSUPP` without huge-page support.
    pub(crate) fn set_huge(&self, g: &ExclusiveGuard<'_>) -> Result {
        if kernel::warn_on!(!g.locks(&self.mapping)) {
            return Err(EINVAL);
        }
        if !crate::page::huge_supported() {
            return Err(EOPNOTSUPP);
        }
        if self.is_huge() {
            return Ok(());
        }
        if self.pages.next_present(0, usize::MAX).is_some() || self.mapping.mapped() {
            return Err(EBUSY);
        }
        // INVARIANT: empty, under the exclusive invalidate lock (checked above).
        self.huge.store(true, Release);
        Ok(())
    }

    /// A new unit of `n` pages (`n <=` [`UNIT_PAGES`]) for a caller that fills it before
    /// storing it ([`PageStore::insert_unit`]), counted against `max_pages` as `n` pages:
    /// one 2 MiB folio when `n` is a whole unit and one can be allocated, else `n` small
    /// pages (zeroed if `zero`). Errors: `ENOSPC` at the page limit, `ENOMEM`.
    pub(crate) fn new_unit(&self, n: usize, zero: bool) -> Result<NewUnit> {
        if n == 0 || n > UNIT_PAGES {
            return Err(EINVAL);
        }
        reserve_pages(n as u64)?;
        // INVARIANT: the reservation is carried by the `NewUnit` from here on (its drop
        // returns it).
        let mut unit = NewUnit { pages: None, n };
        if n == UNIT_PAGES {
            if let Some(f) = HugeFolio::alloc(zero, false) {
                unit.pages = Some(UnitPages::Huge(f));
                return Ok(unit);
            }
        }
        let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            let page = if zero {
                UniquePage::alloc_zeroed()
            } else {
                UniquePage::alloc_for_overwrite()
            }?;
            v.push(page, GFP_KERNEL)?;
        }
        unit.pages = Some(UnitPages::Small(v));
        Ok(unit)
    }

    /// A new zeroed 2 MiB folio for a first touch of a unit, counted against `max_pages` as
    /// [`UNIT_PAGES`] pages; `None` at the page limit or when none can be allocated (the
    /// caller falls back to one small page).
    pub(crate) fn new_huge_unit(&self) -> Option<NewUnit> {
        reserve_pages(UNIT_PAGES as u64).ok()?;
        // INVARIANT: the reservation goes with the `NewUnit` (returned by its drop if the
        // folio cannot be allocated).
        let mut unit = NewUnit {
            pages: None,
            n: UNIT_PAGES,
        };
        unit.pages = Some(UnitPages::Huge(HugeFolio::alloc(true, true)?));
        Some(unit)
    }

    /// Stores `unit` at `first` (unit-aligned) if all of it is a hole, atomically
    /// ([`PageArray::insert_unit`]); `EEXIST` otherwise (the unit is freed), `ENOMEM`.
    pub(crate) fn insert_unit(&self, first: usize, mut unit: NewUnit) -> Result {
        let Some(pages) = unit.pages.take() else {
            return Err(EINVAL);
        };
        let huge = matches!(pages, UnitPages::Huge(_));
        let n = unit.n;
        match self.pages.insert_unit(first, pages) {
            Ok(()) => {
                // INVARIANT: `n` more pages in the array; their global count moves from the
                // `NewUnit` (left empty) to the store.
                unit.n = 0;
                self.resident.add(n as u64, Relaxed);
                if huge {
                    self.huge_units.add(1u64, Relaxed);
                    Stats::inc(&STATS.huge_units);
                } else if n == UNIT_PAGES {
                    self.huge_fallbacks.add(1u64, Relaxed);
                    Stats::inc(&STATS.huge_fallbacks);
                }
                Ok(())
            }
            // The pages go back to the `NewUnit`, whose drop frees them and the reservation.
            Err((pages, e)) => {
                unit.pages = Some(pages);
                Err(e)
            }
        }
    }

    /// Counts a first touch of a huge file's unit that got a small page (no 2 MiB folio).
    pub(crate) fn count_fallback(&self) {
        self.huge_fallbacks.add(1u64, Relaxed);
        Stats::inc(&STATS.huge_fallbacks);
    }

    /// Whether the `n` pages from `first` are all holes (no page, no poison).
    pub(crate) fn range_is_hole(&self, first: usize, n: usize) -> bool {
        match first.checked_add(n) {
            Some(end) if n > 0 => self.pages.next_present(first, end - 1).is_none(),
            _ => true,
        }
    }

    /// The head page of the 2 MiB folio that fills the whole unit at `first`, lent for as
    /// long as `g`, this store's invalidate lock held shared, lives. Another store's guard is
    /// a bug: it warns and finds nothing.
    pub(crate) fn whole_unit<'a>(
        &'a self,
        g: &'a SharedGuard<'_>,
        first: usize,
    ) -> Option<StablePage<'a>> {
        if kernel::warn_on!(!g.locks(&self.mapping)) {
            return None;
        }
        // SAFETY: As in `peek_run`: `g` holds this store's invalidate lock shared for 'a, so
        // no entry leaves `pages` for 'a (invariant).
        unsafe { self.pages.whole_unit(first) }
    }

    /// Takes the invalidate lock shared (faults, fills).
    pub(crate) fn lock_shared(&self) -> SharedGuard<'_> {
        self.mapping.lock_shared()
    }

    /// Takes the invalidate lock exclusive (truncate, punch hole, FILL_ENABLE, FILL_END).
    pub(crate) fn lock_exclusive(&self) -> ExclusiveGuard<'_> {
        self.mapping.lock_exclusive()
    }

    /// Makes `file` use this store's address_space (see [`Mapping::attach`]).
    pub(crate) fn attach(&self, file: &File) {
        self.mapping.attach(file);
    }

    /// Removes the pages of `[start, start + len)` from every page table (see
    /// [`Mapping::unmap_range`]).
    pub(crate) fn unmap_range(&self, start: u64, len: u64, even_cows: bool) {
        self.mapping.unmap_range(start, len, even_cows);
    }

    /// See [`Mapping::deny_writable`].
    pub(crate) fn deny_writable(&self) -> Result {
        self.mapping.deny_writable()
    }

    /// See [`Mapping::allow_writable`].
    pub(crate) fn allow_writable(&self) {
        self.mapping.allow_writable();
    }

    /// Whether `vma` maps this file's page `index` at `addr` (see [`vm::maps_page_of`]).
    pub(crate) fn mapped_at(&self, vma: &VmaRef, addr: usize, index: usize) -> bool {
        crate::vm::maps_page_of(vma, &self.mapping, addr, index)
    }

    /// Number of pages this file holds now.
    pub(crate) fn resident(&self) -> u64 {
        self.resident.load(Relaxed)
    }

    /// What `index` holds.
    pub(crate) fn slot(&self, index: usize) -> Slot {
        self.pages.get(index)
    }

    /// What kind of entry `index` holds (no page reference is taken).
    pub(crate) fn kind(&self, index: usize) -> SlotKind {
        self.pages.kind(index)
    }

    /// The page at `index`, if present.
    pub(crate) fn get(&self, index: usize) -> Option<PageRef> {
        match self.pages.get(index) {
            Slot::Page(p) => Some(p),
            _ => None,
        }
    }

    /// A new zeroed page, counted against `max_pages` (not yet in the store).
    ///
    /// Errors: `ENOSPC` at the module-wide page limit, `ENOMEM`.
    pub(crate) fn new_page(&self) -> Result<NewPage> {
        self.new_page_with(UniquePage::alloc_zeroed)
    }

    /// Like [`PageStore::new_page`], but not zeroed: the caller must overwrite the whole page
    /// before storing it (a `NewPage` is visible to nobody until stored).
    pub(crate) fn new_page_for_overwrite(&self) -> Result<NewPage> {
        self.new_page_with(UniquePage::alloc_for_overwrite)
    }

    fn new_page_with(&self, alloc: fn() -> Result<UniquePage>) -> Result<NewPage> {
        reserve_page()?;
        match alloc() {
            // INVARIANT: the reservation above is carried by the `NewPage`.
            Ok(page) => Ok(NewPage(Some(page))),
            Err(e) => {
                Stats::dec(&STATS.pages);
                Err(e)
            }
        }
    }

    /// Stores `page` at `index` if it is a hole; `EEXIST` otherwise (the page is freed).
    pub(crate) fn insert(&self, index: usize, mut page: NewPage) -> Result {
        let Some(p) = page.0.take() else {
            return Err(EINVAL);
        };
        self.insert_reserved(index, p.share())
    }

    /// Stores `page`, whose `STATS.pages` reservation the caller hands over, at `index` if
    /// it is a hole. If not, the page is freed and the reservation returned, as the drop of
    /// the `NewPage` it came from would have done.
    fn insert_reserved(&self, index: usize, page: PageRef) -> Result {
        match self.pages.insert(index, Entry::Page(page)) {
            Ok(()) => {
                // INVARIANT: one more page in the array; its global count moves from the
                // caller (its `NewPage` is empty, so its drop uncounts nothing) to the store.
                self.resident.add(1u64, Relaxed);
                Ok(())
            }
            Err(e) => {
                let (entry, err) = match e {
                    InsertError::Exists(entry) => (entry, EEXIST),
                    InsertError::NoMem(entry) => (entry, ENOMEM),
                };
                drop(entry);
                Stats::dec(&STATS.pages);
                Err(err)
            }
        }
    }

    /// Stores `pages` at `first, first + 1, ...` while those indices are holes, in one walk
    /// (at most [`STORE_RUN`] pages are taken; callers pass no more). Returns how many were stored and, if not all, why the next
    /// one was not (`EEXIST`, `ENOMEM`); the pages not stored stay in `pages` (their drop
    /// frees them and returns their reservations).
    pub(crate) fn insert_run(&self, first: usize, pages: &mut [NewPage]) -> (usize, Option<Error>) {
        let mut raw: [Option<UniquePage>; STORE_RUN] = [const { None }; STORE_RUN];
        let n = pages.len().min(STORE_RUN);
        // The reservations travel with the pages: nothing below can fail between taking them
        // out of the `NewPage`s and putting the unstored ones back.
        for (r, p) in raw.iter_mut().zip(pages.iter_mut()) {
            *r = p.0.take();
        }
        let (stored, err) = self.pages.insert_pages(first, &mut raw[..n]);
        // INVARIANT: `stored` more pages in the array; their global counts move from the
        // `NewPage`s (left empty) to the store.
        self.resident.add(stored as u64, Relaxed);
        for (r, p) in raw.iter_mut().zip(pages.iter_mut()) {
            p.0 = r.take();
        }
        (stored, err)
    }

    /// Marks the hole at `index` poisoned; `EEXIST` if it is not a hole.
    pub(crate) fn poison(&self, index: usize) -> Result {
        match self.pages.insert(index, Entry::Poison) {
            Ok(()) => Ok(()),
            Err(InsertError::Exists(_)) => Err(EEXIST),
            Err(InsertError::NoMem(_)) => Err(ENOMEM),
        }
    }

    /// The page at `index`, allocating a zeroed one if it is a hole (outside lazy mode).
    ///
    /// Errors: `EIO` for a poisoned page, `ENOSPC` at the page limit, `ENOMEM`.
    pub(crate) fn get_or_alloc(&self, index: usize, site: AllocSite) -> Result<PageRef> {
        loop {
            match self.pages.get(index) {
                Slot::Page(p) => return Ok(p),
                Slot::Poison => return Err(EIO),
                Slot::Hole => {}
            }
            let Some(page) = self
                .new_page()
                .inspect_err(crate::stats::enomem_at(site))?
                .take()
            else {
                return Err(EINVAL);
            };
            let page = page.share();
            let ours = page.clone_ref();
            match self.insert_reserved(index, page) {
                Ok(()) => return Ok(ours),
                // A racing fault or write stored a page first: use that one.
                Err(e) if e == EEXIST => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes the pages of `[first, last]` while `g` holds this store's invalidate lock
    /// exclusive; returns how many there were. Another store's guard is a bug: it warns
    /// and removes nothing.
    pub(crate) fn remove_range(&self, g: &ExclusiveGuard<'_>, first: usize, last: usize) -> u64 {
        if kernel::warn_on!(!g.locks(&self.mapping)) {
            return 0;
        }
        self.remove_pages(first, last)
    }

    /// Removes the pages of `[first, last]`; returns how many pages of memory the store no
    /// longer holds (see [`PageArray::remove_range`]). Only under the exclusive invalidate
    /// lock or when nobody else can reach the store (invariant).
    fn remove_pages(&self, first: usize, last: usize) -> u64 {
        // INVARIANT: after each batch, the store no longer holds `n` pages of memory.
        self.pages.remove_range(first, last, drop, |n| {
            STATS.pages.fetch_sub(n as u64, Relaxed);
            self.resident.fetch_sub(n as u64, Relaxed);
        }) as u64
    }

    /// What `first..first + out.len()` holds, without taking page references (one walk,
    /// one lock hold): the pages are lent for as long as `g`, this store's invalidate lock
    /// held shared, lives. Another store's guard is a bug: it warns and reports holes.
    pub(crate) fn peek_run<'a>(
        &'a self,
        g: &'a SharedGuard<'_>,
        first: usize,
        out: &mut [Peek<'a>],
    ) {
        if kernel::warn_on!(!g.locks(&self.mapping)) {
            out.fill(Peek::Hole);
            return;
        }
        // SAFETY: `g` holds this store's invalidate lock shared for 'a (checked above), so
        // `remove_range`, which needs it exclusive, cannot run for 'a, and the store cannot
        // be dropped while borrowed: no page leaves `pages` for 'a (invariant).
        unsafe { self.pages.peek_run(first, out) }
    }

    /// Whether a page has references beyond the store's and its mappings' (a pin).
    pub(crate) fn any_extra_refs(&self) -> bool {
        self.pages.any_extra_refs()
    }

    /// The first index in `[from, last]` holding a page or a poison marker.
    pub(crate) fn next_present(&self, from: usize, last: usize) -> Option<usize> {
        self.pages.next_present(from, last)
    }

    /// The first hole index in `[from, last]`.
    pub(crate) fn next_hole(&self, from: usize, last: usize) -> Option<usize> {
        self.pages.next_hole(from, last)
    }
}

#[pinned_drop]
impl PinnedDrop for PageStore {
    fn drop(self: Pin<&mut Self>) {
        // INVARIANT: dropped: nobody else can reach the store.
        self.remove_pages(0, usize::MAX);
    }
}

/// Most pages [`PageStore::insert_run`] stores in one walk.
pub(crate) const STORE_RUN: usize = 16;

/// A page allocated for a store but not yet in it; counted in `STATS.pages` until it is
/// stored or dropped.
///
/// # Invariants
///
/// When `0` is `Some`, one unit of `STATS.pages` is reserved for it.
pub(crate) struct NewPage(Option<UniquePage>);

impl NewPage {
    /// No page (a placeholder in an array of new pages).
    pub(crate) const EMPTY: Self = Self(None);

    /// Fills the whole page from user memory (`EFAULT` if the source faults); nothing for
    /// an empty `NewPage`.
    pub(crate) fn copy_from_user(&mut self, reader: &mut UserSliceReader) -> Result {
        match &mut self.0 {
            Some(p) => p.copy_from_user(reader),
            None => Ok(()),
        }
    }

    /// Copies `len` bytes from `src` into the page at `offset`, with page faults disabled
    /// (see [`PageRef::copy_from_iter_atomic`]); returns the bytes copied (0 for an empty
    /// `NewPage`).
    pub(crate) fn copy_from_iter_atomic(
        &mut self,
        offset: usize,
        len: usize,
        src: &mut IovIterSource<'_>,
    ) -> usize {
        self.0
            .as_mut()
            .map_or(0, |p| p.copy_from_iter_atomic(offset, len, src))
    }

    /// Takes the page and its reservation out (the caller stores it or returns the
    /// reservation).
    fn take(mut self) -> Option<UniquePage> {
        self.0.take()
    }
}

impl Drop for NewPage {
    fn drop(&mut self) {
        if self.0.take().is_some() {
            Stats::dec(&STATS.pages);
        }
    }
}

/// The effective page limit: the `max_pages` module parameter, or half of RAM when it is 0.
fn max_pages() -> u64 {
    match crate::module_parameters::max_pages.value() {
        0 => crate::page::totalram_pages() / 2,
        n => n,
    }
}

/// Counts one more resident page against `max_pages`, or fails with `ENOSPC`.
fn reserve_page() -> Result {
    reserve_pages(1)
}

/// Counts `n` more resident pages against `max_pages`, all or none (`ENOSPC`).
fn reserve_pages(n: u64) -> Result {
    let limit = max_pages();
    let before = STATS.pages.fetch_add(n, Relaxed);
    if before.saturating_add(n) > limit {
        STATS.pages.fetch_sub(n, Relaxed);
        return Err(ENOSPC);
    }
    Ok(())
}

/// A unit allocated for a store but not yet in it ([`PageStore::new_unit`]); its `n` pages
/// are counted in `STATS.pages` until it is stored or dropped.
///
/// # Invariants
///
/// `n` units of `STATS.pages` are reserved for it (0 once stored).
pub(crate) struct NewUnit {
    pages: Option<UnitPages>,
    n: usize,
}

impl NewUnit {
    /// How many pages the unit has.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Fills the whole unit from user memory at `src` (`EFAULT` if the source faults). No
    /// lock may be held: the copy may fault.
    pub(crate) fn copy_from_user(&mut self, src: kernel::uaccess::UserPtr) -> Result {
        let n = self.n;
        match &mut self.pages {
            Some(UnitPages::Huge(f)) => {
                f.copy_from_user(src.as_const_ptr() as usize, n * PAGE_SIZE)
            }
            Some(UnitPages::Small(v)) => {
                for (i, p) in v.iter_mut().enumerate() {
                    let from = src.wrapping_byte_add(i * PAGE_SIZE);
                    p.copy_from_user(&mut UserSlice::new(from, PAGE_SIZE).reader())?;
                }
                Ok(())
            }
            None => Err(EINVAL),
        }
    }
}

impl Drop for NewUnit {
    fn drop(&mut self) {
        // The pages (if any) are freed when `pages` goes; the reservation is returned here.
        STATS.pages.fetch_sub(self.n as u64, Relaxed);
    }
}
