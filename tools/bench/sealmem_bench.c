// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem_bench: sealmem against memfd, userfaultfd and memcpy, side by side in one boot.
 * Each case runs RUNS times, interleaved with the cases it is compared with and after one
 * warm-up run; the table shows the median and the spread (min..max), and the JSON (between
 * SEALMEM-BENCH-JSON markers) has every sample. Performance is only ever
 * reported here, never asserted in tests. Memory overhead is measured as the growth of the
 * bytes in live slab objects (/proc/slabinfo, every cache shrunk first so that per-CPU
 * caches are flushed) while a file's pages become resident.
 *
 *   sealmem_bench [-m MiB] [-r runs] [-o id-prefix,...]
 *                                         (defaults: 64 MiB, 5 runs per case, every case;
 *                                         -o runs only the cases whose id starts with one
 *                                         of the prefixes)
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
#include <dirent.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/sealmem.h>

#include "sealmem_lib.h"

#define PS 4096UL
#define MAXRUNS 16

static size_t MB = 64;
static int RUNS = 5;
static char *SRC; /* the data every filler copies from */
static size_t SRCBYTES; /* MB MiB */

/*
 * The huge cases (groups 14-16): the lazy read and the resident fault-in use a file of
 * HUGE_MB MiB (1 GiB when the VM holds it; sealmem_bench_huge_mib=N in the environment, i.e.
 * on the VM's kernel command line, overrides) and HUGE_RUNS interleaved runs (3; also
 * sealmem_bench_huge_runs), after a warm-up run at MB MiB. HAVE_HUGE: the module reports
 * SEALMEM_FEATURE_HUGE (else those cases are skipped).
 */
#define HUGE_BYTES ((size_t)SEALMEM_HUGE_SIZE)
static size_t HUGE_MB;
static int HUGE_RUNS = 3;
static int HUGEREAD_SECONDS = 120; /* the lazy read's 4 KiB side: its timed runs' budget (see run_group) */
static int HAVE_HUGE;
static int WARMUP; /* the current run is a group's warm-up run */

static void die(const char *what)
{
	perror(what);
	exit(2);
}

#include "prof.h"

/* The source bytes for file offset `off`: SRC at the same offset, wrapped round SRC's size. */
static char *src_at(size_t off, size_t len)
{
	size_t o = off % SRCBYTES;

	return SRC + (o + len <= SRCBYTES ? o : 0);
}

/* The clock around a case's timed part; under -P the profiler samples only in between. */
static double tstart(void)
{
	prof_resume();
	return sm_now();
}

static double tstop(void)
{
	double t = sm_now();

	prof_pause();
	return t;
}

/* ---- results ------------------------------------------------------------------------- */

struct result {
	char name[128];
	char unit[16];
	double v[MAXRUNS];
	int n;
};

static struct result RES[128];
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

/* The helpers the selftests and the fuzzer share are in selftests/c/sealmem_lib.{c,h}. */
static int bench_lazy(size_t size, int *hfd, int huge)
{
	int fd = sm_new();

	if (fd < 0 || sm_set_size(fd, size))
		die("sealmem file");
	/* A huge file: 2 MiB fill units, one request per missing unit, PMD mappings. */
	if (huge && ioctl(fd, SEALMEM_IOC_SET_HUGE, 0))
		die("SEALMEM_IOC_SET_HUGE");
	/* Non-blocking: several filler threads poll the same fd, and only one gets each request. */
	*hfd = sm_fill_enable(fd, SEALMEM_FD_CLOEXEC | SEALMEM_FD_NONBLOCK);
	if (*hfd < 0)
		die("FILL_ENABLE");
	return fd;
}

/* COPY from SRC at the same offset. */
static int bench_copy(int hfd, size_t off, size_t len, int skip)
{
	return sm_copy_flags(hfd, off, src_at(off, len), len, skip ? SEALMEM_FILL_SKIP_EXISTING : 0, NULL);
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
	struct uffdio_copy c = { .dst = (uintptr_t)(base + off), .src = (uintptr_t)src_at(off, len), .len = len };

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
	atomic_long requests; /* requests read (messages) */
	pthread_t th;
};

/*
 * Fills for the request at `page`: `prefetch` pages from it, or with `unit` (a huge file's
 * SEALMEM_MSG_HUGE request) the whole 2 MiB unit, cut at the end of the region.
 */
static void fill_one(struct filler *f, size_t page, int unit)
{
	size_t n = unit ? HUGE_BYTES / PS : f->prefetch, off = page * PS, done;

	if (page + n > f->pages)
		n = f->pages - page;
	if (f->kind == SEALMEM) {
		struct sealmem_copy c = { .offset = off, .src = (__u64)(uintptr_t)src_at(off, n * PS), .len = n * PS,
					  .flags = n > 1 && !unit ? SEALMEM_FILL_SKIP_EXISTING : 0 };

		ioctl(f->fd, SEALMEM_IOC_COPY, &c);
		done = c.copy > 0 ? c.copy / PS : 0;
	} else {
		struct uffdio_copy c = { .dst = (uintptr_t)(f->base + off), .src = (uintptr_t)src_at(off, n * PS), .len = n * PS };

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

			for (ssize_t i = 0; i < n / (ssize_t)sizeof(m[0]); i++) {
				atomic_fetch_add(&f->requests, 1);
				fill_one(f, m[i].offset / PS, !!(m[i].flags & SEALMEM_MSG_HUGE));
			}
			if (n == 0)
				break;
		} else {
			struct uffd_msg m[16];
			ssize_t n = read(f->fd, m, sizeof(m));

			for (ssize_t i = 0; i < n / (ssize_t)sizeof(m[0]); i++)
				if (m[i].event == UFFD_EVENT_PAGEFAULT) {
					atomic_fetch_add(&f->requests, 1);
					fill_one(f, ((uintptr_t)m[i].arg.pagefault.address - (uintptr_t)f->base) / PS, 0);
				}
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

static void region_open(struct region *r, enum kind kind, size_t pages, size_t prefetch, int handlers, int pinned, int huge)
{
	size_t len = pages * PS;

	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->pages = pages;
	r->handlers = handlers;
	if (kind == SEALMEM) {
		r->fd = bench_lazy(len, &r->hfd, huge);
		r->map = mmap(NULL, len, PROT_READ, MAP_SHARED, r->fd, 0);
		if (huge && r->map != MAP_FAILED && (uintptr_t)r->map % HUGE_BYTES)
			printf("    # warning: a huge file's mapping at %p is not 2 MiB-aligned\n", (void *)r->map);
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

/* What a lazy read cost besides time: requests and the module's fault counters (deltas). */
struct lazy_counts {
	long long requests;  /* messages the handler threads read */
	long long fdinfo;    /* the handler fd's fdinfo "total:" (sealmem) */
	long long faults;    /* debugfs counters/faults: ->fault calls */
	long long pmd;       /* counters/pmd_faults: faults that mapped a unit with one PMD */
	long long units;     /* counters/huge_units */
	long long fallbacks; /* counters/huge_fallbacks */
};

static void counters_now(struct lazy_counts *c)
{
	c->faults = sm_counter("faults");
	c->pmd = sm_counter("pmd_faults");
	c->units = sm_counter("huge_units");
	c->fallbacks = sm_counter("huge_fallbacks");
}

/*
 * Seconds to touch every page once with `threads` faulting threads on disjoint halves; with
 * `huge` a huge sealmem file; `lc` (if not NULL) gets the requests and counter deltas.
 */
static double lazy_read(enum kind kind, size_t pages, size_t prefetch, int threads, int handlers, int pinned,
			int huge, struct lazy_counts *lc)
{
	struct region r;
	struct toucher t[2];
	struct lazy_counts c0, c1;
	double t0, t1;

	region_open(&r, kind, pages, prefetch, handlers, pinned, huge);
	counters_now(&c0);
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
	counters_now(&c1);
	if (lc) {
		lc->requests = 0;
		for (int i = 0; i < handlers; i++)
			lc->requests += atomic_load(&r.f[i].requests);
		lc->fdinfo = kind == SEALMEM ? sm_fdinfo_num(r.hfd, "total") : -1;
		lc->faults = c1.faults - c0.faults;
		lc->pmd = c1.pmd - c0.pmd;
		lc->units = c1.units - c0.units;
		lc->fallbacks = c1.fallbacks - c0.fallbacks;
	}
	region_close(&r);
	return t1 - t0;
}

/* ---- 3: bulk fill --------------------------------------------------------------------- */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/*
 * The kB of `field` (e.g. "FilePmdMapped", "AnonHugePages") in /proc/self/smaps for the
 * mapping that starts at `addr`; -1 if not found.
 */
static long smaps_kb(const void *addr, const char *field)
{
	char line[512];
	FILE *f = fopen("/proc/self/smaps", "r");
	int in = 0;
	long v = -1;
	size_t flen = strlen(field);

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = lo == (uintptr_t)addr;
			continue;
		}
		if (in && !strncmp(line, field, flen) && line[flen] == ':') {
			v = strtol(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/* Reads one byte of every page of `map` (what a workload does after the fill). */
static void touch_all(const char *map, size_t bytes)
{
	volatile char sink;

	for (size_t off = 0; off < bytes; off += PS)
		sink = map[off];
	(void)sink;
}

/*
 * Seconds to fill `bytes` bytes in calls of `batch` bytes with `how`, and with `touch` also
 * to read one byte of every page through a shared mapping afterwards (the like-for-like
 * cases: the fill then installs what the mapping will use, and the user pays for the faults
 * that are left). Setting up the file, the mapping and the userfaultfd registration, and
 * tearing them down, are not timed (alike for every side).
 *
 *   sealmem-copy:  COPY into a lazy sealmem file; with `touch` the file is mapped before
 *                  the fill (COPY installs no PTE: the touch faults the pages in, 64 KiB
 *                  fault-around per fault); without, the file is never mapped (secondary)
 *   uffdio-copy:   UFFDIO_COPY into a memfd mapping registered for missing faults (each call
 *                  installs the PTEs: the touch takes no fault)
 *   memfd-pwrite:  pwrite into a memfd (mapped before the fill when touched)
 *   memcpy:        memcpy into populated anonymous memory (the ceiling)
 *   sealmem-huge-copy: as sealmem-copy into a huge file (2 MiB units: a COPY of a whole unit
 *                  installs one 2 MiB folio; the touch maps each unit with one PMD fault)
 *   memcpy-thp:    memcpy into populated anonymous memory backed by 2 MiB pages
 */
static double bulk_fill(const char *how, size_t bytes, size_t batch, int touch)
{
	double t0, t1;

	if (!strcmp(how, "sealmem-copy") || !strcmp(how, "sealmem-huge-copy")) {
		int huge = !strcmp(how, "sealmem-huge-copy");
		int hfd, fd = bench_lazy(bytes, &hfd, huge);
		struct lazy_counts c0, c1;
		char *map = NULL;

		if (touch) {
			map = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
			if (map == MAP_FAILED)
				die("mmap sealmem");
		}
		counters_now(&c0);
		t0 = tstart();
		for (size_t off = 0; off < bytes; off += batch)
			if (bench_copy(hfd, off, batch, 0))
				die("SEALMEM_IOC_COPY");
		if (touch)
			touch_all(map, bytes);
		t1 = tstop();
		counters_now(&c1);
		if (huge && WARMUP)
			printf("    # %s: %zu MiB in %zu-byte COPYs: %lld units as 2 MiB folios, %lld fallbacks; touch: %lld faults, %lld PMD faults; FilePmdMapped %ld kB\n",
			       how, bytes >> 20, batch, c1.units - c0.units, c1.fallbacks - c0.fallbacks, c1.faults - c0.faults,
			       c1.pmd - c0.pmd, touch ? smaps_kb(map, "FilePmdMapped") : -1);
		if (touch)
			munmap(map, bytes);
		close(hfd);
		close(fd);
	} else if (!strcmp(how, "uffdio-copy")) {
		int mfd = memfd_create("bench", MFD_CLOEXEC), ufd;
		char *map;

		if (mfd < 0 || ftruncate(mfd, bytes))
			die("memfd");
		map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		if (map == MAP_FAILED)
			die("mmap memfd");
		ufd = uffd_new(map, bytes);
		t0 = tstart();
		for (size_t off = 0; off < bytes; off += batch)
			if (uffd_copy(ufd, map, off, batch))
				die("UFFDIO_COPY");
		if (touch)
			touch_all(map, bytes);
		t1 = tstop();
		close(ufd);
		munmap(map, bytes);
		close(mfd);
	} else if (!strcmp(how, "memfd-pwrite")) {
		int mfd = memfd_create("bench", MFD_CLOEXEC);
		char *map = NULL;

		if (mfd < 0)
			die("memfd");
		if (touch) {
			if (ftruncate(mfd, bytes))
				die("ftruncate");
			map = mmap(NULL, bytes, PROT_READ, MAP_SHARED, mfd, 0);
			if (map == MAP_FAILED)
				die("mmap memfd");
		}
		t0 = tstart();
		for (size_t off = 0; off < bytes; off += batch)
			if (pwrite(mfd, SRC + off, batch, off) != (ssize_t)batch)
				die("pwrite");
		if (touch)
			touch_all(map, bytes);
		t1 = tstop();
		if (touch)
			munmap(map, bytes);
		close(mfd);
	} else if (!strcmp(how, "memcpy-thp")) {
		/* Into populated anonymous memory backed by 2 MiB pages (MADV_HUGEPAGE, aligned). */
		size_t alen = bytes + HUGE_BYTES;
		char *raw = mmap(NULL, alen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *dst;

		if (raw == MAP_FAILED)
			die("mmap anon");
		dst = (char *)(((uintptr_t)raw + HUGE_BYTES - 1) & ~(HUGE_BYTES - 1));
		if (madvise(dst, bytes, MADV_HUGEPAGE) || madvise(dst, bytes, MADV_POPULATE_WRITE))
			die("madvise HUGEPAGE/POPULATE_WRITE");
		if (WARMUP)
			printf("    # %s: destination AnonHugePages %ld kB of %zu kB\n", how,
			       smaps_kb(raw, "AnonHugePages"), bytes >> 10);
		t0 = tstart();
		for (size_t off = 0; off < bytes; off += batch)
			memcpy(dst + off, SRC + off, batch);
		if (touch)
			touch_all(dst, bytes);
		t1 = tstop();
		munmap(raw, alen);
	} else {
		char *dst = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

		if (dst == MAP_FAILED)
			die("mmap anon");
		t0 = tstart();
		for (size_t off = 0; off < bytes; off += batch)
			memcpy(dst + off, SRC + off, batch);
		if (touch)
			touch_all(dst, bytes);
		t1 = tstop();
		munmap(dst, bytes);
	}
	return t1 - t0;
}

/* ---- sendfile out of a resident file ---------------------------------------------------- */

#define SENDFILE_MIB 512 /* per file, one file resident at a time (the VM has 2 GiB) */
#define PIPE_BYTES (1 << 20)

/*
 * Seconds to sendfile all of a resident `bytes`-byte file (sealmem or memfd, filled with
 * pwrite before the clock starts) into a pipe of 1 MiB, draining the pipe with splice to
 * /dev/null after each sendfile call, in one thread. It measures whatever each file's
 * splice_read does: a copy into pipe pages, or lending the file's pages to the pipe.
 */
static double sendfile_run(int sealmem, size_t bytes)
{
	int fd = sealmem ? open("/dev/sealmem", O_RDWR | O_CLOEXEC) : memfd_create("bench", MFD_CLOEXEC);
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC), p[2];
	size_t srcbytes = MB << 20;
	off_t off = 0;
	double t0, t1;

	if (fd < 0 || null < 0 || pipe2(p, O_CLOEXEC))
		die("sendfile setup");
	if (fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES) < 0)
		die("F_SETPIPE_SZ");
	for (size_t o = 0; o < bytes; o += srcbytes) {
		size_t n = bytes - o < srcbytes ? bytes - o : srcbytes;

		if (pwrite(fd, SRC, n, (off_t)o) != (ssize_t)n)
			die("sendfile: fill the file");
	}
	t0 = tstart();
	while ((size_t)off < bytes) {
		ssize_t n = sendfile(p[1], fd, &off, PIPE_BYTES);

		if (n <= 0)
			die("sendfile");
		while (n > 0) {
			ssize_t m = splice(p[0], NULL, null, NULL, n, SPLICE_F_MOVE);

			if (m <= 0)
				die("splice to /dev/null");
			n -= m;
		}
	}
	t1 = tstop();
	close(p[0]);
	close(p[1]);
	close(null);
	close(fd);
	return t1 - t0;
}

/* ---- 4: fault-in of a resident file --------------------------------------------------- */

/* The files of the resident fault-in cases (struct bcase.kind). */
enum { RES_MEMFD, RES_SEALMEM, RES_SEALMEM_HUGE, RES_MEMFD_THP };

#define SHMEM_THP "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

/*
 * Sets shmem's THP mode for memfd (SHMEM_THP: the internal mount memfd_create uses) to
 * `mode`, and returns the mode it had in `old` (the bracketed word of the file).
 */
static void shmem_thp(const char *mode, char *old, size_t oldlen)
{
	char buf[256], *a, *b;
	int fd = open(SHMEM_THP, O_RDWR);
	ssize_t n;

	if (fd < 0)
		die(SHMEM_THP);
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	a = strchr(buf, '[');
	b = a ? strchr(a, ']') : NULL;
	if (old && a && b)
		snprintf(old, oldlen, "%.*s", (int)(b - a - 1), a + 1);
	if (pwrite(fd, mode, strlen(mode), 0) != (ssize_t)strlen(mode))
		die("write " SHMEM_THP);
	close(fd);
}

/* The kB of `field` in /proc/meminfo; -1 if not found. */
static long long meminfo_kb(const char *field)
{
	char line[256];
	long long v = -1;
	size_t flen = strlen(field);
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, flen) && line[flen] == ':') {
			v = strtoll(line + flen + 1, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return v;
}

/* Writes `len` bytes of SRC (repeated) from offset 0 of `fd` (short writes continued). */
static void write_file(int fd, size_t len)
{
	for (size_t o = 0; o < len;) {
		size_t n = len - o < SRCBYTES ? len - o : SRCBYTES;
		ssize_t w = pwrite(fd, SRC, n, (off_t)o);

		if (w <= 0) {
			fprintf(stderr, "resident file: pwrite at %zu MiB of %zu: %s; MemFree %lld kB, MemAvailable %lld kB\n",
				o >> 20, len >> 20, w < 0 ? strerror(errno) : "wrote nothing", meminfo_kb("MemFree"),
				meminfo_kb("MemAvailable"));
			exit(2);
		}
		o += (size_t)w;
	}
}

/*
 * Seconds to touch every page of a fully resident file of `pages` pages once through a new
 * shared mapping (sequentially, or in a scattered order), not counting making it resident.
 * RES_SEALMEM_HUGE: a huge sealmem file (sized first, so that pwrite allocates a 2 MiB folio
 * per unit); RES_MEMFD_THP: a memfd with shmem THP set to "within_size" for the case (and
 * restored after), so that its page cache holds 2 MiB folios too.
 */
static double resident_faultin(int kind, size_t pages, int random)
{
	size_t len = pages * PS;
	int sealmem = kind == RES_SEALMEM || kind == RES_SEALMEM_HUGE;
	struct toucher t = { .first = 0, .count = pages, .stride = random ? 4099 : 1 };
	char thp_old[32] = "";
	struct lazy_counts c0, c1;
	double t0, t1;
	char *map;
	int fd;

	if (kind == RES_MEMFD_THP)
		shmem_thp("within_size", thp_old, sizeof(thp_old));
	fd = sealmem ? open("/dev/sealmem", O_RDWR | O_CLOEXEC) : memfd_create("bench", MFD_CLOEXEC);
	if (fd < 0)
		die("resident file");
	if (kind == RES_SEALMEM_HUGE && (sm_set_size(fd, len) || ioctl(fd, SEALMEM_IOC_SET_HUGE, 0)))
		die("resident huge file");
	if (kind == RES_MEMFD_THP && ftruncate(fd, (off_t)len))
		die("resident memfd: ftruncate");
	write_file(fd, len);
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		die("mmap");
	counters_now(&c0);
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
	counters_now(&c1);
	if (WARMUP && (kind == RES_SEALMEM_HUGE || kind == RES_MEMFD_THP))
		printf("    # resident %s %zu MiB: mapped at %p, FilePmdMapped %ld kB, ShmemPmdMapped %ld kB (shmem's PMD mappings), ShmemHugePages %lld kB; sealmem counters: %lld faults, %lld PMD faults%s\n",
		       kind == RES_MEMFD_THP ? "memfd THP" : "sealmem huge", len >> 20, (void *)map, smaps_kb(map, "FilePmdMapped"),
		       smaps_kb(map, "ShmemPmdMapped"), meminfo_kb("ShmemHugePages"), c1.faults - c0.faults, c1.pmd - c0.pmd,
		       kind == RES_SEALMEM_HUGE ? "" : " (none: memfd)");
	munmap(map, len);
	close(fd);
	if (kind == RES_MEMFD_THP)
		shmem_thp(thp_old, NULL, 0);
	return t1 - t0;
}

/* ---- 6. memory overhead ---------------------------------------------------------------- */

/*
 * Bytes in live slab objects, summed over every cache of /proc/slabinfo (active objects x
 * object size), after shrinking every cache (/sys/kernel/slab/NAME/shrink): that flushes the
 * per-CPU slabs and sheaves, whose free objects /proc/slabinfo would otherwise count as
 * active. Objects freed after an RCU grace period (XArray nodes are) are given a second to
 * go first. *xa_nodes gets the live radix_tree_node objects (the XArray's nodes) alone.
 */
static long long slab_bytes(long long *xa_nodes)
{
	char line[512], path[300];
	long long total = 0;
	DIR *d;
	struct dirent *e;
	FILE *f;

	usleep(1000 * 1000);
	d = opendir("/sys/kernel/slab");
	if (!d)
		die("/sys/kernel/slab");
	while ((e = readdir(d))) {
		int fd;

		if (e->d_name[0] == '.' || e->d_type == DT_LNK) /* aliases of merged caches */
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink", e->d_name);
		fd = open(path, O_WRONLY);
		if (fd >= 0) {
			if (write(fd, "1", 1) != 1)
				die("slab shrink");
			close(fd);
		}
	}
	closedir(d);
	f = fopen("/proc/slabinfo", "r");
	if (!f)
		die("/proc/slabinfo");
	*xa_nodes = -1;
	while (fgets(line, sizeof(line), f)) {
		char name[64];
		long long active, num, size;

		if (sscanf(line, "%63s %lld %lld %lld", name, &active, &num, &size) != 4)
			continue; /* the header lines */
		total += active * size;
		if (!strcmp(name, "radix_tree_node"))
			*xa_nodes = active;
	}
	fclose(f);
	return total;
}

/*
 * Bookkeeping bytes per resident page: how much live slab memory grows while `pages` pages,
 * `stride` pages apart, become resident in a new sealmem file or memfd (kept open until the
 * second count). The page itself and its struct page are the same for both and not counted;
 * neither are page tables (the file is not mapped) nor slabs' unused space. What is counted
 * is every slab object either allocates while its pages become resident: XArray nodes
 * (radix_tree_node, 576 bytes per 64 pages when dense), memcg's per-slab object vectors,
 * anything else per page. Anything else the kernel allocates meanwhile is noise, which the
 * file is large enough (512 MiB) to make small.
 */
static double overhead(int sealmem, size_t pages, size_t stride)
{
	int fd = sealmem ? open("/dev/sealmem", O_RDWR | O_CLOEXEC) : memfd_create("bench", MFD_CLOEXEC);
	__u64 size = (__u64)pages * stride * PS;
	long long before, after, xa0, xa1;

	if (fd < 0 || (sealmem ? ioctl(fd, SEALMEM_IOC_SET_SIZE, &size) : ftruncate(fd, (off_t)size)))
		die("overhead file");
	before = slab_bytes(&xa0);
	for (size_t i = 0; i < pages; i++)
		if (pwrite(fd, SRC + (i % (MB * 256)) * PS, PS, (off_t)(i * stride * PS)) != (ssize_t)PS)
			die("overhead pwrite");
	after = slab_bytes(&xa1);
	close(fd);
	printf("    # overhead %s: %zu pages, live slab +%lld bytes, radix_tree_node +%lld objects\n",
	       sealmem ? "sealmem" : "memfd", pages, after - before, xa1 - xa0);
	return (double)(after - before) / pages;
}

/* ---- the cases ------------------------------------------------------------------------- */

enum what { LAZY, FILL, RESIDENT, OVERHEAD, SENDFILE, HUGEREAD };

/*
 * One benchmark case. Cases of the same group are compared with each other: they run
 * interleaved (one run of each in turn, RUNS rounds) after one untimed warm-up run of each,
 * so that drift within the boot (the first case of a boot runs slower under TCG: cold
 * translation cache, first-touch of memory) does not favour one side of a ratio; and the
 * order rotates from round to round (round k starts with the group's case k), so that no
 * case always runs first, or always right after the same other case.
 */
struct bcase {
	int group;
	const char *id;   /* the name -P and -o take */
	const char *name; /* the name in the table and the JSON */
	const char *unit;
	enum what what;
	int kind;         /* LAZY: enum kind; RESIDENT, OVERHEAD, SENDFILE: 1 = sealmem, 0 = memfd */
	const char *how;  /* FILL: sealmem-copy, uffdio-copy, memfd-pwrite, memcpy */
	size_t batch;     /* FILL: bytes per call */
	int touch;        /* FILL: then read every page through a mapping (see bulk_fill()) */
	int rt;           /* LAZY: min(file, 8192) pages instead of the whole file */
	size_t prefetch;  /* LAZY: pages per request */
	int threads, handlers;
	int per_fault;    /* LAZY: report us/fault instead of GB/s */
	int random;       /* RESIDENT: scattered order */
	int pinned;       /* LAZY: faulting thread on CPU 0, handler on CPU 1 (see pin()) */
	int huge;         /* HUGEREAD: a huge file (2 MiB fills) */
	int big;          /* a file of HUGE_MB MiB, HUGE_RUNS runs (warm-up at MB MiB) */
	int needs_huge;   /* skipped without SEALMEM_FEATURE_HUGE */
};

#define RT(g, id, name, k) { g, id, name, "us/fault", LAZY, k, .rt = 1, .prefetch = 1, .threads = 1, .handlers = 1, .per_fault = 1, .pinned = 1 }
#define SEQ(g, id, name, k, pf) { g, id, name, "GB/s", LAZY, k, .prefetch = pf, .threads = 1, .handlers = 1, .pinned = 1 }
#define FILLT(g, id, name, h, b) { g, id, name, "GB/s", FILL, .how = h, .batch = b, .touch = 1 }
#define FILLC(g, id, name, h, b) { g, id, name, "GB/s", FILL, .how = h, .batch = b }
#define RESID(g, id, name, s, r) { g, id, name, "ns/page", RESIDENT, s, .random = r }
#define HREAD(g, id, name, h) { g, id, name, "GB/s", HUGEREAD, SEALMEM, .huge = h, .big = 1, .needs_huge = 1 }
#define HRESID(g, id, name, k) { g, id, name, "ns/page", RESIDENT, k, .big = 1, .needs_huge = 1 }
#define HFILL(g, id, name, h, b) { g, id, name, "GB/s", FILL, .how = h, .batch = b, .touch = 1, .needs_huge = 1 }
#define SCALE(g, id, name, k, t, h) { g, id, name, "GB/s", LAZY, k, .rt = 1, .prefetch = 1, .threads = t, .handlers = h }

/* What each group measures, printed above its results. */
static const char *const GROUPS[] = {
	[1] = "missing-fault round trip: 1 faulting thread (CPU 0) touches 8192 pages of a lazy region; 1 handler thread (CPU 1) fills one page per request",
	[2] = "sequential lazy read of the whole file, one byte per page through a mapping; the handler fills 1 or 64 pages per request",
	[3] = "bulk fill like for like, 4 KiB per call: fill the whole file, then read one byte of every page through a shared mapping (sealmem: COPY into a mapped lazy file, then the touch faults the pages in; UFFDIO_COPY: into a registered memfd mapping, PTEs installed by the fill, the touch takes no fault; pwrite: into a mapped memfd, then the touch faults; memcpy: into populated anonymous memory, then the touch). Timed: fill + touch; setup and teardown untimed",
	[4] = "bulk fill like for like, 64 KiB per call (as above)",
	[5] = "bulk fill like for like, 2 MiB per call (as above; 4 KiB pages: no huge pages in the base kernel)",
	[6] = "secondary: fill only, 4 KiB per call, nothing touched (sealmem COPY into a file never mapped, so it installs no PTE; UFFDIO_COPY still installs PTEs: not the same work)",
	[7] = "secondary: fill only, 64 KiB per call (as above)",
	[8] = "secondary: fill only, 2 MiB per call (as above)",
	[9] = "fault-in of a fully resident file through a shared mapping, sequential",
	[10] = "fault-in of a fully resident file through a shared mapping, scattered (stride 4099 pages)",
	[11] = "sendfile of a resident 512 MiB file into a 1 MiB pipe, drained with splice to /dev/null after each call (one thread); measures whatever the file's splice_read does (copy into the pipe, or lend the pages)",
	[12] = "scaling: 2 faulting threads on disjoint halves vs 1, 8192 pages, 1 page per request, threads not pinned: on 2 vCPUs this measures how far waits overlap (faulters asleep while handlers fill), not parallel CPU work",
	[13] = "memory overhead: growth of live slab objects (every cache shrunk first) while 512 MiB of a new file become resident page by page, per page",
	[14] = "huge lazy read: 1 thread (CPU 0) reads one byte per 4 KiB page of a whole lazy file (HUGE_MB, 1 GiB when the VM holds it, cut to what fits sealmem_bench_hugeread_seconds for the 4 KiB side's runs at its warm-up's pace; both sides the same size) through a mapping; 1 handler thread (CPU 1) answers each request: one 4 KiB COPY (a normal file) or one 2 MiB COPY of the unit (a huge file, SEALMEM_MSG_HUGE requests). Also counted per GiB: requests (the handler's reads; fdinfo total agrees) and faults (debugfs counters faults + pmd_faults)",
	[15] = "huge resident fault-in: touch every 4 KiB of a fully resident file (HUGE_MB) through a new shared mapping: sealmem huge file (2 MiB folios, PMD mappings), memfd with shmem THP within_size (2 MiB folios), sealmem 4 KiB file",
	[16] = "huge bulk fill like for like, 2 MiB per call: fill the whole file, then read one byte of every 4 KiB through a shared mapping (sealmem: COPY of whole units into a mapped lazy huge file, one 2 MiB folio each, the touch maps each with one PMD fault; UFFDIO_COPY: into a registered memfd mapping as in [5], 4 KiB pages, PTEs installed by the fill; memcpy: into populated anonymous memory backed by 2 MiB pages (MADV_HUGEPAGE)). Timed: fill + touch",
};

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
	/* 3. bulk fill like for like: fill, then touch every page through a mapping */
	FILLT(3, "filltouch-sealmem-4K", "fill+touch sealmem-copy mapped 4K", "sealmem-copy", 4096),
	FILLT(3, "filltouch-uffdio-4K", "fill+touch uffdio-copy 4K", "uffdio-copy", 4096),
	FILLT(3, "filltouch-pwrite-4K", "fill+touch memfd-pwrite mapped 4K", "memfd-pwrite", 4096),
	FILLT(3, "filltouch-memcpy-4K", "fill+touch memcpy 4K", "memcpy", 4096),
	FILLT(4, "filltouch-sealmem-64K", "fill+touch sealmem-copy mapped 64K", "sealmem-copy", 65536),
	FILLT(4, "filltouch-uffdio-64K", "fill+touch uffdio-copy 64K", "uffdio-copy", 65536),
	FILLT(4, "filltouch-pwrite-64K", "fill+touch memfd-pwrite mapped 64K", "memfd-pwrite", 65536),
	FILLT(4, "filltouch-memcpy-64K", "fill+touch memcpy 64K", "memcpy", 65536),
	FILLT(5, "filltouch-sealmem-2M", "fill+touch sealmem-copy mapped 2048K", "sealmem-copy", 2 << 20),
	FILLT(5, "filltouch-uffdio-2M", "fill+touch uffdio-copy 2048K", "uffdio-copy", 2 << 20),
	FILLT(5, "filltouch-pwrite-2M", "fill+touch memfd-pwrite mapped 2048K", "memfd-pwrite", 2 << 20),
	FILLT(5, "filltouch-memcpy-2M", "fill+touch memcpy 2048K", "memcpy", 2 << 20),
	/* secondary: fill only (the old "fill ..." cases, renamed) */
	FILLC(6, "fillonly-sealmem-4K", "fill-only sealmem-copy unmapped 4K", "sealmem-copy", 4096),
	FILLC(6, "fillonly-uffdio-4K", "fill-only uffdio-copy 4K", "uffdio-copy", 4096),
	FILLC(6, "fillonly-pwrite-4K", "fill-only memfd-pwrite 4K", "memfd-pwrite", 4096),
	FILLC(6, "fillonly-memcpy-4K", "fill-only memcpy 4K", "memcpy", 4096),
	FILLC(7, "fillonly-sealmem-64K", "fill-only sealmem-copy unmapped 64K", "sealmem-copy", 65536),
	FILLC(7, "fillonly-uffdio-64K", "fill-only uffdio-copy 64K", "uffdio-copy", 65536),
	FILLC(7, "fillonly-pwrite-64K", "fill-only memfd-pwrite 64K", "memfd-pwrite", 65536),
	FILLC(7, "fillonly-memcpy-64K", "fill-only memcpy 64K", "memcpy", 65536),
	FILLC(8, "fillonly-sealmem-2M", "fill-only sealmem-copy unmapped 2048K", "sealmem-copy", 2 << 20),
	FILLC(8, "fillonly-uffdio-2M", "fill-only uffdio-copy 2048K", "uffdio-copy", 2 << 20),
	FILLC(8, "fillonly-pwrite-2M", "fill-only memfd-pwrite 2048K", "memfd-pwrite", 2 << 20),
	FILLC(8, "fillonly-memcpy-2M", "fill-only memcpy 2048K", "memcpy", 2 << 20),
	/* 4. fault-in of a fully resident file */
	RESID(9, "resident-sealmem-seq", "resident sealmem sequential", 1, 0),
	RESID(9, "resident-memfd-seq", "resident memfd sequential", 0, 0),
	RESID(10, "resident-sealmem-random", "resident sealmem random", 1, 1),
	RESID(10, "resident-memfd-random", "resident memfd random", 0, 1),
	/* sendfile out of a resident file */
	{ 11, "sendfile-sealmem", "sendfile sealmem 512M to pipe to /dev/null", "GB/s", SENDFILE, 1 },
	{ 11, "sendfile-memfd", "sendfile memfd 512M to pipe to /dev/null", "GB/s", SENDFILE, 0 },
	/* 5. scaling: 1 vs 2 faulting threads (and 2 handler threads) */
	SCALE(12, "scale-sealmem-1x1", "scale sealmem 1 faulter 1 handler", SEALMEM, 1, 1),
	SCALE(12, "scale-sealmem-2x1", "scale sealmem 2 faulters 1 handler", SEALMEM, 2, 1),
	SCALE(12, "scale-sealmem-2x2", "scale sealmem 2 faulters 2 handlers", SEALMEM, 2, 2),
	SCALE(12, "scale-uffd-1x1", "scale uffd-shmem 1 faulter 1 handler", UFFD_SHMEM, 1, 1),
	SCALE(12, "scale-uffd-2x2", "scale uffd-shmem 2 faulters 2 handlers", UFFD_SHMEM, 2, 2),
	/* 6. memory overhead: 512 MiB made resident page by page (a dense file) */
	{ 13, "overhead-sealmem", "overhead sealmem dense (live slab)", "B/page", OVERHEAD, 1 },
	{ 13, "overhead-memfd", "overhead memfd dense (live slab)", "B/page", OVERHEAD, 0 },
	/* huge files (issue #16): lazy read, resident fault-in, bulk fill */
	HREAD(14, "hugeread-sealmem-4K", "huge lazy read sealmem 4K fills", 0),
	HREAD(14, "hugeread-sealmem-2M", "huge lazy read sealmem huge 2M fills", 1),
	HRESID(15, "hugeres-sealmem-2M", "huge resident sealmem huge", RES_SEALMEM_HUGE),
	HRESID(15, "hugeres-memfd-thp", "huge resident memfd THP within_size", RES_MEMFD_THP),
	HRESID(15, "hugeres-sealmem-4K", "huge resident sealmem 4K", RES_SEALMEM),
	HFILL(16, "hugefill-sealmem-2M", "huge fill+touch sealmem-copy huge 2048K", "sealmem-huge-copy", 2 << 20),
	HFILL(16, "hugefill-uffdio-2M", "huge fill+touch uffdio-copy 2048K", "uffdio-copy", 2 << 20),
	HFILL(16, "hugefill-memcpy-2M", "huge fill+touch memcpy THP 2048K", "memcpy-thp", 2 << 20),
};
#define NCASES (sizeof(CASES) / sizeof(CASES[0]))

/* -o: the id prefixes to run (NULL: every case). */
static char *ONLY[32];
static int NONLY;

static int selected(const struct bcase *c)
{
	if (!NONLY)
		return 1;
	for (int i = 0; i < NONLY; i++)
		if (!strncmp(c->id, ONLY[i], strlen(ONLY[i])))
			return 1;
	return 0;
}

/* Adds sample `v` to the result row `name` (made on first use). */
static void record(const char *name, const char *unit, double v)
{
	struct result *r = find(name);

	if (!r)
		r = result(name, unit);
	if (r->n < MAXRUNS)
		r->v[r->n++] = v;
}

/* One run of case `c` on a file of `pages` pages: its value in the case's unit. */
static double run_case(const struct bcase *c, size_t pages)
{
	size_t n = c->rt && pages > 8192 ? 8192 : pages;
	double s;

	switch (c->what) {
	case LAZY:
		s = lazy_read(c->kind, n, c->prefetch, c->threads, c->handlers, c->pinned, 0, NULL);
		return c->per_fault ? s * 1e6 / n : n * PS / s / 1e9;
	case HUGEREAD: {
		struct lazy_counts lc;
		double gib = (double)(pages * PS) / (1 << 30);
		char name[160];

		s = lazy_read(SEALMEM, pages, 1, 1, 1, 1, c->huge, &lc);
		printf("    # %s%s, %zu MiB: %.2f s, %lld requests (fdinfo total %lld), %lld faults + %lld PMD faults, %lld units as 2 MiB folios, %lld fallbacks\n",
		       c->id, WARMUP ? " (warm-up)" : "", (pages * PS) >> 20, s, lc.requests, lc.fdinfo, lc.faults, lc.pmd,
		       lc.units, lc.fallbacks);
		if (!WARMUP) {
			snprintf(name, sizeof(name), "%s: requests", c->name);
			record(name, "req/GiB", lc.requests / gib);
			snprintf(name, sizeof(name), "%s: faults", c->name);
			record(name, "faults/GiB", (lc.faults + lc.pmd) / gib);
		}
		return pages * PS / s / 1e9;
	}
	case FILL:
		return pages * PS / bulk_fill(c->how, pages * PS, c->batch, c->touch) / 1e9;
	case RESIDENT:
		return resident_faultin(c->kind, pages, c->random) * 1e9 / pages;
	case OVERHEAD:
		return overhead(c->kind, 131072, 1);
	case SENDFILE:
		return ((size_t)SENDFILE_MIB << 20) / sendfile_run(c->kind, (size_t)SENDFILE_MIB << 20) / 1e9;
	}
	return 0;
}

/*
 * Runs the selected cases of group `g`: a warm-up run of each, then RUNS interleaved rounds,
 * round k in the group's order rotated by k. A group of `big` cases runs on HUGE_MB MiB,
 * HUGE_RUNS rounds, its warm-up on `pages` (MB MiB).
 */
static void run_group(int g, size_t pages)
{
	struct result *r[NCASES];
	const struct bcase *c[NCASES];
	double spent[NCASES] = { 0 };
	size_t n = 0, big = 0, bigpages = (HUGE_MB << 20) / PS;
	int runs = RUNS;

	for (size_t i = 0; i < NCASES; i++)
		if (CASES[i].group == g && selected(&CASES[i])) {
			if (CASES[i].needs_huge && !HAVE_HUGE) {
				printf("[%d] %s: skipped: the module does not report SEALMEM_FEATURE_HUGE\n", g, CASES[i].id);
				continue;
			}
			c[n] = &CASES[i];
			big |= CASES[i].big;
			r[n++] = result(CASES[i].name, CASES[i].unit);
		}
	if (!n)
		return;
	if (big && HUGE_RUNS < runs)
		runs = HUGE_RUNS;
	printf("[%d] %s\n", g, GROUPS[g]);
	if (big)
		printf("    (%zu MiB, %d interleaved runs after a warm-up run at %zu MiB)\n", HUGE_MB, runs, MB);
	WARMUP = 1;
	for (size_t j = 0; j < n; j++) {
		double t0 = sm_now(), t;

		run_case(c[j], pages);
		t = sm_now() - t0;
		/*
		 * The lazy read's 4 KiB side waits for a round trip per page, whose cost depends on
		 * the host's load (118 us on a quiet host, 10x that under load): its file is cut
		 * to what fits HUGEREAD_SECONDS for its timed runs at the warm-up's pace (a
		 * multiple of 64 MiB, both sides the same size; printed).
		 */
		if (c[j]->what == HUGEREAD && !c[j]->huge && big) {
			double per_mib = t / MB, fit = HUGEREAD_SECONDS / runs / per_mib;

			bigpages = (HUGE_MB << 20) / PS;
			if (fit < HUGE_MB) {
				size_t mib = fit < 64 ? 64 : ((size_t)fit & ~(size_t)63);

				bigpages = (mib << 20) / PS;
				printf("    (the 4 KiB side's warm-up took %.1f s for %zu MiB: %zu MiB instead of %zu, to fit %d s for its %d runs)\n",
				       t, MB, mib, HUGE_MB, HUGEREAD_SECONDS, runs);
			}
		}
	}
	WARMUP = 0;
	for (int k = 0; k < runs; k++)
		for (size_t i = 0; i < n; i++) {
			size_t j = (i + k) % n;
			double t0 = sm_now();

			r[j]->v[r[j]->n++] = run_case(c[j], big ? bigpages : pages);
			spent[j] += sm_now() - t0;
		}
	for (size_t j = 0; j < n; j++) {
		size_t len = strlen(r[j]->name);

		printf("  %-48s %10.3f %-9s (%.1f s)\n", r[j]->name, median(r[j]), r[j]->unit, spent[j]);
		/* The rows a case adds beside its own ("NAME: requests", ...). */
		for (int i = 0; i < NRES; i++)
			if (!strncmp(RES[i].name, r[j]->name, len) && RES[i].name[len] == ':')
				printf("  %-48s %10.0f %-9s\n", RES[i].name, median(&RES[i]), RES[i].unit);
	}
}

static void ratio(const char *what, const char *num, const char *den, int higher_is_better, double target)
{
	struct result *a = find(num), *b = find(den);
	double r;

	if (!a || !b)
		return;
	r = higher_is_better ? median(a) / median(b) : median(b) / median(a);
	if (target > 0)
		printf("  %-66s %6.2fx  (target >= %.1fx: %s)\n", what, r, target, r >= target ? "met" : "missed");
	else
		printf("  %-66s %6.2fx  (no target)\n", what, r);
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
	while ((opt = getopt(argc, argv, "m:r:P:F:A:o:")) != -1) {
		if (opt == 'o')
			for (char *o = strtok(optarg, ","); o && NONLY < 32; o = strtok(NULL, ","))
				ONLY[NONLY++] = o;
		else if (opt == 'P')
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
	struct sealmem_api api = { .api = SEALMEM_API };
	int afd = sm_new();

	/* 2 MiB units: the huge cases copy whole units from SRC. */
	if (MB % (HUGE_BYTES >> 20))
		MB += (HUGE_BYTES >> 20) - MB % (HUGE_BYTES >> 20), bytes = MB << 20, pages = bytes / PS;
	SRCBYTES = bytes;
	HAVE_HUGE = afd >= 0 && !ioctl(afd, SEALMEM_IOC_API, &api) && (api.features & SEALMEM_FEATURE_HUGE);
	if (afd >= 0)
		close(afd);

	SRC = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (SRC == MAP_FAILED)
		die("source buffer");
	for (size_t i = 0; i < bytes; i += 64)
		SRC[i] = (char)i;

	/*
	 * The huge cases' file: 1 GiB if it fits beside everything else with 256 MiB to spare
	 * (it is the only big file alive at a time), else the largest multiple of 64 MiB that
	 * does; sealmem_bench_huge_mib / sealmem_bench_huge_runs (kernel command line words,
	 * which init passes on as environment variables) override.
	 */
	{
		long long avail = -1;
		char line[256];
		FILE *f = fopen("/proc/meminfo", "r");

		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "MemAvailable: %lld kB", &avail) == 1)
				break;
		if (f)
			fclose(f);
		HUGE_MB = 1024;
		if (avail > 0 && (size_t)(avail >> 10) < HUGE_MB + 256)
			HUGE_MB = avail >> 10 > 256 + 64 ? (((size_t)(avail >> 10) - 256) & ~(size_t)63) : 64;
		/*
		 * And within sealmem's limit on resident pages (module parameter max_pages; 0, the
		 * default, is half of RAM: beyond it fills fail with ENOSPC and writes come back
		 * short), with 128 MiB to spare.
		 */
		{
			long long maxp = 0, total = meminfo_kb("MemTotal");
			FILE *mp = fopen("/sys/module/sealmem/parameters/max_pages", "r");
			size_t limit;

			if (mp) {
				if (fscanf(mp, "%lld", &maxp) != 1)
					maxp = 0;
				fclose(mp);
			}
			limit = maxp > 0 ? (size_t)(maxp * (long long)PS >> 20) : (size_t)(total / 2 >> 10);
			if (total > 0 && HUGE_MB + 128 > limit) {
				HUGE_MB = limit > 128 + 64 ? (limit - 128) & ~(size_t)63 : 64;
				printf("sealmem_bench: the huge cases' file is %zu MiB: sealmem's max_pages allows %zu MiB resident\n",
				       HUGE_MB, limit);
			}
		}
		if (getenv("sealmem_bench_huge_mib"))
			HUGE_MB = strtoul(getenv("sealmem_bench_huge_mib"), NULL, 10);
		HUGE_MB -= HUGE_MB % (HUGE_BYTES >> 20);
		if (HUGE_MB < HUGE_BYTES >> 20)
			HUGE_MB = HUGE_BYTES >> 20;
		if (getenv("sealmem_bench_hugeread_seconds"))
			HUGEREAD_SECONDS = atoi(getenv("sealmem_bench_hugeread_seconds"));
		if (getenv("sealmem_bench_huge_runs"))
			HUGE_RUNS = atoi(getenv("sealmem_bench_huge_runs")) < 1 ? 1 : atoi(getenv("sealmem_bench_huge_runs"));
		if (HUGE_RUNS > MAXRUNS)
			HUGE_RUNS = MAXRUNS;
	}

	if (plist)
		return profile(plist, pages);
	printf("sealmem_bench: %zu MiB, %d interleaved runs per case after a warm-up run (median [min..max]); huge cases: %s, %zu MiB, %d runs\n",
	       MB, RUNS, HAVE_HUGE ? "SEALMEM_FEATURE_HUGE" : "skipped (no SEALMEM_FEATURE_HUGE)", HUGE_MB, HUGE_RUNS < RUNS ? HUGE_RUNS : RUNS);
	for (int g = 1; g <= CASES[NCASES - 1].group; g++)
		run_group(g, pages);
	if (!NRES) {
		fprintf(stderr, "-o: no case id starts with any of the prefixes\n");
		return 2;
	}

	printf("\n%-48s %12s %12s %-24s\n", "case", "median", "unit", "spread");
	for (int i = 0; i < NRES; i++)
		printf("%-48s %12.3f %12s [%.3f..%.3f]\n", RES[i].name, median(&RES[i]), RES[i].unit, vmin(&RES[i]), vmax(&RES[i]));

	printf("\nRatios (same boot; >1 means sealmem is better):\n");
	ratio("round trip vs uffd-shmem (time)", "roundtrip sealmem", "roundtrip uffd-shmem", 0, 1.0);
	ratio("round trip vs uffd-anon (time)", "roundtrip sealmem", "roundtrip uffd-anon", 0, 0);
	ratio("seq read, sealmem prefetch vs uffd page-at-a-time", "seqread sealmem prefetch 64 (SKIP_EXISTING)", "seqread uffd-shmem page-at-a-time", 1, 2.0);
	ratio("seq read, sealmem prefetch vs uffd prefetch", "seqread sealmem prefetch 64 (SKIP_EXISTING)", "seqread uffd-shmem prefetch 64", 1, 0);
	ratio("fill+touch 4K: sealmem COPY vs UFFDIO_COPY", "fill+touch sealmem-copy mapped 4K", "fill+touch uffdio-copy 4K", 1, 0);
	ratio("fill+touch 64K: sealmem COPY vs UFFDIO_COPY", "fill+touch sealmem-copy mapped 64K", "fill+touch uffdio-copy 64K", 1, 0);
	ratio("fill+touch 2M: sealmem COPY vs UFFDIO_COPY", "fill+touch sealmem-copy mapped 2048K", "fill+touch uffdio-copy 2048K", 1, 1.5);
	ratio("fill+touch 2M: sealmem COPY vs memcpy (4 KiB pages)", "fill+touch sealmem-copy mapped 2048K", "fill+touch memcpy 2048K", 1, 0.8);
	ratio("fill+touch 2M: sealmem COPY vs memfd pwrite", "fill+touch sealmem-copy mapped 2048K", "fill+touch memfd-pwrite mapped 2048K", 1, 0);
	ratio("secondary fill-only 2M: sealmem COPY unmapped vs UFFDIO_COPY", "fill-only sealmem-copy unmapped 2048K", "fill-only uffdio-copy 2048K", 1, 0);
	ratio("secondary fill-only 2M: sealmem COPY unmapped vs memcpy", "fill-only sealmem-copy unmapped 2048K", "fill-only memcpy 2048K", 1, 0);
	ratio("resident fault-in sequential vs memfd (time)", "resident sealmem sequential", "resident memfd sequential", 0, 1.0);
	ratio("resident fault-in random vs memfd (time)", "resident sealmem random", "resident memfd random", 0, 1.0);
	ratio("sendfile 512M to a pipe vs memfd", "sendfile sealmem 512M to pipe to /dev/null", "sendfile memfd 512M to pipe to /dev/null", 1, 1.0);
	ratio("2-thread wait overlap sealmem (2 faulters, 2 handlers; 2 vCPUs)", "scale sealmem 2 faulters 2 handlers", "scale sealmem 1 faulter 1 handler", 1, 1.6);
	ratio("2-thread wait overlap uffd (2 faulters, 2 handlers; 2 vCPUs)", "scale uffd-shmem 2 faulters 2 handlers", "scale uffd-shmem 1 faulter 1 handler", 1, 1.6);
	ratio("memory overhead dense vs memfd (live slab bytes)", "overhead sealmem dense (live slab)", "overhead memfd dense (live slab)", 0, 0);
	ratio("huge lazy read: requests, 4K fills / 2M fills (fewer)", "huge lazy read sealmem huge 2M fills: requests", "huge lazy read sealmem 4K fills: requests", 0, 256);
	ratio("huge lazy read: faults, 4K fills / 2M fills (fewer)", "huge lazy read sealmem huge 2M fills: faults", "huge lazy read sealmem 4K fills: faults", 0, 256);
	ratio("huge lazy read: time, 2M fills vs 4K fills", "huge lazy read sealmem huge 2M fills", "huge lazy read sealmem 4K fills", 1, 4.0);
	ratio("huge resident fault-in: sealmem huge vs memfd THP (time)", "huge resident sealmem huge", "huge resident memfd THP within_size", 0, 1.0);
	ratio("huge resident fault-in: sealmem huge vs sealmem 4K (time)", "huge resident sealmem huge", "huge resident sealmem 4K", 0, 0);
	ratio("huge fill+touch 2M: sealmem COPY huge vs UFFDIO_COPY", "huge fill+touch sealmem-copy huge 2048K", "huge fill+touch uffdio-copy 2048K", 1, 1.5);
	ratio("huge fill+touch 2M: sealmem COPY huge vs memcpy (THP)", "huge fill+touch sealmem-copy huge 2048K", "huge fill+touch memcpy THP 2048K", 1, 0.8);

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
