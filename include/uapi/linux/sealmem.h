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

/* The API version this header describes (struct sealmem_api.api). */
#define SEALMEM_API 1

#define SEALMEM_IOC_MAGIC 0xB5

/* ioctl numbers (the _IOC_NR part); struct sealmem_api.ioctls is a mask of 1 << nr. */
#define SEALMEM_NR_API 0x00

/*
 * Feature bits (struct sealmem_api.features). A feature bit is reported only when the loaded
 * module implements it; requesting a bit the module does not report fails with EINVAL.
 */
#define SEALMEM_FEATURE_SIZE_IO   (1ULL << 0) /* SET/GET_SIZE, read/write, PUNCH_HOLE, mmap */
#define SEALMEM_FEATURE_SEALS     (1ULL << 1) /* ADD/GET_SEALS */
#define SEALMEM_FEATURE_VIEW      (1ULL << 2) /* VIEW: read-only fd of the same file */
#define SEALMEM_FEATURE_LAZY_FILL (1ULL << 3) /* FILL_ENABLE and the handler fd */

/*
 * SEALMEM_IOC_API: handshake, in the style of UFFDIO_API.
 *
 * In:  api      = SEALMEM_API (the version userspace speaks)
 *      features = the feature bits userspace requires (0 for none)
 *      ioctls   = ignored
 * Out: api      = SEALMEM_API
 *      features = every feature bit this module supports
 *      ioctls   = mask of (1 << SEALMEM_NR_*) of the ioctls this module supports on the file
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

#endif /* _UAPI_LINUX_SEALMEM_H */
