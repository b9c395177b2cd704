"""http-faults.py: an HTTP/1.1 proxy that spoils chosen answers of the gateway (for
worker-api-faults.sh).

    python3 http-faults.py LISTEN_PORT UPSTREAM_URL RULES_FILE

Every request is passed to UPSTREAM_URL (the real modelmine-api) and its answer passed back,
keep-alive and all, unless a rule of RULES_FILE (read again at every request) matches it. A rule is
one line, "METHOD PATH_REGEX FAULT COUNT": the first COUNT requests that match get FAULT, the rest
go through:

    html200    the request reaches the gateway; the answer is replaced by 200 text/html (a captive
               portal or a proxy's page where JSON should be)
    html502    the request does not reach the gateway; the answer is 502 text/html with
               Retry-After: 2
    truncate   the request reaches the gateway; its status, headers and Content-Length go back, then
               half the body, and the connection is closed
    drop       the request reaches the gateway; the connection is closed without an answer

Each spoiled answer is logged on stdout: "injected FAULT on METHOD PATH". Not a test by itself (not
executable, so scripts/test.sh does not run it).
"""
import http.client
import http.server
import re
import socketserver
import sys
import threading
import urllib.parse

LISTEN_PORT = int(sys.argv[1])
UPSTREAM = urllib.parse.urlsplit(sys.argv[2])
RULES_FILE = sys.argv[3]
used = {}  # rule line -> how many requests it has spoiled
lock = threading.Lock()

HTML = (b"<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head>"
        b"<body><h1>Welcome to nginx!</h1></body></html>\n")


def fault_for(method, path):
    """The fault the rules give this request (counting it), or None."""
    try:
        with open(RULES_FILE, encoding="utf-8") as f:
            lines = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    except OSError:
        return None
    with lock:
        for line in lines:
            m, regex, fault, count = line.split()
            if m == method and re.search(regex, path) and used.get(line, 0) < int(count):
                used[line] = used.get(line, 0) + 1
                return fault
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    """One client connection; each request forwarded on a fresh upstream connection."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def forward(self, body):
        """The upstream's answer: (status, reason, headers, body)."""
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host")}
        conn.request(self.command, self.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        out = (r.status, r.reason, [(k, v) for k, v in r.getheaders()
                                    if k.lower() not in ("connection", "transfer-encoding", "content-length")],
               data)
        conn.close()
        return out

    def answer(self, status, reason, headers, data, length=None):
        """Writes an answer; length: the Content-Length to claim (the body's own by default)."""
        self.send_response_only(status, reason)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self.end_headers()
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the worker hung up (a claim it called off)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urllib.parse.urlsplit(self.path).path
        fault = fault_for(self.command, path)
        if fault:
            print(f"injected {fault} on {self.command} {path}", flush=True)
        if fault == "html502":
            self.answer(502, "Bad Gateway", [("Content-Type", "text/html"), ("Retry-After", "2")],
                        HTML.replace(b"Welcome to nginx!", b"502 Bad Gateway"))
            return
        status, reason, headers, data = self.forward(body)
        if fault == "html200":
            self.answer(200, "OK", [("Content-Type", "text/html")], HTML)
        elif fault == "truncate":
            self.answer(status, reason, headers, data[: len(data) // 2], length=len(data))
            self.close_connection = True
        elif fault == "drop":
            self.close_connection = True
        else:
            self.answer(status, reason, headers, data)

    do_GET = do_POST


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    print(f"proxy on 127.0.0.1:{LISTEN_PORT} -> {sys.argv[2]}", flush=True)
    Server(("127.0.0.1", LISTEN_PORT), Handler).serve_forever()
