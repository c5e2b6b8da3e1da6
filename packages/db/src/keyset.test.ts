import { describe, expect, it } from 'vitest';
import { type KeysetColumn, keysetPage, keysetQuery, newestFirst } from './keyset';

function params() {
  const values: unknown[] = [];
  return {
    values,
    param: (value: unknown) => {
      values.push(value);
      return `$${values.length}`;
    },
  };
}

describe('keysetQuery', () => {
  it('tests the position with one row comparison when every column runs the same way', () => {
    const p = params();
    const page = keysetQuery(newestFirst('created_at'), ['2026-12-01 10:00:00.123456+00', 'id-1'], p.param);
    expect(page.after).toBe('(created_at, id) < ($1::timestamptz, $2::uuid)');
    expect(page.orderBy).toBe('created_at DESC, id DESC');
    expect(page.position).toBe('ARRAY[(created_at)::text, (id)::text] AS keyset_position');
    expect(p.values).toEqual(['2026-12-01 10:00:00.123456+00', 'id-1']);
  });

  it('expands the test column by column when directions are mixed', () => {
    const order: KeysetColumn[] = [
      { expr: 'name', type: 'text', desc: false },
      { expr: 'version_key', type: 'text', desc: true },
      { expr: 'id', type: 'uuid', desc: false },
    ];
    const page = keysetQuery(order, ['a', '1', 'id-1'], params().param);
    expect(page.after).toBe(
      '(name > $1::text) OR (name = $1::text AND version_key < $2::text) OR ' +
        '(name = $1::text AND version_key = $2::text AND id > $3::uuid)',
    );
    expect(page.orderBy).toBe('name ASC, version_key DESC, id ASC');
  });

  it('starts at the top without a position, and refuses one of another length', () => {
    expect(keysetQuery(newestFirst('t'), undefined, params().param).after).toBe('true');
    expect(() => keysetQuery(newestFirst('t'), ['x'], params().param)).toThrow(RangeError);
  });
});

describe('keysetPage', () => {
  it('drops the extra row and the positions, and says where the next page starts', () => {
    const rows = [1, 2, 3].map((n) => ({ n, keyset_position: [`p${n}`] }));
    expect(keysetPage(rows, 2)).toEqual({ items: [{ n: 1 }, { n: 2 }], next: ['p2'] });
    expect(keysetPage(rows, 3)).toEqual({ items: [{ n: 1 }, { n: 2 }, { n: 3 }], next: undefined });
  });
});
