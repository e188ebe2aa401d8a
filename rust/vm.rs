// SPDX-License-Identifier: GPL-2.0

//! A safe view of a page fault on a sealmem VMA, and of the VMAs a filled page is mapped
//! into (part of the unsafe layer; the `vm_operations_struct` and its trampolines are in
//! `fops.rs`).
//!
//! Pages are installed with `vm_insert_page(s)` into VM_MIXEDMAP VMAs (as binder does), so the
//! fault handler can map a run of resident neighbours in the same fault (fault-around:
//! `.map_pages` is unusable from a module: it runs under RCU and cannot sleep, and
//! `set_pte_range`/`finish_fault` are not exported).
//!
//! A huge file's VMAs are not VM_MIXEDMAP: the mm's PMD split of a VM_MIXEDMAP VMA just
//! clears the PMD, without dropping the folio reference and mapcount that
//! `vmf_insert_folio_pmd` took (`__split_huge_pmd_locked`, `vma_is_special_huge`), so a
//! partial munmap, mprotect or MADV_DONTNEED of a PMD-mapped unit would leak it. There,
//! whole units are mapped with one PMD (`->huge_fault`, `vmf_insert_folio_pmd`) and
//! everything else one page per fault with `vmf_insert_page_mkwrite` (no fault-around:
//! `vm_insert_pages` wants VM_MIXEDMAP, and each fault maps only its own address). A write fault in a private
//! mapping installs the shared page read-only; the CPU retries, and the core's write-protect
//! fault copies it (copy-on-write), as for any file page.
//!
//! Waiting for a lazy page follows `handle_userfault`: with `FAULT_FLAG_ALLOW_RETRY` the
//! handler pins the file, drops the fault lock, sleeps (interruptibly when the fault allows
//! it, else killably) and returns `VM_FAULT_RETRY`; with `RETRY_NOWAIT` it returns
//! `VM_FAULT_RETRY` at once, lock held; without `ALLOW_RETRY` it raises SIGBUS rather than
//! sleep with the mmap lock held.

use core::marker::PhantomData;

use kernel::{
    bindings,
    mm::{virt::VmaRef, Mm},
    page::PAGE_SIZE,
    prelude::*,
    sync::aref::ARef,
};

use crate::{mapping::Mapping, page::StablePage};
use kernel::fs::File;

/// Where a fault waits for a page: when the page is filled it is also mapped there, so the
/// woken fault finds it mapped (as after `UFFDIO_COPY`) instead of faulting it in again.
pub(crate) struct FaultAt {
    mm: ARef<Mm>,
    addr: usize,
}

impl FaultAt {
    /// The mm the fault happened in.
    pub(crate) fn mm(&self) -> &Mm {
        &self.mm
    }

    /// The (page-aligned) address of the fault.
    pub(crate) fn addr(&self) -> usize {
        self.addr
    }
}

/// Most pages [`Fault::insert_run`] maps in one call: one fault-around window.
pub(crate) const MAP_RUN: usize = 16;

/// What the fault handler decided.
pub(crate) enum FaultOutcome {
    /// The page is mapped (by us or by a racing fault): let the access retry.
    Mapped,
    /// Raise SIGBUS (past EOF, over the page limit, or a failed insert).
    SigBus,
    /// Out of memory.
    Oom,
    /// Let the mm retry the fault (`VM_FAULT_RETRY`): either the fault lock was released
    /// with [`Fault::release_lock`] before waiting, or the fault said `RETRY_NOWAIT` and the
    /// lock is still held, as the protocol requires.
    Retry,
    /// The fault released its lock with [`Fault::release_lock`], waited, and the page it
    /// waited for was resolved (`VM_FAULT_COMPLETED`, as ->fault may return once the lock
    /// is gone): the mm returns without retrying. The filler has usually mapped the page
    /// where this fault waits; if not (poisoned, truncated, the mapping changed), the access
    /// simply faults afresh.
    Completed,
    /// (`->huge_fault` only) No PMD here: let the mm fault the page in with PTEs
    /// (`VM_FAULT_FALLBACK`).
    Fallback,
}

impl FaultOutcome {
    /// The outcome of an insert helper's `vm_fault_t`.
    fn of(ret: bindings::vm_fault_t) -> Self {
        if ret & bindings::vm_fault_reason_VM_FAULT_OOM != 0 {
            FaultOutcome::Oom
        } else if ret & bindings::vm_fault_reason_VM_FAULT_FALLBACK != 0 {
            FaultOutcome::Fallback
        } else if ret
            & (bindings::vm_fault_reason_VM_FAULT_SIGBUS
                | bindings::vm_fault_reason_VM_FAULT_SIGSEGV
                | bindings::vm_fault_reason_VM_FAULT_HWPOISON)
            != 0
        {
            FaultOutcome::SigBus
        } else {
            FaultOutcome::Mapped
        }
    }
}

/// A page fault on a sealmem VMA.
///
/// # Invariants
///
/// `vmf` is the `vm_fault` of a fault in progress on a sealmem VMA for `'a`: the VMA is valid
/// and its mmap or per-VMA lock is held.
pub(crate) struct Fault<'a> {
    vmf: *mut bindings::vm_fault,
    _p: PhantomData<&'a ()>,
}

impl Fault<'_> {
    /// # Safety
    ///
    /// `vmf` must be the `vm_fault` of a fault in progress on a sealmem VMA (the mm calls
    /// `->fault` so), its VMA lock held while the value lives.
    pub(crate) unsafe fn from_raw(vmf: *mut bindings::vm_fault) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self {
            vmf,
            _p: PhantomData,
        }
    }

    /// The faulting VMA (valid and locked for as long as `self` lives, by the invariant).
    pub(crate) fn vma(&self) -> *mut bindings::vm_area_struct {
        // SAFETY: `vmf` is valid (invariant).
        unsafe { (*self.vmf).__bindgen_anon_1.vma }
    }

    fn flags(&self) -> u32 {
        // SAFETY: `vmf` is valid (invariant).
        unsafe { (*self.vmf).flags }
    }

    /// Whether this is a write access.
    pub(crate) fn is_write(&self) -> bool {
        self.flags() & bindings::fault_flag_FAULT_FLAG_WRITE != 0
    }

    /// Whether the VMA is a shared mapping.
    fn is_shared(&self) -> bool {
        self.vma_ref().flags() & kernel::mm::virt::flags::SHARED != 0
    }

    /// Whether the VMA is VM_MIXEDMAP (every sealmem VMA but a huge file's: those are mapped
    /// with [`Fault::insert_one`] and [`Fault::insert_pmd`]).
    pub(crate) fn is_mixedmap(&self) -> bool {
        // SAFETY: The VMA is valid and locked (invariant).
        unsafe { crate::ffi::sealmem_vma_is_mixedmap(self.vma()) }
    }

    /// Whether this `->huge_fault` may map its 2 MiB with one PMD: the VMA is a huge file's
    /// (not VM_MIXEDMAP), the aligned 2 MiB lies in the VMA at a unit-aligned file offset
    /// with no page table under it, and it is not a write to a private mapping (copy-on-write
    /// is done by PTE). The mm checked the THP modes (sysfs, MADV_NOHUGEPAGE, prctl) before
    /// it called `->huge_fault`.
    pub(crate) fn pmd_candidate(&self) -> bool {
        if self.is_write() && !self.is_shared() {
            return false;
        }
        // SAFETY: `vmf` is a fault in progress on a locked VMA (invariant).
        unsafe { crate::ffi::sealmem_vmf_pmd_mappable(self.vmf) }
    }

    /// Maps the PMD-order folio at `head` with one PMD over the fault's aligned 2 MiB (the
    /// caller checked [`Fault::pmd_candidate`]; a PMD or page table that appeared meanwhile
    /// just makes the access retry).
    pub(crate) fn insert_pmd(&self, head: StablePage<'_>) -> FaultOutcome {
        if !self.pmd_candidate() {
            return FaultOutcome::Fallback;
        }
        // SAFETY: `vmf` is a fault in progress on a locked VMA that is not VM_MIXEDMAP
        // (`pmd_candidate`); `head` is the head page of a PMD-order folio, valid for the call
        // (`StablePage`; its store holds it), which vmf_insert_folio_pmd takes its own
        // reference to.
        FaultOutcome::of(unsafe { crate::ffi::sealmem_vmf_insert_pmd(self.vmf, head.as_ptr()) })
    }

    /// Maps `page` (the faulting page) at the fault address of a VMA that is not
    /// VM_MIXEDMAP (a huge file's), with `vmf_insert_page_mkwrite`, which takes its own
    /// reference. `Mapped` also when something is mapped there already.
    pub(crate) fn insert_one(&self, page: StablePage<'_>) -> FaultOutcome {
        if self.is_mixedmap() {
            return FaultOutcome::SigBus;
        }
        // SAFETY: `vmf` is a fault in progress on a locked VMA that is not VM_MIXEDMAP
        // (checked above); the page is valid for the call (`StablePage`) and not anonymous.
        FaultOutcome::of(unsafe { crate::ffi::sealmem_vmf_insert_page(self.vmf, page.as_ptr()) })
    }

    /// Whether the fault may be retried (so we may drop the lock and sleep).
    pub(crate) fn allow_retry(&self) -> bool {
        self.flags() & bindings::fault_flag_FAULT_FLAG_ALLOW_RETRY != 0
    }

    /// Whether the caller asks for `VM_FAULT_RETRY` without sleeping and with the lock held.
    pub(crate) fn retry_nowait(&self) -> bool {
        self.flags() & bindings::fault_flag_FAULT_FLAG_RETRY_NOWAIT != 0
    }

    /// Whether any signal (not only a fatal one) may interrupt a wait in this fault.
    pub(crate) fn interruptible(&self) -> bool {
        self.flags() & bindings::fault_flag_FAULT_FLAG_INTERRUPTIBLE != 0
    }

    /// Releases the mmap or per-VMA lock the fault holds (`release_fault_lock`), consuming
    /// the fault: the VMA may go away from here on. The caller must return
    /// [`FaultOutcome::Retry`] or [`FaultOutcome::Completed`].
    pub(crate) fn release_lock(self) {
        // SAFETY: `vmf` is a fault in progress holding its lock (invariant); releasing it is
        // what VM_FAULT_RETRY without RETRY_NOWAIT requires. `self` is consumed, so nothing
        // touches the VMA afterwards.
        unsafe { crate::ffi::sealmem_release_fault_lock(self.vmf) };
    }

    /// Where this fault waits if it waits for a lazy page: the VMA's mm and the page address.
    pub(crate) fn fault_at(&self) -> FaultAt {
        // SAFETY: `vmf` is valid (invariant).
        let addr = unsafe { (*self.vmf).__bindgen_anon_1.address };
        let mm: &Mm = self.vma_ref().mm();
        FaultAt {
            mm: ARef::from(mm),
            addr: addr & !(PAGE_SIZE - 1),
        }
    }

    /// A new reference to the file this fault's VMA maps (`get_file(vma->vm_file)`), to
    /// hold across a wait after [`Fault::release_lock`].
    pub(crate) fn file(&self) -> ARef<File> {
        // SAFETY: The VMA is valid and locked (invariant) and maps a sealmem file, which is
        // valid (its refcount positive) while the VMA holds it; `ARef::from` takes a new
        // reference (`get_file`). The `fdget_pos` rule protects `f_pos`: a sealmem file is a
        // character device or an anon-inode file, without FMODE_ATOMIC_POS, so no
        // `fdget_pos` ever takes `f_pos_lock` on it, and this reference never touches `f_pos`
        // (it is only held across the wait and put, as `maybe_unlock_mmap_for_io` does).
        ARef::from(unsafe { File::from_raw_file((*self.vma()).vm_file) })
    }

    /// The faulting page's index in the file.
    pub(crate) fn pgoff(&self) -> usize {
        // SAFETY: `vmf` is valid (invariant).
        unsafe { (*self.vmf).__bindgen_anon_1.pgoff }
    }

    fn vma_ref(&self) -> &VmaRef {
        // SAFETY: The VMA is valid and its lock is held for 'a (invariant).
        unsafe { VmaRef::from_raw(self.vma()) }
    }

    fn vm_pgoff(&self) -> usize {
        // SAFETY: The VMA is valid and locked (invariant).
        unsafe { (*self.vma()).vm_pgoff }
    }

    /// The file page index just past the end of the VMA.
    fn vma_end_pgoff(&self) -> usize {
        let vma = self.vma_ref();
        ((vma.end() - vma.start()) / PAGE_SIZE).saturating_add(self.vm_pgoff())
    }

    fn addr_of(&self, pgoff: usize) -> usize {
        self.vma_ref().start() + (pgoff - self.vm_pgoff()) * PAGE_SIZE
    }

    /// The file page range `[start, end)` of the fault-around window: the `pages`-aligned
    /// block of virtual addresses around the fault (as `do_fault_around` computes it),
    /// clipped to the VMA. `pages` must be a power of two.
    pub(crate) fn window(&self, pages: usize) -> (usize, usize) {
        let vma = self.vma_ref();
        let span = pages * PAGE_SIZE;
        let addr = self.addr_of(self.pgoff());
        let lo = (addr & !(span - 1)).max(vma.start());
        let hi = (addr & !(span - 1)).saturating_add(span).min(vma.end());
        let first = self.vm_pgoff() + (lo - vma.start()) / PAGE_SIZE;
        (first, first + (hi - lo) / PAGE_SIZE)
    }

    /// Maps `pages` at consecutive file offsets from `first` (the run must lie within the
    /// VMA; at most [`MAP_RUN`] pages are taken), stopping at the first page that cannot be
    /// mapped. Returns how many were mapped and, when that is not all, why the next one was
    /// not (`EBUSY`: already mapped).
    pub(crate) fn insert_run(
        &self,
        first: usize,
        pages: &[StablePage<'_>],
    ) -> (usize, Option<Error>) {
        const MAX: usize = MAP_RUN;
        let n = pages
            .len()
            .min(MAX)
            .min(self.vma_end_pgoff().saturating_sub(first));
        if n == 0 || first < self.vm_pgoff() {
            return (0, Some(EINVAL));
        }
        let mut raw = [core::ptr::null_mut::<bindings::page>(); MAX];
        for (r, p) in raw.iter_mut().zip(&pages[..n]) {
            *r = p.as_ptr();
        }
        let mut left = n as kernel::ffi::c_ulong;
        if !self.is_mixedmap() {
            return (0, Some(EINVAL));
        }
        // SAFETY: A locked VM_MIXEDMAP VMA (checked above) covering `n` pages from `first`
        // (checked above against both ends of the VMA); each page is valid for the call
        // (`StablePage`) and not anonymous, and vm_insert_pages takes its own reference to
        // each page it maps.
        let ret = unsafe {
            bindings::vm_insert_pages(self.vma(), self.addr_of(first), raw.as_mut_ptr(), &mut left)
        };
        let mapped = n.saturating_sub(left as usize);
        if mapped == n {
            (n, None)
        } else {
            (
                mapped,
                Some(if ret != 0 {
                    Error::from_errno(ret)
                } else {
                    EINVAL
                }),
            )
        }
    }
}

/// Whether `vma` maps the file page `index` of `mapping`'s file at `addr`: its file uses
/// `mapping` (only the `struct file`s of one sealmem file do: the mapping is that file's own,
/// and every VMA of such a file is a sealmem VMA, set up by its mmap hook) and `addr` is that
/// page's address in it.
pub(crate) fn maps_page_of(vma: &VmaRef, mapping: &Mapping, addr: usize, index: usize) -> bool {
    let raw = vma.as_ptr();
    // SAFETY: `vma` is valid and locked for the borrow (invariant of `VmaRef`); a VMA holds
    // its `vm_file` (if any) for its lifetime, so reading the file's `f_mapping` is valid.
    let (file_mapping, vm_pgoff) = unsafe {
        let file = (*raw).vm_file;
        let m = if file.is_null() {
            core::ptr::null_mut()
        } else {
            (*file).f_mapping
        };
        (m, (*raw).vm_pgoff)
    };
    if !mapping.is(file_mapping) || addr < vma.start() || addr >= vma.end() {
        return false;
    }
    vm_pgoff.checked_add((addr - vma.start()) / PAGE_SIZE) == Some(index)
}

/// Maps `page` at `addr` in `vma` (a sealmem VMA, see [`maps_page_of`]); `EBUSY` if
/// something is mapped there already.
pub(crate) fn insert_page(vma: &VmaRef, addr: usize, page: StablePage<'_>) -> Result {
    // vm_insert_page takes its own reference to the page.
    vma.as_mixedmap_vma()
        .ok_or(EINVAL)?
        .vm_insert_page(addr, &page.borrowed())
}
