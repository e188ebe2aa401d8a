// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem file tests: size, read/write, seek, punch hole, sendfile/splice, mmap coherence,
 * copy-on-write, SIGBUS, per-file identity, VIEW fds, names and bad input (SPEC sections
 * 1-3 and 6). Seals are in sealmem_seal_test.c.
 */
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "sealmem_lib.h"

FIXTURE(f) {
	int fd;
};

FIXTURE_SETUP(f)
{
	self->fd = sm_new();
	ASSERT_GE(self->fd, 0);
}

FIXTURE_TEARDOWN(f)
{
	close(self->fd);
}

/* Writes a recognisable pattern over [0, len). */
static int fill(int fd, size_t len, unsigned int seed)
{
	char *buf = malloc(len);
	ssize_t n;

	if (!buf)
		return -1;
	sm_pattern(buf, len, seed, 0);
	n = pwrite(fd, buf, len, 0);
	free(buf);
	return n == (ssize_t)len ? 0 : -1;
}

/* Checks [off, off + len) holds the pattern, or zeros if seed < 0. */
static int check(int fd, size_t off, size_t len, int seed)
{
	char *buf = malloc(len), *want = malloc(len);
	int ok;

	if (!buf || !want)
		return 0;
	if (seed < 0)
		memset(want, 0, len);
	else
		sm_pattern(want, len, seed, off);
	ok = pread(fd, buf, len, off) == (ssize_t)len && !memcmp(buf, want, len);
	free(buf);
	free(want);
	return ok;
}

TEST_F(f, new_file_is_empty)
{
	char c;

	EXPECT_EQ(0, sm_get_size(self->fd));
	EXPECT_EQ(0, sm_get_seals(self->fd));
	EXPECT_EQ(0, read(self->fd, &c, 1));
	EXPECT_EQ(0, sm_pages(self->fd));
}

TEST_F(f, set_size_grow_shrink_regrow)
{
	ASSERT_EQ(0, sm_set_size(self->fd, 3 * SM_PS));
	EXPECT_EQ(3 * SM_PS, sm_get_size(self->fd));
	EXPECT_TRUE(check(self->fd, 0, 3 * SM_PS, -1));
	EXPECT_EQ(0, sm_pages(self->fd)) TH_LOG("growing must not allocate");
	ASSERT_EQ(0, fill(self->fd, 3 * SM_PS, 1));
	EXPECT_EQ(3, sm_pages(self->fd));
	/* Shrink into the middle of page 1: page 2 goes, page 1's tail is zeroed. */
	ASSERT_EQ(0, sm_set_size(self->fd, SM_PS + 100));
	EXPECT_EQ(SM_PS + 100, sm_get_size(self->fd));
	EXPECT_EQ(2, sm_pages(self->fd));
	EXPECT_TRUE(check(self->fd, 0, SM_PS + 100, 1));
	ASSERT_EQ(0, sm_set_size(self->fd, 3 * SM_PS));
	EXPECT_TRUE(check(self->fd, 0, SM_PS + 100, 1));
	EXPECT_TRUE(check(self->fd, SM_PS + 100, 2 * SM_PS - 100, -1)) TH_LOG("regrown bytes must be zero");
	ASSERT_EQ(0, sm_set_size(self->fd, 0));
	EXPECT_EQ(0, sm_pages(self->fd));
}

TEST_F(f, set_size_errors)
{
	int ro;

	errno = 0;
	EXPECT_EQ(-1, sm_set_size(self->fd, 1ULL << 63));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, sm_set_size(self->fd, (1ULL << 40) + 1));
	EXPECT_EQ(EFBIG, errno) TH_LOG("above the default max_file_size (1 TiB)");
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SEALMEM_IOC_SET_SIZE, NULL));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SEALMEM_IOC_GET_SIZE, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	ro = open(SM_DEV, O_RDONLY);
	ASSERT_GE(ro, 0);
	errno = 0;
	EXPECT_EQ(-1, sm_set_size(ro, SM_PS));
	EXPECT_EQ(EBADF, errno);
	close(ro);
	/* A sparse 1 TiB file costs nothing. */
	EXPECT_EQ(0, sm_set_size(self->fd, 1ULL << 40));
	EXPECT_EQ(0, sm_pages(self->fd));
}

TEST_F(f, write_past_eof_grows_and_leaves_a_hole)
{
	char buf[3];

	ASSERT_EQ(3, pwrite(self->fd, "abc", 3, 10000));
	EXPECT_EQ(10003, sm_get_size(self->fd));
	EXPECT_TRUE(check(self->fd, 0, 10000, -1));
	ASSERT_EQ(3, pread(self->fd, buf, 3, 10000));
	EXPECT_EQ(0, memcmp(buf, "abc", 3));
	EXPECT_EQ(1, sm_pages(self->fd)) TH_LOG("only the written page is allocated");
	/* Plain write() uses and advances the file position. */
	ASSERT_EQ(0, lseek(self->fd, 0, SEEK_SET));
	ASSERT_EQ(2, write(self->fd, "xy", 2));
	EXPECT_EQ(2, lseek(self->fd, 0, SEEK_CUR));
}

TEST_F(f, append_writes_at_eof)
{
	int fd = open(SM_DEV, O_RDWR | O_APPEND);
	char buf[8];

	ASSERT_GE(fd, 0);
	ASSERT_EQ(4, write(fd, "1234", 4));
	ASSERT_EQ(0, lseek(fd, 0, SEEK_SET));
	ASSERT_EQ(2, write(fd, "56", 2));
	EXPECT_EQ(6, sm_get_size(fd));
	ASSERT_EQ(6, pread(fd, buf, 8, 0));
	EXPECT_EQ(0, memcmp(buf, "123456", 6));
	close(fd);
}

TEST_F(f, readv_writev_cross_pages)
{
	char a[5000], b[3000], c[100], ra[5000], rb[3000], rc[100];
	struct iovec w[3] = { { a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) } };
	struct iovec r[3] = { { ra, sizeof(ra) }, { rb, sizeof(rb) }, { rc, sizeof(rc) } };

	sm_pattern(a, sizeof(a), 2, 0);
	sm_pattern(b, sizeof(b), 3, 0);
	sm_pattern(c, sizeof(c), 4, 0);
	ASSERT_EQ(8100, pwritev(self->fd, w, 3, SM_PS - 7));
	ASSERT_EQ(8100, preadv(self->fd, r, 3, SM_PS - 7));
	EXPECT_EQ(0, memcmp(a, ra, sizeof(a)));
	EXPECT_EQ(0, memcmp(b, rb, sizeof(b)));
	EXPECT_EQ(0, memcmp(c, rc, sizeof(c)));
	/* Reading across EOF returns the bytes up to EOF. */
	EXPECT_EQ(7, pread(self->fd, ra, 100, SM_PS - 7 + 8100 - 7));
}

TEST_F(f, lseek_set_cur_end_data_hole)
{
	/* Pages 0, 1 and 5 resident; 8 pages in all. */
	ASSERT_EQ(0, sm_set_size(self->fd, 8 * SM_PS));
	ASSERT_EQ(2 * (ssize_t)SM_PS, pwrite(self->fd, memset(malloc(2 * SM_PS), 1, 2 * SM_PS), 2 * SM_PS, 0));
	ASSERT_EQ(1, pwrite(self->fd, "x", 1, 5 * SM_PS + 10));

	EXPECT_EQ(100, lseek(self->fd, 100, SEEK_SET));
	EXPECT_EQ(150, lseek(self->fd, 50, SEEK_CUR));
	EXPECT_EQ(8 * SM_PS - 1, lseek(self->fd, -1, SEEK_END));
	EXPECT_EQ(-1, lseek(self->fd, -1, SEEK_SET));
	EXPECT_EQ(EINVAL, errno);

	EXPECT_EQ(0, lseek(self->fd, 0, SEEK_DATA));
	EXPECT_EQ(100, lseek(self->fd, 100, SEEK_DATA));
	EXPECT_EQ(2 * SM_PS, lseek(self->fd, 0, SEEK_HOLE));
	EXPECT_EQ(5 * SM_PS, lseek(self->fd, 2 * SM_PS, SEEK_DATA));
	EXPECT_EQ(3 * SM_PS + 5, lseek(self->fd, 3 * SM_PS + 5, SEEK_HOLE));
	EXPECT_EQ(6 * SM_PS, lseek(self->fd, 5 * SM_PS, SEEK_HOLE));
	errno = 0;
	EXPECT_EQ(-1, lseek(self->fd, 6 * SM_PS, SEEK_DATA));
	EXPECT_EQ(ENXIO, errno);
	errno = 0;
	EXPECT_EQ(-1, lseek(self->fd, 8 * SM_PS, SEEK_HOLE));
	EXPECT_EQ(ENXIO, errno);
	errno = 0;
	EXPECT_EQ(-1, lseek(self->fd, -5, SEEK_DATA));
	EXPECT_EQ(ENXIO, errno);
	/* A fully resident file: the only hole is at EOF. */
	ASSERT_EQ(0, sm_set_size(self->fd, 2 * SM_PS - 3));
	EXPECT_EQ(2 * SM_PS - 3, lseek(self->fd, 0, SEEK_HOLE));
}

TEST_F(f, punch_hole_frees_pages)
{
	ASSERT_EQ(0, fill(self->fd, 4 * SM_PS, 5));
	EXPECT_EQ(4, sm_pages(self->fd));
	ASSERT_EQ(0, sm_punch(self->fd, SM_PS, 2 * SM_PS));
	EXPECT_EQ(2, sm_pages(self->fd));
	EXPECT_EQ(4 * SM_PS, sm_get_size(self->fd)) TH_LOG("punching keeps the size");
	EXPECT_TRUE(check(self->fd, 0, SM_PS, 5));
	EXPECT_TRUE(check(self->fd, SM_PS, 2 * SM_PS, -1));
	EXPECT_TRUE(check(self->fd, 3 * SM_PS, SM_PS, 5));
	EXPECT_EQ(SM_PS, lseek(self->fd, 0, SEEK_HOLE));
	/* The part past EOF is ignored; a range wholly past EOF is a no-op. */
	EXPECT_EQ(0, sm_punch(self->fd, 3 * SM_PS, 100 * SM_PS));
	EXPECT_EQ(1, sm_pages(self->fd));
	EXPECT_EQ(0, sm_punch(self->fd, 1000 * SM_PS, SM_PS));
	EXPECT_EQ(4 * SM_PS, sm_get_size(self->fd));
}

TEST_F(f, punch_hole_bad_input)
{
	int ro;

	errno = 0;
	EXPECT_EQ(-1, sm_punch(self->fd, 1, SM_PS));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, sm_punch(self->fd, 0, SM_PS + 1));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, sm_punch(self->fd, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, sm_punch(self->fd, ~0ULL & ~(SM_PS - 1), 2 * SM_PS));
	EXPECT_EQ(EINVAL, errno) TH_LOG("offset + len overflows");
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SEALMEM_IOC_PUNCH_HOLE, (void *)1));
	EXPECT_EQ(EFAULT, errno);
	ro = sm_view(self->fd, 0);
	ASSERT_GE(ro, 0);
	errno = 0;
	EXPECT_EQ(-1, sm_punch(ro, 0, SM_PS));
	EXPECT_EQ(EBADF, errno);
	close(ro);
}

/* A child that maps the file, reports its first byte, waits, and reports it again. */
static void child_probe(int fd, int to_parent, int from_parent, size_t len, size_t at)
{
	char *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0), c, go;
	int sig;

	if (p == MAP_FAILED)
		_exit(90);
	c = p[at];
	if (write(to_parent, &c, 1) != 1 || read(from_parent, &go, 1) != 1)
		_exit(91);
	sig = sm_touch(p + at, 0, &c);
	if (sig)
		c = (char)(0x80 | sig);
	if (write(to_parent, &c, 1) != 1)
		_exit(92);
	_exit(0);
}

static pid_t spawn_probe(int fd, int *rd, int *wr, size_t len, size_t at)
{
	int up[2], down[2];
	pid_t pid;

	if (pipe(up) || pipe(down))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		child_probe(fd, up[1], down[0], len, at);
	}
	close(up[1]);
	close(down[0]);
	*rd = up[0];
	*wr = down[1];
	return pid;
}

TEST_F(f, punch_hole_zaps_other_process_mapping)
{
	int rd, wr, status;
	char c;
	pid_t pid;

	ASSERT_EQ(0, sm_set_size(self->fd, 2 * SM_PS));
	ASSERT_EQ(1, pwrite(self->fd, "A", 1, SM_PS));
	pid = spawn_probe(self->fd, &rd, &wr, 2 * SM_PS, SM_PS);
	ASSERT_GT(pid, 0);
	ASSERT_EQ(1, read(rd, &c, 1));
	EXPECT_EQ('A', c);
	ASSERT_EQ(0, sm_punch(self->fd, SM_PS, SM_PS));
	ASSERT_EQ(1, write(wr, "g", 1));
	ASSERT_EQ(1, read(rd, &c, 1));
	EXPECT_EQ(0, c) TH_LOG("the child still saw 0x%x", c);
	waitpid(pid, &status, 0);
	EXPECT_EQ(SM_EXITED(0), sm_ended(status));
}

TEST_F(f, sigbus_after_shrink_in_other_process)
{
	int rd, wr, status;
	char c;
	pid_t pid;

	ASSERT_EQ(0, sm_set_size(self->fd, 2 * SM_PS));
	ASSERT_EQ(1, pwrite(self->fd, "B", 1, SM_PS + 1));
	pid = spawn_probe(self->fd, &rd, &wr, 2 * SM_PS, SM_PS + 1);
	ASSERT_GT(pid, 0);
	ASSERT_EQ(1, read(rd, &c, 1));
	EXPECT_EQ('B', c);
	ASSERT_EQ(0, sm_set_size(self->fd, SM_PS));
	ASSERT_EQ(1, write(wr, "g", 1));
	ASSERT_EQ(1, read(rd, &c, 1));
	EXPECT_EQ((char)(0x80 | SIGBUS), c) TH_LOG("expected SIGBUS, child read 0x%x", c);
	waitpid(pid, &status, 0);
	EXPECT_EQ(SM_EXITED(0), sm_ended(status));
}

TEST_F(f, sigbus_past_eof)
{
	char *p;

	ASSERT_EQ(0, sm_set_size(self->fd, SM_PS));
	p = mmap(NULL, 3 * SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, sm_touch(p, 1, NULL));
	EXPECT_EQ(0, sm_touch(p + SM_PS - 1, 0, NULL));
	EXPECT_EQ(SIGBUS, sm_touch(p + SM_PS, 0, NULL));
	EXPECT_EQ(SIGBUS, sm_touch(p + 2 * SM_PS, 1, NULL));
	munmap(p, 3 * SM_PS);
	/* Private mappings too. */
	p = mmap(NULL, 2 * SM_PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(SIGBUS, sm_touch(p + SM_PS, 1, NULL));
	munmap(p, 2 * SM_PS);
}

TEST_F(f, mmap_shared_coherent_with_read_write)
{
	char *p, buf[16];

	ASSERT_EQ(0, sm_set_size(self->fd, 2 * SM_PS));
	p = mmap(NULL, 2 * SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, p[100]);
	ASSERT_EQ(5, pwrite(self->fd, "hello", 5, 100));
	EXPECT_EQ(0, memcmp(p + 100, "hello", 5));
	memcpy(p + SM_PS + 7, "world", 5);
	ASSERT_EQ(5, pread(self->fd, buf, 5, SM_PS + 7));
	EXPECT_EQ(0, memcmp(buf, "world", 5));
	EXPECT_EQ(2, sm_pages(self->fd));
	munmap(p, 2 * SM_PS);
}

TEST_F(f, mmap_shared_across_processes)
{
	char *p;
	int status;
	pid_t pid;

	ASSERT_EQ(0, sm_set_size(self->fd, SM_PS));
	p = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		/* A separate mapping in the child. */
		char *q = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);

		if (q == MAP_FAILED)
			_exit(1);
		strcpy(q + 10, "from child");
		_exit(0);
	}
	waitpid(pid, &status, 0);
	ASSERT_EQ(SM_EXITED(0), sm_ended(status));
	EXPECT_STREQ("from child", p + 10);
	munmap(p, SM_PS);
}

TEST_F(f, mmap_private_is_copy_on_write)
{
	char *p, *s, buf[4];

	ASSERT_EQ(0, sm_set_size(self->fd, 2 * SM_PS));
	ASSERT_EQ(3, pwrite(self->fd, "abc", 3, 0));
	p = mmap(NULL, 2 * SM_PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, self->fd, 0);
	s = mmap(NULL, 2 * SM_PS, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(MAP_FAILED, s);
	EXPECT_EQ('a', p[0]);
	p[0] = 'X';
	ASSERT_EQ(3, pread(self->fd, buf, 3, 0));
	EXPECT_EQ(0, memcmp(buf, "abc", 3)) TH_LOG("a private write reached the file");
	EXPECT_EQ('a', s[0]);
	/* An untouched private page still follows the file; a copied one does not. */
	ASSERT_EQ(1, pwrite(self->fd, "Z", 1, SM_PS));
	EXPECT_EQ('Z', p[SM_PS]);
	ASSERT_EQ(1, pwrite(self->fd, "Y", 1, 1));
	EXPECT_EQ('b', p[1]);
	/* Punching an untouched private page shows the hole; writing it copies a zero page. */
	ASSERT_EQ(0, sm_punch(self->fd, SM_PS, SM_PS));
	EXPECT_EQ(0, p[SM_PS]);
	p[SM_PS] = 'h';
	ASSERT_EQ(1, pread(self->fd, buf, 1, SM_PS));
	EXPECT_EQ(0, buf[0]);
	EXPECT_EQ('h', p[SM_PS]);
	/* ...and the copied page 0 survives a punch (like fallocate(PUNCH_HOLE)). */
	ASSERT_EQ(0, sm_punch(self->fd, 0, SM_PS));
	EXPECT_EQ('X', p[0]);
	EXPECT_EQ(0, s[0]);
	munmap(p, 2 * SM_PS);
	munmap(s, 2 * SM_PS);
}

TEST_F(f, cow_across_fork)
{
	char *p, c;
	int status;
	pid_t pid;

	ASSERT_EQ(0, sm_set_size(self->fd, SM_PS));
	p = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 'A';
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		p[0] = 'B';
		_exit(p[0] == 'B' ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	EXPECT_EQ(SM_EXITED(0), sm_ended(status));
	EXPECT_EQ('A', p[0]);
	ASSERT_EQ(1, pread(self->fd, &c, 1, 0));
	EXPECT_EQ(0, c);
	munmap(p, SM_PS);
}

TEST_F(f, two_files_never_disturb_each_other)
{
	int other = sm_new();
	char *a, *b;

	ASSERT_GE(other, 0);
	ASSERT_EQ(0, sm_set_size(self->fd, SM_PS));
	ASSERT_EQ(0, sm_set_size(other, SM_PS));
	a = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	b = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, other, 0);
	ASSERT_NE(MAP_FAILED, a);
	ASSERT_NE(MAP_FAILED, b);
	a[0] = 'a';
	b[0] = 'b';
	ASSERT_EQ(0, sm_punch(self->fd, 0, SM_PS));
	ASSERT_EQ(0, sm_set_size(self->fd, 0));
	EXPECT_EQ('b', b[0]);
	EXPECT_EQ(SIGBUS, sm_touch(a, 0, NULL));
	EXPECT_EQ(1, sm_pages(other));
	munmap(a, SM_PS);
	munmap(b, SM_PS);
	close(other);
}

TEST_F(f, madvise_dontneed_refaults_and_remove_is_enodev)
{
	char *p;

	ASSERT_EQ(5, pwrite(self->fd, "kept!", 5, 0));
	p = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[5] = '?';
	/* DONTNEED zaps the PTEs only; the next touch faults the file's page back in. */
	ASSERT_EQ(0, madvise(p, SM_PS, MADV_DONTNEED));
	EXPECT_EQ(0, memcmp(p, "kept!?", 6));
	/* The VFS allows fallocate (hence MADV_REMOVE) only on regular files and block
	 * devices: use SEALMEM_IOC_PUNCH_HOLE. */
	errno = 0;
	EXPECT_EQ(-1, madvise(p, SM_PS, MADV_REMOVE));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_EQ(1, sm_pages(self->fd));
	munmap(p, SM_PS);
}

TEST_F(f, fault_around_maps_resident_neighbours)
{
	long long before, after;
	volatile char *p;
	size_t i;

	ASSERT_EQ(0, fill(self->fd, 64 * SM_PS, 6));
	p = mmap(NULL, 64 * SM_PS, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	before = sm_counter("faults");
	for (i = 0; i < 64; i++)
		(void)p[i * SM_PS];
	after = sm_counter("faults");
	EXPECT_LE(after - before, 8) TH_LOG("%lld faults for 64 resident pages", after - before);
	munmap((void *)p, 64 * SM_PS);
}

/* The byte fill() writes at `off`. */
static char pat(unsigned int seed, size_t off)
{
	char c;

	sm_pattern(&c, 1, seed, off);
	return c;
}

/* A shared read-only mapping of the file's first `len` bytes at a 64 KiB-aligned address. */
static volatile char *map_aligned(int fd, size_t len)
{
	char *area = mmap(NULL, len + 16 * SM_PS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t at;

	if (area == MAP_FAILED)
		return NULL;
	at = ((uintptr_t)area + 16 * SM_PS - 1) & ~(uintptr_t)(16 * SM_PS - 1);
	if (mmap((void *)at, len, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
		return NULL;
	return (volatile char *)at;
}

TEST_F(f, fault_around_maps_the_aligned_block_skipping_holes_and_mapped_pages)
{
	long long before;
	volatile char *p;
	int i;

	ASSERT_EQ(0, fill(self->fd, 64 * SM_PS, 6));
	p = map_aligned(self->fd, 64 * SM_PS);
	ASSERT_NE(NULL, p);
	/* Touched backwards, each fault maps its whole aligned 16-page block: 4 faults. */
	before = sm_counter("faults");
	for (i = 63; i >= 0; i--)
		EXPECT_EQ(pat(6, (size_t)i * SM_PS), p[i * SM_PS]);
	EXPECT_EQ(4, sm_counter("faults") - before);

	/* Pages still mapped in the block are skipped, the others mapped: one fault for 2 and 9. */
	ASSERT_EQ(0, madvise((void *)(p + 2 * SM_PS), SM_PS, MADV_DONTNEED));
	ASSERT_EQ(0, madvise((void *)(p + 9 * SM_PS), SM_PS, MADV_DONTNEED));
	before = sm_counter("faults");
	EXPECT_EQ(pat(6, 9 * SM_PS), p[9 * SM_PS]);
	EXPECT_EQ(pat(6, 2 * SM_PS), p[2 * SM_PS]);
	EXPECT_EQ(1, sm_counter("faults") - before);

	/* A hole in the block is left alone (a read fault on it allocates a zero page later). */
	ASSERT_EQ(0, madvise((void *)(p + 16 * SM_PS), 16 * SM_PS, MADV_DONTNEED));
	ASSERT_EQ(0, sm_punch(self->fd, 21 * SM_PS, SM_PS));
	before = sm_counter("faults");
	EXPECT_EQ(pat(6, 30 * SM_PS), p[30 * SM_PS]);
	for (i = 16; i < 32; i++)
		if (i != 21)
			EXPECT_EQ(pat(6, (size_t)i * SM_PS), p[i * SM_PS]);
	EXPECT_EQ(1, sm_counter("faults") - before);
	EXPECT_EQ(0, p[21 * SM_PS]);
	EXPECT_EQ(2, sm_counter("faults") - before);
	munmap((void *)p, 64 * SM_PS);
}

TEST_F(f, sendfile_and_splice_are_byte_exact)
{
	enum { LEN = 3 * 4096 + 123 };
	static char want[LEN], got[LEN];
	int pfd[2], sv[2];
	off_t off = 0;
	loff_t loff = 50;
	ssize_t n, total;

	sm_pattern(want, LEN, 7, 0);
	ASSERT_EQ(LEN, pwrite(self->fd, want, LEN, 0));
	/* sendfile into a socket */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(LEN, sendfile(sv[0], self->fd, &off, LEN));
	EXPECT_EQ(LEN, off);
	for (total = 0; total < LEN; total += n) {
		n = read(sv[1], got + total, LEN - total);
		ASSERT_GT(n, 0);
	}
	EXPECT_EQ(0, memcmp(want, got, LEN));
	close(sv[0]);
	close(sv[1]);
	/* splice into a pipe, from an offset */
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(8000, splice(self->fd, &loff, pfd[1], NULL, 8000, 0));
	EXPECT_EQ(8050, loff);
	ASSERT_EQ(8000, read(pfd[0], got, 8000));
	EXPECT_EQ(0, memcmp(want + 50, got, 8000));
	/* sendfile into a pipe, through the file position */
	ASSERT_EQ(LEN - 5, lseek(self->fd, LEN - 5, SEEK_SET));
	ASSERT_EQ(5, sendfile(pfd[1], self->fd, NULL, 100));
	ASSERT_EQ(5, read(pfd[0], got, 5));
	EXPECT_EQ(0, memcmp(want + LEN - 5, got, 5));
	close(pfd[0]);
	close(pfd[1]);
}

/*
 * A VIEW fd is an anon-inode file: the kernel's anon-inode filesystem is noexec, so the VFS
 * refuses PROT_EXEC mappings of it (EPERM) before sealmem sees them, shared or private; the
 * file's own fd maps executable (docs/api.md, "Names, VIEW and fdinfo").
 */
TEST_F(f, view_fd_cannot_be_mapped_executable)
{
	int view = sm_view(self->fd, SEALMEM_FD_CLOEXEC);
	char *p;

	ASSERT_GE(view, 0);
	ASSERT_EQ(0, sm_set_size(self->fd, SM_PS));
	SM_EXPECT_ERRNO(EPERM, (long)mmap(NULL, SM_PS, PROT_READ | PROT_EXEC, MAP_PRIVATE, view, 0));
	SM_EXPECT_ERRNO(EPERM, (long)mmap(NULL, SM_PS, PROT_READ | PROT_EXEC, MAP_SHARED, view, 0));
	p = mmap(NULL, SM_PS, PROT_READ, MAP_PRIVATE, view, 0);
	ASSERT_NE(MAP_FAILED, p);
	SM_EXPECT_ERRNO(EACCES, mprotect(p, SM_PS, PROT_READ | PROT_EXEC));
	munmap(p, SM_PS);
	p = mmap(NULL, SM_PS, PROT_READ | PROT_EXEC, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("the file's own fd: %s", strerror(errno));
	munmap(p, SM_PS);
	close(view);
}

TEST_F(f, view_fd_is_read_only_view_of_same_file)
{
	char info[1024], id1[32], id2[32], buf[8], *p;
	int view = sm_view(self->fd, SEALMEM_FD_CLOEXEC);

	ASSERT_GE(view, 0);
	EXPECT_EQ(FD_CLOEXEC, fcntl(view, F_GETFD) & FD_CLOEXEC);
	ASSERT_GT(sm_fdinfo(self->fd, info, sizeof(info)), 0);
	ASSERT_EQ(0, sm_fdinfo_field(info, "sealmem-id", id1, sizeof(id1)));
	ASSERT_GT(sm_fdinfo(view, info, sizeof(info)), 0);
	ASSERT_EQ(0, sm_fdinfo_field(info, "sealmem-id", id2, sizeof(id2)));
	EXPECT_STREQ(id1, id2);
	EXPECT_EQ(O_RDONLY, fcntl(view, F_GETFL) & O_ACCMODE);

	ASSERT_EQ(4, pwrite(self->fd, "data", 4, 0));
	ASSERT_EQ(4, pread(view, buf, 4, 0));
	EXPECT_EQ(0, memcmp(buf, "data", 4));
	ASSERT_EQ(4, read(view, buf, 4));
	EXPECT_EQ(4, sm_get_size(view));

	errno = 0;
	EXPECT_EQ(-1, write(view, "x", 1));
	EXPECT_EQ(EBADF, errno);
	errno = 0;
	EXPECT_EQ(-1, pwrite(view, "x", 1, 0));
	EXPECT_EQ(EBADF, errno);
	errno = 0;
	EXPECT_EQ(-1, sm_set_size(view, SM_PS));
	EXPECT_EQ(EBADF, errno);
	errno = 0;
	EXPECT_EQ(-1, sm_add_seals(view, SEALMEM_SEAL_WRITE));
	EXPECT_EQ(EPERM, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(view, SEALMEM_IOC_SET_NAME, &(struct sealmem_name){ "x" }));
	EXPECT_EQ(EBADF, errno);
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, view, 0));
	EXPECT_EQ(EACCES, errno);

	p = mmap(NULL, SM_PS, PROT_READ, MAP_SHARED, view, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, memcmp(p, "data", 4));
	errno = 0;
	EXPECT_EQ(-1, mprotect(p, SM_PS, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	munmap(p, SM_PS);
	p = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, view, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 'D';
	ASSERT_EQ(1, pread(view, buf, 1, 0));
	EXPECT_EQ('d', buf[0]);
	munmap(p, SM_PS);

	errno = 0;
	EXPECT_EQ(-1, sm_view(self->fd, 0x100));
	EXPECT_EQ(EINVAL, errno);
	close(view);
}

TEST(view_keeps_the_file_alive)
{
	long long files0 = sm_counter("files");
	int fd = sm_new(), view, view2;
	char buf[4];

	ASSERT_GE(fd, 0);
	ASSERT_EQ(4, pwrite(fd, "keep", 4, 0));
	view = sm_view(fd, 0);
	ASSERT_GE(view, 0);
	EXPECT_EQ(0, fcntl(view, F_GETFD) & FD_CLOEXEC);
	close(fd);
	EXPECT_EQ(files0 + 1, sm_counter("files"));
	ASSERT_EQ(4, pread(view, buf, 4, 0));
	EXPECT_EQ(0, memcmp(buf, "keep", 4));
	/* A view of a view is another read-only fd of the same file. */
	view2 = sm_view(view, 0);
	ASSERT_GE(view2, 0);
	close(view);
	ASSERT_EQ(4, pread(view2, buf, 4, 0));
	close(view2);
	EXPECT_EQ(files0, sm_counter("files"));
}

/*
 * A file (not a handler) sent by SCM_RIGHTS to a process that did not inherit it is the same
 * file: the receiver reads the sender's bytes, its writes (through the fd and a shared
 * mapping) are the sender's bytes, it sees the same sealmem-id; a VIEW sent the same way is
 * read-only there and reads the same bytes.
 */
TEST(file_sent_by_scm_rights_is_the_same_file)
{
	char data[SM_PS], buf[SM_PS], info[2048], id[64], idc[64] = { 0 };
	int sv[2], fd, view, ended;
	ssize_t n;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	/* The child exists before the file: it can only get it through the socket. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		char want[SM_PS], got[SM_PS], *p;
		int rfd, rview;

		alarm(30);
		close(sv[0]);
		rfd = sm_recv_fd(sv[1]);
		rview = sm_recv_fd(sv[1]);
		if (rfd < 0 || rview < 0)
			_exit(10);
		sm_pattern(want, SM_PS, 21, 0);
		if (sm_get_size(rfd) != 2 * SM_PS || pread(rfd, got, SM_PS, 0) != SM_PS || memcmp(got, want, SM_PS))
			_exit(11);
		if (pread(rview, got, SM_PS, 0) != SM_PS || memcmp(got, want, SM_PS))
			_exit(12);
		if (pwrite(rview, "v", 1, 0) != -1 || errno != EBADF)
			_exit(13);
		if (pwrite(rfd, "child", 5, SM_PS) != 5)
			_exit(14);
		p = mmap(NULL, 2 * SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
		if (p == MAP_FAILED || p[7] != want[7])
			_exit(15);
		p[SM_PS + 100] = 'M';
		munmap(p, 2 * SM_PS);
		if (sm_fdinfo(rfd, info, sizeof(info)) <= 0 || sm_fdinfo_field(info, "sealmem-id", id, sizeof(id)))
			_exit(16);
		if (write(sv[1], id, sizeof(id)) != sizeof(id))
			_exit(17);
		_exit(0);
	}
	close(sv[1]);
	fd = sm_new();
	ASSERT_GE(fd, 0);
	sm_pattern(data, SM_PS, 21, 0);
	ASSERT_EQ(SM_PS, pwrite(fd, data, SM_PS, 0));
	ASSERT_EQ(0, sm_set_size(fd, 2 * SM_PS));
	view = sm_view(fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(view, 0);
	ASSERT_EQ(0, sm_send_fd(sv[0], fd));
	ASSERT_EQ(0, sm_send_fd(sv[0], view));
	close(view);
	n = read(sv[0], idc, sizeof(idc));
	/* The child reports or exits (alarm: 30 s at most); its exit code names the failed step. */
	ASSERT_EQ(pid, waitpid(pid, &ended, 0));
	EXPECT_EQ(SM_EXITED(0), sm_ended(ended)) TH_LOG("the receiver ended with %d (10-17: the step that failed)", sm_ended(ended));
	ASSERT_EQ(sizeof(idc), n) TH_LOG("the receiver did not report its sealmem-id");
	ASSERT_GT(sm_fdinfo(fd, info, sizeof(info)), 0);
	ASSERT_EQ(0, sm_fdinfo_field(info, "sealmem-id", id, sizeof(id)));
	EXPECT_STREQ(id, idc);
	ASSERT_EQ(SM_PS, pread(fd, buf, SM_PS, SM_PS));
	EXPECT_EQ(0, memcmp(buf, "child", 5)) TH_LOG("the receiver's write is in the sender's file");
	EXPECT_EQ('M', buf[100]);
	EXPECT_EQ(0, buf[5]);
	ASSERT_EQ(SM_PS, pread(fd, buf, SM_PS, 0));
	EXPECT_EQ(0, memcmp(buf, data, SM_PS));
	close(sv[0]);
	close(fd);
}

TEST_F(f, name_set_get_fdinfo)
{
	struct sealmem_name n = { "model-weights" }, out;
	char info[2048], v[1024];

	ASSERT_EQ(0, ioctl(self->fd, SEALMEM_IOC_SET_NAME, &n));
	ASSERT_EQ(0, ioctl(self->fd, SEALMEM_IOC_GET_NAME, &out));
	EXPECT_STREQ("model-weights", out.name);
	ASSERT_GT(sm_fdinfo(self->fd, info, sizeof(info)), 0);
	ASSERT_EQ(0, sm_fdinfo_field(info, "name", v, sizeof(v)));
	EXPECT_STREQ("model-weights", v);

	/* 249 bytes is the limit, as for memfd_create. */
	memset(n.name, 'n', sizeof(n.name));
	n.name[SEALMEM_NAME_MAX] = '\0';
	EXPECT_EQ(0, ioctl(self->fd, SEALMEM_IOC_SET_NAME, &n));
	ASSERT_EQ(0, ioctl(self->fd, SEALMEM_IOC_GET_NAME, &out));
	EXPECT_EQ(SEALMEM_NAME_MAX, strlen(out.name));
	n.name[SEALMEM_NAME_MAX] = 'n';
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SEALMEM_IOC_SET_NAME, &n));
	EXPECT_EQ(EINVAL, errno);

	/* Control bytes are escaped so fdinfo stays one line per field. */
	strcpy(n.name, "a\nb\\c");
	ASSERT_EQ(0, ioctl(self->fd, SEALMEM_IOC_SET_NAME, &n));
	ASSERT_GT(sm_fdinfo(self->fd, info, sizeof(info)), 0);
	ASSERT_EQ(0, sm_fdinfo_field(info, "name", v, sizeof(v)));
	EXPECT_STREQ("a\\012b\\134c", v);

	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SEALMEM_IOC_SET_NAME, (void *)4));
	EXPECT_EQ(EFAULT, errno);
}

/* Hidden from the compiler's buffer-size checks. */
static void *volatile bad_ptr = (void *)8;

TEST_F(f, bad_user_pointers_are_efault)
{
	ASSERT_EQ(0, sm_set_size(self->fd, SM_PS));
	errno = 0;
	EXPECT_EQ(-1, write(self->fd, bad_ptr, 10));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, read(self->fd, bad_ptr, 10));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SEALMEM_IOC_ADD_SEALS, NULL));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SEALMEM_IOC_GET_SEALS, NULL));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SEALMEM_IOC_GET_NAME, (void *)8));
	EXPECT_EQ(EFAULT, errno);
}

TEST(pages_are_freed_with_the_last_reference)
{
	long long pages0 = sm_counter("pages");
	int fd = sm_new();
	char *p;

	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, fill(fd, 10 * SM_PS, 8));
	p = mmap(NULL, 10 * SM_PS, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(pages0 + 10, sm_counter("pages"));
	close(fd);
	/* The mapping keeps the file (and its pages) alive. */
	EXPECT_EQ(pages0 + 10, sm_counter("pages"));
	EXPECT_EQ(p[5 * SM_PS], (char)(((5 * SM_PS) * 131 + 8 * 7 + 5) & 0xff));
	munmap(p, 10 * SM_PS);
	EXPECT_EQ(pages0, sm_counter("pages"));
}

TEST_HARNESS_MAIN
