// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers linked into sealmem.ko: thin wrappers around static-inline kernel functions
 * that have no Rust binding. Each one is named sealmem_* and does nothing but forward.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/sealmem.h>

/* The C and Rust views of the ABI agree by construction (see scripts/gen-uapi.sh); this
 * keeps the header compiling inside the kernel too. */
static_assert(sizeof(struct sealmem_api) == 24);
