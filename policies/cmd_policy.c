/* policies/cmd_policy.c: placeholder until `bmsgate policy` lands; says so plainly and fails. */
#include <stdio.h>

#include "cmds.h"

int cmd_policy(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bmsgate policy: not built yet\n");
	return 2;
}
