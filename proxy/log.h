/* proxy/log.h: diagnostics of guard and tunnel, to stderr or syslog.
 * Separate from the audit trail, which is structured data in its own file. */
#ifndef BMS_PROXY_LOG_H
#define BMS_PROXY_LOG_H

#include <stdbool.h>
#include <syslog.h>

void proxy_log_init(const char *ident, bool use_syslog);
__attribute__((format(printf, 2, 3))) void proxy_log(int prio, const char *fmt, ...);

#define proxy_log_err(...) proxy_log(LOG_ERR, __VA_ARGS__)
#define proxy_log_warn(...) proxy_log(LOG_WARNING, __VA_ARGS__)
#define proxy_log_info(...) proxy_log(LOG_INFO, __VA_ARGS__)

#endif
