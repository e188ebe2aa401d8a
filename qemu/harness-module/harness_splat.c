// SPDX-License-Identifier: GPL-2.0
/*
 * harness_splat: a test-only module that makes the kernel splat on purpose, so the VM
 * runner can prove that it fails a run on a kernel report (qemu/harness-selftest.sh).
 * It is never part of sealmem.
 *
 *   insmod harness_splat.ko what=warn    one WARNING
 *   insmod harness_splat.ko what=kasan   one KASAN slab-out-of-bounds read (debug kernel)
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

static char *what = "warn";
module_param(what, charp, 0444);

static int __init harness_splat_init(void)
{
	if (!strcmp(what, "warn")) {
		WARN(1, "harness_splat: planted warning\n");
	} else if (!strcmp(what, "kasan")) {
		volatile char *p = kmalloc(16, GFP_KERNEL);

		if (!p)
			return -ENOMEM;
		pr_info("harness_splat: planted out-of-bounds read: %d\n", p[16 + 8]);
		kfree((void *)p);
	} else {
		return -EINVAL;
	}
	/* Refuse to stay loaded: the point was the report. */
	return -EAGAIN;
}
module_init(harness_splat_init);
MODULE_DESCRIPTION("sealmem harness self-test: planted kernel splats");
MODULE_LICENSE("GPL");
