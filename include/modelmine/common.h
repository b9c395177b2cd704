/*
 * modelmine/common.h — the client library in common/ (libmmcommon.a): what the worker, the CLI and
 * the HTTP gateway would otherwise each write again.  For client programs, not the backend; the
 * values they agree on with the extension are in modelmine/protocol.h.
 *
 *   clock.c      the monotonic clock
 *   sigpipe.c    signals turned into bytes on a self-pipe, so that a poll() loop sees them
 *   errtext.c    libpq's and the server's texts on one line
 *   sqlstate.c   what an error's SQLSTATE means to a client: gone, busy, job lost, a setup problem
 *   setuphint.c  the pieces of a setup problem's hint: a role name as SQL writes it, the missing
 *                extension
 */
#ifndef MODELMINE_COMMON_H
#define MODELMINE_COMMON_H

#include <stdbool.h>
#include <stddef.h>

/* ---- clock.c ---- */
double		mm_now_s(void);

/* ---- sigpipe.c ---- */
int			mm_sig_pipe_open(const int *sigs, int nsigs);
int			mm_sig_pipe_fd(void);
int			mm_sig_pipe_drain(int minor);

/* ---- errtext.c ---- */
void		mm_one_line(char *s);

/* ---- sqlstate.c ---- */
typedef enum MmSetupProblem
{
	MM_SETUP_NONE = 0,
	MM_SETUP_NO_GRANT,			/* the login role lacks the extension's group role */
	MM_SETUP_NO_EXTENSION,		/* the database has no modelmine schema */
	MM_SETUP_OLD_EXTENSION		/* a modelmine function is missing: not installed, or older */
} MmSetupProblem;

bool		mm_sqlstate_lost(const char *sqlstate);
bool		mm_sqlstate_busy(const char *sqlstate);
bool		mm_missing_grant(const char *sqlstate, const char *hint, const char *source_file);
bool		mm_job_gone(const char *sqlstate, const char *hint, const char *source_file);
MmSetupProblem mm_setup_problem(const char *sqlstate, const char *message, const char *hint,
								const char *source_file);

/* ---- setuphint.c ---- */
void		mm_sql_identifier(char *out, size_t outlen, const char *name);
void		mm_no_extension_hint(char *out, size_t outlen, const char *dbname);

#endif							/* MODELMINE_COMMON_H */
