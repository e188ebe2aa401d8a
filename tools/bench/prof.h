/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A minimal sampling profiler for the benchmark VM: where does the time of a case go?
 *
 * perf has no hardware PMU under TCG, but the software cpu-clock event (an hrtimer) samples
 * fine. prof_start() opens one cpu-clock event per CPU for every task (root only), sampling
 * every PROF_PERIOD_NS of CPU time with the interrupted IP and the kernel call chain;
 * prof_stop() reads the ring buffers and prints, for the kernel part of the samples, the
 * functions where the time was spent (self) and the functions the time was spent under
 * (inclusive: each function counted once per sample it is on the stack of). Symbols come
 * from /proc/kallsyms, module symbols included; Rust symbols are shortened to their last
 * path segments. Idle time (pid 0) is counted apart.
 */
#include <linux/perf_event.h>

#define PROF_PERIOD_NS 100000 /* 10 kHz of CPU time */
#define PROF_RING_PAGES 4096  /* 16 MiB per CPU: no draining during a case */
#define PROF_MAXCPU 8
#define PROF_MAXSYM 200000
#define PROF_TOP 40
#define PROF_TOP_INCL 60

struct prof_sym {
	unsigned long addr;
	char *name;
	unsigned long self, incl, stamp;
	unsigned int focus;                       /* bit f: matches focus f */
	unsigned long fincl[4], fstamp[4];        /* samples under focus f with this on the stack */
	unsigned long fself[4];                   /* ... with this as the leaf */
};

/* -F: up to 4 functions (name substrings) whose callees are broken down too. */
static const char *PROF_FOCUS[4];
static int PROF_NFOCUS;
/* -A: a function (name substring) whose self samples are listed by offset, to annotate. */
static const char *PROF_ANNOTATE;
static unsigned long PROF_ANN_OFF[4096];

static struct {
	int ncpu, fd[PROF_MAXCPU];
	void *ring[PROF_MAXCPU];
	struct prof_sym *syms;
	size_t nsyms;
} PROF;

static int prof_sym_cmp(const void *a, const void *b)
{
	const struct prof_sym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* "_RNvMs_NtCsXYZ_7sealmem4fileNtB4_8SealFile5fault" -> "file::SealFile::fault" (roughly:
 * the length-prefixed identifiers of a v0 mangled name, crate hash and crate dropped). */
static char *prof_demangle(const char *m)
{
	char out[160] = "", *segs[12];
	int nseg = 0;

	if (strncmp(m, "_R", 2))
		return strdup(m);
	for (const char *p = m + 2; *p && nseg < 12;) {
		if (*p >= '1' && *p <= '9') {
			long n = strtol(p, (char **)&p, 10);

			if (*p == '_')
				p++;
			if ((long)strlen(p) < n)
				break;
			segs[nseg] = strndup(p, n);
			nseg++;
			p += n;
		} else if (*p == 's' || *p == 'B') {
			/* disambiguator or back-reference: a base-62 number up to '_' */
			while (*p && *p != '_')
				p++;
		} else {
			p++;
		}
	}
	for (int i = nseg > 3 ? nseg - 3 : 0; i < nseg; i++) {
		if (out[0])
			strncat(out, "::", sizeof(out) - strlen(out) - 1);
		strncat(out, segs[i], sizeof(out) - strlen(out) - 1);
	}
	for (int i = 0; i < nseg; i++)
		free(segs[i]);
	return strdup(out[0] ? out : m);
}

static void prof_load_syms(void)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[512], type, name[400], mod[64];
	unsigned long addr;

	if (!f)
		die("/proc/kallsyms");
	PROF.syms = calloc(PROF_MAXSYM, sizeof(*PROF.syms));
	while (PROF.nsyms < PROF_MAXSYM && fgets(line, sizeof(line), f)) {
		mod[0] = 0;
		if (sscanf(line, "%lx %c %399s %63s", &addr, &type, name, mod) < 3 || !addr)
			continue;
		if (type != 't' && type != 'T')
			continue;
		PROF.syms[PROF.nsyms].addr = addr;
		PROF.syms[PROF.nsyms].name = prof_demangle(name);
		PROF.nsyms++;
	}
	fclose(f);
	if (!PROF.nsyms)
		die("no text symbols in /proc/kallsyms (kptr_restrict?)");
	qsort(PROF.syms, PROF.nsyms, sizeof(*PROF.syms), prof_sym_cmp);
}

static struct prof_sym *prof_lookup(unsigned long ip)
{
	size_t lo = 0, hi = PROF.nsyms;

	if (ip < PROF.syms[0].addr)
		return NULL;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (PROF.syms[mid].addr <= ip)
			lo = mid;
		else
			hi = mid;
	}
	return &PROF.syms[lo];
}

/* Sampling runs only inside the timed parts of the cases (prof_resume .. prof_pause). */
static void prof_resume(void)
{
	for (int c = 0; c < PROF.ncpu; c++)
		ioctl(PROF.fd[c], PERF_EVENT_IOC_ENABLE, 0);
}

static void prof_pause(void)
{
	for (int c = 0; c < PROF.ncpu; c++)
		ioctl(PROF.fd[c], PERF_EVENT_IOC_DISABLE, 0);
}

/* Opens the (disabled) events; the cases turn them on around what they time. */
static void prof_start(void)
{
	if (!PROF.syms)
		prof_load_syms();
	for (size_t i = 0; i < PROF.nsyms; i++) {
		PROF.syms[i].self = PROF.syms[i].incl = PROF.syms[i].stamp = 0;
		PROF.syms[i].focus = 0;
		for (int f = 0; f < PROF_NFOCUS; f++) {
			PROF.syms[i].fincl[f] = PROF.syms[i].fstamp[f] = PROF.syms[i].fself[f] = 0;
			if (strstr(PROF.syms[i].name, PROF_FOCUS[f]))
				PROF.syms[i].focus |= 1u << f;
		}
	}
	PROF.ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (PROF.ncpu > PROF_MAXCPU)
		PROF.ncpu = PROF_MAXCPU;
	for (int c = 0; c < PROF.ncpu; c++) {
		struct perf_event_attr a = {
			.size = sizeof(a),
			.type = PERF_TYPE_SOFTWARE,
			.config = PERF_COUNT_SW_CPU_CLOCK,
			.sample_period = PROF_PERIOD_NS,
			.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_CALLCHAIN,
			.exclude_callchain_user = 1,
			.disabled = 1,
		};

		PROF.fd[c] = syscall(SYS_perf_event_open, &a, -1, c, -1, PERF_FLAG_FD_CLOEXEC);
		if (PROF.fd[c] < 0)
			die("perf_event_open (cpu-clock)");
		PROF.ring[c] = mmap(NULL, (PROF_RING_PAGES + 1) * PS, PROT_READ | PROT_WRITE, MAP_SHARED, PROF.fd[c], 0);
		if (PROF.ring[c] == MAP_FAILED)
			die("perf ring mmap");
	}
}

static int prof_cmp_self(const void *a, const void *b)
{
	const struct prof_sym *x = *(struct prof_sym *const *)a, *y = *(struct prof_sym *const *)b;

	return x->self < y->self ? 1 : x->self > y->self ? -1 : 0;
}

static int prof_cmp_incl(const void *a, const void *b)
{
	const struct prof_sym *x = *(struct prof_sym *const *)a, *y = *(struct prof_sym *const *)b;

	return x->incl < y->incl ? 1 : x->incl > y->incl ? -1 : 0;
}

static int prof_sort_focus;

static int prof_cmp_focus(const void *a, const void *b)
{
	const struct prof_sym *x = *(struct prof_sym *const *)a, *y = *(struct prof_sym *const *)b;
	unsigned long u = x->fincl[prof_sort_focus], v = y->fincl[prof_sort_focus];

	return u < v ? 1 : u > v ? -1 : 0;
}

/* Stops sampling and prints the profile of what ran since prof_start(). */
static void prof_stop(const char *title)
{
	unsigned long total = 0, idle = 0, user = 0, kernel = 0, lost = 0, stamp = 0, ftotal[4] = { 0 };
	struct prof_sym **hot;
	size_t nhot = 0;

	prof_pause();
	for (int c = 0; c < PROF.ncpu; c++) {
		struct perf_event_mmap_page *mp = PROF.ring[c];
		char *data = (char *)mp + PS;
		__u64 size = (__u64)PROF_RING_PAGES * PS, head = __atomic_load_n(&mp->data_head, __ATOMIC_ACQUIRE);

		for (__u64 pos = mp->data_tail; pos < head;) {
			struct perf_event_header h;
			__u64 rec[1024];

			/* Records may wrap around the end of the ring: copy each out first. */
			for (size_t i = 0; i < sizeof(h); i++)
				((char *)&h)[i] = data[(pos + i) % size];
			if (h.size < sizeof(h) || h.size > sizeof(rec))
				break;
			for (size_t i = 0; i < h.size; i++)
				((char *)rec)[i] = data[(pos + i) % size];
			pos += h.size;
			if (h.type == PERF_RECORD_LOST) {
				lost += rec[2];
				continue;
			}
			if (h.type != PERF_RECORD_SAMPLE)
				continue;
			/* ip, pid/tid, nr, ips[nr] */
			__u64 ip = rec[1], nr = rec[3], *ips = &rec[4];
			__u32 pid = (__u32)rec[2];

			total++;
			if (pid == 0) {
				idle++;
				continue;
			}
			if ((long)ip >= 0) {
				user++;
				continue;
			}
			kernel++;
			stamp++;
			struct prof_sym *s = prof_lookup(ip);

			if (s)
				s->self++;
			if (s && PROF_ANNOTATE && strstr(s->name, PROF_ANNOTATE) && ip - s->addr < 4096)
				PROF_ANN_OFF[ip - s->addr]++;
			struct prof_sym *chain[128];
			int nch = 0;

			for (__u64 i = 0; i < nr && 4 + i < h.size / 8; i++) {
				if (ips[i] >= (__u64)PERF_CONTEXT_MAX)
					continue; /* context markers */
				s = prof_lookup(ips[i]);
				if (s && nch < 128)
					chain[nch++] = s;
				if (s && s->stamp != stamp) {
					s->stamp = stamp;
					s->incl++;
				}
			}
			/* Under a focus function: count it and everything it called (leaf first). */
			for (int f = 0; f < PROF_NFOCUS; f++) {
				int top = -1;

				for (int j = nch - 1; j >= 0 && top < 0; j--)
					if (chain[j]->focus & (1u << f))
						top = j;
				if (top < 0)
					continue;
				ftotal[f]++;
				chain[0]->fself[f]++;
				for (int j = 0; j <= top; j++)
					if (chain[j]->fstamp[f] != stamp) {
						chain[j]->fstamp[f] = stamp;
						chain[j]->fincl[f]++;
					}
			}
		}
		munmap(PROF.ring[c], (PROF_RING_PAGES + 1) * PS);
		close(PROF.fd[c]);
	}
	PROF.ncpu = 0;

	printf("\nPROFILE %s: %lu samples of %d us CPU time: idle %.1f%%, user %.1f%%, kernel %.1f%%%s\n", title, total,
	       PROF_PERIOD_NS / 1000, total ? 100.0 * idle / total : 0, total ? 100.0 * user / total : 0,
	       total ? 100.0 * kernel / total : 0, lost ? " (samples lost)" : "");
	hot = calloc(PROF.nsyms, sizeof(*hot));
	for (size_t i = 0; i < PROF.nsyms; i++)
		if (PROF.syms[i].self || PROF.syms[i].incl)
			hot[nhot++] = &PROF.syms[i];
	if (!kernel)
		kernel = 1;
	qsort(hot, nhot, sizeof(*hot), prof_cmp_self);
	printf("  kernel self time (%% of kernel samples):\n");
	for (size_t i = 0; i < nhot && i < 25 && hot[i]->self; i++)
		printf("    %5.1f%%  %s\n", 100.0 * hot[i]->self / kernel, hot[i]->name);
	qsort(hot, nhot, sizeof(*hot), prof_cmp_incl);
	printf("  kernel inclusive time (%% of kernel samples):\n");
	for (size_t i = 0; i < nhot && i < PROF_TOP_INCL; i++)
		printf("    %5.1f%%  %s\n", 100.0 * hot[i]->incl / kernel, hot[i]->name);
	if (PROF_ANNOTATE) {
		printf("  self samples in %s by offset:", PROF_ANNOTATE);
		for (int o = 0; o < 4096; o++)
			if (PROF_ANN_OFF[o])
				printf(" +0x%x:%lu", o, PROF_ANN_OFF[o]);
		printf("\n");
		memset(PROF_ANN_OFF, 0, sizeof(PROF_ANN_OFF));
	}
	for (int f = 0; f < PROF_NFOCUS; f++) {
		prof_sort_focus = f;
		qsort(hot, nhot, sizeof(*hot), prof_cmp_focus);
		printf("  under %s (%.1f%% of kernel samples), %% of those samples (inclusive, self):\n", PROF_FOCUS[f],
		       100.0 * ftotal[f] / kernel);
		for (size_t i = 0; i < nhot && i < PROF_TOP && hot[i]->fincl[f]; i++)
			printf("    %5.1f%% %5.1f%%  %s\n", 100.0 * hot[i]->fincl[f] / ftotal[f],
			       100.0 * hot[i]->fself[f] / ftotal[f], hot[i]->name);
	}
	free(hot);
}
