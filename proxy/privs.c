/* proxy/privs.c: becoming the service user after binding (guard and tunnel), and the same ids
 * for the start-up checks that try the user's files (proxy/preflight.c). */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "proxy/log.h"
#include "proxy/privs.h"

int proxy_become_user(uid_t uid, gid_t gid)
{
	/* the user's primary group only: the guard runs with exactly these ids, and the
	 * start-up checks (proxy/preflight.c) open its files with exactly these too */
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		return -errno;
	return 0;
}

int proxy_drop_privileges(const char *user)
{
	if (!user[0])
		return 0;
	if (geteuid() != 0) {
		proxy_log_info("not running as root: staying user %u (user %s ignored)", (unsigned)geteuid(), user);
		return 0;
	}
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		proxy_log_err("user %s: no such user", user);
		return -1;
	}
	int e = proxy_become_user(pw->pw_uid, pw->pw_gid);
	if (e < 0) {
		proxy_log_err("cannot become user %s: %s", user, strerror(-e));
		return -1;
	}
	if (setuid(0) == 0) {
		proxy_log_err("dropped to %s but could become root again: refusing to run", user);
		return -1;
	}
	proxy_log_info("running as user %s", user);
	return 0;
}
