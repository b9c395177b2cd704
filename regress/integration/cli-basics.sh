#!/usr/bin/env bash
# cli-basics: the modelmine client's conventions, without workers: help for the program and every
# command (each option docs/CLI.md names is in its command's help), usage errors (exit 2), not signed
# in (exit 4), no database (exit 5), database errors in one line with a hint (exit 1), a config naming
# an unknown trainer refused by the database with its name; signup, login, whoami, balance, transfer
# and logout, their --json, "1 token" in the singular, the session file (mode 0600 in a 0700
# directory), and expired or revoked sessions (exit 4, "modelmine login").
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin cli-basics
. "$(dirname "$0")/cli-lib.sh"
cli_env

commands=(signup login logout whoami balance transactions transfer submit submit-batch jobs job cancel result watch nodes node network
          ledger top withdraw withdrawal withdrawals admin notifications)

step "help"
check_cli "modelmine --help" 0 --help
missing=""
for c in "${commands[@]}"; do
    grep -qE "^  $c " <<<"$CLI_OUT" || missing+=" $c"
done
check "--help lists every command (missing)" "${missing:-none}" none
check_true "--help documents the exit status" grep -q "^Exit status" <<<"$CLI_OUT"
bad=""
for c in "${commands[@]}"; do
    cli "$c" --help
    [[ $CLI_RC == 0 && $CLI_OUT == *"Usage: modelmine $c"* && $CLI_OUT == *Example* ]] || bad+=" $c"
    cli help "$c"
    [[ $CLI_RC == 0 && $CLI_OUT == *"Usage: modelmine $c"* ]] || bad+=" help-$c"
done
check "every command has --help with usage and examples (and 'modelmine help CMD')" "${bad:-none}" none
# docs/CLI.md heads each command's section with its options ("### jobs [--status S] ... [--offset N]").
missing=""
while read -r cmd rest; do
    cli "$cmd" --help
    for opt in $(grep -oE -- '(^|[ [])--?[a-z][a-z-]*' <<<"$rest" | tr -d ' ['); do
        grep -qE -- "(^|[ [])$opt([] ,]|$)" <<<"$CLI_OUT" || missing+=" $cmd $opt"
    done
done < <(sed -n 's/^### \([a-z][a-z-]*\)\(.*\)$/\1 \2/p' "$MM_REPO/docs/CLI.md")
check "each option in docs/CLI.md's headings is in its command's --help (missing)" "${missing:-none}" none
cli watch --help
watch_help=$(tr '\n' ' ' <<<"$CLI_OUT")
check_false "watch --help does not say a job's end goes unnotified" grep -q "not notified" <<<"$watch_help"
check_true "watch --help says the end arrives by LISTEN, as progress does" \
    grep -q "end (COMPLETED, FAILED or CANCELED) arrive by LISTEN" <<<"$watch_help"

step "usage errors: exit 2, one line"
while IFS='|' read -r desc args; do
    # shellcheck disable=SC2086  # word splitting of the argument list is wanted
    check_cli "$desc" 2 $args
    check_one_line "$desc" "$CLI_ERR"
done <<'CASES'
no command|
unknown command|frobnicate
unknown option|jobs --frob
option without its value|jobs --status
missing argument|job
extra argument|whoami extra
job id not a number|job abc
bad status filter|jobs --status bogus
bad sort key|jobs --sort size
limit out of range|jobs --limit 20000
bad trainer|submit --trainer svm --dataset moons
epochs out of range|submit --trainer mlp --dataset moons --epochs 0
csv without label|submit --csv http://example.com/x.csv
dataset and csv together|submit --dataset moons --csv http://example.com/x.csv --label y
no dataset for a real trainer|submit --trainer mlp
bad hidden sizes|submit --trainer mlp --dataset moons --hidden 16,x
result without -o|result 1
transfer amount not a number|transfer bob@example.com lots
unknown ledger subcommand|ledger frob
withdrawal without request|withdrawal 5 bank
withdrawal amount not a number|withdrawal request lots bank
withdrawal without a destination|withdrawal request 5
unknown admin subcommand|admin frob
admin approve without a reference|admin withdrawals approve 1
admin approve id not a number|admin withdrawals approve x ref
admin limit with approve|admin withdrawals approve 1 ref --limit 5
month not YYYY-MM|admin distribute-fees 2026-10-01
month out of range|admin distribute-fees 2026-13
months out of range|network --months 0
unknown notifications subcommand|notifications frob
bad event list|notifications settings --events Job-Done
email neither on nor off|notifications settings --email yes
settings options on the listing|notifications --email on
webhook without a URL|notifications webhook add
webhook id not a number|notifications webhook remove x
CASES
check_cli "a --config file that is not JSON" 2 submit --config /etc/hostname
check_one_line "bad --config" "$CLI_ERR"
echo '{"trainer": "mlp"}' >"$IT_TMP/mlp.json"
check_cli "a --config file naming a built-in trainer but no dataset" 2 submit --config "$IT_TMP/mlp.json"
check_one_line "no dataset in --config" "$CLI_ERR"
check_cli "login without a password source, stdin not a terminal" 2 login nobody@example.com
check_one_line "no password" "$CLI_ERR"
check_cli "top off a terminal" 2 top
check_one_line "top off a terminal" "$CLI_ERR"

step "not signed in: exit 4, one line pointing to modelmine login"
for args in "whoami" "balance" "jobs" "job 1" "submit --trainer noop" "watch 1" "cancel 1" "nodes --mine" \
            "transfer a@example.com 1" "top --json"; do
    # shellcheck disable=SC2086
    check_cli "$args, not signed in" 4 $args
    [[ $CLI_ERR == *"modelmine login"* && $CLI_ERR != *$'\n'* ]] || fail "$args: message '$CLI_ERR'"
done
check_cli "logout when not signed in is not an error" 0 logout

step "no database: exit 5, one line"
MODELMINE_PASSWORD=x check_cli "login with the database down" 5 login ada@example.com --db "postgresql://mm_client@127.0.0.1:1/nowhere"
check_one_line "connection failure" "$CLI_ERR"
check_cli "ledger (no session needed) with the database down" 5 ledger --db "postgresql://127.0.0.1:1/nowhere"

step "signup and login"
printf 'ada password\n' >"$IT_TMP/pw"
check_cli "signup with --password-stdin" 0 signup ada@example.com --password-stdin <"$IT_TMP/pw"
check "it signs in at once" "$(adm "SELECT count(*) FROM modelmine.sessions s JOIN modelmine.users u ON u.id = s.user_id
                                     WHERE u.email = 'ada@example.com' AND s.revoked_at IS NULL")" 1
check "session file mode 0600" "$(stat -c %a "$IT_TMP/session")" 600
check_true "no temporary file left next to it" test "$(find "$IT_TMP" -name 'session.*' | wc -l)" -eq 0
MODELMINE_PASSWORD="ada password" check_cli "signup again with the same email" 1 signup ada@example.com
check_one_line "duplicate signup" "$CLI_ERR"
[[ $CLI_ERR == *"hint: sign in with: modelmine login EMAIL"* ]] && pass "duplicate signup hints at login" \
    || fail "duplicate signup: '$CLI_ERR'"
MODELMINE_PASSWORD="short" check_cli "signup with a too short password" 1 signup bob@example.com
check_one_line "short password" "$CLI_ERR"
[[ $CLI_ERR == "modelmine: password is too short ("*") hint: "* ]] && pass "message (detail) hint: format" \
    || fail "format: '$CLI_ERR'"
MODELMINE_PASSWORD="wrong password" check_cli "login with a wrong password" 1 login ada@example.com
[[ $CLI_ERR == *"invalid email or password"*"hint: "*"modelmine signup EMAIL"* ]] && pass "wrong password: CLI hint" \
    || fail "wrong password: '$CLI_ERR'"

# The default session path: $XDG_CONFIG_HOME/modelmine/session, directory 0700.
MODELMINE_SESSION_FILE="" XDG_CONFIG_HOME=$IT_TMP/xdg MODELMINE_PASSWORD="bob password 1" \
    check_cli "signup bob (default session path under XDG_CONFIG_HOME)" 0 signup bob@example.com
check "XDG session file mode" "$(stat -c %a "$IT_TMP/xdg/modelmine/session" 2>&1)" 600
check "XDG session directory mode" "$(stat -c %a "$IT_TMP/xdg/modelmine" 2>&1)" 700

check_cli "whoami with the database down" 5 whoami --db "postgresql://mm_client@127.0.0.1:1/nowhere"
check_one_line "connection failure, signed in" "$CLI_ERR"

# Signup grants are locked until an admin verifies the user (cli-basics' "withdrawals" step shows the
# lock); ada and bob are verified so that their transfers here move their grant.
adm "SELECT modelmine.verify_user('ada@example.com'), modelmine.verify_user('bob@example.com')" >/dev/null

step "whoami, balance, transfer"
check_cli "whoami" 0 whoami
[[ $CLI_OUT == *"ada@example.com"* ]] && pass "whoami names ada" || fail "whoami: $CLI_OUT"
check_cli "whoami --json" 0 whoami --json
check "whoami --json: user_id and email" "$(pyjson 'd["user_id"], d["email"], d["role"], d["balance"]' <<<"$CLI_OUT")" \
    "$(adm "SELECT id FROM modelmine.users WHERE email = 'ada@example.com'") ada@example.com user 1000"
check_cli "balance --json" 0 balance --json
check "balance --json" "$(pyjson 'd["balance"], d["in_escrow"]' <<<"$CLI_OUT")" "1000 0"
check_cli "transfer 25 to bob" 0 transfer bob@example.com 25
check "transfer says what happened" "$CLI_OUT" \
    "Sent 25 tokens to bob@example.com (journal entry $(adm "SELECT max(id) FROM modelmine.journal")); your balance is now 975."
check_cli "transfer --json" 0 transfer bob@example.com 5 --json
check "transfer --json keys and balance" "$(pyjson 'sorted(d), d["amount"], d["balance"], d["to"]' <<<"$CLI_OUT")" \
    "['amount', 'balance', 'journal_id', 'to'] 5 970 bob@example.com"
check "bob has 1030 in the database" \
    "$(adm "SELECT balance FROM modelmine.account_balances a JOIN modelmine.users u ON u.id = a.user_id WHERE email = 'bob@example.com'")" 1030
check_cli "transfer more than the balance" 1 transfer bob@example.com 100000
check_one_line "insufficient balance" "$CLI_ERR"
[[ $CLI_ERR == "modelmine: insufficient balance (Your balance is 970 tokens"*") hint: "* ]] \
    && pass "insufficient balance: message (detail) hint:" || fail "insufficient balance: '$CLI_ERR'"
check_cli "transfer to nobody" 1 transfer nobody@example.com 1
check_one_line "unknown recipient" "$CLI_ERR"
check_cli "stake more than the balance" 1 submit --trainer noop --stake 5000
check_one_line "submit, insufficient balance" "$CLI_ERR"
[[ $CLI_ERR == "modelmine: insufficient balance ("* ]] && pass "submit: the server's message" \
    || fail "submit insufficient: '$CLI_ERR'"
# transfer only sends: the ways to more tokens are a smaller stake, a refund, node earnings, or a sender.
check "submit: the CLI's hint" "${CLI_ERR##* hint: }" \
    "stake less (--stake N), cancel a pending job (modelmine cancel ID), move a node's earnings to your balance (modelmine withdraw NODE_ID), or ask another user to send you tokens"
check_cli "job that does not exist" 1 job 424242
check "... one line with the CLI hint" "$CLI_ERR" \
    "modelmine: job 424242 not found (There is no job with this id that you own.) hint: list your jobs with: modelmine jobs"

step "a trainer the workers do not have: the database says which"
echo '{"trainer": "xgboost"}' >"$IT_TMP/xgboost.json"
check_cli "submit --config with an unknown trainer" 1 submit --config "$IT_TMP/xgboost.json"
check "... the database's error, naming it" "$CLI_ERR" \
    "$(printf '%s' 'modelmine: unknown config.trainer (Got "xgboost".) hint: Use a built-in trainer: "logreg", "mlp", "linreg" or "noop"; for other code, name a "runner".')"
check_cli "... the same from stdin, with a dataset flag" 1 submit --config - --dataset moons <"$IT_TMP/xgboost.json"
[[ $CLI_ERR == "modelmine: unknown config.trainer"* ]] && pass "... names the trainer too" || fail "stdin: '$CLI_ERR'"

step "a config no worker would run: the database refuses it at submit, naming the field"
echo '{"lerning_rate": 0.1, "dataset": {"synthetic": "blobs"}}' >"$IT_TMP/typo.json"
check_cli "submit --config with a misspelled key" 1 submit --config "$IT_TMP/typo.json"
[[ $CLI_ERR == 'modelmine: invalid config: lerning_rate is not a config key; did you mean "learning_rate"?'* ]] &&
    pass "... names the key and suggests the right one" || fail "typo: '$CLI_ERR'"
echo '{"trainer": "logreg", "hidden_layers": [8], "dataset": {"synthetic": "blobs"}}' >"$IT_TMP/hidden.json"
check_cli "submit --config with hidden_layers for logreg" 1 submit --config "$IT_TMP/hidden.json"
[[ $CLI_ERR == 'modelmine: invalid config: hidden_layers does not apply to trainer "logreg"'* ]] &&
    pass "... says the key does not apply to the trainer" || fail "hidden: '$CLI_ERR'"
check_cli "... epochs -3 through a flag over a file" 2 submit --config "$IT_TMP/hidden.json" --epochs -3
check "no job was made" "$(adm "SELECT count(*) FROM modelmine.jobs")" 0

step "one token, not 1 tokens"
check_cli "transfer 1" 0 transfer bob@example.com 1
check "transfer 1 says token" "$CLI_OUT" \
    "Sent 1 token to bob@example.com (journal entry $(adm "SELECT max(id) FROM modelmine.journal")); your balance is now 969."
check_cli "submit with a stake of 1" 0 submit --trainer noop --stake 1 --title "one token"
one=$CLI_OUT
check_cli "job" 0 job "$one"
check "job: stake 1 token" "$(grep '^stake' <<<"$CLI_OUT" | tr -s ' ')" "stake 1 token, priority 0"
check_cli "cancel it" 0 cancel "$one"
check "cancel: 1 token refunded" "$CLI_OUT" "Canceled job $one; 1 token refunded."
check_cli "transfer all but 1" 0 transfer bob@example.com 968
check_cli "balance of 1" 0 balance
check "balance: 1 token" "$CLI_OUT" "1 token (and 0 staked in open jobs)"

step "colour: none off a terminal (the terminal case is in cli-top)"
NO_COLOR="" check_cli "jobs with NO_COLOR unset, stdout a pipe" 0 jobs
check_false "no escape sequences in piped output" grep -q $'\e' <<<"$CLI_OUT"

step "a second login revokes the session it replaces"
old=$(cat "$IT_TMP/session")
MODELMINE_PASSWORD="ada password" check_cli "login again" 0 login ada@example.com
check "the previous session is revoked" "$(adm "SELECT count(*) FILTER (WHERE revoked_at IS NOT NULL) || '/' || count(*)
    FROM modelmine.sessions s JOIN modelmine.users u ON u.id = s.user_id WHERE u.email = 'ada@example.com'")" "1/2"
(umask 077; printf '%s\n' "$old" >"$IT_TMP/old-session")
MODELMINE_SESSION_FILE=$IT_TMP/old-session check_cli "the old token" 4 whoami
check "... says it was revoked and how to sign in" "$CLI_ERR" \
    "modelmine: session has been revoked (Logged out, or the user's role changed.) hint: sign in again with: modelmine login EMAIL"

step "an expired session"
adm "UPDATE modelmine.sessions SET expires_at = now() - interval '1 second'
      WHERE revoked_at IS NULL AND user_id = (SELECT id FROM modelmine.users WHERE email = 'ada@example.com')" >/dev/null
check_cli "whoami with an expired session" 4 whoami
check "... one line" "$CLI_ERR" \
    "modelmine: session has expired (The token is past its expiry time.) hint: sign in again with: modelmine login EMAIL"
check_cli "balance with an expired session" 4 balance
check_cli "logout with an expired session still forgets it" 0 logout
check_false "the session file is gone" test -e "$IT_TMP/session"
check "logout says so" "$CLI_OUT" "Signed out (the session had already ended)."

step "logout"
MODELMINE_PASSWORD="ada password" check_cli "login" 0 login ada@example.com --json
check "login --json" "$(pyjson 'd["email"]' <<<"$CLI_OUT")" ada@example.com
sid=$(pyjson 'd["session_id"]' <<<"$CLI_OUT")
check_cli "logout" 0 logout
check "the session is revoked in the database" "$(adm "SELECT revoked_at IS NOT NULL FROM modelmine.sessions WHERE id = '$sid'")" t
check_false "and the file removed" test -e "$IT_TMP/session"
check_cli "whoami after logout" 4 whoami

step "withdrawals, and the admin side of the token loop"
MODELMINE_PASSWORD="cleo password" check_cli "signup cleo" 0 signup cleo@example.com
check_cli "cleo cannot transfer her locked signup grant" 1 transfer bob@example.com 1
check_one_line "locked grant" "$CLI_ERR"
[[ $CLI_ERR == "modelmine: insufficient transferable balance ("*"1000 tokens of your signup grant are locked"* ]] \
    && pass "... the message names the locked part" || fail "locked grant: '$CLI_ERR'"
check_cli "... nor withdraw it" 1 withdrawal request 10 'IBAN DE00 1234'
[[ ${CLI_ERR##* hint: } == "Withdraw at most 0 tokens."*"unlocks when an admin verifies your account"* ]] \
    && pass "... with the database's hint on how it unlocks" || fail "withdrawal hint: '$CLI_ERR'"
check_cli "withdrawals: none yet" 0 withdrawals
check "... says how to request one" "$CLI_OUT" \
    "You have no withdrawals. Request one with: modelmine withdrawal request AMOUNT DESTINATION"
check_cli "admin verify as a plain user: refused by the database" 1 admin verify cleo@example.com
[[ $CLI_ERR == *"permission denied for function verify_user"* ]] && pass "... permission denied" \
    || fail "verify as user: '$CLI_ERR'"
# an admin: a user whose role is admin, through a database role that is a member of modelmine_admin
adm "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_cli_admin') THEN
         CREATE ROLE mm_cli_admin LOGIN IN ROLE modelmine_admin; END IF; END \$\$" >/dev/null
adm "SELECT modelmine.signup('root@example.com', 'root password'), modelmine.set_user_role('root@example.com', 'admin')" >/dev/null
admin_cli() {
    MODELMINE_DB="postgresql://mm_cli_admin@$PGHOST:$PGPORT/$IT_DB" MODELMINE_SESSION_FILE=$IT_TMP/admin-session \
        cli "$@"
}
MODELMINE_PASSWORD="root password" admin_cli login root@example.com
check "root signs in as an admin" "$CLI_RC" 0
admin_cli admin verify cleo@example.com
check "admin verify: 1000 tokens unlocked" "$CLI_RC $CLI_OUT" \
    "0 Verified cleo@example.com: 1000 tokens of the signup grant unlocked."
check_cli "withdrawal request 30" 0 withdrawal request 30 'IBAN DE00 1234'
w1=$(adm "SELECT max(id) FROM modelmine.withdrawals")
check "... says what happened" "$CLI_OUT" \
    "Withdrawal $w1: 30 tokens to IBAN DE00 1234, held until an admin approves it; your balance is now 970."
check_cli "withdrawal request 1 --json" 0 withdrawal request 1 'IBAN DE00 1234' --json
check "... keys and balance" "$(pyjson 'sorted(d), d["amount"], d["balance"], d["status"]' <<<"$CLI_OUT")" \
    "['amount', 'balance', 'destination', 'status', 'withdrawal_id'] 1 969 PENDING"
w2=$(pyjson 'd["withdrawal_id"]' <<<"$CLI_OUT")
admin_cli admin withdrawals --status pending
check "admin withdrawals --status pending: a table with the user" "$CLI_RC $(head -1 <<<"$CLI_OUT" | tr -s ' ')" \
    "0 ID USER AMOUNT DESTINATION STATUS REFERENCE / REASON REQUESTED DECIDED BY"
admin_cli admin withdrawals --status pending --json
check "admin withdrawals --json: both, oldest first, with the user" \
    "$(pyjson '[(w["id"], w["email"], w["amount"], w["status"]) for w in d]' <<<"$CLI_OUT")" \
    "[($w1, 'cleo@example.com', 30, 'PENDING'), ($w2, 'cleo@example.com', 1, 'PENDING')]"
admin_cli admin withdrawals approve "$w1" 'SEPA 0042'
check "admin withdrawals approve" "$CLI_RC $CLI_OUT" "0 Approved withdrawal $w1: 30 tokens paid out of the system."
admin_cli admin withdrawals reject "$w2" 'closed account'
check "admin withdrawals reject: 1 token, singular" "$CLI_RC $CLI_OUT" \
    "0 Rejected withdrawal $w2: 1 token back to the user's balance."
admin_cli admin withdrawals approve "$w2" 'after all'
check "a second decision is refused, in one line" "$CLI_RC $CLI_ERR" \
    "1 modelmine: withdrawal $w2 is already REJECTED (A withdrawal is approved or rejected once.) hint: Nothing was changed or moved."
check_cli "withdrawals: cleo's two, as decided" 0 withdrawals --json
check "... status and reference or reason" \
    "$(pyjson '[(w["status"], w["payout_reference"] or w["reason"]) for w in d]' <<<"$CLI_OUT")" \
    "[('REJECTED', 'closed account'), ('APPROVED', 'SEPA 0042')]"
check_cli "withdrawals as a table" 0 withdrawals
check "... a header and two rows" "$(head -1 <<<"$CLI_OUT" | tr -s ' ')" \
    "ID AMOUNT DESTINATION STATUS REFERENCE / REASON REQUESTED DECIDED"
check_true "... the approved one with its reference" grep -q "APPROVED  *SEPA 0042" <<<"$CLI_OUT"
check "cleo's balance: 1000 - 30 (paid out)" "$(adm "SELECT balance FROM modelmine.account_balances a
    JOIN modelmine.users u ON u.id = a.user_id WHERE u.email = 'cleo@example.com'")" 970
last_month=$(adm "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month', 'YYYY-MM')")
this_month=$(adm "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC'), 'YYYY-MM')")
admin_cli admin distribute-fees "$this_month"
check "admin distribute-fees of this month: refused, one line" "$CLI_RC $CLI_ERR" \
    "1 modelmine: period $this_month has not ended (Fees are distributed per UTC calendar month, once it is over.) hint: ${CLI_ERR##* hint: }"
admin_cli admin distribute-fees "$last_month"
check "admin distribute-fees of last month (no jobs then: nothing to pay)" "$CLI_RC $CLI_OUT" \
    "0 Distributed the network fee of $last_month: 0 of 0 tokens to 0 nodes (0 left in the fee accounts)."
admin_cli admin distribute-fees "$last_month"
check_true "... again: already distributed, nothing paid again" grep -q "was already distributed.*Nothing was paid again" <<<"$CLI_OUT"
admin_cli admin fees --json
check "admin fees: that month" "$(pyjson '[(f["period"][:7], f["paid"], f["distributed_by"]) for f in d]' <<<"$CLI_OUT")" \
    "[('$last_month', 0, 'root@example.com')]"
check_cli "transactions: the holds and the release" 0 transactions --limit 3 --json
check "... newest first" "$(pyjson '[(t["amount"], t["reason"], t["counterparty"]) for t in d]' <<<"$CLI_OUT")" \
    "[(1, 'withdrawal_release', 'held'), (-1, 'withdrawal_hold', 'held'), (-30, 'withdrawal_hold', 'held')]"
check_cli "transactions as a table" 0 transactions --limit 3
check "... a header and three rows" "$(head -1 <<<"$CLI_OUT" | tr -s ' ') / $(wc -l <<<"$CLI_OUT")" \
    "ID WHEN AMOUNT REASON JOB WITH / 4"
check "the books balance" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0

it_end
