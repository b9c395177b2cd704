/*
 * netguard.h — which addresses a dataset download may connect to.
 *
 * A job names its dataset URL, so without a check a job could make the
 * node fetch from its own loopback, its private network or a cloud
 * metadata service and read the answer back (SSRF). fetch.c asks
 * mm_addr_refusal() about every address libcurl is about to connect to,
 * after DNS and after each redirect; the node operator can allow named
 * networks (the worker's --allow-net CIDR).
 */
#ifndef MM_NETGUARD_H
#define MM_NETGUARD_H

#include <stddef.h>
#include <sys/socket.h>

typedef struct mm_cidr
{
	int			family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];		/* network address: 4 bytes for IPv4, 16 for IPv6 */
	int			prefix;			/* 0..32 or 0..128 */
} mm_cidr;

/*
 * Parse "10.0.0.0/8", "fd00::/8" or a bare address (a /32 or /128).
 * Bits set past the prefix are an error ("10.1.2.3/8"), as in
 * PostgreSQL's cidr type: they usually mean a typo. 0 ok, -1 with a message.
 */
int			mm_cidr_parse(const char *s, mm_cidr *out, char *err, size_t errlen);

/* "10.0.0.0/8" */
void		mm_cidr_format(const mm_cidr *c, char *out, size_t outlen);

/*
 * Why a download must not connect to sa: "loopback", "private",
 * "link-local", "unique-local", "multicast", "unspecified", "broadcast",
 * "cloud metadata", "reserved", "not an IP address"; NULL when it may
 * (a public address, or one inside an allowed network). IPv6 forms that
 * embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by
 * that IPv4 address.
 */
const char *mm_addr_refusal(const struct sockaddr *sa, size_t salen,
							const mm_cidr *allow, size_t nallow);

/* The address of sa as text ("127.0.0.1", "::1"); "?" when not IP. */
void		mm_addr_format(const struct sockaddr *sa, size_t salen, char *out, size_t outlen);

#endif							/* MM_NETGUARD_H */
