// SPDX-License-Identifier: GPL-2.0
/* The helpers of sealmem_lib.h. */
#include "sealmem_lib.h"

long long sm_counter(const char *name)
{
	char path[256], buf[64];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), SM_COUNTERS "%s", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		v = strtoll(buf, NULL, 10);
	fclose(f);
	return v;
}

ssize_t sm_fdinfo(int fd, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY);
	if (f < 0)
		return -1;
	n = read(f, buf, len - 1);
	close(f);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

int sm_fdinfo_field(const char *info, const char *key, char *out, size_t len)
{
	char pat[64];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\n%s:\t", key);
	p = strstr(info, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	e = strchr(p, '\n');
	if (!e || (size_t)(e - p) >= len)
		return -1;
	memcpy(out, p, e - p);
	out[e - p] = '\0';
	return 0;
}

int sm_send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, x = 'f';
	struct iovec io = { &x, 1 };
	struct msghdr mh = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

int sm_recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))], x;
	struct iovec io = { &x, 1 };
	struct msghdr mh = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &mh, 0) != 1 || !(c = CMSG_FIRSTHDR(&mh)) || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

void sm_msleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

double sm_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

long long sm_fdinfo_num(int fd, const char *key)
{
	char info[4096], v[64];

	if (sm_fdinfo(fd, info, sizeof(info)) <= 0 || sm_fdinfo_field(info, key, v, sizeof(v)))
		return -1;
	return strtoll(v, NULL, 10);
}

int sm_ended(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return SM_KILLED(WTERMSIG(status));
	return -1;
}

int sm_new(void)
{
	return open(SM_DEV, O_RDWR | O_CLOEXEC);
}

int sm_set_size(int fd, __u64 size)
{
	return ioctl(fd, SEALMEM_IOC_SET_SIZE, &size);
}

long long sm_get_size(int fd)
{
	__u64 size;

	if (ioctl(fd, SEALMEM_IOC_GET_SIZE, &size))
		return -1;
	return (long long)size;
}

int sm_add_seals(int fd, __u32 seals)
{
	return ioctl(fd, SEALMEM_IOC_ADD_SEALS, &seals);
}

int sm_get_seals(int fd)
{
	__u32 seals;

	if (ioctl(fd, SEALMEM_IOC_GET_SEALS, &seals))
		return -1;
	return (int)seals;
}

int sm_punch(int fd, __u64 offset, __u64 len)
{
	struct sealmem_range r = { .offset = offset, .len = len };

	return ioctl(fd, SEALMEM_IOC_PUNCH_HOLE, &r);
}

int sm_view(int fd, unsigned long flags)
{
	return ioctl(fd, SEALMEM_IOC_VIEW, flags);
}

long long sm_pages(int fd)
{
	char info[1024], v[32];

	if (sm_fdinfo(fd, info, sizeof(info)) <= 0 ||
	    sm_fdinfo_field(info, "pages", v, sizeof(v)))
		return -1;
	return strtoll(v, NULL, 10);
}

/* Touching memory that may raise SIGBUS (sm_touch). */
static sigjmp_buf sm_jmp;
static volatile sig_atomic_t sm_signo;

static void sm_sig(int sig)
{
	sm_signo = sig;
	siglongjmp(sm_jmp, 1);
}

int sm_touch(volatile char *p, int write, char *out)
{
	struct sigaction sa = { .sa_handler = sm_sig }, obus, osegv;
	int sig = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &obus);
	sigaction(SIGSEGV, &sa, &osegv);
	sm_signo = 0;
	if (sigsetjmp(sm_jmp, 1) == 0) {
		if (write)
			*p = out ? *out : 'w';
		else if (out)
			*out = *p;
		else
			(void)*p;
	} else {
		sig = sm_signo;
	}
	sigaction(SIGBUS, &obus, NULL);
	sigaction(SIGSEGV, &osegv, NULL);
	return sig;
}

void sm_pattern(char *buf, size_t len, unsigned int seed, size_t off)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (char)(((off + i) * 131 + seed * 7 + ((off + i) >> 12)) & 0xff);
}

int sm_fill_enable(int fd, unsigned long flags)
{
	return ioctl(fd, SEALMEM_IOC_FILL_ENABLE, flags);
}

int sm_copy_flags(int hfd, __u64 off, const void *src, __u64 len, __u64 flags, __s64 *done)
{
	struct sealmem_copy c = { .offset = off, .src = (__u64)(uintptr_t)src, .len = len, .flags = flags };
	int ret = ioctl(hfd, SEALMEM_IOC_COPY, &c);

	if (done)
		*done = c.copy;
	return ret;
}

int sm_copy(int hfd, __u64 off, const void *src, __u64 len, __s64 *done)
{
	return sm_copy_flags(hfd, off, src, len, 0, done);
}

char *sm_make_src(size_t len, unsigned int seed)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p != MAP_FAILED)
		sm_pattern(p, len, seed, 0);
	return p;
}

int sm_read_msg(int hfd, struct sealmem_msg *m, int timeout_ms)
{
	struct pollfd p = { .fd = hfd, .events = POLLIN };

	if (poll(&p, 1, timeout_ms) != 1 || !(p.revents & POLLIN))
		return -1;
	return read(hfd, m, sizeof(*m)) == (ssize_t)sizeof(*m) ? 0 : -1;
}

char sm_task_state(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

char sm_wait_state(pid_t pid, pid_t tid, const char *states, double timeout_s)
{
	double t0 = sm_now();

	do {
		char s = sm_task_state(pid, tid);

		if (s && strchr(states, s))
			return s;
		sm_msleep(5);
	} while (sm_now() - t0 < timeout_s);
	return 0;
}

long long sm_settled_gauge(const char *name)
{
	long long v = sm_counter(name);

	for (int i = 0; v != 0 && i < 200; i++) {
		sm_msleep(10);
		v = sm_counter(name);
	}
	return v;
}

int sm_gauges_before_unload(void)
{
	long long files = sm_settled_gauge("files"), pages = sm_settled_gauge("pages");

	printf("# SEALMEM-GAUGES before unload: files=%lld pages=%lld\n", files, pages);
	fflush(stdout);
	return files == 0 && pages == 0 ? 0 : -1;
}

int sm_unload(void)
{
	int leaked = sm_gauges_before_unload() != 0;

	if (syscall(SYS_delete_module, "sealmem", O_NONBLOCK))
		return -1;
	return leaked;
}

int sm_load(const char *params)
{
	const char *ko = getenv("SEALMEM_KO");
	int kfd, ret, e;

	if (!ko) {
		errno = ENOENT;
		return -1;
	}
	kfd = open(ko, O_RDONLY | O_CLOEXEC);
	if (kfd < 0)
		return -1;
	ret = syscall(SYS_finit_module, kfd, params, 0);
	e = errno;
	close(kfd);
	errno = e;
	return ret ? -1 : 0;
}

int sm_reload(const char *params)
{
	int leaked;

	if (!getenv("SEALMEM_KO")) {
		errno = ENOENT;
		return -1;
	}
	leaked = sm_unload();
	if (leaked < 0 || sm_load(params))
		return -1;
	return leaked;
}

void *sm_splice_run(void *arg)
{
	struct sm_splicer *sp = arg;

	atomic_store(&sp->tid, (int)syscall(SYS_gettid));
	sp->ret = splice(sp->fd, &sp->off, sp->pipe_w, NULL, sp->len, 0);
	sp->err = errno;
	atomic_store(&sp->done, 1);
	return NULL;
}

/* A hand-made io_uring: raw system calls, rings mapped by hand (the tests are static). */

int sm_ring_setup(struct sm_ring *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = syscall(__NR_io_uring_setup, 4, &r->par);
	if (r->fd < 0)
		return -1;
	r->sq_len = r->par.sq_off.array + r->par.sq_entries * sizeof(__u32);
	r->cq_len = r->par.cq_off.cqes + r->par.cq_entries * sizeof(struct io_uring_cqe);
	r->sqes_len = r->par.sq_entries * sizeof(struct io_uring_sqe);
	r->sq = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
	r->cq = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (r->sq == MAP_FAILED || r->cq == MAP_FAILED || r->sqes == MAP_FAILED)
		return -1;
	return 0;
}

void sm_ring_close(struct sm_ring *r)
{
	if (r->sq && r->sq != MAP_FAILED)
		munmap(r->sq, r->sq_len);
	if (r->cq && r->cq != MAP_FAILED)
		munmap(r->cq, r->cq_len);
	if (r->sqes && r->sqes != MAP_FAILED)
		munmap(r->sqes, r->sqes_len);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

/* Submits one SQE and waits for its completion; the CQE's res, or INT_MIN on failure. */
int sm_ring_run(struct sm_ring *r, const struct io_uring_sqe *sqe)
{
	unsigned int *sq_tail = (unsigned int *)((char *)r->sq + r->par.sq_off.tail);
	unsigned int *sq_mask = (unsigned int *)((char *)r->sq + r->par.sq_off.ring_mask);
	unsigned int *sq_array = (unsigned int *)((char *)r->sq + r->par.sq_off.array);
	unsigned int *cq_head = (unsigned int *)((char *)r->cq + r->par.cq_off.head);
	unsigned int *cq_tail = (unsigned int *)((char *)r->cq + r->par.cq_off.tail);
	unsigned int *cq_mask = (unsigned int *)((char *)r->cq + r->par.cq_off.ring_mask);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)((char *)r->cq + r->par.cq_off.cqes);
	unsigned int tail = *sq_tail, idx = tail & *sq_mask, head;
	int res;

	r->sqes[idx] = *sqe;
	sq_array[idx] = idx;
	__atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) != 1)
		return INT_MIN;
	head = *cq_head;
	if (head == __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE))
		return INT_MIN;
	res = cqes[head & *cq_mask].res;
	__atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

int sm_read_full(int fd, char *buf, size_t len)
{
	while (len) {
		ssize_t n = read(fd, buf, len);

		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}
