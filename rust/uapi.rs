// SPDX-License-Identifier: GPL-2.0

//! sealmem's user ABI, generated from `include/uapi/linux/sealmem.h`.
//!
//! The definitions come from `include/uapi/rust/sealmem_uapi.rs` (see `scripts/gen-uapi.sh`),
//! the same file the Rust userspace crate uses, so the module, the C selftests and the Rust
//! userspace code agree on every number and layout by construction.

#![allow(
    dead_code,
    non_camel_case_types,
    non_upper_case_globals,
    unreachable_pub
)]

// bindgen's `Default` impls zero the structs in unsafe blocks it does not comment.
#[allow(clippy::undocumented_unsafe_blocks)]
// The generated file is formatted by its generator, not by `make rustfmt`.
#[rustfmt::skip]
#[path = "../include/uapi/rust/sealmem_uapi.rs"]
mod generated;
pub(crate) use generated::*;

use kernel::transmute::{AsBytes, FromBytes};

// SAFETY: `sealmem_api` is `#[repr(C)]` and made only of `u64` fields (checked by the generated
// layout assertions), so it has no padding and every bit pattern is a valid value.
unsafe impl FromBytes for sealmem_api {}
// SAFETY: As above: no padding, so all its bytes are initialised.
unsafe impl AsBytes for sealmem_api {}

// SAFETY: `sealmem_range` is `#[repr(C)]` with two `u64` fields: no padding, any bits valid.
unsafe impl FromBytes for sealmem_range {}
// SAFETY: As above.
unsafe impl AsBytes for sealmem_range {}

// SAFETY: `sealmem_copy` is `#[repr(C)]` with five 64-bit integer fields: no padding, any
// bits valid.
unsafe impl FromBytes for sealmem_copy {}
// SAFETY: As above.
unsafe impl AsBytes for sealmem_copy {}
// SAFETY: `sealmem_fill` is `#[repr(C)]` with four 64-bit integer fields.
unsafe impl FromBytes for sealmem_fill {}
// SAFETY: As above.
unsafe impl AsBytes for sealmem_fill {}
// SAFETY: `sealmem_msg` is `#[repr(C)]`: a `u64` then two `u32`s, 16 bytes, no padding.
unsafe impl AsBytes for sealmem_msg {}
