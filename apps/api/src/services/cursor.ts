import { inDateTimeRange } from '@devart/contracts';
import type { KeysetColumn } from '@devart/db';
import { ValidationError } from './domain-errors';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// PostgreSQL's text form of a timestamptz (`2026-12-01 10:00:00.123456+00`, `…+05:30`, and
// `…+00:09:21` for zones whose offset once had seconds), and the ISO form with a `T` or `Z`.
const timestampPattern =
  /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(?:Z|([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?)$/;

/**
 * The instant a timestamp in PostgreSQL's text form names, or undefined when it is not a real
 * date (month 13, February 30, an offset of +99) or lies outside DATE_TIME_RANGE: PostgreSQL
 * would refuse such a value with an error rather than a row, so it must never reach a query.
 * @example timestampInstant('2026-12-01 10:00:00.5+01') // 2026-12-01T09:00:00.500Z
 */
export function timestampInstant(text: string): Date | undefined {
  const m = timestampPattern.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const [offsetHours, offsetMinutes, offsetSeconds] = [m[9], m[10], m[11]].map((v) => Number(v ?? 0)) as [
    number,
    number,
    number,
  ];
  // PostgreSQL keeps offsets within ±15:59:59.
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  if (offsetHours > 15 || offsetMinutes > 59 || offsetSeconds > 59) return undefined;
  const wall = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC rolls month 13 or day 31 over; a real date comes back as it went in.
  if (wall.getUTCFullYear() !== year || wall.getUTCMonth() !== month - 1 || wall.getUTCDate() !== day) {
    return undefined;
  }
  const sign = m[8] === '-' ? -1 : 1;
  const ms =
    wall.getTime() +
    Math.round(Number(m[7] ?? 0) * 1000) -
    sign * (offsetHours * 3600 + offsetMinutes * 60 + offsetSeconds) * 1000;
  return inDateTimeRange(ms) ? new Date(ms) : undefined;
}

/** True for a UUID as this API hands them out (lowercase). */
export const isCanonicalUuid = (value: unknown): value is string =>
  typeof value === 'string' && uuidPattern.test(value);

/** The 400 for a cursor this API did not hand out, or one altered since. */
export function invalidCursor(why = 'is not a valid cursor'): ValidationError {
  return new ValidationError([{ location: 'query', field: 'cursor', message: why }]);
}

/** Whether one cursor value casts to its column's type: PostgreSQL would answer an error otherwise. */
const valueFits: Record<KeysetColumn['type'], (value: string) => boolean> = {
  // ts_rank is a real: finite, never negative, and within real's range (PostgreSQL refuses underflow too).
  real: (value) => {
    if (!/^(\d+(\.\d*)?|\.\d+)(e[+-]?\d{1,3})?$/i.test(value)) return false;
    const n = Number(value);
    return n === 0 || (n >= 1e-37 && n <= 1e37);
  },
  // Names and version keys are ASCII; NUL or a surrogate could only come from a crafted cursor, and PostgreSQL refuses NUL in text.
  text: (value) => value.length <= 300 && !value.includes('\u0000') && !/[\ud800-\udfff]/.test(value),
  timestamptz: (value) => timestampInstant(value) !== undefined,
  uuid: isCanonicalUuid,
  bigint: (value) => /^\d{1,19}$/.test(value) && BigInt(value) <= 9223372036854775807n,
};

/**
 * Opaque cursor of a keyset position (the values as text, a timestamptz at PostgreSQL's full
 * precision); a list with several sorts names the `sort` the position belongs to.
 * @example encodeCursor(page.next) // tasks: base64url of ["2026-12-01 10:00:00.123456+00","<id>"]
 */
export function encodeCursor(position: readonly string[], sort?: string): string {
  return Buffer.from(JSON.stringify(sort === undefined ? position : [sort, ...position])).toString(
    'base64url',
  );
}

/**
 * The position a cursor names in a list of this `order` (and `sort`, if the list has several).
 * Every part is checked as the query will read it (a real instant in range, a UUID, a number in
 * the column's range), so a crafted cursor is a 400 naming `cursor`, never a database error.
 */
export function decodeCursor(cursor: string, order: readonly KeysetColumn[], sort?: string): string[] {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  if (sort !== undefined && (!Array.isArray(decoded) || decoded[0] !== sort)) {
    throw invalidCursor('is not a valid cursor for this sort (a cursor belongs to one sort)');
  }
  if (!Array.isArray(decoded)) throw invalidCursor();
  const values: unknown[] = sort === undefined ? decoded : decoded.slice(1);
  const fits =
    values.length === order.length &&
    values.every((v, i) => typeof v === 'string' && valueFits[order[i]!.type](v));
  if (!fits) throw invalidCursor();
  return values as string[];
}
