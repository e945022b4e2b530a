/* proxy/privs.h: dropping root after binding. */
#ifndef BMS_PROXY_PRIVS_H
#define BMS_PROXY_PRIVS_H

#include <sys/types.h>

#include "base/attr.h"

/* After binding: become `user` when running as root ("" = stay). Refuses to go on
 * when root could be regained. */
BMS_WUR int proxy_drop_privileges(const char *user);
/* setgroups(primary group only), setgid, setuid: what the drop does. 0 or -errno. */
BMS_WUR int proxy_become_user(uid_t uid, gid_t gid);

#endif
