#!/usr/bin/env python3
"""scripts/chaos.py: the chaos run's driver (scripts/chaos.sh sets up the cluster and runs it).

From a seed it builds a schedule up front: at which second which operation (users submitting valid
and invalid jobs, canceling, transferring, withdrawing, an admin deciding withdrawals, a cheating
node) and which fault (kill -9 of workers, trainers, gateways and the notifier, a PostgreSQL
immediate restart, network cuts, a full disk at the webhook target, clock jumps in a worker, a
lock-holding rogue session) happens. Choices never depend on what happened at run time, so the same
seed gives the same schedule; a target that depends on run time (which job to cancel) is drawn as an
index and resolved when the action runs, and the log shows both. Real timing is not reproducible.

Every few seconds and at the end it checks the invariants (see docs/CHAOS.md); on a violation it
prints the seed, the last actions and exits 1. Exit 0: clean. Exit 2: bad usage or setup failure.
"""
import argparse
import collections
import heapq
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOMAIN = "chaos.test"
PASSWORD = "chaos password"
USERS = 6
OPERATORS = 4
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"

# Operation weights (per operation slot) and fault weights (per fault slot).
OPS = [("submit_http", 20), ("submit_sql", 10), ("submit_invalid", 6), ("cancel", 8),
       ("transfer", 8), ("withdraw", 4), ("decide_withdrawal", 4), ("cheat_round", 5), ("mint", 3)]
FAULTS = [("kill_worker", 10), ("kill_trainer", 8), ("kill_gateway", 6), ("kill_notifier", 5),
          ("pg_restart", 3), ("net_cut", 8), ("drop_backends", 4), ("disk_full", 5),
          ("clock_jump", 6), ("rogue_lock", 8)]
WORKERS = ["wdb0", "wdb1", "wapi0", "wapi1"]
CLOCK_OFFSETS = ["-1d", "-1h", "-2m", "+2m", "+1h", "+1d"]


class Violation(Exception):
    pass


# --------------------------------------------------------------------------------------------------
# The schedule: a pure function of the seed and the duration.

def weighted(rng, table):
    names = [n for n, _ in table]
    return rng.choices(names, weights=[w for _, w in table])[0]


def job_config(rng):
    """A valid job config and a stake; a fixed number of draws whatever the kind."""
    kind = weighted(rng, [("logreg", 5), ("noop", 2), ("slow", 4), ("crash", 1)])
    replicas = rng.choice([1, 1, 1, 2])
    seed = rng.randrange(1000)
    secs = rng.randrange(1, 9)
    stake = rng.randrange(10, 120)
    if kind == "logreg":
        cfg = {"trainer": "logreg", "epochs": 5,
               "dataset": {"synthetic": "blobs", "n": 200, "noise": 3, "seed": seed}}
    elif kind == "noop":
        cfg = {"trainer": "noop"}
    elif kind == "slow":
        cfg = {"runner": "slow", "seconds": secs}
    else:
        cfg = {"runner": "crash"}
    cfg["replicas"] = replicas
    return cfg, stake


INVALID = [  # (title, config, stake) that submit_job must refuse with a 4xx / a specific SQLSTATE
    ("bad trainer", {"trainer": "nope"}, 10),
    ("not an object", [1, 2, 3], 10),
    ("zero stake", {"trainer": "noop"}, 0),
    ("huge stake", {"trainer": "noop"}, 10 ** 12),
    ("", {"trainer": "noop"}, 10),
    ("too many replicas", {"trainer": "noop", "replicas": 99}, 10),
    ("trainer and runner", {"trainer": "logreg", "runner": "slow"}, 10),
]


def make_schedule(seed, seconds):
    rng = random.Random(seed)
    acts = []
    t = 1.0
    while t < seconds:
        op = weighted(rng, OPS)
        p = {"user": rng.randrange(USERS), "k": rng.randrange(1 << 30), "gw": rng.randrange(2)}
        if op in ("submit_http", "submit_sql"):
            p["config"], p["stake"] = job_config(rng)
        elif op == "submit_invalid":
            p["invalid"] = rng.randrange(len(INVALID))
            p["via"] = rng.choice(["http", "sql"])
        elif op == "cancel":
            p["via"] = rng.choice(["http", "sql"])
        elif op == "transfer":
            p["to"] = rng.randrange(USERS)
            p["amount"] = rng.choice([1, 5, 20, 100, 5000])
        elif op == "withdraw":
            p["amount"] = rng.choice([1, 10, 50, 3000])
        elif op == "decide_withdrawal":
            p["approve"] = rng.random() < 0.6
        elif op == "mint":
            p["amount"] = rng.randrange(300, 2000)
        acts.append((round(t, 2), op, p))
        t += rng.uniform(0.15, 0.6)
    t = 3.0
    # The first faults are a shuffled tour of every kind, so even a short run meets each one.
    tour = [n for n, _ in FAULTS]
    rng.shuffle(tour)
    while t < seconds:
        f = tour.pop(0) if tour else weighted(rng, FAULTS)
        p = {"worker": rng.choice(WORKERS), "k": rng.randrange(1 << 30),
             "secs": round(rng.uniform(0.5, 4.0), 1)}
        if f == "kill_gateway":
            p["gw"] = rng.randrange(2)
        elif f == "clock_jump":
            p["worker"] = rng.choice(["wdb0", "wapi0"])  # the two started under libfaketime
            p["offset"] = rng.choice(CLOCK_OFFSETS)
            p["secs"] = round(rng.uniform(2, 8), 1)
        elif f == "rogue_lock":
            p["what"] = rng.choice(["account", "job", "node"])
            p["user"] = rng.randrange(USERS)
        elif f == "disk_full":
            p["secs"] = round(rng.uniform(1, 5), 1)
        elif f == "drop_backends":
            p["role"] = rng.choice(["mm_gateway", "mm_notifier", "mm_worker"])
        acts.append((round(t, 2), f, p))
        t += rng.uniform(1.5, 4.5)
    acts.sort(key=lambda a: a[0])
    return acts


# --------------------------------------------------------------------------------------------------
# Plumbing: psql, HTTP, a cuttable TCP proxy, the webhook receiver.

class Db:
    def __init__(self, dbname):
        self.dbname = dbname

    def run(self, sql, role=None, timeout=60):
        cmd = ["psql", "-X", "-At", "-q", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose",
               "-d", self.dbname]
        if role:
            cmd += ["-U", role]
        try:
            r = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124, "", "psql timed out"
        return r.returncode, r.stdout.strip(), r.stderr.strip()

    def must(self, sql, role=None):
        rc, out, err = self.run(sql, role)
        if rc != 0:
            raise RuntimeError("psql failed (%d): %s\n%s" % (rc, err, sql[:300]))
        return out

    def as_user(self, token, sql):
        return self.run("SELECT modelmine.authenticate('%s') \\g /dev/null\n%s" % (token, sql),
                        role="mm_client")


def sqlstate(err):
    for line in err.splitlines():
        if line.startswith("ERROR:"):
            parts = line.split()
            if len(parts) > 1 and len(parts[1]) == 6 and parts[1].endswith(":"):
                return parts[1][:5]
            return "ERROR"
    return "?"


def unreachable(err):
    """True for the errors of a server that is down or restarting (not a failed check)."""
    return any(w in err for w in ("connection", "terminat", "shut", "recovery", "starting up",
                                  "server closed", "57P0"))


def http(method, url, token=None, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


_ports_given = set()


def free_port():
    """A free port below the kernel's ephemeral range, as mm_free_port picks them: a gateway
    restarted on its port must not find it taken by a client's outgoing connection (seed 13)."""
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    low = low if low > 2024 else 32768
    start = os.getpid() % 1000
    for i in range(1000):
        port = low - 1000 + (start + i) % 1000
        if port in _ports_given:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _ports_given.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


class Proxy:
    """A TCP forwarder between one worker and its database or gateway; cut() resets every connection
    (RST) and refuses new ones for a while: the worker's network goes away, then comes back."""

    def __init__(self, name, target_port):
        self.name, self.target = name, target_port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.cut_until = 0.0
        self.lock = threading.Lock()
        self.socks = set()
        threading.Thread(target=self.accept_loop, daemon=True).start()

    @staticmethod
    def reset(s):
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def accept_loop(self):
        while True:
            c, _ = self.lsock.accept()
            if time.time() < self.cut_until:
                self.reset(c)
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                u.settimeout(None)
            except OSError:
                self.reset(c)
                continue
            with self.lock:
                self.socks.update((c, u))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    def pump(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self.lock:
            for s in (a, b):
                if s in self.socks:
                    self.socks.discard(s)
                    s.close()

    def cut(self, secs):
        self.cut_until = time.time() + secs
        with self.lock:
            socks, self.socks = list(self.socks), set()
        for s in socks:
            self.reset(s)
        return len(socks) // 2


class Receiver:
    """The users' webhook target. While full, it answers 507 Insufficient Storage, as a receiver
    whose disk is full would; the notifier must retry (5xx) and deliver each event later."""

    def __init__(self):
        self.full_until = 0.0
        self.got = []  # (event_id, type, path, status)
        self.lock = threading.Lock()
        rec = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    ev = json.loads(body)
                except ValueError:
                    ev = {}
                status = 507 if time.time() < rec.full_until else 200
                with rec.lock:
                    rec.got.append((ev.get("id"), ev.get("type"), self.path, status,
                                    self.headers.get("ModelMine-Event-Id")))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# --------------------------------------------------------------------------------------------------

class Chaos:
    def __init__(self, a):
        self.a = a
        self.repo = a.repo
        self.dir = a.workdir
        self.db = Db(a.db)
        self.log_lines = collections.deque(maxlen=a.last)
        self.logf = open(os.path.join(self.dir, "actions.log"), "w")
        self.t0 = time.time()
        self.procs = {}        # name -> Popen
        self.restart_at = []   # heap of (time, name)
        self.timers = []       # heap of (time, seq, callable, text)
        self.seq = 0
        self.acked_jobs = {}   # job id -> user index
        self.user_jobs = collections.defaultdict(list)
        self.acked_cancels = set()
        self.acked_transfers = set()
        self.acked_withdrawals = {}  # id -> expected status (PENDING / APPROVED / REJECTED)
        self.minted = 0
        self.digests = []
        self.counts = collections.Counter()
        self.checks = 0
        self.skipped_checks = 0

    # -- logging -----------------------------------------------------------------------------------
    def log(self, text):
        line = "[%7.2f] %s" % (time.time() - self.t0, text)
        self.log_lines.append(line)
        self.logf.write(line + "\n")
        self.logf.flush()
        if self.a.verbose:
            print(line, flush=True)

    def violation(self, what):
        print("\nCHAOS VIOLATION (seed %d): %s" % (self.a.seed, what), flush=True)
        print("last %d actions (full log %s/actions.log):" % (len(self.log_lines), self.dir))
        for line in self.log_lines:
            print("  " + line)
        print("replay the same schedule: scripts/chaos.sh --seed %d --seconds %d"
              % (self.a.seed, self.a.seconds), flush=True)
        raise Violation(what)

    # -- processes ---------------------------------------------------------------------------------
    def spawn(self, name, cmd, env=None):
        e = dict(os.environ)
        e.update(env or {})
        out = open(os.path.join(self.dir, name + ".log"), "a")
        self.procs[name] = subprocess.Popen(cmd, env=e, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self.procs[name]

    def alive(self, name):
        p = self.procs.get(name)
        return p is not None and p.poll() is None

    def kill9(self, name):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return "not running"
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        return "killed pid %d" % p.pid

    def start(self, name):
        if name.startswith("gw"):
            self.start_gw(name)
        elif name == "notifier":
            self.start_notifier(name)
        else:
            self.start_w(name)

    def start_gw(self, name):
        i = int(name[2:])
        self.spawn(name, [self.gw_bin, "--db", "postgresql://mm_gateway@127.0.0.1:%s/%s"
                          % (os.environ["PGPORT"], self.a.db),
                          "--listen", "127.0.0.1:%d" % self.gw_port[i], "--auth-rate", "100000/1",
                          "--quiet"])

    def wait_http(self, url, secs=15):
        end = time.time() + secs
        while time.time() < end:
            if http("GET", url + "/health", timeout=2)[0] == 200:
                return True
            time.sleep(0.1)
        return False

    def start_notifier(self, name):
        self.spawn(name, [self.repo + "/notify/modelmine-notify", "--db",
                          "host=127.0.0.1 port=%s user=mm_notifier dbname=%s"
                          % (os.environ["PGPORT"], self.a.db),
                          "--smtp-url", "smtp://127.0.0.1:%d" % self.smtp_port,
                          "--smtp-tls", "none",
                          "--smtp-from", "ModelMine <noreply@chaos.test>",
                          "--dashboard-url", "http://dash.chaos.test/",
                          "--allow-net", "127.0.0.1/32",
                          "--poll-ms", "200", "--lease-seconds", "5", "--offline-check", "2"])

    def start_w(self, name):
        spec = self.worker_spec[name]
        if spec["mode"] == "db":
            peer = ["--db", "postgresql://mm_worker@127.0.0.1:%d/%s" % (self.proxies[name].port,
                                                                       self.a.db)]
        else:
            peer = ["--api", "http://127.0.0.1:%d" % self.proxies[name].port, "--claim-wait", "2"]
        runners = []
        for r, script in spec["runners"]:
            runners += ["--runner", "%s=sh %s/%s" % (r, self.dir, script)]
        env = {"MODELMINE_OPERATOR_PASSWORD": PASSWORD, "no_proxy": "*", "NO_PROXY": "*"}
        if spec.get("faketime"):
            env.update({"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_NO_CACHE": "1",
                        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                        "FAKETIME_TIMESTAMP_FILE": os.path.join(self.dir, name + ".faketime")})
        self.spawn(name, [self.repo + "/worker/modelmine-worker"] + peer +
                   ["--name", name, "--state-file", os.path.join(self.dir, name + ".json"),
                    "--operator-email", "op%d@%s" % (spec["op"], DOMAIN),
                    "--slots", str(spec["slots"]),
                    "--lease-seconds", "5", "--heartbeat-interval", "1", "--poll-interval", "1",
                    "--drain-timeout", "2"] + runners, env)

    # -- setup -------------------------------------------------------------------------------------
    def setup(self):
        d = self.dir
        with open(os.path.join(d, "slow.sh"), "w") as f:
            f.write('cfg=$(cat)\n'
                    's=$(printf "%s" "$cfg" |\n'
                    '  sed -n \'s/.*"seconds": *\\([0-9][0-9]*\\).*/\\1/p\')\n'
                    'i=0; while [ "$i" -lt "${s:-2}" ]; do sleep 1; i=$((i + 1));\n'
                    '  echo "{\\"progress\\": $((i * 90 / ${s:-2}))}"; done\n'
                    'echo \'{"result": {"accuracy": 0.9, "loss": 0.1, "epochs": 1}}\'\n')
        with open(os.path.join(d, "cheat.sh"), "w") as f:  # a node that fabricates the result
            f.write('cat >/dev/null\n'
                    'echo \'{"result": {"accuracy": 1, "loss": 0, "epochs": 1}}\'\n')
        with open(os.path.join(d, "crash.sh"), "w") as f:  # a runner that dies mid-job
            f.write('cat >/dev/null\necho \'{"progress": 10}\'\nsleep 0.5\nkill -9 $$\n')
        for w in ("wdb0", "wapi0"):
            with open(os.path.join(d, w + ".faketime"), "w") as f:
                f.write("+0\n")
        db = self.db
        db.must("""
SET client_min_messages = warning;
CREATE EXTENSION modelmine CASCADE;
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
UPDATE modelmine.settings SET value = 10 WHERE name = 'spotcheck_pct';
UPDATE modelmine.settings SET value = 200 WHERE name = 'outbox_retry_base_ms';
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_worker') THEN
    CREATE ROLE mm_worker LOGIN IN ROLE modelmine_node, modelmine_user; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_client') THEN
    CREATE ROLE mm_client LOGIN IN ROLE modelmine_user; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_gateway') THEN
    CREATE ROLE mm_gateway LOGIN IN ROLE modelmine_anon, modelmine_user, modelmine_node,
                                         modelmine_admin; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mm_notifier') THEN
    CREATE ROLE mm_notifier LOGIN IN ROLE modelmine_notifier; END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;""")
        self.receiver = Receiver()
        emails = (["u%d@%s" % (i, DOMAIN) for i in range(USERS)] +
                  ["op%d@%s" % (i, DOMAIN) for i in range(OPERATORS)] + ["mallory@" + DOMAIN])
        # two sessions for all of them (a psql start costs 0.3 s on a loaded machine)
        db.must("".join("SELECT modelmine.signup('%s', '%s') \\g /dev/null\n"
                        "SELECT modelmine.verify_user('%s') \\g /dev/null\n" % (e, PASSWORD, e)
                        for e in emails))
        toks = db.must("".join("SELECT modelmine.login('%s', '%s');\n" % (e, PASSWORD)
                               for e in emails), role="mm_client").split()
        events = "job_completed,job_failed,job_canceled,withdrawal_decided,balance_low,node_offline"
        db.must("".join("SELECT modelmine.authenticate('%s') \\g /dev/null\n"
                        "SELECT modelmine.set_notification_prefs('{%s}', true, 500) \\g /dev/null\n"
                        "SELECT modelmine.add_webhook('http://127.0.0.1:%d/u%d') \\g /dev/null\n"
                        % (t, events, self.receiver.port, i) for i, t in enumerate(toks)),
                role="mm_client")
        self.tokens, self.mallory = toks[:USERS], toks[-1]
        self.expected_issued = int(db.must("SELECT -balance FROM modelmine.account_balances "
                                           "WHERE kind = 'issuance'"))
        # the SQL cheater: Mallory's node claims built-in jobs and completes them without training
        row = db.as_user(self.mallory, "SELECT node_id || ' ' || node_key FROM "
                         "modelmine.register_node("
                         "'mallory', '{\"trainers\": [\"logreg\", \"noop\"], \"slots\": 4}')")[1]
        self.cheat_id, self.cheat_key = row.split()

        # SMTP sink (the repository's, aiosmtpd) and the notifier
        self.smtp_port = free_port()
        self.maildir = os.path.join(d, "mail")
        os.makedirs(self.maildir, exist_ok=True)
        py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
        self.spawn("smtp-sink", [py, self.repo + "/regress/integration/smtp-sink.py",
                                 str(self.smtp_port), self.maildir])
        self.start("notifier")

        # two gateways on fixed ports (kept across restarts: the API workers' proxies point there)
        self.gw_bin = self.repo + "/api/modelmine-api"
        self.gw_port = [free_port(), free_port()]
        self.gw_url = ["http://127.0.0.1:%d" % p for p in self.gw_port]
        for i in range(2):
            self.start("gw%d" % i)
        for i in range(2):
            if not self.wait_http(self.gw_url[i]):
                raise RuntimeError("gateway gw%d did not come up; see %s/gw%d.log" % (i, d, i))

        # workers: two --db, two --api; wdb1's operator runs a cheating "slow" runner
        honest = [("slow", "slow.sh"), ("crash", "crash.sh")]
        self.worker_spec = {
            "wdb0": {"mode": "db", "op": 0, "slots": 2, "runners": honest, "faketime": True},
            "wdb1": {"mode": "db", "op": 1, "slots": 1, "runners": [("slow", "cheat.sh")]},
            "wapi0": {"mode": "api", "gw": 0, "op": 2, "slots": 2, "runners": honest,
                      "faketime": True},
            "wapi1": {"mode": "api", "gw": 1, "op": 3, "slots": 1,
                      "runners": [("slow", "slow.sh")]},
        }
        pgport = int(os.environ["PGPORT"])
        self.proxies = {}
        for w, spec in self.worker_spec.items():
            target = pgport if spec["mode"] == "db" else self.gw_port[spec["gw"]]
            self.proxies[w] = Proxy(w, target)
            self.start(w)
        end = time.time() + 30
        while time.time() < end:
            n = db.run("SELECT count(*) FROM modelmine.nodes WHERE last_seen IS NOT NULL")[1]
            if n == str(len(WORKERS) + 0) or n == str(len(WORKERS) + 1):
                if all(os.path.exists(os.path.join(d, w + ".json")) for w in WORKERS):
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("the workers did not register within 30 s; see %s/w*.log" % d)
        self.digests.append(db.must("SELECT modelmine.ledger_digest()"))
        self.log("setup done: users %d, operators %d, workers %s, gateways %s, receiver :%d"
                 % (USERS, OPERATORS, ",".join(WORKERS), ",".join(self.gw_url), self.receiver.port))

    # -- operations --------------------------------------------------------------------------------
    def pick_job(self, user, k):
        jobs = self.user_jobs[user]
        return jobs[-1 - k % min(len(jobs), 3)] if jobs else None

    def op_submit_http(self, p):
        tok = self.tokens[p["user"]]
        st, body = http("POST", self.gw_url[p["gw"]] + "/jobs", tok,
                        {"title": "chaos %d" % p["k"], "config": p["config"], "stake": p["stake"]})
        if 200 <= st < 300:
            jid = json.loads(body)["id"]
            self.ack_job(jid, p["user"])
            return "201 job %d" % jid
        return "%d %s" % (st, body[:120])

    def ack_job(self, jid, user):
        self.acked_jobs[jid] = user
        self.user_jobs[user].append(jid)

    def op_submit_sql(self, p):
        rc, out, err = self.db.as_user(
            self.tokens[p["user"]], "SELECT modelmine.submit_job('chaos %d', '%s', NULL, %d)"
            % (p["k"], json.dumps(p["config"]), p["stake"]))
        if rc == 0:
            self.ack_job(int(out), p["user"])
            return "committed job %s" % out
        return "error %s %s" % (sqlstate(err), err[:120])

    def op_submit_invalid(self, p):
        title, cfg, stake = INVALID[p["invalid"]]
        if p["via"] == "http":
            st, body = http("POST", self.gw_url[p["gw"]] + "/jobs", self.tokens[p["user"]],
                            {"title": title, "config": cfg, "stake": stake})
            if 200 <= st < 300 or st >= 500 and st not in (502, 503, 504):
                self.violation("invalid submit %r answered %d %s" % (title, st, body[:200]))
            return "%d (refused, as it should)" % st
        rc, out, err = self.db.as_user(self.tokens[p["user"]],
                                       "SELECT modelmine.submit_job('%s', '%s', NULL, %d)"
                                       % (title, json.dumps(cfg), stake))
        state = sqlstate(err)
        if rc == 0 or state == "XX000":
            self.violation("invalid submit %r via SQL: rc %d %s %s" % (title, rc, out, err[:200]))
        return "refused %s" % state

    def op_cancel(self, p):
        jid = self.pick_job(p["user"], p["k"])
        if jid is None:
            return "no job yet"
        if p["via"] == "http":
            st, body = http("POST", "%s/jobs/%d/cancel" % (self.gw_url[p["gw"]], jid),
                            self.tokens[p["user"]])
            ok, what = 200 <= st < 300, "%d %s" % (st, body[:100])
        else:
            rc, out, err = self.db.as_user(self.tokens[p["user"]],
                                           "SELECT modelmine.cancel_job(%d)" % jid)
            ok, what = rc == 0, (out if rc == 0 else sqlstate(err) + " " + err[:100])
        if ok:
            self.acked_cancels.add(jid)
        return "job %d: %s" % (jid, what)

    def op_transfer(self, p):
        to = "u%d@%s" % (p["to"], DOMAIN)
        st, body = http("POST", self.gw_url[p["gw"]] + "/transfers", self.tokens[p["user"]],
                        {"to_email": to, "amount": p["amount"]})
        if st == 201:
            self.acked_transfers.add(json.loads(body)["transaction_id"])
        return "%d to %s: %d %s" % (p["amount"], to, st, body[:100])

    def op_withdraw(self, p):
        rc, out, err = self.db.as_user(self.tokens[p["user"]],
                                       "SELECT modelmine.request_withdrawal(%d, 'IBAN chaos')"
                                       % p["amount"])
        if rc == 0:
            self.acked_withdrawals[int(out)] = "PENDING"
            return "%d: withdrawal %s" % (p["amount"], out)
        return "%d: %s %s" % (p["amount"], sqlstate(err), err[:100])

    def op_decide_withdrawal(self, p):
        pending = sorted(w for w, s in self.acked_withdrawals.items() if s == "PENDING")
        if not pending:
            return "none pending"
        wid = pending[p["k"] % len(pending)]
        if p["approve"]:
            sql = "SELECT modelmine.approve_withdrawal(%d, 'SEPA chaos')" % wid
        else:
            sql = "SELECT modelmine.reject_withdrawal(%d, 'chaos says no')" % wid
        rc, out, err = self.db.run(sql)
        if rc == 0:
            self.acked_withdrawals[wid] = "APPROVED" if p["approve"] else "REJECTED"
        return "%s %d: %s" % ("approve" if p["approve"] else "reject", wid,
                             out if rc == 0 else sqlstate(err) + " " + err[:100])

    def op_cheat_round(self, p):
        rc, out, err = self.db.run(
            "SELECT modelmine.authenticate_node('%s') \\g /dev/null\n"
            "SELECT modelmine.heartbeat(1, 100, 1000) \\g /dev/null\n"
            "SELECT count(modelmine.complete_job(job_id, "
            "jsonb_build_object('accuracy', 1, 'loss', 0,"
            " 'epochs', coalesce((config ->> 'epochs')::int, 1))))"
            " FROM modelmine.claim_jobs(2, 30);" % self.cheat_key, role="mm_worker")
        return "completed %s without training" % out if rc == 0 else sqlstate(err) + " " + err[:100]

    def op_mint(self, p):
        rc, out, err = self.db.run("SELECT modelmine.mint('u%d@%s', %d)" % (p["user"], DOMAIN,
                                                                          p["amount"]))
        if rc == 0:
            self.expected_issued += p["amount"]
            return "minted %d to u%d" % (p["amount"], p["user"])
        return sqlstate(err) + " " + err[:100]

    # -- faults ------------------------------------------------------------------------------------
    def later(self, secs, fn, text):
        self.seq += 1
        heapq.heappush(self.timers, (time.time() + secs, self.seq, fn, text))

    def restart_later(self, name, secs):
        """A second kill while it is down queues a second restart: start it only if it is down, or
        two gateways (workers) would race for one port (state file) and one be orphaned."""
        def restart():
            if not self.alive(name):
                self.start(name)
        self.later(secs, restart, "restart %s (unless running)" % name)

    def fault_kill_worker(self, p):
        r = self.kill9(p["worker"])
        self.restart_later(p["worker"], p["secs"])
        return "%s: %s; restart in %.1f s" % (p["worker"], r, p["secs"])

    def fault_kill_trainer(self, p):
        w = self.procs.get(p["worker"])
        if w is None or w.poll() is not None:
            return "%s not running" % p["worker"]
        kids = []
        for e in os.listdir("/proc"):
            if e.isdigit():
                try:
                    st = open("/proc/%s/stat" % e).read()
                except OSError:
                    continue
                if int(st.rsplit(")", 1)[1].split()[1]) == w.pid:
                    kids.append(int(e))
        if not kids:
            return "%s has no trainer process" % p["worker"]
        pid = sorted(kids)[p["k"] % len(kids)]
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        return "%s: killed trainer pid %d (of %d)" % (p["worker"], pid, len(kids))

    def fault_kill_gateway(self, p):
        name = "gw%d" % p["gw"]
        r = self.kill9(name)
        self.restart_later(name, p["secs"])
        return "%s: %s; restart in %.1f s" % (name, r, p["secs"])

    def fault_kill_notifier(self, p):
        r = self.kill9("notifier")
        self.restart_later("notifier", p["secs"])
        return "%s; restart in %.1f s" % (r, p["secs"])

    def fault_pg_restart(self, p):
        t = time.time()
        r = subprocess.run(["bash", "-c", '. "$1/scripts/lib/cluster.sh"; mm_cluster_restart "$2"',
                            "-", self.repo, os.environ["MM_CLUSTER_DIR"]],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.violation("PostgreSQL did not restart: %s" % r.stderr[-500:])
        return "immediate stop + start in %.1f s" % (time.time() - t)

    def fault_net_cut(self, p):
        n = self.proxies[p["worker"]].cut(p["secs"])
        return "%s: reset %d connections, refusing for %.1f s" % (p["worker"], n, p["secs"])

    def fault_drop_backends(self, p):
        rc, out, err = self.db.run("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE usename = '%s' AND datname = current_database()"
                                   % p["role"])
        return "terminated %s backends of %s" % (out, p["role"]) if rc == 0 else err[:100]

    def fault_disk_full(self, p):
        self.receiver.full_until = time.time() + p["secs"]
        return "webhook target answers 507 for %.1f s" % p["secs"]

    def fault_clock_jump(self, p):
        path = os.path.join(self.dir, p["worker"] + ".faketime")
        with open(path, "w") as f:
            f.write(p["offset"] + "\n")

        def back():
            with open(path, "w") as f:
                f.write("+0\n")
        self.later(p["secs"], back, "%s clock back to +0" % p["worker"])
        return "%s: clock %s for %.1f s" % (p["worker"], p["offset"], p["secs"])

    def fault_rogue_lock(self, p):
        if p["what"] == "account":
            target = ("modelmine.accounts WHERE user_id = (SELECT id FROM modelmine.users "
                      "WHERE email = 'u%d@%s')" % (p["user"], DOMAIN))
        elif p["what"] == "job":
            jid = self.pick_job(p["user"], p["k"])
            if jid is None:
                return "no job to lock"
            target = "modelmine.jobs WHERE id = %d" % jid
        else:
            target = ("modelmine.nodes WHERE id = (SELECT id FROM modelmine.nodes ORDER BY id "
                      "OFFSET %d LIMIT 1)" % (p["k"] % 5))
        sql = ("BEGIN; SELECT 1 FROM %s FOR UPDATE; SELECT pg_sleep(%s); COMMIT;"
               % (target, p["secs"]))
        rogue = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.a.db,
                                  "-c", sql], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)

        def reap():  # a rogue session that could not lock is the driver's fault: say so
            try:
                err = rogue.communicate(timeout=30)[1].strip()
            except subprocess.TimeoutExpired:
                rogue.kill()
                err = "still running after 30 s"
            if rogue.returncode != 0:
                self.log("rogue session on %s ended %s: %s" % (target, rogue.returncode,
                                                              err[-200:]))
        self.later(p["secs"] + 1, reap, "rogue session on %s reaped" % target)
        return "holding FOR UPDATE on %s for %.1f s" % (target, p["secs"])

    # -- checks ------------------------------------------------------------------------------------
    def check(self, final=False):
        """Returns False when the database could not be reached (a restart): not a violation, unless
        final."""
        jobs = ",".join(str(j) for j in self.acked_jobs) or "0"
        cancels = ",".join(str(j) for j in self.acked_cancels) or "0"
        transfers = ",".join(str(t) for t in self.acked_transfers) or "0"
        wds = [(w, s) for w, s in self.acked_withdrawals.items()]
        wd_values = ",".join("(%d,'%s')" % x for x in wds) or "(0,'NONE')"
        first, prev = self.digests[0], self.digests[-1]
        sql = """
SELECT 'check_invariants: ' || invariant || ': ' || detail FROM modelmine.check_invariants()
UNION ALL
SELECT 'verify_ledger (digest ' || d.n || '): ' || coalesce(reason, '') || ' at '
       || first_bad_height
  FROM (VALUES ('first', '%(first)s'::jsonb), ('previous', '%(prev)s'::jsonb)) d(n, dg),
       LATERAL modelmine.verify_ledger(dg) v WHERE NOT v.ok
UNION ALL
SELECT format('supply: issued %%s, the driver expects %%s (signup grants and mints it made)',
              -balance, %(issued)s)
  FROM modelmine.account_balances WHERE kind = 'issuance' AND -balance <> %(issued)s
UNION ALL
SELECT format('supply: issued %%s, balances + withdrawn %%s', -i.balance, s.total)
  FROM modelmine.account_balances i,
       (SELECT sum(balance) AS total FROM modelmine.account_balances WHERE kind <> 'issuance') s
 WHERE i.kind = 'issuance' AND -i.balance <> s.total
UNION ALL
SELECT format('settled twice: job %%s: %%s stakes, %%s refunds, %%s fees, %%s rewards to %%s '
              'accounts',
              job_id, st, rf, fe, rw, rwa)
  FROM (SELECT job_id, count(*) FILTER (WHERE reason = 'stake') st,
               count(*) FILTER (WHERE reason = 'refund') rf,
               count(*) FILTER (WHERE reason = 'fee') fe,
               count(*) FILTER (WHERE reason = 'reward') rw,
               count(DISTINCT credit_account) FILTER (WHERE reason = 'reward') rwa
          FROM modelmine.journal WHERE job_id IS NOT NULL GROUP BY job_id) x
 WHERE st <> 1 OR rf > 1 OR fe > 1 OR rw <> rwa OR (rf > 0 AND rw + fe > 0)
UNION ALL
SELECT 'acknowledged submit lost: job ' || x FROM unnest(ARRAY[%(jobs)s]::bigint[]) x
 WHERE x <> 0 AND NOT EXISTS (SELECT FROM modelmine.jobs j WHERE j.id = x)
UNION ALL
SELECT format('acknowledged cancel of job %%s, but it is %%s', j.id, j.status)
  FROM modelmine.jobs j WHERE j.id = ANY (ARRAY[%(cancels)s]::bigint[]) AND j.status <> 'CANCELED'
UNION ALL
SELECT 'acknowledged transfer lost: journal ' || x FROM unnest(ARRAY[%(transfers)s]::bigint[]) x
 WHERE x <> 0
   AND NOT EXISTS (SELECT FROM modelmine.journal j WHERE j.id = x AND j.reason = 'transfer')
UNION ALL
SELECT format('acknowledged withdrawal %%s: want %%s, is %%s', v.id, v.st,
              coalesce(w.status, 'missing'))
  FROM (VALUES %(wds)s) v(id, st) LEFT JOIN modelmine.withdrawals w ON w.id = v.id
 WHERE v.id <> 0 AND w.status IS DISTINCT FROM v.st
UNION ALL
SELECT format('outbox: job %%s has %%s terminal events for user %%s', payload ->> 'job_id',
              count(DISTINCT event_id), user_id)
  FROM modelmine.outbox WHERE event IN ('job_completed', 'job_failed', 'job_canceled')
 GROUP BY payload ->> 'job_id', user_id HAVING count(DISTINCT event_id) > 1
UNION ALL
SELECT format('notification lost: job %%s ended %%s, the outbox has %%s deliveries (want 2)', j.id,
              j.status, count(o.id))
  FROM modelmine.jobs j LEFT JOIN modelmine.outbox o
    ON o.event IN ('job_completed', 'job_failed', 'job_canceled')
   AND (o.payload ->> 'job_id')::bigint = j.id
 WHERE j.status IN ('COMPLETED', 'FAILED', 'CANCELED') GROUP BY j.id, j.status
HAVING count(o.id) <> 2
UNION ALL
SELECT format('notification lost: withdrawal %%s is %%s, the outbox has %%s deliveries (want 2)',
              w.id, w.status, count(o.id))
  FROM modelmine.withdrawals w LEFT JOIN modelmine.outbox o
    ON o.event = 'withdrawal_decided' AND (o.payload ->> 'withdrawal_id')::bigint = w.id
 WHERE w.status <> 'PENDING' GROUP BY w.id, w.status HAVING count(o.id) <> 2
UNION ALL
SELECT format('rejected result paid: job %%s, node %%s, reward %%s', job_id, node_id, reward)
  FROM modelmine.job_replicas WHERE verdict = 'DISSENT' AND reward <> 0
UNION ALL
SELECT format('outbox: event %%s has %%s deliveries to %%s', event_id, count(*), destination)
  FROM modelmine.outbox GROUP BY event_id, channel, destination HAVING count(*) > 1;
""" % {"first": first, "prev": prev, "issued": self.expected_issued, "jobs": jobs,
       "cancels": cancels, "transfers": transfers, "wds": wd_values}
        rc, out, err = self.db.run(sql, timeout=120)
        if rc != 0:
            if final or not unreachable(err):
                self.violation("the check query failed: %s" % err[:500])
            self.skipped_checks += 1
            self.log("check skipped: database unreachable (%s)" % err.splitlines()[-1][:80])
            return False
        self.checks += 1
        if out:
            self.violation("invariant check failed:\n    " + out.replace("\n", "\n    "))
        rc, dg, err = self.db.run("SELECT modelmine.ledger_digest()")
        if rc == 0:
            self.digests.append(dg)
        self.log("check ok (%d acked jobs, %d cancels, %d transfers, %d withdrawals; "
                 "ledger height %s)"
                 % (len(self.acked_jobs), len(self.acked_cancels), len(self.acked_transfers),
                    len(self.acked_withdrawals), json.loads(self.digests[-1]).get("height")))
        return True

    # -- the run -----------------------------------------------------------------------------------
    def run_timers(self, upto):
        while self.timers and self.timers[0][0] <= upto:
            _, _, fn, text = heapq.heappop(self.timers)
            fn()
            self.log("timer: " + text)

    def inject(self):
        """--inject: break the books on purpose, halfway: the self-test of the checks."""
        kinds = self.a.inject.split(",")
        if "lost_submit" in kinds:  # an acknowledged submit that is not in the database
            self.acked_jobs[10 ** 9] = 0
        if "double_settle" in kinds:  # the first job refunded twice, behind the guards
            self.db.must("SET session_replication_role = replica;"
                         "INSERT INTO modelmine.journal (debit_account, credit_account, amount,"
                         " reason, job_id) SELECT 16 + j.id % 16, a.id, j.stake, 'refund', j.id"
                         " FROM (SELECT * FROM modelmine.jobs ORDER BY id LIMIT 1) j"
                         " JOIN modelmine.accounts a ON a.user_id = j.user_id,"
                         " generate_series(1, 2)")
        if "ledger" in kinds:  # a sealed block rewritten
            self.db.must("SET session_replication_role = replica;"
                         "UPDATE modelmine.ledger SET hash = sha256(hash)"
                         " WHERE height = (SELECT max(height) FROM modelmine.ledger)")
        self.log("INJECTED on purpose (--inject %s)" % self.a.inject)

    def run(self):
        sched = make_schedule(self.a.seed, self.a.seconds)
        self.setup_secs = time.time() - self.t0
        self.t0 = time.time()
        next_check = self.t0 + self.a.check_every
        inject_at = self.t0 + self.a.seconds / 2 if self.a.inject else float("inf")
        for i, (t, kind, p) in enumerate(sched):
            while True:
                now = time.time()
                due = self.t0 + t
                self.run_timers(now)
                if now >= inject_at:
                    self.inject()
                    inject_at = float("inf")
                if now >= next_check:
                    self.check()
                    next_check = time.time() + self.a.check_every
                    continue
                if now >= due:
                    break
                time.sleep(min(due - now, 0.05))
            fn = getattr(self, ("op_" if kind in dict(OPS) else "fault_") + kind)
            pj = json.dumps(p, sort_keys=True)
            try:
                res = fn(p)
            except Violation:
                raise
            except Exception as e:  # noqa: BLE001  an action's error is an outcome, logged
                res = "driver error: %r" % e
            self.counts[kind] += 1
            self.log("#%d t=%s %s %s -> %s" % (i, t, kind, pj, res))
        self.drain()

    def drain(self):
        self.log("faults off: restoring every process, the network, the receiver and the clocks")
        self.run_timers(float("inf"))
        for pr in self.proxies.values():
            pr.cut_until = 0
        self.receiver.full_until = 0
        for w in ("wdb0", "wapi0"):
            with open(os.path.join(self.dir, w + ".faketime"), "w") as f:
                f.write("+0\n")
        for name in list(self.procs):
            if name != "smtp-sink" and not self.alive(name):
                self.log("restart %s (found dead)" % name)
                self.start(name)
        for i in range(2):
            if not self.wait_http(self.gw_url[i]):
                self.violation("gateway gw%d does not answer /health after the faults" % i)
        end = time.time() + self.a.drain
        open_q = ("SELECT (SELECT count(*) FROM modelmine.jobs "
                  "WHERE status IN ('PENDING', 'RUNNING'))"
                  " || ' ' || (SELECT count(*) FROM modelmine.outbox WHERE status = 'PENDING')")
        while time.time() < end:
            rc, out, _ = self.db.run(open_q)
            if rc == 0 and out == "0 0":
                break
            time.sleep(0.5)
        rc, out, _ = self.db.run(open_q)
        self.drain_secs = time.time() - end + self.a.drain
        self.log("drained: open jobs and pending deliveries: %s (%.0f s)" % (out, self.drain_secs))
        self.check(final=True)
        for name, p in self.procs.items():
            if p.poll() is not None:
                self.violation("%s exited (%s) after the faults ended and never recovered"
                               % (name, p.returncode))
        stale = self.db.must("SELECT string_agg(name || ' ' || coalesce(round(extract(epoch FROM "
                             "now() - last_seen))::text, 'never'), ', ') FROM modelmine.nodes "
                             "WHERE name <> 'mallory' AND (last_seen IS NULL "
                             "OR last_seen < now() - interval '10 s')")
        if stale:
            self.violation("workers not heartbeating after the drain (s since last): " + stale)
        left = self.db.must("SELECT string_agg(format('job %s %s attempts %s lease %s config %s', "
                            "id, "
                            "status, attempts, lease_expires_at, config), E'\\n    ') FROM "
                            "modelmine.jobs WHERE status IN ('PENDING', 'RUNNING')")
        if left:
            self.violation("jobs still open %d s after the faults ended:\n    %s"
                           % (self.a.drain, left))
        self.check_notifications()

    def outbox_rows(self):
        """Every delivery as (event id, channel, status, destination)."""
        rows = self.db.must("SELECT event_id || ' ' || channel || ' ' || status || ' ' || "
                            "destination"
                            " FROM modelmine.outbox")
        return [line.split(" ", 3) for line in rows.splitlines()]

    def check_notifications(self):
        # Events keep coming after the drain: the notifier announces Mallory's node offline
        # offline_after_seconds after her last cheat round, whenever that falls.  A delivery still
        # PENDING gets the notifier's normal time (a few retries) before it counts as stuck.
        end = time.time() + 15
        rows = self.outbox_rows()
        while time.time() < end and any(r[2] != "SENT" for r in rows):
            time.sleep(0.5)
            rows = self.outbox_rows()
        sent_hooks, sent_mail, stuck = {}, set(), []
        known = set()
        for eid, chan, status, dest in rows:
            known.add(eid)
            if status != "SENT":
                stuck.append(" ".join((eid, chan, status, dest)))
            elif chan == "webhook":
                sent_hooks.setdefault(eid, set()).add(dest.rsplit("/", 1)[1])
            else:
                sent_mail.add(eid)
        if stuck:
            self.violation("deliveries not SENT after the drain:\n    " + "\n    ".join(stuck[:20]))
        with self.receiver.lock:
            got = list(self.receiver.got)
        ok_got = collections.Counter((e, path.lstrip("/")) for e, _, path, st, _ in got
                                     if st == 200)
        lost = [(e, u) for e, us in sent_hooks.items() for u in us if ok_got[(e, u)] == 0]
        if lost:
            self.violation("webhook deliveries SENT but never received: %s" % lost[:20])
        phantom = [e for e, *_ in got if e not in known]
        if phantom:  # an event announced and delivered after the outbox was read above
            known |= {r[0] for r in self.outbox_rows()}
            phantom = [e for e in phantom if e not in known]
        if phantom:
            self.violation("the receiver got event ids the outbox never had: %s" % phantom[:20])
        badhdr = [e for e, _, _, _, h in got if h != e]
        if badhdr:
            self.violation("ModelMine-Event-Id header differs from the body's id: %s" % badhdr[:5])
        mail_ids = collections.Counter()
        for f in os.listdir(self.maildir):
            if f.endswith(".eml"):
                for line in open(os.path.join(self.maildir, f), errors="replace"):
                    if line.lower().startswith("x-modelmine-event-id:"):
                        mail_ids[line.split(":", 1)[1].strip()] += 1
        lost_mail = [e for e in sent_mail if mail_ids[e] == 0]
        if lost_mail:
            self.violation("emails SENT but never received by the sink: %s" % lost_mail[:20])
        dups = sum(c - 1 for c in ok_got.values() if c > 1) + sum(c - 1 for c in mail_ids.values()
                                                                  if c > 1)
        self.log("notifications: %d webhook and %d email deliveries, all received; %d repeats "
                 "(same event id: at least once), %d answered 507"
                 % (len(ok_got), len(sent_mail), dups, sum(1 for g in got if g[3] == 507)))
        self.notes = (len(ok_got), len(sent_mail), dups)

    def summary(self):
        q = self.db.run("SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM "
                        "(SELECT status, count(*) n FROM modelmine.jobs GROUP BY 1) x")[1]
        r = self.db.run("SELECT count(*) FILTER (WHERE verdict = 'DISSENT') || ' rejected, "
                        "paid ' || "
                        "coalesce(sum(reward) FILTER (WHERE verdict = 'DISSENT'), 0) FROM "
                        "modelmine.job_replicas")[1]
        print("chaos: seed %d, %d s of faults: %d operations/faults run (%s); jobs: %s; "
              "replica results %s; deliveries (webhook, email, repeats) %s; "
              "%d checks passed (%d skipped during restarts); setup %.0f s, drain %.0f s; clean"
              % (self.a.seed, self.a.seconds, sum(self.counts.values()),
                 ", ".join("%s %d" % kv for kv in sorted(self.counts.items())), q, r,
                 self.notes, self.checks, self.skipped_checks, self.setup_secs, self.drain_secs),
              flush=True)

    def stop_all(self):
        for name, p in self.procs.items():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except OSError:
                    pass
        end = time.time() + 5
        for name, p in self.procs.items():
            try:
                p.wait(max(0.1, end - time.time()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--seconds", type=int, default=60, help="time with operations and faults")
    ap.add_argument("--drain", type=int, default=60, help="faults off: time for jobs to end")
    ap.add_argument("--check-every", type=float, default=5.0)
    ap.add_argument("--last", type=int, default=40, help="actions printed on a violation")
    ap.add_argument("--db", help="database to create (dropped after a clean run)")
    ap.add_argument("--workdir", help="logs and state")
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--print-schedule", action="store_true", help="print the schedule and exit")
    ap.add_argument("--verbose", action="store_true", help="print each action as it runs")
    ap.add_argument("--inject", help="break the books halfway (lost_submit, double_settle, ledger; "
                    "comma-separated): the self-test of the checks")
    a = ap.parse_args()
    if a.print_schedule:
        for i, (t, kind, p) in enumerate(make_schedule(a.seed, a.seconds)):
            print("#%d t=%s %s %s" % (i, t, kind, json.dumps(p, sort_keys=True)))
        return 0
    if not a.db or not a.workdir:
        ap.error("--db and --workdir are required for a run")
    c = Chaos(a)
    rc = 0
    # a timeout's SIGTERM unwinds through the finally below, which stops every process we started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        c.setup()
        c.run()
        c.summary()
    except Violation:
        rc = 1
    except Exception as e:  # noqa: BLE001
        print("chaos: setup or driver failure (seed %d): %r" % (a.seed, e), flush=True)
        rc = 2
    finally:
        c.stop_all()
    return rc


if __name__ == "__main__":
    sys.exit(main())
