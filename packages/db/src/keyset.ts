/** How PostgreSQL types a value of a keyset position; the API checks a cursor's values against it. */
export type KeysetValueType = 'real' | 'text' | 'timestamptz' | 'uuid' | 'bigint';

/** One column of a list's order. The last column of every order is unique (the id), so positions are total. */
export interface KeysetColumn {
  /** SQL expression, as it appears in ORDER BY (a collation included). */
  expr: string;
  type: KeysetValueType;
  desc: boolean;
}

/** Newest first on a time column, then the id: the order of the task, workflow and run lists. */
export const newestFirst = (timeColumn: string): KeysetColumn[] => [
  { expr: timeColumn, type: 'timestamptz', desc: true },
  { expr: 'id', type: 'uuid', desc: true },
];

/** The column a list selects its row's position into; `keysetPage` takes it off again. */
const POSITION = 'keyset_position';

/**
 * The SQL pieces of one page of a list in `order`, starting after `after` (a position a previous
 * page returned, its values as text). `param` adds a query parameter and returns its placeholder.
 *
 * When every column runs the same way the position test is one row comparison, which PostgreSQL
 * answers with a range scan of an index in that order; mixed directions need the expanded form.
 * @example
 * const page = keysetQuery(newestFirst('created_at'), after, param);
 * `SELECT *, ${page.position} FROM tasks WHERE ${page.after} ORDER BY ${page.orderBy} LIMIT …`
 */
export function keysetQuery(
  order: readonly KeysetColumn[],
  after: readonly string[] | undefined,
  param: (value: unknown) => string,
): { after: string; orderBy: string; position: string } {
  const orderBy = order.map((c) => `${c.expr} ${c.desc ? 'DESC' : 'ASC'}`).join(', ');
  const position = `ARRAY[${order.map((c) => `(${c.expr})::text`).join(', ')}] AS ${POSITION}`;
  if (!after) return { after: 'true', orderBy, position };
  if (after.length !== order.length) throw new RangeError('cursor does not fit this order');
  const values = after.map((v, i) => `${param(v)}::${order[i]!.type}`);
  const beyond = (desc: boolean) => (desc ? '<' : '>');
  if (order.every((c) => c.desc === order[0]!.desc)) {
    return {
      after: `(${order.map((c) => c.expr).join(', ')}) ${beyond(order[0]!.desc)} (${values.join(', ')})`,
      orderBy,
      position,
    };
  }
  const clauses = order.map((column, i) =>
    [
      ...order.slice(0, i).map((c, j) => `${c.expr} = ${values[j]}`),
      `${column.expr} ${beyond(column.desc)} ${values[i]}`,
    ].join(' AND '),
  );
  return { after: clauses.map((clause) => `(${clause})`).join(' OR '), orderBy, position };
}

/**
 * The page out of rows fetched with `LIMIT limit + 1`: the first `limit` rows without their
 * position, and the position of the last one when the extra row shows that more follow.
 */
export function keysetPage<Row>(
  rows: (Row & { [POSITION]: string[] })[],
  limit: number,
): { items: Row[]; next?: string[] } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(({ [POSITION]: _position, ...row }) => row as Row),
    next: rows.length > limit && last ? last[POSITION] : undefined,
  };
}
