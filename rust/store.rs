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
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
    uaccess::UserSliceReader,
};

use crate::{
    mapping::{ExclusiveGuard, Mapping, SharedGuard},
    page::{PageRef, UniquePage},
    pagearray::{Entry, InsertError, PageArray},
    stats::{AllocSite, Stats, STATS},
};

pub(crate) use crate::pagearray::{Peek, Slot, SlotKind};

/// The pages of one file, and the file's address_space.
///
/// # Invariants
///
/// - `resident` is the number of pages in `pages`, and each of them is counted once in
///   `STATS.pages`.
/// - Pages leave `pages` only in [`PageStore::remove_range`], which holds `mapping`'s
///   invalidate lock exclusive (its guard is checked), and when the store is dropped.
#[pin_data(PinnedDrop)]
pub(crate) struct PageStore {
    mapping: Mapping,
    #[pin]
    pages: PageArray,
    resident: Atomic<u64>,
}

impl PageStore {
    /// An empty store, with a new address_space for its file (see [`Mapping::new`]).
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            mapping: Mapping::new()?,
            pages <- PageArray::new(),
            resident: Atomic::new(0),
        })
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

    /// Removes the pages of `[first, last]`; returns how many there were. Only under the
    /// exclusive invalidate lock or when nobody else can reach the store (invariant).
    fn remove_pages(&self, first: usize, last: usize) -> u64 {
        let n = self.pages.remove_range(first, last, |page| {
            Stats::dec(&STATS.pages);
            drop(page);
        }) as u64;
        // INVARIANT: `n` pages left the array and were uncounted one by one above.
        self.resident.fetch_sub(n, Relaxed);
        n
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

    /// The first resident page index in `[from, last]`.
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
    let limit = max_pages();
    let before = STATS.pages.fetch_add(1u64, Relaxed);
    if before >= limit {
        Stats::dec(&STATS.pages);
        return Err(ENOSPC);
    }
    Ok(())
}
