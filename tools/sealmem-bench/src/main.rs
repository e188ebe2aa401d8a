//! `sealmem-prefetch-bench`: what record and replay buys the second start of a workload.
//!
//! The workload maps a lazy sealmem file (an image served from a file on disk) and reads a
//! scattered working set: `--ws` pages of the `--pages`-page image, in a fixed random order,
//! checksumming each page (FNV-1a over its bytes) and checking its first bytes.
//!
//! Per round, one VM boot, the same image and working set:
//! 1. cold start: every page the workload touches is a request; the handler serves it from
//!    disk and records the first-touch order ([`sealmem::Recorder`]); the log is saved;
//! 2. second start without prefetch: the same, served on demand only (the baseline);
//! 3. second start with prefetch: a [`sealmem::Prefetcher`] replays the saved log
//!    (SKIP_EXISTING copies, demand requests first) from the moment the file is set up; the
//!    workload starts right after.
//!
//! Reported per case (median of `--runs` rounds): requests that reached the handler and the
//! time the workload took to read its working set; then the ratios baseline / prefetch.
//! Prints `SEALMEM-PREFETCH-BENCH key=value...` for scripts.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealmem::{FillOptions, HandlerOptions, Prefetcher, Recorder, Recording, SealFile, Seals};

const PS: u64 = 4096;

struct Args {
    pages: u64,
    ws: u64,
    runs: usize,
    dir: std::path::PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { pages: 16384, ws: 2048, runs: 3, dir: std::env::temp_dir() };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        match k.as_str() {
            "--pages" => a.pages = v.parse().map_err(|e| format!("--pages: {e}"))?,
            "--ws" => a.ws = v.parse().map_err(|e| format!("--ws: {e}"))?,
            "--runs" => a.runs = v.parse().map_err(|e| format!("--runs: {e}"))?,
            "--dir" => a.dir = v.into(),
            _ => return Err(format!("unknown option {k} (--pages N --ws N --runs N --dir D)")),
        }
    }
    if a.ws == 0 || a.ws > a.pages || a.runs == 0 {
        return Err("need 0 < --ws <= --pages and --runs > 0".into());
    }
    Ok(a)
}

/// Byte `i` of the image.
fn image_byte(i: u64) -> u8 {
    (i as u8).wrapping_mul(31) ^ ((i >> 12) as u8).wrapping_mul(7) ^ 0x5a
}

/// The working set: `ws` distinct pages out of `pages`, in a fixed pseudo-random order.
fn working_set(pages: u64, ws: u64) -> Vec<u64> {
    let mut all: Vec<u64> = (0..pages).collect();
    let mut x = 0x9e3779b97f4a7c15u64;
    for i in (1..all.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        all.swap(i, (x % (i as u64 + 1)) as usize);
    }
    all.truncate(ws as usize);
    all
}

/// Pins the calling thread to `cpu` (as the C benchmark does: left to the scheduler, the
/// workload and the handler sometimes share a CPU and the round trips swing widely).
fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity only touch it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// A lazy file of the image's size, write-sealed, its handler, and a VIEW for the workload.
fn lazy_file(pages: u64) -> io::Result<(sealmem::Handler, SealFile)> {
    let f = SealFile::create()?;
    f.set_size(pages * PS)?;
    let h = f.enable_fill(HandlerOptions::new())?;
    f.add_seals(Seals::WRITE | Seals::SHRINK | Seals::GROW)?;
    let view = f.view()?;
    Ok((h, view))
}

/// The workload: maps the VIEW, reads and checksums each page of the working set. Returns
/// the time it took and the checksum.
fn workload(view: SealFile, pages: u64, order: &[u64]) -> io::Result<(Duration, u64)> {
    let map = view.map_shared((pages * PS) as usize)?;
    drop(view);
    let mut buf = vec![0u8; PS as usize];
    let mut sum = 0u64;
    let start = Instant::now();
    for &p in order {
        map.read((p * PS) as usize, &mut buf);
        if buf[0] != image_byte(p * PS) || buf[4095] != image_byte(p * PS + 4095) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("page {p}: wrong bytes")));
        }
        let mut h = 0xcbf29ce484222325u64;
        for &b in &buf {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
        sum = sum.wrapping_add(h);
    }
    Ok((start.elapsed(), sum))
}

#[derive(Clone, Copy, Default)]
struct Outcome {
    requests: u64,
    time: Duration,
}

/// Cold or second start served on demand only; records when `rec` is given.
fn on_demand(a: &Args, image: &Arc<std::fs::File>, order: &[u64], rec: Option<&mut Recorder>) -> io::Result<Outcome> {
    let (h, view) = lazy_file(a.pages)?;
    let requests = Arc::new(AtomicU64::new(0));
    let image2 = image.clone();
    let count = requests.clone();
    let mut local = Recorder::new();
    let recording = rec.is_some();
    let server = std::thread::spawn(move || -> io::Result<Recorder> {
        pin(1);
        let mut page = vec![0u8; PS as usize];
        for req in h.requests() {
            let req = req?;
            count.fetch_add(1, Ordering::Relaxed);
            if recording {
                local.record(&req);
            }
            image2.read_exact_at(&mut page, req.offset)?;
            h.copy(req.offset, &page, FillOptions::new())?;
        }
        Ok(local)
    });
    let (time, _) = workload(view, a.pages, order)?;
    let local = server.join().map_err(|_| io::Error::other("server panicked"))??;
    if let Some(r) = rec {
        *r = local;
    }
    Ok(Outcome { requests: requests.load(Ordering::Relaxed), time })
}

/// Second start with the prefetcher replaying `log`.
fn prefetched(a: &Args, image: &Arc<std::fs::File>, order: &[u64], log: Recording) -> io::Result<Outcome> {
    let (h, view) = lazy_file(a.pages)?;
    let image2 = image.clone();
    let server = std::thread::spawn(move || {
        pin(1);
        Prefetcher::new(log).serve(&h, move |off, buf: &mut [u8]| image2.read_exact_at(buf, off))
    });
    let (time, _) = workload(view, a.pages, order)?;
    let stats = server.join().map_err(|_| io::Error::other("prefetcher panicked"))?.map_err(io::Error::from)?;
    Ok(Outcome { requests: stats.demand, time })
}

fn median(mut v: Vec<Outcome>) -> Outcome {
    v.sort_by_key(|o| o.time);
    let t = v[v.len() / 2].time;
    v.sort_by_key(|o| o.requests);
    Outcome { requests: v[v.len() / 2].requests, time: t }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sealmem-prefetch-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let a = parse_args()?;
    pin(0); // the workload
    let img_path = a.dir.join("sealmem-prefetch-bench.img");
    let log_path = a.dir.join("sealmem-prefetch-bench.rec");
    let mut data = vec![0u8; (a.pages * PS) as usize];
    for (i, b) in data.iter_mut().enumerate() {
        *b = image_byte(i as u64);
    }
    std::fs::write(&img_path, &data).map_err(|e| format!("write {}: {e}", img_path.display()))?;
    drop(data);
    let image = Arc::new(std::fs::File::open(&img_path).map_err(|e| format!("open image: {e}"))?);
    let order = working_set(a.pages, a.ws);
    println!(
        "prefetch bench: working set {} of {} pages ({} MiB image on disk), scattered; {} rounds",
        a.ws,
        a.pages,
        (a.pages * PS) >> 20,
        a.runs
    );
    let (mut cold, mut base, mut pre) = (Vec::new(), Vec::new(), Vec::new());
    let mut log_bytes = 0;
    for round in 0..a.runs {
        let mut rec = Recorder::new();
        let c = on_demand(&a, &image, &order, Some(&mut rec)).map_err(|e| format!("cold start: {e}"))?;
        rec.recording().save(&log_path).map_err(|e| format!("save log: {e}"))?;
        log_bytes = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
        let b = on_demand(&a, &image, &order, None).map_err(|e| format!("second start: {e}"))?;
        let log = Recording::load(&log_path).map_err(|e| format!("load log: {e}"))?;
        let p = prefetched(&a, &image, &order, log).map_err(|e| format!("prefetched start: {e}"))?;
        println!(
            "  round {round}: cold {} req {:.1} ms | second, on demand {} req {:.1} ms | second, prefetch {} req {:.1} ms",
            c.requests,
            ms(c.time),
            b.requests,
            ms(b.time),
            p.requests,
            ms(p.time)
        );
        cold.push(c);
        base.push(b);
        pre.push(p);
    }
    let _ = std::fs::remove_file(&img_path);
    let _ = std::fs::remove_file(&log_path);
    let (c, b, p) = (median(cold), median(base), median(pre));
    let req_ratio = b.requests as f64 / (p.requests.max(1)) as f64;
    let time_ratio = ms(b.time) / ms(p.time).max(1e-6);
    println!("  log: {} pages in {log_bytes} bytes", a.ws);
    println!("  {:<34} {:>9} {:>12}", "case (median)", "requests", "time");
    println!("  {:<34} {:>9} {:>9.1} ms", "cold start (recording)", c.requests, ms(c.time));
    println!("  {:<34} {:>9} {:>9.1} ms", "second start, on demand", b.requests, ms(b.time));
    println!("  {:<34} {:>9} {:>9.1} ms", "second start, prefetch", p.requests, ms(p.time));
    println!(
        "  ratios (on demand / prefetch): requests {req_ratio:.1}x{}, time {time_ratio:.2}x",
        if p.requests == 0 { " (no request at all; counted as 1)" } else { "" }
    );
    println!(
        "SEALMEM-PREFETCH-BENCH ws={} pages={} log_bytes={log_bytes} cold_req={} cold_ms={:.1} demand_req={} demand_ms={:.1} prefetch_req={} prefetch_ms={:.1} req_ratio={req_ratio:.1} time_ratio={time_ratio:.2}",
        a.ws,
        a.pages,
        c.requests,
        ms(c.time),
        b.requests,
        ms(b.time),
        p.requests,
        ms(p.time)
    );
    for (ok, what) in [(req_ratio >= 10.0, "requests drop at least 10x"), (time_ratio >= 2.0, "time improves at least 2x")] {
        println!("{} - prefetch: {what}", if ok { "ok" } else { "not ok" });
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
