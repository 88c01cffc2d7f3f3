#!/usr/bin/env python3
"""Python's imaplib with UTF8=ACCEPT (RFC 6855) against Quire, beside a legacy
imaplib session. Run by test/interop/imaplib-utf8.test.ts; QUIRE_PORT, QUIRE_USER
and QUIRE_PASS come from the environment (plain loopback listener). Prints one
JSON document with what the server answered; the Node test judges it."""

import imaplib
import json
import os
import sys
import traceback

PORT = int(os.environ["QUIRE_PORT"])
USER = os.environ["QUIRE_USER"]
PASS = os.environ["QUIRE_PASS"]
BOX = "Entwürfe/日本"
MSG = (
    "From: Jörg Müller <jörg@münchen.example>\r\n"
    "To: 山田 <yamada@例え.jp>\r\n"
    "Subject: Grüße aus München\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Grüße!\r\n"
).encode("utf-8")


def text(data):
    """imaplib answers: lists of bytes and (bytes, bytes) tuples, as one str."""
    out = []
    for d in data:
        if isinstance(d, tuple):
            out.append(b"".join(d).decode("utf-8", "replace"))
        elif isinstance(d, bytes):
            out.append(d.decode("utf-8", "replace"))
    return "\n".join(out)


def main():
    r = {}
    m = imaplib.IMAP4("127.0.0.1", PORT)
    m.login(USER, PASS)
    r["caps"] = text(m.capability()[1]).split()
    typ, data = m.enable("UTF8=ACCEPT")
    r["enable"] = [typ, text(m.untagged_responses.get("ENABLED", [])), m.utf8_enabled]
    r["create"] = m.create('"%s"' % BOX)[0]
    r["list"] = text(m.list('""', '"Entw*"')[1])
    r["append"] = text(m.append('"%s"' % BOX, "(\\Seen)", imaplib.Time2Internaldate(1796272200), MSG)[1])
    r["status"] = text(m.status('"%s"' % BOX, "(MESSAGES)")[1])
    r["select"] = m.select('"%s"' % BOX)[0]
    r["search"] = text(m.search(None, "SUBJECT", '"grüße"')[1])
    try:
        m.search("UTF-8", "ALL")
        r["searchCharset"] = "accepted"
    except imaplib.IMAP4.error as e:
        r["searchCharset"] = "refused: %s" % e
    typ, data = m.fetch("1", "(BODY.PEEK[] ENVELOPE)")
    body = next(d[1] for d in data if isinstance(d, tuple) and b"BODY[]" in d[0])
    r["bodySame"] = body == MSG
    r["fetch"] = text(data)
    m.logout()

    # A legacy session: modified UTF-7 names, downgraded ENVELOPE, CHARSET with a literal.
    l = imaplib.IMAP4("127.0.0.1", PORT)
    l.login(USER, PASS)
    r["legacyList"] = text(l.list('""', '"Entw*"')[1])
    r["legacySelect"] = l.select("Entw&APw-rfe/&ZeVnLA-")[0]
    r["legacyEnvelope"] = text(l.fetch("1", "(ENVELOPE)")[1])
    l.literal = "Grüße".encode("utf-8")
    r["legacySearch"] = text(l.search("UTF-8", "SUBJECT")[1])
    l.logout()
    print(json.dumps({"ok": True, "r": r}))


try:
    main()
except Exception as e:  # reported to the Node test, which fails with it
    print(json.dumps({"ok": False, "error": repr(e), "trace": traceback.format_exc()}))
    sys.exit(1)
