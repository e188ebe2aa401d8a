//! Mappings of sealmem files: [`Mapping`] (read-only) and [`MappingMut`] (writable).
//!
//!
//! The memory model and the accesses that raise SIGBUS are described in the crate documentation.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

const WORD: usize = std::mem::size_of::<usize>();

/// What to map, builder-style: a length, an offset (default 0; a multiple of the page size),
/// shared (default) or private. [`map`](Self::map) gives a read-only [`Mapping`],
/// [`map_mut`](Self::map_mut) a writable [`MappingMut`].
///
/// ```no_run
/// use sealmem::{MapOptions, SealFile};
///
/// let f = SealFile::create()?;
/// f.set_size(1 << 20)?;
/// let window = f.map(&MapOptions::new(8192).offset(64 * 4096))?; // bytes 256 KiB..+8 KiB
/// let scratch = f.map_mut(&MapOptions::new(4096).private())?; // copy-on-write
/// # drop((window, scratch));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapOptions {
    len: usize,
    offset: u64,
    private: bool,
}

impl MapOptions {
    /// `len` bytes from offset 0, shared.
    pub fn new(len: usize) -> Self {
        Self { len, offset: 0, private: false }
    }

    /// Starts the mapping at byte `offset` of the file (a multiple of the page size, else
    /// the map fails with `EINVAL`).
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// `MAP_SHARED` (the default): writes go to the file, other mappings see them.
    pub fn shared(mut self) -> Self {
        self.private = false;
        self
    }

    /// `MAP_PRIVATE`: copy-on-write; writes stay in this mapping.
    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    fn flags(&self) -> libc::c_int {
        if self.private {
            libc::MAP_PRIVATE
        } else {
            libc::MAP_SHARED
        }
    }

    /// Maps read-only (`PROT_READ`). `EINVAL` for a length 0 or an unaligned offset.
    pub fn map(&self, fd: impl AsFd) -> io::Result<Mapping> {
        Mapping::new(fd.as_fd(), self.offset, self.len, libc::PROT_READ, self.flags())
    }

    /// Maps writable (`PROT_READ | PROT_WRITE`): a shared one needs a writable fd (`EACCES`
    /// on a VIEW) and no WRITE or FUTURE_WRITE seal (`EPERM`).
    pub fn map_mut(&self, fd: impl AsFd) -> io::Result<MappingMut> {
        MappingMut::new(fd.as_fd(), self.offset, self.len, self.flags())
    }
}

/// A read-only view of a mapping of a sealmem file (`PROT_READ`), unmapped on drop.
///
/// It has no `write` method: a write into read-only memory would raise SIGSEGV.
///
/// ```compile_fail,E0599
/// fn scribble(map: &sealmem::Mapping) {
///     map.write(0, b"no"); // a read-only mapping cannot be written
/// }
/// ```
///
/// [`MappingMut`] is the writable kind; it dereferences to `Mapping` for reading:
///
/// ```no_run
/// fn scribble(map: &sealmem::MappingMut) {
///     map.write(0, b"yes");
///     let mut b = [0u8; 3];
///     map.read(0, &mut b);
/// }
/// ```
///
/// See the [crate documentation](crate#mappings-memory-model) for the memory model and for the accesses that raise
/// SIGBUS.
#[derive(Debug)]
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is process memory, not tied to a thread; it may be used and unmapped
// from any thread.
unsafe impl Send for Mapping {}
// SAFETY: through `&Mapping` the crate only makes relaxed atomic word loads (see the module
// documentation), which may run concurrently with each other and with the atomic stores of
// `&MappingMut`.
unsafe impl Sync for Mapping {}

/// A writable mapping of a sealmem file (`PROT_READ | PROT_WRITE`, shared or private),
/// unmapped on drop. It dereferences to [`Mapping`] for reading.
#[derive(Debug)]
pub struct MappingMut {
    map: Mapping,
}

impl Mapping {
    /// Maps `len` bytes of `fd` from `offset`.
    pub(crate) fn new(fd: BorrowedFd<'_>, offset: u64, len: usize, prot: libc::c_int, flags: libc::c_int) -> io::Result<Self> {
        let offset = libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        if len == 0 || offset as u64 % crate::error::page_size() != 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: a fresh mapping at an address of the kernel's choosing aliases nothing of
        // this program's.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd.as_raw_fd(), offset) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr: ptr.cast(), len })
    }

    /// Start of the mapping. Reading through it is `unsafe`: see the crate documentation.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, offset: usize, len: usize) {
        assert!(
            offset.checked_add(len).is_some_and(|e| e <= self.len),
            "range {offset}+{len} outside a mapping of {} bytes",
            self.len
        );
    }

    /// Copies `buf.len()` bytes at `offset` out of the mapping, with word-sized relaxed
    /// atomic loads.
    ///
    /// Raises SIGBUS in the cases listed in the [crate documentation](crate#mappings-memory-model) (past EOF,
    /// poisoned page, lazy hole without handler); [`try_read`](Self::try_read) does not.
    ///
    /// # Panics
    ///
    /// If the range is not within the mapping.
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        self.check(offset, buf.len());
        // SAFETY: the range lies within the live mapping (checked above).
        unsafe { copy_out(self.ptr.add(offset), buf) };
    }

    /// Like [`read`](Self::read), but never raises a signal: fails with `EFAULT` where `read`
    /// would raise SIGBUS (some bytes before the failing page may have been copied by then).
    /// A lazy hole still waits for its fill.
    ///
    /// The bytes go through a pipe: `write(2)` from the mapping, `read(2)` into `buf`. A
    /// fault of the kernel's own copy from user memory ends the syscall with `EFAULT`
    /// instead of a signal. (`process_vm_readv(2)` would do one copy, but needs
    /// `CONFIG_CROSS_MEMORY_ATTACH`, which the project's test kernels lack, and seccomp
    /// profiles may forbid it.) A signal that interrupts the wait for a lazy page can also
    /// end it with `EFAULT`.
    ///
    /// # Panics
    ///
    /// If the range is not within the mapping.
    pub fn try_read(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        self.check(offset, buf.len());
        // SAFETY: the source range lies in the live mapping, the destination is our exclusive
        // buffer; only the kernel accesses either.
        unsafe { copy_via_pipe(self.ptr.add(offset), buf.as_mut_ptr(), buf.len()) }
    }
}

impl MappingMut {
    pub(crate) fn new(fd: BorrowedFd<'_>, offset: u64, len: usize, flags: libc::c_int) -> io::Result<Self> {
        Mapping::new(fd, offset, len, libc::PROT_READ | libc::PROT_WRITE, flags).map(|map| Self { map })
    }

    /// Start of the mapping, for writing. Accessing through it is `unsafe`: see the crate
    /// documentation.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.map.ptr
    }

    /// Copies `data` into the mapping at `offset`, with word-sized relaxed atomic stores (and
    /// compare-exchange for the partial words at either end).
    ///
    /// Raises SIGBUS in the cases listed in the [crate documentation](crate#mappings-memory-model) (past EOF,
    /// poisoned page, lazy hole without handler); [`try_write`](Self::try_write) does not.
    ///
    /// # Panics
    ///
    /// If the range is not within the mapping.
    pub fn write(&self, offset: usize, data: &[u8]) {
        self.map.check(offset, data.len());
        // SAFETY: the range lies within the live, writable mapping (checked above).
        unsafe { copy_in(self.map.ptr.add(offset), data) };
    }

    /// Like [`write`](Self::write), but never raises a signal: fails with `EFAULT` where
    /// `write` would raise SIGBUS (some bytes before the failing page may have been written
    /// by then). The bytes go through a pipe, as for [`try_read`](Mapping::try_read).
    ///
    /// # Panics
    ///
    /// If the range is not within the mapping.
    pub fn try_write(&self, offset: usize, data: &[u8]) -> io::Result<()> {
        self.map.check(offset, data.len());
        // SAFETY: the destination range lies in the live, writable mapping; only the kernel
        // accesses it here (and reads `data`).
        unsafe { copy_via_pipe(data.as_ptr(), self.map.ptr.add(offset), data.len()) }
    }
}

impl std::ops::Deref for MappingMut {
    type Target = Mapping;

    fn deref(&self) -> &Mapping {
        &self.map
    }
}

/// Retries a syscall returning `-1`/errno on `EINTR`.
fn retry(f: impl Fn() -> isize) -> io::Result<usize> {
    loop {
        let n = f();
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Copies `len` bytes from `src` to `dst` through a new pipe, so that the kernel does every
/// access to either: `write(2)` copies from user memory and `read(2)` to it, and a fault that
/// would raise SIGBUS makes the syscall fail with `EFAULT` (or return short) instead.
///
/// # Safety
///
/// `src` must be readable and `dst` writable memory of this process for `len` bytes, as far
/// as Rust is concerned (mapped pages; the kernel handles faults); nothing may hold a Rust
/// reference to `dst`'s bytes.
unsafe fn copy_via_pipe(src: *const u8, dst: *mut u8, len: usize) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let mut fds = [0; 2];
    // SAFETY: a plain syscall filling `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two new fds that nothing else owns.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut done = 0;
    while done < len {
        // The pipe is empty: a nonblocking write takes as much as fits (> 0), or fails.
        // SAFETY: the kernel reads at most `len - done` bytes from `src + done`.
        let n = retry(|| unsafe { libc::write(w.as_raw_fd(), src.add(done).cast(), len - done) })?;
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EFAULT));
        }
        let mut got = 0;
        while got < n {
            // SAFETY: the kernel writes at most `n - got` bytes to `dst + done + got`.
            let m = retry(|| unsafe { libc::read(r.as_raw_fd(), dst.add(done + got).cast(), n - got) })?;
            if m == 0 {
                return Err(io::Error::from_raw_os_error(libc::EFAULT));
            }
            got += m;
        }
        done += n;
    }
    Ok(())
}

/// The word containing `p` (aligned down) and `p`'s index in it.
fn word_of(p: *const u8) -> (*mut usize, usize) {
    let misalign = p as usize % WORD;
    (p.wrapping_sub(misalign).cast_mut().cast(), misalign)
}

/// Copies `dst.len()` bytes from `src` with relaxed atomic word loads.
///
/// # Safety
///
/// `src..src + dst.len()` lies within a live mapping (which covers whole pages, so the
/// aligned words containing the range do too).
unsafe fn copy_out(src: *const u8, dst: &mut [u8]) {
    let mut i = 0;
    while i < dst.len() {
        let (w, skip) = word_of(src.wrapping_add(i));
        // SAFETY: `w` is aligned and lies in the same page as a byte of the range, so within
        // the mapping; only relaxed atomic loads of this size are made through it.
        let bytes = unsafe { AtomicUsize::from_ptr(w) }.load(Relaxed).to_ne_bytes();
        let n = (WORD - skip).min(dst.len() - i);
        dst[i..i + n].copy_from_slice(&bytes[skip..skip + n]);
        i += n;
    }
}

/// Copies `src` to `dst` with relaxed atomic word stores, and compare-exchange loops for the
/// words only partly covered.
///
/// # Safety
///
/// `dst..dst + src.len()` lies within a live writable mapping.
unsafe fn copy_in(dst: *mut u8, src: &[u8]) {
    let mut i = 0;
    while i < src.len() {
        let (w, skip) = word_of(dst.wrapping_add(i));
        let n = (WORD - skip).min(src.len() - i);
        // SAFETY: as in `copy_out`; the mapping is writable.
        let a = unsafe { AtomicUsize::from_ptr(w) };
        if n == WORD {
            let mut b = [0u8; WORD];
            b.copy_from_slice(&src[i..i + WORD]);
            a.store(usize::from_ne_bytes(b), Relaxed);
        } else {
            let _ = a.fetch_update(Relaxed, Relaxed, |old| {
                let mut b = old.to_ne_bytes();
                b[skip..skip + n].copy_from_slice(&src[i..i + n]);
                Some(usize::from_ne_bytes(b))
            });
        }
        i += n;
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own this mapping; nothing refers into it once we are dropped (the raw
        // pointers handed out are the caller's responsibility).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    const PS: usize = 4096;

    /// A memfd of `len` bytes: the same mmap semantics (shared, coherent, SIGBUS past EOF).
    fn memfd(len: usize) -> std::fs::File {
        // SAFETY: a plain syscall; the name is a C string.
        let fd = unsafe { libc::memfd_create(c"sealmem-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd_create: {}", io::Error::last_os_error());
        // SAFETY: a new fd nothing else owns.
        let f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        f.set_len(len as u64).unwrap();
        f
    }

    #[test]
    fn read_write_any_alignment() {
        let f = memfd(2 * PS);
        let m = MappingMut::new(f.as_fd(), 0, 2 * PS, libc::MAP_SHARED).unwrap();
        let ro = Mapping::new(f.as_fd(), 0, 2 * PS, libc::PROT_READ, libc::MAP_SHARED).unwrap();
        let pattern: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37) | 1).collect();
        for off in [0, 1, 7, 8, 9, 15, PS - 3, 2 * PS - 100] {
            for len in [0, 1, 3, 8, 9, 17, 100] {
                // Clear the map, write the range, check that its neighbours stay zero.
                m.write(0, &[0u8; 2 * PS]);
                m.write(off, &pattern[..len]);
                let mut back = vec![0xeeu8; len];
                ro.read(off, &mut back);
                assert_eq!(back, pattern[..len], "off {off} len {len}");
                let mut file = vec![0u8; len];
                std::os::unix::fs::FileExt::read_exact_at(&f, &mut file, off as u64).unwrap();
                assert_eq!(file, pattern[..len]);
                if off > 0 {
                    let mut before = [0xeeu8];
                    m.read(off - 1, &mut before);
                    assert_eq!(before, [0]);
                }
                if off + len < 2 * PS {
                    let mut after = [0xeeu8];
                    m.read(off + len, &mut after);
                    assert_eq!(after, [0]);
                }
                let mut t = vec![0u8; len];
                ro.try_read(off, &mut t).unwrap();
                assert_eq!(t, pattern[..len]);
            }
        }
        m.try_write(5, b"via a pipe, no signals").unwrap();
        let mut b = [0u8; 22];
        ro.read(5, &mut b);
        assert_eq!(&b, b"via a pipe, no signals");
    }

    /// Copies longer than a pipe holds go through in chunks.
    #[test]
    fn try_read_try_write_large() {
        let len = 300 * 1024 + 5;
        let f = memfd(len);
        let m = MappingMut::new(f.as_fd(), 0, len, libc::MAP_SHARED).unwrap();
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4096) as u8).collect();
        m.try_write(0, &data).unwrap();
        let mut back = vec![0u8; len - 3];
        m.try_read(3, &mut back).unwrap();
        assert_eq!(back, data[3..]);
        let mut plain = vec![0u8; len];
        m.read(0, &mut plain);
        assert_eq!(plain, data);
    }

    #[test]
    #[should_panic(expected = "outside a mapping")]
    fn read_out_of_range_panics() {
        let f = memfd(PS);
        let m = Mapping::new(f.as_fd(), 0, PS, libc::PROT_READ, libc::MAP_SHARED).unwrap();
        m.read(PS - 1, &mut [0u8; 2]);
    }

    /// Threads writing the same bytes through `&MappingMut` while others read them: defined
    /// behaviour (word-atomic), and every word read is one some writer wrote.
    #[test]
    fn concurrent_writers_and_readers() {
        let f = memfd(PS);
        let m = MappingMut::new(f.as_fd(), 0, PS, libc::MAP_SHARED).unwrap();
        std::thread::scope(|s| {
            for t in 1..=3u8 {
                let m = &m;
                s.spawn(move || {
                    for _ in 0..2000 {
                        m.write(0, &[t; 64]);
                    }
                });
            }
            let m = &m;
            s.spawn(move || {
                for _ in 0..2000 {
                    let mut b = [0u8; 64];
                    m.read(0, &mut b);
                    for w in b.chunks(WORD) {
                        assert!(w.iter().all(|&x| x == w[0]), "torn word {w:?}");
                    }
                }
            });
        });
    }

    /// Where `read` would raise SIGBUS (past EOF after a shrink), `try_read`/`try_write` fail
    /// with EFAULT.
    #[test]
    fn try_read_past_eof_is_efault_not_sigbus() {
        let f = memfd(2 * PS);
        let m = MappingMut::new(f.as_fd(), 0, 2 * PS, libc::MAP_SHARED).unwrap();
        m.write(PS, b"x");
        f.set_len(PS as u64).unwrap();
        let mut b = [0u8; 4];
        m.try_read(0, &mut b).unwrap();
        let e = m.try_read(PS, &mut b).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EFAULT));
        let e = m.try_read(PS - 2, &mut b).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EFAULT));
        let e = m.try_write(PS, b"y").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EFAULT));
        m.try_write(0, b"y").unwrap();
    }

    /// MapOptions: an offset maps that part of the file; unaligned offsets and length 0 are
    /// EINVAL; private writes stay private.
    #[test]
    fn map_options_offset_and_private() {
        let f = memfd(4 * PS);
        std::os::unix::fs::FileExt::write_all_at(&f, b"third page", 2 * PS as u64).unwrap();
        let m = MapOptions::new(PS).offset(2 * PS as u64).map(&f).unwrap();
        let mut b = [0u8; 10];
        m.read(0, &mut b);
        assert_eq!(&b, b"third page");
        for bad in [MapOptions::new(PS).offset(1), MapOptions::new(0), MapOptions::new(PS).offset(!4095)] {
            assert_eq!(bad.map(&f).unwrap_err().raw_os_error(), Some(libc::EINVAL), "{bad:?}");
        }
        let p = MapOptions::new(PS).offset(2 * PS as u64).private().map_mut(&f).unwrap();
        p.write(0, b"PRIVATE");
        let mut file = [0u8; 7];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut file, 2 * PS as u64).unwrap();
        assert_eq!(&file, b"third p");
        let s = MapOptions::new(PS).offset(PS as u64).shared().map_mut(&f).unwrap();
        s.write(0, b"shared");
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut b[..6], PS as u64).unwrap();
        assert_eq!(&b[..6], b"shared");
    }

    #[test]
    fn mappings_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Mapping>();
        check::<MappingMut>();
    }
}
