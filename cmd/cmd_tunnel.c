/* cmd/cmd_tunnel.c: `bmsgate tunnel [-n] -c FILE` (start-up shared with the guard in cmd/gateway_cmd.c). */
#include "cmd/cmds.h"
#include "cmd/gateway_cmd.h"
#include "proxy/proxy.h"

int cmd_tunnel(int argc, char **argv)
{
	static const struct cmd_gateway cmd = {
		.name = "tunnel",
		.kind = PROXY_TUNNEL,
		.check_help = "the configuration and the TLS files",
		.signals = "HUP reloads certificate, key, CA and CRL for new connections; TERM stops",
		.check = proxy_tunnel_check,
		.run = proxy_tunnel_run,
	};
	return cmd_gateway_main(&cmd, argc, argv);
}
