/* proxy/cmd_guard.c: placeholder until `bmsgate guard` lands; says so plainly and fails. */
#include <stdio.h>

#include "cmds.h"

int cmd_guard(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bmsgate guard: not built yet\n");
	return 2;
}
