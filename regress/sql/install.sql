-- install: what CREATE EXTENSION leaves behind, and the privilege rules every object follows.
-- Generic checks (comments, search_path, PUBLIC) cover every function in the schema, so a function
-- added later is checked too; the grant table lists every function in the schema, so a new one shows up
-- in the diff and its grants get reviewed.
\i regress/include/fresh.sql

-- The extension lives in schema modelmine (not relocatable) and pulled in pgcrypto.
SELECT e.extname, e.extversion, n.nspname AS schema, e.extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname IN ('modelmine', 'pgcrypto') ORDER BY 1;

-- Roles: five NOLOGIN roles (modelmine_notifier: the sender of notifications); an admin is a member of modelmine_user.
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
       (SELECT count(*) FROM modelmine.jobs) AS jobs, (SELECT count(*) FROM modelmine.journal) AS journal,
       (SELECT count(*) FROM modelmine.nodes) AS nodes, (SELECT count(*) FROM modelmine.node_uptime) AS node_uptime,
       (SELECT count(*) FROM modelmine.ledger_queue) AS ledger_queue;
-- The ledger starts with its genesis block (height 0, no job) and nothing else.
SELECT height, job_id, length(hash) AS hash_bytes, length(prev_hash) AS prev_hash_bytes FROM modelmine.ledger;
SELECT enum_range(NULL::modelmine.job_status);

-- Triggers: journal and ledger append-only (rows and TRUNCATE); on jobs the lifecycle guard, the work
-- notification (one per INSERT statement) and the statistics deltas (per row, on status changes only).
SELECT tgname, tgenabled, regexp_replace(pg_get_triggerdef(oid), '^CREATE TRIGGER \S+ ', '') AS definition
  FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'modelmine'::regnamespace)
   AND NOT tgisinternal ORDER BY tgrelid::regclass::text, tgname;

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

-- Who may call each function (superuser aside).  A change here is a change of the API's security.
-- anon: signup and login, the public ledger and network statistics; user: the signed-in API; node: the
-- work protocol only; admin: everything a user may, plus administration.  Trigger functions and shared
-- bodies are callable by nobody, except the helpers the admin views call (a function in a view runs with
-- the caller's privileges: _node_liveness, _node_summary, _setting).
SELECT p.oid::regprocedure AS function, p.prosecdef AS definer,
       has_function_privilege('modelmine_anon', p.oid, 'EXECUTE') AS anon,
       has_function_privilege('modelmine_user', p.oid, 'EXECUTE') AS "user",
       has_function_privilege('modelmine_node', p.oid, 'EXECUTE') AS node,
       has_function_privilege('modelmine_admin', p.oid, 'EXECUTE') AS admin
  FROM pg_proc p
 WHERE p.pronamespace = 'modelmine'::regnamespace
 ORDER BY p.proname, 1::text;

-- No modelmine_* role (nor PUBLIC) holds any privilege on any table or sequence, with three exceptions,
-- all read-only: every modelmine_* role (not PUBLIC) may SELECT the ledger's blocks, so anyone can
-- verify the chain without trusting the extension's functions; modelmine_admin may SELECT the admin_*
-- views, and node_uptime, which admin_nodes reads through the inlined _node_liveness (it holds only
-- heartbeat times).  All other access goes through the functions above.
SELECT relation, rolname, privileges
  FROM (SELECT c.oid::regclass::text AS relation, r.rolname,
               array_remove(ARRAY[CASE WHEN has_table_privilege(r.rolname, c.oid, 'SELECT') THEN 'SELECT' END,
                                  CASE WHEN has_table_privilege(r.rolname, c.oid, 'INSERT') THEN 'INSERT' END,
                                  CASE WHEN has_table_privilege(r.rolname, c.oid, 'UPDATE') THEN 'UPDATE' END,
                                  CASE WHEN has_table_privilege(r.rolname, c.oid, 'DELETE') THEN 'DELETE' END,
                                  CASE WHEN has_table_privilege(r.rolname, c.oid, 'TRUNCATE') THEN 'TRUNCATE' END,
                                  CASE WHEN has_table_privilege(r.rolname, c.oid, 'REFERENCES') THEN 'REFERENCES' END,
                                  CASE WHEN has_table_privilege(r.rolname, c.oid, 'TRIGGER') THEN 'TRIGGER' END,
                                  CASE WHEN has_any_column_privilege(r.rolname, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
                                        AND NOT has_table_privilege(r.rolname, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
                                       THEN 'some columns' END],
                            NULL) AS privileges
          FROM pg_class c
         CROSS JOIN (SELECT 'public' AS rolname UNION ALL
                     SELECT rolname FROM pg_roles WHERE rolname LIKE 'modelmine\_%') r
         WHERE c.relnamespace = 'modelmine'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
        UNION ALL
        SELECT c.oid::regclass::text, r.rolname,
               array_remove(ARRAY[CASE WHEN has_sequence_privilege(r.rolname, c.oid, 'USAGE') THEN 'USAGE' END,
                                  CASE WHEN has_sequence_privilege(r.rolname, c.oid, 'SELECT') THEN 'SELECT' END,
                                  CASE WHEN has_sequence_privilege(r.rolname, c.oid, 'UPDATE') THEN 'UPDATE' END],
                            NULL)
          FROM pg_class c
         CROSS JOIN (SELECT 'public' AS rolname UNION ALL
                     SELECT rolname FROM pg_roles WHERE rolname LIKE 'modelmine\_%') r
         WHERE c.relnamespace = 'modelmine'::regnamespace AND c.relkind = 'S') x
 WHERE privileges <> '{}'
 ORDER BY relation, rolname;

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
