// Mailbox names as file-system paths, safe by construction (issue 10 item 4):
// a name's hierarchy levels become path components only when none can mean
// something else to the file system ("", ".", "..", a separator or NUL), and
// every path is checked to stay below its target directory before use.
import path from 'node:path';

export class UnsafeNameError extends Error {
  constructor(name: string, why: string) {
    super(`mailbox ${JSON.stringify(name)} cannot be written as a file: ${why}`);
    this.name = 'UnsafeNameError';
  }
}

/** The hierarchy levels of `name` ("/" separator), each usable as one path component; throws UnsafeNameError. */
export function safeLevels(name: string): string[] {
  const levels = name.split('/');
  for (const l of levels) {
    if (l === '' || l === '.' || l === '..') throw new UnsafeNameError(name, `it has an empty, "." or ".." level`);
    if (l.includes('\0') || (path.sep === '\\' && l.includes('\\'))) throw new UnsafeNameError(name, 'it contains NUL or a path separator');
  }
  return levels;
}

/** `root` joined with `components`, refusing any result that is not strictly below `root`. */
export function within(root: string, ...components: string[]): string {
  const base = path.resolve(root);
  const p = path.resolve(base, ...components);
  const rel = path.relative(base, p);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) throw new UnsafeNameError(components.join('/'), `it would leave ${root}`);
  return p;
}
