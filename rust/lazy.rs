// SPDX-License-Identifier: GPL-2.0

//! The lazy-fill queue of one file (docs/api.md, "Lazy fill"): fill requests, waiting for
//! holes, their resolution, and attaching and detaching the handler. It knows nothing of the
//! file object: the file tells it, under the queue's lock, whether an index is still a hole
//! (a callback) and maps filled pages where faults wait (another).
//!
//! While a file is lazy, an access to a hole raises one request per missing page
//! ([`LazyQueue::hole_request`]) and waits ([`LazyQueue::wait_hole`]) until the request is
//! resolved: the page was filled or poisoned, the hole was truncated away, the handler went
//! away, or lazy mode ended. Requests live in two trees under `LazyQueue::state`: `queued`
//! (not yet read by the handler) and `delivered` (read, not yet resolved); an index is in
//! at most one of them, which deduplicates requests across all waiters.
//!
//! Ordering that makes waits lossless: a filler first stores the page, then removes the
//! request under the state lock, then wakes; a waiter adds its request and re-checks the
//! store under the state lock, and its wait condition is "no request for my index",
//! evaluated after it is queued on the wait queue.
//!
//! Locking: `LazyQueue::state` is a spinlock; where it sits in the module's lock order is in
//! `file.rs` ("Lock order"). Nothing sleeps under it; its tree nodes are allocated before
//! taking it, and freed after dropping it.

use kernel::{
    page::PAGE_SIZE,
    pid_namespace::PidNamespace,
    prelude::*,
    rbtree::{RBTree, RBTreeNode, RBTreeNodeReservation},
    seq_file::{seq_print, SeqFile},
    sync::{
        aref::ARef,
        atomic::{Acquire, Atomic, Release},
        SpinLock,
    },
};

use crate::{
    stats::{alloc_failed, AllocSite, Stats, STATS},
    uapi,
    vm::FaultAt,
    wait::{Interrupted, WaitMode, WaitQueue},
};

const PAGE: u64 = PAGE_SIZE as u64;

/// Most requests [`LazyQueue::resolve_range`] takes out of the trees per lock hold.
const RESOLVE_BATCH: usize = 16;

/// Flags of a request raised by a page fault.
pub(crate) const MSG_FAULT: u32 = uapi::SEALMEM_MSG_FAULT;
/// Flags of a request raised by a write.
pub(crate) const MSG_WRITE: u32 = uapi::SEALMEM_MSG_WRITE;
/// Flags of a request for a huge file's whole unit (keyed by the unit's first page).
pub(crate) const MSG_HUGE: u32 = uapi::SEALMEM_MSG_HUGE;

/// What an index that was a hole holds now, as the file sees it under the queue's lock
/// (the `hole` callback of [`LazyQueue::hole_request`]).
pub(crate) enum Hole {
    /// Still a hole, within EOF.
    Open,
    /// Filled, or past EOF now: look again.
    Gone,
    /// Poisoned.
    Poisoned,
}

/// What [`LazyQueue::attach`] attaches: a new handler's id, and the pid namespace its
/// messages' thread ids are seen from.
pub(crate) struct Attach {
    id: u64,
    ns: Option<ARef<PidNamespace>>,
}

impl Attach {
    pub(crate) fn new(id: u64, ns: Option<ARef<PidNamespace>>) -> Self {
        Self { id, ns }
    }
}

/// The lazy-fill queue of one file.
///
/// # Invariants
///
/// - `lazy` mirrors `state.lazy` (written under `state`, after it); it is a lock-free hint,
///   decisions are taken under `state`.
/// - An index has a request in at most one of `state.queued` and `state.delivered`, and only
///   while the file is lazy with a handler attached (`detach` empties both).
/// - `state.nqueued`, `state.npending` and `state.orphans` count the requests in `queued`, in
///   both trees, and those no task waits for (`waiters == 0`).
#[pin_data]
pub(crate) struct LazyQueue {
    #[pin]
    state: SpinLock<FillState>,
    lazy: Atomic<bool>,
    /// Tasks waiting for a lazy page.
    #[pin]
    page_wq: WaitQueue,
    /// Handler-fd readers and pollers.
    #[pin]
    handler_wq: WaitQueue,
}

/// Most requests of one file that no task waits for (raised by O_NONBLOCK reads, faults
/// that may not sleep, or left by interrupted waits). Past it, such an access raises no new
/// request (it gets EAGAIN / SIGBUS / a retry, as it would anyway), and an interrupted wait
/// that would leave one more takes its request away (a later access raises it again).
/// Requests that tasks wait for are bounded by the waiting tasks themselves.
const MAX_ORPHANS: u64 = 4096;

/// One outstanding fill request.
struct Req {
    flags: u32,
    tid: u32,
    /// Tasks waiting for it (0: an orphan, counted in `FillState::orphans`).
    waiters: u32,
    /// Which request this is (`FillState::total` when it was raised): a request resolved and
    /// raised again at the same index is another request.
    seq: u64,
    /// The first fault that raised it, if a fault did. Taken out under the state lock before
    /// the request is dropped: its `mm` reference is released unlocked.
    at: Option<FaultAt>,
}

/// Lazy-fill state of one file, under `LazyQueue::state`.
struct FillState {
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
    fn new() -> Self {
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
        match self
            .queued
            .get(&ticket.index)
            .or_else(|| self.delivered.get(&ticket.index))
        {
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
        (
            core::mem::take(&mut self.queued),
            core::mem::take(&mut self.delivered),
        )
    }

    /// Whether handler `id` is attached and the file is lazy.
    fn serves(&self, id: u64) -> bool {
        self.lazy && self.handler == Some(id)
    }

    /// Whether handler `id` is still needed: it is attached, the file is lazy, and
    /// `data_open()` (the file's data is reachable: something can still fault).
    fn needed(&self, id: u64, data_open: impl Fn() -> bool) -> bool {
        self.serves(id) && data_open()
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
    /// A request is outstanding: wait for it ([`LazyQueue::wait_hole`] with this ticket).
    Wait(Ticket),
}

/// The request a caller of [`LazyQueue::hole_request`] is counted on as a waiter: a wait ends
/// when that very request is gone (a request resolved and raised again at the same index is
/// another one, on which this waiter is not counted).
#[derive(Clone, Copy)]
pub(crate) struct Ticket {
    index: usize,
    seq: u64,
}

impl LazyQueue {
    /// A queue of a file that is not lazy.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            state <- kernel::new_spinlock!(FillState::new(), "LazyQueue::state"),
            lazy: Atomic::new(false),
            page_wq <- WaitQueue::new(),
            handler_wq <- WaitQueue::new(),
        })
    }

    /// Whether handler `id` is the one attached to this file, and the file is lazy.
    pub(crate) fn attached(&self, id: u64) -> bool {
        self.state.lock().serves(id)
    }

    /// Whether the file is lazy (a fast, lock-free hint; decisions are taken under
    /// `state`).
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
    ///
    /// `hole()` tells, under the lock, whether `index` is still a hole within EOF.
    pub(crate) fn hole_request(
        &self,
        index: usize,
        flags: u32,
        mut at: Option<FaultAt>,
        waits: bool,
        hole: impl Fn() -> Hole,
    ) -> Result<HoleStatus> {
        let mut reservation: Option<RBTreeNodeReservation<usize, Req>> = None;
        loop {
            let mut guard = self.state.lock();
            let f = &mut *guard;
            if !f.lazy {
                return Ok(HoleStatus::Resolved);
            }
            // The caller checked EOF without this lock; a shrink may have come since. It
            // stores the new size before it drops the requests past EOF under this lock, so
            // either it sees our request and drops it, or `hole()` sees the new size here.
            // Never raise a request past EOF: no fill could ever resolve it.
            match hole() {
                Hole::Gone => return Ok(HoleStatus::Resolved),
                Hole::Poisoned => return Ok(HoleStatus::Poisoned),
                Hole::Open => {}
            }
            if f.handler.is_none() {
                return Ok(HoleStatus::NoHandler);
            }
            if let Some(req) = f
                .queued
                .get_mut(&index)
                .or_else(|| f.delivered.get_mut(&index))
            {
                if waits {
                    if req.waiters == 0 {
                        f.orphans -= 1;
                    }
                    req.waiters += 1;
                }
                return Ok(HoleStatus::Wait(Ticket {
                    index,
                    seq: req.seq,
                }));
            }
            let ticket = Ticket {
                index,
                seq: f.total,
            };
            if !waits && f.orphans >= MAX_ORPHANS {
                return Ok(HoleStatus::Wait(ticket));
            }
            let Some(node) = reservation.take().or_else(|| f.spare.take()) else {
                drop(guard);
                // Charged to the requester's memory cgroup, like the pages it asks for.
                reservation = Some(
                    RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)
                        .inspect_err(|_| alloc_failed(AllocSite::RequestNode))?,
                );
                continue;
            };
            let tid = match &f.handler_ns {
                Some(ns) => crate::wait::current_tid_in(ns),
                None => 0,
            };
            // Only a request that a fault waits for carries its address (map-on-fill): an
            // orphan must not keep the faulting task's mm alive.
            let at = if waits { at.take() } else { None };
            f.queued.insert(node.into_node(
                index,
                Req {
                    flags,
                    tid,
                    waiters: u32::from(waits),
                    seq: ticket.seq,
                    at,
                },
            ));
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
        self.wait_hole_for(ticket, mode, None).map(|_| ())
    }

    /// Like [`Self::wait_hole`], but gives up after about `ms` milliseconds (`Ok(false)`),
    /// leaving the request as an interrupted wait does.
    pub(crate) fn wait_hole_timeout(
        &self,
        ticket: Ticket,
        mode: WaitMode,
        ms: u32,
    ) -> Result<bool, Interrupted> {
        self.wait_hole_for(ticket, mode, Some(ms))
    }

    fn wait_hole_for(
        &self,
        ticket: Ticket,
        mode: WaitMode,
        ms: Option<u32>,
    ) -> Result<bool, Interrupted> {
        Stats::inc(&STATS.waits);
        let index = ticket.index;
        let done = || {
            let f = self.state.lock();
            !f.lazy || f.handler.is_none() || !f.holds(ticket)
        };
        let res = match ms {
            Some(ms) => self.page_wq.wait_timeout(mode, ms, done),
            None => self.page_wq.wait(mode, done).map(|()| true),
        };
        if !matches!(res, Ok(true)) {
            // Dropped after the lock: a whole request, or the mm reference of an orphan.
            let (node, at) = {
                let mut guard = self.state.lock();
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
    /// returns its node, to be dropped after the state lock is released.
    fn remove_req(f: &mut FillState, index: usize) -> Option<RBTreeNode<usize, Req>> {
        let (waiters, queued) = match (f.queued.get(&index), f.delivered.get(&index)) {
            (Some(r), _) => (r.waiters, true),
            (None, Some(r)) => (r.waiters, false),
            (None, None) => return None,
        };
        let node = if queued {
            f.queued.remove_node(&index)
        } else {
            f.delivered.remove_node(&index)
        };
        f.forget(waiters, queued);
        node
    }

    /// Resolves the requests of pages `[first, end)` after they were filled or poisoned,
    /// and wakes the waiters unless `wake` is false (DONTWAKE). The requests are found by
    /// walking the trees from `first` (cost by request, not by page), a bounded batch per
    /// lock hold; their nodes are freed, and their pages mapped where the faults wait, after
    /// the lock is dropped.
    ///
    /// `map(index, at)` maps the filled page `index` where a fault waits for it.
    pub(crate) fn resolve_range(
        &self,
        first: usize,
        end: usize,
        wake: bool,
        mut map: impl FnMut(usize, &FaultAt),
    ) {
        const BATCH: usize = RESOLVE_BATCH;
        let mut any = false;
        // Per tree (queued, delivered): the lowest index still to look at.
        let mut from = [first; 2];
        loop {
            let mut removed: [Option<RBTreeNode<usize, Req>>; BATCH] = [const { None }; BATCH];
            let mut faults: [Option<(usize, FaultAt)>; BATCH] = [const { None }; BATCH];
            let mut n = 0;
            let mut full = false;
            {
                let mut guard = self.state.lock();
                let f = &mut *guard;
                let mut gone = [(0u64, 0u64); 2];
                for ((tree, from), gone) in [&mut f.queued, &mut f.delivered]
                    .into_iter()
                    .zip(from.iter_mut())
                    .zip(gone.iter_mut())
                {
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
                    f.spare = removed
                        .iter_mut()
                        .find_map(Option::take)
                        .map(RBTreeNode::into_reservation);
                }
            }
            any |= n > 0;
            // Map each page where its fault waits, before the fault is woken.
            for (index, at) in faults.iter().flatten() {
                map(*index, at);
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

    /// Forgets the request for a huge file's whole unit keyed at `index` (flagged
    /// [`MSG_HUGE`]; a one-page request there stays), if any, and wakes its waiters, who look
    /// again.
    pub(crate) fn drop_unit_request(&self, index: usize) {
        let node = {
            let mut f = self.state.lock();
            match f.req_mut(index) {
                Some(req) if req.flags & MSG_HUGE != 0 => Self::remove_req(&mut f, index),
                _ => None,
            }
        };
        if node.is_some() {
            drop(node);
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
                let mut guard = self.state.lock();
                let f = &mut *guard;
                let queued = f.queued.cursor_lower_bound(&first).is_some();
                let tree = if queued {
                    &mut f.queued
                } else {
                    &mut f.delivered
                };
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

    /// Makes the file lazy with the handler `attach` names (`EBUSY`: one is attached;
    /// `EPERM`: `write_sealed()` and not lazy yet). The caller holds the file's locks that
    /// order this against writes, seals and faults (`SealFile::attach_handler`).
    pub(crate) fn attach(&self, attach: Attach, write_sealed: impl FnOnce() -> bool) -> Result {
        let mut f = self.state.lock();
        if f.handler.is_some() {
            return Err(EBUSY);
        }
        if !f.lazy && write_sealed() {
            return Err(EPERM);
        }
        f.lazy = true;
        f.handler = Some(attach.id);
        f.handler_ns = attach.ns;
        self.lazy.store(true, Release);
        Ok(())
    }

    /// Prints the lazy-fill lines of the file's fdinfo.
    pub(crate) fn show(&self, m: &SeqFile) {
        let (lazy, attached, pending) = {
            let f = self.state.lock();
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

    /// The handler `id` went away (its fd was released): if it is still attached, the file
    /// stays lazy with no handler, and every waiter fails fast.
    pub(crate) fn detach(&self, id: u64) {
        let trees = {
            let mut f = self.state.lock();
            (f.handler == Some(id)).then(|| f.detach())
        };
        if trees.is_some() {
            drop(trees);
            self.page_wq.wake_all();
        }
    }

    /// FILL_END by handler `id`: the file leaves lazy mode and everyone waiting continues
    /// (`EINVAL` if `id` is not attached). `hold()` takes the lock that keeps fills off while
    /// lazy mode ends (the invalidate lock, exclusive: see `SealFile::end_lazy`).
    pub(crate) fn end<G>(&self, id: u64, hold: impl FnOnce() -> G) -> Result {
        let trees = {
            let _g = hold();
            let mut f = self.state.lock();
            if !f.serves(id) {
                return Err(EINVAL);
            }
            f.lazy = false;
            self.lazy.store(false, Release);
            f.detach()
        };
        drop(trees);
        self.page_wq.wake_all();
        self.handler_wq.wake_poll(crate::wait::POLL_HUP);
        Ok(())
    }

    /// Moves queued requests to the delivered tree, lowest index first, at most
    /// `msgs.len()` (`seqs` as long), and writes their messages to `msgs` and their
    /// sequence numbers to `seqs`. Returns how many, or `None` when handler `id` is not
    /// needed any more (see [`FillState::needed`]; `data_open()`: the file's data is still
    /// reachable).
    pub(crate) fn deliver(
        &self,
        id: u64,
        data_open: impl Fn() -> bool,
        msgs: &mut [uapi::sealmem_msg],
        seqs: &mut [u64],
    ) -> Option<usize> {
        let room = msgs.len().min(seqs.len());
        let mut n = 0;
        let mut f = self.state.lock();
        if !f.needed(id, &data_open) {
            return None;
        }
        while n < room {
            let Some(cursor) = f.queued.cursor_front_mut() else {
                break;
            };
            let (&index, req) = cursor.current();
            let (flags, tid) = (req.flags, req.tid);
            seqs[n] = req.seq;
            let (_, node) = cursor.remove_current();
            msgs[n] = uapi::sealmem_msg {
                offset: index as u64 * PAGE,
                flags,
                tid,
            };
            f.delivered.insert(node);
            f.nqueued -= 1;
            n += 1;
        }
        Some(n)
    }

    /// Waits until a request is queued or handler `id` is not needed any more (as in
    /// [`Self::deliver`]), or a signal comes.
    pub(crate) fn wait_for_requests(
        &self,
        id: u64,
        data_open: impl Fn() -> bool,
    ) -> Result<(), Interrupted> {
        self.handler_wq.wait(WaitMode::Interruptible, || {
            let f = self.state.lock();
            f.queued.iter().next().is_some() || !f.needed(id, &data_open)
        })
    }

    /// Puts the requests of messages that could not be copied out back in the queue: those
    /// still delivered, and still the same requests (`seqs`): one resolved meanwhile and
    /// raised again may have been delivered to another reader.
    pub(crate) fn requeue(&self, msgs: &[uapi::sealmem_msg], seqs: &[u64]) {
        let mut f = self.state.lock();
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

    /// The poll mask of handler `id`: EPOLLIN while requests are queued, EPOLLHUP once it is
    /// not needed (as in [`Self::deliver`]).
    pub(crate) fn poll_mask(&self, id: u64, data_open: impl Fn() -> bool) -> u32 {
        let f = self.state.lock();
        let mut mask = 0;
        if f.queued.iter().next().is_some() {
            mask |= crate::wait::POLL_IN;
        }
        if !f.needed(id, &data_open) {
            mask |= crate::wait::POLL_HUP;
        }
        mask
    }

    /// The wait queue of handler-fd readers and pollers.
    pub(crate) fn handler_wq(&self) -> &WaitQueue {
        &self.handler_wq
    }

    /// Nothing can fault any more (the file's last data fd is gone): a handler waiting for
    /// requests sees HUP.
    pub(crate) fn hang_up(&self) {
        self.handler_wq.wake_poll(crate::wait::POLL_HUP);
    }

    /// Wakes every task waiting for a page (WAKE): each looks at its request again.
    pub(crate) fn wake_waiters(&self) {
        self.page_wq.wake_all();
    }

    /// What the handler `id`'s fdinfo shows: (attached, queued, pending, total requests).
    pub(crate) fn handler_info(&self, id: u64) -> (bool, u64, u64, u64) {
        let f = self.state.lock();
        (f.serves(id), f.nqueued, f.pending(), f.total)
    }
}
