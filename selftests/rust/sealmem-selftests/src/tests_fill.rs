//! Lazy fill through the safe wrapper: the handler API, requests, fills, and the lazy sealed
//! image served to consumer processes.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use sealmem::{FillOptions, Handler, HandlerOptions, SealFile, Seals};

use crate::harness::{expect_errno, Context, Outcome, Test, TestResult};
use crate::{ensure, ensure_eq};

const PS: u64 = 4096;

pub const TESTS: &[Test] = &[
    ("fill_handler_thread_serves_faults", handler_thread_serves_faults),
    ("fill_copy_eexist_and_skip", copy_eexist_and_skip),
    ("fill_zeropage_poison", zeropage_poison),
    ("fill_epoll_nonblocking_handler", epoll_nonblocking_handler),
    ("fill_end_and_enable_errors", fill_end_and_enable_errors),
    ("fill_lazy_sealed_image", lazy_sealed_image),
    ("map_try_read_efault_instead_of_sigbus", map_try_read_efault_instead_of_sigbus),
    ("fill_read_requests_empty_buffer_einval", read_requests_empty_buffer_einval),
    ("fill_requests_nonblocking_wouldblock_goes_on", requests_nonblocking_wouldblock_goes_on),
    ("fill_requests_retries_eintr", requests_retries_eintr),
];

/// Page-aligned source data.
struct Source {
    map: sealmem::MappingMut,
    bytes: Vec<u8>,
}

fn source(pages: u64, seed: u8) -> Result<Source, Outcome> {
    // An anonymous page-aligned buffer: a private mapping of a scratch sealmem file.
    let scratch = SealFile::create().ctx("scratch")?;
    scratch.set_size(pages * PS).ctx("scratch size")?;
    let map = scratch.map_private((pages * PS) as usize).ctx("scratch map")?;
    let bytes: Vec<u8> = (0..pages * PS).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed ^ (i >> 12) as u8)).collect();
    map.write(0, &bytes);
    Ok(Source { map, bytes })
}

impl Source {
    fn page(&self, offset: u64) -> &[u8] {
        // SAFETY: the private mapping is ours, live, and `offset + PS` lies within it (callers
        // pass offsets of pages of the file it mirrors); nothing else writes to it.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(offset as usize), PS as usize) }
    }
}

/// Serves every request from `src` on a thread until the handler is no longer needed or
/// `stop` is set; counts requests per page.
fn spawn_server(h: Arc<Handler>, src: Arc<Source>, counts: Arc<Vec<AtomicUsize>>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let mut pfd = libc::pollfd { fd: h.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
                continue;
            }
            if pfd.revents & libc::POLLHUP != 0 {
                return;
            }
            let mut reqs = [sealmem::Request { offset: 0, huge: false, write: false, fault: false, tid: 0 }; 8];
            let Ok(n) = h.read_requests(&mut reqs) else { continue };
            for r in &reqs[..n] {
                if let Some(c) = counts.get((r.offset / PS) as usize) {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                let _ = h.copy(r.offset, src.page(r.offset), FillOptions::new());
            }
        }
    })
}

fn handler_thread_serves_faults() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(8 * PS).ctx("size")?;
    let h = f.enable_fill(HandlerOptions::new()).ctx("enable_fill")?;
    let src = Arc::new(source(8, 1)?);
    let view = f.view().ctx("view")?;
    let map = view.map_shared((8 * PS) as usize).ctx("map")?;
    let counts = Arc::new((0..8).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let stop = Arc::new(AtomicBool::new(false));
    let h = Arc::new(h);
    let t = spawn_server(h.clone(), src.clone(), counts.clone(), stop.clone());
    let mut got = vec![0u8; (8 * PS) as usize];
    map.read(0, &mut got);
    stop.store(true, Ordering::Relaxed);
    t.join().map_err(|_| Outcome::Fail("server panicked".into()))?;
    ensure!(got == src.bytes, "mapped bytes differ from the source");
    ensure!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1), "each page requested exactly once");
    Ok(())
}

fn copy_eexist_and_skip() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(4 * PS).ctx("size")?;
    let h = f.enable_fill(HandlerOptions::new()).ctx("enable_fill")?;
    let src = source(4, 2)?;
    // SAFETY: the whole 4-page source mapping is live.
    let all = unsafe { std::slice::from_raw_parts(src.map.as_ptr(), (4 * PS) as usize) };
    ensure_eq!(h.copy(PS, &all[PS as usize..(2 * PS) as usize], FillOptions::new()).ctx("copy page 1")?, PS);
    match h.copy(0, all, FillOptions::new()) {
        Err(e) => {
            ensure_eq!(e.raw_os_error(), Some(libc::EEXIST));
            ensure!(matches!(e, sealmem::Error::Exists { done: PS }), "{e:?}");
        }
        Ok(n) => return Err(Outcome::Fail(format!("copy over a present page succeeded ({n})"))),
    }
    let n = h.copy(0, all, FillOptions::new().skip_existing(true)).ctx("skip existing")?;
    ensure_eq!(n, 4 * PS);
    let mut back = vec![0u8; (4 * PS) as usize];
    f.read_at(&mut back, 0).ctx("read")?;
    ensure!(back == src.bytes, "content after fills");
    Ok(())
}

fn zeropage_poison() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(4 * PS).ctx("size")?;
    let h = f.enable_fill(HandlerOptions::new()).ctx("enable_fill")?;
    ensure_eq!(h.zeropage(0, PS, FillOptions::new()).ctx("zeropage")?, PS);
    ensure_eq!(h.poison(PS, PS, FillOptions::new()).ctx("poison")?, PS);
    let mut b = [1u8; 8];
    ensure_eq!(f.read_at(&mut b, 0).ctx("read zero page")?, 8);
    ensure_eq!(b, [0u8; 8]);
    expect_errno(f.read_at(&mut b, PS), libc::EIO, "read of a poisoned page")?;
    // A fault on the poisoned page raises SIGBUS (in a child, which dies of it).
    let map = f.map_shared((4 * PS) as usize).ctx("map")?;
    // SAFETY: the child only touches memory and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: reading the mapping; the SIGBUS is the point.
        unsafe { std::ptr::read_volatile(map.as_ptr().add(PS as usize)) };
        // SAFETY: plain exit.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    ensure_eq!(crate::harness::ended(status), crate::harness::Ended::Killed(libc::SIGBUS));
    Ok(())
}

fn epoll_nonblocking_handler() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(2 * PS).ctx("size")?;
    let h = f.enable_fill(HandlerOptions::new().nonblocking(true)).ctx("enable_fill")?;
    let mut reqs = [sealmem::Request { offset: 0, huge: false, write: false, fault: false, tid: 0 }; 4];
    expect_errno(h.read_requests(&mut reqs), libc::EAGAIN, "empty nonblocking read")?;
    // SAFETY: plain syscalls on fds we own.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    ensure!(ep >= 0, "epoll_create1");
    let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 7 };
    // SAFETY: valid epoll fd, handler fd and event.
    ensure_eq!(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, h.as_raw_fd(), &mut ev) }, 0);
    let reader = std::thread::spawn({
        let view = f.view().ctx("view")?;
        move || {
            let mut b = [0u8; 4];
            view.read_at(&mut b, PS + 4).map(|_| b)
        }
    });
    let mut out = [libc::epoll_event { events: 0, u64: 0 }; 1];
    // SAFETY: valid epoll fd and buffer.
    let n = unsafe { libc::epoll_wait(ep, out.as_mut_ptr(), 1, 5000) };
    ensure_eq!(n, 1);
    ensure!(out[0].events & libc::EPOLLIN as u32 != 0, "EPOLLIN");
    ensure_eq!(h.read_requests(&mut reqs).ctx("read request")?, 1);
    ensure_eq!(reqs[0].offset, PS);
    ensure!(!reqs[0].fault && !reqs[0].write, "a read() request");
    let src = source(2, 3)?;
    h.copy(PS, src.page(PS), FillOptions::new()).ctx("copy")?;
    let b = reader.join().map_err(|_| Outcome::Fail("reader panicked".into()))?.ctx("read")?;
    ensure_eq!(&b[..], &src.bytes[(PS + 4) as usize..(PS + 8) as usize]);
    // SAFETY: closing our epoll fd.
    unsafe { libc::close(ep) };
    Ok(())
}

fn fill_end_and_enable_errors() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(2 * PS).ctx("size")?;
    let h = f.enable_fill(HandlerOptions::new()).ctx("enable_fill")?;
    expect_errno(f.enable_fill(HandlerOptions::new()), libc::EBUSY, "second handler")?;
    let view = f.view().ctx("view")?;
    expect_errno(view.enable_fill(HandlerOptions::new()), libc::EPERM, "handler from a VIEW")?;
    h.fill_end().ctx("fill_end")?;
    let mut b = [9u8; 4];
    ensure_eq!(f.read_at(&mut b, 0).ctx("read after FILL_END")?, 4);
    ensure_eq!(b, [0u8; 4]);
    ensure!(h.requests().next().is_none(), "an ended handler has no requests");
    let sealed = SealFile::create().ctx("open")?;
    sealed.add_seals(Seals::WRITE).ctx("seal")?;
    expect_errno(sealed.enable_fill(HandlerOptions::new()), libc::EPERM, "write-sealed, not lazy")?;
    Ok(())
}

/// The product story: producer, lazy fill, write seal, VIEW fds, three consumer processes.
fn lazy_sealed_image() -> TestResult {
    const PAGES: u64 = 32;
    let f = SealFile::create().ctx("open")?;
    f.set_name("image").ctx("name")?;
    f.set_size(PAGES * PS).ctx("size")?;
    let h = Arc::new(f.enable_fill(HandlerOptions::new()).ctx("enable_fill")?);
    f.add_seals(Seals::WRITE | Seals::SHRINK | Seals::GROW | Seals::SEAL).ctx("seal")?;
    let view = f.view_with(sealmem::ViewOptions::new().cloexec(false)).ctx("view")?;
    drop(f);
    let src = Arc::new(source(PAGES, 4)?);
    let counts = Arc::new((0..PAGES).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let stop = Arc::new(AtomicBool::new(false));
    let t = spawn_server(h.clone(), src.clone(), counts.clone(), stop.clone());
    let mut pids = Vec::new();
    for order in 0..3u64 {
        // SAFETY: the child maps, compares and exits without touching shared Rust state.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let ok = (|| -> Option<bool> {
                let m = view.map_shared((PAGES * PS) as usize).ok()?;
                let mut page = vec![0u8; PS as usize];
                for k in 0..PAGES {
                    let j = match order { 0 => k, 1 => PAGES - 1 - k, _ => (k * 5) % PAGES };
                    m.read((j * PS) as usize, &mut page);
                    if page[..] != src.bytes[(j * PS) as usize..((j + 1) * PS) as usize] {
                        return Some(false);
                    }
                }
                Some(true)
            })();
            // SAFETY: plain exit.
            unsafe { libc::_exit(if ok == Some(true) { 0 } else { 1 }) };
        }
        pids.push(pid);
    }
    for pid in pids {
        let mut status = 0;
        // SAFETY: waiting for our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        ensure!(crate::harness::ended(status) == crate::harness::Ended::Exited(0), "consumer {pid} status {status:#x}");
    }
    stop.store(true, Ordering::Relaxed);
    t.join().map_err(|_| Outcome::Fail("server panicked".into()))?;
    ensure!(counts.iter().all(|c| c.load(Ordering::Relaxed) <= 1), "a page was requested twice");
    ensure!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1), "every page was requested once");
    let err = h.copy(0, src.page(0), FillOptions::new());
    ensure!(err.as_ref().is_err_and(|e| matches!(e, sealmem::Error::Exists { done: 0 })), "a filled byte can change");
    Ok(())
}

/// Where `Mapping::read`/`MappingMut::write` raise SIGBUS (poisoned page, lazy hole without a
/// handler, past EOF after a shrink), `try_read`/`try_write` fail with EFAULT and the process
/// lives on; a lazy hole with a live handler still waits for its fill.
fn map_try_read_efault_instead_of_sigbus() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(4 * PS).ctx("size")?;
    let h = f.enable_fill(HandlerOptions::new()).ctx("enable_fill")?;
    h.zeropage(0, PS, FillOptions::new()).ctx("zeropage")?;
    h.poison(PS, PS, FillOptions::new()).ctx("poison")?;
    let map = f.map_shared_mut((4 * PS) as usize).ctx("map")?;
    let mut b = [9u8; 8];
    map.try_read(0, &mut b).ctx("try_read of a zero page")?;
    ensure_eq!(b, [0u8; 8]);
    expect_errno(map.try_read(PS as usize, &mut b), libc::EFAULT, "try_read of a poisoned page")?;
    expect_errno(map.try_write(PS as usize, b"x"), libc::EFAULT, "try_write of a poisoned page")?;
    expect_errno(map.try_read(PS as usize - 4, &mut b), libc::EFAULT, "try_read into a poisoned page")?;
    // A lazy hole with a live handler: try_read waits for the fill like read.
    let src = Arc::new(source(4, 5)?);
    let h = Arc::new(h);
    let server = std::thread::spawn({
        let (h, src) = (h.clone(), src.clone());
        move || -> std::io::Result<u64> {
            let mut reqs = [sealmem::Request { offset: 0, huge: false, write: false, fault: false, tid: 0 }; 1];
            h.read_requests(&mut reqs)?;
            h.copy(reqs[0].offset, src.page(reqs[0].offset), FillOptions::new()).map_err(std::io::Error::from)?;
            Ok(reqs[0].offset)
        }
    });
    map.try_read((2 * PS) as usize, &mut b).ctx("try_read of a lazy hole")?;
    let served = server.join().map_err(|_| Outcome::Fail("server panicked".into()))?.ctx("serve")?;
    ensure_eq!(served, 2 * PS);
    ensure_eq!(&b[..], &src.bytes[(2 * PS) as usize..(2 * PS + 8) as usize]);
    // The handler gone: the last hole would raise SIGBUS.
    drop(Arc::into_inner(h));
    expect_errno(map.try_read((3 * PS) as usize, &mut b), libc::EFAULT, "try_read, handler gone")?;
    expect_errno(map.try_write((3 * PS) as usize, b"x"), libc::EFAULT, "try_write, handler gone")?;
    // Past EOF after a shrink.
    f.set_size(0).ctx("shrink")?;
    expect_errno(map.try_read(0, &mut b), libc::EFAULT, "try_read past EOF")?;
    expect_errno(map.try_write(0, b"x"), libc::EFAULT, "try_write past EOF")?;
    Ok(())
}

const NO_REQUEST: sealmem::Request = sealmem::Request { offset: 0, huge: false, write: false, fault: false, tid: 0 };

/// Waits up to 5 s for POLLIN on the handler.
fn wait_pollin(h: &Handler) -> TestResult {
    let mut pfd = libc::pollfd { fd: h.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, 5000) };
    ensure!(n == 1 && pfd.revents & libc::POLLIN != 0, "no POLLIN: {n} {:#x}", pfd.revents);
    Ok(())
}

/// `read_requests(&mut [])` is EINVAL without a read: the pending request stays queued (a
/// read would have taken it and returned 0, "no longer needed").
fn read_requests_empty_buffer_einval() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(2 * PS).ctx("size")?;
    let h = f.enable_fill(HandlerOptions::new()).ctx("enable_fill")?;
    let view = f.view().ctx("view")?;
    let reader = std::thread::spawn(move || {
        let mut b = [0u8; 4];
        view.read_at(&mut b, PS).map(|_| b)
    });
    wait_pollin(&h)?;
    expect_errno(h.read_requests(&mut []), libc::EINVAL, "empty request buffer")?;
    let mut one = [NO_REQUEST; 1];
    ensure_eq!(h.read_requests(&mut one).ctx("read request")?, 1);
    ensure_eq!(one[0].offset, PS);
    h.zeropage(PS, PS, FillOptions::new()).ctx("zeropage")?;
    let b = reader.join().map_err(|_| Outcome::Fail("reader panicked".into()))?.ctx("read")?;
    ensure_eq!(b, [0u8; 4]);
    Ok(())
}

/// On a nonblocking handler the iterator yields WouldBlock and goes on: the same iterator
/// then yields the request, and ends once the file has no fd or mapping left.
fn requests_nonblocking_wouldblock_goes_on() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(2 * PS).ctx("size")?;
    let h = f.enable_fill(HandlerOptions::new().nonblocking(true)).ctx("enable_fill")?;
    let mut reqs = h.requests();
    match reqs.next() {
        Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => return Err(Outcome::Fail(format!("expected WouldBlock, got {other:?}"))),
    }
    let view = f.view().ctx("view")?;
    drop(f);
    let reader = std::thread::spawn(move || {
        let mut b = [0u8; 4];
        view.read_at(&mut b, 0).map(|_| b)
    });
    let req = loop {
        match reqs.next() {
            Some(Ok(r)) => break r,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => wait_pollin(&h)?,
            other => return Err(Outcome::Fail(format!("expected a request, got {other:?}"))),
        }
    };
    ensure_eq!(req.offset, 0);
    h.zeropage(0, PS, FillOptions::new()).ctx("zeropage")?;
    reader.join().map_err(|_| Outcome::Fail("reader panicked".into()))?.ctx("read")?;
    // The reader thread dropped the last fd: the handler is no longer needed.
    for _ in 0..100 {
        match reqs.next() {
            None => return Ok(()),
            Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return Err(Outcome::Fail(format!("expected the end, got {other:?}"))),
        }
    }
    Err(Outcome::Fail("the iterator did not end after the last fd closed".into()))
}

/// The thread's `pthread_t` (std's raw type is an integer; musl's libc has a pointer).
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
fn pthread_of<T>(t: &std::thread::JoinHandle<T>) -> libc::pthread_t {
    use std::os::unix::thread::JoinHandleExt;
    t.as_pthread_t() as libc::pthread_t
}

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// Waits (deadline 10 s) until thread `tid` of this process sleeps in `read(2)`: state `S`
/// and syscall number 0 (x86_64's read) in `/proc/self/task/TID/{stat,syscall}`. A handshake
/// with the kernel's view of the thread, instead of a sleep.
fn wait_blocked_in_read(tid: i32) -> TestResult {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next()).unwrap_or("").to_string();
        let sc = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap_or_default();
        if state == "S" && sc.split_whitespace().next() == Some(libc::SYS_read.to_string().as_str()) {
            return Ok(());
        }
        ensure!(std::time::Instant::now() < deadline, "thread {tid} never blocked in read: {state} {sc}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A signal whose handler has no SA_RESTART makes the handler fd's read fail with EINTR;
/// the iterator retries and yields the request that comes later. Each signal is sent once
/// the kernel shows the server blocked in read, and the next only after the handler ran.
fn requests_retries_eintr() -> TestResult {
    // SAFETY: installs a handler that only bumps an atomic counter.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        ensure_eq!(libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()), 0);
    }
    let f = SealFile::create().ctx("open")?;
    f.set_size(2 * PS).ctx("size")?;
    let h = Arc::new(f.enable_fill(HandlerOptions::new()).ctx("enable_fill")?);
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn({
        let h = h.clone();
        move || {
            // SAFETY: a plain syscall.
            let _ = tx.send(unsafe { libc::gettid() });
            h.requests().next().map(|r| r.map(|r| r.offset).map_err(|e| e.to_string()))
        }
    });
    let tid = rx.recv_timeout(std::time::Duration::from_secs(10)).map_err(|_| Outcome::Fail("no tid".into()))?;
    let before = SIGNALS.load(Ordering::SeqCst);
    for k in 1..=3 {
        wait_blocked_in_read(tid)?;
        // SAFETY: the thread is not joined yet (it waits for the request made below).
        ensure_eq!(unsafe { libc::pthread_kill(pthread_of(&server), libc::SIGUSR2) }, 0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while SIGNALS.load(Ordering::SeqCst) < before + k {
            ensure!(std::time::Instant::now() < deadline, "signal {k} not handled");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    // Back in read after the third signal: the iterator did not end.
    wait_blocked_in_read(tid)?;
    ensure!(!server.is_finished(), "the iterator ended on a signal");
    let view = f.view().ctx("view")?;
    let reader = std::thread::spawn(move || {
        let mut b = [0u8; 4];
        view.read_at(&mut b, PS).map(|_| b)
    });
    let got = server.join().map_err(|_| Outcome::Fail("server panicked".into()))?;
    ensure_eq!(got, Some(Ok(PS)));
    h.zeropage(PS, PS, FillOptions::new()).ctx("zeropage")?;
    reader.join().map_err(|_| Outcome::Fail("reader panicked".into()))?.ctx("read")?;
    Ok(())
}
