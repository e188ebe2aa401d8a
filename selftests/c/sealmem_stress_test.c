// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem lazy-fill stress test, modelled on tools/testing/selftests/mm/uffd-stress.c.
 *
 * Each round makes a fresh lazy file (SET_SIZE, FILL_ENABLE), maps it MAP_SHARED in the
 * faulting processes, and lets faulting threads walk every page in racing orders while
 * handler threads serve the requests and a prefetch thread fills random ranges behind
 * their backs:
 *
 *   faulters   THREADS_PER_CPU x CPUs threads, split over PROCS processes (the test process
 *              and a forked child: two mms); each touches every page once per round with a
 *              mapped read, a mapped write, a pread or a pwrite of the whole page (writes
 *              only on the "write pages", 1 in 8, chosen per round). Orders:
 *                stress_same_order     every thread walks 0..N-1
 *                stress_spread_offset  thread i starts at i*N/T and wraps
 *                stress_spread_random  each thread walks its own random permutation
 *   handlers   HANDLERS threads on the one handler fd: even ones block in read(), odd ones
 *              wait in epoll_wait() and then read(); each reads up to BATCH messages and
 *              COPYs every requested page from an image whose content is a function of
 *              (round, page): per message, per message with DONTWAKE + WAKE, or contiguous
 *              runs with DONTWAKE and one WAKE for the batch.
 *   prefetch   one thread COPYs a random range of 1-8 pages per 16 accesses per faulter (paced
 *              by the faulters' progress, so that most pages are still faulted), either with
 *              SKIP_EXISTING (sometimes DONTWAKE + WAKE) or page-exactly without it (an
 *              EEXIST skips the present page), so it knows which pages it installed.
 *
 * Checked per round (a failed check fails the test, after all rounds ran):
 *   - exactly-once delivery: requests are counted per page over all handler threads; no
 *     page is requested twice; a page no one requested was covered by a prefetch;
 *   - a COPY issued for a delivered request succeeds, unless the prefetcher installed the
 *     page first (EEXIST is legitimate only then: no handler COPY of it succeeded);
 *   - every page is present at the end and byte-exact: the writers' pattern on pages a
 *     writer wrote, the fill pattern elsewhere; every read during the round saw one of them;
 *   - nothing hangs: a round that does not finish within its deadline fails with the holes
 *     left, the requests seen for them and what each faulter was doing, then FILL_END
 *     releases the waiters.
 * For every duplicate request it prints both messages (flags FAULT/WRITE, the raising
 * thread: process, thread, op), which handler thread (blocking/epoll) read each, whether the
 * page was present when each arrived, whether the first request's COPY had already been
 * done, and the fills that completed in between (in particular fills of higher pages).
 *
 * The fill_keeps_* tests are small deterministic checks of the same property (a fill
 * resolves only the requests of the pages it filled).
 *
 * Parameters (option, environment variable, default):
 *   -n PAGES  SEALMEM_STRESS_PAGES            pages per file (2048)
 *   -c N      SEALMEM_STRESS_THREADS_PER_CPU  faulting threads per online CPU (2)
 *   -P N      SEALMEM_STRESS_PROCS            faulting processes, 1 or 2 (2)
 *   -H N      SEALMEM_STRESS_HANDLERS         handler threads, at least 2 (2)
 *   -r N      SEALMEM_STRESS_ROUNDS           minimum rounds per order (1)
 *   -s SECS   SEALMEM_STRESS_SECONDS          minimum run time of the three stress tests
 *                                             together, split evenly (20; the in-VM runner
 *                                             sets it from sealmem_stress_seconds=, 120 in CI)
 *   -b N      SEALMEM_STRESS_BATCH            messages per handler read(), 1..32 (16)
 *   -S SEED   SEALMEM_STRESS_SEED             seed (default: from the clock; printed)
 *   -T SECS   SEALMEM_STRESS_ROUND_TIMEOUT    deadline of one round (120)
 * Options after "--" go to the kselftest harness (e.g. -- -t stress_spread_random).
 */
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "sealmem_lib.h"

/* ---- parameters ------------------------------------------------------------------ */

static struct {
	long pages, tpc, procs, handlers, rounds, seconds, batch, round_timeout;
	unsigned long long seed;
} cfg = { .pages = 2048, .tpc = 2, .procs = 2, .handlers = 2, .rounds = 1, .seconds = 20,
	  .batch = 16, .round_timeout = 120 };

static int ncpus = 1;
static int round_serial; /* makes each round's content distinct */

/* ---- small helpers --------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	return mix64(*s);
}

static void futex_wait(atomic_int *a, int val, int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	syscall(SYS_futex, a, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void futex_wake(atomic_int *a)
{
	syscall(SYS_futex, a, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void *shared_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Whether page `p` is present (SEEK_DATA raises no request, unlike a read). */
static int page_present(int fd, long p)
{
	return lseek(fd, (off_t)p * SM_PS, SEEK_DATA) == (off_t)p * SM_PS;
}

static const char *flags_str(__u32 f)
{
	switch (f & (SEALMEM_MSG_FAULT | SEALMEM_MSG_WRITE)) {
	case SEALMEM_MSG_FAULT: return "FAULT";
	case SEALMEM_MSG_FAULT | SEALMEM_MSG_WRITE: return "FAULT|WRITE";
	case SEALMEM_MSG_WRITE: return "WRITE";
	default: return "0(read)";
	}
}

/* ---- one round's state ----------------------------------------------------------- */

enum mode { SAME_ORDER, SPREAD_OFFSET, SPREAD_RANDOM };
static const char *const mode_name[] = { "same-order", "spread-offset", "spread-random" };

enum op { OP_MREAD, OP_MWRITE, OP_PREAD, OP_PWRITE };
static const char *const op_name[] = { "mapped-read", "mapped-write", "pread", "pwrite" };

#define WHO_PREFETCH 100

/* One delivered message as a handler thread saw it. */
struct msginfo {
	uint64_t seq;		/* event number at delivery */
	uint32_t flags, tid;
	int16_t handler;	/* handler thread index */
	int8_t present;		/* page present when the message was read */
	int8_t copied_before;	/* a handler COPY of the page had already succeeded */
};

/* Per page, in memory shared with the child faulting process. */
struct pstate {
	atomic_int req;		/* messages delivered for the page */
	atomic_int copied;	/* handler COPYs of it that succeeded */
	atomic_int eexist;	/* handler COPYs of it that failed with EEXIST */
	atomic_uchar written;	/* a writer wrote the page */
	atomic_uchar pf_exact;	/* the prefetcher installed it (exact variant) */
	atomic_uchar pf_covered;/* within a range a prefetch COPY handled */
	uint64_t copy_s0, copy_s1; /* events around the handler COPY that installed it */
	struct msginfo m[2];	/* the first two messages */
};

/* A fill call that handled pages (events before/after the ioctl). */
struct fillrec {
	uint64_t s0, s1;
	uint32_t first, n;
	int16_t who;
	uint16_t flags;
};

struct finfo {
	atomic_int tid;
	atomic_long page;
	atomic_int op;
	atomic_int done;
	int proc;
};

struct shared {
	atomic_int go, faulters_done;
	atomic_ullong ev;
	atomic_long ops[4], content_err, io_err;
	atomic_long err_page;
	atomic_ullong err_word;
	atomic_int err_op;
	atomic_long pwrite_waits, mwrite_waits, bad_msgs, copy_errs, read_errs, inflight;
	atomic_long pf_calls, pf_pages_exact;
	atomic_int stop_prefetch;
	atomic_int nlog;
	struct finfo fi[];
};

struct round {
	long n;			/* pages */
	int serial;		/* distinct per round: part of the content */
	enum mode mode;
	int fd, hfd, sfd;	/* file, handler, VIEW for SEEK_DATA probes */
	char *map, *src, *wsrc;
	unsigned char *wpage;	/* write pages */
	int nthreads, nparent;
	struct shared *S;
	struct pstate *P;
	struct fillrec *L;
	int logcap;
};

/* The fill pattern (write == 0) or the writers' pattern of page `p` in round `serial`. */
static void gen_page(void *dst, int serial, long p, int write)
{
	uint64_t *w = dst, base = mix64(cfg.seed ^ ((uint64_t)serial << 40) ^ ((uint64_t)p << 8) ^ (write ? 0xa5 : 0x5a));

	w[0] = ((uint64_t)(write ? 'W' : 'F') << 56) | ((uint64_t)(serial & 0xffffff) << 32) | (uint32_t)p;
	for (int i = 1; i < (int)(SM_PS / 8); i++)
		w[i] = mix64(base + i);
}

/* ---- faulting threads ------------------------------------------------------------ */

struct fctx {
	struct round *R;
	int idx;
	pthread_t th;
};

static void content_error(struct round *R, long p, const void *seen, enum op op)
{
	long none = -1;

	atomic_fetch_add(&R->S->content_err, 1);
	if (atomic_compare_exchange_strong(&R->S->err_page, &none, p)) {
		atomic_store(&R->S->err_word, *(const uint64_t *)seen);
		atomic_store(&R->S->err_op, op);
	}
}

/* A read of page p saw `buf`: the fill pattern, or on a write page any mix of fill and write. */
static void check_read(struct round *R, long p, const char *buf, enum op op)
{
	const char *f = R->src + p * SM_PS, *w = R->wsrc + p * SM_PS;

	if (!memcmp(buf, f, SM_PS))
		return;
	if (R->wpage[p]) {
		for (size_t i = 0; i < SM_PS; i++)
			if (buf[i] != f[i] && buf[i] != w[i])
				goto bad;
		return;
	}
bad:
	content_error(R, p, buf, op);
}

static void *faulter_main(void *arg)
{
	struct fctx *c = arg;
	struct round *R = c->R;
	struct shared *S = R->S;
	struct finfo *fi = &S->fi[c->idx];
	long n = R->n, *order = malloc(n * sizeof(long));
	uint64_t rs = mix64(cfg.seed ^ ((uint64_t)R->serial << 24) ^ c->idx);
	char *buf = aligned_alloc(SM_PS, SM_PS);

	atomic_store(&fi->tid, (int)syscall(SYS_gettid));
	if (!order || !buf) {
		atomic_fetch_add(&S->io_err, 1);
		goto out;
	}
	for (long k = 0; k < n; k++)
		order[k] = R->mode == SPREAD_OFFSET ? (k + c->idx * n / R->nthreads) % n : k;
	if (R->mode == SPREAD_RANDOM)
		for (long k = n - 1; k > 0; k--) {
			long j = rng_next(&rs) % (k + 1), t = order[k];

			order[k] = order[j];
			order[j] = t;
		}
	while (!atomic_load(&S->go))
		futex_wait(&S->go, 0, 100);
	for (long k = 0; k < n; k++) {
		long p = order[k];
		off_t off = (off_t)p * SM_PS;
		uint64_t h = mix64(cfg.seed ^ ((uint64_t)R->serial << 20) ^ ((uint64_t)c->idx << 44) ^ p ^ 0x1234);
		enum op op = R->wpage[p] ? (enum op)(h % 4) : (h & 1) ? OP_MREAD : OP_PREAD;

		atomic_store(&fi->page, p);
		atomic_store(&fi->op, op);
		switch (op) {
		case OP_MREAD:
			check_read(R, p, R->map + off, op);
			break;
		case OP_PREAD:
			if (pread(R->fd, buf, SM_PS, off) != (ssize_t)SM_PS)
				atomic_fetch_add(&S->io_err, 1);
			else
				check_read(R, p, buf, op);
			break;
		case OP_MWRITE:
			memcpy(R->map + off, R->wsrc + off, SM_PS);
			atomic_store(&R->P[p].written, 1);
			break;
		case OP_PWRITE:
			if (pwrite(R->fd, R->wsrc + off, SM_PS, off) != (ssize_t)SM_PS)
				atomic_fetch_add(&S->io_err, 1);
			else
				atomic_store(&R->P[p].written, 1);
			break;
		}
		atomic_fetch_add(&S->ops[op], 1);
	}
	atomic_store(&fi->page, -1);
out:
	atomic_store(&fi->done, 1);
	atomic_fetch_add(&S->faulters_done, 1);
	futex_wake(&S->faulters_done);
	free(order);
	free(buf);
	return NULL;
}

/* ---- filling --------------------------------------------------------------------- */

static void log_fill(struct round *R, uint64_t s0, uint64_t s1, long first, long n, int who, __u64 flags)
{
	int i = atomic_fetch_add(&R->S->nlog, 1);

	if (i < R->logcap)
		R->L[i] = (struct fillrec){ s0, s1, (uint32_t)first, (uint32_t)n, (int16_t)who, (uint16_t)flags };
}

/* One COPY of pages [first, first + n); returns the pages handled, *err the errno (0). */
static long copy_call(struct round *R, long first, long n, __u64 flags, int who, int *err, uint64_t *s0, uint64_t *s1)
{
	struct sealmem_copy c;
	int ret, tries = 0;
	long done;

	*s0 = atomic_fetch_add(&R->S->ev, 1) + 1;
	do {
		c = (struct sealmem_copy){ .offset = (__u64)first * SM_PS, .src = (__u64)(uintptr_t)(R->src + first * SM_PS),
					   .len = (__u64)n * SM_PS, .flags = flags };
		ret = ioctl(R->hfd, SEALMEM_IOC_COPY, &c);
	} while (ret && errno == ENOMEM && c.copy <= 0 && ++tries < 100);
	*err = ret ? errno : 0;
	*s1 = atomic_fetch_add(&R->S->ev, 1) + 1;
	done = ret == 0 ? n : c.copy > 0 ? c.copy / (long)SM_PS : 0;
	if (done > 0)
		log_fill(R, *s0, *s1, first, done, who, flags);
	return done;
}

static void wake_range(struct round *R, long first, long n)
{
	struct sealmem_range r = { .offset = (__u64)first * SM_PS, .len = (__u64)n * SM_PS };

	if (ioctl(R->hfd, SEALMEM_IOC_WAKE, &r))
		atomic_fetch_add(&R->S->copy_errs, 1);
}

/* A handler fills the requested pages [first, first + n) page-exactly, past EEXISTs. */
static void handler_fill(struct round *R, long first, long n, __u64 flags, int who)
{
	long end = first + n;

	while (first < end) {
		uint64_t s0, s1;
		int err;
		long done = copy_call(R, first, end - first, flags, who, &err, &s0, &s1);

		for (long p = first; p < first + done; p++) {
			R->P[p].copy_s0 = s0;
			R->P[p].copy_s1 = s1;
			atomic_fetch_add(&R->P[p].copied, 1);
		}
		first += done;
		if (!err)
			break;
		if (err == EEXIST) {
			atomic_fetch_add(&R->P[first].eexist, 1);
			first++;
			continue;
		}
		atomic_fetch_add(&R->S->copy_errs, 1);
		break;
	}
}

static void record_msg(struct round *R, int who, const struct sealmem_msg *m)
{
	long p = (long)(m->offset / SM_PS);
	struct msginfo mi;
	int c;

	if (m->offset % SM_PS || p >= R->n) {
		atomic_fetch_add(&R->S->bad_msgs, 1);
		return;
	}
	mi.seq = atomic_fetch_add(&R->S->ev, 1) + 1;
	mi.flags = m->flags;
	mi.tid = m->tid;
	mi.handler = (int16_t)who;
	mi.present = (int8_t)page_present(R->sfd, p);
	mi.copied_before = (int8_t)(atomic_load(&R->P[p].copied) > 0);
	c = atomic_fetch_add(&R->P[p].req, 1);
	if (c < 2)
		R->P[p].m[c] = mi;
	if (m->flags & SEALMEM_MSG_WRITE)
		atomic_fetch_add(m->flags & SEALMEM_MSG_FAULT ? &R->S->mwrite_waits : &R->S->pwrite_waits, 1);
}

struct hctx {
	struct round *R;
	int idx;
	pthread_t th;
};

static int handler_is_epoll(int idx)
{
	return idx & 1;
}

static void *handler_main(void *arg)
{
	struct hctx *h = arg;
	struct round *R = h->R;
	struct sealmem_msg *m = calloc(cfg.batch, sizeof(*m));
	uint64_t rs = mix64(cfg.seed ^ ((uint64_t)R->serial << 16) ^ (0x4000 + h->idx));
	int ep = -1;

	if (!m)
		goto err;
	if (handler_is_epoll(h->idx)) {
		struct epoll_event ev = { .events = EPOLLIN };

		ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, R->hfd, &ev))
			goto err;
	}
	for (;;) {
		ssize_t r;
		int n, v;

		if (ep >= 0) {
			struct epoll_event ev;
			int k = epoll_wait(ep, &ev, 1, 200);

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				goto err;
			if (k == 0)
				continue;
			if (ev.events & EPOLLHUP)
				break;
		}
		/* The epoll thread may block here if the blocking one took the requests first. */
		r = read(R->hfd, m, cfg.batch * sizeof(*m));
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			goto err;
		}
		atomic_fetch_add(&R->S->inflight, 1);
		n = (int)(r / sizeof(*m));
		for (int i = 0; i < n; i++)
			record_msg(R, h->idx, &m[i]);
		v = rng_next(&rs) % 4;
		if (v <= 1) {
			/* One COPY per message. */
			for (int i = 0; i < n; i++)
				if (m[i].offset / SM_PS < (__u64)R->n)
					handler_fill(R, m[i].offset / SM_PS, 1, 0, h->idx);
		} else if (v == 2) {
			/* DONTWAKE, then an explicit WAKE of the page. */
			for (int i = 0; i < n; i++) {
				long p = m[i].offset / SM_PS;

				if (p >= R->n)
					continue;
				handler_fill(R, p, 1, SEALMEM_FILL_DONTWAKE, h->idx);
				wake_range(R, p, 1);
			}
		} else {
			/* Contiguous runs of the batch (messages come in page order), DONTWAKE, then
			 * one WAKE over the batch. */
			long lo = R->n, hi = -1;

			for (int i = 0; i < n;) {
				long p = m[i].offset / SM_PS, len = 1;

				if (p >= R->n) {
					i++;
					continue;
				}
				while (i + len < n && (long)(m[i + len].offset / SM_PS) == p + len)
					len++;
				handler_fill(R, p, len, SEALMEM_FILL_DONTWAKE, h->idx);
				lo = p < lo ? p : lo;
				hi = p + len - 1 > hi ? p + len - 1 : hi;
				i += len;
			}
			if (hi >= lo)
				wake_range(R, lo, hi - lo + 1);
		}
		atomic_fetch_sub(&R->S->inflight, 1);
	}
	goto out;
err:
	atomic_fetch_add(&R->S->read_errs, 1);
out:
	if (ep >= 0)
		close(ep);
	free(m);
	return NULL;
}

static void *prefetch_main(void *arg)
{
	struct round *R = arg;
	uint64_t rs = mix64(cfg.seed ^ ((uint64_t)R->serial << 16) ^ 0x9999);
	long next = 0;

	while (!atomic_load(&R->S->stop_prefetch)) {
		long progress = 0;

		/* Paced by the faulters' progress: one range per 16 accesses per faulter. */
		for (int i = 0; i < 4; i++)
			progress += atomic_load(&R->S->ops[i]);
		if (progress < next) {
			sm_msleep(1);
			continue;
		}
		next = progress + 16L * R->nthreads;

		long first = rng_next(&rs) % R->n, n = 1 + rng_next(&rs) % 8;
		int v = rng_next(&rs) % 4, err;
		__u64 dontwake = (v & 1) ? SEALMEM_FILL_DONTWAKE : 0;
		uint64_t s0, s1;

		if (first + n > R->n)
			n = R->n - first;
		atomic_fetch_add(&R->S->pf_calls, 1);
		if (v < 2) {
			/* SKIP_EXISTING: skipped pages count as done, so which pages this call
			 * installed is not known; they are marked covered. */
			long done = copy_call(R, first, n, SEALMEM_FILL_SKIP_EXISTING | dontwake, WHO_PREFETCH, &err, &s0, &s1);

			for (long p = first; p < first + done; p++)
				atomic_store(&R->P[p].pf_covered, 1);
			if (err)
				atomic_fetch_add(&R->S->copy_errs, 1);
		} else {
			/* Page-exact: without SKIP_EXISTING an EEXIST stops at the present page, and
			 * everything before it was installed by this call. */
			long p = first, end = first + n;

			while (p < end) {
				long done = copy_call(R, p, end - p, dontwake, WHO_PREFETCH, &err, &s0, &s1);

				for (long q = p; q < p + done; q++) {
					atomic_store(&R->P[q].pf_exact, 1);
					atomic_store(&R->P[q].pf_covered, 1);
				}
				atomic_fetch_add(&R->S->pf_pages_exact, done);
				p += done;
				if (!err)
					break;
				if (err != EEXIST) {
					atomic_fetch_add(&R->S->copy_errs, 1);
					break;
				}
				p++;
			}
		}
		if (dontwake)
			wake_range(R, first, n);
	}
	return NULL;
}

/* ---- one round ------------------------------------------------------------------- */

struct result {
	long requests, dup_pages, dup_requests, eexist_ok, eexist_bad, prefetched, unrequested_bad;
	long double_install, holes, content_err, io_err, other_err, pwrite_waits, mwrite_waits, raised;
	long dup_first_unfilled, dup_higher_fill, dup_same_thread;
	long ops;
	double elapsed;
	int stuck;
};

static void add_result(struct result *t, const struct result *r)
{
	long *a = (long *)t;
	const long *b = (const long *)r;

	for (size_t i = 0; i < offsetof(struct result, elapsed) / sizeof(long); i++)
		a[i] += b[i];
	t->elapsed += r->elapsed;
	t->stuck |= r->stuck;
}

/* Which faulting thread has kernel tid `tid`: "proc P thread I", or "tid T (not a faulter)". */
static const char *who_tid(struct round *R, uint32_t tid, char *buf, size_t len)
{
	for (int i = 0; i < R->nthreads; i++)
		if ((uint32_t)atomic_load(&R->S->fi[i].tid) == tid) {
			snprintf(buf, len, "proc %d thread %d (tid %u)", R->S->fi[i].proc, i, tid);
			return buf;
		}
	snprintf(buf, len, "tid %u (not a faulter)", tid);
	return buf;
}

static const char *handler_name(int who)
{
	return who == WHO_PREFETCH ? "prefetch" : handler_is_epoll(who) ? "epoll" : "blocking";
}

static void report_dup(struct round *R, long p, struct result *res, int print)
{
	struct pstate *ps = &R->P[p];
	const struct msginfo *a = &ps->m[0], *b = &ps->m[1];
	long between = 0, higher = 0;
	const struct fillrec *last_higher = NULL;
	int nlog = atomic_load(&R->S->nlog);
	char w1[64], w2[64];
	int first_unfilled = !b->copied_before;

	if (nlog > R->logcap)
		nlog = R->logcap;
	/* Fill calls that overlapped the time between the two deliveries. */
	for (int i = 0; i < nlog; i++) {
		const struct fillrec *f = &R->L[i];

		if (f->s0 < b->seq && f->s1 > a->seq) {
			between++;
			if ((long)(f->first + f->n - 1) > p) {
				higher++;
				if (!last_higher || f->s0 > last_higher->s0)
					last_higher = f;
			}
		}
	}
	res->dup_first_unfilled += first_unfilled;
	res->dup_higher_fill += higher > 0;
	res->dup_same_thread += a->tid == b->tid;
	if (!print)
		return;
	fprintf(stderr, "#   dup page %ld: %d requests; #1 %s by %s, read by handler %d (%s), present=%d; "
		"#2 %s by %s, read by handler %d (%s), present=%d\n",
		p, atomic_load(&ps->req), flags_str(a->flags), who_tid(R, a->tid, w1, sizeof(w1)), a->handler,
		handler_name(a->handler), a->present, flags_str(b->flags), who_tid(R, b->tid, w2, sizeof(w2)),
		b->handler, handler_name(b->handler), b->present);
	fprintf(stderr, "#     first request %s when #2 arrived (handler COPYs ok=%d eexist=%d); "
		"%ld fill calls completed between #1 and #2, %ld of them reaching a higher page",
		first_unfilled ? "NOT yet filled" : "already filled", atomic_load(&ps->copied),
		atomic_load(&ps->eexist), between, higher);
	if (last_higher)
		fprintf(stderr, " (last: pages %u-%u by %s %d%s)", last_higher->first,
			last_higher->first + last_higher->n - 1, handler_name(last_higher->who), last_higher->who,
			last_higher->flags & SEALMEM_FILL_DONTWAKE ? ", DONTWAKE" : "");
	fprintf(stderr, "\n");
}

static void report_stuck(struct round *R, double waited)
{
	int shown = 0;
	long holes = 0;
	char info[1024];

	fprintf(stderr, "# round %d (%s) STUCK: faulters not done after %.1f s (%d of %d finished)\n",
		R->serial, mode_name[R->mode], waited, atomic_load(&R->S->faulters_done), R->nthreads);
	for (long p = 0; p < R->n; p++) {
		if (page_present(R->sfd, p))
			continue;
		holes++;
		if (shown++ < 32)
			fprintf(stderr, "#   hole page %ld: requests seen %d (first: %s, handler %d), handler COPYs ok=%d eexist=%d%s\n",
				p, atomic_load(&R->P[p].req),
				atomic_load(&R->P[p].req) ? flags_str(R->P[p].m[0].flags) : "-",
				atomic_load(&R->P[p].req) ? R->P[p].m[0].handler : -1,
				atomic_load(&R->P[p].copied), atomic_load(&R->P[p].eexist),
				R->P[p].pf_covered ? ", prefetch-covered" : "");
	}
	fprintf(stderr, "#   %ld holes\n", holes);
	for (int i = 0; i < R->nthreads; i++) {
		struct finfo *f = &R->S->fi[i];

		if (!atomic_load(&f->done))
			fprintf(stderr, "#   faulter %d (proc %d, tid %d) at page %ld doing %s\n", i, f->proc,
				atomic_load(&f->tid), atomic_load(&f->page), op_name[atomic_load(&f->op)]);
	}
	if (sm_fdinfo(R->hfd, info, sizeof(info)) > 0)
		fprintf(stderr, "#   handler fdinfo: %s\n", info);
}

static int start_threads(struct round *R, struct fctx *fc, int from, int to)
{
	for (int i = from; i < to; i++) {
		fc[i] = (struct fctx){ .R = R, .idx = i };
		if (pthread_create(&fc[i].th, NULL, faulter_main, &fc[i]))
			return -1;
	}
	return 0;
}

static int timed_join(pthread_t th, double deadline)
{
	struct timespec ts;
	double d = deadline - sm_now();

	clock_gettime(CLOCK_REALTIME, &ts);
	if (d < 0)
		d = 0;
	ts.tv_sec += (time_t)d;
	ts.tv_nsec += (long)((d - (time_t)d) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_timedjoin_np(th, NULL, &ts);
}

/* Runs one round; 0, or -1 with a message if it could not be set up. */
static int run_round(enum mode mode, struct result *res)
{
	struct round R = { .n = cfg.pages, .serial = ++round_serial, .mode = mode, .fd = -1, .hfd = -1, .sfd = -1 };
	struct fctx *fc = NULL;
	struct hctx *hc = NULL;
	pthread_t pf;
	pid_t child = -1;
	size_t size = (size_t)R.n * SM_PS;
	double t0, deadline;
	int started_h = 0, pf_started = 0, nf_started = 0, ret = -1, joined_all = 1;
	char *buf = NULL;

	memset(res, 0, sizeof(*res));
	R.nthreads = (int)(cfg.tpc * ncpus);
	if (R.nthreads < 1)
		R.nthreads = 1;
	R.nparent = cfg.procs > 1 && R.nthreads > 1 ? (R.nthreads + 1) / 2 : R.nthreads;
	R.logcap = (int)(4 * R.n + 4096);
	R.S = shared_alloc(sizeof(struct shared) + R.nthreads * sizeof(struct finfo));
	R.P = shared_alloc(R.n * sizeof(struct pstate));
	R.L = shared_alloc(R.logcap * sizeof(struct fillrec));
	R.src = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	R.wsrc = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	R.wpage = calloc(R.n, 1);
	fc = calloc(R.nthreads, sizeof(*fc));
	hc = calloc(cfg.handlers, sizeof(*hc));
	buf = malloc(SM_PS);
	if (!R.S || !R.P || !R.L || R.src == MAP_FAILED || R.wsrc == MAP_FAILED || !R.wpage || !fc || !hc || !buf) {
		fprintf(stderr, "# setup: out of memory\n");
		goto out;
	}
	atomic_store(&R.S->err_page, -1);
	for (int i = 0; i < R.nthreads; i++)
		R.S->fi[i].proc = i < R.nparent ? 0 : 1;
	for (long p = 0; p < R.n; p++) {
		R.wpage[p] = (mix64(cfg.seed ^ ((uint64_t)R.serial << 32) ^ p ^ 0x77) & 7) == 0;
		gen_page(R.src + p * SM_PS, R.serial, p, 0);
		if (R.wpage[p])
			gen_page(R.wsrc + p * SM_PS, R.serial, p, 1);
	}
	R.fd = sm_new();
	if (R.fd < 0 || sm_set_size(R.fd, size)) {
		fprintf(stderr, "# setup: file: %s\n", strerror(errno));
		goto out;
	}
	R.hfd = ioctl(R.fd, SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC);
	R.sfd = sm_view(R.fd, SEALMEM_FD_CLOEXEC);
	R.map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, R.fd, 0);
	if (R.hfd < 0 || R.sfd < 0 || R.map == MAP_FAILED) {
		fprintf(stderr, "# setup: FILL_ENABLE/VIEW/mmap: %s\n", strerror(errno));
		R.map = NULL;
		goto out;
	}
	/* The second faulting process, forked while this one is still single-threaded. */
	if (R.nparent < R.nthreads) {
		child = fork();
		if (child < 0) {
			fprintf(stderr, "# setup: fork: %s\n", strerror(errno));
			goto out;
		}
		if (child == 0) {
			close(R.hfd);
			if (start_threads(&R, fc, R.nparent, R.nthreads))
				_exit(2);
			for (int i = R.nparent; i < R.nthreads; i++)
				pthread_join(fc[i].th, NULL);
			_exit(0);
		}
	}
	for (; started_h < cfg.handlers; started_h++) {
		hc[started_h] = (struct hctx){ .R = &R, .idx = started_h };
		if (pthread_create(&hc[started_h].th, NULL, handler_main, &hc[started_h]))
			goto abort;
	}
	if (pthread_create(&pf, NULL, prefetch_main, &R))
		goto abort;
	pf_started = 1;
	if (start_threads(&R, fc, 0, R.nparent))
		goto abort;
	nf_started = R.nparent;

	t0 = sm_now();
	deadline = t0 + cfg.round_timeout;
	atomic_store(&R.S->go, 1);
	futex_wake(&R.S->go);
	for (;;) {
		int d = atomic_load(&R.S->faulters_done);

		if (d >= R.nthreads)
			break;
		if (sm_now() > deadline) {
			report_stuck(&R, sm_now() - t0);
			res->stuck = 1;
			break;
		}
		futex_wait(&R.S->faulters_done, d, 100);
	}
	atomic_store(&R.S->stop_prefetch, 1);
	pthread_join(pf, NULL);
	pf_started = 0;
	/* Quiescent: nothing outstanding and no handler between read() and its fills. */
	if (!res->stuck) {
		double q = sm_now() + 10;

		while ((sm_fdinfo_num(R.hfd, "pending") != 0 || atomic_load(&R.S->inflight)) && sm_now() < q)
			sm_msleep(2);
	}
	for (long p = 0; p < R.n; p++)
		res->holes += !page_present(R.sfd, p);
	res->raised = sm_fdinfo_num(R.hfd, "total");
	res->elapsed = sm_now() - t0;
	/* Ends lazy mode: handler reads return 0, epoll sees HUP; any waiter left continues. */
	if (ioctl(R.hfd, SEALMEM_IOC_FILL_END))
		res->other_err++;
	deadline = sm_now() + 30;
	for (int i = 0; i < started_h; i++)
		if (timed_join(hc[i].th, deadline)) {
			fprintf(stderr, "# round %d: handler thread %d did not end after FILL_END\n", R.serial, i);
			res->other_err++;
			joined_all = 0;
		}
	started_h = 0;
	for (int i = 0; i < nf_started; i++)
		if (timed_join(fc[i].th, deadline)) {
			fprintf(stderr, "# round %d: faulter %d did not end after FILL_END\n", R.serial, i);
			res->other_err++;
			joined_all = 0;
		}
	nf_started = 0;
	if (child > 0) {
		int status = 0;
		pid_t w;

		while ((w = waitpid(child, &status, WNOHANG)) == 0 && sm_now() < deadline)
			sm_msleep(5);
		if (w == 0) {
			fprintf(stderr, "# round %d: the faulting child did not end; killed\n", R.serial);
			kill(child, SIGKILL);
			waitpid(child, &status, 0);
			res->other_err++;
		} else if (sm_ended(status) != SM_EXITED(0)) {
			fprintf(stderr, "# round %d: the faulting child ended with status %#x\n", R.serial, status);
			res->other_err++;
		}
		child = -1;
	}

	/* ---- verdict of the round ---- */
	{
		int printed = 0;

		for (long p = 0; p < R.n; p++) {
			struct pstate *ps = &R.P[p];
			int req = atomic_load(&ps->req), cp = atomic_load(&ps->copied), ee = atomic_load(&ps->eexist);

			res->requests += req;
			if (req > 1) {
				res->dup_pages++;
				res->dup_requests += req - 1;
				report_dup(&R, p, res, printed++ < 8);
			}
			if (cp > 1 || (cp && ps->pf_exact))
				res->double_install++;
			if (ee)
				*(cp ? &res->eexist_bad : &res->eexist_ok) += ee;
			if (!cp)
				res->prefetched++;
			if (!req && !ps->pf_covered)
				res->unrequested_bad++;
			if (req && !cp && !ps->pf_covered)
				res->unrequested_bad++;
		}
		if (printed > 8)
			fprintf(stderr, "#   (%d more duplicated pages not shown)\n", printed - 8);
	}
	for (long p = 0; p < R.n; p++) {
		const char *want = (R.P[p].written ? R.wsrc : R.src) + p * SM_PS;

		if (pread(R.fd, buf, SM_PS, (off_t)p * SM_PS) != (ssize_t)SM_PS) {
			res->io_err++;
			continue;
		}
		if (memcmp(buf, want, SM_PS)) {
			if (!res->content_err)
				fprintf(stderr, "# round %d: page %ld holds %#llx..., want %#llx... (%s)\n", R.serial, p,
					(unsigned long long)*(uint64_t *)buf, (unsigned long long)*(const uint64_t *)want,
					R.P[p].written ? "written" : "filled");
			res->content_err++;
		}
	}
	if (atomic_load(&R.S->content_err)) {
		fprintf(stderr, "# round %d: %ld reads saw wrong bytes; first: page %ld by %s saw %#llx...\n", R.serial,
			atomic_load(&R.S->content_err), atomic_load(&R.S->err_page), op_name[atomic_load(&R.S->err_op)],
			(unsigned long long)atomic_load(&R.S->err_word));
		res->content_err += atomic_load(&R.S->content_err);
	}
	res->io_err += atomic_load(&R.S->io_err);
	res->other_err += atomic_load(&R.S->bad_msgs) + atomic_load(&R.S->copy_errs) + atomic_load(&R.S->read_errs);
	res->pwrite_waits = atomic_load(&R.S->pwrite_waits);
	res->mwrite_waits = atomic_load(&R.S->mwrite_waits);
	for (int i = 0; i < 4; i++)
		res->ops += atomic_load(&R.S->ops[i]);
	fprintf(stderr, "# round %d [%s] pages=%ld requests=%ld dup_requests=%ld (pages %ld) eexist: legit=%ld bad=%ld "
		"prefetched=%ld write-waits: pwrite=%ld mapped=%ld raised=%ld (never delivered %ld) ops=%ld elapsed=%.2fs%s\n",
		R.serial, mode_name[mode], R.n, res->requests, res->dup_requests, res->dup_pages, res->eexist_ok,
		res->eexist_bad, res->prefetched, res->pwrite_waits, res->mwrite_waits, res->raised,
		res->raised - res->requests, res->ops,
		res->elapsed, res->stuck ? " STUCK" : "");
	if (res->holes || res->content_err || res->io_err || res->other_err || res->double_install || res->unrequested_bad)
		fprintf(stderr, "# round %d: holes=%ld content_err=%ld io_err=%ld other_err=%ld (copy %ld, read %ld, msgs %ld) "
			"double_install=%ld unrequested_unprefetched=%ld\n", R.serial, res->holes, res->content_err,
			res->io_err, res->other_err, atomic_load(&R.S->copy_errs), atomic_load(&R.S->read_errs),
			atomic_load(&R.S->bad_msgs), res->double_install, res->unrequested_bad);
	ret = 0;
	goto out;
abort:
	fprintf(stderr, "# setup: pthread_create failed\n");
	atomic_store(&R.S->stop_prefetch, 1);
	atomic_store(&R.S->go, 1);
	futex_wake(&R.S->go);
	if (R.hfd >= 0)
		ioctl(R.hfd, SEALMEM_IOC_FILL_END);
out:
	if (pf_started)
		pthread_join(pf, NULL);
	for (int i = 0; i < started_h; i++)
		pthread_join(hc[i].th, NULL);
	for (int i = 0; i < nf_started; i++)
		pthread_join(fc[i].th, NULL);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	if (!joined_all) {
		/* Threads still use the round's memory: leave it, the test fails anyway. */
		return ret;
	}
	if (R.map)
		munmap(R.map, size);
	if (R.sfd >= 0)
		close(R.sfd);
	if (R.hfd >= 0)
		close(R.hfd);
	if (R.fd >= 0)
		close(R.fd);
	if (R.src != MAP_FAILED && R.src)
		munmap(R.src, size);
	if (R.wsrc != MAP_FAILED && R.wsrc)
		munmap(R.wsrc, size);
	if (R.S)
		munmap(R.S, sizeof(struct shared) + R.nthreads * sizeof(struct finfo));
	if (R.P)
		munmap(R.P, R.n * sizeof(struct pstate));
	if (R.L)
		munmap(R.L, R.logcap * sizeof(struct fillrec));
	free(R.wpage);
	free(fc);
	free(hc);
	free(buf);
	return ret;
}

static void run_mode(struct __test_metadata *_metadata, enum mode mode)
{
	double budget = cfg.seconds / 3.0, t0 = sm_now();
	struct result tot = { 0 };
	int rounds = 0;

	fprintf(stderr, "# %s: pages=%ld faulters=%ld (%ld process%s) handlers=%ld batch=%ld min_rounds=%ld "
		"min_seconds=%.0f seed=%llu\n", mode_name[mode], cfg.pages, cfg.tpc * ncpus, cfg.procs,
		cfg.procs > 1 ? "es" : "", cfg.handlers, cfg.batch, cfg.rounds, budget, cfg.seed);
	while (rounds < cfg.rounds || sm_now() - t0 < budget) {
		struct result r;

		ASSERT_EQ(0, run_round(mode, &r)) TH_LOG("round %d could not be set up", rounds + 1);
		add_result(&tot, &r);
		rounds++;
		if (r.stuck || r.other_err)
			break;
	}
	fprintf(stderr, "# %s total: %d rounds, %ld requests, %ld duplicate requests (%ld pages; first request not yet "
		"filled when the duplicate arrived: %ld; a fill reaching a higher page completed in between: %ld; "
		"same raising thread: %ld), EEXIST legit=%ld bad=%ld, %.1f s\n", mode_name[mode], rounds,
		tot.requests, tot.dup_requests, tot.dup_pages, tot.dup_first_unfilled, tot.dup_higher_fill,
		tot.dup_same_thread, tot.eexist_ok, tot.eexist_bad, sm_now() - t0);
	EXPECT_EQ(0, tot.stuck) TH_LOG("a round did not finish (see the report above)");
	EXPECT_EQ(0, tot.dup_requests) TH_LOG("%ld pages were requested more than once", tot.dup_pages);
	EXPECT_EQ(0, tot.eexist_bad) TH_LOG("a COPY for a delivered request found the page filled by another handler COPY");
	EXPECT_EQ(0, tot.holes);
	EXPECT_EQ(0, tot.content_err);
	EXPECT_EQ(0, tot.io_err);
	EXPECT_EQ(0, tot.other_err);
	EXPECT_EQ(0, tot.double_install);
	EXPECT_EQ(0, tot.unrequested_bad) TH_LOG("a page was filled although no request was seen and no prefetch covered it");
}

TEST(stress_same_order)
{
	run_mode(_metadata, SAME_ORDER);
}

TEST(stress_spread_offset)
{
	run_mode(_metadata, SPREAD_OFFSET);
}

TEST(stress_spread_random)
{
	run_mode(_metadata, SPREAD_RANDOM);
}

/* ---- deterministic checks: a fill resolves only its own pages' requests --------------- */

struct reader {
	int fd;
	long page;
	char *buf;
	ssize_t got;
	pthread_t th;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	r->got = pread(r->fd, r->buf, SM_PS, r->page * SM_PS);
	return NULL;
}

struct small {
	int fd, hfd;
	char *src;
	struct reader rd[3];
};

/* A lazy file of 8 pages and three readers blocked in pread() of pages 1, 2, 3. */
static int small_setup(struct small *s)
{
	s->fd = sm_new();
	if (s->fd < 0 || sm_set_size(s->fd, 8 * SM_PS))
		return -1;
	s->hfd = ioctl(s->fd, SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC);
	s->src = mmap(NULL, 8 * SM_PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->hfd < 0 || s->src == MAP_FAILED)
		return -1;
	for (int p = 0; p < 8; p++)
		gen_page(s->src + p * SM_PS, 0, p, 0);
	for (int i = 0; i < 3; i++) {
		s->rd[i] = (struct reader){ .fd = s->fd, .page = i + 1, .buf = malloc(SM_PS), .got = -2 };
		if (!s->rd[i].buf || pthread_create(&s->rd[i].th, NULL, reader_main, &s->rd[i]))
			return -1;
	}
	return 0;
}

static int small_copy(struct small *s, long p, __u64 flags)
{
	struct sealmem_copy c = { .offset = p * SM_PS, .src = (__u64)(uintptr_t)(s->src + p * SM_PS), .len = SM_PS, .flags = flags };

	return ioctl(s->hfd, SEALMEM_IOC_COPY, &c) ? errno : 0;
}

/* Fills what is left, releases and checks the readers, and tears down. */
static void small_finish(struct __test_metadata *_metadata, struct small *s)
{
	double deadline = sm_now() + 30;

	for (int p = 1; p <= 3; p++) {
		int e = small_copy(s, p, SEALMEM_FILL_SKIP_EXISTING);

		EXPECT_EQ(0, e);
	}
	for (int i = 0; i < 3; i++) {
		if (timed_join(s->rd[i].th, deadline)) {
			ioctl(s->hfd, SEALMEM_IOC_FILL_END);
			pthread_join(s->rd[i].th, NULL);
			EXPECT_TRUE(0) TH_LOG("reader of page %ld still waiting after its fill", s->rd[i].page);
		}
		EXPECT_EQ((ssize_t)SM_PS, s->rd[i].got);
		EXPECT_EQ(0, memcmp(s->rd[i].buf, s->src + s->rd[i].page * SM_PS, SM_PS));
		free(s->rd[i].buf);
	}
	close(s->hfd);
	close(s->fd);
	munmap(s->src, 8 * SM_PS);
}

/*
 * Three requests delivered (read by the handler), then DONTWAKE fills of page 2 and of page
 * 3, the highest: each must resolve only its own request, page 1's stays outstanding
 * (pending 1) and is not raised again (queued 0, total 3). No waiter is woken by a DONTWAKE
 * fill, so nothing can race these checks.
 */
TEST(fill_keeps_lower_delivered_requests)
{
	struct small s;
	struct sealmem_msg m[4];
	int got = 0, seen = 0;
	double deadline;
	long long pending, queued;

	ASSERT_EQ(0, small_setup(&s));
	deadline = sm_now() + 30;
	while (got < 3 && sm_now() < deadline) {
		struct pollfd pfd = { .fd = s.hfd, .events = POLLIN };
		ssize_t r;

		if (poll(&pfd, 1, 1000) != 1)
			continue;
		r = read(s.hfd, m, sizeof(m));
		ASSERT_LT(0, r);
		for (int i = 0; i < (int)(r / sizeof(m[0])); i++)
			seen |= 1 << (m[i].offset / SM_PS);
		got += r / sizeof(m[0]);
	}
	ASSERT_EQ(3, got);
	ASSERT_EQ(0xe, seen) TH_LOG("requests for pages 1, 2 and 3");
	EXPECT_EQ(3, sm_fdinfo_num(s.hfd, "pending"));
	/* A page with a higher request after it: only its own request goes. */
	ASSERT_EQ(0, small_copy(&s, 2, SEALMEM_FILL_DONTWAKE));
	pending = sm_fdinfo_num(s.hfd, "pending");
	EXPECT_EQ(2, pending) TH_LOG("filling page 2 must leave the requests of pages 1 and 3 (pending %lld)", pending);
	/* The highest request: page 1's must stay. */
	ASSERT_EQ(0, small_copy(&s, 3, SEALMEM_FILL_DONTWAKE));
	pending = sm_fdinfo_num(s.hfd, "pending");
	queued = sm_fdinfo_num(s.hfd, "queued");
	EXPECT_EQ(1, pending) TH_LOG("filling page 3, the highest request, resolved the delivered request of page 1 too "
				     "(pending %lld, queued %lld)", pending, queued);
	EXPECT_EQ(0, queued) TH_LOG("a request raised again for page 1");
	EXPECT_EQ(3, sm_fdinfo_num(s.hfd, "total")) TH_LOG("requests raised in all");
	ASSERT_EQ(0, ioctl(s.hfd, SEALMEM_IOC_WAKE, &(struct sealmem_range){ 0, 8 * SM_PS }));
	small_finish(_metadata, &s);
}

/* The same with the requests still queued (not read): a fill of page 3 drops none of them. */
TEST(fill_keeps_lower_queued_requests)
{
	struct small s;
	struct sealmem_msg m[4];
	double deadline;
	long long pending, queued;
	ssize_t r;

	ASSERT_EQ(0, small_setup(&s));
	deadline = sm_now() + 30;
	while (sm_fdinfo_num(s.hfd, "queued") < 3 && sm_now() < deadline)
		sm_msleep(5); /* polling the queue until all three readers raised their request */
	ASSERT_EQ(3, sm_fdinfo_num(s.hfd, "queued"));
	ASSERT_EQ(0, small_copy(&s, 3, SEALMEM_FILL_DONTWAKE));
	pending = sm_fdinfo_num(s.hfd, "pending");
	queued = sm_fdinfo_num(s.hfd, "queued");
	EXPECT_EQ(2, queued) TH_LOG("filling page 3 removed the queued requests of pages 1 and 2 (queued %lld, pending %lld)",
				    queued, pending);
	EXPECT_EQ(2, pending);
	EXPECT_EQ(3, sm_fdinfo_num(s.hfd, "total")) TH_LOG("requests raised in all");
	ASSERT_EQ(0, fcntl(s.hfd, F_SETFL, O_NONBLOCK));
	r = read(s.hfd, m, sizeof(m));
	EXPECT_EQ((ssize_t)(2 * sizeof(m[0])), r) TH_LOG("the handler reads the requests of pages 1 and 2");
	ASSERT_EQ(0, ioctl(s.hfd, SEALMEM_IOC_WAKE, &(struct sealmem_range){ 0, 8 * SM_PS }));
	small_finish(_metadata, &s);
}

/* ---- main: our options (and environment), then the harness's after "--" -------------- */

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-n pages] [-c threads/cpu] [-P procs] [-H handlers] [-r rounds] [-s seconds]\n"
		"          [-b batch] [-S seed] [-T round_timeout] [-- harness options]\n", argv0);
}

static int parse_num(const char *s, long *out)
{
	char *e;
	long v;

	errno = 0;
	v = strtol(s, &e, 0);
	if (errno || e == s || *e || v < 0)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct { const char *env; int opt; long *val; } params[] = {
		{ "SEALMEM_STRESS_PAGES", 'n', &cfg.pages },
		{ "SEALMEM_STRESS_THREADS_PER_CPU", 'c', &cfg.tpc },
		{ "SEALMEM_STRESS_PROCS", 'P', &cfg.procs },
		{ "SEALMEM_STRESS_HANDLERS", 'H', &cfg.handlers },
		{ "SEALMEM_STRESS_ROUNDS", 'r', &cfg.rounds },
		{ "SEALMEM_STRESS_SECONDS", 's', &cfg.seconds },
		{ "SEALMEM_STRESS_BATCH", 'b', &cfg.batch },
		{ "SEALMEM_STRESS_ROUND_TIMEOUT", 'T', &cfg.round_timeout },
	};
	const char *e;
	char *hargv[64];
	int opt, hargc = 0;
	long tmo;

	cfg.seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 16);
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		if ((e = getenv(params[i].env)) && *e && parse_num(e, params[i].val)) {
			fprintf(stderr, "bad %s=%s\n", params[i].env, e);
			return 2;
		}
	if ((e = getenv("SEALMEM_STRESS_SEED")) && *e)
		cfg.seed = strtoull(e, NULL, 0);
	while ((opt = getopt(argc, argv, "+n:c:P:H:r:s:b:S:T:h")) != -1) {
		size_t i;

		if (opt == 'S') {
			cfg.seed = strtoull(optarg, NULL, 0);
			continue;
		}
		for (i = 0; i < sizeof(params) / sizeof(params[0]); i++)
			if (params[i].opt == opt)
				break;
		if (i == sizeof(params) / sizeof(params[0]) || parse_num(optarg, params[i].val)) {
			usage(argv[0]);
			return 2;
		}
	}
	if (cfg.pages < 1 || cfg.tpc < 1 || cfg.procs < 1 || cfg.procs > 2 || cfg.handlers < 2 ||
	    cfg.batch < 1 || cfg.batch > 32 || cfg.round_timeout < 1) {
		usage(argv[0]);
		return 2;
	}
	ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpus < 1)
		ncpus = 1;
	/* The harness's per-test timeout follows the run time asked for. */
	tmo = cfg.seconds / 3 + (cfg.rounds + 1) * (cfg.round_timeout + 30) + 120;
	_stress_same_order_object.timeout = (int)tmo;
	_stress_spread_offset_object.timeout = (int)tmo;
	_stress_spread_random_object.timeout = (int)tmo;
	hargv[hargc++] = argv[0];
	for (int i = optind; i < argc && hargc < 63; i++)
		hargv[hargc++] = argv[i];
	hargv[hargc] = NULL;
	optind = 1;
	return test_harness_run(hargc, hargv);
}
