// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem_fuzz: a seeded, time-bounded fuzzer for every entry point of sealmem.
 *
 *   sealmem_fuzz [-s SEED] [-t SECONDS] [-p PROCESSES] [-j THREADS] [-i PERCENT]
 *   sealmem_fuzz -I PERCENT        (switch allocation-failure injection on; 0: off + count)
 *
 * -I fails PERCENT of the allocations made with sealmem.ko on the call stack (failslab and
 * fail_page_alloc with the stack-trace filter; debug kernel) by tasks that have
 * /proc/PID/make-it-fail set (inherited by children), until "-I 0", which prints how many
 * failures were injected; anything may run meanwhile (the VM runs the functional suites
 * beside the fuzzer). -i tells a fuzzing run that failures are being injected: then
 * ENOMEM is accepted from any call (SIGBUS/VM_FAULT_OOM in a fault), and nothing else is.
 *
 * PROCESSES x THREADS workers hammer a shared pool of sealmem files (plain, shrinking and growing, sealed with
 * known content, lazy with a serving handler) and fds of other kinds with random ioctls,
 * read/write/lseek/splice/sendfile, mmap/munmap/mprotect/madvise/mremap, touches of mapped memory, fork and
 * SCM_RIGHTS, handlers killed while a reader waits, with valid and invalid arguments. It checks what it can:
 *  - every failing call's errno is in the set documented for that call (docs/api.md);
 *  - the sealed file's bytes never change, through read() and through mappings;
 *  - a lazy sealed image filled by a racing handler thread and ended by FILL_END at a random
 *    moment reads, page by page, as its content or (only after FILL_END) zeros, and the
 *    same ever after;
 *  - a fresh file's pages read as zeros.
 * The seed is printed first, so any failure reproduces with -s. The last line is
 *   sealmem_fuzz: N operations, F failures (seed S)
 * and the exit status is 1 on any failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sealmem.h>
#include "sealmem_lib.h"

#define NFILES 4
#define SEALED_PAGES 8

enum { F_PLAIN, F_RESIZE, F_SEALED, F_LAZY };

static int FD[NFILES], VIEWFD[NFILES], HFD;
static char *SEALED_CONTENT;
/* Shared by every fuzzing process (a MAP_SHARED page): totals and the stop flag. */
#define SLOTS 272 /* one per worker thread (process * 16 + thread) */
static struct shared {
	atomic_long ops, fails;
	atomic_int stop;
	atomic_long busy_since[SLOTS]; /* CLOCK_MONOTONIC ns when the slot's operation began */
} *SH;
#define OPS (SH->ops)
#define FAILS (SH->fails)
#define STOP (SH->stop)
static int INJECT; /* percent of sealmem's allocations made to fail (-i) */
static unsigned long SEED;
static char *GOOD; /* a valid source/destination buffer */

static __thread unsigned long rng;
static __thread sigjmp_buf jmp;
static __thread volatile int in_touch;
static __thread int pipe_fd[2] = { -1, -1 };
static __thread char splice_sink[16 * 4096];
static __thread int sub; /* which case of fuzz_ioctl / fuzz_io ran (for -v) */

static unsigned long rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static unsigned long pick(unsigned long n) { return n ? rnd() % n : 0; }

static void fail(const char *op, long ret, int err, const char *why)
{
	atomic_fetch_add(&FAILS, 1);
	fprintf(stderr, "FAIL %s: ret %ld errno %d (%s): %s (seed %lu)\n", op, ret, err, strerror(err), why, SEED);
}

/* Checks a call's result: success, or an errno from `allowed` (0-terminated). */
static void check(const char *op, long ret, const int *allowed)
{
	int err = errno;

	atomic_fetch_add(&OPS, 1);
	if (ret >= 0)
		return;
	/* Injected allocation failures must surface as ENOMEM, nothing else. */
	if (INJECT && err == ENOMEM)
		return;
	for (; *allowed; allowed++)
		if (*allowed == err)
			return;
	fail(op, ret, err, "unexpected errno");
}

#define ALLOW(...) ((const int[]){ __VA_ARGS__, 0 })

static void on_fault(int sig)
{
	if (in_touch)
		siglongjmp(jmp, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* A random fd: a sealmem file or VIEW fd mostly, sometimes something else. */
static __thread int fd_kind; /* which: 0..3 a file (F_*), 4..7 its VIEW, 8 neither */

static int any_fd(void)
{
	int i = (int)pick(NFILES);

	switch (pick(10)) {
	case 0: fd_kind = 8; return -1;
	case 1: fd_kind = 8; return 0; /* stdin: not a sealmem file */
	case 2: case 3: case 4: fd_kind = 4 + i; return VIEWFD[i];
	default: fd_kind = i; return FD[i];
	}
}

static unsigned long rand_len(void)
{
	switch (pick(6)) {
	case 0: return 0;
	case 1: return pick(64);
	case 2: return PS * (1 + pick(16));
	case 3: return pick(4 * PS);
	case 4: return ~0UL - pick(PS);
	default: return PS;
	}
}

static unsigned long rand_off(void)
{
	switch (pick(6)) {
	case 0: return 0;
	case 1: return PS * pick(64);
	case 2: return pick(64 * PS);
	case 3: return ~0UL & ~(PS - 1);
	case 4: return 1UL << 62;
	default: return PS * pick(8);
	}
}

static void *rand_ptr(void)
{
	switch (pick(8)) {
	case 0: return NULL;
	case 1: return (void *)8;
	case 2: return (void *)(uintptr_t)rnd();
	default: return GOOD + pick(PS);
	}
}

/* Maps a file, touches it, unmaps; SIGBUS/SIGSEGV are expected outcomes here. */
static void fuzz_mmap(void)
{
	int fd = any_fd(), prot = (int[]){ PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC, PROT_NONE }[pick(4)];
	int flags = pick(3) ? MAP_SHARED : MAP_PRIVATE;
	size_t len = PS * (1 + pick(32));
	char *p = mmap(NULL, len, prot, flags, fd, PS * pick(4));

	check("mmap", p == MAP_FAILED ? -1 : 0, ALLOW(EBADF, EACCES, EPERM, ENODEV, EINVAL, ENOMEM));
	if (p == MAP_FAILED)
		return;
	for (int i = 0; i < 8; i++) {
		volatile char *q = p + pick(len);

		in_touch = 1;
		if (sigsetjmp(jmp, 1) == 0) {
			if (prot & PROT_WRITE && pick(2))
				*q = (char)rnd();
			else if (prot & PROT_READ)
				(void)*q;
		}
		in_touch = 0;
		atomic_fetch_add(&OPS, 1);
	}
	if (pick(3) == 0)
		check("mprotect", mprotect(p, len, (int[]){ PROT_READ, PROT_READ | PROT_WRITE, PROT_EXEC }[pick(3)]), ALLOW(EACCES, EINVAL, ENOMEM));
	if (pick(3) == 0)
		check("madvise", madvise(p, len, (int[]){ MADV_DONTNEED, MADV_WILLNEED, MADV_REMOVE }[pick(3)]), ALLOW(EINVAL, EOPNOTSUPP, EACCES, EPERM, ENODEV));
	if (pick(4) == 0) {
		/* Grow, shrink or move the mapping, then touch its new end. */
		size_t nlen = PS * (1 + pick(48));
		char *q = mremap(p, len, nlen, MREMAP_MAYMOVE);

		check("mremap", q == MAP_FAILED ? -1 : 0, ALLOW(EFAULT, EINVAL, ENOMEM, EAGAIN));
		if (q != MAP_FAILED) {
			p = q;
			len = nlen;
			in_touch = 1;
			if (sigsetjmp(jmp, 1) == 0 && prot & PROT_READ)
				(void)*(volatile char *)(p + len - 1);
			in_touch = 0;
		}
	}
	munmap(p, len);
}

static void fuzz_ioctl(void)
{
	int fd = any_fd();
	__u64 v = rand_off();
	__u32 seals = (__u32)pick(0x80);
	struct sealmem_range r = { rand_off(), rand_len() };
	struct sealmem_name n;
	struct sealmem_api api = { .api = pick(3), .features = pick(2) ? 0 : rnd() };
	int ret;

	/* VIEW and FILL_ENABLE create and release a file (~1 ms under TCG): half as often. */
	sub = pick(10);
	if (sub >= 8 && pick(2))
		sub = pick(8);
	switch (sub) {
	case 0:
		check("API", ioctl(fd, SEALMEM_IOC_API, pick(4) ? (void *)&api : rand_ptr()), ALLOW(EBADF, ENOTTY, EINVAL, EFAULT));
		break;
	case 1:
		/* Never resize the sealed file's fd into trouble: seals refuse it anyway. */
		v = pick(4) ? PS * pick(64) + pick(2) * pick(PS) : v;
		check("SET_SIZE", ioctl(fd, SEALMEM_IOC_SET_SIZE, pick(8) ? (void *)&v : rand_ptr()), ALLOW(EBADF, ENOTTY, EINVAL, EFAULT, EPERM, EFBIG));
		break;
	case 2:
		check("GET_SIZE", ioctl(fd, SEALMEM_IOC_GET_SIZE, pick(8) ? (void *)&v : rand_ptr()), ALLOW(EBADF, ENOTTY, EFAULT));
		break;
	case 3:
		check("PUNCH_HOLE", ioctl(fd, SEALMEM_IOC_PUNCH_HOLE, pick(8) ? (void *)&r : rand_ptr()), ALLOW(EBADF, ENOTTY, EINVAL, EFAULT, EPERM));
		break;
	case 4:
		/* The sealed file is already SEALed; others may gain seals, which is fine. */
		if (fd == FD[F_LAZY] || fd == FD[F_PLAIN])
			seals &= ~(SEALMEM_SEAL_WRITE | SEALMEM_SEAL_FUTURE_WRITE | SEALMEM_SEAL_SEAL | SEALMEM_SEAL_GROW | SEALMEM_SEAL_SHRINK);
		check("ADD_SEALS", ioctl(fd, SEALMEM_IOC_ADD_SEALS, pick(8) ? (void *)&seals : rand_ptr()), ALLOW(EBADF, ENOTTY, EINVAL, EFAULT, EPERM, EBUSY));
		break;
	case 5:
		check("GET_SEALS", ioctl(fd, SEALMEM_IOC_GET_SEALS, pick(8) ? (void *)&seals : rand_ptr()), ALLOW(EBADF, ENOTTY, EFAULT));
		break;
	case 6:
		for (size_t i = 0; i < sizeof(n.name); i++)
			n.name[i] = (char)rnd();
		n.name[pick(sizeof(n.name))] = 0;
		check("SET_NAME", ioctl(fd, SEALMEM_IOC_SET_NAME, pick(8) ? (void *)&n : rand_ptr()), ALLOW(EBADF, ENOTTY, EINVAL, EFAULT));
		break;
	case 7:
		check("GET_NAME", ioctl(fd, SEALMEM_IOC_GET_NAME, pick(8) ? (void *)&n : rand_ptr()), ALLOW(EBADF, ENOTTY, EFAULT));
		break;
	case 8:
		ret = ioctl(fd, SEALMEM_IOC_VIEW, pick(4) ? SEALMEM_FD_CLOEXEC : rnd());
		check("VIEW", ret, ALLOW(EBADF, ENOTTY, EINVAL, EMFILE));
		if (ret >= 0)
			close(ret);
		break;
	default:
		/* FILL_ENABLE on a file that already has a handler: EBUSY; on others we close the
		 * new handler at once, which leaves that file lazy without a handler. Only on
		 * F_RESIZE, so plain files stay plain. */
		if (fd == FD[F_PLAIN] || fd == FD[F_SEALED])
			fd = FD[F_LAZY];
		ret = ioctl(fd, SEALMEM_IOC_FILL_ENABLE, pick(4) ? SEALMEM_FD_NONBLOCK : rnd());
		check("FILL_ENABLE", ret, ALLOW(EBADF, ENOTTY, EINVAL, EPERM, EBUSY, EMFILE));
		if (ret >= 0)
			close(ret);
		break;
	}
}

static void fuzz_io(void)
{
	int fd = any_fd();
	size_t len = pick(4) ? rand_len() % (PS + 1) : rand_len() % (8 * PS + 1);
	off_t off = (off_t)(rand_off() & 0xffffff);
	char *buf = pick(8) ? GOOD : rand_ptr();
	struct iovec iov[2] = { { buf, len / 2 }, { GOOD, len - len / 2 } };
	/* A lazy file's holes may be poisoned (EIO) or wait; the fds are O_NONBLOCK-free. */
	const int *rd = ALLOW(EBADF, EINVAL, EFAULT, EIO, EAGAIN, EISDIR, EINTR);
	const int *wr = ALLOW(EBADF, EINVAL, EFAULT, EIO, EPERM, EFBIG, ENOSPC, EINTR, EAGAIN);

	if (fd == FD[F_SEALED] || fd == VIEWFD[F_SEALED] || fd == 0)
		fd = FD[pick(2)];
	switch ((sub = pick(9))) {
	case 0: check("pread", pread(fd, buf, len, off), rd); break;
	case 1: check("pwrite", pwrite(fd, buf, len, off), wr); break;
	case 2: check("preadv", preadv(fd, iov, 2, off), rd); break;
	case 3: check("pwritev", pwritev(fd, iov, 2, off), wr); break;
	case 4: check("lseek", lseek(fd, (off_t)rand_off(), (int)pick(6)), ALLOW(EBADF, EINVAL, ENXIO, ESPIPE)); break;
	case 5:
		/* One pipe per thread, drained after each splice (pipes are costly to create). */
		if (pipe_fd[0] < 0 && pipe2(pipe_fd, O_NONBLOCK))
			break;
		check("splice", splice(fd, &(loff_t){ off }, pipe_fd[1], NULL, len, SPLICE_F_NONBLOCK), ALLOW(EBADF, EINVAL, EFAULT, EIO, EAGAIN, EINTR));
		while (read(pipe_fd[0], splice_sink, sizeof(splice_sink)) > 0)
			;
		break;
	case 6:
		if (pipe_fd[0] < 0 && pipe2(pipe_fd, O_NONBLOCK))
			break;
		check("sendfile", sendfile(pipe_fd[1], fd, pick(8) ? &(off_t){ off } : NULL, len), ALLOW(EBADF, EINVAL, EFAULT, EIO, EAGAIN, EINTR, ESPIPE));
		while (read(pipe_fd[0], splice_sink, sizeof(splice_sink)) > 0)
			;
		break;
	default:
		check("read", read(fd, buf, len), rd);
		break;
	}
}

static void fuzz_fork(void)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return;
	pid = fork();
	if (pid == 0) {
		/* The child receives a VIEW fd by SCM_RIGHTS, reads through it and exits. */
		char b[64];
		int fd;

		/* The fork copied whatever fds the other threads held, maybe the only handler
		 * fd of a file made lazy a moment ago: reading that file's hole would wait for
		 * this very process. A fatal alarm bounds that self-deadlock (as it would
		 * with userfaultfd); the wait is killable. */
		alarm(2);
		fd = sm_recv_fd(sv[1]);
		if (fd < 0)
			_exit(0);
		(void)!pread(fd, b, sizeof(b), 0);
		_exit(0);
	}
	if (pid > 0) {
		(void)sm_send_fd(sv[0], VIEWFD[pick(NFILES)]);
		if (pick(4) == 0)
			kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		atomic_fetch_add(&OPS, 1);
	}
	close(sv[0]);
	close(sv[1]);
}

/*
 * A handler killed mid-wait: a child holds the only handler fd of a fresh lazy file and is
 * SIGKILLed while another child waits in read() on a hole; the waiter must get EIO promptly.
 */
static void fuzz_kill_handler(void)
{
	int fd = open("/dev/sealmem", O_RDWR | O_CLOEXEC), hfd, status;
	__u64 size = 4 * PS;
	pid_t holder, waiter;
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	if (fd < 0 || ioctl(fd, SEALMEM_IOC_SET_SIZE, &size)) {
		if (fd >= 0)
			close(fd);
		return;
	}
	hfd = ioctl(fd, SEALMEM_IOC_FILL_ENABLE, 0);
	if (hfd < 0) {
		check("FILL_ENABLE(fresh)", hfd, ALLOW(ENOMEM, EMFILE));
		close(fd);
		return;
	}
	holder = fork();
	if (holder == 0) {
		close(fd);
		pause(); /* holds the handler fd, serves nothing */
		_exit(0);
	}
	close(hfd);
	waiter = fork();
	if (waiter == 0) {
		char c;
		ssize_t n = pread(fd, &c, 1, PS * (rnd() % 4));

		/* Under injection, raising the request itself may fail: ENOMEM. */
		_exit(n == -1 && (errno == EIO || (INJECT && errno == ENOMEM)) ? 0 : 1);
	}
	nanosleep(&ts, NULL);
	if (holder > 0)
		kill(holder, SIGKILL);
	if (holder > 0)
		waitpid(holder, NULL, 0);
	if (waiter > 0) {
		/* Bounded: the waiter must be released by the handler's death, not by us. */
		for (int i = 0; i < 500; i++) {
			if (waitpid(waiter, &status, WNOHANG) == waiter)
				break;
			nanosleep(&ts, NULL);
			if (i == 499) {
				fail("killed handler", 0, 0, "a waiter was not released within 10 s");
				kill(waiter, SIGKILL);
				waitpid(waiter, &status, 0);
				status = 0;
			}
		}
		if (sm_ended(status) != SM_EXITED(0))
			fail("killed handler", status, 0, "the waiter did not get EIO");
	}
	close(fd);
	atomic_fetch_add(&OPS, 1);
}

/* The sealed file's bytes never change, through read() and through a mapping. */
static void check_sealed(void)
{
	char buf[SEALED_PAGES * PS], *p;

	ssize_t n = pread(VIEWFD[F_SEALED], buf, sizeof(buf), 0);

	if (n < 0)
		check("sealed pread", n, ALLOW(EINTR));
	else if (memcmp(buf, SEALED_CONTENT, n))
		fail("sealed read", n, 0, "the bytes of the sealed file changed");
	/* Short only when the copy-out itself failed to allocate (a stack page, under -i). */
	else if (n != (ssize_t)sizeof(buf) && !INJECT)
		fail("sealed read", n, 0, "short read of a resident sealed file");
	p = mmap(NULL, sizeof(buf), PROT_READ, MAP_SHARED, VIEWFD[F_SEALED], 0);
	if (p == MAP_FAILED)
		check("sealed mmap", -1, ALLOW(EINTR));
	else if (memcmp(p, SEALED_CONTENT, sizeof(buf)))
		fail("sealed map", 0, 0, "the mapped bytes of the sealed file changed");
	if (p != MAP_FAILED)
		munmap(p, sizeof(buf));
	atomic_fetch_add(&OPS, 2);
}

#define IMAGE_PAGES 8
static char *IMAGE_CONTENT; /* non-zero bytes */

/* Fills a lazy image's pages in a random order until all are filled or FILL_END came. */
struct image_filler {
	int hfd;
	unsigned char order[IMAGE_PAGES];
	pthread_t th;
};

static void *image_fill(void *arg)
{
	struct image_filler *f = arg;

	for (int i = 0; i < IMAGE_PAGES; i++) {
		size_t off = (size_t)f->order[i] * PS;
		struct sealmem_copy c = { .offset = off, .src = (uintptr_t)(IMAGE_CONTENT + off), .len = PS };
		int tries = 0;

		/* A handler retries ENOMEM (injected failures), or the page's readers wait on. */
		while (ioctl(f->hfd, SEALMEM_IOC_COPY, &c) && errno == ENOMEM && ++tries < 1000)
			;
		if (c.copy == -EINVAL)
			break; /* FILL_END came */
		if (c.copy != PS && c.copy != -ENOMEM)
			fail("image COPY", c.copy, 0, "a COPY into a hole of a lazy image failed");
	}
	return NULL;
}

static int zero_page(const char *p)
{
	for (size_t i = 0; i < PS; i++)
		if (p[i])
			return 0;
	return 1;
}

/*
 * The lazy sealed image under a race: a handler thread fills the pages of a write-sealed
 * lazy file in a random order while this thread reads them and, at a random moment, ends
 * lazy mode. A page read before FILL_END is its content; after it, its content or zeros;
 * and a page once read reads the same ever after (read() and a mapping).
 */
static void check_lazy_image(void)
{
	char first[IMAGE_PAGES * PS], again[IMAGE_PAGES * PS];
	__u32 seals = SEALMEM_SEAL_WRITE | SEALMEM_SEAL_SHRINK | SEALMEM_SEAL_GROW;
	__u64 size = IMAGE_PAGES * PS;
	struct image_filler f;
	int fd = open("/dev/sealmem", O_RDWR | O_CLOEXEC), seen[IMAGE_PAGES] = { 0 };
	int end_at = (int)pick(IMAGE_PAGES + 1), ended = 0;
	char *p;

	f.hfd = -1;
	if (fd < 0 || ioctl(fd, SEALMEM_IOC_SET_SIZE, &size) ||
	    (f.hfd = ioctl(fd, SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC)) < 0 ||
	    ioctl(fd, SEALMEM_IOC_ADD_SEALS, &seals)) {
		check("lazy image", -1, ALLOW(EMFILE, ENOMEM));
		goto out;
	}
	for (int i = 0; i < IMAGE_PAGES; i++)
		f.order[i] = (unsigned char)i;
	for (int i = IMAGE_PAGES - 1; i > 0; i--) {
		int j = (int)pick((unsigned long)i + 1);
		unsigned char t = f.order[i];

		f.order[i] = f.order[j];
		f.order[j] = t;
	}
	errno = pthread_create(&f.th, NULL, image_fill, &f);
	if (errno) {
		check("lazy image thread", -1, ALLOW(EAGAIN, ENOMEM));
		goto out;
	}
	for (int i = 0; i <= IMAGE_PAGES; i++) {
		if (i == end_at) {
			check("image FILL_END", ioctl(f.hfd, SEALMEM_IOC_FILL_END), ALLOW(ENOMEM));
			ended = 1;
		}
		if (i == IMAGE_PAGES)
			break;
		ssize_t n = pread(fd, first + (size_t)i * PS, PS, (off_t)i * PS);

		/*
		 * Under -i the copy-out itself may fail to allocate: the buffer is touched, but a
		 * fork by another thread makes it copy-on-write again (EFAULT or a short read).
		 */
		if (n < 0) {
			check("image pread", n, INJECT ? ALLOW(EINTR, EFAULT) : ALLOW(EINTR));
			continue;
		}
		if (n != (ssize_t)PS) {
			if (!INJECT)
				fail("image pread", n, 0, "short read of a lazy image page");
			continue;
		}
		seen[i] = 1;
		if (memcmp(first + (size_t)i * PS, IMAGE_CONTENT + (size_t)i * PS, PS) &&
		    !(ended && zero_page(first + (size_t)i * PS)))
			fail("lazy image", i, 0, ended ? "a page read after FILL_END is neither its content nor zeros"
						       : "a page read before FILL_END is not its content");
	}
	pthread_join(f.th, NULL);
	if (pread(fd, again, sizeof(again), 0) == (ssize_t)sizeof(again))
		for (int i = 0; i < IMAGE_PAGES; i++)
			if (seen[i] && memcmp(first + (size_t)i * PS, again + (size_t)i * PS, PS))
				fail("lazy image", i, 0, "a page of the sealed image changed after it was read");
	p = mmap(NULL, sizeof(again), PROT_READ, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED) {
		in_touch = 1;
		if (!sigsetjmp(jmp, 1)) {
			for (int i = 0; i < IMAGE_PAGES; i++)
				if (seen[i] && memcmp(first + (size_t)i * PS, p + (size_t)i * PS, PS))
					fail("lazy image", i, 0, "a mapped page of the sealed image differs from what was read");
		} else if (!INJECT) {
			fail("lazy image", 0, 0, "a signal reading the mapped image after FILL_END");
		}
		in_touch = 0;
		munmap(p, sizeof(again));
	}
out:
	if (f.hfd >= 0)
		close(f.hfd);
	if (fd >= 0)
		close(fd);
	atomic_fetch_add(&OPS, 1);
}

/* A fresh file's pages are zero (never stale kernel data). */
static void check_fresh(void)
{
	int fd = open("/dev/sealmem", O_RDWR | O_CLOEXEC);
	__u64 size = 4 * PS;
	char *p;

	if (fd < 0 || ioctl(fd, SEALMEM_IOC_SET_SIZE, &size)) {
		check("fresh file", -1, ALLOW(EMFILE, ENOMEM));
		if (fd >= 0)
			close(fd);
		return;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED) {
		for (size_t i = 0; i < size; i += 512)
			if (p[i])
				fail("fresh page", 0, 0, "a new page is not zero");
		munmap(p, size);
	}
	close(fd);
	atomic_fetch_add(&OPS, 1);
}

/*
 * One fuzzing thread. The mix favours cheap calls (ioctls, I/O) so that a run executes many
 * of them; the expensive ones (fork, killing a handler, fresh files, mappings) still come
 * often enough to happen thousands of times per run.
 */
static const char *const KIND[] = { "fork", "kill-handler", "check-sealed", "check-fresh", "mmap", "io", "ioctl", "lazy-image" };
#define NKIND 8
static atomic_long KIND_NS[NKIND], KIND_N[NKIND]; /* per process; printed with -v */
static atomic_long SUB_NS[3][10], SUB_N[3][10], SUB_MAX[3];

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void *worker(void *arg)
{
	int slot = (int)(uintptr_t)arg % SLOTS;

	rng = SEED * 2654435761UL + (uintptr_t)arg * 40503 + 1;
	while (!atomic_load(&STOP)) {
		unsigned long r = pick(1000);
		int k = r < 1 ? 0 : r < 2 ? 1 : r < 4 ? 2 : r < 6 ? 3 : r < 8 ? 7 : r < 20 ? 4 : r < 400 ? 5 : 6;

		/* fork and handler kills cost ~100 ms each under TCG: a quarter as often. */
		if (k < 2 && pick(4))
			k = 6;
		double t = now_ns();

		atomic_store(&SH->busy_since[slot], (long)t);
		switch (k) {
		case 0: fuzz_fork(); break;
		case 1: fuzz_kill_handler(); break;
		case 2: check_sealed(); break;
		case 3: check_fresh(); break;
		case 4: fuzz_mmap(); break;
		case 5: fuzz_io(); break;
		case 7: check_lazy_image(); break;
		default: fuzz_ioctl(); break;
		}
		atomic_store(&SH->busy_since[slot], 0);
		t = now_ns() - t;
		atomic_fetch_add(&KIND_NS[k], (long)t);
		atomic_fetch_add(&KIND_N[k], 1);
		if (k >= 4 && k <= 6) {
			int j = k == 4 ? fd_kind : sub;

			atomic_fetch_add(&SUB_NS[k - 4][j], (long)t);
			atomic_fetch_add(&SUB_N[k - 4][j], 1);
			if ((long)t > atomic_load(&SUB_MAX[k - 4]))
				atomic_store(&SUB_MAX[k - 4], (long)t);
		}
	}
	return NULL;
}

/* Serves the lazy file: random COPY / ZEROPAGE / POISON, sometimes bad arguments. */
static void *server(void *arg)
{
	(void)arg;
	rng = SEED ^ 0x5eed;
	while (!atomic_load(&STOP)) {
		struct pollfd p = { .fd = HFD, .events = POLLIN };
		struct sealmem_msg m[8];
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(HFD, m, sizeof(m));
		check("handler read", n, ALLOW(EAGAIN, EINTR));
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(m[0]); i++) {
			struct sealmem_copy c = { .offset = m[i].offset, .src = (__u64)(uintptr_t)GOOD, .len = PS,
						  .flags = pick(2) ? SEALMEM_FILL_SKIP_EXISTING : 0 };
			struct sealmem_fill f = { .offset = m[i].offset, .len = PS };
			const int *ok = ALLOW(EEXIST, EINVAL, ENOMEM, ENOSPC, EFAULT);

			switch (pick(10)) {
			case 0: check("POISON", ioctl(HFD, SEALMEM_IOC_POISON, &f), ok); break;
			case 1: check("ZEROPAGE", ioctl(HFD, SEALMEM_IOC_ZEROPAGE, &f), ok); break;
			case 2:
				c.len = rand_len();
				c.src = (__u64)(uintptr_t)rand_ptr();
				check("COPY(bad)", ioctl(HFD, SEALMEM_IOC_COPY, &c), ok);
				c = (struct sealmem_copy){ .offset = m[i].offset, .src = (__u64)(uintptr_t)GOOD, .len = PS };
				/* fall through: still serve the request */
			default: check("COPY", ioctl(HFD, SEALMEM_IOC_COPY, &c), ok); break;
			}
			/* A handler must retry a fill that failed for lack of memory, or its waiter
			 * waits on (as with userfaultfd). Injected failures make that common. */
			for (int tries = 0; tries < 100; tries++) {
				c = (struct sealmem_copy){ .offset = m[i].offset, .src = (__u64)(uintptr_t)GOOD,
							   .len = PS, .flags = SEALMEM_FILL_SKIP_EXISTING };
				if (!ioctl(HFD, SEALMEM_IOC_COPY, &c) || errno != ENOMEM)
					break;
			}
		}
		if (pick(50) == 0)
			check("WAKE", ioctl(HFD, SEALMEM_IOC_WAKE, &(struct sealmem_range){ rand_off(), rand_len() }), ALLOW(EINVAL, EFAULT));
	}
	return NULL;
}

/* ---- allocation-failure injection (failslab, fail_page_alloc) --------------------------- */

static const char *const FAULT_DIRS[] = { "/sys/kernel/debug/failslab", "/sys/kernel/debug/fail_page_alloc" };
#define INJECT_BUDGET 100000000L

static int put(const char *dir, const char *attr, const char *val)
{
	char path[256];
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok ? 0 : -1;
}

static long get_long(const char *dir, const char *attr)
{
	char path[256], buf[64] = "";
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
		buf[0] = 0;
	if (fd >= 0)
		close(fd);
	return strtol(buf, NULL, 10);
}

/*
 * Fails PERCENT of the allocations made with sealmem.ko on the call stack: the stack-trace
 * filter of both fault attributes is set to the module's address range.
 */
static int inject_start(int percent)
{
	char line[256], name[64], val[64];
	unsigned long long size = 0, addr = 0;
	FILE *f = fopen("/proc/modules", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %llu %*s %*s %*s %llx", name, &size, &addr) == 3 && !strcmp(name, "sealmem"))
			break;
	if (f)
		fclose(f);
	if (!addr || !size)
		return -1;
	for (int i = 0; i < 2; i++) {
		const char *d = FAULT_DIRS[i];

		snprintf(val, sizeof(val), "%llu", addr);
		if (put(d, "require-start", val))
			return -1;
		snprintf(val, sizeof(val), "%llu", addr + size);
		put(d, "require-end", val);
		put(d, "stacktrace-depth", "32");
		put(d, "ignore-gfp-wait", "N");
		/* Only tasks with /proc/PID/make-it-fail set (and their children): the stack
		 * filter walks the stack of every allocation of every task it applies to. */
		put(d, "task-filter", "Y");
		put(d, "verbose", "0");
		put(d, "interval", "1");
		snprintf(val, sizeof(val), "%ld", INJECT_BUDGET);
		put(d, "times", val);
		snprintf(val, sizeof(val), "%d", percent);
		put(d, "probability", val);
	}
	put(FAULT_DIRS[1], "ignore-gfp-highmem", "N");
	put(FAULT_DIRS[1], "min-order", "0");
	return 0;
}

/* Stops injecting; returns how many failures were injected since inject_start(). */
static long inject_stop(void)
{
	long injected = 0;

	for (int i = 0; i < 2; i++) {
		put(FAULT_DIRS[i], "probability", "0");
		injected += INJECT_BUDGET - get_long(FAULT_DIRS[i], "times");
	}
	return injected;
}

/* -I PERCENT: switch injection on (PERCENT > 0) or off (0, printing the count), and exit. */
static int inject_control(int percent)
{
	if (percent > 0) {
		if (inject_start(percent)) {
			fprintf(stderr, "cannot set up fault injection (is sealmem loaded? debugfs failslab/fail_page_alloc?)\n");
			return 2;
		}
		printf("sealmem_fuzz: failing %d%% of sealmem's allocations\n", percent);
		return 0;
	}
	printf("sealmem_fuzz: injected %ld allocation failures into sealmem's call paths\n", inject_stop());
	return 0;
}

static void print_file(const char *prefix, const char *path)
{
	char buf[4096];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (n < 0)
		printf("%s(%s: %s)\n", prefix, path, strerror(errno));
	else
		printf("%s%.*s%s", prefix, (int)n, buf, n && buf[n - 1] == '\n' ? "" : "\n");
	if (fd >= 0)
		close(fd);
}

/* Prints the kernel stack of every fuzzer task and the lazy file's state: what a stall waits on. */
static void dump_stacks(void)
{
	char path[160], task[128];
	FILE *ls = popen("ls -d /proc/[0-9]*/task/[0-9]* 2>/dev/null", "r");

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", HFD);
	print_file("sealmem_fuzz: stall: handler fdinfo:\n", path);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", FD[F_LAZY]);
	print_file("sealmem_fuzz: stall: lazy file fdinfo:\n", path);
	while (ls && fgets(task, sizeof(task), ls)) {
		char comm[64] = "";
		int fd;

		task[strcspn(task, "\n")] = 0;
		snprintf(path, sizeof(path), "%s/comm", task);
		fd = open(path, O_RDONLY);
		if (fd >= 0) {
			ssize_t n = read(fd, comm, sizeof(comm) - 1);

			comm[n > 0 ? n - 1 : 0] = 0;
			close(fd);
		}
		if (strcmp(comm, "sealmem_fuzz") && strncmp(comm, "sealmem_", 8))
			continue;
		printf("sealmem_fuzz: stall: task %s (%s)\n", task, comm);
		snprintf(path, sizeof(path), "%s/wchan", task);
		print_file("  wchan: ", path);
		snprintf(path, sizeof(path), "%s/stack", task);
		print_file("", path);
	}
	if (ls)
		pclose(ls);
}

/*
 * The timekeeper: ends the run after `secs`, or early on the first failure. It also watches
 * for stalls: an operation running for 5 s gets every task's kernel stack printed, and one
 * running for 10 s is a failure (the handler serves every request at once; every wait in
 * the fuzzer is bounded).
 */
static void timekeeper(int secs)
{
	double t0 = now_ns();
	int dumped = 0;

	while (now_ns() - t0 < secs * 1e9 && !atomic_load(&FAILS)) {
		double worst = 0, t = now_ns();

		sleep(1);
		for (int i = 0; i < SLOTS; i++) {
			long b = atomic_load(&SH->busy_since[i]);

			if (b && t - b > worst)
				worst = t - b;
		}
		if (worst > 5e9 && !dumped) {
			printf("sealmem_fuzz: stall: an operation has run for %.1f s; kernel stacks:\n", worst / 1e9);
			dump_stacks();
			dumped = 1;
		}
		if (worst > 10e9)
			fail("stall", 0, 0, "an operation ran for more than 10 s");
		if (worst < 1e9)
			dumped = 0;
	}
	atomic_store(&STOP, 1);
	/* Workers may wait on the lazy file's holes: end lazy mode so they all continue. */
	check("FILL_END", ioctl(HFD, SEALMEM_IOC_FILL_END), ALLOW(EINVAL));
}

/* The shared files: plain, resizable, sealed with known content, lazy with a handler. */
static int setup_files(__u64 size)
{
	__u32 seals = SEALMEM_SEAL_WRITE | SEALMEM_SEAL_SHRINK | SEALMEM_SEAL_GROW | SEALMEM_SEAL_SEAL;
	int ok = 1;

	for (int i = 0; i < NFILES; i++) {
		FD[i] = open("/dev/sealmem", O_RDWR | O_CLOEXEC);
		ok = ok && FD[i] >= 0 && !ioctl(FD[i], SEALMEM_IOC_SET_SIZE, &size);
	}
	ok = ok && pwrite(FD[F_SEALED], SEALED_CONTENT, size, 0) == (ssize_t)size &&
	     !ioctl(FD[F_SEALED], SEALMEM_IOC_ADD_SEALS, &seals);
	HFD = ok ? ioctl(FD[F_LAZY], SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC | SEALMEM_FD_NONBLOCK) : -1;
	for (int i = 0; i < NFILES; i++)
		VIEWFD[i] = ok ? ioctl(FD[i], SEALMEM_IOC_VIEW, SEALMEM_FD_CLOEXEC) : -1;
	ok = ok && HFD >= 0 && VIEWFD[NFILES - 1] >= 0 && VIEWFD[0] >= 0 && VIEWFD[1] >= 0 && VIEWFD[2] >= 0;
	if (ok)
		return 0;
	for (int i = 0; i < NFILES; i++) {
		if (FD[i] >= 0)
			close(FD[i]);
		if (VIEWFD[i] >= 0)
			close(VIEWFD[i]);
	}
	if (HFD >= 0)
		close(HFD);
	return -1;
}

static void print_kinds(int proc)
{
	for (int k = 0; k < NKIND; k++)
		printf("sealmem_fuzz: process %d: %-12s %8ld runs, %8.1f us each\n", proc, KIND[k],
		       atomic_load(&KIND_N[k]), atomic_load(&KIND_N[k]) ? atomic_load(&KIND_NS[k]) / 1e3 / atomic_load(&KIND_N[k]) : 0.0);
	for (int k = 0; k < 3; k++) {
		printf("sealmem_fuzz: process %d: %s %s (us each):", proc, KIND[4 + k], k ? "cases" : "by file");
		for (int i = 0; i < 10; i++)
			printf(" %.0f", atomic_load(&SUB_N[k][i]) ? atomic_load(&SUB_NS[k][i]) / 1e3 / atomic_load(&SUB_N[k][i]) : 0.0);
		printf(" (max %.0f)", atomic_load(&SUB_MAX[k]) / 1e3);
		printf("\n");
	}
}

/* The fuzzing threads of one process (the first process also serves the lazy file). */
static void fuzz_process(int proc, int threads, int serve)
{
	pthread_t th[16], srv;

	if (serve)
		pthread_create(&srv, NULL, server, NULL);
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(proc * 16 + i + 1));
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	if (serve)
		pthread_join(srv, NULL);
}

int main(int argc, char **argv)
{
	int opt, threads = 2, procs = 2, secs = 10;
	pid_t kids[16];
	struct sigaction sa = { .sa_handler = on_fault };
	__u64 size = SEALED_PAGES * PS;
	int status, rc = 0, verbose = 0;

	SEED = (unsigned long)time(NULL) ^ (unsigned long)getpid();
	while ((opt = getopt(argc, argv, "s:t:j:p:i:I:v")) != -1) {
		if (opt == 'I')
			return inject_control(atoi(optarg));
		if (opt == 'i')
			INJECT = atoi(optarg);
		else if (opt == 'v')
			verbose = 1;
		else if (opt == 's')
			SEED = strtoul(optarg, NULL, 0);
		else if (opt == 't')
			secs = atoi(optarg);
		else if (opt == 'j')
			threads = atoi(optarg) > 16 ? 16 : atoi(optarg) < 1 ? 1 : atoi(optarg);
		else if (opt == 'p')
			procs = atoi(optarg) > 16 ? 16 : atoi(optarg) < 1 ? 1 : atoi(optarg);
	}
	SH = mmap(NULL, sizeof(*SH), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (SH == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("sealmem_fuzz: seed %lu, %d s, %d processes x %d threads%s (reproduce: sealmem_fuzz -s %lu -t %d -p %d -j %d)\n",
	       SEED, secs, procs, threads, INJECT ? ", injected allocation failures" : "", SEED, secs, procs, threads);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Larger than any length fuzz_io uses from its first page, so a "good" buffer is good. */
	GOOD = mmap(NULL, 16 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	SEALED_CONTENT = malloc(size);
	for (size_t i = 0; i < size; i++)
		SEALED_CONTENT[i] = (char)(i * 7 + 3);
	IMAGE_CONTENT = malloc(IMAGE_PAGES * PS);
	for (size_t i = 0; i < IMAGE_PAGES * PS; i++)
		IMAGE_CONTENT[i] = (char)((i * 13 + 5) | 1);
	/* Under injection, setting up may itself fail (ENOMEM, short writes): retry. */
	for (int tries = 0; setup_files(size); tries++) {
		if (!INJECT || tries == 1000) {
			perror("setting up the files");
			return 2;
		}
	}
	if (verbose) {
		double t = now_ns();
		__u64 v;

		for (int i = 0; i < 1000; i++)
			getppid();
		printf("sealmem_fuzz: calibration: getppid %.1f us", (now_ns() - t) / 1e3 / 1000);
		t = now_ns();
		for (int i = 0; i < 1000; i++)
			ioctl(FD[F_PLAIN], SEALMEM_IOC_GET_SIZE, &v);
		printf(", GET_SIZE %.1f us", (now_ns() - t) / 1e3 / 1000);
		t = now_ns();
		for (int i = 0; i < 1000; i++)
			(void)!pread(FD[F_SEALED], GOOD, 64, 0);
		printf(", pread 64 B %.1f us per call\n", (now_ns() - t) / 1e3 / 1000);
	}
	/* Every process shares the same files (and the sealed content to check against). */
	for (int p = 1; p < procs; p++) {
		kids[p] = fork();
		if (kids[p] == 0) {
			fuzz_process(p, threads, 0);
			if (verbose)
				print_kinds(p);
			_exit(0);
		}
	}
	if (fork() == 0) {
		timekeeper(secs);
		_exit(0);
	}
	fuzz_process(0, threads, 1);
	if (verbose)
		print_kinds(0);
	for (int p = 1; p < procs; p++)
		if (kids[p] > 0 && (waitpid(kids[p], &status, 0) != kids[p] || sm_ended(status) != SM_EXITED(0)))
			fail("fuzzing process", status, 0, "a fuzzing process died");
	while (wait(NULL) > 0)
		;
	check_sealed();
	for (int i = 0; i < NFILES; i++) {
		close(VIEWFD[i]);
		close(FD[i]);
	}
	close(HFD);
	printf("sealmem_fuzz: %ld operations, %ld failures (seed %lu)\n", atomic_load(&OPS), atomic_load(&FAILS), SEED);
	rc = atomic_load(&FAILS) ? 1 : 0;
	return rc;
}
