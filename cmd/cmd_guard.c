/* cmd/cmd_guard.c: `bmsgate guard [-n] -c FILE` (start-up shared with the tunnel in cmd/gateway_cmd.c). */
#include "cmd/cmds.h"
#include "cmd/gateway_cmd.h"
#include "proxy/proxy.h"

int cmd_guard(int argc, char **argv)
{
	static const struct cmd_gateway cmd = {
		.name = "guard",
		.kind = PROXY_GUARD,
		.check_help = "the configuration, the policy and the TLS files",
		.signals = "HUP reloads policy, certificate, key, CA and CRL; TERM drains and stops",
		.check = proxy_guard_check,
		.run = proxy_guard_run,
	};
	return cmd_gateway_main(&cmd, argc, argv);
}
