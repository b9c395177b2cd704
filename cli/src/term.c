/*
 * term.c — the terminal: its size, the signals a command reacts to (as bytes on common/'s self-pipe,
 * so a poll() loop sees them), and top's full screen: alternate screen, hidden cursor, raw keyboard.
 * screen_leave restores all of it; it runs on every way out (normal return, exit(), SIGTERM, SIGINT
 * or SIGHUP through the loop, and crashes through a handler that restores, then re-raises).  While
 * the screen is taken, stderr goes to a temporary file, replayed once the terminal is back: a message
 * printed meanwhile (a database notice, the reason top stopped) would otherwise vanish with the
 * alternate screen.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

int
term_columns(int fd, int fallback)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return fallback;
}

int
term_rows(int fd, int fallback)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
		return ws.ws_row;
	return fallback;
}

/* ---- signals through a self-pipe (common/sigpipe.c) ---- */

/* SIGINT, SIGTERM, SIGHUP and SIGWINCH become bytes to read from sig_pipe_fd(). */
int
sig_pipe_open(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};

	return mm_sig_pipe_open(sigs, sizeof(sigs) / sizeof(sigs[0]));
}

/* Empties the pipe; returns a stopping signal if one came (else SIGWINCH if that came, else 0). */
int
sig_pipe_drain(void)
{
	return mm_sig_pipe_drain(SIGWINCH);
}

/* ---- full screen ---- */

static bool on_screen;
static struct termios saved_tty;
static bool have_tty;
static int	saved_stderr = -1;
static FILE *stderr_buffer;

#define SCREEN_ON  "\033[?1049h\033[?25l\033[H\033[2J"
#define SCREEN_OFF "\033[0m\033[?25h\033[?1049l"

static void
write_all(const char *s)
{
	size_t		n = strlen(s);

	while (n > 0)
	{
		ssize_t		w = write(STDOUT_FILENO, s, n);

		if (w <= 0 && errno != EINTR)
			return;
		if (w > 0)
		{
			s += w;
			n -= (size_t) w;
		}
	}
}

static void
screen_leave(void)
{
	if (!on_screen)
		return;
	on_screen = false;
	write_all(SCREEN_OFF);
	if (have_tty)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	if (saved_stderr >= 0)
	{
		dup2(saved_stderr, STDERR_FILENO);
		close(saved_stderr);
		saved_stderr = -1;
	}
}

/* After screen_leave, outside signal handlers: what was written to stderr meanwhile. */
static void
replay_stderr(void)
{
	char		buf[4096];
	size_t		n;

	if (stderr_buffer == NULL)
		return;
	rewind(stderr_buffer);
	while ((n = fread(buf, 1, sizeof(buf), stderr_buffer)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(stderr_buffer);
	stderr_buffer = NULL;
}

void
screen_close(void)
{
	screen_leave();
	replay_stderr();
}

static void
on_crash(int sig)
{
	screen_leave();				/* write() and tcsetattr() are async-signal-safe */
	signal(sig, SIG_DFL);
	raise(sig);
}

int
screen_enter(void)
{
	struct termios raw;
	struct sigaction sa;
	int			crashes[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGQUIT};

	if (tcgetattr(STDIN_FILENO, &saved_tty) != 0)
		return -1;
	have_tty = true;
	raw = saved_tty;
	/* no line editing, no echo; Ctrl-C arrives as a byte (ISIG off), read() never blocks */
	raw.c_lflag &= ~(tcflag_t) (ICANON | ECHO | ISIG | IEXTEN);
	raw.c_iflag &= ~(tcflag_t) (IXON | ICRNL);
	raw.c_cc[VMIN] = 0;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) != 0)
		return -1;
	on_screen = true;
	atexit(screen_close);
	if ((stderr_buffer = tmpfile()) != NULL && (saved_stderr = dup(STDERR_FILENO)) >= 0)
		dup2(fileno(stderr_buffer), STDERR_FILENO);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_crash;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(crashes) / sizeof(crashes[0]); i++)
		sigaction(crashes[i], &sa, NULL);
	write_all(SCREEN_ON);
	return 0;
}
