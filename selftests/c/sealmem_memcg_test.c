// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem memory cgroup tests: what a task makes the module allocate is charged to that
 * task's memory cgroup, given back when everything is closed, and bounded by memory.max.
 * Each test is named after the rule it checks.
 *
 * - pages_are_charged_to_whoever_makes_them
 * - closing_everything_returns_the_charge
 * - a_low_memory_max_fails_cleanly
 *
 * The module allocates pages with GFP_KERNEL_ACCOUNT (on a fault, a write, and a handler's
 * COPY: charged to the handler), its XArray nodes likewise, the per-file inode from a
 * SLAB_ACCOUNT cache, and its file object and request nodes with GFP_KERNEL_ACCOUNT. The
 * module's own `pages` gauge drops when a page leaves a file's store, not when the page is
 * freed: only the memory cgroup sees a page reference the module leaks.
 *
 * Each test mounts cgroup2 if it is not mounted (on a private directory under /tmp),
 * enables the memory controller in the root if it is not enabled, and makes a group of its
 * own with child groups. The measured work runs in forked children, each moved into its
 * child group (its pid written to cgroup.procs) before it allocates anything measured, and
 * driven by one-letter commands over a pipe; each command is answered with a report.
 * The parent measures memory.current between commands, while the children wait.
 *
 * Reading memory.current exactly: the kernel charges a group in batches of 64 pages and
 * keeps the surplus in a per-CPU cache, counted in memory.current, so a bare reading is off
 * by up to 64 pages per CPU; and a CPU's LRU batch keeps up to 31 anonymous pages of an
 * exited process charged until that CPU drains it. Before each reading the parent writes
 * memory.reclaim (which ends with lru_add_drain_all() when nothing is left to reclaim), then
 * memory.high = 0 and "max" once from every CPU (which drains the charge caches of the
 * group, on the writing CPU at once). Both reclaim what is reclaimable (dentries and
 * inodes the children's lookups left; sealmem's pages are on no LRU and stay). No child of
 * the group runs meanwhile.
 *
 * Under a low memory.max, the write() is made by a process with oom_score_adj -1000: the
 * memcg OOM killer finds nothing to kill, so the charge fails and the write must return
 * ENOMEM or a short count (a killable writer would be killed instead, as the faulter is).
 *
 * Every wait has a deadline. The groups are removed at the end (by the harness's parent
 * process, also after a failed assertion), the root's subtree_control is restored and a
 * mount made here is undone.
 */
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "sealmem_lib.h"

/* Pages each measured step makes: 4 MiB. */
#define N 1024UL
#define NB (N * SM_PS)
#define KIB 1024LL

/* A step making N pages may grow its group by N pages less this (nothing else shrinks it)... */
#define GROW_SLACK (64 * KIB)
/* ...and by at most N pages plus this (file object, inode, XArray nodes, VMA, page tables). */
#define GROW_OVERHEAD (1024 * KIB)
/*
 * What the consumer's group may grow by while the handler fills its pages (its page tables),
 * and the opener's while another process makes the pages of its file.
 */
#define OTHER_MAX (256 * KIB)
/*
 * What a group may keep above its empty baseline once everything is gone (measured: 0 or
 * 4 KiB, a page of slab charge whose bytes the per-CPU object caches split between them).
 */
#define BACK_TOL (32 * KIB)
/* memory.max above the baseline for the low-memory test. */
#define LOW_HEADROOM (256 * KIB)

/* Deadlines, seconds (the debug kernel under TCG is slow). */
#define STEP_SECS 120
#define SETTLE_SECS 10
#define EXIT_SECS 30

/* ---- small helpers -------------------------------------------------------------------- */

/* Writes s to path; 0 or -errno. */
static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	if (n != (ssize_t)strlen(s))
		ret = n < 0 ? -errno : -EIO;
	close(fd);
	return ret;
}

/* Reads path into buf (NUL-terminated); its length or -errno. */
static ssize_t read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

static int cg_write(const char *cg, const char *file, const char *s)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	return write_str(path, s);
}

/* A one-number cgroup file (memory.current, ...); -1 on error. */
static long long cg_num(const char *cg, const char *file)
{
	char path[512], buf[64];

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	if (read_str(path, buf, sizeof(buf)) <= 0)
		return -1;
	return strtoll(buf, NULL, 10);
}

/* The value of `key` in a flat-keyed cgroup file (memory.events, cgroup.events); -1 if none. */
static long long cg_key(const char *cg, const char *file, const char *key)
{
	char path[512], buf[8192], *p;
	size_t kl = strlen(key);

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	if (read_str(path, buf, sizeof(buf)) <= 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == ' ')
			return strtoll(p + kl + 1, NULL, 10);
	return -1;
}

/*
 * Drains what per-CPU caches hold of the group (see the top comment): memory.reclaim ends
 * with lru_add_drain_all(), which frees the pages of exited processes that a CPU's LRU
 * batch still holds; memory.high below the usage drains the per-CPU charge caches.
 */
static void cg_drain(const char *cg)
{
	cpu_set_t old, one;
	int cpu;

	/*
	 * Fails with EAGAIN once nothing more can be reclaimed, after the drain; swappiness=0:
	 * on a kernel with swap, the children's own anonymous memory stays where it is.
	 */
	cg_write(cg, "memory.reclaim", "1G swappiness=0");
	if (sched_getaffinity(0, sizeof(old), &old))
		return;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &old))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			continue;
		cg_write(cg, "memory.high", "0");
		cg_write(cg, "memory.high", "max");
	}
	sched_setaffinity(0, sizeof(old), &old);
	sm_msleep(20);
}

/* memory.current of the group with its per-CPU caches drained. */
static long long cg_settled(const char *cg)
{
	cg_drain(cg);
	return cg_num(cg, "memory.current");
}

/*
 * Waits until memory.current of the (empty) group is at most `limit`, draining between
 * readings (slab objects freed after an RCU grace period may lag); returns the last reading.
 */
static long long cg_wait_back(const char *cg, long long limit, double timeout_s, double *took)
{
	double t0 = sm_now();
	long long v;

	for (;;) {
		v = cg_settled(cg);
		if ((v >= 0 && v <= limit) || sm_now() - t0 >= timeout_s)
			break;
		sm_msleep(100);
	}
	*took = sm_now() - t0;
	return v;
}

/* A sealmem debugfs gauge once it equals `want`, or its value after timeout_s. */
static long long gauge_wait(const char *name, long long want, double timeout_s)
{
	double t0 = sm_now();
	long long v;

	while ((v = sm_counter(name)) != want && sm_now() - t0 < timeout_s)
		sm_msleep(50);
	return v;
}

/* ---- child processes driven over pipes ------------------------------------------------ */

/* What a child answers to each command. v[0]: 0, or a negative errno / failure code. */
struct rep {
	long long v[4];
};

struct kid {
	pid_t pid;
	int to, from;	/* the parent's ends of the command and report pipes */
	int ended;	/* sm_ended() of its status once reaped, else -1 */
};

typedef int (*kid_fn)(int in, int out, int sock);

/* Exit codes of a child that did not get to run its function. */
#define KID_ORPHAN 90
#define KID_JOIN 91

/*
 * Forks a child that closes every other fd (but in/out and `sock`), dies with the test
 * process, moves itself into the cgroup `cg` and runs fn; its exit status is fn's result.
 */
static int kid_start(struct kid *k, const char *cg, kid_fn fn, int sock)
{
	int down[2], up[2];
	pid_t parent = getpid();

	k->pid = -1;
	k->to = k->from = -1;
	k->ended = -1;
	if (pipe(down))
		return -1;
	if (pipe(up)) {
		close(down[0]);
		close(down[1]);
		return -1;
	}
	k->pid = fork();
	if (k->pid == 0) {
		char pid[32];
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(KID_ORPHAN);
		for (fd = 3; fd < 1024; fd++)
			if (fd != down[0] && fd != up[1] && fd != sock)
				close(fd);
		snprintf(pid, sizeof(pid), "%d\n", getpid());
		if (cg && cg_write(cg, "cgroup.procs", pid))
			_exit(KID_JOIN);
		_exit(fn(down[0], up[1], sock));
	}
	close(down[0]);
	close(up[1]);
	if (k->pid < 0) {
		close(down[1]);
		close(up[0]);
		return -1;
	}
	k->to = down[1];
	k->from = up[0];
	return 0;
}

/* Sends command c; 0 or -1. */
static int kid_cmd(struct kid *k, char c)
{
	return write(k->to, &c, 1) == 1 ? 0 : -1;
}

/* Reads the child's next report within timeout_s; 0, or -1 (timeout, EOF: the child died). */
static int kid_rep(struct kid *k, struct rep *r, double timeout_s)
{
	size_t got = 0;
	double t0 = sm_now();

	memset(r, 0, sizeof(*r));
	while (got < sizeof(*r)) {
		struct pollfd p = { .fd = k->from, .events = POLLIN };
		int left = (int)((timeout_s - (sm_now() - t0)) * 1000);
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left) != 1)
			return -1;
		n = read(k->from, (char *)r + got, sizeof(*r) - got);
		if (n <= 0)
			return -1;
		got += n;
	}
	return 0;
}

/* Sends c and waits for its report. */
static int kid_do(struct kid *k, char c, struct rep *r, double timeout_s)
{
	return kid_cmd(k, c) ? -1 : kid_rep(k, r, timeout_s);
}

/*
 * Tells the child to leave (EOF on its commands), or kills it with `sig` first if sig != 0,
 * and reaps it within timeout_s (SIGKILL after that). Returns sm_ended() of its status;
 * *timed_out is set if it had to be killed.
 */
static int kid_end(struct kid *k, int sig, double timeout_s, int *timed_out)
{
	double t0 = sm_now();
	int status = 0;

	if (timed_out)
		*timed_out = 0;
	if (k->pid <= 0)
		return k->ended;
	if (sig)
		kill(k->pid, sig);
	if (k->to >= 0)
		close(k->to);
	k->to = -1;
	for (;;) {
		pid_t r = waitpid(k->pid, &status, WNOHANG);

		if (r == k->pid)
			break;
		if (r < 0 && errno != EINTR) {
			status = -1;
			break;
		}
		if (sm_now() - t0 >= timeout_s) {
			if (timed_out)
				*timed_out = 1;
			kill(k->pid, SIGKILL);
			waitpid(k->pid, &status, 0);
			break;
		}
		sm_msleep(5);
	}
	if (k->from >= 0)
		close(k->from);
	k->from = -1;
	k->pid = 0;
	k->ended = status == -1 ? -1 : sm_ended(status);
	return k->ended;
}

/* The child side: the next command, or 0 at EOF. */
static char next_cmd(int in)
{
	char c;

	return read(in, &c, 1) == 1 ? c : 0;
}

static void report(int out, long long a, long long b, long long c, long long d)
{
	struct rep r = { { a, b, c, d } };

	if (write(out, &r, sizeof(r)) != sizeof(r))
		_exit(80);
}

/* An anonymous buffer of NB bytes holding sm_pattern(seed), every page touched. */
static char *pattern_buf(unsigned int seed)
{
	char *p = mmap(NULL, NB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	sm_pattern(p, NB, seed, 0);
	return p;
}

/* ---- the children --------------------------------------------------------------------- */

/*
 * The maker: makes pages. Commands:
 *   'R'  receives the file to use over `sock` (else 'f' makes its own)        -> {0}
 *   'f'  a new file of 2N pages (unless received), mapped shared; write-faults
 *        pages [0, N)                                                          -> {0, pages}
 *   'w'  pwrite()s N pages at [N, 2N)                                          -> {0, pages, bytes}
 *   'p'  PUNCH_HOLE [0, N) (still mapped)                                       -> {0, pages}
 *   'c'  munmap and close                                                      -> {0}
 * Failures answer {-errno, step}.
 */
static int maker(int in, int out, int sock)
{
	char *src = pattern_buf(1), *p = MAP_FAILED;
	long long err;
	int fd = -1;
	char c;

	if (!src)
		return 70;
	report(out, 0, 0, 0, 0);	/* ready: everything it needs is allocated */
	while ((c = next_cmd(in))) {
		switch (c) {
		case 'R':
			fd = sm_recv_fd(sock);
			report(out, fd < 0 ? -EBADF : 0, 0, 0, 0);
			break;
		case 'f':
			if (fd < 0 && ((fd = sm_new()) < 0 || sm_set_size(fd, 2 * NB))) {
				report(out, -errno, 1, 0, 0);
				break;
			}
			p = mmap(NULL, NB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (p == MAP_FAILED) {
				report(out, -errno, 2, 0, 0);
				break;
			}
			for (unsigned long i = 0; i < N; i++)
				p[i * SM_PS + (i % 64)] = (char)(i | 1);
			report(out, 0, sm_pages(fd), 0, 0);
			break;
		case 'w': {
			size_t done = 0;

			while (done < NB) {
				ssize_t n = pwrite(fd, src + done, NB - done, NB + done);

				if (n <= 0)
					break;
				done += n;
			}
			err = done == NB ? 0 : -errno;
			report(out, err, sm_pages(fd), (long long)done, 0);
			break;
		}
		case 'p':
			err = sm_punch(fd, 0, NB) ? -errno : 0;
			report(out, err, sm_pages(fd), 0, 0);
			break;
		case 'c':
			if (p != MAP_FAILED)
				munmap(p, NB);
			p = MAP_FAILED;
			if (fd >= 0)
				close(fd);
			fd = -1;
			report(out, 0, 0, 0, 0);
			break;
		default:
			report(out, -EINVAL, 0, 0, 0);
		}
	}
	return 0;
}

/*
 * The opener: makes a file for another process to fill. Commands:
 *   'o'  a new file of 2N pages, sent over `sock` -> {0}
 *   'c'  closes it                                -> {0}
 */
static int opener(int in, int out, int sock)
{
	int fd = -1;
	char c;

	report(out, 0, 0, 0, 0);
	while ((c = next_cmd(in))) {
		switch (c) {
		case 'o':
			fd = sm_new();
			if (fd < 0 || sm_set_size(fd, 2 * NB) || sm_send_fd(sock, fd)) {
				report(out, -errno, 1, 0, 0);
				break;
			}
			report(out, 0, 0, 0, 0);
			break;
		case 'c':
			if (fd >= 0)
				close(fd);
			fd = -1;
			report(out, 0, 0, 0, 0);
			break;
		default:
			report(out, -EINVAL, 0, 0, 0);
		}
	}
	return 0;
}

/*
 * The handler: its own lazy files, filled with COPY. Commands:
 *   'o'  a new file of N pages, FILL_ENABLE, a VIEW fd sent over `sock`         -> {0}
 *   's'  serves requests until all N pages are filled (one COPY per request)   -> {0, filled, pages}
 *   'P'  prefetch: a second lazy file of N pages, filled by COPYs, no consumer -> {0, bytes, pages}
 *   'c'  closes everything                                                     -> {0}
 */
static int handler(int in, int out, int sock)
{
	char *src = pattern_buf(2);
	int fd = -1, hfd = -1, fd2 = -1, hfd2 = -1;
	char c;

	if (!src)
		return 70;
	report(out, 0, 0, 0, 0);
	while ((c = next_cmd(in))) {
		switch (c) {
		case 'o': {
			int view;

			fd = sm_new();
			if (fd < 0 || sm_set_size(fd, NB)) {
				report(out, -errno, 1, 0, 0);
				break;
			}
			hfd = ioctl(fd, SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC);
			if (hfd < 0) {
				report(out, -errno, 2, 0, 0);
				break;
			}
			view = sm_view(fd, SEALMEM_FD_CLOEXEC);
			if (view < 0 || sm_send_fd(sock, view)) {
				report(out, -errno, 3, 0, 0);
				break;
			}
			close(view);
			report(out, 0, 0, 0, 0);
			break;
		}
		case 's': {
			unsigned long filled = 0;
			double t0 = sm_now();
			long long err = 0;

			while (filled < N && !err) {
				struct pollfd pf = { .fd = hfd, .events = POLLIN };
				struct sealmem_msg m[32];
				ssize_t n;

				if (sm_now() - t0 > STEP_SECS) {
					err = -ETIMEDOUT;
					break;
				}
				if (poll(&pf, 1, 1000) != 1)
					continue;
				n = read(hfd, m, sizeof(m));
				if (n <= 0) {
					err = n < 0 ? -errno : -EPIPE;
					break;
				}
				for (size_t i = 0; i < n / sizeof(m[0]); i++) {
					struct sealmem_copy cp = { .offset = m[i].offset, .len = SM_PS,
								   .src = (__u64)(uintptr_t)(src + m[i].offset) };

					errno = 0;
					if (m[i].offset >= NB || ioctl(hfd, SEALMEM_IOC_COPY, &cp) || cp.copy != (__s64)SM_PS) {
						err = errno ? -errno : -EPROTO;
						break;
					}
					filled++;
				}
			}
			report(out, err, (long long)filled, sm_pages(fd), 0);
			break;
		}
		case 'P': {
			size_t done = 0;
			long long err = 0;

			fd2 = sm_new();
			if (fd2 < 0 || sm_set_size(fd2, NB)) {
				report(out, -errno, 1, 0, 0);
				break;
			}
			hfd2 = ioctl(fd2, SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC);
			if (hfd2 < 0) {
				report(out, -errno, 2, 0, 0);
				break;
			}
			/* Four COPYs of 1 MiB. */
			while (done < NB && !err) {
				struct sealmem_copy cp = { .offset = done, .len = NB / 4,
							   .src = (__u64)(uintptr_t)(src + done) };

				errno = 0;
				if (ioctl(hfd2, SEALMEM_IOC_COPY, &cp) || cp.copy != (__s64)(NB / 4))
					err = errno ? -errno : -EPROTO;
				else
					done += NB / 4;
			}
			report(out, err, (long long)done, sm_pages(fd2), 0);
			break;
		}
		case 'c':
			if (hfd2 >= 0)
				close(hfd2);
			if (fd2 >= 0)
				close(fd2);
			if (hfd >= 0)
				close(hfd);
			if (fd >= 0)
				close(fd);
			fd = hfd = fd2 = hfd2 = -1;
			report(out, 0, 0, 0, 0);
			break;
		default:
			report(out, -EINVAL, 0, 0, 0);
		}
	}
	return 0;
}

/*
 * The consumer: reads a lazy file it did not make. Commands:
 *   'r'  receives a VIEW fd over `sock`, maps it read-only and reads every page (each a
 *        fault the handler serves), checking the bytes -> {0, bad pages, pages}
 *   'c'  munmap and close                              -> {0}
 */
static int consumer(int in, int out, int sock)
{
	char *want = malloc(SM_PS), *p = MAP_FAILED;
	int view = -1;
	char c;

	if (!want)
		return 70;
	memset(want, 0, SM_PS);
	report(out, 0, 0, 0, 0);
	while ((c = next_cmd(in))) {
		switch (c) {
		case 'r': {
			long long bad = 0;

			view = sm_recv_fd(sock);
			if (view < 0) {
				report(out, -EBADF, 1, 0, 0);
				break;
			}
			p = mmap(NULL, NB, PROT_READ, MAP_SHARED, view, 0);
			if (p == MAP_FAILED) {
				report(out, -errno, 2, 0, 0);
				break;
			}
			for (unsigned long i = 0; i < N; i++) {
				sm_pattern(want, SM_PS, 2, i * SM_PS);
				if (memcmp(p + i * SM_PS, want, SM_PS))
					bad++;
			}
			report(out, 0, bad, sm_pages(view), 0);
			break;
		}
		case 'c':
			if (p != MAP_FAILED)
				munmap(p, NB);
			p = MAP_FAILED;
			if (view >= 0)
				close(view);
			view = -1;
			report(out, 0, 0, 0, 0);
			break;
		default:
			report(out, -EINVAL, 0, 0, 0);
		}
	}
	return 0;
}

/*
 * The writer, which the OOM killer may not choose (oom_score_adj -1000): its allocations
 * past memory.max fail instead. Commands:
 *   'W'  write()s 4 MiB into a new file -> {write's result, its errno}
 *   'V'  (once memory.max is lifted) the file's pages, and the bytes of the written part
 *        that read back wrong; closes the file -> {0, pages, bad bytes}
 */
static int writer(int in, int out, int sock)
{
	char *src = pattern_buf(3), *back;
	ssize_t n = 0;
	int fd = -1;
	char c;

	(void)sock;
	back = mmap(NULL, NB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!src || back == MAP_FAILED || write_str("/proc/self/oom_score_adj", "-1000"))
		return 70;
	memset(back, 0, NB);
	report(out, 0, 0, 0, 0);
	while ((c = next_cmd(in))) {
		long long pages, bad = 0;

		switch (c) {
		case 'W':
			fd = sm_new();
			if (fd < 0) {
				report(out, -2, errno, 0, 0);
				break;
			}
			n = write(fd, src, NB);
			report(out, n, n < 0 ? errno : 0, 0, 0);
			break;
		case 'V':
			pages = sm_pages(fd);
			if (n > 0) {
				if (pread(fd, back, n, 0) != n)
					bad = -1;
				else
					for (ssize_t i = 0; i < n; i++)
						bad += back[i] != src[i];
			}
			close(fd);
			fd = -1;
			report(out, 0, pages, bad, 0);
			break;
		default:
			report(out, -EINVAL, 0, 0, 0);
		}
	}
	return 0;
}

/*
 * The faulter: write-faults 4 MiB of a new shared mapping in a group that cannot hold it.
 * Command 'F': never answers unless every page could be touched ({0, N}).
 */
static int faulter(int in, int out, int sock)
{
	char *p;
	int fd;

	(void)sock;
	report(out, 0, 0, 0, 0);
	if (next_cmd(in) != 'F')
		return 0;
	fd = sm_new();
	if (fd < 0 || sm_set_size(fd, NB))
		return 71;
	p = mmap(NULL, NB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 72;
	for (unsigned long i = 0; i < N; i++)
		p[i * SM_PS] = 1;
	report(out, 0, N, 0, 0);
	munmap(p, NB);
	close(fd);
	return 0;
}

/* ---- the fixture: cgroup2, the memory controller, a group of ours --------------------- */

#define NGROUPS 3

FIXTURE(memcg)
{
	char mnt[256];		/* where cgroup2 is mounted */
	int mounted;		/* we mounted it (on a directory we made) */
	int enabled;		/* we added "memory" to the root's cgroup.subtree_control */
	char top[320];		/* our group: mnt/sealmem-memcg.PID (memory enabled below it) */
	int made_top;
	char g[NGROUPS][400];	/* its child groups top/g0.. */
	int made[NGROUPS];
	long long files0, pages0;	/* the module's gauges before the test */
};

FIXTURE_SETUP(memcg)
{
	self->files0 = sm_counter("files");
	self->pages0 = sm_counter("pages");
	if (geteuid() != 0)
		SKIP(return, "needs root (mounts cgroup2, makes groups)");
	/* A command to a child that died fails with EPIPE rather than killing the test. */
	signal(SIGPIPE, SIG_IGN);
}

/* Makes everything the tests need; the parent's teardown undoes what it records. */
static int cg_setup(FIXTURE_DATA(memcg) *self, char *why, size_t len)
{
	char line[1024], buf[512];
	FILE *f;
	int i, ret;

	/* cgroup2 mounted already? */
	f = fopen("/proc/self/mounts", "r");
	if (!f) {
		snprintf(why, len, "/proc/self/mounts: %s", strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char dev[256], dir[256], type[64];

		if (sscanf(line, "%255s %255s %63s", dev, dir, type) == 3 && !strcmp(type, "cgroup2")) {
			snprintf(self->mnt, sizeof(self->mnt), "%s", dir);
			break;
		}
	}
	fclose(f);
	if (!self->mnt[0]) {
		if (read_str("/proc/filesystems", buf, sizeof(buf)) <= 0 || !strstr(buf, "\tcgroup2\n")) {
			snprintf(why, len, "the kernel has no cgroup2 (/proc/filesystems)");
			return -1;
		}
		snprintf(self->mnt, sizeof(self->mnt), "/tmp/sealmem-cgroup2.XXXXXX");
		if (!mkdtemp(self->mnt)) {
			snprintf(why, len, "mkdtemp: %s", strerror(errno));
			self->mnt[0] = '\0';
			return -1;
		}
		if (mount("cgroup2", self->mnt, "cgroup2", 0, NULL)) {
			snprintf(why, len, "mount cgroup2 on %s: %s", self->mnt, strerror(errno));
			rmdir(self->mnt);
			self->mnt[0] = '\0';
			return -1;
		}
		self->mounted = 1;
	}
	snprintf(line, sizeof(line), "%s/cgroup.controllers", self->mnt);
	if (read_str(line, buf, sizeof(buf)) < 0 || !strstr(buf, "memory")) {
		snprintf(why, len, "no memory controller in %s: '%s'", line, buf);
		return -1;
	}
	snprintf(line, sizeof(line), "%s/cgroup.subtree_control", self->mnt);
	if (read_str(line, buf, sizeof(buf)) < 0) {
		snprintf(why, len, "%s: %s", line, strerror(errno));
		return -1;
	}
	if (!strstr(buf, "memory")) {
		ret = write_str(line, "+memory");
		if (ret) {
			snprintf(why, len, "+memory in %s: %s", line, strerror(-ret));
			return -1;
		}
		self->enabled = 1;
	}
	snprintf(self->top, sizeof(self->top), "%s/sealmem-memcg.%d", self->mnt, getpid());
	if (mkdir(self->top, 0755)) {
		snprintf(why, len, "mkdir %s: %s", self->top, strerror(errno));
		return -1;
	}
	self->made_top = 1;
	ret = cg_write(self->top, "cgroup.subtree_control", "+memory");
	if (ret) {
		snprintf(why, len, "+memory in %s/cgroup.subtree_control: %s", self->top, strerror(-ret));
		return -1;
	}
	for (i = 0; i < NGROUPS; i++) {
		snprintf(self->g[i], sizeof(self->g[i]), "%s/g%d", self->top, i);
		if (mkdir(self->g[i], 0755)) {
			snprintf(why, len, "mkdir %s: %s", self->g[i], strerror(errno));
			return -1;
		}
		self->made[i] = 1;
		if (cg_num(self->g[i], "memory.current") < 0) {
			snprintf(why, len, "%s has no memory.current", self->g[i]);
			return -1;
		}
	}
	return 0;
}

/* Kills what is left in group cg (only our own children can be there) and removes it. */
static int cg_remove(const char *cg)
{
	double t0 = sm_now();
	char path[512], buf[4096];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	while (sm_now() - t0 < 20) {
		if (!rmdir(cg) || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			break;
		if (read_str(path, buf, sizeof(buf)) > 0)
			for (char *p = buf; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
				if (atoi(p) > 0)
					kill(atoi(p), SIGKILL);
		sm_msleep(50);
	}
	fprintf(stderr, "# teardown: rmdir %s: %s\n", cg, strerror(errno));
	return -1;
}

FIXTURE_TEARDOWN_PARENT(memcg)
{
	char path[512];
	int i, ret;

	for (i = NGROUPS - 1; i >= 0; i--)
		if (self->made[i])
			cg_remove(self->g[i]);
	if (self->made_top)
		cg_remove(self->top);
	if (self->enabled) {
		snprintf(path, sizeof(path), "%s/cgroup.subtree_control", self->mnt);
		ret = write_str(path, "-memory");
		if (ret)
			fprintf(stderr, "# teardown: -memory in %s: %s\n", path, strerror(-ret));
	}
	if (self->mounted) {
		if (umount(self->mnt))
			fprintf(stderr, "# teardown: umount %s: %s\n", self->mnt, strerror(errno));
		else
			rmdir(self->mnt);
	}
}

#define CG_SETUP() do { \
	char why_[4096] = ""; \
	ASSERT_EQ(0, cg_setup(self, why_, sizeof(why_))) TH_LOG("cgroup set-up: %s", why_); \
} while (0)

/* The module's gauges are back where they were before the test. */
#define EXPECT_GAUGES_BACK() do { \
	EXPECT_EQ(self->files0, gauge_wait("files", self->files0, SETTLE_SECS)) \
		TH_LOG("debugfs gauge files did not return to %lld", self->files0); \
	EXPECT_EQ(self->pages0, gauge_wait("pages", self->pages0, SETTLE_SECS)) \
		TH_LOG("debugfs gauge pages did not return to %lld", self->pages0); \
} while (0)

/* Sends a command and asserts a clean report. */
#define DO(kid, cmd, rep) do { \
	ASSERT_EQ(0, kid_do((kid), (cmd), (rep), STEP_SECS)) \
		TH_LOG("no report for command '%c' within %d s (child died?)", (cmd), STEP_SECS); \
	ASSERT_EQ(0, (rep)->v[0]) TH_LOG("command '%c': %s (at %lld)", (cmd), \
					 strerror((int)-(rep)->v[0]), (rep)->v[1]); \
} while (0)

#define MIB(x) ((double)(x) / (1024.0 * 1024.0))

/* ---- the scenarios both charge tests run ---------------------------------------------- */

/*
 * Maker: in group cg, N pages by write fault, N by pwrite (and, with punch, PUNCH_HOLE of
 * the faulted ones), into a file it opened itself, or, with ocg, one that an opener in
 * group ocg made and holds open (whose group must not grow by the pages). Checks what
 * test 1 checks when check_growth; leaves the maker (and opener) running in *k (*o) with
 * the file open and mapped (the caller ends them).
 */
static void run_maker(struct __test_metadata *_metadata, const char *cg, struct kid *k,
		      const char *ocg, struct kid *o, int check_growth, int punch)
{
	long long base, obase = 0, c1, c2, c3, o2;
	int sv[2] = { -1, -1 };
	struct rep r;

	if (ocg) {
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
		ASSERT_EQ(0, kid_start(o, ocg, opener, sv[0]));
	}
	ASSERT_EQ(0, kid_start(k, cg, maker, sv[1]));
	if (ocg) {
		close(sv[0]);
		close(sv[1]);
		ASSERT_EQ(0, kid_rep(o, &r, STEP_SECS)) TH_LOG("the opener did not start (exit %d)",
							       kid_end(o, 0, EXIT_SECS, NULL));
	}
	ASSERT_EQ(0, kid_rep(k, &r, STEP_SECS)) TH_LOG("the maker did not start (exit %d)",
						       kid_end(k, 0, EXIT_SECS, NULL));
	base = cg_settled(cg);
	if (ocg) {
		long long o0 = cg_settled(ocg);

		DO(o, 'o', &r);
		DO(k, 'R', &r);
		/* The file's own memory (file object, inode) is the opener's. */
		obase = cg_settled(ocg);
		TH_LOG("maker: the opener's group +%lld KiB for the new file it sent", (obase - o0) / KIB);
	}

	DO(k, 'f', &r);
	EXPECT_EQ((long long)N, r.v[1]) TH_LOG("fdinfo pages after %lu write faults", N);
	c1 = cg_settled(cg);
	TH_LOG("maker: group %lld KiB with the process; +%lld KiB after %lu write-faulted pages (%.3f MiB)",
	       base / KIB, (c1 - base) / KIB, N, MIB(c1 - base));

	DO(k, 'w', &r);
	EXPECT_EQ((long long)(2 * N), r.v[1]) TH_LOG("fdinfo pages after pwrite");
	c2 = cg_settled(cg);
	TH_LOG("maker: +%lld KiB after pwrite() of %lu more pages (%.3f MiB)", (c2 - c1) / KIB, N, MIB(c2 - c1));

	if (check_growth) {
		EXPECT_LE((long long)NB - GROW_SLACK, c1 - base)
			TH_LOG("%lu pages made by write faults grew the group by %lld KiB only", N, (c1 - base) / KIB);
		EXPECT_GE((long long)NB + GROW_OVERHEAD, c1 - base)
			TH_LOG("%lu pages made by write faults grew the group by %lld KiB", N, (c1 - base) / KIB);
		EXPECT_LE((long long)NB - GROW_SLACK, c2 - c1)
			TH_LOG("%lu pages made by pwrite grew the group by %lld KiB only", N, (c2 - c1) / KIB);
		EXPECT_GE((long long)NB + GROW_OVERHEAD, c2 - c1)
			TH_LOG("%lu pages made by pwrite grew the group by %lld KiB", N, (c2 - c1) / KIB);
	}
	if (ocg) {
		o2 = cg_settled(ocg);
		TH_LOG("maker: the opener's group +%lld KiB while the maker made %lu pages in its file",
		       (o2 - obase) / KIB, 2 * N);
		if (check_growth)
			EXPECT_GE(OTHER_MAX, o2 - obase)
				TH_LOG("the group of the process that opened the file grew by %lld KiB while another process made its pages",
				       (o2 - obase) / KIB);
	}
	if (punch) {
		DO(k, 'p', &r);
		EXPECT_EQ((long long)N, r.v[1]) TH_LOG("fdinfo pages after punching the faulted pages");
		c3 = cg_settled(cg);
		TH_LOG("maker: -%lld KiB after PUNCH_HOLE of the %lu faulted pages, still mapped",
		       (c2 - c3) / KIB, N);
		EXPECT_LE((long long)NB - GROW_SLACK, c2 - c3)
			TH_LOG("punching %lu mapped pages gave back %lld KiB only", N, (c2 - c3) / KIB);
	}
}

/*
 * Handler in group hcg (its own lazy file), consumer in group ccg faulting every page
 * through a VIEW; then the handler prefetches a second file with no consumer.
 */
static void run_lazy(struct __test_metadata *_metadata, const char *hcg, const char *ccg,
		     struct kid *h, struct kid *c, int check_growth)
{
	long long hbase, cbase, h1, c1, h2, c2;
	struct rep r, rc;
	int sv[2];

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, kid_start(h, hcg, handler, sv[0]));
	ASSERT_EQ(0, kid_start(c, ccg, consumer, sv[1]));
	close(sv[0]);
	close(sv[1]);
	ASSERT_EQ(0, kid_rep(h, &r, STEP_SECS)) TH_LOG("the handler did not start (exit %d)",
						       kid_end(h, 0, EXIT_SECS, NULL));
	ASSERT_EQ(0, kid_rep(c, &r, STEP_SECS)) TH_LOG("the consumer did not start (exit %d)",
						       kid_end(c, 0, EXIT_SECS, NULL));
	hbase = cg_settled(hcg);
	cbase = cg_settled(ccg);

	DO(h, 'o', &r);
	/* The handler serves while the consumer reads: both commands out, then both reports. */
	ASSERT_EQ(0, kid_cmd(h, 's'));
	ASSERT_EQ(0, kid_cmd(c, 'r'));
	ASSERT_EQ(0, kid_rep(c, &rc, STEP_SECS)) TH_LOG("the consumer's reads did not finish within %d s", STEP_SECS);
	ASSERT_EQ(0, kid_rep(h, &r, STEP_SECS)) TH_LOG("the handler did not report within %d s", STEP_SECS);
	ASSERT_EQ(0, r.v[0]) TH_LOG("handler: %s after %lld fills", strerror((int)-r.v[0]), r.v[1]);
	ASSERT_EQ(0, rc.v[0]) TH_LOG("consumer: %s at %lld", strerror((int)-rc.v[0]), rc.v[1]);
	EXPECT_EQ((long long)N, r.v[1]) TH_LOG("the handler filled %lld pages", r.v[1]);
	EXPECT_EQ(0, rc.v[1]) TH_LOG("the consumer read %lld pages with the wrong bytes", rc.v[1]);
	EXPECT_EQ((long long)N, rc.v[2]);
	h1 = cg_settled(hcg);
	c1 = cg_settled(ccg);
	TH_LOG("lazy: handler group %lld KiB with the process, +%lld KiB after COPYing %lu pages a consumer faulted (%.3f MiB); consumer group %lld KiB, +%lld KiB",
	       hbase / KIB, (h1 - hbase) / KIB, N, MIB(h1 - hbase), cbase / KIB, (c1 - cbase) / KIB);

	DO(h, 'P', &r);
	EXPECT_EQ((long long)NB, r.v[1]);
	EXPECT_EQ((long long)N, r.v[2]);
	h2 = cg_settled(hcg);
	c2 = cg_settled(ccg);
	TH_LOG("lazy: handler group +%lld KiB after a prefetch COPY of %lu pages with no consumer (%.3f MiB); consumer group +%lld KiB",
	       (h2 - h1) / KIB, N, MIB(h2 - h1), (c2 - c1) / KIB);

	if (check_growth) {
		EXPECT_LE((long long)NB - GROW_SLACK, h1 - hbase)
			TH_LOG("%lu pages the handler COPYed grew its group by %lld KiB only", N, (h1 - hbase) / KIB);
		EXPECT_GE((long long)NB + GROW_OVERHEAD, h1 - hbase)
			TH_LOG("%lu pages the handler COPYed grew its group by %lld KiB", N, (h1 - hbase) / KIB);
		EXPECT_GE(OTHER_MAX, c1 - cbase)
			TH_LOG("the consumer's group grew by %lld KiB while the handler filled the %lu pages it faulted: charged to the consumer?",
			       (c1 - cbase) / KIB, N);
		EXPECT_LE((long long)NB - GROW_SLACK, h2 - h1)
			TH_LOG("%lu pages prefetched by COPY grew the handler's group by %lld KiB only", N, (h2 - h1) / KIB);
		EXPECT_GE((long long)NB + GROW_OVERHEAD, h2 - h1)
			TH_LOG("%lu pages prefetched by COPY grew the handler's group by %lld KiB", N, (h2 - h1) / KIB);
		EXPECT_GE(OTHER_MAX, c2 - c1);
	}
}

/* Ends a child with command 'c' (close everything), then EOF; asserts it exited 0. */
static void close_and_end(struct __test_metadata *_metadata, struct kid *k, const char *who)
{
	struct rep r;
	int to;

	DO(k, 'c', &r);
	EXPECT_EQ(SM_EXITED(0), kid_end(k, 0, EXIT_SECS, &to)) TH_LOG("%s ended %d (timed out: %d)", who, k->ended, to);
}

/* The non-zero byte counts of memory.stat that say where a group's memory is, in out. */
static void cg_stat_summary(const char *cg, char *out, size_t len)
{
	static const char *const keys[] = { "anon", "file", "kernel", "kernel_stack", "pagetables",
					    "percpu", "sock", "vmalloc", "slab_reclaimable",
					    "slab_unreclaimable" };
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && used < len; i++) {
		long long v = cg_key(cg, "memory.stat", keys[i]);

		if (v > 0)
			used += snprintf(out + used, len - used, " %s %lld", keys[i], v);
	}
}

/*
 * Group cg is back within BACK_TOL of base (every process of it gone). It waits up to
 * SETTLE_SECS for the floor (2 pages), so that the reading logged is the settled one.
 */
static void expect_back(struct __test_metadata *_metadata, const char *cg, long long base, const char *what)
{
	double took;
	long long v = cg_wait_back(cg, base + 2 * (long long)SM_PS, SETTLE_SECS, &took);
	char stat[512];

	TH_LOG("%s: group back to %lld KiB (empty baseline %lld KiB) in %.2f s", what, v / KIB, base / KIB, took);
	cg_stat_summary(cg, stat, sizeof(stat));
	EXPECT_GE(base + BACK_TOL, v)
		TH_LOG("%s: the group still holds %lld KiB above its baseline %.0f s after everything was closed (%lld pages); memory.stat (its counters may lag):%s",
		       what, (v - base) / KIB, took, (v - base) / (long long)SM_PS, stat[0] ? stat : " nothing");
}

/* ---- the tests ------------------------------------------------------------------------ */

/*
 * Pages are charged to the memory cgroup of the task that makes them: a write fault and a
 * write charge the writer's group with about N pages each, also in a file another process
 * in another group opened (whose group does not grow); a handler's COPY charges the
 * handler's group, both for pages a consumer in another group faulted and for a prefetch
 * with no consumer, and the consumer's group grows by its page tables only.
 */
TEST_F_TIMEOUT(memcg, pages_are_charged_to_whoever_makes_them, 600)
{
	struct kid m, o, h, c;

	CG_SETUP();
	run_maker(_metadata, self->g[0], &m, NULL, NULL, 1, 0);
	close_and_end(_metadata, &m, "maker");
	run_maker(_metadata, self->g[0], &m, self->g[1], &o, 1, 0);
	close_and_end(_metadata, &m, "maker");
	close_and_end(_metadata, &o, "opener");
	run_lazy(_metadata, self->g[1], self->g[2], &h, &c, 1);
	close_and_end(_metadata, &c, "consumer");
	close_and_end(_metadata, &h, "handler");
	EXPECT_GAUGES_BACK();
}

/*
 * Once every fd and mapping is gone and the processes have exited, each group's
 * memory.current is back to its empty baseline: for the maker closing cleanly (after a
 * PUNCH_HOLE of mapped pages, which gives their charge back at once), for a maker killed
 * with its file open and mapped, and for a lazy file's handler and consumer.
 */
TEST_F_TIMEOUT(memcg, closing_everything_returns_the_charge, 600)
{
	long long b0, b1, b2;
	struct kid m, h, c;
	int to;

	CG_SETUP();
	b0 = cg_settled(self->g[0]);
	b1 = cg_settled(self->g[1]);
	b2 = cg_settled(self->g[2]);
	TH_LOG("empty groups: %lld, %lld, %lld KiB", b0 / KIB, b1 / KIB, b2 / KIB);

	run_maker(_metadata, self->g[0], &m, NULL, NULL, 0, 1);
	close_and_end(_metadata, &m, "maker");
	expect_back(_metadata, self->g[0], b0, "maker, closed");

	run_maker(_metadata, self->g[0], &m, NULL, NULL, 0, 0);
	EXPECT_EQ(SM_KILLED(SIGKILL), kid_end(&m, SIGKILL, EXIT_SECS, &to));
	expect_back(_metadata, self->g[0], b0, "maker, killed with its file open and mapped");

	run_lazy(_metadata, self->g[1], self->g[2], &h, &c, 0);
	close_and_end(_metadata, &c, "consumer");
	close_and_end(_metadata, &h, "handler");
	expect_back(_metadata, self->g[1], b1, "lazy handler");
	expect_back(_metadata, self->g[2], b2, "lazy consumer");
	EXPECT_GAUGES_BACK();
}

/*
 * With memory.max a little above what a process already uses, a write() of 4 MiB (by a
 * process the OOM killer may not choose) returns ENOMEM or a short count and the bytes it
 * wrote read back; a loop of mapped write faults over 4 MiB ends with the process killed
 * (SIGKILL by the memcg OOM killer, or SIGBUS). Nothing hangs; afterwards the group is
 * back at its baseline and the module's gauges where they were.
 */
TEST_F_TIMEOUT(memcg, a_low_memory_max_fails_cleanly, 600)
{
	const char *cg = self->g[0];
	long long base, b, oom0, kill0, max0, oom1, kill1, max1;
	char lim[64];
	struct rep r, rv;
	struct kid k;
	int to, ended;

	CG_SETUP();
	base = cg_settled(cg);

	/* The writer. */
	ASSERT_EQ(0, kid_start(&k, cg, writer, -1));
	ASSERT_EQ(0, kid_rep(&k, &r, STEP_SECS)) TH_LOG("the writer did not start (exit %d)",
							kid_end(&k, 0, EXIT_SECS, NULL));
	b = cg_settled(cg);
	snprintf(lim, sizeof(lim), "%lld", b + LOW_HEADROOM);
	ASSERT_EQ(0, cg_write(cg, "memory.max", lim));
	max0 = cg_key(cg, "memory.events", "max");
	oom0 = cg_key(cg, "memory.events", "oom");
	kill0 = cg_key(cg, "memory.events", "oom_kill");
	ASSERT_EQ(0, kid_do(&k, 'W', &r, STEP_SECS)) TH_LOG("the writer did not report within %d s (ended %d)",
							     STEP_SECS, kid_end(&k, 0, EXIT_SECS, NULL));
	max1 = cg_key(cg, "memory.events", "max");
	oom1 = cg_key(cg, "memory.events", "oom");
	kill1 = cg_key(cg, "memory.events", "oom_kill");
	EXPECT_EQ(0, cg_write(cg, "memory.max", "max"));
	ASSERT_EQ(0, kid_do(&k, 'V', &rv, STEP_SECS)) TH_LOG("the writer did not report within %d s", STEP_SECS);
	TH_LOG("writer: memory.max %lld KiB (%lld + %lld); write() of %lu KiB returned %lld%s%s, %lld pages resident; memory.events max +%lld, oom +%lld, oom_kill +%lld",
	       (b + LOW_HEADROOM) / KIB, b / KIB, LOW_HEADROOM / KIB, NB / 1024, r.v[0],
	       r.v[0] < 0 ? " errno " : "", r.v[0] < 0 ? strerror((int)r.v[1]) : " (a short count)",
	       rv.v[1], max1 - max0, oom1 - oom0, kill1 - kill0);
	EXPECT_TRUE((r.v[0] == -1 && r.v[1] == ENOMEM) || (r.v[0] > 0 && r.v[0] < (long long)NB))
		TH_LOG("write() of 4 MiB past memory.max returned %lld (%s): wanted ENOMEM or a short count",
		       r.v[0], r.v[0] < 0 ? strerror((int)r.v[1]) : "bytes");
	EXPECT_EQ(0, rv.v[2]) TH_LOG("%lld bytes of the short write read back wrong", rv.v[2]);
	EXPECT_EQ(r.v[0] > 0 ? (r.v[0] + (long long)SM_PS - 1) / (long long)SM_PS : 0, rv.v[1])
		TH_LOG("fdinfo pages after a write that returned %lld", r.v[0]);
	ended = kid_end(&k, 0, EXIT_SECS, &to);
	EXPECT_EQ(SM_EXITED(0), ended) TH_LOG("the writer ended %d (timed out: %d)", ended, to);
	expect_back(_metadata, cg, base, "after the writer");

	/* The faulter. */
	ASSERT_EQ(0, kid_start(&k, cg, faulter, -1));
	ASSERT_EQ(0, kid_rep(&k, &r, STEP_SECS)) TH_LOG("the faulter did not start (exit %d)",
							kid_end(&k, 0, EXIT_SECS, NULL));
	b = cg_settled(cg);
	snprintf(lim, sizeof(lim), "%lld", b + LOW_HEADROOM);
	ASSERT_EQ(0, cg_write(cg, "memory.max", lim));
	oom0 = cg_key(cg, "memory.events", "oom");
	kill0 = cg_key(cg, "memory.events", "oom_kill");
	ASSERT_EQ(0, kid_cmd(&k, 'F'));
	/* It exits 0 only if all 4 MiB could be touched. */
	ended = kid_end(&k, 0, STEP_SECS, &to);
	oom1 = cg_key(cg, "memory.events", "oom");
	kill1 = cg_key(cg, "memory.events", "oom_kill");
	EXPECT_EQ(0, cg_write(cg, "memory.max", "max"));
	TH_LOG("faulter: memory.max %lld KiB (%lld + %lld); the fault loop over %lu KiB ended %s%d%s; memory.events oom +%lld, oom_kill +%lld",
	       (b + LOW_HEADROOM) / KIB, b / KIB, LOW_HEADROOM / KIB, NB / 1024,
	       ended >= SM_KILLED(0) ? "by signal " : "with exit code ",
	       ended >= SM_KILLED(0) ? ended - SM_KILLED(0) : ended,
	       ended == SM_KILLED(SIGKILL) ? " (SIGKILL: the memcg OOM killer)" :
	       ended == SM_KILLED(SIGBUS) ? " (SIGBUS)" : "",
	       oom1 - oom0, kill1 - kill0);
	EXPECT_EQ(0, to) TH_LOG("the fault loop was still running %d s after it started: a hang", STEP_SECS);
	EXPECT_TRUE(ended == SM_KILLED(SIGKILL) || ended == SM_KILLED(SIGBUS))
		TH_LOG("the fault loop ended %d, not killed by SIGKILL or SIGBUS%s", ended,
		       ended == SM_EXITED(0) ? ": all 4 MiB fitted, so its pages were not charged to its group" : "");
	if (ended == SM_KILLED(SIGKILL))
		EXPECT_LE(1, kill1 - kill0) TH_LOG("SIGKILL, but memory.events counts no OOM kill");
	expect_back(_metadata, cg, base, "after the faulter");
	EXPECT_GAUGES_BACK();
}

TEST_HARNESS_MAIN
