/* audit/cmd_audit.c: placeholder until `bmsgate audit` lands; says so plainly and fails. */
#include <stdio.h>

#include "cmds.h"

int cmd_audit(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bmsgate audit: not built yet\n");
	return 2;
}
