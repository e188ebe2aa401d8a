// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem_fuzz: a seeded fuzzer for every entry point of sealmem, bounded by an operation
 * count (with a time cap) or by time.
 *
 *   sealmem_fuzz [-s SEED] [-n OPERATIONS] [-t SECONDS] [-p PROCESSES] [-j THREADS] [-i PERCENT] [-v]
 *   sealmem_fuzz -I PERCENT        (switch allocation-failure injection on; 0: off + count)
 *
 * With -n the run ends once OPERATIONS operations reached the module; -t is then a cap, and
 * a run that hits it first fails ("time cap"), so a machine too slow for the count says so
 * instead of passing quietly. Without -n the run lasts -t seconds.
 *
 * An operation counts only if it reaches the module: a call on a sealmem fd that the VFS
 * passes on (not fd -1, not a write on a read-only fd, not a buffer outside user space, not
 * a zero-length splice), a page fault taken in a sealmem mapping (the thread's minor fault
 * count, plus the faults that raised SIGBUS), a fill. Everything else (calls the VFS or the
 * mm answer alone, mprotect/madvise/mremap, touches of pages already mapped) is counted
 * apart and printed apart.
 *
 * -I fails PERCENT of the allocations made with sealmem.ko on the call stack (failslab and
 * fail_page_alloc with the stack-trace filter; debug kernel) by tasks that have
 * /proc/PID/make-it-fail set (inherited by children), until "-I 0", which prints how many
 * failures were injected; anything may run meanwhile (the VM runs the functional suites
 * beside the fuzzer). -i tells a fuzzing run that failures are being injected: then
 * ENOMEM is accepted from the calls that allocate (and EFAULT or a short count from those
 * that copy out to user memory, whose copy-on-write fault may fail), and nothing else is.
 *
 * PROCESSES x THREADS workers hammer a shared pool of sealmem files (plain; resizable, which
 * may gain any seal and become lazy without a handler; sealed with known content; lazy, served
 * by two handler threads; and, when the module reports SEALMEM_FEATURE_HUGE, a huge plain file
 * and a huge lazy file served by two more handler threads) and fds of other kinds with random
 * ioctls (SET_HUGE among them), read/write/lseek/splice/
 * sendfile, mmap/munmap/mprotect/madvise/mremap, touches of mapped memory, fork and
 * SCM_RIGHTS, handlers killed while a reader waits, with valid and invalid arguments. It checks:
 *  - every failing call's errno against the set documented for that call in the state the
 *    fuzzer knows the file to be in (docs/api.md): EIO only where a poisoned page or a file
 *    left lazy without a handler explains it, EAGAIN only from non-blocking fds, EPERM only
 *    where a seal (added or maybe added) or the fd's mode explains it, ENOMEM only under -i
 *    and only from calls that allocate;
 *  - content: the lazy file's handlers fill page P of a file tagged T by a fixed function of
 *    (T, P): COPY of a pattern, ZEROPAGE, or POISON. Every byte read from it (pread, preadv,
 *    mapped loads) is compared with that function; a poisoned page gives EIO or SIGBUS and
 *    never data; the sealed file's bytes never change (read and mapped);
 *  - a lazy sealed image (a fresh file per run of the check, write-sealed) served by two
 *    handler threads while this thread faults its pages through a mapping and reads them with
 *    pread, FILL_END at a random moment: every page is its content (zeros for ZEROPAGE pages,
 *    EIO/SIGBUS for POISON pages) before FILL_END, its content or zeros after it, and the
 *    same ever after;
 *  - huge files (2 MiB units): a third of the fresh files, lazy images and killed handlers'
 *    files are huge, besides the two shared huge files. Their offsets, lengths, mappings
 *    (aligned and unaligned file offsets, whole units and parts), punches and sizes are drawn
 *    across unit boundaries. The handlers answer a unit's request (SEALMEM_MSG_HUGE, which
 *    must come from a file that may be huge, at a unit-aligned offset) by the kinds of its
 *    pages: most units of a huge tag have one kind (one COPY/ZEROPAGE/POISON of the whole
 *    unit, up to EOF or the whole 2 MiB cut at EOF), the others mix kinds (partial fills by
 *    runs); prefetches fill single pages (partial units) and whole units; a unit COPY from a
 *    source that faults half-way must store nothing wrong. The content oracle is per page,
 *    so it holds across unit boundaries, partial fills, punches and shrinks inside units;
 *  - a fresh file's pages read as zeros (a fresh huge file's 2 MiB folios too); a killed
 *    handler's waiter gets EIO; every child
 *    ends as it should (exit status and signal);
 *  - no operation stalls (5 s: kernel stacks printed; 10 s: a failure).
 * The seed is printed first, so any failure reproduces with -s. The last lines are
 *   sealmem_fuzz: N operations, F failures (seed S)
 *   sealmem_fuzz: M calls that never reached the module (not counted above)
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
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sealmem.h>
#include "sealmem_lib.h"

#define NFILES 6
#define SEALED_PAGES 8
/* The lazy file's size stays page-aligned, between these (so pages below LAZY_MIN_PAGES are
 * always within EOF, and no partial page ever mixes content and zeros). */
#define LAZY_MIN_PAGES 16
#define LAZY_MAX_PAGES 64
#define LAZY_TAG 0x1a2b3c4dU
/*
 * Huge files (SEALMEM_FEATURE_HUGE): 2 MiB units. A tag with HUGE_TAG set gives most units
 * one kind for all their pages (so that a unit's request is answered with one COPY, ZEROPAGE
 * or POISON of the whole unit); the rest mix kinds page by page (answered by runs: partial
 * fills of the unit). The huge lazy file's size stays page-aligned between
 * HLAZY_MIN_PAGES (a whole unit and a part of the next: always within EOF) and three units.
 */
#define UNIT ((unsigned long)SEALMEM_HUGE_SIZE)
#define UNIT_PAGES (UNIT / SM_PS)
#define HUGE_TAG 0x80000000U
#define HLAZY_TAG (0x5a2b3c4dU | HUGE_TAG)
#define HLAZY_MIN_PAGES (UNIT_PAGES + UNIT_PAGES / 4)
#define HLAZY_MAX_PAGES (3 * UNIT_PAGES)

/* F_HUGE: plain (not lazy), huge; F_HLAZY: lazy and huge, served by two handler threads. */
enum { F_PLAIN, F_RESIZE, F_SEALED, F_LAZY, F_HUGE, F_HLAZY };

static int FD[NFILES], VIEWFD[NFILES], HFD, HFD2; /* HFD2: F_HLAZY's handler fd */
static int HAVE_HUGE; /* the module reports SEALMEM_FEATURE_HUGE */
static char *SEALED_CONTENT;

/* One per worker thread (process * 16 + thread), a cache line each: only its thread writes it. */
#define SLOTS 272
struct slot {
	atomic_long ops;   /* operations that reached the module */
	atomic_long other; /* calls that did not */
	atomic_long seq;   /* odd while an operation runs (the stall detector samples it) */
	char pad[64 - 3 * sizeof(atomic_long)];
};
/* Shared by every fuzzing process (a MAP_SHARED mapping). */
static struct shared {
	atomic_long fails;
	atomic_int stop;
	atomic_int lazy_ended;          /* FILL_END of the lazy file was (or is being) called */
	atomic_int resize_lazy;         /* FILL_ENABLE was tried on F_RESIZE: lazy, maybe no handler */
	atomic_uint seals[NFILES];      /* seals set or maybe set (ADD_SEALS asked for them) */
	atomic_int maybe_huge[NFILES];  /* huge, or SET_HUGE was tried (before the call) */
	atomic_long unit_requests;      /* SEALMEM_MSG_HUGE requests served */
	atomic_long page_requests;      /* one-page requests served */
	atomic_long alarm_kills;        /* fork children ended by their alarm (see fuzz_fork) */
	struct slot slot[SLOTS];
} *SH;
#define FAILS (SH->fails)
#define STOP (SH->stop)
static int INJECT; /* percent of sealmem's allocations made to fail (-i) */
static unsigned long SEED;
static char *GOOD; /* a valid source buffer */

static __thread unsigned long rng;
static __thread sigjmp_buf jmp;
static __thread volatile int in_touch;
static __thread int pipe_fd[2] = { -1, -1 };
static __thread char splice_sink[16 * 4096];
static __thread int sub; /* which case of fuzz_ioctl / fuzz_io ran (for -v) */
static __thread struct slot *me; /* this thread's slot (a scratch slot for helpers) */
static struct slot scratch_slot;

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

/* Counts operations: `reached` ones reached the module, the others did not. */
static void count(int reached, long n)
{
	struct slot *s = me ? me : &scratch_slot;

	atomic_fetch_add_explicit(reached ? &s->ops : &s->other, n, memory_order_relaxed);
}

/*
 * What check_x accepts besides the call's base errno list. R_MOD: the call reaches the
 * module (it is counted). The A_* flags admit an errno only where the file's state explains
 * it; R_ALLOC: the call allocates (ENOMEM under -i); R_OUT: it copies out to user memory
 * (under -i a copy-on-write fault of that memory may fail: EFAULT).
 */
#define R_MOD 0x1
#define R_ALLOC 0x2
#define R_OUT 0x4
#define A_EIO 0x10
#define A_EPERM 0x20
#define A_EAGAIN 0x40

/* Checks a call's result: success, or an errno from `allowed` (0-terminated) or `flags`. */
static void check_x(const char *op, long ret, const int *allowed, int flags)
{
	int err = errno;

	count(flags & R_MOD, 1);
	if (ret >= 0)
		return;
	if (INJECT && ((err == ENOMEM && flags & R_ALLOC) || (err == EFAULT && flags & R_OUT)))
		return;
	if ((err == EIO && flags & A_EIO) || (err == EPERM && flags & A_EPERM) || (err == EAGAIN && flags & A_EAGAIN))
		return;
	for (; *allowed; allowed++)
		if (*allowed == err)
			return;
	fail(op, ret, err, "unexpected errno");
}

#define check(op, ret, allowed) check_x(op, ret, allowed, R_MOD)
#define ALLOW(...) ((const int[]){ __VA_ARGS__, 0 })
#define NONE ALLOW(-1)

static void on_fault(int sig)
{
	if (in_touch)
		siglongjmp(jmp, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---- the content oracle ------------------------------------------------------------------ */

enum { K_COPY, K_ZERO, K_POISON };

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/*
 * Whether the 2 MiB unit holding page `page` of a file tagged `tag` has one kind for all its
 * pages: two units in three of a HUGE_TAG tag, none of another.
 */
static int unit_uniform(uint32_t tag, uint64_t page)
{
	return (tag & HUGE_TAG) && mix(((uint64_t)tag << 32) ^ (page / UNIT_PAGES) ^ 0x2545f4914f6cdd1dULL) % 3 != 0;
}

/*
 * How the handlers fill page `page` of the file tagged `tag`: 80% COPY, 10% ZEROPAGE, 10%
 * POISON, drawn per page, or per unit where the unit is uniform.
 */
static int page_kind(uint32_t tag, uint64_t page)
{
	uint64_t key = unit_uniform(tag, page) ? (page / UNIT_PAGES) | (1ULL << 62) : page;
	uint64_t h = mix(((uint64_t)tag << 32) ^ key ^ 0x9e3779b97f4a7c15ULL) % 10;

	return h == 0 ? K_POISON : h == 1 ? K_ZERO : K_COPY;
}

/* Word `w` of a COPY page's content: never 0, so zeros and content cannot be confused. */
static uint64_t content_word(uint32_t tag, uint64_t page, uint64_t w)
{
	return mix(((uint64_t)tag << 40) ^ (page << 12) ^ w) | 1;
}

/* The content of page `page` (what COPY stores; zeros for the other kinds). */
static void page_content(uint32_t tag, uint64_t page, char *out)
{
	uint64_t *o = (uint64_t *)out;

	if (page_kind(tag, page) != K_COPY) {
		memset(out, 0, SM_PS);
		return;
	}
	for (uint64_t w = 0; w < SM_PS / 8; w++)
		o[w] = content_word(tag, page, w);
}

/* The byte at file offset `off` of a lazy file tagged `tag` once its page is filled. */
static unsigned char content_byte(uint32_t tag, uint64_t off)
{
	uint64_t page = off / SM_PS;

	if (page_kind(tag, page) != K_COPY)
		return 0;
	return (unsigned char)(content_word(tag, page, (off % SM_PS) / 8) >> (8 * (off % 8)));
}

static int zero_bytes(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/*
 * Checks `n` bytes read at file offset `off` of a lazy file tagged `tag`: each page's part
 * is its content (zeros for a ZEROPAGE page; after FILL_END also zeros for any page); a
 * POISONed page never gives data.
 */
static void check_lazy_bytes(const char *what, uint32_t tag, uint64_t off, const char *buf, size_t n, int ended)
{
	static __thread char want[4096];

	while (n) {
		uint64_t page = off / SM_PS, in = off % SM_PS;
		size_t k = SM_PS - in < n ? SM_PS - in : n;
		int kind = page_kind(tag, page);

		if (kind == K_POISON && !(ended && zero_bytes(buf, k))) {
			fail(what, (long)page, 0, "a poisoned page of the lazy file gave data");
			return;
		}
		if (kind == K_COPY) {
			page_content(tag, page, want);
			if (memcmp(buf, want + in, k) && !(ended && zero_bytes(buf, k))) {
				fail(what, (long)page, 0, "a page of the lazy file is not its handler's content");
				return;
			}
		} else if (kind == K_ZERO && !zero_bytes(buf, k)) {
			fail(what, (long)page, 0, "a ZEROPAGE page of the lazy file is not zero");
			return;
		}
		buf += k;
		off += k;
		n -= k;
	}
}

/* ---- the shared files' state ---------------------------------------------------------- */

/* A random fd: a sealmem file or VIEW fd mostly, rarely something else. */
static __thread int fd_kind; /* which: 0..NFILES-1 a file (F_*), NFILES.. its VIEW, 2 * NFILES neither */

static int any_fd(void)
{
	int i = (int)pick(NFILES);

	switch (pick(50)) {
	case 0: fd_kind = 2 * NFILES; return -1;
	case 1: fd_kind = 2 * NFILES; return 0; /* stdin: not a sealmem file */
	case 2 ... 16: fd_kind = NFILES + i; return VIEWFD[i];
	default: fd_kind = i; return FD[i];
	}
}

static int kind_file(int kind) { return kind % NFILES; }
static int kind_view(int kind) { return kind >= NFILES && kind < 2 * NFILES; }
static int is_sealmem(int kind) { return kind < 2 * NFILES; }
/* The lazy files (their bytes are their handlers'), their tags and the pages always within EOF. */
static int is_lazy(int file) { return file == F_LAZY || file == F_HLAZY; }
static uint32_t tag_of(int file) { return file == F_HLAZY ? HLAZY_TAG : LAZY_TAG; }
static uint64_t min_pages(int file) { return file == F_HLAZY ? HLAZY_MIN_PAGES : LAZY_MIN_PAGES; }
/* The files whose offsets are drawn across 2 MiB units. */
static int big_file(int file) { return file == F_HUGE || file == F_HLAZY; }
static unsigned seals_of(int file) { return atomic_load(&SH->seals[file]); }
static int write_sealed(int file) { return !!(seals_of(file) & (SEALMEM_SEAL_WRITE | SEALMEM_SEAL_FUTURE_WRITE)); }
/* Reads of a hole of `file` may give EIO: the lazy file's POISONed pages (checked per page
 * where the offset is known), F_RESIZE once it may be lazy without a handler. */
static int may_eio(int file) { return is_lazy(file) || (file == F_RESIZE && atomic_load(&SH->resize_lazy)); }

/* Whether the kernel's access_ok() passes a user buffer (else the VFS answers EFAULT). */
static int user_ok(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;

	return a + len >= a && a + len <= 0x7ffffffff000UL;
}

static unsigned long rand_len(void)
{
	switch (pick(6)) {
	case 0: return 0;
	case 1: return pick(64);
	case 2: return SM_PS * (1 + pick(16));
	case 3: return pick(4 * SM_PS);
	case 4: return ~0UL - pick(SM_PS);
	default: return SM_PS;
	}
}

static unsigned long rand_off(void)
{
	switch (pick(6)) {
	case 0: return 0;
	case 1: return SM_PS * pick(64);
	case 2: return pick(64 * SM_PS);
	case 3: return ~0UL & ~(SM_PS - 1);
	case 4: return 1UL << 62;
	default: return SM_PS * pick(8);
	}
}

/* An offset in the first three 2 MiB units, often at or next to a unit boundary. */
static unsigned long hrand_off(void)
{
	unsigned long u = UNIT * pick(3);

	switch (pick(5)) {
	case 0: return u;
	case 1: return u ? u - SM_PS * (1 + pick(4)) : 0;
	case 2: return u + SM_PS * pick(UNIT_PAGES);
	case 3: return u + pick(UNIT);
	default: return rand_off();
	}
}

/* A length for a range in huge files: a page, some pages, a unit, a unit and a bit, any. */
static unsigned long hrand_len(void)
{
	switch (pick(6)) {
	case 0: return UNIT;
	case 1: return UNIT + SM_PS * (1 + pick(8));
	case 2: return SM_PS * (1 + pick(UNIT_PAGES));
	case 3: return UNIT * (1 + pick(3));
	default: return rand_len();
	}
}

static void *rand_ptr(void)
{
	switch (pick(8)) {
	case 0: return NULL;
	case 1: return (void *)8;
	case 2: return (void *)(uintptr_t)rnd();
	default: return GOOD + pick(SM_PS);
	}
}

/* A pointer no call can use: NULL, a low address, or one outside user space. */
static void *bad_ptr(void)
{
	switch (pick(3)) {
	case 0: return NULL;
	case 1: return (void *)8;
	default: return (void *)(uintptr_t)(rnd() | (1UL << 63));
	}
}

/* The thread's minor page faults so far (faults that completed; see fuzz_mmap). */
static long minflt(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) ? 0 : ru.ru_minflt + ru.ru_majflt;
}

/*
 * Maps a file, touches it, unmaps. Each touched byte of the sealed or the lazy file is
 * checked; a signal is checked against what explains it (SIGBUS: past EOF, a poisoned page,
 * a file lazy without a handler; SIGSEGV: an access the protection forbids). The lazy file's
 * maps are only read (its bytes are the handler's).
 */
static void fuzz_mmap(void)
{
	int fd = any_fd(), kind = fd_kind, file = kind_file(kind);
	int prot = (int[]){ PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC, PROT_NONE }[pick(4)];
	int shared = pick(3) != 0, flags = shared ? MAP_SHARED : MAP_PRIVATE, reached, ef = 0;
	size_t len = SM_PS * (1 + pick(32)), pgoff = pick(4);
	uint32_t tag = tag_of(file);
	char *p;
	long flt, sigbus = 0;

	/* The huge files: at unit-aligned and unaligned offsets, over whole units or parts of
	 * them (a PMD maps only a whole unit of an aligned VMA; anything else takes PTEs). */
	if (is_sealmem(kind) && big_file(file)) {
		pgoff = (size_t)(hrand_off() % (4 * UNIT) / SM_PS);
		switch (pick(4)) {
		case 0: len = UNIT; break;
		case 1: len = UNIT * 2; break;
		case 2: len = UNIT + SM_PS * (1 + pick(16)); break;
		default: break;
		}
	}
	/* The VFS refuses a shared writable map of a read-only fd before the module sees it. */
	reached = is_sealmem(kind) && !(kind_view(kind) && shared && prot & PROT_WRITE);
	p = mmap(NULL, len, prot, flags, fd, SM_PS * pgoff);
	/* After the call (seals are recorded before ADD_SEALS): a seal, or an ADD_SEALS(WRITE)
	 * racing a shared map. */
	if (is_sealmem(kind) && ((shared && prot & PROT_WRITE && write_sealed(file)) ||
				 (prot & PROT_EXEC && seals_of(file) & SEALMEM_SEAL_EXEC) ||
				 (shared && seals_of(file) & SEALMEM_SEAL_WRITE)))
		ef |= A_EPERM;
	/* A VIEW is an anon-inode file, on a noexec filesystem: the VFS refuses PROT_EXEC. */
	if (kind_view(kind) && prot & PROT_EXEC)
		ef |= A_EPERM;
	{
		int err = errno;
		long fails = atomic_load(&FAILS);

		check_x("mmap", p == MAP_FAILED ? -1 : 0,
			!is_sealmem(kind) ? ALLOW(EBADF, ENODEV, EACCES) : kind_view(kind) ? ALLOW(EACCES, EINVAL) : ALLOW(EINVAL),
			(reached ? R_MOD : 0) | ef);
		if (atomic_load(&FAILS) != fails)
			fprintf(stderr, "  mmap: errno %d, fd kind %d (file %d%s), prot %#x, %s, len %zu, page offset %zu, seals recorded %#x, may be huge %d\n",
				err, kind, file, kind_view(kind) ? ", VIEW" : "", prot, shared ? "MAP_SHARED" : "MAP_PRIVATE", len, pgoff,
				seals_of(file), atomic_load(&SH->maybe_huge[file]));
		/* An unexpected EPERM: is it lasting (mappings of the file denied for good) and what
		 * does the file say (its seals, huge)? */
		if (atomic_load(&FAILS) != fails && err == EPERM && is_sealmem(kind)) {
			char info[1024] = "";
			void *q = mmap(NULL, len, prot, flags, fd, SM_PS * pgoff);
			int again = q == MAP_FAILED ? errno : 0;
			void *r = mmap(NULL, len, prot & ~PROT_EXEC, flags, fd, SM_PS * pgoff);
			int noexec = r == MAP_FAILED ? errno : 0;

			if (q != MAP_FAILED)
				munmap(q, len);
			if (r != MAP_FAILED)
				munmap(r, len);
			sm_fdinfo(fd, info, sizeof(info));
			fprintf(stderr, "  mmap: the same mmap again: errno %d; without PROT_EXEC: errno %d; fdinfo:\n%s\n", again, noexec, info);
		}
	}
	if (p == MAP_FAILED)
		return;
	flt = minflt();
	for (int i = 0; i < 8; i++) {
		size_t at = pick(len);
		volatile char *q = p + at;
		uint64_t off = pgoff * SM_PS + at, page = off / SM_PS;
		int write = prot & PROT_WRITE && pick(2) && !is_lazy(file), sig;
		char got = 0;

		in_touch = 1;
		if ((sig = sigsetjmp(jmp, 1)) == 0) {
			if (write)
				*q = (char)rnd();
			else
				got = *q;
			in_touch = 0;
			if (write || !(prot & PROT_READ))
				continue;
			if (file == F_SEALED && off < SEALED_PAGES * SM_PS && got != SEALED_CONTENT[off])
				fail("sealed map", (long)off, 0, "a mapped byte of the sealed file changed");
			if (is_lazy(file) && (unsigned char)got != content_byte(tag, off) &&
			    !(got == 0 && atomic_load(&SH->lazy_ended)))
				fail(file == F_HLAZY ? "huge lazy map" : "lazy map", (long)off, 0,
				     "a mapped byte of the lazy file is not its handler's content");
			if (is_lazy(file) && page_kind(tag, page) == K_POISON && !atomic_load(&SH->lazy_ended))
				fail(file == F_HLAZY ? "huge lazy map" : "lazy map", (long)off, 0,
				     "a poisoned page of the lazy file was mapped");
			continue;
		}
		in_touch = 0;
		if (sig == SIGBUS) {
			sigbus++;
			/* Past EOF (sizes change under us) or a lazy hole that cannot be filled. */
			if (file == F_SEALED && off < SEALED_PAGES * SM_PS)
				fail("sealed map", (long)off, 0, "SIGBUS in the sealed file");
			if (is_lazy(file) && page < min_pages(file) && page_kind(tag, page) != K_POISON &&
			    !atomic_load(&SH->lazy_ended))
				fail(file == F_HLAZY ? "huge lazy map" : "lazy map", (long)off, 0,
				     "SIGBUS on a page of the lazy file that is not poisoned");
		} else if (!(prot == PROT_NONE || (write && !(prot & PROT_WRITE)))) {
			fail("map touch", sig, 0, "SIGSEGV on an access the protection allows");
		}
	}
	/* The faults taken (a fault that ended in SIGBUS is not in the count, but reached us). */
	flt = minflt() - flt + sigbus;
	count(1, flt);
	count(0, 8 - flt > 0 ? 8 - flt : 0);
	/* The mm handles these (the module at most sees a VMA copied): counted apart. */
	if (pick(3) == 0)
		check_x("mprotect", mprotect(p, len, (int[]){ PROT_READ, PROT_READ | PROT_WRITE, PROT_EXEC }[pick(3)]),
			ALLOW(EACCES, EINVAL), 0);
	if (pick(3) == 0)
		check_x("madvise", madvise(p, len, (int[]){ MADV_DONTNEED, MADV_WILLNEED, MADV_REMOVE }[pick(3)]),
			ALLOW(EINVAL, EOPNOTSUPP, EACCES, EPERM, ENODEV), 0);
	if (pick(4) == 0) {
		/* Grow, shrink or move the mapping, then touch its new end. */
		size_t nlen = SM_PS * (1 + pick(48));
		char *q = mremap(p, len, nlen, MREMAP_MAYMOVE);

		/* ENOMEM: growing a VM_MIXEDMAP mapping with free space after it (docs/api.md). */
		check_x("mremap", q == MAP_FAILED ? -1 : 0, ALLOW(EFAULT, EINVAL, ENOMEM, EAGAIN), 0);
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
	int fd = any_fd(), kind = fd_kind, file = kind_file(kind), view = kind_view(kind);
	int mod = is_sealmem(kind) ? R_MOD : 0;
	__u64 v = rand_off();
	__u32 seals = (__u32)pick(0x80);
	struct sealmem_range r = big_file(file) && pick(2) ? (struct sealmem_range){ hrand_off(), hrand_len() }
							   : (struct sealmem_range){ rand_off(), rand_len() };
	struct sealmem_name n;
	struct sealmem_api api = { .api = pick(3), .features = pick(2) ? 0 : rnd() };
	/* Not a sealmem fd: fd -1 (EBADF) or stdin (ENOTTY, or whatever its driver says). */
	const int *notours = ALLOW(EBADF, ENOTTY, EINVAL, EFAULT, EPERM);
	int ret, ef;
	void *arg;

	/* VIEW and FILL_ENABLE create and release a file (3-10 ms under TCG with KASAN, 10-20
	 * times a cheap ioctl): a tenth as often. */
	sub = pick(11);
	if ((sub == 8 || sub == 9) && pick(10))
		sub = pick(8);
	switch (sub) {
	case 0:
		arg = pick(4) ? (void *)&api : rand_ptr();
		check_x("API", ioctl(fd, SEALMEM_IOC_API, arg), mod ? ALLOW(EINVAL, EFAULT) : notours, mod | R_OUT);
		break;
	case 1:
		/* The lazy files keep a page-aligned size of at least their min_pages; the huge
		 * files' sizes cut units anywhere. */
		if (file == F_LAZY)
			v = SM_PS * (LAZY_MIN_PAGES + pick(LAZY_MAX_PAGES - LAZY_MIN_PAGES + 1));
		else if (file == F_HLAZY)
			v = SM_PS * (HLAZY_MIN_PAGES + pick(HLAZY_MAX_PAGES - HLAZY_MIN_PAGES + 1));
		else if (file == F_HUGE)
			v = pick(4) ? SM_PS * pick(3 * UNIT_PAGES) + pick(2) * pick(SM_PS) : hrand_off();
		else
			v = pick(4) ? SM_PS * pick(64) + pick(2) * pick(SM_PS) : v;
		arg = pick(8) || is_lazy(file) ? (void *)&v : rand_ptr();
		ret = ioctl(fd, SEALMEM_IOC_SET_SIZE, arg);
		/* EPERM: the sealed file's SHRINK/GROW, or F_RESIZE's if it got them (the state is
		 * read after the call: seals are recorded before ADD_SEALS sets them). */
		ef = file == F_SEALED || seals_of(file) & (SEALMEM_SEAL_SHRINK | SEALMEM_SEAL_GROW) ? A_EPERM : 0;
		check_x("SET_SIZE", ret,
			!mod ? notours : view ? ALLOW(EBADF, EFAULT) : ALLOW(EINVAL, EFAULT, EFBIG), mod | (view ? 0 : ef));
		break;
	case 2:
		arg = pick(8) ? (void *)&v : rand_ptr();
		check_x("GET_SIZE", ioctl(fd, SEALMEM_IOC_GET_SIZE, arg), mod ? ALLOW(EFAULT) : notours, mod | R_OUT);
		break;
	case 3:
		arg = pick(8) ? (void *)&r : rand_ptr();
		ret = ioctl(fd, SEALMEM_IOC_PUNCH_HOLE, arg);
		ef = write_sealed(file) ? A_EPERM : 0;
		check_x("PUNCH_HOLE", ret,
			!mod ? notours : view ? ALLOW(EBADF, EFAULT) : ALLOW(EINVAL, EFAULT), mod | (view ? 0 : ef));
		break;
	case 4:
		/* The plain and the lazy file may gain EXEC only; F_RESIZE any seal. The seals
		 * asked for are recorded first: from then on they may be set. */
		if (file != F_RESIZE && file != F_SEALED)
			seals &= SEALMEM_SEAL_EXEC;
		if (mod && !view && seals < 0x40)
			atomic_fetch_or(&SH->seals[file], seals);
		/* Never a readable random pointer: its bytes would be seals we did not record. */
		arg = pick(8) ? (void *)&seals : bad_ptr();
		ret = ioctl(fd, SEALMEM_IOC_ADD_SEALS, arg);
		/* EPERM: a read-only fd, or SEAL set (the sealed file; F_RESIZE maybe). */
		ef = view || seals_of(file) & SEALMEM_SEAL_SEAL ? A_EPERM : 0;
		check_x("ADD_SEALS", ret,
			mod ? ALLOW(EINVAL, EFAULT, EBUSY, EINTR) : notours, mod | ef);
		break;
	case 5:
		arg = pick(8) ? (void *)&seals : rand_ptr();
		check_x("GET_SEALS", ioctl(fd, SEALMEM_IOC_GET_SEALS, arg), mod ? ALLOW(EFAULT) : notours, mod | R_OUT);
		break;
	case 6:
		for (size_t i = 0; i < sizeof(n.name); i++)
			n.name[i] = (char)rnd();
		n.name[pick(sizeof(n.name))] = 0;
		arg = pick(8) ? (void *)&n : rand_ptr();
		check_x("SET_NAME", ioctl(fd, SEALMEM_IOC_SET_NAME, arg),
			!mod ? notours : view ? ALLOW(EBADF, EFAULT) : ALLOW(EINVAL, EFAULT), mod);
		break;
	case 7:
		arg = pick(8) ? (void *)&n : rand_ptr();
		check_x("GET_NAME", ioctl(fd, SEALMEM_IOC_GET_NAME, arg), mod ? ALLOW(EFAULT) : notours, mod | R_OUT);
		break;
	case 8:
		ret = ioctl(fd, SEALMEM_IOC_VIEW, pick(4) ? SEALMEM_FD_CLOEXEC : rnd());
		check_x("VIEW", ret, mod ? ALLOW(EINVAL, EMFILE) : notours, mod | R_ALLOC);
		if (ret >= 0)
			close(ret);
		break;
	case 10:
		/*
		 * SET_HUGE (recorded first: from then on the file may be huge). EBUSY: the file has
		 * pages or mappings; EINVAL: a non-zero argument; EOPNOTSUPP: no huge support.
		 * A shared file may become huge here while empty and unmapped (F_PLAIN, F_RESIZE,
		 * F_LAZY early on): every check holds for a huge file as well.
		 */
		v = pick(8) ? 0 : rnd() | 1;
		if (mod && !view && !v)
			atomic_store(&SH->maybe_huge[file], 1);
		ret = ioctl(fd, SEALMEM_IOC_SET_HUGE, (unsigned long)v);
		check_x("SET_HUGE", ret,
			!mod ? notours : v ? ALLOW(EINVAL) : view ? ALLOW(EBADF) : HAVE_HUGE ? ALLOW(EBUSY) : ALLOW(EOPNOTSUPP), mod);
		break;
	default:
		/* FILL_ENABLE on the lazy file (EBUSY: its handler is attached) or on F_RESIZE,
		 * whose new handler we close at once: that leaves F_RESIZE lazy without a handler
		 * (its holes give EIO/SIGBUS from then on). The plain and sealed files stay as
		 * they are. */
		if (mod && (file == F_PLAIN || file == F_SEALED)) {
			fd = view ? VIEWFD[F_LAZY] : FD[F_LAZY];
			file = F_LAZY;
		}
		if (mod && file == F_HUGE) {
			fd = view ? VIEWFD[F_HLAZY] : FD[F_HLAZY];
			file = F_HLAZY;
		}
		if (mod && !view && file == F_RESIZE)
			atomic_store(&SH->resize_lazy, 1);
		ret = ioctl(fd, SEALMEM_IOC_FILL_ENABLE, pick(4) ? SEALMEM_FD_NONBLOCK : rnd());
		/* EPERM: a read-only fd, or a write seal on a file not yet lazy (F_RESIZE). */
		ef = view || (file == F_RESIZE && write_sealed(file)) ? A_EPERM : 0;
		check_x("FILL_ENABLE", ret, mod ? ALLOW(EINVAL, EBUSY, EMFILE) : notours, mod | R_ALLOC | ef);
		if (ret >= 0)
			close(ret);
		break;
	}
}

static __thread char rbuf[9 * 4096]; /* where reads land (this thread's own, so it can be checked) */

static void fuzz_io(void)
{
	int fd = any_fd(), kind, file, view, mod;
	size_t len = pick(4) ? rand_len() % (SM_PS + 1) : rand_len() % (8 * SM_PS + 1);
	off_t off = (off_t)(rand_off() & 0xffffff);
	char *buf = pick(8) ? rbuf : rand_ptr();
	struct iovec iov[2] = { { buf, len / 2 }, { buf == rbuf ? rbuf + len / 2 : GOOD, len - len / 2 } };
	int whence;
	ssize_t n;

	/* The sealed file is checked by check_sealed; stdin is not ours to read. */
	if (fd == FD[F_SEALED] || fd == VIEWFD[F_SEALED] || fd == 0) {
		fd_kind = (int)pick(2);
		fd = FD[fd_kind];
	}
	kind = fd_kind;
	file = kind_file(kind);
	view = kind_view(kind);
	/* The huge files: offsets across their units, often next to a unit boundary. */
	if (is_sealmem(kind) && big_file(file) && pick(4))
		off = (off_t)(hrand_off() & 0xffffff);
	mod = is_sealmem(kind) && user_ok(buf, len);
	/*
	 * What the file's state admits is read after the call returns: a seal or lazy mode is
	 * recorded before the call that may set it, so a state that could have affected this
	 * call is seen. A read may wait for a hole of the lazy file (or of F_RESIZE while a
	 * short-lived handler of ours is attached), raise a request (allocates) and copy out.
	 * EIO: see may_eio (for the lazy file, only if its first page is poisoned: below).
	 */
#define RFLAGS() ((mod ? R_MOD : 0) | R_OUT | (is_sealmem(kind) && may_eio(file) ? R_ALLOC | A_EIO : 0))
	/* splice and sendfile cost ~10 cheap calls each (a pipe buffer per call): rarer. */
	sub = (int)pick(9);
	if ((sub == 5 || sub == 6) && pick(4))
		sub = (int)pick(5);
	/* Writes never go to the lazy file: its bytes are its handler's. */
	if ((sub == 1 || sub == 3) && file == F_LAZY) {
		fd = view ? VIEWFD[F_RESIZE] : FD[F_RESIZE];
		file = F_RESIZE;
	}
	if ((sub == 1 || sub == 3) && file == F_HLAZY) {
		fd = view ? VIEWFD[F_HUGE] : FD[F_HUGE];
		file = F_HUGE;
	}
	/* A write allocates; EPERM where F_RESIZE may have a write or GROW seal; EIO where it
	 * may be lazy without a handler. A read-only fd: EBADF from the VFS. */
#define WFLAGS() ((mod && !view ? R_MOD : 0) | R_ALLOC | \
		  (write_sealed(file) || seals_of(file) & SEALMEM_SEAL_GROW ? A_EPERM : 0) | (may_eio(file) ? A_EIO : 0))
	switch (sub) {
	case 0:
	case 2:
		n = sub ? preadv(fd, iov, 2, off) : pread(fd, buf, len, off);
		check_x(sub ? "preadv" : "pread", n, is_sealmem(kind) ? ALLOW(EFAULT) : ALLOW(EBADF),
			RFLAGS() & ~(is_lazy(file) && page_kind(tag_of(file), off / SM_PS) != K_POISON &&
				     !atomic_load(&SH->lazy_ended) ? A_EIO : 0));
		if (n > 0 && is_lazy(file) && buf == rbuf)
			check_lazy_bytes(file == F_HLAZY ? "huge lazy pread" : "lazy pread", tag_of(file), off, rbuf, n,
					 atomic_load(&SH->lazy_ended));
		break;
	case 1:
		n = pwrite(fd, buf, len, off);
		check_x("pwrite", n, is_sealmem(kind) ? view ? ALLOW(EBADF) : ALLOW(EFAULT) : ALLOW(EBADF), WFLAGS());
		break;
	case 3:
		n = pwritev(fd, iov, 2, off);
		check_x("pwritev", n, is_sealmem(kind) ? view ? ALLOW(EBADF) : ALLOW(EFAULT) : ALLOW(EBADF), WFLAGS());
		break;
	case 4:
		whence = (int)pick(6);
		/* whence 5 is no whence: the VFS says EINVAL. */
		check_x("lseek", lseek(fd, (off_t)rand_off(), whence), ALLOW(EBADF, EINVAL, ENXIO),
			is_sealmem(kind) && whence <= SEEK_HOLE ? R_MOD : 0);
		break;
	case 5:
		/* One pipe per thread, drained after each splice (pipes are costly to create). The
		 * pipe is non-blocking: EAGAIN. A zero length never reaches the file. */
		if (pipe_fd[0] < 0 && pipe2(pipe_fd, O_NONBLOCK))
			break;
		n = splice(fd, &(loff_t){ off }, pipe_fd[1], NULL, len, SPLICE_F_NONBLOCK);
		check_x("splice", n, ALLOW(EBADF, EINVAL), (is_sealmem(kind) && len ? R_MOD : 0) | (RFLAGS() & ~R_MOD) | R_ALLOC | A_EAGAIN);
		while (read(pipe_fd[0], splice_sink, sizeof(splice_sink)) > 0)
			;
		break;
	case 6:
		if (pipe_fd[0] < 0 && pipe2(pipe_fd, O_NONBLOCK))
			break;
		n = sendfile(pipe_fd[1], fd, pick(8) ? &(off_t){ off } : NULL, len);
		check_x("sendfile", n, ALLOW(EBADF, EINVAL), (is_sealmem(kind) && len ? R_MOD : 0) | (RFLAGS() & ~R_MOD) | R_ALLOC | A_EAGAIN);
		while (read(pipe_fd[0], splice_sink, sizeof(splice_sink)) > 0)
			;
		break;
	default:
		/* At the shared file position (lseek moves it, maybe far): EINVAL past the limits. */
		n = read(fd, buf, len);
		check_x("read", n, is_sealmem(kind) ? ALLOW(EFAULT, EINVAL) : ALLOW(EBADF), RFLAGS());
		break;
	}
#undef RFLAGS
#undef WFLAGS
}

/*
 * A child gets a VIEW fd by SCM_RIGHTS and reads through it: its exit status says how the
 * read went (0: data or a documented errno; 3: another errno), and a signal may end it only
 * where we sent one or where its alarm explains it.
 */
static void fuzz_fork(void)
{
	int sv[2], status, file = (int)pick(NFILES), killed = 0, how;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return;
	pid = fork();
	if (pid == 0) {
		char b[64];
		int fd;
		ssize_t n;

		/* The fork copied whatever fds the other threads held, maybe the only handler
		 * fd of F_RESIZE made lazy a moment ago: reading that file's hole would wait for
		 * this very process. A fatal alarm bounds that self-deadlock (as it would
		 * with userfaultfd); the wait is killable. The lazy file is served by this
		 * process's parent's handler threads: a read of it has no such excuse, and its
		 * alarm (8 s, before the timekeeper's 10 s) fails the run. */
		alarm(is_lazy(file) ? 8 : 2);
		fd = sm_recv_fd(sv[1]);
		if (fd < 0)
			_exit(0);
		n = pread(fd, b, sizeof(b), 0);
		/* EIO: a poisoned first page (the lazy file) or no handler (F_RESIZE, or the lazy
		 * file after its FILL_END and a FILL_ENABLE racing the end of the run). */
		_exit(n >= 0 || (errno == EIO && may_eio(file)) || (INJECT && (errno == ENOMEM || errno == EFAULT)) ? 0 : 3);
	}
	if (pid > 0) {
		(void)sm_send_fd(sv[0], VIEWFD[file]);
		if (pick(4) == 0) {
			kill(pid, SIGKILL);
			killed = 1;
		}
		if (waitpid(pid, &status, 0) != pid) {
			fail("fork child", pid, errno, "waitpid");
		} else if ((how = sm_ended(status)) == SM_EXITED(3)) {
			fail("fork child", how, 0, "the child's pread failed with an undocumented errno");
		} else if (how == SM_KILLED(SIGALRM) && file == F_RESIZE) {
			/* The self-deadlock above. */
			atomic_fetch_add(&SH->alarm_kills, 1);
		} else if (how == SM_KILLED(SIGALRM) && is_lazy(file)) {
			fail("fork child", how, 0, "a read of the lazy file was not served within 8 s (a stranded request?)");
		} else if (how != SM_EXITED(0) && !(killed && how == SM_KILLED(SIGKILL))) {
			fail("fork child", how, 0, "the child ended otherwise than by exit 0 or our SIGKILL");
		}
		count(1, 1);
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
	__u64 size = 4 * SM_PS;
	pid_t holder, waiter;
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	/* Polls below: a bounded interval while waiting for a state, never a stand-in for it. */
	/* A third of them huge (the waiter's request is then its unit's). */
	if (fd < 0 || ioctl(fd, SEALMEM_IOC_SET_SIZE, &size) || (HAVE_HUGE && pick(3) == 0 && ioctl(fd, SEALMEM_IOC_SET_HUGE, 0))) {
		check_x("open+SET_SIZE(fresh)", -1, ALLOW(EMFILE), R_MOD | R_ALLOC);
		if (fd >= 0)
			close(fd);
		return;
	}
	hfd = ioctl(fd, SEALMEM_IOC_FILL_ENABLE, 0);
	if (hfd < 0) {
		check_x("FILL_ENABLE(fresh)", hfd, ALLOW(EMFILE), R_MOD | R_ALLOC);
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
		ssize_t n = pread(fd, &c, 1, SM_PS * (rnd() % 4));

		/* Under injection, raising the request itself may fail: ENOMEM. */
		_exit(n == -1 && (errno == EIO || (INJECT && errno == ENOMEM)) ? 0 : 1);
	}
	/*
	 * Kill the holder only once the waiter has raised its request and sleeps on it (or has
	 * ended already: under injection raising the request may fail), so that the kill is
	 * what must release it, not a missing handler found before it waited.
	 */
	if (waiter > 0) {
		double t0 = sm_now();
		int st;

		while (sm_now() - t0 < 5) {
			if (waitpid(waiter, &st, WNOHANG) == waiter) {
				if (sm_ended(st) != SM_EXITED(0))
					fail("killed handler", sm_ended(st), 0, "the waiter ended before the kill without EIO");
				waiter = -1;
				break;
			}
			if (sm_fdinfo_num(fd, "pending") >= 1 && sm_task_state(waiter, waiter) == 'S')
				break;
			nanosleep(&ts, NULL);
		}
	}
	if (holder > 0)
		kill(holder, SIGKILL);
	if (holder > 0 && (waitpid(holder, &status, 0) != holder || sm_ended(status) != SM_KILLED(SIGKILL)))
		fail("killed handler", status, 0, "the handler's holder did not end by our SIGKILL");
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
			fail("killed handler", sm_ended(status), 0, "the waiter did not get EIO");
	}
	close(fd);
	count(1, 1);
}

/* The sealed file's bytes never change, through read() and through a mapping. */
static void check_sealed(void)
{
	char buf[SEALED_PAGES * SM_PS], *p;
	ssize_t n = pread(VIEWFD[F_SEALED], buf, sizeof(buf), 0);

	if (n < 0)
		check_x("sealed pread", n, NONE, R_MOD | R_OUT);
	else if (memcmp(buf, SEALED_CONTENT, n))
		fail("sealed read", n, 0, "the bytes of the sealed file changed");
	/* Short only when the copy-out itself failed to allocate (a stack page, under -i). */
	else if (n != (ssize_t)sizeof(buf) && !INJECT)
		fail("sealed read", n, 0, "short read of a resident sealed file");
	p = mmap(NULL, sizeof(buf), PROT_READ, MAP_SHARED, VIEWFD[F_SEALED], 0);
	if (p == MAP_FAILED) {
		check("sealed mmap", -1, NONE);
		return;
	}
	if (memcmp(p, SEALED_CONTENT, sizeof(buf)))
		fail("sealed map", 0, 0, "the mapped bytes of the sealed file changed");
	munmap(p, sizeof(buf));
	count(1, 2); /* the mmap and its faults */
}

/* ---- the lazy sealed image ------------------------------------------------------------- */

#define IMAGE_PAGES 16

struct image {
	int fd, hfd;
	uint32_t tag;
	int huge;     /* a huge image (2 MiB units) */
	uint64_t pg[IMAGE_PAGES]; /* the file page of each of the image's slots */
	unsigned char order[IMAGE_PAGES];
	int prefetch; /* this handler thread also fills pages in `order` without a request */
	unsigned long rng;
	struct slot *slot; /* the worker's, whose operation this is */
};

/*
 * Fills the `n` pages from `page` (all of one kind) of a file tagged `tag` with one COPY,
 * ZEROPAGE or POISON. `content` holds at least `n` pages.
 */
static void fill_run(int hfd, uint32_t tag, uint64_t page, uint64_t n, int skip, char *content)
{
	struct sealmem_fill f = { .offset = page * SM_PS, .len = n * SM_PS, .flags = skip ? SEALMEM_FILL_SKIP_EXISTING : 0 };
	struct sealmem_copy c = { .offset = page * SM_PS, .src = (uintptr_t)content, .len = n * SM_PS,
				  .flags = skip ? SEALMEM_FILL_SKIP_EXISTING : 0 };
	int kind = page_kind(tag, page), ret = 0;

	if (kind == K_COPY)
		for (uint64_t i = 0; i < n; i++)
			page_content(tag, page + i, content + i * SM_PS);
	/* A handler retries a fill that failed for lack of memory, or its waiter waits on (as
	 * with userfaultfd); injected failures make that common (a retry skips what the failed
	 * call filled). EEXIST: another handler thread (or a prefetch) filled a page first;
	 * EINVAL: FILL_END, or the range is (partly) past EOF (the lazy file shrank). */
	for (int tries = 0; tries < 1000; tries++) {
		switch (kind) {
		case K_COPY:
			ret = ioctl(hfd, SEALMEM_IOC_COPY, &c);
			break;
		case K_ZERO:
			ret = ioctl(hfd, SEALMEM_IOC_ZEROPAGE, &f);
			break;
		default:
			ret = ioctl(hfd, SEALMEM_IOC_POISON, &f);
			break;
		}
		if (ret == 0 || errno != ENOMEM)
			break;
		c.flags = f.flags = SEALMEM_FILL_SKIP_EXISTING;
	}
	check_x(kind == K_COPY ? "COPY" : kind == K_ZERO ? "ZEROPAGE" : "POISON", ret, ALLOW(EEXIST, EINVAL), R_MOD | R_ALLOC);
}

/* Serves one request of an image or of a lazy file: the page's kind decides the fill. */
static void serve_page(int hfd, uint32_t tag, uint64_t page, int skip, char *content)
{
	fill_run(hfd, tag, page, 1, skip, content);
}

/*
 * Fills the `n` pages from `page` by their kinds: one fill per run of pages of one kind (a
 * uniform unit: one fill of the whole unit, which installs it as one folio; a mixed one:
 * partial fills). `content` holds at least `n` pages.
 */
static void serve_range(int hfd, uint32_t tag, uint64_t page, uint64_t n, int skip, char *content)
{
	for (uint64_t p = page, e; p < page + n; p = e) {
		int kind = page_kind(tag, p);

		for (e = p + 1; e < page + n && page_kind(tag, e) == kind; e++)
			;
		fill_run(hfd, tag, p, e - p, skip, content);
	}
}

/*
 * Serves a request for the whole unit at page `unit` (SEALMEM_MSG_HUGE): the unit up to EOF
 * rounded to a page (read from `fd`), as the message says; sometimes the whole 2 MiB, which a
 * COPY cut at EOF fills up to EOF before failing with EINVAL.
 */
static void serve_unit(int fd, int hfd, uint32_t tag, uint64_t unit, int skip, char *content)
{
	__u64 size = 0;
	uint64_t n = UNIT_PAGES;

	if (pick(4) && ioctl(fd, SEALMEM_IOC_GET_SIZE, &size) == 0) {
		uint64_t eof = (size + SM_PS - 1) / SM_PS;

		n = eof > unit ? eof - unit : 0;
		if (n > UNIT_PAGES)
			n = UNIT_PAGES;
	}
	if (n)
		serve_range(hfd, tag, unit, n, skip, content);
}

/*
 * Reads requests from a non-blocking handler fd (shared by two threads) and serves them:
 * a unit's request (SEALMEM_MSG_HUGE) only from a file that may be huge (`fd` tells which
 * file, `huge` whether it may be), at a unit-aligned offset.
 */
static int serve_requests(int fd, int hfd, uint32_t tag, int huge, char *content, int timeout_ms)
{
	struct pollfd p = { .fd = hfd, .events = POLLIN };
	struct sealmem_msg m[8];
	ssize_t n;

	if (poll(&p, 1, timeout_ms) <= 0)
		return 1;
	n = read(hfd, m, sizeof(m));
	if (n == 0)
		return 0; /* FILL_END: this handler is done */
	/* EAGAIN: the other handler thread took the requests first. */
	check_x("handler read", n, NONE, R_MOD | A_EAGAIN | R_OUT);
	for (ssize_t i = 0; i < n / (ssize_t)sizeof(m[0]); i++) {
		atomic_fetch_add(m[i].flags & SEALMEM_MSG_HUGE ? &SH->unit_requests : &SH->page_requests, 1);
		if (!(m[i].flags & SEALMEM_MSG_HUGE)) {
			if (m[i].offset % SM_PS)
				fail("handler read", (long)m[i].offset, 0, "a request's offset is not page-aligned");
			serve_page(hfd, tag, m[i].offset / SM_PS, (int)(rnd() & 1), content);
			continue;
		}
		if (!huge)
			fail("handler read", (long)m[i].offset, 0, "a unit request (SEALMEM_MSG_HUGE) from a file that is not huge");
		else if (m[i].offset % UNIT)
			fail("handler read", (long)m[i].offset, 0, "a unit request (SEALMEM_MSG_HUGE) at an offset that is not unit-aligned");
		else
			serve_unit(fd, hfd, tag, m[i].offset / SM_PS, (int)(rnd() & 1), content);
	}
	return 1;
}

static void *image_handler(void *arg)
{
	struct image *im = arg;
	char *content = malloc(im->huge ? UNIT : SM_PS);
	int next = 0;

	rng = im->rng;
	me = im->slot;
	for (int live = 1; live && content;) {
		/* The prefetcher fills a page of its own choosing between requests (in a huge
		 * image: a partial fill of its unit). */
		if (im->prefetch && next < IMAGE_PAGES && pick(2))
			serve_page(im->hfd, im->tag, im->pg[im->order[next++]], 1, content);
		live = serve_requests(im->fd, im->hfd, im->tag, im->huge, content, 2);
	}
	free(content);
	return NULL;
}

/*
 * The lazy sealed image under a race: two handler threads (one also prefetching in a random
 * order) serve a fresh write-sealed lazy file while this thread faults its pages through a
 * mapping or reads them with pread, in a random order, and at a random moment ends lazy
 * mode. Before FILL_END a page is its content (zeros for a ZEROPAGE page; EIO/SIGBUS for a
 * POISON page); after it also zeros (a hole then); and a page once read reads the same ever
 * after (read() and a mapping).
 */
static void check_lazy_image(void)
{
	static __thread char first[IMAGE_PAGES * 4096], again[IMAGE_PAGES * 4096];
	__u32 seals = SEALMEM_SEAL_WRITE | SEALMEM_SEAL_SHRINK | SEALMEM_SEAL_GROW;
	__u64 size = IMAGE_PAGES * SM_PS;
	struct image im[2];
	pthread_t th[2];
	int fd = open("/dev/sealmem", O_RDWR | O_CLOEXEC), seen[IMAGE_PAGES] = { 0 }, bad[IMAGE_PAGES] = { 0 };
	int end_at = (int)pick(IMAGE_PAGES + 1), ended = 0, hfd = -1, nth = 0;
	unsigned char order[IMAGE_PAGES];
	uint32_t tag = (uint32_t)rnd() & ~HUGE_TAG;
	uint64_t pg[IMAGE_PAGES];
	int huge = HAVE_HUGE && pick(3) == 0;
	char *p = MAP_FAILED;

	/*
	 * A huge image (a third of them): one whole unit and a part of the next (its request
	 * is for the part within EOF), its slots pages anywhere in it, unit boundaries and the
	 * last page often; otherwise 16 pages, slot i page i.
	 */
	if (huge) {
		tag |= HUGE_TAG;
		size = UNIT + SM_PS * (1 + pick(UNIT_PAGES));
	}
	for (int i = 0; i < IMAGE_PAGES; i++) {
		uint64_t np = size / SM_PS;

		pg[i] = !huge ? (uint64_t)i
			: (uint64_t[]){ 0, UNIT_PAGES - 1, UNIT_PAGES, np - 1, pick(np), pick(np), pick(np), pick(np) }[pick(8)];
	}
	if (fd < 0 || ioctl(fd, SEALMEM_IOC_SET_SIZE, &size) || (huge && ioctl(fd, SEALMEM_IOC_SET_HUGE, 0)) ||
	    (hfd = ioctl(fd, SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC | SEALMEM_FD_NONBLOCK)) < 0 ||
	    ioctl(fd, SEALMEM_IOC_ADD_SEALS, &seals)) {
		check_x("lazy image", -1, ALLOW(EMFILE), R_MOD | R_ALLOC);
		goto out;
	}
	/* Shared or private: both fault through the file. */
	p = mmap(NULL, size, PROT_READ, pick(2) ? MAP_SHARED : MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		check("image mmap", -1, NONE);
		goto out;
	}
	for (int i = 0; i < IMAGE_PAGES; i++)
		order[i] = (unsigned char)i;
	for (int i = IMAGE_PAGES - 1; i > 0; i--) {
		int j = (int)pick((unsigned long)i + 1);
		unsigned char t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (int t = 0; t < 2; t++) {
		im[t] = (struct image){ .fd = fd, .hfd = hfd, .tag = tag, .huge = huge, .prefetch = t == 0, .rng = rnd() | 1, .slot = me };
		memcpy(im[t].order, order, sizeof(order));
		memcpy(im[t].pg, pg, sizeof(pg));
		for (int i = IMAGE_PAGES - 1; i > 0 && t == 0; i--) {
			int j = (int)pick((unsigned long)i + 1);
			unsigned char x = im[t].order[i];

			im[t].order[i] = im[t].order[j];
			im[t].order[j] = x;
		}
		errno = pthread_create(&th[t], NULL, image_handler, &im[t]);
		if (errno) {
			check_x("lazy image thread", -1, ALLOW(EAGAIN), 0);
			break;
		}
		nth++;
	}
	if (nth < 2) {
		ioctl(hfd, SEALMEM_IOC_FILL_END);
		goto join;
	}
	for (int k = 0; k <= IMAGE_PAGES; k++) {
		int i, sig;
		ssize_t n = SM_PS;

		if (k == end_at) {
			check("image FILL_END", ioctl(hfd, SEALMEM_IOC_FILL_END), NONE);
			ended = 1;
		}
		if (k == IMAGE_PAGES)
			break;
		i = order[k];
		if (pick(2)) {
			/* A fault: it waits for the handlers (or FILL_END), then maps the page. */
			in_touch = 1;
			if ((sig = sigsetjmp(jmp, 1)) == 0)
				memcpy(first + (size_t)i * SM_PS, p + pg[i] * SM_PS, SM_PS);
			in_touch = 0;
			count(1, 1);
			if (sig) {
				bad[i] = 1;
				if (page_kind(tag, pg[i]) != K_POISON)
					fail("lazy image", i, sig, "a signal faulting a page that is not poisoned");
				continue;
			}
		} else {
			n = pread(fd, first + (size_t)i * SM_PS, SM_PS, (off_t)(pg[i] * SM_PS));
			/*
			 * Under -i the copy-out itself may fail to allocate: the buffer is touched, but
			 * a fork by another thread makes it copy-on-write again (EFAULT or a short read).
			 */
			if (n < 0 && errno == EIO && page_kind(tag, pg[i]) == K_POISON) {
				count(1, 1);
				bad[i] = 1;
				continue;
			}
			if (n < 0) {
				check_x("image pread", n, NONE, R_MOD | R_OUT | R_ALLOC);
				continue;
			}
			count(1, 1);
			if (n != (ssize_t)SM_PS) {
				if (!INJECT)
					fail("image pread", n, 0, "short read of a lazy image page");
				continue;
			}
		}
		seen[i] = 1;
		check_lazy_bytes(huge ? "huge lazy image" : "lazy image", tag, pg[i] * SM_PS, first + (size_t)i * SM_PS, SM_PS, ended);
	}
join:
	for (int t = 0; t < nth; t++)
		pthread_join(th[t], NULL);
	for (int i = 0; i < IMAGE_PAGES; i++)
		if (seen[i] && pread(fd, again + (size_t)i * SM_PS, SM_PS, (off_t)(pg[i] * SM_PS)) == (ssize_t)SM_PS &&
		    memcmp(first + (size_t)i * SM_PS, again + (size_t)i * SM_PS, SM_PS))
			fail(huge ? "huge lazy image" : "lazy image", (long)pg[i], 0, "a page of the sealed image changed after it was read");
	in_touch = 1;
	for (int i = 0; i < IMAGE_PAGES; i++) {
		int sig;

		if (!seen[i] && !bad[i])
			continue;
		if ((sig = sigsetjmp(jmp, 1)) == 0) {
			if (bad[i] && (*(volatile char *)(p + pg[i] * SM_PS) || 1))
				fail(huge ? "huge lazy image" : "lazy image", (long)pg[i], 0, "a poisoned page of the image can be loaded after FILL_END");
			else if (!bad[i] && memcmp(first + (size_t)i * SM_PS, p + pg[i] * SM_PS, SM_PS))
				fail(huge ? "huge lazy image" : "lazy image", (long)pg[i], 0, "a mapped page of the sealed image differs from what was read");
		} else if (!bad[i]) {
			fail(huge ? "huge lazy image" : "lazy image", (long)pg[i], sig, "a signal loading a page of the image already read");
		}
	}
	in_touch = 0;
	count(1, 1);
out:
	if (p != MAP_FAILED)
		munmap(p, size);
	if (hfd >= 0)
		close(hfd);
	if (fd >= 0)
		close(fd);
}

/*
 * A fresh file's pages are zero (never stale kernel data). A third of them (with
 * SEALMEM_FEATURE_HUGE) are huge: a unit and a part of the next, mapped from offset 0 or from
 * a page inside the first unit; the first touch of a whole unit allocates a 2 MiB folio.
 */
static void check_fresh(void)
{
	int fd = open("/dev/sealmem", O_RDWR | O_CLOEXEC), huge = HAVE_HUGE && pick(3) == 0;
	__u64 size = huge ? UNIT + SM_PS * (1 + pick(16)) : 4 * SM_PS;
	size_t off = huge && pick(2) ? SM_PS * pick(UNIT_PAGES) : 0;
	char *p;

	if (fd < 0 || ioctl(fd, SEALMEM_IOC_SET_SIZE, &size) || (huge && ioctl(fd, SEALMEM_IOC_SET_HUGE, 0))) {
		check_x("fresh file", -1, ALLOW(EMFILE), R_MOD | R_ALLOC);
		if (fd >= 0)
			close(fd);
		return;
	}
	p = mmap(NULL, size - off, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
	if (p != MAP_FAILED) {
		for (size_t i = 0; i < size - off; i += 512)
			if (p[i]) {
				fail(huge ? "fresh huge page" : "fresh page", (long)(off + i), 0, "a new page is not zero");
				break;
			}
		munmap(p, size - off);
	} else {
		check("fresh mmap", -1, NONE);
	}
	close(fd);
	count(1, 1);
}

/*
 * One fuzzing thread. The mix favours cheap calls (ioctls, I/O), which are most of what
 * reaches the module; the expensive ones (fork and killed handlers ~0.3-0.8 s under TCG, a
 * lazy image ~0.1 s, fresh files and maps ~0.03 s) come rarely but still hundreds of times
 * per run.
 */
static const char *const KIND[] = { "fork", "kill-handler", "check-sealed", "check-fresh", "mmap", "io", "ioctl", "lazy-image" };
#define NKIND 8
static atomic_long KIND_NS[NKIND], KIND_N[NKIND]; /* per process; printed with -v */
static atomic_long SUB_NS[3][16], SUB_N[3][16], SUB_MAX[3];
static int VERBOSE;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void *worker(void *arg)
{
	int slot = (int)(uintptr_t)arg % SLOTS;

	me = &SH->slot[slot];
	rng = SEED * 2654435761UL + (uintptr_t)arg * 40503 + 1;
	while (!atomic_load_explicit(&STOP, memory_order_relaxed)) {
		unsigned long r = pick(20000);
		/* Per 20,000: fork 1, kill-handler 1, sealed 6, fresh 6, lazy image 6, mmap 60,
		 * I/O 7,800, ioctls the rest. */
		int k = r < 1 ? 0 : r < 2 ? 1 : r < 8 ? 2 : r < 14 ? 3 : r < 20 ? 7 : r < 80 ? 4 : r < 7880 ? 5 : 6;
		double t = VERBOSE ? now_ns() : 0;

		atomic_fetch_add_explicit(&me->seq, 1, memory_order_relaxed);
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
		atomic_fetch_add_explicit(&me->seq, 1, memory_order_relaxed);
		if (!VERBOSE)
			continue;
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

/* What a handler thread of a shared lazy file serves (see server()). */
struct srv {
	int file;  /* F_LAZY or F_HLAZY */
	int *hfd;  /* its handler fd */
	int slot;  /* its slot, counted from the last */
};

/*
 * One of a lazy file's two handler threads (F_LAZY's or F_HLAZY's): each request is served
 * by the page's kind (page_kind(tag, page)), a unit's request by the kinds of its pages (one
 * fill of the whole unit where they agree); sometimes a bad fill (which must fill nothing
 * wrong) or a WAKE; prefetches of pages and, in the huge file, of whole units.
 */
static void *server(void *arg)
{
	struct srv *sv = arg;
	int file = sv->file, hfd = *sv->hfd;
	uint32_t tag = tag_of(file);
	uint64_t minp = min_pages(file);
	/* A unit's worth: F_LAZY may become huge too (SET_HUGE while it is empty). */
	char *content = malloc(UNIT), *edge = MAP_FAILED;

	rng = SEED ^ 0x5eed ^ (uintptr_t)sv->slot * 977;
	me = &SH->slot[SLOTS - 1 - sv->slot];
	/*
	 * A source whose second half cannot be read (PROT_NONE): a unit COPY from it faults
	 * half-way. Not unmapped: another mapping of this process (a fuzzed mmap of some other
	 * file) could then land in the gap, and the COPY would read that file's bytes into the
	 * lazy file (it did once: "a page of the lazy file is not its handler's content").
	 */
	if (file == F_HLAZY) {
		edge = mmap(NULL, UNIT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (edge != MAP_FAILED && mprotect(edge + UNIT / 2, UNIT / 2, PROT_NONE)) {
			munmap(edge, UNIT);
			edge = MAP_FAILED;
		}
	}
	while (content && !atomic_load(&STOP)) {
		if (pick(50) == 0) {
			/* Bad arguments: a NULL or kernel source, a misaligned or zero length. */
			struct sealmem_copy c = { .offset = SM_PS * pick(minp), .src = (uintptr_t)bad_ptr(), .len = SM_PS };

			if (pick(2)) {
				c.src = (uintptr_t)content;
				c.len = pick(2) ? 0 : SM_PS + 1 + pick(SM_PS - 2);
			} else if (file == F_HLAZY && pick(2)) {
				/* A whole unit from a bad source. */
				c.offset = UNIT * pick(2);
				c.len = UNIT;
			}
			/* A bad source is found only when copying into a new page: ENOMEM first. */
			check_x("COPY(bad)", ioctl(hfd, SEALMEM_IOC_COPY, &c), ALLOW(EINVAL, EFAULT, EEXIST), R_MOD | R_ALLOC);
		}
		if (edge != MAP_FAILED && pick(100) == 0) {
			/*
			 * A unit COPY whose source faults half-way (its second half is PROT_NONE),
			 * into a uniform COPY unit: the first
			 * half of the source is that unit's content, so whatever the fill stores
			 * (nothing for a unit installed as a whole; pages one by one where the unit is
			 * partly present) is right, and the oracle checks it.
			 */
			uint64_t u = UNIT_PAGES * pick(2);

			if (unit_uniform(tag, u) && page_kind(tag, u) == K_COPY) {
				struct sealmem_copy c = { .offset = u * SM_PS, .src = (uintptr_t)edge, .len = UNIT,
							  .flags = pick(2) ? SEALMEM_FILL_SKIP_EXISTING : 0 };

				for (uint64_t i = 0; i < UNIT_PAGES / 2; i++)
					page_content(tag, u + i, edge + i * SM_PS);
				check_x("COPY(faulting source)", ioctl(hfd, SEALMEM_IOC_COPY, &c), ALLOW(EINVAL, EFAULT, EEXIST),
					R_MOD | R_ALLOC);
			}
		}
		if (pick(50) == 0)
			check("WAKE", ioctl(hfd, SEALMEM_IOC_WAKE,
					    &(struct sealmem_range){ file == F_HLAZY ? hrand_off() & ~(SM_PS - 1) : rand_off(),
								     file == F_HLAZY ? hrand_len() : rand_len() }), ALLOW(EINVAL));
		/* A prefetch: a page of the handler's choosing, filled by its kind (a present page
		 * is skipped): a partial fill of its unit in the huge file, where a prefetch also
		 * fills a whole unit at times. Punched and shrunk pages come back this way too. */
		if (file == F_HLAZY ? pick(8) == 0 : pick(4) == 0) {
			if (file == F_HLAZY && pick(2))
				serve_range(hfd, tag, UNIT_PAGES * pick(2), pick(2) ? UNIT_PAGES : minp - UNIT_PAGES, 1, content);
			else
				serve_page(hfd, tag, pick(minp), 1, content);
		}
		if (!serve_requests(FD[file], hfd, tag, atomic_load(&SH->maybe_huge[file]), content, 20))
			break;
	}
	if (edge != MAP_FAILED)
		munmap(edge, UNIT);
	free(content);
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
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", HFD2);
	print_file("sealmem_fuzz: stall: huge lazy file's handler fdinfo:\n", path);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", FD[F_HLAZY]);
	print_file("sealmem_fuzz: stall: huge lazy file fdinfo:\n", path);
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

/* Operations so far: reached (the module) and the others. */
static void totals(long *reached, long *other)
{
	*reached = *other = 0;
	for (int i = 0; i < SLOTS; i++) {
		*reached += atomic_load_explicit(&SH->slot[i].ops, memory_order_relaxed);
		*other += atomic_load_explicit(&SH->slot[i].other, memory_order_relaxed);
	}
	*reached += atomic_load_explicit(&scratch_slot.ops, memory_order_relaxed);
	*other += atomic_load_explicit(&scratch_slot.other, memory_order_relaxed);
}

/*
 * The timekeeper (a process of its own): ends the run once `target` operations reached the
 * module (if `target`), after `secs` (a failure if a target was not reached by then: the time
 * cap), or early on the first failure. It also watches for stalls: a worker whose operation
 * has not finished for 5 s gets every task's kernel stack printed, and one stuck for 10 s is
 * a failure (the handlers serve every request at once; every wait in the fuzzer is bounded).
 */
static void timekeeper(int secs, long target)
{
	double t0 = now_ns(), next_report = 30e9;
	long last[SLOTS] = { 0 }, reached, other;
	double stuck_since[SLOTS] = { 0 };
	int dumped = 0;

	for (;;) {
		double t = now_ns(), worst = 0;

		totals(&reached, &other);
		if (atomic_load(&FAILS))
			break;
		if (target && reached >= target)
			break;
		if (t - t0 >= secs * 1e9) {
			if (target) {
				char why[160];

				snprintf(why, sizeof(why), "the time cap of %d s came at %ld of the %ld operations wanted (%.0f/s)",
					 secs, reached, target, reached / ((t - t0) / 1e9));
				fail("time cap", reached, 0, why);
			}
			break;
		}
		if (t - t0 >= next_report) {
			printf("sealmem_fuzz: %.0f s: %ld operations (%.0f/s), %ld not reaching the module\n",
			       (t - t0) / 1e9, reached, reached / ((t - t0) / 1e9), other);
			next_report += 30e9;
		}
		for (int i = 0; i < SLOTS; i++) {
			long s = atomic_load_explicit(&SH->slot[i].seq, memory_order_relaxed);

			if (!(s & 1) || s != last[i]) {
				last[i] = s;
				stuck_since[i] = t;
			} else if (t - stuck_since[i] > worst) {
				worst = t - stuck_since[i];
			}
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
		usleep(200 * 1000);
	}
	atomic_store(&STOP, 1);
	/* Workers may wait on the lazy file's holes: end lazy mode so they all continue. From
	 * now on its holes may read as zeros. */
	atomic_store(&SH->lazy_ended, 1);
	check_x("FILL_END", ioctl(HFD, SEALMEM_IOC_FILL_END), NONE, 0);
	check_x("FILL_END", ioctl(HFD2, SEALMEM_IOC_FILL_END), NONE, 0);
}

/*
 * The shared files: plain, resizable, sealed with known content, lazy with a handler; huge
 * (when the module has SEALMEM_FEATURE_HUGE; else they are ordinary files of the same sizes):
 * plain, and lazy with a handler.
 */
static int setup_files(__u64 size)
{
	__u32 seals = SEALMEM_SEAL_WRITE | SEALMEM_SEAL_SHRINK | SEALMEM_SEAL_GROW | SEALMEM_SEAL_SEAL;
	__u64 lazy_size = LAZY_MIN_PAGES * SM_PS, hlazy_size = HLAZY_MIN_PAGES * SM_PS, huge_size = UNIT + UNIT / 2;
	int ok = 1;

	HFD = HFD2 = -1;
	for (int i = 0; i < NFILES; i++) {
		FD[i] = open("/dev/sealmem", O_RDWR | O_CLOEXEC);
		ok = ok && FD[i] >= 0 &&
		     !ioctl(FD[i], SEALMEM_IOC_SET_SIZE,
			    i == F_LAZY ? &lazy_size : i == F_HLAZY ? &hlazy_size : i == F_HUGE ? &huge_size : &size);
		if (ok && HAVE_HUGE && (i == F_HUGE || i == F_HLAZY)) {
			atomic_store(&SH->maybe_huge[i], 1);
			ok = !ioctl(FD[i], SEALMEM_IOC_SET_HUGE, 0);
		}
	}
	ok = ok && pwrite(FD[F_SEALED], SEALED_CONTENT, size, 0) == (ssize_t)size &&
	     !ioctl(FD[F_SEALED], SEALMEM_IOC_ADD_SEALS, &seals);
	atomic_store(&SH->seals[F_SEALED], seals);
	HFD = ok ? ioctl(FD[F_LAZY], SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC | SEALMEM_FD_NONBLOCK) : -1;
	HFD2 = ok ? ioctl(FD[F_HLAZY], SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC | SEALMEM_FD_NONBLOCK) : -1;
	for (int i = 0; i < NFILES; i++)
		VIEWFD[i] = ok ? ioctl(FD[i], SEALMEM_IOC_VIEW, SEALMEM_FD_CLOEXEC) : -1;
	ok = ok && HFD >= 0 && HFD2 >= 0;
	for (int i = 0; i < NFILES; i++)
		ok = ok && VIEWFD[i] >= 0;
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
	if (HFD2 >= 0)
		close(HFD2);
	return -1;
}

static void print_kinds(int proc)
{
	for (int k = 0; k < NKIND; k++)
		printf("sealmem_fuzz: process %d: %-12s %8ld runs, %8.1f us each\n", proc, KIND[k],
		       atomic_load(&KIND_N[k]), atomic_load(&KIND_N[k]) ? atomic_load(&KIND_NS[k]) / 1e3 / atomic_load(&KIND_N[k]) : 0.0);
	for (int k = 0; k < 3; k++) {
		printf("sealmem_fuzz: process %d: %s %s (us each):", proc, KIND[4 + k], k ? "cases" : "by file");
		for (int i = 0; i < (k ? 11 : 2 * NFILES + 1); i++)
			printf(" %.0f", atomic_load(&SUB_N[k][i]) ? atomic_load(&SUB_NS[k][i]) / 1e3 / atomic_load(&SUB_N[k][i]) : 0.0);
		printf(" (max %.0f)", atomic_load(&SUB_MAX[k]) / 1e3);
		printf("\n");
	}
}

/* The fuzzing threads of one process (the first process also runs the lazy files' handler threads, two each). */
static void fuzz_process(int proc, int threads, int serve)
{
	static struct srv sv[4] = { { F_LAZY, &HFD, 0 }, { F_LAZY, &HFD, 1 }, { F_HLAZY, &HFD2, 2 }, { F_HLAZY, &HFD2, 3 } };
	pthread_t th[16], srv[4];

	for (int i = 0; serve && i < 4; i++)
		pthread_create(&srv[i], NULL, server, &sv[i]);
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(proc * 16 + i + 1));
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; serve && i < 4; i++)
		pthread_join(srv[i], NULL);
}

/* The module's counters of huge files, printed as deltas at the end of a run. */
static const char *const HUGE_COUNTERS[] = { "huge_units", "huge_fallbacks", "pmd_faults" };

int main(int argc, char **argv)
{
	long long counters0[3];
	int opt, threads = 1, procs = 4, secs = 10;
	long target = 0, reached, other;
	pid_t kids[16], tk;
	struct sigaction sa = { .sa_handler = on_fault };
	__u64 size = SEALED_PAGES * SM_PS;
	int status;
	double t0;

	SEED = (unsigned long)time(NULL) ^ (unsigned long)getpid();
	while ((opt = getopt(argc, argv, "s:t:n:j:p:i:I:v")) != -1) {
		if (opt == 'I')
			return inject_control(atoi(optarg));
		if (opt == 'i')
			INJECT = atoi(optarg);
		else if (opt == 'v')
			VERBOSE = 1;
		else if (opt == 's')
			SEED = strtoul(optarg, NULL, 0);
		else if (opt == 't')
			secs = atoi(optarg);
		else if (opt == 'n')
			target = atol(optarg);
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
	/* The handshake (retried: under -i opening the device may fail to allocate). */
	for (int tries = 0; tries < 1000; tries++) {
		struct sealmem_api api = { .api = SEALMEM_API };
		int fd = open("/dev/sealmem", O_RDWR | O_CLOEXEC), ok;

		ok = fd >= 0 && !ioctl(fd, SEALMEM_IOC_API, &api);
		HAVE_HUGE = ok && (api.features & SEALMEM_FEATURE_HUGE);
		if (fd >= 0)
			close(fd);
		if (!ok && INJECT)
			continue;
		printf("sealmem_fuzz: huge files %s\n", HAVE_HUGE ? "on (SEALMEM_FEATURE_HUGE)" : "off (no SEALMEM_FEATURE_HUGE: F_HUGE and F_HLAZY are ordinary files)");
		break;
	}
	if (target)
		printf("sealmem_fuzz: seed %lu, %ld operations within %d s, %d processes x %d threads%s (reproduce: sealmem_fuzz -s %lu -n %ld -t %d -p %d -j %d)\n",
		       SEED, target, secs, procs, threads, INJECT ? ", injected allocation failures" : "", SEED, target, secs, procs, threads);
	else
		printf("sealmem_fuzz: seed %lu, %d s, %d processes x %d threads%s (reproduce: sealmem_fuzz -s %lu -t %d -p %d -j %d)\n",
		       SEED, secs, procs, threads, INJECT ? ", injected allocation failures" : "", SEED, secs, procs, threads);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Larger than any length fuzz_io uses from its first page, so a "good" buffer is good. */
	GOOD = mmap(NULL, 16 * SM_PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	SEALED_CONTENT = malloc(size);
	for (size_t i = 0; i < size; i++)
		SEALED_CONTENT[i] = (char)(i * 7 + 3);
	/* Under injection, setting up may itself fail (ENOMEM, short writes): retry. */
	for (int tries = 0; setup_files(size); tries++) {
		if (!INJECT || tries == 1000) {
			perror("setting up the files");
			return 2;
		}
	}
	if (VERBOSE) {
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
	t0 = now_ns();
	for (int i = 0; i < 3; i++)
		counters0[i] = sm_counter(HUGE_COUNTERS[i]);
	/* Every process shares the same files (and the sealed content to check against). */
	for (int p = 1; p < procs; p++) {
		kids[p] = fork();
		if (kids[p] == 0) {
			fuzz_process(p, threads, 0);
			if (VERBOSE)
				print_kinds(p);
			_exit(0);
		}
	}
	tk = fork();
	if (tk == 0) {
		timekeeper(secs, target);
		_exit(0);
	}
	fuzz_process(0, threads, 1);
	if (VERBOSE)
		print_kinds(0);
	for (int p = 1; p < procs; p++)
		if (kids[p] > 0 && (waitpid(kids[p], &status, 0) != kids[p] || sm_ended(status) != SM_EXITED(0)))
			fail("fuzzing process", sm_ended(status), 0, "a fuzzing process died");
	if (tk > 0 && (waitpid(tk, &status, 0) != tk || sm_ended(status) != SM_EXITED(0)))
		fail("timekeeper", sm_ended(status), 0, "the timekeeper died");
	while (wait(NULL) > 0)
		;
	check_sealed();
	for (int i = 0; i < NFILES; i++) {
		close(VIEWFD[i]);
		close(FD[i]);
	}
	close(HFD);
	close(HFD2);
	totals(&reached, &other);
	printf("sealmem_fuzz: %ld operations, %ld failures (seed %lu)\n", reached, atomic_load(&FAILS), SEED);
	printf("sealmem_fuzz: %.0f operations/s; %ld calls that never reached the module (not counted above); %ld fork children ended by their alarm\n",
	       reached / ((now_ns() - t0) / 1e9), other, atomic_load(&SH->alarm_kills));
	/* What the huge files got to do (the counters are the module's, for the whole run). */
	printf("sealmem_fuzz: huge: %ld unit requests and %ld page requests served;", atomic_load(&SH->unit_requests),
	       atomic_load(&SH->page_requests));
	for (int i = 0; i < 3; i++)
		printf(" %s +%lld", HUGE_COUNTERS[i], sm_counter(HUGE_COUNTERS[i]) - counters0[i]);
	printf("\n");
	return atomic_load(&FAILS) ? 1 : 0;
}
