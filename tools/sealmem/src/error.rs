//! [`Error`]: what the uapi reports beyond an errno, for the calls where it says more.

use std::io;

use crate::Seals;

/// The error of fills ([`Handler::copy`](crate::Handler::copy),
/// [`zeropage`](crate::Handler::zeropage), [`poison`](crate::Handler::poison),
/// [`wake`](crate::Handler::wake), [`fill_end`](crate::Handler::fill_end)) and of the file
/// calls that seals can refuse ([`SealFile::set_size`](crate::SealFile::set_size),
/// [`punch_hole`](crate::SealFile::punch_hole), [`add_seals`](crate::SealFile::add_seals),
/// [`enable_fill`](crate::SealFile::enable_fill)), in the style of the userfaultfd crate's
/// `Error`: one variant per outcome the header distinguishes, with the partial progress a fill
/// reports.
///
/// The kernel reports several of these with the same errno; the crate tells them apart:
/// ranges that are misaligned, empty or overflowing are refused before any ioctl
/// ([`InvalidRange`](Self::InvalidRange)); a fill's `EINVAL` is [`Detached`](Self::Detached)
/// when the handler's fdinfo says `attached: no`, else [`PastEof`](Self::PastEof); an `EPERM`
/// is [`Sealed`](Self::Sealed) when the file has a seal that forbids the call.
///
/// [`raw_os_error`](Self::raw_os_error) is the errno the uapi defines for each variant, and
/// `io::Error::from` keeps it (the bytes done are lost then), so `?` works in functions
/// returning `io::Result`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `EEXIST`: a fill met a present (or poisoned) page and stopped there, after filling
    /// `done` bytes (use [`FillOptions::skip_existing`](crate::FillOptions::skip_existing)
    /// to skip such pages instead).
    Exists {
        /// Bytes filled before the present page.
        done: u64,
    },
    /// `EINVAL`: the range starts at or past EOF (`done` 0), or crosses it and was filled up
    /// to EOF (`done` bytes). The file may have shrunk since the request.
    PastEof {
        /// Bytes filled below EOF.
        done: u64,
    },
    /// `EINVAL`: this handler no longer serves the file: it was ended by `FILL_END` (on any
    /// fd of it) or is no longer attached. Its waiters are not its business any more.
    Detached {
        /// Bytes filled before the handler was detached.
        done: u64,
    },
    /// `EINVAL`, refused by the crate before any ioctl: the offset or length is not a
    /// multiple of the page size, the length is 0, or `offset + len` overflows.
    InvalidRange {
        /// The offset asked for.
        offset: u64,
        /// The length asked for.
        len: u64,
    },
    /// `EPERM` because of the file's seals (`seals`, read right after the failure): SHRINK
    /// or GROW for a size change, WRITE or FUTURE_WRITE for a hole punch or `FILL_ENABLE`,
    /// SEAL for more seals.
    Sealed {
        /// The file's seals.
        seals: Seals,
    },
    /// Any other failure (`EFAULT` a bad source, `ENOMEM`, `ENOSPC` over `max_pages`, `EBUSY`,
    /// `EBADF` or `EPERM` of a read-only fd, ...), after `done` bytes (0 for calls that are
    /// not fills).
    Os {
        /// Bytes filled before the failure.
        done: u64,
        /// The system error.
        error: io::Error,
    },
}

impl Error {
    /// Bytes a fill completed before it stopped (pages skipped with `skip_existing` count).
    pub fn done(&self) -> u64 {
        match self {
            Self::Exists { done } | Self::PastEof { done } | Self::Detached { done } | Self::Os { done, .. } => *done,
            Self::InvalidRange { .. } | Self::Sealed { .. } => 0,
        }
    }

    /// The errno the uapi reports for this outcome.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Exists { .. } => Some(libc::EEXIST),
            Self::PastEof { .. } | Self::Detached { .. } | Self::InvalidRange { .. } => Some(libc::EINVAL),
            Self::Sealed { .. } => Some(libc::EPERM),
            Self::Os { error, .. } => error.raw_os_error(),
        }
    }

    /// An `Os` error with nothing done.
    pub(crate) fn os(error: io::Error) -> Self {
        Self::Os { done: 0, error }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exists { done } => write!(f, "a page is already present (EEXIST) after {done} bytes"),
            Self::PastEof { done } => write!(f, "the range reaches past EOF (EINVAL) after {done} bytes"),
            Self::Detached { done } => write!(f, "the handler no longer serves the file (EINVAL) after {done} bytes"),
            Self::InvalidRange { offset, len } => {
                write!(f, "range {offset:#x}+{len:#x} is not page-aligned, empty or overflows (EINVAL)")
            }
            Self::Sealed { seals } => write!(f, "refused by the file's seals {seals:?} (EPERM)"),
            Self::Os { done: 0, error } => error.fmt(f),
            Self::Os { done, error } => write!(f, "{error} after {done} bytes"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Os { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Self::os(error)
    }
}

/// Keeps the errno ([`Error::raw_os_error`]); an `Os` error is returned as it is.
impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Os { error, .. } => error,
            e => io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }
}

/// The page size of the machine (a power of two; 4096 if `sysconf` fails).
pub(crate) fn page_size() -> u64 {
    // SAFETY: a plain libc call.
    let ps = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if ps > 0 && (ps as u64).is_power_of_two() {
        ps as u64
    } else {
        4096
    }
}

/// Checks a fill's or punch's range as the kernel would: page-aligned, not empty, no overflow.
pub(crate) fn check_range(offset: u64, len: u64) -> Result<(), Error> {
    let mask = page_size() - 1;
    if offset & mask != 0 || len & mask != 0 || len == 0 || offset.checked_add(len).is_none() {
        return Err(Error::InvalidRange { offset, len });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_and_done() {
        let cases = [
            (Error::Exists { done: 8192 }, libc::EEXIST, 8192),
            (Error::PastEof { done: 4096 }, libc::EINVAL, 4096),
            (Error::Detached { done: 0 }, libc::EINVAL, 0),
            (Error::InvalidRange { offset: 1, len: 4096 }, libc::EINVAL, 0),
            (Error::Sealed { seals: Seals::GROW }, libc::EPERM, 0),
            (Error::Os { done: 4096, error: io::Error::from_raw_os_error(libc::ENOSPC) }, libc::ENOSPC, 4096),
        ];
        for (e, errno, done) in cases {
            assert_eq!(e.raw_os_error(), Some(errno), "{e}");
            assert_eq!(e.done(), done, "{e}");
            assert_eq!(io::Error::from(e).raw_os_error(), Some(errno));
        }
    }

    #[test]
    fn ranges_checked_like_the_kernel() {
        let ps = page_size();
        assert!(check_range(0, ps).is_ok());
        assert!(check_range(ps, 3 * ps).is_ok());
        for (o, l) in [(1, ps), (0, ps - 1), (0, 0), (u64::MAX - ps + 1, ps), (ps, u64::MAX - ps + 1)] {
            assert!(
                matches!(check_range(o, l), Err(Error::InvalidRange { offset, len }) if offset == o && len == l),
                "{o:#x}+{l:#x}"
            );
        }
    }
}
