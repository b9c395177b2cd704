-- ledger: the tamper-evident chain of completed jobs (docs/LEDGER.md).  Genesis at install, one block
-- per completed job, the documented worked example recomputed from its fields (so the document and
-- the code cannot drift apart), append-only for every role, argument errors, the invariant that ties
-- completed jobs to blocks, and tampering: as a superuser with the triggers disabled, every kind of
-- change is reported at the right height with the right reason, and undone afterwards.
\i regress/include/fresh.sql
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_mm_ledger_reader;
DROP ROLE IF EXISTS regress_mm_ledger_writer;
RESET client_min_messages;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
-- The canonical timestamp form, UTC with exactly six fraction digits.
CREATE FUNCTION ts(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$;
-- A login role with nothing but membership in modelmine_anon: what any outside reader has.
CREATE ROLE regress_mm_ledger_reader LOGIN;
GRANT modelmine_anon TO regress_mm_ledger_reader;

-------------------------------------------------------------------------------------------------------
-- Genesis
-------------------------------------------------------------------------------------------------------
-- CREATE EXTENSION made block 0: linked to 32 zero bytes, every job field empty.
SELECT height, prev_hash = decode(repeat('00', 32), 'hex') AS links_to_32_zero_bytes,
       length(hash) AS hash_bytes, job_id, user_id, node_id, stake, reward, fee, accuracy, loss, epochs,
       completed_at, created_at <= now() AS created_at_install
  FROM modelmine.ledger;
-- Its hash is SHA-256 of the documented preimage, built here by hand from the row (core sha256()).
SELECT hash = sha256(convert_to(repeat('0', 64) || E'\nmodelmine-block-v1|0||||||||||\n' || ts(created_at), 'UTF8'))
       AS hash_as_documented,
       convert_from(modelmine.block_preimage(0), 'UTF8')
           = repeat('0', 64) || E'\nmodelmine-block-v1|0||||||||||\n' || ts(created_at) AS preimage_as_documented
  FROM modelmine.ledger WHERE height = 0;
SELECT * FROM modelmine.verify_ledger();
SELECT d -> 'height' AS height, d ->> 'hash' = (SELECT encode(hash, 'hex') FROM modelmine.ledger) AS hash_is_genesis,
       (d ->> 'time')::timestamptz = (SELECT created_at FROM modelmine.ledger) AS time_is_genesis, d -> 'pending' AS pending
  FROM modelmine.ledger_digest() d;

-------------------------------------------------------------------------------------------------------
-- Completed jobs become blocks
-------------------------------------------------------------------------------------------------------
-- ann submits four jobs; ops runs a node that claims them (as the regress files and specs do it: SQL
-- calls in a session bound to the node).
SELECT modelmine.signup('ann@example.com', 'ann password') AS ann, modelmine.signup('ops@example.com', 'ops password') AS ops;
SELECT modelmine.authenticate(modelmine.login('ops@example.com', 'ops password')) AS ops;
SELECT node_id, node_key FROM modelmine.register_node('node 1', '{"trainers": ["noop"], "slots": 4}') \gset
SELECT modelmine.authenticate(modelmine.login('ann@example.com', 'ann password')) AS ann;
SELECT modelmine.submit_job('iris', '{"trainer": "noop"}', NULL, 55) AS j1,
       modelmine.submit_job('boston', '{"trainer": "noop"}', NULL, 10) AS j2,
       modelmine.submit_job('doomed', '{"trainer": "noop"}', NULL, 20) AS j3,
       modelmine.submit_job('slow', '{"trainer": "noop"}', NULL, 30) AS j4;
SELECT modelmine.authenticate_node(:'node_key') = :node_id AS bound_to_node,
       modelmine.heartbeat(5, 100, 1000) AS holds;
SELECT job_id, attempt FROM modelmine.claim_jobs(4, 300) ORDER BY job_id;
-- Completion seals the job's block as its transaction commits.  Accuracy and loss are kept as the decimal
-- text the result carried ("0.90", not 0.9); a regression's null accuracy is an empty field.
SELECT modelmine.complete_job(1, '{"accuracy": 0.90, "loss": 0.1, "epochs": 1}') AS reward;
SELECT modelmine.complete_job(2, '{"accuracy": null, "loss": 12.5, "epochs": 3}') AS reward;
-- A failed job has no block.
SELECT modelmine.fail_job(3, 'out of memory') AS refund;
SELECT l.height, l.job_id, l.user_id, l.node_id = :node_id AS by_node, l.stake, l.reward, l.fee, l.accuracy,
       l.loss, l.epochs, l.completed_at = j.finished_at AS completed_at_is_finished_at
  FROM modelmine.ledger l LEFT JOIN modelmine.jobs j ON j.id = l.job_id ORDER BY l.height;
-- Every block links to the one before it, and its hash is SHA-256 of its preimage.
SELECT l.height, l.prev_hash = p.hash AS linked, l.hash = sha256(modelmine.block_preimage(l.height)) AS hashed
  FROM modelmine.ledger l JOIN modelmine.ledger p ON p.height = l.height - 1 ORDER BY l.height;
-- The preimage of block 1: prev_hash in hex, the data line, created_at (timestamps masked here).
SELECT split_part(p, E'\n', 1) = (SELECT encode(prev_hash, 'hex') FROM modelmine.ledger WHERE height = 1) AS line1_is_prev_hex,
       regexp_replace(split_part(p, E'\n', 2), '\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$', '<completed_at>') AS line2,
       split_part(p, E'\n', 3) = (SELECT ts(created_at) FROM modelmine.ledger WHERE height = 1) AS line3_is_created_at,
       split_part(p, E'\n', 2) LIKE '%|' || (SELECT ts(finished_at) FROM modelmine.jobs WHERE id = 1) AS completed_at_utc,
       right(p, 1) <> E'\n' AS no_trailing_newline
  FROM convert_from(modelmine.block_preimage(1), 'UTF8') p;
SELECT regexp_replace(convert_from(modelmine.block_preimage(2), 'UTF8'), '^.*\n(.*)\|[^|]*\n.*$', '\1') AS block2_data_line;
SELECT * FROM modelmine.verify_ledger();
SELECT * FROM modelmine.check_invariants();

-- A completion in a REPEATABLE READ transaction cannot seal (its snapshot may predate the head): the
-- entry waits in the queue and counts as recorded.  A ledger read sees it as pending and asks for
-- sealing at its own commit (never inside the call, where an open transaction would hold the seal
-- lock): once that read has committed, the block is there.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT modelmine.complete_job(4, '{"accuracy": 1, "loss": 0, "epochs": 7}') AS reward;
SELECT modelmine.seal_ledger() AS sealed_in_repeatable_read;
COMMIT;
SELECT job_id, stake, reward, fee, accuracy, loss, epochs FROM modelmine.ledger_queue;
SELECT max(height) AS head FROM modelmine.ledger;
SELECT * FROM modelmine.check_invariants();
SELECT d -> 'height' AS height, d -> 'pending' AS pending FROM modelmine.ledger_digest() d;
SELECT height, job_id, accuracy, loss, epochs FROM modelmine.ledger WHERE height = 3;
SELECT count(*) AS queued FROM modelmine.ledger_queue;
SELECT * FROM modelmine.verify_ledger();

-- What any reader sees: the table, ledger() with hashes in hex, the digest, verification, preimages.
SET ROLE regress_mm_ledger_reader;
SELECT height, job_id, stake, reward, fee, accuracy, loss, epochs FROM modelmine.ledger(0, 10);
SELECT height, job_id FROM modelmine.ledger(2, 1);
SELECT count(*) AS none FROM modelmine.ledger(0, 0);
SELECT count(*) AS past_the_head FROM modelmine.ledger(99);
SELECT bool_and(f.hash = encode(l.hash, 'hex') AND f.prev_hash = encode(l.prev_hash, 'hex')
                AND f.created_at = l.created_at AND f.completed_at IS NOT DISTINCT FROM l.completed_at) AS ledger_matches_table
  FROM modelmine.ledger() f JOIN modelmine.ledger l USING (height);
SELECT ok, height, blocks_checked FROM modelmine.verify_ledger(modelmine.ledger_digest());
SELECT length(modelmine.block_preimage(3)) > 64 AS can_read_preimage;
RESET ROLE;

-------------------------------------------------------------------------------------------------------
-- check_invariants ties completed jobs to ledger records (sealed or queued), one each
-------------------------------------------------------------------------------------------------------
-- A completed job whose block disappeared.
BEGIN;
ALTER TABLE modelmine.ledger DISABLE TRIGGER USER;
DELETE FROM modelmine.ledger WHERE job_id = 1;
SELECT * FROM modelmine.check_invariants();
ROLLBACK;
-- A completed job recorded twice (a block and a queued entry).
BEGIN;
INSERT INTO modelmine.ledger_queue (job_id, user_id, node_id, stake, reward, fee, completed_at)
    SELECT job_id, user_id, node_id, stake, reward, fee, completed_at FROM modelmine.ledger WHERE job_id = 2;
SELECT * FROM modelmine.check_invariants();
ROLLBACK;
-- A record for a job that did not complete.
BEGIN;
INSERT INTO modelmine.ledger_queue (job_id, user_id, node_id, stake, reward, fee, completed_at)
    VALUES (3, 1, :node_id, 20, 16, 4, now());
SELECT invariant, detail LIKE 'job 3 %has 1 ledger records' AS job_3_once FROM modelmine.check_invariants();
ROLLBACK;
SELECT * FROM modelmine.check_invariants();

-------------------------------------------------------------------------------------------------------
-- Append-only: UPDATE, DELETE and TRUNCATE are refused for every role
-------------------------------------------------------------------------------------------------------
-- The superuser.
SELECT * FROM err('UPDATE modelmine.ledger SET stake = 1 WHERE height = 1');
SELECT * FROM err('DELETE FROM modelmine.ledger WHERE height = 1');
SELECT * FROM err('TRUNCATE modelmine.ledger');
-- A role granted every privilege on the table.
CREATE ROLE regress_mm_ledger_writer;
GRANT modelmine_anon TO regress_mm_ledger_writer;
GRANT ALL ON modelmine.ledger TO regress_mm_ledger_writer;
SET ROLE regress_mm_ledger_writer;
SELECT * FROM err('UPDATE modelmine.ledger SET stake = 1 WHERE height = 1');
SELECT * FROM err('DELETE FROM modelmine.ledger');
SELECT * FROM err('TRUNCATE modelmine.ledger');
RESET ROLE;
-- ModelMine's own roles may only read.
SET ROLE regress_mm_ledger_reader;
SELECT * FROM err('UPDATE modelmine.ledger SET stake = 1 WHERE height = 1');
SELECT * FROM err($$INSERT INTO modelmine.ledger (height, prev_hash, hash, created_at) VALUES (9, '\x01', '\x02', now())$$);
SELECT * FROM err($$INSERT INTO modelmine.ledger_queue (job_id, user_id, node_id, stake, reward, fee, completed_at) VALUES (9, 1, 1, 1, 1, 0, now())$$);
RESET ROLE;
SELECT count(*) AS blocks, bool_and(stake IS DISTINCT FROM 1) AS unchanged FROM modelmine.ledger;
SELECT * FROM modelmine.verify_ledger();

-------------------------------------------------------------------------------------------------------
-- Bad arguments
-------------------------------------------------------------------------------------------------------
SELECT v.call, e.*
  FROM (VALUES ('SELECT * FROM modelmine.ledger(-1)'),
               ('SELECT * FROM modelmine.ledger(NULL)'),
               ('SELECT * FROM modelmine.ledger(0, -1)'),
               ('SELECT * FROM modelmine.ledger(0, 10001)'),
               ('SELECT * FROM modelmine.ledger(0, NULL)'),
               ('SELECT modelmine.seal_ledger(0)'),
               ('SELECT modelmine.seal_ledger(-1)'),
               ('SELECT modelmine.seal_ledger(1000001)'),
               ('SELECT modelmine.block_preimage(NULL)'),
               ('SELECT modelmine.block_preimage(-1)'),
               ('SELECT modelmine.block_preimage(99)')) v(call)
 CROSS JOIN LATERAL err(v.call) e;
-- A digest is {"height": N, "hash": "<64 hex digits>"}; anything else is refused the same way.
SELECT v.digest, e.code, e.message
  FROM (VALUES ('[]'), ('"4a3f"'), ('{}'), ('{"height": 1}'),
               ('{"hash": "' || repeat('ab', 32) || '"}'),
               ('{"height": -1, "hash": "' || repeat('ab', 32) || '"}'),
               ('{"height": "1", "hash": "' || repeat('ab', 32) || '"}'),
               ('{"height": 1, "hash": "' || repeat('ab', 31) || '"}'),
               ('{"height": 1, "hash": "' || repeat('zz', 32) || '"}'),
               ('{"height": 1, "hash": 42}')) v(digest)
 CROSS JOIN LATERAL err(format('SELECT * FROM modelmine.verify_ledger(%L)', v.digest)) e;
-- NULL arguments mean the defaults where there is one.
SELECT modelmine.seal_ledger(NULL) AS sealed, (SELECT ok FROM modelmine.verify_ledger(NULL)) AS ok;

-------------------------------------------------------------------------------------------------------
-- The worked example of docs/LEDGER.md, byte for byte
-------------------------------------------------------------------------------------------------------
-- Genesis and block 1 of a real run (one job completed), put in place of this chain for the length of
-- a transaction.  Their preimages must be exactly the documented bytes, and SHA-256 of those bytes the
-- documented hashes; verify_ledger() must accept them.  Change the encoding and this fails.
BEGIN;
ALTER TABLE modelmine.ledger DISABLE TRIGGER USER;
DELETE FROM modelmine.ledger;
INSERT INTO modelmine.ledger (height, prev_hash, hash, job_id, user_id, node_id, stake, reward, fee, accuracy,
                              loss, epochs, completed_at, created_at)
VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000',
        '\xf0737be3b551e595103a79ef972190284dfd296ee67040e088024e01049bef74',
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2026-11-28 15:53:56.224911+00'),
       (1, '\xf0737be3b551e595103a79ef972190284dfd296ee67040e088024e01049bef74',
        '\x4a3f457ce44f6d213fac0c4d5f416f81e73999569b73cfa62b7e53285e6a719f',
        1, 1, 1, 55, 44, 11, '0.9', '0.1', 1, '2026-11-28 15:53:56.406678+00', '2026-11-28 15:53:56.408856+00');
-- The session's time zone must not matter.
SET TIME ZONE 'America/New_York';
SELECT height, convert_from(modelmine.block_preimage(height), 'UTF8') AS preimage
  FROM modelmine.ledger ORDER BY height;
SELECT height,
       modelmine.block_preimage(height) = convert_to(documented, 'UTF8') AS preimage_as_documented,
       encode(sha256(convert_to(documented, 'UTF8')), 'hex') AS sha256_of_documented_bytes,
       hash = sha256(modelmine.block_preimage(height)) AS stored_hash_matches
  FROM modelmine.ledger
  JOIN (VALUES (0, E'0000000000000000000000000000000000000000000000000000000000000000\n'
                   'modelmine-block-v1|0||||||||||\n'
                   '2026-11-28T15:53:56.224911Z'),
               (1, E'f0737be3b551e595103a79ef972190284dfd296ee67040e088024e01049bef74\n'
                   'modelmine-block-v1|1|1|1|1|55|44|11|0.9|0.1|1|2026-11-28T15:53:56.406678Z\n'
                   '2026-11-28T15:53:56.408856Z')) doc(h, documented) ON doc.h = height
 ORDER BY height;
SELECT * FROM modelmine.verify_ledger();
RESET TIME ZONE;
ROLLBACK;
SELECT count(*) AS blocks FROM modelmine.ledger;

-------------------------------------------------------------------------------------------------------
-- Tampering
-------------------------------------------------------------------------------------------------------
-- A fresh chain of ten blocks (heights 0..10), made cheaply: queue entries sealed in one pass.
SET client_min_messages = warning;
DROP EXTENSION modelmine;
CREATE EXTENSION modelmine;
RESET client_min_messages;
INSERT INTO modelmine.ledger_queue (job_id, user_id, node_id, stake, reward, fee, accuracy, loss, epochs, completed_at)
SELECT 100 + i, 1 + i % 3, 7, 50 + i, 40 + i, 10, '0.' || (80 + i), '0.' || (20 + i), i, timestamptz '2026-01-01 00:00:00+00' + i * interval '1.5 s'
  FROM generate_series(1, 10) i;
SELECT modelmine.seal_ledger(1000) AS sealed;
SELECT height, job_id, user_id, node_id, stake, reward, fee, accuracy, loss, epochs, ts(completed_at) AS completed_at
  FROM modelmine.ledger ORDER BY height;
SELECT * FROM modelmine.verify_ledger();
-- Digests taken now: of the head (10) and of blocks 7 and 3.
SELECT modelmine.ledger_digest() AS digest_10 \gset
SELECT jsonb_build_object('height', height, 'hash', encode(hash, 'hex')) AS digest_7 FROM modelmine.ledger WHERE height = 7 \gset
SELECT jsonb_build_object('height', height, 'hash', encode(hash, 'hex')) AS digest_3 FROM modelmine.ledger WHERE height = 3 \gset
SELECT md5(string_agg(l::text, ',' ORDER BY height)) AS chain_before FROM modelmine.ledger l \gset

-- tampered(statements, digest): runs the statements as the superuser with the ledger's triggers
-- disabled, returns what verify_ledger(digest) then says, and undoes everything (the subtransaction
-- ends in an error).
CREATE FUNCTION tampered(stmts text, digest jsonb DEFAULT NULL,
                         OUT ok boolean, OUT height bigint, OUT first_bad_height bigint, OUT reason text)
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        ALTER TABLE modelmine.ledger DISABLE TRIGGER USER;
        EXECUTE stmts;
        SELECT v.ok, v.height, v.first_bad_height, v.reason INTO ok, height, first_bad_height, reason
          FROM modelmine.verify_ledger(digest) v;
        RAISE SQLSTATE 'MMUND';
    EXCEPTION WHEN SQLSTATE 'MMUND' THEN
        NULL;
    END;
END
$$;
-- rehash(from): what a careful forger does after changing blocks: from that height on, relink every
-- block to the (new) hash before it and store SHA-256 of its preimage.
CREATE FUNCTION rehash(from_height bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR h IN from_height .. (SELECT max(l.height) FROM modelmine.ledger l) LOOP
        UPDATE modelmine.ledger l SET prev_hash = (SELECT p.hash FROM modelmine.ledger p WHERE p.height = h - 1)
         WHERE l.height = h AND h > 0;
        UPDATE modelmine.ledger l SET hash = sha256(modelmine.block_preimage(h)) WHERE l.height = h;
    END LOOP;
END
$$;

-- One byte (or one digit) of each field of block 5; whole blocks removed, moved, swapped or added.
SELECT c.label, t.*
  FROM (VALUES
    ('nothing changed', 'SELECT 1'),
    ('stake',        'UPDATE modelmine.ledger SET stake = 56 WHERE height = 5'),
    ('reward',       'UPDATE modelmine.ledger SET reward = 44 WHERE height = 5'),
    ('fee',          'UPDATE modelmine.ledger SET fee = 11 WHERE height = 5'),
    ('job_id',       'UPDATE modelmine.ledger SET job_id = 905 WHERE height = 5'),
    ('user_id',      'UPDATE modelmine.ledger SET user_id = 2 WHERE height = 5'),
    ('node_id',      'UPDATE modelmine.ledger SET node_id = 8 WHERE height = 5'),
    ('accuracy',     $$UPDATE modelmine.ledger SET accuracy = '0.86' WHERE height = 5$$),
    ('loss',         $$UPDATE modelmine.ledger SET loss = '0.24' WHERE height = 5$$),
    ('epochs',       'UPDATE modelmine.ledger SET epochs = 6 WHERE height = 5'),
    ('completed_at', $$UPDATE modelmine.ledger SET completed_at = completed_at + interval '1 microsecond' WHERE height = 5$$),
    ('created_at',   $$UPDATE modelmine.ledger SET created_at = created_at - interval '1 microsecond' WHERE height = 5$$),
    ('prev_hash',    'UPDATE modelmine.ledger SET prev_hash = set_byte(prev_hash, 31, get_byte(prev_hash, 31) # 1) WHERE height = 5'),
    ('hash',         'UPDATE modelmine.ledger SET hash = set_byte(hash, 0, get_byte(hash, 0) # 1) WHERE height = 5'),
    ('accuracy erased', 'UPDATE modelmine.ledger SET accuracy = NULL WHERE height = 5'),
    ('hash cut to 31 bytes', 'UPDATE modelmine.ledger SET hash = substr(hash, 1, 31) WHERE height = 5'),
    ('prev_hash cut to 31 bytes', 'UPDATE modelmine.ledger SET prev_hash = substr(prev_hash, 1, 31) WHERE height = 5'),
    ('genesis prev_hash', $$UPDATE modelmine.ledger SET prev_hash = '\x01' || substr(prev_hash, 2) WHERE height = 0$$),
    ('genesis created_at', $$UPDATE modelmine.ledger SET created_at = created_at + interval '1 s' WHERE height = 0$$),
    ('head reward',  'UPDATE modelmine.ledger SET reward = 0 WHERE height = 10'),
    ('block 5 deleted', 'DELETE FROM modelmine.ledger WHERE height = 5'),
    ('genesis deleted', 'DELETE FROM modelmine.ledger WHERE height = 0'),
    ('every block deleted', 'TRUNCATE modelmine.ledger'),
    ('head deleted (invisible without a digest)', 'DELETE FROM modelmine.ledger WHERE height = 10'),
    ('blocks 3 and 7 swapped', 'UPDATE modelmine.ledger SET height = 1000 WHERE height = 3; '
                               'UPDATE modelmine.ledger SET height = 3 WHERE height = 7; '
                               'UPDATE modelmine.ledger SET height = 7 WHERE height = 1000'),
    -- (new row versions land after block 10 on disk: verification walks the height index instead)
    ('rows moved on disk, contents kept', 'UPDATE modelmine.ledger SET height = height WHERE height <= 5'),
    ('block 11 appended with a bad link', $$INSERT INTO modelmine.ledger (height, prev_hash, hash, created_at) VALUES (11, '\x01', '\x02', now())$$),
    ('block 12 appended after a gap', $$INSERT INTO modelmine.ledger (height, prev_hash, hash, created_at) VALUES (12, '\x01', '\x02', now())$$),
    ('block 5 rewritten, its hash recomputed', 'UPDATE modelmine.ledger SET reward = 0, fee = 55 WHERE height = 5; '
                               'UPDATE modelmine.ledger SET hash = sha256(modelmine.block_preimage(5)) WHERE height = 5'),
    ('tail from 5 rewritten, every hash recomputed', 'UPDATE modelmine.ledger SET reward = 0, fee = 55 WHERE height = 5; '
                               'SELECT rehash(5)')
  ) c(label, stmts)
 CROSS JOIN LATERAL tampered(c.stmts) t;

-- Digests kept outside the database catch the consistent rewrite: a digest of any block at or after
-- the first rewritten height no longer matches; one of an earlier block still does.  A digest also
-- catches a removed head, which the chain alone cannot show.
SELECT c.label, t.*
  FROM (VALUES
    ('no change, digest of the head', 'SELECT 1', :'digest_10'::jsonb),
    ('no change, digest of block 7', 'SELECT 1', :'digest_7'),
    ('tail from 5 rewritten, digest of the head', 'UPDATE modelmine.ledger SET reward = 0, fee = 55 WHERE height = 5; SELECT rehash(5)', :'digest_10'),
    ('tail from 5 rewritten, digest of block 7', 'UPDATE modelmine.ledger SET reward = 0, fee = 55 WHERE height = 5; SELECT rehash(5)', :'digest_7'),
    ('tail from 5 rewritten, digest of block 3', 'UPDATE modelmine.ledger SET reward = 0, fee = 55 WHERE height = 5; SELECT rehash(5)', :'digest_3'),
    ('block 3 rewritten with every later hash, digest of block 3', 'UPDATE modelmine.ledger SET stake = 1 WHERE height = 3; SELECT rehash(3)', :'digest_3'),
    ('head deleted, digest of the head', 'DELETE FROM modelmine.ledger WHERE height = 10', :'digest_10'),
    ('head rewritten and rehashed, digest of the head', 'UPDATE modelmine.ledger SET stake = 1 WHERE height = 10; SELECT rehash(10)', :'digest_10')
  ) c(label, stmts, digest)
 CROSS JOIN LATERAL tampered(c.stmts, c.digest) t;

-- The reason survives long blocks after the first bad one (before 1.1 it was copied into memory that
-- verification reuses for every block, and a 3 kB accuracy text in block 2 turned it into '').
SELECT c.label, t.ok, t.first_bad_height, t.reason, length(t.reason) AS reason_length
  FROM (VALUES
    ('digest of block 1 wrong, block 2 holds a 3 kB accuracy',
     $$UPDATE modelmine.ledger SET accuracy = '0.' || repeat('9', 3000) WHERE height = 2; SELECT rehash(2)$$,
     jsonb_build_object('height', 1, 'hash', repeat('ab', 32))),
    ('block 1 hash wrong, every later block holds a 3 kB loss',
     $$UPDATE modelmine.ledger SET loss = '0.' || repeat('1', 3000) WHERE height >= 2; SELECT rehash(2);
       UPDATE modelmine.ledger SET hash = set_byte(hash, 0, get_byte(hash, 0) # 1) WHERE height = 1$$,
     NULL::jsonb)
  ) c(label, stmts, digest)
 CROSS JOIN LATERAL tampered(c.stmts, c.digest) t;

-- Every case was undone: the chain is exactly what it was.
SELECT md5(string_agg(l::text, ',' ORDER BY height)) = :'chain_before' AS chain_unchanged FROM modelmine.ledger l;
SELECT * FROM modelmine.verify_ledger(:'digest_10');
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'modelmine.ledger'::regclass AND NOT tgisinternal ORDER BY 1;

DROP FUNCTION tampered(text, jsonb);
DROP FUNCTION rehash(bigint);
DROP FUNCTION ts(timestamptz);
DROP FUNCTION err(text);
DROP ROLE regress_mm_ledger_reader;
DROP ROLE regress_mm_ledger_writer;
