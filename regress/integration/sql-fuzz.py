#!/usr/bin/env python3
"""sql-fuzz.py: call every SQL function granted to modelmine_anon, modelmine_user and modelmine_node
with random and extreme arguments, in random order, as login roles holding those roles (signed in
with a real session token / node key, and not signed in). Driven by sql-fuzz.sh (which makes the
database and the login roles); run it through that script.

Usage: sql-fuzz.py --db DB --server-log FILE [--seed N ...] [--seconds S] [--calls N]

Each seed is one run: --calls calls (default 600) in sessions of 20-80 calls, each session one psql
process as a random role and sign-in state. With --seconds, seeds go on (seed, seed+1, ...) until the
time is up. The same seed replays the same calls (the database's ids aside, which come from the
setup, done once per database).

Pass: no backend crash (the server log gains no "terminated by signal" / "was terminated by"), no
lost connection, no error with SQLSTATE class XX (internal error), P0001 (a RAISE without its own
code) or none, and
modelmine.check_invariants() empty after every seed. Prints per seed the calls made and the
SQLSTATEs seen; the last line is "sql-fuzz: N seeds, N calls, N functions: PASS|FAIL".
"""
import argparse
import collections
import os
import random
import re
import subprocess
import sys
import tempfile
import time

ROLES = {  # login role -> group role (sql-fuzz.sh creates them)
    'mm_fz_anon': 'modelmine_anon',
    'mm_fz_user': 'modelmine_user',
    'mm_fz_node': 'modelmine_node',
}


def psql(db, sql, user='postgres', check=True):
    """Run SQL as USER (superuser by default); stdout lines (-At)."""
    r = subprocess.run(['psql', '-X', '-At', '-q', '-v', 'ON_ERROR_STOP=1', '-U', user, '-d', db],
                       input=sql, capture_output=True, text=True)
    if check and r.returncode != 0:
        sys.exit(f'sql-fuzz: setup SQL failed as {user}: {r.stderr.strip()}\n{sql[:500]}')
    return [line for line in r.stdout.splitlines() if line]


def functions(db):
    """(name, [IN arg types], {group roles that may call it}) for every granted function."""
    rows = psql(db, r"""
SELECT p.proname, p.oid::regprocedure::text,
       coalesce(array_to_string(ARRAY(SELECT format_type(t, NULL)
           FROM unnest(p.proargtypes) t), ','), ''),
       array_to_string(ARRAY(SELECT r FROM unnest(ARRAY['modelmine_anon', 'modelmine_user',
           'modelmine_node']) r WHERE has_function_privilege(r, p.oid, 'EXECUTE')), ',')
  FROM pg_proc p
 WHERE p.pronamespace = 'modelmine'::regnamespace
   AND (has_function_privilege('modelmine_anon', p.oid, 'EXECUTE')
     OR has_function_privilege('modelmine_user', p.oid, 'EXECUTE')
     OR has_function_privilege('modelmine_node', p.oid, 'EXECUTE'))
 ORDER BY 2""".replace('\n', ' ') + ';')
    out = []
    for row in rows:
        name, sig, types, groups = row.split('|')
        out.append((name, sig, [t for t in types.split(',') if t], set(groups.split(','))))
    return out


def setup(db):
    """Users with tokens and balances, nodes with keys, jobs in several states: real targets."""
    psql(db, """
UPDATE modelmine.settings SET value = 4 WHERE name = 'bcrypt_cost';
SELECT modelmine.signup('fz' || i || '@example.com', 'fuzz password ' || i) FROM generate_series(1, 3) i;
SELECT modelmine.mint('fz' || i || '@example.com', 1000000) FROM generate_series(1, 3) i;
""")
    tokens = []
    for i in (1, 2, 3):
        tokens += psql(db, f"SELECT modelmine.login('fz{i}@example.com', 'fuzz password {i}');",
                       user='mm_fz_user')
    keys = []
    for i, tok in enumerate(tokens[:2]):
        keys += psql(db, f"""SELECT modelmine.authenticate('{tok}') \\g /dev/null
SELECT node_key FROM modelmine.register_node('fuzz node {i}',
    '{{"trainers": ["noop", "logreg", "mlp", "linreg"], "slots": 4}}');""", user='mm_fz_user')
    for key in keys:
        psql(db, f"""SELECT modelmine.authenticate_node('{key}') \\g /dev/null
SELECT modelmine.heartbeat(1, 100, 1000);""", user='mm_fz_node')
    for tok in tokens:
        psql(db, f"""SELECT modelmine.authenticate('{tok}') \\g /dev/null
SELECT modelmine.submit_job('fuzz ' || i, '{{"trainer": "noop"}}', 'd', 10 + i)
  FROM generate_series(1, 4) i;""", user='mm_fz_user')
    return tokens, keys


def ids(db):
    """Real ids to aim at: jobs, nodes, users, webhooks, ledger heights."""
    return [int(x) for x in psql(db, """
SELECT id FROM modelmine.jobs UNION SELECT id FROM modelmine.nodes
UNION SELECT id FROM modelmine.users UNION SELECT max(height) FROM modelmine.ledger;""")]


def q(s):
    """A SQL string literal for any text without NUL (E'' escapes keep the statement on one line)."""
    out = []
    for ch in s:
        if ch == '\\':
            out.append('\\\\')
        elif ch == "'":
            out.append("''")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append('\\x%02x' % ord(ch))
        else:
            out.append(ch)
    return "E'" + ''.join(out) + "'"


INT_MAX = {'smallint': 2**15 - 1, 'integer': 2**31 - 1, 'bigint': 2**63 - 1}


class Gen:
    """Random and extreme values of each argument type, as SQL expressions."""

    def __init__(self, rng, tokens, keys, real_ids):
        self.r = rng
        self.tokens, self.keys, self.real_ids = tokens, keys, real_ids

    def text(self):
        r = self.r
        rand = lambda lo, hi, n: ''.join(chr(r.randrange(lo, hi)) for _ in range(n))  # noqa: E731
        pool = [  # built lazily: some are large
            lambda: "''", lambda: "' '", lambda: "'a'", lambda: 'NULL',
            lambda: "repeat('x', %d)" % r.choice([255, 256, 1024, 65536, 1000000]),
            lambda: "repeat(%s, 100000)" % q('é'),
            lambda: q('ü𝄞漢字\u202e\ufeff'), lambda: q(rand(1, 32, 20)),
            lambda: q("'; DROP TABLE modelmine.jobs; --"), lambda: q('%s%n%x'),
            lambda: q('../../etc/passwd'), lambda: q('http://127.0.0.1:1/'),
            lambda: q('fz%d@example.com' % r.randrange(1, 4)), lambda: q('nobody@example.com'),
            lambda: q('A@B.C'), lambda: q('@'), lambda: q('a@' + 'b' * 300 + '.com'),
            lambda: q(r.choice(['pending', 'running', 'completed', 'failed', 'canceled', 'online',
                                'offline', 'maintenance', 'created_at', 'stake', 'priority', 'id',
                                'PENDING', 'COMPLETED', 'title', 'progress'])),
            lambda: q(r.choice(['-1', '0', '9' * 40, 'NaN', '{}', '[' * 100, 'Bearer ',
                                'eyJhbGciOiJub25lIn0.e30.', 'eyJ' + 'A' * 500 + '.eyJ.' + 'x' * 40])),
            lambda: q('{"authorization": "Bearer %s"}' % r.choice(self.tokens + ['x'])),
            lambda: q('{"authorization": "Node %s"}' % r.choice(self.keys)),
            lambda: q(r.choice(self.tokens)), lambda: q(r.choice(self.keys)),
            lambda: q(r.choice(self.tokens)[:-1] + 'x'),
            lambda: q(self.forged()),
            lambda: q(rand(1, 0x2fff, r.randrange(1, 200))),
            lambda: q(rand(32, 127, r.randrange(1, 80))),
        ]
        return r.choice(pool)()

    def forged(self):
        """A real token's header and payload with a signature of an odd length or spelling, or
        with parts cut, doubled or swapped: what MmJwtVerify must turn away without reading past."""
        r = self.r
        head, payload, sig = (r.choice(self.tokens).split('.') + ['', '', ''])[:3]
        sig2 = r.choice([sig[:-1], sig + 'A', sig[:-2] + '==', '', 'A' * 43, '_' * 43, '-' * 44,
                         sig[:-1] + chr(ord(sig[-1]) ^ 1) if sig else 'x', sig * 2, '=' * 43,
                         'A' * r.randrange(1, 9000)])
        return r.choice([f'{head}.{payload}.{sig2}', f'{head}.{payload}', f'{head}..{sig}',
                         f'.{payload}.{sig}', f'{head}.{payload}.{sig}.', f'{payload}.{head}.{sig}',
                         f'{head}.{payload + payload}.{sig}', f'{head}.{payload[:-1]}.{sig}'])

    def int_(self, t):
        r = self.r
        m = INT_MAX[t]
        pool = ['NULL', '0', '1', '-1', '2', '3', str(m), str(-m - 1), str(m - 1), '100', '32',
                '33', '1000', str(r.randrange(-m - 1, m)), str(r.randrange(0, 50))]
        if self.real_ids:
            pool += [str(min(r.choice(self.real_ids), m))] * 4
        v = r.choice(pool)
        return f'({v})::{t}' if v.startswith('-') else f'{v}::{t}'

    def real(self, t):
        v = self.r.choice(["'NaN'", "'Infinity'", "'-Infinity'", "'-0'", '0', '1', '-1', '50',
                           '100', '100.0001', '1e38', '3.4e38', '1e-45', '-1e38', 'NULL',
                           str(self.r.uniform(-200, 200))])
        return f'({v})::{t}'

    def json_value(self, depth=0):
        r = self.r
        k = r.randrange(10 if depth < 4 else 6)
        if k == 0:
            return r.choice(['null', 'true', 'false', '0', '-1', '1e400', '-1e-400', '1.5',
                             '9223372036854775808', '-9223372036854775809', '2147483648',
                             '0.' + '0' * 400 + '1', '1' * 200])
        if k == 1:
            return '"' + r.choice(['', 'noop', 'logreg', 'mlp', 'linreg', 'blobs', 'moons', 'x' * 5000,
                                   '\\u0000', '\\ud800', 'ü𝄞', 'http://127.0.0.1/', '-1', 'NaN']) + '"'
        if k in (2, 3, 4, 5):
            return r.choice(['0', '1', '3', '60', '-5', '0.5', '1e9', 'null', '""', '"1"'])
        if k in (6, 7):
            return '[' + ', '.join(self.json_value(depth + 1) for _ in range(r.randrange(4))) + ']'
        keys = ['trainer', 'runner', 'dataset', 'synthetic', 'classes', 'features', 'n', 'seed',
                'epochs', 'hidden_layers', 'job_id', 'result', 'loss', 'accuracy', 'r2', 'error',
                'trainers', 'slots', 'progress', 'metrics', 'url', 'lr', 'batch_size', 'x', '']
        return '{' + ', '.join('"%s": %s' % (r.choice(keys), self.json_value(depth + 1))
                               for _ in range(r.randrange(5))) + '}'

    def jsonb(self, t):
        r = self.r
        k = r.randrange(12)
        if k == 0:
            return 'NULL'
        if k == 1:
            return r.choice(["'{}'", "'[]'", "'null'", "'\"s\"'", "'0'", "'true'"]) + '::' + t
        if k == 2:  # deep nesting
            d = r.choice([100, 1000, 5000])
            return q('[' * d + ']' * d) + '::' + t
        if k == 3:  # many keys / a huge array
            n = r.choice([1000, 20000])
            return (f"(SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, {n}) i)::{t}"
                    if r.random() < 0.5 else
                    f"(SELECT jsonb_agg(jsonb_build_object('job_id', i, 'result', "
                    f"jsonb_build_object('loss', 0, 'epochs', 1))) FROM generate_series(1, {n}) i)::{t}")
        if k == 4:  # a batch of completions aimed at real jobs
            items = []
            for _ in range(r.randrange(1, 40)):
                jid = r.choice(self.real_ids + [0, -1, 2**63 - 1]) if self.real_ids else 1
                items.append('{"job_id": %d, "result": %s}' % (jid, self.json_value(2)))
                if r.random() < 0.2:
                    items.append('{"job_id": %d, "error": "e"}' % jid)
            return q('[' + ', '.join(items) + ']') + '::' + t
        if k == 5:  # a valid job config, a bit off
            return q('{"trainer": "%s", "dataset": {"synthetic": "blobs", "n": %s}, "epochs": %s}'
                     % (r.choice(['noop', 'logreg', 'mlp', 'x']), r.choice(['10', '0', '-1', '1e12']),
                        r.choice(['1', '0', '100000000', '-3', '1.5']))) + '::' + t
        return q(self.json_value()) + '::' + t

    def array(self, t):
        r = self.r
        base = t[:-2]
        k = r.randrange(6)
        if k == 0:
            return 'NULL::' + t
        if k == 1:
            return "'{}'::" + t
        if k == 2:
            return "'{NULL}'::" + t
        if k == 3:
            return f"array_fill('job_completed'::{base}, ARRAY[{r.choice([1000, 100000])}])"
        events = ['job_completed', 'job_failed', 'job_canceled', 'balance_low', 'withdrawal_decided',
                  'node_offline', 'transfer_received', 'x', '', 'JOB_COMPLETED']
        return 'ARRAY[' + ', '.join(q(r.choice(events)) for _ in range(r.randrange(1, 8))) + ']::' + t

    def timestamptz(self, t):
        return self.r.choice(["'infinity'", "'-infinity'", "'epoch'", 'now()', "now() - '1 hour'",
                              "'4713-01-01 BC'", "'294276-12-31'", 'NULL',
                              "now() + '100 years'"]) + '::' + t

    def job(self):
        return str(self.r.choice(self.real_ids or [1]))

    def plausible(self, name):
        """Arguments a real client would pass, or None: most random tuples stop at the first
        check, these reach the code behind it (and one of them is then made extreme)."""
        r = self.r
        result = r.choice(['{"loss": 0, "epochs": 1}', '{"accuracy": 0.9, "loss": 0.1, "epochs": 3}',
                           '{"r2": 0.99, "loss": 0.01, "epochs": 2}', '{}'])
        table = {
            'heartbeat': lambda: [str(r.uniform(0, 4)), str(r.randrange(0, 4000)), '8000',
                                  r.choice(["'ONLINE'", "'BUSY'", "'MAINTENANCE'", 'NULL'])],
            'claim_jobs': lambda: [str(r.randrange(1, 5)), str(r.choice([5, 30, 300]))],
            'complete_job': lambda: [self.job(), q(result)],
            'complete_jobs': lambda: [q('[' + ', '.join('{"job_id": %s, "result": %s}'
                                                        % (self.job(), result)
                                                        for _ in range(r.randrange(1, 6))) + ']')],
            'fail_job': lambda: [self.job(), q(r.choice(['out of memory', 'bad dataset', '']))],
            'release_job': lambda: [self.job()],
            'report_progress': lambda: [self.job(), str(r.uniform(0, 100)),
                                        r.choice(['NULL', q('{"loss": 0.5}')])],
            'set_capabilities': lambda: [q('{"trainers": ["noop", "mlp"], "slots": %d}'
                                           % r.randrange(1, 9))],
            'submit_job': lambda: [q('fuzz'), q(r.choice(['{"trainer": "noop"}',
                                   '{"trainer": "logreg", "dataset": {"synthetic": "blobs"}}'])),
                                   'NULL', str(r.randrange(1, 50)), str(r.randrange(0, 3))],
            'cancel_job': lambda: [self.job()],
            'job': lambda: [self.job()],
            'job_result': lambda: [self.job()],
            'transfer': lambda: [q('fz%d@example.com' % r.randrange(1, 4)), str(r.randrange(1, 20))],
            'request_withdrawal': lambda: [str(r.randrange(1, 20)), q('bank account 1')],
            'withdraw_node_earnings': lambda: [self.job(), str(r.randrange(1, 5))],
            'set_node_maintenance': lambda: [self.job(), r.choice(['true', 'false'])],
            'add_webhook': lambda: [q('https://example.com/hook/%d' % r.randrange(100))],
            'set_notification_prefs': lambda: ["ARRAY['job_completed']", 'true', '10'],
            'my_jobs': lambda: [r.choice(["'PENDING'", "'COMPLETED'", "'RUNNING'", 'NULL']),
                                q(r.choice(['created', 'stake', 'status'])), 'true', '10', '0'],
            'list_jobs': lambda: [r.choice(["'PENDING'", "'FAILED'", 'NULL']), q('created'), 'false',
                                  '100', '0', 'NULL'],
            'signup': lambda: [q('fz%d@example.com' % r.randrange(4, 1000)), q('long enough pw')],
            'login': lambda: [q('fz%d@example.com' % r.randrange(1, 4)),
                              q('fuzz password %d' % r.randrange(1, 4))],
        }
        return table[name]() if name in table else None

    def args(self, name, types):
        args = self.plausible(name) if self.r.random() < 0.5 else None
        if args is None or len(args) != len(types):
            return [self.value(t) for t in types]
        if args and self.r.random() < 0.5:
            i = self.r.randrange(len(args))
            args[i] = self.value(types[i])
        return [a if a.startswith(('NULL', 'ARRAY')) or '::' in a else f'({a})::{t}'
                for a, t in zip(args, types)]

    def value(self, t):
        if t == 'text':
            return self.text()
        if t in INT_MAX:
            return self.int_(t)
        if t in ('real', 'double precision', 'numeric'):
            return self.real(t)
        if t in ('jsonb', 'json'):
            return self.jsonb(t)
        if t.endswith('[]'):
            return self.array(t)
        if t == 'boolean':
            return self.r.choice(['true', 'false', 'NULL::boolean'])
        if t == 'timestamp with time zone':
            return self.timestamptz(t)
        return f'NULL::{t}'  # a type this generator does not know: NULL still exercises it


SESSION_KINDS = [  # (login role, sign-in: none | token | key); signed in 3 times as often
    ('mm_fz_anon', 'none'), ('mm_fz_user', 'none'), ('mm_fz_node', 'none'),
] + [('mm_fz_user', 'token'), ('mm_fz_node', 'key')] * 3
# Calls that may end the session's sign-in (a failed authenticate unbinds it): a signed-in session
# signs in again after each, so the rest of it still reaches past the identity checks.
UNBINDS = {'authenticate', 'authenticate_local', 'authenticate_node', 'authenticate_node_local',
           'logout', 'deauthenticate', 'request_role'}

ERR_RE = re.compile(r'^psql:[^:]*:(\d+): (ERROR|FATAL|PANIC):  (?:([0-9A-Z]{5}): )?(.*)$')
LOST = ('server closed the connection unexpectedly', 'connection to server was lost',
        'terminating connection because of crash')


def run_session(db, role, calls, tmpdir, timeout_s):
    """Run CALLS (SQL statements) as ROLE in one psql; [(line, sqlstate, msg)], lost-connection text."""
    path = os.path.join(tmpdir, 'session.sql')
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\\set VERBOSITY verbose\nSET statement_timeout = %d;\nSET lock_timeout = 2000;\n'
                % (timeout_s * 1000))
        for c in calls:
            f.write(c + '\n')
    first_line = 4
    r = subprocess.run(['psql', '-X', '-q', '-o', '/dev/null', '-U', role, '-d', db, '-f', path],
                       capture_output=True, text=True, errors='replace')
    errors = []
    for line in r.stderr.splitlines():
        m = ERR_RE.match(line)
        if m:
            errors.append((int(m.group(1)) - first_line, m.group(3) or '', m.group(2) + ': '
                           + m.group(4)[:200]))
    lost = [s for s in LOST if s in r.stderr]
    return errors, (r.stderr[-2000:] if lost or r.returncode > 1 else '')


def one_seed(db, seed, ncalls, funcs, tokens, keys, real_ids, tmpdir, timeout_s, log_file):
    rng = random.Random(seed)
    gen = Gen(rng, tokens, keys, real_ids)
    codes = collections.Counter()
    bad = []
    called = collections.Counter()  # signature -> calls
    failed_calls = collections.Counter()  # signature -> calls that raised an error
    done = 0
    owed = {g: [f for f in funcs if g in f[3]] for g in ROLES.values()}  # each at least once a seed
    while done < ncalls or any(owed.values()):
        if done < ncalls:
            role, sign = rng.choice(SESSION_KINDS)
        else:  # the calls are made: one session each for the roles still owed functions
            role, sign = rng.choice([k for k in SESSION_KINDS if owed[ROLES[k[0]]]])
        group = ROLES[role]
        mine = [f for f in funcs if group in f[3]]
        n = max(min(rng.randrange(20, 81), ncalls - done), len(owed[group]), 1)
        picks = [rng.choice(mine) for _ in range(n)]
        picks[:len(owed[group])] = owed[group][:n]
        del owed[group][:n]
        rng.shuffle(picks)
        calls, sigs = [], []
        if sign == 'token':  # a fresh session each time: a logout() may have ended the old ones
            i = rng.randrange(1, 4)
            sign_in = (f"SELECT modelmine.authenticate(modelmine.login('fz{i}@example.com', "
                       f"'fuzz password {i}'));")
        elif sign == 'key':
            sign_in = 'SELECT modelmine.authenticate_node(%s);' % q(rng.choice(keys))
        else:
            sign_in = None
        if sign_in:
            calls.append(sign_in)
        for name, sig, types, _groups in picks:
            called[sig] += 1
            sigs.append((len(calls), sig))
            calls.append('SELECT * FROM modelmine.%s(%s);' % (name, ', '.join(gen.args(name, types))))
            if sign_in and name in UNBINDS:
                calls.append(sign_in)
        t0 = time.time()
        errors, lost = run_session(db, role, calls, tmpdir, timeout_s)
        done += n
        with open(log_file, 'a', encoding='utf-8') as lf:
            lf.write(f'-- seed {seed}: session as {role} ({sign}), {len(calls)} statements, '
                     f'{time.time() - t0:.1f} s\n')
            for e in errors:
                lf.write(f'--   line {e[0]}: {e[1] or "no SQLSTATE"} {e[2]}\n')
        sig_at = dict(sigs)
        for idx, code, msg in errors:
            codes[code or 'none'] += 1
            if idx in sig_at:
                failed_calls[sig_at[idx]] += 1
            stmt = calls[idx] if 0 <= idx < len(calls) else '?'
            if code in ('', 'P0001') or code.startswith('XX') or msg.startswith(('FATAL', 'PANIC')):
                bad.append(f'{code or "no SQLSTATE"} as {role} ({sign}): {msg}\n      {stmt[:300]}')
        if lost:
            bad.append(f'lost connection as {role} ({sign}) in a session of {len(calls)} calls:\n'
                       + lost)
    return done, codes, bad, called, failed_calls


def self_test(db, tmpdir):
    """The error parsing this run relies on sees an internal error and a line number."""
    errors, _ = run_session(db, 'postgres', [
        'SELECT 1;',
        "DO $$ BEGIN RAISE EXCEPTION 'sql-fuzz self-test' USING ERRCODE = 'XX000'; END $$;"],
        tmpdir, 10)
    if [(e[0], e[1]) for e in errors] != [(1, 'XX000')]:
        sys.exit(f'sql-fuzz: self-test: psql errors not parsed as expected: {errors}')


def server_log_since(path, offset):
    with open(path, 'rb') as f:
        f.seek(offset)
        return f.read().decode('utf-8', 'replace')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--db', required=True)
    ap.add_argument('--server-log', required=True)
    ap.add_argument('--seed', type=int, action='append')
    ap.add_argument('--seconds', type=float, default=0)
    ap.add_argument('--calls', type=int, default=600)
    ap.add_argument('--statement-timeout', type=int, default=10)
    ap.add_argument('--log', default='sql-fuzz.log', help='every session and error (appended)')
    a = ap.parse_args()
    seeds = a.seed or [int(time.time()) % 100000]
    tokens, keys = setup(a.db)
    funcs = functions(a.db)
    real_ids = ids(a.db)
    print(f'sql-fuzz: {len(funcs)} functions granted to anon/user/node; '
          f'{len(tokens)} sessions, {len(keys)} nodes, {len(real_ids)} real ids')
    log_off = os.path.getsize(a.server_log)
    start = time.time()
    total, failed, runs = 0, False, 0
    all_called, all_errs = collections.Counter(), collections.Counter()
    with tempfile.TemporaryDirectory() as tmpdir:
        self_test(a.db, tmpdir)
        i = 0
        while True:
            if a.seconds:
                if time.time() - start >= a.seconds and runs:
                    break
                seed = seeds[0] + i
            else:
                if i >= len(seeds):
                    break
                seed = seeds[i]
            i += 1
            t0 = time.time()
            done, codes, bad, called, errs = one_seed(a.db, seed, a.calls, funcs, tokens, keys, real_ids,
                                                tmpdir, a.statement_timeout, a.log)
            runs += 1
            total += done
            all_called.update(called)
            all_errs.update(errs)
            inv = psql(a.db, 'SELECT invariant || \': \' || detail FROM modelmine.check_invariants();')
            crash = [line for line in server_log_since(a.server_log, log_off).splitlines()
                     if 'terminated by signal' in line or 'was terminated by' in line]
            print(f'seed {seed}: {done} calls in {time.time() - t0:.1f} s; SQLSTATEs: '
                  + ', '.join(f'{c} {n}' for c, n in sorted(codes.items())))
            for b in bad:
                print(f'FAIL  seed {seed}: {b}')
            for line in inv:
                print(f'FAIL  seed {seed}: check_invariants: {line}')
            for line in crash:
                print(f'FAIL  seed {seed}: server log: {line}')
            if bad or inv or crash:
                failed = True
                break  # the state after a failure is not worth fuzzing on; replay this seed
            real_ids = ids(a.db)
    missed = sorted(f[1] for f in funcs if f[1] not in all_called)
    if missed:
        print('not called: ' + ', '.join(missed))
    never = sorted(f'{sig} ({n})' for sig, n in all_called.items() if all_errs[sig] >= n)
    print(f'calls that returned without an error: {total - sum(all_errs.values())} of {total}; '
          'functions called that never did: ' + (', '.join(never) or 'none'))
    print(f'sql-fuzz: {runs} seeds, {total} calls, {len(all_called)} of {len(funcs)} functions, '
          f'{time.time() - start:.0f} s: {"FAIL" if failed else "PASS"}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
