/*
 * ledger.c — the tamper-evident ledger: one block per completed job, SHA-256 hash-chained.
 *
 * Encoding (docs/LEDGER.md is the normative text): hash = SHA-256(prev_hex "\n" data "\n" created),
 * where data =
 * "modelmine-block-v1|height|job|user|node|stake|reward|fee|accuracy|loss|epochs|completed",
 * integers in plain decimal, accuracy and loss as their stored decimal text, timestamps as UTC
 * "YYYY-MM-DDTHH:MM:SS.ffffffZ", a NULL field as the empty string.
 *
 * Concurrency.  complete_job() does not touch the chain head: it appends the job's entry to
 * modelmine.ledger_queue, in its own transaction, with no shared lock.  Sealing (queue -> blocks)
 * runs under a transaction-level advisory lock taken with pg_try_advisory_xact_lock: whoever gets
 * it seals everything committed (and its own entry) in one pass; everybody else skips sealing
 * instead of waiting.  So completions never queue behind one another.  Sealing runs at commit
 * (housekeeping.c), never inside a call, so no open transaction can sit on the seal lock.  It runs
 * in READ COMMITTED only, after the lock is held, so it reads the head with a snapshot taken after
 * the previous sealer committed: two blocks can never share a previous hash (and UNIQUE (prev_hash)
 * / PRIMARY KEY (height) would refuse it anyway).  Sealing happens when a completion, a claim or a
 * ledger read commits, so an entry waits at most until the next of those.
 *
 * Verification reads blocks without the executor or SPI: a sequential heap scan while heights come
 * in order (the normal case for an append-only table), else a height-ordered btree walk.  Each
 * block is formatted into one reused buffer inside a per-block memory context that is reset every
 * block, so memory stays constant whatever the length of the chain.
 */
#include "modelmine.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
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
#define HASH_LEN MM_SHA256_LEN
#define SEAL_DEFAULT 100000		/* seal_ledger's max_blocks when NULL: mirrors its SQL DEFAULT */
#define SEAL_MAX 1000000		/* seal_ledger's largest max_blocks */

/* Column numbers of modelmine.ledger, checked against the catalog before a scan. */
enum
{
	L_HEIGHT = 1, L_PREV, L_HASH, L_JOB, L_USER, L_NODE, L_STAKE, L_REWARD, L_FEE, L_ACCURACY,
	L_LOSS, L_EPOCHS, L_COMPLETED, L_CREATED, L_NCOLS = L_CREATED
};
static const char *const ledger_cols[] = {"height", "prev_hash", "hash", "job_id", "user_id",
	"node_id", "stake", "reward", "fee", "accuracy", "loss", "epochs", "completed_at",
	"created_at"};

typedef struct Block
{
	int64		height;
	const uint8 *prev;			/* HASH_LEN bytes */
	bool		isnull[L_NCOLS + 1];
	/* job, user, node, stake, reward, fee, epochs by column number */
	int64		ints[L_NCOLS + 1];
	text	   *accuracy;
	text	   *loss;
	TimestampTz completed_at;
	TimestampTz created_at;
} Block;

/* ---------------------------------------------------------------------------------------------- */
/* Canonical encoding                                                                             */
/* ---------------------------------------------------------------------------------------------- */

/*
 * The encoders write into a buffer already enlarged for the whole preimage (PreimageBound), through
 * a cursor: verification formats a million blocks a second, so no per-character bounds checks.
 */
/* v in plain decimal. */
static char *
PutInt64(char *p, int64 v)
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
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Two decimal digits of v (0..99). */
static inline char *
Put2(char *p, int v)
{
	p[0] = (char) ('0' + v / 10);
	p[1] = (char) ('0' + v % 10);
	return p + 2;
}

/* UTC "YYYY-MM-DDTHH:MM:SS.ffffffZ" without the time zone machinery (civil-from-days). */
static char *
PutTimestamp(char *p, TimestampTz t)
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
	int			f;

	if (TIMESTAMP_NOT_FINITE(t))
	{
		const char *inf = TIMESTAMP_IS_NOBEGIN(t) ? "-infinity" : "infinity";

		memcpy(p, inf, strlen(inf));
		return p + strlen(inf);
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
		p = Put2(Put2(p, (int) (y / 100)), (int) (y % 100));
	else
		p = PutInt64(p, y);
	*p++ = '-';
	p = Put2(p, (int) m);
	*p++ = '-';
	p = Put2(p, (int) d);
	*p++ = 'T';
	p = Put2(p, (int) (us / USECS_PER_HOUR));
	*p++ = ':';
	p = Put2(p, (int) (us / USECS_PER_MINUTE % 60));
	*p++ = ':';
	p = Put2(p, (int) (us / USECS_PER_SEC % 60));
	*p++ = '.';
	f = (int) (us % USECS_PER_SEC);
	p = Put2(Put2(Put2(p, f / 10000), f / 100 % 100), f % 100);
	*p++ = 'Z';
	return p;
}

/* '|' and an integer column, or just '|' when it is NULL. */
static char *
PutOptInt(char *p, const Block *b, int col)
{
	*p++ = '|';
	return b->isnull[col] ? p : PutInt64(p, b->ints[col]);
}

/* '|' and a text column's bytes, or just '|' when it is NULL. */
static char *
PutOptText(char *p, text *t)
{
	*p++ = '|';
	if (t)
	{
		memcpy(p, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		p += VARSIZE_ANY_EXHDR(t);
	}
	return p;
}

/* The exact bytes that are hashed (docs/LEDGER.md). */
static void
Preimage(StringInfo s, const Block *b)
{
	static const char tag[] = "\nmodelmine-block-v1|";
	/*
	 * hex + tag + 7 integers and 2 timestamps of at most 32 bytes each + separators + the two
	 * texts
	 */
	size_t		bound = 2 * HASH_LEN + sizeof(tag) + 9 * 32 + 16 +
		(b->accuracy ? VARSIZE_ANY_EXHDR(b->accuracy) : 0) +
		(b->loss ? VARSIZE_ANY_EXHDR(b->loss) : 0);
	char	   *p;

	resetStringInfo(s);
	enlargeStringInfo(s, (int) bound);
	MmHex(b->prev, HASH_LEN, s->data);	/* its NUL is overwritten by the tag */
	p = s->data + 2 * HASH_LEN;
	memcpy(p, tag, sizeof(tag) - 1);
	p = PutInt64(p + sizeof(tag) - 1, b->height);
	p = PutOptInt(p, b, L_JOB);
	p = PutOptInt(p, b, L_USER);
	p = PutOptInt(p, b, L_NODE);
	p = PutOptInt(p, b, L_STAKE);
	p = PutOptInt(p, b, L_REWARD);
	p = PutOptInt(p, b, L_FEE);
	p = PutOptText(p, b->accuracy);
	p = PutOptText(p, b->loss);
	p = PutOptInt(p, b, L_EPOCHS);
	*p++ = '|';
	if (!b->isnull[L_COMPLETED])
		p = PutTimestamp(p, b->completed_at);
	*p++ = '\n';
	p = PutTimestamp(p, b->created_at);
	s->len = (int) (p - s->data);
	s->data[s->len] = '\0';
}

/*
 * The content columns of a block (job_id .. completed_at, created_at) from one row's values, where
 * column L_X is at d[L_X - 1], as in a tuple slot.  Height and prev_hash are the caller's: sealing
 * computes them, verification checks them first.
 */
static void
DecodeBlock(Block *b, const Datum *d, const bool *isnull)
{
	for (int c = L_JOB; c <= L_COMPLETED; c++)
	{
		b->isnull[c] = isnull[c - 1];
		if (!b->isnull[c] && c != L_ACCURACY && c != L_LOSS && c != L_COMPLETED)
			b->ints[c] = DatumGetInt64(d[c - 1]);
	}
	b->accuracy = isnull[L_ACCURACY - 1] ? NULL : DatumGetTextPP(d[L_ACCURACY - 1]);
	b->loss = isnull[L_LOSS - 1] ? NULL : DatumGetTextPP(d[L_LOSS - 1]);
	b->completed_at = isnull[L_COMPLETED - 1] ? 0 : DatumGetTimestampTz(d[L_COMPLETED - 1]);
	b->created_at = isnull[L_CREATED - 1] ? 0 : DatumGetTimestampTz(d[L_CREATED - 1]);
}

/* SHA-256 of a block's preimage. */
static void
BlockHash(const StringInfo preimage, uint8 *out)
{
	MmSha256(preimage->data, preimage->len, out);
}

/* ---------------------------------------------------------------------------------------------- */
/* Sealing                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

#define SEAL_PASS 5000			/* entries per pass: bounds the memory of one pass */

/*
 * One sealing pass over up to max queued entries (caller holds the seal lock); returns blocks
 * added.
 */
static int64
SealPass(int64 max)
{
	static MmPlan head = {
		"SELECT height, hash FROM modelmine.ledger ORDER BY height DESC LIMIT 1", 0, {0}};
	static MmPlan queued = {
		"SELECT id, job_id, user_id, node_id, stake, reward, fee, "
		"accuracy, loss, epochs, completed_at "
		"  FROM modelmine.ledger_queue ORDER BY id LIMIT $1", 1, {INT8OID}};
	/*
	 * one array parameter per ledger column, in column order, unnested in the target list: row by
	 * row in height order (a FROM-list unnest materialized each array first)
	 */
	static MmPlan append = {
		"INSERT INTO modelmine.ledger "
		"(height, prev_hash, hash, job_id, user_id, node_id, stake, reward, fee, "
		"                              accuracy, loss, epochs, completed_at, created_at) "
		"SELECT pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), "
		"       pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), "
		"       pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($9), "
		"       pg_catalog.unnest($10), pg_catalog.unnest($11), pg_catalog.unnest($12), "
		"       pg_catalog.unnest($13), pg_catalog.unnest($14)", L_NCOLS,
		{INT8ARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
		INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID,
	TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID}};
	static MmPlan dequeue = {"DELETE FROM modelmine.ledger_queue WHERE id <= $1 AND id = ANY "
							 "($2::int8[])",
	2, {INT8OID, INT8ARRAYOID}};
	static const Oid elem_types[L_NCOLS] = {INT8OID, BYTEAOID, BYTEAOID, INT8OID, INT8OID, INT8OID,
	INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	uint64		n;
	bool		isnull;
	uint8		prev[HASH_LEN];
	int64		height,
				maxid = 0;
	Datum	   *cols[L_NCOLS];
	bool	   *nulls[L_NCOLS];
	Datum	   *ids;
	Datum		args[L_NCOLS];
	StringInfoData buf;
	TimestampTz created = GetCurrentTimestamp();

	args[0] = Int64GetDatum(max);
	n = MmExec(&queued, args, NULL, false, max);
	if (n == 0)
		return 0;
	/* copy the batch out: the head query below replaces SPI_tuptable */
	for (int c = 0; c < L_NCOLS; c++)
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

			cols[c][i] = nulls[c][i] ? (Datum) 0 : datumCopy(d, elem_types[c] != TEXTOID,
															 elem_types[c] == TEXTOID ? -1 : 8);
		}
	}
	SPI_freetuptable(SPI_tuptable);
	if (MmExec(&head, NULL, NULL, false, 1) != 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("the ledger has no genesis block"),
						errhint("Run SELECT * FROM modelmine.verify_ledger() and restore the "
								"ledger from a backup.")));
	height = MmInt64(0, 1, NULL);
	{
		bytea	   *h = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 2, &isnull));

		if (VARSIZE_ANY_EXHDR(h) != HASH_LEN)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("the ledger head hash is "
																	"malformed")));
		memcpy(prev, VARDATA_ANY(h), HASH_LEN);
	}
	SPI_freetuptable(SPI_tuptable);

	initStringInfo(&buf);
	for (uint64 i = 0; i < n; i++)
	{
		Block		b = {0};
		uint8		hash[HASH_LEN];
		Datum		d[L_NCOLS];
		bool		dnull[L_NCOLS];

		/* column L_X of entry i lives in cols[L_X - 1][i] */
		for (int c = 0; c < L_NCOLS; c++)
		{
			d[c] = cols[c][i];
			dnull[c] = nulls[c][i] || c < L_JOB - 1;
		}
		DecodeBlock(&b, d, dnull);
		b.height = ++height;
		b.prev = prev;
		b.created_at = created;
		Preimage(&buf, &b);
		BlockHash(&buf, hash);

		cols[L_HEIGHT - 1][i] = Int64GetDatum(b.height);
		cols[L_PREV - 1][i] = PointerGetDatum(MmBytea(prev, HASH_LEN));
		cols[L_HASH - 1][i] = PointerGetDatum(MmBytea(hash, HASH_LEN));
		cols[L_CREATED - 1][i] = TimestampTzGetDatum(created);
		memcpy(prev, hash, HASH_LEN);
	}
	for (int c = 0; c < L_NCOLS; c++)
	{
		int			dims[1] = {(int) n},
					lbs[1] = {1};
		int16		typlen;
		bool		typbyval;
		char		typalign;

		get_typlenbyvalalign(elem_types[c], &typlen, &typbyval, &typalign);
		args[c] = PointerGetDatum(construct_md_array(cols[c], nulls[c], 1, dims, lbs, elem_types[c],
													 typlen, typbyval, typalign));
	}
	MmExec(&append, args, NULL, false, 0);
	args[0] = Int64GetDatum(maxid);
	args[1] = PointerGetDatum(construct_array(ids, (int) n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	MmExec(&dequeue, args, NULL, false, 0);
	return (int64) n;
}

/*
 * Seals up to max queued entries into blocks, if this transaction can take the seal lock without
 * waiting.  Returns the number of blocks appended.
 */
int64
MmLedgerSeal(int64 max)
{
	/*
	 * by the index (a probe plan): every seal deletes what it sealed, and a seq scan read each row
	 * deleted since the last vacuum at every commit (0.44 ms a call in a drain; 0.13 by the index,
	 * whose scan marks the dead entries once)
	 */
	static MmPlan pending = {
	"SELECT EXISTS (SELECT 1 FROM modelmine.ledger_queue)", 0, {0}, MM_PROBE};
	int64		total = 0;

	/* a fixed snapshot could predate the previous sealer's commit: seal only in READ COMMITTED */
	if (XactIsoLevel != XACT_READ_COMMITTED || XactReadOnly || RecoveryInProgress())
		return 0;
	/*
	 * the lock is held to commit: don't take it (and stall other sealers) when there is nothing
	 * to do
	 */
	if (MmExec(&pending, NULL, NULL, false, 1) != 1 || !MmInt64(0, 1, NULL))
		return 0;
	if (!DatumGetBool(DirectFunctionCall1(pg_try_advisory_xact_lock_int8,
										  Int64GetDatum(LEDGER_LOCK_KEY))))
		return 0;
	while (total < max)
	{
		int64		want = Min(SEAL_PASS, max - total);
		MemoryContext pass = AllocSetContextCreate(CurrentMemoryContext, "modelmine seal pass",
												   ALLOCSET_DEFAULT_SIZES);
		MemoryContext old = MemoryContextSwitchTo(pass);
		int64		n = SealPass(want);

		MemoryContextSwitchTo(old);
		MemoryContextDelete(pass);
		total += n;
		if (n < want)
			break;
	}
	return total;
}

/* ---------------------------------------------------------------------------------------------- */
/* Verification                                                                                   */
/* ---------------------------------------------------------------------------------------------- */

typedef struct Verdict
{
	bool		ok;
	int64		height;			/* last height read */
	int64		first_bad;		/* -1 when none */
	char	   *reason;			/* allocated in cxt */
	int64		checked;
	MemoryContext cxt;			/* outlives the per-block context the reason is found in */
} Verdict;

/* Records the first problem; the reason is copied out of the per-block context, which is reset. */
static void
Bad(Verdict *v, int64 height, const char *reason)
{
	if (!v->ok)
		return;
	v->ok = false;
	v->first_bad = height;
	v->reason = MemoryContextStrdup(v->cxt, reason);
}

/* Opens modelmine.ledger after checking its columns are the ones this file decodes. */
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
		elog(ERROR, "modelmine: modelmine.ledger has %d columns, expected %d",
			 desc->natts, L_NCOLS);
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

/*
 * One pass over the chain.  by_index = false reads the heap in physical order, which for an
 * append-only table is height order; the moment a height is out of sequence that pass gives up
 * (returns false) and the caller repeats with by_index = true, the height-ordered btree walk that
 * reports gaps and disorder.
 */
static bool
VerifyPass(Verdict *v, Relation rel, Snapshot snap, bool by_index, bool have_digest,
		   int64 digest_height, const uint8 *digest_hash)
{
	Relation	idx = by_index ? index_open(RelationGetPrimaryKeyIndex(rel),
											AccessShareLock) : NULL;
	IndexScanDesc iscan = by_index ? index_beginscan(rel, idx, snap, 0, 0) : NULL;
	TableScanDesc hscan = by_index ? NULL : table_beginscan_strat(rel, snap, 0, NULL, true, false);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	MemoryContext per_block = AllocSetContextCreate(CurrentMemoryContext, "modelmine ledger verify",
													ALLOCSET_DEFAULT_SIZES);
	StringInfoData buf;
	uint8		prev[HASH_LEN];
	uint8		hash[HASH_LEN];
	int64		expect = 0;
	bool		digest_seen = false,
				in_order = true;

	memset(prev, 0, HASH_LEN);	/* genesis links to 32 zero bytes */
	initStringInfo(&buf);
	v->ok = true;
	v->cxt = CurrentMemoryContext;
	v->height = -1;
	v->first_bad = -1;
	v->reason = NULL;
	v->checked = 0;
	if (iscan)
		index_rescan(iscan, NULL, 0, NULL, 0);
	while (by_index ? index_getnext_slot(iscan, ForwardScanDirection, slot)
		   : table_scan_getnextslot(hscan, ForwardScanDirection, slot))
	{
		MemoryContext old;
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
		if (b.height != expect)
		{
			if (!by_index)
			{
				in_order = false;
				break;
			}
			Bad(v, expect, b.height > expect
				? psprintf("block %lld is missing (the next block has height %lld)",
						   (long long) expect, (long long) b.height)
				: psprintf("height %lld appears out of order", (long long) b.height));
			expect = b.height;
		}
		old = MemoryContextSwitchTo(per_block);
		v->height = b.height;
		v->checked++;
		stored_prev = isnull[L_PREV - 1] ? NULL : DatumGetByteaPP(d[L_PREV - 1]);
		stored_hash = isnull[L_HASH - 1] ? NULL : DatumGetByteaPP(d[L_HASH - 1]);
		if (stored_prev == NULL || VARSIZE_ANY_EXHDR(stored_prev) != HASH_LEN ||
			memcmp(VARDATA_ANY(stored_prev), prev, HASH_LEN) != 0)
			Bad(v, b.height, expect == 0 ? "the genesis block does not link to 32 zero bytes"
				: "prev_hash does not equal the hash of the block before it");
		b.prev = stored_prev && VARSIZE_ANY_EXHDR(stored_prev) == HASH_LEN ?
			(uint8 *) VARDATA_ANY(stored_prev) : prev;
		DecodeBlock(&b, d, isnull);
		Preimage(&buf, &b);
		BlockHash(&buf, hash);
		if (stored_hash == NULL || VARSIZE_ANY_EXHDR(stored_hash) != HASH_LEN ||
			memcmp(VARDATA_ANY(stored_hash), hash, HASH_LEN) != 0)
			Bad(v, b.height, "the stored hash does not match the block's contents");
		if (have_digest && b.height == digest_height)
		{
			digest_seen = true;
			if (stored_hash == NULL || VARSIZE_ANY_EXHDR(stored_hash) != HASH_LEN ||
				memcmp(VARDATA_ANY(stored_hash), digest_hash, HASH_LEN) != 0)
				Bad(v, b.height, "this block differs from the digest: the chain was rewritten at "
								 "or before this height");
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
	if (in_order)
	{
		if (v->checked == 0)
			Bad(v, 0, "the ledger is empty: the genesis block is missing");
		if (have_digest && !digest_seen)
			Bad(v, digest_height, psprintf("the chain ends at height %lld, before the digest's "
										   "height %lld",
										   (long long) v->height, (long long) digest_height));
	}
	MemoryContextDelete(per_block);
	ExecDropSingleTupleTableSlot(slot);
	if (iscan)
	{
		index_endscan(iscan);
		index_close(idx, AccessShareLock);
	}
	else
		table_endscan(hscan);
	return in_order;
}

/*
 * Verifies the chain under one snapshot: the heap pass, then the btree walk if heights are out of
 * order.
 */
static void
VerifyChain(Verdict *v, bool have_digest, int64 digest_height, const uint8 *digest_hash)
{
	Relation	rel = OpenLedger();
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());

	if (!VerifyPass(v, rel, snap, false, have_digest, digest_height, digest_hash))
		(void) VerifyPass(v, rel, snap, true, have_digest, digest_height, digest_hash);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
}

/* ---------------------------------------------------------------------------------------------- */
/* SQL-callable shims                                                                             */
/* ---------------------------------------------------------------------------------------------- */

/* seal_ledger(max_blocks): seals queued entries now, if no other sealer holds the lock. */
Datum
mm_seal_ledger(PG_FUNCTION_ARGS)
{
	int64		max = PG_ARGISNULL(0) ? SEAL_DEFAULT : PG_GETARG_INT64(0);
	int64		n;

	if (max < 1 || max > SEAL_MAX)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid max_blocks"),
						errdetail("Got " INT64_FORMAT ".", max),
						errhint("Seal from 1 to " CppAsString2(SEAL_MAX) " entries per call.")));
	MmConnect();
	n = MmLedgerSeal(max);
	SPI_finish();
	PG_RETURN_INT64(n);
}

/* verify_ledger(digest): the whole chain's verdict, optionally against an earlier digest. */
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
			getKeyJsonValueFromContainer(&dg->root, "height", 6, &h) != NULL &&
			h.type == jbvNumeric &&
			getKeyJsonValueFromContainer(&dg->root, "hash", 4, &x) != NULL && x.type == jbvString &&
			ParseHex(x.val.string.val, x.val.string.len, digest_hash);

		if (ok)
		{
			/* a whole number in range, checked before any cast can round it or overflow */
			Numeric		num = h.val.numeric;
			float8		f = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
															   NumericGetDatum(num)));
			Numeric		whole = DatumGetNumeric(DirectFunctionCall2(numeric_trunc,
																	NumericGetDatum(num),
																	Int32GetDatum(0)));

			ok = f >= 0 && f < 9.0e18 &&
				DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(num),
												  NumericGetDatum(whole))) == 0;
			if (ok)
				digest_height = DatumGetInt64(DirectFunctionCall1(numeric_int8,
																  NumericGetDatum(num)));
		}
		if (!ok)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid digest"),
							errdetail("A digest is {\"height\": N, \"hash\": \"<64 hex digits>\"} "
									  "with N a whole number of 0 or more."),
							errhint("Pass a value returned earlier by "
									"modelmine.ledger_digest().")));
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
	Datum		args[3];

	for (int c = 0; c <= L_NCOLS; c++)
		b.isnull[c] = true;
	b.height = 0;
	b.prev = zero;
	b.created_at = GetCurrentTransactionStartTimestamp();
	initStringInfo(&buf);
	Preimage(&buf, &b);
	BlockHash(&buf, hash);
	args[0] = PointerGetDatum(MmBytea(zero, HASH_LEN));
	args[1] = PointerGetDatum(MmBytea(hash, HASH_LEN));
	args[2] = TimestampTzGetDatum(b.created_at);
	MmConnect();
	MmExec(&ins, args, NULL, false, 0);
	SPI_finish();
	PG_RETURN_VOID();
}

/* The preimage of a stored block, for documentation, tests and third parties comparing bytes. */
Datum
mm_block_preimage(PG_FUNCTION_ARGS)
{
	static MmPlan get = {
		"SELECT height, prev_hash, hash, job_id, user_id, node_id, "
		"stake, reward, fee, accuracy, loss, epochs, "
		"       completed_at, created_at FROM modelmine.ledger WHERE height = $1", 1, {INT8OID}};
	MemoryContext cxt = CurrentMemoryContext;
	Datum		args[1];
	Block		b = {0};
	StringInfoData buf;
	bytea	   *result = NULL;
	bool		isnull[L_NCOLS];
	Datum		d[L_NCOLS];

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("height is required"),
						errhint("Pass a block height from modelmine.ledger().")));
	args[0] = Int64GetDatum(PG_GETARG_INT64(0));
	MmConnect();
	if (MmExec(&get, args, NULL, true, 1) == 1)
	{
		for (int c = 0; c < L_NCOLS; c++)
			d[c] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, c + 1, &isnull[c]);
		b.height = DatumGetInt64(d[L_HEIGHT - 1]);
		if (isnull[L_PREV - 1] || VARSIZE_ANY_EXHDR(DatumGetByteaPP(d[L_PREV - 1])) != HASH_LEN)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
							errmsg("block " INT64_FORMAT " has a malformed prev_hash", b.height),
							errdetail("A prev_hash is 32 bytes."),
							errhint("Run SELECT * FROM modelmine.verify_ledger() to find every "
									"damaged block.")));
		b.prev = (uint8 *) VARDATA_ANY(DatumGetByteaPP(d[L_PREV - 1]));
		DecodeBlock(&b, d, isnull);
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
		ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
						errmsg("no block at height " INT64_FORMAT, PG_GETARG_INT64(0)),
						errhint("See modelmine.ledger_digest() for the current height.")));
	PG_RETURN_BYTEA_P(result);
}
