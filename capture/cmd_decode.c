/* capture/cmd_decode.c: placeholder until `bmsgate decode` lands; says so plainly and fails. */
#include <stdio.h>

#include "cmds.h"

int cmd_decode(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bmsgate decode: not built yet\n");
	return 2;
}
