/* proxy/cmd_tunnel.c: placeholder until `bmsgate tunnel` lands; says so plainly and fails. */
#include <stdio.h>

#include "cmds.h"

int cmd_tunnel(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bmsgate tunnel: not built yet\n");
	return 2;
}
