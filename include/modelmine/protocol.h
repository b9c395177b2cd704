/*
 * modelmine/protocol.h — the contract every ModelMine program shares: the extension (inside the
 * backend), the worker, the CLI and the HTTP gateway.
 *
 * Statuses, trainer names, NOTIFY channels and their formats, the SQLSTATEs a client reacts to, limits and
 * the account layout are defined here once.  Plain C macros and nothing else, so it compiles in the
 * backend (after postgres.h) and in a client alike.  Where SQL must repeat a value (the job_status enum,
 * the default trainer in jobs.requirement, CHECK constraints, the system account ids), the integration
 * test regress/integration/contract.sh reads this file and checks the installed catalog against it.
 */
#ifndef MODELMINE_PROTOCOL_H
#define MODELMINE_PROTOCOL_H

/* The schema version this code speaks: modelmine.control's default_version. */
#define MM_SCHEMA_VERSION		"1.1"

/* ---- job statuses, in the order of the enum modelmine.job_status ---- */
#define MM_STATUS_PENDING		"PENDING"
#define MM_STATUS_RUNNING		"RUNNING"
#define MM_STATUS_COMPLETED		"COMPLETED"
#define MM_STATUS_FAILED		"FAILED"
#define MM_STATUS_CANCELED		"CANCELED"
#define MM_JOB_STATUSES { MM_STATUS_PENDING, MM_STATUS_RUNNING, MM_STATUS_COMPLETED, MM_STATUS_FAILED, \
						  MM_STATUS_CANCELED }
#define MM_NSTATUSES			5

/* ---- withdrawal statuses (modelmine.withdrawals.status): PENDING until decided once ---- */
#define MM_WITHDRAWAL_PENDING	"PENDING"
#define MM_WITHDRAWAL_APPROVED	"APPROVED"
#define MM_WITHDRAWAL_REJECTED	"REJECTED"
#define MM_WITHDRAWAL_STATUSES	MM_WITHDRAWAL_PENDING "," MM_WITHDRAWAL_APPROVED "," MM_WITHDRAWAL_REJECTED

/* ---- notifications (modelmine.outbox, sent by modelmine-notify) ---- */
#define MM_OUTBOX_PENDING		"PENDING"
#define MM_OUTBOX_SENT			"SENT"
#define MM_OUTBOX_DEAD			"DEAD"		/* dead-lettered: last_error says why */
#define MM_OUTBOX_STATUSES		MM_OUTBOX_PENDING "," MM_OUTBOX_SENT "," MM_OUTBOX_DEAD
/* the events, in the order of outbox.event's CHECK; all but the last may be chosen in preferences */
#define MM_NOTIFY_EVENTS		"job_completed,job_failed,job_canceled,node_offline,balance_low," \
								"withdrawal_decided,email_verification"
#define MM_CHANNEL_OUTBOX		"modelmine_outbox"	/* new outbox rows but a job's end: a wake-up, no payload */
/* webhook signature header: "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">" */
#define MM_SIGNATURE_HEADER		"ModelMine-Signature"
#define MM_EVENT_ID_HEADER		"ModelMine-Event-Id"

/* ---- node statuses: what a heartbeat may report; OFFLINE is derived, never reported ---- */
#define MM_NODE_ONLINE			"ONLINE"
#define MM_NODE_BUSY			"BUSY"
#define MM_NODE_MAINTENANCE		"MAINTENANCE"
#define MM_NODE_OFFLINE			"OFFLINE"

/* ---- the built-in trainers every worker runs; a config without "trainer" or "runner" gets the default ---- */
#define MM_TRAINER_DEFAULT		"logreg"
#define MM_TRAINERS { "logreg", "mlp", "linreg", "noop" }
#define MM_NTRAINERS			4
/* what a job needs, as jobs.requirement spells it and nodes.requirements lists it */
#define MM_REQUIRE_TRAINER		"trainer:"
#define MM_REQUIRE_RUNNER		"runner:"

/* ---- group roles (the install script creates them); a client's hint names the one to GRANT ---- */
#define MM_ROLE_ANON			"modelmine_anon"	/* signup, login, public figures */
#define MM_ROLE_USER			"modelmine_user"	/* a signed-in user; a worker registering its node */
#define MM_ROLE_NODE			"modelmine_node"	/* a worker */
#define MM_ROLE_ADMIN			"modelmine_admin"
#define MM_ROLE_NOTIFIER		"modelmine_notifier"	/* modelmine-notify: the outbox_* functions only */

/* ---- NOTIFY channels ---- */
#define MM_CHANNEL_WORK			"modelmine_work"	/* pending work appeared: a wake-up, no payload */
#define MM_CHANNEL_NODE_REGISTERED "node:registered"	/* {"node_id", "name"} */
#define MM_CHANNEL_NODE_HEARTBEAT "node:heartbeat"	/* {"node_id", "name", "status", "cpu_load", ...} */
/*
 * job events for gateways, a batch per statement: {"events": [{"event": "job:{id}:progress" |
 * "job:{id}:status", "user_id", "data"}, ...]}; a gateway also takes one event alone, unwrapped
 */
#define MM_CHANNEL_EVENTS		"modelmine_events"
#define MM_EVENT_JOB_STATUS_FMT "job:%lld:status"	/* data {"job_id", "status", "previous", ...} */
/* a job's progress reports: printf format for the job id as long long */
#define MM_CHANNEL_JOB_PROGRESS_FMT "job:%lld:progress"
/* jobs that reached COMPLETED, FAILED or CANCELED, a batch per statement: {"status", "job_ids": [...]} */
#define MM_CHANNEL_JOBS_ENDED	"modelmine_jobs_ended"
#define MM_CHANNEL_MAX			64	/* room for any channel name above, with the id */

/* ---- SQLSTATEs a client reacts to, with what they mean from the extension ---- */
#define MM_SQLSTATE_BAD_INPUT	"22023"	/* invalid_parameter_value: a refused argument; from complete_job,
										 * the result itself was refused */
#define MM_SQLSTATE_DUPLICATE	"23505"	/* unique_violation: email taken, node name taken */
#define MM_SQLSTATE_NOT_SIGNED_IN "28000"	/* no identity, or a bad, expired or revoked token or key */
#define MM_SQLSTATE_BAD_PASSWORD "28P01"	/* wrong email or password */
#define MM_SQLSTATE_FORBIDDEN	"42501"	/* role lacks the function; a job not leased to this node */
#define MM_SQLSTATE_LIMIT		"54000"	/* program_limit_exceeded: too many nodes */
#define MM_SQLSTATE_WRONG_STATE "55000"	/* job already settled or canceled; node OFFLINE; schema version */
#define MM_SQLSTATE_BUSY		"55P03"	/* lock_not_available: a row held past lock_timeout_ms; retry */
#define MM_SQLSTATE_NOT_FOUND	"P0002"	/* no such job/node/user visible to the caller */
#define MM_SQLSTATE_INSUFFICIENT_BALANCE "MM001"
#define MM_SQLSTATE_SUPPLY_CAP	"MM002"
#define MM_SQLSTATE_UNPLACEABLE	"MM003"	/* submit_job: no registered node offers what the job requires */
/* PostgreSQL's own, which clients also meet */
#define MM_SQLSTATE_SERIALIZATION "40001"
#define MM_SQLSTATE_DEADLOCK	"40P01"
#define MM_SQLSTATE_NO_SCHEMA	"3F000"	/* invalid_schema_name: the extension is not installed */
#define MM_SQLSTATE_NO_FUNCTION "42883"	/* undefined_function: not installed, or an older version */
#define MM_SQLSTATE_CLASS_CONNECTION "08"	/* class: the connection is gone */
#define MM_SQLSTATE_CLASS_SHUTDOWN "57P"	/* admin/crash shutdown: reconnect */
#define MM_SQLSTATE_CLASS_AUTH	"28"	/* class: identity refused */

/* ---- limits (each mirrors a CHECK, a function's own test, or a worker option's range) ---- */
#define MM_MAX_SLOTS			64		/* capabilities.slots, nodes.slots CHECK, worker --slots */
#define MM_MAX_MEMORY_MB		16777216	/* capabilities/requirements memory_mb, CHECKs, --memory-mb */
#define MM_MAX_CORES			4096	/* capabilities/requirements cores, CHECKs, worker --cores */
#define MM_MAX_LABELS			16		/* capabilities/requirements labels, CHECKs, worker --label */
#define MM_MAX_CAP_NAMES		64		/* names per capabilities.trainers / .runners */
#define MM_MAX_CAPS_BYTES		4096	/* JSON text of a capability document */
#define MM_NAME_MAX_CHARS		64		/* a trainer, runner or capability name */
#define MM_NODE_NAME_MAX_CHARS	100		/* nodes.name CHECK */
#define MM_TITLE_MAX_CHARS		200		/* jobs.title CHECK */
#define MM_DESCRIPTION_MAX_CHARS 10000	/* jobs.description CHECK */
#define MM_PRIORITY_MIN			(-1000)	/* jobs.priority CHECK */
#define MM_PRIORITY_MAX			1000
#define MM_CLAIM_MAX			100		/* claim_jobs max_jobs */
#define MM_COMPLETE_MAX			32		/* complete_jobs: results per call (a subtransaction each) */
#define MM_SUBMIT_MAX			1000	/* submit_jobs: jobs per call */
#define MM_LEASE_MIN_SECONDS	5		/* claim_jobs lease_seconds */
#define MM_LEASE_MAX_SECONDS	3600
#define MM_MAX_METRICS_BYTES	4000	/* JSON text of a progress report's metrics: under NOTIFY's 8000 */
#define MM_MAX_ERROR_CHARS		4000	/* fail_job keeps this much of the error */
#define MM_MAX_EPOCHS			1000000000 /* result.epochs */
#define MM_PASSWORD_MIN_CHARS	8
#define MM_PASSWORD_MAX_BYTES	72		/* bcrypt reads no more */
#define MM_EMAIL_MAX_BYTES		254
#define MM_MAX_AMOUNT			1000000000000000	/* any single amount; max_supply and max_stake's top */

/* ---- the account layout (fixed ids of the system accounts; escrow and fee are striped by job id) ---- */
#define MM_ISSUANCE_ACCOUNT		1
#define MM_HELD_ACCOUNT			2		/* tokens of pending withdrawals */
#define MM_WITHDRAWN_ACCOUNT	3		/* tokens paid out of the system */
#define MM_SHARDS				16
#define MM_ESCROW_FIRST_ACCOUNT	16		/* escrow shards 16..31 */
#define MM_FEE_FIRST_ACCOUNT	32		/* fee shards 32..47 */
#define MM_FIRST_OWNED_ACCOUNT	1000	/* user and node accounts */
#define MM_ESCROW_ACCOUNT(job)	(MM_ESCROW_FIRST_ACCOUNT + (job) % MM_SHARDS)
#define MM_FEE_ACCOUNT(job)		(MM_FEE_FIRST_ACCOUNT + (job) % MM_SHARDS)

/* ---- node keys: "mmn_<node id>_<64 hex digits>" ---- */
#define MM_NODE_KEY_PREFIX		"mmn_"
#define MM_NODE_KEY_SECRET_HEX	64

#endif							/* MODELMINE_PROTOCOL_H */
