// SPDX-License-Identifier: GPL-2.0

//! VMA glue: sealmem's `vm_operations_struct`, a safe view of a page fault, and the fault
//! trampoline (part of the unsafe layer).
//!
//! Pages are installed with `vm_insert_page(s)` into VM_MIXEDMAP VMAs (as binder does), so the
//! fault handler can map a run of resident neighbours in the same fault (fault-around:
//! `.map_pages` is unusable from a module, see the notes). A write fault in a private
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
    mm::{
        virt::{VmaNew, VmaRef},
        Mm,
    },
    page::PAGE_SIZE,
    prelude::*,
    sync::{aref::ARef, Arc, ArcBorrow},
    types::ForeignOwnable,
};

use crate::{device::AssertSync, file::SealFile, fill::FaultAt, page::StablePage};
use kernel::fs::File;

/// Most pages [`Fault::insert_run`] maps in one call: one fault-around window.
pub(crate) const MAX_RUN: usize = 16;

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
}

/// The vm_ops of every sealmem VMA.
static SEALMEM_VM_OPS: AssertSync<bindings::vm_operations_struct> =
    AssertSync(bindings::vm_operations_struct {
        fault: Some(sealmem_vm_fault),
        open: Some(sealmem_vm_open),
        close: Some(sealmem_vm_close),
        ..pin_init::zeroed()
    });

/// Prepares a new VMA of a sealmem file: VM_MIXEDMAP, our vm_ops.
pub(crate) fn setup_vma(vma: &VmaNew) {
    vma.set_mixedmap();
    // SAFETY: The VMA is being set up in the mmap hook (invariant of `VmaNew`), so we may set
    // its vm_ops; the table is 'static.
    unsafe { (*vma.as_ptr()).vm_ops = &SEALMEM_VM_OPS.0 };
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
    fn vma(&self) -> *mut bindings::vm_area_struct {
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
        FaultAt::new(ARef::from(mm), addr & !(PAGE_SIZE - 1))
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
    pub(crate) fn vma_end_pgoff(&self) -> usize {
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
    /// VMA; at most [`MAX_RUN`] pages are taken), stopping at the first page that cannot be
    /// mapped. Returns how many were mapped and, when that is not all, why the next one was
    /// not (`EBUSY`: already mapped).
    pub(crate) fn insert_run(&self, first: usize, pages: &[StablePage<'_>]) -> (usize, Option<Error>) {
        const MAX: usize = MAX_RUN;
        let n = pages.len().min(MAX).min(self.vma_end_pgoff().saturating_sub(first));
        if n == 0 || first < self.vm_pgoff() {
            return (0, Some(EINVAL));
        }
        let mut raw = [core::ptr::null_mut::<bindings::page>(); MAX];
        for (r, p) in raw.iter_mut().zip(&pages[..n]) {
            *r = p.as_ptr();
        }
        let mut left = n as kernel::ffi::c_ulong;
        // SAFETY: A locked VM_MIXEDMAP VMA (set at mmap) covering `n` pages from `first`
        // (checked above against both ends of the VMA); each page is valid for the call
        // (`StablePage`) and not anonymous, and vm_insert_pages takes its own reference to
        // each page it maps.
        let ret = unsafe { bindings::vm_insert_pages(self.vma(), self.addr_of(first), raw.as_mut_ptr(), &mut left) };
        let mapped = n.saturating_sub(left as usize);
        if mapped == n {
            (n, None)
        } else {
            (mapped, Some(if ret != 0 { Error::from_errno(ret) } else { EINVAL }))
        }
    }
}

/// Whether `vma` is a sealmem VMA of `file` that maps page `index` at `addr`.
pub(crate) fn maps_file_page(vma: &VmaRef, file: &SealFile, addr: usize, index: usize) -> bool {
    let raw = vma.as_ptr();
    // SAFETY: `vma` is valid and locked for the borrow (invariant of `VmaRef`).
    if !core::ptr::eq(unsafe { (*raw).vm_ops }, &SEALMEM_VM_OPS.0) {
        return false;
    }
    // SAFETY: A sealmem VMA (its vm_ops are ours), locked while `vma` is borrowed.
    let owner = unsafe { vma_file(raw) };
    if !core::ptr::eq::<SealFile>(&*owner, file) || addr < vma.start() || addr >= vma.end() {
        return false;
    }
    // SAFETY: As above.
    let vm_pgoff = unsafe { (*raw).vm_pgoff };
    vm_pgoff.checked_add((addr - vma.start()) / PAGE_SIZE) == Some(index)
}

/// Maps `page` at `addr` in `vma` (a sealmem VMA, see [`maps_file_page`]); `EBUSY` if
/// something is mapped there already.
pub(crate) fn insert_page(vma: &VmaRef, addr: usize, page: StablePage<'_>) -> Result {
    // vm_insert_page takes its own reference to the page.
    vma.as_mixedmap_vma().ok_or(EINVAL)?.vm_insert_page(addr, &page.borrowed())
}

/// Borrows the sealmem file of a VMA; also used by the lazy-fill path, which pins it with an
/// `Arc` before dropping the mmap lock.
///
/// # Safety
///
/// `vma` must be a valid sealmem VMA whose lock is held for `'a`.
pub(crate) unsafe fn vma_file<'a>(vma: *mut bindings::vm_area_struct) -> ArcBorrow<'a, SealFile> {
    // SAFETY: A sealmem VMA's `vm_file` is a sealmem file whose private data is an
    // `Arc<SealFile>` (see `device`), alive while the VMA holds the file.
    unsafe { <Arc<SealFile> as ForeignOwnable>::borrow((*(*vma).vm_file).private_data) }
}

/// # Safety
///
/// Called by the mm with a new VMA copied from a sealmem VMA (fork, split, mremap); the
/// sealmem file is held by the VMA it was copied from (`dup_mmap` calls `open` before it
/// takes the copy's own file reference).
unsafe extern "C" fn sealmem_vm_open(vma: *mut bindings::vm_area_struct) {
    // SAFETY: A sealmem VMA being set up by the mm, whose lock (or the new mm's) is held.
    let (obj, flags) = unsafe { (vma_file(vma), VmaRef::from_raw(vma).flags()) };
    if flags & kernel::mm::virt::flags::MAYEXEC != 0 {
        // The VMA it was copied from is counted, so the count is positive: not denied.
        obj.exec_map_copied();
    }
}

/// # Safety
///
/// Called by the mm when a sealmem VMA goes away (still holding its file).
unsafe extern "C" fn sealmem_vm_close(vma: *mut bindings::vm_area_struct) {
    // SAFETY: A sealmem VMA being removed by the mm; its file is put only after this.
    let (obj, flags) = unsafe { (vma_file(vma), VmaRef::from_raw(vma).flags()) };
    if flags & kernel::mm::virt::flags::MAYEXEC != 0 {
        // Every sealmem VMA that kept VM_MAYEXEC was counted (mmap hook or open).
        obj.exec_map_closed();
    }
}

/// # Safety
///
/// Called by the mm for a fault on a VMA whose vm_ops are [`SEALMEM_VM_OPS`].
unsafe extern "C" fn sealmem_vm_fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // INVARIANT: the mm calls .fault with a valid vmf and the VMA locked.
    let fault = Fault { vmf, _p: PhantomData };
    // SAFETY: As above: the VMA is ours and locked while `fault` is alive. The borrow is
    // turned into an owned `Arc` before the lock is released (see `SealFile::fault`).
    let obj = unsafe { vma_file(fault.vma()) };
    match SealFile::fault(obj, fault) {
        FaultOutcome::Mapped => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
        FaultOutcome::SigBus => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
        FaultOutcome::Oom => bindings::vm_fault_reason_VM_FAULT_OOM,
        FaultOutcome::Retry => bindings::vm_fault_reason_VM_FAULT_RETRY,
        // NOPAGE too: __do_fault returns early only on ERROR/NOPAGE/RETRY, never touching
        // vmf->page.
        FaultOutcome::Completed => bindings::vm_fault_reason_VM_FAULT_COMPLETED | bindings::vm_fault_reason_VM_FAULT_NOPAGE,
    }
}
