// Public API of the IMAP byte codec. Everything outside src/wire imports from here.

export type {
  Token,
  AtomToken,
  StringToken,
  ListToken,
  DecoderLimits,
  DecoderEvent,
} from './types.js';
export { CommandDecoder, type DecoderErrorEvent } from './decoder.js';
export * from './limits.js';
export {
  EncodeError,
  ResponseBuilder,
  response,
  quoted,
  astring,
  string,
  nstring,
  literal,
  flagList,
  mailboxName,
  responseText,
  isAtom,
  type Piece,
} from './encoder.js';
export { encodeMutf7, decodeMutf7, MUtf7Error } from './mutf7.js';
export {
  STAR,
  MAX_NZ_NUMBER,
  parseSequenceSet,
  normalizeRanges,
  resolveSequenceSet,
  iterateSequenceSet,
  containsNormalized,
  sequenceContains,
  formatRanges,
  formatSequenceSet,
  rangesOf,
  type SeqRange,
  type SequenceSet,
} from './sequence.js';
export {
  parseDate,
  parseDateTime,
  formatDateTime,
  formatDate,
  dateToUtcMs,
  type ImapDate,
  type ImapDateTime,
} from './datetime.js';
