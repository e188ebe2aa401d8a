//! Record and replay: a [`Recorder`] logs the order in which a run first touched the pages
//! of a lazy file (the handler sees every first touch as a request, in order), a
//! [`Recording`] stores that log in a small file, and a [`Prefetcher`] replays it on the next
//! start: it fills the recorded pages in the background with `SKIP_EXISTING` copies, always
//! serving demand requests first.
//!
//! ```no_run
//! use std::sync::Arc;
//! use sealmem::{FillOptions, HandlerOptions, Prefetcher, Recorder, Recording, SealFile};
//!
//! # fn image_page(offset: u64, page: &mut [u8]) -> std::io::Result<()> { Ok(()) }
//! // First start: serve on demand and record.
//! let f = SealFile::create()?;
//! f.set_size(64 << 20)?;
//! let handler = f.enable_fill(HandlerOptions::new())?;
//! let mut recorder = Recorder::new();
//! let mut page = vec![0u8; 4096];
//! for req in handler.requests() {
//!     let req = req?;
//!     recorder.record(&req);
//!     image_page(req.offset, &mut page)?;
//!     handler.copy(req.offset, &page, FillOptions::new())?;
//! }
//! recorder.recording().save("/var/cache/app.sealmem-rec")?;
//!
//! // Next start: replay in the background while demand requests are served first.
//! let f = SealFile::create()?;
//! f.set_size(64 << 20)?;
//! let handler = Arc::new(f.enable_fill(HandlerOptions::new())?);
//! let rec = Recording::load("/var/cache/app.sealmem-rec")?;
//! let server = Prefetcher::new(rec).spawn(handler, image_page)?;
//! // ... hand f.view() to the workload; when it is done and the file is gone:
//! let stats = server.join().expect("prefetcher thread")?;
//! println!("{} demand requests, {} pages prefetched", stats.demand, stats.prefetched);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use crate::error::{page_size, Error};
use crate::{FillOptions, Handler, Request, RequestBuf};

/// Logs the first-touch order of pages from the requests a handler sees.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    offsets: Vec<u64>,
    seen: HashSet<u64>,
}

impl Recorder {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes a request; returns whether it was the first for its page (a page requested
    /// again, after a hole punch or a lost handler, keeps its first place).
    pub fn record(&mut self, req: &Request) -> bool {
        self.record_offset(req.offset)
    }

    /// Notes the page at byte `offset` (rounded down to its page).
    pub fn record_offset(&mut self, offset: u64) -> bool {
        let page = offset & !(page_size() - 1);
        let first = self.seen.insert(page);
        if first {
            self.offsets.push(page);
        }
        first
    }

    /// How many distinct pages were recorded.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The log so far.
    pub fn recording(&self) -> Recording {
        Recording { page_size: page_size(), offsets: self.offsets.clone() }
    }
}

/// A first-touch log: page offsets in the order a run first touched them.
///
/// On disk (`save`/`write_to`): the magic `SMREC01\n`, the page size and the page count as
/// little-endian `u32`s, then each page index as the zigzag LEB128 varint of its difference
/// from the previous one (one to three bytes a page for typical working sets: 2048 pages
/// scattered over 64 MiB take about 4.5 KiB).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recording {
    page_size: u64,
    offsets: Vec<u64>,
}

const MAGIC: &[u8; 8] = b"SMREC01\n";
/// The most pages a log may hold (1 TiB of 4 KiB pages, the default `max_file_size`).
const MAX_PAGES: u64 = 1 << 28;

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("sealmem recording: {why}"))
}

impl Recording {
    /// A log of these page offsets (each rounded down to its page), in this order.
    pub fn from_offsets(offsets: impl IntoIterator<Item = u64>) -> Self {
        let mut r = Recorder::new();
        for o in offsets {
            r.record_offset(o);
        }
        r.recording()
    }

    /// The page offsets, in first-touch order, each once.
    pub fn offsets(&self) -> &[u64] {
        &self.offsets
    }

    /// How many pages.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether it holds no page.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Writes the log (see the format above).
    pub fn write_to(&self, mut w: impl Write) -> io::Result<()> {
        let ps = self.page_size.max(1);
        let count = u32::try_from(self.offsets.len()).map_err(|_| invalid("too many pages"))?;
        let mut out = Vec::with_capacity(16 + 3 * self.offsets.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&u32::try_from(ps).map_err(|_| invalid("page size"))?.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        let mut prev = 0i64;
        for &o in &self.offsets {
            let idx = (o / ps) as i64;
            let d = idx.wrapping_sub(prev);
            prev = idx;
            let mut z = ((d << 1) ^ (d >> 63)) as u64;
            loop {
                let b = (z & 0x7f) as u8;
                z >>= 7;
                if z == 0 {
                    out.push(b);
                    break;
                }
                out.push(b | 0x80);
            }
        }
        w.write_all(&out)
    }

    /// Reads a log; `InvalidData` for anything that is not one (wrong magic, a page size
    /// that is not this machine's, truncation, a page past 2^63, a page twice, trailing
    /// bytes).
    pub fn read_from(mut r: impl Read) -> io::Result<Self> {
        let mut head = [0u8; 16];
        r.read_exact(&mut head).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => invalid("truncated header"),
            _ => e,
        })?;
        if &head[..8] != MAGIC {
            return Err(invalid("bad magic"));
        }
        let ps = u64::from(u32::from_le_bytes([head[8], head[9], head[10], head[11]]));
        if ps != page_size() {
            return Err(invalid("recorded with another page size"));
        }
        let count = u64::from(u32::from_le_bytes([head[12], head[13], head[14], head[15]]));
        if count > MAX_PAGES {
            return Err(invalid("too many pages"));
        }
        let mut body = Vec::new();
        r.read_to_end(&mut body)?;
        // Each page takes at least one byte: never reserve more than the body can describe.
        let mut offsets = Vec::with_capacity((count as usize).min(body.len()));
        let mut seen = HashSet::with_capacity(offsets.capacity());
        let (mut pos, mut prev) = (0usize, 0i64);
        for _ in 0..count {
            let mut z = 0u64;
            let mut shift = 0;
            loop {
                let b = *body.get(pos).ok_or_else(|| invalid("truncated"))?;
                pos += 1;
                if shift >= 64 || (shift == 63 && b > 1) {
                    return Err(invalid("varint too long"));
                }
                z |= u64::from(b & 0x7f) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
            let idx = prev.wrapping_add(d);
            prev = idx;
            let off = u64::try_from(idx)
                .ok()
                .and_then(|i| i.checked_mul(ps))
                .filter(|&o| o <= i64::MAX as u64)
                .ok_or_else(|| invalid("page offset out of range"))?;
            if !seen.insert(off) {
                return Err(invalid("a page recorded twice"));
            }
            offsets.push(off);
        }
        if pos != body.len() {
            return Err(invalid("trailing bytes"));
        }
        Ok(Self { page_size: ps, offsets })
    }

    /// Writes the log to a file (replaced atomically: written beside it, then renamed).
    pub fn save(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref();
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let mut f = std::fs::File::create(&tmp)?;
        self.write_to(&mut f)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// Reads a log from a file.
    pub fn load(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::read_from(io::BufReader::new(std::fs::File::open(path)?))
    }
}

/// What a [`Prefetcher`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrefetchStats {
    /// Requests that reached the handler (demand): each was served before any further
    /// prefetch.
    pub demand: u64,
    /// Demand requests whose page a prefetch had filled meanwhile (`EEXIST`: nothing to do).
    pub demand_already_filled: u64,
    /// Recorded pages the prefetch copied or found present (`SKIP_EXISTING` counts both).
    pub prefetched: u64,
    /// Recorded pages the prefetch could not fill: past EOF now, or the source failed.
    pub prefetch_failed: u64,
}

/// Replays a [`Recording`]: serves a lazy file's handler, demand requests first, and between
/// them fills the recorded pages in recorded order with `SKIP_EXISTING` copies.
///
/// The source is a function filling one page-sized buffer with the content of the page at
/// a byte offset (reading an image file, decompressing, ...). A huge file's unit request
/// ([`Request::huge`](crate::Request)) is answered with the unit's pages, gathered from the
/// source up to its first failure (the end of the image), in one copy. The handler is read with
/// [`Handler::try_read`] before every prefetched page, so a demand request waits for at
/// most one prefetch copy. Once the log is replayed the loop only serves demand, until the
/// handler is no longer needed.
#[derive(Debug, Clone)]
pub struct Prefetcher {
    recording: Recording,
}

impl Prefetcher {
    /// A prefetcher replaying `recording`.
    pub fn new(recording: Recording) -> Self {
        Self { recording }
    }

    /// Serves `handler` until it is no longer needed (its file has no fd or mapping left, or
    /// `FILL_END`), and returns what it did. Fails on a handler read error, on a demand fill
    /// or source error (a request it cannot serve would leave a waiter hanging: the caller
    /// should poison or end), or when the handler is detached.
    pub fn serve<F>(&self, handler: &Handler, mut source: F) -> Result<PrefetchStats, Error>
    where
        F: FnMut(u64, &mut [u8]) -> io::Result<()>,
    {
        let ps = page_size() as usize;
        let mut page = vec![0u8; ps];
        let mut unit: Vec<u8> = Vec::new();
        let mut buf = RequestBuf::new();
        let mut stats = PrefetchStats::default();
        let mut next = 0;
        let log = self.recording.offsets();
        loop {
            let got = if next < log.len() { handler.try_read(&mut buf)? } else { Some(handler.read(&mut buf)?) };
            match got {
                Some(0) => return Ok(stats),
                Some(_) => {
                    for req in &buf {
                        stats.demand += 1;
                        let data: &[u8] = if req.huge {
                            // A huge file's whole unit: gathered page by page, up to the end of
                            // the source (the last unit is cut by EOF), and installed with one
                            // copy, as one folio.
                            unit.resize(crate::HUGE_SIZE as usize, 0);
                            let mut got = 0;
                            while got < unit.len() && source(req.offset + got as u64, &mut unit[got..got + ps]).is_ok() {
                                got += ps;
                            }
                            if got == 0 {
                                source(req.offset, &mut page)?;
                            }
                            &unit[..got]
                        } else {
                            source(req.offset, &mut page)?;
                            &page
                        };
                        let data = if data.is_empty() { &page[..] } else { data };
                        match handler.copy(req.offset, data, FillOptions::new()) {
                            Ok(_) => {}
                            Err(Error::Exists { .. }) => stats.demand_already_filled += 1,
                            // The file shrank below the page: its waiters got SIGBUS/EIO.
                            Err(Error::PastEof { .. }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                None => {
                    let off = log[next];
                    next += 1;
                    if source(off, &mut page).is_err() {
                        stats.prefetch_failed += 1;
                        continue;
                    }
                    match handler.copy(off, &page, FillOptions::new().skip_existing(true)) {
                        Ok(_) => stats.prefetched += 1,
                        Err(Error::PastEof { .. }) => stats.prefetch_failed += 1,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// [`serve`](Self::serve) on a new thread (named `sealmem-prefetch`); fails only if the
    /// thread cannot be created.
    pub fn spawn<F>(self, handler: Arc<Handler>, source: F) -> io::Result<std::thread::JoinHandle<Result<PrefetchStats, Error>>>
    where
        F: FnMut(u64, &mut [u8]) -> io::Result<()> + Send + 'static,
    {
        std::thread::Builder::new().name("sealmem-prefetch".into()).spawn(move || self.serve(&handler, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(offset: u64) -> Request {
        Request { offset, huge: false, write: false, fault: true, tid: 1 }
    }

    #[test]
    fn recorder_keeps_first_touch_order_once() {
        let ps = page_size();
        let mut r = Recorder::new();
        assert!(r.record(&req(5 * ps)));
        assert!(r.record(&req(ps + 17))); // rounded down
        assert!(!r.record(&req(5 * ps)));
        assert!(r.record(&req(0)));
        assert!(!r.record(&req(ps)));
        assert_eq!(r.recording().offsets(), &[5 * ps, ps, 0]);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn round_trip_and_size() {
        let ps = page_size();
        // A scattered working set: 2048 of 16384 pages, in a scrambled order.
        let offsets: Vec<u64> = (0..2048u64).map(|i| (i * 7919 % 16384) * ps).collect();
        let rec = Recording::from_offsets(offsets.clone());
        let mut bytes = Vec::new();
        rec.write_to(&mut bytes).unwrap();
        assert!(bytes.len() < 16 + 3 * 2048, "{} bytes", bytes.len());
        let back = Recording::read_from(&bytes[..]).unwrap();
        assert_eq!(back.offsets(), &offsets[..]);
        assert_eq!(back, rec);
        let empty = Recording::from_offsets([]);
        let mut e = Vec::new();
        empty.write_to(&mut e).unwrap();
        assert_eq!(e.len(), 16);
        assert!(Recording::read_from(&e[..]).unwrap().is_empty());
    }

    #[test]
    fn save_and_load() {
        let path = std::env::temp_dir().join(format!("sealmem-rec-test-{}", std::process::id()));
        let rec = Recording::from_offsets([3 * page_size(), 0]);
        rec.save(&path).unwrap();
        let back = Recording::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back, rec);
    }

    /// Every malformed log is InvalidData, never a panic or a huge allocation.
    #[test]
    fn malformed_logs_are_invalid_data() {
        let ps = page_size() as u32;
        let head = |count: u32| {
            let mut h = MAGIC.to_vec();
            h.extend_from_slice(&ps.to_le_bytes());
            h.extend_from_slice(&count.to_le_bytes());
            h
        };
        let mut wrong_ps = MAGIC.to_vec();
        wrong_ps.extend_from_slice(&(ps * 2).to_le_bytes());
        wrong_ps.extend_from_slice(&0u32.to_le_bytes());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("short header", MAGIC[..5].to_vec()),
            ("bad magic", b"SMREC02\n\0\x10\0\0\0\0\0\0".to_vec()),
            ("page size", wrong_ps),
            ("huge count, no body", head(u32::MAX)),
            ("truncated", [head(2), vec![2]].concat()),
            ("truncated varint", [head(1), vec![0x80]].concat()),
            ("varint too long", [head(1), vec![0xff; 11]].concat()),
            ("negative page", [head(1), vec![1]].concat()),
            ("twice", [head(2), vec![2, 0]].concat()),
            ("trailing", [head(1), vec![2, 2]].concat()),
        ];
        for (what, bytes) in cases {
            let e = Recording::read_from(&bytes[..]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{what}: {e}");
        }
        // Page index 1 (zigzag 2) then back to 0 (delta -1, zigzag 1): valid.
        let ok = Recording::read_from(&[head(2), vec![2, 1]].concat()[..]).unwrap();
        assert_eq!(ok.offsets(), &[u64::from(ps), 0]);
    }
}
