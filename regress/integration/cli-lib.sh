# shellcheck shell=bash
# regress/integration/cli-lib.sh: helpers for the tests of the modelmine command-line client
# (regress/integration/cli-*.sh). Sourced after lib.sh and it_begin; not executable, so scripts/test.sh
# does not run it.
#
#   cli_env                    point the CLI at this test's database (as mm_client) and a session file
#                              in IT_TMP; no colour, no password in the environment
#   cli ARGS...                run the built cli/modelmine; stdout in CLI_OUT, stderr in CLI_ERR, exit
#                              status in CLI_RC (never fatal under set -e)
#   check_cli DESC RC ARGS...  one check: `cli ARGS` exits RC (shows stderr when not)
#   check_one_line DESC TEXT   one check: TEXT is exactly one line starting "modelmine"
#   pyjson EXPR                evaluate EXPR with d = the JSON on stdin (python3); prints the result
#   tmux_start COLS ROWS       a private tmux server (killed at exit) with one bash pane, prompt "$ "
#   tmux_run CMD               type CMD and Enter in the pane
#   tmux_keys KEYS...          send keys (tmux key names: q, C-c, Enter)
#   tmux_screen                what the pane shows now
#   tmux_var FORMAT            a tmux format for the pane, e.g. '#{alternate_on}'
#   tmux_wait SECS DESC REGEX  wait until the screen matches REGEX (grep -E); a failed check if not
#   wait_file SECS FILE        wait until FILE exists and is not empty

MM_CLI=${MM_CLI:-$MM_REPO/cli/modelmine}  # lib.sh sets it with MM_SANITIZE=1
if [[ ! -x $MM_CLI ]]; then
    echo "cli-lib.sh: $MM_CLI is not built: run make (or make -C cli)"
    exit 1
fi

cli_env() {
    export MODELMINE_DB="postgresql://mm_client@$PGHOST:$PGPORT/$IT_DB"
    export MODELMINE_SESSION_FILE=$IT_TMP/session
    export NO_COLOR=1
    unset MODELMINE_PASSWORD XDG_CONFIG_HOME
}

CLI_OUT="" CLI_ERR="" CLI_RC=0
cli() {
    CLI_RC=0
    CLI_OUT=$("$MM_CLI" "$@" 2>"$IT_TMP/cli.stderr") || CLI_RC=$?
    CLI_ERR=$(<"$IT_TMP/cli.stderr")
}

check_cli() {
    local desc=$1 want=$2
    shift 2
    cli "$@"
    if [[ $CLI_RC == "$want" ]]; then
        pass "$desc (exit $want)"
    else
        fail "$desc: exit $CLI_RC, want $want; stderr: ${CLI_ERR:-(empty)}"
    fi
}

check_one_line() {
    if [[ -n "$2" && "$2" != *$'\n'* && "$2" == modelmine* ]]; then
        pass "$1: one line: $2"
    else
        fail "$1: not one 'modelmine...' line: '$2'"
    fi
}

pyjson() {
    python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"
}

IT_TMUX=""
tmux_start() {
    IT_TMUX=$IT_TMP/tmux.sock
    tmux -S "$IT_TMUX" -f /dev/null new-session -d -s cli -x "$1" -y "$2" \
        "env PS1='$ ' bash --norc --noprofile"
    IT_OTHER_PIDS+=("$(tmux -S "$IT_TMUX" display -p -t cli '#{pid}')")
    tmux -S "$IT_TMUX" set -g status off
    echo "tmux server on $IT_TMUX (${1}x$2)"
}
tmux_run() { tmux -S "$IT_TMUX" send-keys -t cli -l "$1"; tmux -S "$IT_TMUX" send-keys -t cli Enter; }
tmux_keys() { tmux -S "$IT_TMUX" send-keys -t cli "$@"; }
tmux_screen() { tmux -S "$IT_TMUX" capture-pane -p -t cli; }
tmux_var() { tmux -S "$IT_TMUX" display -p -t cli "$1"; }

tmux_wait() {
    local deadline=$(( SECONDS + $1 ))
    while (( SECONDS < deadline )); do
        if tmux_screen | grep -qE -- "$3"; then
            pass "$2"
            return 0
        fi
        sleep 0.2
    done
    fail "$2: the screen did not show /$3/ within $1 s; it shows:"
    tmux_screen | sed 's/^/      | /'
    return 1
}

wait_file() {
    local deadline=$(( SECONDS + $1 ))
    while (( SECONDS < deadline )); do
        [[ -s $2 ]] && return 0
        sleep 0.2
    done
    return 1
}
