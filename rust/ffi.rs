// SPDX-License-Identifier: GPL-2.0

//! Declarations of the C functions sealmem calls that are not in the kernel crate's
//! bindings: the module's own helpers in `sealmem_helpers.c` (wrappers of static inlines)
//! and exported kernel functions whose headers the bindings do not include.

// The kernel's bindgen output represents some kernel structs with zero-sized placeholder
// fields, which this lint flags; the kernel crate's own bindings allow it for the same reason.
#![allow(improper_ctypes)]

use kernel::{
    bindings,
    ffi::{c_char, c_int, c_uint, c_ulong, c_void},
};

unsafe extern "C" {
    // linux/anon_inodes.h (EXPORT_SYMBOL_GPL).
    pub(crate) fn anon_inode_getfile(
        name: *const c_char,
        fops: *const bindings::file_operations,
        private: *mut c_void,
        flags: c_int,
    ) -> *mut bindings::file;

    // sealmem_helpers.c
    pub(crate) fn sealmem_iocb_append(iocb: *const bindings::kiocb) -> bool;
    pub(crate) fn sealmem_file_allow_pread(file: *mut bindings::file);
    pub(crate) fn sealmem_fs_mount() -> c_int;
    pub(crate) fn sealmem_fs_unmount();
    pub(crate) fn sealmem_inode_new() -> *mut bindings::inode;
    pub(crate) fn sealmem_inode_mapping(
        inode: *mut bindings::inode,
    ) -> *mut bindings::address_space;
    pub(crate) fn sealmem_mapping_deny_writable(mapping: *mut bindings::address_space) -> c_int;
    pub(crate) fn sealmem_mapping_allow_writable(mapping: *mut bindings::address_space);
    pub(crate) fn sealmem_current_exiting_or_dumping() -> bool;
    pub(crate) fn sealmem_copy_page_from_iter_atomic(
        page: *mut bindings::page,
        offset: usize,
        bytes: usize,
        i: *mut bindings::iov_iter,
    ) -> usize;
    pub(crate) fn sealmem_zero_page_range(page: *mut bindings::page, offset: usize, len: usize);
    pub(crate) fn sealmem_sleep_killable_ms(ms: c_uint) -> bool;
    pub(crate) fn sealmem_cond_resched();
    pub(crate) fn sealmem_fatal_signal_pending() -> bool;
    pub(crate) fn sealmem_restart_syscall() -> c_int;
    pub(crate) fn sealmem_may_restart_syscall() -> bool;
    pub(crate) fn sealmem_invalidate_lock(mapping: *mut bindings::address_space);
    pub(crate) fn sealmem_invalidate_unlock(mapping: *mut bindings::address_space);
    pub(crate) fn sealmem_invalidate_lock_shared(mapping: *mut bindings::address_space);
    pub(crate) fn sealmem_invalidate_unlock_shared(mapping: *mut bindings::address_space);
    pub(crate) fn sealmem_get_page(page: *mut bindings::page);
    pub(crate) fn sealmem_put_page(page: *mut bindings::page);
    pub(crate) fn sealmem_xa_init(xa: *mut bindings::xarray);
    pub(crate) fn sealmem_totalram_pages() -> c_ulong;
    pub(crate) fn sealmem_init_waitqueue_head(wq: *mut bindings::wait_queue_head);
    pub(crate) fn sealmem_wake_up_all(wq: *mut bindings::wait_queue_head);
    pub(crate) fn sealmem_wake_up_poll(
        wq: *mut bindings::wait_queue_head,
        mask: bindings::__poll_t,
    );
    pub(crate) fn sealmem_release_fault_lock(vmf: *mut bindings::vm_fault);
    pub(crate) fn sealmem_xa_poison_entry() -> *mut c_void;
    pub(crate) fn sealmem_xa_is_value(entry: *const c_void) -> bool;
    pub(crate) fn sealmem_iocb_nonblock(iocb: *const bindings::kiocb) -> bool;
    pub(crate) fn sealmem_xas_init(
        xas: *mut bindings::xa_state,
        xa: *mut bindings::xarray,
        index: c_ulong,
    );
    pub(crate) fn sealmem_xas_next(xas: *mut bindings::xa_state) -> *mut c_void;
    pub(crate) fn sealmem_xas_error(xas: *const bindings::xa_state) -> c_int;
    pub(crate) fn sealmem_splice_nonblock(input: *const bindings::file, flags: c_uint) -> bool;
    pub(crate) fn sealmem_pipe_is_full(pipe: *const bindings::pipe_inode_info) -> bool;
    pub(crate) fn sealmem_pipe_push_page(
        pipe: *mut bindings::pipe_inode_info,
        page: *mut bindings::page,
        offset: usize,
        len: usize,
    ) -> bool;
    pub(crate) fn sealmem_pipe_push_zeros(
        pipe: *mut bindings::pipe_inode_info,
        offset: usize,
        len: usize,
    ) -> bool;
    pub(crate) fn sealmem_huge_supported() -> bool;
    pub(crate) fn sealmem_alloc_huge(zero: bool, light: bool) -> *mut bindings::page;
    pub(crate) fn sealmem_huge_copy_from_user(
        head: *mut bindings::page,
        src: c_ulong,
        len: usize,
    ) -> c_ulong;
    pub(crate) fn sealmem_xa_insert_unit(
        xa: *mut bindings::xarray,
        first: c_ulong,
        head: *mut bindings::page,
        pages: *mut *mut bindings::page,
        n: c_uint,
    ) -> c_int;
    pub(crate) fn sealmem_xa_whole_unit(
        xa: *mut bindings::xarray,
        first: c_ulong,
    ) -> *mut bindings::page;
    pub(crate) fn sealmem_xa_erase(
        xa: *mut bindings::xarray,
        index: c_ulong,
        freed: *mut c_uint,
    ) -> *mut c_void;
    pub(crate) fn sealmem_entry_has_extra_refs(
        xa: *mut bindings::xarray,
        page: *mut bindings::page,
        checked: *mut c_ulong,
    ) -> bool;
    pub(crate) fn sealmem_vmf_pmd_mappable(vmf: *mut bindings::vm_fault) -> bool;
    pub(crate) fn sealmem_vmf_insert_pmd(
        vmf: *mut bindings::vm_fault,
        head: *mut bindings::page,
    ) -> bindings::vm_fault_t;
    pub(crate) fn sealmem_vmf_insert_page(
        vmf: *mut bindings::vm_fault,
        page: *mut bindings::page,
    ) -> bindings::vm_fault_t;
    pub(crate) fn sealmem_vma_set_hugepage(vma: *mut bindings::vm_area_struct);
    pub(crate) fn sealmem_vma_is_mixedmap(vma: *const bindings::vm_area_struct) -> bool;
    pub(crate) fn sealmem_mapping_mapped(mapping: *const bindings::address_space) -> bool;
    pub(crate) fn sealmem_get_unmapped_area(
        file: *mut bindings::file,
        addr: c_ulong,
        len: c_ulong,
        pgoff: c_ulong,
        flags: c_ulong,
        huge: bool,
    ) -> c_ulong;
}
