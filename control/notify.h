/**
 * @file
 * Service manager notifications (systemd's sd_notify protocol, libsystemd): READY=1 once
 * corepiped serves, RELOADING=1 ... READY=1 around a configuration reload, STOPPING=1 when the
 * drain begins, and STATUS= lines saying what it is doing ("serving on ...", "draining N
 * calls", "reload failed: ..."). Under Type=notify systemd starts dependent units only after
 * READY, and `systemctl reload` returns once the reload is done.
 *
 * Without $NOTIFY_SOCKET (not started by systemd, or by a manager that does not speak the
 * protocol) every call is a no-op. The socket path in $NOTIFY_SOCKET is kept in the
 * environment, so that a reload's READY goes to the same place.
 *
 * Context: any control thread (sd_notify sends one datagram; it does not block on systemd).
 * Ownership: nothing retained.
 */
#ifndef COREPIPE_CP_NOTIFY_H
#define COREPIPE_CP_NOTIFY_H

#include <stdbool.h>

/** READY=1 with a STATUS= line (printf-style). */
void cp_notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** RELOADING=1: a reload begins (SIGHUP or Admin/ReloadConfig). */
void cp_notify_reloading(void);

/**
 * The reload ended: READY=1 again, with STATUS= saying whether it applied (@p ok) or what was
 * wrong (@p error, first line).
 */
void cp_notify_reloaded(bool ok, const char *error);

/** STOPPING=1 with a STATUS= line: the drain begins. */
void cp_notify_stopping(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** A STATUS= line alone. */
void cp_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
