#!/usr/bin/env bash
# cli-top: `modelmine top` on a real terminal (tmux): it takes the alternate screen with the cursor
# hidden and shows your jobs, the nodes, the network's figures and both charts, in colour unless
# NO_COLOR; a job submitted elsewhere appears at once (NOTIFY modelmine_work) and its progress moves
# (NOTIFY job:ID:progress); a resize redraws for the new width; q, Ctrl-C and SIGTERM each leave the
# alternate screen, show the cursor and give back the terminal settings exactly as they were.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin cli-top
. "$(dirname "$0")/cli-lib.sh"
cli_env
MODELMINE_PASSWORD=$IT_OP_PW MODELMINE_SESSION_FILE=$IT_TMP/operator-session check_cli "the operator signs up" 0 signup "$IT_OP_EMAIL"
MODELMINE_PASSWORD="ada password" check_cli "ada signs up" 0 signup ada@example.com
start_worker W --slots 1
node_of W >/dev/null
cli submit --trainer noop --title "done before top"
wait_until 20 "the first job completed" "SELECT status = 'COMPLETED' FROM modelmine.jobs WHERE id = $CLI_OUT"
tmux_start 130 45
tmux_wait 5 "the pane's shell is ready" '^\$'

# top_session NAME [ENV]: runs top in the pane after saving the terminal settings; the shell then
# saves them again and writes top's exit status to $IT_TMP/NAME.rc.
top_session() {
    tmux_run "clear; echo before-$1; stty -g > $IT_TMP/$1.stty-before; ${2:-} $MM_CLI top; echo \$? > $IT_TMP/$1.rc; stty -g > $IT_TMP/$1.stty-after"
}
# The pid of top: the pane shell's child.
top_pid() { pgrep -P "$(tmux_var '#{pane_pid}')" -x "${MM_CLI##*/}"; }
check_restored() {
    wait_file "${3:-5}" "$IT_TMP/$1.stty-after" || true
    check "$1: exit status" "$(cat "$IT_TMP/$1.rc" 2>/dev/null)" "$2"
    check "$1: the alternate screen is left" "$(tmux_var '#{alternate_on}')" 0
    check "$1: the cursor is visible" "$(tmux_var '#{cursor_flag}')" 1
    check "$1: the terminal settings are back (stty -g)" "$(cat "$IT_TMP/$1.stty-after")" "$(cat "$IT_TMP/$1.stty-before")"
    tmux_wait 2 "$1: the shell's screen is back" "^before-$1$"
    check_false "$1: nothing of top's screen is left" grep -q "MY JOBS" <<<"$(tmux_screen)"
}

step "top shows everything"
top_session q "env -u NO_COLOR"
tmux_wait 10 "the title bar names the user" "^ ModelMine top +ada@example\.com +balance"
check "on the alternate screen" "$(tmux_var '#{alternate_on}')" 1
check "with the cursor hidden" "$(tmux_var '#{cursor_flag}')" 0
for heading in "MY JOBS" "NODES" "NETWORK" "Jobs per month by status" "Tokens earned per node"; do
    tmux_wait 1 "section: $heading" "$heading"
done
tmux_wait 1 "my completed job" "COMPLETED +██████████ 100% +done before top"
tmux_wait 1 "the node W" "^ *1 +W +(ONLINE|BUSY) "
tmux_wait 1 "the network's figures" "^jobs +0 pending, 0 running, 1 completed, 0 failed, 0 canceled"
tmux_wait 1 "the bottom line" "q quit · r refresh · updated [0-9:]+ "
check_true "in colour (NO_COLOR unset)" grep -q $'\e\\[32m' <<<"$(tmux -S "$IT_TMUX" capture-pane -p -e -t cli)"

step "live updates"
cli submit --trainer mlp --dataset moons --samples 4000 --hidden 32,32 --epochs 1500 --title "submitted while top runs"
job=$CLI_OUT
tmux_wait 3 "the new job appears at once" "^ *$job +(PENDING|RUNNING) .* submitted while top runs"
tmux_wait 15 "its progress moves (NOTIFY job:$job:progress)" "^ *$job +RUNNING +█+░* +[0-9]+% +submitted"
tmux_wait 5 "and the redraw says why" "\(NOTIFY job:$job:progress\)"
tmux -S "$IT_TMUX" resize-window -t cli -x 90 -y 45
tmux_wait 5 "after a resize to 90 columns, the distribution chart moves below the timeline" "^Tokens earned per node"
check "and no line is wider than 90 columns" "$(tmux_screen | python3 -c '
import sys, unicodedata
w = lambda s: sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)
print(max(w(l) for l in sys.stdin.read().splitlines()) <= 90)')" True
tmux -S "$IT_TMUX" resize-window -t cli -x 130 -y 45
check_cli "cancel the long job" 0 cancel "$job"
tmux_wait 8 "the cancel shows (a running job's end is notified on the channel top follows)" "^ *$job +CANCELED"

step "q quits"
tmux_keys q
check_restored q 0

step "Ctrl-C quits"
top_session ctrlc
tmux_wait 10 "top is up" "MY JOBS"
check_false "no colour with NO_COLOR=1" grep -q $'\e\\[3[0-9]m' <<<"$(tmux -S "$IT_TMUX" capture-pane -p -e -t cli)"
tmux_keys C-c
check_restored ctrlc 0

step "SIGTERM"
top_session term
tmux_wait 10 "top is up" "MY JOBS"
pid=$(top_pid)
check_true "found top's pid ($pid)" test -n "$pid"
kill -TERM "$pid"
check_restored term 143

step "its session ends while it runs"
top_session revoked
tmux_wait 10 "top is up" "MY JOBS"
adm "UPDATE modelmine.sessions SET revoked_at = now() WHERE revoked_at IS NULL
      AND user_id = (SELECT id FROM modelmine.users WHERE email = 'ada@example.com')" >/dev/null
check_restored revoked 4 10  # the next read fails: within the 5 s refresh
tmux_wait 1 "the reason is printed after the screen is given back" \
    "^modelmine: session has been revoked \(Logged out, or the user's role changed\.\) hint: sign in again with: modelmine login EMAIL$"

stop_worker W TERM
check "W exits 0" "$IT_RC" 0
it_end
