/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * sealmem: sealed anonymous memory files with userfaultfd-style lazy fill.
 *
 * This is the ONE definition of sealmem's user ABI. The kernel module (Rust), the C
 * selftests and the Rust userspace crate all use it: the Rust side through
 * include/uapi/rust/sealmem_uapi.rs, which scripts/gen-uapi.sh generates from this file
 * (bindgen for the structs and constants, the C preprocessor for the ioctl numbers).
 * `make uapi-check` fails the build when the generated file is stale.
 *
 * Every open() of /dev/sealmem creates a new, empty sealmem file. See
 * docs/ and README.md for the full semantics.
 */
#ifndef _UAPI_LINUX_SEALMEM_H
#define _UAPI_LINUX_SEALMEM_H

#include <linux/types.h>
#include <linux/ioctl.h>

/*
 * The API version this header describes (struct sealmem_api.api). Version 2: the ioctl
 * magic moved from 0xB5 to 0xB9 (below); the ioctls themselves are version 1's.
 */
#define SEALMEM_API 2

/*
 * The ioctl code. 0xB9 has no entry in the kernel's
 * Documentation/userspace-api/ioctl/ioctl-number.rst (Linux 7.3), between 0xB8 (mrvl_cn10k_dpi,
 * mshv) and 0xBA (liveupdate). Version 1 used 0xB5, whose 0x00-0x0F range belongs to rpmsg
 * (uapi/linux/rpmsg.h): the same numbers would have meant rpmsg ioctls to a program that
 * opened the wrong device.
 */
#define SEALMEM_IOC_MAGIC 0xB9

/* ioctl numbers (the _IOC_NR part); struct sealmem_api.ioctls is a mask of 1 << nr. */
#define SEALMEM_NR_API        0x00
#define SEALMEM_NR_SET_SIZE   0x01
#define SEALMEM_NR_GET_SIZE   0x02
#define SEALMEM_NR_PUNCH_HOLE 0x03
#define SEALMEM_NR_ADD_SEALS  0x04
#define SEALMEM_NR_GET_SEALS  0x05
#define SEALMEM_NR_SET_NAME   0x06
#define SEALMEM_NR_GET_NAME   0x07
#define SEALMEM_NR_VIEW       0x08
#define SEALMEM_NR_FILL_ENABLE 0x09
#define SEALMEM_NR_SET_HUGE   0x0A
/* ioctls of the handler fd */
#define SEALMEM_NR_COPY       0x10
#define SEALMEM_NR_ZEROPAGE   0x11
#define SEALMEM_NR_WAKE       0x12
#define SEALMEM_NR_POISON     0x13
#define SEALMEM_NR_FILL_END   0x14

/*
 * Feature bits (struct sealmem_api.features). A feature bit is reported only when the loaded
 * module implements it; requesting a bit the module does not report fails with EINVAL.
 */
#define SEALMEM_FEATURE_SIZE_IO   (1ULL << 0) /* SET/GET_SIZE, read/write, PUNCH_HOLE, mmap */
#define SEALMEM_FEATURE_SEALS     (1ULL << 1) /* ADD/GET_SEALS */
#define SEALMEM_FEATURE_VIEW      (1ULL << 2) /* VIEW: read-only fd of the same file */
#define SEALMEM_FEATURE_LAZY_FILL (1ULL << 3) /* FILL_ENABLE and the handler fd */
#define SEALMEM_FEATURE_HUGE      (1ULL << 4) /* SET_HUGE: 2 MiB fill units, PMD mappings */

/*
 * SEALMEM_IOC_API: handshake, in the style of UFFDIO_API.
 *
 * In:  api      = SEALMEM_API (the version userspace speaks)
 *      features = the feature bits userspace requires (0 for none)
 *      ioctls   = ignored
 * Out: api      = SEALMEM_API
 *      features = every feature bit this module supports
 *      ioctls   = mask of (1 << SEALMEM_NR_*) of the ioctls this module supports (on the
 *                 file, and for SEALMEM_NR_COPY..FILL_END on the handler fd)
 *
 * Errors: EINVAL if api is not a version the module speaks, or if features asks for a bit
 * the module does not support; in both cases the struct is written back zeroed.
 * EFAULT for a bad pointer.
 */
struct sealmem_api {
	__u64 api;
	__u64 features;
	__u64 ioctls;
};

#define SEALMEM_IOC_API _IOWR(SEALMEM_IOC_MAGIC, SEALMEM_NR_API, struct sealmem_api)

/*
 * Seals: the same bits and rules as memfd's F_SEAL_* (docs/api.md, "Seals"), except that
 * SEALMEM_SEAL_EXEC forbids executable mappings (shared or private).
 */
#define SEALMEM_SEAL_SEAL         0x0001 /* no more seals may be added */
#define SEALMEM_SEAL_SHRINK       0x0002 /* the size may not shrink */
#define SEALMEM_SEAL_GROW         0x0004 /* the size may not grow (nor a write past EOF) */
#define SEALMEM_SEAL_WRITE        0x0008 /* no writes; EBUSY while shared-writably mapped */
#define SEALMEM_SEAL_FUTURE_WRITE 0x0010 /* no new writers; existing writable maps keep working */
#define SEALMEM_SEAL_EXEC         0x0020 /* no executable mappings */
#define SEALMEM_SEALS_ALL         0x003f

/* The longest name SET_NAME accepts, without its terminating NUL (as memfd_create). */
#define SEALMEM_NAME_MAX 249

/* Flags of the fd-returning ioctls (VIEW, and later FILL_ENABLE). */
#define SEALMEM_FD_CLOEXEC  0x1
#define SEALMEM_FD_NONBLOCK 0x2

/* A byte range of the file. */
struct sealmem_range {
	__u64 offset;
	__u64 len;
};

/* A file name: NUL-terminated within its first SEALMEM_NAME_MAX + 1 bytes. */
struct sealmem_name {
	char name[256];
};

/*
 * SEALMEM_IOC_SET_SIZE (writable fd): ftruncate semantics. Growing adds holes; shrinking
 * frees the pages past the new end and removes them from every mapping (later access
 * there raises SIGBUS). EPERM: blocked by SHRINK/GROW; EFBIG: above the max_file_size
 * module parameter; EBADF: read-only fd.
 */
#define SEALMEM_IOC_SET_SIZE _IOW(SEALMEM_IOC_MAGIC, SEALMEM_NR_SET_SIZE, __u64)
/* SEALMEM_IOC_GET_SIZE: the size in bytes. */
#define SEALMEM_IOC_GET_SIZE _IOR(SEALMEM_IOC_MAGIC, SEALMEM_NR_GET_SIZE, __u64)
/*
 * SEALMEM_IOC_PUNCH_HOLE (writable fd): frees the pages of a page-aligned range and removes
 * them from all shared mappings (private copy-on-write copies stay, as with
 * fallocate(PUNCH_HOLE)); the part past EOF is ignored; the size does not change.
 * EINVAL: misaligned, zero length or offset + len overflows; EPERM: WRITE or FUTURE_WRITE
 * seal; EBADF: read-only fd.
 */
#define SEALMEM_IOC_PUNCH_HOLE _IOW(SEALMEM_IOC_MAGIC, SEALMEM_NR_PUNCH_HOLE, struct sealmem_range)
/*
 * SEALMEM_IOC_ADD_SEALS (writable fd): EPERM: read-only fd or SEAL already set; EINVAL:
 * unknown bits; EBUSY: adding WRITE while a shared mapping could write.
 */
#define SEALMEM_IOC_ADD_SEALS _IOW(SEALMEM_IOC_MAGIC, SEALMEM_NR_ADD_SEALS, __u32)
/* SEALMEM_IOC_GET_SEALS: the current seals. */
#define SEALMEM_IOC_GET_SEALS _IOR(SEALMEM_IOC_MAGIC, SEALMEM_NR_GET_SEALS, __u32)
/*
 * SEALMEM_IOC_SET_NAME (writable fd): sets the name shown in fdinfo. EINVAL: no NUL within
 * the first SEALMEM_NAME_MAX + 1 bytes; EBADF: read-only fd.
 */
#define SEALMEM_IOC_SET_NAME _IOW(SEALMEM_IOC_MAGIC, SEALMEM_NR_SET_NAME, struct sealmem_name)
/* SEALMEM_IOC_GET_NAME: the name, NUL-terminated (empty if never set). */
#define SEALMEM_IOC_GET_NAME _IOR(SEALMEM_IOC_MAGIC, SEALMEM_NR_GET_NAME, struct sealmem_name)
/*
 * SEALMEM_IOC_VIEW: returns a new read-only fd of the same file (the ioctl's return value).
 * The argument is a mask of SEALMEM_FD_CLOEXEC (unknown bits: EINVAL). A VIEW fd can read,
 * mmap read-only or private, and fault; writes give EBADF, SET_SIZE/PUNCH_HOLE/SET_NAME
 * EBADF, ADD_SEALS EPERM.
 */
#define SEALMEM_IOC_VIEW _IO(SEALMEM_IOC_MAGIC, SEALMEM_NR_VIEW)

/*
 * Huge files (docs/api.md, "Huge files"). SEALMEM_HUGE_SIZE is the fill unit of a huge file:
 * one PMD mapping (2 MiB; SEALMEM_FEATURE_HUGE is reported only where the kernel's PMD size
 * is this and transparent huge pages are built in).
 *
 * SEALMEM_IOC_SET_HUGE (writable fd): makes the file huge, for good. The argument must be 0
 * (EINVAL otherwise). Each 2 MiB unit of a huge file that is entirely a hole is filled as a
 * whole: a lazy file raises ONE request per such unit (SEALMEM_MSG_HUGE), COPY and ZEROPAGE
 * of a whole unit install it atomically as one 2 MiB folio (or, when no 2 MiB block of memory
 * is free, as 512 pages, with the same atomicity), and a file that is not lazy allocates a
 * 2 MiB folio on the first touch of a unit within EOF. Mappings of a huge file are aligned
 * to 2 MiB and map whole units with one PMD. Errors: EBADF: read-only fd; EBUSY: the file
 * already has pages (or poisoned pages) or mappings; EOPNOTSUPP: the module has no
 * SEALMEM_FEATURE_HUGE. Already huge: 0.
 */
#define SEALMEM_HUGE_SHIFT 21
#define SEALMEM_HUGE_SIZE  (1ULL << SEALMEM_HUGE_SHIFT)
#define SEALMEM_IOC_SET_HUGE _IO(SEALMEM_IOC_MAGIC, SEALMEM_NR_SET_HUGE)

/*
 * Lazy fill (docs/api.md, "Lazy fill").
 *
 * SEALMEM_IOC_FILL_ENABLE (writable fd): makes the file lazy and returns a new handler fd
 * (the ioctl's return value); the argument is a mask of SEALMEM_FD_CLOEXEC and
 * SEALMEM_FD_NONBLOCK. While the file is lazy, every access to a hole (a fault through any
 * mapping, read/pread/splice, a write into a hole) raises one request per missing page and
 * waits until the handler fills it.
 * Errors: EBUSY: a handler is attached; EPERM: read-only fd, or the file is write-sealed
 * and not already lazy (a new handler may attach to a lazy file whose handler is gone);
 * EINVAL: unknown flags.
 */
#define SEALMEM_IOC_FILL_ENABLE _IO(SEALMEM_IOC_MAGIC, SEALMEM_NR_FILL_ENABLE)

/*
 * What read() on the handler fd returns: one message per missing page. read() returns as
 * many whole messages as fit (EINVAL if the buffer holds none), blocks until one is pending
 * (EAGAIN with O_NONBLOCK; EINTR on a signal), and returns 0 once the handler is no longer
 * needed: after FILL_END, or once the file has no fds or mappings left (poll: EPOLLHUP).
 */
struct sealmem_msg {
	__u64 offset; /* byte offset of the missing page */
	__u32 flags;  /* SEALMEM_MSG_* */
	__u32 tid;    /* requesting thread, as seen from the handler's pid namespace; 0 if not visible */
};

#define SEALMEM_MSG_WRITE 0x1 /* the access was a write */
#define SEALMEM_MSG_FAULT 0x2 /* a page fault (otherwise read/write/splice on an fd) */
/*
 * A huge file's whole unit is missing: offset is the unit's (SEALMEM_HUGE_SIZE-aligned), and
 * the request covers SEALMEM_HUGE_SIZE bytes, or up to EOF rounded up to a page for the last
 * unit. Filling the unit with one COPY or ZEROPAGE of that range installs it as one folio.
 * Without this flag the request is for one page (a unit that is partly present).
 */
#define SEALMEM_MSG_HUGE  0x4

/* Flags of COPY, ZEROPAGE and POISON. */
#define SEALMEM_FILL_DONTWAKE      0x1 /* do not wake waiters (use WAKE later) */
#define SEALMEM_FILL_SKIP_EXISTING 0x2 /* skip present pages instead of stopping with EEXIST */

/*
 * SEALMEM_IOC_COPY (handler fd): fills the holes of [offset, offset + len) from the handler's
 * memory at src. offset and len are page-aligned (EINVAL); src may be any address (unlike
 * UFFDIO_COPY, which wants it page-aligned too). Atomic per page: a page is a
 * hole or completely filled, never partial, never overwritten. A present page stops the copy
 * with EEXIST (unless SKIP_EXISTING); a range starting at or past EOF fails with EINVAL; one
 * crossing EOF fills up to EOF, then stops with EINVAL. On return, copy holds the bytes
 * filled (pages skipped with SKIP_EXISTING count as filled), or a negated errno if nothing
 * was filled, as uffdio_copy.copy. Other errors: EFAULT (src), ENOMEM, ENOSPC (max_pages),
 * EINVAL (the handler was ended by FILL_END or replaced).
 */
struct sealmem_copy {
	__u64 offset;
	__u64 src;
	__u64 len;
	__u64 flags;
	__s64 copy;
};

#define SEALMEM_IOC_COPY _IOWR(SEALMEM_IOC_MAGIC, SEALMEM_NR_COPY, struct sealmem_copy)

/*
 * SEALMEM_IOC_ZEROPAGE fills holes with zeros, SEALMEM_IOC_POISON marks holes poisoned (the
 * page can never be read: faults raise SIGBUS, read() fails with EIO). Same rules and errors
 * as COPY (without src); done reports the bytes handled.
 */
struct sealmem_fill {
	__u64 offset;
	__u64 len;
	__u64 flags;
	__s64 done;
};

#define SEALMEM_IOC_ZEROPAGE _IOWR(SEALMEM_IOC_MAGIC, SEALMEM_NR_ZEROPAGE, struct sealmem_fill)
#define SEALMEM_IOC_POISON _IOWR(SEALMEM_IOC_MAGIC, SEALMEM_NR_POISON, struct sealmem_fill)
/* SEALMEM_IOC_WAKE: wakes the waiters of a page-aligned range (after DONTWAKE fills). */
#define SEALMEM_IOC_WAKE _IOW(SEALMEM_IOC_MAGIC, SEALMEM_NR_WAKE, struct sealmem_range)
/*
 * SEALMEM_IOC_FILL_END: ends lazy mode: remaining holes become ordinary zero holes, all
 * waiters continue, and this handler fd is done (read returns 0, further fills EINVAL).
 */
#define SEALMEM_IOC_FILL_END _IO(SEALMEM_IOC_MAGIC, SEALMEM_NR_FILL_END)

#endif /* _UAPI_LINUX_SEALMEM_H */
