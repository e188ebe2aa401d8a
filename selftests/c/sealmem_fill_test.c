// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem lazy-fill tests (SPEC section 5): the handler fd, one request per missing page,
 * COPY/ZEROPAGE/POISON/WAKE/FILL_END, waiting from every path, signals, a handler that
 * goes away, and the lazy sealed image end to end.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "sealmem_lib.h"

#define MAXP 512

static int fill_enable(int fd, unsigned long flags)
{
	return ioctl(fd, SEALMEM_IOC_FILL_ENABLE, flags);
}

static int copy_page(int hfd, __u64 off, const void *src, __u64 len, __u64 flags, __s64 *done)
{
	struct sealmem_copy c = { .offset = off, .src = (__u64)(uintptr_t)src, .len = len, .flags = flags };
	int ret = ioctl(hfd, SEALMEM_IOC_COPY, &c);

	if (done)
		*done = c.copy;
	return ret;
}

static int fill_op(int hfd, unsigned long cmd, __u64 off, __u64 len, __u64 flags, __s64 *done)
{
	struct sealmem_fill f = { .offset = off, .len = len, .flags = flags };
	int ret = ioctl(hfd, cmd, &f);

	if (done)
		*done = f.done;
	return ret;
}

/* A handler serving pages from `src` until stopped; counts requests per page. */
struct server {
	int hfd;
	const char *src;
	atomic_int count[MAXP];
	atomic_int served;	/* pages filled */
	atomic_int failed;	/* reads or fills that failed (last errno in `err`) */
	atomic_int err;
	atomic_int stop;
	atomic_int last_flags;
	atomic_int last_tid;
	pthread_t th;
};

static void serve_msgs(struct server *s, struct sealmem_msg *m, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		__u64 idx = m[i].offset / SM_PS;

		if (idx < MAXP)
			atomic_fetch_add(&s->count[idx], 1);
		atomic_store(&s->last_flags, m[i].flags);
		atomic_store(&s->last_tid, m[i].tid);
		/* A handler retries a fill that failed for lack of memory (as with
		 * userfaultfd); under injected allocation failures that keeps tests going. */
		for (int tries = 0;; tries++) {
			if (!copy_page(s->hfd, m[i].offset, s->src + m[i].offset, SM_PS, 0, NULL)) {
				atomic_fetch_add(&s->served, 1);
				break;
			}
			if (errno != ENOMEM || tries == 100) {
				atomic_store(&s->err, errno);
				atomic_fetch_add(&s->failed, 1);
				break;
			}
		}
	}
}

static void *serve_thread(void *arg)
{
	struct server *s = arg;
	struct sealmem_msg m[16];

	while (!atomic_load(&s->stop)) {
		struct pollfd p = { .fd = s->hfd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		if (p.revents & POLLHUP)
			break;
		n = read(s->hfd, m, sizeof(m));
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			atomic_store(&s->err, errno);
			atomic_fetch_add(&s->failed, 1);
		}
		if (n <= 0)
			continue;
		serve_msgs(s, m, n / sizeof(m[0]));
	}
	return NULL;
}

static void server_start(struct server *s, int hfd, const char *src)
{
	memset(s, 0, sizeof(*s));
	s->hfd = hfd;
	s->src = src;
	pthread_create(&s->th, NULL, serve_thread, s);
}

static void server_stop(struct server *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->th, NULL);
}

/* A test's handler must not fail: every read and every fill it made succeeded. */
#define EXPECT_SERVER_CLEAN(s) \
	EXPECT_EQ(0, atomic_load(&(s).failed)) TH_LOG("the test handler failed: %s", strerror(atomic_load(&(s).err)))

/*
 * Forks a child that reads `addr` of a lazy mapping (its exit status: the signal it got, or
 * 0) and returns its pid once the request it raised has been read into `m`; -1 on failure.
 */
static pid_t child_touches(char *addr, int hfd, struct sealmem_msg *m)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(sm_touch(addr, 0, NULL));
	if (pid > 0 && read(hfd, m, sizeof(*m)) != (ssize_t)sizeof(*m)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static char *make_src(size_t len, unsigned int seed)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p != MAP_FAILED)
		sm_pattern(p, len, seed, 0);
	return p;
}

FIXTURE(lazy) {
	int fd, hfd;
	char *src;
	size_t size;
};

FIXTURE_SETUP(lazy)
{
	self->size = 16 * SM_PS;
	self->fd = sm_new();
	ASSERT_GE(self->fd, 0);
	ASSERT_EQ(0, sm_set_size(self->fd, self->size));
	self->hfd = fill_enable(self->fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(self->hfd, 0) TH_LOG("FILL_ENABLE: %s", strerror(errno));
	self->src = make_src(self->size, 3);
	ASSERT_NE(MAP_FAILED, self->src);
}

FIXTURE_TEARDOWN(lazy)
{
	close(self->hfd);
	close(self->fd);
	munmap(self->src, self->size);
}

TEST_F(lazy, fault_served_by_handler_thread)
{
	struct server s;
	char *p = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->fd, 0);

	ASSERT_NE(MAP_FAILED, p);
	server_start(&s, self->hfd, self->src);
	EXPECT_EQ(0, memcmp(p + 5 * SM_PS, self->src + 5 * SM_PS, SM_PS));
	EXPECT_EQ(0, memcmp(p, self->src, self->size));
	server_stop(&s);
	EXPECT_SERVER_CLEAN(s);
	EXPECT_EQ(16, atomic_load(&s.served));
	EXPECT_EQ(1, atomic_load(&s.count[5]));
	EXPECT_EQ(SEALMEM_MSG_FAULT, atomic_load(&s.last_flags));
	EXPECT_EQ(16, sm_fdinfo_num(self->fd, "pages"));
	EXPECT_EQ(0, sm_fdinfo_num(self->fd, "pending"));
	munmap(p, self->size);
}

TEST_F(lazy, request_message_fields)
{
	struct sealmem_msg m;
	char *p = mmap(NULL, self->size, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	pid_t tid;
	int status;
	pid_t pid;

	ASSERT_NE(MAP_FAILED, p);
	/* A write fault in a child: flags WRITE|FAULT, tid of the faulting thread. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		p[3 * SM_PS + 1] = 'w';
		_exit(p[3 * SM_PS + 1] == 'w' ? 0 : 1);
	}
	ASSERT_EQ(sizeof(m), read(self->hfd, &m, sizeof(m)));
	EXPECT_EQ(3 * SM_PS, m.offset);
	EXPECT_EQ(SEALMEM_MSG_WRITE | SEALMEM_MSG_FAULT, m.flags);
	EXPECT_EQ(pid, (pid_t)m.tid);
	ASSERT_EQ(0, copy_page(self->hfd, m.offset, self->src + m.offset, SM_PS, 0, NULL));
	waitpid(pid, &status, 0);
	EXPECT_EQ(SM_EXITED(0), sm_ended(status));
	/* pread of a hole: a syscall request (no FAULT flag). */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		char c;

		_exit(pread(self->fd, &c, 1, 7 * SM_PS) == 1 && c == self->src[7 * SM_PS] ? 0 : 1);
	}
	ASSERT_EQ(sizeof(m), read(self->hfd, &m, sizeof(m)));
	EXPECT_EQ(7 * SM_PS, m.offset);
	EXPECT_EQ(0, m.flags);
	tid = (pid_t)m.tid;
	EXPECT_EQ(pid, tid);
	ASSERT_EQ(0, copy_page(self->hfd, m.offset, self->src + m.offset, SM_PS, 0, NULL));
	waitpid(pid, &status, 0);
	EXPECT_EQ(SM_EXITED(0), sm_ended(status));
	munmap(p, self->size);
}

static int wait_sleeping(int tid);

struct toucher {
	char *p;
	int fd;
	size_t off;
	int use_read;
	atomic_int done;
	atomic_int tid;
	char got;
};

static void *touch_thread(void *arg)
{
	struct toucher *t = arg;

	atomic_store(&t->tid, (int)syscall(SYS_gettid));
	if (t->use_read) {
		if (pread(t->fd, &t->got, 1, t->off) != 1)
			t->got = 0;
	} else {
		t->got = t->p[t->off];
	}
	atomic_store(&t->done, 1);
	return NULL;
}

TEST_F(lazy, many_waiters_one_request)
{
	enum { N = 8 };
	struct toucher t[N];
	pthread_t th[N];
	char *p = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->fd, 0);
	struct sealmem_msg m[4];
	int i;

	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < N; i++) {
		t[i] = (struct toucher){ .p = p, .fd = self->fd, .off = 2 * SM_PS + i, .use_read = i & 1 };
		pthread_create(&th[i], NULL, touch_thread, &t[i]);
	}
	/* Every thread reaches the hole and sleeps there: all wait for the same page. */
	for (i = 0; i < N; i++) {
		for (int k = 0; k < 500 && !atomic_load(&t[i].tid); k++)
			sm_msleep(2);
		EXPECT_EQ(0, wait_sleeping(atomic_load(&t[i].tid))) TH_LOG("waiter %d never slept", i);
		EXPECT_EQ(0, atomic_load(&t[i].done));
	}
	EXPECT_EQ(1, sm_fdinfo_num(self->hfd, "queued"));
	ASSERT_EQ(sizeof(m[0]), read(self->hfd, m, sizeof(m))) TH_LOG("one request for one page");
	EXPECT_EQ(2 * SM_PS, m[0].offset);
	ASSERT_EQ(0, copy_page(self->hfd, 2 * SM_PS, self->src + 2 * SM_PS, SM_PS, 0, NULL));
	for (i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(self->src[2 * SM_PS + i], t[i].got);
	}
	EXPECT_EQ(1, sm_fdinfo_num(self->hfd, "total"));
	munmap(p, self->size);
}

TEST_F(lazy, copy_eexist_reports_partial_progress)
{
	__s64 done = 0;
	char buf[SM_PS];

	ASSERT_EQ(0, copy_page(self->hfd, 2 * SM_PS, self->src + 2 * SM_PS, SM_PS, 0, &done));
	EXPECT_EQ(SM_PS, done);
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 0, self->src, 4 * SM_PS, 0, &done));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(2 * SM_PS, done) TH_LOG("pages 0 and 1 filled before the present page 2");
	/* Nothing is ever overwritten: page 2 keeps its first content. */
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 2 * SM_PS, self->src, SM_PS, 0, &done));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(-EEXIST, done) TH_LOG("nothing filled: copy is the negated errno");
	ASSERT_EQ(SM_PS, pread(self->fd, buf, SM_PS, 2 * SM_PS));
	EXPECT_EQ(0, memcmp(buf, self->src + 2 * SM_PS, SM_PS));
	EXPECT_EQ(3, sm_fdinfo_num(self->fd, "pages"));
}

TEST_F(lazy, copy_skip_existing)
{
	char *other = make_src(self->size, 9), buf[SM_PS];
	__s64 done = 0;

	ASSERT_NE(MAP_FAILED, other);
	ASSERT_EQ(0, copy_page(self->hfd, SM_PS, self->src + SM_PS, SM_PS, 0, NULL));
	ASSERT_EQ(0, copy_page(self->hfd, 0, other, 4 * SM_PS, SEALMEM_FILL_SKIP_EXISTING, &done));
	EXPECT_EQ(4 * SM_PS, done);
	ASSERT_EQ(SM_PS, pread(self->fd, buf, SM_PS, SM_PS));
	EXPECT_EQ(0, memcmp(buf, self->src + SM_PS, SM_PS)) TH_LOG("a skipped page kept its content");
	ASSERT_EQ(SM_PS, pread(self->fd, buf, SM_PS, 3 * SM_PS));
	EXPECT_EQ(0, memcmp(buf, other + 3 * SM_PS, SM_PS));
	munmap(other, self->size);
}

/*
 * A large COPY is stored a run of pages at a time: runs end at present pages and at a
 * faulting source page, and every page before a failure is filled, none after it.
 */
TEST_F(lazy, copy_runs_across_batches_present_pages_and_a_faulting_source)
{
	char *a = make_src(80 * SM_PS, 5), *b = make_src(80 * SM_PS, 7), *src, buf[SM_PS];
	__s64 done = 0;
	int i;

	ASSERT_NE(MAP_FAILED, a);
	ASSERT_NE(MAP_FAILED, b);
	ASSERT_EQ(0, sm_set_size(self->fd, 80 * SM_PS));
	ASSERT_EQ(0, copy_page(self->hfd, 20 * SM_PS, b + 20 * SM_PS, SM_PS, 0, NULL));
	ASSERT_EQ(0, copy_page(self->hfd, 37 * SM_PS, b + 37 * SM_PS, SM_PS, 0, NULL));
	ASSERT_EQ(0, copy_page(self->hfd, 0, a, 64 * SM_PS, SEALMEM_FILL_SKIP_EXISTING, &done));
	EXPECT_EQ(64 * SM_PS, done);
	EXPECT_EQ(64, sm_fdinfo_num(self->fd, "pages"));
	for (i = 0; i < 64; i++) {
		const char *want = (i == 20 || i == 37 ? b : a) + i * SM_PS;

		ASSERT_EQ(SM_PS, pread(self->fd, buf, SM_PS, (off_t)i * SM_PS));
		EXPECT_EQ(0, memcmp(buf, want, SM_PS)) TH_LOG("page %d", i);
	}
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 40 * SM_PS, a + 40 * SM_PS, 8 * SM_PS, 0, &done));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(-EEXIST, done);

	/* A source whose page 10 (of 16) is unmapped: pages 64..73 are filled, 74.. are not. */
	src = mmap(NULL, 16 * SM_PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, src);
	memcpy(src, a + 64 * SM_PS, 16 * SM_PS);
	ASSERT_EQ(0, munmap(src + 10 * SM_PS, SM_PS));
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 64 * SM_PS, src, 16 * SM_PS, 0, &done));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(10 * SM_PS, done);
	EXPECT_EQ(74, sm_fdinfo_num(self->fd, "pages"));
	ASSERT_EQ(SM_PS, pread(self->fd, buf, SM_PS, 73 * SM_PS));
	EXPECT_EQ(0, memcmp(buf, a + 73 * SM_PS, SM_PS));
	EXPECT_EQ(0, copy_page(self->hfd, 74 * SM_PS, a + 74 * SM_PS, 6 * SM_PS, 0, &done)) TH_LOG("74.. are still holes");
	munmap(src, 16 * SM_PS);
	munmap(a, 80 * SM_PS);
	munmap(b, 80 * SM_PS);
}

/*
 * A run stored in one walk may cross XArray nodes (64 indices each) and make the tree grow
 * taller mid-walk: on an empty file, pages 60..75 need a second level at index 64, and
 * pages 4090..4105 a third at index 4096.
 */
TEST_F(lazy, copy_run_crossing_tree_nodes)
{
	static const unsigned long starts[] = { 60, 4090 };
	char *a = make_src(16 * SM_PS, 11), buf[SM_PS];
	__s64 done = 0;

	ASSERT_NE(MAP_FAILED, a);
	ASSERT_EQ(0, sm_set_size(self->fd, 8192 * SM_PS));
	for (int r = 0; r < 2; r++) {
		ASSERT_EQ(0, copy_page(self->hfd, starts[r] * SM_PS, a, 16 * SM_PS, 0, &done));
		EXPECT_EQ(16 * SM_PS, done);
	}
	EXPECT_EQ(32, sm_fdinfo_num(self->fd, "pages"));
	for (int r = 0; r < 2; r++)
		for (int i = 0; i < 16; i++) {
			ASSERT_EQ(SM_PS, pread(self->fd, buf, SM_PS, (off_t)(starts[r] + i) * SM_PS));
			EXPECT_EQ(0, memcmp(buf, a + i * SM_PS, SM_PS)) TH_LOG("page %lu", starts[r] + i);
		}
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 59 * SM_PS, a, 2 * SM_PS, 0, &done));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(SM_PS, done) TH_LOG("page 59 was a hole, 60 is not");
	munmap(a, 16 * SM_PS);
}

TEST_F(lazy, copy_bad_input)
{
	__s64 done = 0;

	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 1, self->src, SM_PS, 0, NULL));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 0, self->src, SM_PS + 1, 0, NULL));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 0, self->src, 0, 0, NULL));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 0, self->src, SM_PS, 0x100, NULL));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, ~0ULL & ~(SM_PS - 1), self->src, 2 * SM_PS, 0, NULL));
	EXPECT_EQ(EINVAL, errno) TH_LOG("offset + len overflows");
	/* Starting at EOF: EINVAL, nothing done. Crossing EOF: filled up to EOF, then EINVAL. */
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, self->size, self->src, SM_PS, 0, &done));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-EINVAL, done);
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, self->size - 2 * SM_PS, self->src, 4 * SM_PS, 0, &done));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(2 * SM_PS, done);
	/* A bad source address. */
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 0, (void *)SM_PS, SM_PS, 0, &done));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(0, sm_fdinfo_num(self->fd, "pages") - 2) TH_LOG("no page was left half-filled");
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->hfd, SEALMEM_IOC_COPY, NULL));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->hfd, SEALMEM_IOC_SET_SIZE, &(__u64){ 0 }));
	EXPECT_EQ(ENOTTY, errno) TH_LOG("file ioctls are not handler ioctls");
}

TEST_F(lazy, copy_from_unaligned_source)
{
	char buf[SM_PS];

	ASSERT_EQ(0, copy_page(self->hfd, 3 * SM_PS, self->src + 5, SM_PS, 0, NULL));
	ASSERT_EQ(SM_PS, pread(self->fd, buf, SM_PS, 3 * SM_PS));
	EXPECT_EQ(0, memcmp(buf, self->src + 5, SM_PS));
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

TEST_F(lazy, dontwake_then_wake)
{
	char *p = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->fd, 0);
	struct toucher t = { .p = p, .off = 4 * SM_PS + 9 };
	struct sealmem_msg m;
	pthread_t th;

	ASSERT_NE(MAP_FAILED, p);
	pthread_create(&th, NULL, touch_thread, &t);
	ASSERT_EQ(sizeof(m), read(self->hfd, &m, sizeof(m)));
	/* A waiter that has not gone to sleep yet would just find the page: wait until it sleeps. */
	ASSERT_EQ(0, wait_sleeping(atomic_load(&t.tid)));
	ASSERT_EQ(0, copy_page(self->hfd, 4 * SM_PS, self->src + 4 * SM_PS, SM_PS, SEALMEM_FILL_DONTWAKE, NULL));
	sm_msleep(300);
	EXPECT_EQ(0, atomic_load(&t.done)) TH_LOG("DONTWAKE woke the waiter");
	ASSERT_EQ(0, ioctl(self->hfd, SEALMEM_IOC_WAKE, &(struct sealmem_range){ 4 * SM_PS, SM_PS }));
	pthread_join(th, NULL);
	EXPECT_EQ(self->src[4 * SM_PS + 9], t.got);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->hfd, SEALMEM_IOC_WAKE, &(struct sealmem_range){ 1, SM_PS }));
	EXPECT_EQ(EINVAL, errno);
	munmap(p, self->size);
}

TEST_F(lazy, zeropage_and_poison)
{
	char *p = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->fd, 0), buf[SM_PS], zero[SM_PS];
	__s64 done = 0;

	memset(zero, 0, sizeof(zero));
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, fill_op(self->hfd, SEALMEM_IOC_ZEROPAGE, 0, 2 * SM_PS, 0, &done));
	EXPECT_EQ(2 * SM_PS, done);
	ASSERT_EQ(SM_PS, pread(self->fd, buf, SM_PS, SM_PS));
	EXPECT_EQ(0, memcmp(buf, zero, SM_PS));
	EXPECT_EQ(0, p[10]);
	ASSERT_EQ(0, fill_op(self->hfd, SEALMEM_IOC_POISON, 5 * SM_PS, SM_PS, 0, &done));
	EXPECT_EQ(SM_PS, done);
	EXPECT_EQ(SIGBUS, sm_touch(p + 5 * SM_PS, 0, NULL));
	errno = 0;
	EXPECT_EQ(-1, pread(self->fd, buf, 1, 5 * SM_PS));
	EXPECT_EQ(EIO, errno);
	/* A read ending at a poisoned page returns the bytes before it. */
	ASSERT_EQ(0, copy_page(self->hfd, 4 * SM_PS, self->src + 4 * SM_PS, SM_PS, 0, NULL));
	EXPECT_EQ(SM_PS, pread(self->fd, buf, SM_PS, 4 * SM_PS));
	errno = 0;
	EXPECT_EQ(-1, fill_op(self->hfd, SEALMEM_IOC_POISON, 0, SM_PS, 0, &done));
	EXPECT_EQ(EEXIST, errno) TH_LOG("poisoning a present page");
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 5 * SM_PS, self->src, SM_PS, 0, NULL));
	EXPECT_EQ(EEXIST, errno) TH_LOG("filling a poisoned page");
	munmap(p, self->size);
}

TEST_F(lazy, read_and_sendfile_block_until_served)
{
	struct server s;
	char buf[3 * SM_PS];
	int pfd[2];

	server_start(&s, self->hfd, self->src);
	ASSERT_EQ(3 * SM_PS, pread(self->fd, buf, 3 * SM_PS, SM_PS + 100));
	EXPECT_EQ(0, memcmp(buf, self->src + SM_PS + 100, 3 * SM_PS));
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(2 * SM_PS, sendfile(pfd[1], self->fd, &(off_t){ 8 * SM_PS }, 2 * SM_PS));
	ASSERT_EQ(2 * SM_PS, read(pfd[0], buf, 2 * SM_PS));
	EXPECT_EQ(0, memcmp(buf, self->src + 8 * SM_PS, 2 * SM_PS));
	server_stop(&s);
	EXPECT_SERVER_CLEAN(s);
	close(pfd[0]);
	close(pfd[1]);
}

TEST_F(lazy, nonblocking_reads)
{
	int nb = sm_view(self->fd, 0);
	struct sealmem_msg m[2];
	char c;

	ASSERT_GE(nb, 0);
	ASSERT_EQ(0, fcntl(nb, F_SETFL, O_NONBLOCK));
	errno = 0;
	EXPECT_EQ(-1, read(nb, &c, 1));
	EXPECT_EQ(EAGAIN, errno) TH_LOG("O_NONBLOCK read of a lazy hole");
	/* The request was raised all the same. */
	ASSERT_EQ(sizeof(m[0]), read(self->hfd, m, sizeof(m)));
	EXPECT_EQ(0, m[0].offset);
	ASSERT_EQ(0, fcntl(self->hfd, F_SETFL, O_NONBLOCK));
	errno = 0;
	EXPECT_EQ(-1, read(self->hfd, m, sizeof(m)));
	EXPECT_EQ(EAGAIN, errno) TH_LOG("O_NONBLOCK handler read with nothing pending");
	errno = 0;
	EXPECT_EQ(-1, read(self->hfd, m, sizeof(m[0]) - 1));
	EXPECT_EQ(EINVAL, errno) TH_LOG("a buffer too small for one message");
	close(nb);
}

TEST_F(lazy, epoll_driven_handler_and_hup)
{
	int ep = epoll_create1(0), status;
	struct epoll_event ev = { .events = EPOLLIN }, out;
	struct sealmem_msg m;
	pid_t pid;

	ASSERT_GE(ep, 0);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->hfd, &ev));
	EXPECT_EQ(0, epoll_wait(ep, &out, 1, 0));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		char c;

		_exit(pread(self->fd, &c, 1, 6 * SM_PS) == 1 && c == self->src[6 * SM_PS] ? 0 : 1);
	}
	ASSERT_EQ(1, epoll_wait(ep, &out, 1, 5000));
	EXPECT_TRUE(out.events & EPOLLIN);
	ASSERT_EQ(sizeof(m), read(self->hfd, &m, sizeof(m)));
	ASSERT_EQ(0, copy_page(self->hfd, m.offset, self->src + m.offset, SM_PS, 0, NULL));
	waitpid(pid, &status, 0);
	EXPECT_EQ(SM_EXITED(0), sm_ended(status));
	/* Once no fd or mapping of the file is left, the handler sees HUP and EOF. */
	close(self->fd);
	self->fd = sm_new();
	ASSERT_EQ(1, epoll_wait(ep, &out, 1, 5000));
	EXPECT_TRUE(out.events & EPOLLHUP);
	EXPECT_EQ(0, read(self->hfd, &m, sizeof(m)));
	close(ep);
}

TEST_F(lazy, handler_in_another_process_via_scm_rights)
{
	int sv[2], status;
	char *p = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->fd, 0);
	pid_t pid;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		/* The child has no handler fd of its own: it receives one. */
		struct server s;
		char x;
		int hfd;

		close(self->hfd);
		hfd = sm_recv_fd(sv[1]);
		if (hfd < 0)
			_exit(1);
		server_start(&s, hfd, self->src);
		if (read(sv[1], &x, 1) != 1)
			_exit(2);
		server_stop(&s);
		_exit(atomic_load(&s.served) == 16 && !atomic_load(&s.failed) ? 0 : 3);
	} else {
		ASSERT_EQ(0, sm_send_fd(sv[0], self->hfd));
		EXPECT_EQ(0, memcmp(p, self->src, self->size));
		ASSERT_EQ(1, write(sv[0], "q", 1));
		waitpid(pid, &status, 0);
		EXPECT_EQ(SM_EXITED(0), sm_ended(status));
	}
	munmap(p, self->size);
}

TEST_F(lazy, handler_closed_waiters_fail_fast_then_reattach)
{
	/* Mapped through a VIEW, so the file can be write-sealed below. */
	int view = sm_view(self->fd, SEALMEM_FD_CLOEXEC);
	char *p = mmap(NULL, self->size, PROT_READ, MAP_SHARED, view, 0), c;
	struct sealmem_msg m;
	int status, hfd2;
	double t0;
	pid_t pid;

	ASSERT_GE(view, 0);
	ASSERT_NE(MAP_FAILED, p);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		/* Our copy of the handler fd would keep the handler alive. */
		close(self->hfd);
		_exit(sm_touch(p + 9 * SM_PS, 0, NULL));
	}
	ASSERT_EQ(sizeof(m), read(self->hfd, &m, sizeof(m)));
	t0 = sm_now();
	close(self->hfd);
	self->hfd = -1;
	waitpid(pid, &status, 0);
	EXPECT_EQ(SM_EXITED(SIGBUS), sm_ended(status)) TH_LOG("the waiter ended with %d", sm_ended(status));
	EXPECT_LT(sm_now() - t0, 5.0) TH_LOG("the waiter was not released promptly");
	/* Later accesses fail the same way, never passing a hole off as zeros. */
	EXPECT_EQ(SIGBUS, sm_touch(p + 10 * SM_PS, 0, NULL));
	errno = 0;
	EXPECT_EQ(-1, pread(self->fd, &c, 1, 10 * SM_PS));
	EXPECT_EQ(EIO, errno);
	/* A new handler may attach, even after WRITE, since the file is still lazy. */
	ASSERT_EQ(0, sm_add_seals(self->fd, SEALMEM_SEAL_WRITE));
	hfd2 = fill_enable(self->fd, 0);
	ASSERT_GE(hfd2, 0) TH_LOG("re-attach: %s", strerror(errno));
	ASSERT_EQ(0, copy_page(hfd2, 10 * SM_PS, self->src + 10 * SM_PS, SM_PS, 0, NULL));
	EXPECT_EQ(self->src[10 * SM_PS], p[10 * SM_PS]);
	self->hfd = hfd2;
	munmap(p, self->size);
	close(view);
}

TEST_F(lazy, fill_enable_errors)
{
	int view = sm_view(self->fd, 0), plain = sm_new();

	ASSERT_GE(view, 0);
	ASSERT_GE(plain, 0);
	errno = 0;
	EXPECT_EQ(-1, fill_enable(self->fd, 0));
	EXPECT_EQ(EBUSY, errno) TH_LOG("one handler at a time");
	errno = 0;
	EXPECT_EQ(-1, fill_enable(view, 0));
	EXPECT_EQ(EPERM, errno) TH_LOG("a VIEW fd cannot attach a handler");
	errno = 0;
	EXPECT_EQ(-1, fill_enable(plain, 0x80));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, sm_add_seals(plain, SEALMEM_SEAL_WRITE));
	errno = 0;
	EXPECT_EQ(-1, fill_enable(plain, 0));
	EXPECT_EQ(EPERM, errno) TH_LOG("write-sealed and not lazy");
	close(plain);
	plain = sm_new();
	ASSERT_EQ(0, sm_add_seals(plain, SEALMEM_SEAL_FUTURE_WRITE));
	errno = 0;
	EXPECT_EQ(-1, fill_enable(plain, 0));
	EXPECT_EQ(EPERM, errno) TH_LOG("future-write-sealed and not lazy");
	/* A VIEW holder cannot fill, write, resize or seal either. */
	errno = 0;
	EXPECT_EQ(-1, copy_page(view, 0, self->src, SM_PS, 0, NULL));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, pwrite(view, "x", 1, 0));
	EXPECT_EQ(-1, sm_set_size(view, 0));
	EXPECT_EQ(-1, sm_add_seals(view, SEALMEM_SEAL_SEAL));
	close(plain);
	close(view);
}

TEST_F(lazy, fill_end_turns_holes_into_zeros)
{
	char *p = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->fd, 0);
	struct toucher t = { .p = p, .off = 7 * SM_PS + 3 };
	struct sealmem_msg m;
	pthread_t th;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, copy_page(self->hfd, 0, self->src, SM_PS, 0, NULL));
	pthread_create(&th, NULL, touch_thread, &t);
	ASSERT_EQ(sizeof(m), read(self->hfd, &m, sizeof(m)));
	ASSERT_EQ(0, ioctl(self->hfd, SEALMEM_IOC_FILL_END));
	pthread_join(th, NULL);
	EXPECT_EQ(0, t.got) TH_LOG("the waiter continues with a zero page");
	EXPECT_EQ(self->src[5], p[5]);
	EXPECT_EQ(0, p[12 * SM_PS]);
	EXPECT_EQ(0, read(self->hfd, &m, sizeof(m))) TH_LOG("the ended handler reads EOF");
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 13 * SM_PS, self->src, SM_PS, 0, NULL));
	EXPECT_EQ(EINVAL, errno);
	munmap(p, self->size);
}

/* Copies page after page until told to stop or a COPY fails (FILL_END made it EINVAL). */
struct racing_copier {
	int hfd;
	const char *src;
	int pages;
	atomic_int stop;
	pthread_t th;
};

static void *racing_copy(void *arg)
{
	struct racing_copier *c = arg;

	for (int i = 0; i < c->pages && !atomic_load(&c->stop); i++)
		if (copy_page(c->hfd, (__u64)i * SM_PS, c->src + (size_t)i * SM_PS, SM_PS, 0, NULL))
			break;
	return NULL;
}

/*
 * FILL_END racing the handler's own COPYs on a write-sealed file: once FILL_END has
 * returned, a hole reads as zeros for good. A COPY that passed its checks before FILL_END
 * must not store its page afterwards, or bytes already read as zeros would change.
 */
TEST(lazy_fill_end_racing_copy_never_changes_observed_bytes)
{
	enum { PAGES = 64, ROUNDS = 150 };
	char *src = make_src(PAGES * SM_PS, 3), *a = malloc(PAGES * SM_PS), *b = malloc(PAGES * SM_PS);

	ASSERT_NE(MAP_FAILED, src);
	ASSERT_TRUE(a && b);
	for (int r = 0; r < ROUNDS; r++) {
		struct racing_copier c = { .src = src, .pages = PAGES };
		int fd = sm_new();

		ASSERT_GE(fd, 0);
		ASSERT_EQ(0, sm_set_size(fd, PAGES * SM_PS));
		c.hfd = fill_enable(fd, 0);
		ASSERT_GE(c.hfd, 0);
		ASSERT_EQ(0, sm_add_seals(fd, SEALMEM_SEAL_WRITE | SEALMEM_SEAL_SHRINK | SEALMEM_SEAL_GROW));
		pthread_create(&c.th, NULL, racing_copy, &c);
		for (volatile int spin = 0; spin < (r % 16) * 2000; spin++)
			;
		ASSERT_EQ(0, ioctl(c.hfd, SEALMEM_IOC_FILL_END));
		ASSERT_EQ(PAGES * SM_PS, pread(fd, a, PAGES * SM_PS, 0));
		atomic_store(&c.stop, 1);
		pthread_join(c.th, NULL);
		ASSERT_EQ(PAGES * SM_PS, pread(fd, b, PAGES * SM_PS, 0));
		ASSERT_EQ(0, memcmp(a, b, PAGES * SM_PS)) TH_LOG("round %d: bytes read after FILL_END changed", r);
		close(c.hfd);
		close(fd);
	}
	free(a);
	free(b);
	munmap(src, PAGES * SM_PS);
}

TEST_F(lazy, faulter_killed_while_waiting)
{
	char *p = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->fd, 0);
	long long files0 = sm_counter("files");
	struct sealmem_msg m;
	int status;
	pid_t pid;

	ASSERT_NE(MAP_FAILED, p);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(p[11 * SM_PS]);
	ASSERT_EQ(sizeof(m), read(self->hfd, &m, sizeof(m)));
	sm_msleep(100);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(SM_KILLED(SIGKILL), sm_ended(status));
	EXPECT_EQ(files0, sm_counter("files"));
	/* The request stays valid; filling it later is fine. */
	EXPECT_EQ(0, copy_page(self->hfd, m.offset, self->src + m.offset, SM_PS, 0, NULL));
	munmap(p, self->size);
}

/* Every blocking wait in sealmem can be killed: a reader of a lazy hole, a handler reader. */
TEST_F(lazy, blocked_read_and_blocked_handler_read_are_killable)
{
	struct sealmem_msg m;
	int status, i;
	pid_t pid[2];

	pid[0] = fork();
	ASSERT_GE(pid[0], 0);
	if (pid[0] == 0) {
		char c;

		close(self->hfd);
		_exit(pread(self->fd, &c, 1, 13 * SM_PS) == 1 ? 0 : 1);
	}
	ASSERT_EQ(sizeof(m), read(self->hfd, &m, sizeof(m)));
	pid[1] = fork();
	ASSERT_GE(pid[1], 0);
	if (pid[1] == 0)
		_exit(read(self->hfd, &m, sizeof(m)) >= 0 ? 0 : 1); /* nothing more is queued */
	sm_msleep(200);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, kill(pid[i], SIGKILL));
		ASSERT_EQ(pid[i], waitpid(pid[i], &status, 0));
		EXPECT_EQ(SM_KILLED(SIGKILL), sm_ended(status)) TH_LOG("process %d: %#x", i, status);
	}
	EXPECT_EQ(0, copy_page(self->hfd, 13 * SM_PS, self->src + 13 * SM_PS, SM_PS, 0, NULL));
}

static atomic_int sigusr_seen;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&sigusr_seen, 1);
}

TEST_F(lazy, signal_during_wait_runs_handler_then_access_succeeds)
{
	char *p = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->fd, 0);
	struct toucher t = { .p = p, .off = 12 * SM_PS + 1 };
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct sealmem_msg m;
	pthread_t th;

	ASSERT_NE(MAP_FAILED, p);
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	atomic_store(&sigusr_seen, 0);
	pthread_create(&th, NULL, touch_thread, &t);
	ASSERT_EQ(sizeof(m), read(self->hfd, &m, sizeof(m)));
	sm_msleep(100);
	ASSERT_EQ(0, pthread_kill(th, SIGUSR1));
	sm_msleep(200);
	EXPECT_EQ(1, atomic_load(&sigusr_seen)) TH_LOG("the signal handler ran during the wait");
	EXPECT_EQ(0, atomic_load(&t.done)) TH_LOG("the access is retried, still waiting");
	/* The retried fault found the request already pending: no second request. */
	EXPECT_EQ(1, sm_fdinfo_num(self->hfd, "total"));
	ASSERT_EQ(0, copy_page(self->hfd, m.offset, self->src + m.offset, SM_PS, 0, NULL));
	pthread_join(th, NULL);
	EXPECT_EQ(self->src[12 * SM_PS + 1], t.got);
	signal(SIGUSR1, SIG_DFL);
	munmap(p, self->size);
}

TEST_F(lazy, shrink_releases_waiters_with_sigbus)
{
	char *p = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->fd, 0);
	struct sealmem_msg m;
	int status;
	pid_t pid;

	ASSERT_NE(MAP_FAILED, p);
	pid = child_touches(p + 14 * SM_PS, self->hfd, &m);
	ASSERT_GT(pid, 0);
	ASSERT_EQ(0, sm_set_size(self->fd, 2 * SM_PS));
	waitpid(pid, &status, 0);
	EXPECT_EQ(SM_EXITED(SIGBUS), sm_ended(status));
	EXPECT_EQ(0, sm_fdinfo_num(self->fd, "pending"));
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, m.offset, self->src, SM_PS, 0, NULL));
	EXPECT_EQ(EINVAL, errno) TH_LOG("the page is past EOF now");
	/* Punching a filled page of a lazy file makes it a hole that is requested again. */
	ASSERT_EQ(0, copy_page(self->hfd, 0, self->src, SM_PS, 0, NULL));
	ASSERT_EQ(0, sm_punch(self->fd, 0, SM_PS));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(p[0] == self->src[0] ? 0 : 1);
	ASSERT_EQ(sizeof(m), read(self->hfd, &m, sizeof(m)));
	EXPECT_EQ(0, m.offset);
	ASSERT_EQ(0, copy_page(self->hfd, 0, self->src, SM_PS, 0, NULL));
	waitpid(pid, &status, 0);
	EXPECT_EQ(SM_EXITED(0), sm_ended(status));
	munmap(p, self->size);
}

/* Reads page 10 once per round, as soon as the round starts. */
struct racer {
	int fd;
	atomic_int go, done;
	pthread_t th;
};

static void *race_reader(void *arg)
{
	struct racer *r = arg;
	char c;

	for (int round = 1;; round++) {
		int go;

		while ((go = atomic_load(&r->go)) >= 0 && go < round)
			;
		if (go < 0)
			return NULL;
		(void)!pread(r->fd, &c, 1, 10 * SM_PS);
		atomic_store(&r->done, round);
	}
}

/*
 * Regression (found by the fuzzer): a read checked EOF, a shrink came, and then the read
 * raised its request for a page past the new EOF. The handler's fill of that page failed
 * (EINVAL, past EOF) and, once the file had grown back, nothing could ever resolve the
 * request: the reader waited until the handler went away. Requests are now never raised
 * past EOF. Each round starts a read of a hole and, at a varying moment, shrinks the file
 * under it (the handler's fill then fails), then regrows it; the read must end.
 */
TEST_F(lazy, shrink_racing_a_new_request_never_strands_it)
{
	struct server s;
	struct racer r = { .fd = self->fd };
	int round, stuck = 0;

	server_start(&s, self->hfd, self->src);
	pthread_create(&r.th, NULL, race_reader, &r);
	for (round = 1; round <= 300 && !stuck; round++) {
		double t;

		ASSERT_EQ(0, sm_punch(self->fd, 10 * SM_PS, SM_PS));
		atomic_store(&r.go, round);
		for (volatile int spin = (round * 37) % 3000; spin > 0; spin--)
			;
		ASSERT_EQ(0, sm_set_size(self->fd, 2 * SM_PS));
		sm_msleep(2); /* long enough for the handler to try (and fail) its fill */
		ASSERT_EQ(0, sm_set_size(self->fd, 16 * SM_PS));
		for (t = sm_now(); atomic_load(&r.done) != round; sm_msleep(1))
			if (sm_now() - t > 2) {
				stuck = round;
				break;
			}
	}
	if (stuck)
		ioctl(self->hfd, SEALMEM_IOC_FILL_END); /* release the stranded reader */
	while (atomic_load(&r.done) != round - 1)
		sm_msleep(1);
	atomic_store(&r.go, -1);
	pthread_join(r.th, NULL);
	/* Its fills may fail legitimately (EINVAL: the page went past EOF with a shrink). */
	server_stop(&s);
	EXPECT_EQ(0, stuck) TH_LOG("round %d: a read waited over 2 s for a request no fill could resolve", stuck);
}

TEST_F(lazy, write_into_hole_waits_for_fill)
{
	struct server s;
	char buf[8];

	server_start(&s, self->hfd, self->src);
	ASSERT_EQ(4, pwrite(self->fd, "ABCD", 4, 3 * SM_PS + 10));
	server_stop(&s);
	EXPECT_SERVER_CLEAN(s);
	EXPECT_EQ(1, atomic_load(&s.count[3]));
	EXPECT_EQ(SEALMEM_MSG_WRITE, atomic_load(&s.last_flags));
	ASSERT_EQ(8, pread(self->fd, buf, 8, 3 * SM_PS + 8));
	EXPECT_EQ(self->src[3 * SM_PS + 8], buf[0]);
	EXPECT_EQ(self->src[3 * SM_PS + 9], buf[1]);
	EXPECT_EQ(0, memcmp(buf + 2, "ABCD", 4)) TH_LOG("the write landed on the filled page");
	EXPECT_EQ(self->src[3 * SM_PS + 14], buf[6]);
}

TEST_F(lazy, gup_without_retry_fails_instead_of_hanging)
{
	/*
	 * /proc/self/mem reads pages through GUP without a retryable lock: the fault cannot
	 * drop the mmap lock to wait, so it must fail (SIGBUS -> EIO) rather than hang.
	 */
	char *p = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->fd, 0), c;
	int mem = open("/proc/self/mem", O_RDONLY);
	double t0 = sm_now();

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_GE(mem, 0);
	errno = 0;
	EXPECT_EQ(-1, pread(mem, &c, 1, (off_t)(uintptr_t)(p + 6 * SM_PS)));
	EXPECT_EQ(EIO, errno);
	EXPECT_LT(sm_now() - t0, 5.0);
	/* Once filled, the same read works. */
	ASSERT_EQ(0, copy_page(self->hfd, 6 * SM_PS, self->src + 6 * SM_PS, SM_PS, SEALMEM_FILL_SKIP_EXISTING, NULL));
	ASSERT_EQ(1, pread(mem, &c, 1, (off_t)(uintptr_t)(p + 6 * SM_PS)));
	EXPECT_EQ(self->src[6 * SM_PS], c);
	close(mem);
	munmap(p, self->size);
}

/* COPY maps the page where the fault waits (as UFFDIO_COPY does): the woken fault does not
 * come back to the module, so each page costs exactly one fault. */
TEST_F(lazy, fill_maps_the_page_where_the_fault_waits)
{
	volatile char *p = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->fd, 0);
	struct server s;
	long long before;
	int i;

	ASSERT_NE(MAP_FAILED, p);
	server_start(&s, self->hfd, self->src);
	before = sm_counter("faults");
	for (i = 15; i >= 0; i--)
		EXPECT_EQ(self->src[i * SM_PS + 7], p[i * SM_PS + 7]);
	EXPECT_EQ(16, sm_counter("faults") - before);
	server_stop(&s);
	EXPECT_SERVER_CLEAN(s);
	for (i = 0; i < 16; i++)
		EXPECT_EQ(1, atomic_load(&s.count[i])) TH_LOG("page %d requested %d times", i, atomic_load(&s.count[i]));
	munmap((void *)p, self->size);
}

/*
 * A woken fault is over (VM_FAULT_COMPLETED): the access runs again and sees whatever the
 * handler left. A page poisoned while a fault waits for it raises SIGBUS in the waiter; a
 * kernel-mode access through the mapping (write() from it) waits, then completes its copy.
 */
TEST_F(lazy, woken_faults_rerun_the_access)
{
	char *p = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->fd, 0);
	struct sealmem_msg m;
	struct server s;
	char buf[2 * SM_PS];
	int status, pfd[2];
	pid_t pid;

	ASSERT_NE(MAP_FAILED, p);
	pid = child_touches(p + 3 * SM_PS, self->hfd, &m);
	ASSERT_GT(pid, 0);
	EXPECT_EQ(3 * SM_PS, m.offset);
	sm_msleep(50); /* usually asleep in the fault by now; either way the access must fail */
	ASSERT_EQ(0, fill_op(self->hfd, SEALMEM_IOC_POISON, 3 * SM_PS, SM_PS, 0, NULL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(SM_EXITED(SIGBUS), sm_ended(status));

	ASSERT_EQ(0, pipe(pfd));
	server_start(&s, self->hfd, self->src);
	ASSERT_EQ(2 * SM_PS, write(pfd[1], p + 8 * SM_PS, 2 * SM_PS));
	ASSERT_EQ(2 * SM_PS, read(pfd[0], buf, 2 * SM_PS));
	EXPECT_EQ(0, memcmp(buf, self->src + 8 * SM_PS, 2 * SM_PS));
	/* GUP that may drop the mmap lock (vmsplice takes page references) waits too. */
	ASSERT_EQ(2 * SM_PS, vmsplice(pfd[1], &(struct iovec){ p + 12 * SM_PS, 2 * SM_PS }, 1, 0));
	ASSERT_EQ(2 * SM_PS, read(pfd[0], buf, 2 * SM_PS));
	EXPECT_EQ(0, memcmp(buf, self->src + 12 * SM_PS, 2 * SM_PS));
	server_stop(&s);
	EXPECT_SERVER_CLEAN(s);
	close(pfd[0]);
	close(pfd[1]);
	munmap(p, self->size);
}

TEST_F(lazy, private_mapping_faults_wait_too)
{
	struct server s;
	char *p = mmap(NULL, self->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, self->fd, 0), c;

	ASSERT_NE(MAP_FAILED, p);
	server_start(&s, self->hfd, self->src);
	p[SM_PS] = 'P';
	EXPECT_EQ(self->src[SM_PS + 1], p[SM_PS + 1]) TH_LOG("the private copy started from the filled page");
	server_stop(&s);
	ASSERT_EQ(1, pread(self->fd, &c, 1, SM_PS));
	EXPECT_EQ(self->src[SM_PS], c);
	munmap(p, self->size);
}

/* A thread in epoll_wait on the handler fd (10 s at most): the events it got. */
struct hup_waiter {
	int ep;
	atomic_int tid, done;
	int n;
	__u32 events;
	pthread_t th;
};

static void *hup_wait_run(void *arg)
{
	struct hup_waiter *w = arg;
	struct epoll_event ev = { 0 };

	atomic_store(&w->tid, (int)syscall(SYS_gettid));
	w->n = epoll_wait(w->ep, &ev, 1, 10000);
	w->events = ev.events;
	atomic_store(&w->done, 1);
	return NULL;
}

/* Starts a hup_waiter on `hfd` and returns once it sleeps in epoll_wait; 0 on success. */
static int hup_waiter_start(struct hup_waiter *w, int hfd)
{
	struct epoll_event ev = { .events = EPOLLIN };

	memset(w, 0, sizeof(*w));
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, hfd, &ev) || pthread_create(&w->th, NULL, hup_wait_run, w))
		return -1;
	while (!atomic_load(&w->tid))
		sm_msleep(1);
	return wait_sleeping(atomic_load(&w->tid));
}

/* Waits up to 5 s for the waiter to end; joins it and returns its events, or 0. */
static __u32 hup_waiter_end(struct hup_waiter *w)
{
	double t0 = sm_now();

	while (!atomic_load(&w->done) && sm_now() - t0 < 5)
		sm_msleep(2);
	if (!atomic_load(&w->done))
		return 0;	/* left to its 10 s timeout; joined by nobody */
	pthread_join(w->th, NULL);
	close(w->ep);
	return w->n == 1 ? w->events : 0;
}

/*
 * EPOLLHUP (and read() returning 0) once the handler is no longer needed, beyond the "last
 * fd closed" case of epoll_driven_handler_and_hup: after FILL_END, and when the file's last
 * mapping goes after all its fds did. Before that, no HUP: a mapping alone can still raise
 * requests. A waiter asleep in epoll_wait is woken.
 */
TEST_F(lazy, handler_hup_after_fill_end_and_after_the_last_mapping)
{
	struct pollfd pl = { .fd = self->hfd, .events = POLLIN };
	struct hup_waiter w1, w2;	/* one each: a waiter never woken stays in epoll_wait */
	struct sealmem_msg m;
	int fd, hfd, status;
	__u32 ev;
	char *p;
	pid_t pid;

	/* FILL_END. */
	EXPECT_EQ(0, poll(&pl, 1, 0)) TH_LOG("nothing pending, handler needed: no event");
	ASSERT_EQ(0, hup_waiter_start(&w1, self->hfd));
	ASSERT_EQ(0, ioctl(self->hfd, SEALMEM_IOC_FILL_END));
	ev = hup_waiter_end(&w1);
	EXPECT_TRUE(ev & EPOLLHUP) TH_LOG("epoll_wait after FILL_END: events %#x", ev);
	EXPECT_EQ(1, poll(&pl, 1, 0));
	EXPECT_TRUE(pl.revents & POLLHUP);
	EXPECT_EQ(0, read(self->hfd, &m, sizeof(m)));

	/* The last mapping: every fd but the handler closed while a mapping lives. */
	fd = sm_new();
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, 4 * SM_PS));
	hfd = fill_enable(fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(hfd, 0);
	p = mmap(NULL, 4 * SM_PS, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	close(fd);
	pl = (struct pollfd){ .fd = hfd, .events = POLLIN };
	EXPECT_EQ(0, poll(&pl, 1, 0)) TH_LOG("a mapping is left: no HUP (revents %#x)", pl.revents);
	/* The mapping alone still raises requests (a child's fault), served as usual. */
	pid = child_touches(p + SM_PS, hfd, &m);
	ASSERT_GT(pid, 0);
	EXPECT_EQ(SM_PS, m.offset);
	ASSERT_EQ(0, copy_page(hfd, SM_PS, self->src + SM_PS, SM_PS, 0, NULL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(SM_EXITED(0), sm_ended(status));
	EXPECT_EQ(0, poll(&pl, 1, 0)) TH_LOG("revents %#x", pl.revents);
	ASSERT_EQ(0, hup_waiter_start(&w2, hfd));
	ASSERT_EQ(0, munmap(p, 4 * SM_PS));
	ev = hup_waiter_end(&w2);
	EXPECT_TRUE(ev & EPOLLHUP) TH_LOG("epoll_wait after the last munmap: events %#x", ev);
	EXPECT_EQ(1, poll(&pl, 1, 0));
	EXPECT_TRUE(pl.revents & POLLHUP);
	EXPECT_EQ(0, read(hfd, &m, sizeof(m)));
	close(hfd);
}

/*
 * A read fault on a MAP_PRIVATE mapping of a lazy file waits for the fill and maps the
 * file's page; a write then makes a private copy: exact bytes (the filled ones around the
 * written byte), the file and other mappings unchanged, no second request.
 */
TEST_F(lazy, private_read_fault_then_write_copies_the_filled_page)
{
	char *p = mmap(NULL, self->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, self->fd, 0), *q, buf[SM_PS];
	struct server s;
	volatile char c;

	ASSERT_NE(MAP_FAILED, p);
	server_start(&s, self->hfd, self->src);
	c = p[6 * SM_PS + 5];
	EXPECT_EQ(self->src[6 * SM_PS + 5], c);
	EXPECT_EQ(SEALMEM_MSG_FAULT, atomic_load(&s.last_flags)) TH_LOG("a read fault");
	p[6 * SM_PS + 5] = ~self->src[6 * SM_PS + 5];
	memcpy(buf, self->src + 6 * SM_PS, SM_PS);
	buf[5] = ~buf[5];
	EXPECT_EQ(0, memcmp(p + 6 * SM_PS, buf, SM_PS)) TH_LOG("the private copy: the filled page plus the write");
	server_stop(&s);
	EXPECT_SERVER_CLEAN(s);
	EXPECT_EQ(1, atomic_load(&s.count[6]));
	EXPECT_EQ(1, sm_fdinfo_num(self->hfd, "total")) TH_LOG("the write raised no request");
	ASSERT_EQ(SM_PS, pread(self->fd, buf, SM_PS, 6 * SM_PS));
	EXPECT_EQ(0, memcmp(buf, self->src + 6 * SM_PS, SM_PS)) TH_LOG("the file is unchanged");
	q = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(0, memcmp(q + 6 * SM_PS, self->src + 6 * SM_PS, SM_PS)) TH_LOG("a shared mapping sees the file's bytes");
	EXPECT_EQ(1, sm_fdinfo_num(self->fd, "pages"));
	munmap(q, self->size);
	munmap(p, self->size);
}


/* splice() out of a hole waits for the fill (one request, a syscall's), then moves the
 * exact bytes; nothing reaches the pipe before. (sendfile: read_and_sendfile_block_until_served.) */
TEST_F(lazy, splice_of_a_hole_waits_for_the_fill)
{
	struct sm_splicer sp = { .fd = self->fd, .off = 5 * SM_PS + 100, .len = 2 * SM_PS };
	struct pollfd pl;
	struct sealmem_msg m;
	char buf[2 * SM_PS];
	int pfd[2];

	ASSERT_EQ(0, pipe(pfd));
	ASSERT_GE(fcntl(pfd[1], F_SETPIPE_SZ, 4 * SM_PS), 4 * SM_PS);
	sp.pipe_w = pfd[1];
	ASSERT_EQ(0, pthread_create(&sp.th, NULL, sm_splice_run, &sp));
	ASSERT_EQ(0, sm_read_msg(self->hfd, &m, 10000)) TH_LOG("no request from splice");
	EXPECT_EQ(5 * SM_PS, m.offset);
	EXPECT_EQ(0, m.flags) TH_LOG("a syscall's request: neither FAULT nor WRITE");
	EXPECT_EQ(atomic_load(&sp.tid), (int)m.tid);
	ASSERT_EQ(0, wait_sleeping(atomic_load(&sp.tid))) TH_LOG("the splice does not wait");
	EXPECT_EQ(0, atomic_load(&sp.done));
	pl = (struct pollfd){ .fd = pfd[0], .events = POLLIN };
	EXPECT_EQ(0, poll(&pl, 1, 0)) TH_LOG("bytes reached the pipe before the fill");
	ASSERT_EQ(0, copy_page(self->hfd, 5 * SM_PS, self->src + 5 * SM_PS, 3 * SM_PS, 0, NULL));
	pthread_join(sp.th, NULL);
	EXPECT_EQ(2 * SM_PS, sp.ret) TH_LOG("splice: %s", strerror(sp.err));
	ASSERT_EQ(2 * SM_PS, read(pfd[0], buf, 2 * SM_PS));
	EXPECT_EQ(0, memcmp(buf, self->src + 5 * SM_PS + 100, 2 * SM_PS));
	EXPECT_EQ(1, sm_fdinfo_num(self->hfd, "total"));
	close(pfd[0]);
	close(pfd[1]);
}

/*
 * COPY from a source whose second half of the page faults (PROT_NONE): EFAULT, and the
 * page never becomes visible: no partial page, it stays a hole, its waiter keeps waiting
 * (it is not woken into a half-copied page). A COPY of two pages fills the first and stops
 * at the second (copy = one page). A later full COPY fills it.
 */
TEST_F(lazy, copy_from_a_source_faulting_mid_page_leaves_a_hole)
{
	char *bad = mmap(NULL, 3 * SM_PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), buf[SM_PS];
	struct toucher t = { .fd = self->fd, .off = 4 * SM_PS + 7, .use_read = 1 };
	struct sealmem_msg m;
	__s64 done = 0;
	pthread_t th;

	ASSERT_NE(MAP_FAILED, bad);
	memcpy(bad, self->src + 3 * SM_PS - SM_PS / 2, 2 * SM_PS + SM_PS / 2);	/* bad + SM_PS/2 holds page 3 */
	ASSERT_EQ(0, mprotect(bad + 2 * SM_PS, SM_PS, PROT_NONE));
	ASSERT_EQ(0, pthread_create(&th, NULL, touch_thread, &t));
	ASSERT_EQ(0, sm_read_msg(self->hfd, &m, 10000));
	EXPECT_EQ(4 * SM_PS, m.offset);
	ASSERT_EQ(0, wait_sleeping(atomic_load(&t.tid)));
	/* Page 4 from bad + 1.5 pages: its second half is PROT_NONE. */
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 4 * SM_PS, bad + SM_PS + SM_PS / 2, SM_PS, 0, &done));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-EFAULT, done);
	EXPECT_EQ(0, sm_fdinfo_num(self->fd, "pages")) TH_LOG("no page was stored");
	EXPECT_EQ(4 * SM_PS, lseek(self->fd, 4 * SM_PS, SEEK_HOLE));
	SM_EXPECT_ERRNO(ENXIO, lseek(self->fd, 0, SEEK_DATA));
	/* Pages 3 and 4 from bad + 0.5 pages: page 3 is whole, page 4 faults mid-way. */
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 3 * SM_PS, bad + SM_PS / 2, 2 * SM_PS, 0, &done));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(SM_PS, done);
	EXPECT_EQ(1, sm_fdinfo_num(self->fd, "pages"));
	EXPECT_EQ(3 * SM_PS, lseek(self->fd, 0, SEEK_DATA));
	EXPECT_EQ(4 * SM_PS, lseek(self->fd, 3 * SM_PS, SEEK_HOLE)) TH_LOG("page 4 is still a hole");
	ASSERT_EQ(SM_PS, pread(self->fd, buf, SM_PS, 3 * SM_PS));
	EXPECT_EQ(0, memcmp(buf, self->src + 3 * SM_PS, SM_PS));
	/* The waiter of page 4 still waits: nothing half-copied was ever shown to it. */
	sm_msleep(50);
	EXPECT_EQ(0, atomic_load(&t.done));
	EXPECT_EQ('S', sm_task_state(getpid(), atomic_load(&t.tid)));
	EXPECT_EQ(1, sm_fdinfo_num(self->fd, "pending"));
	/* A whole source: filled, the waiter gets the exact byte. */
	EXPECT_EQ(0, copy_page(self->hfd, 4 * SM_PS, self->src + 4 * SM_PS, SM_PS, 0, &done));
	EXPECT_EQ(SM_PS, done);
	pthread_join(th, NULL);
	EXPECT_EQ(self->src[4 * SM_PS + 7], t.got);
	ASSERT_EQ(SM_PS, pread(self->fd, buf, SM_PS, 4 * SM_PS));
	EXPECT_EQ(0, memcmp(buf, self->src + 4 * SM_PS, SM_PS));
	EXPECT_EQ(1, sm_fdinfo_num(self->hfd, "total"));
	munmap(bad, 3 * SM_PS);
}

/*
 * The debugfs counters `fills` (pages filled through the handler fd) and `waits` (times a
 * task waited for a page), exact deltas: three threads fault page 2 and one preads page 5
 * (4 waits, one request each page); COPY of 4 pages, ZEROPAGE of 2, a COPY stopped by
 * EEXIST after 2 pages, a SKIP_EXISTING COPY that fills 2 (the skipped pages are not fills).
 */
TEST_F(lazy, fills_and_waits_counters_count_exactly)
{
	enum { N = 4 };
	char *p = mmap(NULL, self->size, PROT_READ, MAP_SHARED, self->fd, 0);
	long long fills0 = sm_counter("fills"), waits0 = sm_counter("waits");
	struct toucher t[N];
	pthread_t th[N];
	__s64 done;
	int i;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_GE(fills0, 0);
	ASSERT_GE(waits0, 0);
	for (i = 0; i < N; i++) {
		t[i] = (struct toucher){ .p = p, .fd = self->fd, .off = i < 3 ? 2 * SM_PS + i : 5 * SM_PS, .use_read = i == 3 };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, touch_thread, &t[i]));
	}
	for (i = 0; i < N; i++) {
		for (int k = 0; k < 500 && !atomic_load(&t[i].tid); k++)
			sm_msleep(2);
		ASSERT_EQ(0, wait_sleeping(atomic_load(&t[i].tid))) TH_LOG("waiter %d never slept", i);
	}
	EXPECT_EQ(N, sm_counter("waits") - waits0);
	EXPECT_EQ(0, sm_counter("fills") - fills0);
	EXPECT_EQ(2, sm_fdinfo_num(self->hfd, "queued")) TH_LOG("one request per page");
	ASSERT_EQ(0, copy_page(self->hfd, 2 * SM_PS, self->src + 2 * SM_PS, 4 * SM_PS, 0, &done));
	for (i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(self->src[t[i].off], t[i].got) TH_LOG("waiter %d", i);
	}
	EXPECT_EQ(4, sm_counter("fills") - fills0);
	ASSERT_EQ(0, fill_op(self->hfd, SEALMEM_IOC_ZEROPAGE, 8 * SM_PS, 2 * SM_PS, 0, &done));
	EXPECT_EQ(6, sm_counter("fills") - fills0);
	errno = 0;
	EXPECT_EQ(-1, copy_page(self->hfd, 0, self->src, 4 * SM_PS, 0, &done));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(2 * SM_PS, done);
	EXPECT_EQ(8, sm_counter("fills") - fills0);
	ASSERT_EQ(0, copy_page(self->hfd, 0, self->src, 8 * SM_PS, SEALMEM_FILL_SKIP_EXISTING, &done));
	EXPECT_EQ(8 * SM_PS, done);
	EXPECT_EQ(10, sm_counter("fills") - fills0) TH_LOG("pages 6 and 7 filled, 0-5 skipped");
	EXPECT_EQ(N, sm_counter("waits") - waits0) TH_LOG("a filled page costs no wait");
	EXPECT_EQ(10, sm_fdinfo_num(self->fd, "pages"));
	munmap(p, self->size);
}

/*
 * The lazy sealed image: a producer makes a file, sizes it, enables fill, write-seals it and
 * hands read-only VIEW fds to three consumer processes that read it in different orders.
 * Every consumer sees byte-exact content and every page is requested at most once.
 */
TEST(lazy_sealed_image_end_to_end)
{
	enum { PAGES = 64, CONSUMERS = 3 };
	size_t size = PAGES * SM_PS;
	char *src = make_src(size, 42);
	int fd = sm_new(), hfd, view, i, status;
	pid_t pid[CONSUMERS];
	struct server s;

	ASSERT_NE(MAP_FAILED, src);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ioctl(fd, SEALMEM_IOC_SET_NAME, &(struct sealmem_name){ "image" }));
	ASSERT_EQ(0, sm_set_size(fd, size));
	hfd = fill_enable(fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(hfd, 0);
	ASSERT_EQ(0, sm_add_seals(fd, SEALMEM_SEAL_WRITE | SEALMEM_SEAL_SHRINK |
				      SEALMEM_SEAL_GROW | SEALMEM_SEAL_SEAL));
	view = sm_view(fd, 0);
	ASSERT_GE(view, 0);
	close(fd);
	server_start(&s, hfd, src);
	for (i = 0; i < CONSUMERS; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0) {
			char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, view, 0);
			int k, j, bad = 0;

			if (p == MAP_FAILED)
				_exit(100);
			for (k = 0; k < PAGES; k++) {
				/* 0: forward, 1: backward, 2: strided */
				j = i == 0 ? k : i == 1 ? PAGES - 1 - k : (k * 7) % PAGES;
				bad |= memcmp(p + j * SM_PS, src + j * SM_PS, SM_PS) != 0;
			}
			_exit(bad);
		}
	}
	for (i = 0; i < CONSUMERS; i++) {
		ASSERT_EQ(pid[i], waitpid(pid[i], &status, 0));
		EXPECT_EQ(SM_EXITED(0), sm_ended(status)) TH_LOG("consumer %d saw wrong bytes", i);
	}
	server_stop(&s);
	for (i = 0; i < PAGES; i++)
		EXPECT_GE(1, atomic_load(&s.count[i])) TH_LOG("page %d requested %d times", i, atomic_load(&s.count[i]));
	EXPECT_EQ(PAGES, sm_fdinfo_num(view, "pages"));
	/* Nobody can change a byte now. */
	EXPECT_EQ(-1, copy_page(hfd, 0, src + SM_PS, SM_PS, 0, NULL));
	EXPECT_EQ(EEXIST, errno);
	close(view);
	close(hfd);
	munmap(src, size);
}

TEST_HARNESS_MAIN
