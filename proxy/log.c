/* proxy/log.c: diagnostics to stderr (one line, prefixed) or syslog (daemon facility). */
#include <stdarg.h>
#include <stdio.h>

#include "proxy/log.h"

static const char *log_ident = "bmsgate";
static bool log_syslog;

void proxy_log_init(const char *ident, bool use_syslog)
{
	log_ident = ident;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void proxy_log(int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (log_syslog) {
		vsyslog(prio, fmt, ap);
	} else {
		const char *lvl = prio <= LOG_ERR ? "error: " : prio == LOG_WARNING ? "warning: " : "";
		char line[1024];
		vsnprintf(line, sizeof(line), fmt, ap);
		/* one fprintf per line so that lines of concurrent processes do not interleave */
		fprintf(stderr, "%s: %s%s\n", log_ident, lvl, line);
	}
	va_end(ap);
}
