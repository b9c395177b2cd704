#!/usr/bin/env bash
# cli-watch: `modelmine watch` on a real terminal (tmux) while a real worker trains: it waits while the
# job is PENDING, draws a progress bar that advances with epoch, loss and accuracy, ends with the
# job's final line and exit 0 soon after the job completes; a job canceled while watched ends it with
# exit 3 at once (the end is notified), a failed one with exit 1 and its error; a server WARNING is
# printed on a line of its own with the bar drawn again below it; Ctrl-C ends it with 130. First, on
# the same terminal: signup asks for the password twice without echo, Ctrl-C at a password prompt
# gives the echo back, and submit notes its stake ("1 token staked").
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin cli-watch
. "$(dirname "$0")/cli-lib.sh"
cli_env
MODELMINE_PASSWORD=$IT_OP_PW MODELMINE_SESSION_FILE=$IT_TMP/operator-session check_cli "the operator signs up" 0 signup "$IT_OP_EMAIL"
slow=(--trainer mlp --dataset moons --samples 4000 --hidden 32,32 --epochs 1500)
tmux_start 120 20
tmux_wait 5 "the pane's shell is ready" '^\$'

step "password prompts on a terminal"
tmux_run "stty -g > $IT_TMP/stty.before; $MM_CLI signup ada@example.com; echo \$? > $IT_TMP/signup.rc"
tmux_wait 5 "signup asks for the password" "^Password for ada@example\.com: *$"
tmux_run "secret ada pw"
tmux_wait 5 "then asks again" "^Repeat the password: *$"
tmux_run "secret ada pw"
wait_file 10 "$IT_TMP/signup.rc" || true
check "signup exits 0" "$(cat "$IT_TMP/signup.rc" 2>/dev/null)" 0
tmux_wait 1 "and signs in" "^Signed up and signed in as ada@example\.com "
check_false "the password never showed" grep -q "secret ada pw" <<<"$(tmux_screen)"
# Ctrl-C kills login by SIGINT (re-raised after restoring the echo), which makes bash drop the rest of
# the command line: the status and the settings are read by the next one.
tmux_run "clear; $MM_CLI login ada@example.com"
tmux_wait 5 "login asks for the password" "^Password for ada@example\.com: *$"
tmux_keys C-c
tmux_run "echo \$? > $IT_TMP/login.rc; stty -g > $IT_TMP/stty.after"
wait_file 5 "$IT_TMP/stty.after" || true
check "Ctrl-C at the prompt: exit 130" "$(cat "$IT_TMP/login.rc" 2>/dev/null)" 130
check "... and the echo is back (stty -g as before)" "$(cat "$IT_TMP/stty.after" 2>/dev/null)" "$(cat "$IT_TMP/stty.before")"
check_cli "the session from signup still works" 0 whoami --json
check "... as ada" "$(pyjson 'd["email"]' <<<"$CLI_OUT")" ada@example.com
tmux_run "clear"

step "submit on a terminal"
tmux_run "$MM_CLI submit --trainer noop --stake 1 --title 'one token'"
tmux_wait 5 "a note on stderr says what it staked, in the singular" \
    "^Submitted job [0-9]+ \(1 token staked\); follow it with: modelmine watch [0-9]+$"
one=$(adm "SELECT id FROM modelmine.jobs WHERE title = 'one token'")
tmux_wait 1 "above it, the job's id alone" "^$one$"
check_cli "cancel it" 0 cancel "$one"
tmux_run "clear"

step "a job followed from PENDING to COMPLETED"
cli submit "${slow[@]}" --title "watched"
job=$CLI_OUT
tmux_run "$MM_CLI watch $job; echo \$? > $IT_TMP/rc1"
tmux_wait 10 "watch says the job waits for a node" "^job $job waiting for a node \(PENDING\)$"
start_worker W --slots 1
tmux_wait 30 "the bar appears once W runs the job" "^job $job [█▏▎▍▌▋▊▉░]+ [0-9.]+%  epoch [0-9]+/1500, loss [0-9.]+, accuracy [0-9.]+$"
# Sample the bar until watch exits: the percentage must climb through several values, the bar with it.
samples=()
bars=()
deadline=$(( SECONDS + 90 ))
while [[ ! -s $IT_TMP/rc1 ]] && (( SECONDS < deadline )); do
    line=$(tmux_screen | grep -E "^job $job [█▏▎▍▌▋▊▉░]+ [0-9.]+%" | tail -n 1 || true)
    if [[ $line =~ ^job\ [0-9]+\ ([^ ]+)\ ([0-9.]+)% ]]; then
        pct=${BASH_REMATCH[2]}
        if [[ ${#samples[@]} -eq 0 || ${samples[-1]} != "$pct" ]]; then
            samples+=("$pct")
            full=${BASH_REMATCH[1]//[^█]/}
            bars+=("${#full}")
        fi
    fi
    sleep 0.3
done
echo "      percentages seen: ${samples[*]}"
echo "      full cells seen:  ${bars[*]}"
check_true "at least 4 different percentages were shown" test "${#samples[@]}" -ge 4
check "they only went up" "$(printf '%s\n' "${samples[@]}" | sort -g | tr '\n' ' ')" "$(printf '%s ' "${samples[@]}")"
check_true "the bar grew with them" test "${bars[-1]}" -gt "${bars[0]}"
check_true "watch exited" test -s "$IT_TMP/rc1"
check "with 0" "$(cat "$IT_TMP/rc1")" 0
final=$(adm "SELECT format('job %s COMPLETED: %s epochs, loss %s, accuracy %s', id, result->>'epochs',
                 rtrim(rtrim(round((result->>'loss')::numeric, 4)::text, '0'), '.'),
                 rtrim(rtrim(round((result->>'accuracy')::numeric, 4)::text, '0'), '.'))
               FROM modelmine.jobs WHERE id = $job")
tmux_wait 1 "its last line: $final" "^${final//./\\.}$"
tmux_wait 1 "above it, the full bar at 100%" "^job $job █+ 100%  epoch 1500/1500"
lag=$(adm "SELECT round(extract(epoch FROM to_timestamp($(stat -c %Y "$IT_TMP/rc1")) - finished_at)) FROM modelmine.jobs WHERE id = $job")
echo "      watch ended ~$lag s after the job finished (the rc file's mtime has 1 s resolution)"
check_true "watch saw the end within 3 s (not a 5 s poll)" test "$lag" -le 3

step "a job canceled while watched"
tmux_run "clear"
cli submit "${slow[@]}" --title "canceled while watched"
job2=$CLI_OUT
tmux_run "$MM_CLI watch $job2; echo \$? > $IT_TMP/rc2"
tmux_wait 30 "progress shows" "^job $job2 .* epoch [0-9]+/1500"
check_cli "cancel it from elsewhere" 0 cancel "$job2"
started=$SECONDS
wait_file 10 "$IT_TMP/rc2" || true
check "watch exits 3" "$(cat "$IT_TMP/rc2" 2>/dev/null)" 3
check_true "within 6 s of the cancel" test $(( SECONDS - started )) -le 6
check_true "... within 2 s: the end is notified, not found by the 5 s safety net" test $(( SECONDS - started )) -le 2
tmux_wait 1 "it says so" "^job $job2 CANCELED \(its stake was refunded\)$"

step "a job that fails"
tmux_run "clear"
cli submit --trainer logreg --csv http://127.0.0.1:1/data.csv --label y
job3=$CLI_OUT
tmux_run "$MM_CLI watch $job3; echo \$? > $IT_TMP/rc3"
wait_file 20 "$IT_TMP/rc3" || true
check "watch exits 1" "$(cat "$IT_TMP/rc3" 2>/dev/null)" 1
tmux_wait 1 "with the error" "^job $job3 FAILED: cannot fetch http://127\.0\.0\.1:1/data\.csv"

step "Ctrl-C"
tmux_run "clear"
cli submit "${slow[@]}" --title "interrupted"
job4=$CLI_OUT
tmux_run "$MM_CLI watch $job4; echo \$? > $IT_TMP/rc4"
tmux_wait 30 "progress shows" "^job $job4 .* epoch [0-9]+/1500"
# A server WARNING (a NOTICE alike) while the bar is up.  The extension's own (a fold skipped at
# commit) cannot be provoked on watch's read-only connection, so the superuser wraps modelmine.job,
# which watch reads the job with, to raise one when asked.
adm "ALTER FUNCTION modelmine.job(bigint) RENAME TO job_unwrapped;
CREATE TABLE public.warn_on_read (job bigint);
GRANT SELECT, DELETE ON public.warn_on_read TO PUBLIC;
CREATE FUNCTION modelmine.job(job_id bigint) RETURNS modelmine.job_detail LANGUAGE plpgsql AS \$\$
BEGIN
    DELETE FROM public.warn_on_read w WHERE w.job = job_id;
    IF FOUND THEN
        RAISE WARNING 'modelmine: folding credits into balances was skipped at commit: a test asked'
            USING HINT = 'The transaction committed; the work waits for the next commit.';
    END IF;
    RETURN modelmine.job_unwrapped(job_id);
END \$\$;
INSERT INTO public.warn_on_read VALUES ($job4);"
tmux_wait 10 "the WARNING starts a line of its own" \
    "^modelmine: WARNING: +modelmine: folding credits into balances was skipped at commit: a test asked"
check_sql "watch's read raised it" "SELECT count(*) = 0 FROM public.warn_on_read"
tmux_wait 5 "the bar is drawn again, below it" "^job $job4 [█▏▎▍▌▋▊▉░]+ [0-9.]+%  epoch"
check "... on a line after the WARNING's" "$(tmux_screen | awk -v job="$job4" '
    /^modelmine: WARNING:/ { w = NR } w && NR > w && index($0, "job " job " ") == 1 { below = 1 } END { print below + 0 }')" 1
check_false "no line holds both the bar and the WARNING" grep -qE "^job $job4 .*WARNING" <<<"$(tmux_screen)"
tmux_keys C-c
wait_file 5 "$IT_TMP/rc4" || true
check "Ctrl-C ends watch with 130" "$(cat "$IT_TMP/rc4" 2>/dev/null)" 130
tmux_wait 2 "the shell prompt is back on a line of its own" '^\$ ?$'
check "the job goes on" "$(adm "SELECT status FROM modelmine.jobs WHERE id = $job4")" RUNNING
check_cli "cancel it" 0 cancel "$job4"

check "check_invariants() is empty" "$(adm "SELECT count(*) FROM modelmine.check_invariants()")" 0
stop_worker W TERM
check "W exits 0" "$IT_RC" 0
it_end
