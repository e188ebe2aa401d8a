//! Foundation tests: device node, file lifetime, handshake, unknown ioctls, fdinfo.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use sealmem::{uapi, Features, OpenError, SealFile};

use crate::harness::{expect_errno, Context, Outcome, Test, TestResult};
use crate::{ensure, ensure_eq};

const PS: u64 = 4096;

pub const TESTS: &[Test] = &[
    ("device_node_mode", device_node_mode),
    ("open_many_distinct_files", open_many_distinct_files),
    ("handshake_good", handshake_good),
    ("handshake_bad_version", handshake_bad_version),
    ("handshake_unsupported_feature", handshake_unsupported_feature),
    ("unknown_ioctl_enotty", unknown_ioctl_enotty),
    ("fdinfo_fields", fdinfo_fields),
    ("create_performs_handshake_typed_errors", create_performs_handshake_typed_errors),
    ("try_from_fd_adopts_sealmem_returns_others", try_from_fd_adopts_sealmem_returns_others),
];

fn fdinfo_field(info: &str, key: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(":\t").map(str::to_owned))
}

fn device_node_mode() -> TestResult {
    let md = std::fs::metadata(sealmem::DEVICE).ctx("stat /dev/sealmem")?;
    ensure!(md.file_type().is_char_device(), "not a char device");
    ensure_eq!(md.permissions().mode() & 0o7777, 0o666);
    Ok(())
}

fn open_many_distinct_files() -> TestResult {
    let files: Vec<SealFile> = (0..200)
        .map(|_| SealFile::create())
        .collect::<Result<_, _>>()
        .ctx("open")?;
    let mut ids: Vec<String> = files
        .iter()
        .map(|f| f.fdinfo().ok().and_then(|i| fdinfo_field(&i, "sealmem-id")).unwrap_or_default())
        .collect();
    ensure!(ids.iter().all(|i| !i.is_empty()), "fdinfo without sealmem-id");
    ids.sort();
    ids.dedup();
    ensure_eq!(ids.len(), 200);
    Ok(())
}

fn handshake_good() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    let api = f.handshake(0).ctx("handshake")?;
    ensure_eq!(api.version, sealmem::API_VERSION);
    ensure!(api.ioctls & (1 << uapi::SEALMEM_NR_API) != 0, "API ioctl not reported");
    // Requiring exactly the reported features works.
    let again = f.handshake(api.features).ctx("handshake with reported features")?;
    ensure_eq!(again, api);
    Ok(())
}

fn handshake_bad_version() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    for v in [0u64, sealmem::API_VERSION + 1, u64::MAX] {
        let mut api = uapi::sealmem_api { api: v, features: 0, ioctls: 9 };
        // SAFETY: SEALMEM_IOC_API takes one `sealmem_api`.
        let r = unsafe { sealmem::raw_ioctl(f.as_raw_fd(), uapi::SEALMEM_IOC_API, &mut api) };
        ensure_eq!(r, -1);
        ensure_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EINVAL));
        ensure_eq!((api.api, api.features, api.ioctls), (0, 0, 0));
    }
    Ok(())
}

fn handshake_unsupported_feature() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    let supported = f.handshake(0).ctx("handshake")?.features;
    for bit in (0..64).map(|b| 1u64 << b).filter(|b| supported & b == 0) {
        expect_errno(f.handshake(bit), libc::EINVAL, "unsupported feature")?;
    }
    Ok(())
}

fn unknown_ioctl_enotty() -> TestResult {
    let f = SealFile::create().ctx("open")?;
    let mut buf = [0u8; 64];
    // Unknown numbers of sealmem's code (0xB9), the version-1 handshake's number under the
    // old code 0xB5, and a tty ioctl.
    for cmd in [0xb97fu32, 0xc008_b9ff, 0xc018_b500, libc::TCGETS as u32] {
        // SAFETY: the buffer is larger than any argument these numbers could describe.
        let r = unsafe { sealmem::raw_ioctl(f.as_raw_fd(), cmd, buf.as_mut_ptr()) };
        ensure_eq!(r, -1);
        ensure_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::ENOTTY));
    }
    Ok(())
}

fn fdinfo_fields() -> TestResult {
    // A plain open (SealFile::create performs the handshake): api 0 until a handshake.
    let raw = std::fs::OpenOptions::new().read(true).write(true).open(sealmem::DEVICE).ctx("open")?;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", raw.as_raw_fd())).ctx("fdinfo")?;
    for (k, v) in [("size", "0"), ("seals", "0x0"), ("pages", "0"), ("lazy", "off"), ("pending", "0"), ("api", "0")] {
        ensure_eq!(fdinfo_field(&info, k).as_deref(), Some(v));
    }
    let f = SealFile::create().ctx("create")?;
    let info = f.fdinfo().ctx("fdinfo")?;
    ensure_eq!(fdinfo_field(&info, "api"), Some(sealmem::API_VERSION.to_string()));
    Ok(())
}

/// `create` performs the handshake (fdinfo shows the agreed version); `create_with` reports a
/// feature the module lacks as `OpenError::MissingFeatures`, and every supported feature set
/// works.
fn create_performs_handshake_typed_errors() -> TestResult {
    let f = SealFile::create().ctx("create")?;
    let info = f.fdinfo().ctx("fdinfo")?;
    ensure_eq!(fdinfo_field(&info, "api"), Some(sealmem::API_VERSION.to_string()));
    SealFile::create_with(Features::all()).ctx("create_with(all)")?;
    let unknown = Features::from_bits_retain(1 << 40);
    match SealFile::create_with(Features::LAZY_FILL | unknown) {
        Err(OpenError::MissingFeatures { required, supported }) => {
            ensure_eq!(required, Features::LAZY_FILL | unknown);
            ensure_eq!(supported, Features::all());
        }
        other => return Err(Outcome::Fail(format!("expected MissingFeatures, got {other:?}"))),
    }
    // As an io::Error (for `?` in io::Result code) it is Unsupported and keeps the details.
    let e = std::io::Error::from(SealFile::create_with(unknown).unwrap_err());
    ensure_eq!(e.kind(), std::io::ErrorKind::Unsupported);
    ensure!(e.get_ref().is_some_and(|e| e.is::<OpenError>()), "{e:?}");
    Ok(())
}

fn fd_id(fd: BorrowedFd<'_>) -> (u64, u64) {
    let md = std::fs::File::from(fd.try_clone_to_owned().expect("dup")).metadata().expect("fstat");
    (md.dev(), md.ino())
}

/// Expects `try_from_fd` to refuse `fd` as NotSealmem and hand back the very same fd.
fn expect_refused(fd: OwnedFd, what: &str) -> Result<OwnedFd, Outcome> {
    let (raw, id) = (fd.as_raw_fd(), fd_id(fd.as_fd()));
    match SealFile::try_from_fd(fd) {
        Ok(_) => Err(Outcome::Fail(format!("{what}: adopted"))),
        Err(e) => {
            ensure!(matches!(e.error(), OpenError::NotSealmem), "{what}: {e}");
            let fd = e.into_fd();
            ensure_eq!(fd.as_raw_fd(), raw);
            ensure_eq!(fd_id(fd.as_fd()), id);
            Ok(fd)
        }
    }
}

/// `try_from_fd` adopts an fd of the device and a VIEW (the same file: same sealmem-id), and
/// refuses a handler fd, /dev/null and a pipe, returning each intact and still working.
fn try_from_fd_adopts_sealmem_returns_others() -> TestResult {
    let f = SealFile::create().ctx("create")?;
    f.write_at(b"adopted", 0).ctx("write")?;
    let id = fdinfo_field(&f.fdinfo().ctx("fdinfo")?, "sealmem-id");
    let dup = SealFile::try_from_fd(f.as_fd().try_clone_to_owned().ctx("dup")?).ctx("adopt a dup")?;
    ensure_eq!(fdinfo_field(&dup.fdinfo().ctx("fdinfo")?, "sealmem-id"), id);
    let view = OwnedFd::from(f.view().ctx("view")?);
    let view = SealFile::try_from_fd(view).ctx("adopt a VIEW")?;
    ensure_eq!(fdinfo_field(&view.fdinfo().ctx("fdinfo")?, "sealmem-id"), id);
    let mut b = [0u8; 7];
    view.read_at(&mut b, 0).ctx("read the adopted VIEW")?;
    ensure_eq!(&b, b"adopted");
    expect_errno(view.write_at(b"x", 0), libc::EBADF, "write on the adopted VIEW")?;
    // A handler fd is sealmem's too, but not a file: refused, and still the handler.
    f.set_size(PS).ctx("size")?;
    let h = OwnedFd::from(f.enable_fill(Default::default()).ctx("enable_fill")?);
    let h = expect_refused(h, "handler fd")?;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", h.as_raw_fd())).ctx("handler fdinfo")?;
    ensure!(fdinfo_field(&info, "sealmem-handler-of").is_some(), "{info}");
    // /dev/null and a pipe.
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null").ctx("/dev/null")?;
    let null = expect_refused(null.into(), "/dev/null")?;
    ensure_eq!(std::fs::File::from(null).write(b"x").ctx("write /dev/null")?, 1);
    let mut fds = [0; 2];
    // SAFETY: a plain syscall filling `fds`.
    ensure_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: two new fds nothing else owns.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let w = expect_refused(w, "pipe")?;
    std::fs::File::from(w).write_all(b"pipe").ctx("write pipe")?;
    let mut got = String::new();
    std::fs::File::from(r).read_to_string(&mut got).ctx("read pipe")?;
    ensure_eq!(got, "pipe");
    Ok(())
}
