/* proxy/cmd_tunnel.c: `bmsgate tunnel [-n] -c FILE` (start-up shared with the guard in proxy/cmdline.c). */
#include "cmd/cmds.h"
#include "proxy/cmdline.h"
#include "proxy/proxy.h"

int cmd_tunnel(int argc, char **argv)
{
	static const struct proxy_cmd cmd = {
		.name = "tunnel",
		.kind = PROXY_TUNNEL,
		.check_help = "the configuration and the TLS files",
		.signals = "HUP reloads certificate, key, CA and CRL for new connections; TERM stops",
		.check = proxy_tunnel_check,
		.run = proxy_tunnel_run,
	};
	return proxy_cmd_main(&cmd, argc, argv);
}
