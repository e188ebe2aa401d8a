// SPDX-License-Identifier: GPL-2.0

//! Lazy fill (SPEC section 5): fill requests, waiting for holes, and the handler fd.
//!
//! While a file is lazy, an access to a hole raises one request per missing page
//! ([`SealFile::hole_request`]) and waits ([`SealFile::wait_hole`]) until the request is
//! resolved: the page was filled or poisoned, the hole was truncated away, the handler went
//! away, or lazy mode ended. Requests live in two trees under `SealFile::fill`: `queued`
//! (not yet read by the handler) and `delivered` (read, not yet resolved); an index is in
//! at most one of them, which deduplicates requests across all waiters.
//!
//! Ordering that makes waits lossless: a filler first stores the page, then removes the
//! request under the fill lock, then wakes; a waiter adds its request and re-checks the store
//! under the fill lock, and its wait condition is "no request for my index", evaluated
//! after it is queued on the wait queue.
//!
//! # Lock order
//!
//! `SealFile::inner` → `SealFile::fill` (spinlock) → the page store's XArray lock. Nothing
//! sleeps under `fill`; its tree nodes are allocated before taking it.

use kernel::{
    fs::File,
    iov::IovIterDest,
    mm::Mm,
    page::PAGE_SIZE,
    pid_namespace::PidNamespace,
    prelude::*,
    rbtree::{RBTree, RBTreeNode, RBTreeNodeReservation},
    seq_file::{seq_print, SeqFile},
    sync::{
        aref::ARef,
        atomic::{Acquire, Atomic, Relaxed, Release},
        Arc, ArcBorrow,
    },
    task::Task,
    uaccess::{UserPtr, UserSlice},
};

use crate::{
    file::{check_page_range, SealFile},
    stats::{alloc_failed, AllocSite, Stats, STATS},
    store::{NewPage, SlotKind, RUN},
    uapi,
    wait::{Interrupted, WaitMode},
};

const PAGE: u64 = PAGE_SIZE as u64;
const MSG_SIZE: usize = size_of::<uapi::sealmem_msg>();
/// Most messages one read() returns (bounds the stack buffer).
const READ_BATCH: usize = 32;

/// Source of handler ids.
static NEXT_HANDLER: Atomic<u64> = Atomic::new(1);

/// Where a fault waits for a page: when the page is filled it is also mapped there, so the
/// woken fault finds it mapped (as after `UFFDIO_COPY`) instead of faulting it in again.
pub(crate) struct FaultAt {
    mm: ARef<Mm>,
    addr: usize,
}

impl FaultAt {
    pub(crate) fn new(mm: ARef<Mm>, addr: usize) -> Self {
        Self { mm, addr }
    }
}

/// Most requests of one file that no task waits for (raised by O_NONBLOCK reads, faults
/// that may not sleep, or left by interrupted waits). Past it, such an access raises no new
/// request (it gets EAGAIN / SIGBUS / a retry, as it would anyway), and an interrupted wait
/// that would leave one more takes its request away (a later access raises it again).
/// Requests that tasks wait for are bounded by the waiting tasks themselves.
const MAX_ORPHANS: u64 = 4096;

/// One outstanding fill request.
pub(crate) struct Req {
    flags: u32,
    tid: u32,
    /// Tasks waiting for it (0: an orphan, counted in `FillState::orphans`).
    waiters: u32,
    /// Which request this is (`FillState::total` when it was raised): a request resolved and
    /// raised again at the same index is another request.
    seq: u64,
    /// The first fault that raised it, if a fault did. Taken out under the fill lock before
    /// the request is dropped: its `mm` reference is released unlocked.
    at: Option<FaultAt>,
}

/// Lazy-fill state of one file, under `SealFile::fill`.
pub(crate) struct FillState {
    /// The file is lazy: holes wait for the handler.
    lazy: bool,
    /// Id of the attached handler, if any.
    handler: Option<u64>,
    /// The attached handler's pid namespace (thread ids in messages are seen from it).
    handler_ns: Option<ARef<PidNamespace>>,
    /// Requests not yet read by the handler, by page index.
    queued: RBTree<usize, Req>,
    /// Requests read by the handler and not yet resolved.
    delivered: RBTree<usize, Req>,
    /// Requests raised since the file became lazy.
    total: u64,
    /// Requests in `queued`, and in both trees (fdinfo reads these; O(1)).
    nqueued: u64,
    npending: u64,
    /// Requests no task waits for (see [`MAX_ORPHANS`]).
    orphans: u64,
    /// A tree node kept from a resolved request for the next one, so that a steady stream
    /// of faults allocates none (`resolve_range` refills it).
    spare: Option<RBTreeNodeReservation<usize, Req>>,
}

impl FillState {
    pub(crate) fn new() -> Self {
        Self {
            lazy: false,
            handler: None,
            handler_ns: None,
            queued: RBTree::new(),
            delivered: RBTree::new(),
            total: 0,
            nqueued: 0,
            npending: 0,
            orphans: 0,
            spare: None,
        }
    }

    /// Accounts for a request that left the trees (resolved or dropped); `queued` says which
    /// tree it was in.
    fn forget(&mut self, waiters: u32, queued: bool) {
        self.npending -= 1;
        if queued {
            self.nqueued -= 1;
        }
        if waiters == 0 {
            self.orphans -= 1;
        }
    }

    /// The request for `index`, in whichever tree holds it.
    fn req_mut(&mut self, index: usize) -> Option<&mut Req> {
        match self.queued.get_mut(&index) {
            Some(r) => Some(r),
            None => self.delivered.get_mut(&index),
        }
    }

    /// Whether the request `ticket` names is still outstanding.
    fn holds(&self, ticket: Ticket) -> bool {
        match self.queued.get(&ticket.index).or_else(|| self.delivered.get(&ticket.index)) {
            Some(r) => r.seq == ticket.seq,
            None => false,
        }
    }

    /// Detaches the handler and forgets every request; returns the trees to drop unlocked.
    fn detach(&mut self) -> (RBTree<usize, Req>, RBTree<usize, Req>) {
        self.handler = None;
        self.handler_ns = None;
        self.nqueued = 0;
        self.npending = 0;
        self.orphans = 0;
        (core::mem::take(&mut self.queued), core::mem::take(&mut self.delivered))
    }

    /// Number of outstanding requests.
    fn pending(&self) -> u64 {
        self.npending
    }
}

/// What an access to a hole of a lazy file must do.
pub(crate) enum HoleStatus {
    /// The hole is gone (filled, or the file is no longer lazy): look again.
    Resolved,
    /// The page is poisoned: SIGBUS / EIO.
    Poisoned,
    /// No handler is attached: fail fast (SIGBUS / EIO), never pass a hole off as content.
    NoHandler,
    /// A request is outstanding: wait for it ([`SealFile::wait_hole`] with this ticket).
    Wait(Ticket),
}

/// The request a caller of [`SealFile::hole_request`] is counted on as a waiter: a wait ends
/// when that very request is gone (a request resolved and raised again at the same index is
/// another one, on which this waiter is not counted).
#[derive(Clone, Copy)]
pub(crate) struct Ticket {
    index: usize,
    seq: u64,
}

/// Flags of a request raised by a page fault.
pub(crate) const MSG_FAULT: u32 = uapi::SEALMEM_MSG_FAULT;
/// Flags of a request raised by a write.
pub(crate) const MSG_WRITE: u32 = uapi::SEALMEM_MSG_WRITE;

impl SealFile {
    /// Whether handler `id` is the one attached to this file, and the file is lazy.
    pub(crate) fn attached(&self, id: u64) -> bool {
        let f = self.fill.lock();
        f.lazy && f.handler == Some(id)
    }

    /// Whether the file is lazy (a fast, lock-free hint; decisions are taken under `fill`).
    pub(crate) fn is_lazy(&self) -> bool {
        self.lazy.load(Acquire)
    }

    /// For an access to the hole at `index` of a lazy file: raises a request if there is none
    /// and tells the caller what to do (`Resolved`: look again, EOF included). A new request
    /// takes the file's spare tree node, or one allocated (unlocked) only then, never for a
    /// duplicate or retried access. `at` (a fault's address) goes with a new request only;
    /// a later fault on the same page waits and is woken, but its address is not mapped.
    ///
    /// `waits`: the caller will wait for the request ([`Self::wait_hole`]) if this returns
    /// `Wait`; otherwise it gives up at once, and a request it leaves is an orphan (bounded
    /// by [`MAX_ORPHANS`]: past it no request is raised, and `Wait` is returned all the same).
    pub(crate) fn hole_request(&self, index: usize, flags: u32, mut at: Option<FaultAt>, waits: bool) -> Result<HoleStatus> {
        let mut reservation: Option<RBTreeNodeReservation<usize, Req>> = None;
        loop {
            let mut guard = self.fill.lock();
            let f = &mut *guard;
            if !f.lazy {
                return Ok(HoleStatus::Resolved);
            }
            // The caller checked EOF without this lock; a shrink may have come since. It
            // stores the new size before it drops the requests past EOF under this lock, so
            // either it sees our request and drops it, or we see the new size here. Never
            // raise a request past EOF: no fill could ever resolve it.
            if index as u64 >= crate::file::pages_for(self.size()) {
                return Ok(HoleStatus::Resolved);
            }
            match self.store.kind(index) {
                SlotKind::Page => return Ok(HoleStatus::Resolved),
                SlotKind::Poison => return Ok(HoleStatus::Poisoned),
                SlotKind::Hole => {}
            }
            if f.handler.is_none() {
                return Ok(HoleStatus::NoHandler);
            }
            if let Some(req) = f.queued.get_mut(&index).or_else(|| f.delivered.get_mut(&index)) {
                if waits {
                    if req.waiters == 0 {
                        f.orphans -= 1;
                    }
                    req.waiters += 1;
                }
                return Ok(HoleStatus::Wait(Ticket { index, seq: req.seq }));
            }
            let ticket = Ticket { index, seq: f.total };
            if !waits && f.orphans >= MAX_ORPHANS {
                return Ok(HoleStatus::Wait(ticket));
            }
            let Some(node) = reservation.take().or_else(|| f.spare.take()) else {
                drop(guard);
                // Charged to the requester's memory cgroup, like the pages it asks for.
                reservation = Some(RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT).inspect_err(|_| alloc_failed(AllocSite::RequestNode))?);
                continue;
            };
            let tid = match &f.handler_ns {
                Some(ns) => current_tid_in(ns),
                None => 0,
            };
            // Only a request that a fault waits for carries its address (map-on-fill): an
            // orphan must not keep the faulting task's mm alive.
            let at = if waits { at.take() } else { None };
            f.queued.insert(node.into_node(index, Req { flags, tid, waiters: u32::from(waits), seq: ticket.seq, at }));
            f.total += 1;
            f.nqueued += 1;
            f.npending += 1;
            if !waits {
                f.orphans += 1;
            }
            drop(guard);
            self.handler_wq.wake_poll(crate::wait::POLL_IN);
            return Ok(HoleStatus::Wait(ticket));
        }
    }

    /// Waits until the request for `index`, which [`Self::hole_request`] just raised or found,
    /// is resolved (or a signal `mode` admits).
    ///
    /// An interrupted wait leaves the request (the handler may have read it); if no task
    /// waits for it any more it becomes an orphan, or is dropped when the file has
    /// [`MAX_ORPHANS`] already (its node freed unlocked).
    pub(crate) fn wait_hole(&self, ticket: Ticket, mode: WaitMode) -> Result<(), Interrupted> {
        Stats::inc(&STATS.waits);
        let index = ticket.index;
        let res = self.page_wq.wait(mode, || {
            let f = self.fill.lock();
            !f.lazy || f.handler.is_none() || !f.holds(ticket)
        });
        if res.is_err() {
            // Dropped after the lock: a whole request, or the mm reference of an orphan.
            let (node, at) = {
                let mut guard = self.fill.lock();
                let f = &mut *guard;
                let orphaned = match f.req_mut(index) {
                    Some(req) if req.seq == ticket.seq && req.waiters > 0 => {
                        req.waiters -= 1;
                        req.waiters == 0
                    }
                    _ => false,
                };
                if !orphaned {
                    (None, None)
                } else if f.orphans < MAX_ORPHANS {
                    f.orphans += 1;
                    (None, f.req_mut(index).and_then(|r| r.at.take()))
                } else {
                    // Counted as an orphan for a moment, then forgotten with it. Nobody
                    // waits for it (waiters == 0), so nobody needs a wake-up.
                    f.orphans += 1;
                    (Self::remove_req(f, index), None)
                }
            };
            drop(node);
            drop(at);
        }
        res
    }

    /// Removes the request for `index` from whichever tree holds it and accounts for it;
    /// returns its node, to be dropped after the fill lock is released.
    fn remove_req(f: &mut FillState, index: usize) -> Option<RBTreeNode<usize, Req>> {
        let (waiters, queued) = match (f.queued.get(&index), f.delivered.get(&index)) {
            (Some(r), _) => (r.waiters, true),
            (None, Some(r)) => (r.waiters, false),
            (None, None) => return None,
        };
        let node = if queued { f.queued.remove_node(&index) } else { f.delivered.remove_node(&index) };
        f.forget(waiters, queued);
        node
    }

    /// Resolves the requests of pages `[first, end)` after they were filled or poisoned,
    /// and wakes the waiters unless `wake` is false (DONTWAKE). The requests are found by
    /// walking the trees from `first` (cost by request, not by page), a bounded batch per
    /// lock hold; their nodes are freed, and their pages mapped where the faults wait, after
    /// the lock is dropped.
    fn resolve_range(&self, first: usize, end: usize, wake: bool) {
        const BATCH: usize = 16;
        let mut any = false;
        // Per tree (queued, delivered): the lowest index still to look at.
        let mut from = [first; 2];
        loop {
            let mut removed: [Option<RBTreeNode<usize, Req>>; BATCH] = [const { None }; BATCH];
            let mut faults: [Option<(usize, FaultAt)>; BATCH] = [const { None }; BATCH];
            let mut n = 0;
            let mut full = false;
            {
                let mut guard = self.fill.lock();
                let f = &mut *guard;
                let mut gone = [(0u64, 0u64); 2];
                for ((tree, from), gone) in [&mut f.queued, &mut f.delivered].into_iter().zip(from.iter_mut()).zip(gone.iter_mut()) {
                    let mut cursor = tree.cursor_lower_bound_mut(from);
                    *from = end;
                    while let Some(mut c) = cursor {
                        let (&index, req) = c.current_mut();
                        if index >= end {
                            break;
                        }
                        if n == BATCH {
                            *from = index;
                            full = true;
                            break;
                        }
                        if let Some(at) = req.at.take() {
                            faults[n] = Some((index, at));
                        }
                        gone.0 += 1;
                        if req.waiters == 0 {
                            gone.1 += 1;
                        }
                        let (next, node) = c.remove_current();
                        removed[n] = Some(node);
                        n += 1;
                        // `remove_current` moves to the next node, or to the previous one when
                        // there is no next: walking back would resolve requests below `first`
                        // whose pages are still holes (their waiters then raised the page a
                        // second request: the duplicates uffd-stress-style runs saw).
                        cursor = next.filter(|c| *c.current().0 > index);
                    }
                }
                f.nqueued -= gone[0].0;
                f.npending -= gone[0].0 + gone[1].0;
                f.orphans -= gone[0].1 + gone[1].1;
                if f.spare.is_none() {
                    // Keep one node for the next request (nothing is freed here).
                    f.spare = removed.iter_mut().find_map(Option::take).map(RBTreeNode::into_reservation);
                }
            }
            any |= n > 0;
            // Map each page where its fault waits, before the fault is woken.
            for (index, at) in faults.iter().flatten() {
                self.map_filled(*index, &at.mm, at.addr);
            }
            drop(faults);
            drop(removed);
            if !full {
                break;
            }
        }
        if wake && any {
            self.page_wq.wake_all();
        }
    }

    /// Forgets the requests at or past page `first` (the file shrank) and wakes their
    /// waiters, who will find their page past EOF. One node per short lock hold, freed
    /// after the lock is dropped; nothing is allocated.
    pub(crate) fn drop_requests_from(&self, first: usize) {
        let mut any = false;
        loop {
            let node = {
                let mut guard = self.fill.lock();
                let f = &mut *guard;
                let queued = f.queued.cursor_lower_bound(&first).is_some();
                let tree = if queued { &mut f.queued } else { &mut f.delivered };
                let removed = tree.cursor_lower_bound_mut(&first).map(|c| {
                    let waiters = c.current().1.waiters;
                    (waiters, c.remove_current().1)
                });
                removed.map(|(waiters, node)| {
                    f.forget(waiters, queued);
                    node
                })
            };
            let Some(node) = node else { break };
            drop(node);
            any = true;
        }
        if any {
            self.page_wq.wake_all();
        }
    }

    /// `SEALMEM_IOC_FILL_ENABLE`: makes the file lazy and returns a new handler fd.
    pub(crate) fn fill_enable(this: ArcBorrow<'_, Self>, file: &File, flags: usize) -> Result<isize> {
        let known = (uapi::SEALMEM_FD_CLOEXEC | uapi::SEALMEM_FD_NONBLOCK) as usize;
        if !crate::file::is_writable(file) {
            return Err(EPERM);
        }
        if flags & !known != 0 {
            return Err(EINVAL);
        }
        let ns = kernel::current!().get_pid_ns();
        let handler = Arc::new(Handler { file: this.into(), id: NEXT_HANDLER.fetch_add(1u64, Relaxed) }, GFP_KERNEL_ACCOUNT)
            .inspect_err(|_| alloc_failed(AllocSite::Handler))?;
        let id = handler.id;
        // Make the fd first (it allocates), then attach; a refused attach drops the file, whose
        // release finds it unattached.
        let pending = crate::device::new_handler_file(
            handler,
            flags & uapi::SEALMEM_FD_CLOEXEC as usize != 0,
            flags & uapi::SEALMEM_FD_NONBLOCK as usize != 0,
        )?;
        {
            // `inner` orders this against writes and ADD_SEALS; the invalidate lock
            // (exclusive) against faults, which decide "not lazy: allocate a zero page" under
            // it shared. So no hole becomes a zero page once the file is lazy.
            let _inner = this.inner_lock();
            let _g = this.hold_off_fills();
            let mut f = this.fill.lock();
            if f.handler.is_some() {
                return Err(EBUSY);
            }
            if !f.lazy && this.write_sealed() {
                return Err(EPERM);
            }
            f.lazy = true;
            f.handler = Some(id);
            f.handler_ns = ns;
            this.lazy.store(true, Release);
        }
        Ok(pending.install() as isize)
    }

    /// Prints the lazy-fill lines of the file's fdinfo.
    pub(crate) fn show_fill(&self, m: &SeqFile) {
        let (lazy, attached, pending) = {
            let f = self.fill.lock();
            (f.lazy, f.handler.is_some(), f.pending())
        };
        let state = match (lazy, attached) {
            (false, _) => "off",
            (true, true) => "on",
            (true, false) => "on, no handler",
        };
        seq_print!(m, "lazy:\t{}\n", state);
        seq_print!(m, "pending:\t{}\n", pending);
    }
}

/// The thread id of the current task as seen from `ns`, 0 if it is not visible there.
fn current_tid_in(ns: &PidNamespace) -> u32 {
    // SAFETY: `current` is valid; `ns` is a live pid namespace (we hold a reference).
    let tid = unsafe {
        kernel::bindings::__task_pid_nr_ns(Task::current_raw(), kernel::bindings::pid_type_PIDTYPE_PID, ns.as_ptr())
    };
    u32::try_from(tid).unwrap_or(0)
}

/// A handler fd's object.
///
/// # Invariants
///
/// `id` is unique; the file's `fill.handler` holds it while this handler is attached.
pub(crate) struct Handler {
    file: Arc<SealFile>,
    id: u64,
}

/// What a fill ioctl stores into each page.
enum Fill {
    Copy(UserPtr),
    Zero,
    Poison,
}

impl Handler {
    fn attached(&self) -> bool {
        self.file.attached(self.id)
    }

    /// The handler fd is being released: if still attached, the file stays lazy with no
    /// handler, and every waiter fails fast.
    pub(crate) fn release(&self) {
        let trees = {
            let mut f = self.file.fill.lock();
            (f.handler == Some(self.id)).then(|| f.detach())
        };
        if trees.is_some() {
            drop(trees);
            self.file.page_wq.wake_all();
        }
    }

    /// read(): returns whole `sealmem_msg`s; 0 once the handler is no longer needed.
    pub(crate) fn read(&self, dst: &mut IovIterDest<'_>, nonblock: bool) -> Result<usize> {
        let room = (dst.len() / MSG_SIZE).min(READ_BATCH);
        if room == 0 {
            return Err(EINVAL);
        }
        loop {
            let mut msgs = [uapi::sealmem_msg::default(); READ_BATCH];
            let mut seqs = [0u64; READ_BATCH];
            let mut n = 0;
            {
                let mut f = self.file.fill.lock();
                if f.handler != Some(self.id) || !f.lazy || self.file.data_files() == 0 {
                    return Ok(0);
                }
                while n < room {
                    let Some(cursor) = f.queued.cursor_front_mut() else { break };
                    let (&index, req) = cursor.current();
                    let (flags, tid) = (req.flags, req.tid);
                    seqs[n] = req.seq;
                    let (_, node) = cursor.remove_current();
                    msgs[n] = uapi::sealmem_msg { offset: index as u64 * PAGE, flags, tid };
                    f.delivered.insert(node);
                    f.nqueued -= 1;
                    n += 1;
                }
            }
            if n > 0 {
                // SAFETY: `sealmem_msg` is `AsBytes` (see uapi.rs); this views the filled
                // prefix of the array as bytes.
                let bytes = unsafe { core::slice::from_raw_parts(msgs.as_ptr().cast::<u8>(), n * MSG_SIZE) };
                let copied = dst.copy_to_iter(bytes) / MSG_SIZE;
                if copied < n {
                    self.requeue(&msgs[copied..n], &seqs[copied..n]);
                    if copied == 0 {
                        return Err(EFAULT);
                    }
                }
                return Ok(copied * MSG_SIZE);
            }
            if nonblock {
                return Err(EAGAIN);
            }
            let woke = self.file.handler_wq.wait(WaitMode::Interruptible, || {
                let f = self.file.fill.lock();
                f.queued.iter().next().is_some() || f.handler != Some(self.id) || !f.lazy || self.file.data_files() == 0
            });
            if woke.is_err() {
                return Err(ERESTARTSYS);
            }
        }
    }

    /// Puts the requests of messages that could not be copied out back in the queue: those
    /// still delivered, and still the same requests (`seqs`): one resolved meanwhile and
    /// raised again may have been delivered to another reader.
    fn requeue(&self, msgs: &[uapi::sealmem_msg], seqs: &[u64]) {
        let mut f = self.file.fill.lock();
        for (m, &seq) in msgs.iter().zip(seqs) {
            let index = (m.offset / PAGE) as usize;
            if f.delivered.get(&index).is_none_or(|r| r.seq != seq) {
                continue;
            }
            if let Some(node) = f.delivered.remove_node(&index) {
                f.queued.insert(node);
                f.nqueued += 1;
            }
        }
    }

    /// poll(): EPOLLIN while requests are queued, EPOLLHUP once the handler is not needed.
    pub(crate) fn poll_mask(&self) -> u32 {
        let f = self.file.fill.lock();
        let mut mask = 0;
        if f.queued.iter().next().is_some() {
            mask |= crate::wait::POLL_IN;
        }
        if f.handler != Some(self.id) || !f.lazy || self.file.data_files() == 0 {
            mask |= crate::wait::POLL_HUP;
        }
        mask
    }

    /// The file's wait queue for handler readers and pollers.
    pub(crate) fn wait_queue(&self) -> &crate::wait::WaitQueue {
        &self.file.handler_wq
    }

    /// Dispatches an ioctl on the handler fd.
    pub(crate) fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        let user = UserPtr::from_addr(arg);
        match cmd {
            uapi::SEALMEM_IOC_COPY => {
                let (mut r, mut w) = UserSlice::new(user, size_of::<uapi::sealmem_copy>()).reader_writer();
                let mut c: uapi::sealmem_copy = r.read()?;
                let src = usize::try_from(c.src).map_err(|_| EINVAL)?;
                let (done, res) = self.fill(c.offset, c.len, c.flags, Fill::Copy(UserPtr::from_addr(src)), Some(c.src));
                c.copy = report(done, &res);
                w.write(&c)?;
                res.map(|()| 0)
            }
            uapi::SEALMEM_IOC_ZEROPAGE | uapi::SEALMEM_IOC_POISON => {
                let (mut r, mut w) = UserSlice::new(user, size_of::<uapi::sealmem_fill>()).reader_writer();
                let mut z: uapi::sealmem_fill = r.read()?;
                let what = if cmd == uapi::SEALMEM_IOC_ZEROPAGE { Fill::Zero } else { Fill::Poison };
                let (done, res) = self.fill(z.offset, z.len, z.flags, what, None);
                z.done = report(done, &res);
                w.write(&z)?;
                res.map(|()| 0)
            }
            uapi::SEALMEM_IOC_WAKE => {
                let r: uapi::sealmem_range = UserSlice::new(user, size_of::<uapi::sealmem_range>()).reader().read()?;
                check_page_range(r.offset, r.len)?;
                if !self.attached() {
                    return Err(EINVAL);
                }
                self.file.page_wq.wake_all();
                Ok(0)
            }
            uapi::SEALMEM_IOC_FILL_END => self.fill_end().map(|()| 0),
            _ => Err(ENOTTY),
        }
    }

    /// COPY / ZEROPAGE / POISON over `[offset, offset + len)`; returns the bytes handled and
    /// the outcome. The requests of the pages handled are resolved and their waiters woken
    /// (unless DONTWAKE) once, at the end, as `UFFDIO_COPY` does.
    fn fill(&self, offset: u64, len: u64, flags: u64, what: Fill, src: Option<u64>) -> (u64, Result) {
        let (done, res) = self.fill_pages(offset, len, flags, what, src);
        if done > 0 {
            let wake = flags & u64::from(uapi::SEALMEM_FILL_DONTWAKE) == 0;
            self.file.resolve_range((offset / PAGE) as usize, ((offset + done) / PAGE) as usize, wake);
        }
        (done, res)
    }

    fn fill_pages(&self, offset: u64, len: u64, flags: u64, what: Fill, src: Option<u64>) -> (u64, Result) {
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
            let eof_pages = crate::file::pages_for(file.size());
            if index as u64 >= eof_pages {
                return (done, Err(EINVAL));
            }
            // Cheap check first, so a present page costs no allocation or copy.
            if file.store.kind(index) != SlotKind::Hole {
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
            // A run of holes from `index`, within the range and EOF: its pages are allocated
            // and filled unlocked, then stored in one walk. A failure ends the run; the pages
            // before it are stored first.
            let want = ((len - done) / PAGE).min(eof_pages - index as u64).min(RUN as u64) as usize;
            let mut pages = [const { NewPage::EMPTY }; RUN];
            let mut n = 0;
            let mut stop = None;
            while n < want {
                if n > 0 && file.store.kind(index + n) != SlotKind::Hole {
                    break;
                }
                // COPY overwrites the whole page before anyone can see it: no zeroing.
                let page = match what {
                    Fill::Copy(_) => file.store.new_page_for_overwrite().inspect_err(crate::stats::enomem_at(AllocSite::CopyPage)),
                    _ => file.store.new_page().inspect_err(crate::stats::enomem_at(AllocSite::ZeroPage)),
                };
                let page = match page {
                    Ok(p) => p,
                    Err(e) => {
                        stop = Some(e);
                        break;
                    }
                };
                if let (Fill::Copy(base), Some(p)) = (&what, page.page()) {
                    let from = base.wrapping_byte_add(done as usize + n * PAGE_SIZE);
                    if p.copy_from_user(&mut UserSlice::new(from, PAGE_SIZE).reader()).is_err() {
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

    /// FILL_END: the file leaves lazy mode; holes become zero holes; everyone continues.
    fn fill_end(&self) -> Result {
        let trees = {
            // Exclusive: no fill is between its store-time check that its handler is attached
            // and its insert (`store_filled` holds this lock shared). Once this returns, holes
            // read as zeros and no racing COPY of this handler can change that.
            let _g = self.file.hold_off_fills();
            let mut f = self.file.fill.lock();
            if f.handler != Some(self.id) || !f.lazy {
                return Err(EINVAL);
            }
            f.lazy = false;
            self.file.lazy.store(false, Release);
            f.detach()
        };
        drop(trees);
        self.file.page_wq.wake_all();
        self.file.handler_wq.wake_poll(crate::wait::POLL_HUP);
        Ok(())
    }

    /// Prints the handler fd's fdinfo.
    pub(crate) fn show_fdinfo(&self, m: &SeqFile) {
        let (attached, queued, pending, total) = {
            let f = self.file.fill.lock();
            (f.handler == Some(self.id) && f.lazy, f.nqueued, f.pending(), f.total)
        };
        seq_print!(m, "sealmem-handler-of:\t{}\n", self.file.id());
        seq_print!(m, "attached:\t{}\n", if attached { "yes" } else { "no" });
        seq_print!(m, "queued:\t{}\n", queued);
        seq_print!(m, "pending:\t{}\n", if attached { pending } else { 0 });
        seq_print!(m, "total:\t{}\n", total);
    }
}

/// The `copy`/`done` field of a fill ioctl: bytes handled, or a negated errno if none.
fn report(done: u64, res: &Result) -> i64 {
    match res {
        Err(e) if done == 0 => i64::from(e.to_errno()),
        _ => done as i64,
    }
}
