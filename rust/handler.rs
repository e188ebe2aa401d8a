// SPDX-License-Identifier: GPL-2.0

//! The handler fd (docs/api.md, "Lazy fill"): FILL_ENABLE makes one; its read() returns the
//! fill requests of the file's [`LazyQueue`](crate::lazy::LazyQueue), poll() waits for them,
//! and its ioctls fill holes (COPY, ZEROPAGE, POISON), wake waiters (WAKE) and end lazy mode
//! (FILL_END). Everything goes through the file's public API; `fops.rs` holds the
//! `file_operations`.

use kernel::{
    fs::File,
    ioctl::_IOC_SIZE,
    iov::IovIterDest,
    page::PAGE_SIZE,
    prelude::*,
    seq_file::{seq_print, SeqFile},
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, ArcBorrow,
    },
    transmute::AsBytes,
    uaccess::{UserPtr, UserSlice},
};

use crate::{
    file::{check_page_range, is_writable, pages_for, partial, SealFile},
    lazy::Attach,
    page::UNIT_PAGES,
    stats::{alloc_failed, enomem_at, AllocSite},
    store::{NewPage, SlotKind, STORE_RUN},
    uapi,
    wait::WaitQueue,
};

const PAGE: u64 = PAGE_SIZE as u64;
const MSG_SIZE: usize = size_of::<uapi::sealmem_msg>();
/// Most messages one read() returns (bounds the stack buffer).
const MSGS_PER_READ: usize = 32;

/// Source of handler ids.
static NEXT_HANDLER: Atomic<u64> = Atomic::new(1);

/// A handler fd's object.
///
/// # Invariants
///
/// `id` is unique; the file's [`LazyQueue`](crate::lazy::LazyQueue) holds it as its handler
/// while this handler is attached.
pub(crate) struct Handler {
    file: Arc<SealFile>,
    id: u64,
}

/// The flags of a new handler fd.
pub(crate) struct FdFlags {
    pub(crate) cloexec: bool,
    pub(crate) nonblock: bool,
}

/// What a fill ioctl stores into each page.
enum Fill {
    Copy(UserPtr),
    Zero,
    Poison,
}

impl Handler {
    /// FILL_ENABLE's first part: a new handler of `file` (not attached yet: see
    /// [`SealFile::attach_handler`]), the flags of its fd (`flags`: `SEALMEM_FD_*`), and what
    /// attaches it. `EPERM` for a read-only fd, `EINVAL` for unknown flags.
    pub(crate) fn new(
        file: ArcBorrow<'_, SealFile>,
        fd: &File,
        flags: usize,
    ) -> Result<(Arc<Self>, FdFlags, Attach)> {
        let known = (uapi::SEALMEM_FD_CLOEXEC | uapi::SEALMEM_FD_NONBLOCK) as usize;
        if !is_writable(fd) {
            return Err(EPERM);
        }
        if flags & !known != 0 {
            return Err(EINVAL);
        }
        let ns = kernel::current!().get_pid_ns();
        let handler = Arc::new(
            Handler {
                file: file.into(),
                id: NEXT_HANDLER.fetch_add(1u64, Relaxed),
            },
            GFP_KERNEL_ACCOUNT,
        )
        .inspect_err(|_| alloc_failed(AllocSite::Handler))?;
        let attach = Attach::new(handler.id, ns);
        let fd_flags = FdFlags {
            cloexec: flags & uapi::SEALMEM_FD_CLOEXEC as usize != 0,
            nonblock: flags & uapi::SEALMEM_FD_NONBLOCK as usize != 0,
        };
        Ok((handler, fd_flags, attach))
    }

    fn attached(&self) -> bool {
        self.file.lazy_queue().attached(self.id)
    }

    /// Whether the file's data is still reachable (something can still fault).
    fn data_open(&self) -> bool {
        self.file.data_files() != 0
    }

    /// The handler fd is being released: if still attached, the file stays lazy with no
    /// handler, and every waiter fails fast.
    pub(crate) fn release(&self) {
        self.file.lazy_queue().detach(self.id);
    }

    /// read(): returns whole `sealmem_msg`s; 0 once the handler is no longer needed.
    pub(crate) fn read(&self, dst: &mut IovIterDest<'_>, nonblock: bool) -> Result<usize> {
        let room = (dst.len() / MSG_SIZE).min(MSGS_PER_READ);
        if room == 0 {
            return Err(EINVAL);
        }
        let queue = self.file.lazy_queue();
        loop {
            let mut msgs = [uapi::sealmem_msg::default(); MSGS_PER_READ];
            let mut seqs = [0u64; MSGS_PER_READ];
            let Some(n) = queue.deliver(
                self.id,
                || self.data_open(),
                &mut msgs[..room],
                &mut seqs[..room],
            ) else {
                return Ok(0);
            };
            if n > 0 {
                let copied = dst.copy_to_iter(msgs[..n].as_bytes()) / MSG_SIZE;
                let fault = (copied < n).then_some(EFAULT);
                if fault.is_some() {
                    queue.requeue(&msgs[copied..n], &seqs[copied..n]);
                }
                return partial(copied, fault).map(|c| c * MSG_SIZE);
            }
            if nonblock {
                return Err(EAGAIN);
            }
            if queue
                .wait_for_requests(self.id, || self.data_open())
                .is_err()
            {
                return Err(ERESTARTSYS);
            }
        }
    }

    /// poll(): EPOLLIN while requests are queued, EPOLLHUP once the handler is not needed.
    pub(crate) fn poll_mask(&self) -> u32 {
        self.file
            .lazy_queue()
            .poll_mask(self.id, || self.data_open())
    }

    /// The file's wait queue for handler readers and pollers.
    pub(crate) fn wait_queue(&self) -> &WaitQueue {
        self.file.lazy_queue().handler_wq()
    }

    /// Dispatches an ioctl on the handler fd.
    pub(crate) fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        // The argument's size is the one the command number encodes (the uapi header's).
        let user = UserSlice::new(UserPtr::from_addr(arg), _IOC_SIZE(cmd));
        match cmd {
            uapi::SEALMEM_IOC_COPY => {
                let (mut r, mut w) = user.reader_writer();
                let mut c: uapi::sealmem_copy = r.read()?;
                let src = usize::try_from(c.src).map_err(|_| EINVAL)?;
                let (done, res) = self.fill(
                    c.offset,
                    c.len,
                    c.flags,
                    Fill::Copy(UserPtr::from_addr(src)),
                    Some(c.src),
                );
                c.copy = report(done, &res);
                w.write(&c)?;
                res.map(|()| 0)
            }
            uapi::SEALMEM_IOC_ZEROPAGE | uapi::SEALMEM_IOC_POISON => {
                let (mut r, mut w) = user.reader_writer();
                let mut z: uapi::sealmem_fill = r.read()?;
                let what = if cmd == uapi::SEALMEM_IOC_ZEROPAGE {
                    Fill::Zero
                } else {
                    Fill::Poison
                };
                let (done, res) = self.fill(z.offset, z.len, z.flags, what, None);
                z.done = report(done, &res);
                w.write(&z)?;
                res.map(|()| 0)
            }
            uapi::SEALMEM_IOC_WAKE => {
                let r: uapi::sealmem_range = user.reader().read()?;
                check_page_range(r.offset, r.len)?;
                if !self.attached() {
                    return Err(EINVAL);
                }
                self.file.lazy_queue().wake_waiters();
                Ok(0)
            }
            uapi::SEALMEM_IOC_FILL_END => self.fill_end().map(|()| 0),
            _ => Err(ENOTTY),
        }
    }

    /// COPY / ZEROPAGE / POISON over `[offset, offset + len)`; returns the bytes handled and
    /// the outcome. The requests of the pages handled are resolved and their waiters woken
    /// (unless DONTWAKE) once, at the end, as `UFFDIO_COPY` does.
    fn fill(
        &self,
        offset: u64,
        len: u64,
        flags: u64,
        what: Fill,
        src: Option<u64>,
    ) -> (u64, Result) {
        let (done, res) = self.fill_pages(offset, len, flags, what, src);
        if done > 0 {
            let wake = flags & u64::from(uapi::SEALMEM_FILL_DONTWAKE) == 0;
            self.file.resolve_filled(
                (offset / PAGE) as usize,
                ((offset + done) / PAGE) as usize,
                wake,
            );
        }
        (done, res)
    }

    fn fill_pages(
        &self,
        offset: u64,
        len: u64,
        flags: u64,
        what: Fill,
        src: Option<u64>,
    ) -> (u64, Result) {
        let known = u64::from(uapi::SEALMEM_FILL_DONTWAKE | uapi::SEALMEM_FILL_SKIP_EXISTING);
        if flags & !known != 0 {
            return (0, Err(EINVAL));
        }
        if let Err(e) = check_page_range(offset, len) {
            return (0, Err(e));
        }
        // The source may be any address (copy_from_user copes); only its end must not wrap.
        if src.is_some_and(|s| s.checked_add(len).is_none()) {
            return (0, Err(EINVAL));
        }
        if !self.attached() {
            return (0, Err(EINVAL));
        }
        let skip = flags & u64::from(uapi::SEALMEM_FILL_SKIP_EXISTING) != 0;
        let file = &self.file;
        let mut done = 0u64;
        while done < len {
            let at = offset + done;
            let index = (at / PAGE) as usize;
            let eof_pages = pages_for(file.size());
            if index as u64 >= eof_pages {
                return (done, Err(EINVAL));
            }
            // Cheap check first, so a present page costs no allocation or copy.
            if file.kind(index) != SlotKind::Hole {
                if skip {
                    done += PAGE;
                    continue;
                }
                return (done, Err(EEXIST));
            }
            if let Fill::Poison = what {
                match file.store_poison(index, self.id) {
                    Ok(()) => {}
                    Err(e) if e == EEXIST && skip => {}
                    Err(e) => return (done, Err(e)),
                }
                done += PAGE;
                continue;
            }
            // A whole unit of a huge file that is entirely a hole: allocated (one 2 MiB folio,
            // or small pages), filled unlocked, then stored atomically. A racing fill that
            // stored part of it first leaves it to the page-by-page path below.
            if let Some(n) = self.unit_to_fill(index, (len - done) / PAGE, eof_pages, &what) {
                match self.fill_unit(index, n, &what, done) {
                    Ok(()) => {
                        done += n as u64 * PAGE;
                        continue;
                    }
                    Err(e) if e == EEXIST => {}
                    Err(e) => return (done, Err(e)),
                }
            }
            // A run of holes from `index`, within the range and EOF: its pages are allocated
            // and filled unlocked, then stored in one walk. A failure ends the run; the pages
            // before it are stored first.
            let mut want = ((len - done) / PAGE)
                .min(eof_pages - index as u64)
                .min(STORE_RUN as u64) as usize;
            if self.file.is_huge() {
                // A run stops at the end of its unit: the next unit may be filled whole.
                want = want.min(UNIT_PAGES - index % UNIT_PAGES);
            }
            let mut pages = [const { NewPage::EMPTY }; STORE_RUN];
            let mut n = 0;
            let mut stop = None;
            while n < want {
                if n > 0 && file.kind(index + n) != SlotKind::Hole {
                    break;
                }
                // COPY overwrites the whole page before anyone can see it: no zeroing.
                let page = match what {
                    Fill::Copy(_) => file
                        .new_page_for_overwrite()
                        .inspect_err(enomem_at(AllocSite::CopyPage)),
                    _ => file.new_page().inspect_err(enomem_at(AllocSite::ZeroPage)),
                };
                let mut page = match page {
                    Ok(p) => p,
                    Err(e) => {
                        stop = Some(e);
                        break;
                    }
                };
                if let Fill::Copy(base) = &what {
                    let from = base.wrapping_byte_add(done as usize + n * PAGE_SIZE);
                    if page
                        .copy_from_user(&mut UserSlice::new(from, PAGE_SIZE).reader())
                        .is_err()
                    {
                        stop = Some(EFAULT);
                        break;
                    }
                }
                pages[n] = page;
                n += 1;
            }
            let (stored, err) = file.store_filled(index, &mut pages[..n], self.id);
            done += stored as u64 * PAGE;
            // Pages not stored (after a failure) are freed here.
            drop(pages);
            match (err, stop) {
                (Some(e), _) if e == EEXIST && skip => done += PAGE,
                (Some(e), _) | (None, Some(e)) => return (done, Err(e)),
                (None, None) => {}
            }
        }
        (done, Ok(()))
    }

    /// How many pages from `index` a fill of `left` more pages installs as one unit: in a
    /// huge file, a COPY or ZEROPAGE that covers the whole unit starting at `index` (cut at
    /// EOF for the last one) while all of it is a hole.
    fn unit_to_fill(&self, index: usize, left: u64, eof_pages: u64, what: &Fill) -> Option<usize> {
        if matches!(what, Fill::Poison) || !self.file.is_huge() || index % UNIT_PAGES != 0 {
            return None;
        }
        let n = eof_pages.checked_sub(index as u64)?.min(UNIT_PAGES as u64) as usize;
        (n > 0 && left >= n as u64 && self.file.range_is_hole(index, n)).then_some(n)
    }

    /// Fills the unit of `n` pages at `index` (COPY from `done` bytes into the source, or
    /// ZEROPAGE) and stores it atomically ([`SealFile::store_unit`]).
    fn fill_unit(&self, index: usize, n: usize, what: &Fill, done: u64) -> Result {
        let (zero, site) = match what {
            Fill::Copy(_) => (false, AllocSite::CopyPage),
            _ => (true, AllocSite::ZeroPage),
        };
        let mut unit = self.file.new_unit(n, zero).inspect_err(enomem_at(site))?;
        if let Fill::Copy(base) = what {
            unit.copy_from_user(base.wrapping_byte_add(done as usize))?;
        }
        self.file.store_unit(index, unit, self.id)
    }

    /// FILL_END: the file leaves lazy mode; holes become zero holes; everyone continues.
    fn fill_end(&self) -> Result {
        self.file.end_lazy(self.id)
    }

    /// Prints the handler fd's fdinfo.
    pub(crate) fn show_fdinfo(&self, m: &SeqFile) {
        let (attached, queued, pending, total) = self.file.lazy_queue().handler_info(self.id);
        seq_print!(m, "sealmem-handler-of:\t{}\n", self.file.id());
        seq_print!(m, "attached:\t{}\n", if attached { "yes" } else { "no" });
        seq_print!(m, "queued:\t{}\n", queued);
        seq_print!(m, "pending:\t{}\n", if attached { pending } else { 0 });
        seq_print!(m, "total:\t{}\n", total);
    }
}

/// The `copy`/`done` field of a fill ioctl: bytes handled, or a negated errno if none.
fn report(done: u64, res: &Result) -> i64 {
    match partial(done, res.err()) {
        Ok(done) => done as i64,
        Err(e) => i64::from(e.to_errno()),
    }
}
