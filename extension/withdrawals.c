/*
 * withdrawals.c — tokens leaving the system: request_withdrawal, approve_withdrawal and
 *
 * reject_withdrawal.
 *
 * A request moves the amount from the user's account to the held account (2) at once, under the
 * lock of the user's own row only, and records a PENDING withdrawal.  An admin then decides it
 * once: approve moves the held tokens to the withdrawn account (3), burnt with the payout
 * reference; reject gives them back to the user.  Both are appended movements out of a system
 * account (no account row is locked); the held account's balance is guaranteed by the decision
 * itself, an UPDATE ... WHERE status = 'PENDING' that only one transaction can make (a second
 * decider waits for the row, then finds it decided and changes nothing).
 */
#include "modelmine.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(mm_request_withdrawal);
PG_FUNCTION_INFO_V1(mm_approve_withdrawal);
PG_FUNCTION_INFO_V1(mm_reject_withdrawal);

/*
 * Who is acting, for the record: the signed-in user's email, or else the database role (an admin
 * in psql who never called authenticate).
 */
char *
MmActorName(void)
{
	static MmPlan who = {
		"SELECT COALESCE((SELECT email FROM modelmine.users WHERE id = $1), session_user::text)",
	1, {INT8OID}};
	Datum		args[1] = {Int64GetDatum(MmCurrentUser(true))};

	MmExec(&who, args, NULL, true, 1);
	return MmText(0, 1);
}

/* A required one-line note (destination, reason, ...): trimmed, 1..max_chars, displayable. */
char *
MmCheckNote(const char *field, text *value, int max_chars)
{
	char	   *s = value ? MmTrim(text_to_cstring(value)) : NULL;
	int			chars = s ? pg_mbstrlen(s) : 0;

	if (chars < 1 || chars > max_chars)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg(s ? "invalid %s" : "%s is required", field),
						s ? errdetail("It has %d characters after trimming.", chars) : 0,
						errhint("Pass 1 to %d characters.", max_chars)));
	MmCheckDisplayText(field, s);
	return s;
}

/* The signed-in user asks to withdraw amount to destination; returns the withdrawal id. */
static int64
RequestWithdrawal(int64 amount, text *destination_in)
{
	static MmPlan record = {
		"INSERT INTO modelmine.withdrawals (user_id, amount, destination) VALUES ($1, $2, $3) "
		"RETURNING id", 3, {INT8OID, INT8OID, TEXTOID}};
	char	   *destination = MmCheckNote("destination", destination_in, 200);
	int64		me = MmRequireUser(false, NULL);
	Datum		args[3];

	/* the locked part of a signup grant stays (grants.c) */
	(void) MmSpendTransferable(me, MM_HELD_ACCOUNT, amount, "withdrawal_hold", "withdrawal",
							   "Withdraw");
	args[0] = Int64GetDatum(me);
	args[1] = Int64GetDatum(amount);
	args[2] = CStringGetTextDatum(destination);
	MmExec(&record, args, NULL, false, 1);
	return MmInt64(0, 1, NULL);
}

/*
 * Admin: decides a PENDING withdrawal once (approve: note is the payout reference; reject: the
 * reason) and moves its held tokens accordingly; returns the amount.
 */
static int64
Decide(int64 id, bool approve, text *note_in)
{
	static MmPlan decide = {
		"UPDATE modelmine.withdrawals "
		"   SET status = $2, decided_at = pg_catalog.now(), decided_by = $4, "
		"       payout_reference = CASE WHEN $2 = 'APPROVED' THEN $3 END, "
		"       reason = CASE WHEN $2 = 'REJECTED' THEN $3 END "
		" WHERE id = $1 AND status = 'PENDING' RETURNING user_id, amount", 4,
	{INT8OID, TEXTOID, TEXTOID, TEXTOID}};
	static MmPlan status = {"SELECT status FROM modelmine.withdrawals WHERE id = $1", 1, {INT8OID}};
	char	   *note = approve ? MmCheckNote("payout_reference", note_in, 200) :
		MmCheckNote("reason", note_in, 500);
	Datum		args[4];
	int64		user_id,
				amount;

	args[0] = Int64GetDatum(id);
	args[1] = CStringGetTextDatum(approve ? MM_WITHDRAWAL_APPROVED : MM_WITHDRAWAL_REJECTED);
	args[2] = CStringGetTextDatum(note);
	args[3] = CStringGetTextDatum(MmActorName());
	/* only another admin deciding the same withdrawal can hold its row */
	if (MmExecWaiting(&decide, args, NULL, 1, "withdrawal", id) != 1)
	{
		/* not read-only: a fresh snapshot sees the decision that made this one wait */
		if (MmExec(&status, args, NULL, false, 1) != 1)
			ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
							errmsg("withdrawal " INT64_FORMAT " not found", id),
							errhint("List withdrawals with modelmine.withdrawals('PENDING').")));
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("withdrawal " INT64_FORMAT " is already %s", id, MmText(0, 1)),
						errdetail("A withdrawal is approved or rejected once."),
						errhint("Nothing was changed or moved.")));
	}
	user_id = MmInt64(0, 1, NULL);
	amount = MmInt64(0, 2, NULL);
	if (approve)
		MmPayOut(MM_HELD_ACCOUNT, MM_WITHDRAWN_ACCOUNT, amount, "withdrawal_payout", 0);
	else
		MmPayOut(MM_HELD_ACCOUNT, MmUserAccount(user_id), amount, "withdrawal_release", 0);
	return amount;
}

/* Validates a withdrawal id argument. */
static int64
WithdrawalId(Datum value, bool isnull)
{
	if (isnull || DatumGetInt64(value) < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg(isnull ? "withdrawal_id is required" : "invalid withdrawal_id"),
						errhint("Pass the id request_withdrawal returned.")));
	return DatumGetInt64(value);
}

/* SQL: request_withdrawal(amount, destination) -> the withdrawal id. */
Datum
mm_request_withdrawal(PG_FUNCTION_ARGS)
{
	int64		amount = MmCheckAmount("amount", PG_GETARG_DATUM(0), PG_ARGISNULL(0));
	int64		id;

	MmConnect();
	id = RequestWithdrawal(amount, PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1));
	SPI_finish();
	PG_RETURN_INT64(id);
}

/* SQL: approve_withdrawal(withdrawal_id, payout_reference) -> the amount. */
Datum
mm_approve_withdrawal(PG_FUNCTION_ARGS)
{
	int64		id = WithdrawalId(PG_GETARG_DATUM(0), PG_ARGISNULL(0));
	int64		amount;

	MmConnect();
	amount = Decide(id, true, PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1));
	SPI_finish();
	PG_RETURN_INT64(amount);
}

/* SQL: reject_withdrawal(withdrawal_id, reason) -> the amount. */
Datum
mm_reject_withdrawal(PG_FUNCTION_ARGS)
{
	int64		id = WithdrawalId(PG_GETARG_DATUM(0), PG_ARGISNULL(0));
	int64		amount;

	MmConnect();
	amount = Decide(id, false, PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1));
	SPI_finish();
	PG_RETURN_INT64(amount);
}
