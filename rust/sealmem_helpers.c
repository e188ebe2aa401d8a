// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers linked into sealmem.ko: thin wrappers around static-inline kernel functions
 * that have no Rust binding. Each is named sealmem_* and only forwards; no logic lives here.
 */
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sealmem.h>

#include "sealmem_helpers.h"

/* The C and Rust views of the ABI agree by construction (see scripts/gen-uapi.sh); this
 * keeps the header compiling inside the kernel too. */
static_assert(sizeof(struct sealmem_api) == 24);
static_assert(sizeof(struct sealmem_range) == 16);

void sealmem_get_page(struct page *page)
{
	get_page(page);
}

void sealmem_put_page(struct page *page)
{
	put_page(page);
}

/* Initialises a per-file address_space the way inode_init_always() does for an inode's. */
void sealmem_mapping_init(struct address_space *mapping, struct inode *host)
{
	address_space_init_once(mapping);
	init_rwsem(&mapping->invalidate_lock);
	mapping->host = host;
	mapping->gfp_mask = GFP_HIGHUSER_MOVABLE;
}

bool sealmem_mapping_writably_mapped(struct address_space *mapping)
{
	return mapping_writably_mapped(mapping);
}

void sealmem_invalidate_lock(struct address_space *mapping)
{
	filemap_invalidate_lock(mapping);
}

void sealmem_invalidate_unlock(struct address_space *mapping)
{
	filemap_invalidate_unlock(mapping);
}

void sealmem_invalidate_lock_shared(struct address_space *mapping)
{
	filemap_invalidate_lock_shared(mapping);
}

void sealmem_invalidate_unlock_shared(struct address_space *mapping)
{
	filemap_invalidate_unlock_shared(mapping);
}

/* A page store's XArray: its nodes are charged to the memory cgroup like the pages. */
void sealmem_xa_init(struct xarray *xa)
{
	xa_init_flags(xa, XA_FLAGS_ACCOUNT);
}

bool sealmem_iocb_append(const struct kiocb *iocb)
{
	return iocb->ki_flags & IOCB_APPEND;
}

/* Pseudo files (anon inodes) lack FMODE_PREAD/PWRITE; a VIEW fd must support pread. */
void sealmem_file_allow_pread(struct file *file)
{
	file->f_mode |= FMODE_PREAD | FMODE_PWRITE;
}

unsigned long sealmem_totalram_pages(void)
{
	return totalram_pages();
}

void sealmem_init_waitqueue_head(struct wait_queue_head *wq)
{
	init_waitqueue_head(wq);
}

void sealmem_wake_up_all(struct wait_queue_head *wq)
{
	wake_up_all(wq);
}

void sealmem_wake_up_poll(struct wait_queue_head *wq, __poll_t mask)
{
	wake_up_poll(wq, mask);
}

/* Drops the mmap or per-VMA lock a fault holds, as handle_userfault() does before waiting. */
void sealmem_release_fault_lock(struct vm_fault *vmf)
{
	release_fault_lock(vmf);
}

/* XArray value entries mark poisoned holes in a page store. */
void *sealmem_xa_poison_entry(void)
{
	return xa_mk_value(1);
}

bool sealmem_xa_is_value(const void *entry)
{
	return xa_is_value(entry);
}

/* A read or write that must not sleep: O_NONBLOCK on the file, or RWF_NOWAIT. */
bool sealmem_iocb_nonblock(const struct kiocb *iocb)
{
	return (iocb->ki_flags & IOCB_NOWAIT) || (iocb->ki_filp->f_flags & O_NONBLOCK);
}

/* An xa_state at @index of @xa (XA_STATE() declares one; this initialises one in place). */
void sealmem_xas_init(struct xa_state *xas, struct xarray *xa, unsigned long index)
{
	XA_STATE(init, xa, index);

	*xas = init;
}

void *sealmem_xas_next(struct xa_state *xas)
{
	return xas_next(xas);
}

int sealmem_xas_error(const struct xa_state *xas)
{
	return xas_error(xas);
}
