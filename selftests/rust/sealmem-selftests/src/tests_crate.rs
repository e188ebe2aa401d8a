//! The crate's typed API against the module: `sealmem::Error`'s variants, `MapOptions`,
//! `RequestBuf`/`try_read`, and record and replay (`Recorder`, `Prefetcher`).

use std::sync::Arc;

use sealmem::{Error, FillOptions, HandlerOptions, MapOptions, Prefetcher, Recorder, Recording, RequestBuf, SealFile, Seals};

use crate::harness::{expect_errno, Context, Outcome, Test, TestResult};
use crate::{ensure, ensure_eq};

const PS: u64 = 4096;

pub const TESTS: &[Test] = &[
    ("crate_fill_errors_are_typed", fill_errors_are_typed),
    ("crate_seal_errors_are_typed", seal_errors_are_typed),
    ("crate_map_options_offset_and_private", map_options_offset_and_private),
    ("crate_try_read_none_then_requests", try_read_none_then_requests),
    ("crate_record_then_prefetch_replays", record_then_prefetch_replays),
];

fn page(seed: u8, offset: u64) -> Vec<u8> {
    (0..PS).map(|i| ((offset + i) as u8).wrapping_mul(7) ^ seed ^ ((offset >> 12) as u8)).collect()
}

/// Exists with the partial progress, PastEof (at and across EOF, with the bytes up to EOF),
/// InvalidRange before any ioctl, Detached after FILL_END: each with the uapi's errno.
fn fill_errors_are_typed() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(3 * PS).ctx("size")?;
    let h = f.enable_fill(HandlerOptions::new()).ctx("enable_fill")?;
    let src = [page(1, 0), page(1, PS), page(1, 2 * PS), page(1, 3 * PS)].concat();
    ensure_eq!(h.copy(PS, &src[PS as usize..(2 * PS) as usize], FillOptions::new()).ctx("copy page 1")?, PS);
    match h.copy(0, &src[..(3 * PS) as usize], FillOptions::new()) {
        Err(e @ Error::Exists { done: PS }) => ensure_eq!(e.raw_os_error(), Some(libc::EEXIST)),
        other => return Err(Outcome::Fail(format!("expected Exists after one page, got {other:?}"))),
    }
    // Crossing EOF: pages 2 (filled) and 3 (past EOF).
    match h.copy(2 * PS, &src[(2 * PS) as usize..], FillOptions::new()) {
        Err(e @ Error::PastEof { done: PS }) => ensure_eq!(e.raw_os_error(), Some(libc::EINVAL)),
        other => return Err(Outcome::Fail(format!("expected PastEof after one page, got {other:?}"))),
    }
    match h.zeropage(3 * PS, PS, FillOptions::new()) {
        Err(Error::PastEof { done: 0 }) => {}
        other => return Err(Outcome::Fail(format!("expected PastEof at EOF, got {other:?}"))),
    }
    for (o, l) in [(1, PS), (0, 0), (0, PS + 1)] {
        match h.zeropage(o, l, FillOptions::new()) {
            Err(Error::InvalidRange { offset, len }) if (offset, len) == (o, l) => {}
            other => return Err(Outcome::Fail(format!("{o}+{l}: expected InvalidRange, got {other:?}"))),
        }
    }
    ensure_eq!(h.copy(0, &src[..(3 * PS) as usize], FillOptions::new().skip_existing(true)).ctx("skip")?, 3 * PS);
    let mut b = vec![0u8; (3 * PS) as usize];
    f.read_at(&mut b, 0).ctx("read")?;
    ensure!(b == src[..(3 * PS) as usize], "bytes differ");
    h.fill_end().ctx("fill_end")?;
    ensure!(!h.is_attached().ctx("fdinfo")?, "attached after FILL_END");
    match h.zeropage(0, PS, FillOptions::new()) {
        Err(e @ Error::Detached { done: 0 }) => ensure_eq!(e.raw_os_error(), Some(libc::EINVAL)),
        other => return Err(Outcome::Fail(format!("expected Detached, got {other:?}"))),
    }
    ensure!(matches!(h.fill_end(), Err(Error::Detached { .. })), "second FILL_END");
    expect_errno(h.wake(0, PS), libc::EINVAL, "wake after FILL_END")?;
    Ok(())
}

/// EPERM from seals is Sealed with the file's seals; EPERM/EBADF of a VIEW stays Os.
fn seal_errors_are_typed() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(2 * PS).ctx("size")?;
    f.add_seals(Seals::GROW | Seals::WRITE).ctx("seal")?;
    match f.set_size(4 * PS) {
        Err(Error::Sealed { seals }) if seals == Seals::GROW | Seals::WRITE => {}
        other => return Err(Outcome::Fail(format!("grow under GROW: {other:?}"))),
    }
    match f.punch_hole(0, PS) {
        Err(Error::Sealed { seals }) if seals.contains(Seals::WRITE) => {}
        other => return Err(Outcome::Fail(format!("punch under WRITE: {other:?}"))),
    }
    match f.enable_fill(HandlerOptions::new()) {
        Err(e @ Error::Sealed { .. }) => ensure_eq!(e.raw_os_error(), Some(libc::EPERM)),
        other => return Err(Outcome::Fail(format!("FILL_ENABLE under WRITE: {:?}", other.map(drop)))),
    }
    f.add_seals(Seals::SEAL).ctx("SEAL")?;
    ensure!(matches!(f.add_seals(Seals::EXEC), Err(Error::Sealed { .. })), "add after SEAL");
    let g = SealFile::create().ctx("open")?;
    let v = g.view().ctx("view")?;
    match v.enable_fill(HandlerOptions::new()) {
        Err(Error::Os { done: 0, error }) if error.raw_os_error() == Some(libc::EPERM) => {}
        other => return Err(Outcome::Fail(format!("FILL_ENABLE on a VIEW: {:?}", other.map(drop)))),
    }
    match v.set_size(PS) {
        Err(Error::Os { error, .. }) if error.raw_os_error() == Some(libc::EBADF) => {}
        other => return Err(Outcome::Fail(format!("set_size on a VIEW: {other:?}"))),
    }
    Ok(())
}

/// A mapping at an offset sees that part of the file; a private one keeps its writes.
fn map_options_offset_and_private() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(4 * PS).ctx("size")?;
    f.write_at(b"page three", 3 * PS).ctx("write")?;
    let m = f.map(&MapOptions::new(PS as usize).offset(3 * PS)).ctx("map at offset")?;
    let mut b = [0u8; 10];
    m.read(0, &mut b);
    ensure_eq!(&b, b"page three");
    expect_errno(f.map(&MapOptions::new(PS as usize).offset(100)), libc::EINVAL, "unaligned offset")?;
    expect_errno(f.map(&MapOptions::new(0)), libc::EINVAL, "length 0")?;
    let p = f.map_mut(&MapOptions::new(PS as usize).offset(3 * PS).private()).ctx("private map")?;
    p.write(0, b"PRIVATE");
    m.read(0, &mut b);
    ensure_eq!(&b, b"page three");
    let w = f.map_mut(&MapOptions::new(2 * PS as usize).offset(2 * PS)).ctx("shared map")?;
    w.write(PS as usize, b"PAGE");
    m.read(0, &mut b);
    ensure_eq!(&b, b"PAGE three");
    let v = f.view().ctx("view")?;
    expect_errno(v.map_mut(&MapOptions::new(PS as usize)), libc::EACCES, "writable shared map of a VIEW")?;
    Ok(())
}

/// On a blocking handler, try_read returns None (never blocks) while nothing is pending,
/// the request once a reader waits, and Some(0) once the file is gone.
fn try_read_none_then_requests() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(2 * PS).ctx("size")?;
    let h = f.enable_fill(HandlerOptions::new()).ctx("enable_fill")?;
    let mut buf = RequestBuf::new();
    ensure_eq!(h.try_read(&mut buf).ctx("try_read")?, None);
    expect_errno(h.try_read(&mut RequestBuf::with_capacity(0)), libc::EINVAL, "empty RequestBuf")?;
    let view = f.view().ctx("view")?;
    drop(f);
    let reader = std::thread::spawn(move || {
        let mut b = [0u8; 4];
        view.read_at(&mut b, PS).map(|_| b)
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let n = loop {
        let mut pfd = libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&h), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 100) };
        if let Some(n) = h.try_read(&mut buf).ctx("try_read")? {
            break n;
        }
        ensure!(std::time::Instant::now() < deadline, "no request within 10 s");
    };
    ensure_eq!(n, 1);
    ensure_eq!(buf.get(0).map(|r| (r.offset, r.fault, r.write)), Some((PS, false, false)));
    h.copy(PS, b"fill".repeat(1024).as_slice(), FillOptions::new()).ctx("copy")?;
    let b = reader.join().map_err(|_| Outcome::Fail("reader panicked".into()))?.ctx("read")?;
    ensure_eq!(&b, b"fill");
    ensure_eq!(h.try_read(&mut buf).ctx("try_read at the end")?, Some(0));
    Ok(())
}

/// A first run served on demand records the first-touch order; the second run's Prefetcher
/// fills the recorded pages (SKIP_EXISTING) while the same reads run, and every byte is
/// right. The reads start after the replay finished here, so none reaches the handler.
fn record_then_prefetch_replays() -> TestResult {
    const PAGES: u64 = 64;
    let order: Vec<u64> = (0..16).map(|i| (i * 37 + 5) % PAGES).collect();
    let check = |f: &SealFile| -> TestResult {
        let mut b = vec![0u8; PS as usize];
        for &p in &order {
            f.read_at(&mut b, p * PS).ctx("read")?;
            ensure!(b == page(9, p * PS), "page {p} differs");
        }
        Ok(())
    };
    // First run: record.
    let f = SealFile::create().ctx("open")?;
    f.set_size(PAGES * PS).ctx("size")?;
    let h = f.enable_fill(HandlerOptions::new()).ctx("enable_fill")?;
    let view = f.view().ctx("view")?;
    drop(f);
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || -> Result<Recording, String> {
        let mut rec = Recorder::new();
        for req in h.requests() {
            let req = req.map_err(|e| e.to_string())?;
            rec.record(&req);
            h.copy(req.offset, &page(9, req.offset), FillOptions::new()).map_err(|e| e.to_string())?;
        }
        let _ = tx.send(());
        Ok(rec.recording())
    });
    check(&view)?;
    drop(view);
    rx.recv_timeout(std::time::Duration::from_secs(10)).map_err(|_| Outcome::Fail("server did not end".into()))?;
    let rec = server.join().map_err(|_| Outcome::Fail("server panicked".into()))?.map_err(Outcome::Fail)?;
    ensure_eq!(rec.offsets(), order.iter().map(|p| p * PS).collect::<Vec<_>>().as_slice());
    let path = std::env::temp_dir().join("sealmem-selftest.rec");
    rec.save(&path).ctx("save")?;
    let rec = Recording::load(&path).ctx("load")?;
    let _ = std::fs::remove_file(&path);
    // Second run: replay, then read.
    let f = SealFile::create().ctx("open")?;
    f.set_size(PAGES * PS).ctx("size")?;
    let h = Arc::new(f.enable_fill(HandlerOptions::new()).ctx("enable_fill")?);
    let view = f.view().ctx("view")?;
    drop(f);
    let prefetcher = Prefetcher::new(rec)
        .spawn(h.clone(), |off, buf: &mut [u8]| {
            buf.copy_from_slice(&page(9, off));
            Ok(())
        })
        .ctx("spawn")?;
    // Wait until the replay is done: the file's fdinfo counts 16 resident pages.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !view.fdinfo().ctx("fdinfo")?.lines().any(|l| l == "pages:\t16") {
        ensure!(std::time::Instant::now() < deadline, "the replay did not fill 16 pages: {}", view.fdinfo().unwrap_or_default());
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    check(&view)?;
    drop(view);
    let stats = prefetcher.join().map_err(|_| Outcome::Fail("prefetcher panicked".into()))?.ctx("prefetcher")?;
    ensure_eq!((stats.demand, stats.prefetched, stats.prefetch_failed), (0, 16, 0));
    Ok(())
}
