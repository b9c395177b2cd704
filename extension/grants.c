/*
 * grants.c — the signup grant can stake jobs but cannot be farmed out of the account.
 *
 * Looping signup + transfer once collected 50,000 tokens in 4.4 s.  So a new user's grant is
 * locked (users.grant_locked, set at signup): transfer() and request_withdrawal() may move only
 * the balance above it, while staking a job may use it (that is what the grant is for).  The lock
 * goes when an admin verifies the user (verify_user, in SQL), and shrinks by every token the
 * user's nodes earned and the user withdrew to the account (withdraw_node_earnings): tokens earned
 * by work.
 *
 * grant_locked only ever falls after signup, so reading it without a lock is safe: a concurrent
 * unlock can only make a refused spend one that would have passed a moment later.
 */
#include "modelmine.h"

#include "catalog/pg_type.h"

/* The part of the user's balance the locked signup grant keeps in place. */
static int64
GrantLocked(int64 user_id)
{
	static MmPlan get = {"SELECT grant_locked FROM modelmine.users WHERE id = $1", 1, {INT8OID}};
	Datum		args[1] = {Int64GetDatum(user_id)};

	if (MmExec(&get, args, NULL, true, 1) != 1)
		elog(ERROR, "modelmine: user " INT64_FORMAT " does not exist", user_id);
	return MmInt64(0, 1, NULL);
}

/*
 * The signed-in user pays amount out of their account without touching the locked grant; MM001
 * otherwise, naming the locked part.  what ("transfer") and verb ("Transfer") word the error.
 * Returns the journal id.
 */
int64
MmSpendTransferable(int64 user_id, int64 payee, int64 amount, const char *reason,
					const char *what, const char *verb)
{
	int64		locked = GrantLocked(user_id);
	int64		journal_id = 0,
				have = 0;

	if (MmTrySpendKeeping(MmUserAccount(user_id), payee, amount, locked, reason, 0, &journal_id,
						  &have))
		return journal_id;
	if (locked == 0)
		ereport(ERROR, (errcode(ERRCODE_MM_INSUFFICIENT_BALANCE), errmsg("insufficient balance"),
						errdetail("Your balance is " INT64_FORMAT " tokens; the %s needs "
								  INT64_FORMAT ".", have, what, amount),
						errhint("%s at most your balance.", verb)));
	ereport(ERROR, (errcode(ERRCODE_MM_INSUFFICIENT_BALANCE),
					errmsg("insufficient transferable balance"),
					errdetail("Your balance is " INT64_FORMAT " tokens, and " INT64_FORMAT
							  " tokens of your signup grant are locked in it; the %s needs "
							  INT64_FORMAT ".", have, locked, what, amount),
					errhint("%s at most " INT64_FORMAT " tokens.  The signup grant can pay for "
							"jobs; it unlocks when an admin verifies your account, or as your "
							"nodes' earnings reach it (modelmine.withdraw_node_earnings).",
							verb, have > locked ? have - locked : 0)));
	return 0;					/* keep compiler quiet */
}

/* Tokens earned by work reached the user's account: unlock as much of their grant. */
void
MmUnlockGrant(int64 user_id, int64 earned)
{
	/* the user's own row: only the user's own sessions or an admin ever hold it */
	static MmPlan unlock = {
		"UPDATE modelmine.users SET grant_locked = GREATEST(grant_locked - $2, 0) "
		" WHERE id = $1 AND grant_locked > 0", 2, {INT8OID, INT8OID}};
	Datum		args[2] = {Int64GetDatum(user_id), Int64GetDatum(earned)};

	if (earned > 0)
		MmExecWaiting(&unlock, args, NULL, 0, "user", user_id);
}
