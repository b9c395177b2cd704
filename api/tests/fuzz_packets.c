/*
 * fuzz_packets.c — libFuzzer target for the Socket.IO server's parsing (api/src/eiopacket.c): the
 * input is a polling payload, split on \x1e as eiohttp.c does; each packet is parsed as Engine.IO,
 * and the data of a message as Socket.IO, as sio.c does.  Besides what AddressSanitizer catches,
 * it checks what the parser promises: every part it returns lies inside the input, the packets of
 * a payload add up to the payload, and eio_utf8_valid agrees with Jansson's UTF-8 check.
 *
 *   make -C api fuzz                    60 s (FUZZ_SECONDS=N for longer; scripts/fuzz.sh)
 *   api/tests/fuzz_packets crash-...    replay what it found
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eiopacket.h"

/* Stops the run with what broke (libFuzzer saves the input). */
#define MUST(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_packets: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

/* Whether [p, p + len) lies inside [lo, hi). */
static int
inside(const char *p, size_t len, const char *lo, const char *hi)
{
	return p >= lo && p <= hi && len <= (size_t) (hi - p);
}

/* One Socket.IO packet, as sio.c handles an Engine.IO message's data. */
static void
fuzz_sio(const char *p, size_t len)
{
	SioPacket	pk;
	const char *why = sio_packet_parse(p, len, &pk);

	if (why)
	{
		MUST(pk.data == NULL);
		return;
	}
	MUST(pk.type >= SIO_CONNECT && pk.type <= SIO_BINARY_ACK);
	MUST(pk.ack >= -1 && pk.ack <= 999999999999999LL);
	MUST(pk.nsp_len >= 1 && pk.nsp_len <= SIO_MAX_NSP && pk.nsp[0] == '/');
	MUST(inside(pk.nsp, pk.nsp_len, p, p + len) || pk.nsp_len == 1);	/* or the default "/" */
	MUST(sio_packet_root(&pk) == (pk.nsp_len == 1));
	if (pk.type == SIO_CONNECT)
	{
		const char *token = sio_connect_token(&pk);

		MUST(token == NULL || token[0] != '\0');
	}
	sio_packet_free(&pk);
}

/* libFuzzer's entry point: one polling payload. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes, so reading past the end is ASan's to see */
	char	   *buf = malloc(size ? size : 1);
	const char *cursor,
			   *end,
			   *packet;
	size_t		len,
				total = 0;
	int			count = 0;
	json_t	   *j;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	cursor = buf;
	end = buf + size;
	while (eio_payload_next(&cursor, end, &packet, &len))
	{
		EioPacket	pk;
		EioType		t;

		MUST(inside(packet, len, buf, end));
		MUST(memchr(packet, 0x1e, len) == NULL);
		total += len;
		count++;
		t = eio_packet_parse(packet, len, &pk);
		MUST(t == pk.type);
		if (t != EIO_BAD)
			MUST(pk.data == packet + 1 && pk.len == len - 1);
		if (t == EIO_MESSAGE)
			fuzz_sio(pk.data, pk.len);
	}
	MUST(count >= 1 && total + (size_t) (count - 1) == size);	/* the separators are the rest */
	/* Jansson checks UTF-8 when making a string: the two must agree */
	j = json_stringn(buf, size);
	MUST((j != NULL) == eio_utf8_valid(buf, size));
	json_decref(j);
	/* the whole input as one Socket.IO packet too: no payload splitting in the way */
	fuzz_sio(buf, size);
	free(buf);
	return 0;
}
