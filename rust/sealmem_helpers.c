// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers linked into sealmem.ko: thin wrappers around static-inline kernel functions
 * that have no Rust binding, named sealmem_*. Besides forwarding, only these live here:
 * the pseudo filesystem's C data (a file_system_type with C callbacks), the page reference
 * check memfd makes for pins (sealmem_entry_has_extra_refs), the filling of pipe buffers for
 * splice (with the kernel's own nosteal_pipe_buf_ops: no buffer points into this module,
 * which a pipe may outlive), and the huge-unit XArray walks and PMD/THP calls, whose
 * XArray state machines and THP inlines have no Rust binding.
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

/* A task that is exiting or dumping core must never wait for a lazy page (handle_userfault). */
bool sealmem_current_exiting_or_dumping(void)
{
	return current->flags & (PF_EXITING | PF_DUMPCORE);
}

/* Copies from @i into @page at @offset with page faults disabled: a short copy, not a fault. */
size_t sealmem_copy_page_from_iter_atomic(struct page *page, size_t offset, size_t bytes,
					  struct iov_iter *i)
{
	struct folio *folio = page_folio(page);

	/* The offset is the folio's: a subpage of a huge unit's folio starts further in. */
	return copy_folio_from_iter_atomic(folio, folio_page_idx(folio, page) * PAGE_SIZE + offset,
					   bytes, i);
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

int sealmem_restart_syscall(void)
{
	return restart_syscall();
}

/*
 * Whether the current task is in a system call that a restart_syscall() can start over: not
 * a kernel thread or an io_uring worker (io-wq runs IORING_OP_SPLICE; nothing restarts it,
 * and the worker's CQE would get an error instead).
 */
bool sealmem_may_restart_syscall(void)
{
	return !(current->flags & (PF_KTHREAD | PF_IO_WORKER));
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

/*
 * Huge files (docs/api.md, "Huge files"): 2 MiB units of a page store, each either one folio
 * of PMD order or (when no such block of memory is free) 512 order-0 pages. A unit's folio is
 * stored as 512 XArray entries, one per subpage, each owning one folio reference, as the page
 * cache holds folio_nr_pages() references for a large folio: every other path (lookup,
 * removal by page, splice, pins) keeps working page by page.
 */
bool sealmem_huge_supported(void)
{
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	return HPAGE_PMD_SHIFT == 21 && has_transparent_hugepage();
#else
	return false;
#endif
}

/*
 * A new folio of PMD order (its head page; NULL if none is free), charged to the caller's
 * memory cgroup. Not movable (sealmem pages have no migration support, as order-0 ones
 * allocated with GFP_KERNEL_ACCOUNT); __GFP_NORETRY: a failure falls back to small pages,
 * it must not push the machine into heavy reclaim. light (a first touch by a fault or a
 * write, under the mmap or file locks): no direct reclaim or compaction at all, only kswapd
 * is woken (THP's "defer" defrag mode), and no dipping into the atomic reserves
 * (__GFP_NOMEMALLOC, as GFP_TRANSHUGE_LIGHT); a fill (the handler's ioctl, no lock held)
 * may compact once.
 */
struct page *sealmem_alloc_huge(bool zero, bool light)
{
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	gfp_t gfp = GFP_KERNEL_ACCOUNT | __GFP_NORETRY | __GFP_NOWARN;
	struct folio *folio;

	if (light)
		gfp = (gfp & ~__GFP_DIRECT_RECLAIM) | __GFP_NOMEMALLOC;
	folio = folio_alloc(zero ? gfp | __GFP_ZERO : gfp, HPAGE_PMD_ORDER);

	return folio ? &folio->page : NULL;
#else
	return NULL;
#endif
}

/* Copies len bytes (at most the folio) from user memory into a folio nobody else can reach
 * yet; returns the bytes NOT copied. May fault and sleep: no lock may be held. */
unsigned long sealmem_huge_copy_from_user(struct page *head, unsigned long src, size_t len)
{
	struct folio *folio = page_folio(head);

	if (len > folio_size(folio))
		return len;
	return copy_from_user(folio_address(folio), (const void __user *)src, len);
}

/*
 * XA_MARK_0 on a unit's first index says: the unit is one PMD-order folio, all of it still
 * stored (set by sealmem_xa_insert_unit, cleared by sealmem_xa_erase as soon as any entry of
 * the unit goes), so sealmem_xa_whole_unit need not walk 512 entries on every PMD fault.
 */
#define SEALMEM_WHOLE_UNIT XA_MARK_0

/*
 * Stores a whole unit at first..first + n - 1 (n <= HPAGE_PMD_NR, first unit-aligned) if all
 * of it is a hole: either the n subpages of the PMD-order folio at head (n == HPAGE_PMD_NR;
 * the caller owns one folio reference and the store takes it and 511 more) or pages[0..n)
 * (each carrying the reference the store takes). All or nothing, under one hold of the
 * XArray lock: the tree nodes the unit needs are created first (xas_create_range, with
 * allocations between holds), so no store fails half way and no reader under the lock ever
 * sees part of a unit. Returns 0, -EEXIST (an entry exists: nothing stored) or -ENOMEM.
 * Nodes created for a unit that then is not stored (ENOMEM or EEXIST on a retry) stay in the
 * tree, empty, until the file goes (xa_destroy): at most the few nodes of one unit per
 * attempt, charged to the caller's memory cgroup (XA_FLAGS_ACCOUNT).
 */
int sealmem_xa_insert_unit(struct xarray *xa, unsigned long first, struct page *head,
			   struct page **pages, unsigned int n)
{
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	XA_STATE_ORDER(xas, xa, first, HPAGE_PMD_ORDER);
	unsigned long index;
	unsigned int i;
	int err;

	if (!n || n > HPAGE_PMD_NR || first & (HPAGE_PMD_NR - 1) || (!head == !pages) ||
	    (head && n != HPAGE_PMD_NR))
		return -EINVAL;
	do {
		err = 0;
		xas_lock(&xas);
		index = first;
		if (xa_find(xa, &index, first + n - 1, XA_PRESENT)) {
			err = -EEXIST;
			goto unlock;
		}
		xas_set_order(&xas, first, HPAGE_PMD_ORDER);
		xas_create_range(&xas);
		if (xas_error(&xas))
			goto unlock;
		if (head)
			folio_ref_add(page_folio(head), HPAGE_PMD_NR - 1);
		for (i = 0; i < n; i++) {
			xas_store(&xas, head ? head + i : pages[i]);
			/* The nodes exist: a store into them cannot fail. */
			WARN_ON_ONCE(xas_error(&xas));
			xas_next(&xas);
		}
		if (head) {
			__xa_set_mark(xa, first, SEALMEM_WHOLE_UNIT);
			/* Entries of the folio still stored (see sealmem_xa_erase). */
			page_folio(head)->private = (void *)(unsigned long)HPAGE_PMD_NR;
		}
unlock:
		xas_unlock(&xas);
	} while (xas_nomem(&xas, GFP_KERNEL_ACCOUNT));
	if (err)
		return err;
	return xas_error(&xas);
#else
	return -EOPNOTSUPP;
#endif
}

/*
 * The head page of the PMD-order folio whose HPAGE_PMD_NR subpages are the entries of the
 * unit at first, in order (its SEALMEM_WHOLE_UNIT mark says so); NULL if the unit is anything
 * else (holes, poison, small pages, a folio partly punched out). Under the XArray lock; the
 * caller keeps the entries from being removed (the invalidate lock) for as long as it uses
 * the page.
 */
struct page *sealmem_xa_whole_unit(struct xarray *xa, unsigned long first)
{
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	struct page *head = NULL;
	void *entry;

	if (first & (HPAGE_PMD_NR - 1))
		return NULL;
	xa_lock(xa);
	entry = xa_load(xa, first);
	if (entry && !xa_is_value(entry) && xa_get_mark(xa, first, SEALMEM_WHOLE_UNIT)) {
		head = entry;
		/* The mark is set only on a PMD-order folio's head page. */
		if (WARN_ON_ONCE(folio_order(page_folio(head)) != HPAGE_PMD_ORDER ||
				 &page_folio(head)->page != head))
			head = NULL;
	}
	xa_unlock(xa);
	return head;
#else
	return NULL;
#endif
}

/*
 * Erases the entry at index (the caller holds the XArray lock); returns it, and in *freed the
 * pages of memory the store no longer holds because of it: 1 for an order-0 page; for a page
 * of a unit's large folio 0, until the folio's last stored page goes: then all of the folio
 * (HPAGE_PMD_NR). A partly punched unit keeps its whole folio allocated (nothing can split a
 * folio that is in no page cache), so it stays counted whole against max_pages, as it is in
 * the memory cgroup. The folio's ->private counts its stored entries (it is in no page cache
 * and no swap cache, where the field would have other uses; the page allocator zeroes it at
 * free). If it was a page of a large folio, its unit is no longer whole: the unit's mark goes.
 */
void *sealmem_xa_erase(struct xarray *xa, unsigned long index, unsigned int *freed)
{
	void *entry = __xa_erase(xa, index);
	struct folio *folio;

	*freed = 0;
	if (!entry || xa_is_value(entry))
		return entry;
	folio = page_folio((struct page *)entry);
	if (!folio_test_large(folio)) {
		*freed = 1;
		return entry;
	}
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	__xa_clear_mark(xa, index & ~(unsigned long)(HPAGE_PMD_NR - 1), SEALMEM_WHOLE_UNIT);
	if (!WARN_ON_ONCE(!folio->private)) {
		folio->private = (void *)((unsigned long)folio->private - 1);
		if (!folio->private)
			*freed = folio_nr_pages(folio);
	}
#endif
	return entry;
}

/*
 * Whether the page of an entry (at index, found by the caller under the XArray lock, which it
 * holds) has references beyond the store's and its page-table mappings' (a GUP pin such as an
 * io_uring fixed buffer, or a transient one): what memfd_folio_has_extra_refs() checks for
 * page-cache folios. The store holds one reference per entry, so for a large folio one per
 * entry of the folio still stored (its ->private, see sealmem_xa_erase). A large folio's
 * entries come one after the other in the caller's walk: *checked (the folio checked last,
 * 0 at first) spares the same count for each of them.
 */
bool sealmem_entry_has_extra_refs(struct xarray *xa, struct page *page, unsigned long *checked)
{
	struct folio *folio = page_folio(page);

	lockdep_assert_held(&xa->xa_lock);
	if (!folio_test_large(folio))
		return folio_ref_count(folio) != 1 + folio_mapcount(folio);
	if (*checked == (unsigned long)folio)
		return false;
	*checked = (unsigned long)folio;
	return folio_ref_count(folio) != (unsigned long)folio->private + folio_mapcount(folio);
}

/*
 * Whether the aligned 2 MiB around the fault address lies in vmf's VMA at a unit-aligned file
 * offset, with no page table under the PMD yet, in a VMA that is not VM_MIXEDMAP. (Whether the
 * THP modes allow a PMD here the mm decided before it called ->huge_fault: that test,
 * __thp_vma_allowable_orders(), is not exported.)
 */
bool sealmem_vmf_pmd_mappable(struct vm_fault *vmf)
{
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	struct vm_area_struct *vma = vmf->vma;

	return !(vma->vm_flags & VM_MIXEDMAP) && vmf->pmd && pmd_none(pmdp_get_lockless(vmf->pmd)) &&
	       thp_vma_suitable_order(vma, vmf->address, PMD_ORDER);
#else
	return false;
#endif
}

/*
 * Maps the PMD-order folio at head with one PMD at the fault's aligned address (->huge_fault).
 * Never as a write: vmf_insert_folio_pmd() with write set WARNs when it finds a page table
 * under the PMD (a racing PTE fault); the VMA's protection already makes a shared writable
 * mapping writable, and a write-protected PMD is split by the mm instead (our huge_fault
 * returns FALLBACK for it).
 */
vm_fault_t sealmem_vmf_insert_pmd(struct vm_fault *vmf, struct page *head)
{
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	return vmf_insert_folio_pmd(vmf, page_folio(head), false);
#else
	return VM_FAULT_FALLBACK;
#endif
}

/*
 * Maps one page at the fault address of a VMA that is not VM_MIXEDMAP (a huge file's: the
 * mm's PMD split path drops a file PMD's reference and rmap only in such VMAs). A PMD a racing
 * huge fault installed meanwhile leaves no page table to map into (insert_page() says -ENOMEM):
 * the access retries and finds the PMD.
 */
vm_fault_t sealmem_vmf_insert_page(struct vm_fault *vmf, struct page *page)
{
	vm_fault_t ret = vmf_insert_page_mkwrite(vmf, page, false);
	pmd_t pmd;

	if (ret != VM_FAULT_OOM)
		return ret;
	pmd = pmdp_get_lockless(vmf->pmd);
	if (pmd_present(pmd) && pmd_leaf(pmd))
		return VM_FAULT_NOPAGE;
	/* A PMD that came and went (MADV_DONTNEED) in between looks like none: try once more. */
	return vmf_insert_page_mkwrite(vmf, page, false);
}

/* A huge file's VMA: VM_HUGEPAGE (the sysfs "madvise" mode honours it; "never" still wins). */
void sealmem_vma_set_hugepage(struct vm_area_struct *vma)
{
	vm_flags_set(vma, VM_HUGEPAGE);
}

bool sealmem_vma_is_mixedmap(const struct vm_area_struct *vma)
{
	return vma->vm_flags & VM_MIXEDMAP;
}

bool sealmem_mapping_mapped(const struct address_space *mapping)
{
	return mapping_mapped(mapping);
}

/* A huge file's mappings start 2 MiB-aligned (as shmem's), others where the mm likes. */
unsigned long sealmem_get_unmapped_area(struct file *file, unsigned long addr, unsigned long len,
					unsigned long pgoff, unsigned long flags, bool huge)
{
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	if (huge)
		return thp_get_unmapped_area(file, addr, len, pgoff, flags);
#endif
	return mm_get_unmapped_area(file, addr, len, pgoff, flags);
}
