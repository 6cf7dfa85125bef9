/*
 * process_* metrics from /proc/self (see procstat.h). Field numbers are proc(5)'s.
 */
#include "control/procstat.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int
cp_procstat_parse(const char *stat, long ticks, long page_size, uint64_t btime,
		  struct cp_procstat *out)
{
	/* "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields are
	 * counted from the last ')'. After it come field 3 (state) onwards. */
	const char *p = strrchr(stat, ')');
	unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
	long long rss = 0;
	int n;

	if (p == NULL || ticks <= 0)
		return -EINVAL;
	/* 3 state, 4-13 skipped, 14 utime, 15 stime, 16-21 skipped, 22 starttime, 23 vsize,
	 * 24 rss (pages). */
	n = sscanf(p + 1,
		   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
		   "%*d %llu %llu %lld",
		   &utime, &stime, &start, &vsize, &rss);
	if (n != 5)
		return -EINVAL;
	out->cpu_seconds = (double)(utime + stime) / (double)ticks;
	out->virtual_bytes = vsize;
	out->resident_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page_size : 0;
	out->start_time_seconds = (double)btime + (double)start / (double)ticks;
	return 0;
}

static uint64_t
boot_time(void)
{
	FILE *f = fopen("/proc/stat", "r");
	char line[256];
	unsigned long long bt = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "btime %llu", &bt) == 1)
			break;
	fclose(f);
	return bt;
}

static uint64_t
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	uint64_t n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0 ? n - 1 : 0; /* not the directory stream's own descriptor */
}

int
cp_procstat_read(struct cp_procstat *out)
{
	char buf[1024];
	struct rlimit rl;
	FILE *f;
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	f = fopen("/proc/self/stat", "r");
	if (f == NULL)
		return -errno;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	rc = cp_procstat_parse(buf, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), boot_time(), out);
	out->open_fds = count_fds();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		out->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
	return rc;
}
