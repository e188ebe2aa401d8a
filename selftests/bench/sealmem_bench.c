// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem_bench: sealmem against memfd, userfaultfd and memcpy, side by side in one boot.
 * Each case runs RUNS times; the table shows the median and the spread (min..max), and the
 * JSON (between SEALMEM-BENCH-JSON markers) has every sample. Performance is only ever
 * reported here, never asserted in tests. Memory overhead is measured as the growth of the
 * kernel's slab memory (/proc/meminfo) while a file's pages become resident.
 *
 *   sealmem_bench [-m MiB] [-r runs]      (defaults: 64 MiB, 5 runs)
 *   sealmem_bench -P case[,case...] [-F function,...]
 *                                         profile cases instead (see prof.h; -P list),
 *                                         breaking down the time under each -F function
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/sealmem.h>

#define PS 4096UL
#define MAXRUNS 16

static size_t MB = 64;
static int RUNS = 5;
static char *SRC; /* the data every filler copies from */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

#include "prof.h"

/* The clock around a case's timed part; under -P the profiler samples only in between. */
static double tstart(void)
{
	prof_resume();
	return now();
}

static double tstop(void)
{
	double t = now();

	prof_pause();
	return t;
}

/* ---- results ------------------------------------------------------------------------- */

struct result {
	char name[64];
	char unit[16];
	double v[MAXRUNS];
	int n;
};

static struct result RES[64];
static int NRES;

static struct result *result(const char *name, const char *unit)
{
	struct result *r = &RES[NRES++];

	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->unit, sizeof(r->unit), "%s", unit);
	return r;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(struct result *r)
{
	double s[MAXRUNS];

	memcpy(s, r->v, r->n * sizeof(double));
	qsort(s, r->n, sizeof(double), cmpd);
	return r->n % 2 ? s[r->n / 2] : (s[r->n / 2 - 1] + s[r->n / 2]) / 2;
}

static double vmin(struct result *r) { double m = r->v[0]; for (int i = 1; i < r->n; i++) if (r->v[i] < m) m = r->v[i]; return m; }
static double vmax(struct result *r) { double m = r->v[0]; for (int i = 1; i < r->n; i++) if (r->v[i] > m) m = r->v[i]; return m; }

static struct result *find(const char *name)
{
	for (int i = 0; i < NRES; i++)
		if (!strcmp(RES[i].name, name))
			return &RES[i];
	return NULL;
}

/* ---- sealmem helpers ----------------------------------------------------------------- */

static int sm_lazy(size_t size, int *hfd)
{
	int fd = open("/dev/sealmem", O_RDWR | O_CLOEXEC);
	__u64 s = size;

	if (fd < 0 || ioctl(fd, SEALMEM_IOC_SET_SIZE, &s))
		die("sealmem file");
	/* Non-blocking: several filler threads poll the same fd, and only one gets each request. */
	*hfd = ioctl(fd, SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC | SEALMEM_FD_NONBLOCK);
	if (*hfd < 0)
		die("FILL_ENABLE");
	return fd;
}

static int sm_copy(int hfd, size_t off, size_t len, int skip)
{
	struct sealmem_copy c = { .offset = off, .src = (__u64)(uintptr_t)(SRC + off), .len = len,
				  .flags = skip ? SEALMEM_FILL_SKIP_EXISTING : 0 };

	return ioctl(hfd, SEALMEM_IOC_COPY, &c);
}

/* ---- userfaultfd helpers ------------------------------------------------------------- */

static int uffd_new(void *addr, size_t len)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .range = { (uintptr_t)addr, len }, .mode = UFFDIO_REGISTER_MODE_MISSING };

	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) || ioctl(fd, UFFDIO_REGISTER, &reg))
		die("userfaultfd");
	return fd;
}

static int uffd_copy(int ufd, char *base, size_t off, size_t len)
{
	struct uffdio_copy c = { .dst = (uintptr_t)(base + off), .src = (uintptr_t)(SRC + off), .len = len };

	return ioctl(ufd, UFFDIO_COPY, &c);
}

/* ---- the handler threads ------------------------------------------------------------- */

enum kind { SEALMEM, UFFD_SHMEM, UFFD_ANON };

struct filler {
	enum kind kind;
	int fd;          /* handler fd or userfaultfd */
	char *base;      /* the mapping (uffd) */
	size_t pages;    /* stop after this many pages are filled */
	size_t prefetch; /* pages filled per request */
	atomic_size_t filled;
	pthread_t th;
};

static void fill_one(struct filler *f, size_t page)
{
	size_t n = f->prefetch, off = page * PS, done;

	if (page + n > f->pages)
		n = f->pages - page;
	if (f->kind == SEALMEM) {
		struct sealmem_copy c = { .offset = off, .src = (__u64)(uintptr_t)(SRC + off), .len = n * PS,
					  .flags = n > 1 ? SEALMEM_FILL_SKIP_EXISTING : 0 };

		ioctl(f->fd, SEALMEM_IOC_COPY, &c);
		done = c.copy > 0 ? c.copy / PS : 0;
	} else {
		struct uffdio_copy c = { .dst = (uintptr_t)(f->base + off), .src = (uintptr_t)(SRC + off), .len = n * PS };

		/* UFFDIO_COPY stops at the first present page (EEXIST): its best prefetch. */
		ioctl(f->fd, UFFDIO_COPY, &c);
		done = c.copy > 0 ? c.copy / PS : 0;
	}
	atomic_fetch_add(&f->filled, done);
}

static void *filler_main(void *arg)
{
	struct filler *f = arg;

	while (atomic_load(&f->filled) < f->pages) {
		struct pollfd p = { .fd = f->fd, .events = POLLIN };

		if (poll(&p, 1, 100) <= 0)
			continue;
		if (f->kind == SEALMEM) {
			struct sealmem_msg m[16];
			ssize_t n = read(f->fd, m, sizeof(m));

			for (ssize_t i = 0; i < n / (ssize_t)sizeof(m[0]); i++)
				fill_one(f, m[i].offset / PS);
			if (n == 0)
				break;
		} else {
			struct uffd_msg m[16];
			ssize_t n = read(f->fd, m, sizeof(m));

			for (ssize_t i = 0; i < n / (ssize_t)sizeof(m[0]); i++)
				if (m[i].event == UFFD_EVENT_PAGEFAULT)
					fill_one(f, ((uintptr_t)m[i].arg.pagefault.address - (uintptr_t)f->base) / PS);
		}
	}
	return NULL;
}

/* A lazily filled region of `pages` pages of the given kind, with `handlers` filler threads. */
struct region {
	enum kind kind;
	int fd, hfd;
	char *map;
	size_t pages;
	struct filler f[2];
	int handlers;
};

static void region_open(struct region *r, enum kind kind, size_t pages, size_t prefetch, int handlers)
{
	size_t len = pages * PS;

	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->pages = pages;
	r->handlers = handlers;
	if (kind == SEALMEM) {
		r->fd = sm_lazy(len, &r->hfd);
		r->map = mmap(NULL, len, PROT_READ, MAP_SHARED, r->fd, 0);
	} else if (kind == UFFD_SHMEM) {
		r->fd = memfd_create("bench", MFD_CLOEXEC);
		if (r->fd < 0 || ftruncate(r->fd, len))
			die("memfd");
		r->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	} else {
		r->fd = -1;
		r->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (r->map == MAP_FAILED)
		die("mmap");
	if (kind != SEALMEM)
		r->hfd = uffd_new(r->map, len);
	for (int i = 0; i < handlers; i++) {
		r->f[i] = (struct filler){ .kind = kind, .fd = r->hfd, .base = r->map, .pages = pages, .prefetch = prefetch };
		pthread_create(&r->f[i].th, NULL, filler_main, &r->f[i]);
	}
}

static void region_close(struct region *r)
{
	/* Make sure the fillers see everything filled, then stop them. */
	for (int i = 0; i < r->handlers; i++)
		atomic_store(&r->f[i].filled, r->pages);
	for (int i = 0; i < r->handlers; i++)
		pthread_join(r->f[i].th, NULL);
	munmap(r->map, r->pages * PS);
	close(r->hfd);
	if (r->fd >= 0)
		close(r->fd);
}

static const char *kind_name[] = { "sealmem", "uffd-shmem", "uffd-anon" };

/* ---- 1 + 2: missing faults ----------------------------------------------------------- */

struct toucher {
	char *map;
	size_t first, count, stride;
	pthread_t th;
};

static void *touch_main(void *arg)
{
	struct toucher *t = arg;
	volatile char sink;

	for (size_t i = 0; i < t->count; i++)
		sink = t->map[(t->first + i * t->stride) * PS];
	(void)sink;
	return NULL;
}

/* Seconds to touch every page once with `threads` faulting threads on disjoint halves. */
static double lazy_read(enum kind kind, size_t pages, size_t prefetch, int threads, int handlers)
{
	struct region r;
	struct toucher t[2];
	double t0, t1;

	region_open(&r, kind, pages, prefetch, handlers);
	t0 = tstart();
	for (int i = 0; i < threads; i++) {
		t[i] = (struct toucher){ .map = r.map, .first = i * (pages / threads), .count = pages / threads, .stride = 1 };
		pthread_create(&t[i].th, NULL, touch_main, &t[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(t[i].th, NULL);
	t1 = tstop();
	region_close(&r);
	return t1 - t0;
}

/* ---- 3: bulk fill --------------------------------------------------------------------- */

static double bulk_fill(const char *how, size_t bytes, size_t batch)
{
	double t0, t1;

	if (!strcmp(how, "sealmem-copy")) {
		int hfd, fd = sm_lazy(bytes, &hfd);

		t0 = tstart();
		for (size_t off = 0; off < bytes; off += batch)
			if (sm_copy(hfd, off, batch, 0))
				die("SEALMEM_IOC_COPY");
		t1 = tstop();
		close(hfd);
		close(fd);
	} else if (!strcmp(how, "uffdio-copy")) {
		int mfd = memfd_create("bench", MFD_CLOEXEC), ufd;
		char *map;

		if (mfd < 0 || ftruncate(mfd, bytes))
			die("memfd");
		map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		ufd = uffd_new(map, bytes);
		t0 = tstart();
		for (size_t off = 0; off < bytes; off += batch)
			if (uffd_copy(ufd, map, off, batch))
				die("UFFDIO_COPY");
		t1 = tstop();
		close(ufd);
		munmap(map, bytes);
		close(mfd);
	} else if (!strcmp(how, "memfd-pwrite")) {
		int mfd = memfd_create("bench", MFD_CLOEXEC);

		t0 = tstart();
		for (size_t off = 0; off < bytes; off += batch)
			if (pwrite(mfd, SRC + off, batch, off) != (ssize_t)batch)
				die("pwrite");
		t1 = tstop();
		close(mfd);
	} else {
		char *dst = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

		t0 = tstart();
		for (size_t off = 0; off < bytes; off += batch)
			memcpy(dst + off, SRC + off, batch);
		t1 = tstop();
		munmap(dst, bytes);
	}
	return t1 - t0;
}

/* ---- 4: fault-in of a resident file --------------------------------------------------- */

static double resident_faultin(int sealmem, size_t pages, int random)
{
	size_t len = pages * PS;
	int fd = sealmem ? open("/dev/sealmem", O_RDWR | O_CLOEXEC) : memfd_create("bench", MFD_CLOEXEC);
	struct toucher t = { .first = 0, .count = pages, .stride = random ? 4099 : 1 };
	double t0, t1;
	char *map;

	if (fd < 0 || pwrite(fd, SRC, len, 0) != (ssize_t)len)
		die("resident file");
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		die("mmap");
	/* A stride coprime with the page count visits every page in a scattered order. */
	if (random) {
		volatile char sink;

		t0 = tstart();
		for (size_t i = 0; i < pages; i++)
			sink = map[((i * 4099) % pages) * PS];
		(void)sink;
		t1 = tstop();
	} else {
		t.map = map;
		t0 = tstart();
		touch_main(&t);
		t1 = tstop();
	}
	munmap(map, len);
	close(fd);
	return t1 - t0;
}

/* ---- 6. memory overhead ---------------------------------------------------------------- */

static long slab_kb(void)
{
	char line[128];
	long kb = -1;
	int fd = open("/proc/sys/vm/stat_refresh", O_WRONLY);
	FILE *f;

	/* /proc/meminfo sums per-CPU counters folded once a second: fold them now (or wait). */
	if (fd < 0 || write(fd, "1", 1) != 1)
		usleep(2500 * 1000);
	if (fd >= 0)
		close(fd);
	f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Slab: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	if (kb < 0)
		die("/proc/meminfo Slab");
	return kb;
}

/*
 * Bookkeeping bytes per resident page: how much the kernel's slab memory grows while `pages`
 * pages, `stride` pages apart, become resident in a new sealmem file or memfd. The page
 * itself (and its struct page) is the same for both and not counted; what is counted is the
 * XArray nodes (and anything else either allocates per page). Slab grows in whole slabs,
 * so the file is made large enough for that granularity not to matter.
 */
static double overhead(int sealmem, size_t pages, size_t stride)
{
	int fd = sealmem ? open("/dev/sealmem", O_RDWR | O_CLOEXEC) : memfd_create("bench", MFD_CLOEXEC);
	__u64 size = (__u64)pages * stride * PS;
	long before, after;

	if (fd < 0 || (sealmem ? ioctl(fd, SEALMEM_IOC_SET_SIZE, &size) : ftruncate(fd, (off_t)size)))
		die("overhead file");
	before = slab_kb();
	for (size_t i = 0; i < pages; i++)
		if (pwrite(fd, SRC + (i % (MB * 256)) * PS, PS, (off_t)(i * stride * PS)) != (ssize_t)PS)
			die("overhead pwrite");
	after = slab_kb();
	close(fd);
	return (after - before) * 1024.0 / pages;
}

struct oh { int sealmem; size_t pages, stride; };
static double do_oh(void *a) { struct oh *x = a; return overhead(x->sealmem, x->pages, x->stride); }

/* ---- main ------------------------------------------------------------------------------ */

static void run(struct result *r, double (*fn)(void *), void *arg)
{
	double t0 = now();

	for (int i = 0; i < RUNS; i++)
		r->v[r->n++] = fn(arg);
	printf("  %-48s %10.3f %-9s (%.1f s)\n", r->name, median(r), r->unit, now() - t0);
}

struct lr { enum kind k; size_t pages, prefetch; int threads, handlers; int per_fault; };
static double do_lr(void *a)
{
	struct lr *x = a;
	double s = lazy_read(x->k, x->pages, x->prefetch, x->threads, x->handlers);

	return x->per_fault ? s * 1e6 / x->pages : x->pages * PS / s / 1e9;
}

struct bf { const char *how; size_t bytes, batch; };
static double do_bf(void *a) { struct bf *x = a; return x->bytes / bulk_fill(x->how, x->bytes, x->batch) / 1e9; }

struct rf { int sealmem; size_t pages; int random; };
static double do_rf(void *a) { struct rf *x = a; return resident_faultin(x->sealmem, x->pages, x->random) * 1e9 / x->pages; }

static void ratio(const char *what, const char *num, const char *den, int higher_is_better, double target)
{
	struct result *a = find(num), *b = find(den);
	double r;

	if (!a || !b)
		return;
	r = higher_is_better ? median(a) / median(b) : median(b) / median(a);
	if (target > 0)
		printf("  %-58s %6.2fx  (target >= %.1fx: %s)\n", what, r, target, r >= target ? "met" : "MISSED");
	else
		printf("  %-58s %6.2fx  (no target)\n", what, r);
	snprintf(RES[NRES].name, sizeof(RES[NRES].name), "ratio: %s", what);
	strcpy(RES[NRES].unit, "x");
	RES[NRES].v[0] = r;
	RES[NRES].n = 1;
	NRES++;
}

/* The cases -P can profile: name, function, argument. */
static struct lr P_RT[3] = { { SEALMEM, 0, 1, 1, 1, 1 }, { UFFD_SHMEM, 0, 1, 1, 1, 1 }, { UFFD_ANON, 0, 1, 1, 1, 1 } };
static struct lr P_SC[2] = { { SEALMEM, 0, 1, 2, 2, 0 }, { UFFD_SHMEM, 0, 1, 2, 2, 0 } };
static struct rf P_RF[4] = { { 1, 0, 0 }, { 0, 0, 0 }, { 1, 0, 1 }, { 0, 0, 1 } };
static struct bf P_BF[4] = { { "sealmem-copy", 0, 2 << 20 }, { "uffdio-copy", 0, 2 << 20 },
			     { "memfd-pwrite", 0, 2 << 20 }, { "memcpy", 0, 2 << 20 } };
static const struct pcase { const char *name; double (*fn)(void *); void *arg; } PCASES[] = {
	{ "roundtrip-sealmem", do_lr, &P_RT[0] },
	{ "roundtrip-uffd-shmem", do_lr, &P_RT[1] },
	{ "roundtrip-uffd-anon", do_lr, &P_RT[2] },
	{ "resident-sealmem-seq", do_rf, &P_RF[0] },
	{ "resident-memfd-seq", do_rf, &P_RF[1] },
	{ "resident-sealmem-random", do_rf, &P_RF[2] },
	{ "resident-memfd-random", do_rf, &P_RF[3] },
	{ "fill-sealmem-2M", do_bf, &P_BF[0] },
	{ "fill-uffdio-2M", do_bf, &P_BF[1] },
	{ "fill-pwrite-2M", do_bf, &P_BF[2] },
	{ "fill-memcpy-2M", do_bf, &P_BF[3] },
	{ "scale-sealmem-2x2", do_lr, &P_SC[0] },
	{ "scale-uffd-2x2", do_lr, &P_SC[1] },
};

/* -P: run each named case RUNS times with the sampling profiler on, print its profile. */
static int profile(char *list, size_t pages, size_t rt_pages)
{
	for (int i = 0; i < 3; i++)
		P_RT[i].pages = rt_pages;
	for (int i = 0; i < 2; i++)
		P_SC[i].pages = rt_pages;
	for (int i = 0; i < 4; i++) {
		P_RF[i].pages = pages;
		P_BF[i].bytes = pages * PS;
	}
	for (char *name = strtok(list, ","); name; name = strtok(NULL, ",")) {
		size_t i;

		for (i = 0; i < sizeof(PCASES) / sizeof(PCASES[0]); i++)
			if (!strcmp(name, PCASES[i].name) || !strcmp(name, "all"))
				break;
		if (i == sizeof(PCASES) / sizeof(PCASES[0])) {
			fprintf(stderr, "unknown case '%s'; cases:", name);
			for (i = 0; i < sizeof(PCASES) / sizeof(PCASES[0]); i++)
				fprintf(stderr, " %s", PCASES[i].name);
			fprintf(stderr, " all\n");
			return 2;
		}
		for (size_t j = i; j < sizeof(PCASES) / sizeof(PCASES[0]); j++) {
			struct result r = { .n = 0 };
			char title[128];

			if (j != i && strcmp(name, "all"))
				break;
			prof_start();
			for (int k = 0; k < RUNS; k++)
				r.v[r.n++] = PCASES[j].fn(PCASES[j].arg);
			snprintf(title, sizeof(title), "%s (median %.3f over %d runs)", PCASES[j].name, median(&r), RUNS);
			prof_stop(title);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	char *plist = NULL;
	int opt;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "m:r:P:F:A:")) != -1) {
		if (opt == 'P')
			plist = optarg;
		else if (opt == 'A')
			PROF_ANNOTATE = optarg;
		else if (opt == 'F')
			for (char *f = strtok(optarg, ","); f && PROF_NFOCUS < 4; f = strtok(NULL, ","))
				PROF_FOCUS[PROF_NFOCUS++] = f;
		else if (opt == 'm')
			MB = strtoul(optarg, NULL, 10);
		else if (opt == 'r')
			RUNS = atoi(optarg) < MAXRUNS ? atoi(optarg) : MAXRUNS;
	}
	size_t bytes = MB << 20, pages = bytes / PS, rt_pages = pages < 8192 ? pages : 8192;

	SRC = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (SRC == MAP_FAILED)
		die("source buffer");
	for (size_t i = 0; i < bytes; i += 64)
		SRC[i] = (char)i;

	if (plist)
		return profile(plist, pages, rt_pages);
	printf("sealmem_bench: %zu MiB, %d runs per case (median [min..max])\n", MB, RUNS);

	/* 1. missing-fault round trip, one page per request, handler in another thread */
	for (int k = 0; k < 3; k++) {
		char n[64];
		struct lr a = { k, rt_pages, 1, 1, 1, 1 };

		snprintf(n, sizeof(n), "roundtrip %s", kind_name[k]);
		run(result(n, "us/fault"), do_lr, &a);
	}
	/* 2. sequential lazy read of the whole file */
	{
		struct lr a;

		a = (struct lr){ SEALMEM, pages, 1, 1, 1, 0 };
		run(result("seqread sealmem page-at-a-time", "GB/s"), do_lr, &a);
		a = (struct lr){ SEALMEM, pages, 64, 1, 1, 0 };
		run(result("seqread sealmem prefetch 64 (SKIP_EXISTING)", "GB/s"), do_lr, &a);
		a = (struct lr){ UFFD_SHMEM, pages, 1, 1, 1, 0 };
		run(result("seqread uffd-shmem page-at-a-time", "GB/s"), do_lr, &a);
		a = (struct lr){ UFFD_SHMEM, pages, 64, 1, 1, 0 };
		run(result("seqread uffd-shmem prefetch 64", "GB/s"), do_lr, &a);
	}
	/* 3. bulk fill throughput */
	{
		static const char *hows[] = { "sealmem-copy", "uffdio-copy", "memfd-pwrite", "memcpy" };
		static const size_t batches[] = { 4096, 65536, 2 << 20 };

		for (int b = 0; b < 3; b++)
			for (int h = 0; h < 4; h++) {
				char n[64];
				struct bf a = { hows[h], bytes, batches[b] };

				snprintf(n, sizeof(n), "fill %s %zuK", hows[h], batches[b] / 1024);
				run(result(n, "GB/s"), do_bf, &a);
			}
	}
	/* 4. fault-in of a fully resident file */
	for (int rnd = 0; rnd < 2; rnd++)
		for (int s = 1; s >= 0; s--) {
			char n[64];
			struct rf a = { s, pages, rnd };

			snprintf(n, sizeof(n), "resident %s %s", s ? "sealmem" : "memfd", rnd ? "random" : "sequential");
			run(result(n, "ns/page"), do_rf, &a);
		}
	/* 5. scaling: 1 vs 2 faulting threads (and 2 handler threads) */
	{
		struct lr a;

		a = (struct lr){ SEALMEM, rt_pages, 1, 1, 1, 0 };
		run(result("scale sealmem 1 faulter 1 handler", "GB/s"), do_lr, &a);
		a = (struct lr){ SEALMEM, rt_pages, 1, 2, 1, 0 };
		run(result("scale sealmem 2 faulters 1 handler", "GB/s"), do_lr, &a);
		a = (struct lr){ SEALMEM, rt_pages, 1, 2, 2, 0 };
		run(result("scale sealmem 2 faulters 2 handlers", "GB/s"), do_lr, &a);
		a = (struct lr){ UFFD_SHMEM, rt_pages, 1, 1, 1, 0 };
		run(result("scale uffd-shmem 1 faulter 1 handler", "GB/s"), do_lr, &a);
		a = (struct lr){ UFFD_SHMEM, rt_pages, 1, 2, 2, 0 };
		run(result("scale uffd-shmem 2 faulters 2 handlers", "GB/s"), do_lr, &a);
	}
	/* 6. memory overhead: 512 MiB made resident page by page (a dense file) */
	for (int s = 1; s >= 0; s--) {
		struct oh a = { s, 131072, 1 };

		run(result(s ? "overhead sealmem dense" : "overhead memfd dense", "B/page"), do_oh, &a);
	}
	printf("\n%-48s %12s %12s %-24s\n", "case", "median", "unit", "spread");
	for (int i = 0; i < NRES; i++)
		printf("%-48s %12.3f %12s [%.3f..%.3f]\n", RES[i].name, median(&RES[i]), RES[i].unit, vmin(&RES[i]), vmax(&RES[i]));

	printf("\nRatios (same boot; >1 means sealmem is better):\n");
	ratio("round trip vs uffd-shmem (time)", "roundtrip sealmem", "roundtrip uffd-shmem", 0, 1.0);
	ratio("round trip vs uffd-anon (time)", "roundtrip sealmem", "roundtrip uffd-anon", 0, 1.0);
	ratio("seq read, sealmem prefetch vs uffd page-at-a-time", "seqread sealmem prefetch 64 (SKIP_EXISTING)", "seqread uffd-shmem page-at-a-time", 1, 2.0);
	ratio("seq read, sealmem prefetch vs uffd prefetch", "seqread sealmem prefetch 64 (SKIP_EXISTING)", "seqread uffd-shmem prefetch 64", 1, 0);
	ratio("fill 2M: sealmem COPY vs UFFDIO_COPY", "fill sealmem-copy 2048K", "fill uffdio-copy 2048K", 1, 1.0);
	ratio("fill 2M: sealmem COPY vs memcpy", "fill sealmem-copy 2048K", "fill memcpy 2048K", 1, 0.6);
	ratio("resident fault-in sequential vs memfd (time)", "resident sealmem sequential", "resident memfd sequential", 0, 1.0);
	ratio("resident fault-in random vs memfd (time)", "resident sealmem random", "resident memfd random", 0, 1.0);
	ratio("2-thread scaling sealmem (2 faulters, 2 handlers)", "scale sealmem 2 faulters 2 handlers", "scale sealmem 1 faulter 1 handler", 1, 1.6);
	ratio("2-thread scaling uffd (2 faulters, 2 handlers)", "scale uffd-shmem 2 faulters 2 handlers", "scale uffd-shmem 1 faulter 1 handler", 1, 1.6);
	ratio("memory overhead dense vs memfd (bytes)", "overhead sealmem dense", "overhead memfd dense", 0, 0);

	printf("\nSEALMEM-BENCH-JSON-BEGIN\n{\"mib\": %zu, \"runs\": %d, \"results\": [", MB, RUNS);
	for (int i = 0; i < NRES; i++) {
		printf("%s\n  {\"case\": \"%s\", \"unit\": \"%s\", \"median\": %.6f, \"min\": %.6f, \"max\": %.6f, \"samples\": [",
		       i ? "," : "", RES[i].name, RES[i].unit, median(&RES[i]), vmin(&RES[i]), vmax(&RES[i]));
		for (int j = 0; j < RES[i].n; j++)
			printf("%s%.6f", j ? ", " : "", RES[i].v[j]);
		printf("]}");
	}
	printf("\n]}\nSEALMEM-BENCH-JSON-END\n");
	return 0;
}
