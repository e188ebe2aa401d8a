// SPDX-License-Identifier: GPL-2.0

//! The page store of one sealmem file: which page indices hold a page, and the accounting
//! of resident pages against the module-wide `max_pages` limit.
//!
//! Pages are allocated zeroed on first touch (`GFP_KERNEL_ACCOUNT`: charged to the memory
//! cgroup of the task that causes the allocation) and freed when removed and unmapped.
//! A hole is an index with no entry; a poisoned hole holds a poison marker (see
//! `pagearray.rs`). Outstanding fill requests live in the file's fill state, not here.

use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

use crate::{
    page::PageRef,
    pagearray::{Entry, InsertError, PageArray},
    stats::{AllocSite, Stats, STATS},
};

pub(crate) use crate::pagearray::{Peek, Slot, SlotKind};

/// The pages of one file.
///
/// # Invariants
///
/// `resident` is the number of pages in `pages`, and each of them is counted once in
/// `STATS.pages`.
#[pin_data(PinnedDrop)]
pub(crate) struct PageStore {
    #[pin]
    pages: PageArray,
    resident: Atomic<u64>,
}

impl PageStore {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            pages <- PageArray::new(),
            resident: Atomic::new(0),
        })
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
        self.new_page_with(PageRef::alloc_zeroed)
    }

    /// Like [`PageStore::new_page`], but not zeroed: the caller must overwrite the whole page
    /// before storing it (a `NewPage` is visible to nobody until stored).
    pub(crate) fn new_page_for_overwrite(&self) -> Result<NewPage> {
        self.new_page_with(PageRef::alloc_for_overwrite)
    }

    fn new_page_with(&self, alloc: fn() -> Result<PageRef>) -> Result<NewPage> {
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

    /// Stores `page` at `index` if it is a hole; `EEXIST` otherwise.
    pub(crate) fn insert(&self, index: usize, mut page: NewPage) -> Result {
        let Some(p) = page.0.take() else { return Err(EINVAL) };
        match self.pages.insert(index, Entry::Page(p)) {
            Ok(()) => {
                // INVARIANT: one more page in the array; its global count moves from the
                // `NewPage` (now empty, so its drop uncounts nothing) to the store.
                self.resident.add(1u64, Relaxed);
                Ok(())
            }
            Err(e) => {
                // Not stored: the page goes back into the `NewPage`, whose drop frees it and
                // returns its reservation.
                let (entry, err) = match e {
                    InsertError::Exists(entry) => (entry, EEXIST),
                    InsertError::NoMem(entry) => (entry, ENOMEM),
                };
                if let Entry::Page(p) = entry {
                    page.0 = Some(p);
                }
                Err(err)
            }
        }
    }

    /// Stores `pages` at `first, first + 1, ...` while those indices are holes, in one walk
    /// (at most [`RUN`] pages are taken; callers pass no more). Returns how many were stored and, if not all, why the next
    /// one was not (`EEXIST`, `ENOMEM`); the pages not stored stay in `pages` (their drop
    /// frees them and returns their reservations).
    pub(crate) fn insert_run(&self, first: usize, pages: &mut [NewPage]) -> (usize, Option<Error>) {
        let mut raw: [Option<PageRef>; RUN] = [const { None }; RUN];
        let n = pages.len().min(RUN);
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
            let page = self.new_page().inspect_err(crate::stats::enomem_at(site))?;
            let ours = page.0.as_ref().map(PageRef::clone_ref);
            match self.insert(index, page) {
                Ok(()) => return ours.ok_or(EINVAL),
                // A racing fault or write stored a page first: use that one.
                Err(e) if e == EEXIST => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes the pages of `[first, last]`; returns how many there were.
    pub(crate) fn remove_range(&self, first: usize, last: usize) -> u64 {
        let n = self.pages.remove_range(first, last, |page| {
            Stats::dec(&STATS.pages);
            drop(page);
        }) as u64;
        // INVARIANT: `n` pages left the array and were uncounted one by one above.
        self.resident.fetch_sub(n, Relaxed);
        n
    }

    /// What `first..first + out.len()` holds, without taking page references (one walk,
    /// one lock hold).
    ///
    /// # Safety
    ///
    /// No page of that range may be removed for `'a`: the caller holds the owning file's
    /// invalidate lock shared, and pages leave a file's store only under it exclusive.
    pub(crate) unsafe fn peek_run<'a>(&'a self, first: usize, out: &mut [Peek<'a>]) {
        // SAFETY: Forwarded from the caller.
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
        self.remove_range(0, usize::MAX);
    }
}

/// Most pages [`PageStore::insert_run`] stores in one walk.
pub(crate) const RUN: usize = 16;

/// A page allocated for a store but not yet in it; counted in `STATS.pages` until it is
/// stored or dropped.
///
/// # Invariants
///
/// When `0` is `Some`, one unit of `STATS.pages` is reserved for it.
pub(crate) struct NewPage(Option<PageRef>);

impl NewPage {
    /// No page (a placeholder in an array of new pages).
    pub(crate) const EMPTY: Self = Self(None);

    /// The page, to fill it before it is stored.
    pub(crate) fn page(&self) -> Option<&PageRef> {
        self.0.as_ref()
    }
}

impl Drop for NewPage {
    fn drop(&mut self) {
        if self.0.take().is_some() {
            Stats::dec(&STATS.pages);
        }
    }
}

/// Counts one more resident page against `max_pages`, or fails with `ENOSPC`.
fn reserve_page() -> Result {
    let limit = crate::max_pages();
    let before = STATS.pages.fetch_add(1u64, Relaxed);
    if before >= limit {
        Stats::dec(&STATS.pages);
        return Err(ENOSPC);
    }
    Ok(())
}
