// SPDX-License-Identifier: GPL-2.0

//! Test-only delays that widen race windows (`SEALMEM_DEBUG_KNOBS=y` builds only).
//!
//! Some review defects are races between two loads a few instructions apart; a test cannot
//! hit them reliably. A build with the knobs has two debugfs files, `sealmem/debug/delay_at`
//! and `sealmem/debug/delay_ms`: when `delay_at` names a [`Point`], the code at that point
//! sleeps `delay_ms` milliseconds (uninterruptibly, so a test sees the task in state D).
//! Without the knobs [`delay`] is an empty inline function and the files do not exist.
//!
//! `sealmem/debug/huge_fail` (same builds): while it is non-zero, every allocation of a
//! huge file's 2 MiB folio is treated as failed, so tests can drive the small-page fallback
//! without fragmenting the VM's memory ([`huge_fail`]).

/// Where a test may ask for a delay (the value written to `delay_at`).
#[derive(Clone, Copy)]
#[repr(u32)]
pub(crate) enum Point {
    /// A page fault's wait for a lazy page has ended; the fault has not returned yet.
    FaultAfterWait = 1,
    /// `read()` or a splice has looked up a page's slot (after loading lazy mode) and not
    /// yet acted on it.
    ReadAfterSlot = 2,
    /// A fault found a hole of a file that is not lazy and is about to allocate a zero page
    /// (holding the invalidate lock shared).
    FaultBeforeZeroPage = 3,
}

#[cfg(sealmem_debug_knobs)]
pub(crate) mod imp {
    use kernel::{
        debugfs::{Dir, Scope},
        prelude::*,
        sync::atomic::{Atomic, Relaxed},
    };

    pub(crate) struct Knobs {
        delay_at: Atomic<u32>,
        delay_ms: Atomic<u32>,
        huge_fail: Atomic<u32>,
    }

    static KNOBS: Knobs = Knobs {
        delay_at: Atomic::new(0),
        delay_ms: Atomic::new(0),
        huge_fail: Atomic::new(0),
    };

    /// The knobs' debugfs files, under `parent`; removed when dropped.
    pub(crate) fn debugfs(parent: &Dir) -> Result<Pin<KBox<Scope<&'static Knobs>>>> {
        KBox::pin_init(
            parent.scope(&KNOBS, c"debug", |k, dir| {
                dir.read_write_file(c"delay_at", &k.delay_at);
                dir.read_write_file(c"delay_ms", &k.delay_ms);
                dir.read_write_file(c"huge_fail", &k.huge_fail);
            }),
            GFP_KERNEL,
        )
    }

    pub(crate) fn delay(at: super::Point) {
        if KNOBS.delay_at.load(Relaxed) == at as u32 {
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(i64::from(
                KNOBS.delay_ms.load(Relaxed),
            )));
        }
    }

    pub(crate) fn huge_fail() -> bool {
        KNOBS.huge_fail.load(Relaxed) != 0
    }
}

#[cfg(sealmem_debug_knobs)]
pub(crate) use imp::{debugfs, delay, huge_fail};

/// Never: this build has no knobs.
#[cfg(not(sealmem_debug_knobs))]
#[inline(always)]
pub(crate) fn huge_fail() -> bool {
    false
}

/// Nothing: this build has no knobs.
#[cfg(not(sealmem_debug_knobs))]
#[inline(always)]
pub(crate) fn delay(_at: Point) {}
