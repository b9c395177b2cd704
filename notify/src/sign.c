/*
 * sign.c — the webhook signature, in the style Stripe and GitHub use: HMAC-SHA256 under the
 * webhook's secret over "<unix time>.<body>", sent as "ModelMine-Signature: t=<time>,v1=<hex>".
 * Signing the time with the body lets a receiver refuse replays older than a few minutes.
 */
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

/* Hex digits to bytes; -1 unless the text is an even number of hex digits. */
static int
unhex(const char *hex, unsigned char *out, size_t outlen)
{
	size_t		n = strlen(hex);

	if (n % 2 != 0 || n / 2 > outlen)
		return -1;
	for (size_t i = 0; i < n / 2; i++)
	{
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = (unsigned char) b;
	}
	return (int) (n / 2);
}

/* Writes "t=<t>,v1=<hex>" into out; -1 for a bad secret. */
int
nt_sign(const char *secret_hex, long long t, const char *body, char *out, size_t outlen)
{
	unsigned char key[128],
				mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	int			keylen = unhex(secret_hex ? secret_hex : "", key, sizeof(key));
	char		prefix[32];
	size_t		plen,
				blen = strlen(body),
				n;
	unsigned char *msg;

	if (keylen <= 0)
		return -1;
	plen = (size_t) snprintf(prefix, sizeof(prefix), "%lld.", t);
	msg = malloc(plen + blen);
	if (msg == NULL)
		return -1;
	memcpy(msg, prefix, plen);
	memcpy(msg + plen, body, blen);
	if (HMAC(EVP_sha256(), key, keylen, msg, plen + blen, mac, &maclen) == NULL)
	{
		free(msg);
		return -1;
	}
	free(msg);
	n = (size_t) snprintf(out, outlen, "t=%lld,v1=", t);
	for (unsigned int i = 0; i < maclen && n + 2 < outlen; i++)
		n += (size_t) snprintf(out + n, outlen - n, "%02x", mac[i]);
	return 0;
}
