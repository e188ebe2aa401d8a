//! The lazy sealed image, told in 30 seconds.
//!
//! `sealmem-demo IMAGE` — a producer creates a sealmem file the size of IMAGE, turns on lazy
//! fill, write-seals it and hands read-only VIEW fds to three consumer processes. Each
//! consumer reads the whole file in its own order; every page it touches is fetched on demand
//! by the producer from IMAGE and installed exactly once.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::time::Instant;

use sealmem::{FillOptions, HandlerOptions, SealFile, Seals};

const PS: usize = 4096;

fn say(s: &str) {
    println!("\n== {s}");
}

fn fdinfo_lines(info: &str) -> String {
    info.lines()
        .filter(|l| !l.starts_with("pos:") && !l.starts_with("flags:") && !l.starts_with("mnt_id:") && !l.starts_with("ino:"))
        .map(|l| format!("   {l}\n"))
        .collect()
}

fn errno_name(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::EBADF) => "EBADF".into(),
        Some(libc::ENOTTY) => "ENOTTY".into(),
        Some(libc::EBUSY) => "EBUSY".into(),
        _ => e.to_string(),
    }
}

/// A consumer: reads every page of `view` in `order`, checks it against `image`.
fn consumer(n: usize, view: &SealFile, image: &[u8]) -> i32 {
    let pages = image.len() / PS;
    let start = Instant::now();
    let (how, mut bad) = match n {
        0 => {
            // mmap, front to back
            let Ok(m) = view.map_shared(image.len()) else { return 2 };
            let mut page = vec![0u8; PS];
            let mut bad = 0;
            for i in 0..pages {
                m.read(i * PS, &mut page);
                bad += usize::from(page[..] != image[i * PS..(i + 1) * PS]);
            }
            ("mmap, front to back", bad)
        }
        1 => {
            // pread, back to front
            let mut page = vec![0u8; PS];
            let mut bad = 0;
            for i in (0..pages).rev() {
                if view.read_at(&mut page, (i * PS) as u64).ok() != Some(PS) {
                    bad += 1;
                    continue;
                }
                bad += usize::from(page[..] != image[i * PS..(i + 1) * PS]);
            }
            ("pread, back to front", bad)
        }
        _ => {
            // mmap, a page stride of 7 (random-looking)
            let Ok(m) = view.map_shared(image.len()) else { return 2 };
            let mut page = vec![0u8; PS];
            let mut bad = 0;
            for k in 0..pages {
                let i = (k * 7) % pages;
                m.read(i * PS, &mut page);
                bad += usize::from(page[..] != image[i * PS..(i + 1) * PS]);
            }
            ("mmap, stride 7", bad)
        }
    };
    // A consumer holding only a VIEW fd cannot change anything.
    let write = view.write_at(b"x", 0).err().map(|e| errno_name(&e));
    let fill = view.enable_fill(HandlerOptions::new()).err().map(|e| errno_name(&e.into()));
    if write.is_none() || fill.is_none() {
        bad += 1;
    }
    println!(
        "   consumer {} (pid {}): {} pages, {}, {} mismatches, {:.1} ms; write -> {}, FILL_ENABLE -> {}",
        n + 1,
        std::process::id(),
        pages,
        how,
        bad,
        start.elapsed().as_secs_f64() * 1e3,
        write.unwrap_or_else(|| "ALLOWED?!".into()),
        fill.unwrap_or_else(|| "ALLOWED?!".into()),
    );
    i32::from(bad != 0)
}

fn main() -> io::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "/sealmem/image.bin".into());
    let mut image = Vec::new();
    std::fs::File::open(&path)?.read_to_end(&mut image)?;
    image.truncate(image.len() / PS * PS);
    let pages = image.len() / PS;

    say(&format!("Producer: a sealmem file for {path} ({} KiB, {pages} pages), lazy and sealed", image.len() / 1024));
    let f = SealFile::create()?;
    f.set_name("demo-image")?;
    f.set_size(image.len() as u64)?;
    let handler = f.enable_fill(HandlerOptions::new())?;
    f.add_seals(Seals::WRITE | Seals::SHRINK | Seals::GROW | Seals::SEAL)?;
    let view = f.view_with(sealmem::ViewOptions::new().cloexec(false))?;
    print!("{}", fdinfo_lines(&f.fdinfo()?));
    println!("   nothing is resident yet; the producer holds the only copy of the data");

    say("Refused: the producer itself can no longer write, resize or reseal");
    println!("   pwrite         -> {}", errno_name(&f.write_at(b"x", 0).unwrap_err()));
    println!("   SET_SIZE       -> {}", errno_name(&f.set_size(0).unwrap_err().into()));
    println!("   ADD_SEALS EXEC -> {}", errno_name(&f.add_seals(Seals::EXEC).unwrap_err().into()));
    drop(f);

    say("Three consumers get a read-only VIEW fd (by fork) and read the file in their own order");
    let mut kids = Vec::new();
    for n in 0..3 {
        // SAFETY: the child only uses its own copies of the fds and memory, then exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            drop(handler);
            let rc = consumer(n, &view, &image);
            // SAFETY: plain exit of the child.
            unsafe { libc::_exit(rc) };
        }
        kids.push(pid);
    }
    drop(view);

    // Serve until nothing can fault any more (every consumer has exited).
    let start = Instant::now();
    let (mut served, mut faults, mut reads) = (0usize, 0usize, 0usize);
    let mut seen = vec![0u8; pages];
    for req in handler.requests() {
        let req = req?;
        let i = req.offset as usize / PS;
        seen[i] = seen[i].saturating_add(1);
        if req.fault { faults += 1 } else { reads += 1 }
        handler
            .copy(req.offset, &image[i * PS..(i + 1) * PS], FillOptions::new())
            .map_err(io::Error::from)?;
        served += 1;
    }
    let mut failed = 0;
    for pid in kids {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        failed += usize::from(!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0));
    }

    say("What happened");
    println!("   requests served : {served} ({faults} from page faults, {reads} from read()) in {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
    println!("   pages requested twice: {} (each page is fetched at most once, whoever asks first)", seen.iter().filter(|&&c| c > 1).count());
    println!("   pages never requested: {}", seen.iter().filter(|&&c| c == 0).count());
    print!("   handler fd fdinfo:\n{}", fdinfo_lines(&handler.fdinfo()?).replace("   ", "     "));
    for c in ["files", "pages", "faults", "fills", "waits"] {
        let v = std::fs::read_to_string(format!("/sys/kernel/debug/sealmem/counters/{c}")).unwrap_or_default();
        println!("   debugfs {c:<6}: {}", v.trim());
    }
    let _ = handler.as_raw_fd();
    if failed > 0 || seen.iter().any(|&c| c > 1) {
        println!("\nDEMO FAILED: {failed} consumer(s) saw wrong data or a page was fetched twice");
        std::process::exit(1);
    }
    println!("\nEvery consumer saw byte-exact data; once observed, no byte of the file can change.");
    Ok(())
}
