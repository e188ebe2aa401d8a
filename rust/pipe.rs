// SPDX-License-Identifier: GPL-2.0

//! The pipe a `splice_read` fills (part of the unsafe abstraction layer): sealmem lends its
//! pages to the pipe instead of copying them (zero-copy `splice`/`sendfile` out of a file).
//!
//! The kernel crate has no pipe abstraction; the buffers are filled by C helpers
//! (`sealmem_pipe_push_page`, `sealmem_pipe_push_zeros`), as `splice_folio_into_pipe` and
//! shmem's `splice_zeropage_into_pipe` fill them.
//!
//! A page buffer owns one page reference (given up by a [`PageRef`]) and is released with
//! `put_page` by the pipe; its ops (`nosteal_pipe_buf_ops`) never let the page be stolen.
//! So a page in a pipe outlives its removal from the page store (punch hole, shrink): the
//! pipe then shows the page's bytes as of the splice or of a later write, as a pipe holding
//! spliced page-cache pages of a memfd does.
//!
//! No buffer points into this module: a pipe outlives the file that filled it, and so may
//! outlive sealmem itself (rmmod once the last fd is closed). Both kinds of buffer use the
//! kernel's `nosteal_pipe_buf_ops`; a hole's zeros are a reference to the zero page.

use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::ffi::{sealmem_pipe_is_full, sealmem_pipe_push_page, sealmem_pipe_push_zeros};
use kernel::{bindings, page::PAGE_SIZE};

use crate::page::PageRef;

/// The pipe of one `splice_read` call, locked by its caller for `'a`.
///
/// # Invariants
///
/// `pipe` points to a valid `pipe_inode_info` that is locked (`pipe->mutex`, or private to
/// the task: sendfile's internal pipe) by the caller of the `splice_read` for `'a`, so this
/// value is the only one that adds buffers to it meanwhile.
pub(crate) struct PipeSink<'a> {
    pipe: NonNull<bindings::pipe_inode_info>,
    _locked: PhantomData<&'a mut bindings::pipe_inode_info>,
}

impl PipeSink<'_> {
    /// # Safety
    ///
    /// `pipe` must be the pipe a `splice_read` was called with, valid and locked by its
    /// caller for `'a` (what `vfs_splice_read` requires of its caller).
    pub(crate) unsafe fn from_raw(pipe: *mut bindings::pipe_inode_info) -> Option<Self> {
        // INVARIANT: guaranteed by the caller.
        NonNull::new(pipe).map(|pipe| Self {
            pipe,
            _locked: PhantomData,
        })
    }

    /// Whether no buffer slot is free.
    pub(crate) fn is_full(&self) -> bool {
        // SAFETY: The pipe is valid and locked (invariant).
        unsafe { sealmem_pipe_is_full(self.pipe.as_ptr()) }
    }

    /// Lends `len` bytes at `offset` of `page` to the pipe: the new buffer takes over this
    /// reference. The page is handed back if the pipe is full or the range is not within
    /// the page.
    pub(crate) fn push_page(
        &mut self,
        page: PageRef,
        offset: usize,
        len: usize,
    ) -> Result<(), PageRef> {
        if len == 0 || offset >= PAGE_SIZE || len > PAGE_SIZE - offset {
            return Err(page);
        }
        let raw = page.into_raw();
        // SAFETY: The pipe is valid and locked (invariant); `raw` is a valid order-0 page of
        // which we give the helper one reference, and `offset + len` lies within it.
        if unsafe { sealmem_pipe_push_page(self.pipe.as_ptr(), raw.as_ptr(), offset, len) } {
            return Ok(());
        }
        // SAFETY: The pipe was full, so the helper did not take the reference: it is ours.
        Err(unsafe { PageRef::from_raw(raw) })
    }

    /// Puts `len` zero bytes (`offset` within the zero page, as for a page) into the pipe;
    /// false if the pipe is full, the range is not within a page, or the zero page's count
    /// would overflow.
    pub(crate) fn push_zeros(&mut self, offset: usize, len: usize) -> bool {
        if len == 0 || offset >= PAGE_SIZE || len > PAGE_SIZE - offset {
            return false;
        }
        // SAFETY: The pipe is valid and locked (invariant) and the range lies within a page.
        unsafe { sealmem_pipe_push_zeros(self.pipe.as_ptr(), offset, len) }
    }
}
