/*
 * fees.c — paying a month's network fee to the nodes that did the work (distribute_fees).
 *
 * A completed job pays reward_pct of its stake to its node and the rest, the network fee, into one
 * of the 16 fee shards (32..47).  distribute_fees(period) pays the fees journaled in one UTC
 * calendar month that has ended to the nodes, each in proportion to the rewards it was journaled
 * in that month: floor(pool * reward / all rewards), so the rounding remainder stays in the fee
 * shards.
 *
 * Paying once: the month's row in fee_distributions is inserted first (ON CONFLICT DO NOTHING).  A
 * second call finds the row and returns its figures, paying nothing; a concurrent second call
 * waits for the first one's insert (bounded by lock_timeout_ms; only admins distribute, so only
 * admins wait) and then does the same, or pays if the first rolled back.
 *
 * Locking: none beyond that row.  A node's share is an appended credit, and the fee shards are
 * system accounts whose debits are appended too (tokens.c), so job completions crediting the same
 * shards never wait.  Each shard is debited at most what this month credited it, which is still
 * there: only this month's distribution takes this month's fees.
 */
#include "modelmine.h"

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(mm_distribute_fees);

/* Refuses a period that is not the first day of a UTC month that has ended; returns its end. */
static TimestampTz
CheckPeriod(DateADT period, TimestampTz *start)
{
	int			y,
				m,
				d;
	TimestampTz end;

	if (DATE_NOT_FINITE(period))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid period"),
						errdetail("Got an infinite date."),
						errhint("Pass the first day of a month, such as 2026-10-01.")));
	j2date(period + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	if (d != 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid period"),
						errdetail("%04d-%02d-%02d is not the first day of a month.", y, m, d),
						errhint("Pass the first day of the month to distribute, such as "
								"%04d-%02d-01.", y, m)));
	/* periods are UTC months: the timestamps of their midnights, with no time zone applied */
	*start = (TimestampTz) period * USECS_PER_DAY;
	end = (TimestampTz) (date2j(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) -
						 POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;
	if (end > GetCurrentTransactionStartTimestamp())
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("period %04d-%02d has not ended", y, m),
						errdetail("Fees are distributed per UTC calendar month, once it is over."),
						errhint("Distribute an earlier month, or this one after %s.",
								timestamptz_to_str(end))));
	return end;
}

/* The month's figures as distribute_fees returns them. */
static Datum
Report(DateADT period, bool paid_now)
{
	static MmPlan report = {
		"SELECT pg_catalog.jsonb_build_object('period', period, 'pool', pool, 'paid', paid, "
		"'nodes', nodes, 'distributed_at', distributed_at, 'distributed_by', distributed_by, "
		"'paid_now', $2) FROM modelmine.fee_distributions WHERE period = $1", 2,
	{DATEOID, BOOLOID}};
	Datum		args[2] = {DateADTGetDatum(period), BoolGetDatum(paid_now)};
	bool		isnull;
	Datum		d;

	/* not read-only: it must see the row this call inserted and updated */
	if (MmExec(&report, args, NULL, false, 1) != 1)
		elog(ERROR, "modelmine: no fee distribution for the period");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return SPI_datumTransfer(d, false, -1);	/* out of SPI's memory, for the caller */
}

/*
 * Pays the month's pool: each node's share comes out of the shards in order, a shard at a time
 * (at most nodes + 16 journal rows).  Returns what was paid; *pool and *nodes say the rest.
 */
static int64
Pay(TimestampTz start, TimestampTz end, int64 *pool, int *nodes)
{
	/* fee shards first, then each node's share; one scan of the month's journal */
	static MmPlan shares = {
		"WITH j AS (SELECT reason, credit_account AS account, pg_catalog.sum(amount) AS amount "
		"             FROM modelmine.journal "
		"            WHERE reason IN ('fee', 'reward') AND created_at >= $1 AND created_at < $2 "
		"            GROUP BY 1, 2), "
		"t AS (SELECT COALESCE(pg_catalog.sum(amount) FILTER (WHERE reason = 'fee'), 0) AS pool, "
		"             COALESCE(pg_catalog.sum(amount) FILTER (WHERE reason = 'reward'), 0) AS work "
		"        FROM j) "
		"SELECT 0 AS side, account, amount::bigint FROM j WHERE reason = 'fee' "
		"UNION ALL "
		"SELECT 1, j.account, pg_catalog.floor(t.pool * j.amount / t.work)::bigint "
		"  FROM j, t WHERE j.reason = 'reward' AND t.work > 0 "
		" ORDER BY 1, 2", 2, {TIMESTAMPTZOID, TIMESTAMPTZOID}};
	Datum		args[2] = {TimestampTzGetDatum(start), TimestampTzGetDatum(end)};
	uint64		n = MmExec(&shares, args, NULL, true, 0);
	int64	   *account = palloc(sizeof(int64) * (n + 1));
	int64	   *amount = palloc(sizeof(int64) * (n + 1));
	int			shards = 0;
	int64		paid = 0;
	uint64		shard = 0;

	*pool = 0;
	*nodes = 0;
	/* copied out first: every payment below replaces SPI_tuptable */
	for (uint64 i = 0; i < n; i++)
	{
		account[i] = MmInt64(i, 2, NULL);
		amount[i] = MmInt64(i, 3, NULL);
		if (MmInt64(i, 1, NULL) == 0)
		{
			shards++;
			*pool += amount[i];
		}
	}
	for (uint64 i = shards; i < n; i++)
	{
		int64		share = amount[i];

		if (share > 0)
			(*nodes)++;
		while (share > 0)
		{
			int64		take = Min(share, amount[shard]);

			/* the shares are rounded down, so the shards always cover them */
			Assert(shard < (uint64) shards);
			if (take > 0)
				MmPayOut(account[shard], account[i], take, "fee_distribution", 0);
			share -= take;
			paid += take;
			amount[shard] -= take;
			if (amount[shard] == 0)
				shard++;
		}
	}
	return paid;
}

/* Admin: distributes a month's network fee once; returns the month's figures. */
static Datum
DistributeFees(DateADT period)
{
	static MmPlan claim = {
		"INSERT INTO modelmine.fee_distributions (period, distributed_by) VALUES ($1, $2) "
		"ON CONFLICT (period) DO NOTHING RETURNING period", 2, {DATEOID, TEXTOID}};
	static MmPlan record = {
		"UPDATE modelmine.fee_distributions SET pool = $2, paid = $3, nodes = $4 WHERE period = $1",
		4, {DATEOID, INT8OID, INT8OID, INT4OID}};
	TimestampTz start,
				end = CheckPeriod(period, &start);
	Datum		args[4] = {DateADTGetDatum(period), CStringGetTextDatum(MmActorName())};
	int64		pool,
				paid;
	int			nodes;

	/* a concurrent call for the same month waits here for the first to commit or roll back */
	if (MmExecWaiting(&claim, args, NULL, 1, "this period's fee distribution", 0) != 1)
		return Report(period, false);
	paid = Pay(start, end, &pool, &nodes);
	args[1] = Int64GetDatum(pool);
	args[2] = Int64GetDatum(paid);
	args[3] = Int32GetDatum(nodes);
	MmExec(&record, args, NULL, false, 0);
	return Report(period, true);
}

/* SQL: distribute_fees(period) -> jsonb. */
Datum
mm_distribute_fees(PG_FUNCTION_ARGS)
{
	Datum		result;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("period is required"),
						errhint("Pass the first day of a month that has ended, such as "
								"2026-10-01.")));
	MmConnect();
	result = DistributeFees(PG_GETARG_DATEADT(0));
	SPI_finish();
	PG_RETURN_DATUM(result);
}
