#!/usr/bin/env bash
# cli-batch: modelmine submit-batch FILE (modelmine.submit_jobs): a JSON array file and JSON lines on
# stdin, ids printed one per line in the file's order (--json: one array), each job stored as given;
# a refused job names its index and stakes nothing (exit 1), an unreadable or malformed file is a
# usage error (exit 2) that never reaches the database, and signed out is exit 4.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin cli-batch
. "$(dirname "$0")/cli-lib.sh"
cli_env

MODELMINE_PASSWORD="bea password" check_cli "bea signs up" 0 signup bea@example.com
balance() { adm "SELECT balance FROM modelmine.account_balances WHERE user_id = (SELECT id FROM modelmine.users WHERE email = 'bea@example.com')"; }
jobs_of_bea() { adm "SELECT count(*) FROM modelmine.jobs WHERE user_id = (SELECT id FROM modelmine.users WHERE email = 'bea@example.com')"; }

step "a JSON array file"
cat >"$IT_TMP/sweep.json" <<'JSON'
[{"title": "sweep a", "config": {"trainer": "noop"}, "stake": 10},
 {"title": "sweep b", "config": {"trainer": "mlp", "dataset": {"synthetic": "moons"}, "hidden_layers": [8]},
  "stake": 20, "priority": 7, "description": "the second"}]
JSON
check_cli "submit-batch FILE" 0 submit-batch "$IT_TMP/sweep.json"
mapfile -t ids <<<"$CLI_OUT"
check "two ids, one per line, ascending in the file's order" "${#ids[@]} $(( ids[0] < ids[1] ))" "2 1"
check "the jobs as given" \
    "$(adm "SELECT string_agg(title || '|' || stake || '|' || priority || '|' || COALESCE(description, '-') || '|' || config::text, ' ; ' ORDER BY id) FROM modelmine.jobs WHERE id IN (${ids[0]}, ${ids[1]})")" \
    'sweep a|10|0|-|{"trainer": "noop"} ; sweep b|20|7|the second|{"dataset": {"synthetic": "moons"}, "trainer": "mlp", "hidden_layers": [8]}'
check "staked 30 of 1000" "$(balance)" 970

step "JSON lines on stdin, --json"
printf '{"title": "lr %s", "config": {"trainer": "noop"}, "stake": 5}\n' 1 2 3 >"$IT_TMP/lines.json"
check_cli "submit-batch - --json" 0 submit-batch - --json <"$IT_TMP/lines.json"
check "--json: an array of three ids" "$(pyjson 'len(d), all(isinstance(i, int) for i in d), d == sorted(d)' <<<"$CLI_OUT")" "3 True True"
check "their titles in order" \
    "$(adm "SELECT string_agg(title, ',' ORDER BY id) FROM modelmine.jobs WHERE id IN ($(pyjson '",".join(map(str, d))' <<<"$CLI_OUT"))")" \
    "lr 1,lr 2,lr 3"
check "staked 15 more" "$(balance)" 955

step "refused: all or none"
printf '%s\n' '{"title": "fine", "config": {"trainer": "noop"}, "stake": 5}' \
              '{"title": "typo", "config": {"trainer": "noop", "epochs": 3}, "stake": 5}' >"$IT_TMP/bad.json"
check_cli "a job no worker would run: exit 1" 1 submit-batch "$IT_TMP/bad.json"
check_one_line "the error names the job" "$CLI_ERR"
check_true "... jobs[1] and the key" grep -q 'jobs\[1\]: invalid config: epochs does not apply' <<<"$CLI_ERR"
check "nothing staked, no job" "$(balance) $(jobs_of_bea)" "955 5"
printf '[{"title": "big", "config": {"trainer": "noop"}, "stake": 600}, {"title": "bigger", "config": {"trainer": "noop"}, "stake": 600}]' >"$IT_TMP/big.json"
check_cli "more than the balance: exit 1" 1 submit-batch "$IT_TMP/big.json"
check_true "... insufficient balance, with the CLI's hint" grep -q 'insufficient balance.*hint: stake less, submit fewer jobs' <<<"$CLI_ERR"
check "nothing staked, no job" "$(balance) $(jobs_of_bea)" "955 5"

step "usage errors, before the database"
check_cli "no file: exit 2" 2 submit-batch
check_cli "a missing file: exit 2" 2 submit-batch "$IT_TMP/none.json"
check_true "... says it cannot read it" grep -q "cannot read $IT_TMP/none.json" <<<"$CLI_ERR"
printf '{"title": "x", "config": ' >"$IT_TMP/cut.json"
check_cli "malformed JSON: exit 2" 2 submit-batch "$IT_TMP/cut.json"
check_one_line "... one line naming the file" "$CLI_ERR"
printf '[1, 2]\n[3]\n' >"$IT_TMP/two.json"
check_cli "two arrays: exit 2" 2 submit-batch "$IT_TMP/two.json"
: >"$IT_TMP/empty.json"
check_cli "an empty file: exit 2" 2 submit-batch "$IT_TMP/empty.json"
check_true "... 1 to 1000 jobs" grep -q "must hold 1 to 1000 jobs, got 0" <<<"$CLI_ERR"
check "nothing staked, no job" "$(balance) $(jobs_of_bea)" "955 5"

step "signed out"
check_cli "logout" 0 logout
check_cli "submit-batch signed out: exit 4" 4 submit-batch "$IT_TMP/sweep.json"
check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
it_end
