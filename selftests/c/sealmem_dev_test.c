// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem foundation tests: the device node, file lifetime, the API handshake, unknown
 * ioctls, fdinfo, and module unload while files are open.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>

#include "kselftest_harness.h"
#include "sealmem_lib.h"

static int sm_touch_ok(char *p) { return sm_touch(p, 0, NULL); }
static int sm_touch_bus(char *p) { return sm_touch(p, 1, NULL); }

TEST(device_node_is_world_usable_char_device)
{
	struct stat st;

	ASSERT_EQ(0, stat(SM_DEV, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0666, st.st_mode & 07777);
}

TEST(unprivileged_user_can_create_files)
{
	pid_t pid = fork();
	int status;

	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct sealmem_api api = { .api = SEALMEM_API };
		int fd;

		if (setgid(65534) || setuid(65534))
			_exit(10);
		if (geteuid() != 65534)
			_exit(11);
		fd = open(SM_DEV, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			_exit(12);
		if (ioctl(fd, SEALMEM_IOC_API, &api) != 0 || api.api != SEALMEM_API)
			_exit(13);
		_exit(close(fd) == 0 ? 0 : 14);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(SM_EXITED(0), sm_ended(status));
}

TEST(open_close_many_files)
{
	enum { N = 1000 };
	static int fds[N];
	struct rlimit rl = { N + 64, N + 64 };
	long long files0 = sm_counter("files");
	long long created0 = sm_counter("files_created");
	char info[1024], id[32], prev[32] = "";
	int i;

	ASSERT_GE(files0, 0) TH_LOG("debugfs counters missing");
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	for (i = 0; i < N; i++) {
		fds[i] = open(SM_DEV, O_RDWR | O_CLOEXEC);
		ASSERT_GE(fds[i], 0) TH_LOG("open #%d: %s", i, strerror(errno));
	}
	EXPECT_EQ(files0 + N, sm_counter("files"));
	EXPECT_EQ(created0 + N, sm_counter("files_created"));
	/* Every open() is a new file: ids differ. */
	for (i = 0; i < N; i += 97) {
		ASSERT_GT(sm_fdinfo(fds[i], info, sizeof(info)), 0);
		ASSERT_EQ(0, sm_fdinfo_field(info, "sealmem-id", id, sizeof(id)));
		EXPECT_NE(0, strcmp(id, prev));
		strcpy(prev, id);
	}
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, close(fds[i]));
	EXPECT_EQ(files0, sm_counter("files"));
}

TEST(dup_and_fork_share_one_file)
{
	long long files0 = sm_counter("files");
	int fd = open(SM_DEV, O_RDWR), fd2, status;
	pid_t pid;

	ASSERT_GE(fd, 0);
	fd2 = dup(fd);
	ASSERT_GE(fd2, 0);
	EXPECT_EQ(files0 + 1, sm_counter("files"));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(sm_counter("files") == files0 + 1 ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(SM_EXITED(0), sm_ended(status));
	close(fd);
	EXPECT_EQ(files0 + 1, sm_counter("files"));
	close(fd2);
	EXPECT_EQ(files0, sm_counter("files"));
}

FIXTURE(file) {
	int fd;
};

FIXTURE_SETUP(file)
{
	self->fd = open(SM_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_GE(self->fd, 0);
}

FIXTURE_TEARDOWN(file)
{
	close(self->fd);
}

TEST_F(file, handshake_reports_version_features_and_ioctls)
{
	struct sealmem_api api = { .api = SEALMEM_API, .features = 0, .ioctls = 0xdead };
	const __u64 known = SEALMEM_FEATURE_SIZE_IO | SEALMEM_FEATURE_SEALS |
			    SEALMEM_FEATURE_VIEW | SEALMEM_FEATURE_LAZY_FILL | SEALMEM_FEATURE_HUGE;

	ASSERT_EQ(0, ioctl(self->fd, SEALMEM_IOC_API, &api));
	EXPECT_EQ(SEALMEM_API, api.api);
	EXPECT_EQ(0, api.features & ~known) TH_LOG("unknown feature bits %llx",
						   (unsigned long long)api.features);
	EXPECT_TRUE(api.ioctls & (1ULL << SEALMEM_NR_API));
	/* The test kernels have transparent huge pages with 2 MiB PMDs. */
	EXPECT_EQ(SEALMEM_FEATURE_HUGE, api.features & SEALMEM_FEATURE_HUGE);
	EXPECT_TRUE(api.ioctls & (1ULL << SEALMEM_NR_SET_HUGE));
	/* Asking for exactly what was reported succeeds and is idempotent. */
	api.features = api.features;
	api.ioctls = 0;
	ASSERT_EQ(0, ioctl(self->fd, SEALMEM_IOC_API, &api));
	EXPECT_EQ(SEALMEM_API, api.api);
}

TEST_F(file, handshake_rejects_unknown_versions)
{
	const __u64 bad[] = { 0, SEALMEM_API + 1, 0x100000001ULL, ~0ULL };
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sealmem_api api = { .api = bad[i], .features = 0, .ioctls = 7 };

		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, SEALMEM_IOC_API, &api));
		EXPECT_EQ(EINVAL, errno);
		/* Refusals zero the struct, as UFFDIO_API does. */
		EXPECT_EQ(0, api.api);
		EXPECT_EQ(0, api.features);
		EXPECT_EQ(0, api.ioctls);
	}
}

TEST_F(file, handshake_rejects_unsupported_feature_bits)
{
	struct sealmem_api api = { .api = SEALMEM_API };
	__u64 supported, bit;

	ASSERT_EQ(0, ioctl(self->fd, SEALMEM_IOC_API, &api));
	supported = api.features;
	for (bit = 1; bit; bit <<= 1) {
		if (supported & bit)
			continue;
		api = (struct sealmem_api){ .api = SEALMEM_API, .features = bit };
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, SEALMEM_IOC_API, &api))
			TH_LOG("feature bit %llx accepted", (unsigned long long)bit);
		EXPECT_EQ(EINVAL, errno);
		EXPECT_EQ(0, api.features);
	}
}

TEST_F(file, handshake_bad_pointer_is_efault)
{
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SEALMEM_IOC_API, NULL));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, SEALMEM_IOC_API, (void *)16));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(file, unknown_ioctls_are_enotty)
{
	struct termios t;
	char buf[64] = { 0 };
	const unsigned long cmds[] = {
		_IO(SEALMEM_IOC_MAGIC, 0x7f),
		_IOWR(SEALMEM_IOC_MAGIC, 0xff, __u64),
		/* The handshake's number with the wrong size or direction. */
		_IOWR(SEALMEM_IOC_MAGIC, SEALMEM_NR_API, char[16]),
		_IOR(SEALMEM_IOC_MAGIC, SEALMEM_NR_API, struct sealmem_api),
		/* API version 1's handshake, under the old code 0xB5 (rpmsg's range). */
		_IOWR(0xB5, SEALMEM_NR_API, struct sealmem_api),
		_IO('f', 1),
	};
	unsigned int i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, cmds[i], buf)) TH_LOG("cmd %lx", cmds[i]);
		EXPECT_EQ(ENOTTY, errno) TH_LOG("cmd %lx", cmds[i]);
	}
	errno = 0;
	EXPECT_EQ(-1, tcgetattr(self->fd, &t));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(file, fdinfo_shows_the_file_state)
{
	struct sealmem_api api = { .api = SEALMEM_API };
	char info[1024], v[64];

	ASSERT_GT(sm_fdinfo(self->fd, info, sizeof(info)), 0);
	ASSERT_EQ(0, sm_fdinfo_field(info, "sealmem-id", v, sizeof(v)));
	EXPECT_GT(strtoull(v, NULL, 10), 0);
	ASSERT_EQ(0, sm_fdinfo_field(info, "name", v, sizeof(v)));
	EXPECT_STREQ("", v);
	ASSERT_EQ(0, sm_fdinfo_field(info, "size", v, sizeof(v)));
	EXPECT_STREQ("0", v);
	ASSERT_EQ(0, sm_fdinfo_field(info, "seals", v, sizeof(v)));
	EXPECT_STREQ("0x0", v);
	ASSERT_EQ(0, sm_fdinfo_field(info, "pages", v, sizeof(v)));
	EXPECT_STREQ("0", v);
	ASSERT_EQ(0, sm_fdinfo_field(info, "lazy", v, sizeof(v)));
	EXPECT_STREQ("off", v);
	ASSERT_EQ(0, sm_fdinfo_field(info, "pending", v, sizeof(v)));
	EXPECT_STREQ("0", v);
	ASSERT_EQ(0, sm_fdinfo_field(info, "api", v, sizeof(v)));
	EXPECT_STREQ("0", v);

	ASSERT_EQ(0, ioctl(self->fd, SEALMEM_IOC_API, &api));
	ASSERT_GT(sm_fdinfo(self->fd, info, sizeof(info)), 0);
	ASSERT_EQ(0, sm_fdinfo_field(info, "api", v, sizeof(v)));
	EXPECT_EQ(SEALMEM_API, strtoull(v, NULL, 10));
}

/* Unloads sealmem and loads it again with module parameters (sm_reload: the gauges must be 0
 * first, or the reload would hide what earlier tests left behind); 0 on success. */
static int reload(const char *params)
{
	return sm_reload(params);
}

TEST(limits_max_pages_enospc_sigbus_and_max_file_size_efbig)
{
	static char page[2 * SM_PS_MAX];
	char *p;
	int fd, i;

	if (!getenv("SEALMEM_KO"))
		SKIP(return, "SEALMEM_KO not set (runs only in the test VM)");
	ASSERT_EQ(0, reload("max_pages=16 max_file_size=1048576")) TH_LOG("%s", strerror(errno));
	fd = open(SM_DEV, O_RDWR);
	ASSERT_GE(fd, 0);
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, SEALMEM_IOC_SET_SIZE, &(__u64){ 1048577 }));
	EXPECT_EQ(EFBIG, errno);
	errno = 0;
	EXPECT_EQ(-1, pwrite(fd, "x", 1, 1048576));
	EXPECT_EQ(EFBIG, errno);
	ASSERT_EQ(0, ioctl(fd, SEALMEM_IOC_SET_SIZE, &(__u64){ 1048576 }));
	for (i = 0; i < 16; i++)
		ASSERT_EQ(SM_PS, pwrite(fd, page, SM_PS, (off_t)i * SM_PS));
	EXPECT_EQ(16, sm_counter("pages"));
	errno = 0;
	EXPECT_EQ(-1, pwrite(fd, page, SM_PS, 16 * SM_PS));
	EXPECT_EQ(ENOSPC, errno);
	/* A write that fits partly returns the bytes it wrote. */
	ASSERT_EQ(0, ioctl(fd, SEALMEM_IOC_PUNCH_HOLE, &(struct sealmem_range){ 15 * SM_PS, SM_PS }));
	EXPECT_EQ(SM_PS, pwrite(fd, page, 2 * SM_PS, 15 * SM_PS));
	/* A fault that would exceed the limit raises SIGBUS, not corruption. */
	p = mmap(NULL, 32 * SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, sm_touch_ok(p + 3 * SM_PS));
	EXPECT_EQ(SIGBUS, sm_touch_bus(p + 20 * SM_PS));
	EXPECT_EQ(16, sm_counter("pages"));
	munmap(p, 32 * SM_PS);
	close(fd);
	EXPECT_EQ(0, sm_counter("pages"));
	ASSERT_EQ(0, reload("")) TH_LOG("reload with defaults: %s", strerror(errno));
}

static int fill_op(int hfd, unsigned long cmd, __u64 off, __u64 len, __s64 *done)
{
	struct sealmem_fill f = { .offset = off, .len = len };
	int ret = ioctl(hfd, cmd, &f);

	*done = f.done;
	return ret;
}

/*
 * max_pages bounds the fills too: a COPY or ZEROPAGE that reaches it fills the pages that
 * fit, then stops with ENOSPC reporting them (nothing: the negated errno); the pages past
 * the limit stay holes and can be filled once pages are freed.
 */
TEST(limits_max_pages_enospc_from_copy_and_zeropage)
{
	char *src, buf[SM_PS_MAX];
	__s64 done = 0;
	int fd, hfd;

	if (!getenv("SEALMEM_KO"))
		SKIP(return, "SEALMEM_KO not set (runs only in the test VM)");
	src = sm_make_src(32 * SM_PS, 8);
	ASSERT_NE(MAP_FAILED, src);
	ASSERT_EQ(0, reload("max_pages=16")) TH_LOG("%s", strerror(errno));
	fd = sm_new();
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, 32 * SM_PS));
	hfd = sm_fill_enable(fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(hfd, 0);
	ASSERT_EQ(0, sm_copy(hfd, 0, src, 12 * SM_PS, &done));
	EXPECT_EQ(12 * SM_PS, done);
	/* 8 pages asked, 4 fit. */
	SM_EXPECT_ERRNO(ENOSPC, sm_copy(hfd, 12 * SM_PS, src + 12 * SM_PS, 8 * SM_PS, &done));
	EXPECT_EQ(4 * SM_PS, done);
	EXPECT_EQ(16, sm_counter("pages"));
	EXPECT_EQ(16, sm_pages(fd));
	/* At the limit: nothing fits. */
	SM_EXPECT_ERRNO(ENOSPC, sm_copy(hfd, 16 * SM_PS, src + 16 * SM_PS, SM_PS, &done));
	EXPECT_EQ(-ENOSPC, done);
	SM_EXPECT_ERRNO(ENOSPC, fill_op(hfd, SEALMEM_IOC_ZEROPAGE, 16 * SM_PS, SM_PS, &done));
	EXPECT_EQ(-ENOSPC, done);
	EXPECT_EQ(16 * SM_PS, lseek(fd, 0, SEEK_HOLE)) TH_LOG("page 16 stays a hole");
	/* Two pages freed: a ZEROPAGE of 4 fills 2. */
	ASSERT_EQ(0, sm_punch(fd, 0, 2 * SM_PS));
	SM_EXPECT_ERRNO(ENOSPC, fill_op(hfd, SEALMEM_IOC_ZEROPAGE, 16 * SM_PS, 4 * SM_PS, &done));
	EXPECT_EQ(2 * SM_PS, done);
	EXPECT_EQ(16, sm_counter("pages"));
	EXPECT_EQ(18 * SM_PS, lseek(fd, 16 * SM_PS, SEEK_HOLE));
	/* The bytes: the copied pages exact, the zero pages zero. */
	for (int i = 2; i < 16; i++) {
		ASSERT_EQ(SM_PS, pread(fd, buf, SM_PS, (off_t)i * SM_PS));
		EXPECT_EQ(0, memcmp(buf, src + i * SM_PS, SM_PS)) TH_LOG("page %d", i);
	}
	ASSERT_EQ(SM_PS, pread(fd, buf, SM_PS, 17 * SM_PS));
	EXPECT_EQ(0, buf[0]);
	EXPECT_EQ(0, memcmp(buf, buf + 1, SM_PS - 1));
	close(hfd);
	close(fd);
	EXPECT_EQ(0, sm_counter("pages"));
	ASSERT_EQ(0, reload("")) TH_LOG("reload with defaults: %s", strerror(errno));
	munmap(src, 32 * SM_PS);
}

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok ? 0 : -1;
}

/*
 * Regression (found by the fault-injection fuzz run): when storing a page failed because the
 * XArray could not allocate a node, the page's max_pages reservation was never returned and
 * the global page counter drifted up. XArray retries a failed node allocation once (first
 * GFP_NOWAIT under its lock, then GFP_KERNEL), so failslab is set to fail exactly the next two
 * slab allocations of this task that have sealmem on the stack.
 */
TEST(failed_xarray_allocation_never_leaks_page_accounting)
{
	const char *fs = "/sys/kernel/debug/failslab/";
	char line[256], name[64], val[64], path[128];
	unsigned long long size = 0, addr = 0;
	long long pages0;
	FILE *f;
	int fd;

	if (access("/sys/kernel/debug/failslab/times", W_OK) || access("/proc/self/make-it-fail", W_OK))
		SKIP(return, "no fault injection in this kernel (the debug kernel has it)");
	f = fopen("/proc/modules", "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %llu %*s %*s %*s %llx", name, &size, &addr) == 3 && !strcmp(name, "sealmem"))
			break;
	fclose(f);
	ASSERT_NE(0, addr);
#define FS(attr, fmt, ...) do { snprintf(path, sizeof(path), "%s%s", fs, attr); \
	snprintf(val, sizeof(val), fmt, __VA_ARGS__); ASSERT_EQ(0, write_str(path, val)) TH_LOG("%s", path); } while (0)
	FS("require-start", "%llu", addr);
	FS("require-end", "%llu", addr + size);
	FS("stacktrace-depth", "%d", 32);
	FS("ignore-gfp-wait", "%s", "N");
	FS("task-filter", "%s", "Y");
	FS("verbose", "%d", 0);
	FS("interval", "%d", 1);
	FS("times", "%d", 2);
	FS("probability", "%d", 100);

	pages0 = sm_counter("pages");
	fd = open(SM_DEV, O_RDWR);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, write_str("/proc/self/make-it-fail", "1"));
	errno = 0;
	/* Page 300 of an empty file: a new page, then XArray nodes, both failed attempts. */
	EXPECT_EQ(-1, pwrite(fd, "x", 1, 300 * SM_PS));
	EXPECT_EQ(ENOMEM, errno);
	write_str("/proc/self/make-it-fail", "0");
	FS("probability", "%d", 0);
	EXPECT_EQ(0, sm_pages(fd));
	EXPECT_EQ(pages0, sm_counter("pages")) TH_LOG("the failed store leaked a page count");
	/* The file works normally afterwards. */
	EXPECT_EQ(1, pwrite(fd, "x", 1, 300 * SM_PS));
	EXPECT_EQ(pages0 + 1, sm_counter("pages"));
	close(fd);
	EXPECT_EQ(pages0, sm_counter("pages"));
#undef FS
}

/* Keep last: it unloads and reloads the module. */
TEST(rmmod_refused_while_a_file_is_open)
{
	const char *ko = getenv("SEALMEM_KO");
	int fd, fd2, kfd;

	if (!ko)
		SKIP(return, "SEALMEM_KO not set (runs only in the test VM)");
	fd = open(SM_DEV, O_RDWR);
	ASSERT_GE(fd, 0);
	fd2 = dup(fd);
	errno = 0;
	EXPECT_EQ(-1, syscall(SYS_delete_module, "sealmem", O_NONBLOCK));
	EXPECT_EQ(EWOULDBLOCK, errno);
	close(fd);
	errno = 0;
	EXPECT_EQ(-1, syscall(SYS_delete_module, "sealmem", O_NONBLOCK));
	EXPECT_EQ(EWOULDBLOCK, errno);
	close(fd2);
	/* Unloading resets the gauges: whatever this program left must be seen first. */
	EXPECT_EQ(0, sm_gauges_before_unload()) TH_LOG("files or pages left before the unload");
	ASSERT_EQ(0, syscall(SYS_delete_module, "sealmem", O_NONBLOCK))
		TH_LOG("rmmod after close: %s", strerror(errno));
	EXPECT_EQ(-1, access(SM_DEV, F_OK));
	/* Load it again for the tests that follow. */
	kfd = open(ko, O_RDONLY | O_CLOEXEC);
	ASSERT_GE(kfd, 0);
	ASSERT_EQ(0, syscall(SYS_finit_module, kfd, "", 0)) TH_LOG("reload: %s", strerror(errno));
	close(kfd);
	fd = open(SM_DEV, O_RDWR);
	ASSERT_GE(fd, 0);
	close(fd);
}

TEST_HARNESS_MAIN
