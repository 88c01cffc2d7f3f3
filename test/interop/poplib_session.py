"""Python's poplib against Quire's POP3: STLS on the plain port and POP3_SSL
on the implicit-TLS port, each verifying the server certificate. Prints one
JSON object with what it saw; the Node test compares it with the store.

usage: poplib_session.py HOST PLAIN_PORT TLS_PORT CAFILE USER PASSWORD
"""
import hashlib
import json
import poplib
import ssl
import sys

host, plain_port, tls_port, cafile, user, password = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False  # the certificate names localhost and 127.0.0.1; verify the chain only


def session(p):
    out = {"welcome": p.getwelcome().decode("latin1")}
    out["capa"] = sorted(p.capa().keys())
    p.user(user)
    p.pass_(password)
    count, size = p.stat()
    out["stat"] = [count, size]
    _, listing, _ = p.list()
    out["list"] = [l.decode() for l in listing]
    _, uidl, _ = p.uidl()
    out["uidl"] = [l.decode() for l in uidl]
    shas = []
    for i in range(1, count + 1):
        _, lines, octets = p.retr(i)
        # poplib strips CRLF and un-stuffs; put CRLF back to get the message as stored.
        data = b"".join(l + b"\r\n" for l in lines)
        shas.append(hashlib.sha256(data).hexdigest())
    out["retr"] = shas
    _, top, _ = p.top(1, 0)
    out["top0"] = [l.decode("latin1") for l in top]
    return out


result = {}
p = poplib.POP3(host, int(plain_port), timeout=30)
p.stls(context=ctx)
result["stls"] = session(p)
p.quit()

s = poplib.POP3_SSL(host, int(tls_port), context=ctx, timeout=30)
result["ssl"] = session(s)
s.dele(1)
s.quit()
print(json.dumps(result))
