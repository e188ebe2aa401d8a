//! Passing sealmem fds between processes over a Unix socket (`SCM_RIGHTS`).
//!
//! A message carries one fd and one byte naming its kind (`F` a writable file, `V` a VIEW,
//! `H` a handler; informative only). The receiver never trusts it: every received fd is
//! validated the way [`SealFile::try_from_fd`] and [`Handler::try_from_fd`] do (no ioctl
//! reaches an fd before it is identified as sealmem's), and an fd that fails comes back in
//! [`RecvError::Rejected`]. Fds are received close-on-exec (`MSG_CMSG_CLOEXEC`); a message
//! with no fd, several fds or truncated control data is [`RecvError::Malformed`], and every
//! fd it carried is closed.
//!
//! ```no_run
//! use std::os::unix::net::UnixStream;
//! use sealmem::{scm, SealFile};
//!
//! let (a, b) = UnixStream::pair()?;
//! let f = SealFile::create()?;
//! f.write_at(b"hello", 0)?;
//! scm::send_file(&a, &f.view()?)?;          // a read-only fd of the same file
//! let view = scm::recv_view(&b)?;           // validated: sealmem, and read-only
//! let mut buf = [0u8; 5];
//! view.read_at(&mut buf, 0)?;
//! assert_eq!(&buf, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::{FromFdError, Handler, OpenError, SealFile};

/// Why a receive gave no adopted fd.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecvError {
    /// `recvmsg` failed.
    Io(io::Error),
    /// The peer closed the connection: no message.
    Closed,
    /// A message without exactly one fd (the fds it had are closed), or with truncated
    /// control data.
    Malformed(&'static str),
    /// The fd is not what was asked for (not sealmem's, not a handler, not read-only...):
    /// it is handed back intact, with the reason.
    Rejected(FromFdError),
}

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "recvmsg: {e}"),
            Self::Closed => f.write_str("the peer closed the socket"),
            Self::Malformed(why) => write!(f, "malformed fd message: {why}"),
            Self::Rejected(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RecvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Rejected(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for RecvError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// `Io` gives back its error; `Closed` is `UnexpectedEof`; `Malformed` is `InvalidData`;
/// `Rejected` closes the fd and converts as its [`OpenError`] does.
impl From<RecvError> for io::Error {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Io(e) => e,
            RecvError::Closed => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            RecvError::Malformed(_) => io::Error::new(io::ErrorKind::InvalidData, e),
            RecvError::Rejected(e) => e.into(),
        }
    }
}

/// Sends a file fd (writable, or a VIEW) over `sock`, a connected Unix socket. The receiver
/// gets an fd of the same file with the same access: send [`SealFile::view`] to hand out
/// read-only access.
pub fn send_file(sock: impl AsFd, file: &SealFile) -> io::Result<()> {
    let tag = if file.is_read_only()? { b'V' } else { b'F' };
    send_fd(sock.as_fd(), file.as_fd(), tag)
}

/// Sends a handler fd over `sock`. The receiver may read requests and fill (requests go to
/// whichever reader reads first: stop reading here once it serves).
pub fn send_handler(sock: impl AsFd, handler: &Handler) -> io::Result<()> {
    send_fd(sock.as_fd(), handler.as_fd(), b'H')
}

/// Receives a sealmem file fd (writable or VIEW) and adopts it with
/// [`SealFile::try_from_fd`] (identity check, then the API handshake).
pub fn recv_file(sock: impl AsFd) -> Result<SealFile, RecvError> {
    SealFile::try_from_fd(recv_fd(sock.as_fd())?).map_err(RecvError::Rejected)
}

/// Receives a read-only sealmem file fd (a VIEW): like [`recv_file`], and a writable fd is
/// rejected with [`OpenError::NotView`] (handed back, never used).
pub fn recv_view(sock: impl AsFd) -> Result<SealFile, RecvError> {
    let fd = recv_fd(sock.as_fd())?;
    // SAFETY: F_GETFL takes no argument and touches nothing but the fd's flags.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if fl < 0 {
        let error = OpenError::Io(io::Error::last_os_error());
        return Err(RecvError::Rejected(FromFdError { fd, error }));
    }
    let f = SealFile::try_from_fd(fd).map_err(RecvError::Rejected)?;
    if fl & libc::O_ACCMODE != libc::O_RDONLY {
        return Err(RecvError::Rejected(FromFdError { fd: f.into(), error: OpenError::NotView }));
    }
    Ok(f)
}

/// Receives a handler fd and adopts it with [`Handler::try_from_fd`].
pub fn recv_handler(sock: impl AsFd) -> Result<Handler, RecvError> {
    Handler::try_from_fd(recv_fd(sock.as_fd())?).map_err(RecvError::Rejected)
}

/// A control buffer for `n` fds, aligned for `cmsghdr`.
fn cmsg_buffer(n: usize) -> (Vec<u64>, usize) {
    // SAFETY: CMSG_SPACE is arithmetic.
    let space = unsafe { libc::CMSG_SPACE((n * std::mem::size_of::<libc::c_int>()) as u32) } as usize;
    (vec![0u64; space.div_ceil(8)], space)
}

/// Sends one fd with one byte of data.
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>, tag: u8) -> io::Result<()> {
    let mut data = [tag];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: 1 };
    let (mut cbuf, space) = cmsg_buffer(1);
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths; musl's padding too).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer holds CMSG_SPACE(one int), so the first header and its one
    // int of data lie within it (CMSG_FIRSTHDR is not null for a buffer that large).
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>(), fd.as_raw_fd());
    }
    loop {
        // SAFETY: `msg` points to live buffers for the call.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n == 1 {
            return Ok(());
        }
        if n >= 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "sendmsg sent no data"));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Receives one message and the one fd it must carry (unvalidated).
pub fn recv_fd(sock: BorrowedFd<'_>) -> Result<OwnedFd, RecvError> {
    let mut data = [0u8; 1];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: 1 };
    // Room for a few fds: a message with more than one is refused, but its fds are received
    // (and closed) rather than left to MSG_CTRUNC.
    let (mut cbuf, space) = cmsg_buffer(8);
    // SAFETY: an all-zero msghdr is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let n = loop {
        // SAFETY: `msg` points to live buffers for the call.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(RecvError::Io(e));
        }
    };
    // Own every fd received before looking at anything else, so that all are closed on
    // every error path.
    let mut fds = Vec::new();
    // SAFETY: the kernel filled the control buffer and set msg_controllen; the CMSG macros
    // walk headers within it, and each SCM_RIGHTS payload holds `count` ints, new fds that
    // this process owns now.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let payload = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                let p = libc::CMSG_DATA(c).cast::<libc::c_int>();
                for i in 0..payload / std::mem::size_of::<libc::c_int>() {
                    let raw = std::ptr::read_unaligned(p.add(i));
                    if raw >= 0 {
                        fds.push(OwnedFd::from_raw_fd(raw));
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if n == 0 && fds.is_empty() {
        return Err(RecvError::Closed);
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(RecvError::Malformed("control data truncated (MSG_CTRUNC)"));
    }
    match fds.len() {
        1 => fds.pop().ok_or(RecvError::Malformed("no fd")),
        0 => Err(RecvError::Malformed("no fd")),
        _ => Err(RecvError::Malformed("more than one fd")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    fn fstat_ino(fd: BorrowedFd<'_>) -> (u64, u64) {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat fills the buffer on success.
        assert_eq!(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) }, 0);
        // SAFETY: fstat succeeded.
        let st = unsafe { st.assume_init() };
        #[allow(clippy::unnecessary_cast)] // not u64 on every target
        (st.st_dev as u64, st.st_ino as u64)
    }

    fn pipe() -> (std::fs::File, std::fs::File) {
        let mut fds = [0; 2];
        // SAFETY: a plain syscall filling `fds`.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: two new fds nothing else owns.
        unsafe { (std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(fds[1])) }
    }

    /// Any fd goes through; the receiver's is the same file, close-on-exec.
    #[test]
    fn raw_round_trip_is_the_same_file_cloexec() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, mut w) = pipe();
        send_fd(a.as_fd(), r.as_fd(), b'X').unwrap();
        let got = recv_fd(b.as_fd()).unwrap();
        assert_ne!(got.as_raw_fd(), r.as_raw_fd());
        assert_eq!(fstat_ino(got.as_fd()), fstat_ino(r.as_fd()));
        // SAFETY: F_GETFD takes no argument.
        assert_eq!(unsafe { libc::fcntl(got.as_raw_fd(), libc::F_GETFD) } & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        w.write_all(b"via scm").unwrap();
        drop(w);
        let mut s = String::new();
        std::fs::File::from(got).read_to_string(&mut s).unwrap();
        assert_eq!(s, "via scm");
    }

    /// A non-sealmem fd is rejected by each typed receive and handed back intact.
    #[test]
    fn typed_receives_reject_other_fds_and_hand_them_back() {
        let (a, b) = UnixStream::pair().unwrap();
        type Recv = fn(&UnixStream) -> Result<(), RecvError>;
        let recvs: [(Recv, &str); 3] = [
            (|s| recv_file(s).map(drop), "not a sealmem file"),
            (|s| recv_view(s).map(drop), "not a sealmem file"),
            (|s| recv_handler(s).map(drop), "not a sealmem handler fd"),
        ];
        for (recv, why) in recvs {
            let (r, mut w) = pipe();
            let id = fstat_ino(r.as_fd());
            send_fd(a.as_fd(), r.as_fd(), b'F').unwrap();
            drop(r);
            match recv(&b) {
                Err(RecvError::Rejected(e)) => {
                    assert_eq!(e.error().to_string(), why);
                    let fd = e.into_fd();
                    assert_eq!(fstat_ino(fd.as_fd()), id);
                    w.write_all(b"back").unwrap();
                    let mut got = [0u8; 4];
                    std::fs::File::from(fd).read_exact(&mut got).unwrap();
                    assert_eq!(&got, b"back");
                }
                other => panic!("expected Rejected, got {other:?}"),
            }
        }
    }

    /// A message with no fd, or with two, is malformed; a closed peer is `Closed`.
    #[test]
    fn malformed_messages_and_eof() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"F").unwrap();
        assert!(matches!(recv_fd(b.as_fd()), Err(RecvError::Malformed("no fd"))));
        // Two fds in one message.
        let (r, w) = pipe();
        let mut data = [b'F'];
        let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: 1 };
        let (mut cbuf, space) = cmsg_buffer(2);
        // SAFETY: as in send_fd, with room for two ints.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(8) as _;
            let p = libc::CMSG_DATA(c).cast::<libc::c_int>();
            std::ptr::write_unaligned(p, r.as_raw_fd());
            std::ptr::write_unaligned(p.add(1), w.as_raw_fd());
            assert_eq!(libc::sendmsg(a.as_raw_fd(), &msg, 0), 1);
        }
        assert!(matches!(recv_fd(b.as_fd()), Err(RecvError::Malformed("more than one fd"))));
        drop(a);
        assert!(matches!(recv_fd(b.as_fd()), Err(RecvError::Closed)));
        let e = io::Error::from(RecvError::Closed);
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    /// Not a socket: the errno of sendmsg/recvmsg.
    #[test]
    fn not_a_socket_is_enotsock() {
        let (r, w) = pipe();
        assert_eq!(send_fd(w.as_fd(), r.as_fd(), b'F').unwrap_err().raw_os_error(), Some(libc::ENOTSOCK));
        assert!(matches!(recv_fd(r.as_fd()), Err(RecvError::Io(e)) if e.raw_os_error() == Some(libc::ENOTSOCK)));
    }
}
