/*
 * util.c — error-message helpers (see util.h).
 */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Writes a message into err when it is usable; always -1, for "return mm_err(...)". */
int
mm_err(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Copies src as one printable line of at most maxchars bytes (see util.h); returns dst. */
char *
mm_sanitize(char *dst, size_t dstlen, const char *src, size_t maxchars)
{
	size_t		n = 0;
	size_t		i;

	if (dstlen == 0)
		return dst;
	if (src == NULL)
		src = "";
	/* leave room for "..." and the terminator */
	if (maxchars + 4 > dstlen)
		maxchars = dstlen > 4 ? dstlen - 4 : 0;
	for (i = 0; src[i] != '\0' && n < maxchars; i++)
	{
		unsigned char c = (unsigned char) src[i];

		dst[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char) c;
	}
	if (src[i] != '\0')
	{
		/* do not leave half a UTF-8 sequence before the ellipsis */
		while (n > 0 && ((unsigned char) dst[n - 1] & 0xC0) == 0x80)
			n--;
		if (n > 0 && ((unsigned char) dst[n - 1] & 0xC0) == 0xC0)
			n--;
		if (dstlen - n >= 4)
		{
			memcpy(dst + n, "...", 3);
			n += 3;
		}
	}
	dst[n] = '\0';
	return dst;
}
