// SPDX-License-Identifier: GPL-2.0
/*
 * Zero-copy splice/sendfile out of a sealmem file (issue #16): splice_read lends the file's
 * pages to the pipe (page references in pipe buffers) instead of copying them.
 *
 * - zero_copy_is_observable: a page spliced into a pipe and rewritten (pwrite) before the
 *   pipe is read shows the NEW bytes, as memfd's does (checked side by side: parity).
 * - large_file_byte_exact: a LARGE_MB MiB file through sendfile and splice into a pipe,
 *   drained with read (compared with what was written) and with splice to /dev/null.
 *   LARGE_MB is 256, not the 1 GiB: the debug test VM has 2 GiB of RAM under KASAN.
 * - holes_splice_as_zeros: holes of a file that is not lazy read as zeros (the zero page is
 *   lent) and allocate nothing.
 * - lazy.*: a hole of a lazy file waits for the fill, then exact bytes; SPLICE_F_NONBLOCK
 *   and O_NONBLOCK give EAGAIN after raising one request; a partial result returns the
 *   bytes before the hole; a poisoned page and a handler that went away give EIO.
 * - punch_and_shrink_with_pages_in_a_pipe: the pipe keeps the pages' bytes, exact; the
 *   file's page gauge is 0 at once, and the module's after the pipe is closed.
 * - write_seal_with_a_page_in_a_pipe: ADD_SEALS(WRITE) is EBUSY while a spliced page sits
 *   in a pipe (as memfd's F_SEAL_WRITE: checked side by side), and succeeds once drained.
 * - unaligned_offsets_and_eof: exact bytes from unaligned offsets, short at EOF, 0 at and
 *   past EOF; a pipe with one free slot takes what one buffer holds.
 * - a_pipe_outlives_the_module: a pipe holding a lent page and a hole's zeros is read and
 *   closed after sealmem was unloaded: its buffers must not point into the module.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <fcntl.h>

#include "kselftest_harness.h"
#include "sealmem_lib.h"

#define LARGE_MB 256
#define DEADLINE_S 30

static int pipe_sized(int pfd[2], size_t bytes)
{
	if (pipe(pfd))
		return -1;
	if (fcntl(pfd[1], F_SETPIPE_SZ, (int)bytes) < (int)bytes)
		return -1;
	return 0;
}


static int fill_op(int hfd, unsigned long cmd, __u64 off, __u64 len)
{
	struct sealmem_fill f = { .offset = off, .len = len };

	return ioctl(hfd, cmd, &f);
}

/* (1) Zero-copy is observable: the pipe shows a write made after the splice. */
static void splice_then_rewrite(struct __test_metadata *_metadata, int fd, const char *what)
{
	char a[SM_PS], b[SM_PS], got[SM_PS];
	loff_t off = 0;
	int pfd[2];

	memset(a, 'A', SM_PS);
	memset(b, 'B', SM_PS);
	ASSERT_EQ(SM_PS, pwrite(fd, a, SM_PS, 0));
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(SM_PS, splice(fd, &off, pfd[1], NULL, SM_PS, 0)) TH_LOG("%s: %s", what, strerror(errno));
	ASSERT_EQ(SM_PS, pwrite(fd, b, SM_PS, 0));
	ASSERT_EQ(0, sm_read_full(pfd[0], got, SM_PS));
	TH_LOG("%s: the pipe shows '%c' after the page was rewritten", what, got[0]);
	EXPECT_EQ(0, memcmp(got, b, SM_PS)) TH_LOG("%s: the pipe holds a copy (old bytes), not the page", what);
	close(pfd[0]);
	close(pfd[1]);
}

TEST(zero_copy_is_observable)
{
	int mfd = memfd_create("splice-parity", MFD_CLOEXEC);
	int fd = sm_new();

	ASSERT_GE(mfd, 0);
	ASSERT_GE(fd, 0);
	splice_then_rewrite(_metadata, mfd, "memfd");
	splice_then_rewrite(_metadata, fd, "sealmem");
	close(mfd);
	close(fd);
}

/* (2) A large file, byte-exact, through sendfile and splice. */
#define CHUNK (1UL << 20)

/* The file's bytes at chunk `k`: a fixed pattern with each page stamped with its offset. */
static void large_chunk(char *out, const char *base, size_t k)
{
	memcpy(out, base, CHUNK);
	for (size_t p = 0; p < CHUNK; p += SM_PS) {
		uint64_t at = k * CHUNK + p;

		memcpy(out + p, &at, sizeof(at));
	}
}

TEST(large_file_byte_exact)
{
	const size_t size = (size_t)LARGE_MB << 20;
	char *base = malloc(CHUNK), *want = malloc(CHUNK), *got = malloc(CHUNK);
	int fd = sm_new(), pfd[2], null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	size_t k, moved, total = 0;
	loff_t off;
	double t0;

	ASSERT_TRUE(base && want && got);
	ASSERT_GE(fd, 0);
	ASSERT_GE(null, 0);
	sm_pattern(base, CHUNK, 11, 0);
	for (k = 0; k < size / CHUNK; k++) {
		large_chunk(want, base, k);
		ASSERT_EQ(CHUNK, pwrite(fd, want, CHUNK, k * CHUNK));
	}
	ASSERT_EQ(0, pipe_sized(pfd, CHUNK));
	t0 = sm_now();
	/* sendfile through the file position, one pipe's worth at a time, read and compared. */
	ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
	for (k = 0; k < size / CHUNK; k++) {
		for (moved = 0; moved < CHUNK;) {
			ssize_t n = sendfile(pfd[1], fd, NULL, CHUNK - moved);

			ASSERT_GT(n, 0) TH_LOG("sendfile at %zu: %s", k * CHUNK + moved, strerror(errno));
			ASSERT_EQ(0, sm_read_full(pfd[0], got + moved, n));
			moved += n;
		}
		large_chunk(want, base, k);
		ASSERT_EQ(0, memcmp(got, want, CHUNK)) TH_LOG("sendfile: chunk %zu differs", k);
	}
	EXPECT_EQ(0, sendfile(pfd[1], fd, NULL, CHUNK)) TH_LOG("sendfile at EOF");
	/* splice with an offset, read and compared. */
	for (k = 0; k < size / CHUNK; k++) {
		off = k * CHUNK;
		for (moved = 0; moved < CHUNK;) {
			ssize_t n = splice(fd, &off, pfd[1], NULL, CHUNK - moved, 0);

			ASSERT_GT(n, 0) TH_LOG("splice at %zu: %s", k * CHUNK + moved, strerror(errno));
			ASSERT_EQ(0, sm_read_full(pfd[0], got + moved, n));
			moved += n;
		}
		large_chunk(want, base, k);
		ASSERT_EQ(0, memcmp(got, want, CHUNK)) TH_LOG("splice: chunk %zu differs", k);
	}
	off = 0;
	/* splice in, splice out to /dev/null: every byte accounted for. */
	while (total < size) {
		ssize_t n = splice(fd, &off, pfd[1], NULL, CHUNK, 0), m;

		ASSERT_GT(n, 0) TH_LOG("splice at %zu: %s", total, strerror(errno));
		for (ssize_t left = n; left > 0; left -= m) {
			m = splice(pfd[0], NULL, null, NULL, left, 0);
			ASSERT_GT(m, 0) TH_LOG("splice to /dev/null: %s", strerror(errno));
		}
		total += n;
	}
	EXPECT_EQ(size, total);
	EXPECT_EQ((loff_t)size, off);
	TH_LOG("%d MiB moved three times in %.1f s", LARGE_MB, sm_now() - t0);
	EXPECT_EQ((long long)(size / SM_PS), sm_pages(fd));
	close(pfd[0]);
	close(pfd[1]);
	close(null);
	close(fd);
	free(base);
	free(want);
	free(got);
}

/* (3) Holes of a file that is not lazy: zeros, and nothing allocated. */
TEST(holes_splice_as_zeros)
{
	char src[SM_PS], want[4 * SM_PS], got[4 * SM_PS];
	int fd = sm_new(), pfd[2];
	loff_t off = 100;

	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, 4 * SM_PS));
	sm_pattern(src, SM_PS, 5, SM_PS);
	ASSERT_EQ(SM_PS, pwrite(fd, src, SM_PS, SM_PS));
	memset(want, 0, sizeof(want));
	memcpy(want + SM_PS, src, SM_PS);
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(4 * SM_PS - 100, splice(fd, &off, pfd[1], NULL, 4 * SM_PS, 0));
	ASSERT_EQ(0, sm_read_full(pfd[0], got, 4 * SM_PS - 100));
	EXPECT_EQ(0, memcmp(got, want + 100, 4 * SM_PS - 100));
	EXPECT_EQ(1, sm_pages(fd)) TH_LOG("a splice of holes allocated pages");
	close(pfd[0]);
	close(pfd[1]);
	close(fd);
}

/* (4) Lazy files. */
FIXTURE(lazy) {
	int fd, hfd, pfd[2];
	char *src;
	size_t size;
};

FIXTURE_SETUP(lazy)
{
	self->size = 16 * SM_PS;
	self->fd = sm_new();
	ASSERT_GE(self->fd, 0);
	ASSERT_EQ(0, sm_set_size(self->fd, self->size));
	self->hfd = sm_fill_enable(self->fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(self->hfd, 0) TH_LOG("FILL_ENABLE: %s", strerror(errno));
	self->src = sm_make_src(self->size, 7);
	ASSERT_NE(MAP_FAILED, self->src);
	ASSERT_EQ(0, pipe_sized(self->pfd, 16 * SM_PS));
}

FIXTURE_TEARDOWN(lazy)
{
	close(self->pfd[0]);
	close(self->pfd[1]);
	if (self->hfd >= 0)
		close(self->hfd);
	close(self->fd);
	munmap(self->src, self->size);
}


/* Starts a splicer and returns once its request is read into `m` and it sleeps. */
static int start_splicer(struct __test_metadata *_metadata, struct sm_splicer *sp, int hfd,
			 struct sealmem_msg *m)
{
	if (pthread_create(&sp->th, NULL, sm_splice_run, sp))
		return -1;
	EXPECT_EQ(0, sm_read_msg(hfd, m, DEADLINE_S * 1000)) TH_LOG("no request from splice");
	/* The request came from the splice, so the thread has stored its id. */
	EXPECT_EQ('S', sm_wait_state(getpid(), atomic_load(&sp->tid), "S", DEADLINE_S))
		TH_LOG("the splice does not wait");
	return 0;
}

TEST_F(lazy, waits_for_the_fill_then_exact_bytes)
{
	struct sm_splicer sp = { .fd = self->fd, .pipe_w = self->pfd[1], .off = 3 * SM_PS + 7, .len = 3 * SM_PS };
	struct sealmem_msg m;
	char got[3 * SM_PS];

	ASSERT_EQ(0, start_splicer(_metadata, &sp, self->hfd, &m));
	EXPECT_EQ(3 * SM_PS, m.offset);
	EXPECT_EQ(0, atomic_load(&sp.done));
	ASSERT_EQ(0, sm_copy(self->hfd, 3 * SM_PS, self->src + 3 * SM_PS, 4 * SM_PS, NULL));
	pthread_join(sp.th, NULL);
	ASSERT_EQ(3 * SM_PS, sp.ret) TH_LOG("splice: %s", strerror(sp.err));
	ASSERT_EQ(0, sm_read_full(self->pfd[0], got, 3 * SM_PS));
	EXPECT_EQ(0, memcmp(got, self->src + 3 * SM_PS + 7, 3 * SM_PS));
	EXPECT_EQ(1, sm_fdinfo_num(self->hfd, "total"));
}

TEST_F(lazy, nonblocking_is_eagain_after_one_request)
{
	struct sealmem_msg m;
	loff_t off = 2 * SM_PS;

	errno = 0;
	EXPECT_EQ(-1, splice(self->fd, &off, self->pfd[1], NULL, SM_PS, SPLICE_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(1, sm_fdinfo_num(self->hfd, "total"));
	ASSERT_EQ(0, sm_read_msg(self->hfd, &m, 1000));
	EXPECT_EQ(2 * SM_PS, m.offset);
	/* O_NONBLOCK on the file read from. */
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, O_NONBLOCK));
	off = 9 * SM_PS;
	errno = 0;
	EXPECT_EQ(-1, splice(self->fd, &off, self->pfd[1], NULL, SM_PS, 0));
	EXPECT_EQ(EAGAIN, errno);
	errno = 0;
	EXPECT_EQ(-1, sendfile(self->pfd[1], self->fd, &(off_t){ 9 * SM_PS }, SM_PS));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(2, sm_fdinfo_num(self->hfd, "total")) TH_LOG("one request per page");
	ASSERT_EQ(0, sm_read_msg(self->hfd, &m, 1000));
	EXPECT_EQ(9 * SM_PS, m.offset);
	struct pollfd pl = { .fd = self->pfd[0], .events = POLLIN };
	EXPECT_EQ(0, poll(&pl, 1, 0)) TH_LOG("bytes reached the pipe");
}

TEST_F(lazy, partial_results_and_poison)
{
	char got[2 * SM_PS];
	loff_t off = 4 * SM_PS + 10;

	ASSERT_EQ(0, sm_copy(self->hfd, 4 * SM_PS, self->src + 4 * SM_PS, SM_PS, NULL));
	ASSERT_EQ(0, fill_op(self->hfd, SEALMEM_IOC_POISON, 5 * SM_PS, SM_PS));
	/* The bytes before the poisoned page, then EIO. */
	EXPECT_EQ(SM_PS - 10, splice(self->fd, &off, self->pfd[1], NULL, 2 * SM_PS, 0));
	EXPECT_EQ(5 * SM_PS, off);
	ASSERT_EQ(0, sm_read_full(self->pfd[0], got, SM_PS - 10));
	EXPECT_EQ(0, memcmp(got, self->src + 4 * SM_PS + 10, SM_PS - 10));
	errno = 0;
	EXPECT_EQ(-1, splice(self->fd, &off, self->pfd[1], NULL, SM_PS, 0));
	EXPECT_EQ(EIO, errno) TH_LOG("a poisoned page");
	/* The bytes before a hole, then (non-blocking) EAGAIN. */
	ASSERT_EQ(0, sm_copy(self->hfd, 6 * SM_PS, self->src + 6 * SM_PS, SM_PS, NULL));
	off = 6 * SM_PS;
	EXPECT_EQ(SM_PS, splice(self->fd, &off, self->pfd[1], NULL, 2 * SM_PS, SPLICE_F_NONBLOCK));
	ASSERT_EQ(0, sm_read_full(self->pfd[0], got, SM_PS));
	EXPECT_EQ(0, memcmp(got, self->src + 6 * SM_PS, SM_PS));
	errno = 0;
	EXPECT_EQ(-1, splice(self->fd, &off, self->pfd[1], NULL, SM_PS, SPLICE_F_NONBLOCK));
	EXPECT_EQ(EAGAIN, errno);
}

TEST_F(lazy, handler_gone_is_eio)
{
	struct sm_splicer sp = { .fd = self->fd, .pipe_w = self->pfd[1], .off = 8 * SM_PS, .len = SM_PS };
	struct sealmem_msg m;
	loff_t off = 11 * SM_PS;

	ASSERT_EQ(0, start_splicer(_metadata, &sp, self->hfd, &m));
	close(self->hfd);
	self->hfd = -1;
	pthread_join(sp.th, NULL);
	EXPECT_EQ(-1, sp.ret);
	EXPECT_EQ(EIO, sp.err) TH_LOG("a waiter when the handler goes: %s", strerror(sp.err));
	errno = 0;
	EXPECT_EQ(-1, splice(self->fd, &off, self->pfd[1], NULL, SM_PS, 0));
	EXPECT_EQ(EIO, errno) TH_LOG("a later splice of a hole");
}

struct pipe_writer {
	int fd;
	ssize_t ret;
	atomic_int done;
};

static void *write_one_byte(void *arg)
{
	struct pipe_writer *w = arg;

	w->ret = write(w->fd, "x", 1);
	atomic_store(&w->done, 1);
	return NULL;
}

/*
 * A splice waiting for a lazy page holds the pipe's lock (the splice code takes it around
 * ->splice_read), which pipe_write() takes uninterruptibly: another writer of the pipe must
 * not be stuck until the handler fills the page. The splice restarts now and then, so the
 * writer gets in; its byte is in the pipe before the page, which then follows exactly.
 */
TEST_F(lazy, a_waiting_splice_does_not_lock_out_other_pipe_users)
{
	struct sm_splicer sp = { .fd = self->fd, .pipe_w = self->pfd[1], .off = 2 * SM_PS, .len = SM_PS };
	struct pipe_writer w = { .fd = self->pfd[1] };
	struct sealmem_msg m;
	pthread_t wt;
	char got[1 + SM_PS_MAX];
	double deadline;

	ASSERT_EQ(0, start_splicer(_metadata, &sp, self->hfd, &m));
	EXPECT_EQ(2 * SM_PS, m.offset);
	ASSERT_EQ(0, pthread_create(&wt, NULL, write_one_byte, &w));
	/* Polling with a deadline: the writer is either done or stuck in D state. */
	deadline = sm_now() + DEADLINE_S;
	while (!atomic_load(&w.done) && sm_now() < deadline)
		sm_msleep(10);
	EXPECT_EQ(1, atomic_load(&w.done)) TH_LOG("a pipe writer waited for the lazy page");
	EXPECT_EQ(0, atomic_load(&sp.done)) TH_LOG("the splice ended before the fill");
	ASSERT_EQ(0, sm_copy(self->hfd, 2 * SM_PS, self->src + 2 * SM_PS, SM_PS, NULL));
	pthread_join(sp.th, NULL);
	pthread_join(wt, NULL);
	EXPECT_EQ(1, w.ret);
	ASSERT_EQ(SM_PS, sp.ret) TH_LOG("splice: %s", strerror(sp.err));
	ASSERT_EQ(0, sm_read_full(self->pfd[0], got, 1 + SM_PS));
	EXPECT_EQ('x', got[0]);
	EXPECT_EQ(0, memcmp(got + 1, self->src + 2 * SM_PS, SM_PS));
	EXPECT_EQ(1, sm_fdinfo_num(self->hfd, "total")) TH_LOG("the restarts raised new requests");
}

/* A splice that reaches a lazy hole after some bytes returns them (the hole stays
 * requested) instead of waiting for the fill with them in the locked pipe. */
TEST_F(lazy, a_splice_returns_its_bytes_before_a_hole)
{
	struct sealmem_msg m;
	char got[SM_PS_MAX];
	loff_t off = 3 * SM_PS + 5;

	ASSERT_EQ(0, sm_copy(self->hfd, 3 * SM_PS, self->src + 3 * SM_PS, SM_PS, NULL));
	EXPECT_EQ(SM_PS - 5, splice(self->fd, &off, self->pfd[1], NULL, 3 * SM_PS, 0));
	EXPECT_EQ(4 * SM_PS, off);
	ASSERT_EQ(0, sm_read_full(self->pfd[0], got, SM_PS - 5));
	EXPECT_EQ(0, memcmp(got, self->src + 3 * SM_PS + 5, SM_PS - 5));
	ASSERT_EQ(0, sm_read_msg(self->hfd, &m, 1000)) TH_LOG("the hole was not requested");
	EXPECT_EQ(4 * SM_PS, m.offset);
}

/* (5) Punch and shrink while the pages sit in a pipe. */
TEST(punch_and_shrink_with_pages_in_a_pipe)
{
	char src[8 * SM_PS], got[8 * SM_PS], other[SM_PS];
	int fd = sm_new(), pfd[2];
	loff_t off = 0;

	ASSERT_GE(fd, 0);
	sm_pattern(src, sizeof(src), 9, 0);
	ASSERT_EQ(sizeof(src), pwrite(fd, src, sizeof(src), 0));
	ASSERT_EQ(0, pipe_sized(pfd, 16 * SM_PS));
	ASSERT_EQ(8 * SM_PS, splice(fd, &off, pfd[1], NULL, 8 * SM_PS, 0));
	ASSERT_EQ(0, sm_punch(fd, 0, 4 * SM_PS));
	/* A page written after the punch is a new page: the pipe keeps the old one. */
	memset(other, 'x', SM_PS);
	ASSERT_EQ(SM_PS, pwrite(fd, other, SM_PS, 0));
	ASSERT_EQ(0, sm_set_size(fd, 0));
	EXPECT_EQ(0, sm_pages(fd)) TH_LOG("the file still holds pages");
	ASSERT_EQ(0, sm_read_full(pfd[0], got, 8 * SM_PS));
	EXPECT_EQ(0, memcmp(got, src, 8 * SM_PS)) TH_LOG("the pipe's bytes changed");
	close(pfd[0]);
	close(pfd[1]);
	EXPECT_EQ(0, sm_pages(fd));
	close(fd);
	EXPECT_EQ(0, sm_settled_gauge("pages"));
}

/*
 * tee() duplicates a lent buffer (another reference to the same page), and a shrink to an
 * unaligned size zeroes the tail of the last page in place: both pipes show the zeros past
 * the new EOF, as they would for a memfd (checked side by side).
 */
TEST(tee_and_an_unaligned_shrink_with_a_page_in_pipes)
{
	int mfd = memfd_create("splice-tee", MFD_CLOEXEC);
	int fds[2] = { sm_new(), mfd };
	char src[SM_PS_MAX], got[SM_PS_MAX], want[SM_PS_MAX];

	ASSERT_GE(fds[0], 0);
	ASSERT_GE(fds[1], 0);
	sm_pattern(src, SM_PS, 5, 0);
	memcpy(want, src, 100);
	memset(want + 100, 0, SM_PS - 100);
	for (int i = 0; i < 2; i++) {
		const char *what = i ? "memfd" : "sealmem";
		int a[2], b[2];
		loff_t off = 0;

		ASSERT_EQ(SM_PS, pwrite(fds[i], src, SM_PS, 0));
		ASSERT_EQ(0, pipe(a));
		ASSERT_EQ(0, pipe(b));
		ASSERT_EQ(SM_PS, splice(fds[i], &off, a[1], NULL, SM_PS, 0)) TH_LOG("%s", what);
		ASSERT_EQ(SM_PS, tee(a[0], b[1], SM_PS, 0)) TH_LOG("%s: %s", what, strerror(errno));
		ASSERT_EQ(0, i ? ftruncate(fds[i], 100) : sm_set_size(fds[i], 100));
		ASSERT_EQ(0, sm_read_full(a[0], got, SM_PS));
		EXPECT_EQ(0, memcmp(got, want, SM_PS)) TH_LOG("%s: the spliced pipe", what);
		ASSERT_EQ(0, sm_read_full(b[0], got, SM_PS));
		EXPECT_EQ(0, memcmp(got, want, SM_PS)) TH_LOG("%s: the teed pipe", what);
		close(a[0]);
		close(a[1]);
		close(b[0]);
		close(b[1]);
	}
	close(fds[0]);
	close(fds[1]);
	EXPECT_EQ(0, sm_settled_gauge("pages"));
}

/* (6) The WRITE seal sees pages in a pipe, as memfd's does. */
TEST(write_seal_with_a_page_in_a_pipe)
{
	int mfd = memfd_create("splice-seal", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int fd = sm_new(), pfd[2], mp[2];
	char buf[2 * SM_PS];
	loff_t off = 0;

	ASSERT_GE(mfd, 0);
	ASSERT_GE(fd, 0);
	sm_pattern(buf, sizeof(buf), 3, 0);
	ASSERT_EQ(sizeof(buf), pwrite(fd, buf, sizeof(buf), 0));
	ASSERT_EQ(sizeof(buf), pwrite(mfd, buf, sizeof(buf), 0));
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(0, pipe(mp));
	ASSERT_EQ(SM_PS, splice(fd, &off, pfd[1], NULL, SM_PS, 0));
	off = 0;
	ASSERT_EQ(SM_PS, splice(mfd, &off, mp[1], NULL, SM_PS, 0));
	errno = 0;
	EXPECT_EQ(-1, fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE)) TH_LOG("memfd: sealed with a page in a pipe");
	EXPECT_EQ(EBUSY, errno);
	errno = 0;
	EXPECT_EQ(-1, sm_add_seals(fd, SEALMEM_SEAL_WRITE)) TH_LOG("sealmem: sealed with a page in a pipe");
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(0, sm_get_seals(fd) & SEALMEM_SEAL_WRITE);
	ASSERT_EQ(0, sm_read_full(pfd[0], buf, SM_PS));
	ASSERT_EQ(0, sm_read_full(mp[0], buf, SM_PS));
	EXPECT_EQ(0, fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE)) TH_LOG("memfd: %s", strerror(errno));
	EXPECT_EQ(0, sm_add_seals(fd, SEALMEM_SEAL_WRITE)) TH_LOG("sealmem: %s", strerror(errno));
	/* Sealed: splicing out still works (and a page in a pipe no longer matters). */
	off = SM_PS;
	EXPECT_EQ(SM_PS, splice(fd, &off, pfd[1], NULL, SM_PS, 0));
	close(pfd[0]);
	close(pfd[1]);
	close(mp[0]);
	close(mp[1]);
	close(mfd);
	close(fd);
}

/* (7) Unaligned offsets, EOF, and a pipe with one free slot. */
TEST(unaligned_offsets_and_eof)
{
	const size_t size = 3 * SM_PS + 123;
	char src[4 * SM_PS], got[4 * SM_PS], *fill = malloc(15 * SM_PS);
	int fd = sm_new(), pfd[2];
	loff_t off;

	ASSERT_GE(fd, 0);
	sm_pattern(src, size, 13, 0);
	ASSERT_EQ(size, pwrite(fd, src, size, 0));
	ASSERT_EQ(0, pipe_sized(pfd, 16 * SM_PS));
	/* Across pages, short at EOF. */
	off = 4000;
	EXPECT_EQ(size - 4000, splice(fd, &off, pfd[1], NULL, 10000, 0));
	EXPECT_EQ((loff_t)size, off);
	ASSERT_EQ(0, sm_read_full(pfd[0], got, size - 4000));
	EXPECT_EQ(0, memcmp(got, src + 4000, size - 4000));
	/* A few bytes across a page boundary. */
	off = SM_PS - 1;
	EXPECT_EQ(2, splice(fd, &off, pfd[1], NULL, 2, 0));
	ASSERT_EQ(0, sm_read_full(pfd[0], got, 2));
	EXPECT_EQ(0, memcmp(got, src + SM_PS - 1, 2));
	/* At and past EOF: 0. */
	off = size;
	EXPECT_EQ(0, splice(fd, &off, pfd[1], NULL, SM_PS, 0));
	off = size + 5 * SM_PS;
	EXPECT_EQ(0, splice(fd, &off, pfd[1], NULL, SM_PS, 0));
	/* sendfile through the file position, from mid-page to EOF. */
	ASSERT_EQ(3 * SM_PS + 50, lseek(fd, 3 * SM_PS + 50, SEEK_SET));
	EXPECT_EQ(73, sendfile(pfd[1], fd, NULL, SM_PS));
	EXPECT_EQ((off_t)size, lseek(fd, 0, SEEK_CUR));
	ASSERT_EQ(0, sm_read_full(pfd[0], got, 73));
	EXPECT_EQ(0, memcmp(got, src + 3 * SM_PS + 50, 73));
	/* One free slot: an unaligned splice takes one buffer, to the end of the page. */
	ASSERT_NE(NULL, fill);
	memset(fill, 'p', 15 * SM_PS);
	ASSERT_EQ(15 * SM_PS, write(pfd[1], fill, 15 * SM_PS));
	off = 100;
	EXPECT_EQ(SM_PS - 100, splice(fd, &off, pfd[1], NULL, 2 * SM_PS, SPLICE_F_NONBLOCK));
	ASSERT_EQ(0, sm_read_full(pfd[0], fill, 15 * SM_PS));
	ASSERT_EQ(0, sm_read_full(pfd[0], got, SM_PS - 100));
	EXPECT_EQ(0, memcmp(got, src + 100, SM_PS - 100));
	free(fill);
	close(pfd[0]);
	close(pfd[1]);
	close(fd);
}

/*
 * A pipe can outlive every sealmem fd, and so the module: once the file is closed nothing
 * holds sealmem, rmmod succeeds, and the pipe's buffers are read and released later. Their
 * ops (and everything else they point to) must be the kernel's, not sealmem's.
 */
TEST(a_pipe_outlives_the_module)
{
	char want[SM_PS_MAX], got[2 * SM_PS_MAX];
	int fd = sm_new(), pfd[2];
	loff_t off = 0;
	size_t i;

	if (!getenv("SEALMEM_KO"))
		SKIP(return, "SEALMEM_KO not set (runs only in the test VM)");
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, 2 * SM_PS));
	sm_pattern(want, SM_PS, 9, 0);
	ASSERT_EQ(SM_PS, pwrite(fd, want, SM_PS, 0)); /* page 0 resident, page 1 a hole */
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(2 * SM_PS, splice(fd, &off, pfd[1], NULL, 2 * SM_PS, 0));
	close(fd);
	/* Read and release the buffers while sealmem is not loaded (a reload could put the
	 * same code at the same address again). */
	ASSERT_EQ(0, sm_unload()) TH_LOG("unload sealmem: %s", strerror(errno));
	EXPECT_EQ(2 * SM_PS, read(pfd[0], got, 2 * SM_PS));
	close(pfd[0]);
	close(pfd[1]);
	ASSERT_EQ(0, sm_load("")) TH_LOG("load sealmem again: %s", strerror(errno));
	EXPECT_EQ(0, memcmp(got, want, SM_PS));
	for (i = SM_PS; i < 2 * SM_PS; i++)
		if (got[i]) {
			EXPECT_EQ(0, got[i]) TH_LOG("byte %zu of the hole", i);
			break;
		}
}

TEST_HARNESS_MAIN
