//! An async handler on tokio (cargo feature `tokio`): [`AsyncHandler`] waits for requests
//! with [`AsyncFd`] (the handler fd's `EPOLLIN`/`EPOLLHUP` in tokio's reactor) and fills
//! from tasks.
//!
//! ```no_run
//! # async fn serve(h: sealmem::Handler, image: std::sync::Arc<Vec<u8>>) -> Result<(), sealmem::Error> {
//! use sealmem::{tokio::AsyncHandler, FillOptions};
//!
//! let handler = AsyncHandler::new(h)?; // makes the fd nonblocking
//! let mut requests = handler.requests();
//! while let Some(req) = requests.recv().await {
//!     let req = req?;
//!     let (handler, image) = (handler.clone(), image.clone());
//!     tokio::spawn(async move {
//!         let page = image[req.offset as usize..][..4096].to_vec(); // or read it from disk
//!         handler.copy(req.offset, page, FillOptions::new()).await
//!     });
//! }
//! # Ok(()) }
//! ```
//!
//! The fills ([`copy`](AsyncHandler::copy), [`zeropage`](AsyncHandler::zeropage)) run on
//! tokio's blocking pool: a `COPY` whose source faults (a page of another lazy file, a
//! swapped-out page) would otherwise stall a reactor thread. [`RequestStream`] implements
//! `futures_core::Stream` with the `futures-core` feature.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use ::tokio::io::unix::AsyncFd;
use ::tokio::io::Interest;

use crate::{Error, FillOptions, Handler, Request, RequestBuf};

/// A handler served from tokio. Cloning shares it (fills may run concurrently: each page is
/// filled atomically and never twice).
#[derive(Debug, Clone)]
pub struct AsyncHandler {
    fd: Arc<AsyncFd<Handler>>,
}

impl AsyncHandler {
    /// Registers `handler` with the current tokio runtime's reactor, after making its fd
    /// nonblocking (every dup of it sees that). Outside a runtime it fails with an error of
    /// kind `Other` (tokio would panic).
    pub fn new(handler: Handler) -> io::Result<Self> {
        if ::tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other("sealmem::tokio::AsyncHandler::new outside a tokio runtime"));
        }
        handler.set_nonblocking(true)?;
        // SAFETY: the `AsyncFd` owns the `Handler`, which owns its fd: the fd stays open and
        // the same until the `AsyncFd` is dropped, and `as_raw_fd` always returns it.
        let fd = unsafe { AsyncFd::register_with_interest(handler, Interest::READABLE) }.map_err(io::Error::from)?;
        Ok(Self { fd: Arc::new(fd) })
    }

    /// The handler, for the synchronous calls (`wake`, `fill_end`, `poison`, `fdinfo`...).
    pub fn handler(&self) -> &Handler {
        self.fd.get_ref()
    }

    /// Waits for requests and reads them into `buf`; `Ok(0)` once the handler is no longer
    /// needed. Allocates nothing.
    pub async fn read(&self, buf: &mut RequestBuf) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// Polls for requests: `Ready(Ok(n))` with `n` requests in `buf` (0: the handler is no
    /// longer needed), `Pending` with a wake-up registered for the next `EPOLLIN`/`EPOLLHUP`.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut RequestBuf) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().read(buf)) {
                Ok(r) => return Poll::Ready(r),
                // EAGAIN: readiness cleared; poll again to register the waker.
                Err(_would_block) => continue,
            }
        }
    }

    /// A stream of requests, read a batch at a time into one [`RequestBuf`]. It ends when the
    /// handler is no longer needed; an error is yielded once and ends it.
    pub fn requests(&self) -> RequestStream {
        RequestStream { handler: self.clone(), buf: RequestBuf::new(), next: 0, done: false }
    }

    /// Fills the holes of `[offset, offset + src.len())` from `src` on tokio's blocking pool;
    /// see [`Handler::copy`].
    pub async fn copy(&self, offset: u64, src: impl AsRef<[u8]> + Send + 'static, opts: FillOptions) -> Result<u64, Error> {
        let h = self.fd.clone();
        blocking(move || h.get_ref().copy(offset, src.as_ref(), opts)).await
    }

    /// Fills the holes of a page-aligned range with zeros on tokio's blocking pool; see
    /// [`Handler::zeropage`].
    pub async fn zeropage(&self, offset: u64, len: u64, opts: FillOptions) -> Result<u64, Error> {
        let h = self.fd.clone();
        blocking(move || h.get_ref().zeropage(offset, len, opts)).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    match ::tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::os(io::Error::new(io::ErrorKind::Interrupted, "the runtime is shutting down"))),
    }
}

/// The requests of an [`AsyncHandler`]: [`recv`](Self::recv) (or `futures_core::Stream`
/// with the `futures-core` feature).
#[derive(Debug)]
pub struct RequestStream {
    handler: AsyncHandler,
    buf: RequestBuf,
    next: usize,
    done: bool,
}

impl RequestStream {
    /// Polls for the next request: `Ready(None)` once the handler is no longer needed.
    pub fn poll_next_request(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Request>>> {
        if let Some(r) = self.buf.get(self.next) {
            self.next += 1;
            return Poll::Ready(Some(Ok(r)));
        }
        if self.done {
            return Poll::Ready(None);
        }
        self.next = 0;
        match ready!(self.handler.poll_read(cx, &mut self.buf)) {
            Ok(0) => {
                self.done = true;
                Poll::Ready(None)
            }
            Ok(_) => {
                self.next = 1;
                Poll::Ready(self.buf.get(0).map(Ok))
            }
            Err(e) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    /// The next request; `None` once the handler is no longer needed.
    pub fn recv(&mut self) -> impl Future<Output = Option<io::Result<Request>>> + '_ {
        std::future::poll_fn(move |cx| self.poll_next_request(cx))
    }
}

#[cfg(feature = "futures-core")]
impl futures_core::Stream for RequestStream {
    type Item = io::Result<Request>;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_request(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::{FromRawFd, OwnedFd};

    fn pipe_handler() -> (Handler, std::fs::File) {
        let mut fds = [0; 2];
        // SAFETY: a plain syscall filling `fds`.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: two new fds nothing else owns.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        (Handler { fd: r }, std::fs::File::from(w))
    }

    fn send(w: &mut std::fs::File, offset: u64) {
        let mut b = offset.to_ne_bytes().to_vec();
        b.extend_from_slice(&2u32.to_ne_bytes());
        b.extend_from_slice(&9u32.to_ne_bytes());
        w.write_all(&b).unwrap();
    }

    /// The stream waits in the reactor (not in read(2)), yields requests as they come, and
    /// ends at EOF (the module's "no longer needed").
    #[test]
    fn stream_waits_yields_and_ends() {
        let rt = ::tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (h, mut w) = pipe_handler();
            let ah = AsyncHandler::new(h).unwrap();
            let (h2, _w2) = pipe_handler();
            let e = std::thread::spawn(move || AsyncHandler::new(h2).map(drop)).join().unwrap();
            assert_eq!(e.unwrap_err().kind(), io::ErrorKind::Other);
            assert!(ah.handler().is_nonblocking().unwrap());
            let mut s = ah.requests();
            // Nothing pending: the stream is pending, not failing.
            let t = ::tokio::time::timeout(std::time::Duration::from_millis(20), s.recv()).await;
            assert!(t.is_err(), "{t:?}");
            send(&mut w, 4096);
            send(&mut w, 8192);
            let deadline = std::time::Duration::from_secs(10);
            let r = ::tokio::time::timeout(deadline, s.recv()).await.unwrap().unwrap().unwrap();
            assert_eq!((r.offset, r.fault, r.tid), (4096, true, 9));
            let r = ::tokio::time::timeout(deadline, s.recv()).await.unwrap().unwrap().unwrap();
            assert_eq!(r.offset, 8192);
            drop(w);
            assert!(::tokio::time::timeout(deadline, s.recv()).await.unwrap().is_none());
            assert!(s.recv().await.is_none());
        });
    }
}
