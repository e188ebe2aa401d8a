/* SPDX-License-Identifier: GPL-2.0 */
/* Small helpers shared by sealmem's C selftests. */
#ifndef SEALMEM_SELFTEST_LIB_H
#define SEALMEM_SELFTEST_LIB_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/sealmem.h>

#define SEALMEM_DEV "/dev/sealmem"
#define SEALMEM_COUNTERS "/sys/kernel/debug/sealmem/counters/"

/* Reads one of the module's debugfs counters; -1 on error. */
static inline long long sealmem_counter(const char *name)
{
	char path[256], buf[64];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), SEALMEM_COUNTERS "%s", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		v = strtoll(buf, NULL, 10);
	fclose(f);
	return v;
}

/* Reads /proc/self/fdinfo/FD into buf; returns its length or -1. */
static inline ssize_t sealmem_fdinfo(int fd, char *buf, size_t len)
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

/* The value of "key:\t<value>\n" in an fdinfo text, copied to out; 0 if found. */
static inline int sealmem_fdinfo_field(const char *info, const char *key, char *out, size_t len)
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

#endif
