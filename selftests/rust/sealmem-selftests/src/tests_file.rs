//! The sealed file through the safe wrapper: sizes, seals, mmap coherence, VIEW, errors.

use sealmem::{SealFile, Seals};

use crate::harness::{expect_errno, Context, Test, TestResult};
use crate::{ensure, ensure_eq};

const PS: u64 = 4096;

pub const TESTS: &[Test] = &[
    ("size_grow_shrink", size_grow_shrink),
    ("write_read_and_holes", write_read_and_holes),
    ("seals_add_get_and_rules", seals_add_get_and_rules),
    ("seal_write_busy_with_shared_writable_map", seal_write_busy_with_shared_writable_map),
    ("mmap_coherent_with_io", mmap_coherent_with_io),
    ("private_map_is_cow", private_map_is_cow),
    ("view_is_read_only", view_is_read_only),
    ("name_roundtrip", name_roundtrip),
    ("bad_input_errnos", bad_input_errnos),
];

fn size_grow_shrink() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    ensure_eq!(f.size().ctx("size")?, 0);
    f.set_size(5 * PS).ctx("grow")?;
    ensure_eq!(f.size().ctx("size")?, 5 * PS);
    f.set_size(PS + 1).ctx("shrink")?;
    ensure_eq!(f.size().ctx("size")?, PS + 1);
    expect_errno(f.set_size(1 << 63), libc::EINVAL, "size beyond i64")?;
    expect_errno(f.set_size((1 << 40) + 1), libc::EFBIG, "size beyond max_file_size")?;
    Ok(())
}

fn write_read_and_holes() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.write_at(b"tail", 3 * PS).ctx("write past EOF")?;
    ensure_eq!(f.size().ctx("size")?, 3 * PS + 4);
    let mut buf = vec![0xffu8; (3 * PS) as usize];
    ensure_eq!(f.read_at(&mut buf, 0).ctx("read")?, buf.len());
    ensure!(buf.iter().all(|&b| b == 0), "holes must read as zeros");
    let mut t = [0u8; 8];
    ensure_eq!(f.read_at(&mut t, 3 * PS).ctx("read tail")?, 4);
    ensure_eq!(&t[..4], b"tail");
    f.punch_hole(3 * PS, PS).ctx("punch")?;
    ensure_eq!(f.read_at(&mut t, 3 * PS).ctx("read punched")?, 4);
    ensure_eq!(&t[..4], &[0u8; 4]);
    Ok(())
}

fn seals_add_get_and_rules() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(2 * PS).ctx("size")?;
    ensure_eq!(f.seals().ctx("seals")?, Seals::empty());
    f.add_seals(Seals::SHRINK | Seals::GROW).ctx("add")?;
    ensure_eq!(f.seals().ctx("seals")?, Seals::SHRINK | Seals::GROW);
    expect_errno(f.set_size(PS), libc::EPERM, "shrink under SHRINK")?;
    expect_errno(f.set_size(4 * PS), libc::EPERM, "grow under GROW")?;
    expect_errno(f.write_at(b"x", 2 * PS), libc::EPERM, "write past EOF under GROW")?;
    f.add_seals(Seals::WRITE).ctx("add WRITE")?;
    expect_errno(f.write_at(b"x", 0), libc::EPERM, "write under WRITE")?;
    expect_errno(f.punch_hole(0, PS), libc::EPERM, "punch under WRITE")?;
    expect_errno(f.map_shared_mut(PS as usize), libc::EPERM, "shared writable map under WRITE")?;
    expect_errno(f.add_seal_bits(0x40), libc::EINVAL, "unknown seal bit")?;
    f.add_seals(Seals::SEAL).ctx("add SEAL")?;
    expect_errno(f.add_seals(Seals::EXEC), libc::EPERM, "add after SEAL")?;
    Ok(())
}

fn seal_write_busy_with_shared_writable_map() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(PS).ctx("size")?;
    let m = f.map_shared_mut(PS as usize).ctx("map")?;
    expect_errno(f.add_seals(Seals::WRITE), libc::EBUSY, "WRITE with a writable map")?;
    f.add_seals(Seals::FUTURE_WRITE).ctx("FUTURE_WRITE with a writable map")?;
    m.write(0, b"still writable");
    let mut b = [0u8; 14];
    f.read_at(&mut b, 0).ctx("read")?;
    ensure_eq!(&b, b"still writable");
    drop(m);
    f.add_seals(Seals::WRITE).ctx("WRITE after unmap")?;
    Ok(())
}

fn mmap_coherent_with_io() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(2 * PS).ctx("size")?;
    let a = f.map_shared_mut(2 * PS as usize).ctx("map a")?;
    let b = f.map_shared(2 * PS as usize).ctx("map b")?;
    f.write_at(b"via write", PS + 3).ctx("write")?;
    let mut buf = [0u8; 9];
    a.read(PS as usize + 3, &mut buf);
    ensure_eq!(&buf, b"via write");
    a.write(10, b"via map");
    let mut r = [0u8; 7];
    f.read_at(&mut r, 10).ctx("read")?;
    ensure_eq!(&r, b"via map");
    b.read(10, &mut r);
    ensure_eq!(&r, b"via map");
    Ok(())
}

fn private_map_is_cow() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.write_at(b"orig", 0).ctx("write")?;
    let p = f.map_private(PS as usize).ctx("map")?;
    p.write(0, b"mine");
    let mut b = [0u8; 4];
    f.read_at(&mut b, 0).ctx("read")?;
    ensure_eq!(&b, b"orig");
    p.read(0, &mut b);
    ensure_eq!(&b, b"mine");
    Ok(())
}

fn view_is_read_only() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.write_at(b"shared", 0).ctx("write")?;
    let v = f.view().ctx("view")?;
    let mut b = [0u8; 6];
    v.read_at(&mut b, 0).ctx("read view")?;
    ensure_eq!(&b, b"shared");
    expect_errno(v.write_at(b"x", 0), libc::EBADF, "write on view")?;
    expect_errno(v.set_size(0), libc::EBADF, "set_size on view")?;
    expect_errno(v.add_seals(Seals::SEAL), libc::EPERM, "seal on view")?;
    expect_errno(v.map_shared_mut(PS as usize), libc::EACCES, "writable shared map of view")?;
    let m = v.map_shared(PS as usize).ctx("read-only map of view")?;
    m.read(0, &mut b);
    ensure_eq!(&b, b"shared");
    Ok(())
}

fn name_roundtrip() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    ensure_eq!(f.name().ctx("name")?, Vec::<u8>::new());
    f.set_name("weights.bin").ctx("set_name")?;
    ensure_eq!(f.name().ctx("name")?, b"weights.bin".to_vec());
    let info = f.fdinfo().ctx("fdinfo")?;
    ensure!(info.contains("\nname:\tweights.bin\n"), "fdinfo: {info}");
    let long = vec![b'x'; sealmem::NAME_MAX];
    f.set_name(&long).ctx("longest name")?;
    ensure_eq!(f.name().ctx("name")?.len(), sealmem::NAME_MAX);
    Ok(())
}

fn bad_input_errnos() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    f.set_size(4 * PS).ctx("size")?;
    expect_errno(f.punch_hole(1, PS), libc::EINVAL, "misaligned offset")?;
    expect_errno(f.punch_hole(0, 5), libc::EINVAL, "misaligned len")?;
    expect_errno(f.punch_hole(u64::MAX - PS + 1, 2 * PS), libc::EINVAL, "overflow")?;
    // SAFETY: a null pointer is exactly the bad input under test; the kernel must not touch it.
    let r = unsafe { sealmem::raw_ioctl(std::os::fd::AsRawFd::as_raw_fd(&f), sealmem::uapi::SEALMEM_IOC_GET_SIZE, std::ptr::null_mut::<u64>()) };
    ensure_eq!(r, -1);
    ensure_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EFAULT));
    Ok(())
}
