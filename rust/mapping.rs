// SPDX-License-Identifier: GPL-2.0

//! The per-file `address_space` (part of the unsafe layer).
//!
//! All opens of a misc device share the device inode's `i_mapping`, so zapping "the file's
//! mappings" through it would hit every sealmem file. Each sealmem file therefore owns an
//! `address_space` of its own and points every `struct file` of it (`f_mapping`) there, as
//! DRM does with its anon inode. The mm then links our VMAs into this mapping's `i_mmap`
//! tree and counts shared-writable ones in `i_mmap_writable`, which gives us:
//! - `unmap_range`: zap exactly this file's pages in every process;
//! - `writably_mapped`: the WRITE seal's EBUSY test, as for memfd;
//! - `invalidate_lock`: faults (shared) against truncate/punch (exclusive), as in filemap.
//!
//! The mapping's `host` is the device inode, pinned with `ihold` for the mapping's life (the
//! VFS reads `f_mapping->host` at open). No page ever points back to this mapping: pages are
//! owned by the page store, not the page cache.

use crate::ffi::{sealmem_invalidate_lock, sealmem_invalidate_lock_shared, sealmem_invalidate_unlock, sealmem_invalidate_unlock_shared, sealmem_mapping_init, sealmem_mapping_writably_mapped};
use kernel::{bindings, fs::File, prelude::*, types::Opaque};


/// A file's own address_space.
///
/// # Invariants
///
/// `raw` is initialised by `sealmem_mapping_init`, and `raw.host` is an inode on which this
/// value holds a reference (`ihold`), dropped in `drop`.
#[pin_data(PinnedDrop)]
pub(crate) struct Mapping {
    #[pin]
    raw: Opaque<bindings::address_space>,
}

// SAFETY: The address_space is only touched through its own locks and atomics.
unsafe impl Send for Mapping {}
// SAFETY: As above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// A new mapping whose host is `file`'s inode.
    pub(crate) fn new(file: &File) -> impl PinInit<Self> + '_ {
        pin_init!(Self {
            raw <- Opaque::ffi_init(move |slot: *mut bindings::address_space| {
                // SAFETY: `file` is a valid open file, so its inode is valid; we take our own
                // reference to it before storing it as host.
                // INVARIANT: initialised, with a held reference on the host.
                unsafe {
                    let inode = (*file.as_ptr()).f_inode;
                    bindings::ihold(inode);
                    sealmem_mapping_init(slot, inode);
                }
            }),
        })
    }

    fn raw(&self) -> *mut bindings::address_space {
        self.raw.get()
    }

    /// Makes `file` use this mapping. Must be called before `file` can be mmapped: at open,
    /// or on a new file before it is installed in an fd table.
    pub(crate) fn attach(&self, file: &File) {
        // SAFETY: `f_mapping` of a file that is being opened or not yet installed is ours to
        // set; this mapping outlives the file, because the file holds the `Arc` of the object
        // that owns this mapping until `release`.
        unsafe { (*file.as_ptr()).f_mapping = self.raw() };
    }

    /// Removes the pages of `[start, start + len)` (`len == 0`: to the end) from every
    /// process's page tables; with `even_cows`, private copy-on-write copies too.
    pub(crate) fn unmap_range(&self, start: u64, len: u64, even_cows: bool) {
        let start = i64::try_from(start).unwrap_or(i64::MAX);
        let len = i64::try_from(len).unwrap_or(0);
        // SAFETY: The mapping is initialised (invariant); unmap_mapping_range takes the locks
        // it needs itself.
        unsafe { bindings::unmap_mapping_range(self.raw(), start, len, i32::from(even_cows)) };
    }

    /// Whether a shared mapping that may write (VM_SHARED | VM_MAYWRITE) exists.
    pub(crate) fn writably_mapped(&self) -> bool {
        // SAFETY: The mapping is initialised; this reads an atomic.
        unsafe { sealmem_mapping_writably_mapped(self.raw()) }
    }

    /// Takes the invalidate lock shared (page faults).
    pub(crate) fn lock_shared(&self) -> SharedGuard<'_> {
        // SAFETY: The mapping is initialised; released by the guard.
        unsafe { sealmem_invalidate_lock_shared(self.raw()) };
        SharedGuard(self)
    }

    /// Takes the invalidate lock exclusive (truncate, punch hole).
    pub(crate) fn lock_exclusive(&self) -> ExclusiveGuard<'_> {
        // SAFETY: The mapping is initialised; released by the guard.
        unsafe { sealmem_invalidate_lock(self.raw()) };
        ExclusiveGuard(self)
    }
}

#[pinned_drop]
impl PinnedDrop for Mapping {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: The host reference was taken in `new` (invariant) and is dropped once. No
        // VMA is left: each holds a file, and each file holds the owner of this mapping.
        unsafe { bindings::iput((*self.raw()).host) };
    }
}

/// Holds the invalidate lock shared.
pub(crate) struct SharedGuard<'a>(&'a Mapping);

impl SharedGuard<'_> {
    /// Whether this guard holds `mapping`'s lock.
    pub(crate) fn locks(&self, mapping: &Mapping) -> bool {
        core::ptr::eq(self.0, mapping)
    }
}

impl Drop for SharedGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: Taken shared in `lock_shared`.
        unsafe { sealmem_invalidate_unlock_shared(self.0.raw()) };
    }
}

/// Holds the invalidate lock exclusive.
pub(crate) struct ExclusiveGuard<'a>(&'a Mapping);

impl Drop for ExclusiveGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: Taken exclusive in `lock_exclusive`.
        unsafe { sealmem_invalidate_unlock(self.0.raw()) };
    }
}
