/*
 * main.c — modelmine-worker: options (and which way to reach the network: --db or --api), node
 * identity (key or first-start registration), then the loop.
 */
#include <errno.h>
#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http.h"
#include "proto.h"

/* Prints --help: every option with its variable, examples, exit statuses. */
static void
usage(FILE *f)
{
	fprintf(f,
			"modelmine-worker — a ModelMine compute node: claims training jobs, trains, reports, "
			"earns tokens.\n"
			"\n"
			"Usage: modelmine-worker [OPTION]...\n"
			"\n"
			"Options (each also settable from the environment variable in brackets):\n"
			"  --db URL                 work for this database directly, over libpq "
			"[MODELMINE_DB];\n"
			"                           default: libpq's PG* variables. For machines the "
			"database's\n"
			"                           operator trusts with a PostgreSQL login (a role in "
			"modelmine_node)\n"
			"  --api URL                work through the HTTP gateway (modelmine-api) at URL "
			"instead\n"
			"                           [MODELMINE_API]: for machines that must not reach the "
			"database,\n"
			"                           such as strangers' nodes on a marketplace; only the node "
			"key\n"
			"                           travels, over HTTPS. Exclusive with --db\n"
			"  --cacert FILE            with --api https://: check the gateway's certificate "
			"against the CA\n"
			"                           certificates in FILE (PEM), e.g. a private CA "
			"[MODELMINE_CACERT];\n"
			"                           default: the system's CAs. The certificate is always "
			"checked\n"
			"  --claim-wait S           with --api: how long one claim waits at the gateway for "
			"work\n"
			"                           (a long-poll) [MODELMINE_CLAIM_WAIT]; default 25, at most "
			"the\n"
			"                           gateway's --max-wait\n"
			"  --name NAME              node name [MODELMINE_NODE_NAME]; default: the host name\n"
			"  --slots N                jobs run at once, 1..%d [MODELMINE_SLOTS]; default 1\n"
			"  --memory-mb MB           memory offered to jobs that declare requirements "
			"[MODELMINE_MEMORY_MB];\n"
			"                           default: MemTotal from /proc/meminfo\n"
			"  --cores N                CPU cores offered to jobs [MODELMINE_CORES]; default: the "
			"online\n"
			"                           processors\n"
			"  --label NAME[,NAME...]   labels this node offers, such as gpu; repeatable, at most "
			"16\n"
			"                           [MODELMINE_LABELS]\n"
			"  --state-file FILE        where the node key is kept, mode 0600 "
			"[MODELMINE_STATE_FILE];\n"
			"                           default $XDG_STATE_HOME/modelmine/worker-NAME.json\n"
			"  --node-key KEY           node key printed by modelmine.register_node "
			"[MODELMINE_NODE_KEY]\n"
			"  --operator-email EMAIL   on first start, register this node for that operator\n"
			"  --operator-password PW   ... with this password (prefer the variable) "
			"[MODELMINE_OPERATOR_EMAIL,\n"
			"                           MODELMINE_OPERATOR_PASSWORD]; the key is then saved in the "
			"state file\n"
			"  --runner NAME=COMMAND    allow jobs with \"runner\": NAME to run COMMAND (via "
			"/bin/sh -c); the job\n"
			"                           config arrives on stdin, JSON lines are read from stdout. "
			"Repeatable\n"
			"                           [MODELMINE_RUNNERS: one NAME=COMMAND per line]\n"
			"  --data-dir DIR           file:// datasets are read only below DIR "
			"[MODELMINE_DATA_DIR];\n"
			"                           default: file:// refused\n"
			"  --allow-net CIDR         http(s) datasets may also come from this network. By "
			"default a download\n"
			"                           may not connect to loopback, private (10/8, 172.16/12, "
			"192.168/16,\n"
			"                           100.64/10), link-local, unique-local (fc00::/7), "
			"multicast, reserved or\n"
			"                           cloud metadata addresses (169.254.169.254, "
			"fd00:ec2::254...), after DNS\n"
			"                           and redirects alike. IPv4 or IPv6; repeatable "
			"[MODELMINE_ALLOW_NET:\n"
			"                           CIDRs separated by commas or spaces]\n"
			"  --lease-seconds N        lease length asked for each job, %d..%d "
			"[MODELMINE_LEASE_SECONDS];\n"
			"                           default 30\n"
			"  --job-timeout S          kill and fail a job running longer "
			"[MODELMINE_JOB_TIMEOUT]; default 3600\n"
			"  --poll-interval S        re-read the queue this often without a NOTIFY "
			"[MODELMINE_POLL_INTERVAL];\n"
			"                           default 5 (--api: between the claims of --exit-when-idle, "
			"which do not\n"
			"                           wait at the gateway)\n"
			"  --heartbeat-interval S   [MODELMINE_HEARTBEAT_INTERVAL]; default 5\n"
			"  --drain-timeout S        on SIGTERM, wait this long for running jobs before "
			"releasing them\n"
			"                           [MODELMINE_DRAIN_TIMEOUT]; default 30\n"
			"  --max-output BYTES       a runner printing more is killed [MODELMINE_MAX_OUTPUT]; "
			"default 67108864\n"
			"  --child-memory-limit MB  address space of each trainer process (built-in trainers run "
			"in one\n"
			"                           long-lived process per slot): a job needing more fails and "
			"the process\n"
			"                           is replaced [MODELMINE_CHILD_MEMORY_LIMIT]; default 1024, "
			"0 no limit\n"
			"  --child-max-jobs N       replace a trainer process after N jobs "
			"[MODELMINE_CHILD_MAX_JOBS];\n"
			"                           default 1000, 0 never\n"
			"  --group-ms MS            report jobs that end within MS milliseconds of each other "
			"in one\n"
			"                           call and transaction (complete_jobs) [MODELMINE_GROUP_MS]; "
			"default 2,\n"
			"                           0 only those that end in the same turn\n"
			"  --exit-when-idle         exit 0 once the queue is empty and nothing runs\n"
			"                           [MODELMINE_EXIT_WHEN_IDLE=1]\n"
			"  --help                   this text\n"
			"\n"
			"Examples:\n"
			"  # first start: register with operator credentials, key saved for later starts\n"
			"  MODELMINE_OPERATOR_PASSWORD=secret modelmine-worker --db "
			"postgres://node@db/modelmine \\\n"
			"      --name gpu-box-1 --operator-email ops@example.com --slots 2\n"
			"  # with a key from SELECT * FROM modelmine.register_node('gpu-box-1', "
			"'{\"trainers\":[\"logreg\"]}')\n"
			"  modelmine-worker --db postgres://node@db/modelmine --node-key mmn_7_...\n"
			"  # through the gateway: no database login on this machine, the gateway's CA trusted\n"
			"  MODELMINE_OPERATOR_PASSWORD=secret modelmine-worker --api "
			"https://gw.example:8080 \\\n"
			"      --cacert /etc/modelmine/gateway-ca.pem --name gpu-box-2 --operator-email "
			"ops@example.com\n"
			"  # offer an external runner\n"
			"  modelmine-worker --runner torch-cnn='python3 /opt/runners/cnn.py' --slots 1\n"
			"  # datasets may also come from the office network's file server (and its IPv6 "
			"prefix)\n"
			"  modelmine-worker --allow-net 10.20.0.0/16 --allow-net fd12:3456:789a::/48\n"
			"\n"
			"With --db the database role needs modelmine_node (and modelmine_user for first-start "
			"registration);\n"
			"with --api the node needs no role: the gateway signs it in with its key (registration "
			"with the\n"
			"operator's email and password, through the gateway's /auth/login). Calls to the "
			"gateway go\n"
			"through https_proxy/http_proxy unless no_proxy names it.\n"
			"Dataset downloads ignore http_proxy and friends: behind a proxy the worker could not "
			"tell\n"
			"which address it reaches. External runners fetch their data themselves, unchecked.\n"
			"SIGTERM or Ctrl-C: stop claiming, finish running jobs (up to --drain-timeout), "
			"release the rest;\n"
			"a second signal releases at once.\n"
			"\n"
			"Exit status: 0 stopped cleanly; 1 the node key was refused or a fatal error; 2 bad "
			"usage.\n",
			MM_MAX_SLOTS, MM_LEASE_MIN_SECONDS, MM_LEASE_MAX_SECONDS);
}

/* Adds one --runner NAME=COMMAND to the runners a job may pick by name; -1 on a bad spec. */
static int
add_runner(Options *o, const char *spec)
{
	const char *eq = strchr(spec, '=');

	if (eq == NULL || eq == spec || eq[1] == '\0')
	{
		fprintf(stderr, "modelmine-worker: --runner needs NAME=COMMAND, got \"%s\"\n", spec);
		return -1;
	}
	if (o->nrunners >= MAX_RUNNERS)
	{
		fprintf(stderr, "modelmine-worker: at most %d runners\n", MAX_RUNNERS);
		return -1;
	}
	o->runners[o->nrunners].name = strndup(spec, (size_t) (eq - spec));
	o->runners[o->nrunners].command = strdup(eq + 1);
	o->nrunners++;
	return 0;
}

/*
 * Adds labels (--label, MODELMINE_LABELS), separated by commas: names of 1 to 64 characters a-z,
 * 0-9, _, - or ., starting with a letter or digit, as the server checks them; -1 on a bad one.
 */
static int
add_labels(Options *o, const char *list)
{
	char	   *copy = strdup(list),
			   *save = NULL;
	int			rc = 0;

	for (char *t = strtok_r(copy, ", \t", &save); t && rc == 0; t = strtok_r(NULL, ", \t", &save))
	{
		size_t		len = strlen(t);
		bool		ok = len >= 1 && len <= MM_NAME_MAX_CHARS && isalnum((unsigned char) t[0]);

		for (size_t i = 0; ok && i < len; i++)
			ok = (t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '_' ||
				t[i] == '-' || t[i] == '.';
		if (!ok)
		{
			fprintf(stderr, "modelmine-worker: --label \"%s\" is not a name of 1 to %d characters "
					"a-z, 0-9, _, - or . starting with a letter or digit\n", t, MM_NAME_MAX_CHARS);
			rc = -1;
		}
		else if (o->nlabels >= MM_MAX_LABELS)
		{
			fprintf(stderr, "modelmine-worker: at most %d labels\n", MM_MAX_LABELS);
			rc = -1;
		}
		else
			o->labels[o->nlabels++] = strdup(t);
	}
	free(copy);
	return rc;
}

/*
 * Frees what main allocated for the options (--runner copies, the default state file's path) and
 * passes rc on: every exit of main goes through it.
 */
static int
options_done(Options *o, int rc)
{
	free(o->state_file_buf);
	o->state_file_buf = NULL;
	for (int i = 0; i < o->nrunners; i++)
	{
		free(o->runners[i].name);
		free(o->runners[i].command);
	}
	o->nrunners = 0;
	for (int i = 0; i < o->nlabels; i++)
		free(o->labels[i]);
	o->nlabels = 0;
	return rc;
}

/* Adds one or more CIDRs, separated by commas or white space (--allow-net, MODELMINE_ALLOW_NET). */
static int
add_allow_net(Options *o, const char *list)
{
	char	   *copy = strdup(list),
			   *save = NULL;
	int			rc = 0;

	for (char *tok = strtok_r(copy, ", \t\n", &save); tok && rc == 0;
		 tok = strtok_r(NULL, ", \t\n", &save))
	{
		char		err[256];

		if (o->nallow_net >= MAX_ALLOW_NET)
		{
			fprintf(stderr, "modelmine-worker: at most %d --allow-net networks\n", MAX_ALLOW_NET);
			rc = -1;
		}
		else if (mm_cidr_parse(tok, &o->allow_net[o->nallow_net], err, sizeof(err)) != 0)
		{
			fprintf(stderr, "modelmine-worker: --allow-net: %s\n", err);
			rc = -1;
		}
		else
			o->nallow_net++;
	}
	free(copy);
	return rc;
}

/* Reads a whole number from lo to hi for the option what; -1 (said on stderr) otherwise. */
static int
parse_int(const char *what, const char *s, long lo, long hi, long *out)
{
	char	   *end;
	long		v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi)
	{
		fprintf(stderr, "modelmine-worker: %s must be a whole number from %ld to %ld, got \"%s\"\n",
				what, lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* Reads seconds from 0.05 to a day for the option what; -1 (said on stderr) otherwise. */
static int
parse_seconds(const char *what, const char *s, double *out)
{
	char	   *end;
	double		v = strtod(s, &end);

	if (*s == '\0' || *end != '\0' || !(v >= 0.05 && v <= 86400))
	{
		fprintf(stderr, "modelmine-worker: %s must be seconds from 0.05 to 86400, got \"%s\"\n",
				what, s);
		return -1;
	}
	*out = v;
	return 0;
}

enum
{
	OPT_DB = 1000, OPT_NAME, OPT_SLOTS, OPT_STATE, OPT_KEY, OPT_EMAIL, OPT_PASSWORD, OPT_RUNNER,
	OPT_DATA, OPT_LEASE, OPT_TIMEOUT, OPT_POLL, OPT_HB, OPT_DRAIN, OPT_MAXOUT, OPT_IDLE,
	OPT_ALLOW_NET, OPT_API, OPT_CACERT, OPT_CLAIM_WAIT, OPT_CHILD_MEM, OPT_CHILD_JOBS, OPT_GROUP_MS,
	OPT_MEMORY, OPT_CORES, OPT_LABEL, OPT_HELP
};

/* Applies one option value (from the command line or the environment). */
static int
apply(Options *o, int opt, const char *v)
{
	long		n;

	switch (opt)
	{
		case OPT_DB:
			o->db = v;
			return 0;
		case OPT_API:
			o->api = v;
			return 0;
		case OPT_CACERT:
			o->cacert = v;
			return 0;
		case OPT_CLAIM_WAIT:
			return parse_seconds("--claim-wait", v, &o->claim_wait);
		case OPT_NAME:
			o->name = v;
			return 0;
		case OPT_SLOTS:
			return parse_int("--slots", v, 1, MM_MAX_SLOTS, &n) ? -1 : (o->slots = (int) n, 0);
		case OPT_MEMORY:
			return parse_int("--memory-mb", v, 0, MM_MAX_MEMORY_MB, &n) ? -1 :
				(o->memory_mb = (int) n, 0);
		case OPT_CORES:
			return parse_int("--cores", v, 0, MM_MAX_CORES, &n) ? -1 : (o->cores = (int) n, 0);
		case OPT_LABEL:
			return add_labels(o, v);
		case OPT_STATE:
			o->state_file = v;
			return 0;
		case OPT_KEY:
			o->node_key = v;
			return 0;
		case OPT_EMAIL:
			o->operator_email = v;
			return 0;
		case OPT_PASSWORD:
			o->operator_password = v;
			return 0;
		case OPT_RUNNER:
			return add_runner(o, v);
		case OPT_DATA:
			o->data_dir = v;
			return 0;
		case OPT_ALLOW_NET:
			return add_allow_net(o, v);
		case OPT_LEASE:
			return parse_int("--lease-seconds", v, MM_LEASE_MIN_SECONDS, MM_LEASE_MAX_SECONDS, &n) ?
				-1 : (o->lease_seconds = (int) n, 0);
		case OPT_TIMEOUT:
			return parse_int("--job-timeout", v, 1, 7 * 86400, &n) ? -1 :
				(o->job_timeout = (int) n, 0);
		case OPT_POLL:
			return parse_seconds("--poll-interval", v, &o->poll_interval);
		case OPT_HB:
			return parse_seconds("--heartbeat-interval", v, &o->heartbeat_interval);
		case OPT_DRAIN:
			return parse_seconds("--drain-timeout", v, &o->drain_timeout);
		case OPT_MAXOUT:
			return parse_int("--max-output", v, 1024, LONG_MAX, &n) ? -1 :
				(o->max_output = (size_t) n, 0);
		case OPT_CHILD_MEM:
			return parse_int("--child-memory-limit", v, 0, 1 << 20, &n) ? -1 :
				(o->child_memory_limit = (int) n, 0);
		case OPT_CHILD_JOBS:
			return parse_int("--child-max-jobs", v, 0, INT_MAX, &n) ? -1 :
				(o->child_max_jobs = (int) n, 0);
		case OPT_GROUP_MS:
			return parse_int("--group-ms", v, 0, 1000, &n) ? -1 : (o->group_ms = (int) n, 0);
		case OPT_IDLE:
			o->exit_when_idle = v == NULL || strcmp(v, "0") != 0;
			return 0;
	}
	return -1;
}

/* Applies the MODELMINE_* variables; options on the command line override them afterwards. */
static int
from_environment(Options *o)
{
	static const struct
	{
		const char *var;
		int			opt;
	}			env[] = {
		{"MODELMINE_DB", OPT_DB}, {"MODELMINE_NODE_NAME", OPT_NAME}, {"MODELMINE_SLOTS", OPT_SLOTS},
		{"MODELMINE_STATE_FILE", OPT_STATE}, {"MODELMINE_NODE_KEY", OPT_KEY},
		{"MODELMINE_OPERATOR_EMAIL", OPT_EMAIL}, {"MODELMINE_OPERATOR_PASSWORD", OPT_PASSWORD},
		{"MODELMINE_DATA_DIR", OPT_DATA}, {"MODELMINE_LEASE_SECONDS", OPT_LEASE},
		{"MODELMINE_JOB_TIMEOUT", OPT_TIMEOUT}, {"MODELMINE_POLL_INTERVAL", OPT_POLL},
		{"MODELMINE_HEARTBEAT_INTERVAL", OPT_HB}, {"MODELMINE_DRAIN_TIMEOUT", OPT_DRAIN},
		{"MODELMINE_MAX_OUTPUT", OPT_MAXOUT}, {"MODELMINE_EXIT_WHEN_IDLE", OPT_IDLE},
		{"MODELMINE_ALLOW_NET", OPT_ALLOW_NET}, {"MODELMINE_API", OPT_API},
		{"MODELMINE_CACERT", OPT_CACERT}, {"MODELMINE_CLAIM_WAIT", OPT_CLAIM_WAIT},
		{"MODELMINE_CHILD_MEMORY_LIMIT", OPT_CHILD_MEM},
		{"MODELMINE_CHILD_MAX_JOBS", OPT_CHILD_JOBS}, {"MODELMINE_GROUP_MS", OPT_GROUP_MS},
		{"MODELMINE_MEMORY_MB", OPT_MEMORY}, {"MODELMINE_CORES", OPT_CORES},
		{"MODELMINE_LABELS", OPT_LABEL},
	};
	const char *runners = getenv("MODELMINE_RUNNERS");

	for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
	{
		const char *v = getenv(env[i].var);

		if (v && *v && apply(o, env[i].opt, v) != 0)
		{
			fprintf(stderr, "modelmine-worker: (that value came from %s)\n", env[i].var);
			return -1;
		}
	}
	if (runners && *runners)
	{
		char	   *copy = strdup(runners),
				   *save = NULL;

		for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			if (*line && add_runner(o, line) != 0)
				return -1;
	}
	return 0;
}

/* Logs the networks --allow-net opens to dataset downloads, if any. */
static void
log_allow_net(const Options *o)
{
	char		nets[1024] = "";

	if (o->nallow_net == 0)
		return;
	for (int i = 0; i < o->nallow_net; i++)
	{
		char		one[64];
		size_t		used = strlen(nets);

		mm_cidr_format(&o->allow_net[i], one, sizeof(one));
		snprintf(nets + used, sizeof(nets) - used, "%s%s", i ? ", " : "", one);
	}
	logmsg("dataset downloads may also reach %s (--allow-net)", nets);
}

/*
 * --db or --api: exclusive.  Both on the command line, or both in the environment (env_db,
 * env_api), is a usage error; one on the command line overrides the other's variable, and the log
 * says so.  --cacert only makes sense for an https:// gateway, and must be readable; plain HTTP to
 * another machine is allowed but logged at every start (the node key would travel in clear).
 * 0, or 2 with the reason on stderr.
 */
static int
choose_peer(Options *o, const char *env_db, const char *env_api, bool db_given, bool api_given)
{
	char		why[512];
	bool		loopback;

	if (db_given && api_given)
	{
		fprintf(stderr, "modelmine-worker: --db and --api are exclusive: give one (--db for a "
				"database this machine may log in to, --api for the gateway)\n");
		return 2;
	}
	if (!db_given && !api_given && env_db && env_api)
	{
		fprintf(stderr, "modelmine-worker: MODELMINE_DB and MODELMINE_API are both set: unset one, "
				"or choose with --db or --api\n");
		return 2;
	}
	if (db_given && env_api)
		logmsg("--db given: MODELMINE_API is ignored");
	if (api_given && env_db)
		logmsg("--api given: MODELMINE_DB is ignored");
	if (db_given)
		o->api = NULL;
	if (api_given)
		o->db = NULL;
	if (o->cacert && o->api == NULL)
	{
		fprintf(stderr, "modelmine-worker: --cacert is for --api https://...; with --db, put "
				"sslrootcert=FILE in the connection string\n");
		return 2;
	}
	if (o->api == NULL)
		return 0;
	if (http_check_url(o->api, &loopback, why, sizeof(why)) != 0)
	{
		fprintf(stderr, "modelmine-worker: --api: %s\n", why);
		return 2;
	}
	if (o->cacert && strncmp(o->api, "https:", 6) != 0)
	{
		fprintf(stderr, "modelmine-worker: --cacert is for an https:// gateway, and --api is %s\n",
				o->api);
		return 2;
	}
	if (o->cacert && access(o->cacert, R_OK) != 0)
	{
		fprintf(stderr, "modelmine-worker: --cacert %s: %s\n", o->cacert, strerror(errno));
		return 2;
	}
	if (!loopback && strncmp(o->api, "https:", 6) != 0)
		logmsg("warning: --api %s is plain HTTP: the node key and every job cross the network "
			   "unencrypted; use https://", o->api);
	return 0;
}

/*
 * A restarted worker is the node its state file names: it logs under that name (saved: NULL in a
 * state file without one), not the host's, and says so when --name names another.
 */
static void
adopt_saved_name(Options *o, char *saved, bool name_given)
{
	const char *asked = o->name;

	if (saved == NULL)
		return;
	o->name = saved;
	log_name = saved;
	if (name_given && strcmp(asked, saved) != 0)
		logmsg("state file %s holds node \"%s\": working as it "
			   "(--name %s names a node only when it registers)", o->state_file, saved, asked);
}

/*
 * The node this worker works as: --node-key, else the key (and name) in the state file, else a node
 * registered now with the operator's credentials and saved there.  0 with *key set, or an exit
 * status.
 */
static int
node_identity(Options *o, bool name_given, char **key)
{
	long long	node_id = 0;
	char	   *saved_name = NULL;
	json_t	   *caps;
	int			rc;

	if (o->node_key)
	{
		*key = strdup(o->node_key);
		return 0;
	}
	if ((rc = state_load(o->state_file, key, &node_id, &saved_name)) < 0)
		return 1;
	if (rc > 0)
	{
		adopt_saved_name(o, saved_name, name_given);
		return 0;
	}
	if (o->operator_email == NULL || o->operator_password == NULL)
	{
		fprintf(stderr, "modelmine-worker: no node key: pass --node-key, keep one in %s, or give\n"
				"--operator-email and MODELMINE_OPERATOR_PASSWORD once to register this node\n",
				o->state_file);
		return 2;
	}
	caps = capabilities(o);
	rc = proto_register(o, caps, key, &node_id);
	json_decref(caps);
	if (rc != 0 || state_save(o->state_file, *key, node_id, o->name) != 0)
		return 1;
	logmsg("registered as node %lld; key saved in %s", node_id, o->state_file);
	return 0;
}

/* Options, the node's identity, then the loop; the exit status is the documented one. */
int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"db", required_argument, NULL, OPT_DB},
		{"name", required_argument, NULL, OPT_NAME},
		{"slots", required_argument, NULL, OPT_SLOTS},
		{"memory-mb", required_argument, NULL, OPT_MEMORY},
		{"cores", required_argument, NULL, OPT_CORES},
		{"label", required_argument, NULL, OPT_LABEL},
		{"state-file", required_argument, NULL, OPT_STATE},
		{"node-key", required_argument, NULL, OPT_KEY},
		{"operator-email", required_argument, NULL, OPT_EMAIL},
		{"operator-password", required_argument, NULL, OPT_PASSWORD},
		{"runner", required_argument, NULL, OPT_RUNNER},
		{"data-dir", required_argument, NULL, OPT_DATA},
		{"lease-seconds", required_argument, NULL, OPT_LEASE},
		{"job-timeout", required_argument, NULL, OPT_TIMEOUT},
		{"poll-interval", required_argument, NULL, OPT_POLL},
		{"heartbeat-interval", required_argument, NULL, OPT_HB},
		{"drain-timeout", required_argument, NULL, OPT_DRAIN},
		{"max-output", required_argument, NULL, OPT_MAXOUT},
		{"exit-when-idle", no_argument, NULL, OPT_IDLE},
		{"allow-net", required_argument, NULL, OPT_ALLOW_NET},
		{"api", required_argument, NULL, OPT_API},
		{"cacert", required_argument, NULL, OPT_CACERT},
		{"claim-wait", required_argument, NULL, OPT_CLAIM_WAIT},
		{"child-memory-limit", required_argument, NULL, OPT_CHILD_MEM},
		{"child-max-jobs", required_argument, NULL, OPT_CHILD_JOBS},
		{"group-ms", required_argument, NULL, OPT_GROUP_MS},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0}
	};
	static char host[256];
	Options		o = {.slots = 1, .memory_mb = -1, .cores = -1, .lease_seconds = 30, .job_timeout = 3600,
	.poll_interval = 5,
	.heartbeat_interval = 5, .drain_timeout = 30, .max_output = 64 << 20, .max_download = 100 << 20,
	.download_timeout = 60, .claim_wait = 25, .child_memory_limit = 1024, .child_max_jobs = 1000,
	.group_ms = 2};
	const char *env_db,
			   *env_api;
	char	   *key = NULL;
	bool		name_given,
				db_given = false,
				api_given = false;
	int			c,
				rc;

	if (from_environment(&o) != 0)
		return options_done(&o, 2);
	env_db = o.db;
	env_api = o.api;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
	{
		if (c == 'h' || c == OPT_HELP)
		{
			usage(stdout);
			return options_done(&o, 0);
		}
		db_given |= c == OPT_DB;
		api_given |= c == OPT_API;
		if (c == '?' || apply(&o, c, optarg) != 0)
		{
			fprintf(stderr, "Try 'modelmine-worker --help'.\n");
			return options_done(&o, 2);
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "modelmine-worker: unexpected argument \"%s\"; try --help\n", argv[optind]);
		return options_done(&o, 2);
	}
	name_given = o.name != NULL;
	if (o.name == NULL)
	{
		if (gethostname(host, sizeof(host) - 1) != 0)
			snprintf(host, sizeof(host), "node");
		o.name = host;
	}
	log_name = o.name;
	if (o.state_file == NULL)
		o.state_file = o.state_file_buf = default_state_file(o.name);
	if (choose_peer(&o, env_db, env_api, db_given, api_given) != 0)
		return options_done(&o, 2);
	if (o.api)
		curl_global_init(CURL_GLOBAL_DEFAULT);
	if ((rc = node_identity(&o, name_given, &key)) != 0)
		return options_done(&o, rc);
	log_allow_net(&o);
	rc = run_loop(&o, key);
	curl_global_cleanup();
	free(key);
	return options_done(&o, rc);
}
