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
