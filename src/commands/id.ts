// ID — RFC 2971 §3.1-3.3: the client's parameters are kept for logs; we answer
// with our name. Field names at most 30 octets, values at most 1024, at most 30 pairs.
import { defineCommand, bad } from './types.js';
import { ArgReader, astringBytes, isAtom } from './args.js';
import { quoted } from '../wire/index.js';

/** RFC 2971 §3.3 limits. */
const MAX_ID_PAIRS = 30;
const MAX_ID_FIELD = 30;
const MAX_ID_VALUE = 1024;

export default defineCommand({
  name: 'ID',
  states: ['notauth', 'auth', 'selected'],
  rfc: 'RFC 2971',
  parse(args) {
    const r = new ArgReader(args);
    const t = r.next('ID parameters');
    r.end();
    if (isAtom(t, 'NIL')) return null;
    if (t.kind !== 'list') throw bad('Expected parameter list or NIL');
    if (t.items.length % 2 !== 0) throw bad('ID parameters must come in pairs');
    if (t.items.length / 2 > MAX_ID_PAIRS) throw bad('Too many ID parameters');
    const out: Record<string, string | null> = {};
    for (let i = 0; i < t.items.length; i += 2) {
      const k = t.items[i];
      const v = t.items[i + 1];
      if (k.kind !== 'string') throw bad('ID field names must be strings');
      const key = k.bytes.toString('utf8');
      if (k.bytes.length > MAX_ID_FIELD) throw bad('ID field name too long');
      if (isAtom(v, 'NIL')) out[key] = null;
      else {
        const b = astringBytes(v, 'ID value');
        if (b.length > MAX_ID_VALUE) throw bad('ID value too long');
        out[key] = b.toString('utf8');
      }
    }
    return out;
  },
  async run(ctx, params) {
    ctx.session.clientId = params;
    ctx.out.untagged(`ID ("name" ${quoted(ctx.serverName)} "vendor" "Quire" "support-url" NIL)`);
  },
});
