// SPDX-License-Identifier: GPL-2.0

//! sealmem: sealed anonymous memory files with userfaultfd-style lazy fill.
//!
//! Every `open()` of `/dev/sealmem` creates a new anonymous memory file. The product contract
//! is `docs/api.md`; the user ABI is `include/uapi/linux/sealmem.h`.
//!
//! Layers of this crate, top to bottom (each imports only from below it;
//! `scripts/check-layers.sh` checks that there is no import cycle and no `unsafe` in the
//! logic files; README.md "Architecture" draws it):
//! - [`fops`]: the FFI glue: misc registration, every `file_operations` and
//!   `vm_operations_struct` table with its trampolines, fd creation (VIEW, FILL_ENABLE).
//! - [`handler`]: the handler fd (read, poll, COPY/ZEROPAGE/POISON/WAKE/FILL_END) on top of
//!   the file object's API.
//! - [`file`]: the sealmem file object (size, seals, name, read/write, ioctls, fdinfo; its
//!   child `file/fault.rs`: mmap and faults); owns all the file's state and the module's
//!   lock order.
//! - [`lazy`]: the lazy-fill queue: requests, waits, resolution, the attached handler.
//! - [`store`]: the page store of a file (its pages, its invalidate lock, the page limit).
//! - [`stats`], [`knobs`]: global counters and their debugfs files; test-only
//!   race-widening delays (`SEALMEM_DEBUG_KNOBS=y` builds only).
//! - The unsafe abstraction layer: [`vm`] (a fault, mapping pages into VMAs), [`mapping`]
//!   (the per-file address_space and its invalidate lock), [`pagearray`] (the XArray of
//!   pages), [`page`] (page references), [`pipe`] (the pipe a splice lends pages to),
//!   [`wait`] (killable wait queues, task helpers), [`uapi`] (the ABI, generated from the C
//!   header), [`ffi`] (declarations of the C helpers in `sealmem_helpers.c` and of unbound
//!   exports).

use kernel::prelude::*;

mod ffi;
mod file;
mod fops;
mod handler;
mod knobs;
mod lazy;
mod mapping;
mod page;
mod pagearray;
mod pipe;
mod stats;
mod store;
mod uapi;
mod vm;
mod wait;

module! {
    type: SealmemModule,
    name: "sealmem",
    authors: ["sealmem developers"],
    description: "Sealed anonymous memory files with lazy fill",
    license: "GPL",
    params: {
        max_file_size: u64 {
            default: 1 << 40,
            description: "Largest size of one sealmem file in bytes (SET_SIZE/write beyond: EFBIG)",
        },
        max_pages: u64 {
            default: 0,
            description: "Most resident pages of all sealmem files together; 0 = half of RAM (beyond: ENOSPC, SIGBUS on fault)",
        },
    },
}

/// The module: fields drop in this order at unload (the device first, the pseudo filesystem
/// its files' inodes live on last).
#[pin_data]
struct SealmemModule {
    #[pin]
    _misc: fops::Registration,
    _debugfs: stats::DebugFs,
    _fs: mapping::PseudoFs,
}

impl kernel::InPlaceModule for SealmemModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // The pseudo filesystem first: every open() allocates an inode on it.
            _fs: mapping::PseudoFs::mount()?,
            // then debugfs: the device may be opened as soon as it is registered.
            _debugfs: stats::DebugFs::new()?,
            // 0666: every user may create files; each file is private to its opener.
            _misc <- fops::Registration::register(c"sealmem", 0o666),
        })
    }
}
