/*
 * nodes.c — compute nodes: registration, node identity, capabilities, heartbeats, earnings.
 *
 * A node key is "mmn_<node id>_<64 hex digits>": 256 random bits, shown once; the table keeps the
 * SHA-256 of the random part.  authenticate_node() binds the database session to the node with the
 * same binding rules as user identity (auth.c).  Every node call re-checks the key hash, so
 * replacing a key cuts off sessions still bound with the old one.
 *
 * A node's own row is changed only by the node itself, its operator (set_node_maintenance) and the
 * commit-time fold of lost leases (SKIP LOCKED): no other principal's call waits on it.
 *
 * Heartbeats touch only the node's own row (no global hot row) and raise node:heartbeat only when
 * the status changes or heartbeat_notify_seconds have passed for that node: with 10k nodes beating
 * every 5 s, a NOTIFY per beat would queue every commit on the global notify lock.
 */
#include "modelmine.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"

PG_FUNCTION_INFO_V1(mm_register_node);
PG_FUNCTION_INFO_V1(mm_authenticate_node);
PG_FUNCTION_INFO_V1(mm_authenticate_node_local);
PG_FUNCTION_INFO_V1(mm_set_capabilities);
PG_FUNCTION_INFO_V1(mm_heartbeat);
PG_FUNCTION_INFO_V1(mm_withdraw_node_earnings);
PG_FUNCTION_INFO_V1(mm_set_node_maintenance);

#define NODE_DELTAS_LOCK_KEY INT64CONST(0x6d6d6e6f64656c74)	/* "mmnodelt" */

/*
 * Raises a NOTIFY with a JSON payload (a shim other files call, so they need no
 * commands/async.h).
 */
void
MmNotifyJson(const char *channel, const char *json)
{
	Async_Notify(channel, json);
}

/* ---------------------------------------------------------------------------------------------- */
/* Capabilities                                                                                   */
/* ---------------------------------------------------------------------------------------------- */

/*
 * Appends prefix + name ("trainer:mlp") for each string of caps->key (an array of names) to
 * *elems.
 */
static void
CollectNames(Jsonb *caps, const char *key, const char *prefix, List **elems)
{
	JsonbValue	v;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	e;
	int			n = 0;

	if (getKeyJsonValueFromContainer(&caps->root, key, strlen(key), &v) == NULL ||
		v.type == jbvNull)
		return;
	if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("capabilities.%s must be an array of names", key),
						errhint("Pass e.g. {\"trainers\": [\"logreg\", \"mlp\"], \"runners\": "
								"[\"torch-cnn\"], \"slots\": 2}.")));
	it = JsonbIteratorInit(v.val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (e.type != jbvString || !MmValidName(e.val.string.val, e.val.string.len))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("invalid name in capabilities.%s", key),
							errdetail("Element %d is not a name of 1 to 64 characters a-z, 0-9, _, "
									  "- or . starting with a letter or digit.", n + 1),
							errhint("Pass names such as \"logreg\" or \"torch-cnn\".")));
		if (++n > MM_MAX_CAP_NAMES)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("too many names in capabilities.%s", key),
							errhint("Advertise at most %d %s.", MM_MAX_CAP_NAMES, key)));
		*elems = lappend(*elems, psprintf("%s%.*s", prefix, e.val.string.len, e.val.string.val));
	}
}

/* capabilities.slots: how many jobs the node runs at once, 1..MM_MAX_SLOTS (1 when absent). */
static int32
SlotsOf(Jsonb *caps)
{
	JsonbValue	v;
	double		slots;

	if (getKeyJsonValueFromContainer(&caps->root, "slots", 5, &v) == NULL || v.type == jbvNull)
		return 1;
	if (v.type != jbvNumeric)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("capabilities.slots must be a number"),
						errhint("Pass the number of jobs the node runs at once, 1 to %d.",
								MM_MAX_SLOTS)));
	slots = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
											   NumericGetDatum(v.val.numeric)));
	if (!(slots >= 1 && slots <= MM_MAX_SLOTS) || slots != floor(slots))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid capabilities.slots"),
						errdetail("Got %.15g.", slots),
						errhint("Pass the number of jobs the node runs at once, a whole number "
								"from 1 to %d.", MM_MAX_SLOTS)));
	return (int32) slots;
}

/*
 * Validates a capability document: an object of at most MM_MAX_CAPS_BYTES of JSON text with only
 * the keys trainers, runners and slots (bounded, because nodes() shows every node's document to
 * anyone), plus the resource keys memory_mb, cores and labels (placement.c).  Returns the text[]
 * of requirements a node with them satisfies; *slots gets capabilities.slots, *offers the
 * resources.
 */
static Datum
RequirementsOf(Jsonb *caps, int32 *slots, MmResources *offers)
{
	static const char *const known[] = {"trainers", "runners", "slots"};
	List	   *elems = NIL;
	Datum	   *d;
	ListCell   *lc;
	int			i = 0;
	size_t		text_len;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(caps) || JB_ROOT_IS_SCALAR(caps))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("capabilities must be a JSON object"),
						errhint("Pass e.g. {\"trainers\": [\"logreg\", \"mlp\"], \"runners\": "
								"[\"torch-cnn\"], \"slots\": 2}.")));
	text_len = strlen(JsonbToCString(NULL, &caps->root, VARSIZE(caps)));
	if (text_len > MM_MAX_CAPS_BYTES)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("capabilities are too large"),
						errdetail("Their JSON text takes %zu bytes; the limit is %d.",
								  text_len, MM_MAX_CAPS_BYTES),
						errhint("Advertise trainers, runners and slots only.")));
	it = JsonbIteratorInit(&caps->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		ok = false;

		if (tok != WJB_KEY)
			continue;
		for (int k = 0; k < lengthof(known); k++)
			ok |= v.val.string.len == (int) strlen(known[k]) &&
				memcmp(v.val.string.val, known[k], v.val.string.len) == 0;
		if (!ok && !MmResourceKey(v.val.string.val, v.val.string.len))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("unknown key in capabilities"),
							errdetail("Got \"%s\".",
									  MmPrintable(v.val.string.val, v.val.string.len, 64)),
							errhint("The keys are \"trainers\", \"runners\", \"slots\", "
									"\"memory_mb\", \"cores\" and \"labels\".")));
	}
	*slots = SlotsOf(caps);
	MmParseResources(caps, "capabilities", offers);
	CollectNames(caps, "trainers", MM_REQUIRE_TRAINER, &elems);
	CollectNames(caps, "runners", MM_REQUIRE_RUNNER, &elems);
	d = palloc(sizeof(Datum) * (list_length(elems) + 1));
	foreach(lc, elems)
		d[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(d, i, TEXTOID, -1, false, TYPALIGN_INT));
}

/* ---------------------------------------------------------------------------------------------- */
/* Registration and node identity                                                                 */
/* ---------------------------------------------------------------------------------------------- */

/* Raises unless the operator may register another node (setting max_nodes_per_operator). */
static void
CheckNodeLimit(int64 operator_id)
{
	/* the operator's own user row serialises their registrations; nobody else's call waits on it */
	static MmPlan lock = {
		"SELECT 1 FROM modelmine.users WHERE id = $1 FOR NO KEY UPDATE", 1, {INT8OID}};
	static MmPlan count = {
		"SELECT pg_catalog.count(*) FROM modelmine.nodes WHERE operator_id = $1", 1, {INT8OID}};
	Datum		args[1] = {Int64GetDatum(operator_id)};
	int64		limit = MmSetting("max_nodes_per_operator");
	int64		have;

	MmExecWaiting(&lock, args, NULL, 1, "user", operator_id);
	MmExec(&count, args, NULL, true, 1);
	have = MmInt64(0, 1, NULL);
	if (have >= limit)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("too many nodes"),
						errdetail("You operate " INT64_FORMAT " nodes; the limit (setting "
								  "max_nodes_per_operator) is " INT64_FORMAT ".",
								  have, limit),
						errhint("Reuse an existing node's key, or ask an admin to raise "
								"max_nodes_per_operator.")));
}

/* Registers a node for the signed-in operator; returns its key (shown once), the id in *node_id. */
static char *
RegisterNode(text *name_in, Jsonb *caps, int64 *node_id)
{
	static MmPlan ins = {
		"INSERT INTO modelmine.nodes "
		"(operator_id, name, key_hash, capabilities, requirements, slots, memory_mb, cores, labels) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
		"ON CONFLICT (operator_id, name) DO NOTHING RETURNING id",
	9, {INT8OID, TEXTOID, BYTEAOID, JSONBOID, TEXTARRAYOID, INT2OID, INT4OID, INT4OID,
	TEXTARRAYOID}};
	static MmPlan acct = {
		"INSERT INTO modelmine.accounts (kind, node_id) VALUES ('node', $1)", 1, {INT8OID}};
	int64		operator_id = MmRequireUser(false, NULL);
	char	   *name;
	int			chars;
	int32		slots;
	MmResources offers;
	char		secret[MM_NODE_KEY_SECRET_HEX + 1];
	uint8		hash[MM_KEY_HASH_LEN];
	Datum		args[9];
	StringInfoData payload;

	if (name_in == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("name is required"),
						errhint("Pass a node name of 1 to 100 characters, e.g. the host name.")));
	name = text_to_cstring(name_in);
	chars = pg_mbstrlen(name);
	if (chars < 1 || chars > 100)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid node name"),
						errdetail("It has %d characters.", chars),
						errhint("Pass a node name of 1 to 100 characters, e.g. the host name.")));
	MmCheckDisplayText("node name", name);
	args[4] = RequirementsOf(caps, &slots, &offers);
	CheckNodeLimit(operator_id);

	MmRandomHex(MM_NODE_KEY_SECRET_HEX / 2, secret);
	MmSha256(secret, MM_NODE_KEY_SECRET_HEX, hash);

	args[0] = Int64GetDatum(operator_id);
	args[1] = CStringGetTextDatum(name);
	args[2] = PointerGetDatum(MmBytea(hash, MM_KEY_HASH_LEN));
	args[3] = JsonbPGetDatum(caps);
	args[5] = Int16GetDatum((int16) slots);
	args[6] = Int32GetDatum(offers.memory_mb);
	args[7] = Int32GetDatum(offers.cores);
	args[8] = offers.labels;
	if (MmExec(&ins, args, NULL, false, 1) != 1)
		ereport(ERROR, (errcode(ERRCODE_UNIQUE_VIOLATION), errmsg("you already have a node named "
																  "\"%s\"", name),
						errhint("Pick another name, or reuse that node's key.")));
	*node_id = MmInt64(0, 1, NULL);
	args[0] = Int64GetDatum(*node_id);
	MmExec(&acct, args, NULL, false, 0);

	initStringInfo(&payload);
	appendStringInfo(&payload, "{\"node_id\":" INT64_FORMAT ",\"name\":", *node_id);
	escape_json(&payload, name);
	appendStringInfoChar(&payload, '}');
	MmNotifyJson(MM_CHANNEL_NODE_REGISTERED, payload.data);
	return psprintf(MM_NODE_KEY_PREFIX INT64_FORMAT "_%s", *node_id, secret);
}

/*
 * Parses and verifies a node key; returns the node id, binding hash in *hash. Raises 28000 if
 * bad.
 */
static int64
VerifyNodeKey(const char *key, uint8 *hash)
{
	static MmPlan get = {"SELECT key_hash FROM modelmine.nodes WHERE id = $1", 1, {INT8OID}};
	const char *p = key,
			   *sep;
	int64		id = 0;
	bool		ok = strncmp(p, MM_NODE_KEY_PREFIX, strlen(MM_NODE_KEY_PREFIX)) == 0;
	Datum		args[1];

	if (ok)
	{
		p += strlen(MM_NODE_KEY_PREFIX);
		sep = strchr(p, '_');
		ok = sep != NULL && sep > p && sep - p <= 18 && strlen(sep + 1) == MM_NODE_KEY_SECRET_HEX;
		for (const char *q = p; ok && q < sep; q++)
		{
			ok = *q >= '0' && *q <= '9';
			id = id * 10 + (*q - '0');
		}
		if (ok)
		{
			MmSha256(sep + 1, MM_NODE_KEY_SECRET_HEX, hash);
			args[0] = Int64GetDatum(id);
			if (MmExec(&get, args, NULL, false, 1) == 1)
			{
				bool		isnull;
				bytea	   *stored = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
																   SPI_tuptable->tupdesc, 1,
																   &isnull));

				ok = VARSIZE_ANY_EXHDR(stored) == MM_KEY_HASH_LEN &&
					timingsafe_bcmp(VARDATA_ANY(stored), hash, MM_KEY_HASH_LEN) == 0;
			}
			else
				ok = false;
		}
	}
	if (!ok)
		ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						errmsg("invalid node key"),
						errdetail("The key does not belong to any registered node."),
						errhint("Use the node_key printed by modelmine.register_node(name, "
								"capabilities).")));
	return id;
}

/*
 * Verifies a node key and binds this backend to its node: for the session, or (local) for the
 * current transaction only, as a gateway running each request in its own transaction needs.
 */
int64
MmAuthenticateNode(const char *key, bool local)
{
	uint8		hash[MM_KEY_HASH_LEN];
	int64		id = VerifyNodeKey(key, hash);

	MmBindNode(id, hash, local);
	return id;
}

/* The node this session is bound to, re-verified; raises 28000 when there is none. */
int64
MmRequireNode(bool read_only)
{
	static MmPlan get = {"SELECT key_hash FROM modelmine.nodes WHERE id = $1", 1, {INT8OID}};
	uint8		hash[MM_KEY_HASH_LEN];
	int64		node_id = MmBoundNode(hash);
	Datum		args[1];
	bool		isnull;
	bytea	   *stored;

	if (node_id == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						errmsg("not signed in as a node"),
						errdetail("This database session is not bound to a ModelMine node."),
						errhint("Call modelmine.authenticate_node(node_key) first.")));
	args[0] = Int64GetDatum(node_id);
	if (MmExec(&get, args, NULL, read_only, 1) != 1 ||
		(stored = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
												&isnull)),
		 timingsafe_bcmp(VARDATA_ANY(stored), hash, MM_KEY_HASH_LEN) != 0))
	{
		MmDropNodeBinding();
		ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						errmsg("node key no longer valid"),
						errhint("Authenticate again with the node's current key.")));
	}
	return node_id;
}

/* The id of a node's account (where its rewards go). */
int64
MmNodeAccount(int64 node_id)
{
	static MmPlan find = {"SELECT id FROM modelmine.accounts WHERE node_id = $1", 1, {INT8OID}};
	Datum		args[1] = {Int64GetDatum(node_id)};

	if (MmExec(&find, args, NULL, false, 1) != 1)
		elog(ERROR, "modelmine: node " INT64_FORMAT " has no account", node_id);
	return MmInt64(0, 1, NULL);
}

/* ---------------------------------------------------------------------------------------------- */
/* Heartbeat                                                                                      */
/* ---------------------------------------------------------------------------------------------- */

typedef struct Beat
{
	float4		cpu_load;
	int32		used_mb;
	int32		total_mb;
	char	   *status;
} Beat;

/* Refuses a heartbeat whose status, load or memory figures are out of range. */
static void
CheckBeat(const Beat *b)
{
	if (strcmp(b->status, MM_NODE_ONLINE) != 0 && strcmp(b->status, MM_NODE_BUSY) != 0 &&
		strcmp(b->status, MM_NODE_MAINTENANCE) != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid node status"),
						errdetail("Got \"%s\".", b->status),
						errhint("Report ONLINE, BUSY or MAINTENANCE; OFFLINE is derived when "
								"heartbeats stop.")));
	if (isnan(b->cpu_load) || b->cpu_load < 0 || b->cpu_load > 100)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid cpu_load"),
						errhint("Report CPU load as a percentage from 0 to 100.")));
	if (b->total_mb < 1 || b->used_mb < 0 || b->used_mb > b->total_mb)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid memory figures"),
						errdetail("Got memory_used_mb %d of memory_total_mb %d.",
								  b->used_mb, b->total_mb),
						errhint("Report 0 <= memory_used_mb <= memory_total_mb, with "
								"memory_total_mb at least 1.")));
}

/*
 * Records a heartbeat; returns the ids of the jobs the node still holds.  It does not extend
 * leases: only progress on a job does, so a node cannot keep jobs it is not working on by beating.
 * An operator's MAINTENANCE (set_node_maintenance) outlasts whatever the node reports.
 */
static ArrayType *
Heartbeat(const Beat *b)
{
	static MmPlan beat = {
		"WITH old AS ("
		"  SELECT n.id, n.online_since, n.last_seen, n.last_notified_at, "
		"         n.status AS old_status, "
		"CASE WHEN n.maintenance THEN 'MAINTENANCE' ELSE $2 END AS new_status, "
		"         (n.last_seen IS NULL OR "
		"n.last_seen < pg_catalog.now() - pg_catalog.make_interval(secs => $6)) AS gap "
		"    FROM modelmine.nodes n WHERE n.id = $1 FOR NO KEY UPDATE), "
		"closed AS ("
		"  INSERT INTO modelmine.node_uptime (node_id, started_at, ended_at) "
		"  SELECT id, online_since, last_seen FROM old "
		"   WHERE gap AND online_since IS NOT NULL AND last_seen IS NOT NULL "
		"  ON CONFLICT DO NOTHING) "
		"UPDATE modelmine.nodes n SET status = old.new_status, cpu_load = $3, memory_used_mb = $4, "
		"       memory_total_mb = $5, last_seen = pg_catalog.now(), "
		"       online_since = CASE WHEN old.gap THEN pg_catalog.now() ELSE n.online_since END, "
		"       last_notified_at = CASE WHEN old.gap OR old.old_status <> old.new_status "
		"OR old.last_notified_at IS NULL "
		"                                 OR old.last_notified_at <= pg_catalog.now() - "
		"pg_catalog.make_interval(secs => $7) "
		"                               THEN pg_catalog.now() ELSE n.last_notified_at END "
		"  FROM old WHERE n.id = old.id "
		"RETURNING n.last_notified_at = pg_catalog.now() AND "
		"old.last_notified_at IS DISTINCT FROM pg_catalog.now(), "
		"          pg_catalog.jsonb_build_object('node_id', n.id, 'name', n.name, 'status', n.status, "
		"              'cpu_load', n.cpu_load, 'memory_used_mb', n.memory_used_mb, "
		"              'memory_total_mb', n.memory_total_mb)::text",
	7, {INT8OID, TEXTOID, FLOAT4OID, INT4OID, INT4OID, FLOAT8OID, FLOAT8OID}};
	static MmPlan held = {
		"SELECT COALESCE(pg_catalog.array_agg(job_id ORDER BY job_id), '{}') "
		"  FROM modelmine.job_replicas WHERE node_id = $1 AND status = 'RUNNING'", 1, {INT8OID}};
	int64		node_id = MmRequireNode(false);
	Datum		args[7];
	bool		isnull;

	CheckBeat(b);
	args[0] = Int64GetDatum(node_id);
	args[1] = CStringGetTextDatum(b->status);
	args[2] = Float4GetDatum(b->cpu_load);
	args[3] = Int32GetDatum(b->used_mb);
	args[4] = Int32GetDatum(b->total_mb);
	args[5] = Float8GetDatum((double) MmSetting("offline_after_seconds"));
	args[6] = Float8GetDatum((double) MmSetting("heartbeat_notify_seconds"));
	MmExecWaiting(&beat, args, NULL, 1, "node", node_id);
	if (MmInt64(0, 1, NULL))
		MmNotifyJson(MM_CHANNEL_NODE_HEARTBEAT, MmText(0, 2));
	/* lost leases counted by others' claims while this node's row was held are folded at commit */
	MmAtCommit(MM_AT_COMMIT_NODES);
	MmExec(&held, args, NULL, true, 1);
	return DatumGetArrayTypePCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
												&isnull));
}

/*
 * Operator: puts one of their nodes in MAINTENANCE (claim_jobs then gives it nothing, whatever its
 * heartbeats say) or takes it out.  Returns the status the node now shows.
 */
static char *
SetNodeMaintenance(int64 node_id, bool on)
{
	static MmPlan set = {
		"UPDATE modelmine.nodes SET maintenance = $3, "
		"       status = CASE WHEN $3 THEN 'MAINTENANCE' "
		"WHEN status = 'MAINTENANCE' THEN 'ONLINE' ELSE status END "
		" WHERE id = $1 AND operator_id = $2 "
		"RETURNING modelmine._node_status(status, last_seen), "
		"          pg_catalog.jsonb_build_object('node_id', id, 'name', name, "
		"              'status', modelmine._node_status(status, last_seen), 'cpu_load', cpu_load, "
		"              'memory_used_mb', memory_used_mb, 'memory_total_mb', memory_total_mb)::text",
	3, {INT8OID, INT8OID, BOOLOID}};
	int64		me = MmRequireUser(false, NULL);
	Datum		args[3] = {Int64GetDatum(node_id), Int64GetDatum(me), BoolGetDatum(on)};

	if (MmExecWaiting(&set, args, NULL, 1, "node", node_id) != 1)
		ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
						errmsg("node " INT64_FORMAT " not found", node_id),
						errdetail("There is no node with this id that you operate."),
						errhint("List your nodes with modelmine.my_nodes().")));
	MmNotifyJson(MM_CHANNEL_NODE_HEARTBEAT, MmText(0, 2));
	return MmText(0, 1);
}

/*
 * Folds appended node counters (lost leases; results validated in another node's call) into the
 * nodes no one has locked, unless another transaction is folding; returns the number of rows
 * folded.  At commit only.
 */
int64
MmFoldNodeDeltas(void)
{
	static MmPlan pending = {"SELECT EXISTS (SELECT 1 FROM modelmine.node_deltas)", 0, {0}};
	static MmPlan fold = {
		"WITH nd AS (SELECT n.id FROM modelmine.nodes n "
		"             WHERE n.id IN (SELECT node_id FROM modelmine.node_deltas) "
		"             ORDER BY n.id FOR NO KEY UPDATE OF n SKIP LOCKED), "
		"d AS (DELETE FROM modelmine.node_deltas x USING nd WHERE x.node_id = nd.id "
		"      RETURNING x.*), "
		"s AS (SELECT node_id, pg_catalog.sum(jobs_failed) AS failed, "
		"             pg_catalog.sum(jobs_completed) AS completed, "
		"             pg_catalog.sum(tokens_earned) AS earned, "
		"             pg_catalog.sum(results_valid) AS valid, "
		"             pg_catalog.sum(results_invalid) AS invalid, pg_catalog.count(*) AS n "
		"FROM d GROUP BY node_id), "
		"u AS (UPDATE modelmine.nodes n SET jobs_failed = n.jobs_failed + s.failed, "
		"             jobs_completed = n.jobs_completed + s.completed, "
		"             tokens_earned = n.tokens_earned + s.earned, "
		"             results_valid = n.results_valid + s.valid, "
		"             results_invalid = n.results_invalid + s.invalid "
		"FROM s WHERE n.id = s.node_id) "
		"SELECT COALESCE(pg_catalog.sum(n), 0)::bigint FROM s", 0, {0}};

	if (MmExec(&pending, NULL, NULL, false, 1) != 1 || !MmInt64(0, 1, NULL))
		return 0;
	if (!DatumGetBool(DirectFunctionCall1(pg_try_advisory_xact_lock_int8,
										  Int64GetDatum(NODE_DELTAS_LOCK_KEY))))
		return 0;
	MmExec(&fold, NULL, NULL, false, 0);
	return MmInt64(0, 1, NULL);
}

/* ---------------------------------------------------------------------------------------------- */
/* Earnings                                                                                       */
/* ---------------------------------------------------------------------------------------------- */

/*
 * Operator: moves a node's earnings (all when all) to the operator's own balance; returns the
 * amount.
 */
static int64
WithdrawNodeEarnings(int64 node_id, bool all, int64 amount)
{
	static MmPlan own = {
		"SELECT a.id FROM modelmine.nodes n JOIN modelmine.accounts a ON a.node_id = n.id "
		" WHERE n.id = $1 AND n.operator_id = $2", 2, {INT8OID, INT8OID}};
	int64		me = MmRequireUser(false, NULL);
	Datum		args[2] = {Int64GetDatum(node_id), Int64GetDatum(me)};
	int64		account,
				have = 0;

	if (MmExec(&own, args, NULL, true, 1) != 1)
		ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
						errmsg("node " INT64_FORMAT " not found", node_id),
						errdetail("There is no node with this id that you operate."),
						errhint("List your nodes with modelmine.my_nodes().")));
	account = MmInt64(0, 1, NULL);
	if (all)
		amount = MmBalance(account);
	if (amount == 0)
		return 0;
	if (!MmTrySpend(account, MmUserAccount(me), amount, "withdrawal", 0, NULL, &have))
		ereport(ERROR, (errcode(ERRCODE_MM_INSUFFICIENT_BALANCE),
						errmsg("insufficient node earnings"),
						errdetail("Node " INT64_FORMAT " holds " INT64_FORMAT
								  " tokens; the withdrawal is " INT64_FORMAT ".",
								  node_id, have, amount),
						errhint("Withdraw at most the node's balance, or pass NULL to withdraw all "
								"of it.")));
	/* tokens earned by work unlock as much of the operator's signup grant (grants.c) */
	MmUnlockGrant(me, amount);
	return amount;
}

/* ---------------------------------------------------------------------------------------------- */
/* SQL-callable shims                                                                             */
/* ---------------------------------------------------------------------------------------------- */

/* register_node(name, capabilities) -> (node_id, node_key), the key shown once. */
Datum
mm_register_node(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	int64		node_id;
	char	   *key;
	MemoryContext cxt = CurrentMemoryContext;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "modelmine: register_node must return a composite");
	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("capabilities are required"),
						errhint("Pass e.g. {\"trainers\": [\"logreg\", \"mlp\"], \"slots\": 2}.")));
	MmConnect();
	key = RegisterNode(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
					   PG_GETARG_JSONB_P(1), &node_id);
	key = MemoryContextStrdup(cxt, key);
	SPI_finish();
	values[0] = Int64GetDatum(node_id);
	values[1] = CStringGetTextDatum(key);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* authenticate_node(node_key) and authenticate_node_local(node_key): verify, bind, return the id. */
static Datum
AuthenticateNodeShim(FunctionCallInfo fcinfo, bool local)
{
	int64		id;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						errmsg("node_key is required"),
						errhint("Pass the node_key printed by modelmine.register_node.")));
	MmConnect();
	id = MmAuthenticateNode(text_to_cstring(PG_GETARG_TEXT_PP(0)), local);
	SPI_finish();
	PG_RETURN_INT64(id);
}

/* authenticate_node(node_key): binds this database session to the node. */
Datum
mm_authenticate_node(PG_FUNCTION_ARGS)
{
	return AuthenticateNodeShim(fcinfo, false);
}

/* authenticate_node_local(node_key): binds this transaction only (gateways, pooled connections). */
Datum
mm_authenticate_node_local(PG_FUNCTION_ARGS)
{
	return AuthenticateNodeShim(fcinfo, true);
}

/* SQL: set_capabilities(capabilities), the calling node's trainers, runners, slots, resources. */
Datum
mm_set_capabilities(PG_FUNCTION_ARGS)
{
	static MmPlan set = {
		"UPDATE modelmine.nodes SET capabilities = $2, requirements = $3, slots = $4, "
		"       memory_mb = $5, cores = $6, labels = $7 WHERE id = $1",
	7, {INT8OID, JSONBOID, TEXTARRAYOID, INT2OID, INT4OID, INT4OID, TEXTARRAYOID}};
	Datum		args[7];
	int32		slots;
	MmResources offers;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("capabilities are required"),
						errhint("Pass e.g. {\"trainers\": [\"logreg\", \"mlp\"], \"slots\": 2}.")));
	MmConnect();
	args[0] = Int64GetDatum(MmRequireNode(false));
	args[1] = JsonbPGetDatum(PG_GETARG_JSONB_P(0));
	args[2] = RequirementsOf(PG_GETARG_JSONB_P(0), &slots, &offers);
	args[3] = Int16GetDatum((int16) slots);
	args[4] = Int32GetDatum(offers.memory_mb);
	args[5] = Int32GetDatum(offers.cores);
	args[6] = offers.labels;
	MmExecWaiting(&set, args, NULL, 0, "node", DatumGetInt64(args[0]));
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * heartbeat(cpu_load, memory_used_mb, memory_total_mb, status) -> the ids of the jobs this node
 * holds.
 */
Datum
mm_heartbeat(PG_FUNCTION_ARGS)
{
	Beat		b;
	ArrayType  *held;
	MemoryContext cxt = CurrentMemoryContext;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s is required",
							   PG_ARGISNULL(0) ? "cpu_load" : PG_ARGISNULL(1) ? "memory_used_mb" :
							   PG_ARGISNULL(2) ? "memory_total_mb" : "status"),
						errhint("Pass cpu_load (percent), memory_used_mb, memory_total_mb and a "
								"status.")));
	b.cpu_load = PG_GETARG_FLOAT4(0);
	b.used_mb = PG_GETARG_INT32(1);
	b.total_mb = PG_GETARG_INT32(2);
	b.status = text_to_cstring(PG_GETARG_TEXT_PP(3));
	MmConnect();
	held = Heartbeat(&b);
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		held = (ArrayType *) PG_DETOAST_DATUM_COPY(PointerGetDatum(held));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	PG_RETURN_ARRAYTYPE_P(held);
}

/* withdraw_node_earnings(node_id, amount) -> tokens moved to the operator. */
Datum
mm_withdraw_node_earnings(PG_FUNCTION_ARGS)
{
	int64		amount = 0,
				moved;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("node_id is required"),
						errhint("Pass one of your node ids (see modelmine.my_nodes()).")));
	if (!PG_ARGISNULL(1))
		amount = MmCheckAmount("amount", PG_GETARG_DATUM(1), false);
	MmConnect();
	moved = WithdrawNodeEarnings(PG_GETARG_INT64(0), PG_ARGISNULL(1), amount);
	SPI_finish();
	PG_RETURN_INT64(moved);
}

/* SQL: set_node_maintenance(node_id, maintenance). */
Datum
mm_set_node_maintenance(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *status;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("node_id is required"),
						errhint("Pass one of your node ids (see modelmine.my_nodes()).")));
	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("maintenance is required"),
						errhint("Pass true to put the node in MAINTENANCE, "
								"false to take it out.")));
	MmConnect();
	status = MemoryContextStrdup(cxt, SetNodeMaintenance(PG_GETARG_INT64(0), PG_GETARG_BOOL(1)));
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(status));
}
