/**
 * @file
 * The process_* metrics, as the official Prometheus client libraries export them (Go's
 * process collector, Python's ProcessCollector): CPU seconds, resident and virtual memory,
 * open and maximum file descriptors, start time. Read from /proc/self at scrape time.
 *
 * Context: any thread (reads /proc; not for the hot path). Ownership: values only.
 */
#ifndef COREPIPE_CP_PROCSTAT_H
#define COREPIPE_CP_PROCSTAT_H

#include <stddef.h>
#include <stdint.h>

struct cp_procstat {
	double cpu_seconds;	 /**< user + system CPU time */
	uint64_t resident_bytes; /**< RSS */
	uint64_t virtual_bytes;	 /**< VSZ */
	uint64_t open_fds;
	uint64_t max_fds;	   /**< RLIMIT_NOFILE soft limit */
	double start_time_seconds; /**< since the Unix epoch */
};

/**
 * Parse the text of /proc/<pid>/stat (@p stat) given the clock ticks per second, the page size
 * and the boot time (btime of /proc/stat, Unix seconds): CPU, memory and start time.
 * @return 0, or -EINVAL when the text is not a stat line.
 */
int cp_procstat_parse(const char *stat, long ticks, long page_size, uint64_t btime,
		      struct cp_procstat *out);

/** Read this process's values. @return 0 or -errno (a field it cannot read stays 0). */
int cp_procstat_read(struct cp_procstat *out);

#endif
