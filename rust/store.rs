// SPDX-License-Identifier: GPL-2.0

//! The page store of one sealmem file: which page indices hold a page, and the accounting
//! of resident pages against the module-wide `max_pages` limit.
//!
//! Pages are allocated zeroed on first touch (`GFP_KERNEL_ACCOUNT`: charged to the memory
//! cgroup of the task that causes the allocation) and freed when removed and unmapped.
//! The lazy-fill issue adds hole states (requested, poisoned) beside the pages.

use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

use crate::{
    page::PageRef,
    pagearray::{InsertError, PageArray},
    stats::{Stats, STATS},
};

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

    /// The page at `index`, if present.
    pub(crate) fn get(&self, index: usize) -> Option<PageRef> {
        self.pages.get(index)
    }

    /// The page at `index`, allocating a zeroed one if it is a hole.
    ///
    /// Errors: `ENOSPC` when the module-wide page limit is reached, `ENOMEM` when allocation
    /// fails.
    pub(crate) fn get_or_alloc(&self, index: usize) -> Result<PageRef> {
        if let Some(page) = self.pages.get(index) {
            return Ok(page);
        }
        reserve_page()?;
        let page = match PageRef::alloc_zeroed() {
            Ok(p) => p,
            Err(e) => {
                Stats::dec(&STATS.pages);
                return Err(e);
            }
        };
        let ours = page.clone_ref();
        match self.pages.insert(index, page) {
            Ok(()) => {
                // INVARIANT: one more page in the array, counted once globally above.
                self.resident.add(1u64, Relaxed);
                Ok(ours)
            }
            Err(InsertError::Exists(_mine)) => {
                // A racing fault or write stored a page first: use that one.
                Stats::dec(&STATS.pages);
                self.pages.get(index).ok_or(EAGAIN)
            }
            Err(InsertError::NoMem) => {
                Stats::dec(&STATS.pages);
                Err(ENOMEM)
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
