// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers linked into sealmem.ko: thin wrappers around static-inline kernel functions
 * that have no Rust binding, named sealmem_*. Besides forwarding, only these live here:
 * the pseudo filesystem's C data (a file_system_type with C callbacks), the one-line
 * page reference check memfd makes for pins (sealmem_page_has_extra_refs), and the filling
 * of pipe buffers for splice (with the kernel's own nosteal_pipe_buf_ops: no buffer points
 * into this module, which a pipe may outlive).
 */
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/mm.h>
#include <linux/mount.h>
#include <linux/pagemap.h>
#include <linux/pipe_fs_i.h>
#include <linux/pseudo_fs.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sealmem.h>
#include <linux/splice.h>
#include <linux/uio.h>

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

/*
 * sealmem's private pseudo filesystem: one anonymous inode per sealmem file, whose
 * address_space is the file's mapping (i_mmap tree, i_mmap_writable, invalidate_lock), as
 * DRM's drm_fs_inode_new() and KVM's guest_memfd do. Nothing of a sealmem file then depends
 * on the filesystem its device node was opened from. The file_system_type is C data with C
 * callbacks (init_pseudo, kill_anon_super), so it lives here, not in Rust.
 */
#define SEALMEM_FS_MAGIC 0x5ea1face

static struct vfsmount *sealmem_mnt;

static int sealmem_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, SEALMEM_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type sealmem_fs_type = {
	.name = "sealmem",
	.init_fs_context = sealmem_init_fs_context,
	.kill_sb = kill_anon_super,
};

int sealmem_fs_mount(void)
{
	struct vfsmount *mnt = kern_mount(&sealmem_fs_type);

	if (IS_ERR(mnt))
		return PTR_ERR(mnt);
	sealmem_mnt = mnt;
	return 0;
}

/* Every inode is gone by now: each is held by a sealmem file, and each file by the module. */
void sealmem_fs_unmount(void)
{
	kern_unmount(sealmem_mnt);
	sealmem_mnt = NULL;
}

/*
 * A new inode for one sealmem file (an ERR_PTR on failure), charged to the caller's memory
 * cgroup (inode_cachep is SLAB_ACCOUNT). Its a_ops are alloc_anon_inode()'s, which have no
 * read_folio/readahead, so readahead and fadvise/madvise(WILLNEED) do nothing.
 */
struct inode *sealmem_inode_new(void)
{
	return alloc_anon_inode(sealmem_mnt->mnt_sb);
}

struct address_space *sealmem_inode_mapping(struct inode *inode)
{
	return inode->i_mapping;
}

/* The WRITE seal's side of i_mmap_writable, as memfd_add_seals() uses it. */
int sealmem_mapping_deny_writable(struct address_space *mapping)
{
	return mapping_deny_writable(mapping);
}

void sealmem_mapping_allow_writable(struct address_space *mapping)
{
	mapping_allow_writable(mapping);
}

/*
 * Whether a page of a page store has references beyond the store's one and its page-table
 * mappings (a GUP pin such as an io_uring fixed buffer, or a transient one): what
 * memfd_folio_has_extra_refs() checks for page-cache folios.
 */
bool sealmem_page_has_extra_refs(struct page *page)
{
	struct folio *folio = page_folio(page);

	return folio_ref_count(folio) != 1 + folio_mapcount(folio);
}

/* A task that is exiting or dumping core must never wait for a lazy page (handle_userfault). */
bool sealmem_current_exiting_or_dumping(void)
{
	return current->flags & (PF_EXITING | PF_DUMPCORE);
}

/* Copies from @i into @page at @offset with page faults disabled: a short copy, not a fault. */
size_t sealmem_copy_page_from_iter_atomic(struct page *page, size_t offset, size_t bytes,
					  struct iov_iter *i)
{
	return copy_folio_from_iter_atomic(page_folio(page), offset, bytes, i);
}

/*
 * Zeroes @len bytes at @offset in @page, which may be mapped and read or written at the same
 * time (user mappings, read()): as truncate zeroes the tail of a partial page-cache folio
 * (folio_zero_range), the racing accesses see either the old bytes or zeros.
 */
void sealmem_zero_page_range(struct page *page, size_t offset, size_t len)
{
	memzero_page(page, offset, len);
}

/* Sleeps for about @ms milliseconds, killably; true if a fatal signal ended it. */
bool sealmem_sleep_killable_ms(unsigned int ms)
{
	return schedule_timeout_killable(msecs_to_jiffies(ms)) != 0 && fatal_signal_pending(current);
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

void sealmem_cond_resched(void)
{
	cond_resched();
}

bool sealmem_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

/* A splice_read that must not sleep: SPLICE_F_NONBLOCK, or O_NONBLOCK on the file read from. */
bool sealmem_splice_nonblock(const struct file *in, unsigned int flags)
{
	return (flags & SPLICE_F_NONBLOCK) || (in->f_flags & O_NONBLOCK);
}

/* Whether @pipe (locked by the caller) has no free buffer slot. */
bool sealmem_pipe_is_full(const struct pipe_inode_info *pipe)
{
	return pipe_is_full(pipe);
}

/*
 * Lends @page to @pipe (locked by the caller) as one buffer of @len bytes at @offset, as
 * splice_folio_into_pipe() does for a page-cache folio: the buffer takes over the caller's
 * page reference, which the pipe drops with put_page (generic_pipe_buf_release) when the
 * buffer is consumed or the pipe freed; tee() takes more with generic_pipe_buf_get. The
 * ops are nosteal_pipe_buf_ops: a sealmem page is never stolen (SPLICE_F_MOVE), it may
 * still be in a page store. False, the reference still the caller's, if the pipe is full.
 */
bool sealmem_pipe_push_page(struct pipe_inode_info *pipe, struct page *page, size_t offset,
			    size_t len)
{
	struct pipe_buffer *buf;

	if (pipe_is_full(pipe))
		return false;
	buf = pipe_head_buf(pipe);
	*buf = (struct pipe_buffer) {
		.ops	= &nosteal_pipe_buf_ops,
		.page	= page,
		.offset	= offset,
		.len	= len,
	};
	pipe->head++;
	return true;
}

/*
 * Puts @len bytes of zeros at @offset of ZERO_PAGE(0) into @pipe (locked by the caller), as
 * shmem's splice_zeropage_into_pipe() does for a hole; false if the pipe is full. Unlike
 * shmem (built in), the buffer must not use ops of this module: a pipe outlives the file
 * that filled it, so sealmem may be unloaded before the buffer is released. It takes a
 * reference to the zero page and uses the kernel's nosteal_pipe_buf_ops, as vmsplice()
 * does for a zero-page mapping (get_user_pages with FOLL_GET refcounts the zero page; its
 * count never reaches zero).
 */
bool sealmem_pipe_push_zeros(struct pipe_inode_info *pipe, size_t offset, size_t len)
{
	struct pipe_buffer *buf;

	if (pipe_is_full(pipe))
		return false;
	/* As generic_pipe_buf_get does: refuse rather than overflow the count. */
	if (!try_get_page(ZERO_PAGE(0)))
		return false;
	buf = pipe_head_buf(pipe);
	*buf = (struct pipe_buffer) {
		.ops	= &nosteal_pipe_buf_ops,
		.page	= ZERO_PAGE(0),
		.offset	= offset,
		.len	= len,
	};
	pipe->head++;
	return true;
}
