-- install: what CREATE EXTENSION leaves behind, and the privilege rules every object follows.
-- Generic checks (comments, search_path, PUBLIC) cover every function in the schema, so a function
-- added later is checked too; the grant table pins who may call each core function.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS modelmine;
DROP EXTENSION IF EXISTS pgcrypto;
CREATE EXTENSION modelmine CASCADE;
RESET client_min_messages;
\set VERBOSITY default

-- The extension lives in schema modelmine (not relocatable) and pulled in pgcrypto.
SELECT e.extname, e.extversion, n.nspname AS schema, e.extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname IN ('modelmine', 'pgcrypto') ORDER BY 1;

-- Roles: four NOLOGIN roles; an admin is a member of modelmine_user.
SELECT rolname, rolcanlogin, rolsuper, rolinherit FROM pg_roles WHERE rolname LIKE 'modelmine\_%' ORDER BY 1;
SELECT pg_has_role('modelmine_admin', 'modelmine_user', 'MEMBER') AS admin_is_user,
       pg_has_role('modelmine_user', 'modelmine_admin', 'MEMBER') AS user_is_admin,
       pg_has_role('modelmine_node', 'modelmine_user', 'MEMBER') AS node_is_user,
       pg_has_role('modelmine_anon', 'modelmine_user', 'MEMBER') AS anon_is_user;

-- Every modelmine role may look up names in the schema; none may create objects in it.
SELECT r.rolname, has_schema_privilege(r.rolname, 'modelmine', 'USAGE') AS usage,
       has_schema_privilege(r.rolname, 'modelmine', 'CREATE') AS "create"
  FROM pg_roles r WHERE r.rolname LIKE 'modelmine\_%' ORDER BY 1;

-- Tables, and their row counts right after install.
SELECT c.relname, c.relkind
  FROM pg_class c WHERE c.relnamespace = 'modelmine'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
 ORDER BY 1;
SELECT (SELECT count(*) FROM modelmine.users) AS users, (SELECT count(*) FROM modelmine.sessions) AS sessions,
       (SELECT count(*) FROM modelmine.jobs) AS jobs, (SELECT count(*) FROM modelmine.journal) AS journal;
SELECT enum_range(NULL::modelmine.job_status);

-- Triggers: journal append-only (rows and TRUNCATE), jobs lifecycle guard and work notification.
SELECT tgrelid::regclass, tgname, tgfoid::regproc, tgenabled
  FROM pg_trigger WHERE tgrelid IN ('modelmine.journal'::regclass, 'modelmine.jobs'::regclass)
   AND NOT tgisinternal ORDER BY 1::text, 2;

-- Every function in the schema has a comment (psql \df+ and PostgREST's OpenAPI show it).
SELECT p.oid::regprocedure AS function_without_comment
  FROM pg_proc p WHERE p.pronamespace = 'modelmine'::regnamespace
   AND coalesce(obj_description(p.oid, 'pg_proc'), '') = '';

-- Every SECURITY DEFINER function pins search_path to pg_catalog, pg_temp.
SELECT p.oid::regprocedure AS definer_without_search_path, p.proconfig
  FROM pg_proc p WHERE p.pronamespace = 'modelmine'::regnamespace AND p.prosecdef
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false);

-- No function is executable by PUBLIC (a NULL proacl would mean the default, PUBLIC EXECUTE).
SELECT p.oid::regprocedure AS executable_by_public
  FROM pg_proc p WHERE p.pronamespace = 'modelmine'::regnamespace
   AND (p.proacl IS NULL OR has_function_privilege('public', p.oid, 'EXECUTE'));

-- Who may call each core function (superuser aside).  A change here is a change of the API's security.
SELECT p.oid::regprocedure AS function, p.prosecdef AS definer,
       has_function_privilege('modelmine_anon', p.oid, 'EXECUTE') AS anon,
       has_function_privilege('modelmine_user', p.oid, 'EXECUTE') AS "user",
       has_function_privilege('modelmine_node', p.oid, 'EXECUTE') AS node,
       has_function_privilege('modelmine_admin', p.oid, 'EXECUTE') AS admin
  FROM pg_proc p
 WHERE p.pronamespace = 'modelmine'::regnamespace
   AND p.proname IN ('_refuse_change', '_job_transition_guard', '_notify_work', 'signup', 'login',
                     'authenticate', 'authenticate_local', 'deauthenticate', 'logout', 'current_user_id',
                     'current_session_id', 'whoami', 'balance', 'transfer', 'mint', 'my_transactions',
                     'submit_job', 'cancel_job', '_list_jobs', 'my_jobs', 'all_jobs', '_job_detail',
                     'admin_job', '_own_job', 'job', 'dashboard', 'users', 'set_user_role', 'set_setting',
                     'settings', 'check_invariants')
 ORDER BY p.proname;

-- No modelmine_* role (nor PUBLIC) holds any privilege on any table or sequence: all access goes
-- through the functions above.
SELECT c.oid::regclass AS relation, r.rolname
  FROM pg_class c
 CROSS JOIN (SELECT 'public' AS rolname UNION ALL
             SELECT rolname FROM pg_roles WHERE rolname LIKE 'modelmine\_%') r
 WHERE c.relnamespace = 'modelmine'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
   AND has_table_privilege(r.rolname, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
UNION ALL
SELECT c.oid::regclass, r.rolname
  FROM pg_class c
 CROSS JOIN (SELECT 'public' AS rolname UNION ALL
             SELECT rolname FROM pg_roles WHERE rolname LIKE 'modelmine\_%') r
 WHERE c.relnamespace = 'modelmine'::regnamespace AND c.relkind = 'S'
   AND has_sequence_privilege(r.rolname, c.oid, 'USAGE, SELECT, UPDATE');

-- In particular, the signing key is readable by no modelmine_* role, admin included.
SELECT r.rolname, has_table_privilege(r.rolname, 'modelmine.secrets', 'SELECT') AS can_read_secrets,
       has_column_privilege(r.rolname, 'modelmine.secrets', 'value', 'SELECT') AS can_read_key_column
  FROM pg_roles r WHERE r.rolname LIKE 'modelmine\_%' ORDER BY 1;

-- The per-database signing key: one 32-byte random key, made at install.
SELECT name, length(value) AS key_bytes FROM modelmine.secrets;

-- Settings and their defaults.
SELECT name, value, min_value, max_value FROM modelmine.settings();
SELECT name, description FROM modelmine.settings();

-- System accounts: issuance 1; escrow shards 16..31 and fee shards 32..47 (shard = id - 16 / - 32);
-- all empty; user and node accounts start at 1000.
SELECT kind, count(*), min(id), max(id), min(shard), max(shard), sum(balance) AS balance,
       bool_and(shard IS NULL OR shard = id - CASE kind WHEN 'escrow' THEN 16 ELSE 32 END) AS shard_matches_id
  FROM modelmine.accounts GROUP BY kind ORDER BY min(id);
SELECT pg_sequence_last_value('modelmine.accounts_id_seq') IS NULL AS accounts_seq_unused,
       (SELECT seqstart FROM pg_sequence WHERE seqrelid = 'modelmine.accounts_id_seq'::regclass) AS accounts_seq_start;

-- The books balance on a fresh install.
SELECT * FROM modelmine.check_invariants();
