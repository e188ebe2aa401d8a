//! Passing sealmem fds to another process over a Unix socket (`SCM_RIGHTS`): a file, a
//! read-only VIEW, and a lazy file's handler that the other process then serves. Every
//! received fd is validated; one of the wrong kind is handed back.
//!
//! Run it as a test program (TAP): `scm_rights`. It starts copies of itself as the other
//! process (`scm_rights --child ROLE FD`).

#[path = "common/tap.rs"]
mod tap;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, ExitCode};
use std::time::Duration;

use sealmem::scm::{self, RecvError};
use sealmem::{FillOptions, Handler, HandlerOptions, MapOptions, OpenError, SealFile};
use tap::{pattern, wait_child, Check, Ctx};

const PS: u64 = 4096;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "--child" {
        return match child(&args[2], &args[3]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("# child {}: {e}", args[2]);
                ExitCode::FAILURE
            }
        };
    }
    tap::run(
        "scm_rights",
        &[
            ("file_round_trip_with_data", file_round_trip_with_data),
            ("handler_round_trip_then_serves", handler_round_trip_then_serves),
            ("wrong_kinds_are_rejected_and_handed_back", wrong_kinds_are_rejected_and_handed_back),
        ],
    )
}

/// Starts a copy of this program as `--child ROLE`, connected by a socket.
fn spawn(role: &str) -> Result<(UnixStream, std::process::Child), String> {
    let (ours, theirs) = UnixStream::pair().ctx("socketpair")?;
    for s in [&ours, &theirs] {
        s.set_read_timeout(Some(Duration::from_secs(20))).ctx("SO_RCVTIMEO")?;
    }
    // The child's end survives exec: clear its FD_CLOEXEC.
    // SAFETY: F_SETFD on an fd we own.
    if unsafe { libc::fcntl(theirs.as_raw_fd(), libc::F_SETFD, 0) } < 0 {
        return Err(format!("F_SETFD: {}", std::io::Error::last_os_error()));
    }
    let exe = std::env::current_exe().ctx("current_exe")?;
    let child = Command::new(exe)
        .args(["--child", role, &theirs.as_raw_fd().to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .ctx("spawn")?;
    drop(theirs);
    Ok((ours, child))
}

fn child(role: &str, fd: &str) -> Result<(), String> {
    // A child that hangs dies of SIGALRM instead (its handler fd closes with it).
    // SAFETY: a plain libc call.
    unsafe { libc::alarm(60) };
    let fd: i32 = fd.parse().ctx("fd")?;
    // SAFETY: our parent passed us this fd (its end of a socketpair), open across exec.
    let sock = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    sock.set_read_timeout(Some(Duration::from_secs(20))).ctx("SO_RCVTIMEO")?;
    match role {
        "file" => {
            // Receive a writable file, check its bytes, write into it, send back a VIEW.
            let f = scm::recv_file(&sock).ctx("recv_file")?;
            ensure!(!f.is_read_only().ctx("F_GETFL")?, "received a read-only fd");
            let mut got = vec![0u8; 3 * PS as usize];
            let mut want = got.clone();
            pattern(1, 0, &mut want);
            ensure!(f.read_at(&mut got, 0).ctx("read_at")? == got.len(), "short read");
            ensure!(got == want, "bytes differ from the sender's");
            f.write_at(b"child was here", 3 * PS).ctx("write_at")?;
            scm::send_file(&sock, &f.view().ctx("view")?).ctx("send view")?;
            Ok(())
        }
        "handler" => {
            // Receive a handler and serve its file until it is no longer needed.
            let h = scm::recv_handler(&sock).ctx("recv_handler")?;
            let mut page = vec![0u8; PS as usize];
            let mut served = 0u64;
            for req in h.requests() {
                let req = req.ctx("request")?;
                pattern(2, req.offset, &mut page);
                h.copy(req.offset, &page, FillOptions::new()).ctx("copy")?;
                served += 1;
            }
            (&sock).write_all(&served.to_le_bytes()).ctx("report")?;
            Ok(())
        }
        "reject" => {
            // A file where a handler is expected: rejected, handed back, still the file.
            match scm::recv_handler(&sock) {
                Err(RecvError::Rejected(e)) if matches!(e.error(), OpenError::NotHandler) => {
                    let f = SealFile::try_from_fd(e.into_fd()).ctx("the handed-back fd")?;
                    let mut b = [0u8; 8];
                    f.read_at(&mut b, 0).ctx("read_at")?;
                    ensure!(&b == b"rejected", "handed-back fd reads {b:?}");
                }
                other => return Err(format!("file as handler: {other:?}")),
            }
            // A handler where a file is expected: rejected (no ioctl reached it), and it is
            // a working handler when adopted as one.
            match scm::recv_file(&sock) {
                Err(RecvError::Rejected(e)) if matches!(e.error(), OpenError::NotSealmem) => {
                    let h = Handler::try_from(e.into_fd()).ctx("the handed-back handler")?;
                    ensure!(h.is_attached().ctx("fdinfo")?, "handler not attached");
                }
                other => return Err(format!("handler as file: {other:?}")),
            }
            // A writable file where a VIEW is expected.
            match scm::recv_view(&sock) {
                Err(RecvError::Rejected(e)) if matches!(e.error(), OpenError::NotView) => {
                    let f = SealFile::try_from_fd(e.into_fd()).ctx("the handed-back file")?;
                    ensure!(!f.is_read_only().ctx("F_GETFL")?, "not the writable fd");
                }
                other => return Err(format!("writable file as view: {other:?}")),
            }
            // A VIEW where a VIEW is expected.
            let v = scm::recv_view(&sock).ctx("recv_view")?;
            crate::expect_errno(v.write_at(b"x", 0), libc::EBADF, "write through the VIEW")?;
            (&sock).write_all(b"ok").ctx("report")?;
            Ok(())
        }
        _ => Err(format!("unknown role {role}")),
    }
}

fn expect_errno<T: std::fmt::Debug>(r: std::io::Result<T>, errno: i32, what: &str) -> Check {
    match r {
        Err(e) if e.raw_os_error() == Some(errno) => Ok(()),
        other => Err(format!("{what}: {other:?}, expected errno {errno}")),
    }
}

/// A writable file goes to another process, which checks its bytes, writes into it and
/// sends back a VIEW; the VIEW is the same file (the child's bytes), read-only.
fn file_round_trip_with_data() -> Check {
    let f = SealFile::create().ctx("create")?;
    let mut data = vec![0u8; 3 * PS as usize];
    pattern(1, 0, &mut data);
    f.write_at(&data, 0).ctx("write_at")?;
    let (sock, mut child) = spawn("file")?;
    scm::send_file(&sock, &f).ctx("send_file")?;
    let view = scm::recv_view(&sock).ctx("recv_view")?;
    let st = wait_child(&mut child, 30)?;
    ensure!(st.success(), "child: {st}");
    ensure!(view.is_read_only().ctx("F_GETFL")?, "the VIEW is writable");
    expect_errno(view.write_at(b"x", 0), libc::EBADF, "write through the VIEW")?;
    ensure!(view.size().ctx("size")? == 3 * PS + 14, "size {:?}", view.size());
    let mut b = [0u8; 14];
    view.read_at(&mut b, 3 * PS).ctx("read_at")?;
    ensure!(&b == b"child was here", "view reads {b:?}");
    let mut back = vec![0u8; data.len()];
    view.read_at(&mut back, 0).ctx("read_at")?;
    ensure!(back == data, "the VIEW's first pages differ");
    // The same file: both fds show one sealmem-id.
    let id = |f: &SealFile| f.fdinfo().ok().and_then(|i| i.lines().find(|l| l.starts_with("sealmem-id:")).map(String::from));
    ensure!(id(&f).is_some() && id(&f) == id(&view), "ids {:?} {:?}", id(&f), id(&view));
    Ok(())
}

/// A handler goes to another process, which then serves every page this process reads
/// (through `read_at` and through a mapping at an offset); it stops when the file is gone.
fn handler_round_trip_then_serves() -> Check {
    let f = SealFile::create().ctx("create")?;
    f.set_size(8 * PS).ctx("size")?;
    let h = f.enable_fill(HandlerOptions::new()).ctx("enable_fill")?;
    let (mut sock, mut child) = spawn("handler")?;
    scm::send_handler(&sock, &h).ctx("send_handler")?;
    drop(h); // the child's copy is the only one now
    let mut want = vec![0u8; PS as usize];
    let mut got = vec![0u8; PS as usize];
    for p in 0..4 {
        pattern(2, p * PS, &mut want);
        ensure!(f.read_at(&mut got, p * PS).ctx("read_at")? == got.len(), "short read");
        ensure!(got == want, "page {p} differs");
    }
    {
        let m = f.map(&MapOptions::new(4 * PS as usize).offset(4 * PS)).ctx("map")?;
        for p in 0..4u64 {
            pattern(2, (4 + p) * PS, &mut want);
            // try_read: a dead handler gives EFAULT here, not a SIGBUS that kills the test.
            m.try_read((p * PS) as usize, &mut got).ctx("try_read")?;
            ensure!(got == want, "mapped page {} differs", 4 + p);
        }
    }
    drop(f); // no fd or mapping left: the child's handler is no longer needed
    let mut served = [0u8; 8];
    sock.read_exact(&mut served).ctx("the child's report")?;
    ensure!(u64::from_le_bytes(served) == 8, "the child served {} requests", u64::from_le_bytes(served));
    let st = wait_child(&mut child, 30)?;
    ensure!(st.success(), "child: {st}");
    Ok(())
}

/// Each receive validates: a file is no handler, a handler is no file, a writable file is
/// no VIEW. The rejected fd comes back intact and is what was sent.
fn wrong_kinds_are_rejected_and_handed_back() -> Check {
    let f = SealFile::create().ctx("create")?;
    f.write_at(b"rejected", 0).ctx("write_at")?;
    let lazy = SealFile::create().ctx("create lazy")?;
    lazy.set_size(PS).ctx("size")?;
    let h = lazy.enable_fill(HandlerOptions::new()).ctx("enable_fill")?;
    // Handler::try_from here too: a file fd is not a handler, and comes back.
    let dup = f.file().try_clone().ctx("dup")?;
    let e = Handler::try_from(OwnedFd::from(dup)).err().ok_or("a file fd was adopted as a handler")?;
    ensure!(matches!(e.error(), OpenError::NotHandler), "{e}");
    let back = SealFile::try_from_fd(e.into_fd()).ctx("the handed-back fd")?;
    ensure!(back.size().ctx("size")? == 8, "handed-back fd: wrong file");
    let (mut sock, mut child) = spawn("reject")?;
    scm::send_file(&sock, &f).ctx("send file")?;
    scm::send_handler(&sock, &h).ctx("send handler")?;
    scm::send_file(&sock, &f).ctx("send writable")?;
    scm::send_file(&sock, &f.view().ctx("view")?).ctx("send view")?;
    let mut ok = [0u8; 2];
    sock.read_exact(&mut ok).ctx("the child's report")?;
    ensure!(&ok == b"ok", "child reported {ok:?}");
    let st = wait_child(&mut child, 30)?;
    ensure!(st.success(), "child: {st}");
    Ok(())
}
