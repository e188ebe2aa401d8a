// SPDX-License-Identifier: GPL-2.0

//! A wait queue with interruptible *and* killable waits (part of the unsafe layer).
//!
//! `kernel::sync::CondVar` waits only uninterruptibly or interruptibly, tied to a lock
//! guard. Page faults must wait killably when the fault is not interruptible (kernel-mode
//! accesses), as `handle_userfault` does, and the handler fd needs `poll_wait`; this is the
//! C wait queue with the `wait_event` loop written out in Rust.
//!
//! Below it: safe wrappers of the few kernel calls about the current task that have no
//! binding (exiting or dumping, fatal signals, sleeping, rescheduling, its thread id as seen
//! from a pid namespace).

use kernel::{bindings, prelude::*, types::Opaque};

use crate::ffi::{
    sealmem_cond_resched, sealmem_current_exiting_or_dumping, sealmem_fatal_signal_pending,
    sealmem_init_waitqueue_head, sealmem_sleep_killable_ms, sealmem_wake_up_all,
    sealmem_wake_up_poll,
};

/// Poll mask for "requests to read".
pub(crate) const POLL_IN: u32 = bindings::POLLIN | bindings::POLLRDNORM;
/// Poll mask for "nothing more will come".
pub(crate) const POLL_HUP: u32 = bindings::POLLHUP;

/// How a wait may be broken.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitMode {
    /// Any signal ends the wait.
    Interruptible,
    /// Only a fatal signal ends the wait.
    Killable,
}

/// A wait ended by a signal (the caller returns -ERESTARTSYS or VM_FAULT_RETRY).
pub(crate) struct Interrupted;

/// A C `wait_queue_head`.
///
/// # Invariants
///
/// `wq` is initialised.
#[pin_data]
pub(crate) struct WaitQueue {
    #[pin]
    wq: Opaque<bindings::wait_queue_head>,
}

// SAFETY: A wait queue is used from any thread; it has its own lock.
unsafe impl Send for WaitQueue {}
// SAFETY: As above.
unsafe impl Sync for WaitQueue {}

impl WaitQueue {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid and pinned; this initialises it.
            // INVARIANT: initialised here.
            wq <- Opaque::ffi_init(|slot: *mut bindings::wait_queue_head| unsafe {
                sealmem_init_waitqueue_head(slot)
            }),
        })
    }

    fn raw(&self) -> *mut bindings::wait_queue_head {
        self.wq.get()
    }

    /// Sleeps until `done()` returns true (checked after queueing, so no wake-up is lost), or
    /// a signal that `mode` admits arrives. Callers have just found `done()` false: it is
    /// not evaluated before the task is queued.
    pub(crate) fn wait(
        &self,
        mode: WaitMode,
        done: impl FnMut() -> bool,
    ) -> Result<(), Interrupted> {
        self.wait_until(mode, None, done).map(|_| ())
    }

    /// Like [`WaitQueue::wait`], but gives up after about `ms` milliseconds: `Ok(true)` once
    /// `done()`, `Ok(false)` on the timeout.
    pub(crate) fn wait_timeout(
        &self,
        mode: WaitMode,
        ms: u32,
        done: impl FnMut() -> bool,
    ) -> Result<bool, Interrupted> {
        self.wait_until(mode, Some(kernel::time::msecs_to_jiffies(ms)), done)
    }

    /// The wait loop: `Ok(true)` once `done()`, `Ok(false)` when `timeout` (jiffies) ran out.
    fn wait_until(
        &self,
        mode: WaitMode,
        mut timeout: Option<kernel::time::Jiffies>,
        mut done: impl FnMut() -> bool,
    ) -> Result<bool, Interrupted> {
        let state = match mode {
            WaitMode::Interruptible => bindings::TASK_INTERRUPTIBLE,
            WaitMode::Killable => bindings::TASK_KILLABLE,
        } as i32;
        let mut entry = core::mem::MaybeUninit::<bindings::wait_queue_entry>::uninit();
        let entry = entry.as_mut_ptr();
        // SAFETY: `entry` is a writable stack slot; init_wait_entry initialises it.
        unsafe { bindings::init_wait_entry(entry, 0) };
        let mut result = Ok(true);
        loop {
            // SAFETY: The queue is initialised (invariant) and `entry` initialised above;
            // the entry stays on this stack frame until `finish_wait` below removes it.
            let ret = unsafe { bindings::prepare_to_wait_event(self.raw(), entry, state) };
            if done() {
                break;
            }
            if ret != 0 {
                result = Err(Interrupted);
                break;
            }
            match timeout {
                Some(0) => {
                    result = Ok(false);
                    break;
                }
                Some(left) => {
                    let left =
                        kernel::ffi::c_long::try_from(left).unwrap_or(kernel::ffi::c_long::MAX);
                    // SAFETY: We are queued and in a sleeping state; a wake-up, a signal or the
                    // timer ends the sleep, which returns the jiffies left.
                    let rest = unsafe { bindings::schedule_timeout(left) };
                    timeout = Some(kernel::time::Jiffies::try_from(rest).unwrap_or(0));
                }
                // SAFETY: We are queued and in a sleeping state; a wake-up or signal ends it.
                None => unsafe { bindings::schedule() },
            }
        }
        // SAFETY: Removes `entry` (if still queued) and sets the task running again.
        unsafe { bindings::finish_wait(self.raw(), entry) };
        result
    }

    /// Wakes every waiter.
    pub(crate) fn wake_all(&self) {
        // SAFETY: The queue is initialised (invariant).
        unsafe { sealmem_wake_up_all(self.raw()) };
    }

    /// Wakes waiters and pollers with `mask` (EPOLLIN, EPOLLHUP...).
    pub(crate) fn wake_poll(&self, mask: u32) {
        // SAFETY: The queue is initialised (invariant).
        unsafe { sealmem_wake_up_poll(self.raw(), mask) };
    }

    /// Registers this queue with a poll table (`poll_wait`).
    ///
    /// # Safety
    ///
    /// `file` and `pt` (which may be null) must be valid for the call, and this queue must
    /// outlive `file`'s poll registrations (the VFS removes them before releasing `file`).
    pub(crate) unsafe fn poll_wait(
        &self,
        file: *mut bindings::file,
        pt: *mut bindings::poll_table_struct,
    ) {
        // SAFETY: Guaranteed by the caller; the queue is initialised (invariant).
        unsafe { bindings::poll_wait(file, self.raw(), pt) };
    }
}

/// Whether the current task is exiting or dumping core (`PF_EXITING | PF_DUMPCORE`): such a
/// task must never wait for a lazy page (as in `handle_userfault`).
pub(crate) fn current_exiting_or_dumping() -> bool {
    // SAFETY: Reads the current task's flags; no preconditions.
    unsafe { sealmem_current_exiting_or_dumping() }
}

/// Sleeps about `ms` milliseconds, killably; true if a fatal signal cut it short.
pub(crate) fn sleep_killable_ms(ms: u32) -> bool {
    // SAFETY: May sleep; callers hold no spinlock. No other preconditions.
    unsafe { sealmem_sleep_killable_ms(ms) }
}

/// The error that makes the syscall start again from scratch, transparently to userspace
/// (`restart_syscall()`: `-ERESTARTNOINTR` with the restart flagged), after everything the
/// syscall holds (a pipe's lock, for a splice) was released on the way out.
pub(crate) fn restart_syscall() -> Error {
    // SAFETY: Flags the current task for a syscall restart; no preconditions.
    Error::from_errno(unsafe { crate::ffi::sealmem_restart_syscall() })
}

/// Whether the current task's syscall can be started over by [`restart_syscall`] (not in a
/// kernel thread or an io_uring worker, which nothing restarts).
pub(crate) fn may_restart_syscall() -> bool {
    // SAFETY: Reads the current task's flags; no preconditions.
    unsafe { crate::ffi::sealmem_may_restart_syscall() }
}

/// Whether the current task has a fatal signal pending.
pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: Reads the current task's signal state; no preconditions.
    unsafe { sealmem_fatal_signal_pending() }
}

/// Yields the CPU if a reschedule is due (callers hold no spinlock).
pub(crate) fn cond_resched() {
    // SAFETY: May sleep; callers hold no spinlock.
    unsafe { sealmem_cond_resched() }
}

/// The thread id of the current task as seen from `ns`, 0 if it is not visible there.
pub(crate) fn current_tid_in(ns: &kernel::pid_namespace::PidNamespace) -> u32 {
    // SAFETY: `current` is valid; `ns` is a live pid namespace (the caller's reference).
    let tid = unsafe {
        bindings::__task_pid_nr_ns(
            kernel::task::Task::current_raw(),
            bindings::pid_type_PIDTYPE_PID,
            ns.as_ptr(),
        )
    };
    u32::try_from(tid).unwrap_or(0)
}
