/*
 * invariants.c — the wait behind check_invariants_incremental()'s checkpoints.
 *
 * A checkpoint says "every journal row up to id N is final and summed".  An id is handed out by
 * nextval before its row commits, so a transaction still open when the check reads the sequence
 * may yet commit a row below N.  Waiting for every transaction open at that moment to end closes
 * the gap, the way CREATE INDEX CONCURRENTLY waits for older transactions: by their virtual
 * transaction ids, which also covers a transaction that took an id before it had an xid.  New
 * transactions are not waited for (they can only get ids above N).  The wait is on each
 * transaction's lock, so lock_timeout bounds it; other sessions never wait on the checker.
 */
#include "modelmine.h"

#include "fmgr.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"

PG_FUNCTION_INFO_V1(mm_wait_for_transactions);

/* Waits until every transaction open in this database now (but ours) has ended. */
static void
WaitForOpenTransactions(void)
{
	int			n;
	/* (autovacuum never writes ModelMine's rows, and may run for minutes) */
	VirtualTransactionId *open = GetCurrentVirtualXIDs(InvalidTransactionId, false, false,
													   PROC_IS_AUTOVACUUM | PROC_IN_VACUUM, &n);

	for (int i = 0; i < n; i++)
		VirtualXactLock(open[i], true);
	pfree(open);
}

/* SQL: _wait_for_transactions() — WaitForOpenTransactions. */
Datum
mm_wait_for_transactions(PG_FUNCTION_ARGS)
{
	WaitForOpenTransactions();
	PG_RETURN_VOID();
}
