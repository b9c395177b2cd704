-- nodecounts: the maintained node counts behind network_stats() (issue 20, extension/nodeseen.c).
-- A trigger on nodes appends -1 at a node's previous last_seen and +1 at its new one (and +1/-1 for a
-- node registered or deleted); the fold adds them into node_seen_stats by time of last heartbeat at
-- widths of a second, a millisecond and a microsecond; _nodes_seen_since(t) and _node_counts() read them.
-- Every figure is compared with a recount of modelmine.nodes: with the deltas unfolded (inside the
-- transaction that wrote them) and folded, across the offline threshold to the microsecond, when the
-- clock moves either way, when offline_after_seconds changes, and when a node is deleted.
-- Times are moved as the superuser (UPDATE last_seen), as the other files do.
\i regress/include/fresh.sql
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_mm_nc_user;
DROP ROLE IF EXISTS regress_mm_nc_node;
RESET client_min_messages;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
-- Fold at every commit, so the folded table can be shown.
UPDATE modelmine.settings SET value = 0 WHERE name = 'fold_interval_ms';
CREATE ROLE regress_mm_nc_user LOGIN;
GRANT modelmine_user TO regress_mm_nc_user;
CREATE ROLE regress_mm_nc_node LOGIN;
GRANT modelmine_node TO regress_mm_nc_node;

-- What network_stats() says next to a recount of the OFFLINE rule over every node, and the violations
-- check_invariants() reports about node counts.
CREATE OR REPLACE FUNCTION counts()
    RETURNS TABLE (online bigint, total bigint, recount_online bigint, recount_total bigint, same boolean,
                   violations text[])
    LANGUAGE sql AS $$
    SELECT s.nodes_online, s.nodes_total, r.online, r.total,
           s.nodes_online = r.online AND s.nodes_total = r.total,
           (SELECT COALESCE(array_agg(i.invariant ORDER BY i.invariant), '{}') FROM modelmine.check_invariants() i
             WHERE i.invariant LIKE 'node%')
      FROM modelmine.network_stats() s,
           (SELECT count(*) FILTER (WHERE last_seen >= now() - make_interval(
                       secs => (SELECT value FROM modelmine.settings WHERE name = 'offline_after_seconds'))) AS online,
                   count(*) AS total
              FROM modelmine.nodes) r
$$;
-- _nodes_seen_since(t) against count(*) WHERE last_seen >= t for every threshold given and, for every
-- node, its last_seen and the microsecond before and after it: the thresholds tried and how many
-- disagreed (must be 0).
CREATE OR REPLACE FUNCTION since_mismatches(extra timestamptz[])
    RETURNS TABLE (thresholds bigint, mismatches bigint)
    LANGUAGE sql AS $$
    SELECT count(*), count(*) FILTER (WHERE modelmine._nodes_seen_since(t.t)
                                           <> (SELECT count(*) FROM modelmine.nodes n WHERE n.last_seen >= t.t))
      FROM (SELECT unnest(extra) AS t
            UNION SELECT last_seen + d * interval '1 microsecond'
                    FROM modelmine.nodes, (VALUES (-1), (0), (1)) v(d) WHERE last_seen IS NOT NULL) t
$$;

-------------------------------------------------------------------------------------------------------
-- Registration and heartbeats through the API
-------------------------------------------------------------------------------------------------------
SELECT modelmine.signup('ops@example.com', 'ops password') AS ops \gset
SELECT modelmine.login('ops@example.com', 'ops password') AS tok \gset
-- No node: 0 of 0, nothing stored.
SELECT * FROM counts();
SET ROLE regress_mm_nc_user;
SELECT modelmine.authenticate(:'tok') IS NOT NULL AS signed_in;
SELECT node_id AS n1, node_key AS key1 FROM modelmine.register_node('one', '{"trainers": ["mlp"]}') \gset
SELECT node_id AS n2, node_key AS key2 FROM modelmine.register_node('two', '{"trainers": ["mlp"]}') \gset
SELECT node_id AS n3, node_key AS key3 FROM modelmine.register_node('three', '{"trainers": ["mlp"]}') \gset
RESET ROLE;
-- Three registered, none has sent a heartbeat: 0 online of 3; one folded row (width 0) counts them.
SELECT * FROM counts();
SELECT width, nodes FROM modelmine.node_seen_stats ORDER BY width;
-- Each node beats: 3 of 3.  A beat inserts deltas only: within the beating transaction node_seen_stats
-- is untouched (no shared row is updated by a heartbeat), and the transaction's own reads already count
-- it (the unfolded deltas are added).
SET ROLE regress_mm_nc_node;
BEGIN;
SELECT modelmine.authenticate_node(:'key1') = :n1 AS node1, modelmine.heartbeat(1, 1, 2) AS holds;
RESET ROLE;
SELECT at = now() AS at_now, nodes FROM modelmine.node_seen_deltas;
SELECT width, nodes FROM modelmine.node_seen_stats ORDER BY width;
SELECT online, total, same FROM counts();
COMMIT;
SET ROLE regress_mm_nc_node;
SELECT modelmine.authenticate_node(:'key2') = :n2 AS node2, modelmine.heartbeat(1, 1, 2) AS holds;
SELECT modelmine.authenticate_node(:'key3') = :n3 AS node3, modelmine.heartbeat(1, 1, 2) AS holds;
RESET ROLE;
SELECT * FROM counts();
-- Folded: each width counts the 3 nodes seen, and the 3 registered; the beats were three transactions,
-- so three microsecond buckets (the millisecond and second ones depend on timing).
SELECT count(*) AS deltas_left FROM modelmine.node_seen_deltas;
SELECT width, sum(nodes) AS nodes FROM modelmine.node_seen_stats GROUP BY width ORDER BY width;
SELECT count(*) AS microsecond_buckets FROM modelmine.node_seen_stats WHERE width = 1;
-- A second beat moves a node's count from its old time to the new one: still 3 of 3.
SET ROLE regress_mm_nc_node;
SELECT modelmine.authenticate_node(:'key1') = :n1 AS node1, modelmine.heartbeat(1, 1, 2) AS holds;
RESET ROLE;
SELECT * FROM counts();
SELECT width, sum(nodes) AS nodes FROM modelmine.node_seen_stats GROUP BY width ORDER BY width;
SELECT count(*) AS microsecond_buckets FROM modelmine.node_seen_stats WHERE width = 1;

-------------------------------------------------------------------------------------------------------
-- The offline threshold, to the microsecond (one transaction, so now() is one instant)
-------------------------------------------------------------------------------------------------------
-- offline_after_seconds is 15: seen 15 s ago is online, 15.000001 s ago is not (_node_status agrees).
BEGIN;
UPDATE modelmine.nodes SET last_seen = now() - interval '15 seconds' WHERE id = :n1;
SELECT online, total, same FROM counts();
SELECT status AS n1_seen_15s_ago FROM modelmine.node_stats(:n1);
UPDATE modelmine.nodes SET last_seen = now() - interval '15.000001 seconds' WHERE id = :n1;
SELECT online, total, same FROM counts();
SELECT status AS n1_seen_15_000001s_ago FROM modelmine.node_stats(:n1);
UPDATE modelmine.nodes SET last_seen = now() - interval '14.999999 seconds' WHERE id = :n2;
UPDATE modelmine.nodes SET last_seen = now() - interval '16 seconds' WHERE id = :n3;
SELECT online, total, same FROM counts();
COMMIT;
-- Folded at the commit, and still equal to the recount (now() has moved on: n2 has gone offline too).
SELECT count(*) AS deltas_left FROM modelmine.node_seen_deltas;
SELECT * FROM counts();

-- Every kind of threshold: on a whole second, a whole millisecond, and neither, with nodes seen just
-- before, at and after it (the microsecond, millisecond and second around it), unfolded and folded.
-- Node times are set as the superuser on nodes inserted directly (no accounts: they can be deleted).
CREATE TEMP TABLE probe (t timestamptz);
INSERT INTO probe
SELECT b + o FROM (SELECT date_trunc('second', now()) - interval '1 hour' AS b) x,
       (VALUES (interval '0'), (interval '1 millisecond'), (interval '0.123457 seconds'),
               (interval '0.999999 seconds'), (interval '0.000001 seconds')) v(o);
BEGIN;
INSERT INTO modelmine.nodes (operator_id, name, key_hash, capabilities, requirements, last_seen)
SELECT :ops, 'probe-' || row_number() OVER (), '\x00', '{}', '{}', p.t + d.d
  FROM probe p, (VALUES (interval '-1 second'), (interval '-1 millisecond'), (interval '-1 microsecond'),
                        (interval '0'), (interval '1 microsecond'), (interval '1 millisecond'),
                        (interval '1 second')) d(d);
SELECT count(*) AS probe_nodes FROM modelmine.nodes WHERE name LIKE 'probe-%';
SELECT * FROM since_mismatches((SELECT array_agg(t) FROM probe));
COMMIT;
SELECT count(*) AS deltas_left FROM modelmine.node_seen_deltas;
SELECT * FROM since_mismatches((SELECT array_agg(t) FROM probe));
SELECT online, total, same, violations FROM counts();

-------------------------------------------------------------------------------------------------------
-- offline_after_seconds changed by an admin: the count follows at once
-------------------------------------------------------------------------------------------------------
-- The probe nodes were seen about an hour ago; n2 and n3 some seconds ago.  At 3600 s a part of the
-- probes is online (those seen within the hour), at 6 s none; each time the same as the recount.
SELECT modelmine.set_setting('offline_after_seconds', 3600);
SELECT same, violations FROM counts();
SELECT online > 3 AS some_probes_online_at_3600 FROM counts();
SELECT modelmine.set_setting('offline_after_seconds', 6);
SELECT same, violations FROM counts();
SELECT modelmine.set_setting('offline_after_seconds', 15);
SELECT same, violations FROM counts();

-------------------------------------------------------------------------------------------------------
-- Clock movement
-------------------------------------------------------------------------------------------------------
-- A node seen "in the future" (the database clock was set back after its heartbeat) is online, as the
-- recount (last_seen >= now() - 15 s) says; a node seen a day ago is not; a node never seen (last_seen
-- NULL again) is counted in the total only.
UPDATE modelmine.nodes SET last_seen = now() + interval '1 hour' WHERE id = :n1;
SELECT online, total, same, violations FROM counts();
UPDATE modelmine.nodes SET last_seen = now() - interval '1 day' WHERE id = :n1;
SELECT online, total, same, violations FROM counts();
UPDATE modelmine.nodes SET last_seen = NULL WHERE id = :n1;
SELECT online, total, same, violations FROM counts();
-- Time passing: a node seen now is online; 16 s later (moving every node's time back by 16 s is the
-- same as the clock moving 16 s forward) it is not, without any write to the counts but the move.
UPDATE modelmine.nodes SET last_seen = now() WHERE id = :n1;
SELECT online, total, same FROM counts();
UPDATE modelmine.nodes SET last_seen = last_seen - interval '16 seconds' WHERE last_seen IS NOT NULL;
SELECT online, total, same, violations FROM counts();
UPDATE modelmine.nodes SET last_seen = last_seen + interval '16 seconds' WHERE last_seen IS NOT NULL;
SELECT online, total, same, violations FROM counts();

-------------------------------------------------------------------------------------------------------
-- Deletion
-------------------------------------------------------------------------------------------------------
-- There is no API to delete a node (its account and history reference it); an admin may still delete an
-- unused one directly.  The trigger takes it out of both counts.
BEGIN;
DELETE FROM modelmine.nodes WHERE name IN ('probe-1', 'probe-2');
SELECT same, violations FROM counts();
COMMIT;
DELETE FROM modelmine.nodes WHERE name LIKE 'probe-%';
SELECT * FROM counts();
SELECT width, sum(nodes) AS nodes FROM modelmine.node_seen_stats GROUP BY width ORDER BY width;
-- Empty buckets are deleted, not kept at 0.
SELECT count(*) AS zero_buckets FROM modelmine.node_seen_stats WHERE nodes = 0;

-------------------------------------------------------------------------------------------------------
-- Tampering is visible to check_invariants()
-------------------------------------------------------------------------------------------------------
BEGIN;
UPDATE modelmine.node_seen_stats SET nodes = nodes + 1 WHERE width = 1;
SELECT invariant, regexp_replace(detail, ' at .*:', ' at ...:') AS detail
  FROM modelmine.check_invariants() WHERE invariant LIKE 'node%' ORDER BY 1, 2;
ROLLBACK;
BEGIN;
INSERT INTO modelmine.node_seen_deltas (at, nodes) VALUES (NULL, 1);
SELECT invariant, detail FROM modelmine.check_invariants() WHERE invariant LIKE 'node%' ORDER BY 1, 2;
ROLLBACK;
SELECT * FROM modelmine.check_invariants();
