//! A lazy file served from a file on disk by the async handler (`--features tokio`):
//! requests arrive through `AsyncHandler::requests()`, each is served by its own task that
//! reads the page from disk and fills it, so several fills run at once.
//!
//! Run it as a test program (TAP): `tokio_lazy_file`. Four reader threads read a 512-page
//! lazy file in different orders and check every byte; the first four requests are held
//! until all four fills are in flight together (a barrier), proving concurrent fills.

#[path = "common/tap.rs"]
mod tap;

use std::os::unix::fs::FileExt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sealmem::tokio::AsyncHandler;
use sealmem::{FillOptions, HandlerOptions, SealFile, Seals};
use tap::{pattern, Check, Ctx};

const PS: u64 = 4096;
const PAGES: u64 = 512;
const READERS: u64 = 4;

fn main() -> ExitCode {
    tap::run("tokio_lazy_file", &[("serves_from_disk_with_concurrent_fills", serves_from_disk_with_concurrent_fills)])
}

/// The image on disk: PAGES pages of pattern 4.
fn write_image() -> Result<(std::path::PathBuf, std::fs::File), String> {
    let path = std::env::temp_dir().join(format!("sealmem-tokio-image-{}", std::process::id()));
    let mut data = vec![0u8; (PAGES * PS) as usize];
    pattern(4, 0, &mut data);
    std::fs::write(&path, &data).ctx("write image")?;
    let f = std::fs::File::open(&path).ctx("open image")?;
    Ok((path, f))
}

fn serves_from_disk_with_concurrent_fills() -> Check {
    let (path, image) = write_image()?;
    let r = serve(Arc::new(image));
    let _ = std::fs::remove_file(&path);
    r
}

fn serve(image: Arc<std::fs::File>) -> Check {
    let f = SealFile::create().ctx("create")?;
    f.set_size(PAGES * PS).ctx("size")?;
    let handler = f.enable_fill(HandlerOptions::new().nonblocking(true)).ctx("enable_fill")?;
    f.add_seals(Seals::WRITE | Seals::SHRINK | Seals::GROW).ctx("seal")?;
    // Readers: reader k starts at page k * PAGES / READERS (four distinct first pages, four
    // requests at once), then walks all pages in its own stride; odd readers use a mapping.
    let mut readers = Vec::new();
    for k in 0..READERS {
        let view = f.view().ctx("view")?;
        readers.push(std::thread::spawn(move || -> Check {
            let (mut want, mut got) = (vec![0u8; PS as usize], vec![0u8; PS as usize]);
            let map = if k % 2 == 1 { Some(view.map_shared((PAGES * PS) as usize).ctx("map")?) } else { None };
            let stride = [1, 3, 5, 7][k as usize];
            for i in 0..PAGES {
                let p = (k * PAGES / READERS + i * stride) % PAGES;
                pattern(4, p * PS, &mut want);
                match &map {
                    Some(m) => m.try_read((p * PS) as usize, &mut got).ctx("try_read")?,
                    None => ensure!(view.read_at(&mut got, p * PS).ctx("pread")? == got.len(), "short pread"),
                }
                ensure!(got == want, "reader {k}: page {p} differs");
            }
            Ok(())
        }));
    }
    drop(f);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().ctx("runtime")?;
    let requested: Arc<Vec<AtomicU32>> = Arc::new((0..PAGES).map(|_| AtomicU32::new(0)).collect());
    let (in_flight, max_in_flight) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let served = rt.block_on(async {
        let ah = AsyncHandler::new(handler).ctx("AsyncHandler")?;
        let mut requests = ah.requests();
        let barrier = Arc::new(tokio::sync::Barrier::new(READERS as usize));
        let mut tasks = tokio::task::JoinSet::new();
        let mut n = 0u64;
        let all = async {
            while let Some(req) = requests.recv().await {
                let req = req.ctx("request")?;
                let page = req.offset / PS;
                ensure!(page < PAGES, "request past the file: {:#x}", req.offset);
                requested[page as usize].fetch_add(1, Ordering::Relaxed);
                // The first READERS fills wait for each other: all in flight at once.
                let gate = (n < READERS).then(|| barrier.clone());
                n += 1;
                let (ah, image) = (ah.clone(), image.clone());
                let (in_flight, max_in_flight) = (in_flight.clone(), max_in_flight.clone());
                tasks.spawn(async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max_in_flight.fetch_max(now, Ordering::SeqCst);
                    // Read the page from disk on the blocking pool, then fill.
                    let data = tokio::task::spawn_blocking(move || {
                        let mut b = vec![0u8; PS as usize];
                        image.read_exact_at(&mut b, req.offset).map(|_| b)
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .ctx("read the image")?;
                    if let Some(b) = gate {
                        b.wait().await;
                    }
                    let r = ah.copy(req.offset, data, FillOptions::new()).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    r.map(drop).ctx("copy")
                });
                // Reap finished fills as we go (their errors end the test).
                while let Some(done) = tasks.try_join_next() {
                    done.map_err(|e| e.to_string())??;
                }
            }
            while let Some(done) = tasks.join_next().await {
                done.map_err(|e| e.to_string())??;
            }
            Ok::<u64, String>(n)
        };
        tokio::time::timeout(Duration::from_secs(120), all).await.map_err(|_| "not done within 120 s".to_string())?
    })?;
    for (k, r) in readers.into_iter().enumerate() {
        r.join().map_err(|_| format!("reader {k} panicked"))??;
    }
    let twice: Vec<usize> = (0..PAGES as usize).filter(|&p| requested[p].load(Ordering::Relaxed) != 1).collect();
    println!("# {served} requests served, up to {} fills in flight at once", max_in_flight.load(Ordering::SeqCst));
    ensure!(served == PAGES && twice.is_empty(), "{served} requests; pages not requested exactly once: {twice:?}");
    ensure!(max_in_flight.load(Ordering::SeqCst) >= READERS as usize, "fills never overlapped");
    Ok(())
}
