/*
 * test_packets.c — the Socket.IO server's parsing (api/src/eiopacket.c): every Engine.IO packet
 * type, payloads split on \x1e, UTF-8, and every Socket.IO packet kind with its namespace, ack id
 * and JSON, then what must be refused: truncated packets, huge ack ids and attachment counts, bad
 * namespaces, invalid UTF-8, empty input.  The rules are socket.io-parser's and engine.io-parser's
 * (see eiopacket.c); where the gateway is stricter the test says why.
 */
#include "testutil.h"

#include "eiopacket.h"

/* Parses a NUL-terminated literal as an Engine.IO packet. */
static EioType
eio_type(const char *text, EioPacket *pk)
{
	return eio_packet_parse(text, strlen(text), pk);
}

/* Whether pk's data is exactly want. */
static bool
eio_data_is(const EioPacket *pk, const char *want)
{
	return pk->len == strlen(want) && memcmp(pk->data, want, pk->len) == 0;
}

/* Every Engine.IO type, with and without data; anything else is EIO_BAD. */
static void
test_eio_types(void)
{
	static const struct
	{
		const char *text;
		EioType		type;
		const char *data;
	}			cases[] = {
		{"0{\"sid\":\"x\"}", EIO_OPEN, "{\"sid\":\"x\"}"},
		{"1", EIO_CLOSE, ""},
		{"2", EIO_PING, ""},
		{"2probe", EIO_PING, "probe"},
		{"3", EIO_PONG, ""},
		{"3probe", EIO_PONG, "probe"},
		{"4", EIO_MESSAGE, ""},
		{"42[\"a\",1]", EIO_MESSAGE, "2[\"a\",1]"},
		{"5", EIO_UPGRADE, ""},
		{"6", EIO_NOOP, ""},
		{"bAQID", EIO_BINARY, "AQID"},
	};
	static const char *const bad[] = {"7", "9", "x", "B", " 4", "-1", "\x1e", "\xff", "\xc3\xa9"};
	EioPacket	pk;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		EioType		t = eio_type(cases[i].text, &pk);

		CHECK(t == cases[i].type && pk.type == t && eio_data_is(&pk, cases[i].data),
			  "%s: type %d, data %.*s", cases[i].text, (int) t, (int) pk.len, pk.data);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(eio_type(bad[i], &pk) == EIO_BAD && pk.type == EIO_BAD && pk.len == 0,
			  "\"%s\" is not an Engine.IO packet", bad[i]);
	CHECK(eio_packet_parse("", 0, &pk) == EIO_BAD, "an empty packet has no type");
	/* the length given is what counts, not a NUL: the input is not NUL-terminated */
	CHECK(eio_packet_parse("4hello", 1, &pk) == EIO_MESSAGE && pk.len == 0,
		  "length 1 of \"4hello\"");
	CHECK(eio_packet_parse("\0" "4", 2, &pk) == EIO_BAD, "a NUL type byte");
}

/* Splits a payload; the packets joined by '|' (empty ones show as ""), and their count. */
static int
split(const char *payload, size_t len, char *out, size_t outlen)
{
	const char *cur = payload,
			   *pkt;
	size_t		n;
	int			count = 0;

	out[0] = '\0';
	while (eio_payload_next(&cur, payload ? payload + len : NULL, &pkt, &n))
	{
		size_t		used = strlen(out);

		snprintf(out + used, outlen - used, "%s%.*s", count ? "|" : "", (int) n, pkt);
		count++;
	}
	return count;
}

/* \x1e splitting is JavaScript's split("\x1e"): every separator ends a packet. */
static void
test_payloads(void)
{
	static const struct
	{
		const char *payload;
		int			count;
		const char *joined;
	}			cases[] = {
		{"40", 1, "40"},
		{"40\x1e" "42[\"a\"]", 2, "40|42[\"a\"]"},
		{"2\x1e" "3\x1e" "6", 3, "2|3|6"},
		{"a\x1e\x1e" "b", 3, "a||b"},
		{"a\x1e", 2, "a|"},
		{"\x1e" "a", 2, "|a"},
		{"\x1e", 2, "|"},
		{"", 1, ""},
	};
	char		out[256],
				big[2000];
	int			n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		n = split(cases[i].payload, strlen(cases[i].payload), out, sizeof(out));
		CHECK(n == cases[i].count && strcmp(out, cases[i].joined) == 0,
			  "payload %zu: %d packets \"%s\"", i, n, out);
	}
	CHECK(split(NULL, 0, out, sizeof(out)) == 0, "no body at all is no packet");
	/* the length bounds the payload, not a NUL */
	n = split("40\x1e" "41", 3, out, sizeof(out));
	CHECK(n == 2 && strcmp(out, "40|") == 0, "3 bytes of 40 RS 41: %d \"%s\"", n, out);
	n = split("4\0" "2\x1e" "3", 5, out, sizeof(out));
	CHECK(n == 2, "a NUL inside a packet does not end it: %d", n);
	/* a thousand packets: "3", then 999 times RS "3" */
	big[0] = '3';
	for (int i = 0; i < 999; i++)
		memcpy(big + 1 + 2 * i, "\x1e" "3", 2);
	n = split(big, 1999, out, sizeof(out));
	CHECK(n == 1000, "1,000 pongs: %d packets", n);
}

/* UTF-8 as RFC 3629 has it. */
static void
test_utf8(void)
{
	static const char *const good[] = {"", "plain ascii", "caf\xc3\xa9", "\xe2\x82\xac",
		"\xf0\x9f\x98\x80", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf"};
	static const char *const bad[] = {
		"\x80",					/* a continuation byte first */
		"\xc0\xaf",				/* overlong '/' */
		"\xc1\xbf",				/* overlong */
		"\xe0\x80\xaf",			/* overlong */
		"\xf0\x80\x80\xaf",		/* overlong */
		"\xed\xa0\x80",			/* a UTF-16 surrogate (U+D800) */
		"\xed\xbf\xbf",			/* U+DFFF */
		"\xf4\x90\x80\x80",		/* U+110000 */
		"\xf5\x80\x80\x80",		/* no such lead byte */
		"\xff",
		"\xe2\x82",				/* truncated */
		"ok\xf0\x9f\x98",		/* truncated at the end */
		"\xc3\x28",				/* a lead byte, then not a continuation */
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(eio_utf8_valid(good[i], strlen(good[i])), "good %zu refused", i);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(!eio_utf8_valid(bad[i], strlen(bad[i])), "bad %zu accepted", i);
	CHECK(eio_utf8_valid("a\0b", 3), "NUL is a valid character");
	CHECK(!eio_utf8_valid("\xc3\xa9", 1), "the length cuts a sequence");
}

/* Parses a literal as a Socket.IO packet; NULL when it is one. */
static const char *
sio(const char *text, SioPacket *pk)
{
	return sio_packet_parse(text, strlen(text), pk);
}

/* Whether pk's namespace is want. */
static bool
nsp_is(const SioPacket *pk, const char *want)
{
	return pk->nsp_len == strlen(want) && memcmp(pk->nsp, want, pk->nsp_len) == 0;
}

/* Every Socket.IO packet kind, with and without namespace, ack id and payload. */
static void
test_sio_kinds(void)
{
	static const struct
	{
		const char *text;
		SioType		type;
		const char *nsp;
		long long	ack;
		int			attachments;
		json_type	data;		/* JSON_NULL here: no payload */
	}			cases[] = {
		{"0", SIO_CONNECT, "/", -1, 0, JSON_NULL},
		{"0{}", SIO_CONNECT, "/", -1, 0, JSON_OBJECT},
		{"0{\"token\":\"abc\"}", SIO_CONNECT, "/", -1, 0, JSON_OBJECT},
		{"0/admin,", SIO_CONNECT, "/admin", -1, 0, JSON_NULL},
		{"0/admin", SIO_CONNECT, "/admin", -1, 0, JSON_NULL},	/* no ',' at the end: fine */
		{"0/admin,{\"token\":\"t\"}", SIO_CONNECT, "/admin", -1, 0, JSON_OBJECT},
		{"1", SIO_DISCONNECT, "/", -1, 0, JSON_NULL},
		{"1/admin,", SIO_DISCONNECT, "/admin", -1, 0, JSON_NULL},
		{"2[\"hello\"]", SIO_EVENT, "/", -1, 0, JSON_ARRAY},
		{"2[\"hello\",{\"a\":1},[2],\"x\",null,true]", SIO_EVENT, "/", -1, 0, JSON_ARRAY},
		{"2[42,\"a number names it too\"]", SIO_EVENT, "/", -1, 0, JSON_ARRAY},
		{"217[\"hello\"]", SIO_EVENT, "/", 17, 0, JSON_ARRAY},
		{"20[\"hello\"]", SIO_EVENT, "/", 0, 0, JSON_ARRAY},
		{"2007[\"hello\"]", SIO_EVENT, "/", 7, 0, JSON_ARRAY},
		{"2/chat,5[\"msg\"]", SIO_EVENT, "/chat", 5, 0, JSON_ARRAY},
		{"2[\"job:42:progress\",{\"pct\":1}]", SIO_EVENT, "/", -1, 0, JSON_ARRAY},
		{"2[\"caf\xc3\xa9\"]", SIO_EVENT, "/", -1, 0, JSON_ARRAY},
		{"2[\"x\",123456789012345678901234567890]", SIO_EVENT, "/", -1, 0, JSON_ARRAY},
		{"2[\"x\"] \n", SIO_EVENT, "/", -1, 0, JSON_ARRAY},	/* JSON.parse allows white space */
		{"3[]", SIO_ACK, "/", -1, 0, JSON_ARRAY},
		{"312[\"ok\"]", SIO_ACK, "/", 12, 0, JSON_ARRAY},
		{"3/chat,12[]", SIO_ACK, "/chat", 12, 0, JSON_ARRAY},
		{"4{\"message\":\"no\"}", SIO_CONNECT_ERROR, "/", -1, 0, JSON_OBJECT},
		{"4\"no\"", SIO_CONNECT_ERROR, "/", -1, 0, JSON_STRING},
		{"51-[\"up\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, "/", -1, 1, JSON_ARRAY},
		{"52-/chat,9[\"up\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, "/chat", 9, 2,
		JSON_ARRAY},
		{"61-3[{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_ACK, "/", 3, 1, JSON_ARRAY},
	};
	SioPacket	pk;
	const char *why;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		why = sio(cases[i].text, &pk);
		CHECK(why == NULL, "%s: %s", cases[i].text, why);
		if (why)
			continue;
		CHECK(pk.type == cases[i].type && nsp_is(&pk, cases[i].nsp) && pk.ack == cases[i].ack &&
			  pk.attachments == cases[i].attachments &&
			  (cases[i].data == JSON_NULL ? pk.data == NULL
			   : json_typeof(pk.data) == cases[i].data),
			  "%s: type %d nsp %.*s ack %lld attachments %d", cases[i].text, (int) pk.type,
			  (int) pk.nsp_len, pk.nsp, pk.ack, pk.attachments);
		CHECK(sio_packet_root(&pk) == (strcmp(cases[i].nsp, "/") == 0), "%s: root", cases[i].text);
		sio_packet_free(&pk);
		CHECK(pk.data == NULL, "freed");
	}
	/* the length given is what counts */
	CHECK(sio_packet_parse("2[\"x\"]garbage", 6, &pk) == NULL && pk.type == SIO_EVENT,
		  "6 bytes of a longer buffer");
	sio_packet_free(&pk);
}

/* A CONNECT's token: a non-empty string under "token", else anonymous. */
static void
test_connect_token(void)
{
	static const struct
	{
		const char *text;
		const char *token;		/* NULL: anonymous */
	}			cases[] = {
		{"0", NULL},
		{"0{}", NULL},
		{"0{\"token\":\"eyJ.abc.def\"}", "eyJ.abc.def"},
		{"0{\"token\":\"\"}", NULL},
		{"0{\"token\":5}", NULL},
		{"0{\"token\":null}", NULL},
		{"0{\"other\":\"x\",\"token\":\"t\"}", "t"},
		{"0/admin,{\"token\":\"t\"}", "t"},
	};
	SioPacket	pk;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const char *t;

		CHECK(sio(cases[i].text, &pk) == NULL, "%s parses", cases[i].text);
		t = sio_connect_token(&pk);
		CHECK(cases[i].token ? t && strcmp(t, cases[i].token) == 0 : t == NULL,
			  "%s: token %s", cases[i].text, t ? t : "(none)");
		sio_packet_free(&pk);
	}
	CHECK(sio("2[\"token\"]", &pk) == NULL && sio_connect_token(&pk) == NULL,
		  "only a CONNECT has one");
	sio_packet_free(&pk);
}

/* What must be refused, each with the reason the log would give. */
static void
test_sio_malformed(void)
{
	static const struct
	{
		const char *text;
		const char *why;		/* a word of the reason */
	}			cases[] = {
		/* empty and unknown types */
		{"", "empty"},
		{"7", "type"},
		{"9[\"x\"]", "type"},
		{"x", "type"},
		{"/0", "type"},
		{"\xff", "type"},
		/* truncated */
		{"2", "payload"},		/* an EVENT needs its arguments */
		{"217", "payload"},
		{"2/chat,", "payload"},
		{"2[\"hel", "JSON"},
		{"2[\"hello\",{\"a\":", "JSON"},
		{"0{\"token\":\"abc", "JSON"},
		{"3", "payload"},
		{"4", "payload"},
		{"5", "attachments"},
		{"51", "attachments"},
		{"51-", "payload"},
		{"6", "attachments"},
		/* attachments */
		{"5-[\"x\"]", "attachments"},
		{"5a-[\"x\"]", "attachments"},
		{"51[\"x\"]", "attachments"},
		{"51234567-[\"x\"]", "attachments"},	/* more digits than any real count */
		/* huge ack ids: 16 digits no longer fit a JavaScript number exactly */
		{"21234567890123456[\"x\"]", "ack"},
		{"299999999999999999999999999999999[\"x\"]", "ack"},
		{"3/chat,12345678901234567[]", "ack"},
		/* bad namespaces: echoed back in CONNECT_ERROR, so printable ASCII and short */
		{"0/ad min,", "namespace"},
		{"0/ad\tmin,", "namespace"},
		{"0/caf\xc3\xa9,", "namespace"},
		{"0/ad\xffmin,", "namespace"},
		{"0/a\"b,", NULL},		/* printable: accepted (and refused later as unknown) */
		/* invalid UTF-8 in the JSON */
		{"2[\"\xff\"]", "JSON"},
		{"2[\"\xc3\"]", "JSON"},
		{"2[\"\xed\xa0\x80\"]", "JSON"},
		{"0{\"token\":\"\xc0\xaf\"}", "JSON"},
		/* JSON of the wrong shape for the type (socket.io-parser's isPayloadValid) */
		{"0[\"x\"]", "payload"},
		{"0\"token\"", "payload"},
		{"1{}", "payload"},
		{"2{\"a\":1}", "payload"},
		{"2[]", "payload"},
		{"2[{}]", "payload"},
		{"2[\"connect\"]", "payload"},	/* reserved names are the client's own events */
		{"2[\"disconnect\",1]", "payload"},
		{"2[\"removeListener\"]", "payload"},
		{"3{}", "payload"},
		{"4[1]", "payload"},
		{"51-{}", "payload"},
		/* not JSON at all */
		{"2[\"x\"]garbage", "JSON"},
		{"2hello", "JSON"},
	};
	SioPacket	pk;
	char		deep[6000];
	char		longnsp[SIO_MAX_NSP + 8];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const char *why = sio(cases[i].text, &pk);

		if (cases[i].why == NULL)
		{
			CHECK(why == NULL, "\"%s\" refused: %s", cases[i].text, why);
			sio_packet_free(&pk);
			continue;
		}
		CHECK(why != NULL && strstr(why, cases[i].why) != NULL && pk.data == NULL,
			  "\"%s\": %s (want \"%s\")", cases[i].text, why ? why : "accepted", cases[i].why);
		if (why == NULL)
			sio_packet_free(&pk);
	}
	/* a NUL after the JSON (the length includes it) */
	CHECK(sio_packet_parse("2[\"x\"]\0", 7, &pk) != NULL, "a NUL after the JSON");
	/* nesting deeper than the JSON parser goes: refused, not a stack overflow */
	memcpy(deep, "2[\"x\",", 6);
	memset(deep + 6, '[', sizeof(deep) - 6);
	CHECK(sio_packet_parse(deep, sizeof(deep), &pk) != NULL, "6,000 nested arrays");
	/* a namespace of SIO_MAX_NSP characters passes, one more does not */
	longnsp[0] = '0';
	longnsp[1] = '/';
	memset(longnsp + 2, 'n', SIO_MAX_NSP - 1);
	longnsp[SIO_MAX_NSP + 1] = ',';
	CHECK(sio_packet_parse(longnsp, SIO_MAX_NSP + 2, &pk) == NULL && pk.nsp_len == SIO_MAX_NSP,
		  "a %d-character namespace", SIO_MAX_NSP);
	sio_packet_free(&pk);
	longnsp[SIO_MAX_NSP + 1] = 'n';
	longnsp[SIO_MAX_NSP + 2] = ',';
	CHECK(sio_packet_parse(longnsp, SIO_MAX_NSP + 3, &pk) != NULL, "a %d-character namespace",
		  SIO_MAX_NSP + 1);
	/* the largest ack id that fits */
	CHECK(sio("2999999999999999[\"x\"]", &pk) == NULL && pk.ack == 999999999999999LL,
		  "15 digits: %lld", pk.ack);
	sio_packet_free(&pk);
}

/* Runs the packet parser's tests. */
int
main(void)
{
	printf("# test_packets\n");
	test_eio_types();
	test_payloads();
	test_utf8();
	test_sio_kinds();
	test_connect_token();
	test_sio_malformed();
	return t_summary();
}
