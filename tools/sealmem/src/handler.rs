//! The handler fd of a lazy file: [`Handler`], its requests and its fills.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::error::{check_range, Error};
use crate::{cvt, raw_ioctl, uapi, FromFdError, OpenError};

/// Options of [`SealFile::enable_fill`](crate::SealFile::enable_fill), builder-style.
///
/// ```
/// let opts = sealmem::HandlerOptions::new().nonblocking(true); // for epoll / tokio
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerOptions {
    cloexec: bool,
    nonblock: bool,
}

impl HandlerOptions {
    /// Close-on-exec, blocking reads.
    pub fn new() -> Self {
        Self { cloexec: true, nonblock: false }
    }

    /// Close the handler fd on `exec` (default: yes; `SEALMEM_FD_CLOEXEC`).
    pub fn cloexec(mut self, yes: bool) -> Self {
        self.cloexec = yes;
        self
    }

    /// `read` fails with `EAGAIN` instead of waiting (default: no; `SEALMEM_FD_NONBLOCK`),
    /// for epoll loops and the async handler.
    pub fn nonblocking(mut self, yes: bool) -> Self {
        self.nonblock = yes;
        self
    }

    pub(crate) fn bits(self) -> u32 {
        let mut flags = 0;
        if self.cloexec {
            flags |= uapi::SEALMEM_FD_CLOEXEC;
        }
        if self.nonblock {
            flags |= uapi::SEALMEM_FD_NONBLOCK;
        }
        flags
    }
}

impl Default for HandlerOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// The most messages one `read(2)` of a handler fd returns.
pub(crate) const REQUEST_BATCH: usize = 32;

/// A request for one missing page, or for a whole missing unit of a huge file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Byte offset of the page (of the unit, for a [`huge`](Self::huge) request).
    pub offset: u64,
    /// A huge file's whole unit is missing: fill [`HUGE_SIZE`](crate::HUGE_SIZE) bytes from
    /// `offset` (up to the end of the file, rounded up to a page, for the last unit) with
    /// one [`Handler::copy`] to install it as one 2 MiB folio.
    pub huge: bool,
    /// The access was a write.
    pub write: bool,
    /// The access was a page fault (otherwise a read/write/splice on an fd).
    pub fault: bool,
    /// The requesting thread as seen from the handler's pid namespace; 0 if not visible.
    pub tid: u32,
}

impl Request {
    fn from_msg(m: &uapi::sealmem_msg) -> Self {
        Self {
            offset: m.offset,
            huge: m.flags & uapi::SEALMEM_MSG_HUGE != 0,
            write: m.flags & uapi::SEALMEM_MSG_WRITE != 0,
            fault: m.flags & uapi::SEALMEM_MSG_FAULT != 0,
            tid: m.tid,
        }
    }
}

/// A reusable buffer of request messages: [`Handler::read`] and [`Handler::try_read`] fill
/// it without allocating (the buffer is allocated once, by [`new`](Self::new)).
///
/// ```no_run
/// # fn serve(handler: &sealmem::Handler, image: &[u8]) -> Result<(), sealmem::Error> {
/// let mut buf = sealmem::RequestBuf::new();
/// while handler.read(&mut buf)? > 0 {
///     for req in &buf {
///         let page = &image[req.offset as usize..][..4096];
///         handler.copy(req.offset, page, sealmem::FillOptions::new())?;
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RequestBuf {
    pub(crate) msgs: Box<[uapi::sealmem_msg]>,
    len: usize,
}

impl RequestBuf {
    /// Room for 32 requests, the most one read returns.
    pub fn new() -> Self {
        Self::with_capacity(REQUEST_BATCH)
    }

    /// Room for `n` requests. With `n` 0 every read fails with `EINVAL` (without reading: a
    /// read would take requests it could not return).
    pub fn with_capacity(n: usize) -> Self {
        Self { msgs: vec![uapi::sealmem_msg::default(); n].into_boxed_slice(), len: 0 }
    }

    /// How many requests a read may return into it.
    pub fn capacity(&self) -> usize {
        self.msgs.len()
    }

    /// The number of requests of the last read.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the last read returned no request.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`th request of the last read.
    pub fn get(&self, i: usize) -> Option<Request> {
        self.msgs[..self.len].get(i).map(Request::from_msg)
    }

    /// The requests of the last read, in the order the module delivered them.
    pub fn iter(&self) -> RequestIter<'_> {
        RequestIter { msgs: self.msgs[..self.len].iter() }
    }

    /// Forgets the requests of the last read.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl Default for RequestBuf {
    fn default() -> Self {
        Self::new()
    }
}

/// The requests held by a [`RequestBuf`].
#[derive(Debug, Clone)]
pub struct RequestIter<'a> {
    msgs: std::slice::Iter<'a, uapi::sealmem_msg>,
}

impl Iterator for RequestIter<'_> {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        self.msgs.next().map(Request::from_msg)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.msgs.size_hint()
    }
}

impl ExactSizeIterator for RequestIter<'_> {}

impl<'a> IntoIterator for &'a RequestBuf {
    type Item = Request;
    type IntoIter = RequestIter<'a>;

    fn into_iter(self) -> RequestIter<'a> {
        self.iter()
    }
}

/// Options of a fill, builder-style: [`FillOptions::new`] is a plain fill that stops with
/// [`Error::Exists`] at a present page and wakes the waiters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FillOptions {
    skip_existing: bool,
    dont_wake: bool,
}

impl FillOptions {
    /// Stop at present pages, wake waiters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Skip present (or poisoned) pages instead of stopping with `EEXIST`; they count as done
    /// (`SEALMEM_FILL_SKIP_EXISTING`: prefetch racing demand fills).
    pub fn skip_existing(mut self, yes: bool) -> Self {
        self.skip_existing = yes;
        self
    }

    /// Do not wake waiters; call [`Handler::wake`] later (`SEALMEM_FILL_DONTWAKE`).
    pub fn dont_wake(mut self, yes: bool) -> Self {
        self.dont_wake = yes;
        self
    }

    pub(crate) fn bits(self) -> u64 {
        let mut f = 0;
        if self.skip_existing {
            f |= uapi::SEALMEM_FILL_SKIP_EXISTING;
        }
        if self.dont_wake {
            f |= uapi::SEALMEM_FILL_DONTWAKE;
        }
        u64::from(f)
    }
}

/// The handler fd of a lazy file: reads requests, fills pages.
///
/// It is an ordinary fd: poll or epoll it for `EPOLLIN` (requests pending) and `EPOLLHUP`
/// (no longer needed), via [`AsRawFd`]/[`AsFd`]; send it to another process with
/// [`scm::send_handler`](crate::scm::send_handler). `Handler` is `Sync`: several threads
/// may fill at once (each page is filled atomically, never twice).
///
/// ```no_run
/// use sealmem::{FillOptions, HandlerOptions, SealFile, Seals};
///
/// let image = vec![7u8; 1 << 20];
/// let f = SealFile::create()?;
/// f.set_size(image.len() as u64)?;
/// let handler = f.enable_fill(HandlerOptions::new())?;
/// f.add_seals(Seals::WRITE | Seals::SHRINK | Seals::GROW)?;
/// let consumer_fd = f.view()?; // hand it to consumers (fork, SCM_RIGHTS)
/// drop(f);
/// # drop(consumer_fd);
/// // Serve until no fd or mapping of the file is left.
/// for req in handler.requests() {
///     let req = req?;
///     let page = &image[req.offset as usize..][..4096];
///     handler.copy(req.offset, page, FillOptions::new())?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Handler {
    pub(crate) fd: OwnedFd,
}

/// Whether `fd` is a sealmem handler fd, found out without any ioctl: an anonymous-inode
/// file `[sealmem]` whose fdinfo, printed by the module, has a `sealmem-handler-of` line.
fn identify_handler(fd: BorrowedFd<'_>) -> Result<(), OpenError> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    if link.as_os_str() != "anon_inode:[sealmem]" {
        return Err(OpenError::NotHandler);
    }
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    if info.lines().any(|l| l.starts_with("sealmem-handler-of:\t")) {
        Ok(())
    } else {
        Err(OpenError::NotHandler)
    }
}

impl Handler {
    /// Adopts a handler fd (e.g. received over `SCM_RIGHTS`;
    /// [`scm::recv_handler`](crate::scm::recv_handler) does this for you).
    ///
    /// The fd is checked before any ioctl reaches it: it must be an anonymous-inode file
    /// `[sealmem]` whose fdinfo has a `sealmem-handler-of` line (a file or VIEW fd of
    /// sealmem has `sealmem-id` instead). Otherwise it comes back intact inside the
    /// [`FromFdError`] ([`OpenError::NotHandler`], or [`OpenError::Io`] if `/proc` failed).
    pub fn try_from_fd(fd: OwnedFd) -> Result<Self, FromFdError> {
        match identify_handler(fd.as_fd()) {
            Ok(()) => Ok(Self { fd }),
            Err(error) => Err(FromFdError { fd, error }),
        }
    }

    /// Reads pending requests into `buf` (blocking unless nonblocking); returns how many (at
    /// most 32 per call, the module's batch).
    ///
    /// `Ok(0)` means the handler is no longer needed (FILL_END, or nothing can fault any
    /// more). An empty `buf` fails with `EINVAL` without reading (a read would take a request
    /// that could not be returned). Errors of `read(2)` are returned as they are: `EAGAIN`
    /// (`WouldBlock`) on a nonblocking handler with nothing pending, `EINTR` (`Interrupted`)
    /// when a signal handler without `SA_RESTART` ran; [`read`](Self::read),
    /// [`try_read`](Self::try_read) and [`requests`](Self::requests) deal with both.
    pub fn read_requests(&self, buf: &mut [Request]) -> io::Result<usize> {
        if buf.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut raw = [uapi::sealmem_msg::default(); REQUEST_BATCH];
        let want = buf.len().min(REQUEST_BATCH);
        let n = self.read_raw(&mut raw[..want])?;
        for (d, m) in buf.iter_mut().zip(&raw[..n]) {
            *d = Request::from_msg(m);
        }
        Ok(n)
    }

    /// One `read(2)` into `msgs` (not empty); the number of whole messages read.
    fn read_raw(&self, msgs: &mut [uapi::sealmem_msg]) -> io::Result<usize> {
        let size = std::mem::size_of::<uapi::sealmem_msg>();
        // SAFETY: `msgs` is a writable buffer of `msgs.len()` plain-data messages.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), msgs.as_mut_ptr().cast(), std::mem::size_of_val(msgs)) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((n as usize / size).min(msgs.len()))
    }

    /// Reads pending requests into `buf`, waiting for one (on a blocking handler), retrying
    /// `EINTR`; returns how many, `Ok(0)` once the handler is no longer needed. Allocates
    /// nothing. A buffer of capacity 0 fails with `EINVAL` without reading. On a nonblocking
    /// handler with nothing pending it fails with `WouldBlock` (use [`try_read`](Self::try_read)).
    pub fn read(&self, buf: &mut RequestBuf) -> io::Result<usize> {
        buf.len = 0;
        if buf.msgs.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        loop {
            match self.read_raw(&mut buf.msgs) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
                Ok(n) => {
                    buf.len = n;
                    return Ok(n);
                }
            }
        }
    }

    /// Like [`read`](Self::read) but never waits: `Ok(None)` when no request is pending
    /// (`EAGAIN`), `Ok(Some(0))` once the handler is no longer needed, `Ok(Some(n))` for `n`
    /// requests.
    ///
    /// On a nonblocking handler this is one `read(2)`. On a blocking one it first polls the
    /// fd (timeout 0) and reads only when `POLLIN` or `POLLHUP` is reported; if another
    /// thread or process reads the same handler fd concurrently and takes the requests in
    /// between, the read waits for the next one. (Use a nonblocking handler when several
    /// readers share the fd.)
    pub fn try_read(&self, buf: &mut RequestBuf) -> io::Result<Option<usize>> {
        buf.len = 0;
        if buf.msgs.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if !self.is_nonblocking()? {
            let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            loop {
                // SAFETY: one valid pollfd.
                let n = unsafe { libc::poll(&mut pfd, 1, 0) };
                if n >= 0 {
                    break;
                }
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) == 0 {
                return Ok(None);
            }
        }
        match self.read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the fd is `O_NONBLOCK` (a property of the open file, shared by its dups).
    pub fn is_nonblocking(&self) -> io::Result<bool> {
        // SAFETY: F_GETFL takes no argument.
        let fl = cvt(unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_GETFL) })?;
        Ok(fl & libc::O_NONBLOCK != 0)
    }

    /// Sets or clears `O_NONBLOCK` on the fd (every dup of it, in every process, sees it).
    pub fn set_nonblocking(&self, yes: bool) -> io::Result<()> {
        // SAFETY: F_GETFL takes no argument.
        let fl = cvt(unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_GETFL) })?;
        let new = if yes { fl | libc::O_NONBLOCK } else { fl & !libc::O_NONBLOCK };
        // SAFETY: F_SETFL takes an int of flags.
        cvt(unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_SETFL, new) }).map(drop)
    }

    /// An iterator over requests, reading a batch at a time into one [`RequestBuf`].
    ///
    /// - It ends (`None`) when the handler is no longer needed (a read returned 0).
    /// - `EINTR` is retried: a signal never ends it.
    /// - On a nonblocking handler with nothing pending it yields `Err` of kind
    ///   [`WouldBlock`](io::ErrorKind::WouldBlock) and does **not** end: wait for `EPOLLIN`
    ///   (poll/epoll on the handler fd) and call `next` again, on the same iterator or a new
    ///   one. (On a blocking handler this never happens.)
    /// - Any other error is yielded once, and then the iterator ends.
    ///
    /// ```no_run
    /// # fn serve(handler: &sealmem::Handler) -> std::io::Result<()> {
    /// let mut reqs = handler.requests();
    /// loop {
    ///     match reqs.next() {
    ///         None => break, // the handler is no longer needed
    ///         Some(Ok(req)) => { /* fill req.offset */ }
    ///         Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
    ///             /* poll the handler fd for POLLIN, then go on */
    ///         }
    ///         Some(Err(e)) => return Err(e),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn requests(&self) -> Requests<'_> {
        Requests { handler: self, buf: RequestBuf::new(), next: 0, done: false }
    }

    /// Fills the holes of `[offset, offset + src.len())` from `src` (page-aligned offset and
    /// length; `src` may have any alignment). Returns the bytes filled (skipped pages count).
    pub fn copy(&self, offset: u64, src: &[u8], opts: FillOptions) -> Result<u64, Error> {
        check_range(offset, src.len() as u64)?;
        let mut c = uapi::sealmem_copy {
            offset,
            src: src.as_ptr() as u64,
            len: src.len() as u64,
            flags: opts.bits(),
            copy: 0,
        };
        // SAFETY: SEALMEM_IOC_COPY reads and writes one `sealmem_copy`; the kernel reads at
        // most `len` bytes from `src`, which the slice covers.
        let r = unsafe { raw_ioctl(self.fd.as_raw_fd(), uapi::SEALMEM_IOC_COPY, &mut c) };
        self.fill_result(r, c.copy)
    }

    /// Fills the holes of a page-aligned range with zeros.
    pub fn zeropage(&self, offset: u64, len: u64, opts: FillOptions) -> Result<u64, Error> {
        self.fill_op(uapi::SEALMEM_IOC_ZEROPAGE, offset, len, opts)
    }

    /// Poisons the holes of a page-aligned range: faults raise SIGBUS, reads fail with `EIO`.
    pub fn poison(&self, offset: u64, len: u64, opts: FillOptions) -> Result<u64, Error> {
        self.fill_op(uapi::SEALMEM_IOC_POISON, offset, len, opts)
    }

    fn fill_op(&self, cmd: u32, offset: u64, len: u64, opts: FillOptions) -> Result<u64, Error> {
        check_range(offset, len)?;
        let mut f = uapi::sealmem_fill { offset, len, flags: opts.bits(), done: 0 };
        // SAFETY: `cmd` is ZEROPAGE or POISON, which read and write one `sealmem_fill`.
        let r = unsafe { raw_ioctl(self.fd.as_raw_fd(), cmd, &mut f) };
        self.fill_result(r, f.done)
    }

    /// Wakes the waiters of a page-aligned range (after fills with `dont_wake`).
    /// [`Error::Detached`] if the handler no longer serves the file.
    pub fn wake(&self, offset: u64, len: u64) -> Result<(), Error> {
        check_range(offset, len)?;
        let mut r = uapi::sealmem_range { offset, len };
        // SAFETY: SEALMEM_IOC_WAKE reads one `sealmem_range`.
        let ret = unsafe { raw_ioctl(self.fd.as_raw_fd(), uapi::SEALMEM_IOC_WAKE, &mut r) };
        self.fill_result(ret, 0).map(drop)
    }

    /// Ends lazy mode: remaining holes become zero holes and every waiter continues.
    /// [`Error::Detached`] if the handler no longer serves the file (ended already).
    pub fn fill_end(&self) -> Result<(), Error> {
        // SAFETY: SEALMEM_IOC_FILL_END takes no argument.
        let ret = unsafe { libc::ioctl(self.fd.as_raw_fd(), uapi::SEALMEM_IOC_FILL_END as _, 0) };
        self.fill_result(ret, 0).map(drop)
    }

    /// Whether the module still counts this handler as the file's (fdinfo `attached`).
    pub fn is_attached(&self) -> io::Result<bool> {
        let info = self.fdinfo()?;
        Ok(info.lines().any(|l| l == "attached:\tyes"))
    }

    /// The handler fd's lines of `/proc/self/fdinfo/<fd>`.
    pub fn fdinfo(&self) -> io::Result<String> {
        std::fs::read_to_string(format!("/proc/self/fdinfo/{}", self.fd.as_raw_fd()))
    }

    /// A fill ioctl's outcome: `ret` its return value, `done` what it reported.
    fn fill_result(&self, ret: libc::c_int, done: i64) -> Result<u64, Error> {
        if ret >= 0 {
            return Ok(done.max(0) as u64);
        }
        let error = io::Error::last_os_error();
        let done = done.max(0) as u64;
        Err(match error.raw_os_error() {
            Some(libc::EEXIST) => Error::Exists { done },
            // The range was checked: EINVAL is EOF, or a handler that no longer serves.
            Some(libc::EINVAL) => match self.is_attached() {
                Ok(false) => Error::Detached { done },
                _ => Error::PastEof { done },
            },
            _ => Error::Os { done, error },
        })
    }
}

/// Iterator returned by [`Handler::requests`].
pub struct Requests<'a> {
    handler: &'a Handler,
    buf: RequestBuf,
    next: usize,
    done: bool,
}

impl Iterator for Requests<'_> {
    type Item = io::Result<Request>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(r) = self.buf.get(self.next) {
            self.next += 1;
            return Some(Ok(r));
        }
        if self.done {
            return None;
        }
        self.next = 0;
        match self.handler.read(&mut self.buf) {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) => {
                self.next = 1;
                self.buf.get(0).map(Ok)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(Err(e)),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl AsRawFd for Handler {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Handler {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Handler> for OwnedFd {
    fn from(h: Handler) -> OwnedFd {
        h.fd
    }
}

impl TryFrom<OwnedFd> for Handler {
    type Error = FromFdError;

    /// [`Handler::try_from_fd`].
    fn try_from(fd: OwnedFd) -> Result<Self, FromFdError> {
        Self::try_from_fd(fd)
    }
}
