/*
 * tokens.c — double-entry token movements.
 *
 * A movement is one immutable journal row plus two balance updates, in one transaction.  Locking: the two
 * account rows are locked (UPDATE) in ascending id order, so concurrent movements over the same accounts
 * can wait for each other but never deadlock.  The debit is a conditional UPDATE (balance >= amount), so
 * two concurrent spends of the same tokens are serialised by the row lock and the second one re-checks
 * the balance its predecessor left (READ COMMITTED re-evaluation), never overdrawing.  Only the issuance
 * account may go negative; a CHECK constraint backs that up.
 */
#include "modelmine.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(mm_balance);
PG_FUNCTION_INFO_V1(mm_transfer);
PG_FUNCTION_INFO_V1(mm_mint);

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
						errhint("Pass a whole number of tokens from 1 to " INT64_FORMAT ".", MM_MAX_AMOUNT)));
	return amount;
}

/*
 * Moves amount from debit to credit and journals it.  Returns false (nothing written by this call that
 * survives: the caller raises) when the debit account lacks the tokens; *debit_balance then holds what
 * it has.
 */
bool
MmTryTransfer(int64 debit, int64 credit, int64 amount, const char *reason, int64 job_id,
			  int64 *journal_id, int64 *debit_balance)
{
	static MmPlan take = {
		"UPDATE modelmine.accounts SET balance = balance - $2 "
		" WHERE id = $1 AND (balance >= $2 OR kind = 'issuance') RETURNING balance", 2, {INT8OID, INT8OID}};
	static MmPlan give = {
		"UPDATE modelmine.accounts SET balance = balance + $2 WHERE id = $1 RETURNING balance",
	2, {INT8OID, INT8OID}};
	static MmPlan have = {"SELECT balance FROM modelmine.accounts WHERE id = $1", 1, {INT8OID}};
	static MmPlan post = {
		"INSERT INTO modelmine.journal (debit_account, credit_account, amount, reason, job_id) "
		"VALUES ($1, $2, $3, $4, $5) RETURNING id", 5, {INT8OID, INT8OID, INT8OID, TEXTOID, INT8OID}};
	int64		order[2] = {Min(debit, credit), Max(debit, credit)};
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', job_id ? ' ' : 'n'};

	Assert(amount > 0 && debit != credit);
	for (int i = 0; i < 2; i++)
	{
		args[0] = Int64GetDatum(order[i]);
		args[1] = Int64GetDatum(amount);
		if (order[i] == debit)
		{
			if (MmExec(&take, args, NULL, false, 1) != 1)
			{
				if (MmExec(&have, args, NULL, false, 1) != 1)
					elog(ERROR, "modelmine: account " INT64_FORMAT " does not exist", debit);
				if (debit_balance)
					*debit_balance = MmInt64(0, 1, NULL);
				return false;
			}
		}
		else if (MmExec(&give, args, NULL, false, 1) != 1)
			elog(ERROR, "modelmine: account " INT64_FORMAT " does not exist", credit);
	}
	args[0] = Int64GetDatum(debit);
	args[1] = Int64GetDatum(credit);
	args[2] = Int64GetDatum(amount);
	args[3] = CStringGetTextDatum(reason);
	args[4] = Int64GetDatum(job_id);
	MmExec(&post, args, nulls, false, 1);
	if (journal_id)
		*journal_id = MmInt64(0, 1, NULL);
	return true;
}

/* For movements out of accounts that must hold the tokens (escrow, issuance): a shortfall is a bug. */
void
MmTransferOrFail(int64 debit, int64 credit, int64 amount, const char *reason, int64 job_id)
{
	int64		have = 0;

	if (!MmTryTransfer(debit, credit, amount, reason, job_id, NULL, &have))
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
						errmsg("account " INT64_FORMAT " cannot cover a %s of " INT64_FORMAT, debit, reason, amount),
						errdetail("It holds " INT64_FORMAT " tokens.", have),
						errhint("Run SELECT * FROM modelmine.check_invariants() and report the result.")));
}

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

static int64
Transfer(text *to_email, int64 amount)
{
	int64		me = MmRequireUser(false, NULL);
	int64		to = Recipient(to_email, "email");
	int64		journal_id = 0,
				have = 0;

	if (to == me)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("cannot transfer to yourself"),
						errhint("Pass another user's email.")));
	if (!MmTryTransfer(MmUserAccount(me), MmUserAccount(to), amount, "transfer", 0, &journal_id, &have))
		ereport(ERROR, (errcode(ERRCODE_MM_INSUFFICIENT_BALANCE), errmsg("insufficient balance"),
						errdetail("Your balance is " INT64_FORMAT " tokens; the transfer needs " INT64_FORMAT ".",
								  have, amount),
						errhint("Transfer at most your balance.")));
	return journal_id;
}

static int64
Mint(text *email, int64 amount)
{
	int64		journal_id = 0;

	if (!MmTryTransfer(MM_ISSUANCE_ACCOUNT, MmUserAccount(Recipient(email, "email")), amount, "mint", 0,
					   &journal_id, NULL))
		elog(ERROR, "modelmine: the issuance account refused a mint");
	return journal_id;
}

Datum
mm_balance(PG_FUNCTION_ARGS)
{
	static MmPlan get = {"SELECT balance FROM modelmine.accounts WHERE user_id = $1", 1, {INT8OID}};
	Datum		args[1];
	int64		balance;

	SPI_connect();
	args[0] = Int64GetDatum(MmRequireUser(true, NULL));
	if (MmExec(&get, args, NULL, true, 1) != 1)
		elog(ERROR, "modelmine: signed-in user has no account");
	balance = MmInt64(0, 1, NULL);
	SPI_finish();
	PG_RETURN_INT64(balance);
}

Datum
mm_transfer(PG_FUNCTION_ARGS)
{
	int64		amount = MmCheckAmount("amount", PG_GETARG_DATUM(1), PG_ARGISNULL(1));
	int64		id;

	SPI_connect();
	id = Transfer(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), amount);
	SPI_finish();
	PG_RETURN_INT64(id);
}

Datum
mm_mint(PG_FUNCTION_ARGS)
{
	int64		amount = MmCheckAmount("amount", PG_GETARG_DATUM(1), PG_ARGISNULL(1));
	int64		id;

	SPI_connect();
	id = Mint(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), amount);
	SPI_finish();
	PG_RETURN_INT64(id);
}
