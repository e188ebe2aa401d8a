/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sealmem_lib: the helpers sealmem's C selftests share, and the fuzzer with them
 * (tools/fuzz). Every name has the prefix sm_ (SM_ for macros). Definitions: sealmem_lib.c.
 */
#ifndef SEALMEM_LIB_H
#define SEALMEM_LIB_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/io_uring.h>
#include <linux/sealmem.h>

#define SM_DEV "/dev/sealmem"
#define SM_COUNTERS "/sys/kernel/debug/sealmem/counters/"
/* The page size (the module's unit of pages, holes, fills and requests). */
#define SM_PS ((unsigned long)getpagesize())
/* An upper bound of SM_PS for buffers whose size must be a constant (struct members). */
#define SM_PS_MAX 65536UL

/* Expects `call` to fail with -1 and errno `err` (kselftest harness tests). */
#define SM_EXPECT_ERRNO(err, call) do { errno = 0; EXPECT_EQ(-1, (long)(call)); EXPECT_EQ(err, errno); } while (0)

/* What sm_ended() returns for a child that exited with `code` / was killed by `sig`. */
#define SM_EXITED(code) (code)
#define SM_KILLED(sig) (1000 + (sig))

/* Reads one of the module's debugfs counters; -1 on error. */
long long sm_counter(const char *name);

/* Reads /proc/self/fdinfo/FD into buf; returns its length or -1. */
ssize_t sm_fdinfo(int fd, char *buf, size_t len);

/* The value of "key:\t<value>\n" in an fdinfo text, copied to out; 0 if found. */
int sm_fdinfo_field(const char *info, const char *key, char *out, size_t len);

/* Sends `fd` over the unix socket `sock` (SCM_RIGHTS, one byte of data); 0 or -1. */
int sm_send_fd(int sock, int fd);

/* Receives an fd sent with sm_send_fd; the new fd, or -1. */
int sm_recv_fd(int sock);

/* Sleeps `ms` milliseconds (a bounded poll interval, never a stand-in for "X happened"). */
void sm_msleep(int ms);

/* CLOCK_MONOTONIC in seconds (deadlines). */
double sm_now(void);

/* A numeric field of `fd`'s fdinfo ("pending", "queued", "total", "pages"...); -1 on error. */
long long sm_fdinfo_num(int fd, const char *key);

/*
 * How a child ended, as one number to compare with SM_EXITED(code) or SM_KILLED(signal):
 * its exit code if it exited, 1000 + the signal if one killed it (-1 otherwise). The only
 * place the tests read a wait status: a child killed by SIGBUS must never pass for "exit 0".
 */
int sm_ended(int status);

/* A new sealmem file (open("/dev/sealmem", O_RDWR | O_CLOEXEC)); -1 on error. */
int sm_new(void);

/* The file ioctls, returning what ioctl() returns (GET_* return the value or -1). */
int sm_set_size(int fd, __u64 size);
long long sm_get_size(int fd);
int sm_add_seals(int fd, __u32 seals);
int sm_get_seals(int fd);
int sm_punch(int fd, __u64 offset, __u64 len);
int sm_view(int fd, unsigned long flags);

/* The "pages" line of a file's fdinfo; -1 on error. */
long long sm_pages(int fd);

/* Reads (or writes, if write) one byte at p; returns the signal raised, 0 if none. */
int sm_touch(volatile char *p, int write, char *out);

/* Fills buf with a pattern that identifies (seed, offset). */
void sm_pattern(char *buf, size_t len, unsigned int seed, size_t off);

/* FILL_ENABLE: the new handler fd, or -1. */
int sm_fill_enable(int fd, unsigned long flags);

/* COPY `len` bytes from `src` to `off`; `*done` (if given) gets the `copy` field. */
int sm_copy(int hfd, __u64 off, const void *src, __u64 len, __s64 *done);

/* The same with COPY flags (SEALMEM_FILL_DONTWAKE, SEALMEM_FILL_SKIP_EXISTING). */
int sm_copy_flags(int hfd, __u64 off, const void *src, __u64 len, __u64 flags, __s64 *done);

/* A private anonymous buffer of `len` bytes holding sm_pattern(seed); MAP_FAILED on error. */
char *sm_make_src(size_t len, unsigned int seed);

/* Reads one request from a handler fd, waiting at most timeout_ms; 0 on success. */
int sm_read_msg(int hfd, struct sealmem_msg *m, int timeout_ms);

/* The state letter of task `tid` of process `pid` (/proc/PID/task/TID/stat); 0 if gone. */
char sm_task_state(pid_t pid, pid_t tid);

/* Waits up to timeout_s until the task's state is one of `states`; returns it, or 0. */
char sm_wait_state(pid_t pid, pid_t tid, const char *states, double timeout_s);

/* A gauge ("files", "pages") once it is 0, or its value after 2 s (a last fput may be
 * deferred briefly, as the runner's settled_counter allows). */
long long sm_settled_gauge(const char *name);

/*
 * The module's gauges must be 0 before it is unloaded: unloading resets them, and what was
 * left behind before would be seen by nobody (the runner checks the gauges after each
 * program). Prints them in the line the runner reads
 *   # SEALMEM-GAUGES before unload: files=N pages=N
 * and returns 0 if both are 0, -1 otherwise. Every unload of a test goes through here.
 */
int sm_gauges_before_unload(void);

/*
 * Unloads sealmem (after sm_gauges_before_unload()): 0, 1 if the gauges were not 0 before
 * (unloaded all the same), -1 with errno if it could not be unloaded.
 */
int sm_unload(void);

/* Loads $SEALMEM_KO with module parameters `params`: 0, or -1 with errno. */
int sm_load(const char *params);

/*
 * Unloads sealmem and loads $SEALMEM_KO again with module parameters `params`. Returns 0 on
 * success; 1 if it reloaded but the gauges were not 0 before (a leak: the test must fail,
 * the runner sees it too); -1 with errno if unloading or loading failed.
 */
int sm_reload(const char *params);

/* A thread that splices `len` bytes of `fd` at `off` into `pipe_w` (sm_splice_run); it
 * publishes its tid first (for task-state checks) and `done` when the splice returned. */
struct sm_splicer {
	int fd, pipe_w;
	loff_t off;
	size_t len;
	ssize_t ret;
	int err;
	atomic_int tid, done;
	pthread_t th;
};
void *sm_splice_run(void *arg);

/* A hand-made io_uring (the tests are static: no liburing): raw system calls, rings mapped
 * by hand. sm_ring_setup: 0, or -1 with errno; sm_ring_run submits one SQE and waits for its
 * completion: the CQE's res, or INT_MIN on failure. */
struct sm_ring {
	int fd;
	struct io_uring_params par;
	void *sq, *cq;
	size_t sq_len, cq_len;
	struct io_uring_sqe *sqes;
	size_t sqes_len;
};
int sm_ring_setup(struct sm_ring *r);
void sm_ring_close(struct sm_ring *r);
int sm_ring_run(struct sm_ring *r, const struct io_uring_sqe *sqe);

/* Reads exactly len bytes from fd (a pipe that holds them already); 0 on success. */
int sm_read_full(int fd, char *buf, size_t len);

#endif /* SEALMEM_LIB_H */
