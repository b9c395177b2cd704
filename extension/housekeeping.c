/*
 * housekeeping.c — work that must never be held by a client's open transaction, done at commit.
 *
 * Folding appended credits into balances, folding statistics deltas (of jobs and of nodes seen),
 * folding node counters and sealing ledger entries each run under a transaction-level advisory
 * try-lock that is held until commit.  Done inside a call, that lock would stay held for as long
 * as the caller keeps the transaction open (an idle "BEGIN; SELECT ledger_digest();" would stop all
 * sealing).  So calls only ask for the work (MmAtCommit), and it runs in the XACT_EVENT_PRE_COMMIT
 * callback: after the client has said COMMIT, when nothing the client controls can run any more,
 * so the locks are held only for the commit itself.  Nobody ever waits for these locks (a busy one
 * means someone else is doing the work); whatever one commit misses, the next commit that asks
 * does.
 *
 * Each task runs in its own internal subtransaction: a task that fails (say, a tampered statistics
 * row that no longer folds) is logged as a WARNING and skipped, and never fails the commit that
 * carried it.
 *
 * Folding credits, statistics and fair-share usage is amortised: a backend folds them at most once
 * per fold_interval_ms (readers of credits and statistics add the unfolded rows; the fair-share
 * order may lag that long), unless a reader asked (MM_AT_COMMIT_FORCE), which also keeps deltas
 * from lingering once writes stop.  Lost leases (rare) are folded at every commit that asks, and so
 * is sealing: the ledger's head should follow completions.  Tasks run only in READ COMMITTED
 * read-write transactions, where each statement sees what the previous folder committed; other
 * transactions leave the work to the next one that can.
 */
#include "modelmine.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(mm_housekeeping_at_commit);

#define SEAL_AT_COMMIT 5000		/* ledger entries sealed by one commit at most */

/*
 * the folds amortised by fold_interval_ms (fair-share usage too: every claim appends some, and the
 * order lagging a fold interval behind is fair enough); node counters are folded at once (lost
 * leases are rare)
 */
#define FOLDS (MM_AT_COMMIT_CREDITS | MM_AT_COMMIT_STATS | MM_AT_COMMIT_SCHED | \
			   MM_AT_COMMIT_NODE_SEEN)
/* the fold_interval_ms setting's default, until it is cached */
#define DEFAULT_FOLD_INTERVAL_MS 100

static int	pending_tasks = 0;
static bool callback_registered = false;
static TimestampTz last_fold = 0;	/* when this backend last ran the folds */

typedef struct Task
{
	int			flag;
	const char *name;
	int64		(*run) (void);
} Task;

/* The sealing task: at most SEAL_AT_COMMIT entries per commit. */
static int64
SealTask(void)
{
	return MmLedgerSeal(SEAL_AT_COMMIT);
}

static const Task tasks[] = {
	{MM_AT_COMMIT_CREDITS, "folding credits into balances", MmFoldCredits},
	{MM_AT_COMMIT_NODES, "folding node counters", MmFoldNodeDeltas},
	{MM_AT_COMMIT_STATS, "folding job statistics", MmFoldStats},
	{MM_AT_COMMIT_NODE_SEEN, "folding node counts", MmFoldNodeSeen},
	{MM_AT_COMMIT_SEAL, "sealing the ledger", SealTask},
	{MM_AT_COMMIT_SCHED, "folding fair-share usage", MmFoldUsage},
};

/* Runs one task in an internal subtransaction; a failure becomes a WARNING. */
static void
RunTask(const Task *t)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		/*
		 * no portal is active at commit: statements need an outer snapshot (each still takes its
		 * own)
		 */
		PushActiveSnapshot(GetTransactionSnapshot());
		SPI_connect();
		(void) t->run();
		SPI_finish();
		PopActiveSnapshot();
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ereport(WARNING, (errcode(e->sqlerrcode),
						  errmsg("modelmine: %s was skipped at commit: %s", t->name, e->message),
						  e->detail ? errdetail("%s", e->detail) : 0,
						  errhint("The transaction committed; the work waits for the next commit.  "
								  "Run SELECT * FROM modelmine.check_invariants() if this "
								  "repeats.")));
		FreeErrorData(e);
	}
	PG_END_TRY();
}

/*
 * Runs the requested tasks as the extension's owner with the search_path every SECURITY DEFINER
 * function of the extension has, exactly as if a definer function ran them: at commit no function
 * is running, and the client's role and search_path (which could put its own operators first) must
 * not apply to the extension's statements.
 */
static void
RunPending(int which)
{
	Oid			save_user;
	int			save_context;
	int			nest;

	if (XactIsoLevel != XACT_READ_COMMITTED || XactReadOnly || RecoveryInProgress() ||
		!OidIsValid(get_namespace_oid("modelmine", true)) || !MmSchemaCurrent())
		return;
	if ((which & FOLDS) && !(which & MM_AT_COMMIT_FORCE))
	{
		int64		interval = DEFAULT_FOLD_INTERVAL_MS;
		TimestampTz now = GetCurrentTimestamp();

		(void) MmSettingIfCached("fold_interval_ms", &interval);
		if (!TimestampDifferenceExceeds(last_fold, now, (int) interval))
			which &= ~FOLDS;
	}
	if (which & FOLDS)
		last_fold = GetCurrentTimestamp();
	if ((which & MM_AT_COMMIT_ALL) == 0)
		return;
	GetUserIdAndSecContext(&save_user, &save_context);
	SetUserIdAndSecContext(MmSchemaOwner(),
						   save_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nest = MmFixSearchPath();
	for (int i = 0; i < lengthof(tasks); i++)
		if (which & tasks[i].flag)
			RunTask(&tasks[i]);
	MmRestoreSearchPath(nest);
	SetUserIdAndSecContext(save_user, save_context);
}

/* Transaction callback: runs the pending tasks at pre-commit; an abort just drops them. */
static void
AtCommitCallback(XactEvent event, void *arg)
{
	int			which = pending_tasks;

	if (which == 0)
		return;
	/* reset first: whatever happens, this transaction's request is spent */
	pending_tasks = 0;
	if (event == XACT_EVENT_PRE_COMMIT)
		RunPending(which);
}

/* Asks for tasks (MM_AT_COMMIT_*) to run when the current transaction commits. */
void
MmAtCommit(int which)
{
	if (!callback_registered)
	{
		RegisterXactCallback(AtCommitCallback, NULL);
		callback_registered = true;
	}
	pending_tasks |= which;
}

/*
 * SQL: readers ask for every task at their commit, folds included whatever the interval, so work
 * left by a busy commit, or by the last writes before a quiet spell, is picked up.
 */
Datum
mm_housekeeping_at_commit(PG_FUNCTION_ARGS)
{
	MmAtCommit(MM_AT_COMMIT_ALL | MM_AT_COMMIT_FORCE);
	PG_RETURN_VOID();
}
