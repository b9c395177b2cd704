#!/usr/bin/env bash
# cli-network: `modelmine network` against a network with history: its figures and --json equal the
# database's, the terminal charts show every status and every node, and --svg writes one well-formed
# SVG (python3's xml.etree parses it) with a series per job status and a bar per node, node names
# XML-escaped, and y-axis ticks that are whole numbers where those counts are drawn; names with
# control characters never reach the terminal raw.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
it_begin cli-network
. "$(dirname "$0")/cli-lib.sh"
cli_env
MODELMINE_PASSWORD=$IT_OP_PW MODELMINE_SESSION_FILE=$IT_TMP/operator-session check_cli "the operator signs up" 0 signup "$IT_OP_EMAIL"
MODELMINE_PASSWORD="ada password" check_cli "ada signs up" 0 signup ada@example.com

step "a network with history"
start_worker W --slots 2
node_w=$(node_of W)
op_token=$(cat "$IT_TMP/operator-session")
weird='<b>&"x"'"'"'y'"'"'</b> ünïcode'
as_user "$op_token" "SELECT node_id FROM modelmine.register_node(\$n\$$weird\$n\$, '{\"trainers\": [\"noop\"]}')" >/dev/null
# Since 1.1 the extension refuses control characters in node names; a name stored before (or by a
# superuser) may still hold them, and the CLI must not pass them to the terminal either.
check "register_node refuses an escape sequence in a name" \
    "$(as_user "$op_token" "SELECT node_id FROM modelmine.register_node(chr(27) || '[31mred', '{}')" 2>&1 | grep -c 'invalid node name')" 1
esc_node=$(as_user "$op_token" "SELECT node_id FROM modelmine.register_node('renamed below', '{\"trainers\": [\"noop\"]}')")
adm "UPDATE modelmine.nodes SET name = chr(27) || '[2J' || chr(27) || '[31mred' WHERE id = $esc_node" >/dev/null
cli submit --trainer noop --title one
cli submit --trainer noop --title two
cli submit --trainer logreg --dataset blobs --epochs 20 --title three
cli submit --trainer logreg --csv http://127.0.0.1:1/data.csv --label y --title fails
echo '{"runner": "nobody-offers-this"}' >"$IT_TMP/runner.json"
cli submit --config "$IT_TMP/runner.json" --title "stays pending"
cli submit --config "$IT_TMP/runner.json" --title "canceled" --stake 10
check_cli "cancel one" 0 cancel "$CLI_OUT"
wait_until 60 "everything but the runner job settled" \
    "SELECT count(*) FILTER (WHERE status IN ('COMPLETED', 'FAILED', 'CANCELED')) = 5 FROM modelmine.jobs"

step "network --json"
check_cli "network --json" 0 network --json
echo "$CLI_OUT" >"$IT_TMP/network.json"
check "figures" "$(pyjson 'd["stats"]["nodes_total"], d["stats"]["jobs_pending"], d["stats"]["jobs_running"], d["stats"]["jobs_completed"], d["stats"]["jobs_failed"], d["stats"]["jobs_canceled"], d["stats"]["staked_now"]' <"$IT_TMP/network.json")" \
    "3 1 0 3 1 1 100"
check "paid to nodes and fees, as the journal has them" \
    "$(pyjson 'd["stats"]["paid_to_nodes"], d["stats"]["network_fees"]' <"$IT_TMP/network.json")" \
    "$(adm "SELECT sum(amount) FILTER (WHERE reason = 'reward') || ' ' || sum(amount) FILTER (WHERE reason = 'fee') FROM modelmine.journal")"
check "average accuracy, as the results have it" "$(pyjson "abs(d['stats']['average_accuracy'] - $(adm "SELECT avg((result->>'accuracy')::float8) FROM modelmine.jobs
      WHERE status = 'COMPLETED' AND result->>'accuracy' IS NOT NULL")) < 1e-9" <"$IT_TMP/network.json")" True
check "timeline: 6 months x 5 statuses, oldest first, ending this month" \
    "$(pyjson 'len(d["timeline"]), len({r["month"] for r in d["timeline"]}), [r["month"] for r in d["timeline"]] == sorted(r["month"] for r in d["timeline"]), d["timeline"][-1]["month"][:7]' <"$IT_TMP/network.json")" \
    "30 6 True $(date -u +%Y-%m)"
check "this month's counts per status" \
    "$(pyjson '" ".join(r["status"] + "=" + str(r["jobs"]) for r in d["timeline"] if r["month"] == d["timeline"][-1]["month"])' <"$IT_TMP/network.json")" \
    "PENDING=1 RUNNING=0 COMPLETED=3 FAILED=1 CANCELED=1"
check "earlier months are zero" "$(pyjson 'sum(r["jobs"] for r in d["timeline"] if r["month"] != d["timeline"][-1]["month"])' <"$IT_TMP/network.json")" 0
check "distribution: every node, most tokens first" "$(pyjson '[(r["node_id"], r["tokens_earned"]) for r in d["distribution"]]' <"$IT_TMP/network.json")" \
    "[$(adm "SELECT string_agg(format('(%s, %s)', id, tokens_earned), ', ' ORDER BY tokens_earned DESC, id) FROM modelmine.nodes")]"
check_cli "network --months 12 --nodes 1 --json" 0 network --months 12 --nodes 1 --json
check "12 months, 1 node" "$(pyjson 'len(d["timeline"]), [r["node_id"] for r in d["distribution"]]' <<<"$CLI_OUT")" "60 [$node_w]"
check_cli "network without a session" 0 network --json
MODELMINE_SESSION_FILE=$IT_TMP/none check_cli "network needs no session" 0 network

step "network (terminal)"
check_cli "network" 0 network
echo "$CLI_OUT" | sed 's/^/      | /'
check "the figures" "$(sed -n '4p' <<<"$CLI_OUT")" "jobs      1 pending, 0 running, 3 completed, 1 failed, 1 canceled"
chart=$(sed -n '/^Jobs per month by status/,/^$/p' <<<"$CLI_OUT")
# bottom row, this month's group: pending, (no) running, completed, failed, canceled
check "the timeline's bottom row shows this month's statuses" "$(grep -E '│|┤' <<<"$chart" | tail -n 1 | grep -oE '.{5}$')" "P CFX"
check "completed is the tallest column (3 jobs, top row)" "$(grep -E '┤' <<<"$chart" | head -n 1 | grep -oE '.{5}$')" "  C  "
check "its legend" "$(grep -c 'P Pending  R Running  C Completed  F Failed  X Canceled' <<<"$chart")" 1
check "its month labels end with this month" "$(grep -E '^ +[A-Z][a-z]{2}( |$)' <<<"$chart" | awk '{ print $NF }')" "$(LC_ALL=C date -u +%b)"
dist=$(sed -n '/^Tokens earned per node/,$p' <<<"$CLI_OUT")
check "a bar per node" "$(( $(wc -l <<<"$dist") - 1 ))" 3
grep -qE "^W +█+ $(adm "SELECT tokens_earned FROM modelmine.nodes WHERE id = $node_w")$" <<<"$dist" \
    && pass "W's bar is the longest, with its tokens" || fail "W's bar: $dist"
check_false "no control character from a node name reaches the terminal" grep -q $'\e' <<<"$CLI_OUT"
grep -qF '?[2J?[31mred' <<<"$dist" && pass "they show as '?'" || fail "cleaned name: $dist"

step "network --svg"
check_cli "network --svg FILE" 0 network --svg "$IT_TMP/network.svg"
check "it says where" "$CLI_OUT" "Wrote the network charts to $IT_TMP/network.svg."
python3 - "$IT_TMP/network.svg" "$node_w" "$weird" >"$IT_TMP/svg-facts" <<'PY' || fail "the SVG does not parse: $(cat "$IT_TMP/svg-facts")"
import sys
import xml.etree.ElementTree as ET
path, node_w, weird = sys.argv[1], sys.argv[2], sys.argv[3]
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(path).getroot()
print("root", root.tag.split("}")[1], root.get("width") is not None)
series = root.findall(".//s:g[@class='series']", ns)
print("series", [g.get("data-status") for g in series])
print("points", [len(g.find("s:polyline", ns).get("points").split()) for g in series])
done = [g for g in series if g.get("data-status") == "COMPLETED"][0]
print("last completed point", done.findall("s:circle", ns)[-1].find("s:title", ns).text.split(": ")[1])
print("legend", [g.get("data-status") for g in root.findall(".//s:g[@class='legend-item']", ns)])
bars = root.findall(".//s:g[@class='bar']", ns)
print("bars", len(bars), bars[0].get("data-node-id") == node_w)
print("escaped name", any(b.find("s:title", ns).text.startswith(weird + " (node ") for b in bars))
print("widest bar first", float(bars[0].find("s:rect", ns).get("width")) > 0)
# The y axis: its labels (right-aligned texts left of the plot) and their heights; a label sits 4
# units below the line it names.
timeline = root.find(".//s:g[@class='chart timeline']", ns)
ticks = [(t.text, float(t.get("y")) - 4) for t in timeline.iter("{http://www.w3.org/2000/svg}text")
         if t.get("text-anchor") == "end"]
print("tick labels", " ".join(label for label, _ in ticks))
at = {int(label): y for label, y in ticks}
steps = {b - a for a, b in zip(sorted(at), sorted(at)[1:])}
print("ticks distinct and evenly spaced", len(at) == len(ticks) and len(steps) == 1 and min(at) == 0)
off = [(g.get("data-status"), c.find("s:title", ns).text) for g in series for c in g.findall("s:circle", ns)
       if int(c.find("s:title", ns).text.split(": ")[1].split()[0]) in at
       and abs(float(c.get("cy")) - at[int(c.find("s:title", ns).text.split(": ")[1].split()[0])]) > 0.6]
print("misplaced points", off[:3] if off else "none")
PY
cat "$IT_TMP/svg-facts" | sed 's/^/      /'
check "an svg root" "$(sed -n 's/^root //p' "$IT_TMP/svg-facts")" "svg True"
check "one series per status" "$(sed -n 's/^series //p' "$IT_TMP/svg-facts")" "['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELED']"
check "a point per month in each" "$(sed -n 's/^points //p' "$IT_TMP/svg-facts")" "[6, 6, 6, 6, 6]"
check "this month's completed point" "$(sed -n 's/^last completed point //p' "$IT_TMP/svg-facts")" "3 jobs"
check "a legend entry per status" "$(sed -n 's/^legend //p' "$IT_TMP/svg-facts")" "['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELED']"
check "one bar per node, W first" "$(sed -n 's/^bars //p' "$IT_TMP/svg-facts")" "3 True"
check "the node name with <, &, quotes and accents survives escaping" "$(sed -n 's/^escaped name //p' "$IT_TMP/svg-facts")" True
check "the widest bar has width" "$(sed -n 's/^widest bar first //p' "$IT_TMP/svg-facts")" True
check "y-axis ticks for counts up to 3" "$(sed -n 's/^tick labels //p' "$IT_TMP/svg-facts")" "0 1 2 3"
check "... distinct and evenly spaced from 0" "$(sed -n 's/^ticks distinct and evenly spaced //p' "$IT_TMP/svg-facts")" True
check "every point with a tick of its count sits on it" "$(sed -n 's/^misplaced points //p' "$IT_TMP/svg-facts")" none
check_cli "network --svg - (stdout)" 0 network --svg -
check "... the same document" "$(python3 -c 'import sys, xml.etree.ElementTree as ET; print(ET.fromstring(sys.stdin.read().encode()).tag)' <<<"$CLI_OUT")" \
    "{http://www.w3.org/2000/svg}svg"

step "nodes with such names"
check_cli "nodes" 0 nodes
check_false "no control character reaches the terminal" grep -q $'\e' <<<"$CLI_OUT"
grep -qF "$weird" <<<"$CLI_OUT" && pass "the odd-but-printable name is shown as it is" || fail "nodes: $CLI_OUT"

step "the terminal timeline's axis labels are true of the bars"
# 5 completed jobs on 8 rows: a row's top stands for 5/8 of a job per row, so only the top (5) is a
# whole number; a middle label rounded from 2.5 would read 3 on a row where 3-job bars do not end.
cli submit --trainer noop --title four
cli submit --trainer noop --title five
wait_until 60 "five completed" "SELECT count(*) = 5 FROM modelmine.jobs WHERE status = 'COMPLETED'"
check_cli "network" 0 network
chart=$(sed -n '/^Jobs per month by status/,/^$/p' <<<"$CLI_OUT")
check "labelled rows: only the top (5) and the axis (0)" "$(grep -oE '^ *[0-9]+ [┤└]' <<<"$chart" | tr -d ' ┤└' | tr '\n' ' ')" "5 0 "

stop_worker W TERM
check "W exits 0" "$IT_RC" 0
it_end
