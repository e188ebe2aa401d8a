// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem seal tests: every rule of SPEC section 4, with memfd's errnos. Modelled on
 * tools/testing/selftests/memfd/memfd_test.c (SEAL-WRITE, SEAL-FUTURE-WRITE,
 * SEAL-SHRINK/GROW/RESIZE, SHARE-DUP/FORK/MMAP, write-map-read, EBUSY with a writable
 * mapping, private mappings unaffected).
 */
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "sealmem_lib.h"

#define S_SEAL SEALMEM_SEAL_SEAL
#define S_SHRINK SEALMEM_SEAL_SHRINK
#define S_GROW SEALMEM_SEAL_GROW
#define S_WRITE SEALMEM_SEAL_WRITE
#define S_FWRITE SEALMEM_SEAL_FUTURE_WRITE
#define S_EXEC SEALMEM_SEAL_EXEC

FIXTURE(s) {
	int fd;
};

FIXTURE_SETUP(s)
{
	self->fd = sm_new();
	ASSERT_GE(self->fd, 0);
	ASSERT_EQ(0, sm_set_size(self->fd, 4 * SM_PS));
	ASSERT_EQ(4, pwrite(self->fd, "seal", 4, 0));
}

FIXTURE_TEARDOWN(s)
{
	close(self->fd);
}


TEST_F(s, add_and_get_seals)
{
	EXPECT_EQ(0, sm_get_seals(self->fd));
	ASSERT_EQ(0, sm_add_seals(self->fd, 0));
	ASSERT_EQ(0, sm_add_seals(self->fd, S_SHRINK));
	EXPECT_EQ(S_SHRINK, sm_get_seals(self->fd));
	ASSERT_EQ(0, sm_add_seals(self->fd, S_GROW | S_SHRINK));
	EXPECT_EQ(S_SHRINK | S_GROW, sm_get_seals(self->fd));
	SM_EXPECT_ERRNO(EINVAL, sm_add_seals(self->fd, 0x40));
	SM_EXPECT_ERRNO(EINVAL, sm_add_seals(self->fd, 0x80000000u | S_WRITE));
	EXPECT_EQ(S_SHRINK | S_GROW, sm_get_seals(self->fd)) TH_LOG("a refused add changed seals");
	ASSERT_EQ(0, sm_add_seals(self->fd, S_SEAL));
	SM_EXPECT_ERRNO(EPERM, sm_add_seals(self->fd, S_WRITE));
	SM_EXPECT_ERRNO(EPERM, sm_add_seals(self->fd, 0));
	EXPECT_EQ(S_SHRINK | S_GROW | S_SEAL, sm_get_seals(self->fd));
}

TEST_F(s, read_only_fds_cannot_seal)
{
	int ro = open(SM_DEV, O_RDONLY), view = sm_view(self->fd, 0);

	ASSERT_GE(ro, 0);
	ASSERT_GE(view, 0);
	SM_EXPECT_ERRNO(EPERM, sm_add_seals(ro, S_SHRINK));
	SM_EXPECT_ERRNO(EPERM, sm_add_seals(view, S_SHRINK));
	EXPECT_EQ(0, sm_get_seals(view)) TH_LOG("GET_SEALS works on a read-only fd");
	close(ro);
	close(view);
}

TEST_F(s, seal_shrink)
{
	ASSERT_EQ(0, sm_add_seals(self->fd, S_SHRINK));
	SM_EXPECT_ERRNO(EPERM, sm_set_size(self->fd, SM_PS));
	EXPECT_EQ(4 * SM_PS, sm_get_size(self->fd));
	EXPECT_EQ(0, sm_set_size(self->fd, 8 * SM_PS));
	EXPECT_EQ(0, sm_set_size(self->fd, 8 * SM_PS)) TH_LOG("same size is no shrink");
	EXPECT_EQ(4, pwrite(self->fd, "more", 4, 100));
}

TEST_F(s, seal_grow)
{
	ASSERT_EQ(0, sm_add_seals(self->fd, S_GROW));
	SM_EXPECT_ERRNO(EPERM, sm_set_size(self->fd, 8 * SM_PS));
	SM_EXPECT_ERRNO(EPERM, pwrite(self->fd, "x", 1, 4 * SM_PS));
	/* As memfd: the page within EOF is written, the one that would grow is refused. */
	EXPECT_EQ(1, pwrite(self->fd, "xy", 2, 4 * SM_PS - 1));
	EXPECT_EQ(1, pwrite(self->fd, "x", 1, 4 * SM_PS - 1));
	EXPECT_EQ(4 * SM_PS, sm_get_size(self->fd));
	EXPECT_EQ(0, sm_set_size(self->fd, SM_PS));
}

TEST_F(s, seal_resize)
{
	ASSERT_EQ(0, sm_add_seals(self->fd, S_SHRINK | S_GROW));
	SM_EXPECT_ERRNO(EPERM, sm_set_size(self->fd, SM_PS));
	SM_EXPECT_ERRNO(EPERM, sm_set_size(self->fd, 8 * SM_PS));
	EXPECT_EQ(4 * SM_PS, sm_get_size(self->fd));
}

TEST_F(s, seal_write)
{
	char *p, buf[4];

	ASSERT_EQ(0, sm_add_seals(self->fd, S_WRITE));
	SM_EXPECT_ERRNO(EPERM, write(self->fd, "x", 1));
	SM_EXPECT_ERRNO(EPERM, pwrite(self->fd, "x", 1, 0));
	SM_EXPECT_ERRNO(EPERM, sm_punch(self->fd, 0, SM_PS));
	SM_EXPECT_ERRNO(EPERM, (long)mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0));
	/* write-map-read: a shared read-only mapping shows the data but can never write. */
	p = mmap(NULL, SM_PS, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, memcmp(p, "seal", 4));
	SM_EXPECT_ERRNO(EACCES, mprotect(p, SM_PS, PROT_READ | PROT_WRITE));
	munmap(p, SM_PS);
	/* Private mappings stay allowed and never reach the file. */
	p = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 'S';
	ASSERT_EQ(4, pread(self->fd, buf, 4, 0));
	EXPECT_EQ(0, memcmp(buf, "seal", 4));
	munmap(p, SM_PS);
	/* WRITE alone does not fix the size. */
	EXPECT_EQ(0, sm_set_size(self->fd, 8 * SM_PS));
	EXPECT_EQ(0, sm_set_size(self->fd, SM_PS));
}

TEST_F(s, seal_write_busy_while_shared_writable_mapping_exists)
{
	char *p = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);

	ASSERT_NE(MAP_FAILED, p);
	SM_EXPECT_ERRNO(EBUSY, sm_add_seals(self->fd, S_WRITE));
	EXPECT_EQ(0, sm_get_seals(self->fd));
	p[0] = 'S';
	munmap(p, SM_PS);
	/* A PROT_READ shared mapping of a writable fd could be mprotect()ed writable. */
	p = mmap(NULL, SM_PS, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	SM_EXPECT_ERRNO(EBUSY, sm_add_seals(self->fd, S_WRITE | S_SHRINK));
	EXPECT_EQ(0, sm_get_seals(self->fd)) TH_LOG("a refused add must add nothing");
	munmap(p, SM_PS);
	/* Private mappings do not block the seal. */
	p = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, sm_add_seals(self->fd, S_WRITE));
	munmap(p, SM_PS);
}

TEST_F(s, seal_write_busy_from_mapping_in_child)
{
	int status, up[2], down[2];
	char c;
	pid_t pid;

	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		char *p = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);

		if (p == MAP_FAILED || write(up[1], "m", 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	ASSERT_EQ(1, read(up[0], &c, 1));
	SM_EXPECT_ERRNO(EBUSY, sm_add_seals(self->fd, S_WRITE));
	ASSERT_EQ(1, write(down[1], "x", 1));
	waitpid(pid, &status, 0);
	EXPECT_EQ(0, sm_add_seals(self->fd, S_WRITE)) TH_LOG("the child's mapping is gone");
}

TEST_F(s, seal_future_write)
{
	char *w = mmap(NULL, 2 * SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0), *p, buf[4];

	ASSERT_NE(MAP_FAILED, w);
	/* Page 0 is resident (the fixture wrote it); page 1 is a hole. */
	errno = 0;
	EXPECT_EQ(-1, lseek(self->fd, SM_PS, SEEK_DATA));
	EXPECT_EQ(ENXIO, errno);
	ASSERT_EQ(0, sm_add_seals(self->fd, S_FWRITE)) TH_LOG("no EBUSY for FUTURE_WRITE");
	/* The existing writable mapping keeps working, on a resident page and on a hole it
	 * faults in. */
	memcpy(w, "FUTR", 4);
	ASSERT_EQ(4, pread(self->fd, buf, 4, 0));
	EXPECT_EQ(0, memcmp(buf, "FUTR", 4));
	memcpy(w + SM_PS, "HOLE", 4);
	ASSERT_EQ(4, pread(self->fd, buf, 4, SM_PS));
	EXPECT_EQ(0, memcmp(buf, "HOLE", 4));
	EXPECT_EQ(SM_PS, lseek(self->fd, SM_PS, SEEK_DATA)) TH_LOG("the hole was faulted in");
	SM_EXPECT_ERRNO(EPERM, write(self->fd, "x", 1));
	SM_EXPECT_ERRNO(EPERM, pwrite(self->fd, "x", 1, 0));
	SM_EXPECT_ERRNO(EPERM, sm_punch(self->fd, 0, SM_PS));
	SM_EXPECT_ERRNO(EPERM, (long)mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0));
	p = mmap(NULL, SM_PS, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, memcmp(p, "FUTR", 4));
	SM_EXPECT_ERRNO(EACCES, mprotect(p, SM_PS, PROT_READ | PROT_WRITE));
	munmap(p, SM_PS);
	p = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 'p';
	munmap(p, SM_PS);
	munmap(w, 2 * SM_PS);
	/* FUTURE_WRITE then WRITE: no writable mapping is left, so WRITE succeeds. */
	EXPECT_EQ(0, sm_add_seals(self->fd, S_WRITE));
}

TEST_F(s, seal_exec)
{
	char *p = mmap(NULL, SM_PS, PROT_READ | PROT_EXEC, MAP_PRIVATE, self->fd, 0);

	ASSERT_NE(MAP_FAILED, p) TH_LOG("PROT_EXEC works before the seal");
	munmap(p, SM_PS);
	ASSERT_EQ(0, sm_add_seals(self->fd, S_EXEC));
	EXPECT_EQ(S_EXEC, sm_get_seals(self->fd)) TH_LOG("EXEC implies no other seal");
	SM_EXPECT_ERRNO(EPERM, (long)mmap(NULL, SM_PS, PROT_READ | PROT_EXEC, MAP_PRIVATE, self->fd, 0));
	SM_EXPECT_ERRNO(EPERM, (long)mmap(NULL, SM_PS, PROT_READ | PROT_EXEC, MAP_SHARED, self->fd, 0));
	p = mmap(NULL, SM_PS, PROT_READ, MAP_PRIVATE, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	SM_EXPECT_ERRNO(EACCES, mprotect(p, SM_PS, PROT_READ | PROT_EXEC));
	munmap(p, SM_PS);
	p = mmap(NULL, SM_PS, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	SM_EXPECT_ERRNO(EACCES, mprotect(p, SM_PS, PROT_READ | PROT_EXEC));
	munmap(p, SM_PS);
	EXPECT_EQ(1, pwrite(self->fd, "w", 1, 0)) TH_LOG("EXEC does not stop writes");
}

TEST_F(s, seals_shared_by_dup_fork_and_mapping)
{
	int dupfd = dup(self->fd), status;
	char *p;
	pid_t pid;

	ASSERT_GE(dupfd, 0);
	ASSERT_EQ(0, sm_add_seals(dupfd, S_SHRINK));
	EXPECT_EQ(S_SHRINK, sm_get_seals(self->fd));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(sm_add_seals(self->fd, S_GROW) == 0 ? 0 : 1);
	waitpid(pid, &status, 0);
	EXPECT_EQ(SM_EXITED(0), sm_ended(status));
	EXPECT_EQ(S_SHRINK | S_GROW, sm_get_seals(dupfd));
	/* After mapping and closing every fd, the mapping still sees the sealed file. */
	p = mmap(NULL, SM_PS, PROT_READ, MAP_PRIVATE, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	close(dupfd);
	EXPECT_EQ(0, memcmp(p, "seal", 4));
	munmap(p, SM_PS);
}

TEST_F(s, sealed_file_is_immutable_through_every_path)
{
	char *p, buf[4];
	int view;

	ASSERT_EQ(0, sm_add_seals(self->fd, S_WRITE | S_SHRINK | S_GROW | S_SEAL));
	view = sm_view(self->fd, 0);
	ASSERT_GE(view, 0);
	SM_EXPECT_ERRNO(EPERM, pwrite(self->fd, "x", 1, 0));
	SM_EXPECT_ERRNO(EPERM, sm_set_size(self->fd, 0));
	SM_EXPECT_ERRNO(EPERM, sm_set_size(self->fd, 8 * SM_PS));
	SM_EXPECT_ERRNO(EPERM, sm_punch(self->fd, 0, SM_PS));
	SM_EXPECT_ERRNO(EBADF, pwrite(view, "x", 1, 0));
	p = mmap(NULL, SM_PS, PROT_READ, MAP_SHARED, view, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, memcmp(p, "seal", 4));
	ASSERT_EQ(4, pread(view, buf, 4, 0));
	EXPECT_EQ(0, memcmp(buf, "seal", 4));
	munmap(p, SM_PS);
	close(view);
}

TEST_HARNESS_MAIN
