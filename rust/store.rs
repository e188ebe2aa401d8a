// SPDX-License-Identifier: GPL-2.0

//! The page store of one sealmem file: which page offsets hold a page.
//!
//! The file object owns one `PageStore`. For now it only counts resident pages (always 0);
//! the sealed-file issue gives it pages, and the lazy-fill issue adds the hole states
//! (requested, poisoned) next to them, so faults and fills share one lookup structure.

use kernel::sync::atomic::{Atomic, Relaxed};

/// The pages of one file.
pub(crate) struct PageStore {
    resident: Atomic<u64>,
}

impl PageStore {
    pub(crate) fn new() -> Self {
        Self {
            resident: Atomic::new(0),
        }
    }

    /// Number of pages this file holds now.
    pub(crate) fn resident(&self) -> u64 {
        self.resident.load(Relaxed)
    }
}
