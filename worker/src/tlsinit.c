/*
 * tlsinit.c — keep GnuTLS from initialising itself in a worker that never uses it.
 *
 * libpq and libcurl link libldap, which Debian builds against GnuTLS, and GnuTLS initialises its
 * crypto backend (and p11-kit) in a library constructor: about 2 MB of an idle worker's resident
 * memory.  The worker's TLS is OpenSSL (libpq, libcurl) and it never uses LDAP.  GnuTLS's
 * documented opt-out (the GNUTLS_SKIP_GLOBAL_INIT macro) is this function, which its constructor
 * looks up as a weak symbol; the Makefile exports it from the executable.  libldap calls
 * gnutls_global_init() itself before any TLS of its own, so nothing is left uninitialised.
 */

int			_gnutls_global_init_skip(void);

/* Read by GnuTLS's library constructor: nonzero skips its implicit gnutls_global_init(). */
int
_gnutls_global_init_skip(void)
{
	return 1;
}
