#!/usr/bin/env python3
"""Record Dovecot's ENVELOPE / BODY / BODYSTRUCTURE answers for the MIME corpus.

Usage: python3 test/mime/record-dovecot.py [FIXTURE.eml ...]

Needs the local Dovecot peer (/work/shared/peers/dovecot/dovecot-peer start).
Each fixture is delivered alone into the INBOX of USER (default testuser87;
the script EXPUNGES everything in that INBOX first) and the
raw untagged FETCH answers are written to test/fixtures/mime/dovecot/NAME.txt,
one item per line: `ITEM<TAB>value` where value is the item's data as sent on
the wire with literals kept inline ({n}CRLF...) and CR/LF escaped as \\r \\n.
The tests compare against these files; they never need Dovecot running.
"""
import os, socket, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, '..', 'fixtures', 'mime')
OUT = os.path.join(FIX, 'dovecot')
PEER = '/work/shared/peers/dovecot/dovecot-peer'
USER = os.environ.get('DOVECOT_USER', 'testuser87')
PORT = int(os.environ.get('DOVECOT_PEER_PORT', '10143'))
ITEMS = ['ENVELOPE', 'BODY', 'BODYSTRUCTURE']


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

    def cmd(self, text):
        self.n += 1
        tag = b'r%d' % self.n
        self.s.sendall(tag + b' ' + text.encode() + b'\r\n')
        res = []
        while True:
            r = self.response()
            if r.startswith(tag + b' '):
                if not r.startswith(tag + b' OK'):
                    raise RuntimeError(r)
                return res
            res.append(r)


def main():
    os.makedirs(OUT, exist_ok=True)
    names = sys.argv[1:] or sorted(f for f in os.listdir(FIX) if f.endswith('.eml'))
    c = Conn()
    c.cmd('LOGIN %s pass' % USER)
    for name in names:
        name = os.path.basename(name)
        c.cmd('SELECT INBOX')
        c.cmd('STORE 1:* +FLAGS.SILENT (\\Deleted)') if exists(c) else None
        c.cmd('EXPUNGE')
        with open(os.path.join(FIX, name), 'rb') as f:
            subprocess.run([PEER, 'deliver', USER, '/dev/stdin'], stdin=f, check=True)
        c.cmd('NOOP')
        lines = []
        for item in ITEMS:
            r = c.cmd('FETCH 1 (%s)' % item)
            data = b''.join(x for x in r if x.startswith(b'* 1 FETCH'))
            prefix = b'* 1 FETCH (' + item.encode() + b' '
            assert data.startswith(prefix) and data.endswith(b')\r\n'), data
            value = data[len(prefix):-3]
            lines.append(item.encode() + b'\t' + value.replace(b'\r', b'\\r').replace(b'\n', b'\\n'))
        with open(os.path.join(OUT, name[:-4] + '.txt'), 'wb') as f:
            f.write(b'\n'.join(lines) + b'\n')
        print('recorded', name)
    c.cmd('LOGOUT')


def exists(c):
    r = c.cmd('SELECT INBOX')
    return not any(x.startswith(b'* 0 EXISTS') for x in r)


if __name__ == '__main__':
    main()
