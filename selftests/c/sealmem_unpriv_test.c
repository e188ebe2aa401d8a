// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem as an unprivileged user: everything works without privileges, and nothing one
 * user does reaches another user's file or data. Each test forks a child that drops to
 * nobody (65534); root in the parent plays the other user.
 */
#include <grp.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "sealmem_lib.h"

static void drop_privileges(void)
{
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534) || getuid() != 65534)
		_exit(90);
}

/* Runs fn(arg) as nobody in a child; returns its exit status (0 = pass). */
static int as_nobody(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		drop_privileges();
		_exit(fn(arg));
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return sm_ended(status);
}

static int use_everything(void *arg)
{
	char buf[8], *p;
	int fd = sm_new(), hfd, view;
	struct sealmem_copy c;

	(void)arg;
	if (fd < 0 || sm_set_size(fd, 4 * SM_PS) || pwrite(fd, "nobody", 6, 0) != 6)
		return 1;
	p = mmap(NULL, 4 * SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED || memcmp(p, "nobody", 6))
		return 2;
	p[SM_PS] = 'x';
	munmap(p, 4 * SM_PS);
	hfd = ioctl(fd, SEALMEM_IOC_FILL_ENABLE, 0);
	if (hfd < 0)
		return 3;
	{
		static char page[SM_PS_MAX] = "filled";

		c = (struct sealmem_copy){ .offset = 2 * SM_PS, .src = (__u64)(uintptr_t)page, .len = SM_PS };
		if (ioctl(hfd, SEALMEM_IOC_COPY, &c))
			return 4;
	}
	if (sm_add_seals(fd, SEALMEM_SEAL_WRITE | SEALMEM_SEAL_SEAL))
		return 5;
	view = sm_view(fd, 0);
	if (view < 0 || pread(view, buf, 6, 2 * SM_PS) != 6 || memcmp(buf, "filled", 6))
		return 6;
	/* Seals cannot be removed or added to once SEAL is set. */
	if (sm_add_seals(fd, 0) != -1 || errno != EPERM)
		return 7;
	close(view);
	close(hfd);
	close(fd);
	return 0;
}

TEST(unprivileged_user_can_create_fill_seal_and_map)
{
	EXPECT_EQ(0, as_nobody(use_everything, NULL));
}

struct target {
	pid_t pid;
	int fd;
};

static int reach_other(void *arg)
{
	struct target *t = arg;
	char path[64], buf[16];
	int fd;

	/* Another user's fds and memory are not reachable through /proc. */
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", t->pid, t->fd);
	fd = open(path, O_RDONLY);
	if (fd >= 0 || errno != EACCES)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/mem", t->pid);
	fd = open(path, O_RDONLY);
	if (fd >= 0 || errno != EACCES)
		return 2;
	/* Opening the device gives a new, empty file of one's own. */
	fd = sm_new();
	if (fd < 0 || sm_get_size(fd) != 0 || read(fd, buf, sizeof(buf)) != 0)
		return 3;
	close(fd);
	return 0;
}

TEST(another_users_file_is_unreachable)
{
	struct target t = { .pid = getpid(), .fd = sm_new() };

	ASSERT_GE(t.fd, 0);
	ASSERT_EQ(10, pwrite(t.fd, "ROOTSECRET", 10, 0));
	EXPECT_EQ(0, as_nobody(reach_other, &t));
	close(t.fd);
}

static int pages_are_zero(void *arg)
{
	size_t pages = (size_t)(uintptr_t)arg, i, j;
	int fd = sm_new();
	char *p, buf[SM_PS];

	if (fd < 0 || sm_set_size(fd, pages * SM_PS))
		return 1;
	p = mmap(NULL, pages * SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 2;
	for (i = 0; i < pages / 2; i++)
		for (j = 0; j < SM_PS; j += 64)
			if (p[i * SM_PS + j])
				return 3;
	for (i = pages / 2; i < pages; i++) {
		/* write a byte (allocating the page), then read the whole page back */
		p[i * SM_PS + 1] = 0;
		if (pread(fd, buf, SM_PS, i * SM_PS) != SM_PS)
			return 4;
		for (j = 0; j < SM_PS; j++)
			if (buf[j])
				return 5;
	}
	munmap(p, pages * SM_PS);
	close(fd);
	return 0;
}

TEST(fresh_pages_never_show_another_users_old_data)
{
	enum { PAGES = 2048 };
	char *data = malloc(PAGES * SM_PS);
	int fd = sm_new();

	ASSERT_NE(NULL, data);
	ASSERT_GE(fd, 0);
	memset(data, 0xAA, PAGES * SM_PS);
	ASSERT_EQ(PAGES * SM_PS, pwrite(fd, data, PAGES * SM_PS, 0));
	close(fd); /* root's pages go back to the allocator */
	free(data);
	EXPECT_EQ(0, as_nobody(pages_are_zero, (void *)(uintptr_t)PAGES));
}

struct lazyview {
	int view;
};

static int view_holder(void *arg)
{
	struct lazyview *l = arg;
	struct sealmem_copy c = { .offset = 0, .len = SM_PS };
	char buf[8];
	static char page[SM_PS_MAX];

	c.src = (__u64)(uintptr_t)page;
	if (ioctl(l->view, SEALMEM_IOC_FILL_ENABLE, 0) != -1 || errno != EPERM)
		return 1;
	if (ioctl(l->view, SEALMEM_IOC_COPY, &c) != -1 || errno != ENOTTY)
		return 2;
	if (pwrite(l->view, "x", 1, 0) != -1 || errno != EBADF)
		return 3;
	if (sm_set_size(l->view, 0) != -1 || errno != EBADF)
		return 4;
	if (sm_add_seals(l->view, SEALMEM_SEAL_SEAL) != -1 || errno != EPERM)
		return 5;
	/* Reading a hole waits for the owner's handler, which serves it. */
	if (pread(l->view, buf, 5, 0) != 5 || memcmp(buf, "owner", 5))
		return 6;
	return 0;
}

TEST(view_holder_cannot_fill_write_resize_or_seal)
{
	static char page[SM_PS_MAX] = "owner";
	int fd = sm_new(), hfd, status;
	struct lazyview l;
	struct sealmem_msg m;
	pid_t pid;

	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, SM_PS));
	hfd = ioctl(fd, SEALMEM_IOC_FILL_ENABLE, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(hfd, 0);
	ASSERT_EQ(0, sm_add_seals(fd, SEALMEM_SEAL_WRITE | SEALMEM_SEAL_SHRINK | SEALMEM_SEAL_GROW));
	l.view = sm_view(fd, 0);
	ASSERT_GE(l.view, 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		close(hfd);
		close(fd);
		drop_privileges();
		_exit(view_holder(&l));
	}
	ASSERT_EQ(sizeof(m), read(hfd, &m, sizeof(m)));
	ASSERT_EQ(0, ioctl(hfd, SEALMEM_IOC_COPY, &(struct sealmem_copy){ .offset = 0, .src = (__u64)(uintptr_t)page, .len = SM_PS }));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(SM_EXITED(0), sm_ended(status));
	close(l.view);
	close(hfd);
	close(fd);
}

TEST_HARNESS_MAIN
