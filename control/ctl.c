/*
 * The control thread (see ctl.h).
 */
#include "control/ctl.h"

#include "control/log.h"
#include "control/takeover.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <urcu-qsbr.h>

static void
run_jobs(struct cp_ctl *ctl)
{
	struct cp_ctl_job *j, *next, *rev = NULL;

	pthread_mutex_lock(&ctl->lock);
	j = ctl->jobs;
	ctl->jobs = NULL;
	pthread_mutex_unlock(&ctl->lock);
	for (; j != NULL; j = next) { /* oldest first */
		next = j->next;
		j->next = rev;
		rev = j;
	}
	for (j = rev; j != NULL; j = next) {
		next = j->next;
		j->run(j);
	}
}

static void
on_signal(struct cp_ctl *ctl, int sig)
{
	if (sig == SIGHUP) {
		cp_log(CP_LOG_INFO, "SIGHUP: reloading the configuration");
		if (ctl->h.reload != NULL)
			ctl->h.reload(ctl->h.arg);
		return;
	}
	if (++ctl->signals > 1) {
		cp_log(CP_LOG_WARN, "second signal: exiting now", CP_LF_INT("signal", sig));
		_exit(1);
	}
	cp_log(CP_LOG_INFO, "shutdown requested", CP_LF_STR("signal", strsignal(sig)));
	if (ctl->h.shutdown != NULL)
		ctl->h.shutdown(ctl->h.arg, sig);
}

static void *
ctl_main(void *arg)
{
	struct cp_ctl *ctl = arg;

	pthread_setname_np(pthread_self(), "cp-control");
	urcu_qsbr_register_thread();
	urcu_qsbr_thread_offline();
	for (;;) {
		struct pollfd p[4] = {{.fd = ctl->sfd, .events = POLLIN},
				      {.fd = ctl->efd, .events = POLLIN}};
		struct cp_takeover_offer *to =
		    ctl->h.offer != NULL ? ctl->h.offer(ctl->h.arg) : NULL;
		int tfd[2];
		unsigned nt = to != NULL ? cp_takeover_offer_fds(to, tfd) : 0;

		for (unsigned i = 0; i < nt; i++)
			p[2 + i] = (struct pollfd){.fd = tfd[i], .events = POLLIN};
		if (poll(p, 2 + nt, -1) < 0 && errno != EINTR)
			break;
		for (unsigned i = 0; i < nt; i++)
			if (p[2 + i].revents & (POLLIN | POLLHUP | POLLERR))
				cp_takeover_offer_event(to, tfd[i]);
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(ctl->sfd, &si, sizeof(si)) == sizeof(si))
				on_signal(ctl, (int)si.ssi_signo);
		}
		if (p[1].revents & POLLIN) {
			uint64_t v;

			if (read(ctl->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				break;
			run_jobs(ctl);
			/* Pairs with the release store in cp_ctl_stop: a job queued before that
			 * store, even while the pass above ran, is in the list the final pass
			 * below takes (the list's mutex orders it). */
			if (__atomic_load_n(&ctl->stop, __ATOMIC_ACQUIRE)) {
				run_jobs(ctl);
				break;
			}
		}
	}
	urcu_qsbr_unregister_thread();
	return NULL;
}

int
cp_ctl_start(struct cp_ctl *ctl, const struct cp_ctl_handlers *h, const sigset_t *sigs)
{
	int rc;

	memset(ctl, 0, sizeof(*ctl));
	ctl->h = *h;
	pthread_mutex_init(&ctl->lock, NULL);
	ctl->sfd = signalfd(-1, sigs, SFD_CLOEXEC);
	ctl->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctl->sfd < 0 || ctl->efd < 0) {
		rc = -errno;
		goto err;
	}
	rc = -pthread_create(&ctl->thread, NULL, ctl_main, ctl);
	if (rc != 0)
		goto err;
	ctl->started = true;
	return 0;
err:
	if (ctl->sfd >= 0)
		close(ctl->sfd);
	if (ctl->efd >= 0)
		close(ctl->efd);
	return rc;
}

void
cp_ctl_submit(struct cp_ctl *ctl, struct cp_ctl_job *job)
{
	uint64_t one = 1;

	pthread_mutex_lock(&ctl->lock);
	job->next = ctl->jobs;
	ctl->jobs = job;
	pthread_mutex_unlock(&ctl->lock);
	if (write(ctl->efd, &one, sizeof(one)) < 0)
		cp_log(CP_LOG_ERROR, "control thread: cannot queue a job");
}

void
cp_ctl_stop(struct cp_ctl *ctl)
{
	uint64_t one = 1;

	if (!ctl->started)
		return;
	__atomic_store_n(&ctl->stop, true, __ATOMIC_RELEASE);
	if (write(ctl->efd, &one, sizeof(one)) < 0)
		cp_log(CP_LOG_ERROR, "control thread: cannot stop it");
	pthread_join(ctl->thread, NULL);
	ctl->started = false;
	close(ctl->sfd);
	close(ctl->efd);
}
