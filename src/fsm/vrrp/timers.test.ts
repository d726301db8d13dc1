import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { masterDownInterval, skewFor, skewTime, skewTimeV2, toCentiseconds } from './timers.js';

test('Skew_Time (RFC 5798 6.1) = ((256 - Priority) * Master_Adver_Interval) / 256', () => {
  assert.equal(skewTime(100, 1000), 609); // 609.375 ms
  assert.equal(skewTime(254, 1000), 7); // 7.8 ms
  assert.equal(skewTime(255, 1000), 3);
  assert.equal(skewTime(1, 1000), 996);
  assert.equal(skewTime(128, 100), 50); // 100 ms interval, exact
  assert.equal(skewTime(200, 100), 21); // 21.875 ms
});

test('Master_Down_Interval (RFC 5798 6.1) = 3 * Master_Adver_Interval + Skew_Time', () => {
  assert.equal(masterDownInterval(100, 1000), 3609);
  assert.equal(masterDownInterval(200, 100), 321);
  assert.equal(masterDownInterval(254, 40950), 3 * 40950 + Math.floor((2 * 40950) / 256));
});

test('v2 Skew_Time (RFC 3768 6.1) = (256 - Priority) / 256 seconds, whatever the interval', () => {
  assert.equal(skewTimeV2(100), 609);
  assert.equal(masterDownInterval(100, 3000, 2), 9000 + 609);
  assert.equal(skewFor(2, 100, 3000), 609);
  assert.equal(skewFor(3, 100, 3000), 1828);
});

test('a higher priority never waits longer, and Master_Down_Interval is at least 3 intervals (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 254 }), fc.integer({ min: 1, max: 4095 }), fc.constantFrom(2 as const, 3 as const), (p, cs, v) => {
      const iv = cs * 10;
      assert.ok(skewFor(v, p + 1, iv) <= skewFor(v, p, iv));
      assert.ok(masterDownInterval(p + 1, iv, v) <= masterDownInterval(p, iv, v));
      assert.ok(masterDownInterval(p, iv, v) >= 3 * iv);
      // Within a millisecond of the exact value; never coarser than the RFC's centiseconds.
      const exact = ((256 - p) * iv) / 256;
      if (v === 3) assert.ok(exact - skewTime(p, iv) < 1);
    }),
  );
});

test('toCentiseconds: what a v3 advert carries', () => {
  assert.equal(toCentiseconds(1000), 100);
  assert.equal(toCentiseconds(100), 10);
});
