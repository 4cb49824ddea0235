#!/usr/bin/env python3
"""A local stand-in for SendGrid's v3 Mail Send API, for tests (standard library only).

POST /v3/mail/send with `Authorization: Bearer <--key>` and a JSON body. It validates the body the way SendGrid
documents (personalizations[].to, from.email, subject, content with text/plain before text/html, base64 attachments
with file names, string headers that are not reserved) and answers as SendGrid does: 202 with an X-Message-Id
header and no body, 400 with {"errors": [{"message", "field", "help"}]} for a bad body, 401 for a wrong key.
--mode makes it answer like a SendGrid in trouble instead: rate-limit (429 with Retry-After and X-RateLimit-Reset),
server-error (500), unavailable (503 with Retry-After) or forbidden (403, an unverified sender).

Every request is recorded in --dir as request-N.json (method, path, headers without the Authorization value,
whether the key matched, the parsed body, the status answered). With --port 0 it picks a free port and writes it to
--ready-file once listening. It runs until SIGTERM or SIGINT.

    python3 scripts/lib/sendgrid_fake.py --key SG.test --dir /tmp/sg --ready-file /tmp/sg/port
"""

import argparse
import base64
import binascii
import itertools
import json
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$|^[^@\s<>]+@localhost$")
RESERVED_HEADERS = {
    "x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type", "content-transfer-encoding",
    "to", "from", "subject", "reply-to", "cc", "bcc",
}


def write_atomically(path, data):
    temporary = path + ".tmp"
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def error(message, field=None, help_text=None):
    return {"message": message, "field": field, "help": help_text}


def check_address(value, field, errors):
    if not isinstance(value, dict) or not isinstance(value.get("email"), str):
        errors.append(error("The email parameter is required and must be a string.", field))
        return
    if not EMAIL.match(value["email"]):
        errors.append(error("Does not contain a valid address.", field + ".email"))
    if "name" in value and value["name"] is not None and not isinstance(value["name"], str):
        errors.append(error("The name parameter must be a string.", field + ".name"))


def validate(body):
    """The errors SendGrid would report for this body, in its words."""
    errors = []
    if not isinstance(body, dict):
        return [error("Bad Request", None)]
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(error(
            "The personalizations field is required and must have at least one personalization.", "personalizations"))
    else:
        for index, personalization in enumerate(personalizations):
            recipients = personalization.get("to") if isinstance(personalization, dict) else None
            if not isinstance(recipients, list) or not recipients:
                errors.append(error(
                    "The to array is required for all personalization objects, and must have at least one email "
                    "object with a valid email address.", f"personalizations.{index}.to"))
                continue
            seen = set()
            for position, recipient in enumerate(recipients):
                check_address(recipient, f"personalizations.{index}.to.{position}", errors)
                email = recipient.get("email", "").lower() if isinstance(recipient, dict) else ""
                if email in seen:
                    errors.append(error(
                        "Each email address in the personalization block should be unique between to, cc, and bcc.",
                        f"personalizations.{index}.to.{position}.email"))
                seen.add(email)
    if "from" not in body:
        errors.append(error(
            "The from object must be provided for every email send. It is an object that requires the email "
            "parameter, but may also contain a name parameter.", "from"))
    else:
        check_address(body["from"], "from", errors)
    if "reply_to" in body:
        check_address(body["reply_to"], "reply_to", errors)
    if not isinstance(body.get("subject"), str) or not body["subject"]:
        errors.append(error(
            "The subject is required. You can get around this requirement if you use a template with a subject "
            "defined or if every personalization has a subject defined.", "subject"))
    content = body.get("content")
    if not isinstance(content, list) or not content:
        errors.append(error(
            "Unless a valid template_id is provided, the content parameter is required. There must be at least one "
            "defined content block.", "content"))
    else:
        types = []
        for index, block in enumerate(content):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str) or not block["type"]:
                errors.append(error("The content type must be a string at least one character in length.",
                                    f"content.{index}.type"))
                continue
            if not isinstance(block.get("value"), str) or not block["value"]:
                errors.append(error("The content value must be a string at least one character in length.",
                                    f"content.{index}.value"))
            types.append(block["type"])
        if "text/plain" in types and types.index("text/plain") != 0:
            errors.append(error(
                "If present, text/plain and text/x-amp-html must be first, followed by text/html, followed by any "
                "other content.", "content"))
    for index, attachment in enumerate(body.get("attachments") or []):
        if not isinstance(attachment, dict):
            errors.append(error("Each attachment must be an object.", f"attachments.{index}"))
            continue
        try:
            base64.b64decode(attachment.get("content", ""), validate=True)
            if not isinstance(attachment.get("content"), str) or not attachment["content"]:
                raise ValueError
        except (binascii.Error, ValueError, TypeError):
            errors.append(error("The attachment content must be base64 encoded.", f"attachments.{index}.content"))
        if not isinstance(attachment.get("filename"), str) or not attachment["filename"]:
            errors.append(error("The attachment filename parameter is required.", f"attachments.{index}.filename"))
        if attachment.get("disposition") not in (None, "attachment", "inline"):
            errors.append(error("The disposition must be attachment or inline.", f"attachments.{index}.disposition"))
    headers = body.get("headers")
    if headers is not None:
        if not isinstance(headers, dict) or not all(isinstance(value, str) for value in headers.values()):
            errors.append(error("Invalid type. Expected: object of strings.", "headers"))
        else:
            for name in headers:
                if name.lower() in RESERVED_HEADERS:
                    errors.append(error(f"The header {name} is a reserved header and cannot be set.", "headers"))
    return errors


class Fake(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sendgrid-fake/1"
    counter = itertools.count(1)
    lock = threading.Lock()

    def log_message(self, format, *args):  # quiet: the tests read the records instead
        pass

    def answer(self, status, body=None, headers=()):
        data = json.dumps(body).encode("utf-8") if body is not None else b""
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return status

    def record(self, number, key_ok, body, status):
        args = self.server.args
        headers = {name: ("<redacted>" if name.lower() == "authorization" else value) for name, value in self.headers.items()}
        entry = {"method": self.command, "path": self.path, "headers": headers, "key_ok": key_ok, "body": body, "status": status}
        write_atomically(os.path.join(args.dir, f"request-{number}.json"), json.dumps(entry, indent=2).encode("utf-8"))

    def do_POST(self):
        args = self.server.args
        with Fake.lock:
            number = next(Fake.counter)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = {"unparsed": raw.decode("utf-8", "replace")}
        key_ok = self.headers.get("Authorization") == f"Bearer {args.key}"
        status = self.respond(key_ok, raw, body, number)
        self.record(number, key_ok, body, status)

    def respond(self, key_ok, raw, body, number):
        args = self.server.args
        if self.path != "/v3/mail/send":
            return self.answer(404, {"errors": [error("Not Found")]})
        if not key_ok:
            return self.answer(401, {"errors": [error("The provided authorization grant is invalid, expired, or revoked")]})
        if args.mode == "rate-limit":
            reset = str(int(time.time()) + args.retry_after)
            return self.answer(429, {"errors": [error("too many requests")]},
                               [("Retry-After", str(args.retry_after)), ("X-RateLimit-Reset", reset)])
        if args.mode == "server-error":
            return self.answer(500, {"errors": [error("Internal server error")]})
        if args.mode == "unavailable":
            return self.answer(503, None, [("Retry-After", str(args.retry_after))])
        if args.mode == "forbidden":
            return self.answer(403, {"errors": [error(
                "The from address does not match a verified Sender Identity. Mail cannot be sent until this error "
                "is resolved.", "from")]})
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            return self.answer(415, {"errors": [error("Content-Type should be application/json.")]})
        if body is None or (isinstance(body, dict) and "unparsed" in body):
            return self.answer(400, {"errors": [error("Bad Request")]})
        errors = validate(body)
        if errors:
            return self.answer(400, {"errors": errors})
        return self.answer(202, None, [("X-Message-Id", f"fake{number:04d}{os.urandom(6).hex()}")])

    def do_GET(self):
        self.answer(405, {"errors": [error("Method Not Allowed")]})


def main():
    # A parent that runs us from a thread with signals blocked (Foundation's Process on a dispatch thread) passes
    # that mask on; without this, SIGTERM would never stop us.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", required=True, help="the API key requests must carry as a bearer token")
    parser.add_argument("--dir", required=True, help="where requests are recorded")
    parser.add_argument("--ready-file", help="written with the port once the server listens")
    parser.add_argument("--mode", default="ok", choices=["ok", "rate-limit", "server-error", "unavailable", "forbidden"])
    parser.add_argument("--retry-after", type=int, default=7, help="seconds in Retry-After for rate-limit and unavailable")
    args = parser.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    server = ThreadingHTTPServer((args.host, args.port), Fake)
    server.daemon_threads = True
    server.args = args
    port = server.server_address[1]
    if args.ready_file:
        write_atomically(args.ready_file, str(port).encode("ascii"))
    print(f"sendgrid_fake listening on {args.host}:{port} ({args.mode})", flush=True)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
