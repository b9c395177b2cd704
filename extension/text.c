/*
 * text.c — rules for text that other people will see: names shown in listings, and input echoed
 * back in error messages.
 *
 * A name shown to others (a node name in nodes(), on a dashboard, in a terminal) must not carry
 * control characters (terminal escapes, line breaks that forge extra rows) or Unicode bidirectional
 * controls (which reorder what a reader sees: U+202E turns "gpu-exe.txt" around mid-name).  Clients
 * render text as text as well; refusing these at the door means no client has to be perfect.
 */
#include "modelmine.h"

#include "mb/pg_wchar.h"

/* Why a code point may not appear in a displayed name, or NULL when it may. */
static const char *
Forbidden(pg_wchar c)
{
	if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0))
		return "a control character";
	if (c == 0x061c || c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
		(c >= 0x2066 && c <= 0x2069))
		return "a bidirectional control";
	if (c == 0x2028 || c == 0x2029)
		return "a line or paragraph separator";
	if ((c >= 0x200b && c <= 0x200d) || c == 0x2060 || c == 0xfeff)
		return "an invisible formatting character";
	return NULL;
}

/* Raises 22023 naming the field when s holds a character a displayed name may not contain. */
void
MmCheckDisplayText(const char *field, const char *s)
{
	int			len = strlen(s);
	int			pos = 0;
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;

	for (const char *p = s; p < s + len; pos++)
	{
		int			n = utf8 ? pg_utf_mblen((const unsigned char *) p) : pg_mblen(p);
		pg_wchar	c = utf8 ? utf8_to_unicode((const unsigned char *) p) : (unsigned char) *p;
		const char *why = (utf8 || n == 1) ? Forbidden(c) : NULL;

		if (why)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid %s", field),
							errdetail("Character %d is U+%04X, %s.",
									  pos + 1, (unsigned int) c, why),
							errhint("Use printable characters only: no control characters, no "
									"bidirectional or invisible formatting.")));
		p += n;
	}
}

/*
 * A copy of len bytes of s fit to quote in an error message: at most max bytes, control characters
 * replaced by '?', so echoed input cannot forge lines or escape sequences in a client's output.
 */
char *
MmPrintable(const char *s, int len, int max)
{
	int			n = Min(len, max);
	char	   *out = palloc(n + 4);

	/* cut at a character boundary so the copy stays valid in the database encoding */
	n = pg_mbcliplen(s, len, n);
	for (int i = 0; i < n; i++)
		out[i] = ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	strcpy(out + n, n < len ? "..." : "");
	return out;
}
