// SPDX-License-Identifier: GPL-2.0

//! sealmem: sealed anonymous memory files with userfaultfd-style lazy fill.
//!
//! Every `open()` of `/dev/sealmem` creates a new anonymous memory file. The product contract
//! is `SPEC.md`; the user ABI is `include/uapi/linux/sealmem.h`.
//!
//! Layout of this crate:
//! - [`device`]: the FFI edge: misc registration, raw `file_operations` and trampolines.
//! - [`file`]: the sealmem file object (size, seals, name, ioctls, fdinfo).
//! - [`store`]: the page store of a file.
//! - [`stats`]: global counters and their debugfs files.
//! - [`uapi`]: the ABI, generated from the C header.
//! - `sealmem_helpers.c`: C helpers for static-inline kernel functions.

use kernel::prelude::*;

mod device;
mod file;
mod stats;
mod store;
mod uapi;

module! {
    type: SealmemModule,
    name: "sealmem",
    authors: ["sealmem developers"],
    description: "Sealed anonymous memory files with lazy fill",
    license: "GPL",
}

#[pin_data]
struct SealmemModule {
    #[pin]
    _misc: device::Registration,
    _debugfs: stats::DebugFs,
}

impl kernel::InPlaceModule for SealmemModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // debugfs first: the device may be opened as soon as it is registered.
            _debugfs: stats::DebugFs::new()?,
            // 0666: every user may create files; each file is private to its opener.
            _misc <- device::Registration::register(c"sealmem", 0o666),
        })
    }
}
