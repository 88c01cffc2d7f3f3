import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger, formatRecord } from '../../src/cli/log.js';

const T = new Date('2025-01-02T03:04:05.678Z');

test('one line, level, message and key=value fields', () => {
  assert.equal(formatRecord(T, 'info', 'login', { user: 'alice', port: 1143, ok: true }), '2025-01-02T03:04:05.678Z INFO login user=alice port=1143 ok=true');
});

test('values with spaces, quotes or line breaks are quoted so they cannot forge records', () => {
  const line = formatRecord(T, 'warn', 'bad\r\ncommand', { cmd: 'A1 LOGIN "x"\r\n2025 ERROR fake=1', err: new Error('boom') });
  assert.equal(line.includes('\n'), false);
  assert.equal(line.includes('\r'), false);
  assert.match(line, /cmd="A1 LOGIN \\"x\\"\\r\\n2025 ERROR fake=1"/);
  assert.match(line, /err="Error: boom"/);
});

test('level filter and child fields', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'warn', write: (l) => lines.push(l), now: () => T });
  log.debug('d');
  log.info('i');
  log.warn('w');
  log.error('e', { a: 1 });
  log.child({ conn: 7 }).error('c', { a: 2 });
  assert.deepEqual(lines, [
    '2025-01-02T03:04:05.678Z WARN w',
    '2025-01-02T03:04:05.678Z ERROR e a=1',
    '2025-01-02T03:04:05.678Z ERROR c conn=7 a=2',
  ]);
  log.level = 'silent';
  log.error('x');
  assert.equal(lines.length, 3);
});
