// SPDX-License-Identifier: GPL-2.0

//! The FFI edge between the VFS and sealmem: misc device registration and the raw
//! `file_operations` table with its trampolines.
//!
//! This is one of the few places with `unsafe` code (the others: `uapi.rs` marker impls and,
//! later, the vm_ops glue). Each trampoline turns raw pointers into safe references, calls the
//! safe method on [`SealFile`], and turns its `Result` into an errno. Nothing above this layer
//! sees a raw pointer.
//!
//! `kernel::miscdevice` is not used because its `file_operations` lack `llseek`, `poll` and
//! `splice_read`, and its registration cannot set the device node's mode; this follows
//! `drivers/android/binder/rust_binder_main.rs` and `rust/kernel/miscdevice.rs` instead.
//!
//! # Private data
//!
//! Every `struct file` whose `f_op` is [`SEALMEM_FOPS`] holds in `private_data` a pointer made
//! by `Arc::<SealFile>::into_foreign` in [`sealmem_open`] and released exactly once, by
//! `Arc::from_foreign` in [`sealmem_release`].

use kernel::ffi::{c_int, c_long, c_uint, c_ulong};

use kernel::{
    bindings,
    error::to_result,
    fs::File,
    module::this_module,
    prelude::*,
    seq_file::SeqFile,
    sync::{Arc, ArcBorrow},
    types::{ForeignOwnable, Opaque},
};

use crate::file::SealFile;

/// A registered misc device.
///
/// # Invariants
///
/// `inner` holds a `struct miscdevice` registered with `misc_register()` for the whole lifetime
/// of this value; it is deregistered exactly once, in `drop`.
#[pin_data(PinnedDrop)]
pub(crate) struct Registration {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
}

// SAFETY: `misc_deregister` may be called from any thread.
unsafe impl Send for Registration {}
// SAFETY: `&Registration` gives no access to the inner device.
unsafe impl Sync for Registration {}

impl Registration {
    /// Registers `/dev/<name>` with the given node mode and sealmem's file operations.
    pub(crate) fn register(name: &'static CStr, mode: u16) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let mut misc: bindings::miscdevice = pin_init::zeroed();
                misc.minor = bindings::MISC_DYNAMIC_MINOR as c_int;
                misc.name = name.as_char_ptr();
                misc.fops = &SEALMEM_FOPS.0;
                misc.mode = mode;
                // SAFETY: `slot` is valid for writes; we are initialising it.
                unsafe { slot.write(misc) };
                // SAFETY: `slot` holds a fully initialised miscdevice whose name and fops are
                // `'static`. It is pinned and deregistered in `drop` before it is freed.
                // INVARIANT: on success the slot holds a registered device.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for Registration {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the device is registered.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}

/// Makes a C vtable usable as a `static`.
#[repr(transparent)]
pub(crate) struct AssertSync<T>(pub(crate) T);
// SAFETY: Only used for C operation tables, which are never written after initialisation.
unsafe impl<T> Sync for AssertSync<T> {}

/// The file operations of every sealmem file.
pub(crate) static SEALMEM_FOPS: AssertSync<bindings::file_operations> =
    AssertSync(bindings::file_operations {
        owner: this_module::<crate::LocalModule>().as_ptr(),
        open: Some(sealmem_open),
        release: Some(sealmem_release),
        unlocked_ioctl: Some(sealmem_ioctl),
        compat_ioctl: bindings::compat_ptr_ioctl,
        show_fdinfo: Some(sealmem_show_fdinfo),
        ..pin_init::zeroed()
    });

/// Borrows the [`SealFile`] behind a sealmem `struct file`.
///
/// # Safety
///
/// `file` must be a sealmem file (its `f_op` is [`SEALMEM_FOPS`]) between `open` and `release`,
/// and the returned borrow must not outlive the current file operation.
unsafe fn seal_file<'a>(file: *mut bindings::file) -> ArcBorrow<'a, SealFile> {
    // SAFETY: By the module-level invariant, `private_data` came from `Arc::into_foreign` and
    // is not released before `release`, which cannot run while the caller's file operation
    // holds the file.
    unsafe { <Arc<SealFile> as ForeignOwnable>::borrow((*file).private_data) }
}

/// # Safety
///
/// Called by the VFS with a `struct file` being opened on the sealmem misc node.
unsafe extern "C" fn sealmem_open(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: The VFS passes a valid file being opened; no fdget_pos region is active.
    let f = unsafe { File::from_raw_file(file) };
    match SealFile::open(f) {
        Ok(obj) => {
            // SAFETY: `open` owns the private data of the file being opened; misc_open() put
            // the miscdevice pointer there, which we replace (see the module docs).
            unsafe { (*file).private_data = obj.into_foreign() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by the VFS once, when the last reference to a sealmem `struct file` goes.
unsafe extern "C" fn sealmem_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `release` owns the private data; it was set by `into_foreign` in `open` and is
    // converted back exactly once, here.
    let obj = unsafe { <Arc<SealFile> as ForeignOwnable>::from_foreign((*file).private_data) };
    // SAFETY: The file is valid for the duration of this call.
    let f = unsafe { File::from_raw_file(file) };
    obj.release(f);
    0
}

/// # Safety
///
/// Called by the VFS for an ioctl on a sealmem file.
unsafe extern "C" fn sealmem_ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: `file` is an open sealmem file for the duration of the ioctl.
    let obj = unsafe { seal_file(file) };
    // SAFETY: As above; no fdget_pos region is active in an ioctl.
    let f = unsafe { File::from_raw_file(file) };
    match obj.ioctl(f, cmd, arg as usize) {
        Ok(v) => v as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// # Safety
///
/// Called by the VFS to print `/proc/<pid>/fdinfo/<fd>` of a sealmem file.
unsafe extern "C" fn sealmem_show_fdinfo(m: *mut bindings::seq_file, file: *mut bindings::file) {
    // SAFETY: `file` is an open sealmem file for the duration of the call.
    let obj = unsafe { seal_file(file) };
    // SAFETY: The seq_file is valid and exclusively ours for the duration of the call.
    let m = unsafe { SeqFile::from_raw(m) };
    obj.show_fdinfo(m);
}
