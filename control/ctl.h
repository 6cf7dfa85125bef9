/**
 * @file
 * The control thread: the one thread of corepiped that may block. It takes the process's
 * signals (signalfd: SIGTERM/SIGINT start the graceful shutdown, a second one exits at once;
 * SIGHUP reloads the configuration) and runs jobs other threads give it: a reload asked for
 * by Admin/ReloadConfig, which reads files (a FIFO or a slow disk must never stall a front end),
 * and Admin writes through a registry store (store.h). It also answers a successor's takeover
 * of the listening sockets (takeover.h: the current offer's descriptors are in its poll set).
 * What a reload, a shutdown and the current takeover offer are is the program's: it passes
 * them in as handlers (control/main.c), so this module knows no server and links no gRPC.
 *
 * Context: cp_ctl_start/stop on the main thread (the signals must be blocked in every thread
 * first); cp_ctl_submit from any thread. The thread is a registered urcu-qsbr reader, offline
 * except inside registry and live-settings calls, and runs on the main lcore's CPU.
 * Ownership: a submitted job belongs to the control thread until its run() returns.
 */
#ifndef COREPIPE_CP_CTL_H
#define COREPIPE_CP_CTL_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

struct cp_takeover_offer;

/** The program's side of the control thread: each runs on it. */
struct cp_ctl_handlers {
	void (*reload)(void *arg);	      /**< SIGHUP */
	void (*shutdown)(void *arg, int sig); /**< the first SIGTERM/SIGINT: start the drain */
	/** The takeover offer to serve now, or NULL (asked before each poll). */
	struct cp_takeover_offer *(*offer)(void *arg);
	void *arg;
};

struct cp_ctl_job {
	void (*run)(struct cp_ctl_job *job); /**< on the control thread; may free the job */
	struct cp_ctl_job *next;
};

struct cp_ctl {
	struct cp_ctl_handlers h;
	pthread_t thread;
	bool started;
	int sfd; /**< signalfd */
	int efd; /**< eventfd: jobs waiting, or stop */
	bool stop;
	int signals; /**< shutdown signals seen */
	pthread_mutex_t lock;
	struct cp_ctl_job *jobs;
};

/**
 * Start the thread for @p sigs (blocked in every thread already), with @p h (copied; a NULL
 * handler: that event does nothing beyond the log line). A second shutdown signal exits the
 * process at once (_exit(1)). @return 0 or -errno.
 */
int cp_ctl_start(struct cp_ctl *ctl, const struct cp_ctl_handlers *h, const sigset_t *sigs);

/** Run @p job on the control thread soon. Context: any thread. */
void cp_ctl_submit(struct cp_ctl *ctl, struct cp_ctl_job *job);

/**
 * Stop and join the thread. Every job submitted before this call runs first, also one queued
 * while the thread's last pass was running; a job submitted by a job of that final pass does not.
 */
void cp_ctl_stop(struct cp_ctl *ctl);

#endif
