// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem_bench: sealmem against memfd, userfaultfd and memcpy, side by side in one boot.
 * Each case runs RUNS times, interleaved with the cases it is compared with and after one
 * warm-up run; the table shows the median and the spread (min..max), and the JSON (between
 * SEALMEM-BENCH-JSON markers) has every sample. Performance is only ever
 * reported here, never asserted in tests. Memory overhead is measured as the growth of the
 * kernel's slab memory (/proc/meminfo) while a file's pages become resident.
 *
 *   sealmem_bench [-m MiB] [-r runs]      (defaults: 64 MiB, 5 runs per case)
 *   sealmem_bench -P case[,case...] [-F function,...]
 *                                         profile cases instead (see prof.h; -P list),
 *                                         breaking down the time under each -F function
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
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

/*
 * Pins thread `th` to CPU `cpu` (modulo the CPUs there are). The round trip and sequential
 * read cases run the faulting thread on CPU 0 and the handler on CPU 1: left to the
 * scheduler, the pair sometimes shared a CPU (a local switch instead of a cross-CPU wake-up),
 * which made those cases bimodal and their ratios swing by 10 %.
 */
static void pin(pthread_t th, int cpu)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	if (n < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu % n, &set);
	if (pthread_setaffinity_np(th, sizeof(set), &set))
		die("pthread_setaffinity_np");
}

static void region_open(struct region *r, enum kind kind, size_t pages, size_t prefetch, int handlers, int pinned)
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
		if (pinned)
			pin(r->f[i].th, 1 + i);
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
static double lazy_read(enum kind kind, size_t pages, size_t prefetch, int threads, int handlers, int pinned)
{
	struct region r;
	struct toucher t[2];
	double t0, t1;

	region_open(&r, kind, pages, prefetch, handlers, pinned);
	t0 = tstart();
	for (int i = 0; i < threads; i++) {
		t[i] = (struct toucher){ .map = r.map, .first = i * (pages / threads), .count = pages / threads, .stride = 1 };
		pthread_create(&t[i].th, NULL, touch_main, &t[i]);
		if (pinned)
			pin(t[i].th, i);
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

/* ---- the cases ------------------------------------------------------------------------- */

enum what { LAZY, FILL, RESIDENT, OVERHEAD };

/*
 * One benchmark case. Cases of the same group are compared with each other: they run
 * interleaved (one run of each in turn, RUNS rounds) after one untimed warm-up run of each,
 * so that drift within the boot (the first case of a boot runs slower under TCG: cold
 * translation cache, first-touch of memory) does not favour one side of a ratio.
 */
struct bcase {
	int group;
	const char *id;   /* the name -P takes */
	const char *name; /* the name in the table and the JSON */
	const char *unit;
	enum what what;
	int kind;         /* LAZY: enum kind; RESIDENT, OVERHEAD: 1 = sealmem, 0 = memfd */
	const char *how;  /* FILL: sealmem-copy, uffdio-copy, memfd-pwrite, memcpy */
	size_t batch;     /* FILL: bytes per call */
	int rt;           /* LAZY: min(file, 8192) pages instead of the whole file */
	size_t prefetch;  /* LAZY: pages per request */
	int threads, handlers;
	int per_fault;    /* LAZY: report us/fault instead of GB/s */
	int random;       /* RESIDENT: scattered order */
	int pinned;       /* LAZY: faulting thread on CPU 0, handler on CPU 1 (see pin()) */
};

#define RT(g, id, name, k) { g, id, name, "us/fault", LAZY, k, .rt = 1, .prefetch = 1, .threads = 1, .handlers = 1, .per_fault = 1, .pinned = 1 }
#define SEQ(g, id, name, k, pf) { g, id, name, "GB/s", LAZY, k, .prefetch = pf, .threads = 1, .handlers = 1, .pinned = 1 }
#define FILLC(g, id, name, h, b) { g, id, name, "GB/s", FILL, .how = h, .batch = b }
#define RESID(g, id, name, s, r) { g, id, name, "ns/page", RESIDENT, s, .random = r }
#define SCALE(g, id, name, k, t, h) { g, id, name, "GB/s", LAZY, k, .rt = 1, .prefetch = 1, .threads = t, .handlers = h }

static const struct bcase CASES[] = {
	/* 1. missing-fault round trip, one page per request, handler in another thread */
	RT(1, "roundtrip-sealmem", "roundtrip sealmem", SEALMEM),
	RT(1, "roundtrip-uffd-shmem", "roundtrip uffd-shmem", UFFD_SHMEM),
	RT(1, "roundtrip-uffd-anon", "roundtrip uffd-anon", UFFD_ANON),
	/* 2. sequential lazy read of the whole file */
	SEQ(2, "seqread-sealmem", "seqread sealmem page-at-a-time", SEALMEM, 1),
	SEQ(2, "seqread-sealmem-prefetch", "seqread sealmem prefetch 64 (SKIP_EXISTING)", SEALMEM, 64),
	SEQ(2, "seqread-uffd-shmem", "seqread uffd-shmem page-at-a-time", UFFD_SHMEM, 1),
	SEQ(2, "seqread-uffd-shmem-prefetch", "seqread uffd-shmem prefetch 64", UFFD_SHMEM, 64),
	/* 3. bulk fill throughput, per batch size */
	FILLC(3, "fill-sealmem-4K", "fill sealmem-copy 4K", "sealmem-copy", 4096),
	FILLC(3, "fill-uffdio-4K", "fill uffdio-copy 4K", "uffdio-copy", 4096),
	FILLC(3, "fill-pwrite-4K", "fill memfd-pwrite 4K", "memfd-pwrite", 4096),
	FILLC(3, "fill-memcpy-4K", "fill memcpy 4K", "memcpy", 4096),
	FILLC(4, "fill-sealmem-64K", "fill sealmem-copy 64K", "sealmem-copy", 65536),
	FILLC(4, "fill-uffdio-64K", "fill uffdio-copy 64K", "uffdio-copy", 65536),
	FILLC(4, "fill-pwrite-64K", "fill memfd-pwrite 64K", "memfd-pwrite", 65536),
	FILLC(4, "fill-memcpy-64K", "fill memcpy 64K", "memcpy", 65536),
	FILLC(5, "fill-sealmem-2M", "fill sealmem-copy 2048K", "sealmem-copy", 2 << 20),
	FILLC(5, "fill-uffdio-2M", "fill uffdio-copy 2048K", "uffdio-copy", 2 << 20),
	FILLC(5, "fill-pwrite-2M", "fill memfd-pwrite 2048K", "memfd-pwrite", 2 << 20),
	FILLC(5, "fill-memcpy-2M", "fill memcpy 2048K", "memcpy", 2 << 20),
	/* 4. fault-in of a fully resident file */
	RESID(6, "resident-sealmem-seq", "resident sealmem sequential", 1, 0),
	RESID(6, "resident-memfd-seq", "resident memfd sequential", 0, 0),
	RESID(7, "resident-sealmem-random", "resident sealmem random", 1, 1),
	RESID(7, "resident-memfd-random", "resident memfd random", 0, 1),
	/* 5. scaling: 1 vs 2 faulting threads (and 2 handler threads) */
	SCALE(8, "scale-sealmem-1x1", "scale sealmem 1 faulter 1 handler", SEALMEM, 1, 1),
	SCALE(8, "scale-sealmem-2x1", "scale sealmem 2 faulters 1 handler", SEALMEM, 2, 1),
	SCALE(8, "scale-sealmem-2x2", "scale sealmem 2 faulters 2 handlers", SEALMEM, 2, 2),
	SCALE(8, "scale-uffd-1x1", "scale uffd-shmem 1 faulter 1 handler", UFFD_SHMEM, 1, 1),
	SCALE(8, "scale-uffd-2x2", "scale uffd-shmem 2 faulters 2 handlers", UFFD_SHMEM, 2, 2),
	/* 6. memory overhead: 512 MiB made resident page by page (a dense file) */
	{ 9, "overhead-sealmem", "overhead sealmem dense", "B/page", OVERHEAD, 1 },
	{ 9, "overhead-memfd", "overhead memfd dense", "B/page", OVERHEAD, 0 },
};
#define NCASES (sizeof(CASES) / sizeof(CASES[0]))

/* One run of case `c` on a file of `pages` pages: its value in the case's unit. */
static double run_case(const struct bcase *c, size_t pages)
{
	size_t n = c->rt && pages > 8192 ? 8192 : pages;
	double s;

	switch (c->what) {
	case LAZY:
		s = lazy_read(c->kind, n, c->prefetch, c->threads, c->handlers, c->pinned);
		return c->per_fault ? s * 1e6 / n : n * PS / s / 1e9;
	case FILL:
		return pages * PS / bulk_fill(c->how, pages * PS, c->batch) / 1e9;
	case RESIDENT:
		return resident_faultin(c->kind, pages, c->random) * 1e9 / pages;
	case OVERHEAD:
		return overhead(c->kind, 131072, 1);
	}
	return 0;
}

/* Runs the cases of group `g`: a warm-up run of each, then RUNS interleaved rounds. */
static void run_group(int g, size_t pages)
{
	struct result *r[NCASES];
	double spent[NCASES] = { 0 };
	size_t first = NCASES, n = 0;

	for (size_t i = 0; i < NCASES; i++)
		if (CASES[i].group == g) {
			if (first == NCASES)
				first = i;
			r[n++] = result(CASES[i].name, CASES[i].unit);
			run_case(&CASES[i], pages);
		}
	for (int k = 0; k < RUNS; k++)
		for (size_t j = 0; j < n; j++) {
			double t0 = now();

			r[j]->v[r[j]->n++] = run_case(&CASES[first + j], pages);
			spent[j] += now() - t0;
		}
	for (size_t j = 0; j < n; j++)
		printf("  %-48s %10.3f %-9s (%.1f s)\n", r[j]->name, median(r[j]), r[j]->unit, spent[j]);
}

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

/* -P: run each named case (one warm-up run, then RUNS runs) with the sampling profiler on. */
static int profile(char *list, size_t pages)
{
	for (char *name = strtok(list, ","); name; name = strtok(NULL, ",")) {
		int any = 0;

		for (size_t i = 0; i < NCASES; i++) {
			struct result r = { .n = 0 };
			char title[128];

			if (strcmp(name, CASES[i].id) && strcmp(name, "all"))
				continue;
			any = 1;
			run_case(&CASES[i], pages);
			prof_start();
			for (int k = 0; k < RUNS; k++)
				r.v[r.n++] = run_case(&CASES[i], pages);
			snprintf(title, sizeof(title), "%s (median %.3f %s over %d runs)", CASES[i].id, median(&r), CASES[i].unit, RUNS);
			prof_stop(title);
		}
		if (!any) {
			fprintf(stderr, "unknown case '%s'; cases:", name);
			for (size_t i = 0; i < NCASES; i++)
				fprintf(stderr, " %s", CASES[i].id);
			fprintf(stderr, " all\n");
			return 2;
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
	size_t bytes = MB << 20, pages = bytes / PS;

	SRC = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (SRC == MAP_FAILED)
		die("source buffer");
	for (size_t i = 0; i < bytes; i += 64)
		SRC[i] = (char)i;

	if (plist)
		return profile(plist, pages);
	printf("sealmem_bench: %zu MiB, %d interleaved runs per case after a warm-up run (median [min..max])\n", MB, RUNS);
	for (int g = 1; g <= CASES[NCASES - 1].group; g++)
		run_group(g, pages);

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

	printf("\nSEALMEM-BENCH-JSON-BEGIN\n{\"mib\": %zu, \"runs\": %d, \"interleaved\": true, \"results\": [", MB, RUNS);
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
