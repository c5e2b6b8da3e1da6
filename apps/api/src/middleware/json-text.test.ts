import { describe, expect, it } from 'vitest';
import { checkStorableText, escapeUnstorable, JsonSyntaxError, parseJsonText } from './json-text';

describe('parseJsonText', () => {
  it('reads what JSON.parse reads, exactly', () => {
    for (const text of [
      '{"a":[1,-2.5,3e2,0,-0.0,true,false,null],"b":{"c":"\\u00e9\\n\\"\\\\\\/\\ud83d\\ude00"}}',
      ' [ ] ',
      '"x"',
      '1.7976931348623157e308',
      '{"":{}}',
    ]) {
      expect(parseJsonText(text)).toEqual({ value: JSON.parse(text), issues: [] });
    }
  });

  it('refuses what is not JSON', () => {
    for (const text of ['', '{', '{"a" 1}', '[1,]', '01', '"a\tb"', 'nul', '{"a":1}x', "{'a':1}", '"\\x"']) {
      expect(() => parseJsonText(text), text).toThrow(JsonSyntaxError);
    }
  });

  it('names numbers that would change, nesting past the limit and keys given twice', () => {
    const { value, issues } = parseJsonText(
      '{"big":1e400,"fine":1.50,"long":0.1000000000000000055511151231257827,"deep":[[[1]]],"k":1,"k":2}',
      { maxDepth: 3 },
    );
    expect(value).toEqual({ big: null, fine: 1.5, long: null, deep: [[null]], k: 2 });
    expect(issues.map((i) => [i.path, i.message.split(' ').slice(0, 3).join(' ')])).toEqual([
      [['big'], 'is out of'],
      [['long'], 'has more digits'],
      [['deep', 0, 0], 'is nested deeper'],
      [['k'], 'appears twice in'],
    ]);
  });

  it('survives any nesting without recursing into it', () => {
    const { issues } = parseJsonText(`{"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}`);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toEqual({
      path: ['a', ...Array(63).fill(0)],
      message: 'is nested deeper than 64 levels',
    });
  });

  it('keeps __proto__ as an own key, never as the prototype', () => {
    const { value } = parseJsonText('{"__proto__":{"polluted":1}}') as { value: object };
    expect(Object.keys(value)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(({} as { polluted?: number }).polluted).toBeUndefined();
  });
});

describe('checkStorableText', () => {
  it('names NUL and unpaired surrogates, in values and keys, outside the escaped fields', () => {
    const { issues } = checkStorableText({ a: ['ok', 'x\u0000'], b: { 'k\ud800': 1 }, c: '\ud83d\ude00' });
    expect(issues).toEqual([
      { path: ['a', 1], message: expect.stringContaining('NUL') },
      {
        path: ['b'],
        message: expect.stringContaining('has a key that contains an unpaired surrogate (\\ud800)'),
      },
    ]);
  });

  it('escapes them inside the escaped fields, as the six characters of their JSON escape', () => {
    const { value, issues } = checkStorableText(
      { items: [{ result: { 'k\u0000': ['\udc00', 'fine \ud83d\ude00'] } }], other: 'x' },
      ['items.*.result'],
    );
    expect(issues).toEqual([]);
    expect(value).toEqual({
      items: [{ result: { 'k\\u0000': ['\\udc00', 'fine \ud83d\ude00'] } }],
      other: 'x',
    });
    expect(escapeUnstorable('a\u0000b')).toHaveLength(8);
  });
});
