// COMPRESS — RFC 4978 §3. The tagged OK leaves uncompressed; from the byte
// after its CRLF both directions are raw DEFLATE (src/server/compress.ts).
// Valid once authenticated (compression before login would let an
// unauthenticated client make the server hold a compressor per connection).
import { defineCommand, bad, no } from './types.js';
import { ArgReader } from './args.js';

export default defineCommand({
  name: 'COMPRESS',
  states: ['auth', 'selected'],
  rfc: 'RFC 4978 §3',
  parse(args) {
    const r = new ArgReader(args);
    const mechanism = r.atom('compression mechanism').toUpperCase();
    r.end();
    // "DEFLATE" is the only mechanism defined (RFC 4978 §3); anything else is an invalid argument: BAD.
    if (mechanism !== 'DEFLATE') throw bad('Unknown compression mechanism', 'CLIENTBUG');
    return mechanism;
  },
  async run(ctx) {
    // RFC 4978 §3: NO [COMPRESSIONACTIVE] when DEFLATE is already active (as Dovecot answers, too).
    if (ctx.conn.compressed) throw no('DEFLATE compression is already active', 'COMPRESSIONACTIVE');
    ctx.conn.startCompress();
    return { text: 'DEFLATE active' };
  },
});
