/*
 * util.c — small helpers more than one file of the extension needs: SHA-256, bytea and hex,
 * random hex strings, whitespace trimming, the name rule for trainers, runners and capabilities.
 */
#include "modelmine.h"

#include <openssl/evp.h>

/*
 * SHA-256 through OpenSSL's EVP interface with the algorithm fetched once per backend: EVP_sha256()
 * would look the implementation up again, under a lock, on every init (a tenth of the cost of
 * verifying a ledger block).  The context is kept for the backend's life and re-initialised per
 * hash, so an error between init and final leaks nothing.
 */
void
MmSha256(const void *data, size_t len, uint8 *out)
{
	static EVP_MD *md = NULL;
	static EVP_MD_CTX *ctx = NULL;
	unsigned int n = 0;

	if (md == NULL)
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (ctx == NULL)
		ctx = EVP_MD_CTX_new();
	if (md == NULL || ctx == NULL)
		elog(ERROR, "modelmine: OpenSSL SHA-256 is unavailable");
	if (EVP_DigestInit_ex(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, data, len) != 1 ||
		EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != MM_SHA256_LEN)
		elog(ERROR, "modelmine: SHA-256 failed");
}

/* A new bytea holding n bytes. */
bytea *
MmBytea(const uint8 *bytes, int n)
{
	bytea	   *b = palloc(VARHDRSZ + n);

	SET_VARSIZE(b, VARHDRSZ + n);
	memcpy(VARDATA(b), bytes, n);
	return b;
}

/* Lower-case hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void
MmHex(const uint8 *bytes, int n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < n; i++)
	{
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}

/* nbytes strong random bytes as hex into out (2 * nbytes + 1 bytes). */
void
MmRandomHex(int nbytes, char *out)
{
	uint8		rnd[64];

	Assert(nbytes <= (int) sizeof(rnd));
	if (!pg_strong_random(rnd, nbytes))
		elog(ERROR, "modelmine: could not generate random bytes");
	MmHex(rnd, nbytes, out);
}

/* A space, tab or line break. */
static inline bool
IsBlank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* s without leading and trailing blanks (spaces, tabs, line breaks), trimmed in place. */
char *
MmTrim(char *s)
{
	char	   *e;

	while (IsBlank(*s))
		s++;
	e = s + strlen(s);
	while (e > s && IsBlank(e[-1]))
		e--;
	*e = '\0';
	return s;
}

/*
 * The name rule for trainers, runners and the names a node advertises: 1 to MM_NAME_MAX_CHARS
 * characters a-z, 0-9, _, - or ., starting with a letter or digit.
 */
bool
MmValidName(const char *s, int len)
{
	if (len < 1 || len > MM_NAME_MAX_CHARS ||
		!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (int i = 1; i < len; i++)
	{
		char		c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* The channel a job's progress and end are notified on: job:{id}:progress (protocol.h). */
char *
MmJobChannel(int64 job_id)
{
	return psprintf(MM_CHANNEL_JOB_PROGRESS_FMT, (long long) job_id);
}
