/*
 * entry.c — main: the program is cli_main (main.c), a function so that tests/fuzz_cli.c can call
 * it with generated arguments.
 */
#include "cli.h"

int
main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
