-- ModelMine install script for the current version (1.1): the source of truth for a fresh install.
-- The Makefile copies it to modelmine--<version>.sql.  Everything is schema-qualified; functions that
-- touch tables are SECURITY DEFINER with a fixed search_path, revoked from PUBLIC and granted to the
-- least-privileged role that needs them.  Non-admin roles never read or write a table directly.
--
-- Versions and upgrades.  A released version's install script never changes again (modelmine--1.0.sql
-- is 1.0 as it landed).  Every later change to the schema ships twice: here, and as an upgrade script
-- sql/modelmine--A--B.sql (1.0 -> 1.1 is modelmine--1.0--1.1.sql; the next is --1.1--1.2.sql), with
-- default_version in modelmine.control, EXTVERSION in the Makefile and MM_SCHEMA_VERSION in
-- extension/modelmine.h moved to B.  regress/integration/upgrade.sh installs the previous version with
-- its own library, fills it, updates it with this library, and requires the catalog to be identical to
-- a fresh install and the books and the ledger to still verify.  The library refuses to run against a
-- schema of another version (ALTER EXTENSION modelmine UPDATE fixes that), so C code never meets tables
-- shaped for a version it was not written for.

\echo Use "CREATE EXTENSION modelmine CASCADE" to load this file. \quit

-------------------------------------------------------------------------------------------------------
-- Roles.  Roles are cluster-wide and outlive the extension, so create them only when missing.
-------------------------------------------------------------------------------------------------------
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['modelmine_anon', 'modelmine_user', 'modelmine_node', 'modelmine_admin'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    -- An admin can do everything a signed-in user can.
    IF NOT pg_catalog.pg_has_role('modelmine_admin', 'modelmine_user', 'MEMBER') THEN
        GRANT modelmine_user TO modelmine_admin;
    END IF;
END
$roles$;

GRANT USAGE ON SCHEMA modelmine TO modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;

-------------------------------------------------------------------------------------------------------
-- Settings and secrets.  Settings are rows, not GUCs: any session can SET a GUC, and the reward split
-- or the signup grant must not be one SET away.  Secrets are readable only by the extension owner.
-------------------------------------------------------------------------------------------------------
CREATE TABLE modelmine.settings (
    name        text PRIMARY KEY,
    value       bigint NOT NULL,
    min_value   bigint NOT NULL,
    max_value   bigint NOT NULL,
    description text NOT NULL,
    CHECK (value BETWEEN min_value AND max_value)
);
INSERT INTO modelmine.settings (name, value, min_value, max_value, description) VALUES
    ('signup_grant',        1000, 0, 1000000000, 'Tokens a new user receives at signup.'),
    ('default_stake',        100, 1, 1000000000, 'Stake used when submit_job is given none.'),
    ('reward_pct',            80, 0, 100,        'Percent of a completed job''s stake paid to the node (rounded down); the rest is the network fee.'),
    ('max_config_bytes',   65536, 2, 1048576,    'Largest accepted job config, in bytes of its JSON text.'),
    ('session_ttl_seconds', 86400, 60, 31536000, 'Lifetime of a login session and its token.'),
    ('bcrypt_cost',           10, 4, 16,         'bcrypt work factor for new password hashes.'),
    ('max_attempts',           3, 1, 100,        'Times a job may be claimed before an expired lease fails it (and refunds the stake).'),
    ('offline_after_seconds', 15, 6, 3600,       'A node without a heartbeat for this long is OFFLINE.'),
    ('max_result_bytes', 16777216, 1024, 268435456, 'Largest accepted job result (metrics plus model artifact), in bytes of jsonb.'),
    ('heartbeat_notify_seconds', 60, 0, 86400,   'A node''s heartbeats raise node:heartbeat at most this often unless its status changes.'),
    ('lock_timeout_ms',     5000, 100, 600000,   'How long a call waits for a row another transaction holds (an owner and a node on one job, two sessions of one user) before failing with 55P03.'),
    ('max_supply', 1000000000000000, 1, 1000000000000000, 'Most tokens that may ever be issued (signup grants and mints); no balance can exceed it.'),
    ('max_stake',  1000000000000000, 1, 1000000000000000, 'Largest stake one job may carry.'),
    ('max_nodes_per_operator', 100, 1, 100000,   'Most nodes one user may register.'),
    ('progress_notify_ms',   250, 0, 60000,      'A job''s progress raises job:{id}:progress at most this often (progress is stored on every report).'),
    ('fold_interval_ms',     100, 0, 60000,      'A backend folds appended credits and statistics at most this often when a write commits (readers fold at once; 0: at every commit).'),
    ('job_events',             1, 0, 1,          'Raise modelmine_events (job progress and status changes, for gateways such as modelmine-api) when 1; 0 when no gateway listens.');
SELECT pg_catalog.pg_extension_config_dump('modelmine.settings', '');
-- Every backend caches the settings (extension/settings.c); a change tells them all to reload.
CREATE FUNCTION modelmine._settings_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'mm_settings_changed';
COMMENT ON FUNCTION modelmine._settings_changed() IS
    'Statement trigger: invalidates every backend''s cached copy of the settings.';
REVOKE ALL ON FUNCTION modelmine._settings_changed() FROM PUBLIC;
CREATE TRIGGER settings_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON modelmine.settings
    FOR EACH STATEMENT EXECUTE FUNCTION modelmine._settings_changed();
COMMENT ON TABLE modelmine.settings IS
    'Network settings with their allowed ranges (rows, not GUCs, so no client can SET them); change them with set_setting().';

CREATE TABLE modelmine.secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
-- The JWT signing key is made at install time, per database, and never leaves this table.
INSERT INTO modelmine.secrets (name, value) VALUES ('jwt_hs256', gen_random_bytes(32));
SELECT pg_catalog.pg_extension_config_dump('modelmine.secrets', '');
COMMENT ON TABLE modelmine.secrets IS
    'Secrets such as the JWT signing key; readable only by the extension owner.';

-------------------------------------------------------------------------------------------------------
-- Users and sessions.  A JWT names a session; revoking the session row kills the token at once.
-------------------------------------------------------------------------------------------------------
CREATE TABLE modelmine.users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL UNIQUE CHECK (email = pg_catalog.lower(pg_catalog.btrim(email))),
    password_hash text NOT NULL,
    role          text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('modelmine.users', '');
COMMENT ON TABLE modelmine.users IS
    'Accounts: email (trimmed, lower-cased), bcrypt password hash, role.';

CREATE TABLE modelmine.sessions (
    id         uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    user_id    bigint NOT NULL REFERENCES modelmine.users (id),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX sessions_user_idx ON modelmine.sessions (user_id);
SELECT pg_catalog.pg_extension_config_dump('modelmine.sessions', '');
COMMENT ON TABLE modelmine.sessions IS
    'Login sessions; a JWT names one, and revoking it kills the token in every connection.';

-------------------------------------------------------------------------------------------------------
-- Double-entry tokens.  Every movement is one immutable journal row.  A balance is accounts.balance
-- (folded) plus the account's rows in account_deltas (appended, not yet folded): a credit, and a debit
-- of a system account, only appends, so no movement ever waits on a row someone else can hold; only a
-- user or node paying locks its own row (extension/tokens.c).  Escrow and the network fee are striped
-- over 16 shard accounts (a job uses shard id % 16).  Fixed ids: issuance 1, held 2 and withdrawn 3
-- (withdrawals, see "Closing the token loop" below), escrow 16..31, fee 32..47; user and node accounts
-- start at 1000.
-------------------------------------------------------------------------------------------------------
CREATE TABLE modelmine.accounts (
    id       bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 1000) PRIMARY KEY,
    kind     text NOT NULL CHECK (kind IN ('issuance', 'user', 'node', 'escrow', 'fee', 'held', 'withdrawn')),
    user_id  bigint UNIQUE REFERENCES modelmine.users (id),
    node_id  bigint UNIQUE,
    shard    smallint,
    balance  bigint NOT NULL DEFAULT 0,
    CHECK (balance >= 0 OR kind = 'issuance'),
    CHECK ((kind = 'user') = (user_id IS NOT NULL)),
    CHECK ((kind = 'node') = (node_id IS NOT NULL)),
    CHECK ((kind IN ('escrow', 'fee')) = (shard IS NOT NULL))
);
INSERT INTO modelmine.accounts (id, kind) VALUES (1, 'issuance');
INSERT INTO modelmine.accounts (id, kind, shard) SELECT 16 + s, 'escrow', s FROM pg_catalog.generate_series(0, 15) s;
INSERT INTO modelmine.accounts (id, kind, shard) SELECT 32 + s, 'fee', s FROM pg_catalog.generate_series(0, 15) s;
SELECT pg_catalog.pg_extension_config_dump('modelmine.accounts', '');
COMMENT ON TABLE modelmine.accounts IS
    'Token accounts: issuance (1), held (2) and withdrawn (3), escrow (16..31) and fee (32..47) shards, one per user and per node; balance is the folded part of the balance (see account_balances).';

CREATE TABLE modelmine.journal (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    debit_account  bigint NOT NULL,  -- tokens leave this account (journal_accounts_exist checks it)
    credit_account bigint NOT NULL,  -- tokens arrive here
    amount         bigint NOT NULL CHECK (amount > 0),
    reason         text NOT NULL CHECK (reason IN ('signup_grant', 'mint', 'transfer', 'stake', 'refund',
                                                   'reward', 'fee', 'withdrawal', 'fee_distribution',
                                                   'withdrawal_hold', 'withdrawal_payout',
                                                   'withdrawal_release')),
    job_id         bigint,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK (debit_account <> credit_account)
);
CREATE INDEX journal_debit_idx ON modelmine.journal (debit_account, id);
CREATE INDEX journal_credit_idx ON modelmine.journal (credit_account, id);
CREATE INDEX journal_job_idx ON modelmine.journal (job_id) WHERE job_id IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('modelmine.journal', '');
COMMENT ON TABLE modelmine.journal IS
    'Every token movement, one immutable row each (double entry: debit account, credit account, amount, reason, job).';

CREATE TABLE modelmine.account_deltas (
    account_id bigint NOT NULL,      -- no foreign key: its check would lock the account row
    amount     bigint NOT NULL CHECK (amount <> 0)
);
CREATE INDEX account_deltas_account_idx ON modelmine.account_deltas (account_id);
SELECT pg_catalog.pg_extension_config_dump('modelmine.account_deltas', '');
COMMENT ON TABLE modelmine.account_deltas IS
    'Credits (and system-account debits) appended without locking any account row, folded into accounts.balance at commit.';

-- Every balance as a reader must see it: folded plus unfolded.  Read only by definer functions.
CREATE VIEW modelmine.account_balances AS
    SELECT a.id, a.kind, a.user_id, a.node_id, a.shard,
           a.balance + COALESCE((SELECT pg_catalog.sum(d.amount) FROM modelmine.account_deltas d
                                  WHERE d.account_id = a.id), 0)::bigint AS balance
      FROM modelmine.accounts a;
COMMENT ON VIEW modelmine.account_balances IS
    'Every account with its balance as readers see it: accounts.balance plus its unfolded account_deltas.';

-------------------------------------------------------------------------------------------------------
-- Compute nodes.  A node key is shown once at registration and stored only as its SHA-256 (it is 256
-- random bits, so a slow hash adds nothing).  Counters are kept on the node's own row at settlement so
-- node listings stay O(nodes) without any global hot row.  Uptime history: the current online stretch is
-- (online_since, last_seen); a heartbeat after a gap closes it into node_uptime.
-------------------------------------------------------------------------------------------------------
CREATE TABLE modelmine.nodes (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operator_id      bigint NOT NULL REFERENCES modelmine.users (id),
    name             text NOT NULL CHECK (pg_catalog.char_length(name) BETWEEN 1 AND 100),
    key_hash         bytea NOT NULL,
    capabilities     jsonb NOT NULL,
    requirements     text[] NOT NULL,          -- 'trainer:NAME' / 'runner:NAME', derived from capabilities
    status           text NOT NULL DEFAULT 'ONLINE' CHECK (status IN ('ONLINE', 'BUSY', 'MAINTENANCE')),
    cpu_load         real,
    memory_used_mb   integer,
    memory_total_mb  integer,
    registered_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_seen        timestamptz,
    online_since     timestamptz,
    last_notified_at timestamptz,
    jobs_completed   bigint NOT NULL DEFAULT 0,
    jobs_failed      bigint NOT NULL DEFAULT 0,
    tokens_earned    numeric NOT NULL DEFAULT 0,  -- all-time sum: may outgrow bigint
    slots            smallint NOT NULL DEFAULT 1 CHECK (slots BETWEEN 1 AND 64),  -- MM_MAX_SLOTS
    maintenance      boolean NOT NULL DEFAULT false,  -- set by the operator; outlasts heartbeats
    UNIQUE (operator_id, name)
);
SELECT pg_catalog.pg_extension_config_dump('modelmine.nodes', '');
COMMENT ON TABLE modelmine.nodes IS
    'Compute nodes: operator, key hash (SHA-256), capabilities, declared slots, reported status and load, counters.';

CREATE TABLE modelmine.node_uptime (
    node_id    bigint NOT NULL REFERENCES modelmine.nodes (id),
    started_at timestamptz NOT NULL,
    ended_at   timestamptz NOT NULL,
    PRIMARY KEY (node_id, started_at)
);
SELECT pg_catalog.pg_extension_config_dump('modelmine.node_uptime', '');
COMMENT ON TABLE modelmine.node_uptime IS
    'Closed stretches of a node''s heartbeats, for uptime over a window.';

-- Counters appended by other nodes' claims (a lost lease), folded into nodes at commit.
CREATE TABLE modelmine.node_deltas (
    node_id     bigint NOT NULL,
    jobs_failed integer NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('modelmine.node_deltas', '');
COMMENT ON TABLE modelmine.node_deltas IS
    'Lost leases counted against a node by other nodes'' claims, folded into nodes.jobs_failed at commit.';

ALTER TABLE modelmine.accounts ADD FOREIGN KEY (node_id) REFERENCES modelmine.nodes (id);

-------------------------------------------------------------------------------------------------------
-- Jobs.
-------------------------------------------------------------------------------------------------------
CREATE TYPE modelmine.job_status AS ENUM ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELED');
COMMENT ON TYPE modelmine.job_status IS
    'A job''s lifecycle: PENDING -> RUNNING -> COMPLETED | FAILED; RUNNING -> PENDING (lease given back or expired); PENDING | RUNNING -> CANCELED.';

CREATE TABLE modelmine.jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          bigint NOT NULL,  -- checked per statement: jobs_refs_insert (refs.c)
    title            text NOT NULL CHECK (pg_catalog.char_length(title) BETWEEN 1 AND 200),
    description      text CHECK (pg_catalog.char_length(description) <= 10000),
    config           jsonb NOT NULL CHECK (pg_catalog.jsonb_typeof(config) = 'object'),
    stake            bigint NOT NULL CHECK (stake > 0),
    priority         integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN -1000 AND 1000),
    status           modelmine.job_status NOT NULL DEFAULT 'PENDING',
    progress         real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    metrics          jsonb,
    result           jsonb,
    error            text,
    node_id          bigint,           -- jobs_refs_insert and jobs_refs_update
    attempts         integer NOT NULL DEFAULT 0,
    lease_seconds    integer,
    lease_expires_at timestamptz,
    -- What a node must advertise to run the job: 'runner:NAME' or 'trainer:NAME' (default logreg).
    requirement      text NOT NULL GENERATED ALWAYS AS (
                         CASE WHEN config ? 'runner' THEN 'runner:' || (config ->> 'runner')
                              ELSE 'trainer:' || COALESCE(config ->> 'trainer', 'logreg') END) STORED,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    progress_notified_at timestamptz  -- when job:{id}:progress was last raised (progress_notify_ms)
);
CREATE INDEX jobs_user_created_idx ON modelmine.jobs (user_id, created_at DESC);
-- (no index on status alone: the open jobs are read through jobs_user_open_idx, whose predicate
-- is theirs, and every job's insert and end would maintain one more index for nothing)
SELECT pg_catalog.pg_extension_config_dump('modelmine.jobs', '');
COMMENT ON TABLE modelmine.jobs IS
    'Training jobs: owner, config, stake (in escrow while open), lease, progress, result; status moves only along the lifecycle.';

-------------------------------------------------------------------------------------------------------
-- Replication and validation (issue 14).  Every lease is a replica: a row in job_replicas.  A job wants
-- replicas_wanted results from nodes of different operators (its owner's replicas, raised by a
-- spot-check or by results that found no quorum); open_replicas are still to hand out.  When the last
-- wanted result is in, the validator (extension/validate.c) picks the agreeing quorum under the job
-- row's lock, completes the job once with the canonical result and pays the quorum from the stake.
-------------------------------------------------------------------------------------------------------
INSERT INTO modelmine.settings (name, value, min_value, max_value, description) VALUES
    ('max_replicas',            3, 1, 5,         'Most replicas a job may request (config key "replicas"; each replica goes to a node of a different operator).'),
    ('max_extra_replicas',      2, 0, 5,         'Replicas added, one at a time, to a job whose results found no quorum; then it fails and is refunded.'),
    ('loss_tolerance_ppm',   1000, 0, 1000000,   'Two results agree only with the same epochs and losses differing by at most this many millionths (of the larger loss when it exceeds 1).'),
    ('accuracy_tolerance_ppm', 1000, 0, 1000000, 'Two results agree only with accuracies differing by at most this many millionths (or both null).'),
    ('spotcheck_pct',          10, 0, 100,       'Least chance, in percent, that a job claimed by a node without a long clean record is replicated to check it (more for a lower record score).'),
    ('trusted_after_results',  20, 0, 1000000,   'Validated results, with none invalid, after which a node runs single-replica jobs alone; a node has its every claim checked until it has this many per invalid result.'),
    ('scarce_delay_ms',         0, 0, 600000,    'A node sees a new job only (100 - record score)% of this long after it was submitted: better nodes are served first when work is scarce.');

ALTER TABLE modelmine.jobs
    ADD COLUMN replicas        smallint NOT NULL DEFAULT 1 CHECK (replicas BETWEEN 1 AND 5),
    ADD COLUMN replicas_wanted smallint NOT NULL DEFAULT 1 CHECK (replicas_wanted BETWEEN 1 AND 11),
    ADD COLUMN open_replicas   smallint NOT NULL DEFAULT 1 CHECK (open_replicas BETWEEN 0 AND 11),
    ADD COLUMN validation      text CHECK (validation IN ('PENDING', 'VALID', 'NO_QUORUM'));
COMMENT ON COLUMN modelmine.jobs.replicas IS
    'Replicas the owner asked for (config key "replicas", 1..max_replicas).';
COMMENT ON COLUMN modelmine.jobs.replicas_wanted IS
    'Results the validator waits for: replicas, raised by a spot-check or by results without a quorum.';
COMMENT ON COLUMN modelmine.jobs.open_replicas IS
    'Replicas still to hand out; the job is claimable while this is above 0 and it is open.';
COMMENT ON COLUMN modelmine.jobs.validation IS
    'NULL: one unchecked result; PENDING: waiting for replicas; VALID: a quorum agreed; NO_QUORUM: failed for want of one.';
-- Claims walk this (priority, then age) over jobs that still want a replica; leases, expiry and a node's
-- running jobs are found through job_replicas' indexes.
CREATE INDEX jobs_claimable_idx ON modelmine.jobs (priority DESC, id)
    WHERE open_replicas > 0 AND status IN ('PENDING', 'RUNNING');

ALTER TABLE modelmine.nodes
    ADD COLUMN results_valid   bigint NOT NULL DEFAULT 0,
    ADD COLUMN results_invalid bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN modelmine.nodes.results_valid IS
    'Results of this node a quorum of other operators'' nodes confirmed.';
COMMENT ON COLUMN modelmine.nodes.results_invalid IS
    'Results of this node the quorum rejected (never paid).';

ALTER TABLE modelmine.node_deltas
    ADD COLUMN jobs_completed  integer NOT NULL DEFAULT 0,
    ADD COLUMN tokens_earned   bigint NOT NULL DEFAULT 0,
    ADD COLUMN results_valid   integer NOT NULL DEFAULT 0,
    ADD COLUMN results_invalid integer NOT NULL DEFAULT 0;

-- A replica's operator is its node's: job_replicas_refs_insert checks the pair against the node (see
-- "What jobs and replicas name" below).
CREATE TABLE modelmine.job_replicas (
    id               bigint GENERATED ALWAYS AS IDENTITY,
    job_id           bigint NOT NULL,  -- job_replicas_refs_insert checks it and (node_id, operator_id)
    node_id          bigint NOT NULL,
    operator_id      bigint NOT NULL,
    status           text NOT NULL DEFAULT 'RUNNING'
                     CHECK (status IN ('RUNNING', 'SUBMITTED', 'EXPIRED', 'RELEASED', 'FAILED')),
    progress         real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    result           jsonb,
    lease_seconds    integer NOT NULL,
    lease_expires_at timestamptz,
    started_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    finished_at      timestamptz,
    verdict          text CHECK (verdict IN ('AGREE', 'DISSENT')),
    reward           bigint NOT NULL DEFAULT 0 CHECK (reward >= 0),
    CHECK ((status = 'SUBMITTED') = (result IS NOT NULL)),
    CHECK (verdict IS NULL OR status = 'SUBMITTED'),
    CHECK (verdict IS DISTINCT FROM 'DISSENT' OR reward = 0),
    -- keyed by job first: the key finds a job's replicas, so no second index on job_id is written at
    -- every lease and settlement
    PRIMARY KEY (job_id, id)
);
-- One live or submitted replica per operator and job: a node (and its operator) never holds two.
CREATE UNIQUE INDEX job_replicas_operator_idx ON modelmine.job_replicas (job_id, operator_id)
    WHERE status IN ('RUNNING', 'SUBMITTED');
CREATE INDEX job_replicas_lease_idx ON modelmine.job_replicas (lease_expires_at) WHERE status = 'RUNNING';
-- a node's running replicas: its free slots at every claim, the jobs its heartbeat lists
CREATE INDEX job_replicas_node_running_idx ON modelmine.job_replicas (node_id) WHERE status = 'RUNNING';
SELECT pg_catalog.pg_extension_config_dump('modelmine.job_replicas', '');
COMMENT ON TABLE modelmine.job_replicas IS
    'Leases of jobs to nodes, one row per claim: status, progress, lease, the submitted result, the validator''s verdict and what the node was paid for it.';

-- The record score and spot-check rate claims use (extension/replicas.c), for listings and tests.
CREATE FUNCTION modelmine._record_score(completed bigint, failed bigint, invalid bigint) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'mm_record_score';
COMMENT ON FUNCTION modelmine._record_score(bigint, bigint, bigint) IS
    'Record score 0..100 = round(100 * (completed + 1) / (completed + failed + 10 * invalid + 2)): an invalid result weighs ten failures.';
REVOKE ALL ON FUNCTION modelmine._record_score(bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine._record_score(bigint, bigint, bigint) TO modelmine_admin;
CREATE FUNCTION modelmine._spotcheck_pct(valid bigint, invalid bigint, score integer) RETURNS integer
    LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'mm_spotcheck_pct';
COMMENT ON FUNCTION modelmine._spotcheck_pct(bigint, bigint, integer) IS
    'Percent chance a single-replica job a node claims is spot-checked: 0 with trusted_after_results validated results and none invalid; 100 while invalid * trusted_after_results > valid (caught); else the greater of spotcheck_pct and 100 - 2 * record score.';
REVOKE ALL ON FUNCTION modelmine._spotcheck_pct(bigint, bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine._spotcheck_pct(bigint, bigint, integer) TO modelmine_admin;

-------------------------------------------------------------------------------------------------------
-- Triggers (C): the journal is append-only; job status moves only along the lifecycle; new pending work
-- wakes workers with one NOTIFY per statement, not per row.
-------------------------------------------------------------------------------------------------------
CREATE FUNCTION modelmine._refuse_change() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'mm_refuse_change';
COMMENT ON FUNCTION modelmine._refuse_change() IS
    'Trigger: refuses UPDATE, DELETE and TRUNCATE on append-only tables (journal, ledger), and with arguments (message, hint) whatever change it is bound to (removing accounts, users and jobs; changing the ids that jobs, replicas and nodes name).';
REVOKE ALL ON FUNCTION modelmine._refuse_change() FROM PUBLIC;

CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE ON modelmine.journal
    FOR EACH ROW EXECUTE FUNCTION modelmine._refuse_change();
CREATE TRIGGER journal_no_truncate BEFORE TRUNCATE ON modelmine.journal
    FOR EACH STATEMENT EXECUTE FUNCTION modelmine._refuse_change();

-- The journal names accounts by id, and is checked once per statement, not by foreign keys: a foreign
-- key share-locks each named account row, and every settlement names escrow and fee shards that all
-- concurrent settlements share (a multixact per batch: the keys cost 5 to 12% of the throughput of a
-- drain of noop jobs).  Accounts are never removed, so a check that they exist when a row is written
-- holds for good.
CREATE TRIGGER accounts_never_removed BEFORE DELETE ON modelmine.accounts
    FOR EACH ROW EXECUTE FUNCTION modelmine._refuse_change('accounts are never removed',
        'The journal names accounts by id: an account no longer used keeps its row and its history.');
CREATE TRIGGER accounts_never_truncated BEFORE TRUNCATE ON modelmine.accounts
    FOR EACH STATEMENT EXECUTE FUNCTION modelmine._refuse_change('accounts are never removed',
        'The journal names accounts by id: an account no longer used keeps its row and its history.');

CREATE FUNCTION modelmine._journal_accounts_exist() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    missing bigint;
BEGIN
    SELECT x.account INTO missing
      FROM (SELECT debit_account AS account FROM new_journal
            UNION SELECT credit_account FROM new_journal) x
     WHERE NOT EXISTS (SELECT 1 FROM modelmine.accounts a WHERE a.id = x.account)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
            MESSAGE = format('journal row names account %s, which does not exist', missing),
            DETAIL = 'Every debit_account and credit_account must be a row of modelmine.accounts.',
            HINT = 'Journal rows are written by the extension''s functions; report this as a bug.';
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION modelmine._journal_accounts_exist() IS
    'Statement trigger: refuses journal rows naming an account that does not exist (the foreign key, checked once per statement without locking the accounts).';
REVOKE ALL ON FUNCTION modelmine._journal_accounts_exist() FROM PUBLIC;
CREATE TRIGGER journal_accounts_exist AFTER INSERT ON modelmine.journal
    REFERENCING NEW TABLE AS new_journal
    FOR EACH STATEMENT EXECUTE FUNCTION modelmine._journal_accounts_exist();

CREATE FUNCTION modelmine._job_transition_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'mm_job_transition_guard';
COMMENT ON FUNCTION modelmine._job_transition_guard() IS
    'Trigger: allows only PENDING->RUNNING->COMPLETED|FAILED, RUNNING->PENDING (lease expiry) and PENDING|RUNNING->CANCELED; keeps updated_at.';
REVOKE ALL ON FUNCTION modelmine._job_transition_guard() FROM PUBLIC;

CREATE TRIGGER jobs_transition_guard BEFORE UPDATE ON modelmine.jobs
    FOR EACH ROW EXECUTE FUNCTION modelmine._job_transition_guard();

CREATE FUNCTION modelmine._notify_work() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'mm_notify_work';
COMMENT ON FUNCTION modelmine._notify_work() IS
    'Statement trigger: one NOTIFY modelmine_work per statement that adds pending jobs.';
REVOKE ALL ON FUNCTION modelmine._notify_work() FROM PUBLIC;

CREATE TRIGGER jobs_notify_work AFTER INSERT ON modelmine.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION modelmine._notify_work();

-- A job's status changes (job:{id}:status and job:{id}:progress on modelmine_events for gateways; the
-- ends on modelmine_jobs_ended) are raised by the statistics statement trigger (_job_stats_trigger
-- below, extension/statusnotify.c): a few NOTIFYs per statement in batches, not one per job.

-------------------------------------------------------------------------------------------------------
-- Identity (C, extension/auth.c).
-------------------------------------------------------------------------------------------------------
CREATE FUNCTION modelmine.signup(email text, password text) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_signup';
COMMENT ON FUNCTION modelmine.signup(text, text) IS
    'Creates an account (email trimmed and lower-cased, password of 8 to 72 bytes stored only as a bcrypt hash), grants the signup tokens and returns the user id.';
REVOKE ALL ON FUNCTION modelmine.signup(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.signup(text, text) TO modelmine_anon, modelmine_user;

CREATE FUNCTION modelmine.login(email text, password text) RETURNS text
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_login';
COMMENT ON FUNCTION modelmine.login(text, text) IS
    'Checks the credentials (same bcrypt cost for an unknown email) and returns an HS256 JWT for a new session.';
REVOKE ALL ON FUNCTION modelmine.login(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.login(text, text) TO modelmine_anon, modelmine_user;

CREATE FUNCTION modelmine.authenticate(token text) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_authenticate';
COMMENT ON FUNCTION modelmine.authenticate(text) IS
    'Verifies a token and binds this database session to its user until logout, deauthenticate or disconnect; returns the user id.';
REVOKE ALL ON FUNCTION modelmine.authenticate(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.authenticate(text) TO modelmine_user;

CREATE FUNCTION modelmine.authenticate_local(token text) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_authenticate_local';
COMMENT ON FUNCTION modelmine.authenticate_local(text) IS
    'Like authenticate, but the binding ends with the current transaction: use it behind a transaction-pooling connection pooler.';
REVOKE ALL ON FUNCTION modelmine.authenticate_local(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.authenticate_local(text) TO modelmine_user;

CREATE FUNCTION modelmine.deauthenticate() RETURNS void
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_deauthenticate';
COMMENT ON FUNCTION modelmine.deauthenticate() IS
    'Drops this database session''s binding to a user without revoking the token.';
REVOKE ALL ON FUNCTION modelmine.deauthenticate() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.deauthenticate() TO modelmine_user;

CREATE FUNCTION modelmine.logout() RETURNS void
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_logout';
COMMENT ON FUNCTION modelmine.logout() IS
    'Revokes the current session: its token is refused from now on, in every database session.';
REVOKE ALL ON FUNCTION modelmine.logout() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.logout() TO modelmine_user;

CREATE FUNCTION modelmine.current_user_id() RETURNS bigint
    LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_current_user_id';
COMMENT ON FUNCTION modelmine.current_user_id() IS
    'The signed-in user: from authenticate/authenticate_local, or from a verified Bearer token in request.headers (PostgREST). Raises 28000 when there is none.';
REVOKE ALL ON FUNCTION modelmine.current_user_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.current_user_id() TO modelmine_user;

CREATE FUNCTION modelmine.current_session_id() RETURNS uuid
    LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_current_session_id';
COMMENT ON FUNCTION modelmine.current_session_id() IS
    'The session id of the signed-in user (see current_user_id).';
REVOKE ALL ON FUNCTION modelmine.current_session_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.current_session_id() TO modelmine_user;

CREATE FUNCTION modelmine.whoami(OUT user_id bigint, OUT email text, OUT role text,
                                 OUT session_id uuid, OUT session_expires_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT u.id, u.email, u.role, s.id, s.expires_at
          FROM modelmine.sessions s JOIN modelmine.users u ON u.id = s.user_id
         WHERE s.id = modelmine.current_session_id()
    $$;
COMMENT ON FUNCTION modelmine.whoami() IS 'The signed-in user''s id, email, role and session.';
REVOKE ALL ON FUNCTION modelmine.whoami() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.whoami() TO modelmine_user;

-------------------------------------------------------------------------------------------------------
-- Tokens (C, extension/tokens.c).
-------------------------------------------------------------------------------------------------------
CREATE FUNCTION modelmine.balance() RETURNS bigint
    LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_balance';
COMMENT ON FUNCTION modelmine.balance() IS 'The signed-in user''s spendable token balance (stakes in escrow excluded).';
REVOKE ALL ON FUNCTION modelmine.balance() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.balance() TO modelmine_user;

CREATE FUNCTION modelmine.transfer(to_email text, amount bigint) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_transfer';
COMMENT ON FUNCTION modelmine.transfer(text, bigint) IS
    'Moves tokens from the signed-in user to another user; returns the journal entry id.';
REVOKE ALL ON FUNCTION modelmine.transfer(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.transfer(text, bigint) TO modelmine_user;

CREATE FUNCTION modelmine.mint(email text, amount bigint) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_mint';
COMMENT ON FUNCTION modelmine.mint(text, bigint) IS
    'Admin: issues new tokens to a user (debits the issuance account), within the max_supply setting; returns the journal entry id.';
REVOKE ALL ON FUNCTION modelmine.mint(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.mint(text, bigint) TO modelmine_admin;

CREATE FUNCTION modelmine.my_transactions(max_rows integer DEFAULT 20)
    RETURNS TABLE (id bigint, created_at timestamptz, amount bigint, direction text, reason text,
                   job_id bigint, counterparty text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF max_rows IS NULL OR max_rows NOT BETWEEN 0 AND 1000 THEN
        RAISE EXCEPTION 'invalid max_rows' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(max_rows::text, 'NULL')),
            HINT = 'Pass a number of rows from 0 to 1000.';
    END IF;
    RETURN QUERY
        WITH me AS (SELECT a.id FROM modelmine.accounts a WHERE a.user_id = modelmine.current_user_id())
        SELECT j.id, j.created_at,
               CASE WHEN j.credit_account = me.id THEN j.amount ELSE -j.amount END,
               CASE WHEN j.credit_account = me.id THEN 'in' ELSE 'out' END,
               j.reason, j.job_id,
               COALESCE(u.email, o.kind)
          FROM me
          -- two index scans (debit side, credit side), not one OR over the whole journal
          CROSS JOIN LATERAL ((SELECT * FROM modelmine.journal d WHERE d.debit_account = me.id
                                ORDER BY d.id DESC LIMIT max_rows)
                              UNION ALL
                              (SELECT * FROM modelmine.journal c WHERE c.credit_account = me.id
                                ORDER BY c.id DESC LIMIT max_rows)) j
          JOIN modelmine.accounts o ON o.id = CASE WHEN j.credit_account = me.id THEN j.debit_account
                                                   ELSE j.credit_account END
          LEFT JOIN modelmine.users u ON u.id = o.user_id
         ORDER BY j.id DESC
         LIMIT max_rows;
END
$$;
COMMENT ON FUNCTION modelmine.my_transactions(integer) IS
    'The signed-in user''s latest journal entries (newest first, at most 1000): signed amount, reason, job and counterparty.';
REVOKE ALL ON FUNCTION modelmine.my_transactions(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.my_transactions(integer) TO modelmine_user;

-------------------------------------------------------------------------------------------------------
-- Jobs (C, extension/jobs.c).
-------------------------------------------------------------------------------------------------------
CREATE FUNCTION modelmine.submit_job(title text, config jsonb, description text DEFAULT NULL,
                                     stake bigint DEFAULT NULL, priority integer DEFAULT 0,
                                     start_by timestamptz DEFAULT NULL, finish_by timestamptz DEFAULT NULL,
                                     requirements jsonb DEFAULT NULL) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_submit_job';
COMMENT ON FUNCTION modelmine.submit_job(text, jsonb, text, bigint, integer, timestamptz, timestamptz, jsonb) IS
    'Submits a training job: title 1-200 characters, config a JSON object, stake (default: setting default_stake; at most max_stake) moved to escrow in the same transaction, priority -1000..1000 (higher first), optional deadlines start_by and finish_by (in the future, finish_by after start_by), optional requirements {"memory_mb", "cores", "labels": [...]} some registered node must offer (MM003 otherwise). Returns the job id.';
REVOKE ALL ON FUNCTION modelmine.submit_job(text, jsonb, text, bigint, integer, timestamptz, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.submit_job(text, jsonb, text, bigint, integer, timestamptz, timestamptz, jsonb) TO modelmine_user;

CREATE FUNCTION modelmine.submit_jobs(jobs jsonb) RETURNS TABLE (job_id bigint)
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_submit_jobs';
COMMENT ON FUNCTION modelmine.submit_jobs(jsonb) IS
    'Submits 1..1000 jobs at once ([{"title": ..., "config": {...}, "description": ..., "stake": ..., "priority": ..., "start_by": ..., "finish_by": ..., "requirements": {...}}, ...]), each checked as submit_job checks it; all or nothing: the first refusal names the element (jobs[i]) and nothing is staked. One debit of the total, a stake journal row per job. Returns the ids in the order given.';
REVOKE ALL ON FUNCTION modelmine.submit_jobs(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.submit_jobs(jsonb) TO modelmine_user;

CREATE FUNCTION modelmine.config_schema() RETURNS jsonb
    LANGUAGE c IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_config_schema_sql';
COMMENT ON FUNCTION modelmine.config_schema() IS
    'The job config schema submit_job checks built-in trainers'' configs against (the workers'' own validator): {"version", "keys": {key: {"accepts", "trainers"}}, "dataset_keys": {key: {"accepts"}}}. A key that is unknown or does not apply to the trainer is refused at submit.';
REVOKE ALL ON FUNCTION modelmine.config_schema() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.config_schema() TO modelmine_anon, modelmine_user, modelmine_node;

CREATE FUNCTION modelmine.cancel_job(job_id bigint) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_cancel_job';
COMMENT ON FUNCTION modelmine.cancel_job(bigint) IS
    'Cancels one of the signed-in user''s PENDING or RUNNING jobs and refunds its whole stake; returns the refund.';
REVOKE ALL ON FUNCTION modelmine.cancel_job(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.cancel_job(bigint) TO modelmine_user;

-- The row shape job listings return (no config, result or error: job() has those).
CREATE TYPE modelmine.job_summary AS (
    id bigint, title text, status modelmine.job_status, stake bigint, priority integer, progress real,
    attempts integer, node_id bigint, created_at timestamptz, updated_at timestamptz, finished_at timestamptz,
    replicas smallint, validation text
);
COMMENT ON TYPE modelmine.job_summary IS
    'A row of a job listing (my_jobs, all_jobs): no config, result or error.';

CREATE FUNCTION modelmine._list_jobs(owner bigint, status text, sort text, descending boolean,
                                     max_rows integer, skip integer)
    RETURNS SETOF modelmine.job_summary
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    want modelmine.job_status;
BEGIN
    -- Validate before touching rows, so bad input is refused even when there is nothing to list.
    IF status IS NOT NULL THEN
        IF pg_catalog.upper(status) NOT IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELED') THEN
            RAISE EXCEPTION 'invalid status filter' USING ERRCODE = 'invalid_parameter_value',
                DETAIL = pg_catalog.format('Got %L.', status),
                HINT = 'Pass one of PENDING, RUNNING, COMPLETED, FAILED, CANCELED, or NULL for all jobs.';
        END IF;
        want := pg_catalog.upper(status)::modelmine.job_status;
    END IF;
    IF sort IS NULL OR pg_catalog.lower(sort) NOT IN ('created', 'stake', 'status') THEN
        RAISE EXCEPTION 'invalid sort key' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %L.', sort), HINT = 'Pass one of created, stake, status.';
    END IF;
    sort := pg_catalog.lower(sort);
    IF max_rows IS NULL OR max_rows NOT BETWEEN 0 AND 10000 THEN
        RAISE EXCEPTION 'invalid limit' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(max_rows::text, 'NULL')),
            HINT = 'Pass a limit from 0 to 10000.';
    END IF;
    IF skip IS NULL OR skip < 0 THEN
        RAISE EXCEPTION 'invalid offset' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(skip::text, 'NULL')),
            HINT = 'Pass an offset of 0 or more.';
    END IF;
    descending := COALESCE(descending, true);
    RETURN QUERY
        SELECT j.id, j.title, j.status, j.stake, j.priority, j.progress, j.attempts, j.node_id,
               j.created_at, j.updated_at, j.finished_at, j.replicas, j.validation
          FROM modelmine.jobs j
         WHERE (owner IS NULL OR j.user_id = owner)
           AND (want IS NULL OR j.status = want)
         ORDER BY
           CASE WHEN NOT descending AND sort = 'stake' THEN j.stake END ASC,
           CASE WHEN descending AND sort = 'stake' THEN j.stake END DESC,
           CASE WHEN NOT descending AND sort = 'status' THEN j.status END ASC,
           CASE WHEN descending AND sort = 'status' THEN j.status END DESC,
           CASE WHEN NOT descending THEN j.id END ASC,
           CASE WHEN descending THEN j.id END DESC
         LIMIT max_rows OFFSET skip;
END
$$;
COMMENT ON FUNCTION modelmine._list_jobs(bigint, text, text, boolean, integer, integer) IS
    'Shared body of my_jobs and all_jobs: validates the filters (22023 with a hint), then filters by owner (NULL: everyone) and status, sorts (ties and "created" by submission order) and pages.';
REVOKE ALL ON FUNCTION modelmine._list_jobs(bigint, text, text, boolean, integer, integer) FROM PUBLIC;

CREATE FUNCTION modelmine.my_jobs(status text DEFAULT NULL, sort text DEFAULT 'created',
                                  descending boolean DEFAULT true, max_rows integer DEFAULT 50,
                                  skip integer DEFAULT 0)
    RETURNS SETOF modelmine.job_summary
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT * FROM modelmine._list_jobs(modelmine.current_user_id(), $1, $2, $3, $4, $5) $$;
COMMENT ON FUNCTION modelmine.my_jobs(text, text, boolean, integer, integer) IS
    'The signed-in user''s jobs. status: PENDING|RUNNING|COMPLETED|FAILED|CANCELED or NULL for all; sort: created|stake|status; max_rows 0..10000, skip rows first.';
REVOKE ALL ON FUNCTION modelmine.my_jobs(text, text, boolean, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.my_jobs(text, text, boolean, integer, integer) TO modelmine_user;

CREATE FUNCTION modelmine.all_jobs(status text DEFAULT NULL, sort text DEFAULT 'created',
                                   descending boolean DEFAULT true, max_rows integer DEFAULT 50,
                                   skip integer DEFAULT 0)
    RETURNS SETOF modelmine.job_summary
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT * FROM modelmine._list_jobs(NULL, $1, $2, $3, $4, $5) $$;
COMMENT ON FUNCTION modelmine.all_jobs(text, text, boolean, integer, integer) IS
    'Admin: every user''s jobs, with the same filters as my_jobs.';
REVOKE ALL ON FUNCTION modelmine.all_jobs(text, text, boolean, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.all_jobs(text, text, boolean, integer, integer) TO modelmine_admin;

-- Full job details.
CREATE TYPE modelmine.job_detail AS (
    id bigint, owner_email text, title text, description text, config jsonb, status modelmine.job_status,
    stake bigint, priority integer, progress real, metrics jsonb, result jsonb, error text, node_id bigint,
    attempts integer, lease_expires_at timestamptz, created_at timestamptz, updated_at timestamptz,
    started_at timestamptz, finished_at timestamptz, replicas smallint, replicas_wanted smallint,
    validation text, replica_results jsonb
);
COMMENT ON TYPE modelmine.job_detail IS
    'One job in full (job, admin_job).';

CREATE FUNCTION modelmine._job_detail(job_id bigint, owner bigint) RETURNS SETOF modelmine.job_detail
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT j.id, u.email, j.title, j.description, j.config, j.status, j.stake, j.priority, j.progress,
               j.metrics, j.result, j.error, j.node_id, j.attempts, j.lease_expires_at, j.created_at,
               j.updated_at, j.started_at, j.finished_at, j.replicas, j.replicas_wanted, j.validation,
               (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                           'node_id', r.node_id, 'status', r.status, 'verdict', r.verdict, 'reward', r.reward,
                           'progress', r.progress, 'epochs', r.result -> 'epochs', 'loss', r.result -> 'loss',
                           'accuracy', r.result -> 'accuracy', 'started_at', r.started_at,
                           'finished_at', r.finished_at) ORDER BY r.id)
                  FROM modelmine.job_replicas r WHERE r.job_id = j.id)
          FROM modelmine.jobs j JOIN modelmine.users u ON u.id = j.user_id
         WHERE j.id = $1 AND ($2 IS NULL OR j.user_id = $2)
    $$;
COMMENT ON FUNCTION modelmine._job_detail(bigint, bigint) IS
    'Shared body of job and admin_job: one job, restricted to an owner unless owner is NULL.';
REVOKE ALL ON FUNCTION modelmine._job_detail(bigint, bigint) FROM PUBLIC;

CREATE FUNCTION modelmine.admin_job(job_id bigint) RETURNS SETOF modelmine.job_detail
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT * FROM modelmine._job_detail($1, NULL) $$;
COMMENT ON FUNCTION modelmine.admin_job(bigint) IS 'Admin: any job''s full details.';
REVOKE ALL ON FUNCTION modelmine.admin_job(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.admin_job(bigint) TO modelmine_admin;

CREATE FUNCTION modelmine._own_job(job_id bigint) RETURNS SETOF modelmine.job_detail
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT * FROM modelmine._job_detail($1, modelmine.current_user_id()) $$;
COMMENT ON FUNCTION modelmine._own_job(bigint) IS 'One of the signed-in user''s jobs (body of job for non-admins).';
REVOKE ALL ON FUNCTION modelmine._own_job(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine._own_job(bigint) TO modelmine_user;

-- SECURITY INVOKER on purpose: current_user here is the caller's role, so admin rights come from role
-- membership (which no client can forge) and everyone else gets only their own jobs.
CREATE FUNCTION modelmine.job(job_id bigint) RETURNS modelmine.job_detail
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    j modelmine.job_detail;
BEGIN
    IF job_id IS NULL THEN
        RAISE EXCEPTION 'job_id is required' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass the id returned by modelmine.submit_job.';
    END IF;
    IF pg_catalog.pg_has_role(current_user, 'modelmine_admin', 'USAGE') THEN
        SELECT * INTO j FROM modelmine.admin_job(job_id);
    ELSE
        SELECT * INTO j FROM modelmine._own_job(job_id);
    END IF;
    IF j.id IS NULL THEN
        RAISE EXCEPTION 'job % not found', job_id USING ERRCODE = 'no_data_found',
            DETAIL = CASE WHEN pg_catalog.pg_has_role(current_user, 'modelmine_admin', 'USAGE')
                          THEN 'There is no job with this id.' ELSE 'There is no job with this id that you own.' END,
            HINT = 'List your jobs with modelmine.my_jobs().';
    END IF;
    RETURN j;
END
$$;
COMMENT ON FUNCTION modelmine.job(bigint) IS
    'One job with config, result and error: the owner''s, or any job for modelmine_admin. P0002 when not found or not yours.';
REVOKE ALL ON FUNCTION modelmine.job(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.job(bigint) TO modelmine_user;

-------------------------------------------------------------------------------------------------------
-- Nodes (C, extension/nodes.c) and the lease-based work protocol (C, extension/lease.c).
-- NOTIFY channels: modelmine_work (pending work appeared), node:registered, node:heartbeat (on status
-- change, else at most once per heartbeat_notify_seconds per node), job:{id}:progress.
-------------------------------------------------------------------------------------------------------
CREATE FUNCTION modelmine.register_node(name text, capabilities jsonb DEFAULT '{}',
                                        OUT node_id bigint, OUT node_key text)
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_register_node';
COMMENT ON FUNCTION modelmine.register_node(text, jsonb) IS
    'Registers a compute node operated by the signed-in user (at most max_nodes_per_operator; the name printable, no control or bidirectional characters). capabilities: {"trainers": [...], "runners": [...], "slots": 1..64}, at most 4 kB. Returns the node id and its key, shown only this once (only a hash is stored).';
REVOKE ALL ON FUNCTION modelmine.register_node(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.register_node(text, jsonb) TO modelmine_user;

CREATE FUNCTION modelmine.authenticate_node(node_key text) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_authenticate_node';
COMMENT ON FUNCTION modelmine.authenticate_node(text) IS
    'Verifies a node key and binds this database session to the node (until disconnect, RESET ALL or another authenticate); returns the node id.';
REVOKE ALL ON FUNCTION modelmine.authenticate_node(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.authenticate_node(text) TO modelmine_node;

CREATE FUNCTION modelmine.set_capabilities(capabilities jsonb) RETURNS void
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_set_capabilities';
COMMENT ON FUNCTION modelmine.set_capabilities(jsonb) IS
    'Node: replaces the trainers, runners and slots this node advertises (the worker calls it at start).';
REVOKE ALL ON FUNCTION modelmine.set_capabilities(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.set_capabilities(jsonb) TO modelmine_node;

CREATE FUNCTION modelmine.heartbeat(cpu_load real, memory_used_mb integer, memory_total_mb integer,
                                    status text DEFAULT 'ONLINE') RETURNS bigint[]
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_heartbeat';
COMMENT ON FUNCTION modelmine.heartbeat(real, integer, integer, text) IS
    'Node: reports load and memory (status ONLINE, BUSY or MAINTENANCE; an operator''s maintenance wins) and returns the ids of the jobs it holds; a job missing from the list was canceled or lost. It does not extend leases: only report_progress does.';
REVOKE ALL ON FUNCTION modelmine.heartbeat(real, integer, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.heartbeat(real, integer, integer, text) TO modelmine_node;

-- enable_bitmapscan off, for this call only: with the statistics of a small queue, the planner trades
-- the ordered walk of jobs_claimable_idx (stopping at LIMIT) for a bitmap scan that sorts every
-- claimable job at every claim (13 ms a claim at 4,000 queued jobs instead of under 1 ms).
CREATE FUNCTION modelmine.claim_jobs(max_jobs integer DEFAULT 1, lease_seconds integer DEFAULT 30)
    RETURNS TABLE (job_id bigint, title text, config jsonb, lease_expires_at timestamptz, attempt integer)
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_bitmapscan = off
    AS 'MODULE_PATHNAME', 'mm_claim_jobs';
COMMENT ON FUNCTION modelmine.claim_jobs(integer, integer) IS
    'Node: first re-queues (or fails and refunds, after max_attempts) jobs whose lease expired and ends jobs past their deadlines (expire_jobs), then leases up to max_jobs (1..100) pending jobs this node can run and has the memory, cores and labels free for: users by fair share (least decayed usage per share first), each user''s jobs by priority then age; for lease_seconds (5..3600), never more than its free slots. A node in MAINTENANCE gets nothing; an OFFLINE node (no recent heartbeat) is refused. Never gives one job to two nodes.';
REVOKE ALL ON FUNCTION modelmine.claim_jobs(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.claim_jobs(integer, integer) TO modelmine_node;

CREATE FUNCTION modelmine.report_progress(job_id bigint, progress real, metrics jsonb DEFAULT NULL)
    RETURNS timestamptz
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_report_progress';
COMMENT ON FUNCTION modelmine.report_progress(bigint, real, jsonb) IS
    'Node holding the lease: records progress (0..100, never backwards) and metrics, extends the lease (the only thing that does), NOTIFYs job:{id}:progress at most once per progress_notify_ms; returns the new lease expiry.';
REVOKE ALL ON FUNCTION modelmine.report_progress(bigint, real, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.report_progress(bigint, real, jsonb) TO modelmine_node;

CREATE FUNCTION modelmine.complete_job(job_id bigint, result jsonb) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_complete_job';
COMMENT ON FUNCTION modelmine.complete_job(bigint, jsonb) IS
    'Node holding the lease: stores the result (accuracy 0..1 or null, loss, epochs, optional model) and settles once: floor(stake * reward_pct / 100) to the node, the rest to the network. Returns the node reward.';
REVOKE ALL ON FUNCTION modelmine.complete_job(bigint, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.complete_job(bigint, jsonb) TO modelmine_node;

CREATE FUNCTION modelmine.complete_jobs(completions jsonb)
    RETURNS TABLE (job_id bigint, reward bigint, sqlstate text, error text, hint text)
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_complete_jobs';
COMMENT ON FUNCTION modelmine.complete_jobs(jsonb) IS
    'Node holding the leases: complete_job for each of 1..32 jobs ([{"job_id": 42, "result": {...}}, ...]) in one transaction, each in its own subtransaction. One row per job, in order: the reward, or the SQLSTATE, message and hint complete_job would have raised for it (that job alone is left as it was).';
REVOKE ALL ON FUNCTION modelmine.complete_jobs(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.complete_jobs(jsonb) TO modelmine_node;

CREATE FUNCTION modelmine.fail_job(job_id bigint, error text) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_fail_job';
COMMENT ON FUNCTION modelmine.fail_job(bigint, text) IS
    'Node holding the lease: marks the job FAILED with the error and refunds the whole stake to its owner; returns the refund.';
REVOKE ALL ON FUNCTION modelmine.fail_job(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.fail_job(bigint, text) TO modelmine_node;

CREATE FUNCTION modelmine.release_job(job_id bigint) RETURNS void
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_release_job';
COMMENT ON FUNCTION modelmine.release_job(bigint) IS
    'Node holding the lease: gives a job back to the queue (a shutting-down worker); the attempt still counts, and a job released on its last attempt (max_attempts) fails and is refunded.';
REVOKE ALL ON FUNCTION modelmine.release_job(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.release_job(bigint) TO modelmine_node;

CREATE FUNCTION modelmine.withdraw_node_earnings(node_id bigint, amount bigint DEFAULT NULL) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_withdraw_node_earnings';
COMMENT ON FUNCTION modelmine.withdraw_node_earnings(bigint, bigint) IS
    'Operator: moves a node''s earnings (all of them when amount is NULL) to the signed-in operator''s balance; returns the amount moved.';
REVOKE ALL ON FUNCTION modelmine.withdraw_node_earnings(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.withdraw_node_earnings(bigint, bigint) TO modelmine_user;

CREATE FUNCTION modelmine.set_node_maintenance(node_id bigint, maintenance boolean DEFAULT true) RETURNS text
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_set_node_maintenance';
COMMENT ON FUNCTION modelmine.set_node_maintenance(bigint, boolean) IS
    'Operator: puts one of your nodes in MAINTENANCE (claim_jobs gives it nothing, whatever its heartbeats report) or takes it out; returns the status it now shows.';
REVOKE ALL ON FUNCTION modelmine.set_node_maintenance(bigint, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.set_node_maintenance(bigint, boolean) TO modelmine_user;

CREATE FUNCTION modelmine.job_result(job_id bigint) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    j record;
BEGIN
    IF job_id IS NULL THEN
        RAISE EXCEPTION 'job_id is required' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass the id returned by modelmine.submit_job.';
    END IF;
    -- user_id + 0: keep a plan cached on a nearly empty table from reading all of a user's jobs
    SELECT jobs.status, jobs.result INTO j FROM modelmine.jobs
     WHERE jobs.id = job_result.job_id AND jobs.user_id + 0 = modelmine.current_user_id();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % not found', job_id USING ERRCODE = 'no_data_found',
            DETAIL = 'There is no job with this id that you own.', HINT = 'List your jobs with modelmine.my_jobs().';
    END IF;
    IF j.status <> 'COMPLETED' THEN
        RAISE EXCEPTION 'job % has no result', job_id USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = pg_catalog.format('It is %s.', j.status), HINT = 'Results exist once a job is COMPLETED.';
    END IF;
    RETURN j.result;
END
$$;
COMMENT ON FUNCTION modelmine.job_result(bigint) IS
    'Owner: the result of a COMPLETED job: accuracy, loss, epochs, metrics and the model artifact (weights as JSON).';
REVOKE ALL ON FUNCTION modelmine.job_result(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.job_result(bigint) TO modelmine_user;

CREATE FUNCTION modelmine._node_status(status text, last_seen timestamptz) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT CASE WHEN last_seen IS NULL OR last_seen < pg_catalog.now() - pg_catalog.make_interval(
                             secs => (SELECT value FROM modelmine.settings WHERE name = 'offline_after_seconds'))
                    THEN 'OFFLINE' ELSE status END
    $$;
COMMENT ON FUNCTION modelmine._node_status(text, timestamptz) IS
    'A node''s effective status: OFFLINE when its last heartbeat is older than offline_after_seconds, else what it reported.';
REVOKE ALL ON FUNCTION modelmine._node_status(text, timestamptz) FROM PUBLIC;

CREATE FUNCTION modelmine.my_nodes()
    RETURNS TABLE (id bigint, name text, status text, capabilities jsonb, last_seen timestamptz,
                   jobs_completed bigint, jobs_failed bigint, tokens_earned numeric, balance bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT n.id, n.name, modelmine._node_status(n.status, n.last_seen), n.capabilities, n.last_seen,
               n.jobs_completed, n.jobs_failed, n.tokens_earned, a.balance
          FROM modelmine.nodes n JOIN modelmine.account_balances a ON a.node_id = n.id
         WHERE n.operator_id = modelmine.current_user_id()
         ORDER BY n.id
    $$;
COMMENT ON FUNCTION modelmine.my_nodes() IS
    'Nodes the signed-in user operates: status (OFFLINE derived), capabilities, counters, tokens earned and the unwithdrawn balance.';
REVOKE ALL ON FUNCTION modelmine.my_nodes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.my_nodes() TO modelmine_user;

-------------------------------------------------------------------------------------------------------
-- Ledger (C, extension/ledger.c; encoding in docs/LEDGER.md).  One block per completed job, SHA-256
-- hash-chained from a genesis block made at install.  complete_job queues the entry; sealing appends
-- blocks under a try-lock (see ledger.c) so completions never wait on each other.  Blocks are readable
-- by every ModelMine role, so anyone can verify them without trusting the extension's functions.
-------------------------------------------------------------------------------------------------------
CREATE TABLE modelmine.ledger (
    height       bigint PRIMARY KEY CHECK (height >= 0),
    prev_hash    bytea NOT NULL UNIQUE,      -- UNIQUE: two blocks can never extend the same block
    hash         bytea NOT NULL UNIQUE,
    job_id       bigint UNIQUE,
    user_id      bigint,
    node_id      bigint,
    stake        bigint,
    reward       bigint,
    fee          bigint,
    accuracy     text,                       -- decimal text exactly as the result reported it
    loss         text,
    epochs       bigint,
    completed_at timestamptz,
    created_at   timestamptz NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('modelmine.ledger', '');
GRANT SELECT ON modelmine.ledger TO modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;
COMMENT ON TABLE modelmine.ledger IS
    'The hash-chained ledger: one block per completed job, append-only for every role and readable by all; hash = SHA-256(prev_hash hex, block data, created_at) as docs/LEDGER.md specifies byte for byte, so anyone can verify it without trusting this extension.';

CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON modelmine.ledger
    FOR EACH ROW EXECUTE FUNCTION modelmine._refuse_change();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON modelmine.ledger
    FOR EACH STATEMENT EXECUTE FUNCTION modelmine._refuse_change();

CREATE TABLE modelmine.ledger_queue (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       bigint NOT NULL UNIQUE,
    user_id      bigint NOT NULL,
    node_id      bigint NOT NULL,
    stake        bigint NOT NULL,
    reward       bigint NOT NULL,
    fee          bigint NOT NULL,
    accuracy     text,
    loss         text,
    epochs       bigint,
    completed_at timestamptz NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('modelmine.ledger_queue', '');
COMMENT ON TABLE modelmine.ledger_queue IS
    'Completions waiting to be sealed into ledger blocks (at the next commit that seals).';

CREATE FUNCTION modelmine._ledger_genesis() RETURNS void
    LANGUAGE c AS 'MODULE_PATHNAME', 'mm_ledger_genesis';
COMMENT ON FUNCTION modelmine._ledger_genesis() IS 'Install time: appends the genesis block (height 0).';
REVOKE ALL ON FUNCTION modelmine._ledger_genesis() FROM PUBLIC;
SELECT modelmine._ledger_genesis();

CREATE FUNCTION modelmine.seal_ledger(max_blocks bigint DEFAULT 100000) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_seal_ledger';
COMMENT ON FUNCTION modelmine.seal_ledger(bigint) IS
    'Admin: seals queued completions into blocks now, holding the seal lock until this transaction ends (completions, claims and ledger reads seal at their commit anyway); returns the number of blocks appended, 0 when another transaction is sealing.';
REVOKE ALL ON FUNCTION modelmine.seal_ledger(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.seal_ledger(bigint) TO modelmine_admin;

CREATE FUNCTION modelmine.ledger(from_height bigint DEFAULT 0, max_rows integer DEFAULT 100)
    RETURNS TABLE (height bigint, hash text, prev_hash text, job_id bigint, user_id bigint, node_id bigint,
                   stake bigint, reward bigint, fee bigint, accuracy text, loss text, epochs bigint,
                   completed_at timestamptz, created_at timestamptz)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF from_height IS NULL OR from_height < 0 THEN
        RAISE EXCEPTION 'invalid from_height' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(from_height::text, 'NULL')), HINT = 'Pass a height of 0 or more.';
    END IF;
    IF max_rows IS NULL OR max_rows NOT BETWEEN 0 AND 10000 THEN
        RAISE EXCEPTION 'invalid max_rows' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(max_rows::text, 'NULL')), HINT = 'Pass max_rows from 0 to 10000.';
    END IF;
    PERFORM modelmine._housekeeping_at_commit();
    RETURN QUERY
        SELECT l.height, pg_catalog.encode(l.hash, 'hex'), pg_catalog.encode(l.prev_hash, 'hex'), l.job_id,
               l.user_id, l.node_id, l.stake, l.reward, l.fee, l.accuracy, l.loss, l.epochs, l.completed_at,
               l.created_at
          FROM modelmine.ledger l
         WHERE l.height >= from_height
         ORDER BY l.height
         LIMIT max_rows;
END
$$;
COMMENT ON FUNCTION modelmine.ledger(bigint, integer) IS
    'Sealed blocks from from_height on (at most max_rows, 0..10000), hashes in hex. Completions still queued are sealed when this transaction commits (ledger_digest() counts them as pending).';
REVOKE ALL ON FUNCTION modelmine.ledger(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.ledger(bigint, integer) TO modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;

CREATE FUNCTION modelmine.ledger_digest() RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    d jsonb;
BEGIN
    PERFORM modelmine._housekeeping_at_commit();
    SELECT pg_catalog.jsonb_build_object('height', l.height, 'hash', pg_catalog.encode(l.hash, 'hex'),
                                         'time', l.created_at,
                                         'pending', (SELECT count(*) FROM modelmine.ledger_queue))
      INTO d
      FROM modelmine.ledger l ORDER BY l.height DESC LIMIT 1;
    RETURN d;
END
$$;
COMMENT ON FUNCTION modelmine.ledger_digest() IS
    'The chain head as {"height", "hash", "time", "pending"} (pending: completions queued, sealed at the next commit that seals): keep it outside the database, and later verify_ledger(digest) proves the chain still extends it.';
REVOKE ALL ON FUNCTION modelmine.ledger_digest() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.ledger_digest() TO modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;

CREATE FUNCTION modelmine.verify_ledger(digest jsonb DEFAULT NULL,
                                        OUT ok boolean, OUT height bigint, OUT first_bad_height bigint,
                                        OUT reason text, OUT blocks_checked bigint)
    LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_verify_ledger';
COMMENT ON FUNCTION modelmine.verify_ledger(jsonb) IS
    'Recomputes every block hash and every link from genesis; returns ok, the chain height, the first bad height and why. With a digest from ledger_digest(), also proves the chain still contains that block.';
REVOKE ALL ON FUNCTION modelmine.verify_ledger(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.verify_ledger(jsonb) TO modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;

CREATE FUNCTION modelmine.block_preimage(height bigint) RETURNS bytea
    LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_block_preimage';
COMMENT ON FUNCTION modelmine.block_preimage(bigint) IS
    'The exact bytes hashed for a block (docs/LEDGER.md), to compare with a third-party encoder.';
REVOKE ALL ON FUNCTION modelmine.block_preimage(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.block_preimage(bigint) TO modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;

-------------------------------------------------------------------------------------------------------
-- Statistics (C, extension/stats.c).  Job counts by creation month and status, and by user and status,
-- are kept as insert-only deltas folded into job_stats and user_job_stats under a try-lock, so no job
-- ever waits on a counter row; node counters live on each node's own row.  Every statistic reads a few
-- hundred rows at most, whatever the number of jobs.
-------------------------------------------------------------------------------------------------------
CREATE TABLE modelmine.job_stats (
    month        date NOT NULL,
    status       modelmine.job_status NOT NULL,
    jobs         bigint NOT NULL,
    stake        numeric NOT NULL,            -- all-time sums of stakes may outgrow bigint
    accuracy_sum double precision NOT NULL,
    accuracy_n   bigint NOT NULL,
    PRIMARY KEY (month, status)
);
SELECT pg_catalog.pg_extension_config_dump('modelmine.job_stats', '');
COMMENT ON TABLE modelmine.job_stats IS
    'Folded job counts and stakes per month of submission and status.';

-- Jobs and stake per user and status (dashboard()): only the folder writes here.
CREATE TABLE modelmine.user_job_stats (
    user_id      bigint NOT NULL,
    status       modelmine.job_status NOT NULL,
    jobs         bigint NOT NULL,
    stake        numeric NOT NULL,
    PRIMARY KEY (user_id, status)
);
SELECT pg_catalog.pg_extension_config_dump('modelmine.user_job_stats', '');
COMMENT ON TABLE modelmine.user_job_stats IS
    'Folded job counts and stakes per user and status (dashboard).';

CREATE TABLE modelmine.job_stat_deltas (
    month        date NOT NULL,
    user_id      bigint NOT NULL,
    status       modelmine.job_status NOT NULL,
    jobs         integer NOT NULL,
    stake        bigint NOT NULL,
    accuracy_sum double precision NOT NULL,
    accuracy_n   integer NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('modelmine.job_stat_deltas', '');
COMMENT ON TABLE modelmine.job_stat_deltas IS
    'Insert-only job statistics deltas (jobs, stake and accuracy per month, owner and status; one row per group and statement), folded into job_stats and user_job_stats at commit.';

CREATE INDEX nodes_tokens_idx ON modelmine.nodes (tokens_earned DESC, id);
CREATE INDEX node_uptime_end_idx ON modelmine.node_uptime (node_id, ended_at);

CREATE FUNCTION modelmine._job_stats_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'mm_job_stats_trigger';
COMMENT ON FUNCTION modelmine._job_stats_trigger() IS
    'Statement trigger: appends the statistics deltas of the jobs inserted or changing status (per month, owner and status: jobs entering minus jobs leaving, their stakes, completion accuracies), in one insert per statement; on update, writes the outbox events of the jobs that reached COMPLETED, FAILED or CANCELED (job_completed, job_failed, job_canceled) for owners who chose them, and raises the statement''s status changes in a few NOTIFYs (modelmine_events for gateways while job_events is 1; modelmine_jobs_ended).';
REVOKE ALL ON FUNCTION modelmine._job_stats_trigger() FROM PUBLIC;

-- Statement triggers over the transition tables: one insert of deltas per statement, not a
-- statement per job (submit_jobs and the set-based settlement change hundreds of jobs at once).
CREATE TRIGGER jobs_stats_insert AFTER INSERT ON modelmine.jobs
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION modelmine._job_stats_trigger();
CREATE TRIGGER jobs_stats_update AFTER UPDATE ON modelmine.jobs
    REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION modelmine._job_stats_trigger();

-- What jobs and replicas name (extension/refs.c): a job's user and node, a replica's job and its node
-- with that node's operator, checked once per statement for the distinct ids it writes, by index
-- probes and without locks, instead of foreign keys.  A key checked each row as it was written and
-- share-locked the row it named: submit_jobs's thousand jobs of one user locked the user's row a
-- thousand times (a third of the insert), and each claimed job paid three checks.  What is named stays,
-- so the check holds for good: users and jobs are never removed and keep their ids, a job keeps its user
-- (the transition guard), a node its id and operator, a replica its job, node and operator, and a node
-- is removed only while nothing names it (a node that claims has an account, which names it by a
-- foreign key and is never removed).
CREATE FUNCTION modelmine._refs_exist() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'mm_refs_exist';
COMMENT ON FUNCTION modelmine._refs_exist() IS
    'Statement trigger: refuses (23503) new or changed jobs naming a user or node that does not exist, and new replicas naming a job that does not exist or a node that is not of their operator (the foreign keys, checked once per statement without locking the rows named).';
REVOKE ALL ON FUNCTION modelmine._refs_exist() FROM PUBLIC;
CREATE TRIGGER jobs_refs_insert AFTER INSERT ON modelmine.jobs
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION modelmine._refs_exist();
CREATE TRIGGER jobs_refs_update AFTER UPDATE ON modelmine.jobs
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION modelmine._refs_exist();
CREATE TRIGGER job_replicas_refs_insert AFTER INSERT ON modelmine.job_replicas
    REFERENCING NEW TABLE AS new_replicas
    FOR EACH STATEMENT EXECUTE FUNCTION modelmine._refs_exist();

CREATE TRIGGER users_keep BEFORE DELETE OR UPDATE OF id ON modelmine.users
    FOR EACH ROW EXECUTE FUNCTION modelmine._refuse_change('users are never removed and keep their ids',
        'Jobs, accounts and the journal name users by id: an account no longer used keeps its row.');
CREATE TRIGGER users_never_truncated BEFORE TRUNCATE ON modelmine.users
    FOR EACH STATEMENT EXECUTE FUNCTION modelmine._refuse_change('users are never removed and keep their ids',
        'Jobs, accounts and the journal name users by id: an account no longer used keeps its row.');
CREATE TRIGGER jobs_keep BEFORE DELETE OR UPDATE OF id ON modelmine.jobs
    FOR EACH ROW EXECUTE FUNCTION modelmine._refuse_change('jobs are never removed and keep their ids',
        'The journal, the ledger and the replicas name jobs by id: cancel a job instead.');
CREATE TRIGGER jobs_never_truncated BEFORE TRUNCATE ON modelmine.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION modelmine._refuse_change('jobs are never removed and keep their ids',
        'The journal, the ledger and the replicas name jobs by id: cancel a job instead.');
CREATE TRIGGER job_replicas_keep BEFORE UPDATE OF job_id, node_id, operator_id ON modelmine.job_replicas
    FOR EACH ROW EXECUTE FUNCTION modelmine._refuse_change('a replica keeps its job, node and operator',
        'A replica records one node''s lease of one job: release it, and a new claim makes a new one.');
CREATE TRIGGER nodes_keep BEFORE UPDATE OF id, operator_id ON modelmine.nodes
    FOR EACH ROW EXECUTE FUNCTION modelmine._refuse_change('a node keeps its id and operator',
        'Jobs and replicas name a node and its operator: register a new node instead.');

CREATE FUNCTION modelmine._node_unnamed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'mm_node_unnamed';
COMMENT ON FUNCTION modelmine._node_unnamed() IS
    'Row trigger before DELETE on nodes: refuses (23503) removing a node that a job or a replica names.';
REVOKE ALL ON FUNCTION modelmine._node_unnamed() FROM PUBLIC;
CREATE TRIGGER nodes_unnamed BEFORE DELETE ON modelmine.nodes
    FOR EACH ROW EXECUTE FUNCTION modelmine._node_unnamed();

-- Nodes online and registered (extension/nodeseen.c): a row trigger on nodes appends -1 at a node's
-- previous last_seen and +1 at its new one, folded at commit into counts by time of last heartbeat, so
-- the online count reads a bounded number of rows whatever the number of nodes, and no heartbeat ever
-- updates a shared row.
CREATE TABLE modelmine.node_seen_stats (
    width bigint NOT NULL CHECK (width IN (0, 1, 1000, 1000000)),
    at    timestamptz NOT NULL,
    nodes bigint NOT NULL,
    PRIMARY KEY (width, at)
);
SELECT pg_catalog.pg_extension_config_dump('modelmine.node_seen_stats', '');
COMMENT ON TABLE modelmine.node_seen_stats IS
    'Folded node counts: nodes whose last heartbeat lies in [at, at + width microseconds), kept at widths 1000000, 1000 and 1; width 0 (at -infinity): nodes registered.';

CREATE TABLE modelmine.node_seen_deltas (
    at    timestamptz,
    nodes integer NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('modelmine.node_seen_deltas', '');
COMMENT ON TABLE modelmine.node_seen_deltas IS
    'Insert-only node count deltas: -1 at a node''s previous last_seen, +1 at its new one; at NULL: +1 registered, -1 deleted.  Folded into node_seen_stats at commit.';

CREATE FUNCTION modelmine._node_seen_trigger() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'mm_node_seen_trigger';
COMMENT ON FUNCTION modelmine._node_seen_trigger() IS
    'Row trigger: appends node count deltas (node_seen_deltas) for each node registered, deleted or seen at a new time.';
REVOKE ALL ON FUNCTION modelmine._node_seen_trigger() FROM PUBLIC;

CREATE TRIGGER nodes_seen_insert_delete AFTER INSERT OR DELETE ON modelmine.nodes
    FOR EACH ROW EXECUTE FUNCTION modelmine._node_seen_trigger();
CREATE TRIGGER nodes_seen_update AFTER UPDATE OF last_seen ON modelmine.nodes
    FOR EACH ROW WHEN (OLD.last_seen IS DISTINCT FROM NEW.last_seen) EXECUTE FUNCTION modelmine._node_seen_trigger();

-- The OFFLINE rule of _node_status (online: last_seen >= now() - offline_after_seconds), answered from
-- node_seen_stats: for a threshold t, the second buckets from t on, the millisecond buckets of t's
-- partial second and the microsecond rows of t's partial millisecond, plus the unfolded deltas.
-- PL/pgSQL so that its plan is cached (a SQL function's would be planned on every call).
CREATE FUNCTION modelmine._nodes_seen_since(t timestamptz) RETURNS bigint
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    -- t rounded up to the second and to the millisecond
    cs timestamptz := CASE WHEN pg_catalog.date_trunc('second', t) = t THEN t
                           ELSE pg_catalog.date_trunc('second', t) + interval '1 second' END;
    cms timestamptz := CASE WHEN pg_catalog.date_trunc('milliseconds', t) = t THEN t
                            ELSE pg_catalog.date_trunc('milliseconds', t) + interval '1 millisecond' END;
BEGIN
    RETURN COALESCE((SELECT pg_catalog.sum(s.nodes) FROM modelmine.node_seen_stats s
                      WHERE s.width = 1000000 AND s.at >= cs), 0)
         + COALESCE((SELECT pg_catalog.sum(s.nodes) FROM modelmine.node_seen_stats s
                      WHERE s.width = 1000 AND s.at >= cms AND s.at < cs), 0)
         + COALESCE((SELECT pg_catalog.sum(s.nodes) FROM modelmine.node_seen_stats s
                      WHERE s.width = 1 AND s.at >= t AND s.at < cms), 0)
         + COALESCE((SELECT pg_catalog.sum(d.nodes) FROM modelmine.node_seen_deltas d WHERE d.at >= t), 0);
END
$$;
COMMENT ON FUNCTION modelmine._nodes_seen_since(timestamptz) IS
    'How many nodes were last seen at or after t, from the maintained node_seen_stats plus unfolded deltas: at most (now - t in seconds) + 1999 rows read, whatever the number of nodes.';
REVOKE ALL ON FUNCTION modelmine._nodes_seen_since(timestamptz) FROM PUBLIC;

CREATE FUNCTION modelmine._node_counts(OUT online bigint, OUT total bigint)
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    online := modelmine._nodes_seen_since(pg_catalog.now() - pg_catalog.make_interval(
                  secs => (SELECT st.value FROM modelmine.settings st WHERE st.name = 'offline_after_seconds')));
    total := COALESCE((SELECT s.nodes FROM modelmine.node_seen_stats s WHERE s.width = 0 AND s.at = '-infinity'), 0)
           + COALESCE((SELECT pg_catalog.sum(d.nodes) FROM modelmine.node_seen_deltas d WHERE d.at IS NULL), 0);
END
$$;
COMMENT ON FUNCTION modelmine._node_counts() IS
    'Nodes online (last heartbeat within offline_after_seconds) and registered, from the maintained node_seen_stats plus unfolded deltas: a bounded read whatever the number of nodes.';
REVOKE ALL ON FUNCTION modelmine._node_counts() FROM PUBLIC;

-- Readers of statistics, balances and the ledger ask for the commit-time work (extension/housekeeping.c)
-- instead of doing it inside their call, where an open transaction would hold its lock.
CREATE FUNCTION modelmine._housekeeping_at_commit() RETURNS void
    LANGUAGE c AS 'MODULE_PATHNAME', 'mm_housekeeping_at_commit';
COMMENT ON FUNCTION modelmine._housekeeping_at_commit() IS
    'Asks for folding (credits, node counters, statistics) and ledger sealing when the current transaction commits, under try-locks held only for the commit; readers call it so work that a busy commit skipped is picked up.';
REVOKE ALL ON FUNCTION modelmine._housekeeping_at_commit() FROM PUBLIC;  -- called only from definer functions

CREATE FUNCTION modelmine.network_stats(
        OUT nodes_online bigint, OUT nodes_total bigint, OUT staked_now bigint, OUT staked_all_time numeric,
        OUT jobs_pending bigint, OUT jobs_running bigint, OUT jobs_completed bigint, OUT jobs_failed bigint,
        OUT jobs_canceled bigint, OUT average_accuracy double precision, OUT paid_to_nodes numeric,
        OUT network_fees bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    PERFORM modelmine._housekeeping_at_commit();
    WITH c AS (
        SELECT x.status, sum(x.jobs)::bigint AS jobs, sum(x.stake) AS stake,
               sum(x.accuracy_sum) AS acc, sum(x.accuracy_n)::bigint AS n
          FROM (SELECT s.status, s.jobs, s.stake, s.accuracy_sum, s.accuracy_n FROM modelmine.job_stats s
                UNION ALL
                SELECT d.status, d.jobs, d.stake, d.accuracy_sum, d.accuracy_n FROM modelmine.job_stat_deltas d) x
         GROUP BY x.status),
    f AS (SELECT COALESCE(sum(a.balance) FILTER (WHERE a.kind = 'fee'), 0)::bigint AS fees,
                 COALESCE(sum(a.balance) FILTER (WHERE a.kind = 'escrow'), 0)::bigint AS escrow
            FROM modelmine.account_balances a WHERE a.id BETWEEN 16 AND 47),
    -- the OFFLINE rule of _node_status, from the maintained counts rather than over every node
    n AS (SELECT nc.online, nc.total FROM modelmine._node_counts() nc)
    SELECT n.online, n.total, f.escrow, COALESCE((SELECT sum(c.stake) FROM c), 0),
           COALESCE((SELECT c.jobs FROM c WHERE c.status = 'PENDING'), 0),
           COALESCE((SELECT c.jobs FROM c WHERE c.status = 'RUNNING'), 0),
           COALESCE((SELECT c.jobs FROM c WHERE c.status = 'COMPLETED'), 0),
           COALESCE((SELECT c.jobs FROM c WHERE c.status = 'FAILED'), 0),
           COALESCE((SELECT c.jobs FROM c WHERE c.status = 'CANCELED'), 0),
           (SELECT c.acc / NULLIF(c.n, 0) FROM c WHERE c.status = 'COMPLETED'),
           COALESCE((SELECT c.stake FROM c WHERE c.status = 'COMPLETED'), 0) - f.fees,
           f.fees
      INTO nodes_online, nodes_total, staked_now, staked_all_time, jobs_pending, jobs_running, jobs_completed,
           jobs_failed, jobs_canceled, average_accuracy, paid_to_nodes, network_fees
      FROM n, f;
END
$$;
COMMENT ON FUNCTION modelmine.network_stats() IS
    'Network health: nodes online (OFFLINE derived) and total, tokens staked now (escrow) and all time (numeric: may outgrow bigint), job counts per status, average accuracy of completed jobs (those reporting one), tokens paid to nodes, network fees collected.';
REVOKE ALL ON FUNCTION modelmine.network_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.network_stats() TO modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;

-- The user's counts come from user_job_stats plus their unfolded deltas, not from counting their
-- jobs: a user with a million jobs gets the same few rows read.
CREATE FUNCTION modelmine.dashboard() RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    uid bigint := modelmine.current_user_id();
    result jsonb;
BEGIN
    PERFORM modelmine._housekeeping_at_commit();
    WITH counts AS (
            SELECT s.status, COALESCE(sum(x.jobs), 0)::bigint AS n, COALESCE(sum(x.stake), 0) AS stake
              FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::modelmine.job_status)) s(status)
              LEFT JOIN (SELECT t.status, t.jobs, t.stake FROM modelmine.user_job_stats t WHERE t.user_id = uid
                         UNION ALL
                         SELECT d.status, d.jobs, d.stake FROM modelmine.job_stat_deltas d WHERE d.user_id = uid) x
                ON x.status = s.status
             GROUP BY s.status)
    SELECT pg_catalog.jsonb_build_object(
               'user_id', uid,
               'balance', (SELECT a.balance FROM modelmine.account_balances a WHERE a.user_id = uid),
               -- the part of the signup grant that may be staked but not transferred or withdrawn
               'grant_locked', (SELECT u.grant_locked FROM modelmine.users u WHERE u.id = uid),
               'transferable', (SELECT GREATEST(a.balance - u.grant_locked, 0)
                                  FROM modelmine.account_balances a JOIN modelmine.users u ON u.id = a.user_id
                                 WHERE a.user_id = uid),
               'in_escrow', (SELECT sum(c.stake) FROM counts c WHERE c.status IN ('PENDING', 'RUNNING')),
               'jobs', (SELECT pg_catalog.jsonb_object_agg(c.status::text, c.n) || pg_catalog.jsonb_build_object('total', sum(c.n))
                          FROM counts c),
               'recent_jobs', (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)), '[]')
                                 FROM modelmine.my_jobs(NULL, 'created', true, 10, 0) r),
               'recent_transactions', (SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(t)), '[]')
                                         FROM modelmine.my_transactions(10) t))
      INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION modelmine.dashboard() IS
    'The signed-in user''s dashboard: job counts per status and total, balance, the locked part of the signup grant and what may be transferred or withdrawn, tokens in escrow, latest jobs and transactions.';
REVOKE ALL ON FUNCTION modelmine.dashboard() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.dashboard() TO modelmine_user;

CREATE FUNCTION modelmine.job_timeline(months integer DEFAULT 6)
    RETURNS TABLE (month date, status text, jobs bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF months IS NULL OR months NOT BETWEEN 1 AND 120 THEN
        RAISE EXCEPTION 'invalid months' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(months::text, 'NULL')), HINT = 'Pass 1 to 120 months.';
    END IF;
    PERFORM modelmine._housekeeping_at_commit();
    RETURN QUERY
        WITH m AS (SELECT g::date AS month
                     FROM pg_catalog.generate_series(
                              pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC') - pg_catalog.make_interval(months => months - 1),
                              pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC'),
                              interval '1 month') g),
             x AS (SELECT s.month, s.status, s.jobs FROM modelmine.job_stats s
                   UNION ALL SELECT d.month, d.status, d.jobs::bigint FROM modelmine.job_stat_deltas d)
        SELECT m.month, st.status::text, COALESCE(sum(x.jobs), 0)::bigint
          FROM m CROSS JOIN pg_catalog.unnest(pg_catalog.enum_range(NULL::modelmine.job_status)) st(status)
          LEFT JOIN x ON x.month = m.month AND x.status = st.status
         GROUP BY m.month, st.status
         ORDER BY m.month, st.status;
END
$$;
COMMENT ON FUNCTION modelmine.job_timeline(integer) IS
    'Jobs per month of submission (UTC) and current status over the last months (1..120), months without jobs included with zeros, oldest first.';
REVOKE ALL ON FUNCTION modelmine.job_timeline(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.job_timeline(integer) TO modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;

CREATE FUNCTION modelmine.token_distribution(max_rows integer DEFAULT 20)
    RETURNS TABLE (node_id bigint, name text, tokens_earned numeric)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF max_rows IS NULL OR max_rows NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'invalid max_rows' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(max_rows::text, 'NULL')), HINT = 'Pass 1 to 1000.';
    END IF;
    RETURN QUERY SELECT n.id, n.name, n.tokens_earned FROM modelmine.nodes n
                  ORDER BY n.tokens_earned DESC, n.id LIMIT max_rows;
END
$$;
COMMENT ON FUNCTION modelmine.token_distribution(integer) IS
    'Tokens earned per node (rewards for completed jobs, withdrawn or not), the top max_rows (1..1000) first.';
REVOKE ALL ON FUNCTION modelmine.token_distribution(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.token_distribution(integer) TO modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;

CREATE FUNCTION modelmine._setting(name text) RETURNS bigint
    LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'mm_setting';
COMMENT ON FUNCTION modelmine._setting(text) IS
    'A setting''s value from this backend''s cache of modelmine.settings, readable where the table is not (settings() lists them all).';
REVOKE ALL ON FUNCTION modelmine._setting(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine._setting(text) TO modelmine_admin;

-- Uptime: the share of [max(now - window, registered_at), now] covered by heartbeat stretches.  A
-- stretch is closed into node_uptime when a heartbeat follows a gap longer than offline_after_seconds;
-- the open stretch runs to now while the node is online, else to its last heartbeat.  Per node it is
-- one range scan of node_uptime.  A set-returning SQL function, not a definer and without SET, so the
-- planner inlines it into the caller's query (nodes, node_stats, admin_node_page, admin_nodes): no
-- function call per row.  Inlined, its reads are checked against the caller: the definer functions
-- that call it run as the owner, and admin_nodes' readers (modelmine_admin) may read node_uptime, which holds
-- nothing the admin API does not show; the setting comes from the cache (_setting).
CREATE FUNCTION modelmine._node_liveness(node_id bigint, registered_at timestamptz, last_seen timestamptz,
                                         online_since timestamptz, window_hours integer)
    RETURNS TABLE (uptime_pct numeric, offline boolean)
    LANGUAGE sql STABLE ROWS 1
    AS $$
        SELECT CASE WHEN w.e <= w.s THEN NULL
                    ELSE pg_catalog.round((100 * (c.closed + CASE WHEN online_since IS NULL THEN 0
                             ELSE GREATEST(pg_catalog.date_part('epoch', CASE WHEN w.offline THEN LEAST(last_seen, w.e) ELSE w.e END
                                                                         - GREATEST(online_since, w.s)), 0) END)
                         / pg_catalog.date_part('epoch', w.e - w.s))::numeric, 1) END,
               w.offline
          FROM (SELECT GREATEST(pg_catalog.now() - pg_catalog.make_interval(hours => window_hours), registered_at) AS s,
                       pg_catalog.now() AS e,
                       (last_seen IS NULL OR last_seen < pg_catalog.now()
                                                          - pg_catalog.make_interval(secs => modelmine._setting('offline_after_seconds'))) AS offline) w
         CROSS JOIN LATERAL (SELECT COALESCE(sum(GREATEST(pg_catalog.date_part('epoch', LEAST(u.ended_at, w.e)
                                                                                   - GREATEST(u.started_at, w.s)), 0)), 0) AS closed
                               FROM modelmine.node_uptime u WHERE u.node_id = _node_liveness.node_id AND u.ended_at > w.s) c
    $$;
COMMENT ON FUNCTION modelmine._node_liveness(bigint, timestamptz, timestamptz, timestamptz, integer) IS
    'For one node (its id, registered_at, last_seen, online_since): percent of the window (capped at its registration) covered by its heartbeat history, and whether it is OFFLINE now.  Inlined into its callers.';
REVOKE ALL ON FUNCTION modelmine._node_liveness(bigint, timestamptz, timestamptz, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine._node_liveness(bigint, timestamptz, timestamptz, timestamptz, integer) TO modelmine_admin;
-- what the inlined _node_liveness reads in admin_nodes, as its reader
GRANT SELECT ON modelmine.node_uptime TO modelmine_admin;

CREATE TYPE modelmine.node_summary AS (
    id bigint, name text, status text, cpu_load real, memory_used_mb integer, memory_total_mb integer,
    last_seen timestamptz, uptime_pct numeric, jobs_handled bigint, jobs_completed bigint, jobs_failed bigint,
    tokens_earned numeric, reputation integer, registered_at timestamptz, capabilities jsonb, window_hours integer,
    results_valid bigint, results_invalid bigint, spotcheck_pct integer
);
COMMENT ON TYPE modelmine.node_summary IS
    'A node''s public figures (nodes, node_stats, admin_nodes): derived status, load, uptime, counters, reputation.';

-- Reputation 0..100 = 100 * success * uptime, where success = (completed + 1) / (completed + failed +
-- 10 * invalid + 2) (a node with no history starts at 1/2, not at 0 or 1; a result the validator
-- rejected weighs ten failures: MM_INVALID_WEIGHT, extension/replicas.c) and uptime is the fraction
-- over the window.  Claims use the same success as the record score (_record_score), without uptime.
-- Set-returning (one row) so that the planner inlines it like _node_liveness.
CREATE FUNCTION modelmine._node_summary(n modelmine.nodes, window_hours integer, uptime_pct numeric,
                                        offline boolean) RETURNS SETOF modelmine.node_summary
    LANGUAGE sql STABLE ROWS 1
    AS $$
        SELECT n.id, n.name, CASE WHEN offline THEN 'OFFLINE' ELSE n.status END, n.cpu_load, n.memory_used_mb,
               n.memory_total_mb, n.last_seen, uptime_pct, n.jobs_completed + n.jobs_failed, n.jobs_completed,
               n.jobs_failed, n.tokens_earned,
               pg_catalog.round(100 * (n.jobs_completed + 1)::numeric
                                / (n.jobs_completed + n.jobs_failed + 10 * n.results_invalid + 2)
                                * COALESCE(uptime_pct, 0) / 100)::integer,
               n.registered_at, n.capabilities, window_hours, n.results_valid, n.results_invalid,
               modelmine._spotcheck_pct(n.results_valid, n.results_invalid,
                                        modelmine._record_score(n.jobs_completed, n.jobs_failed, n.results_invalid))
    $$;
COMMENT ON FUNCTION modelmine._node_summary(modelmine.nodes, integer, numeric, boolean) IS
    'One node''s public figures from its row and its liveness: derived status, load, uptime over the window, counters and reputation.';
REVOKE ALL ON FUNCTION modelmine._node_summary(modelmine.nodes, integer, numeric, boolean) FROM PUBLIC;
-- a view's functions run with the caller's rights: admin_nodes needs these two
GRANT EXECUTE ON FUNCTION modelmine._node_summary(modelmine.nodes, integer, numeric, boolean) TO modelmine_admin;

CREATE FUNCTION modelmine.nodes(max_rows integer DEFAULT 100, skip integer DEFAULT 0)
    RETURNS SETOF modelmine.node_summary
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan SET jit = off
    AS $$
BEGIN
    IF max_rows IS NULL OR max_rows NOT BETWEEN 0 AND 1000 THEN
        RAISE EXCEPTION 'invalid max_rows' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(max_rows::text, 'NULL')), HINT = 'Pass 0 to 1000 and page with skip.';
    END IF;
    IF skip IS NULL OR skip < 0 THEN
        RAISE EXCEPTION 'invalid skip' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(skip::text, 'NULL')), HINT = 'Pass 0 or more.';
    END IF;
    -- The page first, so a deep skip computes no uptime for the rows it skips; both helpers are
    -- inlined.  One generic plan, made once per session (a custom plan was 2/3 of the call), and no JIT:
    -- the generic plan's estimate (a tenth of the network per page) would compile one for every call.
    RETURN QUERY
        WITH page AS MATERIALIZED (SELECT nd FROM modelmine.nodes nd ORDER BY nd.id LIMIT max_rows OFFSET skip)
        SELECT s.*
          FROM page p
         CROSS JOIN LATERAL modelmine._node_liveness((p.nd).id, (p.nd).registered_at, (p.nd).last_seen,
                                                     (p.nd).online_since, 24) l
         CROSS JOIN LATERAL modelmine._node_summary(p.nd, 24, l.uptime_pct, l.offline) s
         ORDER BY (p.nd).id;
END
$$;
COMMENT ON FUNCTION modelmine.nodes(integer, integer) IS
    'Registered nodes by id, a page at a time (max_rows 0..1000): status (OFFLINE when heartbeats stopped), CPU, memory, last seen, uptime % over 24 h, jobs handled/completed/failed, tokens earned, reputation.';
REVOKE ALL ON FUNCTION modelmine.nodes(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.nodes(integer, integer) TO modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;

CREATE FUNCTION modelmine.node_stats(node_id bigint, window_hours integer DEFAULT 24)
    RETURNS modelmine.node_summary
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    r modelmine.node_summary;
BEGIN
    IF window_hours IS NULL OR window_hours NOT BETWEEN 1 AND 8760 THEN
        RAISE EXCEPTION 'invalid window_hours' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(window_hours::text, 'NULL')), HINT = 'Pass 1 to 8760 hours.';
    END IF;
    SELECT s.* INTO r
      FROM modelmine.nodes n
     CROSS JOIN LATERAL modelmine._node_liveness(n.id, n.registered_at, n.last_seen, n.online_since, window_hours) l
     CROSS JOIN LATERAL modelmine._node_summary(n, window_hours, l.uptime_pct, l.offline) s
     WHERE n.id = node_stats.node_id;
    IF r.id IS NULL THEN
        RAISE EXCEPTION 'node % not found', node_id USING ERRCODE = 'no_data_found',
            HINT = 'List nodes with modelmine.nodes().';
    END IF;
    RETURN r;
END
$$;
COMMENT ON FUNCTION modelmine.node_stats(bigint, integer) IS
    'One node''s figures with uptime % over window_hours (1..8760) and reputation = round(100 * (completed+1)/(completed+failed+10*invalid+2) * uptime/100). jobs_failed counts jobs the node failed and leases it let expire; results_valid and results_invalid its results the validator confirmed and rejected; spotcheck_pct the chance its single-replica claims are checked.';
REVOKE ALL ON FUNCTION modelmine.node_stats(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.node_stats(bigint, integer) TO modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;

-- Admin views: what the seed's admin pages showed, never a password hash or key hash.
CREATE VIEW modelmine.admin_users AS
    SELECT u.id, u.email, u.role, a.balance, u.created_at
      FROM modelmine.users u JOIN modelmine.account_balances a ON a.user_id = u.id;
COMMENT ON VIEW modelmine.admin_users IS
    'Admin: every user with role and balance (never a password hash).';
CREATE VIEW modelmine.admin_jobs AS
    SELECT j.id, u.email AS owner_email, j.title, j.status, j.stake, j.priority, j.progress, j.node_id, j.attempts,
           j.error, j.created_at, j.finished_at, j.replicas, j.replicas_wanted, j.validation
      FROM modelmine.jobs j JOIN modelmine.users u ON u.id = j.user_id;
COMMENT ON VIEW modelmine.admin_jobs IS
    'Admin: every job with owner, status, stake and error; page with ORDER BY id LIMIT n.';
-- Liveness row by row and id from nodes itself, so "ORDER BY id LIMIT n" walks the primary key and
-- stops after n nodes instead of computing every node's uptime first.
CREATE VIEW modelmine.admin_nodes AS
    SELECT n.id, s.name, s.status, s.cpu_load, s.memory_used_mb, s.memory_total_mb, s.last_seen, s.uptime_pct,
           s.jobs_handled, s.jobs_completed, s.jobs_failed, s.tokens_earned, s.reputation, s.registered_at,
           s.capabilities, s.window_hours, u.email AS operator_email, s.results_valid, s.results_invalid,
           s.spotcheck_pct
      FROM modelmine.nodes n JOIN modelmine.users u ON u.id = n.operator_id
     CROSS JOIN LATERAL modelmine._node_liveness(n.id, n.registered_at, n.last_seen, n.online_since, 24) l
     CROSS JOIN LATERAL modelmine._node_summary(n, 24, l.uptime_pct, l.offline) s;
COMMENT ON VIEW modelmine.admin_nodes IS
    'Admin: every node with operator and figures; page with ORDER BY id LIMIT n (uptime is computed per row).';
CREATE VIEW modelmine.admin_network AS SELECT * FROM modelmine.network_stats();
COMMENT ON VIEW modelmine.admin_network IS
    'Admin: network_stats() as a view.';
CREATE VIEW modelmine.admin_ledger AS
    SELECT l.height, pg_catalog.encode(l.hash, 'hex') AS hash, pg_catalog.encode(l.prev_hash, 'hex') AS prev_hash,
           l.job_id, l.user_id, l.node_id, l.stake, l.reward, l.fee, l.accuracy, l.loss, l.epochs,
           l.completed_at, l.created_at
      FROM modelmine.ledger l;
COMMENT ON VIEW modelmine.admin_ledger IS
    'Admin: ledger blocks with hashes in hex.';
GRANT SELECT ON modelmine.admin_users, modelmine.admin_jobs, modelmine.admin_nodes, modelmine.admin_network,
                modelmine.admin_ledger TO modelmine_admin;

-------------------------------------------------------------------------------------------------------
-- Administration.
-------------------------------------------------------------------------------------------------------
CREATE FUNCTION modelmine.users()
    RETURNS TABLE (id bigint, email text, role text, balance bigint, jobs bigint, created_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT u.id, u.email, u.role, a.balance,
               (SELECT count(*) FROM modelmine.jobs j WHERE j.user_id = u.id), u.created_at
          FROM modelmine.users u JOIN modelmine.account_balances a ON a.user_id = u.id
         ORDER BY u.id
    $$;
COMMENT ON FUNCTION modelmine.users() IS 'Admin: every user with role, balance and job count (never a password hash).';
REVOKE ALL ON FUNCTION modelmine.users() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.users() TO modelmine_admin;

CREATE FUNCTION modelmine.set_user_role(email text, role text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s'
    AS $$
DECLARE
    target record;
BEGIN
    IF role IS NULL OR role NOT IN ('user', 'admin') THEN
        RAISE EXCEPTION 'invalid role' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %L.', role), HINT = 'Pass ''user'' or ''admin''.';
    END IF;
    SELECT u.id, u.role INTO target FROM modelmine.users u
     WHERE u.email = pg_catalog.lower(pg_catalog.btrim(set_user_role.email));
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no user with email %', set_user_role.email USING ERRCODE = 'no_data_found',
            HINT = 'List users with modelmine.users().';
    END IF;
    IF target.role IS DISTINCT FROM set_user_role.role THEN
        -- the function's own SET lock_timeout is restored when it returns
        PERFORM pg_catalog.set_config('lock_timeout', st.value || 'ms', true)
           FROM modelmine.settings st WHERE st.name = 'lock_timeout_ms';
        BEGIN
            UPDATE modelmine.users u SET role = set_user_role.role WHERE u.id = target.id;
            -- a token carries the role it was issued with: end every session so none outlives the change
            UPDATE modelmine.sessions s SET revoked_at = pg_catalog.now()
             WHERE s.user_id = target.id AND s.revoked_at IS NULL;
        EXCEPTION WHEN lock_not_available THEN
            RAISE EXCEPTION 'user % is busy', target.id USING ERRCODE = 'lock_not_available',
                DETAIL = 'Another transaction has held the user or one of their sessions for longer than lock_timeout_ms.',
                HINT = 'Try again in a moment.';
        END;
    END IF;
END
$$;
COMMENT ON FUNCTION modelmine.set_user_role(text, text) IS
    'Admin: makes a user an admin or a plain user, and revokes their sessions (a token carries its role), so they sign in again with the new role.';
REVOKE ALL ON FUNCTION modelmine.set_user_role(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.set_user_role(text, text) TO modelmine_admin;

CREATE FUNCTION modelmine.set_setting(name text, value bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s'
    AS $$
DECLARE
    s modelmine.settings;
BEGIN
    SELECT * INTO s FROM modelmine.settings WHERE settings.name = set_setting.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown setting %', set_setting.name USING ERRCODE = 'invalid_parameter_value',
            HINT = 'List settings with SELECT * FROM modelmine.settings().';
    END IF;
    IF value IS NULL OR value NOT BETWEEN s.min_value AND s.max_value THEN
        RAISE EXCEPTION 'invalid value for setting %', s.name USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(value::text, 'NULL')),
            HINT = pg_catalog.format('Pass a value from %s to %s.', s.min_value, s.max_value);
    END IF;
    -- the function's own SET lock_timeout is restored when it returns
    PERFORM pg_catalog.set_config('lock_timeout', st.value || 'ms', true)
       FROM modelmine.settings st WHERE st.name = 'lock_timeout_ms';
    BEGIN
        UPDATE modelmine.settings SET value = set_setting.value WHERE settings.name = s.name;
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'setting % is busy', s.name USING ERRCODE = 'lock_not_available',
            DETAIL = 'Another admin''s transaction has held it for longer than lock_timeout_ms.',
            HINT = 'Try again in a moment.';
    END;
END
$$;
COMMENT ON FUNCTION modelmine.set_setting(text, bigint) IS 'Admin: changes a setting within its allowed range.';
REVOKE ALL ON FUNCTION modelmine.set_setting(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.set_setting(text, bigint) TO modelmine_admin;

CREATE FUNCTION modelmine.settings()
    RETURNS TABLE (name text, value bigint, min_value bigint, max_value bigint, description text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT s.name, s.value, s.min_value, s.max_value, s.description FROM modelmine.settings s ORDER BY s.name $$;
COMMENT ON FUNCTION modelmine.settings() IS 'Every setting with its value, allowed range and meaning.';
REVOKE ALL ON FUNCTION modelmine.settings() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.settings() TO modelmine_user, modelmine_node, modelmine_admin;

-------------------------------------------------------------------------------------------------------
-- Closing the token loop (issue 14): the network fee paid out to the nodes, withdrawals out of the
-- system, and signup grants that cannot be farmed.
--
-- Supply: every token issued (minus the issuance account's balance) is in exactly one place: a user
-- or node balance, escrow (open stakes), the fee shards (fees not yet distributed, and distribution
-- remainders), held (withdrawals waiting for an admin) or withdrawn (paid out of the system, kept so
-- the books still add up).  check_invariants() checks each of these.
-------------------------------------------------------------------------------------------------------
-- Two system accounts: held (2) keeps the tokens of pending withdrawals, withdrawn (3) those paid out.
INSERT INTO modelmine.accounts (id, kind) VALUES (2, 'held'), (3, 'withdrawn');

-- The signup grant can stake jobs but cannot leave the account until it is unlocked (verify_user, or
-- node earnings withdrawn to it): grant_locked is the part of the balance transfer() and
-- request_withdrawal() must leave in place.
ALTER TABLE modelmine.users
    ADD COLUMN grant_locked bigint NOT NULL DEFAULT 0 CHECK (grant_locked >= 0),
    ADD COLUMN verified_at timestamptz;
COMMENT ON COLUMN modelmine.users.grant_locked IS
    'Tokens of the signup grant that cannot be transferred or withdrawn yet (they can stake jobs); 0 once an admin verified the user, lowered by node earnings the user withdraws.';
COMMENT ON COLUMN modelmine.users.verified_at IS 'When an admin verified the user (verify_user); NULL if never.';

CREATE TABLE modelmine.withdrawals (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          bigint NOT NULL REFERENCES modelmine.users (id),
    amount           bigint NOT NULL CHECK (amount > 0),
    destination      text NOT NULL CHECK (pg_catalog.char_length(destination) BETWEEN 1 AND 200),
    status           text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED')),
    payout_reference text CHECK (pg_catalog.char_length(payout_reference) BETWEEN 1 AND 200),
    reason           text CHECK (pg_catalog.char_length(reason) BETWEEN 1 AND 500),
    requested_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    decided_at       timestamptz,
    decided_by       text,           -- the deciding admin's email, or their database role
    CHECK ((status = 'PENDING') = (decided_at IS NULL AND decided_by IS NULL)),
    CHECK ((status = 'APPROVED') = (payout_reference IS NOT NULL)),
    CHECK ((status = 'REJECTED') = (reason IS NOT NULL))
);
CREATE INDEX withdrawals_user_idx ON modelmine.withdrawals (user_id, id);
CREATE INDEX withdrawals_pending_idx ON modelmine.withdrawals (id) WHERE status = 'PENDING';
SELECT pg_catalog.pg_extension_config_dump('modelmine.withdrawals', '');
COMMENT ON TABLE modelmine.withdrawals IS
    'Requests to take tokens out of the system: held while PENDING, then APPROVED (burnt into the withdrawn account, with the payout reference) or REJECTED (released to the user), decided once.';

CREATE TABLE modelmine.fee_distributions (
    period         date PRIMARY KEY CHECK (period = pg_catalog.date_trunc('month', period)::date),
    pool           bigint NOT NULL DEFAULT 0 CHECK (pool >= 0),
    paid           bigint NOT NULL DEFAULT 0 CHECK (paid >= 0 AND paid <= pool),
    nodes          integer NOT NULL DEFAULT 0 CHECK (nodes >= 0),
    distributed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    distributed_by text NOT NULL     -- the admin's email, or their database role
);
SELECT pg_catalog.pg_extension_config_dump('modelmine.fee_distributions', '');
COMMENT ON TABLE modelmine.fee_distributions IS
    'One row per UTC month whose network fee was paid to the nodes (distribute_fees): the pool, what was paid (the rounding remainder stays in the fee shards) and to how many nodes; the primary key makes each month pay once.';

CREATE FUNCTION modelmine.request_withdrawal(amount bigint, destination text) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_request_withdrawal';
COMMENT ON FUNCTION modelmine.request_withdrawal(bigint, text) IS
    'Asks to take tokens out of the system to destination (1-200 characters): the amount (at most your balance minus the locked signup grant) is held until an admin approves or rejects it. Returns the withdrawal id.';
REVOKE ALL ON FUNCTION modelmine.request_withdrawal(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.request_withdrawal(bigint, text) TO modelmine_user;

CREATE FUNCTION modelmine.approve_withdrawal(withdrawal_id bigint, payout_reference text) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_approve_withdrawal';
COMMENT ON FUNCTION modelmine.approve_withdrawal(bigint, text) IS
    'Admin: approves a PENDING withdrawal once it was paid out (payout_reference, 1-200 characters, says how): its held tokens move to the withdrawn account. Returns the amount.';
REVOKE ALL ON FUNCTION modelmine.approve_withdrawal(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.approve_withdrawal(bigint, text) TO modelmine_admin;

CREATE FUNCTION modelmine.reject_withdrawal(withdrawal_id bigint, reason text) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_reject_withdrawal';
COMMENT ON FUNCTION modelmine.reject_withdrawal(bigint, text) IS
    'Admin: rejects a PENDING withdrawal with a reason (1-500 characters): its held tokens go back to the user. Returns the amount.';
REVOKE ALL ON FUNCTION modelmine.reject_withdrawal(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.reject_withdrawal(bigint, text) TO modelmine_admin;

CREATE FUNCTION modelmine.my_withdrawals(max_rows integer DEFAULT 20)
    RETURNS TABLE (id bigint, amount bigint, destination text, status text, payout_reference text,
                   reason text, requested_at timestamptz, decided_at timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF max_rows IS NULL OR max_rows NOT BETWEEN 0 AND 1000 THEN
        RAISE EXCEPTION 'invalid max_rows' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(max_rows::text, 'NULL')),
            HINT = 'Pass a number of rows from 0 to 1000.';
    END IF;
    RETURN QUERY
        SELECT w.id, w.amount, w.destination, w.status, w.payout_reference, w.reason, w.requested_at,
               w.decided_at
          FROM modelmine.withdrawals w
         WHERE w.user_id = modelmine.current_user_id()
         ORDER BY w.id DESC
         LIMIT max_rows;
END
$$;
COMMENT ON FUNCTION modelmine.my_withdrawals(integer) IS
    'The signed-in user''s withdrawals, newest first (at most 1000): amount, destination, status, and the payout reference or the reason of the decision.';
REVOKE ALL ON FUNCTION modelmine.my_withdrawals(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.my_withdrawals(integer) TO modelmine_user;

-- A row type, not RETURNS TABLE: its status column would clash with the status parameter.
CREATE TYPE modelmine.withdrawal AS (id bigint, email text, amount bigint, destination text, status text,
                                     payout_reference text, reason text, requested_at timestamptz,
                                     decided_at timestamptz, decided_by text);
COMMENT ON TYPE modelmine.withdrawal IS 'A withdrawal as admins list it (withdrawals()), with the user''s email.';

CREATE FUNCTION modelmine.withdrawals(status text DEFAULT NULL, max_rows integer DEFAULT 100,
                                      skip integer DEFAULT 0)
    RETURNS SETOF modelmine.withdrawal
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF status IS NOT NULL AND status NOT IN ('PENDING', 'APPROVED', 'REJECTED') THEN
        RAISE EXCEPTION 'invalid status' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %L.', status),
            HINT = 'Pass PENDING, APPROVED, REJECTED or NULL for all.';
    END IF;
    IF max_rows IS NULL OR max_rows NOT BETWEEN 0 AND 10000 THEN
        RAISE EXCEPTION 'invalid max_rows' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(max_rows::text, 'NULL')), HINT = 'Pass 0 to 10000.';
    END IF;
    IF skip IS NULL OR skip < 0 THEN
        RAISE EXCEPTION 'invalid skip' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(skip::text, 'NULL')), HINT = 'Pass 0 or more.';
    END IF;
    -- pending ones oldest first (the queue to work through); decided ones newest first
    RETURN QUERY
        SELECT w.id, u.email, w.amount, w.destination, w.status, w.payout_reference, w.reason,
               w.requested_at, w.decided_at, w.decided_by
          FROM modelmine.withdrawals w JOIN modelmine.users u ON u.id = w.user_id
         WHERE withdrawals.status IS NULL OR w.status = withdrawals.status
         ORDER BY w.status <> 'PENDING', CASE WHEN w.status = 'PENDING' THEN w.id ELSE -w.id END
         LIMIT max_rows OFFSET skip;
END
$$;
COMMENT ON FUNCTION modelmine.withdrawals(text, integer, integer) IS
    'Admin: withdrawals (all, or those with status PENDING, APPROVED or REJECTED), pending ones first and oldest first, then decided ones newest first; max_rows 0..10000 from skip.';
REVOKE ALL ON FUNCTION modelmine.withdrawals(text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.withdrawals(text, integer, integer) TO modelmine_admin;

CREATE FUNCTION modelmine.distribute_fees(period date) RETURNS jsonb
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_distribute_fees';
COMMENT ON FUNCTION modelmine.distribute_fees(date) IS
    'Admin: pays the network fee journaled in a UTC month that has ended (period: its first day) to the nodes, pro rata to the rewards they earned in it (rounded down; the remainder stays in the fee shards). Pays once per month: a second call returns the first one''s figures (paid_now false). Returns {period, pool, paid, nodes, distributed_at, distributed_by, paid_now}.';
REVOKE ALL ON FUNCTION modelmine.distribute_fees(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.distribute_fees(date) TO modelmine_admin;

CREATE FUNCTION modelmine.fee_distributions()
    RETURNS TABLE (period date, pool bigint, paid bigint, nodes integer, distributed_at timestamptz,
                   distributed_by text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT f.period, f.pool, f.paid, f.nodes, f.distributed_at, f.distributed_by
          FROM modelmine.fee_distributions f ORDER BY f.period DESC
    $$;
COMMENT ON FUNCTION modelmine.fee_distributions() IS
    'Admin: every month whose network fee was distributed, newest first: pool, paid, nodes paid, when and by whom.';
REVOKE ALL ON FUNCTION modelmine.fee_distributions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.fee_distributions() TO modelmine_admin;

CREATE FUNCTION modelmine.verify_user(email text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s'
    AS $$
DECLARE
    target record;
BEGIN
    SELECT u.id, u.grant_locked, u.verified_at INTO target FROM modelmine.users u
     WHERE u.email = pg_catalog.lower(pg_catalog.btrim(verify_user.email));
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no user with email %', verify_user.email USING ERRCODE = 'no_data_found',
            HINT = 'List users with modelmine.users().';
    END IF;
    IF target.verified_at IS NOT NULL AND target.grant_locked = 0 THEN
        RETURN 0;
    END IF;
    -- the function's own SET lock_timeout is restored when it returns
    PERFORM pg_catalog.set_config('lock_timeout', st.value || 'ms', true)
       FROM modelmine.settings st WHERE st.name = 'lock_timeout_ms';
    BEGIN
        UPDATE modelmine.users u SET verified_at = COALESCE(u.verified_at, pg_catalog.now()), grant_locked = 0
         WHERE u.id = target.id;
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'user % is busy', target.id USING ERRCODE = 'lock_not_available',
            DETAIL = 'Another transaction has held the user for longer than lock_timeout_ms.',
            HINT = 'Try again in a moment.';
    END;
    RETURN target.grant_locked;
END
$$;
COMMENT ON FUNCTION modelmine.verify_user(text) IS
    'Admin: marks a user verified, which unlocks their signup grant (it may then be transferred or withdrawn); returns the tokens unlocked (0 when already verified).';
REVOKE ALL ON FUNCTION modelmine.verify_user(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.verify_user(text) TO modelmine_admin;

CREATE FUNCTION modelmine.node_transactions(node_id bigint, max_rows integer DEFAULT 20)
    RETURNS TABLE (id bigint, created_at timestamptz, amount bigint, direction text, reason text,
                   job_id bigint, counterparty text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    acct bigint;
BEGIN
    IF max_rows IS NULL OR max_rows NOT BETWEEN 0 AND 1000 THEN
        RAISE EXCEPTION 'invalid max_rows' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(max_rows::text, 'NULL')),
            HINT = 'Pass a number of rows from 0 to 1000.';
    END IF;
    SELECT a.id INTO acct FROM modelmine.nodes n JOIN modelmine.accounts a ON a.node_id = n.id
     WHERE n.id = node_transactions.node_id AND n.operator_id = modelmine.current_user_id();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'node % not found', node_transactions.node_id USING ERRCODE = 'no_data_found',
            DETAIL = 'There is no node with this id that you operate.',
            HINT = 'List your nodes with modelmine.my_nodes().';
    END IF;
    RETURN QUERY
        SELECT j.id, j.created_at,
               CASE WHEN j.credit_account = acct THEN j.amount ELSE -j.amount END,
               CASE WHEN j.credit_account = acct THEN 'in' ELSE 'out' END,
               j.reason, j.job_id, COALESCE(u.email, o.kind)
          FROM ((SELECT * FROM modelmine.journal d WHERE d.debit_account = acct ORDER BY d.id DESC LIMIT max_rows)
                UNION ALL
                (SELECT * FROM modelmine.journal c WHERE c.credit_account = acct ORDER BY c.id DESC LIMIT max_rows)) j
          JOIN modelmine.accounts o ON o.id = CASE WHEN j.credit_account = acct THEN j.debit_account
                                                   ELSE j.credit_account END
          LEFT JOIN modelmine.users u ON u.id = o.user_id
         ORDER BY j.id DESC
         LIMIT max_rows;
END
$$;
COMMENT ON FUNCTION modelmine.node_transactions(bigint, integer) IS
    'Operator: the latest journal entries of a node you operate (newest first, at most 1000): rewards, fee distributions and withdrawals to you, with signed amounts.';
REVOKE ALL ON FUNCTION modelmine.node_transactions(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.node_transactions(bigint, integer) TO modelmine_user;

-------------------------------------------------------------------------------------------------------
-- Invariants: an empty result means the books balance.
-------------------------------------------------------------------------------------------------------
-- The invariants over small tables (node counts, statistics deltas, withdrawals), whole: shared by
-- check_invariants() and check_invariants_incremental().
CREATE FUNCTION modelmine._invariants_small() RETURNS TABLE (invariant text, detail text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$        -- The maintained node counts (folded plus pending deltas) equal a recount of the nodes, bucket by
        -- bucket at every width, so the online count is right for any offline_after_seconds.
        SELECT 'node_seen_stats_match_nodes',
               pg_catalog.format('width %s at %s: statistics say %s nodes, recount %s',
                                 COALESCE(a.width, b.width), COALESCE(a.at, b.at), COALESCE(a.nodes, 0),
                                 COALESCE(b.nodes, 0))
          FROM (SELECT x.width, x.at, sum(x.nodes) AS nodes
                  FROM (SELECT width, at, nodes FROM modelmine.node_seen_stats
                        UNION ALL
                        SELECT w.width, CASE w.width WHEN 0 THEN '-infinity'
                                                     WHEN 1000000 THEN pg_catalog.date_trunc('second', d.at)
                                                     WHEN 1000 THEN pg_catalog.date_trunc('milliseconds', d.at)
                                                     ELSE d.at END, d.nodes
                          FROM modelmine.node_seen_deltas d, (VALUES (0::bigint), (1000000), (1000), (1)) w(width)
                         WHERE (w.width = 0) = (d.at IS NULL)) x
                 GROUP BY 1, 2 HAVING sum(x.nodes) <> 0) a
          FULL JOIN (SELECT 0::bigint AS width, '-infinity'::timestamptz AS at, count(*) AS nodes
                       FROM modelmine.nodes HAVING count(*) > 0
                     UNION ALL
                     SELECT w.width, CASE w.width WHEN 1000000 THEN pg_catalog.date_trunc('second', n.last_seen)
                                                  WHEN 1000 THEN pg_catalog.date_trunc('milliseconds', n.last_seen)
                                                  ELSE n.last_seen END, count(*)
                       FROM modelmine.nodes n, (VALUES (1000000::bigint), (1000), (1)) w(width)
                      WHERE n.last_seen IS NOT NULL GROUP BY 1, 2) b
            ON a.width = b.width AND a.at = b.at
         WHERE a.nodes IS DISTINCT FROM b.nodes
        UNION ALL
        -- What network_stats() reports from them equals the recount of the OFFLINE rule of _node_status.
        SELECT 'nodes_online_match_nodes',
               pg_catalog.format('network_stats says %s online of %s, recount %s of %s',
                                 c.online, c.total, r.online, r.total)
          FROM modelmine._node_counts() c,
               (SELECT count(*) FILTER (WHERE n.last_seen >= pg_catalog.now() - pg_catalog.make_interval(
                           secs => (SELECT st.value FROM modelmine.settings st
                                     WHERE st.name = 'offline_after_seconds'))) AS online,
                       count(*) AS total
                  FROM modelmine.nodes n) r
         WHERE c.online <> r.online OR c.total <> r.total
        UNION ALL
        -- Every statistics delta can be folded: no folded count would leave bigint (a fold that fails is
        -- skipped at commit with a WARNING, and the deltas wait; this says why).
        SELECT 'stats_deltas_foldable',
               pg_catalog.format('%s %s: folding would make %s', f.what, f.status, f.detail)
          FROM (SELECT pg_catalog.format('month %s', d.month) AS what, d.status,
                       pg_catalog.format('jobs %s and accuracy_n %s', COALESCE(s.jobs, 0) + d.jobs,
                                         COALESCE(s.accuracy_n, 0) + d.acc_n) AS detail,
                       COALESCE(s.jobs, 0) + d.jobs AS jobs, COALESCE(s.accuracy_n, 0) + d.acc_n AS acc_n
                  FROM (SELECT month, status, sum(jobs)::numeric AS jobs, sum(accuracy_n)::numeric AS acc_n
                          FROM modelmine.job_stat_deltas GROUP BY 1, 2) d
                  LEFT JOIN modelmine.job_stats s ON s.month = d.month AND s.status = d.status
                UNION ALL
                SELECT pg_catalog.format('user %s', d.user_id), d.status,
                       pg_catalog.format('jobs %s', COALESCE(s.jobs, 0) + d.jobs),
                       COALESCE(s.jobs, 0) + d.jobs, 0
                  FROM (SELECT user_id, status, sum(jobs)::numeric AS jobs
                          FROM modelmine.job_stat_deltas GROUP BY 1, 2) d
                  LEFT JOIN modelmine.user_job_stats s ON s.user_id = d.user_id AND s.status = d.status) f
         WHERE f.jobs NOT BETWEEN -9223372036854775808 AND 9223372036854775807
            OR f.acc_n NOT BETWEEN -9223372036854775808 AND 9223372036854775807
        UNION ALL
        -- The held account holds exactly the pending withdrawals, the withdrawn account the approved ones.
        SELECT 'held_equals_pending_withdrawals',
               pg_catalog.format('%s account holds %s, %s withdrawals add up to %s', h.kind, h.balance,
                                 CASE h.kind WHEN 'held' THEN 'PENDING' ELSE 'APPROVED' END, COALESCE(w.s, 0))
          FROM modelmine.account_balances h
          LEFT JOIN (SELECT status, sum(amount) AS s FROM modelmine.withdrawals GROUP BY 1) w
            ON w.status = CASE h.kind WHEN 'held' THEN 'PENDING' ELSE 'APPROVED' END
         WHERE h.kind IN ('held', 'withdrawn') AND h.balance <> COALESCE(w.s, 0)
    $$;
COMMENT ON FUNCTION modelmine._invariants_small() IS
    'The invariants over small tables: maintained node counts equal a recount, statistics deltas can be folded, the held and withdrawn accounts equal the pending and approved withdrawals.';
REVOKE ALL ON FUNCTION modelmine._invariants_small() FROM PUBLIC;

CREATE FUNCTION modelmine.check_invariants() RETURNS TABLE (invariant text, detail text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
        -- Each balance (folded plus unfolded) equals what the journal moved in minus what it moved out.
        SELECT 'balance_matches_journal',
               pg_catalog.format('account %s (%s): balance %s, journal says %s', a.id, a.kind, a.balance,
                                 COALESCE(cr.s, 0) - COALESCE(dr.s, 0))
          FROM modelmine.account_balances a
          LEFT JOIN (SELECT credit_account AS id, sum(amount) AS s FROM modelmine.journal GROUP BY 1) cr ON cr.id = a.id
          LEFT JOIN (SELECT debit_account AS id, sum(amount) AS s FROM modelmine.journal GROUP BY 1) dr ON dr.id = a.id
         WHERE a.balance <> COALESCE(cr.s, 0) - COALESCE(dr.s, 0)
        UNION ALL
        -- Only the issuance account may go negative.
        SELECT 'no_negative_balance', pg_catalog.format('account %s (%s) has %s', a.id, a.kind, a.balance)
          FROM modelmine.account_balances a WHERE a.balance < 0 AND a.kind <> 'issuance'
        UNION ALL
        -- Every appended credit or debit belongs to an account (else no fold would ever take it).
        SELECT 'deltas_have_accounts',
               pg_catalog.format('%s unfolded tokens for account %s, which does not exist', sum(d.amount), d.account_id)
          FROM modelmine.account_deltas d LEFT JOIN modelmine.accounts a ON a.id = d.account_id
         WHERE a.id IS NULL GROUP BY d.account_id
        UNION ALL
        SELECT 'deltas_have_nodes',
               pg_catalog.format('%s unfolded lost leases for node %s, which does not exist', sum(d.jobs_failed), d.node_id)
          FROM modelmine.node_deltas d LEFT JOIN modelmine.nodes n ON n.id = d.node_id
         WHERE n.id IS NULL GROUP BY d.node_id
        UNION ALL
        -- Total supply (every balance but issuance) equals what was issued.
        SELECT 'supply_equals_issued', pg_catalog.format('supply %s, issued %s', sup.s, -iss.balance)
          FROM (SELECT COALESCE(sum(balance), 0) AS s FROM modelmine.account_balances WHERE kind <> 'issuance') sup,
               modelmine.account_balances iss
         WHERE iss.kind = 'issuance' AND sup.s <> -iss.balance
        UNION ALL
        -- Each escrow shard holds exactly the stakes of its open jobs.
        SELECT 'escrow_equals_open_stakes',
               pg_catalog.format('escrow shard %s holds %s, open stakes %s', e.shard, e.balance, COALESCE(o.s, 0))
          FROM modelmine.account_balances e
          LEFT JOIN (SELECT id % 16 AS shard, sum(stake) AS s FROM modelmine.jobs
                      WHERE status IN ('PENDING', 'RUNNING') GROUP BY 1) o ON o.shard = e.shard
         WHERE e.kind = 'escrow' AND e.balance <> COALESCE(o.s, 0)
        UNION ALL
        -- Each job was staked once and settled at most once, the way its status says.
        SELECT 'job_settled_once',
               pg_catalog.format('job %s (%s, stake %s): staked %s, refunded %s, paid out %s', j.id, j.status,
                                 j.stake, COALESCE(m.staked, 0), COALESCE(m.refunded, 0), COALESCE(m.paid, 0))
          FROM modelmine.jobs j
          LEFT JOIN (SELECT job_id,
                            sum(amount) FILTER (WHERE reason = 'stake') AS staked,
                            sum(amount) FILTER (WHERE reason = 'refund') AS refunded,
                            sum(amount) FILTER (WHERE reason IN ('reward', 'fee')) AS paid
                       FROM modelmine.journal WHERE job_id IS NOT NULL GROUP BY job_id) m ON m.job_id = j.id
         WHERE COALESCE(m.staked, 0) <> j.stake
            OR COALESCE(m.refunded, 0) <> CASE WHEN j.status IN ('FAILED', 'CANCELED') THEN j.stake ELSE 0 END
            OR COALESCE(m.paid, 0) <> CASE WHEN j.status = 'COMPLETED' THEN j.stake ELSE 0 END
        UNION ALL
        -- What job_replicas says each node was paid for a job is what the journal paid it (so no rejected
        -- result was paid: a DISSENT verdict carries no reward).
        SELECT 'replicas_paid_as_journal',
               pg_catalog.format('job %s, node %s: replicas record %s paid, the journal %s', r.job_id, r.node_id,
                                 r.s, COALESCE(p.s, 0))
          FROM (SELECT x.job_id, x.node_id, a.id AS account, sum(x.reward) AS s
                  FROM modelmine.job_replicas x JOIN modelmine.accounts a ON a.node_id = x.node_id
                 GROUP BY 1, 2, 3) r
          LEFT JOIN (SELECT job_id, credit_account, sum(amount) AS s FROM modelmine.journal
                      WHERE reason = 'reward' GROUP BY 1, 2) p ON p.job_id = r.job_id AND p.credit_account = r.account
         WHERE r.s <> COALESCE(p.s, 0)
        UNION ALL
        -- A finished job holds no live replica, and an open one no more than it wants.
        SELECT 'replicas_match_jobs',
               pg_catalog.format('job %s (%s) has %s live replicas, %s submitted, %s open of %s wanted', j.id, j.status,
                                 c.live, c.submitted, j.open_replicas, j.replicas_wanted)
          FROM modelmine.jobs j
          JOIN (SELECT job_id, count(*) FILTER (WHERE status = 'RUNNING') AS live,
                       count(*) FILTER (WHERE status = 'SUBMITTED') AS submitted
                  FROM modelmine.job_replicas GROUP BY 1) c ON c.job_id = j.id
         WHERE (j.status NOT IN ('PENDING', 'RUNNING') AND c.live > 0)
            OR (j.status IN ('PENDING', 'RUNNING') AND c.live + c.submitted + j.open_replicas <> j.replicas_wanted)
        UNION ALL
        -- Each completed job is recorded once in the ledger (sealed or still queued), and nothing else is.
        SELECT 'ledger_records_completed_jobs',
               pg_catalog.format('job %s (%s) has %s ledger records', COALESCE(j.id, r.job_id),
                                 COALESCE(j.status::text, 'no such job'), COALESCE(r.n, 0))
          FROM (SELECT job_id, count(*) AS n
                  FROM (SELECT job_id FROM modelmine.ledger WHERE job_id IS NOT NULL
                        UNION ALL SELECT job_id FROM modelmine.ledger_queue) x GROUP BY job_id) r
          -- a plain hash full join: an IN (...) filter here became a nested rescan at 1M jobs
          FULL JOIN (SELECT id, status FROM modelmine.jobs) j ON r.job_id = j.id
         WHERE (j.status = 'COMPLETED' OR r.job_id IS NOT NULL)
           AND (j.id IS NULL OR COALESCE(r.n, 0) <> CASE WHEN j.status = 'COMPLETED' THEN 1 ELSE 0 END)
        UNION ALL
        -- The maintained statistics (folded plus pending deltas) equal a recount of the jobs.
        SELECT 'job_stats_match_jobs',
               pg_catalog.format('%s %s: statistics say %s jobs / %s staked, recount %s / %s',
                                 COALESCE(a.month, b.month), COALESCE(a.status, b.status),
                                 COALESCE(a.jobs, 0), COALESCE(a.stake, 0), COALESCE(b.jobs, 0), COALESCE(b.stake, 0))
          FROM (SELECT x.month, x.status, sum(x.jobs) AS jobs, sum(x.stake) AS stake,
                       sum(x.accuracy_n) AS acc_n, sum(x.accuracy_sum) AS acc_sum
                  FROM (SELECT month, status, jobs, stake, accuracy_n, accuracy_sum FROM modelmine.job_stats
                        UNION ALL SELECT month, status, jobs, stake, accuracy_n, accuracy_sum
                                    FROM modelmine.job_stat_deltas) x
                 GROUP BY 1, 2 HAVING sum(x.jobs) <> 0 OR sum(x.stake) <> 0 OR sum(x.accuracy_n) <> 0) a
          FULL JOIN (SELECT pg_catalog.date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS month, status,
                            count(*) AS jobs, sum(stake) AS stake,
                            count(*) FILTER (WHERE status = 'COMPLETED'
                                               AND pg_catalog.jsonb_typeof(result -> 'accuracy') = 'number') AS acc_n,
                            -- below 1e-300 a double underflows: complete_job counts such an accuracy as 0
                            COALESCE(sum(CASE WHEN (result -> 'accuracy')::numeric < 1e-300 THEN 0
                                              ELSE (result -> 'accuracy')::numeric::float8 END)
                                         FILTER (WHERE status = 'COMPLETED'
                                                   AND pg_catalog.jsonb_typeof(result -> 'accuracy') = 'number'), 0)
                                AS acc_sum
                       FROM modelmine.jobs GROUP BY 1, 2) b
            ON a.month = b.month AND a.status = b.status
         WHERE a.jobs IS DISTINCT FROM b.jobs OR a.stake IS DISTINCT FROM b.stake
            OR COALESCE(a.acc_n, 0) <> COALESCE(b.acc_n, 0)
            OR abs(COALESCE(a.acc_sum, 0) - COALESCE(b.acc_sum, 0)) > 1e-6 * GREATEST(1, COALESCE(b.acc_n, 0))
        UNION ALL
        -- The per-user statistics behind dashboard() (folded plus pending deltas) equal a recount too.
        SELECT 'user_job_stats_match_jobs',
               pg_catalog.format('user %s %s: statistics say %s jobs / %s staked, recount %s / %s',
                                 COALESCE(a.user_id, b.user_id), COALESCE(a.status, b.status),
                                 COALESCE(a.jobs, 0), COALESCE(a.stake, 0), COALESCE(b.jobs, 0), COALESCE(b.stake, 0))
          FROM (SELECT x.user_id, x.status, sum(x.jobs) AS jobs, sum(x.stake) AS stake
                  FROM (SELECT user_id, status, jobs, stake FROM modelmine.user_job_stats
                        UNION ALL SELECT user_id, status, jobs, stake FROM modelmine.job_stat_deltas) x
                 GROUP BY 1, 2 HAVING sum(x.jobs) <> 0 OR sum(x.stake) <> 0) a
          FULL JOIN (SELECT user_id, status, count(*) AS jobs, sum(stake) AS stake FROM modelmine.jobs GROUP BY 1, 2) b
            ON a.user_id = b.user_id AND a.status = b.status
         WHERE a.jobs IS DISTINCT FROM b.jobs OR a.stake IS DISTINCT FROM b.stake
        UNION ALL
        -- The maintained node counts, the foldable deltas and the held and withdrawn accounts (small
        -- tables, checked whole by the incremental check too).
        SELECT i.invariant, i.detail FROM modelmine._invariants_small() i
        UNION ALL
        -- Each user's withdrawals were held once each, and the rejected ones released once each.
        SELECT 'withdrawals_match_journal',
               pg_catalog.format('user %s: withdrawals %s, rejected %s; journal held %s, released %s',
                                 COALESCE(w.user_id, m.user_id), COALESCE(w.requested, 0), COALESCE(w.rejected, 0),
                                 COALESCE(m.held, 0), COALESCE(m.released, 0))
          FROM (SELECT user_id, sum(amount) AS requested,
                       COALESCE(sum(amount) FILTER (WHERE status = 'REJECTED'), 0) AS rejected
                  FROM modelmine.withdrawals GROUP BY 1) w
          FULL JOIN (SELECT a.user_id,
                            COALESCE(sum(j.amount) FILTER (WHERE j.reason = 'withdrawal_hold'), 0) AS held,
                            COALESCE(sum(j.amount) FILTER (WHERE j.reason = 'withdrawal_release'), 0) AS released
                       FROM modelmine.journal j
                       JOIN modelmine.accounts a
                         ON a.id = CASE WHEN j.reason = 'withdrawal_hold' THEN j.debit_account ELSE j.credit_account END
                      WHERE j.reason IN ('withdrawal_hold', 'withdrawal_release') GROUP BY 1) m ON m.user_id = w.user_id
         WHERE COALESCE(w.requested, 0) <> COALESCE(m.held, 0) OR COALESCE(w.rejected, 0) <> COALESCE(m.released, 0)
        UNION ALL
        -- Fee distributions paid what their rows say, and nothing else left the fee shards for the nodes.
        SELECT 'fees_distributed_as_recorded',
               pg_catalog.format('fee_distributions say %s paid, the journal %s', f.s, j.s)
          FROM (SELECT COALESCE(sum(paid), 0) AS s FROM modelmine.fee_distributions) f,
               (SELECT COALESCE(sum(amount), 0) AS s FROM modelmine.journal WHERE reason = 'fee_distribution') j
         WHERE f.s <> j.s
    $$;
COMMENT ON FUNCTION modelmine.check_invariants() IS
    'Returns every violated bookkeeping invariant (empty means healthy): balances (folded plus unfolded) match the journal, no negative balance but issuance, every unfolded delta belongs to an account or node, supply equals issued, escrow equals open stakes, every job staked once and settled at most once, every completed job recorded once in the ledger, maintained job statistics (per month and per user) equal a recount and can all be folded, the maintained node counts (every bucket, and nodes online and registered) equal a recount, the held and withdrawn accounts equal the pending and approved withdrawals, each withdrawal held and released as its status says, fee distributions paid what they record.';
REVOKE ALL ON FUNCTION modelmine.check_invariants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.check_invariants() TO modelmine_admin;

-- Incremental invariant checks (issue 20).  check_invariants() recounts everything: minutes at 10M
-- jobs.  check_invariants_incremental() checks what changed since its checkpoint against bases that
-- were recounted once: journal sums up to a journal id, and the statistics of the jobs that had
-- finished by then (a finished job's status, stake, owner and creation time never change: the
-- transition guard).  A checkpoint is taken only after every transaction that could still write an
-- id below it has ended (_wait_for_transactions), so nothing appears behind it later; it advances
-- only while nothing is found, so a violation keeps being reported until it is repaired and a full
-- run (full => true) starts a new chain.  None of these tables is dumped: after a restore the first
-- run is a full one.
CREATE TABLE modelmine.invariant_checkpoint (
    only_row      boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    journal_id    bigint NOT NULL,       -- journal rows up to this id are final and summed in the bases
    job_id        bigint NOT NULL,       -- jobs up to this id were final (committed or gone) when taken
    ledger_height bigint NOT NULL,       -- ledger blocks up to this height were checked
    fees_paid     numeric NOT NULL,      -- fee_distribution journal rows up to journal_id
    full_at       timestamptz NOT NULL,  -- the full check this chain of checkpoints started from
    taken_at      timestamptz NOT NULL
);
COMMENT ON TABLE modelmine.invariant_checkpoint IS
    'check_invariants_incremental(): where the last run left off (one row); the bases below are as of it.';
CREATE TABLE modelmine.invariant_account_nets (
    account_id bigint PRIMARY KEY,
    net        numeric NOT NULL
);
COMMENT ON TABLE modelmine.invariant_account_nets IS
    'Per account: journal credits minus debits up to the checkpoint''s journal_id.';
CREATE TABLE modelmine.invariant_withdrawal_sums (
    user_id  bigint PRIMARY KEY,
    held     numeric NOT NULL,
    released numeric NOT NULL
);
COMMENT ON TABLE modelmine.invariant_withdrawal_sums IS
    'Per user: withdrawal_hold and withdrawal_release journal sums up to the checkpoint''s journal_id.';
CREATE TABLE modelmine.invariant_job_base (
    month   date NOT NULL,
    status  modelmine.job_status NOT NULL,
    jobs    bigint NOT NULL,
    stake   numeric NOT NULL,
    acc_n   bigint NOT NULL,
    acc_sum double precision NOT NULL,
    PRIMARY KEY (month, status)
);
COMMENT ON TABLE modelmine.invariant_job_base IS
    'Recount per month and status of the jobs that had finished by the checkpoint (they never change again).';
CREATE TABLE modelmine.invariant_user_base (
    user_id bigint NOT NULL,
    status  modelmine.job_status NOT NULL,
    jobs    bigint NOT NULL,
    stake   numeric NOT NULL,
    PRIMARY KEY (user_id, status)
);
COMMENT ON TABLE modelmine.invariant_user_base IS
    'Recount per user and status of the jobs that had finished by the checkpoint.';
CREATE TABLE modelmine.invariant_open_jobs (
    job_id bigint PRIMARY KEY
);
COMMENT ON TABLE modelmine.invariant_open_jobs IS
    'Jobs up to the checkpoint''s job_id that had not finished by then: recounted on every run until they finish.';

CREATE FUNCTION modelmine._wait_for_transactions() RETURNS void
    LANGUAGE c AS 'MODULE_PATHNAME', 'mm_wait_for_transactions';
COMMENT ON FUNCTION modelmine._wait_for_transactions() IS
    'Waits until every transaction open in this database when called (but the caller''s) has ended; lock_timeout bounds the wait.';
REVOKE ALL ON FUNCTION modelmine._wait_for_transactions() FROM PUBLIC;

-- What a job adds to the statistics: its month (UTC) and, when COMPLETED with a numeric accuracy, one
-- accuracy (below 1e-300 a double underflows: complete_job counts such an accuracy as 0).  Inlined.
CREATE FUNCTION modelmine._job_stat_part(created_at timestamptz, status modelmine.job_status, result jsonb)
    RETURNS TABLE (month date, acc_n integer, acc_sum double precision)
    LANGUAGE sql IMMUTABLE ROWS 1
    AS $$
        SELECT pg_catalog.date_trunc('month', created_at AT TIME ZONE 'UTC')::date, x.n,
               CASE WHEN x.n = 0 THEN 0
                    WHEN (result -> 'accuracy')::numeric < 1e-300 THEN 0
                    ELSE (result -> 'accuracy')::numeric::float8 END
          FROM (SELECT CASE WHEN status = 'COMPLETED' AND pg_catalog.jsonb_typeof(result -> 'accuracy') = 'number'
                            THEN 1 ELSE 0 END AS n) x
    $$;
COMMENT ON FUNCTION modelmine._job_stat_part(timestamptz, modelmine.job_status, jsonb) IS
    'A job''s place in the statistics: its month (UTC), and 1 and its accuracy when COMPLETED with a numeric one.';
REVOKE ALL ON FUNCTION modelmine._job_stat_part(timestamptz, modelmine.job_status, jsonb) FROM PUBLIC;

-- Full run: check_invariants(); when it finds nothing, new bases from scratch.  The open jobs are
-- taken first, so a job that finishes meanwhile is recounted from the open list, never lost between
-- the list and the bases.
CREATE FUNCTION modelmine._invariant_checkpoint_full(journal_id bigint, job_id bigint)
    RETURNS SETOF modelmine.invariant_checkpoint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    taken timestamptz := pg_catalog.clock_timestamp();
BEGIN
    TRUNCATE modelmine.invariant_checkpoint, modelmine.invariant_account_nets, modelmine.invariant_withdrawal_sums,
             modelmine.invariant_job_base, modelmine.invariant_user_base, modelmine.invariant_open_jobs;
    INSERT INTO modelmine.invariant_open_jobs
    SELECT j.id FROM modelmine.jobs j WHERE j.id <= _invariant_checkpoint_full.job_id AND j.status IN ('PENDING', 'RUNNING');
    INSERT INTO modelmine.invariant_job_base
    SELECT p.month, j.status, count(*), sum(j.stake), sum(p.acc_n), sum(p.acc_sum)
      FROM modelmine.jobs j CROSS JOIN LATERAL modelmine._job_stat_part(j.created_at, j.status, j.result) p
     WHERE j.id <= _invariant_checkpoint_full.job_id AND j.status NOT IN ('PENDING', 'RUNNING')
       AND NOT EXISTS (SELECT FROM modelmine.invariant_open_jobs o WHERE o.job_id = j.id)
     GROUP BY 1, 2;
    INSERT INTO modelmine.invariant_user_base
    SELECT j.user_id, j.status, count(*), sum(j.stake)
      FROM modelmine.jobs j
     WHERE j.id <= _invariant_checkpoint_full.job_id AND j.status NOT IN ('PENDING', 'RUNNING')
       AND NOT EXISTS (SELECT FROM modelmine.invariant_open_jobs o WHERE o.job_id = j.id)
     GROUP BY 1, 2;
    INSERT INTO modelmine.invariant_account_nets
    SELECT v.account, sum(v.amount)
      FROM modelmine.journal j
     CROSS JOIN LATERAL (VALUES (j.credit_account, j.amount), (j.debit_account, -j.amount)) v(account, amount)
     WHERE j.id <= _invariant_checkpoint_full.journal_id GROUP BY 1;
    INSERT INTO modelmine.invariant_withdrawal_sums
    SELECT a.user_id, COALESCE(sum(j.amount) FILTER (WHERE j.reason = 'withdrawal_hold'), 0),
           COALESCE(sum(j.amount) FILTER (WHERE j.reason = 'withdrawal_release'), 0)
      FROM modelmine.journal j
      JOIN modelmine.accounts a ON a.id = CASE WHEN j.reason = 'withdrawal_hold' THEN j.debit_account ELSE j.credit_account END
     WHERE j.id <= _invariant_checkpoint_full.journal_id AND j.reason IN ('withdrawal_hold', 'withdrawal_release')
     GROUP BY 1;
    RETURN QUERY
    INSERT INTO modelmine.invariant_checkpoint
    SELECT true, _invariant_checkpoint_full.journal_id, _invariant_checkpoint_full.job_id,
           (SELECT COALESCE(max(l.height), 0) FROM modelmine.ledger l),
           (SELECT COALESCE(sum(j.amount), 0) FROM modelmine.journal j
             WHERE j.reason = 'fee_distribution' AND j.id <= _invariant_checkpoint_full.journal_id),
           taken, taken
    RETURNING *;
END
$$;
COMMENT ON FUNCTION modelmine._invariant_checkpoint_full(bigint, bigint) IS
    'check_invariants_incremental(): new bases from scratch up to a journal id and a job id (after a clean full check).';
REVOKE ALL ON FUNCTION modelmine._invariant_checkpoint_full(bigint, bigint) FROM PUBLIC;

-- What changed since the checkpoint, checked in one statement (one snapshot): the jobs in play are
-- those open at the checkpoint, newer than it, or named by journal rows, ledger blocks or queued
-- entries newer than it.  The same invariants as check_invariants(), with the same names and details.
CREATE FUNCTION modelmine._invariants_since(cp modelmine.invariant_checkpoint)
    RETURNS TABLE (invariant text, detail text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
    AS $$
BEGIN
    -- (JIT compiled this query's hundred expressions for 4 s at 1M jobs; it runs in under one)
    -- planned with the checkpoint's values ($1 journal id, $2 job id, $3 ledger height, $4 fees), so the
    -- planner sees how little lies past it and reads it by index
    RETURN QUERY EXECUTE $q$
        WITH new_journal AS MATERIALIZED (
            SELECT * FROM modelmine.journal j WHERE j.id > $1),
        -- jobs whose statistics are not in the bases, as they are now: the open ones, the newer ones, and
        -- those open at the checkpoint that have finished since (their settlement wrote journal rows; one
        -- that finished without any is missing here, and the statistics show it)
        recount AS MATERIALIZED (   -- three disjoint parts, each read by its own index
            SELECT j.id, j.user_id, j.status, j.stake, j.result, j.created_at
              FROM modelmine.jobs j WHERE j.status IN ('PENDING', 'RUNNING')
            UNION ALL
            SELECT j.id, j.user_id, j.status, j.stake, j.result, j.created_at
              FROM modelmine.jobs j WHERE j.id > $2 AND j.status NOT IN ('PENDING', 'RUNNING')
            UNION ALL
            SELECT j.id, j.user_id, j.status, j.stake, j.result, j.created_at
              FROM (SELECT DISTINCT n.job_id FROM new_journal n) n
              JOIN modelmine.invariant_open_jobs o ON o.job_id = n.job_id
              JOIN modelmine.jobs j ON j.id = o.job_id
             WHERE j.id <= $2 AND j.status NOT IN ('PENDING', 'RUNNING')),
        -- jobs whose money, replicas or ledger record may have changed: named by a newer journal row,
        -- ledger block or queued entry, or newer than the checkpoint (an open job is checked again when
        -- its money moves)
        touched AS MATERIALIZED (
            SELECT n.job_id AS id FROM new_journal n WHERE n.job_id IS NOT NULL
            UNION SELECT x.id FROM modelmine.jobs x WHERE x.id > $2
            UNION SELECT l.job_id FROM modelmine.ledger l WHERE l.height > $3 AND l.job_id IS NOT NULL
            UNION SELECT q.job_id FROM modelmine.ledger_queue q),
        balances AS MATERIALIZED (   -- account_balances, summing the deltas in one pass
            SELECT a.id, a.kind, a.shard, a.balance + COALESCE(d.s, 0) AS balance
              FROM modelmine.accounts a
              LEFT JOIN (SELECT x.account_id, sum(x.amount) AS s FROM modelmine.account_deltas x GROUP BY 1) d
                ON d.account_id = a.id)
        -- Each balance equals its journal sum up to the checkpoint plus the journal rows after it.
        SELECT 'balance_matches_journal',
               pg_catalog.format('account %s (%s): balance %s, journal says %s', a.id, a.kind, a.balance,
                                 COALESCE(b.net, 0) + COALESCE(n.net, 0))
          FROM balances a
          LEFT JOIN modelmine.invariant_account_nets b ON b.account_id = a.id
          LEFT JOIN (SELECT v.account, sum(v.amount) AS net
                       FROM new_journal j
                      CROSS JOIN LATERAL (VALUES (j.credit_account, j.amount), (j.debit_account, -j.amount)) v(account, amount)
                      GROUP BY 1) n ON n.account = a.id
         WHERE a.balance <> COALESCE(b.net, 0) + COALESCE(n.net, 0)
        UNION ALL
        SELECT 'balance_matches_journal', pg_catalog.format('account %s has journal rows but does not exist', b.account_id)
          FROM modelmine.invariant_account_nets b WHERE b.net <> 0 AND NOT EXISTS (SELECT FROM balances a WHERE a.id = b.account_id)
        UNION ALL
        SELECT 'no_negative_balance', pg_catalog.format('account %s (%s) has %s', a.id, a.kind, a.balance)
          FROM balances a WHERE a.balance < 0 AND a.kind <> 'issuance'
        UNION ALL
        SELECT 'deltas_have_accounts',
               pg_catalog.format('%s unfolded tokens for account %s, which does not exist', sum(d.amount), d.account_id)
          FROM modelmine.account_deltas d LEFT JOIN modelmine.accounts a ON a.id = d.account_id
         WHERE a.id IS NULL GROUP BY d.account_id
        UNION ALL
        SELECT 'deltas_have_nodes',
               pg_catalog.format('%s unfolded lost leases for node %s, which does not exist', sum(d.jobs_failed), d.node_id)
          FROM modelmine.node_deltas d LEFT JOIN modelmine.nodes n ON n.id = d.node_id
         WHERE n.id IS NULL GROUP BY d.node_id
        UNION ALL
        SELECT 'supply_equals_issued', pg_catalog.format('supply %s, issued %s', sup.s, -iss.balance)
          FROM (SELECT COALESCE(sum(balance), 0) AS s FROM balances WHERE kind <> 'issuance') sup, balances iss
         WHERE iss.kind = 'issuance' AND sup.s <> -iss.balance
        UNION ALL
        SELECT 'escrow_equals_open_stakes',
               pg_catalog.format('escrow shard %s holds %s, open stakes %s', e.shard, e.balance, COALESCE(o.s, 0))
          FROM balances e
          LEFT JOIN (SELECT id % 16 AS shard, sum(stake) AS s FROM modelmine.jobs
                      WHERE status IN ('PENDING', 'RUNNING') GROUP BY 1) o ON o.shard = e.shard
         WHERE e.kind = 'escrow' AND e.balance <> COALESCE(o.s, 0)
        UNION ALL
        SELECT 'job_settled_once',
               pg_catalog.format('job %s (%s, stake %s): staked %s, refunded %s, paid out %s', j.id, j.status,
                                 j.stake, COALESCE(m.staked, 0), COALESCE(m.refunded, 0), COALESCE(m.paid, 0))
          FROM touched t JOIN modelmine.jobs j ON j.id = t.id
          LEFT JOIN LATERAL (SELECT sum(x.amount) FILTER (WHERE x.reason = 'stake') AS staked,
                                    sum(x.amount) FILTER (WHERE x.reason = 'refund') AS refunded,
                                    sum(x.amount) FILTER (WHERE x.reason IN ('reward', 'fee')) AS paid
                               FROM modelmine.journal x WHERE x.job_id = j.id) m ON true
         WHERE COALESCE(m.staked, 0) <> j.stake
            OR COALESCE(m.refunded, 0) <> CASE WHEN j.status IN ('FAILED', 'CANCELED') THEN j.stake ELSE 0 END
            OR COALESCE(m.paid, 0) <> CASE WHEN j.status = 'COMPLETED' THEN j.stake ELSE 0 END
        UNION ALL
        SELECT 'job_settled_once', pg_catalog.format('journal row %s names job %s, which does not exist', n.id, n.job_id)
          FROM new_journal n WHERE n.job_id IS NOT NULL AND NOT EXISTS (SELECT FROM modelmine.jobs j WHERE j.id = n.job_id)
        UNION ALL
        SELECT 'replicas_paid_as_journal',
               pg_catalog.format('job %s, node %s: replicas record %s paid, the journal %s', r.job_id, r.node_id,
                                 r.s, COALESCE(p.s, 0))
          FROM (SELECT x.job_id, x.node_id, a.id AS account, sum(x.reward) AS s
                  FROM touched t JOIN modelmine.job_replicas x ON x.job_id = t.id
                  JOIN modelmine.accounts a ON a.node_id = x.node_id
                 GROUP BY 1, 2, 3) r
          LEFT JOIN LATERAL (SELECT sum(y.amount) AS s FROM modelmine.journal y
                              WHERE y.job_id = r.job_id AND y.reason = 'reward' AND y.credit_account = r.account) p ON true
         WHERE r.s <> COALESCE(p.s, 0)
        UNION ALL
        SELECT 'replicas_match_jobs',
               pg_catalog.format('job %s (%s) has %s live replicas, %s submitted, %s open of %s wanted', j.id, j.status,
                                 c.live, c.submitted, j.open_replicas, j.replicas_wanted)
          FROM touched t JOIN modelmine.jobs j ON j.id = t.id
          JOIN LATERAL (SELECT count(*) FILTER (WHERE x.status = 'RUNNING') AS live,
                               count(*) FILTER (WHERE x.status = 'SUBMITTED') AS submitted, count(*) AS n
                          FROM modelmine.job_replicas x WHERE x.job_id = j.id) c ON c.n > 0
         WHERE (j.status NOT IN ('PENDING', 'RUNNING') AND c.live > 0)
            OR (j.status IN ('PENDING', 'RUNNING') AND c.live + c.submitted + j.open_replicas <> j.replicas_wanted)
        UNION ALL
        SELECT 'ledger_records_completed_jobs',
               pg_catalog.format('job %s (%s) has %s ledger records', t.id, COALESCE(j.status::text, 'no such job'),
                                 (SELECT count(*) FROM modelmine.ledger l WHERE l.job_id = t.id)
                                 + (SELECT count(*) FROM modelmine.ledger_queue q WHERE q.job_id = t.id))
          FROM touched t LEFT JOIN modelmine.jobs j ON j.id = t.id
         WHERE (SELECT count(*) FROM modelmine.ledger l WHERE l.job_id = t.id)
               + (SELECT count(*) FROM modelmine.ledger_queue q WHERE q.job_id = t.id)
               <> CASE WHEN j.status = 'COMPLETED' THEN 1 ELSE 0 END
        UNION ALL
        -- statistics: the maintained figures (folded plus deltas) against the base plus the jobs in play
        SELECT 'job_stats_match_jobs',
               pg_catalog.format('%s %s: statistics say %s jobs / %s staked, recount %s / %s',
                                 COALESCE(a.month, b.month), COALESCE(a.status, b.status),
                                 COALESCE(a.jobs, 0), COALESCE(a.stake, 0), COALESCE(b.jobs, 0), COALESCE(b.stake, 0))
          FROM (SELECT x.month, x.status, sum(x.jobs) AS jobs, sum(x.stake) AS stake,
                       sum(x.accuracy_n) AS acc_n, sum(x.accuracy_sum) AS acc_sum
                  FROM (SELECT month, status, jobs, stake, accuracy_n, accuracy_sum FROM modelmine.job_stats
                        UNION ALL SELECT month, status, jobs, stake, accuracy_n, accuracy_sum
                                    FROM modelmine.job_stat_deltas) x
                 GROUP BY 1, 2 HAVING sum(x.jobs) <> 0 OR sum(x.stake) <> 0 OR sum(x.accuracy_n) <> 0) a
          FULL JOIN (SELECT y.month, y.status, sum(y.jobs) AS jobs, sum(y.stake) AS stake, sum(y.acc_n) AS acc_n,
                            sum(y.acc_sum) AS acc_sum
                       FROM (SELECT month, status, jobs, stake, acc_n, acc_sum FROM modelmine.invariant_job_base
                             UNION ALL
                             SELECT p.month, r.status, 1, r.stake, p.acc_n, p.acc_sum
                               FROM recount r CROSS JOIN LATERAL modelmine._job_stat_part(r.created_at, r.status, r.result) p) y
                      GROUP BY 1, 2 HAVING sum(y.jobs) <> 0) b
            ON a.month = b.month AND a.status = b.status
         WHERE a.jobs IS DISTINCT FROM b.jobs OR a.stake IS DISTINCT FROM b.stake
            OR COALESCE(a.acc_n, 0) <> COALESCE(b.acc_n, 0)
            OR abs(COALESCE(a.acc_sum, 0) - COALESCE(b.acc_sum, 0)) > 1e-6 * GREATEST(1, COALESCE(b.acc_n, 0))
        UNION ALL
        -- per user: every user, against the base plus the jobs in play
        SELECT 'user_job_stats_match_jobs',
               pg_catalog.format('user %s %s: statistics say %s jobs / %s staked, recount %s / %s',
                                 COALESCE(a.user_id, b.user_id), COALESCE(a.status, b.status),
                                 COALESCE(a.jobs, 0), COALESCE(a.stake, 0), COALESCE(b.jobs, 0), COALESCE(b.stake, 0))
          FROM (SELECT x.user_id, x.status, sum(x.jobs) AS jobs, sum(x.stake) AS stake
                  FROM (SELECT s.user_id, s.status, s.jobs, s.stake FROM modelmine.user_job_stats s
                        UNION ALL SELECT d.user_id, d.status, d.jobs, d.stake FROM modelmine.job_stat_deltas d) x
                 GROUP BY 1, 2 HAVING sum(x.jobs) <> 0 OR sum(x.stake) <> 0) a
          FULL JOIN (SELECT y.user_id, y.status, sum(y.jobs) AS jobs, sum(y.stake) AS stake
                       FROM (SELECT u.user_id, u.status, u.jobs, u.stake FROM modelmine.invariant_user_base u
                             UNION ALL SELECT r.user_id, r.status, 1, r.stake FROM recount r) y
                      GROUP BY 1, 2 HAVING sum(y.jobs) <> 0) b
            ON a.user_id = b.user_id AND a.status = b.status
         WHERE a.jobs IS DISTINCT FROM b.jobs OR a.stake IS DISTINCT FROM b.stake
        UNION ALL
        -- node counts, the foldable deltas and the withdrawals are small: checked whole, as the full check does
        SELECT i.invariant, i.detail FROM modelmine._invariants_small() i
        UNION ALL
        SELECT 'withdrawals_match_journal',
               pg_catalog.format('user %s: withdrawals %s, rejected %s; journal held %s, released %s',
                                 COALESCE(w.user_id, m.user_id), COALESCE(w.requested, 0), COALESCE(w.rejected, 0),
                                 COALESCE(m.held, 0), COALESCE(m.released, 0))
          FROM (SELECT user_id, sum(amount) AS requested,
                       COALESCE(sum(amount) FILTER (WHERE status = 'REJECTED'), 0) AS rejected
                  FROM modelmine.withdrawals GROUP BY 1) w
          FULL JOIN (SELECT z.user_id, sum(z.held) AS held, sum(z.released) AS released
                       FROM (SELECT s.user_id, s.held, s.released FROM modelmine.invariant_withdrawal_sums s
                             UNION ALL
                             SELECT a.user_id, CASE WHEN j.reason = 'withdrawal_hold' THEN j.amount ELSE 0 END,
                                    CASE WHEN j.reason = 'withdrawal_release' THEN j.amount ELSE 0 END
                               FROM new_journal j
                               JOIN modelmine.accounts a
                                 ON a.id = CASE WHEN j.reason = 'withdrawal_hold' THEN j.debit_account ELSE j.credit_account END
                              WHERE j.reason IN ('withdrawal_hold', 'withdrawal_release')) z
                      GROUP BY 1) m ON m.user_id = w.user_id
         WHERE COALESCE(w.requested, 0) <> COALESCE(m.held, 0) OR COALESCE(w.rejected, 0) <> COALESCE(m.released, 0)
        UNION ALL
        SELECT 'fees_distributed_as_recorded',
               pg_catalog.format('fee_distributions say %s paid, the journal %s', f.s, $4 + j.s)
          FROM (SELECT COALESCE(sum(paid), 0) AS s FROM modelmine.fee_distributions) f,
               (SELECT COALESCE(sum(amount), 0) AS s FROM new_journal WHERE reason = 'fee_distribution') j
         WHERE f.s <> $4 + j.s
    $q$ USING cp.journal_id, cp.job_id, cp.ledger_height, cp.fees_paid;
END
    $$;
COMMENT ON FUNCTION modelmine._invariants_since(modelmine.invariant_checkpoint) IS
    'check_invariants_incremental(): the invariants of check_invariants(), for what changed since the checkpoint, in one snapshot.';
REVOKE ALL ON FUNCTION modelmine._invariants_since(modelmine.invariant_checkpoint) FROM PUBLIC;

-- Advance after a clean run: journal rows up to the new id are final (waited for), so they join the
-- sums; jobs in play that have finished join the bases and leave the open list, in one statement.
CREATE FUNCTION modelmine._invariant_checkpoint_advance(cp modelmine.invariant_checkpoint, journal_id bigint,
                                                        job_id bigint)
    RETURNS SETOF modelmine.invariant_checkpoint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    INSERT INTO modelmine.invariant_account_nets AS b
    SELECT v.account, sum(v.amount)
      FROM modelmine.journal j
     CROSS JOIN LATERAL (VALUES (j.credit_account, j.amount), (j.debit_account, -j.amount)) v(account, amount)
     WHERE j.id > cp.journal_id AND j.id <= _invariant_checkpoint_advance.journal_id GROUP BY 1
    ON CONFLICT (account_id) DO UPDATE SET net = b.net + EXCLUDED.net;
    INSERT INTO modelmine.invariant_withdrawal_sums AS b
    SELECT a.user_id, COALESCE(sum(j.amount) FILTER (WHERE j.reason = 'withdrawal_hold'), 0),
           COALESCE(sum(j.amount) FILTER (WHERE j.reason = 'withdrawal_release'), 0)
      FROM modelmine.journal j
      JOIN modelmine.accounts a ON a.id = CASE WHEN j.reason = 'withdrawal_hold' THEN j.debit_account ELSE j.credit_account END
     WHERE j.id > cp.journal_id AND j.id <= _invariant_checkpoint_advance.journal_id
       AND j.reason IN ('withdrawal_hold', 'withdrawal_release')
     GROUP BY 1
    ON CONFLICT (user_id) DO UPDATE SET held = b.held + EXCLUDED.held, released = b.released + EXCLUDED.released;
    WITH play AS MATERIALIZED (
        SELECT j.id, j.user_id, j.status, j.stake, p.month, p.acc_n, p.acc_sum,
               j.status NOT IN ('PENDING', 'RUNNING') AS done
          FROM (SELECT x.id FROM modelmine.jobs x
                 WHERE x.id > cp.job_id AND x.id <= _invariant_checkpoint_advance.job_id
                UNION SELECT o.job_id FROM modelmine.invariant_open_jobs o) i
          JOIN modelmine.jobs j ON j.id = i.id
         CROSS JOIN LATERAL modelmine._job_stat_part(j.created_at, j.status, j.result) p),
    month_base AS (
        INSERT INTO modelmine.invariant_job_base AS b
        SELECT month, status, count(*), sum(stake), sum(acc_n), sum(acc_sum) FROM play WHERE done GROUP BY 1, 2
        ON CONFLICT (month, status) DO UPDATE
           SET jobs = b.jobs + EXCLUDED.jobs, stake = b.stake + EXCLUDED.stake, acc_n = b.acc_n + EXCLUDED.acc_n,
               acc_sum = b.acc_sum + EXCLUDED.acc_sum),
    user_base AS (
        INSERT INTO modelmine.invariant_user_base AS b
        SELECT user_id, status, count(*), sum(stake) FROM play WHERE done GROUP BY 1, 2
        ON CONFLICT (user_id, status) DO UPDATE SET jobs = b.jobs + EXCLUDED.jobs, stake = b.stake + EXCLUDED.stake),
    finished AS (
        DELETE FROM modelmine.invariant_open_jobs o USING play p WHERE o.job_id = p.id AND p.done)
    INSERT INTO modelmine.invariant_open_jobs   -- the newer ones still open (the others are listed)
    SELECT p.id FROM play p WHERE NOT p.done AND p.id > cp.job_id;
    RETURN QUERY
    UPDATE modelmine.invariant_checkpoint c
       SET journal_id = _invariant_checkpoint_advance.journal_id, job_id = _invariant_checkpoint_advance.job_id,
           ledger_height = (SELECT COALESCE(max(l.height), 0) FROM modelmine.ledger l),
           fees_paid = c.fees_paid + (SELECT COALESCE(sum(j.amount), 0) FROM modelmine.journal j
                                       WHERE j.reason = 'fee_distribution' AND j.id > cp.journal_id
                                         AND j.id <= _invariant_checkpoint_advance.journal_id),
           taken_at = pg_catalog.clock_timestamp()
    RETURNING c.*;
END
$$;
COMMENT ON FUNCTION modelmine._invariant_checkpoint_advance(modelmine.invariant_checkpoint, bigint, bigint) IS
    'check_invariants_incremental(): moves the bases from the checkpoint to a later journal id and job id (after a clean run).';
REVOKE ALL ON FUNCTION modelmine._invariant_checkpoint_advance(modelmine.invariant_checkpoint, bigint, bigint) FROM PUBLIC;

CREATE FUNCTION modelmine.check_invariants_incremental(full boolean DEFAULT false)
    RETURNS TABLE (invariant text, detail text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '60s'
    AS $$
DECLARE
    cp modelmine.invariant_checkpoint;
    journal_to bigint;
    job_to bigint;
    found_some boolean := false;
    run_full boolean := check_invariants_incremental.full;  -- FULL is a keyword to PL/pgSQL
BEGIN
    -- after the wait, the checks must see what the waited-for transactions committed
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'check_invariants_incremental() needs a READ COMMITTED transaction'
            USING ERRCODE = 'invalid_transaction_state',
            DETAIL = pg_catalog.format('This transaction is %s: its snapshot was taken before the check could wait for the others.',
                                       pg_catalog.upper(pg_catalog.current_setting('transaction_isolation'))),
            HINT = 'Call it in its own transaction, or use check_invariants().';
    END IF;
    BEGIN
        LOCK TABLE modelmine.invariant_checkpoint IN EXCLUSIVE MODE NOWAIT;
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'an invariant check is already running' USING ERRCODE = 'lock_not_available',
            DETAIL = 'check_invariants_incremental() runs one at a time.', HINT = 'Try again when it has finished.';
    END;
    SELECT * INTO cp FROM modelmine.invariant_checkpoint;
    IF NOT FOUND THEN
        run_full := true;
    END IF;
    -- every id handed out by now belongs to a transaction that has ended once the wait returns
    journal_to := COALESCE(pg_catalog.pg_sequence_last_value('modelmine.journal_id_seq'), 0);
    job_to := COALESCE(pg_catalog.pg_sequence_last_value('modelmine.jobs_id_seq'), 0);
    BEGIN
        PERFORM modelmine._wait_for_transactions();
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'a transaction stayed open for 60 s while the invariant check waited for it'
            USING ERRCODE = 'lock_not_available',
            DETAIL = 'A checkpoint is taken only when no transaction can still write below it; nothing was checked.',
            HINT = 'Find it in pg_stat_activity (state ''idle in transaction''), or run check_invariants().';
    END;
    IF run_full THEN
        FOR invariant, detail IN SELECT i.invariant, i.detail FROM modelmine.check_invariants() i LOOP
            found_some := true;
            RETURN NEXT;
        END LOOP;
        IF NOT found_some THEN
            PERFORM modelmine._invariant_checkpoint_full(journal_to, job_to);
        END IF;
        RETURN;
    END IF;
    FOR invariant, detail IN SELECT i.invariant, i.detail FROM modelmine._invariants_since(cp) i LOOP
        found_some := true;
        RETURN NEXT;
    END LOOP;
    IF NOT found_some THEN
        PERFORM modelmine._invariant_checkpoint_advance(cp, journal_to, job_to);
    END IF;
END
$$;
COMMENT ON FUNCTION modelmine.check_invariants_incremental(boolean) IS
    'Admin: the invariants of check_invariants() for what changed since the last clean run (seconds where the full check takes minutes); the first run, or full => true, is the full check and starts the bases.  Empty means healthy, and only then does the checkpoint advance.  Waits (at most 60 s) for transactions open when it starts.';
REVOKE ALL ON FUNCTION modelmine.check_invariants_incremental(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.check_invariants_incremental(boolean) TO modelmine_admin;

-------------------------------------------------------------------------------------------------------
-- Gateways (modelmine-api): the role a request runs as, transaction-scoped node bindings, the
-- heartbeat view, and the listings and reports the REST routes call.
-------------------------------------------------------------------------------------------------------
CREATE FUNCTION modelmine.request_role(headers text) RETURNS text
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_request_role';
COMMENT ON FUNCTION modelmine.request_role(text) IS
    'Gateway: the role to SET LOCAL for a request whose headers (JSON, lower-case names) are given: modelmine_anon without Authorization; modelmine_node for a node key (the node is bound for this transaction); modelmine_user or modelmine_admin for a user token, as the user''s row says. A bearer that does not verify raises 28000.';
REVOKE ALL ON FUNCTION modelmine.request_role(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.request_role(text) TO modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;

CREATE FUNCTION modelmine.authenticate_node_local(node_key text) RETURNS bigint
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_authenticate_node_local';
COMMENT ON FUNCTION modelmine.authenticate_node_local(text) IS
    'Binds this transaction (not the session) to the node whose key is given, for pooled connections and gateways; returns the node id.';
REVOKE ALL ON FUNCTION modelmine.authenticate_node_local(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.authenticate_node_local(text) TO modelmine_node;

CREATE FUNCTION modelmine.node_beats(since timestamptz DEFAULT NULL)
    RETURNS TABLE (node_id bigint, name text, status text, cpu_load real, memory_used_mb integer,
                   memory_total_mb integer, last_seen timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT n.id, n.name, modelmine._node_status(n.status, n.last_seen), n.cpu_load, n.memory_used_mb,
               n.memory_total_mb, n.last_seen
          FROM modelmine.nodes n
         WHERE n.last_seen > COALESCE(since, pg_catalog.now() - interval '1 minute')
         ORDER BY n.last_seen, n.id
         LIMIT 10000
    $$;
COMMENT ON FUNCTION modelmine.node_beats(timestamptz) IS
    'Nodes whose last heartbeat is later than since (default: the last minute), oldest first, at most 10000: a gateway polls it to show every heartbeat without a NOTIFY per heartbeat.';
REVOKE ALL ON FUNCTION modelmine.node_beats(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.node_beats(timestamptz) TO modelmine_anon, modelmine_user, modelmine_node, modelmine_admin;

CREATE FUNCTION modelmine.list_jobs(status text DEFAULT NULL, sort text DEFAULT 'created',
                                    descending boolean DEFAULT true, max_rows integer DEFAULT 50,
                                    skip integer DEFAULT 0, user_id bigint DEFAULT NULL)
    RETURNS SETOF modelmine.job_summary
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    me bigint := modelmine.current_user_id();
    admin boolean := (SELECT u.role = 'admin' FROM modelmine.users u WHERE u.id = me);
BEGIN
    IF list_jobs.user_id IS NOT NULL AND list_jobs.user_id <> me AND NOT admin THEN
        RAISE EXCEPTION 'only admins list other users'' jobs' USING ERRCODE = 'insufficient_privilege',
            DETAIL = pg_catalog.format('user_id %s is not you.', list_jobs.user_id),
            HINT = 'Leave user_id out to list your own jobs.';
    END IF;
    RETURN QUERY SELECT * FROM modelmine._list_jobs(
        CASE WHEN admin THEN list_jobs.user_id ELSE me END, status, sort, descending, max_rows, skip);
END
$$;
COMMENT ON FUNCTION modelmine.list_jobs(text, text, boolean, integer, integer, bigint) IS
    'Jobs with my_jobs'' filters: the signed-in user''s own; for an admin everyone''s, or one user''s with user_id.';
REVOKE ALL ON FUNCTION modelmine.list_jobs(text, text, boolean, integer, integer, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.list_jobs(text, text, boolean, integer, integer, bigint) TO modelmine_user;

CREATE FUNCTION modelmine.admin_node_page(max_rows integer DEFAULT 100, skip integer DEFAULT 0)
    RETURNS TABLE (id bigint, name text, status text, operator_email text, slots smallint,
                   maintenance boolean, requirements text[], cpu_load real, memory_used_mb integer,
                   memory_total_mb integer, last_seen timestamptz, uptime_pct numeric, jobs_completed bigint,
                   jobs_failed bigint, tokens_earned numeric, balance bigint, reputation integer,
                   registered_at timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan SET jit = off  -- as nodes()
    AS $$
BEGIN
    IF max_rows IS NULL OR max_rows NOT BETWEEN 0 AND 1000 THEN
        RAISE EXCEPTION 'invalid max_rows' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(max_rows::text, 'NULL')), HINT = 'Pass 0 to 1000 and page with skip.';
    END IF;
    IF skip IS NULL OR skip < 0 THEN
        RAISE EXCEPTION 'invalid skip' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(skip::text, 'NULL')), HINT = 'Pass 0 or more.';
    END IF;
    RETURN QUERY
        WITH page AS MATERIALIZED (SELECT nd FROM modelmine.nodes nd ORDER BY nd.id LIMIT max_rows OFFSET skip)
        -- operator and balance by key, row by row: as joins they were hashes over every user and account
        SELECT (p.nd).id, s.name, s.status,
               (SELECT u.email FROM modelmine.users u WHERE u.id = (p.nd).operator_id),
               (p.nd).slots, (p.nd).maintenance, (p.nd).requirements,
               s.cpu_load, s.memory_used_mb, s.memory_total_mb, s.last_seen, s.uptime_pct, s.jobs_completed,
               s.jobs_failed, s.tokens_earned,
               (SELECT a.balance FROM modelmine.account_balances a WHERE a.node_id = (p.nd).id),
               s.reputation, s.registered_at
          FROM page p
         CROSS JOIN LATERAL modelmine._node_liveness((p.nd).id, (p.nd).registered_at, (p.nd).last_seen,
                                                     (p.nd).online_since, 24) l
         CROSS JOIN LATERAL modelmine._node_summary(p.nd, 24, l.uptime_pct, l.offline) s
         ORDER BY (p.nd).id;
END
$$;
COMMENT ON FUNCTION modelmine.admin_node_page(integer, integer) IS
    'Admin: nodes by id, a page at a time (max_rows 0..1000), with operator, slots, maintenance, what they run, figures and balance (never a key hash).';
REVOKE ALL ON FUNCTION modelmine.admin_node_page(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.admin_node_page(integer, integer) TO modelmine_admin;

CREATE FUNCTION modelmine.admin_network_report() RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    RETURN pg_catalog.jsonb_build_object(
        'stats', (SELECT pg_catalog.to_jsonb(s) FROM modelmine.network_stats() s),
        'issued', (SELECT -a.balance FROM modelmine.account_balances a WHERE a.kind = 'issuance'),
        'max_supply', (SELECT st.value FROM modelmine.settings st WHERE st.name = 'max_supply'),
        'users', (SELECT pg_catalog.count(*) FROM modelmine.users),
        'ledger', modelmine.ledger_digest(),
        'invariant_violations', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(i))
                                            FROM modelmine.check_invariants() i), '[]'));
END
$$;
COMMENT ON FUNCTION modelmine.admin_network_report() IS
    'Admin: network statistics, tokens issued against max_supply, user count, the ledger head, and every violated invariant (an empty list means the books balance).';
REVOKE ALL ON FUNCTION modelmine.admin_network_report() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.admin_network_report() TO modelmine_admin;

CREATE FUNCTION modelmine.admin_ledger_page(from_height bigint DEFAULT 0, max_rows integer DEFAULT 100)
    RETURNS TABLE (height bigint, hash text, prev_hash text, job_id bigint, job_title text, user_email text,
                   node_id bigint, node_name text, stake bigint, reward bigint, fee bigint, accuracy text,
                   loss text, epochs bigint, completed_at timestamptz, created_at timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF from_height IS NULL OR from_height < 0 THEN
        RAISE EXCEPTION 'invalid from_height' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(from_height::text, 'NULL')), HINT = 'Pass 0 or more.';
    END IF;
    IF max_rows IS NULL OR max_rows NOT BETWEEN 0 AND 10000 THEN
        RAISE EXCEPTION 'invalid max_rows' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(max_rows::text, 'NULL')), HINT = 'Pass 0 to 10000.';
    END IF;
    RETURN QUERY
        SELECT l.height, pg_catalog.encode(l.hash, 'hex'), pg_catalog.encode(l.prev_hash, 'hex'), l.job_id,
               j.title, u.email, l.node_id, n.name, l.stake, l.reward, l.fee, l.accuracy, l.loss, l.epochs,
               l.completed_at, l.created_at
          FROM modelmine.ledger l
          LEFT JOIN modelmine.jobs j ON j.id = l.job_id
          LEFT JOIN modelmine.users u ON u.id = l.user_id
          LEFT JOIN modelmine.nodes n ON n.id = l.node_id
         WHERE l.height >= from_height
         ORDER BY l.height
         LIMIT max_rows;
END
$$;
COMMENT ON FUNCTION modelmine.admin_ledger_page(bigint, integer) IS
    'Admin: ledger blocks from from_height in height order (max_rows 0..10000), hashes in hex, with the job''s title, the owner''s email and the node''s name.';
REVOKE ALL ON FUNCTION modelmine.admin_ledger_page(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.admin_ledger_page(bigint, integer) TO modelmine_admin;

-------------------------------------------------------------------------------------------------------
-- Notifications (outbox) (issue 16): email and webhook notifications, written by triggers in the
-- same transaction as their event (a rollback announces nothing, a commit is never missed) and sent
-- by modelmine-notify (notify/), which logs in as a member of modelmine_notifier and only calls the
-- outbox_* functions below.  One outbox row is one delivery (an email, or one webhook) of one event;
-- the deliveries of an event share its event_id, which receivers use to drop repeats (delivery is
-- at least once).  A delivery is claimed by pushing next_attempt_at past a lease, so a sender killed
-- mid-batch leaves its rows to be claimed again when the lease ends; a failure is retried with
-- exponential backoff and jitter until outbox_max_age_seconds, then dead-lettered with its reason.
-- The sender polls (--poll-ms); rows of events other than a job's end also wake it at once with
-- NOTIFY modelmine_outbox (one per transaction).  Job events come with settlement, where a NOTIFY
-- per job would queue every settling commit on the notification lock: the poll finds them.
-------------------------------------------------------------------------------------------------------
DO $notifier$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'modelmine_notifier') THEN
        CREATE ROLE modelmine_notifier NOLOGIN;
    END IF;
END
$notifier$;
GRANT USAGE ON SCHEMA modelmine TO modelmine_notifier;

INSERT INTO modelmine.settings (name, value, min_value, max_value, description) VALUES
    ('email_verification',         0, 0, 1,         'When 1 (modelmine-notify runs with SMTP), signup mails a verification link, and verify_email() unlocks the signup grant.'),
    ('verification_ttl_seconds', 86400, 300, 2592000, 'How long an email verification link stays valid.'),
    ('outbox_retry_base_ms',    1000, 100, 3600000, 'Delay before the first retry of a failed notification; it doubles with each attempt (at most an hour), with jitter.'),
    ('outbox_max_age_seconds', 86400, 10, 604800,   'A notification still undelivered this long after its event is dead-lettered.');

CREATE TABLE modelmine.notification_prefs (
    user_id           bigint PRIMARY KEY REFERENCES modelmine.users (id),
    events            text[] NOT NULL DEFAULT '{}'
                      CHECK (events <@ ARRAY['job_completed', 'job_failed', 'job_canceled', 'node_offline',
                                             'balance_low', 'withdrawal_decided']::text[]),
    email             boolean NOT NULL DEFAULT true,
    balance_threshold bigint CHECK (balance_threshold > 0),
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('modelmine.notification_prefs', '');
COMMENT ON TABLE modelmine.notification_prefs IS
    'Per user: the events to be notified of, whether by email, and the balance below which balance_low fires; no row means no notifications.';

CREATE TABLE modelmine.notification_webhooks (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES modelmine.users (id),
    url        text NOT NULL CHECK (pg_catalog.char_length(url) BETWEEN 10 AND 2000),
    secret     bytea NOT NULL,      -- the HMAC key, shown once by add_webhook; read only by outbox_claim
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX notification_webhooks_user_idx ON modelmine.notification_webhooks (user_id);
SELECT pg_catalog.pg_extension_config_dump('modelmine.notification_webhooks', '');
COMMENT ON TABLE modelmine.notification_webhooks IS
    'Webhook URLs users receive their notifications at, each with the secret its deliveries are signed with (HMAC-SHA256).';

CREATE TABLE modelmine.outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid NOT NULL,
    -- no foreign keys: their checks would KEY SHARE-lock the user's (and the webhook's) row from every
    -- settling transaction at once, and concurrent lockers of one row cost a new multixact each
    user_id         bigint NOT NULL,
    event           text NOT NULL CHECK (event IN ('job_completed', 'job_failed', 'job_canceled', 'node_offline',
                                                   'balance_low', 'withdrawal_decided', 'email_verification')),
    payload         jsonb NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('email', 'webhook')),
    destination     text NOT NULL,  -- the address, or the webhook URL, when the event happened
    webhook_id      bigint,         -- identity ids are never reused: a removed webhook's id points nowhere
    status          text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'SENT', 'DEAD')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now(),  -- also the claim's lease
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    sent_at         timestamptz,
    CHECK (channel = 'email' OR webhook_id IS NOT NULL OR status <> 'PENDING'),
    CHECK ((status = 'SENT') = (sent_at IS NOT NULL)),
    CHECK (status <> 'DEAD' OR last_error IS NOT NULL)
);
CREATE INDEX outbox_due_idx ON modelmine.outbox (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX outbox_user_idx ON modelmine.outbox (user_id, id);
SELECT pg_catalog.pg_extension_config_dump('modelmine.outbox', '');
COMMENT ON TABLE modelmine.outbox IS
    'Notifications to send, one row per delivery (email or webhook) of an event, written in the event''s transaction: PENDING until modelmine-notify delivers it (SENT) or gives up (DEAD, with the reason).';

CREATE TABLE modelmine.email_verifications (
    token_hash bytea PRIMARY KEY,   -- SHA-256 of the token in the link; the token itself is not kept here
    user_id    bigint NOT NULL REFERENCES modelmine.users (id),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX email_verifications_user_idx ON modelmine.email_verifications (user_id);
SELECT pg_catalog.pg_extension_config_dump('modelmine.email_verifications', '');
COMMENT ON TABLE modelmine.email_verifications IS
    'Email verification links sent at signup: the SHA-256 of each token, its user, expiry and when it was used.';

CREATE TABLE modelmine.node_offline_events (
    node_id   bigint PRIMARY KEY REFERENCES modelmine.nodes (id),
    last_seen timestamptz NOT NULL  -- the last heartbeat before the OFFLINE that was announced
);
SELECT pg_catalog.pg_extension_config_dump('modelmine.node_offline_events', '');
COMMENT ON TABLE modelmine.node_offline_events IS
    'The last OFFLINE announced per node (by the heartbeat it followed), so each silence is announced once.';

CREATE FUNCTION modelmine._outbox_emit(user_id bigint, event text, payload jsonb) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p modelmine.notification_prefs;
    ev uuid := pg_catalog.gen_random_uuid();   -- one event id for all its deliveries
    n integer;
BEGIN
    IF event = 'email_verification' THEN
        p := ROW(user_id, '{}', true, NULL, NULL);    -- always mailed, whatever the preferences
    ELSE
        SELECT * INTO p FROM modelmine.notification_prefs np WHERE np.user_id = _outbox_emit.user_id;
        IF NOT FOUND OR NOT (event = ANY (p.events)) THEN
            RETURN 0;
        END IF;
    END IF;
    INSERT INTO modelmine.outbox (event_id, user_id, event, payload, channel, destination, webhook_id)
        SELECT ev, _outbox_emit.user_id, event, payload, x.channel, x.destination,
               x.webhook_id
          FROM (SELECT 'email' AS channel, u.email AS destination, NULL::bigint AS webhook_id
                  FROM modelmine.users u WHERE u.id = _outbox_emit.user_id AND p.email
                UNION ALL
                SELECT 'webhook', w.url, w.id FROM modelmine.notification_webhooks w
                 WHERE w.user_id = _outbox_emit.user_id AND event <> 'email_verification') x;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- Wake the sender, except for job events: those come with settlement, where a NOTIFY per job
    -- would queue every settling commit on the notification lock; the sender's poll finds them.
    -- Identical notifications in a transaction are sent once.
    IF n > 0 AND event NOT IN ('job_completed', 'job_failed', 'job_canceled') THEN
        PERFORM pg_catalog.pg_notify('modelmine_outbox', '');
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION modelmine._outbox_emit(bigint, text, jsonb) IS
    'Writes the outbox rows of one event for a user, as their preferences say (email and every webhook, one event id), in the caller''s transaction, and but for job events wakes the sender (NOTIFY modelmine_outbox); returns how many.';
REVOKE ALL ON FUNCTION modelmine._outbox_emit(bigint, text, jsonb) FROM PUBLIC;

-- Job events (job_completed, job_failed, job_canceled) are written by the statistics statement trigger
-- on jobs (extension/jobevents.c), which already reads the statement's transition tables.

CREATE FUNCTION modelmine._outbox_withdrawal() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    PERFORM modelmine._outbox_emit(NEW.user_id, 'withdrawal_decided',
        pg_catalog.jsonb_build_object('withdrawal_id', NEW.id, 'amount', NEW.amount, 'status', NEW.status,
                                      'destination', NEW.destination, 'payout_reference', NEW.payout_reference,
                                      'reason', NEW.reason, 'decided_at', NEW.decided_at));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION modelmine._outbox_withdrawal() IS
    'Row trigger: a withdrawal was approved or rejected; notifies its user (withdrawal_decided).';
REVOKE ALL ON FUNCTION modelmine._outbox_withdrawal() FROM PUBLIC;
CREATE TRIGGER withdrawals_outbox AFTER UPDATE OF status ON modelmine.withdrawals
    FOR EACH ROW WHEN (OLD.status = 'PENDING' AND NEW.status <> 'PENDING')
    EXECUTE FUNCTION modelmine._outbox_withdrawal();

-- Every debit of a user is journaled after the debit (no other transaction can debit the locked
-- account in between), so the balance after a row is the account's balance now plus the later rows
-- of the same statement, and before it that plus the amount: a threshold is crossed exactly once.
-- A statement trigger: submit_jobs journals a thousand stakes in one statement, and most users have
-- no threshold, so one query per statement instead of one call per row.
CREATE FUNCTION modelmine._outbox_balance() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    PERFORM modelmine._outbox_emit(d.user_id, 'balance_low',
            pg_catalog.jsonb_build_object('balance', d.after, 'threshold', d.threshold,
                                          'amount', d.amount, 'reason', d.reason, 'job_id', d.job_id))
       FROM (SELECT a.user_id, p.balance_threshold AS threshold, n.id, n.amount, n.reason, n.job_id,
                    b.balance + COALESCE(pg_catalog.sum(n.amount) OVER (
                        PARTITION BY n.debit_account ORDER BY n.id DESC
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS after
               FROM new_rows n
               JOIN modelmine.accounts a ON a.id = n.debit_account
               JOIN modelmine.notification_prefs p
                 ON p.user_id = a.user_id AND 'balance_low' = ANY (p.events)
               JOIN modelmine.account_balances b ON b.id = n.debit_account
              WHERE n.debit_account >= 1000 AND p.balance_threshold IS NOT NULL) d
      WHERE d.after < d.threshold AND d.after + d.amount >= d.threshold
      ORDER BY d.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION modelmine._outbox_balance() IS
    'Statement trigger on the journal: each debit that took a user''s balance below their balance_threshold notifies them (balance_low).';
REVOKE ALL ON FUNCTION modelmine._outbox_balance() FROM PUBLIC;
CREATE TRIGGER journal_outbox AFTER INSERT ON modelmine.journal
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION modelmine._outbox_balance();

CREATE FUNCTION modelmine._outbox_signup() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    token text;
BEGIN
    IF (SELECT st.value FROM modelmine.settings st WHERE st.name = 'email_verification') IS DISTINCT FROM 1 THEN
        RETURN NULL;
    END IF;
    -- 244 random bits (two version-4 UUIDs); only its hash is kept to check it
    token := pg_catalog.replace(pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', '');
    INSERT INTO modelmine.email_verifications (token_hash, user_id, expires_at)
        SELECT pg_catalog.sha256(pg_catalog.convert_to(token, 'UTF8')), NEW.id,
               pg_catalog.now() + pg_catalog.make_interval(secs => st.value)
          FROM modelmine.settings st WHERE st.name = 'verification_ttl_seconds';
    PERFORM modelmine._outbox_emit(NEW.id, 'email_verification',
                                   pg_catalog.jsonb_build_object('token', token, 'email', NEW.email));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION modelmine._outbox_signup() IS
    'Row trigger: when setting email_verification is 1, a new user is mailed a verification link (its token''s hash kept in email_verifications).';
REVOKE ALL ON FUNCTION modelmine._outbox_signup() FROM PUBLIC;
CREATE TRIGGER users_outbox AFTER INSERT ON modelmine.users
    FOR EACH ROW EXECUTE FUNCTION modelmine._outbox_signup();

CREATE FUNCTION modelmine.verify_email(token text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v modelmine.email_verifications;
BEGIN
    UPDATE modelmine.email_verifications e SET used_at = pg_catalog.now()
     WHERE e.token_hash = pg_catalog.sha256(pg_catalog.convert_to(COALESCE(verify_email.token, ''), 'UTF8'))
       AND e.used_at IS NULL AND e.expires_at > pg_catalog.now()
    RETURNING * INTO v;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invalid or expired verification token' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'The token is unknown, was already used, or has expired.',
            HINT = 'Use the link of the latest verification email, or ask an admin to verify you.';
    END IF;
    -- what an admin's verify_user does (it runs as this function's owner here)
    PERFORM modelmine.verify_user(u.email) FROM modelmine.users u WHERE u.id = v.user_id;
    RETURN v.user_id;
END
$$;
COMMENT ON FUNCTION modelmine.verify_email(text) IS
    'Follows an email verification link: a valid, unused, unexpired token marks its user verified and unlocks their signup grant, as verify_user does; returns the user id.';
REVOKE ALL ON FUNCTION modelmine.verify_email(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.verify_email(text) TO modelmine_anon, modelmine_user;

CREATE FUNCTION modelmine.detect_offline_nodes() RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    n integer := 0;
    r record;
BEGIN
    -- the upsert's WHERE makes a second caller (or a second call) find the silence announced already
    FOR r IN
        WITH silent AS (
            SELECT nd.id, nd.name, nd.operator_id, nd.last_seen
              FROM modelmine.nodes nd, modelmine.settings st
             WHERE st.name = 'offline_after_seconds'
               AND nd.last_seen < pg_catalog.now() - pg_catalog.make_interval(secs => st.value)
               AND nd.last_seen > pg_catalog.now() - interval '1 day'),   -- not nodes long gone
        announced AS (
            INSERT INTO modelmine.node_offline_events AS o (node_id, last_seen)
                SELECT s.id, s.last_seen FROM silent s
            ON CONFLICT (node_id) DO UPDATE SET last_seen = EXCLUDED.last_seen
                WHERE o.last_seen < EXCLUDED.last_seen
            RETURNING o.node_id)
        SELECT s.* FROM silent s JOIN announced a ON a.node_id = s.id
    LOOP
        PERFORM modelmine._outbox_emit(r.operator_id, 'node_offline',
            pg_catalog.jsonb_build_object('node_id', r.id, 'name', r.name, 'last_seen', r.last_seen));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION modelmine.detect_offline_nodes() IS
    'Notifier: announces (node_offline, to the operator) each node whose last heartbeat is older than offline_after_seconds, once per silence; returns how many.  modelmine-notify calls it periodically.';
REVOKE ALL ON FUNCTION modelmine.detect_offline_nodes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.detect_offline_nodes() TO modelmine_notifier, modelmine_admin;

CREATE FUNCTION modelmine.outbox_claim(max_rows integer DEFAULT 50, lease_seconds integer DEFAULT 60)
    RETURNS TABLE (id bigint, event_id uuid, event text, channel text, destination text, secret text,
                   payload jsonb, created_at timestamptz, attempts integer)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF max_rows IS NULL OR max_rows NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'invalid max_rows' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(max_rows::text, 'NULL')), HINT = 'Pass 1 to 1000.';
    END IF;
    IF lease_seconds IS NULL OR lease_seconds NOT BETWEEN 1 AND 3600 THEN
        RAISE EXCEPTION 'invalid lease_seconds' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(lease_seconds::text, 'NULL')), HINT = 'Pass 1 to 3600.';
    END IF;
    -- the lease is next_attempt_at itself: a sender that dies leaves the rows due again when it ends
    RETURN QUERY
        WITH due AS (
            SELECT o.id FROM modelmine.outbox o
             WHERE o.status = 'PENDING' AND o.next_attempt_at <= pg_catalog.now()
             ORDER BY o.next_attempt_at, o.id
             LIMIT max_rows
               FOR UPDATE SKIP LOCKED),
        claimed AS (
            UPDATE modelmine.outbox o
               SET next_attempt_at = pg_catalog.now() + pg_catalog.make_interval(secs => lease_seconds),
                   attempts = o.attempts + 1
              FROM due WHERE o.id = due.id
            RETURNING o.*)
        SELECT c.id, c.event_id, c.event, c.channel, c.destination, pg_catalog.encode(w.secret, 'hex'),
               c.payload, c.created_at, c.attempts
          FROM claimed c LEFT JOIN modelmine.notification_webhooks w ON w.id = c.webhook_id
         ORDER BY c.id;
END
$$;
COMMENT ON FUNCTION modelmine.outbox_claim(integer, integer) IS
    'Notifier: claims up to max_rows (1..1000) due deliveries (SKIP LOCKED) for lease_seconds (1..3600), counting an attempt each; returns them with the webhook''s secret (hex) to sign with.';
REVOKE ALL ON FUNCTION modelmine.outbox_claim(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.outbox_claim(integer, integer) TO modelmine_notifier;

CREATE FUNCTION modelmine.outbox_done(id bigint, delivered boolean, error text DEFAULT NULL,
                                      permanent boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    o modelmine.outbox;
    base_ms bigint := (SELECT st.value FROM modelmine.settings st WHERE st.name = 'outbox_retry_base_ms');
    max_age bigint := (SELECT st.value FROM modelmine.settings st WHERE st.name = 'outbox_max_age_seconds');
    delay double precision;
BEGIN
    IF delivered IS NULL OR (NOT delivered AND pg_catalog.btrim(COALESCE(error, '')) = '') THEN
        RAISE EXCEPTION 'a failed delivery needs its error' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass delivered true, or false with the reason in error.';
    END IF;
    SELECT * INTO o FROM modelmine.outbox ob WHERE ob.id = outbox_done.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no outbox row %', outbox_done.id USING ERRCODE = 'no_data_found',
            HINT = 'Pass an id outbox_claim returned.';
    END IF;
    IF o.status <> 'PENDING' THEN
        RETURN o.status;        -- another sender finished it after our lease ran out
    END IF;
    IF delivered THEN
        -- a verification token is needed no longer: it stays only in the email
        UPDATE modelmine.outbox ob SET status = 'SENT', sent_at = pg_catalog.now(), last_error = NULL,
               payload = ob.payload - 'token'
         WHERE ob.id = o.id;
        RETURN 'SENT';
    END IF;
    -- exponential backoff, at most an hour, with full jitter on its second half
    delay := LEAST(base_ms * pg_catalog.power(2, LEAST(GREATEST(o.attempts - 1, 0), 30)), 3600000)
             * (0.5 + pg_catalog.random() / 2) / 1000.0;
    IF permanent OR pg_catalog.now() + pg_catalog.make_interval(secs => delay)
                    > o.created_at + pg_catalog.make_interval(secs => max_age) THEN
        UPDATE modelmine.outbox ob SET status = 'DEAD', last_error = pg_catalog.left(error, 1000),
               payload = ob.payload - 'token'
         WHERE ob.id = o.id;
        RETURN 'DEAD';
    END IF;
    UPDATE modelmine.outbox ob SET next_attempt_at = pg_catalog.now() + pg_catalog.make_interval(secs => delay),
           last_error = pg_catalog.left(error, 1000)
     WHERE ob.id = o.id;
    RETURN 'PENDING';
END
$$;
COMMENT ON FUNCTION modelmine.outbox_done(bigint, boolean, text, boolean) IS
    'Notifier: records a delivery attempt: delivered (SENT), or failed with error, retried with exponential backoff and jitter (setting outbox_retry_base_ms) unless permanent or older than outbox_max_age_seconds (DEAD, with the reason); a finished row keeps no verification token. Returns the new status.';
REVOKE ALL ON FUNCTION modelmine.outbox_done(bigint, boolean, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.outbox_done(bigint, boolean, text, boolean) TO modelmine_notifier;

CREATE FUNCTION modelmine.notification_prefs() RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    me bigint := modelmine.current_user_id();   -- raises 28000 when no one is signed in
BEGIN
    RETURN (SELECT pg_catalog.jsonb_build_object(
                'events', pg_catalog.to_jsonb(COALESCE(p.events, '{}')), 'email', COALESCE(p.email, true),
                'balance_threshold', p.balance_threshold,
                'webhooks', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                                 'id', w.id, 'url', w.url, 'created_at', w.created_at) ORDER BY w.id)
                                        FROM modelmine.notification_webhooks w WHERE w.user_id = me), '[]'))
              FROM (SELECT 1) one LEFT JOIN modelmine.notification_prefs p ON p.user_id = me);
END
$$;
COMMENT ON FUNCTION modelmine.notification_prefs() IS
    'The signed-in user''s notification preferences: events, email on or off, balance_threshold, and webhooks (id, url, created_at; never a secret).';
REVOKE ALL ON FUNCTION modelmine.notification_prefs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.notification_prefs() TO modelmine_user;

CREATE FUNCTION modelmine.set_notification_prefs(events text[] DEFAULT NULL, email boolean DEFAULT NULL,
                                                 balance_threshold bigint DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    me bigint := modelmine.current_user_id();   -- raises 28000 when no one is signed in
    known constant text[] := ARRAY['job_completed', 'job_failed', 'job_canceled', 'node_offline', 'balance_low',
                                   'withdrawal_decided'];
    bad text;
BEGIN
    SELECT e INTO bad FROM pg_catalog.unnest(events) e WHERE e IS NULL OR NOT (e = ANY (known)) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unknown event %', COALESCE(pg_catalog.quote_literal(bad), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'events names events to be notified of.',
                  HINT = 'Pass any of ' || pg_catalog.array_to_string(known, ', ') || ' (or an empty array for none).';
    END IF;
    IF balance_threshold IS NOT NULL AND balance_threshold < 0 THEN
        RAISE EXCEPTION 'invalid balance_threshold' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', balance_threshold),
            HINT = 'Pass a number of tokens above 0, or 0 for no threshold.';
    END IF;
    INSERT INTO modelmine.notification_prefs AS p (user_id, events, email, balance_threshold)
        VALUES (me, COALESCE(ARRAY(SELECT DISTINCT e FROM pg_catalog.unnest(events) e ORDER BY e), '{}'),
                COALESCE(email, true), NULLIF(balance_threshold, 0))
    ON CONFLICT (user_id) DO UPDATE
        -- ARRAY(subquery) over a NULL array is '{}', not NULL: test the argument itself
        SET events = CASE WHEN set_notification_prefs.events IS NULL THEN p.events
                          ELSE ARRAY(SELECT DISTINCT e FROM pg_catalog.unnest(set_notification_prefs.events) e
                                      ORDER BY e) END,
            email = COALESCE(set_notification_prefs.email, p.email),
            balance_threshold = CASE WHEN set_notification_prefs.balance_threshold IS NULL THEN p.balance_threshold
                                     ELSE NULLIF(set_notification_prefs.balance_threshold, 0) END,
            updated_at = pg_catalog.now();
    RETURN modelmine.notification_prefs();
END
$$;
COMMENT ON FUNCTION modelmine.set_notification_prefs(text[], boolean, bigint) IS
    'Sets the signed-in user''s notification preferences (a NULL argument keeps the current value): events from job_completed, job_failed, job_canceled, node_offline, balance_low, withdrawal_decided; email on or off; balance_threshold in tokens (0: none). Returns them as notification_prefs() does.';
REVOKE ALL ON FUNCTION modelmine.set_notification_prefs(text[], boolean, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.set_notification_prefs(text[], boolean, bigint) TO modelmine_user;

CREATE FUNCTION modelmine.add_webhook(url text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    me bigint := modelmine.current_user_id();   -- raises 28000 when no one is signed in
    key bytea;
    wid bigint;
BEGIN
    url := pg_catalog.btrim(url);
    IF url IS NULL OR url !~ '^https?://[^\s/?#@]+([/?#]\S*)?$' OR pg_catalog.char_length(url) NOT BETWEEN 10 AND 2000 THEN
        RAISE EXCEPTION 'invalid webhook url' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %L.', pg_catalog.left(url, 100)),
            HINT = 'Pass an http:// or https:// URL of 10 to 2000 characters, without spaces or user:password@.';
    END IF;
    -- the user's own prefs row serialises their additions, so the cap holds under concurrency
    INSERT INTO modelmine.notification_prefs (user_id) VALUES (me) ON CONFLICT (user_id) DO NOTHING;
    PERFORM 1 FROM modelmine.notification_prefs p WHERE p.user_id = me FOR UPDATE;
    IF (SELECT pg_catalog.count(*) FROM modelmine.notification_webhooks w WHERE w.user_id = me) >= 10 THEN
        RAISE EXCEPTION 'too many webhooks' USING ERRCODE = 'program_limit_exceeded',
            DETAIL = 'A user may have at most 10 webhooks.', HINT = 'Remove one with modelmine.remove_webhook(id).';
    END IF;
    key := pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::text
                                                || pg_catalog.gen_random_uuid()::text, '-', ''), 'hex');
    INSERT INTO modelmine.notification_webhooks (user_id, url, secret) VALUES (me, url, key) RETURNING id INTO wid;
    RETURN pg_catalog.jsonb_build_object('id', wid, 'url', url, 'secret', 'whsec_' || pg_catalog.encode(key, 'hex'));
END
$$;
COMMENT ON FUNCTION modelmine.add_webhook(text) IS
    'Adds a webhook (http or https URL; at most 10 per user) that receives the signed-in user''s notifications; returns {id, url, secret}: the signing secret is shown this once.';
REVOKE ALL ON FUNCTION modelmine.add_webhook(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.add_webhook(text) TO modelmine_user;

CREATE FUNCTION modelmine.remove_webhook(webhook_id bigint) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    n integer;
BEGIN
    PERFORM 1 FROM modelmine.notification_webhooks w
      WHERE w.id = remove_webhook.webhook_id AND w.user_id = modelmine.current_user_id() FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'webhook % not found', remove_webhook.webhook_id USING ERRCODE = 'no_data_found',
            DETAIL = 'You have no webhook with this id.', HINT = 'List yours with modelmine.notification_prefs().';
    END IF;
    UPDATE modelmine.outbox o SET status = 'DEAD', last_error = 'webhook removed'
     WHERE o.webhook_id = remove_webhook.webhook_id AND o.status = 'PENDING';
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM modelmine.notification_webhooks w WHERE w.id = remove_webhook.webhook_id;
    RETURN n;
END
$$;
COMMENT ON FUNCTION modelmine.remove_webhook(bigint) IS
    'Removes one of the signed-in user''s webhooks; its undelivered notifications are dead-lettered (''webhook removed''). Returns how many.';
REVOKE ALL ON FUNCTION modelmine.remove_webhook(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.remove_webhook(bigint) TO modelmine_user;

CREATE FUNCTION modelmine.my_notifications(status text DEFAULT NULL, max_rows integer DEFAULT 50)
    RETURNS TABLE (id bigint, event_id uuid, event text, channel text, destination text, state text,
                   attempts integer, last_error text, created_at timestamptz, next_attempt_at timestamptz,
                   sent_at timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF my_notifications.status IS NOT NULL AND my_notifications.status NOT IN ('PENDING', 'SENT', 'DEAD') THEN
        RAISE EXCEPTION 'invalid status' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %L.', my_notifications.status),
            HINT = 'Pass PENDING, SENT, DEAD or NULL for all.';
    END IF;
    IF max_rows IS NULL OR max_rows NOT BETWEEN 0 AND 1000 THEN
        RAISE EXCEPTION 'invalid max_rows' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = pg_catalog.format('Got %s.', COALESCE(max_rows::text, 'NULL')), HINT = 'Pass 0 to 1000.';
    END IF;
    RETURN QUERY
        SELECT o.id, o.event_id, o.event, o.channel, o.destination, o.status, o.attempts, o.last_error,
               o.created_at, CASE WHEN o.status = 'PENDING' THEN o.next_attempt_at END, o.sent_at
          FROM modelmine.outbox o
         WHERE o.user_id = modelmine.current_user_id()
           AND (my_notifications.status IS NULL OR o.status = my_notifications.status)
         ORDER BY o.id DESC
         LIMIT max_rows;
END
$$;
COMMENT ON FUNCTION modelmine.my_notifications(text, integer) IS
    'The signed-in user''s notifications, newest first (at most 1000; all, or PENDING, SENT or DEAD): event, channel, destination, attempts, and for dead letters the reason.';
REVOKE ALL ON FUNCTION modelmine.my_notifications(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.my_notifications(text, integer) TO modelmine_user;

-------------------------------------------------------------------------------------------------------
-- Issue 19: scheduling.  Deadlines (extension/deadlines.c), resource-aware placement (nodes advertise
-- memory_mb, cores and labels in their capabilities; a job may require them) and fair share between
-- users (extension/fairshare.c): claims walk users by decayed usage per share, then each user's jobs by
-- priority and age.  docs/SCHEDULING.md has the policy.
-------------------------------------------------------------------------------------------------------
INSERT INTO modelmine.settings (name, value, min_value, max_value, description) VALUES
    ('fair_share_half_life_seconds', 3600, 60, 31536000, 'Half-life of the recent usage fair share ranks users by: a job started this long ago counts half as much as one started now.');

ALTER TABLE modelmine.jobs
    ADD COLUMN start_by       timestamptz,
    ADD COLUMN finish_by      timestamptz,
    ADD COLUMN need_memory_mb integer NOT NULL DEFAULT 0 CHECK (need_memory_mb BETWEEN 0 AND 16777216),
    ADD COLUMN need_cores     integer NOT NULL DEFAULT 0 CHECK (need_cores BETWEEN 0 AND 4096),
    ADD COLUMN need_labels    text[] NOT NULL DEFAULT '{}' CHECK (pg_catalog.cardinality(need_labels) <= 16),
    ADD CONSTRAINT jobs_deadlines_check CHECK (finish_by > start_by);
COMMENT ON COLUMN modelmine.jobs.start_by IS
    'Deadline to start: a job still PENDING at this time is canceled and refunded (expire_jobs).';
COMMENT ON COLUMN modelmine.jobs.finish_by IS
    'Deadline to finish: a job still RUNNING at this time is failed and refunded, one still PENDING canceled and refunded (expire_jobs).';
COMMENT ON COLUMN modelmine.jobs.need_memory_mb IS
    'Memory the job needs on its node, in MB (0: none declared); counted against the node while it runs.';
COMMENT ON COLUMN modelmine.jobs.need_cores IS
    'CPU cores the job needs on its node (0: none declared); counted against the node while it runs.';
COMMENT ON COLUMN modelmine.jobs.need_labels IS
    'Labels its node must advertise, such as gpu.';
-- a user's claimable jobs, best first: the fair-share walk probes this per user, and narrows the
-- window to the jobs that fit the node from what the index carries
CREATE INDEX jobs_user_claimable_idx ON modelmine.jobs (user_id, priority DESC, id)
    INCLUDE (requirement, need_memory_mb, need_cores, need_labels)
    WHERE open_replicas > 0 AND status IN ('PENDING', 'RUNNING');
-- whether a user still has an open job (fair_share.queued is cleared only when none is left)
CREATE INDEX jobs_user_open_idx ON modelmine.jobs (user_id) WHERE status IN ('PENDING', 'RUNNING');
CREATE INDEX jobs_start_by_idx ON modelmine.jobs (start_by)
    WHERE status = 'PENDING' AND start_by IS NOT NULL;
CREATE INDEX jobs_finish_by_idx ON modelmine.jobs (finish_by)
    WHERE finish_by IS NOT NULL AND status IN ('PENDING', 'RUNNING');

ALTER TABLE modelmine.nodes
    ADD COLUMN memory_mb integer NOT NULL DEFAULT 0 CHECK (memory_mb BETWEEN 0 AND 16777216),
    ADD COLUMN cores     integer NOT NULL DEFAULT 0 CHECK (cores BETWEEN 0 AND 4096),
    ADD COLUMN labels    text[] NOT NULL DEFAULT '{}' CHECK (pg_catalog.cardinality(labels) <= 16);
COMMENT ON COLUMN modelmine.nodes.memory_mb IS
    'Memory the node offers to jobs, in MB (capabilities.memory_mb; the worker reads /proc/meminfo).';
COMMENT ON COLUMN modelmine.nodes.cores IS
    'CPU cores the node offers to jobs (capabilities.cores; the worker counts online processors).';
COMMENT ON COLUMN modelmine.nodes.labels IS
    'Labels the node advertises (capabilities.labels), such as gpu.';

CREATE TABLE modelmine.fair_share (
    user_id   bigint PRIMARY KEY REFERENCES modelmine.users (id),
    share     real NOT NULL DEFAULT 1 CHECK (share > 0 AND share <= 1000000),
    usage_log double precision NOT NULL DEFAULT '-Infinity',
    rank      double precision NOT NULL DEFAULT '-Infinity',
    queued    boolean NOT NULL DEFAULT false
);
-- the claim's walk: users that may have claimable jobs, least weighted usage first
CREATE INDEX fair_share_queue_idx ON modelmine.fair_share (rank, user_id) WHERE queued;
SELECT pg_catalog.pg_extension_config_dump('modelmine.fair_share', '');
COMMENT ON TABLE modelmine.fair_share IS
    'Per-user fair share: share (set_user_share), usage_log = log2 of the sum of 2^(t / half-life) over the user''s job starts (t in seconds since 2000), rank = usage_log - log2(share) (lower is served first; comparing ranks compares decayed usage per share at any time), queued: the user may have claimable jobs.  Written by the user''s own submits and by folds at commit, never by claims.';

CREATE TABLE modelmine.usage_deltas (
    user_id   bigint NOT NULL,
    usage_log double precision NOT NULL
);
CREATE INDEX usage_deltas_user_idx ON modelmine.usage_deltas (user_id);
SELECT pg_catalog.pg_extension_config_dump('modelmine.usage_deltas', '');
COMMENT ON TABLE modelmine.usage_deltas IS
    'Job starts appended by claims (log2 of their weight at the time), folded into fair_share at commit: claims never lock a user''s row.';

CREATE FUNCTION modelmine.expire_jobs(max_jobs integer DEFAULT 100) RETURNS integer
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_expire_jobs';
COMMENT ON FUNCTION modelmine.expire_jobs(integer) IS
    'Admin (and every claim_jobs): cancels and refunds up to max_jobs (1..10000) PENDING jobs past start_by or finish_by, fails and refunds RUNNING jobs past finish_by (counted against a node only when its lease had expired); skips rows others hold. Returns the number of jobs ended.';
REVOKE ALL ON FUNCTION modelmine.expire_jobs(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.expire_jobs(integer) TO modelmine_admin;

CREATE FUNCTION modelmine.set_user_share(email text, share real) RETURNS void
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_set_user_share';
COMMENT ON FUNCTION modelmine.set_user_share(text, real) IS
    'Admin: sets a user''s fair share (0.001..1000000, default 1): with twice the share, a user is served as if they had used half as much.';
REVOKE ALL ON FUNCTION modelmine.set_user_share(text, real) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.set_user_share(text, real) TO modelmine_admin;

CREATE FUNCTION modelmine.job_queue(job_id bigint) RETURNS jsonb
    LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_job_queue';
COMMENT ON FUNCTION modelmine.job_queue(bigint) IS
    'Why one of your jobs (any job for admins) waits: {"job_id", "status", "queue_position", "users_ahead", "reason", "start_by", "finish_by", "requirements"}; position, users_ahead and reason are null once it no longer waits. P0002 when not found or not yours.';
REVOKE ALL ON FUNCTION modelmine.job_queue(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.job_queue(bigint) TO modelmine_user;

CREATE FUNCTION modelmine.queue_position(job_id bigint) RETURNS bigint
    LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'mm_queue_position';
COMMENT ON FUNCTION modelmine.queue_position(bigint) IS
    'Estimated number of job starts before this waiting job''s (0: next), under fair share if usage stays as it is: its own user''s better jobs plus what each other user takes before their weighted usage passes its user''s. NULL when it no longer waits. P0002 when not found or not yours.';
REVOKE ALL ON FUNCTION modelmine.queue_position(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION modelmine.queue_position(bigint) TO modelmine_user;
