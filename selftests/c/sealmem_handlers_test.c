// SPDX-License-Identifier: GPL-2.0
/*
 * The handler fd under many readers, and the requester's thread id across pid namespaces
 * (SPEC section 5: "each pending request is delivered to exactly one reader", "a blocking
 * read is interruptible (EINTR)", "Many handler threads may read requests and fill
 * concurrently", "requesting thread id as seen from the handler's pid namespace, 0 if not
 * visible").
 *
 * - many_readers_each_request_once: READERS threads read one handler fd while FAULTERS
 *   threads fault distinct and shared pages. Variant `blocking`: half of the readers block in
 *   read(), half wait in epoll_wait() and then read(); one blocking reader is interrupted by a
 *   signal (handler without SA_RESTART): EINTR, and it reads on. Variant `nonblocking`: the
 *   fd is O_NONBLOCK; half poll(), half epoll_wait(), and a reader that loses the race reads
 *   EAGAIN. O_NONBLOCK belongs to the open file description and a handler has exactly one
 *   (FILL_ENABLE makes it; it cannot be reopened), and its reads do not take RWF_NOWAIT, so
 *   blocking and non-blocking reads of one handler are two variants, not one mix.
 * - requester_tid_from_a_child_pid_namespace / handler_in_a_child_pid_namespace  [root]
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "sealmem_lib.h"

enum {
	READERS = 6,
	FAULTERS = 8,
	OWN = 8,			/* pages only faulter i touches: i * OWN ... */
	SHARED = 8,			/* pages every faulter touches, after the own pages */
	PAGES = FAULTERS * OWN + SHARED,
	LATE = PAGES,			/* one more page, faulted after the EINTR */
	SIZE_PAGES = PAGES + 1,
};

struct run {
	int fd, hfd, nonblock;
	char *map;
	const char *src;
	atomic_int count[SIZE_PAGES];	/* requests read, per page */
	atomic_int got[READERS];	/* requests read, per reader */
	atomic_int eintr[READERS], eagain[READERS];
	atomic_int tid[READERS];
	atomic_int holding;		/* readers holding their first request */
	atomic_int barrier_timeout;
	atomic_int failed, err;		/* a read or a COPY that failed, and its errno */
	atomic_int readers_done;
	atomic_int faulters_done, bad_bytes;
};

struct reader {
	struct run *r;
	int me;
	pthread_t th;
};

static void on_usr1(int sig)
{
	(void)sig;
}

static void *reader_run(void *arg)
{
	struct reader *rd = arg;
	struct run *r = rd->r;
	int me = rd->me, epoll = me >= READERS / 2, ep = -1;

	atomic_store(&r->tid[me], (int)syscall(SYS_gettid));
	if (epoll) {
		struct epoll_event ev = { .events = EPOLLIN };

		ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, r->hfd, &ev)) {
			atomic_store(&r->err, errno);
			atomic_fetch_add(&r->failed, 1);
			goto out;
		}
	}
	for (;;) {
		struct sealmem_msg m;
		ssize_t n;
		__u64 page;

		if (epoll) {
			struct epoll_event ev;

			if (epoll_wait(ep, &ev, 1, 1000) == 0)
				continue;
		} else if (r->nonblock) {
			struct pollfd p = { .fd = r->hfd, .events = POLLIN };

			if (poll(&p, 1, 1000) == 0)
				continue;
		}
		/* One message per read, so that the requests spread over the readers. */
		n = read(r->hfd, &m, sizeof(m));
		if (n == 0)
			break;		/* FILL_END: this handler is done */
		if (n < 0) {
			if (errno == EINTR) {
				atomic_fetch_add(&r->eintr[me], 1);
				continue;
			}
			if (errno == EAGAIN && r->nonblock) {
				atomic_fetch_add(&r->eagain[me], 1);
				continue;
			}
			atomic_store(&r->err, errno);
			atomic_fetch_add(&r->failed, 1);
			break;
		}
		page = m.offset / SM_PS;
		if (n != sizeof(m) || m.offset % SM_PS || page >= SIZE_PAGES) {
			atomic_store(&r->err, EPROTO);
			atomic_fetch_add(&r->failed, 1);
			break;
		}
		atomic_fetch_add(&r->count[page], 1);
		/*
		 * Starvation: the first request each reader gets, it holds until every reader
		 * holds one. The faulters keep more distinct requests outstanding than there are
		 * readers (each first faults a page of its own), so this ends only if requests
		 * queued while other readers are busy reach every sleeping reader.
		 */
		if (atomic_fetch_add(&r->got[me], 1) == 0) {
			double t0 = sm_now();

			atomic_fetch_add(&r->holding, 1);
			while (atomic_load(&r->holding) < READERS && !atomic_load(&r->barrier_timeout)) {
				if (sm_now() - t0 > 30)
					atomic_store(&r->barrier_timeout, 1);
				sm_msleep(1);
			}
		}
		if (sm_copy(r->hfd, m.offset, r->src + m.offset, SM_PS, NULL)) {
			/* EEXIST here: a page requested, and filled, twice. */
			atomic_store(&r->err, errno);
			atomic_fetch_add(&r->failed, 1);
		}
	}
out:
	if (ep >= 0)
		close(ep);
	atomic_fetch_add(&r->readers_done, 1);
	return NULL;
}

struct faulter {
	struct run *r;
	int me;
	pthread_t th;
};

/* Reads a whole page of the mapping; counts it if its bytes are not the source's. */
static void fault_page(struct run *r, int page)
{
	const volatile char *p = r->map + (size_t)page * SM_PS;

	(void)p[SM_PS / 2];
	if (memcmp(r->map + (size_t)page * SM_PS, r->src + (size_t)page * SM_PS, SM_PS))
		atomic_fetch_add(&r->bad_bytes, 1);
}

/* Own page 0 first (a distinct request per faulter), then own and shared pages in turn, the
 * shared ones in an order rotated per faulter, so several faulters wait for one page. */
static void *faulter_run(void *arg)
{
	struct faulter *f = arg;
	int k;

	for (k = 0; k < OWN; k++) {
		fault_page(f->r, f->me * OWN + k);
		fault_page(f->r, FAULTERS * OWN + (f->me + k) % SHARED);
	}
	atomic_fetch_add(&f->r->faulters_done, 1);
	return NULL;
}

static void *late_run(void *arg)
{
	struct run *r = arg;

	fault_page(r, LATE);
	atomic_fetch_add(&r->faulters_done, 1);
	return NULL;
}

/* Whether thread `tid` of this process sleeps in system call `nr` (/proc/.../syscall). */
static int sleeps_in_syscall(int tid, long nr)
{
	char path[64], buf[128];
	ssize_t n;
	int fd;

	if (sm_task_state(getpid(), tid) != 'S')
		return 0;
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10) == nr;
}

/* Waits up to `secs` until *v >= want; returns whether it got there. */
static int wait_count(atomic_int *v, int want, double secs)
{
	double t0 = sm_now();

	while (atomic_load(v) < want) {
		if (sm_now() - t0 > secs)
			return 0;
		sm_msleep(2);
	}
	return 1;
}

FIXTURE(handlers) {
	struct run *r;
	char *src;
};

FIXTURE_VARIANT(handlers) {
	int nonblock;
};

FIXTURE_VARIANT_ADD(handlers, blocking) {
	.nonblock = 0,
};

FIXTURE_VARIANT_ADD(handlers, nonblocking) {
	.nonblock = 1,
};

FIXTURE_SETUP(handlers)
{
	self->r = calloc(1, sizeof(*self->r));
	ASSERT_NE(NULL, self->r);
	self->src = sm_make_src(SIZE_PAGES * SM_PS, 17);
	ASSERT_NE(MAP_FAILED, self->src);
}

FIXTURE_TEARDOWN(handlers)
{
	munmap(self->src, SIZE_PAGES * SM_PS);
	free(self->r);
}

TEST_F_TIMEOUT(handlers, many_readers_each_request_once, 300)
{
	struct sigaction sa = { .sa_handler = on_usr1 };	/* no SA_RESTART: read ends with EINTR */
	struct reader rd[READERS];
	struct faulter fa[FAULTERS];
	struct run *r = self->r;
	pthread_t late;
	int i, total = 0, all_done;

	r->src = self->src;
	r->nonblock = variant->nonblock;
	r->fd = sm_new();
	ASSERT_GE(r->fd, 0);
	ASSERT_EQ(0, sm_set_size(r->fd, SIZE_PAGES * SM_PS));
	r->hfd = sm_fill_enable(r->fd, SEALMEM_FD_CLOEXEC | (r->nonblock ? SEALMEM_FD_NONBLOCK : 0));
	ASSERT_GE(r->hfd, 0) TH_LOG("FILL_ENABLE: %s", strerror(errno));
	r->map = mmap(NULL, SIZE_PAGES * SM_PS, PROT_READ, MAP_SHARED, r->fd, 0);
	ASSERT_NE(MAP_FAILED, r->map);
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));

	for (i = 0; i < READERS; i++) {
		rd[i] = (struct reader){ .r = r, .me = i };
		ASSERT_EQ(0, pthread_create(&rd[i].th, NULL, reader_run, &rd[i]));
	}
	/* Every reader is asleep (in read, poll or epoll_wait) before the first request. */
	for (i = 0; i < READERS; i++) {
		ASSERT_TRUE(wait_count(&r->tid[i], 1, 10));
		EXPECT_EQ('S', sm_wait_state(getpid(), atomic_load(&r->tid[i]), "S", 10)) TH_LOG("reader %d", i);
	}
	for (i = 0; i < FAULTERS; i++) {
		fa[i] = (struct faulter){ .r = r, .me = i };
		ASSERT_EQ(0, pthread_create(&fa[i].th, NULL, faulter_run, &fa[i]));
	}
	all_done = wait_count(&r->faulters_done, FAULTERS, 120);
	EXPECT_TRUE(all_done) TH_LOG("faulters still waiting after 120 s: %d of %d done", atomic_load(&r->faulters_done), FAULTERS);
	if (all_done && !r->nonblock) {
		/* A blocking reader asleep in read() (SYS_read), signalled: EINTR, and it reads on. */
		int tid = atomic_load(&r->tid[0]);
		double t0 = sm_now();

		while (!sleeps_in_syscall(tid, SYS_read) && sm_now() - t0 < 10)
			sm_msleep(5);
		ASSERT_TRUE(sleeps_in_syscall(tid, SYS_read)) TH_LOG("reader 0 never slept in read()");
		ASSERT_EQ(0, pthread_kill(rd[0].th, SIGUSR1));
		EXPECT_TRUE(wait_count(&r->eintr[0], 1, 10)) TH_LOG("the signal did not end reader 0's read with EINTR");
	}
	/* One more request after that: still read once and filled. */
	if (all_done) {
		ASSERT_EQ(0, pthread_create(&late, NULL, late_run, r));
		all_done = wait_count(&r->faulters_done, FAULTERS + 1, 60);
		EXPECT_TRUE(all_done) TH_LOG("the late fault was never served");
	}
	EXPECT_EQ(SIZE_PAGES, sm_fdinfo_num(r->hfd, "total"));
	/* FILL_END: every reader's read returns 0, whatever it was blocked in. */
	ASSERT_EQ(0, ioctl(r->hfd, SEALMEM_IOC_FILL_END));
	EXPECT_TRUE(wait_count(&r->readers_done, READERS, 30)) TH_LOG("readers still running 30 s after FILL_END: %d of %d ended",
								       atomic_load(&r->readers_done), READERS);
	if (atomic_load(&r->readers_done) == READERS) {
		for (i = 0; i < READERS; i++)
			pthread_join(rd[i].th, NULL);
	}
	if (atomic_load(&r->faulters_done) >= FAULTERS) {
		for (i = 0; i < FAULTERS; i++)
			pthread_join(fa[i].th, NULL);
	}
	if (all_done)
		pthread_join(late, NULL);

	EXPECT_EQ(0, atomic_load(&r->failed)) TH_LOG("a reader's read or COPY failed: %s", strerror(atomic_load(&r->err)));
	EXPECT_EQ(0, atomic_load(&r->barrier_timeout)) TH_LOG("a reader never got a request while the others held theirs");
	EXPECT_EQ(0, atomic_load(&r->bad_bytes)) TH_LOG("a faulter saw bytes that are not the source's");
	for (i = 0; i < SIZE_PAGES; i++)
		EXPECT_EQ(1, atomic_load(&r->count[i])) TH_LOG("page %d was read as a request %d times", i, atomic_load(&r->count[i]));
	for (i = 0; i < READERS; i++) {
		total += atomic_load(&r->got[i]);
		EXPECT_LE(1, atomic_load(&r->got[i])) TH_LOG("reader %d got no request", i);
		ksft_print_msg("reader %d (%s): %d requests, %d EINTR, %d EAGAIN\n", i,
			       i >= READERS / 2 ? "epoll" : r->nonblock ? "poll" : "blocking read",
			       atomic_load(&r->got[i]), atomic_load(&r->eintr[i]), atomic_load(&r->eagain[i]));
	}
	EXPECT_EQ(SIZE_PAGES, total);
	if (!r->nonblock)
		EXPECT_EQ(1, atomic_load(&r->eintr[0]));
	EXPECT_EQ(SIZE_PAGES, sm_fdinfo_num(r->fd, "pages")) TH_LOG("every page filled once");
	signal(SIGUSR1, SIG_DFL);
	munmap(r->map, SIZE_PAGES * SM_PS);
	close(r->hfd);
	close(r->fd);
}

/* ---- the requester's tid across pid namespaces ----------------------------------------- */

/* Waits up to `secs` for child `pid`; its sm_ended() value, or -1 (then it is killed). */
static int reap(pid_t pid, double secs)
{
	double t0 = sm_now();
	int status;

	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			return sm_ended(status);
		if (w < 0 || sm_now() - t0 > secs)
			break;
		sm_msleep(5);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/*
 * The handler (FILL_ENABLE) in the initial pid namespace; the requester is pid 1 of a child
 * namespace. The message holds the requester's tid as the handler's namespace sees it: the
 * pid fork() returned in the initial namespace, not 1.
 */
TEST(requester_tid_from_a_child_pid_namespace)
{
	struct sealmem_msg m = { 0 };
	struct { pid_t outer, inner; } ids = { 0 };
	char *src = sm_make_src(4 * SM_PS, 5);
	int fd, hfd, pp[2], ended;
	pid_t pid;

	if (geteuid() != 0)
		SKIP(return, "needs root (CLONE_NEWPID)");
	ASSERT_NE(MAP_FAILED, src);
	fd = sm_new();
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, 4 * SM_PS));
	hfd = sm_fill_enable(fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(hfd, 0);
	ASSERT_EQ(0, pipe(pp));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		/* The middle process: its children are born in a new pid namespace. */
		pid_t g;
		int st;

		alarm(30);
		close(hfd);
		close(pp[0]);
		if (unshare(CLONE_NEWPID))
			_exit(20);
		g = fork();
		if (g < 0)
			_exit(21);
		if (g == 0) {
			char buf[SM_PS];

			ids.inner = getpid();
			if (write(pp[1], &ids, sizeof(ids)) != sizeof(ids))
				_exit(22);
			if (pread(fd, buf, SM_PS, 2 * SM_PS) != SM_PS)
				_exit(23);
			_exit(memcmp(buf, src + 2 * SM_PS, SM_PS) ? 24 : 0);
		}
		ids.outer = g;
		if (write(pp[1], &ids, sizeof(ids)) != sizeof(ids))
			_exit(25);
		if (waitpid(g, &st, 0) != g)
			_exit(26);
		/* Relayed through 8 exit bits: a grandchild killed by a signal must not pass. */
		_exit(sm_ended(st) >= 0 && sm_ended(st) < 256 ? sm_ended(st) : 99);
	}
	close(pp[1]);
	EXPECT_EQ(0, sm_read_msg(hfd, &m, 20000)) TH_LOG("no request from the child namespace");
	EXPECT_EQ(2 * SM_PS, m.offset);
	EXPECT_EQ(0, m.flags);
	for (int i = 0; i < 2; i++) {
		typeof(ids) one;

		ASSERT_EQ(sizeof(one), read(pp[0], &one, sizeof(one)));
		if (one.inner)
			ids.inner = one.inner;
		else
			ids.outer = one.outer;
	}
	EXPECT_EQ(1, ids.inner) TH_LOG("the requester was not pid 1 of a new namespace");
	EXPECT_NE(0, ids.outer);
	EXPECT_EQ(ids.outer, (pid_t)m.tid) TH_LOG("tid %u, the requester is %d in the handler's namespace", m.tid, ids.outer);
	EXPECT_EQ(0, sm_copy(hfd, 2 * SM_PS, src + 2 * SM_PS, SM_PS, NULL));
	ended = reap(pid, 20);
	EXPECT_EQ(SM_EXITED(0), ended);
	close(pp[0]);
	close(hfd);
	close(fd);
	munmap(src, 4 * SM_PS);
}

/*
 * The handler attached by pid 1 of a child pid namespace: a requester outside it (this
 * process) is not visible there (tid 0); one inside it is seen by its pid in that namespace.
 * The handler process reports each message's tid through a pipe.
 */
TEST(handler_in_a_child_pid_namespace)
{
	struct report { __u64 offset; __u32 tid; __s32 pid_in_ns; } rep[2] = { 0 };
	char *src = sm_make_src(4 * SM_PS, 6), buf[SM_PS];
	int fd, pp[2], ready[2], ended;
	pid_t pid;
	char c;

	if (geteuid() != 0)
		SKIP(return, "needs root (CLONE_NEWPID)");
	ASSERT_NE(MAP_FAILED, src);
	fd = sm_new();
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, 4 * SM_PS));
	ASSERT_EQ(0, pipe(pp));
	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		pid_t g;
		int st;

		alarm(30);
		close(pp[0]);
		close(ready[0]);
		if (unshare(CLONE_NEWPID))
			_exit(20);
		g = fork();
		if (g < 0)
			_exit(21);
		if (g == 0) {
			/* pid 1 of the new namespace: the handler. */
			struct sealmem_msg m;
			struct report r;
			int hfd = sm_fill_enable(fd, SEALMEM_FD_CLOEXEC), st2;
			pid_t inner;

			if (hfd < 0 || getpid() != 1)
				_exit(30);
			if (write(ready[1], "r", 1) != 1)
				_exit(31);
			/* 1: the outer process's pread of page 1. */
			if (sm_read_msg(hfd, &m, 20000))
				_exit(32);
			r = (struct report){ m.offset, m.tid, 0 };
			if (write(pp[1], &r, sizeof(r)) != sizeof(r) || sm_copy(hfd, m.offset, src + m.offset, SM_PS, NULL))
				_exit(33);
			/* 2: a process of this namespace reads page 3. */
			inner = fork();
			if (inner < 0)
				_exit(34);
			if (inner == 0) {
				char b[SM_PS];

				_exit(pread(fd, b, SM_PS, 3 * SM_PS) == SM_PS && !memcmp(b, src + 3 * SM_PS, SM_PS) ? 0 : 1);
			}
			if (sm_read_msg(hfd, &m, 20000))
				_exit(35);
			r = (struct report){ m.offset, m.tid, inner };
			if (write(pp[1], &r, sizeof(r)) != sizeof(r) || sm_copy(hfd, m.offset, src + m.offset, SM_PS, NULL))
				_exit(36);
			if (waitpid(inner, &st2, 0) != inner || sm_ended(st2) != SM_EXITED(0))
				_exit(37);
			_exit(0);
		}
		if (waitpid(g, &st, 0) != g)
			_exit(26);
		/* Relayed through 8 exit bits: a grandchild killed by a signal must not pass. */
		_exit(sm_ended(st) >= 0 && sm_ended(st) < 256 ? sm_ended(st) : 99);
	}
	close(pp[1]);
	close(ready[1]);
	/* Once the handler is attached (no handler before: a read would not wait), read page 1. */
	ASSERT_EQ(1, read(ready[0], &c, 1)) TH_LOG("the handler in the child namespace never attached");
	ASSERT_EQ(SM_PS, pread(fd, buf, SM_PS, SM_PS)) TH_LOG("pread: %s", strerror(errno));
	EXPECT_EQ(0, memcmp(buf, src + SM_PS, SM_PS));
	ASSERT_EQ(sizeof(rep[0]), read(pp[0], &rep[0], sizeof(rep[0])));
	ASSERT_EQ(sizeof(rep[1]), read(pp[0], &rep[1], sizeof(rep[1])));
	EXPECT_EQ(SM_PS, rep[0].offset);
	EXPECT_EQ(0, rep[0].tid) TH_LOG("a requester outside the handler's namespace must read as tid 0, got %u", rep[0].tid);
	EXPECT_EQ(3 * SM_PS, rep[1].offset);
	EXPECT_NE(0, rep[1].pid_in_ns);
	EXPECT_EQ(rep[1].pid_in_ns, (pid_t)rep[1].tid) TH_LOG("tid %u, the requester is %d in the handler's namespace",
							      rep[1].tid, rep[1].pid_in_ns);
	ended = reap(pid, 20);
	EXPECT_EQ(SM_EXITED(0), ended);
	close(pp[0]);
	close(ready[0]);
	close(fd);
	munmap(src, 4 * SM_PS);
}

TEST_HARNESS_MAIN
