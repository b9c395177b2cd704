/*
 * fuzz_jwt.c — libFuzzer target for the extension's token parsing (extension/jwt.c, MmJwtVerify):
 * the bearer token every gateway request and Socket.IO CONNECT carries.  jwt.c is compiled as it
 * is, out of the backend: against the server headers, linked with PostgreSQL's frontend
 * libpgcommon/libpgport (the same base64 and HMAC code, with malloc-based palloc), and with the
 * two error-reporting entry points shimmed below so that any ereport/elog aborts: MmJwtVerify
 * promises never to raise on malformed input.  The first byte picks the mode: 0 verifies the rest
 * as a token; 1 signs the rest as a payload with MmJwtSign and checks that verifying gives it back
 * (and that any one changed byte is refused).
 *
 *   make fuzz-build                                build (scripts/fuzz.sh runs it)
 *   extension/tests/fuzz_jwt FILE...               replay inputs
 */
#include "modelmine.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define MUST(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_jwt: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

/* ---- the backend's error reporting: reaching it at all is the failure ---- */
bool
errstart(int elevel, const char *domain)
{
	(void) domain;
	fprintf(stderr, "fuzz_jwt: ereport/elog at level %d\n", elevel);
	abort();
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	(void) filename, (void) lineno, (void) funcname;
	abort();
}

int
errmsg_internal(const char *fmt,...)
{
	(void) fmt;
	return 0;
}

int
errmsg(const char *fmt,...)
{
	(void) fmt;
	return 0;
}

int
errcode(int sqlerrcode)
{
	(void) sqlerrcode;
	return 0;
}

/*
 * ---- palloc as one memory context per input ----
 * In the backend, what jwt.c pallocs is freed with its memory context; here palloc, repalloc and
 * pfree are wrapped (ld --wrap, for jwt.o and libpgcommon's stringinfo.o alike) to keep a list of
 * blocks that is freed after each input, as a context reset would.
 */
typedef struct Block
{
	struct Block *prev,
			   *next;
	max_align_t align[];
} Block;

static Block *blocks;

static void *
keep(Block *b)
{
	if (b == NULL)
		abort();
	b->prev = NULL;
	b->next = blocks;
	if (blocks)
		blocks->prev = b;
	blocks = b;
	return b->align;
}

static Block *
unlink_block(void *p)
{
	Block	   *b = (Block *) ((char *) p - offsetof(Block, align));

	if (b->prev)
		b->prev->next = b->next;
	else
		blocks = b->next;
	if (b->next)
		b->next->prev = b->prev;
	return b;
}

void	   *__wrap_palloc(Size size);
void	   *__wrap_repalloc(void *p, Size size);
void		__wrap_pfree(void *p);

void *
__wrap_palloc(Size size)
{
	return keep(malloc(sizeof(Block) + size));
}

void *
__wrap_repalloc(void *p, Size size)
{
	return keep(realloc(unlink_block(p), sizeof(Block) + size));
}

void
__wrap_pfree(void *p)
{
	free(unlink_block(p));
}

/* The context reset after each input. */
static void
reset_context(void)
{
	while (blocks)
		__wrap_pfree(blocks->align);
}

static const uint8 key[] = "a 32-byte key for the fuzzer....";

int			LLVMFuzzerTestOneInput(const uint8 *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8 *data, size_t size)
{
	char	   *text;
	const char *why = NULL;
	char	   *out;

	if (size == 0 || size > 16384)
		return 0;
	text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] == 0)
	{
		out = MmJwtVerify(text, key, sizeof(key) - 1, &why);
		MUST((out == NULL) == (why != NULL));
	}
	else
	{
		char	   *token = MmJwtSign(text, key, sizeof(key) - 1);
		size_t		toklen = strlen(token);

		out = MmJwtVerify(token, key, sizeof(key) - 1, &why);
		if (text[0] != '\0' && toklen <= 8192)
			MUST(out != NULL && strcmp(out, text) == 0);
		else
			MUST(out == NULL && why != NULL);
		/* one byte changed, picked by the input: refused (or, rarely, the same byte) */
		if (toklen > 0 && toklen <= 8192)
		{
			size_t		at = data[0] % toklen;
			char		was = token[at];

			token[at] = (char) (was ^ (data[size - 1] | 1));
			if (token[at] != '\0')
				MUST(MmJwtVerify(token, key, sizeof(key) - 1, &why) == NULL);
		}
	}
	free(text);
	reset_context();
	return 0;
}
