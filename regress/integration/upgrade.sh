#!/usr/bin/env bash
# upgrade: every released version updates to the current one and ends up exactly where a fresh
# install starts, with the books and the ledger intact.
#
# For each released version (PREVIOUS below: version and the commit it landed at) this test, on a
# cluster of its own:
#   1. builds that version's library from git and installs it with its own install script, as a
#      running 1.0 site has it;
#   2. fills it through that version's API: users, transfers, jobs submitted, completed (ledger blocks),
#      failed and canceled, a node's earnings withdrawn; takes a ledger digest and the balances;
#   3. restarts the same data directory with the current library (a package upgrade) and checks that
#      the library refuses the old schema with the hint to update, then runs ALTER EXTENSION UPDATE;
#   4. requires check_invariants() to be empty, verify_ledger(digest) to pass, every balance to be
#      unchanged, and the catalog fingerprint (regress/integration/fingerprint.sql: functions with
#      bodies, comments and grants; tables, columns, constraints, indexes, triggers, views, types,
#      roles) to equal a fresh install of the current version in another database;
#   5. uses the current API on the updated data (a node completes a job: a new block on the old chain).
set -euo pipefail
. "$MM_REPO/regress/integration/lib.sh"
. "$MM_REPO/scripts/lib/cluster.sh"
IT_NAME=upgrade

# version:commit of every released version that must update to the current one.
PREVIOUS=(
    "1.0:233254e4afd9e55e4902c5096b1a91292f81375e"
)
: "${MM_PGTREE:?MM_PGTREE (the private tree of the current build) is not set}"
current=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$MM_REPO/modelmine.control")

work=$(mm_tmpdir upgrade)
cluster=""
cleanup() {
    trap - EXIT
    set +e
    [[ -n "$cluster" ]] && mm_cluster_stop "$cluster"
    [[ ${IT_KEEP:-0} == 1 ]] && { echo "kept: $work"; return; }
    rm -rf "$work"
}
trap cleanup EXIT

# old_tree VERSION COMMIT DIR: a copy of the current private tree with that version's library, control
# file and install script in place of the current ones.
old_tree() {
    local version=$1 commit=$2 dir=$3 src=$work/src-$1 pgc extdir libdir
    pgc=$(mm_pg_config)
    if ! git -C "$MM_REPO" cat-file -e "$commit^{commit}" 2>/dev/null; then
        echo "commit $commit (version $version) is not in this clone; fetching the full history"
        git -C "$MM_REPO" fetch --quiet --unshallow 2>/dev/null || git -C "$MM_REPO" fetch --quiet origin "$commit"
    fi
    mkdir -p "$src"
    git -C "$MM_REPO" archive "$commit" Makefile modelmine.control extension sql | tar -x -C "$src"
    make -C "$src" -s modelmine.so PG_CONFIG="$pgc" >"$work/build-$version.log" 2>&1 ||
        { cat "$work/build-$version.log"; return 1; }
    make -C "$src" -s "sql/modelmine--$version.sql" PG_CONFIG="$pgc" >/dev/null 2>&1 || true
    cp -a "$MM_PGTREE" "$dir"
    extdir=$dir$("$pgc" --sharedir)/extension
    libdir=$dir$("$pgc" --pkglibdir)
    rm -f "$extdir"/modelmine*
    cp "$src/modelmine.control" "$src/sql/modelmine--$version.sql" "$extdir/"
    cp "$src/modelmine.so" "$libdir/modelmine.so"
    rm -rf "$libdir/bitcode/modelmine" "$libdir/bitcode/modelmine.index.bc"
}

q() { psql -X -At -q -v ON_ERROR_STOP=1 -d "$1" <<<"$2"; }

for entry in "${PREVIOUS[@]}"; do
    version=${entry%%:*} commit=${entry#*:}
    step "upgrade $version -> $current: build $version (${commit:0:7}) and install it"
    tree=$work/tree-$version
    old_tree "$version" "$commit" "$tree"
    cluster=$work/cluster-$version
    MM_PGTREE=$tree mm_cluster_start "$cluster" "$(mm_free_port)"
    db=upgrade_from_${version//./_}
    q postgres "CREATE DATABASE $db"
    q "$db" "SET client_min_messages = warning; CREATE EXTENSION modelmine VERSION '$version' CASCADE" >/dev/null
    check "$version installed" "$(q "$db" "SELECT extversion FROM pg_extension WHERE extname = 'modelmine'")" "$version"

    step "fill $version through its own API"
    q "$db" "
        UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
        SELECT modelmine.signup('ann@example.com', 'ann password'), modelmine.signup('ben@example.com', 'ben password'),
               modelmine.signup('ops@example.com', 'ops password');
        SELECT modelmine.authenticate(modelmine.login('ann@example.com', 'ann password'));
        SELECT modelmine.transfer('ben@example.com', 120);
        SELECT modelmine.submit_job('job ' || i, jsonb_build_object('trainer', 'noop'), NULL, 10 + i) FROM generate_series(1, 8) i;
        SELECT modelmine.cancel_job(8);
        SELECT modelmine.authenticate(modelmine.login('ops@example.com', 'ops password'));
        CREATE TEMP TABLE k AS SELECT node_id, node_key FROM modelmine.register_node('old node', '{\"trainers\": [\"noop\"]}');
        SELECT modelmine.authenticate_node(node_key) FROM k;
        SELECT modelmine.heartbeat(5, 100, 1000);
        SELECT count(*) FROM modelmine.claim_jobs(6, 300);
        SELECT modelmine.complete_job(j, jsonb_build_object('accuracy', 0.5 + j / 100.0, 'loss', 0.1, 'epochs', j))
          FROM generate_series(1, 4) j;
        SELECT modelmine.fail_job(5, 'out of memory');
        SELECT modelmine.authenticate(modelmine.login('ops@example.com', 'ops password'));
        SELECT modelmine.withdraw_node_earnings(node_id, 10) FROM k;
        SELECT modelmine.seal_ledger();" >/dev/null
    digest=$(q "$db" "SELECT modelmine.ledger_digest()")
    balances=$(q "$db" "SELECT string_agg(id || '=' || balance, ',' ORDER BY id) FROM modelmine.accounts")
    check "the $version ledger has a block per completed job" "$(q "$db" "SELECT max(height) FROM modelmine.ledger")" 4
    check "the $version books balance" "$(q "$db" "SELECT count(*) FROM modelmine.check_invariants()")" 0

    step "package upgrade: the same data directory under the current library"
    mm_cluster_stop "$cluster"
    printf '%s\n' "$MM_PGTREE$("$(mm_pg_config)" --bindir)" >"$cluster/bindir"
    (cd "$cluster" && mm_as_server "$(cat "$cluster/bindir")/pg_ctl" start -w -t 60 -D "$cluster/data" \
        -l "$cluster/postgres.log" >/dev/null)
    refusal=$(psql -X -At -q -d "$db" -c "SELECT modelmine.network_stats()" 2>&1 || true)
    check_true "before ALTER EXTENSION, the library refuses the $version schema and says how to fix it" \
        grep -q "ALTER EXTENSION modelmine UPDATE" <<<"$refusal"
    q "$db" "ALTER EXTENSION modelmine UPDATE" >/dev/null
    check "ALTER EXTENSION UPDATE reaches $current" "$(q "$db" "SELECT extversion FROM pg_extension WHERE extname = 'modelmine'")" "$current"
    check "no invariant is violated after the update" "$(q "$db" "SELECT count(*) FROM modelmine.check_invariants()")" 0
    check "the lease held over the update (job 6) is a running replica; nothing else is open" \
        "$(q "$db" "SELECT string_agg(job_id || ' ' || status, ',') FROM modelmine.job_replicas")|$(q "$db" \
           "SELECT string_agg(id || ':' || open_replicas, ',' ORDER BY id) FROM modelmine.jobs WHERE open_replicas > 0")" \
        "6 RUNNING|7:1"
    check "verify_ledger() passes against the digest taken before the update" \
        "$(q "$db" "SELECT ok || ' ' || height FROM modelmine.verify_ledger('$digest')")" "true 4"
    check "every balance is what it was" \
        "$(q "$db" "SELECT string_agg(id || '=' || balance, ',' ORDER BY id) FROM modelmine.account_balances
                     WHERE kind NOT IN ('held', 'withdrawn')")" "$balances"
    check "the held and withdrawn accounts arrive empty" \
        "$(q "$db" "SELECT string_agg(kind || '=' || balance, ',' ORDER BY id) FROM modelmine.account_balances
                     WHERE kind IN ('held', 'withdrawn')")" "held=0,withdrawn=0"
    check "users from $version keep every token transferable (no grant locked after the fact)" \
        "$(q "$db" "SELECT count(*) FILTER (WHERE grant_locked > 0) || ' of ' || count(*) FROM modelmine.users")" "0 of 3"

    step "the updated catalog equals a fresh $current install"
    fresh=fresh_${current//./_}
    q postgres "CREATE DATABASE $fresh"
    q "$fresh" "SET client_min_messages = warning; CREATE EXTENSION modelmine CASCADE" >/dev/null
    q "$db" "$(cat "$MM_REPO/regress/integration/fingerprint.sql")" >"$work/fp-updated-$version.txt"
    q "$fresh" "$(cat "$MM_REPO/regress/integration/fingerprint.sql")" >"$work/fp-fresh.txt"
    if diff -u "$work/fp-fresh.txt" "$work/fp-updated-$version.txt" >"$work/fp-$version.diff"; then
        pass "catalog fingerprint identical ($(wc -l <"$work/fp-fresh.txt") lines: functions, relations, columns, constraints, indexes, triggers, views, types, roles)"
    else
        fail "catalog fingerprint differs (fresh -> updated):"
        sed 's/^/      /' "$work/fp-$version.diff" | head -80
    fi

    step "the current API on the updated data"
    q "$db" "
        SELECT modelmine.authenticate(modelmine.login('ann@example.com', 'ann password'));
        SELECT modelmine.submit_job('after the update', '{\"trainer\": \"noop\"}', NULL, 7);
        SELECT modelmine.authenticate(modelmine.login('ops@example.com', 'ops password'));
        CREATE TEMP TABLE k AS SELECT node_id, node_key FROM modelmine.register_node('new node', '{\"trainers\": [\"noop\"], \"slots\": 4}');
        SELECT modelmine.authenticate_node(node_key) FROM k;
        SELECT modelmine.heartbeat(5, 100, 1000);
        CREATE TEMP TABLE c AS SELECT job_id FROM modelmine.claim_jobs(4, 300);
        SELECT modelmine.complete_job(job_id, '{\"accuracy\": 0.9, \"loss\": 0.2, \"epochs\": 3}') FROM c;" >/dev/null
    check "a job left over from $version and a new one completed, on top of the old chain" \
        "$(q "$db" "SELECT max(height) || ' ' || count(*) FILTER (WHERE job_id IS NOT NULL) FROM modelmine.ledger")" "6 6"
    check "verify_ledger() still passes against the old digest" \
        "$(q "$db" "SELECT ok FROM modelmine.verify_ledger('$digest')")" t
    q "$db" "
        SELECT modelmine.authenticate(modelmine.login('ben@example.com', 'ben password'));
        SELECT modelmine.request_withdrawal(100, 'IBAN DE00 1234'), modelmine.request_withdrawal(20, 'IBAN DE00 1234');
        SELECT modelmine.deauthenticate();
        SELECT modelmine.approve_withdrawal(1, 'SEPA 0042'), modelmine.reject_withdrawal(2, 'closed account');
        SELECT modelmine.signup('new@example.com', 'new password');" >/dev/null
    check "withdrawals of a $version user's tokens: one approved, one rejected" \
        "$(q "$db" "SELECT string_agg(status, ',' ORDER BY id) || ' ' || (SELECT string_agg(kind || '=' || balance, ',' ORDER BY id)
                       FROM modelmine.account_balances WHERE kind IN ('held', 'withdrawn')) FROM modelmine.withdrawals")" \
        "APPROVED,REJECTED held=0,withdrawn=100"
    check "a user who signs up after the update has the grant locked" \
        "$(q "$db" "SELECT grant_locked FROM modelmine.users WHERE email = 'new@example.com'")" 1000
    check "the books balance after using $current" "$(q "$db" "SELECT count(*) FROM modelmine.check_invariants()")" 0
    mm_cluster_stop "$cluster"
    cluster=""
done
it_end
