#!/usr/bin/env python3
"""A throwaway SMTP server for tests (aiosmtpd, from PyPI: pip install aiosmtpd).

It listens on 127.0.0.1, optionally offers and requires STARTTLS (or speaks implicit TLS) with a given certificate,
optionally requires AUTH (PLAIN and LOGIN) with a given user and password, and writes every message it accepts to
--dir as message-N.eml (the bytes as received, dot-unstuffed) and message-N.json: the envelope, whether the session
was encrypted and authenticated, and what Python's email package makes of the message (decoded subject, bodies,
attachments, MIME defects). Each attachment's decoded bytes go to message-N.attachments/NAME.

With --port 0 it picks a free port; once listening it writes the port to --ready-file (atomically), so a test can
start it without a port race. It runs until SIGTERM or SIGINT.

    python3 scripts/lib/smtp_sink.py --dir /tmp/mail --ready-file /tmp/mail/port \\
        --cert cert.pem --key key.pem --user herald --password secret
"""

import argparse
import asyncio
import email
import email.policy
import hashlib
import json
import os
import signal
import ssl
import sys

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:  # pragma: no cover - reported to the test that started us
    sys.stderr.write("smtp_sink.py needs aiosmtpd: pip install aiosmtpd\n")
    sys.exit(3)


def write_atomically(path, data):
    temporary = path + ".tmp"
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def safe_name(name, index):
    name = os.path.basename(name or "") or f"attachment-{index}"
    return "".join(c if c.isalnum() or c in "-_. " else "_" for c in name)


def describe(raw, directory, stem):
    """What a mail client would see: Python's parser with the modern (RFC 6532) policy."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    summary = {
        "subject": str(message["subject"]) if message["subject"] is not None else None,
        "from": str(message["from"]) if message["from"] is not None else None,
        "to": [str(address) for address in message["to"].addresses] if message["to"] is not None else [],
        "reply_to": str(message["reply-to"]) if message["reply-to"] is not None else None,
        "message_id": message["message-id"],
        "date": message["date"],
        "content_type": message.get_content_type(),
        "headers": [[name, str(value)] for name, value in message.items()],
        "defects": [type(defect).__name__ for part in message.walk() for defect in part.defects],
        "text": None,
        "html": None,
        "attachments": [],
    }
    plain = message.get_body(preferencelist=("plain",))
    if plain is not None:
        summary["text"] = plain.get_content()
    html = message.get_body(preferencelist=("html",))
    if html is not None:
        summary["html"] = html.get_content()
    for index, part in enumerate(message.iter_attachments()):
        content = part.get_content()
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        folder = os.path.join(directory, stem + ".attachments")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, safe_name(part.get_filename(), index))
        write_atomically(path, data)
        summary["attachments"].append({
            "filename": part.get_filename(),
            "content_type": part.get_content_type(),
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "path": path,
        })
    return summary


class Sink:
    def __init__(self, args):
        self.args = args
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.args.reject_recipient and address.startswith(self.args.reject_recipient):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if self.args.defer_recipient and address.startswith(self.args.defer_recipient):
            return f"450 4.2.1 <{address}>: Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if self.args.fail_data:
            return self.args.fail_data
        self.count += 1
        stem = f"message-{self.count}"
        raw = envelope.original_content or envelope.content
        directory = self.args.dir
        write_atomically(os.path.join(directory, stem + ".eml"), raw)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "tls": session.ssl is not None or self.args.implicit_tls,
            "authenticated_as": self.authenticated_user(session),
            "size": len(raw),
        }
        try:
            record["parsed"] = describe(raw, directory, stem)
        except Exception as error:  # the test reports it; the client still gets its 250
            record["parse_error"] = f"{type(error).__name__}: {error}"
        write_atomically(os.path.join(directory, stem + ".json"), json.dumps(record, indent=2).encode("utf-8"))
        return f"250 2.0.0 Ok: queued as SINK{self.count:04d}"

    @staticmethod
    def authenticated_user(session):
        data = getattr(session, "auth_data", None)
        if isinstance(data, LoginPassword):
            return data.login.decode("utf-8", "replace")
        return None


def make_authenticator(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login == user.encode("utf-8") and auth_data.password == password.encode("utf-8")
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticate


def main():
    # A parent that runs us from a thread with signals blocked (Foundation's Process on a dispatch thread) passes
    # that mask on; without this, SIGTERM would never stop us.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", required=True, help="where received messages are written")
    parser.add_argument("--ready-file", help="written with the port once the server listens")
    parser.add_argument("--cert", help="PEM certificate: offer STARTTLS (and require it before MAIL)")
    parser.add_argument("--key", help="PEM private key for --cert")
    parser.add_argument("--implicit-tls", action="store_true", help="speak TLS from the first byte (smtps)")
    parser.add_argument("--user", help="require AUTH with this user name")
    parser.add_argument("--password", help="the password for --user")
    parser.add_argument("--no-auth-plain", action="store_true", help="offer AUTH LOGIN only")
    parser.add_argument("--auth-without-tls", action="store_true", help="offer AUTH on an unencrypted connection too")
    parser.add_argument("--reject-recipient", help="answer 550 to recipients starting with this prefix")
    parser.add_argument("--defer-recipient", help="answer 450 to recipients starting with this prefix")
    parser.add_argument("--fail-data", help="answer this reply (e.g. '451 4.3.0 Try later') to the message data")
    args = parser.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    handler = Sink(args)

    def factory():
        return SMTP(
            handler,
            hostname="sink.localhost",
            ident="herald-smtp-sink",
            tls_context=None if args.implicit_tls else context,
            require_starttls=bool(context) and not args.implicit_tls,
            auth_required=bool(args.user),
            auth_require_tls=not (args.implicit_tls or args.auth_without_tls),
            authenticator=make_authenticator(args.user, args.password or "") if args.user else None,
            auth_exclude_mechanism=["PLAIN"] if args.no_auth_plain else None,
            timeout=60,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(factory, host=args.host, port=args.port, ssl=context if args.implicit_tls else None)
    )
    port = server.sockets[0].getsockname()[1]
    if args.ready_file:
        write_atomically(args.ready_file, str(port).encode("ascii"))
    print(f"smtp_sink listening on {args.host}:{port}", flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    server.close()
    loop.run_until_complete(server.wait_closed())
    loop.close()


if __name__ == "__main__":
    main()
