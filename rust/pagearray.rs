// SPDX-License-Identifier: GPL-2.0

//! An XArray of page references, indexed by page offset (part of the unsafe layer).
//!
//! `kernel::xarray::XArray` offers lock/get/store/remove but no search, so range operations
//! (punch hole, truncate, SEEK_DATA, teardown) could only walk index by index, which is
//! unusable on a sparse 1 TiB file. This wrapper uses the C search (`xa_find`) and keeps
//! the whole raw surface in one place.
//!
//! # Locking
//!
//! The XArray's own spinlock (`xa_lock`) serialises every change; a lookup that hands out
//! a page reference takes it too, so that the store's reference cannot be dropped between
//! finding a page and taking a new reference to it. Nothing sleeps under it except
//! `__xa_cmpxchg`, which drops and retakes it around its own GFP_KERNEL allocation. It is the
//! innermost lock of the module's lock order (`file.rs`, "Lock order").

use core::ptr::NonNull;

use crate::ffi::{
    sealmem_cond_resched, sealmem_entry_has_extra_refs, sealmem_xa_erase, sealmem_xa_init,
    sealmem_xa_insert_unit, sealmem_xa_is_value, sealmem_xa_poison_entry, sealmem_xa_whole_unit,
    sealmem_xas_error, sealmem_xas_init, sealmem_xas_next,
};
use kernel::{
    bindings,
    ffi::{c_uint, c_ulong, c_void},
    prelude::*,
    types::Opaque,
};

use crate::page::{HugeFolio, PageRef, StablePage, UniquePage, UNIT_PAGES};
use crate::stats::{alloc_failed, AllocSite};

// Three views of an index, by what the caller may hold: `Slot` carries a page reference of its
// own, for paths that copy to or from user memory (read, write, ...): a copy may fault, and a
// fault on a mapping of this same file takes the invalidate lock, so they must not hold it.
// `Peek` borrows the page under that lock (the fault path, which may not sleep on a user
// copy and wants no reference traffic). `SlotKind` only classifies.

/// What an index holds, with a reference to its page.
pub(crate) enum Slot {
    /// Nothing: a hole.
    Hole,
    /// A page (a new reference to it).
    Page(PageRef),
    /// A poisoned hole: it can never be read.
    Poison,
}

/// What kind of entry an index holds (see [`PageArray::kind`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotKind {
    Hole,
    Page,
    Poison,
}

/// What an index holds, seen without taking a page reference (see [`PageArray::peek_run`]).
#[derive(Clone, Copy)]
pub(crate) enum Peek<'a> {
    Hole,
    Page(StablePage<'a>),
    Poison,
}

/// What to store at an index.
pub(crate) enum Entry {
    Page(PageRef),
    Poison,
}

/// The pages of one unit of a huge file, to store as a whole ([`PageArray::insert_unit`]).
pub(crate) enum UnitPages {
    /// One folio of PMD order: [`UNIT_PAGES`] entries, one per subpage.
    Huge(HugeFolio),
    /// Small pages (at most [`UNIT_PAGES`]: the fallback, or a unit cut short by EOF).
    Small(KVec<UniquePage>),
}

impl UnitPages {
    /// How many pages (entries) the unit has.
    pub(crate) fn len(&self) -> usize {
        match self {
            UnitPages::Huge(_) => UNIT_PAGES,
            UnitPages::Small(v) => v.len(),
        }
    }
}

/// Why [`PageArray::insert`] did not store an entry.
pub(crate) enum InsertError {
    /// The index is not a hole; the rejected entry is handed back.
    Exists(Entry),
    /// The XArray could not allocate a node; the rejected entry is handed back.
    NoMem(Entry),
}

/// Pages by index.
///
/// # Invariants
///
/// `xa` is an initialised XArray whose every entry is either a page pointer carrying one page
/// reference owned by the array, or the poison value entry (`sealmem_xa_poison_entry`).
#[pin_data(PinnedDrop)]
pub(crate) struct PageArray {
    #[pin]
    xa: Opaque<bindings::xarray>,
}

// SAFETY: The XArray does its own locking, and its entries are page references, which may be
// dropped on any thread.
unsafe impl Send for PageArray {}
// SAFETY: See `Send`; every method synchronises through the XArray lock or RCU.
unsafe impl Sync for PageArray {}

/// Most entries [`PageArray::remove_range`] erases per lock hold.
const ERASE_BATCH: usize = 32;

impl PageArray {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid for writes and pinned; `xa_init_flags` initialises it.
            // INVARIANT: an empty XArray.
            xa <- Opaque::ffi_init(|slot: *mut bindings::xarray| unsafe { sealmem_xa_init(slot) }),
        })
    }

    fn raw(&self) -> *mut bindings::xarray {
        self.xa.get()
    }

    /// What `index` holds; for a page, a new reference to it.
    pub(crate) fn get(&self, index: usize) -> Slot {
        // SAFETY: The XArray is initialised (invariant). Holding its lock, the array's
        // reference to any page we find cannot go away before we take our own.
        unsafe {
            bindings::xa_lock(self.raw());
            let entry = bindings::xa_load(self.raw(), index as c_ulong);
            let slot = if sealmem_xa_is_value(entry) {
                Slot::Poison
            } else if let Some(p) = NonNull::new(entry.cast::<bindings::page>()) {
                // SAFETY: Non-value entries are pages on which the array holds a reference
                // (invariant), so this borrowed view is valid while the lock is held.
                let stored = core::mem::ManuallyDrop::new(PageRef::from_raw(p));
                Slot::Page(stored.clone_ref())
            } else {
                Slot::Hole
            };
            bindings::xa_unlock(self.raw());
            slot
        }
    }

    /// What kind of entry `index` holds; no page reference is taken, the entry is only
    /// classified.
    pub(crate) fn kind(&self, index: usize) -> SlotKind {
        // SAFETY: The XArray is initialised (invariant); `xa_load` takes the RCU read lock
        // itself, and the entry pointer is only classified, never dereferenced.
        let entry = unsafe { bindings::xa_load(self.raw(), index as c_ulong) };
        // SAFETY: `xa_is_value` only inspects the pointer value.
        if unsafe { sealmem_xa_is_value(entry) } {
            SlotKind::Poison
        } else if entry.is_null() {
            SlotKind::Hole
        } else {
            SlotKind::Page
        }
    }

    /// What the indices `first, first + 1, ...` hold, `out.len()` of them, seen in one walk of
    /// the tree under one lock hold, without taking page references.
    ///
    /// # Safety
    ///
    /// No entry of `first..first + out.len()` may be removed from the array for `'a` (entries
    /// may be added).
    pub(crate) unsafe fn peek_run<'a>(&'a self, first: usize, out: &mut [Peek<'a>]) {
        if out.is_empty() || first.checked_add(out.len()).is_none() {
            out.fill(Peek::Hole);
            return;
        }
        let mut xas = core::mem::MaybeUninit::<bindings::xa_state>::uninit();
        let xas = xas.as_mut_ptr();
        // SAFETY: The XArray is initialised (invariant); `xas` is initialised before the walk,
        // which runs under the XArray lock (so it never sees retry entries) and stays within
        // `first..first + out.len()` (no overflow: checked above).
        unsafe {
            sealmem_xas_init(xas, self.raw(), first as c_ulong);
            bindings::xa_lock(self.raw());
            let mut entry = bindings::xas_load(xas);
            for (i, slot) in out.iter_mut().enumerate() {
                if i > 0 {
                    entry = sealmem_xas_next(xas);
                }
                *slot = if sealmem_xa_is_value(entry) {
                    Peek::Poison
                } else if let Some(p) = NonNull::new(entry.cast::<bindings::page>()) {
                    // SAFETY: A page entry on which the array holds a reference (invariant),
                    // which the caller guarantees stays for 'a.
                    Peek::Page(StablePage::from_raw(p))
                } else {
                    Peek::Hole
                };
            }
            bindings::xa_unlock(self.raw());
        }
    }

    /// Stores `pages[i]` at `first + i`, in order, while those indices are holes: one walk
    /// of the tree under one lock hold (dropped only to allocate tree nodes). A stored
    /// page's slot becomes `None` (the array owns its reference now); the others keep their
    /// page. Returns how many were stored and, if not all, why the next one was not
    /// (`EEXIST`: not a hole; `ENOMEM`; `EINVAL`: an empty slot or an index overflow).
    pub(crate) fn insert_pages(
        &self,
        first: usize,
        pages: &mut [Option<UniquePage>],
    ) -> (usize, Option<Error>) {
        let n = pages.len();
        if n == 0 {
            return (0, None);
        }
        if first.checked_add(n).is_none() {
            return (0, Some(EINVAL));
        }
        let mut xas = core::mem::MaybeUninit::<bindings::xa_state>::uninit();
        let xas = xas.as_mut_ptr();
        // SAFETY: The XArray is initialised (invariant); this initialises `xas` at `first`.
        unsafe { sealmem_xas_init(xas, self.raw(), first as c_ulong) };
        let mut done = 0;
        loop {
            let mut err = None;
            // SAFETY: `xas` is initialised, and the walk runs under the XArray lock. After an
            // allocation retry (`xas_nomem` below) the state restarts at its index, which is
            // `first + done`: the failed store did not move it. It never passes
            // `first + n - 1` (no overflow: checked above). A page's pointer is stored only
            // as the last use of its `UniquePage`: on success it is shared at once, on
            // failure (nothing stored) it stays unique (`UniquePage::as_ptr`'s contract).
            unsafe {
                bindings::xa_lock(self.raw());
                let mut cur = bindings::xas_load(xas);
                while let Some(slot) = pages.get_mut(done) {
                    if !cur.is_null() {
                        err = Some(EEXIST);
                        break;
                    }
                    let Some(page) = slot.as_ref() else {
                        err = Some(EINVAL);
                        break;
                    };
                    bindings::xas_store(xas, page.as_ptr().cast());
                    if sealmem_xas_error(xas) != 0 {
                        // Not stored: a tree node is missing (ENOMEM is the only error a
                        // store into a hole can have).
                        err = Some(ENOMEM);
                        break;
                    }
                    // INVARIANT: the array now owns this page's reference (shared from now on).
                    if let Some(page) = slot.take() {
                        let _ = page.share().into_raw();
                    }
                    done += 1;
                    if done < n {
                        cur = sealmem_xas_next(xas);
                    }
                }
                bindings::xa_unlock(self.raw());
            }
            if err == Some(ENOMEM) {
                // SAFETY: Unlocked, as `xas_nomem` requires; the state holds ENOMEM, so it
                // allocates a node (GFP_KERNEL_ACCOUNT, like the single insert) for the retry.
                // If that fails nothing is left allocated: a store uses a preallocated node
                // before it fails for want of one.
                if unsafe { bindings::xas_nomem(xas, bindings::GFP_KERNEL_ACCOUNT) } {
                    continue;
                }
                alloc_failed(AllocSite::XarrayNode);
            } else {
                // SAFETY: Unlocked; the state holds no error, so this only frees a node left
                // unused by an earlier retry.
                unsafe { bindings::xas_nomem(xas, bindings::GFP_KERNEL_ACCOUNT) };
            }
            return (done, err);
        }
    }

    /// Stores a whole unit at `first, first + 1, ...` (`first` unit-aligned) if all of it is
    /// a hole: all or nothing, under one hold of the XArray lock, so no reader under the lock
    /// sees part of it (see `sealmem_xa_insert_unit`). On failure (`EEXIST`: an entry exists;
    /// `ENOMEM`; `EINVAL`: a bad unit) the pages are handed back.
    pub(crate) fn insert_unit(
        &self,
        first: usize,
        unit: UnitPages,
    ) -> Result<(), (UnitPages, Error)> {
        let n = unit.len();
        if n == 0 || n > UNIT_PAGES || first % UNIT_PAGES != 0 {
            return Err((unit, EINVAL));
        }
        // The small pages' pointers, gathered before any lock is taken.
        let mut raw: KVec<*mut bindings::page> = KVec::new();
        if let UnitPages::Small(pages) = &unit {
            if raw.reserve(n, GFP_KERNEL).is_err() {
                return Err((unit, ENOMEM));
            }
            for p in pages.iter() {
                // SAFETY: The pointer is stored only if the whole unit is, and then every
                // page is given up to the array below (`UniquePage::as_ptr`'s contract).
                if raw.push(unsafe { p.as_ptr() }, GFP_KERNEL).is_err() {
                    return Err((unit, ENOMEM));
                }
            }
        }
        let (head, pages) = match &unit {
            // SAFETY: As for the small pages: on success the folio is given up below.
            UnitPages::Huge(f) => (unsafe { f.as_ptr() }, core::ptr::null_mut()),
            UnitPages::Small(_) => (core::ptr::null_mut(), raw.as_mut_ptr()),
        };
        // SAFETY: The XArray is initialised (invariant). `head` is a PMD-order folio's head
        // page whose one reference we own (the helper takes the unit's other 511), or `pages`
        // holds `n` (<= UNIT_PAGES) pages, each with a reference we own; `first` is
        // unit-aligned (checked above). The helper takes the XArray lock itself and stores
        // all of them or none.
        let ret = unsafe {
            sealmem_xa_insert_unit(self.raw(), first as c_ulong, head, pages, n as c_uint)
        };
        if ret != 0 {
            if ret == ENOMEM.to_errno() {
                alloc_failed(AllocSite::XarrayNode);
            }
            return Err((unit, Error::from_errno(ret)));
        }
        // INVARIANT: every entry of the unit is a page whose reference the array now owns
        // (for a folio: one per subpage, ours and the 511 the helper took).
        match unit {
            UnitPages::Huge(f) => f.stored(),
            UnitPages::Small(pages) => {
                for p in pages {
                    let _ = p.share().into_raw();
                }
            }
        }
        Ok(())
    }

    /// The head page of the PMD-order folio that fills the whole unit at `first` (every
    /// entry its subpage, in order), if it does.
    ///
    /// # Safety
    ///
    /// No entry of the unit may be removed from the array for `'a`.
    pub(crate) unsafe fn whole_unit<'a>(&'a self, first: usize) -> Option<StablePage<'a>> {
        // SAFETY: The XArray is initialised (invariant); the helper takes its lock.
        let head = unsafe { sealmem_xa_whole_unit(self.raw(), first as c_ulong) };
        // SAFETY: A page of the array (it holds references to all its subpages), which the
        // caller guarantees stays for 'a.
        NonNull::new(head).map(|p| unsafe { StablePage::from_raw(p) })
    }

    /// Stores `entry` at `index` if it is a hole.
    pub(crate) fn insert(&self, index: usize, entry: Entry) -> Result<(), InsertError> {
        let raw: *mut c_void = match entry {
            Entry::Page(page) => page.into_raw().as_ptr().cast(),
            // SAFETY: Returns a constant value entry.
            Entry::Poison => unsafe { sealmem_xa_poison_entry() },
        };
        // Takes back what `raw` stands for, when it was not stored.
        let reclaim = |raw: *mut c_void| -> Entry {
            // SAFETY: `raw` is what we built above and it was not stored, so for a page the
            // reference we gave up is ours again.
            unsafe {
                match NonNull::new(raw.cast::<bindings::page>()) {
                    Some(p) if !sealmem_xa_is_value(raw) => Entry::Page(PageRef::from_raw(p)),
                    _ => Entry::Poison,
                }
            }
        };
        // SAFETY: The XArray is initialised; `__xa_cmpxchg` requires its lock, which we hold
        // (it may drop and retake it to allocate with GFP_KERNEL_ACCOUNT).
        let old = unsafe {
            bindings::xa_lock(self.raw());
            let old = bindings::__xa_cmpxchg(
                self.raw(),
                index as c_ulong,
                core::ptr::null_mut(),
                raw,
                bindings::GFP_KERNEL_ACCOUNT,
            );
            bindings::xa_unlock(self.raw());
            old
        };
        // SAFETY: `xa_err` only inspects the value.
        if unsafe { bindings::xa_err(old) } != 0 {
            alloc_failed(AllocSite::XarrayNode);
            return Err(InsertError::NoMem(reclaim(raw)));
        }
        if !old.is_null() {
            return Err(InsertError::Exists(reclaim(raw)));
        }
        // INVARIANT: the array now owns the entry (and for a page, its reference).
        Ok(())
    }

    /// Whether any page has references beyond the array's own and its page-table mappings
    /// (see `sealmem_entry_has_extra_refs`; a huge unit's folio is checked once, as a whole).
    /// Looks at every page, [`ERASE_BATCH`] per lock hold, rescheduling between holds.
    pub(crate) fn any_extra_refs(&self) -> bool {
        let mut from: c_ulong = 0;
        loop {
            // The large folio checked last in this lock hold (its address), so that each is
            // counted once per hold; forgotten between holds, where a folio could go and
            // another take its address.
            let mut checked: c_ulong = 0;
            // SAFETY: The XArray is initialised (invariant). Under its lock, the array's
            // reference keeps every page found valid while its counts are read (a large
            // folio's stored-entry count changes only under this lock).
            let (found, done) = unsafe {
                bindings::xa_lock(self.raw());
                let mut found = false;
                let mut done = false;
                for _ in 0..ERASE_BATCH {
                    let mut index = from;
                    let entry = bindings::xa_find(
                        self.raw(),
                        &mut index,
                        c_ulong::MAX,
                        bindings::XA_PRESENT,
                    );
                    if entry.is_null() {
                        done = true;
                        break;
                    }
                    if !sealmem_xa_is_value(entry)
                        && sealmem_entry_has_extra_refs(self.raw(), entry.cast(), &mut checked)
                    {
                        found = true;
                        break;
                    }
                    match index.checked_add(1) {
                        Some(next) => from = next,
                        None => {
                            done = true;
                            break;
                        }
                    }
                }
                bindings::xa_unlock(self.raw());
                (found, done)
            };
            if found || done {
                return found;
            }
            // SAFETY: No lock is held here.
            unsafe { sealmem_cond_resched() };
        }
    }

    /// The first index in `[from, last]` that holds an entry (a page, or a poison marker:
    /// `XA_PRESENT` finds both).
    pub(crate) fn next_present(&self, from: usize, last: usize) -> Option<usize> {
        if from > last {
            return None;
        }
        let mut index = from as c_ulong;
        // SAFETY: The XArray is initialised; `xa_find` takes the RCU read lock itself and
        // only reads the entry pointer, which we do not dereference.
        let entry = unsafe {
            bindings::xa_find(
                self.raw(),
                &mut index,
                last as c_ulong,
                bindings::XA_PRESENT,
            )
        };
        (!entry.is_null()).then_some(index as usize)
    }

    /// The first index in `[from, last]` that holds no page.
    pub(crate) fn next_hole(&self, from: usize, last: usize) -> Option<usize> {
        let mut i = from;
        while i <= last {
            if i % 1024 == 0 {
                // A long run of resident pages: yield now and then.
                // SAFETY: No lock is held here.
                unsafe { sealmem_cond_resched() };
            }
            match self.next_present(i, last) {
                Some(j) if j == i => i = i.checked_add(1)?,
                _ => return Some(i),
            }
        }
        None
    }

    /// Removes every entry in `[first, last]`, calling `f` on each removed page (outside the
    /// lock, so `f` may sleep); poison entries just go. Returns how many pages of memory the
    /// array no longer holds: one per order-0 page, and a huge unit's whole folio when its
    /// last stored page goes (see `sealmem_xa_erase`).
    ///
    /// `uncount(n)` is called after each batch of removed pages is released, with the pages
    /// of memory that batch gave back, so the caller's accounting follows the memory.
    pub(crate) fn remove_range(
        &self,
        first: usize,
        last: usize,
        mut f: impl FnMut(PageRef),
        mut uncount: impl FnMut(usize),
    ) -> usize {
        let mut released = 0;
        let mut from = first as c_ulong;
        loop {
            let mut batch: [Option<PageRef>; ERASE_BATCH] = [const { None }; ERASE_BATCH];
            let mut released_here = 0;
            let mut n = 0;
            // Entries erased in this lock hold, poison markers included (so that a range of
            // poison is erased a bounded batch per hold too).
            let mut erased_here = 0;
            // SAFETY: The XArray is initialised and we hold its lock for `sealmem_xa_erase`
            // (`__xa_erase`, and the unit mark of a large folio's page).
            unsafe {
                bindings::xa_lock(self.raw());
                while erased_here < ERASE_BATCH && from <= last as c_ulong {
                    let mut index = from;
                    let entry = bindings::xa_find(
                        self.raw(),
                        &mut index,
                        last as c_ulong,
                        bindings::XA_PRESENT,
                    );
                    if entry.is_null() {
                        from = (last as c_ulong).wrapping_add(1);
                        break;
                    }
                    let mut freed: c_uint = 0;
                    let erased = sealmem_xa_erase(self.raw(), index, &mut freed);
                    released_here += freed as usize;
                    erased_here += 1;
                    if sealmem_xa_is_value(erased) {
                        // A poison marker: nothing to release.
                    } else if let Some(p) = NonNull::new(erased.cast::<bindings::page>()) {
                        // SAFETY: The erased entry's reference now belongs to us.
                        batch[n] = Some(PageRef::from_raw(p));
                        n += 1;
                    }
                    match index.checked_add(1) {
                        Some(next) => from = next,
                        None => {
                            from = (last as c_ulong).wrapping_add(1);
                            break;
                        }
                    }
                }
                bindings::xa_unlock(self.raw());
            }
            for p in batch.iter_mut().take(n).filter_map(Option::take) {
                f(p);
            }
            if released_here > 0 {
                uncount(released_here);
                released += released_here;
            }
            if erased_here < ERASE_BATCH || from == 0 || from > last as c_ulong {
                return released;
            }
            // SAFETY: No lock is held here.
            unsafe { sealmem_cond_resched() };
        }
    }
}

#[pinned_drop]
impl PinnedDrop for PageArray {
    fn drop(self: Pin<&mut Self>) {
        self.remove_range(0, usize::MAX, drop, |_| ());
        // SAFETY: The XArray is initialised and now empty; nothing else can reach it.
        unsafe { bindings::xa_destroy(self.raw()) };
    }
}
