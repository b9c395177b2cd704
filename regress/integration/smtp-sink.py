#!/usr/bin/env python3
"""smtp-sink.py PORT DIR [--tls CERT KEY [--implicit]] [--auth USER:PASSWORD]: a local SMTP server
(aiosmtpd) for the notifier's tests.

--tls: STARTTLS with that certificate, required before MAIL; with --implicit, TLS from the first byte
instead (smtps). --auth: AUTH (PLAIN or LOGIN, over TLS only) with these credentials is required;
failed attempts are counted in DIR/auth-failures.

Every accepted message is written to DIR/mail-N.eml, with its envelope in DIR/mail-N.env
("from\\nto,to,..."), after the message itself (so a test that sees the .env file can read both).
A recipient whose mailbox starts with "bounce" is refused with 550, as a server refuses an unknown
mailbox. Runs until killed.
"""
import argparse
import asyncio
import os
import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, outdir):
        self.outdir = outdir
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("bounce"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with open(os.path.join(self.outdir, "sessions.log"), "a") as f:
            f.write("tls=%s\n" % (session.ssl is not None))
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.outdir, "mail-%d" % self.n)
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + ".env.tmp", "w") as f:
            f.write(envelope.mail_from + "\n" + ",".join(envelope.rcpt_tos) + "\n")
        os.rename(base + ".env.tmp", base + ".env")
        return "250 Message accepted"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("outdir")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--implicit", action="store_true")
    p.add_argument("--auth")
    a = p.parse_args()
    kw = {}
    if a.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*a.tls)
        if a.implicit:
            kw["ssl_context"] = ctx
        else:
            kw.update(tls_context=ctx, require_starttls=True)
    if a.auth:
        user, password = a.auth.split(":", 1)

        def check(server, session, envelope, mechanism, data):
            ok = (isinstance(data, LoginPassword) and data.login.decode() == user
                  and data.password.decode() == password)
            if not ok:
                with open(os.path.join(a.outdir, "auth-failures"), "a") as f:
                    f.write(mechanism + "\n")
            return AuthResult(success=ok)

        # with implicit TLS, aiosmtpd does not see the socket's TLS: AUTH is still encrypted
        kw.update(authenticator=check, auth_required=True, auth_require_tls=not a.implicit)
    controller = Controller(Sink(a.outdir), hostname="127.0.0.1", port=a.port, **kw)
    controller.start()
    print("smtp-sink listening on 127.0.0.1:%d" % a.port, flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
