// SPDX-License-Identifier: GPL-2.0

//! Global counters, exported read-only in debugfs under `sealmem/counters/`.
//!
//! Gauges (`files`, `pages`) go up and down and must read 0 when nothing is open; the others
//! only count events. Tests read them to prove that nothing leaked.

use kernel::{
    debugfs::{Dir, Scope},
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

/// The module-wide counters.
pub(crate) struct Stats {
    /// sealmem files alive now (one per `open()` of the device, shared by dup/VIEW/handler).
    pub(crate) files: Atomic<u64>,
    /// sealmem files created since the module was loaded.
    pub(crate) files_created: Atomic<u64>,
    /// Resident pages of all files together.
    pub(crate) pages: Atomic<u64>,
    /// Page faults handled.
    pub(crate) faults: Atomic<u64>,
    /// Pages filled through the handler fd.
    pub(crate) fills: Atomic<u64>,
    /// Times a task waited for a page to be filled.
    pub(crate) waits: Atomic<u64>,
}

pub(crate) static STATS: Stats = Stats {
    files: Atomic::new(0),
    files_created: Atomic::new(0),
    pages: Atomic::new(0),
    faults: Atomic::new(0),
    fills: Atomic::new(0),
    waits: Atomic::new(0),
};

impl Stats {
    /// Counts an event or raises a gauge.
    pub(crate) fn inc(counter: &Atomic<u64>) {
        counter.add(1u64, Relaxed);
    }

    /// Counts `n` events.
    pub(crate) fn add(counter: &Atomic<u64>, n: u64) {
        counter.add(n, Relaxed);
    }

    /// Lowers a gauge.
    pub(crate) fn dec(counter: &Atomic<u64>) {
        counter.fetch_sub(1u64, Relaxed);
    }
}

/// The debugfs directory; removed when dropped (at module unload).
pub(crate) struct DebugFs {
    _root: Dir,
    _counters: Pin<KBox<Scope<&'static Stats>>>,
    #[cfg(sealmem_debug_knobs)]
    _knobs: Pin<KBox<Scope<&'static crate::knobs::imp::Knobs>>>,
}

impl DebugFs {
    pub(crate) fn new() -> Result<Self> {
        let root = Dir::new(c"sealmem");
        let counters = KBox::pin_init(
            root.scope(&STATS, c"counters", |s, dir| {
                dir.read_only_file(c"files", &s.files);
                dir.read_only_file(c"files_created", &s.files_created);
                dir.read_only_file(c"pages", &s.pages);
                dir.read_only_file(c"faults", &s.faults);
                dir.read_only_file(c"fills", &s.fills);
                dir.read_only_file(c"waits", &s.waits);
            }),
            GFP_KERNEL,
        )?;
        Ok(Self {
            #[cfg(sealmem_debug_knobs)]
            _knobs: crate::knobs::debugfs(&root)?,
            _root: root,
            _counters: counters,
        })
    }
}
