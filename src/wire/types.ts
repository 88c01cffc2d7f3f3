// Shared types of the IMAP byte codec (RFC 9051 §9 formal syntax).
// The codec is sans-I/O: it is fed bytes and hands back events; it never
// touches a socket, the store or the session.

/**
 * One element of a command after the tag. The decoder is grammar-light: it
 * splits a command into atoms, strings and parenthesised lists and leaves the
 * meaning to each command's `parse`.
 *
 * Atoms are lenient "atom-ish" runs: any CHAR except SP, CTL, "(", ")", "{"
 * and DQUOTE, so sequence sets (`1:*`), LIST patterns (`%`, `*`), flags
 * (`\Seen`), `$` (RFC 5182) and astrings with "]" (RFC 9051 ASTRING-CHAR)
 * all arrive as atoms.
 *
 * A fetch attribute with a section (`BODY[...]`, `BODY.PEEK[...]`,
 * `BINARY[...]`, `BINARY.PEEK[...]`, `BINARY.SIZE[...]`, case-insensitive)
 * arrives as one atom whose `value` is the part before "[" (e.g. "BODY.PEEK"),
 * `section` the tokens between the brackets (e.g. [atom "HEADER.FIELDS",
 * list [...]] or [] for `BODY[]`; a section text like `1.2.MIME` is one
 * atom), and `partial` the text between "<" and ">" if present (e.g. "0.100").
 */
export type Token = AtomToken | StringToken | ListToken;

export interface AtomToken {
  kind: 'atom';
  value: string;
  section?: Token[];
  partial?: string;
}

export interface StringToken {
  kind: 'string';
  /** Raw bytes of the quoted string (unescaped) or of the literal. */
  bytes: Buffer;
  /** True for `{n}` / `{n+}` / `{n-}` / `~{n}` literals, false for quoted strings. */
  literal: boolean;
  /** True for a literal8 (`~{n}`, RFC 3516 / RFC 9051). */
  literal8: boolean;
}

export interface ListToken {
  kind: 'list';
  items: Token[];
}

/** Limits the decoder enforces; every one has a reason (see src/wire/limits.ts). */
export interface DecoderLimits {
  /** Longest command line fragment (bytes before CRLF, literals excluded). */
  maxLineLength: number;
  /** Largest literal accepted (APPENDLIMIT). */
  maxLiteralSize: number;
  /** Largest literal that may be sent non-synchronizing (RFC 7888 LITERAL- : 4096). */
  maxNonSyncLiteral: number;
  /** Largest total size of one command, literals included. */
  maxCommandSize: number;
  /** Deepest nesting of parenthesised lists. */
  maxDepth: number;
  /** Most tokens (atoms, strings, lists) in one command. */
  maxTokens: number;
  /**
   * Largest refused non-synchronizing literal that is read and discarded
   * (RFC 7888 §4); a larger one is a fatal error. Defaults to
   * MAX_DISCARD_LITERAL (src/wire/limits.ts) when absent.
   */
  maxDiscardLiteral?: number;
}

export type DecoderEvent =
  /** A complete command. `name` is tokens[0] upper-cased; for UID commands it is "UID FETCH" etc. and `args` starts after the sub-command. */
  | { type: 'command'; tag: string; name: string; args: Token[] }
  /**
   * The client is waiting for a command continuation request before sending
   * a synchronizing literal of `size` bytes: the caller writes "+ ...\r\n".
   * Emitted only after the size was checked against the limits.
   */
  | { type: 'continue'; size: number }
  /** A raw line requested with expectLine() (AUTHENTICATE responses, IDLE's DONE); CRLF stripped. */
  | { type: 'line'; line: Buffer }
  /**
   * The command could not be decoded. The decoder has already skipped the
   * rest of it (or will, see `fatal`). `tag` is the tag when one could be
   * read. `code` is an RFC 5530 response code. When `fatal` is true the
   * connection cannot be resynchronised (e.g. an oversized non-synchronizing
   * literal): answer `* BYE` and close.
   */
  | { type: 'error'; tag?: string; code: 'PARSE' | 'TOOBIG' | 'LIMIT' | 'CLIENTBUG'; message: string; fatal: boolean };
