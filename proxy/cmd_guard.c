/* proxy/cmd_guard.c: `bmsgate guard [-n] -c FILE` (start-up shared with the tunnel in proxy/cmdline.c). */
#include "cmd/cmds.h"
#include "proxy/cmdline.h"
#include "proxy/proxy.h"

int cmd_guard(int argc, char **argv)
{
	static const struct proxy_cmd cmd = {
		.name = "guard",
		.kind = PROXY_GUARD,
		.check_help = "the configuration, the policy and the TLS files",
		.signals = "HUP reloads policy, certificate, key, CA and CRL; TERM drains and stops",
		.check = proxy_guard_check,
		.run = proxy_guard_run,
	};
	return proxy_cmd_main(&cmd, argc, argv);
}
