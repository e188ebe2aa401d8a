/* SPDX-License-Identifier: GPL-2.0 */
/* Prototypes of sealmem_helpers.c; rust/ffi.rs declares the same functions for Rust. */
#ifndef SEALMEM_HELPERS_H
#define SEALMEM_HELPERS_H

#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/pipe_fs_i.h>
#include <linux/poll.h>
#include <linux/uio.h>
#include <linux/wait.h>

void sealmem_get_page(struct page *page);
void sealmem_put_page(struct page *page);
int sealmem_fs_mount(void);
void sealmem_fs_unmount(void);
struct inode *sealmem_inode_new(void);
struct address_space *sealmem_inode_mapping(struct inode *inode);
int sealmem_mapping_deny_writable(struct address_space *mapping);
void sealmem_mapping_allow_writable(struct address_space *mapping);
bool sealmem_current_exiting_or_dumping(void);
size_t sealmem_copy_page_from_iter_atomic(struct page *page, size_t offset, size_t bytes,
					  struct iov_iter *i);
void sealmem_zero_page_range(struct page *page, size_t offset, size_t len);
bool sealmem_sleep_killable_ms(unsigned int ms);
void sealmem_cond_resched(void);
bool sealmem_fatal_signal_pending(void);
int sealmem_restart_syscall(void);
bool sealmem_may_restart_syscall(void);
void sealmem_invalidate_lock(struct address_space *mapping);
void sealmem_invalidate_unlock(struct address_space *mapping);
void sealmem_invalidate_lock_shared(struct address_space *mapping);
void sealmem_invalidate_unlock_shared(struct address_space *mapping);
void sealmem_xa_init(struct xarray *xa);
bool sealmem_iocb_append(const struct kiocb *iocb);
void sealmem_file_allow_pread(struct file *file);
unsigned long sealmem_totalram_pages(void);
void sealmem_init_waitqueue_head(struct wait_queue_head *wq);
void sealmem_wake_up_all(struct wait_queue_head *wq);
void sealmem_wake_up_poll(struct wait_queue_head *wq, __poll_t mask);
void sealmem_release_fault_lock(struct vm_fault *vmf);
void *sealmem_xa_poison_entry(void);
bool sealmem_xa_is_value(const void *entry);
bool sealmem_iocb_nonblock(const struct kiocb *iocb);
void sealmem_xas_init(struct xa_state *xas, struct xarray *xa, unsigned long index);
void *sealmem_xas_next(struct xa_state *xas);
int sealmem_xas_error(const struct xa_state *xas);
bool sealmem_splice_nonblock(const struct file *in, unsigned int flags);
bool sealmem_pipe_is_full(const struct pipe_inode_info *pipe);
bool sealmem_pipe_push_page(struct pipe_inode_info *pipe, struct page *page, size_t offset,
			    size_t len);
bool sealmem_pipe_push_zeros(struct pipe_inode_info *pipe, size_t offset, size_t len);
bool sealmem_huge_supported(void);
struct page *sealmem_alloc_huge(bool zero, bool light);
unsigned long sealmem_huge_copy_from_user(struct page *head, unsigned long src, size_t len);
int sealmem_xa_insert_unit(struct xarray *xa, unsigned long first, struct page *head,
			   struct page **pages, unsigned int n);
struct page *sealmem_xa_whole_unit(struct xarray *xa, unsigned long first);
void *sealmem_xa_erase(struct xarray *xa, unsigned long index, unsigned int *freed);
bool sealmem_entry_has_extra_refs(struct xarray *xa, struct page *page, unsigned long *checked);
bool sealmem_vmf_pmd_mappable(struct vm_fault *vmf);
vm_fault_t sealmem_vmf_insert_pmd(struct vm_fault *vmf, struct page *head);
vm_fault_t sealmem_vmf_insert_page(struct vm_fault *vmf, struct page *page);
void sealmem_vma_set_hugepage(struct vm_area_struct *vma);
bool sealmem_vma_is_mixedmap(const struct vm_area_struct *vma);
bool sealmem_mapping_mapped(const struct address_space *mapping);
unsigned long sealmem_get_unmapped_area(struct file *file, unsigned long addr, unsigned long len,
					unsigned long pgoff, unsigned long flags, bool huge);

#endif
