/*
 * sigpipe.c — signals turned into bytes on a self-pipe, so that a program's one poll() loop wakes
 * for them and handles them in its own time, outside the handler.  One pipe per process: the
 * handler writes the signal's number, the loop polls mm_sig_pipe_fd() and reads them back with
 * mm_sig_pipe_drain().  Both ends are non-blocking and close on exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "modelmine/common.h"

static int	sig_pipe[2] = {-1, -1};

/* The handler: one byte per signal; a full pipe drops it, as the loop is awake already. */
static void
on_signal(int sig)
{
	int			saved = errno;
	char		ch = (char) sig;

	if (write(sig_pipe[1], &ch, 1) < 0)
	{
		/* pipe full: the loop is awake already */
	}
	errno = saved;
}

/*
 * Catches sigs[0..nsigs-1] from now on: each arrival becomes a byte on the pipe.  Interrupted
 * system calls restart (SA_RESTART); poll() never does, so the loop still wakes at once.  0, or -1
 * when no pipe could be made (errno says why).
 */
int
mm_sig_pipe_open(const int *sigs, int nsigs)
{
	struct sigaction sa;

	if (pipe(sig_pipe) != 0)
		return -1;
	for (int i = 0; i < 2; i++)
	{
		fcntl(sig_pipe[i], F_SETFL, fcntl(sig_pipe[i], F_GETFL) | O_NONBLOCK);
		fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (int i = 0; i < nsigs; i++)
		sigaction(sigs[i], &sa, NULL);
	return 0;
}

/* The end to poll() for POLLIN. */
int
mm_sig_pipe_fd(void)
{
	return sig_pipe[0];
}

/*
 * Empties the pipe.  Returns the last signal that came other than minor (a signal that only asks to
 * look again: SIGWINCH, SIGCHLD), else minor if that came, else 0.
 */
int
mm_sig_pipe_drain(int minor)
{
	char		buf[64];
	ssize_t		n;
	int			got = 0;

	while ((n = read(sig_pipe[0], buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != minor || got == 0)
				got = buf[i];
	return got;
}
