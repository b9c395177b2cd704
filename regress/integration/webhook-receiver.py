#!/usr/bin/env python3
"""webhook-receiver.py PORT SECRETS LOG: a webhook receiver for the notifier's tests.

It does what the docs ask of a receiver: it verifies ModelMine-Signature ("t=<unix>,v1=<hex>", the
HMAC-SHA256 under the webhook's secret of "<t>.<body>") against each secret in the file SECRETS (one
"whsec_<hex>" a line, re-read per request), refuses a signature older than 300 s (a replay), and
drops repeats of an event id.  Each request appends one JSON line to LOG:
  {"path", "status", "event_id", "type", "verified", "duplicate", "header_id_matches"}
Paths: /gone answers 410; /slow takes 20 ms to answer; any other path 200 when verified, else 400.
"""
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, SECRETS, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seen = set()


def verify(header, body):
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t, sig = int(parts["t"]), parts["v1"]
    except (KeyError, ValueError):
        return False, "malformed signature header"
    if abs(time.time() - t) > 300:
        return False, "signature too old: a replay"
    with open(SECRETS) as f:
        for line in f:
            key = bytes.fromhex(line.strip().removeprefix("whsec_"))
            want = hmac.new(key, b"%d." % t + body, hashlib.sha256).hexdigest()
            if hmac.compare_digest(want, sig):
                return True, ""
    return False, "no secret matches"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/slow":
            time.sleep(0.02)
        ok, why = verify(self.headers.get("ModelMine-Signature", ""), body)
        try:
            event = json.loads(body)
        except ValueError:
            event = {}
        eid = event.get("id")
        status = 410 if self.path == "/gone" else (200 if ok else 400)
        dup = ok and eid in seen
        if ok and status == 200:
            seen.add(eid)
        with open(LOG, "a") as f:
            f.write(json.dumps({"path": self.path, "status": status, "event_id": eid,
                                "type": event.get("type"), "verified": ok, "why": why,
                                "duplicate": dup, "data": event.get("data"),
                                "header_id_matches": self.headers.get("ModelMine-Event-Id") == eid})
                    + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print("webhook-receiver listening on 127.0.0.1:%d" % PORT, flush=True)
    server.serve_forever()
