// Public API of the MIME module: pure message parsing, no I/O, imports
// nothing else from src/. See each file for the RFC sections it follows.

export type { Address, Disposition, Envelope, MimeLimits, MimeParam, MimePart } from './types.js';
export { encodeBinaryParts } from './binary.js';
export { parseMessage, countLines, walkParts, DEFAULT_LIMITS, MAX_MIME_DEPTH, MAX_MIME_PARTS, MAX_HEADER_BYTES } from './parse.js';
export {
  Header,
  type HeaderField,
  parseHeaderFields,
  findHeaderEnd,
  fieldValue,
  unfold,
  decodeBytes,
  decodeCharset,
  decodeEncodedWords,
  LEGACY_HEADER_CHARSET,
} from './header.js';
export { parseStructured, parseLanguageList, getParam } from './params.js';
export { addressSearchText, buildEnvelope, envelopeOf, formatEnvelope, parseAddressList, EMPTY_ENVELOPE, MISSING_DOMAIN, MISSING_MAILBOX } from './envelope.js';
export { formatBodyStructure, formatParams } from './bodystructure.js';
export { downgradeEnvelope, downgradeAddresses, downgradeText, encodeWords, isAscii } from './downgrade.js';
export { imapString, imapNString, MAX_QUOTED_LENGTH } from './imapstring.js';
export {
  type SectionSpec,
  type SectionText,
  type ByteRange,
  type BinaryResult,
  resolvePart,
  sectionRange,
  sectionBytes,
  headerFieldsBytes,
  binaryContent,
  binarySize,
  parseSectionText,
} from './section.js';
export { decodeBase64, decodeQuotedPrintable, decodeTransferEncoding, knownEncoding } from './transfer.js';
export { buildPreview, previewPart, htmlToText, normalizePreview, PREVIEW_MAX_CHARS, PREVIEW_MAX_INPUT } from './preview.js';
export { serializeStructure, deserializeStructure, STRUCTURE_VERSION } from './serialize.js';
export { sentDayOf } from './date.js';
export { searchHeaderText, searchBodyText, SEARCH_BODY_LIMIT } from './searchtext.js';
export { casemap, baseSubject, sentDateOf, addressKey, displayKey, messageIds, sortKeysOf, MAX_SORT_KEY, MAX_THREAD_REFS, type SortKeys, type BaseSubject } from './sortkeys.js';
