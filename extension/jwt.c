/*
 * jwt.c — HS256 JSON Web Tokens (RFC 7519 / RFC 7515 compact form), with PostgreSQL's own HMAC.
 *
 * We only ever issue one header, {"alg":"HS256","typ":"JWT"}, and verification requires exactly
 * that header, so "alg":"none" and algorithm-confusion tricks cannot apply.  The signature is
 * compared in constant time.  Claims are not interpreted here: the caller checks them against the
 * sessions table.
 */
#include "modelmine.h"

#include "common/base64.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "lib/stringinfo.h"
#include "port.h"

static const char jwt_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* base64url without padding (RFC 7515 section 2). */
static char *
Base64UrlEncode(const uint8 *src, int len)
{
	int			cap = pg_b64_enc_len(len) + 1;
	char	   *dst = palloc(cap);
	int			n = pg_b64_encode((const char *) src, len, dst, cap);

	if (n < 0)
		elog(ERROR, "modelmine: base64 encoding failed");
	while (n > 0 && dst[n - 1] == '=')
		n--;
	dst[n] = '\0';
	for (int i = 0; i < n; i++)
	{
		if (dst[i] == '+')
			dst[i] = '-';
		else if (dst[i] == '/')
			dst[i] = '_';
	}
	return dst;
}

/*
 * Decodes base64url (no padding); returns the length, or -1 on any character outside the
 * alphabet.
 */
static int
Base64UrlDecode(const char *src, int len, uint8 **out)
{
	char	   *std;
	int			padded = len + (4 - len % 4) % 4;
	int			cap,
				n;

	if (len % 4 == 1)
		return -1;
	std = palloc(padded + 1);
	for (int i = 0; i < len; i++)
	{
		char		c = src[i];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return -1;
		std[i] = c;
	}
	for (int i = len; i < padded; i++)
		std[i] = '=';
	std[padded] = '\0';
	cap = pg_b64_dec_len(padded) + 1;
	*out = palloc(cap);
	n = pg_b64_decode(std, padded, (char *) *out, cap);
	return n;
}

/* HMAC-SHA256 of data under key, into mac (32 bytes). */
static void
HmacSha256(const uint8 *key, size_t keylen, const char *data, size_t len, uint8 *mac)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL)
		elog(ERROR, "modelmine: out of memory creating HMAC context");
	if (pg_hmac_init(ctx, key, keylen) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_hmac_final(ctx, mac, PG_SHA256_DIGEST_LENGTH) < 0)
	{
		const char *err = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		elog(ERROR, "modelmine: HMAC-SHA256 failed: %s", err);
	}
	pg_hmac_free(ctx);
}

/* header.payload.signature for the given JSON payload. */
char *
MmJwtSign(const char *payload, const uint8 *key, size_t keylen)
{
	StringInfoData buf;
	uint8		mac[PG_SHA256_DIGEST_LENGTH];

	initStringInfo(&buf);
	appendStringInfoString(&buf, Base64UrlEncode((const uint8 *) jwt_header, strlen(jwt_header)));
	appendStringInfoChar(&buf, '.');
	appendStringInfoString(&buf, Base64UrlEncode((const uint8 *) payload, strlen(payload)));
	HmacSha256(key, keylen, buf.data, buf.len, mac);
	appendStringInfoChar(&buf, '.');
	appendStringInfoString(&buf, Base64UrlEncode(mac, sizeof(mac)));
	return buf.data;
}

/*
 * Returns the payload JSON of a correctly signed token, or NULL with *why set.  Never raises on
 * malformed input: a token is untrusted text.
 */
char *
MmJwtVerify(const char *token, const uint8 *key, size_t keylen, const char **why)
{
	const char *dot1,
			   *dot2;
	char	   *expect_header = Base64UrlEncode((const uint8 *) jwt_header, strlen(jwt_header));
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	uint8	   *sig,
			   *payload;
	int			siglen,
				plen;
	size_t		toklen = strlen(token);

	if (toklen > 8192)
	{
		*why = "The token is longer than any token ModelMine issues.";
		return NULL;
	}
	dot1 = strchr(token, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
	{
		*why = "A token has three dot-separated parts.";
		return NULL;
	}
	if ((size_t) (dot1 - token) != strlen(expect_header) ||
		memcmp(token, expect_header, dot1 - token) != 0)
	{
		*why = "The token header is not the HS256 header ModelMine issues.";
		return NULL;
	}
	siglen = Base64UrlDecode(dot2 + 1, strlen(dot2 + 1), &sig);
	/* base64 ignores a final character's unused bits: insist on the one canonical spelling */
	if (siglen != PG_SHA256_DIGEST_LENGTH ||
		strcmp(Base64UrlEncode(sig, PG_SHA256_DIGEST_LENGTH), dot2 + 1) != 0)
	{
		*why = "The token signature is malformed.";
		return NULL;
	}
	HmacSha256(key, keylen, token, dot2 - token, mac);
	if (timingsafe_bcmp(mac, sig, PG_SHA256_DIGEST_LENGTH) != 0)
	{
		*why = "The token signature does not match.";
		return NULL;
	}
	plen = Base64UrlDecode(dot1 + 1, dot2 - dot1 - 1, &payload);
	if (plen <= 0)
	{
		*why = "The token payload is malformed.";
		return NULL;
	}
	payload[plen] = '\0';
	return (char *) payload;
}
