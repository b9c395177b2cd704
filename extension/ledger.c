/*
 * ledger.c — the tamper-evident ledger: one block per completed job, SHA-256 hash-chained.
 *
 * Encoding (docs/LEDGER.md is the normative text): hash = SHA-256(prev_hex "\n" data "\n" created), where
 * data = "modelmine-block-v1|height|job|user|node|stake|reward|fee|accuracy|loss|epochs|completed", integers
 * in plain decimal, accuracy and loss as their stored decimal text, timestamps as UTC
 * "YYYY-MM-DDTHH:MM:SS.ffffffZ", a NULL field as the empty string.
 *
 * Concurrency.  complete_job() does not touch the chain head: it appends the job's entry to
 * modelmine.ledger_queue, in its own transaction, with no shared lock.  Sealing (queue -> blocks) runs
 * under a transaction-level advisory lock taken with pg_try_advisory_xact_lock: whoever gets it seals
 * everything committed (and its own entry) in one pass; everybody else skips sealing instead of waiting.
 * So completions never queue behind one another, and a long transaction holding the seal lock only
 * delays sealing, never blocks a completion.  Sealing runs in READ COMMITTED only, after the lock is
 * held, so it reads the head with a snapshot taken after the previous sealer committed: two blocks can
 * never share a previous hash (and UNIQUE (prev_hash) / PRIMARY KEY (height) would refuse it anyway).
 * Sealing happens at completion, at every claim_jobs, and before ledger reads, so an entry waits at most
 * until the next of those.
 *
 * Verification walks the blocks in height order with a plain index scan (no executor, no SPI), formats
 * each block into one reused buffer and resets a per-block memory context, so memory stays constant
 * whatever the length of the chain.
 */
#include "modelmine.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(mm_seal_ledger);
PG_FUNCTION_INFO_V1(mm_verify_ledger);
PG_FUNCTION_INFO_V1(mm_ledger_genesis);
PG_FUNCTION_INFO_V1(mm_block_preimage);

#define LEDGER_LOCK_KEY INT64CONST(0x6d6d6c6564676572)	/* "mmledger" */
#define HASH_LEN PG_SHA256_DIGEST_LENGTH

/* Column numbers of modelmine.ledger, checked against the catalog before a scan. */
enum
{
	L_HEIGHT = 1, L_PREV, L_HASH, L_JOB, L_USER, L_NODE, L_STAKE, L_REWARD, L_FEE, L_ACCURACY, L_LOSS,
	L_EPOCHS, L_COMPLETED, L_CREATED, L_NCOLS = L_CREATED
};
static const char *const ledger_cols[] = {"height", "prev_hash", "hash", "job_id", "user_id", "node_id",
	"stake", "reward", "fee", "accuracy", "loss", "epochs", "completed_at", "created_at"};

typedef struct Block
{
	int64		height;
	const uint8 *prev;			/* HASH_LEN bytes */
	bool		isnull[L_NCOLS + 1];
	int64		ints[L_NCOLS + 1];	/* job, user, node, stake, reward, fee, epochs by column number */
	text	   *accuracy;
	text	   *loss;
	TimestampTz completed_at;
	TimestampTz created_at;
} Block;

/* ---------------------------------------------------------------------------------------------- */
/* Canonical encoding                                                                              */
/* ---------------------------------------------------------------------------------------------- */

static void
AppendInt64(StringInfo s, int64 v)
{
	char		tmp[24];
	int			n = 0;
	uint64		u = v < 0 ? (uint64) 0 - (uint64) v : (uint64) v;

	do
	{
		tmp[n++] = (char) ('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[n++] = '-';
	enlargeStringInfo(s, n);
	while (n)
		s->data[s->len++] = tmp[--n];
	s->data[s->len] = '\0';
}

static void
Append2(StringInfo s, int v)
{
	appendStringInfoChar(s, (char) ('0' + v / 10));
	appendStringInfoChar(s, (char) ('0' + v % 10));
}

/* UTC "YYYY-MM-DDTHH:MM:SS.ffffffZ" without the time zone machinery (days-from-civil inverse). */
static void
AppendTimestamp(StringInfo s, TimestampTz t)
{
	int64		days = t / USECS_PER_DAY,
				us = t % USECS_PER_DAY;
	int64		z,
				era,
				doe,
				yoe,
				y,
				doy,
				mp,
				d,
				m;

	if (TIMESTAMP_NOT_FINITE(t))
	{
		appendStringInfoString(s, TIMESTAMP_IS_NOBEGIN(t) ? "-infinity" : "infinity");
		return;
	}
	if (us < 0)
	{
		us += USECS_PER_DAY;
		days--;
	}
	z = days + 10957 + 719468;	/* days since 0000-03-01 */
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	if (y >= 0 && y < 10000)
	{
		Append2(s, (int) (y / 100));
		Append2(s, (int) (y % 100));
	}
	else
		AppendInt64(s, y);
	appendStringInfoChar(s, '-');
	Append2(s, (int) m);
	appendStringInfoChar(s, '-');
	Append2(s, (int) d);
	appendStringInfoChar(s, 'T');
	Append2(s, (int) (us / USECS_PER_HOUR));
	appendStringInfoChar(s, ':');
	Append2(s, (int) (us / USECS_PER_MINUTE % 60));
	appendStringInfoChar(s, ':');
	Append2(s, (int) (us / USECS_PER_SEC % 60));
	appendStringInfoChar(s, '.');
	{
		int			f = (int) (us % USECS_PER_SEC);

		Append2(s, f / 10000);
		Append2(s, f / 100 % 100);
		Append2(s, f % 100);
	}
	appendStringInfoChar(s, 'Z');
}

static void
AppendHex(StringInfo s, const uint8 *b, int n)
{
	static const char hex[] = "0123456789abcdef";

	enlargeStringInfo(s, 2 * n);
	for (int i = 0; i < n; i++)
	{
		s->data[s->len++] = hex[b[i] >> 4];
		s->data[s->len++] = hex[b[i] & 15];
	}
	s->data[s->len] = '\0';
}

static void
AppendOptInt(StringInfo s, const Block *b, int col)
{
	appendStringInfoChar(s, '|');
	if (!b->isnull[col])
		AppendInt64(s, b->ints[col]);
}

static void
AppendOptText(StringInfo s, text *t)
{
	appendStringInfoChar(s, '|');
	if (t)
		appendBinaryStringInfo(s, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

/* The exact bytes that are hashed (docs/LEDGER.md). */
static void
Preimage(StringInfo s, const Block *b)
{
	resetStringInfo(s);
	AppendHex(s, b->prev, HASH_LEN);
	appendStringInfoString(s, "\nmodelmine-block-v1|");
	AppendInt64(s, b->height);
	AppendOptInt(s, b, L_JOB);
	AppendOptInt(s, b, L_USER);
	AppendOptInt(s, b, L_NODE);
	AppendOptInt(s, b, L_STAKE);
	AppendOptInt(s, b, L_REWARD);
	AppendOptInt(s, b, L_FEE);
	AppendOptText(s, b->accuracy);
	AppendOptText(s, b->loss);
	AppendOptInt(s, b, L_EPOCHS);
	appendStringInfoChar(s, '|');
	if (!b->isnull[L_COMPLETED])
		AppendTimestamp(s, b->completed_at);
	appendStringInfoChar(s, '\n');
	AppendTimestamp(s, b->created_at);
}

static void
Sha256(pg_cryptohash_ctx *ctx, const StringInfo s, uint8 *out)
{
	if (pg_cryptohash_init(ctx) < 0 || pg_cryptohash_update(ctx, (uint8 *) s->data, s->len) < 0 ||
		pg_cryptohash_final(ctx, out, HASH_LEN) < 0)
		elog(ERROR, "modelmine: SHA-256 failed: %s", pg_cryptohash_error(ctx));
}

static pg_cryptohash_ctx *
NewSha256(void)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL)
		elog(ERROR, "modelmine: out of memory for a SHA-256 context");
	return ctx;
}

static bytea *
ByteaOf(const uint8 *b, int n)
{
	bytea	   *v = palloc(VARHDRSZ + n);

	SET_VARSIZE(v, VARHDRSZ + n);
	memcpy(VARDATA(v), b, n);
	return v;
}

/* ---------------------------------------------------------------------------------------------- */
/* Sealing                                                                                          */
/* ---------------------------------------------------------------------------------------------- */

/*
 * Seals up to max queued entries into blocks, if this transaction can take the seal lock without
 * waiting.  Returns the number of blocks appended.
 */
int64
MmLedgerSeal(int64 max)
{
	static MmPlan head = {"SELECT height, hash FROM modelmine.ledger ORDER BY height DESC LIMIT 1", 0, {0}};
	static MmPlan queued = {
		"SELECT id, job_id, user_id, node_id, stake, reward, fee, accuracy, loss, epochs, completed_at "
		"  FROM modelmine.ledger_queue ORDER BY id LIMIT $1", 1, {INT8OID}};
	static MmPlan append = {
		"INSERT INTO modelmine.ledger (height, prev_hash, hash, job_id, user_id, node_id, stake, reward, fee, "
		"                              accuracy, loss, epochs, completed_at, created_at) "
		"SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), "
		"       pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7), "
		"       pg_catalog.unnest($8), pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11), "
		"       pg_catalog.unnest($12), pg_catalog.unnest($13), pg_catalog.unnest($14))", 14,
		{INT8ARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
		INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID,
	TIMESTAMPTZARRAYOID}};
	static MmPlan dequeue = {"DELETE FROM modelmine.ledger_queue WHERE id <= $1 AND id = ANY ($2::int8[])",
	2, {INT8OID, INT8ARRAYOID}};
	static const Oid elem_types[14] = {INT8OID, BYTEAOID, BYTEAOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID,
	INT8OID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	uint64		n;
	bool		isnull;
	uint8		prev[HASH_LEN];
	int64		height,
				maxid = 0;
	Datum	   *cols[14];
	bool	   *nulls[14];
	Datum	   *ids;
	Datum		args[14];
	pg_cryptohash_ctx *ctx;
	StringInfoData buf;
	TimestampTz created = GetCurrentTimestamp();

	/* a fixed snapshot could predate the previous sealer's commit: seal only in READ COMMITTED */
	if (XactIsoLevel != XACT_READ_COMMITTED || XactReadOnly || RecoveryInProgress())
		return 0;
	if (!DatumGetBool(DirectFunctionCall1(pg_try_advisory_xact_lock_int8, Int64GetDatum(LEDGER_LOCK_KEY))))
		return 0;
	args[0] = Int64GetDatum(max);
	n = MmExec(&queued, args, NULL, false, max);
	if (n == 0)
		return 0;
	/* copy the batch out: the head query below replaces SPI_tuptable */
	for (int c = 0; c < 14; c++)
	{
		cols[c] = palloc0(sizeof(Datum) * n);
		nulls[c] = palloc0(sizeof(bool) * n);
	}
	ids = palloc(sizeof(Datum) * n);
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		ids[i] = SPI_getbinval(tup, desc, 1, &isnull);
		maxid = Max(maxid, DatumGetInt64(ids[i]));
		for (int c = L_JOB - 1; c <= L_COMPLETED - 1; c++)	/* queue columns 2..11 */
		{
			Datum		d = SPI_getbinval(tup, desc, c - 1, &nulls[c][i]);

			cols[c][i] = nulls[c][i] ? (Datum) 0 : datumCopy(d, elem_types[c] != TEXTOID, elem_types[c] == TEXTOID ? -1 : 8);
		}
	}
	if (MmExec(&head, NULL, NULL, false, 1) != 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("the ledger has no genesis block"),
						errhint("Run SELECT * FROM modelmine.verify_ledger() and restore the ledger from a backup.")));
	height = MmInt64(0, 1, NULL);
	{
		bytea	   *h = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

		if (VARSIZE_ANY_EXHDR(h) != HASH_LEN)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("the ledger head hash is malformed")));
		memcpy(prev, VARDATA_ANY(h), HASH_LEN);
	}

	ctx = NewSha256();
	initStringInfo(&buf);
	for (uint64 i = 0; i < n; i++)
	{
		Block		b = {0};
		uint8		hash[HASH_LEN];

		b.height = ++height;
		b.prev = prev;
		/* array slots are 0-based: column L_X lives in cols[L_X - 1] */
		for (int c = L_JOB; c <= L_EPOCHS; c++)
		{
			b.isnull[c] = nulls[c - 1][i];
			if (!b.isnull[c] && c != L_ACCURACY && c != L_LOSS)
				b.ints[c] = DatumGetInt64(cols[c - 1][i]);
		}
		b.accuracy = nulls[L_ACCURACY - 1][i] ? NULL : DatumGetTextPP(cols[L_ACCURACY - 1][i]);
		b.loss = nulls[L_LOSS - 1][i] ? NULL : DatumGetTextPP(cols[L_LOSS - 1][i]);
		b.isnull[L_COMPLETED] = nulls[L_COMPLETED - 1][i];
		b.completed_at = b.isnull[L_COMPLETED] ? 0 : DatumGetTimestampTz(cols[L_COMPLETED - 1][i]);
		b.created_at = created;
		Preimage(&buf, &b);
		Sha256(ctx, &buf, hash);

		cols[L_HEIGHT - 1][i] = Int64GetDatum(b.height);
		cols[L_PREV - 1][i] = PointerGetDatum(ByteaOf(prev, HASH_LEN));
		cols[L_HASH - 1][i] = PointerGetDatum(ByteaOf(hash, HASH_LEN));
		cols[L_CREATED - 1][i] = TimestampTzGetDatum(created);
		memcpy(prev, hash, HASH_LEN);
	}
	pg_cryptohash_free(ctx);
	for (int c = 0; c < 14; c++)
	{
		int			dims[1] = {(int) n},
					lbs[1] = {1};
		int16		typlen;
		bool		typbyval;
		char		typalign;

		get_typlenbyvalalign(elem_types[c], &typlen, &typbyval, &typalign);
		args[c] = PointerGetDatum(construct_md_array(cols[c], nulls[c], 1, dims, lbs, elem_types[c], typlen,
													 typbyval, typalign));
	}
	MmExec(&append, args, NULL, false, 0);
	args[0] = Int64GetDatum(maxid);
	args[1] = PointerGetDatum(construct_array(ids, (int) n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	MmExec(&dequeue, args, NULL, false, 0);
	return (int64) n;
}

/* ---------------------------------------------------------------------------------------------- */
/* Verification                                                                                     */
/* ---------------------------------------------------------------------------------------------- */

typedef struct Verdict
{
	bool		ok;
	int64		height;			/* last height read */
	int64		first_bad;		/* -1 when none */
	char	   *reason;
	int64		checked;
} Verdict;

static void
Bad(Verdict *v, int64 height, const char *reason)
{
	if (!v->ok)
		return;
	v->ok = false;
	v->first_bad = height;
	v->reason = pstrdup(reason);
}

static Relation
OpenLedger(void)
{
	Oid			nsp = get_namespace_oid("modelmine", false);
	Oid			relid = get_relname_relid("ledger", nsp);
	Relation	rel;
	TupleDesc	desc;

	if (!OidIsValid(relid))
		elog(ERROR, "modelmine: table modelmine.ledger is missing");
	rel = table_open(relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	if (desc->natts != L_NCOLS)
		elog(ERROR, "modelmine: modelmine.ledger has %d columns, expected %d", desc->natts, L_NCOLS);
	for (int i = 0; i < L_NCOLS; i++)
		if (strcmp(NameStr(TupleDescAttr(desc, i)->attname), ledger_cols[i]) != 0)
			elog(ERROR, "modelmine: modelmine.ledger column %d is %s, expected %s", i + 1,
				 NameStr(TupleDescAttr(desc, i)->attname), ledger_cols[i]);
	return rel;
}

/* Hex text of a digest hash into 32 bytes; false if malformed. */
static bool
ParseHex(const char *s, int len, uint8 *out)
{
	if (len != 2 * HASH_LEN)
		return false;
	for (int i = 0; i < HASH_LEN; i++)
	{
		int			v = 0;

		for (int k = 0; k < 2; k++)
		{
			char		c = s[2 * i + k];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= c - '0';
			else if (c >= 'a' && c <= 'f')
				v |= c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				v |= c - 'A' + 10;
			else
				return false;
		}
		out[i] = (uint8) v;
	}
	return true;
}

static void
VerifyChain(Verdict *v, bool have_digest, int64 digest_height, const uint8 *digest_hash)
{
	Relation	rel = OpenLedger();
	Relation	idx = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
	IndexScanDesc scan = index_beginscan(rel, idx, snap, 0, 0);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	MemoryContext per_block = AllocSetContextCreate(CurrentMemoryContext, "modelmine ledger verify",
													ALLOCSET_DEFAULT_SIZES);
	pg_cryptohash_ctx *ctx = NewSha256();
	StringInfoData buf;
	uint8		prev[HASH_LEN];
	uint8		hash[HASH_LEN];
	int64		expect = 0;
	bool		digest_seen = false;

	memset(prev, 0, HASH_LEN);	/* genesis links to 32 zero bytes */
	initStringInfo(&buf);
	v->ok = true;
	v->height = -1;
	v->first_bad = -1;
	v->reason = NULL;
	v->checked = 0;
	index_rescan(scan, NULL, 0, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		MemoryContext old = MemoryContextSwitchTo(per_block);
		Datum	   *d;
		bool	   *isnull;
		Block		b = {0};
		bytea	   *stored_prev,
				   *stored_hash;

		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		d = slot->tts_values;
		isnull = slot->tts_isnull;
		b.height = DatumGetInt64(d[L_HEIGHT - 1]);
		v->height = b.height;
		v->checked++;
		if (b.height != expect)
		{
			char	   *why = b.height > expect
				? psprintf("block %lld is missing (the next block has height %lld)", (long long) expect, (long long) b.height)
				: psprintf("height %lld appears out of order", (long long) b.height);

			Bad(v, expect, why);
			expect = b.height;
		}
		stored_prev = isnull[L_PREV - 1] ? NULL : DatumGetByteaPP(d[L_PREV - 1]);
		stored_hash = isnull[L_HASH - 1] ? NULL : DatumGetByteaPP(d[L_HASH - 1]);
		if (stored_prev == NULL || VARSIZE_ANY_EXHDR(stored_prev) != HASH_LEN ||
			memcmp(VARDATA_ANY(stored_prev), prev, HASH_LEN) != 0)
			Bad(v, b.height, expect == 0 ? "the genesis block does not link to 32 zero bytes"
				: "prev_hash does not equal the hash of the block before it");
		b.prev = stored_prev && VARSIZE_ANY_EXHDR(stored_prev) == HASH_LEN ? (uint8 *) VARDATA_ANY(stored_prev) : prev;
		for (int c = L_JOB; c <= L_EPOCHS; c++)
		{
			b.isnull[c] = isnull[c - 1];
			if (!b.isnull[c] && c != L_ACCURACY && c != L_LOSS)
				b.ints[c] = DatumGetInt64(d[c - 1]);
		}
		b.accuracy = isnull[L_ACCURACY - 1] ? NULL : DatumGetTextPP(d[L_ACCURACY - 1]);
		b.loss = isnull[L_LOSS - 1] ? NULL : DatumGetTextPP(d[L_LOSS - 1]);
		b.isnull[L_COMPLETED] = isnull[L_COMPLETED - 1];
		b.completed_at = b.isnull[L_COMPLETED] ? 0 : DatumGetTimestampTz(d[L_COMPLETED - 1]);
		b.created_at = isnull[L_CREATED - 1] ? 0 : DatumGetTimestampTz(d[L_CREATED - 1]);
		Preimage(&buf, &b);
		Sha256(ctx, &buf, hash);
		if (stored_hash == NULL || VARSIZE_ANY_EXHDR(stored_hash) != HASH_LEN ||
			memcmp(VARDATA_ANY(stored_hash), hash, HASH_LEN) != 0)
			Bad(v, b.height, "the stored hash does not match the block's contents");
		if (have_digest && b.height == digest_height)
		{
			digest_seen = true;
			if (stored_hash == NULL || VARSIZE_ANY_EXHDR(stored_hash) != HASH_LEN ||
				memcmp(VARDATA_ANY(stored_hash), digest_hash, HASH_LEN) != 0)
				Bad(v, b.height, "this block differs from the digest: the chain was rewritten at or before this height");
		}
		/* the next block must link to the hash stored here (a bad hash was reported above) */
		if (stored_hash && VARSIZE_ANY_EXHDR(stored_hash) == HASH_LEN)
			memcpy(prev, VARDATA_ANY(stored_hash), HASH_LEN);
		else
			memcpy(prev, hash, HASH_LEN);
		expect = b.height + 1;
		MemoryContextSwitchTo(old);
		MemoryContextReset(per_block);
	}
	if (v->checked == 0)
		Bad(v, 0, "the ledger is empty: the genesis block is missing");
	if (have_digest && !digest_seen)
		Bad(v, digest_height, psprintf("the chain ends at height %lld, before the digest's height %lld",
									   (long long) v->height, (long long) digest_height));
	pg_cryptohash_free(ctx);
	MemoryContextDelete(per_block);
	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
	UnregisterSnapshot(snap);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
}

/* ---------------------------------------------------------------------------------------------- */
/* SQL-callable shims                                                                               */
/* ---------------------------------------------------------------------------------------------- */

Datum
mm_seal_ledger(PG_FUNCTION_ARGS)
{
	int64		max = PG_ARGISNULL(0) ? 100000 : PG_GETARG_INT64(0);
	int64		n;

	if (max < 1 || max > 1000000)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid max_blocks"),
						errdetail("Got " INT64_FORMAT ".", max), errhint("Seal from 1 to 1000000 entries per call.")));
	SPI_connect();
	n = MmLedgerSeal(max);
	SPI_finish();
	PG_RETURN_INT64(n);
}

Datum
mm_verify_ledger(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	Verdict		v;
	bool		have_digest = !PG_ARGISNULL(0);
	int64		digest_height = 0;
	uint8		digest_hash[HASH_LEN];

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "modelmine: verify_ledger must return a composite");
	if (have_digest)
	{
		Jsonb	   *dg = PG_GETARG_JSONB_P(0);
		JsonbValue	h,
					x;
		bool		ok = JB_ROOT_IS_OBJECT(dg) && !JB_ROOT_IS_SCALAR(dg) &&
			getKeyJsonValueFromContainer(&dg->root, "height", 6, &h) != NULL && h.type == jbvNumeric &&
			getKeyJsonValueFromContainer(&dg->root, "hash", 4, &x) != NULL && x.type == jbvString &&
			ParseHex(x.val.string.val, x.val.string.len, digest_hash);

		if (ok)
		{
			Numeric		num = h.val.numeric;

			digest_height = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(num)));
			ok = digest_height >= 0;
		}
		if (!ok)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid digest"),
							errdetail("A digest is {\"height\": N, \"hash\": \"<64 hex digits>\"}."),
							errhint("Pass a value returned earlier by modelmine.ledger_digest().")));
	}
	VerifyChain(&v, have_digest, digest_height, digest_hash);
	values[0] = BoolGetDatum(v.ok);
	values[1] = Int64GetDatum(v.height);
	nulls[2] = v.first_bad < 0;
	values[2] = Int64GetDatum(v.first_bad);
	nulls[3] = v.reason == NULL;
	values[3] = v.reason ? CStringGetTextDatum(v.reason) : (Datum) 0;
	values[4] = Int64GetDatum(v.checked);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* Install time: the genesis block (height 0, links to 32 zero bytes, no job). */
Datum
mm_ledger_genesis(PG_FUNCTION_ARGS)
{
	static MmPlan ins = {
		"INSERT INTO modelmine.ledger (height, prev_hash, hash, created_at) VALUES (0, $1, $2, $3)",
	3, {BYTEAOID, BYTEAOID, TIMESTAMPTZOID}};
	Block		b = {0};
	uint8		zero[HASH_LEN] = {0},
				hash[HASH_LEN];
	StringInfoData buf;
	pg_cryptohash_ctx *ctx = NewSha256();
	Datum		args[3];

	for (int c = 0; c <= L_NCOLS; c++)
		b.isnull[c] = true;
	b.height = 0;
	b.prev = zero;
	b.created_at = GetCurrentTransactionStartTimestamp();
	initStringInfo(&buf);
	Preimage(&buf, &b);
	Sha256(ctx, &buf, hash);
	pg_cryptohash_free(ctx);
	args[0] = PointerGetDatum(ByteaOf(zero, HASH_LEN));
	args[1] = PointerGetDatum(ByteaOf(hash, HASH_LEN));
	args[2] = TimestampTzGetDatum(b.created_at);
	SPI_connect();
	MmExec(&ins, args, NULL, false, 0);
	SPI_finish();
	PG_RETURN_VOID();
}

/* The preimage of a stored block, for documentation, tests and third parties comparing bytes. */
Datum
mm_block_preimage(PG_FUNCTION_ARGS)
{
	static MmPlan get = {
		"SELECT height, prev_hash, hash, job_id, user_id, node_id, stake, reward, fee, accuracy, loss, epochs, "
		"       completed_at, created_at FROM modelmine.ledger WHERE height = $1", 1, {INT8OID}};
	MemoryContext cxt = CurrentMemoryContext;
	Datum		args[1];
	Block		b = {0};
	StringInfoData buf;
	bytea	   *result = NULL;
	bool		isnull[L_NCOLS + 1];
	Datum		d[L_NCOLS + 1];

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("height is required"),
						errhint("Pass a block height from modelmine.ledger().")));
	args[0] = Int64GetDatum(PG_GETARG_INT64(0));
	SPI_connect();
	if (MmExec(&get, args, NULL, true, 1) == 1)
	{
		for (int c = 1; c <= L_NCOLS; c++)
			d[c] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, c, &isnull[c]);
		b.height = DatumGetInt64(d[L_HEIGHT]);
		b.prev = (uint8 *) VARDATA_ANY(DatumGetByteaPP(d[L_PREV]));
		for (int c = L_JOB; c <= L_EPOCHS; c++)
		{
			b.isnull[c] = isnull[c];
			if (!isnull[c] && c != L_ACCURACY && c != L_LOSS)
				b.ints[c] = DatumGetInt64(d[c]);
		}
		b.accuracy = isnull[L_ACCURACY] ? NULL : DatumGetTextPP(d[L_ACCURACY]);
		b.loss = isnull[L_LOSS] ? NULL : DatumGetTextPP(d[L_LOSS]);
		b.isnull[L_COMPLETED] = isnull[L_COMPLETED];
		b.completed_at = isnull[L_COMPLETED] ? 0 : DatumGetTimestampTz(d[L_COMPLETED]);
		b.created_at = DatumGetTimestampTz(d[L_CREATED]);
		initStringInfo(&buf);
		Preimage(&buf, &b);
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			result = (bytea *) palloc(VARHDRSZ + buf.len);
			SET_VARSIZE(result, VARHDRSZ + buf.len);
			memcpy(VARDATA(result), buf.data, buf.len);
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	if (result == NULL)
		ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND), errmsg("no block at height " INT64_FORMAT, PG_GETARG_INT64(0)),
						errhint("See modelmine.ledger_digest() for the current height.")));
	PG_RETURN_BYTEA_P(result);
}
