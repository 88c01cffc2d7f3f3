// The stored MIME structure of a message body, shared by every backend:
// computed once when a body is stored (src/mime), read back on FETCH.
import { deserializeStructure, parseMessage, serializeStructure, type MimePart } from '../mime/index.js';

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
