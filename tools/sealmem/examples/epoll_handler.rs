//! A lazy file served from an epoll loop, without an async runtime: a nonblocking handler,
//! `EPOLLIN` for requests, `EPOLLHUP` when the file is gone, and one reusable
//! [`RequestBuf`](sealmem::RequestBuf).
//!
//! Run it as a test program (TAP): `epoll_handler`. Four threads read a 256-page lazy file
//! (two through `pread`, two through mappings); the loop serves every page once.

#[path = "common/tap.rs"]
mod tap;

use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sealmem::{Error, FillOptions, HandlerOptions, RequestBuf, SealFile, Seals};
use tap::{pattern, Check, Ctx};

const PS: u64 = 4096;
const PAGES: u64 = 256;

fn main() -> ExitCode {
    tap::run("epoll_handler", &[("serves_readers_until_hangup", serves_readers_until_hangup)])
}

fn serves_readers_until_hangup() -> Check {
    let f = SealFile::create().ctx("create")?;
    f.set_size(PAGES * PS).ctx("size")?;
    let handler = f.enable_fill(HandlerOptions::new().nonblocking(true)).ctx("enable_fill")?;
    f.add_seals(Seals::WRITE | Seals::SHRINK | Seals::GROW).ctx("seal")?;
    // Consumers: two pread, two mmap, each in its own order; each checks every byte.
    let mut readers = Vec::new();
    for k in 0..4u64 {
        let view = f.view().ctx("view")?;
        readers.push(std::thread::spawn(move || -> Check {
            let (mut want, mut got) = (vec![0u8; PS as usize], vec![0u8; PS as usize]);
            let map = if k >= 2 { Some(view.map_shared((PAGES * PS) as usize).ctx("map")?) } else { None };
            for i in 0..PAGES {
                let p = (i * (2 * k + 1) + k * 17) % PAGES; // a different walk per reader
                pattern(3, p * PS, &mut want);
                match &map {
                    Some(m) => m.try_read((p * PS) as usize, &mut got).ctx("try_read")?,
                    None => ensure!(view.read_at(&mut got, p * PS).ctx("pread")? == got.len(), "short pread"),
                }
                ensure!(got == want, "reader {k}: page {p} differs");
            }
            Ok(())
        }));
    }
    drop(f); // the readers' VIEWs (and maps) keep the file alive until they finish

    // The epoll loop.
    // SAFETY: plain syscalls; the fd is closed below.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    ensure!(ep >= 0, "epoll_create1: {}", std::io::Error::last_os_error());
    let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 0 };
    // SAFETY: registers the handler fd, which outlives the loop.
    let r = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, handler.as_raw_fd(), &mut ev) };
    ensure!(r == 0, "epoll_ctl: {}", std::io::Error::last_os_error());
    let mut buf = RequestBuf::new();
    let mut page = vec![0u8; PS as usize];
    let (mut served, mut wakeups, mut hup) = (0u64, 0u64, false);
    let deadline = Instant::now() + Duration::from_secs(120);
    let result = (|| -> Check {
        while Instant::now() < deadline {
            let mut out = [libc::epoll_event { events: 0, u64: 0 }; 1];
            // SAFETY: `out` has room for one event.
            let n = unsafe { libc::epoll_wait(ep, out.as_mut_ptr(), 1, 1000) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                ensure!(e.kind() == std::io::ErrorKind::Interrupted, "epoll_wait: {e}");
                continue;
            }
            if n == 0 {
                continue;
            }
            wakeups += 1;
            // Drain: try_read gives None once nothing is pending (EAGAIN).
            while let Some(k) = handler.try_read(&mut buf).ctx("try_read")? {
                if k == 0 {
                    hup = out[0].events & libc::EPOLLHUP as u32 != 0;
                    return Ok(());
                }
                for req in &buf {
                    pattern(3, req.offset, &mut page);
                    match handler.copy(req.offset, &page, FillOptions::new()) {
                        Ok(_) => served += 1,
                        Err(e @ Error::Exists { .. }) => return Err(format!("page served twice: {e}")),
                        Err(e) => return Err(format!("copy {:#x}: {e}", req.offset)),
                    }
                }
            }
        }
        Err("the loop did not end within 120 s".into())
    })();
    // SAFETY: our epoll fd.
    unsafe { libc::close(ep) };
    result?;
    for (k, r) in readers.into_iter().enumerate() {
        r.join().map_err(|_| format!("reader {k} panicked"))??;
    }
    println!("# served {served} requests in {wakeups} wakeups; hangup seen: {hup}");
    ensure!(served == PAGES, "served {served} requests for {PAGES} pages (each page once)");
    Ok(())
}
