#!/usr/bin/env python3
"""Record Dovecot's FETCH answers (and SEARCH results) for the MIME corpus.

Usage: python3 test/mime/record-dovecot.py [FIXTURE.eml ...]

Needs the local Dovecot peer (../shared/peers/dovecot/dovecot-peer start, relative to the repository root).
Each fixture is APPENDed alone (the same bytes a test APPENDs to Quire) into
the INBOX of USER (default testuser87; the script EXPUNGES everything in that
INBOX first) and the raw untagged FETCH answers are written to
test/fixtures/mime/dovecot/NAME.txt, one item per line: `ITEM<TAB>value`.

- ENVELOPE, BODY, BODYSTRUCTURE: value is the item's data as sent on the wire.
- every other item (BODY.PEEK[...], BINARY.PEEK[...], BINARY.SIZE[...],
  RFC822.SIZE): ITEM is the item as requested and value is the whole data
  item as answered (name included, e.g. `BODY[1.MIME] {20}\\r\\n...`); a
  command that failed is recorded as its tagged status (`NO [UNKNOWN-CTE] ...`).

Literals are kept inline ({n}CRLF...) and `\\`, CR and LF are escaped as
`\\\\`, `\\r`, `\\n`. The items asked per message are: the fixed sections in
FIXED, then for every part number found in Dovecot's BODYSTRUCTURE: [P] and
[P.MIME]; for message/rfc822 parts also [P.HEADER], [P.TEXT] and
[P.HEADER.FIELDS (From Subject)]; for leaves BINARY.SIZE[P] and BINARY.PEEK[P].

With no fixture arguments the whole corpus is also loaded into the mailbox
"corpus" and every search of test/fixtures/mime/searches.json is run there by
test/commands/search-corpus.py (Python imaplib), results written to
test/fixtures/mime/dovecot-search.json.

The tests compare against these files; they never need Dovecot running.
"""
import json, os, socket, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, '..', 'fixtures', 'mime')
OUT = os.path.join(FIX, 'dovecot')
SEARCH_SCRIPT = os.path.join(HERE, '..', 'commands', 'search-corpus.py')
USER = os.environ.get('DOVECOT_USER', 'testuser87')
PORT = int(os.environ.get('DOVECOT_PEER_PORT', '10143'))
STRUCTURE = ['ENVELOPE', 'BODY', 'BODYSTRUCTURE']
FIXED = [
    'RFC822.SIZE',
    'BODY.PEEK[]',
    'BODY.PEEK[HEADER]',
    'BODY.PEEK[TEXT]',
    'BODY.PEEK[HEADER.FIELDS (From Subject)]',
    'BODY.PEEK[HEADER.FIELDS.NOT (Received)]',
    'BODY.PEEK[]<0.20>',
    'BODY.PEEK[TEXT]<5.10>',
    'BODY.PEEK[1]',
    'BODY.PEEK[1]<0.20>',
    'BODY.PEEK[1.MIME]',
    'BODY.PEEK[2]',
    'BODY.PEEK[2.1]',
    'BODY.PEEK[2.HEADER]',
    'BODY.PEEK[2.TEXT]',
]


def escape(b):
    return b.replace(b'\\', b'\\\\').replace(b'\r', b'\\r').replace(b'\n', b'\\n')


class Conn:
    def __init__(self):
        self.s = socket.create_connection(('127.0.0.1', PORT))
        self.buf = b''
        self.n = 0
        self.readline()

    def readline(self):
        while b'\r\n' not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line + b'\r\n'

    def read(self, n):
        while len(self.buf) < n:
            self.buf += self.s.recv(65536)
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def response(self):
        """One server response with its literals inline."""
        out = b''
        while True:
            line = self.readline()
            out += line
            if line.endswith(b'}\r\n') and b'{' in line:
                n = int(line[line.rindex(b'{') + 1:-3])
                out += self.read(n)
                continue
            return out

    def cmd(self, text, ok=True):
        """Returns (untagged responses, tagged status without the tag)."""
        self.n += 1
        tag = b'r%d' % self.n
        data = text if isinstance(text, bytes) else text.encode()
        self.s.sendall(tag + b' ' + data + b'\r\n')
        res = []
        while True:
            r = self.response()
            if r.startswith(tag + b' '):
                status = r[len(tag) + 1:-2]
                if ok and not status.startswith(b'OK'):
                    raise RuntimeError(r)
                return res, status
            res.append(r)


def parse_sexp(b, i=0):
    """Parses one IMAP value at b[i:]; returns (value, next index). Strings are bytes, lists are lists."""
    while b[i:i + 1] == b' ':
        i += 1
    c = b[i:i + 1]
    if c == b'(':
        out = []
        i += 1
        while True:
            while b[i:i + 1] == b' ':
                i += 1
            if b[i:i + 1] == b')':
                return out, i + 1
            v, i = parse_sexp(b, i)
            out.append(v)
    if c == b'"':
        j = i + 1
        s = b''
        while b[j:j + 1] != b'"':
            if b[j:j + 1] == b'\\':
                j += 1
            s += b[j:j + 1]
            j += 1
        return s, j + 1
    if c == b'{':
        j = b.index(b'}', i)
        n = int(b[i + 1:j])
        start = j + 3
        return b[start:start + n], start + n
    j = i
    while j < len(b) and b[j:j + 1] not in (b' ', b')', b'('):
        j += 1
    atom = b[i:j]
    return (None if atom == b'NIL' else atom), j


def part_paths(bs, prefix=''):
    """(path, is_message, is_leaf) for every numbered part of a body structure."""
    out = []
    if isinstance(bs[0], list):  # multipart: leading lists are the parts
        n = 0
        for child in bs:
            if not isinstance(child, list):
                break
            n += 1
            out += numbered(child, (prefix + '.' if prefix else '') + str(n))
        return out
    # a single part body: it is part 1 of its message
    return numbered(bs, (prefix + '.' if prefix else '') + '1')


def numbered(bs, path):
    if isinstance(bs[0], list):
        return [(path, False, False)] + part_paths(bs, path)
    t = (bs[0] or b'').lower(), (bs[1] or b'').lower()
    if t == (b'message', b'rfc822') and len(bs) > 8 and isinstance(bs[8], list):
        return [(path, True, False)] + part_paths(bs[8], path)
    return [(path, False, True)]


def items_for(bodystructure):
    items = list(FIXED)
    bs, _ = parse_sexp(bodystructure)
    for path, is_msg, is_leaf in part_paths(bs):
        items += ['BODY.PEEK[%s]' % path, 'BODY.PEEK[%s.MIME]' % path]
        if is_msg:
            items += ['BODY.PEEK[%s.HEADER]' % path, 'BODY.PEEK[%s.TEXT]' % path, 'BODY.PEEK[%s.HEADER.FIELDS (From Subject)]' % path]
        if is_leaf:
            items += ['BINARY.SIZE[%s]' % path, 'BINARY.PEEK[%s]' % path]
    seen = set()
    return [i for i in items if not (i in seen or seen.add(i))]


def append(c, mailbox, data):
    c.cmd(b'APPEND ' + mailbox.encode() + b' {%d+}\r\n' % len(data) + data)


def record(c, name):
    c.cmd('SELECT INBOX')
    c.cmd('STORE 1:* +FLAGS.SILENT (\\Deleted)', ok=False)
    c.cmd('EXPUNGE')
    with open(os.path.join(FIX, name), 'rb') as f:
        append(c, 'INBOX', f.read())
    c.cmd('NOOP')
    lines = []
    values = {}
    for item in STRUCTURE:
        r, _ = c.cmd('FETCH 1 (%s)' % item)
        data = b''.join(x for x in r if x.startswith(b'* 1 FETCH'))
        prefix = b'* 1 FETCH (' + item.encode() + b' '
        assert data.startswith(prefix) and data.endswith(b')\r\n'), data
        values[item] = data[len(prefix):-3]
        lines.append(item.encode() + b'\t' + escape(values[item]))
    for item in items_for(values['BODYSTRUCTURE']):
        r, status = c.cmd('FETCH 1 (%s)' % item, ok=False)
        if not status.startswith(b'OK'):
            value = status
        else:
            data = b''.join(x for x in r if x.startswith(b'* 1 FETCH'))
            assert data.startswith(b'* 1 FETCH (') and data.endswith(b')\r\n'), data
            value = data[len(b'* 1 FETCH ('):-3]
        lines.append(item.encode() + b'\t' + escape(value))
    with open(os.path.join(OUT, name[:-4] + '.txt'), 'wb') as f:
        f.write(b'\n'.join(lines) + b'\n')
    print('recorded', name)


def record_searches(c, names):
    c.cmd('DELETE corpus', ok=False)
    c.cmd('CREATE corpus')
    for name in names:
        with open(os.path.join(FIX, name), 'rb') as f:
            append(c, 'corpus', f.read())
    out = subprocess.run([sys.executable, SEARCH_SCRIPT, '127.0.0.1', str(PORT), USER, 'pass', 'corpus'], check=True, capture_output=True).stdout
    with open(os.path.join(FIX, 'dovecot-search.json'), 'wb') as f:
        f.write(out)
    print('recorded searches')


def main():
    os.makedirs(OUT, exist_ok=True)
    args = [os.path.basename(n) for n in sys.argv[1:]]
    names = sorted(f for f in os.listdir(FIX) if f.endswith('.eml'))
    c = Conn()
    c.cmd('LOGIN %s pass' % USER)
    for name in args or names:
        record(c, name)
    if not args:
        record_searches(c, names)
    c.cmd('LOGOUT')


if __name__ == '__main__':
    main()
