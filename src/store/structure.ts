// The stored MIME structure of a message body, shared by every backend:
// computed once when a body is stored (src/mime), read back on FETCH.
import {
  addressSearchText, deserializeStructure, parseMessage, serializeStructure, Header, decodeEncodedWords, sentDayOf, searchHeaderText, searchBodyText, type MimePart,
  sortKeysOf, type SortKeys,
} from '../mime/index.js';
import type { HeaderIndex } from './types.js';

/** Parse a message and serialise its part tree for storage. */
export function structureOf(data: Buffer): string {
  return serializeStructure(parseMessage(data));
}

/** Read a stored tree back; null when absent or from an older format (the reader then parses). */
export function loadStructure(json: string | null | undefined): MimePart | null {
  if (!json) return null;
  try {
    return deserializeStructure(json);
  } catch {
    return null;
  }
}

/** Longest indexed value per header field (characters); longer values are cut, searches then read the message. */
export const MAX_INDEXED_FIELD = 2000;

/**
 * Searchable header values: all fields of the name, RFC 2047-decoded (address
 * fields in their parsed canonical form, addressSearchText: the evaluator
 * compares the same text, so the index rules out exactly what it would),
 * lower-cased, joined by newlines.
 */
function indexed(header: Header, name: string): string | null {
  const values = header.getAll(name);
  if (values.length === 0) return '';
  const address = name !== 'Subject';
  const text = values.map((v) => (address ? addressSearchText(v) : decodeEncodedWords(v))).join('\n').toLowerCase();
  return text.length > MAX_INDEXED_FIELD ? null : text;
}

/**
 * Largest top-level header kept in the database beside the structure, so
 * message lists (HEADER.FIELDS, HEADER) are answered without opening files;
 * longer headers are read from the body file.
 */
export const MAX_STORED_HEADER = 64 * 1024;

/**
 * Longest text (UTF-16 code units, header and body each) put into the
 * full-text index; a longer one is left out of it and SEARCH BODY/TEXT reads
 * that message instead. Bounds the index's work per message.
 */
export const MAX_INDEXED_TEXT = 4 * 1024 * 1024;

/**
 * What SEARCH BODY and TEXT compare against (src/mime searchtext), lower-cased
 * exactly as the evaluator lower-cases it, for the full-text index; null when
 * too long to index.
 */
export interface SearchText {
  header: string;
  body: string;
}

/** The full-text index's text of a stored message. */
export function searchTextOfMessage(data: Buffer): SearchText | null {
  const root = parseMessage(data);
  const header = searchHeaderText(data, root).toLowerCase();
  const body = searchBodyText(data, root).toLowerCase();
  return header.length > MAX_INDEXED_TEXT || body.length > MAX_INDEXED_TEXT ? null : { header, body };
}

/** What the store keeps about a message besides its bytes: the part tree, the top-level header bytes and the SEARCH header index. */
export function describeMessage(data: Buffer): { structure: string; header: Buffer | null; index: HeaderIndex; sort: SortKeys; bareLf: number } {
  const root = parseMessage(data);
  const header = Header.parse(data, root.headerStart, root.headerEnd);
  return {
    // POP3 sends CRLF line ends and counts them (RFC 1939 §11), schema V_POP3_SIZE.
    bareLf: countBareLf(data),
    structure: serializeStructure(root),
    header: root.headerEnd <= MAX_STORED_HEADER ? data.subarray(0, root.headerEnd) : null,
    index: {
      from: indexed(header, 'From'),
      to: indexed(header, 'To'),
      cc: indexed(header, 'Cc'),
      bcc: indexed(header, 'Bcc'),
      subject: indexed(header, 'Subject'),
      sentDay: sentDayOf(header.get('Date')),
    },
    // SORT/THREAD keys (RFC 5256, RFC 5957), schema V11.
    sort: sortKeysOf(header),
  };
}

/** LF bytes not preceded by CR: what turning `data` into CRLF form adds (RFC 1939 §11 sizes; one indexOf per line). */
export function countBareLf(data: Buffer): number {
  let bare = 0;
  for (let i = data.indexOf(10); i >= 0; i = data.indexOf(10, i + 1)) if (i === 0 || data[i - 1] !== 13) bare++;
  return bare;
}
