/*
 * tokens.c — double-entry token movements, with credits appended rather than locked.
 *
 * A movement is one immutable journal row plus its effect on two balances, in one transaction.  An
 * account's balance is accounts.balance (folded) plus its rows in account_deltas (not yet folded).
 *
 * Locking: a movement locks at most one row, the payer's own, and only when the payer is a user or
 * a node (accounts from MM_FIRST_OWNED_ACCOUNT on): that row is locked (FOR NO KEY UPDATE, which
 * foreign key checks do not conflict with), the payer's unfolded deltas are folded into it and the
 * debit is checked against the result, so two spends of the same tokens serialise on the payer's
 * row and the second sees what the first left.  Every other effect is an appended account_deltas
 * row that locks nothing: every credit, and debits of the system accounts (issuance, escrow, fee),
 * whose balance is guaranteed by the job lifecycle instead (a stake leaves escrow exactly once, in
 * the UPDATE that settles its job).  So no user or node can make another wait by holding a
 * transaction open: not by holding escrow, not by holding the account of someone they pay.
 *
 * Folding (MmFoldCredits, at commit, see housekeeping.c) moves committed deltas into
 * accounts.balance for the accounts it can lock without waiting (SKIP LOCKED), under a try-lock so
 * one folder runs at a time.  A payer's own row is locked before its deltas are touched, by folder
 * and payer alike, so the two can never deadlock.
 */
#include "modelmine.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

PG_FUNCTION_INFO_V1(mm_balance);
PG_FUNCTION_INFO_V1(mm_transfer);
PG_FUNCTION_INFO_V1(mm_mint);

#define CREDITS_LOCK_KEY INT64CONST(0x6d6d637265646974)	/* "mmcredit" */
#define MINT_LOCK_KEY INT64CONST(0x6d6d6d696e746572)	/* "mmminter": mints are serialised */

/* Validates an amount argument: present, positive, at most MM_MAX_AMOUNT. */
int64
MmCheckAmount(const char *field, Datum value, bool isnull)
{
	int64		amount = isnull ? 0 : DatumGetInt64(value);

	if (isnull)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s is required", field),
						errhint("Pass a whole number of tokens, at least 1.")));
	if (amount < 1 || amount > MM_MAX_AMOUNT)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid %s", field),
						errdetail("Got " INT64_FORMAT ".", amount),
						errhint("Pass a whole number of tokens from 1 to " INT64_FORMAT ".",
								(int64) MM_MAX_AMOUNT)));
	return amount;
}

/*
 * The journal row and the appended deltas of one movement: the credit always, and the debit too
 * when the payer is a system account (an owned payer's debit was applied to its locked row).
 * Returns the journal id.
 */
static int64
Record(int64 debit, int64 credit, int64 amount, const char *reason, int64 job_id)
{
	static MmPlan post = {
		"WITH j AS (INSERT INTO modelmine.journal "
		"(debit_account, credit_account, amount, reason, job_id) "
		"           VALUES ($1, $2, $3, $4, $5) RETURNING id), "
		"d AS (INSERT INTO modelmine.account_deltas (account_id, amount) "
		"      SELECT $2, $3 UNION ALL SELECT $1, -$3 WHERE $1 < $6) "
		"SELECT id FROM j", 6, {INT8OID, INT8OID, INT8OID, TEXTOID, INT8OID, INT8OID}};
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', job_id ? ' ' : 'n', ' '};

	Assert(amount > 0 && debit != credit);
	args[0] = Int64GetDatum(debit);
	args[1] = Int64GetDatum(credit);
	args[2] = Int64GetDatum(amount);
	args[3] = CStringGetTextDatum(reason);
	args[4] = Int64GetDatum(job_id);
	args[5] = Int64GetDatum(MM_FIRST_OWNED_ACCOUNT);
	MmExec(&post, args, nulls, false, 1);
	return MmInt64(0, 1, NULL);
}

/*
 * Locks an owned account's row, folds its committed deltas and debits amount if that leaves at
 * least keep tokens; returns false, debiting nothing, when it holds less (*have: what it holds).
 */
static bool
Debit(int64 payer, int64 amount, int64 keep, int64 *have)
{
	static MmPlan lock = {
		"SELECT balance FROM modelmine.accounts WHERE id = $1 FOR NO KEY UPDATE", 1, {INT8OID}};
	/* the row is locked: fold its committed deltas, then debit if the total covers the amount */
	static MmPlan spend = {
		"WITH d AS (DELETE FROM modelmine.account_deltas WHERE account_id = $1 RETURNING amount), "
		"s AS (SELECT COALESCE(pg_catalog.sum(amount), 0)::bigint AS unfolded FROM d) "
		"UPDATE modelmine.accounts a "
		"   SET balance = a.balance + s.unfolded - "
		"CASE WHEN a.balance + s.unfolded - $3 >= $2 THEN $2 ELSE 0 END "
		"  FROM s WHERE a.id = $1 RETURNING s.unfolded", 3, {INT8OID, INT8OID, INT8OID}};
	Datum		args[3] = {Int64GetDatum(payer), Int64GetDatum(amount), Int64GetDatum(keep)};
	int64		folded,
				total;

	Assert(payer >= MM_FIRST_OWNED_ACCOUNT);
	if (MmExecWaiting(&lock, args, NULL, 1, "account", payer) != 1)
		elog(ERROR, "modelmine: account " INT64_FORMAT " does not exist", payer);
	folded = MmInt64(0, 1, NULL);
	MmExec(&spend, args, NULL, false, 1);
	total = folded + MmInt64(0, 1, NULL);
	if (total - keep < amount)
	{
		if (have)
			*have = total;
		return false;
	}
	return true;
}

/*
 * A user or node pays amount from its own account, leaving at least keep tokens in it (a locked
 * signup grant, see grants.c).  Returns false, changing nothing the caller keeps (the caller
 * raises), when the account holds less than amount + keep; *have then says what it holds.
 */
bool
MmTrySpendKeeping(int64 payer, int64 payee, int64 amount, int64 keep, const char *reason,
				  int64 job_id, int64 *journal_id, int64 *have)
{
	if (!Debit(payer, amount, keep, have))
		return false;
	if (journal_id)
		*journal_id = Record(payer, payee, amount, reason, job_id);
	else
		(void) Record(payer, payee, amount, reason, job_id);
	MmAtCommit(MM_AT_COMMIT_CREDITS);
	return true;
}

/* An amount for an account (MmSumByAccount), sorted by account to sum them. */
typedef struct AccountAmount
{
	int64		account;
	int64		amount;
} AccountAmount;

static int
CompareAccount(const void *a, const void *b)
{
	int64		x = ((const AccountAmount *) a)->account,
				y = ((const AccountAmount *) b)->account;

	return (x > y) - (x < y);
}

/*
 * The distinct accounts of n amounts (int8 Datums) and each one's sum, ascending by account, those
 * that sum to zero left out; returns how many.  The credits a statement appends: balances only need
 * the sums.
 */
int
MmSumByAccount(int n, const Datum *accounts, const Datum *amounts, Datum **credit, Datum **sum)
{
	AccountAmount *p = palloc(sizeof(AccountAmount) * n);
	int			k = 0;

	for (int i = 0; i < n; i++)
	{
		p[i].account = DatumGetInt64(accounts[i]);
		p[i].amount = DatumGetInt64(amounts[i]);
	}
	qsort(p, n, sizeof(AccountAmount), CompareAccount);
	*credit = palloc(sizeof(Datum) * n);
	*sum = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		if (k > 0 && DatumGetInt64((*credit)[k - 1]) == p[i].account)
			(*sum)[k - 1] = Int64GetDatum(DatumGetInt64((*sum)[k - 1]) + p[i].amount);
		else
		{
			if (k > 0 && DatumGetInt64((*sum)[k - 1]) == 0)
				k--;			/* the last account summed to nothing */
			(*credit)[k] = Int64GetDatum(p[i].account);
			(*sum)[k++] = Int64GetDatum(p[i].amount);
		}
	}
	if (k > 0 && DatumGetInt64((*sum)[k - 1]) == 0)
		k--;
	return k;
}

/*
 * A user pays n amounts from its own account at once (submit_jobs): one lock and one debit of the
 * total, then a journal row per payment (payees[i], amounts[i], job_ids[i]) in one statement, in
 * order, and a credit per payee (the sum of its payments: balances only need the sums).  False,
 * changing nothing the caller keeps, when the account holds less than the total.
 */
bool
MmTrySpendEach(int64 payer, int n, const Datum *payees, const Datum *amounts, const char *reason,
			   const Datum *job_ids, int64 *have)
{
	/*
	 * The arrays are unnested in the target list (ProjectSet: row by row, in order) rather than by
	 * a FROM-list unnest, which materialized each array and then sorted the rows back into order;
	 * the credits are summed here.  The journal INSERT is the statement, so its count is
	 * SPI_processed.
	 */
	static MmPlan post = {
		"WITH d AS (INSERT INTO modelmine.account_deltas (account_id, amount) "
		"           SELECT pg_catalog.unnest($6::bigint[]), pg_catalog.unnest($7::bigint[])) "
		"INSERT INTO modelmine.journal (debit_account, credit_account, amount, reason, job_id) "
		"SELECT $1, pg_catalog.unnest($2::bigint[]), pg_catalog.unnest($3::bigint[]), $4, "
		"       pg_catalog.unnest($5::bigint[])",
	7, {INT8OID, INT8ARRAYOID, INT8ARRAYOID, TEXTOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID}};
	Datum		args[7];
	Datum	   *credit,
			   *sum;
	int			k;
	int64		total = 0;
	uint64		done;

	for (int i = 0; i < n; i++)
		total += DatumGetInt64(amounts[i]);		/* each <= max_stake <= 10^15, n <= 10^3 */
	if (!Debit(payer, total, 0, have))
		return false;
	k = MmSumByAccount(n, payees, amounts, &credit, &sum);
	args[0] = Int64GetDatum(payer);
	args[1] = PointerGetDatum(construct_array_builtin((Datum *) payees, n, INT8OID));
	args[2] = PointerGetDatum(construct_array_builtin((Datum *) amounts, n, INT8OID));
	args[3] = CStringGetTextDatum(reason);
	args[4] = PointerGetDatum(construct_array_builtin((Datum *) job_ids, n, INT8OID));
	args[5] = PointerGetDatum(construct_array_builtin(credit, k, INT8OID));
	args[6] = PointerGetDatum(construct_array_builtin(sum, k, INT8OID));
	done = MmExec(&post, args, NULL, false, 0);
	if (done != (uint64) n)
		elog(ERROR, "modelmine: " UINT64_FORMAT " of %d journal rows written", done, n);
	MmAtCommit(MM_AT_COMMIT_CREDITS);
	return true;
}

/* A user or node pays amount from its own account; false when it holds less (see above). */
bool
MmTrySpend(int64 payer, int64 payee, int64 amount, const char *reason, int64 job_id,
		   int64 *journal_id, int64 *have)
{
	return MmTrySpendKeeping(payer, payee, amount, 0, reason, job_id, journal_id, have);
}

/* Pays out of a system account (issuance, escrow, fee); never refused, never locks. */
int64
MmPayOut(int64 from, int64 to, int64 amount, const char *reason, int64 job_id)
{
	int64		id;

	Assert(from < MM_FIRST_OWNED_ACCOUNT);
	id = Record(from, to, amount, reason, job_id);
	MmAtCommit(MM_AT_COMMIT_CREDITS);
	return id;
}

/*
 * Folds committed deltas into the balances of the accounts no one has locked, unless another
 * transaction is folding; returns the number of deltas folded.  READ COMMITTED only
 * (housekeeping.c).
 */
int64
MmFoldCredits(void)
{
	/* by the index, as the ledger queue's check (ledger.c): 0.51 -> 0.07 ms a call in a drain */
	static MmPlan pending = {
	"SELECT EXISTS (SELECT 1 FROM modelmine.account_deltas)", 0, {0}, MM_PROBE};
	static MmPlan fold = {
		"WITH acc AS (SELECT a.id FROM modelmine.accounts a "
		"              WHERE a.id IN (SELECT account_id FROM modelmine.account_deltas) "
		"              ORDER BY a.id FOR NO KEY UPDATE OF a SKIP LOCKED), "
		"d AS (DELETE FROM modelmine.account_deltas x USING acc WHERE x.account_id = acc.id "
		"      RETURNING x.account_id, x.amount), "
		"s AS (SELECT account_id, pg_catalog.sum(amount)::bigint AS amount, "
		"pg_catalog.count(*) AS n "
		"        FROM d GROUP BY account_id), "
		"u AS (UPDATE modelmine.accounts a SET balance = a.balance + s.amount "
		"FROM s WHERE a.id = s.account_id) "
		"SELECT COALESCE(pg_catalog.sum(n), 0)::bigint FROM s", 0, {0}, MM_PROBE};

	if (MmExec(&pending, NULL, NULL, false, 1) != 1 || !MmInt64(0, 1, NULL))
		return 0;
	if (!DatumGetBool(DirectFunctionCall1(pg_try_advisory_xact_lock_int8,
										  Int64GetDatum(CREDITS_LOCK_KEY))))
		return 0;
	MmExec(&fold, NULL, NULL, false, 0);
	return MmInt64(0, 1, NULL);
}

/* An account's balance: folded plus unfolded deltas. */
int64
MmBalance(int64 account)
{
	static MmPlan get = {
		"SELECT a.balance + COALESCE((SELECT pg_catalog.sum(d.amount) "
		"FROM modelmine.account_deltas d "
		"                              WHERE d.account_id = a.id), 0)::bigint "
		"  FROM modelmine.accounts a WHERE a.id = $1", 1, {INT8OID}};
	Datum		args[1] = {Int64GetDatum(account)};

	if (MmExec(&get, args, NULL, true, 1) != 1)
		elog(ERROR, "modelmine: account " INT64_FORMAT " does not exist", account);
	return MmInt64(0, 1, NULL);
}

/*
 * Refuses to issue amount new tokens when the supply would pass the max_supply setting.  Exact for
 * mints (serialised by the caller); concurrent signups can overshoot by their grants at most, which
 * the headroom below bigint absorbs.
 */
void
MmCheckSupply(int64 amount, const char *what)
{
	int64		issued = -MmBalance(MM_ISSUANCE_ACCOUNT);
	int64		cap = MmSetting("max_supply");

	if (issued > cap - amount)
		ereport(ERROR, (errcode(ERRCODE_MM_SUPPLY_CAP), errmsg("token supply cap reached"),
						errdetail("%s of " INT64_FORMAT " tokens would raise the supply from "
								  INT64_FORMAT " to more than the cap of " INT64_FORMAT
								  " (setting max_supply).", what, amount, issued, cap),
						errhint("Issue fewer tokens, or have an admin raise max_supply.")));
}

/* The id of a user's account. */
int64
MmUserAccount(int64 user_id)
{
	static MmPlan find = {"SELECT id FROM modelmine.accounts WHERE user_id = $1", 1, {INT8OID}};
	Datum		args[1] = {Int64GetDatum(user_id)};

	if (MmExec(&find, args, NULL, true, 1) != 1)
		elog(ERROR, "modelmine: user " INT64_FORMAT " has no account", user_id);
	return MmInt64(0, 1, NULL);
}

/* A recipient by email, or 22023/P0002 naming the problem. */
static int64
Recipient(text *email_in, const char *field)
{
	char	   *email = MmNormaliseEmail(email_in);
	int64		id = MmUserIdByEmail(email);

	if (id == 0)
		ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND), errmsg("no user with %s %s", field, email),
						errhint("Check the address; the recipient must have signed up.")));
	return id;
}

/* Moves tokens from the signed-in user to another user; returns the journal id. */
static int64
Transfer(text *to_email, int64 amount)
{
	int64		me = MmRequireUser(false, NULL);
	int64		to = Recipient(to_email, "email");

	if (to == me)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("cannot transfer to yourself"),
						errhint("Pass another user's email.")));
	/* the locked part of a signup grant stays (grants.c) */
	return MmSpendTransferable(me, MmUserAccount(to), amount, "transfer", "transfer", "Transfer");
}

/* Admin: issues new tokens to a user, within max_supply; returns the journal id. */
static int64
Mint(text *email, int64 amount)
{
	static MmPlan serialise = {"SELECT pg_catalog.pg_advisory_xact_lock($1)", 1, {INT8OID}};
	Datum		args[1] = {Int64GetDatum(MINT_LOCK_KEY)};
	int64		to = MmUserAccount(Recipient(email, "email"));

	/* only admins mint, so only admins ever wait here, and lock_timeout bounds even that */
	MmExecWaiting(&serialise, args, NULL, 1, "minting", 0);
	MmCheckSupply(amount, "Minting");
	return MmPayOut(MM_ISSUANCE_ACCOUNT, to, amount, "mint", 0);
}

/* SQL: the signed-in user's balance (folded plus unfolded credits). */
Datum
mm_balance(PG_FUNCTION_ARGS)
{
	int64		balance;

	MmConnect();
	balance = MmBalance(MmUserAccount(MmRequireUser(true, NULL)));
	SPI_finish();
	PG_RETURN_INT64(balance);
}

/* SQL: transfer(to_email, amount). */
Datum
mm_transfer(PG_FUNCTION_ARGS)
{
	int64		amount = MmCheckAmount("amount", PG_GETARG_DATUM(1), PG_ARGISNULL(1));
	int64		id;

	MmConnect();
	id = Transfer(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), amount);
	SPI_finish();
	PG_RETURN_INT64(id);
}

/* SQL: mint(email, amount). */
Datum
mm_mint(PG_FUNCTION_ARGS)
{
	int64		amount = MmCheckAmount("amount", PG_GETARG_DATUM(1), PG_ARGISNULL(1));
	int64		id;

	MmConnect();
	id = Mint(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), amount);
	SPI_finish();
	PG_RETURN_INT64(id);
}
