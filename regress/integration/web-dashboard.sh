#!/usr/bin/env bash
# web-dashboard: the web dashboard (web/) in Debian's Chromium, driven by playwright-core
# (tests/browser/dashboard.test.mjs), against this test's database, a real gateway serving web/, and a
# real worker that trains. The journey: sign up, submit an MLP job from the form, watch its progress bar
# and loss curve move without a reload, see COMPLETED with the accuracy, download the result, see the
# network charts with the new data, follow a gateway restart (reconnecting -> live, events again), kill
# the worker and see its node turn OFFLINE, register a node and run the command the page shows, sign out
# and find the token refused. Then admins and the others (/admin/* answers 403), the XSS probes (a job
# title and node names with markup), 360 px and the keyboard, axe-core on every page in light and dark
# at 1280 and 360 px, a screenshot of each (in $IT_TMP/shots, or MM_WEB_SHOTS), and the first load's
# bytes and time to the first complete render (MM_WEB_RESULTS: a file for them, as JSON).
# About 3 minutes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin web-dashboard
. "$(dirname "$0")/api-lib.sh"
web=$MM_REPO/web
tests=$MM_REPO/tests/browser

step "node, Chromium, the gateway and the npm packages (web/ and tests/browser/, as their lockfiles pin them)"
command -v node >/dev/null 2>&1 || { fail "node is not installed (the machine's Node.js 20 and npm run the browser tests)"; it_end; }
chromium=${MM_CHROMIUM:-/usr/bin/chromium}
[[ -x $chromium ]] || { fail "no Chromium at $chromium (scripts/install-deps.sh installs Debian's chromium)"; it_end; }
make -C "$MM_REPO/api" -s >"$IT_TMP/make.log" 2>&1 || { cat "$IT_TMP/make.log"; fail "make -C api"; it_end; }
for d in "$web" "$tests"; do
    if ! cmp -s "$d/package-lock.json" "$d/node_modules/.package-lock.json.installed" 2>/dev/null; then
        (cd "$d" && npm ci --no-audit --no-fund --loglevel=error) >"$IT_TMP/npm.log" 2>&1 ||
            { tail -n 20 "$IT_TMP/npm.log"; fail "npm ci in $d"; it_end; }
        cp "$d/package-lock.json" "$d/node_modules/.package-lock.json.installed"
    fi
done
"$web/precompress.sh"
check "playwright-core is the pinned version" \
    "$(node -p "require('$tests/node_modules/playwright-core/package.json').version")" \
    "$(node -p "require('$tests/package.json').dependencies['playwright-core']")"
echo "Chromium: $("$chromium" --version 2>/dev/null)"

step "the network: an admin, fast OFFLINE detection, a worker whose node name holds markup"
adm "UPDATE modelmine.settings SET value = 6 WHERE name = 'offline_after_seconds'" >/dev/null
adm "SELECT modelmine.signup('web-admin@example.com', 'web admin password')" >/dev/null
adm "SELECT modelmine.set_user_role('web-admin@example.com', 'admin')" >/dev/null
signup "$IT_OP_EMAIL" "$IT_OP_PW" >/dev/null
worker_name='<b>gpu</b> & <img src=x onerror=alert(2)> box'
start_worker w1 --name "$worker_name" --heartbeat-interval 1
node_of w1 >/dev/null

step "the gateway, under a supervisor that restarts it on the same port"
api_role
port=$(api_free_port)
url=http://127.0.0.1:$port
cat >"$IT_TMP/supervise.sh" <<EOF
child=""
trap 'kill -TERM "\$child" 2>/dev/null; wait "\$child" 2>/dev/null; exit 0' TERM
while :; do
    "$API_BIN" --db "postgresql://mm_gateway@$PGHOST:$PGPORT/$IT_DB" --listen 127.0.0.1:$port \
        --web-root "$web" --node-modules "$web/node_modules" --heartbeat-view 1000 --drain 2 \
        --auth-rate 200/60 </dev/null >>"$IT_TMP/api.log" 2>&1 &
    child=\$!
    echo "\$child" >"$IT_TMP/api.pid"
    wait "\$child" || true
    echo "gateway exited; restarting" >>"$IT_TMP/api.log"
    sleep 0.5
done
EOF
setsid bash "$IT_TMP/supervise.sh" </dev/null >>"$IT_TMP/supervisor.log" 2>&1 &
supervisor=$!
IT_OTHER_PIDS+=("$supervisor")
IT_GROUPS+=("$supervisor")
for _ in $(seq 1 100); do [[ $(api_health_code "$url") == 200 ]] && break; sleep 0.1; done
check "the gateway answers /health on $url" "$(api_health_code "$url")" 200

step "tests/browser/dashboard.test.mjs"
shots=${MM_WEB_SHOTS:-$IT_TMP/shots}
rc=0
(cd "$tests" && MM_URL=$url MM_CHROMIUM=$chromium MM_ADMIN_EMAIL=web-admin@example.com \
    MM_ADMIN_PASSWORD='web admin password' MM_WORKER_NAME="$worker_name" \
    MM_KILL_WORKER="kill -KILL $(worker_pid w1)" MM_RESTART_API="kill -TERM \$(cat $IT_TMP/api.pid)" \
    MM_WORKER_BIN="$MM_WORKER" MM_SHOTS="$shots" \
    MM_RESULTS="${MM_WEB_RESULTS:-}" timeout 280 node dashboard.test.mjs) || rc=$?
check "dashboard.test.mjs: every check passed" "$rc" 0
check_sql "the job the browser submitted completed and is in the ledger" \
    "SELECT count(*) = 1 FROM modelmine.ledger l JOIN modelmine.jobs j ON j.id = l.job_id WHERE j.title = 'Spirals MLP from the browser'"
check_sql "the books balance after the journey" "SELECT count(*) = 0 FROM modelmine.check_invariants()"
echo "screenshots: $(find "$shots" -name '*.png' 2>/dev/null | wc -l) in $shots"
# the supervisor stops the gateway on TERM (a SIGKILL at cleanup would leave bash's "Killed" line)
kill -TERM "$supervisor" 2>/dev/null || true
wait "$supervisor" 2>/dev/null || true
it_end
