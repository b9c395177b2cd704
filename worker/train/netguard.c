/*
 * netguard.c — which addresses a dataset download may connect to (see
 * netguard.h).
 *
 * Refused unless the operator allowed them: everything that is not a
 * public unicast address. The tables are text, parsed per check: a check
 * runs once per connection attempt, and the library keeps no global state.
 */
#include "netguard.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct range
{
	const char *net;
	int			prefix;
	const char *why;
} range;

/* First match wins, so single addresses come before the ranges holding them. */
static const range v4_refused[] = {
	{"0.0.0.0", 8, "unspecified"},	/* "this network": Linux connects 0.0.0.0 to itself */
	{"255.255.255.255", 32, "broadcast"},
	{"169.254.169.254", 32, "cloud metadata"},	/* AWS, GCP, Azure, OpenStack, Oracle... */
	{"169.254.170.2", 32, "cloud metadata"},	/* AWS ECS task metadata */
	{"100.100.100.200", 32, "cloud metadata"},	/* Alibaba Cloud */
	{"168.63.129.16", 32, "cloud metadata"},	/* Azure WireServer: a public-looking address */
	{"127.0.0.0", 8, "loopback"},
	{"10.0.0.0", 8, "private"},
	{"172.16.0.0", 12, "private"},
	{"192.168.0.0", 16, "private"},
	{"100.64.0.0", 10, "private"},	/* shared address space (carrier-grade NAT) */
	{"169.254.0.0", 16, "link-local"},
	{"192.0.0.0", 24, "reserved"},	/* IETF protocol assignments */
	{"198.18.0.0", 15, "reserved"}, /* benchmarking, used inside labs */
	{"224.0.0.0", 4, "multicast"},
	{"240.0.0.0", 4, "reserved"},
};

static const range v6_refused[] = {
	{"::", 128, "unspecified"},
	{"::1", 128, "loopback"},
	{"fd00:ec2::254", 128, "cloud metadata"},	/* AWS instance metadata over IPv6 */
	{"fc00::", 7, "unique-local"},
	{"fe80::", 10, "link-local"},
	{"fec0::", 10, "private"},	/* deprecated site-local */
	{"ff00::", 8, "multicast"},
	{"64:ff9b:1::", 48, "private"}, /* local-use NAT64 */
	{"100::", 64, "reserved"},	/* discard-only */
	{"::", 8, "reserved"},
};

/* Do the first prefix bits of a and b agree? */
static int
prefix_equal(const unsigned char *a, const unsigned char *b, int prefix)
{
	int			bytes = prefix / 8,
				bits = prefix % 8;

	if (memcmp(a, b, (size_t) bytes) != 0)
		return 0;
	if (bits == 0)
		return 1;
	return ((a[bytes] ^ b[bytes]) & (0xff << (8 - bits)) & 0xff) == 0;
}

/* Why a in the table of refused ranges is refused, or NULL when it is in none. */
static const char *
table_refusal(const range *t, size_t n, int family, const unsigned char *a)
{
	unsigned char net[16];

	for (size_t i = 0; i < n; i++)
		if (inet_pton(family, t[i].net, net) == 1 && prefix_equal(a, net, t[i].prefix))
			return t[i].why;
	return NULL;
}

/*
 * The IPv4 address an IPv6 address stands for, or NULL: IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), IPv4-compatible
 * (::a.b.c.d, deprecated), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::).
 * A connection to any of them may end at that IPv4 address.
 */
static const unsigned char *
embedded_v4(const unsigned char *a)
{
	static const unsigned char zero[12] = {0};
	static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};

	if (memcmp(a, zero, 10) == 0 && a[10] == 0xff && a[11] == 0xff)
		return a + 12;
	if (memcmp(a, zero, 8) == 0 && a[8] == 0xff && a[9] == 0xff && a[10] == 0 && a[11] == 0)
		return a + 12;
	if (memcmp(a, nat64, 12) == 0)
		return a + 12;
	if (a[0] == 0x20 && a[1] == 0x02)
		return a + 2;
	if (memcmp(a, zero, 12) == 0 && !(a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] <= 1))
		return a + 12;			/* but :: and ::1 are themselves */
	return NULL;
}

/* a lies inside one of the operator's allowed networks. */
static int
allowed(int family, const unsigned char *a, const mm_cidr *allow, size_t nallow)
{
	for (size_t i = 0; i < nallow; i++)
		if (allow[i].family == family && prefix_equal(a, allow[i].addr, allow[i].prefix))
			return 1;
	return 0;
}

/* Why a download may not connect to sa, or NULL when it may (see netguard.h). */
const char *
mm_addr_refusal(const struct sockaddr *sa, size_t salen, const mm_cidr *allow, size_t nallow)
{
	if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in))
	{
		struct sockaddr_in in;

		memcpy(&in, sa, sizeof(in));
		if (allowed(AF_INET, (const unsigned char *) &in.sin_addr, allow, nallow))
			return NULL;
		return table_refusal(v4_refused, sizeof(v4_refused) / sizeof(v4_refused[0]), AF_INET,
							 (const unsigned char *) &in.sin_addr);
	}
	if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6))
	{
		struct sockaddr_in6 in6;
		const unsigned char *a,
				   *v4;

		memcpy(&in6, sa, sizeof(in6));
		a = (const unsigned char *) &in6.sin6_addr;
		v4 = embedded_v4(a);
		if (allowed(AF_INET6, a, allow, nallow) || (v4 && allowed(AF_INET, v4, allow, nallow)))
			return NULL;
		if (v4)
			return table_refusal(v4_refused, sizeof(v4_refused) / sizeof(v4_refused[0]), AF_INET,
								 v4);
		return table_refusal(v6_refused, sizeof(v6_refused) / sizeof(v6_refused[0]), AF_INET6, a);
	}
	return "not an IP address";
}

/* Writes sa's address as text, for messages. */
void
mm_addr_format(const struct sockaddr *sa, size_t salen, char *out, size_t outlen)
{
	char		text[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in))
	{
		struct sockaddr_in in;

		memcpy(&in, sa, sizeof(in));
		inet_ntop(AF_INET, &in.sin_addr, text, sizeof(text));
	}
	else if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6))
	{
		struct sockaddr_in6 in6;

		memcpy(&in6, sa, sizeof(in6));
		inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof(text));
	}
	snprintf(out, outlen, "%s", text);
}

/* Reads an IPv4 or IPv6 network "ADDR/PREFIX" (or a lone address); 0 or -1 (err). */
int
mm_cidr_parse(const char *s, mm_cidr *out, char *err, size_t errlen)
{
	const char *slash = strchr(s, '/');
	size_t		alen = slash ? (size_t) (slash - s) : strlen(s);
	char		addr[INET6_ADDRSTRLEN + 1];
	char		shown[80];
	int			max;

	memset(out, 0, sizeof(*out));
	mm_sanitize(shown, sizeof(shown), s, 60);
	if (alen > 0 && alen < sizeof(addr))
	{
		memcpy(addr, s, alen);
		addr[alen] = '\0';
		if (inet_pton(AF_INET, addr, out->addr) == 1)
			out->family = AF_INET;
		else if (inet_pton(AF_INET6, addr, out->addr) == 1)
			out->family = AF_INET6;
	}
	if (out->family == 0)
		return mm_err(err, errlen, "\"%s\" is not a network: want an IPv4 or IPv6 address with an "
								   "optional /prefix, e.g. 10.0.0.0/8 or fd00::/8",
					  shown);
	max = out->family == AF_INET ? 32 : 128;
	out->prefix = max;
	if (slash)
	{
		const char *p = slash + 1;
		long		n = 0;

		if (*p == '\0' || strlen(p) > 3)
			n = -1;
		for (; n >= 0 && *p; p++)
			n = isdigit((unsigned char) *p) ? n * 10 + (*p - '0') : -1;
		if (n < 0 || n > max)
			return mm_err(err, errlen, "\"%s\" is not a network: the prefix length must be a "
									   "number from 0 to %d", shown, max);
		out->prefix = (int) n;
	}
	for (int bit = out->prefix; bit < max; bit++)
		if (out->addr[bit / 8] & (0x80 >> (bit % 8)))
		{
			mm_cidr		fixed = *out;
			char		want[INET6_ADDRSTRLEN + 8];

			for (int b = out->prefix; b < max; b++)
				fixed.addr[b / 8] &= (unsigned char) ~(0x80 >> (b % 8));
			mm_cidr_format(&fixed, want, sizeof(want));
			return mm_err(err, errlen, "\"%s\" has bits set past its /%d prefix; did you mean %s?",
						  shown, out->prefix, want);
		}
	return 0;
}

/* Writes a network as "ADDR/PREFIX". */
void
mm_cidr_format(const mm_cidr *c, char *out, size_t outlen)
{
	char		text[INET6_ADDRSTRLEN] = "?";

	inet_ntop(c->family, c->addr, text, sizeof(text));
	snprintf(out, outlen, "%s/%d", text, c->prefix);
}
