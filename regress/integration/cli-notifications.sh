#!/usr/bin/env bash
# cli-notifications: modelmine notifications — settings (shown, changed, refused with the server's
# message), webhooks (the secret printed once, never listed again; removal dead-letters what was not
# delivered), and the list of notifications with a dead letter's reason, as text and --json.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin cli-notifications
. "$(dirname "$0")/cli-lib.sh"
cli_env

MODELMINE_PASSWORD="ada password" check_cli "ada signs up" 0 signup ada@example.com

step "settings"
check_cli "notifications settings (nothing chosen)" 0 notifications settings
check_true "... shows no events and email on" grep -qz "Events: *none.*Email: *on" <<<"$CLI_OUT"
check_cli "notifications settings --events ... --email off --balance-below 900" 0 \
    notifications settings --events job_canceled,balance_low --email off --balance-below 900
check_true "... shows what is now set" grep -qz "Events: *balance_low, job_canceled.*Email: *off.*Balance below: 900 tokens" <<<"$CLI_OUT"
check_cli "an unknown event is refused by the server: exit 1" 1 notifications settings --events job_exploded
check_true "... naming it, on one line" grep -q "unknown event 'job_exploded'" <<<"$CLI_ERR"
check_cli "notifications settings --email on --json" 0 notifications settings --email on --json
check "... the JSON document" "$(jq -c '[.events, .email, .balance_threshold]' <<<"$CLI_OUT")" '[["balance_low","job_canceled"],true,900]'

step "webhooks"
check_cli "notifications webhook add URL" 0 notifications webhook add https://hooks.example.com/ada
check_true "... prints the signing secret once" grep -qE '^whsec_[0-9a-f]{64}$' <<<"$CLI_OUT"
hook=$(sed -n 's/^Webhook \([0-9]*\): .*/\1/p' <<<"$CLI_OUT")
check_cli "notifications settings lists it" 0 notifications settings
check_true "... by id and URL" grep -qE "^  $hook  https://hooks.example.com/ada$" <<<"$CLI_OUT"
check_false "... without its secret" grep -q whsec_ <<<"$CLI_OUT"
check_cli "a URL that is not http(s) is refused: exit 1" 1 notifications webhook add ftp://hooks.example.com/x

step "notifications, and a dead letter's reason"
job=$(as_user "$(adm "SELECT modelmine.login('ada@example.com', 'ada password')")" \
      "SELECT modelmine.submit_job('night run', '{\"trainer\": \"noop\"}', NULL, 150)")
check_cli "cancel the job" 0 cancel "$job"
check_cli "notifications" 0 notifications
check "... the cancel (email and webhook) and the balance crossing 900 (twice): 4 rows" \
    "$(grep -cE '^ *[0-9]+ +(job_canceled|balance_low) ' <<<"$CLI_OUT")" 4
adm "UPDATE modelmine.outbox SET status = 'DEAD', last_error = 'HTTP status 410 from https://hooks.example.com/ada'
      WHERE channel = 'webhook' AND event = 'job_canceled'" >/dev/null
check_cli "notifications --status dead" 0 notifications --status dead
check_true "... shows the reason" grep -q "HTTP status 410 from https://hooks.example.com/ada" <<<"$CLI_OUT"
check_cli "notifications --status dead --json" 0 notifications --status dead --json
check "... one row, DEAD, with its reason" "$(jq -c '[length, .[0].state, .[0].event]' <<<"$CLI_OUT")" '[1,"DEAD","job_canceled"]'
check_cli "notifications webhook remove ID" 0 notifications webhook remove "$hook"
check_true "... says how many were dead-lettered" grep -qE "^Removed webhook $hook; 1 undelivered notification dead-lettered.$" <<<"$CLI_OUT"
check_cli "removing it again: exit 1" 1 notifications webhook remove "$hook"
check_true "... with a hint" grep -q "modelmine notifications settings" <<<"$CLI_ERR"
it_end
