// SPDX-License-Identifier: GPL-2.0

//! Global counters, exported read-only in debugfs under `sealmem/counters/`.
//!
//! Gauges (`files`, `pages`) go up and down and must read 0 when nothing is open; the others
//! only count events. Tests read them to prove that nothing leaked.
//!
//! `sealmem/alloc_failures` lists, per allocation site, how many allocations failed there
//! (one `site count` line each): a fault-injection run proves with it that every site's
//! failure path ran.

use kernel::{
    debugfs::{Dir, File, Scope},
    fmt,
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
    /// Units of huge files stored as one 2 MiB folio.
    pub(crate) huge_units: Atomic<u64>,
    /// Units of huge files that got small pages because no 2 MiB folio could be allocated
    /// (512 small pages for a fill, one for a first touch).
    pub(crate) huge_fallbacks: Atomic<u64>,
    /// Faults that mapped a whole unit with one PMD.
    pub(crate) pmd_faults: Atomic<u64>,
}

pub(crate) static STATS: Stats = Stats {
    files: Atomic::new(0),
    files_created: Atomic::new(0),
    pages: Atomic::new(0),
    faults: Atomic::new(0),
    fills: Atomic::new(0),
    waits: Atomic::new(0),
    huge_units: Atomic::new(0),
    huge_fallbacks: Atomic::new(0),
    pmd_faults: Atomic::new(0),
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

/// The allocation sites whose failures are counted (see [`alloc_failed`]).
#[derive(Clone, Copy)]
pub(crate) enum AllocSite {
    /// A page for a fault on a hole of a file that is not lazy.
    FaultPage,
    /// A page for `write()`.
    WritePage,
    /// A page for `SEALMEM_IOC_COPY`.
    CopyPage,
    /// A page for `SEALMEM_IOC_ZEROPAGE`.
    ZeroPage,
    /// A fill request's tree node.
    RequestNode,
    /// A new file (its object or its inode) at `open()`.
    File,
    /// A handler at `SEALMEM_IOC_FILL_ENABLE`.
    Handler,
    /// An XArray node of a file's page store.
    XarrayNode,
}

/// The sites' names in debugfs, in the order of [`AllocSite`].
const ALLOC_SITES: [&str; 8] = [
    "fault_page",
    "write_page",
    "copy_page",
    "zeropage_page",
    "request_node",
    "file",
    "handler",
    "xarray_node",
];

/// Failed allocations per [`AllocSite`] since the module was loaded.
pub(crate) struct AllocFailures([Atomic<u64>; ALLOC_SITES.len()]);

pub(crate) static ALLOC_FAILURES: AllocFailures =
    AllocFailures([const { Atomic::new(0) }; ALLOC_SITES.len()]);

/// Counts a failed allocation at `site`.
pub(crate) fn alloc_failed(site: AllocSite) {
    if let Some(c) = ALLOC_FAILURES.0.get(site as usize) {
        c.add(1u64, Relaxed);
    }
}

/// Counts `e` as a failed allocation at `site` if it is `ENOMEM` (for `inspect_err`).
pub(crate) fn enomem_at(site: AllocSite) -> impl Fn(&Error) {
    move |e| {
        if *e == ENOMEM {
            alloc_failed(site);
        }
    }
}

impl fmt::Debug for AllocFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (c, name)) in self.0.iter().zip(ALLOC_SITES.iter()).enumerate() {
            let sep = if i == 0 { "" } else { "\n" };
            write!(f, "{sep}{name} {}", c.load(Relaxed))?;
        }
        Ok(())
    }
}

/// The debugfs directory; removed when dropped (at module unload).
pub(crate) struct DebugFs {
    _root: Dir,
    _counters: Pin<KBox<Scope<&'static Stats>>>,
    _alloc_failures: Pin<KBox<File<&'static AllocFailures>>>,
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
                dir.read_only_file(c"huge_units", &s.huge_units);
                dir.read_only_file(c"huge_fallbacks", &s.huge_fallbacks);
                dir.read_only_file(c"pmd_faults", &s.pmd_faults);
            }),
            GFP_KERNEL,
        )?;
        let alloc_failures = KBox::pin_init(
            root.read_only_file(c"alloc_failures", &ALLOC_FAILURES),
            GFP_KERNEL,
        )?;
        Ok(Self {
            #[cfg(sealmem_debug_knobs)]
            _knobs: crate::knobs::debugfs(&root)?,
            _root: root,
            _counters: counters,
            _alloc_failures: alloc_failures,
        })
    }
}
