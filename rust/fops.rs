// SPDX-License-Identifier: GPL-2.0

//! The FFI glue between the kernel and sealmem, all of it: the misc device registration,
//! every `file_operations` and `vm_operations_struct` table with its `extern "C"`
//! trampolines, and the creation of the two kinds of new fds (VIEW, FILL_ENABLE's handler).
//! No other file has an `extern "C"` entry point (`scripts/check-layers.sh` checks it).
//!
//! Each trampoline turns raw pointers into safe references, calls the safe method on
//! [`SealFile`] or [`Handler`], and turns its `Result` into an errno. Nothing above this
//! layer sees a raw pointer.
//!
//! `kernel::miscdevice` is not used because its `file_operations` lack `llseek`, `poll` and
//! `splice_read`, and its registration cannot set the device node's mode; this follows how
//! Rust binder registers its own `file_operations`, and `kernel::miscdevice`'s trampolines,
//! instead.
//!
//! # Private data
//!
//! - Every `struct file` whose `f_op` is [`SEALMEM_FOPS`] (the misc open and VIEW fds) holds
//!   in `private_data` a pointer made by `Arc::<SealFile>::into_foreign` in [`sealmem_open`]
//!   or [`install_view`] and released exactly once, by `Arc::from_foreign` in
//!   [`sealmem_release`].
//! - Every `struct file` whose `f_op` is [`HANDLER_FOPS`] holds an `Arc<Handler>` made by
//!   `into_foreign` in [`new_handler_file`] and taken back once, in [`handler_release`].
//! - Every VMA whose `vm_ops` is [`SEALMEM_VM_OPS`] maps a `struct file` of the first kind
//!   (set in [`sealmem_mmap`]), which it holds for its lifetime.

use crate::ffi::{
    anon_inode_getfile, sealmem_file_allow_pread, sealmem_iocb_append, sealmem_iocb_nonblock,
    sealmem_splice_nonblock,
};
use kernel::ffi::{c_int, c_long, c_uint, c_ulong};

use core::ptr::NonNull;

use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    fs::{
        file::{flags, FileDescriptorReservation},
        File, Kiocb,
    },
    iov::{IovIterDest, IovIterSource},
    mm::virt::{VmaNew, VmaRef},
    module::this_module,
    prelude::*,
    seq_file::SeqFile,
    sync::{aref::ARef, Arc, ArcBorrow},
    types::{ForeignOwnable, Opaque},
};

use crate::{
    file::{FaultStep, SealFile},
    handler::Handler,
    pipe::PipeSink,
    uapi,
    vm::{Fault, FaultOutcome},
};

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
struct AssertSync<T>(T);
// SAFETY: Only used for C operation tables, which are never written after initialisation.
unsafe impl<T> Sync for AssertSync<T> {}

/// The file operations of every sealmem file.
static SEALMEM_FOPS: AssertSync<bindings::file_operations> =
    AssertSync(bindings::file_operations {
        owner: this_module::<crate::LocalModule>().as_ptr(),
        open: Some(sealmem_open),
        release: Some(sealmem_release),
        unlocked_ioctl: Some(sealmem_ioctl),
        compat_ioctl: bindings::compat_ptr_ioctl,
        show_fdinfo: Some(sealmem_show_fdinfo),
        read_iter: Some(sealmem_read_iter),
        write_iter: Some(sealmem_write_iter),
        llseek: Some(sealmem_llseek),
        mmap: Some(sealmem_mmap),
        get_unmapped_area: Some(sealmem_get_unmapped_area),
        splice_read: Some(sealmem_splice_read),
        fsync: Some(bindings::noop_fsync),
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
unsafe extern "C" fn sealmem_open(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
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
    // No `&File` is made here: the file's refcount is already 0, and `File::from_raw_file`
    // requires a positive one.
    obj.release();
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
    let res = match cmd {
        // The two ioctls that create an fd: the fd is made here, the locked parts are safe
        // methods of the file object.
        uapi::SEALMEM_IOC_VIEW => SealFile::view_flags(arg)
            .and_then(|cloexec| install_view(obj.into(), cloexec))
            .map(|fd| fd as isize),
        uapi::SEALMEM_IOC_FILL_ENABLE => fill_enable(obj, f, arg),
        _ => obj.ioctl(f, cmd, arg),
    };
    match res {
        Ok(v) => v as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// `SEALMEM_IOC_FILL_ENABLE`: makes the file lazy and returns a new handler fd.
fn fill_enable(obj: ArcBorrow<'_, SealFile>, file: &File, flags: usize) -> Result<isize> {
    let (handler, fd, attach) = Handler::new(obj, file, flags)?;
    // Make the fd first (it allocates), then attach; a refused attach drops the file, whose
    // release finds it unattached.
    let pending = new_handler_file(handler, fd.cloexec, fd.nonblock)?;
    obj.attach_handler(attach)?;
    Ok(pending.install() as isize)
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

/// # Safety
///
/// Called by the VFS to read from a sealmem file.
unsafe extern "C" fn sealmem_read_iter(
    iocb: *mut bindings::kiocb,
    iter: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: The VFS passes a valid kiocb of a sealmem file, whose private data is an
    // `Arc<SealFile>`.
    let mut kiocb = unsafe { Kiocb::<Arc<SealFile>>::from_raw(iocb) };
    // SAFETY: The VFS passes a valid destination iterator for the duration of the call.
    let dst = unsafe { IovIterDest::from_raw(iter) };
    // SAFETY: The kiocb is valid for the call.
    let nonblock = unsafe { sealmem_iocb_nonblock(iocb) };
    let obj = kiocb.file();
    match obj.read(kiocb.ki_pos_mut(), dst, nonblock) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by the splice code (`vfs_splice_read`: splice, sendfile, copy_file_range's
/// fallback) to move data from a sealmem file into a pipe, which the caller has locked.
unsafe extern "C" fn sealmem_splice_read(
    file: *mut bindings::file,
    ppos: *mut bindings::loff_t,
    pipe: *mut bindings::pipe_inode_info,
    len: usize,
    flags: c_uint,
) -> isize {
    // SAFETY: `file` is an open sealmem file for the duration of the call.
    let obj = unsafe { seal_file(file) };
    // SAFETY: `vfs_splice_read`'s caller holds the pipe locked (or owns it: sendfile's
    // internal pipe) for the duration of the call.
    let Some(mut pipe) = (unsafe { PipeSink::from_raw(pipe) }) else {
        return EINVAL.to_errno() as isize;
    };
    // SAFETY: `file` is valid for the call.
    let nonblock = unsafe { sealmem_splice_nonblock(file, flags) };
    // SAFETY: `ppos` points to the position the splice code owns for the call (a local copy
    // of the user's offset, or the file's position under `fdget_pos`).
    let mut pos = unsafe { *ppos };
    let res = obj.splice_read(&mut pos, &mut pipe, len, nonblock);
    // SAFETY: As above.
    unsafe { *ppos = pos };
    match res {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by the VFS to write to a sealmem file.
unsafe extern "C" fn sealmem_write_iter(
    iocb: *mut bindings::kiocb,
    iter: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: As in `sealmem_read_iter`.
    let mut kiocb = unsafe { Kiocb::<Arc<SealFile>>::from_raw(iocb) };
    // SAFETY: The VFS passes a valid source iterator for the duration of the call.
    let src = unsafe { IovIterSource::from_raw(iter) };
    // SAFETY: The kiocb is valid for the call.
    let (append, nonblock) = unsafe { (sealmem_iocb_append(iocb), sealmem_iocb_nonblock(iocb)) };
    let obj = kiocb.file();
    match obj.write(kiocb.ki_pos_mut(), append, nonblock, src) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by the VFS for lseek on a sealmem file.
unsafe extern "C" fn sealmem_llseek(
    file: *mut bindings::file,
    offset: bindings::loff_t,
    whence: c_int,
) -> bindings::loff_t {
    // SAFETY: `file` is an open sealmem file for the duration of the call.
    let obj = unsafe { seal_file(file) };
    match whence as u32 {
        bindings::SEEK_DATA | bindings::SEEK_HOLE => {
            match obj.seek_data_hole(offset, whence as u32 == bindings::SEEK_DATA) {
                // SAFETY: `file` is valid; vfs_setpos checks the position and stores it.
                Ok(pos) => unsafe { bindings::vfs_setpos(file, pos, i64::MAX) },
                Err(e) => e.to_errno().into(),
            }
        }
        // SAFETY: `file` is valid; the generic helper handles SEEK_SET/CUR/END (and rejects
        // other values) against our size.
        _ => unsafe {
            bindings::generic_file_llseek_size(file, offset, whence, i64::MAX, obj.size() as i64)
        },
    }
}

/// # Safety
///
/// Called by the VFS when a sealmem file is being mmapped.
unsafe extern "C" fn sealmem_mmap(
    file: *mut bindings::file,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: `file` is an open sealmem file for the duration of the call.
    let obj = unsafe { seal_file(file) };
    // SAFETY: The VMA is undergoing initial setup in this mmap hook.
    let vma = unsafe { VmaNew::from_raw(vma) };
    match obj.mmap(vma) {
        Ok(()) => {
            // Nothing below fails: `mmap` counted the VMA last (see there). A huge file's
            // VMA is not VM_MIXEDMAP (see `vm.rs`) and asks for PMDs (VM_HUGEPAGE: the THP
            // sysfs "madvise" mode honours it, "never" and MADV_NOHUGEPAGE still win).
            if obj.is_huge() {
                // SAFETY: The VMA is being set up in the mmap hook (invariant of `VmaNew`),
                // when its flags may be changed.
                unsafe { crate::ffi::sealmem_vma_set_hugepage(vma.as_ptr()) };
            } else {
                vma.set_mixedmap();
            }
            // SAFETY: The VMA is being set up in the mmap hook (invariant of `VmaNew`), so we
            // may set its vm_ops; the table is 'static. INVARIANT: a sealmem VMA maps a
            // sealmem file (see the module docs).
            unsafe { (*vma.as_ptr()).vm_ops = &SEALMEM_VM_OPS.0 };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by the mm (`__get_unmapped_area`) for an mmap of a sealmem file.
unsafe extern "C" fn sealmem_get_unmapped_area(
    file: *mut bindings::file,
    addr: c_ulong,
    len: c_ulong,
    pgoff: c_ulong,
    flags: c_ulong,
) -> c_ulong {
    // SAFETY: `file` is an open sealmem file for the duration of the call.
    let huge = unsafe { seal_file(file) }.is_huge();
    // SAFETY: The arguments are the mm's own for this file's mmap; a huge file's mappings are
    // aligned by `thp_get_unmapped_area`, others placed by `mm_get_unmapped_area`.
    unsafe { crate::ffi::sealmem_get_unmapped_area(file, addr, len, pgoff, flags, huge) }
}

/// A new anon-inode `struct file` with `fops` and the given private data.
///
/// # Safety
///
/// `private` must be what `fops`' release expects (see the module docs); on failure it is
/// returned to the caller untouched.
unsafe fn new_anon_file(
    fops: &'static AssertSync<bindings::file_operations>,
    private: *mut kernel::ffi::c_void,
    flags: u32,
) -> Result<ARef<File>> {
    let name = c"[sealmem]".as_char_ptr();
    // SAFETY: The name is a C string and the fops are 'static; the caller vouches for the
    // private data. anon_inode_getfile takes a module reference for the fops' owner.
    let raw = unsafe { anon_inode_getfile(name, &fops.0, private, flags as c_int) };
    let raw = from_err_ptr(raw)?;
    // SAFETY: A new file with one reference, now owned by the `ARef`. `File` is a transparent
    // wrapper of `struct file`.
    Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(raw.cast::<File>())) })
}

/// An fd reserved with its file ready: [`PendingFd::install`] publishes it; dropping it
/// instead releases both.
struct PendingFd {
    reservation: FileDescriptorReservation,
    file: ARef<File>,
}

impl PendingFd {
    /// Installs the file in the fd table; returns the fd.
    fn install(self) -> u32 {
        let fd = self.reservation.reserved_fd();
        self.reservation.fd_install(self.file);
        fd
    }
}

/// Reserves an unused fd of the current task (`O_CLOEXEC` if `cloexec`).
fn reserve_fd(cloexec: bool) -> Result<FileDescriptorReservation> {
    FileDescriptorReservation::get_unused_fd_flags(if cloexec { flags::O_CLOEXEC } else { 0 })
}

/// Creates a new read-only `struct file` (a VIEW) of `obj` and installs it in a new fd of
/// the current task; returns the fd.
fn install_view(obj: Arc<SealFile>, cloexec: bool) -> Result<u32> {
    let reservation = reserve_fd(cloexec)?;
    let private = obj.clone().into_foreign();
    // SAFETY: The private data is an `Arc<SealFile>`, which `sealmem_release` takes back.
    let file = match unsafe { new_anon_file(&SEALMEM_FOPS, private, flags::O_RDONLY) } {
        Ok(f) => f,
        Err(e) => {
            // SAFETY: No file was created, so the reference given up above is still ours.
            drop(unsafe { <Arc<SealFile> as ForeignOwnable>::from_foreign(private) });
            return Err(e);
        }
    };
    obj.attach(&file);
    // SAFETY: The file is not yet installed, so its mode is still ours to set.
    unsafe { sealmem_file_allow_pread(file.as_ptr()) };
    Ok(PendingFd { reservation, file }.install())
}

/// Creates a handler fd's file for `handler` (not yet installed).
fn new_handler_file(handler: Arc<Handler>, cloexec: bool, nonblock: bool) -> Result<PendingFd> {
    let reservation = reserve_fd(cloexec)?;
    let fflags = flags::O_RDWR | if nonblock { flags::O_NONBLOCK } else { 0 };
    let private = handler.into_foreign();
    // SAFETY: The private data is an `Arc<Handler>`, which `handler_release` takes back.
    match unsafe { new_anon_file(&HANDLER_FOPS, private, fflags) } {
        Ok(file) => Ok(PendingFd { reservation, file }),
        Err(e) => {
            // SAFETY: No file was created, so the reference given up above is still ours.
            drop(unsafe { <Arc<Handler> as ForeignOwnable>::from_foreign(private) });
            Err(e)
        }
    }
}

/// The file operations of handler fds (private data: see the module docs).
static HANDLER_FOPS: AssertSync<bindings::file_operations> =
    AssertSync(bindings::file_operations {
        owner: this_module::<crate::LocalModule>().as_ptr(),
        release: Some(handler_release),
        read_iter: Some(handler_read_iter),
        poll: Some(handler_poll),
        unlocked_ioctl: Some(handler_ioctl),
        compat_ioctl: bindings::compat_ptr_ioctl,
        show_fdinfo: Some(handler_show_fdinfo),
        ..pin_init::zeroed()
    });

/// Borrows the [`Handler`] behind a handler `struct file`.
///
/// # Safety
///
/// `file` must be a handler file between creation and `release`, and the borrow must not
/// outlive the current file operation.
unsafe fn handler_of<'a>(file: *mut bindings::file) -> ArcBorrow<'a, Handler> {
    // SAFETY: By the invariant of `HANDLER_FOPS`, the private data is a live `Arc<Handler>`.
    unsafe { <Arc<Handler> as ForeignOwnable>::borrow((*file).private_data) }
}

/// # Safety
///
/// Called by the VFS once, when the last reference to a handler file goes.
unsafe extern "C" fn handler_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `release` owns the private data, an `Arc<Handler>` given up at creation.
    let handler = unsafe { <Arc<Handler> as ForeignOwnable>::from_foreign((*file).private_data) };
    handler.release();
    0
}

/// # Safety
///
/// Called by the VFS to read requests from a handler fd.
unsafe extern "C" fn handler_read_iter(
    iocb: *mut bindings::kiocb,
    iter: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: The kiocb is valid and refers to a handler file for the call.
    let (handler, nonblock) = unsafe { (handler_of((*iocb).ki_filp), sealmem_iocb_nonblock(iocb)) };
    // SAFETY: The VFS passes a valid destination iterator for the duration of the call.
    let dst = unsafe { IovIterDest::from_raw(iter) };
    match handler.read(dst, nonblock) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by the VFS to poll a handler fd.
unsafe extern "C" fn handler_poll(
    file: *mut bindings::file,
    pt: *mut bindings::poll_table_struct,
) -> bindings::__poll_t {
    // SAFETY: `file` is an open handler file for the duration of the call.
    let handler = unsafe { handler_of(file) };
    // SAFETY: The poll table is valid (or null) for the call; the wait queue lives in the
    // sealmem file, which the handler keeps alive until after the VFS has removed this
    // file's poll entries (eventpoll_release runs before release).
    unsafe { handler.wait_queue().poll_wait(file, pt) };
    handler.poll_mask()
}

/// # Safety
///
/// Called by the VFS for an ioctl on a handler fd.
unsafe extern "C" fn handler_ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: `file` is an open handler file for the duration of the ioctl.
    let handler = unsafe { handler_of(file) };
    match handler.ioctl(cmd, arg) {
        Ok(v) => v as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// # Safety
///
/// Called by the VFS to print the fdinfo of a handler fd.
unsafe extern "C" fn handler_show_fdinfo(m: *mut bindings::seq_file, file: *mut bindings::file) {
    // SAFETY: `file` is an open handler file for the duration of the call.
    let handler = unsafe { handler_of(file) };
    // SAFETY: The seq_file is valid and exclusively ours for the duration of the call.
    let m = unsafe { SeqFile::from_raw(m) };
    handler.show_fdinfo(m);
}

// ---- VMAs ----------------------------------------------------------------------------

/// The vm_ops of every sealmem VMA.
static SEALMEM_VM_OPS: AssertSync<bindings::vm_operations_struct> =
    AssertSync(bindings::vm_operations_struct {
        fault: Some(sealmem_vm_fault),
        huge_fault: Some(sealmem_vm_huge_fault),
        open: Some(sealmem_vm_open),
        close: Some(sealmem_vm_close),
        ..pin_init::zeroed()
    });

/// Borrows the sealmem file of a VMA (the fault path pins it with an `Arc` before it drops
/// the fault lock).
///
/// # Safety
///
/// `vma` must be a valid sealmem VMA (its vm_ops are [`SEALMEM_VM_OPS`]) whose lock is held
/// for `'a`.
unsafe fn vma_file<'a>(vma: *mut bindings::vm_area_struct) -> ArcBorrow<'a, SealFile> {
    // SAFETY: A sealmem VMA's `vm_file` is a sealmem file (module docs) whose private data is
    // an `Arc<SealFile>`, alive while the VMA holds the file.
    unsafe { <Arc<SealFile> as ForeignOwnable>::borrow((*(*vma).vm_file).private_data) }
}

/// Borrows the sealmem file of a fault's VMA for as long as the fault (and its lock) lives:
/// [`Fault::release_lock`] consumes the fault, so the borrow cannot be used after it.
///
/// # Safety
///
/// `fault` must be a fault on a sealmem VMA (its vm_ops are [`SEALMEM_VM_OPS`]).
unsafe fn fault_file<'a>(fault: &'a Fault<'_>) -> ArcBorrow<'a, SealFile> {
    // SAFETY: The fault's VMA is a valid sealmem VMA, locked while `fault` lives (`Fault`'s
    // invariant), which bounds `'a`.
    unsafe { vma_file(fault.vma()) }
}

/// # Safety
///
/// Called by the mm with a new VMA copied from a sealmem VMA (fork, split, mremap); the
/// sealmem file is held by the VMA it was copied from (`dup_mmap` calls `open` before it
/// takes the copy's own file reference).
unsafe extern "C" fn sealmem_vm_open(vma: *mut bindings::vm_area_struct) {
    // SAFETY: A sealmem VMA being set up by the mm, whose lock (or the new mm's) is held.
    let (obj, flags) = unsafe { (vma_file(vma), VmaRef::from_raw(vma).flags()) };
    if flags & kernel::mm::virt::flags::MAYEXEC != 0 {
        // The VMA it was copied from is counted, so the count is positive: not denied.
        obj.exec_map_copied();
    }
}

/// # Safety
///
/// Called by the mm when a sealmem VMA goes away (still holding its file).
unsafe extern "C" fn sealmem_vm_close(vma: *mut bindings::vm_area_struct) {
    // SAFETY: A sealmem VMA being removed by the mm; its file is put only after this.
    let (obj, flags) = unsafe { (vma_file(vma), VmaRef::from_raw(vma).flags()) };
    if flags & kernel::mm::virt::flags::MAYEXEC != 0 {
        // Every sealmem VMA that kept VM_MAYEXEC was counted (mmap hook or open).
        obj.exec_map_closed();
    }
}

/// # Safety
///
/// Called by the mm for a fault on a VMA whose vm_ops are [`SEALMEM_VM_OPS`].
unsafe extern "C" fn sealmem_vm_fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: The mm calls .fault with a valid vmf of a fault in progress, its VMA locked.
    let fault = unsafe { Fault::from_raw(vmf) };
    // SAFETY: The VMA of a `.fault` of SEALMEM_VM_OPS is a sealmem VMA.
    let step = SealFile::fault(unsafe { fault_file(&fault) }, &fault);
    let outcome = match step {
        FaultStep::Done(outcome) => outcome,
        // The borrow of the VMA's file ended with `SealFile::fault`; the wait owns its pins.
        FaultStep::Wait(wait) => {
            fault.release_lock();
            wait.wait()
        }
    };
    vm_fault_of(outcome)
}

/// # Safety
///
/// Called by the mm for a PMD fault (`create_huge_pmd`, `wp_huge_pmd`) on a VMA whose vm_ops
/// are [`SEALMEM_VM_OPS`].
unsafe extern "C" fn sealmem_vm_huge_fault(
    vmf: *mut bindings::vm_fault,
    order: c_uint,
) -> bindings::vm_fault_t {
    if order != PMD_ORDER {
        return bindings::vm_fault_reason_VM_FAULT_FALLBACK;
    }
    // SAFETY: The mm calls .huge_fault with a valid vmf of a fault in progress, its VMA
    // locked.
    let fault = unsafe { Fault::from_raw(vmf) };
    // SAFETY: The VMA of a `.huge_fault` of SEALMEM_VM_OPS is a sealmem VMA.
    vm_fault_of(SealFile::huge_fault(unsafe { fault_file(&fault) }, &fault))
}

/// The order of a PMD's folio (`HPAGE_PMD_ORDER`): `->huge_fault` serves only this one.
const PMD_ORDER: c_uint = crate::page::UNIT_PAGES.trailing_zeros();

/// The mm's code for a fault outcome.
fn vm_fault_of(outcome: FaultOutcome) -> bindings::vm_fault_t {
    match outcome {
        FaultOutcome::Fallback => bindings::vm_fault_reason_VM_FAULT_FALLBACK,
        FaultOutcome::Mapped => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
        FaultOutcome::SigBus => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
        FaultOutcome::Oom => bindings::vm_fault_reason_VM_FAULT_OOM,
        FaultOutcome::Retry => bindings::vm_fault_reason_VM_FAULT_RETRY,
        // NOPAGE too: __do_fault returns early only on ERROR/NOPAGE/RETRY, never touching
        // vmf->page.
        FaultOutcome::Completed => {
            bindings::vm_fault_reason_VM_FAULT_COMPLETED | bindings::vm_fault_reason_VM_FAULT_NOPAGE
        }
    }
}
