-- fingerprint.sql: everything the modelmine extension defines, one line per fact, sorted, so that two
-- databases can be compared with diff (regress/integration/upgrade.sh: a database updated from the
-- previous version against a fresh install of the current one).  Run with psql -XAt.
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'modelmine'),
member AS (SELECT d.classid, d.objid FROM pg_depend d, ext WHERE d.refobjid = ext.oid AND d.deptype = 'e'),
facts(line) AS (
    -- the extension itself, and its configuration tables (dumped by pg_dump)
    SELECT 'extension ' || e.extversion || ' relocatable=' || e.extrelocatable || ' schema=' || e.extnamespace::regnamespace
      FROM pg_extension e, ext WHERE e.oid = ext.oid
    UNION ALL
    SELECT 'config table ' || c.relname || ' where ' || COALESCE(e.extcondition[i], '')
      FROM pg_extension e, ext, generate_subscripts(e.extconfig, 1) i, pg_class c
     WHERE e.oid = ext.oid AND c.oid = e.extconfig[i]
    UNION ALL
    -- the schema's privileges
    SELECT 'schema modelmine acl ' || COALESCE(array_to_string(ARRAY(SELECT x::text FROM unnest(n.nspacl) x ORDER BY 1), ','), '')
      FROM pg_namespace n WHERE n.nspname = 'modelmine'
    UNION ALL
    -- functions: the whole definition (signature, body, volatility, security, SET clauses), comment, ACL
    SELECT 'function ' || p.oid::regprocedure || E'\n' || pg_get_functiondef(p.oid)
           || E'\ncomment ' || COALESCE(obj_description(p.oid, 'pg_proc'), '<none>')
           || E'\nacl ' || COALESCE(array_to_string(ARRAY(SELECT x::text FROM unnest(p.proacl) x ORDER BY 1), ','), '<default>')
           || ' cost ' || p.procost || ' rows ' || p.prorows
      FROM pg_proc p JOIN member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    UNION ALL
    -- relations: kind, comment, ACL, options
    SELECT 'relation ' || c.relname || ' kind ' || c.relkind::text || ' rls ' || c.relrowsecurity
           || ' options ' || COALESCE(array_to_string(c.reloptions, ','), '')
           || ' comment ' || COALESCE(obj_description(c.oid, 'pg_class'), '<none>')
           || ' acl ' || COALESCE(array_to_string(ARRAY(SELECT x::text FROM unnest(c.relacl) x ORDER BY 1), ','), '<default>')
      FROM pg_class c JOIN member m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
    UNION ALL
    -- columns, in order, of tables, views and composite types
    SELECT 'column ' || c.relname || '.' || lpad(a.attnum::text, 3, '0') || ' ' || a.attname || ' '
           || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
           || CASE WHEN a.attgenerated <> '' THEN ' generated ' || a.attgenerated::text ELSE '' END
           || COALESCE(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
           || COALESCE(' comment ' || col_description(c.oid, a.attnum), '')
      FROM pg_class c
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
     WHERE c.relnamespace = 'modelmine'::regnamespace AND c.relkind IN ('r', 'v', 'c', 'm')
    UNION ALL
    -- view definitions
    SELECT 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid)
      FROM pg_class c WHERE c.relnamespace = 'modelmine'::regnamespace AND c.relkind = 'v'
    UNION ALL
    -- constraints, indexes, triggers
    SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace = 'modelmine'::regnamespace
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = 'modelmine'::regnamespace
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(t.oid)
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     WHERE c.relnamespace = 'modelmine'::regnamespace AND NOT t.tgisinternal
    UNION ALL
    -- identity sequences
    SELECT 'sequence ' || c.relname || ' start ' || s.seqstart || ' increment ' || s.seqincrement
           || ' min ' || s.seqmin || ' max ' || s.seqmax || ' type ' || format_type(s.seqtypid, NULL)
      FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = 'modelmine'::regnamespace
    UNION ALL
    -- types: enum labels in order, and comments
    SELECT 'enum ' || t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
      FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid WHERE t.typnamespace = 'modelmine'::regnamespace
     GROUP BY t.typname
    UNION ALL
    SELECT 'type ' || t.typname || ' comment ' || COALESCE(obj_description(t.oid, 'pg_type'), '<none>')
      FROM pg_type t JOIN member m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    -- what the roles may do
    SELECT 'role ' || r.rolname || ' member of '
           || COALESCE((SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members am
                          JOIN pg_roles g ON g.oid = am.roleid WHERE am.member = r.oid), '')
      FROM pg_roles r WHERE r.rolname LIKE 'modelmine\_%'
    UNION ALL
    -- the settings an install starts with (names, ranges, meanings; values may have been changed)
    SELECT 'setting ' || name || ' ' || min_value || '..' || max_value || ' ' || description
      FROM modelmine.settings
)
SELECT line FROM facts ORDER BY line;
