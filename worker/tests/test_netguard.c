/*
 * test_netguard.c — which addresses a dataset download may reach: every
 * non-public range is refused with its reason (IPv6 forms embedding an IPv4
 * address judged by that address), public ones pass, the operator's
 * networks (--allow-net) pass; and the CIDR parser behind --allow-net.
 */
#include "netguard.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static char err[512];

/* mm_addr_refusal for an address given as text; "PARSE" if the test itself is wrong. */
static const char *
refusal(const char *ip, const mm_cidr *allow, size_t nallow)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};

	if (inet_pton(AF_INET, ip, &in.sin_addr) == 1)
		return mm_addr_refusal((struct sockaddr *) &in, sizeof(in), allow, nallow);
	if (inet_pton(AF_INET6, ip, &in6.sin6_addr) == 1)
		return mm_addr_refusal((struct sockaddr *) &in6, sizeof(in6), allow, nallow);
	return "PARSE";
}

/* Checks that the default policy refuses ip, for the reason why. */
static void
expect_refused(const char *ip, const char *why)
{
	const char *got = refusal(ip, NULL, 0);

	CHECK(got != NULL && strcmp(got, why) == 0, "%s: want \"%s\", got \"%s\"", ip, why,
		  got ? got : "(allowed)");
}

/* Checks that a download may connect to ip with the allowed networks given. */
static void
expect_allowed(const char *ip, const mm_cidr *allow, size_t nallow)
{
	const char *got = refusal(ip, allow, nallow);

	CHECK(got == NULL, "%s: refused (%s)", ip, got);
}

/* The default policy: loopback, private, link-local, metadata... refused; public allowed. */
static void
test_default_policy(void)
{
	static const char *const loopback[] = {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1",
	"::127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1", "::ffff:0:127.0.0.1"};
	static const char *const priv[] = {"10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.254",
	"192.168.1.1", "100.64.0.1", "100.127.255.254", "::ffff:10.1.2.3", "::ffff:192.168.0.1",
	"fec0::1", "64:ff9b:1::1"};

	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
		expect_refused(loopback[i], "loopback");
	for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
		expect_refused(priv[i], "private");
	expect_refused("169.254.1.1", "link-local");
	expect_refused("fe80::1", "link-local");
	expect_refused("febf:ffff::1", "link-local");
	expect_refused("fc00::1", "unique-local");
	expect_refused("fd12:3456::1", "unique-local");
	expect_refused("224.0.0.1", "multicast");
	expect_refused("239.255.255.250", "multicast");
	expect_refused("ff02::1", "multicast");
	expect_refused("0.0.0.0", "unspecified");
	expect_refused("0.1.2.3", "unspecified");
	expect_refused("::", "unspecified");
	expect_refused("::ffff:0.0.0.0", "unspecified");
	expect_refused("255.255.255.255", "broadcast");
	expect_refused("169.254.169.254", "cloud metadata");
	expect_refused("::ffff:169.254.169.254", "cloud metadata");
	expect_refused("fd00:ec2::254", "cloud metadata");
	expect_refused("100.100.100.200", "cloud metadata");
	expect_refused("168.63.129.16", "cloud metadata");
	expect_refused("240.0.0.1", "reserved");
	expect_refused("192.0.0.8", "reserved");

	/* public addresses, and the edges just outside the refused ranges */
	expect_allowed("8.8.8.8", NULL, 0);
	expect_allowed("93.184.216.34", NULL, 0);
	expect_allowed("172.15.255.255", NULL, 0);
	expect_allowed("172.32.0.0", NULL, 0);
	expect_allowed("100.63.255.255", NULL, 0);
	expect_allowed("100.128.0.0", NULL, 0);
	expect_allowed("11.0.0.0", NULL, 0);
	expect_allowed("223.255.255.255", NULL, 0);
	expect_allowed("2606:4700:4700::1111", NULL, 0);
	expect_allowed("2a00:1450:4001:800::200e", NULL, 0);
	expect_allowed("::ffff:8.8.8.8", NULL, 0);
	expect_allowed("64:ff9b::808:808", NULL, 0);
	expect_allowed("2002:808:808::1", NULL, 0);

	{
		struct sockaddr sa = {.sa_family = AF_UNIX};
		const char *got = mm_addr_refusal(&sa, sizeof(sa), NULL, 0);

		CHECK(got != NULL && strcmp(got, "not an IP address") == 0, "AF_UNIX: %s",
			  got ? got : "(allowed)");
	}
	{
		/* a short sockaddr is not read past its end */
		struct sockaddr_in in = {.sin_family = AF_INET};

		CHECK(mm_addr_refusal((struct sockaddr *) &in, 4, NULL, 0) != NULL,
			  "truncated sockaddr allowed");
	}
}

/* Parses a network the test needs (a failure is a failed check). */
static mm_cidr
cidr(const char *s)
{
	mm_cidr		c;

	err[0] = '\0';
	CHECK(mm_cidr_parse(s, &c, err, sizeof(err)) == 0, "%s: %s", s, err);
	return c;
}

/* --allow-net opens exactly the networks it names, in any spelling of their addresses. */
static void
test_allow_list(void)
{
	mm_cidr		allow[3];

	allow[0] = cidr("127.0.0.0/8");
	allow[1] = cidr("10.1.0.0/16");
	allow[2] = cidr("fd00:1234::/32");
	expect_allowed("127.0.0.1", allow, 3);
	expect_allowed("127.9.9.9", allow, 3);
	expect_allowed("::ffff:127.0.0.1", allow, 3);	/* the mapped form of an allowed IPv4 address */
	expect_allowed("10.1.200.3", allow, 3);
	expect_allowed("fd00:1234:5::1", allow, 3);
	expect_allowed("8.8.8.8", allow, 3);
	/* the allow-list opens those networks only */
	CHECK(refusal("10.2.0.1", allow, 3) != NULL, "10.2.0.1 allowed by 10.1.0.0/16");
	CHECK(refusal("::1", allow, 3) != NULL, "::1 allowed by 127.0.0.0/8");
	CHECK(refusal("fd00:1235::1", allow, 3) != NULL, "fd00:1235::1 allowed by fd00:1234::/32");
	CHECK(refusal("169.254.169.254", allow, 3) != NULL, "metadata allowed");

	allow[0] = cidr("127.0.0.1");	/* a bare address is a /32 */
	expect_allowed("127.0.0.1", allow, 1);
	CHECK(refusal("127.0.0.2", allow, 1) != NULL, "127.0.0.2 allowed by 127.0.0.1/32");
	allow[0] = cidr("::1");
	expect_allowed("::1", allow, 1);
	allow[0] = cidr("0.0.0.0/0");	/* the operator may open everything */
	expect_allowed("169.254.169.254", allow, 1);
	expect_allowed("10.0.0.1", allow, 1);
	CHECK(refusal("::1", allow, 1) != NULL, "an IPv4 /0 opened IPv6 loopback");
}

/* Checks that s parses and prints back as formatted. */
static void
expect_cidr(const char *s, const char *formatted)
{
	mm_cidr		c = cidr(s);
	char		out[64];

	mm_cidr_format(&c, out, sizeof(out));
	CHECK(strcmp(out, formatted) == 0, "%s formatted as %s, want %s", s, out, formatted);
}

/* Checks that s is refused with a message naming n1 (and n2 unless NULL). */
static void
expect_bad_cidr(const char *s, const char *n1, const char *n2)
{
	mm_cidr		c;

	err[0] = '\0';
	CHECK(mm_cidr_parse(s, &c, err, sizeof(err)) == -1, "\"%s\" accepted", s);
	CHECK_MSG(err, n1);
	if (n2)
		CHECK_MSG(err, n2);
}

/* Parsing and printing networks, and refusing bad ones. */
static void
test_cidr_parse(void)
{
	expect_cidr("10.0.0.0/8", "10.0.0.0/8");
	expect_cidr("192.168.1.7", "192.168.1.7/32");
	expect_cidr("0.0.0.0/0", "0.0.0.0/0");
	expect_cidr("fd00::/8", "fd00::/8");
	expect_cidr("FD00:0:0::/8", "fd00::/8");
	expect_cidr("::1", "::1/128");
	expect_cidr("2001:db8::/32", "2001:db8::/32");
	expect_cidr("172.16.0.0/12", "172.16.0.0/12");

	expect_bad_cidr("", "is not a network", "10.0.0.0/8");
	expect_bad_cidr("banana", "\"banana\" is not a network", NULL);
	expect_bad_cidr("10.0.0/8", "is not a network", NULL);	/* no shorthand forms */
	expect_bad_cidr("10.0.0.0/33", "prefix length", "0 to 32");
	expect_bad_cidr("fd00::/129", "prefix length", "0 to 128");
	expect_bad_cidr("10.0.0.0/", "prefix length", NULL);
	expect_bad_cidr("10.0.0.0/8x", "prefix length", NULL);
	expect_bad_cidr("10.0.0.0/-1", "prefix length", NULL);
	expect_bad_cidr("10.0.0.0/0008", "prefix length", NULL);
	expect_bad_cidr("/8", "is not a network", NULL);
	expect_bad_cidr("10.1.2.3/8", "bits set past its /8 prefix", "did you mean 10.0.0.0/8?");
	expect_bad_cidr("fd00::1/8", "did you mean fd00::/8?", NULL);
	expect_bad_cidr("10.0.0.0/8,192.168.0.0/16", "is not a network", NULL);
	expect_bad_cidr("evil\n/8", "evil?", NULL);	/* the input is shown sanitised */
}

/* Runs the address-policy tests. */
int
main(void)
{
	printf("# test_netguard\n");
	test_default_policy();
	test_allow_list();
	test_cidr_parse();
	return t_summary();
}
