//! The raw ABI, generated from `include/uapi/linux/sealmem.h` by `scripts/gen-uapi.sh`.
//! The kernel module includes the very same file, so numbers and layouts cannot drift.
#![allow(dead_code, non_camel_case_types, non_upper_case_globals)]

#[path = "../../../include/uapi/rust/sealmem_uapi.rs"]
mod generated;
pub use generated::*;
