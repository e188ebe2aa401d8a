// SPDX-License-Identifier: GPL-2.0

//! The per-file `address_space`, and the pseudo filesystem its inodes live on (part of the
//! unsafe layer).
//!
//! All opens of a misc device share the device inode's `i_mapping`, so zapping "the file's
//! mappings" through it would hit every sealmem file. Each sealmem file therefore owns an
//! inode of sealmem's own pseudo filesystem ([`PseudoFs`], a `kern_mount` as KVM's
//! guest_memfd and DRM's `drm_fs_inode_new` do) and points every `struct file` of it
//! (`f_mapping`) at that inode's `address_space`, as DRM does. The mm then links our VMAs into
//! this mapping's `i_mmap` tree and counts shared-writable ones in `i_mmap_writable`, which
//! gives us:
//! - `unmap_range`: zap exactly this file's pages in every process;
//! - `deny_writable`: the WRITE seal's EBUSY test and its guard against new writable maps,
//!   as for memfd;
//! - `invalidate_lock`: faults (shared) against truncate/punch (exclusive), as in filemap.
//!
//! The mapping's `host` is that module-owned inode, never the device node's: a file (a VIEW
//! fd above all) may outlive the filesystem its device node was opened from (a tmpfs /dev of
//! a container, unmounted), so nothing may point there. The inode's `a_ops` are
//! `alloc_anon_inode`'s (no `read_folio`, no `readahead`): readahead and
//! fadvise/madvise(WILLNEED) find nothing to do. No page ever points back to this mapping:
//! pages are owned by the page store, not the page cache.

use core::ptr::NonNull;

use crate::ffi::{
    sealmem_fs_mount, sealmem_fs_unmount, sealmem_inode_mapping, sealmem_inode_new,
    sealmem_invalidate_lock, sealmem_invalidate_lock_shared, sealmem_invalidate_unlock,
    sealmem_invalidate_unlock_shared, sealmem_mapping_allow_writable,
    sealmem_mapping_deny_writable,
};
use kernel::{bindings, error::from_err_ptr, error::to_result, fs::File, prelude::*};

/// sealmem's pseudo filesystem, mounted (`kern_mount`) for the module's lifetime.
///
/// # Invariants
///
/// While this value exists, the filesystem is mounted and [`Mapping::new`] may allocate
/// inodes on it.
pub(crate) struct PseudoFs(());

impl PseudoFs {
    /// Mounts the filesystem.
    pub(crate) fn mount() -> Result<Self> {
        // SAFETY: Called once, at module init, before any sealmem file can exist.
        // INVARIANT: mounted on success.
        to_result(unsafe { sealmem_fs_mount() })?;
        Ok(Self(()))
    }
}

impl Drop for PseudoFs {
    fn drop(&mut self) {
        // SAFETY: Mounted (invariant). Dropped at module exit, after the device is deregistered;
        // no inode is left: each is owned by a `SealFile`, which is owned by files whose
        // `f_op->owner` (this module) cannot be unloaded while they exist.
        unsafe { sealmem_fs_unmount() };
    }
}

/// A file's own address_space: the mapping of an inode of [`PseudoFs`].
///
/// # Invariants
///
/// `inode` is an inode of sealmem's pseudo filesystem on which this value owns one reference
/// (dropped with `iput` in `drop`).
pub(crate) struct Mapping {
    inode: NonNull<bindings::inode>,
}

// SAFETY: The inode and its address_space are only touched through their own locks and
// atomics, and an inode reference may be dropped on any thread.
unsafe impl Send for Mapping {}
// SAFETY: As above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// A new mapping: a new inode of the pseudo filesystem (charged to the caller's memory
    /// cgroup). The module's [`PseudoFs`] is mounted whenever a file can be opened.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: The pseudo filesystem is mounted: the module mounts it before it registers
        // the device and unmounts it after deregistering it.
        let raw = from_err_ptr(unsafe { sealmem_inode_new() })?;
        let inode = NonNull::new(raw).ok_or(ENOMEM)?;
        // INVARIANT: a new inode with one reference, now ours.
        Ok(Self { inode })
    }

    fn raw(&self) -> *mut bindings::address_space {
        // SAFETY: The inode is valid while we hold our reference (invariant).
        unsafe { sealmem_inode_mapping(self.inode.as_ptr()) }
    }

    /// Whether `raw` is this mapping's `address_space` (compares addresses only).
    pub(crate) fn is(&self, raw: *const bindings::address_space) -> bool {
        core::ptr::eq(self.raw(), raw)
    }

    /// Whether any VMA maps this file (`mapping_mapped`).
    pub(crate) fn mapped(&self) -> bool {
        // SAFETY: The mapping is valid (invariant); this only reads whether its i_mmap tree
        // is empty.
        unsafe { crate::ffi::sealmem_mapping_mapped(self.raw()) }
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
        // SAFETY: The mapping is valid (invariant); unmap_mapping_range takes the locks
        // it needs itself.
        unsafe { bindings::unmap_mapping_range(self.raw(), start, len, i32::from(even_cows)) };
    }

    /// Refuses every new shared mapping that may write (the mm's `mapping_map_writable`
    /// fails with EPERM) until [`Mapping::allow_writable`]; `EBUSY` if one exists now.
    pub(crate) fn deny_writable(&self) -> Result {
        // SAFETY: The mapping is valid (invariant); this updates an atomic.
        to_result(unsafe { sealmem_mapping_deny_writable(self.raw()) })
    }

    /// Undoes one successful [`Mapping::deny_writable`].
    pub(crate) fn allow_writable(&self) {
        // SAFETY: The mapping is valid (invariant); this updates an atomic.
        unsafe { sealmem_mapping_allow_writable(self.raw()) }
    }

    /// Takes the invalidate lock shared (page faults).
    pub(crate) fn lock_shared(&self) -> SharedGuard<'_> {
        // SAFETY: The mapping is valid (invariant); released by the guard.
        unsafe { sealmem_invalidate_lock_shared(self.raw()) };
        SharedGuard(self)
    }

    /// Takes the invalidate lock exclusive (truncate, punch hole).
    pub(crate) fn lock_exclusive(&self) -> ExclusiveGuard<'_> {
        // SAFETY: The mapping is valid (invariant); released by the guard.
        unsafe { sealmem_invalidate_lock(self.raw()) };
        ExclusiveGuard(self)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: Our reference (invariant), dropped once. No VMA is left: each holds a file,
        // and each file holds the owner of this mapping.
        unsafe { bindings::iput(self.inode.as_ptr()) };
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

impl ExclusiveGuard<'_> {
    /// Whether this guard holds `mapping`'s lock.
    pub(crate) fn locks(&self, mapping: &Mapping) -> bool {
        core::ptr::eq(self.0, mapping)
    }
}

impl Drop for ExclusiveGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: Taken exclusive in `lock_exclusive`.
        unsafe { sealmem_invalidate_unlock(self.0.raw()) };
    }
}
