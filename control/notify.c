/*
 * sd_notify wrappers (see notify.h).
 */
#include "control/notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

/* STATUS= values are one line: cut at the first newline. */
static void
notify_send(const char *state, const char *fmt, va_list ap)
{
	char status[256], msg[320];

	vsnprintf(status, sizeof(status), fmt, ap);
	status[strcspn(status, "\n")] = '\0';
	snprintf(msg, sizeof(msg), "%s%sSTATUS=%s", state, state[0] ? "\n" : "", status);
	/* unset_environment = 0: later notifications (reloads, stop) use the same socket. */
	sd_notify(0, msg);
}

void
cp_notify_ready(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify_send("READY=1", fmt, ap);
	va_end(ap);
}

void
cp_notify_reloading(void)
{
	sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
}

static void
reloaded(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify_send("READY=1", fmt, ap);
	va_end(ap);
}

void
cp_notify_reloaded(bool ok, const char *error)
{
	if (ok)
		reloaded("serving (configuration reloaded)");
	else
		reloaded("serving (reload rejected, nothing changed: %.*s)",
			 error ? (int)strcspn(error, "\n") : 0, error ? error : "");
}

void
cp_notify_stopping(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify_send("STOPPING=1", fmt, ap);
	va_end(ap);
}

void
cp_notify_status(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify_send("", fmt, ap);
	va_end(ap);
}
