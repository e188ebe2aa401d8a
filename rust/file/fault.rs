// SPDX-License-Identifier: GPL-2.0

//! The sealmem file object's mmap hook and page faults (a child module of `file.rs`: it sees
//! [`SealFile`]'s private fields, and is bound by its invariants and the lock order there).
//!
//! A fault maps the page and the resident pages around it (fault-around), allocating a zero
//! page for a hole of a file that is not lazy; on a hole of a lazy file it raises a request
//! and waits for the handler as `handle_userfault` does (see `vm.rs`). A fill maps the page
//! it filled where a fault waits for it (map-on-fill).

use kernel::{
    fs::File,
    mm::{
        virt::{VmaNew, VmaRef},
        Mm,
    },
    prelude::*,
    sync::{aref::ARef, atomic::Acquire, Arc, ArcBorrow},
};

use super::{pages_for, write_sealed_in, SealFile, FAULT_AROUND, SEAL_EXEC};
use crate::{
    lazy::{HoleStatus, Ticket, MSG_FAULT, MSG_WRITE},
    page::UNIT_PAGES,
    stats::{AllocSite, Stats, STATS},
    store::{unit_of, Peek, SlotKind},
    vm::{self, Fault, FaultOutcome},
    wait::{Interrupted, WaitMode},
};

/// What [`SealFile::fault`] leaves its caller to do.
pub(crate) enum FaultStep {
    /// Return this to the mm (the fault lock is still held).
    Done(FaultOutcome),
    /// Release the fault lock ([`Fault::release_lock`]), then [`FaultWait::wait`].
    Wait(FaultWait),
}

impl From<FaultOutcome> for FaultStep {
    fn from(o: FaultOutcome) -> Self {
        FaultStep::Done(o)
    }
}

/// A fault's wait for a lazy page, owning what keeps the file alive once the fault lock is
/// released: nothing in it borrows the VMA.
pub(crate) struct FaultWait {
    // Dropped in this order: the object, then the file that holds it and the module.
    pinned: Arc<SealFile>,
    _file: ARef<File>,
    ticket: Ticket,
    mode: WaitMode,
}

impl FaultWait {
    /// Waits for the page, after the caller released the fault lock. Woken: the fault is
    /// over; the filler mapped the page here (map-on-fill), so the access neither retries
    /// the fault nor takes the mmap_lock for it (userfaultfd's woken fault does both).
    /// Interrupted: the mm retries, delivering the signal first.
    pub(crate) fn wait(self) -> FaultOutcome {
        let waited = self.pinned.wait_hole(self.ticket, self.mode);
        crate::knobs::delay(crate::knobs::Point::FaultAfterWait);
        match waited {
            Ok(()) => FaultOutcome::Completed,
            Err(Interrupted) => FaultOutcome::Retry,
        }
    }
}

impl SealFile {
    /// The mmap hook: applies the seals to the new VMA (memfd's rules); `fops.rs` then makes
    /// it VM_MIXEDMAP and installs the vm_ops. Runs under mmap_lock, so it must not take
    /// `inner` (see the lock order).
    pub(crate) fn mmap(&self, vma: &VmaNew) -> Result {
        use kernel::mm::virt::flags;
        let seals = self.seals.load(Acquire);
        if vma.flags() & flags::SHARED != 0 && write_sealed_in(seals) {
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
        // `fops.rs` installs the vm_ops once this returns `Ok`.
        Ok(())
    }

    /// The fault handler: maps the page (allocating a zero page on a hole) and the resident
    /// pages around it; on a hole of a lazy file it raises the request and returns what to
    /// wait for ([`FaultStep::Wait`]): the caller releases the fault lock, which ends the
    /// borrow `this` (it borrows the fault's VMA), and then waits ([`FaultWait::wait`]).
    pub(crate) fn fault(this: ArcBorrow<'_, SealFile>, vmf: &Fault<'_>) -> FaultStep {
        Stats::inc(&STATS.faults);
        let index = vmf.pgoff();
        loop {
            // A lazy file's hole is requested at once: no invalidate lock, no look at its
            // neighbours (`hole_request` checks EOF and the slot again under the queue's lock).
            let lazy_hole = this.is_lazy()
                && (index as u64) < pages_for(this.size())
                && this.store.kind(index) == SlotKind::Hole;
            if !lazy_hole {
                let g = this.store.lock_shared();
                let eof_pages = pages_for(this.size());
                if index as u64 >= eof_pages {
                    return FaultOutcome::SigBus.into();
                }
                let lazy = this.is_lazy();
                let (first, end) = vmf.window(FAULT_AROUND);
                let end = end.min(usize::try_from(eof_pages).unwrap_or(usize::MAX));
                let mut win = [Peek::Hole; FAULT_AROUND];
                let (Some(win), Some(at)) = (
                    win.get_mut(..end.saturating_sub(first)),
                    index.checked_sub(first),
                ) else {
                    return FaultOutcome::SigBus.into();
                };
                this.store.peek_run(&g, first, win);
                match win.get(at) {
                    // A huge file's VMA: this page alone (no fault-around, see `vm.rs`). The
                    // PMD path (`huge_fault`) came first and fell back: the unit was not whole
                    // then (or cannot be mapped by PMD here). A lazy unit's fault waits below
                    // and is woken unmapped, so its next fault maps the PMD.
                    Some(Peek::Page(_)) if !vmf.is_mixedmap() => {
                        let Some(Peek::Page(page)) = win.get(at).copied() else {
                            return FaultOutcome::SigBus.into();
                        };
                        return vmf.insert_one(page).into();
                    }
                    Some(Peek::Page(_)) => return Self::map_window(vmf, first, win, at).into(),
                    Some(Peek::Hole) if lazy => {}
                    Some(Peek::Hole) => match this.zero_page_for_fault(index) {
                        // Mapped on the next pass, with its neighbours.
                        Ok(_) => continue,
                        Err(e) if e == ENOMEM => return FaultOutcome::Oom.into(),
                        Err(_) => return FaultOutcome::SigBus.into(),
                    },
                    Some(Peek::Poison) | None => return FaultOutcome::SigBus.into(),
                }
            }
            // A hole of a lazy file: request it, then wait as handle_userfault() does. As there,
            // an exiting task (clearing its child tid) or one dumping core neither requests
            // nor waits: SIGBUS (the dump skips the page).
            if crate::wait::current_exiting_or_dumping() {
                return FaultOutcome::SigBus.into();
            }
            let flags = MSG_FAULT | if vmf.is_write() { MSG_WRITE } else { 0 };
            // It waits below only if it may retry and may sleep.
            let waits = vmf.allow_retry() && !vmf.retry_nowait();
            let ticket = match this.hole_request(index, flags, Some(vmf.fault_at()), waits) {
                Ok(HoleStatus::Resolved) => continue,
                Ok(HoleStatus::Poisoned | HoleStatus::NoHandler) => {
                    return FaultOutcome::SigBus.into()
                }
                Err(_) => return FaultOutcome::Oom.into(),
                Ok(HoleStatus::Wait(ticket)) => ticket,
            };
            if !vmf.allow_retry() {
                return FaultOutcome::SigBus.into();
            }
            if vmf.retry_nowait() {
                return FaultOutcome::Retry.into();
            }
            let mode = if vmf.interruptible() {
                WaitMode::Interruptible
            } else {
                WaitMode::Killable
            };
            // The VMA (and with it our borrow) may go away once the lock is dropped: hold the
            // VMA's file across the wait, as the mm does (`maybe_unlock_mmap_for_io`). The
            // file keeps both this object and the module (its `f_op->owner`) alive, so a
            // munmap, the last close and rmmod cannot pull either from under the waiter.
            return FaultStep::Wait(FaultWait {
                // Evaluated in this order: the file (get_file), then the object.
                _file: vmf.file(),
                pinned: this.into(),
                ticket,
                mode,
            });
        }
    }

    /// The page a fault on the hole `index` of a file that is not lazy maps: a new zero page
    /// (or one a racing access stored first); in a huge file, the unit's 2 MiB folio when the
    /// unit is a hole within EOF (see [`SealFile::touch_unit`]). Called with the invalidate
    /// lock held shared, under which FILL_ENABLE cannot make the file lazy meanwhile.
    fn zero_page_for_fault(&self, index: usize) -> Result<crate::page::PageRef> {
        crate::knobs::delay(crate::knobs::Point::FaultBeforeZeroPage);
        self.touch_unit(index);
        self.store.get_or_alloc(index, AllocSite::FaultPage)
    }

    /// `->huge_fault` for a PMD: maps the fault's whole unit with one PMD when it is one
    /// 2 MiB folio within EOF (allocating it first in a huge file that is not lazy, on the
    /// first touch of a unit that is a hole), and the fault may map a PMD there
    /// ([`Fault::pmd_candidate`]). Anything else (a lazy hole, a unit partly present or of
    /// small pages, the last unit cut by EOF, an unaligned or partial VMA, a private write,
    /// a write-protected PMD) falls back to the PTE fault, which raises lazy requests and
    /// waits as usual.
    pub(crate) fn huge_fault(this: ArcBorrow<'_, SealFile>, vmf: &Fault<'_>) -> FaultOutcome {
        if !this.store.is_huge() || !vmf.pmd_candidate() {
            return FaultOutcome::Fallback;
        }
        let unit = unit_of(vmf.pgoff());
        let g = this.store.lock_shared();
        if (unit as u64).saturating_add(UNIT_PAGES as u64) > pages_for(this.size()) {
            return FaultOutcome::Fallback;
        }
        if this.store.whole_unit(&g, unit).is_none() && !this.is_lazy() {
            // Not lazy, under the invalidate lock held shared (FILL_ENABLE cannot come).
            this.touch_unit(unit);
        }
        let Some(head) = this.store.whole_unit(&g, unit) else {
            return FaultOutcome::Fallback;
        };
        let outcome = vmf.insert_pmd(head);
        if let FaultOutcome::Mapped = outcome {
            Stats::inc(&STATS.pmd_faults);
        }
        outcome
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
            let n = win[i..]
                .iter()
                .take_while(|w| matches!(w, Peek::Page(_)))
                .count();
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
    pub(super) fn map_filled(&self, index: usize, mm: &Mm, addr: usize) {
        let Some(mm) = mm.mmget_not_zero() else {
            return;
        };
        if let Some(vma) = mm.lock_vma_under_rcu(addr) {
            self.map_filled_in(&vma, index, addr);
            return;
        }
        // Never block the (shared) handler behind a consumer's mmap_lock writer (a consumer
        // looping mmap/munmap would stall every fill): if it is contended, leave the page to
        // the woken fault, which maps it itself.
        let Some(g) = mm.mmap_read_trylock() else {
            return;
        };
        if let Some(vma) = g.vma_lookup(addr) {
            self.map_filled_in(vma, index, addr);
        }
    }

    fn map_filled_in(&self, vma: &VmaRef, index: usize, addr: usize) {
        if !self.store.mapped_at(vma, addr, index) {
            return;
        }
        // A page still in the store is within EOF (invariant): no size check needed.
        let g = self.store.lock_shared();
        let mut one = [Peek::Hole];
        self.store.peek_run(&g, index, &mut one);
        if let Peek::Page(page) = one[0] {
            // EBUSY (the fault already mapped it) and any other failure leave it to the fault.
            let _ = vm::insert_page(vma, addr, page);
        }
    }
}
