// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem bounds tests: resources a task can make the module hold for it are bounded.
 * Each test is named after the rule it checks.
 *
 * - requests_nobody_waits_for_are_bounded
 * - interrupted_waits_leave_bounded_requests
 *
 * A fill request that no task waits for (raised by an O_NONBLOCK read, which returns EAGAIN
 * after raising it, by a fault that may not sleep, or left behind by a wait a signal
 * interrupted) is an "orphan". A file holds at most 4096 of them (docs/api.md, "Known
 * limitations"; MAX_ORPHANS in rust/lazy.rs): past that such an access raises no request
 * (it still fails with EAGAIN), and an interrupted wait that would leave one more takes its
 * request back. Requests that tasks wait for are not capped (the waiting tasks bound them).
 *
 * Nothing here stands in a sleep for "the other task is waiting": the tests wait until the
 * request shows in fdinfo and the task's state in /proc is S. Every wait has a deadline; on
 * a deadline the test fails and releases what is stuck (FILL_END, then SIGUSR1).
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <time.h>

#include "kselftest_harness.h"
#include "sealmem_lib.h"

/* The cap on requests no task waits for, per file (docs/api.md, "Known limitations"). */
#define CAP 4096
#define FILE_SIZE (64UL << 20)
#define NPAGES (FILE_SIZE / SM_PS)

/* ---- helpers (copied here rather than added to the shared header) ------------------- */

/* Waits up to timeout_s until fdinfo field `key` of `fd` is `want`; returns the last value. */
static long long wait_fdinfo(int fd, const char *key, long long want, double timeout_s)
{
	double t0 = sm_now();
	long long v;

	for (;;) {
		v = sm_fdinfo_num(fd, key);
		if (v == want || sm_now() - t0 >= timeout_s)
			return v;
		sm_msleep(5);
	}
}

static int copy_page(int hfd, __u64 off, const void *src)
{
	struct sealmem_copy c = { .offset = off, .src = (__u64)(uintptr_t)src, .len = SM_PS };

	return ioctl(hfd, SEALMEM_IOC_COPY, &c) == 0 && c.copy == (__s64)SM_PS ? 0 : -1;
}

/*
 * Reads every message queued on the non-blocking handler fd `hfd` until EAGAIN (a deadline
 * of 60 s); records each page in seen[] (counting one seen twice in *dups) and returns the
 * number of messages, or -1 on an error other than EAGAIN (errno kept) or a bad message.
 */
static long drain(int hfd, unsigned char *seen, long *dups, __u64 *bad_off)
{
	struct sealmem_msg m[32];
	double t0 = sm_now();
	long total = 0;

	for (;;) {
		ssize_t n = read(hfd, m, sizeof(m));

		if (n < 0)
			return errno == EAGAIN ? total : -1;
		if (n == 0 || n % sizeof(m[0])) {
			errno = EPROTO;
			return -1;
		}
		for (size_t i = 0; i < n / sizeof(m[0]); i++) {
			__u64 off = m[i].offset;

			if (off % SM_PS || off >= FILE_SIZE || m[i].flags != 0) {
				*bad_off = off;
				errno = ERANGE;
				return -1;
			}
			if (seen[off / SM_PS])
				(*dups)++;
			seen[off / SM_PS] = 1;
			total++;
		}
		if (sm_now() - t0 > 60) {
			errno = ETIMEDOUT;
			return -1;
		}
	}
}

/* A thread doing one blocking pread of one byte. */
struct reader {
	pthread_t th;
	int fd;
	off_t off;
	atomic_int tid;
	atomic_int done;
	ssize_t ret;
	int err;
	char byte;
};

static void *reader_thread(void *arg)
{
	struct reader *r = arg;

	atomic_store(&r->tid, (int)syscall(SYS_gettid));
	r->ret = pread(r->fd, &r->byte, 1, r->off);
	r->err = errno;
	atomic_store(&r->done, 1);
	return NULL;
}

static int reader_start(struct reader *r, int fd, off_t off)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->off = off;
	r->byte = 0x5a;
	return pthread_create(&r->th, NULL, reader_thread, r);
}

/* Waits up to timeout_s for the reader's pread to return; 1 if it did. */
static int reader_wait(struct reader *r, double timeout_s)
{
	double t0 = sm_now();

	while (!atomic_load(&r->done)) {
		if (sm_now() - t0 >= timeout_s)
			return 0;
		sm_msleep(2);
	}
	return 1;
}

/* Waits up to timeout_s until the reader's thread sleeps ('S'); 1 if it does. */
static int reader_asleep(struct reader *r, double timeout_s)
{
	double t0 = sm_now();

	do {
		int tid = atomic_load(&r->tid);

		if (tid && sm_task_state(getpid(), tid) == 'S')
			return 1;
		sm_msleep(2);
	} while (sm_now() - t0 < timeout_s);
	return 0;
}

static atomic_int sigusr1_seen;

static void on_sigusr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&sigusr1_seen, 1);
}

/* SIGUSR1 interrupts a blocked call: a handler without SA_RESTART. */
static int install_sigusr1(void)
{
	struct sigaction sa = { .sa_handler = on_sigusr1 };

	sigemptyset(&sa.sa_mask);
	return sigaction(SIGUSR1, &sa, NULL);
}

/*
 * Ends a reader: if its pread has not returned, FILL_END on hfd (every waiter continues),
 * then SIGUSR1. Joins the thread if it returned (a stuck one dies with the test process).
 * Returns 1 if it had returned without help.
 */
static int reader_finish(struct reader *r, int hfd)
{
	int clean = reader_wait(r, 0);

	if (!clean) {
		ioctl(hfd, SEALMEM_IOC_FILL_END);
		for (int i = 0; i < 20 && !reader_wait(r, 0.5); i++)
			pthread_kill(r->th, SIGUSR1);
	}
	if (atomic_load(&r->done))
		pthread_join(r->th, NULL);
	return clean;
}

/* ---- fixture: a 64 MiB lazy file, an idle non-blocking handler, an O_NONBLOCK VIEW ------ */

FIXTURE(bounds)
{
	int fd;		/* the file (read-write, blocking) */
	int hfd;	/* its handler fd (SEALMEM_FD_NONBLOCK), idle unless a test reads it */
	int view_nb;	/* a VIEW fd made O_NONBLOCK with F_SETFL */
	int view;	/* another VIEW fd, blocking */
	unsigned char *seen;	/* pages the handler was told about */
	char *src;	/* one page of content for COPY */
};

FIXTURE_SETUP(bounds)
{
	int fl;

	self->fd = self->hfd = self->view_nb = self->view = -1;
	self->seen = calloc(NPAGES, 1);
	ASSERT_NE(NULL, self->seen);
	self->src = malloc(SM_PS);
	ASSERT_NE(NULL, self->src);
	sm_pattern(self->src, SM_PS, 7, 0);
	self->fd = sm_new();
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", SM_DEV, strerror(errno));
	ASSERT_EQ(0, sm_set_size(self->fd, FILE_SIZE));
	self->hfd = ioctl(self->fd, SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC | SEALMEM_FD_NONBLOCK);
	ASSERT_LE(0, self->hfd) TH_LOG("FILL_ENABLE: %s", strerror(errno));
	self->view_nb = sm_view(self->fd, SEALMEM_FD_CLOEXEC);
	ASSERT_LE(0, self->view_nb);
	fl = fcntl(self->view_nb, F_GETFL);
	ASSERT_LE(0, fl);
	ASSERT_EQ(0, fcntl(self->view_nb, F_SETFL, fl | O_NONBLOCK));
	ASSERT_NE(0, fcntl(self->view_nb, F_GETFL) & O_NONBLOCK);
	self->view = sm_view(self->fd, SEALMEM_FD_CLOEXEC);
	ASSERT_LE(0, self->view);
	ASSERT_EQ(0, fcntl(self->view, F_GETFL) & O_NONBLOCK);
	ASSERT_EQ(0, install_sigusr1());
}

FIXTURE_TEARDOWN(bounds)
{
	/* Whatever a failed test left waiting continues (and nothing new can wait). */
	if (self->hfd >= 0) {
		ioctl(self->hfd, SEALMEM_IOC_FILL_END);
		close(self->hfd);
	}
	if (self->view >= 0)
		close(self->view);
	if (self->view_nb >= 0)
		close(self->view_nb);
	if (self->fd >= 0)
		close(self->fd);
	free(self->seen);
	free(self->src);
	signal(SIGUSR1, SIG_DFL);
}

/*
 * O_NONBLOCK preads of pages [first, first + n) through the VIEW fd: counts those that
 * did not fail with EAGAIN (the first one's page and result in *bad_page / *bad_ret).
 */
static long nonblock_preads(int fd, unsigned long first, unsigned long n, long *bad_page, int *bad_err)
{
	long bad = 0;
	char c;

	for (unsigned long p = first; p < first + n; p++) {
		ssize_t r;

		errno = 0;
		r = pread(fd, &c, 1, p * SM_PS + (p % 7));
		if (r == -1 && errno == EAGAIN)
			continue;
		if (!bad++) {
			*bad_page = (long)p;
			*bad_err = r == -1 ? errno : -1000 - (int)r;
		}
	}
	return bad;
}

/* A page the handler has not been told about (and which is a hole), searching down from the end. */
static unsigned long fresh_page(const unsigned char *seen, unsigned long below)
{
	while (below-- > 0)
		if (!seen[below])
			return below;
	return ~0UL;
}

TEST_F_TIMEOUT(bounds, requests_nobody_waits_for_are_bounded, 300)
{
	long bad, bad_page = -1, dups = 0, n;
	unsigned long first_seen = ~0UL, p1, p2, pb;
	__u64 bad_off = 0;
	struct sealmem_msg m;
	struct reader r;
	int bad_err = 0;
	char c = 0;

	/* 16384 O_NONBLOCK reads of holes: every one fails with EAGAIN... */
	bad = nonblock_preads(self->view_nb, 0, NPAGES, &bad_page, &bad_err);
	EXPECT_EQ(0, bad) TH_LOG("%ld O_NONBLOCK preads of a hole did not fail with EAGAIN; the first: page %ld, %s",
				 bad, bad_page, bad_err <= -1000 ? "returned data" : strerror(bad_err));

	/* ...but no more than CAP of them leave a request behind. */
	n = sm_fdinfo_num(self->fd, "pending");
	EXPECT_LE(n, CAP) TH_LOG("file fdinfo pending: %lld after %lu O_NONBLOCK preads (the cap is %d)",
				 (long long)n, NPAGES, CAP);
	EXPECT_GE(n, CAP) TH_LOG("file fdinfo pending: %lld after %lu O_NONBLOCK preads: fewer than the cap %d",
				 (long long)n, NPAGES, CAP);
	EXPECT_EQ(CAP, sm_fdinfo_num(self->hfd, "queued"));
	EXPECT_EQ(CAP, sm_fdinfo_num(self->hfd, "pending"));
	EXPECT_EQ(CAP, sm_fdinfo_num(self->hfd, "total"));

	/* The handler is told about exactly CAP requests, each for a distinct page. */
	n = drain(self->hfd, self->seen, &dups, &bad_off);
	ASSERT_LE(0, n) TH_LOG("reading the handler fd: %s (message offset %#llx)", strerror(errno),
			       (unsigned long long)bad_off);
	EXPECT_EQ(CAP, n) TH_LOG("the handler read %ld messages", n);
	EXPECT_EQ(0, dups) TH_LOG("%ld messages repeated a page", dups);
	EXPECT_EQ(0, sm_fdinfo_num(self->hfd, "queued"));
	EXPECT_EQ(CAP, sm_fdinfo_num(self->hfd, "pending"));
	EXPECT_EQ(CAP, sm_fdinfo_num(self->fd, "pending"));
	for (unsigned long p = 0; p < NPAGES && first_seen == ~0UL; p++)
		if (self->seen[p])
			first_seen = p;
	ASSERT_NE(~0UL, first_seen);

	/* COPY one delivered page: its request is resolved, one fewer pending. */
	ASSERT_EQ(0, copy_page(self->hfd, first_seen * SM_PS, self->src));
	EXPECT_EQ(CAP - 1, sm_fdinfo_num(self->fd, "pending"));
	EXPECT_EQ(CAP - 1, sm_fdinfo_num(self->hfd, "pending"));
	/* The filled page reads at once, even O_NONBLOCK. */
	EXPECT_EQ(1, pread(self->view_nb, &c, 1, first_seen * SM_PS + 9));
	EXPECT_EQ(self->src[9], c);

	/* Below the cap again: an O_NONBLOCK pread of a new page raises one request... */
	p1 = fresh_page(self->seen, NPAGES);
	ASSERT_NE(~0UL, p1);
	errno = 0;
	EXPECT_EQ(-1, pread(self->view_nb, &c, 1, p1 * SM_PS));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(CAP, sm_fdinfo_num(self->fd, "pending"));
	EXPECT_EQ(CAP + 1, sm_fdinfo_num(self->hfd, "total"));
	ASSERT_EQ(0, sm_read_msg(self->hfd, &m, 5000)) TH_LOG("no message for the new O_NONBLOCK request");
	EXPECT_EQ(p1 * SM_PS, m.offset);
	self->seen[m.offset / SM_PS] = 1;

	/* ...and at the cap, the next one raises none (it still fails with EAGAIN). */
	p2 = fresh_page(self->seen, p1);
	ASSERT_NE(~0UL, p2);
	errno = 0;
	EXPECT_EQ(-1, pread(self->view_nb, &c, 1, p2 * SM_PS));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(CAP, sm_fdinfo_num(self->fd, "pending"));
	EXPECT_EQ(CAP + 1, sm_fdinfo_num(self->hfd, "total"));
	errno = 0;
	EXPECT_EQ(-1, read(self->hfd, &m, sizeof(m))) TH_LOG("unexpected message for page %llu",
							     (unsigned long long)m.offset / SM_PS);
	EXPECT_EQ(EAGAIN, errno);

	/* A reader that waits is not capped: its request is raised past the cap. */
	pb = fresh_page(self->seen, p2);
	ASSERT_NE(~0UL, pb);
	ASSERT_EQ(0, reader_start(&r, self->view, pb * SM_PS + 17));
	if (sm_read_msg(self->hfd, &m, 30000)) {
		reader_finish(&r, self->hfd);
		ASSERT_TRUE(0) TH_LOG("no request from a blocking pread past the cap in 30 s (file pending %lld, reader %s)",
				      sm_fdinfo_num(self->fd, "pending"), atomic_load(&r.done) ? "returned" : "waiting");
	}
	EXPECT_EQ(pb * SM_PS, m.offset);
	EXPECT_EQ(0, m.flags);
	EXPECT_EQ(atomic_load(&r.tid), (int)m.tid);
	EXPECT_EQ(CAP + 1, sm_fdinfo_num(self->fd, "pending"));
	EXPECT_EQ(CAP + 1, sm_fdinfo_num(self->hfd, "pending"));
	EXPECT_EQ(CAP + 2, sm_fdinfo_num(self->hfd, "total"));
	EXPECT_EQ(0, atomic_load(&r.done)) TH_LOG("the blocking pread returned %zd (%s) before the fill",
						   r.ret, strerror(r.err));

	/* Filled, the reader gets the bytes. */
	EXPECT_EQ(0, copy_page(self->hfd, pb * SM_PS, self->src));
	EXPECT_EQ(1, reader_wait(&r, 30)) TH_LOG("the reader did not return within 30 s of the fill");
	EXPECT_EQ(1, reader_finish(&r, self->hfd));
	EXPECT_EQ(1, r.ret) TH_LOG("pread: %zd (%s)", r.ret, strerror(r.err));
	EXPECT_EQ(self->src[17], r.byte);
	EXPECT_EQ(CAP, sm_fdinfo_num(self->fd, "pending"));
}

/*
 * One blocking pread of `page` through `fd`, interrupted by SIGUSR1 once its request shows
 * (file pending == want_pending) and the thread sleeps. Returns 0 if it failed with EINTR,
 * else a description in why[].
 */
static int interrupted_pread(int fd, int hfd, int file_fd, unsigned long page, long long want_pending,
			     char *why, size_t len)
{
	int sigs = atomic_load(&sigusr1_seen), ok = 0;
	long long pending;
	struct reader r;

	if (reader_start(&r, fd, page * SM_PS + 3)) {
		snprintf(why, len, "pthread_create failed");
		return -1;
	}
	pending = wait_fdinfo(file_fd, "pending", want_pending, 30);
	if (pending != want_pending)
		snprintf(why, len, "page %lu: pending %lld, not %lld, while the pread should wait (%s)",
			 page, pending, want_pending, atomic_load(&r.done) ? "it returned" : "still in pread");
	else if (!reader_asleep(&r, 30))
		snprintf(why, len, "page %lu: the reader did not sleep within 30 s (%s)", page,
			 atomic_load(&r.done) ? "it returned" : "state never S");
	else if (pthread_kill(r.th, SIGUSR1))
		snprintf(why, len, "pthread_kill failed");
	else if (!reader_wait(&r, 30))
		snprintf(why, len, "page %lu: the pread did not return within 30 s of SIGUSR1", page);
	else if (r.ret != -1 || r.err != EINTR)
		snprintf(why, len, "page %lu: the interrupted pread returned %zd (%s), not -1/EINTR", page,
			 r.ret, r.ret == -1 ? strerror(r.err) : "data");
	else if (atomic_load(&sigusr1_seen) != sigs + 1)
		snprintf(why, len, "page %lu: the signal handler ran %d times", page,
			 atomic_load(&sigusr1_seen) - sigs);
	else
		ok = 1;
	reader_finish(&r, hfd);
	return ok ? 0 : -1;
}

TEST_F_TIMEOUT(bounds, interrupted_waits_leave_bounded_requests, 300)
{
	const unsigned long first_int = 8192;	/* interrupted pages: 8192 onwards */
	const int nint = 50;
	unsigned long odd;
	long bad, bad_page = -1, dups = 0, n;
	__u64 bad_off = 0;
	struct sealmem_msg m;
	char why[256];
	int bad_err = 0;

	/* The cap, reached by O_NONBLOCK preads of pages 0..CAP-1. */
	bad = nonblock_preads(self->view_nb, 0, CAP, &bad_page, &bad_err);
	EXPECT_EQ(0, bad) TH_LOG("%ld O_NONBLOCK preads of a hole did not fail with EAGAIN; the first: page %ld, %s",
				 bad, bad_page, bad_err <= -1000 ? "returned data" : strerror(bad_err));
	ASSERT_EQ(CAP, sm_fdinfo_num(self->fd, "pending"));

	/*
	 * Blocking preads of new pages, each interrupted while it waits: its request is
	 * raised (CAP + 1 pending while it waits), then taken back, since leaving it would
	 * make one orphan more than the cap.
	 */
	for (int i = 0; i < nint; i++) {
		unsigned long page = first_int + i;

		ASSERT_EQ(0, interrupted_pread(self->view, self->hfd, self->fd, page, CAP + 1, why, sizeof(why)))
			TH_LOG("interrupted wait %d: %s", i, why);
		n = sm_fdinfo_num(self->fd, "pending");
		ASSERT_EQ(CAP, n) TH_LOG("after interrupted wait %d (page %lu): file pending %ld, not %d", i, page, n, CAP);
		ASSERT_EQ(CAP, sm_fdinfo_num(self->hfd, "queued"));
	}
	EXPECT_EQ(CAP + nint, sm_fdinfo_num(self->hfd, "total"));

	/* The handler is told about the CAP O_NONBLOCK pages only: no interrupted page. */
	n = drain(self->hfd, self->seen, &dups, &bad_off);
	ASSERT_LE(0, n) TH_LOG("reading the handler fd: %s (message offset %#llx)", strerror(errno),
			       (unsigned long long)bad_off);
	EXPECT_EQ(CAP, n);
	EXPECT_EQ(0, dups);
	for (odd = 0; odd < NPAGES; odd++)
		if (self->seen[odd] != (odd < CAP))
			break;
	ASSERT_EQ(NPAGES, odd) TH_LOG("page %lu was%s delivered", odd, self->seen[odd] ? "" : " not");

	/*
	 * One below the cap, an interrupted wait leaves its request (an orphan, CAP again);
	 * the next one, at the cap, takes its own back.
	 */
	ASSERT_EQ(0, copy_page(self->hfd, 0, self->src));
	ASSERT_EQ(CAP - 1, sm_fdinfo_num(self->fd, "pending"));
	ASSERT_EQ(0, interrupted_pread(self->view, self->hfd, self->fd, first_int + nint, CAP, why, sizeof(why)))
		TH_LOG("interrupted wait below the cap: %s", why);
	EXPECT_EQ(CAP, sm_fdinfo_num(self->fd, "pending")) TH_LOG("the interrupted wait below the cap left no request");
	ASSERT_EQ(0, sm_read_msg(self->hfd, &m, 5000)) TH_LOG("no message for the request the interrupted wait left");
	EXPECT_EQ((first_int + nint) * SM_PS, m.offset);
	ASSERT_EQ(0, interrupted_pread(self->view, self->hfd, self->fd, first_int + nint + 1, CAP + 1, why, sizeof(why)))
		TH_LOG("interrupted wait at the cap: %s", why);
	EXPECT_EQ(CAP, sm_fdinfo_num(self->fd, "pending"));
	EXPECT_EQ(0, sm_fdinfo_num(self->hfd, "queued"));
	errno = 0;
	EXPECT_EQ(-1, read(self->hfd, &m, sizeof(m))) TH_LOG("unexpected message for page %llu",
							     (unsigned long long)m.offset / SM_PS);
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(CAP + nint + 2, sm_fdinfo_num(self->hfd, "total"));
}

TEST_HARNESS_MAIN
