#!/usr/bin/env bash
# cli-setup: the modelmine client when the database is not set up for the role it connects as.
# A login role in modelmine_anon only may sign up (the account is created, exit 0, and the client says
# that signing in needs modelmine_user) but not sign in, and reads the public figures; a role with no
# grant, and a database without the extension, get PostgreSQL's error with a hint saying what to run
# (which GRANT, or CREATE EXTENSION).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin cli-setup
. "$(dirname "$0")/cli-lib.sh"
cli_env

# Login roles are cluster-wide: create them only when missing (as lib.sh does for mm_client).
adm "SET client_min_messages = warning;
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_cli_anon') THEN
        CREATE ROLE mm_cli_anon LOGIN IN ROLE modelmine_anon;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_cli_nogrant') THEN
        CREATE ROLE mm_cli_nogrant LOGIN;
    END IF;
EXCEPTION WHEN duplicate_object THEN NULL;
END \$\$;"
check "mm_cli_anon is in modelmine_anon only" \
    "$(adm "SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m
             JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = 'mm_cli_anon'")" \
    modelmine_anon
anon_url="postgresql://mm_cli_anon@$PGHOST:$PGPORT/$IT_DB"
nogrant_url="postgresql://mm_cli_nogrant@$PGHOST:$PGPORT/$IT_DB"
sessions_of() {
    adm "SELECT count(*) FROM modelmine.sessions s JOIN modelmine.users u ON u.id = s.user_id WHERE u.email = '$1'"
}

step "a session to keep: ada signs up as mm_client (modelmine_user)"
MODELMINE_PASSWORD="ada password" check_cli "signup ada" 0 signup ada@example.com
ada_session=$(<"$IT_TMP/session")
adm "SELECT modelmine.signup('bob@example.com', 'bob password')" >/dev/null

step "signup as a role in modelmine_anon only: the account is made, and the client says why not signed in"
MODELMINE_PASSWORD="cara password" check_cli "signup cara as mm_cli_anon" 0 signup cara@example.com --db "$anon_url"
cara=$(adm "SELECT id FROM modelmine.users WHERE email = 'cara@example.com'")
check "the account exists, with the signup grant" \
    "$(adm "SELECT balance FROM modelmine.account_balances WHERE user_id = '${cara:-0}'")" 1000
check "stdout says so" "$CLI_OUT" "Signed up as cara@example.com (user $cara); not signed in."
check "stderr: one line, what signing in needs" "$CLI_ERR" \
    "modelmine: the database role mm_cli_anon may create accounts but not sign in (it is not a member of modelmine_user) hint: sign in as a role that is, or have it granted (GRANT modelmine_user TO mm_cli_anon), then: modelmine login cara@example.com"
check "no session was made for cara" "$(sessions_of cara@example.com)" 0
check "the session file still holds ada's session" "$(<"$IT_TMP/session")" "$ada_session"
check "... which is not revoked" "$(adm "SELECT count(*) FROM modelmine.sessions WHERE revoked_at IS NULL")" 1

MODELMINE_PASSWORD="dan password" check_cli "signup --json as mm_cli_anon" 0 signup dan@example.com --json --db "$anon_url"
check "--json: the user id, signed_in false" "$(pyjson 'sorted(d), d["user_id"], d["signed_in"]' <<<"$CLI_OUT")" \
    "['signed_in', 'user_id'] $(adm "SELECT id FROM modelmine.users WHERE email = 'dan@example.com'") False"

step "login as a role in modelmine_anon only: refused before a session is made"
MODELMINE_PASSWORD="cara password" check_cli "login cara as mm_cli_anon" 1 login cara@example.com --db "$anon_url"
check "one line with the GRANT" "$CLI_ERR" \
    "modelmine: the database role mm_cli_anon cannot sign in (it is not a member of modelmine_user) hint: connect as a role that is, or have it granted: GRANT modelmine_user TO mm_cli_anon"
check "no session was made" "$(sessions_of cara@example.com)" 0
check "the session file is untouched" "$(<"$IT_TMP/session")" "$ada_session"
MODELMINE_PASSWORD="cara password" check_cli "cara signs in as mm_client" 0 login cara@example.com
[[ $CLI_OUT == "Signed in as cara@example.com (user $cara, 1000 tokens)"* ]] && pass "... as herself" \
    || fail "login cara: '$CLI_OUT'"

step "modelmine_anon reads the public figures, and gets the GRANT for the rest"
check_cli "network as mm_cli_anon" 0 network --json --db "$anon_url"
check_cli "ledger as mm_cli_anon" 0 ledger --db "$anon_url"
check_cli "nodes as mm_cli_anon" 0 nodes --db "$anon_url"
check_cli "whoami as mm_cli_anon" 1 whoami --db "$anon_url"
check "... names modelmine_user" "$CLI_ERR" \
    "modelmine: permission denied for function authenticate hint: the database role mm_cli_anon needs modelmine_user for this command: GRANT modelmine_user TO mm_cli_anon"

step "a role with no grant: permission denied, and the GRANT the command needs"
while IFS='|' read -r desc role args; do
    # shellcheck disable=SC2086  # word splitting of the argument list is wanted
    MODELMINE_PASSWORD="erin password" check_cli "$desc" 1 $args --db "$nogrant_url"
    check "... $desc: the hint" "$CLI_ERR" \
        "modelmine: permission denied for schema modelmine hint: the database role mm_cli_nogrant needs $role for this command: GRANT ${role% (*} TO mm_cli_nogrant"
done <<'CASES'
signup|modelmine_anon (or modelmine_user)|signup erin@example.com
login|modelmine_user|login ada@example.com
network|modelmine_anon (or modelmine_user)|network
whoami|modelmine_user|whoami
balance|modelmine_user|balance
CASES
check "no account was made for erin" "$(adm "SELECT count(*) FROM modelmine.users WHERE email = 'erin@example.com'")" 0

step "a database without the extension: the hint says CREATE EXTENSION, or check --db"
noext=${IT_DB}_noext
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS $noext WITH (FORCE)" -c "CREATE DATABASE $noext"
noext_url="postgresql://mm_client@$PGHOST:$PGPORT/$noext"
for args in "signup erin@example.com" "login ada@example.com" "network" "ledger" "whoami" "jobs"; do
    # shellcheck disable=SC2086
    MODELMINE_PASSWORD="erin password" check_cli "$args, no extension" 1 $args --db "$noext_url"
    check "... $args: the hint" "$CLI_ERR" \
        "modelmine: schema \"modelmine\" does not exist hint: database $noext has no modelmine extension: run CREATE EXTENSION modelmine CASCADE in it, or check --db (MODELMINE_DB)"
done
# A schema modelmine without the functions the client calls (an extension of another version, say):
# PostgreSQL's own hint ("You might need to add explicit type casts") is replaced.
psql -X -q -v ON_ERROR_STOP=1 -d "$noext" -c "CREATE SCHEMA modelmine" -c "GRANT USAGE ON SCHEMA modelmine TO PUBLIC"
check_cli "network, no such function" 1 network --db "$noext_url"
check "... the hint" "$CLI_ERR" \
    "modelmine: function modelmine.network_stats() does not exist hint: is the modelmine extension in database $noext installed and up to date? CREATE EXTENSION modelmine CASCADE (or ALTER EXTENSION modelmine UPDATE) there, or check --db (MODELMINE_DB)"
psql -X -q -d postgres -c "DROP DATABASE $noext WITH (FORCE)"

step "the extension's own hints are kept"
check_cli "transfer more than the balance" 1 transfer bob@example.com 100000
server_hint=$(as_user "$(<"$IT_TMP/session")" "SELECT modelmine.transfer('bob@example.com', 100000)" 2>&1 \
    | sed -n 's/^HINT:  //p' || true)
check "... the hint is the server's" "${CLI_ERR##* hint: }" "${server_hint:-(psql showed no hint)}"

it_end
