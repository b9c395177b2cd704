/*
 * password.c — where signup and login get the password: the first line of stdin when asked with
 * --password-stdin, else MODELMINE_PASSWORD, else a prompt without echo when stdin is a terminal.
 * The echo is restored even when Ctrl-C interrupts the prompt.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

static int	tty_fd = -1;
static struct termios saved_tty;

/* SIGINT or SIGTERM at the prompt: gives the echo back, then dies of the signal. */
static void
restore_echo(int sig)
{
	tcsetattr(tty_fd, TCSAFLUSH, &saved_tty);
	if (write(tty_fd, "\n", 1) < 0)
	{
		/* nothing more to do on the way out */
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* One line from fd, without its newline; NULL at EOF before any character. */
static char *
read_line(int fd)
{
	Str			b = {0};
	char		ch;
	ssize_t		got;

	while ((got = read(fd, &ch, 1)) == 1 && ch != '\n')
		str_addn(&b, &ch, 1);
	if (got <= 0 && b.len == 0)
	{
		free(b.s);
		return NULL;
	}
	if (b.len > 0 && b.s[b.len - 1] == '\r')
		b.s[--b.len] = '\0';
	return b.s ? str_take(&b) : strdup("");
}

/* Asks on the terminal without echo; the line typed, or NULL. */
static char *
prompt(const char *text)
{
	struct termios quiet;
	struct sigaction sa = {0},
				old_int,
				old_term;
	char	   *pw;

	if (write(tty_fd, text, strlen(text)) < 0 || tcgetattr(tty_fd, &saved_tty) != 0)
		return NULL;
	quiet = saved_tty;
	quiet.c_lflag &= ~(tcflag_t) (ECHO | ECHONL);
	sa.sa_handler = restore_echo;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	tcsetattr(tty_fd, TCSAFLUSH, &quiet);
	pw = read_line(tty_fd);
	tcsetattr(tty_fd, TCSAFLUSH, &saved_tty);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (write(tty_fd, "\n", 1) < 0)
	{
		/* the line is cosmetic */
	}
	return pw;
}

/* The password from stdin, MODELMINE_PASSWORD or the terminal; NULL after a message. */
char *
read_password(Ctx *c, const char *email, bool from_stdin, bool confirm)
{
	const char *env = getenv("MODELMINE_PASSWORD");
	char		text[512];
	char	   *pw,
			   *again;

	if (from_stdin)
	{
		if ((pw = read_line(STDIN_FILENO)) == NULL || pw[0] == '\0')
		{
			free(pw);
			usage_error(c, "--password-stdin: stdin held no password");
			return NULL;
		}
		return pw;
	}
	if (env && env[0])
		return strdup(env);
	if (!isatty(STDIN_FILENO) || (tty_fd = open("/dev/tty", O_RDWR | O_CLOEXEC)) < 0)
	{
		usage_error(c, "no password: set MODELMINE_PASSWORD, pass --password-stdin, "
					"or run on a terminal");
		return NULL;
	}
	snprintf(text, sizeof(text), "Password for %s: ", email);
	pw = prompt(text);
	if (pw && confirm)
	{
		again = prompt("Repeat the password: ");
		if (again == NULL || strcmp(pw, again) != 0)
		{
			free(pw);
			pw = NULL;
			fprintf(stderr, "modelmine %s: the passwords differ; nothing was done\n", c->cmd);
		}
		free(again);
	}
	close(tty_fd);
	tty_fd = -1;
	if (pw && pw[0] == '\0')
	{
		free(pw);
		pw = NULL;
		fprintf(stderr, "modelmine %s: empty password; nothing was done\n", c->cmd);
	}
	return pw;
}
