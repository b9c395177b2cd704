/* stubs.c — commands still being written (network, top); removed as they land. */
#include <stdio.h>

#include "cli.h"

const char *const network_sql = "";
const char *const job_statuses[5] = {"PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELED"};

static int
not_yet(Ctx *c, int argc, char **argv)
{
	(void) argc;
	(void) argv;
	fprintf(stderr, "modelmine %s: not implemented yet\n", c->cmd);
	return EXIT_ERROR;
}

int
cmd_network(Ctx *c, int argc, char **argv)
{
	return not_yet(c, argc, argv);
}

int
cmd_top(Ctx *c, int argc, char **argv)
{
	return not_yet(c, argc, argv);
}
