#!/usr/bin/env bash
# contract: where the install script repeats a value of include/modelmine/protocol.h (the job_status
# labels, the default trainer in jobs.requirement, CHECK bounds, the system account ids and the shard
# arithmetic, settings ceilings, documented ranges), the installed catalog agrees with the header; and
# the NOTIFY channels a client LISTENs to by the header's names are the ones the extension raises.
#
# regress/integration/contract.c, compiled against the header, prints one SQL check per value; each
# prints "label<TAB>got<TAB>want".  Bounds are tried (accepted at the edge, refused one past it with
# check_violation, undone either way), so a CHECK written differently but meaning the same still passes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin contract

step "the checks, compiled against include/modelmine/protocol.h"
cc -std=c11 -Wall -Wextra -Werror -I"$MM_REPO/include" -o "$IT_TMP/contract" "$MM_REPO/regress/integration/contract.c"
"$IT_TMP/contract" >"$IT_TMP/checks.sql"
echo "$(wc -l <"$IT_TMP/checks.sql") checks"
tok=$(signup contract@example.com "contract password")

adm "$(cat <<'SQL'
-- 'ok' when stmt is accepted, else its SQLSTATE; undone either way (the private error rolls it back)
CREATE FUNCTION contract_try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    code text;
BEGIN
    BEGIN
        EXECUTE stmt;
        RAISE EXCEPTION 'undo' USING ERRCODE = 'MMT00';
    EXCEPTION WHEN OTHERS THEN
        code := SQLSTATE;
    END;
    RETURN CASE code WHEN 'MMT00' THEN 'ok' ELSE code END;
END $$;
-- a job submitted through the API by the session's user, stake 1
CREATE FUNCTION contract_submit(config jsonb) RETURNS bigint LANGUAGE sql
    AS $$ SELECT modelmine.submit_job('contract', config, NULL, 1) $$;
-- the requirement of such a job (a new statement, so the new row is visible)
CREATE FUNCTION contract_requirement(config jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    job bigint := contract_submit(config);
BEGIN
    RETURN (SELECT requirement FROM modelmine.jobs WHERE id = job);
END $$;
SQL
)"

step "the catalog against the header"
{ echo "SELECT modelmine.authenticate(:'tok') \\g /dev/null"; cat "$IT_TMP/checks.sql"; } |
    psql -X -At -q -v ON_ERROR_STOP=1 -d "$IT_DB" -v tok="$tok" >"$IT_TMP/results.txt"
while IFS=$'\t' read -r label got want; do
    check "$label" "$got" "$want"
done <"$IT_TMP/results.txt"
check "every check printed a result" "$(wc -l <"$IT_TMP/results.txt")" "$(grep -vc '\\g /dev/null$' "$IT_TMP/checks.sql")"

step "the channels, LISTENed to by the header's names"
job=$(as_user "$tok" "SELECT contract_submit('{\"trainer\": \"noop\"}')")
mapfile -t channels < <("$IT_TMP/contract" channels "$job")
out=$(psql -X -At -d "$IT_DB" -v tok="$tok" 2>&1 <<SQL
SELECT modelmine.authenticate(:'tok') \g /dev/null
LISTEN "${channels[0]}";
LISTEN "${channels[1]}";
LISTEN "${channels[2]}";
SELECT contract_submit('{"trainer": "noop"}') \g /dev/null
SELECT 1 FROM modelmine.register_node('contract-node', '{}') \g /dev/null
SELECT modelmine.cancel_job($job) \g /dev/null
SELECT 1 \g /dev/null
SQL
)
for ch in "${channels[@]}"; do
    check_true "a client listening on \"$ch\" is notified" grep -qF "Asynchronous notification \"$ch\"" <<<"$out"
done
step "the web dashboard spells the header's job statuses and trainers (web/js is not C: compared here)"
cat >"$IT_TMP/names.c" <<'C'
#include <stdio.h>
#include "modelmine/protocol.h"
int main(void)
{
    const char *st[] = MM_JOB_STATUSES, *tr[] = MM_TRAINERS;
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) printf("%s%s", i ? " " : "", st[i]);
    printf("\n");
    for (size_t i = 0; i < sizeof(tr) / sizeof(tr[0]); i++) printf("%s%s", i ? " " : "", tr[i]);
    printf("\n");
    return 0;
}
C
cc -std=c11 -I"$MM_REPO/include" -o "$IT_TMP/names" "$IT_TMP/names.c"
{ read -r want_statuses; read -r want_trainers; } < <("$IT_TMP/names")
got_statuses=$(sed -n "s/^export const JOB_STATUSES = \[\(.*\)\];/\1/p" "$MM_REPO/web/js/ui.js" | tr -d "'" | tr ',' ' ' | xargs)
got_trainers=$(sed -n "s/^ *name: '\([a-z0-9_]*\)', label:.*/\1/p" "$MM_REPO/web/js/trainers.js" | xargs)
check "web/js/ui.js JOB_STATUSES is MM_JOB_STATUSES" "$got_statuses" "$want_statuses"
check "web/js/trainers.js names MM_TRAINERS, in order" "$got_trainers" "$want_trainers"

step "docs/CONFIG.md lists the config schema the validator enforces (modelmine.config_schema())"
# the rows between the markers, as the docs have them and as the schema says they should be
doc_rows() { sed -n "/<!-- config-schema:$1 -->/,/<!-- \/config-schema:$1 -->/p" "$MM_REPO/docs/CONFIG.md" | grep '^| `'; }
check "the keys table is the schema's" "$(doc_rows keys)" "$(adm "
    SELECT string_agg(format('| \`%s\` | %s | %s |', key,
                             (SELECT string_agg(t, ', ') FROM jsonb_array_elements_text(value -> 'trainers') t),
                             value ->> 'accepts'), E'\n' ORDER BY key)
      FROM jsonb_each(modelmine.config_schema() -> 'keys')")"
check "the dataset keys table is the schema's" "$(doc_rows dataset)" "$(adm "
    SELECT string_agg(format('| \`dataset.%s\` | %s |', key, value ->> 'accepts'), E'\n' ORDER BY key)
      FROM jsonb_each(modelmine.config_schema() -> 'dataset_keys')")"
check "the docs name the schema's version" \
    "$(grep -c "^## Schema version $(adm "SELECT modelmine.config_schema() ->> 'version'")\$" "$MM_REPO/docs/CONFIG.md")" 1

step "the validator compiled into the extension calls nothing the postgres executable exports"
# postgres exports json_object() and json_typeof() (SQL functions): a call from extension/trainconfig.o
# to a symbol of that name would land in the server, not in Jansson (see worker/train/config.c new_object)
obj=$MM_REPO/extension/trainconfig.o
postgres_bin=$("$PG_CONFIG" --bindir)/postgres
if [[ -f $obj && -f $postgres_bin ]]; then
    clash=$(comm -12 <(nm -u "$obj" | awk '{print $2}' | sort -u) \
                     <(nm -D --defined-only "$postgres_bin" | awk '{print $3}' | sort -u) | xargs)
    check "no symbol trainconfig.o needs is defined by postgres" "$clash" ""
else
    fail "no $obj or $postgres_bin to compare (build the extension first)"
fi
it_end
