// SPDX-License-Identifier: GPL-2.0

//! The sealmem file object: one per `open()` of `/dev/sealmem`, shared by every fd that refers
//! to the same file (dup, fork, SCM_RIGHTS and, later, VIEW and handler fds).
//!
//! # Lock order
//!
//! `SealFile::inner` is the only lock so far. Later locks (page store, fill queue) nest inside
//! it and are listed here when they arrive.

use kernel::{
    fs::File,
    prelude::*,
    seq_file::{seq_print, SeqFile},
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
    uaccess::{UserPtr, UserSlice},
};

use crate::{
    stats::{Stats, STATS},
    store::PageStore,
    uapi,
};

/// Feature bits this build of the module implements (reported by `SEALMEM_IOC_API`).
pub(crate) const SUPPORTED_FEATURES: u64 = 0;
/// ioctls this build implements on a sealmem file, as a mask of `1 << nr`.
pub(crate) const SUPPORTED_IOCTLS: u64 = 1 << uapi::SEALMEM_NR_API;

/// Source of file ids (shown in fdinfo, so tests can tell files apart).
static NEXT_ID: Atomic<u64> = Atomic::new(1);

/// State protected by [`SealFile::inner`].
struct Inner {
    /// The API version agreed by the last successful `SEALMEM_IOC_API`, 0 if none.
    api: u64,
    /// File size in bytes.
    size: u64,
    /// `SEALMEM_SEAL_*` bits.
    seals: u32,
}

/// One sealmem file.
///
/// # Invariants
///
/// While a `SealFile` exists it is counted once in `STATS.files`.
#[pin_data(PinnedDrop)]
pub(crate) struct SealFile {
    id: u64,
    #[pin]
    inner: Mutex<Inner>,
    store: PageStore,
}

impl SealFile {
    /// Creates the object for a new `open()` of the device.
    pub(crate) fn open(_file: &File) -> Result<Arc<Self>> {
        let obj = Arc::pin_init(
            try_pin_init!(Self {
                id: NEXT_ID.fetch_add(1u64, Relaxed),
                inner <- kernel::new_mutex!(Inner { api: 0, size: 0, seals: 0 }),
                store: PageStore::new(),
            }),
            GFP_KERNEL,
        )?;
        // INVARIANT: counted once here, uncounted once in `drop`.
        Stats::inc(&STATS.files);
        Stats::inc(&STATS.files_created);
        Ok(obj)
    }

    /// Called when a `struct file` of this sealmem file is released.
    pub(crate) fn release(self: Arc<Self>, _file: &File) {
        drop(self);
    }

    /// Dispatches an ioctl on a sealmem file fd.
    pub(crate) fn ioctl(&self, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            uapi::SEALMEM_IOC_API => self.api(arg).map(|()| 0),
            _ => Err(ENOTTY),
        }
    }

    /// `SEALMEM_IOC_API`: agree on the API version and report features and ioctls.
    fn api(&self, arg: usize) -> Result {
        let (mut reader, mut writer) =
            UserSlice::new(UserPtr::from_addr(arg), size_of::<uapi::sealmem_api>())
                .reader_writer();
        let req: uapi::sealmem_api = reader.read()?;
        if req.api != u64::from(uapi::SEALMEM_API) || req.features & !SUPPORTED_FEATURES != 0 {
            // Like UFFDIO_API: on a refusal the struct is zeroed so userspace cannot mistake
            // stale input for an answer.
            writer.write(&uapi::sealmem_api::default())?;
            return Err(EINVAL);
        }
        let reply = uapi::sealmem_api {
            api: u64::from(uapi::SEALMEM_API),
            features: SUPPORTED_FEATURES,
            ioctls: SUPPORTED_IOCTLS,
        };
        writer.write(&reply)?;
        self.inner.lock().api = reply.api;
        Ok(())
    }

    /// Prints this file's lines of `/proc/<pid>/fdinfo/<fd>`.
    pub(crate) fn show_fdinfo(&self, m: &SeqFile) {
        let (api, size, seals) = {
            let inner = self.inner.lock();
            (inner.api, inner.size, inner.seals)
        };
        seq_print!(m, "sealmem-id:\t{}\n", self.id);
        seq_print!(m, "name:\t\n");
        seq_print!(m, "size:\t{}\n", size);
        seq_print!(m, "seals:\t{:#x}\n", seals);
        seq_print!(m, "pages:\t{}\n", self.store.resident());
        seq_print!(m, "lazy:\toff\n");
        seq_print!(m, "pending:\t0\n");
        seq_print!(m, "api:\t{}\n", api);
    }
}

#[pinned_drop]
impl PinnedDrop for SealFile {
    fn drop(self: Pin<&mut Self>) {
        Stats::dec(&STATS.files);
    }
}
