#!/usr/bin/env bash
# ledger-verifier: scripts/verify-ledger (psql export + python3 hashlib) and modelmine.verify_ledger()
# (C) agree on every chain: the good one, and each kind of tampering.
#
# A node completes 50 jobs through claim_jobs/complete_job (SQL calls in a session bound to the node),
# with varied results (null accuracy, "0.90", exponents, ...), so the chain is heights 0..50. Then each
# case below is applied as the superuser with the ledger's triggers disabled and committed, both
# verifiers run (the script as a plain modelmine_user login, which has only SELECT on the table), and:
#   - they print the same line: "BAD height=H: reason" exactly, or "ok height=N head=HASH" with the
#     head the table holds; the script exits 1 for BAD and 0 for ok;
#   - the verdict is the one the case expects (ok, or the first bad height);
# then the chain is restored from a copy and must be byte-identical to what it was.
# "Consistent" cases rewrite blocks with odd values (text with | tab newline backslash and UTF-8, year
# 0999 and 12345, infinity, a negative stake, an empty text) and re-hash the tail the way a forger
# would: both verifiers must accept them, which shows both encode those bytes identically.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin ledger-verifier

verifier=$MM_REPO/scripts/verify-ledger
command -v python3 >/dev/null || { fail "python3 is required by scripts/verify-ledger"; it_end; }

step "a node completes 50 jobs"
adm "UPDATE modelmine.settings SET value = 100000 WHERE name = 'signup_grant'" >/dev/null
ann=$(signup ann@example.com "ann password")
op=$(signup "$IT_OP_EMAIL" "$IT_OP_PW")
read -r node_id node_key <<<"$(register_node "$op" "sql node" '{"trainers": ["noop"]}')"
as_user "$ann" "SELECT modelmine.submit_job('job ' || i, '{\"trainer\": \"noop\"}', NULL, 5 + i * 7 % 40)
                  FROM generate_series(1, 50) i" >/dev/null
results=('{"accuracy": 0.90, "loss": 0.1, "epochs": 1}' '{"accuracy": null, "loss": 12.5, "epochs": 3}'
         '{"accuracy": 1, "loss": 0, "epochs": 0}' '{"accuracy": 0.123456789, "loss": 1e-7, "epochs": 250}'
         '{"loss": 3.25E+2, "epochs": 9}')
script=""
for i in $(seq 0 49); do
    script+="SELECT job_id FROM modelmine.claim_jobs(1, 300) \\gset
SELECT modelmine.complete_job(:job_id, '${results[i % 5]}') \\g /dev/null
"
done
as_node "$node_key" "$script" >/dev/null
check "50 jobs completed by node $node_id" "$(adm "SELECT count(*) FROM modelmine.jobs WHERE status = 'COMPLETED' AND node_id = $node_id")" 50
check "the chain is heights 0..50, nothing queued" \
    "$(adm "SELECT (SELECT count(*) || ' ' || min(height) || '..' || max(height) FROM modelmine.ledger) || ' ' || pending
              FROM (SELECT (modelmine.ledger_digest() ->> 'pending') AS pending) d")" "51 0..50 0"
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
check "accuracy and loss kept as the results' decimal text" \
    "$(adm "SELECT string_agg(DISTINCT coalesce(accuracy, 'NULL'), ' ' ORDER BY coalesce(accuracy, 'NULL')) || ' / ' ||
                   string_agg(DISTINCT loss, ' ' ORDER BY loss) FROM modelmine.ledger WHERE height > 0")" \
    "0.123456789 0.90 1 NULL / 0 0.0000001 0.1 12.5 325"

# Helpers (as the superuser, in the test's database): a copy to restore from, and the forger's re-hash.
adm "CREATE TABLE ledger_saved AS SELECT * FROM modelmine.ledger;
     CREATE FUNCTION rehash(from_height bigint) RETURNS void LANGUAGE plpgsql AS \$\$
     BEGIN
         FOR h IN from_height .. (SELECT max(l.height) FROM modelmine.ledger l) LOOP
             UPDATE modelmine.ledger l SET prev_hash = (SELECT p.hash FROM modelmine.ledger p WHERE p.height = h - 1)
              WHERE l.height = h AND h > 0;
             UPDATE modelmine.ledger l SET hash = sha256(modelmine.block_preimage(h)) WHERE l.height = h;
         END LOOP;
     END \$\$;" >/dev/null
chain_md5="SELECT md5(string_agg(l::text, ',' ORDER BY height)) FROM modelmine.ledger l"
saved_md5=$(adm "$chain_md5")
adm "SELECT modelmine.ledger_digest()" >"$IT_TMP/digest_head.json"
adm "SELECT jsonb_build_object('height', 20, 'hash', encode(hash, 'hex')) FROM modelmine.ledger WHERE height = 20" >"$IT_TMP/digest_20.json"
adm "SELECT jsonb_build_object('height', 30, 'hash', encode(hash, 'hex')) FROM modelmine.ledger WHERE height = 30" >"$IT_TMP/digest_30.json"

restore() {
    adm "BEGIN;
         ALTER TABLE modelmine.ledger DISABLE TRIGGER USER;
         DELETE FROM modelmine.ledger;
         INSERT INTO modelmine.ledger SELECT * FROM ledger_saved ORDER BY height;
         ALTER TABLE modelmine.ledger ENABLE TRIGGER USER;
         COMMIT;" >/dev/null
    [[ "$(adm "$chain_md5")" == "$saved_md5" ]] || { fail "could not restore the chain after: $1"; it_end; }
}

# tamper LABEL EXPECT SQL [DIGEST_FILE]: EXPECT is "ok" or the first bad height.
tamper() {
    local label=$1 want=$2 sql=$3 digest_file=${4:-} sql_line tool_line rc=0 darg=() dsql=NULL want_rc=1
    if [[ -n "$digest_file" ]]; then
        darg=(--digest "$IT_TMP/$digest_file")
        dsql="'$(cat "$IT_TMP/$digest_file")'"
        label="$label [digest ${digest_file%.json}]"
    fi
    adm "BEGIN;
         ALTER TABLE modelmine.ledger DISABLE TRIGGER USER;
         $sql;
         ALTER TABLE modelmine.ledger ENABLE TRIGGER USER;
         COMMIT;" >/dev/null
    sql_line=$(adm "SELECT CASE WHEN v.ok
                                THEN 'ok height=' || v.height || ' head=' ||
                                     (SELECT encode(hash, 'hex') FROM modelmine.ledger ORDER BY height DESC LIMIT 1)
                                ELSE 'BAD height=' || v.first_bad_height || ': ' || v.reason END
                      FROM modelmine.verify_ledger($dsql) v")
    tool_line=$("$verifier" "${darg[@]}" -U mm_client -d "$IT_DB" 2>&1) || rc=$?
    [[ $want == ok ]] && want_rc=0
    if [[ "$tool_line" != "$sql_line" ]]; then
        fail "$label: the verifiers disagree"$'\n'"      verify_ledger(): $sql_line"$'\n'"      verify-ledger:   $tool_line"
    elif [[ $rc -ne $want_rc ]]; then
        fail "$label: verify-ledger exited $rc, want $want_rc ($tool_line)"
    elif [[ $want == ok && $sql_line != ok\ * ]] || [[ $want != ok && $sql_line != "BAD height=$want:"* ]]; then
        fail "$label: both say '$sql_line', want $want"
    else
        pass "$label: both say ${sql_line%% head=*}"
    fi
    restore "$label"
}

step "the good chain"
tamper "untouched" ok "SELECT 1"
tamper "untouched" ok "SELECT 1" digest_head.json
tamper "untouched" ok "SELECT 1" digest_20.json

step "one field of block 25 changed"
for f in stake reward fee job_id user_id node_id epochs; do
    tamper "$f + 1000" 25 "UPDATE modelmine.ledger SET $f = $f + 1000 WHERE height = 25"
done
tamper "accuracy" 25 "UPDATE modelmine.ledger SET accuracy = '0.91' WHERE height = 25"
tamper "loss" 25 "UPDATE modelmine.ledger SET loss = loss || '1' WHERE height = 25"
tamper "accuracy erased (block 26)" 26 "UPDATE modelmine.ledger SET accuracy = NULL WHERE height = 26"
tamper "completed_at + 1 us" 25 "UPDATE modelmine.ledger SET completed_at = completed_at + interval '1 microsecond' WHERE height = 25"
tamper "created_at - 1 us" 25 "UPDATE modelmine.ledger SET created_at = created_at - interval '1 microsecond' WHERE height = 25"
tamper "prev_hash, one bit" 25 "UPDATE modelmine.ledger SET prev_hash = set_byte(prev_hash, 7, get_byte(prev_hash, 7) # 16) WHERE height = 25"
tamper "hash, one bit" 25 "UPDATE modelmine.ledger SET hash = set_byte(hash, 31, get_byte(hash, 31) # 1) WHERE height = 25"
tamper "hash cut to 31 bytes" 25 "UPDATE modelmine.ledger SET hash = substr(hash, 1, 31) WHERE height = 25"
tamper "prev_hash cut to 1 byte" 25 "UPDATE modelmine.ledger SET prev_hash = substr(prev_hash, 1, 1) WHERE height = 25"
tamper "genesis prev_hash" 0 "UPDATE modelmine.ledger SET prev_hash = set_byte(prev_hash, 0, 1) WHERE height = 0"
tamper "genesis created_at" 0 "UPDATE modelmine.ledger SET created_at = created_at + interval '1 s' WHERE height = 0"
tamper "head reward" 50 "UPDATE modelmine.ledger SET reward = reward + 1 WHERE height = 50"

step "blocks deleted, swapped, moved, added"
tamper "block 25 deleted" 25 "DELETE FROM modelmine.ledger WHERE height = 25"
tamper "genesis deleted" 0 "DELETE FROM modelmine.ledger WHERE height = 0"
tamper "every block deleted" 0 "TRUNCATE modelmine.ledger"
tamper "head deleted (no digest: invisible)" ok "DELETE FROM modelmine.ledger WHERE height = 50"
tamper "head deleted" 50 "DELETE FROM modelmine.ledger WHERE height = 50" digest_head.json
tamper "blocks 12 and 37 swapped" 12 "UPDATE modelmine.ledger SET height = 1000 WHERE height = 12;
                                      UPDATE modelmine.ledger SET height = 12 WHERE height = 37;
                                      UPDATE modelmine.ledger SET height = 37 WHERE height = 1000"
tamper "rows moved on disk, contents kept" ok "UPDATE modelmine.ledger SET height = height WHERE height < 25"
tamper "block 51 appended, bad link" 51 "INSERT INTO modelmine.ledger (height, prev_hash, hash, created_at) VALUES (51, '\\x01', '\\x02', now())"
tamper "block 52 appended after a gap" 51 "INSERT INTO modelmine.ledger (height, prev_hash, hash, created_at) VALUES (52, '\\x01', '\\x02', now())"

step "rewrites with recomputed hashes"
tamper "block 25 rewritten, its own hash recomputed" 26 \
    "UPDATE modelmine.ledger SET reward = 0, fee = stake WHERE height = 25;
     UPDATE modelmine.ledger SET hash = sha256(modelmine.block_preimage(25)) WHERE height = 25"
rewrite="UPDATE modelmine.ledger SET reward = 0, fee = stake WHERE height = 25; SELECT rehash(25)"
tamper "tail from 25 rewritten consistently" ok "$rewrite"
tamper "tail from 25 rewritten consistently" 50 "$rewrite" digest_head.json
tamper "tail from 25 rewritten consistently" 30 "$rewrite" digest_30.json
tamper "tail from 25 rewritten consistently" ok "$rewrite" digest_20.json
tamper "head rewritten and re-hashed" 50 "UPDATE modelmine.ledger SET stake = 1 WHERE height = 50; SELECT rehash(50)" digest_head.json

step "odd values, re-hashed consistently: both must encode them identically"
tamper "accuracy with | tab newline backslash \\N and UTF-8" ok \
    "UPDATE modelmine.ledger SET accuracy = E'0.9|\\t\\\\N\\n\"\\\\ é€' WHERE height = 25; SELECT rehash(25)"
tamper "loss empty, epochs NULL, stake negative" ok \
    "UPDATE modelmine.ledger SET loss = '', epochs = NULL, stake = -5 WHERE height = 25; SELECT rehash(25)"
tamper "completed_at in year 999, created_at in 12345" ok \
    "UPDATE modelmine.ledger SET completed_at = '0999-01-02 03:04:05.000001+00', created_at = '12345-06-07 08:09:10.5+00'
      WHERE height = 25; SELECT rehash(25)"
tamper "completed_at infinity, created_at just before 2000" ok \
    "UPDATE modelmine.ledger SET completed_at = 'infinity', created_at = '1999-12-31 23:59:59.999999+00'
      WHERE height = 25; SELECT rehash(25)"
tamper "odd accuracy, then block 26's fee changed" 26 \
    "UPDATE modelmine.ledger SET accuracy = E'a\\tb' WHERE height = 25; SELECT rehash(25);
     UPDATE modelmine.ledger SET fee = fee + 1 WHERE height = 26"

step "usage and connection errors: exit status 2"
rc=0; "$verifier" -U mm_client -d it_no_such_database >/dev/null 2>&1 || rc=$?
check "a database that does not exist" "$rc" 2
rc=0; "$verifier" --digest '{"height": 1}' -d "$IT_DB" >/dev/null 2>&1 || rc=$?
check "a digest without a hash" "$rc" 2
rc=0; "$verifier" --digest "$IT_TMP/no-such-file.json" -d "$IT_DB" >/dev/null 2>&1 || rc=$?
check "a digest file that does not exist" "$rc" 2
rc=0; "$verifier" --digest >/dev/null 2>&1 || rc=$?
check "--digest without a value" "$rc" 2
check "the inline JSON digest works like the file" \
    "$("$verifier" --digest "$(cat "$IT_TMP/digest_head.json")" -d "$IT_DB" | cut -d' ' -f1-2)" "ok height=50"

check "the chain is as it was, and verifies" "$(adm "SELECT ($chain_md5) = '$saved_md5' AND (SELECT ok FROM modelmine.verify_ledger())")" t
it_end
