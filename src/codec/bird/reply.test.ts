/**
 * BIRD's control-socket replies: the shapes BIRD writes (welcome, tables with continuation
 * lines, errors, async messages), any chunking, and garbage, which is an error and never a
 * throw (property tests).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BIRD_MAX_LINE, BirdReplyReader, birdMessage, isBirdError, type BirdEvent, type BirdReply } from './reply.js';

const read = (text: string): BirdEvent[] => new BirdReplyReader().feed(text);

test('the welcome, a table with continuation lines, and an error, each a reply of its own', () => {
  const ev = read(
    '0001 BIRD 2.0.12 ready.\n' +
      '2002-Name       Proto      Table      State  Since         Info\n' +
      '1002-device1    Device     ---        up     09:12:01.331\n' +
      ' fwlb4      Static     master4    up     09:12:01.331\n' +
      '0000 \n' +
      '+log: something happened\n' +
      '9001 syntax error, unexpected CF_SYM_UNDEFINED\n',
  );
  assert.deepEqual(ev.map((e) => e.kind), ['reply', 'reply', 'async', 'reply']);
  const [welcome, table, , err] = ev as { reply: BirdReply }[];
  assert.deepEqual(welcome!.reply, { code: 1, lines: [{ code: 1, text: 'BIRD 2.0.12 ready.' }] });
  assert.equal(table!.reply.code, 0);
  assert.deepEqual(table!.reply.lines.map((l) => l.code), [2002, 1002, 1002, 0]);
  assert.equal(table!.reply.lines[2]!.text, 'fwlb4      Static     master4    up     09:12:01.331');
  assert.equal(isBirdError(table!.reply), false);
  assert.equal(isBirdError(err!.reply), true);
  assert.equal(birdMessage(err!.reply), 'syntax error, unexpected CF_SYM_UNDEFINED');
  assert.deepEqual(ev[2], { kind: 'async', text: 'log: something happened' });
});

test('a line split over chunks, CRLF, and a bare final code', () => {
  const r = new BirdReplyReader();
  assert.deepEqual(r.feed('0003 Reconf'), []);
  assert.equal(r.pending, true);
  assert.deepEqual(r.feed('igured\r\n0000\n'), [
    { kind: 'reply', reply: { code: 3, lines: [{ code: 3, text: 'Reconfigured' }] } },
    { kind: 'reply', reply: { code: 0, lines: [{ code: 0, text: '' }] } },
  ]);
  assert.equal(r.pending, false);
});

test('garbage: a bad line, a continuation with no code, an endless line; the reader goes on after each', () => {
  assert.deepEqual(read('hello\n'), [{ kind: 'error', reason: 'bad_line', line: 'hello' }]);
  assert.deepEqual(read(' orphan\n'), [{ kind: 'error', reason: 'continuation_without_code', line: ' orphan' }]);
  const r = new BirdReplyReader();
  const long = r.feed('x'.repeat(BIRD_MAX_LINE + 1));
  assert.equal(long.length, 1);
  assert.equal(long[0]!.kind === 'error' && long[0]!.reason, 'line_too_long');
  assert.deepEqual(r.feed('0000 OK\n'), [{ kind: 'reply', reply: { code: 0, lines: [{ code: 0, text: 'OK' }] } }]);
});

const textArb = fc.string({ maxLength: 60 }).map((s) => s.replace(/[\r\n]/g, ''));
const replyArb = fc.array(fc.tuple(fc.integer({ min: 0, max: 9999 }), textArb).map(([code, text]) => ({ code, text })), { minLength: 1, maxLength: 8 });

/** A reply as BIRD writes it: `-` on every line but the last, a space instead of a code repeated. */
function write(lines: { code: number; text: string }[]): string {
  return lines
    .map((l, i) => {
      const last = i === lines.length - 1;
      if (!last && i > 0 && lines[i - 1]!.code === l.code) return ` ${l.text}\n`;
      return `${String(l.code).padStart(4, '0')}${last ? ' ' : '-'}${l.text}\n`;
    })
    .join('');
}

test('property: replies written as BIRD writes them, cut anywhere, read back the same', () => {
  fc.assert(
    fc.property(fc.array(replyArb, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 10 }), (replies, cuts) => {
      const text = replies.map(write).join('');
      const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
      const r = new BirdReplyReader();
      const ev: BirdEvent[] = [];
      let from = 0;
      for (const c of [...at, text.length]) {
        ev.push(...r.feed(text.slice(from, c)));
        from = c;
      }
      assert.deepEqual(
        ev,
        replies.map((lines) => ({ kind: 'reply', reply: { code: lines.at(-1)!.code, lines } })),
      );
    }),
  );
});

test('property: any text is read without a throw; every event is a reply, an async message or a named error', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.string({ maxLength: 100 }), fc.constantFrom('0000 \n', '1002-x\n', ' y\n', '+z\n', '\n')), { maxLength: 20 }), (chunks) => {
      const r = new BirdReplyReader();
      for (const c of chunks)
        for (const e of r.feed(c)) {
          if (e.kind === 'reply') assert.ok(e.reply.lines.length > 0 && e.reply.code >= 0 && e.reply.code <= 9999);
          else if (e.kind === 'error') assert.ok(['bad_line', 'continuation_without_code', 'line_too_long', 'reply_too_long'].includes(e.reason));
        }
    }),
  );
});
