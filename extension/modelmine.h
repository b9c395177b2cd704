/*
 * modelmine.h — declarations shared between the extension's C files.
 *
 * Every SQL-callable function is a thin shim: it connects SPI, calls the CamelCase helper declared
 * here (or a static one in its own file) and returns.  Helpers assume SPI is connected.
 */
#ifndef MODELMINE_H
#define MODELMINE_H

#include "postgres.h"
#include "executor/spi.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"
#include "datatype/timestamp.h"

#include "modelmine/protocol.h"


/* protocol.h's SQLSTATE strings as PostgreSQL error codes, for the custom class MM */
#define MmSqlState(s)			MAKE_SQLSTATE((s)[0], (s)[1], (s)[2], (s)[3], (s)[4])
#define ERRCODE_MM_INSUFFICIENT_BALANCE	MmSqlState(MM_SQLSTATE_INSUFFICIENT_BALANCE)
#define ERRCODE_MM_SUPPLY_CAP			MmSqlState(MM_SQLSTATE_SUPPLY_CAP)
#define ERRCODE_MM_UNPLACEABLE			MmSqlState(MM_SQLSTATE_UNPLACEABLE)

#define MM_SHA256_LEN			32

/* ---- mmspi.c: prepared SPI statements kept for the life of the backend ---- */
#define MM_MAX_ARGS 16
typedef struct MmPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[MM_MAX_ARGS];
	/*
	 * always the generic plan: for a statement run on every claim whose custom plans cost more to
	 * make (a millisecond) than to run, and whose plan does not depend on the parameters' values
	 */
	bool		generic;
	/*
	 * planned as key probes: nested loops over index scans, the planner's seq, bitmap, hash and
	 * merge paths and JIT disabled while it plans (MmExec).  For a statement driven by a batch's
	 * ids, a node or a user, whose kept plan would otherwise follow the statistics of the moment
	 * it was made: taken before any job ran, they made it hash every RUNNING job of the network
	 * per settlement.  Never for a statement that joins sets of unbounded size to each other
	 * (two transition tables); a transition table's distinct ids probing an index are fine (refs.c).
	 */
	bool		probe;
	SPIPlanPtr	plan;			/* prepared on first use, then kept */
} MmPlan;

/* the last fields of a probe MmPlan's initialiser: generic, probe */
#define MM_PROBE true, true

/*
 * A status test in a statement driven by ids (a batch's, a job's), written so that the planner
 * cannot prove a partial index's predicate (status IN ..., status = 'RUNNING') from it.  Otherwise
 * a kept plan made with the statistics of a near-empty queue walked a whole partial index on the
 * status (every RUNNING job or live replica of the network) and matched the ids against it, where
 * each id should be probed by key (probe-plans.sh).
 */
#define MM_BY_KEY(test) "(" test ") IS TRUE"

extern uint64 MmExec(MmPlan *plan, Datum *values, const char *nulls, bool read_only, long count);
extern int64 MmInt64(uint64 row, int col, bool *isnull);
extern char *MmText(uint64 row, int col);
extern int64 MmSetting(const char *name);		/* settings.c */
extern void MmSettingsInit(void);
extern bool MmSettingIfCached(const char *name, int64 *value);
extern bool MmSchemaCurrent(void);
extern Oid	MmSchemaOwner(void);
extern void MmConnect(void);
extern int	MmFixSearchPath(void);
extern void MmRestoreSearchPath(int nest);
extern uint64 MmExecWaiting(MmPlan *plan, Datum *values, const char *nulls, long count,
							const char *object, int64 id);

/* ---- housekeeping.c: work done at commit, never held by an open transaction ---- */
#define MM_AT_COMMIT_CREDITS	0x01	/* fold account_deltas into balances */
#define MM_AT_COMMIT_NODES		0x02	/* fold node_deltas into node counters */
#define MM_AT_COMMIT_STATS		0x04	/* fold job_stat_deltas */
#define MM_AT_COMMIT_SEAL		0x08	/* seal queued ledger entries */
#define MM_AT_COMMIT_SCHED		0x20	/* fold usage_deltas into fair_share; drop idle users */
#define MM_AT_COMMIT_NODE_SEEN	0x40	/* fold node_seen_deltas (nodes online and registered) */
#define MM_AT_COMMIT_ALL		0x6f
/* fold now, even within fold_interval_ms of this backend's last fold */
#define MM_AT_COMMIT_FORCE		0x10
extern void MmAtCommit(int which);

/* ---- util.c: small helpers ---- */
extern void MmSha256(const void *data, size_t len, uint8 *out);
extern bytea *MmBytea(const uint8 *bytes, int n);
extern void MmHex(const uint8 *bytes, int n, char *out);
extern void MmRandomHex(int nbytes, char *out);
extern char *MmTrim(char *s);
extern bool MmValidName(const char *s, int len);
extern char *MmJobChannel(int64 job_id);
extern void MmJobEvent(const char *event, int64 user_id, const char *data);

/* ---- auth.c: identity ---- */
#define MM_KEY_HASH_LEN MM_SHA256_LEN	/* a node key is stored as the SHA-256 of its secret */
extern int64 MmRequireUser(bool read_only, pg_uuid_t *session_out);
extern int64 MmCurrentUser(bool read_only);
extern void MmBindNode(int64 node_id, const uint8 *key_hash, bool local);
extern int64 MmBoundNode(uint8 *key_hash);
extern void MmDropNodeBinding(void);
extern char *MmNormaliseEmail(text *email);
extern int64 MmUserIdByEmail(const char *email);

/* ---- jwt.c: HS256 tokens ---- */
extern char *MmJwtSign(const char *payload, const uint8 *key, size_t keylen);
extern char *MmJwtVerify(const char *token, const uint8 *key, size_t keylen, const char **why);

/* ---- nodes.c: node identity ---- */
extern int64 MmRequireNode(bool read_only);
extern int64 MmAuthenticateNode(const char *key, bool local);
extern int64 MmNodeAccount(int64 node_id);
extern void MmNotifyJson(const char *channel, const char *json);
extern int64 MmFoldNodeDeltas(void);

/* ---- text.c: text others will see ---- */
extern void MmCheckDisplayText(const char *field, const char *s);
extern char *MmPrintable(const char *s, int len, int max);

/* ---- configcheck.c: a built-in trainer's config, checked by the workers' validator ---- */
extern void MmCheckTrainerConfig(Jsonb *config, const char *text);

/* ---- placement.c: what a job needs and what a node offers ---- */
typedef struct MmResources
{
	int32		memory_mb;
	int32		cores;
	Datum		labels;			/* text[] */
	int			nlabels;
} MmResources;
extern bool MmResourceKey(const char *key, int len);
extern void MmParseResources(Jsonb *doc, const char *field, MmResources *out);
extern void MmCheckPlaceable(const MmResources *need, const char *requirement);

/* ---- jobs.c: a submission, as submit_job and submit_jobs (submitbatch.c) check it ---- */
typedef struct MmSubmitArgs
{
	text	   *title;
	Jsonb	   *config;
	text	   *description;
	bool		stake_given;
	int64		stake;
	bool		priority_given;
	int32		priority;
	bool		start_by_given;
	TimestampTz start_by;
	bool		finish_by_given;
	TimestampTz finish_by;
	Jsonb	   *requirements;
	/* the config is one already checked (submit_jobs: the same bytes as the element before) */
	bool		config_checked;
	/* filled in by MmCheckSubmit */
	char	   *config_text;	/* the config's JSON text (unset when config_checked) */
	char	   *title_out;
	int64		stake_out;
	int32		priority_out;
	int16		replicas_out;
	MmResources need_out;
} MmSubmitArgs;
extern void MmCheckSubmit(MmSubmitArgs *a);

/* ---- lease.c ---- */
extern bool MmResultNumber(Jsonb *result, const char *key, double *out);
extern int64 MmCompleteJob(int64 job_id, Jsonb *result);
extern void MmCheckResult(Jsonb *result);

/* ---- settle.c: a batch's single-replica jobs, set-based ---- */
extern int	MmSettleSingles(int64 node_id, const int64 *ids, Jsonb **results, int k, bool *settled,
							int64 *paid);

/* replicas.c: replicas wanted, trust, lost replicas; validate.c: the validator */
extern int32 MmConfigReplicas(Jsonb *config);
extern int32 MmRecordScore(int64 completed, int64 failed, int64 invalid);
extern bool MmCaught(int64 valid, int64 invalid);
extern int32 MmSpotcheckPct(int64 valid, int64 invalid, int32 score);
extern void MmReleaseReplicas(int64 job_id);
extern bool MmReplicaLost(int64 job_id, int64 node_id, const char *status, const char *why);
extern int64 MmValidateJob(int64 job_id, int64 caller, int32 wanted);

/* ---- deadlines.c ---- */
extern int64 MmExpireJobs(int32 max_jobs);

/* ---- fairshare.c ---- */
extern void MmFairShareSubmitted(int64 user_id);
extern int64 MmFoldUsage(void);

/* ---- ledger.c ---- */
extern int64 MmLedgerSeal(int64 max);

/* ---- stats.c ---- */
extern int64 MmFoldStats(void);

/* ---- jobevents.c ---- */
extern int64 MmOutboxJobsEnded(void);
extern void MmNotifyStatusChanges(TriggerData *td);	/* statusnotify.c */
extern void MmRewindTransitionTable(Tuplestorestate *ts);	/* statusnotify.c */

/* ---- nodeseen.c: maintained node counts ---- */
extern int64 MmFoldNodeSeen(void);

/* ---- tokens.c: double-entry movements ---- */
extern bool MmTrySpend(int64 payer, int64 payee, int64 amount, const char *reason, int64 job_id,
					   int64 *journal_id, int64 *have);
extern int	MmSumByAccount(int n, const Datum *accounts, const Datum *amounts, Datum **account_out,
						   Datum **sum_out);
extern bool MmTrySpendEach(int64 payer, int n, const Datum *payees, const Datum *amounts,
						   const char *reason, const Datum *job_ids, int64 *have);
extern bool MmTrySpendKeeping(int64 payer, int64 payee, int64 amount, int64 keep,
							  const char *reason, int64 job_id, int64 *journal_id, int64 *have);
extern int64 MmPayOut(int64 from, int64 to, int64 amount, const char *reason, int64 job_id);
extern int64 MmFoldCredits(void);
extern int64 MmBalance(int64 account);
extern void MmCheckSupply(int64 amount, const char *what);
extern int64 MmUserAccount(int64 user_id);
extern int64 MmCheckAmount(const char *field, Datum value, bool isnull);

/* ---- grants.c: the locked part of the signup grant ---- */
extern int64 MmSpendTransferable(int64 user_id, int64 payee, int64 amount, const char *reason,
								 const char *what, const char *verb);
extern void MmUnlockGrant(int64 user_id, int64 earned);

/* ---- withdrawals.c ---- */
extern char *MmActorName(void);
extern char *MmCheckNote(const char *field, text *value, int max_chars);

#endif
