// SPDX-License-Identifier: GPL-2.0

//! sealmem: sealed anonymous memory files with userfaultfd-style lazy fill.
//!
//! Every `open()` of `/dev/sealmem` creates a new anonymous memory file. The product contract
//! is `SPEC.md`; the user ABI is `include/uapi/linux/sealmem.h`.
//!
//! Layout of this crate:
//! - [`fops`]: the FFI glue: misc registration, every `file_operations` and
//!   `vm_operations_struct` table with its trampolines, fd creation (VIEW, FILL_ENABLE).
//! - [`file`]: the sealmem file object (size, seals, name, ioctls, fdinfo).
//! - [`store`]: the page store of a file, with its limits.
//! - [`fill`]: lazy fill: requests, waiting for holes, the handler fd.
//! - [`vm`], [`mapping`], [`page`], [`pagearray`], [`wait`]: the rest of the unsafe layer
//!   (vm_ops and faults, the per-file address_space, page references, the XArray of pages,
//!   killable wait queues).
//! - [`stats`]: global counters and their debugfs files.
//! - [`knobs`]: test-only race-widening delays (`SEALMEM_DEBUG_KNOBS=y` builds only).
//! - [`uapi`]: the ABI, generated from the C header.
//! - [`ffi`]: declarations of the C helpers (`sealmem_helpers.c`) and unbound exports.

use kernel::prelude::*;

mod ffi;
mod file;
mod fill;
mod fops;
mod knobs;
mod mapping;
mod page;
mod pagearray;
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
