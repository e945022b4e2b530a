/* proxy/cmd_pki.c: placeholder until `bmsgate pki` lands; says so plainly and fails. */
#include <stdio.h>

#include "cmds.h"

int cmd_pki(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bmsgate pki: not built yet\n");
	return 2;
}
