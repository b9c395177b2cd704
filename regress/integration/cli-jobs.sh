#!/usr/bin/env bash
# cli-jobs: the modelmine client's job, node and ledger commands against a real worker: submit (flags,
# --config file and stdin, flags over the file), jobs (order, filters, aligned UTF-8 columns), job,
# cancel, watch off a terminal (exit 0 completed, 1 failed, 3 canceled), result -o FILE / -o -, nodes,
# nodes --mine, node, withdraw, ledger, ledger digest and ledger verify --digest; --json of each parsed
# and compared with the database; job says the size of the file result -o writes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin cli-jobs
. "$(dirname "$0")/cli-lib.sh"
cli_env
OP_SESSION=$IT_TMP/operator-session
as_op() { MODELMINE_SESSION_FILE=$OP_SESSION "$@"; }

MODELMINE_PASSWORD=$IT_OP_PW as_op check_cli "the operator signs up" 0 signup "$IT_OP_EMAIL"
MODELMINE_PASSWORD="ada password" check_cli "ada signs up" 0 signup ada@example.com

step "submit"
check_cli "submit a noop job with flags" 0 submit --trainer noop --title "a noop" --stake 30 --priority 5
noop=$CLI_OUT
check_true "stdout is the job id alone ($noop)" grep -qxE '[0-9]+' <<<"$noop"
check "the job in the database" "$(adm "SELECT title, stake, priority, config::text, status FROM modelmine.jobs WHERE id = $noop")" \
    'a noop|30|5|{"trainer": "noop"}|PENDING'

cat >"$IT_TMP/job.json" <<'JSON'
{"trainer": "logreg", "dataset": {"synthetic": "blobs", "n": 300, "seed": 7}, "epochs": 20}
JSON
check_cli "submit --config FILE with a flag over it" 0 submit --config "$IT_TMP/job.json" --epochs 30 --json
logreg=$(pyjson 'd["job_id"]' <<<"$CLI_OUT")
check "--json: the file's config with epochs from the flag, default title and stake" \
    "$(pyjson 'd["title"], d["stake"], d["status"], json.dumps(d["config"], sort_keys=True)' <<<"$CLI_OUT")" \
    'logreg on blobs 100 PENDING {"dataset": {"n": 300, "seed": 7, "synthetic": "blobs"}, "epochs": 30, "trainer": "logreg"}'
check_cli "submit --config - (stdin)" 0 submit --config - --title "λ résumé: 日本語のタイトルはとても長いです" <"$IT_TMP/job.json"
utf8=$CLI_OUT
check_cli "submit mlp with every training flag" 0 submit --trainer mlp --dataset moons --samples 500 --epochs 40 \
    --lr 0.05 --batch-size 16 --hidden 8,4 --seed 3 --description "flags" --json
mlp=$(pyjson 'd["job_id"]' <<<"$CLI_OUT")
check "its config" "$(pyjson 'json.dumps(d["config"], sort_keys=True)' <<<"$CLI_OUT")" \
    '{"batch_size": 16, "dataset": {"n": 500, "synthetic": "moons"}, "epochs": 40, "hidden_layers": [8, 4], "learning_rate": 0.05, "seed": 3, "trainer": "mlp"}'
check_cli "submit a CSV job (its URL will not answer)" 0 submit --csv http://127.0.0.1:1/data.csv --label y --json
csvjob=$(pyjson 'd["job_id"]' <<<"$CLI_OUT")
check "CSV config and title" "$(pyjson 'd["title"], json.dumps(d["config"], sort_keys=True)' <<<"$CLI_OUT")" \
    'logreg on data.csv {"dataset": {"label": "y", "url": "http://127.0.0.1:1/data.csv"}}'
check_cli "submit one to cancel" 0 submit --trainer noop --stake 40 --title "to cancel"
tocancel=$CLI_OUT

step "jobs"
check_cli "jobs --json" 0 jobs --json
check "newest first, as in the database" "$(pyjson '[j["id"] for j in d]' <<<"$CLI_OUT")" \
    "[$(adm "SELECT string_agg(id::text, ', ' ORDER BY id DESC) FROM modelmine.jobs")]"
check "stable keys (the SQL API's job_summary)" "$(pyjson 'sorted(d[0])' <<<"$CLI_OUT")" \
    "['attempts', 'created_at', 'finished_at', 'id', 'node_id', 'priority', 'progress', 'replicas', 'stake', 'status', 'title', 'updated_at', 'validation']"
check_cli "jobs --asc --json" 0 jobs --asc --json
check "--asc: oldest first" "$(pyjson '[j["id"] for j in d] == sorted(j["id"] for j in d)' <<<"$CLI_OUT")" True
check_cli "jobs --sort stake --json" 0 jobs --sort stake --json
check "--sort stake: largest first" "$(pyjson '[j["stake"] for j in d]' <<<"$CLI_OUT")" "[100, 100, 100, 100, 40, 30]"
check_cli "jobs --status pending --limit 2 --json" 0 jobs --status pending --limit 2 --json
check "two pending jobs" "$(pyjson 'len(d), {j["status"] for j in d}' <<<"$CLI_OUT")" "2 {'PENDING'}"
check_cli "jobs (table)" 0 jobs
check "a header and one row per job" "$(wc -l <<<"$CLI_OUT")" 7
check "header" "$(head -n 1 <<<"$CLI_OUT" | tr -s ' ')" "ID STATUS PROGRESS TITLE STAKE PRIO NODE TRIES REPL CHECK CREATED"
# Every row ends with a fixed-width time, so aligned rows have one display width, wide characters and all.
check "rows line up on the terminal (UTF-8 widths)" "$(python3 -c '
import sys, unicodedata
w = lambda s: sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)
print(len({w(l) for l in sys.stdin.read().splitlines()[1:]}))' <<<"$CLI_OUT")" 1
grep -q "λ résumé: 日本語のタイトルはとても長い… " <<<"$CLI_OUT" && pass "a long title is cut at 40 columns with …" || fail "title: $CLI_OUT"
check_cli "jobs --status running" 0 jobs --status running
check "an empty filter says so" "$CLI_OUT" "No RUNNING jobs."

step "cancel"
balance=$(adm "SELECT balance FROM modelmine.account_balances a JOIN modelmine.users u ON u.id = a.user_id WHERE email = 'ada@example.com'")
check_cli "cancel" 0 cancel "$tocancel"
check "cancel says what it refunded" "$CLI_OUT" "Canceled job $tocancel; 40 tokens refunded."
check "the stake is back" "$(adm "SELECT balance FROM modelmine.account_balances a JOIN modelmine.users u ON u.id = a.user_id WHERE email = 'ada@example.com'")" \
    $((balance + 40))
check_cli "cancel it again" 1 cancel "$tocancel"
check "... one line, the server's reason" "$CLI_ERR" \
    "modelmine: job $tocancel is already CANCELED (Only PENDING or RUNNING jobs can be canceled.) hint: Nothing was changed; its stake was settled when it finished."
check_cli "watch a canceled job" 3 watch "$tocancel"
check "... says so" "$CLI_OUT" "job $tocancel CANCELED (its stake was refunded)"

step "a worker runs the rest"
start_worker W --slots 2
node=$(node_of W)
wait_until 60 "every job settled" "SELECT bool_and(status IN ('COMPLETED', 'FAILED', 'CANCELED')) FROM modelmine.jobs"
check "the CSV job failed, the others completed" \
    "$(adm "SELECT string_agg(id || ' ' || status, ', ' ORDER BY id) FROM modelmine.jobs")" \
    "$noop COMPLETED, $logreg COMPLETED, $utf8 COMPLETED, $mlp COMPLETED, $csvjob FAILED, $tocancel CANCELED"

step "watch off a terminal, result"
check_cli "watch a completed job" 0 watch "$mlp"
check "... the final line" "$(tail -n 1 <<<"$CLI_OUT")" \
    "job $mlp COMPLETED: $(adm "SELECT format('%s epochs, loss %s, accuracy %s', result->>'epochs',
        rtrim(rtrim(round((result->>'loss')::numeric, 4)::text, '0'), '.'),
        rtrim(rtrim(round((result->>'accuracy')::numeric, 4)::text, '0'), '.')) FROM modelmine.jobs WHERE id = $mlp")"
check_cli "watch a failed job" 1 watch "$csvjob"
check "... with its error" "$(tail -n 1 <<<"$CLI_OUT")" "job $csvjob FAILED: $(adm "SELECT error FROM modelmine.jobs WHERE id = $csvjob")"
check_cli "watch --json" 0 watch "$mlp" --json
check "... ends with an end event without the model" \
    "$(tail -n 1 <<<"$CLI_OUT" | pyjson 'd["event"], d["status"], "model" in d["result"], d["result"]["epochs"]')" "end COMPLETED False 40"
check_cli "result -o FILE" 0 result "$mlp" -o "$IT_TMP/model.json"
check "... says where and how much" "$CLI_OUT" \
    "Wrote the result of job $mlp to $IT_TMP/model.json ($(stat -c %s "$IT_TMP/model.json") bytes)."
check "the file is the stored result, model included" \
    "$(pyjson 'sorted(d) == sorted(k for k in d), "model" in d, d["epochs"]' <"$IT_TMP/model.json")" "True True 40"
check_sql "... equal to the row's result" "SELECT result = '$(cat "$IT_TMP/model.json")'::jsonb FROM modelmine.jobs WHERE id = $mlp"
check_cli "result -o -" 0 result "$mlp" -o -
check "... the same bytes on stdout" "$(md5sum <<<"$CLI_OUT")" "$(md5sum <"$IT_TMP/model.json")"
check_cli "result of a failed job" 1 result "$csvjob" -o "$IT_TMP/none.json"
check "... one line" "$CLI_ERR" "modelmine: job $csvjob has no result (It is FAILED.) hint: Results exist once a job is COMPLETED."
check_cli "job (details)" 0 job "$mlp"
for want in "status       COMPLETED, 100%" "node         $node (attempt 1)" "description  flags" "result       40 epochs, loss" \
            "model " "modelmine result $mlp -o FILE" "replicas     1, unchecked (one result, not replicated)"; do
    grep -qF -- "$want" <<<"$CLI_OUT" && pass "job shows '$want'" || fail "job lacks '$want':"$'\n'"$CLI_OUT"
done
check "job says the byte count result -o wrote" "$(grep '^result' <<<"$CLI_OUT" | grep -oE '[0-9]+ bytes')" \
    "$(stat -c %s "$IT_TMP/model.json") bytes"
check_cli "job --json" 0 job "$mlp" --json
check "job --json: the whole row" "$(pyjson 'd["id"], d["status"], d["owner_email"], "model" in d["result"], d["config"]["trainer"]' <<<"$CLI_OUT")" \
    "$mlp COMPLETED ada@example.com True mlp"

step "nodes"
check_cli "nodes --json" 0 nodes --json
check "one node, W, with the database's counters" "$(pyjson '[(n["id"], n["name"], n["jobs_completed"], n["jobs_failed"]) for n in d]' <<<"$CLI_OUT")" \
    "[($node, 'W', 4, 1)]"
check "stable keys (node_summary)" "$(pyjson 'sorted(d[0])' <<<"$CLI_OUT")" \
    "['capabilities', 'cpu_load', 'id', 'jobs_completed', 'jobs_failed', 'jobs_handled', 'last_seen', 'memory_total_mb', 'memory_used_mb', 'name', 'registered_at', 'reputation', 'results_invalid', 'results_valid', 'spotcheck_pct', 'status', 'tokens_earned', 'uptime_pct', 'window_hours']"
check_cli "nodes (table)" 0 nodes
grep -qE "^ *$node +W +(ONLINE|BUSY) " <<<"$CLI_OUT" && pass "the table lists W" || fail "nodes: $CLI_OUT"
check_cli "node ID --hours 1 --json" 0 node "$node" --hours 1 --json
check "node_stats over one hour" "$(pyjson 'd["id"], d["window_hours"], d["jobs_handled"]' <<<"$CLI_OUT")" "$node 1 5"
check_cli "node that does not exist" 1 node 4242
check "... one line" "$CLI_ERR" "modelmine: node 4242 not found hint: list nodes with: modelmine nodes"
check_cli "nodes --mine for ada" 0 nodes --mine
check "ada operates none" "$CLI_OUT" "You operate no nodes. Start one with: modelmine-worker --operator-email EMAIL ..."
earned=$(adm "SELECT tokens_earned FROM modelmine.nodes WHERE id = $node")
as_op check_cli "nodes --mine --json for the operator" 0 nodes --mine --json
check "W, with its earnings still to withdraw" "$(pyjson '[(n["id"], n["tokens_earned"], n["balance"]) for n in d]' <<<"$CLI_OUT")" \
    "[($node, $earned, $earned)]"

step "withdraw"
check_cli "ada cannot withdraw W's earnings" 1 withdraw "$node"
check_one_line "not her node" "$CLI_ERR"
as_op check_cli "the operator withdraws 10" 0 withdraw "$node" 10 --json
check "... moved 10" "$(pyjson 'd["node_id"], d["amount"], d["balance"]' <<<"$CLI_OUT")" "$node 10 $((1000 + 10))"
as_op check_cli "then all the rest" 0 withdraw "$node"
check "... says what it moved" "$CLI_OUT" "Moved $((earned - 10)) tokens from node $node to your balance (now $((1000 + earned)))."
as_op check_cli "withdraw from an empty node" 1 withdraw "$node" 5
[[ $CLI_ERR == "modelmine: insufficient node earnings"*"hint: withdraw at most the node's balance"* ]] \
    && pass "... CLI hint" || fail "empty node: '$CLI_ERR'"

step "ledger (no session needed)"
export MODELMINE_SESSION_FILE=$IT_TMP/no-such-session
check_cli "ledger --json" 0 ledger --json
check "genesis, then one block per completed job" "$(pyjson '[b["height"] for b in d], sorted(b["job_id"] for b in d if b["job_id"])' <<<"$CLI_OUT")" \
    "[0, 1, 2, 3, 4] [$noop, $logreg, $utf8, $mlp]"
check_cli "ledger --from 2 --limit 1 --json" 0 ledger --from 2 --limit 1 --json
check "one block, height 2" "$(pyjson '[b["height"] for b in d]' <<<"$CLI_OUT")" "[2]"
check_cli "ledger (table)" 0 ledger
check "header and 5 blocks" "$(wc -l <<<"$CLI_OUT")" 6
check_cli "ledger digest -o FILE" 0 ledger digest -o "$IT_TMP/head.json"
check "the digest names the head" "$(pyjson 'd["height"], d["hash"] == "'"$(adm "SELECT encode(hash, 'hex') FROM modelmine.ledger WHERE height = 4")"'"' <"$IT_TMP/head.json")" "4 True"
check_cli "ledger verify --digest FILE" 0 ledger verify --digest "$IT_TMP/head.json"
check "... OK and contains the digest's block" "$CLI_OUT" \
    "Ledger OK: 5 blocks checked, height 4."$'\n'"It still contains the digest's block 4 ($(pyjson 'd["hash"][:16]' <"$IT_TMP/head.json")...)."
check_cli "ledger verify --json" 0 ledger verify --json
check "verify --json" "$(pyjson 'd["ok"], d["height"], d["blocks_checked"], d["first_bad_height"]' <<<"$CLI_OUT")" "True 4 5 None"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["hash"]="0"*64; json.dump(d, open(sys.argv[2], "w"))' \
    "$IT_TMP/head.json" "$IT_TMP/forged.json"
check_cli "ledger verify with a digest the chain does not contain" 1 ledger verify --digest "$IT_TMP/forged.json"
check "... says where it breaks" "$CLI_OUT" "Ledger BROKEN at height 4: $(adm "SELECT reason FROM modelmine.verify_ledger('$(cat "$IT_TMP/forged.json")')")"
check_cli "ledger verify with a file that is no digest" 1 ledger verify --digest "$IT_TMP/job.json"
check_one_line "not a digest" "$CLI_ERR"
export MODELMINE_SESSION_FILE=$IT_TMP/session

check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
stop_worker W TERM
check "W exits 0" "$IT_RC" 0
step "scheduling (issue 19): requirements, deadlines, why a job waits"
# W has stopped; it is OFFLINE once its last heartbeat is old
adm "UPDATE modelmine.nodes SET last_seen = now() - interval '1 hour'" >/dev/null
check_cli "submit needing 9999999 MB" 1 submit --trainer noop --memory-mb 9999999
[[ $CLI_ERR == "modelmine: no node offers 9999999 MB of memory (requirements.memory_mb)"*"hint: ask for less"* ]] \
    && pass "... names the requirement, with the CLI's hint" || fail "unplaceable: '$CLI_ERR'"
check_cli "submit --start-by in the past" 1 submit --trainer noop --start-by '2000-01-01 00:00+00'
[[ $CLI_ERR == "modelmine: invalid start_by"* ]] && pass "... names start_by" || fail "start_by: '$CLI_ERR'"
check_cli "submit with deadlines and --cores 1" 0 submit --trainer noop --stake 5 --start-by '2999-01-01 00:00+00' \
    --finish-by '2999-01-02 00:00+00' --cores 1
timed=$CLI_OUT
check_cli "job ID of the waiting job" 0 job "$timed"
grep -qE "^ *waiting +no online node offers trainer:noop with 1 cores; about 0 starts before it$" <<<"$CLI_OUT" \
    && pass "... says why it waits (W is stopped)" || fail "waiting: $CLI_OUT"
grep -qE "^ *start by +2999-01-01" <<<"$CLI_OUT" && pass "... and its start_by" || fail "start by: $CLI_OUT"
grep -qE '^ *requires +\{"cores": ?1\}' <<<"$CLI_OUT" && pass "... and what it requires" || fail "requires: $CLI_OUT"
check_cli "cancel it" 0 cancel "$timed"
it_end
