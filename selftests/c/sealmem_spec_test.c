// SPDX-License-Identifier: GPL-2.0
/*
 * Behaviour of SPEC sections 1-5 that had no check (issue #14's list), one test per rule:
 * - reopening_a_view_through_proc_opens_a_new_empty_file (memfd's escalation path: pinned)
 * - a_blocking_handler_read_ends_with_eintr_on_a_signal
 * - zeropage_and_poison_reject_bad_ranges
 * - seek_data_and_hole_on_a_lazy_file
 * - rmmod_is_refused_while_only_a_mapping_or_a_handler_lives          [root]
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "sealmem_lib.h"

static int fill_ioctl(int hfd, unsigned long cmd, __u64 off, __u64 len, __s64 *done)
{
	struct sealmem_fill f = { .offset = off, .len = len };
	int ret = ioctl(hfd, cmd, &f);

	*done = f.done;
	return ret;
}

TEST(reopening_a_view_through_proc_opens_a_new_empty_file)
{
	char path[64], buf[8] = { 0 };
	int fd = sm_new(), view, again;

	ASSERT_GE(fd, 0);
	ASSERT_EQ(5, pwrite(fd, "hello", 5, 0));
	view = sm_view(fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(view, 0);
	/* The VIEW is read-only; reopening its /proc link for writing must not reach the data. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", view);
	again = open(path, O_RDWR | O_CLOEXEC);
	if (again >= 0) {
		/* It opened the device again: a new, empty, writable file, not the VIEW's. */
		EXPECT_EQ(0, sm_get_size(again));
		EXPECT_EQ(1, pwrite(again, "X", 1, 0));
		close(again);
	} else {
		/* Or the VFS refused it; either way nothing changed. */
		EXPECT_TRUE(errno == EACCES || errno == ENXIO || errno == ENOENT) TH_LOG("errno %d", errno);
	}
	ksft_print_msg("reopening a VIEW through /proc: %s\n", again >= 0 ? "a new file" : strerror(errno));
	/* The file's own fd, reopened through /proc, opens the device again: a new file. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	again = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_GE(again, 0) TH_LOG("reopen: %s", strerror(errno));
	EXPECT_EQ(0, sm_get_size(again));
	ASSERT_EQ(1, pwrite(again, "Y", 1, 0));
	close(again);
	ASSERT_EQ(5, pread(fd, buf, 5, 0));
	EXPECT_STREQ("hello", buf);
	close(view);
	close(fd);
}

struct blocked_read {
	int hfd;
	ssize_t ret;
	int err;
	atomic_int tid, done;
};

static void on_usr1(int sig)
{
	(void)sig;
}

static void *blocked_read_run(void *arg)
{
	struct blocked_read *b = arg;
	struct sealmem_msg m;

	atomic_store(&b->tid, (int)syscall(SYS_gettid));
	b->ret = read(b->hfd, &m, sizeof(m));
	b->err = errno;
	atomic_store(&b->done, 1);
	return NULL;
}

TEST(a_blocking_handler_read_ends_with_eintr_on_a_signal)
{
	struct sigaction sa = { .sa_handler = on_usr1 };	/* no SA_RESTART */
	struct blocked_read b = { 0 };
	pthread_t th;
	double t0;
	char st = 0;
	int fd = sm_new();

	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, 4 * SM_PS));
	b.hfd = ioctl(fd, SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(b.hfd, 0);
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	ASSERT_EQ(0, pthread_create(&th, NULL, blocked_read_run, &b));
	/* The reader sleeps in read() (no request is queued). */
	for (t0 = sm_now(); sm_now() - t0 < 10 && st != 'S'; sm_msleep(5))
		st = atomic_load(&b.tid) ? sm_task_state(getpid(), atomic_load(&b.tid)) : 0;
	ASSERT_EQ('S', st) TH_LOG("the handler read never slept");
	EXPECT_EQ(0, atomic_load(&b.done));
	ASSERT_EQ(0, pthread_kill(th, SIGUSR1));
	for (t0 = sm_now(); sm_now() - t0 < 10 && !atomic_load(&b.done);)
		sm_msleep(5);
	ASSERT_TRUE(atomic_load(&b.done)) TH_LOG("the signal did not end the read");
	pthread_join(th, NULL);
	EXPECT_EQ(-1, b.ret);
	EXPECT_EQ(EINTR, b.err);
	close(b.hfd);
	close(fd);
}

TEST(zeropage_and_poison_reject_bad_ranges)
{
	const unsigned long cmds[] = { SEALMEM_IOC_ZEROPAGE, SEALMEM_IOC_POISON };
	char buf[SM_PS];

	for (int i = 0; i < 2; i++) {
		unsigned long cmd = cmds[i];
		__s64 done = 0;
		int fd = sm_new(), hfd;

		ASSERT_GE(fd, 0);
		ASSERT_EQ(0, sm_set_size(fd, 2 * SM_PS));
		hfd = ioctl(fd, SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC);
		ASSERT_GE(hfd, 0);
		/* Misaligned offset and length, zero length, at EOF: EINVAL, nothing done. */
		SM_EXPECT_ERRNO(EINVAL, fill_ioctl(hfd, cmd, 1, SM_PS, &done));
		EXPECT_EQ(-EINVAL, done);
		SM_EXPECT_ERRNO(EINVAL, fill_ioctl(hfd, cmd, 0, SM_PS + 1, &done));
		SM_EXPECT_ERRNO(EINVAL, fill_ioctl(hfd, cmd, 0, 0, &done));
		SM_EXPECT_ERRNO(EINVAL, fill_ioctl(hfd, cmd, 2 * SM_PS, SM_PS, &done));
		EXPECT_EQ(-EINVAL, done);
		/* Crossing EOF: the page within EOF is handled, then EINVAL with done = 1 page. */
		SM_EXPECT_ERRNO(EINVAL, fill_ioctl(hfd, cmd, SM_PS, 2 * SM_PS, &done));
		EXPECT_EQ(SM_PS, done);
		errno = 0;
		if (cmd == SEALMEM_IOC_ZEROPAGE) {
			memset(buf, 0x55, SM_PS);
			EXPECT_EQ(SM_PS, pread(fd, buf, SM_PS, SM_PS));
			EXPECT_EQ(0, buf[0]);
			EXPECT_EQ(0, buf[SM_PS - 1]);
		} else {
			SM_EXPECT_ERRNO(EIO, pread(fd, buf, SM_PS, SM_PS));
		}
		/* Once handled, never again: EEXIST. */
		SM_EXPECT_ERRNO(EEXIST, fill_ioctl(hfd, cmd, SM_PS, SM_PS, &done));
		EXPECT_EQ(-EEXIST, done);
		close(hfd);
		close(fd);
	}
}

TEST(seek_data_and_hole_on_a_lazy_file)
{
	char src[SM_PS];
	struct sealmem_copy c = { .offset = SM_PS, .len = SM_PS, .src = (__u64)(unsigned long)src };
	__s64 done;
	int fd = sm_new(), hfd;

	memset(src, 'L', SM_PS);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, 4 * SM_PS));
	hfd = ioctl(fd, SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(hfd, 0);
	/* Every page is a hole: no data; SEEK_HOLE finds the offset itself. SEEK never waits. */
	SM_EXPECT_ERRNO(ENXIO, lseek(fd, 0, SEEK_DATA));
	EXPECT_EQ(0, lseek(fd, 0, SEEK_HOLE));
	ASSERT_EQ(0, ioctl(hfd, SEALMEM_IOC_COPY, &c));
	EXPECT_EQ(SM_PS, lseek(fd, 0, SEEK_DATA));
	EXPECT_EQ(2 * SM_PS, lseek(fd, SM_PS, SEEK_HOLE));
	/* A poisoned page is data (resolved, never requested again). */
	ASSERT_EQ(0, fill_ioctl(hfd, SEALMEM_IOC_POISON, 3 * SM_PS, SM_PS, &done));
	EXPECT_EQ(3 * SM_PS, lseek(fd, 2 * SM_PS, SEEK_DATA));
	EXPECT_EQ(2 * SM_PS, lseek(fd, 2 * SM_PS, SEEK_HOLE));
	/* No request was raised by seeking. */
	EXPECT_EQ(0, sm_fdinfo_num(hfd, "total"));
	close(hfd);
	close(fd);
}

static long try_rmmod(void)
{
	return syscall(SYS_delete_module, "sealmem", O_NONBLOCK);
}

static long reload(void)
{
	const char *ko = getenv("SEALMEM_KO");
	int fd;
	long ret;

	if (!ko)
		return -1;
	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ret = syscall(SYS_finit_module, fd, "", 0);
	close(fd);
	return ret;
}

TEST(rmmod_is_refused_while_only_a_mapping_or_a_handler_lives)
{
	char *p;
	int fd, hfd;

	if (geteuid() != 0)
		SKIP(return, "needs root (delete_module)");
	/* Only a mapping: every fd closed. */
	fd = sm_new();
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, SM_PS));
	p = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	close(fd);
	p[0] = 'm';
	errno = 0;
	EXPECT_EQ(-1, try_rmmod()) TH_LOG("rmmod succeeded with a mapping alive");
	EXPECT_EQ(EWOULDBLOCK, errno);
	if (errno != EWOULDBLOCK && errno != EBUSY)
		ASSERT_EQ(0, reload());
	munmap(p, SM_PS);
	/* Only a handler fd: the file's own fds closed. */
	fd = sm_new();
	ASSERT_GE(fd, 0);
	hfd = ioctl(fd, SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(hfd, 0);
	close(fd);
	errno = 0;
	EXPECT_EQ(-1, try_rmmod()) TH_LOG("rmmod succeeded with a handler fd alive");
	EXPECT_EQ(EWOULDBLOCK, errno);
	if (errno != EWOULDBLOCK && errno != EBUSY)
		ASSERT_EQ(0, reload());
	close(hfd);
}

TEST_HARNESS_MAIN
