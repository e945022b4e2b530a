/* sim/cmd_sim.c: placeholder until `bmsgate sim` lands; says so plainly and fails. */
#include <stdio.h>

#include "cmds.h"

int cmd_sim(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bmsgate sim: not built yet\n");
	return 2;
}
