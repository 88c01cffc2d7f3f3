// POP3 download scenario: log in, UIDL, then RETR every message of a
// 1,000-message maildrop (pipelined RETRs in windows of POP3_WINDOW, as
// fetchmail and getmail clients do with PIPELINING), QUIT without DELE so the
// maildrop is the same for every run. The same mailbox is served by Quire
// (POP3 on the IMAP port - 33) and by the bench's private Dovecot (its POP3 is
// PORT - 33 too, see dovecot-peer). Runnable alone against any two servers:
//   npx tsx bench/pop3.ts PORT USER PASS
import net from 'node:net';
import { HOST } from './lib/servers.js';

/** Offset of the POP3 port from the IMAP port, for Quire (bench/lib/servers.ts) and dovecot-peer alike. */
export const POP3_PORT_OFFSET = -33;
/** RETRs in flight at once. */
const POP3_WINDOW = 16;

export interface Pop3Download {
  messages: number;
  bytes: number;
  /** From the connect to QUIT's answer (login included). */
  ms: number;
  /** From the first RETR sent to the last body received: the download itself, without login (Quire hashes
   * passwords with scrypt, the bench's Dovecot compares {PLAIN} ones, so login time is not download time). */
  retrMs: number;
}

/** One full download; resolves with what was received. */
export function pop3Download(port: number, user: string, pass: string, limit = Infinity): Promise<Pop3Download> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect(port, HOST);
    s.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let phase: 'greet' | 'user' | 'pass' | 'stat' | 'retr' | 'quit' = 'greet';
    let count = 0;
    let sent = 0;
    let done = 0;
    let bytes = 0;
    let inBody = false;
    let scanned = 0;
    let retrStart = 0;
    let retrEnd = 0;
    const fail = (e: Error) => {
      s.destroy();
      reject(e);
    };
    const pump = () => {
      while (sent < count && sent - done < POP3_WINDOW) s.write(`RETR ${++sent}\r\n`);
    };
    s.on('error', fail);
    s.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        if (inBody) {
          // The terminator is searched for only in what arrived since the last look (a big body comes in many reads).
          const end = buf.indexOf('\r\n.\r\n', scanned);
          if (end < 0) {
            scanned = Math.max(0, buf.length - 4);
            return;
          }
          scanned = 0;
          bytes += end + 2;
          buf = buf.subarray(end + 5);
          inBody = false;
          done++;
          if (done === count) {
            retrEnd = performance.now();
            phase = 'quit';
            s.write('QUIT\r\n');
          } else pump();
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.subarray(0, nl).toString('latin1');
        buf = buf.subarray(nl + 2);
        if (!line.startsWith('+OK')) return fail(new Error(`${phase}: ${line}`));
        switch (phase) {
          case 'greet':
            phase = 'user';
            s.write(`USER ${user}\r\n`);
            break;
          case 'user':
            phase = 'pass';
            s.write(`PASS ${pass}\r\n`);
            break;
          case 'pass':
            phase = 'stat';
            s.write('STAT\r\n');
            break;
          case 'stat':
            count = Math.min(limit, Number(line.split(' ')[1]));
            phase = 'retr';
            retrStart = performance.now();
            if (count === 0) {
              phase = 'quit';
              s.write('QUIT\r\n');
            } else pump();
            break;
          case 'retr':
            inBody = true;
            break;
          case 'quit':
            s.end();
            resolve({ messages: done, bytes, ms: performance.now() - t0, retrMs: retrEnd - retrStart });
            return;
        }
      }
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [port, user, pass] = process.argv.slice(2);
  const r = await pop3Download(Number(port), user!, pass!);
  console.log(`${r.messages} messages, ${(r.bytes / 1e6).toFixed(1)} MB in ${r.ms.toFixed(0)} ms (RETRs ${r.retrMs.toFixed(0)} ms = ${((r.bytes / 1e6) / (r.retrMs / 1000)).toFixed(1)} MB/s)`);
}
