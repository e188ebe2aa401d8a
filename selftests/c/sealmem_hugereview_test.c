// SPDX-License-Identifier: GPL-2.0
/*
 * Huge files (docs/api.md, "Huge files"): the first smoke tests of the module side, and the
 * defects an outside review of it found, each with the test that failed before its fix.
 * The feature's own tests are in sealmem_huge_test.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/sealmem.h>
#include "kselftest_harness.h"
#include "sealmem_lib.h"

#define U SEALMEM_HUGE_SIZE

static long smaps_kb(void *addr, const char *key)
{
	char line[512]; unsigned long lo, hi; int in = 0; long v = -1;
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f) return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') == line + strspn(line, "0123456789abcdef")) {
			in = (unsigned long)addr >= lo && (unsigned long)addr < hi;
			continue;
		}
		if (in && !strncmp(line, key, strlen(key))) { sscanf(line + strlen(key), " %ld", &v); break; }
	}
	fclose(f);
	return v;
}

TEST(nonlazy_pmd)
{
	int fd = sm_new();
	ASSERT_LE(0, fd);
	SM_EXPECT_ERRNO(EINVAL, ioctl(fd, SEALMEM_IOC_SET_HUGE, 1));
	ASSERT_EQ(0, ioctl(fd, SEALMEM_IOC_SET_HUGE, 0));
	ASSERT_EQ(0, ioctl(fd, SEALMEM_IOC_SET_HUGE, 0));
	ASSERT_EQ(0, sm_set_size(fd, 2 * U));
	char *p = mmap(NULL, 2 * U, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, (unsigned long)p % U);
	for (unsigned long o = 0; o < 2 * U; o += SM_PS)
		p[o] = (char)(o >> 12);
	EXPECT_EQ(4096, smaps_kb(p, "FilePmdMapped:"));
	EXPECT_EQ(2, sm_fdinfo_num(fd, "huge_units"));
	EXPECT_EQ(1, sm_fdinfo_num(fd, "huge"));
	char c;
	ASSERT_EQ(1, pread(fd, &c, 1, U + 5 * SM_PS));
	EXPECT_EQ((char)5 + (char)(U >> 12), c);
	/* punch one page inside the first unit */
	ASSERT_EQ(0, sm_punch(fd, 3 * SM_PS, SM_PS));
	EXPECT_EQ(2048, smaps_kb(p, "FilePmdMapped:"));
	EXPECT_EQ(0, p[3 * SM_PS]);
	EXPECT_EQ((char)4, p[4 * SM_PS]);
	EXPECT_EQ((char)2, p[2 * SM_PS]);
	/* partial munmap of the second unit's PMD */
	ASSERT_EQ(0, munmap(p + U, SM_PS));
	EXPECT_EQ((char)(1 + (U >> 12)), p[U + SM_PS]);
	munmap(p, 2 * U);
	close(fd);
	EXPECT_EQ(0, sm_settled_gauge("pages"));
}

struct hctx { int hfd; int nreq; int huge; char *src; };

static void *handler(void *arg)
{
	struct hctx *h = arg;
	struct sealmem_msg m;
	while (sm_read_msg(h->hfd, &m, 5000) == 0) {
		__s64 done;
		h->nreq++;
		if (m.flags & SEALMEM_MSG_HUGE) {
			h->huge++;
			sm_copy(h->hfd, m.offset, h->src + m.offset, U, &done);
		} else {
			sm_copy(h->hfd, m.offset, h->src + m.offset, SM_PS, &done);
		}
	}
	return NULL;
}

TEST(lazy_units)
{
	int fd = sm_new();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, SEALMEM_IOC_SET_HUGE, 0));
	ASSERT_EQ(0, sm_set_size(fd, 4 * U));
	struct hctx h = { .src = sm_make_src(4 * U, 7) };
	h.hfd = sm_fill_enable(fd, 0);
	ASSERT_LE(0, h.hfd);
	pthread_t t;
	ASSERT_EQ(0, pthread_create(&t, NULL, handler, &h));
	char *p = mmap(NULL, 4 * U, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	int bad = 0;
	for (unsigned long o = 0; o < 4 * U; o += SM_PS)
		bad += p[o] != h.src[o];
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, memcmp(p, h.src, 4 * U));
	EXPECT_EQ(8192, smaps_kb(p, "FilePmdMapped:"));
	EXPECT_EQ(4, sm_fdinfo_num(fd, "huge_units"));
	munmap(p, 4 * U);
	close(fd);
	pthread_join(t, NULL);
	EXPECT_EQ(4, h.nreq);
	EXPECT_EQ(4, h.huge);
	close(h.hfd);
	EXPECT_EQ(0, sm_settled_gauge("pages"));
}

static long long counter_pages(void)
{
	return sm_counter("pages");
}

/*
 * write() into a huge unit's folio copied to the offset within the subpage but counted from
 * the folio's first page: every write landed in the unit's first page (511 of 512 pages read
 * back wrong).
 */
TEST(write_then_read_a_huge_unit)
{
	int fd = sm_new();
	char *src = sm_make_src(2 * U, 3), *got = malloc(2 * U);

	ASSERT_LE(0, fd);
	ASSERT_NE(MAP_FAILED, src);
	ASSERT_NE(NULL, got);
	ASSERT_EQ(0, ioctl(fd, SEALMEM_IOC_SET_HUGE, 0));
	ASSERT_EQ(0, sm_set_size(fd, 2 * U));
	/* One page first: the first touch allocates the whole unit. */
	ASSERT_EQ((ssize_t)SM_PS, pwrite(fd, src + 7 * SM_PS, SM_PS, 7 * SM_PS));
	EXPECT_EQ(1, sm_fdinfo_num(fd, "huge_units"));
	ASSERT_EQ((ssize_t)(2 * U), pwrite(fd, src, 2 * U, 0));
	EXPECT_EQ(2, sm_fdinfo_num(fd, "huge_units"));
	ASSERT_EQ((ssize_t)(2 * U), pread(fd, got, 2 * U, 0));
	int bad = 0;
	for (unsigned long o = 0; o < 2 * U; o += SM_PS)
		bad += memcmp(got + o, src + o, SM_PS) != 0;
	EXPECT_EQ(0, bad) TH_LOG("%d of %lu pages read back wrong", bad, (unsigned long)(2 * U / SM_PS));
	char *p = mmap(NULL, 2 * U, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, memcmp(p, src, 2 * U)) TH_LOG("the mapping disagrees");
	munmap(p, 2 * U);
	close(fd);
	free(got);
	munmap(src, 2 * U);
	EXPECT_EQ(0, sm_settled_gauge("pages"));
}

/*
 * The WRITE seal's pin check counted a unit's folio once and skipped the rest of the unit:
 * a small page written into a punched hole of the unit, then pinned (here: lent to a pipe),
 * was never looked at, and ADD_SEALS(WRITE) succeeded.
 */
TEST(write_seal_sees_a_small_page_pinned_inside_a_unit)
{
	int fd = sm_new(), pfd[2];
	char buf[SM_PS_MAX];
	loff_t off = 10 * SM_PS;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, SEALMEM_IOC_SET_HUGE, 0));
	ASSERT_EQ(0, sm_set_size(fd, U));
	memset(buf, 'u', SM_PS);
	ASSERT_EQ((ssize_t)SM_PS, pwrite(fd, buf, SM_PS, 0));
	EXPECT_EQ(1, sm_fdinfo_num(fd, "huge_units"));
	ASSERT_EQ(0, sm_punch(fd, 10 * SM_PS, SM_PS));
	memset(buf, 's', SM_PS);
	ASSERT_EQ((ssize_t)SM_PS, pwrite(fd, buf, SM_PS, 10 * SM_PS));
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ((ssize_t)SM_PS, splice(fd, &off, pfd[1], NULL, SM_PS, 0));
	SM_EXPECT_ERRNO(EBUSY, sm_add_seals(fd, SEALMEM_SEAL_WRITE));
	EXPECT_EQ(0, sm_get_seals(fd));
	ASSERT_EQ((ssize_t)SM_PS, read(pfd[0], buf, SM_PS));
	EXPECT_EQ('s', buf[0]);
	EXPECT_EQ(0, sm_add_seals(fd, SEALMEM_SEAL_WRITE));
	close(pfd[0]);
	close(pfd[1]);
	close(fd);
	EXPECT_EQ(0, sm_settled_gauge("pages"));
}

/*
 * A partly punched unit keeps its whole 2 MiB folio allocated (nothing can split it), so it
 * must stay counted whole against max_pages (and in fdinfo's pages) until its last page goes:
 * uncounting page by page let 512 times max_pages be held by punching all but one page.
 */
TEST(a_partly_punched_unit_stays_counted_whole)
{
	int fd = sm_new();
	long long before = counter_pages();
	char buf[SM_PS_MAX];

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, SEALMEM_IOC_SET_HUGE, 0));
	ASSERT_EQ(0, sm_set_size(fd, U));
	memset(buf, 'p', SM_PS);
	ASSERT_EQ((ssize_t)SM_PS, pwrite(fd, buf, SM_PS, 5 * SM_PS));
	EXPECT_EQ(1, sm_fdinfo_num(fd, "huge_units"));
	EXPECT_EQ(512, sm_pages(fd));
	EXPECT_EQ(before + 512, counter_pages());
	ASSERT_EQ(0, sm_punch(fd, 0, 5 * SM_PS));
	ASSERT_EQ(0, sm_punch(fd, 6 * SM_PS, U - 6 * SM_PS));
	EXPECT_EQ(512, sm_pages(fd)) TH_LOG("one page of the unit left: the folio is still held");
	EXPECT_EQ(before + 512, counter_pages());
	ASSERT_EQ((ssize_t)SM_PS, pread(fd, buf, SM_PS, 5 * SM_PS));
	EXPECT_EQ('p', buf[0]);
	/* A small page in a punched hole counts on its own. */
	ASSERT_EQ((ssize_t)SM_PS, pwrite(fd, buf, SM_PS, 0));
	EXPECT_EQ(513, sm_pages(fd));
	ASSERT_EQ(0, sm_punch(fd, 5 * SM_PS, SM_PS));
	EXPECT_EQ(1, sm_pages(fd)) TH_LOG("the unit's last page went: the folio is freed");
	EXPECT_EQ(before + 1, counter_pages());
	close(fd);
	EXPECT_EQ(0, sm_settled_gauge("pages"));
}

TEST_HARNESS_MAIN
