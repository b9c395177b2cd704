/*
 * eiopacket.c — the parsing half of Engine.IO v4 and Socket.IO v5: bytes in, packets out, nothing
 * else (no sessions, no locks, no I/O).  The rules are those of the reference decoders, engine.io-
 * parser's decodePacket/decodePayload and socket.io-parser's Decoder.decodeString, made stricter
 * where the gateway echoes a part back (a namespace) or must store it (an ack id):
 *
 *   Engine.IO packet   <type>[data], type one of 0-6 or 'b' (base64 binary, polling only)
 *   Engine.IO payload  packets joined by \x1e (the record separator), polling only
 *   Socket.IO packet   <type>[<attachments>-][<namespace>,][<ack id>][<JSON>]
 *
 * Tested by api/tests/test_packets.c (every kind, and malformed input) and fuzzed by
 * api/tests/fuzz_packets.c.
 */
#include <string.h>

#include "eiopacket.h"

#define RS 0x1e					/* Engine.IO's record separator between packets of a payload */

/* ---- Engine.IO ---- */

/* The type of one Engine.IO packet, and its data after the type character; EIO_BAD when empty
 * or unknown (engine.io-parser's "error" packet). */
EioType
eio_packet_parse(const char *p, size_t len, EioPacket *out)
{
	out->type = EIO_BAD;
	out->data = p;
	out->len = 0;
	if (len == 0)
		return EIO_BAD;
	if ((p[0] < '0' || p[0] > '6') && p[0] != 'b')
		return EIO_BAD;
	out->type = (EioType) p[0];
	out->data = p + 1;
	out->len = len - 1;
	return out->type;
}

/*
 * The next packet of a polling payload, split as JavaScript's split("\x1e") does: *packet and *len
 * get the bytes up to the next separator or the end, and *cursor moves past it (NULL after the
 * last).  So "a\x1e\x1eb" is "a", "", "b"; "a\x1e" is "a", ""; "" is one empty packet.  Start with
 * *cursor at the payload (NULL: no payload at all); false once it is used up.
 */
bool
eio_payload_next(const char **cursor, const char *end, const char **packet, size_t *len)
{
	const char *p = *cursor;
	const char *sep;

	if (p == NULL || p > end)
		return false;
	sep = memchr(p, RS, (size_t) (end - p));
	*packet = p;
	*len = (size_t) ((sep ? sep : end) - p);
	*cursor = sep ? sep + 1 : NULL;
	return true;
}

/* Whether p is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF). */
bool
eio_utf8_valid(const char *p, size_t len)
{
	const unsigned char *s = (const unsigned char *) p;
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		size_t		n;
		unsigned	cp;

		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return false;		/* a continuation byte first, an overlong lead, or past U+10FFFF */
		if (len - i <= n)
			return false;		/* truncated */
		for (size_t k = 1; k <= n; k++)
		{
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
			(cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* ---- Socket.IO ---- */

/* Whether c is an ASCII digit (isdigit would depend on the locale). */
static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Whether an EVENT's name is one socket.io-parser refuses (RESERVED_EVENTS): the client's own. */
static bool
reserved_event(const char *name)
{
	static const char *const names[] = {"connect", "connect_error", "disconnect", "disconnecting",
	"newListener", "removeListener"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

/* socket.io-parser's isPayloadValid: what each type may carry (data NULL: no payload). */
static bool
payload_valid(SioType type, json_t *data)
{
	json_t	   *first;

	switch (type)
	{
		case SIO_CONNECT:
			return data == NULL || json_is_object(data);
		case SIO_DISCONNECT:
			return data == NULL;
		case SIO_CONNECT_ERROR:
			return json_is_string(data) || json_is_object(data);
		case SIO_EVENT:
		case SIO_BINARY_EVENT:
			first = json_array_get(data, 0);
			return json_is_array(data) &&
				(json_is_number(first) ||
				 (json_is_string(first) && !reserved_event(json_string_value(first))));
		case SIO_ACK:
		case SIO_BINARY_ACK:
			return json_is_array(data);
	}
	return false;
}

/*
 * Decodes one Socket.IO packet (the data of an Engine.IO message).  NULL when it is one, with *out
 * filled (sio_packet_free it); otherwise why not, for the log, and *out holds nothing to free.
 */
const char *
sio_packet_parse(const char *p, size_t len, SioPacket *out)
{
	size_t		i = 1;
	json_error_t err;

	memset(out, 0, sizeof(*out));
	out->nsp = "/";
	out->nsp_len = 1;
	out->ack = -1;
	if (len == 0)
		return "parse error: empty Socket.IO packet";
	if (p[0] < '0' || p[0] > '6')
		return "parse error: unknown Socket.IO packet type";
	out->type = (SioType) (p[0] - '0');
	if (out->type == SIO_BINARY_EVENT || out->type == SIO_BINARY_ACK)
	{
		/* the number of binary attachments that follow, then '-' */
		while (i < len && is_digit(p[i]))
		{
			if (i > SIO_MAX_ATTACHMENT_DIGITS)
				return "parse error: illegal attachments";
			out->attachments = out->attachments * 10 + (p[i++] - '0');
		}
		if (i == 1 || i >= len || p[i] != '-')
			return "parse error: illegal attachments";
		i++;
	}
	if (i < len && p[i] == '/')
	{
		size_t		start = i;

		while (i < len && p[i] != ',')
		{
			/* printable ASCII only: a namespace is echoed back in CONNECT_ERROR */
			if (p[i] < 0x21 || p[i] > 0x7e || i - start >= SIO_MAX_NSP)
				return "parse error: bad namespace";
			i++;
		}
		out->nsp = p + start;
		out->nsp_len = i - start;
		if (i < len)
			i++;				/* the ',' */
	}
	if (i < len && is_digit(p[i]))
	{
		size_t		start = i;

		out->ack = 0;
		while (i < len && is_digit(p[i]))
		{
			if (i - start >= SIO_MAX_ACK_DIGITS)
				return "parse error: ack id too large";
			out->ack = out->ack * 10 + (p[i++] - '0');
		}
	}
	if (i < len)
	{
		/* JSON.parse takes any value and numbers of any size: so do we (integers as reals) */
		out->data = json_loadb(p + i, len - i, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &err);
		if (out->data == NULL)
			return "parse error: Socket.IO payload is not JSON";
	}
	if (!payload_valid(out->type, out->data))
	{
		sio_packet_free(out);
		return "parse error: invalid Socket.IO payload for its type";
	}
	return NULL;
}

/* Whether the packet is for the main namespace "/". */
bool
sio_packet_root(const SioPacket *pk)
{
	return pk->nsp_len == 1 && pk->nsp[0] == '/';
}

/* A CONNECT's token ({"token": "..."}, socket.io-client's auth option): NULL when there is none or
 * it is not a non-empty string (an anonymous CONNECT).  Valid until sio_packet_free. */
const char *
sio_connect_token(const SioPacket *pk)
{
	const char *t;

	if (pk->type != SIO_CONNECT)
		return NULL;
	t = json_string_value(json_object_get(pk->data, "token"));
	return t && t[0] ? t : NULL;
}

/* Releases what sio_packet_parse allocated. */
void
sio_packet_free(SioPacket *pk)
{
	json_decref(pk->data);
	pk->data = NULL;
}
