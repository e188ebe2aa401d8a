// SPDX-License-Identifier: GPL-2.0
/*
 * sealmem review-defect tests: each test is named after the rule it checks.
 *
 * - write_from_a_lazy_source_never_blocks_other_file_users
 * - a_lazy_partial_last_page_is_content_only_from_the_handler (+ _with_o_append)
 * - read_never_returns_zeros_for_a_filled_page (+ _of_a_sealed_file)   [knob point 2]
 * - fill_enable_never_strands_a_request_behind_a_zero_page                   [knob point 3]
 * - a_faulting_source_leaves_nothing_past_eof
 * - zero_length_write_on_a_sealed_file_returns_0
 * - a_write_crossing_eof_under_grow_is_short
 * - a_failed_write_seal_publishes_no_seal
 * - a_fault_waiting_for_a_lazy_page_pins_the_module                    [knob point 1, root]
 *
 * Nothing here stands in a sleep for "the other task is waiting": the tests wait until the
 * task's state in /proc is S or D. Every wait has a deadline; on a deadline the test fails
 * and releases what is stuck (fills the page, FILL_END, a signal). Tests that use the debug
 * knobs (rust/knobs.rs, debug builds only) skip without them and reset delay_at to 0.
 *
 * The module-unload test is last. On a module that lets a fault outlive it, the unload
 * succeeds while a thread still sleeps in the module's fault handler; the test reloads the
 * module at once (so far the new text has landed at the old address: the thread then
 * finishes in the new module, dropping its file there, which leaves that module's "files"
 * counter at -1, so the test unloads and reloads once more). Left unloaded, the thread runs
 * freed module text ("BUG: unable to handle page fault", supervisor instruction fetch, an
 * oops; with oops=panic the VM ends). Its progress also goes to /dev/kmsg, so the serial
 * log shows it even if the VM dies before the test's TAP is printed.
 */
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>

#include "kselftest_harness.h"
#include "sealmem_lib.h"

#define KNOBS "/sys/kernel/debug/sealmem/debug/"

/* ---- helpers (copied here rather than added to the shared header) ------------------- */

static int knobs_present(void)
{
	return access(KNOBS "delay_at", W_OK) == 0 && access(KNOBS "delay_ms", W_OK) == 0;
}

static int knob_set(const char *name, unsigned int v)
{
	char path[128], s[32];
	int fd, n, ok;

	snprintf(path, sizeof(path), KNOBS "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	n = snprintf(s, sizeof(s), "%u\n", v);
	ok = write(fd, s, n) == n;
	close(fd);
	return ok ? 0 : -1;
}

/* A line in the kernel log (the serial console), for a test that may end the VM. */
static void kmsg(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int fd, n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fd = open("/dev/kmsg", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, line, n) < 0) {
			/* best effort */
		}
		close(fd);
	}
}

/* One blocking I/O call in its own thread. */
enum io_kind { IO_PREAD, IO_PWRITE, IO_WRITE };

struct io_thread {
	enum io_kind kind;
	int fd;
	void *buf;
	size_t len;
	off_t off;
	ssize_t ret;
	int err;
	atomic_int tid;
	atomic_int done;
	pthread_t th;
};

static void *io_run(void *arg)
{
	struct io_thread *t = arg;

	atomic_store(&t->tid, (int)syscall(SYS_gettid));
	errno = 0;
	switch (t->kind) {
	case IO_PREAD:
		t->ret = pread(t->fd, t->buf, t->len, t->off);
		break;
	case IO_PWRITE:
		t->ret = pwrite(t->fd, t->buf, t->len, t->off);
		break;
	case IO_WRITE:
		t->ret = write(t->fd, t->buf, t->len);
		break;
	}
	t->err = errno;
	atomic_store(&t->done, 1);
	return NULL;
}

static int io_start(struct io_thread *t, enum io_kind kind, int fd, void *buf, size_t len, off_t off)
{
	double t0 = sm_now();

	t->kind = kind;
	t->fd = fd;
	t->buf = buf;
	t->len = len;
	t->off = off;
	t->ret = -2;
	t->err = 0;
	atomic_store(&t->tid, 0);
	atomic_store(&t->done, 0);
	if (pthread_create(&t->th, NULL, io_run, t))
		return -1;
	while (!atomic_load(&t->tid))
		if (sm_now() - t0 > 5)
			return -1;
	return 0;
}

/* Waits up to timeout_s for the call to return; 1 if it did. */
static int io_wait(struct io_thread *t, double timeout_s)
{
	double t0 = sm_now();

	while (!atomic_load(&t->done)) {
		if (sm_now() - t0 >= timeout_s)
			return 0;
		sm_msleep(5);
	}
	return 1;
}

/* Waits up to timeout_s until the call sleeps (S or D) or returns; the state, 'R' if returned. */
static char io_wait_asleep(struct io_thread *t, double timeout_s)
{
	double t0 = sm_now();

	do {
		char s;

		if (atomic_load(&t->done))
			return 'R';
		s = sm_task_state(getpid(), atomic_load(&t->tid));
		if (s == 'S' || s == 'D')
			return s;
		sm_msleep(5);
	} while (sm_now() - t0 < timeout_s);
	return 0;
}

static void on_sigusr1(int sig)
{
	(void)sig;
}

/* SIGUSR1 interrupts a blocked call (no SA_RESTART): a last resort to free a stuck thread. */
static void install_sigusr1(void)
{
	struct sigaction sa = { .sa_handler = on_sigusr1 };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

/*
 * Releases a thread stuck in a sealmem wait: FILL_END on hfd (every waiter continues),
 * then SIGUSR1. Returns 1 if the call has returned by the end.
 */
static int io_release(struct io_thread *t, int hfd)
{
	if (io_wait(t, 0))
		return 1;
	if (hfd >= 0)
		ioctl(hfd, SEALMEM_IOC_FILL_END);
	if (io_wait(t, 5))
		return 1;
	for (int i = 0; i < 10 && !atomic_load(&t->done); i++) {
		pthread_kill(t->th, SIGUSR1);
		io_wait(t, 0.5);
	}
	return atomic_load(&t->done);
}

/* Joins the thread if its call returned (a stuck thread dies with the test process). */
static void io_join(struct io_thread *t)
{
	if (atomic_load(&t->done))
		pthread_join(t->th, NULL);
}

/* Reaps `pid`, waiting up to timeout_s, then SIGKILL; returns the wait status, -1 if lost. */
static int reap(pid_t pid, double timeout_s)
{
	double t0 = sm_now();
	int status;

	do {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0)
			return -1;
		sm_msleep(10);
	} while (sm_now() - t0 < timeout_s);
	kill(pid, SIGKILL);
	return waitpid(pid, &status, 0) == pid ? status : -1;
}

static const char *status_str(int status, char *buf, size_t len)
{
	if (status == -1)
		snprintf(buf, len, "not reaped");
	else if (sm_ended(status) >= SM_KILLED(1))
		snprintf(buf, len, "killed by signal %d (%s)", sm_ended(status) - SM_KILLED(0),
			 strsignal(sm_ended(status) - SM_KILLED(0)));
	else if (sm_ended(status) >= 0)
		snprintf(buf, len, "exited %d", sm_ended(status));
	else
		snprintf(buf, len, "status %#x", status);
	return buf;
}

FIXTURE(review) {
	int unused;
};

FIXTURE_SETUP(review)
{
	install_sigusr1();
}

FIXTURE_TEARDOWN(review)
{
	/* Whatever happened, no later test may run with a delay armed. */
	if (knobs_present())
		knob_set("delay_at", 0);
}

/* ---- 1. a write whose source is a lazy hole of the same file ------------------------ */

enum { OP_FDINFO, OP_GET_NAME, OP_GET_SIZE, OP_ADD_SEALS_GROW, OPS };
static const char *const op_name[OPS] = { "fdinfo", "GET_NAME", "GET_SIZE", "ADD_SEALS(GROW)" };

/* What an op child reports: ret 0 = done and right, 1 = done with wrong content, -1 = errno. */
struct op_result {
	int ret;
	int err;
	char what[96];
};

static void run_op(int op, int fd, struct op_result *r)
{
	char path[64], info[2048];
	struct sealmem_name name;
	__u64 size;
	ssize_t n;
	int f;

	memset(r, 0, sizeof(*r));
	errno = 0;
	switch (op) {
	case OP_FDINFO:
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", getppid(), fd);
		f = open(path, O_RDONLY);
		n = f < 0 ? -1 : read(f, info, sizeof(info) - 1);
		r->err = errno;
		if (f >= 0)
			close(f);
		if (n < 0) {
			r->ret = -1;
			break;
		}
		info[n] = '\0';
		r->ret = strstr(info, "\nname:\treview\n") && strstr(info, "\nsize:\t8192\n") ? 0 : 1;
		snprintf(r->what, sizeof(r->what), "%zd bytes", n);
		break;
	case OP_GET_NAME:
		memset(&name, 0x55, sizeof(name));
		r->ret = ioctl(fd, SEALMEM_IOC_GET_NAME, &name);
		r->err = errno;
		if (!r->ret && strcmp(name.name, "review"))
			r->ret = 1;
		snprintf(r->what, sizeof(r->what), "name \"%.32s\"", r->ret == -1 ? "" : name.name);
		break;
	case OP_GET_SIZE:
		size = 0;
		r->ret = ioctl(fd, SEALMEM_IOC_GET_SIZE, &size);
		r->err = errno;
		if (!r->ret && size != 2 * SM_PS)
			r->ret = 1;
		snprintf(r->what, sizeof(r->what), "size %llu", (unsigned long long)size);
		break;
	case OP_ADD_SEALS_GROW:
		r->ret = sm_add_seals(fd, SEALMEM_SEAL_GROW);
		r->err = errno;
		break;
	}
}

/*
 * pwrite(fd, map + 4096, 4096, 0) where map + 4096 is the lazy hole of page 1 of the same
 * file: while the write waits for page 1, fdinfo, GET_NAME, GET_SIZE and ADD_SEALS on the
 * file, from another process, complete (they must not wait for the handler). Once page 1 is
 * filled the write completes with page 1's bytes.
 */
TEST_F_TIMEOUT(review, write_from_a_lazy_source_never_blocks_other_file_users, 120)
{
	char *pg0 = sm_make_src(SM_PS, 1), *pg1 = sm_make_src(SM_PS, 2), *map, buf[SM_PS], c;
	struct op_result res[OPS];
	int got[OPS] = { 0 }, late[OPS] = { 0 };
	int fd, hfd, go[2], rp[OPS][2], i, pending, status, a_done;
	struct sealmem_name nm = { "review" };
	struct sealmem_msg m;
	struct io_thread a;
	pid_t kid[OPS];
	__s64 done = 0;
	char state, sbuf[64];
	double t0;

	ASSERT_NE(MAP_FAILED, pg0);
	ASSERT_NE(MAP_FAILED, pg1);
	fd = sm_new();
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, 2 * SM_PS));
	ASSERT_EQ(0, ioctl(fd, SEALMEM_IOC_SET_NAME, &nm));
	hfd = sm_fill_enable(fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(hfd, 0) TH_LOG("FILL_ENABLE: %s", strerror(errno));
	ASSERT_EQ(0, sm_copy(hfd, 0, pg0, SM_PS, &done));
	ASSERT_EQ(SM_PS, done);
	map = mmap(NULL, 2 * SM_PS, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map);

	/* The other users: one process per operation, started before the write, on "go". */
	ASSERT_EQ(0, pipe(go));
	for (i = 0; i < OPS; i++) {
		ASSERT_EQ(0, pipe(rp[i]));
		kid[i] = fork();
		ASSERT_GE(kid[i], 0);
		if (kid[i] == 0) {
			struct op_result r;

			close(hfd);
			close(go[1]);
			if (read(go[0], &c, 1) != 1)
				_exit(2);
			run_op(i, fd, &r);
			_exit(write(rp[i][1], &r, sizeof(r)) == sizeof(r) ? 0 : 3);
		}
		close(rp[i][1]);
	}
	close(go[0]);

	ASSERT_EQ(0, io_start(&a, IO_PWRITE, fd, map + SM_PS, SM_PS, 0));
	ASSERT_EQ(0, sm_read_msg(hfd, &m, 10000)) TH_LOG("no request for the write's source page");
	EXPECT_EQ(SM_PS, m.offset);
	EXPECT_EQ(SEALMEM_MSG_FAULT, m.flags);
	state = sm_wait_state(getpid(), atomic_load(&a.tid), "SD", 10);
	EXPECT_NE(0, state) TH_LOG("the writer never went to sleep waiting for page 1");

	/* Page 1 is unfilled: every other user must still get through, each within 5 s. */
	ASSERT_EQ(OPS, write(go[1], "gggg", OPS));
	pending = OPS;
	for (t0 = sm_now(); pending && sm_now() - t0 < 5;) {
		struct pollfd p[OPS];
		int n = 0, idx[OPS];

		for (i = 0; i < OPS; i++)
			if (!got[i]) {
				p[n] = (struct pollfd){ .fd = rp[i][0], .events = POLLIN };
				idx[n++] = i;
			}
		if (poll(p, n, 100) <= 0)
			continue;
		for (int k = 0; k < n; k++)
			if (p[k].revents) {
				i = idx[k];
				got[i] = read(rp[i][0], &res[i], sizeof(res[i])) == sizeof(res[i]) ? 1 : -1;
				pending--;
			}
	}
	a_done = atomic_load(&a.done);
	EXPECT_EQ(0, a_done) TH_LOG("the write returned %zd (%s) before page 1 was filled", a.ret, strerror(a.err));

	/* Fill page 1: the write (and anything stuck behind it) continues. */
	EXPECT_EQ(0, sm_copy(hfd, SM_PS, pg1, SM_PS, &done)) TH_LOG("COPY page 1: %s", strerror(errno));
	EXPECT_EQ(SM_PS, done);
	for (t0 = sm_now(); sm_now() - t0 < 10;) {
		int left = 0;

		for (i = 0; i < OPS; i++)
			if (!got[i]) {
				struct pollfd p = { .fd = rp[i][0], .events = POLLIN };

				if (poll(&p, 1, 50) == 1) {
					got[i] = read(rp[i][0], &res[i], sizeof(res[i])) == sizeof(res[i]) ? 1 : -1;
					late[i] = 1;
				} else {
					left++;
				}
			}
		if (!left)
			break;
	}
	for (i = 0; i < OPS; i++) {
		status = reap(kid[i], 5);
		EXPECT_TRUE(status != -1 && sm_ended(status) == SM_EXITED(0))
			TH_LOG("%s process: %s", op_name[i], status_str(status, sbuf, sizeof(sbuf)));
		close(rp[i][0]);
	}
	if (!io_wait(&a, 10))
		io_release(&a, hfd);
	EXPECT_TRUE(atomic_load(&a.done)) TH_LOG("the write never returned");
	EXPECT_EQ(SM_PS, a.ret) TH_LOG("the write returned %zd (%s)", a.ret, strerror(a.err));
	io_join(&a);

	for (i = 0; i < OPS; i++) {
		EXPECT_TRUE(got[i] == 1 && !late[i])
			TH_LOG("%s blocked while page 1 was unfilled (%s)", op_name[i],
			       got[i] == 1 ? "it completed only after the fill" : "it never completed");
		if (got[i] == 1) {
			EXPECT_EQ(0, res[i].ret) TH_LOG("%s: ret %d (%s) %s", op_name[i], res[i].ret,
							 strerror(res[i].err), res[i].what);
		}
	}
	EXPECT_EQ(SEALMEM_SEAL_GROW, sm_get_seals(fd));
	ASSERT_EQ(SM_PS, pread(fd, buf, SM_PS, 0));
	EXPECT_EQ(0, memcmp(buf, pg1, SM_PS)) TH_LOG("page 0 does not hold page 1's bytes");
	close(go[1]);
	munmap(map, 2 * SM_PS);
	close(hfd);
	close(fd);
	munmap(pg0, SM_PS);
	munmap(pg1, SM_PS);
}

/* ---- 2. a write into the lazy partial last page ------------------------------------- */

/*
 * A lazy file of 100 bytes: a reader waits for page 0; a write at 200 (or an O_APPEND write,
 * at 100) lands in page 0 past EOF. The page's content comes only from the handler: the
 * write must not create page 0 (zeros) behind the reader's back.
 */
static void partial_last_page(struct __test_metadata *_metadata, int append)
{
	char *src = sm_make_src(SM_PS, 5), buf[128], c;
	struct io_thread rd, wr;
	struct sealmem_msg m;
	off_t xoff = append ? 100 : 200;
	int fd, hfd, stranded = 0, cret;
	__s64 done = 0;
	char wstate;

	ASSERT_NE(MAP_FAILED, src);
	fd = sm_new();
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, 100));
	hfd = sm_fill_enable(fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(hfd, 0) TH_LOG("FILL_ENABLE: %s", strerror(errno));
	if (append) {
		ASSERT_EQ(0, fcntl(fd, F_SETFL, O_APPEND));
	}

	memset(buf, 0x77, sizeof(buf));
	ASSERT_EQ(0, io_start(&rd, IO_PREAD, fd, buf, 100, 0));
	ASSERT_EQ(0, sm_read_msg(hfd, &m, 10000)) TH_LOG("no request for page 0");
	EXPECT_EQ(0, m.offset);
	EXPECT_EQ(0, m.flags);
	EXPECT_NE(0, io_wait_asleep(&rd, 10)) TH_LOG("the reader neither slept nor returned");
	EXPECT_EQ(0, atomic_load(&rd.done)) TH_LOG("the reader returned %zd before the fill", rd.ret);

	if (append) {
		ASSERT_EQ(0, io_start(&wr, IO_WRITE, fd, "x", 1, 0));
	} else {
		ASSERT_EQ(0, io_start(&wr, IO_PWRITE, fd, "x", 1, xoff));
	}
	wstate = io_wait_asleep(&wr, 10);
	if (wstate == 'R')
		TH_LOG("the write returned %zd (%s) before page 0 was filled", wr.ret, strerror(wr.err));

	errno = 0;
	cret = sm_copy(hfd, 0, src, SM_PS, &done);
	EXPECT_EQ(0, cret) TH_LOG("COPY of page 0 failed: %s (copy %lld): the write made the page",
				  strerror(errno), (long long)done);
	EXPECT_EQ(SM_PS, done);

	if (!io_wait(&rd, 5)) {
		stranded = 1;
		io_release(&rd, hfd);
	}
	EXPECT_EQ(0, stranded) TH_LOG("the reader was stranded: still waiting 5 s after the COPY%s",
				      atomic_load(&rd.done) ? " (released by FILL_END)" : ", even after FILL_END");
	EXPECT_EQ(100, rd.ret) TH_LOG("the reader returned %zd (%s)", rd.ret, strerror(rd.err));
	if (rd.ret == 100) {
		EXPECT_EQ(0, memcmp(buf, src, 100))
			TH_LOG("the reader got bytes not from the handler: %02x %02x %02x %02x (want %02x %02x %02x %02x)",
			       (unsigned char)buf[0], (unsigned char)buf[1], (unsigned char)buf[2], (unsigned char)buf[3],
			       (unsigned char)src[0], (unsigned char)src[1], (unsigned char)src[2], (unsigned char)src[3]);
	}
	if (!io_wait(&wr, 5))
		io_release(&wr, hfd);
	EXPECT_EQ(1, wr.ret) TH_LOG("the write returned %zd (%s)", wr.ret, strerror(wr.err));
	c = 0;
	EXPECT_EQ(1, pread(fd, &c, 1, xoff));
	EXPECT_EQ('x', c) TH_LOG("byte %lld is %#x", (long long)xoff, (unsigned char)c);
	EXPECT_EQ(xoff + 1, sm_get_size(fd));
	c = 0;
	EXPECT_EQ(1, pread(fd, &c, 1, 0));
	EXPECT_EQ(src[0], c) TH_LOG("byte 0 is %#x, not the handler's %#x", (unsigned char)c, (unsigned char)src[0]);
	io_join(&rd);
	io_join(&wr);
	close(hfd);
	close(fd);
	munmap(src, SM_PS);
}

TEST_F_TIMEOUT(review, a_lazy_partial_last_page_is_content_only_from_the_handler, 120)
{
	partial_last_page(_metadata, 0);
}

TEST_F_TIMEOUT(review, a_lazy_partial_last_page_is_content_only_from_the_handler_with_o_append, 120)
{
	partial_last_page(_metadata, 1);
}

/* ---- 4. read() racing a fill and FILL_END (knob point 2) ---------------------------- */

/*
 * The reader looks up page 0's slot (a hole) and sleeps at knob point 2 (state D); meanwhile
 * the handler fills the page and ends lazy mode. The read must return the filled bytes: a
 * page that was filled never reads as zeros.
 */
static void read_races_fill(struct __test_metadata *_metadata, int sealed)
{
	char *src = sm_make_src(SM_PS, 9), *buf = malloc(SM_PS), *again = malloc(SM_PS);
	struct io_thread rd;
	__s64 done = 0;
	int fd, hfd, zeros;
	char state;

	ASSERT_NE(MAP_FAILED, src);
	ASSERT_TRUE(buf && again);
	if (!knobs_present())
		SKIP(return, "no debug knobs (" KNOBS "): not a debug build with SEALMEM_DEBUG_KNOBS");
	fd = sm_new();
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, SM_PS));
	hfd = sm_fill_enable(fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(hfd, 0) TH_LOG("FILL_ENABLE: %s", strerror(errno));
	if (sealed) {
		/* As a lazy sealed image: enable fill first, then seal; the handler still fills. */
		ASSERT_EQ(0, sm_add_seals(fd, SEALMEM_SEAL_WRITE | SEALMEM_SEAL_SHRINK));
	}
	ASSERT_EQ(0, knob_set("delay_ms", 2000));
	ASSERT_EQ(0, knob_set("delay_at", 2));

	memset(buf, 0x77, SM_PS);
	ASSERT_EQ(0, io_start(&rd, IO_PREAD, fd, buf, SM_PS, 0));
	state = sm_wait_state(getpid(), atomic_load(&rd.tid), "D", 5);
	EXPECT_EQ('D', state) TH_LOG("the reader never slept at knob point 2");
	EXPECT_EQ(0, sm_copy(hfd, 0, src, SM_PS, &done)) TH_LOG("COPY: %s", strerror(errno));
	EXPECT_EQ(SM_PS, done);
	EXPECT_EQ(0, ioctl(hfd, SEALMEM_IOC_FILL_END)) TH_LOG("FILL_END: %s", strerror(errno));
	if (!io_wait(&rd, 15))
		io_release(&rd, -1);
	EXPECT_TRUE(atomic_load(&rd.done)) TH_LOG("the read never returned");
	knob_set("delay_at", 0);
	EXPECT_EQ(SM_PS, rd.ret) TH_LOG("the read returned %zd (%s)", rd.ret, strerror(rd.err));
	zeros = 0;
	for (size_t i = 0; i < SM_PS; i++)
		zeros += buf[i] == 0;
	EXPECT_EQ(0, memcmp(buf, src, SM_PS)) TH_LOG("the read returned bytes the page never held (%d of 4096 zero)", zeros);
	ASSERT_EQ(SM_PS, pread(fd, again, SM_PS, 0));
	EXPECT_EQ(0, memcmp(again, src, SM_PS)) TH_LOG("a later read differs from the filled page");
	io_join(&rd);
	close(hfd);
	close(fd);
	free(buf);
	free(again);
	munmap(src, SM_PS);
}

TEST_F_TIMEOUT(review, read_never_returns_zeros_for_a_filled_page, 120)
{
	read_races_fill(_metadata, 0);
}

TEST_F_TIMEOUT(review, read_never_returns_zeros_for_a_filled_page_of_a_sealed_file, 120)
{
	read_races_fill(_metadata, 1);
}

/* ---- 5. smaller rules ---------------------------------------------------------------- */

/* A write whose source faults at once writes nothing: no new size, no new page. */
/*
 * FILL_ENABLE racing a fault that already decided "not lazy: allocate a zero page" (knob
 * point 3 holds the fault there): the zero page must not appear behind a request raised
 * after lazy mode began. Either FILL_ENABLE waits for the fault (the page then exists before
 * lazy mode, and a read sees it without a request), or a request raised meanwhile is
 * filled by the handler (COPY succeeds) and its reader gets the handler's bytes.
 */
struct toucher {
	volatile char *p;
	atomic_int tid, done;
	pthread_t th;
};

static void *touch_run(void *arg)
{
	struct toucher *t = arg;

	atomic_store(&t->tid, (int)syscall(SYS_gettid));
	(void)t->p[0];
	atomic_store(&t->done, 1);
	return NULL;
}

struct enabler {
	int fd, hfd, err, go[2];
	atomic_int tid, done;
	pthread_t th;
};

/* Started before the fault (a thread created while the fault holds the mmap lock would wait
 * for it in pthread_create's stack mmap); runs FILL_ENABLE when told to. */
static void *enable_run(void *arg)
{
	struct enabler *e = arg;
	char c;

	atomic_store(&e->tid, (int)syscall(SYS_gettid));
	if (read(e->go[0], &c, 1) != 1)
		return NULL;
	e->hfd = sm_fill_enable(e->fd, SEALMEM_FD_CLOEXEC | SEALMEM_FD_NONBLOCK);
	e->err = errno;
	atomic_store(&e->done, 1);
	return NULL;
}

struct go_reader {
	int fd, go[2];
	char *buf;
	ssize_t ret;
	atomic_int tid, done;
	pthread_t th;
};

static void *go_read_run(void *arg)
{
	struct go_reader *r = arg;
	char c;

	atomic_store(&r->tid, (int)syscall(SYS_gettid));
	if (read(r->go[0], &c, 1) != 1)
		return NULL;
	r->ret = pread(r->fd, r->buf, SM_PS, 0);
	atomic_store(&r->done, 1);
	return NULL;
}

static int wait_flag(atomic_int *flag, double timeout_s)
{
	double t0 = sm_now();

	while (!atomic_load(flag)) {
		if (sm_now() - t0 >= timeout_s)
			return 0;
		sm_msleep(2);
	}
	return 1;
}

TEST_F_TIMEOUT(review, fill_enable_never_strands_a_request_behind_a_zero_page, 120)
{
	char *src = sm_make_src(SM_PS, 21), *buf = malloc(SM_PS), info[1024], val[64], st;
	struct toucher t = { 0 };
	struct enabler e = { 0 };
	struct go_reader rd = { 0 };
	struct sealmem_msg m;
	__s64 done = 0;
	int fd;

	ASSERT_NE(MAP_FAILED, src);
	ASSERT_TRUE(buf != NULL);
	if (!knobs_present())
		SKIP(return, "no debug knobs (" KNOBS "): not a debug build with SEALMEM_DEBUG_KNOBS");
	fd = sm_new();
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, SM_PS));
	t.p = mmap(NULL, SM_PS, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, (void *)t.p);
	/* Every thread exists before the fault starts. */
	e.fd = fd;
	rd.fd = fd;
	rd.buf = buf;
	memset(buf, 0x77, SM_PS);
	ASSERT_EQ(0, pipe(e.go));
	ASSERT_EQ(0, pipe(rd.go));
	ASSERT_EQ(0, pthread_create(&e.th, NULL, enable_run, &e));
	ASSERT_EQ(0, pthread_create(&rd.th, NULL, go_read_run, &rd));
	ASSERT_TRUE(wait_flag(&e.tid, 5) && wait_flag(&rd.tid, 5));
	ASSERT_EQ(0, knob_set("delay_ms", 3000));
	ASSERT_EQ(0, knob_set("delay_at", 3));

	/* The fault sleeps at knob point 3, about to make page 0 a zero page. */
	ASSERT_EQ(0, pthread_create(&t.th, NULL, touch_run, &t));
	ASSERT_TRUE(wait_flag(&t.tid, 5));
	ASSERT_EQ('D', sm_wait_state(getpid(), atomic_load(&t.tid), "D", 5)) TH_LOG("the fault never slept at knob point 3");
	/* FILL_ENABLE now: it must wait for the fault (state D), or return at once. */
	ASSERT_EQ(1, write(e.go[1], "g", 1));
	for (double t0 = sm_now(); !atomic_load(&e.done) && sm_now() - t0 < 5;) {
		st = sm_task_state(getpid(), atomic_load(&e.tid));
		if (st == 'D' || st == 'S')
			break;
		sm_msleep(2);
	}
	/* A reader of page 0: a lazy hole (it raises a request and sleeps), or not yet lazy. */
	ASSERT_EQ(1, write(rd.go[1], "g", 1));
	for (double t0 = sm_now(); !atomic_load(&rd.done) && sm_now() - t0 < 5;) {
		st = sm_task_state(getpid(), atomic_load(&rd.tid));
		if (st == 'S' || st == 'D')
			break;
		sm_msleep(2);
	}
	/* Let the fault finish (its zero page lands now, if it still can). */
	ASSERT_TRUE(wait_flag(&t.done, 10)) TH_LOG("the fault never finished");
	pthread_join(t.th, NULL);
	knob_set("delay_at", 0);
	ASSERT_TRUE(wait_flag(&e.done, 10)) TH_LOG("FILL_ENABLE never returned");
	pthread_join(e.th, NULL);
	ASSERT_GE(e.hfd, 0) TH_LOG("FILL_ENABLE: %s", strerror(e.err));

	if (!atomic_load(&rd.done)) {
		/* The reader waits: its request must be fillable, and the fill must reach it. */
		ASSERT_EQ(0, sm_read_msg(e.hfd, &m, 5000)) TH_LOG("the waiting reader's request never came");
		EXPECT_EQ(0, m.offset);
		EXPECT_EQ(0, sm_copy(e.hfd, 0, src, SM_PS, &done)) TH_LOG("COPY of the requested page: %s (a zero page appeared behind the request)", strerror(errno));
		EXPECT_EQ(SM_PS, done);
		EXPECT_TRUE(wait_flag(&rd.done, 5)) TH_LOG("the reader is stranded");
		if (!atomic_load(&rd.done)) {
			ioctl(e.hfd, SEALMEM_IOC_FILL_END);
			wait_flag(&rd.done, 5);
		}
		EXPECT_EQ(SM_PS, rd.ret);
		EXPECT_EQ(0, memcmp(buf, src, SM_PS)) TH_LOG("the reader did not get the handler's bytes");
	} else {
		/* It read before lazy mode began (FILL_ENABLE waited for the fault): zeros. */
		EXPECT_EQ(SM_PS, rd.ret);
		for (size_t i = 0; i < SM_PS; i++)
			if (buf[i]) {
				EXPECT_EQ(0, buf[i]) TH_LOG("byte %zu", i);
				break;
			}
	}
	if (atomic_load(&rd.done))
		pthread_join(rd.th, NULL);
	/* Nothing is left pending: no request was stranded. */
	ASSERT_GT(sm_fdinfo(fd, info, sizeof(info)), 0);
	ASSERT_EQ(0, sm_fdinfo_field(info, "pending", val, sizeof(val)));
	EXPECT_STREQ("0", val);
	munmap((void *)t.p, SM_PS);
	close(e.hfd);
	close(fd);
	free(buf);
	munmap(src, SM_PS);
}

TEST_F(review, a_faulting_source_leaves_nothing_past_eof)
{
	char *data = sm_make_src(SM_PS, 13), *bad, c = 0x5a;
	long long pages;
	int fd = sm_new();

	ASSERT_NE(MAP_FAILED, data);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(SM_PS, pwrite(fd, data, SM_PS, 0));
	pages = sm_pages(fd);
	ASSERT_EQ(1, pages);
	bad = mmap(NULL, SM_PS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, bad);

	errno = 0;
	EXPECT_EQ(-1, pwrite(fd, bad, SM_PS, 2 * SM_PS));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(SM_PS, sm_get_size(fd)) TH_LOG("the failed write moved EOF");
	EXPECT_EQ(pages, sm_pages(fd)) TH_LOG("the failed write left a page behind");
	errno = 0;
	EXPECT_EQ(-1, lseek(fd, SM_PS, SEEK_DATA));
	EXPECT_EQ(ENXIO, errno);
	EXPECT_EQ(SM_PS, lseek(fd, 0, SEEK_END));
	EXPECT_EQ(0, pread(fd, &c, 1, 2 * SM_PS)) TH_LOG("byte 8192 is readable: %#x", (unsigned char)c);

	/* The same through write() at the file position. */
	ASSERT_EQ(2 * SM_PS, lseek(fd, 2 * SM_PS, SEEK_SET));
	errno = 0;
	EXPECT_EQ(-1, write(fd, bad, SM_PS));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(SM_PS, sm_get_size(fd));
	EXPECT_EQ(pages, sm_pages(fd));
	munmap(bad, SM_PS);
	munmap(data, SM_PS);
	close(fd);
}

/* memfd: a zero-length write on a write-sealed file returns 0, as on any file. */
TEST_F(review, zero_length_write_on_a_sealed_file_returns_0)
{
	static const __u32 seals[] = { SEALMEM_SEAL_WRITE, SEALMEM_SEAL_FUTURE_WRITE };
	char buf[8] = "abc";

	for (int k = 0; k < 2; k++) {
		int fd = sm_new();

		ASSERT_GE(fd, 0);
		ASSERT_EQ(3, write(fd, buf, 3));
		ASSERT_EQ(0, sm_add_seals(fd, seals[k]));
		errno = 0;
		EXPECT_EQ(0, write(fd, buf, 0)) TH_LOG("seal %#x: write of 0 bytes: %s", seals[k], strerror(errno));
		errno = 0;
		EXPECT_EQ(0, pwrite(fd, buf, 0, 1)) TH_LOG("seal %#x: pwrite of 0 bytes: %s", seals[k], strerror(errno));
		errno = 0;
		EXPECT_EQ(-1, write(fd, buf, 1));
		EXPECT_EQ(EPERM, errno);
		EXPECT_EQ(3, sm_get_size(fd));
		close(fd);
	}
}

/*
 * memfd: under GROW a write starting inside the file and crossing EOF writes what lies
 * within EOF and returns the short count; a write of which nothing is within EOF: EPERM.
 */
TEST_F(review, a_write_crossing_eof_under_grow_is_short)
{
	char *a = malloc(2 * SM_PS), *b = malloc(2 * SM_PS), *got = malloc(2 * SM_PS);
	int fd = sm_new();
	ssize_t n;

	ASSERT_TRUE(a && b && got);
	ASSERT_GE(fd, 0);
	memset(a, 'a', 2 * SM_PS);
	memset(b, 'b', 2 * SM_PS);
	ASSERT_EQ(2 * SM_PS, pwrite(fd, a, 2 * SM_PS, 0));
	ASSERT_EQ(0, sm_add_seals(fd, SEALMEM_SEAL_GROW));

	errno = 0;
	n = pwrite(fd, b, 2 * SM_PS, SM_PS);
	EXPECT_EQ(SM_PS, n) TH_LOG("pwrite of 8192 bytes at 4096 of an 8192-byte GROW-sealed file: %zd (%s)",
				n, n < 0 ? strerror(errno) : "");
	EXPECT_EQ(2 * SM_PS, sm_get_size(fd));
	ASSERT_EQ(2 * SM_PS, pread(fd, got, 2 * SM_PS, 0));
	EXPECT_EQ(0, memcmp(got, a, SM_PS)) TH_LOG("page 0 changed");
	EXPECT_EQ(0, memcmp(got + SM_PS, b, SM_PS)) TH_LOG("page 1 does not hold the written bytes");
	errno = 0;
	EXPECT_EQ(-1, pwrite(fd, b, 10, 2 * SM_PS));
	EXPECT_EQ(EPERM, errno) TH_LOG("a write entirely past EOF");
	EXPECT_EQ(2 * SM_PS, sm_get_size(fd));
	close(fd);
	free(a);
	free(b);
	free(got);
}

/* Watches the seals from a second thread: GET_SEALS, and a new PROT_READ shared mapping. */
struct seal_watch {
	int fd;
	atomic_int stop;
	atomic_long loops, seen_get, seen_mmap, mmap_fail;
	pthread_t th;
};

static void *seal_watch_run(void *arg)
{
	struct seal_watch *w = arg;

	while (!atomic_load(&w->stop)) {
		char *p = mmap(NULL, SM_PS, PROT_READ, MAP_SHARED, w->fd, 0);

		for (int k = 0; k < 8; k++)
			if (sm_get_seals(w->fd) & SEALMEM_SEAL_WRITE)
				atomic_fetch_add(&w->seen_get, 1);
		if (p == MAP_FAILED) {
			atomic_fetch_add(&w->mmap_fail, 1);
		} else {
			/* A mapping made while WRITE looked set lost VM_MAYWRITE: mprotect says so. */
			if (mprotect(p, SM_PS, PROT_READ | PROT_WRITE) && errno == EACCES)
				atomic_fetch_add(&w->seen_mmap, 1);
			munmap(p, SM_PS);
		}
		atomic_fetch_add(&w->loops, 1);
	}
	return NULL;
}

/* ADD_SEALS(WRITE) failing with EBUSY must never make WRITE visible, not even briefly. */
TEST_F_TIMEOUT(review, a_failed_write_seal_publishes_no_seal, 120)
{
	struct seal_watch w = { 0 };
	long attempts = 0, wrong = 0;
	int fd = sm_new(), last_errno = 0;
	char *wmap;
	double t0;

	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, SM_PS));
	wmap = mmap(NULL, SM_PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, wmap);
	wmap[0] = 'w';
	w.fd = fd;
	ASSERT_EQ(0, pthread_create(&w.th, NULL, seal_watch_run, &w));
	/* At least 2000 attempts and 2000 watcher rounds (at most 30 s). */
	for (t0 = sm_now(); sm_now() - t0 < 30 && (attempts < 2000 || atomic_load(&w.loops) < 2000); attempts++) {
		errno = 0;
		if (sm_add_seals(fd, SEALMEM_SEAL_WRITE) != -1 || errno != EBUSY) {
			wrong++;
			last_errno = errno;
		}
	}
	atomic_store(&w.stop, 1);
	pthread_join(w.th, NULL);
	TH_LOG("%ld ADD_SEALS attempts, %ld watcher rounds", attempts, atomic_load(&w.loops));
	EXPECT_EQ(0, wrong) TH_LOG("ADD_SEALS(WRITE) did not fail with EBUSY %ld times (last %s)", wrong, strerror(last_errno));
	EXPECT_EQ(0, atomic_load(&w.seen_get)) TH_LOG("GET_SEALS showed WRITE %ld times", atomic_load(&w.seen_get));
	EXPECT_EQ(0, atomic_load(&w.seen_mmap)) TH_LOG("%ld new shared mappings were made read-only for good (mprotect EACCES)",
						       atomic_load(&w.seen_mmap));
	EXPECT_EQ(0, atomic_load(&w.mmap_fail));
	EXPECT_EQ(0, sm_get_seals(fd));
	EXPECT_EQ('w', wmap[0]);
	munmap(wmap, SM_PS);
	close(fd);
}

/* ---- 3. module unload while a fault is still in the module (knob point 1; last) ------- */

static atomic_int toucher_tid;

static void *toucher_run(void *arg)
{
	volatile char *p = arg;

	atomic_store(&toucher_tid, (int)syscall(SYS_gettid));
	(void)*p; /* a lazy hole nobody fills */
	return NULL;
}

/* A debugfs counter read as a signed 64-bit value (a u64 that wrapped below 0 shows as -1). */
static long long counter_signed(const char *name)
{
	char path[256], buf[64];
	long long v = LLONG_MIN;
	FILE *f;

	snprintf(path, sizeof(path), SM_COUNTERS "%s", name);
	f = fopen(path, "r");
	if (!f)
		return v;
	if (fgets(buf, sizeof(buf), f))
		v = (long long)strtoull(buf, NULL, 10);
	fclose(f);
	return v;
}

/* finit_module(2) of the module file `ko`, no parameters (as insmod in run-in-vm.sh). */
static long reload_module(const char *ko)
{
	int kfd = open(ko, O_RDONLY | O_CLOEXEC), e;
	long ret;

	if (kfd < 0)
		return -1;
	ret = syscall(SYS_finit_module, kfd, "", 0);
	e = errno;
	close(kfd);
	errno = e;
	return ret;
}

/*
 * A child's thread A waits in a fault for a lazy page; thread B unmaps the mapping and
 * closes every sealmem fd of the child; the parent closes the handler fd, so A wakes and
 * sleeps at knob point 1 (state D, still in the module's fault handler). No file, fd or
 * mapping is left, but A still runs module code: the module must not unload.
 */
TEST_F_TIMEOUT(review, a_fault_waiting_for_a_lazy_page_pins_the_module, 120)
{
	struct { int tid; char what; } rep = { 0 };
	const char *ko = getenv("SEALMEM_KO");
	int fd, hfd, pp[2], status, err, unloaded;
	struct sealmem_msg m;
	long long files;
	struct pollfd pl;
	char state, sbuf[64];
	long ret;
	pid_t pid;

	if (geteuid() != 0)
		SKIP(return, "needs root (delete_module)");
	if (!knobs_present())
		SKIP(return, "no debug knobs (" KNOBS "): not a debug build with SEALMEM_DEBUG_KNOBS");
	if (!ko || access(ko, R_OK))
		SKIP(return, "SEALMEM_KO does not name the module file (needed to reload it)");
	fd = sm_new();
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, sm_set_size(fd, 4 * SM_PS));
	hfd = sm_fill_enable(fd, SEALMEM_FD_CLOEXEC);
	ASSERT_GE(hfd, 0) TH_LOG("FILL_ENABLE: %s", strerror(errno));
	ASSERT_EQ(0, pipe(pp));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		char *map;
		pthread_t a;

		alarm(60); /* never outlive the test */
		close(hfd);
		close(pp[0]);
		map = mmap(NULL, 4 * SM_PS, PROT_READ, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED || pthread_create(&a, NULL, toucher_run, map))
			_exit(10);
		while (!atomic_load(&toucher_tid))
			;
		rep.tid = atomic_load(&toucher_tid);
		rep.what = sm_wait_state(getpid(), rep.tid, "SD", 10) ? 'R' : 'F';
		/* A is asleep in the fault: nothing of this process refers to the file any more. */
		munmap(map, 4 * SM_PS);
		close(fd);
		if (write(pp[1], &rep, sizeof(rep)) != sizeof(rep))
			_exit(11);
		pthread_join(a, NULL);
		_exit(0);
	}
	close(pp[1]);
	close(fd);
	EXPECT_EQ(0, sm_read_msg(hfd, &m, 10000)) TH_LOG("no request for the faulting page");
	EXPECT_EQ(0, m.offset);
	pl = (struct pollfd){ .fd = pp[0], .events = POLLIN };
	if (poll(&pl, 1, 15000) != 1 || read(pp[0], &rep, sizeof(rep)) != sizeof(rep) || rep.what != 'R') {
		close(hfd);
		status = reap(pid, 10);
		ASSERT_TRUE(0) TH_LOG("the child never got ready (%c): %s", rep.what, status_str(status, sbuf, sizeof(sbuf)));
	}
	ASSERT_EQ(0, knob_set("delay_ms", 3000));
	ASSERT_EQ(0, knob_set("delay_at", 1));
	kmsg("sealmem_review: closing the handler fd; thread %d wakes into the 3 s delay at knob point 1\n", rep.tid);
	close(hfd); /* A wakes (no handler) and sleeps at point 1, in the module */
	state = sm_wait_state(pid, rep.tid, "D", 5);
	EXPECT_EQ('D', state) TH_LOG("the faulting thread never slept at knob point 1");
	errno = 0;
	ret = syscall(SYS_delete_module, "sealmem", O_NONBLOCK);
	err = errno;
	kmsg("sealmem_review: delete_module(sealmem) while thread %d (state %c) is in the fault: %ld (%s)\n",
	     rep.tid, state ? state : '?', ret, ret ? strerror(err) : "unloaded");
	unloaded = ret == 0;
	if (unloaded) {
		/* Put the module back at once for the rest of the suite (the faulting thread is
		 * still asleep in the old module's text), then fail. */
		ret = reload_module(ko);
		kmsg("sealmem_review: reloaded %s: %ld (%s)\n", ko, ret, ret ? strerror(errno) : "ok");
		EXPECT_EQ(0, ret) TH_LOG("reloading %s: %s", ko, strerror(errno));
		ret = 0;
	}
	EXPECT_EQ(-1, ret) TH_LOG("delete_module succeeded while a fault was still in the module");
	if (ret == -1) {
		EXPECT_TRUE(err == EBUSY || err == EAGAIN) TH_LOG("delete_module: %s", strerror(err));
	}
	/* A's access runs again on an unmapped address: SIGSEGV (or SIGBUS) is fine. */
	status = reap(pid, 15);
	TH_LOG("the child: %s", status_str(status, sbuf, sizeof(sbuf)));
	EXPECT_NE(-1, status);
	kmsg("sealmem_review: the child: %s\n", status_str(status, sbuf, sizeof(sbuf)));
	if (unloaded) {
		/*
		 * The faulting thread finished in the reloaded module and dropped its file there:
		 * that module's counters are off now. Unload and load once more (nothing is in
		 * flight now), so the rest of the suite starts from a clean module.
		 */
		files = counter_signed("files");
		TH_LOG("the reloaded module's \"files\" counter after the fault ended: %lld", files);
		kmsg("sealmem_review: the reloaded module's files counter: %lld; reloading it again\n", files);
		errno = 0;
		EXPECT_EQ(0, syscall(SYS_delete_module, "sealmem", O_NONBLOCK)) TH_LOG("delete_module: %s", strerror(errno));
		EXPECT_EQ(0, reload_module(ko)) TH_LOG("reloading %s: %s", ko, strerror(errno));
	}
	if (knobs_present())
		knob_set("delay_at", 0);
	close(pp[0]);
}

TEST_HARNESS_MAIN
