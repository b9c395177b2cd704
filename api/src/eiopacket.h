/*
 * eiopacket.h — turning the bytes a Socket.IO client sends into packets: Engine.IO v4 packets and
 * payloads, Socket.IO v5 packets (socket.io-parser's decoder).  Pure functions with no state and no
 * I/O, so api/tests/test_packets.c and the fuzzer api/tests/fuzz_packets.c link eiopacket.c alone
 * (with Jansson).  Nothing here allocates except sio_packet_parse's JSON, freed by sio_packet_free.
 */
#ifndef MODELMINE_EIOPACKET_H
#define MODELMINE_EIOPACKET_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define SIO_MAX_NSP 128			/* the longest namespace accepted (printable ASCII, from '/') */
#define SIO_MAX_ACK_DIGITS 15	/* what a JavaScript number holds exactly */
#define SIO_MAX_ATTACHMENT_DIGITS 6

/* Engine.IO packet types: the first character of a packet (engine.io-parser's PACKET_TYPES). */
typedef enum EioType
{
	EIO_BAD = -1,				/* empty, or not a known type */
	EIO_OPEN = '0',
	EIO_CLOSE = '1',
	EIO_PING = '2',
	EIO_PONG = '3',
	EIO_MESSAGE = '4',
	EIO_UPGRADE = '5',
	EIO_NOOP = '6',
	EIO_BINARY = 'b'			/* base64 binary over polling (Socket.IO attachments) */
} EioType;

/* One Engine.IO packet: its type and what follows the type character. */
typedef struct EioPacket
{
	EioType		type;
	const char *data;			/* points into the input; not NUL-terminated */
	size_t		len;
} EioPacket;

/* Socket.IO packet types (socket.io-parser's PacketType). */
typedef enum SioType
{
	SIO_CONNECT = 0,
	SIO_DISCONNECT = 1,
	SIO_EVENT = 2,
	SIO_ACK = 3,
	SIO_CONNECT_ERROR = 4,
	SIO_BINARY_EVENT = 5,
	SIO_BINARY_ACK = 6
} SioType;

/* One Socket.IO packet: <type>[<attachments>-][<namespace>,][<ack id>][<JSON>]. */
typedef struct SioPacket
{
	SioType		type;
	int			attachments;	/* binary types only */
	const char *nsp;			/* "/" when absent; points into the input otherwise */
	size_t		nsp_len;
	long long	ack;			/* -1: none */
	json_t	   *data;			/* the JSON payload, or NULL when there is none (a reference) */
} SioPacket;

EioType		eio_packet_parse(const char *p, size_t len, EioPacket *out);
bool		eio_payload_next(const char **cursor, const char *end, const char **packet,
							 size_t *len);
bool		eio_utf8_valid(const char *p, size_t len);
const char *sio_packet_parse(const char *p, size_t len, SioPacket *out);
bool		sio_packet_root(const SioPacket *pk);
const char *sio_connect_token(const SioPacket *pk);
void		sio_packet_free(SioPacket *pk);

#endif							/* MODELMINE_EIOPACKET_H */
