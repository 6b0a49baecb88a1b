/**
 * The one formatter for a caller's value inside an error message: readable, one line, bounded,
 * and it never throws (a message about a bad value must not fail on that value).
 */
import { describe, expect, it } from 'vitest';
import { formatValue } from '../../src/internal/format-value.js';

describe('formatValue', () => {
  it('shows primitives as their literals', () => {
    expect(formatValue('abc')).toBe('"abc"');
    expect(formatValue('')).toBe('""');
    expect(formatValue(1.5)).toBe('1.5');
    expect(formatValue(-0)).toBe('-0');
    expect(formatValue(Number.NaN)).toBe('NaN');
    expect(formatValue(12n)).toBe('12n');
    expect(formatValue(Symbol('tag'))).toBe('Symbol(tag)');
    expect(formatValue(undefined)).toBe('undefined');
    expect(formatValue(null)).toBe('null');
    expect(formatValue(false)).toBe('false');
  });

  it('shows a plain object as an object with its contents, not [object Object]', () => {
    expect(formatValue({ concurrency: 2 })).toBe('an object { concurrency: 2 }');
    expect(formatValue(Object.assign(Object.create(null), { a: 1 }))).toMatch(/^an object .*a: 1/);
  });

  it('shows arrays, functions, classes and instances as node:util does, on one line', () => {
    expect(formatValue([])).toBe('[]');
    expect(formatValue([1, 'x'])).toBe("[ 1, 'x' ]");
    expect(formatValue(function work() {})).toBe('[Function: work]');
    expect(formatValue(async () => {})).toBe('[AsyncFunction (anonymous)]');
    expect(formatValue(class Job {})).toBe('[class Job]');
    expect(formatValue(new Map([['k', 1]]))).toBe("Map(1) { 'k' => 1 }");
    expect(formatValue({ a: { b: { c: { d: { e: 1 } } } } })).not.toContain('\n');
  });

  it('survives circular objects, throwing hooks and revoked proxies', () => {
    const circular: Record<string, unknown> = { name: 'loop' };
    circular.self = circular;
    expect(formatValue(circular)).toMatch(/Circular/);
    const hostile = {
      toString() {
        throw new Error('no');
      },
      [Symbol.for('nodejs.util.inspect.custom')]() {
        throw new Error('no');
      },
    };
    expect(formatValue(hostile)).toBe('a value of type object');
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(formatValue(proxy)).toBe('a value of type object');
    const trap = new Proxy(() => {}, {
      get() {
        throw new Error('trap');
      },
      getPrototypeOf() {
        throw new Error('trap');
      },
    });
    expect(() => formatValue(trap)).not.toThrow();
  });

  it('cuts long strings (saying how long they were) and big objects', () => {
    const long = 'x'.repeat(10_000);
    expect(formatValue(long)).toBe(`"${'x'.repeat(60)}"… (length 10000)`);
    const big = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`key${i}`, i]));
    const shown = formatValue(big);
    expect(shown.length).toBeLessThanOrEqual(121);
    expect(shown.endsWith('…')).toBe(true);
    expect(formatValue(Array.from({ length: 1000 }, (_, i) => i)).length).toBeLessThanOrEqual(121);
  });
});
