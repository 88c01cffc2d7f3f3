#!/usr/bin/env python3
"""Drive Quire with Python's stdlib imaplib (a real third-party client).

Run by test/interop/imaplib.test.ts; parameters come from the environment:

  QUIRE_HOST, QUIRE_PORT     the plain (STARTTLS) listener
  QUIRE_USER, QUIRE_PASS     credentials
  QUIRE_CAFILE               the server's self-signed certificate (verified)
  QUIRE_MODE                 "session" (the full session) or "verify"
                             (read everything back after a restart)

The script never decides pass/fail itself: it prints one JSON document with
what it asked for (the "model", built only from its own requests plus the
UIDs the server assigned through UIDPLUS) and what the server answered (the
"snapshots"), and the Node test compares them.
"""

import base64
import datetime
import hashlib
import imaplib
import json
import os
import random
import re
import ssl
import sys

HOST = os.environ.get("QUIRE_HOST", "localhost")
PORT = int(os.environ["QUIRE_PORT"])
USER = os.environ["QUIRE_USER"]
PASS = os.environ["QUIRE_PASS"]
CAFILE = os.environ["QUIRE_CAFILE"]
MODE = os.environ.get("QUIRE_MODE", "session")

CRLF = b"\r\n"
MESSAGE_COUNT = 100

# The folder tree (unicode names; sent as modified UTF-7, RFC 3501 §5.1.3).
TREE = [
    "Projects",
    "Projects/Alpha",
    "Projects/Alpha/Specs",
    "Projects/Beta",
    "Archive/2023",  # Archive is one of the default mailboxes
    "Old Mail",
    "Projekte",
    "Projekte/Übersicht",
    "日本語",
]
DEEP = "Deep/A/B/C"  # created in one CREATE: superiors must appear (RFC 9051 §6.3.4)
TARGETS = ["INBOX"] + TREE

FLAG_POOL = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft", "$Forwarded", "Work", "$Label1"]
ZONES = ["+0000", "-0800", "+0530", "+0200", "-0330", "+1400", "-1200"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


# --- modified UTF-7 (RFC 3501 §5.1.3) ------------------------------------

def mutf7_encode(s):
    out, buf = [], []

    def flush():
        if buf:
            b = "".join(buf).encode("utf-16-be")
            out.append("&" + base64.b64encode(b).decode("ascii").rstrip("=").replace("/", ",") + "-")
            buf.clear()

    for ch in s:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def mutf7_decode(s):
    def repl(m):
        body = m.group(1)
        if body == "":
            return "&"
        b64 = body.replace(",", "/")
        b64 += "=" * (-len(b64) % 4)
        return base64.b64decode(b64).decode("utf-16-be")

    return re.sub(r"&([A-Za-z0-9+,]*)-", repl, s)


def q(name):
    """A mailbox argument: modified UTF-7, always quoted."""
    enc = mutf7_encode(name)
    return '"' + enc.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- the corpus -----------------------------------------------------------

def imap_date(epoch, zone):
    sign = 1 if zone[0] == "+" else -1
    off = sign * (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60)
    t = datetime.datetime.fromtimestamp(epoch, datetime.timezone(datetime.timedelta(seconds=off)))
    return '"%02d-%s-%04d %02d:%02d:%02d %s"' % (t.day, MONTHS[t.month - 1], t.year, t.hour, t.minute, t.second, zone)


def parse_imap_date(s):
    m = re.match(r"\s?(\d{1,2})-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$", s)
    if not m:
        return None
    d, mon, y, hh, mm, ss, sign, zh, zm = m.groups()
    off = (1 if sign == "+" else -1) * (int(zh) * 3600 + int(zm) * 60)
    t = datetime.datetime(int(y), MONTHS.index(mon) + 1, int(d), int(hh), int(mm), int(ss),
                          tzinfo=datetime.timezone(datetime.timedelta(seconds=off)))
    return int(t.timestamp())


def wrap76(data):
    b = base64.b64encode(data)
    return CRLF.join(b[i:i + 76] for i in range(0, len(b), 76))


def text_lines(rng, n, alphabet):
    lines = []
    for _ in range(n):
        lines.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 78))).rstrip())
    return lines


ASCII = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?()[]{}<>*%\"'\\/-_=+@#"
UTF8 = ASCII + "äöüßÄÖÜéèêçñ€ §°µ 日本語のテキスト 😀🚀 Ωπ∑ ← →"
LATIN1 = bytes(range(0x20, 0x7F)) + bytes(range(0xA0, 0x100))


def make_message(i, rng):
    """Message i: CRLF line ends only (imaplib rewrites bare CR/LF), no NUL."""
    kind = i % 6
    hdr = [
        "From: Sender %d <sender%d@example.test>" % (i, i),
        "To: Quire User <user@example.test>",
        "Date: Mon, 1 Jan 2024 10:%02d:00 +0000" % (i % 60),
        "Message-ID: <%d.interop@example.test>" % i,
        "X-Interop-Seq: %d" % i,
        "MIME-Version: 1.0",
    ]
    if kind == 0:
        hdr.append("Subject: plain ascii %d {5}" % i)  # literal-looking text in a header
        hdr.append("Content-Type: text/plain; charset=us-ascii")
        body = CRLF.join(l.encode() for l in text_lines(rng, rng.randint(1, 400), ASCII))
        body += CRLF + b". a line with a leading dot" + CRLF + b"A001 OK not a response" + CRLF
    elif kind == 1:
        hdr.append("Subject: =?UTF-8?B?%s?=" % base64.b64encode(("8bit Grüße %d 😀" % i).encode()).decode())
        hdr.append("Content-Type: text/plain; charset=utf-8")
        hdr.append("Content-Transfer-Encoding: 8bit")
        body = CRLF.join(l.encode("utf-8") for l in text_lines(rng, rng.randint(1, 300), UTF8))
    elif kind == 2:
        hdr.append("Subject: attachment %d" % i)
        size = rng.choice([1, 700, 4096, 30000, 120000, 250000])
        blob = bytes(rng.getrandbits(8) for _ in range(size))
        b = "b%08d" % i
        hdr.append('Content-Type: multipart/mixed; boundary="%s"' % b)
        body = CRLF.join([
            b"This is a multi-part message in MIME format.",
            b"--" + b.encode(),
            b"Content-Type: text/plain; charset=us-ascii",
            b"",
            b"See the attached file.",
            b"--" + b.encode(),
            b"Content-Type: application/octet-stream; name=\"blob%d.bin\"" % i,
            b"Content-Disposition: attachment; filename=\"blob%d.bin\"" % i,
            b"Content-Transfer-Encoding: base64",
            b"",
            wrap76(blob),
            b"--" + b.encode() + b"--",
            b"",
        ])
    elif kind == 3:
        hdr.append("Subject: latin-1 8bit %d" % i)
        hdr.append("Content-Type: text/plain; charset=iso-8859-1")
        hdr.append("Content-Transfer-Encoding: 8bit")
        body = CRLF.join(bytes(rng.choice(LATIN1) for _ in range(rng.randint(0, 90))) for _ in range(rng.randint(1, 200)))
    elif kind == 4:
        hdr.append("Subject: alternative %d with a very long subject line that goes on and on" % i)
        hdr.append("X-Long: " + "\r\n\t".join("folded-part-%d" % k for k in range(40)))
        b = "alt%08d" % i
        hdr.append('Content-Type: multipart/alternative; boundary="%s"' % b)
        body = CRLF.join([
            b"--" + b.encode(),
            b"Content-Type: text/plain; charset=utf-8",
            b"Content-Transfer-Encoding: quoted-printable",
            b"",
            b"Caf=C3=A9 =E2=82=AC " + str(i).encode(),
            b"--" + b.encode(),
            b"Content-Type: text/html; charset=utf-8",
            b"Content-Transfer-Encoding: 8bit",
            b"",
            ("<p>Café € <b>%d</b></p>" % i).encode("utf-8"),
            b"--" + b.encode() + b"--",
        ])
    else:
        # Headers only, or a tiny body without a final line break.
        hdr.append("Subject: tiny %d" % i)
        body = b"" if i % 12 == 5 else b"no final CRLF"
    msg = CRLF.join(h.encode("utf-8") for h in hdr) + CRLF + CRLF + body
    assert b"\0" not in msg
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", msg) is None
    return msg


def sha(b):
    return hashlib.sha256(b).hexdigest()


# --- response parsing -------------------------------------------------------

def parse_fetch(data):
    """imaplib FETCH data -> list of {uid, flags, size, date, body} dicts."""
    msgs = []
    cur = None
    for el in data:
        if el is None:
            continue
        head = el[0] if isinstance(el, tuple) else el
        if re.match(rb"^\d+ \(", head):
            cur = {"meta": b"", "body": None}
            msgs.append(cur)
        if cur is None:
            raise RuntimeError("unexpected FETCH data: %r" % (el,))
        if isinstance(el, tuple):
            cur["meta"] += el[0] + b" <literal> "
            cur["body"] = el[1]
        else:
            cur["meta"] += el
    out = []
    for m in msgs:
        meta = m["meta"].decode("utf-8", "replace")
        r = {}
        u = re.search(r"\bUID (\d+)", meta)
        r["uid"] = int(u.group(1)) if u else None
        f = re.search(r"\bFLAGS \(([^)]*)\)", meta)
        if f:
            r["flags"] = sorted(x for x in f.group(1).split() if x != "\\Recent")
        s = re.search(r"\bRFC822\.SIZE (\d+)", meta)
        if s:
            r["size"] = int(s.group(1))
        d = re.search(r'\bINTERNALDATE "([^"]+)"', meta)
        if d:
            r["date"] = parse_imap_date(d.group(1))
        r["seq"] = int(re.match(r"(\d+)", meta).group(1))
        if m["body"] is not None:
            r["body"] = m["body"]
        out.append(r)
    return out


def expand_set(s):
    uids = []
    for part in s.split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            uids.extend(range(min(a, b), max(a, b) + 1))
        else:
            uids.append(int(part))
    return uids


def parse_copyuid(text):
    m = re.search(r"\[COPYUID (\d+) ([0-9:,]+) ([0-9:,]+)\]", text)
    if not m:
        return None
    return int(m.group(1)), list(zip(expand_set(m.group(2)), expand_set(m.group(3))))


def parse_list(data):
    out = []
    i = 0
    while i < len(data):
        el = data[i]
        i += 1
        if el is None:
            continue
        if isinstance(el, tuple):  # name sent as a literal
            m = re.match(rb"\((?P<a>[^)]*)\) (?P<d>\"[^\"]*\"|NIL) \{\d+\}", el[0])
            name = el[1]
        else:
            m = re.match(rb'\((?P<a>[^)]*)\) (?P<d>"(?:[^"\\]|\\.)*"|NIL) (?P<n>.*)$', el)
            name = m.group("n")
            if name.startswith(b'"'):
                name = re.sub(rb"\\(.)", rb"\1", name[1:-1])
        out.append({
            "name": mutf7_decode(name.decode("utf-8")),
            "raw": name.decode("utf-8"),
            "attrs": sorted(m.group("a").decode().split()),
        })
    return out


def ok(res, what):
    typ, data = res
    if typ != "OK":
        raise RuntimeError("%s failed: %s %r" % (what, typ, data))
    return data


def text_of(data):
    return b" ".join(x if isinstance(x, bytes) else x[0] for x in data if x is not None).decode("utf-8", "replace")


# --- the client ---------------------------------------------------------------

def connect():
    M = imaplib.IMAP4(HOST, PORT)
    caps_before = sorted(M.capabilities)
    ctx = ssl.create_default_context(cafile=CAFILE)  # verifies chain and host name "localhost"
    M.starttls(ssl_context=ctx)
    M.login(USER, PASS)
    return M, caps_before


def snapshot(M, folders, with_body_hash=True):
    """EXAMINE each folder and read every message back."""
    snap, validity = {}, {}
    for f in folders:
        ok(M.select(q(f), readonly=True), "EXAMINE " + f)
        validity[f] = int(M.response("UIDVALIDITY")[1][0])
        typ, data = M.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])")
        if typ != "OK":
            raise RuntimeError("FETCH in %s: %r" % (f, data))
        msgs = {}
        for r in parse_fetch(data):
            body = r.pop("body", None)
            r.pop("seq", None)
            uid = r.pop("uid")
            r["sha"] = sha(body) if body is not None else None
            r["bodyLength"] = len(body) if body is not None else None
            msgs[str(uid)] = r
        snap[f] = msgs
        ok(M.close(), "CLOSE")
    return snap, validity


def statuses(M, folders):
    out = {}
    for f in folders:
        data = ok(M.status(q(f), "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"), "STATUS " + f)
        t = text_of(data)
        out[f] = {k: int(v) for k, v in re.findall(r"(MESSAGES|UIDNEXT|UIDVALIDITY|UNSEEN) (\d+)", t)}
    return out


def entry(size, flags, date, digest):
    return {"flags": sorted(flags), "size": size, "date": date, "sha": digest, "bodyLength": size}


def session():
    result = {"events": {}}
    ev = result["events"]
    rng = random.Random(20240601)
    M, caps_before = connect()
    ev["capsBeforeTls"] = caps_before
    ev["capsAfterLogin"] = sorted(text_of(ok(M.capability(), "CAPABILITY")).upper().split())
    folders = ["INBOX"] + TREE

    created = {}
    for f in TREE:
        typ, data = M.create(q(f))
        created[f] = typ
    typ, data = M.create(q(DEEP))
    created[DEEP] = typ
    typ, data = M.create(q("Projects"))
    created["Projects (again)"] = typ + " " + text_of(data)
    ev["create"] = created
    ev["list"] = parse_list(ok(M.list('""', '"*"'), "LIST"))
    ev["listPercent"] = parse_list(ok(M.list('""', '"Projects/%"'), "LIST %"))

    # APPEND x100
    model = {f: {} for f in folders}
    appended = []
    for i in range(MESSAGE_COUNT):
        msg = make_message(i, rng)
        f = TARGETS[i % len(TARGETS)] if i % 3 else "INBOX"
        flags = sorted(set(rng.sample(FLAG_POOL, rng.randint(0, 4))))
        epoch = rng.randint(978307200, 1735689600)  # 2001 .. 2025
        zone = rng.choice(ZONES)
        # Python's imaplib passes the flag list and the quoted date through as given.
        res = M.append(q(f), "(" + " ".join(flags) + ")", imap_date(epoch, zone), msg)
        data = ok(res, "APPEND %d" % i)
        m = re.search(r"\[APPENDUID (\d+) (\d+)\]", text_of(data))
        if not m:
            raise RuntimeError("APPEND %d: no APPENDUID in %r" % (i, data))
        uid = int(m.group(2))
        model[f][str(uid)] = entry(len(msg), flags, epoch, sha(msg))
        appended.append({"i": i, "folder": f, "uid": uid, "validity": int(m.group(1)), "size": len(msg)})
    ev["appended"] = appended
    result["modelAfterAppend"] = json.loads(json.dumps(model))
    result["snapAfterAppend"], result["validityAfterAppend"] = snapshot(M, folders)

    # SELECT INBOX and change flags in all the STORE forms.
    ok(M.select("INBOX"), "SELECT INBOX")
    ev["permanentFlags"] = text_of(M.response("PERMANENTFLAGS")[1])
    inbox = sorted(int(u) for u in model["INBOX"])
    A, B, C, D, E = inbox[0:5], inbox[5:10], inbox[10:15], inbox[15:18], inbox[18:20]
    js = lambda uids: ",".join(str(u) for u in uids)

    def apply(uids, op, flags):
        for u in uids:
            cur = set(model["INBOX"][str(u)]["flags"])
            if op == "+":
                cur |= set(flags)
            elif op == "-":
                cur -= set(flags)
            else:
                cur = set(flags)
            model["INBOX"][str(u)]["flags"] = sorted(cur)

    # BODY.PEEK[] leaves \Seen alone; BODY[] sets it (RFC 9051 §6.4.5).
    peek = inbox[24:30]
    ok(M.uid("FETCH", js(peek), "(BODY.PEEK[])"), "FETCH BODY.PEEK[]")
    after_peek = {str(r["uid"]): r.get("flags") for r in parse_fetch(ok(M.uid("FETCH", js(peek), "(UID FLAGS)"), "FETCH FLAGS"))}
    ev["peek"] = {"got": after_peek, "want": {str(u): model["INBOX"][str(u)]["flags"] for u in peek}}
    unseen = [u for u in peek if "\\Seen" not in model["INBOX"][str(u)]["flags"]]
    if unseen:
        ok(M.uid("FETCH", str(unseen[0]), "(BODY[])"), "FETCH BODY[]")
        model["INBOX"][str(unseen[0])]["flags"] = sorted(set(model["INBOX"][str(unseen[0])]["flags"]) | {"\\Seen"})
    ev["peek"]["readUid"] = unseen[0] if unseen else None

    stores = {}
    data = ok(M.uid("STORE", js(A), "+FLAGS", "(\\Flagged $Work)"), "STORE +FLAGS")
    apply(A, "+", ["\\Flagged", "$Work"])
    stores["add"] = [{"uid": r["uid"], "flags": r.get("flags"), "want": model["INBOX"][str(r["uid"])]["flags"]} for r in parse_fetch(data)]
    data = ok(M.uid("STORE", js(B), "-FLAGS", "(\\Seen Work)"), "STORE -FLAGS")
    apply(B, "-", ["\\Seen", "Work"])
    stores["remove"] = [{"uid": r["uid"], "flags": r.get("flags"), "want": model["INBOX"][str(r["uid"])]["flags"]} for r in parse_fetch(data)]
    data = ok(M.uid("STORE", js(C), "FLAGS", "(\\Answered Custom1)"), "STORE FLAGS")
    apply(C, "=", ["\\Answered", "Custom1"])
    stores["replace"] = [{"uid": r["uid"], "flags": r.get("flags"), "want": model["INBOX"][str(r["uid"])]["flags"]} for r in parse_fetch(data)]
    data = ok(M.uid("STORE", js(D), "+FLAGS.SILENT", "(\\Seen)"), "STORE +FLAGS.SILENT")
    apply(D, "+", ["\\Seen"])
    stores["silentResponses"] = len(parse_fetch(data))
    data = ok(M.uid("STORE", js(E), "FLAGS", "()"), "STORE FLAGS ()")
    apply(E, "=", [])
    stores["clear"] = [{"uid": r["uid"], "flags": r.get("flags"), "want": model["INBOX"][str(r["uid"])]["flags"]} for r in parse_fetch(data)]
    # Sequence-number STORE: message 1 is the lowest UID.
    data = ok(M.store("1", "+FLAGS", "($Label2)"), "STORE seq")
    apply([inbox[0]], "+", ["$Label2"])
    stores["bySequence"] = [{"seq": r["seq"], "uid": r.get("uid"), "flags": r.get("flags")} for r in parse_fetch(data)]
    ev["store"] = stores

    # UID COPY four messages into Projects/Alpha (flags and date preserved).
    copy_src = inbox[20:24]
    # imaplib's uid() returns only untagged data; COPYUID is in the tagged OK.
    data = ok(M._simple_command("UID", "COPY", js(copy_src), q("Projects/Alpha")), "UID COPY")
    cu = parse_copyuid(text_of(data))
    if cu is None:
        raise RuntimeError("UID COPY: no COPYUID in %r" % (data,))
    ev["copy"] = {"src": copy_src, "map": cu[1], "validity": cu[0]}
    for s, d in cu[1]:
        model["Projects/Alpha"][str(d)] = dict(model["INBOX"][str(s)])

    # EXPUNGE three messages including the highest UID of INBOX.
    doomed = [inbox[-1], inbox[-2], inbox[30]]
    ok(M.uid("STORE", js(doomed), "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
    typ, data = M.expunge()
    ev["expunge"] = {"typ": typ, "seqs": [int(x) for x in data if x is not None], "uids": doomed}
    for u in doomed:
        del model["INBOX"][str(u)]
    ev["maxInboxUidBeforeRestart"] = max(inbox)
    ok(M.close(), "CLOSE")

    # UID MOVE three messages from Projects/Beta to Archive/2023.
    ok(M.select(q("Projects/Beta")), "SELECT Projects/Beta")
    beta = sorted(int(u) for u in model["Projects/Beta"])
    mv = beta[:3]
    typ, data = M.uid("MOVE", js(mv), q("Archive/2023"))
    cu_untagged = M.response("COPYUID")[1]
    expunges = M.response("EXPUNGE")[1]
    text = text_of(data) + " " + " ".join("[COPYUID %s]" % x.decode() for x in cu_untagged if x)
    cu = parse_copyuid(text)
    if typ != "OK" or cu is None:
        raise RuntimeError("UID MOVE: %s %r %r" % (typ, data, cu_untagged))
    ev["move"] = {"src": mv, "map": cu[1], "expungeCount": len([x for x in expunges if x is not None])}
    for s, d in cu[1]:
        model["Archive/2023"][str(d)] = model["Projects/Beta"].pop(str(s))
    ok(M.close(), "CLOSE")

    # UID EXPUNGE (UIDPLUS) removes only the given \Deleted message.
    ok(M.select(q("Old Mail")), "SELECT Old Mail")
    old = sorted(int(u) for u in model["Old Mail"])
    ok(M.uid("STORE", js(old[:2]), "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
    typ, data = M.uid("EXPUNGE", str(old[0]))
    ev["uidExpunge"] = {"typ": typ, "seqs": [int(x) for x in (M.response("EXPUNGE")[1] or []) if x is not None]}
    del model["Old Mail"][str(old[0])]
    model["Old Mail"][str(old[1])]["flags"] = sorted(set(model["Old Mail"][str(old[1])]["flags"]) | {"\\Deleted"})
    ok(M.close(), "CLOSE")  # CLOSE expunges \Deleted messages silently (RFC 9051 §6.4.2)
    del model["Old Mail"][str(old[1])]

    result["model"] = model
    result["snap"], result["validity"] = snapshot(M, folders)
    result["status"] = statuses(M, folders)
    result["folders"] = folders
    typ, data = M.logout()
    ev["logout"] = typ
    return result


def verify():
    result = {}
    M, _ = connect()
    folders = json.loads(os.environ["QUIRE_FOLDERS"])
    result["list"] = parse_list(ok(M.list('""', '"*"'), "LIST"))
    result["statusBefore"] = statuses(M, folders)
    result["snap"], result["validity"] = snapshot(M, folders)
    msg = make_message(1000, random.Random(1000))
    data = ok(M.append("INBOX", "(\\Seen)", None, msg), "APPEND after restart")
    m = re.search(r"\[APPENDUID (\d+) (\d+)\]", text_of(data))
    result["appendAfterRestart"] = {"validity": int(m.group(1)), "uid": int(m.group(2)), "sha": sha(msg)} if m else None
    ok(M.select("INBOX", readonly=True), "EXAMINE INBOX")
    typ, data = M.uid("FETCH", str(int(m.group(2))) if m else "*", "(BODY.PEEK[])")
    got = parse_fetch(data)
    result["appendAfterRestart"]["readBack"] = sha(got[0]["body"]) if got and "body" in got[0] else None
    M.logout()
    return result


def main():
    try:
        out = session() if MODE == "session" else verify()
        out["ok"] = True
    except Exception as e:  # report, the Node side fails the test with this text
        import traceback
        out = {"ok": False, "error": "%s: %s" % (type(e).__name__, e), "trace": traceback.format_exc()}
    sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
