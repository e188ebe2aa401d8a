// SPDX-License-Identifier: GPL-2.0

//! Counted references to pages (part of the unsafe abstraction layer).
//!
//! `kernel::page::Page` owns a page outright and cannot be cloned; a sealmem page is shared
//! by the page store, page tables, in-flight reads and the fault path, so this type holds
//! one page *reference* instead and drops it with `put_page`. Refcounting stays in C
//! (`sealmem_get_page`/`sealmem_put_page`).
//!
//! A page is an order-0 page or one subpage of a huge file's 2 MiB folio ([`HugeFolio`]); a
//! reference to a subpage is a reference to its folio (as in the page cache), and every
//! operation here acts on the one 4 KiB subpage.

use core::{marker::PhantomData, ptr::NonNull};

use crate::ffi::{sealmem_get_page, sealmem_put_page};
use kernel::{
    alloc::flags::{__GFP_ZERO, GFP_KERNEL_ACCOUNT},
    bindings,
    ffi::c_ulong,
    iov::{IovIterDest, IovIterSource},
    page::{Page, PAGE_SIZE},
    prelude::*,
};

/// One reference to a page.
///
/// # Invariants
///
/// `0` points to a valid `struct page`, an order-0 page or a subpage of a PMD-order folio, of
/// whose folio this value owns one reference.
pub(crate) struct PageRef(NonNull<bindings::page>);

// SAFETY: A page reference may be moved to and dropped on any thread.
unsafe impl Send for PageRef {}
// SAFETY: `&PageRef` only allows copying bytes in and out and zeroing them, with C helpers
// that allow concurrent accesses to the page (racing accesses to page contents are the
// user's business, as for tmpfs).
unsafe impl Sync for PageRef {}

/// The only reference to a page that nobody else can reach: a page just allocated, not yet
/// stored, mapped or shared. Only such a page is written through the kernel crate's
/// `copy_from_user_slice_raw`, whose contract forbids concurrent accesses to the page.
///
/// # Invariants
///
/// `0` is the only reference to its page, and no page table, store or other kernel object
/// points to the page.
pub(crate) struct UniquePage(PageRef);

impl UniquePage {
    /// Allocates a zeroed page charged to the current task's memory cgroup.
    pub(crate) fn alloc_zeroed() -> Result<Self> {
        // INVARIANT: a new page has one reference, ours.
        PageRef::alloc(GFP_KERNEL_ACCOUNT | __GFP_ZERO).map(Self)
    }

    /// Allocates a page with unspecified contents, for a caller that overwrites all of it
    /// before anyone else can see it (COPY), charged like [`UniquePage::alloc_zeroed`].
    pub(crate) fn alloc_for_overwrite() -> Result<Self> {
        // INVARIANT: as above.
        PageRef::alloc(GFP_KERNEL_ACCOUNT).map(Self)
    }

    /// The raw page, to store it where others can reach it.
    ///
    /// # Safety
    ///
    /// Once the pointer is stored anywhere another task can read it, `self` must not be used
    /// again but to give up its uniqueness with [`UniquePage::share`] (or be dropped, if the
    /// store failed and nobody could see the pointer).
    pub(crate) unsafe fn as_ptr(&self) -> *mut bindings::page {
        self.0.as_ptr()
    }

    /// Fills the whole page from user memory (`EFAULT` if the source faults).
    pub(crate) fn copy_from_user(
        &mut self,
        reader: &mut kernel::uaccess::UserSliceReader,
    ) -> Result {
        // SAFETY: The page is valid (invariant of `PageRef`) and the borrowed `Page` is never
        // dropped, so our reference is untouched.
        let page = unsafe { kernel::page::BorrowedPage::from_raw(self.0 .0) };
        // SAFETY: The whole page is in bounds, and nothing can read or write the page
        // meanwhile: ours is its only reference and nothing points to it (invariant).
        unsafe { page.copy_from_user_slice_raw(reader, 0, PAGE_SIZE) }
    }

    /// See [`PageRef::copy_from_iter_atomic`].
    pub(crate) fn copy_from_iter_atomic(
        &mut self,
        offset: usize,
        len: usize,
        src: &mut IovIterSource<'_>,
    ) -> usize {
        self.0.copy_from_iter_atomic(offset, len, src)
    }

    /// Gives up uniqueness: the page is about to be stored, and shared from then on.
    pub(crate) fn share(self) -> PageRef {
        self.0
    }
}

impl PageRef {
    fn alloc(flags: kernel::alloc::Flags) -> Result<Self> {
        let page = Page::alloc_page(flags)?;
        let ptr = page.as_ptr();
        // `Page` owns the page's one reference; we take it over instead of letting `Page`'s
        // destructor free the page.
        core::mem::forget(page);
        // SAFETY: `ptr` is the valid order-0 page just allocated (non-null because
        // `alloc_page` succeeded), and we own its reference.
        // INVARIANT: as above.
        Ok(Self(unsafe { NonNull::new_unchecked(ptr) }))
    }

    /// Wraps a page reference taken over from C (e.g. out of the page store).
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid page (order 0, or a subpage of a PMD-order folio) and the
    /// caller transfers one reference to it.
    pub(crate) unsafe fn from_raw(ptr: NonNull<bindings::page>) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self(ptr)
    }

    /// Gives up this reference to C, e.g. to the page store.
    pub(crate) fn into_raw(self) -> NonNull<bindings::page> {
        let p = self.0;
        core::mem::forget(self);
        p
    }

    /// The raw page.
    pub(crate) fn as_ptr(&self) -> *mut bindings::page {
        self.0.as_ptr()
    }

    /// Takes another reference to the same page.
    pub(crate) fn clone_ref(&self) -> Self {
        // SAFETY: By the invariant the page is valid and we hold a reference, so taking
        // another one is allowed.
        unsafe { sealmem_get_page(self.as_ptr()) };
        // INVARIANT: we just took the reference the new value owns.
        Self(self.0)
    }

    /// Copies `len` bytes at `offset` within the page to `dst`; returns the bytes copied
    /// (short only when `dst` faulted).
    pub(crate) fn copy_to_iter(
        &self,
        offset: usize,
        len: usize,
        dst: &mut IovIterDest<'_>,
    ) -> usize {
        if offset >= PAGE_SIZE || len > PAGE_SIZE - offset {
            return 0;
        }
        // SAFETY: The page is valid (invariant), the range lies within it (checked above),
        // and `dst` is a valid destination iterator.
        unsafe { bindings::copy_page_to_iter(self.as_ptr(), offset, len, dst.as_raw()) }
    }

    /// Copies `len` bytes from `src` into the page at `offset` with page faults disabled
    /// (for a caller holding a lock that a fault on the source could need, or that must not
    /// be held while waiting for a lazy page): a fault ends the copy short instead. Returns
    /// the bytes copied.
    pub(crate) fn copy_from_iter_atomic(
        &self,
        offset: usize,
        len: usize,
        src: &mut IovIterSource<'_>,
    ) -> usize {
        if offset >= PAGE_SIZE || len > PAGE_SIZE - offset {
            return 0;
        }
        // SAFETY: As in `copy_to_iter`, with a valid source iterator; the copy does not
        // sleep on a fault.
        unsafe {
            crate::ffi::sealmem_copy_page_from_iter_atomic(self.as_ptr(), offset, len, src.as_raw())
        }
    }

    /// Zeroes `len` bytes at `offset`. The page may be mapped and accessed meanwhile (shrink
    /// zeroes the tail of the last page while it can still be mapped): racing accesses see
    /// the old bytes or zeros, as when truncate zeroes a partial page-cache folio.
    pub(crate) fn zero(&self, offset: usize, len: usize) {
        if offset >= PAGE_SIZE || len > PAGE_SIZE - offset {
            return;
        }
        // SAFETY: The page is valid (invariant) and the range lies within it (checked above).
        // `memzero_page` (C) has no rule against concurrent accesses to the page (unlike
        // `kernel::page::Page::fill_zero_raw`, whose contract forbids them).
        unsafe { crate::ffi::sealmem_zero_page_range(self.as_ptr(), offset, len) };
    }
}

/// A page borrowed from a page store for `'a`, without a reference of its own: what the
/// fault path maps (`vm_insert_pages` takes the page-table references itself), so a fault
/// does not take and drop a reference per page.
///
/// # Invariants
///
/// `0` points to a valid page (order 0, or a subpage of a PMD-order folio) that stays
/// allocated for `'a` (its store holds a reference that cannot be dropped for `'a`).
#[derive(Clone, Copy)]
pub(crate) struct StablePage<'a>(NonNull<bindings::page>, PhantomData<&'a PageRef>);

impl StablePage<'_> {
    /// # Safety
    ///
    /// `ptr` must point to a valid page (order 0, or a subpage of a PMD-order folio) that
    /// stays allocated for `'a`.
    pub(crate) unsafe fn from_raw(ptr: NonNull<bindings::page>) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self(ptr, PhantomData)
    }

    /// The raw page.
    pub(crate) fn as_ptr(&self) -> *mut bindings::page {
        self.0.as_ptr()
    }

    /// The page as `kernel::page::Page`, for the kernel crate's APIs (borrowed: no
    /// reference is given up when it goes).
    pub(crate) fn borrowed(&self) -> kernel::page::BorrowedPage<'_> {
        // SAFETY: The page stays allocated for 'a (invariant), which outlives this borrow.
        unsafe { kernel::page::BorrowedPage::from_raw(self.0) }
    }
}

/// Pages per unit of a huge file: one PMD's worth (`SEALMEM_HUGE_SIZE`).
pub(crate) const UNIT_PAGES: usize = (crate::uapi::SEALMEM_HUGE_SIZE as usize) / PAGE_SIZE;

/// Whether this kernel can have huge files: transparent huge pages are built in and a PMD
/// maps `SEALMEM_HUGE_SIZE`.
pub(crate) fn huge_supported() -> bool {
    // SAFETY: Reads compile-time configuration; no preconditions.
    unsafe { crate::ffi::sealmem_huge_supported() }
}

/// The only reference to a new folio of PMD order (a huge file's unit: [`UNIT_PAGES`] pages),
/// which nobody else can reach yet.
///
/// # Invariants
///
/// `0` points to the head page of a valid folio of PMD order; this value owns its only
/// reference, and no page table, store or other kernel object points to it.
pub(crate) struct HugeFolio(NonNull<bindings::page>);

// SAFETY: A folio reference may be moved to and dropped on any thread.
unsafe impl Send for HugeFolio {}

impl HugeFolio {
    /// A new folio (zeroed if `zero`), charged to the current task's memory cgroup; `None`
    /// when no 2 MiB block is free (or the `huge_fail` knob says so): the caller falls back
    /// to small pages. `light`: without direct reclaim or compaction (a first touch, under
    /// the mm's or the file's locks), see `sealmem_alloc_huge`.
    pub(crate) fn alloc(zero: bool, light: bool) -> Option<Self> {
        if crate::knobs::huge_fail() {
            return None;
        }
        // SAFETY: Allocates; no preconditions.
        let head = unsafe { crate::ffi::sealmem_alloc_huge(zero, light) };
        // INVARIANT: a new folio of PMD order with one reference, ours.
        NonNull::new(head).map(Self)
    }

    /// Fills the first `len` bytes of the folio from user memory at `src` (`EFAULT` if the
    /// source faults, or `len` exceeds the folio). No lock may be held: the copy may fault.
    pub(crate) fn copy_from_user(&mut self, src: usize, len: usize) -> Result {
        // SAFETY: The folio is valid and nothing else can read or write it (invariant); the
        // helper bounds the copy by the folio's size.
        let left = unsafe {
            crate::ffi::sealmem_huge_copy_from_user(self.0.as_ptr(), src as c_ulong, len)
        };
        if left == 0 {
            Ok(())
        } else {
            Err(EFAULT)
        }
    }

    /// The head page, for the store to take.
    ///
    /// # Safety
    ///
    /// Once the pointer is stored where another task can read it, `self` must not be used
    /// again but to be given up with [`HugeFolio::stored`] (or dropped, if nothing was
    /// stored and nobody could see the pointer).
    pub(crate) unsafe fn as_ptr(&self) -> *mut bindings::page {
        self.0.as_ptr()
    }

    /// The store took over this value's reference (and took the unit's others itself).
    pub(crate) fn stored(self) {
        core::mem::forget(self);
    }
}

impl Drop for HugeFolio {
    fn drop(&mut self) {
        // SAFETY: By the invariant we own the folio's one reference, given up here once.
        unsafe { sealmem_put_page(self.0.as_ptr()) };
    }
}

/// The number of pages of RAM (`totalram_pages()`).
pub(crate) fn totalram_pages() -> u64 {
    // SAFETY: Reads a global counter; no preconditions.
    (unsafe { crate::ffi::sealmem_totalram_pages() }) as u64
}

/// Faults in up to `len` bytes of `src` for reading (no lock may be held: the fault may wait
/// for a lazy page); returns how many bytes could NOT be faulted in (`len`: none could).
pub(crate) fn fault_in_source(src: &mut IovIterSource<'_>, len: usize) -> usize {
    // SAFETY: `src` is a valid source iterator; this only touches the user memory it
    // describes, without consuming it.
    unsafe { bindings::fault_in_iov_iter_readable(src.as_raw(), len) }
}

/// Writes `len` zero bytes to `dst` (a hole's contents); returns the bytes written.
pub(crate) fn zero_iter(len: usize, dst: &mut IovIterDest<'_>) -> usize {
    // SAFETY: `dst` is a valid destination iterator.
    unsafe { bindings::iov_iter_zero(len, dst.as_raw()) }
}

impl Drop for PageRef {
    fn drop(&mut self) {
        // SAFETY: By the invariant we own one reference, given up here exactly once.
        unsafe { sealmem_put_page(self.as_ptr()) };
    }
}
