#!/usr/bin/env python3
"""Runs every search of test/fixtures/mime/searches.json with Python imaplib.

Usage: search-corpus.py HOST PORT USER PASS MAILBOX

Prints JSON: a list with, for each search in order, {"search": the command
as sent (strings as they were encoded), "result": sorted sequence numbers, or
"NO ..."/"BAD ..." with the response code only}. Used to record Dovecot's
answers (test/mime/record-dovecot.py) and, by search-corpus.test.ts, to query
Quire as an independent client.
"""
import imaplib, json, os, re, sys

HERE = os.path.dirname(os.path.abspath(__file__))
SEARCHES = os.path.join(HERE, '..', 'fixtures', 'mime', 'searches.json')


def main():
    host, port, user, password, mailbox = sys.argv[1:6]
    M = imaplib.IMAP4(host, int(port))
    M.login(user, password)
    typ, _ = M.select(mailbox, readonly=True)
    assert typ == 'OK'
    out = []
    for s in json.load(open(SEARCHES, encoding='utf-8')):
        charset = s['charset']
        try:
            enc = (lambda x: x.encode(charset)) if charset and charset.lower() in ('utf-8', 'iso-8859-1') else (lambda x: x.encode('utf-8'))
        except LookupError:
            enc = lambda x: x.encode('utf-8')
        args = []
        literal = None
        for c in s['criteria']:
            if isinstance(c, dict):
                b = enc(c['s'])
                if any(x >= 0x80 for x in b):
                    # imaplib sends one literal per command, as the last argument
                    assert literal is None
                    literal = b
                    args.append(None)
                else:
                    args.append(b'"' + b.replace(b'\\', b'\\\\').replace(b'"', b'\\"') + b'"')
            else:
                args.append(c.encode())
        if literal is not None:
            i = args.index(None)
            # put the non-ASCII string last: imaplib appends the literal at the end
            assert i == len(args) - 1, s
            args = args[:-1]
            M.literal = literal
        cmd = [a.decode('latin-1') for a in args]
        label = ' '.join((['CHARSET', charset] if charset else []) + [json.dumps(c['s'], ensure_ascii=False) if isinstance(c, dict) else c for c in s['criteria']])
        try:
            typ, data = M.search(charset, *cmd)
            if typ == 'OK':
                result = sorted(int(x) for x in b' '.join(d for d in data if d).split())
            else:
                result = typ + ' ' + code(data)
        except imaplib.IMAP4.error as e:
            msg = str(e)
            m = re.search(r'error: (\w+)', msg)
            result = (m.group(1) if m else 'ERROR') + ' ' + code([msg.encode()])
        out.append({'search': label, 'result': result})
    M.logout()
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write('\n')


def code(data):
    text = b' '.join(d for d in data if isinstance(d, bytes)).decode('latin-1')
    m = re.search(r'\[([A-Z-]+)', text)
    return '[%s]' % m.group(1) if m else ''


if __name__ == '__main__':
    main()
