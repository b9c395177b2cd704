#!/usr/bin/env bash
# sql-fuzz: every SQL function granted to modelmine_anon, modelmine_user and modelmine_node, called
# with random and extreme arguments (NULL, empty, huge and unicode text, control characters, integer
# extremes, NaN/Infinity, malformed, deep and huge JSON, huge arrays, infinite timestamps, real ids,
# tokens and keys) in random order from a seed, as login roles holding those roles, signed in (a real
# session token / node key) and not (regress/integration/sql-fuzz.py does the calls).
# Pass: no backend crash (server log), no error without a SQLSTATE or of class XX (internal error),
# no lost connection, and check_invariants() empty after every seed.
#
# In the suite: the fixed seeds below, about a minute. By hand, longer or one seed to replay:
#   bash regress/integration/sql-fuzz.sh --seconds 600          seeds 1000, 1001, ... for 10 minutes
#   bash regress/integration/sql-fuzz.sh --seed 1234 [--calls N] replay seed 1234 (a fresh database:
#                                                                the same calls as the first time)
# The sessions and every error go to $IT_TMP/sql-fuzz.log (IT_KEEP=1 keeps it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

args=("$@")
[[ ${#args[@]} -gt 0 ]] || args=(--seed 1 --seed 2 --seed 3 --seed 4 --calls 500)
[[ " ${args[*]} " != *" --seconds "* || " ${args[*]} " == *" --seed "* ]] || args+=(--seed 1000)

it_begin sql-fuzz
# Login roles holding exactly one of the three roles each (cluster-wide: create when missing).
adm "DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_fz_anon') THEN
        CREATE ROLE mm_fz_anon LOGIN IN ROLE modelmine_anon; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_fz_user') THEN
        CREATE ROLE mm_fz_user LOGIN IN ROLE modelmine_user; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_fz_node') THEN
        CREATE ROLE mm_fz_node LOGIN IN ROLE modelmine_node; END IF;
EXCEPTION WHEN duplicate_object THEN NULL;
END \$\$"

step "fuzzing: ${args[*]}"
rc=0
python3 "$MM_REPO/regress/integration/sql-fuzz.py" --db "$IT_DB" \
    --server-log "$MM_CLUSTER_DIR/postgres.log" --log "$IT_TMP/sql-fuzz.log" "${args[@]}" || rc=$?
check "sql-fuzz.py passed (no crash, no XX000, invariants hold)" "$rc" 0
it_end
