// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem rule tests: four defects found by an outside review, one test per rule (named
 * after the rule).
 *
 *  1. view_fd_outlives_the_device_node_filesystem, willneed_on_a_device_node_fd_is_harmless:
 *     a VIEW fd keeps working after the filesystem holding the /dev/sealmem node it came
 *     from is unmounted, and WILLNEED advice (fadvise, madvise) on sealmem fds is harmless.
 *  2. exiting_task_never_waits_for_a_lazy_page, dumping_task_never_waits_for_a_lazy_page,
 *     dumping_task_never_waits_for_its_own_handler_thread: a task that is exiting (the
 *     clear-child-tid write) or dumping core never waits for a lazy page (nobody may ever
 *     fill it: the handler may be idle, or be a thread of the dying process itself). Dumps
 *     are tried with coredump_filter 0x3f (every file page, read through get_dump_page) and
 *     with the default 0x33 (only the ELF-header probe of a private file mapping, read with
 *     copy_from_user).
 *  3. exec_seal_covers_existing_mappings: EXEC cannot be added while a mapping could become
 *     executable.
 *  4. write_seal_refuses_pinned_pages: WRITE cannot be added while pages are pinned for
 *     writing (an io_uring fixed buffer), as memfd's memfd_wait_for_pins.
 *
 * None of these tests may hang: every wait has a deadline, after which the stuck task is
 * released (the page filled, the file shrunk or the task killed) and the test fails.
 *
 * Run a subset in the VM with kernel command-line words (the kernel passes them to init as
 * environment variables): sealmem_rules_only=name,name or sealmem_rules_skip=name,name
 * (e.g. SEALMEM_VM_APPEND=sealmem_rules_skip=view_fd_outlives_the_device_node_filesystem).
 */
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <linux/io_uring.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "sealmem_lib.h"

/* How long a task may take to be reaped once nothing should hold it (TCG, debug kernel). */
#define DEADLINE 10.0
#define CORE_PATTERN "/proc/sys/kernel/core_pattern"
#define CORE_FILE "/tmp/sealmem-rules-core"

/* Polls waitpid(WNOHANG) for up to `secs`; 0 once `pid` is reaped (status in *status). */
static int reap_within(pid_t pid, int *status, double secs)
{
	double end = sm_now() + secs;

	do {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		sm_msleep(10);
	} while (sm_now() < end);
	return -1;
}

/* Waits (up to 5 s) until thread `tid` of this process sleeps ('S'); 0 on success. */
static int wait_sleeping(int tid)
{
	char path[64], buf[256], *p;
	int i, fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	for (i = 0; i < 500; i++) {
		fd = open(path, O_RDONLY);
		if (fd < 0)
			return -1;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			p = strrchr(buf, ')');
			if (p && p[1] == ' ' && p[2] == 'S')
				return 0;
		}
		sm_msleep(10);
	}
	return -1;
}

/* The state letter and kernel stack of task `pid`, for the log of a stuck task. */
static void describe_task(struct __test_metadata *_metadata, pid_t pid)
{
	char path[64], buf[2048], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			p = strrchr(buf, ')');
			if (p && p[1])
				TH_LOG("task %d state '%c'", pid, p[2]);
		}
	}
	snprintf(path, sizeof(path), "/proc/%d/stack", pid);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			TH_LOG("task %d kernel stack:\n%s", pid, buf);
		}
	}
}

static int fill_enable(int fd, unsigned long flags)
{
	return ioctl(fd, SEALMEM_IOC_FILL_ENABLE, flags);
}

static int copy_pages(int hfd, __u64 off, const void *src, __u64 len)
{
	struct sealmem_copy c = { .offset = off, .src = (__u64)(uintptr_t)src, .len = len,
				  .flags = SEALMEM_FILL_SKIP_EXISTING };

	return ioctl(hfd, SEALMEM_IOC_COPY, &c);
}

/* Logs the requests pending on a non-blocking handler fd (what the stuck task asked for). */
static void log_requests(struct __test_metadata *_metadata, int hfd)
{
	struct sealmem_msg m[8];
	ssize_t n = read(hfd, m, sizeof(m));
	int i;

	if (n < 0) {
		TH_LOG("no request pending on the handler (%s)", strerror(errno));
		return;
	}
	for (i = 0; i < (int)(n / sizeof(m[0])); i++)
		TH_LOG("pending request: offset %llu flags %#x tid %u",
		       (unsigned long long)m[i].offset, m[i].flags, m[i].tid);
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* mkdtemp + tmpfs mount + a char node for sealmem's major:minor; the node's path in `node`. */
static int mount_node_fs(char *dir, size_t dlen, char *node, size_t nlen)
{
	unsigned int maj, min;
	char buf[32];
	int fd;
	ssize_t n;

	fd = open("/sys/class/misc/sealmem/dev", O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (sscanf(buf, "%u:%u", &maj, &min) != 2)
		return -1;
	snprintf(dir, dlen, "/tmp/sealmem-rules-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	if (mount("sealmem-rules", dir, "tmpfs", 0, "mode=0755")) {
		rmdir(dir);
		return -1;
	}
	snprintf(node, nlen, "%s/sealmem", dir);
	if (mknod(node, S_IFCHR | 0600, makedev(maj, min))) {
		umount(dir);
		rmdir(dir);
		return -1;
	}
	return 0;
}

FIXTURE(rules) {
	char core_pattern[512];
	int core_saved;
	pid_t core_pid[4];
	char mnt[64];
	int mounted;
};

FIXTURE_SETUP(rules)
{
	self->core_saved = 0;
	memset(self->core_pid, 0, sizeof(self->core_pid));
	self->mounted = 0;
}

FIXTURE_TEARDOWN(rules)
{
	char path[64];
	int i;

	if (self->core_saved)
		write_file(CORE_PATTERN, self->core_pattern);
	for (i = 0; i < 4; i++) {
		if (self->core_pid[i] > 0) {
			snprintf(path, sizeof(path), CORE_FILE ".%d", self->core_pid[i]);
			unlink(path);
		}
	}
	if (self->mounted) {
		if (umount(self->mnt))
			umount2(self->mnt, MNT_DETACH);
		rmdir(self->mnt);
	}
}

/* Rule 1 ------------------------------------------------------------------------------ */

/*
 * A VIEW fd is a file of its own: it must not depend on the filesystem of the device node
 * the writable fd was opened from. Once that filesystem is unmounted (which must succeed:
 * the node's fd is closed), the VIEW fd still reads, maps and takes advice. On a module
 * whose VIEW keeps a reference to the node's inode without its mount, the umount reports
 * "Busy inodes after unmount" and the next use of the VIEW fd touches the freed superblock.
 */
TEST_F_TIMEOUT(rules, view_fd_outlives_the_device_node_filesystem, 120)
{
	static const char bytes[] = "the view outlives the node's filesystem";
	char node[128], buf[sizeof(bytes)];
	int fd, view, ret;
	char *m;

	ASSERT_EQ(0, mount_node_fs(self->mnt, sizeof(self->mnt), node, sizeof(node)))
		TH_LOG("tmpfs + mknod: %s", strerror(errno));
	self->mounted = 1;
	fd = open(node, O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0) TH_LOG("open %s: %s", node, strerror(errno));
	ASSERT_EQ(sizeof(bytes), pwrite(fd, bytes, sizeof(bytes), 0));
	view = sm_view(fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(view, 0) TH_LOG("VIEW: %s", strerror(errno));
	ASSERT_EQ(0, close(fd));

	ret = umount(self->mnt);
	EXPECT_EQ(0, ret) TH_LOG("umount of the node's tmpfs with only a VIEW fd open: %s", strerror(errno));
	if (ret) {
		ASSERT_EQ(0, umount2(self->mnt, MNT_DETACH));
	}
	self->mounted = 0;
	EXPECT_EQ(0, rmdir(self->mnt));

	EXPECT_EQ(0, posix_fadvise(view, 0, 0, POSIX_FADV_WILLNEED));
	m = mmap(NULL, SM_PS, PROT_READ, MAP_SHARED, view, 0);
	ASSERT_NE(MAP_FAILED, m) TH_LOG("mmap of the VIEW: %s", strerror(errno));
	EXPECT_EQ(0, madvise(m, SM_PS, MADV_WILLNEED)) TH_LOG("madvise(WILLNEED): %s", strerror(errno));
	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(sizeof(bytes), pread(view, buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, bytes, sizeof(bytes)));
	EXPECT_EQ(0, memcmp(m, bytes, sizeof(bytes)));
	EXPECT_EQ(0, munmap(m, SM_PS));
	EXPECT_EQ(0, close(view));
}

/*
 * WILLNEED advice on the fd of a node of a mounted filesystem (and on a VIEW of it, and on
 * mappings of both) returns 0 and does nothing harmful (no splat).
 */
TEST_F_TIMEOUT(rules, willneed_on_a_device_node_fd_is_harmless, 120)
{
	static const char bytes[] = "advice is harmless";
	char node[128], buf[sizeof(bytes)];
	int fd, view, i;
	char *m;

	ASSERT_EQ(0, mount_node_fs(self->mnt, sizeof(self->mnt), node, sizeof(node)))
		TH_LOG("tmpfs + mknod: %s", strerror(errno));
	self->mounted = 1;
	fd = open(node, O_RDWR | O_CLOEXEC);
	ASSERT_GE(fd, 0) TH_LOG("open %s: %s", node, strerror(errno));
	ASSERT_EQ(sizeof(bytes), pwrite(fd, bytes, sizeof(bytes), 0));
	ASSERT_EQ(0, sm_set_size(fd, 4 * SM_PS));
	view = sm_view(fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(view, 0) TH_LOG("VIEW: %s", strerror(errno));
	for (i = 0; i < 2; i++) {
		int f = i ? view : fd;

		EXPECT_EQ(0, posix_fadvise(f, 0, 0, POSIX_FADV_WILLNEED)) TH_LOG("fd %d", i);
		EXPECT_EQ(0, posix_fadvise(f, SM_PS, 2 * SM_PS, POSIX_FADV_WILLNEED)) TH_LOG("fd %d", i);
		m = mmap(NULL, 4 * SM_PS, PROT_READ, MAP_SHARED, f, 0);
		ASSERT_NE(MAP_FAILED, m);
		EXPECT_EQ(0, madvise(m, 4 * SM_PS, MADV_WILLNEED)) TH_LOG("fd %d: %s", i, strerror(errno));
		EXPECT_EQ(0, memcmp(m, bytes, sizeof(bytes)));
		EXPECT_EQ(0, m[3 * SM_PS]);
		EXPECT_EQ(0, munmap(m, 4 * SM_PS));
		memset(buf, 0, sizeof(buf));
		EXPECT_EQ(sizeof(bytes), pread(f, buf, sizeof(buf), 0));
		EXPECT_EQ(0, memcmp(buf, bytes, sizeof(bytes)));
	}
	EXPECT_EQ(0, close(view));
	EXPECT_EQ(0, close(fd));
	EXPECT_EQ(0, umount(self->mnt)) TH_LOG("umount: %s", strerror(errno));
	self->mounted = 0;
	EXPECT_EQ(0, rmdir(self->mnt));
}

/* Rule 2 ------------------------------------------------------------------------------ */

static int exit_at_once(void *arg)
{
	(void)arg;
	return 0; /* glibc's clone() then makes the exit system call */
}

/*
 * An exiting task never waits for a lazy page: nothing can wake it (SIGKILL does not reach
 * a task that is already exiting). Here a CLONE_VM child whose clear-child-tid address is
 * in a lazy hole exits at once: the kernel's put_user() of 0 at that address (mm_release)
 * faults on the hole while the handler stays idle. The child must be reaped anyway.
 */
TEST_F_TIMEOUT(rules, exiting_task_never_waits_for_a_lazy_page, 120)
{
	size_t stack_len = 64 * 1024;
	int fd, hfd, status = 0, reaped;
	char *p, *stack, *src;
	pid_t pid;

	fd = sm_new();
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, SM_PS));
	hfd = fill_enable(fd, SEALMEM_FD_CLOEXEC | SEALMEM_FD_NONBLOCK);
	ASSERT_GE(hfd, 0) TH_LOG("FILL_ENABLE: %s", strerror(errno));
	p = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	src = malloc(SM_PS);
	ASSERT_NE(NULL, src);
	memset(src, 'F', SM_PS);
	stack = mmap(NULL, stack_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, stack);

	pid = clone(exit_at_once, stack + stack_len, CLONE_VM | CLONE_CHILD_CLEARTID | SIGCHLD,
		    NULL, NULL, NULL, (int *)(p + 64));
	ASSERT_GT(pid, 0) TH_LOG("clone: %s", strerror(errno));

	reaped = !reap_within(pid, &status, DEADLINE);
	EXPECT_TRUE(reaped) TH_LOG("the exiting child %d was not reaped within %.0f s while the handler stayed idle", pid, DEADLINE);
	if (reaped) {
		EXPECT_EQ(SM_EXITED(0), sm_ended(status)) TH_LOG("status %#x", status);
	} else {
		describe_task(_metadata, pid);
		log_requests(_metadata, hfd);
		/* Release it: SIGKILL first (is it enough?), then fill the page. */
		kill(pid, SIGKILL);
		if (!reap_within(pid, &status, 2.0)) {
			TH_LOG("SIGKILL released it");
			reaped = 1;
		} else {
			TH_LOG("SIGKILL did not release it within 2 s; filling the page");
			EXPECT_EQ(0, copy_pages(hfd, 0, src, SM_PS)) TH_LOG("COPY: %s", strerror(errno));
			reaped = !reap_within(pid, &status, DEADLINE);
			EXPECT_TRUE(reaped) TH_LOG("still not reaped after the fill");
		}
	}
	munmap(p, SM_PS);
	close(hfd);
	close(fd);
	free(src);
	if (reaped) /* otherwise the stuck child may still use it */
		munmap(stack, stack_len);
}

/* Saves core_pattern and points it at CORE_FILE.<pid>; 0 on success. */
static int set_core_pattern(struct __test_metadata *_metadata, FIXTURE_DATA(rules) *self)
{
	ssize_t n;
	int fd;

	fd = open(CORE_PATTERN, O_RDONLY);
	if (fd < 0) {
		TH_LOG(CORE_PATTERN ": %s (the test kernel must have CONFIG_COREDUMP)", strerror(errno));
		return -1;
	}
	n = read(fd, self->core_pattern, sizeof(self->core_pattern) - 1);
	close(fd);
	if (n < 0)
		return -1;
	self->core_pattern[n] = '\0';
	self->core_saved = 1;
	return write_file(CORE_PATTERN, CORE_FILE ".%p");
}

/*
 * The two ways a dump reads a file mapping: with coredump_filter 0x3f every page of every
 * file mapping is dumped (get_dump_page(): GUP); with the default filter 0x33 (ELF headers,
 * no file-backed pages) the dump still reads the first bytes of a private file mapping at
 * offset 0 to check for an ELF header (dump_vma_snapshot(): copy_from_user(), an ordinary
 * fault of the dumping task, with the mmap lock dropped).
 */
static const char *const dump_filters[] = { "0x3f", "0x33" };
#define NR_FILTERS 2

/* In a child about to dump: core size unlimited, the given coredump_filter; 0 on success. */
static int prepare_dump(const char *filter)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

	if (setrlimit(RLIMIT_CORE, &rl))
		return -1;
	if (write_file("/proc/self/coredump_filter", filter))
		return -1;
	signal(SIGSEGV, SIG_DFL);
	return 0;
}

/* Lazy MAP_PRIVATE and MAP_SHARED mappings of all of fd, never touched; 0 on success. */
static int map_lazy(int fd, size_t len)
{
	if (mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED)
		return -1;
	if (mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
		return -1;
	return 0;
}

/* Checks the dumping child `pid` is reaped, killed by SIGSEGV with a core, in time. */
static int check_dump(struct __test_metadata *_metadata, pid_t pid, const char *filter, int *status)
{
	if (reap_within(pid, status, DEADLINE)) {
		EXPECT_TRUE(0) TH_LOG("coredump_filter %s: the dumping child %d was not reaped within %.0f s while its lazy pages stayed unfilled",
				      filter, pid, DEADLINE);
		describe_task(_metadata, pid);
		return -1;
	}
	EXPECT_EQ(SM_KILLED(SIGSEGV), sm_ended(*status)) TH_LOG("coredump_filter %s: status %#x (an exit code: setup failed in the child)",
						 filter, *status);
	if (sm_ended(*status) == SM_KILLED(SIGSEGV)) {
		EXPECT_TRUE(WCOREDUMP(*status)) TH_LOG("coredump_filter %s: no core was dumped: the test proved nothing", filter);
	}
	return 0;
}

/*
 * A dumping task never waits for a lazy page: nothing may ever fill it (the handler may
 * be idle, or be a thread of the dumping process, which the dump has killed), and a dump
 * that never ends keeps the task unreaped. The dump must skip (or read as zeros) what is
 * not filled. Here the parent holds the handler and stays idle; the child maps the lazy
 * file (private and shared, never touched) and raises SIGSEGV: it must die of it, with its
 * core, within the deadline, under both filters.
 */
TEST_F_TIMEOUT(rules, dumping_task_never_waits_for_a_lazy_page, 120)
{
	size_t len = 4 * SM_PS;
	int fd, hfd, status = 0, i;
	char *src;
	pid_t pid;

	ASSERT_EQ(0, set_core_pattern(_metadata, self));
	src = malloc(len);
	ASSERT_NE(NULL, src);
	memset(src, 'D', len);
	for (i = 0; i < NR_FILTERS; i++) {
		fd = sm_new();
		ASSERT_GE(fd, 0);
		ASSERT_EQ(0, sm_set_size(fd, len));
		hfd = fill_enable(fd, SEALMEM_FD_CLOEXEC | SEALMEM_FD_NONBLOCK);
		ASSERT_GE(hfd, 0) TH_LOG("FILL_ENABLE: %s", strerror(errno));
		pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			close(hfd);
			if (prepare_dump(dump_filters[i]))
				_exit(10);
			if (map_lazy(fd, len))
				_exit(11);
			raise(SIGSEGV);
			_exit(12);
		}
		self->core_pid[i] = pid;
		if (check_dump(_metadata, pid, dump_filters[i], &status)) {
			log_requests(_metadata, hfd);
			kill(pid, SIGKILL);
			if (!reap_within(pid, &status, 2.0)) {
				TH_LOG("SIGKILL released it");
			} else {
				TH_LOG("SIGKILL did not release it within 2 s; filling the pages");
				EXPECT_EQ(0, copy_pages(hfd, 0, src, len)) TH_LOG("COPY: %s", strerror(errno));
				EXPECT_EQ(0, reap_within(pid, &status, DEADLINE)) TH_LOG("still not reaped after SIGKILL and the fill");
			}
		}
		close(hfd);
		close(fd);
	}
	free(src);
}

struct reader {
	int hfd;
	atomic_int tid;
};

/* A handler thread that reads requests and never serves them. */
static void *read_requests(void *arg)
{
	struct reader *r = arg;
	struct sealmem_msg m[8];

	atomic_store(&r->tid, (int)syscall(SYS_gettid));
	while (read(r->hfd, m, sizeof(m)) > 0)
		;
	return NULL;
}

/*
 * The same when the handler is a thread of the dying process itself (blocked reading
 * requests): the dump kills that thread, so nobody can ever fill the page; the dump must
 * still finish. Here the parent only holds the file (not the handler): if the dump hangs,
 * it releases the dumper by killing it, then by shrinking the file to 0.
 */
TEST_F_TIMEOUT(rules, dumping_task_never_waits_for_its_own_handler_thread, 120)
{
	size_t len = 4 * SM_PS;
	int fd, status = 0, i;
	pid_t pid;

	ASSERT_EQ(0, set_core_pattern(_metadata, self));
	for (i = 0; i < NR_FILTERS; i++) {
		fd = sm_new();
		ASSERT_GE(fd, 0);
		ASSERT_EQ(0, sm_set_size(fd, len));
		pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			struct reader r = { .tid = 0 };
			pthread_t th;
			int j;

			r.hfd = fill_enable(fd, SEALMEM_FD_CLOEXEC);
			if (r.hfd < 0)
				_exit(10);
			if (prepare_dump(dump_filters[i]))
				_exit(11);
			if (pthread_create(&th, NULL, read_requests, &r))
				_exit(12);
			for (j = 0; j < 500 && !atomic_load(&r.tid); j++)
				sm_msleep(10);
			if (!atomic_load(&r.tid) || wait_sleeping(atomic_load(&r.tid)))
				_exit(13);
			if (map_lazy(fd, len))
				_exit(14);
			raise(SIGSEGV);
			_exit(15);
		}
		self->core_pid[NR_FILTERS + i] = pid;
		if (check_dump(_metadata, pid, dump_filters[i], &status)) {
			kill(pid, SIGKILL);
			if (!reap_within(pid, &status, 2.0)) {
				TH_LOG("SIGKILL released it");
			} else {
				TH_LOG("SIGKILL did not release it within 2 s; shrinking the file");
				EXPECT_EQ(0, sm_set_size(fd, 0));
				EXPECT_EQ(0, reap_within(pid, &status, DEADLINE)) TH_LOG("still not reaped after SIGKILL and the shrink");
			}
		}
		close(fd);
	}
}

/* Rule 3 ------------------------------------------------------------------------------ */


static int new_file(void)
{
	int fd = sm_new();

	if (fd >= 0 && (sm_set_size(fd, SM_PS) || pwrite(fd, "exec", 4, 0) != 4)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * EXEC must hold for every mapping, including those made before the seal: ADD_SEALS(EXEC)
 * on a file with a mapping that could become executable would leave that mapping free to
 * mprotect(PROT_EXEC). mprotect() cannot be refused after the fact by a seal check at
 * mmap time alone, so the chosen semantics (as memfd does for WRITE with writable shared
 * mappings) are:
 *  - ADD_SEALS(SEALMEM_SEAL_EXEC) fails with EBUSY while any mapping of the file (shared or
 *    private, in any process, through any fd including a VIEW) could become executable,
 *    i.e. has VM_MAYEXEC: a mapping made without the seal keeps VM_MAYEXEC even when it is
 *    only PROT_READ;
 *  - once every such mapping is gone (munmap, or the process holding it exits), the seal
 *    is granted;
 *  - after the seal, mmap(PROT_EXEC) fails with EPERM and a PROT_READ mapping cannot be
 *    mprotect'ed to PROT_EXEC (EACCES): mappings made under the seal lose VM_MAYEXEC.
 */
TEST_F_TIMEOUT(rules, exec_seal_covers_existing_mappings, 120)
{
	int map_type[2] = { MAP_SHARED, MAP_PRIVATE };
	int fd, i, ret, v, status, to_child[2], to_parent[2];
	char *p, c;
	pid_t pid;

	/* A PROT_READ mapping (shared, then private) made before the seal refuses it. */
	for (i = 0; i < 2; i++) {
		fd = new_file();
		ASSERT_GE(fd, 0);
		p = mmap(NULL, SM_PS, PROT_READ, map_type[i], fd, 0);
		ASSERT_NE(MAP_FAILED, p);
		errno = 0;
		ret = sm_add_seals(fd, SEALMEM_SEAL_EXEC);
		EXPECT_EQ(-1, ret) TH_LOG("%s PROT_READ mapping: ADD_SEALS(EXEC) was granted",
					  i ? "private" : "shared");
		if (ret == -1) {
			EXPECT_EQ(EBUSY, errno);
			EXPECT_EQ(0, sm_get_seals(fd)) TH_LOG("a refused seal was set");
		} else {
			/* Granted: then it must at least hold for the old mapping. */
			SM_EXPECT_ERRNO(EACCES, mprotect(p, SM_PS, PROT_READ | PROT_EXEC));
		}
		EXPECT_EQ(0, munmap(p, SM_PS));
		EXPECT_EQ(0, sm_add_seals(fd, SEALMEM_SEAL_EXEC)) TH_LOG("after munmap: %s", strerror(errno));
		EXPECT_EQ(SEALMEM_SEAL_EXEC, sm_get_seals(fd));
		/* After the seal: PROT_READ maps, but never becomes executable. */
		p = mmap(NULL, SM_PS, PROT_READ, map_type[i], fd, 0);
		ASSERT_NE(MAP_FAILED, p);
		SM_EXPECT_ERRNO(EACCES, mprotect(p, SM_PS, PROT_READ | PROT_EXEC));
		EXPECT_EQ(0, memcmp(p, "exec", 4));
		EXPECT_EQ(0, munmap(p, SM_PS));
		SM_EXPECT_ERRNO(EPERM, (long)mmap(NULL, SM_PS, PROT_READ | PROT_EXEC, map_type[i], fd, 0));
		close(fd);
	}

	/* A mapping inherited by a forked child refuses it until the child unmaps / exits. */
	for (i = 0; i < 2; i++) {
		struct pollfd pf;

		fd = new_file();
		ASSERT_GE(fd, 0);
		ASSERT_EQ(0, pipe(to_child));
		ASSERT_EQ(0, pipe(to_parent));
		p = mmap(NULL, SM_PS, PROT_READ, MAP_SHARED, fd, 0);
		ASSERT_NE(MAP_FAILED, p);
		pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			close(to_child[1]);
			close(to_parent[0]);
			if (read(to_child[0], &c, 1) != 1)
				_exit(1);
			if (c == 'u') {
				munmap(p, SM_PS);
				if (write(to_parent[1], "u", 1) != 1)
					_exit(2);
				if (read(to_child[0], &c, 1) < 0)
					_exit(3);
			}
			_exit(0);
		}
		close(to_child[0]);
		close(to_parent[1]);
		EXPECT_EQ(0, munmap(p, SM_PS));
		errno = 0;
		ret = sm_add_seals(fd, SEALMEM_SEAL_EXEC);
		EXPECT_EQ(-1, ret) TH_LOG("mapping in a child: ADD_SEALS(EXEC) was granted");
		if (ret == -1) {
			EXPECT_EQ(EBUSY, errno);
		}
		/* i == 0: the child unmaps; i == 1: it exits. */
		ASSERT_EQ(1, write(to_child[1], i ? "x" : "u", 1));
		if (i == 0) {
			pf = (struct pollfd){ .fd = to_parent[0], .events = POLLIN };
			EXPECT_EQ(1, poll(&pf, 1, (int)(DEADLINE * 1000)));
			EXPECT_EQ(1, read(to_parent[0], &c, 1));
		} else {
			EXPECT_EQ(0, reap_within(pid, &status, DEADLINE));
		}
		if (ret == -1) {
			EXPECT_EQ(0, sm_add_seals(fd, SEALMEM_SEAL_EXEC)) TH_LOG("child %s: %s",
				i ? "exited" : "unmapped", strerror(errno));
		}
		EXPECT_EQ(SEALMEM_SEAL_EXEC, sm_get_seals(fd));
		close(to_child[1]);
		if (i == 0) {
			EXPECT_EQ(0, reap_within(pid, &status, DEADLINE));
		}
		EXPECT_EQ(SM_EXITED(0), sm_ended(status)) TH_LOG("child status %#x", status);
		close(to_parent[0]);
		close(fd);
	}

	/*
	 * A VIEW fd's mapping can never execute: VIEW fds live on a noexec pseudo filesystem,
	 * so the mm clears VM_MAYEXEC. It does not hold the seal off, and stays non-executable.
	 */
	fd = new_file();
	ASSERT_GE(fd, 0);
	v = sm_view(fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(v, 0);
	p = mmap(NULL, SM_PS, PROT_READ, MAP_SHARED, v, 0);
	ASSERT_NE(MAP_FAILED, p);
	close(v);
	SM_EXPECT_ERRNO(EACCES, mprotect(p, SM_PS, PROT_READ | PROT_EXEC));
	EXPECT_EQ(0, sm_add_seals(fd, SEALMEM_SEAL_EXEC)) TH_LOG("mapping of a VIEW: %s", strerror(errno));
	SM_EXPECT_ERRNO(EACCES, mprotect(p, SM_PS, PROT_READ | PROT_EXEC));
	EXPECT_EQ(0, munmap(p, SM_PS));
	EXPECT_EQ(SEALMEM_SEAL_EXEC, sm_get_seals(fd));
	close(fd);
}

/* Rule 4 ------------------------------------------------------------------------------ */

/*
 * WRITE must not be granted while a page of the file is pinned for writing (here an io_uring
 * fixed buffer, registered from a shared writable mapping that is then unmapped): the pin
 * writes into the page behind the seal's back. memfd refuses with EBUSY
 * (memfd_wait_for_pins); so must sealmem, until the buffer is unregistered. And if the seal
 * were granted anyway, a READ_FIXED into the pinned buffer must not change the sealed bytes.
 */
TEST_F_TIMEOUT(rules, write_seal_refuses_pinned_pages, 120)
{
	struct io_uring_sqe sqe;
	struct iovec iov;
	struct sm_ring r;
	int fd, ret, res, pfd[2], granted;
	char buf[8], *p;

	fd = sm_new();
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, SM_PS));
	ASSERT_EQ(8, pwrite(fd, "sealed!!", 8, 0));
	p = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	ret = sm_ring_setup(&r);
	ASSERT_EQ(0, ret) TH_LOG("io_uring_setup/mmap: %s (the test kernel must have CONFIG_IO_URING)", strerror(errno));
	iov = (struct iovec){ .iov_base = p, .iov_len = SM_PS };
	ASSERT_EQ(0, syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_BUFFERS, &iov, 1))
		TH_LOG("IORING_REGISTER_BUFFERS of a sealmem page: %s", strerror(errno));
	ASSERT_EQ(0, munmap(p, SM_PS));

	errno = 0;
	ret = sm_add_seals(fd, SEALMEM_SEAL_WRITE);
	granted = ret == 0;
	EXPECT_EQ(-1, ret) TH_LOG("ADD_SEALS(WRITE) was granted while the page is pinned by io_uring");
	if (!granted) {
		EXPECT_EQ(EBUSY, errno);
		EXPECT_EQ(0, sm_get_seals(fd)) TH_LOG("a refused seal was set");
	} else {
		/* The attack: write into the pinned page of the sealed file. */
		ASSERT_EQ(0, pipe(pfd));
		ASSERT_EQ(8, write(pfd[1], "CHANGED!", 8));
		memset(&sqe, 0, sizeof(sqe));
		sqe.opcode = IORING_OP_READ_FIXED;
		sqe.fd = pfd[0];
		sqe.addr = (__u64)(uintptr_t)p;
		sqe.len = 8;
		sqe.off = 0;
		sqe.buf_index = 0;
		res = sm_ring_run(&r, &sqe);
		TH_LOG("READ_FIXED into the pinned page of the sealed file: res %d", res);
		memset(buf, 0, sizeof(buf));
		EXPECT_EQ(8, pread(fd, buf, 8, 0));
		EXPECT_EQ(0, memcmp(buf, "sealed!!", 8)) TH_LOG("the write-sealed file now reads \"%.8s\"", buf);
		close(pfd[0]);
		close(pfd[1]);
	}
	EXPECT_EQ(0, syscall(__NR_io_uring_register, r.fd, IORING_UNREGISTER_BUFFERS, NULL, 0))
		TH_LOG("IORING_UNREGISTER_BUFFERS: %s", strerror(errno));
	if (!granted) {
		EXPECT_EQ(0, sm_add_seals(fd, SEALMEM_SEAL_WRITE)) TH_LOG("after unregistering: %s", strerror(errno));
	}
	EXPECT_EQ(SEALMEM_SEAL_WRITE, sm_get_seals(fd));
	sm_ring_close(&r);
	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(8, pread(fd, buf, 8, 0));
	close(fd);
}

struct ring_job {
	struct sm_ring *r;
	struct io_uring_sqe sqe;
	int res;
	atomic_int done;
};

static void *ring_job_run(void *arg)
{
	struct ring_job *j = arg;

	j->res = sm_ring_run(j->r, &j->sqe);
	atomic_store(&j->done, 1);
	return NULL;
}

/*
 * A splice of a lazy hole restarts itself now and then so as not to keep the pipe locked
 * (restart_syscall()). An io_uring splice runs in an io-wq worker, where nothing restarts a
 * syscall: there it must wait for the fill like a plain read, not complete after the first
 * wait slice (io_uring turned the restart code into -EINTR in the CQE).
 */
TEST_F_TIMEOUT(rules, io_uring_splice_of_a_lazy_hole_waits_for_the_fill, 120)
{
	struct sm_ring r;
	struct ring_job j = { .r = &r };
	struct sealmem_msg m;
	int fd, hfd, pfd[2];
	char *src, got[SM_PS_MAX];
	double deadline;

	fd = sm_new();
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, 4 * SM_PS));
	hfd = sm_fill_enable(fd, 0);
	ASSERT_GE(hfd, 0);
	src = sm_make_src(4 * SM_PS, 21);
	ASSERT_NE(MAP_FAILED, src);
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(0, sm_ring_setup(&r)) TH_LOG("io_uring_setup/mmap: %s", strerror(errno));
	j.sqe.opcode = IORING_OP_SPLICE;
	j.sqe.splice_fd_in = fd;
	j.sqe.splice_off_in = SM_PS;
	j.sqe.fd = pfd[1];
	j.sqe.off = (__u64)-1;
	j.sqe.len = SM_PS;
	ASSERT_EQ(0, pthread_create(&(pthread_t){ 0 }, NULL, ring_job_run, &j));
	ASSERT_EQ(0, sm_read_msg(hfd, &m, 10000)) TH_LOG("no request from the io_uring splice");
	EXPECT_EQ(SM_PS, m.offset);
	/* Several wait slices long: the job must still be waiting for the fill. */
	deadline = sm_now() + 1.0;
	while (!atomic_load(&j.done) && sm_now() < deadline)
		sm_msleep(10);
	EXPECT_EQ(0, atomic_load(&j.done)) TH_LOG("the io_uring splice completed unfilled: res %d", j.res);
	ASSERT_EQ(0, sm_copy(hfd, SM_PS, src + SM_PS, SM_PS, NULL));
	deadline = sm_now() + 30;
	while (!atomic_load(&j.done) && sm_now() < deadline)
		sm_msleep(10);
	ASSERT_EQ(1, atomic_load(&j.done)) TH_LOG("the io_uring splice never completed");
	EXPECT_EQ((int)SM_PS, j.res);
	ASSERT_EQ((ssize_t)SM_PS, read(pfd[0], got, SM_PS));
	EXPECT_EQ(0, memcmp(got, src + SM_PS, SM_PS));
	sm_ring_close(&r);
	close(pfd[0]);
	close(pfd[1]);
	close(hfd);
	close(fd);
	munmap(src, 4 * SM_PS);
}

/* The harness's main, with test filters also taken from sealmem_rules_only/_skip. */
int main(int argc, char **argv)
{
	const char *env[2] = { getenv("sealmem_rules_only"), getenv("sealmem_rules_skip") };
	static char *args[128];
	int n = 0, i;

	if (argc > 1 || ((!env[0] || !*env[0]) && (!env[1] || !*env[1])))
		return test_harness_run(argc, argv);
	args[n++] = argv[0];
	for (i = 0; i < 2; i++) {
		char *list, *name, *save = NULL;

		if (!env[i] || !*env[i])
			continue;
		list = strdup(env[i]);
		for (name = strtok_r(list, ",", &save); name && n < 126; name = strtok_r(NULL, ",", &save)) {
			args[n++] = i ? "-T" : "-t";
			args[n++] = name;
		}
	}
	args[n] = NULL;
	return test_harness_run(n, args);
}
